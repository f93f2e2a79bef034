//! The gateway's own endpoints under `/.aisgate/`: login, provider callbacks, logout, JWKS.
//!
//! Login state is bound to the browser: the pending login is stored server-side under a
//! random handle that only the browser's pre-login cookie (HMAC-authenticated) carries, and it
//! is taken — single use — on callback. A callback without that cookie is refused, which is
//! the only login-CSRF defence for protocols without a `state` parameter (JIP/KAAS).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawForm, RawQuery, State};
use axum::routing::get;
use axum::{Extension, Router};
use http::header::SET_COOKIE;
use http::{HeaderMap, Response, StatusCode};

use super::request::{clear_cookie, set_cookie, set_login_cookie_cross_site, RequestInfo};
use super::rescue;
use super::route::{self, App};
use super::{Gateway, RESERVED_PREFIX};
use crate::audit::{EndReason, Event, LogoutBy, Outcome, SessionRef, Subject};
use crate::http::canonical_path::CanonicalPath;
use crate::http::return_url::ReturnUrl;
use crate::ops::metrics::LoginResult;
use crate::pages::{self, ErrorKind, ProviderChoice};
use crate::provider::{BrowserStep, CommonReason, PendingState, ProtocolState, ProviderError, Reason, Side};
use crate::session::handoff::HandoffTarget;
use crate::session::keyring::Purpose;
use crate::session::shared::CounterScope;
use crate::session::{random_id, PendingLogin, SavedPost, Session, StoreKey};

type Gw = State<Arc<Gateway>>;

/// The router for `/.aisgate/*`; the caller gives the gateway as state per request
/// (`Gateway::endpoints`), so the router holds no reference to it.
pub fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/.aisgate/login", get(login))
        .route("/.aisgate/callback/{provider}", get(callback_get).post(callback_post))
        .route("/.aisgate/direct/{provider}", get(direct_form).post(direct_submit))
        .route("/.aisgate/link", get(super::link_flow::page).post(super::link_flow::submit))
        .route("/.aisgate/logout", get(logout).post(logout))
        .route("/.aisgate/logged-out", get(super::logout_return::logged_out))
        .route("/.aisgate/handoff", get(super::handoff::take))
        .route("/.aisgate/jwks.json", get(jwks))
        .route("/.aisgate/backchannel-logout/{provider}", axum::routing::post(backchannel_logout))
        .route("/.aisgate/saml/{provider}/metadata", get(super::slo::metadata))
        .route("/.aisgate/saml/{provider}/slo", get(super::slo::slo).post(super::slo::slo))
        .fallback(not_found)
        // The gateway caps own-endpoint bodies itself (`own_body`, applied in the handler);
        // axum's own 2 MB default would otherwise cut a large configured SAML message short.
        .layer(axum::extract::DefaultBodyLimit::disable())
}

pub(super) fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

pub(super) fn login_url(return_to: &str) -> String {
    format!("{RESERVED_PREFIX}login?return={}", encode(return_to))
}

/// Where a restart link leads when the login it restarts is unknown (no or an expired
/// pre-login cookie): the request's `return` parameter when it is a valid local URL, else the
/// first app (on this host, if any) that offers `provider` — never a bare `/`, which may be
/// no app's.
fn fallback_return(gw: &Gateway, provider: &str, params: &[(String, String)], headers: &HeaderMap) -> ReturnUrl {
    if let Some(given) = param(params, "return").and_then(|r| ReturnUrl::parse(r).ok()) {
        return given;
    }
    let host = request_host(headers);
    let offers = |app: &&App| app.providers.iter().any(|i| gw.providers[*i].name() == provider);
    let on_host = |app: &&App| app.hosts.is_empty() || app.hosts.iter().any(|h| h.eq_ignore_ascii_case(&host));
    gw.apps
        .iter()
        .filter(offers)
        .find(on_host)
        .or_else(|| gw.apps.iter().find(offers))
        .and_then(|app| ReturnUrl::parse(&app.path_prefix).ok())
        .unwrap_or_else(ReturnUrl::root)
}

/// The restart link of a login at `provider` for `return_to`.
fn restart_url(provider: &str, return_to: &ReturnUrl) -> String {
    format!("{}&provider={provider}", login_url(return_to.as_str()))
}

async fn not_found(Extension(info): Extension<RequestInfo>) -> Response<Body> {
    rescue::error(ErrorKind::NotFound, &info, None)
}

async fn jwks(State(gw): Gw) -> Response<Body> {
    let mut resp = Response::new(Body::from(gw.jwks().to_string()));
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/jwk-set+json"));
    resp.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("max-age=300"));
    resp
}

pub(super) fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

pub(super) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// `GET /.aisgate/login?return=/path[&provider=name]`
async fn login(
    State(gw): Gw,
    Extension(info): Extension<RequestInfo>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response<Body> {
    let params = query_pairs(query.as_deref());
    let return_to = param(&params, "return").and_then(|r| ReturnUrl::parse(r).ok()).unwrap_or_else(ReturnUrl::root);
    let host = request_host(&headers);
    // A login the app's host sent to this (central) login host names that host: the app is
    // found there, and only a configured host of an app with `central_login` is accepted.
    let target = param(&params, "for").map(str::to_ascii_lowercase);
    let Ok(path) = CanonicalPath::parse(return_to.path()) else {
        return rescue::error(ErrorKind::BadRequest, &info, info.home());
    };
    let app_host = target.as_deref().unwrap_or(&host);
    let Some(app) = route::find(&gw.apps, app_host, &crate::http::path_forms::PathForms::new(&path)) else {
        return rescue::error(ErrorKind::NotFound, &info, None);
    };
    let loa = match param(&params, "loa").map(crate::identity::Loa::parse_lenient) {
        None => None,
        Some(Some(loa)) => Some(loa),
        Some(None) => return rescue::error(ErrorKind::BadRequest, &info, info.home()),
    };
    let handoff = match target {
        None => None,
        Some(target) => match super::handoff::accept_start(&gw, app, target, &host, param(&params, "bind"), &info) {
            Some(handoff) => Some(handoff),
            None => return rescue::error(ErrorKind::BadRequest, &info, None),
        },
    };
    begin_login(&gw, app, (param(&params, "provider"), loa), return_to, &headers, &info, (handoff, None)).await
}

/// The request host (HTTP/1 `Host` or HTTP/2 `:authority` copied into it by the handler).
pub fn request_host(headers: &HeaderMap) -> String {
    headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).map(route::host_without_port).unwrap_or_default()
}

/// Starts a login for `app`: a chooser if it allows several providers and none was picked,
/// otherwise the provider's first step with a fresh pre-login cookie.
pub async fn start_login(
    gw: &Gateway,
    app: &App,
    provider: Option<&str>,
    return_to: ReturnUrl,
    headers: &HeaderMap,
    info: &RequestInfo,
) -> Response<Body> {
    start_login_at(gw, app, provider, None, return_to, headers, info).await
}

/// [`start_login`] that must achieve at least `loa` (step-up): only providers able to reach
/// it are offered, and the login's identity is checked against it at the callback.
pub async fn start_login_at(
    gw: &Gateway,
    app: &App,
    provider: Option<&str>,
    loa: Option<crate::identity::Loa>,
    return_to: ReturnUrl,
    headers: &HeaderMap,
    info: &RequestInfo,
) -> Response<Body> {
    begin_login(gw, app, (provider, loa), return_to, headers, info, (None, None)).await
}

/// [`start_login`] for a same-origin form POST whose session had expired: `saved` is kept in
/// the pending login and replayed after it (see `preserve_post`). Only a login that starts
/// here keeps it: a provider chooser or a central login host starts without it.
pub(super) async fn start_login_keeping(
    gw: &Gateway,
    app: &App,
    return_to: ReturnUrl,
    headers: &HeaderMap,
    info: &RequestInfo,
    saved: SavedPost,
) -> Response<Body> {
    begin_login(gw, app, (None, None), return_to, headers, info, (None, Some(saved))).await
}

/// [`start_login_at`] on the central login host for the app host of `handoff`, if given
/// (the login is then handed to that host when it is done: `handoff`).
async fn begin_login(
    gw: &Gateway,
    app: &App,
    (provider, loa): (Option<&str>, Option<crate::identity::Loa>),
    return_to: ReturnUrl,
    headers: &HeaderMap,
    info: &RequestInfo,
    (handoff, saved_post): (Option<HandoffTarget>, Option<SavedPost>),
) -> Response<Body> {
    let here = request_host(headers);
    // The host the login is for: this one, or the app host that sent the browser here.
    let app_host = handoff.as_ref().map_or(here.as_str(), |t| t.host.as_str());
    let able = |i: &usize| loa.is_none_or(|loa| gw.providers[*i].can_reach_loa(loa));
    let candidates: Vec<usize> = app.providers_on(app_host).into_iter().filter(able).collect();
    let chosen = match provider {
        Some(name) => candidates.iter().copied().find(|i| gw.providers[*i].name() == name),
        None if candidates.len() == 1 => candidates.first().copied(),
        None => None,
    };
    let Some(index) = chosen else {
        // A handed-over login chose its provider on the app's host: no chooser here (its
        // links would lose the handoff).
        if provider.is_some() || handoff.is_some() {
            return rescue::error(ErrorKind::BadRequest, info, Some(&login_url(return_to.as_str())));
        }
        let loa_param = loa.map_or(String::new(), |l| format!("&loa={}", l.as_str()));
        let links: Vec<(String, String)> = candidates
            .iter()
            .map(|i| {
                let p = &gw.providers[*i];
                let url = format!("{}&provider={}{loa_param}", login_url(return_to.as_str()), p.name());
                (p.display_name().to_owned(), url)
            })
            .collect();
        let choices: Vec<ProviderChoice> = links.iter().map(|(label, url)| ProviderChoice { label, url }).collect();
        let entering = app.user_label(&request_host(headers));
        return rescue::html(StatusCode::OK, pages::chooser_page(&entering, &choices, info.lang()));
    };
    let base = gw.login_base(app, app_host);
    if handoff.is_none() && app.names_host(&here) && !crate::config::hosts::host_of(&base).eq_ignore_ascii_case(&here) {
        // The IdP returns to another host than this one, which never sees this browser's
        // pre-login cookie: the login runs there and is handed back (`central_login`).
        if app.central_login {
            let provider = gw.providers[index].name();
            return super::handoff::send_to_login_host(gw, app, &base, (provider, loa), &return_to, &here, info);
        }
        // `check` refuses this configuration; should it get here anyway, fail closed.
        tracing::error!(request_id = info.id(), app = %app.name, host = %here, callback_base = %base, "login cannot complete: the IdP returns to another host and central_login is off");
        return rescue::error(ErrorKind::Internal, info, None);
    }
    begin_at(gw, index, loa, return_to, headers, info, Start { base, handoff, link: None, saved_post }).await
}

/// Where and for what a login starts (see [`begin_at`]).
pub(super) struct Start {
    /// The callback base URL (`[server] public_base_url` or the app's, see `login_base`).
    pub(super) base: String,
    /// A login on the central login host for an app on another host (`handoff`).
    pub(super) handoff: Option<HandoffTarget>,
    /// The JIP/KAAS confirmation of an account link (see `link_flow`).
    pub(super) link: Option<crate::links::LinkIntent>,
    /// A form POST to replay after the login (`preserve_post`).
    pub(super) saved_post: Option<SavedPost>,
}

/// Sends the browser to provider `index` with a fresh pending login (and pre-login cookie).
pub(super) async fn begin_at(
    gw: &Gateway,
    index: usize,
    loa: Option<crate::identity::Loa>,
    return_to: ReturnUrl,
    headers: &HeaderMap,
    info: &RequestInfo,
    Start { base, handoff, link, saved_post }: Start,
) -> Response<Body> {
    let loop_cookie = &gw.loop_cookie_name;
    let Some(counted) = super::loop_guard::count_start(
        &gw.keyring,
        super::cookies::read(headers, loop_cookie, info),
        gw.clock.now_unix(),
    ) else {
        tracing::warn!(request_id = info.id(), client = %info.client_ip, "login loop: too many logins started by this browser");
        audit_refused(gw, info, gw.providers[index].name(), "loop_protection");
        return rescue::error(ErrorKind::TooManyRequests, info, None);
    };
    // Every start stores a pending login: one address may not fill the store (issue 15 item 2).
    let verdict =
        gw.login_start_limiter.check_shared(info.client_ip, gw.shared.as_deref(), CounterScope::LoginStart).await;
    if !verdict.allowed() {
        tracing::warn!(request_id = info.id(), client = %info.client_ip, reason = verdict.reason(), "login starts rate-limited");
        audit_refused(gw, info, gw.providers[index].name(), "login_start_rate_limited");
        return rescue::error(limited_page(verdict), info, None);
    }
    let provider = &gw.providers[index];
    let mut ctx = gw.login_context_at(provider.name(), &base);
    // The one-time-credential form carries the app's return URL, so its error pages can send
    // the user back to this app's login (there may be no app at `/`).
    ctx.direct_form_url = format!("{}?return={}", ctx.direct_form_url, encode(return_to.as_str()));
    let begun = match loa {
        Some(loa) => match provider.step_up() {
            Some(step_up) => step_up.begin_at_loa(&ctx, loa).await,
            None => Err(ProviderError::with_context(CommonReason::Unsupported, "step-up")),
        },
        None => provider.begin(&ctx).await,
    };
    let start = match begun {
        Ok(start) => start,
        Err(e) => {
            record_failure(gw, index, provider.name(), &e, info, "login could not start");
            return rescue::error(e.page(), info, Some(&login_url(return_to.as_str())));
        }
    };
    let handle = random_id();
    let pending = PendingLogin {
        provider: provider.name().to_owned(),
        return_to: return_to.into_string(),
        created_at: gw.clock.now_unix(),
        protocol_state: PendingState::new(start.state),
        min_loa: loa,
        login_base: (base != gw.public_base_url).then_some(base),
        handoff,
        link,
        saved_post,
    };
    if let Err(e) = gw.store.put_pending(StoreKey::of(&handle), pending).await {
        tracing::error!(request_id = info.id(), error = %e, "cannot store pending login");
        return rescue::error(ErrorKind::SessionStoreUnavailable, info, None);
    }
    let mut resp = match &start.step {
        BrowserStep::Redirect(location) => rescue::redirect(location),
        BrowserStep::PostForm { action, fields } => {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            rescue::html(StatusCode::OK, pages::form_post_page(action, &fields, info.lang()))
        }
    };
    let value = gw.keyring.seal(Purpose::Login, &handle);
    let login_cookie = if provider.login_profile().returns_by_cross_site_post {
        set_login_cookie_cross_site(
            &gw.login_cookie_name,
            &value,
            gw.login_ttl_for(provider.as_ref()),
            gw.cookie_secure,
        )
    } else {
        set_cookie(&gw.login_cookie_name, &value, Some(gw.login_ttl_for(provider.as_ref())), gw.cookie_secure)
    };
    resp.headers_mut().append(SET_COOKIE, login_cookie);
    let window = super::loop_guard::WINDOW.as_secs();
    resp.headers_mut().append(SET_COOKIE, set_cookie(loop_cookie, &counted, Some(window), gw.cookie_secure));
    resp
}

async fn callback_get(
    State(gw): Gw,
    Extension(info): Extension<RequestInfo>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response<Body> {
    let params = query_pairs(query.as_deref());
    if let Some(refused) = credentials_at_callback(&gw, &provider, &params, &info) {
        return refused;
    }
    finish_login(&gw, &provider, params, &headers, &info).await
}

async fn callback_post(
    State(gw): Gw,
    Extension(info): Extension<RequestInfo>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    RawForm(form): RawForm,
) -> Response<Body> {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(&form).into_owned().collect();
    if let Some(refused) = credentials_at_callback(&gw, &provider, &params, &info) {
        return refused;
    }
    finish_login(&gw, &provider, params, &headers, &info).await
}

/// One-time credentials are redeemed only by the direct form's POST, which checks the CSRF
/// token and the per-client rate limit. At the callback they would skip both (and in a GET
/// they land in URLs, browser history and intermediaries' logs), so a callback of a direct
/// provider carrying `username` or `password` is refused before the pending login is touched
/// or the provider called: no fresh pre-login cookie, nothing redeemed, the values never logged.
fn credentials_at_callback(
    gw: &Gateway,
    provider: &str,
    params: &[(String, String)],
    info: &RequestInfo,
) -> Option<Response<Body>> {
    let direct = gw.provider(provider).is_some_and(|(_, p)| p.direct_generator_url().is_some());
    if !direct || !params.iter().any(|(k, _)| k == "username" || k == "password") {
        return None;
    }
    tracing::warn!(request_id = info.id(), client = %info.client_ip, provider, "one-time credentials sent to the callback refused (only the direct form redeems them)");
    audit_refused(gw, info, provider, "credentials_at_callback");
    let form = format!("{RESERVED_PREFIX}direct/{provider}");
    Some(rescue::error(ErrorKind::LoginNotInitiated, info, Some(&form)))
}

/// `GET /.aisgate/direct/{provider}`: the one-time-credential form. The CSRF token is a MAC
/// of the pre-login handle in the browser's cookie, so only this browser can submit it.
async fn direct_form(
    State(gw): Gw,
    Extension(info): Extension<RequestInfo>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response<Body> {
    let handle = super::cookies::login_handle(&gw, &headers, &info);
    let return_to = fallback_return(&gw, &provider, &query_pairs(query.as_deref()), &headers);
    render_direct_form(&gw, &provider, handle, &return_to, &info, false)
}

fn render_direct_form(
    gw: &Gateway,
    provider: &str,
    handle: Option<[u8; 32]>,
    return_to: &ReturnUrl,
    info: &RequestInfo,
    failed: bool,
) -> Response<Body> {
    let Some((generator, ttl)) =
        gw.provider(provider).and_then(|(_, p)| p.direct_generator_url().map(|g| (g, gw.login_ttl_for(p.as_ref()))))
    else {
        return rescue::error(ErrorKind::NotFound, info, None);
    };
    let Some(handle) = handle else {
        // No login in progress in this browser: start one for the app (it leads back here).
        return rescue::redirect(&restart_url(provider, return_to));
    };
    let csrf = gw.keyring.mac(Purpose::Csrf, &handle);
    let action = format!("{RESERVED_PREFIX}direct/{provider}?return={}", encode(return_to.as_str()));
    // The form is good as long as the pending login behind it: whole minutes, at least one.
    let minutes = (ttl / 60).max(1);
    let form = pages::DirectForm { action: &action, csrf: &csrf, generator_url: &generator, minutes, failed };
    rescue::html(StatusCode::OK, pages::direct_login_page(&form, info.lang()))
}

/// `POST /.aisgate/direct/{provider}`: redeems one-time credentials. Rate-limited per client;
/// the CSRF token must match this browser's pre-login handle.
async fn direct_submit(
    State(gw): Gw,
    Extension(info): Extension<RequestInfo>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    RawForm(form): RawForm,
) -> Response<Body> {
    if gw.provider(&provider).and_then(|(_, p)| p.direct_generator_url()).is_none() {
        return rescue::error(ErrorKind::NotFound, &info, None);
    }
    let verdict =
        gw.direct_limiter.check_shared(info.client_ip, gw.shared.as_deref(), CounterScope::DirectCredentials).await;
    if !verdict.allowed() {
        tracing::warn!(request_id = info.id(), client = %info.client_ip, provider, reason = verdict.reason(), "one-time credential attempts rate-limited");
        audit_refused(&gw, &info, &provider, "rate_limited");
        return rescue::error(limited_page(verdict), &info, None);
    }
    let params: Vec<(String, String)> = url::form_urlencoded::parse(&form).into_owned().collect();
    let handle = super::cookies::login_handle(&gw, &headers, &info);
    let csrf_ok = match (&handle, param(&params, "csrf")) {
        (Some(handle), Some(token)) => gw.keyring.verify_mac(Purpose::Csrf, handle, token),
        _ => false,
    };
    if !csrf_ok {
        tracing::warn!(request_id = info.id(), client = %info.client_ip, provider, "one-time credential form without a valid CSRF token");
        audit_refused(&gw, &info, &provider, "csrf_mismatch");
        let return_to = fallback_return(&gw, &provider, &query_pairs(query.as_deref()), &headers);
        return rescue::error(ErrorKind::LoginNotInitiated, &info, Some(&restart_url(&provider, &return_to)));
    }
    let fallback = fallback_return(&gw, &provider, &query_pairs(query.as_deref()), &headers);
    finish_login_for(&gw, &provider, params, &headers, &info, fallback).await
}

async fn finish_login(
    gw: &Gateway,
    provider_name: &str,
    params: Vec<(String, String)>,
    headers: &HeaderMap,
    info: &RequestInfo,
) -> Response<Body> {
    let fallback = fallback_return(gw, provider_name, &params, headers);
    finish_login_for(gw, provider_name, params, headers, info, fallback).await
}

/// Completes a login; `fallback` is where restart links lead when the pending login (and so
/// its return URL) is unknown.
async fn finish_login_for(
    gw: &Gateway,
    provider_name: &str,
    params: Vec<(String, String)>,
    headers: &HeaderMap,
    info: &RequestInfo,
    fallback: ReturnUrl,
) -> Response<Body> {
    let Some((index, provider)) = gw.provider(provider_name) else {
        return rescue::error(ErrorKind::NotFound, info, None);
    };
    let restart = restart_url(provider_name, &fallback);
    let handle = super::cookies::login_handle(gw, headers, info);
    let pending = match handle {
        None => {
            // Reload or Back after a successful login (the pre-login cookie is gone): a
            // browser already logged in goes on instead of seeing "login was not started here".
            let reason = "no_login_cookie";
            if let Some(resp) = already_logged_in(gw, provider_name, &fallback, headers, info, reason).await {
                return resp;
            }
            if !provider.login_profile().accepts_unsolicited {
                tracing::warn!(request_id = info.id(), provider = provider_name, client = %info.client_ip, "callback without a valid pre-login cookie refused");
                gateway_refusal(gw, index, provider_name, CommonReason::NoLoginCookie, info);
                return rescue::error(ErrorKind::LoginNotInitiated, info, Some(&restart));
            }
            unsolicited_login(provider_name, &params, info, gw.clock.now_unix())
        }
        Some(handle) => match gw.store.take_pending(&StoreKey::of(&handle)).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                // The same message again (a replayed state, a re-submitted form) in a browser
                // that the first delivery logged in: go on, the message is not looked at.
                if let Some(resp) = already_logged_in(gw, provider_name, &fallback, headers, info, "login_used").await {
                    return with_cleared_login(gw, resp);
                }
                tracing::warn!(
                    request_id = info.id(),
                    provider = provider_name,
                    "callback for an unknown, used or expired login"
                );
                gateway_refusal(gw, index, provider_name, CommonReason::LoginUnknown, info);
                return with_cleared_login(gw, rescue::error(ErrorKind::LoginExpired, info, Some(&restart)));
            }
            Err(e) => {
                tracing::error!(request_id = info.id(), error = %e, "cannot read pending login");
                return rescue::error(ErrorKind::SessionStoreUnavailable, info, None);
            }
        },
    };
    // A login for an app on another host restarts there (on this host the return URL may
    // belong to another app).
    let retry = match &pending.handoff {
        Some(target) => {
            let base = pending.login_base.as_deref().unwrap_or(&gw.public_base_url);
            let local = ReturnUrl::parse(&pending.return_to).unwrap_or_else(|_| ReturnUrl::root());
            format!("{}{}", crate::config::hosts::with_host(base, &target.host), local.as_str())
        }
        None => login_url(&pending.return_to),
    };
    // The store may keep pending logins longer than this provider allows (another provider
    // needs more); the provider's own limit applies.
    if gw.clock.now_unix().saturating_sub(pending.created_at) > gw.login_ttl_for(provider.as_ref()) {
        tracing::warn!(request_id = info.id(), provider = provider_name, "callback for an expired login");
        gateway_refusal(gw, index, provider_name, CommonReason::LoginExpired, info);
        return with_cleared_login(gw, rescue::error(ErrorKind::LoginExpired, info, Some(&retry)));
    }
    if pending.provider != provider_name {
        // A response for one provider delivered to another's callback (mix-up).
        tracing::warn!(request_id = info.id(), expected = %pending.provider, got = provider_name, "callback provider mismatch");
        gateway_refusal(gw, index, provider_name, CommonReason::ProviderMismatch, info);
        return with_cleared_login(gw, rescue::error(ErrorKind::LoginNotInitiated, info, Some(&retry)));
    }
    let ctx = gw.login_context_at(provider_name, pending.login_base.as_deref().unwrap_or(&gw.public_base_url));
    let finished = match pending.protocol_state.protocol() {
        Ok(state) => provider.finish(&ctx, &params, state).await,
        Err(e) => Err(e),
    };
    let authenticated = match finished {
        Ok(a) => a,
        Err(e) => {
            record_failure(gw, index, provider_name, &e, info, "login failed");
            // Refused one-time credentials (KAAS said no, or they were missing or malformed):
            // show the form again, with a fresh login handle (the old one was single use) and
            // the reason. Gateway-state failures and outages get their page instead.
            let credentials_refused = matches!(e.reason(), Reason::Kaas(_)) && e.side() != Side::Outage;
            if provider.direct_credentials().is_some() && credentials_refused {
                return retry_direct_form(gw, provider_name, pending, info).await;
            }
            let mut resp = with_cleared_login(gw, rescue::error(e.page(), info, Some(&retry)));
            if matches!(e.reason(), crate::provider::Reason::Common(CommonReason::Busy)) {
                // The CPU pool for login messages is full (issue 15 item 1): say when to retry.
                rescue::retry_after(&mut resp, crate::cpu::RETRY_AFTER_SECS);
            }
            return resp;
        }
    };
    if let Some(min) = pending.min_loa {
        // Step-up: the IdP must have achieved the LoA the route needs; whatever it says
        // otherwise, a lower LoA never gets a session (that could only loop back here).
        if authenticated.identity.loa.is_none_or(|loa| loa < min) {
            let got = authenticated.identity.loa.map_or("none", |l| l.as_str());
            tracing::warn!(
                request_id = info.id(),
                provider = provider_name,
                required = min.as_str(),
                got,
                "step-up login achieved a lower LoA"
            );
            gateway_refusal(gw, index, provider_name, CommonReason::LoaTooLow, info);
            return with_cleared_login(gw, rescue::error(ErrorKind::LoginFailed, info, Some(&retry)));
        }
    }
    if let Some(intent) = pending.link {
        // The JIP/KAAS confirmation of an account link: it makes a link, never a session.
        gw.metrics.provider(index).login(LoginResult::Success);
        let resp = super::link_flow::complete(gw, intent, authenticated.identity, &pending.return_to, headers, info);
        return with_cleared_login(gw, resp.await);
    }
    // A fresh id on every login; any previous session of this browser is destroyed
    // (session fixation). After a step-up this replaces the lower-LoA session.
    end_replaced_session(gw, headers, info).await;
    let mut identity = authenticated.identity;
    if let Some(links) = &gw.links {
        links.annotate(&mut identity).await;
    }
    // Only the raw attributes the configuration reads stay with the session.
    gw.kept_attributes.prune(&mut identity);
    // Upstream tokens only when an `upstream_bearer` app can send them.
    let tokens = gw.kept_tokens.keep(&identity.provider, authenticated.tokens);
    if let Some(target) = pending.handoff.clone() {
        // A login for an app on another host: that host makes the session (`handoff`).
        let base = pending.login_base.as_deref().unwrap_or(&gw.public_base_url);
        let session = Session::new(identity, authenticated.logout_state, gw.absolute_timeout_secs, gw.clock.now_unix())
            .with_tokens(tokens);
        let resp =
            super::handoff::grant(gw, (index, provider_name), target, session, &pending.return_to, base, info).await;
        return with_cleared_login(gw, resp);
    }
    let id = random_id();
    let key = StoreKey::of(&id);
    // Re-validate: the stored value passed ReturnUrl at login start, but never trust storage.
    let target = ReturnUrl::parse(&pending.return_to).unwrap_or_else(|_| ReturnUrl::root());
    let app = app_at(gw, &target, headers);
    let session = Arc::new(
        Session::new(identity, authenticated.logout_state, gw.absolute_timeout_secs, gw.clock.now_unix())
            .with_tokens(tokens)
            .with_app(app.map(|app| crate::session::names::intern(&app.name))),
    );
    if let Err(e) = gw.store.save(key, session.clone()).await {
        tracing::error!(request_id = info.id(), error = %e, "cannot store session");
        return rescue::error(ErrorKind::SessionStoreUnavailable, info, None);
    }
    session_established(gw, info, key, &session, pending.min_loa.map(|l| l.as_str())).await;
    gw.metrics.provider(index).login(LoginResult::Success);
    if let Some(app) = app {
        gw.app_logins.count(app.index, index);
        if let Some(links) = &gw.links {
            links.count_login(app.index, &session.identity);
        }
    }
    // A form POST that started this login goes on as the user's POST (single use: the pending
    // login is gone); otherwise back to where the login started.
    let next = match pending.saved_post {
        Some(saved) => super::preserve_post::replay(&target, &saved, info),
        None => rescue::redirect(target.as_str()),
    };
    let mut resp = with_cleared_login(gw, next);
    let value = gw.keyring.seal(Purpose::Session, &id);
    resp.headers_mut().append(SET_COOKIE, set_cookie(&gw.cookie_name, &value, None, gw.cookie_secure));
    resp.headers_mut().append(SET_COOKIE, clear_cookie(&gw.loop_cookie_name, gw.cookie_secure));
    resp
}

/// Ends the session this browser already has (a new login replaces it: session fixation),
/// and audits it as `replaced`.
pub(super) async fn end_replaced_session(gw: &Gateway, headers: &HeaderMap, info: &RequestInfo) {
    let Some(old) = super::cookies::session_id(gw, headers, info) else { return };
    let old = StoreKey::of(&old);
    if let Ok(Some(replaced)) = gw.store.remove(&old).await {
        gw.audit.emit(Event::SessionEnd {
            origin: info.audit_origin(),
            reason: EndReason::Replaced,
            subject: Subject(&replaced.identity),
            session: SessionRef(&old),
        });
    }
}

/// What follows a stored new session, wherever it was made (callback or handoff): the log
/// line, the `login_success` audit event and the per-user session limit.
pub(super) async fn session_established(
    gw: &Gateway,
    info: &RequestInfo,
    key: StoreKey,
    session: &Arc<Session>,
    required_loa: Option<&'static str>,
) {
    let identity = &session.identity;
    tracing::info!(
        request_id = info.id(),
        provider = %identity.provider,
        session = %key.log_label(),
        user = %identity.log_label(),
        loa = identity.loa.map_or("-", |l| l.as_str()),
        method = identity.auth_method.as_deref().unwrap_or("-"),
        "login succeeded",
    );
    gw.audit.emit(Event::LoginSuccess {
        origin: info.audit_origin(),
        app: session.app.as_deref(),
        subject: Subject(identity),
        session: SessionRef(&key),
        required_loa,
    });
    // The newest login wins: beyond the per-user limit the user's oldest sessions end. The
    // login itself stands even if that fails (the limit is enforced at the next login).
    if let Err(e) = crate::session::users::enforce_limit(
        gw.store.as_ref(),
        &gw.audit,
        info.audit_origin(),
        key,
        session,
        gw.max_sessions_per_user,
    )
    .await
    {
        tracing::error!(request_id = info.id(), error = %e, "cannot apply max_sessions_per_user");
    }
}

/// The app serving `target` on this host (for a login: the app it was made for).
fn app_at<'g>(gw: &'g Gateway, target: &ReturnUrl, headers: &HeaderMap) -> Option<&'g App> {
    let path = CanonicalPath::parse(target.path()).ok()?;
    route::find(&gw.apps, &request_host(headers), &crate::http::path_forms::PathForms::new(&path))
}

/// A callback that cannot be finished (no pre-login cookie, or its login already used) in a
/// browser that carries a valid session of `provider`, which the app at `return_to` accepts:
/// the user reloaded the callback or went Back after logging in (issue 14 item 10). They go on
/// to `return_to` with a redirect. The callback's message is never processed and no session is
/// made from it — the existing session is what lets the user in, and only an app that accepts
/// it is a target; otherwise `None` and the caller refuses as before.
async fn already_logged_in(
    gw: &Gateway,
    provider: &str,
    return_to: &ReturnUrl,
    headers: &HeaderMap,
    info: &RequestInfo,
    reason: &'static str,
) -> Option<Response<Body>> {
    let (_, session) = super::handler::load_session(gw, headers, info).await.ok()??;
    if session.identity.provider != provider {
        return None;
    }
    let app = app_at(gw, return_to, headers)?;
    if !app.accepts_provider(&gw.providers, provider) {
        return None;
    }
    tracing::info!(request_id = info.id(), provider, app = %app.name, reason, "callback in a browser already logged in: continuing to the return URL, the message is not processed");
    Some(rescue::redirect(return_to.as_str()))
}

/// The stand-in pending login of an IdP-initiated login: no protocol state (the provider then
/// requires a Response that answers no request), the RelayState as the return URL when it is a
/// valid local one (SAML IdP-initiated convention), else `/`.
fn unsolicited_login(provider: &str, params: &[(String, String)], info: &RequestInfo, now: u64) -> PendingLogin {
    tracing::info!(request_id = info.id(), provider, "unsolicited (IdP-initiated) login");
    let return_to = param(params, "RelayState").and_then(|r| ReturnUrl::parse(r).ok()).unwrap_or_else(ReturnUrl::root);
    PendingLogin {
        provider: provider.to_owned(),
        return_to: return_to.into_string(),
        created_at: now,
        protocol_state: PendingState::new(ProtocolState::Unsolicited),
        min_loa: None,
        login_base: None,
        handoff: None,
        link: None,
        saved_post: None,
    }
}

async fn retry_direct_form(
    gw: &Gateway,
    provider: &str,
    mut pending: PendingLogin,
    info: &RequestInfo,
) -> Response<Body> {
    let handle = random_id();
    pending.created_at = gw.clock.now_unix();
    let return_to = ReturnUrl::parse(&pending.return_to).unwrap_or_else(|_| ReturnUrl::root());
    if let Err(e) = gw.store.put_pending(StoreKey::of(&handle), pending).await {
        tracing::error!(request_id = info.id(), error = %e, "cannot store pending login");
        return rescue::error(ErrorKind::SessionStoreUnavailable, info, None);
    }
    let value = gw.keyring.seal(Purpose::Login, &handle);
    let mut resp = render_direct_form(gw, provider, Some(handle), &return_to, info, true);
    *resp.status_mut() = StatusCode::UNAUTHORIZED;
    resp.headers_mut()
        .append(SET_COOKIE, set_cookie(&gw.login_cookie_name, &value, Some(gw.login_ttl_secs), gw.cookie_secure));
    resp
}

/// Logs, audits and counts a failed provider step once, by its typed reason: a refusal (the
/// gateway's own checks failed) is a WARN `login refused: …`, the IdP's "no" a WARN `login
/// denied …`, an outage an ERROR. The audit event and the metrics carry the bounded label.
fn record_failure(
    gw: &Gateway,
    index: usize,
    provider: &str,
    e: &crate::provider::ProviderError,
    info: &RequestInfo,
    step: &str,
) {
    let side = e.side();
    let reason = e.label();
    match side {
        Side::Outage => {
            tracing::error!(request_id = info.id(), provider, reason, step, "{}: {e}", e.log_prefix())
        }
        Side::Refused | Side::Denied => {
            tracing::warn!(request_id = info.id(), provider, reason, step, "{}: {e}", side.log_prefix())
        }
    }
    let result = e.metric_result();
    audit_login_failure(gw, info, provider, result, reason);
    let metrics = gw.metrics.provider(index);
    metrics.login(result);
    metrics.refusal(reason);
}

/// Audits and counts a login the gateway refused by its own check (the caller logs the
/// detail): `result="refused"` and the reason label, like a provider's refusal.
fn gateway_refusal(gw: &Gateway, index: usize, provider: &str, reason: CommonReason, info: &RequestInfo) {
    audit_login_failure(gw, info, provider, LoginResult::Refused, reason.label());
    let metrics = gw.metrics.provider(index);
    metrics.login(LoginResult::Refused);
    metrics.refusal(reason.label());
}

/// Audits a request the gateway refused before any provider step (not a login attempt at the
/// IdP, so not counted in `aisgate_logins_total`); `reason` is a bounded `snake_case` label.
pub(super) fn audit_refused(gw: &Gateway, info: &RequestInfo, provider: &str, reason: &'static str) {
    audit_login_failure(gw, info, provider, LoginResult::Refused, reason);
}

/// The `login_failure` audit event: `result` as `aisgate_logins_total`, `reason` the bounded
/// label.
fn audit_login_failure(gw: &Gateway, info: &RequestInfo, provider: &str, result: LoginResult, reason: &'static str) {
    let protocol = gw.provider(provider).and_then(|(index, _)| gw.protocol_of(index));
    gw.audit.emit(Event::LoginFailure {
        origin: info.audit_origin(),
        provider,
        protocol,
        result: result.as_str(),
        reason,
    });
}

pub(super) fn with_cleared_login(gw: &Gateway, mut resp: Response<Body>) -> Response<Body> {
    resp.headers_mut().append(SET_COOKIE, clear_cookie(&gw.login_cookie_name, gw.cookie_secure));
    resp
}

/// The "log in with another account" link for `return_to` (a local URL): a logout that, once
/// the IdP's logout is done too, starts a login to the same URL (issue 14 item 11).
pub fn switch_account_url(return_to: &str) -> String {
    format!("{RESERVED_PREFIX}logout?switch=1&return={}", encode(return_to))
}

/// What a logout request asks for besides logging out.
#[derive(Debug, Default)]
pub struct LogoutRequest {
    /// Where "Cancel" on the cross-site confirmation leads (the app), if known.
    pub cancel: Option<String>,
    /// "Log in with another account": after the logout, a login to this URL starts.
    pub switch_to: Option<ReturnUrl>,
    /// "Log out everywhere" (`everywhere=1`): every session of this user at this provider
    /// ends, on every instance, not only this browser's.
    pub everywhere: bool,
}

impl LogoutRequest {
    /// Reads `return` and `switch=1` from the query of `/.aisgate/logout`; `cancel` is the
    /// `return` URL, else `home` (an app of this host).
    fn from_query(params: &[(String, String)], home: Option<&str>) -> LogoutRequest {
        let back = param(params, "return").and_then(|r| ReturnUrl::parse(r).ok());
        let switch_to = back.clone().filter(|_| param(params, "switch") == Some("1"));
        let cancel = back.map(ReturnUrl::into_string).or_else(|| home.map(str::to_owned));
        LogoutRequest { cancel, switch_to, everywhere: param(params, "everywhere") == Some("1") }
    }
}

/// `GET|POST /.aisgate/logout` and intercepted app logout paths: destroy the session first,
/// then send the browser to the provider's logout (or the logged-out page).
pub async fn logout_response(
    gw: &Gateway,
    method: &http::Method,
    headers: &HeaderMap,
    info: &RequestInfo,
    request: LogoutRequest,
) -> Response<Body> {
    // A top-level GET from another site (a link that logs users out) gets a confirmation
    // instead — "Log out?" with a POST button and a Cancel link back to the app (issue 14
    // item 12); same-site links and POSTs proceed.
    if method == http::Method::GET && headers.get("sec-fetch-site").is_some_and(|v| v == "cross-site") {
        // Relative: the form posts to this host, whose session cookie it must end (an app on
        // another host than public_base_url's has its session there).
        let mut action = format!("{RESERVED_PREFIX}logout");
        if let Some(to) = &request.switch_to {
            action = switch_account_url(to.as_str());
        }
        if request.everywhere {
            action.push_str(if action.contains('?') { "&everywhere=1" } else { "?everywhere=1" });
        }
        let page = pages::logout_confirm_page(&action, request.cancel.as_deref(), info.lang());
        return rescue::html(StatusCode::OK, page);
    }
    let mut location = gw.url(&format!("{RESERVED_PREFIX}logged-out"));
    let mut step = None;
    let mut logout_cookie = None;
    if let Some(id) = super::cookies::session_id(gw, headers, info) {
        let key = StoreKey::of(&id);
        match gw.store.remove(&key).await {
            Ok(Some(session)) => {
                tracing::info!(request_id = info.id(), session = %key.log_label(), user = %session.identity.log_label(), "logged out");
                let (origin, subject, session_ref) =
                    (info.audit_origin(), Subject(&session.identity), SessionRef(&key));
                gw.audit.emit(Event::Logout {
                    origin,
                    by: LogoutBy::User,
                    provider: None,
                    subject: Some(subject),
                    session: Some(session_ref),
                    sessions_ended: 1,
                    result: Outcome::Success,
                    reason: None,
                });
                gw.audit.emit(Event::SessionEnd { origin, reason: EndReason::Logout, subject, session: session_ref });
                if request.everywhere && !log_out_everywhere(gw, &session, info).await {
                    // The user asked for all devices: saying "logged out" while other
                    // sessions live on would mislead. This browser's session is gone.
                    let mut resp = rescue::error(ErrorKind::SessionStoreUnavailable, info, None);
                    resp.headers_mut().append(SET_COOKIE, clear_cookie(&gw.cookie_name, gw.cookie_secure));
                    return resp;
                }
                if let Some((_, provider)) = gw.provider(&session.identity.provider) {
                    let (found, bound) = super::logout_return::provider_logout(
                        gw,
                        provider.as_ref(),
                        &session.logout_state,
                        &request_host(headers),
                    )
                    .await;
                    step = Some(found);
                    logout_cookie = bound;
                }
            }
            Ok(None) => {}
            Err(e) => tracing::error!(request_id = info.id(), error = %e, "cannot remove session at logout"),
        }
    }
    let switch_cookie = match (&request.switch_to, &step) {
        // Nothing to log out of at an IdP: the new login starts right away.
        (Some(to), None) => {
            tracing::info!(
                request_id = info.id(),
                reason = "switch_account",
                "logged out; login with another account starts"
            );
            let mut resp = rescue::redirect(&login_url(to.as_str()));
            resp.headers_mut().append(SET_COOKIE, clear_cookie(&gw.cookie_name, gw.cookie_secure));
            return resp;
        }
        // The IdP's logout comes first (else it would log the same account in again); the
        // logged-out page then starts the login (`logout_return::logged_out`).
        (Some(to), Some(_)) => super::logout_return::remember_switch(gw, to, info).await,
        (None, _) => None,
    };
    let mut resp = match step {
        Some(BrowserStep::PostForm { action, fields }) => {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            rescue::html(StatusCode::OK, pages::form_post_page(&action, &fields, info.lang()))
        }
        Some(BrowserStep::Redirect(to)) => {
            location = to;
            rescue::redirect(&location)
        }
        None => rescue::redirect(&location),
    };
    resp.headers_mut().append(SET_COOKIE, clear_cookie(&gw.cookie_name, gw.cookie_secure));
    if let Some(value) = logout_cookie {
        resp.headers_mut().append(
            SET_COOKIE,
            set_cookie(super::logout_return::logout_cookie_name(gw), &value, Some(gw.login_ttl_secs), gw.cookie_secure),
        );
    }
    if let Some(value) = switch_cookie {
        resp.headers_mut().append(
            SET_COOKIE,
            set_cookie(super::logout_return::switch_cookie_name(gw), &value, Some(gw.login_ttl_secs), gw.cookie_secure),
        );
    }
    resp
}

/// Ends every other session of the user of `session` (at its provider), on every instance:
/// the store announces each end, so tunnels close and other instances drop their copies.
/// Returns whether that worked.
async fn log_out_everywhere(gw: &Gateway, session: &Session, info: &RequestInfo) -> bool {
    let id = &session.identity;
    let ended = gw.store.remove_for_subject(&id.provider, Some(&id.subject), None).await;
    let (sessions_ended, result, reason) = match &ended {
        Ok(n) => {
            tracing::info!(request_id = info.id(), user = %id.log_label(), ended = n, "logged out everywhere");
            (*n, Outcome::Success, "everywhere")
        }
        Err(e) => {
            tracing::error!(request_id = info.id(), user = %id.log_label(), error = %e, "cannot end the user's other sessions");
            (0, Outcome::Error, "everywhere_store_unavailable")
        }
    };
    gw.audit.emit(Event::Logout {
        origin: info.audit_origin(),
        by: LogoutBy::User,
        provider: None,
        subject: Some(Subject(id)),
        session: None,
        sessions_ended,
        result,
        reason: Some(reason),
    });
    ended.is_ok()
}

async fn logout(
    State(gw): Gw,
    Extension(info): Extension<RequestInfo>,
    method: http::Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response<Body> {
    let request = LogoutRequest::from_query(&query_pairs(query.as_deref()), info.home());
    logout_response(&gw, &method, &headers, &info, request).await
}

/// A JSON error answer of the back-channel logout endpoint (§2.8: `400` with an OAuth-style
/// error), never cached.
const BACK_CHANNEL: LogoutBy = LogoutBy::BackChannel;

fn backchannel_answer(status: StatusCode, error: Option<&str>) -> Response<Body> {
    let body = error.map_or_else(Body::empty, |e| Body::from(serde_json::json!({ "error": e }).to_string()));
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    if error.is_some() {
        headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    }
    resp
}

/// The `logout` audit event of an IdP-initiated logout (back-channel or through the browser);
/// `reason` is the bounded label of a refusal or failure.
pub(super) fn audit_idp_logout(
    gw: &Gateway,
    info: &RequestInfo,
    (by, provider): (LogoutBy, &str),
    ended: usize,
    (result, reason): (Outcome, Option<&'static str>),
) {
    // The token or message itself is never logged: it is a bearer credential for ending sessions.
    gw.audit.emit(Event::Logout {
        origin: info.audit_origin(),
        by,
        provider: Some(provider),
        subject: None,
        session: None,
        sessions_ended: ended,
        result,
        reason,
    });
}

/// `POST /.aisgate/backchannel-logout/{provider}`: OpenID Connect Back-Channel Logout 1.0.
/// The IdP posts a signed `logout_token`; the provider verifies it and every session of that
/// provider matching its `sid` (or else `sub`) is destroyed. No cookie is involved — this is
/// a server-to-server call authenticated only by the token's signature.
async fn backchannel_logout(
    State(gw): Gw,
    Extension(info): Extension<RequestInfo>,
    Path(provider_name): Path<String>,
    headers: HeaderMap,
    form: axum::body::Bytes,
) -> Response<Body> {
    let Some(provider) = gw.provider(&provider_name).and_then(|(_, p)| p.backchannel_logout()) else {
        return backchannel_answer(StatusCode::NOT_FOUND, Some("not_found"));
    };
    let form_type = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    });
    let params: Vec<(String, String)> = url::form_urlencoded::parse(&form).into_owned().collect();
    let token = param(&params, "logout_token").filter(|t| form_type && !t.is_empty());
    let Some(token) = token else {
        tracing::warn!(
            request_id = info.id(),
            provider = provider_name,
            "back-channel logout without a logout_token form field"
        );
        audit_idp_logout(&gw, &info, (BACK_CHANNEL, &provider_name), 0, (Outcome::Refused, Some("missing_token")));
        return backchannel_answer(StatusCode::BAD_REQUEST, Some("invalid_request"));
    };
    let target = match provider.verify_logout_token(token).await {
        Ok(target) => target,
        Err(e) if e.side() == Side::Outage => {
            // Our side cannot verify now (no discovery or keys): the IdP may retry later.
            tracing::error!(request_id = info.id(), provider = provider_name, reason = e.label(), error = %e, "back-channel logout could not be verified");
            audit_idp_logout(&gw, &info, (BACK_CHANNEL, &provider_name), 0, (Outcome::Error, Some(e.label())));
            return backchannel_answer(StatusCode::SERVICE_UNAVAILABLE, Some("temporarily_unavailable"));
        }
        Err(e) => {
            tracing::warn!(request_id = info.id(), provider = provider_name, reason = e.label(), error = %e, "back-channel logout token refused");
            audit_idp_logout(&gw, &info, (BACK_CHANNEL, &provider_name), 0, (Outcome::Refused, Some(e.label())));
            return backchannel_answer(StatusCode::BAD_REQUEST, Some("invalid_request"));
        }
    };
    match gw.store.remove_for_subject(&provider_name, target.subject.as_deref(), target.sid.as_deref()).await {
        Ok(ended) => {
            audit_idp_logout(&gw, &info, (BACK_CHANNEL, &provider_name), ended, (Outcome::Success, None));
            backchannel_answer(StatusCode::OK, None)
        }
        Err(e) => {
            tracing::error!(request_id = info.id(), provider = provider_name, error = %e, "cannot end sessions for back-channel logout");
            audit_idp_logout(&gw, &info, (BACK_CHANNEL, &provider_name), 0, (Outcome::Error, Some("session_store")));
            backchannel_answer(StatusCode::SERVICE_UNAVAILABLE, Some("temporarily_unavailable"))
        }
    }
}

/// The login URL for an unauthenticated request to `return_to`.
pub fn login_path(return_to: &str) -> String {
    login_url(return_to)
}

/// The page of a refused attempt: 429, or 503 when the shared store could not count it.
fn limited_page(verdict: super::rate_limit::Verdict) -> ErrorKind {
    match verdict {
        super::rate_limit::Verdict::Unavailable => ErrorKind::SessionStoreUnavailable,
        _ => ErrorKind::TooManyRequests,
    }
}
