//! Form posts across a login (issue 14 item 15; README "Form posts across a login").
//!
//! A user whose session expired while a form was open submits it and would lose what they
//! typed to the login redirect. As mod_auth_mellon and mod_auth_openidc do, the gateway keeps
//! such a POST in the pending login (server-side, never in a URL or cookie), and once the
//! login succeeds the browser gets a page that posts the same fields to the same URL.
//!
//! Only what a browser's own form sends is kept, and only from this origin:
//! - `[server] preserve_post_max_bytes` > 0, and the app logs in automatically
//!   (`unauthenticated = "auto"`);
//! - a top-level form navigation (not `fetch`/XHR: those get the usual 401);
//! - `Content-Type: application/x-www-form-urlencoded` (multipart uploads are not kept:
//!   files do not fit a page of hidden inputs);
//! - same origin: `Origin` present and equal to this host's origin, and `Sec-Fetch-Site`,
//!   when sent, `same-origin`. A cross-site POST is never kept — replayed after the login it
//!   would be a CSRF the login itself carried out;
//! - at most `preserve_post_max_bytes` bytes of body whose fields decode as UTF-8.
//!
//! A same-origin form navigation that is not kept (too large, multipart, not UTF-8) still
//! starts the login, without the form; anything else (cross-site, `fetch`) gets the usual 401
//! naming the login URL. The kept post is single use: it goes with the pending login, which
//! the callback takes once.

use axum::body::Body;
use http::header::{CONTENT_TYPE, HOST, ORIGIN};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;

use super::endpoints;
use super::request::RequestInfo;
use super::rescue;
use super::route::App;
use super::Gateway;
use crate::config::Unauthenticated;
use crate::http::return_url::ReturnUrl;
use crate::pages;
use crate::session::SavedPost;

/// Why a POST is not kept across the login (logged as `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum NotKept {
    /// Not a top-level form navigation (`fetch`, XHR).
    #[error("not_navigation")]
    NotNavigation,
    /// Another body than `application/x-www-form-urlencoded`.
    #[error("not_urlencoded_form")]
    NotForm,
    /// No `Origin`, another origin, or `Sec-Fetch-Site` other than `same-origin`.
    #[error("cross_site")]
    CrossSite,
    /// Larger than `preserve_post_max_bytes`.
    #[error("too_large")]
    TooLarge,
    /// The body broke off, or a field is not UTF-8.
    #[error("unreadable")]
    Unreadable,
}

impl NotKept {
    /// The user's own form on this origin, only not one the gateway keeps: they still get
    /// the login (without the form) rather than a bare 401.
    fn still_logs_in(self) -> bool {
        matches!(self, NotKept::NotForm | NotKept::TooLarge | NotKept::Unreadable)
    }
}

/// Whether this request to `app` (which found no session) should be considered at all: a
/// POST to an app that logs in automatically, with keeping enabled.
pub(super) fn applies(gw: &Gateway, app: &App, method: &Method) -> bool {
    method == Method::POST && gw.preserve_post_max_bytes > 0 && app.unauthenticated == Unauthenticated::Auto
}

/// The answer to a POST without a session (see [`applies`]): a login that keeps the form; a
/// login without it for a same-origin form navigation that cannot be kept; else `Err` with
/// the request's head, for the usual answer (401).
pub(super) async fn login_keeping(
    gw: &Gateway,
    app: &App,
    req: Request<Body>,
    return_to: ReturnUrl,
    info: &RequestInfo,
) -> Result<Response<Body>, http::request::Parts> {
    let (parts, body) = req.into_parts();
    match keep(gw, app, &parts.headers, body).await {
        Ok(saved) => {
            tracing::info!(request_id = info.id(), app = %app.name, fields = saved.fields.len(), "form POST without a session: kept across the login");
            Ok(endpoints::start_login_keeping(gw, app, return_to, &parts.headers, info, saved).await)
        }
        Err(reason) => {
            tracing::info!(request_id = info.id(), app = %app.name, reason = %reason, "form POST without a session: not kept across the login");
            if reason.still_logs_in() {
                return Ok(endpoints::start_login(gw, app, None, return_to, &parts.headers, info).await);
            }
            Err(parts)
        }
    }
}

/// The form's fields, when the POST may be kept (checks before the body is read; the read is
/// capped).
async fn keep(gw: &Gateway, app: &App, headers: &HeaderMap, body: Body) -> Result<SavedPost, NotKept> {
    if !super::request::navigates(headers) {
        return Err(NotKept::NotNavigation);
    }
    if !same_origin(gw, app, headers) {
        return Err(NotKept::CrossSite);
    }
    if !is_urlencoded(headers) {
        return Err(NotKept::NotForm);
    }
    let cap = gw.preserve_post_max_bytes;
    let declared = headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > cap as u64) {
        return Err(NotKept::TooLarge);
    }
    let bytes = match http_body_util::Limited::new(body, cap).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(NotKept::TooLarge),
        Err(_) => return Err(NotKept::Unreadable),
    };
    decode(&bytes).map(|fields| SavedPost { fields }).ok_or(NotKept::Unreadable)
}

/// `Content-Type: application/x-www-form-urlencoded` (parameters such as `charset` allowed).
fn is_urlencoded(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

/// The POST comes from a page of this very origin: `Origin` (which browsers send on every
/// POST) is one value equal to the scheme of the app's public base URL with the request's
/// host, and every `Sec-Fetch-Site`, when present, says `same-origin`. No `Origin` (or an
/// opaque `null` one) is not same origin.
fn same_origin(gw: &Gateway, app: &App, headers: &HeaderMap) -> bool {
    // Every value counts: a second header must not hide behind a first one.
    if headers.get_all("sec-fetch-site").iter().any(|site| site != "same-origin") {
        return false;
    }
    let mut origins = headers.get_all(ORIGIN).iter();
    let (Some(origin), None, Some(host)) =
        (origins.next().and_then(|v| v.to_str().ok()), origins.next(), headers.get(HOST).and_then(|v| v.to_str().ok()))
    else {
        return false;
    };
    let base = app.public_base_url.as_deref().unwrap_or(&gw.public_base_url);
    let Ok(scheme) = url::Url::parse(base).map(|u| u.scheme().to_owned()) else { return false };
    match (url::Url::parse(origin), url::Url::parse(&format!("{scheme}://{host}"))) {
        (Ok(sent), Ok(own)) => sent.origin().is_tuple() && sent.origin() == own.origin(),
        _ => false,
    }
}

/// The fields of a urlencoded body, in order; `None` when a name or value is not UTF-8 once
/// decoded (it could not be posted again unchanged).
fn decode(body: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(body).ok()?;
    let part = |raw: &str| {
        let spaced = raw.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced).decode_utf8().ok().map(|c| c.into_owned())
    };
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((part(name)?, part(value)?))
        })
        .collect()
}

/// The page after the login that sends the kept form on to `target` (the login's return URL,
/// validated again by the caller): the fields as hidden inputs and a "Continue" button.
pub(super) fn replay(target: &ReturnUrl, saved: &SavedPost, info: &RequestInfo) -> Response<Body> {
    let fields: Vec<(&str, &str)> = saved.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    tracing::info!(request_id = info.id(), fields = fields.len(), "login done: the kept form POST goes on");
    rescue::html(StatusCode::OK, pages::saved_post_page(target.as_str(), &fields, info.lang()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_keeps_order_plus_and_percent_escapes() {
        let fields = decode(b"a=1&note=hello+world%21&a=%C5%BElu%C5%A5ou%C4%8Dk%C3%BD&empty=&flag").unwrap();
        let want = [("a", "1"), ("note", "hello world!"), ("a", "žluťoučký"), ("empty", ""), ("flag", "")];
        assert_eq!(fields, want.map(|(k, v)| (k.to_owned(), v.to_owned())));
    }

    #[test]
    fn decode_refuses_what_could_not_be_posted_again_unchanged() {
        assert_eq!(decode(b"a=%FF"), None, "percent-escaped invalid UTF-8");
        assert_eq!(decode(b"a=\xff"), None, "raw invalid UTF-8");
    }

    #[test]
    fn only_urlencoded_bodies_are_forms_here() {
        let with = |ct: &str| {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, ct.parse().unwrap());
            is_urlencoded(&h)
        };
        assert!(with("application/x-www-form-urlencoded"));
        assert!(with("Application/X-WWW-Form-Urlencoded; charset=UTF-8"));
        assert!(!with("multipart/form-data; boundary=x"));
        assert!(!with("application/json"));
        assert!(!with("text/plain"));
        assert!(!is_urlencoded(&HeaderMap::new()));
    }
}
