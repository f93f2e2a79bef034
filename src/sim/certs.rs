//! A throw-away PKI: one CA, a server certificate for `localhost`, a registered client
//! certificate and an unregistered one (same CA), written as PEM files.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// Paths of the generated files.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// CA certificate (trust anchor for both sides).
    pub ca_cert: PathBuf,
    /// Server certificate chain for `localhost`/`127.0.0.1`.
    pub server_cert: PathBuf,
    /// Server key.
    pub server_key: PathBuf,
    /// Client certificate registered at the simulated IdP.
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
    /// A client certificate from the same CA that the IdP does not know.
    pub rogue_cert: PathBuf,
    /// Its key.
    pub rogue_key: PathBuf,
}

fn leaf(
    cn: &str,
    names: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
    ca: &CertifiedIssuer<'_, KeyPair>,
) -> Result<(String, String), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names)?;
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let cert = params.signed_by(&key, ca)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Generates the PKI into `dir`.
pub fn generate(dir: &Path) -> Result<TestPki, String> {
    let run = || -> Result<TestPki, rcgen::Error> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "aisgate test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let server = leaf("localhost", names, ExtendedKeyUsagePurpose::ServerAuth, &ca)?;
        let client = leaf("aisgate demo AIS", Vec::new(), ExtendedKeyUsagePurpose::ClientAuth, &ca)?;
        let rogue = leaf("unregistered AIS", Vec::new(), ExtendedKeyUsagePurpose::ClientAuth, &ca)?;
        let write = |name: &str, content: &str| -> PathBuf {
            let path = dir.join(name);
            if let Err(e) = std::fs::write(&path, content) {
                tracing::error!(path = %path.display(), error = %e, "cannot write test PKI file");
            }
            path
        };
        Ok(TestPki {
            ca_cert: write("ca.pem", &ca.pem()),
            server_cert: write("server.pem", &server.0),
            server_key: write("server.key", &server.1),
            client_cert: write("client.pem", &client.0),
            client_key: write("client.key", &client.1),
            rogue_cert: write("rogue-client.pem", &rogue.0),
            rogue_key: write("rogue-client.key", &rogue.1),
        })
    };
    run().map_err(|e| format!("cannot generate test certificates: {e}"))
}

/// A TLS acceptor for a simulated IdP host that asks for, but does not require, a client
/// certificate from `pki`'s CA: CAAIS answers a missing or unknown certificate with HTTP 401
/// JSON rather than a handshake failure, so the simulators check the certificate per request.
pub fn optional_mtls_acceptor(pki: &TestPki) -> Result<tokio_rustls::TlsAcceptor, String> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in crate::tls::load_certs(&pki.ca_cert).map_err(|e| e.to_string())? {
        roots.add(ca).map_err(|e| e.to_string())?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder(std::sync::Arc::new(roots))
        .allow_unauthenticated()
        .build()
        .map_err(|e| e.to_string())?;
    let tls = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            crate::tls::load_certs(&pki.server_cert).map_err(|e| e.to_string())?,
            crate::tls::load_key(&pki.server_key).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
    Ok(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(tls)))
}

/// A self-signed RSA-2048 certificate with its PKCS#8 key: SAML signing and encryption keys
/// of the simulated IdP and of the SP in tests (XML-DSig/XML-Enc as NIA uses them are RSA).
#[derive(Debug, Clone)]
pub struct RsaIdentity {
    /// PKCS#8 private key, PEM.
    pub key_pem: String,
    /// Certificate, PEM.
    pub cert_pem: String,
    /// Certificate, DER.
    pub cert_der: Vec<u8>,
}

/// Generates a self-signed RSA-2048 certificate for `cn`.
pub fn rsa_identity(cn: &str) -> Result<RsaIdentity, String> {
    let run = || -> Result<RsaIdentity, rcgen::Error> {
        let key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, cn);
        let cert = params.self_signed(&key)?;
        Ok(RsaIdentity { key_pem: key.serialize_pem(), cert_pem: cert.pem(), cert_der: cert.der().to_vec() })
    };
    run().map_err(|e| format!("cannot generate an RSA certificate: {e}"))
}
