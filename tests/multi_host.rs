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
    logs::capture();
    Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        apps: Some(apps.to_owned()),
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
