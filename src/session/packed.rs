//! [`PackedJws`]: a compact JWS (the OIDC ID token a session keeps for logout) held in about
//! 40 % of its size, given back byte for byte.
//!
//! CAAIS requires the ID token of the login as `id_token_hint` at logout (caais.md §1.10), so
//! a CAAIS session keeps it for its whole life: ~1.5 KB of base64url text, the largest part
//! of an idle session (issue 13 item 3, bench/README.md "Session memory"). Kept packed it
//! costs ~0.6 KB: the three segments base64url-decoded (6 bits of every 8 were information),
//! the RSA signature as its raw bytes (random: nothing to compress) and the JSON header and
//! payload deflated against a preset dictionary of the documented claim names ([`DICTIONARY`];
//! a payload is mostly claim names and JSON punctuation).
//!
//! Exactness is checked, not assumed: a token is packed only if unpacking the result gives
//! the very same string. Anything else — a non-canonical base64url segment (padding, the
//! standard alphabet, set trailing bits), not three segments (a JWE has five), a token
//! larger than 64 KiB or not made smaller by packing — is kept verbatim. So [`PackedJws::get`]
//! always returns what [`PackedJws::new`] was given.
//!
//! Unpacking costs a base64 encode and an inflate of ~1 KB, once per logout. Serialized (a
//! shared store's record) it is the token string, as before.

use std::io::{Read, Write};
use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use flate2::{read::DeflateDecoder, write::DeflateEncoder, Compression};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What the deflate stream of a header and payload is primed with: a JWS header and the
/// claim names of OIDC Core and of CAAIS (caais.md §1.6, §1.8), as JSON, most common last
/// (nearer matches cost fewer bits). Only names and punctuation: no user's data. Changing it
/// changes nothing stored (packing is per process, the serialized form is the token).
const DICTIONARY: &[u8] = br#"{"alg":"RS256","kid":"","typ":"JWT"}{"alg":"ES256"}{"document_ids":[{"type":"","document_id":""}],"birthdate":"","birthplace":"","country_of_birth":"","deathdate":"","time_limited_id":"","role":"","legal_entity_email":"","institution_type":"","authorized_private_entity_personal_data_user_identifier":"","legal_entity_unique_identifier":"","email":"","phone_number":"+420","preferred_username":"","login":"","loa":"","acr":"","SSOExpiration":"","access_roles":[{"access_role_code":""},{"access_role_code":""}],"activity_roles":[{"agenda_code":"","activity_role_code":["",""]}],"legal_entity_shorcut":"","lei":"","legal_entity_name":"","public_organization_identifier":"","at_hash":"","aud":"","auth_time":1,"azp":"","degree_after":"","degree_before":"","exp":1,"family_name":"","given_name":"","iat":1,"is_statutory_representative":false,"iss":"https://","jti":"","nbf":1,"nonce":"","person_identified":true,"sid":"","sub":"","username":""}"#;

/// Bytes in front of a packed token: header, payload and signature lengths (u16 each).
const LENGTHS: usize = 6;

/// A compact JWS kept packed (see the module docs). `Debug` prints no part of it.
///
/// One allocation, 16 bytes inline: a tag byte ([`PACKED`] or [`VERBATIM`]) and then
/// `lengths | signature | deflate(header JSON ++ payload JSON)`, or the token as given (it
/// does not pack exactly, or not smaller).
#[derive(Clone, PartialEq, Eq)]
pub struct PackedJws(Box<[u8]>);

/// Tag of a token kept as given.
const VERBATIM: u8 = 0;
/// Tag of a packed token.
const PACKED: u8 = 1;

impl PackedJws {
    /// Keeps `token`, packed when that gives it back exactly and is smaller.
    pub fn new(token: &str) -> PackedJws {
        let packed = pack(token).filter(|p| p.len() < token.len() && unpack(&p[1..]).as_deref() == Some(token));
        PackedJws(packed.unwrap_or_else(|| [&[VERBATIM], token.as_bytes()].concat()).into_boxed_slice())
    }

    /// The token, byte for byte as given to [`PackedJws::new`]. `None` only if the packed
    /// bytes no longer inflate — impossible, as packing was checked; a caller treats it
    /// as no token.
    pub fn get(&self) -> Option<String> {
        match self.0.split_first() {
            Some((&PACKED, packed)) => unpack(packed),
            Some((_, token)) => String::from_utf8(token.to_vec()).ok(),
            None => None,
        }
    }

    /// Whether there is no token (an empty string was given).
    pub fn is_empty(&self) -> bool {
        self.0.len() <= 1
    }

    /// Whether it is held packed (else verbatim).
    pub fn is_packed(&self) -> bool {
        self.0.first() == Some(&PACKED)
    }

    /// Heap bytes it owns: one block (see [`super::footprint`]).
    pub(crate) fn heap_bytes(&self) -> usize {
        super::footprint::block(self.0.len())
    }
}

impl std::fmt::Debug for PackedJws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_packed() { "PackedJws(packed)" } else { "PackedJws(verbatim)" })
    }
}

/// The token string, as the `String` it replaces was written.
impl Serialize for PackedJws {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let token = self.get().ok_or_else(|| serde::ser::Error::custom("packed ID token does not inflate"))?;
        serializer.serialize_str(&token)
    }
}

impl<'de> Deserialize<'de> for PackedJws {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<PackedJws, D::Error> {
        String::deserialize(deserializer).map(|token| PackedJws::new(&token))
    }
}

/// Decodes a segment, strictly: no padding, URL-safe alphabet, unused trailing bits zero
/// (`URL_SAFE_NO_PAD` refuses the rest, so encoding the result gives the segment back).
fn decode(segment: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(segment).ok()
}

/// `PACKED | lengths | signature | deflated`, if the token is three base64url segments.
fn pack(token: &str) -> Option<Vec<u8>> {
    let mut segments = token.split('.');
    let (header, payload, signature) = (segments.next()?, segments.next()?, segments.next()?);
    if segments.next().is_some() {
        return None;
    }
    let (header, payload, signature) = (decode(header)?, decode(payload)?, decode(signature)?);
    let mut out = Vec::with_capacity(1 + LENGTHS + signature.len() + (header.len() + payload.len()) / 2);
    out.push(PACKED);
    for part in [&header, &payload, &signature] {
        out.extend_from_slice(&u16::try_from(part.len()).ok()?.to_le_bytes());
    }
    out.extend_from_slice(&signature);
    let mut deflate = DeflateEncoder::new(out, Compression::best());
    deflate.write_all(DICTIONARY).ok()?;
    // A sync flush ends the dictionary's blocks on a byte boundary and keeps it in the
    // window: what follows refers back into it, and is all that is kept.
    deflate.flush().ok()?;
    let primed = deflate.get_ref().len();
    if deflate.get_ref()[1 + LENGTHS + signature.len()..] != *primer()? {
        return None;
    }
    deflate.write_all(&header).ok()?;
    deflate.write_all(&payload).ok()?;
    let mut out = deflate.finish().ok()?;
    out.drain(1 + LENGTHS + signature.len()..primed);
    Some(out)
}

/// The token of `lengths | signature | deflated` (a packed token without its tag).
fn unpack(packed: &[u8]) -> Option<String> {
    let (lengths, rest) = packed.split_at_checked(LENGTHS)?;
    let length = |i: usize| usize::from(u16::from_le_bytes([lengths[2 * i], lengths[2 * i + 1]]));
    let (header_len, payload_len, signature_len) = (length(0), length(1), length(2));
    let (signature, deflated) = rest.split_at_checked(signature_len)?;
    let expected = DICTIONARY.len() + header_len + payload_len;
    let mut inflated = Vec::with_capacity(expected);
    let stream = primer()?.chain(deflated);
    // At most one byte more than expected: enough to tell a longer stream from the right one.
    DeflateDecoder::new(stream).take(expected as u64 + 1).read_to_end(&mut inflated).ok()?;
    if inflated.len() != expected || !inflated.starts_with(DICTIONARY) {
        return None;
    }
    let (header, payload) = inflated[DICTIONARY.len()..].split_at(header_len);
    let mut token = String::with_capacity((header_len + payload_len + signature_len) * 4 / 3 + 4);
    URL_SAFE_NO_PAD.encode_string(header, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    Some(token)
}

/// The deflate stream of [`DICTIONARY`] up to its sync flush: what every packed token's
/// stream starts with (computed once; `None` if deflate fails, then nothing is packed).
fn primer() -> Option<&'static [u8]> {
    static PRIMER: OnceLock<Option<Vec<u8>>> = OnceLock::new();
    PRIMER
        .get_or_init(|| {
            let mut deflate = DeflateEncoder::new(Vec::new(), Compression::best());
            deflate.write_all(DICTIONARY).ok()?;
            deflate.flush().ok()?;
            Some(deflate.get_ref().clone())
        })
        .as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A signature-like segment: `n` bytes that do not compress.
    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn token(header: &str, payload: &str, signature: &[u8]) -> String {
        format!("{}.{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()), b64(signature))
    }

    const PAYLOAD: &str = r#"{"aud":"MY_AIS","auth_time":1755869708,"azp":"MY_AIS","degree_after":"","degree_before":"Sir","exp":1755872064,"family_name":"Appleby","given_name":"Humphrey","iat":1755870264,"is_statutory_representative":false,"iss":"https://rest-openidconnectapi.caais-test-ext.gov.cz/","jti":"c955d119-2927-45dc-a6dd-68ee7f9a0f31","nonce":"my_nonce","person_identified":false,"sid":"eMixuOvXWbt6xqZP-FEoAmUIoRc33GWp894xk0B60Ew","sub":"16b33670-a816-4c1a-8712-d99e9ff85fec","username":"humphrey_appleby"}"#;

    /// caais.md §1.10: the ID token comes back byte for byte, whatever the segment lengths
    /// (every base64url remainder: 0, 2 and 3 characters of the last quantum), and packed it
    /// takes at most 55 % of its size (this short spec sample; ~37 % for the larger one of
    /// `samples.rs`, whose payload has roles and organisation).
    #[test]
    fn an_id_token_is_given_back_byte_for_byte_for_every_segment_length() {
        for extra in 0..3 {
            for signature_len in [0, 1, 2, 3, 255, 256, 257, 512] {
                let payload = PAYLOAD.replacen("my_nonce", &format!("my_nonce{}", "x".repeat(extra)), 1);
                let header = ["{\"alg\":\"RS256\"}", "{\"alg\":\"RS256\",\"kid\":\"k1\"}", "{}"][extra];
                let raw = token(header, &payload, &noise(signature_len, signature_len as u64 + 7));
                let kept = PackedJws::new(&raw);
                assert_eq!(kept.get().as_deref(), Some(raw.as_str()), "{extra} {signature_len}");
                if signature_len == 256 {
                    assert!(kept.is_packed(), "a real RS256 token packs");
                    assert!(
                        kept.heap_bytes() * 100 <= raw.len() * 55,
                        "packed {} of {} bytes",
                        kept.heap_bytes(),
                        raw.len()
                    );
                }
            }
        }
    }

    /// Segments whose decoding would not give them back when encoded again (padding, the
    /// standard alphabet, non-zero unused bits, an impossible length), tokens that are not
    /// three segments, and tokens not made smaller, are kept verbatim: still exact.
    #[test]
    fn a_token_that_does_not_pack_exactly_is_kept_verbatim() {
        // 255 signature bytes: 340 characters, whole quanta, so that one more quantum of two
        // characters is a valid length.
        let good = token(r#"{"alg":"RS256"}"#, PAYLOAD, &noise(255, 3));
        let (header, rest) = good.split_once('.').unwrap();
        let (payload, signature) = rest.split_once('.').unwrap();
        // "Zg" is "f" canonically; "Zh" decodes to "f" too, with a set unused bit.
        let odd_bits = format!("{header}.{payload}.{signature}Zh");
        assert!(decode("Zh").is_none() && decode("Zg").is_some(), "the strict engine refuses set trailing bits");
        let padded = format!("{header}.{payload}.{signature}Zg==");
        let standard = format!("{header}.{payload}.{}", signature.replace('-', "+").replace('_', "/"));
        assert_ne!(standard, good, "the signature has a - or _ to swap");
        let cases = [
            odd_bits,
            padded,
            standard,
            format!("{header}A.{payload}.{signature}"),
            format!("{header}.{payload}"),
            format!("{header}.{payload}.{signature}.x.y"),
            format!("{header}.{payload}.{signature}\n"),
            "h.p.s".to_owned(),
            // A segment over 64 KiB (lengths are 16 bits), and a token packing cannot shrink.
            token("{}", &"x".repeat(70_000), &noise(256, 4)),
            token("{}", "{}", b""),
            String::new(),
            "not a token".to_owned(),
        ];
        for raw in cases {
            let kept = PackedJws::new(&raw);
            assert!(!kept.is_packed(), "{raw:?}");
            assert_eq!(kept.get().as_deref(), Some(raw.as_str()));
        }
        assert!(PackedJws::new("").is_empty() && !PackedJws::new("h.p.s").is_empty());
    }

    /// A shared store writes and reads the token string, as when it was a `String`; `Debug`
    /// shows none of it.
    #[test]
    fn a_packed_token_serializes_as_the_token_string() {
        let raw = token(r#"{"alg":"RS256"}"#, PAYLOAD, &noise(256, 5));
        let kept = PackedJws::new(&raw);
        assert_eq!(serde_json::to_value(&kept).unwrap(), serde_json::Value::String(raw.clone()));
        let read: PackedJws = serde_json::from_value(serde_json::Value::String(raw.clone())).unwrap();
        assert!(read.is_packed());
        assert_eq!(read, kept, "packing is deterministic");
        assert_eq!(format!("{kept:?}"), "PackedJws(packed)");
    }

    /// A packed token whose bytes were damaged does not come back as another token.
    #[test]
    fn damaged_packed_bytes_give_no_token() {
        let raw = token(r#"{"alg":"RS256"}"#, PAYLOAD, &noise(256, 9));
        let tagged = pack(&raw).unwrap();
        let packed = &tagged[1..];
        assert_eq!(unpack(packed).as_deref(), Some(raw.as_str()));
        let mut longer = packed.to_vec();
        longer[2] = longer[2].wrapping_add(1);
        assert_eq!(unpack(&longer), None, "a wrong payload length");
        assert_eq!(unpack(&packed[..packed.len() - 4]), None, "a truncated stream");
        assert_eq!(unpack(&packed[..3]), None);
    }
}
