//! The security boundary between clients and upstreams: forwarding headers, gateway cookies,
//! one-time-credential logins and restart links (issue 9). Every refusal is checked for its
//! reason (status, page or error code, and the operator's log line), not only its status.

mod support;

use aisgate::sim::stack::StackOptions;
use support::{header_echo, logs, Gateway};

fn headers_of(body: &serde_json::Value) -> &serde_json::Map<String, serde_json::Value> {
    body["headers"].as_object().expect("headers object")
}

// ---------------------------------------------------------------------------
// Forwarding headers
// ---------------------------------------------------------------------------

/// Client-sent spellings that must never reach an upstream as sent.
const FORGED: &[&str] = &[
    "X_Forwarded_For",
    "x_forwarded_host",
    "X_Forwarded_Proto",
    "X_Request_Id",
    "X-Forwarded_For",
    "Proxy",
    "Proxy-Foo",
    "proxy_bar",
    "X-Original-URL",
    "X-Rewrite-URL",
    "X-Forwarded-Prefix",
    "X_Forwarded_Prefix",
    "X-Forwarded-Port",
    "X-Forwarded-Server",
    "X-Forwarded-Ssl",
    "X-Forwarded-Scheme",
    "X-Real-IP",
    "X_Real_IP",
    "X-Client-IP",
    "True-Client-IP",
    "CF-Connecting-IP",
    "X-Cluster-Client-IP",
    "X-Original-Host",
    "X-Host",
    "X_Auth_Subject",
];

/// Sends every [`FORGED`] header plus `extra` to the echo upstream; returns the request id
/// and the headers the upstream received.
async fn echo_with(gw: &Gateway, extra: &[(&str, &str)]) -> (String, serde_json::Value) {
    let mut req = gw.client.get(gw.url("/public/x")).header("accept", "application/json");
    for name in FORGED {
        req = req.header(*name, "6.6.6.6");
    }
    for (name, value) in extra {
        req = req.header(*name, *value);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let id = logs::request_id(&resp);
    (id, resp.json().await.unwrap())
}

#[tokio::test]
async fn forwarding_header_spellings_from_a_client_never_reach_the_upstream() {
    logs::capture();
    let gw = Gateway::with_upstream(&header_echo().await).await;
    let (id, body) = echo_with(&gw, &[("Forwarded", "for=6.6.6.6"), ("X-Forwarded-For", "6.6.6.6")]).await;
    let h = headers_of(&body);
    for name in FORGED {
        assert!(!h.contains_key(&name.to_ascii_lowercase()), "{name} reached the upstream: {h:?}");
    }
    assert!(!h.contains_key("forwarded"), "Forwarded from an untrusted peer");
    // The gateway's own values, in the spelling it writes.
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert!(h["x-forwarded-host"].as_str().unwrap().starts_with("localhost"));
    assert_eq!(h["x-request-id"], id.as_str());
    assert!(h.values().all(|v| v != "6.6.6.6"), "{h:?}");
    // The operator sees the names, never the values.
    let line = logs::line_with(&id, "client sent forwarding or proxy headers; stripped");
    for name in ["x_forwarded_for", "x-original-url", "proxy", "x-real-ip"] {
        assert!(line.contains(&format!("\"{name}\"")), "{name} not named in {line}");
    }
    assert!(!line.contains("6.6.6.6"), "{line}");
}

#[tokio::test]
async fn a_trusted_proxy_keeps_its_dash_forms_but_never_the_underscore_twins() {
    logs::capture();
    let gw = Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        server_extra: "trusted_proxies = [\"127.0.0.1/32\"]".into(),
        ..Default::default()
    })
    .await;
    let (_, body) = echo_with(
        &gw,
        &[
            ("X-Forwarded-For", "1.2.3.4"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "portal.example.cz"),
            ("Forwarded", "for=1.2.3.4;proto=https"),
        ],
    )
    .await;
    let h = headers_of(&body);
    assert_eq!(h["x-forwarded-for"], "1.2.3.4, 127.0.0.1", "appended");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-forwarded-host"], "portal.example.cz");
    assert_eq!(h["forwarded"], "for=1.2.3.4;proto=https");
    for name in FORGED {
        assert!(!h.contains_key(&name.to_ascii_lowercase()), "{name} reached the upstream via a trusted proxy");
    }
}
