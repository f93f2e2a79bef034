//! XML security for the SAML SP (interface; implementation in progress).

/// Why an XML security step failed. Messages are for the operator log: they name the step and
/// the algorithm or element, never key material or message content.
#[derive(Debug, thiserror::Error)]
pub enum XmlSecError {
    /// The document is not acceptable XML (DOCTYPE, size, not well-formed, wrong root).
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// No valid signature by a trusted key covers the element the SP uses.
    #[error("signature: {0}")]
    Signature(String),
    /// Decryption failed (no key fits, bad ciphertext); deliberately uniform.
    #[error("decryption failed")]
    Decryption,
    /// An algorithm outside the allow-list.
    #[error("algorithm not allowed: {0}")]
    Algorithm(String),
    /// A configured key or certificate cannot be used.
    #[error("key: {0}")]
    Key(String),
}

/// Certificates an IdP may sign with (from configuration or verified metadata), parsed once.
/// Any one of them verifies (IdP key rollover).
pub struct IdpCertificates {
    _private: (),
}

impl IdpCertificates {
    /// Parses DER certificates once.
    pub fn from_der(_certs: &[Vec<u8>]) -> Result<Self, XmlSecError> {
        Err(XmlSecError::Key("not implemented".to_owned()))
    }
}

/// SP private keys for XML-Enc, current first then previous ones during a rollover; parsed
/// once and tried in order.
pub struct DecryptionKeys {
    _private: (),
}

impl DecryptionKeys {
    /// Parses PEM private keys (PKCS#8 or PKCS#1) once.
    pub fn from_pem(_keys: &[Vec<u8>]) -> Result<Self, XmlSecError> {
        Err(XmlSecError::Key("not implemented".to_owned()))
    }
}

/// The SP's signing key and certificate (AuthnRequest, LogoutRequest, LogoutResponse).
pub struct SigningKey {
    _private: (),
}

impl SigningKey {
    /// Parses the PEM key and certificate once.
    pub fn from_pem(_key_pem: &[u8], _cert_pem: &[u8]) -> Result<Self, XmlSecError> {
        Err(XmlSecError::Key("not implemented".to_owned()))
    }

    /// The `SigAlg` / `SignatureMethod` URI this key signs with.
    pub fn signature_algorithm(&self) -> &'static str {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    }

    /// DER of the certificate, for metadata `KeyDescriptor use="signing"`.
    pub fn certificate_der(&self) -> &[u8] {
        &[]
    }

    /// HTTP-Redirect binding: the raw signature over the exact `SAMLRequest=…&RelayState=…&SigAlg=…` bytes.
    pub fn sign_redirect(&self, _signed_query: &[u8]) -> Result<Vec<u8>, XmlSecError> {
        Err(XmlSecError::Key("not implemented".to_owned()))
    }

    /// HTTP-POST binding: `xml` with an enveloped signature (exc-c14n, rsa-sha256, sha256,
    /// reference to the root's `ID`) inserted right after the root's `saml:Issuer`.
    pub fn sign_enveloped(&self, _xml: &str) -> Result<String, XmlSecError> {
        Err(XmlSecError::Key("not implemented".to_owned()))
    }
}

/// HTTP-Redirect binding: checks `Signature` over the exact signed query bytes with one of `certs`.
pub fn verify_redirect(
    _certs: &IdpCertificates,
    _sig_alg: &str,
    _signed_query: &[u8],
    _signature: &[u8],
) -> Result<(), XmlSecError> {
    Err(XmlSecError::Signature("not implemented".to_owned()))
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
/// Used for metadata, LogoutRequest/LogoutResponse (POST) and unencrypted responses.
pub fn verify_root(_xml: &[u8], _certs: &IdpCertificates) -> Result<SignedRoot, XmlSecError> {
    Err(XmlSecError::Signature("not implemented".to_owned()))
}
