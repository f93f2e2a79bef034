//! Rejections: signature wrapping (XSW1–8 of Somorovsky et al. 2012, and the A/A′/C/D/E
//! placements of the xmlsec notes §3), failed SAML checks, replay, DTDs and weak algorithms.

use super::*;
use crate::provider::saml::limits::Amplifier;
use crate::sim::saml_response::encrypt_assertion;

const DS_START: &str = "<ds:Signature";
const DS_END: &str = "</ds:Signature>";

fn err_of(xml: &str) -> String {
    run(xml).unwrap_err().to_string()
}

/// Refused with `refusal` (the metric label and side come from it) and `needle` in the
/// operator detail.
fn assert_err(xml: &str, needle: &str, refusal: Refusal) {
    let err = run(xml).unwrap_err();
    assert!(err.to_string().contains(needle), "expected {needle:?} in {err:?}");
    assert_eq!(err.refusal(), refusal, "{err}");
}

/// `(before, element, after)` around the first `<tag …>…</tag>` (tags do not nest here).
fn split<'a>(xml: &'a str, open: &str, close: &str) -> (&'a str, &'a str, &'a str) {
    let start = xml.find(open).unwrap();
    let end = xml[start..].find(close).unwrap() + start + close.len();
    (&xml[..start], &xml[start..end], &xml[end..])
}

fn without_signature(element: &str) -> String {
    let (a, _, b) = split(element, DS_START, DS_END);
    format!("{a}{b}")
}

/// A plain Response (unsigned) carrying a signed plain Assertion: the XSW3–8 target.
fn signed_assertion_response() -> String {
    let mut s = spec();
    s.encryption = Encryption::None;
    s.sign_response = false;
    s.sign_assertion = true;
    build(&s)
}

/// An unsigned plain evil Assertion (`EVIL-ADMIN`), with its own ID.
fn evil_assertion() -> String {
    let mut s = spec();
    s.name_id = "EVIL-ADMIN".to_owned();
    s.assertion_id = "_evil".to_owned();
    s.attributes.clear();
    s.assertion_xml()
}

fn evil_response_head(id: &str) -> String {
    let mut s = spec();
    s.response_id = id.to_owned();
    let r = s.response_xml("");
    r[..r.find("</samlp:Response>").unwrap()].to_owned()
}

#[test]
fn xsw1_response_clone_inside_signature_object_is_rejected() {
    let good = build(&spec());
    let (_, sig, _) = split(&good, DS_START, DS_END);
    let clone = without_signature(&good);
    let sig = sig.replace("</ds:KeyInfo>", &format!("</ds:KeyInfo><ds:Object>{clone}</ds:Object>"));
    let xml = format!("{}{sig}{}</samlp:Response>", evil_response_head("_evilroot"), evil_assertion());
    assert_err(&xml, "signature: Reference digest failed", Refusal::Signature);
}

#[test]
fn xsw2_response_clone_beside_detached_signature_is_rejected() {
    let good = build(&spec());
    let (_, sig, _) = split(&good, DS_START, DS_END);
    let clone = without_signature(&good);
    let xml = format!("{}{clone}{sig}{}</samlp:Response>", evil_response_head("_evilroot"), evil_assertion());
    assert_err(&xml, "does not cover exactly its parent element", Refusal::SignatureWrapping);
}

#[test]
fn xsw3_evil_assertion_before_signed_assertion_is_rejected() {
    let good = signed_assertion_response();
    let (head, signed, tail) = split(&good, "<saml:Assertion", "</saml:Assertion>");
    let xml = format!("{head}{}{signed}{tail}", evil_assertion());
    assert_err(&xml, "2 Assertion and 0 EncryptedAssertion", Refusal::Malformed);
}

#[test]
fn xsw4_signed_assertion_inside_evil_assertion_is_rejected() {
    let good = signed_assertion_response();
    let (head, signed, tail) = split(&good, "<saml:Assertion", "</saml:Assertion>");
    let evil = evil_assertion().replace("</saml:Assertion>", &format!("{signed}</saml:Assertion>"));
    let xml = format!("{head}{evil}{tail}");
    assert_err(&xml, "neither the Response nor its Assertion", Refusal::Unsigned);
}

#[test]
fn xsw5_signature_moved_to_evil_assertion_with_original_appended_is_rejected() {
    let good = signed_assertion_response();
    let (head, signed, tail) = split(&good, "<saml:Assertion", "</saml:Assertion>");
    let (_, sig, _) = split(signed, DS_START, DS_END);
    let evil = evil_assertion().replacen("</saml:Issuer>", &format!("</saml:Issuer>{sig}"), 1);
    let xml = format!("{head}{evil}{}{tail}", without_signature(signed));
    assert_err(&xml, "strict mode", Refusal::SignatureWrapping);
    // Without the appended copy the reference dangles.
    let xml = format!("{head}{evil}{tail}");
    assert_err(&xml, "ID not found", Refusal::Signature);
}

#[test]
fn xsw6_original_assertion_inside_signature_of_evil_assertion_is_rejected() {
    let good = signed_assertion_response();
    let (head, signed, tail) = split(&good, "<saml:Assertion", "</saml:Assertion>");
    let (_, sig, _) = split(signed, DS_START, DS_END);
    let sig =
        sig.replace("</ds:KeyInfo>", &format!("</ds:KeyInfo><ds:Object>{}</ds:Object>", without_signature(signed)));
    let evil = evil_assertion().replacen("</saml:Issuer>", &format!("</saml:Issuer>{sig}"), 1);
    assert_err(&format!("{head}{evil}{tail}"), "signature: Reference digest failed", Refusal::Signature);
}

#[test]
fn xsw7_signed_assertion_in_extensions_with_evil_assertion_in_place_is_rejected() {
    let good = signed_assertion_response();
    let (head, signed, tail) = split(&good, "<saml:Assertion", "</saml:Assertion>");
    let head =
        head.replacen("<samlp:Status>", &format!("<samlp:Extensions>{signed}</samlp:Extensions><samlp:Status>"), 1);
    assert_err(
        &format!("{head}{}{tail}", evil_assertion()),
        "neither the Response nor its Assertion",
        Refusal::Unsigned,
    );
}

#[test]
fn xsw8_unsigned_original_in_object_of_evil_assertions_signature_is_rejected() {
    let good = signed_assertion_response();
    let (head, signed, tail) = split(&good, "<saml:Assertion", "</saml:Assertion>");
    let (_, sig, _) = split(signed, DS_START, DS_END);
    let original = without_signature(signed);
    let sig = sig.replace("</ds:SignatureValue>", &format!("</ds:SignatureValue><ds:Object>{original}</ds:Object>"));
    let evil = evil_assertion().replace("_evil", &spec().assertion_id).replacen(
        "</saml:Issuer>",
        &format!("</saml:Issuer>{sig}"),
        1,
    );
    assert_err(&format!("{head}{evil}{tail}"), "duplicate ID", Refusal::DuplicateId);
}

/// The attacker's root `root_id` with the genuine Response under `Extensions` and `carried`
/// (an Assertion or EncryptedAssertion) where the SP looks.
fn nest_under_evil_root(root_id: &str, good: &str, carried: &str) -> String {
    let head = evil_response_head(root_id);
    let issuer_end = head.find("</saml:Issuer>").unwrap() + "</saml:Issuer>".len();
    let (issuer, rest) = head.split_at(issuer_end);
    format!("{issuer}<samlp:Extensions>{good}</samlp:Extensions>{rest}{carried}</samlp:Response>")
}

/// Notes §3 "A": the genuine signed Response nested under the attacker's root `Extensions`.
#[test]
fn nested_signed_response_under_evil_root_is_rejected() {
    let good = build(&spec());
    let xml = nest_under_evil_root("_evilroot", &good, &evil_assertion());
    assert_err(&xml, "neither the Response nor its Assertion", Refusal::Unsigned);
}

/// Notes §3 "A′": as A, but the evil Assertion is encrypted to the SP (anyone can).
#[test]
fn nested_signed_response_with_evil_encrypted_assertion_is_rejected() {
    let good = build(&spec());
    let evil = encrypt_assertion(&evil_assertion(), &keys().sp.cert_der, Encryption::Aes256Cbc).unwrap();
    let xml = nest_under_evil_root("_evilroot", &good, &evil);
    // Two EncryptedData in one document: refused by count before any signature is checked.
    assert_err(&xml, "too complex: more than 1 encrypted_data", Refusal::TooComplex(Amplifier::EncryptedData));
    let nested_plain = nest_under_evil_root("_evilroot", &build(&signed_plain_response()), &evil);
    assert_err(&nested_plain, "neither the Response nor its Assertion", Refusal::Unsigned);
}

fn signed_plain_response() -> ResponseSpec {
    let mut s = spec();
    s.encryption = Encryption::None;
    s
}

/// Notes §3 "C": the attacker's root reuses the signed ID.
#[test]
fn duplicate_ids_are_rejected() {
    let good = build(&spec());
    let xml = nest_under_evil_root(&spec().response_id, &good, &evil_assertion());
    assert_err(&xml, "duplicate ID", Refusal::DuplicateId);
}

/// Notes §3 "D": an evil EncryptedAssertion inside `ds:Signature/ds:Object` is never decrypted.
#[test]
fn encrypted_assertion_injected_into_signature_object_is_never_used() {
    let good = build(&spec());
    let evil = encrypt_assertion(&evil_assertion(), &keys().sp.cert_der, Encryption::Aes256Cbc).unwrap();
    let xml = good.replacen(
        "</ds:KeyInfo></ds:Signature>",
        &format!("</ds:KeyInfo><ds:Object>{evil}</ds:Object></ds:Signature>"),
        1,
    );
    assert_ne!(xml, good);
    // The binding would decrypt only the genuine one; the second EncryptedData is now
    // refused by count before that (issue 15 item 1).
    assert_err(
        &xml,
        "too complex: more than 1 encrypted_data (found 2)",
        Refusal::TooComplex(Amplifier::EncryptedData),
    );
    // A plain evil Assertion there is still never read.
    let plain = good.replacen(
        "</ds:KeyInfo></ds:Signature>",
        &format!("</ds:KeyInfo><ds:Object>{}</ds:Object></ds:Signature>", evil_assertion()),
        1,
    );
    assert_eq!(run(&plain).unwrap().name_id, spec().name_id);
}

/// Notes §3 "E": an evil plain Assertion inside `ds:KeyInfo` is never read.
#[test]
fn assertion_injected_into_signature_key_info_is_never_used() {
    let good = build(&spec());
    let xml =
        good.replacen("</ds:X509Data></ds:KeyInfo>", &format!("</ds:X509Data>{}</ds:KeyInfo>", evil_assertion()), 1);
    assert_ne!(xml, good);
    assert_eq!(run(&xml).unwrap().name_id, spec().name_id);
}

#[test]
fn comment_inside_name_id_yields_the_full_value() {
    let good = signed_assertion_response();
    let xml = good.replacen("CZ/CZ/2e38", "CZ/CZ/2e<!---->38", 1);
    assert_ne!(xml, good);
    assert_eq!(run(&xml).unwrap().name_id, spec().name_id);
}

#[test]
fn response_with_signature_removed_is_rejected() {
    let good = build(&spec());
    assert_err(&without_signature(&good), "neither the Response nor its Assertion", Refusal::Unsigned);
}

#[test]
fn key_info_certificate_swapped_to_the_idp_one_is_rejected() {
    let k = keys();
    let evil = spec().build(&k.evil_signer, &k.sp.cert_der).unwrap();
    let b64 = |der: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der);
    let xml = evil.replace(&b64(&k.evil.cert_der), &b64(&k.idp.cert_der));
    assert_ne!(xml, evil);
    assert_err(&xml, "signature:", Refusal::Signature);
}

#[test]
fn expired_assertion_is_rejected() {
    let mut s = spec();
    s.not_on_or_after = NOW - 600;
    assert_err(&build(&s), "Assertion expired", Refusal::Expired);
    let mut s = spec();
    s.sc_not_on_or_after = NOW - 600;
    assert_err(&build(&s), "SubjectConfirmationData expired", Refusal::SubjectConfirmation);
}

#[test]
fn not_yet_valid_assertion_is_rejected() {
    let mut s = spec();
    s.not_before = NOW + 600;
    assert_err(&build(&s), "not yet valid", Refusal::NotYetValid);
}

#[test]
fn clock_skew_is_tolerated() {
    let mut s = spec();
    s.not_before = NOW + 60;
    s.not_on_or_after = NOW - 60;
    s.sc_not_on_or_after = NOW + 3600;
    run(&build(&s)).unwrap();
}

#[test]
fn wrong_audience_is_rejected() {
    let mut s = spec();
    s.audience = "https://other.example.cz/".to_owned();
    assert_err(&build(&s), "Audience \"https://other.example.cz/\" is not our entityID", Refusal::Audience);
}

#[test]
fn audience_without_trailing_slash_needs_the_option() {
    let xml = build(&spec());
    let k = keys();
    let strict = Expectations { audience_ignores_trailing_slash: false, ..expect() };
    let err = process_response(xml.as_bytes(), &k.certs, &k.decrypt, &strict).unwrap_err();
    assert!(err.to_string().contains("Audience"), "{err}");
}

#[test]
fn wrong_destination_is_rejected() {
    let mut s = spec();
    s.destination = Some("https://evil.example/acs".to_owned());
    assert_err(&build(&s), "Response Destination", Refusal::Destination);
}

#[test]
fn signed_response_without_destination_is_rejected() {
    let mut s = spec();
    s.destination = None;
    assert_err(&build(&s), "without Destination", Refusal::Destination);
}

#[test]
fn wrong_recipient_is_rejected() {
    let mut s = spec();
    s.recipient = "https://evil.example/acs".to_owned();
    assert_err(&build(&s), "Recipient", Refusal::SubjectConfirmation);
}

#[test]
fn wrong_in_response_to_is_rejected() {
    let mut s = spec();
    s.in_response_to = Some("_other".to_owned());
    assert_err(&build(&s), "Response InResponseTo \"_other\" is not the pending request", Refusal::InResponseTo);
    let mut s = spec();
    s.sc_in_response_to = Some("_other".to_owned());
    assert_err(&build(&s), "SubjectConfirmationData InResponseTo", Refusal::InResponseTo);
}

#[test]
fn unsolicited_response_is_rejected_when_a_request_is_pending() {
    let mut s = spec();
    s.in_response_to = None;
    s.sc_in_response_to = None;
    assert_err(&build(&s), "unsolicited Response", Refusal::InResponseTo);
}

#[test]
fn unsolicited_response_is_accepted_only_without_a_pending_request() {
    let mut s = spec();
    s.in_response_to = None;
    s.sc_in_response_to = None;
    let k = keys();
    let idp_initiated = Expectations { request_id: None, ..expect() };
    process_response(build(&s).as_bytes(), &k.certs, &k.decrypt, &idp_initiated).unwrap();
    let err = process_response(build(&spec()).as_bytes(), &k.certs, &k.decrypt, &idp_initiated).unwrap_err();
    assert!(err.to_string().contains("no request is pending"), "{err}");
}

#[test]
fn wrong_issuer_is_rejected() {
    let mut s = spec();
    s.issuer = Some("urn:evil".to_owned());
    assert_err(&build(&s), "Response Issuer", Refusal::Issuer);
    let mut s = spec();
    s.assertion_issuer = "urn:evil".to_owned();
    assert_err(&build(&s), "Assertion Issuer", Refusal::Issuer);
}

#[test]
fn issuer_case_matters_unless_configured() {
    let k = keys();
    let strict =
        Expectations { idp_entity_id: "urn:microsoft:cgg2010:FPSTS", issuer_case_insensitive: false, ..expect() };
    let err = process_response(build(&spec()).as_bytes(), &k.certs, &k.decrypt, &strict).unwrap_err();
    assert!(err.to_string().contains("Response Issuer"), "{err}");
}

#[test]
fn replayed_assertion_is_rejected() {
    let cache = ReplayCache::new(10);
    let a = run(&build(&spec())).unwrap();
    cache.check(&a, Duration::from_secs(180), NOW).unwrap();
    let again = run(&build(&spec())).unwrap();
    let err = cache.check(&again, Duration::from_secs(180), NOW + 60).unwrap_err();
    assert!(err.to_string().contains("replay"), "{err}");
}

#[test]
fn full_replay_cache_fails_closed() {
    let cache = ReplayCache::new(1);
    assert!(cache.first_use("_a", u64::MAX));
    assert!(!cache.first_use("_b", u64::MAX));
    // Expired entries make room.
    let cache = ReplayCache::new(1);
    assert!(cache.first_use("_a", 1));
    assert!(cache.first_use("_b", u64::MAX));
}

#[test]
fn dtd_with_entity_expansion_is_rejected() {
    let good = build(&spec());
    let xml = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE samlp:Response [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;\">]>{}",
        good.replacen("CZ/CZ", "&b;", 0)
    );
    assert_err(&xml, "DOCTYPE", Refusal::Doctype);
}

#[test]
fn oversized_response_is_rejected() {
    let good = build(&spec());
    let xml = good.replacen("<samlp:Status>", &format!("<!--{}--><samlp:Status>", "x".repeat(600 * 1024)), 1);
    assert_err(&xml, "exceeds", Refusal::TooLarge);
}

#[test]
fn rsa_sha1_signature_is_rejected() {
    let xml = build(&spec())
        .replace("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", "http://www.w3.org/2000/09/xmldsig#rsa-sha1");
    assert_err(
        &xml,
        "algorithm not allowed: SignatureMethod http://www.w3.org/2000/09/xmldsig#rsa-sha1",
        Refusal::Algorithm,
    );
}

#[test]
fn sha1_digest_is_rejected() {
    let xml = build(&spec()).replacen(
        "<ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"",
        "<ds:DigestMethod Algorithm=\"http://www.w3.org/2000/09/xmldsig#sha1\"",
        1,
    );
    assert_err(&xml, "algorithm not allowed: DigestMethod", Refusal::Algorithm);
}

/// A Response signed only on the Assertion so that ciphertext algorithms can be changed.
fn unsigned_response_encrypted() -> String {
    let mut s = spec();
    s.sign_response = false;
    s.sign_assertion = true;
    build(&s)
}

#[test]
fn rsa_1_5_key_transport_is_rejected() {
    let xml = unsigned_response_encrypted()
        .replace("http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p", "http://www.w3.org/2001/04/xmlenc#rsa-1_5");
    assert_err(
        &xml,
        "algorithm not allowed: key transport http://www.w3.org/2001/04/xmlenc#rsa-1_5",
        Refusal::Algorithm,
    );
}

#[test]
fn tripledes_data_encryption_is_rejected() {
    let xml = unsigned_response_encrypted()
        .replace("http://www.w3.org/2001/04/xmlenc#aes256-cbc", "http://www.w3.org/2001/04/xmlenc#tripledes-cbc");
    assert_err(
        &xml,
        "algorithm not allowed: data encryption http://www.w3.org/2001/04/xmlenc#tripledes-cbc",
        Refusal::Algorithm,
    );
}

#[test]
fn unsigned_encrypted_assertion_in_unsigned_response_is_rejected() {
    let mut s = spec();
    s.sign_response = false;
    assert_err(&build(&s), "neither the Response nor its Assertion", Refusal::Unsigned);
}

#[test]
fn plain_assertion_is_rejected_when_encryption_is_required() {
    let k = keys();
    let need = Expectations { require_encrypted_assertion: true, ..expect() };
    let err = process_response(signed_assertion_response().as_bytes(), &k.certs, &k.decrypt, &need).unwrap_err();
    assert!(err.to_string().contains("not encrypted"), "{err}");
}

#[test]
fn loa_below_requested_is_rejected() {
    let mut s = spec();
    s.authn_context = "http://eidas.europa.eu/LoA/low".to_owned();
    assert_err(
        &build(&s),
        "achieved LoA low does not satisfy requested substantial (Minimum)",
        Refusal::LoaNotSatisfied,
    );
}

#[test]
fn loa_comparisons_follow_saml_core() {
    use crate::identity::Loa::{High, Low, Substantial};
    assert!(LoaComparison::Minimum.satisfied(Substantial, High));
    assert!(!LoaComparison::Exact.satisfied(Substantial, High));
    assert!(LoaComparison::Maximum.satisfied(Substantial, Low));
    assert!(!LoaComparison::Better.satisfied(Substantial, Substantial));
}

#[test]
fn non_success_status_is_reported_with_both_levels() {
    let mut s = spec();
    s.status = "urn:oasis:names:tc:SAML:2.0:status:Responder".to_owned();
    s.sub_status = Some("urn:oasis:names:tc:SAML:2.0:status:AuthnFailed".to_owned());
    let xml = keys().idp_signer.sign_enveloped(&s.response_xml("")).unwrap();
    let err = run(&xml).unwrap_err();
    assert_eq!(err.refusal(), Refusal::IdpStatus);
    assert_eq!(
        err.to_string(),
        "status Responder/AuthnFailed: the user did not authenticate (failed or cancelled at the IdP)"
    );
}

#[test]
fn response_without_assertion_is_rejected() {
    let xml = keys().idp_signer.sign_enveloped(&spec().response_xml("")).unwrap();
    assert_err(&xml, "0 Assertion and 0 EncryptedAssertion", Refusal::Malformed);
}

#[test]
fn encrypted_assertion_with_two_encrypted_data_is_rejected() {
    let mut s = spec();
    s.sign_response = false;
    s.sign_assertion = true;
    let xml = build(&s);
    let (_, ed, _) = split(&xml, "<xenc:EncryptedData", "</xenc:EncryptedData>");
    let xml = xml.replacen("</xenc:EncryptedData>", &format!("</xenc:EncryptedData>{ed}"), 1);
    assert_err(
        &xml,
        "too complex: more than 1 encrypted_data (found 2)",
        Refusal::TooComplex(Amplifier::EncryptedData),
    );
}

#[test]
fn encrypted_assertion_signed_by_another_key_is_rejected_inside_a_signed_response() {
    let k = keys();
    let s = spec();
    let assertion = k.evil_signer.sign_enveloped(&s.assertion_xml()).unwrap();
    let encrypted = encrypt_assertion(&assertion, &k.sp.cert_der, Encryption::Aes256Cbc).unwrap();
    let xml = k.idp_signer.sign_enveloped(&s.response_xml(&encrypted)).unwrap();
    assert_err(&xml, "signature: signature value verification failed", Refusal::Signature);
}

#[test]
fn plain_assertion_signed_by_another_key_is_rejected_inside_a_signed_response() {
    let k = keys();
    let s = spec();
    let assertion = k.evil_signer.sign_enveloped(&s.assertion_xml()).unwrap();
    let xml = k.idp_signer.sign_enveloped(&s.response_xml(&assertion)).unwrap();
    assert_err(&xml, "signature: signature value verification failed", Refusal::Signature);
}

/// Without a Response signature over the ciphertext, what follows decryption must not leak
/// (CBC padding-oracle via parse errors): a garbage plaintext gives the one decryption error.
#[test]
fn unsigned_ciphertext_with_garbage_plaintext_gives_the_uniform_error() {
    let k = keys();
    let encrypted = encrypt_assertion("<not-xml", &k.sp.cert_der, Encryption::Aes256Cbc).unwrap();
    let mut s = spec();
    s.sign_response = false;
    assert_eq!(err_of(&s.response_xml(&encrypted)), "decryption failed");
    // With a signed Response the operator gets the precise reason.
    let xml = k.idp_signer.sign_enveloped(&s.response_xml(&encrypted)).unwrap();
    assert!(err_of(&xml).contains("not well-formed"), "{}", err_of(&xml));
}

/// The hostile Response of issue 15 item 1: ~190 KB, hundreds of amplifiers.
fn hostile(base: &str, open: &str, close: &str, copies: usize) -> String {
    let (head, element, tail) = split(base, open, close);
    let xml = format!("{head}{}{tail}", element.repeat(copies));
    assert!((150_000..=260_000).contains(&xml.len()), "about 190 KB: {}", xml.len());
    xml
}

fn refused_before_crypto(xml: &str, what: crate::provider::saml::limits::Amplifier) {
    use crate::provider::saml::limits::crypto_ops;
    let before = crypto_ops::get();
    match run(xml) {
        Err(e) => assert_eq!(e.refusal(), Refusal::TooComplex(what), "{e}"),
        Ok(_) => panic!("expected a {what:?} refusal"),
    }
    assert_eq!(crypto_ops::get(), before, "no signature verified, no key unwrapped");
}

#[test]
fn response_with_hundreds_of_encrypted_keys_is_refused_before_any_rsa_operation() {
    // Anyone can encrypt to the SP certificate: an unsigned Response whose EncryptedData
    // carries 180 EncryptedKeys used to cost 180 RSA private-key operations per SP key.
    let xml = hostile(&unsigned_response_encrypted(), "<xenc:EncryptedKey>", "</xenc:EncryptedKey>", 180);
    refused_before_crypto(&xml, crate::provider::saml::limits::Amplifier::EncryptedKeys);
}

#[test]
fn response_with_hundreds_of_signatures_is_refused_before_any_canonicalisation() {
    let xml = hostile(&build(&spec()), DS_START, DS_END, 90);
    refused_before_crypto(&xml, crate::provider::saml::limits::Amplifier::Signatures);
    // The same Response with its one signature does cost work (the counter is live).
    let before = crate::provider::saml::limits::crypto_ops::get();
    run(&build(&spec())).unwrap();
    assert!(crate::provider::saml::limits::crypto_ops::get() > before);
}

#[test]
fn a_signature_with_two_references_or_three_transforms_is_refused_before_verification() {
    let good = build(&spec());
    let (_, reference, _) = split(&good, "<ds:Reference", "</ds:Reference>");
    let two = good.replacen(reference, &reference.repeat(2), 1);
    refused_before_crypto(&two, crate::provider::saml::limits::Amplifier::ReferencesPerSignature);
    let transform = "<ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>";
    let three = good.replacen("</ds:Transforms>", &format!("{transform}</ds:Transforms>"), 1);
    refused_before_crypto(&three, crate::provider::saml::limits::Amplifier::TransformsPerReference);
}

#[test]
fn deeply_nested_response_is_refused_by_the_parser() {
    let good = build(&spec());
    let deep =
        good.replacen("</samlp:Status>", &format!("{}</samlp:Status>", "<x>".repeat(40) + &"</x>".repeat(40)), 1);
    assert_err(&deep, "not well-formed", Refusal::NotWellFormed);
}
