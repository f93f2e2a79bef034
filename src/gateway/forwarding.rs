//! Client headers that proxies and frameworks believe: removed before forwarding.
//!
//! Upstreams (and the frameworks in front of them) take the client address, scheme, host or
//! even the request URL from headers such as `X-Forwarded-For`, `X-Real-IP` or
//! `X-Original-URL`. Only the gateway may set them. CGI/WSGI servers (PHP, mod_wsgi, Rack)
//! turn `X-Forwarded-For` and `X_Forwarded_For` into the same `HTTP_X_FORWARDED_FOR`, and
//! several of them let the first copy win, so every letter-case and `_`/`-` spelling is
//! matched, not only the one the gateway writes.
//!
//! What survives, and why:
//! - the dash forms `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host` and RFC 7239
//!   `Forwarded` from a configured trusted proxy (kept or appended to by `set_forwarded`);
//!   from anyone else `set_forwarded` replaces the first three and drops `Forwarded`;
//! - `X-Request-Id` (dash form): `forward` always overwrites it with the gateway's id;
//! - `X-HTTP-Method-Override` and its family: they carry no identity, address or URL. The
//!   gateway makes no decision by method that such a header could bypass (rules are by path;
//!   a cross-site page cannot set custom headers without a CORS preflight), so an upstream
//!   that honours them sees exactly what a direct client could send it.
//!
//! `Proxy` (httpoxy: CGI maps it to `HTTP_PROXY`, which many HTTP clients take as their
//! outgoing proxy) and every `Proxy-*` header are removed whoever sends them.

use http::{HeaderMap, HeaderName};

use crate::http::header_spelling as spelling;

/// Names (lowercase, `-` form) removed from every client, trusted proxy or not.
const ALWAYS: &[&str] = &[
    "proxy",
    "x-real-ip",
    "x-client-ip",
    "client-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-cluster-client-ip",
    "x-originating-ip",
    "x-remote-ip",
    "x-remote-addr",
    "x-original-forwarded-for",
    "x-original-url",
    "x-original-uri",
    "x-rewrite-url",
    "x-original-host",
    "x-host",
    "x-forwarded",
    "forwarded-for",
];

/// Prefixes (lowercase, `-` form) removed from every client: `X-Forwarded-Prefix/Port/
/// Server/Ssl/Scheme/…` and `Proxy-*`. The three `X-Forwarded-*` the gateway sets are the
/// exception ([`GATEWAY_SET`], checked first).
const ALWAYS_PREFIXES: &[&str] = &["x-forwarded-", "proxy-"];

/// Names the gateway sets (or, from a trusted proxy, believes) on the upstream request: their
/// dash form is handled by `set_forwarded`/`forward`, any other spelling is removed here.
const GATEWAY_SET: &[&str] = &["x-request-id", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded"];

/// Whether the client-sent header `name` must not reach an upstream (compared in place: this
/// runs for every header of every request).
fn refused(name: &str, from_trusted_proxy: bool) -> bool {
    let raw = name.as_bytes();
    if let Some(set) = GATEWAY_SET.iter().find(|n| spelling::same(raw, n.as_bytes())) {
        // Only the spelling the gateway writes (and overwrites) may pass; an `_` twin would
        // reach a CGI upstream as the same variable, possibly first.
        // `Forwarded` is produced by no one here, so it passes only from a trusted proxy.
        let dash_form = !raw.contains(&b'_');
        return !dash_form || (*set == "forwarded" && !from_trusted_proxy);
    }
    ALWAYS.iter().any(|n| spelling::same(raw, n.as_bytes()))
        || ALWAYS_PREFIXES.iter().any(|p| spelling::starts_with(raw, p.as_bytes()))
}

/// Removes every client header an upstream or its framework could mistake for one set by the
/// gateway; returns the removed names (for the log: names only, values may be anything).
pub(crate) fn strip_spoofable(headers: &mut HeaderMap, from_trusted_proxy: bool) -> Vec<HeaderName> {
    let removed: Vec<HeaderName> =
        headers.keys().filter(|name| refused(name.as_str(), from_trusted_proxy)).cloned().collect();
    for name in &removed {
        headers.remove(name);
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn underscore_twins_of_gateway_headers_are_always_refused() {
        for trusted in [false, true] {
            for name in ["x_forwarded_for", "X_Forwarded_Proto", "x-forwarded_host", "x_request_id", "X_Request-Id"] {
                assert!(refused(name, trusted), "{name} trusted={trusted}");
            }
            // The dash forms are the gateway's own: overwritten (or believed) later, not here.
            for name in ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id"] {
                assert!(!refused(name, trusted), "{name}");
            }
        }
        assert!(refused("forwarded", false));
        assert!(!refused("forwarded", true));
    }

    #[test]
    fn address_url_and_proxy_headers_are_refused_from_everyone() {
        for trusted in [false, true] {
            for name in [
                "proxy",
                "Proxy-Foo",
                "x-real-ip",
                "X_Real_IP",
                "true-client-ip",
                "cf-connecting-ip",
                "x-cluster-client-ip",
                "x-client-ip",
                "x-original-url",
                "x-rewrite-url",
                "x-original-host",
                "x-host",
                "x-forwarded-prefix",
                "x-forwarded-port",
                "x-forwarded-server",
                "x-forwarded-ssl",
                "x-forwarded-scheme",
                "X_Forwarded_Prefix",
            ] {
                assert!(refused(name, trusted), "{name} trusted={trusted}");
            }
            for name in ["x-http-method-override", "accept", "x-requested-with", "x-proxy-ok"] {
                assert!(!refused(name, trusted), "{name}");
            }
        }
    }
}
