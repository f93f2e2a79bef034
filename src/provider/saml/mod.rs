//! SAML 2.0 service provider: NIA (eIDAS profile), CAAIS SAML and EnviIAM SAML.
//!
//! One concern per module:
//! - [`xmlsec`]: XML-DSig verification and signing, XML-Enc decryption, on `bergshamra`
//!   (aws-lc) behind the binding rules of `spec/saml-xmlsec-notes.md`: the exact POSTed bytes,
//!   only the signed node by fixed paths, only the expected `EncryptedData`, an algorithm
//!   allow-list, keys parsed once.
//! - [`acs`]: the Assertion Consumer Service: a `SAMLResponse` → a checked [`acs::SamlAssertion`].
//! - [`attributes`]: NIA / CAAIS / EnviIAM attributes → the normalized [`crate::identity::Identity`].

pub mod acs;
pub mod attributes;
pub mod xmlenc;
pub mod xmlsec;
