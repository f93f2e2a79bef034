//! The return from an IdP's logout: RP-initiated logout sends a `state` bound to the browser
//! (a MAC of a fresh handle, kept single-use server-side, the handle sealed into a cookie), and
//! `/.aisgate/logged-out` checks it. The local session is already gone, so a bad state changes
//! nothing but the log: it means the return did not follow this browser's logout.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::Extension;
use http::header::SET_COOKIE;
use http::{HeaderMap, Response, StatusCode};

use super::endpoints::{param, query_pairs};
use super::request::{clear_cookie, RequestInfo};
use super::rescue;
use super::Gateway;
use crate::http::return_url::ReturnUrl;
use crate::pages;
use crate::provider::{BrowserStep, LogoutState, PendingState, ProtocolState};
use crate::session::keyring::Purpose;
use crate::session::{random_id, PendingLogin, StoreKey};

type Gw = State<Arc<Gateway>>;

/// The cookie binding an RP-initiated logout's `state` to the browser.
pub(super) fn logout_cookie_name(gw: &Gateway) -> &str {
    &gw.logout_cookie_name
}

/// The cookie carrying "log in with another account" through the IdP's logout.
pub(super) fn switch_cookie_name(gw: &Gateway) -> &str {
    &gw.switch_cookie_name
}

/// Remembers "log in with another account to `to`" across the IdP's logout: the URL is kept
/// server-side, single use, under a fresh handle sealed into a cookie of this browser (so
/// no other site can make the logged-out page start a login). Returns the cookie value.
pub(super) async fn remember_switch(gw: &Gateway, to: &ReturnUrl, info: &RequestInfo) -> Option<String> {
    let handle = random_id();
    let pending = PendingLogin {
        provider: String::new(),
        return_to: to.as_str().to_owned(),
        created_at: gw.clock.now_unix(),
        // Never usable as a login's state: no provider's `finish` takes it.
        protocol_state: PendingState::new(ProtocolState::LogoutReturn),
        min_loa: None,
        login_base: None,
        handoff: None,
        link: None,
        saved_post: None,
    };
    if let Err(e) = gw.store.put_pending(StoreKey::of(&handle), pending).await {
        // The logout itself happens; the user starts the new login by hand.
        tracing::error!(request_id = info.id(), error = %e, "cannot store the account switch");
        return None;
    }
    Some(gw.keyring.seal(Purpose::Logout, &handle))
}

/// The login URL of a remembered account switch, taken (single use) from this browser's
/// switch cookie.
async fn take_switch(gw: &Gateway, headers: &HeaderMap, info: &RequestInfo) -> Option<ReturnUrl> {
    let handle = super::cookies::open(gw, headers, &gw.switch_cookie_name, Purpose::Logout, info)?;
    match gw.store.take_pending(&StoreKey::of(&handle)).await {
        Ok(Some(p))
            if p.provider.is_empty() && matches!(p.protocol_state.protocol(), Ok(ProtocolState::LogoutReturn)) =>
        {
            ReturnUrl::parse(&p.return_to).ok()
        }
        _ => None,
    }
}

/// `GET /.aisgate/logged-out[?state=…]`: the local session is already gone, so the page is the
/// same whatever the state; a state that is not this browser's (missing, forged, reused) is
/// logged, since it means the return did not follow this browser's logout.
pub(super) async fn logged_out(
    State(gw): Gw,
    Extension(info): Extension<RequestInfo>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response<Body> {
    let params = query_pairs(query.as_deref());
    let state = param(&params, "state");
    let cookie_name = logout_cookie_name(&gw);
    let handle = super::cookies::open(&gw, &headers, cookie_name, Purpose::Logout, &info);
    if state.is_some() || handle.is_some() {
        let verified = match (handle, state) {
            (Some(handle), Some(state)) if gw.keyring.verify_mac(Purpose::Logout, &handle, state) => {
                // Single use: the server-side entry is taken on the first return.
                matches!(gw.store.take_pending(&StoreKey::of(&handle)).await,
                    Ok(Some(p)) if matches!(p.protocol_state.protocol(), Ok(ProtocolState::LogoutReturn)))
            }
            _ => false,
        };
        let [ok, unverified] = &gw.logout_returns;
        if verified {
            ok.inc();
        } else {
            unverified.inc();
            tracing::warn!(request_id = info.id(), client = %info.client_ip, "return from the IdP's logout without this browser's state (missing, wrong or reused)");
        }
    }
    let switch = take_switch(&gw, &headers, &info).await;
    let mut resp = match &switch {
        // "Log in with another account": the IdP's logout is done, the new login starts.
        Some(to) => {
            tracing::info!(
                request_id = info.id(),
                reason = "switch_account",
                "logged out at the IdP; login with another account starts"
            );
            rescue::redirect(&super::endpoints::login_path(to.as_str()))
        }
        // "Log in again" leads to an app of this host, not a `/` that may be no app's.
        None => rescue::html(StatusCode::OK, pages::logged_out_page(info.home(), info.lang())),
    };
    if handle.is_some() {
        resp.headers_mut().append(SET_COOKIE, clear_cookie(cookie_name, gw.cookie_secure));
    }
    if super::cookies::read(&headers, &gw.switch_cookie_name, &info).is_some() {
        resp.headers_mut().append(SET_COOKIE, clear_cookie(&gw.switch_cookie_name, gw.cookie_secure));
    }
    resp
}

/// The provider's logout step. For providers that send a `state` to the IdP, it is a MAC of a
/// fresh handle kept single-use server-side and sealed into a cookie of this browser, so the
/// return can be checked (RP-Initiated Logout 1.0 §3); returns the cookie value then.
pub(super) async fn provider_logout(
    gw: &Gateway,
    provider: &dyn crate::provider::Provider,
    logout_state: &LogoutState,
    host: &str,
) -> (BrowserStep, Option<String>) {
    let ctx = gw.logout_context(provider.name(), host);
    let handle = random_id();
    let state = gw.keyring.mac(Purpose::Logout, &handle);
    let Some(step) = provider.stateful_logout().and_then(|s| s.logout_with_state(&ctx, logout_state, &state)) else {
        return (provider.logout(&ctx, logout_state).await, None);
    };
    let pending = PendingLogin {
        provider: provider.name().to_owned(),
        return_to: "/".to_owned(),
        created_at: gw.clock.now_unix(),
        // Never usable as a login's state: no provider's `finish` takes it.
        protocol_state: PendingState::new(ProtocolState::LogoutReturn),
        min_loa: None,
        login_base: None,
        handoff: None,
        link: None,
        saved_post: None,
    };
    if let Err(e) = gw.store.put_pending(StoreKey::of(&handle), pending).await {
        // The logout itself has happened; only the return check is lost.
        tracing::error!(error = %e, "cannot store the logout state");
        return (step, None);
    }
    (step, Some(gw.keyring.seal(Purpose::Logout, &handle)))
}
