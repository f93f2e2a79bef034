//! XML-DSig for the SAML SP on `bergshamra` (aws-lc), behind the binding rules of
//! `spec/saml-xmlsec-notes.md` §3: the exact received bytes (no DOCTYPE, size cap, never
//! re-serialised before verifying), one parse, an algorithm allow-list checked first, and a
//! signature counts only for the element that is its parent *and* its single reference. Strict
//! mode alone lets a signed Response nested in an attacker's root verify (XSW "A").

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, RsaKeyPair, UnparsedPublicKey};
use bergshamra::c14n::{self, C14nMode};
use bergshamra::dsig::verify;
use bergshamra::xml::uppsala::{self, Document, NodeId};
use bergshamra::xml::NodeSet;
use bergshamra::{DsigContext, KeysManager, VerifyResult};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};

pub use super::limits::Limits;
use super::limits::{self, Exceeded};
pub use super::xmlenc::DecryptionKeys;

/// Largest XML document accepted (a NIA Response is ~10–15 KB; metadata somewhat more).
pub const MAX_XML_BYTES: usize = 512 * 1024;

/// XML-DSig namespace.
pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";

const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const C14N10: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const SIGNATURE_METHODS: &[&str] = &[
    RSA_SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
];
const DIGEST_METHODS: &[&str] = &[
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
];

/// Why an XML security step failed. Messages are for the operator log: they name the step and
/// the algorithm or element, never key material or message content.
#[derive(Debug, thiserror::Error)]
pub enum XmlSecError {
    /// The document is larger than [`MAX_XML_BYTES`].
    #[error("malformed XML: document of {0} bytes exceeds the {MAX_XML_BYTES}-byte limit")]
    TooLarge(usize),
    /// The document carries a DOCTYPE.
    #[error("malformed XML: a DOCTYPE (DTD) is not allowed")]
    Doctype,
    /// The document is not well-formed XML (or nests too deep, or is not UTF-8).
    #[error("malformed XML: {0}")]
    NotWellFormed(String),
    /// The document is not acceptable (no root element, canonicalisation failed).
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// No valid signature by a trusted key covers the element the SP uses.
    #[error("signature: {0}")]
    Unsigned(String),
    /// A signature does not verify (value, digest, untrusted key, unresolvable reference).
    #[error("signature: {0}")]
    Signature(String),
    /// A valid signature is not bound to the element it sits in (signature wrapping).
    #[error("signature: {0}")]
    Wrapping(String),
    /// Two elements carry the same ID.
    #[error("signature: duplicate ID")]
    DuplicateId,
    /// Decryption failed (no key fits, bad ciphertext); deliberately uniform.
    #[error("decryption failed")]
    Decryption,
    /// An algorithm outside the allow-list.
    #[error("algorithm not allowed: {0}")]
    Algorithm(String),
    /// A configured key or certificate cannot be used.
    #[error("key: {0}")]
    Key(String),
    /// More signatures, references, transforms, encrypted keys or elements than the profile
    /// allows: refused before any canonicalisation or cryptography ([`super::limits`]).
    #[error("document {0}")]
    TooComplex(#[from] Exceeded),
}

impl XmlSecError {
    /// Classifies bergshamra's verification failure text: it has no typed reasons, and
    /// duplicate IDs and strict-mode placement refusals are wrapping attempts worth naming.
    fn from_verifier(reason: String) -> XmlSecError {
        if reason.contains("duplicate ID") {
            XmlSecError::DuplicateId
        } else if reason.contains("strict mode") {
            XmlSecError::Wrapping(reason)
        } else {
            XmlSecError::Signature(reason)
        }
    }
}

/// Certificates an IdP may sign with (from configuration or verified metadata), parsed once.
/// Any one of them verifies (IdP key rollover).
pub struct IdpCertificates {
    dsig: DsigContext,
    /// SubjectPublicKeyInfo DER of each certificate, for the HTTP-Redirect binding.
    spkis: Vec<Vec<u8>>,
}

impl IdpCertificates {
    /// Parses DER certificates once.
    pub fn from_der(certs: &[Vec<u8>]) -> Result<Self, XmlSecError> {
        if certs.is_empty() {
            return Err(XmlSecError::Key("no IdP signing certificate configured".to_owned()));
        }
        let mut km = KeysManager::new();
        let mut spkis = Vec::with_capacity(certs.len());
        for (i, der) in certs.iter().enumerate() {
            let key = bergshamra::keys::loader::load_x509_cert_der(der)
                .map_err(|e| XmlSecError::Key(format!("IdP certificate #{}: {e}", i + 1)))?;
            km.add_key(key);
            let (_, cert) = x509_parser::parse_x509_certificate(der)
                .map_err(|e| XmlSecError::Key(format!("IdP certificate #{}: {e}", i + 1)))?;
            spkis.push(cert.public_key().raw.to_vec());
        }
        // `new` = trusted keys only (KeyInfo certificates are never trust), strict reference
        // targets, reference digests required (notes §1/§3).
        Ok(IdpCertificates { dsig: DsigContext::new(km), spkis })
    }
}

/// The SP's signing key and certificate (AuthnRequest, LogoutRequest, LogoutResponse).
pub struct SigningKey {
    pair: RsaKeyPair,
    cert_der: Vec<u8>,
    dsig: DsigContext,
    rng: SystemRandom,
}

impl SigningKey {
    /// Parses the PEM key (PKCS#8 RSA) and certificate once.
    pub fn from_pem(key_pem: &[u8], cert_pem: &[u8]) -> Result<Self, XmlSecError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| XmlSecError::Key(format!("SP signing {what}: {e}"));
        let key_der = PrivatePkcs8KeyDer::from_pem_slice(key_pem)
            .map_err(|e| bad("key (a PEM `PRIVATE KEY` block expected)", &e))?;
        let pair =
            RsaKeyPair::from_pkcs8(key_der.secret_pkcs8_der()).map_err(|e| bad("key (PKCS#8 RSA expected)", &e))?;
        let cert_der = CertificateDer::from_pem_slice(cert_pem)
            .map_err(|e| bad("certificate (a PEM `CERTIFICATE` block expected)", &e))?
            .to_vec();
        let key = bergshamra::keys::loader::load_pem_auto(key_pem, None).map_err(|e| bad("key", &e))?;
        let mut km = KeysManager::new();
        km.add_key(key);
        Ok(SigningKey { pair, cert_der, dsig: DsigContext::new(km), rng: SystemRandom::new() })
    }

    /// The `SigAlg` / `SignatureMethod` URI this key signs with.
    pub fn signature_algorithm(&self) -> &'static str {
        RSA_SHA256
    }

    /// DER of the certificate, for metadata `KeyDescriptor use="signing"`.
    pub fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// HTTP-Redirect binding: the raw signature over the exact `SAMLRequest=…&RelayState=…&SigAlg=…` bytes.
    pub fn sign_redirect(&self, signed_query: &[u8]) -> Result<Vec<u8>, XmlSecError> {
        let mut sig = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(&signature::RSA_PKCS1_SHA256, &self.rng, signed_query, &mut sig)
            .map_err(|_| XmlSecError::Key("RSA signing failed".to_owned()))?;
        Ok(sig)
    }

    /// HTTP-POST binding: `xml` with an enveloped signature (exc-c14n, rsa-sha256, sha256,
    /// reference to the root's `ID`) inserted right after the root's `saml:Issuer`
    /// (SAML core §5.4.1 and the schema order: Issuer, Signature, …).
    pub fn sign_enveloped(&self, xml: &str) -> Result<String, XmlSecError> {
        let doc = uppsala::parse(xml).map_err(|e| XmlSecError::Malformed(e.to_string()))?;
        let root = doc.document_element().ok_or_else(|| XmlSecError::Malformed("no root element".to_owned()))?;
        let id = doc
            .get_attribute(root, "ID")
            .ok_or_else(|| XmlSecError::Malformed("root element has no ID to sign".to_owned()))?
            .to_owned();
        let at = match doc.first_child_element_by_name_ns(root, super::acs::SAML_NS, "Issuer") {
            Some(issuer) => doc.node_range(issuer).map(|r| r.end),
            // Metadata has no Issuer: the signature is its first child (SAML metadata §2.3.2).
            None => doc.first_child(root).and_then(|c| doc.node_range(c)).map(|r| r.start),
        }
        .ok_or_else(|| {
            XmlSecError::Malformed("no place for the signature (no saml:Issuer or first child)".to_owned())
        })?;
        drop(doc);
        let cert = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &self.cert_der);
        let template = format!(
            "<ds:Signature xmlns:ds=\"{DSIG_NS}\"><ds:SignedInfo>\
<ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\"/><ds:SignatureMethod Algorithm=\"{RSA_SHA256}\"/>\
<ds:Reference URI=\"#{id}\"><ds:Transforms><ds:Transform Algorithm=\"{ENVELOPED}\"/>\
<ds:Transform Algorithm=\"{EXC_C14N}\"/></ds:Transforms>\
<ds:DigestMethod Algorithm=\"{}\"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo>\
<ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}\
</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>",
            DIGEST_METHODS[0]
        );
        let mut out = String::with_capacity(xml.len() + template.len() + 512);
        out.push_str(&xml[..at]);
        out.push_str(&template);
        out.push_str(&xml[at..]);
        bergshamra::sign(&self.dsig, &out).map_err(|e| XmlSecError::Key(format!("XML signing failed: {e}")))
    }
}

/// HTTP-Redirect binding (SAML bindings §3.4.4.1): checks `Signature` over the exact signed
/// query bytes with one of `certs`.
pub fn verify_redirect(
    certs: &IdpCertificates,
    sig_alg: &str,
    signed_query: &[u8],
    sig: &[u8],
) -> Result<(), XmlSecError> {
    let alg: &'static dyn signature::VerificationAlgorithm = match sig_alg {
        RSA_SHA256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384" => &signature::RSA_PKCS1_2048_8192_SHA384,
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512" => &signature::RSA_PKCS1_2048_8192_SHA512,
        other => return Err(XmlSecError::Algorithm(format!("SigAlg {other}"))),
    };
    if certs.spkis.iter().any(|spki| UnparsedPublicKey::new(alg, spki).verify(signed_query, sig).is_ok()) {
        Ok(())
    } else {
        Err(XmlSecError::Signature("redirect-binding signature does not verify with any IdP certificate".to_owned()))
    }
}

/// A document whose element at the root is covered by a valid signature of a trusted key.
/// `canonical` is the exclusive-c14n form (without comments) of that element: the only bytes
/// later parsing may read.
pub struct SignedRoot {
    /// The exclusive canonical form of the signed root element.
    pub canonical: String,
}

/// Verifies that the document element of `xml` (exact received bytes; DOCTYPE refused) carries
/// a direct-child signature with exactly one reference, to itself, by one of `certs`.
/// Used for metadata and LogoutRequest/LogoutResponse (POST). The document must stay within
/// `limits` ([`Limits::METADATA`], [`Limits::LOGOUT`]), checked before any cryptography.
pub fn verify_root(xml: &[u8], certs: &IdpCertificates, limits: &Limits) -> Result<SignedRoot, XmlSecError> {
    let text = check_input(xml)?;
    let doc = parse(text)?;
    let root = document_element(&doc)?;
    limits::check(&doc, root, limits)?;
    if !signed_elements(&doc, text, certs)?.contains(&root) {
        return Err(XmlSecError::Unsigned(
            "no valid signature by a trusted key whose single reference is the document element".to_owned(),
        ));
    }
    Ok(SignedRoot { canonical: canonical(&doc, root)? })
}

/// Size cap, DOCTYPE refusal (notes "Other observations": uppsala accepts internal DTD
/// entities) and UTF-8, before any parsing.
pub(crate) fn check_input(xml: &[u8]) -> Result<&str, XmlSecError> {
    if xml.len() > MAX_XML_BYTES {
        return Err(XmlSecError::TooLarge(xml.len()));
    }
    if xml.windows(9).any(|w| w.eq_ignore_ascii_case(b"<!DOCTYPE")) {
        return Err(XmlSecError::Doctype);
    }
    std::str::from_utf8(xml).map_err(|e| XmlSecError::NotWellFormed(format!("not UTF-8: {e}")))
}

/// Parses once, nesting capped at [`limits::MAX_DEPTH`]; everything later works on this
/// `Document`. The caller then checks the amplifier counts ([`limits::check`]) before it
/// canonicalises, verifies or decrypts anything.
pub(crate) fn parse(text: &str) -> Result<Document<'_>, XmlSecError> {
    uppsala::Parser::new()
        .with_max_depth(limits::MAX_DEPTH)
        .parse(text)
        .map_err(|e| XmlSecError::NotWellFormed(format!("not well-formed: {e}")))
}

/// The document element.
pub(crate) fn document_element(doc: &Document<'_>) -> Result<NodeId, XmlSecError> {
    doc.document_element().ok_or_else(|| XmlSecError::Malformed("no document element".to_owned()))
}

/// Exclusive c14n without comments of `node`'s subtree: the bytes the SAML parser reads.
/// Comments are dropped here, so a `<!---->` inside a NameID yields the full joined value.
pub(crate) fn canonical(doc: &Document<'_>, node: NodeId) -> Result<String, XmlSecError> {
    let set = NodeSet::tree_without_comments(node, doc);
    let bytes = c14n::canonicalize_doc(doc, C14nMode::Exclusive, Some(&set), &[] as &[&str])
        .map_err(|e| XmlSecError::Malformed(format!("canonicalization failed: {e}")))?;
    String::from_utf8(bytes).map_err(|_| XmlSecError::Malformed("canonical form is not UTF-8".to_owned()))
}

fn algorithm_of<'d>(doc: &'d Document<'_>, parent: NodeId, local: &str, what: &str) -> Result<&'d str, XmlSecError> {
    doc.first_child_element_by_name_ns(parent, DSIG_NS, local)
        .and_then(|n| doc.get_attribute(n, "Algorithm"))
        .ok_or_else(|| XmlSecError::Signature(format!("signature without {what}")))
}

/// The allow-list (notes "Gaps" 3), for every `ds:Signature` in the document, before bergshamra
/// sees it: bergshamra has no algorithm policy knob beyond cargo features.
fn check_signature_algorithms(doc: &Document<'_>, signatures: &[NodeId]) -> Result<(), XmlSecError> {
    for &sig in signatures {
        let si = doc
            .first_child_element_by_name_ns(sig, DSIG_NS, "SignedInfo")
            .ok_or_else(|| XmlSecError::Signature("Signature without SignedInfo".to_owned()))?;
        let c14n = algorithm_of(doc, si, "CanonicalizationMethod", "CanonicalizationMethod")?;
        if c14n != EXC_C14N && c14n != C14N10 {
            return Err(XmlSecError::Algorithm(format!("CanonicalizationMethod {c14n}")));
        }
        let method = algorithm_of(doc, si, "SignatureMethod", "SignatureMethod")?;
        if !SIGNATURE_METHODS.contains(&method) {
            return Err(XmlSecError::Algorithm(format!("SignatureMethod {method}")));
        }
        for reference in doc.child_elements_by_name_ns(si, DSIG_NS, "Reference") {
            let digest = algorithm_of(doc, reference, "DigestMethod", "DigestMethod")?;
            if !DIGEST_METHODS.contains(&digest) {
                return Err(XmlSecError::Algorithm(format!("DigestMethod {digest}")));
            }
            if let Some(transforms) = doc.first_child_element_by_name_ns(reference, DSIG_NS, "Transforms") {
                for t in doc.child_elements_by_name_ns(transforms, DSIG_NS, "Transform") {
                    let alg = doc.get_attribute(t, "Algorithm").unwrap_or("");
                    if ![ENVELOPED, EXC_C14N, C14N10].contains(&alg) {
                        return Err(XmlSecError::Algorithm(format!("Transform {alg}")));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The elements of `doc` covered by a valid signature of a trusted key, bound as the notes §3
/// require: the Signature is a direct child of the element, has exactly one Reference, whose
/// digest was verified and which resolves to that very element. Any invalid signature anywhere
/// fails the whole document (fail closed); a valid one that is not bound this way is refused.
pub(crate) fn signed_elements(
    doc: &Document<'_>,
    source: &str,
    certs: &IdpCertificates,
) -> Result<Vec<NodeId>, XmlSecError> {
    let root = document_element(doc)?;
    let mut signatures: Vec<NodeId> = doc
        .descendants(root)
        .into_iter()
        .filter(|&n| doc.element(n).is_some_and(|e| e.name.matches(Some(DSIG_NS), "Signature")))
        .collect();
    if doc.element(root).is_some_and(|e| e.name.matches(Some(DSIG_NS), "Signature")) {
        signatures.push(root);
    }
    if signatures.is_empty() {
        return Ok(Vec::new());
    }
    check_signature_algorithms(doc, &signatures)?;
    #[cfg(test)]
    limits::crypto_ops::count();
    let results = verify::verify_all_document_with_source(&certs.dsig, doc, Some(source))
        .map_err(|e| XmlSecError::from_verifier(e.to_string()))?;
    let mut signed = Vec::new();
    for result in results {
        match result {
            VerifyResult::Invalid { reason } => return Err(XmlSecError::from_verifier(reason)),
            VerifyResult::Valid { signature_node, references, .. } => {
                let parent = doc.parent(signature_node);
                let bound = matches!(references.as_slice(), [r] if r.digest_verified && r.resolved_node.is_some() && r.resolved_node == parent);
                match parent {
                    Some(parent) if bound => signed.push(parent),
                    _ => {
                        return Err(XmlSecError::Wrapping(
                            "a signature does not cover exactly its parent element with a single reference".to_owned(),
                        ))
                    }
                }
            }
        }
    }
    Ok(signed)
}

#[cfg(test)]
mod tests;
