//! The subject authorizer client: `POST {url}` with `{"user", "ico", "operation", "app"}`,
//! answer `{"allowed": bool, "roles": [..]}` (README, "Authorizer contract").
//!
//! Answers are cached per (app, user, IČO, operation): an `allowed` for `cache_ttl_secs`, a
//! denial for `deny_cache_ttl_secs`. Concurrent requests for one key make one call and share
//! its outcome, failures included (a burst against a down authorizer is one outgoing call per
//! key, not one per request); failures are never cached. Every failure — timeout, connection,
//! non-200, malformed answer — is fail-closed: the caller answers 503 and forwards nothing.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::OnceCell;

use super::config::{AuthorizerConfig, UserId};
use crate::clock::Clock;
use crate::identity::Identity;
use crate::ops::metrics::{CounterHandle, Metrics};

/// Largest authorizer answer read, bytes.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Most roles taken from one answer.
const MAX_ROLES: usize = 256;

/// The authorizer's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The user may act for the IČO in this operation.
    pub allowed: bool,
    /// The user's roles for that subject (sent upstream as `X-Auth-Subject-Roles`).
    pub roles: Vec<String>,
}

/// Why the authorizer gave no verdict (503 to the client, fail-closed).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizerError {
    /// No answer within `timeout_ms`.
    #[error("authorizer timed out")]
    Timeout,
    /// Connection failed or the status was not 200.
    #[error("authorizer unavailable: {0}")]
    Unavailable(String),
    /// The answer is not the documented JSON.
    #[error("authorizer answer malformed: {0}")]
    Malformed(&'static str),
}

impl AuthorizerError {
    /// Metric label.
    pub fn label(&self) -> &'static str {
        match self {
            AuthorizerError::Timeout => "timeout",
            AuthorizerError::Unavailable(_) => "unavailable",
            AuthorizerError::Malformed(_) => "malformed",
        }
    }
}

/// What is asked: the cache key and the request body.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct Question {
    /// App name.
    pub app: String,
    /// User id as configured (`user = "subject" | "label"`).
    pub user: String,
    /// IČO, 8 digits.
    pub ico: String,
    /// Operation name.
    pub operation: String,
}

struct Outcome {
    result: Result<Verdict, AuthorizerError>,
    expires_ms: u64,
}

type Slot = Arc<OnceCell<Outcome>>;

struct Counters {
    calls: [CounterHandle; 5],
    hit: CounterHandle,
    miss: CounterHandle,
}

const RESULTS: [&str; 5] = ["allowed", "denied", "timeout", "unavailable", "malformed"];

/// The configured authorizer (one per gateway).
pub struct Authorizer {
    url: String,
    http: reqwest::Client,
    timeout: Duration,
    user: UserId,
    allow_ttl_ms: u64,
    deny_ttl_ms: u64,
    cache: moka::sync::Cache<Question, Slot>,
    clock: Clock,
    counters: Counters,
}

impl Authorizer {
    /// Builds the client (TLS material is loaded here: errors name the file) and registers
    /// its metrics.
    pub fn build(cfg: &AuthorizerConfig, metrics: &mut Metrics, clock: Clock) -> Result<Authorizer, String> {
        let roots = crate::tls::roots(cfg.ca_bundle.as_deref()).map_err(|e| e.to_string())?;
        let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
        let tls = match (&cfg.client_cert, &cfg.client_key) {
            (Some(cert), Some(key)) => {
                let certs = crate::tls::load_certs(cert).map_err(|e| e.to_string())?;
                let key_der = crate::tls::load_key(key).map_err(|e| e.to_string())?;
                builder
                    .with_client_auth_cert(certs, key_der)
                    .map_err(|e| format!("{}: certificate and key do not match: {e}", cert.display()))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => return Err("client_cert and client_key go together".into()),
        };
        let timeout = Duration::from_millis(cfg.timeout_ms);
        let http = crate::tls::back_channel_client(tls, timeout, timeout)?;
        let calls = RESULTS.map(|result| {
            metrics.register_counter(
                "aisgate_authorizer_calls_total",
                "Calls to the subject authorizer (CRŽP role + IČO), by result; anything but allowed/denied answered 503.",
                &[("result", result)],
            )
        });
        let [hit, miss] = ["hit", "miss"].map(|result| {
            metrics.register_counter(
                "aisgate_authorizer_cache_total",
                "Subject authorizer decisions served from the cache (hit) or by a call (miss).",
                &[("result", result)],
            )
        });
        let longest = cfg.cache_ttl_secs.max(cfg.deny_cache_ttl_secs).max(1);
        Ok(Authorizer {
            url: cfg.url.clone(),
            http,
            timeout,
            user: cfg.user,
            allow_ttl_ms: cfg.cache_ttl_secs.saturating_mul(1000),
            deny_ttl_ms: cfg.deny_cache_ttl_secs.saturating_mul(1000),
            cache: moka::sync::Cache::builder()
                .max_capacity(cfg.cache_size)
                .time_to_live(Duration::from_secs(longest))
                .build(),
            clock,
            counters: Counters { calls, hit, miss },
        })
    }

    /// The user id the authorizer receives for `identity`.
    pub fn user_id(&self, identity: &Identity) -> String {
        match self.user {
            UserId::Subject => identity.subject.clone(),
            UserId::Label => identity.log_label(),
        }
    }

    /// The verdict for `question`, from the cache or one (shared) call.
    pub async fn decide(&self, question: Question) -> Result<Verdict, AuthorizerError> {
        let now = self.clock.now_millis();
        let mut slot = self.cache.get_with(question.clone(), || Arc::new(OnceCell::new()));
        if slot.get().is_some_and(|o| o.expires_ms <= now) {
            self.cache.invalidate(&question);
            slot = self.cache.get_with(question.clone(), || Arc::new(OnceCell::new()));
        }
        let mut called = false;
        let outcome = slot
            .get_or_init(|| {
                called = true;
                self.call(&question)
            })
            .await;
        if called {
            self.counters.miss.inc();
        } else {
            self.counters.hit.inc();
        }
        if outcome.result.is_err() {
            // Shared with the requests that waited for this call, never with later ones.
            self.cache.invalidate(&question);
        }
        outcome.result.clone()
    }

    async fn call(&self, question: &Question) -> Outcome {
        let result = self.ask(question).await;
        let label = match &result {
            Ok(v) if v.allowed => "allowed",
            Ok(_) => "denied",
            Err(e) => e.label(),
        };
        if let Some(i) = RESULTS.iter().position(|r| *r == label) {
            self.counters.calls[i].inc();
        }
        if let Err(e) = &result {
            tracing::error!(app = %question.app, operation = %question.operation, error = %e, "subject authorizer failed; request refused (503)");
        }
        let ttl = match &result {
            Ok(v) if v.allowed => self.allow_ttl_ms,
            _ => self.deny_ttl_ms,
        };
        Outcome { result, expires_ms: self.clock.now_millis().saturating_add(ttl) }
    }

    async fn ask(&self, q: &Question) -> Result<Verdict, AuthorizerError> {
        let body = serde_json::json!({ "user": q.user, "ico": q.ico, "operation": q.operation, "app": q.app });
        let exchange = async {
            let mut resp = self
                .http
                .post(&self.url)
                .header(http::header::ACCEPT, "application/json")
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.to_string())
                .send()
                .await
                .map_err(classify)?;
            if resp.status() != reqwest::StatusCode::OK {
                return Err(AuthorizerError::Unavailable(format!("HTTP {}", resp.status().as_u16())));
            }
            let mut buf = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(classify)? {
                if buf.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(AuthorizerError::Malformed("answer larger than 64 KiB"));
                }
                buf.extend_from_slice(&chunk);
            }
            parse_answer(&buf)
        };
        tokio::time::timeout(self.timeout, exchange).await.unwrap_or(Err(AuthorizerError::Timeout))
    }
}

fn classify(e: reqwest::Error) -> AuthorizerError {
    if e.is_timeout() {
        AuthorizerError::Timeout
    } else {
        // Without the URL: it is configuration, and the error chain says enough.
        AuthorizerError::Unavailable(e.without_url().to_string())
    }
}

/// Parses `{"allowed": bool, "roles": ["..", ..]}` strictly: `allowed` must be a boolean,
/// `roles` (optional) an array of header-safe strings.
pub fn parse_answer(bytes: &[u8]) -> Result<Verdict, AuthorizerError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|_| AuthorizerError::Malformed("not JSON"))?;
    let object = value.as_object().ok_or(AuthorizerError::Malformed("not a JSON object"))?;
    let allowed = match object.get("allowed") {
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(AuthorizerError::Malformed("\"allowed\" is not a boolean")),
        None => return Err(AuthorizerError::Malformed("no \"allowed\"")),
    };
    let roles = match object.get("roles") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) if items.len() <= MAX_ROLES => items
            .iter()
            .map(|item| match item.as_str().map(str::trim) {
                Some(r) if !r.is_empty() && r.bytes().all(|b| b.is_ascii_graphic() && b != b',') => Ok(r.to_owned()),
                _ => Err(AuthorizerError::Malformed("a role is not a non-empty printable ASCII string without ','")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(AuthorizerError::Malformed("\"roles\" is not an array of at most 256 strings")),
    };
    Ok(Verdict { allowed, roles })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::authorizer::{self, AuthorizerSim, Mode};

    async fn setup(timeout_ms: u64) -> (Authorizer, AuthorizerSim, Clock, Metrics) {
        let (sim, url) = authorizer::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let cfg: AuthorizerConfig = toml::from_str(&format!(
            "url = \"{url}\"\ntimeout_ms = {timeout_ms}\ncache_ttl_secs = 300\ndeny_cache_ttl_secs = 30"
        ))
        .unwrap();
        let mut metrics = Metrics::new(&[], &[]);
        let clock = Clock::test();
        let a = Authorizer::build(&cfg, &mut metrics, clock.clone()).unwrap();
        (a, sim, clock, metrics)
    }

    fn q(user: &str, ico: &str) -> Question {
        Question { app: "isoh".into(), user: user.into(), ico: ico.into(), operation: "Poskytni".into() }
    }

    fn metric(metrics: &Metrics, line: &str) -> bool {
        metrics.render().lines().any(|l| l == line)
    }

    #[tokio::test]
    async fn allowed_and_denied_are_cached_for_their_own_ttl() {
        let (a, sim, clock, metrics) = setup(2000).await;
        sim.grant("u1", "00007064", &["C100", "C110:C206"]);
        let allowed = a.decide(q("u1", "00007064")).await.unwrap();
        assert_eq!(allowed, Verdict { allowed: true, roles: vec!["C100".into(), "C110:C206".into()] });
        assert_eq!(
            sim.last_request(),
            Some(serde_json::json!({"user": "u1", "ico": "00007064", "operation": "Poskytni", "app": "isoh"}))
        );
        assert!(!a.decide(q("u1", "00000001")).await.unwrap().allowed);
        assert_eq!(sim.calls(), 2);
        // Both answers come from the cache now.
        a.decide(q("u1", "00007064")).await.unwrap();
        a.decide(q("u1", "00000001")).await.unwrap();
        assert_eq!(sim.calls(), 2);
        assert!(metric(&metrics, "aisgate_authorizer_cache_total{result=\"hit\"} 2"), "{}", metrics.render());
        // After the denial TTL (30 s) only the denial is asked again; after 300 s both.
        sim.grant("u1", "00000001", &[]);
        clock.advance(Duration::from_secs(31));
        assert!(a.decide(q("u1", "00000001")).await.unwrap().allowed);
        a.decide(q("u1", "00007064")).await.unwrap();
        assert_eq!(sim.calls(), 3);
        clock.advance(Duration::from_secs(300));
        a.decide(q("u1", "00007064")).await.unwrap();
        assert_eq!(sim.calls(), 4);
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_call() {
        let (a, sim, _, _) = setup(2000).await;
        sim.grant("u1", "00007064", &[]);
        let results = futures_util::future::join_all((0..20).map(|_| a.decide(q("u1", "00007064")))).await;
        assert!(results.iter().all(|r| r.as_ref().is_ok_and(|v| v.allowed)));
        assert_eq!(sim.calls(), 1);
    }

    #[tokio::test]
    async fn down_malformed_and_slow_authorizers_fail_and_are_not_cached() {
        let (a, sim, _, metrics) = setup(300).await;
        sim.grant("u1", "00007064", &[]);
        sim.set_mode(Mode::Down);
        assert_eq!(a.decide(q("u1", "00007064")).await, Err(AuthorizerError::Unavailable("HTTP 503".into())));
        sim.set_mode(Mode::Malformed);
        assert_eq!(
            a.decide(q("u1", "00007064")).await,
            Err(AuthorizerError::Malformed("\"allowed\" is not a boolean"))
        );
        sim.set_mode(Mode::Slow);
        assert_eq!(a.decide(q("u1", "00007064")).await, Err(AuthorizerError::Timeout));
        // Each failure was a call of its own: failures are never served from the cache.
        assert_eq!(sim.calls(), 3);
        sim.set_mode(Mode::Normal);
        assert!(a.decide(q("u1", "00007064")).await.unwrap().allowed);
        for result in ["unavailable", "malformed", "timeout", "allowed"] {
            let line = format!("aisgate_authorizer_calls_total{{result=\"{result}\"}} 1");
            assert!(metric(&metrics, &line), "{line} in {}", metrics.render());
        }
    }

    #[tokio::test]
    async fn a_closed_port_is_unavailable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/authorize", listener.local_addr().unwrap());
        drop(listener);
        let cfg: AuthorizerConfig = toml::from_str(&format!("url = \"{url}\"")).unwrap();
        let a = Authorizer::build(&cfg, &mut Metrics::new(&[], &[]), Clock::test()).unwrap();
        assert!(matches!(a.decide(q("u", "00000001")).await, Err(AuthorizerError::Unavailable(_))));
    }

    #[test]
    fn answers_are_parsed_strictly() {
        assert_eq!(
            parse_answer(br#"{"allowed": true, "roles": ["C100", "C110:C206"], "extra": 1}"#),
            Ok(Verdict { allowed: true, roles: vec!["C100".into(), "C110:C206".into()] })
        );
        assert_eq!(parse_answer(br#"{"allowed": false}"#), Ok(Verdict { allowed: false, roles: vec![] }));
        for (bad, why) in [
            (&b"<html>"[..], "not JSON"),
            (b"[true]", "not a JSON object"),
            (br#"{"roles": []}"#, "no \"allowed\""),
            (br#"{"allowed": "true"}"#, "\"allowed\" is not a boolean"),
            (br#"{"allowed": true, "roles": "C100"}"#, "\"roles\" is not an array of at most 256 strings"),
            (
                br#"{"allowed": true, "roles": ["a\nb"]}"#,
                "a role is not a non-empty printable ASCII string without ','",
            ),
            (br#"{"allowed": true, "roles": ["a,b"]}"#, "a role is not a non-empty printable ASCII string without ','"),
        ] {
            assert_eq!(parse_answer(bad), Err(AuthorizerError::Malformed(why)), "{}", String::from_utf8_lossy(bad));
        }
    }
}
