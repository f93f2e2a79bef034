//! Replays every committed fuzz corpus (`fuzz/corpus/<target>/`) through the same target body
//! the libFuzzer target runs (`aisgate::fuzzing`), on stable, in the normal test suite: each
//! input the fuzzer once kept — seeds, new coverage, and every crash it found and we fixed —
//! stays a regression test. A panic names the target and the file.
//!
//! `cargo test --test fuzz_corpora -- --ignored write_seed_corpora` (re)writes the `seed-*`
//! files from the protocol fixtures, the simulators and the test-only keys in `fuzz/fixtures/`.

use std::path::{Path, PathBuf};

use aisgate::fuzzing::{self, fixtures, Target};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target)
}

fn target(name: &str) -> Target {
    fuzzing::TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t).unwrap_or_else(|| panic!("no target {name}"))
}

/// Feeds every file of the target's corpus to it; returns how many there were.
fn replay(name: &str) -> usize {
    let run = target(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir(name))
        .unwrap_or_else(|e| panic!("fuzz/corpus/{name}: {e}"))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in &files {
        let data = std::fs::read(file).unwrap();
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "fuzz target {name} fails on {}", file.display());
    }
    assert!(!files.is_empty(), "fuzz/corpus/{name} is empty");
    files.len()
}

macro_rules! corpus_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name));
            }
        )*

        #[test]
        fn every_target_has_a_replay_test() {
            let tested = [$(stringify!($name)),*];
            for (name, _) in fuzzing::TARGETS {
                assert!(tested.contains(name), "no corpus replay test for fuzz target {name}");
            }
        }
    };
}

corpus_tests!(canonical_path, return_url, cookies, saml_binding, saml_acs, oidc_jws, kaas_soap);

// === seed corpora ===

fn write_seed(target: &str, name: &str, data: impl AsRef<[u8]>) {
    let dir = corpus_dir(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
}

fn pem_der(pem: &[u8]) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::PrivateKeyDer::from_pem_slice(pem).unwrap().secret_der().to_vec()
}

fn b64u(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn jws(alg: &str, kid: &str, claims: &serde_json::Value) -> String {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256};
    let header = serde_json::json!({ "alg": alg, "kid": kid, "typ": "JWT" });
    let input = format!("{}.{}", b64u(header.to_string().as_bytes()), b64u(claims.to_string().as_bytes()));
    let rng = SystemRandom::new();
    let signature = match alg {
        "RS256" => {
            let key = RsaKeyPair::from_pkcs8(&pem_der(fixtures::OP_RSA_KEY_PEM)).unwrap();
            let mut sig = vec![0; key.public_modulus_len()];
            key.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig).unwrap();
            sig
        }
        "ES256" => {
            let key =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pem_der(fixtures::OP_EC_KEY_PEM)).unwrap();
            let _ = key.public_key();
            key.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec()
        }
        _ => b"not-a-signature".to_vec(),
    };
    format!("{input}.{}", b64u(&signature))
}

#[test]
#[ignore = "writes the seed corpora into fuzz/corpus/; run by hand after changing fixtures"]
fn write_seed_corpora() {
    use aisgate::provider::kaas::soap;
    use aisgate::provider::saml::binding::{self, MessageKind};
    use aisgate::provider::saml::xmlsec::SigningKey;
    use aisgate::sim::saml_response::{Encryption, ResponseSpec};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));

    let paths = [
        "/",
        "/a/b",
        "/app/x/",
        "/public/%2e%2e/admin",
        "/public/..;/admin",
        "/public%2Fadmin",
        "/public\\admin",
        "//admin",
        "/a/./b/../c/",
        "/%25%32%65",
        "/%252e%252e/",
        "/x%7e%41%2D",
        "/a;jsessionid=1/b",
        "/ADMIN~1/x",
        "/a::$DATA",
        "/admin.",
        "/q?x",
        "/%C3%A1%20b",
        "/\"<>`{|}^",
        "/..",
        "/a/%2E%2E/%2e/",
    ];
    for (i, p) in paths.iter().enumerate() {
        write_seed("canonical_path", &i.to_string(), p);
    }

    let urls = [
        "/",
        "/a/b?x=1&y=%C3%A1",
        "/app/?q=a%20b",
        "/my%20docs/",
        "//evil.example",
        "/\\evil",
        "\\\\evil",
        "/%2F%2Fevil.com",
        "/%252F%252Fevil.com",
        "/%25%32%46x",
        "javascript:alert(1)",
        "https://evil/",
        "/a#f",
        "/a/../b",
        "/a/%2e%2e/b",
        "/a/..;x/b",
        "/\t/evil",
        "/x?next=//evil&u=%2F%5C",
    ];
    for (i, u) in urls.iter().enumerate() {
        write_seed("return_url", &i.to_string(), u);
    }

    let cookies = [
        "aisgate_session=abc; other=1",
        "aisgate_session=abc\naisgate_session=def; __Host-aisgate_login=\"x\"",
        "other=1;;; aisgate_session = v ;__Host-aisgate_login=a=b",
        "aisgate_session",
        "a=1; other=2; other=3\nother=4",
    ];
    for (i, c) in cookies.iter().enumerate() {
        write_seed("cookies", &i.to_string(), c);
    }

    let idp = SigningKey::from_pem(fixtures::IDP_KEY_PEM, fixtures::IDP_CERT_PEM).unwrap();
    let logout = r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_l1" Version="2.0" IssueInstant="2026-09-21T10:00:00Z"><saml:NameID xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">x</saml:NameID></samlp:LogoutRequest>"#;
    let signed =
        binding::redirect_url("https://gw/slo", MessageKind::Request, logout, Some("rs/1"), Some(&idp)).unwrap();
    let plain = binding::redirect_url("https://gw/slo", MessageKind::Response, logout, None, None).unwrap();
    write_seed("saml_binding", "redirect-signed", signed.split_once('?').unwrap().1);
    write_seed("saml_binding", "redirect-plain", plain.split_once('?').unwrap().1);
    write_seed("saml_binding", "post-plain", binding::base64(logout));
    write_seed("saml_binding", "post-deflated", binding::deflate_base64(logout));
    let deflated = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.decode(binding::deflate_base64(logout)).unwrap()
    };
    write_seed("saml_binding", "raw-deflate", deflated);

    let sp_cert = {
        use rustls_pki_types::pem::PemObject;
        rustls_pki_types::CertificateDer::from_pem_slice(fixtures::SP_CERT_PEM).unwrap().to_vec()
    };
    let encryptions = [
        ("plain", Encryption::None),
        ("cbc", Encryption::Aes256Cbc),
        ("cbc128", Encryption::Aes128Cbc),
        ("gcm", Encryption::Aes256Gcm),
        ("gcm-oaep11", Encryption::Aes256GcmOaep11Sha256),
        ("gcm-oaep11-nomgf", Encryption::Aes256GcmOaep11NoMgf),
    ];
    for (name, enc) in encryptions {
        let mut spec = ResponseSpec::nia(fuzzing::NOW, fuzzing::REQUEST_ID, fuzzing::ACS_URL, fuzzing::SP_ENTITY_ID);
        spec.encryption = enc;
        let xml = spec.build(&idp, &sp_cert).unwrap();
        // Both lengths: odd inputs require encryption (see `fuzzing::saml_acs`).
        write_seed("saml_acs", &format!("nia-{name}"), &xml);
        write_seed("saml_acs", &format!("nia-{name}-odd"), format!("{xml} "));
    }
    let mut spec = ResponseSpec::nia(fuzzing::NOW, fuzzing::REQUEST_ID, fuzzing::ACS_URL, fuzzing::SP_ENTITY_ID);
    spec.sign_response = false;
    spec.sign_assertion = true;
    spec.encryption = Encryption::None;
    write_seed("saml_acs", "assertion-signed", spec.build(&idp, &sp_cert).unwrap());
    spec.status = "urn:oasis:names:tc:SAML:2.0:status:Responder".to_owned();
    spec.sign_response = true;
    write_seed("saml_acs", "status-responder", spec.build(&idp, &sp_cert).unwrap());
    for vector in ["nia-2019-response.xml", "nia-2019-response.pretty.xml"] {
        write_seed("saml_acs", vector, std::fs::read(root.join("src/provider/saml/testdata").join(vector)).unwrap());
    }

    let claims = serde_json::json!({
        "iss": fuzzing::OIDC_ISSUER, "sub": "user-1", "aud": fuzzing::OIDC_CLIENT_ID,
        "exp": fuzzing::NOW + 300, "iat": fuzzing::NOW, "nbf": fuzzing::NOW, "nonce": fuzzing::OIDC_NONCE,
        "at_hash": aisgate::provider::oidc::jws::at_hash("access-token"),
    });
    let multi = serde_json::json!({
        "iss": fuzzing::OIDC_ISSUER, "sub": "user-1", "aud": [fuzzing::OIDC_CLIENT_ID, "other"],
        "azp": fuzzing::OIDC_CLIENT_ID, "exp": 1.79e9, "iat": fuzzing::NOW, "nonce": fuzzing::OIDC_NONCE,
    });
    write_seed("oidc_jws", "rs256", jws("RS256", "rsa1", &claims));
    write_seed("oidc_jws", "es256", jws("ES256", "ec1", &claims));
    write_seed("oidc_jws", "es256-multi-aud", jws("ES256", "ec1", &multi));
    write_seed("oidc_jws", "hs256", jws("HS256", "rsa1", &claims));
    write_seed("oidc_jws", "none", format!("{}.{}.", b64u(br#"{"alg":"none"}"#), b64u(claims.to_string().as_bytes())));
    write_seed("oidc_jws", "crit", format!("{}.{}.c2ln", b64u(br#"{"alg":"RS256","crit":["exp"]}"#), b64u(b"{}")));
    write_seed("oidc_jws", "jwks", fixtures::JWKS_JSON);

    let kaas = root.join("src/provider/kaas/testdata");
    for entry in std::fs::read_dir(&kaas).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "xml") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            write_seed("kaas_soap", &name, std::fs::read(&path).unwrap());
        }
    }
    write_seed("kaas_soap", "fault", aisgate::sim::kaas_soap::soap_fault_response("soap:Server", "x"));
    for version in soap::ServiceVersion::ALL {
        write_seed(
            "kaas_soap",
            &format!("request-{}", version.as_str()),
            soap::auth_confirmation_request(version, "T00-x"),
        );
    }
}

// === the seeds reach the deep end ===

/// The fuzzer starts from a login the ACS accepts, so mutations explore every check after the
/// signature and the decryption, not just the parser.
#[test]
fn the_acs_seeds_are_accepted_logins() {
    use aisgate::provider::saml::acs::process_response;
    use aisgate::provider::saml::xmlsec::{DecryptionKeys, IdpCertificates};
    use rustls_pki_types::pem::PemObject;
    let cert = rustls_pki_types::CertificateDer::from_pem_slice(fixtures::IDP_CERT_PEM).unwrap().to_vec();
    let certs = IdpCertificates::from_der(&[cert]).unwrap();
    let keys = DecryptionKeys::from_pem(&[fixtures::SP_KEY_PEM.to_vec()]).unwrap();
    for seed in ["seed-nia-cbc", "seed-nia-gcm-oaep11", "seed-nia-plain", "seed-assertion-signed"] {
        let xml = std::fs::read(corpus_dir("saml_acs").join(seed)).unwrap();
        let found = process_response(&xml, &certs, &keys, &fuzzing::acs_expectations());
        assert!(found.is_ok(), "{seed}: {:?}", found.err());
    }
}

/// Likewise the JWS seeds verify with the target's JWKS.
#[test]
fn the_jws_seeds_verify() {
    use aisgate::provider::oidc::jws::{parse_jwks, Jws};
    let keys = parse_jwks(fixtures::JWKS_JSON).unwrap();
    for seed in ["seed-rs256", "seed-es256"] {
        let token = std::fs::read_to_string(corpus_dir("oidc_jws").join(seed)).unwrap();
        assert_eq!(Jws::parse(&token, 16 * 1024).unwrap().verify(&keys), Ok(()), "{seed}");
    }
}
