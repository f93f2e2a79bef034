//! Fuzz target bodies, shared by the libFuzzer targets in `fuzz/` and by the corpus replay
//! test (`tests/fuzz_corpora.rs`), so a committed corpus file exercises exactly the code the
//! fuzzer ran.
//!
//! Only compiled with the `fuzzing` feature (tests enable it through the crate's
//! dev-dependency on itself); the production build contains neither these bodies nor the
//! test-only keys of `fuzz/fixtures/` they embed.
//!
//! Every target takes arbitrary bytes, must never panic, hang or allocate without bound on
//! them, and asserts the invariants its parser promises (a canonical path is a fixed point, an
//! accepted return URL stays on our origin, a removed cookie is gone). A failed assertion is a
//! finding, so this module may panic: that is how libFuzzer learns of it.

#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::sync::OnceLock;
use std::time::Duration;

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::gateway::request::{lookup_cookie, remove_cookies, CookieLookup};
use crate::http::canonical_path::CanonicalPath;
use crate::http::path_forms::{PathCase, PathForms};
use crate::http::return_url::ReturnUrl;
use crate::identity::Loa;
use crate::provider::kaas::soap::{self, DirectNamespace, ServiceVersion};
use crate::provider::oidc::id_token::{check_claims, Expected};
use crate::provider::oidc::jws::{parse_jwks, Jwk, Jws};
use crate::provider::saml::acs::{process_response, Expectations, LoaComparison};
use crate::provider::saml::binding;
use crate::provider::saml::xmlsec::{DecryptionKeys, IdpCertificates};

/// A fuzz target body: arbitrary bytes in, panics only on a finding.
pub type Target = fn(&[u8]);

/// Every target by name (the name is the `fuzz/fuzz_targets/<name>.rs` file and the
/// `fuzz/corpus/<name>/` directory).
pub const TARGETS: &[(&str, Target)] = &[
    ("canonical_path", canonical_path),
    ("return_url", return_url),
    ("cookies", cookies),
    ("saml_binding", saml_binding),
    ("saml_acs", saml_acs),
    ("oidc_jws", oidc_jws),
    ("kaas_soap", kaas_soap),
];

/// "Now" for every time check of the targets (the seed corpora are built for it).
pub const NOW: u64 = 1_790_000_000;
/// The ACS URL the `saml_acs` target expects.
pub const ACS_URL: &str = "https://gw.example.cz/.aisgate/saml/acs";
/// The SP entityID the `saml_acs` target expects.
pub const SP_ENTITY_ID: &str = "https://gw.example.cz/";
/// The IdP entityID the `saml_acs` target expects (NIA's).
pub const IDP_ENTITY_ID: &str = "urn:microsoft:cgg2010:fpsts";
/// The request id the `saml_acs` target expects.
pub const REQUEST_ID: &str = "_req1";
/// The issuer the `oidc_jws` target expects.
pub const OIDC_ISSUER: &str = "https://op.example.cz/";
/// The client id the `oidc_jws` target expects.
pub const OIDC_CLIENT_ID: &str = "aisgate";
/// The nonce the `oidc_jws` target expects.
pub const OIDC_NONCE: &str = "n-0S6_WzA2Mj";

/// Test-only keys (never used anywhere but fuzzing; see `fuzz/fixtures/README.md`).
pub mod fixtures {
    /// The IdP signing certificate the `saml_acs` target trusts.
    pub const IDP_CERT_PEM: &[u8] = include_bytes!("../fuzz/fixtures/idp.cert.pem");
    /// Its private key (for building seed Responses).
    pub const IDP_KEY_PEM: &[u8] = include_bytes!("../fuzz/fixtures/idp.key.pem");
    /// The SP encryption certificate (for building seed Responses).
    pub const SP_CERT_PEM: &[u8] = include_bytes!("../fuzz/fixtures/sp.cert.pem");
    /// The SP decryption key the `saml_acs` target holds.
    pub const SP_KEY_PEM: &[u8] = include_bytes!("../fuzz/fixtures/sp.key.pem");
    /// The real NIA test signing certificate of 2019, trusted too so the captured Response
    /// (`/work/shared/vectors`) gets past its signature into decryption.
    pub const NIA_2019_CERT_PEM: &[u8] = include_bytes!("provider/saml/testdata/nia-2019-signing-cert.pem");
    /// The OP's JWKS the `oidc_jws` target verifies with (RS256 `rsa1`, ES256 `ec1`).
    pub const JWKS_JSON: &[u8] = include_bytes!("../fuzz/fixtures/jwks.json");
    /// The private key of `rsa1` (PKCS#8, for building seed tokens).
    pub const OP_RSA_KEY_PEM: &[u8] = include_bytes!("../fuzz/fixtures/op.key.pem");
    /// The private key of `ec1` (PKCS#8, for building seed tokens).
    pub const OP_EC_KEY_PEM: &[u8] = include_bytes!("../fuzz/fixtures/op-ec.key.pem");
}

/// `CanonicalPath::parse`: an accepted path is its own canonical form, keeps the promised
/// invariants, and the routing forms derived from it do not panic.
pub fn canonical_path(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    let Ok(path) = CanonicalPath::parse(raw) else { return };
    let s = path.as_str();
    assert!(s.starts_with('/'), "{s:?}");
    assert!(s.is_ascii() && !s.contains("//") && !s.contains('\\'), "{s:?}");
    assert!(!s.split('/').any(|seg| seg == "." || seg == ".."), "dot segment left in {s:?}");
    assert!(!s.bytes().any(|b| b < 0x20 || b == 0x7f || b == b'?' || b == b'#' || b == b' '), "{s:?}");
    assert_eq!(CanonicalPath::parse(s).as_ref(), Ok(&path), "canonical form of {raw:?} is not a fixed point");
    let forms = PathForms::new(&path);
    let _ = forms.check_insensitive();
    for case in [PathCase::Sensitive, PathCase::Insensitive] {
        let readings = forms.readings(case);
        assert!(readings.all_under("/"), "a reading of {s:?} is not under /");
        let _ = readings.any_under("/app") && readings.all_under("/app");
    }
}

/// `ReturnUrl::parse`: an accepted URL resolves on our own origin, also after an application
/// percent-decodes its path once more before redirecting, and parses to itself again.
pub fn return_url(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    let Ok(url) = ReturnUrl::parse(raw) else { return };
    assert_eq!(ReturnUrl::parse(url.as_str()).as_ref(), Ok(&url));
    let base = url::Url::parse("https://gw.example.cz/").expect("base URL");
    let stays_home = |candidate: &str| match base.join(candidate) {
        Ok(resolved) => resolved.origin() == base.origin(),
        Err(_) => true,
    };
    assert!(stays_home(url.as_str()), "{raw:?} leaves the origin");
    let decoded = percent_encoding::percent_decode_str(url.path()).decode_utf8_lossy();
    assert!(stays_home(&decoded), "{raw:?} leaves the origin once its path is decoded");
}

/// `lookup_cookie`/`remove_cookies` over up to eight `Cookie` headers (one per input line):
/// a value found never spans pairs, and a removed name is gone while other names keep theirs.
pub fn cookies(data: &[u8]) {
    const NAMES: [&str; 2] = ["aisgate_session", "__Host-aisgate_login"];
    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n').take(8) {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append(COOKIE, v);
        }
    }
    let owned = |l: CookieLookup<'_>| match l {
        CookieLookup::One(v) => Some(Some(v.to_owned())),
        CookieLookup::Absent => None,
        CookieLookup::Duplicated => Some(None),
    };
    for name in NAMES.iter().chain(&["other"]) {
        if let CookieLookup::One(v) = lookup_cookie(&headers, name) {
            assert!(!v.contains(';'), "value of {name} spans pairs");
        }
    }
    let other_before = owned(lookup_cookie(&headers, "other"));
    remove_cookies(&mut headers, &NAMES);
    for name in NAMES {
        assert!(matches!(lookup_cookie(&headers, name), CookieLookup::Absent), "{name} survived removal");
    }
    // Removal only drops pairs; a readable cookie of another name keeps its reading.
    if headers.get_all(COOKIE).iter().all(|v| v.to_str().is_ok()) {
        assert_eq!(owned(lookup_cookie(&headers, "other")), other_before);
    }
}

/// The SAML bindings: HTTP-Redirect query decoding, the lenient POST/GET decoding and raw
/// inflation, each bounded by a 64 KiB limit that the output must respect.
pub fn saml_binding(data: &[u8]) {
    const LIMIT: usize = 64 * 1024;
    if let Ok(query) = std::str::from_utf8(data) {
        if let Ok(msg) = binding::decode_redirect(query, LIMIT) {
            assert!(msg.xml.len() <= LIMIT);
        }
        if let Ok(raw) = binding::decode_lenient(query, LIMIT) {
            assert!(raw.len() <= LIMIT);
        }
    }
    if let Ok(out) = binding::inflate(data, LIMIT) {
        assert!(out.len() <= LIMIT);
    }
}

struct AcsFixture {
    certs: IdpCertificates,
    keys: DecryptionKeys,
}

fn acs_fixture() -> &'static AcsFixture {
    static FIXTURE: OnceLock<AcsFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let der = |pem: &[u8]| CertificateDer::from_pem_slice(pem).expect("fixture certificate").to_vec();
        let certs = IdpCertificates::from_der(&[der(fixtures::IDP_CERT_PEM), der(fixtures::NIA_2019_CERT_PEM)])
            .expect("fixture IdP certificates");
        let keys = DecryptionKeys::from_pem(&[fixtures::SP_KEY_PEM.to_vec()]).expect("fixture SP key");
        AcsFixture { certs, keys }
    })
}

/// The expectations of the `saml_acs` target (NIA-shaped login, encryption required).
pub fn acs_expectations() -> Expectations<'static> {
    Expectations {
        idp_entity_id: IDP_ENTITY_ID,
        issuer_case_insensitive: true,
        sp_entity_id: SP_ENTITY_ID,
        audience_ignores_trailing_slash: true,
        acs_url: ACS_URL,
        request_id: Some(REQUEST_ID),
        requested_loa: Some((Loa::Substantial, LoaComparison::Minimum)),
        clock_skew: Duration::from_secs(180),
        now: NOW,
        require_encrypted_assertion: false,
        callers: &[],
    }
}

/// `process_response`: the ACS on the base64-decoded bytes of a POSTed `SAMLResponse`, with a
/// fixed SP key and trusted IdP certificates; encryption is required for inputs of odd length.
pub fn saml_acs(data: &[u8]) {
    let fixture = acs_fixture();
    let mut expect = acs_expectations();
    expect.require_encrypted_assertion = data.len() % 2 == 1;
    let _ = process_response(data, &fixture.certs, &fixture.keys, &expect);
}

fn jwks() -> &'static [Jwk] {
    static KEYS: OnceLock<Vec<Jwk>> = OnceLock::new();
    KEYS.get_or_init(|| parse_jwks(fixtures::JWKS_JSON).expect("fixture JWKS"))
}

/// The expectations of the `oidc_jws` target.
fn oidc_expected() -> Expected<'static> {
    Expected {
        issuer: OIDC_ISSUER,
        client_id: OIDC_CLIENT_ID,
        nonce: Some(OIDC_NONCE),
        now: NOW,
        skew: 60,
        access_token: Some("access-token"),
    }
}

/// Compact JWS parsing, verification with a fixed JWKS, and the ID-token claim checks (on the
/// payload of every parsed token, verified or not, so the claim checks are reached). The input
/// also serves as a JWKS document.
pub fn oidc_jws(data: &[u8]) {
    let _ = parse_jwks(data);
    let Ok(token) = std::str::from_utf8(data) else { return };
    let Ok(jws) = Jws::parse(token, 16 * 1024) else { return };
    let _ = jws.verify(jwks());
    let _ = check_claims(&jws.payload, &oidc_expected());
}

/// The KAAS SOAP codec: both response parsers, the heartbeat parser, and the simulator's
/// request parser.
/// The version and namespace variant come from the input length, so the fuzzer reaches each.
pub fn kaas_soap(data: &[u8]) {
    let version = ServiceVersion::ALL[data.len() % ServiceVersion::ALL.len()];
    let ns = if data.len() / 4 % 2 == 0 { DirectNamespace::AtsUserAtsSzr } else { DirectNamespace::AtsUser };
    let _ = soap::parse_auth_confirmation_response(data, version);
    let _ = soap::parse_direct_auth_user_response(data, version, ns);
    let _ = soap::parse_heart_beat_response(data, version);
    let _ = crate::sim::kaas_soap::parse_request(data);
}
