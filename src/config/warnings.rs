//! Settings that weaken security: each one is valid, but an operator must see it, so `check`
//! prints every warning and `run` logs them at startup (WARN, `DANGEROUS:` prefix).
//!
//! The list is the single place that knows which keys weaken the gateway; a new such key
//! belongs here (and in a `dangerous` table where it is app-specific). Beside it,
//! [`rule_warnings`]: valid rules that can never decide anything.

use std::path::Path;

use super::{check::Issue, Config, ProviderConfig, SourceLoc, HOST_PREFIX};

/// Every security-weakening setting of `config`, at the table it is set in.
pub fn warnings(config: &Config, main_file: &Path) -> Vec<Issue> {
    let main_loc = SourceLoc { file: main_file.into(), line: 1, column: 1 };
    let mut issues = Vec::new();
    let mut warn = |loc: &SourceLoc, message: String| issues.push(Issue { loc: loc.clone(), message });
    let session = &config.session;
    if !session.cookie_secure {
        warn(
            &config.locs.at(main_file, &["session.cookie_secure"]),
            "[session] cookie_secure = false: cookies travel over plain HTTP (development only)".into(),
        );
    } else {
        for (key, name) in [
            ("cookie_name", &session.configured_cookie_name),
            ("login_cookie_name", &session.configured_login_cookie_name),
        ] {
            if let Some(name) = name.as_deref().filter(|n| !n.starts_with(HOST_PREFIX)) {
                warn(
                    &config.locs.at(main_file, &[&format!("session.{key}")]),
                    format!(
                        "[session] {key} {name:?} lacks the {HOST_PREFIX} prefix: a sibling subdomain can plant a cookie of that name"
                    ),
                );
            }
        }
    }
    for net in config.server.trusted_proxies.iter().filter(|n| n.prefix_len() == 0) {
        warn(
            &main_loc,
            format!("[server] trusted_proxies contains {net}: every client may set X-Forwarded-*, Forwarded and X-Request-Id"),
        );
    }
    for provider in &config.provider {
        let name = provider.name();
        let mut flags: Vec<String> = Vec::new();
        match &provider.value {
            ProviderConfig::Saml(saml) => {
                let d = &saml.dangerous;
                let preset_note = if d.issuer_case_insensitive.is_none() { " (implied by the preset)" } else { "" };
                for (on, message) in [
                    (d.allow_plain_http, "dangerous.allow_plain_http: IdP endpoints may be plain http://".to_owned()),
                    (
                        d.allow_unsolicited,
                        "dangerous.allow_unsolicited: IdP-initiated logins are bound to no browser (login CSRF)".to_owned(),
                    ),
                    (
                        d.allow_unencrypted_assertions,
                        "dangerous.allow_unencrypted_assertions: assertions may travel unencrypted".to_owned(),
                    ),
                    (
                        d.accept_unsigned_logout_requests,
                        "dangerous.accept_unsigned_logout_requests: unsigned back-channel LogoutRequests end sessions"
                            .to_owned(),
                    ),
                    (
                        saml.issuer_case_insensitive(),
                        format!("dangerous.issuer_case_insensitive: the IdP entityID is compared ignoring case{preset_note}"),
                    ),
                    (d.ignore_returned_loa, "dangerous.ignore_returned_loa: the achieved LoA is not checked".to_owned()),
                ] {
                    if on {
                        flags.push(message);
                    }
                }
            }
            ProviderConfig::Oidc(oidc) if oidc.dangerous.allow_plain_http => {
                flags.push(
                    "dangerous.allow_plain_http: discovery, JWKS, token and userinfo may be plain http://".into(),
                );
            }
            ProviderConfig::Kaas(kaas) if kaas.dangerous.allow_plain_http => {
                flags.push("dangerous.allow_plain_http: the SOAP channel may be plain http://".into());
            }
            _ => {}
        }
        for message in flags {
            warn(&provider.loc, format!("provider {name:?}: {message}"));
        }
    }
    if config.identity_token.as_ref().is_some_and(|t| t.dangerous.ephemeral_key && t.key_file.is_none()) {
        warn(
            &main_loc,
            "[identity_token] dangerous.ephemeral_key: tokens are signed with a key generated at start (apps refetch the JWKS after every restart)".into(),
        );
    }
    for app in &config.app {
        let name = &app.name;
        if app.dangerous.skip_upstream_tls_verify {
            warn(
                &app.loc,
                format!("app {name:?}: dangerous.skip_upstream_tls_verify: upstream TLS certificates are not verified"),
            );
        }
        if app.forward_gateway_cookies {
            warn(&app.loc, format!("app {name:?}: forward_gateway_cookies = true: the upstream sees session cookies"));
        }
    }
    issues
}

/// Things that are valid but almost certainly not meant: printed by `check` as warnings.
///
/// A rule whose path prefix lies under an earlier rule's prefix is never used (the first
/// matching rule decides), so its conditions protect nothing.
pub fn rule_warnings(config: &Config) -> Vec<Issue> {
    use crate::http::path_forms::{fold_case, under_prefix, PathCase};
    let mut warnings = Vec::new();
    for app in &config.app {
        let fold = |p: &str| match app.path_case {
            PathCase::Sensitive => p.to_owned(),
            PathCase::Insensitive => fold_case(p).into_owned(),
        };
        for (j, later) in app.rule.iter().enumerate() {
            // Path rules shadow path rules; an operation rule only rules of the same operation.
            let shadowing = app.rule[..j].iter().position(|earlier| {
                earlier.operation == later.operation
                    && under_prefix(&fold(&later.path_prefix), &fold(&earlier.path_prefix))
            });
            if let Some(i) = shadowing {
                warnings.push(Issue {
                    loc: app.loc.clone(),
                    message: format!(
                        "app {:?}: rule #{} (path_prefix {:?}) is never used: rule #{} (path_prefix {:?}) comes first and covers it; put the narrower rule first",
                        app.name,
                        j + 1,
                        later.path_prefix,
                        i + 1,
                        app.rule[i].path_prefix
                    ),
                });
            }
        }
    }
    warnings
}
