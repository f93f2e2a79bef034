//! The security boundary between clients and upstreams: forwarding headers, gateway cookies,
//! one-time-credential logins and restart links (issue 9). Every refusal is checked for its
//! reason (status, page or error code, and the operator's log line), not only its status.

mod support;

use aisgate::sim::stack::StackOptions;
use support::{header_echo, location, logs, raw_set_cookie, set_cookie, Gateway};

fn headers_of(body: &serde_json::Value) -> &serde_json::Map<String, serde_json::Value> {
    body["headers"].as_object().expect("headers object")
}

// ---------------------------------------------------------------------------
// Forwarding headers
// ---------------------------------------------------------------------------

/// Client-sent spellings that must never reach an upstream as sent.
const FORGED: &[&str] = &[
    "X_Forwarded_For",
    "x_forwarded_host",
    "X_Forwarded_Proto",
    "X_Request_Id",
    "X-Forwarded_For",
    "Proxy",
    "Proxy-Foo",
    "proxy_bar",
    "X-Original-URL",
    "X-Rewrite-URL",
    "X-Forwarded-Prefix",
    "X_Forwarded_Prefix",
    "X-Forwarded-Port",
    "X-Forwarded-Server",
    "X-Forwarded-Ssl",
    "X-Forwarded-Scheme",
    "X-Real-IP",
    "X_Real_IP",
    "X-Client-IP",
    "True-Client-IP",
    "CF-Connecting-IP",
    "X-Cluster-Client-IP",
    "X-Original-Host",
    "X-Host",
    "X_Auth_Subject",
];

/// Sends every [`FORGED`] header plus `extra` to the echo upstream; returns the request id
/// and the headers the upstream received.
async fn echo_with(gw: &Gateway, extra: &[(&str, &str)]) -> (String, serde_json::Value) {
    let mut req = gw.client.get(gw.url("/public/x")).header("accept", "application/json");
    for name in FORGED {
        req = req.header(*name, "6.6.6.6");
    }
    for (name, value) in extra {
        req = req.header(*name, *value);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let id = logs::request_id(&resp);
    (id, resp.json().await.unwrap())
}

#[tokio::test]
async fn forwarding_header_spellings_from_a_client_never_reach_the_upstream() {
    logs::capture();
    let gw = Gateway::with_upstream(&header_echo().await).await;
    let (id, body) = echo_with(&gw, &[("Forwarded", "for=6.6.6.6"), ("X-Forwarded-For", "6.6.6.6")]).await;
    let h = headers_of(&body);
    for name in FORGED {
        assert!(!h.contains_key(&name.to_ascii_lowercase()), "{name} reached the upstream: {h:?}");
    }
    assert!(!h.contains_key("forwarded"), "Forwarded from an untrusted peer");
    // The gateway's own values, in the spelling it writes.
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert!(h["x-forwarded-host"].as_str().unwrap().starts_with("localhost"));
    assert_eq!(h["x-request-id"], id.as_str());
    assert!(h.values().all(|v| v != "6.6.6.6"), "{h:?}");
    // The operator sees the names, never the values.
    let line = logs::line_with(&id, "client sent forwarding or proxy headers; stripped");
    for name in ["x_forwarded_for", "x-original-url", "proxy", "x-real-ip"] {
        assert!(line.contains(&format!("\"{name}\"")), "{name} not named in {line}");
    }
    assert!(!line.contains("6.6.6.6"), "{line}");
}

#[tokio::test]
async fn a_trusted_proxy_keeps_its_dash_forms_but_never_the_underscore_twins() {
    logs::capture();
    let gw = Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        server_extra: "trusted_proxies = [\"127.0.0.1/32\"]".into(),
        ..Default::default()
    })
    .await;
    let (_, body) = echo_with(
        &gw,
        &[
            ("X-Forwarded-For", "1.2.3.4"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "portal.example.cz"),
            ("Forwarded", "for=1.2.3.4;proto=https"),
        ],
    )
    .await;
    let h = headers_of(&body);
    assert_eq!(h["x-forwarded-for"], "1.2.3.4, 127.0.0.1", "appended");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-forwarded-host"], "portal.example.cz");
    assert_eq!(h["forwarded"], "for=1.2.3.4;proto=https");
    for name in FORGED {
        assert!(!h.contains_key(&name.to_ascii_lowercase()), "{name} reached the upstream via a trusted proxy");
    }
}

// ---------------------------------------------------------------------------
// Cookies
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_secure_config_names_every_gateway_cookie_with_the_host_prefix_and_none_reaches_the_upstream() {
    let gw = Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        session_extra: "# default cookie_name and login_cookie_name (cookie_secure = true)".into(),
        ..Default::default()
    })
    .await;
    let start = gw.navigate("/desk", None).await;
    assert_eq!(start.status(), 302);
    for name in ["__Host-aisgate_login", "__Host-aisgate_login_count"] {
        let raw = raw_set_cookie(&start, name).unwrap_or_else(|| panic!("{name} is set"));
        // What browsers require of a __Host- cookie.
        assert!(raw.contains("; Path=/;") && raw.contains("; Secure") && !raw.contains("Domain"), "{raw}");
    }
    assert!(raw_set_cookie(&start, "aisgate_login").is_none(), "no unprefixed default");
    let login = format!("__Host-aisgate_login={}", set_cookie(&start, "__Host-aisgate_login").unwrap());
    let form = gw.client.post(location(&start)).form(&[("user", "0")]).send().await.unwrap();
    let done = gw.client.get(location(&form)).header("cookie", &login).send().await.unwrap();
    assert_eq!(done.status(), 302, "the callback completes the login");
    let session = set_cookie(&done, "__Host-aisgate_session").expect("__Host- session cookie");
    let cookie = format!(
        "__Host-aisgate_session={session}; app=1; {login}; __Host-aisgate_login_count=x; __Host-aisgate_login_logout=y"
    );
    let resp = gw.client.get(gw.url("/desk")).header("cookie", cookie).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(headers_of(&body)["cookie"], "app=1", "only the app's own cookie reaches the upstream");
}

#[tokio::test]
async fn no_gateway_cookie_reaches_the_upstream_the_logout_state_one_included() {
    let gw = Gateway::with_upstream(&header_echo().await).await;
    let cookie = "a=1; aisgate_login=x; aisgate_login_count=y; aisgate_login_logout=z; b=2";
    let resp = gw.client.get(gw.url("/public/x")).header("cookie", cookie).send().await.unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(headers_of(&body)["cookie"], "a=1; b=2");
}

#[tokio::test]
async fn two_session_cookies_of_one_name_count_as_none() {
    logs::capture();
    let gw = Gateway::with_upstream(&header_echo().await).await;
    // A sibling subdomain's `Domain=` cookie (here: another user's valid session) arrives next
    // to this browser's own; neither may be believed.
    let planted = gw.login_to("/", 1).await.0;
    let own = gw.login().await;
    for cookie in [format!("{planted}; {own}"), format!("{own}; {planted}")] {
        let resp = gw.client.get(gw.url("/desk")).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(resp.status(), 401, "{cookie}");
        let id = logs::request_id(&resp);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "unauthenticated");
        let line = logs::line_with(&id, "several cookies of one gateway cookie name");
        assert!(line.contains("aisgate_session") && !line.contains(own.split_once('=').unwrap().1), "{line}");
    }
    // Each alone still works.
    let alone = gw.client.get(gw.url("/desk")).header("cookie", &own).send().await.unwrap();
    assert_eq!(alone.status(), 200);
}

#[tokio::test]
async fn two_pre_login_cookies_of_one_name_count_as_a_missing_binding() {
    logs::capture();
    let gw = Gateway::with_upstream(&header_echo().await).await;
    let (callback, own) = gw.begin_login("/desk", 0).await;
    let (_, planted) = gw.begin_login("/", 1).await;
    let resp = gw
        .client
        .get(&callback)
        .header("cookie", format!("{planted}; {own}"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(set_cookie(&resp, "aisgate_session").is_none());
    let id = logs::request_id(&resp);
    logs::line_with(&id, "several cookies of one gateway cookie name");
    logs::line_with(&id, "callback without a valid pre-login cookie refused");
    assert!(resp.text().await.unwrap().contains(support::NOT_INITIATED));
}

// ---------------------------------------------------------------------------
// One-time credentials
// ---------------------------------------------------------------------------

async fn direct_gateway(apps: Option<&str>) -> Gateway {
    Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        provider_extra: "login_mode = \"direct\"".into(),
        apps: apps.map(str::to_owned),
        ..Default::default()
    })
    .await
}

/// Starts a login for `path` and opens the direct form; returns its HTML and the pre-login
/// `Cookie` value.
async fn open_form(gw: &Gateway, path: &str) -> (String, String) {
    let start = gw.navigate(path, None).await;
    let encoded: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
    assert_eq!(location(&start), gw.url(&format!("/.aisgate/direct/jip?return={encoded}")));
    let login = format!("aisgate_login={}", set_cookie(&start, "aisgate_login").unwrap());
    let form = gw.client.get(location(&start)).header("cookie", &login).send().await.unwrap();
    assert_eq!(form.status(), 200);
    (form.text().await.unwrap(), login)
}

fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"").nth(1).and_then(|s| s.split('"').next()).unwrap().to_owned()
}

#[tokio::test]
async fn one_time_credentials_at_the_callback_are_refused_and_only_the_form_redeems_them() {
    logs::capture();
    let gw = direct_gateway(None).await;
    let (html, login) = open_form(&gw, "/desk").await;
    let (user, pass) = gw.sim.issue_one_time(0);
    let soap_calls = || gw.sim.calls.lock().unwrap().iter().filter(|c| c.contains("directAuthUserRequest")).count();
    let before = soap_calls();
    let query = format!("/.aisgate/callback/jip?username={user}&password={pass}");
    for attempt in 0..12 {
        let get = gw.client.get(gw.url(&query)).header("cookie", &login).header("accept", "text/html");
        let post =
            gw.client.post(gw.url("/.aisgate/callback/jip")).header("cookie", &login).header("accept", "text/html");
        let post = post.form(&[("username", user.as_str()), ("password", pass.as_str())]);
        for req in [get, post] {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 400, "attempt {attempt}");
            assert!(resp.headers().get("set-cookie").is_none(), "no session, no fresh pre-login cookie");
            let id = logs::request_id(&resp);
            let line = logs::line_with(&id, "one-time credentials sent to the callback refused");
            assert!(!line.contains(&user) && !line.contains(&pass), "{line}");
            let page = resp.text().await.unwrap();
            assert!(page.contains(support::NOT_INITIATED), "{page}");
            assert!(page.contains("href=\"/.aisgate/direct/jip\""), "the page leads to the form: {page}");
        }
    }
    assert_eq!(soap_calls(), before, "nothing was passed to the IdP");
    // The real form still redeems the same credentials, with the same pre-login cookie.
    let done = gw
        .client
        .post(gw.url("/.aisgate/direct/jip?return=%2Fdesk"))
        .header("cookie", &login)
        .form(&[("csrf", csrf_of(&html)), ("username", user), ("password", pass)])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 302);
    assert_eq!(location(&done), "/desk");
    assert!(set_cookie(&done, "aisgate_session").is_some());
}

// ---------------------------------------------------------------------------
// Restart links
// ---------------------------------------------------------------------------

const APP_AT_APP_ONLY: &str = r#"
[[app]]
name = "app"
path_prefix = "/app"
upstream = "{upstream}"
providers = ["jip"]
"#;

/// The first restart ("log in again") link on an error page.
fn restart_link(page: &str) -> String {
    let at = page.find("href=\"/.aisgate/login?").unwrap_or_else(|| panic!("no restart link in {page}"));
    page[at + 6..].split('"').next().unwrap().replace("&amp;", "&")
}

#[tokio::test]
async fn restart_links_lead_back_to_the_app_the_login_was_for_and_the_form_states_its_lifetime() {
    logs::capture();
    let gw = Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        provider_extra: "login_mode = \"direct\"".into(),
        apps: Some(APP_AT_APP_ONLY.to_owned()),
        session_extra: "login_ttl_secs = 420".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(gw.navigate("/", None).await.status(), 404, "no app at /");
    let (html, login) = open_form(&gw, "/app/cases?id=7").await;
    assert!(html.contains("do 7 minut od zahájení přihlášení"), "{html}");
    assert!(!html.contains("30 minut"), "{html}");
    let en = gw.client.get(gw.url("/.aisgate/direct/jip")).header("cookie", &login).header("accept-language", "en");
    assert!(en.send().await.unwrap().text().await.unwrap().contains("within 7 minutes of starting the login"));
    let (user, pass) = gw.sim.issue_one_time(0);
    let form = [("csrf", csrf_of(&html)), ("username", user), ("password", pass)];
    // The form's action is what the browser posts to.
    let action = html.split("action=\"").nth(1).and_then(|s| s.split('"').next()).unwrap().replace("&amp;", "&");
    assert_eq!(action, "/.aisgate/direct/jip?return=%2Fapp%2Fcases%3Fid%3D7");
    let post = |cookie: String| gw.client.post(gw.url(&action)).header("cookie", cookie).header("accept", "text/html");
    assert_eq!(post(login.clone()).form(&form).send().await.unwrap().status(), 302, "the login itself works");
    // A stale form: its pending login is used up (the same happens once it expired).
    let stale = post(login.clone()).form(&form).send().await.unwrap();
    assert_eq!(stale.status(), 400);
    let id = logs::request_id(&stale);
    logs::line_with(&id, "callback for an unknown, used or expired login");
    let page = stale.text().await.unwrap();
    assert!(page.contains(support::EXPIRED), "{page}");
    let link = restart_link(&page);
    assert_eq!(link, "/.aisgate/login?return=%2Fapp%2Fcases%3Fid%3D7&provider=jip");
    let restart = gw.navigate(&link, None).await;
    assert_eq!(restart.status(), 302, "the restart link starts a login (no 404)");
    // A form post without this browser's CSRF token, and a callback without any pre-login
    // cookie (no return parameter at all): back to the app, never to `/`.
    let forged = post(String::new()).form(&[("csrf", "x")]).send().await.unwrap();
    assert_eq!(forged.status(), 400);
    assert_eq!(restart_link(&forged.text().await.unwrap()), link);
    let bare = gw.client.get(gw.url("/.aisgate/callback/jip?sessionId=x")).header("accept", "text/html");
    let page = bare.send().await.unwrap().text().await.unwrap();
    assert!(page.contains(support::NOT_INITIATED), "{page}");
    assert_eq!(restart_link(&page), "/.aisgate/login?return=%2Fapp&provider=jip");
}
