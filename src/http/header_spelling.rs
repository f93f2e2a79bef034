//! Header names compared the way CGI/WSGI upstreams see them: any ASCII case, `_` and `-` the
//! same (`X_Forwarded_For` and `x-forwarded-for` both become `HTTP_X_FORWARDED_FOR`).
//!
//! Runs for every header of every request (identity namespace, forwarding headers), so it
//! compares in place and never allocates.

/// Whether `raw` equals `normalized` (lower case, `-` form) ignoring ASCII case and `_`/`-`.
pub(crate) fn same(raw: &[u8], normalized: &[u8]) -> bool {
    raw.len() == normalized.len() && raw.iter().zip(normalized).all(|(r, n)| fold(*r) == *n)
}

/// Whether `raw` starts with `normalized` (lower case, `-` form) ignoring ASCII case and `_`/`-`.
pub(crate) fn starts_with(raw: &[u8], normalized: &[u8]) -> bool {
    raw.len() >= normalized.len() && same(&raw[..normalized.len()], normalized)
}

/// The `-` form of a name in lower case (for names compiled once, from configuration).
pub(crate) fn normalize(name: &str) -> String {
    name.bytes().map(|b| char::from(fold(b))).collect()
}

fn fold(b: u8) -> u8 {
    if b == b'_' {
        b'-'
    } else {
        b.to_ascii_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_and_underscore_spellings_are_one_name() {
        assert!(same(b"X_Forwarded_For", b"x-forwarded-for"));
        assert!(same(b"x-forwarded-for", b"x-forwarded-for"));
        assert!(!same(b"x-forwarded-fo", b"x-forwarded-for"));
        assert!(starts_with(b"X_AUTH_User", b"x-auth-"));
        assert!(!starts_with(b"x-aut", b"x-auth-"));
        assert_eq!(normalize("X_Auth-User"), "x-auth-user");
    }
}
