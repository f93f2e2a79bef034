//! Why a SAML message was refused (or a SAML step failed), precisely.
//!
//! Everything a browser (or an IdP posting to the SLO endpoint) delivers is checked by the
//! gateway: failing those checks is [`Side::Refused`], never an outage, whatever the check —
//! an attacker can send a DOCTYPE or a forged signature at will. A non-Success `StatusCode`
//! is the IdP's own "no" ([`Side::Denied`]). Only what keeps every login from succeeding on
//! our side — no (or expired) IdP metadata, no SSO/SLO endpoint, our own keys unusable — is
//! [`Side::Outage`].
//!
//! Each variant names one check, so the metric label (`reason` of
//! `aisgate_login_refusals_total`) says which one failed; the operator-only detail (which
//! element, how many seconds off) goes into the error's context. Variants carry no
//! attacker-controlled data: the only field, [`Amplifier`], is a bounded enum.

use std::fmt;

use super::limits::Amplifier;
use crate::provider::error::Side;

/// Why a SAML message was refused or a SAML step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    // --- the message as delivered --------------------------------------------------------
    /// No `SAMLResponse` (or no SAML message at the SLO endpoint).
    MissingMessage,
    /// The message cannot be decoded (base64, DEFLATE, query parameters).
    Encoding,
    /// The message is larger than `max_message_bytes` or the XML size cap.
    TooLarge,
    /// The XML carries a DOCTYPE (DTDs are never legitimate in SAML).
    Doctype,
    /// The XML is not well-formed (or nests deeper than the parser allows).
    NotWellFormed,
    /// More signatures, references, transforms, EncryptedKeys, EncryptedData or elements than
    /// the profile allows; refused before any cryptography (issue 15 item 1).
    TooComplex(Amplifier),
    /// Not the SAML message expected (wrong root, a required element missing, not exactly one
    /// assertion).
    Malformed,
    // --- XML security ----------------------------------------------------------------------
    /// Neither the Response nor its Assertion (nor a logout message / metadata root) carries a
    /// signature by a trusted IdP key.
    Unsigned,
    /// A signature does not verify (value, digest, untrusted key).
    Signature,
    /// A valid signature does not cover exactly its parent element with a single reference
    /// (signature wrapping, XSW).
    SignatureWrapping,
    /// Two elements share an ID (an XSW building block).
    DuplicateId,
    /// An algorithm outside the allow-list (SHA-1, 3DES, RSA-1.5, …).
    Algorithm,
    /// The encrypted assertion cannot be decrypted.
    Decryption,
    /// A plain Assertion while encryption is required.
    NotEncrypted,
    // --- SAML core / profile checks --------------------------------------------------------
    /// `Version` is not "2.0" (SAML core §4.1.2).
    Version,
    /// `IssueInstant` missing or not an `xs:dateTime`.
    IssueInstant,
    /// `IssueInstant` in the future beyond the tolerated skew.
    IssuedInFuture,
    /// A logout message issued too long ago (outside the skew window).
    Stale,
    /// No Issuer where one is required (a signed Response, an Assertion).
    IssuerMissing,
    /// The Issuer is not the configured IdP.
    Issuer,
    /// The Issuer's `Format` is not the entity format (profiles §4.1.4.2).
    IssuerFormat,
    /// `Destination` is not our endpoint, or missing on a signed message.
    Destination,
    /// `InResponseTo` does not name the pending request.
    InResponseTo,
    /// A Response that answers no request, and `allow_unsolicited` is off.
    Unsolicited,
    /// No bearer `SubjectConfirmation` names our ACS, the request and a future time.
    SubjectConfirmation,
    /// `Conditions@NotBefore` is ahead.
    NotYetValid,
    /// `Conditions@NotOnOrAfter` or `SessionNotOnOrAfter` has passed.
    Expired,
    /// No `AudienceRestriction` names our entityID.
    Audience,
    /// The achieved LoA does not satisfy the requested one.
    LoaNotSatisfied,
    /// The assertion or logout request was seen before (or the replay cache is full).
    Replayed,
    /// The AuthnRequest is older than `pending_request_ttl_secs`.
    RequestExpired,
    /// The RelayState is not the pending request's.
    RelayStateMismatch,
    /// Step-up needs `enforce_returned_loa`.
    StepUpUnavailable,
    // --- attributes --------------------------------------------------------------------------
    /// A base64-XML attribute (CAAIS `AccessRoles`, `ActivityRoles`, `DocumentIds`; NIA
    /// `CurrentAddress`, …) is not base64 or not well-formed XML.
    AttributeUndecodable,
    /// A foreign eIDAS identity and `allow_foreign_eidas` is off (NIA).
    ForeignIdentity,
    /// A `required_attributes` entry is missing.
    RequiredAttributeMissing,
    /// Neither the identifier attribute nor the NameID has a value.
    NoSubject,
    // --- logout --------------------------------------------------------------------------------
    /// A LogoutResponse that answers no LogoutRequest we sent (unknown, used or expired).
    LogoutUnknownResponse,
    /// A LogoutRequest naming neither a NameID nor a SessionIndex (or, unsigned on the back
    /// channel, no SessionIndex).
    LogoutNoSubject,
    // --- the IdP's answer ---------------------------------------------------------------------
    /// The IdP answered with a non-Success status.
    IdpStatus,
    // --- our side -------------------------------------------------------------------------------
    /// No usable IdP metadata (never loaded, or every fetch failed).
    MetadataUnavailable,
    /// The IdP metadata's `validUntil` has passed: it must not be trusted any more.
    MetadataExpired,
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
            Refusal::TooLarge => "too_large",
            Refusal::Doctype => "doctype",
            Refusal::NotWellFormed => "not_well_formed",
            Refusal::TooComplex(a) => match a {
                Amplifier::Elements => "too_many_elements",
                Amplifier::Signatures => "too_many_signatures",
                Amplifier::ReferencesPerSignature => "too_many_references",
                Amplifier::TransformsPerReference => "too_many_transforms",
                Amplifier::EncryptedKeys => "too_many_encrypted_keys",
                Amplifier::EncryptedData => "too_many_encrypted_data",
            },
            Refusal::Malformed => "malformed",
            Refusal::Unsigned => "unsigned",
            Refusal::Signature => "signature",
            Refusal::SignatureWrapping => "signature_wrapping",
            Refusal::DuplicateId => "duplicate_id",
            Refusal::Algorithm => "algorithm",
            Refusal::Decryption => "decryption",
            Refusal::NotEncrypted => "not_encrypted",
            Refusal::Version => "version",
            Refusal::IssueInstant => "issue_instant",
            Refusal::IssuedInFuture => "issued_in_future",
            Refusal::Stale => "stale",
            Refusal::IssuerMissing => "issuer_missing",
            Refusal::Issuer => "issuer",
            Refusal::IssuerFormat => "issuer_format",
            Refusal::Destination => "destination",
            Refusal::InResponseTo => "in_response_to",
            Refusal::Unsolicited => "unsolicited",
            Refusal::SubjectConfirmation => "subject_confirmation",
            Refusal::NotYetValid => "not_yet_valid",
            Refusal::Expired => "expired",
            Refusal::Audience => "audience",
            Refusal::LoaNotSatisfied => "loa_not_satisfied",
            Refusal::Replayed => "replayed",
            Refusal::RequestExpired => "request_expired",
            Refusal::RelayStateMismatch => "relay_state_mismatch",
            Refusal::StepUpUnavailable => "step_up_unavailable",
            Refusal::AttributeUndecodable => "attribute_undecodable",
            Refusal::ForeignIdentity => "foreign_identity",
            Refusal::RequiredAttributeMissing => "required_attribute_missing",
            Refusal::NoSubject => "no_subject",
            Refusal::LogoutUnknownResponse => "logout_unknown_response",
            Refusal::LogoutNoSubject => "logout_no_subject",
            Refusal::IdpStatus => "idp_status",
            Refusal::MetadataUnavailable => "metadata_unavailable",
            Refusal::MetadataExpired => "metadata_expired",
            Refusal::EndpointMissing => "endpoint_missing",
            Refusal::KeyUnusable => "key_unusable",
            Refusal::OutgoingMessage => "outgoing_message",
        }
    }

    /// Whose fault it is: everything about a delivered message is a refusal; the IdP's
    /// status is its "no"; only our metadata, endpoints and keys are outages.
    pub fn side(&self) -> Side {
        match self {
            Refusal::IdpStatus => Side::Denied,
            Refusal::MetadataUnavailable
            | Refusal::MetadataExpired
            | Refusal::EndpointMissing
            | Refusal::KeyUnusable
            | Refusal::OutgoingMessage => Side::Outage,
            _ => Side::Refused,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Refusal::MissingMessage => "no SAML message",
            Refusal::Encoding => "SAML message cannot be decoded",
            Refusal::TooLarge => "SAML message larger than the limit",
            Refusal::Doctype => "SAML message with a DOCTYPE",
            Refusal::NotWellFormed => "SAML message is not well-formed XML",
            Refusal::TooComplex(a) => {
                return write!(f, "SAML message too complex (too many {})", a.label());
            }
            Refusal::Malformed => "SAML message malformed",
            Refusal::Unsigned => "SAML message not signed by a trusted IdP key",
            Refusal::Signature => "SAML signature not valid",
            Refusal::SignatureWrapping => "SAML signature wrapping",
            Refusal::DuplicateId => "SAML message with duplicate IDs",
            Refusal::Algorithm => "SAML algorithm not allowed",
            Refusal::Decryption => "SAML assertion cannot be decrypted",
            Refusal::NotEncrypted => "SAML assertion not encrypted",
            Refusal::Version => "SAML Version is not 2.0",
            Refusal::IssueInstant => "SAML IssueInstant missing or malformed",
            Refusal::IssuedInFuture => "SAML message issued in the future",
            Refusal::Stale => "SAML message issued too long ago",
            Refusal::IssuerMissing => "SAML Issuer missing",
            Refusal::Issuer => "SAML Issuer is not the configured IdP",
            Refusal::IssuerFormat => "SAML Issuer Format is not entity",
            Refusal::Destination => "SAML Destination is not ours",
            Refusal::InResponseTo => "SAML InResponseTo is not the pending request",
            Refusal::Unsolicited => "unsolicited Response and allow_unsolicited is off",
            Refusal::SubjectConfirmation => "SAML SubjectConfirmation not satisfied",
            Refusal::NotYetValid => "SAML assertion not yet valid",
            Refusal::Expired => "SAML assertion expired",
            Refusal::Audience => "SAML Audience is not ours",
            Refusal::LoaNotSatisfied => "achieved LoA does not satisfy the requested one",
            Refusal::Replayed => "SAML message replayed",
            Refusal::RequestExpired => "the AuthnRequest is older than pending_request_ttl_secs",
            Refusal::RelayStateMismatch => "RelayState does not match the pending request",
            Refusal::StepUpUnavailable => "step-up needs enforce_returned_loa",
            Refusal::AttributeUndecodable => "SAML attribute value cannot be decoded",
            Refusal::ForeignIdentity => "foreign eIDAS identity refused by configuration",
            Refusal::RequiredAttributeMissing => "required SAML attribute missing",
            Refusal::NoSubject => "SAML assertion names no subject",
            Refusal::LogoutUnknownResponse => "LogoutResponse for no pending LogoutRequest",
            Refusal::LogoutNoSubject => "LogoutRequest names no session",
            Refusal::IdpStatus => "the IdP answered with a non-Success status",
            Refusal::MetadataUnavailable => "no IdP metadata",
            Refusal::MetadataExpired => "IdP metadata expired (validUntil passed)",
            Refusal::EndpointMissing => "IdP metadata lacks the endpoint",
            Refusal::KeyUnusable => "SAML key or certificate unusable",
            Refusal::OutgoingMessage => "SAML message cannot be built",
        };
        f.write_str(text)
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
            XmlSecError::TooLarge(_) => Refusal::TooLarge,
            XmlSecError::Doctype => Refusal::Doctype,
            XmlSecError::NotWellFormed(_) => Refusal::NotWellFormed,
            XmlSecError::Malformed(_) => Refusal::Malformed,
            XmlSecError::Unsigned(_) => Refusal::Unsigned,
            XmlSecError::Signature(_) => Refusal::Signature,
            XmlSecError::Wrapping(_) => Refusal::SignatureWrapping,
            XmlSecError::DuplicateId => Refusal::DuplicateId,
            XmlSecError::Decryption => Refusal::Decryption,
            XmlSecError::Algorithm(_) => Refusal::Algorithm,
            XmlSecError::Key(_) => Refusal::KeyUnusable,
            XmlSecError::TooComplex(exceeded) => Refusal::TooComplex(exceeded.what),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_own_side_is_an_outage_and_only_the_idp_status_a_denial() {
        assert_eq!(Refusal::Doctype.side(), Side::Refused);
        assert_eq!(Refusal::Signature.side(), Side::Refused);
        assert_eq!(Refusal::TooComplex(Amplifier::Signatures).side(), Side::Refused);
        assert_eq!(Refusal::AttributeUndecodable.side(), Side::Refused);
        assert_eq!(Refusal::IdpStatus.side(), Side::Denied);
        assert_eq!(Refusal::MetadataUnavailable.side(), Side::Outage);
        assert_eq!(Refusal::MetadataExpired.side(), Side::Outage);
    }

    #[test]
    fn labels_are_snake_case() {
        for r in [Refusal::TooComplex(Amplifier::EncryptedKeys), Refusal::LogoutUnknownResponse, Refusal::Doctype] {
            assert!(r.label().chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{}", r.label());
        }
        assert_eq!(Refusal::TooComplex(Amplifier::EncryptedKeys).label(), "too_many_encrypted_keys");
    }
}
