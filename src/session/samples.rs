//! Realistic sessions of each protocol, for the session-size tests and the session-memory
//! benchmark (`examples/session_memory.rs`, `bench/sessions.sh`).
//!
//! Each is what a login of the simulated IdP's demo user produces, built by the providers'
//! own mapping code (not a hand-made [`Identity`]): a JIP/KAAS official with roles and an
//! organisation, a NIA citizen with address and date of birth (SAML), and a CAAIS official
//! over OpenID Connect with the ID token kept for logout. Raw attributes are pruned as the
//! gateway prunes them ([`super::kept`]) for the attribute mappings of
//! `config/aisgate.example.toml` ([`MAPPED`]); so are the CAAIS login's access and refresh
//! tokens: `caais` is a session where no app has `upstream_bearer` (the example
//! configuration), `caais-bearer` one where an app forwards the access token, which keeps
//! them (an RS256 JWT access token of CAAIS's shape and a 128-character refresh token).

use serde_json::{json, Value};

use super::tokens::UpstreamTokens;
use super::Session;
use crate::provider::saml::acs::{SamlAssertion, SamlAttribute};
use crate::provider::saml::attributes::{MappingOptions, Profile};
use crate::provider::saml::logout::LogoutSubject;
use crate::provider::LogoutState;

/// The raw attributes the example configuration's header mappings read.
pub const MAPPED: [&str; 3] = ["Pracoviste.Id", "Pracoviste.Nazev", "TimeLimitedId"];

/// The protocols of [`sample`] (`caais-bearer`: CAAIS with an `upstream_bearer` app).
pub const PROTOCOLS: [&str; 4] = ["kaas", "nia", "caais", "caais-bearer"];

/// A new session of `protocol` (one of [`PROTOCOLS`]) for user number `n`: the demo user's
/// attributes with per-user ids (subject, IdP session id, tokens) derived from `n`, created
/// at `now` with a one-hour absolute timeout. `None` for an unknown protocol.
pub fn sample(protocol: &str, n: u64, now: u64) -> Option<Session> {
    let uuid = |salt: u64| {
        let x = n.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(salt);
        format!("{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}", x >> 32, x & 0xffff, n & 0xfff, salt & 0xfff, x >> 16)
    };
    let (mut identity, logout, tokens) = match protocol {
        "kaas" => {
            let mut user = crate::sim::kaas::demo_users().into_iter().next()?.attributes;
            user.user_id = Some(uuid(1));
            let identity = crate::provider::kaas::identity::to_identity(
                "jip",
                crate::provider::kaas::soap::ServiceVersion::V4_2,
                user,
            )
            .ok()?;
            (identity, LogoutState::None, None)
        }
        "nia" => {
            let spec = crate::sim::saml_response::ResponseSpec::nia(
                now,
                "_req",
                "https://gw.example.cz/.aisgate/acs",
                "https://gw.example.cz",
            );
            let bsi = format!("CZ/CZ/{}", uuid(2));
            let attributes = spec
                .attributes
                .iter()
                .map(|(name, friendly, values)| SamlAttribute {
                    name: name.clone(),
                    friendly_name: Some(friendly.clone()),
                    values: if friendly == "PersonIdentifier" { vec![bsi.clone()] } else { values.clone() },
                })
                .collect();
            let assertion = SamlAssertion {
                id: format!("_a{n:x}"),
                issuer: spec.assertion_issuer.clone(),
                name_id: bsi.clone(),
                name_id_format: Some("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent".into()),
                name_qualifier: None,
                sp_name_qualifier: None,
                session_index: Some(format!("_{}", uuid(3))),
                authn_instant: Some(now),
                session_not_on_or_after: None,
                authn_context: Some(spec.authn_context.clone()),
                not_on_or_after: now + 300,
                audiences: vec![spec.audience.clone()],
                attributes,
            };
            let identity = crate::provider::saml::attributes::to_identity(
                Profile::Nia,
                "nia",
                &assertion,
                &MappingOptions::default(),
                now,
            )
            .ok()?;
            let logout = LogoutState::Saml(Box::new(LogoutSubject {
                name_id: assertion.name_id,
                format: assertion.name_id_format,
                name_qualifier: None,
                sp_name_qualifier: None,
                session_index: assertion.session_index,
            }));
            (identity, logout, None)
        }
        "caais" | "caais-bearer" => {
            let mut claims = crate::sim::oidc::caais_user();
            let access_token = access_token(n, &uuid(5), &uuid(4), now);
            for (k, v) in [
                ("sub", json!(uuid(5))),
                ("iss", json!("https://caais.example.gov.cz/")),
                ("aud", json!("MY_AIS")),
                ("azp", json!("MY_AIS")),
                ("iat", json!(now)),
                ("nbf", json!(now)),
                ("exp", json!(now + 1800)),
                ("auth_time", json!(now)),
                ("jti", json!(uuid(6))),
                ("sid", json!(uuid(7))),
                ("nonce", json!(uuid(8))),
                ("at_hash", json!(crate::provider::oidc::jws::at_hash(&access_token))),
            ] {
                claims.insert(k.to_owned(), v);
            }
            let identity = crate::provider::oidc::identity::to_identity("caais", &claims, None, now);
            // An RS256 ID token of these claims: header, payload and a 2048-bit signature
            // (per-user bytes that look random, as a real signature does: they do not compress).
            let id_token = format!(
                "{}.{}.{}",
                b64(br#"{"alg":"RS256","typ":"JWT"}"#),
                b64(Value::Object(claims).to_string().as_bytes()),
                b64(&signature(n))
            );
            let logout =
                LogoutState::Oidc(Box::new(crate::provider::oidc::LogoutHint::new(id_token, "MY_AIS".to_owned())));
            let tokens = UpstreamTokens {
                access_token,
                issued_at: now,
                expires_at: now + 300,
                refresh_token: Some(refresh_token(n)),
                client_loa: None,
            };
            (identity, logout, Some(tokens))
        }
        _ => return None,
    };
    super::kept::KeptAttributes::new(MAPPED).prune(&mut identity);
    let bearer_providers: &[&str] = if protocol == "caais-bearer" { &["caais"] } else { &[] };
    let tokens = super::kept::KeptTokens::new(bearer_providers.iter().copied()).keep(&identity.provider, tokens);
    let app = Some(super::names::intern("portal"));
    Some(Session::new(identity, logout, 3600, now).with_tokens(tokens).with_app(app))
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A CAAIS access token of user `n` (`sub`, `jti` given): an RS256 JWT with the claims of
/// caais.md §1.6's example (`client_cert_sha256`, `scope` as an array), ~0.75 KB of text.
fn access_token(n: u64, sub: &str, jti: &str, now: u64) -> String {
    let claims = json!({"aud": "MY_AIS", "client_cert_sha256": "mjYyDk3-82pKEHzOwwqVUD8dzdziNwDhSOfG0dpX-u0",
        "exp": now + 300, "iat": now, "iss": "https://rest-openidconnectapi.caais-test-ext.gov.cz/", "jti": jti,
        "nbf": now, "scope": ["openid", "profile"], "sub": sub});
    let signature = signature(n.wrapping_add(0x5151));
    let mut token =
        format!("{}.{}.{}", b64(br#"{"alg":"RS256"}"#), b64(claims.to_string().as_bytes()), b64(&signature));
    // Exact, as a token read from the token endpoint's JSON is (no spare capacity).
    token.shrink_to_fit();
    token
}

/// An opaque refresh token of user `n`: 128 base64url characters, as in caais.md §1.6.
fn refresh_token(n: u64) -> String {
    let mut token = b64(&signature(n.wrapping_add(0x7272)));
    token.truncate(128);
    token.shrink_to_fit();
    token
}

/// 256 bytes standing in for user `n`'s RS256 signature: a xorshift stream, as incompressible
/// as a real signature.
fn signature(n: u64) -> Vec<u8> {
    let mut x = n.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
    (0..256)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
