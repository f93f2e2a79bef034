//! The gateway: compiled configuration plus the request pipeline.
//!
//! ```text
//! client ─► listen (TLS, HTTP/1.1 + HTTP/2, limits)
//!        ─► handler::handle
//!             1. RequestInfo        request id, client ip (trusted proxies only), language
//!             2. CanonicalPath      normalize once; everything below uses this result
//!             3. own endpoints      /.aisgate/* (login, callback, logout, jwks) — axum router
//!             4. route              host + path prefix → app (else 404)
//!             5. strip identity     every X-Auth-* variant and mapped header name, and every
//!                                   `_`/case spelling of forwarding/proxy headers (forwarding.rs)
//!             5a. API paths         `auth = "bearer" | "saml-header"` (crate::api, api_request.rs):
//!                                   Authorization header → Identity → authorization hook →
//!                                   identity headers → 12; never a redirect
//!             6. logout paths       app logout URLs → gateway logout
//!             7. public paths       forward without identity
//!             8. session            authenticated cookie → store (forged ids never looked up)
//!             9. unauthenticated    navigation → login redirect, else 401
//!            10. authorize          first matching [[app.rule]]
//!            11. identity headers   contract + optional signed JWT
//!            12. upstream           hop-by-hop, X-Forwarded-*, streaming, WebSocket
//! ```

mod api_request;
mod cookies;
mod endpoints;
pub mod explain;
mod forwarding;
mod handler;
mod logout_return;
mod loop_guard;
mod own_body;
pub mod rate_limit;
pub mod request;
mod rescue;
pub mod route;
mod slo;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ipnet::IpNet;

use crate::clock::Clock;
use crate::config::{Config, ConfigError, ProviderConfig, StoreKind};
use crate::identity::headers::IdentityNamespace;
use crate::identity::token::IdentityTokenSigner;
use crate::ops::metrics::Metrics;
use crate::provider::Provider;
use crate::session::keyring::Keyring;
use crate::session::memory::MemoryStore;
use crate::session::SessionStore;
use crate::upstream::UpstreamClient;

pub use handler::handle;
pub use request::ConnInfo;

pub use crate::http::RESERVED_PREFIX;

/// The signed identity token settings, compiled.
pub struct TokenIssuer {
    /// Signing key.
    pub signer: IdentityTokenSigner,
    /// Older keys still published in the JWKS.
    pub previous: Vec<IdentityTokenSigner>,
    /// Lifetime of each token, seconds.
    pub lifetime_secs: u64,
}

/// The running gateway: everything the request path needs, built once from [`Config`].
pub struct Gateway {
    /// Public base URL without trailing slash.
    pub public_base_url: String,
    /// Apps in config order.
    pub apps: Vec<route::App>,
    /// Providers in config order.
    pub providers: Vec<Arc<dyn Provider>>,
    /// Session store.
    pub store: Arc<dyn SessionStore>,
    /// The clock of every expiry decision (a test clock in tests, see [`Clock`]).
    pub clock: Clock,
    /// Cookie keys.
    pub keyring: Keyring,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Identity token issuer.
    pub tokens: Option<TokenIssuer>,
    /// Upstream client.
    pub upstream: UpstreamClient,
    /// The subject authorizer (`[authorizer]`), if configured.
    pub authorizer: Option<crate::api::authorize::Authorizer>,
    /// Client headers removed before forwarding.
    pub namespace: IdentityNamespace,
    /// Trusted proxies.
    pub trusted_proxies: Vec<IpNet>,
    /// Session cookie name.
    pub cookie_name: String,
    /// Pre-login cookie name.
    pub login_cookie_name: String,
    /// Login-loop counter cookie name (`<login_cookie_name>_count`).
    pub loop_cookie_name: String,
    /// Cookie binding an RP-initiated logout's `state` to the browser
    /// (`<login_cookie_name>_logout`).
    pub logout_cookie_name: String,
    /// Cookie carrying "log in with another account" through the IdP's logout
    /// (`<login_cookie_name>_switch`).
    pub switch_cookie_name: String,
    /// `Secure` on cookies.
    pub cookie_secure: bool,
    /// Absolute session timeout, seconds.
    pub absolute_timeout_secs: u64,
    /// Pending-login lifetime, seconds.
    pub login_ttl_secs: u64,
    /// Maximum request body, bytes.
    pub max_body_bytes: u64,
    /// Maximum request body of the own endpoints, bytes (see `own_body`).
    pub own_body_limit: usize,
    /// Write access-log lines.
    pub access_log: bool,
    /// Attempts at one-time-credential forms, per client address.
    pub direct_limiter: rate_limit::RateLimiter,
    /// Login starts, per client address (`server.login_starts_per_minute`).
    pub login_start_limiter: rate_limit::RateLimiter,
    /// Client connection metrics (open, refused, reaped).
    pub conn_metrics: crate::listen::conn::ConnMetrics,
    /// Returns from an IdP's logout: `[verified, unverified]` `state`.
    pub logout_returns: [crate::ops::metrics::CounterHandle; 2],
    /// Each app's "home page" link target (its path prefix), by app index, shared by pages.
    app_homes: Vec<Arc<str>>,
    /// The public base URL's host and the link to its first app, for pages on a host that
    /// has no app (issue 14 item 13).
    base_home: Option<(String, Arc<str>)>,
    endpoints: OnceLock<axum::Router>,
}

/// Reads environment variables; a trait object so tests never mutate the process environment.
pub type EnvSource = dyn Fn(&str) -> Option<String> + Send + Sync;

/// The process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl Gateway {
    /// Builds the runtime from a checked config: loads keys and certificates, compiles apps,
    /// starts providers. Errors name the config location they stem from.
    pub fn build(
        config: &Config,
        main_file: &std::path::Path,
        env: &EnvSource,
    ) -> Result<Arc<Gateway>, Vec<ConfigError>> {
        Gateway::build_with_clock(config, main_file, env, Clock::system())
    }

    /// [`Gateway::build`] with the clock the gateway, its store and providers read time from
    /// (tests pass [`Clock::test`] and move it forward instead of sleeping).
    pub fn build_with_clock(
        config: &Config,
        main_file: &std::path::Path,
        env: &EnvSource,
        clock: Clock,
    ) -> Result<Arc<Gateway>, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let main_loc = crate::config::SourceLoc { file: main_file.into(), line: 1, column: 1 };
        let keyring = Keyring::load(&config.session.keys, env)
            .map_err(|e| errors.push(ConfigError::at(&main_loc, format!("[session] {e}"))))
            .ok();
        let public_base_url = config.server.public_base_url.trim_end_matches('/').to_owned();
        let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
        for p in &config.provider {
            let built: Result<Arc<dyn Provider>, String> = match &p.value {
                ProviderConfig::Kaas(kaas) => {
                    crate::provider::kaas::KaasProvider::build(kaas).map(|k| Arc::new(k) as _)
                }
                ProviderConfig::Oidc(oidc) => crate::provider::oidc::OidcProvider::build(oidc, env)
                    .map(|o| Arc::new(o.with_clock(clock.clone())) as _),
                ProviderConfig::Saml(saml) => crate::provider::saml::SamlProvider::build(saml, &public_base_url)
                    .map(|s| Arc::new(s.with_clock(clock.clone())) as _),
            };
            match built {
                Ok(provider) => providers.push(provider),
                Err(e) => errors.push(ConfigError::at(&p.loc, format!("provider {:?}: {e}", p.name()))),
            }
        }
        if !errors.is_empty() {
            // Apps naming a provider that failed to build would only repeat the error.
            return Err(errors);
        }
        let upstream = UpstreamClient::new(
            Duration::from_secs(config.server.upstream_connect_timeout_secs),
            Duration::from_secs(config.server.upstream_timeout_secs),
        );
        let provider_index = |name: &str| providers.iter().position(|p| p.name() == name);
        let mut apps = Vec::new();
        for (index, a) in config.app.iter().enumerate() {
            let compiled = route::App::compile(index, a, provider_index, &upstream).and_then(|mut app| {
                app.api = crate::api::ApiApp::compile(a, &providers, &clock)?;
                Ok(app)
            });
            match compiled {
                Ok(app) => apps.push(app),
                Err(e) => errors.push(ConfigError::at(&a.loc, format!("app {:?}: {e}", a.name))),
            }
        }
        let tokens = match &config.identity_token {
            None => None,
            Some(t) => match build_token_issuer(t) {
                Ok(issuer) => Some(issuer),
                Err(e) => {
                    errors.push(ConfigError::at(&main_loc, format!("[identity_token] {e}")));
                    None
                }
            },
        };
        let (Some(keyring), true) = (keyring, errors.is_empty()) else {
            return Err(errors);
        };
        // Log labels of users and sessions: keyed by the session key (issue 15 item 12).
        crate::identity::label::set_key(keyring.log_label_key());
        // The store keeps pending logins as long as the slowest provider needs; each login's
        // own provider limit is enforced at the callback (`Gateway::login_ttl_for`).
        let longest_login = providers
            .iter()
            .filter_map(|p| p.login_profile().pending_login_ttl)
            .fold(config.session.login_ttl_secs, u64::max);
        let store: Arc<dyn SessionStore> = match config.session.store {
            StoreKind::Memory => Arc::new(MemoryStore::new(
                config.session.max_sessions,
                Duration::from_secs(config.session.idle_timeout_secs),
                Duration::from_secs(longest_login),
                clock.clone(),
            )),
            StoreKind::Redis => {
                let opts =
                    crate::session::redis::RedisStoreOptions::of(&config.session, longest_login, apps.len(), &clock);
                match crate::session::redis::RedisStore::configured(&config.session, keyring.record_keys(), opts, env) {
                    Ok(store) => Arc::new(store),
                    Err(e) => return Err(vec![ConfigError::at(&main_loc, e.to_string())]),
                }
            }
        };
        let app_names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
        let provider_names: Vec<&str> = providers.iter().map(|p| p.name()).collect();
        let mut metrics = Metrics::new(&app_names, &provider_names);
        for background in providers.iter().filter_map(|p| p.background()) {
            background.register_metrics(&mut metrics);
        }
        let logout_returns = ["verified", "unverified"].map(|result| {
            metrics.register_counter(
                "aisgate_logout_return_total",
                "Browsers returning from an IdP's logout, by whether the returned state was this browser's (unverified: missing, wrong or reused; the page is the same).",
                &[("result", result)],
            )
        });
        let conn_metrics = crate::listen::conn::ConnMetrics::register(&mut metrics);
        let authorizer = match &config.authorizer {
            None => None,
            Some(cfg) => match crate::api::authorize::Authorizer::build(cfg, &mut metrics, clock.clone()) {
                Ok(a) => Some(a),
                Err(e) => return Err(vec![ConfigError::at(&main_loc, format!("[authorizer] {e}"))]),
            },
        };
        // CPU-heavy login work runs off the I/O workers, bounded (issue 15 item 1; `cpu`).
        let workers = config.server.login_workers.unwrap_or_else(crate::cpu::default_workers);
        let queue = config.server.login_queue.unwrap_or_else(|| crate::cpu::default_queue(workers));
        crate::cpu::configure(workers, queue).register_metrics(&mut metrics);
        let own_body_limit = own_body::own_body_limit(providers.iter().map(|p| p.as_ref()));
        let metrics = Arc::new(metrics);
        let mut extra_names: Vec<String> = Vec::new();
        for app in &apps {
            extra_names.extend(app.headers.header_names().map(|n| n.as_str().to_owned()));
        }
        let namespace = IdentityNamespace::new(extra_names.iter().map(String::as_str));
        let app_homes: Vec<Arc<str>> = apps.iter().map(|a| Arc::from(a.path_prefix.as_str())).collect();
        let base_home = base_home(&public_base_url, &apps);
        let gateway = Arc::new(Gateway {
            public_base_url,
            apps,
            providers,
            store,
            clock,
            keyring,
            metrics,
            tokens,
            upstream,
            authorizer,
            namespace,
            trusted_proxies: config.server.trusted_proxies.clone(),
            cookie_name: config.session.cookie_name(),
            login_cookie_name: config.session.login_cookie_name(),
            loop_cookie_name: format!("{}_count", config.session.login_cookie_name()),
            logout_cookie_name: format!("{}_logout", config.session.login_cookie_name()),
            switch_cookie_name: format!("{}_switch", config.session.login_cookie_name()),
            cookie_secure: config.session.cookie_secure,
            absolute_timeout_secs: config.session.absolute_timeout_secs,
            login_ttl_secs: config.session.login_ttl_secs,
            max_body_bytes: config.server.max_body_bytes,
            own_body_limit,
            access_log: config.log.access_log,
            // One-time credentials: 10 attempts per client per 5 minutes is plenty for a human.
            direct_limiter: rate_limit::RateLimiter::new(10, Duration::from_secs(300), 100_000),
            login_start_limiter: rate_limit::RateLimiter::new(
                config.server.login_starts_per_minute,
                Duration::from_secs(60),
                100_000,
            ),
            logout_returns,
            conn_metrics,
            app_homes,
            base_home,
            endpoints: OnceLock::new(),
        });
        let _ = gateway.endpoints.set(endpoints::router(gateway.clone()));
        Ok(gateway)
    }

    /// Looks up a provider by name.
    pub fn provider(&self, name: &str) -> Option<(usize, &Arc<dyn Provider>)> {
        self.providers.iter().enumerate().find(|(_, p)| p.name() == name)
    }

    /// Absolute URL of a gateway endpoint path (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.public_base_url)
    }

    /// The callback URL of a provider, as registered at the IdP.
    pub fn login_context(&self, provider: &str) -> crate::provider::LoginContext {
        crate::provider::LoginContext {
            callback_url: self.url(&format!("{RESERVED_PREFIX}callback/{provider}")),
            logged_out_url: self.url(&format!("{RESERVED_PREFIX}logged-out")),
            direct_form_url: self.url(&format!("{RESERVED_PREFIX}direct/{provider}")),
        }
    }

    /// How long a login started at `provider` may take, seconds: `[session] login_ttl_secs`,
    /// or longer where the provider needs it (NIA queueing).
    pub fn login_ttl_for(&self, provider: &dyn Provider) -> u64 {
        provider.login_profile().pending_login_ttl.map_or(self.login_ttl_secs, |ttl| ttl.max(self.login_ttl_secs))
    }

    /// Where the "home page" link of a page served on `host` leads: the first app answering
    /// for `host` (its path prefix); on a host without apps, the first app of the public base
    /// URL's host when that is another host; else `None` — no link, rather than one that leads
    /// to the same 404 (issue 14 item 13).
    pub fn home_for_host(&self, host: &str) -> Option<Arc<str>> {
        let on_host = |app: &route::App| app.hosts.is_empty() || app.hosts.iter().any(|h| h.eq_ignore_ascii_case(host));
        if let Some(app) = self.apps.iter().find(|a| on_host(a)) {
            return self.app_homes.get(app.index).cloned();
        }
        match &self.base_home {
            Some((base_host, link)) if !base_host.eq_ignore_ascii_case(host) => Some(link.clone()),
            _ => None,
        }
    }

    /// The "home page" link of pages of `app`: its path prefix.
    pub fn home_for_app(&self, app: &route::App) -> Option<Arc<str>> {
        self.app_homes.get(app.index).cloned()
    }

    /// Readiness of every provider, for `/readyz`.
    pub fn readiness(&self) -> Vec<(String, crate::provider::Readiness)> {
        self.providers.iter().map(|p| (p.name().to_owned(), p.readiness())).collect()
    }

    /// The JWKS document for upstreams verifying identity tokens.
    pub fn jwks(&self) -> serde_json::Value {
        match &self.tokens {
            None => serde_json::json!({ "keys": [] }),
            Some(t) => {
                let all: Vec<&IdentityTokenSigner> = std::iter::once(&t.signer).chain(t.previous.iter()).collect();
                crate::identity::token::jwks(&all)
            }
        }
    }

    fn endpoints(&self) -> Option<axum::Router> {
        self.endpoints.get().cloned()
    }
}

/// The public base URL's host and the absolute link to its first app, if an app answers
/// there (a base URL that only serves `/.aisgate/` endpoints is no home page).
fn base_home(public_base_url: &str, apps: &[route::App]) -> Option<(String, Arc<str>)> {
    let base = url::Url::parse(public_base_url).ok()?;
    let host = base.host_str()?.to_ascii_lowercase();
    let app = apps.iter().find(|a| a.hosts.is_empty() || a.hosts.contains(&host))?;
    let origin = base.origin().ascii_serialization();
    Some((host, Arc::from(format!("{origin}{}", app.path_prefix).as_str())))
}

fn build_token_issuer(cfg: &crate::config::IdentityTokenConfig) -> Result<TokenIssuer, String> {
    let load = |path: &std::path::Path, algorithm| {
        let pem = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        IdentityTokenSigner::from_pkcs8_pem(&pem, algorithm).map_err(|e| format!("{}: {e}", path.display()))
    };
    let signer = match &cfg.key_file {
        Some(path) => load(path, cfg.algorithm)?,
        None => IdentityTokenSigner::generate(cfg.algorithm).map_err(|e| e.to_string())?,
    };
    let previous = cfg.published_keys.iter().map(|k| load(&k.file, k.algorithm)).collect::<Result<_, _>>()?;
    Ok(TokenIssuer { signer, previous, lifetime_secs: cfg.lifetime_secs })
}
