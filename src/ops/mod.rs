//! The ops listener: `/healthz`, `/readyz`, `/metrics`, and the admin API ([`crate::admin`],
//! `POST /admin/reload` among it).
//!
//! Kept on its own listener (default `127.0.0.1:9090`) so that readiness details and metrics
//! never reach the public network.

pub mod metrics;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::reload::Live;

/// The ops router, answering for the gateway in use.
pub fn router(live: Live) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(live.clone())
        // `/admin/…`: only with `[admin] token_file`, behind its bearer token. Built per
        // request for the gateway in use (a reload may change the token file), with the
        // `Live` handle in the request's extensions for `POST /admin/reload`.
        .fallback(move |mut req: axum::extract::Request| {
            let gw = live.gateway();
            req.extensions_mut().insert(live.clone());
            async move {
                use tower::ServiceExt;
                match crate::admin::router(gw).oneshot(req).await {
                    Ok(resp) => resp,
                    Err(never) => match never {},
                }
            }
        })
}

async fn readyz(State(live): State<Live>) -> impl IntoResponse {
    let gw = live.gateway();
    let providers = gw.readiness();
    let store = gw.store.readiness();
    let ready = store.ready && providers.iter().all(|(_, r)| r.ready);
    // Informational only: a failing audit sink never makes the gateway unready (see `audit`).
    let audit = gw.audit.health();
    let body = serde_json::json!({
        "ready": ready,
        "config": "loaded",
        "config_hash": live.config_hash(),
        "session_store": {"backend": store.backend, "ready": store.ready, "detail": store.detail},
        "audit": {"enabled": audit.enabled, "healthy": audit.healthy, "detail": audit.detail},
        "providers": providers.iter().map(|(name, r)| (name.clone(), serde_json::json!({"ready": r.ready, "detail": r.detail}))).collect::<serde_json::Map<_, _>>(),
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string())
}

async fn metrics(State(live): State<Live>) -> impl IntoResponse {
    let gw = live.gateway();
    gw.metrics.set_active_sessions(gw.store.active_sessions());
    gw.metrics.set_session_store_bytes(gw.store.memory_bytes().unwrap_or(0));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], gw.metrics.render())
}
