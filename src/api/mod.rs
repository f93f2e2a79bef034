//! API mode: apps (or paths of an app) whose requests authenticate by an HTTP header instead
//! of a browser session (issue 11; enviam.md §5.4–5.5, §7, §12.3).
//!
//! ```text
//! request on an API path
//!   ─► metadata?          GET ?wsdl / ?singleWsdl / ?xsd=… (exact query keys) → upstream, no identity
//!   ─► credential         exactly one Authorization header, a scheme the path accepts
//!        Bearer <token>   → bearer.rs: cache (SHA-256 of the token) or the provider's profile
//!                           endpoint (JWT verified with the JWKS, or JSON), single flight per token
//!        SAML <base64>    → saml_header.rs: cache (SHA-256 of the Response) or the ACS checks
//!                           with the callers' audiences/recipients, on the CPU pool
//!   ─► Identity           the same one a browser login of that provider produces
//!   ─► authorize::authorize(...)   the authorization hook (rules; CRŽP role + IČO)
//!   ─► identity headers, Authorization removed (unless keep_authorization) → upstream
//! ```
//!
//! Never a redirect: a missing credential is 401 with a challenge for every accepted scheme,
//! a refused one 401 with `error="invalid_token"` (RFC 6750 §3.1) or the `SAML` challenge, an
//! identity provider that cannot answer 503 — a refusal is never reported as an outage and an
//! outage never as a refusal. SOAP paths answer with a SOAP Fault in the request's version
//! ([`fault`]).

pub mod authorize;
mod bearer;
pub mod config;
pub mod fault;
mod saml_header;

use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::{HeaderMap, Method, StatusCode};

use self::config::AuthMethod;
pub use self::fault::SoapVersion;
use crate::clock::Clock;
use crate::config::AppConfig;
use crate::http::path_forms::{fold_case, under_prefix, PathCase, PathForms};
use crate::identity::Identity;
use crate::provider::{Provider, Side};

/// How one path of an app authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// `Authorization: Bearer` accepted.
    pub bearer: bool,
    /// `Authorization: SAML` accepted.
    pub saml: bool,
    /// Failures as SOAP Faults: forced on/off, or `None` (by `Content-Type`).
    pub soap: Option<bool>,
}

impl Route {
    fn of(methods: &[AuthMethod], soap: Option<bool>) -> Option<Route> {
        let route = Route {
            bearer: methods.contains(&AuthMethod::Bearer),
            saml: methods.contains(&AuthMethod::SamlHeader),
            soap,
        };
        (route.bearer || route.saml).then_some(route)
    }

    /// The SOAP version failures on this path are answered in, if any.
    pub fn soap_version(&self, headers: &HeaderMap) -> Option<SoapVersion> {
        match self.soap {
            Some(false) => None,
            Some(true) => Some(SoapVersion::of(headers).unwrap_or(SoapVersion::V11)),
            None => SoapVersion::of(headers),
        }
    }
}

/// An app's API settings, compiled from its `[[app]]` table.
pub struct ApiApp {
    /// The app-wide route (`None`: browser session).
    default: Option<Route>,
    /// `[[app.api]]` prefixes (folded like the app's paths), longest first.
    paths: Vec<(String, Option<Route>)>,
    path_case: PathCase,
    /// Keep `Authorization` on forwarded API requests.
    pub keep_authorization: bool,
    /// Query keys of metadata requests that pass unauthenticated (exact, ASCII case-insensitive).
    metadata_queries: Vec<String>,
    bearer: Option<bearer::BearerValidator>,
    saml: Option<saml_header::SamlHeaderValidator>,
    realm: String,
}

/// Why an API request was not authenticated: what the client is told, the log reason and the
/// metric label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiFailure {
    /// No `Authorization` header, or one with a scheme this path does not accept.
    #[error("no credential this path accepts")]
    Missing,
    /// More than one `Authorization` header, or one that is not visible ASCII.
    #[error("malformed Authorization header: {0}")]
    Malformed(&'static str),
    /// The credential is refused (or the provider says it is invalid): 401.
    #[error("{scheme} credential refused ({reason}): {detail}")]
    Refused {
        /// Which scheme.
        scheme: AuthMethod,
        /// Bounded reason label.
        reason: &'static str,
        /// Operator detail (no token, no personal data).
        detail: String,
    },
    /// The identity provider (or our configuration of it) cannot answer: 503.
    #[error("{scheme} validation unavailable ({reason}): {detail}")]
    Unavailable {
        /// Which scheme.
        scheme: AuthMethod,
        /// Bounded reason label.
        reason: &'static str,
        /// Operator detail.
        detail: String,
        /// The CPU pool was full (503 with `Retry-After`).
        busy: bool,
    },
}

impl ApiFailure {
    /// The bounded `reason` label (metrics, log).
    pub fn reason(&self) -> &'static str {
        match self {
            ApiFailure::Missing => "missing_credential",
            ApiFailure::Malformed(_) => "malformed_header",
            ApiFailure::Refused { reason, .. } | ApiFailure::Unavailable { reason, .. } => reason,
        }
    }

    /// The `result` label: `refused` or `error`.
    pub fn result(&self) -> &'static str {
        match self {
            ApiFailure::Unavailable { .. } => "error",
            _ => "refused",
        }
    }

    /// The scheme the failure concerns, if a credential was presented.
    pub fn scheme(&self) -> Option<AuthMethod> {
        match self {
            ApiFailure::Refused { scheme, .. } | ApiFailure::Unavailable { scheme, .. } => Some(*scheme),
            _ => None,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiFailure::Missing | ApiFailure::Refused { .. } => StatusCode::UNAUTHORIZED,
            ApiFailure::Malformed(_) => StatusCode::BAD_REQUEST,
            ApiFailure::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A failure of `scheme` from a provider error, by its side: refused or denied → 401,
    /// outage → 503.
    pub(crate) fn from_provider(scheme: AuthMethod, e: &crate::provider::ProviderError) -> ApiFailure {
        let detail = e.to_string();
        let reason = e.label();
        match e.side() {
            Side::Refused | Side::Denied => ApiFailure::Refused { scheme, reason, detail },
            Side::Outage => ApiFailure::Unavailable {
                scheme,
                reason,
                detail,
                busy: e.reason() == &crate::provider::Reason::Common(crate::provider::CommonReason::Busy),
            },
        }
    }
}

/// SHA-256 of a credential: the key its validated result is cached under (the credential
/// itself is never kept).
pub(crate) fn cache_key(credential: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, credential.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    key
}

/// An authenticated API request.
#[derive(Debug, Clone)]
pub struct ApiIdentity {
    /// The user.
    pub identity: Arc<Identity>,
    /// How the request authenticated.
    pub scheme: AuthMethod,
    /// The calling application: the token's `client_id` (else its first `aud`), or the
    /// SAML audience (the caller's entity ID).
    pub client: Option<String>,
    /// Whether the answer came from the cache (no call to the provider).
    pub cached: bool,
}

impl ApiApp {
    /// Compiles the API settings of `cfg`; `None` for an app with no API path at all.
    pub fn compile(cfg: &AppConfig, providers: &[Arc<dyn Provider>], clock: &Clock) -> Result<Option<ApiApp>, String> {
        let fold = |p: &str| match cfg.path_case {
            PathCase::Sensitive => p.to_owned(),
            PathCase::Insensitive => fold_case(p).into_owned(),
        };
        let default = Route::of(&cfg.auth.methods(), cfg.soap);
        let mut paths: Vec<(String, Option<Route>)> =
            cfg.api.iter().map(|p| (fold(&p.path_prefix), Route::of(&p.auth.methods(), p.soap.or(cfg.soap)))).collect();
        paths.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        let all: Vec<Route> = default.iter().copied().chain(paths.iter().filter_map(|(_, r)| *r)).collect();
        if all.is_empty() {
            return Ok(None);
        }
        let find = |name: &str| {
            providers.iter().find(|p| p.name() == name).cloned().ok_or_else(|| format!("unknown provider {name:?}"))
        };
        let bearer = match (&cfg.bearer, all.iter().any(|r| r.bearer)) {
            (Some(b), true) => Some(bearer::BearerValidator::new(b, find(&b.provider)?, clock.clone())?),
            (None, true) => return Err("auth includes \"bearer\" but there is no [app.bearer]".to_owned()),
            (_, false) => None,
        };
        let saml = match (&cfg.saml_header, all.iter().any(|r| r.saml)) {
            (Some(s), true) => Some(saml_header::SamlHeaderValidator::new(s, find(&s.provider)?, clock.clone())?),
            (None, true) => return Err("auth includes \"saml-header\" but there is no [app.saml_header]".to_owned()),
            (_, false) => None,
        };
        Ok(Some(ApiApp {
            default,
            paths,
            path_case: cfg.path_case,
            keep_authorization: cfg.keep_authorization,
            metadata_queries: cfg.metadata_queries.iter().map(|q| q.to_ascii_lowercase()).collect(),
            bearer,
            saml,
            realm: cfg.name.clone(),
        }))
    }

    /// The route of a request path: API (`Some`) or browser session (`None`). Decided on
    /// the routing reading of the path, like the app itself; authorization still runs on
    /// every reading.
    pub fn route(&self, forms: &PathForms<'_>) -> Option<Route> {
        let readings = forms.readings(self.path_case);
        let path = readings.routing();
        match self.paths.iter().find(|(prefix, _)| under_prefix(path, prefix)) {
            Some((_, route)) => *route,
            None => self.default,
        }
    }

    /// The `realm` of this app's challenges.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Whether the request fetches service metadata (`GET`/`HEAD` with a configured query
    /// key such as `wsdl`, `singleWsdl`, `xsd=…`): passes without authentication. Keys are
    /// compared exactly, so `?wsdlx` or `?a=wsdl` are not metadata.
    pub fn is_metadata_request(&self, method: &Method, query: Option<&str>) -> bool {
        if !(method == Method::GET || method == Method::HEAD) || self.metadata_queries.is_empty() {
            return false;
        }
        let Some(query) = query.filter(|q| !q.is_empty()) else { return false };
        query.split('&').all(|pair| {
            let key = pair.split_once('=').map_or(pair, |(k, _)| k);
            self.metadata_queries.iter().any(|q| q.eq_ignore_ascii_case(key))
        })
    }

    /// Authenticates a request on `route` by its `Authorization` header.
    pub async fn authenticate(&self, route: &Route, headers: &HeaderMap) -> Result<ApiIdentity, ApiFailure> {
        let mut values = headers.get_all(AUTHORIZATION).iter();
        let Some(value) = values.next() else { return Err(ApiFailure::Missing) };
        if values.next().is_some() {
            return Err(ApiFailure::Malformed("more than one Authorization header"));
        }
        let value = value.to_str().map_err(|_| ApiFailure::Malformed("not visible ASCII"))?;
        let (scheme, credential) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
        let credential = credential.trim();
        // RFC 9110 §11.1: the scheme is case-insensitive.
        if route.bearer && scheme.eq_ignore_ascii_case("bearer") {
            if let Some(bearer) = &self.bearer {
                return bearer.validate(credential).await;
            }
        }
        if route.saml && scheme.eq_ignore_ascii_case("saml") {
            if let Some(saml) = &self.saml {
                return saml.validate(credential).await;
            }
        }
        Err(ApiFailure::Missing)
    }
}

#[cfg(test)]
mod tests;
