//! API mode end to end (issue 11 items 1–4 and 6): requests that authenticate by
//! `Authorization: Bearer` (validated at the in-process OIDC simulator's userinfo/profile
//! endpoint) or `Authorization: SAML` (a Response of the SAML simulator's IdP, forwarded by a
//! calling application), through the real gateway to a header-echo upstream. Each refusal
//! asserts the status, the challenge or SOAP Fault, and the reason in the operator log.

mod support;

use std::time::Duration;

use aisgate::sim::stack::{OidcStackProvider, SamlStackProvider, StackOptions};
use serde_json::Value;
use support::forwarded_saml::{forwarded, idp_key, saml_ready, stranger_key};
use support::{header_echo, Gateway};

const APPS: &str = r#"
[[app]]
name = "svc"
path_prefix = "/svc/"
upstream = "{upstream}"
providers = ["enviam", "nia"]
public_paths = ["/svc/health"]
auth = ["bearer", "saml-header"]
[app.bearer]
provider = "enviam"
[app.saml_header]
provider = "nia"
max_header_bytes = 32768
[[app.saml_header.caller]]
entity_id = "https://crzp.example.cz/sp"
acs_urls = ["https://crzp.example.cz/acs"]

[[app]]
name = "strict"
path_prefix = "/strict/"
upstream = "{upstream}"
providers = ["enviam"]
auth = "bearer"
[app.bearer]
provider = "enviam"
allowed_clients = ["another-app"]

[[app]]
name = "local"
path_prefix = "/local/"
upstream = "{upstream}"
providers = ["enviam"]
auth = "bearer"
[app.bearer]
provider = "enviam"
local_jwt = true

[[app]]
name = "mixed"
path_prefix = "/mixed/"
upstream = "{upstream}"
providers = ["enviam"]
keep_authorization = true
[[app.api]]
path_prefix = "/mixed/api/"
auth = "bearer"
[app.bearer]
provider = "enviam"
"#;

async fn gateway() -> Gateway {
    gateway_with(APPS, vec![OidcStackProvider::enviam_like("enviam", "")], Some(SamlStackProvider::default())).await
}

async fn gateway_with(apps: &str, oidc: Vec<OidcStackProvider>, saml: Option<SamlStackProvider>) -> Gateway {
    support::logs::capture();
    Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        apps: Some(apps.to_owned()),
        oidc,
        saml,
        ..Default::default()
    })
    .await
}

/// Polls `done` (a peer's counter) until it holds, for at most 10 s.
async fn wait_until(done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn sim(gw: &Gateway) -> &aisgate::sim::oidc::OidcSim {
    &gw.oidc[0]
}

async fn get(gw: &Gateway, path: &str, authorization: Option<&str>) -> reqwest::Response {
    let mut req = gw.client.get(gw.url(path));
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    req.send().await.unwrap()
}

async fn echoed(resp: reqwest::Response) -> serde_json::Map<String, Value> {
    assert_eq!(resp.status(), 200, "reaches the upstream");
    let body: Value = resp.json().await.unwrap();
    body["headers"].as_object().cloned().unwrap()
}

async fn metrics(gw: &Gateway) -> String {
    gw.client.get(format!("http://{}/metrics", gw.ops)).send().await.unwrap().text().await.unwrap()
}

fn challenges(resp: &reqwest::Response) -> Vec<String> {
    resp.headers().get_all("www-authenticate").iter().map(|v| v.to_str().unwrap().to_owned()).collect()
}

// ---------------------------------------------------------------------------
// Bearer
// ---------------------------------------------------------------------------

/// A valid token: the upstream sees the user's identity headers and no `Authorization`; a
/// client's forged identity header is gone.
#[tokio::test]
async fn valid_bearer_reaches_upstream_with_identity_and_without_authorization() {
    let gw = gateway().await;
    let token = sim(&gw).issue_access_token(0);
    let resp = gw
        .client
        .get(gw.url("/svc/Service.svc"))
        .header("authorization", format!("Bearer {token}"))
        .header("x-auth-subject", "forged")
        .send()
        .await
        .unwrap();
    let id = support::logs::request_id(&resp);
    let h = echoed(resp).await;
    assert_eq!(h["x-auth-subject"], "123e4567-e89b-12d3-a456-426655440000");
    assert_eq!(h["x-auth-protocol"], "oidc");
    assert_eq!(h["x-auth-roles"], "A100,A101");
    assert!(!h.contains_key("authorization"), "{h:?}");
    let line = support::logs::line_with(&id, "api request authenticated");
    assert!(line.contains("scheme=\"bearer\"") || line.contains("scheme=bearer"), "{line}");
    assert!(!support::logs::text().contains(&token), "the token never reaches the log");
}

/// EnviIAM's `/oidc/profile` answers a signed JWT: verified with the JWKS, mapped the same.
#[tokio::test]
async fn profile_jwt_answer_is_verified_and_mapped() {
    let gw = gateway().await;
    sim(&gw).knobs().userinfo_jwt = true;
    let token = sim(&gw).issue_access_token(0);
    let h = echoed(get(&gw, "/svc/x", Some(&format!("Bearer {token}"))).await).await;
    assert_eq!(h["x-auth-subject"], "123e4567-e89b-12d3-a456-426655440000");
    assert_eq!(h["x-auth-loa"], "high");
}

/// An unknown (or revoked) token: 401 `invalid_token` with both challenges, the reason in
/// the log and the metric, never a redirect, even for a browser navigation.
#[tokio::test]
async fn unknown_token_is_401_invalid_token_with_reason() {
    let gw = gateway().await;
    let token = sim(&gw).issue_access_token(0);
    sim(&gw).revoke_access_token(&token);
    let resp = gw
        .client
        .get(gw.url("/svc/x"))
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("location").is_none());
    let c = challenges(&resp);
    assert!(
        c.iter().any(|c| c.starts_with("Bearer realm=\"svc\", error=\"invalid_token\", error_description=")),
        "{c:?}"
    );
    assert!(c.iter().any(|c| c == "SAML realm=\"svc\""), "{c:?}");
    let line = support::logs::line_with(&support::logs::request_id(&resp), "api credential refused");
    assert!(line.contains("access_token_refused"), "{line}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    assert!(metrics(&gw).await.contains(
        "aisgate_api_auth_total{app=\"svc\",scheme=\"bearer\",result=\"refused\",reason=\"access_token_refused\"} 1"
    ));
}

/// The profile answer says the token has expired: refused as expired.
#[tokio::test]
async fn expired_token_is_refused_as_expired() {
    let gw = gateway().await;
    sim(&gw).knobs().userinfo_exp = Some(aisgate::session::now_unix() - 600);
    let token = sim(&gw).issue_access_token(0);
    let resp = get(&gw, "/svc/x", Some(&format!("Bearer {token}"))).await;
    assert_eq!(resp.status(), 401);
    support::logs::assert_reason(&resp, "access_token_expired");
}

/// No credential: 401 with a challenge per accepted scheme and no error code (RFC 6750 §3.1);
/// an unaccepted scheme counts as none.
#[tokio::test]
async fn missing_credential_is_401_without_error_code() {
    let gw = gateway().await;
    for auth in [None, Some("Basic dXNlcjpwdw==")] {
        let resp = gw.client.get(gw.url("/svc/x")).header("accept", "text/html").send_with(auth).await;
        assert_eq!(resp.status(), 401, "{auth:?}");
        assert!(resp.headers().get("location").is_none());
        assert_eq!(challenges(&resp), ["Bearer realm=\"svc\"", "SAML realm=\"svc\""]);
        support::logs::assert_reason(&resp, "missing_credential");
    }
    assert_eq!(sim(&gw).knobs().userinfo_calls, 0);
}

trait SendWith {
    async fn send_with(self, authorization: Option<&str>) -> reqwest::Response;
}

impl SendWith for reqwest::RequestBuilder {
    async fn send_with(self, authorization: Option<&str>) -> reqwest::Response {
        match authorization {
            Some(a) => self.header("authorization", a),
            None => self,
        }
        .send()
        .await
        .unwrap()
    }
}

/// The profile endpoint is down: 503, not 401, logged as an outage; nothing goes upstream.
#[tokio::test]
async fn idp_down_is_503_not_401() {
    let gw = gateway().await;
    let token = sim(&gw).issue_access_token(0);
    sim(&gw).knobs().userinfo_outage = true;
    let resp = get(&gw, "/svc/x", Some(&format!("Bearer {token}"))).await;
    assert_eq!(resp.status(), 503);
    assert!(challenges(&resp).is_empty());
    let line = support::logs::line_with(&support::logs::request_id(&resp), "api credential validation unavailable");
    assert!(line.contains("ERROR") && line.contains("http_status"), "{line}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    // Back up: the same token works (an outage is never cached as a refusal).
    sim(&gw).knobs().userinfo_outage = false;
    echoed(get(&gw, "/svc/x", Some(&format!("Bearer {token}"))).await).await;
}

/// The provider's discovery document was never available: 503 as well, the token untouched.
#[tokio::test]
async fn provider_without_discovery_is_503() {
    let mut enviam = OidcStackProvider::enviam_like("enviam", "");
    enviam.sim.outage_at_start = true;
    let gw = gateway_with(APPS, vec![enviam], Some(SamlStackProvider::default())).await;
    let token = sim(&gw).issue_access_token(0);
    let resp = get(&gw, "/svc/x", Some(&format!("Bearer {token}"))).await;
    assert_eq!(resp.status(), 503);
    support::logs::assert_reason(&resp, "api credential validation unavailable");
    assert_eq!(sim(&gw).knobs().userinfo_calls, 0);
}

/// A cached token is not sent to the provider again until the cache TTL (300 s) ends.
#[tokio::test]
async fn cache_hit_avoids_a_second_profile_call() {
    let gw = gateway().await;
    let token = sim(&gw).issue_access_token(0);
    let bearer = format!("Bearer {token}");
    echoed(get(&gw, "/svc/a", Some(&bearer)).await).await;
    echoed(get(&gw, "/svc/b", Some(&bearer)).await).await;
    assert_eq!(sim(&gw).knobs().userinfo_calls, 1);
    let m = metrics(&gw).await;
    assert!(
        m.contains("aisgate_api_auth_total{app=\"svc\",scheme=\"bearer\",result=\"success\",reason=\"cache_hit\"} 1"),
        "{m}"
    );
    // A revocation is seen once the entry ends.
    sim(&gw).revoke_access_token(&token);
    gw.clock.advance(Duration::from_secs(301));
    assert_eq!(get(&gw, "/svc/c", Some(&bearer)).await.status(), 401);
    assert_eq!(sim(&gw).knobs().userinfo_calls, 2);
}

/// Concurrent requests with the same new token share one profile call (single flight).
#[tokio::test]
async fn concurrent_requests_with_a_new_token_make_one_profile_call() {
    let gw = gateway().await;
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    sim(&gw).knobs().userinfo_gate = Some(gate.clone());
    let bearer = format!("Bearer {}", sim(&gw).issue_access_token(0));
    let requests: Vec<_> = (0..8)
        .map(|i| {
            let req = gw.client.get(gw.url(&format!("/svc/{i}"))).header("authorization", bearer.clone());
            tokio::spawn(async move { req.send().await.unwrap().status() })
        })
        .collect();
    // The first call arrives; give the others time to reach the gateway and join it.
    wait_until(|| sim(&gw).knobs().userinfo_calls > 0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    gate.add_permits(100);
    for r in requests {
        assert_eq!(r.await.unwrap(), 200);
    }
    assert_eq!(sim(&gw).knobs().userinfo_calls, 1);
}

/// `allowed_clients`: a token issued to another calling application is refused.
#[tokio::test]
async fn token_of_a_client_not_allowed_is_refused() {
    let gw = gateway().await;
    let token = sim(&gw).issue_access_token(0);
    // The simulator's JSON answer names no client; its JWT answer names `isoh`.
    sim(&gw).knobs().userinfo_jwt = true;
    let resp = get(&gw, "/strict/x", Some(&format!("Bearer {token}"))).await;
    assert_eq!(resp.status(), 401);
    support::logs::assert_reason(&resp, "client_not_allowed");
}

/// `local_jwt`: a JWT access token that verifies with the JWKS skips the profile call; an
/// opaque token still makes it.
#[tokio::test]
async fn local_jwt_verification_skips_the_profile_call() {
    let gw = gateway().await;
    let jwt = sim(&gw).jwt_access_token(0, 300).unwrap();
    // The keys are loaded by the background refresh; the first request may still see none
    // and fall back to the profile endpoint. Wait for the JWKS.
    wait_until(|| sim(&gw).knobs().jwks_fetches > 0).await;
    let h = echoed(get(&gw, "/local/x", Some(&format!("Bearer {jwt}"))).await).await;
    assert_eq!(h["x-auth-subject"], "123e4567-e89b-12d3-a456-426655440000");
    assert_eq!(sim(&gw).knobs().userinfo_calls, 0);
    let opaque = sim(&gw).issue_access_token(0);
    echoed(get(&gw, "/local/y", Some(&format!("Bearer {opaque}"))).await).await;
    assert_eq!(sim(&gw).knobs().userinfo_calls, 1);
}

/// A mixed app: browser pages log in by redirect, the API path answers 401; the API path's
/// `keep_authorization` forwards the header.
#[tokio::test]
async fn mixed_app_uses_sessions_and_bearer_by_path() {
    let gw = gateway().await;
    let page = gw.navigate("/mixed/page", None).await;
    assert_eq!(page.status(), 302, "browser path starts a login");
    let api = gw.client.get(gw.url("/mixed/api/x")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(api.status(), 401);
    let bearer = format!("Bearer {}", sim(&gw).issue_access_token(0));
    let h = echoed(get(&gw, "/mixed/api/x", Some(&bearer)).await).await;
    assert_eq!(h["authorization"], bearer.as_str());
}

/// CAAIS: the access token is bound to the gateway's client certificate, and the simulated
/// userinfo endpoint sits on the mTLS host that answers only the registered certificate —
/// so a successful call proves the profile request used the provider's mTLS back channel.
#[tokio::test]
async fn caais_token_is_validated_over_the_mtls_back_channel() {
    let apps = r#"
[[app]]
name = "caais-api"
upstream = "{upstream}"
providers = ["caais"]
auth = "bearer"
[app.bearer]
provider = "caais"
"#;
    let gw = gateway_with(apps, vec![support::caais_provider("")], None).await;
    let token = gw.oidc[0].issue_access_token(0);
    let h = echoed(get(&gw, "/x", Some(&format!("Bearer {token}"))).await).await;
    assert_eq!(h["x-auth-subject"], "16b33670-a816-4c1a-8712-d99e9ff85fec");
    assert_eq!(h["x-auth-org-ico"], "00006947");
    assert_eq!(gw.oidc[0].knobs().userinfo_calls, 1);
}

// ---------------------------------------------------------------------------
// SOAP faults and metadata
// ---------------------------------------------------------------------------

/// (namespace, local name, text) of every element of a SOAP answer.
fn elements(xml: &str) -> Vec<(String, String, String)> {
    use quick_xml::events::Event;
    use quick_xml::name::ResolveResult;
    let mut reader = quick_xml::NsReader::from_str(xml);
    let mut out: Vec<(String, String, String)> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    loop {
        match reader.read_resolved_event().unwrap() {
            (ns, Event::Start(e)) => {
                let ns = match ns {
                    ResolveResult::Bound(n) => String::from_utf8(n.as_ref().to_vec()).unwrap(),
                    _ => String::new(),
                };
                out.push((ns, String::from_utf8(e.local_name().as_ref().to_vec()).unwrap(), String::new()));
                open.push(out.len() - 1);
            }
            (_, Event::Text(t)) => {
                if let Some(i) = open.last() {
                    out[*i].2.push_str(&t.decode().unwrap());
                }
            }
            (_, Event::End(_)) => {
                open.pop();
            }
            (_, Event::Eof) => break,
            _ => {}
        }
    }
    out
}

fn text_of<'a>(els: &'a [(String, String, String)], ns: &str, local: &str) -> &'a str {
    els.iter()
        .find(|(n, l, _)| n == ns && l == local)
        .map(|(_, _, t)| t.as_str())
        .unwrap_or_else(|| panic!("no {local} in {els:?}"))
}

const SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";

/// A SOAP 1.1 call without a credential: 401 with a SOAP 1.1 Fault (`soap:Client`).
#[tokio::test]
async fn soap11_failure_is_a_soap11_fault() {
    let gw = gateway().await;
    let resp = gw
        .client
        .post(gw.url("/svc/Service.svc"))
        .header("content-type", "text/xml; charset=utf-8")
        .header("soapaction", "\"urn:x/Op\"")
        .body("<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body/></s:Envelope>")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["content-type"], "text/xml; charset=utf-8");
    assert!(!challenges(&resp).is_empty());
    let els = elements(&resp.text().await.unwrap());
    assert_eq!(els[0].1, "Envelope");
    assert_eq!(els[0].0, SOAP11);
    assert_eq!(text_of(&els, "", "faultcode"), "soap:Client");
    assert!(text_of(&els, "", "faultstring").starts_with("Authentication required"));
}

/// A SOAP 1.2 call with a bad token: 401 with a SOAP 1.2 Fault (`soap:Sender`, Reason/Text);
/// the IdP down: 503 with `soap:Receiver`.
#[tokio::test]
async fn soap12_failures_are_soap12_faults() {
    let gw = gateway().await;
    let call = |bearer: String| {
        gw.client
            .post(gw.url("/svc/Service.svc"))
            .header("content-type", "application/soap+xml; charset=utf-8; action=\"urn:x/Op\"")
            .header("authorization", bearer)
            .body("<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body/></s:Envelope>")
            .send()
    };
    let resp = call("Bearer not-a-real-token".to_owned()).await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["content-type"], "application/soap+xml; charset=utf-8");
    let els = elements(&resp.text().await.unwrap());
    assert_eq!(text_of(&els, SOAP12, "Value"), "soap:Sender");
    assert!(text_of(&els, SOAP12, "Text").contains("access token is invalid"));
    sim(&gw).knobs().userinfo_outage = true;
    let token = sim(&gw).issue_access_token(0);
    let resp = call(format!("Bearer {token}")).await.unwrap();
    assert_eq!(resp.status(), 503);
    let els = elements(&resp.text().await.unwrap());
    assert_eq!(text_of(&els, SOAP12, "Value"), "soap:Receiver");
}

/// `?wsdl`, `?singleWsdl` and `?xsd=…` pass without a credential; look-alikes do not; public
/// paths pass as well.
#[tokio::test]
async fn wsdl_passes_without_authentication() {
    let gw = gateway().await;
    for q in ["wsdl", "singleWsdl", "xsd=xsd0", "WSDL"] {
        let resp = get(&gw, &format!("/svc/Service.svc?{q}"), None).await;
        assert_eq!(resp.status(), 200, "{q}");
        let body: Value = resp.json().await.unwrap();
        assert!(body["headers"].get("x-auth-subject").is_none());
    }
    for q in ["wsdlx", "a=wsdl", "wsdl&op=1", "xsd2"] {
        assert_eq!(get(&gw, &format!("/svc/Service.svc?{q}"), None).await.status(), 401, "{q}");
    }
    let post = gw.client.post(gw.url("/svc/Service.svc?wsdl")).send().await.unwrap();
    assert_eq!(post.status(), 401, "only GET/HEAD fetch metadata");
    // The app's public paths pass too, without the client's Authorization.
    let h = echoed(get(&gw, "/svc/health", Some("Bearer whatever")).await).await;
    assert!(!h.contains_key("authorization") && !h.contains_key("x-auth-subject"), "{h:?}");
    assert_eq!(sim(&gw).knobs().userinfo_calls, 0);
}

// ---------------------------------------------------------------------------
// SAML header
// ---------------------------------------------------------------------------

/// A valid forwarded Response: the user's identity upstream; re-used within its validity it
/// is served from the cache (no one-time replay check).
#[tokio::test]
async fn saml_header_valid_and_reusable() {
    let gw = gateway().await;
    saml_ready(&gw).await;
    let header = format!("SAML {}", forwarded(&gw, &idp_key(&gw), |_| {}));
    let h = echoed(get(&gw, "/svc/x", Some(&header)).await).await;
    assert_eq!(h["x-auth-protocol"], "saml2");
    assert!(h["x-auth-subject"].as_str().unwrap().contains("2e3883ee"), "{h:?}");
    assert!(!h.contains_key("authorization"));
    let again = get(&gw, "/svc/y", Some(&header)).await;
    let line = support::logs::line_with(&support::logs::request_id(&again), "api request authenticated");
    assert!(line.contains("cached=true"), "{line}");
    echoed(again).await;
}

/// Issued to an application that is not a configured caller: refused (audience).
#[tokio::test]
async fn saml_header_wrong_audience_is_refused() {
    let gw = gateway().await;
    saml_ready(&gw).await;
    let header =
        format!("SAML {}", forwarded(&gw, &idp_key(&gw), |s| s.audience = "https://other.example.cz/sp".into()));
    let resp = get(&gw, "/svc/x", Some(&header)).await;
    assert_eq!(resp.status(), 401);
    assert!(challenges(&resp).iter().any(|c| c.starts_with("SAML realm=\"svc\", error=")), "{:?}", challenges(&resp));
    support::logs::assert_reason(&resp, "audience");
}

/// Past `SubjectConfirmationData/@NotOnOrAfter` (15 s here, 5 s skew): refused, also when it
/// was cached while valid.
#[tokio::test]
async fn saml_header_expired_not_on_or_after_is_refused() {
    let gw = gateway().await;
    saml_ready(&gw).await;
    let header = format!("SAML {}", forwarded(&gw, &idp_key(&gw), |_| {}));
    echoed(get(&gw, "/svc/x", Some(&header)).await).await;
    gw.clock.advance(Duration::from_secs(25));
    let resp = get(&gw, "/svc/x", Some(&header)).await;
    assert_eq!(resp.status(), 401);
    support::logs::assert_reason(&resp, "subject_confirmation");
}

/// Addressed to another ACS than the caller's: refused (Destination/Recipient).
#[tokio::test]
async fn saml_header_wrong_recipient_is_refused() {
    let gw = gateway().await;
    saml_ready(&gw).await;
    let header = format!(
        "SAML {}",
        forwarded(&gw, &idp_key(&gw), |s| {
            s.destination = Some("https://other.example.cz/acs".into());
            s.recipient = "https://other.example.cz/acs".into();
        })
    );
    let resp = get(&gw, "/svc/x", Some(&header)).await;
    assert_eq!(resp.status(), 401);
    support::logs::assert_reason(&resp, "destination");
}

/// Signed by a key that is not the IdP's: refused (signature) — also when a genuine Response
/// with the same assertion ID is in the cache (the cache is keyed by the whole Response).
#[tokio::test]
async fn saml_header_bad_signature_is_refused() {
    let gw = gateway().await;
    saml_ready(&gw).await;
    let genuine = format!("SAML {}", forwarded(&gw, &idp_key(&gw), |_| {}));
    echoed(get(&gw, "/svc/x", Some(&genuine)).await).await;
    let resp = get(&gw, "/svc/x", Some(&format!("SAML {}", forwarded(&gw, &stranger_key(), |_| {})))).await;
    assert_eq!(resp.status(), 401);
    support::logs::assert_reason(&resp, "api credential refused");
    let line = support::logs::line_with(&support::logs::request_id(&resp), "api credential refused");
    assert!(line.contains("signature"), "{line}");
}

/// An oversized header is refused by size before any decoding.
#[tokio::test]
async fn saml_header_over_the_size_limit_is_refused() {
    let gw = gateway().await;
    let resp = get(&gw, "/svc/x", Some(&format!("SAML {}", "A".repeat(40 * 1024)))).await;
    assert_eq!(resp.status(), 401);
    support::logs::assert_reason(&resp, "saml_header_too_large");
}
