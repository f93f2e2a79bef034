//! `[[provider]] kind = "kaas"`: presets, URLs, certificates, version and login mode.

use std::path::PathBuf;

use serde::Deserialize;

use super::soap::{self, ServiceVersion};

/// Named environments with their hosts and paths (kaas.md §5, caais.md §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KaasPreset {
    /// JIP/KAAS test (Czech POINT).
    KaasTest,
    /// JIP/KAAS production; login and logout hosts differ.
    KaasProd,
    /// CAAIS test-ext.
    CaaisTest,
    /// CAAIS production (Internet).
    CaaisProd,
    /// CAAIS production on the KIVS/CMS network.
    CaaisCms,
}

/// The four endpoints of a KAAS-style IdP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// Login page (`?atsId=`).
    pub login: String,
    /// Logout page (`?atsId=&uri=`).
    pub logout: String,
    /// Authentication web service (mTLS).
    pub auth_ws: String,
    /// Direct (one-time credential) web service (mTLS).
    pub direct_ws: String,
}

impl KaasPreset {
    /// The preset's endpoints.
    pub fn endpoints(self) -> Endpoints {
        let (login, logout, ws) = match self {
            KaasPreset::KaasTest => (
                "https://www.test.czechpoint.cz/as/login",
                "https://www.test.czechpoint.cz/as/processLogout",
                "https://cert.test.czechpoint.cz/asws/",
            ),
            KaasPreset::KaasProd => (
                "https://kaas.czechpoint.cz/as/login",
                "https://www.czechpoint.cz/as/processLogout",
                "https://kaas-crt.czechpoint.cz/asws/",
            ),
            KaasPreset::CaaisTest => (
                "https://externalauthapi.caais-test-ext.gov.cz/login",
                "https://externalauthapi.caais-test-ext.gov.cz/processLogout",
                "https://cert-externalauthapi.caais-test-ext.gov.cz/asws/",
            ),
            KaasPreset::CaaisProd => (
                "https://externalauthapi.caais.gov.cz/login",
                "https://externalauthapi.caais.gov.cz/processLogout",
                "https://cert-externalauthapi.caais.gov.cz/asws/",
            ),
            KaasPreset::CaaisCms => (
                "https://externalauthapi.caais.cms2.cz/login",
                "https://externalauthapi.caais.cms2.cz/processLogout",
                "https://cert-externalauthapi.caais.cms2.cz/asws/",
            ),
        };
        Endpoints {
            login: login.to_owned(),
            logout: logout.to_owned(),
            auth_ws: format!("{ws}atsEndpoint"),
            direct_ws: format!("{ws}directAuthUserEndpoint"),
        }
    }
}

/// `[[provider]] kind = "kaas"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KaasProviderConfig {
    /// Provider name.
    pub name: String,
    /// Label on the chooser page.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Environment preset; every URL below overrides it.
    #[serde(default)]
    pub preset: Option<KaasPreset>,
    /// The AIS identifier registered in JIP/CAAIS.
    pub ats_id: String,
    /// Service version: `v2_1`, `v3_4`, `v4_1`, `v4_2` (default).
    #[serde(default = "default_version")]
    pub version: String,
    /// Login page URL.
    #[serde(default)]
    pub login_url: Option<String>,
    /// Logout page URL.
    #[serde(default)]
    pub logout_url: Option<String>,
    /// Authentication web service URL.
    #[serde(default)]
    pub auth_ws_url: Option<String>,
    /// Direct web service URL.
    #[serde(default)]
    pub direct_ws_url: Option<String>,
    /// Where the IdP sends the browser after logout; must start with the logout URL
    /// registered in JIP. Default: the gateway's logged-out page.
    #[serde(default)]
    pub logout_return_url: Option<String>,
    /// PEM client certificate (chain) for mutual TLS.
    pub client_cert: PathBuf,
    /// PEM private key of the client certificate.
    pub client_key: PathBuf,
    /// A second client certificate for rollover: tried when the IdP refuses the first one
    /// with HTTP 401 (before any token is consumed). Register the new certificate at the IdP,
    /// add it here, then swap the two once the old one is retired.
    #[serde(default)]
    pub secondary_client_cert: Option<PathBuf>,
    /// PEM private key of the secondary certificate.
    #[serde(default)]
    pub secondary_client_key: Option<PathBuf>,
    /// PEM CA bundle for the IdP's server certificate (default: public web PKI roots).
    #[serde(default)]
    pub ca_bundle: Option<PathBuf>,
    /// TCP+TLS connect timeout for SOAP calls, seconds.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Total timeout of one SOAP call, seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// `redirect` (classic: the IdP's login page returns a `sessionId`) or `direct` (the user
    /// types one-time credentials into the gateway's form; v3_4+).
    #[serde(default)]
    pub login_mode: LoginMode,
    /// Namespace variant for `directAuthUser`: `atsUser/atsSzr` (WSDL, CAAIS; default) or
    /// `atsUser` (the JIP/KAAS document).
    #[serde(default = "default_direct_namespace")]
    pub direct_namespace: String,
    /// Interval of `heartBeat` checks, seconds.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_interval_secs: u64,
    /// Options that weaken security (`allow_plain_http`).
    #[serde(default)]
    pub dangerous: crate::config::dangerous::ProviderDangerous,
}

/// How users log in through a KAAS provider.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoginMode {
    /// Redirect to the IdP login page; it returns a `sessionId` (flow A).
    #[default]
    Redirect,
    /// One-time credentials typed into the gateway's form (direct v2, flow B).
    Direct,
}

fn default_direct_namespace() -> String {
    "atsUser/atsSzr".to_owned()
}

fn default_version() -> String {
    "v4_2".to_owned()
}
fn default_connect_timeout() -> u64 {
    5
}
fn default_timeout() -> u64 {
    15
}
fn default_heartbeat() -> u64 {
    30
}

impl KaasProviderConfig {
    /// The effective endpoints: the preset's, overridden URL by URL.
    pub fn endpoints(&self) -> Result<Endpoints, String> {
        let base = self.preset.map(KaasPreset::endpoints);
        let pick = |own: &Option<String>, preset: Option<&String>, what: &str| {
            own.clone()
                .or_else(|| preset.cloned())
                .ok_or_else(|| format!("{what} is not set (give a preset or the URL)"))
        };
        Ok(Endpoints {
            login: pick(&self.login_url, base.as_ref().map(|b| &b.login), "login_url")?,
            logout: pick(&self.logout_url, base.as_ref().map(|b| &b.logout), "logout_url")?,
            auth_ws: pick(&self.auth_ws_url, base.as_ref().map(|b| &b.auth_ws), "auth_ws_url")?,
            direct_ws: self
                .direct_ws_url
                .clone()
                .or_else(|| base.as_ref().map(|b| b.direct_ws.clone()))
                .unwrap_or_default(),
        })
    }

    /// The configured service version.
    pub fn service_version(&self) -> Result<ServiceVersion, String> {
        ServiceVersion::ALL
            .into_iter()
            .find(|v| v.as_str() == self.version)
            .ok_or_else(|| format!("version {:?} is not one of v2_1, v3_4, v4_1, v4_2", self.version))
    }

    /// Cross-field checks that need no files.
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(e) = self.service_version() {
            problems.push(e);
        }
        match self.endpoints() {
            Err(e) => problems.push(e),
            Ok(ep) => {
                for (what, url) in [("login_url", &ep.login), ("logout_url", &ep.logout), ("auth_ws_url", &ep.auth_ws)]
                {
                    match url::Url::parse(url) {
                        Ok(u) if matches!(u.scheme(), "https" | "http") => {}
                        _ => problems.push(format!("{what} {url:?} is not an http(s) URL")),
                    }
                }
                // The SOAP channel carries the user's identity: plain HTTP only by opt-in.
                // Every preset is a real CAAIS/JIP environment: all count as production here.
                let production = self.preset.is_some();
                for (what, url) in [("auth_ws_url", &ep.auth_ws), ("direct_ws_url", &ep.direct_ws)] {
                    if !url.is_empty() {
                        problems.extend(crate::config::dangerous::plain_http_problem(
                            what,
                            url,
                            self.dangerous.allow_plain_http,
                            production,
                        ));
                    }
                }
            }
        }
        if self.login_mode == LoginMode::Direct {
            if self.service_version().ok() == Some(ServiceVersion::V2_1) {
                problems.push(
                    "login_mode = \"direct\" needs version v3_4 or later (direct v1 is not supported)".to_owned(),
                );
            }
            if self.endpoints().is_ok_and(|e| e.direct_ws.is_empty()) {
                problems.push("login_mode = \"direct\" needs direct_ws_url (or a preset)".to_owned());
            }
        }
        if self.secondary_client_cert.is_some() != self.secondary_client_key.is_some() {
            problems.push("secondary_client_cert and secondary_client_key go together".to_owned());
        }
        if self.direct_namespace.parse::<soap::DirectNamespace>().is_err() {
            problems.push(format!("direct_namespace {:?} is not atsUser/atsSzr or atsUser", self.direct_namespace));
        }
        if self.ats_id.trim().is_empty() {
            problems.push("ats_id is empty".to_owned());
        }
        problems
    }
}
