//! `aisgate check --explain URL [--as IDENTITY.json]`: what the gateway would do with a request
//! for `URL`, and why — the app it routes to, the readings of the path, the rule that decides
//! each, the providers that may serve it, and the verdict for an identity (or for nobody).
//!
//! It runs the very functions the request path runs (`http::host`, `CanonicalPath`,
//! `route::find`, `App::explain`), so the answer cannot drift from the behaviour.

use std::fmt::Write as _;

use super::route::{self, Denied};
use super::{Gateway, RESERVED_PREFIX};
use crate::http::canonical_path::CanonicalPath;
use crate::http::path_forms::PathForms;
use crate::identity::Identity;

/// The outcome of an explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Served: public, or allowed for the identity.
    Allowed,
    /// Not served: refused, not routed, or a login is needed.
    Refused,
}

/// Explains a request for `url` (absolute `http(s)://host/path?query`, or a path on the
/// public base URL's host) as `identity`, or as a client without a session.
pub fn explain(gw: &Gateway, url: &str, identity: Option<&Identity>) -> (String, Verdict) {
    let mut out = String::new();
    let verdict = explain_into(gw, url, identity, &mut out);
    (out, verdict)
}

fn explain_into(gw: &Gateway, url: &str, identity: Option<&Identity>, out: &mut String) -> Verdict {
    let absolute = if url.starts_with('/') { format!("{}{url}", gw.public_base_url) } else { url.to_owned() };
    let Ok(uri) = absolute.parse::<http::Uri>() else {
        line(out, format_args!("{url:?} is not a URL: 400"));
        return Verdict::Refused;
    };
    let mut headers = http::HeaderMap::new();
    if let Err(e) = crate::http::host::normalize(http::Version::HTTP_11, &uri, &mut headers) {
        line(out, format_args!("host: {e}: 400"));
        return Verdict::Refused;
    }
    let host = super::endpoints::request_host(&headers);
    line(out, format_args!("host: {host}"));
    let path = match CanonicalPath::parse(uri.path()) {
        Ok(path) => path,
        Err(e) => {
            line(out, format_args!("path {:?}: {e}: 400", uri.path()));
            return Verdict::Refused;
        }
    };
    line(out, format_args!("canonical path (forwarded): {path}"));
    if path.as_str().starts_with(RESERVED_PREFIX) {
        line(out, format_args!("a gateway endpoint ({RESERVED_PREFIX}…): never an app's"));
        return Verdict::Refused;
    }
    let forms = PathForms::new(&path);
    let Some(app) = route::find(&gw.apps, &host, &forms) else {
        line(out, format_args!("no app serves this host and path: 404"));
        return Verdict::Refused;
    };
    let readings = app.readings(&forms);
    line(out, format_args!("app: {} (path_prefix {:?}, path_case {:?})", app.name, app.path_prefix, app.path_case));
    let all: Vec<&str> = readings.iter().collect();
    line(out, format_args!("readings (every one must pass): {all:?}"));
    if let Err(e) = app.check_path(&forms) {
        line(out, format_args!("refused for this app: {e}: 400"));
        return Verdict::Refused;
    }
    let providers: Vec<&str> = app.providers.iter().filter_map(|i| gw.providers.get(*i)).map(|p| p.name()).collect();
    line(out, format_args!("providers: {}", providers.join(", ")));
    if app.is_logout(&forms) {
        line(out, format_args!("logout path: the gateway logs the user out"));
        return Verdict::Allowed;
    }
    if app.is_public(&forms) {
        line(out, format_args!("public path: forwarded without identity (identity headers stripped)"));
        return Verdict::Allowed;
    }
    let Some(identity) = identity else {
        line(
            out,
            format_args!("no session: browsers are sent to log in ({}), API calls get 401", providers.join(", ")),
        );
        for decision in app.explain(&forms, &Identity::default()) {
            let rule = decision.rule.map_or("no rule (app default)".to_owned(), |i| describe_rule(app, i));
            line(out, format_args!("  after login, {:?} is decided by {rule}", decision.reading));
        }
        return Verdict::Refused;
    };
    if !app.accepts_provider(&gw.providers, &identity.provider) {
        line(
            out,
            format_args!("identity from provider {:?}, not one of the app's: login required (401)", identity.provider),
        );
        return Verdict::Refused;
    }
    let mut verdict = Verdict::Allowed;
    for decision in app.explain(&forms, identity) {
        let rule = decision.rule.map_or("no rule (app default)".to_owned(), |i| describe_rule(app, i));
        let result = match &decision.result {
            Ok(()) => "allowed".to_owned(),
            Err(denied) => {
                verdict = Verdict::Refused;
                format!("denied: {}", reason(denied))
            }
        };
        line(out, format_args!("{:?}: {rule}: {result}", decision.reading));
    }
    match verdict {
        Verdict::Allowed => line(out, format_args!("result: allowed, forwarded to {}", app.upstream.authority)),
        Verdict::Refused => match app.step_up_loa(&forms, identity) {
            Some(loa) => line(out, format_args!("result: step-up login to LoA {loa} (browsers), 401 for API calls")),
            None => line(out, format_args!("result: 403")),
        },
    }
    verdict
}

fn describe_rule(app: &route::App, index: usize) -> String {
    let Some(rule) = app.rules.get(index) else { return format!("rule #{}", index + 1) };
    let mut s = format!("rule #{} (path_prefix {:?}", index + 1, rule.path_prefix);
    if !rule.any_role.is_empty() {
        let _ = write!(s, ", any_role {:?}", rule.any_role);
    }
    if let Some(loa) = rule.min_loa {
        let _ = write!(s, ", min_loa {loa}");
    }
    if !rule.organisations.is_empty() {
        let _ = write!(s, ", organisations {:?}", rule.organisations);
    }
    if let Some(req) = &rule.require_roles {
        let _ = write!(s, ", require_roles crzp {:?} rpp {:?} ({:?})", req.role_crzp, req.role_rpp, req.mode);
    }
    if !rule.providers.is_empty() {
        let _ = write!(s, ", providers {:?}", rule.providers);
    }
    s.push(')');
    s
}

fn reason(denied: &Denied) -> &'static str {
    match denied {
        Denied::MissingRole => "none of the required roles",
        Denied::LoaTooLow => "level of assurance too low",
        Denied::Organisation => "organisation (IČO) not allowed",
        Denied::Provider => "provider not allowed by the rule",
        Denied::NoRule => "no rule matches and the app's default is deny",
    }
}

fn line(out: &mut String, args: std::fmt::Arguments<'_>) {
    let _ = out.write_fmt(args);
    out.push('\n');
}
