//! The SOAP channel to the IdP: mutual TLS with one or two client certificates (rollover),
//! size-limited reads, and precise errors for the operator log.
//!
//! A certificate refused with HTTP 401 is refused before the IdP looks at the body, so the
//! single-use token is not consumed and the call may be repeated with the next certificate.
//! Any other failure after the request was sent is final: a retry could redeem nothing.

use std::path::Path;
use std::time::Duration;

use super::config::KaasProviderConfig;
use super::soap;
use crate::provider::{CommonReason, ProviderError};

/// One client identity and its pooled mTLS client.
struct ClientCert {
    label: &'static str,
    client: reqwest::Client,
    not_after: Option<i64>,
}

/// The mTLS SOAP channel.
pub struct SoapChannel {
    certs: Vec<ClientCert>,
}

fn not_after(der: &[u8]) -> Option<i64> {
    x509_parser::parse_x509_certificate(der).ok().map(|(_, cert)| cert.validity().not_after.timestamp())
}

fn client_for(cfg: &KaasProviderConfig, cert: &Path, key: &Path) -> Result<(reqwest::Client, Option<i64>), String> {
    let certs = crate::tls::load_certs(cert).map_err(|e| e.to_string())?;
    let expiry = certs.first().and_then(|c| not_after(c.as_ref()));
    let key = crate::tls::load_key(key).map_err(|e| e.to_string())?;
    let roots = crate::tls::roots(cfg.ca_bundle.as_deref()).map_err(|e| e.to_string())?;
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .map_err(|e| format!("{}: certificate and key do not match: {e}", cert.display()))?;
    let client = crate::tls::back_channel_client(
        tls,
        Duration::from_secs(cfg.connect_timeout_secs),
        Duration::from_secs(cfg.timeout_secs),
    )?;
    Ok((client, expiry))
}

impl SoapChannel {
    /// Loads the certificates (once) and builds the clients.
    pub fn build(cfg: &KaasProviderConfig) -> Result<SoapChannel, String> {
        let (client, not_after) = client_for(cfg, &cfg.client_cert, &cfg.client_key)?;
        let mut certs = vec![ClientCert { label: "primary", client, not_after }];
        if let (Some(cert), Some(key)) = (&cfg.secondary_client_cert, &cfg.secondary_client_key) {
            let (client, not_after) = client_for(cfg, cert, key)?;
            certs.push(ClientCert { label: "secondary", client, not_after });
        }
        Ok(SoapChannel { certs })
    }

    /// `(label, notAfter as Unix seconds)` of every client certificate.
    pub fn expiries(&self) -> impl Iterator<Item = (&'static str, Option<i64>)> + '_ {
        self.certs.iter().map(|c| (c.label, c.not_after))
    }

    /// POSTs a SOAP envelope and returns the response body. SOAP faults come with HTTP 500
    /// and are returned for the parser; other HTTP errors are errors here.
    pub async fn call(&self, url: &str, action: &str, envelope: &str) -> Result<Vec<u8>, ProviderError> {
        let mut refused = Vec::new();
        for cert in &self.certs {
            let resp = cert
                .client
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, soap::CONTENT_TYPE)
                .header("SOAPAction", soap::soap_action_header_value(action))
                .body(envelope.to_owned())
                .send()
                .await
                .map_err(|e| {
                    ProviderError::with_context(
                        CommonReason::Unreachable,
                        format_args!("{url}: {}", crate::error_chain(&e)),
                    )
                })?;
            let status = resp.status();
            if status == reqwest::StatusCode::UNAUTHORIZED {
                // CAAIS answers 401 JSON when the certificate is missing or not registered.
                refused.push(cert.label);
                continue;
            }
            if !refused.is_empty() {
                tracing::warn!(refused = ?refused, accepted = cert.label, "client certificate refused by the IdP; another one was accepted");
            }
            let body = crate::provider::read_limited(resp, soap::MAX_RESPONSE_BYTES).await?;
            if !status.is_success() && status != reqwest::StatusCode::INTERNAL_SERVER_ERROR {
                return Err(ProviderError::with_context(
                    CommonReason::HttpStatus,
                    format_args!("HTTP {status} from {url}"),
                ));
            }
            return Ok(body);
        }
        Err(ProviderError::with_context(
            super::Failure::ClientCertificateRefused,
            format_args!("HTTP 401 from {url}: {refused:?} (not registered for this atsId?)"),
        ))
    }
}
