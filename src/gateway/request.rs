//! Per-request facts the whole pipeline shares: request id, client address, language, and
//! cookie/forwarding helpers.
//!
//! `X-Forwarded-*` and `X-Request-Id` are attacker-controlled unless the direct peer is a
//! configured trusted proxy; only then are they believed (and appended to), never otherwise.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use cookie::{Cookie, SameSite};
use http::header::{ACCEPT, COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use ipnet::IpNet;

use crate::pages::Lang;

/// `X-Request-Id`, parsed once (a `&str` name is parsed and validated on every map call).
pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// What the listener knows about the connection.
#[derive(Clone, Copy, Debug)]
pub struct ConnInfo {
    /// Direct peer.
    pub peer: SocketAddr,
    /// Whether the client connection is TLS.
    pub tls: bool,
}

/// Facts about one request, computed once at the top of the pipeline.
#[derive(Clone, Debug)]
pub struct RequestInfo {
    /// Request id (generated, or propagated from a trusted proxy).
    pub request_id: HeaderValue,
    /// Client address (the direct peer, or from `X-Forwarded-For` behind trusted proxies).
    pub client_ip: IpAddr,
    /// Whether the direct peer is a trusted proxy.
    pub from_trusted_proxy: bool,
    /// `Accept-Language`, parsed only when a page is rendered (not on the proxy hot path).
    accept_language: Option<HeaderValue>,
    /// `Accept`, likewise.
    accept: Option<HeaderValue>,
    /// Where an error page's "home page" link leads: an app of this host (see
    /// `Gateway::home_for_host`); `None` omits the link rather than offer one that 404s.
    home: Option<std::sync::Arc<str>>,
}

impl RequestInfo {
    /// Computes the request facts.
    pub fn new(headers: &HeaderMap, conn: &ConnInfo, trusted: &[IpNet]) -> RequestInfo {
        let from_trusted_proxy = is_trusted(conn.peer.ip(), trusted);
        // Looked up only when it may be believed (one hashed lookup less per request).
        let believed = if from_trusted_proxy { headers.get(X_REQUEST_ID) } else { None };
        let request_id = believed
            .filter(|v| v.len() <= 128 && v.as_bytes().iter().all(|b| b.is_ascii_graphic()))
            .cloned()
            .unwrap_or_else(new_request_id);
        let client_ip =
            if from_trusted_proxy { forwarded_client(headers, conn.peer.ip(), trusted) } else { conn.peer.ip() };
        RequestInfo {
            request_id,
            client_ip,
            from_trusted_proxy,
            accept_language: headers.get(http::header::ACCEPT_LANGUAGE).cloned(),
            accept: headers.get(ACCEPT).cloned(),
            home: None,
        }
    }

    /// The "home page" link target of this request's pages, if there is a real one.
    pub fn home(&self) -> Option<&str> {
        self.home.as_deref()
    }

    /// Sets the "home page" link target (by the pipeline, once the host or app is known).
    pub(crate) fn set_home(&mut self, home: Option<std::sync::Arc<str>>) {
        self.home = home;
    }

    /// Page language: Czech unless `Accept-Language` prefers English.
    pub fn lang(&self) -> Lang {
        Lang::from_accept_language(self.accept_language.as_ref().and_then(|v| v.to_str().ok()))
    }

    /// Whether the client accepts HTML (errors as pages, else JSON).
    pub fn wants_html(&self) -> bool {
        self.accept.as_ref().and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
    }

    /// The request id as text.
    pub fn id(&self) -> &str {
        self.request_id.to_str().unwrap_or("-")
    }

    /// The request's audit origin: its id and client address.
    pub fn audit_origin(&self) -> crate::audit::Origin<'_> {
        crate::audit::Origin::request(self.id(), self.client_ip)
    }
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = canonical_ip(ip);
    trusted.iter().any(|net| net.contains(&ip))
}

fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The rightmost address in `X-Forwarded-For` that is not a trusted proxy.
///
/// Entries are read right to left, each written by the hop after it; everything left of the
/// first untrusted one is the client's own text. An entry that is not an address (`ip:port`
/// and `[ip6]:port` count as their address) ends the walk at the trusted hop that wrote it:
/// skipping it would walk on into text the client wrote and let it pick the address its rate
/// limits are counted under.
fn forwarded_client(headers: &HeaderMap, peer: IpAddr, trusted: &[IpNet]) -> IpAddr {
    let entries: Vec<&str> =
        headers.get_all(X_FORWARDED_FOR).iter().map(|v| v.to_str().unwrap_or("")).flat_map(|v| v.split(',')).collect();
    let mut hop = peer;
    for entry in entries.iter().rev() {
        if is_trusted(hop, trusted) {
            let entry = entry.trim();
            match entry.parse::<IpAddr>().or_else(|_| entry.parse::<SocketAddr>().map(|a| a.ip())) {
                Ok(ip) => hop = ip,
                Err(_) => return hop,
            }
        } else {
            return hop;
        }
    }
    hop
}

/// A cheap unique request id: a per-process random prefix and a counter, `PREFIX-COUNTER` in
/// lowercase hex (12 digits, then the counter without leading zeros). Written by hand into a
/// stack buffer: `format!` cost more than the rest of [`RequestInfo::new`] together.
fn new_request_id() -> HeaderValue {
    static PREFIX: OnceLock<[u8; 12]> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        let id = crate::session::random_id();
        let mut hex = [0u8; 12];
        for (i, b) in id[..6].iter().enumerate() {
            hex[2 * i] = HEX[usize::from(b >> 4)];
            hex[2 * i + 1] = HEX[usize::from(b & 0xf)];
        }
        hex
    });
    request_id(prefix, COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// `prefix-n`, `n` in lowercase hex without leading zeros (what `format!("{prefix}-{n:x}")`
/// wrote).
fn request_id(prefix: &[u8; 12], n: u64) -> HeaderValue {
    let mut buf = [0u8; 12 + 1 + 16];
    buf[..12].copy_from_slice(prefix);
    buf[12] = b'-';
    let digits = (64 - n.leading_zeros()).div_ceil(4).max(1) as usize;
    for (i, slot) in buf[13..13 + digits].iter_mut().enumerate() {
        *slot = HEX[((n >> (4 * (digits - 1 - i))) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&buf[..13 + digits]).unwrap_or(HeaderValue::from_static("-"))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Whether the request is a top-level browser navigation (which may be redirected to a
/// login page) rather than an API call, XHR or form POST (which get 401).
pub fn is_navigation(method: &Method, headers: &HeaderMap) -> bool {
    (method == Method::GET || method == Method::HEAD) && navigates(headers)
}

/// Whether the headers are those of a browser loading a page into the window (a link, or a
/// form submitted: `Sec-Fetch-Mode: navigate`, else HTML accepted), not of a script's
/// `fetch`/XHR.
pub(crate) fn navigates(headers: &HeaderMap) -> bool {
    if headers.get("x-requested-with").is_some() {
        return false;
    }
    if let Some(mode) = headers.get("sec-fetch-mode") {
        return mode == "navigate";
    }
    headers.get(ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

/// What a request's `Cookie` headers hold under one name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CookieLookup<'a> {
    /// No cookie of that name.
    Absent,
    /// Exactly one.
    One(&'a str),
    /// Several: browsers send every cookie whose domain and path match, so a sibling
    /// subdomain can plant a second one (`Domain=.example.cz`) next to the gateway's own, and
    /// nothing in the request says which is which.
    Duplicated,
}

/// Looks a cookie up by name across every `Cookie` header. The pairs are split as the
/// `cookie` crate's `split_parse` splits them (see [`cookie_pairs`]; no percent-decoding: the
/// gateway's values are base64url); a pair without `=` or with an empty name is skipped. The
/// count across all headers is ours: that two of a name mean none is the point (see
/// [`CookieLookup::Duplicated`]).
pub fn lookup_cookie<'a>(headers: &'a HeaderMap, name: &str) -> CookieLookup<'a> {
    let mut found = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie_pairs)
        .filter(|(n, _)| *n == name)
        .map(|(_, value)| strip_quotes(value));
    match (found.next(), found.next()) {
        (None, _) => CookieLookup::Absent,
        (Some(value), None) => CookieLookup::One(value),
        (Some(_), Some(_)) => CookieLookup::Duplicated,
    }
}

/// The `(name, value)` pairs of one `Cookie` header value, read exactly as
/// `cookie::Cookie::split_parse` reads them (which this replaced on the hot path: it built a
/// `Cookie` per pair): split at `;`, name and value trimmed, a piece without `=` or with an
/// empty name skipped, the value as written (quotes kept).
fn cookie_pairs(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header.split(';').filter_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        let name = name.trim();
        (!name.is_empty()).then(|| (name, value.trim()))
    })
}

/// A cookie value without its optional surrounding `DQUOTE`s (RFC 6265 §4.1.1 `cookie-value`).
fn strip_quotes(value: &str) -> &str {
    value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value)
}

/// A cookie's value when the request carries exactly one of that name. Fails closed: two of
/// the same name count as none (see [`CookieLookup::Duplicated`]), so a planted cookie can
/// neither log the browser into another account nor stand in for its pre-login binding.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    match lookup_cookie(headers, name) {
        CookieLookup::One(value) => Some(value),
        CookieLookup::Absent | CookieLookup::Duplicated => None,
    }
}

/// Removes the named cookies from the `Cookie` headers (the gateway's own cookies must not
/// reach upstreams: a session id there would let the upstream act as the user). The others
/// are kept, as `name=value` pairs joined by `; ` in one header; headers are left untouched
/// when none of the names is there.
pub fn remove_cookies(headers: &mut HeaderMap, names: &[&str]) {
    // One pass: the kept pairs are collected while looking for the named ones (a header that is
    // not text counts as naming one: it is dropped, as it cannot be rewritten).
    let (mut named, mut kept) = (false, String::new());
    for value in headers.get_all(COOKIE) {
        let Ok(value) = value.to_str() else {
            named = true;
            continue;
        };
        for (name, value) in cookie_pairs(value) {
            if names.contains(&name) {
                named = true;
                continue;
            }
            if !kept.is_empty() {
                kept.push_str("; ");
            }
            kept.push_str(name);
            kept.push('=');
            kept.push_str(value);
        }
    }
    if !named {
        return;
    }
    headers.remove(COOKIE);
    if !kept.is_empty() {
        if let Ok(v) = HeaderValue::try_from(kept) {
            headers.insert(COOKIE, v);
        }
    }
}

/// Builds a `Set-Cookie` value with the gateway's fixed attributes:
/// `Path=/; HttpOnly; SameSite=Lax` and `Secure` unless disabled for plain-HTTP development.
/// Never a `Domain` (host-only; required for `__Host-` names, which `check` pairs with
/// `cookie_secure`).
pub fn set_cookie(name: &str, value: &str, max_age: Option<u64>, secure: bool) -> HeaderValue {
    set_cookie_with(name, value, max_age, secure, SameSite::Lax)
}

/// The pre-login cookie for an IdP that returns the browser with a cross-site POST
/// (`form_post`): `SameSite=Lax` cookies are not sent on such a POST, so this one is
/// `SameSite=None` (which browsers accept only with `Secure`; without `secure` it stays Lax).
/// The protocol's own binding (`state`) then carries the CSRF defence.
pub fn set_login_cookie_cross_site(name: &str, value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let same_site = if secure { SameSite::None } else { SameSite::Lax };
    set_cookie_with(name, value, Some(max_age), secure, same_site)
}

/// A `Set-Cookie` value that deletes the cookie.
pub fn clear_cookie(name: &str, secure: bool) -> HeaderValue {
    set_cookie(name, "", Some(0), secure)
}

/// One place that writes `Set-Cookie` (the `cookie` crate serialises it). A value that is not
/// a valid header (control characters) yields a harmless deletion of a cookie named `invalid`
/// rather than a panic; the gateway's own values are base64url and never hit it.
fn set_cookie_with(name: &str, value: &str, max_age: Option<u64>, secure: bool, same_site: SameSite) -> HeaderValue {
    let mut cookie = Cookie::build((name, value)).path("/").http_only(true).same_site(same_site).secure(secure);
    if let Some(age) = max_age {
        cookie = cookie.max_age(cookie::time::Duration::seconds(i64::try_from(age).unwrap_or(i64::MAX)));
    }
    HeaderValue::from_str(&cookie.to_string()).unwrap_or(HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// Sets `X-Forwarded-For/Proto/Host` for the upstream. From a trusted proxy the existing
/// chain is kept and the peer appended; from anyone else client-sent values are replaced.
pub fn set_forwarded(headers: &mut HeaderMap, conn: &ConnInfo, info: &RequestInfo, host: Option<HeaderValue>) {
    let (mut v4_text, v6_text);
    let peer = match canonical_ip(conn.peer.ip()) {
        IpAddr::V4(v4) => {
            v4_text = [0u8; 15];
            ipv4_text(v4, &mut v4_text)
        }
        IpAddr::V6(v6) => {
            v6_text = v6.to_string();
            v6_text.as_str()
        }
    };
    let forwarded_for = if info.from_trusted_proxy && headers.contains_key(&X_FORWARDED_FOR) {
        let existing: Vec<&str> = headers.get_all(&X_FORWARDED_FOR).iter().filter_map(|v| v.to_str().ok()).collect();
        HeaderValue::try_from(format!("{}, {peer}", existing.join(", ")))
    } else {
        HeaderValue::from_str(peer)
    };
    let proto_ok = info.from_trusted_proxy && headers.contains_key(&X_FORWARDED_PROTO);
    let host_ok = info.from_trusted_proxy && headers.contains_key(&X_FORWARDED_HOST);
    if let Ok(v) = forwarded_for {
        headers.insert(X_FORWARDED_FOR, v);
    }
    if !proto_ok {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(if conn.tls { "https" } else { "http" }));
    }
    if !host_ok {
        // The client's `Host`, as received (a header value already, nothing to re-check).
        match host {
            Some(v) => headers.insert(X_FORWARDED_HOST, v),
            None => headers.remove(X_FORWARDED_HOST),
        };
    }
    // RFC 7239 `Forwarded` is not produced by us; a client-sent one is untrusted.
    if !info.from_trusted_proxy {
        headers.remove(http::header::FORWARDED);
    }
}

/// An IPv4 address as text (what `Display` writes), into `buf`, by hand: `Ipv4Addr`'s `Display`
/// goes through the formatter (~1.3k instructions of a proxied request, more than the three
/// header inserts of [`set_forwarded`]).
fn ipv4_text(ip: std::net::Ipv4Addr, buf: &mut [u8; 15]) -> &str {
    let mut len = 0;
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            buf[len] = b'.';
            len += 1;
        }
        if octet >= 100 {
            buf[len] = b'0' + octet / 100;
            len += 1;
        }
        if octet >= 10 {
            buf[len] = b'0' + octet / 10 % 10;
            len += 1;
        }
        buf[len] = b'0' + octet % 10;
        len += 1;
    }
    // Digits and dots only.
    std::str::from_utf8(&buf[..len]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn conn(ip: &str) -> ConnInfo {
        ConnInfo { peer: SocketAddr::new(ip.parse().unwrap(), 1234), tls: false }
    }

    #[test]
    fn forwarded_headers_from_untrusted_peer_are_replaced() {
        let mut h =
            headers(&[("x-forwarded-for", "6.6.6.6"), ("x-forwarded-proto", "https"), ("x-request-id", "evil")]);
        let c = conn("10.0.0.5");
        let info = RequestInfo::new(&h, &c, &[]);
        assert_ne!(info.id(), "evil");
        assert_eq!(info.client_ip.to_string(), "10.0.0.5");
        set_forwarded(&mut h, &c, &info, Some(HeaderValue::from_static("gw.cz")));
        assert_eq!(h["x-forwarded-for"], "10.0.0.5");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "gw.cz");
    }

    #[test]
    fn forwarded_headers_from_trusted_proxy_are_kept_and_appended() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = headers(&[
            ("x-forwarded-for", "1.2.3.4, 10.0.0.9"),
            ("x-forwarded-proto", "https"),
            ("x-request-id", "abc-1"),
        ]);
        let c = conn("10.0.0.5");
        let info = RequestInfo::new(&h, &c, &trusted);
        assert_eq!(info.id(), "abc-1");
        assert_eq!(info.client_ip.to_string(), "1.2.3.4");
        set_forwarded(&mut h, &c, &info, Some(HeaderValue::from_static("gw.cz")));
        assert_eq!(h["x-forwarded-for"], "1.2.3.4, 10.0.0.9, 10.0.0.5");
        assert_eq!(h["x-forwarded-proto"], "https");
    }

    /// Issue 15 review (item 2): the per-address login-start limit is keyed on this address.
    /// An entry the proxy wrote in a form that does not parse as a bare address (with a port,
    /// as some load balancers write it, or garbage) was skipped, so the walk went on into the
    /// client-written part of the header and the client chose its own address (and escaped
    /// the limit). Now `ip:port` forms count as their address, and an entry that cannot be
    /// read ends the walk at the trusted hop that wrote it.
    #[test]
    fn a_client_cannot_choose_its_address_past_an_unreadable_proxy_entry() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let c = conn("10.0.0.5");
        let client = |xff: &str| RequestInfo::new(&headers(&[("x-forwarded-for", xff)]), &c, &trusted).client_ip;
        assert_eq!(client("6.6.6.6, 1.2.3.4:5678").to_string(), "1.2.3.4");
        assert_eq!(client("6.6.6.6, [2001:db8::1]:443").to_string(), "2001:db8::1");
        assert_eq!(client("6.6.6.6, unknown").to_string(), "10.0.0.5");
        assert_eq!(client("6.6.6.6, unknown, 10.0.0.9").to_string(), "10.0.0.9");
        assert_eq!(client("junk, 1.2.3.4, 10.0.0.9").to_string(), "1.2.3.4");
    }

    #[test]
    fn navigation_detection() {
        let nav = headers(&[("accept", "text/html,application/xhtml+xml")]);
        assert!(is_navigation(&Method::GET, &nav));
        assert!(!is_navigation(&Method::POST, &nav));
        assert!(!is_navigation(&Method::GET, &headers(&[("accept", "application/json")])));
        assert!(!is_navigation(
            &Method::GET,
            &headers(&[("accept", "text/html"), ("x-requested-with", "XMLHttpRequest")])
        ));
        assert!(!is_navigation(&Method::GET, &headers(&[("accept", "text/html"), ("sec-fetch-mode", "cors")])));
    }

    #[test]
    fn gateway_cookies_are_removed_others_kept() {
        let mut h = headers(&[("cookie", "a=1; aisgate_session=x; b=2"), ("cookie", "aisgate_login=y")]);
        assert_eq!(cookie(&h, "aisgate_login"), Some("y"));
        remove_cookies(&mut h, &["aisgate_session", "aisgate_login"]);
        assert_eq!(h.get_all(COOKIE).iter().count(), 1);
        assert_eq!(h[COOKIE], "a=1; b=2");
        let mut only = headers(&[("cookie", "aisgate_session=x")]);
        remove_cookies(&mut only, &["aisgate_session"]);
        assert!(only.get(COOKIE).is_none());
    }

    /// `cookie_pairs` replaced `cookie::Cookie::split_parse` (a `Cookie` built per pair) on the
    /// request path: it must read every header exactly as the crate does, odd ones included.
    #[test]
    fn cookie_pairs_read_headers_as_the_cookie_crate_does() {
        for header in [
            "",
            ";;",
            "a=1",
            "  a = 1 ; b=2;c=",
            "a=\"q\"; b=\"; \"c\"=3",
            "junk; =v; s=x=y; ;\t t\t=\tu\t",
            "k1.abc=def; aisgate_session=k1.AAAA.BBBB",
            "a=1;b",
        ] {
            let ours: Vec<(&str, &str)> = cookie_pairs(header).collect();
            let crate_pairs: Vec<(String, String)> = Cookie::split_parse(header)
                .filter_map(Result::ok)
                .map(|c| (c.name().to_owned(), c.value().to_owned()))
                .collect();
            let crate_pairs: Vec<(&str, &str)> = crate_pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            assert_eq!(ours, crate_pairs, "{header:?}");
        }
    }

    #[test]
    fn a_cookie_header_without_gateway_cookies_is_left_as_sent() {
        let mut h = headers(&[("cookie", "a=1;b ;  c=\"x\""), ("cookie", "xaisgate_session=1")]);
        remove_cookies(&mut h, &["aisgate_session"]);
        let left: Vec<&str> = h.get_all(COOKIE).iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(left, ["a=1;b ;  c=\"x\"", "xaisgate_session=1"]);
        // With one there, the rest is kept (quotes too) in one header.
        let mut h = headers(&[("cookie", "a=1;b ;  c=\"x\""), ("cookie", "aisgate_session=1; d=")]);
        remove_cookies(&mut h, &["aisgate_session"]);
        assert_eq!(h.get_all(COOKIE).iter().collect::<Vec<_>>(), [&HeaderValue::from_static("a=1; c=\"x\"; d=")]);
    }

    #[test]
    fn addresses_and_request_ids_are_written_as_display_and_format_wrote_them() {
        for ip in ["0.0.0.0", "1.2.3.4", "10.0.0.5", "99.100.101.255", "255.255.255.255", "127.0.0.1"] {
            let ip: std::net::Ipv4Addr = ip.parse().unwrap();
            assert_eq!(ipv4_text(ip, &mut [0u8; 15]), ip.to_string());
        }
        for (peer, forwarded_for) in [("::ffff:192.168.1.20", "192.168.1.20"), ("2001:db8::1", "2001:db8::1")] {
            let (mut h, c) = (HeaderMap::new(), conn(peer));
            let info = RequestInfo::new(&h, &c, &[]);
            set_forwarded(&mut h, &c, &info, None);
            assert_eq!(h["x-forwarded-for"], forwarded_for);
        }
        for n in [0, 1, 9, 10, 15, 16, 255, 256, 0xdead_beef, u64::MAX] {
            assert_eq!(request_id(b"0123456789ab", n), format!("0123456789ab-{n:x}").as_str());
        }
        let id = new_request_id();
        let (prefix, counter) = id.to_str().unwrap().split_once('-').unwrap();
        assert!(prefix.len() == 12 && prefix.bytes().all(|b| HEX.contains(&b)), "{id:?}");
        assert!(u64::from_str_radix(counter, 16).is_ok(), "{id:?}");
    }

    #[test]
    fn two_cookies_of_one_name_count_as_none() {
        let h = headers(&[("cookie", "a=1; aisgate_session=x"), ("cookie", "aisgate_session=y")]);
        assert_eq!(lookup_cookie(&h, "aisgate_session"), CookieLookup::Duplicated);
        assert_eq!(cookie(&h, "aisgate_session"), None);
        assert_eq!(cookie(&h, "a"), Some("1"));
        assert_eq!(lookup_cookie(&h, "b"), CookieLookup::Absent);
        // Also within one header, with quotes and stray separators.
        let one = headers(&[("cookie", "s=\"x\"; ;junk; =v; s=y")]);
        assert_eq!(lookup_cookie(&one, "s"), CookieLookup::Duplicated);
        let quoted = headers(&[("cookie", "junk; s=\"x\"; t=")]);
        assert_eq!(lookup_cookie(&quoted, "s"), CookieLookup::One("x"));
        assert_eq!(lookup_cookie(&quoted, "t"), CookieLookup::One(""));
        // Names are case-sensitive (RFC 6265): `S` is another cookie.
        assert_eq!(lookup_cookie(&headers(&[("cookie", "S=1; s=2")]), "s"), CookieLookup::One("2"));
    }

    #[test]
    fn set_cookie_has_secure_defaults() {
        let v = set_cookie("s", "v", None, true);
        assert_eq!(v, "s=v; HttpOnly; SameSite=Lax; Secure; Path=/");
        assert_eq!(clear_cookie("s", true), "s=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0");
        assert_eq!(set_cookie("s", "v", Some(60), false), "s=v; HttpOnly; SameSite=Lax; Path=/; Max-Age=60");
        // A value that cannot be a header never panics and never sets the cookie.
        assert_eq!(set_cookie("s", "a\r\nSet-Cookie: x=1", None, true), "invalid=; Max-Age=0");
    }

    /// What browsers require of a `__Host-` cookie (RFC 6265bis §4.1.3.2): `Secure`, `Path=/`,
    /// no `Domain`; read back with the same crate that wrote it.
    #[test]
    fn host_prefixed_cookies_carry_exactly_the_required_attributes() {
        for v in [
            set_cookie("__Host-s", "v", None, true),
            set_cookie("__Host-s", "v", Some(60), true),
            clear_cookie("__Host-s", true),
            set_login_cookie_cross_site("__Host-l", "v", 900, true),
        ] {
            let c = Cookie::parse(v.to_str().expect("ascii")).expect("parses");
            assert_eq!(c.secure(), Some(true), "{v:?}");
            assert_eq!(c.path(), Some("/"), "{v:?}");
            assert_eq!(c.domain(), None, "{v:?}");
            assert_eq!(c.http_only(), Some(true), "{v:?}");
            assert!(c.same_site().is_some(), "{v:?}");
        }
    }

    #[test]
    fn the_cross_site_login_cookie_is_samesite_none_only_when_secure() {
        let v = set_login_cookie_cross_site("l", "v", 900, true);
        assert_eq!(v, "l=v; HttpOnly; SameSite=None; Secure; Path=/; Max-Age=900");
        // Browsers refuse SameSite=None without Secure: plain-HTTP development keeps Lax.
        assert_eq!(
            set_login_cookie_cross_site("l", "v", 900, false),
            "l=v; HttpOnly; SameSite=Lax; Path=/; Max-Age=900"
        );
    }
}
