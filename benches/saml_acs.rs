//! ACS throughput: `process_response` (parse, verify the Response signature, decrypt the
//! EncryptedAssertion, parse and check the Assertion) on an NIA-shaped Response (RSA-2048,
//! aes256-cbc + rsa-oaep-mgf1p), against `bergshamra::decrypt` of the same EncryptedData alone
//! (the "before": it re-imports the PKCS#8 key on every call).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use aisgate::identity::Loa;
use aisgate::provider::saml::acs::{process_response, Expectations, LoaComparison};
use aisgate::provider::saml::xmlsec::{DecryptionKeys, IdpCertificates, SigningKey};
use aisgate::sim::certs::rsa_identity;
use aisgate::sim::saml_response::{Encryption, ResponseSpec};
use criterion::{criterion_group, criterion_main, Criterion};

const ACS: &str = "https://gw.example.cz/.aisgate/saml/acs";
const SP: &str = "https://gw.example.cz/";
const NOW: u64 = 1_790_000_000;

fn bench(c: &mut Criterion) {
    let idp = rsa_identity("idp").unwrap();
    let sp = rsa_identity("sp").unwrap();
    let signer = SigningKey::from_pem(idp.key_pem.as_bytes(), idp.cert_pem.as_bytes()).unwrap();
    let certs = IdpCertificates::from_der(std::slice::from_ref(&idp.cert_der)).unwrap();
    let keys = DecryptionKeys::from_pem(&[sp.key_pem.clone().into_bytes()]).unwrap();
    let expect = Expectations {
        idp_entity_id: "urn:microsoft:cgg2010:fpsts",
        issuer_case_insensitive: true,
        sp_entity_id: SP,
        audience_ignores_trailing_slash: true,
        acs_url: ACS,
        request_id: Some("_req1"),
        requested_loa: Some((Loa::Substantial, LoaComparison::Minimum)),
        clock_skew: Duration::from_secs(180),
        now: NOW,
        require_encrypted_assertion: true,
        callers: &[],
    };
    let mut group = c.benchmark_group("saml_acs");
    for (name, enc) in
        [("nia_cbc_oaep_sha1", Encryption::Aes256Cbc), ("gcm_oaep11_sha256", Encryption::Aes256GcmOaep11Sha256)]
    {
        let mut spec = ResponseSpec::nia(NOW, "_req1", ACS, SP);
        spec.encryption = enc;
        let xml = spec.build(&signer, &sp.cert_der).unwrap();
        process_response(xml.as_bytes(), &certs, &keys, &expect).unwrap();
        group.bench_function(format!("process_response/{name}"), |b| {
            b.iter(|| process_response(std::hint::black_box(xml.as_bytes()), &certs, &keys, &expect).unwrap())
        });
    }

    // Baseline: bergshamra's own decrypt of just the EncryptedData of the NIA-shaped Response.
    let xml = ResponseSpec::nia(NOW, "_req1", ACS, SP).build(&signer, &sp.cert_der).unwrap();
    let start = xml.find("<xenc:EncryptedData").unwrap();
    let end = xml.find("</xenc:EncryptedData>").unwrap() + "</xenc:EncryptedData>".len();
    let encrypted_data = &xml[start..end];
    let mut km = bergshamra::KeysManager::new();
    km.add_key(bergshamra::keys::loader::load_pem_auto(sp.key_pem.as_bytes(), None).unwrap());
    let ctx = bergshamra::EncContext::new(km).with_disable_cipher_reference(true);
    bergshamra::decrypt(&ctx, encrypted_data).unwrap();
    group.bench_function("bergshamra_decrypt_only/nia_cbc_oaep_sha1", |b| {
        b.iter(|| bergshamra::decrypt(&ctx, std::hint::black_box(encrypted_data)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
