//! Form posts across a login (issue 14 item 15): a same-origin urlencoded form POST sent after
//! the session expired is kept in the pending login and, after the login, offered as a page
//! that posts the same fields to the same URL — once. Cross-site, oversized and non-form
//! POSTs are not kept. Against a real gateway, the simulated JIP/KAAS IdP and an upstream that
//! echoes the body it received.

mod support;

use std::time::Duration;

use aisgate::sim::stack::StackOptions;
use http::HeaderMap;
use hyper::body::Incoming;
use hyper::Request;
use support::{location, logs, parse_form, set_cookie, text, upstream, Gateway};

/// The form the tests post: repeated names, `+`/`&`/`=` inside values, Czech letters, markup.
fn fields() -> Vec<(String, String)> {
    [
        ("title", "Hello world"),
        ("note", "žluťoučký kůň"),
        ("note", "a&b=c+d"),
        ("html", "\"><script>alert(1)</script>"),
        ("empty", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// `fields` urlencoded as a browser encodes a form.
fn encoded(fields: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish()
}

/// An upstream answering with the method, path and body it received, as JSON.
async fn body_echo() -> String {
    upstream(|req: Request<Incoming>| async move {
        use http_body_util::BodyExt;
        let method = req.method().to_string();
        let path = req.uri().to_string();
        let subject = req.headers().get("x-auth-subject").map(|v| v.to_str().unwrap_or("").to_owned());
        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let json = serde_json::json!({
            "method": method,
            "path": path,
            "subject": subject,
            "body": String::from_utf8_lossy(&body),
        });
        text(200, json.to_string())
    })
    .await
}

/// A change to a request's headers.
type EditHeaders = fn(&mut HeaderMap);

async fn gateway(server_extra: &str) -> Gateway {
    logs::capture();
    let opts =
        StackOptions { upstream: Some(body_echo().await), server_extra: server_extra.to_owned(), ..Default::default() };
    Gateway::start(opts).await
}

/// A browser submitting a form of the gateway's own origin: `Origin`, `Sec-Fetch-*`, HTML
/// accepted; `edit` changes the headers a test needs.
async fn form_post(
    gw: &Gateway,
    path: &str,
    body: impl Into<reqwest::Body>,
    cookie: Option<&str>,
    edit: impl FnOnce(&mut HeaderMap),
) -> reqwest::Response {
    let mut req = gw
        .client
        .post(gw.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", &gw.base)
        .header("sec-fetch-site", "same-origin")
        .header("sec-fetch-mode", "navigate")
        .header("accept", "text/html,application/xhtml+xml");
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let mut req = req.body(body).build().unwrap();
    edit(req.headers_mut());
    gw.client.execute(req).await.unwrap()
}

/// Takes a login start through the simulated IdP (demo user 0): the callback URL and the
/// `Cookie` value of the pre-login cookie.
async fn through_idp(gw: &Gateway, start: &reqwest::Response) -> (String, String) {
    assert_eq!(start.status(), 302, "the login starts");
    let login_cookie = set_cookie(start, "aisgate_login").expect("pre-login cookie");
    let form = gw.client.post(location(start)).form(&[("user", "0")]).send().await.unwrap();
    assert_eq!(form.status(), 303, "simulator redirects to the callback");
    (location(&form), format!("aisgate_login={login_cookie}"))
}

async fn callback(gw: &Gateway, url: &str, cookie: &str) -> reqwest::Response {
    gw.client.get(url).header("cookie", cookie).header("accept", "text/html").send().await.unwrap()
}

/// A logged-in browser whose session then expires (the test clock passes its absolute
/// timeout): the stale `Cookie` value.
async fn expired_session(gw: &Gateway) -> String {
    let (cookie, _) = gw.login_to("/", 0).await;
    gw.clock.advance(Duration::from_secs(3 * 24 * 3600));
    let stale = gw.navigate("/", Some(&cookie)).await;
    assert_eq!(stale.status(), 302, "the session has expired: a navigation logs in again");
    cookie
}

/// The expired-session POST of `fields()` to `/form?x=1`, through the login: the callback's
/// answer, its URL and the cookies it was redeemed with.
async fn post_then_login(gw: &Gateway) -> (reqwest::Response, String, String) {
    let stale = expired_session(gw).await;
    let start = form_post(gw, "/form?x=1", encoded(&fields()), Some(&stale), |_| ()).await;
    logs::assert_reason(&start, "form POST without a session: kept across the login");
    let (url, login_cookie) = through_idp(gw, &start).await;
    let done = callback(gw, &url, &login_cookie).await;
    (done, url, login_cookie)
}

#[tokio::test]
async fn an_expired_session_form_post_is_sent_on_after_the_login_with_the_same_body() {
    let gw = gateway("").await;
    let (done, _, _) = post_then_login(&gw).await;
    assert_eq!(done.status(), 200, "the callback answers with the form page, not a redirect");
    assert!(done.headers().get("location").is_none());
    assert_eq!(done.headers()["cache-control"], "no-store");
    let session = set_cookie(&done, "aisgate_session").expect("the login made a session");
    logs::assert_reason(&done, "login done: the kept form POST goes on");
    let page = done.text().await.unwrap();
    assert!(page.contains("<html lang=\"cs\">"), "{page}");
    assert!(page.contains("<button type=\"submit\""), "a visible Continue button for no-JS: {page}");
    assert!(page.contains("Pokračovat"), "{page}");
    assert!(!page.contains("<script"), "values are escaped, no script runs: {page}");
    let (action, posted) = parse_form(&page);
    assert_eq!(action, "/form?x=1", "the form goes back to the URL it was sent to");
    assert_eq!(posted, fields(), "exactly the fields, in order");

    // The browser presses Continue: the upstream gets the user's POST, body unchanged.
    let cookie = format!("aisgate_session={session}");
    let sent = form_post(&gw, &action, encoded(&posted), Some(&cookie), |_| ()).await;
    assert_eq!(sent.status(), 200);
    let echo: serde_json::Value = sent.json().await.unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/form?x=1");
    assert_eq!(echo["body"], encoded(&fields()), "the upstream receives the very body first sent");
    assert!(echo["subject"].as_str().is_some_and(|s| !s.is_empty()), "as the logged-in user: {echo}");
}

#[tokio::test]
async fn the_kept_form_post_is_single_use_a_reloaded_callback_does_not_replay_it() {
    let gw = gateway("").await;
    let (done, url, login_cookie) = post_then_login(&gw).await;
    assert_eq!(done.status(), 200);
    let session = set_cookie(&done, "aisgate_session").expect("session");
    let again = callback(&gw, &url, &format!("{login_cookie}; aisgate_session={session}")).await;
    assert_eq!(again.status(), 302, "a reload goes on to the page, by GET");
    // The pending login (with the form and its return URL) is gone: the reload goes on to
    // the app's home, as any reloaded callback does.
    assert_eq!(location(&again), "/");
    logs::assert_reason(&again, "callback in a browser already logged in");
    let body = again.text().await.unwrap();
    assert!(!body.contains("<form") && !body.contains("Hello"), "the form is not offered again: {body}");
}

#[tokio::test]
async fn a_cross_site_form_post_is_never_kept() {
    let gw = gateway("").await;
    let cases: [(&str, EditHeaders); 7] = [
        ("another origin", |h| {
            h.insert("origin", "https://evil.example".parse().unwrap());
            h.insert("sec-fetch-site", "cross-site".parse().unwrap());
        }),
        ("another origin, no Sec-Fetch-Site (older browser)", |h| {
            h.insert("origin", "https://evil.example".parse().unwrap());
            h.remove("sec-fetch-site");
        }),
        ("same Origin, but the browser says cross-site", |h| {
            h.insert("sec-fetch-site", "cross-site".parse().unwrap());
        }),
        ("a sibling site", |h| {
            h.insert("sec-fetch-site", "same-site".parse().unwrap());
        }),
        ("a second Sec-Fetch-Site", |h| {
            h.append("sec-fetch-site", "cross-site".parse().unwrap());
        }),
        ("opaque Origin", |h| {
            h.insert("origin", "null".parse().unwrap());
        }),
        ("no Origin at all", |h| {
            h.remove("origin");
            h.remove("sec-fetch-site");
        }),
    ];
    for (label, edit) in cases {
        let resp = form_post(&gw, "/form", encoded(&fields()), None, edit).await;
        assert_eq!(resp.status(), 401, "{label}: the usual answer to a POST without a session");
        assert!(set_cookie(&resp, "aisgate_login").is_none(), "{label}: no login was started, nothing stored");
        logs::assert_reason(&resp, "reason=cross_site");
        let json: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(json["error"], "unauthenticated", "{label}");
    }
}

#[tokio::test]
async fn an_oversized_form_post_is_not_kept_and_the_user_still_gets_the_login() {
    let gw = gateway("preserve_post_max_bytes = 1024").await;
    let big = encoded(&[("text".to_owned(), "x".repeat(2000))]);
    let start = form_post(&gw, "/form", big, None, |_| ()).await;
    logs::assert_reason(&start, "reason=too_large");
    assert_eq!(start.status(), 302, "the login starts anyway");
    let (url, login_cookie) = through_idp(&gw, &start).await;
    let done = callback(&gw, &url, &login_cookie).await;
    assert_eq!(done.status(), 302, "no form page: back to the URL by GET");
    assert_eq!(location(&done), "/form");
    assert!(set_cookie(&done, "aisgate_session").is_some(), "logged in");

    // Just under the cap, it is kept.
    let small = encoded(&[("text".to_owned(), "x".repeat(1000))]);
    let kept = form_post(&gw, "/form", small, None, |_| ()).await;
    logs::assert_reason(&kept, "kept across the login");
}

#[tokio::test]
async fn a_non_form_body_is_not_kept() {
    let gw = gateway("").await;
    for content_type in ["multipart/form-data; boundary=x", "application/json", "text/plain"] {
        let resp = form_post(&gw, "/form", "{\"a\":1}", None, |h| {
            h.insert("content-type", content_type.parse().unwrap());
        })
        .await;
        logs::assert_reason(&resp, "reason=not_urlencoded_form");
        assert_eq!(resp.status(), 302, "{content_type}: the user's own form still leads to the login");
        let (url, login_cookie) = through_idp(&gw, &resp).await;
        let done = callback(&gw, &url, &login_cookie).await;
        assert_eq!(done.status(), 302, "{content_type}: nothing to replay");
        assert_eq!(location(&done), "/form");
    }
    // A script's POST (fetch) is no navigation: the usual 401.
    let fetch = form_post(&gw, "/form", encoded(&fields()), None, |h| {
        h.insert("sec-fetch-mode", "cors".parse().unwrap());
    })
    .await;
    assert_eq!(fetch.status(), 401);
    logs::assert_reason(&fetch, "reason=not_navigation");
}

#[tokio::test]
async fn preserve_post_max_bytes_0_keeps_nothing() {
    let gw = gateway("preserve_post_max_bytes = 0").await;
    let resp = form_post(&gw, "/form", encoded(&fields()), None, |_| ()).await;
    assert_eq!(resp.status(), 401, "the answer before this feature: 401 naming the login");
    assert!(set_cookie(&resp, "aisgate_login").is_none());
    let json: serde_json::Value = resp.json().await.unwrap();
    assert!(json["login"].as_str().is_some_and(|l| l.starts_with("/.aisgate/login?return=")), "{json}");
    assert!(!logs::lines_for(json["request_id"].as_str().unwrap()).iter().any(|l| l.contains("kept across")));
}
