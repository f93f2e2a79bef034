//! Log labels: short, stable, non-reversible names for a user or session in logs.
//!
//! Logs must not carry personal data, yet an operator must be able to follow one user
//! through them. A plain hash of the subject would not do: subjects are guessable (birth
//! numbers, e-mail addresses), so hashing candidates reverses it. The label is an HMAC with a
//! server key instead, derived from the signing session key by `Gateway::build`
//! ([`set_key`]); without one the process uses a random key.

use std::sync::RwLock;

use aws_lc_rs::hmac;

/// The server key of log labels ([`crate::identity::Identity::log_label`]): an HMAC key, so
/// a label cannot be reversed by hashing candidate subjects (birth numbers, e-mails) as a
/// plain hash could. Derived from the signing session key: stable while that key is.
#[derive(Clone)]
pub struct LogLabelKey(hmac::Key);

impl LogLabelKey {
    /// A key from raw bytes (tests, and processes without a keyring).
    pub fn from_bytes(bytes: &[u8]) -> LogLabelKey {
        LogLabelKey(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    /// A fresh random key: labels are then stable for this process only.
    pub fn random() -> LogLabelKey {
        LogLabelKey::from_bytes(zeroize::Zeroizing::new(crate::session::random_id()).as_slice())
    }

    /// The first `n` bytes of HMAC(key, `data`), hex.
    pub fn label(&self, data: &[u8], n: usize) -> String {
        hmac::sign(&self.0, data).as_ref().iter().take(n).map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for LogLabelKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogLabelKey(<redacted>)")
    }
}

static KEY: RwLock<Option<LogLabelKey>> = RwLock::new(None);

/// Sets the process-wide label key (`Gateway::build`).
pub fn set_key(key: LogLabelKey) {
    *KEY.write().unwrap_or_else(|e| e.into_inner()) = Some(key);
}

/// The process-wide label key (a random one until [`set_key`]).
pub fn key() -> LogLabelKey {
    if let Some(key) = KEY.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return key.clone();
    }
    KEY.write().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(LogLabelKey::random).clone()
}
