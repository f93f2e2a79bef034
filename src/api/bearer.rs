//! `Authorization: Bearer`: access tokens validated by the provider that issued them
//! (enviam.md §5.5 step 4, §12.3), remembered by the SHA-256 of the token.
//!
//! A validated token is cached until the earliest of its own expiry (`exp` of the profile
//! JWT or of a local JWT) and `cache_ttl_secs`; at most `cache_entries` are kept. Concurrent
//! requests with the same not-yet-cached token share one validation (single flight): the
//! first starts the profile call, the others wait for its result. Failures are never cached:
//! a refused token costs a profile call each time (the provider is the one that knows), and
//! an outage must not outlive itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;

use super::config::{AuthMethod, BearerConfig};
use super::{ApiFailure, ApiIdentity};
use crate::clock::Clock;
use crate::identity::Identity;
use crate::provider::Provider;

/// SHA-256 of a token: the cache key (the token itself is never kept).
type TokenKey = [u8; 32];

/// A validated token, as cached.
#[derive(Debug)]
struct Validated {
    identity: Arc<Identity>,
    /// `client_id`, else `azp`.
    client_id: Option<String>,
    audiences: Vec<String>,
    /// Trusted until (Unix seconds, exclusive).
    until: u64,
}

type Flight = Arc<OnceCell<Result<Arc<Validated>, ApiFailure>>>;

/// Removes a flight from the table once it has an answer, or once no other request waits
/// for it (then a later request starts a new one).
struct FlightGuard<'a> {
    flights: &'a Mutex<HashMap<TokenKey, Flight>>,
    key: TokenKey,
    flight: Flight,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        let Some(current) = flights.get(&self.key) else { return };
        // Under the lock nobody can join: two references are the table's and this guard's.
        let alone = Arc::strong_count(&self.flight) <= 2;
        if Arc::ptr_eq(current, &self.flight) && (self.flight.initialized() || alone) {
            flights.remove(&self.key);
        }
    }
}

/// Validates bearer tokens of one app.
pub(crate) struct BearerValidator {
    provider: Arc<dyn Provider>,
    allowed_clients: Vec<String>,
    max_ttl: u64,
    max_token_bytes: usize,
    local_jwt: bool,
    cache: moka::sync::Cache<TokenKey, Arc<Validated>>,
    /// Validations in progress, by token: the single-flight table.
    flights: Mutex<HashMap<TokenKey, Flight>>,
    clock: Clock,
}

/// RFC 6750 §2.1 `b64token`: the only characters a bearer token may have.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

impl BearerValidator {
    pub(crate) fn new(cfg: &BearerConfig, provider: Arc<dyn Provider>, clock: Clock) -> Result<Self, String> {
        if provider.access_tokens().is_none() {
            return Err(format!(
                "[app.bearer] provider {:?} cannot validate access tokens (not kind = \"oidc\")",
                cfg.provider
            ));
        }
        let cache = moka::sync::Cache::builder()
            .max_capacity(cfg.cache_entries)
            // A bound in real time too; the entry's own `until` (gateway clock) is checked on use.
            .time_to_live(Duration::from_secs(cfg.cache_ttl_secs.max(1)))
            .build();
        Ok(BearerValidator {
            provider,
            allowed_clients: cfg.allowed_clients.clone(),
            max_ttl: cfg.cache_ttl_secs,
            max_token_bytes: cfg.max_token_bytes,
            local_jwt: cfg.local_jwt,
            cache,
            flights: Mutex::new(HashMap::new()),
            clock,
        })
    }

    fn refused(reason: &'static str, detail: impl Into<String>) -> ApiFailure {
        ApiFailure::Refused { scheme: AuthMethod::Bearer, reason, detail: detail.into() }
    }

    /// Validates `token` (the text after `Bearer `).
    pub(crate) async fn validate(&self, token: &str) -> Result<ApiIdentity, ApiFailure> {
        if token.len() > self.max_token_bytes {
            return Err(Self::refused("token_too_large", format!("{} bytes", token.len())));
        }
        if !is_b64token(token) {
            return Err(Self::refused("token_malformed", "not an RFC 6750 b64token"));
        }
        let key = super::cache_key(token);
        let now = self.clock.now_unix();
        let (validated, cached) = match self.cache.get(&key).filter(|v| v.until > now) {
            Some(hit) => (hit, true),
            None => (self.validate_once(key, token).await?, false),
        };
        self.check_client(&validated)?;
        let client = validated.client_id.clone().or_else(|| validated.audiences.first().cloned());
        Ok(ApiIdentity { identity: Arc::clone(&validated.identity), scheme: AuthMethod::Bearer, client, cached })
    }

    /// One validation per token at a time: joins the flight in progress or starts one.
    async fn validate_once(&self, key: TokenKey, token: &str) -> Result<Arc<Validated>, ApiFailure> {
        let flight: Flight = {
            let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(flights.entry(key).or_default())
        };
        // Leaves the table when this request is done or dropped (a client that disconnects
        // mid-call must not leave its flight behind: the table would grow with every token).
        let guard = FlightGuard { flights: &self.flights, key, flight };
        guard.flight.get_or_init(|| self.call_provider(key, token)).await.clone()
    }

    async fn call_provider(&self, key: TokenKey, token: &str) -> Result<Arc<Validated>, ApiFailure> {
        let Some(tokens) = self.provider.access_tokens() else {
            return Err(ApiFailure::Unavailable {
                scheme: AuthMethod::Bearer,
                reason: "unsupported",
                detail: "the provider cannot validate access tokens".to_owned(),
                busy: false,
            });
        };
        let answer = tokens
            .validate_access_token(token, self.local_jwt)
            .await
            .map_err(|e| ApiFailure::from_provider(AuthMethod::Bearer, &e))?;
        let now = self.clock.now_unix();
        let ttl_end = now.saturating_add(self.max_ttl);
        let until = answer.expires_at.map_or(ttl_end, |exp| exp.min(ttl_end));
        let validated = Arc::new(Validated {
            identity: Arc::new(answer.identity),
            client_id: answer.client_id,
            audiences: answer.audiences,
            until,
        });
        // `cache_ttl_secs = 0`: every request asks the provider.
        if until > now {
            self.cache.insert(key, Arc::clone(&validated));
        }
        Ok(validated)
    }

    /// The optional allow-list of calling applications: the token's `client_id`, or (without
    /// one) any of its audiences, must be listed.
    fn check_client(&self, v: &Validated) -> Result<(), ApiFailure> {
        if self.allowed_clients.is_empty() {
            return Ok(());
        }
        let listed = |c: &String| self.allowed_clients.iter().any(|a| a == c);
        let allowed = match &v.client_id {
            Some(client) => listed(client),
            None => v.audiences.iter().any(listed),
        };
        if allowed {
            Ok(())
        } else {
            // The client id is configuration-grade data (an application), not personal.
            let who = v.client_id.as_deref().or(v.audiences.first().map(String::as_str)).unwrap_or("none");
            Err(Self::refused("client_not_allowed", format!("calling application {who:?} is not in allowed_clients")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A waiter's guard, holding the only clone outside the table (as `validate_once` does).
    fn join(flights: &Mutex<HashMap<TokenKey, Flight>>, key: TokenKey) -> FlightGuard<'_> {
        let flight = Arc::clone(flights.lock().unwrap().entry(key).or_default());
        FlightGuard { flights, key, flight }
    }

    #[test]
    fn a_flight_leaves_the_table_when_answered_or_abandoned() {
        let flights: Mutex<HashMap<TokenKey, Flight>> = Mutex::new(HashMap::new());
        let key = [7u8; 32];
        let first = join(&flights, key);
        let second = join(&flights, key);
        assert!(Arc::ptr_eq(&first.flight, &second.flight), "one flight per token");
        // One of two waiters gives up (a client disconnected): the other still waits.
        drop(first);
        assert!(flights.lock().unwrap().contains_key(&key));
        // The last waiter gives up before an answer: the flight goes.
        drop(second);
        assert!(flights.lock().unwrap().is_empty());
        // An answered flight goes as soon as any waiter is done, others still holding it.
        let answered = join(&flights, key);
        let waiting = join(&flights, key);
        answered.flight.set(Err(ApiFailure::Missing)).unwrap();
        drop(answered);
        assert!(flights.lock().unwrap().is_empty());
        // A new flight for the same token is not removed by the old one's last waiter.
        let fresh = join(&flights, key);
        drop(waiting);
        assert!(flights.lock().unwrap().contains_key(&key));
        drop(fresh);
        assert!(flights.lock().unwrap().is_empty());
    }

    #[test]
    fn b64token_grammar() {
        for ok in ["abc", "a.b.c", "AT-1-xyz_~+/==", "eyJ.eyJ.sig"] {
            assert!(is_b64token(ok), "{ok}");
        }
        for bad in ["", "a b", "a,b", "\"x\"", "==", "č"] {
            assert!(!is_b64token(bad), "{bad}");
        }
    }

    #[test]
    fn key_is_the_sha256_of_the_token() {
        assert_eq!(
            crate::api::cache_key("abc").iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
