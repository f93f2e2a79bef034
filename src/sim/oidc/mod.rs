//! A simulated OpenID provider in the shape of CAAIS or EnviIAM, for tests and the demo.
//!
//! The browser-facing host (plain HTTP here) serves discovery, JWKS, `authorize` (which
//! redirects back at once with a code for the selected user), userinfo and `end_session`.
//! With `tls_client_auth` the token and userinfo endpoints live on a second, HTTPS host that
//! asks for a client certificate and accepts only the registered one, like CAAIS's `cert-`
//! host (its access tokens are certificate-bound); public
//! clients must prove PKCE. The refresh-token grant rotates refresh tokens (the old one stops
//! working) and is counted, so tests can prove single-flight refresh. Knobs make the next token bad in one precise way, rotate the
//! signing key, or take the whole provider down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair};
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use http::StatusCode;
use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;

use crate::pages::html_escape;

mod token;
use crate::sim::certs::TestPki;
use token::token;

/// How the simulated client authenticates at the token endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimClientAuth {
    /// The registered client certificate over mutual TLS (CAAIS).
    Mtls,
    /// A client secret (basic or post).
    Secret(String),
    /// Public client: PKCE required (EnviIAM).
    Public,
}

/// Signature algorithm of the simulator's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimAlg {
    /// RSA 2048, PKCS#1 v1.5 SHA-256 (CAAIS).
    Rs256,
    /// ECDSA P-256.
    Es256,
}

/// Simulator settings.
#[derive(Clone, Debug)]
pub struct OidcSimConfig {
    /// Registered client id.
    pub client_id: String,
    /// Registered redirect URI (the stack sets the gateway's callback when empty).
    pub redirect_uri: String,
    /// Client authentication.
    pub client_auth: SimClientAuth,
    /// Issuer ends with `/` (CAAIS) or not.
    pub issuer_trailing_slash: bool,
    /// JWKS keys and token headers carry a `kid` (CAAIS: no).
    pub kid: bool,
    /// Signature algorithm.
    pub alg: SimAlg,
    /// Claims of each user; the registered claims (`iss`, `aud`, `exp`, …) are added.
    pub users: Vec<Map<String, Value>>,
    /// Discovery and JWKS answer 503 from the start (see [`Knobs::outage`]).
    pub outage_at_start: bool,
}

/// A way to make the next ID token bad.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadToken {
    /// Header `alg: none`, empty signature.
    AlgNone,
    /// HS256 with the RSA/EC public key (its JWK JSON) as the HMAC secret.
    Hs256WithPublicKey,
    /// `iss` of another issuer.
    WrongIssuer,
    /// `aud` of another client.
    WrongAudience,
    /// `exp` an hour ago.
    Expired,
    /// The nonce of the previous login instead of this one.
    ReplayedNonce,
    /// Padded far beyond any sane size.
    Oversized,
    /// Signed with a key that is not in the JWKS.
    UnknownKey,
}

/// Test knobs and observations.
#[derive(Default, Debug)]
pub struct Knobs {
    /// Make the next ID token bad (one-shot).
    pub bad: Option<BadToken>,
    /// Discovery and JWKS answer 503 (the rest of the provider keeps working).
    pub outage: bool,
    /// Index of the user `authorize` logs in.
    pub user: usize,
    /// JWKS fetches so far.
    pub jwks_fetches: usize,
    /// Token requests so far.
    pub token_calls: usize,
    /// Query of the last `end_session` request.
    pub last_end_session: Option<HashMap<String, String>>,
    /// Query of the last `authorize` request.
    pub last_authorize: Option<HashMap<String, String>>,
    /// Userinfo answers with this `sub` instead of the user's.
    pub userinfo_sub: Option<String>,
    /// `authorize` answers with this OAuth error (e.g. `access_denied`) instead of a code.
    pub authorize_error: Option<String>,
    /// `sid` of the last ID token issued (a fresh random one per login).
    pub last_sid: Option<String>,
    /// The last ID token issued, as sent (what a logout's `id_token_hint` must equal byte
    /// for byte).
    pub last_id_token: Option<String>,
    /// Refresh-token grants answered so far (successful or not).
    pub refresh_calls: usize,
    /// Refresh-token grants are refused with this OAuth error (e.g. `invalid_grant`).
    pub refresh_error: Option<String>,
    /// The token endpoint answers 503 (every grant).
    pub token_outage: bool,
    /// Lifetime of issued access tokens, seconds (default 299, like CAAIS).
    pub access_token_ttl: Option<u64>,
    /// Refresh grants return no new refresh token (default: each refresh rotates it and the
    /// old one stops working).
    pub no_refresh_rotation: bool,
    /// The last access token issued.
    pub last_access_token: Option<String>,
    /// Further registered client ids (per-LoA clients, CAAIS style), with the same credentials.
    pub extra_client_ids: Vec<String>,
    /// ID tokens carry this `loa` claim.
    pub loa_claim: Option<String>,
    /// Calls of the userinfo (profile) endpoint so far, counted on arrival.
    pub userinfo_calls: usize,
    /// The userinfo endpoint answers a signed JWT (`application/jwt`, EnviIAM `/oidc/profile`)
    /// instead of JSON.
    pub userinfo_jwt: bool,
    /// The userinfo endpoint answers 503.
    pub userinfo_outage: bool,
    /// The userinfo answer carries this `exp` (JWT or JSON); default for JWTs: the token's.
    pub userinfo_exp: Option<u64>,
    /// The userinfo endpoint waits for a permit of this semaphore before answering (after
    /// counting the call): tests hold concurrent calls in flight.
    pub userinfo_gate: Option<Arc<tokio::sync::Semaphore>>,
}

/// A way to make a back-channel logout token bad (see [`OidcSim::logout_token`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadLogoutToken {
    /// No `events` claim.
    NoEvents,
    /// `events` without the back-channel logout member.
    OtherEvent,
    /// Carries a `nonce` (looks like an ID token).
    WithNonce,
    /// `aud` of another client.
    WrongAudience,
    /// `iss` of another issuer.
    WrongIssuer,
    /// No `jti`.
    NoJti,
    /// `iat` an hour ago.
    Stale,
    /// Header `alg: none`, empty signature.
    AlgNone,
    /// HS256 with the public key (its JWK JSON) as the HMAC secret.
    Hs256WithPublicKey,
    /// A valid signature over other claims: the payload was tampered with.
    Tampered,
    /// Signed with a key that is not in the JWKS.
    UnknownKey,
}

enum SimKeyPair {
    Rsa(Box<aws_lc_rs::rsa::KeyPair>),
    Ec(EcdsaKeyPair),
}

struct SimKey {
    kid: String,
    pair: SimKeyPair,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl SimKey {
    fn generate(alg: SimAlg) -> Result<SimKey, String> {
        let pair = match alg {
            SimAlg::Rs256 => SimKeyPair::Rsa(Box::new(
                aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(|e| e.to_string())?,
            )),
            SimAlg::Es256 => SimKeyPair::Ec(
                EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|e| e.to_string())?,
            ),
        };
        Ok(SimKey { kid: b64(&crate::session::random_id()[..9]), pair })
    }

    fn alg(&self) -> &'static str {
        match self.pair {
            SimKeyPair::Rsa(_) => "RS256",
            SimKeyPair::Ec(_) => "ES256",
        }
    }

    fn jwk(&self, with_kid: bool) -> Value {
        let mut jwk = match &self.pair {
            SimKeyPair::Rsa(k) => {
                let c = aws_lc_rs::rsa::PublicKeyComponents::<Vec<u8>>::from(k.public_key());
                json!({"kty": "RSA", "use": "sig", "n": b64(&c.n), "e": b64(&c.e)})
            }
            SimKeyPair::Ec(k) => {
                let point = k.public_key().as_ref();
                json!({"kty": "EC", "use": "sig", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
        };
        if with_kid {
            jwk["kid"] = json!(self.kid);
        }
        jwk
    }

    fn sign(&self, with_kid: bool, claims: &Value) -> Result<String, String> {
        self.sign_header(with_kid, json!({"alg": self.alg()}), claims)
    }

    /// Signs with a `typ` header (`at+jwt` for JWT access tokens, RFC 9068).
    fn sign_typed(&self, with_kid: bool, typ: &str, claims: &Value) -> Result<String, String> {
        self.sign_header(with_kid, json!({"alg": self.alg(), "typ": typ}), claims)
    }

    fn sign_header(&self, with_kid: bool, mut header: Value, claims: &Value) -> Result<String, String> {
        if with_kid {
            header["kid"] = json!(self.kid);
        }
        let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let rng = SystemRandom::new();
        let sig = match &self.pair {
            SimKeyPair::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig).map_err(|e| e.to_string())?;
                sig
            }
            SimKeyPair::Ec(k) => k.sign(&rng, input.as_bytes()).map_err(|e| e.to_string())?.as_ref().to_vec(),
        };
        Ok(format!("{input}.{}", b64(&sig)))
    }
}

struct Grant {
    client_id: String,
    nonce: Option<String>,
    challenge: Option<String>,
    redirect_uri: String,
    user: usize,
}

struct SimState {
    cfg: OidcSimConfig,
    issuer: String,
    base: String,
    token_base: String,
    key: Mutex<Arc<SimKey>>,
    stranger: SimKey,
    registered_client: Vec<u8>,
    codes: Mutex<HashMap<String, Grant>>,
    access_tokens: Mutex<HashMap<String, usize>>,
    /// Live refresh tokens, their user and the client they were issued to.
    refresh_tokens: Mutex<HashMap<String, (usize, String)>>,
    previous_nonce: Mutex<Option<String>>,
    knobs: Arc<Mutex<Knobs>>,
}

/// A running simulated OpenID provider.
pub struct OidcSim {
    /// Browser-facing base URL.
    pub base: String,
    /// The issuer identifier.
    pub issuer: String,
    /// Test knobs.
    pub knobs: Arc<Mutex<Knobs>>,
    state: Arc<SimState>,
}

impl OidcSim {
    /// The discovery document URL.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.base)
    }

    /// Replaces the signing key; the JWKS then publishes only the new one.
    pub fn rotate_key(&self) -> Result<(), String> {
        let alg = self.state.cfg.alg;
        *self.state.key.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(SimKey::generate(alg)?);
        Ok(())
    }

    /// Changes the knobs.
    pub fn knobs(&self) -> std::sync::MutexGuard<'_, Knobs> {
        self.knobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An access token for user `user` as if a login had just issued it (API tests: the
    /// calling application's token).
    pub fn issue_access_token(&self, user: usize) -> String {
        token::issue_access_token(&self.state, user).0
    }

    /// Revokes an access token: the userinfo endpoint refuses it from now on.
    pub fn revoke_access_token(&self, token: &str) {
        self.state.access_tokens.lock().unwrap_or_else(|e| e.into_inner()).remove(token);
    }

    /// A JWT access token (RFC 9068, `typ: at+jwt`) for user `user`, signed with the current
    /// key, valid for `ttl` seconds; the userinfo endpoint also accepts it.
    pub fn jwt_access_token(&self, user: usize, ttl: u64) -> Result<String, String> {
        let s = &self.state;
        let now = crate::session::now_unix();
        let claims = json!({
            "iss": s.issuer, "sub": s.cfg.users.get(user).and_then(|u| u.get("sub")).cloned().unwrap_or_default(),
            "aud": s.cfg.client_id, "client_id": s.cfg.client_id, "iat": now, "exp": now + ttl, "jti": random(),
        });
        let key = s.key.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let token = key.sign_typed(s.cfg.kid, "at+jwt", &claims)?;
        s.access_tokens.lock().unwrap_or_else(|e| e.into_inner()).insert(token.clone(), user);
        Ok(token)
    }

    /// A back-channel logout token (Back-Channel Logout 1.0 §2.4) for `sub` and/or `sid`, signed
    /// with the current key and a fresh `jti`, or spoiled in one way by `bad`.
    pub fn logout_token(
        &self,
        sub: Option<&str>,
        sid: Option<&str>,
        bad: Option<BadLogoutToken>,
    ) -> Result<String, String> {
        let s = &self.state;
        let now = crate::session::now_unix();
        let mut claims = json!({
            "iss": if bad == Some(BadLogoutToken::WrongIssuer) { "https://evil.example/" } else { s.issuer.as_str() },
            "aud": if bad == Some(BadLogoutToken::WrongAudience) { "OTHER_AIS" } else { s.cfg.client_id.as_str() },
            "iat": if bad == Some(BadLogoutToken::Stale) { now - 3600 } else { now },
            "exp": now + 120,
            "jti": random(),
            "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
        });
        if let Some(sub) = sub {
            claims["sub"] = json!(sub);
        }
        if let Some(sid) = sid {
            claims["sid"] = json!(sid);
        }
        if let Some(map) = claims.as_object_mut() {
            match bad {
                Some(BadLogoutToken::NoEvents) => {
                    map.remove("events");
                }
                Some(BadLogoutToken::OtherEvent) => {
                    map.insert("events".into(), json!({"http://other.example/event": {}}));
                }
                Some(BadLogoutToken::WithNonce) => {
                    map.insert("nonce".into(), json!(random()));
                }
                Some(BadLogoutToken::NoJti) => {
                    map.remove("jti");
                }
                _ => {}
            }
        }
        let key = s.key.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match bad {
            Some(BadLogoutToken::AlgNone) => {
                Ok(format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(claims.to_string().as_bytes())))
            }
            Some(BadLogoutToken::Hs256WithPublicKey) => Ok(hs256_with_public_key(&key, s.cfg.kid, &claims)),
            Some(BadLogoutToken::UnknownKey) => s.stranger.sign(s.cfg.kid, &claims),
            Some(BadLogoutToken::Tampered) => {
                let signed = key.sign(s.cfg.kid, &claims)?;
                claims["sub"] = json!("someone-else");
                let mut parts: Vec<String> = signed.split('.').map(str::to_owned).collect();
                if let Some(payload) = parts.get_mut(1) {
                    *payload = b64(claims.to_string().as_bytes());
                }
                Ok(parts.join("."))
            }
            _ => key.sign(s.cfg.kid, &claims),
        }
    }
}

/// HS256 keyed with the public key's JWK JSON: the RFC 8725 §2.1 algorithm confusion.
fn hs256_with_public_key(key: &SimKey, with_kid: bool, claims: &Value) -> String {
    let secret = key.jwk(with_kid).to_string();
    let input = format!("{}.{}", b64(br#"{"alg":"HS256"}"#), b64(claims.to_string().as_bytes()));
    let mac = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes()),
        input.as_bytes(),
    );
    format!("{input}.{}", b64(mac.as_ref()))
}

fn random() -> String {
    b64(&crate::session::random_id())
}

/// Starts the simulator. `pki` provides the server certificate of the token host and the
/// registered client certificate (for [`SimClientAuth::Mtls`]).
pub async fn start(cfg: OidcSimConfig, pki: &TestPki) -> Result<OidcSim, String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("bind: {e}"))?;
    let base = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    let issuer = if cfg.issuer_trailing_slash { format!("{base}/") } else { format!("{base}/oidc") };
    let mtls = cfg.client_auth == SimClientAuth::Mtls;
    let tls_listener =
        if mtls { Some(TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("bind: {e}"))?) } else { None };
    let token_base = match &tls_listener {
        Some(l) => format!("https://localhost:{}", l.local_addr().map_err(|e| e.to_string())?.port()),
        None => base.clone(),
    };
    let registered = crate::tls::load_certs(&pki.client_cert).map_err(|e| e.to_string())?;
    let knobs = Arc::new(Mutex::new(Knobs { outage: cfg.outage_at_start, ..Knobs::default() }));
    let state = Arc::new(SimState {
        key: Mutex::new(Arc::new(SimKey::generate(cfg.alg)?)),
        stranger: SimKey::generate(cfg.alg)?,
        cfg,
        issuer: issuer.clone(),
        base: base.clone(),
        token_base,
        registered_client: registered.first().map(|c| c.as_ref().to_vec()).unwrap_or_default(),
        codes: Mutex::new(HashMap::new()),
        access_tokens: Mutex::new(HashMap::new()),
        refresh_tokens: Mutex::new(HashMap::new()),
        previous_nonce: Mutex::new(None),
        knobs: knobs.clone(),
    });
    let router = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/oauth2/jwks", get(jwks))
        .route("/oauth2/authorize", get(authorize))
        .route("/userinfo", get(userinfo))
        .route("/oauth2/end_session", get(end_session))
        .route(
            "/oauth2/token",
            axum::routing::post(
                |State(s): State<Arc<SimState>>, headers: http::HeaderMap, body: axum::body::Bytes| async move {
                    token(&s, None, &headers, &body)
                },
            ),
        )
        .with_state(state.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "OIDC simulator stopped");
        }
    });
    if let Some(tls_listener) = tls_listener {
        spawn_token_host(tls_listener, pki, state.clone())?;
    }
    Ok(OidcSim { base, issuer, knobs, state })
}

fn spawn_token_host(listener: TcpListener, pki: &TestPki, state: Arc<SimState>) -> Result<(), String> {
    let acceptor = crate::sim::certs::optional_mtls_acceptor(pki)?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let acceptor = acceptor.clone();
            let state = state.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else { return };
                let cert: Option<Vec<u8>> =
                    tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.as_ref().to_vec());
                let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let state = state.clone();
                    let cert = cert.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let resp = if parts.uri.path() == "/oauth2/token" && parts.method == http::Method::POST {
                            token(&state, Some(cert.as_deref()), &parts.headers, &body)
                        } else if parts.uri.path() == "/userinfo" && parts.method == http::Method::GET {
                            // CAAIS binds access tokens to the client certificate (caais.md
                            // §7.2): userinfo on this host answers only the registered one.
                            if cert.as_deref() == Some(state.registered_client.as_slice()) {
                                userinfo(State(state.clone()), parts.headers).await
                            } else {
                                oauth_error(StatusCode::UNAUTHORIZED, "invalid_token")
                            }
                        } else {
                            StatusCode::NOT_FOUND.into_response()
                        };
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Ok(())
}

/// Whether `client_id` is a registered client (the main one or an extra per-LoA one).
fn registered(state: &SimState, client_id: &str) -> bool {
    client_id == state.cfg.client_id
        || state.knobs.lock().unwrap_or_else(|e| e.into_inner()).extra_client_ids.iter().any(|c| c == client_id)
}

fn down(state: &SimState) -> bool {
    state.knobs.lock().unwrap_or_else(|e| e.into_inner()).outage
}

fn unavailable() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "simulated outage").into_response()
}

async fn discovery(State(s): State<Arc<SimState>>) -> Response {
    if down(&s) {
        return unavailable();
    }
    json_response(
        StatusCode::OK,
        &json!({
            "issuer": s.issuer,
            "authorization_endpoint": format!("{}/oauth2/authorize", s.base),
            "token_endpoint": format!("{}/oauth2/token", s.token_base),
            "jwks_uri": format!("{}/oauth2/jwks", s.base),
            // With mTLS (CAAIS) userinfo is on the certificate host, like the token endpoint.
            "userinfo_endpoint": format!("{}/userinfo", s.token_base),
            "end_session_endpoint": format!("{}/oauth2/end_session", s.base),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "form_post"],
            "token_endpoint_auth_methods_supported": ["tls_client_auth", "client_secret_basic", "client_secret_post", "none"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "code_challenge_methods_supported": ["S256"],
        }),
    )
}

async fn jwks(State(s): State<Arc<SimState>>) -> Response {
    if down(&s) {
        return unavailable();
    }
    s.knobs.lock().unwrap_or_else(|e| e.into_inner()).jwks_fetches += 1;
    let key = s.key.lock().unwrap_or_else(|e| e.into_inner()).clone();
    json_response(StatusCode::OK, &json!({ "keys": [key.jwk(s.cfg.kid)] }))
}

async fn authorize(State(s): State<Arc<SimState>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let user = {
        let mut knobs = s.knobs.lock().unwrap_or_else(|e| e.into_inner());
        knobs.last_authorize = Some(q.clone());
        knobs.user
    };
    let get = |k: &str| q.get(k).map(String::as_str);
    // caais.md §1.4: a bad parameter is an HTTP 400 page at the IdP, never a redirect.
    if !get("client_id").is_some_and(|c| registered(&s, c))
        || get("redirect_uri") != Some(s.cfg.redirect_uri.as_str())
        || get("response_type") != Some("code")
        || !get("scope").unwrap_or("").split(' ').any(|x| x == "openid")
        || (get("code_challenge").is_some() && get("code_challenge_method") != Some("S256"))
        || user >= s.cfg.users.len()
    {
        return (StatusCode::BAD_REQUEST, "400 Bad Request (simulated IdP: invalid authorization request)")
            .into_response();
    }
    let code = random();
    s.codes.lock().unwrap_or_else(|e| e.into_inner()).insert(
        code.clone(),
        Grant {
            client_id: get("client_id").unwrap_or_default().to_owned(),
            nonce: q.get("nonce").cloned(),
            challenge: q.get("code_challenge").cloned(),
            redirect_uri: s.cfg.redirect_uri.clone(),
            user,
        },
    );
    let error = s.knobs.lock().unwrap_or_else(|e| e.into_inner()).authorize_error.take();
    let mut fields = match error {
        Some(error) => vec![("error", error)],
        None => vec![("code", code)],
    };
    if let Some(state) = q.get("state") {
        fields.push(("state", state.clone()));
    }
    if get("response_mode") == Some("form_post") {
        let inputs: String = fields
            .iter()
            .map(|(k, v)| format!("<input type=\"hidden\" name=\"{k}\" value=\"{}\">", html_escape(v)))
            .collect();
        return Html(format!(
            "<!doctype html><html><body onload=\"document.forms[0].submit()\"><form method=\"post\" action=\"{}\">{inputs}</form></body></html>",
            html_escape(&s.cfg.redirect_uri)
        ))
        .into_response();
    }
    let mut url = match url::Url::parse(&s.cfg.redirect_uri) {
        Ok(u) => u,
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    url.query_pairs_mut().extend_pairs(fields);
    Redirect::to(url.as_str()).into_response()
}

/// A JSON response.
fn json_response(status: StatusCode, value: &Value) -> Response {
    (status, [(http::header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    json_response(status, &json!({ "error": error }))
}

async fn userinfo(State(s): State<Arc<SimState>>, headers: http::HeaderMap) -> Response {
    let (gate, outage) = {
        let mut knobs = s.knobs.lock().unwrap_or_else(|e| e.into_inner());
        knobs.userinfo_calls += 1;
        (knobs.userinfo_gate.clone(), knobs.userinfo_outage)
    };
    if let Some(gate) = gate {
        if let Ok(permit) = gate.acquire().await {
            permit.forget();
        }
    }
    if outage {
        return unavailable();
    }
    let token =
        headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let user = token.and_then(|t| s.access_tokens.lock().unwrap_or_else(|e| e.into_inner()).get(t).copied());
    match user.and_then(|u| s.cfg.users.get(u)) {
        Some(claims) => {
            let mut claims = claims.clone();
            let (sub, as_jwt, exp) = {
                let knobs = s.knobs.lock().unwrap_or_else(|e| e.into_inner());
                (knobs.userinfo_sub.clone(), knobs.userinfo_jwt, knobs.userinfo_exp)
            };
            if let Some(sub) = sub {
                claims.insert("sub".to_owned(), json!(sub));
            }
            if let Some(exp) = exp {
                claims.insert("exp".to_owned(), json!(exp));
            }
            if !as_jwt {
                return json_response(StatusCode::OK, &Value::Object(claims));
            }
            // EnviIAM `/oidc/profile` (enviam.md §5.5 step 4): the identity as a signed JWT.
            let now = crate::session::now_unix();
            for (k, v) in [
                ("iss", json!(s.issuer)),
                ("aud", json!(s.cfg.client_id)),
                ("client_id", json!(s.cfg.client_id)),
                ("iat", json!(now)),
            ] {
                claims.insert(k.to_owned(), v);
            }
            claims.entry("exp").or_insert(json!(now + 299));
            let key = s.key.lock().unwrap_or_else(|e| e.into_inner()).clone();
            match key.sign(s.cfg.kid, &Value::Object(claims)) {
                Ok(jwt) => (StatusCode::OK, [(http::header::CONTENT_TYPE, "application/jwt")], jwt).into_response(),
                Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            }
        }
        None => oauth_error(StatusCode::UNAUTHORIZED, "invalid_token"),
    }
}

async fn end_session(State(s): State<Arc<SimState>>, Query(q): Query<HashMap<String, String>>) -> Response {
    s.knobs.lock().unwrap_or_else(|e| e.into_inner()).last_end_session = Some(q.clone());
    match q.get("post_logout_redirect_uri").and_then(|u| url::Url::parse(u).ok()) {
        Some(mut url) => {
            if let Some(state) = q.get("state") {
                url.query_pairs_mut().append_pair("state", state);
            }
            Redirect::to(url.as_str()).into_response()
        }
        None => Html("<!doctype html><p>Odhlášeno (simulace).</p>").into_response(),
    }
}

/// A CAAIS-like official with roles and an organisation.
pub fn caais_user() -> Map<String, Value> {
    let v = json!({
        "sub": "16b33670-a816-4c1a-8712-d99e9ff85fec",
        "username": "humphrey_appleby", "given_name": "Humphrey", "family_name": "Appleby",
        "degree_before": "Sir", "degree_after": "", "person_identified": false, "is_statutory_representative": false,
        "access_roles": [{"access_role_code": "editor"}, {"access_role_code": "spravce"}],
        "activity_roles": [{"agenda_code": "K100", "activity_role_code": ["CR1111", "CR2222"]}],
        "legal_entity_shorcut": "MF", "lei": "00006947", "legal_entity_name": "Ministerstvo financí",
        "public_organization_identifier": "00006947",
    });
    v.as_object().cloned().unwrap_or_default()
}

/// An EnviIAM-like user with CRŽP and RPP roles, LoA and SSO expiry (in an hour).
pub fn enviam_user() -> Map<String, Value> {
    let v = json!({
        "sub": "123e4567-e89b-12d3-a456-426655440000",
        "login": "custuser", "given_name": "Otto", "family_name": "Klus", "full_name": "Ing. Otto Klus",
        "email": "oto.klus@org.cz", "phone": "+420777666555",
        "role_crzp": "A100, A101", "role_rpp": "A100:A001,A101:A002", "loa": "high",
        "SSOExpiration": (crate::session::now_unix() + 3600).to_string(),
    });
    v.as_object().cloned().unwrap_or_default()
}
