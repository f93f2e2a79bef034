//! Every app is a security boundary (issue 9, items 1–5 and 8): a session reaches only apps
//! that list its provider; rules, public paths and routing hold for every reading of the path
//! (`;params`, case on insensitive apps); `default = "deny"`; double encoding hidden behind
//! escaped hex digits; exactly one well-formed Host. Each refusal is checked for its reason in
//! the operator log, not only for its status.

mod support;

use aisgate::sim::stack::StackOptions;
use support::logs::{self, assert_reason};
use support::{header_echo, location, raw_request, Gateway};

const APPS: &str = r#"
[[app]]
name = "portal"
upstream = "{upstream}"
providers = ["jip"]
public_paths = ["/public"]

[[app.rule]]
path_prefix = "/admin"
any_role = ["ADMIN"]

[[app]]
name = "api"
path_prefix = "/api"
upstream = "{upstream}"
providers = ["jip"]
default = "deny"

[[app.rule]]
path_prefix = "/api/open"

[[app]]
name = "iis"
hosts = ["iis.localhost"]
central_login = true
upstream = "{upstream}"
providers = ["jip"]
path_case = "insensitive"

[[app.rule]]
path_prefix = "/Admin"
any_role = ["ADMIN"]

[[app]]
name = "caais-only"
path_prefix = "/b"
upstream = "{upstream}"
providers = ["caais"]
upstream_bearer = true

[[app]]
name = "jip-bearer"
path_prefix = "/a"
upstream = "{upstream}"
providers = ["jip"]
"#;

async fn gateway() -> Gateway {
    logs::capture();
    Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        apps: Some(APPS.to_owned()),
        oidc: vec![support::caais_provider("loa = \"substantial\"\n")],
        ..Default::default()
    })
    .await
}

async fn get(gw: &Gateway, path: &str, cookie: &str, host: Option<&str>) -> reqwest::Response {
    let mut req = gw.client.get(gw.url(path)).header("cookie", cookie);
    if let Some(host) = host {
        req = req.header("host", host);
    }
    req.send().await.unwrap()
}

/// Item 1: a JIP session is not served to an app that only lists CAAIS, and a CAAIS session
/// (with its access token) not to an app that only lists JIP.
#[tokio::test]
async fn a_session_is_served_only_to_apps_that_list_its_provider() {
    let gw = gateway().await;
    let (jip, _) = gw.login_to("/a", 0).await;
    assert_eq!(get(&gw, "/a/x", &jip, None).await.status(), 200);

    let api = get(&gw, "/b/x", &jip, None).await;
    assert_eq!(api.status(), 401, "API call with another provider's session");
    assert_reason(&api, "session's provider is not one of the app's");
    let nav = gw.navigate("/b/x", Some(&jip)).await;
    assert_eq!(nav.status(), 302, "navigation starts a login at the app's own provider");
    assert!(location(&nav).starts_with(&gw.oidc[0].base), "{}", location(&nav));

    let caais = gw.oidc_login("caais", "/b").await;
    let served = get(&gw, "/b/x", &caais, None).await;
    assert_eq!(served.status(), 200);
    let refused = get(&gw, "/a/x", &caais, None).await;
    assert_eq!(refused.status(), 401, "the CAAIS session (and its bearer) never reaches the JIP app");
    assert_reason(&refused, "session's provider is not one of the app's");
}

/// Item 2: `;` path parameters (Tomcat drops them) do not get round a rule or routing.
#[tokio::test]
async fn path_parameters_get_round_neither_rules_nor_routing() {
    let gw = gateway().await;
    let (cookie, _) = gw.login_to("/", 0).await;
    for path in ["/admin/secret", "/admin;x/secret", "/;x/admin/secret", "/admin;", "/admin;jsessionid=1"] {
        let resp = get(&gw, path, &cookie, None).await;
        assert_eq!(resp.status(), 403, "{path}");
        assert_reason(&resp, "MissingRole");
    }
    // `/api;x/…` is the api app's (default deny), not the portal's.
    let routed = get(&gw, "/api;x/secret", &cookie, None).await;
    assert_eq!(routed.status(), 403);
    assert_reason(&routed, "NoRule");
    // A public path is public only when every reading is: `public;x` is not `/public`.
    let public = gw.client.get(gw.url("/public;x/y")).send().await.unwrap();
    assert_eq!(public.status(), 401, "not public without a session");
    assert_eq!(gw.client.get(gw.url("/public/y.jsp;jsessionid=1")).send().await.unwrap().status(), 200);
}

/// Item 3: an insensitive app's rule holds for every case and Windows alias of its prefix.
#[tokio::test]
async fn an_insensitive_app_matches_rules_case_insensitively_and_refuses_windows_aliases() {
    let gw = gateway().await;
    let (cookie, _) = gw.login_to("/", 0).await;
    let host = Some("iis.localhost");
    for path in ["/admin/x", "/ADMIN/x", "/aDmIn", "/adm%C4%B1n/x", "/ADMIN;x/y"] {
        let resp = get(&gw, path, &cookie, host).await;
        assert_eq!(resp.status(), 403, "{path}");
        assert_reason(&resp, "MissingRole");
    }
    for path in ["/admin.", "/admin%20", "/admin./x", "/ADMINI~1/x", "/admin::$DATA"] {
        let resp = get(&gw, path, &cookie, host).await;
        assert_eq!(resp.status(), 400, "{path}");
        assert_reason(&resp, "Windows alias");
    }
    assert_eq!(get(&gw, "/other", &cookie, host).await.status(), 200);
    // The case-sensitive portal still treats `/ADMIN` as another path (its upstream does too).
    assert_eq!(get(&gw, "/ADMIN/x", &cookie, None).await.status(), 200);
}

/// Item 4: `default = "deny"` refuses what no rule covers.
#[tokio::test]
async fn default_deny_refuses_paths_no_rule_covers() {
    let gw = gateway().await;
    let (cookie, _) = gw.login_to("/", 0).await;
    assert_eq!(get(&gw, "/api/open/x", &cookie, None).await.status(), 200);
    let denied = get(&gw, "/api/other", &cookie, None).await;
    assert_eq!(denied.status(), 403);
    assert_reason(&denied, "NoRule");
}

/// Item 5: double encoding through escaped hex digits, in paths and in return URLs.
#[tokio::test]
async fn double_encoding_through_escaped_hex_digits_is_refused() {
    let gw = gateway().await;
    for path in [
        "/public/%25%32%65%25%32%65/admin",
        "/public/%25%32%66admin",
        "/public/%25%35%63admin",
        "/public/%2500",
        "/public/%25%30%30",
    ] {
        let (status, text) =
            raw_request(gw.addr, &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")).await;
        assert_eq!(status, 400, "{path}: {text}");
        assert!(logged_for_raw(&text, "double-encoded"), "{path}");
    }
    // A return URL that decodes to `//evil.com` falls back to `/`.
    let start = gw.navigate("/.aisgate/login?return=%2F%2525%2532%2546%2525%2532%2546evil.com", None).await;
    assert_eq!(start.status(), 302);
    let done = gw.finish_kaas_login(&start, 0).await;
    assert_eq!(done.status(), 302);
    assert_eq!(location(&done), "/");
}

/// Item 8: a malformed Host, two Hosts, or HTTP/1.1 without Host → 400 (RFC 9112 §3.2).
#[tokio::test]
async fn malformed_duplicate_or_missing_hosts_are_refused() {
    let gw = gateway().await;
    let cases = [
        (
            "malformed",
            "GET /public/x HTTP/1.1\r\nHost: portal.local:@evil.com\r\nConnection: close\r\n\r\n",
            "Host is malformed",
        ),
        (
            "userinfo",
            "GET /public/x HTTP/1.1\r\nHost: evil.com@portal.local\r\nConnection: close\r\n\r\n",
            "Host is malformed",
        ),
        (
            "duplicate",
            "GET /public/x HTTP/1.1\r\nHost: localhost\r\nHost: evil.com\r\nConnection: close\r\n\r\n",
            "more than one Host",
        ),
        ("missing", "GET /public/x HTTP/1.1\r\nConnection: close\r\n\r\n", "no Host"),
        (
            "absolute form",
            "GET http://portal.local:@evil.com/public/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            "Host is malformed",
        ),
    ];
    for (label, request, reason) in cases {
        let (status, text) = raw_request(gw.addr, request).await;
        assert_eq!(status, 400, "{label}: {text}");
        assert!(logged_for_raw(&text, reason), "{label}: no log line with {reason:?}");
    }
    // HTTP/1.0 may omit Host; one valid Host is fine.
    let (status, _) = raw_request(gw.addr, "GET /public/x HTTP/1.0\r\n\r\n").await;
    assert_eq!(status, 200);
    let (status, text) =
        raw_request(gw.addr, "GET /public/x HTTP/1.1\r\nHost: localhost:8080\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status, 200, "{text}");
}

/// Whether the request whose raw response is `text` logged a line containing `needle`.
fn logged_for_raw(text: &str, needle: &str) -> bool {
    let Some(id) = text
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: ").or_else(|| l.strip_prefix("X-Request-Id: ")))
        .map(str::trim)
    else {
        return false;
    };
    logs::lines_for(id).iter().any(|l| l.contains(needle))
}
