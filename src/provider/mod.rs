//! Identity providers: one narrow, object-safe trait every protocol implements.
//!
//! The gateway drives every login the same way: `begin` says where to send the browser and
//! what state to keep (held server-side under a browser-bound handle), `finish` turns the
//! IdP's callback plus that state into an [`Identity`], `logout` says where the browser goes
//! after the local session is destroyed. Protocol types never leave their folder, with two
//! deliberate exceptions the gateway must hold without understanding them: the typed
//! protocol state ([`state`]: what `finish` and `logout` need, versioned) and the typed
//! failure reason ([`error`]: whose fault, which check — it decides the page, the metric
//! label and the log line).
//!
//! What only some protocols do (step-up, single logout, back-channel logout, token refresh,
//! metadata, one-time credentials, background work) is a [`capability`] the gateway asks
//! for; the core trait has no refusing defaults.

pub mod capability;
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
/// (narrowest), else every session of `subject`. `Debug` redacts both.
#[derive(Clone, PartialEq, Eq)]
pub struct LogoutTarget {
    /// The user (`sub`), if the token names one.
    pub subject: Option<String>,
    /// The IdP session (`sid`), if the token names one.
    pub sid: Option<String>,
}

/// A message delivered to a provider's single-logout endpoint (SAML SLO), as received
/// (`Debug` shows sizes only: the message names the user).
#[derive(Clone, Default)]
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

impl std::fmt::Debug for LogoutTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogoutTarget")
            .field("subject", &crate::redact::opt(&self.subject))
            .field("sid", &crate::redact::opt(&self.sid))
            .finish()
    }
}

impl std::fmt::Debug for SloMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::redact::Len;
        f.debug_struct("SloMessage")
            .field("is_post", &self.is_post)
            .field("raw_query", &self.raw_query.as_ref().map(|q| Len(q.len())))
            .field("form", &self.form.iter().map(|(k, v)| (k.as_str(), Len(v.len()))).collect::<Vec<_>>())
            .field("xml_body", &self.xml_body.as_ref().map(|b| Len(b.len())))
            .finish()
    }
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
        /// The answer instead of `reply` when no session matched, if the provider cannot tell
        /// "already logged out" from "not recognised" (a SAML NameID-only request must not be
        /// answered Success while that user's session may live on).
        unmatched_reply: Option<BrowserStep>,
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

/// An identity provider: the narrow core every protocol implements. Everything only some
/// protocols can do is an optional capability ([`capability`]) the gateway asks for through
/// an accessor; `None` (the default) means the provider does not have it, and the gateway
/// then answers as if the endpoint did not exist (404) or leaves the feature out. There are
/// no refusing default implementations to forget to override.
#[async_trait]
pub trait Provider: std::any::Any + Send + Sync + 'static {
    /// Configured name.
    fn name(&self) -> &str;
    /// Label on the chooser page.
    fn display_name(&self) -> &str;
    /// Starts a login.
    async fn begin(&self, ctx: &LoginContext) -> Result<LoginStart, ProviderError>;
    /// Finishes a login from the callback parameters (query or form) and the saved state.
    async fn finish(
        &self,
        ctx: &LoginContext,
        params: &[(String, String)],
        state: &ProtocolState,
    ) -> Result<Authenticated, ProviderError>;
    /// Where to send the browser after the local session is gone.
    async fn logout(&self, ctx: &LoginContext, logout_state: &LogoutState) -> BrowserStep;
    /// Current readiness.
    fn readiness(&self) -> Readiness;
    /// How the gateway binds and bounds this provider's logins (plain data; defaults fit a
    /// provider that returns by same-site redirect within the gateway's login lifetime).
    fn login_profile(&self) -> LoginProfile {
        LoginProfile::default()
    }

    /// Step-up: logins that must achieve a minimum LoA.
    fn step_up(&self) -> Option<&dyn capability::StepUp> {
        None
    }
    /// A single-logout endpoint (SAML SLO).
    fn single_logout(&self) -> Option<&dyn capability::SingleLogout> {
        None
    }
    /// Back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0).
    fn backchannel_logout(&self) -> Option<&dyn capability::BackchannelLogout> {
        None
    }
    /// RP-initiated logout carrying a browser-bound `state` checked on return.
    fn stateful_logout(&self) -> Option<&dyn capability::StatefulLogout> {
        None
    }
    /// Refreshable upstream tokens (RFC 6749 §6).
    fn token_refresh(&self) -> Option<&dyn capability::TokenRefresh> {
        None
    }
    /// Published metadata (SAML SP metadata).
    fn metadata(&self) -> Option<&dyn capability::Metadata> {
        None
    }
    /// One-time credentials typed into a gateway form (JIP/KAAS `directAuthUser`).
    fn direct_credentials(&self) -> Option<&dyn capability::DirectCredentials> {
        None
    }
    /// Own metrics and periodic health work (heartBeat, discovery or metadata refresh).
    fn background(&self) -> Option<&dyn capability::Background> {
        None
    }
    /// Records one-time ids (replay caches) in `shared` instead of this instance's memory:
    /// called once at gateway build when the session store is shared (Redis). Providers
    /// without one-time ids ignore it.
    fn use_shared_state(&self, _shared: std::sync::Arc<dyn crate::session::shared::SharedState>) {}
    /// Keeps single-logout state (SAML: the NameIDs of logins, the LogoutRequests sent) in the
    /// gateway's session store ([`crate::session::slo::LogoutStore`]), so that it is shared by
    /// every instance exactly when the sessions are; `session_lifetime` is the longest a
    /// session lives. Called at every gateway build (a reload too: the store is the same).
    /// Providers without single logout ignore it.
    fn use_logout_store(
        &self,
        _store: std::sync::Arc<dyn crate::session::SessionStore>,
        _session_lifetime: std::time::Duration,
    ) {
    }
    /// Validation of users' access tokens sent to API apps (`Authorization: Bearer`).
    fn access_tokens(&self) -> Option<&dyn capability::AccessTokens> {
        None
    }
    /// Validation of SAML Responses forwarded to API apps (`Authorization: SAML`).
    fn forwarded_responses(&self) -> Option<&dyn capability::ForwardedResponses> {
        None
    }
}

impl dyn Provider {
    /// Whether a login here can achieve at least `loa` (step-up capability).
    pub fn can_reach_loa(&self, loa: crate::identity::Loa) -> bool {
        self.step_up().is_some_and(|s| s.can_reach_loa(loa))
    }

    /// The IdP page issuing one-time credentials, for providers that take them.
    pub fn direct_generator_url(&self) -> Option<String> {
        self.direct_credentials().map(|d| d.generator_url())
    }
}

/// How the gateway binds and bounds a provider's logins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginProfile {
    /// The IdP returns the browser to the callback with a cross-site POST (OIDC `form_post`,
    /// SAML HTTP-POST): the pre-login cookie must then be `SameSite=None`, since browsers do
    /// not send `Lax` cookies on such a POST.
    pub returns_by_cross_site_post: bool,
    /// The callback accepts a login the gateway did not start (SAML IdP-initiated SSO,
    /// `allow_unsolicited`): `finish` then gets [`ProtocolState::Unsolicited`]. Off by
    /// default: such a login is bound to no browser, so anyone can log a victim's browser
    /// into the attacker's account.
    pub accepts_unsolicited: bool,
    /// How long a started login may take at this IdP, seconds, when that is longer than
    /// `[session] login_ttl_secs` (NIA queues logins for tens of minutes, nia.md §8.4).
    pub pending_login_ttl: Option<u64>,
    /// Largest protocol message accepted in a request body to the gateway's own endpoints
    /// (SAML `max_message_bytes`), decoded bytes; sizes the own endpoints' body cap.
    pub max_inbound_message_bytes: Option<usize>,
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
