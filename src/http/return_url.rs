//! Validation of the post-login / post-logout "return URL".
//!
//! After a login or logout the gateway redirects the browser to a URL that
//! travelled through the browser (a query parameter or the pre-login cookie),
//! so it is attacker-controlled input. The threat is an open redirect: a link
//! to the trusted gateway that ends on `https://evil.example` after login,
//! which phishing campaigns exploit. Browsers are very forgiving when they
//! resolve a `Location` (`//evil`, `/\evil`, `\\evil`, `/\t/evil` all become
//! another host; `javascript:` executes), and applications behind the gateway
//! sometimes decode a path once or twice before redirecting again
//! (`/%2F%2Fevil.com`, `/%252F%252Fevil.com`). [`ReturnUrl`] therefore only
//! accepts a strict subset: a same-origin absolute path with an optional
//! query, ASCII only, and nothing whose meaning could change under decoding.
//!
//! Accepted: `/`, `/a/b?x=1&y=%C3%A1`, `/app/?q=a%20b`, `/my%20docs/`.
//!
//! Decisions:
//! - Must start with exactly one `/`; anything with a scheme, a
//!   protocol-relative prefix (any two of `/` and `\`) or no leading `/` is
//!   refused.
//! - `#` is refused (no fragment; the gateway never needs one and a fragment
//!   cannot be observed server-side anyway).
//! - Raw `\` is refused everywhere (browsers treat it as `/` in paths).
//! - Raw whitespace (space, tab, CR, LF, FF) and other raw control characters
//!   are refused everywhere. Percent-encoded control characters
//!   (`%00`–`%1F`, `%7F`, which includes `%09`, `%0A`, `%0D`) are refused
//!   everywhere. An encoded space `%20` is allowed in both path and query: it
//!   is the correct encoding of a space, browsers never decode it while
//!   resolving, and it cannot form a scheme or a `//`.
//! - In the **path**: `%2F` and `%5C` are refused, a double-encoded dot, slash,
//!   backslash or control character (`%25` followed by an escape of one of
//!   those, e.g. `%252F`, also when the hex digits are escaped themselves,
//!   `%25%32%46`: the path is decoded to a fixed point) is refused, and dot segments (`.`, `..`, also as
//!   `%2e` or with `;` parameters) are refused, since a legitimate return URL
//!   is a canonical request path and never contains them.
//! - In the **query**: `%2F`, `%5C` and `%25…` are allowed, because encoded
//!   slashes are routine in form-encoded values and browsers never decode the
//!   query while resolving a redirect.
//! - Raw non-ASCII is refused (it must arrive percent-encoded), as are the
//!   characters RFC 3986 never allows raw: `"` `<` `>` `` ` `` `{` `|` `}` `^`.
//! - At most [`MAX_RETURN_URL_LEN`] bytes.

use super::{escape_at, hex_val, is_control};
use std::fmt;

/// Maximum accepted length of a return URL, in bytes.
pub const MAX_RETURN_URL_LEN: usize = 2048;

/// A validated same-origin relative reference: an absolute path with an
/// optional query, never a fragment. Safe to put in a `Location` header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReturnUrl(String);

/// Why a candidate return URL was refused by [`ReturnUrl::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReturnUrlError {
    /// The input is empty.
    Empty,
    /// The input is longer than [`MAX_RETURN_URL_LEN`] bytes.
    TooLong,
    /// The input has a scheme (`https:`, `javascript:`, `data:` …).
    AbsoluteUrl,
    /// The input starts with two slash-like characters (`//`, `/\`, `\\`,
    /// `\/`), which browsers resolve to another host.
    ProtocolRelative,
    /// The input does not start with `/`.
    NotAbsolutePath,
    /// The input contains a raw `\`.
    Backslash,
    /// The path contains `%2F` (an encoded `/`).
    EncodedSlash,
    /// The path contains `%5C` (an encoded `\`).
    EncodedBackslash,
    /// The path contains a double-encoded dot, slash, backslash or control
    /// character (e.g. `%252F`).
    DoubleEncoded,
    /// The path contains a `.` or `..` segment (raw, encoded, or with `;`
    /// parameters).
    DotSegment,
    /// The input contains raw whitespace (space, tab, CR, LF, FF).
    Whitespace,
    /// The input contains a raw control character other than whitespace.
    ControlCharacter,
    /// The input contains a percent-encoded control character
    /// (`%00`–`%1F`, `%7F`).
    EncodedControlCharacter,
    /// The input contains a raw non-ASCII character.
    NonAscii,
    /// The input contains a fragment (`#`).
    Fragment,
    /// The input contains a character never allowed raw in a URL
    /// (`"` `<` `>` `` ` `` `{` `|` `}` `^`).
    InvalidCharacter,
    /// A `%` is not followed by two hexadecimal digits.
    BadPercentEncoding,
}

impl fmt::Display for ReturnUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msg = match self {
            ReturnUrlError::Empty => "return URL is empty",
            ReturnUrlError::TooLong => "return URL is too long",
            ReturnUrlError::AbsoluteUrl => "return URL has a scheme",
            ReturnUrlError::ProtocolRelative => "return URL is protocol-relative",
            ReturnUrlError::NotAbsolutePath => "return URL does not start with '/'",
            ReturnUrlError::Backslash => "return URL contains a backslash",
            ReturnUrlError::EncodedSlash => "return URL path contains an encoded slash",
            ReturnUrlError::EncodedBackslash => "return URL path contains an encoded backslash",
            ReturnUrlError::DoubleEncoded => "return URL path contains double encoding",
            ReturnUrlError::DotSegment => "return URL path contains a dot segment",
            ReturnUrlError::Whitespace => "return URL contains whitespace",
            ReturnUrlError::ControlCharacter => "return URL contains a control character",
            ReturnUrlError::EncodedControlCharacter => "return URL contains an encoded control character",
            ReturnUrlError::NonAscii => "return URL contains a non-ASCII character",
            ReturnUrlError::Fragment => "return URL contains a fragment",
            ReturnUrlError::InvalidCharacter => "return URL contains an invalid character",
            ReturnUrlError::BadPercentEncoding => "return URL contains invalid percent-encoding",
        };
        f.write_str(msg)
    }
}

impl std::error::Error for ReturnUrlError {}

fn is_slash_like(b: u8) -> bool {
    b == b'/' || b == b'\\'
}

/// Whether `s` (a path segment) is `.` or `..` once `%2e` is decoded and any
/// `;` parameters are removed.
fn is_dot_segment(segment: &str) -> bool {
    let head = segment.split(';').next().unwrap_or(segment);
    let decoded = head.to_ascii_lowercase().replace("%2e", ".");
    decoded == "." || decoded == ".."
}

impl ReturnUrl {
    /// Validates a candidate return URL. See the module documentation for
    /// exactly what is accepted.
    ///
    /// # Errors
    ///
    /// Returns the [`ReturnUrlError`] describing the first problem found;
    /// callers normally fall back to [`ReturnUrl::root`].
    pub fn parse(raw: &str) -> Result<ReturnUrl, ReturnUrlError> {
        let bytes = raw.as_bytes();
        let Some(&first) = bytes.first() else {
            return Err(ReturnUrlError::Empty);
        };
        if bytes.len() > MAX_RETURN_URL_LEN {
            return Err(ReturnUrlError::TooLong);
        }
        if bytes.len() >= 2 && is_slash_like(first) && is_slash_like(bytes[1]) {
            return Err(ReturnUrlError::ProtocolRelative);
        }
        if first != b'/' {
            let before_delim = raw.split(['/', '\\', '?', '#']).next().unwrap_or(raw);
            if before_delim.contains(':') {
                return Err(ReturnUrlError::AbsoluteUrl);
            }
            if first == b'\\' {
                return Err(ReturnUrlError::Backslash);
            }
            return Err(ReturnUrlError::NotAbsolutePath);
        }

        let mut in_query = false;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match b {
                b'?' => in_query = true,
                b'#' => return Err(ReturnUrlError::Fragment),
                b'\\' => return Err(ReturnUrlError::Backslash),
                b' ' | b'\t' | b'\n' | b'\r' | 0x0C => return Err(ReturnUrlError::Whitespace),
                b if is_control(b) => return Err(ReturnUrlError::ControlCharacter),
                b if !b.is_ascii() => return Err(ReturnUrlError::NonAscii),
                b'"' | b'<' | b'>' | b'`' | b'{' | b'|' | b'}' | b'^' => return Err(ReturnUrlError::InvalidCharacter),
                b'%' => {
                    let Some(v) = escape_at(bytes, i) else {
                        return Err(ReturnUrlError::BadPercentEncoding);
                    };
                    if is_control(v) {
                        return Err(ReturnUrlError::EncodedControlCharacter);
                    }
                    if !in_query {
                        match v {
                            b'/' => return Err(ReturnUrlError::EncodedSlash),
                            b'\\' => return Err(ReturnUrlError::EncodedBackslash),
                            b'%' => {
                                // "%25" followed by the hex digits of a
                                // dangerous character: "%252F" etc.
                                let h2 = bytes.get(i + 3).copied().and_then(hex_val);
                                let l2 = bytes.get(i + 4).copied().and_then(hex_val);
                                if let (Some(h2), Some(l2)) = (h2, l2) {
                                    let inner = (h2 << 4) | l2;
                                    if matches!(inner, b'.' | b'/' | b'\\') || is_control(inner) {
                                        return Err(ReturnUrlError::DoubleEncoded);
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                    i += 3;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }

        let path = raw.split('?').next().unwrap_or(raw);
        if path.split('/').skip(1).any(is_dot_segment) {
            return Err(ReturnUrlError::DotSegment);
        }
        // Decoded again and again (escaped hex digits: `%25%32%46` is `%252F` once decoded),
        // the path must keep its structure: an app that decodes before redirecting must not
        // find `//evil.com` in it.
        if !super::decoding_is_inert(path.as_bytes()) {
            return Err(ReturnUrlError::DoubleEncoded);
        }
        Ok(ReturnUrl(raw.to_owned()))
    }

    /// The root path `/`, the fallback when no valid return URL is available.
    pub fn root() -> ReturnUrl {
        ReturnUrl("/".to_owned())
    }

    /// The validated URL (path plus optional query).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path part (everything before the first `?`).
    pub fn path(&self) -> &str {
        self.0.split('?').next().unwrap_or(&self.0)
    }

    /// The query part without the leading `?`, if a `?` is present.
    pub fn query(&self) -> Option<&str> {
        self.0.split_once('?').map(|(_, q)| q)
    }

    /// Consumes the URL and returns the validated string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl Default for ReturnUrl {
    /// Same as [`ReturnUrl::root`].
    fn default() -> Self {
        ReturnUrl::root()
    }
}

impl fmt::Display for ReturnUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ReturnUrl {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(raw: &str) {
        match ReturnUrl::parse(raw) {
            Ok(u) => assert_eq!(u.as_str(), raw),
            Err(e) => panic!("{raw:?} unexpectedly refused: {e}"),
        }
    }

    fn refused(raw: &str) -> ReturnUrlError {
        match ReturnUrl::parse(raw) {
            Ok(u) => panic!("{raw:?} unexpectedly accepted as {u}"),
            Err(e) => e,
        }
    }

    #[test]
    fn legitimate_same_origin_paths_are_accepted_verbatim() {
        for u in [
            "/",
            "/a",
            "/a/b",
            "/a/b/",
            "/a/b?x=1&y=%C3%A1",
            "/app/?q=a%20b",
            "/my%20docs/",
            "/a?",
            "/a?x=1?y=2",
            "/a;b=c/d",
            "/.well-known/security.txt",
            "/a/...",
            "/a/..b",
            "/a%3Fb",
            "/a%23b",
            "/a:b@c!$&'()*+,=~-_",
            "/%C3%A1",
        ] {
            accepted(u);
        }
    }

    #[test]
    fn root_is_slash() {
        assert_eq!(ReturnUrl::root().as_str(), "/");
        assert_eq!(ReturnUrl::default(), ReturnUrl::root());
    }

    #[test]
    fn empty_input_is_refused() {
        assert_eq!(refused(""), ReturnUrlError::Empty);
    }

    #[test]
    fn absolute_urls_and_schemes_are_refused() {
        for u in [
            "https://evil.example/",
            "http://evil.example",
            "HTTPS://evil.example",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,x",
            "vbscript:x",
            "mailto:a@b",
            "ftp://x",
            "https:evil.example",
            "java\tscript:alert(1)",
        ] {
            assert_eq!(refused(u), ReturnUrlError::AbsoluteUrl, "{u:?}");
        }
    }

    #[test]
    fn protocol_relative_forms_are_refused() {
        for u in [
            "//evil.example",
            "//evil.example/path",
            "/\\evil.example",
            "\\\\evil.example",
            "\\/evil.example",
            "///evil.example",
            "//",
        ] {
            assert_eq!(refused(u), ReturnUrlError::ProtocolRelative, "{u:?}");
        }
    }

    #[test]
    fn inputs_not_starting_with_slash_are_refused() {
        for u in ["evil.example", "a/b", "?x=1", ".", "./a", "../a", "%2F%2Fevil.com", " /a"] {
            assert_eq!(refused(u), ReturnUrlError::NotAbsolutePath, "{u:?}");
        }
    }

    #[test]
    fn leading_single_backslash_is_refused() {
        assert_eq!(refused("\\evil"), ReturnUrlError::Backslash);
    }

    #[test]
    fn raw_backslash_anywhere_is_refused() {
        for u in ["/a\\b", "/a/\\evil", "/a?x=\\", "/a\\..\\..\\evil"] {
            assert_eq!(refused(u), ReturnUrlError::Backslash, "{u:?}");
        }
    }

    #[test]
    fn encoded_slash_in_path_is_refused() {
        for u in ["/%2F%2Fevil.com", "/%2f%2fevil.com", "/a%2Fb", "/%2F"] {
            assert_eq!(refused(u), ReturnUrlError::EncodedSlash, "{u:?}");
        }
    }

    #[test]
    fn encoded_backslash_in_path_is_refused() {
        for u in ["/%5Cevil", "/%5cevil", "/a%5Cb"] {
            assert_eq!(refused(u), ReturnUrlError::EncodedBackslash, "{u:?}");
        }
    }

    #[test]
    fn double_encoded_slash_backslash_dot_or_control_in_path_is_refused() {
        for u in [
            "/%252F%252Fevil.com",
            "/%252f%252fevil.com",
            "/%255Cevil",
            "/%255cevil",
            "/a/%252e%252e/b",
            "/a%2500",
            "/a%250D%250A",
        ] {
            assert_eq!(refused(u), ReturnUrlError::DoubleEncoded, "{u:?}");
        }
    }

    #[test]
    fn double_encoding_with_escaped_hex_digits_in_path_is_refused() {
        // Issue 9 item 5: `%25%32%46` is `%252F` after one decoding, `/` after two.
        for u in ["/%25%32%46%25%32%46evil.com", "/%25%35%43evil", "/a/%25%32%65%25%32%65/b", "/a%25%30%30"] {
            assert_eq!(refused(u), ReturnUrlError::DoubleEncoded, "{u:?}");
        }
    }

    #[test]
    fn other_double_encoding_in_path_is_accepted() {
        accepted("/a%2520b");
        accepted("/100%25");
    }

    #[test]
    fn encoded_slashes_and_double_encoding_in_query_are_accepted() {
        accepted("/login?next=%2Fapp%2Fx");
        accepted("/a?d=1%2F2%2F2024");
        accepted("/a?x=%5C");
        accepted("/a?x=%252F");
        accepted("/a?x=%2F%2Fevil.com");
    }

    #[test]
    fn dot_segments_in_path_are_refused() {
        for u in [
            "/.",
            "/./",
            "/..",
            "/../",
            "/a/../b",
            "/a/./b",
            "/a/..",
            "/..//evil.com",
            "/%2e%2e/x",
            "/%2E%2E/x",
            "/.%2e/x",
            "/%2e/x",
            "/a/..;/b",
            "/a/.;x/b",
        ] {
            assert_eq!(refused(u), ReturnUrlError::DotSegment, "{u:?}");
        }
    }

    #[test]
    fn dots_in_query_are_accepted() {
        accepted("/a?x=../..");
        accepted("/a?path=/../etc");
    }

    #[test]
    fn raw_whitespace_is_refused() {
        for u in ["/a b", "/a\tb", "/\t/evil.com", "/a\nb", "/a\rb", "/a\r\nLocation: x", "/a?q=a b", "/a\x0cb", "/ "] {
            assert_eq!(refused(u), ReturnUrlError::Whitespace, "{u:?}");
        }
    }

    #[test]
    fn raw_control_characters_are_refused() {
        for u in ["/a\0", "/a\x01", "/a\x0b", "/a\x1b", "/a\x7f", "/a?x=\0"] {
            assert_eq!(refused(u), ReturnUrlError::ControlCharacter, "{u:?}");
        }
    }

    #[test]
    fn encoded_control_characters_are_refused_in_path_and_query() {
        for u in [
            "/a%00",
            "/a%09",
            "/a%0A",
            "/a%0d%0aSet-Cookie:x",
            "/a%1F",
            "/a%7f",
            "/a?x=%00",
            "/a?x=%0D%0A",
            "/%09/evil.com",
        ] {
            assert_eq!(refused(u), ReturnUrlError::EncodedControlCharacter, "{u:?}");
        }
    }

    #[test]
    fn encoded_space_is_accepted_in_path_and_query() {
        accepted("/a%20b");
        accepted("/a?q=a%20b");
        accepted("/%20/x");
    }

    #[test]
    fn raw_non_ascii_is_refused() {
        for u in ["/á", "/a?q=ž", "/\u{202e}", "/\u{ff0f}\u{ff0f}evil.com"] {
            assert_eq!(refused(u), ReturnUrlError::NonAscii, "{u:?}");
        }
    }

    #[test]
    fn fragments_are_refused() {
        for u in ["/a#b", "/#", "/a?x=1#frag", "/#//evil.com"] {
            assert_eq!(refused(u), ReturnUrlError::Fragment, "{u:?}");
        }
    }

    #[test]
    fn characters_never_allowed_raw_are_refused() {
        for u in ["/a\"b", "/<script>", "/a>b", "/a`b", "/{x}", "/a|b", "/a^b", "/a?x=<"] {
            assert_eq!(refused(u), ReturnUrlError::InvalidCharacter, "{u:?}");
        }
    }

    #[test]
    fn invalid_percent_encoding_is_refused() {
        for u in ["/%", "/a%2", "/a%zz", "/a%g1", "/a?x=%", "/a?x=%4"] {
            assert_eq!(refused(u), ReturnUrlError::BadPercentEncoding, "{u:?}");
        }
    }

    #[test]
    fn length_limit_is_enforced() {
        let ok = format!("/{}", "a".repeat(MAX_RETURN_URL_LEN - 1));
        accepted(&ok);
        let long = format!("/{}", "a".repeat(MAX_RETURN_URL_LEN));
        assert_eq!(refused(&long), ReturnUrlError::TooLong);
    }

    #[test]
    fn path_and_query_accessors_split_on_first_question_mark() {
        let Ok(u) = ReturnUrl::parse("/a/b?x=1?y") else { panic!("refused") };
        assert_eq!(u.path(), "/a/b");
        assert_eq!(u.query(), Some("x=1?y"));
        assert_eq!(u.to_string(), "/a/b?x=1?y");
        assert_eq!(AsRef::<str>::as_ref(&u), "/a/b?x=1?y");
        let Ok(u) = ReturnUrl::parse("/a") else { panic!("refused") };
        assert_eq!(u.path(), "/a");
        assert_eq!(u.query(), None);
    }

    #[test]
    fn no_accepted_url_can_be_resolved_to_another_host() {
        // Brute force: every 1- and 2-byte suffix after "/" and after "/x?".
        for prefix in ["/", "/x?"] {
            for a in 0u8..=0x7F {
                for b in 0u8..=0x7F {
                    let raw = format!("{prefix}{}{}", char::from(a), char::from(b));
                    if let Ok(u) = ReturnUrl::parse(&raw) {
                        let s = u.as_str();
                        assert!(s.starts_with('/'));
                        assert!(!s.starts_with("//"), "{raw:?}");
                        assert!(!s.contains('\\'), "{raw:?}");
                        assert!(!s.bytes().any(|c| c < 0x21 || c == 0x7F), "{raw:?}");
                        assert!(!s.contains('#'), "{raw:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn every_error_has_a_message() {
        for e in [
            ReturnUrlError::Empty,
            ReturnUrlError::TooLong,
            ReturnUrlError::AbsoluteUrl,
            ReturnUrlError::ProtocolRelative,
            ReturnUrlError::NotAbsolutePath,
            ReturnUrlError::Backslash,
            ReturnUrlError::EncodedSlash,
            ReturnUrlError::EncodedBackslash,
            ReturnUrlError::DoubleEncoded,
            ReturnUrlError::DotSegment,
            ReturnUrlError::Whitespace,
            ReturnUrlError::ControlCharacter,
            ReturnUrlError::EncodedControlCharacter,
            ReturnUrlError::NonAscii,
            ReturnUrlError::Fragment,
            ReturnUrlError::InvalidCharacter,
            ReturnUrlError::BadPercentEncoding,
        ] {
            assert!(!e.to_string().is_empty());
        }
    }
}
