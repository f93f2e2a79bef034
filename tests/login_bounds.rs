//! Bounded login work (issue 15 items 1 and 2) through the real gateway: a full CPU pool
//! answers a SAML ACS with 503 + `Retry-After` at once while proxied traffic goes on, and a
//! flood of login starts from one address is answered 429.
//!
//! Its own test binary: the CPU pool is process-wide, and one test here holds it busy.

mod support;

use aisgate::sim::stack::{SamlStackProvider, StackOptions};
use support::logs::{capture, line_with, request_id};
use support::{header_echo, parse_form, set_cookie, Gateway};

const APPS: &str = r#"
[[app]]
name = "desk"
upstream = "{upstream}"
providers = ["nia"]
"#;

/// Tests here share the process-wide pool; each builds a gateway (which resizes the pool).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn gateway(server_extra: &str) -> Gateway {
    capture();
    Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        apps: Some(APPS.to_owned()),
        server_extra: server_extra.to_owned(),
        saml: Some(SamlStackProvider::default()),
        ..Default::default()
    })
    .await
}

/// A login up to the IdP's answer: (pre-login cookie, ACS URL, form).
async fn begin(gw: &Gateway) -> (String, String, Vec<(String, String)>) {
    let start = gw.navigate("/.aisgate/login?return=%2Fdesk&provider=nia", None).await;
    let cookie = format!("aisgate_login={}", set_cookie(&start, "aisgate_login").expect("pre-login cookie"));
    let answer = gw.to_idp(start).await;
    let (acs, form) = parse_form(&answer.text().await.unwrap());
    (cookie, acs, form)
}

async fn deliver(gw: &Gateway, (cookie, acs, form): &(String, String, Vec<(String, String)>)) -> reqwest::Response {
    gw.client.post(acs).form(form).header("accept", "text/html").header("cookie", cookie).send().await.unwrap()
}

async fn metrics(gw: &Gateway) -> String {
    gw.client.get(format!("http://{}/metrics", gw.ops)).send().await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn a_full_cpu_pool_answers_the_acs_503_at_once_and_proxied_requests_go_on() {
    let _serial = SERIAL.lock().await;
    let gw = gateway("login_workers = 1\nlogin_queue = 0").await;
    // A session first, while the pool is free.
    let done = deliver(&gw, &begin(&gw).await).await;
    assert_eq!(done.status(), 302, "a login completes while the pool is free");
    let session = format!("aisgate_session={}", set_cookie(&done, "aisgate_session").unwrap());

    let pending = begin(&gw).await;
    let pool = aisgate::cpu::global();
    let hold = pool.hold().expect("the pool is idle");
    let refused = deliver(&gw, &pending).await;
    assert_eq!(refused.status(), 503, "a full pool refuses the ACS instead of queueing it");
    assert_eq!(
        refused.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some(aisgate::cpu::RETRY_AFTER_SECS.to_string().as_str()),
        "the browser is told when to retry"
    );
    // The operator sees why: the typed reason `busy` and the kind of work.
    let line = line_with(&request_id(&refused), "login work pool is full (saml_acs)");
    assert!(line.contains("reason=\"busy\""), "{line}");
    // Our capacity, not the IdP's: the line must not send the operator to the IdP.
    assert!(line.contains("login work refused by the gateway"), "{line}");
    assert!(!line.contains("identity provider unavailable"), "{line}");
    assert_eq!(pool.refused(aisgate::cpu::Work::SamlAcs), 1);
    let m = metrics(&gw).await;
    assert!(m.contains(r#"aisgate_login_work_refused_total{work="saml_acs"} 1"#), "{m}");

    // Proxied traffic does not need the pool: unaffected while it is full.
    let proxied = gw.client.get(gw.url("/desk")).header("cookie", &session).send().await.unwrap();
    assert_eq!(proxied.status(), 200);
    drop(hold);

    // Once there is room again, logins complete.
    let done = deliver(&gw, &begin(&gw).await).await;
    assert_eq!(done.status(), 302, "logins complete again once the pool has room");
}

#[tokio::test]
async fn a_flood_of_login_starts_from_one_address_is_answered_429_with_the_reason() {
    let _serial = SERIAL.lock().await;
    let gw = gateway("login_starts_per_minute = 5").await;
    for i in 0..5 {
        let start = gw.navigate("/.aisgate/login?return=%2Fdesk&provider=nia", None).await;
        assert!(matches!(start.status().as_u16(), 200 | 302), "start #{i} is allowed");
    }
    let refused = gw.navigate("/.aisgate/login?return=%2Fdesk&provider=nia", None).await;
    assert_eq!(refused.status(), 429);
    assert!(set_cookie(&refused, "aisgate_login").is_none(), "no pending login is stored");
    let line = line_with(&request_id(&refused), "login starts rate-limited");
    assert!(line.contains("too many attempts from this client address"), "{line}");
}
