//! The IdP as the SP knows it: metadata from a file or a URL, optionally signature-checked
//! against pinned certificates, refreshed periodically. A failed refresh (transport, bad
//! signature, unparsable, no keys) keeps the last good copy and is logged; logins only fail
//! when no copy was ever good — or when the copy held has expired: metadata past its
//! `validUntil` is no longer trusted (its keys may have been retired), so it is refused on
//! arrival and stops being used when the time passes, and readiness says so. Fetches are
//! single flight.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::metadata::{parse_idp, IdpMetadata};
use super::reason::Refusal;
use super::xmlsec::{verify_root, IdpCertificates, Limits};
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

/// Why no metadata can be used: expired (`validUntil` passed) or unavailable (fetch, signature,
/// parse). Both are outages for logins; the text is for the operator log and readiness.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{detail}")]
pub struct MetadataFailure {
    /// [`Refusal::MetadataExpired`] or [`Refusal::MetadataUnavailable`].
    pub refusal: Refusal,
    /// What went wrong (a URL, a parser message; no secrets).
    pub detail: String,
}

impl MetadataFailure {
    fn unavailable(detail: impl Into<String>) -> MetadataFailure {
        MetadataFailure { refusal: Refusal::MetadataUnavailable, detail: detail.into() }
    }
}

impl From<MetadataFailure> for ProviderError {
    fn from(e: MetadataFailure) -> ProviderError {
        ProviderError::with_context(e.refusal, e.detail)
    }
}

/// Metadata source, pins and the current good copy.
pub struct Idp {
    source: Source,
    pinned: Option<IdpCertificates>,
    expected_entity_id: Option<String>,
    case_insensitive: bool,
    current: RwLock<Option<Arc<IdpState>>>,
    /// Single flight: one fetch at a time. A burst of logins while no copy is usable (startup,
    /// expiry) waits for the one fetch in progress instead of each fetching the IdP again.
    fetching: tokio::sync::Mutex<()>,
    /// Fetches completed (either way): a caller that waited for the lock while this moved
    /// takes that fetch's outcome instead of fetching again.
    fetches: std::sync::atomic::AtomicU64,
    /// Why the last install or refresh failed (cleared by a success), for readiness.
    last_failure: RwLock<Option<MetadataFailure>>,
    /// The clock `validUntil` is compared with (a test clock in tests).
    clock: crate::clock::Clock,
}

impl IdpState {
    /// Whether `validUntil` has passed at `now` (SAML metadata §2.3.1: a consumer must not
    /// use expired metadata; its keys and endpoints are no longer vouched for).
    pub fn expired_at(&self, now: u64) -> bool {
        self.metadata.valid_until.is_some_and(|until| until <= now)
    }
}

impl Idp {
    /// A new, not yet loaded IdP.
    pub fn new(
        source: Source,
        pinned: Option<IdpCertificates>,
        expected_entity_id: Option<String>,
        case_insensitive: bool,
    ) -> Idp {
        Idp {
            source,
            pinned,
            expected_entity_id,
            case_insensitive,
            current: RwLock::new(None),
            fetching: tokio::sync::Mutex::new(()),
            fetches: std::sync::atomic::AtomicU64::new(0),
            last_failure: RwLock::new(None),
            clock: crate::clock::Clock::system(),
        }
    }

    /// Reads time from `clock` (tests move it forward).
    pub fn set_clock(&mut self, clock: crate::clock::Clock) {
        self.clock = clock;
    }

    /// The metadata source, for log lines.
    pub fn describe(&self) -> String {
        match &self.source {
            Source::File(path) => path.display().to_string(),
            Source::Url { url, .. } => url.clone(),
        }
    }

    /// The current good copy, unless its `validUntil` has passed.
    pub fn current(&self) -> Option<Arc<IdpState>> {
        self.current_at(self.clock.now_unix())
    }

    /// [`Self::current`] at time `now` (Unix seconds).
    pub fn current_at(&self, now: u64) -> Option<Arc<IdpState>> {
        self.current.read().ok().and_then(|g| g.clone()).filter(|s| !s.expired_at(now))
    }

    /// Why [`Self::current`] is empty: the copy held expired, or there never was one.
    pub fn unusable_because(&self) -> MetadataFailure {
        let held = self.current.read().ok().and_then(|g| g.clone());
        match held {
            Some(state) if state.expired_at(self.clock.now_unix()) => MetadataFailure {
                refusal: Refusal::MetadataExpired,
                detail: format!("IdP metadata from {} expired (validUntil passed)", self.describe()),
            },
            _ => match self.last_failure.read().ok().and_then(|g| g.clone()) {
                Some(failure) => failure,
                None => MetadataFailure::unavailable(format!("no valid IdP metadata from {}", self.describe())),
            },
        }
    }

    /// Checks and parses a metadata document (exact bytes as received) at time `now`.
    pub fn accept_at(&self, bytes: &[u8], now: u64) -> Result<IdpState, MetadataFailure> {
        let metadata = match &self.pinned {
            // Only the signed, canonical form is read: nothing outside the signature counts.
            Some(pins) => {
                let signed = verify_root(bytes, pins, &Limits::METADATA)
                    .map_err(|e| MetadataFailure::unavailable(format!("metadata signature refused: {e}")))?;
                parse_idp(signed.canonical.as_bytes(), self.expected_entity_id.as_deref(), self.case_insensitive)
            }
            None => parse_idp(bytes, self.expected_entity_id.as_deref(), self.case_insensitive),
        }
        .map_err(|e| MetadataFailure::unavailable(e.to_string()))?;
        if let Some(until) = metadata.valid_until.filter(|&until| until <= now) {
            return Err(MetadataFailure {
                refusal: Refusal::MetadataExpired,
                detail: format!("IdP metadata expired {}s ago (validUntil)", now - until),
            });
        }
        let certs = IdpCertificates::from_der(&metadata.signing_certs)
            .map_err(|e| MetadataFailure::unavailable(format!("metadata signing certificates: {e}")))?;
        Ok(IdpState { metadata, certs })
    }

    async fn fetch(&self) -> Result<Vec<u8>, MetadataFailure> {
        match &self.source {
            Source::File(path) => {
                let bytes = tokio::fs::read(path)
                    .await
                    .map_err(|e| MetadataFailure::unavailable(format!("cannot read {}: {e}", path.display())))?;
                if bytes.len() > MAX_METADATA_BYTES {
                    return Err(MetadataFailure::unavailable("metadata larger than the limit"));
                }
                Ok(bytes)
            }
            Source::Url { url, client } => {
                let resp =
                    client.get(url).send().await.map_err(|e| {
                        MetadataFailure::unavailable(format!("fetching {url}: {}", crate::error_chain(&e)))
                    })?;
                if !resp.status().is_success() {
                    return Err(MetadataFailure::unavailable(format!(
                        "fetching {url}: HTTP {}",
                        resp.status().as_u16()
                    )));
                }
                crate::provider::read_limited(resp, MAX_METADATA_BYTES)
                    .await
                    .map_err(|e| MetadataFailure::unavailable(e.to_string()))
            }
        }
    }

    /// Checks `bytes` and makes them the current copy (a metadata file read at startup).
    pub fn install(&self, bytes: &[u8]) -> Result<(), MetadataFailure> {
        let state =
            Arc::new(self.accept_at(bytes, self.clock.now_unix()).inspect_err(|e| self.remember(Some(e.clone())))?);
        if let Ok(mut guard) = self.current.write() {
            *guard = Some(state);
        }
        self.remember(None);
        Ok(())
    }

    fn remember(&self, failure: Option<MetadataFailure>) {
        if let Ok(mut guard) = self.last_failure.write() {
            *guard = failure;
        }
    }

    /// Fetches and checks the metadata; on success it replaces the current copy. One fetch at
    /// a time (single flight).
    pub async fn refresh(&self) -> Result<Arc<IdpState>, MetadataFailure> {
        let _one = self.fetching.lock().await;
        self.fetch_and_install().await
    }

    async fn fetch_and_install(&self) -> Result<Arc<IdpState>, MetadataFailure> {
        let installed = async {
            let bytes = self.fetch().await.inspect_err(|e| self.remember(Some(e.clone())))?;
            self.install(&bytes)?;
            self.current().ok_or_else(|| MetadataFailure::unavailable("metadata store unavailable"))
        }
        .await;
        self.fetches.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        installed
    }

    /// The current copy, loading it now when none is usable. Concurrent callers share one
    /// fetch, whatever its outcome: whoever waited for the lock finds the copy the first one
    /// installed, or its failure (else a burst of unauthenticated SLO messages while the IdP
    /// is down would fetch once per message, one after the other).
    pub async fn state(&self) -> Result<Arc<IdpState>, ProviderError> {
        if let Some(state) = self.current() {
            return Ok(state);
        }
        let before = self.fetches.load(std::sync::atomic::Ordering::Acquire);
        let _one = self.fetching.lock().await;
        if let Some(state) = self.current() {
            return Ok(state);
        }
        if self.fetches.load(std::sync::atomic::Ordering::Acquire) != before {
            return Err(self.unusable_because().into());
        }
        Ok(self.fetch_and_install().await?)
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
    use crate::provider::saml::reason::Refusal;
    use crate::provider::saml::xmlsec::SigningKey;
    use crate::sim::certs::rsa_identity;

    /// Issue 15 review (item 5): single flight shared only a success. While the IdP's
    /// metadata was unavailable, every request waiting for the one fetch fetched again in
    /// turn once it failed, so a burst of SLO messages (anyone can send them) became as many
    /// sequential outgoing fetches, each holding its connection for the fetch timeout.
    /// Waiters now take the outcome of the fetch they waited for.
    #[tokio::test]
    async fn callers_waiting_for_a_failing_fetch_share_its_failure() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/metadata", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
        let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
        let seen = Arc::clone(&connections);
        tokio::spawn(async move {
            let (mut first_tx, mut release_rx) = (Some(first_tx), Some(release_rx));
            loop {
                let Ok((mut sock, _)) = listener.accept().await else { return };
                seen.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 1024];
                let _ = sock.read(&mut buf).await;
                if let (Some(tx), Some(rx)) = (first_tx.take(), release_rx.take()) {
                    let _ = tx.send(());
                    let _ = rx.await;
                }
                let _ = sock
                    .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            }
        });
        let client = http_client(None, Duration::from_secs(5), Duration::from_secs(5)).unwrap();
        let idp = Arc::new(Idp::new(Source::Url { url, client }, None, None, false));
        let callers: Vec<_> = (0..8)
            .map(|_| {
                let idp = Arc::clone(&idp);
                tokio::spawn(async move { idp.state().await.err().map(|e| e.label()) })
            })
            .collect();
        first_rx.await.unwrap();
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        release_tx.send(()).unwrap();
        for caller in callers {
            assert_eq!(caller.await.unwrap(), Some("metadata_unavailable"));
        }
        assert_eq!(connections.load(Ordering::SeqCst), 1, "one fetch for the whole burst");
    }

    fn metadata(idp_cert: &[u8]) -> String {
        metadata_valid_until(idp_cert, None)
    }

    fn metadata_valid_until(idp_cert: &[u8], valid_until: Option<u64>) -> String {
        let cert = base64::engine::general_purpose::STANDARD.encode(idp_cert);
        let valid_until = valid_until
            .map(|t| format!(" validUntil=\"{}\"", crate::identity::headers::rfc3339(t)))
            .unwrap_or_default();
        format!(
            "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" ID=\"_m\" entityID=\"urn:idp\"{valid_until}>\
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
        assert!(idp.install(by_stranger.as_bytes()).unwrap_err().detail.contains("signature refused"));
        assert!(idp.install(xml.as_bytes()).unwrap_err().detail.contains("signature refused"), "unsigned");
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

    /// Issue 15 item 5: `validUntil` was only a metric. Expired metadata is refused on arrival,
    /// a held copy stops being used once it expires, and the reason is the expiry.
    #[test]
    fn expired_metadata_is_refused_and_a_held_copy_expires() {
        let idp_id = rsa_identity("idp").unwrap();
        let idp = Idp::new(Source::File("unused".into()), None, Some("urn:idp".to_owned()), false);
        let now = crate::session::now_unix();
        let stale = metadata_valid_until(&idp_id.cert_der, Some(now - 60));
        let err = idp.install(stale.as_bytes()).unwrap_err();
        assert_eq!(err.refusal, Refusal::MetadataExpired);
        assert_eq!(idp.unusable_because().refusal, Refusal::MetadataExpired, "readiness says why");
        assert!(idp.current().is_none());
        let fresh = metadata_valid_until(&idp_id.cert_der, Some(now + 100));
        idp.install(fresh.as_bytes()).unwrap();
        assert!(idp.current_at(now).is_some());
        assert!(idp.current_at(now + 100).is_none(), "not used once validUntil has passed");
    }

    /// Issue 15 item 5: twenty logins arriving while no copy is usable share one fetch.
    #[tokio::test]
    async fn concurrent_first_uses_fetch_the_metadata_once() {
        let sim = crate::sim::saml::start(crate::sim::saml::SamlSimConfig {
            entity_id: "urn:idp".to_owned(),
            sp_entity_id: "https://sp/".to_owned(),
            acs_url: "https://sp/acs".to_owned(),
            sp_slo_url: "https://sp/slo".to_owned(),
            sp_encryption_cert: Vec::new(),
        })
        .await
        .unwrap();
        let client = http_client(None, Duration::from_secs(5), Duration::from_secs(5)).unwrap();
        let idp = Arc::new(Idp::new(
            Source::Url { url: sim.metadata_url(), client },
            None,
            Some("urn:idp".to_owned()),
            false,
        ));
        let logins: Vec<_> = (0..20)
            .map(|_| {
                let idp = idp.clone();
                tokio::spawn(async move { idp.state().await.map(|s| s.metadata.entity_id.clone()) })
            })
            .collect();
        for login in logins {
            assert_eq!(login.await.unwrap().unwrap(), "urn:idp");
        }
        assert_eq!(sim.knobs().metadata_fetches, 1);
    }
}
