//! Where the logins of an app complete (issue 12 items 6 and 7): the callback base URL of a
//! login started on a host, and the checks that refuse a configuration in which a login
//! cannot complete.
//!
//! The pre-login cookie is host-only: it comes back only to the host that set it. A login
//! started on the app's host `H` therefore completes only where the IdP returns the browser
//! to `H` itself — or, with `central_login`, on the callback host `L`, which then hands the
//! finished login to `H` (`gateway::handoff`). The callback base of a login into an app:
//!
//! 1. with `providers_by_host`, the request's own host (scheme and port of the app's or the
//!    server's `public_base_url`): each host has its own IdP registration;
//! 2. else the app's `public_base_url`;
//! 3. else `[server] public_base_url`.
//!
//! The same rule serves `check` (here), the gateway at run time and the URLs `check` prints
//! to register, so they cannot disagree.

use std::collections::BTreeMap;

use super::{AppConfig, Config, ProviderConfig, SourceLoc};

/// A base URL (`http(s)://host[:port]`, no path, query or fragment), parsed; `None` if it is
/// anything else.
pub fn parse_base(base: &str) -> Option<url::Url> {
    let u = url::Url::parse(base).ok()?;
    let plain = matches!(u.scheme(), "http" | "https")
        && u.host_str().is_some()
        && u.path() == "/"
        && u.query().is_none()
        && u.fragment().is_none()
        && u.username().is_empty()
        && u.password().is_none();
    plain.then_some(u)
}

/// The lower-case host of a base URL (empty if it has none).
pub fn host_of(base: &str) -> String {
    url::Url::parse(base).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase)).unwrap_or_default()
}

/// `base` with its host replaced by `host`; scheme and port stay. Without trailing slash.
pub fn with_host(base: &str, host: &str) -> String {
    match url::Url::parse(base) {
        Ok(u) => {
            let port = u.port().map_or(String::new(), |p| format!(":{p}"));
            format!("{}://{host}{port}", u.scheme())
        }
        Err(_) => base.trim_end_matches('/').to_owned(),
    }
}

/// The callback base URL (without trailing slash) of a login into an app started on `host`
/// (`None`: the app answers any host): see the module documentation.
pub fn login_base(server_base: &str, app_base: Option<&str>, by_host: bool, host: Option<&str>) -> String {
    let base = app_base.unwrap_or(server_base).trim_end_matches('/');
    match host {
        Some(host) if by_host => with_host(base, host),
        _ => base.to_owned(),
    }
}

/// Whether browsers would drop the gateway's `Secure` cookies at `base`: plain http on a host
/// other than the loopback names, while `cookie_secure` is on.
pub fn drops_secure_cookies(base: &url::Url, cookie_secure: bool) -> bool {
    let local = matches!(base.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    cookie_secure && base.scheme() == "http" && !local
}

/// One way a login into an app can start: on `host` (`None`: any host), at `provider`,
/// completing at `base`.
struct LoginRoute<'a> {
    host: Option<&'a str>,
    provider: &'a str,
    base: String,
}

/// Every (host, provider) a login into `app` can start with, and where it completes.
fn routes<'a>(server_base: &str, app: &'a AppConfig) -> Vec<LoginRoute<'a>> {
    let by_host = !app.providers_by_host.is_empty();
    let hosts: Vec<Option<&str>> =
        if app.hosts.is_empty() { vec![None] } else { app.hosts.iter().map(|h| Some(h.as_str())).collect() };
    let mut out = Vec::new();
    for host in hosts {
        // Hosts compare in lower case (as the gateway routes them).
        let lower = host.map(str::to_ascii_lowercase);
        let base = login_base(server_base, app.public_base_url.as_deref(), by_host, lower.as_deref());
        let chosen = host.and_then(|h| provider_for_host(app, h));
        let providers: Vec<&str> = match chosen {
            Some(p) if by_host => vec![p],
            _ => app.providers.iter().map(String::as_str).collect(),
        };
        for provider in providers {
            out.push(LoginRoute { host, provider, base: base.clone() });
        }
    }
    out
}

/// The provider `providers_by_host` names for `host` (any case).
pub fn provider_for_host<'a>(app: &'a AppConfig, host: &str) -> Option<&'a str> {
    app.providers_by_host.iter().find(|(h, _)| h.eq_ignore_ascii_case(host)).map(|(_, p)| p.as_str())
}

/// Every base URL at which each provider receives its callbacks, deduplicated, in the order
/// the apps use them; a provider no app uses has `[server] public_base_url` only.
pub fn provider_bases(config: &Config) -> BTreeMap<String, Vec<String>> {
    let server_base = config.server.public_base_url.trim_end_matches('/');
    let mut bases: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for app in &config.app {
        for route in routes(server_base, app) {
            let list = bases.entry(route.provider.to_owned()).or_default();
            if !list.contains(&route.base) {
                list.push(route.base);
            }
        }
    }
    for p in &config.provider {
        bases.entry(p.name().to_owned()).or_insert_with(|| vec![server_base.to_owned()]);
    }
    bases
}

/// The checks of apps on several hosts; each problem goes to `at`.
pub(super) fn check(config: &Config, at: &mut impl FnMut(&SourceLoc, String)) {
    let server_base = config.server.public_base_url.trim_end_matches('/');
    for app in &config.app {
        let name = &app.name;
        if let Some(base) = &app.public_base_url {
            match parse_base(base) {
                None => at(
                    &app.loc,
                    format!("app {name:?}: public_base_url {base:?} must be an absolute http(s) URL without path or query"),
                ),
                Some(u) if drops_secure_cookies(&u, config.session.cookie_secure) => at(
                    &app.loc,
                    format!("app {name:?}: public_base_url {base:?} is plain http but [session] cookie_secure = true: browsers drop Secure cookies there, so no login can succeed"),
                ),
                Some(_) => {}
            }
        }
        check_providers_by_host(app, at);
        // An app whose every path is public never sends anyone to a login.
        let all_public = app.public_paths.iter().any(|p| {
            p == "/"
                || app.path_prefix.strip_prefix(p.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        });
        // Nor does an API app (every path authenticates by header: never a login redirect).
        let session = crate::api::config::AuthMethod::Session;
        let api_only =
            !app.auth.methods().contains(&session) && !app.api.iter().any(|a| a.auth.methods().contains(&session));
        if all_public || api_only {
            continue;
        }
        for route in routes(server_base, app) {
            let Some(host) = route.host else { continue };
            let callback_host = host_of(&route.base);
            if callback_host.eq_ignore_ascii_case(host) || app.central_login {
                continue;
            }
            let (base, provider) = (&route.base, route.provider);
            let own = with_host(base, host);
            at(
                &app.loc,
                format!(
                    "app {name:?}: a login on host {host:?} returns from provider {provider:?} to {base}, but the browser's pre-login cookie belongs to {host:?} and is never sent to {callback_host:?}, so no login can complete: set central_login = true (the login completes on {callback_host:?} and is handed to {host:?}), or public_base_url = \"{own}\" if the IdP has a registration for that host"
                ),
            );
        }
    }
    // SAML (one entity ID and ACS) and JIP/KAAS (one return URL) registrations return to one
    // fixed URL: one base only. OpenID Connect registrations may list several redirect URIs.
    let bases = provider_bases(config);
    for provider in &config.provider {
        let what = match &provider.value {
            ProviderConfig::Saml(_) => "assertion consumer service URL",
            ProviderConfig::Kaas(_) => "return URL",
            ProviderConfig::Oidc(_) => continue,
        };
        let Some(list) = bases.get(provider.name()).filter(|l| l.len() > 1) else { continue };
        at(
            &provider.loc,
            format!(
                "provider {:?} (kind {}) has one registered {what}, but apps log in with it at {}: define one [[provider]] per host, each with its own registration (CAAIS allows one domain per configuration)",
                provider.name(),
                provider.kind(),
                list.join(" and ")
            ),
        );
    }
}

fn check_providers_by_host(app: &super::Located<AppConfig>, at: &mut impl FnMut(&SourceLoc, String)) {
    let name = &app.name;
    if app.providers_by_host.is_empty() {
        return;
    }
    if app.hosts.is_empty() {
        at(&app.loc, format!("app {name:?}: providers_by_host needs the app's hosts"));
    }
    for (host, provider) in &app.providers_by_host {
        if !app.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            at(&app.loc, format!("app {name:?}: providers_by_host names host {host:?}, which is not in hosts"));
        }
        if !app.providers.contains(provider) {
            at(
                &app.loc,
                format!("app {name:?}: providers_by_host names provider {provider:?}, which is not in providers"),
            );
        }
    }
    for host in &app.hosts {
        if provider_for_host(app, host).is_none() {
            at(&app.loc, format!("app {name:?}: host {host:?} has no entry in providers_by_host"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callback_base_follows_the_host_only_with_providers_by_host() {
        let server = "https://portal.example.cz";
        assert_eq!(login_base(server, None, false, Some("app.example.cz")), server);
        assert_eq!(login_base(server, Some("https://app.example.cz/"), false, None), "https://app.example.cz");
        assert_eq!(login_base("https://portal.example.cz:8443/", None, true, Some("ais.cms")), "https://ais.cms:8443");
    }

    fn problems(apps: &str) -> Vec<String> {
        let text = format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\npublic_base_url = \"https://portal.example.cz\"\n\
             [session]\nkeys = [{{ id = \"k\", env = \"K\" }}]\n\
             [[provider]]\nname = \"caais\"\nkind = \"oidc\"\npreset = \"caais-oidc-test\"\nclient_id = \"X\"\nclient_cert = \"c.pem\"\nclient_key = \"c.key\"\n\
             [[provider]]\nname = \"cms\"\nkind = \"oidc\"\npreset = \"caais-oidc-cms\"\nclient_id = \"Y\"\nclient_cert = \"c.pem\"\nclient_key = \"c.key\"\n{apps}"
        );
        let config: Config = toml::from_str(&text).unwrap();
        let mut found = Vec::new();
        check(&config, &mut |_: &SourceLoc, m: String| found.push(m));
        found
    }

    #[test]
    fn only_an_app_whose_logins_cannot_complete_is_refused() {
        let app = |extra: &str| {
            format!("[[app]]\nname = \"a\"\nhosts = [\"a.example.cz\"]\nupstream = \"http://u\"\nproviders = [\"caais\"]\n{extra}\n")
        };
        assert_eq!(problems(&app("")).len(), 1, "another host, no remedy");
        assert!(problems(&app("central_login = true")).is_empty());
        assert!(problems(&app("public_base_url = \"https://a.example.cz\"")).is_empty());
        // Every path public: nobody is ever sent to a login.
        assert!(problems(&app("public_paths = [\"/\"]")).is_empty());
        // An API app never sends anyone to a login.
        assert!(problems(&app("auth = \"bearer\"\n[app.bearer]\nprovider = \"caais\"")).is_empty());
        // On public_base_url's own host: nothing to do.
        assert!(problems(&app("").replace("a.example.cz", "portal.example.cz")).is_empty());
        // An own base on a host the app does not answer for is the same problem.
        assert_eq!(problems(&app("public_base_url = \"https://b.example.cz\"")).len(), 1);
        // Plain http for an own base while cookies are Secure.
        let plain = problems(&app("public_base_url = \"http://a.example.cz\""));
        assert!(plain.iter().any(|p| p.contains("plain http")), "{plain:?}");
    }

    #[test]
    fn providers_by_host_keeps_each_login_on_its_host() {
        let app = "[[app]]\nname = \"ais\"\nhosts = [\"ais.cms2.cz\", \"ais.gov.cz\"]\nupstream = \"http://u\"\n\
                   providers = [\"caais\", \"cms\"]\nproviders_by_host = { \"ais.cms2.cz\" = \"cms\", \"AIS.gov.cz\" = \"caais\" }\n";
        assert!(problems(app).is_empty(), "{:?}", problems(app));
        let text = format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\npublic_base_url = \"https://portal.example.cz:8443\"\n[session]\nkeys = []\n{app}"
        );
        let config: Config = toml::from_str(&text).unwrap();
        let bases = provider_bases(&config);
        assert_eq!(bases["cms"], ["https://ais.cms2.cz:8443"]);
        assert_eq!(bases["caais"], ["https://ais.gov.cz:8443"]);
    }

    #[test]
    fn a_base_url_is_an_origin_only() {
        assert!(parse_base("https://a.example.cz").is_some());
        assert!(parse_base("http://a.example.cz:8080/").is_some());
        for bad in ["https://a.example.cz/x", "https://a.example.cz/?q", "ftp://a", "https://u@a.example.cz", "a.cz"] {
            assert!(parse_base(bad).is_none(), "{bad}");
        }
    }
}
