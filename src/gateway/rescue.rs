//! Turning failures into responses, in one place.
//!
//! Browsers get the gateway's own page (Czech or English), API clients a small JSON body;
//! neither ever carries internal detail — that goes to the operator log, once, with the
//! request id the user sees on the page.

use axum::body::Body;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};

use super::request::RequestInfo;
use crate::pages::{self, ErrorKind, ErrorPage};

/// Adds the headers every gateway-generated response carries.
fn own_response(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action *; frame-ancestors 'none'",
        ),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    resp
}

/// An HTML page.
pub fn html(status: StatusCode, body: String) -> Response<Body> {
    own_response(status, "text/html; charset=utf-8", body)
}

/// An error as a page (browsers) or JSON (API clients).
pub fn error(kind: ErrorKind, info: &RequestInfo, retry_url: Option<&str>) -> Response<Body> {
    if info.wants_html() {
        // The home link leads to a real app of this host (or the public base URL on another
        // host), never to a hard-coded `/` that may itself be a 404 (issue 14 item 13).
        let page = ErrorPage { kind, request_id: Some(info.id()), retry_url, home_url: info.home() };
        html(kind.status(), pages::error_page(&page, info.lang()))
    } else {
        let body = serde_json::json!({ "error": error_code(kind), "request_id": info.id() }).to_string();
        own_response(kind.status(), "application/json", body)
    }
}

/// 503 for an app in maintenance: browsers get the maintenance page with the operator's
/// message, API clients JSON; both with `Retry-After`.
pub fn maintenance(notice: &crate::admin::maintenance::Notice, info: &RequestInfo) -> Response<Body> {
    let status = StatusCode::SERVICE_UNAVAILABLE;
    let mut resp = if info.wants_html() {
        html(status, pages::maintenance_page(notice.message.as_deref(), info.lang()))
    } else {
        let body = serde_json::json!({ "error": "maintenance", "request_id": info.id() }).to_string();
        own_response(status, "application/json", body)
    };
    retry_after(&mut resp, notice.retry_after_secs);
    resp
}

/// 403 for a logged-in user: browsers get the page that says who is logged in (display name
/// and provider) and offers logout and "log in with another account" (issue 14 item 11); API
/// clients the same JSON as any error.
pub fn forbidden(info: &RequestInfo, who: &pages::SignedIn) -> Response<Body> {
    if !info.wants_html() {
        return error(ErrorKind::Forbidden, info, None);
    }
    let page =
        ErrorPage { kind: ErrorKind::Forbidden, request_id: Some(info.id()), retry_url: None, home_url: info.home() };
    html(ErrorKind::Forbidden.status(), pages::forbidden_page(&page, who, info.lang()))
}

/// Adds `Retry-After: secs` (RFC 9110 §10.2.3) to a 503 or 429.
pub fn retry_after(resp: &mut Response<Body>, secs: u64) {
    resp.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
}

/// 401 for API/XHR/non-GET requests without a session.
pub fn unauthorized(info: &RequestInfo, login_url: &str) -> Response<Body> {
    let body =
        serde_json::json!({ "error": "unauthenticated", "login": login_url, "request_id": info.id() }).to_string();
    let mut resp = own_response(StatusCode::UNAUTHORIZED, "application/json", body);
    resp.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Cookie realm=\"aisgate\""));
    resp
}

/// 401 for API/XHR/non-GET requests whose session's LoA is too low for the route: the client
/// must send the user through `login_url` (a step-up login at `loa`).
pub fn step_up_required(info: &RequestInfo, login_url: &str, loa: &str) -> Response<Body> {
    let body =
        serde_json::json!({ "error": "step_up_required", "min_loa": loa, "login": login_url, "request_id": info.id() })
            .to_string();
    let mut resp = own_response(StatusCode::UNAUTHORIZED, "application/json", body);
    resp.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Cookie realm=\"aisgate\""));
    resp
}

/// A `302 Found` to `location`, uncacheable, leaking no referrer.
pub fn redirect(location: &str) -> Response<Body> {
    let mut resp = own_response(StatusCode::FOUND, "text/plain; charset=utf-8", String::new());
    match HeaderValue::from_str(location) {
        Ok(v) => {
            resp.headers_mut().insert(LOCATION, v);
        }
        Err(_) => {
            tracing::error!("refusing to emit a Location header with invalid characters");
            *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    resp
}

fn error_code(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::BadRequest => "bad_request",
        ErrorKind::NotFound => "not_found",
        ErrorKind::Forbidden => "forbidden",
        ErrorKind::PayloadTooLarge => "payload_too_large",
        ErrorKind::LoginFailed => "login_failed",
        ErrorKind::LoginNotInitiated => "login_not_initiated",
        ErrorKind::LoginExpired => "login_expired",
        ErrorKind::IdpUnavailable => "idp_unavailable",
        ErrorKind::UpstreamUnavailable => "upstream_unavailable",
        ErrorKind::UpstreamTimeout => "upstream_timeout",
        ErrorKind::SessionStoreUnavailable => "session_store_unavailable",
        ErrorKind::TooManyRequests => "too_many_requests",
        ErrorKind::Internal => "internal_error",
    }
}
