//! The account-link flow in the browser (see [`crate::links`] for the why and the threat).
//!
//! 1. A CAAIS session without a link reaches an app with `account_link = "offer"|"require"`:
//!    navigations go to `/.aisgate/link?return=…` (`require` refuses anything else).
//! 2. The page POSTs back (CSRF token: a MAC of the session's store key). "Skip" (offer only)
//!    marks the session; "confirm" starts a JIP/KAAS login whose pending state — server-side,
//!    single use, the login lifetime — names the CAAIS session's store key and BSI.
//! 3. At that login's callback ([`complete`]) the browser must still carry that very session;
//!    only then is the link stored (both ids from the two logins, nothing from the request),
//!    and the session is replaced, under a new id, by one carrying the legacy account.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawForm, RawQuery, State};
use axum::Extension;
use http::header::SET_COOKIE;
use http::{HeaderMap, Method, Response, StatusCode};

use super::endpoints::{encode, param, query_pairs};
use super::request::{is_navigation, set_cookie, RequestInfo};
use super::route::App;
use super::{rescue, Gateway};
use crate::http::canonical_path::CanonicalPath;
use crate::http::return_url::ReturnUrl;
use crate::identity::Identity;
use crate::links::{AccountLink, Link, LinkError, LinkIntent};
use crate::pages::link::{link_page, link_refused_page, LinkRefusal};
use crate::pages::ErrorKind;
use crate::session::keyring::Purpose;
use crate::session::{random_id, Session, StoreKey};

const LINK_PATH: &str = "/.aisgate/link";

/// The request-path check (after the session is loaded, before authorization): `Some` when a
/// CAAIS session without a link must see the link page first. Sessions of other providers
/// (legacy, NIA, …) pass.
pub(super) fn gate(
    gw: &Gateway,
    app: &App,
    session: &Session,
    (method, headers, path, query): (&Method, &HeaderMap, &CanonicalPath, Option<&str>),
    info: &RequestInfo,
) -> Option<Response<Body>> {
    let links = gw.links.as_ref()?;
    let identity = &session.identity;
    if app.account_link == AccountLink::Off || identity.legacy.is_some() || !links.is_caais(&identity.provider) {
        return None;
    }
    let navigation = is_navigation(method, headers);
    if app.account_link == AccountLink::Offer && (session.link_skipped || !navigation) {
        return None;
    }
    if navigation {
        let here = super::handler::return_url(path, query);
        return Some(rescue::redirect(&format!("{LINK_PATH}?return={}", encode(here.as_str()))));
    }
    tracing::info!(request_id = info.id(), app = %app.name, user = %identity.log_label(), reason = "account_link_required", "access denied");
    gw.audit.emit(crate::audit::Event::AccessDenied {
        origin: info.audit_origin(),
        app: &app.name,
        rule: None,
        denied: "account_link_required",
        subject: crate::audit::Subject(identity),
    });
    Some(rescue::error(ErrorKind::Forbidden, info, None))
}

/// The session of this browser and the app `return` leads to, when a link page applies.
async fn context<'a>(
    gw: &'a Gateway,
    headers: &HeaderMap,
    params: &[(String, String)],
    info: &RequestInfo,
) -> Result<(StoreKey, Arc<Session>, &'a App, ReturnUrl), Response<Body>> {
    let return_to = param(params, "return").and_then(|r| ReturnUrl::parse(r).ok()).unwrap_or_else(ReturnUrl::root);
    let app = CanonicalPath::parse(return_to.path()).ok().and_then(|path| {
        let host = super::endpoints::request_host(headers);
        super::route::find(&gw.apps, &host, &crate::http::path_forms::PathForms::new(&path))
    });
    let Some(app) = app.filter(|a| a.account_link != AccountLink::Off) else {
        return Err(rescue::error(ErrorKind::NotFound, info, None));
    };
    match super::handler::load_session(gw, headers, info).await {
        // Linked already (or not a CAAIS session): nothing to do here.
        Ok(Some((_, session))) if already_done(gw, &session) => Err(rescue::redirect(return_to.as_str())),
        Ok(Some((key, session))) if app.accepts_provider(&gw.providers, &session.identity.provider) => {
            Ok((key, session, app, return_to))
        }
        // No (usable) session: the app itself starts the login.
        Ok(_) => Err(rescue::redirect(return_to.as_str())),
        Err(failure) => Err(failure(info)),
    }
}

/// The legacy provider the app confirms links with: the first of its providers that is legacy.
fn legacy_provider(gw: &Gateway, app: &App) -> Option<usize> {
    let links = gw.links.as_ref()?;
    app.providers.iter().copied().find(|i| links.is_legacy(gw.providers[*i].name()))
}

/// `require` at an app without a legacy login: only an operator can link this user.
fn no_legacy_login(info: &RequestInfo) -> Response<Body> {
    tracing::info!(
        request_id = info.id(),
        reason = "no_legacy_login",
        "account link required but the app has no legacy login"
    );
    rescue::html(StatusCode::FORBIDDEN, link_refused_page(LinkRefusal::NoLegacyLogin, info.lang()))
}

fn already_done(gw: &Gateway, session: &Session) -> bool {
    let not_caais = gw.links.as_ref().is_none_or(|l| !l.is_caais(&session.identity.provider));
    session.identity.legacy.is_some() || not_caais
}

/// `GET /.aisgate/link?return=…`: the offer/require page.
pub(super) async fn page(
    State(gw): State<Arc<Gateway>>,
    Extension(info): Extension<RequestInfo>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response<Body> {
    let params = query_pairs(query.as_deref());
    let (key, _, app, return_to) = match context(&gw, &headers, &params, &info).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let required = app.account_link == AccountLink::Require;
    let Some(legacy) = legacy_provider(&gw, app) else {
        return no_legacy_login(&info);
    };
    let csrf = gw.keyring.mac(Purpose::Csrf, &key.0);
    let name = gw.providers[legacy].display_name();
    rescue::html(StatusCode::OK, link_page(LINK_PATH, &csrf, return_to.as_str(), name, required, info.lang()))
}

/// `POST /.aisgate/link` (`do=confirm|skip`, `csrf`, `return`).
pub(super) async fn submit(
    State(gw): State<Arc<Gateway>>,
    Extension(info): Extension<RequestInfo>,
    headers: HeaderMap,
    RawForm(form): RawForm,
) -> Response<Body> {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(&form).into_owned().collect();
    let (key, session, app, return_to) = match context(&gw, &headers, &params, &info).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    if !param(&params, "csrf").is_some_and(|t| gw.keyring.verify_mac(Purpose::Csrf, &key.0, t)) {
        tracing::warn!(request_id = info.id(), client = %info.client_ip, reason = "csrf", "account link form refused");
        return rescue::error(ErrorKind::BadRequest, &info, None);
    }
    match param(&params, "do") {
        Some("skip") if app.account_link == AccountLink::Offer => {
            let skipped = session.relinked(session.identity.clone(), true);
            if let Err(e) = gw.store.save(key, Arc::new(skipped)).await {
                tracing::error!(request_id = info.id(), error = %e, "cannot store session");
                return rescue::error(ErrorKind::SessionStoreUnavailable, &info, None);
            }
            tracing::info!(request_id = info.id(), app = %app.name, user = %session.identity.log_label(), "account link offer skipped");
            rescue::redirect(return_to.as_str())
        }
        Some("confirm") => {
            let Some(legacy) = legacy_provider(&gw, app) else {
                return no_legacy_login(&info);
            };
            let intent = LinkIntent {
                session: key.0,
                provider: session.identity.provider.clone(),
                bsi: session.identity.subject.clone(),
            };
            tracing::info!(request_id = info.id(), app = %app.name, user = %session.identity.log_label(), "account link: confirmation login started");
            // The confirmation returns to this host, which holds the CAAIS session it completes.
            let here = super::endpoints::request_host(&headers);
            let base = gw.login_base(app, &here);
            if !crate::config::hosts::host_of(&base).eq_ignore_ascii_case(&here) {
                tracing::error!(request_id = info.id(), app = %app.name, host = %here, callback_base = %base, "account link confirmation cannot complete: the JIP/KAAS login returns to another host (central_login)");
                return rescue::error(ErrorKind::Internal, &info, None);
            }
            let start = super::endpoints::Start { base, handoff: None, link: Some(intent), saved_post: None };
            super::endpoints::begin_at(&gw, legacy, None, return_to, &headers, &info, start).await
        }
        _ => rescue::error(ErrorKind::BadRequest, &info, None),
    }
}

/// Finishes the JIP/KAAS confirmation login `legacy` of `intent`: stores the link when this
/// browser still carries the CAAIS session that started it.
pub(super) async fn complete(
    gw: &Gateway,
    intent: LinkIntent,
    legacy: Identity,
    return_to: &str,
    headers: &HeaderMap,
    info: &RequestInfo,
) -> Response<Body> {
    let refused =
        |reason: LinkRefusal, status: StatusCode| rescue::html(status, link_refused_page(reason, info.lang()));
    let Some(links) = gw.links.as_ref() else { return rescue::error(ErrorKind::Internal, info, None) };
    // Bound to the session that started it: the same browser, still logged in as that user.
    let current = match super::handler::load_session(gw, headers, info).await {
        Ok(found) => found,
        Err(failure) => return failure(info),
    };
    let Some((key, session)) = current.filter(|(key, s)| {
        aws_lc_rs::constant_time::verify_slices_are_equal(&key.0, &intent.session).is_ok()
            && s.identity.provider == intent.provider
            && s.identity.subject == intent.bsi
    }) else {
        tracing::warn!(
            request_id = info.id(),
            reason = "session_changed",
            "account link refused: the confirmation does not belong to this browser's CAAIS session"
        );
        return refused(LinkRefusal::SessionChanged, StatusCode::FORBIDDEN);
    };
    let Some(account) = crate::links::legacy_of(&legacy) else {
        tracing::warn!(
            request_id = info.id(),
            reason = "no_legacy_id",
            "account link refused: the legacy login named no user id"
        );
        return rescue::error(ErrorKind::LoginFailed, info, None);
    };
    let link = Link {
        bsi: intent.bsi.clone(),
        legacy: account.clone(),
        created_at: gw.clock.now_unix(),
        source: "login".into(),
    };
    let user = session.identity.log_label();
    let legacy_user = legacy.log_label();
    let stored = links.store.create(link.clone()).await;
    let origin = info.audit_origin();
    let change =
        |result| crate::links::Change { action: "create", source: "login", link: Some(&link), count: 1, result };
    match &stored {
        Ok(()) => crate::links::audit(&gw.audit, origin, change(Ok(()))),
        Err(e @ (LinkError::LegacyTaken | LinkError::BsiTaken)) => {
            tracing::warn!(request_id = info.id(), user = %user, legacy = %legacy_user, reason = e.label(), "account link refused: {e}");
            crate::links::audit(&gw.audit, origin, change(Err(e)));
            return refused(LinkRefusal::LegacyTaken, StatusCode::CONFLICT);
        }
        Err(e) => {
            tracing::error!(request_id = info.id(), user = %user, reason = e.label(), error = %e, "account link could not be stored");
            crate::links::audit(&gw.audit, origin, change(Err(e)));
            return refused(LinkRefusal::Unavailable, StatusCode::SERVICE_UNAVAILABLE);
        }
    }
    tracing::info!(request_id = info.id(), user = %user, legacy = %legacy_user, "account link created");
    // The session now grants the legacy account: a new id for it (like any login).
    let mut identity = session.identity.clone();
    identity.legacy = Some(Box::new(account));
    let linked = Arc::new(session.relinked(identity, session.link_skipped));
    let id = random_id();
    if let Err(e) = gw.store.save(StoreKey::of(&id), linked).await {
        tracing::error!(request_id = info.id(), error = %e, "cannot store session");
        return rescue::error(ErrorKind::SessionStoreUnavailable, info, None);
    }
    let _ = gw.store.remove(&key).await;
    let target = ReturnUrl::parse(return_to).unwrap_or_else(|_| ReturnUrl::root());
    let mut resp = rescue::redirect(target.as_str());
    let value = gw.keyring.seal(Purpose::Session, &id);
    resp.headers_mut().append(SET_COOKIE, set_cookie(&gw.cookie_name, &value, None, gw.cookie_secure));
    resp
}
