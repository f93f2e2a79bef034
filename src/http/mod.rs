//! HTTP helpers shared by the request path: one canonical path, safe return URLs.

pub mod canonical_path;
pub mod return_url;

/// The value of an ASCII hex digit.
fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// ASCII control characters (C0 and DEL).
fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7F
}
