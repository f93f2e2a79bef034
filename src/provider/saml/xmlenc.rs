//! XML-Enc decryption of the one `EncryptedData` at the fixed path `Response/EncryptedAssertion`,
//! on aws-lc-rs with keys parsed once. Why not `bergshamra::decrypt`: it decrypts the *first*
//! `EncryptedData` of whatever it is given (XSW "D"), re-imports the PKCS#8 key on every call
//! (~40 % of an ACS request) and applies the wrong default MGF for xmlenc11 `rsa-oaep` (notes
//! gaps 1, 3, 4). Every failure after the algorithm check is the same error (padding oracles).

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{DecryptingKey, DecryptionContext, UnboundCipherKey};
use aws_lc_rs::rsa::{OaepAlgorithm, OaepPrivateDecryptingKey, PrivateDecryptingKey};
use bergshamra::xml::uppsala::{Document, NodeId};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivatePkcs8KeyDer;

use super::xmlsec::{XmlSecError, DSIG_NS};

/// XML-Enc 1.0 namespace.
pub const XENC_NS: &str = "http://www.w3.org/2001/04/xmlenc#";
/// XML-Enc 1.1 namespace.
pub const XENC11_NS: &str = "http://www.w3.org/2009/xmlenc11#";

/// SP private keys for XML-Enc, current first then previous ones during a rollover; parsed
/// once and tried in order (the EncryptedKey's KeyInfo, e.g. NIA's X509IssuerSerial, is not
/// used to choose: trying is cheap and a wrong hint cannot mislead).
pub struct DecryptionKeys {
    keys: Vec<OaepPrivateDecryptingKey>,
}

impl DecryptionKeys {
    /// No keys: every EncryptedAssertion fails to decrypt (plain assertions only).
    pub fn none() -> Self {
        DecryptionKeys { keys: Vec::new() }
    }

    /// Parses PEM private keys (PKCS#8 `BEGIN PRIVATE KEY`, RSA) once.
    pub fn from_pem(keys: &[Vec<u8>]) -> Result<Self, XmlSecError> {
        if keys.is_empty() {
            return Err(XmlSecError::Key("no SP decryption key configured".to_owned()));
        }
        let mut parsed = Vec::with_capacity(keys.len());
        for (i, pem) in keys.iter().enumerate() {
            let bad = |e: &dyn std::fmt::Display| XmlSecError::Key(format!("SP decryption key #{}: {e}", i + 1));
            let der = PrivatePkcs8KeyDer::from_pem_slice(pem)
                .map_err(|e| bad(&format!("no usable PEM `PRIVATE KEY` block ({e})")))?;
            let key = PrivateDecryptingKey::from_pkcs8(der.secret_pkcs8_der())
                .map_err(|e| bad(&format!("not a PKCS#8 RSA key ({e})")))?;
            parsed.push(OaepPrivateDecryptingKey::new(key).map_err(|_| bad(&"unusable for RSA-OAEP"))?);
        }
        Ok(DecryptionKeys { keys: parsed })
    }
}

#[derive(Clone, Copy)]
enum DataCipher {
    Cbc(&'static aws_lc_rs::cipher::Algorithm, usize),
    Gcm(&'static aws_lc_rs::aead::Algorithm, usize),
}

fn data_cipher(uri: &str) -> Result<DataCipher, XmlSecError> {
    use aws_lc_rs::{aead, cipher};
    Ok(match uri {
        "http://www.w3.org/2001/04/xmlenc#aes128-cbc" => DataCipher::Cbc(&cipher::AES_128, 16),
        "http://www.w3.org/2001/04/xmlenc#aes192-cbc" => DataCipher::Cbc(&cipher::AES_192, 24),
        "http://www.w3.org/2001/04/xmlenc#aes256-cbc" => DataCipher::Cbc(&cipher::AES_256, 32),
        "http://www.w3.org/2009/xmlenc11#aes128-gcm" => DataCipher::Gcm(&aead::AES_128_GCM, 16),
        "http://www.w3.org/2009/xmlenc11#aes256-gcm" => DataCipher::Gcm(&aead::AES_256_GCM, 32),
        other => return Err(XmlSecError::Algorithm(format!("data encryption {other}"))),
    })
}

fn digest_of<'d>(doc: &'d Document<'_>, method: NodeId) -> Option<&'d str> {
    doc.first_child_element_by_name_ns(method, DSIG_NS, "DigestMethod").and_then(|d| doc.get_attribute(d, "Algorithm"))
}

/// The OAEP parameters of an `EncryptedKey/EncryptionMethod` (XML-Enc 1.1 §5.5.2). aws-lc
/// offers matched digest/MGF pairs only (notes gap 2), and 1.1's default MGF is MGF1-SHA1.
fn key_transport(doc: &Document<'_>, method: NodeId) -> Result<&'static OaepAlgorithm, XmlSecError> {
    use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384, OAEP_SHA512_MGF1SHA512};
    const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
    if doc.first_child_element_by_name_ns(method, XENC_NS, "OAEPparams").is_some() {
        return Err(XmlSecError::Algorithm("key transport with OAEPparams (label)".to_owned()));
    }
    let uri = doc.get_attribute(method, "Algorithm").unwrap_or("");
    let digest = digest_of(doc, method).unwrap_or(SHA1);
    match uri {
        "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p" => match digest {
            SHA1 => Ok(&OAEP_SHA1_MGF1SHA1),
            other => Err(XmlSecError::Algorithm(format!(
                "rsa-oaep-mgf1p with DigestMethod {other} (MGF1-SHA1 with another OAEP digest is unsupported by aws-lc)"
            ))),
        },
        "http://www.w3.org/2009/xmlenc11#rsa-oaep" => {
            let mgf = doc
                .first_child_element_by_name_ns(method, XENC11_NS, "MGF")
                .and_then(|m| doc.get_attribute(m, "Algorithm"))
                .unwrap_or("http://www.w3.org/2009/xmlenc11#mgf1sha1");
            match (digest, mgf) {
                (SHA1, "http://www.w3.org/2009/xmlenc11#mgf1sha1") => Ok(&OAEP_SHA1_MGF1SHA1),
                ("http://www.w3.org/2001/04/xmlenc#sha256", "http://www.w3.org/2009/xmlenc11#mgf1sha256") => {
                    Ok(&OAEP_SHA256_MGF1SHA256)
                }
                ("http://www.w3.org/2001/04/xmldsig-more#sha384", "http://www.w3.org/2009/xmlenc11#mgf1sha384") => {
                    Ok(&OAEP_SHA384_MGF1SHA384)
                }
                ("http://www.w3.org/2001/04/xmlenc#sha512", "http://www.w3.org/2009/xmlenc11#mgf1sha512") => {
                    Ok(&OAEP_SHA512_MGF1SHA512)
                }
                (d, m) => Err(XmlSecError::Algorithm(format!(
                    "xmlenc11 rsa-oaep with DigestMethod {d} and MGF {m}: only matched pairs are supported \
                     (an absent MGF means MGF1-SHA1, XML-Enc 1.1 §5.5.2)"
                ))),
            }
        }
        other => Err(XmlSecError::Algorithm(format!("key transport {other}"))),
    }
}

/// Base64 of `CipherData/CipherValue`; a `CipherReference` (a URI fetch) is refused.
fn cipher_value(doc: &Document<'_>, parent: NodeId) -> Result<Vec<u8>, XmlSecError> {
    let data = doc
        .first_child_element_by_name_ns(parent, XENC_NS, "CipherData")
        .ok_or_else(|| XmlSecError::Malformed("EncryptedData/EncryptedKey without CipherData".to_owned()))?;
    let value = doc
        .first_child_element_by_name_ns(data, XENC_NS, "CipherValue")
        .ok_or_else(|| XmlSecError::Malformed("CipherData without CipherValue (CipherReference refused)".to_owned()))?;
    let b64: String = doc.text_content_deep(value).chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64)
        .map_err(|_| XmlSecError::Malformed("CipherValue is not base64".to_owned()))
}

struct Plan {
    data: DataCipher,
    ciphertext: Vec<u8>,
    wrapped: Vec<(&'static OaepAlgorithm, Vec<u8>)>,
}

/// Reads the `EncryptedAssertion` (SAML core §2.3.4): exactly one `EncryptedData`, its key in
/// `EncryptedData/ds:KeyInfo/EncryptedKey` (NIA) or in sibling `EncryptedKey`s. Algorithms are
/// checked here, before anything is decrypted.
fn plan(doc: &Document<'_>, encrypted_assertion: NodeId) -> Result<Plan, XmlSecError> {
    let data_nodes = doc.child_elements_by_name_ns(encrypted_assertion, XENC_NS, "EncryptedData");
    let [data_node] = data_nodes.as_slice() else {
        return Err(XmlSecError::Malformed(format!(
            "EncryptedAssertion has {} EncryptedData children, expected exactly one",
            data_nodes.len()
        )));
    };
    let data_uri = doc
        .first_child_element_by_name_ns(*data_node, XENC_NS, "EncryptionMethod")
        .and_then(|m| doc.get_attribute(m, "Algorithm"))
        .ok_or_else(|| XmlSecError::Malformed("EncryptedData without EncryptionMethod".to_owned()))?;
    let data = data_cipher(data_uri)?;
    let mut key_nodes = doc
        .first_child_element_by_name_ns(*data_node, DSIG_NS, "KeyInfo")
        .map(|ki| doc.child_elements_by_name_ns(ki, XENC_NS, "EncryptedKey"))
        .unwrap_or_default();
    key_nodes.extend(doc.child_elements_by_name_ns(encrypted_assertion, XENC_NS, "EncryptedKey"));
    if key_nodes.is_empty() {
        return Err(XmlSecError::Malformed("EncryptedAssertion carries no EncryptedKey".to_owned()));
    }
    let mut wrapped = Vec::with_capacity(key_nodes.len());
    for key in key_nodes {
        let method = doc
            .first_child_element_by_name_ns(key, XENC_NS, "EncryptionMethod")
            .ok_or_else(|| XmlSecError::Malformed("EncryptedKey without EncryptionMethod".to_owned()))?;
        wrapped.push((key_transport(doc, method)?, cipher_value(doc, key)?));
    }
    Ok(Plan { data, ciphertext: cipher_value(doc, *data_node)?, wrapped })
}

/// Decrypts the Assertion inside `encrypted_assertion` (a node of the verified document) and
/// returns its plaintext XML bytes.
pub(crate) fn decrypt_assertion(
    doc: &Document<'_>,
    encrypted_assertion: NodeId,
    keys: &DecryptionKeys,
) -> Result<Vec<u8>, XmlSecError> {
    let plan = plan(doc, encrypted_assertion)?;
    let key_len = match plan.data {
        DataCipher::Cbc(_, n) | DataCipher::Gcm(_, n) => n,
    };
    let mut session = vec![0u8; 1024];
    for (oaep, wrapped) in &plan.wrapped {
        for key in &keys.keys {
            #[cfg(test)]
            super::limits::crypto_ops::count();
            let Ok(plain) = key.decrypt(oaep, wrapped, &mut session, None) else { continue };
            if plain.len() != key_len {
                continue;
            }
            if let Some(out) = decrypt_data(plan.data, plain, &plan.ciphertext) {
                return Ok(out);
            }
        }
    }
    Err(XmlSecError::Decryption)
}

fn decrypt_data(cipher: DataCipher, key: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
    match cipher {
        DataCipher::Cbc(alg, _) => {
            // XML-Enc 1.0 §5.2: IV ‖ blocks; padding is ISO 10126: the last byte is the pad
            // length (1..=16), the other pad bytes are arbitrary and not checked.
            if ciphertext.len() < 32 || ciphertext.len() % 16 != 0 {
                return None;
            }
            let (iv, body) = ciphertext.split_at(16);
            let iv: [u8; 16] = iv.try_into().ok()?;
            let key = DecryptingKey::cbc(UnboundCipherKey::new(alg, key).ok()?).ok()?;
            let mut buf = body.to_vec();
            let plain = key.decrypt(&mut buf, DecryptionContext::Iv128(iv.into())).ok()?;
            let pad = usize::from(*plain.last()?);
            if pad == 0 || pad > 16 || pad > plain.len() {
                return None;
            }
            let len = plain.len() - pad;
            buf.truncate(len);
            Some(buf)
        }
        DataCipher::Gcm(alg, _) => {
            // XML-Enc 1.1 §5.2.4: IV (96 bits) ‖ ciphertext ‖ tag (128 bits).
            if ciphertext.len() < 12 + 16 {
                return None;
            }
            let (iv, body) = ciphertext.split_at(12);
            let key = LessSafeKey::new(UnboundKey::new(alg, key).ok()?);
            let nonce = Nonce::try_assume_unique_for_key(iv).ok()?;
            let mut buf = body.to_vec();
            let len = key.open_in_place(nonce, Aad::empty(), &mut buf).ok()?.len();
            buf.truncate(len);
            Some(buf)
        }
    }
}
