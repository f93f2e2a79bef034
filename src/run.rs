//! The `run` and `check` commands: configuration in, listening gateway out.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, ConfigError, LogFormat};
use crate::gateway::{self, Gateway};
use crate::listen::{self, Limits};

/// Sets up tracing from `[log]`; `RUST_LOG` overrides the level.
///
/// Log lines go to stdout. The human format is coloured only when stdout is a terminal: ANSI
/// escape codes in a file, a pipe or the journal are noise that breaks `grep` (issue 14).
pub fn init_logging(format: LogFormat, level: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_target(true).with_ansi(std::io::stdout().is_terminal());
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Human => builder.try_init(),
    };
}

/// `println!` that ignores a closed stdout (`aisgate check | head` must not panic).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Prints configuration errors as `file:line:column: reason`, one per line.
pub fn print_errors(errors: &[ConfigError]) {
    use std::io::Write;
    let mut stderr = std::io::stderr();
    for e in errors {
        let _ = writeln!(stderr, "{e}");
    }
}

/// Loads the configuration, printing `file:line:column` errors when it cannot.
fn load(path: &Path) -> Option<Config> {
    crate::config::load(path).map_err(|errors| print_errors(&errors)).ok()
}

/// Builds the gateway from a loaded configuration, printing errors when it cannot.
fn build(config: &Config, path: &Path) -> Option<Arc<Gateway>> {
    Gateway::build(config, path, &gateway::process_env).map_err(|errors| print_errors(&errors)).ok()
}

/// Loads and builds everything `run` would, without listening. Returns the process exit code.
pub fn check(path: &Path) -> i32 {
    // Warnings from building (dangerous options, ephemeral keys) belong in the check output.
    init_logging(LogFormat::Human, "warn");
    let Some(mut config) = load(path) else { return 2 };
    // The audit sink is checked, not created (check may run as another user than the service).
    config.audit.dry_run = true;
    // So is the links database.
    if let Some(links) = &mut config.links {
        links.dry_run = true;
    }
    let mut errors = Vec::new();
    if let Some(tls) = &config.server.tls {
        if let Err(e) = crate::tls::server_config(&tls.cert, &tls.key) {
            errors.push(ConfigError::at(&config.locs.at(path, &["server.tls"]), format!("[server.tls] {e}")));
        }
    }
    for warning in crate::config::rule_warnings(&config) {
        eprintln!("warning: {}", warning.into_error());
    }
    match Gateway::build(&config, path, &gateway::process_env) {
        Ok(gw) if errors.is_empty() => {
            print_summary(&config, &gw);
            for warning in crate::config::warnings(&config, path) {
                out!("warning: {}: DANGEROUS: {}", warning.loc, warning.message);
            }
            0
        }
        Ok(_) => {
            print_errors(&errors);
            2
        }
        Err(more) => {
            errors.extend(more);
            print_errors(&errors);
            2
        }
    }
}

/// `aisgate check --explain URL [--as IDENTITY.json]`: the decision for one request. Exit
/// code 0 when it is served, 1 when not, 2 for configuration or input errors.
pub fn explain(path: &Path, url: &str, identity_file: Option<&Path>) -> i32 {
    init_logging(LogFormat::Human, "warn");
    let Some(mut config) = load(path) else { return 2 };
    config.audit.dry_run = true;
    if let Some(links) = &mut config.links {
        links.dry_run = true;
    }
    let identity = match identity_file.map(read_identity).transpose() {
        Ok(identity) => identity,
        Err(message) => {
            eprintln!("{message}");
            return 2;
        }
    };
    let Some(gw) = build(&config, path) else { return 2 };
    let (text, verdict) = gateway::explain::explain(&gw, url, identity.as_ref());
    out!("{}", text.trim_end());
    match verdict {
        gateway::explain::Verdict::Allowed => 0,
        gateway::explain::Verdict::Refused => 1,
    }
}

fn read_identity(file: &Path) -> Result<crate::identity::Identity, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("{}:{}:{}: not an identity: {e}", file.display(), e.line(), e.column()))
}

/// Every URL of the gateway that the IdP's registration form for provider `p` asks for, with
/// the form's own name for it (README, "Quick start"): the operator copies them from `check`
/// instead of deriving them by hand, which is where registrations go wrong. A provider that
/// apps use at several base URLs (apps on several hosts) lists each base's URL.
fn registration_urls(p: &crate::config::ProviderConfig, gw: &Gateway) -> Vec<(&'static str, String)> {
    use crate::config::ProviderConfig;
    let fallback = [gw.public_base_url.clone()];
    let bases = gw.provider_bases.get(p.name()).map_or(&fallback[..], Vec::as_slice);
    let first = bases.first().map_or(gw.public_base_url.as_str(), String::as_str);
    let each = |what: &'static str, url: &dyn Fn(&str) -> String| -> Vec<(&'static str, String)> {
        bases.iter().map(|base| (what, url(base))).collect()
    };
    let callback = |base: &str| gw.login_context_at(p.name(), base).callback_url;
    let logged_out = |base: &str| gw.login_context_at(p.name(), base).logged_out_url;
    // A configured return URL may be a path on the gateway (SAML's default is one).
    let absolute = |url: &Option<String>| match url.as_deref() {
        Some(u) if u.starts_with('/') => vec![gw.url(u)],
        Some(u) => vec![u.to_owned()],
        None => bases.iter().map(|b| logged_out(b)).collect(),
    };
    let mut urls = Vec::new();
    match p {
        ProviderConfig::Kaas(c) => {
            urls.extend(each("return URL (login callback)", &callback));
            urls.extend(absolute(&c.logout_return_url).into_iter().map(|u| ("logout return URL", u)));
        }
        ProviderConfig::Saml(c) => {
            // NIA's form names (spec nia.md, registration fields); the SLO endpoint is where NIA
            // sends its LogoutResponse ("URL adresa po odhlášení"). The gateway's own
            // post_logout_redirect_url is not registered anywhere. One base (`check`).
            let sp = crate::provider::saml::SpUrls::new(first, p.name());
            urls.push(("entity ID (NIA: Unikátní URL adresa zabezpečené části webu)", c.entity_id.clone()));
            urls.push(("assertion consumer service (NIA: URL adresa pro příjem vydaného tokenu)", sp.acs));
            urls.push(("single logout service (NIA: URL adresa po odhlášení)", sp.slo));
            urls.push(("SP metadata (encryption and signing certificates)", sp.metadata));
        }
        ProviderConfig::Oidc(c) => {
            urls.extend(each("redirect_uri", &callback));
            let logout = absolute(&c.post_logout_redirect_uri);
            urls.extend(logout.into_iter().map(|u| ("post_logout_redirect_uri", u)));
            // One back-channel URL per registration: the IdP calls it server to server.
            let backchannel = format!("{first}{}backchannel-logout/{}", crate::http::RESERVED_PREFIX, p.name());
            urls.push(("backchannel_logout_uri", backchannel));
        }
    }
    urls
}

fn print_summary(config: &Config, gw: &Gateway) {
    out!("configuration OK");
    let listen: Vec<String> = config.server.listen.iter().map(ToString::to_string).collect();
    out!(
        "  listen: {} ({}), ops: {}, public base URL: {}",
        listen.join(", "),
        if config.server.tls.is_some() { "TLS" } else { "plain HTTP" },
        config.ops.listen,
        gw.public_base_url
    );
    out!("  audit: {}", config.audit.describe());
    match (&config.session.store, &config.session.redis) {
        (crate::config::StoreKind::Redis, Some(redis)) => out!("  session store: {}", redis.describe()),
        _ => out!("  session store: memory (this process only)"),
    }
    out!("  providers:");
    for p in &config.provider {
        let bases = gw.provider_bases.get(p.name()).map(Vec::as_slice).unwrap_or_default();
        let first = bases.first().map_or(gw.public_base_url.as_str(), String::as_str);
        out!("    {} (kind {}), callback {}", p.name(), p.kind(), gw.login_context_at(p.name(), first).callback_url);
        for (what, url) in registration_urls(p, gw) {
            out!("      register {what}: {url}");
        }
    }
    out!("  apps:");
    for a in &config.app {
        let hosts = if a.hosts.is_empty() { "any host".to_owned() } else { a.hosts.join(", ") };
        out!(
            "    {}: {} {} -> {} via [{}]; public {:?}; {} rule(s)",
            a.name,
            hosts,
            a.path_prefix,
            a.upstream,
            a.providers.join(", "),
            a.public_paths,
            a.rule.len()
        );
    }
    // Where the logins of apps on other hosts than public_base_url's complete.
    for app in &gw.apps {
        for host in &app.hosts {
            let base = gw.login_base(app, host);
            if crate::config::hosts::host_of(&base) != *host || base != gw.public_base_url {
                let handed = if crate::config::hosts::host_of(&base) == *host { "" } else { ", handed over" };
                out!("    {} on {host}: logins complete at {base}{handed}", app.name);
            }
        }
    }
}

/// Starts periodic provider work (heartBeat, metadata refresh), the first round now. A loop
/// ends once its provider is gone (its gateway replaced by a reload and its last request
/// finished).
pub fn spawn_provider_refresh(gw: &Arc<Gateway>) {
    spawn_refresh_loops(gw, false);
}

/// For a gateway a reload is about to swap in: runs every provider's first refresh now (at
/// most `limit`), so the new providers are as ready as the old ones when they take over and
/// `/readyz` does not flap; then starts the periodic loops.
pub async fn warm_up_provider_refresh(gw: &Arc<Gateway>, limit: Duration) {
    let first = gw.providers.iter().filter_map(|p| p.background()).map(|b| b.refresh());
    if tokio::time::timeout(limit, futures_util::future::join_all(first)).await.is_err() {
        tracing::warn!("configuration reload: a provider's first heartBeat or metadata refresh is still running; swapping in anyway");
    }
    spawn_refresh_loops(gw, true);
}

fn spawn_refresh_loops(gw: &Arc<Gateway>, refreshed: bool) {
    for provider in &gw.providers {
        let Some(interval) = provider.background().and_then(|b| b.refresh_interval()) else { continue };
        let provider = Arc::downgrade(provider);
        tokio::spawn(async move {
            if refreshed {
                tokio::time::sleep(interval).await;
            }
            loop {
                let Some(provider) = provider.upgrade() else { break };
                let Some(background) = provider.background() else { break };
                background.refresh().await;
                drop(provider);
                tokio::time::sleep(interval).await;
            }
        });
    }
}

/// `aisgate run`: serves until SIGTERM/Ctrl-C, reloading on SIGHUP. Returns the exit code.
pub async fn run(path: &Path) -> i32 {
    let Some(config) = load(path) else { return 2 };
    init_logging(config.log.format, &config.log.level);
    for warning in crate::config::rule_warnings(&config) {
        tracing::warn!(at = %warning.loc, "{}", warning.message);
    }
    let cert = match &config.server.tls {
        None => None,
        Some(t) => match crate::tls::ServerCert::load(&t.cert, &t.key) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("{}", ConfigError::at(&config.locs.at(path, &["server.tls"]), format!("[server.tls] {e}")));
                return 2;
            }
        },
    };
    let Some(gw) = build(&config, path) else { return 2 };
    let live = crate::reload::Live::reloadable(gw.clone(), &config, path, cert.clone(), Arc::new(gateway::process_env));
    // Before anything listens: SIGHUP's default action would end the process.
    #[cfg(unix)]
    if let Err(e) = crate::reload::reload_on_sighup(live.clone()) {
        eprintln!("cannot handle SIGHUP: {e}");
        return 1;
    }
    let tls = cert.map(crate::tls::server_config_with);
    let public = match listen::bind_public(&config.server.listen, tls).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {:?}: {e}", config.server.listen);
            return 1;
        }
    };
    let ops = match tokio::net::TcpListener::bind(config.ops.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {} (ops): {e}", config.ops.listen);
            return 1;
        }
    };
    for warning in crate::config::warnings(&config, path) {
        tracing::warn!(at = %warning.loc, "DANGEROUS: {}", warning.message);
    }
    spawn_provider_refresh(&gw);
    tracing::info!(
        listen = ?config.server.listen,
        ops = %config.ops.listen,
        apps = gw.apps.len(),
        config_hash = %live.config_hash().unwrap_or_default(),
        "aisgate started"
    );
    drop(gw);
    listen::serve(
        live,
        public,
        ops,
        limits(&config),
        Duration::from_secs(config.server.shutdown_grace_secs),
        listen::shutdown_signal(),
    )
    .await;
    tracing::info!("aisgate stopped");
    0
}

/// Connection limits from `[server]`.
pub fn limits(config: &Config) -> Limits {
    Limits {
        max_header_bytes: config.server.max_header_bytes,
        header_read_timeout: Duration::from_secs(config.server.header_read_timeout_secs),
        idle_timeout: Duration::from_secs(config.server.idle_timeout_secs),
        http2_keepalive_interval: match config.server.http2_keepalive_interval_secs {
            0 => None,
            secs => Some(Duration::from_secs(secs)),
        },
        http2_keepalive_timeout: Duration::from_secs(config.server.http2_keepalive_timeout_secs),
        max_connections: config.server.max_connections,
    }
}
