//! `Authorization: SAML` values as a calling application forwards them: a Response of the
//! stack's SAML simulator issued to the caller (encrypted to the gateway's key), for the API
//! mode tests.

use std::time::Duration;

use aisgate::provider::saml::xmlsec::SigningKey;
use aisgate::sim::saml_response::{Encryption, ResponseSpec};
use base64::Engine;

use super::Gateway;

/// The calling application's entity ID (the Response's `Audience`).
pub const CALLER_ENTITY: &str = "https://crzp.example.cz/sp";
/// The calling application's ACS URL (`Destination`, `Recipient`).
pub const CALLER_ACS: &str = "https://crzp.example.cz/acs";

/// A Response issued to the caller, valid 15 s (`SubjectConfirmationData`), edited by `edit`,
/// signed with `key`, as the base64 credential (without the `SAML ` scheme).
pub fn forwarded(gw: &Gateway, key: &SigningKey, edit: impl FnOnce(&mut ResponseSpec)) -> String {
    let now = gw.clock.now_unix();
    let mut spec = ResponseSpec::nia(now, "_caller_request_1", CALLER_ACS, CALLER_ENTITY);
    spec.sc_not_on_or_after = now + 15;
    spec.not_on_or_after = now + 30;
    spec.encryption = Encryption::Aes256Cbc;
    edit(&mut spec);
    let cert = aisgate::tls::load_certs(&gw.stack_dir.join("nia-encryption.pem")).unwrap();
    let xml = spec.build(key, cert[0].as_ref()).unwrap();
    base64::engine::general_purpose::STANDARD.encode(xml)
}

/// The simulated IdP's signing key.
pub fn idp_key(gw: &Gateway) -> SigningKey {
    let idp = &gw.saml.as_ref().unwrap().idp;
    SigningKey::from_pem(idp.key_pem.as_bytes(), idp.cert_pem.as_bytes()).unwrap()
}

/// A key the IdP never used (wrong signature).
pub fn stranger_key() -> SigningKey {
    let stranger = aisgate::sim::certs::rsa_identity("stranger").unwrap();
    SigningKey::from_pem(stranger.key_pem.as_bytes(), stranger.cert_pem.as_bytes()).unwrap()
}

/// Waits until the gateway holds the IdP metadata (loaded by the background refresh).
pub async fn saml_ready(gw: &Gateway) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while gw.saml.as_ref().unwrap().knobs().metadata_fetches == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
