//! The request's host: exactly one, well-formed (RFC 9112 §3.2, RFC 3986 §3.2.2).
//!
//! Routing picks the app by host, and with `preserve_host` the client's `Host` goes upstream.
//! The threat is a host that the gateway and the upstream (or a cache, or an app building
//! absolute URLs) read differently: `portal.local:@evil.com` routes to `portal.local` here and
//! is `evil.com` to a URL parser; two `Host` headers let each side pick another one; HTTP/1.1
//! without `Host` leaves the choice to defaults. All are refused with 400, as RFC 9112 §3.2
//! requires of a server.

use std::fmt;

use http::header::HOST;
use http::{HeaderMap, HeaderValue, Uri, Version};

/// Longest accepted host (with port), bytes: a DNS name is at most 253.
const MAX_HOST_LEN: usize = 261;

/// Why the request's host was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    /// HTTP/1.1 (or HTTP/2) request without `Host` (or `:authority`).
    Missing,
    /// More than one `Host` header.
    Duplicate,
    /// The host is not `reg-name / IPv4 / [IPv6]` with an optional numeric port.
    Malformed,
    /// The request target's authority and `Host` disagree (HTTP/2 `:authority`).
    Conflicting,
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HostError::Missing => "request has no Host",
            HostError::Duplicate => "request has more than one Host header",
            HostError::Malformed => "Host is malformed",
            HostError::Conflicting => "Host and the request target's authority differ",
        })
    }
}

impl std::error::Error for HostError {}

/// Checks the request's host and leaves exactly one valid `Host` header: HTTP/2's
/// `:authority` (or an HTTP/1.1 absolute-form target, RFC 9112 §3.2.2) is copied into it.
///
/// # Errors
///
/// The [`HostError`] naming the problem; the request must then be answered with 400.
pub fn normalize(version: Version, uri: &Uri, headers: &mut HeaderMap) -> Result<(), HostError> {
    let mut values = headers.get_all(HOST).iter();
    let header = values.next();
    if values.next().is_some() {
        return Err(HostError::Duplicate);
    }
    let authority = uri.authority().map(|a| a.as_str());
    match (authority, header) {
        (Some(authority), Some(header)) if version == Version::HTTP_2 => {
            if !authority.as_bytes().eq_ignore_ascii_case(header.as_bytes()) {
                return Err(HostError::Conflicting);
            }
            valid(header.as_bytes())
        }
        // HTTP/2 `:authority` alone, or the HTTP/1.1 absolute form, whose authority wins
        // over Host (RFC 9112 §3.2.2): copied into `Host` for every later step.
        (Some(authority), _) => {
            valid(authority.as_bytes())?;
            headers.insert(HOST, HeaderValue::from_str(authority).map_err(|_| HostError::Malformed)?);
            Ok(())
        }
        // The common case: one Host header, checked in place.
        (None, Some(header)) => valid(header.as_bytes()),
        // HTTP/1.0 may omit Host; such requests reach only host-less apps.
        (None, None) if version <= Version::HTTP_10 => Ok(()),
        (None, None) => Err(HostError::Missing),
    }
}

fn valid(host: &[u8]) -> Result<(), HostError> {
    if is_valid(host) {
        Ok(())
    } else {
        Err(HostError::Malformed)
    }
}

/// `host [ ":" port ]` with host a DNS-style reg-name (letters, digits, `-`, `.`, `_`), an IPv4
/// address, or a bracketed IPv6 address; no userinfo, no percent-encoding, no empty port.
pub fn is_valid(value: &[u8]) -> bool {
    if value.is_empty() || value.len() > MAX_HOST_LEN {
        return false;
    }
    let (host, port) = if value.first() == Some(&b'[') {
        let Some(end) = value.iter().position(|b| *b == b']') else { return false };
        let inner = &value[1..end];
        let valid_v6 = std::str::from_utf8(inner).is_ok_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok());
        if !valid_v6 {
            return false;
        }
        match &value[end + 1..] {
            [] => (&value[..=end], None),
            [b':', port @ ..] => (&value[..=end], Some(port)),
            _ => return false,
        }
    } else {
        match value.iter().position(|b| *b == b':') {
            Some(colon) => (&value[..colon], Some(&value[colon + 1..])),
            None => (value, None),
        }
    };
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.iter().all(u8::is_ascii_digit)
            && p.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')) <= 65535
    });
    let host_ok = host.first() == Some(&b'[')
        || (!host.is_empty()
            && host.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
            && !host.starts_with(b".")
            && !host.windows(2).any(|w| w == b".."));
    port_ok && host_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(version: Version, uri: &str, hosts: &[&str]) -> Result<String, HostError> {
        let mut headers = HeaderMap::new();
        for h in hosts {
            headers.append(HOST, HeaderValue::from_str(h).unwrap());
        }
        normalize(version, &uri.parse().unwrap(), &mut headers)?;
        Ok(headers.get(HOST).map(|h| h.to_str().unwrap().to_owned()).unwrap_or_default())
    }

    #[test]
    fn well_formed_hosts_pass() {
        for h in ["portal.local", "portal.local:8443", "127.0.0.1:80", "[::1]", "[::1]:8080", "a_b.cz", "LOCALHOST"] {
            assert!(is_valid(h.as_bytes()), "{h}");
        }
    }

    #[test]
    fn malformed_hosts_are_refused() {
        for h in [
            "portal.local:@evil.com",
            "user@portal.local",
            "portal.local:",
            "portal.local:99999",
            "portal.local:80:80",
            "portal.local/x",
            "portal%2elocal",
            "[::1",
            "[zz]",
            "[::1]x",
            ".portal",
            "a..b",
            "",
            "portal local",
        ] {
            assert!(!is_valid(h.as_bytes()), "{h:?}");
        }
    }

    #[test]
    fn host_count_and_version_rules() {
        assert_eq!(run(Version::HTTP_11, "/", &["a.cz"]), Ok("a.cz".into()));
        assert_eq!(run(Version::HTTP_11, "/", &[]), Err(HostError::Missing));
        assert_eq!(run(Version::HTTP_10, "/", &[]), Ok(String::new()));
        assert_eq!(run(Version::HTTP_11, "/", &["a.cz", "b.cz"]), Err(HostError::Duplicate));
        assert_eq!(run(Version::HTTP_11, "/", &["portal.local:@evil.com"]), Err(HostError::Malformed));
        // HTTP/1.1 absolute form: the target's authority replaces Host.
        assert_eq!(run(Version::HTTP_11, "http://b.cz/x", &["a.cz"]), Ok("b.cz".into()));
        // HTTP/2: :authority alone, or equal to Host.
        assert_eq!(run(Version::HTTP_2, "https://b.cz/x", &[]), Ok("b.cz".into()));
        assert_eq!(run(Version::HTTP_2, "https://b.cz/x", &["B.cz"]), Ok("B.cz".into()));
        assert_eq!(run(Version::HTTP_2, "https://b.cz/x", &["a.cz"]), Err(HostError::Conflicting));
        assert_eq!(run(Version::HTTP_2, "/x", &[]), Err(HostError::Missing));
    }
}
