//! A gateway pair as production runs it (issue 10 tests): two `aisgate run` processes of the
//! real binary on one configuration and one real Redis (started by the test), with the
//! simulated IdPs (KAAS, a CAAIS-like OpenID provider, a NIA-like SAML IdP) in the test
//! process. The test is the load balancer without stickiness: it sends each request to the
//! instance it chooses, so every hand-over between the two is exercised on purpose.
//!
//! Skipped with a message when `redis-server` (or, for the failover, `redis-sentinel`) is
//! missing, unless `AISGATE_REQUIRE_PEERS` is set (`tools/test`), where a skip is a failure.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aisgate::sim::stack::{prepare, SamlStackProvider, StackOptions};
use support::redis_server::{free_port, Redis, Sentinel};
use support::{location, parse_form, set_cookie};

const BIN: &str = env!("CARGO_BIN_EXE_aisgate");

/// The apps of the pair: a desk behind every provider, an API with the IdP's access token.
const APPS: &str = r#"
[[app]]
name = "desk"
upstream = "{upstream}"
providers = ["jip", "nia", "caais"]

[[app]]
name = "api"
path_prefix = "/api"
upstream = "{upstream}"
providers = ["caais"]
upstream_bearer = true
"#;

/// One `aisgate run` process.
struct Process {
    child: Child,
    port: u16,
    ops: u16,
    log: PathBuf,
    name: &'static str,
}

impl Process {
    /// Writes the instance's copy of the configuration (its own listen and ops ports) and
    /// starts the binary on it; returns once `/healthz` answers.
    async fn start(name: &'static str, config: &Path) -> Process {
        let (port, ops) = (free_port(), free_port());
        let text = std::fs::read_to_string(config).unwrap();
        let text: String = text
            .lines()
            .map(|line| {
                if line.starts_with("listen = [") {
                    format!("listen = [\"127.0.0.1:{port}\"]")
                } else if line.starts_with("listen = \"") {
                    format!("listen = \"127.0.0.1:{ops}\"")
                } else if line.starts_with("file = ") && line.ends_with("/audit.jsonl\"") {
                    // Each instance its own audit file.
                    line.replace("/audit.jsonl", &format!("/audit-{name}.jsonl"))
                } else {
                    line.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let dir = config.parent().unwrap();
        let own = dir.join(format!("aisgate-{name}.toml"));
        std::fs::write(&own, text).unwrap();
        let log = dir.join(format!("aisgate-{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(&own)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .expect("aisgate starts");
        let mut process = Process { child, port, ops, log, name };
        let started = Instant::now();
        loop {
            if let Ok(resp) = reqwest::get(format!("http://127.0.0.1:{ops}/healthz")).await {
                if resp.status() == 200 {
                    break;
                }
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!("{name} exited ({status}): {}", process.log_text());
            }
            assert!(started.elapsed() < Duration::from_secs(20), "{name} did not start: {}", process.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        process
    }

    fn url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.port)
    }

    /// `url` (at the public base URL, as an IdP redirects) sent to this instance instead.
    fn here(&self, url: &str, public_base: &str) -> String {
        let path = url.strip_prefix(public_base).unwrap_or_else(|| panic!("{url} is not under {public_base}"));
        self.url(path)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log line of request `id` containing `needle`; panics with the request's lines.
    fn line_with(&self, id: &str, needle: &str) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(id)).collect();
        lines
            .iter()
            .find(|l| l.contains(needle))
            .map(|l| (*l).to_owned())
            .unwrap_or_else(|| panic!("{}: no log line {needle:?} for {id} in {lines:#?}", self.name))
    }

    async fn readyz(&self) -> (u16, serde_json::Value) {
        let resp = reqwest::get(format!("http://127.0.0.1:{}/readyz", self.ops)).await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    /// Waits (bounded) until `/readyz` reports the session store ready (or not).
    async fn store_ready(&self, ready: bool) -> serde_json::Value {
        let started = Instant::now();
        loop {
            let (_, body) = self.readyz().await;
            if body["session_store"]["ready"] == ready {
                return body;
            }
            assert!(started.elapsed() < Duration::from_secs(15), "{}: {body}", self.name);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two instances of one configuration, and the simulated IdPs they use.
struct Pair {
    a: Process,
    b: Process,
    public_base: String,
    dir: PathBuf,
    kaas: aisgate::sim::kaas::KaasSim,
    oidc: aisgate::sim::oidc::OidcSim,
    saml: aisgate::sim::saml::SamlSim,
    client: reqwest::Client,
}

impl Pair {
    async fn start(session_extra: String) -> Pair {
        Pair::start_audited(session_extra, String::new()).await
    }

    /// [`Pair::start`] with these `[audit]` lines (a `file` ending in `/audit.jsonl` becomes
    /// `audit-a.jsonl` and `audit-b.jsonl`, one per instance).
    async fn start_audited(session_extra: String, audit: String) -> Pair {
        let stack = prepare(StackOptions {
            upstream: Some(support::header_echo().await),
            apps: Some(APPS.to_owned()),
            oidc: vec![support::caais_provider("")],
            saml: Some(SamlStackProvider {
                extra: "dangerous.allow_unsolicited = true\n".to_owned(),
                ..Default::default()
            }),
            session_extra,
            audit,
            ..Default::default()
        })
        .await
        .expect("stack");
        // The stack's own in-process gateway and listeners are not used: the two processes
        // serve instead (on their own ports; the public base URL names no listener, as that
        // of a load balancer would not name an instance).
        let config = stack.config_path.clone();
        drop((stack.gateway, stack.listener, stack.ops));
        let a = Process::start("a", &config).await;
        let b = Process::start("b", &config).await;
        Pair {
            a,
            b,
            public_base: stack.public_base,
            dir: stack.dir,
            kaas: stack.sim,
            oidc: stack.oidc.into_iter().next().unwrap(),
            saml: stack.saml.unwrap(),
            client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        }
    }

    /// Starts a login at `start` for `provider`; returns the answer and its pre-login cookie.
    async fn begin(&self, start: &Process, provider: &str, return_to: &str) -> (reqwest::Response, String) {
        let encoded: String = url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect();
        let resp = self
            .client
            .get(start.url(&format!("/.aisgate/login?return={encoded}&provider={provider}")))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert!(matches!(resp.status().as_u16(), 200 | 302), "login start at {}: {}", start.name, resp.status());
        let cookie = format!("aisgate_login={}", set_cookie(&resp, "aisgate_login").expect("pre-login cookie"));
        (resp, cookie)
    }

    /// The session `Cookie` value of a finished login's answer.
    fn session_of(done: &reqwest::Response) -> String {
        assert_eq!(done.status(), 302, "the callback completes the login");
        format!("aisgate_session={}", set_cookie(done, "aisgate_session").expect("session cookie"))
    }

    /// A JIP/KAAS login started at `start` whose callback reaches `finish`.
    async fn kaas_login(&self, start: &Process, finish: &Process) -> String {
        let (resp, cookie) = self.begin(start, "jip", "/desk").await;
        let form = self.client.post(location(&resp)).form(&[("user", "0")]).send().await.unwrap();
        assert_eq!(form.status(), 303);
        let callback = finish.here(&location(&form), &self.public_base);
        let done = self.client.get(callback).header("cookie", cookie).send().await.unwrap();
        Pair::session_of(&done)
    }

    /// An OpenID login at `caais` started at `start` whose callback reaches `finish`.
    async fn oidc_login(&self, start: &Process, finish: &Process, return_to: &str) -> String {
        let (resp, cookie) = self.begin(start, "caais", return_to).await;
        let answer = self.client.get(location(&resp)).send().await.unwrap();
        assert_eq!(answer.status(), 303);
        let callback = finish.here(&location(&answer), &self.public_base);
        let done = self.client.get(callback).header("cookie", cookie).send().await.unwrap();
        Pair::session_of(&done)
    }

    /// The NIA form (ACS URL and fields) of a SAML login started at `start`.
    async fn saml_form(&self, start: &Process) -> (String, Vec<(String, String)>, String) {
        let (resp, cookie) = self.begin(start, "nia", "/desk").await;
        let (action, fields) = match resp.status().as_u16() {
            302 => (location(&resp), None),
            _ => {
                let (action, fields) = parse_form(&resp.text().await.unwrap());
                (action, Some(fields))
            }
        };
        let answer = match fields {
            None => self.client.get(action).send().await.unwrap(),
            Some(fields) => self.client.post(action).form(&fields).send().await.unwrap(),
        };
        assert_eq!(answer.status(), 200, "the simulated IdP answers with a form");
        let (acs, form) = parse_form(&answer.text().await.unwrap());
        (acs, form, cookie)
    }

    /// A SAML (NIA) login started and finished at `at`; the session cookie.
    async fn saml_login(&self, at: &Process) -> String {
        let (acs, form, cookie) = self.saml_form(at).await;
        let done = self.client.post(at.here(&acs, &self.public_base)).form(&form).header("cookie", cookie).send().await;
        Pair::session_of(&done.unwrap())
    }

    /// Logs the SAML session `cookie` out at `at`, which sends the browser to the IdP with a
    /// LogoutRequest; returns the IdP's answer: the URL of its LogoutResponse (at the public
    /// base URL), not yet delivered.
    async fn saml_logout_answer(&self, at: &Process, cookie: &str) -> String {
        let logout = self.client.post(at.url("/.aisgate/logout")).header("cookie", cookie).send().await.unwrap();
        assert_eq!(logout.status(), 302);
        let to_idp = location(&logout);
        assert!(to_idp.starts_with(&self.saml.base) && to_idp.contains("SAMLRequest="), "{to_idp}");
        let idp = self.client.get(&to_idp).send().await.unwrap();
        assert!(idp.status().is_redirection(), "the IdP answers: {}", idp.status());
        let answer = location(&idp);
        assert!(answer.contains("SAMLResponse="), "{answer}");
        answer
    }

    /// A request of the session `cookie` at `at` for `path`; the status.
    async fn status(&self, at: &Process, path: &str, cookie: &str) -> u16 {
        let resp = self.client.get(at.url(path)).header("cookie", cookie).send().await.unwrap();
        resp.status().as_u16()
    }

    /// Waits up to one second for the session to be over at `at` (401 for an API request).
    async fn ended_within_a_second(&self, at: &Process, cookie: &str, what: &str) {
        let started = Instant::now();
        loop {
            let status = self.status(at, "/desk/x", cookie).await;
            if status == 401 {
                return;
            }
            assert_eq!(status, 200, "{what}: only served or over");
            assert!(started.elapsed() < Duration::from_secs(1), "{what}: still served at {} after 1 s", at.name);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The audit records instance `at` wrote so far.
    fn audit_lines(&self, at: &Process) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.dir.join(format!("audit-{}.jsonl", at.name))).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
    }

    /// The identity headers the upstream got through `at`.
    async fn upstream_headers(&self, at: &Process, path: &str, cookie: &str) -> serde_json::Value {
        let resp = self.client.get(at.url(path)).header("cookie", cookie).send().await.unwrap();
        assert_eq!(resp.status(), 200, "served at {}", at.name);
        resp.json::<serde_json::Value>().await.unwrap()["headers"].clone()
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn redis_session(redis: &Redis) -> String {
    redis.session_extra()
}

#[tokio::test]
async fn two_gateway_processes_share_logins_sessions_logouts_and_replay_caches() {
    let Some(redis) = Redis::start().await else { return };
    let pair = Pair::start(redis_session(&redis)).await;
    let (a, b) = (&pair.a, &pair.b);

    // A login started at A completes at B; the session works at both.
    let kaas = pair.kaas_login(a, b).await;
    let at_a = pair.upstream_headers(a, "/desk/x", &kaas).await;
    let at_b = pair.upstream_headers(b, "/desk/x", &kaas).await;
    assert!(at_a["x-auth-subject"].is_string(), "{at_a}");
    assert_eq!(at_a["x-auth-subject"], at_b["x-auth-subject"], "the same identity at both");
    let confirmations =
        pair.kaas.calls.lock().unwrap().iter().filter(|c| c.contains("authConfirmationRequest")).count();
    assert_eq!(confirmations, 1, "one login at the IdP");
    // Logout at B ends it at A within a second.
    let logout = pair.client.post(b.url("/.aisgate/logout")).header("cookie", &kaas).send().await.unwrap();
    assert_eq!(logout.status(), 302);
    pair.ended_within_a_second(a, &kaas, "logout at B").await;

    // Back-channel logout at A ends the OpenID session served by B.
    let oidc = pair.oidc_login(b, b, "/desk").await;
    assert_eq!(pair.status(b, "/desk/x", &oidc).await, 200);
    let sid = pair.oidc.knobs().last_sid.clone().expect("sid");
    let token = pair.oidc.logout_token(None, Some(&sid), None).unwrap();
    let backchannel = |at: &Process| {
        pair.client.post(at.url("/.aisgate/backchannel-logout/caais")).form(&[("logout_token", token.clone())]).send()
    };
    assert_eq!(backchannel(a).await.unwrap().status(), 200);
    pair.ended_within_a_second(b, &oidc, "back-channel logout at A").await;
    // The same logout token at B: a replay (the jti cache is shared).
    let replay = backchannel(b).await.unwrap();
    let id = support::logs::request_id(&replay);
    assert_eq!(replay.status(), 400);
    assert!(b.line_with(&id, "back-channel logout token refused").contains("logout_token_replayed"));

    // SAML: logged in at B, the IdP's LogoutRequest (by SessionIndex) at A ends it at B.
    let saml = pair.saml_login(b).await;
    assert_eq!(pair.status(b, "/desk/x", &saml).await, 200);
    let index = pair.saml.knobs().last_session_index.clone();
    let (url, _) =
        pair.saml.logout_request_url("CZ/CZ/2e3883ee-7e0d-47cb-8fee-2ea231a58ee6", index.as_deref()).unwrap();
    let answer = pair.client.get(a.here(&url, &pair.public_base)).send().await.unwrap();
    assert_eq!(answer.status(), 302, "A answers the IdP");
    pair.ended_within_a_second(b, &saml, "SAML logout at A").await;

    // A SAML Response used at A is refused at B as a replay (IdP-initiated, so that only the
    // shared assertion-ID cache can catch it).
    pair.saml.knobs().edit = Some(Box::new(|s| {
        s.in_response_to = None;
        s.sc_in_response_to = None;
    }));
    let (acs, form, _) = pair.saml_form(a).await;
    let first = pair.client.post(a.here(&acs, &pair.public_base)).form(&form).send().await.unwrap();
    assert_eq!(first.status(), 302, "accepted at A");
    let again = pair.client.post(b.here(&acs, &pair.public_base)).form(&form).send().await.unwrap();
    let id = support::logs::request_id(&again);
    assert_eq!(again.status(), 400, "refused at B");
    assert!(set_cookie(&again, "aisgate_session").is_none());
    b.line_with(&id, "Assertion ID already used (replay)");
}

/// The names of every key in `redis` (the test's own server: `KEYS` is fine here).
async fn redis_keys(redis: &Redis) -> Vec<String> {
    let mut conn = redis.conn().await;
    redis::cmd("KEYS").arg("*").query_async(&mut conn).await.unwrap()
}

/// NIA's NameID need not be the session's subject (the PersonIdentifier): a LogoutRequest
/// naming only the NameID (no SessionIndex) is matched through the NameID → subject memory of
/// the login. That memory is in Redis now, so the request ends the session at whichever
/// instance it arrives (it used to be the memory of the instance that did the login: B found
/// nothing, answered UnknownPrincipal and the session lived on at A). The NameID is in no key
/// name.
#[tokio::test]
async fn a_name_id_only_saml_logout_at_one_process_ends_the_session_made_at_the_other() {
    let Some(redis) = Redis::start().await else { return };
    let pair = Pair::start(redis_session(&redis)).await;
    let (a, b) = (&pair.a, &pair.b);
    pair.saml.knobs().edit = Some(Box::new(|s| s.name_id = "nameid-ha-7f3a".to_owned()));
    let saml = pair.saml_login(a).await;
    let headers = pair.upstream_headers(b, "/desk/x", &saml).await;
    assert_ne!(headers["x-auth-subject"], "nameid-ha-7f3a", "the subject is not the NameID: {headers}");
    let keys = redis_keys(&redis).await;
    assert!(!keys.iter().any(|k| k.contains("nameid-ha")), "the NameID in a key name: {keys:?}");

    let (url, _) = pair.saml.logout_request_url("nameid-ha-7f3a", None).unwrap();
    let answer = pair.client.get(b.here(&url, &pair.public_base)).send().await.unwrap();
    let id = support::logs::request_id(&answer);
    assert_eq!(answer.status(), 302, "B answers the IdP");
    assert!(!b.log_text().lines().any(|l| l.contains(&id) && l.contains("matched no session")), "{}", b.log_text());
    pair.ended_within_a_second(a, &saml, "NameID-only SAML logout at B").await;
}

/// An SP-initiated SAML logout started at A whose LogoutResponse comes back through B (no
/// stickiness): B knows the LogoutRequest A sent and accepts the answer; the same
/// LogoutResponse again (at either instance) is refused as answering no pending request.
#[tokio::test]
async fn a_saml_logout_sent_by_one_process_is_answered_at_the_other_once() {
    let Some(redis) = Redis::start().await else { return };
    let pair = Pair::start(redis_session(&redis)).await;
    let (a, b) = (&pair.a, &pair.b);
    let saml = pair.saml_login(a).await;
    let answer = pair.saml_logout_answer(a, &saml).await;
    pair.ended_within_a_second(b, &saml, "logout at A").await;

    let done = pair.client.get(b.here(&answer, &pair.public_base)).send().await.unwrap();
    let id = support::logs::request_id(&done);
    assert_eq!(done.status(), 302, "accepted at B: {}", b.log_text());
    assert!(location(&done).contains("logged-out"), "{}", location(&done));
    b.line_with(&id, "IdP confirmed the logout");

    for at in [b, a] {
        let again = pair.client.get(at.here(&answer, &pair.public_base)).header("accept", "text/html");
        let again = again.send().await.unwrap();
        let id = support::logs::request_id(&again);
        assert_eq!(again.status(), 400, "a replay is refused at {}", at.name);
        let line = at.line_with(&id, "single logout message refused");
        assert!(line.contains("logout_unknown_response"), "{line}");
    }
}

/// 40 parallel requests of one session due for a token refresh, 20 at each process: one call
/// at the IdP's token endpoint, and every request sends the new token upstream.
#[tokio::test]
async fn forty_parallel_requests_over_two_gateway_processes_refresh_once() {
    let Some(redis) = Redis::start().await else { return };
    let pair = Pair::start(redis_session(&redis)).await;
    pair.oidc.knobs().access_token_ttl = Some(4);
    let cookie = pair.oidc_login(&pair.a, &pair.b, "/api").await;
    assert_eq!(pair.oidc.knobs().refresh_calls, 0);
    // Past half the token's lifetime (the processes run on the system clock).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let requests = (0..40)
        .map(|i| (pair.client.clone(), if i % 2 == 0 { pair.a.url("/api/x") } else { pair.b.url("/api/x") }))
        .collect();
    let sent = support::store_checks::authorizations_sent(requests, &cookie).await;
    assert_eq!(pair.oidc.knobs().refresh_calls, 1, "one refresh at the IdP for 40 requests on two processes");
    let last = pair.oidc.knobs().last_access_token.clone().unwrap();
    assert_eq!(sent.into_iter().collect::<Vec<_>>(), vec![Some(format!("Bearer {last}"))]);
}

#[tokio::test]
async fn redis_down_gives_503s_with_the_reason_at_both_processes_and_both_recover() {
    let Some(mut redis) = Redis::start().await else { return };
    let pair = Pair::start(redis_session(&redis)).await;
    let cookie = pair.kaas_login(&pair.a, &pair.a).await;
    // A SAML logout sent by A whose answer comes back while Redis is down.
    let saml = pair.saml_login(&pair.a).await;
    let answer = pair.saml_logout_answer(&pair.a, &saml).await;
    redis.stop().await;
    let stopped = Instant::now();
    for at in [&pair.a, &pair.b] {
        // A's copy of the session (read within local_cache_ms, 1 s) may serve it a moment
        // longer; then 503. Never a request without its session.
        let resp = loop {
            let resp = pair.client.get(at.url("/desk/x")).header("cookie", &cookie).send().await.unwrap();
            if resp.status() != 200 {
                break resp;
            }
            assert!(stopped.elapsed() < Duration::from_millis(1500), "{}: served from its copy beyond 1 s", at.name);
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let id = support::logs::request_id(&resp);
        assert_eq!(resp.status(), 503, "{}: no session read, no access", at.name);
        assert!(!resp.text().await.unwrap().contains("x-auth-subject"), "nothing reached the app");
        at.line_with(&id, "session store failed");
        let start = pair.client.get(at.url("/.aisgate/login?return=%2Fdesk&provider=jip")).send().await.unwrap();
        let id = support::logs::request_id(&start);
        assert_eq!(start.status(), 503, "{}: no login without the store", at.name);
        at.line_with(&id, "session store unavailable: the attempt cannot be counted (fail closed)");
        let ready = at.store_ready(false).await;
        assert!(ready["session_store"]["detail"].as_str().unwrap_or_default().starts_with("redis: "), "{ready}");
        // Counted by reason at /metrics: an outage, not an ACL refusal.
        let errors = |reason: &str| format!("aisgate_session_store_errors_total{{reason=\"{reason}\"}}");
        assert!(metric(at, &errors("unavailable")).await.is_some_and(|n| n >= 2.0), "{}: counted", at.name);
        assert_eq!(metric(at, &errors("acl_denied")).await, Some(0.0), "{}", at.name);
    }
    // The IdP's LogoutResponse cannot be checked against the sent requests: refused with the
    // reason, not accepted unchecked; it is still awaited when Redis is back.
    let b = &pair.b;
    let unchecked = pair.client.get(b.here(&answer, &pair.public_base)).header("accept", "text/html").send().await;
    let unchecked = unchecked.unwrap();
    let id = support::logs::request_id(&unchecked);
    assert_eq!(unchecked.status(), 503, "no answer accepted unchecked");
    assert!(b.line_with(&id, "single logout message could not be checked").contains("store_unavailable"));
    redis.restart().await;
    for at in [&pair.a, &pair.b] {
        at.store_ready(true).await;
        assert_eq!(pair.status(at, "/desk/x", &cookie).await, 200, "{}: the persisted session works again", at.name);
        assert!(at.log_text().contains("session store (redis) available again"));
    }
    let done = pair.client.get(b.here(&answer, &pair.public_base)).send().await.unwrap();
    assert_eq!(done.status(), 302, "accepted once Redis is back");
}

/// One master, one replica, three Sentinels (quorum 2); the master is killed under two
/// processes. Sessions survive, no request is served without its session meanwhile, and the
/// time until both processes serve again is the failover time (printed for the report).
#[tokio::test]
async fn sentinel_failover_under_two_gateway_processes() {
    let Some(mut master) = Redis::start().await else { return };
    let replica_of = vec!["--replicaof".into(), "127.0.0.1".into(), master.port.to_string()];
    let Some(replica) = Redis::start_with(replica_of, false).await else { return };
    let mut sentinels = Vec::new();
    for _ in 0..3 {
        let Some(sentinel) = Sentinel::start_with_quorum(&master, 2).await else { return };
        sentinels.push(sentinel);
    }
    let list: Vec<String> = sentinels.iter().map(|s| format!("\"127.0.0.1:{}\"", s.port)).collect();
    let extra = format!(
        "store = \"redis\"\n[session.redis]\nsentinels = [{}]\nmaster_name = \"mymaster\"\ntimeout_ms = 300\n",
        list.join(", ")
    );
    let pair = Pair::start(extra).await;
    let cookie = pair.kaas_login(&pair.a, &pair.b).await;
    assert_eq!(pair.status(&pair.b, "/desk/x", &cookie).await, 200);
    let mut conn = master.conn().await;
    // WAIT in short steps (below the client's response timeout) until the replica has it.
    let mut acked = 0;
    for _ in 0..50 {
        acked = redis::cmd("WAIT").arg(1).arg(200).query_async::<i64>(&mut conn).await.unwrap();
        if acked == 1 {
            break;
        }
    }
    assert_eq!(acked, 1, "the replica has the session before the master dies");
    drop(conn);

    // Past the instances' local copies (local_cache_ms, 1 s): the figure is Redis's failover,
    // not a copy's remaining life.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    master.kill();
    let killed = Instant::now();
    let mut down = [false, false];
    let mut statuses = std::collections::BTreeMap::<u16, u32>::new();
    let mut back = [None, None];
    while back.iter().any(Option::is_none) {
        for (i, at) in [&pair.a, &pair.b].into_iter().enumerate() {
            let status = pair.status(at, "/desk/x", &cookie).await;
            *statuses.entry(status).or_default() += 1;
            assert!(status == 200 || status == 503, "{}: {status} during the failover", at.name);
            // Without a session: never the app.
            let anonymous = pair.client.get(at.url("/desk/x")).send().await.unwrap().status();
            assert_ne!(anonymous, 200, "{}: served without a session", at.name);
            down[i] |= status == 503;
            if status == 200 && down[i] && back[i].is_none() {
                back[i] = Some(killed.elapsed());
            }
        }
        assert!(killed.elapsed() < Duration::from_secs(30), "no failover within 30 s: {statuses:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "FIGURE sentinel failover (down-after 500 ms, quorum 2 of 3): A serves again after {:?}, B after {:?}; statuses {statuses:?}",
        back[0].unwrap(),
        back[1].unwrap()
    );
    let mut conn = replica.conn().await;
    let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut conn).await.unwrap();
    assert_eq!(role.first(), Some(&redis::Value::BulkString(b"master".to_vec())), "the replica was promoted");
    // Writes reach the new master: a login through both works.
    let fresh = pair.kaas_login(&pair.b, &pair.a).await;
    assert_eq!(pair.status(&pair.b, "/desk/x", &fresh).await, 200);
}

/// The value of the metric series `series` (name and labels) at instance `at`.
async fn metric(at: &Process, series: &str) -> Option<f64> {
    let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", at.ops)).await.ok()?.text().await.ok()?;
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Sessions that Redis ends by TTL are audited at a pair exactly once — by the instance whose
/// sweep removed the expired session from the live set — with the memory store's reasons:
/// `idle` for a session left alone past `idle_timeout_secs`, `expired` for one kept busy
/// until `absolute_timeout_secs`; the record names the session and user as the login's did,
/// with no request origin. (Before: Redis expiries were not audited at all.)
#[tokio::test]
async fn a_session_ending_by_expiry_is_audited_once_by_the_pair_with_its_reason() {
    let Some(redis) = Redis::start().await else { return };
    let timeouts = "idle_timeout_secs = 2\nabsolute_timeout_secs = 4\n";
    let audit = "file = \"{dir}/audit.jsonl\"\n".to_owned();
    let pair = Pair::start_audited(format!("{timeouts}{}", redis_session(&redis)), audit).await;
    let (a, b) = (&pair.a, &pair.b);
    // Two logins, both finished at B (which writes both login_success records).
    let left_alone = pair.kaas_login(a, b).await;
    let kept_busy = pair.kaas_login(b, b).await;
    let logins: Vec<serde_json::Value> =
        pair.audit_lines(b).into_iter().filter(|l| l["event"] == "login_success").collect();
    assert_eq!(logins.len(), 2, "{logins:#?}");
    assert_eq!(pair.status(a, "/desk/x", &left_alone).await, 200);

    // The busy session is used at both instances until its absolute end refuses it.
    let started = Instant::now();
    let mut turn = 0;
    loop {
        let at = if turn % 2 == 0 { a } else { b };
        turn += 1;
        match pair.status(at, "/desk/x", &kept_busy).await {
            200 => {}
            401 => break,
            other => panic!("only served or over, got {other}"),
        }
        assert!(started.elapsed() < Duration::from_secs(10), "still served after its 4 s absolute end");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(started.elapsed() >= Duration::from_secs(2), "kept past its idle timeout by use");
    assert_eq!(pair.status(b, "/desk/x", &left_alone).await, 401, "idle past 2 s");

    // Both expiries found and claimed (each instance's sweep has run since: its count of
    // live sessions is 0), then the audit records of both instances.
    let deadline = Instant::now() + Duration::from_secs(20);
    let ends = loop {
        let ends: Vec<serde_json::Value> =
            [a, b].iter().flat_map(|at| pair.audit_lines(at)).filter(|l| l["event"] == "session_end").collect();
        let swept = metric(a, "aisgate_active_sessions").await == Some(0.0)
            && metric(b, "aisgate_active_sessions").await == Some(0.0);
        if ends.len() >= 2 && swept {
            break ends;
        }
        assert!(Instant::now() < deadline, "expiry records so far: {ends:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let described = |l: &serde_json::Value| (l["session"].clone(), l["user"].clone(), l["reason"].clone());
    let mut got: Vec<_> = ends.iter().map(described).collect();
    let mut want = vec![
        (logins[0]["session"].clone(), logins[0]["user"].clone(), "idle".into()),
        (logins[1]["session"].clone(), logins[1]["user"].clone(), "expired".into()),
    ];
    got.sort_by_key(|t| t.0.to_string());
    want.sort_by_key(|t| t.0.to_string());
    assert_eq!(got, want, "exactly one record per expiry over both instances: {ends:#?}");
    for end in &ends {
        assert!(end.get("request_id").is_none() && end.get("client_ip").is_none(), "no request: {end}");
        assert_eq!((&end["provider"], &end["protocol"]), (&logins[0]["provider"], &logins[0]["protocol"]), "{end}");
    }
}
