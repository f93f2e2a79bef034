//! The back channel to the OpenID provider: discovery, JWKS, token and userinfo calls, with
//! client authentication, size-limited reads and errors that never carry tokens.
//!
//! With `tls_client_auth` one mTLS client serves every call: the certificate-bound access
//! token of CAAIS is then also accepted by its userinfo endpoint (caais.md §1.3, §7.2).

use std::time::Duration;

use base64::Engine;
use serde::Deserialize;

use super::config::{ClientAuth, OidcProviderConfig};
use super::reason::{Failure, OAuthError};
use crate::provider::{CommonReason, ProviderError};

/// Largest discovery, JWKS, token or userinfo response read, bytes.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Discovery metadata the gateway uses (OIDC Discovery §3).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Metadata {
    /// Issuer identifier, compared byte-exact.
    pub issuer: String,
    /// Browser-facing authorization endpoint.
    pub authorization_endpoint: String,
    /// Token endpoint (CAAIS: on the separate `cert-` host, mTLS).
    pub token_endpoint: String,
    /// JWKS URL.
    pub jwks_uri: String,
    /// Userinfo endpoint.
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// RP-initiated logout endpoint.
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
}

/// The token endpoint's answer (RFC 6749 §5.1, OIDC Core §3.1.3.3). No `Debug`: it holds
/// tokens.
#[derive(Deserialize)]
pub struct TokenResponse {
    /// The ID token.
    pub id_token: Option<String>,
    /// The access token.
    #[serde(default)]
    pub access_token: Option<String>,
    /// Lifetime of the access token, seconds.
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// The refresh token.
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// One client registration's credentials.
pub struct Credentials<'a> {
    /// Client id.
    pub client_id: &'a str,
    /// Client certificate (`tls_client_auth`).
    pub client_cert: Option<&'a std::path::Path>,
    /// Its key.
    pub client_key: Option<&'a std::path::Path>,
    /// Client secret (secret methods).
    pub client_secret: Option<&'a super::config::SecretRef>,
}

/// The HTTP channel with the configured client authentication.
pub struct IdpClient {
    http: reqwest::Client,
    auth: ClientAuth,
    client_id: String,
    /// Wiped from memory on drop.
    secret: Option<zeroize::Zeroizing<String>>,
}

impl IdpClient {
    /// Builds the client: loads the certificate and key (once) for `tls_client_auth`, reads the
    /// client secret for the secret methods.
    pub fn build(cfg: &OidcProviderConfig, env: &crate::gateway::EnvSource) -> Result<IdpClient, String> {
        let main = Credentials {
            client_id: &cfg.client_id,
            client_cert: cfg.client_cert.as_deref(),
            client_key: cfg.client_key.as_deref(),
            client_secret: cfg.client_secret.as_ref(),
        };
        IdpClient::build_for(cfg, &main, env)
    }

    /// Builds the client of one registration (the main one or a per-LoA one) with the
    /// provider's authentication method, trust and timeouts.
    pub fn build_for(
        cfg: &OidcProviderConfig,
        creds: &Credentials<'_>,
        env: &crate::gateway::EnvSource,
    ) -> Result<IdpClient, String> {
        let roots = crate::tls::roots(cfg.ca_bundle.as_deref()).map_err(|e| e.to_string())?;
        let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
        let auth = cfg.client_auth();
        let tls = match (auth, creds.client_cert, creds.client_key) {
            (ClientAuth::TlsClientAuth, Some(cert), Some(key)) => {
                let certs = crate::tls::load_certs(cert).map_err(|e| e.to_string())?;
                let key = crate::tls::load_key(key).map_err(|e| e.to_string())?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| format!("{}: certificate and key do not match: {e}", cert.display()))?
            }
            (ClientAuth::TlsClientAuth, _, _) => return Err("tls_client_auth needs client_cert and client_key".into()),
            _ => builder.with_no_client_auth(),
        };
        let http = crate::tls::back_channel_client(
            tls,
            Duration::from_secs(cfg.connect_timeout_secs),
            Duration::from_secs(cfg.timeout_secs),
        )?;
        let secret = match (auth, creds.client_secret) {
            (ClientAuth::ClientSecretBasic | ClientAuth::ClientSecretPost, Some(s)) => {
                Some(zeroize::Zeroizing::new(s.read(env)?))
            }
            (ClientAuth::ClientSecretBasic | ClientAuth::ClientSecretPost, None) => {
                return Err(format!("client_auth = \"{}\" needs client_secret", auth.as_str()))
            }
            _ => None,
        };
        Ok(IdpClient { http, auth, client_id: creds.client_id.to_owned(), secret })
    }

    /// The client id this channel authenticates as.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// GETs a JSON document.
    pub async fn get(&self, url: &str) -> Result<Vec<u8>, ProviderError> {
        let resp = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| unreachable(url, &e))?;
        let status = resp.status();
        let body = crate::provider::read_limited(resp, MAX_RESPONSE_BYTES).await?;
        if !status.is_success() {
            return Err(ProviderError::with_context(
                CommonReason::HttpStatus,
                format_args!("HTTP {status} from {url}"),
            ));
        }
        Ok(body)
    }

    /// Fetches and parses the discovery document.
    pub async fn discovery(&self, url: &str) -> Result<Metadata, ProviderError> {
        let body = self.get(url).await?;
        serde_json::from_slice(&body)
            .map_err(|e| ProviderError::with_context(Failure::DiscoveryInvalid, format_args!("{url}: {e}")))
    }

    /// Redeems an authorization code (RFC 6749 §4.1.3, RFC 7636 §4.5, RFC 8705 §2).
    pub async fn exchange_code(
        &self,
        token_endpoint: &str,
        code: &str,
        redirect_uri: &str,
        code_verifier: &str,
    ) -> Result<TokenResponse, ProviderError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", code_verifier),
        ];
        self.token_request(token_endpoint, &form, "code").await
    }

    /// Refreshes tokens (RFC 6749 §6) with the same client authentication as the login.
    pub async fn refresh(&self, token_endpoint: &str, refresh_token: &str) -> Result<TokenResponse, ProviderError> {
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
        self.token_request(token_endpoint, &form, "refresh token").await
    }

    /// POSTs a grant to the token endpoint with the client authentication. `what` names the
    /// grant in refusals.
    async fn token_request(
        &self,
        token_endpoint: &str,
        grant: &[(&str, &str)],
        what: &str,
    ) -> Result<TokenResponse, ProviderError> {
        let mut form = grant.to_vec();
        // RFC 8705 §2 and public clients: client_id in the body. Basic carries it in the header.
        if self.auth != ClientAuth::ClientSecretBasic {
            form.push(("client_id", &self.client_id));
        }
        let secret = self.secret.as_ref().map_or("", |s| s.as_str());
        if self.auth == ClientAuth::ClientSecretPost {
            form.push(("client_secret", secret));
        }
        let mut request = self.http.post(token_endpoint).header(reqwest::header::ACCEPT, "application/json");
        if self.auth == ClientAuth::ClientSecretBasic {
            // RFC 6749 §2.3.1: both parts form-urlencoded before Base64.
            let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(&self.client_id), enc(secret)));
            request = request.header(reqwest::header::AUTHORIZATION, format!("Basic {basic}"));
        }
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let resp = request
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| unreachable(token_endpoint, &e))?;
        let status = resp.status();
        let body = crate::provider::read_limited(resp, MAX_RESPONSE_BYTES).await?;
        // RFC 6749 §5.2: an error response is 400, or 401 for `invalid_client` (a wrong client
        // certificate or secret). The code decides the side: `invalid_grant` is the login's,
        // `invalid_client` our configuration's. Only the registered code is kept; the
        // description may echo input.
        if status == reqwest::StatusCode::BAD_REQUEST || status == reqwest::StatusCode::UNAUTHORIZED {
            let code = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(OAuthError::parse));
            if let Some(code) = code {
                return Err(ProviderError::with_context(
                    Failure::TokenEndpointError(code),
                    format_args!("HTTP {status}, {what} grant"),
                ));
            }
        }
        if !status.is_success() {
            return Err(ProviderError::with_context(
                CommonReason::HttpStatus,
                format_args!("HTTP {status} from the token endpoint"),
            ));
        }
        serde_json::from_slice(&body).map_err(|e| {
            ProviderError::with_context(Failure::TokenResponseInvalid, format_args!("not valid JSON: {e}"))
        })
    }

    /// Calls the userinfo endpoint with the access token. JSON answers only.
    pub async fn userinfo(
        &self,
        endpoint: &str,
        access_token: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, ProviderError> {
        let answer = self.with_token(endpoint, access_token, "application/json").await?;
        if !answer.status.is_success() {
            return Err(ProviderError::with_context(
                CommonReason::HttpStatus,
                format_args!("HTTP {} from the userinfo endpoint", answer.status),
            ));
        }
        serde_json::from_slice(&answer.body)
            .map_err(|_| ProviderError::with_context(Failure::UserinfoInvalid, "not a JSON object"))
    }

    /// GETs `endpoint` with a user's access token (RFC 6750 §2.1) over this client's channel;
    /// only transport failures are errors here.
    async fn with_token(
        &self,
        endpoint: &str,
        access_token: &str,
        accept: &str,
    ) -> Result<ProfileAnswer, ProviderError> {
        let resp = self
            .http
            .get(endpoint)
            .bearer_auth(access_token)
            .header(reqwest::header::ACCEPT, accept)
            .send()
            .await
            .map_err(|e| unreachable(endpoint, &e))?;
        let status = resp.status();
        let content_type =
            resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = crate::provider::read_limited(resp, MAX_RESPONSE_BYTES).await?;
        Ok(ProfileAnswer { status, content_type, body })
    }
}

/// The profile (userinfo) endpoint's answer to an access token, as received: the body is
/// a JWT or a JSON object, told apart by the caller. No `Debug`: it holds personal data.
pub struct ProfileAnswer {
    /// HTTP status.
    pub status: reqwest::StatusCode,
    /// `Content-Type`, when sent.
    pub content_type: Option<String>,
    /// The body (at most [`MAX_RESPONSE_BYTES`]).
    pub body: Vec<u8>,
}

impl IdpClient {
    /// Calls the profile (userinfo) endpoint with a user's access token (RFC 6750 §2.1), over
    /// this client's channel (mTLS with `tls_client_auth`: CAAIS binds its access tokens to
    /// the certificate). Only transport failures are errors here; the status is the caller's.
    pub async fn profile(&self, endpoint: &str, access_token: &str) -> Result<ProfileAnswer, ProviderError> {
        self.with_token(endpoint, access_token, "application/jwt, application/json").await
    }
}

/// A transport failure towards `url` (the URL is configuration, not user data).
fn unreachable(url: &str, e: &reqwest::Error) -> ProviderError {
    ProviderError::with_context(CommonReason::Unreachable, format_args!("{url}: {}", crate::error_chain(e)))
}
