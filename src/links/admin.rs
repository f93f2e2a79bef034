//! `/admin/links…` on the admin API (ops listener, bearer token; see [`crate::admin`]):
//!
//! * `GET /admin/links` — every link as JSON (`?format=csv` for CSV): the export;
//! * `GET /admin/links/bsi/{bsi}` — one link;
//! * `POST /admin/links` — import: a JSON array (`Content-Type: application/json`) or CSV
//!   (`text/csv`); all or nothing, errors name the line;
//! * `DELETE /admin/links/bsi/{bsi}`, `DELETE /admin/links/legacy/{id}` — delete one link.
//!
//! Answers carry BSIs and legacy ids (that is what an export is); logs and audit events only
//! their keyed labels. Each change is a `link_change` audit event (`source = "admin"`).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use axum::Router;
use http::{header, HeaderMap, Response, StatusCode};

use super::file::{self, Format};
use super::{Change, LinkError, LinkKey};
use crate::gateway::Gateway;

/// Largest accepted import body: about 100 000 links.
pub const MAX_IMPORT_BYTES: usize = 32 << 20;

/// The routes; mounted by [`crate::admin::router`].
pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/admin/links", get(list).post(import))
        .route("/admin/links/bsi/{bsi}", get(one).delete(delete_bsi))
        .route("/admin/links/legacy/{id}", axum::routing::delete(delete_legacy))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_IMPORT_BYTES))
}

fn answer(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    resp
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    answer(status, "application/json", value.to_string())
}

fn failure(e: &LinkError) -> Response<Body> {
    let status = match e {
        LinkError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
        LinkError::LegacyTaken | LinkError::BsiTaken => StatusCode::CONFLICT,
        LinkError::Invalid(_) | LinkError::Import { .. } => StatusCode::UNPROCESSABLE_ENTITY,
    };
    json(status, &serde_json::json!({ "error": e.label(), "detail": e.to_string() }))
}

fn not_configured() -> Response<Body> {
    json(StatusCode::NOT_FOUND, &serde_json::json!({ "error": "links_not_configured" }))
}

fn origin() -> crate::audit::Origin<'static> {
    crate::audit::Origin::none()
}

async fn list(State(gw): State<Arc<Gateway>>, RawQuery(query): RawQuery) -> Response<Body> {
    let Some(links) = gw.links.as_ref() else { return not_configured() };
    let format = if query.as_deref().is_some_and(|q| q.split('&').any(|p| p == "format=csv")) {
        Format::Csv
    } else {
        Format::Json
    };
    let all = match links.store.list().await {
        Ok(all) => all,
        Err(e) => return failure(&e),
    };
    match (file::render(&all, format), format) {
        (Ok(text), Format::Csv) => answer(StatusCode::OK, "text/csv; charset=utf-8", text),
        (Ok(text), Format::Json) => answer(StatusCode::OK, "application/json", text),
        (Err(e), _) => failure(&e),
    }
}

async fn one(State(gw): State<Arc<Gateway>>, Path(bsi): Path<String>) -> Response<Body> {
    let Some(links) = gw.links.as_ref() else { return not_configured() };
    match links.store.by_bsi(&bsi).await {
        Ok(Some(link)) => json(StatusCode::OK, &serde_json::json!(link)),
        Ok(None) => json(StatusCode::NOT_FOUND, &serde_json::json!({ "error": "not_found" })),
        Err(e) => failure(&e),
    }
}

async fn import(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Response<Body> {
    import_body(&gw, &headers, &body).await
}

/// The import behind `POST /admin/links`.
async fn import_body(gw: &Gateway, headers: &HeaderMap, body: &[u8]) -> Response<Body> {
    let Some(links) = gw.links.as_ref() else { return not_configured() };
    let csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("text/csv"));
    let format = if csv { Format::Csv } else { Format::Json };
    let Ok(text) = std::str::from_utf8(body) else {
        return failure(&LinkError::Import { line: 1, reason: "the body is not UTF-8".into() });
    };
    let result = match file::parse(text, format, gw.clock.now_unix()) {
        Ok((batch, lines)) => links.store.import(batch, lines).await,
        Err(e) => Err(e),
    };
    super::audit(&gw.audit, origin(), Change::imported("admin", &result));
    match result {
        Ok(added) => {
            tracing::info!(added, "account links imported through the admin API");
            json(StatusCode::OK, &serde_json::json!({ "imported": added }))
        }
        Err(e) => {
            tracing::warn!(reason = e.label(), "account link import refused: {e}");
            failure(&e)
        }
    }
}

async fn delete_bsi(State(gw): State<Arc<Gateway>>, Path(bsi): Path<String>) -> Response<Body> {
    delete(&gw, LinkKey::Bsi(bsi)).await
}

async fn delete_legacy(State(gw): State<Arc<Gateway>>, Path(id): Path<String>) -> Response<Body> {
    delete(&gw, LinkKey::Legacy(id)).await
}

async fn delete(gw: &Gateway, key: LinkKey) -> Response<Body> {
    let Some(links) = gw.links.as_ref() else { return not_configured() };
    let result = links.store.delete(key).await;
    super::audit(&gw.audit, origin(), Change::deleted("admin", &result));
    match result {
        Ok(Some(link)) => {
            tracing::info!(user = %super::bsi_label(&link.bsi), legacy = %super::legacy_label(&link.legacy.id), "account link deleted through the admin API");
            json(StatusCode::OK, &serde_json::json!({ "deleted": link }))
        }
        Ok(None) => json(StatusCode::NOT_FOUND, &serde_json::json!({ "error": "not_found" })),
        Err(e) => failure(&e),
    }
}
