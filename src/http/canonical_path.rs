//! Canonicalization of the request path, done once per request.
//!
//! The gateway canonicalizes the request path exactly once and uses that
//! single result for routing, public-path checks, authorization decisions
//! *and* as the path forwarded upstream, so what was authorized is exactly
//! what the upstream application sees. The threat is a parser differential:
//! if the gateway and the upstream interpret a path differently
//! (`/public/%2e%2e/admin`, `/public/..;/admin`, `/public%2Fadmin`,
//! `/public\admin`, `//admin`, double-encoded dots …), an attacker can pass an
//! authorization check for one resource while the upstream serves another.
//! Anything whose meaning could plausibly differ between implementations is
//! therefore refused rather than guessed at.
//!
//! Rules applied by [`CanonicalPath::parse`], in order:
//!
//! 1. The input is the path component only (no query, no fragment), at most
//!    [`MAX_PATH_LEN`] bytes, and must start with `/` (origin form).
//! 2. Raw bytes: control characters (0x00–0x1F, 0x7F) are refused, a raw
//!    backslash is refused, non-ASCII bytes are refused (RFC 9112 request
//!    targets are ASCII; hyper already rejects them), and space, `?` and `#`
//!    are refused because they cannot be part of a path. The printable ASCII
//!    characters that RFC 3986 forbids raw but some clients send anyway
//!    (`"` `<` `>` `` ` `` `{` `|` `}` `^`) are percent-encoded, which is the
//!    equivalent RFC 3986 form.
//! 3. Percent escapes: malformed escapes are refused; escapes of unreserved
//!    characters (`ALPHA DIGIT - . _ ~`) are decoded (RFC 3986 §6.2.2.2); all
//!    other escapes are kept with uppercase hex (§6.2.2.1). `%2F`, `%5C`, `%00`
//!    and any encoded control character are refused. Double-encoded dot,
//!    slash and backslash (`%252e`, `%252f`, `%255c`) are refused because an
//!    upstream that decodes twice would see a traversal the gateway did not;
//!    the result is then decoded again, up to a fixed point, and refused if
//!    any round adds a `/`, a `\`, a control character or a dot segment —
//!    so escaped hex digits (`%25%32%65` → `%252e`, `%2500`) cannot hide one.
//! 4. Duplicate slashes are collapsed, dot segments are removed per
//!    RFC 3986 §5.2.4 (after decoding, so `%2e%2E` is `..`), and a trailing
//!    slash is kept. A `..` that would climb above the root is **refused**
//!    ([`PathError::EscapesRoot`]) instead of being clamped as §5.2.4 would,
//!    since no legitimate client produces it.
//! 5. `;` is left alone (no matrix-parameter stripping), with one exception:
//!    a segment that *is* a dot segment once its `;…` parameters are removed
//!    (`..;`, `..;jsessionid=1`, `.;x`) is refused
//!    ([`PathError::DotSegmentWithParameters`]), because servlet containers
//!    such as Tomcat treat `/a/..;/b` as `/b` while RFC 3986 treats `..;` as an
//!    ordinary segment — a well-known authorization bypass.

use std::fmt;

use super::{hex_val, is_control};

/// Maximum accepted length of a raw request path, and of its canonical form,
/// in bytes.
pub const MAX_PATH_LEN: usize = 8192;

/// A request path in canonical form.
///
/// Invariants: starts with `/`; ASCII only; contains no `//`, no dot segments,
/// no backslash, no control character, no `?` or `#`; every `%` starts a valid
/// uppercase escape of a character that is not unreserved, `/`, `\` or a
/// control character.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CanonicalPath(String);

/// Why a raw path was refused by [`CanonicalPath::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PathError {
    /// The path is empty or does not start with `/` (e.g. `*`, `a/b`,
    /// `http://host/`).
    NotOrigin,
    /// The path is longer than [`MAX_PATH_LEN`] bytes.
    TooLong,
    /// The path contains `%2F` (an encoded `/`).
    EncodedSlash,
    /// The path contains `%5C` (an encoded `\`).
    EncodedBackslash,
    /// The path contains a raw `\`.
    Backslash,
    /// The path contains a raw or percent-encoded NUL or other control
    /// character (0x00–0x1F, 0x7F).
    NulOrControl,
    /// A `%` is not followed by two hexadecimal digits.
    BadPercentEncoding,
    /// The path contains a double-encoded dot, slash, backslash or control
    /// character (`%252E`, `%252F`, `%255C`, `%2500`, also with escaped hex
    /// digits such as `%25%32%65`): decoding it again changes its structure.
    DoubleEncoded,
    /// The path contains a raw non-ASCII byte.
    NonAscii,
    /// The path contains a raw character that cannot appear in a path:
    /// space, `?` or `#`.
    InvalidCharacter,
    /// A `..` segment would climb above the root (e.g. `/..`, `/a/../..`).
    EscapesRoot,
    /// A segment is `.` or `..` followed by `;` parameters (e.g. `..;`),
    /// which some upstream servers treat as a dot segment.
    DotSegmentWithParameters,
    /// For an app with `path_case = "insensitive"`: a segment ends in `.` or a space, or is
    /// an 8.3 short name or NTFS stream name, which a Windows upstream reads as another name.
    WindowsAlias,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msg = match self {
            PathError::NotOrigin => "path does not start with '/'",
            PathError::TooLong => "path is too long",
            PathError::EncodedSlash => "path contains an encoded slash (%2F)",
            PathError::EncodedBackslash => "path contains an encoded backslash (%5C)",
            PathError::Backslash => "path contains a backslash",
            PathError::NulOrControl => "path contains a NUL or control character",
            PathError::BadPercentEncoding => "path contains invalid percent-encoding",
            PathError::DoubleEncoded => "path contains a double-encoded dot, slash, backslash or control character",
            PathError::NonAscii => "path contains a non-ASCII byte",
            PathError::InvalidCharacter => "path contains a character not allowed in a path",
            PathError::EscapesRoot => "path climbs above the root",
            PathError::DotSegmentWithParameters => "path contains a dot segment with parameters",
            PathError::WindowsAlias => "path segment is a Windows alias (trailing dot or space, short name, stream)",
        };
        f.write_str(msg)
    }
}

impl std::error::Error for PathError {}

/// Uppercase hex digit for a nibble (0–15).
fn hex_digit(n: u8) -> char {
    char::from(b"0123456789ABCDEF"[usize::from(n & 0x0F)])
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn push_escape(out: &mut String, b: u8) {
    out.push('%');
    out.push(hex_digit(b >> 4));
    out.push(hex_digit(b & 0x0F));
}

/// Step 2 and 3: validate raw bytes and normalize percent escapes.
fn normalize_bytes(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_val);
                let lo = bytes.get(i + 2).copied().and_then(hex_val);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(PathError::BadPercentEncoding);
                };
                let v = (hi << 4) | lo;
                match v {
                    b'/' => return Err(PathError::EncodedSlash),
                    b'\\' => return Err(PathError::EncodedBackslash),
                    v if is_control(v) => return Err(PathError::NulOrControl),
                    b'%' => {
                        // Double encoding: "%25" followed by an escape of
                        // '.', '/' or '\' would become a traversal for an
                        // upstream that decodes twice.
                        let h2 = bytes.get(i + 3).copied().and_then(hex_val);
                        let l2 = bytes.get(i + 4).copied().and_then(hex_val);
                        if let (Some(h2), Some(l2)) = (h2, l2) {
                            if matches!((h2 << 4) | l2, b'.' | b'/' | b'\\') {
                                return Err(PathError::DoubleEncoded);
                            }
                        }
                        out.push_str("%25");
                    }
                    v if is_unreserved(v) => out.push(char::from(v)),
                    v => push_escape(&mut out, v),
                }
                i += 3;
            }
            b'\\' => return Err(PathError::Backslash),
            b if is_control(b) => return Err(PathError::NulOrControl),
            b if !b.is_ascii() => return Err(PathError::NonAscii),
            b' ' | b'?' | b'#' => return Err(PathError::InvalidCharacter),
            b'"' | b'<' | b'>' | b'`' | b'{' | b'|' | b'}' | b'^' => {
                push_escape(&mut out, b);
                i += 1;
            }
            b => {
                out.push(char::from(b));
                i += 1;
            }
        }
    }
    Ok(out)
}

impl CanonicalPath {
    /// Canonicalizes a raw request path (the path component only, without
    /// query or fragment). See the module documentation for the rules.
    ///
    /// # Errors
    ///
    /// Returns the [`PathError`] describing the first rule the path breaks.
    pub fn parse(raw_path: &str) -> Result<CanonicalPath, PathError> {
        if raw_path.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong);
        }
        if !raw_path.starts_with('/') {
            return Err(PathError::NotOrigin);
        }
        let normalized = normalize_bytes(raw_path)?;

        let mut stack: Vec<&str> = Vec::new();
        let mut trailing_slash = false;
        for segment in normalized.split('/').skip(1) {
            match segment {
                "" => {
                    // Duplicate slash (collapsed) or trailing slash.
                    trailing_slash = true;
                }
                "." => trailing_slash = true,
                ".." => {
                    if stack.pop().is_none() {
                        return Err(PathError::EscapesRoot);
                    }
                    trailing_slash = true;
                }
                s => {
                    if let Some((head, _params)) = s.split_once(';') {
                        if head == "." || head == ".." {
                            return Err(PathError::DotSegmentWithParameters);
                        }
                    }
                    stack.push(s);
                    trailing_slash = false;
                }
            }
        }

        let mut out = String::with_capacity(normalized.len());
        for s in &stack {
            out.push('/');
            out.push_str(s);
        }
        if stack.is_empty() || trailing_slash {
            out.push('/');
        }
        // Percent-encoding raw `"<>` etc. can lengthen the path.
        if out.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong);
        }
        // Rules 2 and 3 once more, on the result: decoding the escapes of unreserved characters
        // can spell a double encoding that was not visible in the raw path (`%25%32%65` is
        // `%252e`), and the canonical form must pass its own rules (found by fuzzing:
        // `/+%25%32%65` was accepted as `/+%252e`, which `parse` itself refuses).
        normalize_bytes(&out)?;
        // Rule 3, to a fixed point: escapes of escapes hide behind escaped hex digits
        // (`%25%32%65` is `%252e` once the unreserved digits are decoded), so the check runs on
        // the result, decoding it as often as an upstream might.
        if !super::decoding_is_inert(out.as_bytes()) {
            return Err(PathError::DoubleEncoded);
        }
        Ok(CanonicalPath(out))
    }

    /// The canonical path as a string slice; always starts with `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Consumes the path and returns the canonical string.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Whether this path lies under `prefix` on a segment boundary.
    ///
    /// `"/app"` and `"/app/"` both match `/app`, `/app/` and `/app/x`, but not
    /// `/apple`. The prefix `"/"` matches every path. A prefix that does not
    /// start with `/` (including the empty string) matches nothing, so a
    /// misconfigured empty prefix cannot silently cover everything. The
    /// comparison is byte-wise and case-sensitive; configured prefixes should
    /// themselves be canonicalized with [`CanonicalPath::parse`].
    pub fn starts_with_segment_prefix(&self, prefix: &str) -> bool {
        if !prefix.starts_with('/') {
            return false;
        }
        let prefix = prefix.trim_end_matches('/');
        if prefix.is_empty() {
            return true;
        }
        match self.0.strip_prefix(prefix) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }
}

impl fmt::Display for CanonicalPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for CanonicalPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(raw: &str) -> String {
        match CanonicalPath::parse(raw) {
            Ok(p) => p.into_string(),
            Err(e) => panic!("{raw:?} unexpectedly refused: {e}"),
        }
    }

    fn refused(raw: &str) -> PathError {
        match CanonicalPath::parse(raw) {
            Ok(p) => panic!("{raw:?} unexpectedly accepted as {p}"),
            Err(e) => e,
        }
    }

    #[test]
    fn plain_paths_are_unchanged() {
        for p in ["/", "/a", "/a/b", "/a/b/", "/app/index.html", "/a-b_c~d.e", "/a:b@c!$&'()*+,;="] {
            assert_eq!(canon(p), p);
        }
    }

    #[test]
    fn result_always_starts_with_slash() {
        for p in ["/", "/.", "/./", "/a/..", "//", "/%2e"] {
            assert!(canon(p).starts_with('/'), "{p}");
        }
    }

    #[test]
    fn non_origin_inputs_are_refused() {
        for p in ["", "*", "a/b", "http://evil/", "%2F", "./a", "../a"] {
            assert_eq!(refused(p), PathError::NotOrigin, "{p}");
        }
    }

    #[test]
    fn duplicate_slashes_are_collapsed() {
        assert_eq!(canon("//"), "/");
        assert_eq!(canon("//x"), "/x");
        assert_eq!(canon("///x//y///"), "/x/y/");
        assert_eq!(canon("/a//b"), "/a/b");
    }

    #[test]
    fn single_dot_segments_are_removed() {
        assert_eq!(canon("/./"), "/");
        assert_eq!(canon("/."), "/");
        assert_eq!(canon("/a/./b"), "/a/b");
        assert_eq!(canon("/a/."), "/a/");
        assert_eq!(canon("/./a"), "/a");
    }

    #[test]
    fn double_dot_segments_are_resolved() {
        assert_eq!(canon("/a/../b"), "/b");
        assert_eq!(canon("/a/b/../c"), "/a/c");
        assert_eq!(canon("/a/b/.."), "/a/");
        assert_eq!(canon("/a/b/../"), "/a/");
        assert_eq!(canon("/a/.."), "/");
        assert_eq!(canon("/a/b/c/../../d"), "/a/d");
    }

    #[test]
    fn encoded_dot_segments_are_decoded_then_resolved() {
        assert_eq!(canon("/a/%2e%2e/b"), "/b");
        assert_eq!(canon("/a/%2E%2E/b"), "/b");
        assert_eq!(canon("/a/%2e%2E/b"), "/b");
        assert_eq!(canon("/a/.%2e/b"), "/b");
        assert_eq!(canon("/a/%2e./b"), "/b");
        assert_eq!(canon("/a/%2e/b"), "/a/b");
        assert_eq!(canon("/public/%2e%2e/admin"), "/admin");
    }

    #[test]
    fn dots_that_are_not_whole_segments_are_kept() {
        assert_eq!(canon("/a/.../b"), "/a/.../b");
        assert_eq!(canon("/a/..b/c"), "/a/..b/c");
        assert_eq!(canon("/a/b../c"), "/a/b../c");
        assert_eq!(canon("/.well-known/x"), "/.well-known/x");
        assert_eq!(canon("/a/.hidden"), "/a/.hidden");
    }

    #[test]
    fn climbing_above_root_is_refused_not_clamped() {
        for p in ["/..", "/../", "/../a", "/a/../..", "/a/../../b", "/%2e%2e/a", "/./../a", "//../a"] {
            assert_eq!(refused(p), PathError::EscapesRoot, "{p}");
        }
    }

    #[test]
    fn empty_segments_do_not_absorb_double_dots() {
        // Slashes are collapsed before dot removal, so "/a//../b" is "/b".
        assert_eq!(canon("/a//../b"), "/b");
    }

    #[test]
    fn trailing_slash_is_kept() {
        assert_eq!(canon("/app/"), "/app/");
        assert_eq!(canon("/app"), "/app");
        assert_eq!(canon("/app//"), "/app/");
    }

    #[test]
    fn semicolons_are_left_alone() {
        assert_eq!(canon("/a;b=c/d"), "/a;b=c/d");
        assert_eq!(canon("/a/x;jsessionid=1"), "/a/x;jsessionid=1");
        assert_eq!(canon("/a/;/b"), "/a/;/b");
        assert_eq!(canon("/a/...;/b"), "/a/...;/b");
    }

    #[test]
    fn dot_segments_with_parameters_are_refused() {
        for p in ["/a/..;/b", "/a/..;jsessionid=1/b", "/a/.;/b", "/a/.;x=y", "/a/%2e%2e;/b", "/..;"] {
            assert_eq!(refused(p), PathError::DotSegmentWithParameters, "{p}");
        }
    }

    #[test]
    fn unreserved_escapes_are_decoded() {
        assert_eq!(canon("/%61%62%63"), "/abc");
        assert_eq!(canon("/%41%5A%30%39"), "/AZ09");
        assert_eq!(canon("/%2D%2e%5F%7E"), "/-._~");
        assert_eq!(canon("/%2d%5f%7e"), "/-_~");
    }

    #[test]
    fn reserved_and_other_escapes_are_kept_with_uppercase_hex() {
        assert_eq!(canon("/a%20b"), "/a%20b");
        assert_eq!(canon("/%3a%3f%23"), "/%3A%3F%23");
        assert_eq!(canon("/%c3%a1"), "/%C3%A1");
        assert_eq!(canon("/%C3%A1"), "/%C3%A1");
        assert_eq!(canon("/%ff"), "/%FF");
        assert_eq!(canon("/%25"), "/%25");
        assert_eq!(canon("/%2541"), "/%2541");
        assert_eq!(canon("/%3B"), "/%3B");
    }

    #[test]
    fn encoded_semicolon_is_not_a_parameter_separator() {
        // "%3B" stays encoded, so "a%3Bb" is an ordinary segment…
        assert_eq!(canon("/a/x%3By/b"), "/a/x%3By/b");
        // …but "..%3B" is "..;" to a framework that decodes before it strips parameters
        // (older Spring `UrlPathHelper`): one decoding away from a dot segment, refused.
        assert_eq!(refused("/a/..%3B/b"), PathError::DoubleEncoded);
    }

    #[test]
    fn encoded_slash_is_refused() {
        for p in ["/a%2Fb", "/a%2fb", "/%2F", "/%2f%2fevil", "/a/%2F../b"] {
            assert_eq!(refused(p), PathError::EncodedSlash, "{p}");
        }
    }

    #[test]
    fn encoded_backslash_is_refused() {
        for p in ["/a%5Cb", "/a%5cb", "/%5C..%5Cadmin"] {
            assert_eq!(refused(p), PathError::EncodedBackslash, "{p}");
        }
    }

    #[test]
    fn raw_backslash_is_refused() {
        for p in ["/a\\b", "/\\", "/a/..\\..\\b", "/\\\\evil"] {
            assert_eq!(refused(p), PathError::Backslash, "{p}");
        }
    }

    #[test]
    fn encoded_nul_and_controls_are_refused() {
        for p in ["/a%00", "/%00/a", "/a%0a", "/a%0D%0A", "/a%09b", "/a%1f", "/a%7F"] {
            assert_eq!(refused(p), PathError::NulOrControl, "{p}");
        }
    }

    #[test]
    fn raw_nul_and_controls_are_refused() {
        for p in ["/a\0", "/a\nb", "/a\rb", "/a\tb", "/a\x1b", "/a\x7f"] {
            assert_eq!(refused(p), PathError::NulOrControl, "{p:?}");
        }
    }

    #[test]
    fn invalid_percent_encoding_is_refused() {
        for p in ["/%", "/a%", "/a%2", "/a%g0", "/a%0g", "/%%41", "/a%-1", "/a% 1"] {
            assert_eq!(refused(p), PathError::BadPercentEncoding, "{p}");
        }
    }

    #[test]
    fn double_encoded_traversal_characters_are_refused() {
        for p in ["/a/%252e%252e/b", "/a/%252E%252E/b", "/a%252Fb", "/a%252fb", "/a%255Cb", "/a%255cb"] {
            assert_eq!(refused(p), PathError::DoubleEncoded, "{p}");
        }
    }

    #[test]
    fn double_encoding_through_escaped_hex_digits_is_refused() {
        // Issue 9 item 5: the hex digits of the inner escape are themselves escaped, so only
        // the decoded result shows `%252e`; before the fixed-point check these passed.
        for p in [
            "/public/%25%32%65%25%32%65/admin",
            "/public/%25%32%66admin",
            "/public/%25%35%63admin",
            "/public/%25%30%30",
            "/public/%2500",
            "/public/%25%32%35%32%65%25%32%35%32%65/admin",
        ] {
            assert_eq!(refused(p), PathError::DoubleEncoded, "{p}");
        }
    }

    #[test]
    fn a_double_encoded_dot_spelled_with_escaped_hex_digits_inside_a_segment_is_refused() {
        // Found by fuzzing (fuzz/corpus/canonical_path/crash-1f5486e4…): `/+%252e` decodes to
        // `/+.`, no dot segment, so the fixed-point check let it through, yet rule 3 refuses
        // `%252e` and `parse` refused its own output.
        for p in ["/+%25%32%65", "/a/x%25%32%65", "/a/x%25%32%45y"] {
            assert_eq!(refused(p), PathError::DoubleEncoded, "{p}");
        }
    }

    #[test]
    fn other_double_encodings_are_kept() {
        assert_eq!(canon("/a%2520b"), "/a%2520b");
        assert_eq!(canon("/a%25"), "/a%25");
        assert_eq!(canon("/a%252"), "/a%252");
    }

    #[test]
    fn raw_non_ascii_is_refused() {
        for p in ["/á", "/a/ž", "/\u{202e}", "/日本"] {
            assert_eq!(refused(p), PathError::NonAscii, "{p}");
        }
    }

    #[test]
    fn space_query_and_fragment_characters_are_refused() {
        for p in ["/a b", "/a?x=1", "/a#frag", "/?"] {
            assert_eq!(refused(p), PathError::InvalidCharacter, "{p}");
        }
    }

    #[test]
    fn unsafe_printable_ascii_is_percent_encoded() {
        assert_eq!(canon("/a\"b"), "/a%22b");
        assert_eq!(canon("/<x>"), "/%3Cx%3E");
        assert_eq!(canon("/{a}|^`"), "/%7Ba%7D%7C%5E%60");
    }

    #[test]
    fn raw_and_encoded_forms_canonicalize_identically() {
        assert_eq!(canon("/%7Ba%7D"), canon("/{a}"));
        assert_eq!(canon("/%61pp/"), canon("/app/"));
        assert_eq!(canon("/a/%2e/b"), canon("/a/./b"));
    }

    #[test]
    fn canonicalization_is_idempotent() {
        for p in ["/a/%2e%2e/b//c/./d/", "/%c3%a1/{x}", "/a;b/c", "//x/../y", "/%7e%2520"] {
            let once = canon(p);
            assert_eq!(canon(&once), once, "{p}");
        }
    }

    #[test]
    fn overlong_path_is_refused() {
        let ok = format!("/{}", "a".repeat(MAX_PATH_LEN - 1));
        assert_eq!(canon(&ok).len(), MAX_PATH_LEN);
        let long = format!("/{}", "a".repeat(MAX_PATH_LEN));
        assert_eq!(refused(&long), PathError::TooLong);
    }

    #[test]
    fn path_that_grows_beyond_the_limit_when_encoded_is_refused() {
        let grows = format!("/{}", "{".repeat(MAX_PATH_LEN / 2));
        assert!(grows.len() <= MAX_PATH_LEN);
        assert_eq!(refused(&grows), PathError::TooLong);
    }

    #[test]
    fn segment_prefix_matches_on_segment_boundaries() {
        let check = |path: &str, prefix: &str| {
            CanonicalPath::parse(path).map(|p| p.starts_with_segment_prefix(prefix)).unwrap_or(false)
        };
        assert!(check("/app", "/app"));
        assert!(check("/app/", "/app"));
        assert!(check("/app/x", "/app"));
        assert!(check("/app/x/y", "/app/x"));
        assert!(!check("/apple", "/app"));
        assert!(!check("/ap", "/app"));
        assert!(!check("/x/app", "/app"));
        assert!(!check("/App", "/app"));
    }

    #[test]
    fn segment_prefix_with_trailing_slash_matches_its_directory() {
        let p = |s: &str| CanonicalPath::parse(s).map_err(|e| e.to_string());
        assert_eq!(p("/app").map(|p| p.starts_with_segment_prefix("/app/")), Ok(true));
        assert_eq!(p("/app/").map(|p| p.starts_with_segment_prefix("/app/")), Ok(true));
        assert_eq!(p("/app/x").map(|p| p.starts_with_segment_prefix("/app/")), Ok(true));
        assert_eq!(p("/apple").map(|p| p.starts_with_segment_prefix("/app/")), Ok(false));
        assert_eq!(p("/app/x").map(|p| p.starts_with_segment_prefix("/app//")), Ok(true));
    }

    #[test]
    fn root_prefix_matches_everything() {
        for s in ["/", "/a", "/a/b/"] {
            let path = CanonicalPath::parse(s).map_err(|e| e.to_string());
            assert_eq!(path.map(|p| p.starts_with_segment_prefix("/")), Ok(true), "{s}");
        }
    }

    #[test]
    fn prefix_without_leading_slash_matches_nothing() {
        let path = CanonicalPath::parse("/app/x").map_err(|e| e.to_string());
        assert_eq!(path.clone().map(|p| p.starts_with_segment_prefix("")), Ok(false));
        assert_eq!(path.map(|p| p.starts_with_segment_prefix("app")), Ok(false));
    }

    #[test]
    fn traversal_out_of_prefix_is_visible_to_prefix_check() {
        let path = CanonicalPath::parse("/public/%2e%2e/admin").map_err(|e| e.to_string());
        assert_eq!(path.map(|p| p.starts_with_segment_prefix("/public")), Ok(false));
    }

    #[test]
    fn display_as_str_and_as_ref_agree() {
        let path = CanonicalPath::parse("/a/./b").map_err(|e| e.to_string());
        let Ok(path) = path else { panic!("refused") };
        assert_eq!(path.to_string(), "/a/b");
        assert_eq!(path.as_str(), "/a/b");
        assert_eq!(AsRef::<str>::as_ref(&path), "/a/b");
    }

    #[test]
    fn every_error_has_a_message() {
        for e in [
            PathError::NotOrigin,
            PathError::TooLong,
            PathError::EncodedSlash,
            PathError::EncodedBackslash,
            PathError::Backslash,
            PathError::NulOrControl,
            PathError::BadPercentEncoding,
            PathError::DoubleEncoded,
            PathError::NonAscii,
            PathError::InvalidCharacter,
            PathError::EscapesRoot,
            PathError::DotSegmentWithParameters,
        ] {
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn every_printable_ascii_byte_is_handled_without_panicking() {
        for b in 0u8..=0x7F {
            let raw = format!("/a{}b", char::from(b));
            let _ = CanonicalPath::parse(&raw);
            let enc = format!("/a%{b:02x}b");
            if let Ok(p) = CanonicalPath::parse(&enc) {
                assert!(!p.as_str().contains("//"), "{enc}");
                assert!(!p.as_str().contains('\\'), "{enc}");
            }
        }
    }
}
