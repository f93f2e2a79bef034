//! The upstream side: per-worker connection pools, hop-by-hop hygiene and WebSocket pass-through.
//!
//! Bodies stream in both directions (never buffered), so memory per request stays bounded
//! whatever the upload or download size. Upstream failures are classified for the 502/504
//! pages and the `aisgate_upstream_errors_total` metric.

pub mod body;
pub mod hop_by_hop;
pub mod pool;
pub mod tunnel;
pub mod upgrade;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::uri::{Authority, Scheme};
use http::{Request, Response};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;

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

/// One worker's connection pool for one trust setting.
pub type HttpsClient = Arc<pool::Pool>;

/// Pooled connections: one set verifying upstream TLS certificates against the web PKI, one
/// that does not (only for apps with `dangerous.skip_upstream_tls_verify`); apps with their
/// own CA bundle carry their own pools in [`UpstreamTrust::CaBundle`].
#[derive(Clone)]
pub struct UpstreamClient {
    verified: Arc<PerWorker<HttpsClient>>,
    insecure: Arc<PerWorker<HttpsClient>>,
    connect_timeout: Duration,
    timeout: Duration,
}

fn connector(tls: rustls::ClientConfig, connect_timeout: Duration) -> HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().wrap_connector(http)
}

fn build(tls: rustls::ClientConfig, connect_timeout: Duration) -> HttpsClient {
    pool::Pool::new(connector(tls, connect_timeout))
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

    /// Sends `req` (origin-form URI, `Host` set) to `scheme://authority` on one of the current
    /// worker's pooled connections and waits for the response head.
    pub async fn send(
        &self,
        req: Request<Body>,
        (scheme, authority): (&Scheme, &Authority),
        trust: &UpstreamTrust,
    ) -> Result<Response<Body>, UpstreamError> {
        let pool = match trust {
            UpstreamTrust::WebPki => self.verified.get(),
            UpstreamTrust::CaBundle(pools) => pools.get(),
            UpstreamTrust::Insecure => self.insecure.get(),
        };
        match tokio::time::timeout(self.timeout, pool.send(req, scheme, authority)).await {
            Err(_) => Err(UpstreamError::Timeout(self.timeout)),
            Ok(result) => result,
        }
    }
}
