//! `[[app]]` settings of API mode: how requests authenticate (`auth`), per-path overrides
//! (`[[app.api]]`), bearer-token validation (`[app.bearer]`), forwarded SAML Responses
//! (`[app.saml_header]`), SOAP faults and metadata pass-through.

use serde::Deserialize;

/// One way a request may authenticate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// The gateway's browser session (cookie), with login redirects: the default.
    Session,
    /// `Authorization: Bearer <access token>`, validated at the provider of `[app.bearer]`.
    Bearer,
    /// `Authorization: SAML <base64 SAMLResponse>`, validated like the ACS against
    /// `[app.saml_header]`.
    SamlHeader,
}

impl AuthMethod {
    /// The configuration spelling (also the `scheme` label of the API metrics).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Session => "session",
            AuthMethod::Bearer => "bearer",
            AuthMethod::SamlHeader => "saml-header",
        }
    }
}

/// `auth = "bearer"` or `auth = ["bearer", "saml-header"]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum AuthSetting {
    /// One method.
    One(AuthMethod),
    /// Several header methods, any of which a request may use.
    Many(Vec<AuthMethod>),
}

impl AuthSetting {
    /// The methods, in configuration order, without repeats.
    pub fn methods(&self) -> Vec<AuthMethod> {
        let mut out: Vec<AuthMethod> = Vec::new();
        let all = match self {
            AuthSetting::One(m) => std::slice::from_ref(m),
            AuthSetting::Many(list) => list.as_slice(),
        };
        for m in all {
            if !out.contains(m) {
                out.push(*m);
            }
        }
        out
    }
}

impl Default for AuthSetting {
    fn default() -> Self {
        AuthSetting::One(AuthMethod::Session)
    }
}

/// `[[app.api]]`: a path prefix of the app with its own `auth` (mixed apps: browser pages
/// under `/`, SOAP services under `/svc/`). The longest matching prefix decides.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiPathConfig {
    /// Path prefix (segment-wise, like `[[app.rule]]`).
    pub path_prefix: String,
    /// How requests under the prefix authenticate.
    pub auth: AuthSetting,
    /// SOAP faults for failures under the prefix: `true`, `false`, or unset (the app's
    /// `soap`).
    #[serde(default)]
    pub soap: Option<bool>,
}

/// `[app.bearer]`: how `Authorization: Bearer` tokens are validated.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BearerConfig {
    /// The `kind = "oidc"` provider that issued the tokens; its profile (userinfo) endpoint
    /// validates them, over its back channel (mTLS for CAAIS).
    pub provider: String,
    /// Calling applications allowed: a token whose `client_id` (or, without one, an `aud`
    /// value) is not listed is refused. Empty: any client of the provider.
    #[serde(default)]
    pub allowed_clients: Vec<String>,
    /// Longest time a validated token is trusted without asking the provider again, seconds
    /// (never beyond the token's own expiry). A revoked token keeps working this long.
    #[serde(default = "defaults::cache_ttl")]
    pub cache_ttl_secs: u64,
    /// Most validated tokens remembered.
    #[serde(default = "defaults::cache_entries")]
    pub cache_entries: u64,
    /// Longest token accepted, bytes (checked before anything else).
    #[serde(default = "defaults::max_token_bytes")]
    pub max_token_bytes: usize,
    /// A JWT access token whose signature (provider JWKS), issuer and time claims verify is
    /// accepted without calling the profile endpoint. Trade-off: a token revoked at the
    /// provider stays valid until it expires. Off by default.
    #[serde(default)]
    pub local_jwt: bool,
}

/// `[[app.saml_header.caller]]`: an application allowed to forward its SAML Responses here.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamlCallerConfig {
    /// The caller's SP entity ID: the `Audience` its Responses carry.
    pub entity_id: String,
    /// The caller's ACS URLs: the `Destination` and `Recipient` its Responses carry.
    pub acs_urls: Vec<String>,
}

/// `[app.saml_header]`: how `Authorization: SAML` headers are validated.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamlHeaderConfig {
    /// The `kind = "saml"` provider (IdP metadata, certificates, decryption keys, attribute
    /// mapping) whose Responses are accepted.
    pub provider: String,
    /// The calling applications whose Responses are accepted (audience and recipient).
    pub caller: Vec<SamlCallerConfig>,
    /// Longest header value accepted (base64 text), bytes: checked before decoding.
    #[serde(default = "defaults::max_saml_header_bytes")]
    pub max_header_bytes: usize,
    /// Most validated Responses remembered (each until its `NotOnOrAfter`).
    #[serde(default = "defaults::cache_entries")]
    pub cache_entries: u64,
    /// Clock difference tolerated on the Response's times, seconds. Small: EnviIAM's
    /// Responses are valid for about 15 s (enviam.md §5.4), the provider's login skew would
    /// stretch that many times over.
    #[serde(default = "defaults::saml_header_skew")]
    pub clock_skew_secs: u64,
}

pub(crate) mod defaults {
    pub fn cache_ttl() -> u64 {
        300
    }
    pub fn cache_entries() -> u64 {
        10_000
    }
    pub fn max_token_bytes() -> usize {
        8 * 1024
    }
    pub fn saml_header_skew() -> u64 {
        5
    }
    pub fn max_saml_header_bytes() -> usize {
        256 * 1024
    }
    pub fn metadata_queries() -> Vec<String> {
        ["wsdl", "singleWsdl", "xsd"].map(str::to_owned).to_vec()
    }
}

impl std::fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Cross-field checks of an app's API settings (`aisgate check` and startup), as messages
/// prefixed by the caller with the app's name and location.
pub(crate) fn check(
    app: &crate::config::AppConfig,
    providers: &[crate::config::Located<crate::config::ProviderConfig>],
) -> Vec<String> {
    use crate::config::ProviderConfig;
    let mut problems = Vec::new();
    let mut settings: Vec<(&str, &AuthSetting)> = vec![("auth", &app.auth)];
    settings.extend(app.api.iter().map(|p| (p.path_prefix.as_str(), &p.auth)));
    let mut bearer = false;
    let mut saml = false;
    for (what, setting) in &settings {
        let methods = setting.methods();
        if methods.is_empty() {
            problems.push(format!("{what}: auth lists no method"));
        }
        if methods.contains(&AuthMethod::Session) && methods.len() > 1 {
            problems.push(format!(
                "{what}: auth cannot mix \"session\" with header methods (use [[app.api]] paths for a mixed app)"
            ));
        }
        bearer |= methods.contains(&AuthMethod::Bearer);
        saml |= methods.contains(&AuthMethod::SamlHeader);
    }
    for path in &app.api {
        if let Err(e) = crate::http::canonical_path::CanonicalPath::parse(&path.path_prefix) {
            problems.push(format!("[[app.api]] path_prefix {:?}: {e}", path.path_prefix));
        } else if !crate::http::path_forms::under_prefix(&path.path_prefix, &app.path_prefix) {
            problems.push(format!("[[app.api]] path_prefix {:?} is outside the app's path_prefix", path.path_prefix));
        }
    }
    let kind_of = |name: &str| providers.iter().find(|p| p.name() == name).map(|p| &p.value);
    match (&app.bearer, bearer) {
        (None, true) => problems.push("auth includes \"bearer\" but there is no [app.bearer]".to_owned()),
        (Some(_), false) => problems.push("[app.bearer] is set but no auth includes \"bearer\"".to_owned()),
        (Some(b), true) => match kind_of(&b.provider) {
            Some(ProviderConfig::Oidc(_)) => {}
            Some(_) => problems.push(format!("[app.bearer] provider {:?} is not kind = \"oidc\"", b.provider)),
            None => problems.push(format!("[app.bearer] provider {:?} is not defined", b.provider)),
        },
        (None, false) => {}
    }
    match (&app.saml_header, saml) {
        (None, true) => problems.push("auth includes \"saml-header\" but there is no [app.saml_header]".to_owned()),
        (Some(_), false) => problems.push("[app.saml_header] is set but no auth includes \"saml-header\"".to_owned()),
        (Some(s), true) => {
            match kind_of(&s.provider) {
                Some(ProviderConfig::Saml(_)) => {}
                Some(_) => problems.push(format!("[app.saml_header] provider {:?} is not kind = \"saml\"", s.provider)),
                None => problems.push(format!("[app.saml_header] provider {:?} is not defined", s.provider)),
            }
            if s.caller.is_empty() {
                problems.push("[app.saml_header] needs at least one [[app.saml_header.caller]]".to_owned());
            }
            for c in &s.caller {
                if c.entity_id.trim().is_empty() || c.acs_urls.is_empty() {
                    problems.push("[[app.saml_header.caller]] needs entity_id and acs_urls".to_owned());
                }
                for url in &c.acs_urls {
                    if url::Url::parse(url).is_err() {
                        problems.push(format!("[[app.saml_header.caller]] acs_urls entry {url:?} is not a URL"));
                    }
                }
            }
        }
        (None, false) => {}
    }
    if app.upstream_bearer && (bearer || saml) {
        problems.push(
            "upstream_bearer cannot be combined with API auth (the Authorization header is the client's)".to_owned(),
        );
    }
    problems
}
