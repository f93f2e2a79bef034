//! The upstream side: a pooled hyper client, hop-by-hop hygiene and WebSocket pass-through.
//!
//! Bodies stream in both directions (never buffered), so memory per request stays bounded
//! whatever the upload or download size. Upstream failures are classified for the 502/504
//! pages and the `aisgate_upstream_errors_total` metric.

pub mod body;
pub mod hop_by_hop;
pub mod tunnel;
pub mod upgrade;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{Request, Response};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::listen::worker::PerWorker;

pub use tunnel::{splice_upgrade, SessionBinding, Tunnel};

/// Why forwarding failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Could not connect (refused, DNS, TLS handshake).
    #[error("cannot connect to upstream: {0}")]
    Connect(String),
    /// No response head within the configured time.
    #[error("upstream did not answer within {0:?}")]
    Timeout(Duration),
    /// The connection broke or the upstream spoke invalid HTTP.
    #[error("upstream protocol error: {0}")]
    Protocol(String),
}

/// How an app's upstream TLS certificate is verified.
#[derive(Clone)]
pub enum UpstreamTrust {
    /// Against the public web PKI roots (shared pool).
    WebPki,
    /// Against the app's own CA bundle (a pool of its own).
    CaBundle(Box<PerWorker<HttpsClient>>),
    /// Not at all (`dangerous.skip_upstream_tls_verify`).
    Insecure,
}

impl std::fmt::Debug for UpstreamTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UpstreamTrust::WebPki => "WebPki",
            UpstreamTrust::CaBundle(_) => "CaBundle",
            UpstreamTrust::Insecure => "Insecure",
        })
    }
}

/// A pooled client for one trust setting.
pub type HttpsClient = Client<HttpsConnector<HttpConnector>, Body>;

/// Pooled clients: one verifying upstream TLS certificates against the web PKI, one that does
/// not (only for apps with `dangerous.skip_upstream_tls_verify`); apps with their own CA
/// bundle carry their own client in [`UpstreamTrust::CaBundle`].
#[derive(Clone)]
pub struct UpstreamClient {
    verified: Arc<PerWorker<HttpsClient>>,
    insecure: Arc<PerWorker<HttpsClient>>,
    connect_timeout: Duration,
    timeout: Duration,
}

fn build(tls: rustls::ClientConfig, connect_timeout: Duration) -> HttpsClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(90)).build(https)
}

impl UpstreamClient {
    /// Builds the clients.
    pub fn new(connect_timeout: Duration, timeout: Duration) -> UpstreamClient {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let verified = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        let insecure = crate::tls::insecure_client_config();
        UpstreamClient {
            // One pool per worker thread: a pooled connection is driven by the runtime that
            // opened it, so sharing pools across workers would add cross-thread wake-ups.
            verified: Arc::new(PerWorker::new(|| build(verified.clone(), connect_timeout))),
            insecure: Arc::new(PerWorker::new(|| build(insecure.clone(), connect_timeout))),
            connect_timeout,
            timeout,
        }
    }

    /// A client trusting only the CA certificates in `ca_bundle`.
    pub fn with_ca_bundle(&self, ca_bundle: &std::path::Path) -> Result<PerWorker<HttpsClient>, crate::tls::TlsError> {
        let roots = crate::tls::roots(Some(ca_bundle))?;
        let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        Ok(PerWorker::new(|| build(config.clone(), self.connect_timeout)))
    }

    /// Sends `req` and waits for the response head.
    pub async fn send(&self, req: Request<Body>, trust: &UpstreamTrust) -> Result<Response<Body>, UpstreamError> {
        let client = match trust {
            UpstreamTrust::WebPki => self.verified.get(),
            UpstreamTrust::CaBundle(clients) => clients.get(),
            UpstreamTrust::Insecure => self.insecure.get(),
        };
        match tokio::time::timeout(self.timeout, client.request(req)).await {
            Err(_) => Err(UpstreamError::Timeout(self.timeout)),
            Ok(Err(e)) if e.is_connect() => Err(UpstreamError::Connect(crate::error_chain(&e))),
            Ok(Err(e)) => Err(UpstreamError::Protocol(crate::error_chain(&e))),
            Ok(Ok(resp)) => Ok(resp.map(Body::new)),
        }
    }
}
