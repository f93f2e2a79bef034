//! OpenID Connect login through the whole gateway against the in-process OIDC simulator:
//! a CAAIS-like provider (token endpoint on a separate mTLS host, RS256 keys without `kid`,
//! issuer with a trailing slash, userinfo) and an EnviIAM-like one (public client with PKCE,
//! ES256 with `kid`, `form_post`). Every rejection has its own test, and each one checks that
//! no session was created.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use aisgate::sim::oidc::{enviam_user, BadToken, OidcSimConfig, SimAlg, SimClientAuth};
use aisgate::sim::stack::{OidcStackProvider, StackOptions};
use base64::Engine;
use support::{
    header_echo, location, parse_form, raw_set_cookie, set_cookie, Gateway, EXPIRED, LOGIN_FAILED, NOT_INITIATED,
    UNAVAILABLE,
};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const APPS: &str = r#"
[[app]]
name = "desk"
upstream = "{upstream}"
providers = ["caais", "enviam"]
logout_paths = ["/logout"]
"#;

fn caais(extra: &str) -> OidcStackProvider {
    support::caais_provider(&format!("loa = \"substantial\"\nuserinfo = true\n{extra}"))
}

fn enviam(extra: &str) -> OidcStackProvider {
    OidcStackProvider {
        name: "enviam".into(),
        sim: OidcSimConfig {
            client_id: "isoh".into(),
            redirect_uri: String::new(),
            client_auth: SimClientAuth::Public,
            issuer_trailing_slash: false,
            kid: true,
            alg: SimAlg::Es256,
            users: vec![enviam_user()],
            outage_at_start: false,
        },
        client_auth: None,
        issuer: None,
        registered_client: true,
        extra: format!("response_mode = \"form_post\"\n{extra}"),
    }
}

async fn gateway(providers: Vec<OidcStackProvider>) -> Gateway {
    support::logs::capture();
    Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        apps: Some(APPS.to_owned()),
        oidc: providers,
        ..Default::default()
    })
    .await
}

async fn both() -> Gateway {
    gateway(vec![caais(""), enviam("")]).await
}

fn sim<'a>(gw: &'a Gateway, name: &str) -> &'a aisgate::sim::oidc::OidcSim {
    let index = if name == "caais" { 0 } else { 1 };
    &gw.oidc[index]
}

/// The browser's side of a login up to the IdP's answer, not yet delivered.
struct Pending {
    /// `Cookie` header value binding the login to this browser.
    cookie: String,
    /// Callback URL (query mode) or form action.
    callback: String,
    /// Callback parameters (form_post) — empty in query mode, where they are in the URL.
    form: Vec<(String, String)>,
}

/// Starts a login at `provider` for `/desk` and lets the simulated IdP answer.
async fn begin(gw: &Gateway, provider: &str) -> Pending {
    let start = gw.navigate(&format!("/.aisgate/login?return=%2Fdesk&provider={provider}"), None).await;
    assert_eq!(start.status(), 302, "login redirects to the IdP");
    let raw_cookie = raw_set_cookie(&start, "aisgate_login").expect("pre-login cookie");
    // Browsers do not send SameSite=Lax cookies on the IdP's cross-site form_post.
    let expected = if provider == "enviam" { "SameSite=None; Secure" } else { "SameSite=Lax" };
    assert!(raw_cookie.contains(expected), "{raw_cookie}");
    let cookie = format!("aisgate_login={}", set_cookie(&start, "aisgate_login").expect("pre-login cookie"));
    let answer = gw.client.get(location(&start)).send().await.unwrap();
    match answer.status().as_u16() {
        303 => Pending { cookie, callback: location(&answer), form: Vec::new() },
        200 => {
            let page = answer.text().await.unwrap();
            let (callback, form) = parse_form(&page);
            Pending { cookie, callback, form }
        }
        other => panic!("IdP answered {other}: {}", answer.text().await.unwrap()),
    }
}

/// Delivers the IdP's answer as the browser would: GET (query) or POST (form_post).
async fn deliver(gw: &Gateway, p: &Pending) -> reqwest::Response {
    deliver_to(gw, &p.callback, p).await
}

async fn deliver_to(gw: &Gateway, url: &str, p: &Pending) -> reqwest::Response {
    let req = if p.form.is_empty() { gw.client.get(url) } else { gw.client.post(url).form(&p.form) };
    req.header("cookie", &p.cookie).header("accept", "text/html").send().await.unwrap()
}

/// `callback` with its `state` parameter replaced by `forged` (other parameters kept, in order).
fn with_forged_state(callback: &str) -> String {
    let mut url = url::Url::parse(callback).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" { "forged".to_owned() } else { v.into_owned() };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.into()
}

/// A complete login; returns the session `Cookie` value.
async fn login(gw: &Gateway, provider: &str) -> String {
    let p = begin(gw, provider).await;
    let done = deliver(gw, &p).await;
    assert_eq!(done.status(), 302, "callback completes the login: {}", done.text().await.unwrap_or_default());
    assert_eq!(location(&done), "/desk");
    format!("aisgate_session={}", set_cookie(&done, "aisgate_session").expect("session cookie"))
}

async fn upstream_headers(gw: &Gateway, cookie: &str) -> serde_json::Value {
    let resp = gw.client.get(gw.url("/desk")).header("cookie", cookie).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json::<serde_json::Value>().await.unwrap()["headers"].clone()
}

/// The gateway's own error page: status, title, no session, no code or token echoed.
async fn assert_refused(resp: reqwest::Response, status: u16, title: &str, label: &str) {
    assert_eq!(resp.status().as_u16(), status, "{label}");
    assert!(set_cookie(&resp, "aisgate_session").is_none(), "{label}: no session on failure");
    let page = resp.text().await.unwrap();
    assert!(page.contains(title), "{label}: {title:?} missing\n{page}");
    assert!(!page.contains("eyJ"), "{label}: no token in the page");
}

/// A login whose ID token the simulator spoils in one way must fail with the login-failed page.
async fn assert_bad_token_rejected(bad: BadToken) {
    let gw = both().await;
    sim(&gw, "caais").knobs().bad = Some(bad);
    let p = begin(&gw, "caais").await;
    assert_refused(deliver(&gw, &p).await, 400, LOGIN_FAILED, &format!("{bad:?}")).await;
    assert_eq!(sim(&gw, "caais").knobs().token_calls, 1, "the code was redeemed once");
    // The gateway still logs in afterwards.
    login(&gw, "caais").await;
}

async fn readyz(gw: &Gateway) -> (u16, serde_json::Value) {
    let resp = gw.client.get(format!("http://{}/readyz", gw.ops)).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// Waits until `/readyz` reports `provider` with readiness `ready`.
/// (A provider that has not tried yet does not count as not ready.)
async fn wait_ready(gw: &Gateway, provider: &str, ready: bool) -> serde_json::Value {
    for _ in 0..100 {
        let (_, body) = readyz(gw).await;
        let p = &body["providers"][provider];
        if p["ready"] == ready && p["detail"] != "discovery not fetched yet" {
            return p.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{provider} did not become ready={ready}: {:?}", readyz(gw).await);
}

fn jwt_payload(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------
// Successful logins
// ---------------------------------------------------------------------------

#[tokio::test]
async fn caais_login_over_mtls_with_keys_without_kid_and_a_trailing_slash_issuer_forwards_roles_and_organisation() {
    let gw = both().await;
    let cookie = login(&gw, "caais").await;
    let auth = sim(&gw, "caais").knobs().last_authorize.clone().unwrap();
    assert_eq!(auth["code_challenge_method"], "S256");
    assert_eq!(auth["scope"], "openid profile");
    assert_eq!(auth.get("response_mode"), None, "query mode sends no response_mode");
    for name in ["state", "nonce", "code_challenge"] {
        assert!(auth[name].len() >= 43, "{name} has at least 256 bits");
    }
    assert!(sim(&gw, "caais").issuer.ends_with('/'));
    let h = upstream_headers(&gw, &cookie).await;
    assert_eq!(h["x-auth-provider"], "caais");
    assert_eq!(h["x-auth-protocol"], "oidc");
    assert_eq!(h["x-auth-subject"], "16b33670-a816-4c1a-8712-d99e9ff85fec");
    assert_eq!(h["x-auth-username"], "humphrey_appleby");
    assert_eq!(h["x-auth-roles"], "editor,spravce");
    assert_eq!(h["x-auth-agenda-roles"], "K100:CR1111,K100:CR2222");
    assert_eq!(h["x-auth-org-code"], "MF", "from the misspelt legal_entity_shorcut");
    assert_eq!(h["x-auth-org-ovm-id"], "00006947");
    assert_eq!(h["x-auth-loa"], "substantial", "the LoA of the client registration");
}

#[tokio::test]
async fn enviam_public_client_with_pkce_and_form_post_forwards_crzp_and_rpp_roles_and_loa() {
    let gw = both().await;
    let cookie = login(&gw, "enviam").await;
    let auth = sim(&gw, "enviam").knobs().last_authorize.clone().unwrap();
    assert_eq!(auth["response_mode"], "form_post");
    let h = upstream_headers(&gw, &cookie).await;
    assert_eq!(h["x-auth-subject"], "123e4567-e89b-12d3-a456-426655440000");
    assert_eq!(h["x-auth-username"], "custuser");
    assert_eq!(h["x-auth-roles"], "A100,A101");
    assert_eq!(h["x-auth-agenda-roles"], "A100:A001,A101:A002");
    assert_eq!(h["x-auth-loa"], "high");
}

#[tokio::test]
async fn the_caais_token_endpoint_refuses_a_client_without_its_certificate_and_the_user_gets_503() {
    let mut p = caais("");
    p.client_auth = Some("none".into());
    p.extra = String::new();
    let gw = gateway(vec![p, enviam("")]).await;
    let pending = begin(&gw, "caais").await;
    assert_refused(deliver(&gw, &pending).await, 503, UNAVAILABLE, "no client certificate").await;
}

#[tokio::test]
async fn a_confidential_client_logs_in_with_client_secret_basic_and_with_client_secret_post() {
    for method in ["client_secret_basic", "client_secret_post"] {
        let mut p = enviam("");
        p.sim.client_auth = SimClientAuth::Secret("s3cret-from-a-file".into());
        p.client_auth = Some(method.into());
        let gw = gateway(vec![caais(""), p]).await;
        let cookie = login(&gw, "enviam").await;
        assert_eq!(upstream_headers(&gw, &cookie).await["x-auth-username"], "custuser", "{method}");
    }
}

#[tokio::test]
async fn the_caais_token_endpoint_refuses_an_unregistered_client_certificate() {
    let mut p = caais("");
    p.registered_client = false;
    let gw = gateway(vec![p, enviam("")]).await;
    let pending = begin(&gw, "caais").await;
    let resp = deliver(&gw, &pending).await;
    let id = support::logs::request_id(&resp);
    assert_refused(resp, 503, UNAVAILABLE, "unregistered certificate").await;
    assert_eq!(sim(&gw, "caais").knobs().token_calls, 1, "the request reached the token host");
    // Our client configuration is wrong: the operator sees the OAuth error code, as an
    // outage (no login can succeed until they act), never as the user's fault.
    let line = support::logs::line_with(&id, "identity provider unavailable");
    assert!(line.contains("ERROR") && line.contains("invalid_client"), "{line}");
    assert!(line.contains("reason=\"token_endpoint_client_rejected\""), "{line}");
    let metrics = gw.client.get(format!("http://{}/metrics", gw.ops)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("aisgate_logins_total{provider=\"caais\",result=\"error\"} 1"), "{metrics}");
    let series = "aisgate_login_refusals_total{provider=\"caais\",reason=\"token_endpoint_client_rejected\"} 1";
    assert!(metrics.contains(series), "{metrics}");
}

#[tokio::test]
async fn a_forged_state_is_refused_with_its_reason_not_as_the_idps_rejection() {
    let gw = both().await;
    let p = begin(&gw, "caais").await;
    let url = with_forged_state(&p.callback);
    let resp = gw.client.get(&url).header("cookie", &p.cookie).header("accept", "text/html").send().await.unwrap();
    let id = support::logs::request_id(&resp);
    assert_refused(resp, 400, LOGIN_FAILED, "forged state").await;
    let line = support::logs::line_with(&id, "login refused: state does not match this login");
    assert!(line.contains("WARN") && line.contains("reason=\"state_mismatch\""), "{line}");
    assert!(!line.contains("identity provider rejected"), "{line}");
}

#[tokio::test]
async fn an_oauth_error_in_the_authorization_response_is_the_idps_no_even_server_error() {
    // Delivered through the browser: anyone holding their own state could forge it, so it
    // must never count as an outage.
    let gw = both().await;
    let p = begin(&gw, "caais").await;
    let url = url::Url::parse(&p.callback).unwrap();
    let state = url.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let mut back = url.clone();
    back.query_pairs_mut().clear().append_pair("state", &state).append_pair("error", "server_error");
    let resp =
        gw.client.get(back.as_str()).header("cookie", &p.cookie).header("accept", "text/html").send().await.unwrap();
    let id = support::logs::request_id(&resp);
    assert_refused(resp, 400, LOGIN_FAILED, "server_error").await;
    let line = support::logs::line_with(&id, "login denied by the identity provider");
    assert!(line.contains("server_error") && line.contains("reason=\"authorization_error\""), "{line}");
    let metrics = gw.client.get(format!("http://{}/metrics", gw.ops)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("aisgate_logins_total{provider=\"caais\",result=\"error\"} 0"), "{metrics}");
}

#[tokio::test]
async fn an_issuer_configured_without_the_trailing_slash_does_not_match_caais_discovery() {
    let mut p = caais("");
    // The simulator's issuer is its base URL plus "/": configure it without the slash.
    p.issuer = Some("{base}".into());
    let gw = gateway(vec![p, enviam("")]).await;
    let detail = wait_ready(&gw, "caais", false).await;
    assert!(detail["detail"].as_str().unwrap().contains("is not the configured"), "{detail}");
    let start = gw.navigate("/.aisgate/login?return=%2Fdesk&provider=caais", None).await;
    assert_refused(start, 503, UNAVAILABLE, "issuer mismatch").await;
}

// ---------------------------------------------------------------------------
// Rejections
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_error_answer_from_the_idp_shows_the_login_failed_page_without_a_token_request() {
    let gw = both().await;
    sim(&gw, "caais").knobs().authorize_error = Some("access_denied".into());
    let p = begin(&gw, "caais").await;
    assert!(p.callback.contains("error=access_denied"));
    assert_refused(deliver(&gw, &p).await, 400, LOGIN_FAILED, "access_denied").await;
    assert_eq!(sim(&gw, "caais").knobs().token_calls, 0);
}

#[tokio::test]
async fn userinfo_for_another_subject_is_refused() {
    let gw = both().await;
    sim(&gw, "caais").knobs().userinfo_sub = Some("someone-else".into());
    let p = begin(&gw, "caais").await;
    assert_refused(deliver(&gw, &p).await, 503, UNAVAILABLE, "userinfo sub mismatch").await;
}

#[tokio::test]
async fn a_callback_with_another_state_is_rejected_before_the_code_is_redeemed() {
    let gw = both().await;
    let p = begin(&gw, "caais").await;
    let url = with_forged_state(&p.callback);
    assert_refused(deliver_to(&gw, &url, &p).await, 400, LOGIN_FAILED, "state mismatch").await;
    assert_eq!(sim(&gw, "caais").knobs().token_calls, 0, "no token request");
}

#[tokio::test]
async fn a_replayed_callback_finds_no_pending_login() {
    let gw = both().await;
    let p = begin(&gw, "caais").await;
    assert_eq!(deliver(&gw, &p).await.status(), 302);
    assert_refused(deliver(&gw, &p).await, 400, EXPIRED, "replay").await;
    assert_eq!(sim(&gw, "caais").knobs().token_calls, 1, "the code is not redeemed twice");
}

#[tokio::test]
async fn an_id_token_carrying_the_nonce_of_a_previous_login_is_rejected() {
    let gw = both().await;
    login(&gw, "caais").await;
    sim(&gw, "caais").knobs().bad = Some(BadToken::ReplayedNonce);
    let p = begin(&gw, "caais").await;
    assert_refused(deliver(&gw, &p).await, 400, LOGIN_FAILED, "nonce replay").await;
}

#[tokio::test]
async fn an_unsigned_id_token_with_alg_none_is_rejected() {
    assert_bad_token_rejected(BadToken::AlgNone).await;
}

#[tokio::test]
async fn an_id_token_mac_ed_with_hs256_keyed_by_the_public_key_is_rejected() {
    assert_bad_token_rejected(BadToken::Hs256WithPublicKey).await;
}

#[tokio::test]
async fn an_id_token_from_another_issuer_is_rejected() {
    assert_bad_token_rejected(BadToken::WrongIssuer).await;
}

#[tokio::test]
async fn an_id_token_for_another_audience_is_rejected() {
    assert_bad_token_rejected(BadToken::WrongAudience).await;
}

#[tokio::test]
async fn an_expired_id_token_is_rejected() {
    assert_bad_token_rejected(BadToken::Expired).await;
}

#[tokio::test]
async fn an_oversized_id_token_is_rejected_without_parsing() {
    assert_bad_token_rejected(BadToken::Oversized).await;
}

#[tokio::test]
async fn an_id_token_signed_with_an_unknown_key_is_rejected_after_at_most_one_jwks_refetch() {
    let gw = both().await;
    wait_ready(&gw, "caais", true).await;
    let before = sim(&gw, "caais").knobs().jwks_fetches;
    for attempt in 0..3 {
        sim(&gw, "caais").knobs().bad = Some(BadToken::UnknownKey);
        let p = begin(&gw, "caais").await;
        assert_refused(deliver(&gw, &p).await, 400, LOGIN_FAILED, &format!("unknown key #{attempt}")).await;
    }
    assert_eq!(sim(&gw, "caais").knobs().jwks_fetches, before + 1, "one rate-limited refetch for three tokens");
    let metrics = gw.client.get(format!("http://{}/metrics", gw.ops)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("aisgate_oidc_id_token_rejected_total{provider=\"caais\"} 3"), "{metrics}");
    assert!(metrics.contains("aisgate_oidc_discovery_up{provider=\"caais\"} 1"), "{metrics}");
    assert!(metrics.contains("aisgate_oidc_token_duration_seconds_count{provider=\"caais\"} 3"), "{metrics}");
}

#[tokio::test]
async fn a_rotated_signing_key_without_kid_is_fetched_once_and_logins_continue() {
    let gw = both().await;
    login(&gw, "caais").await;
    let before = sim(&gw, "caais").knobs().jwks_fetches;
    sim(&gw, "caais").rotate_key().unwrap();
    login(&gw, "caais").await;
    assert_eq!(sim(&gw, "caais").knobs().jwks_fetches, before + 1);
}

#[tokio::test]
async fn a_response_for_one_provider_delivered_to_another_providers_callback_is_refused() {
    let gw = both().await;
    let p = begin(&gw, "caais").await;
    let query = url::Url::parse(&p.callback).unwrap().query().unwrap().to_owned();
    let mixed = gw.url(&format!("/.aisgate/callback/enviam?{query}"));
    assert_refused(deliver_to(&gw, &mixed, &p).await, 400, NOT_INITIATED, "mix-up").await;
    assert_eq!(sim(&gw, "caais").knobs().token_calls, 0);
    assert_eq!(sim(&gw, "enviam").knobs().token_calls, 0);
}

// ---------------------------------------------------------------------------
// Outages
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_discovery_and_jwks_outage_keeps_sessions_and_logins_on_the_last_good_copy_and_readyz_names_the_provider() {
    let gw = gateway(vec![caais("refresh_interval_secs = 1\n"), enviam("")]).await;
    let cookie = login(&gw, "caais").await;
    sim(&gw, "caais").knobs().outage = true;
    let detail = wait_ready(&gw, "caais", false).await;
    let text = detail["detail"].as_str().unwrap();
    assert!(text.contains("discovery") && text.contains("last good copy"), "{text}");
    let (status, body) = readyz(&gw).await;
    assert_eq!(status, 503);
    assert_eq!(body["providers"]["enviam"]["ready"], true, "only the failing provider is named");
    upstream_headers(&gw, &cookie).await;
    login(&gw, "caais").await;
    sim(&gw, "caais").knobs().outage = false;
    wait_ready(&gw, "caais", true).await;
}

#[tokio::test]
async fn a_provider_down_since_start_gives_new_logins_a_clear_503_page_and_readyz_names_it() {
    let mut down = caais("");
    down.sim.outage_at_start = true;
    let gw = gateway(vec![down, enviam("")]).await;
    let detail = wait_ready(&gw, "caais", false).await;
    assert!(detail["detail"].as_str().unwrap().contains("discovery"), "{detail}");
    let start = gw.navigate("/.aisgate/login?return=%2Fdesk&provider=caais", None).await;
    assert_refused(start, 503, UNAVAILABLE, "no discovery document").await;
    // The other provider is unaffected.
    login(&gw, "enviam").await;
}

// ---------------------------------------------------------------------------
// Logout
// ---------------------------------------------------------------------------

#[tokio::test]
async fn logout_redirects_to_end_session_with_the_id_token_hint_return_uri_and_state() {
    let gw = both().await;
    let cookie = login(&gw, "caais").await;
    let out = gw.navigate("/logout", Some(&cookie)).await;
    assert_eq!(out.status(), 302);
    let target = url::Url::parse(&location(&out)).unwrap();
    assert!(target.as_str().starts_with(&format!("{}/oauth2/end_session?", sim(&gw, "caais").base)), "{target}");
    let q: HashMap<String, String> = target.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "MY_AIS");
    assert_eq!(q["post_logout_redirect_uri"], gw.url("/.aisgate/logged-out"));
    assert!(q["state"].len() >= 43);
    // caais.md §1.10: the very token of the login, byte for byte (the session keeps it packed).
    let issued = sim(&gw, "caais").knobs().last_id_token.clone().expect("an ID token was issued");
    assert_eq!(q["id_token_hint"], issued, "the ID token of the login, unchanged");
    let hint = jwt_payload(&q["id_token_hint"]);
    assert_eq!(hint["sub"], "16b33670-a816-4c1a-8712-d99e9ff85fec");
    assert_eq!(hint["aud"], "MY_AIS");
    // The IdP returns the browser to the logged-out page; the session is gone.
    let back = gw.client.get(target.as_str()).send().await.unwrap();
    assert!(location(&back).starts_with(&gw.url("/.aisgate/logged-out?state=")));
    let after = gw.client.get(gw.url("/desk")).header("accept", "application/json").header("cookie", &cookie).send();
    assert_eq!(after.await.unwrap().status(), 401, "the old cookie no longer works");
}

async fn logout_returns(gw: &Gateway, result: &str) -> u64 {
    let metrics = gw.client.get(format!("http://{}/metrics", gw.ops)).send().await.unwrap().text().await.unwrap();
    let series = format!("aisgate_logout_return_total{{result=\"{result}\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(&series)).map_or(0, |v| v.trim().parse().unwrap())
}

/// Logs in at CAAIS and out again; returns the IdP's redirect back to the logged-out page and
/// the `Cookie` value binding the logout's state to this browser.
async fn logout_roundtrip(gw: &Gateway) -> (String, String) {
    let cookie = login(gw, "caais").await;
    let out = gw.navigate("/logout", Some(&cookie)).await;
    assert_eq!(out.status(), 302);
    let bound = format!("aisgate_login_logout={}", set_cookie(&out, "aisgate_login_logout").expect("logout cookie"));
    let back = gw.client.get(location(&out)).send().await.unwrap();
    (location(&back), bound)
}

#[tokio::test]
async fn the_logout_return_with_this_browsers_state_is_verified_once_and_shows_the_logged_out_page() {
    let gw = both().await;
    let (back, bound) = logout_roundtrip(&gw).await;
    let page = gw.client.get(&back).header("cookie", &bound).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("aisgate_login_logout=;")));
    assert_eq!(logout_returns(&gw, "verified").await, 1);
    // Single use: the same return again is no longer verified, but still shows the page.
    let again = gw.client.get(&back).header("cookie", &bound).send().await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(logout_returns(&gw, "verified").await, 1);
    assert_eq!(logout_returns(&gw, "unverified").await, 1);
}

#[tokio::test]
async fn a_logout_return_with_a_wrong_or_missing_state_or_from_another_browser_shows_the_page_and_is_logged() {
    let gw = both().await;
    let (back, bound) = logout_roundtrip(&gw).await;
    let wrong = gw.client.get(gw.url("/.aisgate/logged-out?state=forged")).header("cookie", &bound).send();
    assert_eq!(wrong.await.unwrap().status(), 200);
    let missing = gw.client.get(gw.url("/.aisgate/logged-out")).header("cookie", &bound).send();
    assert_eq!(missing.await.unwrap().status(), 200);
    let other_browser = gw.client.get(&back).send().await.unwrap();
    assert_eq!(other_browser.status(), 200);
    assert!(other_browser.text().await.unwrap().contains("Odhlášení proběhlo úspěšně"));
    assert_eq!(logout_returns(&gw, "unverified").await, 3);
    assert_eq!(logout_returns(&gw, "verified").await, 0);
    // A plain visit (no state, no cookie) is not a logout return at all.
    gw.client.get(gw.url("/.aisgate/logged-out")).send().await.unwrap();
    assert_eq!(logout_returns(&gw, "unverified").await, 3);
}
