//! Hop-by-hop header handling (RFC 9110 §7.6.1).
//!
//! Connection-scoped headers describe one TCP hop and must not be forwarded; headers named in
//! `Connection` are hop-by-hop too. An attacker can list `X-Auth-Subject` there hoping a proxy
//! drops a header *after* identity injection: the request path therefore strips hop-by-hop
//! headers before it injects identity (see `gateway/handler.rs`), and a test proves it.

use http::header::{HeaderName, CONNECTION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderValue, Version};

// `http2-settings` belongs to the h2c upgrade, which is never forwarded (see `upgrade`): it is
// removed even when the client did not list it in `Connection`.
/// Built once: removing by a `&str` name would parse and validate it on every call (this runs
/// twice per proxied request).
/// A `static`, not a `const`: a `const` array is built (and dropped) at every use.
static HOP_BY_HOP: [HeaderName; 5] = [
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("proxy-authenticate"),
    HeaderName::from_static("proxy-authorization"),
    HeaderName::from_static("http2-settings"),
];

/// Whether the request asks for a protocol upgrade (WebSocket) on HTTP/1.1.
pub fn is_upgrade(version: Version, headers: &HeaderMap) -> bool {
    version == Version::HTTP_11
        && headers.contains_key(UPGRADE)
        && headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Removes hop-by-hop headers. With `keep_upgrade`, `Upgrade` survives and `Connection`
/// becomes exactly `upgrade`.
pub fn strip(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Usually none of them is there (HTTP/1.1 keep-alive needs no `Connection`; an upstream's
    // `Connection: keep-alive` is the common exception): one pass over the names finds out,
    // instead of ten hashed removals of absent names on each request and response.
    let (mut connection, mut fixed) = (false, false);
    for name in headers.keys() {
        if name == CONNECTION {
            connection = true;
        } else if name == TRANSFER_ENCODING
            || name == TRAILER
            || name == TE
            || name == UPGRADE
            || HOP_BY_HOP.contains(name)
        {
            fixed = true;
        }
    }
    if connection {
        // The listed names are removed by `&str` (parsed on the stack): no `HeaderName` is
        // allocated for them. A token that is not a header name matches nothing.
        let values: Vec<HeaderValue> = headers.get_all(CONNECTION).iter().cloned().collect();
        headers.remove(CONNECTION);
        for token in values.iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')) {
            let token = token.trim();
            if !(keep_upgrade && token.eq_ignore_ascii_case("upgrade")) {
                headers.remove(token);
            }
        }
    }
    if fixed {
        headers.remove(TRANSFER_ENCODING);
        headers.remove(TRAILER);
        // `TE: trailers` is allowed end-to-end on HTTP/2 (gRPC); anything else is hop-by-hop.
        if headers.get(TE).is_some_and(|v| v != "trailers") {
            headers.remove(TE);
        }
        for name in &HOP_BY_HOP {
            headers.remove(name);
        }
        if !keep_upgrade {
            headers.remove(UPGRADE);
        }
    }
    if keep_upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_listed_and_fixed_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("keep-alive, X-Secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert(TE, HeaderValue::from_static("gzip"));
        h.insert(UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip(&mut h, false);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-keep"));
    }

    /// `strip` first looks for the names in one pass and removes only when one is there: each
    /// must be found alone, without a `Connection` header naming it.
    #[test]
    fn each_fixed_hop_header_is_removed_on_its_own() {
        let fixed = [TRANSFER_ENCODING, TRAILER, TE, UPGRADE].into_iter().chain(HOP_BY_HOP.iter().cloned());
        for name in fixed {
            let mut h = HeaderMap::new();
            h.insert(name.clone(), HeaderValue::from_static("x"));
            h.insert("x-keep", HeaderValue::from_static("1"));
            strip(&mut h, false);
            assert_eq!(h.keys().collect::<Vec<_>>(), ["x-keep"], "{name}");
        }
        let mut h = HeaderMap::new();
        h.insert(TE, HeaderValue::from_static("trailers"));
        strip(&mut h, false);
        assert_eq!(h[TE], "trailers", "TE: trailers passes (gRPC)");
    }

    #[test]
    fn upgrade_is_kept_for_websocket() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(UPGRADE, HeaderValue::from_static("websocket"));
        assert!(is_upgrade(Version::HTTP_11, &h));
        assert!(!is_upgrade(Version::HTTP_2, &h));
        strip(&mut h, true);
        assert_eq!(h[UPGRADE], "websocket");
        assert_eq!(h[CONNECTION], "upgrade");
    }
}
