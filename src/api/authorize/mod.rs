//! Authorization after authentication: role rules per path and SOAP operation, and the IČO
//! check by the subject authorizer (enviam.md §6, §12.4; README "Authorizer contract").
//!
//! [`authorize`] is the hook every authenticated API request passes after
//! [`ApiApp::authenticate`](super::ApiApp::authenticate) established the user, before the
//! identity headers are added and the request goes upstream; browser requests to apps that
//! authorize operations pass [`check`] after the session check. Refusals of API requests use
//! [`super::fault::error_response`], so SOAP paths get a SOAP Fault in the request's version.
//! It
//! 1. applies the app's path rules (`[[app.rule]]` without `operation`);
//! 2. for apps with `[app.authorize]` or operation rules, buffers the body (at most
//!    `max_body_bytes`, 413 beyond), reads the SOAP operation and, where configured, the IČO;
//! 3. applies operation rules (`[[app.rule]] operation = "…"`) on every reading of the
//!    operation (action and body element: a stack dispatches on either);
//! 4. asks the subject authorizer whether the user may act for that IČO, unless every reading
//!    of the operation is exempt (`exempt_operations`);
//! 5. adds `X-Auth-Subject-Ico`, `X-Auth-Subject-Roles` and `X-Auth-Operation` and hands back
//!    the request with the buffered bytes, unchanged, as its body.
//!
//! Every failure refuses the request: nothing is forwarded without a decision.

pub mod client;
pub mod config;
pub mod roles;
pub mod soap;

use axum::body::Body;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;

pub use self::client::{Authorizer, AuthorizerError, Question, Verdict};
use self::config::AppAuthorizeConfig;
use self::soap::{BodyView, SoapError};
use super::{ApiIdentity, SoapVersion};
use crate::gateway::request::RequestInfo;
use crate::gateway::route::{App, Denied};
use crate::gateway::Gateway;
use crate::http::path_forms::PathForms;
use crate::identity::Identity;

/// Header carrying the IČO the authorizer allowed (8 digits).
pub const ICO_HEADER: &str = "x-auth-subject-ico";
/// Header carrying the roles the authorizer returned for that IČO, comma-separated.
pub const SUBJECT_ROLES_HEADER: &str = "x-auth-subject-roles";
/// Header carrying the operation name that was authorized.
pub const OPERATION_HEADER: &str = "x-auth-operation";

/// `[app.authorize]`, compiled.
#[derive(Clone, Debug)]
pub struct AppAuthorize {
    max_body_bytes: usize,
    ico_check: bool,
    default_path: Option<Vec<String>>,
    paths: Vec<(String, Vec<String>)>,
    exempt: Vec<String>,
}

fn split_path(path: &str) -> Result<Vec<String>, String> {
    let parts: Vec<String> = path.split('/').map(str::trim).map(str::to_owned).collect();
    if parts.iter().any(String::is_empty) || parts.len() > soap::MAX_DEPTH {
        return Err(format!("ico_path {path:?}: local names separated by '/', none empty"));
    }
    Ok(parts)
}

impl AppAuthorize {
    /// Compiles the app's table.
    pub fn compile(cfg: &AppAuthorizeConfig) -> Result<AppAuthorize, String> {
        if cfg.max_body_bytes == 0 {
            return Err("authorize.max_body_bytes must be positive".into());
        }
        let paths = cfg
            .operation
            .iter()
            .map(|op| Ok((op.name.clone(), split_path(&op.ico_path)?)))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(AppAuthorize {
            max_body_bytes: cfg.max_body_bytes,
            ico_check: cfg.ico_check,
            default_path: cfg.ico_path.as_deref().map(split_path).transpose()?,
            paths,
            exempt: cfg.exempt_operations.clone(),
        })
    }

    fn path_for(&self, operation: &str) -> Option<&[String]> {
        self.paths
            .iter()
            .find(|(name, _)| name == operation)
            .map(|(_, p)| p.as_slice())
            .or(self.default_path.as_deref())
    }

    /// Whether the IČO check is skipped: only when every reading of the operation is exempt
    /// (a body element `PrijmiData` under the action `PoskytniData` is checked).
    fn is_exempt(&self, names: &[&str]) -> bool {
        !names.is_empty() && names.iter().all(|n| self.exempt.iter().any(|e| e == n))
    }

    /// Whether the IČO check needs the `[authorizer]`.
    pub fn needs_authorizer(&self) -> bool {
        self.ico_check
    }
}

/// Cross-field problems of one app's authorization settings (for `aisgate check`).
pub fn check_app(app: &crate::config::AppConfig, authorizer: Option<&config::AuthorizerConfig>) -> Vec<String> {
    let mut issues = Vec::new();
    if let Some(cfg) = &app.authorize {
        if let Err(e) = AppAuthorize::compile(cfg) {
            issues.push(format!("[app.authorize] {e}"));
        }
        if cfg.ico_check && authorizer.is_none() {
            issues.push("[app.authorize] ico_check needs an [authorizer] section".into());
        }
        if cfg.ico_check && cfg.ico_path.is_none() && cfg.operation.is_empty() {
            issues.push("[app.authorize] ico_check needs ico_path or [[app.authorize.operation]] entries".into());
        }
    }
    for rule in &app.rule {
        if rule.operation.as_deref().is_some_and(|o| o.trim().is_empty() || o.contains(['/', '#'])) {
            issues.push(format!(
                "rule operation {:?} must be an operation name (body element local name or the SOAPAction's last segment)",
                rule.operation.as_deref().unwrap_or_default()
            ));
        }
        if rule.require_roles.as_ref().is_some_and(|r| r.normalized().is_empty()) {
            issues.push("rule require_roles lists no role (role_crzp or role_rpp)".into());
        }
    }
    issues
}

/// Problems of `[authorizer]` (for `aisgate check`).
pub fn check_authorizer(cfg: &config::AuthorizerConfig) -> Vec<String> {
    let mut issues = Vec::new();
    match url::Url::parse(&cfg.url) {
        Ok(u) if u.scheme() == "https" => {}
        Ok(u) if u.scheme() == "http" && matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")) => {}
        _ => issues.push(format!("url {:?} must be https:// (http:// only on localhost)", cfg.url)),
    }
    if cfg.timeout_ms == 0 || cfg.cache_size == 0 {
        issues.push("timeout_ms and cache_size must be at least 1".into());
    }
    if cfg.client_cert.is_some() != cfg.client_key.is_some() {
        issues.push("client_cert and client_key go together".into());
    }
    issues
}

/// Why a request was refused. The client sees [`Denial::public_reason`] (never the roles it
/// lacks); the log gets [`Denial::log_reason`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// A path or operation rule refused the user.
    Rule(Denied),
    /// The body is larger than `max_body_bytes`.
    TooLarge,
    /// The body could not be read.
    BodyUnreadable,
    /// The body is not an acceptable SOAP envelope.
    Soap(SoapError),
    /// The IČO check applies but the request names no SOAP operation.
    NoOperation,
    /// No IČO at the configured path (or no path for the operation).
    IcoMissing,
    /// The IČO is not 1–8 digits.
    IcoInvalid,
    /// The authorizer denied the user for this IČO.
    IcoDenied,
    /// The authorizer gave no verdict (fail-closed).
    Authorizer(AuthorizerError),
    /// The IČO check is configured but no `[authorizer]` is (refused by `check`; defensive).
    NoAuthorizer,
}

impl Denial {
    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Denial::Rule(_) | Denial::IcoDenied | Denial::IcoMissing | Denial::NoOperation => StatusCode::FORBIDDEN,
            Denial::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Denial::BodyUnreadable | Denial::Soap(_) | Denial::IcoInvalid => StatusCode::BAD_REQUEST,
            Denial::Authorizer(_) | Denial::NoAuthorizer => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `denied` label of the audit event for a refusal of the user (403): the rule's
    /// label, `ico_denied`, `ico_missing` or `no_operation`; `None` for a bad request or an
    /// outage (not an access decision).
    pub fn audit_label(&self) -> Option<&'static str> {
        match self {
            Denial::Rule(denied) => Some(denied.label()),
            Denial::IcoDenied => Some("ico_denied"),
            Denial::IcoMissing => Some("ico_missing"),
            Denial::NoOperation => Some("no_operation"),
            _ => None,
        }
    }

    /// Short reason safe to show the client (fault string): no role names, no IČO values.
    pub fn public_reason(&self) -> &'static str {
        match self {
            Denial::Rule(Denied::MissingRole) => "Access denied: the user lacks a role this operation requires.",
            Denial::Rule(Denied::LoaTooLow) => "Access denied: the login's level of assurance is too low.",
            Denial::Rule(Denied::Organisation) => "Access denied: the user's organisation is not allowed.",
            Denial::Rule(Denied::Provider) => "Access denied: this identity provider is not allowed here.",
            Denial::Rule(Denied::NoRule) => "Access denied: no rule allows this request.",
            Denial::TooLarge => "Request body too large to be authorized.",
            Denial::BodyUnreadable => "Request body could not be read.",
            Denial::Soap(_) => "Request is not a SOAP message the gateway can authorize.",
            Denial::NoOperation => "Access denied: the request names no SOAP operation.",
            Denial::IcoMissing => "Access denied: the request carries no organisation IČO.",
            Denial::IcoInvalid => "The organisation IČO in the request is not valid.",
            Denial::IcoDenied => "Access denied: the user may not act for this organisation (IČO).",
            Denial::Authorizer(_) | Denial::NoAuthorizer => {
                "Authorization service unavailable; the request was not processed."
            }
        }
    }

    /// Precise reason for the operator log.
    pub fn log_reason(&self) -> String {
        match self {
            Denial::Rule(d) => format!("rule: {d:?}"),
            Denial::Soap(e) => format!("soap: {e}"),
            Denial::Authorizer(e) => format!("authorizer: {e}"),
            other => format!("{other:?}"),
        }
    }

    /// The JSON `error` code of API answers.
    pub fn code(&self) -> &'static str {
        match self.status() {
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::BAD_REQUEST => "invalid_request",
            _ => "temporarily_unavailable",
        }
    }
}

/// What the hook decided, for logs and headers.
#[derive(Debug, Default)]
struct Decision {
    operation: Option<String>,
    ico: Option<String>,
    roles: Vec<String>,
}

/// One authenticated API request, as the hook sees it.
pub struct ApiCall<'a, 'p> {
    /// The gateway.
    pub gw: &'a Gateway,
    /// The app the request is routed to.
    pub app: &'a App,
    /// Every reading of the request path.
    pub forms: &'a PathForms<'p>,
    /// Request id, client address.
    pub info: &'a RequestInfo,
    /// The SOAP version refusals are answered in (`None`: JSON).
    pub soap: Option<SoapVersion>,
    /// Who the request is from and how it authenticated.
    pub user: &'a ApiIdentity,
}

/// Authorizes an authenticated API request: `Ok` with the request to forward, or the
/// refusal to answer (a SOAP Fault on SOAP paths, JSON otherwise).
pub async fn authorize(call: &ApiCall<'_, '_>, req: Request<Body>) -> Result<Request<Body>, Response<Body>> {
    check(call.gw, call.app, call.forms, &call.user.identity, req, call.info).await.map_err(|denial| {
        super::fault::error_response(call.soap, denial.status(), denial.code(), denial.public_reason(), call.info)
    })
}

/// The authorization decision for any authenticated request (see the module documentation);
/// `info` is for the log and the audit trail (a 403 is an `access_denied` event).
pub async fn check(
    gw: &Gateway,
    app: &App,
    forms: &PathForms<'_>,
    identity: &Identity,
    req: Request<Body>,
    info: &RequestInfo,
) -> Result<Request<Body>, Denial> {
    let result = decide(gw, app, forms, identity, req).await;
    if let Err(denial) = &result {
        let (request_id, status) = (info.id(), denial.status().as_u16());
        if denial.status().is_server_error() {
            tracing::error!(request_id, app = %app.name, user = %identity.log_label(), status, reason = %denial.log_reason(), "request refused: authorization unavailable");
        } else {
            tracing::warn!(request_id, app = %app.name, user = %identity.log_label(), status, reason = %denial.log_reason(), "access denied");
        }
        if let Some(denied) = denial.audit_label() {
            gw.audit.emit(crate::audit::Event::AccessDenied {
                origin: info.audit_origin(),
                app: &app.name,
                rule: None,
                denied,
                subject: crate::audit::Subject(identity),
            });
        }
    }
    result
}

async fn decide(
    gw: &Gateway,
    app: &App,
    forms: &PathForms<'_>,
    identity: &Identity,
    req: Request<Body>,
) -> Result<Request<Body>, Denial> {
    app.authorize(forms, identity).map_err(Denial::Rule)?;
    let Some(cfg) = app.authorize_config().or_else(|| app.has_operation_rules().then_some(&DEFAULT)) else {
        return Ok(req);
    };
    let (mut parts, body) = req.into_parts();
    let action = soap::action(&parts.headers);
    let is_soap = soap::SoapVersion::of(&parts.headers).is_some();
    // The buffered bytes go upstream unchanged (`Bytes` clones share them).
    let (body, bytes, view) = if is_soap {
        let bytes = buffer(body, cfg.max_body_bytes).await?;
        let view = soap::read_body(&bytes, |op| cfg.path_for(op)).map_err(Denial::Soap)?;
        (Body::from(bytes.clone()), Some(bytes), Some(view))
    } else {
        (body, None, None)
    };
    let names = operation_names(view.as_ref(), action.as_deref());
    app.authorize_operation(forms, &names, identity).map_err(Denial::Rule)?;

    let mut decision = Decision { operation: names.first().map(|s| (*s).to_owned()), ..Decision::default() };
    if cfg.ico_check && !cfg.is_exempt(&names) {
        let operation = decision.operation.clone().ok_or(Denial::NoOperation)?;
        // A body whose element has no path, under an action that has one: read again by the
        // action's path (the two readings may be configured differently).
        let text = match view.as_ref().and_then(|v| v.ico.clone()) {
            Some(text) => text,
            None => {
                ico_by_action(cfg, bytes.as_deref(), action.as_deref(), view.as_ref())?.ok_or(Denial::IcoMissing)?
            }
        };
        let ico = soap::normalize_ico(&text).ok_or(Denial::IcoInvalid)?;
        let authorizer = gw.authorizer.as_ref().ok_or(Denial::NoAuthorizer)?;
        let question =
            Question { app: app.name.clone(), user: authorizer.user_id(identity), ico: ico.clone(), operation };
        let verdict = authorizer.decide(question).await.map_err(Denial::Authorizer)?;
        if !verdict.allowed {
            return Err(Denial::IcoDenied);
        }
        decision.ico = Some(ico);
        decision.roles = verdict.roles;
    }
    set_headers(&mut parts.headers, &decision);
    Ok(Request::from_parts(parts, body))
}

static DEFAULT: std::sync::LazyLock<AppAuthorize> = std::sync::LazyLock::new(|| AppAuthorize {
    max_body_bytes: 1 << 20,
    ico_check: false,
    default_path: None,
    paths: Vec::new(),
    exempt: Vec::new(),
});

fn ico_by_action(
    cfg: &AppAuthorize,
    bytes: Option<&[u8]>,
    action: Option<&str>,
    view: Option<&BodyView>,
) -> Result<Option<String>, Denial> {
    let (Some(bytes), Some(action), Some(view)) = (bytes, action, view) else { return Ok(None) };
    let name = soap::action_name(action);
    if name == view.operation {
        return Ok(None);
    }
    let Some(path) = cfg.paths.iter().find(|(n, _)| n == name).map(|(_, p)| p.as_slice()) else { return Ok(None) };
    Ok(soap::read_body(bytes, |_| Some(path)).map_err(Denial::Soap)?.ico)
}

/// The distinct operation names: the body element first, then the action's last segment.
fn operation_names<'a>(view: Option<&'a BodyView>, action: Option<&'a str>) -> Vec<&'a str> {
    let mut names: Vec<&str> = Vec::with_capacity(2);
    if let Some(v) = view {
        names.push(v.operation.as_str());
    }
    if let Some(name) = action.map(soap::action_name).filter(|n| !n.is_empty()) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

async fn buffer(body: Body, max: usize) -> Result<bytes::Bytes, Denial> {
    match http_body_util::Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Denial::TooLarge),
        Err(_) => Err(Denial::BodyUnreadable),
    }
}

fn set_headers(headers: &mut http::HeaderMap, decision: &Decision) {
    let mut put = |name: &'static str, value: Option<String>| {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.insert(name, v);
        }
    };
    // Operation names are XML local names: non-ASCII ones are not sent rather than mangled.
    put(OPERATION_HEADER, decision.operation.clone().filter(|o| o.is_ascii()));
    put(ICO_HEADER, decision.ico.clone());
    put(SUBJECT_ROLES_HEADER, (!decision.roles.is_empty()).then(|| decision.roles.join(",")));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exempt_only_when_every_reading_is_exempt() {
        let cfg: AppAuthorizeConfig =
            toml::from_str("ico_check = true\nico_path = \"Zadost/Ico\"\nexempt_operations = [\"PrijmiData\"]")
                .unwrap();
        let cfg = AppAuthorize::compile(&cfg).unwrap();
        let view = |op: &str| BodyView { operation: op.into(), ico: None };
        let prijmi = view("PrijmiData");
        let names = operation_names(Some(&prijmi), Some("http://tempuri.org/IHlaseniOrp/PrijmiData"));
        assert_eq!(names, ["PrijmiData"]);
        assert!(cfg.is_exempt(&names));
        // The action names a provision operation: the stack may dispatch on it, so no exemption.
        let names = operation_names(Some(&prijmi), Some("urn:x#PoskytniData"));
        assert_eq!(names, ["PrijmiData", "PoskytniData"]);
        assert!(!cfg.is_exempt(&names));
        assert!(!cfg.is_exempt(&[]));
        assert_eq!(cfg.path_for("Anything").map(<[String]>::len), Some(2));
    }

    #[test]
    fn ico_paths_and_settings_are_checked() {
        for bad in ["ico_path = \"Zadost//Ico\"", "ico_path = \"\"", "max_body_bytes = 0"] {
            let cfg: AppAuthorizeConfig = toml::from_str(bad).unwrap();
            assert!(AppAuthorize::compile(&cfg).is_err(), "{bad}");
        }
    }

    #[test]
    fn denials_never_name_roles_and_map_to_statuses() {
        assert_eq!(Denial::IcoDenied.status(), StatusCode::FORBIDDEN);
        assert_eq!(Denial::TooLarge.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(Denial::Authorizer(AuthorizerError::Timeout).status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(Denial::Soap(SoapError::Dtd).code(), "invalid_request");
        assert_eq!(Denial::Authorizer(AuthorizerError::Timeout).log_reason(), "authorizer: authorizer timed out");
    }
}
