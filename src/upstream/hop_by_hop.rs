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
const HOP_BY_HOP: [HeaderName; 5] = [
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
    // Usually absent (HTTP/1.1 keep-alive needs no `Connection`): no list to build then.
    if headers.contains_key(CONNECTION) {
        let listed: Vec<HeaderName> = headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .collect();
        for name in listed {
            if !(keep_upgrade && name == UPGRADE) {
                headers.remove(&name);
            }
        }
        headers.remove(CONNECTION);
    }
    headers.remove(TRANSFER_ENCODING);
    headers.remove(TRAILER);
    // `TE: trailers` is allowed end-to-end on HTTP/2 (gRPC); anything else is hop-by-hop.
    if headers.get(TE).is_some_and(|v| v != "trailers") {
        headers.remove(TE);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    if keep_upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(UPGRADE);
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
