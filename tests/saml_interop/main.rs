//! Interop of aisgate's SAML SP with real third-party peers (issue 4): Responses signed and
//! encrypted by Debian's `xmlsec1` are accepted by the ACS; the real NIA capture verifies
//! byte-exact and nothing else does. Peers missing: skipped with a message, or failed when
//! `AISGATE_REQUIRE_PEERS` is set (`tools/test`).

#[path = "../support/mod.rs"]
mod support;

mod login;
mod nia_vector;
mod peers;
mod pysaml2;
mod simplesamlphp;
mod xmlsec1;

use std::path::PathBuf;
use std::time::Duration;

use aisgate::identity::Loa;
use aisgate::provider::saml::acs::{process_response, AcsError, Expectations, LoaComparison, SamlAssertion};
use aisgate::provider::saml::attributes::{to_identity, MappingOptions, Profile};
use aisgate::provider::saml::reason::Refusal;
use aisgate::provider::saml::xmlsec::{DecryptionKeys, IdpCertificates};

use aisgate::sim::saml_response::ResponseSpec;
use peers::{rsa_identity, RsaFiles};
use xmlsec1::{DataAlg, ACS_URL, SP_ENTITY_ID};

const NIA_ISSUER: &str = "urn:microsoft:cgg2010:fpsts";
const LOA_SUBSTANTIAL: &str = "http://eidas.europa.eu/LoA/substantial";

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Generated IdP and SP keys and a scratch directory for xmlsec1's files.
struct Fixture {
    dir: tempfile::TempDir,
    xmlsec1: PathBuf,
    idp: RsaFiles,
    sp: RsaFiles,
}

fn fixture() -> Option<Fixture> {
    let xmlsec1 = peers::xmlsec1()?;
    let dir = tempfile::tempdir().unwrap();
    let idp = rsa_identity(dir.path(), "idp");
    let sp = rsa_identity(dir.path(), "sp");
    Some(Fixture { dir, xmlsec1, idp, sp })
}

impl Fixture {
    fn response(&self, spec: &ResponseSpec, alg: DataAlg) -> Vec<u8> {
        xmlsec1::nia_response(&self.xmlsec1, self.dir.path(), spec, alg, &self.idp, &self.sp)
    }

    /// The ACS with the NIA preset's expectations, trusting `idp_cert` and decrypting with
    /// the SP key.
    fn process(&self, bytes: &[u8], spec: &ResponseSpec, idp_cert: &[u8]) -> Result<SamlAssertion, AcsError> {
        let certs = IdpCertificates::from_der(&[idp_cert.to_vec()]).unwrap();
        let keys = DecryptionKeys::from_pem(&[self.sp.id.key_pem.clone().into_bytes()]).unwrap();
        let expect = Expectations {
            idp_entity_id: NIA_ISSUER,
            issuer_case_insensitive: true,
            sp_entity_id: SP_ENTITY_ID,
            audience_ignores_trailing_slash: true,
            acs_url: ACS_URL,
            request_id: spec.in_response_to.as_deref(),
            requested_loa: Some((Loa::Substantial, LoaComparison::Minimum)),
            clock_skew: Duration::from_secs(180),
            now: spec.issue_instant,
            require_encrypted_assertion: true,
            callers: &[],
        };
        process_response(bytes, &certs, &keys, &expect)
    }

    fn accept(&self, spec: &ResponseSpec, alg: DataAlg) -> SamlAssertion {
        let bytes = self.response(spec, alg);
        self.process(&bytes, spec, &self.idp.id.cert_der).unwrap_or_else(|e| panic!("{alg:?} refused: {e}"))
    }
}

/// NIA's usual Response for a pending request, its Assertion signed too (as NIA's STS does).
fn nia_spec() -> ResponseSpec {
    let spec = ResponseSpec::nia(now(), "_9654756a-c7b0-4d1c-a857-0f1f766b79bf", ACS_URL, SP_ENTITY_ID);
    ResponseSpec { sign_assertion: true, ..spec }
}

/// Everything NIA sends arrives, and maps to the identity the upstream sees.
fn assert_nia_user(assertion: &SamlAssertion, spec: &ResponseSpec) {
    assert_eq!(assertion.name_id, spec.name_id);
    assert_eq!(assertion.name_id_format.as_deref(), Some("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"));
    assert_eq!(assertion.session_index.as_deref(), Some(spec.session_index.as_str()));
    assert_eq!(assertion.authn_context.as_deref(), Some(LOA_SUBSTANTIAL));
    let value = |friendly: &str| {
        assertion.attributes.iter().find(|a| a.friendly_name.as_deref() == Some(friendly)).map(|a| a.values.clone())
    };
    assert_eq!(value("CurrentFamilyName"), Some(vec!["NOVÁK".to_owned()]));
    assert_eq!(value("PlaceOfBirth"), Some(vec!["Ústí nad Labem".to_owned()]));
    let identity = to_identity(Profile::Nia, "nia", assertion, &MappingOptions::default(), spec.issue_instant).unwrap();
    assert_eq!(identity.subject, spec.name_id);
    assert_eq!(identity.family_name.as_deref(), Some("NOVÁK"));
    assert_eq!(identity.given_name.as_deref(), Some("JAN"));
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
    let spec = nia_spec();
    assert_nia_user(&f.accept(&spec, DataAlg::Aes256Cbc), &spec);
}

#[test]
fn xmlsec1_aes128_gcm_response_is_accepted() {
    let Some(f) = fixture() else { return };
    let spec = nia_spec();
    assert_nia_user(&f.accept(&spec, DataAlg::Aes128Gcm), &spec);
}

#[test]
fn xmlsec1_aes256_gcm_response_is_accepted() {
    let Some(f) = fixture() else { return };
    let spec = nia_spec();
    assert_nia_user(&f.accept(&spec, DataAlg::Aes256Gcm), &spec);
}

#[test]
fn xmlsec1_aes128_cbc_response_is_accepted() {
    let Some(f) = fixture() else { return };
    let spec = nia_spec();
    assert_nia_user(&f.accept(&spec, DataAlg::Aes128Cbc), &spec);
}

#[test]
fn xmlsec1_response_with_unsigned_assertion_is_accepted() {
    let Some(f) = fixture() else { return };
    let spec = nia_spec();
    assert_nia_user(&f.accept(&ResponseSpec { sign_assertion: false, ..spec.clone() }, DataAlg::Aes256Cbc), &spec);
}

#[test]
fn xmlsec1_tripledes_response_is_refused() {
    let Some(f) = fixture() else { return };
    let spec = nia_spec();
    let bytes = f.response(&spec, DataAlg::TripleDesCbc);
    let err = f.process(&bytes, &spec, &f.idp.id.cert_der).expect_err("3DES is outside the allow-list");
    assert!(err.refusal() == Refusal::Algorithm, "{err}");
}

#[test]
fn xmlsec1_response_signed_by_another_key_is_refused() {
    let Some(f) = fixture() else { return };
    let spec = nia_spec();
    let bytes = f.response(&spec, DataAlg::Aes256Cbc);
    let stranger = rsa_identity(f.dir.path(), "stranger");
    let err = f.process(&bytes, &spec, &stranger.id.cert_der).expect_err("not the pinned IdP key");
    assert!(err.refusal() == Refusal::Signature, "{err}");
}

#[test]
fn xmlsec1_response_encrypted_to_another_sp_is_refused() {
    let Some(f) = fixture() else { return };
    let spec = nia_spec();
    let other = rsa_identity(f.dir.path(), "other-sp");
    let bytes = xmlsec1::nia_response(&f.xmlsec1, f.dir.path(), &spec, DataAlg::Aes256Cbc, &f.idp, &other);
    let err = f.process(&bytes, &spec, &f.idp.id.cert_der).expect_err("our key cannot decrypt it");
    assert!(err.refusal() == Refusal::Decryption, "{err}");
}

#[test]
fn xmlsec1_response_for_another_request_is_refused() {
    let Some(f) = fixture() else { return };
    let spec = nia_spec();
    let bytes = f.response(&spec, DataAlg::Aes256Cbc);
    let pending = ResponseSpec { in_response_to: Some("_another-pending-request".into()), ..spec };
    let err = f.process(&bytes, &pending, &f.idp.id.cert_der).expect_err("InResponseTo must match");
    assert!(err.refusal() == Refusal::InResponseTo, "{err}");
}
