//! A simulated SAML IdP in the shape of NIA, for tests and the demo.
//!
//! It serves signed metadata, takes AuthnRequests by HTTP-Redirect or HTTP-POST at `/sso` and
//! answers with a login page (the simulator banner, one button per [`nia_demo_users`] person),
//! each button POSTing to the ACS that person's signed Response whose Assertion is encrypted
//! to the SP (built by [`crate::sim::saml_response`]), and at `/slo` answers a
//! LogoutRequest with a signed LogoutResponse by HTTP-Redirect. Knobs change the next
//! Response, take the metadata down or sign it with a stranger's key.

use std::sync::{Arc, Mutex};

use axum::extract::{RawQuery, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use http::StatusCode;
use tokio::net::TcpListener;

use crate::pages::html_escape;
use crate::provider::saml::binding::{self, MessageKind};
use crate::provider::saml::logout::{self, LogoutSubject};
use crate::provider::saml::xmlsec::SigningKey;
use crate::sim::certs::{rsa_identity, RsaIdentity};
use crate::sim::saml_response::ResponseSpec;

/// NIA's entityID as its metadata spells it.
pub const NIA_ENTITY_ID: &str = "urn:microsoft:cgg2010:fpsts";

/// Simulator settings.
#[derive(Clone, Debug)]
pub struct SamlSimConfig {
    /// The IdP entityID.
    pub entity_id: String,
    /// The SP entityID (Audience).
    pub sp_entity_id: String,
    /// The SP's ACS URL (Destination, Recipient, form action).
    pub acs_url: String,
    /// The SP's SLO URL (where LogoutResponses go).
    pub sp_slo_url: String,
    /// The SP's encryption certificate (DER).
    pub sp_encryption_cert: Vec<u8>,
}

/// Who signs the metadata document.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MetadataSigner {
    /// The metadata key (pinned by the SP in tests).
    #[default]
    Metadata,
    /// A key nobody trusts.
    Stranger,
    /// Nobody.
    Unsigned,
}

/// A change applied to the next Response before it is built (one-shot).
pub type SpecEdit = Box<dyn FnOnce(&mut ResponseSpec) + Send>;

/// Test knobs and observations.
#[derive(Default)]
pub struct Knobs {
    /// Applied to the next Response (one-shot).
    pub edit: Option<SpecEdit>,
    /// The metadata endpoint answers 503.
    pub metadata_outage: bool,
    /// Who signs the metadata.
    pub metadata_signer: MetadataSigner,
    /// Metadata fetches so far.
    pub metadata_fetches: usize,
    /// The last AuthnRequest (XML as received, after decoding).
    pub last_authn_request: Option<String>,
    /// Binding of the last AuthnRequest (`redirect` or `post`) and whether it carried a signature.
    pub last_binding: Option<(&'static str, bool)>,
    /// RelayState of the last AuthnRequest.
    pub last_relay_state: Option<String>,
    /// The last LogoutRequest received (XML).
    pub last_logout_request: Option<String>,
    /// The LogoutResponse answers this InResponseTo instead of the request's (one-shot).
    pub logout_in_response_to: Option<String>,
    /// The last Response sent (XML) for the first user (the page's first form), for replay tests.
    pub last_response: Option<String>,
    /// SessionIndex of the last login (inside the encrypted assertion).
    pub last_session_index: Option<String>,
}

struct SimState {
    cfg: SamlSimConfig,
    base: String,
    idp: SigningKey,
    metadata_key: SigningKey,
    stranger: SigningKey,
    knobs: Arc<Mutex<Knobs>>,
}

/// A running simulated SAML IdP.
pub struct SamlSim {
    /// Base URL.
    pub base: String,
    /// The IdP signing identity (Responses, LogoutResponses).
    pub idp: RsaIdentity,
    /// The metadata signing identity (pin its certificate).
    pub metadata_signer: RsaIdentity,
    /// Test knobs.
    pub knobs: Arc<Mutex<Knobs>>,
    state: Arc<SimState>,
}

fn lock(knobs: &Mutex<Knobs>) -> std::sync::MutexGuard<'_, Knobs> {
    knobs.lock().unwrap_or_else(|e| e.into_inner())
}

impl SamlSim {
    /// The metadata URL.
    pub fn metadata_url(&self) -> String {
        format!("{}/metadata", self.base)
    }

    /// Changes the knobs.
    pub fn knobs(&self) -> std::sync::MutexGuard<'_, Knobs> {
        lock(&self.knobs)
    }

    /// The IdP's metadata document as currently served (knobs apply).
    pub fn metadata_xml(&self) -> Result<String, String> {
        metadata_document(&self.state)
    }

    /// An IdP-initiated LogoutRequest for `name_id`/`session_index`, signed by HTTP-Redirect
    /// to the SP's SLO URL. Returns the URL and the request ID.
    pub fn logout_request_url(&self, name_id: &str, session_index: Option<&str>) -> Result<(String, String), String> {
        let id = crate::provider::saml::authn_request::new_id();
        let subject = LogoutSubject {
            name_id: name_id.to_owned(),
            format: Some("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent".to_owned()),
            name_qualifier: None,
            sp_name_qualifier: None,
            session_index: session_index.map(str::to_owned),
        };
        let s = &self.state;
        let xml = logout::build_request(&id, crate::session::now_unix(), &s.cfg.sp_slo_url, &s.cfg.entity_id, &subject);
        let url = binding::redirect_url(&s.cfg.sp_slo_url, MessageKind::Request, &xml, Some("idp-rs"), Some(&s.idp))
            .map_err(|e| e.to_string())?;
        Ok((url, id))
    }

    /// Any message `xml` (a LogoutRequest a test shaped itself), signed by HTTP-Redirect to
    /// the SP's SLO URL with RelayState `idp-rs`.
    pub fn redirect_signed(&self, xml: &str) -> Result<String, String> {
        let s = &self.state;
        binding::redirect_url(&s.cfg.sp_slo_url, MessageKind::Request, xml, Some("idp-rs"), Some(&s.idp))
            .map_err(|e| e.to_string())
    }

    /// The SP's SLO URL as the simulator knows it (a LogoutRequest's `Destination`).
    pub fn sp_slo_url(&self) -> &str {
        &self.state.cfg.sp_slo_url
    }

    /// The IdP's entityID (a LogoutRequest's `Issuer`).
    pub fn entity_id(&self) -> &str {
        &self.state.cfg.entity_id
    }

    /// The same LogoutRequest unsigned, as EnviIAM's back channel POSTs it (bare XML).
    pub fn unsigned_logout_request(&self, name_id: &str, session_index: Option<&str>) -> String {
        let subject = LogoutSubject {
            name_id: name_id.to_owned(),
            format: None,
            name_qualifier: None,
            sp_name_qualifier: None,
            session_index: session_index.map(str::to_owned),
        };
        let id = crate::provider::saml::authn_request::new_id();
        logout::build_request(
            &id,
            crate::session::now_unix(),
            &self.state.cfg.sp_slo_url,
            &self.state.cfg.entity_id,
            &subject,
        )
    }
}

fn metadata_document(s: &SimState) -> Result<String, String> {
    use base64::Engine;
    let cert = base64::engine::general_purpose::STANDARD.encode(s.idp.certificate_der());
    let valid_until = crate::identity::headers::rfc3339(crate::session::now_unix() + 86_400);
    let xml = format!(
        "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" ID=\"_metadata\" entityID=\"{entity}\" \
         validUntil=\"{valid_until}\"><md:IDPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">\
         <md:KeyDescriptor use=\"signing\"><ds:KeyInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:X509Data>\
         <ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>\
         <md:SingleLogoutService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" Location=\"{base}/slo\"/>\
         <md:SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" Location=\"{base}/sso\"/>\
         <md:SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" Location=\"{base}/sso\"/>\
         </md:IDPSSODescriptor></md:EntityDescriptor>",
        entity = html_escape(&s.cfg.entity_id),
        base = s.base,
    );
    let signer = lock(&s.knobs).metadata_signer;
    match signer {
        MetadataSigner::Metadata => s.metadata_key.sign_enveloped(&xml).map_err(|e| e.to_string()),
        MetadataSigner::Stranger => s.stranger.sign_enveloped(&xml).map_err(|e| e.to_string()),
        MetadataSigner::Unsigned => Ok(xml),
    }
}

fn key(identity: &RsaIdentity) -> Result<SigningKey, String> {
    SigningKey::from_pem(identity.key_pem.as_bytes(), identity.cert_pem.as_bytes()).map_err(|e| e.to_string())
}

/// Starts the simulator on `127.0.0.1:0`.
pub async fn start(cfg: SamlSimConfig) -> Result<SamlSim, String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("bind: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    // `localhost`, not the IP: the demo gateway is `http://localhost:…`, and only a same-site
    // POST to the ACS carries its (Lax, no `Secure` over http) pre-login cookie.
    let base = format!("http://localhost:{port}");
    let idp = rsa_identity("aisgate simulated NIA")?;
    let metadata_signer = rsa_identity("aisgate simulated NIA metadata")?;
    let knobs = Arc::new(Mutex::new(Knobs::default()));
    let state = Arc::new(SimState {
        cfg,
        base: base.clone(),
        idp: key(&idp)?,
        metadata_key: key(&metadata_signer)?,
        stranger: key(&rsa_identity("stranger")?)?,
        knobs: knobs.clone(),
    });
    let router = Router::new()
        .route("/metadata", get(metadata))
        .route("/sso", get(sso_redirect).post(sso_post))
        .route("/slo", get(slo))
        .with_state(state.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "SAML simulator stopped");
        }
    });
    Ok(SamlSim { base, idp, metadata_signer, knobs, state })
}

type St = State<Arc<SimState>>;

async fn metadata(State(s): St) -> Response {
    {
        let mut k = lock(&s.knobs);
        k.metadata_fetches += 1;
        if k.metadata_outage {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    }
    match metadata_document(&s) {
        Ok(xml) => ([(http::header::CONTENT_TYPE, "application/samlmetadata+xml")], xml).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

/// The `ID` attribute of the document element.
fn root_id(xml: &str) -> Option<String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e)) => {
                return e
                    .attributes()
                    .flatten()
                    .find(|a| a.key.as_ref() == b"ID")
                    .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()));
            }
            Ok(quick_xml::events::Event::Eof) | Err(_) => return None,
            _ => {}
        }
    }
}

async fn sso_redirect(State(s): St, RawQuery(query): RawQuery) -> Response {
    let Ok(msg) = binding::decode_redirect(query.as_deref().unwrap_or_default(), 256 * 1024) else {
        return (StatusCode::BAD_REQUEST, "bad SAMLRequest").into_response();
    };
    let xml = String::from_utf8_lossy(&msg.xml).into_owned();
    let signed = msg.signature.is_some() || xml.contains("<ds:Signature");
    answer(&s, xml, msg.relay_state, ("redirect", signed))
}

async fn sso_post(State(s): St, Form(form): Form<Vec<(String, String)>>) -> Response {
    let field = |n: &str| form.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let Some(xml) = field("SAMLRequest").and_then(|v| binding::decode_base64(&v, 256 * 1024).ok()) else {
        return (StatusCode::BAD_REQUEST, "bad SAMLRequest").into_response();
    };
    let xml = String::from_utf8_lossy(&xml).into_owned();
    let signed = xml.contains("<ds:Signature");
    answer(&s, xml, field("RelayState"), ("post", signed))
}

/// The login page: one Response per demo user, each in its own form POSTing to the ACS.
fn answer(s: &SimState, xml: String, relay_state: Option<String>, binding_seen: (&'static str, bool)) -> Response {
    let Some(request_id) = root_id(&xml) else {
        return (StatusCode::BAD_REQUEST, "AuthnRequest without ID").into_response();
    };
    let requested = requested_authn_context(&xml);
    let edit = {
        let mut k = lock(&s.knobs);
        k.last_authn_request = Some(xml);
        k.last_binding = Some(binding_seen);
        k.last_relay_state = relay_state.clone();
        k.edit.take()
    };
    let now = crate::session::now_unix();
    let mut spec = ResponseSpec::nia(now, &request_id, &s.cfg.acs_url, &s.cfg.sp_entity_id);
    // A fresh assertion per login (the builder derives IDs from the time).
    let fresh = crate::provider::saml::authn_request::new_id();
    spec.assertion_id = format!("_a{}", &fresh[1..]);
    spec.response_id = format!("_r{}", &fresh[1..]);
    spec.session_index = format!("_s{}", &fresh[1..20]);
    // Like NIA, authenticate at the level asked for (step-up asks for more than the default).
    if let Some(requested) = requested {
        spec.authn_context = requested;
    }
    if let Some(edit) = edit {
        edit(&mut spec);
    }
    // One Response per demo user (the same session, the user's identity): the page offers each
    // as its own form. The first user is the spec as built (and edited by a test).
    let mut responses = Vec::new();
    for (i, user) in nia_demo_users().iter().enumerate() {
        let mut for_user = spec.clone();
        if i > 0 {
            user.apply(&mut for_user);
        }
        match for_user.build(&s.idp, &s.cfg.sp_encryption_cert) {
            Ok(r) => responses.push((user.label.clone(), r)),
            Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
        }
    }
    {
        let mut k = lock(&s.knobs);
        k.last_response = responses.first().map(|(_, r)| r.clone());
        k.last_session_index = Some(spec.session_index.clone());
    }
    Html(login_page(&s.cfg.acs_url, relay_state.as_deref(), &responses)).into_response()
}

/// A person the simulated NIA can log in: its login page offers each.
#[derive(Clone, Debug)]
pub struct NiaUser {
    /// Label on the login page.
    pub label: String,
    /// The BSI (NameID and `PersonIdentifier`).
    pub bsi: String,
    /// `CurrentGivenName`.
    pub given_name: String,
    /// `CurrentFamilyName`.
    pub family_name: String,
    /// `DateOfBirth` (`YYYY-MM-DD`).
    pub date_of_birth: String,
    /// `eMail`.
    pub email: String,
}

impl NiaUser {
    /// Makes `spec` this user's login: the NameID and the identity attributes.
    pub fn apply(&self, spec: &mut ResponseSpec) {
        use crate::sim::saml_response::{esc, nia};
        spec.name_id = esc(&self.bsi);
        for (name, _, values) in &mut spec.attributes {
            let value = match name.as_str() {
                nia::PERSON_IDENTIFIER => &self.bsi,
                nia::GIVEN_NAME => &self.given_name,
                nia::FAMILY_NAME => &self.family_name,
                nia::DATE_OF_BIRTH => &self.date_of_birth,
                nia::EMAIL => &self.email,
                _ => continue,
            };
            *values = vec![value.clone()];
        }
    }
}

/// The simulated NIA's users: first the person of [`ResponseSpec::nia`] (what a test that
/// submits the page's first form gets), then a second person, to show the identity change.
pub fn nia_demo_users() -> Vec<NiaUser> {
    vec![
        NiaUser {
            label: "Jan Novák — eObčanka (substantial)".into(),
            bsi: "CZ/CZ/2e3883ee-7e0d-47cb-8fee-2ea231a58ee6".into(),
            given_name: "JAN".into(),
            family_name: "NOVÁK".into(),
            date_of_birth: "1968-03-29".into(),
            email: "jan.novak@example.cz".into(),
        },
        NiaUser {
            label: "Marie Svobodová — Bankovní identita (substantial)".into(),
            bsi: "CZ/CZ/7b1d9c40-3f2a-4e86-b5d1-0a9e8c7f6b52".into(),
            given_name: "MARIE".into(),
            family_name: "SVOBODOVÁ".into(),
            date_of_birth: "1985-11-02".into(),
            email: "marie.svobodova@example.cz".into(),
        },
    ]
}

/// The `AuthnContextClassRef` an AuthnRequest asks for (the simulator reads its own
/// requests' shape; it is not a general XML parser).
fn requested_authn_context(xml: &str) -> Option<String> {
    let start = xml.find("AuthnContextClassRef>")? + "AuthnContextClassRef>".len();
    let end = xml[start..].find('<')? + start;
    Some(xml[start..end].trim().to_owned()).filter(|v| !v.is_empty())
}

/// The simulated NIA's login page: the simulator banner and one form per user, each POSTing
/// that user's Response (and the RelayState) to the ACS. No inline script: a browser presses
/// a button, a test client submits the first form (the first user) or the one it picks.
pub fn login_page(action: &str, relay_state: Option<&str>, responses: &[(String, String)]) -> String {
    let relay = relay_state
        .map(|rs| format!("<input type=\"hidden\" name=\"RelayState\" value=\"{}\">", html_escape(rs)))
        .unwrap_or_default();
    let forms: String = responses
        .iter()
        .map(|(label, response)| {
            format!(
                "<form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"SAMLResponse\" value=\"{}\">{relay}{}</form>",
                html_escape(action),
                html_escape(&binding::base64(response)),
                super::user_button(None, label)
            )
        })
        .collect();
    super::sim_page(
        "Simulovaný NIA",
        "Přihlášení přes NIA (simulace)",
        &format!("<p>Vyberte uživatele / choose a user:</p>{forms}"),
    )
}

async fn slo(State(s): St, RawQuery(query): RawQuery) -> Response {
    let Ok(msg) = binding::decode_redirect(query.as_deref().unwrap_or_default(), 256 * 1024) else {
        return (StatusCode::BAD_REQUEST, "bad SAMLRequest").into_response();
    };
    let xml = String::from_utf8_lossy(&msg.xml).into_owned();
    let Some(request_id) = root_id(&xml) else {
        return (StatusCode::BAD_REQUEST, "LogoutRequest without ID").into_response();
    };
    let in_response_to = {
        let mut k = lock(&s.knobs);
        k.last_logout_request = Some(xml);
        k.logout_in_response_to.take().unwrap_or(request_id)
    };
    let id = crate::provider::saml::authn_request::new_id();
    let response = logout::build_response(
        &id,
        crate::session::now_unix(),
        Some(&s.cfg.sp_slo_url),
        &in_response_to,
        &s.cfg.entity_id,
        logout::STATUS_SUCCESS,
        None,
    );
    match binding::redirect_url(
        &s.cfg.sp_slo_url,
        MessageKind::Response,
        &response,
        msg.relay_state.as_deref(),
        Some(&s.idp),
    ) {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(spec: &ResponseSpec) -> (String, Vec<(String, String, Vec<String>)>) {
        (spec.name_id.clone(), spec.attributes.clone())
    }

    #[test]
    fn the_first_user_is_the_default_spec_and_the_second_a_different_person() {
        let spec = ResponseSpec::nia(1_700_000_000, "_req", "https://sp/acs", "https://sp");
        let users = nia_demo_users();
        let mut first = spec.clone();
        users[0].apply(&mut first);
        // The page's first form (what tests submit) carries the spec unchanged.
        assert_eq!(identity(&first), identity(&spec));
        let mut second = spec.clone();
        users[1].apply(&mut second);
        assert_eq!(second.name_id, users[1].bsi);
        let values = |s: &ResponseSpec, name: &str| {
            s.attributes.iter().find(|(n, _, _)| n == name).map(|(_, _, v)| v.clone()).unwrap_or_default()
        };
        use crate::sim::saml_response::nia;
        assert_eq!(values(&second, nia::PERSON_IDENTIFIER), vec![users[1].bsi.clone()]);
        assert_eq!(values(&second, nia::FAMILY_NAME), vec![users[1].family_name.clone()]);
        assert_ne!(values(&second, nia::FAMILY_NAME), values(&spec, nia::FAMILY_NAME));
        // Everything but the identity stays: same session, same LoA.
        assert_eq!((second.session_index, second.authn_context), (spec.session_index, spec.authn_context));
    }

    #[test]
    fn the_login_page_escapes_and_carries_the_relay_state_in_every_form() {
        let responses = vec![("A <b>".to_owned(), "<r1/>".to_owned()), ("B".to_owned(), "<r2/>".to_owned())];
        let page = login_page("https://sp/acs?a=1&b=2", Some("rs\"x"), &responses);
        assert!(page.contains("<html lang=\"cs\">") && page.contains("<title>Simulovaný NIA</title>"));
        assert!(page.contains("<button type=\"submit\">A &lt;b&gt;</button>"), "{page}");
        assert_eq!(page.matches("action=\"https://sp/acs?a=1&amp;b=2\"").count(), 2, "{page}");
        assert_eq!(page.matches("name=\"RelayState\" value=\"rs&quot;x\"").count(), 2, "{page}");
    }
}
