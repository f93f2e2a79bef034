//! ID token claim checks (OIDC Core §3.1.3.7), after the signature has been verified.
//!
//! Each violation has its own variant so the operator log names it; none of them carries the
//! token or claim values that could be personal data.

use serde_json::{Map, Value};

use super::jws::{self, JwsError};

/// Why an ID token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    /// The JWS itself was refused.
    #[error(transparent)]
    Jws(#[from] JwsError),
    /// The payload is not a JSON object.
    #[error("payload is not a JSON object")]
    NotJson,
    /// A required claim is missing or has the wrong type.
    #[error("claim {0} is missing or has the wrong type")]
    MissingClaim(&'static str),
    /// `iss` differs (byte-exact comparison) from the discovered issuer.
    #[error("iss does not match the issuer")]
    IssuerMismatch,
    /// `aud` does not contain the client id.
    #[error("aud does not contain the client id")]
    AudienceMismatch,
    /// `azp` is present and not the client id, or missing with several audiences.
    #[error("azp is not the client id")]
    AuthorizedPartyMismatch,
    /// `exp` has passed (beyond the allowed skew).
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (beyond the allowed skew).
    #[error("token not yet valid")]
    NotYetValid,
    /// `iat` is in the future (beyond the allowed skew).
    #[error("token issued in the future")]
    IssuedInFuture,
    /// `nonce` differs from the one sent with this login.
    #[error("nonce does not match this login")]
    NonceMismatch,
    /// `at_hash` does not match the access token.
    #[error("at_hash does not match the access token")]
    AtHashMismatch,
}

/// What the claims must match.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    /// Issuer from discovery.
    pub issuer: &'a str,
    /// Our client id.
    pub client_id: &'a str,
    /// The nonce of this login; `None` skips the check (userinfo JWTs).
    pub nonce: Option<&'a str>,
    /// Now, Unix seconds.
    pub now: u64,
    /// Allowed clock difference, seconds.
    pub skew: u64,
    /// The access token returned with the ID token, for `at_hash`.
    pub access_token: Option<&'a str>,
}

/// A numeric (NumericDate) claim; `None` when absent, an error when of another type.
pub(super) fn number(claims: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, IdTokenError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .map(Some)
            .ok_or(IdTokenError::MissingClaim(name)),
    }
}

/// Checks the claims of a verified ID token and returns them.
pub fn check_claims(payload: &[u8], want: &Expected<'_>) -> Result<Map<String, Value>, IdTokenError> {
    let claims: Map<String, Value> = serde_json::from_slice(payload).map_err(|_| IdTokenError::NotJson)?;
    // §3.1.3.7 step 2: exact match, so CAAIS's trailing slash matters.
    if claims.get("iss").and_then(Value::as_str) != Some(want.issuer) {
        return Err(IdTokenError::IssuerMismatch);
    }
    match claims.get("sub").and_then(Value::as_str) {
        Some(sub) if !sub.is_empty() => {}
        _ => return Err(IdTokenError::MissingClaim("sub")),
    }
    // Step 3: aud is a string (CAAIS) or an array that contains our client id.
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Err(IdTokenError::MissingClaim("aud")),
    };
    if !audiences.contains(&want.client_id) {
        return Err(IdTokenError::AudienceMismatch);
    }
    // Steps 4–5: azp, when present, must be us; several audiences need it.
    match claims.get("azp") {
        Some(Value::String(azp)) if azp == want.client_id => {}
        None if audiences.len() == 1 => {}
        _ => return Err(IdTokenError::AuthorizedPartyMismatch),
    }
    // Steps 9–10: time claims with skew.
    let exp = number(&claims, "exp")?.ok_or(IdTokenError::MissingClaim("exp"))?;
    if exp.saturating_add(want.skew) <= want.now {
        return Err(IdTokenError::Expired);
    }
    let iat = number(&claims, "iat")?.ok_or(IdTokenError::MissingClaim("iat"))?;
    if iat > want.now.saturating_add(want.skew) {
        return Err(IdTokenError::IssuedInFuture);
    }
    if number(&claims, "nbf")?.is_some_and(|nbf| nbf > want.now.saturating_add(want.skew)) {
        return Err(IdTokenError::NotYetValid);
    }
    // Step 11: the nonce we sent.
    if let Some(nonce) = want.nonce {
        let got = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
        if !constant_time_eq(got.as_bytes(), nonce.as_bytes()) {
            return Err(IdTokenError::NonceMismatch);
        }
    }
    // §3.1.3.8 / §3.3.2.9: at_hash when present.
    if let (Some(at_hash), Some(token)) = (claims.get("at_hash"), want.access_token) {
        if at_hash.as_str() != Some(jws::at_hash(token).as_str()) {
            return Err(IdTokenError::AtHashMismatch);
        }
    }
    Ok(claims)
}

/// Compares two byte strings without an early exit.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "https://rest-openidconnectapi.caais-test-ext.gov.cz/";

    fn want(now: u64) -> Expected<'static> {
        Expected { issuer: ISS, client_id: "MY_AIS", nonce: Some("n1"), now, skew: 60, access_token: None }
    }

    fn claims(extra: serde_json::Value) -> Vec<u8> {
        let mut base = serde_json::json!({
            "iss": ISS, "aud": "MY_AIS", "azp": "MY_AIS", "sub": "16b33670", "exp": 2000, "iat": 1000, "nbf": 1000, "nonce": "n1"
        });
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        base.to_string().into_bytes()
    }

    #[test]
    fn the_caais_example_shape_is_accepted() {
        assert!(check_claims(&claims(serde_json::json!({})), &want(1500)).is_ok());
    }

    #[test]
    fn issuer_is_compared_byte_exact_including_the_trailing_slash() {
        let no_slash = serde_json::json!({"iss": ISS.trim_end_matches('/')});
        assert_eq!(check_claims(&claims(no_slash), &want(1500)).unwrap_err(), IdTokenError::IssuerMismatch);
    }

    #[test]
    fn audience_azp_and_time_claims_are_enforced_with_skew() {
        let cases = [
            (serde_json::json!({"aud": "OTHER"}), IdTokenError::AudienceMismatch),
            (serde_json::json!({"aud": ["MY_AIS", "OTHER"], "azp": null}), IdTokenError::AuthorizedPartyMismatch),
            (serde_json::json!({"azp": "OTHER"}), IdTokenError::AuthorizedPartyMismatch),
            (serde_json::json!({"exp": 1400}), IdTokenError::Expired),
            (serde_json::json!({"nbf": 1600}), IdTokenError::NotYetValid),
            (serde_json::json!({"iat": 1600}), IdTokenError::IssuedInFuture),
            (serde_json::json!({"nonce": "n2"}), IdTokenError::NonceMismatch),
            (serde_json::json!({"sub": ""}), IdTokenError::MissingClaim("sub")),
        ];
        for (extra, error) in cases {
            assert_eq!(check_claims(&claims(extra.clone()), &want(1500)).unwrap_err(), error, "{extra}");
        }
        // Within the skew.
        assert!(check_claims(&claims(serde_json::json!({"exp": 1450, "nbf": 1550})), &want(1500)).is_ok());
        let array = serde_json::json!({"aud": ["MY_AIS", "OTHER"]});
        assert!(check_claims(&claims(array), &want(1500)).is_ok());
    }

    #[test]
    fn at_hash_is_checked_when_present() {
        let mut w = want(1500);
        w.access_token = Some("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y");
        assert!(check_claims(&claims(serde_json::json!({"at_hash": "77QmUPtjPfzWtF2AnpK9RQ"})), &w).is_ok());
        assert_eq!(
            check_claims(&claims(serde_json::json!({"at_hash": "AAAAAAAAAAAAAAAAAAAAAA"})), &w).unwrap_err(),
            IdTokenError::AtHashMismatch
        );
    }
}
