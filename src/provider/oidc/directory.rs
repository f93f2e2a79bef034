//! The provider's published configuration: discovery metadata and signing keys, cached with
//! periodic refresh and last-good fallback.
//!
//! A failed refresh never throws away what worked: logins go on with the last good discovery
//! document and JWKS while `/readyz` reports the failure. An ID token signed with a key we do
//! not hold triggers one JWKS fetch, at most one per `jwks_min_refetch_secs` however many
//! logins ask for it, so forged `kid`s cannot turn the gateway into a JWKS flooder.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::client::{IdpClient, Metadata};
use super::jws::{self, Jwk};
use super::reason::Failure;
use crate::provider::{ProviderError, Readiness};

#[derive(Debug, Clone)]
struct Health {
    ready: bool,
    detail: String,
    last_good: Option<Instant>,
}

/// Cached discovery metadata and keys of one provider.
pub struct Directory {
    discovery_url: String,
    expected_issuer: Option<String>,
    metadata: RwLock<Option<Arc<Metadata>>>,
    keys: RwLock<Arc<Vec<Jwk>>>,
    health: Mutex<Health>,
    /// When keys were last fetched outside the periodic refresh; also the single-flight lock.
    refetch: tokio::sync::Mutex<Option<Instant>>,
    /// When a login last fetched discovery because none was loaded.
    inline_discovery: tokio::sync::Mutex<Option<Instant>>,
    min_refetch: Duration,
    /// `[provider.dangerous] allow_plain_http`: back-channel endpoints may be plain http://.
    allow_plain_http: bool,
}

fn http_url(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some())
}

/// The first back-channel endpoint of `m` (token, JWKS, userinfo) that is plain `http://` off
/// loopback while `allow_plain_http` is off (issue 15 item 11): over plain HTTP anyone on the
/// path could substitute the keys or read the tokens.
fn plain_http_endpoint(m: &Metadata, allow_plain_http: bool) -> Option<&'static str> {
    [
        ("token_endpoint", Some(&m.token_endpoint)),
        ("jwks_uri", Some(&m.jwks_uri)),
        ("userinfo_endpoint", m.userinfo_endpoint.as_ref()),
    ]
    .into_iter()
    .find(|(_, url)| url.is_some_and(|u| !crate::config::dangerous::endpoint_allowed(u, allow_plain_http)))
    .map(|(what, _)| what)
}

impl Directory {
    /// A directory that has fetched nothing yet.
    pub fn new(discovery_url: String, expected_issuer: Option<String>, min_refetch: Duration) -> Directory {
        Directory {
            discovery_url,
            expected_issuer,
            metadata: RwLock::new(None),
            keys: RwLock::new(Arc::new(Vec::new())),
            health: Mutex::new(Health {
                ready: false,
                detail: "discovery not fetched yet".to_owned(),
                last_good: None,
            }),
            refetch: tokio::sync::Mutex::new(None),
            inline_discovery: tokio::sync::Mutex::new(None),
            min_refetch,
            allow_plain_http: false,
        }
    }

    /// Allows plain `http://` back-channel endpoints off loopback (`dangerous.allow_plain_http`).
    pub fn with_plain_http(mut self, allow: bool) -> Directory {
        self.allow_plain_http = allow;
        self
    }

    /// Whether plain `http://` back-channel endpoints are allowed off loopback.
    pub fn allows_plain_http(&self) -> bool {
        self.allow_plain_http
    }

    /// The current metadata, if any was ever fetched.
    pub fn metadata(&self) -> Option<Arc<Metadata>> {
        self.metadata.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The current signing keys.
    pub fn keys(&self) -> Arc<Vec<Jwk>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Readiness for `/readyz`.
    pub fn readiness(&self) -> Readiness {
        let h = self.health.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Readiness { ready: h.ready, detail: h.detail }
    }

    async fn fetch_metadata(&self, client: &IdpClient) -> Result<Metadata, ProviderError> {
        let m = client.discovery(&self.discovery_url).await?;
        // OIDC Discovery §4.3: the issuer must be exactly the one configured.
        if let Some(expected) = &self.expected_issuer {
            if &m.issuer != expected {
                return Err(ProviderError::with_context(
                    Failure::DiscoveryInvalid,
                    format_args!("discovery issuer {:?} is not the configured {expected:?}", m.issuer),
                ));
            }
        }
        for (what, url) in [
            ("authorization_endpoint", Some(&m.authorization_endpoint)),
            ("token_endpoint", Some(&m.token_endpoint)),
            ("jwks_uri", Some(&m.jwks_uri)),
            ("userinfo_endpoint", m.userinfo_endpoint.as_ref()),
            ("end_session_endpoint", m.end_session_endpoint.as_ref()),
        ] {
            if url.is_some_and(|u| !http_url(u)) {
                return Err(ProviderError::with_context(
                    Failure::DiscoveryInvalid,
                    format_args!("{what} is not an http(s) URL"),
                ));
            }
        }
        if let Some(what) = plain_http_endpoint(&m, self.allow_plain_http) {
            return Err(ProviderError::with_context(
                Failure::DiscoveryInvalid,
                format_args!("{what} is plain http:// (set [provider.dangerous] allow_plain_http = true to allow)"),
            ));
        }
        Ok(m)
    }

    async fn fetch_keys(&self, client: &IdpClient, jwks_uri: &str) -> Result<Vec<Jwk>, ProviderError> {
        let body = client.get(jwks_uri).await?;
        let keys = jws::parse_jwks(&body).map_err(|e| ProviderError::with_context(Failure::JwksInvalid, e))?;
        if keys.is_empty() {
            return Err(ProviderError::with_context(Failure::JwksInvalid, "no usable RS256/ES256 signature key"));
        }
        Ok(keys)
    }

    fn set_keys(&self, keys: Vec<Jwk>) {
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
    }

    /// Refetches discovery and JWKS; on failure keeps the last good copies and records why.
    pub async fn refresh(&self, client: &IdpClient, provider: &str) {
        let result = async {
            let fresh = match self.fetch_metadata(client).await {
                Ok(m) => {
                    let m = Arc::new(m);
                    let mut current = self.metadata.write().unwrap_or_else(|e| e.into_inner());
                    if current.as_deref() != Some(&*m) {
                        tracing::info!(provider, issuer = %m.issuer, authorization = %m.authorization_endpoint, token = %m.token_endpoint, jwks = %m.jwks_uri, "OIDC discovery loaded");
                    }
                    *current = Some(m.clone());
                    m
                }
                Err(e) => return Err(format!("discovery: {e}")),
            };
            let keys = self.fetch_keys(client, &fresh.jwks_uri).await.map_err(|e| format!("JWKS: {e}"))?;
            let count = keys.len();
            self.set_keys(keys);
            Ok(count)
        }
        .await;
        let mut h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(count) => {
                *h = Health {
                    ready: true,
                    detail: format!("discovery and JWKS OK ({count} keys)"),
                    last_good: Some(Instant::now()),
                };
            }
            Err(e) => {
                let fallback = match h.last_good {
                    Some(t) => format!("; using the last good copy from {} s ago", t.elapsed().as_secs()),
                    None => "; no copy yet, logins are refused".to_owned(),
                };
                tracing::warn!(provider, error = %e, "OIDC refresh failed");
                h.ready = false;
                h.detail = format!("{e}{fallback}");
            }
        }
    }

    /// The metadata, fetching it now if none was ever loaded (at most once per
    /// `jwks_min_refetch_secs`).
    pub async fn require_metadata(&self, client: &IdpClient, provider: &str) -> Result<Arc<Metadata>, ProviderError> {
        if let Some(m) = self.metadata() {
            return Ok(m);
        }
        {
            // Single flight and rate limit: concurrent logins wait for one fetch.
            let mut last = self.inline_discovery.lock().await;
            if self.metadata().is_none() && !last.is_some_and(|t| t.elapsed() < self.min_refetch) {
                *last = Some(Instant::now());
                self.refresh(client, provider).await;
            }
        }
        self.metadata()
            .ok_or_else(|| ProviderError::with_context(Failure::DiscoveryUnavailable, self.readiness().detail))
    }

    /// Fetches the JWKS again because a token named a key we do not hold. Returns whether new
    /// keys were loaded; `Err` when the fetch itself failed.
    pub async fn refetch_keys(&self, client: &IdpClient, jwks_uri: &str) -> Result<bool, ProviderError> {
        // Holding the lock across the fetch makes concurrent callers wait for this one result
        // instead of fetching again (single flight).
        let mut last = self.refetch.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.min_refetch) {
            return Ok(false);
        }
        *last = Some(Instant::now());
        let keys = self.fetch_keys(client, jwks_uri).await?;
        let changed = *self.keys() != keys;
        self.set_keys(keys);
        Ok(changed)
    }
}

#[cfg(test)]
mod plain_http_tests {
    use super::*;

    fn metadata(base: &str) -> Metadata {
        serde_json::from_value(serde_json::json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}/auth"),
            "token_endpoint": format!("{base}/token"),
            "jwks_uri": format!("{base}/jwks"),
            "userinfo_endpoint": format!("{base}/userinfo"),
        }))
        .unwrap()
    }

    /// Issue 15 item 11: discovered back-channel endpoints over plain http were used silently.
    #[test]
    fn discovered_plain_http_endpoints_are_refused_off_loopback_unless_allowed() {
        assert_eq!(plain_http_endpoint(&metadata("http://idp.example.cz"), false), Some("token_endpoint"));
        assert_eq!(plain_http_endpoint(&metadata("http://idp.example.cz"), true), None);
        assert_eq!(plain_http_endpoint(&metadata("http://127.0.0.1:8080"), false), None);
        assert_eq!(plain_http_endpoint(&metadata("https://idp.example.cz"), false), None);
    }
}
