//! Calendar dates on the wire: RFC 3339 / `xs:dateTime` instants, parsed and formatted in one
//! place with one calendar implementation (the `time` crate, which `cookie` and `x509-parser`
//! already use), instead of two hand-written civil-date algorithms.
//!
//! Parsing is strict: the calendar date must exist (no 30 February), hours/minutes/seconds
//! are in range, an offset is `Z` or `±HH:MM`. A refused instant is `None`; callers turn it
//! into their own precise error (an expiry that cannot be read must never mean "valid").

use ::time::format_description::well_known::Rfc3339;
use ::time::OffsetDateTime;

/// Parses an RFC 3339 / `xs:dateTime` instant to Unix seconds (fraction truncated).
///
/// Accepted: `2026-11-21T13:40:00Z`, any number of fractional-second digits, `Z`/`z` or a
/// `±HH:MM` offset, `T`, `t` or a space between date and time (RFC 3339 §5.6 note). An
/// `xs:dateTime` without a zone (allowed by XML Schema, ambiguous) is read as UTC, as SAML
/// core §1.3.3 says every SAML time is. Refused (`None`): impossible dates, out-of-range
/// fields, offsets without a colon, other separators, trailing text, and instants before 1970.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    // `time` accepts any byte as the date/time separator; RFC 3339 and xs:dateTime do not.
    if !matches!(s.as_bytes().get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let parsed = match OffsetDateTime::parse(s, &Rfc3339) {
        Ok(t) => t,
        Err(_) if zoneless(s) => OffsetDateTime::parse(&format!("{s}Z"), &Rfc3339).ok()?,
        Err(_) => return None,
    };
    u64::try_from(parsed.unix_timestamp()).ok()
}

/// `true` when `s` ends right after the seconds (and an optional fraction): no zone at all.
fn zoneless(s: &str) -> bool {
    let Some(rest) = s.get(19..) else { return false };
    let rest = rest.strip_prefix('.').map_or(rest, |frac| frac.trim_start_matches(|c: char| c.is_ascii_digit()));
    rest.is_empty()
}

/// Formats Unix seconds as RFC 3339 UTC (`2026-11-21T13:40:00Z`), the form SAML
/// (`IssueInstant`, core §1.3.3) and the identity headers use. Instants past year 9999
/// (not representable in RFC 3339) are written as `9999-12-31T23:59:59Z`.
pub fn format_rfc3339(unix: u64) -> String {
    const LAST: &str = "9999-12-31T23:59:59Z";
    let Ok(seconds) = i64::try_from(unix) else { return LAST.to_owned() };
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| LAST.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
        assert_eq!(format_rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(format_rfc3339(253_402_300_800), "9999-12-31T23:59:59Z");
        assert_eq!(format_rfc3339(u64::MAX), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn parses_xs_datetime_with_zone_and_fraction() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20.692Z"), Some(1_700_000_000));
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20.123456789012Z"), Some(1_700_000_000));
        assert_eq!(parse_rfc3339("2023-11-14T23:13:20+01:00"), Some(1_700_000_000));
        assert_eq!(parse_rfc3339("2023-11-14T21:13:20.5-01:00"), Some(1_700_000_000));
        assert_eq!(parse_rfc3339("2023-11-14t22:13:20z"), Some(1_700_000_000));
        assert_eq!(parse_rfc3339("2023-11-14 22:13:20Z"), Some(1_700_000_000));
        // No zone: read as UTC (SAML times are UTC).
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20"), Some(1_700_000_000));
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20.25"), Some(1_700_000_000));
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400));
    }

    /// The hand-written parser this replaces checked only `day <= 31` and read `+0100`;
    /// these were accepted before and are refused now.
    #[test]
    fn refuses_impossible_dates_and_malformed_zones() {
        for bad in [
            "2023-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2023-04-31T00:00:00Z",
            "2023-11-14T22:13:20+0100",
            "2023-11-14T22:13:20+01",
            "2023-11-14T22:13:20 Z",
            "2023-11-14T22:13:20Zjunk",
            "2023-11-14X22:13:20Z",
            "2023-11-14T24:00:00Z",
            "2023-11-14T22:60:00Z",
            "2023-13-14T23:13:20Z",
            "2023-11-14T22:13:20.Z",
            "1969-12-31T23:59:59Z",
            "+2023-11-14T22:13:20Z",
            "2023-11-14",
            "",
            "yesterday",
            "2023-11-14T22:13:2\u{e9}Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?} must be refused");
        }
    }

    #[test]
    fn round_trips() {
        for t in [0, 1, 59, 86_399, 951_782_400, 1_700_000_000, 4_102_444_799] {
            assert_eq!(parse_rfc3339(&format_rfc3339(t)), Some(t));
        }
    }
}
