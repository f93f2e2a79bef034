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

/// Whether `name` is `Connection` or one of the hop-by-hop headers `strip` removes by name
/// (`HOP_BY_HOP` and the standard ones; the test below checks each is matched).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "transfer-encoding"
            | "trailer"
            | "te"
            | "upgrade"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "http2-settings"
    )
}

/// Removes hop-by-hop headers. With `keep_upgrade`, `Upgrade` survives and `Connection`
/// becomes exactly `upgrade`.
///
/// Most messages carry none of them, or only `Connection: keep-alive`: a pass over the (few)
/// names present decides whether the ten hashed look-ups by name have anything to remove.
pub fn strip(headers: &mut HeaderMap, keep_upgrade: bool) {
    if headers.keys().any(is_hop_by_hop) {
        strip_present(headers, keep_upgrade);
    }
    if keep_upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

fn strip_present(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Usually absent (HTTP/1.1 keep-alive needs no `Connection`): no list to build then.
    if headers.contains_key(CONNECTION) {
        remove_listed(headers, keep_upgrade);
        headers.remove(CONNECTION);
        // `Connection: keep-alive` (what most upstreams send) named the only one.
        if !headers.keys().any(is_hop_by_hop) {
            return;
        }
    }
    headers.remove(TRANSFER_ENCODING);
    headers.remove(TRAILER);
    // `TE: trailers` is allowed end-to-end on HTTP/2 (gRPC); anything else is hop-by-hop.
    if headers.get(TE).is_some_and(|v| v != "trailers") {
        headers.remove(TE);
    }
    for name in HOP_BY_HOP.iter() {
        headers.remove(name);
    }
    if !keep_upgrade {
        headers.remove(UPGRADE);
    }
}

/// Removes the headers `Connection` names (not `Connection` itself).
fn remove_listed(headers: &mut HeaderMap, keep_upgrade: bool) {
    // One value naming one header (`keep-alive`, `close`, `upgrade`: nearly every message
    // that has the header) needs no list; `keep-alive` not even a parse.
    let mut values = headers.get_all(CONNECTION).iter();
    let single = match (values.next(), values.next()) {
        (Some(only), None) if !only.as_bytes().contains(&b',') => Some(only.as_bytes().trim_ascii()),
        _ => None,
    };
    if let Some(token) = single {
        let name = if token.eq_ignore_ascii_case(b"keep-alive") {
            Some(HOP_BY_HOP[0].clone())
        } else {
            HeaderName::from_bytes(token).ok()
        };
        if let Some(name) = name.filter(|n| !(keep_upgrade && n == UPGRADE)) {
            headers.remove(&name);
        }
        return;
    }
    // The listed names are removed by `&str` (parsed on the stack): no `HeaderName` is
    // allocated for them. A token that is not a header name matches nothing.
    let values: Vec<HeaderValue> = headers.get_all(CONNECTION).iter().cloned().collect();
    for token in values.iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')) {
        let token = token.trim();
        if !(keep_upgrade && token.eq_ignore_ascii_case("upgrade")) {
            headers.remove(token);
        }
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
    fn each_fixed_hop_header_is_removed_even_when_it_is_the_only_one() {
        let fixed = [CONNECTION, TRANSFER_ENCODING, TRAILER, TE, UPGRADE].into_iter().chain(HOP_BY_HOP.iter().cloned());
        for name in fixed {
            for connection in [None, Some("keep-alive")] {
                let mut h = HeaderMap::new();
                h.insert(name.clone(), HeaderValue::from_static("x"));
                h.insert("x-keep", HeaderValue::from_static("1"));
                if let Some(listed) = connection {
                    h.append(CONNECTION, HeaderValue::from_static(listed));
                }
                strip(&mut h, false);
                assert!(!h.contains_key(&name), "{name} was forwarded (Connection: {connection:?})");
                assert!(!h.contains_key(CONNECTION));
                assert!(h.contains_key("x-keep"), "stripping {name} removed an end-to-end header");
            }
        }
        // `TE: trailers` is the one end-to-end use of a hop-by-hop name.
        let mut h = HeaderMap::new();
        h.insert(TE, HeaderValue::from_static("trailers"));
        strip(&mut h, false);
        assert_eq!(h[TE], "trailers");
    }

    /// The headers `lines` (name, value; repeated names appended) after `strip`.
    fn stripped(lines: &[(&'static str, &'static str)], keep_upgrade: bool) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in lines {
            h.append(*name, HeaderValue::from_static(value));
        }
        strip(&mut h, keep_upgrade);
        h
    }

    #[test]
    fn a_single_connection_token_and_one_token_per_line_are_removed_too() {
        let spoof = [("connection", " X-Auth-Subject "), ("x-auth-subject", "spoofed"), ("keep-alive", "timeout=5")];
        let h = stripped(&spoof, false);
        assert!(h.is_empty(), "{h:?}");

        let h = stripped(&[("connection", "Keep-Alive"), ("keep-alive", "timeout=5"), ("x-keep", "1")], false);
        assert_eq!(h.keys().collect::<Vec<_>>(), ["x-keep"]);

        // Two lines, one name each: both count.
        let h = stripped(&[("connection", "x-one"), ("connection", "x-two"), ("x-one", "1"), ("x-two", "2")], false);
        assert!(h.is_empty(), "{h:?}");

        // `Connection: upgrade` on a kept upgrade names the one header that stays.
        let h = stripped(&[("connection", "upgrade"), ("upgrade", "websocket")], true);
        assert_eq!(h[UPGRADE], "websocket");
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
