//! The pipeline of a request on an API path (see `crate::api`): metadata pass-through,
//! header authentication, the authorization hook, identity headers, upstream.

use axum::body::Body;
use http::header::AUTHORIZATION;
use http::{Request, Response};

use super::handler::{forward, sign_identity_token};
use super::request::{ConnInfo, RequestInfo};
use super::route::App;
use super::Gateway;
use crate::api::authorize::{authorize, ApiCall};
use crate::api::{fault, ApiApp, ApiFailure, Route};
use crate::http::path_forms::PathForms;
use crate::upstream::upgrade::Requested;

/// Serves one request routed to an API path of `app`.
pub(super) async fn serve(
    gw: &Gateway,
    app: &App,
    (api, route): (&ApiApp, Route),
    mut req: Request<Body>,
    forms: &PathForms<'_>,
    (upgrade, conn): (Option<Requested>, &ConnInfo),
    info: &RequestInfo,
) -> Response<Body> {
    let path = forms.canonical();
    // WSDL/XSD (legacy clients generate their proxies from it before they hold a token) and
    // the app's public paths pass without a credential and without identity.
    let metadata = api.is_metadata_request(req.method(), req.uri().query());
    if metadata || app.is_public(forms) {
        if !api.keep_authorization {
            req.headers_mut().remove(AUTHORIZATION);
        }
        if metadata {
            gw.metrics.api_auth(&app.name, "none", "metadata", "metadata");
        }
        tracing::debug!(request_id = info.id(), app = %app.name, metadata, "api request passed without authentication");
        return forward(gw, app, req, (upgrade, None), path, conn, info).await;
    }
    let user = match api.authenticate(&route, req.headers()).await {
        Ok(user) => user,
        Err(failure) => {
            let scheme = failure.scheme().map_or("none", |s| s.as_str());
            gw.metrics.api_auth(&app.name, scheme, failure.result(), failure.reason());
            log_failure(app, &failure, info);
            return fault::failure_response(api, &route, req.headers(), &failure, info);
        }
    };
    let outcome = if user.cached { "cache_hit" } else { "cache_miss" };
    gw.metrics.api_auth(&app.name, user.scheme.as_str(), "success", outcome);
    tracing::info!(
        request_id = info.id(),
        client = %info.client_ip,
        app = %app.name,
        user = %user.identity.log_label(),
        scheme = user.scheme.as_str(),
        caller = user.client.as_deref().unwrap_or("-"),
        cached = user.cached,
        "api request authenticated"
    );
    let soap = route.soap_version(req.headers());
    let call = ApiCall { gw, app, forms, info, soap, user: &user };
    let mut req = match authorize(&call, req).await {
        Ok(req) => req,
        Err(refusal) => return refusal,
    };
    if !api.keep_authorization {
        // The user's credential is for the gateway, not for the upstream.
        req.headers_mut().remove(AUTHORIZATION);
    }
    let headers = req.headers_mut();
    for (name, value) in app.headers.render(&user.identity) {
        headers.insert(name, value);
    }
    if let (Some(name), Some(issuer)) = (&app.headers.token_header, &gw.tokens) {
        if let Some((_, token)) = sign_identity_token(gw, issuer, app, &user.identity, gw.clock.now_unix()) {
            headers.insert(name.clone(), token);
        }
    }
    forward(gw, app, req, (upgrade, None), path, conn, info).await
}

/// One precise line per failure: the reason label and the operator detail (never the
/// credential). A missing credential is routine (clients probe, then authenticate), a refusal
/// is worth a warning, an outage is an error.
fn log_failure(app: &App, failure: &ApiFailure, info: &RequestInfo) {
    let scheme = failure.scheme().map_or("none", |s| s.as_str());
    let reason = failure.reason();
    match failure {
        ApiFailure::Missing | ApiFailure::Malformed(_) => {
            tracing::info!(request_id = info.id(), client = %info.client_ip, app = %app.name, scheme, reason, error = %failure, "api credential missing")
        }
        ApiFailure::Refused { .. } => {
            tracing::warn!(request_id = info.id(), client = %info.client_ip, app = %app.name, scheme, reason, error = %failure, "api credential refused")
        }
        ApiFailure::Unavailable { .. } => {
            tracing::error!(request_id = info.id(), client = %info.client_ip, app = %app.name, scheme, reason, error = %failure, "api credential validation unavailable")
        }
    }
}
