//! The request pipeline, top to bottom (see the diagram in `gateway/mod.rs`).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, HOST, REFERER, SET_COOKIE};
use http::{HeaderValue, Request, Response, StatusCode, Uri, Version};
use tower::ServiceExt;

use super::endpoints::{self, login_path};
use super::request::{clear_cookie, is_navigation, remove_cookies, set_forwarded, ConnInfo, RequestInfo, X_REQUEST_ID};
use super::rescue;
use super::route::{self, App};
use super::{Gateway, RESERVED_PREFIX};
use crate::audit::{EndReason, Event, SessionRef, Subject};
use crate::config::Unauthenticated;
use crate::http::canonical_path::CanonicalPath;
use crate::http::path_forms::PathForms;
use crate::http::return_url::ReturnUrl;
use crate::listen::conn::ConnSlot;
use crate::ops::metrics::UpstreamErrorKind;
use crate::pages::ErrorKind;
use crate::provider::{CommonReason, ProviderError};
use crate::session::tokens::{TokenError, UpstreamTokens};
use crate::session::{Session, StoreKey};
use crate::upstream::body::{BodyFault, BodyWatch, WatchedBody};
use crate::upstream::upgrade::{self, Requested};
use crate::upstream::{hop_by_hop, splice_upgrade, SessionBinding, Tunnel, UpstreamError};

/// Handles one client request.
pub async fn handle(gw: Arc<Gateway>, req: Request<hyper::body::Incoming>, conn: ConnInfo) -> Response<Body> {
    let started = Instant::now();
    let mut info = RequestInfo::new(req.headers(), &conn, &gw.trusted_proxies);
    let method = req.method().clone();
    let (mut resp, app, path) = pipeline(&gw, req.map(Body::new), &conn, &mut info).await;
    let status = resp.status();
    let elapsed = started.elapsed();
    let metrics = match app {
        Some(index) => gw.metrics.app(index),
        None => gw.metrics.gateway(),
    };
    metrics.observe_request(status.as_u16(), elapsed.as_secs_f64());
    if gw.access_log {
        // The query string is never logged: it may carry login tokens.
        tracing::info!(
            target: "aisgate::access",
            request_id = info.id(),
            client = %info.client_ip,
            app = app.map_or("-", |i| gw.apps[i].name.as_str()),
            method = %method,
            path = path.as_deref().unwrap_or("-"),
            status = status.as_u16(),
            ms = elapsed.as_secs_f64() * 1000.0,
        );
    }
    resp.headers_mut().entry(X_REQUEST_ID).or_insert(info.request_id);
    resp
}

type Outcome = (Response<Body>, Option<usize>, Option<String>);

async fn pipeline(gw: &Arc<Gateway>, req: Request<Body>, conn: &ConnInfo, info: &mut RequestInfo) -> Outcome {
    // Exactly one well-formed host, in `Host` (HTTP/2 `:authority` copied there): routing,
    // `preserve_host` and the upstream must all read the same one (RFC 9112 §3.2).
    let (mut parts, body) = req.into_parts();
    if let Err(e) = crate::http::host::normalize(parts.version, &parts.uri, &mut parts.headers) {
        tracing::info!(request_id = info.id(), client = %info.client_ip, error = %e, "request host refused");
        return (rescue::error(ErrorKind::BadRequest, info, None), None, None);
    }
    let req = Request::from_parts(parts, body);
    // Pages link "home" to a real app of this host, not a hard-coded `/` (issue 14 item 13).
    let host = endpoints::request_host(req.headers());
    info.set_home(gw.home_for_host(&host));
    let path = match CanonicalPath::parse(req.uri().path()) {
        Ok(path) => path,
        Err(e) => {
            tracing::info!(request_id = info.id(), error = %e, "request path refused");
            return (rescue::error(ErrorKind::BadRequest, info, None), None, None);
        }
    };
    // Only the access log needs an owned copy.
    let path_text = gw.access_log.then(|| path.as_str().to_owned());

    if path.as_str().starts_with(RESERVED_PREFIX) || path.as_str() == RESERVED_PREFIX.trim_end_matches('/') {
        return (own_endpoint(gw, req, info).await, None, path_text);
    }

    let forms = PathForms::new(&path);
    let Some(app) = route::find(&gw.apps, &host, &forms) else {
        return (rescue::error(ErrorKind::NotFound, info, None), None, path_text);
    };
    // Within an app, "home" is that app.
    info.set_home(gw.home_for_app(app));
    if let Err(e) = app.check_path(&forms) {
        tracing::info!(request_id = info.id(), app = %app.name, error = %e, "request path refused");
        return (rescue::error(ErrorKind::BadRequest, info, None), Some(app.index), path_text);
    }
    let resp = app_request(gw, app, req, &forms, conn, info).await;
    (resp, Some(app.index), path_text)
}

async fn own_endpoint(gw: &Arc<Gateway>, mut req: Request<Body>, info: &RequestInfo) -> Response<Body> {
    let router = super::Gateway::endpoints(gw);
    req.extensions_mut().insert(info.clone());
    // Own endpoints take small forms and SAML messages; the cap is sized in `own_body`.
    if content_length(req.headers()).is_some_and(|len| len > gw.own_body_limit as u64) {
        return client_body_fault(BodyFault::TooLarge, "-", info);
    }
    let watch = BodyWatch::new();
    let req =
        req.map(|b| Body::new(WatchedBody::new(http_body_util::Limited::new(b, gw.own_body_limit), watch.clone())));
    let resp = match router.oneshot(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    };
    // An extractor that failed on the body answered with axum's plain-text rejection; the
    // client gets the gateway's documented page/JSON instead.
    match watch.fault() {
        Some(fault) => client_body_fault(fault, "-", info),
        None => resp,
    }
}

async fn app_request(
    gw: &Arc<Gateway>,
    app: &App,
    mut req: Request<Body>,
    forms: &PathForms<'_>,
    conn: &ConnInfo,
    info: &RequestInfo,
) -> Response<Body> {
    let path = forms.canonical();
    if let Some(notice) = gw.maintenance.notice(&app.name) {
        // Maintenance (admin API): nothing reaches the upstream, sessions are not even read.
        tracing::debug!(request_id = info.id(), app = %app.name, "app in maintenance: 503");
        return rescue::maintenance(&notice, info);
    }
    // Hop-by-hop headers go first: a client could otherwise list `X-Auth-Subject` in
    // `Connection` and have the gateway delete the identity headers it sets below.
    // Upgrades only to protocols the app allows; anything else goes upstream as a plain request.
    let upgrade = upgrade::negotiate(req.version(), req.headers_mut(), &app.upgrade_protocols);
    hop_by_hop::strip(req.headers_mut(), upgrade.is_some());
    // Anti-spoofing: strip every identity-namespace header, whatever the route decides later,
    // and every spelling of the address/URL headers upstream frameworks believe.
    strip_identity(gw, &mut req, info);
    let forged = super::forwarding::strip_spoofable(req.headers_mut(), info.from_trusted_proxy);
    if !forged.is_empty() {
        // Names only: values could be anything, including personal data.
        tracing::info!(request_id = info.id(), client = %info.client_ip, headers = ?forged, "client sent forwarding or proxy headers; stripped");
    }
    // API paths authenticate by the Authorization header (issue 11): read before anything
    // else may remove it.
    if let Some((api, route)) = app.api.as_ref().and_then(|api| api.route(forms).map(|r| (api, r))) {
        return super::api_request::serve(gw, app, (api, route), req, forms, (upgrade, conn), info).await;
    }
    if app.upstream_bearer && req.headers_mut().remove(AUTHORIZATION).is_some() {
        // The upstream's Authorization header belongs to the gateway for this app: a client's
        // own credentials are never mixed with (or mistaken for) the IdP's token.
        tracing::debug!(request_id = info.id(), app = %app.name, "client Authorization header removed");
    }

    if app.is_logout(forms) {
        // "Cancel" on a cross-site logout confirmation goes back to this app.
        let request = endpoints::LogoutRequest { cancel: Some(app.path_prefix.clone()), ..Default::default() };
        return endpoints::logout_response(gw, req.method(), req.headers(), info, request).await;
    }

    let session = if app.is_public(forms) {
        None
    } else {
        match load_session(gw, req.headers(), info).await {
            Ok(Some((_, found))) if !app.accepts_provider(&gw.providers, &found.identity.provider) => {
                // A session is served only to apps that list the provider it was made by:
                // app `b` behind NIA must never receive (or forward the tokens of) a session
                // made for app `a` by another IdP. The session stays valid for its own apps;
                // here the user logs in with one of this app's providers.
                tracing::info!(request_id = info.id(), app = %app.name, user = %found.identity.log_label(), "session's provider is not one of the app's; login required");
                return unauthenticated_request(gw, app, req, path, info).await;
            }
            Ok(Some(found)) => Some(found),
            Ok(None) => return unauthenticated_request(gw, app, req, path, info).await,
            Err(resp) => return resp(info),
        }
    };

    if let Some((key, session)) = &session {
        let request = (req.method(), req.headers(), path, req.uri().query());
        if let Some(resp) = super::link_flow::gate(gw, app, session, request, info) {
            return resp;
        }
        if let Err((rule, denied)) = app.authorize_rule(forms, &session.identity) {
            let (method, headers, query) = (req.method(), req.headers(), req.uri().query());
            if let Some(resp) = step_up(gw, app, (method, headers, query), forms, session, info).await {
                return resp;
            }
            tracing::warn!(request_id = info.id(), app = %app.name, user = %session.identity.log_label(), reason = ?denied, "access denied");
            gw.audit.emit(Event::AccessDenied {
                origin: info.audit_origin(),
                app: &app.name,
                rule,
                denied: denied.label(),
                subject: Subject(&session.identity),
            });
            return forbidden(gw, &session.identity, return_url(path, req.uri().query()), info);
        }
        if app.authorizes_operations() {
            // SOAP operation rules and the IČO check hold for browser sessions too.
            let here = return_url(path, req.uri().query());
            match crate::api::authorize::check(gw, app, forms, &session.identity, req, info).await {
                Ok(checked) => req = checked,
                Err(denial) => {
                    return match denial.status() {
                        StatusCode::FORBIDDEN => forbidden(gw, &session.identity, here, info),
                        StatusCode::PAYLOAD_TOO_LARGE => rescue::error(ErrorKind::PayloadTooLarge, info, None),
                        StatusCode::BAD_REQUEST => rescue::error(ErrorKind::BadRequest, info, None),
                        _ => rescue::error(ErrorKind::IdpUnavailable, info, None),
                    };
                }
            }
        }
        add_identity_headers(gw, app, session, &mut req);
        if app.upstream_bearer {
            match bearer(gw, key, session, info).await {
                Ok(Some(value)) => {
                    req.headers_mut().insert(AUTHORIZATION, value);
                }
                Ok(None) => {}
                Err(TokenError::Ended) => {
                    // The IdP ended the grant: so does the gateway, and the user logs in again.
                    tracing::info!(request_id = info.id(), session = %key.log_label(), user = %session.identity.log_label(), "token refresh refused: session ends");
                    gw.audit.emit(Event::SessionEnd {
                        origin: info.audit_origin(),
                        reason: EndReason::Revoked,
                        subject: Subject(&session.identity),
                        session: SessionRef(key),
                    });
                    if let Err(e) = gw.store.remove(key).await {
                        tracing::error!(request_id = info.id(), error = %e, "cannot remove session");
                    }
                    let mut resp =
                        unauthenticated(gw, app, req.method(), req.headers(), req.uri().query(), path, info).await;
                    resp.headers_mut().append(SET_COOKIE, clear_cookie(&gw.cookie_name, gw.cookie_secure));
                    return resp;
                }
                Err(TokenError::Unavailable) => {
                    tracing::warn!(request_id = info.id(), app = %app.name, "access token expired and the IdP is unavailable");
                    return rescue::error(ErrorKind::IdpUnavailable, info, None);
                }
            }
        }
    }
    let bound = session.as_ref().map(|(key, s)| (*key, s.expires_at));
    forward(gw, app, req, (upgrade, bound), path, conn, info).await
}

/// When only the LoA is too low and one of the app's providers can reach the required one,
/// a step-up login instead of 403: browsers are redirected to it (the session's own provider
/// first), API clients get 401 naming the LoA and the login URL. The new session replaces
/// this one at the callback; the login-loop guard caps repeats.
async fn step_up(
    gw: &Gateway,
    app: &App,
    (method, headers, query): (&http::Method, &http::HeaderMap, Option<&str>),
    forms: &PathForms<'_>,
    session: &Session,
    info: &RequestInfo,
) -> Option<Response<Body>> {
    let path = forms.canonical();
    let loa = app.step_up_loa(forms, &session.identity)?;
    let able: Vec<&str> =
        app.providers.iter().map(|i| &gw.providers[*i]).filter(|p| p.can_reach_loa(loa)).map(|p| p.name()).collect();
    let provider = able.iter().copied().find(|p| *p == session.identity.provider).or(able.first().copied())?;
    let return_to = return_url(path, query);
    tracing::info!(request_id = info.id(), app = %app.name, user = %session.identity.log_label(), required = loa.as_str(), provider, "step-up login");
    gw.audit.emit(Event::StepUp {
        origin: info.audit_origin(),
        app: &app.name,
        required_loa: loa.as_str(),
        via: provider,
        subject: Subject(&session.identity),
    });
    if is_navigation(method, headers) {
        return Some(endpoints::start_login_at(gw, app, Some(provider), Some(loa), return_to, headers, info).await);
    }
    let login = format!("{}&provider={provider}&loa={}", login_path(return_to.as_str()), loa.as_str());
    Some(rescue::step_up_required(info, &login, loa.as_str()))
}

/// The 403 page of a logged-in user: who they are, and the way out — log out, or log out and
/// log in to this same URL with another account (issue 14 item 11).
fn forbidden(
    gw: &Gateway,
    identity: &crate::identity::Identity,
    here: ReturnUrl,
    info: &RequestInfo,
) -> Response<Body> {
    let provider = gw.provider(&identity.provider).map_or(identity.provider.as_str(), |(_, p)| p.display_name());
    let name = display_name(identity);
    let logout_url = format!("{RESERVED_PREFIX}logout");
    let switch_url = endpoints::switch_account_url(here.as_str());
    let who =
        crate::pages::SignedIn { name: name.as_deref(), provider, logout_url: &logout_url, switch_url: &switch_url };
    rescue::forbidden(info, &who)
}

/// The name a user recognises as theirs: titles, given and family name; else the username or
/// e-mail. Shown only to the user themselves, on their own page — never logged.
fn display_name(identity: &crate::identity::Identity) -> Option<String> {
    let text = |v: &Option<String>| v.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned);
    let (given, family) = (text(&identity.given_name), text(&identity.family_name));
    if given.is_none() && family.is_none() {
        return text(&identity.username).or_else(|| text(&identity.email));
    }
    let name = [text(&identity.title_before), given, family].into_iter().flatten().collect::<Vec<_>>().join(" ");
    Some(match text(&identity.title_after) {
        Some(after) => format!("{name}, {after}"),
        None => name,
    })
}

fn strip_identity(gw: &Gateway, req: &mut Request<Body>, info: &RequestInfo) {
    let headers = req.headers_mut();
    let spoofed: Vec<http::HeaderName> =
        headers.keys().filter(|name| gw.namespace.contains(name.as_str())).cloned().collect();
    for name in &spoofed {
        headers.remove(name);
    }
    if !spoofed.is_empty() {
        // Names only: values could be anything, including personal data.
        tracing::warn!(request_id = info.id(), client = %info.client_ip, headers = ?spoofed, "client sent identity headers; stripped");
    }
}

pub(super) type Failure = fn(&RequestInfo) -> Response<Body>;

pub(super) async fn load_session(
    gw: &Gateway,
    headers: &http::HeaderMap,
    info: &RequestInfo,
) -> Result<Option<(StoreKey, Arc<Session>)>, Failure> {
    // Forged or tampered cookies fail the MAC here and never reach the store; two session
    // cookies (one planted by a sibling domain) count as none.
    let Some(key) = super::cookies::session_key(gw, headers, info) else {
        return Ok(None);
    };
    match gw.store.load(&key).await {
        Ok(found) => Ok(found.filter(|s| !s.is_expired(gw.clock.now_unix())).map(|s| (key, s))),
        Err(e) => {
            tracing::error!(request_id = info.id(), error = %e, "session store failed");
            Err(|info| rescue::error(ErrorKind::SessionStoreUnavailable, info, None))
        }
    }
}

async fn unauthenticated(
    gw: &Gateway,
    app: &App,
    method: &http::Method,
    headers: &http::HeaderMap,
    query: Option<&str>,
    path: &CanonicalPath,
    info: &RequestInfo,
) -> Response<Body> {
    let return_to = return_url(path, query);
    if app.unauthenticated == Unauthenticated::Auto && is_navigation(method, headers) {
        endpoints::start_login(gw, app, None, return_to, headers, info).await
    } else {
        rescue::unauthorized(info, &login_path(return_to.as_str()))
    }
}

/// [`unauthenticated`] for a whole request: a form POST may be kept across the login it
/// starts (`preserve_post`); whatever is not kept gets the usual answer.
async fn unauthenticated_request(
    gw: &Gateway,
    app: &App,
    req: Request<Body>,
    path: &CanonicalPath,
    info: &RequestInfo,
) -> Response<Body> {
    if !super::preserve_post::applies(gw, app, req.method()) {
        return unauthenticated(gw, app, req.method(), req.headers(), req.uri().query(), path, info).await;
    }
    let return_to = return_url(path, req.uri().query());
    match super::preserve_post::login_keeping(gw, app, req, return_to, info).await {
        Ok(resp) => resp,
        Err(parts) => unauthenticated(gw, app, &parts.method, &parts.headers, parts.uri.query(), path, info).await,
    }
}

/// Where to come back to after a login started by this request.
pub(super) fn return_url(path: &CanonicalPath, query: Option<&str>) -> ReturnUrl {
    let original = match query {
        Some(q) => format!("{}?{q}", path.as_str()),
        None => path.as_str().to_owned(),
    };
    ReturnUrl::parse(&original).unwrap_or_else(|_| ReturnUrl::root())
}

fn add_identity_headers(gw: &Gateway, app: &App, session: &Session, req: &mut Request<Body>) {
    let rendered =
        session.rendered_headers(gw.session_caches, app.index, |identity| app.headers.render(identity).into());
    let headers = req.headers_mut();
    // One growth instead of several rehashes while ~25 headers are added.
    headers.reserve(rendered.len() + 1);
    for (name, value) in rendered.iter() {
        headers.insert(name.clone(), value.clone());
    }
    if let (Some(name), Some(issuer)) = (&app.headers.token_header, &gw.tokens) {
        let now = gw.clock.now_unix();
        let token = session.identity_token(gw.session_caches, app.index, now, issuer.lifetime_secs / 2, |identity| {
            sign_identity_token(gw, issuer, app, identity, now)
        });
        if let Some(token) = token {
            headers.insert(name.clone(), token);
        }
    }
}

/// The signed identity token of `identity` for `app` (`[identity_token]`), issued `now`, with
/// its expiry.
pub(super) fn sign_identity_token(
    gw: &Gateway,
    issuer: &super::TokenIssuer,
    app: &App,
    identity: &crate::identity::Identity,
    now: u64,
) -> Option<(u64, HeaderValue)> {
    let exp = now + issuer.lifetime_secs;
    let claims = identity.token_claims(&gw.public_base_url, &app.name, now, exp);
    match issuer.signer.sign(&claims) {
        Ok(jwt) => HeaderValue::from_str(&jwt).ok().map(|v| (exp, v)),
        Err(e) => {
            tracing::error!(error = %e, "identity token signing failed");
            None
        }
    }
}

/// Refresh this long before the access token expires (capped at half its lifetime).
const REFRESH_MARGIN_SECS: u64 = 60;

/// The `Authorization: Bearer` value for the session's access token, refreshed (once, for all
/// concurrent requests of the session) when it is about to expire.
/// The `Authorization` value for an `upstream_bearer` app, refreshing the tokens when due:
/// single flight within this instance (the session's token slot) and, with a shared store,
/// across instances (a lease in the store; see `session::shared::refresh_across_instances`).
/// Tokens this request refreshed are stored before the lease is released, so no instance
/// refreshes again with a refresh token the IdP may have rotated away.
async fn bearer(
    gw: &Gateway,
    key: &StoreKey,
    session: &Arc<Session>,
    info: &RequestInfo,
) -> Result<Option<HeaderValue>, TokenError> {
    let Some((_, provider)) = gw.provider(&session.identity.provider) else { return Ok(None) };
    let now = gw.clock.now_unix();
    let provider_refresh = |old: UpstreamTokens| async move {
        match provider.token_refresh() {
            Some(refresh) => refresh.refresh_tokens(&old).await,
            None => Err(ProviderError::with_context(CommonReason::Unsupported, "token refresh")),
        }
    };
    let mut held = None;
    let mut refreshed_here = false;
    let token = session
        .upstream_tokens
        .access_token(now, REFRESH_MARGIN_SECS, |old| async {
            match &gw.shared {
                None => {
                    refreshed_here = true;
                    provider_refresh(old).await
                }
                Some(shared) => {
                    let both = (shared.as_ref(), gw.store.as_ref());
                    let (tokens, here) = crate::session::shared::refresh_across_instances(
                        both,
                        key,
                        old,
                        (now, REFRESH_MARGIN_SECS),
                        &mut held,
                        provider_refresh,
                    )
                    .await?;
                    refreshed_here = here;
                    Ok(tokens)
                }
            }
        })
        .await;
    if refreshed_here && token.is_ok() {
        // A shared store must keep the new (possibly rotated) tokens, before the lease goes.
        if let Err(e) = gw.store.tokens_refreshed(key, session).await {
            tracing::error!(request_id = info.id(), error = %e, "cannot store refreshed tokens");
        }
    }
    if let Some(lease) = held {
        lease.release().await;
    }
    Ok(token?.and_then(|t| HeaderValue::from_str(&format!("Bearer {t}")).ok()).map(|mut v| {
        v.set_sensitive(true);
        v
    }))
}

pub(super) async fn forward(
    gw: &Gateway,
    app: &App,
    req: Request<Body>,
    (upgrade, session): (Option<Requested>, Option<(StoreKey, u64)>),
    path: &CanonicalPath,
    conn: &ConnInfo,
    info: &RequestInfo,
) -> Response<Body> {
    let (mut parts, body) = req.into_parts();
    if content_length(&parts.headers).is_some_and(|len| len > gw.max_body_bytes) {
        return rescue::error(ErrorKind::PayloadTooLarge, info, None);
    }
    let client_upgrade = if upgrade.is_some() { parts.extensions.remove::<hyper::upgrade::OnUpgrade>() } else { None };
    // Subscribed before the request goes upstream: a logout during the handshake still ends
    // the tunnel (see `upstream::tunnel`).
    let binding = client_upgrade.as_ref().and(session).map(|(key, expires_at)| SessionBinding {
        key,
        expires_at,
        store: gw.store.clone(),
        ended: gw.store.ended_sessions(),
    });
    let slot = parts.extensions.remove::<ConnSlot>();

    let host = parts.headers.get(HOST).cloned();
    set_forwarded(&mut parts.headers, conn, info, host);
    // The pool sends the request as it is: `Host` must be there (the client's one survives
    // only with `preserve_host`).
    if !app.preserve_host || !parts.headers.contains_key(HOST) {
        parts.headers.insert(HOST, app.upstream.host.clone());
    }
    if !app.forward_gateway_cookies {
        // Every gateway cookie, the logout-state one included: each is a bearer value.
        let own = [
            &gw.cookie_name,
            &gw.login_cookie_name,
            &gw.loop_cookie_name,
            &gw.logout_cookie_name,
            &gw.switch_cookie_name,
        ];
        remove_cookies(&mut parts.headers, &own.map(String::as_str));
    }
    // A Referer pointing at the gateway's callback may carry a login token.
    if parts.headers.get(REFERER).and_then(|v| v.to_str().ok()).is_some_and(|r| r.contains(RESERVED_PREFIX)) {
        parts.headers.remove(REFERER);
    }
    parts.headers.insert(X_REQUEST_ID, info.request_id.clone());

    // Origin form (`/path?query`), as it goes on the wire: the pool knows the upstream.
    let query = parts.uri.query().map(|q| q.len() + 1).unwrap_or(0);
    let mut path_and_query = String::with_capacity(app.upstream.base_path.len() + path.as_str().len() + query);
    path_and_query.push_str(&app.upstream.base_path);
    path_and_query.push_str(path.as_str());
    if let Some(q) = parts.uri.query() {
        path_and_query.push('?');
        path_and_query.push_str(q);
    }
    let mut uri = http::uri::Parts::default();
    uri.path_and_query = match http::uri::PathAndQuery::from_maybe_shared(bytes::Bytes::from(path_and_query)) {
        Ok(pq) => Some(pq),
        Err(_) => return rescue::error(ErrorKind::BadRequest, info, None),
    };
    parts.uri = match Uri::from_parts(uri) {
        Ok(uri) => uri,
        Err(_) => return rescue::error(ErrorKind::BadRequest, info, None),
    };
    parts.version = Version::HTTP_11;
    // The body records its own failure, so a client's broken or oversized body is never
    // mistaken for an upstream failure (see `upstream::body`).
    let watch = BodyWatch::new();
    let limited = http_body_util::Limited::new(body, usize::try_from(gw.max_body_bytes).unwrap_or(usize::MAX));
    let body = Body::new(WatchedBody::new(limited, watch.clone()));
    let upstream_req = Request::from_parts(parts, body);

    let target = (&app.upstream.scheme, &app.upstream.authority);
    let mut resp = match gw.upstream.send(upstream_req, target, &app.upstream.trust).await {
        Ok(resp) => resp,
        Err(e) => {
            if let Some(fault) = watch.fault() {
                return client_body_fault(fault, &app.name, info);
            }
            let (kind, page) = match &e {
                UpstreamError::Connect(_) => (UpstreamErrorKind::Connect, ErrorKind::UpstreamUnavailable),
                UpstreamError::Timeout(_) => (UpstreamErrorKind::Timeout, ErrorKind::UpstreamTimeout),
                UpstreamError::Protocol(_) => (UpstreamErrorKind::Protocol, ErrorKind::UpstreamUnavailable),
            };
            gw.metrics.app(app.index).upstream_error(kind);
            tracing::error!(request_id = info.id(), app = %app.name, error = %e, "upstream request failed");
            return rescue::error(page, info, None);
        }
    };

    let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
    if switching {
        // A tunnel is opaque: open it only when the upstream really switched to a protocol
        // the client asked for (and the app allows). A bare 101 is an upstream fault.
        let checked = upgrade::check_switch(upgrade.as_ref(), resp.headers());
        match (checked, client_upgrade, resp.extensions_mut().remove::<hyper::upgrade::OnUpgrade>()) {
            (Ok(()), Some(client), Some(upstream)) => {
                let tunnel = Tunnel { request_id: info.id().to_owned(), slot, session: binding };
                splice_upgrade(client, upstream, tunnel);
            }
            (checked, ..) => {
                let reason = checked.err().map_or_else(|| "upgrade unavailable".to_owned(), |e| e.to_string());
                gw.metrics.app(app.index).upstream_error(UpstreamErrorKind::Protocol);
                tracing::error!(request_id = info.id(), app = %app.name, reason, "upstream protocol switch refused");
                return rescue::error(ErrorKind::UpstreamUnavailable, info, None);
            }
        }
    }
    hop_by_hop::strip(resp.headers_mut(), switching);
    resp
}

/// The answer to a request whose own body failed while it was being forwarded: the client's
/// fault, so 413/400, logged at info and never counted as an upstream error (anyone could
/// otherwise raise upstream alerts by sending broken chunked bodies).
fn client_body_fault(fault: BodyFault, app: &str, info: &RequestInfo) -> Response<Body> {
    tracing::info!(request_id = info.id(), app, client = %info.client_ip, reason = %fault, "request body refused: client fault");
    let kind = match fault {
        BodyFault::TooLarge => ErrorKind::PayloadTooLarge,
        BodyFault::Malformed => ErrorKind::BadRequest,
    };
    rescue::error(kind, info, None)
}

/// The request's `Content-Length`, when present and well-formed.
fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok())
}
