//! XML-DSig binding tests on the real NIA 2019 capture and on generated documents.

use super::*;
use crate::provider::saml::acs::tests::{build, keys, spec};

const NIA: &[u8] = include_bytes!("../testdata/nia-2019-response.xml");
const NIA_PRETTY: &[u8] = include_bytes!("../testdata/nia-2019-response.pretty.xml");
const NIA_CERT: &[u8] = include_bytes!("../testdata/nia-2019-signing-cert.pem");

fn nia_certs() -> IdpCertificates {
    IdpCertificates::from_der(&[CertificateDer::from_pem_slice(NIA_CERT).unwrap().to_vec()]).unwrap()
}

#[test]
fn real_nia_2019_response_verifies_with_its_certificate() {
    let signed = verify_root(NIA, &nia_certs(), &Limits::RESPONSE).unwrap();
    assert!(signed.canonical.starts_with("<samlp:Response "));
    assert!(signed.canonical.contains("EncryptedAssertion"));
}

#[test]
fn pretty_printed_nia_response_does_not_verify() {
    let err = verify_root(NIA_PRETTY, &nia_certs(), &Limits::RESPONSE).err().unwrap().to_string();
    assert!(err.starts_with("signature:"), "{err}");
}

#[test]
fn real_nia_response_with_any_single_byte_of_signed_content_changed_is_rejected() {
    let text = std::str::from_utf8(NIA).unwrap();
    // The signature's KeyInfo is outside the signed content (and never used as trust).
    let ki_start = text.find("<KeyInfo>").unwrap();
    let ki_end = text.find("</KeyInfo>").unwrap();
    let mut tried = 0;
    for pos in (0..NIA.len()).step_by(97) {
        if (ki_start..ki_end).contains(&pos) || !NIA[pos].is_ascii_alphanumeric() {
            continue;
        }
        let mut tampered = NIA.to_vec();
        tampered[pos] = if NIA[pos] == b'A' { b'B' } else { b'A' };
        assert!(verify_root(&tampered, &nia_certs(), &Limits::RESPONSE).is_err(), "tamper at byte {pos} verified");
        tried += 1;
    }
    assert!(tried > 50, "only {tried} positions");
}

#[test]
fn real_nia_response_passes_the_signature_and_fails_uniformly_at_decryption() {
    let expect = crate::provider::saml::acs::Expectations {
        idp_entity_id: "urn:microsoft:cgg2010:FPSTS",
        issuer_case_insensitive: true,
        sp_entity_id: "https://nia.otevrenamesta.cz/",
        audience_ignores_trailing_slash: true,
        acs_url: "https://nia.otevrenamesta.cz/ExternalLogin",
        request_id: Some("_9654756a-c7b0-4d1c-a857-0f1f766b79bf"),
        requested_loa: None,
        clock_skew: std::time::Duration::from_secs(180),
        now: 1_574_079_910,
        require_encrypted_assertion: true,
        callers: &[],
    };
    let err = crate::provider::saml::acs::process_response(NIA, &nia_certs(), &keys().decrypt, &expect).unwrap_err();
    assert_eq!(err.to_string(), "decryption failed");
}

#[test]
fn root_signature_by_a_trusted_key_is_accepted_and_canonicalised() {
    let xml = build(&spec());
    let signed = verify_root(xml.as_bytes(), &keys().certs, &Limits::RESPONSE).unwrap();
    assert!(signed.canonical.contains("urn:microsoft:cgg2010:fpsts"));
}

#[test]
fn unsigned_root_is_rejected_by_verify_root() {
    let mut s = spec();
    s.sign_response = false;
    let err = verify_root(build(&s).as_bytes(), &keys().certs, &Limits::RESPONSE).err().unwrap().to_string();
    assert!(err.contains("no valid signature"), "{err}");
}

#[test]
fn doctype_is_refused_before_parsing() {
    let xml = format!("<!DOCTYPE r [<!ENTITY a \"aaaa\">]>{}", build(&spec()));
    let err = verify_root(xml.as_bytes(), &keys().certs, &Limits::RESPONSE).err().unwrap().to_string();
    assert!(err.contains("DOCTYPE"), "{err}");
}

#[test]
fn oversized_document_is_refused() {
    let xml = vec![b' '; MAX_XML_BYTES + 1];
    let err = verify_root(&xml, &keys().certs, &Limits::RESPONSE).err().unwrap().to_string();
    assert!(err.contains("exceeds"), "{err}");
}

#[test]
fn redirect_signature_round_trips_and_detects_changes() {
    let k = keys();
    let query = b"SAMLRequest=abc&RelayState=x&SigAlg=http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256";
    let sig = k.idp_signer.sign_redirect(query).unwrap();
    verify_redirect(&k.certs, RSA_SHA256, query, &sig).unwrap();
    assert!(verify_redirect(&k.certs, RSA_SHA256, b"SAMLRequest=abd", &sig).is_err());
    let evil = k.evil_signer.sign_redirect(query).unwrap();
    assert!(verify_redirect(&k.certs, RSA_SHA256, query, &evil).is_err());
    let err = verify_redirect(&k.certs, "http://www.w3.org/2000/09/xmldsig#rsa-sha1", query, &sig).unwrap_err();
    assert!(err.to_string().contains("rsa-sha1"), "{err}");
}

#[test]
fn signing_key_exposes_its_certificate() {
    let k = keys();
    assert_eq!(k.idp_signer.certificate_der(), k.idp.cert_der.as_slice());
    assert_eq!(k.idp_signer.signature_algorithm(), RSA_SHA256);
}

#[test]
fn garbage_keys_are_refused_with_a_reason() {
    assert!(IdpCertificates::from_der(&[]).is_err());
    assert!(IdpCertificates::from_der(&[b"nope".to_vec()]).is_err());
    assert!(
        DecryptionKeys::from_pem(&[b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----".to_vec()]).is_err()
    );
    assert!(SigningKey::from_pem(b"", b"").is_err());
}

#[test]
fn parsed_keys_can_be_shared_across_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<IdpCertificates>();
    shared::<DecryptionKeys>();
    shared::<SigningKey>();
    shared::<crate::provider::saml::acs::ReplayCache>();
}
