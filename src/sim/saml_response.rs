//! NIA-shaped SAML Responses for tests and the SAML IdP simulator: a Response signed like NIA's
//! STS (enveloped, exc-c14n, rsa-sha256, Signature after Issuer) carrying an EncryptedAssertion
//! (aes256-cbc + rsa-oaep-mgf1p, EncryptedKey in `EncryptedData/ds:KeyInfo`, addressed by
//! `wsse:SecurityTokenReference/X509IssuerSerial`), with every field the ACS checks adjustable.
//! Standard XML-DSig/XML-Enc (xmlsec1 reads them); built from strings so tests can mutate them.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{EncryptingKey, EncryptionContext, UnboundCipherKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::identity::headers::rfc3339;
use crate::provider::saml::xmlsec::SigningKey;

/// How the Assertion travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// A plain `saml:Assertion` child of the Response.
    None,
    /// aes256-cbc + rsa-oaep-mgf1p (SHA-1): what NIA sends.
    Aes256Cbc,
    /// aes128-cbc + rsa-oaep-mgf1p.
    Aes128Cbc,
    /// aes256-gcm + rsa-oaep-mgf1p.
    Aes256Gcm,
    /// aes256-gcm + xmlenc11 rsa-oaep, SHA-256 digest, explicit MGF1-SHA256.
    Aes256GcmOaep11Sha256,
    /// aes256-gcm + xmlenc11 rsa-oaep, SHA-256 digest, no `<MGF>` (= MGF1-SHA1, unsupported).
    Aes256GcmOaep11NoMgf,
}

/// NIA attribute URIs used by the default spec (nia.md §10.1).
pub mod nia {
    /// PersonIdentifier (BSI).
    pub const PERSON_IDENTIFIER: &str = "http://eidas.europa.eu/attributes/naturalperson/PersonIdentifier";
    /// Family name.
    pub const FAMILY_NAME: &str = "http://eidas.europa.eu/attributes/naturalperson/CurrentFamilyName";
    /// Given name.
    pub const GIVEN_NAME: &str = "http://eidas.europa.eu/attributes/naturalperson/CurrentGivenName";
    /// Date of birth.
    pub const DATE_OF_BIRTH: &str = "http://eidas.europa.eu/attributes/naturalperson/DateOfBirth";
    /// Place of birth.
    pub const PLACE_OF_BIRTH: &str = "http://eidas.europa.eu/attributes/naturalperson/PlaceOfBirth";
    /// Current address (base64 XML fragment).
    pub const CURRENT_ADDRESS: &str = "http://eidas.europa.eu/attributes/naturalperson/CurrentAddress";
    /// E-mail.
    pub const EMAIL: &str = "http://www.stork.gov.eu/1.0/eMail";
    /// RÚIAN address codes (base64 XML).
    pub const TRADRESA_ID: &str = "http://schemas.eidentita.cz/moris/2016/identity/claims/tradresaID";
}

/// Everything the ACS looks at. Times are Unix seconds.
#[derive(Debug, Clone)]
pub struct ResponseSpec {
    /// Response `ID`.
    pub response_id: String,
    /// Assertion `ID`.
    pub assertion_id: String,
    /// Response `Issuer` (`None` = omitted).
    pub issuer: Option<String>,
    /// Assertion `Issuer`.
    pub assertion_issuer: String,
    /// Response `Destination`.
    pub destination: Option<String>,
    /// Response `InResponseTo`.
    pub in_response_to: Option<String>,
    /// Top-level status code URI.
    pub status: String,
    /// Second-level status code URI.
    pub sub_status: Option<String>,
    /// `IssueInstant` of both.
    pub issue_instant: u64,
    /// NameID value (inserted verbatim: tests may put markup in it).
    pub name_id: String,
    /// `Audience`.
    pub audience: String,
    /// `SubjectConfirmationData@Recipient`.
    pub recipient: String,
    /// `SubjectConfirmationData@InResponseTo`.
    pub sc_in_response_to: Option<String>,
    /// `SubjectConfirmationData@NotOnOrAfter`.
    pub sc_not_on_or_after: u64,
    /// `Conditions@NotBefore`.
    pub not_before: u64,
    /// `Conditions@NotOnOrAfter`.
    pub not_on_or_after: u64,
    /// `AuthnStatement@SessionIndex`.
    pub session_index: String,
    /// `AuthnContextClassRef` (the achieved LoA URI).
    pub authn_context: String,
    /// Attributes: (Name, FriendlyName, values; values are escaped).
    pub attributes: Vec<(String, String, Vec<String>)>,
    /// Sign the Response.
    pub sign_response: bool,
    /// Sign the Assertion (before encryption).
    pub sign_assertion: bool,
    /// Encryption variant.
    pub encryption: Encryption,
}

/// A base64 NIA `CurrentAddress` value: an `eidas:`-prefixed fragment without root or
/// namespace declaration, as NIA sends it (nia.md §10.2).
pub fn nia_current_address(street: &str, number: &str, city: &str, post_code: &str) -> String {
    let xml = format!(
        "<eidas:LocatorDesignator>{}</eidas:LocatorDesignator>\r\n<eidas:Thoroughfare>{}</eidas:Thoroughfare>\r\n\
<eidas:PostName>{}</eidas:PostName>\r\n<eidas:PostCode>{}</eidas:PostCode>\r\n<eidas:CvaddressArea>{}</eidas:CvaddressArea>",
        esc(number),
        esc(street),
        esc(city),
        esc(post_code),
        esc(city)
    );
    B64.encode(xml)
}

/// A base64 NIA `TRadresaID` value (nia.md §10.3), CRLF and indentation like the live system.
pub fn nia_tradresa_id(adresni_misto: &str, obec: &str) -> String {
    let xml = format!(
        "<TRadresaID xmlns=\"http://schemas.eidentita.cz/moris/2016/identity/claims/tradresaid\">\r\n  <okresKod>3502</okresKod>\r\n\
  <obecKod>{}</obecKod>\r\n  <uliceKod></uliceKod>\r\n  <adresniMistoKod>{}</adresniMistoKod>\r\n  <cisloDomovni>167</cisloDomovni>\r\n</TRadresaID>",
        esc(obec),
        esc(adresni_misto)
    );
    B64.encode(xml)
}

/// XML escaping for text and attribute values.
pub fn esc(v: &str) -> String {
    v.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

impl ResponseSpec {
    /// A successful NIA login for `request_id`, valid for an hour from `now`, LoA substantial,
    /// with a Czech BSI and the usual attributes.
    pub fn nia(now: u64, request_id: &str, acs_url: &str, sp_entity_id: &str) -> ResponseSpec {
        let bsi = "CZ/CZ/2e3883ee-7e0d-47cb-8fee-2ea231a58ee6".to_owned();
        let attr = |n: &str, f: &str, v: &str| (n.to_owned(), f.to_owned(), vec![v.to_owned()]);
        ResponseSpec {
            response_id: format!("_r{now:x}{}", request_id.len()),
            assertion_id: format!("_a{now:x}{}", request_id.len()),
            issuer: Some("urn:microsoft:cgg2010:fpsts".to_owned()),
            assertion_issuer: "urn:microsoft:cgg2010:FPSTS".to_owned(),
            destination: Some(acs_url.to_owned()),
            in_response_to: Some(request_id.to_owned()),
            status: "urn:oasis:names:tc:SAML:2.0:status:Success".to_owned(),
            sub_status: None,
            issue_instant: now,
            name_id: bsi.clone(),
            audience: sp_entity_id.trim_end_matches('/').to_owned(),
            recipient: acs_url.to_owned(),
            sc_in_response_to: Some(request_id.to_owned()),
            sc_not_on_or_after: now + 3600,
            not_before: now,
            not_on_or_after: now + 3600,
            session_index: "_s1e5510n".to_owned(),
            authn_context: "http://eidas.europa.eu/LoA/substantial".to_owned(),
            attributes: vec![
                attr(nia::PERSON_IDENTIFIER, "PersonIdentifier", &bsi),
                attr(nia::FAMILY_NAME, "CurrentFamilyName", "NOVÁK"),
                attr(nia::GIVEN_NAME, "CurrentGivenName", "JAN"),
                attr(nia::DATE_OF_BIRTH, "DateOfBirth", "1968-03-29"),
                attr(nia::PLACE_OF_BIRTH, "PlaceOfBirth", "Ústí nad Labem"),
                attr(
                    nia::CURRENT_ADDRESS,
                    "CurrentAddress",
                    &nia_current_address("Žluťoučká", "1/2", "Praha", "11000"),
                ),
                attr(nia::TRADRESA_ID, "TRadresaID", &nia_tradresa_id("1236", "562343")),
                attr(nia::EMAIL, "Email", "jan.novak@example.cz"),
            ],
            sign_response: true,
            sign_assertion: false,
            encryption: Encryption::Aes256Cbc,
        }
    }

    /// The (unsigned) Assertion element, declaring every namespace it uses.
    pub fn assertion_xml(&self) -> String {
        let t = rfc3339;
        let sc_irt =
            self.sc_in_response_to.as_deref().map(|v| format!(" InResponseTo=\"{}\"", esc(v))).unwrap_or_default();
        let mut attrs = String::new();
        for (name, friendly, values) in &self.attributes {
            attrs.push_str(&format!(
                "<saml:Attribute Name=\"{}\" NameFormat=\"urn:oasis:names:tc:SAML:2.0:attrname-format:uri\" \
FriendlyName=\"{}\" a:OriginalIssuer=\"urn:microsoft:cgg2010:FPSTS\">",
                esc(name),
                esc(friendly)
            ));
            for v in values {
                attrs
                    .push_str(&format!("<saml:AttributeValue xsi:type=\"xs:string\">{}</saml:AttributeValue>", esc(v)));
            }
            attrs.push_str("</saml:Attribute>");
        }
        format!(
            "<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" \
xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
xmlns:a=\"http://schemas.xmlsoap.org/ws/2009/09/identity/claims\" ID=\"{id}\" IssueInstant=\"{ii}\" Version=\"2.0\">\
<saml:Issuer>{issuer}</saml:Issuer>\
<saml:Subject><saml:NameID Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:persistent\">{name_id}</saml:NameID>\
<saml:SubjectConfirmation Method=\"urn:oasis:names:tc:SAML:2.0:cm:bearer\">\
<saml:SubjectConfirmationData{sc_irt} NotOnOrAfter=\"{sc_noa}\" Recipient=\"{recipient}\"/></saml:SubjectConfirmation>\
</saml:Subject>\
<saml:Conditions NotBefore=\"{nb}\" NotOnOrAfter=\"{noa}\"><saml:AudienceRestriction><saml:Audience>{audience}</saml:Audience>\
</saml:AudienceRestriction></saml:Conditions>\
<saml:AttributeStatement>{attrs}</saml:AttributeStatement>\
<saml:AuthnStatement AuthnInstant=\"{ii}\" SessionIndex=\"{si}\"><saml:AuthnContext>\
<saml:AuthnContextClassRef>{loa}</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>\
</saml:Assertion>",
            id = esc(&self.assertion_id),
            ii = t(self.issue_instant),
            issuer = esc(&self.assertion_issuer),
            name_id = self.name_id,
            sc_noa = t(self.sc_not_on_or_after),
            recipient = esc(&self.recipient),
            nb = t(self.not_before),
            noa = t(self.not_on_or_after),
            audience = esc(&self.audience),
            si = esc(&self.session_index),
            loa = esc(&self.authn_context),
        )
    }

    /// The (unsigned) Response around `assertion` (an Assertion or EncryptedAssertion element).
    pub fn response_xml(&self, assertion: &str) -> String {
        let opt = |name: &str, v: &Option<String>| {
            v.as_deref().map(|v| format!(" {name}=\"{}\"", esc(v))).unwrap_or_default()
        };
        let issuer =
            self.issuer.as_deref().map(|i| format!("<saml:Issuer>{}</saml:Issuer>", esc(i))).unwrap_or_default();
        let sub =
            self.sub_status.as_deref().map(|s| format!("<samlp:StatusCode Value=\"{}\"/>", esc(s))).unwrap_or_default();
        format!(
            "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" \
xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{id}\" Version=\"2.0\" IssueInstant=\"{ii}\"{dest}{irt} \
Consent=\"urn:oasis:names:tc:SAML:2.0:consent:unspecified\">{issuer}\
<samlp:Status><samlp:StatusCode Value=\"{status}\">{sub}</samlp:StatusCode></samlp:Status>{assertion}</samlp:Response>",
            id = esc(&self.response_id),
            ii = rfc3339(self.issue_instant),
            dest = opt("Destination", &self.destination),
            irt = opt("InResponseTo", &self.in_response_to),
            status = esc(&self.status),
        )
    }

    /// The finished Response: the Assertion optionally signed, optionally encrypted to
    /// `sp_cert_der`, the Response optionally signed, all with `idp`.
    pub fn build(&self, idp: &SigningKey, sp_cert_der: &[u8]) -> Result<String, String> {
        let mut assertion = self.assertion_xml();
        if self.sign_assertion {
            assertion = idp.sign_enveloped(&assertion).map_err(|e| e.to_string())?;
        }
        if self.encryption != Encryption::None {
            assertion = encrypt_assertion(&assertion, sp_cert_der, self.encryption)?;
        }
        let response = self.response_xml(&assertion);
        if self.sign_response {
            idp.sign_enveloped(&response).map_err(|e| e.to_string())
        } else {
            Ok(response)
        }
    }
}

/// `<saml:EncryptedAssertion>` holding `assertion` encrypted to the certificate `cert_der`.
pub fn encrypt_assertion(assertion: &str, cert_der: &[u8], enc: Encryption) -> Result<String, String> {
    let rng = SystemRandom::new();
    let e = |what: &str| format!("encryption failed: {what}");
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).map_err(|err| e(&err.to_string()))?;
    let public = PublicEncryptingKey::from_der(cert.public_key().raw).map_err(|_| e("SP key is not RSA"))?;
    let oaep_key = OaepPublicEncryptingKey::new(public).map_err(|_| e("OAEP key"))?;
    let key_len = if enc == Encryption::Aes128Cbc { 16 } else { 32 };
    let mut session = vec![0u8; key_len];
    rng.fill(&mut session).map_err(|_| e("rng"))?;
    let (data_alg, cipher) = match enc {
        Encryption::Aes256Cbc | Encryption::Aes128Cbc => {
            let alg = if key_len == 16 { &aws_lc_rs::cipher::AES_128 } else { &aws_lc_rs::cipher::AES_256 };
            let mut iv = [0u8; 16];
            rng.fill(&mut iv).map_err(|_| e("rng"))?;
            // ISO 10126 padding: random bytes, the last one is the pad length.
            let pad = 16 - assertion.len() % 16;
            let mut buf = assertion.as_bytes().to_vec();
            let mut filler = vec![0u8; pad];
            rng.fill(&mut filler).map_err(|_| e("rng"))?;
            filler[pad - 1] = u8::try_from(pad).map_err(|_| e("pad"))?;
            buf.extend_from_slice(&filler);
            let key = EncryptingKey::cbc(UnboundCipherKey::new(alg, &session).map_err(|_| e("key"))?)
                .map_err(|_| e("cbc"))?;
            key.less_safe_encrypt(&mut buf, EncryptionContext::Iv128(iv.into())).map_err(|_| e("cbc"))?;
            let mut out = iv.to_vec();
            out.extend_from_slice(&buf);
            let uri = if key_len == 16 { "aes128-cbc" } else { "aes256-cbc" };
            (format!("http://www.w3.org/2001/04/xmlenc#{uri}"), out)
        }
        _ => {
            let key = LessSafeKey::new(UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, &session).map_err(|_| e("key"))?);
            let mut iv = [0u8; 12];
            rng.fill(&mut iv).map_err(|_| e("rng"))?;
            let mut buf = assertion.as_bytes().to_vec();
            key.seal_in_place_append_tag(Nonce::assume_unique_for_key(iv), Aad::empty(), &mut buf)
                .map_err(|_| e("gcm"))?;
            let mut out = iv.to_vec();
            out.extend_from_slice(&buf);
            ("http://www.w3.org/2009/xmlenc11#aes256-gcm".to_owned(), out)
        }
    };
    let (oaep, method) = match enc {
        Encryption::Aes256GcmOaep11Sha256 => (
            &aws_lc_rs::rsa::OAEP_SHA256_MGF1SHA256,
            "<xenc:EncryptionMethod Algorithm=\"http://www.w3.org/2009/xmlenc11#rsa-oaep\">\
<ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/>\
<xenc11:MGF xmlns:xenc11=\"http://www.w3.org/2009/xmlenc11#\" Algorithm=\"http://www.w3.org/2009/xmlenc11#mgf1sha256\"/>\
</xenc:EncryptionMethod>",
        ),
        Encryption::Aes256GcmOaep11NoMgf => (
            &aws_lc_rs::rsa::OAEP_SHA256_MGF1SHA256,
            "<xenc:EncryptionMethod Algorithm=\"http://www.w3.org/2009/xmlenc11#rsa-oaep\">\
<ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/></xenc:EncryptionMethod>",
        ),
        _ => (
            &aws_lc_rs::rsa::OAEP_SHA1_MGF1SHA1,
            "<xenc:EncryptionMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p\">\
<ds:DigestMethod Algorithm=\"http://www.w3.org/2000/09/xmldsig#sha1\"/></xenc:EncryptionMethod>",
        ),
    };
    let mut wrapped = vec![0u8; oaep_key.ciphertext_size()];
    let wrapped = oaep_key.encrypt(oaep, &session, &mut wrapped, None).map_err(|_| e("oaep"))?;
    Ok(format!(
        "<saml:EncryptedAssertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\">\
<xenc:EncryptedData xmlns:xenc=\"http://www.w3.org/2001/04/xmlenc#\" Type=\"http://www.w3.org/2001/04/xmlenc#Element\">\
<xenc:EncryptionMethod Algorithm=\"{data_alg}\"/>\
<ds:KeyInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><xenc:EncryptedKey>{method}\
<ds:KeyInfo><o:SecurityTokenReference xmlns:o=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd\">\
<ds:X509Data><ds:X509IssuerSerial><ds:X509IssuerName>{issuer}</ds:X509IssuerName>\
<ds:X509SerialNumber>{serial}</ds:X509SerialNumber></ds:X509IssuerSerial></ds:X509Data></o:SecurityTokenReference></ds:KeyInfo>\
<xenc:CipherData><xenc:CipherValue>{wrapped}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo>\
<xenc:CipherData><xenc:CipherValue>{cipher}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData></saml:EncryptedAssertion>",
        issuer = esc(&cert.issuer().to_string()),
        serial = cert.serial,
        wrapped = B64.encode(wrapped),
        cipher = B64.encode(cipher),
    ))
}
