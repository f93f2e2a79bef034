//! Why an OpenID Connect step failed, precisely: one variant per check, with bounded fields.
//!
//! The side of each variant follows one rule: what a browser delivers (the authorization
//! response, and the tokens it leads to) is checked by the gateway and can only be
//! [`Side::Refused`] or, where the IdP said no, [`Side::Denied`]; only answers of the
//! authenticated back channel that keep every login from succeeding are [`Side::Outage`].
//! An OAuth error in an authorization response arrives through the browser, so even
//! `server_error` there is `Denied` (an attacker could forge it with their own `state`).

use std::fmt;

use crate::provider::error::Side;

/// An OAuth 2.0 error code (RFC 6749 §4.1.2.1, §5.2; OIDC Core §3.1.2.6), bounded: any code
/// outside the registered ones is [`OAuthError::Other`] (the raw value is attacker- or
/// IdP-chosen text and is not kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OAuthError {
    /// `invalid_request`.
    InvalidRequest,
    /// `invalid_client`: the IdP does not accept our client authentication (certificate,
    /// secret, client id).
    InvalidClient,
    /// `invalid_grant`: the code or refresh token is invalid, expired, used or not ours.
    InvalidGrant,
    /// `unauthorized_client`: the client may not use this grant.
    UnauthorizedClient,
    /// `unsupported_grant_type`.
    UnsupportedGrantType,
    /// `invalid_scope`.
    InvalidScope,
    /// `access_denied`: the user or the IdP refused.
    AccessDenied,
    /// `unsupported_response_type`.
    UnsupportedResponseType,
    /// `server_error`.
    ServerError,
    /// `temporarily_unavailable`.
    TemporarilyUnavailable,
    /// `login_required`, `interaction_required`, `consent_required`, `account_selection_required`.
    InteractionRequired,
    /// Any other code, or none.
    Other,
}

impl OAuthError {
    /// Classifies a raw code (only registered codes are recognised).
    pub fn parse(code: &str) -> OAuthError {
        match code {
            "invalid_request" => OAuthError::InvalidRequest,
            "invalid_client" => OAuthError::InvalidClient,
            "invalid_grant" => OAuthError::InvalidGrant,
            "unauthorized_client" => OAuthError::UnauthorizedClient,
            "unsupported_grant_type" => OAuthError::UnsupportedGrantType,
            "invalid_scope" => OAuthError::InvalidScope,
            "access_denied" => OAuthError::AccessDenied,
            "unsupported_response_type" => OAuthError::UnsupportedResponseType,
            "server_error" => OAuthError::ServerError,
            "temporarily_unavailable" => OAuthError::TemporarilyUnavailable,
            "login_required" | "interaction_required" | "consent_required" | "account_selection_required" => {
                OAuthError::InteractionRequired
            }
            _ => OAuthError::Other,
        }
    }

    /// The code as logged (`other` for unregistered codes).
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthError::InvalidRequest => "invalid_request",
            OAuthError::InvalidClient => "invalid_client",
            OAuthError::InvalidGrant => "invalid_grant",
            OAuthError::UnauthorizedClient => "unauthorized_client",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::InvalidScope => "invalid_scope",
            OAuthError::AccessDenied => "access_denied",
            OAuthError::UnsupportedResponseType => "unsupported_response_type",
            OAuthError::ServerError => "server_error",
            OAuthError::TemporarilyUnavailable => "temporarily_unavailable",
            OAuthError::InteractionRequired => "interaction_required",
            OAuthError::Other => "other",
        }
    }

    /// Whether this code from the token endpoint says that *our* client configuration is
    /// wrong (certificate, secret, client registration, scopes): no login can succeed until
    /// an operator acts, and nothing a browser delivers can provoke it (the code or refresh
    /// token only ever yields `invalid_grant`/`invalid_request`).
    fn blames_our_client(self) -> bool {
        matches!(
            self,
            OAuthError::InvalidClient
                | OAuthError::UnauthorizedClient
                | OAuthError::UnsupportedGrantType
                | OAuthError::InvalidScope
        )
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which JWT a token check concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// The ID token of a login.
    Id,
    /// A back-channel logout token.
    Logout,
    /// The JWT answer of the profile (userinfo) endpoint for an API request's access token.
    Profile,
    /// A JWT access token verified locally (`[app.bearer] local_jwt`).
    Access,
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenKind::Id => "ID token",
            TokenKind::Logout => "logout token",
            TokenKind::Profile => "profile JWT",
            TokenKind::Access => "access token",
        })
    }
}

/// Why an OpenID Connect step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Failure {
    /// The authorization response carries an OAuth error (the IdP or the user refused).
    AuthorizationError(OAuthError),
    /// The token endpoint answered with an OAuth error. Side by code: our client
    /// configuration → outage; the grant → denied.
    TokenEndpointError(OAuthError),
    /// The callback has no `code`.
    MissingCode,
    /// The callback's `code` is longer than any IdP issues.
    CodeTooLong,
    /// The callback's `state` is not this login's.
    StateMismatch,
    /// The authorization response names another issuer (RFC 9207 `iss`: mix-up).
    IssuerMismatch,
    /// A JWT is malformed (structure, encoding, size, `crit`).
    TokenMalformed(TokenKind),
    /// A JWT uses an algorithm outside the allow-list (RS256, ES256).
    TokenAlgorithm(TokenKind),
    /// No IdP key matches the JWT, even after refetching the JWKS.
    TokenKeyUnknown(TokenKind),
    /// A JWT's signature does not verify.
    TokenSignature(TokenKind),
    /// A JWT's claims fail a check (issuer, audience, azp, time, nonce, at_hash, events…).
    TokenClaims(TokenKind),
    /// A logout token's `jti` was seen before.
    LogoutTokenReplayed,
    /// CAAIS `SSOExpiration` is already past.
    SsoExpired,
    /// The userinfo `sub` differs from the ID token's (OIDC Core §5.3.2). An outage: both
    /// come over the authenticated back channel for the same grant, so only a misbehaving IdP
    /// (not a browser) can cause it.
    UserinfoSubjectMismatch,
    /// No client of this provider can reach the required LoA.
    LoaUnreachable,
    /// The session holds no refresh token.
    NoRefreshToken,
    /// The discovery document is invalid (not JSON, another issuer, non-HTTP endpoints).
    DiscoveryInvalid,
    /// No discovery document is available yet.
    DiscoveryUnavailable,
    /// The JWKS is invalid or has no usable signature key.
    JwksInvalid,
    /// The token endpoint's answer is not a valid token response (not JSON, no `id_token`,
    /// no `access_token`).
    TokenResponseInvalid,
    /// The userinfo answer is not a JSON object.
    UserinfoInvalid,
    /// The profile (userinfo) endpoint refused an API request's access token (HTTP 401/403:
    /// invalid, expired or revoked).
    AccessTokenRefused,
    /// The profile endpoint's answer for an access token is unusable (not a JWT or JSON
    /// object, no `sub`) or there is no profile endpoint.
    ProfileInvalid,
    /// The profile answer says the access token has expired (`exp` past).
    AccessTokenExpired,
}

impl Failure {
    /// The bounded metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Failure::AuthorizationError(_) => "authorization_error",
            Failure::TokenEndpointError(code) if code.blames_our_client() => "token_endpoint_client_rejected",
            Failure::TokenEndpointError(_) => "token_endpoint_grant_rejected",
            Failure::MissingCode => "missing_code",
            Failure::CodeTooLong => "code_too_long",
            Failure::StateMismatch => "state_mismatch",
            Failure::IssuerMismatch => "issuer_mismatch",
            Failure::TokenMalformed(TokenKind::Id) => "id_token_malformed",
            Failure::TokenMalformed(TokenKind::Logout) => "logout_token_malformed",
            Failure::TokenMalformed(TokenKind::Access) => "access_token_malformed",
            Failure::TokenMalformed(TokenKind::Profile) => "profile_jwt_malformed",
            Failure::TokenAlgorithm(TokenKind::Id) => "id_token_algorithm",
            Failure::TokenAlgorithm(TokenKind::Logout) => "logout_token_algorithm",
            Failure::TokenAlgorithm(TokenKind::Access) => "access_token_algorithm",
            Failure::TokenAlgorithm(TokenKind::Profile) => "profile_jwt_algorithm",
            Failure::TokenKeyUnknown(TokenKind::Id) => "id_token_key_unknown",
            Failure::TokenKeyUnknown(TokenKind::Logout) => "logout_token_key_unknown",
            Failure::TokenKeyUnknown(TokenKind::Access) => "access_token_key_unknown",
            Failure::TokenKeyUnknown(TokenKind::Profile) => "profile_jwt_key_unknown",
            Failure::TokenSignature(TokenKind::Id) => "id_token_signature",
            Failure::TokenSignature(TokenKind::Logout) => "logout_token_signature",
            Failure::TokenSignature(TokenKind::Access) => "access_token_signature",
            Failure::TokenSignature(TokenKind::Profile) => "profile_jwt_signature",
            Failure::TokenClaims(TokenKind::Id) => "id_token_claims",
            Failure::TokenClaims(TokenKind::Logout) => "logout_token_claims",
            Failure::TokenClaims(TokenKind::Access) => "access_token_claims",
            Failure::TokenClaims(TokenKind::Profile) => "profile_jwt_claims",
            Failure::LogoutTokenReplayed => "logout_token_replayed",
            Failure::SsoExpired => "sso_expired",
            Failure::UserinfoSubjectMismatch => "userinfo_subject_mismatch",
            Failure::LoaUnreachable => "loa_unreachable",
            Failure::NoRefreshToken => "no_refresh_token",
            Failure::DiscoveryInvalid => "discovery_invalid",
            Failure::DiscoveryUnavailable => "discovery_unavailable",
            Failure::JwksInvalid => "jwks_invalid",
            Failure::TokenResponseInvalid => "token_response_invalid",
            Failure::UserinfoInvalid => "userinfo_invalid",
            Failure::AccessTokenRefused => "access_token_refused",
            Failure::ProfileInvalid => "profile_invalid",
            Failure::AccessTokenExpired => "access_token_expired",
        }
    }

    /// Whose fault it is.
    pub fn side(&self) -> Side {
        match self {
            // The profile JWT comes from the IdP over the authenticated back channel: an
            // outsider's token cannot make it fail these checks, only the IdP (or a key
            // rollover we cannot follow) can.
            Failure::TokenMalformed(TokenKind::Profile)
            | Failure::TokenAlgorithm(TokenKind::Profile)
            | Failure::TokenKeyUnknown(TokenKind::Profile)
            | Failure::TokenSignature(TokenKind::Profile)
            | Failure::TokenClaims(TokenKind::Profile) => Side::Outage,
            Failure::AuthorizationError(_) | Failure::NoRefreshToken => Side::Denied,
            Failure::TokenEndpointError(code) if code.blames_our_client() => Side::Outage,
            Failure::TokenEndpointError(_) => Side::Denied,
            Failure::MissingCode
            | Failure::CodeTooLong
            | Failure::StateMismatch
            | Failure::IssuerMismatch
            | Failure::TokenMalformed(_)
            | Failure::TokenAlgorithm(_)
            | Failure::TokenKeyUnknown(_)
            | Failure::TokenSignature(_)
            | Failure::TokenClaims(_)
            | Failure::LogoutTokenReplayed
            | Failure::SsoExpired
            | Failure::LoaUnreachable
            | Failure::AccessTokenRefused
            | Failure::AccessTokenExpired => Side::Refused,
            Failure::DiscoveryInvalid
            | Failure::DiscoveryUnavailable
            | Failure::JwksInvalid
            | Failure::TokenResponseInvalid
            | Failure::UserinfoInvalid
            | Failure::UserinfoSubjectMismatch
            | Failure::ProfileInvalid => Side::Outage,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::AuthorizationError(code) => write!(f, "the IdP returned OAuth error {code}"),
            Failure::TokenEndpointError(code) if code.blames_our_client() => write!(
                f,
                "the token endpoint refused our client (OAuth error {code}): check the client id, certificate or secret"
            ),
            Failure::TokenEndpointError(code) => write!(f, "the token endpoint refused the grant (OAuth error {code})"),
            Failure::MissingCode => f.write_str("no code parameter"),
            Failure::CodeTooLong => f.write_str("code parameter too long"),
            Failure::StateMismatch => f.write_str("state does not match this login"),
            Failure::IssuerMismatch => f.write_str("authorization response from another issuer"),
            Failure::TokenMalformed(kind) => write!(f, "{kind} malformed"),
            Failure::TokenAlgorithm(kind) => write!(f, "{kind} algorithm not allowed"),
            Failure::TokenKeyUnknown(kind) => write!(f, "{kind} signed by an unknown key"),
            Failure::TokenSignature(kind) => write!(f, "{kind} signature does not verify"),
            Failure::TokenClaims(kind) => write!(f, "{kind} claims refused"),
            Failure::LogoutTokenReplayed => f.write_str("logout token jti already used"),
            Failure::SsoExpired => f.write_str("SSOExpiration is already past"),
            Failure::UserinfoSubjectMismatch => f.write_str("userinfo sub differs from the ID token"),
            Failure::LoaUnreachable => f.write_str("no client for the required LoA"),
            Failure::NoRefreshToken => f.write_str("no refresh token"),
            Failure::DiscoveryInvalid => f.write_str("discovery document invalid"),
            Failure::DiscoveryUnavailable => f.write_str("no discovery document"),
            Failure::JwksInvalid => f.write_str("JWKS invalid"),
            Failure::TokenResponseInvalid => f.write_str("token response invalid"),
            Failure::UserinfoInvalid => f.write_str("userinfo response invalid"),
            Failure::AccessTokenRefused => f.write_str("the profile endpoint refused the access token"),
            Failure::ProfileInvalid => f.write_str("profile endpoint answer unusable"),
            Failure::AccessTokenExpired => f.write_str("the access token has expired"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_client_is_our_configuration_not_the_user() {
        let f = Failure::TokenEndpointError(OAuthError::parse("invalid_client"));
        assert_eq!(f.side(), Side::Outage);
        assert_eq!(f.label(), "token_endpoint_client_rejected");
        assert!(f.to_string().contains("invalid_client"), "{f}");
        let g = Failure::TokenEndpointError(OAuthError::parse("invalid_grant"));
        assert_eq!(g.side(), Side::Denied);
        assert!(g.to_string().contains("invalid_grant"));
    }

    #[test]
    fn browser_delivered_errors_are_never_outages() {
        for code in ["server_error", "temporarily_unavailable", "invalid_client", "x"] {
            assert_eq!(Failure::AuthorizationError(OAuthError::parse(code)).side(), Side::Denied);
        }
        assert_eq!(OAuthError::parse("<script>"), OAuthError::Other);
    }
}
