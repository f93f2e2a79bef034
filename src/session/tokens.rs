//! Access and refresh tokens an IdP issued at login, kept in the session for apps that want an
//! `Authorization: Bearer` header, and refreshed before they expire.
//!
//! Refresh is single-flight per session: concurrent requests of one session wait for the one
//! refresh in progress instead of each spending the refresh token (with rotation, a second use
//! of the old token would look like theft to the IdP and end the grant). With a shared store
//! the refresh is also single-flight across instances: see
//! [`crate::session::shared::refresh_across_instances`]. Tokens never appear in `Debug`
//! output or logs.

use std::future::Future;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::identity::Loa;
use crate::provider::ProviderError;

/// After a refresh failed because the IdP was unreachable, the next attempt waits this long
/// (while the old access token is still valid): an outage must not turn every request into
/// a token-endpoint call.
const RETRY_AFTER_OUTAGE_SECS: u64 = 10;

/// Tokens from the IdP's token endpoint.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UpstreamTokens {
    /// The access token sent upstream as `Authorization: Bearer`.
    pub access_token: String,
    /// When the access token was issued, Unix seconds.
    pub issued_at: u64,
    /// When the access token expires, Unix seconds.
    pub expires_at: u64,
    /// The refresh token, if the IdP issued one.
    pub refresh_token: Option<String>,
    /// The LoA of the client registration that obtained the tokens (refresh must use the same
    /// client); `None`: the provider's main client.
    pub client_loa: Option<Loa>,
}

impl std::fmt::Debug for UpstreamTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTokens")
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "<redacted>"))
            .field("client_loa", &self.client_loa)
            .finish_non_exhaustive()
    }
}

/// The tokens are bearer credentials: wiped from memory when dropped (issue 15 item 12).
impl Drop for UpstreamTokens {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.access_token.zeroize();
        self.refresh_token.zeroize();
    }
}

impl UpstreamTokens {
    /// Whether the access token should be refreshed at `now`: within `margin` seconds of
    /// expiry, the margin capped at half the token's lifetime so short-lived tokens are used
    /// for a while before the first refresh.
    pub fn needs_refresh(&self, now: u64, margin: u64) -> bool {
        let lifetime = self.expires_at.saturating_sub(self.issued_at);
        now.saturating_add(margin.min(lifetime / 2)) >= self.expires_at
    }

    /// Whether the access token is still valid at `now`.
    pub fn is_valid(&self, now: u64) -> bool {
        now < self.expires_at
    }
}

/// Why no access token could be provided.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    /// The IdP refused the refresh (`invalid_grant`: revoked, expired or reused grant), or the
    /// access token expired without a refresh token: the session is over.
    Ended,
    /// The IdP is unreachable and the access token has expired.
    Unavailable,
}

#[derive(Clone, Default, Serialize, Deserialize)]
struct Current {
    tokens: Option<UpstreamTokens>,
    /// No refresh attempt before this time (after an outage), Unix seconds.
    #[serde(default)]
    retry_at: u64,
}

/// A session's tokens, with the single-flight lock for refreshing them.
///
/// Boxed, and absent when the login brought no tokens (JIP/KAAS, SAML): most sessions pay
/// 8 bytes for it, not the ~130 of the mutexes and token fields. Stored as
/// `{"current":{"tokens":…,"retry_at":…}}` as before it was boxed.
#[derive(Default)]
pub struct TokenSlot {
    inner: Option<Box<Slot>>,
}

struct Slot {
    current: Mutex<Current>,
    /// Held by the one request refreshing; the others wait on it, then use its result.
    flight: tokio::sync::Mutex<()>,
}

/// The stored form of a [`TokenSlot`].
#[derive(Serialize, Deserialize)]
struct Wire {
    current: Current,
}

impl Serialize for TokenSlot {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let current = self.inner.as_ref().map(|slot| slot.lock().clone()).unwrap_or_default();
        Wire { current }.serialize(s)
    }
}

impl<'de> Deserialize<'de> for TokenSlot {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<TokenSlot, D::Error> {
        let Wire { current } = Wire::deserialize(d)?;
        Ok(TokenSlot::with(current))
    }
}

impl std::fmt::Debug for TokenSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tokens = self.inner.as_ref().and_then(|slot| slot.lock().tokens.clone());
        f.debug_struct("TokenSlot").field("tokens", &tokens).finish_non_exhaustive()
    }
}

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl TokenSlot {
    /// A slot holding `tokens`.
    pub fn new(tokens: Option<UpstreamTokens>) -> TokenSlot {
        TokenSlot::with(Current { tokens, retry_at: 0 })
    }

    fn with(current: Current) -> TokenSlot {
        if current.tokens.is_none() {
            // Nothing to refresh, ever: a slot without tokens never gets any.
            return TokenSlot::default();
        }
        let slot = Slot { current: Mutex::new(current), flight: tokio::sync::Mutex::new(()) };
        TokenSlot { inner: Some(Box::new(slot)) }
    }

    /// Heap bytes it owns (see [`super::footprint`]).
    pub(crate) fn heap_bytes(&self) -> usize {
        use super::footprint::{block, Footprint};
        self.inner.as_ref().map_or(0, |slot| {
            let current = slot.lock();
            let tokens =
                current.tokens.as_ref().map_or(0, |t| t.access_token.heap_bytes() + t.refresh_token.heap_bytes());
            block(std::mem::size_of::<Slot>()) + tokens
        })
    }

    /// Whether the slot holds tokens at all.
    pub fn is_empty(&self) -> bool {
        self.inner.as_ref().is_none_or(|slot| slot.lock().tokens.is_none())
    }

    /// The current tokens (a copy).
    pub fn get(&self) -> Option<UpstreamTokens> {
        self.inner.as_ref().and_then(|slot| slot.lock().tokens.clone())
    }

    /// A usable access token: the current one while it is fresh, else the result of one
    /// refresh by `refresh` (which receives the current tokens). A refresh that the IdP
    /// refuses ends the session; one that fails for an outage keeps the old token while it is
    /// valid. A new refresh token from the IdP replaces the old one (rotation); without one,
    /// the old refresh token is kept. `Ok(None)`: the session has no tokens.
    pub async fn access_token<F, Fut>(&self, now: u64, margin: u64, refresh: F) -> Result<Option<String>, TokenError>
    where
        F: FnOnce(UpstreamTokens) -> Fut,
        Fut: Future<Output = Result<UpstreamTokens, ProviderError>>,
    {
        let Some(slot) = &self.inner else { return Ok(None) };
        if let Some(fresh) = slot.fresh(now, margin) {
            return Ok(fresh);
        }
        let _flight = slot.flight.lock().await;
        // Whoever held the lock before us may have refreshed already.
        if let Some(fresh) = slot.fresh(now, margin) {
            return Ok(fresh);
        }
        let Some(mut old) = self.get() else { return Ok(None) };
        if old.refresh_token.is_none() {
            return if old.is_valid(now) {
                Ok(Some(std::mem::take(&mut old.access_token)))
            } else {
                Err(TokenError::Ended)
            };
        }
        match refresh(old.clone()).await {
            Ok(mut new) => {
                if new.refresh_token.is_none() {
                    new.refresh_token = old.refresh_token.take();
                }
                let token = new.access_token.clone();
                let mut current = slot.lock();
                current.tokens = Some(new);
                current.retry_at = 0;
                Ok(Some(token))
            }
            Err(e) if e.side() != crate::provider::Side::Outage => {
                tracing::warn!(error = %e, "token refresh refused; the session ends");
                slot.lock().tokens = None;
                Err(TokenError::Ended)
            }
            Err(e) => {
                tracing::error!(error = %e, "token refresh failed");
                slot.lock().retry_at = now.saturating_add(RETRY_AFTER_OUTAGE_SECS);
                if old.is_valid(now) {
                    Ok(Some(std::mem::take(&mut old.access_token)))
                } else {
                    Err(TokenError::Unavailable)
                }
            }
        }
    }
}

impl Slot {
    /// `Some(token)` when no refresh is due (or one is not allowed yet), `None` when one is.
    /// (`Some(None)`: the session has no tokens.)
    fn fresh(&self, now: u64, margin: u64) -> Option<Option<String>> {
        let current = self.lock();
        let Some(tokens) = &current.tokens else { return Some(None) };
        if !tokens.needs_refresh(now, margin) {
            return Some(Some(tokens.access_token.clone()));
        }
        if now < current.retry_at && tokens.is_valid(now) {
            // Backing off after an outage while the old token lasts; once it has expired each
            // request tries again (still one at a time), so the session recovers with the IdP.
            return Some(Some(tokens.access_token.clone()));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn tokens(access: &str, issued_at: u64, expires_at: u64, refresh: Option<&str>) -> UpstreamTokens {
        UpstreamTokens {
            access_token: access.into(),
            issued_at,
            expires_at,
            refresh_token: refresh.map(Into::into),
            client_loa: None,
        }
    }

    fn never(_: UpstreamTokens) -> std::future::Ready<Result<UpstreamTokens, ProviderError>> {
        panic!("no refresh expected here")
    }

    #[test]
    fn the_margin_is_capped_at_half_the_lifetime() {
        let t = tokens("a", 1000, 1300, None);
        assert!(!t.needs_refresh(1239, 60));
        assert!(t.needs_refresh(1240, 60));
        let short = tokens("a", 1000, 1010, None);
        assert!(!short.needs_refresh(1004, 60));
        assert!(short.needs_refresh(1005, 60));
    }

    #[test]
    fn debug_output_never_shows_tokens() {
        let slot = TokenSlot::new(Some(tokens("secret-access", 0, 10, Some("secret-refresh"))));
        let text = format!("{slot:?}");
        assert!(!text.contains("secret"), "{text}");
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_refresh() {
        let slot = Arc::new(TokenSlot::new(Some(tokens("old", 0, 100, Some("r1")))));
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (slot, calls) = (slot.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                slot.access_token(95, 60, |old| async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    assert_eq!(old.refresh_token.as_deref(), Some("r1"));
                    Ok(tokens("new", 95, 400, Some("r2")))
                })
                .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(Some("new".to_owned())));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(slot.get().unwrap().refresh_token.as_deref(), Some("r2"));
    }

    #[tokio::test]
    async fn a_refused_refresh_ends_the_session_and_an_outage_keeps_the_valid_token() {
        let slot = TokenSlot::new(Some(tokens("old", 0, 100, Some("r1"))));
        let down = |_| async { Err(ProviderError::new(crate::provider::CommonReason::Unreachable)) };
        assert_eq!(slot.access_token(95, 60, down).await, Ok(Some("old".to_owned())));
        // Backing off: no call at all until the retry time, then the expiry is an error.
        assert_eq!(slot.access_token(99, 60, never).await, Ok(Some("old".to_owned())));
        // Expired: tried again at once, and the outage is now a clear error.
        assert_eq!(slot.access_token(100, 60, down).await, Err(TokenError::Unavailable));
        let refused = |_| async {
            Err(ProviderError::new(crate::provider::oidc::Failure::TokenEndpointError(
                crate::provider::oidc::OAuthError::InvalidGrant,
            )))
        };
        assert_eq!(slot.access_token(200, 60, refused).await, Err(TokenError::Ended));
        assert!(slot.is_empty());
    }

    #[tokio::test]
    async fn without_a_refresh_token_the_access_token_is_used_until_it_expires() {
        let slot = TokenSlot::new(Some(tokens("only", 0, 100, None)));
        assert_eq!(slot.access_token(90, 60, never).await, Ok(Some("only".to_owned())));
        assert_eq!(slot.access_token(100, 60, never).await, Err(TokenError::Ended));
    }
}
