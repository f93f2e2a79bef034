//! Configuration: the TOML schema, field by field.
//!
//! Every table uses `deny_unknown_fields`, so a typo is an error with a file and line rather
//! than a silently ignored security setting. Secrets (session keys, private keys) are read
//! from files or environment variables named here, never required inline. Loading (files,
//! includes, spans) lives in `load.rs`; cross-field validation in `check.rs`.

mod check;
pub mod dangerous;
pub mod hosts;
mod load;
mod warnings;

use std::net::SocketAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;

pub use crate::http::path_forms::PathCase;
use crate::identity::headers::HeaderMappingConfig;
use crate::identity::token::TokenAlgorithm;
use crate::identity::Loa;
use crate::provider::kaas::KaasProviderConfig;
use crate::provider::oidc::OidcProviderConfig;
use crate::provider::saml::SamlProviderConfig;

pub use check::Issue;
pub use load::{load, ConfigError, KeyLocs, Located, SourceLoc};
pub use warnings::{rule_warnings, warnings};

/// The whole configuration after includes are merged.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Glob patterns of further files holding `[[app]]` and `[[provider]]` tables, relative
    /// to the main file.
    #[serde(default)]
    pub include: Vec<String>,
    /// Public listener(s).
    pub server: ServerConfig,
    /// Ops listener (health, readiness, metrics).
    #[serde(default)]
    pub ops: OpsConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// Audit trail (off unless a sink is named).
    #[serde(default)]
    pub audit: crate::audit::AuditConfig,
    /// Sessions.
    pub session: SessionConfig,
    /// Admin API on the ops listener (off unless `token_file` is set).
    #[serde(default)]
    pub admin: AdminConfig,
    /// Signed identity token for upstreams.
    #[serde(default)]
    pub identity_token: Option<IdentityTokenConfig>,
    /// Identity providers.
    #[serde(default)]
    pub provider: Vec<Located<ProviderConfig>>,
    /// Protected upstream apps.
    #[serde(default)]
    pub app: Vec<Located<AppConfig>>,
    /// Account links JIP/KAAS ↔ CAAIS (`[links]`); needed by apps with `account_link`.
    #[serde(default)]
    pub links: Option<crate::links::LinksConfig>,
    /// The subject authorizer (CRŽP role + IČO check) apps with `[app.authorize]` ask.
    #[serde(default)]
    pub authorizer: Option<crate::api::authorize::config::AuthorizerConfig>,
    /// Where the main file's keys are written, for errors found after parsing.
    #[serde(skip)]
    pub locs: KeyLocs,
}

/// `[server]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Addresses to listen on, e.g. `["0.0.0.0:8443"]`.
    pub listen: Vec<SocketAddr>,
    /// Public base URL users see, e.g. `https://portal.example.cz`. Used for IdP callback URLs.
    pub public_base_url: String,
    /// TLS termination; without it the listener speaks plain HTTP (behind a TLS proxy).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Peers whose `X-Forwarded-*` and `X-Request-Id` headers are trusted. Default: nobody.
    #[serde(default)]
    pub trusted_proxies: Vec<IpNet>,
    /// Maximum size of the request head (line + headers), bytes.
    #[serde(default = "defaults::max_header_bytes")]
    pub max_header_bytes: usize,
    /// Maximum request body size, bytes (streamed, never buffered).
    #[serde(default = "defaults::max_body_bytes")]
    pub max_body_bytes: u64,
    /// Largest `application/x-www-form-urlencoded` body of a same-origin form POST kept across
    /// the login it triggered (sent after the session expired) and replayed after it, bytes;
    /// 0 disables. Larger bodies are not kept (the user gets the usual login page).
    #[serde(default = "defaults::preserve_post_max_bytes")]
    pub preserve_post_max_bytes: usize,
    /// Time allowed for a client to send the request head, seconds.
    #[serde(default = "defaults::header_read_timeout")]
    pub header_read_timeout_secs: u64,
    /// A client connection with no request in flight for this long is closed, seconds
    /// (HTTP/1 keep-alive and HTTP/2).
    #[serde(default = "defaults::idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// Interval of HTTP/2 keep-alive PINGs to clients, seconds; 0 disables them.
    #[serde(default = "defaults::http2_keepalive_interval")]
    pub http2_keepalive_interval_secs: u64,
    /// Time an HTTP/2 PING may go unanswered before the connection is closed, seconds.
    #[serde(default = "defaults::http2_keepalive_timeout")]
    pub http2_keepalive_timeout_secs: u64,
    /// Open client connections allowed per process (upgraded ones included); the excess is
    /// closed right after accept and counted in `aisgate_connections_refused_total`.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// Time allowed to connect to an upstream, seconds.
    #[serde(default = "defaults::upstream_connect_timeout")]
    pub upstream_connect_timeout_secs: u64,
    /// Time allowed for an upstream to start its response, seconds (then 504).
    #[serde(default = "defaults::upstream_timeout")]
    pub upstream_timeout_secs: u64,
    /// On SIGTERM, time allowed for in-flight requests to finish, seconds.
    #[serde(default = "defaults::shutdown_grace")]
    pub shutdown_grace_secs: u64,
    /// Logins a client address may start per minute (IPv6: per /64); beyond, 429. Each start
    /// stores a pending login, so this keeps one address from filling the store.
    #[serde(default = "defaults::login_starts_per_minute")]
    pub login_starts_per_minute: u32,
    /// CPU-heavy login messages (SAML Responses, big JWTs and SOAP bodies) processed at once,
    /// off the I/O workers. Default: the number of cores.
    #[serde(default)]
    pub login_workers: Option<usize>,
    /// Such messages allowed to wait for a worker; beyond, 503 with `Retry-After`. Default:
    /// 32 per worker.
    #[serde(default)]
    pub login_queue: Option<usize>,
}

/// `[server.tls]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// `[ops]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsConfig {
    /// Listener for `/healthz`, `/readyz`, `/metrics`. Keep it off the public network.
    #[serde(default = "defaults::ops_listen")]
    pub listen: SocketAddr,
}

impl Default for OpsConfig {
    fn default() -> Self {
        OpsConfig { listen: defaults::ops_listen() }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// `[log]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `human` or `json`.
    #[serde(default)]
    pub format: LogFormat,
    /// tracing filter, e.g. `info` or `aisgate=debug`. `RUST_LOG` overrides it.
    #[serde(default = "defaults::log_level")]
    pub level: String,
    /// One line per proxied request (method, canonical path without query, status, latency).
    #[serde(default = "defaults::yes")]
    pub access_log: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: LogFormat::Human, level: defaults::log_level(), access_log: true }
    }
}

/// Where the session store lives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// In-process, bounded, with TTL eviction. Sessions die with the process.
    #[default]
    Memory,
    /// Shared by every instance on one Redis (`[session.redis]`): sessions survive restarts
    /// and any instance serves any request.
    Redis,
}

/// `[session.redis]`: where the shared store lives (with `store = "redis"`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// One server: `redis://host:port/db` or `rediss://host:port/db` (TLS). No password in
    /// the URL: use `password_file` / `password_env`. Exactly one of `url`, `sentinels` and
    /// `cluster`.
    #[serde(default)]
    pub url: Option<String>,
    /// Redis Sentinel addresses (`host:port`); the master is the one they name `master_name`,
    /// followed across failovers.
    #[serde(default)]
    pub sentinels: Vec<String>,
    /// Redis Cluster: some of its nodes (`redis://host:port` or `rediss://host:port`, all alike),
    /// the others are learnt from them. The same CA, user and password for every node.
    /// Exactly one of `url`, `sentinels` and `cluster`.
    #[serde(default)]
    pub cluster: Vec<String>,
    /// The master name the Sentinels monitor (with `sentinels`).
    #[serde(default)]
    pub master_name: Option<String>,
    /// PEM CA bundle the server certificate must chain to (`rediss://` only); default: the
    /// system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// ACL user name (Redis 6+); default: the `default` user.
    #[serde(default)]
    pub username: Option<String>,
    /// File holding the password (one line).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Prefix of every key and channel name, so several gateways (or other software) can
    /// share one Redis.
    #[serde(default = "defaults::redis_key_prefix")]
    pub key_prefix: String,
    /// Connect and response timeout, milliseconds: how long a request waits for Redis
    /// before it gets the 503 page.
    #[serde(default = "defaults::redis_timeout_ms")]
    pub timeout_ms: u64,
    /// How long, milliseconds, an instance may serve a session it read from Redis without
    /// reading it again (0: every request reads Redis). At most 1000: a logout at another
    /// instance reaches this one by pub/sub at once, and by this bound at the latest.
    #[serde(default = "defaults::redis_local_cache_ms")]
    pub local_cache_ms: u64,
}

impl RedisConfig {
    /// Where the store is, as `aisgate check` reports it: the server, Sentinels or cluster
    /// nodes, TLS and the ACL user (never a password: URLs with one are refused).
    pub fn describe(&self) -> String {
        let tls = |urls: &[String]| urls.iter().any(|u| u.starts_with("rediss://"));
        let (target, tls) = if !self.cluster.is_empty() {
            (format!("redis cluster, seed nodes {}", self.cluster.join(", ")), tls(&self.cluster))
        } else if !self.sentinels.is_empty() {
            let master = self.master_name.as_deref().unwrap_or("?");
            (format!("redis via sentinels {} (master {master})", self.sentinels.join(", ")), self.ca_file.is_some())
        } else {
            let url = self.url.as_deref().unwrap_or("?");
            (format!("redis {url}"), url.starts_with("rediss://"))
        };
        let user = self.username.as_deref().map_or_else(String::new, |u| format!(", ACL user {u}"));
        let tls = if tls { ", TLS" } else { "" };
        format!("{target}{tls}{user}, key prefix {:?}", self.key_prefix)
    }
}

/// `[session]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// Session cookie name; default [`SessionConfig::cookie_name`]. Kept as given when set.
    #[serde(default, rename = "cookie_name")]
    pub configured_cookie_name: Option<String>,
    /// Pre-login (state) cookie name; default [`SessionConfig::login_cookie_name`].
    #[serde(default, rename = "login_cookie_name")]
    pub configured_login_cookie_name: Option<String>,
    /// `Secure` attribute on cookies. Turn off only for plain-HTTP development setups.
    #[serde(default = "defaults::yes")]
    pub cookie_secure: bool,
    /// Session keys: the first one signs new cookies, all of them verify (rotation).
    pub keys: Vec<SecretSource>,
    /// Idle timeout, seconds.
    #[serde(default = "defaults::idle_timeout")]
    pub idle_timeout_secs: u64,
    /// Absolute timeout, seconds.
    #[serde(default = "defaults::absolute_timeout")]
    pub absolute_timeout_secs: u64,
    /// Lifetime of a pending login (pre-login state), seconds. NIA queues logins: ≥ 3600 there.
    #[serde(default = "defaults::login_ttl")]
    pub login_ttl_secs: u64,
    /// Store backend.
    #[serde(default)]
    pub store: StoreKind,
    /// Maximum number of sessions held in memory (oldest/least used evicted first).
    #[serde(default = "defaults::max_sessions")]
    pub max_sessions: u64,
    /// The Redis store's connection (with `store = "redis"`).
    #[serde(default)]
    pub redis: Option<RedisConfig>,
    /// Sessions one user (provider + subject) may hold at once; a login beyond it ends that
    /// user's oldest session. 0: no limit.
    #[serde(default = "defaults::max_sessions_per_user")]
    pub max_sessions_per_user: usize,
}

/// `[admin]`: the admin API under `/admin/` on the ops listener.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// File holding the bearer token of the admin API (one line, at least 32 characters).
    /// Without it the admin API is off (every `/admin/` path is 404).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

/// The prefix browsers enforce `Secure`, `Path=/` and no `Domain` for (RFC 6265bis §4.1.3.2):
/// a sibling subdomain can then neither set nor shadow the cookie.
pub const HOST_PREFIX: &str = "__Host-";

impl SessionConfig {
    /// The session cookie's name: as configured, else `__Host-aisgate_session` with
    /// `cookie_secure` (the prefix needs `Secure`) and `aisgate_session` without.
    pub fn cookie_name(&self) -> String {
        self.configured_cookie_name.clone().unwrap_or_else(|| self.default_name("aisgate_session"))
    }

    /// The pre-login cookie's name (the loop counter and logout-state cookies append
    /// `_count` and `_logout`): as configured, else `__Host-aisgate_login` / `aisgate_login`.
    pub fn login_cookie_name(&self) -> String {
        self.configured_login_cookie_name.clone().unwrap_or_else(|| self.default_name("aisgate_login"))
    }

    fn default_name(&self, base: &str) -> String {
        if self.cookie_secure {
            format!("{HOST_PREFIX}{base}")
        } else {
            base.to_owned()
        }
    }
}

/// A secret read from a file or an environment variable (never inline).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    /// Short key id written into cookies so the right key is found during rotation.
    pub id: String,
    /// File with the secret (at least 32 bytes, raw or base64).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Environment variable with the secret (base64, at least 32 bytes decoded).
    #[serde(default)]
    pub env: Option<String>,
}

/// `[identity_token]`: the signing key for the per-request identity JWT.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityTokenConfig {
    /// `ES256` or `EdDSA`.
    pub algorithm: TokenAlgorithm,
    /// PKCS#8 PEM private key. Without it a key is generated at start (tokens then change
    /// key on every restart: fine for tests, not for production).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Keys published in the JWKS but not used for signing: the previous key after a rotation
    /// and the next key before one, each with its own algorithm.
    #[serde(default)]
    pub published_keys: Vec<PublishedKey>,
    /// Token lifetime, seconds.
    #[serde(default = "defaults::token_lifetime")]
    pub lifetime_secs: u64,
    /// Options that weaken security (`ephemeral_key`).
    #[serde(default)]
    pub dangerous: dangerous::IdentityTokenDangerous,
}

/// `[[identity_token.published_keys]]`: a verification-only key in the JWKS.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedKey {
    /// PKCS#8 PEM private key (only its public half is published).
    pub file: PathBuf,
    /// `ES256` or `EdDSA`.
    pub algorithm: TokenAlgorithm,
}

/// `[[provider]]`: a named identity provider; `kind` selects the protocol.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProviderConfig {
    /// JIP/KAAS and the CAAIS legacy API.
    Kaas(Box<KaasProviderConfig>),
    /// SAML 2.0 (NIA, CAAIS SAML, EnviIAM SAML).
    Saml(Box<SamlProviderConfig>),
    /// OpenID Connect (CAAIS, EnviIAM, generic).
    Oidc(Box<OidcProviderConfig>),
}

impl ProviderConfig {
    /// The provider's configured name.
    pub fn name(&self) -> &str {
        match self {
            ProviderConfig::Kaas(c) => &c.name,
            ProviderConfig::Oidc(c) => &c.name,
            ProviderConfig::Saml(c) => &c.name,
        }
    }

    /// The `kind` string.
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderConfig::Kaas(_) => "kaas",
            ProviderConfig::Saml(_) => "saml",
            ProviderConfig::Oidc(_) => "oidc",
        }
    }
}

/// What to do with a request that has no valid session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unauthenticated {
    /// Redirect browser navigations (GET/HEAD accepting HTML, not XHR) to login; 401 otherwise.
    #[default]
    Auto,
    /// Always 401 (API apps).
    Deny,
}

/// `[[app]] default`: the decision for paths no rule matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultAccess {
    /// Any authenticated user of the app (whose session's provider the app lists).
    #[default]
    Allow,
    /// Refused (403): only paths a rule covers are served to anyone.
    Deny,
}

/// `[[app]]`: one protected upstream.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// Unique name (metrics label, logs).
    pub name: String,
    /// Name shown to users on the gateway's pages ("you are logging in to …"); default: the
    /// request's host and the app's path prefix.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Host names this app answers for (any if empty).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Path prefix this app answers for (segment-wise; default `/`).
    #[serde(default = "defaults::root")]
    pub path_prefix: String,
    /// Upstream base URL, `http://` or `https://`; its path is prepended to the request path.
    pub upstream: String,
    /// Providers users may log in with (names of `[[provider]]`); a chooser is shown if several.
    pub providers: Vec<String>,
    /// Base URL of this app's login callbacks (`https://host[:port]`, no path), when the IdP
    /// has a registration for this app's own host; default `[server] public_base_url`. See
    /// README "Apps on several hosts".
    #[serde(default)]
    pub public_base_url: Option<String>,
    /// The provider of each host of the app (`{ "ais.cms.example" = "caais-cms", … }`): a
    /// request's host picks it, without a chooser, and the login's callbacks stay on that host
    /// (one IdP registration per host: CAAIS allows one domain per configuration). Every host
    /// of `hosts` needs an entry; every provider named must be in `providers`.
    #[serde(default)]
    pub providers_by_host: std::collections::BTreeMap<String, String>,
    /// Logins into this app on a host other than its callback host complete on the callback
    /// host (`[server] public_base_url`'s, or this app's `public_base_url`'s) and are then
    /// handed to the app's host: a single-use, 60-second handoff bound to the browser. Without
    /// it, `check` refuses an app whose host differs from its callback host.
    #[serde(default)]
    pub central_login: bool,
    /// Path prefixes that pass without a session (identity headers are still stripped).
    #[serde(default)]
    pub public_paths: Vec<String>,
    /// Unauthenticated behaviour.
    #[serde(default)]
    pub unauthenticated: Unauthenticated,
    /// Upstream paths that mean "log out": the gateway intercepts them and runs its logout.
    #[serde(default)]
    pub logout_paths: Vec<String>,
    /// PEM CA bundle that verifies an `https://` upstream (internal CAs); default: web PKI roots.
    #[serde(default)]
    pub upstream_ca_bundle: Option<PathBuf>,
    /// Send the client's `Host` upstream instead of the upstream URL's authority.
    #[serde(default)]
    pub preserve_host: bool,
    /// Forward the gateway's own cookies upstream (off: upstreams never see session ids).
    #[serde(default)]
    pub forward_gateway_cookies: bool,
    /// Send the IdP's access token upstream as `Authorization: Bearer` (refreshed before it
    /// expires). When on, a client's own `Authorization` header is never forwarded.
    #[serde(default)]
    pub upstream_bearer: bool,
    /// Identity headers.
    #[serde(default)]
    pub headers: HeaderMappingConfig,
    /// How the upstream compares paths: `sensitive` (default) or `insensitive` (IIS/.NET:
    /// rules and prefixes match case-insensitively, Windows path aliases are refused).
    #[serde(default)]
    pub path_case: PathCase,
    /// What a path that no `[[app.rule]]` matches gets: `allow` (any authenticated user of
    /// the app, the default) or `deny` (403).
    #[serde(default, rename = "default")]
    pub default_access: DefaultAccess,
    /// Authorization rules, checked in order; the first whose path prefix matches decides.
    #[serde(default)]
    pub rule: Vec<AccessRule>,
    /// SOAP operation authorization: body buffering, IČO extraction, exemptions.
    #[serde(default)]
    pub authorize: Option<crate::api::authorize::config::AppAuthorizeConfig>,
    /// Protocols a client may upgrade to through this app (`Upgrade` tokens, matched by name,
    /// any case). Default `["websocket"]`. Other upgrade requests are forwarded as plain
    /// requests without `Upgrade`; `h2c` is never allowed.
    #[serde(default = "defaults::upgrade_protocols")]
    pub upgrade_protocols: Vec<String>,
    /// Account links for CAAIS logins (`off`, `offer`, `require`): whether a CAAIS user
    /// without a link to a legacy JIP/KAAS account is asked to confirm one (see `[links]`).
    #[serde(default)]
    pub account_link: crate::links::AccountLink,
    /// How requests authenticate: `"session"` (the default: browser session and login
    /// redirects), `"bearer"`, `"saml-header"`, or a list of header methods (API mode: never a
    /// redirect, failures are 401 with `WWW-Authenticate`).
    #[serde(default)]
    pub auth: crate::api::config::AuthSetting,
    /// Path prefixes with their own `auth` (mixed apps), longest prefix first.
    #[serde(default)]
    pub api: Vec<crate::api::config::ApiPathConfig>,
    /// Bearer-token validation (with `auth` including `"bearer"`).
    #[serde(default)]
    pub bearer: Option<crate::api::config::BearerConfig>,
    /// Forwarded SAML Response validation (with `auth` including `"saml-header"`).
    #[serde(default)]
    pub saml_header: Option<crate::api::config::SamlHeaderConfig>,
    /// API failures as SOAP Faults: `true`, `false`, or unset (detected from the request's
    /// `Content-Type`: `text/xml` is SOAP 1.1, `application/soap+xml` SOAP 1.2).
    #[serde(default)]
    pub soap: Option<bool>,
    /// Forward the client's `Authorization` header upstream on API paths (default: removed,
    /// it carries the user's credential).
    #[serde(default)]
    pub keep_authorization: bool,
    /// Query keys that let a GET through API paths without authentication (service
    /// metadata: `?wsdl`, `?singleWsdl`, `?xsd=…`), compared exactly (case-insensitively);
    /// `[]` turns the pass-through off.
    #[serde(default = "crate::api::config::defaults::metadata_queries")]
    pub metadata_queries: Vec<String>,
    /// Options that weaken security; each one is logged at startup.
    #[serde(default)]
    pub dangerous: AppDangerous,
}

/// `[[app.rule]]`: an authorization rule for a path prefix.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    /// Path prefix (segment-wise) the rule applies to.
    #[serde(default = "defaults::root")]
    pub path_prefix: String,
    /// The user needs at least one of these roles (access role or `agenda:role`).
    #[serde(default)]
    pub any_role: Vec<String>,
    /// Minimum level of assurance.
    #[serde(default)]
    pub min_loa: Option<Loa>,
    /// Allowed organisation IČOs (any if empty).
    #[serde(default)]
    pub organisations: Vec<String>,
    /// Allowed providers (any of the app's if empty).
    #[serde(default)]
    pub providers: Vec<String>,
    /// SOAP operation (body element local name or SOAPAction last segment) the rule is for;
    /// such rules are checked per operation after the path rules (see `api::authorize`).
    #[serde(default)]
    pub operation: Option<String>,
    /// EnviIAM role requirements against `role_crzp`/`role_cizp` and `role_rpp`.
    #[serde(default)]
    pub require_roles: Option<crate::api::authorize::roles::RoleRequirement>,
}

/// `[app.dangerous]`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppDangerous {
    /// Skip verification of the upstream's TLS certificate.
    #[serde(default)]
    pub skip_upstream_tls_verify: bool,
}

mod defaults {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    pub fn max_header_bytes() -> usize {
        64 * 1024
    }
    pub fn max_body_bytes() -> u64 {
        1 << 30
    }
    pub fn preserve_post_max_bytes() -> usize {
        64 * 1024
    }
    pub fn header_read_timeout() -> u64 {
        30
    }
    pub fn idle_timeout_secs() -> u64 {
        60
    }
    pub fn http2_keepalive_interval() -> u64 {
        20
    }
    pub fn http2_keepalive_timeout() -> u64 {
        20
    }
    pub fn max_connections() -> usize {
        10_000
    }
    pub fn upstream_connect_timeout() -> u64 {
        5
    }
    pub fn upstream_timeout() -> u64 {
        60
    }
    pub fn shutdown_grace() -> u64 {
        30
    }
    pub fn login_starts_per_minute() -> u32 {
        60
    }
    pub fn ops_listen() -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9090)
    }
    pub fn log_level() -> String {
        "info".to_owned()
    }
    pub fn yes() -> bool {
        true
    }
    pub fn idle_timeout() -> u64 {
        30 * 60
    }
    pub fn absolute_timeout() -> u64 {
        12 * 3600
    }
    pub fn login_ttl() -> u64 {
        15 * 60
    }
    pub fn redis_key_prefix() -> String {
        "aisgate:".into()
    }
    pub fn redis_local_cache_ms() -> u64 {
        1000
    }
    pub fn redis_timeout_ms() -> u64 {
        1000
    }
    pub fn max_sessions() -> u64 {
        100_000
    }
    pub fn max_sessions_per_user() -> usize {
        20
    }
    pub fn token_lifetime() -> u64 {
        60
    }
    pub fn upgrade_protocols() -> Vec<String> {
        vec!["websocket".to_owned()]
    }
    pub fn root() -> String {
        "/".to_owned()
    }
}
