//! Logout token claim checks (OpenID Connect Back-Channel Logout 1.0 §2.6), after the
//! signature has been verified with the provider's keys.
//!
//! A logout token is a JWT the IdP POSTs to us server-to-server; whoever can make us accept
//! one ends users' sessions, so every check of §2.6 is enforced. Two of them keep a logout
//! token from being confused with an ID token (§2.4): the `events` member is required, and a
//! `nonce` is forbidden. The age limit on `iat` bounds how long a token can be accepted at all,
//! which is what lets a bounded replay cache of `jti`s be complete (see [`replay_window_secs`]).

use serde_json::{Map, Value};

use super::id_token::{number, IdTokenError};

/// The event type that marks a JWT as a back-channel logout token.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Oldest `iat` accepted, seconds before now (plus skew). Logout tokens are sent at once;
/// a limit makes replays outside the replay cache's memory impossible.
pub const MAX_AGE_SECS: u64 = 300;

/// How long a `jti` must be remembered: every token still acceptable by its `iat` is within
/// this window, so a `jti` forgotten after it can no longer be replayed.
pub fn replay_window_secs(skew: u64) -> u64 {
    MAX_AGE_SECS.saturating_add(skew.saturating_mul(2))
}

/// Why a logout token was refused. Variants carry no claim values (personal data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogoutTokenError {
    /// The payload is not a JSON object.
    #[error("payload is not a JSON object")]
    NotJson,
    /// A required claim is missing or has the wrong type.
    #[error("claim {0} is missing or has the wrong type")]
    MissingClaim(&'static str),
    /// `iss` differs (byte-exact) from the discovered issuer.
    #[error("iss does not match the issuer")]
    IssuerMismatch,
    /// `aud` does not contain the client id.
    #[error("aud does not contain the client id")]
    AudienceMismatch,
    /// `iat` is in the future beyond the skew.
    #[error("token issued in the future")]
    IssuedInFuture,
    /// `iat` is older than the accepted age.
    #[error("token too old")]
    TooOld,
    /// `exp` is present and has passed.
    #[error("token expired")]
    Expired,
    /// `events` lacks the back-channel logout member (or it is not an object).
    #[error("events does not contain the back-channel logout event")]
    NotALogoutToken,
    /// Neither `sid` nor `sub` is present.
    #[error("neither sid nor sub present")]
    NoTarget,
    /// A `nonce` is present: that is an ID token, not a logout token (§2.4).
    #[error("nonce present")]
    NoncePresent,
}

impl From<IdTokenError> for LogoutTokenError {
    fn from(e: IdTokenError) -> Self {
        match e {
            IdTokenError::MissingClaim(name) => LogoutTokenError::MissingClaim(name),
            _ => LogoutTokenError::NotJson,
        }
    }
}

/// What the claims must match.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    /// Issuer from discovery.
    pub issuer: &'a str,
    /// Our client id.
    pub client_id: &'a str,
    /// Now, Unix seconds.
    pub now: u64,
    /// Allowed clock difference, seconds.
    pub skew: u64,
}

/// The verified content of a logout token (`Debug` redacts `sub` and `sid`).
#[derive(Clone, PartialEq, Eq)]
pub struct LogoutClaims {
    /// Unique token id, for the replay cache.
    pub jti: String,
    /// The user, if named.
    pub sub: Option<String>,
    /// The IdP session, if named.
    pub sid: Option<String>,
}

impl std::fmt::Debug for LogoutClaims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogoutClaims")
            .field("sub", &crate::redact::opt(&self.sub))
            .field("sid", &crate::redact::opt(&self.sid))
            .finish_non_exhaustive()
    }
}

/// An optional string claim: absent is `None`, present but not a non-empty string is an error
/// (a malformed target must not silently widen a logout from one session to all of them).
fn optional_text(claims: &Map<String, Value>, name: &'static str) -> Result<Option<String>, LogoutTokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(LogoutTokenError::MissingClaim(name)),
    }
}

fn check_audience(claims: &Map<String, Value>, client_id: &str) -> Result<(), LogoutTokenError> {
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Err(LogoutTokenError::MissingClaim("aud")),
    };
    if audiences.contains(&client_id) {
        Ok(())
    } else {
        Err(LogoutTokenError::AudienceMismatch)
    }
}

fn check_times(claims: &Map<String, Value>, want: &Expected<'_>) -> Result<(), LogoutTokenError> {
    let iat = number(claims, "iat")?.ok_or(LogoutTokenError::MissingClaim("iat"))?;
    if iat > want.now.saturating_add(want.skew) {
        return Err(LogoutTokenError::IssuedInFuture);
    }
    if iat.saturating_add(MAX_AGE_SECS).saturating_add(want.skew) < want.now {
        return Err(LogoutTokenError::TooOld);
    }
    if number(claims, "exp")?.is_some_and(|exp| exp.saturating_add(want.skew) <= want.now) {
        return Err(LogoutTokenError::Expired);
    }
    Ok(())
}

/// §2.6 step 4: `events` is an object with the logout event as a member whose value is a JSON
/// object.
fn check_event(claims: &Map<String, Value>) -> Result<(), LogoutTokenError> {
    match claims.get("events") {
        Some(Value::Object(events)) if events.get(BACKCHANNEL_LOGOUT_EVENT).is_some_and(Value::is_object) => Ok(()),
        _ => Err(LogoutTokenError::NotALogoutToken),
    }
}

/// Checks the claims of a logout token whose signature has been verified.
pub fn check_claims(payload: &[u8], want: &Expected<'_>) -> Result<LogoutClaims, LogoutTokenError> {
    let claims: Map<String, Value> = serde_json::from_slice(payload).map_err(|_| LogoutTokenError::NotJson)?;
    // Before anything else: an ID token (it has a nonce, no events) must never log anyone out.
    if claims.contains_key("nonce") {
        return Err(LogoutTokenError::NoncePresent);
    }
    check_event(&claims)?;
    if claims.get("iss").and_then(Value::as_str) != Some(want.issuer) {
        return Err(LogoutTokenError::IssuerMismatch);
    }
    check_audience(&claims, want.client_id)?;
    check_times(&claims, want)?;
    let jti = optional_text(&claims, "jti")?.ok_or(LogoutTokenError::MissingClaim("jti"))?;
    let sub = optional_text(&claims, "sub")?;
    let sid = optional_text(&claims, "sid")?;
    if sub.is_none() && sid.is_none() {
        return Err(LogoutTokenError::NoTarget);
    }
    Ok(LogoutClaims { jti, sub, sid })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Issue 15 review (item 12): the verified claims name the user and the IdP session; the
    /// derived `Debug` printed them.
    #[test]
    fn logout_claims_debug_redacts_sub_and_sid() {
        let claims =
            LogoutClaims { jti: "jti-1".into(), sub: Some("secret-sub".into()), sid: Some("secret-sid".into()) };
        let text = format!("{claims:?}");
        assert!(!text.contains("secret"), "{text}");
    }

    const ISS: &str = "https://idp.example/";

    fn want(now: u64) -> Expected<'static> {
        Expected { issuer: ISS, client_id: "MY_AIS", now, skew: 60 }
    }

    fn token(extra: Value) -> Vec<u8> {
        let mut base = json!({
            "iss": ISS, "aud": "MY_AIS", "iat": 1000, "jti": "j1", "sub": "u1", "sid": "s1",
            "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
        });
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                if v.is_null() {
                    b.remove(k);
                } else {
                    b.insert(k.clone(), v.clone());
                }
            }
        }
        base.to_string().into_bytes()
    }

    #[test]
    fn a_well_formed_logout_token_yields_its_jti_sub_and_sid() {
        let claims = check_claims(&token(json!({})), &want(1010)).unwrap();
        assert_eq!(claims, LogoutClaims { jti: "j1".into(), sub: Some("u1".into()), sid: Some("s1".into()) });
        assert!(check_claims(&token(json!({"sub": null, "aud": ["X", "MY_AIS"]})), &want(1010)).is_ok());
    }

    #[test]
    fn each_violation_of_section_2_6_is_refused() {
        let cases = [
            (json!({"nonce": "n"}), LogoutTokenError::NoncePresent),
            (json!({"events": null}), LogoutTokenError::NotALogoutToken),
            (json!({"events": {BACKCHANNEL_LOGOUT_EVENT: "x"}}), LogoutTokenError::NotALogoutToken),
            (json!({"events": {"http://other/event": {}}}), LogoutTokenError::NotALogoutToken),
            (json!({"iss": "https://idp.example"}), LogoutTokenError::IssuerMismatch),
            (json!({"aud": "OTHER"}), LogoutTokenError::AudienceMismatch),
            (json!({"iat": null}), LogoutTokenError::MissingClaim("iat")),
            (json!({"iat": 2000}), LogoutTokenError::IssuedInFuture),
            (json!({"iat": 100}), LogoutTokenError::TooOld),
            (json!({"exp": 900}), LogoutTokenError::Expired),
            (json!({"jti": null}), LogoutTokenError::MissingClaim("jti")),
            (json!({"sub": null, "sid": null}), LogoutTokenError::NoTarget),
            (json!({"sid": 5}), LogoutTokenError::MissingClaim("sid")),
            (json!({"sub": ""}), LogoutTokenError::MissingClaim("sub")),
        ];
        for (extra, error) in cases {
            assert_eq!(check_claims(&token(extra.clone()), &want(1010)).unwrap_err(), error, "{extra}");
        }
    }

    #[test]
    fn time_claims_allow_the_clock_skew() {
        assert!(check_claims(&token(json!({"iat": 1050, "exp": 980})), &want(1010)).is_ok());
        assert!(check_claims(&token(json!({"iat": 1000})), &want(1000 + MAX_AGE_SECS + 60)).is_ok());
        assert_eq!(replay_window_secs(60), MAX_AGE_SECS + 120);
    }
}
