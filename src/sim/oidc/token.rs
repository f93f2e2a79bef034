//! The simulator's token endpoint: the authorization-code grant (client authentication, PKCE,
//! one-time codes, ID tokens spoiled on request) and the refresh-token grant with rotation.

use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::StatusCode;
use serde_json::{json, Value};

use std::collections::HashMap;

use super::{
    b64, hs256_with_public_key, json_response, oauth_error, random, registered, unavailable, BadToken, Grant,
    SimClientAuth, SimState,
};

/// The token endpoint. `client_cert`: `None` on the plain host, `Some(cert)` on the mTLS host.
pub(super) fn token(
    s: &SimState,
    client_cert: Option<Option<&[u8]>>,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Response {
    let outage = {
        let mut knobs = s.knobs.lock().unwrap_or_else(|e| e.into_inner());
        knobs.token_calls += 1;
        knobs.token_outage
    };
    if outage {
        return unavailable();
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let get = |k: &str| form.get(k).map(String::as_str);
    let basic = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .and_then(|v| String::from_utf8(v).ok());
    let basic = basic.as_deref().and_then(|b| b.split_once(':'));
    let client_id = basic.map(|(id, _)| id).or(get("client_id")).filter(|c| registered(s, c)).unwrap_or_default();
    let client_ok = !client_id.is_empty()
        && match &s.cfg.client_auth {
            SimClientAuth::Mtls => client_cert.flatten() == Some(s.registered_client.as_slice()),
            SimClientAuth::Secret(secret) => {
                let by_basic = basic.is_some_and(|(_, given)| given == secret);
                by_basic || get("client_secret") == Some(secret)
            }
            SimClientAuth::Public => true,
        };
    if !client_ok {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    match get("grant_type") {
        Some("authorization_code") => {}
        Some("refresh_token") => return refresh(s, client_id, get("refresh_token").unwrap_or("")),
        _ => return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    }
    let Some(grant) = get("code").and_then(|c| s.codes.lock().unwrap_or_else(|e| e.into_inner()).remove(c)) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    if get("redirect_uri") != Some(grant.redirect_uri.as_str()) || grant.client_id != client_id {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let pkce_ok = match (&grant.challenge, get("code_verifier")) {
        (Some(challenge), Some(verifier)) => &crate::provider::oidc::pkce_challenge(verifier) == challenge,
        (None, _) => s.cfg.client_auth != SimClientAuth::Public,
        (Some(_), None) => false,
    };
    if !pkce_ok {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let (access_token, expires_in) = issue_access_token(s, grant.user);
    let refresh_token = random();
    s.refresh_tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(refresh_token.clone(), (grant.user, grant.client_id.clone()));
    match id_token(s, &grant, &access_token) {
        Ok(id_token) => {
            s.knobs.lock().unwrap_or_else(|e| e.into_inner()).last_id_token = Some(id_token.clone());
            json_response(
                StatusCode::OK,
                &json!({
                    "access_token": access_token,
                    "token_type": "Bearer",
                    "expires_in": expires_in,
                    "refresh_token": refresh_token,
                    "scope": "openid profile",
                    "id_token": id_token,
                }),
            )
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

/// A new access token for `user` and its lifetime.
pub(super) fn issue_access_token(s: &SimState, user: usize) -> (String, u64) {
    let access_token = random();
    s.access_tokens.lock().unwrap_or_else(|e| e.into_inner()).insert(access_token.clone(), user);
    let mut knobs = s.knobs.lock().unwrap_or_else(|e| e.into_inner());
    knobs.last_access_token = Some(access_token.clone());
    (access_token, knobs.access_token_ttl.unwrap_or(299))
}

/// The refresh-token grant (RFC 6749 §6), rotating the refresh token unless told not to.
fn refresh(s: &SimState, client_id: &str, presented: &str) -> Response {
    let (error, rotate) = {
        let mut knobs = s.knobs.lock().unwrap_or_else(|e| e.into_inner());
        knobs.refresh_calls += 1;
        (knobs.refresh_error.clone(), !knobs.no_refresh_rotation)
    };
    if let Some(error) = error {
        return oauth_error(StatusCode::BAD_REQUEST, &error);
    }
    let user = {
        let mut live = s.refresh_tokens.lock().unwrap_or_else(|e| e.into_inner());
        // RFC 6749 §6: the refresh token is bound to the client it was issued to.
        match live.get(presented) {
            Some((user, issued_to)) if issued_to == client_id => {
                let user = *user;
                if rotate {
                    live.remove(presented);
                }
                Some(user)
            }
            _ => None,
        }
    };
    let Some(user) = user else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    let (access_token, expires_in) = issue_access_token(s, user);
    let mut answer = json!({ "access_token": access_token, "token_type": "Bearer", "expires_in": expires_in });
    if rotate {
        let next = random();
        s.refresh_tokens.lock().unwrap_or_else(|e| e.into_inner()).insert(next.clone(), (user, client_id.to_owned()));
        answer["refresh_token"] = json!(next);
    }
    json_response(StatusCode::OK, &answer)
}

fn id_token(s: &SimState, grant: &Grant, access_token: &str) -> Result<String, String> {
    let bad = s.knobs.lock().unwrap_or_else(|e| e.into_inner()).bad.take();
    let now = crate::session::now_unix();
    let mut claims = Value::Object(s.cfg.users.get(grant.user).cloned().unwrap_or_default());
    let previous =
        s.previous_nonce.lock().unwrap_or_else(|e| e.into_inner()).replace(grant.nonce.clone().unwrap_or_default());
    let nonce = if bad == Some(BadToken::ReplayedNonce) { previous } else { grant.nonce.clone() };
    // A fresh IdP session per login, recorded so tests can aim a logout token at it.
    let sid = random();
    s.knobs.lock().unwrap_or_else(|e| e.into_inner()).last_sid = Some(sid.clone());
    for (k, v) in [
        ("iss", json!(if bad == Some(BadToken::WrongIssuer) { "https://evil.example/" } else { s.issuer.as_str() })),
        ("aud", json!(if bad == Some(BadToken::WrongAudience) { "OTHER_AIS" } else { grant.client_id.as_str() })),
        ("azp", json!(if bad == Some(BadToken::WrongAudience) { "OTHER_AIS" } else { grant.client_id.as_str() })),
        ("iat", json!(if bad == Some(BadToken::Expired) { now - 7200 } else { now })),
        ("nbf", json!(if bad == Some(BadToken::Expired) { now - 7200 } else { now })),
        ("exp", json!(if bad == Some(BadToken::Expired) { now - 3600 } else { now + 1800 })),
        ("auth_time", json!(now)),
        ("jti", json!(random())),
        ("sid", json!(sid)),
        ("nonce", json!(nonce)),
        ("at_hash", json!(crate::provider::oidc::jws::at_hash(access_token))),
    ] {
        claims[k] = v;
    }
    if let Some(loa) = s.knobs.lock().unwrap_or_else(|e| e.into_inner()).loa_claim.clone() {
        claims["loa"] = json!(loa);
    }
    if bad == Some(BadToken::Oversized) {
        claims["padding"] = json!("x".repeat(100_000));
    }
    let key = s.key.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match bad {
        Some(BadToken::AlgNone) => Ok(format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(claims.to_string().as_bytes()))),
        Some(BadToken::Hs256WithPublicKey) => Ok(hs256_with_public_key(&key, s.cfg.kid, &claims)),
        Some(BadToken::UnknownKey) => s.stranger.sign(s.cfg.kid, &claims),
        _ => key.sign(s.cfg.kid, &claims),
    }
}
