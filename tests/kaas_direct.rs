//! One-time-credential login (JIP/KAAS direct): the gateway's own form, CSRF-bound to the
//! browser, rate-limited, redeeming credentials with `directAuthUser` over mutual TLS.

mod support;

use aisgate::sim::stack::StackOptions;
use support::{header_echo, location, set_cookie, Gateway};

async fn direct_gateway() -> Gateway {
    Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        provider_extra: "login_mode = \"direct\"".into(),
        ..Default::default()
    })
    .await
}

/// Starts a login for `path`; returns the form's CSRF token and the pre-login cookie.
async fn open_form(gw: &Gateway, path: &str) -> (String, String) {
    let start = gw.navigate(path, None).await;
    assert_eq!(start.status(), 302);
    let form_url = location(&start);
    assert!(form_url.starts_with(&gw.url("/.aisgate/direct/jip?return=")), "{form_url}");
    let login = format!("aisgate_login={}", set_cookie(&start, "aisgate_login").unwrap());
    let form = gw.client.get(form_url).header("cookie", &login).send().await.unwrap();
    assert_eq!(form.status(), 200);
    let html = form.text().await.unwrap();
    let generator = format!("{}?atsId=AISGATE_DEMO&amp;providerType=directAuth", gw.sim.login_url());
    assert!(html.contains(&generator), "generator link in {html}");
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).and_then(|s| s.split('"').next()).unwrap().to_owned();
    (csrf, login)
}

async fn submit(gw: &Gateway, cookie: &str, csrf: &str, user: &str, pass: &str) -> reqwest::Response {
    gw.client
        .post(gw.url("/.aisgate/direct/jip"))
        .header("cookie", cookie)
        .header("accept", "text/html")
        .form(&[("csrf", csrf), ("username", user), ("password", pass)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn one_time_credentials_log_in_and_cannot_be_reused() {
    let gw = direct_gateway().await;
    let (csrf, login) = open_form(&gw, "/office?x=1").await;
    let (user, pass) = gw.sim.issue_one_time(1);
    let done = submit(&gw, &login, &csrf, &user, &pass).await;
    assert_eq!(done.status(), 302);
    assert_eq!(location(&done), "/office?x=1");
    let session = format!("aisgate_session={}", set_cookie(&done, "aisgate_session").unwrap());
    let body: serde_json::Value =
        gw.client.get(gw.url("/office")).header("cookie", &session).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["headers"]["x-auth-username"], "dvorak");
    assert_eq!(body["headers"]["x-auth-family-name"], "Dvo%C5%99%C3%A1k");
    assert_eq!(body["headers"]["x-auth-loa"], "low", "p-pwd maps to LoA low");
    // The same credentials again: refused by the IdP, the form comes back with the reason.
    let (csrf, login) = open_form(&gw, "/").await;
    let again = submit(&gw, &login, &csrf, &user, &pass).await;
    assert_eq!(again.status(), 401);
    assert!(set_cookie(&again, "aisgate_login").is_some(), "a fresh pre-login handle for the retry");
    assert!(again.text().await.unwrap().contains("role=\"alert\""));
}

#[tokio::test]
async fn refused_credentials_show_the_form_again_and_a_retry_succeeds() {
    let gw = direct_gateway().await;
    let (csrf, login) = open_form(&gw, "/").await;
    let refused = submit(&gw, &login, &csrf, "OTPwrong", "nope").await;
    assert_eq!(refused.status(), 401);
    let login = format!("aisgate_login={}", set_cookie(&refused, "aisgate_login").unwrap());
    let html = refused.text().await.unwrap();
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).and_then(|s| s.split('"').next()).unwrap().to_owned();
    let (user, pass) = gw.sim.issue_one_time(0);
    let ok = submit(&gw, &login, &csrf, &user, &pass).await;
    assert_eq!(ok.status(), 302);
    assert!(set_cookie(&ok, "aisgate_session").is_some());
}

#[tokio::test]
async fn a_form_post_without_this_browsers_csrf_token_is_refused_before_any_soap_call() {
    let gw = direct_gateway().await;
    let (csrf, login) = open_form(&gw, "/").await;
    let (_, other_login) = open_form(&gw, "/").await;
    let (user, pass) = gw.sim.issue_one_time(0);
    let calls = gw.sim.calls.lock().unwrap().len();
    for (cookie, token) in [(login.as_str(), "k.forged"), (other_login.as_str(), csrf.as_str()), ("", csrf.as_str())] {
        let resp = submit(&gw, cookie, token, &user, &pass).await;
        assert_eq!(resp.status(), 400, "cookie {cookie:?} token {token:?}");
    }
    let direct_calls =
        gw.sim.calls.lock().unwrap()[calls..].iter().filter(|c| c.contains("directAuthUserRequest")).count();
    assert_eq!(direct_calls, 0);
    // The credentials were not burnt: the right browser can still use them.
    assert_eq!(submit(&gw, &login, &csrf, &user, &pass).await.status(), 302);
}

#[tokio::test]
async fn attempts_are_rate_limited_per_client() {
    let gw = direct_gateway().await;
    let (csrf, login) = open_form(&gw, "/").await;
    let mut statuses = Vec::new();
    for i in 0..11 {
        let resp = submit(&gw, &login, &csrf, &format!("OTP{i}"), "x").await;
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 1, "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429));
}

#[tokio::test]
async fn a_form_without_the_password_shows_the_form_again_counted_as_refused() {
    let gw = direct_gateway().await;
    let (csrf, login) = open_form(&gw, "/").await;
    let resp = gw
        .client
        .post(gw.url("/.aisgate/direct/jip"))
        .header("cookie", &login)
        .header("accept", "text/html")
        .form(&[("csrf", csrf.as_str()), ("username", "OTP123")])
        .send()
        .await
        .unwrap();
    // Checked by the gateway before any SOAP call: the form again, not the dead-end page.
    assert_eq!(resp.status(), 401);
    assert!(set_cookie(&resp, "aisgate_login").is_some(), "a fresh pre-login handle for the retry");
    assert!(resp.text().await.unwrap().contains("role=\"alert\""));
    let metrics = gw.client.get(format!("http://{}/metrics", gw.ops)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("aisgate_logins_total{provider=\"jip\",result=\"refused\"} 1"), "{metrics}");
    let series = "aisgate_login_refusals_total{provider=\"jip\",reason=\"credentials_missing\"} 1";
    assert!(metrics.contains(series), "{metrics}");
}
