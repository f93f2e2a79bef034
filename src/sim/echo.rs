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
        "<!doctype html><html lang=\"cs\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>Echo upstream</title><style>body{{font-family:system-ui,sans-serif;margin:2rem;color:#1a1a1a}}\
         table{{border-collapse:collapse}}th,td{{text-align:left;padding:.25rem .75rem;border-bottom:1px solid #ddd;vertical-align:top}}\
         tr.id{{background:#eef6ee}}code{{background:#f3f3f3;padding:.1rem .3rem}}</style></head><body><main>\
         <h1>Echo upstream</h1><p>The protected app received <code>{} {}</code> with these headers \
         (identity headers highlighted; percent-encoded values shown decoded):</p><table>{rows}</table>\
         <p><a href=\"/.aisgate/logout\">Odhlásit / Log out</a></p></main></body></html>",
        html_escape(&method),
        html_escape(&uri)
    ))
    .into_response()
}
