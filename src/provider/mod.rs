//! Identity providers: one narrow, object-safe trait every protocol implements.
//!
//! The gateway drives every login the same way: `begin` says where to send the browser and
//! what state to keep (held server-side under a browser-bound handle), `finish` turns the
//! IdP's callback plus that state into an [`Identity`], `logout` says where the browser goes
//! after the local session is destroyed. Protocol types never leave their folder.

pub mod error;
pub mod kaas;
pub mod oidc;
pub mod saml;
pub mod state;

use async_trait::async_trait;

pub use self::error::{CommonReason, ProviderError, Reason, Side};
pub use self::state::{LogoutState, PendingState, ProtocolState};
use crate::identity::Identity;

/// Where to send the browser to start or end a protocol exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrowserStep {
    /// `302 Location`.
    Redirect(String),
    /// An HTML form POSTed by the browser (SAML HTTP-POST binding).
    PostForm {
        /// Form action URL.
        action: String,
        /// Hidden fields.
        fields: Vec<(String, String)>,
    },
}

/// What the gateway knows when a login starts.
#[derive(Debug, Clone)]
pub struct LoginContext {
    /// Absolute URL of this provider's callback endpoint.
    pub callback_url: String,
    /// Absolute URL of the gateway's logged-out page.
    pub logged_out_url: String,
    /// Absolute URL of the gateway's one-time-credential form for this provider.
    pub direct_form_url: String,
}

/// The first step of a login.
#[derive(Debug)]
pub struct LoginStart {
    /// Where the browser goes.
    pub step: BrowserStep,
    /// Protocol state for `finish` (request id, nonce, PKCE verifier, …).
    pub state: ProtocolState,
}

/// A completed login.
#[derive(Debug)]
pub struct Authenticated {
    /// The normalized identity.
    pub identity: Identity,
    /// Data needed to log out at the IdP later.
    pub logout_state: LogoutState,
    /// Tokens for calling upstreams on the user's behalf (OIDC access and refresh tokens).
    pub tokens: Option<crate::session::tokens::UpstreamTokens>,
}

/// Whose sessions a verified back-channel logout ends: the IdP session `sid` when given
/// (narrowest), else every session of `subject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutTarget {
    /// The user (`sub`), if the token names one.
    pub subject: Option<String>,
    /// The IdP session (`sid`), if the token names one.
    pub sid: Option<String>,
}

/// A message delivered to a provider's single-logout endpoint (SAML SLO), as received.
#[derive(Debug, Clone, Default)]
pub struct SloMessage {
    /// `true` for an HTTP POST, `false` for a GET.
    pub is_post: bool,
    /// The raw query string (Redirect-binding signatures cover its exact bytes).
    pub raw_query: Option<String>,
    /// Form fields of a POST (`application/x-www-form-urlencoded`).
    pub form: Vec<(String, String)>,
    /// The raw body of a POST that is not a form (a bare XML LogoutRequest, EnviIAM).
    pub xml_body: Option<Vec<u8>>,
}

/// What the gateway does after a provider accepted a single-logout message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SloOutcome {
    /// The IdP confirmed a logout we started: send the browser on.
    LoggedOut {
        /// Where the browser goes.
        redirect: String,
    },
    /// The IdP asks to end sessions: end them, then answer.
    EndSessions {
        /// Whose sessions.
        target: LogoutTarget,
        /// Browser step carrying the answer (front channel); `None`: a bare `200 OK` (back channel).
        reply: Option<BrowserStep>,
    },
}

/// Health of a provider's dependencies, for `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// Whether new logins can succeed.
    pub ready: bool,
    /// Short operator-facing detail (no secrets).
    pub detail: String,
}

/// An identity provider.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// Configured name.
    fn name(&self) -> &str;
    /// Label on the chooser page.
    fn display_name(&self) -> &str;
    /// Starts a login.
    async fn begin(&self, ctx: &LoginContext) -> Result<LoginStart, ProviderError>;
    /// Whether a login at this provider can achieve at least `loa` (a per-LoA client, or
    /// requesting a higher authentication context), for step-up. Default: no.
    fn can_reach_loa(&self, _loa: crate::identity::Loa) -> bool {
        false
    }
    /// Starts a login that must achieve at least `loa` (step-up). The gateway still checks the
    /// LoA of the resulting identity. Default: refused.
    async fn begin_at_loa(&self, _ctx: &LoginContext, loa: crate::identity::Loa) -> Result<LoginStart, ProviderError> {
        Err(ProviderError::with_context(CommonReason::Unsupported, format_args!("log in at LoA {}", loa.as_str())))
    }
    /// Finishes a login from the callback parameters (query or form) and the saved state.
    async fn finish(
        &self,
        ctx: &LoginContext,
        params: &[(String, String)],
        state: &ProtocolState,
    ) -> Result<Authenticated, ProviderError>;
    /// Where to send the browser after the local session is gone.
    fn logout(&self, ctx: &LoginContext, logout_state: &LogoutState) -> BrowserStep;
    /// Like [`Provider::logout`], for providers whose IdP returns a `state` to the
    /// post-logout URL: `state` is the gateway's browser-bound value to send (checked when the
    /// browser comes back). `None`: the provider sends no state this time (the gateway then
    /// calls `logout`).
    fn logout_with_state(&self, _ctx: &LoginContext, _logout_state: &LogoutState, _state: &str) -> Option<BrowserStep> {
        None
    }
    /// Current readiness.
    fn readiness(&self) -> Readiness;
    /// For providers that log in with one-time credentials typed into a gateway form: the
    /// IdP page that issues them. `None`: the provider has no such form.
    fn direct_generator_url(&self) -> Option<String> {
        None
    }
    /// Whether the IdP returns the browser to the callback with a cross-site POST (OIDC
    /// `form_post`, SAML HTTP-POST). The pre-login cookie must then be `SameSite=None`, since
    /// browsers do not send `Lax` cookies on such a POST.
    fn returns_by_cross_site_post(&self) -> bool {
        false
    }
    /// Whether the provider accepts back-channel logout tokens (OIDC Back-Channel Logout 1.0);
    /// the gateway's endpoint answers 404 for providers that do not.
    fn supports_backchannel_logout(&self) -> bool {
        false
    }
    /// Verifies a back-channel logout token and says whose sessions to end. Providers without
    /// back-channel logout refuse every token.
    async fn verify_logout_token(&self, _token: &str) -> Result<LogoutTarget, ProviderError> {
        Err(ProviderError::with_context(CommonReason::Unsupported, "back-channel logout"))
    }
    /// Refreshes upstream tokens with their refresh token (RFC 6749 §6). `Rejected` means the
    /// grant is gone (the session ends); `Unavailable` an outage (the old token is kept while
    /// valid). Providers without tokens refuse.
    async fn refresh_tokens(
        &self,
        _tokens: &crate::session::tokens::UpstreamTokens,
    ) -> Result<crate::session::tokens::UpstreamTokens, ProviderError> {
        Err(ProviderError::with_context(CommonReason::Unsupported, "token refresh"))
    }
    /// Whether the provider has a single-logout endpoint (`/.aisgate/saml/{name}/slo`); the
    /// gateway answers 404 for providers that do not.
    fn supports_single_logout(&self) -> bool {
        false
    }
    /// Checks a message at the single-logout endpoint.
    async fn single_logout(&self, _message: &SloMessage) -> Result<SloOutcome, ProviderError> {
        Err(ProviderError::with_context(CommonReason::Unsupported, "single logout"))
    }
    /// The provider's own metadata document (SAML SP metadata), served at
    /// `/.aisgate/saml/{name}/metadata`; `None`: the provider publishes none.
    fn metadata_document(&self) -> Option<String> {
        None
    }
    /// Whether the callback accepts a login the gateway did not start (SAML IdP-initiated SSO,
    /// `allow_unsolicited`): `finish` then gets a null state. Off by default: such a login is
    /// bound to no browser, so anyone can log a victim's browser into the attacker's account.
    fn accepts_unsolicited(&self) -> bool {
        false
    }
    /// How long a started login may take at this IdP, seconds, when that is longer than
    /// `[session] login_ttl_secs` (NIA queues logins for tens of minutes, nia.md §8.4). The
    /// gateway keeps this provider's pending logins and pre-login cookies that long.
    fn pending_login_ttl(&self) -> Option<u64> {
        None
    }
    /// Largest protocol message this provider accepts in a request body to the gateway's own
    /// endpoints (SAML `max_message_bytes`), decoded bytes; sizes the own endpoints' body cap.
    fn max_inbound_message_bytes(&self) -> Option<usize> {
        None
    }
    /// Registers the provider's own metrics (called once at startup).
    fn register_metrics(&self, _metrics: &mut crate::ops::metrics::Metrics) {}
    /// Periodic health work (heartBeat, metadata refresh); run every [`Provider::refresh_interval`].
    async fn refresh(&self) {}
    /// How often `refresh` runs; `None` for never.
    fn refresh_interval(&self) -> Option<std::time::Duration> {
        None
    }
}

/// Reads a back-channel response body, refusing more than `limit` bytes (announced or sent):
/// an IdP answer near the limit is an error page or an attack, never worth buffering.
pub(crate) async fn read_limited(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, ProviderError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(ProviderError::new(CommonReason::ResponseTooLarge));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| ProviderError::with_context(CommonReason::Unreachable, crate::error_chain(&e)))?
    {
        if body.len() + chunk.len() > limit {
            return Err(ProviderError::new(CommonReason::ResponseTooLarge));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A login message refused by the bounded CPU pool ([`crate::cpu`]): every worker busy and
/// the queue full (503 with `Retry-After`), or the job failed.
pub(crate) fn cpu_refused(e: crate::cpu::CpuError) -> ProviderError {
    match e {
        crate::cpu::CpuError::Busy(_) => ProviderError::with_context(CommonReason::Busy, e),
        crate::cpu::CpuError::Failed(_) => ProviderError::with_context(CommonReason::WorkFailed, e),
    }
}
