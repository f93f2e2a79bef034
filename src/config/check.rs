//! Cross-field configuration checks: what serde alone cannot see.
//!
//! Each check yields an [`Issue`] at the location of the table it concerns. Checks that need
//! the filesystem (keys, certificates) run when the runtime is built, and report the same way.

use std::collections::HashSet;
use std::path::Path;

use super::{Config, ConfigError, ProviderConfig, SourceLoc};
use crate::http::canonical_path::CanonicalPath;
use crate::identity::headers::HeaderMapping;

/// One problem found in the configuration.
#[derive(Debug, Clone)]
pub struct Issue {
    /// Where.
    pub loc: SourceLoc,
    /// Why.
    pub message: String,
}

impl Issue {
    /// As a [`ConfigError`].
    pub fn into_error(self) -> ConfigError {
        ConfigError { loc: self.loc, message: self.message }
    }
}

fn valid_path_prefix(prefix: &str) -> Result<(), String> {
    match CanonicalPath::parse(prefix) {
        Ok(canonical) if canonical.as_str() == prefix => Ok(()),
        Ok(canonical) => Err(format!("path {prefix:?} is not canonical (write {:?})", canonical.as_str())),
        Err(e) => Err(format!("path {prefix:?} is invalid: {e}")),
    }
}

/// Runs every cross-field check.
pub fn check(config: &Config, main_file: &Path) -> Vec<Issue> {
    let mut issues = Vec::new();
    // Errors of the main file's tables point at the key they are about (or its table).
    let key = |keys: &[&str]| config.locs.at(main_file, keys);
    let main_loc = SourceLoc { file: main_file.into(), line: 1, column: 1 };
    let mut at = |loc: &SourceLoc, message: String| issues.push(Issue { loc: loc.clone(), message });

    match super::hosts::parse_base(&config.server.public_base_url) {
        Some(_) => {}
        None => at(
            &key(&["server.public_base_url"]),
            format!(
                "[server] public_base_url {:?} must be an absolute http(s) URL without path or query",
                config.server.public_base_url
            ),
        ),
    }
    if let Ok(u) = url::Url::parse(&config.server.public_base_url) {
        if super::hosts::drops_secure_cookies(&u, config.session.cookie_secure) {
            // Browsers keep `Secure` cookies only from https origins (and localhost): the
            // pre-login cookie would never come back and every login would fail.
            at(
                &key(&["server.public_base_url"]),
                format!(
                    "[server] public_base_url {:?} is plain http but [session] cookie_secure = true: browsers drop Secure cookies there, so no login can succeed (use https, or cookie_secure = false for development)",
                    config.server.public_base_url
                ),
            );
        }
    }
    if config.server.listen.is_empty() {
        at(&key(&["server.listen"]), "[server] listen needs at least one address".into());
    }
    // Zero would mean "refuse every connection" or "close every connection at once".
    for (name, value) in [
        ("max_connections", config.server.max_connections as u64),
        ("header_read_timeout_secs", config.server.header_read_timeout_secs),
        ("idle_timeout_secs", config.server.idle_timeout_secs),
    ] {
        if value == 0 {
            at(&key(&[&format!("server.{name}")]), format!("[server] {name} must be at least 1"));
        }
    }
    // `[session]` errors point at the key they are about (or the table when it is unset).
    let session = |keys: &[&str]| config.locs.at(main_file, keys);
    if config.session.keys.is_empty() {
        at(&session(&["session.keys"]), "[session] keys needs at least one key".into());
    }
    for (i, key) in config.session.keys.iter().enumerate() {
        let loc = session(&[&format!("session.keys[{i}]")]);
        if key.file.is_some() == key.env.is_some() {
            at(&loc, format!("[session] key {:?}: set exactly one of `file` or `env`", key.id));
        }
        if key.id.is_empty() || !key.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            at(&loc, format!("[session] key id {:?} must be non-empty [A-Za-z0-9_-]", key.id));
        }
    }
    if config.session.idle_timeout_secs == 0 || config.session.absolute_timeout_secs < config.session.idle_timeout_secs
    {
        let key = if config.session.idle_timeout_secs == 0 { "idle_timeout_secs" } else { "absolute_timeout_secs" };
        at(
            &session(&[&format!("session.{key}")]),
            "[session] idle_timeout_secs must be > 0 and ≤ absolute_timeout_secs".into(),
        );
    }
    if config.session.cookie_name() == config.session.login_cookie_name() {
        at(
            &session(&["session.login_cookie_name", "session.cookie_name"]),
            "[session] cookie_name and login_cookie_name must differ".into(),
        );
    }
    if !config.session.cookie_secure {
        // Browsers drop a `__Host-`/`__Secure-` cookie set without `Secure`: no login would work.
        for (key, name) in [
            ("session.cookie_name", config.session.cookie_name()),
            ("session.login_cookie_name", config.session.login_cookie_name()),
        ] {
            if name.starts_with(super::HOST_PREFIX) || name.starts_with("__Secure-") {
                at(
                    &session(&[key, "session.cookie_secure"]),
                    format!("[session] cookie name {name:?} needs cookie_secure = true"),
                );
            }
        }
    }

    let mut provider_names = HashSet::new();
    for provider in &config.provider {
        if !provider_names.insert(provider.name()) {
            at(&provider.loc, format!("provider {:?} is defined twice", provider.name()));
        }
        match &provider.value {
            ProviderConfig::Kaas(kaas) => {
                for message in kaas.check() {
                    at(&provider.loc, format!("provider {:?}: {message}", provider.name()));
                }
            }
            ProviderConfig::Oidc(oidc) => {
                for message in oidc.check() {
                    at(&provider.loc, format!("provider {:?}: {message}", provider.name()));
                }
            }
            ProviderConfig::Saml(saml) => {
                for message in saml.check() {
                    at(&provider.loc, format!("provider {:?}: {message}", provider.name()));
                }
            }
        }
    }

    let mut app_names = HashSet::new();
    let mut routes = HashSet::new();
    for app in &config.app {
        let name = &app.name;
        if !app_names.insert(name.as_str()) {
            at(&app.loc, format!("app {name:?} is defined twice"));
        }
        match url::Url::parse(&app.upstream) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.query().is_none() => {}
            _ => {
                at(&app.loc, format!("app {name:?}: upstream {:?} must be an http(s) URL without query", app.upstream))
            }
        }
        if app.providers.is_empty() {
            at(&app.loc, format!("app {name:?}: providers must name at least one provider"));
        }
        for p in &app.providers {
            if !config.provider.iter().any(|c| c.name() == p) {
                at(&app.loc, format!("app {name:?}: provider {p:?} is not defined in any [[provider]]"));
            }
        }
        let paths = std::iter::once(&app.path_prefix)
            .chain(&app.public_paths)
            .chain(&app.logout_paths)
            .chain(app.rule.iter().map(|r| &r.path_prefix));
        for path in paths {
            if let Err(e) = valid_path_prefix(path) {
                at(&app.loc, format!("app {name:?}: {e}"));
            }
            if path.starts_with(crate::http::RESERVED_PREFIX) {
                at(&app.loc, format!("app {name:?}: {path:?} is inside the gateway's reserved prefix"));
            }
        }
        for protocol in &app.upgrade_protocols {
            let proto = protocol.split('/').next().unwrap_or("");
            if proto.is_empty() || !proto.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
            {
                at(&app.loc, format!("app {name:?}: upgrade_protocols entry {protocol:?} is not a protocol name"));
            } else if proto.eq_ignore_ascii_case("h2c") {
                // An h2c tunnel would carry HTTP/2 requests the gateway never sees.
                at(&app.loc, format!("app {name:?}: upgrade_protocols may not contain \"h2c\""));
            }
        }
        for rule in &app.rule {
            for p in &rule.providers {
                if !app.providers.contains(p) {
                    at(&app.loc, format!("app {name:?}: rule provider {p:?} is not one of the app's providers"));
                }
            }
        }
        let hosts: Vec<String> = if app.hosts.is_empty() {
            vec![String::new()]
        } else {
            app.hosts.iter().map(|h| h.to_ascii_lowercase()).collect()
        };
        for host in hosts {
            if !routes.insert((host.clone(), app.path_prefix.clone())) {
                at(
                    &app.loc,
                    format!("app {name:?}: host {host:?} and path_prefix {:?} are already routed", app.path_prefix),
                );
            }
        }
        if let Err(e) = HeaderMapping::compile(&app.headers) {
            at(&app.loc, format!("app {name:?}: [app.headers]: {e}"));
        }
        if app.headers.identity_token && config.identity_token.is_none() {
            at(&app.loc, format!("app {name:?}: headers.identity_token needs an [identity_token] section"));
        }
        for message in crate::api::config::check(app, &config.provider) {
            at(&app.loc, format!("app {name:?}: {message}"));
        }
        for message in crate::api::authorize::check_app(app, config.authorizer.as_ref()) {
            at(&app.loc, format!("app {name:?}: {message}"));
        }
    }
    if let Some(authorizer) = &config.authorizer {
        for message in crate::api::authorize::check_authorizer(authorizer) {
            at(&key(&["authorizer"]), format!("[authorizer] {message}"));
        }
    }
    if config.app.is_empty() {
        at(&main_loc, "no [[app]] is configured".into());
    }
    // Apps on several hosts: where each login completes (issue 12 items 6 and 7).
    super::hosts::check(config, &mut at);
    if config.identity_token.as_ref().is_some_and(|t| t.key_file.is_none() && !t.dangerous.ephemeral_key) {
        at(
            &key(&["identity_token"]),
            "[identity_token] has no key_file: set one, or [identity_token.dangerous] ephemeral_key = true (a new key at every start)".into(),
        );
    }
    for (loc, message) in crate::links::check(config, &key(&["links"])) {
        issues.push(Issue { loc, message });
    }
    issues
}
