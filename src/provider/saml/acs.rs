//! Assertion Consumer Service: a POSTed `SAMLResponse` → a checked assertion (interface;
//! implementation in progress).

use std::time::Duration;

use super::xmlsec::{DecryptionKeys, IdpCertificates};
use crate::identity::Loa;

/// How a requested LoA is compared with the achieved one (`RequestedAuthnContext@Comparison`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LoaComparison {
    /// Achieved == requested.
    Exact,
    /// Achieved >= requested.
    Minimum,
    /// Achieved <= requested.
    Maximum,
    /// Achieved > requested.
    Better,
}

/// What a Response must match, from configuration and the pending AuthnRequest.
#[derive(Debug, Clone)]
pub struct Expectations<'a> {
    /// The IdP entityID; compared case-insensitively when `issuer_case_insensitive` (NIA).
    pub idp_entity_id: &'a str,
    /// NIA sends `urn:microsoft:cgg2010:fpsts` in varying case.
    pub issuer_case_insensitive: bool,
    /// Our entityID; an `Audience` must equal it (or differ only by a trailing slash when
    /// `audience_ignores_trailing_slash`).
    pub sp_entity_id: &'a str,
    /// NIA's Audience drops the entityID's trailing slash.
    pub audience_ignores_trailing_slash: bool,
    /// Our ACS URL: `Destination` and `Recipient` must equal it.
    pub acs_url: &'a str,
    /// The pending AuthnRequest ID; `None` only for an unsolicited response (when enabled).
    pub request_id: Option<&'a str>,
    /// The requested LoA and comparison, checked against the achieved `AuthnContextClassRef`.
    pub requested_loa: Option<(Loa, LoaComparison)>,
    /// Clock skew tolerated on `NotBefore` / `NotOnOrAfter`.
    pub clock_skew: Duration,
    /// Current time, Unix seconds.
    pub now: u64,
    /// Refuse a plain (unencrypted) Assertion.
    pub require_encrypted_assertion: bool,
}

/// One `saml:Attribute`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamlAttribute {
    /// `Name` (a URI or an OID/short name, as the IdP sends it).
    pub name: String,
    /// `FriendlyName`, when present.
    pub friendly_name: Option<String>,
    /// Text values in document order (whitespace kept, comments dropped).
    pub values: Vec<String>,
}

/// A checked assertion: everything later steps may rely on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamlAssertion {
    /// Assertion `ID` (replay cache key).
    pub id: String,
    /// Assertion `Issuer`.
    pub issuer: String,
    /// `Subject/NameID` value.
    pub name_id: String,
    /// `NameID@Format`.
    pub name_id_format: Option<String>,
    /// `NameID@NameQualifier` / `SPNameQualifier`, echoed in a LogoutRequest.
    pub name_qualifier: Option<String>,
    /// `NameID@SPNameQualifier`.
    pub sp_name_qualifier: Option<String>,
    /// `AuthnStatement@SessionIndex`.
    pub session_index: Option<String>,
    /// `AuthnStatement@AuthnInstant`, Unix seconds.
    pub authn_instant: Option<u64>,
    /// `AuthnStatement@SessionNotOnOrAfter`, Unix seconds.
    pub session_not_on_or_after: Option<u64>,
    /// Achieved `AuthnContextClassRef`.
    pub authn_context: Option<String>,
    /// Latest instant the assertion may be accepted (`Conditions@NotOnOrAfter`), Unix seconds;
    /// the replay cache keeps the ID until then.
    pub not_on_or_after: u64,
    /// Attributes in document order.
    pub attributes: Vec<SamlAttribute>,
}

/// Why a Response was refused. The message is for the operator log (no personal data).
#[derive(Debug, thiserror::Error)]
pub enum AcsError {
    /// Not a well-formed, acceptable SAML Response.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// Signature, decryption or algorithm policy failure.
    #[error(transparent)]
    Security(#[from] super::xmlsec::XmlSecError),
    /// The IdP reports a non-success status (first- and second-level codes, message).
    #[error("status {0}")]
    Status(String),
    /// A SAML check failed (issuer, destination, audience, time, InResponseTo, LoA, replay).
    #[error("{0}")]
    Invalid(String),
}

/// Processes the base64-decoded bytes of a POSTed `SAMLResponse` exactly as received.
pub fn process_response(
    _xml: &[u8],
    _certs: &IdpCertificates,
    _keys: &DecryptionKeys,
    _expect: &Expectations<'_>,
) -> Result<SamlAssertion, AcsError> {
    Err(AcsError::Malformed("not implemented".to_owned()))
}

/// Assertion IDs seen until their `NotOnOrAfter` (plus skew): a second use is refused.
pub struct ReplayCache {
    _private: (),
}

impl ReplayCache {
    /// A cache holding at most `capacity` IDs.
    pub fn new(_capacity: u64) -> Self {
        ReplayCache { _private: () }
    }

    /// Records `id` until `until` (Unix seconds); `false` when it was already recorded.
    pub fn first_use(&self, _id: &str, _until: u64) -> bool {
        false
    }
}
