//! The authorization hook of API requests: called once per request after
//! [`ApiApp::authenticate`](super::ApiApp::authenticate) established the user, before the
//! identity headers are added and the request goes upstream.
//!
//! It receives the request (it may read and re-stream its body, add headers) and returns it
//! to forward, or the refusal to answer. Refusals use [`super::fault::error_response`], so SOAP
//! paths get a SOAP Fault in the request's version.
//!
//! What it checks here: the app's `[[app.rule]]` rules (roles, LoA, organisation, provider)
//! on every reading of the path, exactly as for browser sessions. The CRŽP role + IČO
//! authorizer extends this hook (issue 11 item 5).

use axum::body::Body;
use http::{Request, Response, StatusCode};

use super::{ApiIdentity, SoapVersion};
use crate::gateway::request::RequestInfo;
use crate::gateway::route::App;
use crate::gateway::Gateway;
use crate::http::path_forms::PathForms;

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
/// refusal (403) to answer.
pub async fn authorize(call: &ApiCall<'_, '_>, req: Request<Body>) -> Result<Request<Body>, Response<Body>> {
    if let Err(denied) = call.app.authorize(call.forms, &call.user.identity) {
        tracing::warn!(
            request_id = call.info.id(),
            app = %call.app.name,
            user = %call.user.identity.log_label(),
            scheme = call.user.scheme.as_str(),
            reason = ?denied,
            "api access denied"
        );
        return Err(super::fault::error_response(
            call.soap,
            StatusCode::FORBIDDEN,
            "forbidden",
            "Access denied: the user may not call this service",
            call.info,
        ));
    }
    Ok(req)
}
