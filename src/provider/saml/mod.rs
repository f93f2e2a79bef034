//! SAML 2.0 service provider: NIA (eIDAS profile), CAAIS SAML and EnviIAM SAML.
//!
//! One concern per module:
//! - [`xmlsec`]: XML-DSig verification and signing on `bergshamra`
//!   (aws-lc) behind the binding rules of `spec/saml-xmlsec-notes.md`: the exact POSTed bytes,
//!   only the signed node by fixed paths, a signature algorithm allow-list, keys parsed once.
//! - [`xmlenc`]: XML-Enc decryption of the one `EncryptedData` at the fixed path, on aws-lc-rs
//!   with the SP keys parsed once (bergshamra's decrypt re-imports the key on every call).
//! - [`acs`]: the Assertion Consumer Service: a `SAMLResponse` → a checked [`acs::SamlAssertion`].
//! - [`attributes`]: NIA / CAAIS / EnviIAM attributes → the normalized [`crate::identity::Identity`].

pub mod acs;
pub mod attributes;
pub mod xmlenc;
pub mod xmlsec;
