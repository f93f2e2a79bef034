//! Users' access tokens sent to API apps (`Authorization: Bearer`), validated the way
//! EnviIAM documents it (enviam.md §5.5 step 4): the resource server calls the profile
//! endpoint (`/oidc/profile`, the userinfo endpoint of other providers) with the token and
//! gets the identity back as a JWT, verified with the provider's JWKS — or as plain JSON,
//! which some IdPs answer. Claims are mapped exactly like a browser login's.
//!
//! With `local_jwt`, a JWT access token (RFC 9068: `typ` `at+jwt`) that verifies with the
//! provider's keys, names the provider as issuer and has not expired is accepted without the
//! call. The trade-off is revocation: the provider is not asked, so a revoked token works
//! until its `exp`. An ID token is not an access token (`typ` differs), and a JWT that fails
//! the local checks is still sent to the profile endpoint, which has the last word.

use serde_json::{Map, Value};

use super::client::{Metadata, ProfileAnswer};
use super::id_token::number;
use super::jws::Jws;
use super::reason::{Failure, TokenKind};
use super::OidcProvider;
use crate::provider::capability::ValidatedToken;
use crate::provider::{CommonReason, ProviderError};

/// Whether a profile answer is a JWT rather than JSON: `application/jwt`, or a body of
/// three base64url parts.
fn is_jwt(answer: &ProfileAnswer) -> bool {
    let media = answer.content_type.as_deref().and_then(|c| c.split(';').next()).unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/jwt") {
        return true;
    }
    let body = answer.body.trim_ascii();
    !body.is_empty()
        && body.iter().filter(|b| **b == b'.').count() == 2
        && body.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `aud` as a list (a string or an array of strings).
fn audiences(claims: &Map<String, Value>) -> Vec<String> {
    match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

fn string_claim(claims: &Map<String, Value>, name: &str) -> Option<String> {
    claims.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

impl OidcProvider {
    /// Validates an access token (see the module documentation).
    pub(super) async fn check_access_token(
        &self,
        token: &str,
        local_jwt: bool,
    ) -> Result<ValidatedToken, ProviderError> {
        let metadata = self.directory.require_metadata(&self.client, &self.name).await?;
        let now = self.clock.now_unix();
        if local_jwt {
            match self.local_access_token(token, &metadata, now).await {
                Ok(validated) => return Ok(validated),
                // Only our capacity stops here; any other local failure goes to the provider.
                Err(e) if e.reason() == &crate::provider::Reason::Common(CommonReason::Busy) => return Err(e),
                Err(e) => {
                    tracing::debug!(provider = %self.name, reason = e.label(), "access token not verified locally; asking the profile endpoint")
                }
            }
        }
        let endpoint = self.profile_endpoint.as_deref().or(metadata.userinfo_endpoint.as_deref()).ok_or_else(|| {
            ProviderError::with_context(
                Failure::ProfileInvalid,
                "no profile_endpoint and no userinfo_endpoint in discovery",
            )
        })?;
        if self.profile_endpoint.is_none()
            && !crate::config::dangerous::endpoint_allowed(endpoint, self.directory.allows_plain_http())
        {
            return Err(ProviderError::with_context(Failure::DiscoveryInvalid, "userinfo_endpoint is plain http://"));
        }
        let answer = self.client.profile(endpoint, token).await?;
        let status = answer.status;
        // RFC 6750 §3.1: 401 invalid_token, 403 insufficient_scope, 400 invalid_request — the
        // token's fault. Anything else that is not a success is the provider's.
        if matches!(status.as_u16(), 400 | 401 | 403) {
            return Err(ProviderError::with_context(Failure::AccessTokenRefused, format_args!("HTTP {status}")));
        }
        if !status.is_success() {
            return Err(ProviderError::with_context(
                CommonReason::HttpStatus,
                format_args!("HTTP {status} from the profile endpoint"),
            ));
        }
        let mut claims = if is_jwt(&answer) {
            let text = std::str::from_utf8(answer.body.trim_ascii())
                .map_err(|_| ProviderError::with_context(Failure::ProfileInvalid, "JWT is not text"))?;
            let jws = Jws::parse(text, self.max_token_bytes).map_err(|e| TokenKind::Profile.rejected(e))?;
            self.verify_signature(&jws, &metadata.jwks_uri, TokenKind::Profile).await?;
            let claims: Map<String, Value> = serde_json::from_slice(&jws.payload).map_err(|_| {
                ProviderError::with_context(Failure::TokenClaims(TokenKind::Profile), "payload is not a JSON object")
            })?;
            // A signed answer must be the provider's own.
            if claims.get("iss").is_some_and(|iss| iss.as_str() != Some(metadata.issuer.as_str())) {
                return Err(ProviderError::with_context(
                    Failure::TokenClaims(TokenKind::Profile),
                    "iss is not the issuer",
                ));
            }
            claims
        } else {
            serde_json::from_slice(&answer.body)
                .map_err(|_| ProviderError::with_context(Failure::ProfileInvalid, "neither a JWT nor a JSON object"))?
        };
        // Apereo CAS answers `{"id": …, "attributes": {…}}`: attributes count as claims.
        if let Some(Value::Object(attributes)) = claims.remove("attributes") {
            for (name, value) in attributes {
                claims.entry(name).or_insert(value);
            }
        }
        if string_claim(&claims, "sub").is_none() {
            match string_claim(&claims, "id") {
                Some(id) => {
                    claims.insert("sub".to_owned(), Value::String(id));
                }
                None => return Err(ProviderError::with_context(Failure::ProfileInvalid, "no sub")),
            }
        }
        let expires_at = number(&claims, "exp")
            .map_err(|_| ProviderError::with_context(Failure::ProfileInvalid, "exp is not a number"))?;
        if expires_at.is_some_and(|exp| exp.saturating_add(self.skew) <= now) {
            return Err(Failure::AccessTokenExpired.into());
        }
        Ok(self.validated(claims, expires_at, now, false))
    }

    /// A JWT access token verified with the provider's keys (no call).
    async fn local_access_token(
        &self,
        token: &str,
        metadata: &Metadata,
        now: u64,
    ) -> Result<ValidatedToken, ProviderError> {
        let refused = |why: &'static str| ProviderError::with_context(Failure::TokenClaims(TokenKind::Access), why);
        let jws = Jws::parse(token, self.max_token_bytes).map_err(|e| TokenKind::Access.rejected(e))?;
        // RFC 9068 §2.1 / §4: `at+jwt`, so an ID token (same issuer, same keys) is never taken
        // for an access token.
        let typ = jws.typ.as_deref().unwrap_or("").to_ascii_lowercase();
        if typ != "at+jwt" && typ != "application/at+jwt" {
            return Err(refused("typ is not at+jwt"));
        }
        // Only known keys: a token must not make the gateway fetch the JWKS (the profile
        // endpoint is the fallback for a key we do not hold yet).
        jws.verify_bounded(self.directory.keys())
            .await
            .map_err(crate::provider::cpu_refused)?
            .map_err(|e| TokenKind::Access.rejected(e))?;
        let claims: Map<String, Value> =
            serde_json::from_slice(&jws.payload).map_err(|_| refused("payload is not a JSON object"))?;
        if claims.get("iss").and_then(Value::as_str) != Some(metadata.issuer.as_str()) {
            return Err(refused("iss is not the issuer"));
        }
        if string_claim(&claims, "sub").is_none() {
            return Err(refused("no sub"));
        }
        let exp = number(&claims, "exp").ok().flatten().ok_or_else(|| refused("no exp"))?;
        if exp.saturating_add(self.skew) <= now {
            return Err(refused("expired"));
        }
        if number(&claims, "nbf").ok().flatten().is_some_and(|nbf| nbf > now.saturating_add(self.skew)) {
            return Err(refused("not yet valid"));
        }
        Ok(self.validated(claims, Some(exp), now, true))
    }

    fn validated(&self, claims: Map<String, Value>, expires_at: Option<u64>, now: u64, local: bool) -> ValidatedToken {
        let client_id = string_claim(&claims, "client_id").or_else(|| string_claim(&claims, "azp"));
        let audiences = audiences(&claims);
        let identity = super::to_identity(&self.name, &claims, self.loa, now);
        ValidatedToken { identity, client_id, audiences, expires_at, verified_locally: local }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(content_type: Option<&str>, body: &str) -> ProfileAnswer {
        ProfileAnswer {
            status: reqwest::StatusCode::OK,
            content_type: content_type.map(str::to_owned),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn jwt_answers_are_told_from_json() {
        assert!(is_jwt(&answer(Some("application/jwt; charset=utf-8"), "x")));
        assert!(is_jwt(&answer(None, " eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln\n")));
        assert!(!is_jwt(&answer(Some("application/json"), "{\"sub\":\"a.b.c\"}")));
        assert!(!is_jwt(&answer(None, "a.b")));
    }

    #[test]
    fn audiences_are_a_string_or_a_list() {
        let claims: Map<String, Value> = serde_json::from_str(r#"{"aud": ["a", 1, "b"]}"#).unwrap();
        assert_eq!(audiences(&claims), ["a", "b"]);
        let claims: Map<String, Value> = serde_json::from_str(r#"{"aud": "c"}"#).unwrap();
        assert_eq!(audiences(&claims), ["c"]);
    }
}
