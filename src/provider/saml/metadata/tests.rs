use base64::Engine;

use super::*;

fn cert_der() -> Vec<u8> {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["idp".to_owned()]).unwrap();
    params.self_signed(&key).unwrap().der().to_vec()
}

fn idp_xml(entity_id: &str, cert: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(cert);
    format!(
        r#"<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" validUntil="2030-01-02T03:04:05Z">
<md:EntityDescriptor entityID="urn:other"><md:SPSSODescriptor protocolSupportEnumeration="x"/></md:EntityDescriptor>
<md:EntityDescriptor entityID="{entity_id}">
 <md:RoleDescriptor><md:KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>AAAA</X509Certificate></X509Data></KeyInfo></md:KeyDescriptor></md:RoleDescriptor>
 <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
  <md:KeyDescriptor use="encryption"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>AAAA</X509Certificate></X509Data></KeyInfo></md:KeyDescriptor>
  <md:KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>
{b64}
  </X509Certificate></X509Data></KeyInfo></md:KeyDescriptor>
  <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp/slo"/>
  <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp/sso"/>
  <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp/sso-post"/>
 </md:IDPSSODescriptor>
</md:EntityDescriptor></md:EntitiesDescriptor>"#
    )
}

#[test]
fn nia_style_metadata_yields_only_the_idp_signing_certificate_and_endpoints() {
    let der = cert_der();
    let md =
        parse_idp(idp_xml("urn:microsoft:cgg2010:fpsts", &der).as_bytes(), Some("urn:microsoft:cgg2010:FPSTS"), true)
            .unwrap();
    assert_eq!(md.entity_id, "urn:microsoft:cgg2010:fpsts");
    assert_eq!(md.signing_certs, vec![der]);
    assert_eq!(
        IdpMetadata::endpoint(&md.sso, "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST").as_deref(),
        Some("https://idp/sso-post")
    );
    assert_eq!(md.slo.len(), 1);
    assert_eq!(md.valid_until, parse_instant("2030-01-02T03:04:05Z"));
    assert!(md.certs_not_after().is_some());
}

#[test]
fn metadata_for_another_entity_is_refused() {
    let xml = idp_xml("urn:microsoft:cgg2010:fpsts", &cert_der());
    assert!(parse_idp(xml.as_bytes(), Some("urn:microsoft:cgg2010:FPSTS"), false).is_err());
    assert!(parse_idp(xml.as_bytes(), Some("urn:x"), true).unwrap_err().0.contains("no IDPSSODescriptor"));
}

#[test]
fn metadata_with_a_doctype_is_refused() {
    let xml = format!("<!DOCTYPE x>{}", idp_xml("urn:a", &cert_der()));
    assert!(parse_idp(xml.as_bytes(), None, false).unwrap_err().0.contains("DOCTYPE"));
}

#[test]
fn sp_metadata_publishes_signing_and_every_encryption_certificate() {
    let certs = vec![vec![1u8, 2], vec![3u8]];
    let xml = sp_metadata(&SpMetadata {
        entity_id: "https://gw/app/",
        acs_url: "https://gw/.aisgate/callback/nia",
        slo_url: "https://gw/.aisgate/saml/nia/slo",
        signing_cert: Some(&[9u8]),
        encryption_certs: &certs,
        name_id_format: "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
        requests_signed: false,
    });
    assert_eq!(xml.matches("use=\"encryption\"").count(), 2);
    assert_eq!(xml.matches("use=\"signing\"").count(), 1);
    assert!(xml.contains("entityID=\"https://gw/app/\""));
    assert!(xml.contains("AssertionConsumerService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" Location=\"https://gw/.aisgate/callback/nia\""));
    assert!(xml.contains("<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>"));
}

#[test]
fn instants_parse_with_fractions_and_offsets() {
    assert_eq!(parse_instant("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse_instant("2023-11-14T22:13:20.692Z"), Some(1_700_000_000));
    assert_eq!(parse_instant("2023-11-14T23:13:20+01:00"), Some(1_700_000_000));
    assert_eq!(parse_instant("2023-13-14T23:13:20Z"), None);
    assert_eq!(parse_instant("yesterday"), None);
}
