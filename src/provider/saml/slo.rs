//! Single logout: the LogoutRequest we send after ending the local session (mandatory for
//! NIA, nia.md §8.7: without it the next visitor on a shared browser is logged in silently),
//! its LogoutResponse, and LogoutRequests from the IdP (front channel, or EnviIAM's back-channel
//! POST, enviam.md §5.7).
//!
//! Threats: a forged LogoutRequest ends other users' sessions (so requests must be signed by
//! the IdP, except EnviIAM's unsigned back channel where the unguessable SessionIndex is
//! required); a forged LogoutResponse could only send the browser to the logged-out page, and
//! must answer a LogoutRequest we sent (single use).

use super::binding::{self, MessageKind};
use super::logout::{self, LogoutMessage, LogoutSubject, STATUS_SUCCESS};
use super::metadata::IdpMetadata;
use super::xmlsec;
use super::Refusal;
use super::SamlProvider;
use crate::provider::{BrowserStep, LoginContext, LogoutState, LogoutTarget, ProviderError, SloMessage, SloOutcome};
use crate::session::now_unix;

const REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
const POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";

impl SamlProvider {
    fn idp_slo(&self, binding_uri: &str) -> Option<String> {
        if let Some(url) = &self.idp_slo_url {
            return Some(url.clone());
        }
        self.idp.current().and_then(|s| IdpMetadata::endpoint(&s.metadata.slo, binding_uri))
    }
}

/// Where the browser goes after the local session is gone: the IdP's SLO with a LogoutRequest,
/// else the IdP's logout page (EnviIAM), else the post-logout URL.
pub(super) fn logout_step(p: &SamlProvider, ctx: &LoginContext, logout_state: &LogoutState) -> BrowserStep {
    let done = p.post_logout_url(ctx);
    let subject: Option<&LogoutSubject> = match logout_state {
        LogoutState::Saml(subject) => Some(subject),
        _ => None,
    };
    if let (Some(subject), Some(destination)) = (subject, p.idp_slo(REDIRECT)) {
        let id = super::authn_request::new_id();
        let xml = logout::build_request(&id, now_unix(), &destination, &p.entity_id, subject);
        match binding::redirect_url(&destination, MessageKind::Request, &xml, None, p.signing.as_ref()) {
            Ok(url) => {
                p.pending_logouts.insert(id, ());
                return BrowserStep::Redirect(url);
            }
            Err(e) => {
                // The local session is already gone; say loudly that the IdP session is not.
                tracing::error!(provider = %p.name, error = %e, "cannot send the LogoutRequest: the IdP session stays open");
            }
        }
    }
    match &p.logout_redirect_url {
        Some(url) => {
            let service: String = url::form_urlencoded::byte_serialize(done.as_bytes()).collect();
            let sep = if url.contains('?') { '&' } else { '?' };
            BrowserStep::Redirect(format!("{url}{sep}service={service}"))
        }
        None => BrowserStep::Redirect(done),
    }
}

/// [`binding::decode_redirect`] (inflate, duplicate-parameter check) on the bounded CPU pool
/// when the query is big (issue 15 item 1): the message is unauthenticated.
async fn decode_redirect(
    query: &str,
    limit: usize,
) -> Result<Result<binding::RedirectMessage, binding::BindingError>, ProviderError> {
    let query = query.to_owned();
    crate::cpu::run_sized(crate::cpu::Work::SamlSlo, query.len(), move || binding::decode_redirect(&query, limit))
        .await
        .map_err(crate::provider::cpu_refused)
}

/// [`xmlsec::verify_root`] (parse, canonicalise, verify) on the bounded CPU pool when the
/// message is big (issue 15 item 1).
async fn verify_root(
    xml: &[u8],
    idp: &std::sync::Arc<super::idp::IdpState>,
) -> Result<Result<xmlsec::SignedRoot, xmlsec::XmlSecError>, ProviderError> {
    let (xml, idp) = (xml.to_vec(), std::sync::Arc::clone(idp));
    crate::cpu::run_sized(crate::cpu::Work::SamlSlo, xml.len(), move || xmlsec::verify_root(&xml, &idp.certs))
        .await
        .map_err(crate::provider::cpu_refused)
}

fn bad(m: impl std::fmt::Display) -> ProviderError {
    ProviderError::with_context(Refusal::Malformed, m)
}

fn rejected(m: impl std::fmt::Display) -> ProviderError {
    ProviderError::with_context(Refusal::LogoutRefused, m)
}

fn param<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// How a message arrived, which decides how it is authenticated and answered.
enum Arrival {
    /// HTTP-Redirect (query signature).
    Redirect { relay_state: Option<String> },
    /// HTTP-POST form `SAMLRequest`/`SAMLResponse` (enveloped signature).
    Post { relay_state: Option<String> },
    /// EnviIAM back channel: form field `logoutRequest` or a bare XML body.
    BackChannel,
}

/// Checks a message at the SLO endpoint.
pub(super) async fn handle(p: &SamlProvider, m: &SloMessage) -> Result<SloOutcome, ProviderError> {
    let idp = p.idp.state().await?;
    let limit = p.max_message_bytes;
    let (msg, arrival) = if !m.is_post {
        let query = m.raw_query.as_deref().ok_or_else(|| bad("no SAML message"))?;
        let decoded = decode_redirect(query, limit).await?.map_err(|e| bad(e.to_string()))?;
        let signed = match &decoded.signature {
            Some((alg, signed, sig)) => {
                xmlsec::verify_redirect(&idp.certs, alg, signed, sig)
                    .map_err(|e| rejected(format!("redirect signature: {e}")))?;
                true
            }
            None => false,
        };
        let msg = logout::parse(&decoded.xml).map_err(|e| bad(e.to_string()))?;
        if msg.is_request && !signed {
            return Err(rejected("unsigned LogoutRequest by HTTP-Redirect"));
        }
        (msg, Arrival::Redirect { relay_state: decoded.relay_state })
    } else if let Some(value) = param(&m.form, "SAMLRequest").or_else(|| param(&m.form, "SAMLResponse")) {
        let xml = binding::decode_base64(value, limit).map_err(|e| bad(e.to_string()))?;
        let relay_state = param(&m.form, "RelayState").map(str::to_owned);
        let msg = match verify_root(&xml, &idp).await? {
            Ok(signed) => logout::parse(signed.canonical.as_bytes()).map_err(|e| bad(e.to_string()))?,
            Err(e) => {
                let msg = logout::parse(&xml).map_err(|e| bad(e.to_string()))?;
                if msg.is_request {
                    return Err(rejected(format!("LogoutRequest signature: {e}")));
                }
                // NIA's LogoutResponse is unsigned (nia.md §8.7); it is bound by InResponseTo.
                msg
            }
        };
        (msg, Arrival::Post { relay_state })
    } else {
        let xml = match (param(&m.form, "logoutRequest"), &m.xml_body) {
            (Some(v), _) => v.as_bytes().to_vec(),
            (None, Some(body)) => body.clone(),
            (None, None) => return Err(bad("no SAML message")),
        };
        if xml.len() > limit {
            return Err(bad("message larger than the limit"));
        }
        let msg = match verify_root(&xml, &idp).await? {
            Ok(signed) => logout::parse(signed.canonical.as_bytes()).map_err(|e| bad(e.to_string()))?,
            Err(e) if !p.accept_unsigned_logout_requests => {
                return Err(rejected(format!("back-channel LogoutRequest signature: {e}")))
            }
            Err(_) => {
                let msg = logout::parse(&xml).map_err(|e| bad(e.to_string()))?;
                if msg.session_indexes.is_empty() {
                    return Err(rejected("unsigned back-channel LogoutRequest without SessionIndex"));
                }
                msg
            }
        };
        if !msg.is_request {
            return Err(bad("back channel carries only LogoutRequests"));
        }
        (msg, Arrival::BackChannel)
    };
    check_issuer(p, &idp.metadata.entity_id, &msg)?;
    if msg.is_request {
        request_outcome(p, msg, arrival)
    } else {
        response_outcome(p, &msg)
    }
}

fn check_issuer(p: &SamlProvider, expected: &str, msg: &LogoutMessage) -> Result<(), ProviderError> {
    // The Issuer is optional on a back-channel request (enviam.md §10.E has none).
    let Some(issuer) = msg.issuer.as_deref() else {
        return Ok(());
    };
    let same = if p.issuer_case_insensitive { issuer.eq_ignore_ascii_case(expected) } else { issuer == expected };
    if same {
        Ok(())
    } else {
        Err(rejected("logout message from another issuer"))
    }
}

fn response_outcome(p: &SamlProvider, msg: &LogoutMessage) -> Result<SloOutcome, ProviderError> {
    let Some(id) = msg.in_response_to.as_deref() else {
        return Err(rejected("LogoutResponse without InResponseTo"));
    };
    if p.pending_logouts.remove(id).is_none() {
        return Err(rejected("LogoutResponse for no pending LogoutRequest (unknown, used or expired InResponseTo)"));
    }
    if msg.status.as_deref() != Some(STATUS_SUCCESS) {
        // The local session is gone either way; the IdP session may not be.
        tracing::warn!(provider = %p.name, status = ?msg.status.as_deref().map(crate::provider::oidc::safe_code), "IdP reports the logout as not successful");
    }
    let done =
        p.post_logout_redirect_url.clone().unwrap_or_else(|| format!("{}logged-out", crate::gateway::RESERVED_PREFIX));
    Ok(SloOutcome::LoggedOut { redirect: done })
}

fn request_outcome(p: &SamlProvider, msg: LogoutMessage, arrival: Arrival) -> Result<SloOutcome, ProviderError> {
    let sid = msg.session_indexes.first().cloned();
    let target = LogoutTarget {
        // SessionIndex is the narrowest match; the NameID only when the IdP names no session.
        subject: if sid.is_some() { None } else { msg.name_id.clone() },
        sid,
    };
    if target.subject.is_none() && target.sid.is_none() {
        return Err(bad("LogoutRequest names neither a NameID nor a SessionIndex"));
    }
    let reply = match arrival {
        Arrival::BackChannel => None,
        Arrival::Redirect { relay_state } | Arrival::Post { relay_state } => {
            let destination = p.idp_slo(REDIRECT).or_else(|| p.idp_slo(POST));
            let destination = destination
                .ok_or_else(|| ProviderError::with_context(Refusal::EndpointMissing, "SingleLogoutService"))?;
            let id = super::authn_request::new_id();
            let xml =
                logout::build_response(&id, now_unix(), Some(&destination), &msg.id, &p.entity_id, STATUS_SUCCESS);
            let url = binding::redirect_url(
                &destination,
                MessageKind::Response,
                &xml,
                relay_state.as_deref(),
                p.signing.as_ref(),
            )
            .map_err(|e| ProviderError::with_context(Refusal::OutgoingMessage, format_args!("LogoutResponse: {e}")))?;
            Some(BrowserStep::Redirect(url))
        }
    };
    Ok(SloOutcome::EndSessions { target, reply })
}
