//! The JIP/KAAS login through the whole gateway: a browser-like client (no redirect
//! following) against a real gateway and the simulated IdP over real mutual TLS.
//!
//! Every status path of `authConfirmation` (kaas.md §18.3), hostile and broken SOAP answers,
//! each service version, the token's binding and single use, the mTLS refusal, and logout.
//! Every SOAP request the gateway sends in these tests is validated against the WSDL's XSD
//! with `xmllint` (skipped without it, unless `AISGATE_REQUIRE_PEERS` is set).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use aisgate::provider::kaas::soap::{self, AuthStatus, ServiceVersion};
use aisgate::sim::kaas_soap::{self as sim_soap, KaasRequest, ResponseStyle};
use aisgate::sim::stack::StackOptions;
use support::{header_echo, location, set_cookie, Gateway};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

async fn gateway(opts: StackOptions) -> Gateway {
    Gateway::start(StackOptions { upstream: Some(header_echo().await), ..opts }).await
}

/// Waits until the provider's first heartBeat has been recorded and returns `/readyz`.
async fn readiness(gw: &Gateway) -> (u16, serde_json::Value) {
    let url = format!("http://{}/readyz", gw.ops);
    for _ in 0..100 {
        let resp = gw.client.get(&url).send().await.unwrap();
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.unwrap();
        if body["providers"]["jip"]["detail"] != "no heartBeat yet" {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no heartBeat within 5 s");
}

/// The `authConfirmation` requests the simulator received so far (heartBeats left out).
fn auth_calls(gw: &Gateway) -> Vec<String> {
    gw.sim.calls.lock().unwrap().iter().filter(|c| c.contains("authConfirmationRequest")).cloned().collect()
}

fn set_override(gw: &Gateway, statuses: Vec<AuthStatus>, raw: Option<(u16, String)>) {
    let mut o = gw.sim.overrides.lock().unwrap();
    o.next_statuses = statuses;
    o.next_raw_body = raw;
}

/// Delivers the IdP's redirect back, as the browser would.
async fn callback(gw: &Gateway, url: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut req = gw.client.get(url).header("accept", "text/html");
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    req.send().await.unwrap()
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The gateway's own error page: status, Czech, no session created, no token echoed.
async fn assert_error_page(resp: reqwest::Response, status: u16, title: &str, label: &str) -> String {
    assert_eq!(resp.status().as_u16(), status, "{label}");
    assert!(set_cookie(&resp, "aisgate_session").is_none(), "{label}: no session on failure");
    assert_eq!(header(&resp, "referrer-policy"), Some("no-referrer"), "{label}");
    assert!(header(&resp, "content-type").unwrap_or("").starts_with("text/html"), "{label}");
    let page = resp.text().await.unwrap();
    assert!(page.contains("lang=\"cs\""), "{label}: Czech page\n{page}");
    assert!(page.contains(title), "{label}: {title:?} missing\n{page}");
    assert!(!page.contains("sessionId"), "{label}: the token is not echoed");
    page
}

const LOGIN_FAILED: &str = "Přihlášení se nezdařilo";
const UNAVAILABLE: &str = "Přihlašovací služba je dočasně nedostupná";
const NOT_INITIATED: &str = "Přihlášení nelze dokončit";

/// Asserts the browser still has no session: a navigation goes to the IdP again.
async fn assert_no_session(gw: &Gateway, label: &str) {
    assert_eq!(gw.navigate("/desk", None).await.status(), 302, "{label}");
}

/// A full successful login of demo user 0 after the failures a test provoked.
async fn assert_gateway_still_logs_in(gw: &Gateway) {
    let (cookie, target) = gw.login_to("/after", 0).await;
    assert_eq!(target, "/after");
    let resp = gw.client.get(gw.url("/after")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

/// The value of one series on `/metrics` (0 when absent).
async fn metric(gw: &Gateway, series: &str) -> u64 {
    let text = gw.client.get(format!("http://{}/metrics", gw.ops)).send().await.unwrap().text().await.unwrap();
    let prefix = format!("{series} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).map_or(0, |v| v.parse().unwrap())
}

fn session_id_of(callback_url: &str) -> String {
    let url = url::Url::parse(callback_url).unwrap();
    url.query_pairs().find(|(k, _)| k == "sessionId").map(|(_, v)| v.into_owned()).unwrap()
}

// ---------------------------------------------------------------------------
// XSD validation of what the gateway sent
// ---------------------------------------------------------------------------

fn xsd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/provider/kaas/testdata/xsd")
}

/// Whether `xmllint` can run; without it the XSD checks are skipped, unless
/// `AISGATE_REQUIRE_PEERS` is set (`tools/test`), where a skip is a failure.
fn xmllint_available() -> bool {
    if Command::new("xmllint").arg("--version").output().is_ok_and(|o| o.status.success()) {
        return true;
    }
    assert!(std::env::var_os("AISGATE_REQUIRE_PEERS").is_none(), "xmllint is required (apt-get install libxml2-utils)");
    eprintln!("skipping XSD validation: xmllint not found (apt-get install libxml2-utils)");
    false
}

/// The first element child of `Envelope/Body` as a standalone document (the approach of
/// `soap/tests.rs`: the gateway declares the payload namespace on the payload element).
fn extract_body_child(envelope: &str) -> String {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(envelope);
    let mut depth = 0usize;
    let mut start: Option<usize> = None;
    loop {
        let before = usize::try_from(reader.buffer_position()).unwrap();
        match reader.read_event() {
            Ok(Event::Start(_)) => {
                if depth == 2 && start.is_none() {
                    start = Some(before);
                }
                depth += 1;
            }
            Ok(Event::Empty(_)) if depth == 2 && start.is_none() => {
                let end = usize::try_from(reader.buffer_position()).unwrap();
                return format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}\n", &envelope[before..end]);
            }
            Ok(Event::End(_)) => {
                depth -= 1;
                if let (2, Some(from)) = (depth, start) {
                    let end = usize::try_from(reader.buffer_position()).unwrap();
                    return format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}\n", &envelope[from..end]);
                }
            }
            Ok(Event::Eof) => panic!("no body child in {envelope}"),
            Ok(_) => {}
            Err(e) => panic!("{e}: {envelope}"),
        }
    }
}

/// Validates one request envelope against the XSD of the version its namespace names.
fn validate_request(envelope: &str, dir: &Path, n: usize) -> Result<(), String> {
    let version = match sim_soap::parse_request(envelope.as_bytes()) {
        Ok(KaasRequest::HeartBeat { version }) | Ok(KaasRequest::AuthConfirmation { version, .. }) => version,
        other => return Err(format!("not an auth-WS request ({other:?}):\n{envelope}")),
    };
    let doc = dir.join(format!("request-{n}.xml"));
    std::fs::write(&doc, extract_body_child(envelope)).unwrap();
    let schema = xsd_dir().join(format!("GetCredential_{version}.xsd"));
    let out = Command::new("xmllint").arg("--noout").arg("--schema").arg(&schema).arg(&doc).output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}\n{envelope}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// Every SOAP request the gateway sent to the simulator validates against its version's XSD.
fn assert_requests_valid(gw: &Gateway) {
    if !xmllint_available() {
        return;
    }
    let calls = gw.sim.calls.lock().unwrap().clone();
    assert!(!calls.is_empty(), "the gateway sent no SOAP request");
    let dir = gw.stack_dir.join("xsd-check");
    std::fs::create_dir_all(&dir).unwrap();
    let failures: Vec<String> =
        calls.iter().enumerate().filter_map(|(n, call)| validate_request(call, &dir, n).err()).collect();
    assert!(failures.is_empty(), "{} of {} requests invalid:\n{}", failures.len(), calls.len(), failures.join("\n\n"));
}

#[test]
fn the_xsd_check_rejects_invalid_requests() {
    // Negative control: the validation above cannot pass vacuously.
    if !xmllint_available() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("aisgate-kaas-xsd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let valid = soap::auth_confirmation_request(ServiceVersion::V4_2, "00-c679c0687f2d43ebbcd766876f90da66");
    assert_eq!(validate_request(&valid, &dir, 0), Ok(()));
    let short = soap::auth_confirmation_request(ServiceVersion::V4_2, "too-short");
    assert!(validate_request(&short, &dir, 1).is_err(), "sessionId below minLength 30");
    let unknown_child = valid.replace("</m:sessionId>", "</m:sessionId><m:extra/>");
    assert!(validate_request(&unknown_child, &dir, 2).is_err(), "element outside the schema");
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------
// Status paths
// ---------------------------------------------------------------------------

#[tokio::test]
async fn ok_creates_a_session_and_returns_to_the_original_url_without_the_token() {
    let gw = gateway(StackOptions::default()).await;
    let (url, cookie) = gw.begin_login("/desk?tab=2&q=%C5%99", 0).await;
    let token = session_id_of(&url);
    let done = callback(&gw, &url, Some(&cookie)).await;
    assert_eq!(done.status(), 302);
    assert_eq!(location(&done), "/desk?tab=2&q=%C5%99", "back to the original URL, exactly");
    assert!(!location(&done).contains(&token) && !location(&done).contains("sessionId"));
    assert_eq!(header(&done, "referrer-policy"), Some("no-referrer"), "the token URL leaks no Referer");
    assert_eq!(header(&done, "cache-control"), Some("no-store"));
    let cleared =
        done.headers().get_all("set-cookie").iter().any(|c| c.to_str().unwrap().starts_with("aisgate_login=;"));
    assert!(cleared, "the pre-login cookie is cleared");
    let session = set_cookie(&done, "aisgate_session").expect("session cookie");
    assert!(!session.contains(&token), "the gateway session id is not the IdP token");
    // One authConfirmation carrying exactly that token.
    let calls = auth_calls(&gw);
    assert_eq!(calls.len(), 1);
    assert!(matches!(
        sim_soap::parse_request(calls[0].as_bytes()),
        Ok(KaasRequest::AuthConfirmation { version: ServiceVersion::V4_2, session_id }) if session_id == token
    ));
    // The session works and carries the user.
    let resp = gw
        .client
        .get(gw.url("/desk?tab=2"))
        .header("cookie", format!("aisgate_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["headers"]["x-auth-subject"], "6f1c0d2a-6b7e-4d0e-9a51-3c2b1f0e9d84");
    assert!(!body.to_string().contains(&token), "the token never reaches the upstream");
    assert_requests_valid(&gw);
}

#[tokio::test]
async fn session_not_found_shows_the_czech_login_failed_page_with_a_retry_link() {
    let gw = gateway(StackOptions::default()).await;
    let (url, cookie) = gw.begin_login("/desk?tab=2", 0).await;
    set_override(&gw, vec![AuthStatus::SessionNotFound], None);
    let resp = callback(&gw, &url, Some(&cookie)).await;
    let cleared =
        resp.headers().get_all("set-cookie").iter().any(|c| c.to_str().unwrap().starts_with("aisgate_login=;"));
    let page = assert_error_page(resp, 400, LOGIN_FAILED, "SESSION_NOT_FOUND").await;
    assert!(cleared, "the used pre-login cookie is cleared");
    assert!(page.contains("href=\"/.aisgate/login?return=%2Fdesk%3Ftab%3D2\""), "retry restarts the login\n{page}");
    assert!(page.contains(">Přihlásit se znovu</a>"), "{page}");
    assert_eq!(auth_calls(&gw).len(), 1, "SESSION_NOT_FOUND is not retried");
    // The IdP's own "no": a failure with its reason, not a refusal and not an outage.
    assert_eq!(metric(&gw, "aisgate_logins_total{provider=\"jip\",result=\"failure\"}").await, 1);
    assert_eq!(metric(&gw, "aisgate_login_refusals_total{provider=\"jip\",reason=\"session_not_found\"}").await, 1);
    assert_no_session(&gw, "SESSION_NOT_FOUND").await;
    assert_requests_valid(&gw);
}

#[tokio::test]
async fn system_error_once_is_retried_once_and_the_login_succeeds() {
    let gw = gateway(StackOptions::default()).await;
    let (url, cookie) = gw.begin_login("/desk", 0).await;
    set_override(&gw, vec![AuthStatus::SystemError], None);
    let done = callback(&gw, &url, Some(&cookie)).await;
    assert_eq!(done.status(), 302);
    assert_eq!(location(&done), "/desk");
    assert!(set_cookie(&done, "aisgate_session").is_some());
    let calls = auth_calls(&gw);
    assert_eq!(calls.len(), 2, "one retry");
    assert_eq!(calls[0], calls[1], "the retry redeems the same token");
    assert_requests_valid(&gw);
}

#[tokio::test]
async fn system_error_twice_shows_the_service_unavailable_page() {
    let gw = gateway(StackOptions::default()).await;
    let (url, cookie) = gw.begin_login("/desk", 0).await;
    set_override(&gw, vec![AuthStatus::SystemError, AuthStatus::SystemError], None);
    let resp = callback(&gw, &url, Some(&cookie)).await;
    let page = assert_error_page(resp, 503, UNAVAILABLE, "SYSTEM_ERROR twice").await;
    assert!(page.contains("href=\"/.aisgate/login?return=%2Fdesk\""), "{page}");
    assert_eq!(auth_calls(&gw).len(), 2, "at most one retry");
    assert_no_session(&gw, "SYSTEM_ERROR twice").await;
    assert_gateway_still_logs_in(&gw).await;
    assert_requests_valid(&gw);
}

#[tokio::test]
async fn soap_fault_with_http_500_shows_the_service_unavailable_page() {
    let gw = gateway(StackOptions::default()).await;
    let (url, cookie) = gw.begin_login("/desk", 0).await;
    let fault = sim_soap::soap_fault_response("SOAP-ENV:Server", "Interní chyba");
    set_override(&gw, vec![], Some((500, fault)));
    let resp = callback(&gw, &url, Some(&cookie)).await;
    assert_error_page(resp, 503, UNAVAILABLE, "SOAP Fault").await;
    assert_eq!(auth_calls(&gw).len(), 1, "a fault is not retried");
    assert_no_session(&gw, "SOAP Fault").await;
    assert_gateway_still_logs_in(&gw).await;
    assert_requests_valid(&gw);
}

/// A valid OK answer for demo user 0 in `version`, CAAIS-shaped.
fn ok_response(version: ServiceVersion) -> String {
    let user = aisgate::sim::kaas::demo_users().remove(0);
    sim_soap::auth_confirmation_response(
        version,
        &AuthStatus::Ok,
        Some(&user.attributes),
        ResponseStyle::Quirks(Default::default()),
    )
}

#[tokio::test]
async fn broken_and_hostile_responses_give_503_without_panicking_and_the_gateway_keeps_serving() {
    let gw = gateway(StackOptions::default()).await;
    let ok = ok_response(ServiceVersion::V4_2);
    assert!(soap::parse_auth_confirmation_response(ok.as_bytes(), ServiceVersion::V4_2).is_ok(), "control");
    let envelope = |payload: &str| {
        format!(
            "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\"><SOAP-ENV:Body>{payload}</SOAP-ENV:Body></SOAP-ENV:Envelope>"
        )
    };
    let ns = "http://agw-as.cz/ats-ws/atsSzr/v4_2";
    let half = (0..=ok.len() / 2).rev().find(|i| ok.is_char_boundary(*i)).unwrap();
    let mut huge = ok.clone();
    huge.insert_str(ok.find("<SOAP-ENV:Envelope").unwrap(), &format!("<!--{}-->", "x".repeat(1 << 20)));
    let cases: Vec<(&str, u16, String)> = vec![
        ("malformed (mismatched tags)", 200, ok.replace("</ns2:status>", "</ns2:stat>")),
        ("truncated", 200, ok[..half].to_owned()),
        ("huge (> 1 MiB)", 200, huge),
        (
            "DTD with an external entity (XXE)",
            200,
            format!(
                "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>{}",
                envelope(&format!(
                    "<ns2:authConfirmationResponse xmlns:ns2=\"{ns}\"><ns2:status>OK</ns2:status><ns2:attributes><ns2:Username>&xxe;</ns2:Username></ns2:attributes></ns2:authConfirmationResponse>"
                ))
            ),
        ),
        (
            "billion laughs",
            200,
            format!(
                "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]>{}",
                envelope(&format!("<ns2:authConfirmationResponse xmlns:ns2=\"{ns}\"><ns2:status>&b;</ns2:status></ns2:authConfirmationResponse>"))
            ),
        ),
        (
            "undeclared entity without a DTD",
            200,
            envelope(&format!("<ns2:authConfirmationResponse xmlns:ns2=\"{ns}\"><ns2:status>&foo;</ns2:status></ns2:authConfirmationResponse>")),
        ),
        ("wrong namespace (a v4_1 answer to a v4_2 request)", 200, ok_response(ServiceVersion::V4_1)),
        ("foreign namespace", 200, ok.replace(&format!(" xmlns:ns2=\"{ns}\""), " xmlns:ns2=\"urn:other\"")),
        ("SOAP 1.2 envelope", 200, ok.replace("http://schemas.xmlsoap.org/soap/envelope/", "http://www.w3.org/2003/05/soap-envelope")),
        ("another operation", 200, sim_soap::heart_beat_response(ServiceVersion::V4_2, true, None, None)),
        ("OK without attributes", 200, sim_soap::auth_confirmation_response(ServiceVersion::V4_2, &AuthStatus::Ok, None, ResponseStyle::Strict)),
        ("unknown status", 200, ok.replace(">OK</ns2:status>", ">MAYBE</ns2:status>")),
        ("no status", 200, envelope(&format!("<ns2:authConfirmationResponse xmlns:ns2=\"{ns}\"/>"))),
        ("empty body", 200, String::new()),
        ("HTML error page", 200, "<!doctype html><html><body>Bad gateway</body></html>".into()),
        ("JSON", 200, "{\"status\":\"OK\"}".into()),
        ("HTTP 502 with a valid body", 502, ok.clone()),
        ("HTTP 404", 404, String::new()),
    ];
    for (label, status, body) in cases {
        let (url, cookie) = gw.begin_login("/desk", 0).await;
        let before = auth_calls(&gw).len();
        set_override(&gw, vec![], Some((status, body)));
        let resp = callback(&gw, &url, Some(&cookie)).await;
        assert_error_page(resp, 503, UNAVAILABLE, label).await;
        assert_eq!(auth_calls(&gw).len(), before + 1, "{label}: exactly one call, no retry");
        assert!(gw.sim.overrides.lock().unwrap().next_raw_body.is_none(), "{label}: the raw body was served");
    }
    assert_no_session(&gw, "after broken responses").await;
    assert_gateway_still_logs_in(&gw).await;
    assert_requests_valid(&gw);
}

#[tokio::test]
async fn unregistered_client_certificate_gives_503_and_readiness_reports_401() {
    let gw = gateway(StackOptions { registered_client: false, ..Default::default() }).await;
    let (status, ready) = readiness(&gw).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["ready"], false, "{ready}");
    assert_eq!(ready["providers"]["jip"]["ready"], false, "{ready}");
    let detail = ready["providers"]["jip"]["detail"].as_str().unwrap();
    assert!(detail.contains("401"), "{detail}");
    let (url, cookie) = gw.begin_login("/desk", 0).await;
    let resp = callback(&gw, &url, Some(&cookie)).await;
    assert_error_page(resp, 503, UNAVAILABLE, "HTTP 401 JSON").await;
    assert!(gw.sim.calls.lock().unwrap().is_empty(), "the IdP served nothing to an unknown client");
    // Our client certificate is the problem: an outage with a reason naming it.
    assert_eq!(metric(&gw, "aisgate_logins_total{provider=\"jip\",result=\"error\"}").await, 1);
    let series = "aisgate_login_refusals_total{provider=\"jip\",reason=\"client_certificate_refused\"}";
    assert_eq!(metric(&gw, series).await, 1);
    assert_no_session(&gw, "HTTP 401").await;
}

#[tokio::test]
async fn soap_host_requires_the_registered_client_certificate() {
    let gw = gateway(StackOptions::default()).await;
    let ca = reqwest::Certificate::from_pem(&std::fs::read(gw.stack_dir.join("ca.pem")).unwrap()).unwrap();
    let identity = |cert: &str, key: &str| {
        let mut pem = std::fs::read(gw.stack_dir.join(cert)).unwrap();
        pem.extend(std::fs::read(gw.stack_dir.join(key)).unwrap());
        reqwest::Identity::from_pem(&pem).unwrap()
    };
    let heart_beat = |client: reqwest::Client| {
        let url = gw.sim.auth_ws_url();
        async move {
            client
                .post(url)
                .header("content-type", soap::CONTENT_TYPE)
                .header("soapaction", "\"heartBeat\"")
                .body(soap::heart_beat_request(ServiceVersion::V4_2))
                .send()
                .await
                .unwrap()
        }
    };
    let anonymous = reqwest::Client::builder().tls_certs_only([ca.clone()]).build().unwrap();
    let rogue = reqwest::Client::builder()
        .tls_certs_only([ca.clone()])
        .identity(identity("rogue-client.pem", "rogue-client.key"))
        .build()
        .unwrap();
    for (label, client) in [("no certificate", anonymous), ("unregistered certificate", rogue)] {
        let resp = heart_beat(client).await;
        assert_eq!(resp.status(), 401, "{label}");
        assert_eq!(header(&resp, "content-type"), Some("application/json"), "{label}");
        let body: serde_json::Value = resp.json().await.expect("a JSON body, not SOAP");
        assert!(body.is_object(), "{label}: {body}");
    }
    // Control: the registered certificate gets a SOAP answer.
    let registered =
        reqwest::Client::builder().tls_certs_only([ca]).identity(identity("client.pem", "client.key")).build().unwrap();
    let resp = heart_beat(registered).await;
    assert_eq!(resp.status(), 200);
    let hb = soap::parse_heart_beat_response(&resp.bytes().await.unwrap(), ServiceVersion::V4_2).unwrap();
    assert!(hb.ok);
}

// ---------------------------------------------------------------------------
// Versions
// ---------------------------------------------------------------------------

#[tokio::test]
async fn each_version_logs_in_and_forwards_what_that_version_carries() {
    for version in ServiceVersion::ALL {
        let v = version.as_str();
        let gw = gateway(StackOptions { provider_extra: format!("version = \"{v}\""), ..Default::default() }).await;
        let (cookie, target) = gw.login_to("/v", 0).await;
        assert_eq!(target, "/v", "{v}");
        let resp = gw.client.get(gw.url("/v")).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{v}");
        let body: serde_json::Value = resp.json().await.unwrap();
        let h = body["headers"].as_object().unwrap();
        let get = |name: &str| h.get(name).and_then(|x| x.as_str());
        // Every version (v2_1 attributes).
        assert_eq!(get("x-auth-protocol"), Some(format!("kaas-ws/{v}").as_str()));
        assert_eq!(get("x-auth-subject"), Some("6f1c0d2a-6b7e-4d0e-9a51-3c2b1f0e9d84"), "{v}");
        assert_eq!(get("x-auth-username"), Some("novakova"), "{v}");
        assert_eq!(get("x-auth-family-name"), Some("Nov%C3%A1kov%C3%A1"), "{v}");
        assert_eq!(get("x-auth-title-before"), Some("Ing."), "{v}");
        assert_eq!(get("x-auth-roles"), Some("REFERENT,SCHVALOVATEL"), "{v}");
        assert_eq!(get("x-auth-agenda-roles"), Some("A1234:CR0001,A1234:CR0002"), "{v}");
        assert_eq!(get("x-auth-org-ico"), Some("00007064"), "{v}");
        assert_eq!(get("x-auth-org-code"), Some("MVCR"), "{v}");
        // From v3_4 on: e-mail, subject name and type, OVM id, login method, identity matching.
        let v3 = version >= ServiceVersion::V3_4;
        let expect = |value: &'static str| v3.then_some(value);
        assert_eq!(get("x-auth-email"), expect("jirina.novakova@example.cz"), "{v}");
        assert_eq!(get("x-auth-org-name"), expect("Ministerstvo vnitra"), "{v}");
        assert_eq!(get("x-auth-org-type"), expect("1"), "{v}");
        assert_eq!(get("x-auth-org-ovm-id"), expect("00007064"), "{v}");
        assert_eq!(get("x-auth-org-kind"), expect("OVM"), "{v}");
        assert_eq!(get("x-auth-method"), expect("p-cert"), "{v}");
        assert_eq!(get("x-auth-identity-verified"), expect("true"), "{v}");
        // LoA: none without TypPrihlaseni (v2_1); p-cert (v3_4, v4_1) and the NIA value (v4_2)
        // both say substantial for this user.
        assert_eq!(get("x-auth-loa"), expect("substantial"), "{v}");
        assert!(get("x-auth-no-personal-data").is_none(), "{v}");
        // The request used this version's namespace, and so did the heartBeat.
        let calls = gw.sim.calls.lock().unwrap().clone();
        let ns = format!("xmlns:m=\"http://agw-as.cz/ats-ws/atsSzr/{v}\"");
        assert!(calls.iter().all(|c| c.contains(&ns)), "{v}: {calls:?}");
        let auth: Vec<_> = calls.iter().filter_map(|c| sim_soap::parse_request(c.as_bytes()).ok()).collect();
        assert!(auth.iter().any(|r| matches!(r, KaasRequest::AuthConfirmation { version: rv, .. } if *rv == version)));
        assert!(auth.iter().any(|r| matches!(r, KaasRequest::HeartBeat { version: rv } if *rv == version)));
        assert_requests_valid(&gw);
    }
}

// ---------------------------------------------------------------------------
// The token: binding, single use, format
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_redeemed_session_id_used_again_fails_cleanly() {
    let gw = gateway(StackOptions::default()).await;
    let (url, cookie) = gw.begin_login("/desk", 0).await;
    assert_eq!(callback(&gw, &url, Some(&cookie)).await.status(), 302);
    // The same browser replays the same callback: its login is already finished.
    let replay = callback(&gw, &url, Some(&cookie)).await;
    assert_eq!(replay.status(), 400);
    assert!(set_cookie(&replay, "aisgate_session").is_none());
    assert_eq!(auth_calls(&gw).len(), 1, "a finished login is not redeemed again");
    // A fresh login of this browser carrying the old token: the IdP says SESSION_NOT_FOUND.
    let (_, fresh_cookie) = gw.begin_login("/desk", 0).await;
    let resp = callback(&gw, &url, Some(&fresh_cookie)).await;
    assert_error_page(resp, 400, LOGIN_FAILED, "redeemed token").await;
    let calls = auth_calls(&gw);
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0], calls[1], "the second call carried the used token");
    assert_no_session(&gw, "redeemed token").await;
    assert_requests_valid(&gw);
}

#[tokio::test]
async fn callback_without_the_binding_cookie_is_refused_without_any_soap_call() {
    let gw = gateway(StackOptions::default()).await;
    let (url, cookie) = gw.begin_login("/desk", 0).await;
    let forged = "aisgate_login=demo.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.AAAA";
    for (label, c) in [("no cookie", None), ("forged cookie", Some(forged)), ("other cookie", Some("x=1"))] {
        let resp = callback(&gw, &url, c).await;
        let page = assert_error_page(resp, 400, NOT_INITIATED, label).await;
        assert!(page.contains("nebylo zahájeno"), "{label}");
    }
    assert!(auth_calls(&gw).is_empty(), "no SOAP call for an unbound callback");
    // The gateway's own check: refused, with its reason (not the IdP's failure).
    assert_eq!(metric(&gw, "aisgate_logins_total{provider=\"jip\",result=\"refused\"}").await, 3);
    assert_eq!(metric(&gw, "aisgate_logins_total{provider=\"jip\",result=\"failure\"}").await, 0);
    assert_eq!(metric(&gw, "aisgate_login_refusals_total{provider=\"jip\",reason=\"no_login_cookie\"}").await, 3);
    // The token was not burnt: the browser that started the login still completes it.
    let done = callback(&gw, &url, Some(&cookie)).await;
    assert_eq!(done.status(), 302);
    assert_eq!(location(&done), "/desk");
    assert_eq!(auth_calls(&gw).len(), 1);
    assert_requests_valid(&gw);
}

#[tokio::test]
async fn session_ids_of_bad_format_are_refused_without_a_soap_call() {
    let gw = gateway(StackOptions::default()).await;
    let good = "01-8c57c8b70acb41598456914f17ae933b";
    let cases: Vec<(&str, Option<String>)> = vec![
        ("too short", Some("01-8c57c8b70acb".into())),
        ("29 characters", Some("a".repeat(29))),
        ("51 characters", Some("a".repeat(51))),
        ("empty", Some(String::new())),
        ("apostrophe", Some(format!("{good}'"))),
        ("space", Some(format!("01 {}", &good[3..]))),
        ("markup", Some(format!("{}<x/>", &good[..30]))),
        ("non-ASCII", Some(format!("{}ř", &good[..30]))),
        ("NUL", Some(format!("{}\0", &good[..30]))),
        ("missing", None),
    ];
    for (label, token) in cases {
        let (url, cookie) = gw.begin_login("/desk", 0).await;
        let mut bad = url::Url::parse(&url).unwrap();
        bad.set_query(None);
        if let Some(token) = &token {
            bad.query_pairs_mut().append_pair("sessionId", token);
        }
        let resp = callback(&gw, bad.as_str(), Some(&cookie)).await;
        assert_error_page(resp, 400, LOGIN_FAILED, label).await;
        assert!(auth_calls(&gw).is_empty(), "{label}: no SOAP call");
    }
    assert_no_session(&gw, "bad tokens").await;
    // Checked by the gateway before any SOAP call: refusals with their reason.
    assert_eq!(metric(&gw, "aisgate_logins_total{provider=\"jip\",result=\"refused\"}").await, 10);
    let malformed = "aisgate_login_refusals_total{provider=\"jip\",reason=\"session_id_malformed\"}";
    assert_eq!(metric(&gw, malformed).await, 9);
    let missing = "aisgate_login_refusals_total{provider=\"jip\",reason=\"missing_session_id\"}";
    assert_eq!(metric(&gw, missing).await, 1);
    // 50 characters is the upper bound and passes the check (the IdP then decides).
    let (url, cookie) = gw.begin_login("/desk", 0).await;
    let mut edge = url::Url::parse(&url).unwrap();
    edge.set_query(Some(&format!("sessionId={}", "A".repeat(50))));
    let resp = callback(&gw, edge.as_str(), Some(&cookie)).await;
    assert_error_page(resp, 400, LOGIN_FAILED, "unknown 50-character token").await;
    assert_eq!(auth_calls(&gw).len(), 1, "a well-formed token is sent to the IdP");
    assert_requests_valid(&gw);
}

// ---------------------------------------------------------------------------
// Logout
// ---------------------------------------------------------------------------

#[tokio::test]
async fn logout_redirect_carries_the_ats_id_and_the_percent_encoded_return_uri() {
    let back = "https://apps.example.cz/logout/?origin=jipkaas&user=jnovak#top";
    let gw =
        gateway(StackOptions { provider_extra: format!("logout_return_url = \"{back}\""), ..Default::default() }).await;
    let (cookie, _) = gw.login_to("/desk", 0).await;
    let resp = gw.client.get(gw.url("/logout")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let to = location(&resp);
    let (base, query) = to.split_once('?').unwrap();
    assert_eq!(base, gw.sim.logout_url());
    assert_eq!(
        query,
        "atsId=AISGATE_DEMO&uri=https%3A%2F%2Fapps.example.cz%2Flogout%2F%3Forigin%3Djipkaas%26user%3Djnovak%23top",
        "uri is one percent-encoded parameter"
    );
    let pairs: Vec<(String, String)> = url::Url::parse(&to).unwrap().query_pairs().into_owned().collect();
    assert_eq!(pairs, vec![("atsId".into(), "AISGATE_DEMO".into()), ("uri".into(), back.into())]);
    // The local session is gone before the browser reaches the IdP.
    let after = gw.client.get(gw.url("/x")).header("accept", "application/json").header("cookie", &cookie).send();
    assert_eq!(after.await.unwrap().status(), 401);
}

#[tokio::test]
async fn simulator_logout_accepts_only_return_uris_under_the_registered_prefix() {
    let gw = gateway(StackOptions::default()).await;
    let logout = |ats: Option<&str>, uri: Option<&str>| {
        let mut url = url::Url::parse(&gw.sim.logout_url()).unwrap();
        if let Some(a) = ats {
            url.query_pairs_mut().append_pair("atsId", a);
        }
        if let Some(u) = uri {
            url.query_pairs_mut().append_pair("uri", u);
        }
        let client = gw.client.clone();
        async move { client.get(url).send().await.unwrap() }
    };
    // Registered prefix: "<gateway>/".
    let inside = gw.url("/.aisgate/logged-out?origin=jipkaas&x=1");
    let ok = logout(Some("AISGATE_DEMO"), Some(&inside)).await;
    assert_eq!(ok.status(), 303);
    assert_eq!(location(&ok), inside, "back to the exact uri");
    let port_suffix = format!("{}.evil.example/", gw.base);
    for (label, ats, uri) in [
        ("foreign host", Some("AISGATE_DEMO"), Some("https://evil.example/logout/")),
        ("host-extension trick", Some("AISGATE_DEMO"), Some(port_suffix.as_str())),
        ("prefix without the slash", Some("AISGATE_DEMO"), Some(gw.base.as_str())),
        ("missing uri", Some("AISGATE_DEMO"), None),
        ("unknown atsId", Some("OTHER"), Some(inside.as_str())),
        ("missing atsId", None, Some(inside.as_str())),
    ] {
        let resp = logout(ats, uri).await;
        assert_eq!(resp.status(), 400, "{label}");
        assert!(resp.headers().get("location").is_none(), "{label}");
    }
}

#[tokio::test]
async fn a_refused_primary_certificate_falls_back_to_the_secondary_and_metrics_show_it() {
    // The primary certificate is one the IdP does not know; the secondary is registered.
    let gw = Gateway::start(StackOptions {
        upstream: Some(support::header_echo().await),
        registered_client: false,
        provider_extra: "secondary_client_cert = \"{dir}/client.pem\"\nsecondary_client_key = \"{dir}/client.key\""
            .into(),
        ..Default::default()
    })
    .await;
    let (cookie, _) = gw.login_to("/", 0).await;
    assert!(cookie.starts_with("aisgate_session="));
    let metrics = gw.client.get(format!("http://{}/metrics", gw.ops)).send().await.unwrap().text().await.unwrap();
    let line = |prefix: &str| metrics.lines().find(|l| l.starts_with(prefix)).map(str::to_owned);
    assert_eq!(
        line("aisgate_kaas_call_results_total{provider=\"jip\",result=\"ok\"}").as_deref(),
        Some("aisgate_kaas_call_results_total{provider=\"jip\",result=\"ok\"} 1")
    );
    for cert in ["primary", "secondary"] {
        let gauge =
            line(&format!("aisgate_client_certificate_expiry_seconds{{provider=\"jip\",certificate=\"{cert}\"}}"))
                .unwrap_or_else(|| panic!("no expiry gauge for {cert} in\n{metrics}"));
        let seconds: f64 = gauge.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(seconds > 86_400.0, "{gauge}");
    }
    assert!(metrics.contains("aisgate_kaas_call_duration_seconds_count{provider=\"jip\"} 1"), "{metrics}");
}
