//! SAML core conformance gaps found by a third-party SP test suite (issue 15 item 4b): Version,
//! IssueInstant and Issuer of the Response and the Assertion.

use super::*;
use crate::identity::headers::rfc3339;

/// A signed Response carrying a plain Assertion, with `edit` applied to the XML before signing
/// (so the signature is valid and only the edited check can refuse it).
fn signed_after(edit: impl Fn(String) -> String) -> String {
    let mut s = spec();
    s.encryption = Encryption::None;
    s.sign_response = false;
    let xml = edit(s.response_xml(&s.assertion_xml()));
    keys().idp_signer.sign_enveloped(&xml).unwrap()
}

fn err(xml: &str) -> String {
    run(xml).unwrap_err().to_string()
}

fn refusal(xml: &str) -> Refusal {
    run(xml).unwrap_err().refusal()
}

/// `xml` with the ` IssueInstant="…"` attribute of the first `tag` start tag replaced by `new`.
fn replace_instant(xml: &str, tag: &str, new: &str) -> String {
    let start = xml.find(&format!("{tag} ")).unwrap();
    let attr = xml[start..].find(" IssueInstant=\"").unwrap() + start;
    let end = xml[attr + 15..].find('"').unwrap() + attr + 16;
    format!("{}{new}{}", &xml[..attr], &xml[end..])
}

#[test]
fn the_unedited_signed_plain_response_is_accepted() {
    run(&signed_after(|x| x)).unwrap();
}

#[test]
fn an_assertion_of_version_1_0_is_refused() {
    let xml = signed_after(|x| {
        x.replace(
            "\" Version=\"2.0\"><saml:Issuer>urn:microsoft:cgg2010:FPSTS",
            "\" Version=\"1.0\"><saml:Issuer>urn:microsoft:cgg2010:FPSTS",
        )
    });
    assert!(xml.contains("Version=\"1.0\""));
    assert_eq!(err(&xml), "malformed response: Assertion Version is not 2.0");
    assert_eq!(refusal(&xml), Refusal::Version);
}

#[test]
fn a_missing_malformed_or_future_issue_instant_is_refused_on_the_assertion() {
    let missing = signed_after(|x| replace_instant(&x, "<saml:Assertion", ""));
    assert_eq!(err(&missing), "malformed response: Assertion without IssueInstant");
    assert_eq!(refusal(&missing), Refusal::IssueInstant);
    let malformed = signed_after(|x| replace_instant(&x, "<saml:Assertion", " IssueInstant=\"yesterday\""));
    assert_eq!(err(&malformed), "malformed response: Assertion@IssueInstant is not an xs:dateTime");
    let future =
        signed_after(|x| replace_instant(&x, "<saml:Assertion", &format!(" IssueInstant=\"{}\"", rfc3339(NOW + 3600))));
    assert_eq!(err(&future), "Assertion IssueInstant is 3595s in the future");
    assert_eq!(refusal(&future), Refusal::IssuedInFuture);
    // Within the skew is fine.
    let skewed =
        signed_after(|x| replace_instant(&x, "<saml:Assertion", &format!(" IssueInstant=\"{}\"", rfc3339(NOW + 60))));
    run(&skewed).unwrap();
}

#[test]
fn a_missing_malformed_or_future_issue_instant_is_refused_on_the_response() {
    let missing = signed_after(|x| replace_instant(&x, "<samlp:Response", ""));
    assert_eq!(err(&missing), "malformed response: Response without IssueInstant");
    let malformed = signed_after(|x| replace_instant(&x, "<samlp:Response", " IssueInstant=\"2026-13-45T00:00:00Z\""));
    assert_eq!(err(&malformed), "malformed response: Response@IssueInstant is not an xs:dateTime");
    assert_eq!(refusal(&malformed), Refusal::IssueInstant);
    let future =
        signed_after(|x| replace_instant(&x, "<samlp:Response", &format!(" IssueInstant=\"{}\"", rfc3339(NOW + 900))));
    assert_eq!(err(&future), "Response IssueInstant is 895s in the future");
}

#[test]
fn a_signed_response_without_issuer_is_refused() {
    let mut s = spec();
    s.issuer = None;
    assert_eq!(err(&build(&s)), "malformed response: signed Response without Issuer");
    assert_eq!(refusal(&build(&s)), Refusal::IssuerMissing);
}

#[test]
fn an_issuer_with_a_format_other_than_entity_is_refused() {
    let transient = "<saml:Issuer Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:transient\">";
    let on_response = signed_after(|x| x.replacen("<saml:Issuer>", transient, 1));
    assert_eq!(
        err(&on_response),
        "Response Issuer Format \"urn:oasis:names:tc:SAML:2.0:nameid-format:transient\" is not the entity format"
    );
    let on_assertion = signed_after(|x| {
        let at = x.find("<saml:Assertion").unwrap();
        format!("{}{}", &x[..at], x[at..].replacen("<saml:Issuer>", transient, 1))
    });
    assert!(err(&on_assertion).starts_with("Assertion Issuer Format"), "{}", err(&on_assertion));
    assert_eq!(refusal(&on_assertion), Refusal::IssuerFormat);
    // The entity format, spelled out, is fine (EnviIAM sends it, enviam.md §10.F).
    let entity = "<saml:Issuer Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:entity\">";
    run(&signed_after(|x| x.replace("<saml:Issuer>", entity))).unwrap();
}
