//! The shared session store on a real Redis (issue 10 items 1–4): two gateway instances on
//! one `redis-server` started by the test itself (loopback, free port, temporary directory,
//! no system service). Skipped with a message when `redis-server` is missing, unless
//! `AISGATE_REQUIRE_PEERS` is set (`tools/test`), where a skip is a failure.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aisgate::clock::Clock;
use aisgate::identity::Identity;
use aisgate::session::keyring::Keyring;
use aisgate::session::redis::{RedisStore, RedisStoreOptions};
use aisgate::session::{PendingLogin, Session, SessionStore, StoreError, StoreKey};
use aisgate::sim::stack::StackOptions;
use support::instance::Instance;
use support::redis_server::{Redis, Sentinel};
use support::{location, logs, store_checks, Gateway};

async fn get_json(gw: &Gateway, path: &str, cookie: &str) -> reqwest::Response {
    gw.client.get(gw.url(path)).header("accept", "application/json").header("cookie", cookie).send().await.unwrap()
}

async fn readyz(ops: SocketAddr) -> (u16, serde_json::Value) {
    let resp = reqwest::get(format!("http://{ops}/readyz")).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// Two apps: the HTTP echo for every path, and a WebSocket echo under `/live`.
async fn apps_with_websocket() -> String {
    format!(
        "[[app]]\nname = \"live\"\nupstream = \"{}\"\nproviders = [\"jip\"]\npath_prefix = \"/live\"\n\n\
         [[app]]\nname = \"echo\"\nupstream = \"{{upstream}}\"\nproviders = [\"jip\"]\npublic_paths = [\"/public\"]\n",
        support::websocket_echo().await
    )
}

// ---------------------------------------------------------------------------------------
// Two instances on one Redis
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_session_made_at_one_instance_works_at_the_other_and_logout_there_ends_it_everywhere() {
    logs::capture();
    let Some(redis) = Redis::start().await else { return };
    let a = Gateway::start(StackOptions {
        session_extra: redis.session_extra(),
        apps: Some(apps_with_websocket().await),
        ..Default::default()
    })
    .await;
    let b = Instance::of(&a).await;
    let (_, ready) = readyz(b.ops).await;
    assert_eq!(ready["session_store"]["backend"], "redis", "{ready}");

    let cookie = a.login().await;
    let at_a = get_json(&a, "/x", &cookie).await;
    assert_eq!(at_a.status(), 200);
    let at_a: serde_json::Value = at_a.json().await.unwrap();
    let at_b = b.get_json("/x", &cookie).await;
    assert_eq!(at_b.status(), 200, "instance B serves the session made at A");
    let at_b: serde_json::Value = at_b.json().await.unwrap();
    assert!(at_a["headers"]["x-auth-subject"].is_string());
    assert_eq!(at_b["headers"]["x-auth-subject"], at_a["headers"]["x-auth-subject"], "same identity at B");
    // The figure for the issue: what one (KAAS demo user) session costs in Redis.
    let mut conn = redis.conn().await;
    let sessions: Vec<String> = redis::cmd("KEYS").arg("aisgate:{s:??}:*").query_async(&mut conn).await.unwrap();
    assert_eq!(sessions.len(), 1);
    let record: usize = redis::cmd("STRLEN").arg(&sessions[0]).query_async(&mut conn).await.unwrap();
    let memory: usize = redis::cmd("MEMORY").arg("USAGE").arg(&sessions[0]).query_async(&mut conn).await.unwrap();
    eprintln!("one session in Redis: record {record} bytes, MEMORY USAGE {memory} bytes (plus its index entries)");

    // A WebSocket of the session, tunnelled by A.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}/live", a.addr).into_client_request().unwrap();
    request.headers_mut().insert("cookie", cookie.parse().unwrap());
    let (mut ws, resp) = tokio_tungstenite::connect_async(request).await.expect("upgrade through A");
    assert_eq!(resp.status(), 101);

    // Logout at B…
    let logout = b.client.post(b.url("/.aisgate/logout")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(logout.status(), 302);
    // …closes A's tunnel within a second (the `ended` channel) …
    let started = tokio::time::Instant::now();
    loop {
        use futures_util::StreamExt;
        match tokio::time::timeout_at(started + Duration::from_secs(1), ws.next()).await {
            Err(_) => panic!("the WebSocket at A is still open 1 s after the logout at B"),
            Ok(None) | Ok(Some(Err(_))) => break,
            Ok(Some(Ok(msg))) if msg.is_close() => break,
            Ok(Some(Ok(_))) => {}
        }
    }
    let closed = logs::text()
        .lines()
        .filter(|l| l.contains("upgraded connection closed: its session is over") && l.contains("session ended"))
        .count();
    assert!(closed >= 1, "A logged why it closed the tunnel");
    // …and A no longer knows the session: login required, the request never reaches the app.
    let after = a.navigate("/x", Some(&cookie)).await;
    assert_eq!(after.status(), 302, "logged out at B means logged out at A");
    assert!(!location(&after).starts_with(&a.url("/")), "to the IdP, not the app: {}", location(&after));
}

#[tokio::test]
async fn a_login_started_at_one_instance_completes_at_the_other_exactly_once() {
    logs::capture();
    let Some(redis) = Redis::start().await else { return };
    let a = Gateway::start(StackOptions { session_extra: redis.session_extra(), ..Default::default() }).await;
    let b = Instance::of(&a).await;
    store_checks::assert_login_completes_at_the_other_once(&a, &b).await;
}

/// The `Authorization` the upstream received for `path` through `base` (A's or B's URL).
async fn upstream_authorization(client: &reqwest::Client, url: String, cookie: &str) -> Option<String> {
    let resp = client.get(url).header("cookie", cookie).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    body["headers"]["authorization"].as_str().map(str::to_owned)
}

/// Two instances on one Redis serving an `upstream_bearer` app behind the CAAIS-like IdP (access
/// tokens of 4 s), and a session logged in at A; `None` without `redis-server`.
async fn bearer_pair() -> Option<(Redis, Gateway, Instance, String)> {
    logs::capture();
    let redis = Redis::start().await?;
    let (a, b, cookie) = store_checks::bearer_pair(redis.session_extra()).await;
    Some((redis, a, b, cookie))
}

/// Refreshed upstream tokens must reach the shared store: otherwise the next request (at any
/// instance) reads the old record, refreshes again with a refresh token the IdP already
/// rotated away, and the user is logged out.
#[tokio::test]
async fn refreshed_upstream_tokens_are_kept_in_the_shared_store_for_both_instances() {
    let Some((_redis, a, b, cookie)) = bearer_pair().await else { return };
    // Past half the token's lifetime: due for refresh.
    let due = || a.clock.advance(Duration::from_millis(2050));

    due();
    let at_a = upstream_authorization(&a.client, a.url("/api/x"), &cookie).await;
    assert_eq!(a.oidc[0].knobs().refresh_calls, 1);
    let at_b = upstream_authorization(&b.client, b.url("/api/x"), &cookie).await;
    assert_eq!(at_b, at_a, "B sends the token A refreshed");
    assert_eq!(a.oidc[0].knobs().refresh_calls, 1, "B did not refresh again");
    due();
    // The simulator rotated the refresh token at the first refresh: this one succeeds only
    // with the rotated token, which B must have read from the store.
    let again = upstream_authorization(&b.client, b.url("/api/x"), &cookie).await;
    assert_eq!(a.oidc[0].knobs().refresh_calls, 2);
    let last = a.oidc[0].knobs().last_access_token.clone().unwrap();
    assert_eq!(again, Some(format!("Bearer {last}")));
    assert_eq!(upstream_authorization(&a.client, a.url("/api/x"), &cookie).await, again, "and A sees it too");
}

/// Issue 10 item 2: 40 parallel requests of one session due for refresh, spread over both
/// instances, cause exactly one call at the IdP's token endpoint; every request sends the new
/// token. (Each request reads its own copy of the session from Redis, so without the lease in
/// the store every copy would refresh.)
#[tokio::test]
async fn forty_parallel_requests_over_both_instances_refresh_the_tokens_once() {
    let Some((_redis, a, b, cookie)) = bearer_pair().await else { return };
    store_checks::assert_forty_requests_refresh_once(&a, &b, &cookie).await;
}

/// The apps of the SAML tests: NIA (and KAAS) in front of the header echo.
const SAML_APPS: &str = "[[app]]\nname = \"desk\"\nupstream = \"{upstream}\"\nproviders = [\"nia\", \"jip\"]\n";

/// Issue 10 item 2: the SAML assertion-ID replay cache is shared. An IdP-initiated Response
/// (no request to answer, so only the replay cache can catch it) accepted at A is refused at
/// B, naming the replay.
#[tokio::test]
async fn a_saml_response_used_at_one_instance_is_refused_at_the_other_as_a_replay() {
    logs::capture();
    let Some(redis) = Redis::start().await else { return };
    let (a, b) = store_checks::saml_pair(SAML_APPS, "", redis.session_extra()).await;
    store_checks::assert_saml_replay_refused(&a, &b).await;
}

/// Issue 10 item 2: the `jti` cache of back-channel logout tokens is shared: the token that
/// ended a session at A is refused at B as replayed.
#[tokio::test]
async fn a_logout_token_used_at_one_instance_is_refused_at_the_other() {
    logs::capture();
    let Some(redis) = Redis::start().await else { return };
    let a = Gateway::start(StackOptions {
        oidc: vec![support::caais_provider("")],
        apps: Some("[[app]]\nname = \"desk\"\nupstream = \"{upstream}\"\nproviders = [\"caais\"]\n".into()),
        session_extra: redis.session_extra(),
        ..Default::default()
    })
    .await;
    let b = Instance::of(&a).await;
    let cookie = a.oidc_login("caais", "/desk").await;
    assert_eq!(b.get_json("/desk", &cookie).await.status(), 200, "B serves the session");
    let sid = a.oidc[0].knobs().last_sid.clone().expect("the ID token's sid");
    let token = a.oidc[0].logout_token(None, Some(&sid), None).unwrap();
    let post = |url: String| {
        let token = token.clone();
        let client = a.client.clone();
        async move { client.post(url).form(&[("logout_token", token)]).send().await.unwrap() }
    };
    let at_a = post(a.url("/.aisgate/backchannel-logout/caais")).await;
    assert_eq!(at_a.status(), 200, "A accepts the logout token");
    // B's copy of the session is dropped by the `ended` message (at once; 1 s at the latest).
    let started = tokio::time::Instant::now();
    loop {
        let status = b.client.get(b.url("/desk")).header("cookie", &cookie).send().await.unwrap().status();
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(started.elapsed() < Duration::from_secs(1), "the session served by B outlived the logout at A by 1 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let at_b = post(b.url("/.aisgate/backchannel-logout/caais")).await;
    let id = logs::request_id(&at_b);
    assert_eq!(at_b.status(), 400, "the same token at B is a replay");
    let line = logs::line_with(&id, "back-channel logout token refused");
    assert!(line.contains("logout_token_replayed"), "{line}");
}

/// Issue 10 item 2: rate limits count per client across instances, not per instance: with
/// `login_starts_per_minute = 4`, two starts at A and two at B use the client's budget, and
/// the fifth is refused at either. The same for one-time-credential attempts (10 per 5 min).
#[tokio::test]
async fn login_starts_and_one_time_credential_attempts_are_counted_across_instances() {
    logs::capture();
    let Some(redis) = Redis::start().await else { return };
    let a = Gateway::start(StackOptions {
        server_extra: "login_starts_per_minute = 4\n".into(),
        provider_extra: "login_mode = \"direct\"".into(),
        session_extra: redis.session_extra(),
        ..Default::default()
    })
    .await;
    let b = Instance::of(&a).await;
    let at_b = |path: &str| b.client.get(b.url(path)).header("accept", "text/html,application/xhtml+xml").send();
    for i in 0..2 {
        assert_eq!(a.navigate(&format!("/a{i}"), None).await.status(), 302, "start {i} at A");
        assert_eq!(at_b(&format!("/b{i}")).await.unwrap().status(), 302, "start {i} at B");
    }
    let fifth = at_b("/b3").await.unwrap();
    let id = logs::request_id(&fifth);
    assert_eq!(fifth.status(), 429, "the client's fifth start within the minute, whichever instance");
    let line = logs::line_with(&id, "login starts rate-limited");
    assert!(line.contains("too many attempts from this client address"), "{line}");
    assert_eq!(a.navigate("/a3", None).await.status(), 429, "and at A too");

    let direct = |url: String| {
        let client = a.client.clone();
        async move { client.post(url).form(&[("user", "x"), ("password", "y")]).send().await.unwrap() }
    };
    for i in 0..10 {
        let url = if i % 2 == 0 { a.url("/.aisgate/direct/jip") } else { b.url("/.aisgate/direct/jip") };
        assert_ne!(direct(url).await.status(), 429, "attempt {i}");
    }
    let eleventh = direct(b.url("/.aisgate/direct/jip")).await;
    let id = logs::request_id(&eleventh);
    assert_eq!(eleventh.status(), 429, "the 11th one-time-credential attempt over both instances");
    logs::line_with(&id, "one-time credential attempts rate-limited");
}

#[tokio::test]
async fn redis_down_gives_503_with_the_reason_and_everything_recovers_when_it_is_back() {
    logs::capture();
    let Some(mut redis) = Redis::start().await else { return };
    let a = Gateway::start(StackOptions { session_extra: redis.session_extra(), ..Default::default() }).await;
    let cookie = a.login().await;
    let before = readyz(a.ops).await;
    assert_eq!(before.1["session_store"]["ready"], true, "{:?}", before.1);

    redis.stop().await;

    // A request needing its session: 503 page, never the app — once the instance's copy of
    // the session (read within `local_cache_ms`, 1 s) is used up; until then the session it
    // read is served, never a request without one.
    let stopped = tokio::time::Instant::now();
    let resp = loop {
        let resp = get_json(&a, "/x", &cookie).await;
        if resp.status() != 200 {
            break resp;
        }
        assert!(stopped.elapsed() < Duration::from_millis(1500), "served from the local copy for more than 1 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let id = logs::request_id(&resp);
    assert_eq!(resp.status(), 503, "no session read, no access");
    let body = resp.text().await.unwrap();
    assert!(!body.contains("x-auth-subject"), "nothing reached the app: {body}");
    logs::line_with(&id, "session store failed");
    // A new login: 503 page, no redirect to the IdP. The shared login-start counter is the
    // first to need Redis: an attempt that cannot be counted is not made (fail closed).
    let start = a.navigate("/y", None).await;
    let id = logs::request_id(&start);
    assert_eq!(start.status(), 503, "a login that cannot be counted and stored is not started");
    assert!(start.text().await.unwrap().contains("<html"), "a page, not an empty answer");
    logs::line_with(&id, "session store unavailable: the attempt cannot be counted (fail closed)");
    // /readyz says why.
    let (status, ready) = readyz(a.ops).await;
    assert_eq!(status, 503);
    assert_eq!(ready["session_store"]["backend"], "redis");
    assert_eq!(ready["session_store"]["ready"], false);
    let detail = ready["session_store"]["detail"].as_str().unwrap_or_default().to_owned();
    assert!(detail.starts_with("redis: "), "{ready}");
    assert!(logs::text().contains("session store (redis) unavailable"));

    redis.restart().await;

    // Recovery by itself (reconnect; the health ping clears /readyz within about a second).
    let mut recovered = false;
    for _ in 0..100 {
        if readyz(a.ops).await.1["session_store"]["ready"] == true {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recovered, "/readyz still failing after Redis came back: {:?}", readyz(a.ops).await);
    assert!(logs::text().contains("session store (redis) available again"));
    let resp = get_json(&a, "/x", &cookie).await;
    assert_eq!(resp.status(), 200, "the session (persisted by Redis) works again");
    let (status, _) = (a.navigate("/z", None).await.status(), ());
    assert_eq!(status, 302, "new logins start again");
}

#[tokio::test]
async fn a_gateway_starts_while_redis_is_down_and_is_not_ready_until_it_is_up() {
    logs::capture();
    let Some(mut redis) = Redis::start().await else { return };
    let session_extra = redis.session_extra();
    redis.stop().await;
    let a = Gateway::start(StackOptions { session_extra, ..Default::default() }).await;
    let start = a.navigate("/y", None).await;
    assert_eq!(start.status(), 503);
    let mut ready = readyz(a.ops).await;
    for _ in 0..60 {
        if ready.1["session_store"]["ready"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        ready = readyz(a.ops).await;
    }
    assert_eq!(ready.0, 503, "{:?}", ready.1);
    assert_eq!(ready.1["session_store"]["ready"], false, "{:?}", ready.1);
    redis.restart().await;
    for _ in 0..100 {
        if a.navigate("/y", None).await.status() == 302 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("logins did not recover after Redis came up");
}

#[tokio::test]
async fn an_acl_user_limited_to_the_stores_commands_and_keys_works_and_a_wrong_password_is_named() {
    logs::capture();
    let Some(redis) = Redis::start().await else { return };
    let mut conn = redis.conn().await;
    // What the store needs, nothing more: its key prefix, its channel, these commands.
    let acl = "reset on >s3cret-pw resetkeys ~aisgate:* resetchannels &aisgate:* -@all +@connection \
               +get +set +del +getdel +incr +exists +pexpire +sadd +srem +sunion +zadd +zrem +zrangebyscore +zcard +evalsha +script|load +publish +subscribe +multi +exec";
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("aisgate")
        .arg(acl.split_whitespace().collect::<Vec<_>>())
        .query_async(&mut conn)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (good, bad) = (dir.path().join("good"), dir.path().join("bad"));
    std::fs::write(&good, "s3cret-pw\n").unwrap();
    std::fs::write(&bad, "wrong-pw\n").unwrap();
    let with = |file: &std::path::Path| {
        format!("{}username = \"aisgate\"\npassword_file = \"{}\"\n", redis.session_extra(), file.display())
    };

    let a = Gateway::start(StackOptions { session_extra: with(&good), ..Default::default() }).await;
    let cookie = a.login().await;
    let used = get_json(&a, "/x", &cookie).await;
    let id = logs::request_id(&used);
    assert_eq!(used.status(), 200, "the limited ACL user runs the store: {:?}", logs::lines_for(&id));
    let logout = a.client.post(a.url("/.aisgate/logout")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(logout.status(), 302);
    assert_eq!(a.navigate("/x", Some(&cookie)).await.status(), 302, "logged out");

    let b = Gateway::start(StackOptions { session_extra: with(&bad), ..Default::default() }).await;
    let start = b.navigate("/y", None).await;
    assert_eq!(start.status(), 503, "no store, no login");
    let (_, ready) = readyz(b.ops).await;
    let detail = ready["session_store"]["detail"].as_str().unwrap_or_default().to_owned();
    assert!(detail.contains("Password authentication failed"), "{ready}");
}

/// Two throw-away PKIs (the server's and another) in temporary directories (kept alive by the
/// first element), and the `redis-server` arguments for TLS with the first.
fn tls_pkis() -> ([tempfile::TempDir; 2], aisgate::sim::certs::TestPki, aisgate::sim::certs::TestPki, Vec<String>) {
    logs::capture();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let pki = aisgate::sim::certs::generate(dirs[0].path()).unwrap();
    let other = aisgate::sim::certs::generate(dirs[1].path()).unwrap();
    let args = vec![
        "--tls-cert-file".to_owned(),
        pki.server_cert.display().to_string(),
        "--tls-key-file".to_owned(),
        pki.server_key.display().to_string(),
        "--tls-ca-cert-file".to_owned(),
        pki.ca_cert.display().to_string(),
        "--tls-auth-clients".to_owned(),
        "no".to_owned(),
    ];
    (dirs, pki, other, args)
}

#[tokio::test]
async fn tls_to_redis_trusts_the_configured_ca_only() {
    let (_dirs, pki, other, args) = tls_pkis();
    let Some(redis) = Redis::start_with(args, true).await else { return };
    let with = |ca: &std::path::Path| {
        format!(
            "store = \"redis\"\n[session.redis]\nurl = \"rediss://localhost:{}\"\nca_file = \"{}\"\ntimeout_ms = 500\n",
            redis.port,
            ca.display()
        )
    };
    let a = Gateway::start(StackOptions { session_extra: with(&pki.ca_cert), ..Default::default() }).await;
    let cookie = a.login().await;
    assert_eq!(get_json(&a, "/x", &cookie).await.status(), 200, "sessions over TLS");

    assert_untrusted_is_not_used(&with(&other.ca_cert), "a server the CA does not vouch for is not used").await;
}

/// A gateway whose store `session_extra` names a CA that does not vouch for the server:
/// requests needing a session get 503 and `/readyz` names the certificate problem.
async fn assert_untrusted_is_not_used(session_extra: &str, what: &str) {
    let b = Gateway::start(StackOptions { session_extra: session_extra.to_owned(), ..Default::default() }).await;
    assert_eq!(b.navigate("/y", None).await.status(), 503, "{what}");
    let (_, ready) = readyz(b.ops).await;
    let detail = ready["session_store"]["detail"].as_str().unwrap_or_default().to_lowercase();
    assert!(detail.contains("certificate"), "{ready}");
}

/// TLS with Sentinel: with `ca_file`, the gateway speaks TLS to the Sentinels and to the master
/// they name, and trusts only that CA for both.
#[tokio::test]
async fn tls_with_sentinel_trusts_the_configured_ca_only() {
    let (_dirs, pki, other, mut args) = tls_pkis();
    args.extend(["--tls-replication".to_owned(), "yes".to_owned()]);
    let Some(master) = Redis::start_with(args, true).await else { return };
    let Some(sentinel) = Sentinel::start_tls(&master, &pki).await else { return };
    let with = |ca: &std::path::Path| {
        format!(
            "store = \"redis\"\n[session.redis]\nsentinels = [\"127.0.0.1:{}\"]\nmaster_name = \"mymaster\"\n\
             ca_file = \"{}\"\ntimeout_ms = 500\n",
            sentinel.port,
            ca.display()
        )
    };
    let a = Gateway::start(StackOptions { session_extra: with(&pki.ca_cert), ..Default::default() }).await;
    let mut cookie = None;
    // The Sentinel learns about the master within a moment of starting.
    for _ in 0..100 {
        let start = a.navigate("/x", None).await;
        if start.status() == 302 {
            cookie = Some(a.login().await);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cookie = cookie.expect("logins through the TLS Sentinel");
    assert_eq!(get_json(&a, "/x", &cookie).await.status(), 200, "sessions over TLS via the Sentinel");
    assert!(logs::text().contains("session store (redis): master from the sentinels"));

    assert_untrusted_is_not_used(&with(&other.ca_cert), "a Sentinel the CA does not vouch for is not used").await;
}

#[tokio::test]
async fn sentinel_failover_keeps_sessions_and_no_request_passes_without_one() {
    logs::capture();
    let Some(mut master) = Redis::start().await else { return };
    let Some(replica) =
        Redis::start_with(vec!["--replicaof".into(), "127.0.0.1".into(), master.port.to_string()], false).await
    else {
        return;
    };
    let Some(sentinel) = Sentinel::start(&master).await else { return };
    let extra = format!(
        "store = \"redis\"\n[session.redis]\nsentinels = [\"127.0.0.1:{}\"]\nmaster_name = \"mymaster\"\ntimeout_ms = 300\n",
        sentinel.port
    );
    let a = Gateway::start(StackOptions { session_extra: extra, ..Default::default() }).await;
    let cookie = a.login().await;
    assert_eq!(get_json(&a, "/x", &cookie).await.status(), 200);
    // The session is on the replica before the master dies.
    let mut conn = master.conn().await;
    let mut acked = 0;
    for _ in 0..40 {
        acked = redis::cmd("WAIT").arg(1).arg(200).query_async::<i64>(&mut conn).await.unwrap();
        if acked == 1 {
            break;
        }
    }
    assert_eq!(acked, 1, "the replica acknowledged the writes");
    drop(conn);

    master.kill();
    let killed = std::time::Instant::now();
    let mut seen = std::collections::BTreeMap::<u16, u32>::new();
    let took = loop {
        let resp = get_json(&a, "/x", &cookie).await;
        let status = resp.status().as_u16();
        *seen.entry(status).or_default() += 1;
        assert!(
            status == 200 || status == 503,
            "during the failover: {status} (never a login, never without a session)"
        );
        // Without a session: never the app.
        assert_ne!(a.navigate("/x", None).await.status(), 200);
        if status == 200 {
            break killed.elapsed();
        }
        assert!(killed.elapsed() < Duration::from_secs(20), "no failover within 20 s: {seen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("sentinel failover: the session was served again {took:?} after the master was killed ({seen:?})");
    assert!(logs::text().contains("session store (redis): master from the sentinels"));
    // Writes go to the new master: a new login works.
    let fresh = a.login().await;
    assert_eq!(get_json(&a, "/x", &fresh).await.status(), 200);
    let mut conn = replica.conn().await;
    let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut conn).await.unwrap();
    assert_eq!(role.first(), Some(&redis::Value::BulkString(b"master".to_vec())), "the replica was promoted");
}

// ---------------------------------------------------------------------------------------
// The store itself, on the real server
// ---------------------------------------------------------------------------------------

fn keyring() -> Keyring {
    Keyring::from_secrets(vec![("k1".into(), vec![7u8; 32])]).unwrap()
}

fn store(redis: &Redis, prefix: &str) -> RedisStore {
    store_with_cache(redis, prefix, 0).unwrap()
}

/// A store whose instance-local copies live `local_cache_ms`.
fn store_with_cache(
    redis: &Redis,
    prefix: &str,
    local_cache_ms: u64,
) -> Result<RedisStore, aisgate::session::redis::RedisSetupError> {
    store_with(redis, &format!("key_prefix = \"{prefix}\"\nlocal_cache_ms = {local_cache_ms}\n"))
}

/// A store with these `[session.redis]` lines besides its url.
fn store_with(redis: &Redis, extra: &str) -> Result<RedisStore, aisgate::session::redis::RedisSetupError> {
    let cfg: aisgate::config::RedisConfig =
        toml::from_str(&format!("url = \"{}\"\ntimeout_ms = 500\n{extra}", redis.url())).unwrap();
    let opts = store_checks::store_options(&Clock::system());
    RedisStore::new(&cfg, keyring().record_keys(), opts, &|_| None)
}

fn user_session(provider: &str, sub: &str, sid: Option<&str>) -> Arc<Session> {
    let mut identity = Identity { provider: provider.into(), subject: sub.into(), ..Identity::default() };
    if let Some(sid) = sid {
        identity.attributes.insert("sid".into(), vec![sid.into()]);
    }
    Arc::new(Session::new(identity, aisgate::provider::LogoutState::None, 3600, Clock::system().now_unix()))
}

fn pending() -> PendingLogin {
    PendingLogin {
        provider: "jip".into(),
        return_to: "/".into(),
        created_at: 0,
        protocol_state: aisgate::provider::PendingState::new(aisgate::provider::ProtocolState::Kaas),
        min_loa: None,
        login_base: None,
        handoff: None,
        link: None,
        saved_post: None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The Redis key of a session record under `prefix` (hash tag `{s:XX}`, XX its first byte).
fn session_name(prefix: &str, key: &StoreKey) -> String {
    format!("{prefix}{{s:{:02x}}}:{}", key.0[0], hex(&key.0))
}

#[tokio::test]
async fn records_are_encrypted_at_rest_and_a_tampered_or_moved_record_is_no_session() {
    let Some(redis) = Redis::start().await else { return };
    let store = store(&redis, "t1:");
    let (key, other) = (StoreKey::of(&[1; 32]), StoreKey::of(&[2; 32]));
    store.save(key, user_session("caais", "secret-subject-alice", Some("sid-1"))).await.unwrap();
    let mut conn = redis.conn().await;
    let raw: Vec<u8> = redis::cmd("GET").arg(session_name("t1:", &key)).query_async(&mut conn).await.unwrap();
    assert!(!raw.windows(14).any(|w| w == b"secret-subject"), "the subject is not readable in Redis");
    let names: Vec<String> = redis::cmd("KEYS").arg("t1:*").query_async(&mut conn).await.unwrap();
    assert!(names.iter().all(|n| !n.contains("alice") && !n.contains("sid-1")), "{names:?}");
    assert_eq!(store.load(&key).await.unwrap().unwrap().identity.subject, "secret-subject-alice");

    // The same bytes under another session's key: refused (bound to its store key).
    let _: () = redis::cmd("SET").arg(session_name("t1:", &other)).arg(&raw).query_async(&mut conn).await.unwrap();
    assert!(store.load(&other).await.unwrap().is_none(), "a record moved to another key opens nowhere");
    // One flipped bit: refused.
    let mut flipped = raw.clone();
    *flipped.last_mut().unwrap() ^= 1;
    let _: () = redis::cmd("SET").arg(session_name("t1:", &key)).arg(&flipped).query_async(&mut conn).await.unwrap();
    assert!(store.load(&key).await.unwrap().is_none(), "a tampered record is no session");
}

/// Per-command call counts (`INFO commandstats`; the health task's PING and INFO itself left
/// out).
async fn commands(conn: &mut redis::aio::MultiplexedConnection) -> std::collections::BTreeMap<String, u64> {
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(conn).await.unwrap();
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.split("calls=").nth(1)?.split(',').next()?.parse().ok()?;
            (name != "ping" && name != "info").then(|| (name.to_owned(), calls))
        })
        .collect()
}

/// The commands run since `before` (as from [`commands`]), with their counts.
fn commands_since(
    before: &std::collections::BTreeMap<String, u64>,
    after: std::collections::BTreeMap<String, u64>,
) -> Vec<(String, u64)> {
    after
        .into_iter()
        .map(|(k, v)| {
            let d = v - before.get(&k).copied().unwrap_or(0);
            (k, d)
        })
        .filter(|(_, d)| *d > 0)
        .collect()
}

#[tokio::test]
async fn reading_a_session_is_one_round_trip_and_renews_its_idle_ttl() {
    let Some(redis) = Redis::start().await else { return };
    let store = store(&redis, "t2:");
    let key = StoreKey::of(&[3; 32]);
    store.save(key, user_session("jip", "bob", None)).await.unwrap();
    assert!(store.load(&key).await.unwrap().is_some(), "warm-up (loads the script)");
    let mut conn = redis.conn().await;
    let name = session_name("t2:", &key);
    let _: () = redis::cmd("PEXPIRE").arg(&name).arg(5000).query_async(&mut conn).await.unwrap();
    let before = commands(&mut conn).await;
    assert!(store.load(&key).await.unwrap().is_some());
    let delta = commands_since(&before, commands(&mut conn).await);
    // One command from the client (EVALSHA); GET, PEXPIRE and the live set's ZADD run inside
    // the script.
    assert_eq!(
        delta,
        vec![("evalsha".to_owned(), 1), ("get".to_owned(), 1), ("pexpire".to_owned(), 1), ("zadd".to_owned(), 1)],
        "one round trip per session read"
    );
    let ttl: i64 = redis::cmd("PTTL").arg(&name).query_async(&mut conn).await.unwrap();
    assert!(ttl > 590_000, "the read renewed the idle timeout (ttl {ttl} ms)");
}

#[tokio::test]
async fn writing_back_refreshed_tokens_never_resurrects_a_session_logged_out_meanwhile() {
    let Some(redis) = Redis::start().await else { return };
    let store = store(&redis, "t5:");
    let key = StoreKey::of(&[5; 32]);
    let session = user_session("caais", "alice", Some("s1"));
    store.save(key, session.clone()).await.unwrap();
    store.tokens_refreshed(&key, &session).await.unwrap();
    assert!(store.load(&key).await.unwrap().is_some(), "written back over the live record");
    store.remove(&key).await.unwrap();
    // The refresh finishes after a logout at another instance.
    store.tokens_refreshed(&key, &session).await.unwrap();
    assert!(store.load(&key).await.unwrap().is_none(), "the logout stands");
}

#[tokio::test]
async fn a_pending_login_is_taken_exactly_once_by_concurrent_instances() {
    let Some(redis) = Redis::start().await else { return };
    let stores = [Arc::new(store(&redis, "t3:")), Arc::new(store(&redis, "t3:"))];
    let key = StoreKey::of(&[4; 32]);
    stores[0].put_pending(key, pending()).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = stores[i % 2].clone();
        tasks.push(tokio::spawn(async move { store.take_pending(&key).await.unwrap().is_some() }));
    }
    let mut taken = 0;
    for t in tasks {
        taken += usize::from(t.await.unwrap());
    }
    assert_eq!(taken, 1, "20 callbacks with one handle on two instances: exactly one login");
}

/// A form POST kept with a pending login (README "Form posts across a login") comes back
/// whole from another instance, once, and is sealed at rest: the stored record does not
/// show what the user typed.
#[tokio::test]
async fn a_kept_form_post_travels_sealed_with_its_pending_login() {
    let Some(redis) = Redis::start().await else { return };
    let (a, b) = (store(&redis, "t3p:"), store(&redis, "t3p:"));
    let key = StoreKey::of(&[5; 32]);
    let saved = aisgate::session::SavedPost {
        fields: vec![("note".into(), "tajná-poznámka-12345".into()), ("note".into(), "a&b=c".into())],
    };
    a.put_pending(key, PendingLogin { saved_post: Some(saved.clone()), ..pending() }).await.unwrap();
    let mut conn = redis.conn().await;
    let keys: Vec<String> = redis::cmd("KEYS").arg("t3p:*").query_async(&mut conn).await.unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let raw: Vec<u8> = redis::cmd("GET").arg(&keys[0]).query_async(&mut conn).await.unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains("12345"), "the form is sealed with the pending login");
    let taken = b.take_pending(&key).await.unwrap().expect("the other instance takes it");
    assert_eq!(taken.saved_post, Some(saved));
    assert!(a.take_pending(&key).await.unwrap().is_none(), "single use across instances");
}

#[tokio::test]
async fn back_channel_logout_through_the_shared_indexes_ends_the_right_sessions_and_announces_them() {
    let Some(redis) = Redis::start().await else { return };
    let (a, b) = (store(&redis, "t4:"), store(&redis, "t4:"));
    let mut ended_at_a = a.ended_sessions();
    // Let A's subscriber attach before anything ends.
    for _ in 0..100 {
        let mut conn = redis.conn().await;
        let subs: Vec<(String, u64)> =
            redis::cmd("PUBSUB").arg("NUMSUB").arg("t4:ended").query_async(&mut conn).await.unwrap();
        if subs.first().is_some_and(|(_, n)| *n >= 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let keys: Vec<StoreKey> = (20u8..25).map(|i| StoreKey::of(&[i; 32])).collect();
    a.save(keys[0], user_session("caais", "alice", Some("s1"))).await.unwrap();
    a.save(keys[1], user_session("caais", "alice", Some("s2"))).await.unwrap();
    a.save(keys[2], user_session("caais", "alice", None)).await.unwrap();
    a.save(keys[3], user_session("enviam", "alice", Some("s1"))).await.unwrap();
    a.save(keys[4], user_session("caais", "bob", Some("s3"))).await.unwrap();

    // At B: by sid; a sid with another user's subject ends nothing; empty ends nothing.
    assert_eq!(b.remove_for_subject("caais", Some("bob"), Some("s1")).await.unwrap(), 0);
    assert_eq!(b.remove_for_subject("caais", None, None).await.unwrap(), 0);
    assert_eq!(b.remove_for_subject("caais", Some(""), Some("")).await.unwrap(), 0);
    assert_eq!(b.remove_for_subject("caais", None, Some("s1")).await.unwrap(), 1);
    assert!(a.load(&keys[0]).await.unwrap().is_none());
    assert!(a.load(&keys[3]).await.unwrap().is_some(), "the sid is per provider");
    // By subject: the rest of alice's caais sessions, nobody else's.
    assert_eq!(b.remove_for_subject("caais", Some("alice"), None).await.unwrap(), 2);
    assert!(a.load(&keys[1]).await.unwrap().is_none());
    assert!(a.load(&keys[2]).await.unwrap().is_none());
    assert!(a.load(&keys[3]).await.unwrap().is_some(), "other provider untouched");
    assert!(a.load(&keys[4]).await.unwrap().is_some(), "other user untouched");

    // A heard every ending made at B.
    let mut heard = Vec::new();
    while heard.len() < 3 {
        match tokio::time::timeout(Duration::from_secs(1), ended_at_a.recv()).await {
            Ok(Ok(key)) => heard.push(key),
            other => panic!("A heard {heard:?}, then {other:?}"),
        }
    }
    heard.sort_by_key(|k| k.0);
    let mut expected = keys[..3].to_vec();
    expected.sort_by_key(|k| k.0);
    assert_eq!(heard, expected);
}

/// The shared primitives on the real server, across two store instances: a one-time id is
/// new once; counters count per client and scope; the refresh lease is exclusive, kept past
/// its period by renewal while held, and free again at once after release (and after expiry
/// when its holder vanished without renewal).
#[tokio::test]
async fn one_time_ids_counters_and_the_refresh_lease_are_shared_by_instances() {
    use aisgate::session::shared::{CounterScope, OnceScope, SharedState};
    let Some(redis) = Redis::start().await else { return };
    let (a, b) = (store(&redis, "t6:"), store(&redis, "t6:"));
    let ttl = Duration::from_secs(60);
    assert!(a.first_use(OnceScope::SamlAssertion, "nia", "_id1", ttl).await.unwrap());
    assert!(!b.first_use(OnceScope::SamlAssertion, "nia", "_id1", ttl).await.unwrap(), "seen at A");
    assert!(b.first_use(OnceScope::SamlAssertion, "other", "_id1", ttl).await.unwrap(), "per provider");
    assert!(b.first_use(OnceScope::OidcLogoutJti, "nia", "_id1", ttl).await.unwrap(), "per scope");
    let mut conn = redis.conn().await;
    let names: Vec<String> = redis::cmd("KEYS").arg("t6:o:*").query_async(&mut conn).await.unwrap();
    let left: i64 = redis::cmd("PTTL").arg(&names[0]).query_async(&mut conn).await.unwrap();
    assert!(left > 50_000 && left <= 60_000, "kept for its window: {left} ms");

    let window = Duration::from_secs(60);
    assert_eq!(a.count_attempt(CounterScope::LoginStart, "192.0.2.1", window).await.unwrap(), 1);
    assert_eq!(b.count_attempt(CounterScope::LoginStart, "192.0.2.1", window).await.unwrap(), 2);
    assert_eq!(b.count_attempt(CounterScope::LoginStart, "192.0.2.2", window).await.unwrap(), 1);
    assert_eq!(a.count_attempt(CounterScope::DirectCredentials, "192.0.2.1", window).await.unwrap(), 1);
    let counters: Vec<String> = redis::cmd("KEYS").arg("t6:c:*").query_async(&mut conn).await.unwrap();
    assert!(counters.iter().all(|c| !c.contains("192.0.2")), "client addresses are not readable: {counters:?}");

    let key = StoreKey::of(&[9; 32]);
    let period = Duration::from_millis(600);
    let held = a.try_refresh_lease(&key, period).await.unwrap().expect("A takes the lease");
    assert!(b.try_refresh_lease(&key, period).await.unwrap().is_none(), "B waits");
    // Three periods later A still holds it: renewed while held.
    tokio::time::sleep(period * 3).await;
    assert!(b.try_refresh_lease(&key, period).await.unwrap().is_none(), "renewed by its holder");
    held.release().await;
    let again = b.try_refresh_lease(&key, period).await.unwrap().expect("released: B takes it at once");
    again.release().await;
    // A holder that crashed (no renewal, no release) left its lease behind: it expires.
    let name = format!("t6:{{s:{:02x}}}l:{}", key.0[0], hex(&key.0));
    let _: () =
        redis::cmd("SET").arg(&name).arg("crashed-holder").arg("PX").arg(200).query_async(&mut conn).await.unwrap();
    assert!(a.try_refresh_lease(&key, period).await.unwrap().is_none(), "held by the crashed instance");
    tokio::time::sleep(Duration::from_millis(250)).await;
    let late = a.try_refresh_lease(&key, period).await.unwrap().expect("an abandoned lease expires");
    // A holder whose lease expired and was taken over releases nothing of the new holder's
    // (compare-and-delete).
    let _: () = redis::cmd("SET").arg(&name).arg("new-holder").query_async(&mut conn).await.unwrap();
    late.release().await;
    let holder: Option<String> = redis::cmd("GET").arg(&name).query_async(&mut conn).await.unwrap();
    assert_eq!(holder.as_deref(), Some("new-holder"));
}

/// Single-logout state through the store (issue 10 item 2): the NameID → subject memory and
/// the IDs of sent LogoutRequests are shared by instances, live a bounded time, a sent ID is
/// taken once across instances, no NameID, subject or ID is readable in a key name or value,
/// and Redis down is an error with the reason (the caller refuses), never "not found".
#[tokio::test]
async fn single_logout_state_is_shared_bounded_sealed_single_use_and_fails_closed() {
    use aisgate::session::slo::LogoutStore;
    let Some(mut redis) = Redis::start().await else { return };
    let (a, b) = (store(&redis, "t9:"), store(&redis, "t9:"));
    a.remember_name_id("nia", "nameid-secret", "CZ/CZ/subject-secret", Duration::from_secs(120)).await.unwrap();
    let found = b.subject_of_name_id("nia", "nameid-secret").await.unwrap();
    assert_eq!(found.as_deref(), Some("CZ/CZ/subject-secret"), "remembered at A, found at B");
    assert_eq!(b.subject_of_name_id("other", "nameid-secret").await.unwrap(), None, "per provider");
    a.logout_sent("nia", "_lr-secret", Duration::from_secs(300)).await.unwrap();
    let mut conn = redis.conn().await;
    let keys: Vec<String> = redis::cmd("KEYS").arg("t9:*").query_async(&mut conn).await.unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    for key in &keys {
        assert!(!key.contains("secret"), "readable key name {key}");
        let value: Vec<u8> = redis::cmd("GET").arg(key).query_async(&mut conn).await.unwrap();
        assert!(!String::from_utf8_lossy(&value).contains("secret"), "readable value of {key}");
        let left: i64 = redis::cmd("PTTL").arg(key).query_async(&mut conn).await.unwrap();
        assert!(left > 0 && left <= 300_000, "bounded: {key} {left} ms");
    }
    assert!(b.take_logout_sent("nia", "_lr-secret").await.unwrap(), "the answer reaches B");
    assert!(!a.take_logout_sent("nia", "_lr-secret").await.unwrap(), "a replay at A finds nothing");
    assert!(!b.take_logout_sent("nia", "_lr-never-sent").await.unwrap());

    redis.stop().await;
    let why = |r: Result<_, StoreError>| match r {
        Err(StoreError::Unavailable(why)) => why,
        Err(other) => panic!("an outage, not {other:?}"),
        Ok(_) => panic!("answered without Redis"),
    };
    assert!(why(a.take_logout_sent("nia", "_lr-2").await.map(|_| ())).starts_with("redis: "));
    assert!(why(a.subject_of_name_id("nia", "nameid-secret").await.map(|_| ())).starts_with("redis: "));
    assert!(why(a.logout_sent("nia", "_lr-3", Duration::from_secs(60)).await).starts_with("redis: "));
    let remembered = a.remember_name_id("nia", "n", "s", Duration::from_secs(60)).await;
    assert!(why(remembered).starts_with("redis: "));
}

/// Issue 10 item 4: with Redis, `active_sessions` counts the live sessions of all instances
/// (the `live` set, counted by each instance's sweep every 5 s), and a session that ends by
/// expiry (its record gone by TTL) is announced once, by whichever instance's sweep finds it,
/// to every instance's `ended_sessions` (WebSocket tunnels close on it).
#[tokio::test]
async fn active_sessions_are_counted_across_instances_and_expiries_are_announced() {
    let Some(redis) = Redis::start().await else { return };
    let clock = Clock::test();
    let with_clock = |prefix: &str| {
        let cfg: aisgate::config::RedisConfig =
            toml::from_str(&format!("url = \"{}\"\nkey_prefix = \"{prefix}\"\ntimeout_ms = 500\n", redis.url()))
                .unwrap();
        let opts = store_checks::store_options(&clock);
        RedisStore::new(&cfg, keyring().record_keys(), opts, &|_| None).unwrap()
    };
    let (a, b) = (with_clock("t7:"), with_clock("t7:"));
    let now = clock.now_unix();
    let session = |sub: &str| {
        let identity = Identity { provider: "jip".into(), subject: sub.into(), ..Identity::default() };
        Arc::new(Session::new(identity, aisgate::provider::LogoutState::None, 3600, now))
    };
    let keys: Vec<StoreKey> = (30u8..33).map(|i| StoreKey::of(&[i; 32])).collect();
    for (i, key) in keys.iter().enumerate() {
        a.save(*key, session(&format!("user{i}"))).await.unwrap();
    }
    // Both instances count A's sessions (within one sweep period).
    store_checks::both_count(&a, &b, 3).await;
    b.remove(&keys[0]).await.unwrap();
    store_checks::both_count(&a, &b, 2).await;

    // keys[1]'s record expires (Redis drops it by TTL; here at once) and the clock passes its
    // idle end: a sweep announces it at both instances, exactly once, and the count drops.
    let (mut at_a, mut at_b) = (a.ended_sessions(), b.ended_sessions());
    let mut conn = redis.conn().await;
    let _: () = redis::cmd("DEL").arg(session_name("t7:", &keys[1])).query_async(&mut conn).await.unwrap();
    clock.advance(Duration::from_secs(601));
    for ended in [&mut at_a, &mut at_b] {
        // (keys[0]'s logout may still be on its way from the channel.)
        assert_eq!(store_checks::next_ended(ended, &[keys[0]]).await, Some(keys[1]), "the expiry is announced");
    }
    // keys[2] is past its idle end by this clock too, but its record is still in Redis: not
    // announced, still counted.
    store_checks::both_count(&a, &b, 1).await;
    let live: Vec<String> = redis::cmd("ZRANGE")
        .arg(format!("t7:{{s:{:02x}}}live", keys[2].0[0]))
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(live, vec![hex(&keys[2].0)]);
    assert!(at_a.try_recv().is_err() && at_b.try_recv().is_err(), "announced once");
}

/// Sessions that Redis ends by TTL are audited like the memory store's: exactly one
/// `session_end` over both instances per expired session — by the instance whose sweep
/// removed it from the live set —, with the memory store's reason (`idle` for an idle
/// timeout, `expired` for the absolute end) and subject fields, no request origin, and no
/// raw subject or store key. A session ended by a request (logout) is left to that request to
/// audit, and its end facts go with it. (Before: no event at all.)
#[tokio::test]
async fn a_session_ending_by_redis_ttl_is_audited_once_across_instances_with_its_reason() {
    logs::capture();
    let Some(redis) = Redis::start().await else { return };
    let clock = Clock::test();
    let dir = tempfile::tempdir().unwrap();
    let instance = |name: &str| {
        let (audit, path) = store_checks::audit_file(dir.path(), name, &clock);
        let cfg: aisgate::config::RedisConfig =
            toml::from_str(&format!("url = \"{}\"\nkey_prefix = \"t11:\"\ntimeout_ms = 500\n", redis.url())).unwrap();
        // A one-second idle timeout: Redis drops an unused record after one second.
        let opts = RedisStoreOptions { idle: Duration::from_secs(1), ..store_checks::store_options(&clock) };
        let store = RedisStore::new(&cfg, keyring().record_keys(), opts, &|_| None).unwrap();
        (store.with_audit(audit.clone()), audit, path)
    };
    let ((a, audit_a, path_a), (b, audit_b, path_b)) = (instance("a"), instance("b"));
    let now = clock.now_unix();
    let identity = |sub: &str| Identity {
        provider: "nia".into(),
        protocol: "saml2".into(),
        subject: sub.into(),
        loa: Some(aisgate::identity::Loa::Substantial),
        organisation: Some(Box::new(aisgate::identity::Organisation {
            ico: Some("00261581".into()),
            ..Default::default()
        })),
        ..Identity::default()
    };
    let session = |sub: &str, lifetime: u64| {
        Arc::new(Session::new(identity(sub), aisgate::provider::LogoutState::None, lifetime, now))
    };
    // Idle: an hour to live, unused for the idle second. Expired: its absolute end in one
    // second (the record's TTL is that end). Logged out: removed by a request at B.
    let (idle, expired, logged_out) = (StoreKey::of(&[80; 32]), StoreKey::of(&[81; 32]), StoreKey::of(&[82; 32]));
    // Written without end facts (as by a version before them): expires unaudited, logged.
    let legacy = StoreKey::of(&[83; 32]);
    let (mut at_a, mut at_b) = (a.ended_sessions(), b.ended_sessions());
    a.save(idle, session("CZ/CZ/idle-subject", 3600)).await.unwrap();
    b.save(expired, session("CZ/CZ/expired-subject", 1)).await.unwrap();
    a.save(logged_out, session("CZ/CZ/logout-subject", 3600)).await.unwrap();
    a.save(legacy, session("CZ/CZ/legacy-subject", 3600)).await.unwrap();
    let mut conn = redis.conn().await;
    let facts_name = |key: &StoreKey| format!("t11:{{s:{:02x}}}e:{}", key.0[0], hex(&key.0));
    let exists = |conn: &mut redis::aio::MultiplexedConnection, name: String| {
        let mut conn = conn.clone();
        async move { redis::cmd("EXISTS").arg(name).query_async::<u32>(&mut conn).await.unwrap() }
    };
    assert_eq!(exists(&mut conn, facts_name(&logged_out)).await, 1, "end facts kept beside the session");
    let size: u64 = redis::cmd("STRLEN").arg(facts_name(&logged_out)).query_async(&mut conn).await.unwrap();
    eprintln!("end facts: {size} bytes sealed");
    assert!(size <= 256, "the end facts stay small: {size} bytes");
    assert!(b.remove(&logged_out).await.unwrap().is_some());
    assert_eq!(exists(&mut conn, facts_name(&logged_out)).await, 0, "a logout deletes them");
    let _: () = redis::cmd("DEL").arg(facts_name(&legacy)).query_async(&mut conn).await.unwrap();

    // Both instances hear both expiries (the sweep that claimed each announces it).
    for ended in [&mut at_a, &mut at_b] {
        let mut heard = Vec::new();
        while heard.len() < 3 {
            let key = store_checks::next_ended(ended, &[logged_out]).await.expect("the expiries are announced");
            heard.push(key);
        }
        let mut want = vec![idle, expired, legacy];
        for keys in [&mut heard, &mut want] {
            keys.sort_unstable_by_key(|k| k.0);
        }
        assert_eq!(heard, want);
    }
    let lines: Vec<serde_json::Value> = store_checks::session_ends(&[(&audit_a, &path_a), (&audit_b, &path_b)])
        .into_iter()
        .map(|(line, record)| {
            for secret in ["subject", &hex(&idle.0), &hex(&expired.0), &hex(&logged_out.0)] {
                assert!(!line.contains(secret), "no raw subject or store key: {line}");
            }
            record
        })
        .collect();
    let ends: Vec<(String, String, String)> = lines
        .iter()
        .map(|l| (l["event"].to_string(), l["session"].as_str().unwrap().to_owned(), l["reason"].to_string()))
        .collect();
    let mut want = vec![
        ("\"session_end\"".to_owned(), idle.log_label(), "\"idle\"".to_owned()),
        ("\"session_end\"".to_owned(), expired.log_label(), "\"expired\"".to_owned()),
    ];
    let mut got = ends.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "exactly one event per expiry over both instances, none for the logout: {lines:#?}");
    for line in &lines {
        let fields: std::collections::BTreeSet<&str> = line.as_object().unwrap().keys().map(String::as_str).collect();
        // The memory store's fields, no request origin.
        let same = ["v", "ts", "event", "reason", "user", "provider", "protocol", "loa", "organisation", "session"];
        assert_eq!(fields, same.into_iter().collect(), "{line}");
        // The keyed log label (the key is process-wide and other tests here set it: its form).
        let user = line["user"].as_str().unwrap();
        let hash = user.strip_prefix("nia:").unwrap_or_default();
        assert!(hash.len() == 12 && hash.bytes().all(|b| b.is_ascii_hexdigit()), "{line}");
        assert_eq!(
            (&line["provider"], &line["protocol"], &line["loa"], &line["organisation"]),
            (&"nia".into(), &"saml2".into(), &"substantial".into(), &"00261581".into()),
        );
    }
    assert_ne!(lines[0]["user"], lines[1]["user"], "two users, two labels");
    let unaudited = logs::text();
    assert!(unaudited.lines().any(|l| l.contains("sessions=1") && l.contains("without end facts")), "{unaudited}");
    for key in [idle, expired] {
        assert_eq!(exists(&mut conn, facts_name(&key)).await, 0, "the claiming sweep took the end facts");
    }
}

/// An instance reuses the session it decoded (with its rendered headers and signed identity
/// token) while the record in Redis is unchanged, and only then: a record rewritten by another
/// instance (refreshed tokens) is decoded anew, and one deleted there (logout) is no session.
#[tokio::test]
async fn a_decoded_session_is_reused_only_while_its_record_is_unchanged() {
    let Some(redis) = Redis::start().await else { return };
    let (a, b) = (store(&redis, "t8:"), store(&redis, "t8:"));
    let key = StoreKey::of(&[40; 32]);
    a.save(key, user_session("caais", "alice", None)).await.unwrap();
    let first = a.load(&key).await.unwrap().unwrap();
    let second = a.load(&key).await.unwrap().unwrap();
    assert!(Arc::ptr_eq(&first, &second), "unchanged record: the same decoded session");

    // B writes the session back with new tokens (a refresh there).
    let at_b = b.load(&key).await.unwrap().unwrap();
    let tokens = aisgate::session::tokens::UpstreamTokens {
        access_token: "new-access".into(),
        issued_at: 1,
        expires_at: u64::MAX / 2,
        refresh_token: None,
        client_loa: None,
    };
    let refreshed = Arc::new(
        Session::new(at_b.identity.clone(), aisgate::provider::LogoutState::None, 3600, Clock::system().now_unix())
            .with_tokens(Some(tokens)),
    );
    b.tokens_refreshed(&key, &refreshed).await.unwrap();
    let third = a.load(&key).await.unwrap().unwrap();
    assert!(!Arc::ptr_eq(&second, &third), "a changed record is decoded anew");
    assert_eq!(third.upstream_tokens.get().map(|t| t.access_token.clone()).as_deref(), Some("new-access"));

    b.remove(&key).await.unwrap();
    assert!(a.load(&key).await.unwrap().is_none(), "logged out at B: no session at A, cached copy or not");
}

/// The per-instance copy (`local_cache_ms`): a session read at A is served by A without a
/// Redis read for up to that long, a logout at B drops A's copy at once (pub/sub), and no copy
/// outlives the bound.
#[tokio::test]
async fn the_local_copy_is_used_briefly_and_dropped_by_a_logout_at_another_instance() {
    let Some(redis) = Redis::start().await else { return };
    let with_cache = |ms: u64| store_with_cache(&redis, "t9:", ms);
    assert_eq!(
        with_cache(1001).err().map(|e| e.to_string()).as_deref(),
        Some("[session.redis] local_cache_ms = 1001: at most 1000 (a logout elsewhere must take effect within 1 s)")
    );
    let (a, b) = (with_cache(1000).unwrap(), with_cache(1000).unwrap());
    // A's subscriber is attached before anything ends.
    for _ in 0..100 {
        let mut conn = redis.conn().await;
        let subs: Vec<(String, u64)> =
            redis::cmd("PUBSUB").arg("NUMSUB").arg("t9:ended").query_async(&mut conn).await.unwrap();
        if subs.first().is_some_and(|(_, n)| *n >= 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (one, two) = (StoreKey::of(&[50; 32]), StoreKey::of(&[51; 32]));
    a.save(one, user_session("jip", "alice", None)).await.unwrap();
    a.save(two, user_session("jip", "bob", None)).await.unwrap();
    assert!(a.load(&one).await.unwrap().is_some() && a.load(&two).await.unwrap().is_some());
    // Within the bound, A serves its copy: even with the record gone behind its back.
    let mut conn = redis.conn().await;
    let _: () = redis::cmd("DEL").arg(session_name("t9:", &two)).query_async(&mut conn).await.unwrap();
    assert!(a.load(&two).await.unwrap().is_some(), "the copy, within local_cache_ms");
    // A logout at B reaches A's copy by pub/sub, long before the bound.
    b.remove(&one).await.unwrap();
    let started = tokio::time::Instant::now();
    while a.load(&one).await.unwrap().is_some() {
        assert!(started.elapsed() < Duration::from_millis(500), "A still serves a session logged out at B");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // And no copy outlives the bound: the record deleted without any message is gone at A
    // after at most 1 s.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(a.load(&two).await.unwrap().is_none(), "a copy older than local_cache_ms is read again");
}

/// Session reads with 64 concurrent requests on one session (a browser's burst, or `wrk -c64`
/// in bench/proxy.sh): with no usable copy (never read here, or read more than
/// `local_cache_ms` ago) they share one read instead of sending 64; a copy due for renewal
/// is read again by one of them while the others use it; a fresh copy costs nothing.
/// (Before the shared read: 64 `EVALSHA`s after each expiry.)
#[tokio::test]
async fn concurrent_requests_for_a_session_without_a_fresh_copy_read_it_once() {
    let Some(redis) = Redis::start().await else { return };
    let store = store_with_cache(&redis, "t10:", 1000).unwrap();
    let (key, other) = (StoreKey::of(&[60; 32]), StoreKey::of(&[61; 32]));
    store.save(key, user_session("jip", "carol", None)).await.unwrap();
    store.save(other, user_session("jip", "dave", None)).await.unwrap();
    // Loads the script (a first EVALSHA answered NOSCRIPT would count twice).
    assert!(store.load(&other).await.unwrap().is_some());
    let mut conn = redis.conn().await;
    // Session reads: GET and PEXPIRE run only inside the read script (the live-set sweep,
    // which may run meanwhile, uses neither).
    let reads = |delta: &[(String, u64)]| {
        let count = |name: &str| delta.iter().find(|(c, _)| c == name).map_or(0, |(_, n)| *n);
        (count("get"), count("pexpire"))
    };
    let burst = || async {
        let found = futures_util::future::join_all((0..64).map(|_| store.load(&key))).await;
        assert!(found.iter().all(|f| f.as_ref().is_ok_and(|s| s.is_some())), "every request has its session");
    };

    let before = commands(&mut conn).await;
    burst().await;
    let first = commands_since(&before, commands(&mut conn).await);
    assert_eq!(reads(&first), (1, 1), "64 concurrent requests, nothing cached yet: one read ({first:?})");

    let before = commands(&mut conn).await;
    burst().await;
    let cached = commands_since(&before, commands(&mut conn).await);
    assert_eq!(reads(&cached), (0, 0), "a fresh copy: no Redis at all ({cached:?})");

    // Past 90 % of local_cache_ms: one request reads ahead, the copy serves the rest.
    tokio::time::sleep(Duration::from_millis(930)).await;
    let before = commands(&mut conn).await;
    burst().await;
    let due = commands_since(&before, commands(&mut conn).await);
    assert_eq!(reads(&due), (1, 1), "a due copy: one read ahead of its expiry ({due:?})");

    // Past the bound: the copy is not used, and the burst shares one read.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = commands(&mut conn).await;
    burst().await;
    let expired = commands_since(&before, commands(&mut conn).await);
    assert_eq!(reads(&expired), (1, 1), "an expired copy: one read for the burst ({expired:?})");
    let evalsha = expired.iter().find(|(c, _)| c == "evalsha").map_or(0, |(_, n)| *n);
    assert!((1..=2).contains(&evalsha), "one EVALSHA (plus at most the sweep's): {expired:?}");

    // A session ended meanwhile is no session for any of them.
    let _: () = redis::cmd("DEL").arg(session_name("t10:", &key)).query_async(&mut conn).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let found = futures_util::future::join_all((0..64).map(|_| store.load(&key))).await;
    assert!(found.iter().all(|f| f.as_ref().is_ok_and(Option::is_none)), "deleted: no session for anyone");
}

/// The commands of README "Shared sessions on Redis" (the ACL of the test above).
const STORE_COMMANDS: &str = "+get +set +del +getdel +incr +exists +pexpire +sadd +srem +sunion +zadd +zrem \
                              +zrangebyscore +zcard +evalsha +script|load +publish +subscribe +multi +exec";

/// Creates ACL user `name` (password `pw`) with `keys` and the store's commands minus
/// `without`.
async fn acl_user(redis: &Redis, name: &str, keys: &str, without: &str) {
    let mut conn = redis.conn().await;
    let commands = STORE_COMMANDS.split_whitespace().filter(|c| *c != format!("+{without}"));
    let rules = ["reset", "on", ">pw", "resetkeys"]
        .into_iter()
        .map(str::to_owned)
        .chain(keys.split_whitespace().map(str::to_owned))
        .chain(["resetchannels", "&aisgate:*", "-@all", "+@connection"].map(str::to_owned))
        .chain(commands.map(str::to_owned))
        .collect::<Vec<_>>();
    let _: () = redis::cmd("ACL").arg("SETUSER").arg(name).arg(rules).query_async(&mut conn).await.unwrap();
}

/// A command or key the ACL user may not use is a misconfiguration, not an outage: a
/// distinct error naming the command (or that a key was refused) and the store's key
/// patterns — never a key or value — that `/readyz` keeps reporting although the connection
/// and its `PING` are fine, counted in `aisgate_session_store_errors_total{reason="acl_denied"}`
/// (an outage under `reason="unavailable"`); and it fails closed (no session, no pending
/// login) like an outage.
#[tokio::test]
async fn an_acl_refusal_is_named_as_a_misconfiguration_and_still_fails_closed() {
    logs::capture();
    let Some(redis) = Redis::start().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "pw\n").unwrap();
    let as_user = |user: &str| {
        store_with(
            &redis,
            &format!("username = \"{user}\"\npassword_file = \"{}\"\nlocal_cache_ms = 0\n", pw.display()),
        )
        .unwrap()
    };
    acl_user(&redis, "noeval", "~aisgate:*", "evalsha").await;
    acl_user(&redis, "nopending", "~aisgate:{s:* ~aisgate:i:* ~aisgate:u:*", "").await;
    let full = store_with(&redis, "local_cache_ms = 0\n").unwrap();
    let key = StoreKey::of(&[70; 32]);
    full.save(key, user_session("jip", "erin", None)).await.unwrap();
    assert!(full.load(&key).await.unwrap().is_some());

    // The store's error counter, as /metrics renders it.
    let errors = |metrics: &aisgate::ops::metrics::Metrics, reason: &str| {
        let series = format!("aisgate_session_store_errors_total{{reason=\"{reason}\"}} ");
        let text = metrics.render();
        let line = text.lines().find(|l| l.starts_with(&series)).unwrap_or_else(|| panic!("no {series}in {text}"));
        line[series.len()..].parse::<u64>().unwrap()
    };

    // A command refused: reading the session.
    let noeval = as_user("noeval");
    // Refused before the gateway's registry exists: counted all the same.
    assert!(matches!(noeval.load(&key).await, Err(StoreError::Denied(_))));
    let mut metrics = aisgate::ops::metrics::Metrics::new(&[], &[]);
    noeval.register_metrics(&mut metrics);
    assert_eq!((errors(&metrics, "acl_denied"), errors(&metrics, "unavailable")), (1, 0));
    let err = noeval.load(&key).await.expect_err("no EVALSHA, no session");
    assert!(matches!(err, StoreError::Denied(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.starts_with("session store misconfigured: redis ACL refuses"), "{text}");
    assert!(text.contains("'evalsha'") && text.contains("aisgate:{s:*}:*"), "names the command and the keys: {text}");
    assert!(!text.contains(&hex(&key.0)), "no store key in the text: {text}");
    // The health ping (PING is allowed) does not clear it.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let ready = noeval.readiness();
    assert!(!ready.ready, "{ready:?}");
    assert!(ready.detail.as_deref().is_some_and(|d| d.contains("'evalsha'")), "{ready:?}");
    assert!(logs::text().lines().any(|l| l.contains("acl_denied") && l.contains("evalsha")), "logged with its reason");
    assert_eq!(errors(&metrics, "acl_denied"), 2, "every refused operation counts (the log line is once a minute)");

    // A key refused: pending logins under `p:`. Redis does not say which key; the store does
    // (as a pattern).
    let nopending = as_user("nopending");
    let err = nopending.put_pending(StoreKey::of(&[71; 32]), pending()).await.expect_err("p:* refused");
    let text = err.to_string();
    assert!(matches!(err, StoreError::Denied(_)) && text.contains("key aisgate:p:*"), "{text}");
    // Redis 7.0: "no permissions to access one of the keys used as arguments"; later: "No
    // permissions to access a key".
    assert!(text.to_lowercase().contains("no permissions to access"), "{text}");
    // The permitted part works: the session is read (not an outage of the connection).
    assert!(nopending.load(&key).await.unwrap().is_some());

    // An outage is still an outage (Unavailable), not a refusal.
    let mut full_metrics = aisgate::ops::metrics::Metrics::new(&[], &[]);
    full.register_metrics(&mut full_metrics);
    let mut redis = redis;
    redis.stop().await;
    let down = full.load(&key).await.expect_err("redis down");
    assert!(matches!(down, StoreError::Unavailable(_)), "{down:?}");
    assert_eq!((errors(&full_metrics, "acl_denied"), errors(&full_metrics, "unavailable")), (0, 1));
}

/// A back-channel logout naming a user with many index entries reads every candidate's
/// record in one pipeline, and clears the entries of records gone in one `SREM` per set
/// (before: one `GET` round trip per candidate and one `SREM` per stale entry).
#[tokio::test]
async fn a_logout_by_subject_reads_its_candidates_in_one_pipeline_and_clears_stale_entries_at_once() {
    let Some(redis) = Redis::start().await else { return };
    let store = store(&redis, "t11:");
    let keys: Vec<StoreKey> = (0u8..12).map(|i| StoreKey::of(&[100 + i; 32])).collect();
    for key in &keys {
        store.save(*key, user_session("caais", "frank", None)).await.unwrap();
    }
    store.save(StoreKey::of(&[99; 32]), user_session("caais", "grace", None)).await.unwrap();
    // Eight of frank's records expire silently (their index entries stay).
    let mut conn = redis.conn().await;
    for key in &keys[..8] {
        let _: () = redis::cmd("DEL").arg(session_name("t11:", key)).query_async(&mut conn).await.unwrap();
    }
    let before = commands(&mut conn).await;
    assert_eq!(store.remove_for_subject("caais", Some("frank"), None).await.unwrap(), 4);
    let delta = commands_since(&before, commands(&mut conn).await);
    let count = |name: &str| delta.iter().find(|(c, _)| c == name).map_or(0, |(_, n)| *n);
    assert_eq!(count("get"), 12, "each candidate's record read once: {delta:?}");
    assert_eq!(count("sunion"), 1, "one index set (one session key in the ring): {delta:?}");
    // One SREM for the 8 stale entries, one per (sub) set for each of the 4 sessions ended.
    assert_eq!(count("srem"), 1 + 4, "{delta:?}");
    let left: Vec<String> = redis::cmd("KEYS").arg("t11:i:*").query_async(&mut conn).await.unwrap();
    for set in left {
        let members: Vec<String> = redis::cmd("SMEMBERS").arg(&set).query_async(&mut conn).await.unwrap();
        assert!(members.iter().all(|m| m == &hex(&StoreKey::of(&[99; 32]).0)), "only grace is left: {members:?}");
    }
    assert!(store.load(&StoreKey::of(&[99; 32])).await.unwrap().is_some(), "grace untouched");
}

#[test]
fn configuration_errors_name_the_problem() {
    let parse = |text: &str| toml::from_str::<aisgate::config::RedisConfig>(text).unwrap();
    let opts = RedisStoreOptions {
        idle: Duration::from_secs(1),
        login_ttl: Duration::from_secs(1),
        absolute: Duration::from_secs(1),
        apps: 1,
        clock: Clock::system(),
    };
    let err = |text: &str| {
        RedisStore::new(&parse(text), keyring().record_keys(), opts.clone(), &|_| None).err().map(|e| e.to_string())
    };
    assert_eq!(
        err("url = \"redis://:pw@127.0.0.1\"").as_deref(),
        Some("[session.redis] url must not contain a password: use password_file or password_env")
    );
    assert_eq!(
        err("url = \"redis://127.0.0.1\"\nca_file = \"/x\"").as_deref(),
        Some("[session.redis] ca_file is set but the url is not rediss:// (TLS)")
    );
    assert!(err("url = \"http://127.0.0.1\"").unwrap().contains("use redis:// or rediss://"));
    assert_eq!(
        err("url = \"redis://127.0.0.1\"\npassword_env = \"AISGATE_TEST_NO_SUCH_VAR\"").as_deref(),
        Some("[session.redis] password_env: environment variable AISGATE_TEST_NO_SUCH_VAR is not set")
    );
    // Outside a runtime (`aisgate check`) a valid table builds and reports it is not started.
    let store =
        RedisStore::new(&parse("url = \"redis://127.0.0.1\""), keyring().record_keys(), opts.clone(), &|_| None)
            .unwrap();
    assert!(!store.readiness().ready);
    assert!(err("sentinels = [\"127.0.0.1:26379\"]").unwrap().contains("need master_name"));
    assert!(err("url = \"redis://127.0.0.1\"\nsentinels = [\"h:1\"]\nmaster_name = \"m\"")
        .unwrap()
        .contains("exactly one"));
    assert!(err("sentinels = [\"nohostport\"]\nmaster_name = \"m\"").unwrap().contains("is not host:port"));
}
