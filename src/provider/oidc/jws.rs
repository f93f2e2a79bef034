//! Compact JWS: parsing with size limits, the algorithm allow-list, JWK parsing and signature
//! verification with aws-lc-rs.
//!
//! The allow-list is fixed: RS256 and ES256. `none` and every HMAC algorithm are refused
//! before any key is looked at, which closes both `alg: none` and the "HS256 keyed with the
//! RSA public key" confusion (RFC 8725 §2.1, §3.1). A key is only used with the algorithm of
//! its own type, and with the JWK's `alg` when the JWK states one.

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine;
use serde::Deserialize;

/// Why a JWS was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    /// Larger than the configured limit.
    #[error("token of {0} bytes is larger than the limit")]
    TooLarge(usize),
    /// Not three base64url parts, or the header is not a JSON object.
    #[error("malformed JWS: {0}")]
    Malformed(&'static str),
    /// `alg` is not RS256 or ES256.
    #[error("algorithm {0:?} is not allowed")]
    AlgorithmNotAllowed(String),
    /// The header carries `crit`, which this verifier does not understand (RFC 7515 §4.1.11).
    #[error("critical header parameters are not supported")]
    CriticalHeader,
    /// No key in the JWKS fits the header.
    #[error("no matching key (kid {0:?})")]
    NoMatchingKey(Option<String>),
    /// The signature does not verify with any fitting key.
    #[error("signature verification failed")]
    BadSignature,
}

/// Algorithms on the allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA P-256 with SHA-256.
    Es256,
}

impl Alg {
    fn parse(alg: &str) -> Result<Alg, JwsError> {
        match alg {
            "RS256" => Ok(Alg::Rs256),
            "ES256" => Ok(Alg::Es256),
            other => Err(JwsError::AlgorithmNotAllowed(other.to_owned())),
        }
    }
}

/// A parsed, not yet verified, compact JWS.
///
/// `Debug` shows the header only: the payload holds personal data and the signing input is
/// the token itself.
#[derive(Clone)]
pub struct Jws {
    /// Allowed algorithm from the header.
    pub alg: Alg,
    /// Key id from the header, if any (CAAIS sends none).
    pub kid: Option<String>,
    /// Media type from the header (`at+jwt` for JWT access tokens, RFC 9068 §2.1), if any.
    pub typ: Option<String>,
    /// Decoded payload bytes.
    pub payload: Vec<u8>,
    signing_input: String,
    signature: Vec<u8>,
}

impl std::fmt::Debug for Jws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jws")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("payload", &format_args!("<{} bytes>", self.payload.len()))
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
    #[serde(default)]
    typ: Option<String>,
}

fn b64(part: &str) -> Result<Vec<u8>, JwsError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).map_err(|_| JwsError::Malformed("bad base64url"))
}

impl Jws {
    /// Parses a compact JWS of at most `max_bytes`.
    pub fn parse(token: &str, max_bytes: usize) -> Result<Jws, JwsError> {
        if token.len() > max_bytes {
            return Err(JwsError::TooLarge(token.len()));
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(JwsError::Malformed("not three parts"));
        };
        let header: Header = serde_json::from_slice(&b64(h)?).map_err(|_| JwsError::Malformed("header"))?;
        let alg = Alg::parse(&header.alg)?;
        if header.crit.is_some() {
            return Err(JwsError::CriticalHeader);
        }
        let signature = b64(s)?;
        if signature.is_empty() {
            return Err(JwsError::Malformed("empty signature"));
        }
        Ok(Jws {
            alg,
            kid: header.kid,
            typ: header.typ,
            payload: b64(p)?,
            signing_input: format!("{h}.{p}"),
            signature,
        })
    }

    /// [`Jws::verify`] on the bounded CPU pool when the token is big (issue 15 item 1): a
    /// token of hundreds of KB checked against every fitting key would stall an I/O worker.
    /// `Err(CpuError)` when the pool refuses the job.
    pub async fn verify_bounded(
        &self,
        keys: std::sync::Arc<Vec<Jwk>>,
    ) -> Result<Result<(), JwsError>, crate::cpu::CpuError> {
        let jws = self.clone();
        crate::cpu::run_sized(crate::cpu::Work::Jws, self.signing_input.len(), move || jws.verify(&keys)).await
    }

    /// Verifies with the first fitting key of `keys` that accepts the signature. With a `kid`
    /// only keys of that id, or keys without any id, fit; without one every key of the right
    /// type is tried (CAAIS).
    pub fn verify(&self, keys: &[Jwk]) -> Result<(), JwsError> {
        let fitting: Vec<&Jwk> = keys
            .iter()
            .filter(|k| k.fits(self.alg))
            .filter(|k| self.kid.is_none() || k.kid.is_none() || k.kid == self.kid)
            .collect();
        if fitting.is_empty() {
            return Err(JwsError::NoMatchingKey(self.kid.clone()));
        }
        if fitting.iter().any(|k| k.verify(self.signing_input.as_bytes(), &self.signature)) {
            Ok(())
        } else {
            Err(JwsError::BadSignature)
        }
    }
}

/// A usable public key from a JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    /// `kid`, if any.
    pub kid: Option<String>,
    key: KeyMaterial,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyMaterial {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// Uncompressed SEC1 point `04 || x || y`.
    P256(Vec<u8>),
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

impl Jwk {
    fn fits(&self, alg: Alg) -> bool {
        matches!((&self.key, alg), (KeyMaterial::Rsa { .. }, Alg::Rs256) | (KeyMaterial::P256(_), Alg::Es256))
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match &self.key {
            KeyMaterial::Rsa { n, e } => RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
                .is_ok(),
            KeyMaterial::P256(point) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).verify(message, sig).is_ok()
            }
        }
    }

    fn from_raw(raw: RawJwk) -> Option<Jwk> {
        if raw.use_.as_deref().is_some_and(|u| u != "sig") {
            return None;
        }
        let key = match (raw.kty.as_str(), raw.alg.as_deref()) {
            ("RSA", None | Some("RS256")) => {
                let n = b64(raw.n.as_deref()?).ok()?;
                let e = b64(raw.e.as_deref()?).ok()?;
                // RSA keys under 2048 bits are refused (RFC 7518 §3.3).
                let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
                if bits < 2048 || e.is_empty() {
                    return None;
                }
                KeyMaterial::Rsa { n, e }
            }
            ("EC", None | Some("ES256")) if raw.crv.as_deref() == Some("P-256") => {
                let x = b64(raw.x.as_deref()?).ok()?;
                let y = b64(raw.y.as_deref()?).ok()?;
                if x.len() != 32 || y.len() != 32 {
                    return None;
                }
                let mut point = vec![4u8];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                KeyMaterial::P256(point)
            }
            _ => return None,
        };
        Some(Jwk { kid: raw.kid, key })
    }
}

/// Parses a JWKS document, keeping the RS256/ES256 signature keys and skipping the rest
/// (encryption keys, unknown types, weak RSA keys). Fails only if the document is not a JWKS.
pub fn parse_jwks(body: &[u8]) -> Result<Vec<Jwk>, String> {
    let raw: RawJwks = serde_json::from_slice(body).map_err(|e| format!("JWKS is not valid: {e}"))?;
    Ok(raw
        .keys
        .into_iter()
        .filter_map(|k| serde_json::from_value::<RawJwk>(k).ok())
        .filter_map(Jwk::from_raw)
        .collect())
}

/// `at_hash` for RS256/ES256: base64url of the left half of SHA-256 of the access token
/// (OIDC Core §3.1.3.6).
pub fn at_hash(access_token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access_token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: &serde_json::Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn none_and_hmac_algorithms_are_refused_before_any_key_is_used() {
        for alg in ["none", "HS256", "HS512", "RS512", "PS256"] {
            let token = format!("{}.{}.c2ln", enc(&serde_json::json!({"alg": alg})), enc(&serde_json::json!({})));
            assert_eq!(Jws::parse(&token, 4096).unwrap_err(), JwsError::AlgorithmNotAllowed(alg.to_owned()));
        }
    }

    #[test]
    fn oversized_and_malformed_tokens_are_refused() {
        assert_eq!(Jws::parse(&"a".repeat(5000), 4096).unwrap_err(), JwsError::TooLarge(5000));
        assert!(matches!(Jws::parse("a.b", 4096), Err(JwsError::Malformed(_))));
        assert!(matches!(Jws::parse("a.b.c.d", 4096), Err(JwsError::Malformed(_))));
        let crit = format!(
            "{}.{}.c2ln",
            enc(&serde_json::json!({"alg": "RS256", "crit": ["x"]})),
            enc(&serde_json::json!({}))
        );
        assert_eq!(Jws::parse(&crit, 4096).unwrap_err(), JwsError::CriticalHeader);
    }

    #[test]
    fn encryption_and_weak_keys_are_skipped() {
        let weak = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xffu8; 128]);
        let doc = serde_json::json!({"keys": [
            {"kty": "RSA", "use": "enc", "n": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xffu8; 256]), "e": "AQAB"},
            {"kty": "RSA", "n": weak, "e": "AQAB"},
            {"kty": "oct", "k": "c2VjcmV0"},
        ]});
        assert!(parse_jwks(doc.to_string().as_bytes()).unwrap().is_empty());
    }

    #[test]
    fn at_hash_matches_the_oidc_core_example() {
        // OIDC Core appendix A.3: access token and at_hash of the example.
        assert_eq!(at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"), "77QmUPtjPfzWtF2AnpK9RQ");
    }
}
