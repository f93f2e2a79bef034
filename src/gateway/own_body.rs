//! The request-body cap of the gateway's own endpoints (`/.aisgate/*`).
//!
//! Own endpoints take small forms (callbacks, logout tokens), except SAML's HTTP-POST binding,
//! whose `SAMLResponse` can be large: a provider accepts messages up to its
//! `max_message_bytes` (decoded XML). On the wire that message is base64 (4 bytes per 3) and
//! then form-urlencoded, where in the worst case every base64 character is `+`, `/` or `=`
//! and becomes a 3-byte `%XX` escape. So a message of `n` bytes needs at most
//! `ceil(n / 3) * 4 * 3 ≤ 4n + 8` bytes of body, plus `RelayState` and field names. The cap is
//!
//! ```text
//! cap = max(256 KiB, 4 × largest max_message_bytes + 64 KiB)
//! ```
//!
//! so a configured `max_message_bytes` always takes effect, and nothing else can make the
//! gateway read more. A body over the cap gets the documented 413 page/JSON
//! (`payload_too_large`): refused before reading when `Content-Length` says so, else as soon
//! as the streamed body passes the cap.

use crate::provider::Provider;

/// The floor: enough for every non-SAML form the own endpoints take.
pub(crate) const MIN_OWN_BODY_BYTES: usize = 256 * 1024;

/// Room for `RelayState`, field names and separators next to the encoded message.
const FORM_OVERHEAD_BYTES: usize = 64 * 1024;

/// The own endpoints' body cap for these providers (formula in the module docs).
pub(crate) fn own_body_limit<'a>(providers: impl IntoIterator<Item = &'a dyn Provider>) -> usize {
    providers
        .into_iter()
        .filter_map(|p| p.login_profile().max_inbound_message_bytes)
        .map(cap_for_message)
        .fold(MIN_OWN_BODY_BYTES, usize::max)
}

/// The body a form carrying a message of `n` decoded bytes may need (module docs).
fn cap_for_message(n: usize) -> usize {
    n.saturating_mul(4).saturating_add(FORM_OVERHEAD_BYTES)
}

/// Worst-case form-encoded size of a message of `n` decoded bytes (for the tests of the bound).
#[cfg(test)]
fn worst_case_encoded(n: usize) -> usize {
    n.div_ceil(3) * 4 * 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_covers_the_worst_case_encoding_of_the_largest_message() {
        for n in [4096usize, 190_000, 512 * 1024, 5 << 20] {
            let cap = cap_for_message(n).max(MIN_OWN_BODY_BYTES);
            assert!(cap >= worst_case_encoded(n) + 32 * 1024, "{n}: {cap}");
        }
        assert_eq!(own_body_limit(std::iter::empty()), MIN_OWN_BODY_BYTES);
    }
}
