//! Encryption at rest of what a shared store holds (sessions, pending logins).
//!
//! A Redis dump, replica or backup holds identities, IdP logout state and upstream tokens;
//! none of it may be readable or forgeable by whoever gets the dump. Every record is sealed
//! with AES-256-GCM under a key derived from a session key of the keyring (HMAC of the key
//! with a domain label, so the record key is never a cookie key), and carries the id of that
//! key, so records written before a key rotation still open while the old key is in the ring.
//!
//! The associated data binds a record to its kind and its store key: a record copied to
//! another key (another user's session id hash) or from the pending-login space into the
//! session space fails to open. The nonce is random per record (96 bits; a session key
//! seals far fewer than 2^32 records before it is rotated).
//!
//! The names of the logout index sets are HMACs of `(provider, subject)` / `(provider, sid)`
//! under another derived key: subjects are personal data (birth-number based pseudonyms are
//! guessable), a plain hash would be reversible by enumeration.

use aws_lc_rs::aead::{Aad, Nonce, RandomizedNonceKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::hmac;

use super::StoreKey;

/// What a sealed record is (part of the associated data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// A logged-in session.
    Session,
    /// A pending login.
    Pending,
    /// The subject a SAML NameID logged in as (single logout, `redis/slo.rs`).
    NameId,
    /// What the audit event of a session's expiry needs once the session's record is gone
    /// (`redis/live.rs`).
    SessionEnd,
}

impl RecordKind {
    fn label(self) -> &'static [u8] {
        match self {
            RecordKind::Session => b"aisgate/store/session/v1\0",
            RecordKind::Pending => b"aisgate/store/pending/v1\0",
            RecordKind::NameId => b"aisgate/store/name-id/v1\0",
            RecordKind::SessionEnd => b"aisgate/store/session-end/v1\0",
        }
    }
}

/// Why a record did not open. Never says more than that to a caller: the record is treated
/// as absent.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Shorter than the framing or with a malformed key id.
    #[error("malformed store record")]
    Malformed,
    /// Sealed with a key id that is no longer (or never was) in the keyring.
    #[error("store record sealed with an unknown key")]
    UnknownKey,
    /// The tag does not verify: tampered, moved to another key, or another kind.
    #[error("store record does not authenticate")]
    Forged,
}

/// One derived key pair of a keyring entry.
struct Entry {
    kid: String,
    aead: RandomizedNonceKey,
    index: hmac::Key,
}

/// The record keys derived from a [`Keyring`](super::keyring::Keyring); the first seals,
/// all open.
pub struct RecordKeys {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for RecordKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordKeys").field("key_ids", &self.entries.iter().map(|e| &e.kid).collect::<Vec<_>>()).finish()
    }
}

impl RecordKeys {
    /// Derives the record keys from the session keys (`(key id, HMAC key of the secret)`,
    /// signing key first).
    pub(crate) fn derive<'a>(keys: impl IntoIterator<Item = (&'a str, &'a hmac::Key)>) -> RecordKeys {
        let entries = keys
            .into_iter()
            .filter_map(|(kid, key)| {
                let aead_bytes = hmac::sign(key, b"aisgate/store-record-key/v1\0");
                let index_bytes = hmac::sign(key, b"aisgate/store-index-key/v1\0");
                // SHA-256 output is 32 bytes, exactly an AES-256 key: construction cannot fail.
                let aead = RandomizedNonceKey::new(&AES_256_GCM, aead_bytes.as_ref()).ok()?;
                let index = hmac::Key::new(hmac::HMAC_SHA256, index_bytes.as_ref());
                // Key ids are written as one length byte: longer ids are not usable here.
                (kid.len() <= usize::from(u8::MAX)).then(|| Entry { kid: kid.to_owned(), aead, index })
            })
            .collect();
        RecordKeys { entries }
    }

    /// Seals `plaintext` as a record of `kind` stored under `key`; `header` is stored in the
    /// clear in front of the record (and authenticated with it).
    ///
    /// Layout: `header | kid length (1) | kid | nonce (12) | ciphertext | tag (16)`.
    pub fn seal(&self, kind: RecordKind, key: &StoreKey, header: &[u8], plaintext: &[u8]) -> Option<Vec<u8>> {
        let entry = self.entries.first()?;
        let mut body = plaintext.to_vec();
        let nonce =
            entry.aead.seal_in_place_append_tag(Aad::from(aad(kind, key, header, &entry.kid)), &mut body).ok()?;
        let mut out = Vec::with_capacity(header.len() + 1 + entry.kid.len() + NONCE_LEN + body.len());
        out.extend_from_slice(header);
        out.push(u8::try_from(entry.kid.len()).ok()?);
        out.extend_from_slice(entry.kid.as_bytes());
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(&body);
        Some(out)
    }

    /// Opens a record sealed by [`RecordKeys::seal`] whose clear header is `header_len`
    /// bytes long.
    pub fn open(
        &self,
        kind: RecordKind,
        key: &StoreKey,
        record: &[u8],
        header_len: usize,
    ) -> Result<Vec<u8>, RecordError> {
        let (header, rest) = record.split_at_checked(header_len).ok_or(RecordError::Malformed)?;
        let (&kid_len, rest) = rest.split_first().ok_or(RecordError::Malformed)?;
        let (kid, rest) = rest.split_at_checked(usize::from(kid_len)).ok_or(RecordError::Malformed)?;
        let (nonce, sealed) = rest.split_at_checked(NONCE_LEN).ok_or(RecordError::Malformed)?;
        let kid = std::str::from_utf8(kid).map_err(|_| RecordError::Malformed)?;
        let entry = self.entries.iter().find(|e| e.kid == kid).ok_or(RecordError::UnknownKey)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| RecordError::Malformed)?;
        let mut body = sealed.to_vec();
        let plain = entry
            .aead
            .open_in_place(nonce, Aad::from(aad(kind, key, header, kid)), &mut body)
            .map_err(|_| RecordError::Forged)?;
        let len = plain.len();
        body.truncate(len);
        Ok(body)
    }

    /// The name of the logout index set for `(provider, kind, value)` under the sealing key
    /// (where new sessions are indexed).
    pub fn index_name(&self, kind: &str, provider: &str, value: &str) -> Option<[u8; 32]> {
        self.entries.first().map(|e| index_name(&e.index, kind, provider, value))
    }

    /// The names of that set under every key of the ring (sessions indexed before a key
    /// rotation are found too).
    pub fn index_names(&self, kind: &str, provider: &str, value: &str) -> Vec<[u8; 32]> {
        self.entries.iter().map(|e| index_name(&e.index, kind, provider, value)).collect()
    }
}

fn index_name(key: &hmac::Key, kind: &str, provider: &str, value: &str) -> [u8; 32] {
    let mut ctx = hmac::Context::with_key(key);
    // Length-prefixed fields: ("ab","c") and ("a","bc") never collide.
    for field in [kind, provider, value] {
        ctx.update(&(field.len() as u64).to_be_bytes());
        ctx.update(field.as_bytes());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

fn aad(kind: RecordKind, key: &StoreKey, header: &[u8], kid: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(96 + header.len() + kid.len());
    aad.extend_from_slice(kind.label());
    aad.extend_from_slice(&key.0);
    aad.extend_from_slice(&(header.len() as u64).to_be_bytes());
    aad.extend_from_slice(header);
    aad.extend_from_slice(kid.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(ids: &[(&str, u8)]) -> RecordKeys {
        let keys: Vec<(String, hmac::Key)> =
            ids.iter().map(|(id, b)| ((*id).to_owned(), hmac::Key::new(hmac::HMAC_SHA256, &[*b; 32]))).collect();
        RecordKeys::derive(keys.iter().map(|(id, k)| (id.as_str(), k)))
    }

    #[test]
    fn a_record_opens_only_under_its_own_key_kind_and_header() {
        let ring = keys(&[("k1", 1)]);
        let (a, b) = (StoreKey::of(&[1; 32]), StoreKey::of(&[2; 32]));
        let sealed = ring.seal(RecordKind::Session, &a, b"123\n", b"secret-identity").unwrap();
        assert!(sealed.starts_with(b"123\n"));
        assert!(!sealed.windows(6).any(|w| w == b"secret"), "the payload is not in the clear");
        assert_eq!(ring.open(RecordKind::Session, &a, &sealed, 4).unwrap(), b"secret-identity");
        assert_eq!(ring.open(RecordKind::Session, &b, &sealed, 4), Err(RecordError::Forged), "moved to another key");
        assert_eq!(ring.open(RecordKind::Pending, &a, &sealed, 4), Err(RecordError::Forged), "another kind");
        let mut longer = sealed.clone();
        longer[0] = b'9';
        assert_eq!(ring.open(RecordKind::Session, &a, &longer, 4), Err(RecordError::Forged), "header changed");
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(ring.open(RecordKind::Session, &a, &flipped, 4), Err(RecordError::Forged));
        assert_eq!(ring.open(RecordKind::Session, &a, &sealed[..10], 4), Err(RecordError::Malformed));
    }

    #[test]
    fn records_of_a_rotated_out_key_open_while_it_is_in_the_ring_only() {
        let old = keys(&[("old", 1)]);
        let key = StoreKey::of(&[3; 32]);
        let sealed = old.seal(RecordKind::Pending, &key, b"", b"state").unwrap();
        let rotated = keys(&[("new", 2), ("old", 1)]);
        assert_eq!(rotated.open(RecordKind::Pending, &key, &sealed, 0).unwrap(), b"state");
        let resealed = rotated.seal(RecordKind::Pending, &key, b"", b"state").unwrap();
        assert_eq!(&resealed[1..4], b"new", "the first key seals");
        assert_eq!(keys(&[("new", 2)]).open(RecordKind::Pending, &key, &sealed, 0), Err(RecordError::UnknownKey));
        assert_eq!(
            rotated.index_names("sub", "caais", "alice"),
            vec![
                rotated.index_name("sub", "caais", "alice").unwrap(),
                old.index_name("sub", "caais", "alice").unwrap()
            ]
        );
        assert_ne!(rotated.index_name("sub", "caais", "alice"), rotated.index_name("sid", "caais", "alice"));
    }
}
