//! `[[provider]] kind = "saml"`: presets, SP identity and keys, IdP metadata source, request
//! options. The SP URLs (ACS, SLO, metadata) are derived from `public_base_url` and the provider
//! name, so they stay stable as long as those do (NIA registers them, nia.md §7.2).

use std::path::PathBuf;

use serde::Deserialize;

use super::acs::LoaComparison;
use super::attributes::Profile;
use crate::identity::Loa;

/// Named environments (nia.md §6.1, caais.md §2.2, enviam.md §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SamlPreset {
    /// NIA test (`tnia.identita.gov.cz`).
    NiaTest,
    /// NIA production (`nia.identita.gov.cz`).
    NiaProd,
    /// CAAIS SAML integration environment (test-ext).
    CaaisSamlTest,
    /// CAAIS SAML production (Internet interface).
    CaaisSamlProd,
    /// EnviIAM test (`t-iam.env.cz`).
    EnviamSamlTest,
    /// EnviIAM production (`iam.env.cz`).
    EnviamSamlProd,
}

/// What a preset fills in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SamlPresetValues {
    /// Attribute profile.
    pub profile: Profile,
    /// IdP metadata URL.
    pub metadata_url: &'static str,
    /// Expected IdP entityID when the preset knows it (else: from metadata).
    pub idp_entity_id: Option<&'static str>,
    /// NIA sends its entityID in varying case (nia.md §6.1).
    pub issuer_case_insensitive: bool,
    /// NIA's Audience drops the entityID's trailing slash (nia.md §8.3).
    pub audience_ignores_trailing_slash: bool,
    /// Whether AuthnRequests must be signed (CAAIS §2.3 and EnviIAM §5.4: yes; NIA §8.5: optional).
    pub sign_requests: bool,
    /// Where the signature of a Redirect-bound AuthnRequest goes.
    pub redirect_signature: RedirectSignature,
    /// Default SSO binding.
    pub sso_binding: Binding,
    /// Default pending-request lifetime (NIA queues logins: ≥ 60 min, nia.md §8.4).
    pub pending_request_ttl_secs: u64,
    /// EnviIAM's logout URL (`{server}/logout?service=…`, enviam.md §5.7), used when the IdP has no SAML SLO.
    pub logout_redirect_url: Option<&'static str>,
    /// Request eIDAS extensions (SPType and RequestedAttributes).
    pub eidas_extensions: bool,
    /// The NameID format published in SP metadata.
    pub name_id_format: &'static str,
    /// Whether the IdP encrypts assertions, so that production needs `encryption_keys`
    /// (NIA: mandatory, nia.md §7.2; CAAIS: yes). EnviIAM (CAS defaults) signs but the
    /// source never says it encrypts (enviam.md §5.4): signed plain assertions are its
    /// normal case, accepted without `allow_unencrypted_assertions` (a signature is still
    /// required, as for every provider).
    pub encrypts_assertions: bool,
}

const PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
const UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";

impl SamlPreset {
    /// The preset's values.
    pub fn values(self) -> SamlPresetValues {
        let nia = |metadata_url| SamlPresetValues {
            profile: Profile::Nia,
            metadata_url,
            idp_entity_id: Some("urn:microsoft:cgg2010:fpsts"),
            issuer_case_insensitive: true,
            audience_ignores_trailing_slash: true,
            sign_requests: false,
            redirect_signature: RedirectSignature::Query,
            sso_binding: Binding::Redirect,
            pending_request_ttl_secs: 3600,
            logout_redirect_url: None,
            eidas_extensions: true,
            name_id_format: PERSISTENT,
            encrypts_assertions: true,
        };
        // caais.md §2.3/§7.3: requests must be signed; the doc shows an embedded enveloped
        // signature carried in the Deflate+Base64 Redirect encoding (the "encoding quirk").
        let caais = |metadata_url| SamlPresetValues {
            profile: Profile::Caais,
            metadata_url,
            idp_entity_id: None,
            issuer_case_insensitive: false,
            audience_ignores_trailing_slash: false,
            sign_requests: true,
            redirect_signature: RedirectSignature::Embedded,
            sso_binding: Binding::Redirect,
            pending_request_ttl_secs: 3600,
            logout_redirect_url: None,
            eidas_extensions: true,
            name_id_format: UNSPECIFIED,
            encrypts_assertions: true,
        };
        // enviam.md §5.4: signed requests, HTTP-POST preferred.
        let enviam = |metadata_url, logout| SamlPresetValues {
            profile: Profile::Enviam,
            metadata_url,
            idp_entity_id: None,
            issuer_case_insensitive: false,
            audience_ignores_trailing_slash: false,
            sign_requests: true,
            redirect_signature: RedirectSignature::Query,
            sso_binding: Binding::Post,
            pending_request_ttl_secs: 900,
            logout_redirect_url: Some(logout),
            eidas_extensions: false,
            name_id_format: UNSPECIFIED,
            encrypts_assertions: false,
        };
        match self {
            SamlPreset::NiaTest => {
                nia("https://tnia.identita.gov.cz/FPSTS/FederationMetadata/2007-06/FederationMetadata.xml")
            }
            SamlPreset::NiaProd => {
                nia("https://nia.identita.gov.cz/FPSTS/FederationMetadata/2007-06/FederationMetadata.xml")
            }
            SamlPreset::CaaisSamlTest => {
                caais("https://rest-externalsaml2api.caais-test-ext.gov.cz/samlIdpMetadata.xml")
            }
            SamlPreset::CaaisSamlProd => caais("https://rest-externalsaml2api.caais.gov.cz/samlIdpMetadata.xml"),
            SamlPreset::EnviamSamlTest => {
                enviam("https://t-iam.env.cz/cas/idp/metadata", "https://t-iam.env.cz/cas/logout")
            }
            SamlPreset::EnviamSamlProd => {
                enviam("https://iam.env.cz/cas/idp/metadata", "https://iam.env.cz/cas/logout")
            }
        }
    }

    /// Whether this is a production environment (the encryption certificate is mandatory there).
    pub fn is_production(self) -> bool {
        matches!(self, SamlPreset::NiaProd | SamlPreset::CaaisSamlProd | SamlPreset::EnviamSamlProd)
    }
}

/// SAML binding for browser messages to the IdP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Binding {
    /// HTTP-Redirect: `SAMLRequest` = base64(deflate(xml)) in the query.
    Redirect,
    /// HTTP-POST: an auto-submitted form with base64(xml).
    Post,
}

impl Binding {
    /// The binding URI used in metadata.
    pub fn uri(self) -> &'static str {
        match self {
            Binding::Redirect => "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
            Binding::Post => "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
        }
    }
}

/// Where the signature of a Redirect-bound AuthnRequest goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedirectSignature {
    /// `SigAlg` and `Signature` query parameters (SAML bindings §3.4.4.1).
    Query,
    /// An enveloped `ds:Signature` inside the deflated XML (CAAIS, caais.md §2.4 and §7.3).
    Embedded,
}

/// eIDAS `SPType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpType {
    /// A public-sector SP.
    Public,
    /// A private-sector SP.
    Private,
}

impl SpType {
    /// The element text.
    pub fn as_str(self) -> &'static str {
        match self {
            SpType::Public => "public",
            SpType::Private => "private",
        }
    }
}

/// `encryption_keys = [{ key = "...", cert = "..." }]`: one SP decryption key pair.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPairPaths {
    /// PEM private key (PKCS#8 or PKCS#1).
    pub key: PathBuf,
    /// PEM certificate, published in metadata.
    pub cert: PathBuf,
}

/// `[[provider]] kind = "saml"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamlProviderConfig {
    /// Provider name (also the last segment of the gateway's SAML URLs: keep it stable).
    pub name: String,
    /// Label on the chooser page.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Environment preset.
    #[serde(default)]
    pub preset: Option<SamlPreset>,
    /// Attribute profile (`nia`, `caais`, `enviam`); required without a preset.
    #[serde(default)]
    pub profile: Option<Profile>,
    /// The SP entityID (NIA: the registered "unique URL", which must never change; CAAIS: the AIS shortcut).
    pub entity_id: String,
    /// PEM key signing AuthnRequests, LogoutRequests and LogoutResponses.
    #[serde(default)]
    pub signing_key: Option<PathBuf>,
    /// PEM certificate of `signing_key`, published in metadata (`use="signing"`).
    #[serde(default)]
    pub signing_cert: Option<PathBuf>,
    /// Decryption key pairs: current first, then previous ones during a rollover. All
    /// certificates are published (`use="encryption"`); any key may decrypt.
    #[serde(default)]
    pub encryption_keys: Vec<KeyPairPaths>,
    /// IdP metadata file (instead of a URL).
    #[serde(default)]
    pub idp_metadata_file: Option<PathBuf>,
    /// IdP metadata URL (default from the preset); refreshed every `metadata_refresh_secs`.
    #[serde(default)]
    pub idp_metadata_url: Option<String>,
    /// PEM certificate(s) the IdP metadata must be signed with (pinned). Without it the
    /// metadata is trusted by its TLS channel (URL) or by the operator (file).
    #[serde(default)]
    pub idp_metadata_signer_certs: Vec<PathBuf>,
    /// Interval between IdP metadata refreshes, seconds. A failed refresh keeps the last good copy.
    #[serde(default = "default_metadata_refresh")]
    pub metadata_refresh_secs: u64,
    /// PEM CA bundle for the metadata URL's TLS (default: web PKI roots).
    #[serde(default)]
    pub ca_bundle: Option<PathBuf>,
    /// Expected IdP entityID (default: the preset's, else the metadata's).
    #[serde(default)]
    pub idp_entity_id: Option<String>,
    /// Accept an Audience equal to the entityID without its trailing slash (NIA presets: on).
    #[serde(default)]
    pub audience_ignores_trailing_slash: Option<bool>,
    /// SSO URL override (default: from metadata, for `sso_binding`).
    #[serde(default)]
    pub idp_sso_url: Option<String>,
    /// SLO URL override (default: the metadata's HTTP-Redirect SingleLogoutService).
    #[serde(default)]
    pub idp_slo_url: Option<String>,
    /// `redirect` or `post`: how the AuthnRequest reaches the IdP.
    #[serde(default)]
    pub sso_binding: Option<Binding>,
    /// Sign AuthnRequests (CAAIS, EnviIAM: required; NIA: optional).
    #[serde(default)]
    pub sign_requests: Option<bool>,
    /// `query` (SigAlg/Signature) or `embedded` (enveloped, inside the deflated XML; CAAIS).
    #[serde(default)]
    pub redirect_signature: Option<RedirectSignature>,
    /// Send the eIDAS `Extensions` (SPType, RequestedAttributes). Default from the preset.
    #[serde(default)]
    pub eidas_extensions: Option<bool>,
    /// eIDAS `SPType`.
    #[serde(default = "default_sp_type")]
    pub sp_type: SpType,
    /// Attributes requested in `eidas:RequestedAttributes`: short names (`PersonIdentifier`,
    /// `CurrentGivenName`, …) or full URIs. NIA releases only what is requested.
    #[serde(default)]
    pub requested_attributes: Option<Vec<String>>,
    /// The `IsAgeOver` threshold (sent when `IsAgeOver` is requested).
    #[serde(default)]
    pub is_age_over: Option<u32>,
    /// Requested LoA (`RequestedAuthnContext`); none: IdPs of every LoA are offered.
    #[serde(default)]
    pub loa: Option<Loa>,
    /// `minimum` (default), `exact`, `maximum` or `better`.
    #[serde(default = "default_comparison")]
    pub loa_comparison: LoaComparison,
    /// `ForceAuthn="true"`: re-authenticate even with an IdP SSO session.
    #[serde(default)]
    pub force_authn: bool,
    /// NameIDFormat published in metadata (default from the preset).
    #[serde(default)]
    pub name_id_format: Option<String>,
    /// Attributes (short names) without which the login is refused.
    #[serde(default)]
    pub required_attributes: Vec<String>,
    /// Accept foreign eIDAS identities (PersonIdentifier not starting with `CZ/CZ/`).
    #[serde(default = "yes")]
    pub allow_foreign_eidas: bool,
    /// Lifetime of a pending AuthnRequest, seconds (NIA preset: 3600); the gateway keeps this
    /// provider's pending logins and pre-login cookies that long even when `[session]
    /// login_ttl_secs` is shorter.
    #[serde(default)]
    pub pending_request_ttl_secs: Option<u64>,
    /// Tolerated clock difference, seconds.
    #[serde(default = "default_skew")]
    pub clock_skew_secs: u64,
    /// Largest SAML message accepted, bytes (decoded).
    #[serde(default = "default_max_message")]
    pub max_message_bytes: usize,
    /// IdP logout page for IdPs without SAML SLO (EnviIAM `…/logout`); `service` is appended.
    #[serde(default)]
    pub logout_redirect_url: Option<String>,
    /// Where the browser ends after logout (default: the gateway's logged-out page). NIA: the
    /// registered post-logout URL.
    #[serde(default)]
    pub post_logout_redirect_url: Option<String>,
    /// Options that weaken security (issue 15 item 11): unsolicited Responses, unencrypted
    /// assertions, unsigned logout requests, case-insensitive issuer, unchecked LoA, plain HTTP.
    #[serde(default)]
    pub dangerous: crate::config::dangerous::SamlDangerous,
    /// TCP+TLS connect timeout for the metadata URL, seconds.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Total timeout of one metadata fetch, seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_metadata_refresh() -> u64 {
    3600
}
fn default_sp_type() -> SpType {
    SpType::Public
}
fn default_comparison() -> LoaComparison {
    LoaComparison::Minimum
}
fn yes() -> bool {
    true
}
fn default_skew() -> u64 {
    180
}
fn default_max_message() -> usize {
    512 * 1024
}
fn default_connect_timeout() -> u64 {
    5
}
fn default_timeout() -> u64 {
    15
}

/// NIA attribute short names → URIs (nia.md §10.1, canonical forms of the AuthnRequest example).
pub const NIA_ATTRIBUTES: &[(&str, &str)] = &[
    ("PersonIdentifier", "http://eidas.europa.eu/attributes/naturalperson/PersonIdentifier"),
    ("CurrentFamilyName", "http://eidas.europa.eu/attributes/naturalperson/CurrentFamilyName"),
    ("CurrentGivenName", "http://eidas.europa.eu/attributes/naturalperson/CurrentGivenName"),
    ("DateOfBirth", "http://eidas.europa.eu/attributes/naturalperson/DateOfBirth"),
    ("PlaceOfBirth", "http://eidas.europa.eu/attributes/naturalperson/PlaceOfBirth"),
    ("CountryCodeOfBirth", "http://www.stork.gov.eu/1.0/countryCodeOfBirth"),
    ("CurrentAddress", "http://eidas.europa.eu/attributes/naturalperson/CurrentAddress"),
    ("Email", "http://www.stork.gov.eu/1.0/eMail"),
    ("IsAgeOver", "http://www.stork.gov.eu/1.0/isAgeOver"),
    ("Age", "http://www.stork.gov.eu/1.0/age"),
    ("PhoneNumber", "http://schemas.eidentita.cz/moris/2016/identity/claims/phonenumber"),
    ("TRadresaID", "http://schemas.eidentita.cz/moris/2016/identity/claims/tradresaid"),
    ("IdType", "http://schemas.eidentita.cz/moris/2016/identity/claims/idtype"),
    ("IdNumber", "http://schemas.eidentita.cz/moris/2016/identity/claims/idnumber"),
    ("FullIds", "http://schemas.eidentita.cz/moris/2022/identity/claims/fullids"),
];

/// The URI of a requested attribute: a known short name (case-insensitive) or a URI as given.
pub fn attribute_uri(name: &str) -> Option<String> {
    if name.contains(':') {
        return Some(name.to_owned());
    }
    NIA_ATTRIBUTES.iter().find(|(short, _)| short.eq_ignore_ascii_case(name)).map(|(_, uri)| (*uri).to_owned())
}

const DEFAULT_NIA_ATTRIBUTES: &[&str] = &["PersonIdentifier", "CurrentGivenName", "CurrentFamilyName", "DateOfBirth"];

impl SamlProviderConfig {
    fn preset_values(&self) -> Option<SamlPresetValues> {
        self.preset.map(SamlPreset::values)
    }

    /// The attribute profile.
    pub fn profile(&self) -> Option<Profile> {
        self.profile.or_else(|| self.preset_values().map(|p| p.profile))
    }

    /// The IdP metadata URL, unless a file is configured.
    pub fn metadata_url(&self) -> Option<String> {
        if self.idp_metadata_file.is_some() {
            return None;
        }
        self.idp_metadata_url.clone().or_else(|| self.preset_values().map(|p| p.metadata_url.to_owned()))
    }

    /// The expected IdP entityID, if known before the metadata.
    pub fn idp_entity_id(&self) -> Option<String> {
        self.idp_entity_id.clone().or_else(|| self.preset_values().and_then(|p| p.idp_entity_id.map(str::to_owned)))
    }

    fn preset_flag(&self, explicit: Option<bool>, from: impl Fn(&SamlPresetValues) -> bool) -> bool {
        explicit.or_else(|| self.preset_values().map(|p| from(&p))).unwrap_or(false)
    }

    /// Case-insensitive IdP entityID comparison.
    pub fn issuer_case_insensitive(&self) -> bool {
        self.preset_flag(self.dangerous.issuer_case_insensitive, |p| p.issuer_case_insensitive)
    }

    /// Audience may lack the entityID's trailing slash.
    pub fn audience_ignores_trailing_slash(&self) -> bool {
        self.preset_flag(self.audience_ignores_trailing_slash, |p| p.audience_ignores_trailing_slash)
    }

    /// Sign AuthnRequests.
    pub fn sign_requests(&self) -> bool {
        self.preset_flag(self.sign_requests, |p| p.sign_requests)
    }

    /// Send eIDAS extensions (default: with the NIA and CAAIS profiles).
    pub fn eidas_extensions(&self) -> bool {
        self.eidas_extensions
            .or_else(|| self.preset_values().map(|p| p.eidas_extensions))
            .unwrap_or(matches!(self.profile(), Some(Profile::Nia | Profile::Caais)))
    }

    /// Accept unsigned POSTed LogoutRequests (`dangerous`; no preset turns it on).
    pub fn accept_unsigned_logout_requests(&self) -> bool {
        self.dangerous.accept_unsigned_logout_requests
    }

    /// The SSO binding.
    pub fn sso_binding(&self) -> Binding {
        self.sso_binding.or_else(|| self.preset_values().map(|p| p.sso_binding)).unwrap_or(Binding::Redirect)
    }

    /// Signature placement for Redirect-bound AuthnRequests.
    pub fn redirect_signature(&self) -> RedirectSignature {
        self.redirect_signature
            .or_else(|| self.preset_values().map(|p| p.redirect_signature))
            .unwrap_or(RedirectSignature::Query)
    }

    /// Pending AuthnRequest lifetime, seconds.
    pub fn pending_request_ttl_secs(&self) -> u64 {
        self.pending_request_ttl_secs
            .or_else(|| self.preset_values().map(|p| p.pending_request_ttl_secs))
            .unwrap_or(900)
    }

    /// The EnviIAM-style logout page, if any.
    pub fn logout_redirect_url(&self) -> Option<String> {
        self.logout_redirect_url
            .clone()
            .or_else(|| self.preset_values().and_then(|p| p.logout_redirect_url.map(str::to_owned)))
    }

    /// NameIDFormat for metadata.
    pub fn name_id_format(&self) -> String {
        self.name_id_format
            .clone()
            .or_else(|| self.preset_values().map(|p| p.name_id_format.to_owned()))
            .unwrap_or_else(|| UNSPECIFIED.to_owned())
    }

    /// Requested attribute URIs (NIA default: the minimal four of nia.md §11.1 [rec]).
    pub fn requested_attribute_uris(&self) -> Vec<String> {
        let names: Vec<String> = match &self.requested_attributes {
            Some(list) => list.clone(),
            None if self.profile() == Some(Profile::Nia) => {
                DEFAULT_NIA_ATTRIBUTES.iter().map(|s| (*s).to_owned()).collect()
            }
            None => Vec::new(),
        };
        names.iter().filter_map(|n| attribute_uri(n)).collect()
    }

    /// Whether a plain (unencrypted, signed) Assertion is refused: unless
    /// `allow_unencrypted_assertions` is set or the preset's IdP does not encrypt (EnviIAM).
    pub fn requires_encrypted_assertions(&self) -> bool {
        !self.dangerous.allow_unencrypted_assertions && self.preset_values().is_none_or(|p| p.encrypts_assertions)
    }

    /// Cross-field checks that need no files.
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let http_url = |what: &str, url: &str, problems: &mut Vec<String>| match url::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => {}
            _ => problems.push(format!("{what} {url:?} is not an http(s) URL")),
        };
        if self.profile().is_none() {
            problems
                .push("profile is not set (give a preset or profile = \"nia\" | \"caais\" | \"enviam\")".to_owned());
        }
        if self.entity_id.trim().is_empty() {
            problems.push("entity_id is empty".to_owned());
        }
        if self.profile() == Some(Profile::Nia) && !self.entity_id.starts_with("https://") {
            problems.push("entity_id must be the registered https:// unique URL for NIA (nia.md §7.2)".to_owned());
        }
        match (&self.idp_metadata_file, &self.idp_metadata_url, self.preset) {
            (Some(_), Some(_), _) => problems.push("set only one of idp_metadata_file and idp_metadata_url".to_owned()),
            (None, None, None) => {
                problems.push("idp_metadata_file or idp_metadata_url is required without a preset".to_owned())
            }
            _ => {}
        }
        let production = self.preset.is_some_and(SamlPreset::is_production);
        let allow_http = self.dangerous.allow_plain_http;
        if let Some(url) = self.metadata_url() {
            http_url("idp_metadata_url", &url, &mut problems);
            problems.extend(crate::config::dangerous::plain_http_problem(
                "idp_metadata_url",
                &url,
                allow_http,
                production,
            ));
        }
        for (what, url) in [
            ("idp_sso_url", &self.idp_sso_url),
            ("idp_slo_url", &self.idp_slo_url),
            ("logout_redirect_url", &self.logout_redirect_url),
        ] {
            if let Some(url) = url {
                problems.extend(crate::config::dangerous::plain_http_problem(what, url, allow_http, production));
            }
        }
        for (what, url) in [
            ("idp_sso_url", &self.idp_sso_url),
            ("idp_slo_url", &self.idp_slo_url),
            ("logout_redirect_url", &self.logout_redirect_url),
            ("post_logout_redirect_url", &self.post_logout_redirect_url),
        ] {
            if let Some(url) = url {
                http_url(what, url, &mut problems);
            }
        }
        if self.signing_key.is_some() != self.signing_cert.is_some() {
            problems.push("signing_key and signing_cert go together".to_owned());
        }
        if self.sign_requests() && self.signing_key.is_none() {
            problems.push("sign_requests needs signing_key and signing_cert".to_owned());
        }
        // Encryption is mandatory in production only for IdPs that encrypt (NIA, CAAIS);
        // EnviIAM's signed plain assertions are its normal case.
        let encrypting_production = self.preset.is_some_and(|p| p.is_production() && p.values().encrypts_assertions);
        if encrypting_production && self.encryption_keys.is_empty() {
            problems
                .push("a production preset needs encryption_keys (nia.md §7.2: mandatory in production)".to_owned());
        }
        if self.encryption_keys.is_empty() && self.requires_encrypted_assertions() {
            problems.push(
                "encryption_keys is empty: add a key pair or set [provider.dangerous] allow_unencrypted_assertions = true (test only)".to_owned(),
            );
        }
        if self.dangerous.allow_unencrypted_assertions && encrypting_production {
            problems.push("allow_unencrypted_assertions is not allowed with a production preset".to_owned());
        }
        if let Some(list) = &self.requested_attributes {
            for name in list {
                if attribute_uri(name).is_none() {
                    problems.push(format!("requested attribute {name:?} is neither a known short name nor a URI"));
                }
            }
        }
        let requests_age_over = self.requested_attribute_uris().iter().any(|u| u.ends_with("/isAgeOver"));
        if requests_age_over && self.is_age_over.is_none() {
            problems.push("IsAgeOver is requested: set is_age_over (the age threshold)".to_owned());
        }
        if self.clock_skew_secs > 600 {
            problems.push("clock_skew_secs is larger than 600".to_owned());
        }
        if self.max_message_bytes < 4096 {
            problems.push("max_message_bytes is smaller than 4096".to_owned());
        }
        if self.pending_request_ttl_secs() == 0 {
            problems.push("pending_request_ttl_secs must be > 0".to_owned());
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> SamlProviderConfig {
        toml::from_str(text).unwrap()
    }

    const KEYS: &str = "encryption_keys = [{ key = \"e.key\", cert = \"e.pem\" }]";

    #[test]
    fn nia_preset_fills_the_nia_quirks() {
        let cfg = parse(&format!(
            "name = \"nia\"\npreset = \"nia-test\"\nentity_id = \"https://gw.example.cz/app/\"\n{KEYS}"
        ));
        assert_eq!(cfg.idp_entity_id().as_deref(), Some("urn:microsoft:cgg2010:fpsts"));
        assert!(cfg.issuer_case_insensitive() && cfg.audience_ignores_trailing_slash());
        assert!(!cfg.sign_requests());
        assert_eq!(cfg.pending_request_ttl_secs(), 3600);
        assert_eq!(cfg.requested_attribute_uris().len(), 4);
        assert!(cfg.metadata_url().unwrap().starts_with("https://tnia.identita.gov.cz/"));
        assert!(cfg.check().is_empty(), "{:?}", cfg.check());
    }

    #[test]
    fn caais_preset_requires_a_signing_key_and_embeds_the_signature() {
        let cfg = parse(&format!("name = \"c\"\npreset = \"caais-saml-test\"\nentity_id = \"AIS1\"\n{KEYS}"));
        assert_eq!(cfg.redirect_signature(), RedirectSignature::Embedded);
        assert!(cfg.check().join("\n").contains("sign_requests needs signing_key"));
    }

    #[test]
    fn production_presets_require_an_encryption_key() {
        let cfg = parse("name = \"n\"\npreset = \"nia-prod\"\nentity_id = \"https://gw.example.cz/\"\ndangerous.allow_unencrypted_assertions = true");
        let problems = cfg.check().join("\n");
        assert!(problems.contains("mandatory in production"));
        assert!(problems.contains("not allowed with a production preset"));
    }

    #[test]
    fn unknown_attribute_names_and_a_missing_age_threshold_are_reported() {
        let cfg = parse(&format!(
            "name = \"n\"\npreset = \"nia-test\"\nentity_id = \"https://gw/\"\n{KEYS}\nrequested_attributes = [\"Nope\", \"isageover\"]"
        ));
        let problems = cfg.check().join("\n");
        assert!(problems.contains("\"Nope\""));
        assert!(problems.contains("is_age_over"));
    }

    #[test]
    fn the_commented_nia_example_is_valid() {
        // config/aisgate.example.toml shows the NIA provider commented out (it needs key
        // files and NIA's metadata); this keeps that block in step with the schema.
        let text = include_str!("../../../config/aisgate.example.toml");
        let start = text.find("# kind = \"saml\"").unwrap();
        let block: String = text[start..]
            .lines()
            .take_while(|l| l.starts_with('#'))
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        let block = block.replace("kind = \"saml\"\n", "").replace("[provider.dangerous]", "[dangerous]");
        let cfg: SamlProviderConfig = toml::from_str(&block).unwrap();
        assert_eq!(cfg.preset, Some(SamlPreset::NiaTest));
        assert!(cfg.check().is_empty(), "{:?}", cfg.check());
    }

    /// Issue 15 item 4c: EnviIAM (CAS) signs but need not encrypt; `enviam-saml-prod` without
    /// encryption keys was refused by `check` and could not be configured at all.
    #[test]
    fn enviam_production_takes_signed_plain_assertions_without_encryption_keys() {
        let cfg = parse(
            "name = \"e\"\npreset = \"enviam-saml-prod\"\nentity_id = \"https://gw.example.cz/\"\n\
             signing_key = \"s.key\"\nsigning_cert = \"s.pem\"",
        );
        assert!(cfg.check().is_empty(), "{:?}", cfg.check());
        assert!(!cfg.requires_encrypted_assertions());
        // NIA production still insists on encryption.
        let nia = parse("name = \"n\"\npreset = \"nia-prod\"\nentity_id = \"https://gw.example.cz/\"");
        assert!(nia.check().join("\n").contains("mandatory in production"));
        assert!(nia.requires_encrypted_assertions());
    }

    #[test]
    fn a_generic_provider_needs_a_profile_and_metadata() {
        let problems = parse("name = \"g\"\nentity_id = \"urn:x\"\ndangerous.allow_unencrypted_assertions = true")
            .check()
            .join("\n");
        assert!(problems.contains("profile is not set"));
        assert!(problems.contains("idp_metadata_file or idp_metadata_url"));
        assert!(toml::from_str::<SamlProviderConfig>("name = \"g\"\nentity_id = \"x\"\nunknown = 1").is_err());
    }
}
