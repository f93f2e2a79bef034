//! Checks shared by the tests of the Redis store on one server, behind Sentinel and on a
//! Redis Cluster.

use std::collections::BTreeSet;
use std::time::Duration;

use aisgate::session::redis::{RedisStore, RedisStoreOptions};
use aisgate::session::{SessionStore, StoreKey};

/// Waits (at most 12 s: two sweeps and some) until both instances count `want` live
/// sessions (`aisgate_active_sessions`).
pub async fn both_count(a: &RedisStore, b: &RedisStore, want: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(12);
    while a.active_sessions() != want || b.active_sessions() != want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "counts {} and {}, want {want}",
            a.active_sessions(),
            b.active_sessions()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The next session announced as ended on `ended` other than those of `skip` (endings that
/// may still be on their way from the channel), waiting at most 12 s.
pub async fn next_ended(ended: &mut tokio::sync::broadcast::Receiver<StoreKey>, skip: &[StoreKey]) -> Option<StoreKey> {
    let heard = tokio::time::timeout(Duration::from_secs(12), async {
        loop {
            match ended.recv().await {
                Ok(key) if skip.contains(&key) => continue,
                other => return other.ok(),
            }
        }
    });
    heard.await.ok().flatten()
}

/// Sends the requests (client, URL) of the session `cookie` in parallel, each expecting 200
/// from the header echo, and returns the set of `Authorization` headers the upstream received.
pub async fn authorizations_sent(requests: Vec<(reqwest::Client, String)>, cookie: &str) -> BTreeSet<Option<String>> {
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|(client, url)| {
            let cookie = cookie.to_owned();
            tokio::spawn(async move {
                let resp = client.get(url).header("cookie", cookie).send().await.unwrap();
                assert_eq!(resp.status(), 200);
                let body: serde_json::Value = resp.json().await.unwrap();
                body["headers"]["authorization"].as_str().map(str::to_owned)
            })
        })
        .collect();
    let mut sent = BTreeSet::new();
    for task in tasks {
        sent.insert(task.await.unwrap());
    }
    sent
}

/// A gateway `a` with the NIA-like SAML provider accepting IdP-initiated Responses
/// (`allow_unsolicited`, apps of `apps`) on the store of `session_extra`, and its second
/// instance.
pub async fn saml_pair(
    apps: &str,
    server_extra: &str,
    session_extra: String,
) -> (super::Gateway, super::instance::Instance) {
    let a = super::Gateway::start(aisgate::sim::stack::StackOptions {
        upstream: Some(super::header_echo().await),
        apps: Some(apps.to_owned()),
        saml: Some(aisgate::sim::stack::SamlStackProvider {
            extra: "dangerous.allow_unsolicited = true\n".into(),
            ..Default::default()
        }),
        server_extra: server_extra.to_owned(),
        session_extra,
        ..Default::default()
    })
    .await;
    let b = super::instance::Instance::of(&a).await;
    (a, b)
}

/// An IdP-initiated SAML Response (no request to answer, so only the replay cache can catch
/// it) accepted at `a` is refused at `b`, naming the replay (the shared assertion-ID cache).
/// Starts one login at `a`.
pub async fn assert_saml_replay_refused(a: &super::Gateway, b: &super::instance::Instance) {
    // The simulator answers the next login unasked: no InResponseTo.
    a.saml.as_ref().unwrap().knobs().edit = Some(Box::new(|s| {
        s.in_response_to = None;
        s.sc_in_response_to = None;
    }));
    let start = a.navigate("/.aisgate/login?return=%2Fdesk&provider=nia", None).await;
    let answer = a.to_idp(start).await;
    let (acs, form) = super::parse_form(&answer.text().await.unwrap());
    let at_a = a.client.post(&acs).form(&form).header("accept", "text/html").send().await.unwrap();
    assert_eq!(at_a.status(), 302, "accepted at A");
    assert!(super::set_cookie(&at_a, "aisgate_session").is_some());

    let acs_b = acs.replace(&a.base, &format!("http://localhost:{}", b.addr.port()));
    assert_ne!(acs_b, acs);
    let at_b = b.client.post(&acs_b).form(&form).header("accept", "text/html").send().await.unwrap();
    let id = super::logs::request_id(&at_b);
    assert_eq!(at_b.status(), 400, "the same Response at B is a replay");
    assert!(super::set_cookie(&at_b, "aisgate_session").is_none(), "no session from a replay");
    assert!(at_b.text().await.unwrap().contains(super::LOGIN_FAILED));
    super::logs::line_with(&id, "Assertion ID already used (replay)");
}

/// Two instances on the store of `session_extra` serving an `upstream_bearer` app behind the
/// CAAIS-like IdP (access tokens of 4 s), and a session logged in at the first.
pub async fn bearer_pair(session_extra: String) -> (super::Gateway, super::instance::Instance, String) {
    let apps = "[[app]]\nname = \"api\"\npath_prefix = \"/api\"\nupstream = \"{upstream}\"\nproviders = [\"caais\"]\nupstream_bearer = true\n";
    let a = super::Gateway::start(aisgate::sim::stack::StackOptions {
        upstream: Some(super::header_echo().await),
        apps: Some(apps.to_owned()),
        oidc: vec![super::caais_provider("loa = \"substantial\"\n")],
        session_extra,
        ..Default::default()
    })
    .await;
    let b = super::instance::Instance::of(&a).await;
    a.oidc[0].knobs().access_token_ttl = Some(4);
    let cookie = a.oidc_login("caais", "/api").await;
    (a, b, cookie)
}

/// Issue 10 item 2: 40 parallel requests of the session `cookie` of a [`bearer_pair`], due
/// for refresh and spread over both instances, cause exactly one call at the IdP's token
/// endpoint, and every request sends the new token.
pub async fn assert_forty_requests_refresh_once(a: &super::Gateway, b: &super::instance::Instance, cookie: &str) {
    let before = a.oidc[0].knobs().refresh_calls;
    a.clock.advance(Duration::from_millis(2050));
    let requests = (0..40)
        .map(|i| if i % 2 == 0 { (a.client.clone(), a.url("/api/x")) } else { (b.client.clone(), b.url("/api/x")) })
        .collect();
    let sent = authorizations_sent(requests, cookie).await;
    assert_eq!(a.oidc[0].knobs().refresh_calls - before, 1, "one refresh at the IdP for 40 requests on 2 instances");
    let last = a.oidc[0].knobs().last_access_token.clone().unwrap();
    assert_eq!(sent.into_iter().collect::<Vec<_>>(), vec![Some(format!("Bearer {last}"))], "all sent the new token");
}

/// A login started at `a` completes at `b` (the pending login is in the store), and its
/// callback replayed at `a` is refused: a pending login is redeemed once across instances.
pub async fn assert_login_completes_at_the_other_once(a: &super::Gateway, b: &super::instance::Instance) {
    let (callback, login_cookie) = a.begin_login("/desk", 0).await;
    let at_b = callback.replace(&a.base, &format!("http://localhost:{}", b.addr.port()));
    assert_ne!(at_b, callback);
    let done = b.client.get(&at_b).header("cookie", &login_cookie).header("accept", "text/html").send().await.unwrap();
    assert_eq!(done.status(), 302, "B completes the login A started");
    assert!(super::location(&done).ends_with("/desk"), "{}", super::location(&done));
    let session = super::set_cookie(&done, "aisgate_session").expect("session cookie from B");
    let cookie = format!("aisgate_session={session}");
    let use_at_a = a.client.get(a.url("/desk")).header("accept", "application/json").header("cookie", cookie);
    assert_eq!(use_at_a.send().await.unwrap().status(), 200);

    // The same callback again, at A: the pending login was taken (GETDEL) at B.
    let again =
        a.client.get(&callback).header("cookie", &login_cookie).header("accept", "text/html").send().await.unwrap();
    let id = super::logs::request_id(&again);
    assert_eq!(again.status(), 400, "a pending login is redeemed once across instances");
    assert!(again.text().await.unwrap().contains(super::EXPIRED));
    super::logs::line_with(&id, "callback for an unknown, used or expired login");
}

/// The store options of the store-level tests: idle 600 s, logins 60 s, absolute 1 h, one
/// app, the clock `clock`.
pub fn store_options(clock: &aisgate::clock::Clock) -> RedisStoreOptions {
    RedisStoreOptions {
        idle: Duration::from_secs(600),
        login_ttl: Duration::from_secs(60),
        absolute: Duration::from_secs(3600),
        apps: 1,
        clock: clock.clone(),
    }
}

/// An audit writing to `audit-<name>.jsonl` in `dir`, timed by `clock`, and that file.
pub fn audit_file(
    dir: &std::path::Path,
    name: &str,
    clock: &aisgate::clock::Clock,
) -> (aisgate::audit::Audit, std::path::PathBuf) {
    let path = dir.join(format!("audit-{name}.jsonl"));
    let config = aisgate::audit::AuditConfig { file: Some(path.clone()), ..Default::default() };
    (aisgate::audit::Audit::start(&config, clock.clone()).unwrap(), path)
}

/// The `session_end` records of these audits (each flushed first) in their files.
pub fn session_ends(audits: &[(&aisgate::audit::Audit, &std::path::Path)]) -> Vec<(String, serde_json::Value)> {
    let mut ends = Vec::new();
    for (audit, path) in audits {
        assert!(audit.flush(Duration::from_secs(5)), "audit written");
        for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            if record["event"] == "session_end" {
                ends.push((line.to_owned(), record));
            }
        }
    }
    ends
}
