//! Redacting `Debug` output for types that hold tokens, keys, protocol state or personal data.
//!
//! `Debug` ends up in panics, `tracing` fields (`?value`) and test failures; none of them may
//! carry a session id, a token, a NameID or a birth date. Such types implement `Debug` by
//! hand and print only non-identifying fields, with [`REDACTED`] (or the value's length)
//! where the secret would be. The tests of each type assert that a known secret value does
//! not appear in its `Debug` output.

use std::fmt;

/// What a redacted field prints.
pub const REDACTED: &str = "<redacted>";

/// A field printed as `<redacted>` when present, `None` when absent.
pub fn opt<T>(value: &Option<T>) -> Option<Redacted> {
    value.as_ref().map(|_| Redacted)
}

/// Prints `<redacted>`.
#[derive(Clone, Copy)]
pub struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Prints `<N bytes>`: the size of a secret without its value.
pub struct Len(pub usize);

impl fmt::Debug for Len {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}
