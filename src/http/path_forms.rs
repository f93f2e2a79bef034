//! The readings of a canonical path that an upstream may act on, for matching.
//!
//! [`CanonicalPath`] is what the gateway forwards. Upstreams do not all read it the same way:
//!
//! - **Path parameters.** Servlet containers (Tomcat, Jetty), Spring and others remove
//!   `;params` from every segment before mapping a request, so `/admin;x/secret`,
//!   `/;x/admin/secret` and `/admin;` are `/admin/secret`, `/admin/secret` and `/admin` there,
//!   while other servers see a segment literally named `admin;x`.
//! - **Case.** IIS/ASP.NET (and any app on a case-insensitive file system) treat `/ADMIN` as
//!   `/admin`, and also drop trailing dots and spaces from segments (`/admin.`, `/admin%20`),
//!   resolve 8.3 short names (`/ADMINI~1`) and NTFS stream names (`/admin::$DATA`); .NET's
//!   case-insensitive comparison also folds `ı` (U+0131) to `I`, `ſ` (U+017F) to `S` and the
//!   Kelvin sign to `K`.
//!
//! The threat is the parser differential: an `[[app.rule]]` that protects `/admin` must protect
//! every path the upstream will serve as `/admin`. So every decision is taken on every reading:
//! routing uses the parameter-free reading (the upstream that strips parameters is the one that
//! would otherwise be reached), a path is public only if **every** reading is public, a rule
//! allows only if it allows **every** reading, and a logout path matches if **any** reading
//! does. For apps with `path_case = "insensitive"` the readings (and the configured prefixes)
//! are case-folded, and the Windows aliases above are refused outright.

use std::borrow::Cow;
use std::sync::OnceLock;

use serde::Deserialize;

use super::canonical_path::{CanonicalPath, PathError};
use super::escape_at;

/// How an app's upstream compares paths (`[[app]] path_case`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PathCase {
    /// Byte-wise, as on Linux servers (the default).
    #[default]
    Sensitive,
    /// Case-insensitive, as IIS/ASP.NET: readings and prefixes are case-folded, and trailing
    /// dots/spaces, 8.3 short names and NTFS stream names in segments are refused.
    Insensitive,
}

/// One request path and its readings, computed at most once per request.
pub struct PathForms<'a> {
    canonical: &'a CanonicalPath,
    /// The reading without `;params` (`None`: the path has no `;`, the reading is the path).
    stripped: Option<String>,
    /// Case-folded readings, `(literal, stripped)`, made when an insensitive app asks.
    folded: OnceLock<(String, Option<String>)>,
}

/// The readings of a path under one app's comparison: one, or two when `;` is present.
#[derive(Clone, Copy, Debug)]
pub struct Readings<'a> {
    /// The path as forwarded (case-folded for insensitive apps).
    pub literal: &'a str,
    /// The path without `;params`, when it differs.
    pub stripped: Option<&'a str>,
}

impl<'a> Readings<'a> {
    /// The reading routing uses: without parameters.
    pub fn routing(&self) -> &'a str {
        self.stripped.unwrap_or(self.literal)
    }

    /// Every reading.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> {
        std::iter::once(self.literal).chain(self.stripped)
    }

    /// Whether every reading lies under `prefix` (segment-wise).
    pub fn all_under(&self, prefix: &str) -> bool {
        self.iter().all(|r| under_prefix(r, prefix))
    }

    /// Whether some reading lies under `prefix` (segment-wise).
    pub fn any_under(&self, prefix: &str) -> bool {
        self.iter().any(|r| under_prefix(r, prefix))
    }
}

impl<'a> PathForms<'a> {
    /// The readings of `canonical`.
    pub fn new(canonical: &'a CanonicalPath) -> PathForms<'a> {
        PathForms { canonical, stripped: without_params(canonical.as_str()), folded: OnceLock::new() }
    }

    /// The canonical (forwarded) path.
    pub fn canonical(&self) -> &'a CanonicalPath {
        self.canonical
    }

    /// The readings under `case`.
    pub fn readings(&self, case: PathCase) -> Readings<'_> {
        match case {
            PathCase::Sensitive => Readings { literal: self.canonical.as_str(), stripped: self.stripped.as_deref() },
            PathCase::Insensitive => {
                let (literal, stripped) = self.folded.get_or_init(|| {
                    (
                        fold_case(self.canonical.as_str()).into_owned(),
                        self.stripped.as_deref().map(|s| fold_case(s).into_owned()),
                    )
                });
                Readings { literal, stripped: stripped.as_deref() }
            }
        }
    }

    /// Refuses what an insensitive (Windows) upstream would read as another name: a segment
    /// ending in `.` or a space, an 8.3 short name (`~` and a digit), an NTFS stream (`::$`).
    ///
    /// # Errors
    ///
    /// [`PathError::WindowsAlias`] naming the first such segment's problem.
    pub fn check_insensitive(&self) -> Result<(), PathError> {
        for segment in self.canonical.as_str().split('/') {
            let head = segment.split(';').next().unwrap_or(segment);
            // IIS decodes before it resolves names, so `%20`, `%3A`, `%24` count as what they
            // encode (in any mix with raw characters).
            let name: Cow<'_, [u8]> = if head.contains('%') {
                Cow::Owned(super::decode_once(head.as_bytes()))
            } else {
                Cow::Borrowed(head.as_bytes())
            };
            let trailing = name.ends_with(b".") || name.ends_with(b" ");
            let short_name = name.windows(2).any(|w| w[0] == b'~' && w[1].is_ascii_digit());
            let stream = name.windows(3).any(|w| w == b"::$");
            if trailing || short_name || stream {
                return Err(PathError::WindowsAlias);
            }
        }
        Ok(())
    }
}

/// Whether `path` lies under `prefix` on a segment boundary (see
/// [`CanonicalPath::starts_with_segment_prefix`]).
pub fn under_prefix(path: &str, prefix: &str) -> bool {
    if !prefix.starts_with('/') {
        return false;
    }
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// The path with `;params` removed from every segment, the way servlet containers map it;
/// segments left empty disappear (`/;x/a` is `/a`), a last segment left empty keeps the
/// trailing slash (`/a/;x` is `/a/`). `None` when the path has no `;`.
pub fn without_params(path: &str) -> Option<String> {
    if !path.contains(';') {
        return None;
    }
    let mut out = String::with_capacity(path.len());
    let mut trailing = false;
    for segment in path.split('/').skip(1) {
        let head = segment.split(';').next().unwrap_or(segment);
        if head.is_empty() {
            trailing = true;
            continue;
        }
        out.push('/');
        out.push_str(head);
        trailing = false;
    }
    if out.is_empty() || trailing {
        out.push('/');
    }
    Some(out)
}

/// Case-folds a canonical path (or configured prefix) the way a case-insensitive upstream
/// compares it: ASCII lower-cased, and percent-encoded UTF-8 decoded, folded and re-encoded,
/// where a character whose upper case is ASCII (`ı` → `I`, `ſ` → `S`) folds to that ASCII
/// letter. Escapes of ASCII characters stay escapes (the canonical form already decoded the
/// unreserved ones).
pub fn fold_case(path: &str) -> Cow<'_, str> {
    let plain = path.bytes().all(|b| !b.is_ascii_uppercase()) && !has_non_ascii_escape(path);
    if plain {
        return Cow::Borrowed(path);
    }
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            // A run of escapes of non-ASCII bytes: decode, fold if it is UTF-8.
            let mut run = Vec::new();
            let mut j = i;
            while let Some(v) = escape_at(bytes, j).filter(|v| *v >= 0x80) {
                run.push(v);
                j += 3;
            }
            if run.is_empty() {
                // An escape of an ASCII character (or a lone %): hex in upper case, kept.
                let end = (i + 3).min(bytes.len());
                out.push_str(&path[i..end].to_ascii_uppercase());
                i = end;
                continue;
            }
            match std::str::from_utf8(&run) {
                Ok(text) => {
                    for c in text.chars() {
                        fold_char(c, &mut out);
                    }
                }
                Err(_) => push_escapes(&run, &mut out),
            }
            i = j;
            continue;
        }
        out.push(char::from(bytes[i].to_ascii_lowercase()));
        i += 1;
    }
    Cow::Owned(out)
}

fn has_non_ascii_escape(path: &str) -> bool {
    let bytes = path.as_bytes();
    (0..bytes.len()).any(|i| escape_at(bytes, i).is_some_and(|v| v >= 0x80))
}

/// Appends the case-folded form of `c`: ASCII when its upper case is ASCII, else its lower
/// case, percent-encoded.
fn fold_char(c: char, out: &mut String) {
    let upper: String = c.to_uppercase().collect();
    let folded: String = if upper.is_ascii() { upper.to_ascii_lowercase() } else { c.to_lowercase().collect() };
    for ch in folded.chars() {
        if ch.is_ascii() {
            out.push(ch.to_ascii_lowercase());
        } else {
            let mut buf = [0u8; 4];
            push_escapes(ch.encode_utf8(&mut buf).as_bytes(), out);
        }
    }
}

fn push_escapes(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in bytes {
        out.push('%');
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0F)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forms(raw: &str) -> CanonicalPath {
        CanonicalPath::parse(raw).unwrap()
    }

    #[test]
    fn parameters_are_removed_per_segment() {
        assert_eq!(without_params("/admin;x/secret").as_deref(), Some("/admin/secret"));
        assert_eq!(without_params("/;x/admin/secret").as_deref(), Some("/admin/secret"));
        assert_eq!(without_params("/admin;").as_deref(), Some("/admin"));
        assert_eq!(without_params("/admin/;x").as_deref(), Some("/admin/"));
        assert_eq!(without_params("/;").as_deref(), Some("/"));
        assert_eq!(without_params("/a.jsp;jsessionid=1").as_deref(), Some("/a.jsp"));
        assert_eq!(without_params("/admin/secret"), None);
    }

    #[test]
    fn readings_route_on_the_parameter_free_form_and_allow_only_if_all_do() {
        let path = forms("/public;x/admin");
        let f = PathForms::new(&path);
        let r = f.readings(PathCase::Sensitive);
        assert_eq!(r.routing(), "/public/admin");
        assert!(r.any_under("/public"));
        // The literal reading `public;x` is not `/public`: not public for a literal upstream.
        assert!(!r.all_under("/public"));
        let plain = forms("/public/a");
        assert!(PathForms::new(&plain).readings(PathCase::Sensitive).all_under("/public"));
    }

    #[test]
    fn case_folding_covers_ascii_and_unicode_letters_that_fold_to_ascii() {
        assert_eq!(fold_case("/ADMIN/X"), "/admin/x");
        assert_eq!(fold_case("/adm%C4%B1n"), "/admin"); // dotless ı
        assert_eq!(fold_case("/%C5%BFecret"), "/secret"); // long s
        assert_eq!(fold_case("/%E2%84%AA"), "/k"); // Kelvin sign
        assert_eq!(fold_case("/%C5%BD%C3%A1dost"), "/%C5%BE%C3%A1dost"); // Žádost → žádost
        assert_eq!(fold_case("/a%3Bb"), "/a%3Bb");
        assert_eq!(fold_case("/%FF"), "/%FF");
        assert!(matches!(fold_case("/plain/path"), Cow::Borrowed(_)));
        let path = forms("/ADMIN;x/Y");
        let f = PathForms::new(&path);
        let r = f.readings(PathCase::Insensitive);
        assert_eq!((r.literal, r.stripped), ("/admin;x/y", Some("/admin/y")));
    }

    #[test]
    fn windows_aliases_are_refused_for_insensitive_apps() {
        for raw in [
            "/admin.",
            "/admin%20",
            "/admin./x",
            "/ADMINI~1/x",
            "/admin::$DATA",
            "/admin.;x",
            "/admin::%24DATA",
            "/admin%3A%3A%24DATA",
        ] {
            let path = forms(raw);
            assert_eq!(PathForms::new(&path).check_insensitive(), Err(PathError::WindowsAlias), "{raw}");
        }
        for raw in ["/admin", "/a.b/c", "/x~y", "/a%20b"] {
            let path = forms(raw);
            assert_eq!(PathForms::new(&path).check_insensitive(), Ok(()), "{raw}");
        }
    }
}
