//! Routing a canonical request to an app, and the app's authorization rules.
//!
//! Routing runs on the canonical path only (see `http::canonical_path`), so routing, the
//! public-path check, authorization and the path sent upstream all agree. Where upstreams
//! read one canonical path in more than one way (`;params`, case), every decision is taken on
//! every reading (see `http::path_forms`): routing on the parameter-free reading, public only
//! if every reading is public, allowed only if every reading is allowed.

use http::uri::{Authority, Scheme};
use http::HeaderValue;

use crate::config::{AccessRule, AppConfig, DefaultAccess, Unauthenticated};
use crate::http::canonical_path::PathError;
use crate::http::path_forms::{fold_case, under_prefix, PathCase, PathForms, Readings};
use crate::identity::headers::HeaderMapping;
use crate::identity::{Identity, Loa};

/// The parsed upstream base URL.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Host and port.
    pub authority: Authority,
    /// `authority` as the `Host` value sent upstream without `preserve_host`: built once here,
    /// so a request clones a shared value instead of validating and copying the string.
    pub host: HeaderValue,
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
    /// Name shown to users (`display_name`), if configured.
    pub display_name: Option<String>,
    /// Lower-case host names (empty = any host).
    pub hosts: Vec<String>,
    /// How the upstream compares paths; the prefixes below are folded accordingly.
    pub path_case: PathCase,
    /// Canonical path prefix.
    pub path_prefix: String,
    /// Upstream.
    pub upstream: Upstream,
    /// Indices into the gateway's provider list.
    pub providers: Vec<usize>,
    /// Base URL of this app's login callbacks, if it has its own (`public_base_url`).
    pub public_base_url: Option<String>,
    /// The provider of each host (`providers_by_host`: lower-case host, provider index).
    pub providers_by_host: Vec<(String, usize)>,
    /// Logins on another host than the callback host are handed over (`central_login`).
    pub central_login: bool,
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
    /// Authorization rules in config order: path rules, and operation rules (`operation`
    /// set), which only `api::authorize` applies.
    pub rules: Vec<AccessRule>,
    /// `[app.authorize]`, compiled.
    pub authorize: Option<crate::api::authorize::AppAuthorize>,
    /// What a path no rule matches gets.
    pub default_access: DefaultAccess,
    /// Lower-case protocol names clients may upgrade to (`upgrade_protocols`).
    pub upgrade_protocols: Vec<String>,
    /// Account links for CAAIS logins (`[[app]] account_link`).
    pub account_link: crate::links::AccountLink,
    /// API mode (`auth`, `[[app.api]]`): paths authenticated by a header; `None` when every
    /// path uses the browser session. Set by `Gateway::build`, which holds the providers.
    pub api: Option<crate::api::ApiApp>,
}

/// Why access was denied (operator log; the user sees a generic 403 page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No required role.
    MissingRole,
    /// LoA too low.
    LoaTooLow,
    /// Organisation not allowed.
    Organisation,
    /// Provider not allowed for this path.
    Provider,
    /// No rule matches and the app's `default` is `deny`.
    NoRule,
}

impl Denied {
    /// The bounded label of the audit event's `denied`.
    pub fn label(&self) -> &'static str {
        match self {
            Denied::MissingRole => "missing_role",
            Denied::LoaTooLow => "loa_too_low",
            Denied::Organisation => "organisation",
            Denied::Provider => "provider",
            Denied::NoRule => "no_rule",
        }
    }
}

/// How one reading of a path was decided (`aisgate check --explain`).
#[derive(Debug, PartialEq, Eq)]
pub struct ReadingDecision<'a> {
    /// The reading (case-folded for insensitive apps).
    pub reading: &'a str,
    /// Index of the deciding `[[app.rule]]`, if one matched.
    pub rule: Option<usize>,
    /// The decision.
    pub result: Result<(), Denied>,
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
        let host = HeaderValue::from_maybe_shared(bytes::Bytes::copy_from_slice(authority.as_str().as_bytes()))
            .map_err(|e| format!("upstream authority as Host: {e}"))?;
        let headers = HeaderMapping::compile(&cfg.headers).map_err(|e| e.to_string())?;
        let providers = cfg
            .providers
            .iter()
            .map(|p| provider_index(p).ok_or_else(|| format!("unknown provider {p:?}")))
            .collect::<Result<_, _>>()?;
        let providers_by_host = cfg
            .providers_by_host
            .iter()
            .map(|(h, p)| {
                provider_index(p).map(|i| (h.to_ascii_lowercase(), i)).ok_or_else(|| format!("unknown provider {p:?}"))
            })
            .collect::<Result<_, _>>()?;
        // Insensitive apps compare folded readings with folded prefixes.
        let fold = |p: &String| match cfg.path_case {
            PathCase::Sensitive => p.clone(),
            PathCase::Insensitive => fold_case(p).into_owned(),
        };
        let compiled = |r: &AccessRule| AccessRule {
            path_prefix: fold(&r.path_prefix),
            require_roles: r.require_roles.as_ref().map(|q| q.normalized()),
            ..r.clone()
        };
        let rules = cfg.rule.iter().map(compiled).collect();
        let authorize = cfg.authorize.as_ref().map(crate::api::authorize::AppAuthorize::compile).transpose()?;
        Ok(App {
            index,
            name: cfg.name.clone(),
            display_name: cfg.display_name.clone().filter(|n| !n.trim().is_empty()),
            hosts: cfg.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
            path_case: cfg.path_case,
            path_prefix: fold(&cfg.path_prefix),
            upstream: Upstream {
                scheme,
                authority,
                host,
                base_path: url.path().trim_end_matches('/').to_owned(),
                trust,
            },
            providers,
            public_base_url: cfg.public_base_url.as_ref().map(|b| b.trim_end_matches('/').to_owned()),
            providers_by_host,
            central_login: cfg.central_login,
            public_paths: cfg.public_paths.iter().map(fold).collect(),
            logout_paths: cfg.logout_paths.iter().map(fold).collect(),
            unauthenticated: cfg.unauthenticated,
            preserve_host: cfg.preserve_host,
            forward_gateway_cookies: cfg.forward_gateway_cookies,
            upstream_bearer: cfg.upstream_bearer,
            headers,
            rules,
            authorize,
            default_access: cfg.default_access,
            upgrade_protocols: cfg
                .upgrade_protocols
                .iter()
                .map(|p| p.split('/').next().unwrap_or("").to_ascii_lowercase())
                .collect(),
            account_link: cfg.account_link,
            api: None,
        })
    }

    /// What the user's pages call this app: its `display_name`, else `host` (the request's)
    /// followed by the path prefix, e.g. `intranet.example.cz/desk/` — never the internal
    /// `name`, which is a metrics label.
    pub fn user_label(&self, host: &str) -> String {
        match &self.display_name {
            Some(name) => name.clone(),
            None => format!("{host}{}", self.path_prefix),
        }
    }

    /// The readings of `forms` under this app's path comparison.
    pub fn readings<'f>(&self, forms: &'f PathForms<'_>) -> Readings<'f> {
        forms.readings(self.path_case)
    }

    /// Refuses paths this app's upstream would read as another name (insensitive apps:
    /// Windows aliases). Called once the request is routed here.
    pub fn check_path(&self, forms: &PathForms<'_>) -> Result<(), PathError> {
        match self.path_case {
            PathCase::Sensitive => Ok(()),
            PathCase::Insensitive => forms.check_insensitive(),
        }
    }

    /// The providers a login on `host` may use: the host's own with `providers_by_host`,
    /// else all of the app's.
    pub fn providers_on(&self, host: &str) -> Vec<usize> {
        match self.providers_by_host.iter().find(|(h, _)| h.eq_ignore_ascii_case(host)) {
            Some((_, index)) => vec![*index],
            None => self.providers.clone(),
        }
    }

    /// Whether the app names `host` among its hosts (an app without hosts answers any host,
    /// but names none).
    pub fn names_host(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// Whether the session's provider (by name) is one of this app's: a session is served only
    /// to apps that list the provider it was made by.
    pub fn accepts_provider(&self, providers: &[std::sync::Arc<dyn crate::provider::Provider>], name: &str) -> bool {
        self.providers.iter().any(|i| providers.get(*i).is_some_and(|p| p.name() == name))
    }

    /// Whether `path` is public (no session needed): **every** reading must lie under a public
    /// path, so `/public;x/admin` is not public for an upstream that reads `public;x` literally.
    pub fn is_public(&self, forms: &PathForms<'_>) -> bool {
        self.readings(forms).iter().all(|r| self.public_paths.iter().any(|p| under_prefix(r, p)))
    }

    /// Whether `path` is one of the app's logout URLs (any reading).
    pub fn is_logout(&self, forms: &PathForms<'_>) -> bool {
        self.readings(forms).iter().any(|r| self.logout_paths.iter().any(|p| under_prefix(r, p)))
    }

    /// The LoA `identity` would need for `path`, when that is the only thing standing in the
    /// way (the rules' other conditions hold for every reading): a step-up login can then help.
    pub fn step_up_loa(&self, forms: &PathForms<'_>, identity: &Identity) -> Option<Loa> {
        let min = self.readings(forms).iter().filter_map(|r| self.rule_for(r)).filter_map(|(_, r)| r.min_loa).max()?;
        let raised = Identity { loa: Some(min), ..identity.clone() };
        (self.authorize(forms, identity).is_err() && self.authorize(forms, &raised).is_ok()).then_some(min)
    }

    /// Authorizes `identity` for every reading of the path: on each, the first rule whose
    /// prefix matches decides; no matching rule means the app's `default` (allow: any
    /// authenticated user of this app).
    pub fn authorize(&self, forms: &PathForms<'_>, identity: &Identity) -> Result<(), Denied> {
        self.readings(forms).iter().try_for_each(|r| self.decide(r, identity).1)
    }

    /// [`App::authorize`] naming the deciding `[[app.rule]]` (its index in the app, `None`
    /// when no rule matched and the app's default denied) of the first refusing reading, for
    /// the audit event.
    pub fn authorize_rule(&self, forms: &PathForms<'_>, identity: &Identity) -> Result<(), (Option<usize>, Denied)> {
        self.readings(forms).iter().try_for_each(|r| {
            let (rule, result) = self.decide(r, identity);
            result.map_err(|denied| (rule, denied))
        })
    }

    /// Every reading with its deciding rule and result (`check --explain`).
    pub fn explain<'f>(&self, forms: &'f PathForms<'_>, identity: &Identity) -> Vec<ReadingDecision<'f>> {
        self.readings(forms)
            .iter()
            .map(|reading| {
                let (rule, result) = self.decide(reading, identity);
                ReadingDecision { reading, rule, result }
            })
            .collect()
    }

    /// `[app.authorize]`, if configured.
    pub fn authorize_config(&self) -> Option<&crate::api::authorize::AppAuthorize> {
        self.authorize.as_ref()
    }

    /// Whether any rule names a SOAP operation.
    pub fn has_operation_rules(&self) -> bool {
        self.rules.iter().any(|r| r.operation.is_some())
    }

    /// Whether requests need the operation hook (`api::authorize`): the body is then buffered.
    pub fn authorizes_operations(&self) -> bool {
        self.authorize.is_some() || self.has_operation_rules()
    }

    /// Operation rules for every (path reading, operation name) pair: the first rule naming
    /// the operation whose prefix covers the reading decides; a pair no operation rule covers
    /// was decided by the path rules alone.
    pub fn authorize_operation(
        &self,
        forms: &PathForms<'_>,
        operations: &[&str],
        identity: &Identity,
    ) -> Result<(), Denied> {
        for reading in self.readings(forms).iter() {
            for op in operations {
                let rule = self
                    .rules
                    .iter()
                    .find(|r| r.operation.as_deref() == Some(op) && under_prefix(reading, &r.path_prefix));
                if let Some(rule) = rule {
                    check_rule(rule, identity)?;
                }
            }
        }
        Ok(())
    }

    fn rule_for(&self, reading: &str) -> Option<(usize, &AccessRule)> {
        self.rules.iter().enumerate().find(|(_, r)| r.operation.is_none() && under_prefix(reading, &r.path_prefix))
    }

    fn decide(&self, reading: &str, identity: &Identity) -> (Option<usize>, Result<(), Denied>) {
        match self.rule_for(reading) {
            Some((index, rule)) => (Some(index), check_rule(rule, identity)),
            None if self.default_access == DefaultAccess::Deny => (None, Err(Denied::NoRule)),
            None => (None, Ok(())),
        }
    }
}

fn check_rule(rule: &AccessRule, identity: &Identity) -> Result<(), Denied> {
    if !rule.providers.is_empty() && !rule.providers.contains(&identity.provider) {
        return Err(Denied::Provider);
    }
    if !rule.any_role.is_empty() && !rule.any_role.iter().any(|r| identity.has_role(r)) {
        return Err(Denied::MissingRole);
    }
    if rule.require_roles.as_ref().is_some_and(|r| r.check(identity).is_err()) {
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

/// IČO comparison ignoring zero padding, which differs between IdPs (`00007064` vs `7064`).
pub(crate) fn same_ico(a: &str, b: &str) -> bool {
    a.trim_start_matches('0') == b.trim_start_matches('0')
}

/// Finds the app for a host and path: host-specific apps before host-less ones, then the
/// longest path prefix, matched on the parameter-free reading under each app's comparison
/// (`/api;x/y` is routed as `/api/y`, where a parameter-stripping upstream would serve it).
pub fn find<'a>(apps: &'a [App], host: &str, forms: &PathForms<'_>) -> Option<&'a App> {
    let mut best: Option<(&App, (bool, usize))> = None;
    for app in apps {
        let host_match = if app.hosts.is_empty() {
            false
        } else if app.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            true
        } else {
            continue;
        };
        if !under_prefix(app.readings(forms).routing(), &app.path_prefix) {
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
        app_with(index, hosts, prefix, "")
    }

    fn app_with(index: usize, hosts: &[&str], prefix: &str, extra: &str) -> App {
        let cfg: AppConfig = toml::from_str(&format!(
            "name = \"a{index}\"\nupstream = \"http://127.0.0.1:1/base/\"\nproviders = [\"p\"]\npath_prefix = \"{prefix}\"\nhosts = {hosts:?}\n{extra}\n\
             [[rule]]\npath_prefix = \"/admin\"\nany_role = [\"ADMIN\", \"A1:R1\"]\nmin_loa = \"substantial\"\norganisations = [\"7064\"]\n"
        ))
        .unwrap();
        let client = crate::upstream::UpstreamClient::new(Duration::from_secs(1), Duration::from_secs(1));
        App::compile(index, &cfg, |_| Some(0), &client).unwrap()
    }

    fn path(p: &str) -> PathForms<'static> {
        PathForms::new(Box::leak(Box::new(crate::http::canonical_path::CanonicalPath::parse(p).unwrap())))
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
            organisation: Some(Box::new(Organisation { ico: Some("00007064".into()), ..Default::default() })),
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
    fn a_refusal_names_the_deciding_rule_or_none_for_the_default() {
        let user = Identity { provider: "p".into(), loa: Some(Loa::High), ..Identity::default() };
        let a = app_with(0, &[], "/", "");
        assert_eq!(a.authorize_rule(&path("/admin/x"), &user), Err((Some(0), Denied::MissingRole)));
        assert_eq!(a.authorize_rule(&path("/other"), &user), Ok(()));
        let deny = app_with(1, &[], "/", "default = \"deny\"");
        assert_eq!(deny.authorize_rule(&path("/other"), &user), Err((None, Denied::NoRule)));
        assert_eq!(Denied::NoRule.label(), "no_rule");
        assert_eq!(Denied::MissingRole.label(), "missing_role");
    }

    fn admin() -> Identity {
        Identity {
            provider: "p".into(),
            access_roles: vec!["ADMIN".into()],
            loa: Some(Loa::High),
            organisation: Some(Box::new(Organisation { ico: Some("7064".into()), ..Default::default() })),
            ..Identity::default()
        }
    }

    #[test]
    fn path_parameters_do_not_escape_a_rule() {
        // Issue 9 item 2: Tomcat serves `/admin;x/secret` as `/admin/secret`.
        let a = app(0, &[], "/");
        let user = Identity { provider: "p".into(), ..Identity::default() };
        for p in ["/admin/secret", "/admin;x/secret", "/;x/admin/secret", "/admin;", "/admin;jsessionid=1/x"] {
            assert_eq!(a.authorize(&path(p), &user), Err(Denied::MissingRole), "{p}");
            assert_eq!(a.authorize(&path(p), &admin()), Ok(()), "{p}");
        }
    }

    #[test]
    fn path_parameters_route_like_the_upstream_reads_them() {
        let apps = vec![app(0, &[], "/"), app(1, &[], "/api")];
        assert_eq!(find(&apps, "x", &path("/api;x/y")).unwrap().index, 1);
        assert_eq!(find(&apps, "x", &path("/;x/api/y")).unwrap().index, 1);
        assert_eq!(find(&apps, "x", &path("/api;x")).unwrap().index, 1);
    }

    #[test]
    fn public_only_when_every_reading_is_public() {
        let a = app_with(0, &[], "/", "public_paths = [\"/public\"]\nlogout_paths = [\"/logout\"]");
        assert!(a.is_public(&path("/public/x")));
        assert!(a.is_public(&path("/public/x.jsp;jsessionid=1")));
        assert!(!a.is_public(&path("/public;x/y")));
        assert!(a.is_logout(&path("/logout;x")));
    }

    #[test]
    fn insensitive_apps_match_rules_case_insensitively() {
        // Issue 9 item 3: `/ADMIN` is `/admin` on IIS.
        let sensitive = app(0, &[], "/");
        let insensitive = app_with(1, &[], "/", "path_case = \"insensitive\"");
        let user = Identity { provider: "p".into(), ..Identity::default() };
        for p in ["/ADMIN/x", "/Admin", "/adm%C4%B1n/x", "/ADMIN;x/y"] {
            assert_eq!(insensitive.authorize(&path(p), &user), Err(Denied::MissingRole), "{p}");
        }
        assert_eq!(sensitive.authorize(&path("/ADMIN/x"), &user), Ok(()));
        let apps = vec![app(0, &[], "/"), app_with(1, &[], "/Api", "path_case = \"insensitive\"")];
        assert_eq!(find(&apps, "x", &path("/API/x")).unwrap().index, 1);
        assert_eq!(insensitive.check_path(&path("/admin.")), Err(PathError::WindowsAlias));
        assert_eq!(sensitive.check_path(&path("/admin.")), Ok(()));
    }

    #[test]
    fn default_deny_refuses_paths_no_rule_covers() {
        let deny = app_with(0, &[], "/", "default = \"deny\"");
        assert_eq!(deny.authorize(&path("/other"), &admin()), Err(Denied::NoRule));
        assert_eq!(deny.authorize(&path("/admin/x"), &admin()), Ok(()));
        assert_eq!(app(1, &[], "/").authorize(&path("/other"), &admin()), Ok(()));
        let forms = path("/admin;x/y");
        let explained = deny.explain(&forms, &admin());
        // The literal reading (`admin;x` is not `admin` to a literal upstream) has no rule:
        // denied, so the path is; `;jsessionid` on a last segment is fine.
        let decided: Vec<_> = explained.iter().map(|d| (d.reading, d.rule, d.result.clone())).collect();
        assert_eq!(decided, vec![("/admin;x/y", None, Err(Denied::NoRule)), ("/admin/y", Some(0), Ok(()))]);
        assert_eq!(deny.authorize(&path("/admin/a.jsp;jsessionid=1"), &admin()), Ok(()));
    }

    fn enviam(crzp: &str, rpp: &str) -> Identity {
        let mut id = Identity { provider: "p".into(), ..Identity::default() };
        id.attributes.insert("role_crzp".into(), vec![crzp.into()]);
        id.attributes.insert("role_rpp".into(), vec![rpp.into()]);
        id
    }

    #[test]
    fn require_roles_on_path_rules_and_operation_rules_on_every_operation_reading() {
        let a = app_with(
            0,
            &[],
            "/",
            "[[rule]]\npath_prefix = \"/svc\"\noperation = \"Poskytni\"\nrequire_roles = { role_crzp = [\"C110:C206\"] }\n\
             [[rule]]\npath_prefix = \"/svc\"\noperation = \"Prijmi\"\nrequire_roles = { role_rpp = [\"A100:A001\", \"A101:A002\"], match = \"all\" }\n\
             [[rule]]\npath_prefix = \"/svc\"\nrequire_roles = { role_cizp = [\"C100\"] }\n",
        );
        // The `/admin` rule of `app_with` comes first and still decides `/admin`.
        assert_eq!(a.rules.len(), 4);
        assert!(a.has_operation_rules());
        let both = enviam("C100, C110:C206", "A100:A001,A101:A002");
        let crzp_only = enviam("C100,C110:C206", "A100:A001");
        let no_pair = enviam("C100,C110,C206", "");
        // Path rule: `role_cizp` key is the CRŽP claim.
        assert_eq!(a.authorize(&path("/svc/x"), &no_pair), Ok(()));
        assert_eq!(a.authorize(&path("/svc/x"), &enviam("C101", "")), Err(Denied::MissingRole));
        // Operation rules: the pair must be held whole; `all` needs every RPP role.
        assert_eq!(a.authorize_operation(&path("/svc/x"), &["Poskytni"], &no_pair), Err(Denied::MissingRole));
        assert_eq!(a.authorize_operation(&path("/svc/x"), &["Poskytni"], &crzp_only), Ok(()));
        assert_eq!(a.authorize_operation(&path("/svc/x"), &["Prijmi"], &crzp_only), Err(Denied::MissingRole));
        assert_eq!(a.authorize_operation(&path("/svc/x"), &["Prijmi"], &both), Ok(()));
        // Body element says one operation, SOAPAction another: both rules must hold.
        assert_eq!(
            a.authorize_operation(&path("/svc/x"), &["Poskytni", "Prijmi"], &crzp_only),
            Err(Denied::MissingRole)
        );
        assert_eq!(a.authorize_operation(&path("/svc/x"), &["Prijmi", "Poskytni"], &both), Ok(()));
        // Operations no rule names, and paths outside the rules' prefix, are left to the path rules.
        assert_eq!(a.authorize_operation(&path("/svc/x"), &["Jina"], &no_pair), Ok(()));
        assert_eq!(a.authorize_operation(&path("/other"), &["Poskytni"], &no_pair), Ok(()));
    }

    #[test]
    fn host_port_is_removed() {
        assert_eq!(host_without_port("Example.CZ:8443"), "example.cz");
        assert_eq!(host_without_port("[::1]:80"), "::1");
        assert_eq!(host_without_port("a.cz"), "a.cz");
    }
}
