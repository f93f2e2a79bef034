//! What several gateway instances must agree on besides sessions and pending logins: one-time
//! message ids (the replay caches of SAML assertions, SAML logout requests and OIDC logout
//! tokens), attempt counters (login-start and one-time-credential rate limits), and who is
//! refreshing a session's upstream tokens right now.
//!
//! With the memory store each instance keeps these itself (the providers' own caches and the
//! gateway's [`crate::gateway::rate_limit::RateLimiter`]s) and the gateway has no
//! [`SharedState`]. With the Redis store the gateway hands the store to the providers as their
//! `SharedState` ([`crate::provider::Provider::use_shared_state`]), so that a SAML Response
//! used at instance A is refused at instance B, and a client cannot multiply its attempts by
//! the number of instances.
//!
//! Every method fails closed: when the shared store cannot answer, the caller refuses (a
//! possibly replayed message is never accepted, an attempt that cannot be counted is not
//! made) with the store-unavailable page.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;

use super::{StoreError, StoreKey};

/// Which one-time cache an id belongs to (a namespace in the shared store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnceScope {
    /// SAML assertion IDs (ACS).
    SamlAssertion,
    /// Signed SAML LogoutRequest IDs from the IdP.
    SamlLogoutRequest,
    /// OIDC back-channel logout token `jti`s.
    OidcLogoutJti,
}

impl OnceScope {
    /// The short name used in store keys.
    pub fn label(self) -> &'static str {
        match self {
            OnceScope::SamlAssertion => "saml-assertion",
            OnceScope::SamlLogoutRequest => "saml-logout",
            OnceScope::OidcLogoutJti => "oidc-jti",
        }
    }
}

/// Which attempt counter (a namespace in the shared store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterScope {
    /// Login starts per client address (`server.login_starts_per_minute`).
    LoginStart,
    /// One-time-credential form submissions per client address (JIP/KAAS `directAuthUser`).
    DirectCredentials,
}

impl CounterScope {
    /// The short name used in store keys.
    pub fn label(self) -> &'static str {
        match self {
            CounterScope::LoginStart => "login-start",
            CounterScope::DirectCredentials => "direct",
        }
    }
}

/// Releases a lease: compare-and-delete in the shared store (a lease that has expired and
/// been taken by another instance meanwhile is left alone).
pub type ReleaseFn = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// The lease on a session's token refresh, held by one request of one instance. It is renewed
/// in the background while held, so a slow refresh does not lose it to another instance; it
/// ends with [`RefreshLease::release`] (or, if dropped, by expiry after at most one lease
/// period, the renewal having stopped).
pub struct RefreshLease {
    renewal: Option<tokio::task::JoinHandle<()>>,
    release: Option<ReleaseFn>,
}

impl RefreshLease {
    /// A lease renewed by `renewal` (aborted when the lease ends) and ended by `release`.
    pub fn new(renewal: tokio::task::JoinHandle<()>, release: ReleaseFn) -> RefreshLease {
        RefreshLease { renewal: Some(renewal), release: Some(release) }
    }

    /// Stops renewing and gives the lease back at once, so waiting instances need not wait
    /// for it to expire.
    pub async fn release(mut self) {
        if let Some(renewal) = self.renewal.take() {
            renewal.abort();
        }
        if let Some(release) = self.release.take() {
            release().await;
        }
    }
}

impl Drop for RefreshLease {
    fn drop(&mut self) {
        if let Some(renewal) = self.renewal.take() {
            renewal.abort();
        }
        // Not released explicitly (a cancelled request): give it back in the background when
        // possible; otherwise it expires after one lease period.
        if let (Some(release), Ok(runtime)) = (self.release.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(release());
        }
    }
}

/// State shared by every instance of the gateway (see the module documentation).
#[async_trait]
pub trait SharedState: Send + Sync + 'static {
    /// Records `id` of `provider` in `scope` for `ttl`: `Ok(true)` for its first use across all
    /// instances, `Ok(false)` when it was seen before (a replay).
    async fn first_use(&self, scope: OnceScope, provider: &str, id: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// Counts one attempt of `client` (a client address bucket, see
    /// [`crate::gateway::rate_limit`]) in `scope` in fixed windows of `window`; returns the
    /// number of attempts in the current window, this one included.
    async fn count_attempt(&self, scope: CounterScope, client: &str, window: Duration) -> Result<u64, StoreError>;

    /// Tries to take the token-refresh lease of session `key` for `lease` (renewed while
    /// held). `Ok(None)`: another request (on any instance) holds it.
    async fn try_refresh_lease(&self, key: &StoreKey, lease: Duration) -> Result<Option<RefreshLease>, StoreError>;
}

/// Where a provider records its one-time ids: the shared store when the gateway gave it one,
/// else its own per-instance cache.
#[derive(Default)]
pub struct SharedSlot(std::sync::OnceLock<std::sync::Arc<dyn SharedState>>);

impl SharedSlot {
    /// Uses `shared` from now on (set once, at gateway build; later calls are ignored).
    pub fn set(&self, shared: std::sync::Arc<dyn SharedState>) {
        let _ = self.0.set(shared);
    }

    /// The shared store, if any.
    pub fn get(&self) -> Option<&dyn SharedState> {
        self.0.get().map(|s| s.as_ref())
    }

    /// [`SharedState::first_use`] on the shared store, or `local` (the provider's own cache)
    /// without one. `until` is the Unix time after which the id could no longer be accepted.
    pub async fn first_use(
        &self,
        scope: OnceScope,
        provider: &str,
        id: &str,
        (until, now): (u64, u64),
        local: impl FnOnce() -> bool,
    ) -> Result<bool, StoreError> {
        match self.get() {
            Some(shared) => {
                // At least a second: an id whose window is (nearly) over is still recorded.
                let ttl = Duration::from_secs(until.saturating_sub(now).max(1));
                shared.first_use(scope, provider, id, ttl).await
            }
            None => Ok(local()),
        }
    }
}

/// How long a token refresh holds its lease between renewals (renewed every third of it).
pub const REFRESH_LEASE: Duration = Duration::from_secs(6);

/// How long a request waits for another instance's refresh of its session before it gives up
/// (then the old token while it is valid, else the IdP-unavailable page).
pub const REFRESH_WAIT: Duration = Duration::from_secs(15);

/// How often a waiting request looks at the stored session for the new tokens.
const REFRESH_POLL: Duration = Duration::from_millis(50);

/// Tokens in the stored session that replace `old`: different and not due for refresh
/// (another request, maybe at another instance, refreshed them).
fn newer_tokens(
    session: &super::Session,
    old: &super::tokens::UpstreamTokens,
    (now, margin): (u64, u64),
) -> Option<super::tokens::UpstreamTokens> {
    session.upstream_tokens.get().filter(|t| t != old && !t.needs_refresh(now, margin))
}

/// One token refresh of session `key` across every instance sharing the store: the request
/// that takes the lease refreshes with `refresh` (keeping the lease in `held` until the
/// caller has stored the new tokens and released it); every other request, here or at
/// another instance, waits for the stored session to carry the new tokens and uses those.
/// A request that takes the lease just after another's refresh finds the new tokens stored
/// and does not refresh again (the IdP may have rotated the old refresh token away).
///
/// `Ok((tokens, true))`: refreshed here (the caller stores them, then releases `held`);
/// `Ok((tokens, false))`: refreshed elsewhere, already stored.
pub async fn refresh_across_instances<F, Fut>(
    (shared, store): (&dyn SharedState, &dyn super::SessionStore),
    key: &StoreKey,
    old: super::tokens::UpstreamTokens,
    (now, margin): (u64, u64),
    held: &mut Option<RefreshLease>,
    refresh: F,
) -> Result<(super::tokens::UpstreamTokens, bool), crate::provider::ProviderError>
where
    F: FnOnce(super::tokens::UpstreamTokens) -> Fut,
    Fut: Future<Output = Result<super::tokens::UpstreamTokens, crate::provider::ProviderError>>,
{
    use crate::provider::{CommonReason, ProviderError};
    let ended = || ProviderError::with_context(CommonReason::SessionEnded, "during the token refresh");
    let deadline = tokio::time::Instant::now() + REFRESH_WAIT;
    loop {
        let lease = shared.try_refresh_lease(key, REFRESH_LEASE).await?;
        // Under the lease or not: the stored session may already carry the new tokens.
        let stored = store.reload(key).await?.ok_or_else(ended)?;
        if let Some(tokens) = newer_tokens(&stored, &old, (now, margin)) {
            if let Some(lease) = lease {
                lease.release().await;
            }
            return Ok((tokens, false));
        }
        if let Some(lease) = lease {
            *held = Some(lease);
            return refresh(old).await.map(|tokens| (tokens, true));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ProviderError::with_context(
                CommonReason::Unreachable,
                "another request's token refresh did not finish in time",
            ));
        }
        tokio::time::sleep(REFRESH_POLL).await;
    }
}
