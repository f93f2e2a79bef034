//! Interop with the real OpenID provider `oidc-provider` (npm), started as a child process and
//! configured like CAAIS (tls_client_auth over real TLS, token endpoint on a second host, RS256
//! without `kid`, issuer with a trailing slash) and like EnviIAM (public client + PKCE,
//! form_post): full logins, RP-initiated logout, back-channel logout and the refresh of an
//! upstream bearer token through the gateway.
//!
//! The simulator tests (oidc_login.rs, oidc_backchannel.rs) pin the gateway's behaviour; these
//! show that an independent implementation of the protocol agrees with it.

mod support;

use aisgate::sim::certs::TestPki;
use aisgate::sim::oidc::{caais_user, enviam_user};
use aisgate::sim::stack::StackOptions;
use base64::Engine;
use support::oidc_provider::{available, gateway_login, Answer, ClientAuth, NodeOp, OpBrowser, Profile};
use support::{header_echo, location, set_cookie, Gateway};

/// A gateway and the provider it logs in at, with the PKI both use.
struct Setup {
    gw: Gateway,
    op: NodeOp,
    pki: TestPki,
    _pki_dir: tempfile::TempDir,
}

/// The apps: `/desk` for `desk` (the first provider), and with CAAIS `/vip` for `caais-high`
/// (CAAIS: one client registration per LoA, caais.md §1.9); `desk_extra` goes into the `desk`
/// app's table.
fn apps(desk: &str, vip: bool, desk_extra: &str) -> String {
    let app = |name: &str, provider: &str| {
        format!(
            "\n[[app]]\nname = \"{name}\"\nupstream = \"{{upstream}}\"\npath_prefix = \"/{name}\"\n\
             providers = [\"{provider}\"]\nlogout_paths = [\"/{name}/logout\"]\n"
        )
    };
    let mut text = app("desk", desk) + desk_extra;
    if vip {
        text.push_str(&app("vip", "caais-high"));
    }
    text
}

/// Starts the provider with `profile` (access tokens living `ttl` seconds, default 1 h), then a
/// gateway whose providers (built by `tables` from the running provider) point at it.
async fn setup(
    profile: Profile,
    ttl: Option<u64>,
    desk_extra: &str,
    tables: impl Fn(&NodeOp, &TestPki) -> String,
) -> Setup {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = aisgate::sim::certs::generate(pki_dir.path()).unwrap();
    let op = NodeOp::start(profile, &pki, &[caais_user(), enviam_user()], ttl).await;
    let gw = Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        apps: Some(format!(
            "{}{}",
            tables(&op, &pki),
            apps(if profile == Profile::Caais { "caais" } else { "enviam" }, profile == Profile::Caais, desk_extra)
        )),
        ..Default::default()
    })
    .await;
    Setup { gw, op, pki, _pki_dir: pki_dir }
}

fn sub(user: &serde_json::Map<String, serde_json::Value>) -> String {
    user["sub"].as_str().unwrap().to_owned()
}

/// CAAIS-like: `caais` (substantial) and `caais-high`, both tls_client_auth with the
/// registered certificate unless `auth` says otherwise.
async fn caais(auth: ClientAuth) -> Setup {
    caais_with(auth, None, "").await
}

/// Like `caais`, with the access-token lifetime `ttl` and `desk_extra` in the `desk` app.
async fn caais_with(auth: ClientAuth, ttl: Option<u64>, desk_extra: &str) -> Setup {
    let mut s = setup(Profile::Caais, ttl, desk_extra, |op, pki| {
        let extra = "scopes = [\"openid\", \"profile\", \"role\", \"subject\"]\nuserinfo = true\n";
        op.provider_table("caais", "MY_AIS", pki, auth, &format!("{extra}loa = \"substantial\""))
            + &op.provider_table("caais-high", "MY_AIS_HIGH", pki, auth, &format!("{extra}loa = \"high\""))
    })
    .await;
    let account = sub(&caais_user());
    for (client_id, name) in [("MY_AIS", "caais"), ("MY_AIS_HIGH", "caais-high")] {
        s.op.register(NodeOp::caais_client(client_id, &s.gw.base, name, &account)).await;
    }
    s
}

/// EnviIAM-like: a public client answering with form_post.
async fn enviam() -> Setup {
    let mut s = setup(Profile::Enviam, None, "", |op, pki| {
        op.provider_table("enviam", "isoh", pki, ClientAuth::Public, "response_mode = \"form_post\"")
    })
    .await;
    s.op.register(NodeOp::enviam_client("isoh", &s.gw.base, "enviam", &sub(&enviam_user()))).await;
    s
}

impl Setup {
    fn browser(&self) -> OpBrowser {
        OpBrowser::new(&self.pki.ca_cert, &self.gw.base)
    }

    async fn callback(&self, browser: &OpBrowser, provider: &str, path: &str) -> reqwest::Response {
        gateway_login(&self.gw, browser, provider, path).await
    }

    /// A complete login; returns the session `Cookie` value.
    async fn login(&self, browser: &OpBrowser, provider: &str, path: &str) -> String {
        let done = self.callback(browser, provider, path).await;
        assert_eq!(done.status(), 302, "callback completes the login: {}", done.text().await.unwrap_or_default());
        assert_eq!(location(&done), path);
        format!("aisgate_session={}", set_cookie(&done, "aisgate_session").expect("session cookie"))
    }

    /// The headers the upstream received for `path` with the session `cookie`.
    async fn upstream_headers(&self, path: &str, cookie: &str) -> serde_json::Value {
        let resp = self.gw.client.get(self.gw.url(path)).header("cookie", cookie).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path} reaches the upstream");
        resp.json::<serde_json::Value>().await.unwrap()["headers"].clone()
    }

    /// Whether the session behind `cookie` still reaches the app at `path`.
    async fn alive(&self, path: &str, cookie: &str) -> bool {
        let resp = self.gw.client.get(self.gw.url(path)).header("cookie", cookie).header("accept", "application/json");
        resp.send().await.unwrap().status() == 200
    }

    /// Logs out at the app's logout path and follows the provider's logout to its confirmation
    /// page; returns that page's form (action, fields), the `id_token_hint` sent, and the
    /// `Cookie` value binding the logout's state to this browser.
    async fn start_logout(
        &self,
        browser: &OpBrowser,
        path: &str,
        cookie: &str,
    ) -> (String, Vec<(String, String)>, String, String) {
        let out = self.gw.navigate(path, Some(cookie)).await;
        assert_eq!(out.status(), 302, "logout redirects to the provider");
        let bound =
            format!("aisgate_login_logout={}", set_cookie(&out, "aisgate_login_logout").expect("logout cookie"));
        let end_session = url::Url::parse(&location(&out)).unwrap();
        assert!(end_session.as_str().starts_with(&format!("{}/session/end?", self.op.rest)), "{end_session}");
        let hint = end_session.query_pairs().find(|(k, _)| k == "id_token_hint").expect("id_token_hint").1.into_owned();
        match browser.visit(end_session.as_str()).await {
            Answer::Form(action, fields) => (action, fields, hint, bound),
            Answer::Redirect(to) => panic!("the provider asks before ending its session, not {to}"),
        }
    }
}

/// One browser logged in to `/desk` (client MY_AIS) and `/vip` (MY_AIS_HIGH): one SSO session
/// at the provider, two gateway sessions.
async fn logged_in_to_both_clients() -> (Setup, OpBrowser, String, String) {
    let s = caais(ClientAuth::Registered).await;
    let browser = s.browser();
    let desk = s.login(&browser, "caais", "/desk").await;
    let vip = s.login(&browser, "caais-high", "/vip").await;
    (s, browser, desk, vip)
}

fn jwt_part(token: &str, index: usize) -> serde_json::Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test]
async fn caais_like_oidc_provider_login_over_mtls_with_a_kidless_rs256_key_forwards_roles_and_organisation() {
    if !available("caais_like_login") {
        return;
    }
    let s = caais(ClientAuth::Registered).await;
    // The provider publishes what CAAIS does: a trailing-slash issuer, the token endpoint on
    // the certificate host, one RS256 key without kid.
    assert!(s.op.issuer.ends_with('/'), "{}", s.op.issuer);
    let browser = s.browser();
    let discovery = browser.json(&format!("{}.well-known/openid-configuration", s.op.issuer)).await;
    assert_eq!(discovery["token_endpoint"], format!("{}/token", s.op.cert));
    let jwks = browser.json(discovery["jwks_uri"].as_str().unwrap()).await;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    assert_eq!((keys[0]["alg"].as_str(), keys[0].get("kid")), (Some("RS256"), None), "{jwks}");
    let cookie = s.login(&browser, "caais", "/desk").await;
    let h = s.upstream_headers("/desk", &cookie).await;
    assert_eq!(h["x-auth-provider"], "caais");
    assert_eq!(h["x-auth-protocol"], "oidc");
    assert_eq!(h["x-auth-subject"], "16b33670-a816-4c1a-8712-d99e9ff85fec");
    assert_eq!(h["x-auth-username"], "humphrey_appleby");
    assert_eq!(h["x-auth-roles"], "editor,spravce", "scope role");
    assert_eq!(h["x-auth-agenda-roles"], "K100:CR1111,K100:CR2222");
    assert_eq!(h["x-auth-org-code"], "MF", "scope subject, the misspelt legal_entity_shorcut");
    assert_eq!(h["x-auth-org-ovm-id"], "00006947");
    assert_eq!(h["x-auth-loa"], "substantial", "the LoA of the client registration");
    // A second client registration at the same provider reuses its SSO session.
    let high = s.login(&browser, "caais-high", "/vip").await;
    assert_eq!(s.upstream_headers("/vip", &high).await["x-auth-loa"], "high");
}

#[tokio::test]
async fn enviam_like_oidc_provider_login_as_a_public_client_with_pkce_and_form_post_forwards_crzp_roles() {
    if !available("enviam_like_login") {
        return;
    }
    let s = enviam().await;
    assert!(!s.op.issuer.ends_with('/'));
    let cookie = s.login(&s.browser(), "enviam", "/desk").await;
    let h = s.upstream_headers("/desk", &cookie).await;
    assert_eq!(h["x-auth-provider"], "enviam");
    assert_eq!(h["x-auth-subject"], "123e4567-e89b-12d3-a456-426655440000");
    assert_eq!(h["x-auth-username"], "custuser");
    assert_eq!(h["x-auth-roles"], "A100,A101");
    assert_eq!(h["x-auth-agenda-roles"], "A100:A001,A101:A002");
    assert_eq!(h["x-auth-loa"], "high", "the loa claim");
}

#[tokio::test]
async fn oidc_provider_refuses_a_client_certificate_with_another_subject_dn_and_the_user_gets_503() {
    if !available("rogue_certificate") {
        return;
    }
    let s = caais(ClientAuth::Rogue).await;
    let done = s.callback(&s.browser(), "caais", "/desk").await;
    assert_eq!(done.status(), 503, "invalid_client at the token endpoint is the gateway's outage page");
    assert!(set_cookie(&done, "aisgate_session").is_none(), "no session");
    let page = done.text().await.unwrap();
    assert!(page.contains("Přihlašovací služba je dočasně nedostupná"), "{page}");
}

#[tokio::test]
async fn rp_initiated_logout_goes_through_oidc_providers_end_session_and_returns_to_the_gateway() {
    if !available("rp_logout") {
        return;
    }
    let s = caais(ClientAuth::Registered).await;
    let browser = s.browser();
    let cookie = s.login(&browser, "caais", "/desk").await;
    let (action, mut fields, hint, bound) = s.start_logout(&browser, "/desk/logout", &cookie).await;
    // The ID token the provider issued had no kid in its header (caais.md §1.2), and the
    // gateway verified it against a JWKS without kid.
    assert_eq!(jwt_part(&hint, 0), serde_json::json!({ "alg": "RS256" }));
    assert_eq!(jwt_part(&hint, 1)["aud"], "MY_AIS");
    assert!(!s.alive("/desk", &cookie).await, "the gateway session ended before the provider was asked");
    fields.push(("logout".into(), "yes".into()));
    let Answer::Redirect(back) = browser.post(&action, &fields).await else { panic!("no return to the gateway") };
    assert!(back.starts_with(&s.gw.url("/.aisgate/logged-out?state=")), "{back}");
    let page = s.gw.client.get(&back).header("cookie", &bound).send().await.unwrap();
    assert_eq!(page.status(), 200, "the logged-out page");
    let metrics = s.gw.client.get(format!("http://{}/metrics", s.gw.ops)).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("aisgate_logout_return_total{result=\"verified\"} 1"),
        "the provider echoed the state: {metrics}"
    );
    // The same browser logs in again afterwards.
    let again = s.login(&browser, "caais", "/desk").await;
    assert!(s.alive("/desk", &again).await);
}

#[tokio::test]
async fn back_channel_logout_from_oidc_provider_ends_the_gateway_session_of_every_client_in_the_sso_session() {
    if !available("back_channel_logout") {
        return;
    }
    let (s, browser, desk, vip) = logged_in_to_both_clients().await;
    let other_browser = s.browser();
    let elsewhere = s.login(&other_browser, "caais", "/desk").await;
    // Logging out of /vip and accepting the provider's offer to end the SSO session: the
    // provider posts a logout token (sid of this browser's session) for every client in it.
    let (action, mut fields, _, _) = s.start_logout(&browser, "/vip/logout", &vip).await;
    fields.push(("logout".into(), "yes".into()));
    assert!(matches!(browser.post(&action, &fields).await, Answer::Redirect(_)));
    assert!(!s.alive("/desk", &desk).await, "the back-channel logout ended the other client's session");
    assert!(s.alive("/desk", &elsewhere).await, "another browser's session at the same provider keeps working");
}

#[tokio::test]
async fn declining_to_end_the_sso_session_at_oidc_provider_leaves_the_other_clients_gateway_session() {
    if !available("declined_sso_logout") {
        return;
    }
    let (s, browser, desk, vip) = logged_in_to_both_clients().await;
    // Without `logout=yes` the provider ends only the logging-out client's part of its session
    // (its back-channel logout names that client's sid, whose gateway session already ended).
    let (action, fields, _, _) = s.start_logout(&browser, "/vip/logout", &vip).await;
    assert!(matches!(browser.post(&action, &fields).await, Answer::Redirect(_)));
    assert!(!s.alive("/vip", &vip).await);
    assert!(s.alive("/desk", &desk).await, "the SSO session and the other client's session go on");
}

/// API mode against a real provider: the access token oidc-provider issued at a real login
/// (passed upstream by a session app with `upstream_bearer`) is what a calling application
/// sends to an API app; the gateway validates it at oidc-provider's userinfo endpoint and the
/// service gets the same identity. A token the provider never issued is refused (401
/// `invalid_token`), and a second call with the valid token is served from the cache.
#[tokio::test]
async fn an_access_token_from_oidc_provider_authenticates_an_api_app_through_its_userinfo_endpoint() {
    if !available("api bearer") {
        return;
    }
    let api = "upstream_bearer = true\n\n[[app]]\nname = \"svc\"\nupstream = \"{upstream}\"\npath_prefix = \"/svc\"\n\
               providers = [\"enviam\"]\nauth = \"bearer\"\n[app.bearer]\nprovider = \"enviam\"\n";
    let mut s = setup(Profile::Enviam, None, api, |op, pki| {
        op.provider_table("enviam", "isoh", pki, ClientAuth::Public, "response_mode = \"form_post\"")
    })
    .await;
    s.op.register(NodeOp::enviam_client("isoh", &s.gw.base, "enviam", &sub(&enviam_user()))).await;
    let browser = s.browser();
    let cookie = s.login(&browser, "enviam", "/desk").await;
    let token = s.upstream_headers("/desk", &cookie).await["authorization"]
        .as_str()
        .expect("the session's access token upstream")
        .to_owned();
    assert!(token.starts_with("Bearer "), "{token}");
    let call = |authorization: String| {
        s.gw.client.get(s.gw.url("/svc/Service.svc")).header("authorization", authorization).send()
    };
    for _ in 0..2 {
        let resp = call(token.clone()).await.unwrap();
        assert_eq!(resp.status(), 200);
        let h = resp.json::<serde_json::Value>().await.unwrap()["headers"].clone();
        assert_eq!(h["x-auth-subject"], sub(&enviam_user()));
        assert_eq!(h["x-auth-roles"], "A100,A101");
        assert!(h.get("authorization").is_none(), "the user's token is not forwarded");
    }
    let metrics = s.gw.client.get(format!("http://{}/metrics", s.gw.ops)).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(
            "aisgate_api_auth_total{app=\"svc\",scheme=\"bearer\",result=\"success\",reason=\"cache_miss\"} 1"
        ) && metrics.contains(
            "aisgate_api_auth_total{app=\"svc\",scheme=\"bearer\",result=\"success\",reason=\"cache_hit\"} 1"
        ),
        "{metrics}"
    );
    let forged = call("Bearer not-issued-by-the-provider".to_owned()).await.unwrap();
    assert_eq!(forged.status(), 401);
    let challenge = forged.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Bearer realm=\"svc\", error=\"invalid_token\""), "{challenge}");
}

/// Access-token lifetime for the refresh test, seconds. The gateway refreshes when less than
/// half of it remains.
const SHORT_TTL: u64 = 4;

#[tokio::test]
async fn an_expiring_access_token_from_oidc_provider_is_refreshed_over_mtls_and_the_upstream_gets_the_new_bearer() {
    if !available("refresh") {
        return;
    }
    let s = caais_with(ClientAuth::Registered, Some(SHORT_TTL), "upstream_bearer = true\n").await;
    let browser = s.browser();
    let cookie = s.login(&browser, "caais", "/desk").await;
    let bearer = |h: &serde_json::Value| h["authorization"].as_str().expect("Authorization upstream").to_owned();
    let first = bearer(&s.upstream_headers("/desk", &cookie).await);
    assert!(first.starts_with("Bearer "), "{first}");
    s.gw.clock.advance(std::time::Duration::from_millis(SHORT_TTL * 1000 / 2 + 100));
    let h = s.upstream_headers("/desk", &cookie).await;
    let second = bearer(&h);
    assert_ne!(first, second, "a refreshed access token");
    assert_eq!(h["x-auth-subject"], "16b33670-a816-4c1a-8712-d99e9ff85fec", "the identity is the login's");
    // The new token is the provider's own: its userinfo endpoint accepts it.
    let info = browser.json_with(&format!("{}/me", s.op.rest), Some(&second)).await;
    assert_eq!(info["sub"], "16b33670-a816-4c1a-8712-d99e9ff85fec");
    let metrics = s.gw.client.get(format!("http://{}/metrics", s.gw.ops)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("aisgate_oidc_token_refresh_total{provider=\"caais\",result=\"success\"} 1"), "{metrics}");
}
