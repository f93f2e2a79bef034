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
mod handoff;
mod link_flow;
mod logout_return;
mod loop_guard;
mod own_body;
mod preserve_post;
pub mod rate_limit;
pub mod request;
mod rescue;
pub mod route;
mod slo;

use std::sync::Arc;
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
use crate::session::shared::SharedState;
use crate::session::SessionStore;
use crate::upstream::UpstreamClient;

pub use handler::handle;
pub use request::ConnInfo;

pub use crate::http::RESERVED_PREFIX;

/// The signed identity token settings, compiled.
pub struct TokenIssuer {
    /// Signing key (shared with the gateway a reload builds when it is an ephemeral one).
    pub signer: Arc<IdentityTokenSigner>,
    /// Older keys still published in the JWKS.
    pub previous: Vec<IdentityTokenSigner>,
    /// Lifetime of each token, seconds.
    pub lifetime_secs: u64,
}

/// The running gateway: everything the request path needs, built once from [`Config`].
pub struct Gateway {
    /// Account links JIP/KAAS ↔ CAAIS (`[links]`), when configured.
    pub links: Option<crate::links::Links>,
    /// `aisgate_app_logins_total{app,protocol}`.
    pub app_logins: crate::links::AppLogins,
    /// Public base URL without trailing slash.
    pub public_base_url: String,
    /// Apps in config order.
    pub apps: Vec<route::App>,
    /// Every base URL each provider (by name) receives callbacks at (`config::hosts`).
    pub provider_bases: std::collections::BTreeMap<String, Vec<String>>,
    /// Providers in config order.
    pub providers: Vec<Arc<dyn Provider>>,
    /// Session store.
    pub store: Arc<dyn SessionStore>,
    /// What instances share besides sessions (replay caches, attempt counters, refresh
    /// leases): the Redis store; `None` with the memory store (each instance keeps its own).
    pub shared: Option<Arc<dyn SharedState>>,
    /// The clock of every expiry decision (a test clock in tests, see [`Clock`]).
    pub clock: Clock,
    /// Cookie keys.
    pub keyring: Keyring,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The audit trail (`[audit]`): `gateway.audit.emit(Event::…)`, never blocking.
    pub audit: crate::audit::Audit,
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
    /// Largest form POST body kept across a login, bytes; 0: none (`preserve_post`).
    pub preserve_post_max_bytes: usize,
    /// Maximum request body of the own endpoints, bytes (see `own_body`).
    pub own_body_limit: usize,
    /// Write access-log lines.
    pub access_log: bool,
    /// Attempts at one-time-credential forms, per client address (carried over by a reload).
    pub direct_limiter: Arc<rate_limit::RateLimiter>,
    /// Login starts, per client address (`server.login_starts_per_minute`; carried over by a
    /// reload that keeps the limit).
    pub login_start_limiter: Arc<rate_limit::RateLimiter>,
    /// Which build of the gateway sessions' per-app caches (rendered headers, identity
    /// tokens) belong to: a reload's new gateway renders them afresh.
    pub session_caches: crate::session::CacheKey,
    /// The raw identity attributes a new session keeps: those the apps' header mappings
    /// read (see [`crate::session::kept`]).
    pub kept_attributes: crate::session::kept::KeptAttributes,
    /// The providers whose new sessions keep the login's upstream tokens: those an
    /// `upstream_bearer` app lists (see [`crate::session::kept`]).
    pub kept_tokens: crate::session::kept::KeptTokens,
    /// The settings the session store was built with: a reload may carry the store over only
    /// when they are unchanged.
    store_spec: StoreSpec,
    /// Client connection metrics (open, refused, reaped).
    pub conn_metrics: crate::listen::conn::ConnMetrics,
    /// The admin API's credential (`[admin] token_file`); `None`: the admin API is off.
    pub admin: Option<crate::admin::AdminAuth>,
    /// Apps in maintenance, as this instance enforces them ([`crate::admin::maintenance`]);
    /// carried over by a reload.
    pub maintenance: Arc<crate::admin::maintenance::Board>,
    /// Sessions one user may hold at once (`[session] max_sessions_per_user`; 0: no limit).
    pub max_sessions_per_user: usize,
    /// Returns from an IdP's logout: `[verified, unverified]` `state`.
    pub logout_returns: [crate::ops::metrics::CounterHandle; 2],
    /// Logins handed from the central login host to app hosts (`handoff`).
    handoffs: handoff::HandoffMetrics,
    /// Each provider's protocol (`kaas`, `saml2`, `oidc`), by provider index, for audit events
    /// of logins that have no identity yet.
    protocols: Vec<&'static str>,
    /// Each app's "home page" link target (its path prefix), by app index, shared by pages.
    app_homes: Vec<Arc<str>>,
    /// The public base URL's host and the link to its first app, for pages on a host that
    /// has no app (issue 14 item 13).
    base_home: Option<(String, Arc<str>)>,
    /// The own endpoints, without their state: the gateway is given per request, so the
    /// router holds no `Arc` of the gateway and a replaced gateway is freed (hot reload).
    endpoints: axum::Router<Arc<Gateway>>,
}

/// What a session store is built from. Two gateways with equal specs can share one store, so
/// a reload carries sessions, pending logins and the store's one-shot caches over.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoreSpec {
    kind: StoreKind,
    max_sessions: u64,
    idle_timeout_secs: u64,
    /// The longest pending-login lifetime of any provider.
    pending_login_secs: u64,
    /// `[session.redis]` as written (file paths and names; the password is not in it).
    redis: Option<String>,
    /// With Redis: records at rest are sealed with keys derived from the session keys; a
    /// keyed fingerprint of them (never logged).
    record_keys: Option<String>,
}

impl StoreSpec {
    /// The settings that differ between `self` (running) and `new`, for the refusal message.
    fn changes(&self, new: &StoreSpec) -> Vec<&'static str> {
        [
            (self.kind != new.kind, "store"),
            (self.max_sessions != new.max_sessions, "max_sessions"),
            (self.idle_timeout_secs != new.idle_timeout_secs, "idle_timeout_secs"),
            (
                self.pending_login_secs != new.pending_login_secs,
                "login_ttl_secs (or a provider's pending-login lifetime)",
            ),
            (self.redis != new.redis, "[session.redis]"),
            (self.record_keys != new.record_keys, "keys (the Redis store seals records with them)"),
        ]
        .into_iter()
        .filter_map(|(changed, name)| changed.then_some(name))
        .collect()
    }
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
        Gateway::build_inner(config, main_file, env, clock, None)
    }

    /// Builds the gateway that replaces `previous` (a hot reload, `crate::reload`): the same
    /// path as [`Gateway::build`], every file read again, but the state that must outlive
    /// a configuration is taken over from `previous` instead of starting empty — the session
    /// store (sessions, pending logins, the store's one-shot caches), the per-client rate
    /// limiters, the metrics' series and the clock. A changed session store setting cannot be
    /// applied this way (the memory store would lose every session): it is an error naming
    /// the settings, and `previous` stays in use.
    pub fn rebuild(
        config: &Config,
        main_file: &std::path::Path,
        env: &EnvSource,
        previous: &Gateway,
    ) -> Result<Arc<Gateway>, Vec<ConfigError>> {
        Gateway::build_inner(config, main_file, env, previous.clock.clone(), Some(previous))
    }

    fn build_inner(
        config: &Config,
        main_file: &std::path::Path,
        env: &EnvSource,
        clock: Clock,
        previous: Option<&Gateway>,
    ) -> Result<Arc<Gateway>, Vec<ConfigError>> {
        let mut errors = Vec::new();
        // Errors of the main file's tables point at the key (or table) they are about.
        let key_loc = |keys: &[&str]| config.locs.at(main_file, keys);
        let keyring = Keyring::load(&config.session.keys, env)
            .map_err(|e| {
                let index = config.session.keys.iter().position(|k| k.id == e.key_id()).unwrap_or(0);
                errors.push(ConfigError::at(
                    &key_loc(&[&format!("session.keys[{index}]"), "session.keys"]),
                    format!("[session] {e}"),
                ))
            })
            .ok();
        let public_base_url = config.server.public_base_url.trim_end_matches('/').to_owned();
        // Where each provider receives its callbacks (one base for SAML: `check` saw to it).
        let provider_bases = crate::config::hosts::provider_bases(config);
        let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
        for p in &config.provider {
            // The provider of the same name this one replaces (a reload), as its own type.
            let before: Option<&dyn std::any::Any> =
                previous.and_then(|g| g.provider(p.name())).map(|(_, old)| old.as_ref() as &dyn std::any::Any);
            let built: Result<Arc<dyn Provider>, String> = match &p.value {
                ProviderConfig::Kaas(kaas) => {
                    crate::provider::kaas::KaasProvider::build(kaas).map(|k| Arc::new(k) as _)
                }
                ProviderConfig::Oidc(oidc) => crate::provider::oidc::OidcProvider::build(oidc, env).map(|o| {
                    let o = o.with_clock(clock.clone());
                    Arc::new(carried(o, before, crate::provider::oidc::OidcProvider::carrying_over)) as _
                }),
                ProviderConfig::Saml(saml) => {
                    let base = provider_bases.get(&saml.name).and_then(|b| b.first()).unwrap_or(&public_base_url);
                    crate::provider::saml::SamlProvider::build(saml, base).map(|s| {
                        let s = s.with_clock(clock.clone());
                        Arc::new(carried(s, before, crate::provider::saml::SamlProvider::carrying_over)) as _
                    })
                }
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
            Some(t) => match build_token_issuer(t, previous.and_then(|p| p.tokens.as_ref())) {
                Ok(issuer) => Some(issuer),
                Err(e) => {
                    errors.push(ConfigError::at(&key_loc(&["identity_token"]), format!("[identity_token] {e}")));
                    None
                }
            },
        };
        let admin = match &config.admin.token_file {
            None => None,
            Some(path) => crate::admin::AdminAuth::load(path)
                .map_err(|e| errors.push(ConfigError::at(&key_loc(&["admin.token_file"]), e.to_string())))
                .ok(),
        };
        // The audit sink is the process's, like the listeners: a reload keeps it (`[audit]`
        // changes wait for a restart, `crate::reload`), and SIGHUP reopens its file.
        let audit = match previous {
            Some(previous) => previous.audit.clone(),
            None => match crate::audit::Audit::start(&config.audit, clock.clone()) {
                Ok(audit) => audit,
                Err(e) => {
                    let key = match &e {
                        crate::audit::AuditError::File { .. } => "audit.file",
                        crate::audit::AuditError::Syslog { .. } => "audit.syslog_socket",
                        crate::audit::AuditError::Thread(_) => "audit",
                    };
                    errors.push(ConfigError::at(&key_loc(&[key, "audit.syslog"]), e.to_string()));
                    crate::audit::Audit::off()
                }
            },
        };
        let (Some(keyring), true) = (keyring, errors.is_empty()) else {
            return Err(errors);
        };
        // The store keeps pending logins as long as the slowest provider needs; each login's
        // own provider limit is enforced at the callback (`Gateway::login_ttl_for`).
        let longest_login = providers
            .iter()
            .filter_map(|p| p.login_profile().pending_login_ttl)
            .fold(config.session.login_ttl_secs, u64::max);
        let store_spec = StoreSpec {
            kind: config.session.store,
            max_sessions: config.session.max_sessions,
            idle_timeout_secs: config.session.idle_timeout_secs,
            pending_login_secs: longest_login,
            redis: config.session.redis.as_ref().map(|r| format!("{r:?}")),
            record_keys: (config.session.store == StoreKind::Redis)
                .then(|| keyring.mac(crate::session::keyring::Purpose::Session, &[0; 32])),
        };
        let (store, shared) = match previous {
            Some(previous) if previous.store_spec == store_spec => (previous.store.clone(), previous.shared.clone()),
            Some(previous) => {
                let changed = previous.store_spec.changes(&store_spec).join(", ");
                return Err(vec![ConfigError::at(
                    &key_loc(&["session"]),
                    format!(
                        "[session] {changed} changed: the session store cannot be rebuilt by a reload without losing sessions; restart aisgate to apply it (the running configuration stays)"
                    ),
                )]);
            }
            None => build_store(config, &keyring, longest_login, apps.len(), &clock, env, &audit)
                .map_err(|e| vec![ConfigError::at(&key_loc(&["session.redis", "session.store"]), e)])?,
        };
        // Log labels of users and sessions: keyed by the session key (issue 15 item 12). Set
        // only once nothing can fail any more: a refused reload keeps the running labels.
        crate::identity::label::set_key(keyring.log_label_key());
        // Replay caches follow the sessions: shared when the sessions are.
        if let Some(shared) = &shared {
            for provider in &providers {
                provider.use_shared_state(shared.clone());
            }
        }
        // Single-logout state is in the session store, whichever it is.
        let session_lifetime = Duration::from_secs(config.session.absolute_timeout_secs);
        for provider in &providers {
            provider.use_logout_store(store.clone(), session_lifetime);
        }
        let app_names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
        let provider_names: Vec<&str> = providers.iter().map(|p| p.name()).collect();
        let mut metrics = match previous {
            Some(previous) => Metrics::continuing(&previous.metrics, &app_names, &provider_names),
            None => Metrics::new(&app_names, &provider_names),
        };
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
        let handoffs = handoff::HandoffMetrics::register(&mut metrics);
        let app_logins =
            crate::links::AppLogins::new(&apps, config.provider.iter().map(|p| p.kind()).collect(), &mut metrics);
        let links = match &config.links {
            None => None,
            Some(cfg) => match crate::links::open(cfg, &config.session, env) {
                Ok(store) => Some(crate::links::Links::new(store, cfg, &config.provider, &app_names, &mut metrics)),
                Err(e) => return Err(vec![ConfigError::at(&key_loc(&["links"]), format!("[links] {e}"))]),
            },
        };
        audit.register_metrics(&mut metrics);
        store.register_metrics(&mut metrics);
        let authorizer = match &config.authorizer {
            None => None,
            Some(cfg) => match crate::api::authorize::Authorizer::build(cfg, &mut metrics, clock.clone()) {
                Ok(a) => Some(a),
                Err(e) => return Err(vec![ConfigError::at(&key_loc(&["authorizer"]), format!("[authorizer] {e}"))]),
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
        let protocols = config
            .provider
            .iter()
            .map(|p| match &p.value {
                ProviderConfig::Kaas(_) => "kaas",
                ProviderConfig::Saml(_) => "saml2",
                ProviderConfig::Oidc(_) => "oidc",
            })
            .collect();
        let app_homes: Vec<Arc<str>> = apps.iter().map(|a| Arc::from(a.path_prefix.as_str())).collect();
        let base_home = base_home(&public_base_url, &apps);
        let session_caches = crate::session::CacheKey::next(apps.len());
        let kept_attributes =
            crate::session::kept::KeptAttributes::new(apps.iter().flat_map(|a| a.headers.attribute_names()));
        let bearer_providers = apps.iter().filter(|a| a.upstream_bearer).flat_map(|a| &a.providers);
        let kept_tokens =
            crate::session::kept::KeptTokens::new(bearer_providers.filter_map(|&i| providers.get(i)).map(|p| p.name()));
        let gateway = Arc::new(Gateway {
            links,
            app_logins,
            public_base_url,
            apps,
            provider_bases,
            providers,
            store,
            shared,
            clock,
            keyring,
            metrics,
            audit,
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
            preserve_post_max_bytes: config.server.preserve_post_max_bytes,
            own_body_limit,
            access_log: config.log.access_log,
            direct_limiter: match previous {
                Some(previous) => previous.direct_limiter.clone(),
                // One-time credentials: 10 attempts per client per 5 minutes is plenty for a human.
                None => Arc::new(rate_limit::RateLimiter::new(10, Duration::from_secs(300), 100_000)),
            },
            login_start_limiter: match previous {
                Some(previous) if previous.login_start_limiter.limit() == config.server.login_starts_per_minute => {
                    previous.login_start_limiter.clone()
                }
                _ => Arc::new(rate_limit::RateLimiter::new(
                    config.server.login_starts_per_minute,
                    Duration::from_secs(60),
                    100_000,
                )),
            },
            store_spec,
            session_caches,
            kept_attributes,
            kept_tokens,
            admin,
            maintenance: previous.map(|p| p.maintenance.clone()).unwrap_or_default(),
            max_sessions_per_user: config.session.max_sessions_per_user,
            logout_returns,
            handoffs,
            conn_metrics,
            protocols,
            app_homes,
            base_home,
            endpoints: endpoints::router(),
        });
        crate::admin::maintenance::spawn_refresh(&gateway);
        Ok(gateway)
    }

    /// Looks up a provider by name.
    pub fn provider(&self, name: &str) -> Option<(usize, &Arc<dyn Provider>)> {
        self.providers.iter().enumerate().find(|(_, p)| p.name() == name)
    }

    /// The protocol of the provider at `index` (`kaas`, `saml2`, `oidc`).
    pub fn protocol_of(&self, index: usize) -> Option<&'static str> {
        self.protocols.get(index).copied()
    }

    /// Absolute URL of a gateway endpoint path (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.public_base_url)
    }

    /// The callback URL of a provider, as registered at the IdP.
    pub fn login_context(&self, provider: &str) -> crate::provider::LoginContext {
        self.login_context_at(provider, &self.public_base_url)
    }

    /// The URLs of a login at `provider` whose callbacks go to `base` (a base URL without
    /// trailing slash: `public_base_url`, or an app's own; see [`Gateway::login_base`]).
    pub fn login_context_at(&self, provider: &str, base: &str) -> crate::provider::LoginContext {
        crate::provider::LoginContext {
            callback_url: format!("{base}{RESERVED_PREFIX}callback/{provider}"),
            logged_out_url: format!("{base}{RESERVED_PREFIX}logged-out"),
            direct_form_url: format!("{base}{RESERVED_PREFIX}direct/{provider}"),
        }
    }

    /// The URLs of a logout at `provider` requested on `host`: the provider's base on that
    /// host when it has one (the IdP then returns the browser to the host holding its logout
    /// cookie), else its first base.
    pub fn logout_context(&self, provider: &str, host: &str) -> crate::provider::LoginContext {
        let bases = self.provider_bases.get(provider).map(Vec::as_slice).unwrap_or_default();
        let base = bases
            .iter()
            .find(|b| crate::config::hosts::host_of(b).eq_ignore_ascii_case(host))
            .or(bases.first())
            .map_or(self.public_base_url.as_str(), String::as_str);
        self.login_context_at(provider, base)
    }

    /// The callback base URL of a login into `app` started on `host` (README "Apps on several
    /// hosts"; the rule is [`crate::config::hosts::login_base`], shared with `check`).
    pub fn login_base(&self, app: &route::App, host: &str) -> String {
        crate::config::hosts::login_base(
            &self.public_base_url,
            app.public_base_url.as_deref(),
            !app.providers_by_host.is_empty(),
            app.names_host(host).then_some(host),
        )
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
                let all: Vec<&IdentityTokenSigner> = std::iter::once(&*t.signer).chain(t.previous.iter()).collect();
                crate::identity::token::jwks(&all)
            }
        }
    }

    /// The own endpoints' router, serving with `this` gateway as its state.
    fn endpoints(this: &Arc<Gateway>) -> axum::Router {
        this.endpoints.clone().with_state(this.clone())
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

/// `new`, with the state `carry` takes over from `before` when that is a provider of the same
/// type (the one a reload replaces).
fn carried<T: 'static>(new: T, before: Option<&dyn std::any::Any>, carry: fn(T, &T) -> T) -> T {
    match before.and_then(|old| old.downcast_ref::<T>()) {
        Some(old) => carry(new, old),
        None => new,
    }
}

/// A session store, and its shared state when it is shared by several instances (Redis).
type StoreParts = (Arc<dyn SessionStore>, Option<Arc<dyn SharedState>>);

/// The session store `[session]` asks for.
fn build_store(
    config: &Config,
    keyring: &Keyring,
    longest_login: u64,
    apps: usize,
    clock: &Clock,
    env: &EnvSource,
    audit: &crate::audit::Audit,
) -> Result<StoreParts, String> {
    Ok(match config.session.store {
        StoreKind::Memory => (
            Arc::new(
                MemoryStore::new(
                    config.session.max_sessions,
                    Duration::from_secs(config.session.idle_timeout_secs),
                    Duration::from_secs(longest_login),
                    clock.clone(),
                )
                .with_audit(audit.clone()),
            ),
            None,
        ),
        StoreKind::Redis => {
            let opts = crate::session::redis::RedisStoreOptions::of(&config.session, longest_login, apps, clock);
            let store =
                crate::session::redis::RedisStore::configured(&config.session, keyring.record_keys(), opts, env)
                    .map_err(|e| e.to_string())?;
            let store = Arc::new(store.with_audit(audit.clone()));
            (store.clone(), Some(store))
        }
    })
}

/// The identity token issuer of `[identity_token]`. Without a `key_file` the key is generated
/// — once per process: a reload keeps `previous`'s ephemeral key (same algorithm), so the
/// upstreams' cached JWKS stays valid.
fn build_token_issuer(
    cfg: &crate::config::IdentityTokenConfig,
    previous: Option<&TokenIssuer>,
) -> Result<TokenIssuer, String> {
    let load = |path: &std::path::Path, algorithm| {
        let pem = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        IdentityTokenSigner::from_pkcs8_pem(&pem, algorithm).map_err(|e| format!("{}: {e}", path.display()))
    };
    let signer = match (&cfg.key_file, previous) {
        (Some(path), _) => Arc::new(load(path, cfg.algorithm)?),
        (None, Some(p)) if p.signer.algorithm() == cfg.algorithm => p.signer.clone(),
        (None, _) => Arc::new(IdentityTokenSigner::generate(cfg.algorithm).map_err(|e| e.to_string())?),
    };
    let previous = cfg.published_keys.iter().map(|k| load(&k.file, k.algorithm)).collect::<Result<_, _>>()?;
    Ok(TokenIssuer { signer, previous, lifetime_secs: cfg.lifetime_secs })
}
