//! NIA-shaped Responses made by Debian's `xmlsec1` as a real process: a plain Response
//! template (the shape of the real 2019 NIA capture: Response signed after Issuer, Assertion
//! encrypted in place with the EncryptedKey inside `EncryptedData/KeyInfo` and a
//! `wsse:SecurityTokenReference`), then `xmlsec1 --sign` of the Assertion (optional),
//! `xmlsec1 --encrypt` with a session-key template, `xmlsec1 --sign` of the Response.

use std::path::{Path, PathBuf};
use std::process::Command;

use aisgate::identity::headers::rfc3339;

use crate::peers::{run, RsaIdentity};

pub const NIA_ISSUER: &str = "urn:microsoft:cgg2010:fpsts";
pub const SP_ENTITY_ID: &str = "https://gw.example.cz/sep5/";
pub const ACS_URL: &str = "https://gw.example.cz/.aisgate/saml/nia/acs";
pub const EIDAS: &str = "http://eidas.europa.eu/attributes/naturalperson/";
const RESPONSE: &str = "urn:oasis:names:tc:SAML:2.0:protocol:Response";
pub const LOA_SUBSTANTIAL: &str = "http://eidas.europa.eu/LoA/substantial";

/// What goes into the Response.
#[derive(Clone)]
pub struct NiaShape {
    pub response_id: String,
    pub assertion_id: String,
    pub request_id: String,
    pub now: u64,
    /// NIA's Audience drops the entityID's trailing slash (nia.md §8.3).
    pub audience: String,
    pub bsi: String,
    pub session_index: String,
    pub loa: String,
    /// (FriendlyName, URI, xsi:type in the eIDAS namespace, value).
    pub attributes: Vec<(&'static str, String, Option<&'static str>, String)>,
}

impl NiaShape {
    pub fn new(now: u64) -> NiaShape {
        let eidas = |n: &str| format!("{EIDAS}{n}");
        NiaShape {
            response_id: "_r7c1e6b0a93f44d2c8e1f".into(),
            assertion_id: "_a51e0c8a2b4d4f6b9e0a1".into(),
            request_id: "_9654756a-c7b0-4d1c-a857-0f1f766b79bf".into(),
            now,
            audience: SP_ENTITY_ID.trim_end_matches('/').into(),
            bsi: "CZ/CZ/2e3883ee-7e0d-47cb-8fee-2ea231a58ee6".into(),
            session_index: "_5c9f0e2a-6d1b-4c3e-9a8f-7b6c5d4e3f2a".into(),
            loa: LOA_SUBSTANTIAL.into(),
            attributes: vec![
                ("PersonIdentifier", eidas("PersonIdentifier"), Some("PersonIdentifierType"), String::new()),
                ("CurrentFamilyName", eidas("CurrentFamilyName"), Some("CurrentFamilyNameType"), "NOVÁK".into()),
                ("CurrentGivenName", eidas("CurrentGivenName"), Some("CurrentGivenNameType"), "JAN MARIE".into()),
                ("DateOfBirth", eidas("DateOfBirth"), Some("DateOfBirthType"), "1968-03-29".into()),
                ("PlaceOfBirth", eidas("PlaceOfBirth"), Some("PlaceOfBirthType"), "Ústí nad Labem".into()),
                ("Email", "http://www.stork.gov.eu/1.0/eMail".into(), None, "jan.novak@example.cz".into()),
            ],
        }
    }
}

const SIGNATURE_TEMPLATE: &str = "<Signature xmlns=\"http://www.w3.org/2000/09/xmldsig#\"><SignedInfo>\
<CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>\
<SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"/><Reference URI=\"#{id}\"><Transforms>\
<Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>\
<Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/></Transforms>\
<DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><DigestValue/></Reference></SignedInfo>\
<SignatureValue/><KeyInfo><X509Data/></KeyInfo></Signature>";

fn signature_template(id: &str) -> String {
    SIGNATURE_TEMPLATE.replace("{id}", id)
}

/// The Assertion, NIA style (nia.md §8.3 and §11.3), optionally with a signature template.
pub fn assertion(s: &NiaShape, with_signature: bool) -> String {
    let later = rfc3339(s.now + 3600);
    let now = rfc3339(s.now);
    let mut attributes = String::new();
    for (friendly, uri, xsi_type, value) in &s.attributes {
        let value = if *friendly == "PersonIdentifier" { &s.bsi } else { value };
        let typed = xsi_type.map_or(String::new(), |t| {
            format!(
                " xmlns:tn=\"http://eidas.europa.eu/attributes/naturalperson\" \
                 xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"tn:{t}\""
            )
        });
        attributes.push_str(&format!(
            "<Attribute Name=\"{uri}\" NameFormat=\"urn:oasis:names:tc:SAML:2.0:attrname-format:uri\" \
             FriendlyName=\"{friendly}\" a:OriginalIssuer=\"urn:microsoft:cgg2010:FPSTS\" \
             xmlns:a=\"http://schemas.xmlsoap.org/ws/2009/09/identity/claims\">\
             <AttributeValue{typed}>{value}</AttributeValue></Attribute>"
        ));
    }
    format!(
        "<Assertion xmlns=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{aid}\" IssueInstant=\"{now}\" Version=\"2.0\">\
         <Issuer>urn:microsoft:cgg2010:FPSTS</Issuer>{sig}<Subject>\
         <NameID Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:persistent\">{bsi}</NameID>\
         <SubjectConfirmation Method=\"urn:oasis:names:tc:SAML:2.0:cm:bearer\">\
         <SubjectConfirmationData InResponseTo=\"{req}\" NotOnOrAfter=\"{later}\" Recipient=\"{ACS_URL}\"/>\
         </SubjectConfirmation></Subject><Conditions NotBefore=\"{now}\" NotOnOrAfter=\"{later}\"><AudienceRestriction>\
         <Audience>{audience}</Audience></AudienceRestriction></Conditions><AttributeStatement>{attributes}\
         </AttributeStatement><AuthnStatement AuthnInstant=\"{now}\" SessionIndex=\"{sidx}\"><AuthnContext>\
         <AuthnContextClassRef>{loa}</AuthnContextClassRef></AuthnContext></AuthnStatement></Assertion>",
        aid = s.assertion_id,
        sig = if with_signature { signature_template(&s.assertion_id) } else { String::new() },
        bsi = s.bsi,
        req = s.request_id,
        audience = s.audience,
        sidx = s.session_index,
        loa = s.loa,
    )
}

/// The Response around `assertion` (inside an `EncryptedAssertion` to be encrypted in place),
/// with a signature template after Issuer.
pub fn response(s: &NiaShape, assertion: &str) -> String {
    format!(
        "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" \
         xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{rid}\" Version=\"2.0\" IssueInstant=\"{now}\" \
         Destination=\"{ACS_URL}\" InResponseTo=\"{req}\"><saml:Issuer>{NIA_ISSUER}</saml:Issuer>{sig}\
         <samlp:Status><samlp:StatusCode Value=\"urn:oasis:names:tc:SAML:2.0:status:Success\"/></samlp:Status>\
         <EncryptedAssertion xmlns=\"urn:oasis:names:tc:SAML:2.0:assertion\">{assertion}</EncryptedAssertion>\
         </samlp:Response>",
        rid = s.response_id,
        now = rfc3339(s.now),
        req = s.request_id,
        sig = signature_template(&s.response_id),
    )
}

/// Data-encryption algorithms xmlsec1 is asked to use: (URI, `--session-key`).
#[derive(Clone, Copy, Debug)]
pub enum DataAlg {
    Aes128Cbc,
    Aes256Cbc,
    Aes128Gcm,
    Aes256Gcm,
    TripleDesCbc,
}

impl DataAlg {
    fn uri_and_session_key(self) -> (&'static str, &'static str) {
        match self {
            DataAlg::Aes128Cbc => ("http://www.w3.org/2001/04/xmlenc#aes128-cbc", "aes-128"),
            DataAlg::Aes256Cbc => ("http://www.w3.org/2001/04/xmlenc#aes256-cbc", "aes-256"),
            DataAlg::Aes128Gcm => ("http://www.w3.org/2009/xmlenc11#aes128-gcm", "aes-128"),
            DataAlg::Aes256Gcm => ("http://www.w3.org/2009/xmlenc11#aes256-gcm", "aes-256"),
            DataAlg::TripleDesCbc => ("http://www.w3.org/2001/04/xmlenc#tripledes-cbc", "des-192"),
        }
    }
}

/// The session-key template, exactly NIA's layout (see the 2019 capture).
fn encryption_template(alg: DataAlg) -> String {
    format!(
        "<xenc:EncryptedData xmlns:xenc=\"http://www.w3.org/2001/04/xmlenc#\" Type=\"http://www.w3.org/2001/04/xmlenc#Element\">\
         <xenc:EncryptionMethod Algorithm=\"{}\"/><KeyInfo xmlns=\"http://www.w3.org/2000/09/xmldsig#\">\
         <e:EncryptedKey xmlns:e=\"http://www.w3.org/2001/04/xmlenc#\">\
         <e:EncryptionMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p\">\
         <DigestMethod Algorithm=\"http://www.w3.org/2000/09/xmldsig#sha1\"/></e:EncryptionMethod><KeyInfo>\
         <o:SecurityTokenReference xmlns:o=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd\">\
         <X509Data><X509IssuerSerial><X509IssuerName>CN=sp</X509IssuerName><X509SerialNumber>1</X509SerialNumber>\
         </X509IssuerSerial></X509Data></o:SecurityTokenReference></KeyInfo><e:CipherData><e:CipherValue/></e:CipherData>\
         </e:EncryptedKey></KeyInfo><xenc:CipherData><xenc:CipherValue/></xenc:CipherData></xenc:EncryptedData>",
        alg.uri_and_session_key().0
    )
}

/// A scratch file in `dir`.
fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// `xmlsec1 --sign` of the first Signature template in `doc`; `id_attr` names the element
/// whose `ID` attribute the reference points to (`ns:Name` as xmlsec1 wants it).
pub fn sign(xmlsec1: &Path, dir: &Path, doc: &str, id_attr: &str, key: &RsaIdentity) -> String {
    let input = write(dir, "to-sign.xml", doc);
    let output = dir.join("signed.xml");
    let keys = format!("{},{}", key.key.display(), key.cert.display());
    run(Command::new(xmlsec1)
        .args(["--sign", "--privkey-pem", &keys, "--id-attr:ID", id_attr, "--output"])
        .arg(&output)
        .arg(&input))
    .unwrap_or_else(|e| panic!("xmlsec1 --sign failed: {e}"));
    std::fs::read_to_string(output).unwrap()
}

/// `xmlsec1 --encrypt` of the Assertion inside `EncryptedAssertion`, in place, to `cert`.
pub fn encrypt(xmlsec1: &Path, dir: &Path, doc: &str, alg: DataAlg, cert: &Path) -> String {
    let data = write(dir, "to-encrypt.xml", doc);
    let template = write(dir, "template.xml", &encryption_template(alg));
    let output = dir.join("encrypted.xml");
    let xpath = "/*[local-name()='Response']/*[local-name()='EncryptedAssertion']/*[local-name()='Assertion']";
    run(Command::new(xmlsec1)
        .args(["--encrypt", "--pubkey-cert-pem"])
        .arg(cert)
        .args(["--session-key", alg.uri_and_session_key().1, "--xml-data"])
        .arg(&data)
        .args(["--node-xpath", xpath, "--output"])
        .arg(&output)
        .arg(&template))
    .unwrap_or_else(|e| panic!("xmlsec1 --encrypt failed: {e}"));
    std::fs::read_to_string(output).unwrap()
}

/// `xmlsec1 --verify` of a document signed by aisgate; `Err(xmlsec1's words)` when it fails.
pub fn verify(xmlsec1: &Path, dir: &Path, doc: &str, id_attr: &str, cert: &Path) -> Result<(), String> {
    let input = write(dir, "to-verify.xml", doc);
    run(Command::new(xmlsec1)
        .args(["--verify", "--pubkey-cert-pem"])
        .arg(cert)
        .args(["--id-attr:ID", id_attr])
        .arg(&input))
    .map(|_| ())
}

/// A complete NIA-shaped Response made by xmlsec1: Assertion signed (when `sign_assertion`)
/// then encrypted to `sp` with `alg`, Response signed by `idp`. The exact bytes to POST.
pub fn nia_response(
    xmlsec1: &Path,
    dir: &Path,
    shape: &NiaShape,
    alg: DataAlg,
    sign_assertion: bool,
    idp: &RsaIdentity,
    sp: &RsaIdentity,
) -> Vec<u8> {
    let mut assertion = assertion(shape, sign_assertion);
    if sign_assertion {
        assertion = sign(xmlsec1, dir, &assertion, "urn:oasis:names:tc:SAML:2.0:assertion:Assertion", idp);
        // xmlsec1 writes a document: keep the element only, to embed it.
        assertion = assertion[assertion.find("<Assertion").unwrap()..].trim_end().to_owned();
    }
    let encrypted = encrypt(xmlsec1, dir, &response(shape, &assertion), alg, &sp.cert);
    let signed = sign(xmlsec1, dir, &encrypted, RESPONSE, idp);
    // The reference implementation accepts what it made (else a refusal would prove nothing).
    verify(xmlsec1, dir, &signed, RESPONSE, &idp.cert)
        .unwrap_or_else(|e| panic!("xmlsec1 rejects its own Response: {e}"));
    assert!(signed.contains(alg.uri_and_session_key().0) && !signed.contains("<Assertion"), "encrypted in place");
    signed.into_bytes()
}
