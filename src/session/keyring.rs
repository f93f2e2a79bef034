//! The session keyring: authenticates cookie values so forged ids never reach the store.
//!
//! Several keys may be configured for rotation: the first signs, all verify. Each purpose
//! (session cookie, pre-login cookie) is domain-separated, so a value minted for one can never
//! be replayed as the other. Comparison is constant-time (aws-lc's `verify_slices_are_equal`, what
//! `hmac::verify` uses).
//!
//! Key files and variables are read strictly (issue 15 item 12): text is canonical, padded,
//! standard base64 (what `head -c 32 /dev/urandom | base64` prints) with at most one final
//! newline; anything else that looks like base64 (URL-safe alphabet, missing padding, inner
//! whitespace or line breaks, non-canonical trailing bits) is refused with its position,
//! instead of being silently taken as raw bytes — a mangled key that "works" on one instance
//! and differs on the next is worse than a startup error. A file of binary bytes (any byte
//! outside the base64 alphabet) is taken raw. The secret bytes are wiped after use.

use aws_lc_rs::{constant_time, hmac};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;

use zeroize::Zeroizing;

use crate::config::SecretSource;
use crate::identity::LogLabelKey;

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
    /// The app host's cookie binding a login on the central login host to the browser
    /// (`gateway::handoff`).
    Handoff,
    /// The commitment to that binding which travels to the login host (a MAC of the binding
    /// id; the id itself never leaves the cookie).
    HandoffBinding,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Session => b"aisgate/session/v1\0",
            Purpose::Login => b"aisgate/login/v1\0",
            Purpose::Csrf => b"aisgate/csrf/v1\0",
            Purpose::LoopGuard => b"aisgate/loop/v1\0",
            Purpose::Logout => b"aisgate/logout/v1\0",
            Purpose::Handoff => b"aisgate/handoff/v1\0",
            Purpose::HandoffBinding => b"aisgate/handoff-binding/v1\0",
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
    /// Text that is not canonical padded standard base64.
    #[error("session key {id:?}: {source_name}:{line}:{column}: {reason}")]
    BadBase64 {
        /// Key id.
        id: String,
        /// The file, or `environment variable NAME`.
        source_name: String,
        /// Line in the source, from 1.
        line: usize,
        /// Column (byte) in that line, from 1.
        column: usize,
        /// What is wrong there.
        reason: &'static str,
    },
    /// Neither or both sources.
    #[error("session key {0:?} needs exactly one of file or env")]
    NoSource(String),
}

impl KeyError {
    /// The id of the key the error is about.
    pub fn key_id(&self) -> &str {
        match self {
            KeyError::Read { id, .. } | KeyError::MissingEnv { id, .. } | KeyError::BadBase64 { id, .. } => id,
            KeyError::TooShort(id) | KeyError::NoSource(id) => id,
        }
    }
}

/// Authenticating keys for cookie values.
pub struct Keyring {
    keys: Vec<(String, hmac::Key)>,
    label_key: Option<LogLabelKey>,
    /// This keyring's number, never reused: the per-worker cache of verified session cookies
    /// ([`Keyring::open_session`]) belongs to one keyring, so a reload (a new keyring, perhaps
    /// without a key or with another secret under the same id) starts from an empty cache.
    generation: u64,
}

/// Session cookies verified on this thread, for the keyring numbered `ring` (see
/// [`Keyring::open_session`]): store key → (index of the key that verified it, its tag). Neither
/// a cookie value nor a session id is kept: the store key is SHA-256 of the id (what the
/// session store holds anyway), and a tag is useless without the id it authenticates.
struct VerifiedSessions {
    ring: u64,
    entries: std::collections::HashMap<[u8; 32], (usize, [u8; 32])>,
}

/// At most this many verified session cookies per worker thread (~100 bytes each); when full,
/// the cache starts over (the next request of each session verifies its MAC again).
const VERIFIED_PER_THREAD: usize = 4096;

thread_local! {
    static VERIFIED: std::cell::RefCell<VerifiedSessions> =
        std::cell::RefCell::new(VerifiedSessions { ring: 0, entries: std::collections::HashMap::new() });
}

/// Numbers keyrings (from 1: 0 is the empty cache's).
static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Keyring").field("key_ids", &self.keys.iter().map(|(id, _)| id).collect::<Vec<_>>()).finish()
    }
}

/// Where a strict decode failed: byte offset in the input and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BadText {
    offset: usize,
    reason: &'static str,
}

/// Whether `b` may appear in base64 text (either alphabet, padding, or whitespace).
fn base64ish(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'=') || b.is_ascii_whitespace()
}

/// Decodes a secret strictly (see the module docs). `allow_raw`: binary input is the key
/// itself (files); otherwise it is an error (environment variables are text).
fn decode_secret(raw: &[u8], allow_raw: bool) -> Result<Zeroizing<Vec<u8>>, BadText> {
    if !raw.iter().all(|b| base64ish(*b)) {
        if allow_raw {
            return Ok(Zeroizing::new(raw.to_vec()));
        }
        let offset = raw.iter().position(|b| !base64ish(*b)).unwrap_or(0);
        return Err(BadText { offset, reason: "not base64 text" });
    }
    let text = raw.strip_suffix(b"\r\n").or_else(|| raw.strip_suffix(b"\n")).unwrap_or(raw);
    if let Some(offset) = text.iter().position(u8::is_ascii_whitespace) {
        return Err(BadText {
            offset,
            reason: "whitespace or a line break inside the key (write it on one line: base64 -w0)",
        });
    }
    if let Some(offset) = text.iter().position(|b| matches!(b, b'-' | b'_')) {
        return Err(BadText { offset, reason: "URL-safe base64: use the standard alphabet (+ and /)" });
    }
    if text.is_empty() {
        return Err(BadText { offset: 0, reason: "empty" });
    }
    // STANDARD: padding required and canonical, no trailing bits.
    STANDARD.decode(text).map(Zeroizing::new).map_err(|e| match e {
        base64::DecodeError::InvalidByte(offset, b'=') => BadText { offset, reason: "misplaced padding" },
        base64::DecodeError::InvalidByte(offset, _) => BadText { offset, reason: "invalid base64 character" },
        base64::DecodeError::InvalidLastSymbol(offset, _) => {
            BadText { offset, reason: "non-canonical last character (trailing bits set)" }
        }
        base64::DecodeError::InvalidLength(_) | base64::DecodeError::InvalidPadding => {
            BadText { offset: text.len(), reason: "missing or wrong padding (= at the end)" }
        }
    })
}

/// Line and column (from 1) of byte `offset` in `raw`.
fn line_column(raw: &[u8], offset: usize) -> (usize, usize) {
    let before = &raw[..offset.min(raw.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = offset - before.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1) + 1;
    (line, column)
}

impl Keyring {
    /// Builds a keyring from raw secrets (first = signing key).
    pub fn from_secrets(secrets: Vec<(String, Vec<u8>)>) -> Result<Keyring, KeyError> {
        let mut keys = Vec::new();
        let mut label_key = None;
        for (id, secret) in secrets {
            let secret = Zeroizing::new(secret);
            if secret.len() < 32 {
                return Err(KeyError::TooShort(id));
            }
            let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
            if label_key.is_none() {
                // A key of its own, derived from the signing key (domain-separated), so a log
                // label can never be a cookie tag.
                let derived = hmac::sign(&key, b"aisgate/log-label/v1\0");
                label_key = Some(LogLabelKey::from_bytes(derived.as_ref()));
            }
            keys.push((id, key));
        }
        let generation = GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Keyring { keys, label_key, generation })
    }

    /// Reads every configured key, through `env` for variables (so tests never touch the
    /// process environment).
    pub fn load(sources: &[SecretSource], env: &dyn Fn(&str) -> Option<String>) -> Result<Keyring, KeyError> {
        let mut secrets = Vec::new();
        for source in sources {
            let (raw, source_name, allow_raw) = match (&source.file, &source.env) {
                (Some(path), None) => (
                    Zeroizing::new(std::fs::read(path).map_err(|e| KeyError::Read {
                        id: source.id.clone(),
                        path: path.display().to_string(),
                        source: e,
                    })?),
                    path.display().to_string(),
                    true,
                ),
                (None, Some(var)) => (
                    Zeroizing::new(
                        env(var)
                            .ok_or_else(|| KeyError::MissingEnv { id: source.id.clone(), var: var.clone() })?
                            .into_bytes(),
                    ),
                    format!("environment variable {var}"),
                    false,
                ),
                _ => return Err(KeyError::NoSource(source.id.clone())),
            };
            let secret = decode_secret(&raw, allow_raw).map_err(|bad| {
                let (line, column) = line_column(&raw, bad.offset);
                KeyError::BadBase64 { id: source.id.clone(), source_name, line, column, reason: bad.reason }
            })?;
            secrets.push((source.id.clone(), secret.to_vec()));
        }
        Keyring::from_secrets(secrets)
    }

    /// Mints a cookie value `kid.id.tag` for `id`.
    pub fn seal(&self, purpose: Purpose, id: &[u8; 32]) -> String {
        let Some((kid, key)) = self.keys.first() else { return String::new() };
        let tag = tag_of(key, purpose, kid, id);
        format!("{kid}.{}.{}", URL_SAFE_NO_PAD.encode(id), URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Verifies a cookie value and returns its id, or `None` for anything forged, tampered,
    /// malformed or signed with a key no longer in the ring.
    ///
    /// Runs for every authenticated request, so it allocates nothing: id and tag are decoded
    /// into stack arrays and the MAC is computed over the message's parts in place. The tag
    /// comparison is aws-lc's constant-time one (what `hmac::verify` does after signing).
    pub fn open(&self, purpose: Purpose, value: &str) -> Option<[u8; 32]> {
        let (kid, id_b64, tag_b64) = split_value(value)?;
        let (_, key) = self.keys.iter().find(|(k, _)| k == kid)?;
        let id = decode_32(id_b64)?;
        let tag = decode_32(tag_b64)?;
        constant_time::verify_slices_are_equal(tag_of(key, purpose, kid, &id).as_ref(), &tag).ok()?;
        Some(id)
    }

    /// [`Keyring::open`] for the session cookie, giving the id's store key (all the proxy's path
    /// needs of it). The MAC of a value
    /// verified before on this thread by this keyring is not computed again (an HMAC is most of
    /// the cost of a proxied request's cookie check): the cache holds, per store key, the index
    /// of the key that verified it and the tag. A presented value is taken from the cache only
    /// when its id has that store key — by SHA-256's collision resistance, the very id that was
    /// verified — and its key id and tag (compared in constant time) are the verified ones: the
    /// value `open` accepted. Anything else is verified in full.
    pub(crate) fn open_session(&self, value: &str) -> Option<super::StoreKey> {
        let (kid, id_b64, tag_b64) = split_value(value)?;
        let (index, (_, key)) = self.keys.iter().enumerate().find(|(_, (k, _))| k == kid)?;
        let id = decode_32(id_b64)?;
        let tag = decode_32(tag_b64)?;
        let store_key = super::StoreKey::of(&id);
        let cached = VERIFIED.with(|cache| {
            let cache = cache.borrow();
            (cache.ring == self.generation).then(|| cache.entries.get(&store_key.0).copied()).flatten()
        });
        if let Some((cached_index, cached_tag)) = cached {
            if cached_index == index && constant_time::verify_slices_are_equal(&cached_tag, &tag).is_ok() {
                return Some(store_key);
            }
        }
        constant_time::verify_slices_are_equal(tag_of(key, Purpose::Session, kid, &id).as_ref(), &tag).ok()?;
        VERIFIED.with(|cache| {
            let mut cache = cache.borrow_mut();
            if cache.ring != self.generation || cache.entries.len() >= VERIFIED_PER_THREAD {
                cache.ring = self.generation;
                cache.entries.clear();
            }
            cache.entries.insert(store_key.0, (index, tag));
        });
        Some(store_key)
    }
}

/// A cookie value's parts: `kid.` then exactly 43 + `.` + 43 characters (a `.` anywhere in the
/// last two is not base64url and fails their decoding).
fn split_value(value: &str) -> Option<(&str, &str, &str)> {
    let (kid, rest) = value.split_once('.')?;
    if rest.len() != 87 || rest.as_bytes()[43] != b'.' {
        return None;
    }
    Some((kid, rest.get(..43)?, rest.get(44..)?))
}

/// Decodes 43 characters of unpadded base64url into the 32 bytes they must encode (canonical:
/// no trailing bits), on the stack.
fn decode_32(text: &str) -> Option<[u8; 32]> {
    // The engine's length estimate for 43 characters is 33 bytes: room for it, then exactly 32.
    let mut buf = [0u8; 33];
    let len = URL_SAFE_NO_PAD.decode_slice(text, &mut buf).ok()?;
    let mut out = [0u8; 32];
    out.copy_from_slice(buf.get(..32).filter(|_| len == 32)?);
    Some(out)
}

impl Keyring {
    /// The keys sealing records at rest in a shared store, derived from these session keys
    /// (see [`super::record`]).
    pub fn record_keys(&self) -> super::record::RecordKeys {
        super::record::RecordKeys::derive(self.keys.iter().map(|(id, key)| (id.as_str(), key)))
    }

    /// A key derived from each session key for `label` (a domain label no other use shares),
    /// with its key id, the signing key first: for names a store computes from personal data
    /// that a dump must not reveal (HMACs), stable across instances and restarts.
    pub(crate) fn derived_keys(&self, label: &[u8]) -> Vec<(String, hmac::Key)> {
        let derive = |key: &hmac::Key| hmac::Key::new(hmac::HMAC_SHA256, hmac::sign(key, label).as_ref());
        self.keys.iter().map(|(kid, key)| (kid.clone(), derive(key))).collect()
    }

    /// The key for log labels (see [`LogLabelKey`]).
    pub fn log_label_key(&self) -> LogLabelKey {
        self.label_key.clone().unwrap_or_else(LogLabelKey::random)
    }

    /// A MAC of `id` alone (no id in the output), e.g. a CSRF token for a form bound to the
    /// pre-login handle in the browser's cookie.
    pub fn mac(&self, purpose: Purpose, id: &[u8; 32]) -> String {
        let Some((kid, key)) = self.keys.first() else { return String::new() };
        format!("{kid}.{}", URL_SAFE_NO_PAD.encode(tag_of(key, purpose, kid, id).as_ref()))
    }

    /// Verifies a [`Keyring::mac`] in constant time.
    pub fn verify_mac(&self, purpose: Purpose, id: &[u8; 32], token: &str) -> bool {
        let Some((kid, tag)) = token.split_once('.') else { return false };
        let Some((_, key)) = self.keys.iter().find(|(k, _)| k == kid) else { return false };
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else { return false };
        constant_time::verify_slices_are_equal(tag_of(key, purpose, kid, id).as_ref(), &tag).is_ok()
    }
}

/// The MAC of `id` for `purpose` under key `kid`: HMAC-SHA-256 over `label || kid || 0 || id`,
/// fed to the context part by part (no message buffer).
fn tag_of(key: &hmac::Key, purpose: Purpose, kid: &str, id: &[u8; 32]) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(purpose.label());
    ctx.update(kid.as_bytes());
    ctx.update(&[0]);
    ctx.update(id);
    ctx.sign()
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

    /// `open` feeds the MAC its message in parts (no buffer): the bytes MACed must stay
    /// `label || kid || 0 || id`, or every cookie minted before would stop opening.
    #[test]
    fn the_mac_covers_label_key_id_and_id_as_one_message() {
        let r = ring(&[("k1", 1)]);
        let id = [7u8; 32];
        let mut message = b"aisgate/session/v1\0k1\0".to_vec();
        message.extend_from_slice(&id);
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &[1u8; 32]), &message);
        let value = format!("k1.{}.{}", URL_SAFE_NO_PAD.encode(id), URL_SAFE_NO_PAD.encode(tag.as_ref()));
        assert_eq!(r.seal(Purpose::Session, &id), value);
        assert_eq!(r.open(Purpose::Session, &value), Some(id));
    }

    /// The last of 43 base64 characters carries 2 unused bits: a value with them set decodes to
    /// the same bytes, and is refused (one cookie has one spelling).
    #[test]
    fn non_canonical_base64_in_a_cookie_value_is_refused() {
        let r = ring(&[("k1", 1)]);
        let v = r.seal(Purpose::Session, &[7u8; 32]);
        let (kid, rest) = v.split_once('.').unwrap();
        let (id, tag) = rest.split_once('.').unwrap();
        let bump = |s: &str| {
            let mut b = s.as_bytes().to_vec();
            let last = URL_SAFE_NO_PAD_ALPHABET.iter().position(|c| *c == b[42]).unwrap();
            b[42] = URL_SAFE_NO_PAD_ALPHABET[last | 1];
            String::from_utf8(b).unwrap()
        };
        for (i, t) in [(bump(id), tag.to_owned()), (id.to_owned(), bump(tag))] {
            assert_ne!((i.as_str(), t.as_str()), (id, tag), "the test changes the value");
            assert_eq!(r.open(Purpose::Session, &format!("{kid}.{i}.{t}")), None);
        }
        assert_eq!(r.open(Purpose::Session, &v), Some([7u8; 32]));
    }

    /// The per-worker cache of verified session cookies accepts exactly what `open` accepts:
    /// a second look at a value comes from the cache, a tampered tag, another key id or a value
    /// for another purpose does not.
    #[test]
    fn a_verified_session_cookie_is_taken_from_the_cache_only_with_its_own_tag_and_key() {
        let r = ring(&[("k1", 1), ("k2", 2)]);
        let id = [3u8; 32];
        let v = r.seal(Purpose::Session, &id);
        let expected = Some(crate::session::StoreKey::of(&id));
        assert_eq!(r.open_session(&v), expected);
        assert_eq!(r.open_session(&v), expected, "again, from the cache");
        let (kid, rest) = v.split_once('.').unwrap();
        let (id_b64, tag_b64) = rest.split_once('.').unwrap();
        let mut tag = URL_SAFE_NO_PAD.decode(tag_b64).unwrap();
        tag[31] ^= 1;
        let tampered = format!("{kid}.{id_b64}.{}", URL_SAFE_NO_PAD.encode(&tag));
        assert_eq!(r.open_session(&tampered), None, "same id, wrong tag");
        assert_eq!(r.open_session(&format!("k2.{rest}")), None, "the tag of k1 under k2");
        let login = r.seal(Purpose::Login, &id);
        assert_eq!(r.open_session(&login), None, "a pre-login value for the same id");
        assert_eq!(r.open_session(&v), expected, "the genuine value still opens");
    }

    /// A reload builds a new keyring: a key removed, or another secret under the same key id,
    /// must not be trusted through what the old keyring verified on this thread.
    #[test]
    fn a_new_keyring_does_not_trust_what_the_old_one_verified() {
        let old = ring(&[("k1", 1)]);
        let v = old.seal(Purpose::Session, &[4u8; 32]);
        assert!(old.open_session(&v).is_some());
        assert!(old.open_session(&v).is_some(), "cached");
        let same_id_other_secret = ring(&[("k1", 9)]);
        assert_eq!(same_id_other_secret.open_session(&v), None);
        // The cache is bounded: past its size it starts over.
        let r = ring(&[("k1", 1)]);
        for i in 0..=VERIFIED_PER_THREAD {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&(i as u64).to_le_bytes());
            assert!(r.open_session(&r.seal(Purpose::Session, &id)).is_some());
        }
        let cached = VERIFIED.with(|c| c.borrow().entries.len());
        assert!((1..=VERIFIED_PER_THREAD).contains(&cached), "{cached}");
    }

    const URL_SAFE_NO_PAD_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

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
        assert_eq!(*decode_secret(format!("{b64}\n").as_bytes(), false).unwrap(), vec![5u8; 32]);
        assert_eq!(*decode_secret(format!("{b64}\r\n").as_bytes(), false).unwrap(), vec![5u8; 32]);
        // Binary key files are the key itself.
        let binary: Vec<u8> = (0..40u8).map(|b| b.wrapping_mul(37) | 0x80).collect();
        assert_eq!(*decode_secret(&binary, true).unwrap(), binary);
        assert!(decode_secret(&binary, false).is_err(), "an environment variable holds text");
    }

    /// Issue 15 item 12: text that is not canonical padded standard base64 is refused with
    /// its position. The old decoder fell back to the raw text bytes (a different key).
    #[test]
    fn ambiguous_base64_keys_are_refused_with_their_position() {
        let b64 = STANDARD.encode([0xfbu8; 32]); // contains '+' and '/'
        let url_safe = b64.replace('+', "-").replace('/', "_");
        let unpadded = b64.trim_end_matches('=').to_owned();
        let wrapped = format!("{}\n{}\n", &b64[..20], &b64[20..]);
        let spaced = format!(" {b64}");
        let mut bits = b64.clone().into_bytes();
        bits[42] = b'x'; // last symbol of 32 bytes carries 4 unused bits: must be zero
        let bits = String::from_utf8(bits).unwrap();
        for (text, line, column, reason) in [
            (url_safe.as_str(), 1, url_safe.find(['-', '_']).unwrap() + 1, "URL-safe"),
            (unpadded.as_str(), 1, 44, "padding"),
            (wrapped.as_str(), 1, 21, "line break"),
            (spaced.as_str(), 1, 1, "whitespace"),
            (bits.as_str(), 1, 43, "non-canonical"),
        ] {
            let sources = [SecretSource { id: "k1".into(), file: None, env: Some("KEY".into()) }];
            let err = Keyring::load(&sources, &|_| Some(text.to_owned())).unwrap_err();
            match &err {
                KeyError::BadBase64 { id, source_name, line: l, column: c, reason: r } => {
                    assert_eq!((id.as_str(), source_name.as_str()), ("k1", "environment variable KEY"));
                    assert_eq!((*l, *c), (line, column), "{text:?}: {err}");
                    assert!(r.contains(reason), "{text:?}: {r}");
                }
                other => panic!("{text:?}: {other}"),
            }
            assert!(err.to_string().contains(&format!("environment variable KEY:{line}:{column}")), "{err}");
        }
    }

    #[test]
    fn a_key_file_error_names_the_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.key");
        std::fs::write(&path, format!("{}\n\n", STANDARD.encode([1u8; 32]))).unwrap();
        let sources = [SecretSource { id: "c1".into(), file: Some(path.clone()), env: None }];
        let err = Keyring::load(&sources, &|_| None).unwrap_err().to_string();
        assert!(err.contains(&format!("{}:1:45", path.display())), "{err}");
    }

    #[test]
    fn debug_output_contains_no_key_material() {
        let r = ring(&[("k1", 0x41)]);
        let dbg = format!("{r:?} {:?}", r.log_label_key());
        assert!(dbg.contains("k1") && !dbg.contains("AAAA") && !dbg.contains("65, 65"), "{dbg}");
    }
}
