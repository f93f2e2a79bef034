//! A simulated JIP/KAAS / CAAIS-legacy IdP.
//!
//! Two listeners, as in reality: the browser-facing login host (plain HTTP here) serving
//! `login?atsId=` and `processLogout`, and the web-service host requiring mutual TLS for
//! `/asws/atsEndpoint`. Tokens are single use with an expiry; a client certificate that is
//! missing or not registered gets CAAIS's HTTP 401 JSON.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use http::StatusCode;
use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;

use crate::pages::html_escape;
use crate::provider::kaas::soap::{self, AuthStatus, KaasAttributes};
use crate::sim::certs::TestPki;
use crate::sim::kaas_soap::{self as sim_soap, KaasRequest, ResponseStyle};

/// A user the simulator can log in.
#[derive(Clone, Debug)]
pub struct SimUser {
    /// Label on the login page.
    pub label: String,
    /// What `authConfirmation` returns for this user.
    pub attributes: KaasAttributes,
}

/// Simulator settings.
#[derive(Clone, Debug)]
pub struct KaasSimConfig {
    /// The registered AIS.
    pub ats_id: String,
    /// Registered post-login URL (the gateway callback).
    pub callback_url: String,
    /// Registered logout URL prefix.
    pub logout_prefix: String,
    /// Token lifetime.
    pub token_ttl: Duration,
    /// Response shape.
    pub style: ResponseStyle,
    /// Users.
    pub users: Vec<SimUser>,
}

/// Test knobs: what the next `authConfirmation` calls answer instead of the normal flow.
#[derive(Default)]
pub struct Overrides {
    /// Statuses to return, first in first out (e.g. `SYSTEM_ERROR` once).
    pub next_statuses: Vec<AuthStatus>,
    /// Raw body (HTTP status, body) to return for the next call other than `heartBeat`
    /// (malformed-response tests).
    pub next_raw_body: Option<(u16, String)>,
}

struct SimState {
    cfg: KaasSimConfig,
    tokens: Mutex<HashMap<String, (usize, Instant)>>,
    /// One-time credentials: username → (password, user, expiry).
    one_time: Mutex<HashMap<String, (String, usize, Instant)>>,
    registered_client: Vec<u8>,
    /// Knobs for tests.
    overrides: Arc<Mutex<Overrides>>,
    calls: Arc<Mutex<Vec<String>>>,
}

/// A running simulator.
pub struct KaasSim {
    /// Browser-facing base URL (`http://127.0.0.1:port`).
    pub login_base: String,
    /// Web-service base URL (`https://localhost:port`).
    pub ws_base: String,
    /// Test knobs.
    pub overrides: Arc<Mutex<Overrides>>,
    /// Raw SOAP request bodies received (for schema checks).
    pub calls: Arc<Mutex<Vec<String>>>,
    state: Arc<SimState>,
}

impl KaasSim {
    /// `login` URL.
    pub fn login_url(&self) -> String {
        format!("{}/as/login", self.login_base)
    }
    /// `processLogout` URL.
    pub fn logout_url(&self) -> String {
        format!("{}/as/processLogout", self.login_base)
    }
    /// `atsEndpoint` URL.
    pub fn auth_ws_url(&self) -> String {
        format!("{}/asws/atsEndpoint", self.ws_base)
    }
    /// `directAuthUserEndpoint` URL.
    pub fn direct_ws_url(&self) -> String {
        format!("{}/asws/directAuthUserEndpoint", self.ws_base)
    }
    /// Issues one-time credentials for demo user `user` (what the generator page shows).
    pub fn issue_one_time(&self, user: usize) -> (String, String) {
        issue_one_time(&self.state, user)
    }
}

/// One-time credentials are valid for 30 minutes (kaas.md §14).
const ONE_TIME_TTL: Duration = Duration::from_secs(30 * 60);

fn issue_one_time(state: &SimState, user: usize) -> (String, String) {
    let token = new_token();
    let (username, password) = (format!("OTP{}", &token[..8]), token[9..].replace('-', ""));
    state
        .one_time
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(username.clone(), (password.clone(), user, Instant::now() + ONE_TIME_TTL));
    (username, password)
}

/// Demo users: one public-authority official with roles, one with diacritics everywhere.
pub fn demo_users() -> Vec<SimUser> {
    let official = KaasAttributes {
        user_id: Some("6f1c0d2a-6b7e-4d0e-9a51-3c2b1f0e9d84".into()),
        username: Some("novakova".into()),
        jmeno: Some("Jiřina".into()),
        prijmeni: Some("Nováková".into()),
        titul_pred: Some("Ing.".into()),
        email: Some("jirina.novakova@example.cz".into()),
        pristupove_role: vec!["REFERENT".into(), "SCHVALOVATEL".into()],
        cinnostni_role: vec![("A1234".into(), vec!["CR0001".into(), "CR0002".into()])],
        zkratka_subjektu: Some("MVCR".into()),
        ic_subjektu: Some("00007064".into()),
        nazev_subjektu: Some("Ministerstvo vnitra".into()),
        identifikator_ovm: Some("00007064".into()),
        typ_instituce: Some(1),
        typ_prihlaseni: Some("p-cert".into()),
        typ_prihlaseni_nia: Some("http://eidas.europa.eu/LoA/substantial".into()),
        osoba_ztotoznena: Some(true),
        ..KaasAttributes::default()
    };
    let clerk = KaasAttributes {
        user_id: Some("0b9c5a3e-2f4d-4c1a-8e7b-5d6f7a8b9c0d".into()),
        username: Some("dvorak".into()),
        jmeno: Some("Čeněk".into()),
        prijmeni: Some("Dvořák".into()),
        email: Some("cenek.dvorak@example.cz".into()),
        pristupove_role: vec!["CTENAR".into()],
        zkratka_subjektu: Some("OUSTARE".into()),
        ic_subjektu: Some("00261581".into()),
        nazev_subjektu: Some("Obecní úřad Staré Křečany".into()),
        identifikator_ovm: Some("00261581".into()),
        typ_instituce: Some(3),
        typ_prihlaseni: Some("p-pwd".into()),
        osoba_ztotoznena: Some(false),
        ..KaasAttributes::default()
    };
    vec![
        SimUser { label: "Ing. Jiřina Nováková — Ministerstvo vnitra (p-cert)".into(), attributes: official },
        SimUser { label: "Čeněk Dvořák — Obecní úřad Staré Křečany (p-pwd)".into(), attributes: clerk },
    ]
}

fn new_token() -> String {
    let id = crate::session::random_id();
    let hex: String = id[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// Starts the simulator: the login host on `login_addr` and the mTLS web-service host on
/// `ws_addr`, with the server certificate and CA from `pki`; the registered client is
/// `pki.client_cert`.
pub async fn start(
    cfg: KaasSimConfig,
    pki: &TestPki,
    login_addr: SocketAddr,
    ws_addr: SocketAddr,
) -> Result<KaasSim, String> {
    let registered = crate::tls::load_certs(&pki.client_cert).map_err(|e| e.to_string())?;
    let registered_client = registered.first().map(|c| c.as_ref().to_vec()).unwrap_or_default();
    let overrides = Arc::new(Mutex::new(Overrides::default()));
    let calls = Arc::new(Mutex::new(Vec::new()));
    let state = Arc::new(SimState {
        cfg,
        tokens: Mutex::new(HashMap::new()),
        one_time: Mutex::new(HashMap::new()),
        registered_client,
        overrides: overrides.clone(),
        calls: calls.clone(),
    });

    let state_for_handle = state.clone();
    let login_listener = TcpListener::bind(login_addr).await.map_err(|e| format!("bind {login_addr}: {e}"))?;
    let login_bound = login_listener.local_addr().map_err(|e| e.to_string())?;
    let router = Router::new()
        .route("/as/login", get(login_page).post(login_submit))
        .route("/as/processLogout", get(process_logout))
        .with_state(state.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(login_listener, router).await {
            tracing::error!(error = %e, "KAAS simulator login host stopped");
        }
    });

    let acceptor = crate::sim::certs::optional_mtls_acceptor(pki)?;
    let ws_listener = TcpListener::bind(ws_addr).await.map_err(|e| format!("bind {ws_addr}: {e}"))?;
    let ws_bound = ws_listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = ws_listener.accept().await else { continue };
            let acceptor = acceptor.clone();
            let state = state.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else { return };
                let client_cert: Option<CertificateDer<'static>> =
                    tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.clone().into_owned());
                let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let state = state.clone();
                    let client_cert = client_cert.clone();
                    async move { Ok::<_, std::convert::Infallible>(soap_endpoint(state, client_cert, req).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Ok(KaasSim {
        login_base: format!("http://{login_bound}"),
        ws_base: format!("https://localhost:{}", ws_bound.port()),
        overrides,
        calls,
        state: state_for_handle,
    })
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    #[serde(rename = "atsId")]
    ats_id: Option<String>,
    #[serde(rename = "providerType")]
    provider_type: Option<String>,
}

async fn login_page(State(state): State<Arc<SimState>>, Query(q): Query<LoginQuery>) -> Response {
    if q.ats_id.as_deref() != Some(state.cfg.ats_id.as_str()) {
        return (StatusCode::BAD_REQUEST, "Neznámý atsId / unknown atsId").into_response();
    }
    let direct = q.provider_type.as_deref() == Some("directAuth");
    let users: String =
        state.cfg.users.iter().enumerate().map(|(i, u)| super::user_button(Some(i), &u.label)).collect();
    let body = format!(
        "<p>AIS: <code>{}</code>. Vyberte uživatele / choose a user:</p>\
         <form method=\"post\" action=\"/as/login?atsId={}\">{users}</form>",
        html_escape(&state.cfg.ats_id),
        html_escape(&format!("{}{}", state.cfg.ats_id, if direct { "&providerType=directAuth" } else { "" })),
    );
    Html(super::sim_page("Simulovaný JIP/KAAS", "Přihlášení do JIP/KAAS (simulace)", &body)).into_response()
}

#[derive(serde::Deserialize)]
struct LoginForm {
    user: usize,
}

async fn login_submit(
    State(state): State<Arc<SimState>>,
    Query(q): Query<LoginQuery>,
    Form(form): Form<LoginForm>,
) -> Response {
    if form.user >= state.cfg.users.len() {
        return (StatusCode::BAD_REQUEST, "unknown user").into_response();
    }
    if q.provider_type.as_deref() == Some("directAuth") {
        let (username, password) = issue_one_time(&state, form.user);
        let body = format!(
            "<p>Jméno / name: <code class=\"credential\" id=\"username\">{}</code></p><p>Heslo / password: <code class=\"credential\" id=\"password\">{}</code></p>\
             <p>Platí 30 minut, jen jednou. Valid 30 minutes, single use.</p>",
            html_escape(&username),
            html_escape(&password)
        );
        return Html(super::sim_page("Jednorázové údaje (simulace)", "Jednorázové přihlašovací údaje", &body))
            .into_response();
    }
    let token = new_token();
    state
        .tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(token.clone(), (form.user, Instant::now() + state.cfg.token_ttl));
    let sep = if state.cfg.callback_url.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{}{sep}sessionId={token}", state.cfg.callback_url)).into_response()
}

#[derive(serde::Deserialize)]
struct LogoutQuery {
    #[serde(rename = "atsId")]
    ats_id: Option<String>,
    uri: Option<String>,
}

async fn process_logout(State(state): State<Arc<SimState>>, Query(q): Query<LogoutQuery>) -> Response {
    match (q.ats_id, q.uri) {
        (Some(ats), Some(uri)) if ats == state.cfg.ats_id && uri.starts_with(&state.cfg.logout_prefix) => {
            Redirect::to(&uri).into_response()
        }
        _ => (StatusCode::BAD_REQUEST, "processLogout: unknown atsId or uri outside the registered logout URL")
            .into_response(),
    }
}

fn xml(status: StatusCode, body: String) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(soap::CONTENT_TYPE));
    resp
}

async fn soap_endpoint(
    state: Arc<SimState>,
    client_cert: Option<CertificateDer<'static>>,
    req: http::Request<hyper::body::Incoming>,
) -> Response<Body> {
    if client_cert.as_ref().map(|c| c.as_ref()) != Some(state.registered_client.as_slice()) {
        let mut resp = Response::new(Body::from(
            r#"{"error":"unauthorized","error_description":"Client certificate missing or not registered"}"#,
        ));
        *resp.status_mut() = StatusCode::UNAUTHORIZED;
        resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        return resp;
    }
    let path = req.uri().path().to_owned();
    if !matches!(path.as_str(), "/asws/atsEndpoint" | "/asws/directAuthUserEndpoint")
        || req.method() != http::Method::POST
    {
        return xml(StatusCode::NOT_FOUND, String::new());
    }
    let body = match http_body_util::Limited::new(req.into_body(), 64 * 1024).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return xml(StatusCode::PAYLOAD_TOO_LARGE, String::new()),
    };
    state.calls.lock().unwrap_or_else(|e| e.into_inner()).push(String::from_utf8_lossy(&body).into_owned());
    let request = sim_soap::parse_request(&body);
    // The periodic heartBeat must not consume a raw body meant for a login's authConfirmation.
    if !matches!(request, Ok(KaasRequest::HeartBeat { .. })) {
        if let Some((status, raw)) = state.overrides.lock().unwrap_or_else(|e| e.into_inner()).next_raw_body.take() {
            return xml(StatusCode::from_u16(status).unwrap_or(StatusCode::OK), raw);
        }
    }
    match request {
        Ok(KaasRequest::HeartBeat { version }) => {
            xml(StatusCode::OK, sim_soap::heart_beat_response(version, true, None, None))
        }
        Ok(KaasRequest::AuthConfirmation { version, session_id }) => {
            let forced = {
                let mut o = state.overrides.lock().unwrap_or_else(|e| e.into_inner());
                (!o.next_statuses.is_empty()).then(|| o.next_statuses.remove(0))
            };
            if let Some(status) = forced {
                return xml(
                    StatusCode::OK,
                    sim_soap::auth_confirmation_response(version, &status, None, state.cfg.style.clone()),
                );
            }
            // Single use: the token is consumed whatever the outcome.
            let entry = state.tokens.lock().unwrap_or_else(|e| e.into_inner()).remove(&session_id);
            match entry {
                Some((user, expiry)) if Instant::now() < expiry => {
                    let attrs = state.cfg.users.get(user).map(|u| u.attributes.clone());
                    xml(
                        StatusCode::OK,
                        sim_soap::auth_confirmation_response(
                            version,
                            &AuthStatus::Ok,
                            attrs.as_ref(),
                            state.cfg.style.clone(),
                        ),
                    )
                }
                _ => xml(
                    StatusCode::OK,
                    sim_soap::auth_confirmation_response(
                        version,
                        &AuthStatus::SessionNotFound,
                        None,
                        state.cfg.style.clone(),
                    ),
                ),
            }
        }
        Ok(KaasRequest::DirectAuthUser { version, ns, username, password })
            if path.ends_with("directAuthUserEndpoint") =>
        {
            // Single use: the credentials are consumed whatever the outcome.
            let entry = state.one_time.lock().unwrap_or_else(|e| e.into_inner()).remove(&username);
            let user = match entry {
                Some((expected, user, expiry)) if expected == password && Instant::now() < expiry => Some(user),
                _ => None,
            };
            let attrs = user.and_then(|u| state.cfg.users.get(u)).map(|u| u.attributes.clone());
            let status = if attrs.is_some() { AuthStatus::Ok } else { AuthStatus::VerificationFailed };
            xml(
                StatusCode::OK,
                sim_soap::direct_auth_user_response(version, ns, &status, attrs.as_ref(), state.cfg.style.clone()),
            )
        }
        Ok(_) => xml(
            StatusCode::INTERNAL_SERVER_ERROR,
            sim_soap::soap_fault_response("soap:Client", "operation not served at this endpoint"),
        ),
        Err(e) => xml(
            StatusCode::INTERNAL_SERVER_ERROR,
            sim_soap::soap_fault_response("soap:Client", &format!("invalid request: {e}")),
        ),
    }
}
