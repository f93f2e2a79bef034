//! Routing a canonical request to an app, and the app's authorization rules.
//!
//! Routing runs on the canonical path only (see `http::canonical_path`), so routing, the
//! public-path check, authorization and the path sent upstream all agree.

use http::uri::{Authority, Scheme};

use crate::config::{AccessRule, AppConfig, Unauthenticated};
use crate::http::canonical_path::CanonicalPath;
use crate::identity::headers::HeaderMapping;
use crate::identity::{Identity, Loa};

/// The parsed upstream base URL.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Host and port.
    pub authority: Authority,
    /// Path prepended to the request path, without trailing slash (`""` for none).
    pub base_path: String,
    /// How the upstream's TLS certificate is verified.
    pub trust: crate::upstream::UpstreamTrust,
}

/// One protected app, compiled from `[[app]]`.
pub struct App {
    /// Position in the config (metrics and cache index).
    pub index: usize,
    /// Name.
    pub name: String,
    /// Lower-case host names (empty = any host).
    pub hosts: Vec<String>,
    /// Canonical path prefix.
    pub path_prefix: String,
    /// Upstream.
    pub upstream: Upstream,
    /// Indices into the gateway's provider list.
    pub providers: Vec<usize>,
    /// Public path prefixes.
    pub public_paths: Vec<String>,
    /// Logout path prefixes.
    pub logout_paths: Vec<String>,
    /// Unauthenticated behaviour.
    pub unauthenticated: Unauthenticated,
    /// Send the client's Host upstream.
    pub preserve_host: bool,
    /// Forward gateway cookies upstream.
    pub forward_gateway_cookies: bool,
    /// Send the session's access token upstream as `Authorization: Bearer`.
    pub upstream_bearer: bool,
    /// Header mapping.
    pub headers: HeaderMapping,
    /// Authorization rules.
    pub rules: Vec<AccessRule>,
    /// Lower-case protocol names clients may upgrade to (`upgrade_protocols`).
    pub upgrade_protocols: Vec<String>,
}

/// Why access was denied (operator log; the user sees a generic 403 page).
#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    /// No required role.
    MissingRole,
    /// LoA too low.
    LoaTooLow,
    /// Organisation not allowed.
    Organisation,
    /// Provider not allowed for this path.
    Provider,
}

impl App {
    /// Compiles an app. The config has been checked, so failures here are reported as strings.
    pub fn compile(
        index: usize,
        cfg: &AppConfig,
        provider_index: impl Fn(&str) -> Option<usize>,
        client: &crate::upstream::UpstreamClient,
    ) -> Result<App, String> {
        use crate::upstream::UpstreamTrust;
        let trust = match (&cfg.upstream_ca_bundle, cfg.dangerous.skip_upstream_tls_verify) {
            (_, true) => UpstreamTrust::Insecure,
            (Some(bundle), false) => UpstreamTrust::CaBundle(Box::new(
                client.with_ca_bundle(bundle).map_err(|e| format!("upstream_ca_bundle: {e}"))?,
            )),
            (None, false) => UpstreamTrust::WebPki,
        };
        let url = url::Url::parse(&cfg.upstream).map_err(|e| format!("upstream: {e}"))?;
        let scheme = if url.scheme() == "https" { Scheme::HTTPS } else { Scheme::HTTP };
        let host = url.host_str().ok_or("upstream has no host")?;
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let authority = Authority::try_from(authority.as_str()).map_err(|e| format!("upstream authority: {e}"))?;
        let headers = HeaderMapping::compile(&cfg.headers).map_err(|e| e.to_string())?;
        let providers = cfg
            .providers
            .iter()
            .map(|p| provider_index(p).ok_or_else(|| format!("unknown provider {p:?}")))
            .collect::<Result<_, _>>()?;
        Ok(App {
            index,
            name: cfg.name.clone(),
            hosts: cfg.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
            path_prefix: cfg.path_prefix.clone(),
            upstream: Upstream { scheme, authority, base_path: url.path().trim_end_matches('/').to_owned(), trust },
            providers,
            public_paths: cfg.public_paths.clone(),
            logout_paths: cfg.logout_paths.clone(),
            unauthenticated: cfg.unauthenticated,
            preserve_host: cfg.preserve_host,
            forward_gateway_cookies: cfg.forward_gateway_cookies,
            upstream_bearer: cfg.upstream_bearer,
            headers,
            rules: cfg.rule.clone(),
            upgrade_protocols: cfg
                .upgrade_protocols
                .iter()
                .map(|p| p.split('/').next().unwrap_or("").to_ascii_lowercase())
                .collect(),
        })
    }

    /// Whether `path` is public (no session needed).
    pub fn is_public(&self, path: &CanonicalPath) -> bool {
        self.public_paths.iter().any(|p| path.starts_with_segment_prefix(p))
    }

    /// Whether `path` is one of the app's logout URLs.
    pub fn is_logout(&self, path: &CanonicalPath) -> bool {
        self.logout_paths.iter().any(|p| path.starts_with_segment_prefix(p))
    }

    /// The LoA `identity` would need for `path`, when that is the only thing standing in the
    /// way (the rule's other conditions hold): a step-up login can then help.
    pub fn step_up_loa(&self, path: &CanonicalPath, identity: &Identity) -> Option<Loa> {
        let rule = self.rules.iter().find(|r| path.starts_with_segment_prefix(&r.path_prefix))?;
        let min = rule.min_loa?;
        let raised = Identity { loa: Some(min), ..identity.clone() };
        (self.authorize(path, identity) == Err(Denied::LoaTooLow) && self.authorize(path, &raised).is_ok())
            .then_some(min)
    }

    /// Applies the first rule whose prefix matches `path`; no matching rule means "any
    /// authenticated user of this app".
    pub fn authorize(&self, path: &CanonicalPath, identity: &Identity) -> Result<(), Denied> {
        let Some(rule) = self.rules.iter().find(|r| path.starts_with_segment_prefix(&r.path_prefix)) else {
            return Ok(());
        };
        if !rule.providers.is_empty() && !rule.providers.contains(&identity.provider) {
            return Err(Denied::Provider);
        }
        if !rule.any_role.is_empty() && !rule.any_role.iter().any(|r| identity.has_role(r)) {
            return Err(Denied::MissingRole);
        }
        if let Some(min) = rule.min_loa {
            if identity.loa.is_none_or(|loa| loa < min) {
                return Err(Denied::LoaTooLow);
            }
        }
        if !rule.organisations.is_empty() {
            let ico = identity.organisation.as_ref().and_then(|o| o.ico.as_deref());
            if !ico.is_some_and(|ico| rule.organisations.iter().any(|allowed| same_ico(allowed, ico))) {
                return Err(Denied::Organisation);
            }
        }
        Ok(())
    }
}

/// IČO comparison ignoring zero padding, which differs between IdPs (`00007064` vs `7064`).
fn same_ico(a: &str, b: &str) -> bool {
    a.trim_start_matches('0') == b.trim_start_matches('0')
}

/// Finds the app for a host and canonical path: host-specific apps before host-less ones,
/// then the longest path prefix.
pub fn find<'a>(apps: &'a [App], host: &str, path: &CanonicalPath) -> Option<&'a App> {
    let mut best: Option<(&App, (bool, usize))> = None;
    for app in apps {
        let host_match = if app.hosts.is_empty() {
            false
        } else if app.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            true
        } else {
            continue;
        };
        if !path.starts_with_segment_prefix(&app.path_prefix) {
            continue;
        }
        let score = (host_match, app.path_prefix.len());
        if best.as_ref().is_none_or(|(_, s)| score > *s) {
            best = Some((app, score));
        }
    }
    best.map(|(app, _)| app)
}

/// The request host without port, lower-cased.
pub fn host_without_port(host: &str) -> String {
    let host = host.trim();
    let without = if host.starts_with('[') {
        host.split_once(']').map_or(host, |(h, _)| h).trim_start_matches('[')
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    without.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Organisation;
    use std::time::Duration;

    fn app(index: usize, hosts: &[&str], prefix: &str) -> App {
        let cfg: AppConfig = toml::from_str(&format!(
            "name = \"a{index}\"\nupstream = \"http://127.0.0.1:1/base/\"\nproviders = [\"p\"]\npath_prefix = \"{prefix}\"\nhosts = {hosts:?}\n\
             [[rule]]\npath_prefix = \"/admin\"\nany_role = [\"ADMIN\", \"A1:R1\"]\nmin_loa = \"substantial\"\norganisations = [\"7064\"]\n"
        ))
        .unwrap();
        let client = crate::upstream::UpstreamClient::new(Duration::from_secs(1), Duration::from_secs(1));
        App::compile(index, &cfg, |_| Some(0), &client).unwrap()
    }

    fn path(p: &str) -> CanonicalPath {
        CanonicalPath::parse(p).unwrap()
    }

    #[test]
    fn routing_prefers_host_then_longest_prefix() {
        let apps = vec![app(0, &[], "/"), app(1, &[], "/app"), app(2, &["x.cz"], "/")];
        assert_eq!(find(&apps, "y.cz", &path("/app/z")).unwrap().index, 1);
        assert_eq!(find(&apps, "y.cz", &path("/apple")).unwrap().index, 0);
        assert_eq!(find(&apps, "x.cz", &path("/app/z")).unwrap().index, 2);
        assert_eq!(apps[0].upstream.base_path, "/base");
    }

    #[test]
    fn authorization_rules_check_role_loa_and_organisation() {
        let a = app(0, &[], "/");
        let mut id = Identity {
            provider: "p".into(),
            access_roles: vec!["ADMIN".into()],
            loa: Some(Loa::High),
            organisation: Some(Organisation { ico: Some("00007064".into()), ..Default::default() }),
            ..Identity::default()
        };
        assert_eq!(a.authorize(&path("/admin/x"), &id), Ok(()));
        assert_eq!(a.authorize(&path("/public"), &Identity::default()), Ok(()));
        id.loa = Some(Loa::Low);
        assert_eq!(a.authorize(&path("/admin"), &id), Err(Denied::LoaTooLow));
        id.loa = Some(Loa::Substantial);
        id.access_roles.clear();
        assert_eq!(a.authorize(&path("/admin"), &id), Err(Denied::MissingRole));
        id.agenda_roles.push(crate::identity::AgendaRole { agenda: "A1".into(), role: "R1".into() });
        assert_eq!(a.authorize(&path("/admin"), &id), Ok(()));
        id.organisation = None;
        assert_eq!(a.authorize(&path("/admin"), &id), Err(Denied::Organisation));
    }

    #[test]
    fn host_port_is_removed() {
        assert_eq!(host_without_port("Example.CZ:8443"), "example.cz");
        assert_eq!(host_without_port("[::1]:80"), "::1");
        assert_eq!(host_without_port("a.cz"), "a.cz");
    }
}
