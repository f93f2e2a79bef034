//! Optional provider capabilities. The core [`Provider`](super::Provider) trait is what every
//! protocol does (begin, finish, logout, readiness); each trait here is something only some
//! do, returned by an accessor on `Provider` (`None`: not supported). The gateway asks for
//! the capability where it needs it, so a provider without one never sees the request: the
//! endpoint answers 404, the feature is left out.
//!
//! | capability | who has it |
//! |---|---|
//! | [`StepUp`] | OIDC (per-LoA clients), SAML (`enforce_returned_loa`) |
//! | [`SingleLogout`], [`Metadata`] | SAML |
//! | [`BackchannelLogout`], [`StatefulLogout`], [`TokenRefresh`] | OIDC |
//! | [`DirectCredentials`] | JIP/KAAS in a direct login mode |
//! | [`Background`] | all three (heartBeat, discovery/JWKS, metadata refresh) |
//! | [`AccessTokens`] | OIDC (API apps: `Authorization: Bearer`) |
//! | [`ForwardedResponses`] | SAML (API apps: `Authorization: SAML`) |

use std::time::Duration;

use async_trait::async_trait;

use super::{BrowserStep, LoginContext, LoginStart, LogoutState, LogoutTarget, ProviderError, SloMessage, SloOutcome};
use crate::identity::Loa;
use crate::session::tokens::UpstreamTokens;

/// Logins that must achieve at least a given LoA (step-up).
#[async_trait]
pub trait StepUp: Send + Sync {
    /// Whether a login here can achieve at least `loa` (a per-LoA client, or requesting a
    /// higher authentication context).
    fn can_reach_loa(&self, loa: Loa) -> bool;
    /// Starts a login that must achieve at least `loa`. The gateway still checks the LoA of
    /// the resulting identity.
    async fn begin_at_loa(&self, ctx: &LoginContext, loa: Loa) -> Result<LoginStart, ProviderError>;
}

/// A single-logout endpoint (`/.aisgate/saml/{name}/slo`).
#[async_trait]
pub trait SingleLogout: Send + Sync {
    /// Checks a message at the single-logout endpoint.
    async fn handle_message(&self, message: &SloMessage) -> Result<SloOutcome, ProviderError>;
}

/// Back-channel logout tokens (`/.aisgate/backchannel-logout/{name}`).
#[async_trait]
pub trait BackchannelLogout: Send + Sync {
    /// Verifies a logout token and says whose sessions to end.
    async fn verify_logout_token(&self, token: &str) -> Result<LogoutTarget, ProviderError>;
}

/// RP-initiated logout whose IdP returns a `state` to the post-logout URL.
pub trait StatefulLogout: Send + Sync {
    /// Like [`Provider::logout`](super::Provider::logout), carrying `state`, the gateway's
    /// browser-bound value (checked when the browser comes back). `None`: no state this time
    /// (the gateway then calls `logout`).
    fn logout_with_state(&self, ctx: &LoginContext, logout_state: &LogoutState, state: &str) -> Option<BrowserStep>;
}

/// Refreshable upstream tokens.
#[async_trait]
pub trait TokenRefresh: Send + Sync {
    /// Refreshes upstream tokens with their refresh token (RFC 6749 §6). A refused or denied
    /// error means the grant is gone (the session ends); an outage keeps the old token while
    /// it is valid.
    async fn refresh_tokens(&self, tokens: &UpstreamTokens) -> Result<UpstreamTokens, ProviderError>;
}

/// A published metadata document (`/.aisgate/saml/{name}/metadata`).
pub trait Metadata: Send + Sync {
    /// The document.
    fn metadata_document(&self) -> String;
}

/// One-time credentials typed into the gateway's form, redeemed by `finish`.
pub trait DirectCredentials: Send + Sync {
    /// The IdP page that issues the credentials.
    fn generator_url(&self) -> String;
}

/// Own metrics and periodic health work.
#[async_trait]
pub trait Background: Send + Sync {
    /// Registers the provider's own metrics (called once at startup).
    fn register_metrics(&self, metrics: &mut crate::ops::metrics::Metrics);
    /// Periodic health work (heartBeat, metadata refresh); run every `refresh_interval`.
    async fn refresh(&self);
    /// How often `refresh` runs; `None` for never.
    fn refresh_interval(&self) -> Option<Duration>;
}

/// A user's access token, validated by the provider that issued it (API apps).
#[derive(Debug)]
pub struct ValidatedToken {
    /// The user, mapped like a login of this provider.
    pub identity: crate::identity::Identity,
    /// The calling application: `client_id`, else `azp`, when the answer names one.
    pub client_id: Option<String>,
    /// `aud` of the answer (string or list).
    pub audiences: Vec<String>,
    /// The token's expiry (`exp`), when the answer states it, Unix seconds.
    pub expires_at: Option<u64>,
    /// Verified locally (JWT access token), without a call to the provider.
    pub verified_locally: bool,
}

/// Access tokens validated by the provider (OIDC userinfo / EnviIAM `/oidc/profile`).
#[async_trait]
pub trait AccessTokens: Send + Sync {
    /// Validates `token`: with `local_jwt`, a JWT access token whose signature, issuer and
    /// times verify with the provider's keys is accepted without a call; otherwise (and for
    /// every other token) the profile endpoint is asked. A refused token is a refusal, an
    /// endpoint that cannot answer an outage.
    async fn validate_access_token(&self, token: &str, local_jwt: bool) -> Result<ValidatedToken, ProviderError>;
}

/// A SAML Response forwarded by a calling application, validated.
#[derive(Debug)]
pub struct ForwardedAssertion {
    /// The user, mapped like a login of this provider.
    pub identity: crate::identity::Identity,
    /// The caller's entity ID the Response was issued to (its `Audience`).
    pub audience: String,
    /// Valid until (the earliest `NotOnOrAfter`), Unix seconds.
    pub not_on_or_after: u64,
}

/// SAML Responses issued to other applications and forwarded in `Authorization: SAML`.
#[async_trait]
pub trait ForwardedResponses: Send + Sync {
    /// Decodes (at most `max_bytes` of base64) and validates a forwarded Response issued to
    /// one of `callers`: the ACS checks, without `InResponseTo` and without a replay check,
    /// with `skew_secs` of clock difference tolerated (the validity is seconds, not minutes).
    async fn validate_forwarded(
        &self,
        base64: &str,
        max_bytes: usize,
        skew_secs: u64,
        callers: std::sync::Arc<[super::saml::acs::SamlCaller]>,
    ) -> Result<ForwardedAssertion, ProviderError>;
}
