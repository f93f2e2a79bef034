//! The session keyring: authenticates cookie values so forged ids never reach the store.
//!
//! Several keys may be configured for rotation: the first signs, all verify. Each purpose
//! (session cookie, pre-login cookie) is domain-separated, so a value minted for one can never
//! be replayed as the other. Comparison is constant-time (`hmac::verify`).

use aws_lc_rs::hmac;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;

use crate::config::SecretSource;

/// What a cookie value is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// The logged-in session cookie.
    Session,
    /// The pre-login binding cookie.
    Login,
    /// A form's CSRF token, derived from the pre-login handle.
    Csrf,
    /// The login-loop counter cookie.
    LoopGuard,
    /// The cookie binding an RP-initiated logout's `state` to the browser, and that state.
    Logout,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Session => b"aisgate/session/v1\0",
            Purpose::Login => b"aisgate/login/v1\0",
            Purpose::Csrf => b"aisgate/csrf/v1\0",
            Purpose::LoopGuard => b"aisgate/loop/v1\0",
            Purpose::Logout => b"aisgate/logout/v1\0",
        }
    }
}

/// Errors loading keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read.
    #[error("session key {id:?}: cannot read {path}: {source}")]
    Read {
        /// Key id.
        id: String,
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The environment variable is unset.
    #[error("session key {id:?}: environment variable {var} is not set")]
    MissingEnv {
        /// Key id.
        id: String,
        /// Variable.
        var: String,
    },
    /// Too short.
    #[error("session key {0:?} is shorter than 32 bytes")]
    TooShort(String),
    /// Neither or both sources.
    #[error("session key {0:?} needs exactly one of file or env")]
    NoSource(String),
}

/// Authenticating keys for cookie values.
pub struct Keyring {
    keys: Vec<(String, hmac::Key)>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Keyring").field("key_ids", &self.keys.iter().map(|(id, _)| id).collect::<Vec<_>>()).finish()
    }
}

fn decode_secret(raw: &[u8]) -> Vec<u8> {
    let trimmed = String::from_utf8_lossy(raw).trim().to_owned();
    match STANDARD.decode(trimmed.as_bytes()).or_else(|_| URL_SAFE_NO_PAD.decode(trimmed.as_bytes())) {
        Ok(decoded) if decoded.len() >= 32 => decoded,
        _ => raw.to_vec(),
    }
}

impl Keyring {
    /// Builds a keyring from raw secrets (first = signing key).
    pub fn from_secrets(secrets: Vec<(String, Vec<u8>)>) -> Result<Keyring, KeyError> {
        let mut keys = Vec::new();
        for (id, secret) in secrets {
            if secret.len() < 32 {
                return Err(KeyError::TooShort(id));
            }
            keys.push((id, hmac::Key::new(hmac::HMAC_SHA256, &secret)));
        }
        Ok(Keyring { keys })
    }

    /// Reads every configured key, through `env` for variables (so tests never touch the
    /// process environment).
    pub fn load(sources: &[SecretSource], env: &dyn Fn(&str) -> Option<String>) -> Result<Keyring, KeyError> {
        let mut secrets = Vec::new();
        for source in sources {
            let raw = match (&source.file, &source.env) {
                (Some(path), None) => std::fs::read(path).map_err(|e| KeyError::Read {
                    id: source.id.clone(),
                    path: path.display().to_string(),
                    source: e,
                })?,
                (None, Some(var)) => env(var)
                    .ok_or_else(|| KeyError::MissingEnv { id: source.id.clone(), var: var.clone() })?
                    .into_bytes(),
                _ => return Err(KeyError::NoSource(source.id.clone())),
            };
            secrets.push((source.id.clone(), decode_secret(&raw)));
        }
        Keyring::from_secrets(secrets)
    }

    /// Mints a cookie value `kid.id.tag` for `id`.
    pub fn seal(&self, purpose: Purpose, id: &[u8; 32]) -> String {
        let Some((kid, key)) = self.keys.first() else { return String::new() };
        let tag = hmac::sign(key, &message(purpose, kid, id));
        format!("{kid}.{}.{}", URL_SAFE_NO_PAD.encode(id), URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Verifies a cookie value and returns its id, or `None` for anything forged, tampered,
    /// malformed or signed with a key no longer in the ring.
    pub fn open(&self, purpose: Purpose, value: &str) -> Option<[u8; 32]> {
        let mut parts = value.split('.');
        let (kid, id_b64, tag_b64) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || id_b64.len() != 43 || tag_b64.len() != 43 {
            return None;
        }
        let (_, key) = self.keys.iter().find(|(k, _)| k == kid)?;
        let mut id = [0u8; 32];
        let decoded = URL_SAFE_NO_PAD.decode(id_b64).ok()?;
        if decoded.len() != 32 {
            return None;
        }
        id.copy_from_slice(&decoded);
        let tag = URL_SAFE_NO_PAD.decode(tag_b64).ok()?;
        hmac::verify(key, &message(purpose, kid, &id), &tag).ok()?;
        Some(id)
    }
}

impl Keyring {
    /// A MAC of `id` alone (no id in the output), e.g. a CSRF token for a form bound to the
    /// pre-login handle in the browser's cookie.
    pub fn mac(&self, purpose: Purpose, id: &[u8; 32]) -> String {
        let Some((kid, key)) = self.keys.first() else { return String::new() };
        format!("{kid}.{}", URL_SAFE_NO_PAD.encode(hmac::sign(key, &message(purpose, kid, id)).as_ref()))
    }

    /// Verifies a [`Keyring::mac`] in constant time.
    pub fn verify_mac(&self, purpose: Purpose, id: &[u8; 32], token: &str) -> bool {
        let Some((kid, tag)) = token.split_once('.') else { return false };
        let Some((_, key)) = self.keys.iter().find(|(k, _)| k == kid) else { return false };
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else { return false };
        hmac::verify(key, &message(purpose, kid, id), &tag).is_ok()
    }
}

fn message(purpose: Purpose, kid: &str, id: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(64 + kid.len());
    m.extend_from_slice(purpose.label());
    m.extend_from_slice(kid.as_bytes());
    m.push(0);
    m.extend_from_slice(id);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(ids: &[(&str, u8)]) -> Keyring {
        Keyring::from_secrets(ids.iter().map(|(id, b)| (id.to_string(), vec![*b; 32])).collect()).unwrap()
    }

    #[test]
    fn sealed_value_opens_with_same_purpose_only() {
        let r = ring(&[("k1", 1)]);
        let id = [7u8; 32];
        let v = r.seal(Purpose::Session, &id);
        assert_eq!(r.open(Purpose::Session, &v), Some(id));
        assert_eq!(r.open(Purpose::Login, &v), None);
    }

    #[test]
    fn tampered_forged_and_malformed_values_are_refused() {
        let r = ring(&[("k1", 1)]);
        let v = r.seal(Purpose::Session, &[7u8; 32]);
        let mut bytes = v.clone().into_bytes();
        let i = bytes.len() / 2;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        assert_eq!(r.open(Purpose::Session, std::str::from_utf8(&bytes).unwrap()), None);
        let forged = ring(&[("k1", 2)]).seal(Purpose::Session, &[7u8; 32]);
        assert_eq!(r.open(Purpose::Session, &forged), None);
        for junk in ["", "k1", "k1..", "k1.a.b", &format!("{v}.x"), "k9.AAAA.BBBB"] {
            assert_eq!(r.open(Purpose::Session, junk), None, "{junk}");
        }
    }

    #[test]
    fn csrf_mac_verifies_only_for_its_handle() {
        let r = ring(&[("k1", 1)]);
        let token = r.mac(Purpose::Csrf, &[1u8; 32]);
        assert!(r.verify_mac(Purpose::Csrf, &[1u8; 32], &token));
        assert!(!r.verify_mac(Purpose::Csrf, &[2u8; 32], &token));
        assert!(!r.verify_mac(Purpose::Login, &[1u8; 32], &token));
        assert!(!r.verify_mac(Purpose::Csrf, &[1u8; 32], "k1.AAAA"));
        assert!(!token.contains(&URL_SAFE_NO_PAD.encode([1u8; 32])), "the handle is not revealed");
    }

    #[test]
    fn rotation_old_key_verifies_new_key_signs() {
        let old = ring(&[("old", 1)]);
        let rotated = ring(&[("new", 2), ("old", 1)]);
        let v = old.seal(Purpose::Session, &[9u8; 32]);
        assert_eq!(rotated.open(Purpose::Session, &v), Some([9u8; 32]));
        assert!(rotated.seal(Purpose::Session, &[9u8; 32]).starts_with("new."));
        let retired = ring(&[("new", 2)]);
        assert_eq!(retired.open(Purpose::Session, &v), None);
    }

    #[test]
    fn short_keys_are_refused_and_base64_keys_are_decoded() {
        assert!(matches!(Keyring::from_secrets(vec![("k".into(), vec![0; 31])]), Err(KeyError::TooShort(_))));
        let b64 = STANDARD.encode([5u8; 32]);
        assert_eq!(decode_secret(format!("{b64}\n").as_bytes()), vec![5u8; 32]);
        assert_eq!(decode_secret(&[b'x'; 40]), vec![b'x'; 40]);
    }
}
