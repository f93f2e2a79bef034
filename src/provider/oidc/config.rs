//! `[[provider]] kind = "oidc"`: presets, issuer, client authentication, timeouts.

use std::path::PathBuf;

use serde::Deserialize;

use crate::identity::Loa;

/// Named environments (caais.md §0 and §5.1, enviam.md §5.1–5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OidcPreset {
    /// CAAIS integration environment (test-ext), Internet interface.
    CaaisOidcTest,
    /// CAAIS production, Internet interface.
    CaaisOidcProd,
    /// CAAIS production on the KIVS/CMS network (I.CA server certificates: set `ca_bundle`).
    CaaisOidcCms,
    /// EnviIAM test (`t-iam.env.cz`).
    EnviamOidcTest,
    /// EnviIAM production (`iam.env.cz`).
    EnviamOidcProd,
}

/// What a preset fills in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresetValues {
    /// Expected issuer, compared byte-exact; `None`: taken from discovery.
    pub issuer: Option<&'static str>,
    /// Discovery document URL.
    pub discovery_url: &'static str,
    /// Default client authentication.
    pub client_auth: ClientAuth,
    /// Default scopes.
    pub scopes: &'static [&'static str],
}

impl OidcPreset {
    /// The preset's values.
    pub fn values(self) -> PresetValues {
        const CAAIS_SCOPES: &[&str] = &["openid", "profile", "role", "subject"];
        const ENVIAM_SCOPES: &[&str] = &["openid", "profile", "email", "phone"];
        let caais = |issuer, discovery_url| PresetValues {
            issuer: Some(issuer),
            discovery_url,
            client_auth: ClientAuth::TlsClientAuth,
            scopes: CAAIS_SCOPES,
        };
        // EnviIAM's issuer is not documented (the example shows a developer host): it is
        // taken from the discovery document fetched over TLS from the preset URL.
        let enviam = |discovery_url| PresetValues {
            issuer: None,
            discovery_url,
            client_auth: ClientAuth::None,
            scopes: ENVIAM_SCOPES,
        };
        match self {
            // caais.md §0: the issuer has a trailing slash and is compared byte-exact.
            OidcPreset::CaaisOidcTest => caais(
                "https://rest-openidconnectapi.caais-test-ext.gov.cz/",
                "https://rest-openidconnectapi.caais-test-ext.gov.cz/.well-known/openid-configuration",
            ),
            OidcPreset::CaaisOidcProd => caais(
                "https://rest-openidconnectapi.caais.gov.cz/",
                "https://rest-openidconnectapi.caais.gov.cz/.well-known/openid-configuration",
            ),
            OidcPreset::CaaisOidcCms => caais(
                "https://rest-openidconnectapi.caais.cms2.cz/",
                "https://rest-openidconnectapi.caais.cms2.cz/.well-known/openid-configuration",
            ),
            // enviam.md §5.2: `{ENVIAM_SERVER}/oidc/.well-known/openid-configuration`.
            OidcPreset::EnviamOidcTest => enviam("https://t-iam.env.cz/cas/oidc/.well-known/openid-configuration"),
            OidcPreset::EnviamOidcProd => enviam("https://iam.env.cz/cas/oidc/.well-known/openid-configuration"),
        }
    }
}

/// How the gateway authenticates at the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// Mutual TLS with a registered client certificate (RFC 8705; CAAIS).
    TlsClientAuth,
    /// HTTP Basic with `client_id` and `client_secret`.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// Public client: PKCE only (EnviIAM).
    None,
}

impl ClientAuth {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::TlsClientAuth => "tls_client_auth",
            ClientAuth::ClientSecretBasic => "client_secret_basic",
            ClientAuth::ClientSecretPost => "client_secret_post",
            ClientAuth::None => "none",
        }
    }
}

/// How the IdP returns the authorization response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    /// Query string of a GET (the default; no `response_mode` parameter is sent).
    #[default]
    Query,
    /// An auto-submitted POST form (`response_mode=form_post`).
    FormPost,
}

/// A secret read from a file or an environment variable, never inline.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// File holding the secret (surrounding whitespace is trimmed).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Environment variable holding the secret.
    #[serde(default)]
    pub env: Option<String>,
}

impl SecretRef {
    /// Reads the secret.
    pub fn read(&self, env: &crate::gateway::EnvSource) -> Result<String, String> {
        let value = match (&self.file, &self.env) {
            (Some(path), None) => std::fs::read_to_string(path)
                .map_err(|e| format!("client_secret: cannot read {}: {e}", path.display()))?,
            (None, Some(var)) => {
                env(var).ok_or_else(|| format!("client_secret: environment variable {var} is not set"))?
            }
            _ => return Err("client_secret: set exactly one of file and env".to_owned()),
        };
        let value = value.trim().to_owned();
        if value.is_empty() {
            return Err("client_secret is empty".to_owned());
        }
        Ok(value)
    }
}

/// `[[provider.loa_client]]`: a client registration that guarantees `loa`. It uses the
/// provider's `client_auth`; credentials not given are the provider's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoaClientConfig {
    /// The LoA this registration guarantees.
    pub loa: Loa,
    /// Its client id.
    pub client_id: String,
    /// Its client secret (secret methods); default: the provider's.
    #[serde(default)]
    pub client_secret: Option<SecretRef>,
    /// Its client certificate (`tls_client_auth`); default: the provider's.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// Its client certificate's key; default: the provider's.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
}

/// `[[provider]] kind = "oidc"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcProviderConfig {
    /// Provider name.
    pub name: String,
    /// Label on the chooser page.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Environment preset.
    #[serde(default)]
    pub preset: Option<OidcPreset>,
    /// Expected issuer, compared byte-exact with discovery and every ID token. Required without a
    /// preset; discovery is then `<issuer>/.well-known/openid-configuration`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Discovery document URL (overrides the preset's and the one derived from `issuer`).
    #[serde(default)]
    pub discovery_url: Option<String>,
    /// The registered client id (CAAIS: the AIS shortcut).
    pub client_id: String,
    /// Token endpoint authentication; default from the preset, else `none`.
    #[serde(default)]
    pub client_auth: Option<ClientAuth>,
    /// Client secret for `client_secret_basic`/`client_secret_post`.
    #[serde(default)]
    pub client_secret: Option<SecretRef>,
    /// PEM client certificate for `tls_client_auth`.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of the client certificate.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// PEM CA bundle for the IdP's server certificates (default: public web PKI roots).
    #[serde(default)]
    pub ca_bundle: Option<PathBuf>,
    /// Scopes; must contain `openid`. Default from the preset, else `["openid", "profile"]`.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// `query` (default) or `form_post`.
    #[serde(default)]
    pub response_mode: ResponseMode,
    /// Call the userinfo endpoint after the token exchange and merge its claims (the ID token wins).
    #[serde(default)]
    pub userinfo: bool,
    /// Where API apps validate users' access tokens (`[app.bearer]`): EnviIAM's
    /// `{ENVIAM_SERVER}/oidc/profile`. Default: the discovery document's
    /// `userinfo_endpoint`. Called over the provider's back channel (its client certificate
    /// with `tls_client_auth`).
    #[serde(default)]
    pub profile_endpoint: Option<String>,
    /// Level of assurance this client registration guarantees (CAAIS sends none: one client per LoA).
    #[serde(default)]
    pub loa: Option<Loa>,
    /// Further client registrations, one per LoA (CAAIS registers a client per LoA): a route
    /// requiring a higher LoA than the session has logs in again with the matching one.
    #[serde(default)]
    pub loa_client: Vec<LoaClientConfig>,
    /// Where the IdP returns the browser after logout. Default: the gateway's logged-out page.
    #[serde(default)]
    pub post_logout_redirect_uri: Option<String>,
    /// Allowed clock difference for `exp`, `iat`, `nbf`, seconds.
    #[serde(default = "default_skew")]
    pub clock_skew_secs: u64,
    /// Interval between discovery and JWKS refreshes, seconds.
    #[serde(default = "default_refresh")]
    pub refresh_interval_secs: u64,
    /// Minimum time between two JWKS fetches caused by an unknown key, seconds.
    #[serde(default = "default_jwks_min")]
    pub jwks_min_refetch_secs: u64,
    /// Largest ID token accepted, bytes.
    #[serde(default = "default_max_token")]
    pub max_token_bytes: usize,
    /// TCP+TLS connect timeout, seconds.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Total timeout of one call to the IdP, seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Options that weaken security (`allow_plain_http`: discovery, JWKS, token, userinfo).
    #[serde(default)]
    pub dangerous: crate::config::dangerous::ProviderDangerous,
}

fn default_skew() -> u64 {
    60
}
fn default_refresh() -> u64 {
    300
}
fn default_jwks_min() -> u64 {
    30
}
fn default_max_token() -> usize {
    32 * 1024
}
fn default_connect_timeout() -> u64 {
    5
}
fn default_timeout() -> u64 {
    15
}

impl OidcProviderConfig {
    /// The expected issuer, if known before discovery.
    pub fn expected_issuer(&self) -> Option<String> {
        self.issuer.clone().or_else(|| self.preset.and_then(|p| p.values().issuer.map(str::to_owned)))
    }

    /// The discovery URL: explicit, else the preset's, else derived from `issuer` (OIDC
    /// Discovery §4: a trailing slash of the issuer is not doubled).
    pub fn discovery_url(&self) -> Result<String, String> {
        if let Some(url) = &self.discovery_url {
            return Ok(url.clone());
        }
        if let Some(preset) = self.preset {
            return Ok(preset.values().discovery_url.to_owned());
        }
        match &self.issuer {
            Some(issuer) => Ok(format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'))),
            None => Err("issuer is not set (give a preset or the issuer)".to_owned()),
        }
    }

    /// The effective client authentication.
    pub fn client_auth(&self) -> ClientAuth {
        self.client_auth.or_else(|| self.preset.map(|p| p.values().client_auth)).unwrap_or(ClientAuth::None)
    }

    /// The effective scopes.
    pub fn scopes(&self) -> Vec<String> {
        match (&self.scopes, self.preset) {
            (Some(s), _) => s.clone(),
            (None, Some(p)) => p.values().scopes.iter().map(|s| (*s).to_owned()).collect(),
            (None, None) => vec!["openid".to_owned(), "profile".to_owned()],
        }
    }

    /// Cross-field checks that need no files.
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let http_url = |what: &str, url: &str, problems: &mut Vec<String>| match url::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => {}
            _ => problems.push(format!("{what} {url:?} is not an http(s) URL")),
        };
        match self.discovery_url() {
            Ok(url) => {
                http_url("discovery_url", &url, &mut problems);
                // Presets are real CAAIS/EnviIAM environments: all count as production here.
                problems.extend(crate::config::dangerous::plain_http_problem(
                    "discovery_url",
                    &url,
                    self.dangerous.allow_plain_http,
                    self.preset.is_some(),
                ));
            }
            Err(e) => problems.push(e),
        }
        // The runtime takes token, JWKS and userinfo endpoints from discovery under this flag:
        // with a (production) preset it would weaken a real environment.
        if self.preset.is_some() && self.dangerous.allow_plain_http {
            problems.push(
                "dangerous.allow_plain_http is not allowed with a production preset (every OIDC preset is a real environment)"
                    .to_owned(),
            );
        }
        if let Some(issuer) = &self.issuer {
            http_url("issuer", issuer, &mut problems);
        }
        if let Some(uri) = &self.post_logout_redirect_uri {
            http_url("post_logout_redirect_uri", uri, &mut problems);
        }
        if let Some(uri) = &self.profile_endpoint {
            http_url("profile_endpoint", uri, &mut problems);
            if !crate::config::dangerous::endpoint_allowed(uri, self.dangerous.allow_plain_http) {
                problems.push(format!(
                    "profile_endpoint {uri:?} is plain http:// off loopback (set dangerous.allow_plain_http to allow)"
                ));
            }
        }
        if self.client_id.trim().is_empty() {
            problems.push("client_id is empty".to_owned());
        }
        if !self.scopes().iter().any(|s| s == "openid") {
            problems.push("scopes must contain \"openid\"".to_owned());
        }
        let auth = self.client_auth();
        let has_cert = self.client_cert.is_some() || self.client_key.is_some();
        match auth {
            ClientAuth::TlsClientAuth if self.client_cert.is_none() || self.client_key.is_none() => {
                problems.push("client_auth = \"tls_client_auth\" needs client_cert and client_key".to_owned())
            }
            ClientAuth::ClientSecretBasic | ClientAuth::ClientSecretPost if self.client_secret.is_none() => {
                problems.push(format!("client_auth = \"{}\" needs client_secret", auth.as_str()))
            }
            _ => {}
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            problems.push("client_cert and client_key go together".to_owned());
        }
        if has_cert && auth != ClientAuth::TlsClientAuth {
            problems.push(format!("client_cert is only used with tls_client_auth, not {}", auth.as_str()));
        }
        if let Some(secret) = &self.client_secret {
            if secret.file.is_some() == secret.env.is_some() {
                problems.push("client_secret: set exactly one of file and env".to_owned());
            }
            if !matches!(auth, ClientAuth::ClientSecretBasic | ClientAuth::ClientSecretPost) {
                problems.push(format!("client_secret is not used with client_auth = \"{}\"", auth.as_str()));
            }
        }
        let mut seen = Vec::new();
        for c in &self.loa_client {
            if c.client_id.trim().is_empty() {
                problems.push(format!("loa_client {}: client_id is empty", c.loa.as_str()));
            }
            if seen.contains(&c.loa) || self.loa == Some(c.loa) {
                problems.push(format!("loa_client {}: another client already has this LoA", c.loa.as_str()));
            }
            seen.push(c.loa);
            if c.client_cert.is_some() != c.client_key.is_some() {
                problems.push(format!("loa_client {}: client_cert and client_key go together", c.loa.as_str()));
            }
        }
        if self.clock_skew_secs > 600 {
            problems.push("clock_skew_secs is larger than 600".to_owned());
        }
        if self.max_token_bytes < 1024 {
            problems.push("max_token_bytes is smaller than 1024".to_owned());
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> OidcProviderConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn caais_presets_use_the_trailing_slash_issuer_and_mtls() {
        let cfg = parse("name = \"c\"\npreset = \"caais-oidc-cms\"\nclient_id = \"X\"\nclient_cert = \"c.pem\"\nclient_key = \"c.key\"");
        assert_eq!(cfg.expected_issuer().as_deref(), Some("https://rest-openidconnectapi.caais.cms2.cz/"));
        assert_eq!(
            cfg.discovery_url().unwrap(),
            "https://rest-openidconnectapi.caais.cms2.cz/.well-known/openid-configuration"
        );
        assert_eq!(cfg.client_auth(), ClientAuth::TlsClientAuth);
        assert_eq!(cfg.scopes(), ["openid", "profile", "role", "subject"]);
        assert!(cfg.check().is_empty(), "{:?}", cfg.check());
    }

    /// Issue 15 review (item 11): `dangerous.allow_plain_http` is documented "never with a
    /// production preset", and every OIDC preset counts as production. `check` refused only a
    /// configured `http://` discovery URL, so with a preset and the flag the runtime still took
    /// plain-http token, JWKS and userinfo endpoints from the discovery document.
    #[test]
    fn presets_refuse_allow_plain_http() {
        let cfg = parse(
            "name = \"c\"\npreset = \"caais-oidc-cms\"\nclient_id = \"X\"\nclient_cert = \"c.pem\"\nclient_key = \"c.key\"\n\
             dangerous.allow_plain_http = true",
        );
        let problems = cfg.check();
        assert!(problems.iter().any(|p| p.contains("allow_plain_http") && p.contains("production")), "{problems:?}");
    }

    #[test]
    fn a_generic_issuer_derives_discovery_without_doubling_the_slash() {
        let cfg = parse("name = \"g\"\nissuer = \"https://idp.example.cz/realm/\"\nclient_id = \"X\"");
        assert_eq!(cfg.discovery_url().unwrap(), "https://idp.example.cz/realm/.well-known/openid-configuration");
        assert_eq!(cfg.client_auth(), ClientAuth::None);
        assert!(cfg.check().is_empty());
    }

    #[test]
    fn loa_clients_must_have_distinct_loas_and_a_client_id() {
        let base = "name = \"c\"\npreset = \"caais-oidc-test\"\nclient_id = \"X\"\nclient_cert = \"c.pem\"\nclient_key = \"c.key\"\nloa = \"substantial\"\n";
        let ok = format!("{base}[[loa_client]]\nloa = \"high\"\nclient_id = \"X_HIGH\"\n");
        assert!(parse(&ok).check().is_empty(), "{:?}", parse(&ok).check());
        let same_as_main = format!("{base}[[loa_client]]\nloa = \"substantial\"\nclient_id = \"Y\"\n");
        assert!(parse(&same_as_main).check().join("\n").contains("already has this LoA"));
        let empty_id = format!("{base}[[loa_client]]\nloa = \"high\"\nclient_id = \" \"\n");
        assert!(parse(&empty_id).check().join("\n").contains("client_id is empty"));
    }

    #[test]
    fn inconsistent_client_authentication_is_reported() {
        let problems = |text: &str| parse(text).check().join("\n");
        assert!(problems("name = \"a\"\nclient_id = \"X\"").contains("issuer is not set"));
        assert!(problems("name = \"a\"\npreset = \"caais-oidc-test\"\nclient_id = \"X\"").contains("needs client_cert"));
        let basic =
            "name = \"a\"\npreset = \"enviam-oidc-test\"\nclient_id = \"X\"\nclient_auth = \"client_secret_basic\"";
        assert!(problems(basic).contains("needs client_secret"));
        let both = format!("{basic}\nclient_secret = {{ file = \"s\", env = \"S\" }}");
        assert!(problems(&both).contains("exactly one of file and env"));
        let no_openid = "name = \"a\"\npreset = \"enviam-oidc-test\"\nclient_id = \"X\"\nscopes = [\"profile\"]";
        assert!(problems(no_openid).contains("openid"));
        assert!(toml::from_str::<OidcProviderConfig>("name = \"a\"\nclient_id = \"X\"\nclient_secret = \"inline\"")
            .is_err());
    }
}
