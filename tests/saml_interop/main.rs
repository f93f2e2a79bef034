//! Interop of aisgate's SAML SP with real third-party peers (issue 4): Responses signed and
//! encrypted by Debian's `xmlsec1` are accepted by the ACS; the real NIA capture verifies
//! byte-exact and nothing else does. Peers missing: skipped with a message, or failed when
//! `AISGATE_REQUIRE_PEERS` is set (`tools/test`).

mod nia_vector;
mod peers;
mod xmlsec1;

use std::path::PathBuf;
use std::time::Duration;

use aisgate::identity::Loa;
use aisgate::provider::saml::acs::{process_response, AcsError, Expectations, LoaComparison, SamlAssertion};
use aisgate::provider::saml::attributes::{to_identity, MappingOptions, Profile};
use aisgate::provider::saml::xmlsec::{DecryptionKeys, IdpCertificates, XmlSecError};

use peers::{rsa_identity, RsaIdentity};
use xmlsec1::{DataAlg, NiaShape, ACS_URL, NIA_ISSUER, SP_ENTITY_ID};

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Generated IdP and SP keys and a scratch directory for xmlsec1's files.
struct Fixture {
    dir: tempfile::TempDir,
    xmlsec1: PathBuf,
    idp: RsaIdentity,
    sp: RsaIdentity,
}

fn fixture() -> Option<Fixture> {
    let xmlsec1 = peers::xmlsec1()?;
    let dir = tempfile::tempdir().unwrap();
    let idp = rsa_identity(dir.path(), "idp");
    let sp = rsa_identity(dir.path(), "sp");
    Some(Fixture { dir, xmlsec1, idp, sp })
}

impl Fixture {
    fn response(&self, shape: &NiaShape, alg: DataAlg, sign_assertion: bool) -> Vec<u8> {
        xmlsec1::nia_response(&self.xmlsec1, self.dir.path(), shape, alg, sign_assertion, &self.idp, &self.sp)
    }

    /// The ACS with the NIA preset's expectations, trusting `idp_cert` and decrypting with
    /// the SP key.
    fn process(&self, bytes: &[u8], shape: &NiaShape, idp_cert: &[u8]) -> Result<SamlAssertion, AcsError> {
        let certs = IdpCertificates::from_der(&[idp_cert.to_vec()]).unwrap();
        let keys = DecryptionKeys::from_pem(&[self.sp.key_pem.clone().into_bytes()]).unwrap();
        let expect = Expectations {
            idp_entity_id: NIA_ISSUER,
            issuer_case_insensitive: true,
            sp_entity_id: SP_ENTITY_ID,
            audience_ignores_trailing_slash: true,
            acs_url: ACS_URL,
            request_id: Some(&shape.request_id),
            requested_loa: Some((Loa::Substantial, LoaComparison::Minimum)),
            clock_skew: Duration::from_secs(180),
            now: shape.now,
            require_encrypted_assertion: true,
        };
        process_response(bytes, &certs, &keys, &expect)
    }

    fn accept(&self, shape: &NiaShape, alg: DataAlg, sign_assertion: bool) -> SamlAssertion {
        let bytes = self.response(shape, alg, sign_assertion);
        self.process(&bytes, shape, &self.idp.cert_der).unwrap_or_else(|e| panic!("{alg:?} refused: {e}"))
    }
}

/// Everything NIA sends arrives, and maps to the identity the upstream sees.
fn assert_nia_user(assertion: &SamlAssertion, shape: &NiaShape) {
    assert_eq!(assertion.name_id, shape.bsi);
    assert_eq!(assertion.name_id_format.as_deref(), Some("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"));
    assert_eq!(assertion.session_index.as_deref(), Some(shape.session_index.as_str()));
    assert_eq!(assertion.authn_context.as_deref(), Some(xmlsec1::LOA_SUBSTANTIAL));
    let value = |friendly: &str| {
        assertion.attributes.iter().find(|a| a.friendly_name.as_deref() == Some(friendly)).map(|a| a.values.clone())
    };
    assert_eq!(value("CurrentFamilyName"), Some(vec!["NOVÁK".to_owned()]));
    assert_eq!(value("PlaceOfBirth"), Some(vec!["Ústí nad Labem".to_owned()]));
    let identity = to_identity(Profile::Nia, "nia", assertion, &MappingOptions::default(), shape.now).unwrap();
    assert_eq!(identity.subject, shape.bsi);
    assert_eq!(identity.family_name.as_deref(), Some("NOVÁK"));
    assert_eq!(identity.given_name.as_deref(), Some("JAN MARIE"));
    assert_eq!(identity.email.as_deref(), Some("jan.novak@example.cz"));
    assert_eq!(identity.loa, Some(Loa::Substantial));
    let personal = identity.personal.expect("personal data");
    assert_eq!(personal.birth_date.as_deref(), Some("1968-03-29"));
    assert_eq!(personal.birth_place.as_deref(), Some("Ústí nad Labem"));
}

// ---------------------------------------------------------------------------
// xmlsec1 → aisgate ACS
// ---------------------------------------------------------------------------

#[test]
fn xmlsec1_aes256_cbc_response_like_nia_is_accepted() {
    let Some(f) = fixture() else { return };
    let shape = NiaShape::new(now());
    assert_nia_user(&f.accept(&shape, DataAlg::Aes256Cbc, true), &shape);
}

#[test]
fn xmlsec1_aes128_gcm_response_is_accepted() {
    let Some(f) = fixture() else { return };
    let shape = NiaShape::new(now());
    assert_nia_user(&f.accept(&shape, DataAlg::Aes128Gcm, true), &shape);
}

#[test]
fn xmlsec1_aes256_gcm_response_is_accepted() {
    let Some(f) = fixture() else { return };
    let shape = NiaShape::new(now());
    assert_nia_user(&f.accept(&shape, DataAlg::Aes256Gcm, true), &shape);
}

#[test]
fn xmlsec1_aes128_cbc_response_is_accepted() {
    let Some(f) = fixture() else { return };
    let shape = NiaShape::new(now());
    assert_nia_user(&f.accept(&shape, DataAlg::Aes128Cbc, true), &shape);
}

#[test]
fn xmlsec1_response_with_unsigned_assertion_is_accepted() {
    let Some(f) = fixture() else { return };
    let shape = NiaShape::new(now());
    assert_nia_user(&f.accept(&shape, DataAlg::Aes256Cbc, false), &shape);
}

#[test]
fn xmlsec1_tripledes_response_is_refused() {
    let Some(f) = fixture() else { return };
    let shape = NiaShape::new(now());
    let bytes = f.response(&shape, DataAlg::TripleDesCbc, true);
    let err = f.process(&bytes, &shape, &f.idp.cert_der).expect_err("3DES is outside the allow-list");
    assert!(matches!(err, AcsError::Security(XmlSecError::Algorithm(_))), "{err}");
}

#[test]
fn xmlsec1_response_signed_by_another_key_is_refused() {
    let Some(f) = fixture() else { return };
    let shape = NiaShape::new(now());
    let bytes = f.response(&shape, DataAlg::Aes256Cbc, true);
    let stranger = rsa_identity(f.dir.path(), "stranger");
    let err = f.process(&bytes, &shape, &stranger.cert_der).expect_err("not the pinned IdP key");
    assert!(matches!(err, AcsError::Security(XmlSecError::Signature(_))), "{err}");
}

#[test]
fn xmlsec1_response_encrypted_to_another_sp_is_refused() {
    let Some(f) = fixture() else { return };
    let shape = NiaShape::new(now());
    let other = rsa_identity(f.dir.path(), "other-sp");
    let bytes = xmlsec1::nia_response(&f.xmlsec1, f.dir.path(), &shape, DataAlg::Aes256Cbc, true, &f.idp, &other);
    let err = f.process(&bytes, &shape, &f.idp.cert_der).expect_err("our key cannot decrypt it");
    assert!(matches!(err, AcsError::Security(XmlSecError::Decryption)), "{err}");
}

#[test]
fn xmlsec1_response_for_another_request_is_refused() {
    let Some(f) = fixture() else { return };
    let shape = NiaShape::new(now());
    let bytes = f.response(&shape, DataAlg::Aes256Cbc, true);
    let pending = NiaShape { request_id: "_another-pending-request".into(), ..shape };
    let err = f.process(&bytes, &pending, &f.idp.cert_der).expect_err("InResponseTo must match");
    assert!(matches!(err, AcsError::Invalid(_)), "{err}");
}
