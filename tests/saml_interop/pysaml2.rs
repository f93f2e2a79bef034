//! aisgate's SP against pysaml2: metadata, AuthnRequests (Redirect and POST), logins through
//! the gateway, single logout; and refusals on both sides, so no check here can pass vacuously.

use crate::login::{self, assert_identity_headers, begin, field, posted_xml, Peer, ToIdp, BSI, ENTITY_ID, LOA_URI};
use crate::peers;
use crate::support::location;

fn decoded(b64: &str) -> String {
    use base64::Engine;
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap()
}

#[tokio::test]
async fn pysaml2_accepts_aisgate_sp_metadata() {
    let Some(s) = login::start(Peer::Pysaml2(&[]), "").await else { return };
    let md =
        peers::validate(s.python(), &["metadata".into(), "--sp-metadata".into(), s.sp_metadata.display().to_string()])
            .unwrap_or_else(|e| panic!("pysaml2 refused the SP metadata: {e}"));
    assert_eq!(md["entity_id"], ENTITY_ID);
    let acs = md["acs"].as_array().unwrap();
    assert!(
        acs.iter().any(|e| e["binding"] == "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
            && e["location"] == s.gw.url("/.aisgate/callback/nia")),
        "{md}"
    );
    let slo = md["slo"].as_array().unwrap();
    assert!(slo.iter().any(|e| e["location"] == s.gw.url("/.aisgate/saml/nia/slo")), "{md}");
    assert_eq!(md["signing_certs"], 1, "{md}");
    assert!(md["encryption_certs"].as_u64().unwrap() >= 1, "{md}");
    // `aisgate saml-metadata` prints the same document (the one operators upload), so pysaml2
    // accepts that too.
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_aisgate"))
        .args(["saml-metadata", "--provider", "nia", "--config"])
        .arg(s.gw.stack_dir.join("aisgate.toml"))
        .output()
        .unwrap();
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    assert_eq!(String::from_utf8(cli.stdout).unwrap(), std::fs::read_to_string(&s.sp_metadata).unwrap());
}

#[tokio::test]
async fn pysaml2_refuses_sp_metadata_without_an_acs() {
    let Some(s) = login::start(Peer::Pysaml2(&[]), "").await else { return };
    let xml = std::fs::read_to_string(&s.sp_metadata).unwrap();
    let start = xml.find("<md:AssertionConsumerService").expect("ACS element");
    let end = xml[start..].find("/>").unwrap() + start + 2;
    let broken = s.dir.path().join("broken-metadata.xml");
    std::fs::write(&broken, format!("{}{}", &xml[..start], &xml[end..])).unwrap();
    let refused =
        peers::validate(s.python(), &["metadata".into(), "--sp-metadata".into(), broken.display().to_string()]);
    assert!(refused.is_err(), "the schema requires an AssertionConsumerService: {refused:?}");
}

#[tokio::test]
async fn pysaml2_login_by_redirect_binding_reaches_the_upstream_with_identity_headers() {
    let Some(s) = login::start(Peer::Pysaml2(&[]), "sso_binding = \"redirect\"").await else { return };
    let (cookie, to_idp) = begin(&s.gw).await;
    let ToIdp::Redirect(_) = &to_idp else { panic!("HTTP-Redirect binding expected") };
    let checked = s.pysaml2_check(&to_idp).unwrap_or_else(|e| panic!("pysaml2 refused the AuthnRequest: {e}"));
    assert_eq!(checked["kind"], "AuthnRequest");
    assert_eq!(checked["issuer"], ENTITY_ID);
    assert_eq!(checked["redirect_signed"], true);
    assert_eq!(checked["acs_url"], s.gw.url("/.aisgate/callback/nia"));
    assert_eq!(checked["requested_authn_context"], serde_json::json!([LOA_URI]));
    // The eIDAS extensions are there, and passed pysaml2's eIDAS schema (validate.py).
    let extensions = checked["extensions"].to_string();
    assert!(extensions.contains("SPType") && extensions.contains("RequestedAttributes"), "{checked}");
    let (action, fields) = s.deliver(&to_idp).await;
    let done = s.post_to_acs(cookie.as_deref(), &action, &fields).await;
    assert!(matches!(done.status().as_u16(), 302 | 303), "ACS answered {}", done.status());
    let session = crate::support::set_cookie(&done, "aisgate_session").expect("session cookie");
    let (status, echo) = s.desk(&format!("aisgate_session={session}")).await;
    assert_eq!(status, 200);
    assert_identity_headers(&echo);
    let seen = s.pysaml().last("authn_request").await;
    assert_eq!(seen["redirect_signed"], true, "{seen}");
}

#[tokio::test]
async fn pysaml2_login_by_post_binding_reaches_the_upstream_with_identity_headers() {
    let Some(s) = login::start(Peer::Pysaml2(&[]), "sso_binding = \"post\"").await else { return };
    let (cookie, to_idp) = begin(&s.gw).await;
    let ToIdp::Post(action, fields) = &to_idp else { panic!("HTTP-POST binding expected") };
    assert_eq!(action, &format!("{}/sso/post", s.pysaml().base));
    let checked = s.pysaml2_check(&to_idp).unwrap_or_else(|e| panic!("pysaml2 refused the AuthnRequest: {e}"));
    assert_eq!(checked["xml_signed"], true, "{checked}");
    // Debian's xmlsec1 verifies aisgate's enveloped signature too.
    let xmlsec1 = peers::xmlsec1().expect("pysaml2 runs xmlsec1");
    crate::xmlsec1::verify(
        &xmlsec1,
        s.dir.path(),
        &posted_xml(fields),
        "urn:oasis:names:tc:SAML:2.0:protocol:AuthnRequest",
        &s.sp_signing.cert,
    )
    .unwrap_or_else(|e| panic!("xmlsec1 refused aisgate's signed AuthnRequest: {e}"));
    let (acs, response) = s.deliver(&to_idp).await;
    let done = s.post_to_acs(cookie.as_deref(), &acs, &response).await;
    assert!(matches!(done.status().as_u16(), 302 | 303), "ACS answered {}", done.status());
    let session = crate::support::set_cookie(&done, "aisgate_session").expect("session cookie");
    let (status, echo) = s.desk(&format!("aisgate_session={session}")).await;
    assert_eq!(status, 200);
    assert_identity_headers(&echo);
}

#[tokio::test]
async fn pysaml2_refuses_an_authn_request_whose_redirect_signature_was_altered() {
    let Some(s) = login::start(Peer::Pysaml2(&[]), "sso_binding = \"redirect\"").await else { return };
    let (_, to_idp) = begin(&s.gw).await;
    let ToIdp::Redirect(url) = to_idp else { panic!("HTTP-Redirect binding expected") };
    let at = url.find("&Signature=").expect("signed query") + "&Signature=".len();
    let flipped = if &url[at..at + 1] == "A" { "B" } else { "A" };
    let altered = ToIdp::Redirect(format!("{}{flipped}{}", &url[..at], &url[at + 1..]));
    assert!(s.pysaml2_check(&altered).is_err(), "an altered signature must not verify");
}

#[tokio::test]
async fn pysaml2_single_logout_round_trip_ends_the_session() {
    let Some(s) = login::start(Peer::Pysaml2(&[]), "").await else { return };
    let session = s.login().await;
    let logout = s.gw.navigate("/.aisgate/logout", Some(&session)).await;
    assert!(matches!(logout.status().as_u16(), 302 | 303), "logout answered {}", logout.status());
    let to_idp = ToIdp::Redirect(location(&logout));
    let checked = s.pysaml2_check(&to_idp).unwrap_or_else(|e| panic!("pysaml2 refused the LogoutRequest: {e}"));
    assert_eq!(checked["kind"], "LogoutRequest");
    assert_eq!(checked["name_id"], BSI);
    assert_eq!(checked["name_id_format"], "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent");
    assert_eq!(checked["redirect_signed"], true);
    let ToIdp::Redirect(url) = &to_idp else { unreachable!() };
    let idp_answer = s.to_idp(s.gw.client.get(url)).await;
    assert_eq!(idp_answer.status(), 302, "pysaml2 answers with a LogoutResponse by Redirect");
    let back = location(&idp_answer);
    assert!(back.starts_with(&s.gw.url("/.aisgate/saml/nia/slo?SAMLResponse=")), "{back}");
    let seen = s.pysaml().last("logout_request").await;
    assert_eq!(seen["matched"], true, "NameID and SessionIndex name the login pysaml2 issued: {seen}");
    let done = s.gw.navigate(back.trim_start_matches(&s.gw.base), Some(&session)).await;
    assert!(matches!(done.status().as_u16(), 302 | 303), "LogoutResponse refused: {}", done.status());
    let (status, _) = s.desk(&session).await;
    assert_ne!(status, 200, "the session is gone");
}

/// pysaml2's own default data encryption (tripledes-cbc) is outside aisgate's allow-list.
#[tokio::test]
async fn pysaml2_tripledes_response_is_refused_by_the_acs() {
    let Some(s) = login::start(Peer::Pysaml2(&["--data-encryption", "tripledes-cbc"]), "").await else { return };
    let (cookie, to_idp) = begin(&s.gw).await;
    let (action, fields) = s.deliver(&to_idp).await;
    let xml = decoded(field(&fields, "SAMLResponse"));
    assert!(xml.contains("http://www.w3.org/2001/04/xmlenc#tripledes-cbc"), "pysaml2 used 3DES");
    let done = s.post_to_acs(cookie.as_deref(), &action, &fields).await;
    assert!(crate::support::set_cookie(&done, "aisgate_session").is_none(), "no session from a 3DES response");
    assert!(!matches!(done.status().as_u16(), 302 | 303), "refused: {}", done.status());
    assert_eq!(s.rejected().await, 1);
}

#[tokio::test]
async fn pysaml2_response_with_a_plain_assertion_is_refused_by_the_acs() {
    let Some(s) = login::start(Peer::Pysaml2(&["--data-encryption", "none"]), "").await else { return };
    let (cookie, to_idp) = begin(&s.gw).await;
    let (action, fields) = s.deliver(&to_idp).await;
    let xml = decoded(field(&fields, "SAMLResponse"));
    assert!(xml.contains(":Assertion ") && !xml.contains("EncryptedAssertion"), "pysaml2 sent a plain Assertion");
    let done = s.post_to_acs(cookie.as_deref(), &action, &fields).await;
    assert!(crate::support::set_cookie(&done, "aisgate_session").is_none(), "NIA assertions must be encrypted");
    assert_eq!(s.rejected().await, 1);
}

/// Many IdPs sign only the Response (NIA signs the Assertion too): the Response signature
/// covers the encrypted Assertion, so that is enough (nia.md §18.1).
#[tokio::test]
async fn pysaml2_response_with_only_the_response_signed_is_accepted() {
    let Some(s) = login::start(Peer::Pysaml2(&["--unsigned-assertion"]), "").await else { return };
    let session = s.login().await;
    let (status, echo) = s.desk(&session).await;
    assert_eq!(status, 200);
    assert_identity_headers(&echo);
}

#[tokio::test]
async fn pysaml2_aes256_gcm_response_is_accepted() {
    let Some(s) = login::start(Peer::Pysaml2(&["--data-encryption", "aes256-gcm"]), "").await else { return };
    let (cookie, to_idp) = begin(&s.gw).await;
    let (action, fields) = s.deliver(&to_idp).await;
    assert!(decoded(field(&fields, "SAMLResponse")).contains("http://www.w3.org/2009/xmlenc11#aes256-gcm"));
    let done = s.post_to_acs(cookie.as_deref(), &action, &fields).await;
    let session = crate::support::set_cookie(&done, "aisgate_session").expect("session cookie");
    let (status, echo) = s.desk(&format!("aisgate_session={session}")).await;
    assert_eq!(status, 200);
    assert_identity_headers(&echo);
}
