//! `[authorizer]` (the subject authorizer's endpoint) and `[app.authorize]` (per-app SOAP
//! operation extraction, IČO paths, exemptions) as written in the configuration.

use std::path::PathBuf;

use serde::Deserialize;

/// `[authorizer]`: the subject authorizer (CRŽP role + IČO), an HTTP JSON service.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizerConfig {
    /// `POST` endpoint, `https://` (or `http://` for a local sidecar).
    pub url: String,
    /// Whole-call timeout, milliseconds (connect included). A call over it is a 503.
    #[serde(default = "defaults::timeout_ms")]
    pub timeout_ms: u64,
    /// How long an `allowed` answer is reused, seconds.
    #[serde(default = "defaults::cache_ttl_secs")]
    pub cache_ttl_secs: u64,
    /// How long a denial is reused, seconds (shorter: a new mandate should work soon).
    #[serde(default = "defaults::deny_cache_ttl_secs")]
    pub deny_cache_ttl_secs: u64,
    /// Most cached answers.
    #[serde(default = "defaults::cache_size")]
    pub cache_size: u64,
    /// Which user id is sent: `subject` (the provider's subject, EnviIAM: the CRŽP UUID) or
    /// `label` (the gateway's pseudonymous log label, for an authorizer keyed by it).
    #[serde(default)]
    pub user: UserId,
    /// PEM CA bundle verifying the authorizer (default: web PKI roots).
    #[serde(default)]
    pub ca_bundle: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (with `client_key`).
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
}

/// Which user identifier the authorizer receives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserId {
    /// `Identity::subject` (EnviIAM `sub` / SAML NameID: the CRŽP user UUID).
    #[default]
    Subject,
    /// `Identity::log_label()`: provider and a keyed hash of the subject.
    Label,
}

/// `[app.authorize]`: SOAP operation authorization for one app.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppAuthorizeConfig {
    /// Largest request body buffered to find the operation and IČO, bytes; a larger body is
    /// refused with 413 (it is never forwarded unchecked).
    #[serde(default = "defaults::max_body_bytes")]
    pub max_body_bytes: usize,
    /// Check the IČO of every non-exempt operation with the `[authorizer]`.
    #[serde(default)]
    pub ico_check: bool,
    /// Path of local names from the operation element to the IČO, `/`-separated
    /// (e.g. `"Zadost/Subjekt/Ico"`), for operations without their own `ico_path`.
    #[serde(default)]
    pub ico_path: Option<String>,
    /// Operations (body element local name or SOAPAction last segment) exempt from the IČO
    /// check, e.g. the data-reception operations of `HlaseniOrp.svc`. Role rules still apply.
    #[serde(default)]
    pub exempt_operations: Vec<String>,
    /// Per-operation IČO paths.
    #[serde(default)]
    pub operation: Vec<OperationConfig>,
}

/// `[[app.authorize.operation]]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationConfig {
    /// Operation name: body element local name or SOAPAction last segment.
    pub name: String,
    /// Path of local names from the operation element to the IČO.
    pub ico_path: String,
}

mod defaults {
    pub fn timeout_ms() -> u64 {
        2000
    }
    pub fn cache_ttl_secs() -> u64 {
        300
    }
    pub fn deny_cache_ttl_secs() -> u64 {
        30
    }
    pub fn cache_size() -> u64 {
        10_000
    }
    pub fn max_body_bytes() -> usize {
        1 << 20
    }
}
