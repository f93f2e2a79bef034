//! LoA step-up against the CAAIS-like simulator: the provider's main client guarantees
//! `substantial`, a `[[provider.loa_client]]` registration `high`. A route requiring `high`
//! sends a browser with a `substantial` session through a new login with the high client and
//! replaces the session; an IdP answer with a lower LoA is refused; API clients get 401 JSON.

mod support;

use aisgate::sim::oidc::OidcSim;
use aisgate::sim::stack::StackOptions;
use support::{header_echo, location, set_cookie, Gateway};

const APPS: &str = r#"
[[app]]
name = "desk"
upstream = "{upstream}"
providers = ["caais"]
upstream_bearer = true

[[app.rule]]
path_prefix = "/secure"
min_loa = "high"

[[app.rule]]
path_prefix = "/admin"
min_loa = "high"
any_role = ["nobody-has-this"]
"#;

async fn gateway() -> Gateway {
    let gw = Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        apps: Some(APPS.to_owned()),
        oidc: vec![support::caais_provider(
            "loa = \"substantial\"\n[[provider.loa_client]]\nloa = \"high\"\nclient_id = \"MY_AIS_HIGH\"\n",
        )],
        ..Default::default()
    })
    .await;
    sim(&gw).knobs().extra_client_ids = vec!["MY_AIS_HIGH".into()];
    gw
}

fn sim(gw: &Gateway) -> &OidcSim {
    &gw.oidc[0]
}

async fn loa_seen_upstream(gw: &Gateway, cookie: &str, path: &str) -> String {
    let resp = gw.client.get(gw.url(path)).header("cookie", cookie).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    let body: serde_json::Value = resp.json().await.unwrap();
    body["headers"]["x-auth-loa"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_route_requiring_a_higher_loa_redirects_to_the_high_client_and_the_new_session_replaces_the_old() {
    let gw = gateway().await;
    let low = gw.oidc_login("caais", "/").await;
    assert_eq!(loa_seen_upstream(&gw, &low, "/").await, "substantial");
    let step = gw.navigate("/secure/page?x=1", Some(&low)).await;
    assert_eq!(step.status(), 302, "step-up instead of 403");
    let target = url::Url::parse(&location(&step)).unwrap();
    let client = target.query_pairs().find(|(k, _)| k == "client_id").map(|(_, v)| v.into_owned());
    assert_eq!(client.as_deref(), Some("MY_AIS_HIGH"), "the high-LoA client registration");
    let high = gw.finish_oidc_login(&step, "/secure/page?x=1", Some(&low)).await;
    assert_ne!(high, low, "a fresh session id");
    assert_eq!(loa_seen_upstream(&gw, &high, "/secure/page").await, "high");
    // Its tokens are refreshed with the client that obtained them (the simulator binds refresh
    // tokens to their client and refuses them to any other).
    sim(&gw).knobs().access_token_ttl = Some(4);
    let high = gw
        .finish_oidc_login(
            &gw.navigate("/.aisgate/login?return=%2Fsecure&provider=caais&loa=high", Some(&high)).await,
            "/secure",
            Some(&high),
        )
        .await;
    gw.clock.advance(std::time::Duration::from_millis(2050));
    let resp = gw.client.get(gw.url("/secure")).header("cookie", &high).send().await.unwrap();
    assert_eq!(resp.status(), 200, "refreshed with the high client");
    let body: serde_json::Value = resp.json().await.unwrap();
    let bearer = format!("Bearer {}", sim(&gw).knobs().last_access_token.clone().unwrap());
    assert_eq!(body["headers"]["authorization"], bearer.as_str());
    assert_eq!(sim(&gw).knobs().refresh_calls, 1);
    // The lower session is gone.
    let old = gw.client.get(gw.url("/")).header("cookie", &low).send().await.unwrap();
    assert_eq!(old.status(), 401);
}

#[tokio::test]
async fn a_step_up_login_that_returns_a_lower_loa_is_refused_without_a_session() {
    let gw = gateway().await;
    let low = gw.oidc_login("caais", "/").await;
    sim(&gw).knobs().loa_claim = Some("substantial".into());
    let step = gw.navigate("/secure", Some(&low)).await;
    assert_eq!(step.status(), 302);
    let cookie = format!("aisgate_login={}", set_cookie(&step, "aisgate_login").unwrap());
    let answer = gw.client.get(location(&step)).send().await.unwrap();
    let done = gw.client.get(location(&answer)).header("cookie", cookie).header("accept", "text/html").send();
    let done = done.await.unwrap();
    assert_eq!(done.status(), 400);
    assert!(set_cookie(&done, "aisgate_session").is_none(), "no session with the lower LoA");
    assert!(done.text().await.unwrap().contains("Přihlášení se nezdařilo"));
}

#[tokio::test]
async fn an_api_client_gets_401_json_naming_the_required_loa_and_the_step_up_login() {
    let gw = gateway().await;
    let low = gw.oidc_login("caais", "/").await;
    let resp = gw.client.get(gw.url("/secure/data")).header("cookie", &low).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "step_up_required");
    assert_eq!(body["min_loa"], "high");
    let login = body["login"].as_str().unwrap();
    assert!(login.contains("provider=caais") && login.contains("loa=high"), "{login}");
    // That URL starts the high-LoA login.
    let start = gw.navigate(login, Some(&low)).await;
    assert_eq!(start.status(), 302);
    assert!(location(&start).contains("client_id=MY_AIS_HIGH"));
}

#[tokio::test]
async fn a_route_failing_on_more_than_the_loa_is_still_forbidden() {
    let gw = gateway().await;
    let low = gw.oidc_login("caais", "/").await;
    let resp = gw.navigate("/admin", Some(&low)).await;
    assert_eq!(resp.status(), 403, "a higher LoA would not give the missing role");
}
