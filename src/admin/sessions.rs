//! Admin endpoints over sessions and maintenance (all behind the admin token, see
//! [`super::router`]):
//!
//! | method and path | what |
//! |---|---|
//! | `GET /admin/sessions?user=&organisation=&provider=&app=&limit=` | list sessions |
//! | `DELETE /admin/sessions/{handle}` | end one session |
//! | `DELETE /admin/sessions?user=LABEL` / `?organisation=ICO` | end all of a user / organisation |
//! | `GET /admin/maintenance` | apps in maintenance |
//! | `PUT /admin/maintenance/{app}` (JSON `{"message", "retry_after_secs"}`) | maintenance on |
//! | `DELETE /admin/maintenance/{app}` | maintenance off |
//!
//! A session is shown as its handle (the session's log label: an HMAC of the store key, the
//! same `session=` label the logs carry; computed under this gateway's own label key), the user's log label (`provider:HMAC`), provider,
//! app, organisation IČO, LoA and times — never an id, store key, token, subject or name. A
//! user is named by that log label, so no personal data is sent to the API either.
//!
//! Filters are exact matches (an IČO ignoring zero padding, as IdPs differ) and unknown query parameters are refused (`400`): a typo in
//! `DELETE /admin/sessions?usr=…` must not widen into "everyone". Ending needs a user or an
//! organisation.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{delete, get};
use axum::Router;
use http::{header, StatusCode};
use serde::Deserialize;

use super::maintenance::{self, Notice, DEFAULT_RETRY_AFTER_SECS, MAX_MESSAGE_CHARS};
use crate::audit::{EndReason, Event, Origin, Outcome, SessionRef, Subject};
use crate::gateway::Gateway;
use crate::identity::LogLabelKey;
use crate::session::users::Listed;
use crate::session::{Session, StoreError, StoreKey};

/// Sessions listed when the query gives no `limit`.
pub const DEFAULT_LIST_LIMIT: usize = 100;
/// Most sessions one listing returns.
pub const MAX_LIST_LIMIT: usize = 10_000;

type Gw = State<Arc<Gateway>>;

/// The session and maintenance routes.
pub(super) fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/admin/sessions", get(list).delete(end_matching))
        .route("/admin/sessions/{handle}", delete(end_one))
        .route("/admin/maintenance", get(maintenance_list))
        .route("/admin/maintenance/{app}", axum::routing::put(maintenance_on).delete(maintenance_off))
}

/// Which sessions a query means; every given field must match.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Filter {
    /// The user's log label, `provider:hex` (as in the logs).
    user: Option<String>,
    /// The organisation's IČO.
    organisation: Option<String>,
    /// Provider name.
    provider: Option<String>,
    /// The app the login was made for.
    app: Option<String>,
    /// Most sessions to list (not for ending).
    limit: Option<usize>,
}

impl Filter {
    /// Whether `session` matches, user labels computed under `labels`.
    fn matches(&self, session: &Session, labels: &LogLabelKey) -> bool {
        let id = &session.identity;
        let ico = id.organisation.as_ref().and_then(|o| o.ico.as_deref());
        self.provider.as_ref().is_none_or(|p| *p == id.provider)
            && self.app.as_ref().is_none_or(|a| session.app.as_deref() == Some(a.as_str()))
            && self.organisation.as_ref().is_none_or(|o| ico.is_some_and(|ico| crate::gateway::route::same_ico(o, ico)))
            // The label is compared last: it costs an HMAC.
            && self.user.as_ref().is_none_or(|u| *u == id.log_label_with(labels))
    }
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    resp
}

fn bad_request(why: &str) -> Response {
    json(StatusCode::BAD_REQUEST, serde_json::json!({ "error": why }))
}

fn unavailable(e: &StoreError) -> Response {
    tracing::error!(error = %e, "admin API: session store unavailable");
    json(StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({ "error": "session_store_unavailable" }))
}

/// What the API shows of a session: nothing that identifies the person or opens the session.
fn view(listed: &Listed, labels: &LogLabelKey) -> serde_json::Value {
    let s = &listed.session;
    let id = &s.identity;
    serde_json::json!({
        "handle": listed.key.log_label_with(labels),
        "user": id.log_label_with(labels),
        "provider": id.provider,
        "app": s.app.as_deref(),
        "organisation": id.organisation.as_ref().and_then(|o| o.ico.as_deref()),
        "loa": id.loa.map(|l| l.as_str()),
        "created_at": s.created_at,
        "last_seen": listed.last_seen,
        "expires_at": s.expires_at,
    })
}

/// Audits an admin action (the admin API has no request id: its origin is empty).
fn audit(gw: &Gateway, action: &'static str, target: &str, sessions_ended: Option<usize>, result: Outcome) {
    let target = Some(target);
    gw.audit.emit(Event::AdminAction { origin: Origin::none(), action, target, sessions_ended, result });
}

async fn list(State(gw): Gw, Query(filter): Query<Filter>) -> Response {
    let limit = filter.limit.unwrap_or(DEFAULT_LIST_LIMIT).min(MAX_LIST_LIMIT);
    // One more than asked, to say whether the list was cut.
    let labels = gw.keyring.log_label_key();
    let keep = |_: &StoreKey, s: &Session| filter.matches(s, &labels);
    match gw.store.scan_sessions(&keep, limit.saturating_add(1)).await {
        Ok(mut found) => {
            let truncated = found.len() > limit;
            found.truncate(limit);
            found.sort_by_key(|l| (l.session.created_at, l.key.0));
            let sessions: Vec<_> = found.iter().map(|l| view(l, &labels)).collect();
            json(StatusCode::OK, serde_json::json!({ "sessions": sessions, "truncated": truncated }))
        }
        Err(e) => unavailable(&e),
    }
}

/// Walks of the store an end makes at most: a walk that runs while other sessions end may
/// miss a match (see `SessionStore::scan_sessions`), so an end walks again until a walk finds
/// nothing more.
const END_WALKS: usize = 3;

/// Ends every session `keep` selects; each end is announced (other instances, tunnels) and
/// audited (`session_end`, reason `admin`).
async fn end_all(gw: &Gateway, keep: &crate::session::users::Keep<'_>) -> Result<usize, StoreError> {
    let mut ended = 0;
    for _ in 0..END_WALKS {
        let found = gw.store.scan_sessions(keep, usize::MAX).await?;
        if found.is_empty() {
            break;
        }
        for listed in found {
            if let Some(gone) = gw.store.remove(&listed.key).await? {
                let (subject, session) = (Subject(&gone.identity), SessionRef(&listed.key));
                gw.audit.emit(Event::SessionEnd { origin: Origin::none(), reason: EndReason::Admin, subject, session });
                ended += 1;
            }
        }
    }
    Ok(ended)
}

/// Ends what `keep` selects and answers `{"ended": n}` (404 for a handle that names
/// nothing), auditing the action either way.
async fn end_and_answer(
    gw: &Gateway,
    action: &'static str,
    target: &str,
    keep: &crate::session::users::Keep<'_>,
) -> Response {
    match end_all(gw, keep).await {
        Ok(ended) => {
            tracing::info!(action, target, ended, "admin: sessions ended");
            if ended == 0 && action == "end_session" {
                audit(gw, action, target, Some(0), Outcome::Unmatched);
                return json(StatusCode::NOT_FOUND, serde_json::json!({ "ended": 0, "error": "no such session" }));
            }
            audit(gw, action, target, Some(ended), Outcome::Success);
            json(StatusCode::OK, serde_json::json!({ "ended": ended }))
        }
        Err(e) => {
            audit(gw, action, target, None, Outcome::Error);
            unavailable(&e)
        }
    }
}

async fn end_matching(State(gw): Gw, Query(filter): Query<Filter>) -> Response {
    if filter.limit.is_some() {
        return bad_request("limit is for listing; ending ends every matching session");
    }
    let (action, target) = match (&filter.user, &filter.organisation) {
        (Some(user), _) => ("end_user_sessions", user.clone()),
        (None, Some(org)) => ("end_organisation_sessions", org.clone()),
        (None, None) => return bad_request("name a user or an organisation"),
    };
    let labels = gw.keyring.log_label_key();
    let keep = |_: &StoreKey, s: &Session| filter.matches(s, &labels);
    end_and_answer(&gw, action, &target, &keep).await
}

async fn end_one(State(gw): Gw, Path(handle): Path<String>) -> Response {
    let labels = gw.keyring.log_label_key();
    let keep = |key: &StoreKey, _: &Session| key.log_label_with(&labels) == handle;
    end_and_answer(&gw, "end_session", &handle, &keep).await
}

fn notice_view(app: &str, notice: &Notice) -> serde_json::Value {
    serde_json::json!({
        "app": app,
        "message": notice.message,
        "retry_after_secs": notice.retry_after_secs,
        "since": notice.since,
    })
}

async fn maintenance_list(State(gw): Gw) -> Response {
    // The store is the truth shared by all instances; this instance's board may be up to a
    // second behind.
    if let Err(e) = maintenance::refresh(&gw).await {
        return unavailable(&e);
    }
    let apps: Vec<_> = gw.maintenance.all().iter().map(|(app, n)| notice_view(app, n)).collect();
    json(StatusCode::OK, serde_json::json!({ "apps": apps }))
}

/// The body of `PUT /admin/maintenance/{app}` (may be empty).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MaintenanceOn {
    message: Option<String>,
    retry_after_secs: Option<u64>,
}

fn known_app(gw: &Gateway, app: &str) -> bool {
    gw.apps.iter().any(|a| a.name == app)
}

async fn maintenance_on(State(gw): Gw, Path(app): Path<String>, body: Bytes) -> Response {
    if !known_app(&gw, &app) {
        return json(StatusCode::NOT_FOUND, serde_json::json!({ "error": "no such app" }));
    }
    let on: MaintenanceOn = if body.iter().all(u8::is_ascii_whitespace) {
        MaintenanceOn::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(on) => on,
            Err(e) => return bad_request(&format!("body: {e}")),
        }
    };
    if on.message.as_ref().is_some_and(|m| m.chars().count() > MAX_MESSAGE_CHARS) {
        return bad_request("message too long");
    }
    let notice = Notice {
        message: on.message.filter(|m| !m.trim().is_empty()),
        retry_after_secs: on.retry_after_secs.unwrap_or(DEFAULT_RETRY_AFTER_SECS),
        since: gw.clock.now_unix(),
    };
    let view = notice_view(&app, &notice);
    match maintenance::set(&gw, &app, Some(notice)).await {
        Ok(()) => {
            tracing::warn!(app, "maintenance on: the app answers 503");
            audit(&gw, "maintenance_on", &app, None, Outcome::Success);
            json(StatusCode::OK, view)
        }
        Err(e) => {
            audit(&gw, "maintenance_on", &app, None, Outcome::Error);
            unavailable(&e)
        }
    }
}

async fn maintenance_off(State(gw): Gw, Path(app): Path<String>) -> Response {
    if !known_app(&gw, &app) {
        return json(StatusCode::NOT_FOUND, serde_json::json!({ "error": "no such app" }));
    }
    match maintenance::set(&gw, &app, None).await {
        Ok(()) => {
            tracing::warn!(app, "maintenance off");
            audit(&gw, "maintenance_off", &app, None, Outcome::Success);
            json(StatusCode::OK, serde_json::json!({ "app": app, "maintenance": false }))
        }
        Err(e) => {
            audit(&gw, "maintenance_off", &app, None, Outcome::Error);
            unavailable(&e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Identity, Organisation};

    fn session(provider: &str, ico: Option<&str>, app: Option<&str>) -> Session {
        let identity = Identity {
            provider: provider.into(),
            subject: "secret-subject".into(),
            given_name: Some("Secret".into()),
            organisation: ico.map(|i| Box::new(Organisation { ico: Some(i.into()), ..Organisation::default() })),
            ..Identity::default()
        };
        Session::new(identity, crate::provider::LogoutState::None, 60, 0).with_app(app.map(Into::into))
    }

    #[test]
    fn filters_match_every_given_field_exactly() {
        let s = session("nia", Some("00006947"), Some("desk"));
        let k = LogLabelKey::from_bytes(&[3; 32]);
        let matches = |f: Filter| f.matches(&s, &k);
        assert!(matches(Filter::default()));
        assert!(matches(Filter { user: Some(s.identity.log_label_with(&k)), ..Filter::default() }));
        let other_key = LogLabelKey::from_bytes(&[4; 32]);
        let by_user = Filter { user: Some(s.identity.log_label_with(&k)), ..Filter::default() };
        assert!(!by_user.matches(&s, &other_key), "labels are per key");
        assert!(!matches(Filter { user: Some("nia:000000000000".into()), ..Filter::default() }));
        assert!(matches(Filter {
            organisation: Some("00006947".into()),
            app: Some("desk".into()),
            ..Filter::default()
        }));
        assert!(!matches(Filter { organisation: Some("0000694".into()), ..Filter::default() }), "whole IČO");
        assert!(matches(Filter { organisation: Some("6947".into()), ..Filter::default() }), "zero padding aside");
        assert!(!matches(Filter { provider: Some("caais".into()), ..Filter::default() }));
        let no_app = Filter { app: Some("desk".into()), ..Filter::default() };
        assert!(!no_app.matches(&session("nia", None, None), &k));
    }

    #[test]
    fn the_view_carries_no_personal_data_and_no_key() {
        let key = StoreKey::of(&[7; 32]);
        let listed = Listed { key, session: Arc::new(session("nia", Some("00006947"), Some("desk"))), last_seen: None };
        let k = LogLabelKey::from_bytes(&[3; 32]);
        let text = view(&listed, &k).to_string();
        assert!(!text.contains("secret") && !text.contains("Secret"), "{text}");
        let key_hex: String = key.0.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!text.contains(&key_hex[..16]), "{text}");
        assert!(
            text.contains(&key.log_label_with(&k)) && text.contains("00006947") && text.contains("\"app\":\"desk\"")
        );
    }
}
