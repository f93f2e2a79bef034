//! An echo upstream: shows the request it received, headers included, so a person (demo) or
//! a test can see exactly what the gateway forwarded.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{Html, IntoResponse, Response};
use axum::Router;

use crate::pages::html_escape;

/// Starts the echo upstream on `addr`; returns the bound address.
pub async fn start(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    super::serve(addr, Router::new().fallback(echo), "echo upstream").await
}

fn decoded(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    percent_encoding::percent_decode_str(&text).decode_utf8_lossy().into_owned()
}

async fn echo(req: Request) -> Response {
    let headers: Vec<(String, String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned(), decoded(v.as_bytes()))
        })
        .collect();
    let wants_json = req.headers().get("accept").and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("json"));
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    if wants_json {
        let map: serde_json::Map<String, serde_json::Value> =
            headers.iter().map(|(k, v, _)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        let body = serde_json::json!({ "method": method, "uri": uri, "headers": map });
        return ([(http::header::CONTENT_TYPE, "application/json")], Body::from(body.to_string())).into_response();
    }
    let rows: String = headers
        .iter()
        .map(|(k, raw, dec)| {
            let shown = if raw == dec {
                html_escape(raw)
            } else {
                format!("{} <small>({})</small>", html_escape(dec), html_escape(raw))
            };
            let class = if k.starts_with("x-auth-") { " class=\"id\"" } else { "" };
            format!("<tr{class}><th scope=\"row\">{}</th><td>{shown}</td></tr>\n", html_escape(k))
        })
        .collect();
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>Echo upstream</title><style>body{{font-family:system-ui,sans-serif;margin:2rem;color:#1a1a1a}}\
         table{{border-collapse:collapse;width:100%}}th,td{{text-align:left;padding:.25rem .75rem;border-bottom:1px solid #ddd;vertical-align:top}}\
         td{{overflow-wrap:anywhere;word-break:break-all}}tr.id{{background:#eef6ee}}code{{background:#f3f3f3;padding:.1rem .3rem}}\
         .who{{background:#eef6ee;border:1px solid #9c9;padding:.5rem 1rem;margin-bottom:1rem}}.who dl{{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:0}}\
         .who dd{{margin:0;overflow-wrap:anywhere}}</style></head><body><main>\
         <h1>Echo upstream</h1>{summary}<p>The protected app received <code>{} {}</code> with these headers \
         (identity headers highlighted; percent-encoded values shown decoded):</p><table>{rows}</table></main></body></html>",
        html_escape(&method),
        html_escape(&uri),
        summary = identity_summary(&headers),
    ))
    .into_response()
}

/// The identity at a glance, from the `X-Auth-*` headers (decoded): name, subject, provider,
/// level of assurance, organisation, and the gateway's logout link. Without identity headers
/// (a public path) it says so.
fn identity_summary(headers: &[(String, String, String)]) -> String {
    let get = |name: &str| {
        headers.iter().find(|(k, _, _)| k == name).map(|(_, _, decoded)| decoded.as_str()).filter(|v| !v.is_empty())
    };
    let logout = "<p><a href=\"/.aisgate/logout\">Odhlásit / Log out</a></p>";
    let Some(subject) = get("x-auth-subject") else {
        return format!("<section class=\"who\"><p>No identity headers: this path is public.</p>{logout}</section>");
    };
    let name: Vec<&str> = ["x-auth-title-before", "x-auth-given-name", "x-auth-family-name", "x-auth-title-after"]
        .into_iter()
        .filter_map(get)
        .collect();
    let loa = match (get("x-auth-loa"), get("x-auth-loa-uri")) {
        (Some(loa), Some(uri)) => format!("{loa} ({uri})"),
        (Some(v), None) | (None, Some(v)) => v.to_owned(),
        (None, None) => "—".to_owned(),
    };
    let org = match (get("x-auth-org-name"), get("x-auth-org-ico")) {
        (Some(name), Some(ico)) => format!("{name}, IČO {ico}"),
        (Some(v), None) | (None, Some(v)) => v.to_owned(),
        (None, None) => "—".to_owned(),
    };
    let rows: String = [
        ("Name", if name.is_empty() { "—".to_owned() } else { name.join(" ") }),
        ("Subject", subject.to_owned()),
        ("Provider", get("x-auth-provider").unwrap_or("—").to_owned()),
        ("Level of assurance", loa),
        ("Organisation", org),
    ]
    .iter()
    .map(|(label, value)| format!("<dt>{label}</dt><dd>{}</dd>", html_escape(value)))
    .collect();
    format!("<section class=\"who\" aria-label=\"Identity\"><dl>{rows}</dl>{logout}</section>")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn page(headers: &[(&str, &str)]) -> String {
        let mut req = http::Request::builder().uri("/reports?x=1");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = echo(req.body(Body::empty()).unwrap()).await;
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn the_identity_summary_and_logout_come_first_and_every_value_is_escaped() {
        let page = page(&[
            ("x-auth-subject", "CZ/CZ/2e3883ee"),
            ("x-auth-provider", "nia"),
            ("x-auth-title-before", "Ing."),
            ("x-auth-given-name", "Ji%C5%99ina"),
            ("x-auth-family-name", "<script>alert(1)</script>"),
            ("x-auth-loa", "substantial"),
            ("x-auth-loa-uri", "http://eidas.europa.eu/LoA/substantial"),
            ("x-auth-org-name", "Ministerstvo vnitra"),
            ("x-auth-org-ico", "00007064"),
            ("x-auth-token", "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"),
        ])
        .await;
        assert!(page.starts_with("<!doctype html><html lang=\"en\">"), "{page}");
        assert!(page.contains("<title>Echo upstream</title>") && page.contains("<h1>Echo upstream</h1>"));
        // The script is text everywhere: in the summary and in the header table.
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("<dt>Name</dt><dd>Ing. Jiřina &lt;script&gt;alert(1)&lt;/script&gt;</dd>"), "{page}");
        assert!(page.contains("<dt>Subject</dt><dd>CZ/CZ/2e3883ee</dd>"), "{page}");
        assert!(page.contains("<dt>Provider</dt><dd>nia</dd>"), "{page}");
        assert!(
            page.contains("<dt>Level of assurance</dt><dd>substantial (http://eidas.europa.eu/LoA/substantial)</dd>"),
            "{page}"
        );
        assert!(page.contains("<dt>Organisation</dt><dd>Ministerstvo vnitra, IČO 00007064</dd>"), "{page}");
        // Summary and logout before the header table (the token row is last to read).
        let at = |needle: &str| page.find(needle).unwrap_or_else(|| panic!("no {needle} in {page}"));
        assert!(at("<dt>Name</dt>") < at("<table>"));
        assert!(at("href=\"/.aisgate/logout\"") < at("<table>"));
        assert!(at("<table>") < at("eyJhbGciOiJFUzI1NiJ9"));
        // Long values (the token) wrap instead of widening the page.
        assert!(page.contains("td{overflow-wrap:anywhere"), "{page}");
        assert!(page.contains("<code>GET /reports?x=1</code>"));
    }

    #[tokio::test]
    async fn a_public_request_says_there_is_no_identity() {
        let page = page(&[("accept", "text/html")]).await;
        assert!(page.contains("No identity headers: this path is public."), "{page}");
        assert!(!page.contains("<dt>Subject</dt>"), "{page}");
    }
}
