//! SAML endpoints under `/.aisgate/saml/{provider}/`: the SP metadata NIA pulls the encryption
//! certificate from, and the single-logout endpoint (IdP LogoutResponses to our requests, and
//! IdP LogoutRequests that end local sessions). These URLs are registered at the IdP, so their
//! shape must never change.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::Extension;
use http::{HeaderMap, Response, StatusCode};

use super::request::RequestInfo;
use super::rescue;
use super::Gateway;
use crate::audit::{LogoutBy, Outcome};
use crate::pages::{self, ErrorKind};
use crate::provider::{BrowserStep, Side, SloMessage, SloOutcome};

type Gw = State<Arc<Gateway>>;

/// `GET /.aisgate/saml/{provider}/metadata`
pub async fn metadata(
    State(gw): Gw,
    Extension(info): Extension<RequestInfo>,
    Path(name): Path<String>,
) -> Response<Body> {
    let Some(xml) = gw.provider(&name).and_then(|(_, p)| p.metadata().map(|m| m.metadata_document())) else {
        return rescue::error(ErrorKind::NotFound, &info, None);
    };
    let mut resp = Response::new(Body::from(xml));
    let headers = resp.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/samlmetadata+xml"));
    headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("max-age=300"));
    resp
}

/// `GET|POST /.aisgate/saml/{provider}/slo`
pub async fn slo(
    State(gw): Gw,
    Extension(info): Extension<RequestInfo>,
    Path(name): Path<String>,
    method: http::Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response<Body> {
    let Some(provider) = gw.provider(&name).and_then(|(_, p)| p.single_logout()) else {
        return rescue::error(ErrorKind::NotFound, &info, None);
    };
    let is_post = method == http::Method::POST;
    let is_form = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    });
    let message = SloMessage {
        is_post,
        raw_query: query,
        form: if is_post && is_form { url::form_urlencoded::parse(&body).into_owned().collect() } else { Vec::new() },
        xml_body: (is_post && !is_form && !body.is_empty()).then(|| body.to_vec()),
    };
    let back_channel = is_post && !message.form.iter().any(|(k, _)| k == "SAMLRequest" || k == "SAMLResponse");
    let by = if back_channel { LogoutBy::BackChannel } else { LogoutBy::Idp };
    let audit = |ended: usize, outcome: (Outcome, Option<&'static str>)| {
        super::endpoints::audit_idp_logout(&gw, &info, (by, &name), ended, outcome);
    };
    let outcome = match provider.handle_message(&message).await {
        Ok(outcome) => outcome,
        Err(e) => {
            let unavailable = e.side() == Side::Outage;
            if unavailable {
                tracing::error!(request_id = info.id(), provider = name, reason = e.label(), error = %e, "single logout message could not be checked");
            } else {
                tracing::warn!(request_id = info.id(), provider = name, reason = e.label(), error = %e, "single logout message refused");
            }
            audit(0, (if unavailable { Outcome::Error } else { Outcome::Refused }, Some(e.label())));
            if back_channel {
                let status = if unavailable { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::BAD_REQUEST };
                return plain(status);
            }
            // An outage: the IdP's (metadata) or the session store's, each its own page.
            let kind = if unavailable { e.page() } else { ErrorKind::BadRequest };
            return rescue::error(kind, &info, None);
        }
    };
    match outcome {
        // The IdP's answer to a logout the user started here: that logout (and its session's
        // end) was audited when the user asked for it.
        SloOutcome::LoggedOut { redirect } => {
            tracing::info!(request_id = info.id(), provider = name, "IdP confirmed the logout");
            rescue::redirect(&redirect)
        }
        SloOutcome::EndSessions { target, reply, unmatched_reply } => {
            let ended = match gw.store.remove_for_subject(&name, target.subject.as_deref(), target.sid.as_deref()).await
            {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(request_id = info.id(), provider = name, error = %e, "cannot end sessions for an IdP LogoutRequest");
                    audit(0, (Outcome::Error, Some("session_store")));
                    return if back_channel {
                        plain(StatusCode::SERVICE_UNAVAILABLE)
                    } else {
                        rescue::error(ErrorKind::SessionStoreUnavailable, &info, None)
                    };
                }
            };
            let reply = match unmatched_reply {
                Some(unmatched) if ended == 0 => {
                    tracing::warn!(
                        request_id = info.id(),
                        provider = name,
                        "IdP LogoutRequest matched no session: answered as not recognised"
                    );
                    audit(0, (Outcome::Unmatched, None));
                    Some(unmatched)
                }
                _ => {
                    audit(ended, (Outcome::Success, None));
                    reply
                }
            };
            match reply {
                None => plain(StatusCode::OK),
                Some(BrowserStep::Redirect(to)) => rescue::redirect(&to),
                Some(BrowserStep::PostForm { action, fields }) => {
                    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                    rescue::html(StatusCode::OK, pages::form_post_page(&action, &fields, info.lang()))
                }
            }
        }
    }
}

fn plain(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    resp.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    resp
}
