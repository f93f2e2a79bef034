//! Why a SAML message was refused (or a SAML step failed), precisely.
//!
//! Everything a browser (or an IdP posting to the SLO endpoint) delivers is checked by the
//! gateway: failing those checks is [`Side::Refused`], never an outage, whatever the check —
//! an attacker can send a DOCTYPE or a forged signature at will. A non-Success `StatusCode`
//! is the IdP's own "no" ([`Side::Denied`]). Only what keeps every login from succeeding on
//! our side — no IdP metadata, no SSO/SLO endpoint, our own keys unusable — is
//! [`Side::Outage`].

use std::fmt;

use crate::provider::error::Side;

/// Why a SAML message was refused or a SAML step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// No `SAMLResponse` (or no SAML message at the SLO endpoint).
    MissingMessage,
    /// The message cannot be decoded (base64, DEFLATE, size).
    Encoding,
    /// Not an acceptable SAML message (DOCTYPE, not well-formed, wrong root, schema).
    Malformed,
    /// No valid signature by a trusted IdP key covers what the SP uses (forged, wrapped,
    /// missing).
    Signature,
    /// An algorithm outside the allow-list (SHA-1, 3DES, …).
    Algorithm,
    /// The encrypted assertion cannot be decrypted.
    Decryption,
    /// A SAML check failed (issuer, destination, audience, time, InResponseTo, LoA).
    Check,
    /// The assertion was seen before.
    Replayed,
    /// The assertion's attributes cannot be mapped to an identity.
    Attributes,
    /// A Response that answers no request, and `allow_unsolicited` is off.
    Unsolicited,
    /// The AuthnRequest is older than `pending_request_ttl_secs`.
    RequestExpired,
    /// The RelayState is not the pending request's.
    RelayStateMismatch,
    /// Step-up needs `enforce_returned_loa`.
    StepUpUnavailable,
    /// A logout message fails a check (signature, issuer, InResponseTo, binding).
    LogoutRefused,
    /// The IdP answered with a non-Success status.
    IdpStatus,
    /// No usable IdP metadata.
    MetadataUnavailable,
    /// The IdP metadata lacks the endpoint needed (SingleSignOnService, SingleLogoutService).
    EndpointMissing,
    /// Our own key or certificate cannot be used (signing, configured IdP certificates).
    KeyUnusable,
    /// An outgoing message (AuthnRequest, LogoutResponse) cannot be built.
    OutgoingMessage,
}

impl Refusal {
    /// The bounded metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::MissingMessage => "missing_message",
            Refusal::Encoding => "encoding",
            Refusal::Malformed => "malformed",
            Refusal::Signature => "signature",
            Refusal::Algorithm => "algorithm",
            Refusal::Decryption => "decryption",
            Refusal::Check => "check",
            Refusal::Replayed => "replayed",
            Refusal::Attributes => "attributes",
            Refusal::Unsolicited => "unsolicited",
            Refusal::RequestExpired => "request_expired",
            Refusal::RelayStateMismatch => "relay_state_mismatch",
            Refusal::StepUpUnavailable => "step_up_unavailable",
            Refusal::LogoutRefused => "logout_refused",
            Refusal::IdpStatus => "idp_status",
            Refusal::MetadataUnavailable => "metadata_unavailable",
            Refusal::EndpointMissing => "endpoint_missing",
            Refusal::KeyUnusable => "key_unusable",
            Refusal::OutgoingMessage => "outgoing_message",
        }
    }

    /// Whose fault it is.
    pub fn side(&self) -> Side {
        match self {
            Refusal::MissingMessage
            | Refusal::Encoding
            | Refusal::Malformed
            | Refusal::Signature
            | Refusal::Algorithm
            | Refusal::Decryption
            | Refusal::Check
            | Refusal::Replayed
            | Refusal::Attributes
            | Refusal::Unsolicited
            | Refusal::RequestExpired
            | Refusal::RelayStateMismatch
            | Refusal::StepUpUnavailable
            | Refusal::LogoutRefused => Side::Refused,
            Refusal::IdpStatus => Side::Denied,
            Refusal::MetadataUnavailable
            | Refusal::EndpointMissing
            | Refusal::KeyUnusable
            | Refusal::OutgoingMessage => Side::Outage,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::MissingMessage => "no SAML message",
            Refusal::Encoding => "SAML message cannot be decoded",
            Refusal::Malformed => "SAML message malformed",
            Refusal::Signature => "SAML signature not valid",
            Refusal::Algorithm => "SAML algorithm not allowed",
            Refusal::Decryption => "SAML assertion cannot be decrypted",
            Refusal::Check => "SAML check failed",
            Refusal::Replayed => "SAML assertion replayed",
            Refusal::Attributes => "SAML attributes cannot be mapped",
            Refusal::Unsolicited => "unsolicited Response and allow_unsolicited is off",
            Refusal::RequestExpired => "the AuthnRequest is older than pending_request_ttl_secs",
            Refusal::RelayStateMismatch => "RelayState does not match the pending request",
            Refusal::StepUpUnavailable => "step-up needs enforce_returned_loa",
            Refusal::LogoutRefused => "SAML logout message refused",
            Refusal::IdpStatus => "the IdP answered with a non-Success status",
            Refusal::MetadataUnavailable => "no IdP metadata",
            Refusal::EndpointMissing => "IdP metadata lacks the endpoint",
            Refusal::KeyUnusable => "SAML key or certificate unusable",
            Refusal::OutgoingMessage => "SAML message cannot be built",
        })
    }
}

impl From<super::xmlsec::XmlSecError> for Refusal {
    /// The XML-security failure class; the detail goes into the error's context.
    fn from(e: super::xmlsec::XmlSecError) -> Refusal {
        Refusal::from(&e)
    }
}

impl From<&super::xmlsec::XmlSecError> for Refusal {
    fn from(e: &super::xmlsec::XmlSecError) -> Refusal {
        use super::xmlsec::XmlSecError;
        match e {
            XmlSecError::Malformed(_) => Refusal::Malformed,
            XmlSecError::Signature(_) => Refusal::Signature,
            XmlSecError::Decryption => Refusal::Decryption,
            XmlSecError::Algorithm(_) => Refusal::Algorithm,
            XmlSecError::Key(_) => Refusal::KeyUnusable,
        }
    }
}
