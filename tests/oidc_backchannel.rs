//! OpenID Connect Back-Channel Logout 1.0 through the whole gateway: the simulated IdP signs a
//! logout token, posts it to `/.aisgate/backchannel-logout/{provider}`, and exactly the
//! sessions it names end. Every malformed token is refused with 400 and ends nothing.

mod support;

use aisgate::sim::oidc::{caais_user, enviam_user, BadLogoutToken, OidcSim, OidcSimConfig, SimAlg, SimClientAuth};
use aisgate::sim::stack::{OidcStackProvider, StackOptions};
use support::{header_echo, location, set_cookie, Gateway};

const APPS: &str = r#"
[[app]]
name = "desk"
upstream = "{upstream}"
providers = ["caais", "enviam"]
"#;

/// The second CAAIS user: another official.
fn other_user() -> serde_json::Map<String, serde_json::Value> {
    let mut user = caais_user();
    user.insert("sub".into(), "0b8a1c2d-0000-4000-8000-000000000002".into());
    user.insert("username".into(), "bernard_woolley".into());
    user
}

fn provider(
    name: &str,
    client_id: &str,
    alg: SimAlg,
    kid: bool,
    users: Vec<serde_json::Map<String, serde_json::Value>>,
) -> OidcStackProvider {
    OidcStackProvider {
        name: name.into(),
        sim: OidcSimConfig {
            client_id: client_id.into(),
            redirect_uri: String::new(),
            client_auth: SimClientAuth::Public,
            issuer_trailing_slash: name == "caais",
            kid,
            alg,
            users,
            outage_at_start: false,
        },
        client_auth: None,
        issuer: None,
        registered_client: true,
        extra: String::new(),
    }
}

/// CAAIS-like (RS256, no `kid`) with two users, and an EnviIAM-like provider whose user has
/// the same `sub` as CAAIS's first user, to show a logout stays within its provider.
async fn gateway() -> Gateway {
    support::logs::capture();
    let mut same_sub = enviam_user();
    same_sub.insert("sub".into(), caais_user()["sub"].clone());
    Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        apps: Some(APPS.to_owned()),
        oidc: vec![
            provider("caais", "MY_AIS", SimAlg::Rs256, false, vec![caais_user(), other_user()]),
            provider("enviam", "isoh", SimAlg::Es256, true, vec![same_sub]),
        ],
        ..Default::default()
    })
    .await
}

fn sim<'a>(gw: &'a Gateway, name: &str) -> &'a OidcSim {
    &gw.oidc[if name == "caais" { 0 } else { 1 }]
}

fn sub(user: usize) -> String {
    let claims = if user == 0 { caais_user() } else { other_user() };
    claims["sub"].as_str().unwrap_or_default().to_owned()
}

/// A browser's login as `user` at `provider` (query mode); returns its session cookie and the
/// `sid` the IdP put in its ID token.
async fn login(gw: &Gateway, provider: &str, user: usize) -> (String, String) {
    sim(gw, provider).knobs().user = user;
    let start = gw.navigate(&format!("/.aisgate/login?return=%2Fdesk&provider={provider}"), None).await;
    assert_eq!(start.status(), 302, "login redirects to the IdP");
    let login_cookie = format!("aisgate_login={}", set_cookie(&start, "aisgate_login").unwrap());
    let answer = gw.client.get(location(&start)).send().await.unwrap();
    assert_eq!(answer.status(), 303, "the simulated IdP answers in query mode");
    let done = gw.client.get(location(&answer)).header("cookie", login_cookie).send().await.unwrap();
    assert_eq!(done.status(), 302, "callback completes the login");
    let session = format!("aisgate_session={}", set_cookie(&done, "aisgate_session").unwrap());
    let sid = sim(gw, provider).knobs().last_sid.clone().expect("the ID token carried a sid");
    (session, sid)
}

/// Whether the session behind `cookie` still reaches the app.
async fn alive(gw: &Gateway, cookie: &str) -> bool {
    let resp = gw.client.get(gw.url("/desk")).header("cookie", cookie).send().await.unwrap();
    resp.status() == 200
}

async fn post_token(gw: &Gateway, provider: &str, token: &str) -> reqwest::Response {
    gw.client
        .post(gw.url(&format!("/.aisgate/backchannel-logout/{provider}")))
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap()
}

async fn assert_invalid_request(resp: reqwest::Response, label: &str) {
    assert_eq!(resp.status(), 400, "{label}");
    assert_eq!(resp.headers()["cache-control"], "no-store", "{label}");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"error": "invalid_request"}), "{label}");
}

#[tokio::test]
async fn a_logout_token_with_a_sid_ends_only_that_browsers_session() {
    let gw = gateway().await;
    let (first, first_sid) = login(&gw, "caais", 0).await;
    let (second_browser, _) = login(&gw, "caais", 0).await;
    let (other_user, _) = login(&gw, "caais", 1).await;
    let token = sim(&gw, "caais").logout_token(None, Some(&first_sid), None).unwrap();
    let resp = post_token(&gw, "caais", &token).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert!(resp.bytes().await.unwrap().is_empty(), "empty body");
    assert!(!alive(&gw, &first).await, "the named session ended");
    assert!(alive(&gw, &second_browser).await, "the same user's other browser keeps working");
    assert!(alive(&gw, &other_user).await, "another user's session keeps working");
}

#[tokio::test]
async fn a_logout_token_with_only_a_sub_ends_every_session_of_that_user_at_that_provider() {
    let gw = gateway().await;
    let (first, _) = login(&gw, "caais", 0).await;
    let (second_browser, _) = login(&gw, "caais", 0).await;
    let (other_user, _) = login(&gw, "caais", 1).await;
    let (same_sub_elsewhere, _) = login(&gw, "enviam", 0).await;
    let token = sim(&gw, "caais").logout_token(Some(&sub(0)), None, None).unwrap();
    assert_eq!(post_token(&gw, "caais", &token).await.status(), 200);
    assert!(!alive(&gw, &first).await);
    assert!(!alive(&gw, &second_browser).await);
    assert!(alive(&gw, &other_user).await, "another user's session keeps working");
    assert!(alive(&gw, &same_sub_elsewhere).await, "the same sub at another provider is another account");
}

#[tokio::test]
async fn each_invalid_logout_token_is_refused_with_400_and_ends_no_session() {
    let gw = gateway().await;
    let (cookie, sid) = login(&gw, "caais", 0).await;
    let fetches_before = sim(&gw, "caais").knobs().jwks_fetches;
    let bad = [
        BadLogoutToken::NoEvents,
        BadLogoutToken::OtherEvent,
        BadLogoutToken::WithNonce,
        BadLogoutToken::WrongAudience,
        BadLogoutToken::WrongIssuer,
        BadLogoutToken::NoJti,
        BadLogoutToken::Stale,
        BadLogoutToken::AlgNone,
        BadLogoutToken::Hs256WithPublicKey,
        BadLogoutToken::Tampered,
        BadLogoutToken::UnknownKey,
    ];
    for variant in bad {
        let token = sim(&gw, "caais").logout_token(Some(&sub(0)), Some(&sid), Some(variant)).unwrap();
        assert_invalid_request(post_token(&gw, "caais", &token).await, &format!("{variant:?}")).await;
        assert!(alive(&gw, &cookie).await, "{variant:?} ended no session");
    }
    let no_target = sim(&gw, "caais").logout_token(None, None, None).unwrap();
    assert_invalid_request(post_token(&gw, "caais", &no_target).await, "neither sid nor sub").await;
    // Another provider's valid token is not signed by this provider's keys nor for its client.
    let foreign = sim(&gw, "enviam").logout_token(Some(&sub(0)), Some(&sid), None).unwrap();
    assert_invalid_request(post_token(&gw, "caais", &foreign).await, "another provider's token").await;
    assert_invalid_request(post_token(&gw, "caais", "not.a.jwt").await, "garbage").await;
    let oversized = format!("{}.{}.{}", "e".repeat(10), "x".repeat(40_000), "s");
    assert_invalid_request(post_token(&gw, "caais", &oversized).await, "oversized").await;
    let no_field =
        gw.client.post(gw.url("/.aisgate/backchannel-logout/caais")).form(&[("token", "x")]).send().await.unwrap();
    assert_invalid_request(no_field, "no logout_token field").await;
    let token = sim(&gw, "caais").logout_token(Some(&sub(0)), Some(&sid), None).unwrap();
    let json_body = gw
        .client
        .post(gw.url("/.aisgate/backchannel-logout/caais"))
        .header("content-type", "application/json")
        .body(serde_json::json!({ "logout_token": token }).to_string())
        .send()
        .await
        .unwrap();
    assert_invalid_request(json_body, "not a form").await;
    assert!(alive(&gw, &cookie).await, "no refused request ended the session");
    let refetches = sim(&gw, "caais").knobs().jwks_fetches - fetches_before;
    assert!(refetches <= 1, "unknown keys cause at most one rate-limited JWKS refetch, not {refetches}");
}

#[tokio::test]
async fn a_replayed_logout_token_is_refused() {
    let gw = gateway().await;
    let (_, sid) = login(&gw, "caais", 0).await;
    let token = sim(&gw, "caais").logout_token(Some(&sub(0)), Some(&sid), None).unwrap();
    assert_eq!(post_token(&gw, "caais", &token).await.status(), 200);
    // The same signed, still fresh token again: a 200 would mean its jti was accepted twice.
    let (cookie, _) = login(&gw, "caais", 0).await;
    let resp = post_token(&gw, "caais", &token).await;
    let id = support::logs::request_id(&resp);
    assert_invalid_request(resp, "replayed jti").await;
    let line = support::logs::line_with(&id, "back-channel logout token refused");
    assert!(line.contains("reason=\"logout_token_replayed\""), "{line}");
    assert!(alive(&gw, &cookie).await);
    let metrics = gw.client.get(format!("http://{}/metrics", gw.ops)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("aisgate_oidc_logout_token_rejected_total{provider=\"caais\"} 1"), "{metrics}");
}

#[tokio::test]
async fn the_endpoint_is_404_for_a_provider_without_back_channel_logout_and_for_an_unknown_one() {
    let gw = gateway().await;
    let token = sim(&gw, "caais").logout_token(Some(&sub(0)), None, None).unwrap();
    assert_eq!(post_token(&gw, "jip", &token).await.status(), 404, "KAAS has no back-channel logout");
    assert_eq!(post_token(&gw, "nope", &token).await.status(), 404);
}
