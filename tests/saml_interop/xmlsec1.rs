//! NIA-shaped Responses made by Debian's `xmlsec1` as a real process: the unsigned, plain
//! Response and Assertion of `sim::saml_response` (the shape of the real NIA capture), then
//! `xmlsec1 --sign` of the Assertion (when `sign_assertion`), `xmlsec1 --encrypt` in place with
//! NIA's session-key template (EncryptedKey inside `EncryptedData/KeyInfo`, addressed by a
//! `wsse:SecurityTokenReference`), `xmlsec1 --sign` of the Response.

use std::path::{Path, PathBuf};
use std::process::Command;

use aisgate::sim::saml_response::ResponseSpec;

use crate::peers::{run, RsaFiles};

pub const SP_ENTITY_ID: &str = "https://gw.example.cz/sep5/";
pub const ACS_URL: &str = "https://gw.example.cz/.aisgate/callback/nia";
const RESPONSE: &str = "urn:oasis:names:tc:SAML:2.0:protocol:Response";
const ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion";

const SIGNATURE_TEMPLATE: &str = "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:SignedInfo>\
<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>\
<ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"/><ds:Reference URI=\"#{id}\">\
<ds:Transforms><ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>\
<ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/></ds:Transforms>\
<ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue/></ds:Reference>\
</ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature>";

/// `xml` with an xmlsec1 signature template for `#id` right after the first `saml:Issuer`
/// (where NIA's STS puts its signature).
fn with_signature_template(xml: &str, id: &str) -> String {
    let at = xml.find("</saml:Issuer>").expect("an Issuer") + "</saml:Issuer>".len();
    format!("{}{}{}", &xml[..at], SIGNATURE_TEMPLATE.replace("{id}", id), &xml[at..])
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
pub fn sign(xmlsec1: &Path, dir: &Path, doc: &str, id_attr: &str, key: &RsaFiles) -> String {
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

/// A complete NIA-shaped Response made by xmlsec1 from `spec`: Assertion signed (when
/// `spec.sign_assertion`) then encrypted to `sp` with `alg`, Response signed by `idp`. The
/// exact bytes to POST.
pub fn nia_response(
    xmlsec1: &Path,
    dir: &Path,
    spec: &ResponseSpec,
    alg: DataAlg,
    idp: &RsaFiles,
    sp: &RsaFiles,
) -> Vec<u8> {
    let mut assertion = spec.assertion_xml();
    if spec.sign_assertion {
        let signed = sign(xmlsec1, dir, &with_signature_template(&assertion, &spec.assertion_id), ASSERTION, idp);
        // xmlsec1 writes a document: keep the element only, to embed it.
        assertion = signed[signed.find("<saml:Assertion").unwrap()..].trim_end().to_owned();
    }
    let plain = spec.response_xml(&format!("<saml:EncryptedAssertion>{assertion}</saml:EncryptedAssertion>"));
    let encrypted = encrypt(xmlsec1, dir, &plain, alg, &sp.cert);
    let signed = sign(xmlsec1, dir, &with_signature_template(&encrypted, &spec.response_id), RESPONSE, idp);
    // The reference implementation accepts what it made (else a refusal would prove nothing).
    verify(xmlsec1, dir, &signed, RESPONSE, &idp.cert)
        .unwrap_or_else(|e| panic!("xmlsec1 rejects its own Response: {e}"));
    assert!(signed.contains(alg.uri_and_session_key().0) && !signed.contains("<saml:Assertion"), "encrypted in place");
    signed.into_bytes()
}
