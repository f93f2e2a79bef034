//! HTTP helpers shared by the request path: one canonical path, safe return URLs.

pub mod canonical_path;
pub(crate) mod header_spelling;
pub mod host;
pub mod path_forms;
pub mod return_url;

/// Every gateway endpoint lives under this prefix; apps may not claim paths inside it. Defined
/// here, in a leaf module, so config checks, the gateway and providers (SAML endpoint URLs)
/// share it without importing each other.
pub const RESERVED_PREFIX: &str = "/.aisgate/";

/// The value of an ASCII hex digit.
fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes the escape `%XY` whose `%` is at `bytes[i]`.
fn escape_at(bytes: &[u8], i: usize) -> Option<u8> {
    if bytes.get(i) != Some(&b'%') {
        return None;
    }
    let hi = bytes.get(i + 1).copied().and_then(hex_val)?;
    let lo = bytes.get(i + 2).copied().and_then(hex_val)?;
    Some((hi << 4) | lo)
}

/// ASCII control characters (C0 and DEL).
fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7F
}

/// Most rounds of percent-decoding [`decoding_is_inert`] follows before giving up.
const MAX_DECODE_ROUNDS: usize = 4;

/// Whether decoding `path` again and again, as an upstream (or a framework behind it) that
/// decodes more than once would, never changes its structure: no new `/`, no `\`, no control
/// character, no dot segment (also with `;` parameters), and a fixed point within
/// [`MAX_DECODE_ROUNDS`] rounds. `/public/%25%32%65%25%32%65/admin` is canonical as
/// `/public/%252e%252e/admin`, which is `/public/../admin` after two more decodings: not inert.
pub(crate) fn decoding_is_inert(path: &[u8]) -> bool {
    if !path.contains(&b'%') {
        return true;
    }
    let slashes = path.iter().filter(|b| **b == b'/').count();
    let mut current = path.to_vec();
    for _ in 0..MAX_DECODE_ROUNDS {
        let next = decode_once(&current);
        if next == current {
            return true;
        }
        let broken = next.iter().filter(|b| **b == b'/').count() != slashes
            || next.iter().any(|b| *b == b'\\' || is_control(*b))
            || next.split(|b| *b == b'/').any(is_dot_segment_bytes);
        if broken {
            return false;
        }
        current = next;
    }
    false
}

/// One round of percent-decoding; invalid escapes stay as they are.
fn decode_once(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if let Some(v) = escape_at(input, i) {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// `.` or `..`, also with `;` parameters.
fn is_dot_segment_bytes(segment: &[u8]) -> bool {
    let head = segment.split(|b| *b == b';').next().unwrap_or(segment);
    head == b"." || head == b".."
}

#[cfg(test)]
mod tests {
    use super::decoding_is_inert;

    #[test]
    fn repeated_decoding_that_changes_structure_is_detected() {
        for bad in [
            "/public/%252e%252e/admin",
            "/a/%252f/b",
            "/a/%255c",
            "/a/%2500",
            "/a/%25252e%25252e/b",
            "/a/%252E%252E%253Bx/b",
            "/%25%32%35%32%65",
        ] {
            assert!(!decoding_is_inert(bad.as_bytes()), "{bad}");
        }
        for good in ["/a/b", "/100%25", "/a%20b/%C3%A1", "/a/%25zz", "/a/%2541"] {
            assert!(decoding_is_inert(good.as_bytes()), "{good}");
        }
    }
}
