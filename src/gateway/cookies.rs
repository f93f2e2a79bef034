//! Reading the gateway's own cookies: exactly one of a name counts, anything else is none.
//!
//! A host-only cookie (no `Domain`) cannot be read by sibling subdomains, but they can still
//! set a cookie of the same name for the parent domain, and the browser then sends both. The
//! request does not say which one is ours, so two of a name fail closed: the session is
//! treated as absent and the pre-login binding as missing. `__Host-` names (the default with
//! `cookie_secure`) stop such planting in the first place.

use http::HeaderMap;

use super::request::{lookup_cookie, CookieLookup, RequestInfo};
use super::Gateway;
use crate::session::keyring::Purpose;
use crate::session::StoreKey;

/// The value of the gateway cookie `name` if the request carries exactly one; a duplicate is
/// logged (the name only, never a value) and yields `None`.
pub(super) fn read<'a>(headers: &'a HeaderMap, name: &str, info: &RequestInfo) -> Option<&'a str> {
    match lookup_cookie(headers, name) {
        CookieLookup::One(value) => Some(value),
        CookieLookup::Absent => None,
        CookieLookup::Duplicated => {
            tracing::warn!(request_id = info.id(), client = %info.client_ip, cookie = name, "several cookies of one gateway cookie name (another (sub)domain may have set one); treated as none");
            None
        }
    }
}

/// The id sealed in the gateway cookie `name` for `purpose`, if the request carries exactly
/// one such cookie and its MAC verifies (forged values never reach a store lookup).
pub(super) fn open(
    gw: &Gateway,
    headers: &HeaderMap,
    name: &str,
    purpose: Purpose,
    info: &RequestInfo,
) -> Option<[u8; 32]> {
    read(headers, name, info).and_then(|v| gw.keyring.open(purpose, v))
}

/// The session id of the request's session cookie (see [`open`]).
pub(super) fn session_id(gw: &Gateway, headers: &HeaderMap, info: &RequestInfo) -> Option<[u8; 32]> {
    open(gw, headers, &gw.cookie_name, Purpose::Session, info)
}

/// The store key of the request's session cookie, through the keyring's per-worker cache of
/// verified cookies (see `Keyring::open_session`): the proxy's path.
pub(super) fn session_key(gw: &Gateway, headers: &HeaderMap, info: &RequestInfo) -> Option<StoreKey> {
    read(headers, &gw.cookie_name, info).and_then(|v| gw.keyring.open_session(v))
}

/// The pending-login handle of the request's pre-login cookie (see [`open`]).
pub(super) fn login_handle(gw: &Gateway, headers: &HeaderMap, info: &RequestInfo) -> Option<[u8; 32]> {
    open(gw, headers, &gw.login_cookie_name, Purpose::Login, info)
}
