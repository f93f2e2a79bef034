//! SAML attributes → [`Identity`] for NIA, CAAIS SAML and EnviIAM SAML (interface;
//! implementation in progress).

use super::acs::SamlAssertion;
use crate::identity::Identity;

/// Which attribute profile a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// NIA eIDAS attribute catalogue (nia.md §10).
    Nia,
    /// CAAIS SAML attributes (caais.md §2).
    Caais,
    /// EnviIAM attributes (enviam.md §5.4).
    Enviam,
}

/// Options of the mapping that come from configuration.
#[derive(Debug, Clone, Default)]
pub struct MappingOptions {
    /// Refuse foreign eIDAS identities (BSI not starting with `CZ/CZ/`).
    pub refuse_foreign: bool,
    /// Attributes (by short name) that must be present, else the login is refused.
    pub required: Vec<String>,
}

/// Why the attributes cannot make an identity (message for the operator; no personal data).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MappingError(pub String);

/// Maps a checked assertion to the normalized identity.
pub fn to_identity(
    _profile: Profile,
    _provider: &str,
    _assertion: &SamlAssertion,
    _options: &MappingOptions,
    _now: u64,
) -> Result<Identity, MappingError> {
    Err(MappingError("not implemented".to_owned()))
}
