//! End-to-end behaviour of the gateway core: a real gateway on an ephemeral port in front of
//! a test upstream, logging in through the simulated JIP/KAAS IdP over real mutual TLS.

mod support;

use std::time::Duration;

use aisgate::sim::stack::StackOptions;
use support::{header_echo, location, set_cookie, text, upstream, Gateway};

fn headers_of(body: &serde_json::Value) -> &serde_json::Map<String, serde_json::Value> {
    body["headers"].as_object().expect("headers object")
}

#[tokio::test]
async fn unauthenticated_navigation_redirects_to_the_idp_with_a_binding_cookie() {
    let gw = Gateway::with_upstream(&header_echo().await).await;
    let resp = gw.navigate("/reports/2026?x=1", None).await;
    assert_eq!(resp.status(), 302);
    assert_eq!(location(&resp), format!("{}?atsId=AISGATE_DEMO", gw.sim.login_url()));
    let cookie = resp.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(cookie.starts_with("aisgate_login="));
    for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
}

#[tokio::test]
async fn api_xhr_and_non_get_requests_get_401_not_a_redirect() {
    let gw = Gateway::with_upstream(&header_echo().await).await;
    let api = gw.client.get(gw.url("/api/items")).header("accept", "application/json").send().await.unwrap();
    assert_eq!(api.status(), 401);
    let body: serde_json::Value = api.json().await.unwrap();
    assert_eq!(body["error"], "unauthenticated");
    let xhr = gw
        .client
        .get(gw.url("/page"))
        .header("accept", "text/html")
        .header("x-requested-with", "XMLHttpRequest")
        .send()
        .await
        .unwrap();
    assert_eq!(xhr.status(), 401);
    let post = gw.client.post(gw.url("/form")).header("accept", "text/html").body("a=1").send().await.unwrap();
    assert_eq!(post.status(), 401);
}

#[tokio::test]
async fn public_path_passes_without_a_session() {
    let gw = Gateway::with_upstream(&header_echo().await).await;
    let resp = gw.navigate("/public/info.html", None).await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["path"], "/public/info.html");
    assert!(headers_of(&body).keys().all(|k| !k.starts_with("x-auth-")));
    // "/publicity" is not under the public prefix "/public".
    assert_eq!(gw.navigate("/publicity", None).await.status(), 302);
}

const SPOOFED: &[&str] = &[
    "X-Auth-Subject",
    "x-auth-subject",
    "X-AUTH-ROLES",
    "X_Auth_Roles",
    "x_auth_org_ico",
    "X-Auth_Loa",
    "x-auth",
    "X-Auth-Something-New",
    "X-Auth-Token",
];

#[tokio::test]
async fn spoofed_identity_headers_never_reach_the_upstream() {
    let gw = Gateway::with_upstream(&header_echo().await).await;
    let cookie = gw.login().await;
    for (path, cookie) in [("/public/x", None), ("/private", Some(cookie.as_str()))] {
        let mut req = gw.client.get(gw.url(path)).header("accept", "application/json");
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        for name in SPOOFED {
            req = req.header(*name, "spoofed");
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let body: serde_json::Value = resp.json().await.unwrap();
        for (name, value) in headers_of(&body) {
            assert_ne!(value, "spoofed", "{path}: {name} reached the upstream");
        }
    }
}

#[tokio::test]
async fn connection_header_cannot_remove_gateway_set_identity_headers() {
    let gw = Gateway::with_upstream(&header_echo().await).await;
    let cookie = gw.login().await;
    let resp = gw
        .client
        .get(gw.url("/x"))
        .header("cookie", &cookie)
        .header("connection", "X-Auth-Subject, X-Auth-Roles, x-auth-token, keep-alive")
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    let h = headers_of(&body);
    for name in ["x-auth-subject", "x-auth-roles", "x-auth-token"] {
        assert!(h.contains_key(name), "{name} was removed via Connection");
    }
}

#[tokio::test]
async fn authenticated_session_produces_the_documented_headers() {
    let gw = Gateway::with_upstream(&header_echo().await).await;
    let (cookie, target) = gw.login_to("/desk?tab=2", 0).await;
    assert_eq!(target, "/desk?tab=2", "login returns to the original URL");
    let resp = gw.client.get(gw.url("/desk")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    let h = headers_of(&body);
    let expect = [
        ("x-auth-provider", "jip"),
        ("x-auth-protocol", "kaas-ws/v4_2"),
        ("x-auth-subject", "6f1c0d2a-6b7e-4d0e-9a51-3c2b1f0e9d84"),
        ("x-auth-username", "novakova"),
        ("x-auth-given-name", "Ji%C5%99ina"),
        ("x-auth-family-name", "Nov%C3%A1kov%C3%A1"),
        ("x-auth-title-before", "Ing."),
        ("x-auth-roles", "REFERENT,SCHVALOVATEL"),
        ("x-auth-agenda-roles", "A1234:CR0001,A1234:CR0002"),
        ("x-auth-org-ico", "00007064"),
        ("x-auth-org-code", "MVCR"),
        ("x-auth-org-kind", "OVM"),
        ("x-auth-loa", "substantial"),
        ("x-auth-loa-uri", "http://eidas.europa.eu/LoA/substantial"),
        ("x-auth-method", "p-cert"),
        ("x-auth-identity-verified", "true"),
    ];
    for (name, value) in expect {
        assert_eq!(h.get(name).and_then(|v| v.as_str()), Some(value), "{name}");
    }
    // Absent values produce no header; the gateway's cookies are not forwarded.
    assert!(!h.contains_key("x-auth-phone"));
    assert!(!h.contains_key("x-auth-birth-date"), "personal data is opt-in");
    assert!(h.get("cookie").is_none_or(|c| !c.as_str().unwrap().contains("aisgate_")));
    // The signed identity token verifies against the JWKS the gateway publishes.
    let token = h["x-auth-token"].as_str().unwrap();
    let jwks: serde_json::Value =
        gw.client.get(gw.url("/.aisgate/jwks.json")).send().await.unwrap().json().await.unwrap();
    let claims = verify_es256(token, &jwks);
    assert_eq!(claims["sub"], "6f1c0d2a-6b7e-4d0e-9a51-3c2b1f0e9d84");
    assert_eq!(claims["aud"], "echo");
    assert_eq!(claims["iss"], gw.base);
}

fn verify_es256(token: &str, jwks: &serde_json::Value) -> serde_json::Value {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let key = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == header["kid"]).expect("kid in JWKS");
    let mut point = vec![4u8];
    point.extend(URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap());
    point.extend(URL_SAFE_NO_PAD.decode(key["y"].as_str().unwrap()).unwrap());
    let public = aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED, point);
    public
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &URL_SAFE_NO_PAD.decode(parts[2]).unwrap())
        .expect("signature verifies");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap()
}

#[tokio::test]
async fn forged_tampered_and_expired_cookies_are_refused() {
    let gw = Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        session_extra: "idle_timeout_secs = 1\nabsolute_timeout_secs = 60".into(),
        ..Default::default()
    })
    .await;
    let cookie = gw.login().await;
    let api = |c: String| {
        let gw = &gw;
        async move {
            gw.client
                .get(gw.url("/x"))
                .header("accept", "application/json")
                .header("cookie", c)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(api(cookie.clone()).await, 200);
    let value = cookie.trim_start_matches("aisgate_session=");
    let (kid, rest) = value.split_once('.').unwrap();
    let (id, tag) = rest.split_once('.').unwrap();
    let forged = format!("aisgate_session={kid}.{}.{tag}", "A".repeat(43));
    let flipped: String = id.chars().rev().collect();
    let tampered = format!("aisgate_session={kid}.{flipped}.{tag}");
    let other_key = format!("aisgate_session=other.{id}.{tag}");
    for bad in [forged, tampered, other_key, "aisgate_session=garbage".into()] {
        assert_eq!(api(bad.clone()).await, 401, "{bad}");
    }
    gw.clock.advance(Duration::from_millis(2500));
    assert_eq!(api(cookie).await, 401, "idle session expired");
}

#[tokio::test]
async fn logout_destroys_the_session_and_redirects_to_the_idp_logout() {
    let gw = Gateway::with_upstream(&header_echo().await).await;
    let cookie = gw.login().await;
    let resp = gw.client.get(gw.url("/logout")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let to = location(&resp);
    let expected_uri: String =
        url::form_urlencoded::byte_serialize(gw.url("/.aisgate/logged-out").as_bytes()).collect();
    assert_eq!(to, format!("{}?atsId=AISGATE_DEMO&uri={expected_uri}", gw.sim.logout_url()));
    assert!(resp.headers().get_all("set-cookie").iter().any(|c| c.to_str().unwrap().starts_with("aisgate_session=;")));
    // The IdP sends the browser back to the logged-out page, which never starts a login.
    let back = gw.client.get(&to).send().await.unwrap();
    assert_eq!(back.status(), 303);
    let page = gw.navigate("/.aisgate/logged-out", None).await;
    assert_eq!(page.status(), 200);
    // A cross-site link to the logout URL gets a confirmation button, not a logout.
    let cookie2 = gw.login().await;
    let cross = gw
        .client
        .get(gw.url("/.aisgate/logout"))
        .header("cookie", &cookie2)
        .header("sec-fetch-site", "cross-site")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 200);
    assert!(cross.text().await.unwrap().contains("method=\"post\""));
    let still =
        gw.client.get(gw.url("/x")).header("accept", "application/json").header("cookie", &cookie2).send().await;
    assert_eq!(still.unwrap().status(), 200);
    // The old cookie no longer works.
    let after = gw
        .client
        .get(gw.url("/x"))
        .header("accept", "application/json")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
}

#[tokio::test]
async fn callback_without_the_binding_cookie_is_refused_and_tokens_are_single_use() {
    let gw = Gateway::with_upstream(&header_echo().await).await;
    let start = gw.navigate("/", None).await;
    let login_cookie = set_cookie(&start, "aisgate_login").unwrap();
    let form = gw.client.post(location(&start)).form(&[("user", "1")]).send().await.unwrap();
    let callback = location(&form);
    // Without the pre-login cookie (login CSRF): refused, and the IdP is never called.
    // Only authConfirmation counts: the provider's heartBeat may land at any moment.
    let confirmations =
        || gw.sim.calls.lock().unwrap().iter().filter(|c| c.contains("authConfirmationRequest")).count();
    let calls_before = confirmations();
    let no_cookie = gw.client.get(&callback).header("accept", "text/html").send().await.unwrap();
    assert_eq!(no_cookie.status(), 400);
    assert!(no_cookie.text().await.unwrap().contains("nebylo zahájeno"));
    assert_eq!(confirmations(), calls_before);
    // With it: success, and a replay of the same callback fails cleanly.
    let cookie = format!("aisgate_login={login_cookie}");
    let ok = gw.client.get(&callback).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(ok.status(), 302);
    let replay = gw.client.get(&callback).header("cookie", &cookie).header("accept", "text/html").send().await.unwrap();
    assert_eq!(replay.status(), 400);
}

#[tokio::test]
async fn open_redirect_forms_are_refused_after_login() {
    let gw = Gateway::with_upstream(&header_echo().await).await;
    for evil in [
        "//evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "/%2F%2Fevil.example",
        "/%5Cevil",
        "/a\tb",
        "/%0d%0aLocation:x",
    ] {
        let encoded: String = url::form_urlencoded::byte_serialize(evil.as_bytes()).collect();
        let start = gw.navigate(&format!("/.aisgate/login?return={encoded}"), None).await;
        assert_eq!(start.status(), 302, "{evil}");
        let done = gw.finish_kaas_login(&start, 0).await;
        assert_eq!(done.status(), 302);
        assert_eq!(location(&done), "/", "{evil} must fall back to /");
    }
}

#[tokio::test]
async fn upstream_down_gives_502_and_slow_upstream_gives_504() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let gw = Gateway::with_upstream(&format!("http://{free}")).await;
    let down = gw.navigate("/public/x", None).await;
    assert_eq!(down.status(), 502);
    assert!(down.text().await.unwrap().contains("<html"));
    let slow = upstream(|_req| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        text(200, "late")
    })
    .await;
    let gw = Gateway::start(StackOptions {
        upstream: Some(slow),
        server_extra: "upstream_timeout_secs = 1".into(),
        ..Default::default()
    })
    .await;
    let started = std::time::Instant::now();
    let resp = gw.navigate("/public/slow", None).await;
    assert_eq!(resp.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn ops_endpoints_report_health_readiness_and_metrics() {
    let gw = Gateway::with_upstream(&header_echo().await).await;
    let _ = gw.login().await;
    let ops = |p: &str| format!("http://{}{p}", gw.ops);
    assert_eq!(gw.client.get(ops("/healthz")).send().await.unwrap().status(), 200);
    // The first heartBeat runs at start; wait for it.
    let mut ready = serde_json::Value::Null;
    for _ in 0..50 {
        let resp = gw.client.get(ops("/readyz")).send().await.unwrap();
        ready = resp.json().await.unwrap();
        if ready["ready"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready["providers"]["jip"]["ready"], true, "{ready}");
    let metrics = gw.client.get(ops("/metrics")).send().await.unwrap().text().await.unwrap();
    for line in ["aisgate_logins_total{provider=\"jip\",result=\"success\"} 1", "aisgate_active_sessions 1"] {
        assert!(metrics.lines().any(|l| l == line), "missing {line:?} in\n{metrics}");
    }
    assert!(metrics.contains("aisgate_requests_total{app=\"echo\",status=\"302\"}"));
}

#[tokio::test]
async fn in_flight_request_finishes_during_graceful_shutdown() {
    let slow = upstream(|_req| async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        text(200, "finished")
    })
    .await;
    let mut gw = Gateway::with_upstream(&slow).await;
    let client = gw.client.clone();
    let url = gw.url("/public/slow");
    let in_flight = tokio::spawn(async move { client.get(url).send().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.shutdown();
    let resp = in_flight.await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "finished");
    tokio::time::timeout(Duration::from_secs(5), &mut gw.done).await.expect("server stops").unwrap();
    assert!(tokio::net::TcpStream::connect(gw.addr).await.is_err(), "no new connections after shutdown");
}

#[tokio::test]
async fn several_providers_get_a_chooser_in_czech_or_english() {
    let apps = r#"
[[provider]]
name = "caais"
kind = "kaas"
preset = "caais-test"
display_name = "CAAIS <legacy>"
ats_id = "OTHER"
client_cert = "{dir}/client.pem"
client_key = "{dir}/client.key"

[[app]]
name = "both"
upstream = "{upstream}"
providers = ["jip", "caais"]
"#;
    let gw = Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        apps: Some(apps.to_owned()),
        ..Default::default()
    })
    .await;
    let cz = gw.navigate("/docs?a=1", None).await;
    assert_eq!(cz.status(), 200);
    let page = cz.text().await.unwrap();
    assert!(page.contains("lang=\"cs\"") && page.contains("Zvolte způsob přihlášení"), "{page}");
    assert!(page.contains("/.aisgate/login?return=%2Fdocs%3Fa%3D1&amp;provider=jip"), "{page}");
    assert!(page.contains("CAAIS &lt;legacy&gt;"), "labels are escaped");
    let en = gw
        .client
        .get(gw.url("/docs"))
        .header("accept", "text/html")
        .header("accept-language", "en-GB,en;q=0.9,cs;q=0.5")
        .send()
        .await
        .unwrap();
    assert!(en.text().await.unwrap().contains("Choose how to log in"));
    // Picking one starts that provider's login.
    let pick = gw.navigate("/.aisgate/login?return=%2Fdocs&provider=jip", None).await;
    assert_eq!(pick.status(), 302);
    assert!(location(&pick).starts_with(&gw.sim.login_url()));
    // A provider the app does not allow is refused.
    assert_eq!(gw.navigate("/.aisgate/login?return=%2Fdocs&provider=evil", None).await.status(), 400);
}

#[tokio::test]
async fn host_is_rewritten_or_preserved_and_bad_requests_get_clear_errors() {
    let echo = header_echo().await;
    let apps = format!(
        "[[app]]\nname = \"keep\"\nhosts = [\"keep.localhost\"]\nupstream = \"{echo}\"\nproviders = [\"jip\"]\npublic_paths = [\"/\"]\npreserve_host = true\n\
         [[app]]\nname = \"rewrite\"\nupstream = \"{echo}/base/\"\nproviders = [\"jip\"]\npublic_paths = [\"/\"]\n"
    );
    let gw = Gateway::start(StackOptions {
        apps: Some(apps),
        server_extra: "max_body_bytes = 1024".into(),
        ..Default::default()
    })
    .await;
    let json = |resp: reqwest::Response| async move { resp.json::<serde_json::Value>().await.unwrap() };
    let kept = gw.client.get(gw.url("/a")).header("host", "keep.localhost:1234").send().await.unwrap();
    let body = json(kept).await;
    assert_eq!(body["headers"]["host"], "keep.localhost:1234");
    assert_eq!(body["headers"]["x-forwarded-host"], "keep.localhost:1234");
    let rewritten = json(gw.client.get(gw.url("/a/./b//c/%7Ex?q=1")).send().await.unwrap()).await;
    assert_eq!(rewritten["headers"]["host"], echo.trim_start_matches("http://"));
    assert_eq!(rewritten["path"], "/base/a/b/c/~x?q=1", "the canonical path is what the upstream sees");
    // Sent raw: HTTP client libraries normalize these before sending.
    for path in ["/a/%2e%2e/%2e%2e/etc", "/a/%2Fb", "/a/..;/b", "/a\\b", "/../x"] {
        assert_eq!(raw_status(gw.addr, path).await, 400, "{path}");
    }
    let big = gw.client.post(gw.url("/upload")).body(vec![0u8; 4096]).send().await.unwrap();
    assert_eq!(big.status(), 413);
    let english = gw
        .client
        .get(gw.url("/.aisgate/callback/jip?sessionId=x"))
        .header("accept", "text/html")
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(english.status(), 400);
    let text = english.text().await.unwrap();
    assert!(text.contains("lang=\"en\""), "{text}");
    assert!(text.contains("Request ID"), "{text}");
}

/// Sends `GET path` byte for byte and returns the status code.
async fn raw_status(addr: std::net::SocketAddr, path: &str) -> u16 {
    support::raw_request(addr, &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")).await.0
}

#[tokio::test]
async fn a_browser_that_keeps_starting_logins_is_stopped_by_loop_protection() {
    let gw = Gateway::with_upstream(&header_echo().await).await;
    let mut counter: Option<String> = None;
    let mut statuses = Vec::new();
    for _ in 0..11 {
        let cookie = counter.as_ref().map(|c| format!("aisgate_login_count={c}"));
        let resp = gw.navigate("/loop", cookie.as_deref()).await;
        statuses.push(resp.status().as_u16());
        if let Some(c) = set_cookie(&resp, "aisgate_login_count") {
            counter = Some(c);
        }
    }
    assert_eq!(&statuses[..10], &[302; 10]);
    assert_eq!(statuses[10], 429, "the 11th login start within the window is refused");
    // The counter cookie is the gateway's: it never reaches the upstream.
    let session = gw.login().await;
    let body: serde_json::Value = gw
        .client
        .get(gw.url("/x"))
        .header("cookie", format!("{session}; aisgate_login_count={}", counter.unwrap()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body["headers"].get("cookie").is_none(), "{body}");
}
