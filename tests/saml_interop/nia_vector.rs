//! The real NIA Response captured in 2019 (spec vectors/README.md), beyond the unit tests in
//! `src/provider/saml/xmlsec/tests.rs` (which show that it verifies with the certificate
//! beside it, certificate validity unchecked, that the pretty-printed copy does not, and a
//! sample of single-byte tampers): here *every* letter and digit of the signed content is
//! changed in turn, the SignatureValue too, and the embedded KeyInfo certificate is never
//! trusted in place of the pinned one.

use std::path::{Path, PathBuf};

use aisgate::provider::saml::xmlsec::{verify_root, IdpCertificates, Limits, XmlSecError};

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/provider/saml/testdata").join(name)
}

fn capture() -> Vec<u8> {
    std::fs::read(testdata("nia-2019-response.xml")).unwrap()
}

fn nia_certificate() -> IdpCertificates {
    let der: Vec<Vec<u8>> = aisgate::tls::load_certs(&testdata("nia-2019-signing-cert.pem"))
        .unwrap()
        .into_iter()
        .map(|c| c.as_ref().to_vec())
        .collect();
    IdpCertificates::from_der(&der).unwrap()
}

fn range_of(doc: &[u8], open: &str, close: &str) -> std::ops::Range<usize> {
    let text = std::str::from_utf8(doc).unwrap();
    let start = text.find(open).unwrap();
    let end = text[start..].find(close).unwrap() + start + close.len();
    start..end
}

/// One byte replaced by a different letter or digit, so the document mostly stays
/// well-formed and the signature check is what must catch it.
fn tampered(doc: &[u8], at: usize) -> Vec<u8> {
    let mut copy = doc.to_vec();
    copy[at] = match doc[at] {
        b'9' => b'0',
        b'z' => b'a',
        b'Z' => b'A',
        c => c + 1,
    };
    copy
}

#[test]
fn nia_capture_verifies_only_with_the_pinned_certificate_not_its_embedded_one() {
    assert!(
        verify_root(&capture(), &nia_certificate(), &Limits::RESPONSE).is_ok(),
        "the pinned NIA certificate verifies it"
    );
    let dir = tempfile::tempdir().unwrap();
    let other = crate::peers::rsa_identity(dir.path(), "not-nia");
    let certs = IdpCertificates::from_der(&[other.id.cert_der]).unwrap();
    let err = verify_root(&capture(), &certs, &Limits::RESPONSE)
        .err()
        .expect("the embedded KeyInfo certificate is not trusted");
    assert!(matches!(err, XmlSecError::Signature(_)), "{err}");
}

/// Every letter and digit of the signed content (the whole document except the unsigned
/// `KeyInfo` certificate and the `SignatureValue`, tested below) changed, one at a time.
#[test]
fn nia_capture_single_byte_tamper_of_signed_content_never_verifies() {
    let doc = capture();
    let certs = nia_certificate();
    let key_info = range_of(&doc, "<KeyInfo>", "</KeyInfo>");
    let signature_value = range_of(&doc, "<SignatureValue>", "</SignatureValue>");
    let mut tried = 0;
    for at in 0..doc.len() {
        if key_info.contains(&at) || signature_value.contains(&at) || !doc[at].is_ascii_alphanumeric() {
            continue;
        }
        tried += 1;
        if let Ok(signed) = verify_root(&tampered(&doc, at), &certs, &Limits::RESPONSE) {
            let context = String::from_utf8_lossy(&doc[at.saturating_sub(40)..(at + 40).min(doc.len())]).into_owned();
            panic!("a change at byte {at} still verifies ({} canonical bytes): …{context}…", signed.canonical.len());
        }
    }
    assert!(tried > 5000, "only {tried} positions tried");
}

#[test]
fn nia_capture_with_a_changed_signature_value_does_not_verify() {
    let doc = capture();
    let value = range_of(&doc, "<SignatureValue>", "</SignatureValue>");
    let err = verify_root(&tampered(&doc, value.start + 40), &nia_certificate(), &Limits::RESPONSE)
        .err()
        .expect("must not verify");
    assert!(matches!(err, XmlSecError::Signature(_)), "{err}");
}
