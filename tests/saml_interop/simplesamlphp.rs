//! aisgate's SP against SimpleSAMLphp 1.19 (Debian) as the IdP: it checks the AuthnRequest's
//! signature over the exact query bytes (Redirect) or the enveloped one (POST), answers with a
//! signed Response whose Assertion it encrypts (aes128-cbc, rsa-oaep-mgf1p) to the certificate
//! from aisgate's metadata, and ends its session on aisgate's signed LogoutRequest.

use crate::login::{self, assert_identity_headers, begin, Peer, ToIdp};
use crate::support::{location, set_cookie};

async fn login_with(binding: &str) {
    let Some(s) = login::start(Peer::SimpleSamlPhp, &format!("sso_binding = \"{binding}\"")).await else { return };
    let (cookie, to_idp) = begin(&s.gw).await;
    let sso = format!("{}/saml2/idp/SSOService.php", s.idp_base());
    match (&to_idp, binding) {
        (ToIdp::Redirect(url), "redirect") => assert!(url.starts_with(&sso) && url.contains("&Signature="), "{url}"),
        (ToIdp::Post(action, _), "post") => assert_eq!(action, &sso),
        _ => panic!("the AuthnRequest did not use the {binding} binding"),
    }
    let (action, fields) = s.deliver(&to_idp).await;
    assert_eq!(action, s.gw.url("/.aisgate/callback/nia"));
    let done = s.post_to_acs(cookie.as_deref(), &action, &fields).await;
    assert!(matches!(done.status().as_u16(), 302 | 303), "ACS answered {}", done.status());
    let session = set_cookie(&done, "aisgate_session").expect("session cookie");
    let (status, echo) = s.desk(&format!("aisgate_session={session}")).await;
    assert_eq!(status, 200);
    assert_identity_headers(&echo);
}

#[tokio::test]
async fn simplesamlphp_login_by_redirect_binding_reaches_the_upstream_with_identity_headers() {
    login_with("redirect").await;
}

#[tokio::test]
async fn simplesamlphp_login_by_post_binding_reaches_the_upstream_with_identity_headers() {
    login_with("post").await;
}

#[tokio::test]
async fn simplesamlphp_refuses_an_authn_request_whose_redirect_signature_was_altered() {
    let Some(s) = login::start(Peer::SimpleSamlPhp, "sso_binding = \"redirect\"").await else { return };
    let (_, to_idp) = begin(&s.gw).await;
    let ToIdp::Redirect(url) = to_idp else { panic!("HTTP-Redirect binding expected") };
    let at = url.find("&Signature=").expect("signed query") + "&Signature=".len();
    let flipped = if &url[at..at + 1] == "A" { "B" } else { "A" };
    let altered = format!("{}{flipped}{}", &url[..at], &url[at + 1..]);
    let answer = s.to_idp(s.gw.client.get(&altered)).await;
    let status = answer.status();
    let page = answer.text().await.unwrap();
    assert!(!page.contains("SAMLResponse"), "SimpleSAMLphp answered an altered request ({status})");
}

#[tokio::test]
async fn simplesamlphp_single_logout_round_trip_ends_the_session() {
    let Some(s) = login::start(Peer::SimpleSamlPhp, "").await else { return };
    let session = s.login().await;
    let logout = s.gw.navigate("/.aisgate/logout", Some(&session)).await;
    assert!(matches!(logout.status().as_u16(), 302 | 303), "logout answered {}", logout.status());
    // SimpleSAMLphp redirects to itself (resumelogout.php) before answering.
    let mut next = location(&logout);
    while next.starts_with(s.idp_base()) {
        let idp_answer = s.to_idp(s.gw.client.get(&next)).await;
        let status = idp_answer.status().as_u16();
        assert!(matches!(status, 302 | 303), "SimpleSAMLphp answered {status}: {}", idp_answer.text().await.unwrap());
        next = location(&idp_answer);
    }
    let back = next;
    assert!(back.starts_with(&s.gw.url("/.aisgate/saml/nia/slo?SAMLResponse=")), "{back}");
    let done = s.gw.navigate(back.trim_start_matches(&s.gw.base), Some(&session)).await;
    assert!(matches!(done.status().as_u16(), 302 | 303), "LogoutResponse refused: {}", done.status());
    let (status, _) = s.desk(&session).await;
    assert_ne!(status, 200, "the session is gone");
}
