//! Reading the gateway's own cookies: exactly one of a name counts, anything else is none.
//!
//! A host-only cookie (no `Domain`) cannot be read by sibling subdomains, but they can still
//! set a cookie of the same name for the parent domain, and the browser then sends both. The
//! request does not say which one is ours, so two of a name fail closed: the session is
//! treated as absent and the pre-login binding as missing. `__Host-` names (the default with
//! `cookie_secure`) stop such planting in the first place.

use http::HeaderMap;

use super::request::{lookup_cookie, CookieLookup, RequestInfo};

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
