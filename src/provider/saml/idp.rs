//! The IdP as the SP knows it: metadata from a file or a URL, optionally signature-checked
//! against pinned certificates, refreshed periodically. A failed refresh (transport, bad
//! signature, unparsable, no keys) keeps the last good copy and is logged; logins only fail
//! when no copy was ever good.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::metadata::{parse_idp, IdpMetadata};
use super::xmlsec::{verify_root, IdpCertificates};
use crate::provider::ProviderError;

/// Largest metadata document accepted (NIA's ADFS metadata is ~60 kB).
const MAX_METADATA_BYTES: usize = 2 * 1024 * 1024;

/// Where the metadata comes from.
pub enum Source {
    /// A local file, re-read on refresh.
    File(PathBuf),
    /// A URL fetched over TLS.
    Url {
        /// The URL.
        url: String,
        /// The HTTP client (bounded time, no redirects).
        client: reqwest::Client,
    },
}

/// A usable copy of the IdP's metadata.
pub struct IdpState {
    /// The parsed metadata.
    pub metadata: IdpMetadata,
    /// Its signing certificates, parsed once.
    pub certs: IdpCertificates,
}

/// Metadata source, pins and the current good copy.
pub struct Idp {
    source: Source,
    pinned: Option<IdpCertificates>,
    expected_entity_id: Option<String>,
    case_insensitive: bool,
    current: RwLock<Option<Arc<IdpState>>>,
}

impl Idp {
    /// A new, not yet loaded IdP.
    pub fn new(
        source: Source,
        pinned: Option<IdpCertificates>,
        expected_entity_id: Option<String>,
        case_insensitive: bool,
    ) -> Idp {
        Idp { source, pinned, expected_entity_id, case_insensitive, current: RwLock::new(None) }
    }

    /// The metadata source, for log lines.
    pub fn describe(&self) -> String {
        match &self.source {
            Source::File(path) => path.display().to_string(),
            Source::Url { url, .. } => url.clone(),
        }
    }

    /// The current good copy.
    pub fn current(&self) -> Option<Arc<IdpState>> {
        self.current.read().ok().and_then(|g| g.clone())
    }

    /// Checks and parses a metadata document (exact bytes as received).
    pub fn accept(&self, bytes: &[u8]) -> Result<IdpState, String> {
        let metadata = match &self.pinned {
            // Only the signed, canonical form is read: nothing outside the signature counts.
            Some(pins) => {
                let signed = verify_root(bytes, pins).map_err(|e| format!("metadata signature refused: {e}"))?;
                parse_idp(signed.canonical.as_bytes(), self.expected_entity_id.as_deref(), self.case_insensitive)
            }
            None => parse_idp(bytes, self.expected_entity_id.as_deref(), self.case_insensitive),
        }
        .map_err(|e| e.to_string())?;
        let certs = IdpCertificates::from_der(&metadata.signing_certs)
            .map_err(|e| format!("metadata signing certificates: {e}"))?;
        Ok(IdpState { metadata, certs })
    }

    async fn fetch(&self) -> Result<Vec<u8>, String> {
        match &self.source {
            Source::File(path) => {
                let bytes = tokio::fs::read(path).await.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                if bytes.len() > MAX_METADATA_BYTES {
                    return Err("metadata larger than the limit".to_owned());
                }
                Ok(bytes)
            }
            Source::Url { url, client } => {
                let resp =
                    client.get(url).send().await.map_err(|e| format!("fetching {url}: {}", crate::error_chain(&e)))?;
                if !resp.status().is_success() {
                    return Err(format!("fetching {url}: HTTP {}", resp.status().as_u16()));
                }
                crate::provider::read_limited(resp, MAX_METADATA_BYTES).await.map_err(|e| e.to_string())
            }
        }
    }

    /// Checks `bytes` and makes them the current copy (a metadata file read at startup).
    pub fn install(&self, bytes: &[u8]) -> Result<(), String> {
        let state = Arc::new(self.accept(bytes)?);
        if let Ok(mut guard) = self.current.write() {
            *guard = Some(state);
        }
        Ok(())
    }

    /// Fetches and checks the metadata; on success it replaces the current copy.
    pub async fn refresh(&self) -> Result<Arc<IdpState>, String> {
        let bytes = self.fetch().await?;
        self.install(&bytes)?;
        self.current().ok_or_else(|| "metadata store unavailable".to_owned())
    }

    /// The current copy, loading it now when none was ever good.
    pub async fn state(&self) -> Result<Arc<IdpState>, ProviderError> {
        if let Some(state) = self.current() {
            return Ok(state);
        }
        self.refresh().await.map_err(|e| ProviderError::with_context(super::Refusal::MetadataUnavailable, e))
    }
}

/// A metadata HTTP client: the configured CA bundle (or web PKI roots), bounded time.
pub fn http_client(
    ca_bundle: Option<&std::path::Path>,
    connect: Duration,
    total: Duration,
) -> Result<reqwest::Client, String> {
    let roots = crate::tls::roots(ca_bundle).map_err(|e| e.to_string())?;
    let tls = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    crate::tls::back_channel_client(tls, connect, total)
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;
    use crate::provider::saml::xmlsec::SigningKey;
    use crate::sim::certs::rsa_identity;

    fn metadata(idp_cert: &[u8]) -> String {
        let cert = base64::engine::general_purpose::STANDARD.encode(idp_cert);
        format!(
            "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" ID=\"_m\" entityID=\"urn:idp\">\
             <md:IDPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\"><md:KeyDescriptor>\
             <ds:KeyInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:X509Data><ds:X509Certificate>{cert}\
             </ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>\
             <md:SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" Location=\"https://idp/sso\"/>\
             </md:IDPSSODescriptor></md:EntityDescriptor>"
        )
    }

    fn idp(pin: &[u8]) -> Idp {
        let pinned = IdpCertificates::from_der(&[pin.to_vec()]).unwrap();
        Idp::new(Source::File("unused".into()), Some(pinned), Some("urn:idp".to_owned()), false)
    }

    #[test]
    fn pinned_metadata_must_carry_the_pinned_signature() {
        let signer = rsa_identity("metadata signer").unwrap();
        let stranger = rsa_identity("stranger").unwrap();
        let key = |i: &crate::sim::certs::RsaIdentity| {
            SigningKey::from_pem(i.key_pem.as_bytes(), i.cert_pem.as_bytes()).unwrap()
        };
        let xml = metadata(&stranger.cert_der);
        let idp = idp(&signer.cert_der);
        let good = key(&signer).sign_enveloped(&xml).unwrap();
        idp.install(good.as_bytes()).unwrap();
        assert_eq!(idp.current().unwrap().metadata.entity_id, "urn:idp");
        let by_stranger = key(&stranger).sign_enveloped(&xml).unwrap();
        assert!(idp.install(by_stranger.as_bytes()).unwrap_err().contains("signature refused"));
        assert!(idp.install(xml.as_bytes()).unwrap_err().contains("signature refused"), "unsigned");
        // A document altered after signing is refused; the last good copy stays.
        let altered = good.replace("https://idp/sso", "https://evil/sso");
        assert!(idp.install(altered.as_bytes()).is_err());
        assert_eq!(
            IdpMetadata::endpoint(
                &idp.current().unwrap().metadata.sso,
                "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
            ),
            Some("https://idp/sso".to_owned())
        );
    }
}
