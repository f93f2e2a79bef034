//! Apps on several hosts (issue 12 items 6 and 7): a browser-like client with a per-host
//! cookie jar (cookies are host-only, as a real browser keeps them) reaches apps on other host
//! names than `[server] public_base_url`'s, all on the loopback gateway (the names resolve to
//! it; the `Host` header is what the gateway routes by).

mod support;

use std::collections::HashMap;
use std::sync::Mutex;

use aisgate::sim::stack::StackOptions;
use support::{header_echo, location, logs, Gateway};

/// A browser: follows nothing by itself, keeps cookies per host (host-only, like the
/// gateway's `__Host-`/no-`Domain` cookies) and sends only the request host's.
struct Browser {
    client: reqwest::Client,
    jar: Mutex<HashMap<String, Vec<(String, String)>>>,
}

impl Browser {
    /// A browser resolving each of `hosts` to the gateway `gw`.
    fn new(gw: &Gateway, hosts: &[&str]) -> Browser {
        let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        for host in hosts {
            builder = builder.resolve(host, gw.addr);
        }
        Browser { client: builder.build().unwrap(), jar: Mutex::new(HashMap::new()) }
    }

    fn cookie_header(&self, host: &str) -> Option<String> {
        let jar = self.jar.lock().unwrap();
        let cookies = jar.get(host).filter(|c| !c.is_empty())?;
        Some(cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; "))
    }

    fn keep(&self, host: &str, resp: &reqwest::Response) {
        let mut jar = self.jar.lock().unwrap();
        let cookies = jar.entry(host.to_owned()).or_default();
        for value in resp.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()) {
            let Some((name, rest)) = value.split_once('=') else { continue };
            let value = rest.split(';').next().unwrap_or("");
            let deleted = value.is_empty() || rest.to_ascii_lowercase().contains("max-age=0");
            cookies.retain(|(k, _)| k != name);
            if !deleted {
                cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    /// The cookie `name` this browser holds for `host`.
    fn cookie(&self, host: &str, name: &str) -> Option<String> {
        let jar = self.jar.lock().unwrap();
        jar.get(host)?.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    /// A top-level navigation (GET) to an absolute URL.
    async fn get(&self, url: &str) -> reqwest::Response {
        let host = url::Url::parse(url).unwrap().host_str().unwrap().to_owned();
        let mut req = self.client.get(url).header("accept", "text/html,application/xhtml+xml");
        if let Some(cookie) = self.cookie_header(&host) {
            req = req.header("cookie", cookie);
        }
        let resp = req.send().await.unwrap();
        self.keep(&host, &resp);
        resp
    }

    /// A form POST to an absolute URL.
    async fn post(&self, url: &str, form: &[(&str, String)]) -> reqwest::Response {
        let host = url::Url::parse(url).unwrap().host_str().unwrap().to_owned();
        let mut req = self.client.post(url).form(form);
        if let Some(cookie) = self.cookie_header(&host) {
            req = req.header("cookie", cookie);
        }
        let resp = req.send().await.unwrap();
        self.keep(&host, &resp);
        resp
    }
}

/// `Location` of `resp` made absolute against `base` (the gateway answers local paths).
fn absolute(base: &str, resp: &reqwest::Response) -> String {
    url::Url::parse(base).unwrap().join(&location(resp)).unwrap().to_string()
}

/// Follows gateway redirects from `url` until the answer is not a redirect to a gateway host
/// (`gateway_port`): the IdP's page, the app, or an error page. Returns the last answer and
/// its URL.
async fn follow(browser: &Browser, mut url: String, gateway_port: u16) -> (reqwest::Response, String) {
    for _ in 0..10 {
        let resp = browser.get(&url).await;
        if !resp.status().is_redirection() {
            return (resp, url);
        }
        let next = absolute(&url, &resp);
        if url::Url::parse(&next).unwrap().port() != Some(gateway_port) {
            return (resp, url);
        }
        url = next;
    }
    panic!("redirect loop from {url}");
}

/// Logs in at the simulated JIP/KAAS as demo user `user` from `start` (the gateway's redirect
/// to the simulator), delivers the callback, and follows the gateway from there. Returns the
/// final answer and its URL.
async fn kaas_login(
    browser: &Browser,
    gw: &Gateway,
    start: reqwest::Response,
    user: usize,
) -> (reqwest::Response, String) {
    assert_eq!(start.status(), 302, "the gateway sends the browser to the IdP");
    let form = browser.post(&location(&start), &[("user", user.to_string())]).await;
    assert_eq!(form.status(), 303, "the simulator redirects to the callback");
    follow(browser, location(&form), gw.addr.port()).await
}

fn app_url(host: &str, gw: &Gateway, path: &str) -> String {
    format!("http://{host}:{}{path}", gw.addr.port())
}

/// The identity headers the echo upstream received, from its JSON answer.
async fn upstream_saw(resp: reqwest::Response) -> serde_json::Value {
    assert_eq!(resp.status(), 200, "the app answers");
    let body: serde_json::Value = resp.json().await.unwrap();
    body["headers"].clone()
}

/// The shipped example's shape: the app lives on its own host, the IdP (JIP/KAAS, one
/// registered return URL) returns to `public_base_url`'s host.
const APP_ON_OTHER_HOST: &str = r#"
[[app]]
name = "spis"
hosts = ["spis.test"]
upstream = "{upstream}"
providers = ["jip"]
central_login = true
"#;

async fn stack(apps: &str) -> Gateway {
    stack_with(apps, Vec::new(), None).await
}

/// The gateway with `apps` (plain http on the test hosts: no `Secure` cookies), the echo
/// upstream, and these simulated OpenID / SAML IdPs besides JIP/KAAS.
async fn stack_with(
    apps: &str,
    oidc: Vec<aisgate::sim::stack::OidcStackProvider>,
    saml: Option<aisgate::sim::stack::SamlStackProvider>,
) -> Gateway {
    logs::capture();
    Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        apps: Some(apps.to_owned()),
        oidc,
        saml,
        session_extra: "cookie_secure = false".to_owned(),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn an_app_on_another_host_than_the_public_base_url_completes_its_login() {
    // Issue 12 item 6, the defect: the pre-login cookie was set on the app's host and the IdP
    // returned to public_base_url's host, where the callback found no cookie: every login
    // failed ("Přihlášení nelze dokončit"). Ran against the code before the fix: it failed
    // there at the callback.
    let gw = stack(APP_ON_OTHER_HOST).await;
    let browser = Browser::new(&gw, &["spis.test"]);
    let (start, _) = follow(&browser, app_url("spis.test", &gw, "/desk?tab=1"), gw.addr.port()).await;
    let (done, url) = kaas_login(&browser, &gw, start, 0).await;
    assert_eq!(url, app_url("spis.test", &gw, "/desk?tab=1"), "the login ends on the app's host and URL");
    let headers = upstream_saw(done).await;
    assert!(headers["x-auth-subject"].as_str().is_some_and(|s| !s.is_empty()), "{headers}");
    assert!(browser.cookie("spis.test", "aisgate_session").is_some(), "the app host has its own session cookie");
}

/// `resp` refused a handoff for `reason` (the log line of its request says so) and made no
/// session.
fn assert_refused(resp: &reqwest::Response, reason: &str) {
    logs::assert_reason(resp, reason);
    assert!(support::set_cookie(resp, "aisgate_session").is_none(), "{reason}: no session");
}

/// Two apps: `portal` on public_base_url's own host (`localhost`, direct) and `spis` on its
/// own host, handed over from the central login host.
const TWO_HOSTS_CENTRAL: &str = r#"
[[app]]
name = "portal"
hosts = ["localhost"]
upstream = "{upstream}"
providers = ["jip"]

[[app]]
name = "spis"
hosts = ["spis.test", "spis-alias.test"]
upstream = "{upstream}"
providers = ["jip"]
central_login = true
"#;

/// Runs a login for the app at `start_url` up to the handoff: returns the URL of the handoff
/// to the app's host (not yet used).
async fn until_handoff(browser: &Browser, gw: &Gateway, start_url: &str) -> String {
    let (start, at) = follow(browser, start_url.to_owned(), gw.addr.port()).await;
    assert!(at.starts_with(&gw.url("/.aisgate/login?")), "the login runs on the central host: {at}");
    assert!(at.contains("&bind="), "with the browser binding's commitment: {at}");
    let form = browser.post(&location(&start), &[("user", "0".to_owned())]).await;
    let callback = browser.get(&location(&form)).await;
    assert_eq!(callback.status(), 302, "the callback hands the login over");
    assert!(support::set_cookie(&callback, "aisgate_session").is_none(), "no session on the login host");
    let to = location(&callback);
    assert!(to.contains("/.aisgate/handoff?h="), "{to}");
    assert!(!to.contains("aisgate_session") && to.len() < 200, "only a handle travels: {to}");
    to
}

#[tokio::test]
async fn apps_on_two_hosts_log_in_directly_and_through_the_central_host() {
    let gw = stack(TWO_HOSTS_CENTRAL).await;
    let browser = Browser::new(&gw, &["spis.test", "spis-alias.test"]);
    // The app on the public base URL's host: the usual direct login.
    let (start, _) = follow(&browser, gw.url("/portal-page"), gw.addr.port()).await;
    let (done, url) = kaas_login(&browser, &gw, start, 0).await;
    assert_eq!(url, gw.url("/portal-page"));
    let portal = upstream_saw(done).await;
    // The app on another host: central login, then the handoff.
    for host in ["spis.test", "spis-alias.test"] {
        let (start, _) = follow(&browser, app_url(host, &gw, "/spis/1?a=b"), gw.addr.port()).await;
        let (done, url) = kaas_login(&browser, &gw, start, 1).await;
        assert_eq!(url, app_url(host, &gw, "/spis/1?a=b"), "back on {host} at the requested URL");
        let spis = upstream_saw(done).await;
        assert_eq!(spis["x-auth-provider"], "jip", "{spis}");
        assert!(spis["x-auth-subject"].as_str().is_some_and(|s| !s.is_empty()), "{spis}");
        assert_ne!(spis["x-auth-subject"], portal["x-auth-subject"], "user 1 on {host}, user 0 on the portal");
        assert!(browser.cookie(host, "aisgate_login_handoff").is_none(), "the binding is spent on {host}");
    }
    // Each host has its own session: different ids, nothing shared through the URL.
    let (a, b) = (browser.cookie("spis.test", "aisgate_session"), browser.cookie("localhost", "aisgate_session"));
    assert!(a.is_some() && b.is_some() && a != b);
}

#[tokio::test]
async fn a_replayed_handoff_is_refused_with_its_reason() {
    let gw = stack(TWO_HOSTS_CENTRAL).await;
    let browser = Browser::new(&gw, &["spis.test"]);
    let handoff = until_handoff(&browser, &gw, &app_url("spis.test", &gw, "/desk")).await;
    let first = browser.get(&handoff).await;
    assert_eq!(first.status(), 302, "the first use logs in");
    assert_eq!(location(&first), "/desk");
    // The same URL again, in the same browser (a reload, the history).
    let again = browser.get(&handoff).await;
    assert_eq!(again.status(), 400);
    assert_refused(&again, "handoff_replayed");
    let page = again.text().await.unwrap();
    assert!(page.contains(support::EXPIRED), "{page}");
    let metrics = gw.client.get(format!("http://{}/metrics", gw.ops)).send().await.unwrap().text().await.unwrap();
    for series in [
        "aisgate_login_handoffs_total{result=\"success\",reason=\"none\"} 1",
        "aisgate_login_handoffs_total{result=\"refused\",reason=\"handoff_replayed\"} 1",
        "aisgate_login_handoffs_total{result=\"refused\",reason=\"handoff_expired\"} 0",
    ] {
        assert!(metrics.lines().any(|l| l == series), "{series} missing:\n{metrics}");
    }
}

#[tokio::test]
async fn a_handoff_used_in_another_browser_is_refused_and_spent() {
    let gw = stack(TWO_HOSTS_CENTRAL).await;
    let victim = Browser::new(&gw, &["spis.test"]);
    let handoff = until_handoff(&victim, &gw, &app_url("spis.test", &gw, "/desk")).await;
    // A browser without any binding cookie (the URL leaked, or was sent to it).
    let stranger = Browser::new(&gw, &["spis.test"]);
    let refused = stranger.get(&handoff).await;
    assert_refused(&refused, "handoff_not_bound");
    assert!(refused.text().await.unwrap().contains(support::NOT_INITIATED));
    // Fail closed: the handoff is spent, the victim's own use is a replay now.
    let late = victim.get(&handoff).await;
    logs::assert_reason(&late, "handoff_replayed");

    // A browser with a binding of its own (it started a login of its own on the app host).
    let handoff = until_handoff(&victim, &gw, &app_url("spis.test", &gw, "/desk")).await;
    let attacker = Browser::new(&gw, &["spis.test"]);
    let _ = follow(&attacker, app_url("spis.test", &gw, "/desk"), gw.addr.port()).await;
    assert!(attacker.cookie("spis.test", "aisgate_login_handoff").is_some());
    let refused = attacker.get(&handoff).await;
    assert_refused(&refused, "handoff_binding_mismatch");
}

#[tokio::test]
async fn a_late_handoff_and_one_for_another_host_are_refused() {
    let gw = stack(TWO_HOSTS_CENTRAL).await;
    let browser = Browser::new(&gw, &["spis.test", "spis-alias.test"]);
    let handoff = until_handoff(&browser, &gw, &app_url("spis.test", &gw, "/desk")).await;
    gw.clock.advance(std::time::Duration::from_secs(61));
    let late = browser.get(&handoff).await;
    assert_refused(&late, "handoff_expired");

    let handoff = until_handoff(&browser, &gw, &app_url("spis.test", &gw, "/desk")).await;
    let elsewhere = handoff.replace("spis.test", "spis-alias.test");
    let refused = browser.get(&elsewhere).await;
    assert_refused(&refused, "handoff_wrong_host");
}

#[tokio::test]
async fn a_login_failing_on_the_central_host_offers_the_retry_on_the_apps_host() {
    // On the login host, `/desk` is the portal's: the retry link leads back to the app's host.
    let gw = stack(TWO_HOSTS_CENTRAL).await;
    let browser = Browser::new(&gw, &["spis.test"]);
    gw.sim.overrides.lock().unwrap().next_statuses = vec![aisgate::provider::kaas::soap::AuthStatus::SessionNotFound];
    let (start, _) = follow(&browser, app_url("spis.test", &gw, "/desk"), gw.addr.port()).await;
    let (failed, at) = kaas_login(&browser, &gw, start, 0).await;
    assert!(at.starts_with(&gw.url("/.aisgate/callback/jip")), "{at}");
    assert!(failed.status().is_client_error() || failed.status().is_server_error(), "{}", failed.status());
    assert!(support::set_cookie(&failed, "aisgate_session").is_none());
    let page = failed.text().await.unwrap();
    assert!(page.contains(&format!("href=\"{}\"", app_url("spis.test", &gw, "/desk"))), "{page}");
}

#[tokio::test]
async fn the_login_host_refuses_a_login_for_a_host_that_does_not_hand_over() {
    let gw = stack(TWO_HOSTS_CENTRAL).await;
    let browser = Browser::new(&gw, &["spis.test"]);
    // `portal` lives on the login host itself; `evil.test` is no app's host.
    for target in ["localhost", "evil.test"] {
        let url = gw.url(&format!("/.aisgate/login?return=%2Fdesk&provider=jip&for={target}&bind=k.x"));
        let resp = browser.get(&url).await;
        assert!(matches!(resp.status().as_u16(), 400 | 404), "{target}: {}", resp.status());
        assert!(support::set_cookie(&resp, "aisgate_login").is_none(), "{target}: no login started");
    }
    // The right host, but no binding: refused too.
    let resp = browser.get(&gw.url("/.aisgate/login?return=%2Fdesk&provider=jip&for=spis.test")).await;
    assert_eq!(resp.status(), 400);
    logs::assert_reason(&resp, "handoff_start_refused");
}

/// An OpenID provider registered for `host` only (its redirect URI on that host).
fn oidc_for(name: &str, host: &str) -> aisgate::sim::stack::OidcStackProvider {
    let mut p = aisgate::sim::stack::OidcStackProvider::caais_like(name, "");
    p.sim.redirect_uri = format!("http://{host}:{{port}}/.aisgate/callback/{name}");
    p
}

/// Follows an OpenID login `start` (the gateway's redirect to the simulated IdP) through the
/// IdP and the gateway; returns the final answer and its URL.
async fn oidc_login(browser: &Browser, gw: &Gateway, start: reqwest::Response) -> (reqwest::Response, String) {
    assert_eq!(start.status(), 302, "the gateway sends the browser to the IdP");
    let answer = browser.get(&location(&start)).await;
    assert_eq!(answer.status(), 303, "the IdP accepted the authorization request (redirect_uri registered)");
    follow(browser, location(&answer), gw.addr.port()).await
}

#[tokio::test]
async fn an_app_with_its_own_public_base_url_logs_in_on_its_own_host() {
    let apps = r#"
[[app]]
name = "app2"
hosts = ["app2.test"]
upstream = "{upstream}"
providers = ["caais"]
public_base_url = "http://app2.test:{port}"
"#;
    let gw = stack_with(apps, vec![oidc_for("caais", "app2.test")], None).await;
    let browser = Browser::new(&gw, &["app2.test"]);
    let (start, _) = follow(&browser, app_url("app2.test", &gw, "/work"), gw.addr.port()).await;
    let redirect_uri =
        format!("redirect_uri={}", support_encode(&app_url("app2.test", &gw, "/.aisgate/callback/caais")));
    assert!(location(&start).contains(&redirect_uri), "{}", location(&start));
    let (done, url) = oidc_login(&browser, &gw, start).await;
    assert_eq!(url, app_url("app2.test", &gw, "/work"));
    let seen = upstream_saw(done).await;
    assert_eq!(seen["x-auth-subject"], "16b33670-a816-4c1a-8712-d99e9ff85fec", "{seen}");
}

#[tokio::test]
async fn a_saml_provider_registered_for_an_apps_own_host_has_its_acs_there() {
    // SAML fixes one ACS per registration: the provider serving the app with its own base
    // is built with that base (check refuses a second one).
    let apps = r#"
[[app]]
name = "nia-app"
hosts = ["nia.test"]
upstream = "{upstream}"
providers = ["nia"]
public_base_url = "http://nia.test:{port}"
"#;
    let saml = aisgate::sim::stack::SamlStackProvider {
        sp_base: Some("http://nia.test:{port}".to_owned()),
        ..Default::default()
    };
    let gw = stack_with(apps, Vec::new(), Some(saml)).await;
    let browser = Browser::new(&gw, &["nia.test"]);
    let (start, _) = follow(&browser, app_url("nia.test", &gw, "/spis"), gw.addr.port()).await;
    let answer = match start.status().as_u16() {
        302 => browser.get(&location(&start)).await,
        200 => {
            let (action, fields) = support::parse_form(&start.text().await.unwrap());
            let fields: Vec<(&str, String)> = fields.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            browser.post(&action, &fields).await
        }
        other => panic!("login start answered {other}"),
    };
    assert_eq!(answer.status(), 200, "the simulated IdP answers with a form");
    let (acs, form) = support::parse_form(&answer.text().await.unwrap());
    assert_eq!(acs, app_url("nia.test", &gw, "/.aisgate/callback/nia"), "the ACS is on the app's host");
    let form: Vec<(&str, String)> = form.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let done = browser.post(&acs, &form).await;
    assert_eq!(done.status(), 302, "the ACS completes the login on the app's host");
    let (app, url) = follow(&browser, absolute(&acs, &done), gw.addr.port()).await;
    assert_eq!(url, app_url("nia.test", &gw, "/spis"));
    let seen = upstream_saw(app).await;
    assert_eq!(seen["x-auth-provider"], "nia", "{seen}");
}

fn support_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[tokio::test]
async fn the_request_host_picks_the_cms_or_the_internet_registration_without_a_chooser() {
    // Issue 12 item 7: CAAIS allows one domain per configuration; one AIS on the government
    // network (CMS) and the Internet has two registrations, picked by the request's host.
    let apps = r#"
[[app]]
name = "ais"
hosts = ["ais.cms.test", "ais.internet.test"]
upstream = "{upstream}"
providers = ["caais-cms", "caais-internet"]
providers_by_host = { "ais.cms.test" = "caais-cms", "ais.internet.test" = "caais-internet" }
"#;
    let gw = stack_with(
        apps,
        vec![oidc_for("caais-cms", "ais.cms.test"), oidc_for("caais-internet", "ais.internet.test")],
        None,
    )
    .await;
    let browser = Browser::new(&gw, &["ais.cms.test", "ais.internet.test"]);
    for (host, provider, sim) in [("ais.cms.test", "caais-cms", 0), ("ais.internet.test", "caais-internet", 1)] {
        let (start, _) = follow(&browser, app_url(host, &gw, "/agenda"), gw.addr.port()).await;
        assert_eq!(start.status(), 302, "{host}: straight to the IdP, no chooser");
        assert!(location(&start).starts_with(&gw.oidc[sim].base), "{host}: {provider}'s IdP: {}", location(&start));
        let (done, url) = oidc_login(&browser, &gw, start).await;
        assert_eq!(url, app_url(host, &gw, "/agenda"));
        let seen = upstream_saw(done).await;
        assert_eq!(seen["x-auth-provider"], provider, "{host}: {seen}");
    }
}

/// Writes `text` as a configuration next to the stack-independent files it names.
fn load_config(text: &str) -> Result<aisgate::config::Config, Vec<aisgate::config::ConfigError>> {
    let dir = std::env::temp_dir().join(format!("aisgate-multi-host-{}-{}", std::process::id(), text.len()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("aisgate.toml");
    std::fs::write(&path, text).unwrap();
    let loaded = aisgate::config::load(&path);
    std::fs::remove_dir_all(&dir).unwrap();
    loaded
}

const BASE_CONFIG: &str = r#"
[server]
listen = ["127.0.0.1:0"]
public_base_url = "https://portal.example.cz"

[session]
keys = [{ id = "k1", env = "AISGATE_TEST_KEY" }]

[[provider]]
name = "jip"
kind = "kaas"
preset = "kaas-test"
ats_id = "AIS"
client_cert = "/nonexistent/client.pem"
client_key = "/nonexistent/client.key"
"#;

#[test]
fn check_refuses_an_app_whose_login_cannot_complete_with_a_precise_message() {
    let app = "\n[[app]]\nname = \"spis\"\nhosts = [\"spis.example.cz\"]\nupstream = \"http://127.0.0.1:1\"\nproviders = [\"jip\"]\n";
    let errors = load_config(&format!("{BASE_CONFIG}{app}")).expect_err("refused");
    let line = BASE_CONFIG.lines().count() + 2;
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let hit = text
        .iter()
        .find(|e| e.contains("app \"spis\": a login on host \"spis.example.cz\" returns from provider \"jip\" to https://portal.example.cz"))
        .unwrap_or_else(|| panic!("{text:#?}"));
    assert!(hit.contains(&format!("aisgate.toml:{line}:1: ")), "file:line:column of the [[app]]: {hit}");
    assert!(
        hit.contains("central_login = true") && hit.contains("public_base_url = \"https://spis.example.cz\""),
        "{hit}"
    );
    // Each remedy makes it valid.
    for fix in ["central_login = true\n", "public_base_url = \"https://spis.example.cz\"\n"] {
        let fixed = format!("{BASE_CONFIG}{app}{fix}");
        let errors = load_config(&fixed).err().unwrap_or_default();
        let relevant: Vec<String> = errors.iter().map(ToString::to_string).filter(|e| e.contains("spis")).collect();
        // KAAS has one return URL: with the app's own base it is fine as long as no other app
        // uses jip at another base.
        assert!(relevant.is_empty(), "{fix}: {relevant:#?}");
    }
}

#[test]
fn check_refuses_a_single_registration_used_at_two_hosts_and_bad_providers_by_host() {
    let apps = "\n[[app]]\nname = \"a\"\nhosts = [\"a.example.cz\"]\nupstream = \"http://127.0.0.1:1\"\nproviders = [\"jip\"]\npublic_base_url = \"https://a.example.cz\"\n\
        \n[[app]]\nname = \"b\"\nhosts = [\"b.example.cz\"]\nupstream = \"http://127.0.0.1:1\"\nproviders = [\"jip\"]\npublic_base_url = \"https://b.example.cz\"\n";
    let text: Vec<String> =
        load_config(&format!("{BASE_CONFIG}{apps}")).expect_err("refused").iter().map(ToString::to_string).collect();
    assert!(
        text.iter().any(|e| e.contains("provider \"jip\" (kind kaas) has one registered return URL, but apps log in with it at https://a.example.cz and https://b.example.cz")),
        "{text:#?}"
    );
    let by_host = "\n[[app]]\nname = \"ais\"\nhosts = [\"ais.cms.cz\", \"ais.gov.cz\"]\nupstream = \"http://127.0.0.1:1\"\nproviders = [\"jip\"]\n\
        providers_by_host = { \"ais.cms.cz\" = \"jip\", \"other.cz\" = \"nope\" }\n";
    let text: Vec<String> =
        load_config(&format!("{BASE_CONFIG}{by_host}")).expect_err("refused").iter().map(ToString::to_string).collect();
    for expected in [
        "providers_by_host names host \"other.cz\", which is not in hosts",
        "providers_by_host names provider \"nope\", which is not in providers",
        "host \"ais.gov.cz\" has no entry in providers_by_host",
    ] {
        assert!(text.iter().any(|e| e.contains(expected)), "{expected}: {text:#?}");
    }
}

#[test]
fn the_shipped_example_is_valid_and_was_the_broken_setup() {
    // config/apps.d/example-app.toml: an app on its own host behind JIP, whose one return URL
    // is on public_base_url's host. With central_login it loads; without, check refuses it.
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("aisgate-multi-host-example-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("apps.d")).unwrap();
    std::fs::copy(repo.join("config/aisgate.example.toml"), dir.join("aisgate.example.toml")).unwrap();
    let app = std::fs::read_to_string(repo.join("config/apps.d/example-app.toml")).unwrap();
    assert!(app.contains("\ncentral_login = true\n"), "the example hands its logins over");
    std::fs::write(dir.join("apps.d/example-app.toml"), &app).unwrap();
    let valid = aisgate::config::load(&dir.join("aisgate.example.toml")).map(|_| ());
    std::fs::write(dir.join("apps.d/example-app.toml"), app.replace("\ncentral_login = true\n", "\n")).unwrap();
    let broken = aisgate::config::load(&dir.join("aisgate.example.toml")).map(|_| ());
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(valid.is_ok(), "{valid:?}");
    let errors: Vec<String> = broken.expect_err("refused").iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0]
            .contains("apps.d/example-app.toml:8:1: app \"spisova-sluzba\": a login on host \"spis.example.gov.cz\""),
        "{errors:#?}"
    );
}
