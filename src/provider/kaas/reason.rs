//! Why a JIP/KAAS step failed, precisely.
//!
//! What the browser delivers (the `sessionId` token, one-time credentials) is format-checked
//! by the gateway ([`Side::Refused`] when it fails); KAAS saying the token or credentials are
//! no good is [`Side::Denied`]; SOAP faults, `SYSTEM_ERROR` and answers we cannot parse over
//! the mutual-TLS back channel are [`Side::Outage`].

use std::fmt;

use crate::provider::error::Side;

/// Why a JIP/KAAS step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Failure {
    /// The callback has no `sessionId`.
    MissingSessionId,
    /// The `sessionId` does not have the token format (length, alphabet).
    SessionIdMalformed,
    /// The direct form lacks the one-time username or password.
    CredentialsMissing,
    /// One-time credentials empty or longer than any KAAS issues.
    CredentialsMalformed,
    /// `SESSION_NOT_FOUND`: the token is invalid, expired or already used.
    SessionNotFound,
    /// `VERIFICATION_FAILED`: the one-time credentials were refused.
    VerificationFailed,
    /// `SYSTEM_ERROR` (twice: it is retried once).
    SystemError,
    /// A status this gateway does not know.
    UnexpectedStatus,
    /// A SOAP fault.
    SoapFault,
    /// The SOAP answer is not acceptable (DTD, not SOAP, wrong element or namespace, no
    /// status, `OK` without attributes or without `UzivatelId`).
    ResponseInvalid,
    /// The login URL cannot be built from the configuration.
    LoginUrlInvalid,
    /// KAAS refused every configured client certificate (HTTP 401): our configuration.
    ClientCertificateRefused,
}

impl Failure {
    /// The bounded metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Failure::MissingSessionId => "missing_session_id",
            Failure::SessionIdMalformed => "session_id_malformed",
            Failure::CredentialsMissing => "credentials_missing",
            Failure::CredentialsMalformed => "credentials_malformed",
            Failure::SessionNotFound => "session_not_found",
            Failure::VerificationFailed => "verification_failed",
            Failure::SystemError => "system_error",
            Failure::UnexpectedStatus => "unexpected_status",
            Failure::SoapFault => "soap_fault",
            Failure::ResponseInvalid => "response_invalid",
            Failure::LoginUrlInvalid => "login_url_invalid",
            Failure::ClientCertificateRefused => "client_certificate_refused",
        }
    }

    /// Whose fault it is.
    pub fn side(&self) -> Side {
        match self {
            Failure::MissingSessionId
            | Failure::SessionIdMalformed
            | Failure::CredentialsMissing
            | Failure::CredentialsMalformed => Side::Refused,
            Failure::SessionNotFound | Failure::VerificationFailed => Side::Denied,
            Failure::SystemError
            | Failure::UnexpectedStatus
            | Failure::SoapFault
            | Failure::ResponseInvalid
            | Failure::LoginUrlInvalid
            | Failure::ClientCertificateRefused => Side::Outage,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Failure::MissingSessionId => "no sessionId parameter",
            Failure::SessionIdMalformed => "sessionId does not have the token format",
            Failure::CredentialsMissing => "one-time username or password missing",
            Failure::CredentialsMalformed => "one-time credentials empty or too long",
            Failure::SessionNotFound => "SESSION_NOT_FOUND: token invalid, expired or already used",
            Failure::VerificationFailed => "VERIFICATION_FAILED: one-time credentials refused",
            Failure::SystemError => "SYSTEM_ERROR",
            Failure::UnexpectedStatus => "unexpected authConfirmation status",
            Failure::SoapFault => "SOAP fault",
            Failure::ResponseInvalid => "KAAS response not acceptable",
            Failure::LoginUrlInvalid => "login URL cannot be built",
            Failure::ClientCertificateRefused => "KAAS refused our client certificate(s)",
        })
    }
}
