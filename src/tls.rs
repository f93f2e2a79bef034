//! TLS material: PEM loading, the public listener's server config, client configs.
//!
//! One crypto provider (aws-lc-rs) for every TLS context. Protocol versions are rustls's
//! defaults: TLS 1.2 and 1.3 only.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// TLS material errors, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file is unreadable or holds no PEM certificate.
    #[error("{path}: no usable PEM certificate: {reason}")]
    Certificate {
        /// File.
        path: String,
        /// Why.
        reason: String,
    },
    /// The file is unreadable or holds no PEM private key.
    #[error("{path}: no usable PEM private key: {reason}")]
    Key {
        /// File.
        path: String,
        /// Why.
        reason: String,
    },
    /// rustls refused the combination.
    #[error("TLS configuration rejected: {0}")]
    Config(#[from] rustls::Error),
}

/// Reads every certificate of a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::Certificate { path: path.display().to_string(), reason };
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("the file contains no CERTIFICATE block".into()));
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| TlsError::Key { path: path.display().to_string(), reason: e.to_string() })
}

/// The public listener's TLS config, offering HTTP/2 and HTTP/1.1 by ALPN.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    Ok(server_config_with(ServerCert::load(cert, key)?))
}

/// The public listener's TLS config presenting `cert`, which a reload may replace while the
/// listener serves (new handshakes get the new certificate, open connections keep theirs).
pub fn server_config_with(cert: Arc<ServerCert>) -> Arc<rustls::ServerConfig> {
    let mut config = rustls::ServerConfig::builder().with_no_client_auth().with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// The public listener's certificate chain and key (`[server.tls]`), replaceable at run time.
#[derive(Debug)]
pub struct ServerCert(arc_swap::ArcSwap<rustls::sign::CertifiedKey>);

impl ServerCert {
    /// Reads the chain and key; the key must belong to the first certificate.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<ServerCert>, TlsError> {
        Ok(Arc::new(ServerCert(arc_swap::ArcSwap::from_pointee(certified_key(cert, key)?))))
    }

    /// Reads the chain and key again and presents them from the next handshake on; on an
    /// error the current ones stay.
    pub fn reload(&self, cert: &Path, key: &Path) -> Result<(), TlsError> {
        self.0.store(Arc::new(certified_key(cert, key)?));
        Ok(())
    }

    /// Checks the chain and key without using them (a reload checks everything before it
    /// changes anything).
    pub fn check(cert: &Path, key: &Path) -> Result<(), TlsError> {
        certified_key(cert, key).map(drop)
    }
}

impl rustls::server::ResolvesServerCert for ServerCert {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.load_full())
    }
}

fn certified_key(cert: &Path, key: &Path) -> Result<rustls::sign::CertifiedKey, TlsError> {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    Ok(rustls::sign::CertifiedKey::from_der(load_certs(cert)?, load_key(key)?, &provider)?)
}

/// A client config that trusts the given CA bundle, or the webpki roots when `None`.
pub fn roots(ca_bundle: Option<&Path>) -> Result<rustls::RootCertStore, TlsError> {
    match ca_bundle {
        None => Ok(rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }),
        Some(path) => {
            let mut store = rustls::RootCertStore::empty();
            for cert in load_certs(path)? {
                store.add(cert).map_err(|e| TlsError::Certificate {
                    path: path.display().to_string(),
                    reason: format!("not a usable CA certificate: {e}"),
                })?;
            }
            Ok(store)
        }
    }
}

/// A back-channel HTTP client (SOAP, token, discovery calls) on a prepared rustls config:
/// no redirects followed (an IdP redirect on a back channel is an error, not a hop), bounded
/// connect and total time.
pub fn back_channel_client(
    tls: rustls::ClientConfig,
    connect_timeout: std::time::Duration,
    timeout: std::time::Duration,
) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build the back-channel HTTP client: {e}"))
}

/// A client config that does not verify the server (upstreams with
/// `dangerous.skip_upstream_tls_verify` only).
pub fn insecure_client_config() -> rustls::ClientConfig {
    rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerification))
        .with_no_client_auth()
}

#[derive(Debug)]
struct NoVerification;

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms.supported_schemes()
    }
}
