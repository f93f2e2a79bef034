//! Single logout: the LogoutRequest we send after ending the local session (mandatory for
//! NIA, nia.md §8.7: without it the next visitor on a shared browser is logged in silently),
//! its LogoutResponse, and LogoutRequests from the IdP (front channel, or EnviIAM's back-channel
//! POST, enviam.md §5.7).
//!
//! Threats: a forged LogoutRequest ends other users' sessions (so requests must be signed by
//! the IdP, except EnviIAM's unsigned back channel where the unguessable SessionIndex is
//! required); a forged LogoutResponse could only send the browser to the logged-out page, and
//! must answer a LogoutRequest we sent (single use). Every message must be addressed to us
//! (`Destination`), fresh (`IssueInstant` within the skew) and, for requests, used once (a
//! replay cache of request IDs), so a captured logout URL cannot end a later session.

use super::binding::{self, MessageKind};
use super::logout::{self, LogoutMessage, LogoutSubject, STATUS_RESPONDER, STATUS_SUCCESS, STATUS_UNKNOWN_PRINCIPAL};
use super::metadata::IdpMetadata;
use super::xmlsec;
use super::Refusal;
use super::SamlProvider;
use crate::provider::{BrowserStep, LoginContext, LogoutState, LogoutTarget, ProviderError, SloMessage, SloOutcome};

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
/// else the IdP's logout page (EnviIAM), else the post-logout URL. The LogoutRequest's ID is
/// recorded in the session store, so its LogoutResponse is accepted at whichever instance it
/// reaches (once).
pub(super) async fn logout_step(p: &SamlProvider, ctx: &LoginContext, logout_state: &LogoutState) -> BrowserStep {
    let done = p.post_logout_url(ctx);
    let subject: Option<&LogoutSubject> = match logout_state {
        LogoutState::Saml(subject) => Some(subject),
        _ => None,
    };
    if let (Some(subject), Some(destination)) = (subject, p.idp_slo(REDIRECT)) {
        let id = super::authn_request::new_id();
        let xml = logout::build_request(&id, p.clock.now_unix(), &destination, &p.entity_id, subject);
        match binding::redirect_url(&destination, MessageKind::Request, &xml, None, p.signing.as_ref()) {
            Ok(url) => {
                // Sent even when it cannot be recorded: ending the IdP session matters more
                // (the next person at the browser); only its answer will then be refused.
                if let Err(e) = p.logouts.logout_sent(&p.name, &id, super::LOGOUT_WAIT).await {
                    tracing::error!(provider = %p.name, error = %e, "cannot record the LogoutRequest sent: its LogoutResponse will be refused");
                }
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
    crate::cpu::run_sized(crate::cpu::Work::SamlSlo, xml.len(), move || {
        xmlsec::verify_root(&xml, &idp.certs, &xmlsec::Limits::LOGOUT)
    })
    .await
    .map_err(crate::provider::cpu_refused)
}

fn refuse(refusal: Refusal, detail: impl std::fmt::Display) -> ProviderError {
    ProviderError::with_context(refusal, detail)
}

fn parse_error(e: logout::LogoutParseError) -> ProviderError {
    refuse(e.0, e.1)
}

fn encoding(e: binding::BindingError) -> ProviderError {
    refuse(Refusal::Encoding, e)
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

/// A POSTed document: its signed canonical form when the root is signed by the IdP; the
/// unsigned bytes only when `unsigned_ok` says an unsigned message may be acceptable (decided
/// later); every other XML-security failure (bad signature, wrapping, DOCTYPE, too complex)
/// refuses the message.
async fn read_posted(
    xml: &[u8],
    idp: &std::sync::Arc<super::idp::IdpState>,
    unsigned_ok: impl Fn(&LogoutMessage) -> bool,
) -> Result<(LogoutMessage, bool), ProviderError> {
    match verify_root(xml, idp).await? {
        Ok(signed) => Ok((logout::parse(signed.canonical.as_bytes()).map_err(parse_error)?, true)),
        Err(e @ xmlsec::XmlSecError::Unsigned(_)) => {
            let msg = logout::parse(xml).map_err(parse_error)?;
            if unsigned_ok(&msg) {
                Ok((msg, false))
            } else {
                Err(refuse(Refusal::Unsigned, format_args!("{} {e}", msg.kind())))
            }
        }
        Err(e) => Err(refuse(Refusal::from(&e), e)),
    }
}

/// Checks a message at the SLO endpoint.
pub(super) async fn handle(p: &SamlProvider, m: &SloMessage) -> Result<SloOutcome, ProviderError> {
    let idp = p.idp.state().await?;
    let limit = p.max_message_bytes;
    let (msg, signed, arrival) = if !m.is_post {
        let query = m.raw_query.as_deref().ok_or_else(|| refuse(Refusal::MissingMessage, "no SAML message"))?;
        let decoded = decode_redirect(query, limit).await?.map_err(encoding)?;
        let signed = match &decoded.signature {
            Some((alg, signed, sig)) => {
                xmlsec::verify_redirect(&idp.certs, alg, signed, sig)
                    .map_err(|e| refuse(Refusal::from(&e), format_args!("redirect signature: {e}")))?;
                true
            }
            None => false,
        };
        let msg = logout::parse(&decoded.xml).map_err(parse_error)?;
        if msg.is_request && !signed {
            return Err(refuse(Refusal::Unsigned, "unsigned LogoutRequest by HTTP-Redirect"));
        }
        (msg, signed, Arrival::Redirect { relay_state: decoded.relay_state })
    } else if let Some(value) = param(&m.form, "SAMLRequest").or_else(|| param(&m.form, "SAMLResponse")) {
        let xml = binding::decode_base64(value, limit).map_err(encoding)?;
        let relay_state = param(&m.form, "RelayState").map(str::to_owned);
        // NIA's LogoutResponse is unsigned (nia.md §8.7); it is bound by InResponseTo.
        let (msg, signed) = read_posted(&xml, &idp, |msg| !msg.is_request).await?;
        (msg, signed, Arrival::Post { relay_state })
    } else {
        let xml = match (param(&m.form, "logoutRequest"), &m.xml_body) {
            (Some(v), _) => v.as_bytes().to_vec(),
            (None, Some(body)) => body.clone(),
            (None, None) => return Err(refuse(Refusal::MissingMessage, "no SAML message")),
        };
        if xml.len() > limit {
            return Err(refuse(Refusal::TooLarge, "back-channel message larger than the limit"));
        }
        let (msg, signed) = read_posted(&xml, &idp, |_| p.accept_unsigned_logout_requests).await?;
        if !msg.is_request {
            return Err(refuse(Refusal::Malformed, "back channel carries only LogoutRequests"));
        }
        if !signed && msg.session_indexes.is_empty() {
            return Err(refuse(Refusal::LogoutNoSubject, "unsigned back-channel LogoutRequest without SessionIndex"));
        }
        (msg, signed, Arrival::BackChannel)
    };
    check_issuer(p, &idp.metadata.entity_id, &msg)?;
    let front_channel = !matches!(arrival, Arrival::BackChannel);
    check_destination(p, &msg, signed && front_channel)?;
    let now = p.clock.now_unix();
    let issued = check_instant(p, &msg, now)?;
    if !msg.is_request {
        return response_outcome(p, &msg).await;
    }
    if signed {
        // A captured (signed) logout URL must not end the next session of that user later:
        // remember every signed request ID for as long as its IssueInstant lets it be
        // accepted. Unsigned back-channel requests are not recorded: anyone can forge a fresh
        // one (the SessionIndex is their secret), and recording them would let anyone fill
        // the cache, which then fails closed for the IdP's real requests.
        let until = remember_until(p, &msg, issued);
        let local = || p.logout_replay.first_use_at(&msg.id, until, now);
        let scope = crate::session::shared::OnceScope::SamlLogoutRequest;
        if !p.shared.first_use(scope, &p.name, &msg.id, (until, now), local).await? {
            return Err(refuse(Refusal::Replayed, "LogoutRequest ID already used (or the replay cache is full)"));
        }
    }
    request_outcome(p, msg, arrival).await
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
        Err(refuse(Refusal::Issuer, format_args!("{} from another issuer", msg.kind())))
    }
}

/// SAML core §3.2.2: a `Destination` other than the endpoint that received the message means
/// it was meant for someone else: discard it. Bindings §3.4.5.2 / §3.5.5.2: a message signed
/// for the browser bindings must carry one (else a message signed for another SP could be
/// replayed here). EnviIAM's unsigned back channel sends none (enviam.md §10.E).
fn check_destination(p: &SamlProvider, msg: &LogoutMessage, required: bool) -> Result<(), ProviderError> {
    match msg.destination.as_deref() {
        Some(d) if d.trim() == p.urls.slo => Ok(()),
        Some(_) => Err(refuse(Refusal::Destination, format_args!("{} Destination is not our SLO URL", msg.kind()))),
        None if required => {
            Err(refuse(Refusal::Destination, format_args!("signed {} without Destination", msg.kind())))
        }
        None => Ok(()),
    }
}

/// `Version` 2.0 and `IssueInstant` present, an `xs:dateTime`, not in the future and, for a
/// request, within the skew of now (an IdP's LogoutRequest is delivered at once; a late one
/// is a captured one). Returns the instant.
fn check_instant(p: &SamlProvider, msg: &LogoutMessage, now: u64) -> Result<u64, ProviderError> {
    if msg.version.as_deref() != Some("2.0") {
        return Err(refuse(Refusal::Version, format_args!("{} Version is not 2.0", msg.kind())));
    }
    let issued = msg.issue_instant.as_deref().and_then(super::metadata::parse_instant).ok_or_else(|| {
        refuse(Refusal::IssueInstant, format_args!("{} IssueInstant missing or malformed", msg.kind()))
    })?;
    if issued > now.saturating_add(p.skew) {
        return Err(refuse(
            Refusal::IssuedInFuture,
            format_args!("{} IssueInstant is {}s in the future", msg.kind(), issued - now),
        ));
    }
    // A LogoutResponse is bound by single use to a request we sent (15 min); NIA may show its
    // own page before the browser comes back, so it is not held to the skew window.
    if msg.is_request && issued.saturating_add(p.skew) < now {
        return Err(refuse(Refusal::Stale, format_args!("{} issued {}s ago", msg.kind(), now - issued)));
    }
    if let Some(until) = msg.not_on_or_after.as_deref().and_then(super::metadata::parse_instant) {
        if until.saturating_add(p.skew) <= now {
            return Err(refuse(Refusal::Stale, format_args!("{} NotOnOrAfter has passed", msg.kind())));
        }
    }
    Ok(issued)
}

/// How long a LogoutRequest ID is remembered: as long as [`check_instant`] could accept it.
fn remember_until(p: &SamlProvider, msg: &LogoutMessage, issued: u64) -> u64 {
    let by_instant = issued.saturating_add(p.skew);
    let by_expiry = msg.not_on_or_after.as_deref().and_then(super::metadata::parse_instant).unwrap_or(0);
    by_instant.max(by_expiry).saturating_add(p.skew)
}

async fn response_outcome(p: &SamlProvider, msg: &LogoutMessage) -> Result<SloOutcome, ProviderError> {
    let Some(id) = msg.in_response_to.as_deref() else {
        return Err(refuse(Refusal::InResponseTo, "LogoutResponse without InResponseTo"));
    };
    // Single use across every instance sharing the session store; a store that cannot say is
    // a refusal (store_unavailable), never an answer accepted unchecked.
    if !p.logouts.take_logout_sent(&p.name, id).await? {
        return Err(refuse(
            Refusal::LogoutUnknownResponse,
            "LogoutResponse for no pending LogoutRequest (unknown, used or expired InResponseTo)",
        ));
    }
    if msg.status.as_deref() != Some(STATUS_SUCCESS) {
        // The local session is gone either way; the IdP session may not be.
        tracing::warn!(provider = %p.name, status = ?msg.status.as_deref().map(crate::provider::oidc::safe_code), "IdP reports the logout as not successful");
    }
    let done =
        p.post_logout_redirect_url.clone().unwrap_or_else(|| format!("{}logged-out", crate::http::RESERVED_PREFIX));
    Ok(SloOutcome::LoggedOut { redirect: done })
}

async fn request_outcome(p: &SamlProvider, msg: LogoutMessage, arrival: Arrival) -> Result<SloOutcome, ProviderError> {
    let sid = msg.session_indexes.first().cloned();
    // SessionIndex is the narrowest match; the NameID only when the IdP names no session. A
    // session's subject is the PersonIdentifier / userUUID attribute, which need not be the
    // NameID: translate through the NameIDs of the logins (in the session store: those of
    // every instance sharing it).
    let name_only = sid.is_none();
    let subject = match (&sid, msg.name_id.as_deref()) {
        (None, Some(name_id)) => Some(p.subject_of_name_id(name_id).await?),
        _ => None,
    };
    let target = LogoutTarget { subject, sid };
    if target.subject.is_none() && target.sid.is_none() {
        return Err(refuse(Refusal::LogoutNoSubject, "LogoutRequest names neither a NameID nor a SessionIndex"));
    }
    let (reply, unmatched_reply) = match arrival {
        Arrival::BackChannel => (None, None),
        Arrival::Redirect { relay_state } | Arrival::Post { relay_state } => {
            let answer = |status: &str, sub_status: Option<&str>| -> Result<BrowserStep, ProviderError> {
                let destination = p.idp_slo(REDIRECT).or_else(|| p.idp_slo(POST));
                let destination = destination
                    .ok_or_else(|| ProviderError::with_context(Refusal::EndpointMissing, "SingleLogoutService"))?;
                let id = super::authn_request::new_id();
                let xml = logout::build_response(
                    &id,
                    p.clock.now_unix(),
                    Some(&destination),
                    &msg.id,
                    &p.entity_id,
                    status,
                    sub_status,
                );
                binding::redirect_url(
                    &destination,
                    MessageKind::Response,
                    &xml,
                    relay_state.as_deref(),
                    p.signing.as_ref(),
                )
                .map(BrowserStep::Redirect)
                .map_err(|e| ProviderError::with_context(Refusal::OutgoingMessage, format_args!("LogoutResponse: {e}")))
            };
            // A NameID-only request that ends no session must not be answered Success while
            // that user's session may live on under another subject: Responder /
            // UnknownPrincipal (SAML core §3.2.2.2: "does not recognize the principal").
            let unmatched =
                if name_only { Some(answer(STATUS_RESPONDER, Some(STATUS_UNKNOWN_PRINCIPAL))?) } else { None };
            (Some(answer(STATUS_SUCCESS, None)?), unmatched)
        }
    };
    Ok(SloOutcome::EndSessions { target, reply, unmatched_reply })
}
