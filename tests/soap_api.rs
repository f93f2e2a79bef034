//! SOAP services behind API mode with the CRŽP role + IČO authorizer (issue 11 items 5–6 and
//! its tests): the real SOAP client `zeep` (PyPI) calls a real SOAP 1.1 and SOAP 1.2 service
//! (tests/peers/soap/service.py) through the gateway.
//!
//! Identities: bearer tokens are issued by the in-process EnviIAM-like OIDC simulator (its
//! profile endpoint validates them; the npm `oidc-provider` peer hands out tokens only at the
//! end of a browser login, which these calls do not go through), SAML headers are Responses
//! of the in-process SAML simulator forwarded as a calling application would. The subject
//! authorizer is the in-process simulator (`aisgate::sim::authorizer`). Each refusal asserts
//! the status or zeep's Fault code and message, and the reason in the operator log.

mod support;

use aisgate::provider::saml::xmlsec::SigningKey;
use aisgate::sim::authorizer::{AuthorizerSim, Mode};
use aisgate::sim::oidc::enviam_user;
use aisgate::sim::saml_response::ResponseSpec;
use aisgate::sim::stack::{OidcStackProvider, SamlStackProvider, StackOptions};
use serde_json::{json, Value};
use support::forwarded_saml::{forwarded, idp_key, saml_ready, stranger_key};
use support::soap_peer::{self, zeep, SoapService};
use support::Gateway;

/// The EnviIAM user's subject (CRŽP UUID) in `enviam_user()`.
const ENVIAM_SUB: &str = "123e4567-e89b-12d3-a456-426655440000";
/// The NIA simulator's subject (BSI) in forwarded Responses.
const NIA_SUB: &str = "CZ/CZ/2e3883ee-7e0d-47cb-8fee-2ea231a58ee6";

const APPS: &str = r#"
[authorizer]
url = "{authorizer}"
timeout_ms = 500
cache_ttl_secs = 300
deny_cache_ttl_secs = 30

[[app]]
name = "isoh"
path_prefix = "/isoh/"
upstream = "{upstream}"
providers = ["enviam"]
auth = "bearer"
[app.bearer]
provider = "enviam"
[app.authorize]
ico_check = true
max_body_bytes = 8192
exempt_operations = ["PrijmiData"]
[[app.authorize.operation]]
name = "PoskytniData"
ico_path = "Zadost/Ico"
[[app.rule]]
operation = "PoskytniData"
require_roles = { role_crzp = ["A100"] }
[[app.rule]]
operation = "PrijmiData"
require_roles = { role_rpp = ["A101:A002"] }

[[app]]
name = "isoh-web"
path_prefix = "/web/"
upstream = "{upstream}"
providers = ["enviam"]
[app.authorize]
ico_check = true
ico_path = "Zadost/Ico"

[[app]]
name = "isoh-saml"
path_prefix = "/isohs/"
upstream = "{upstream}"
providers = ["nia"]
auth = "saml-header"
[app.saml_header]
provider = "nia"
max_header_bytes = 32768
[[app.saml_header.caller]]
entity_id = "https://crzp.example.cz/sp"
acs_urls = ["https://crzp.example.cz/acs"]
[app.authorize]
ico_check = true
ico_path = "Zadost/Ico"
exempt_operations = ["PrijmiData"]
"#;

/// A user without the CRŽP role `A100` and without RPP roles.
fn roleless_user() -> serde_json::Map<String, Value> {
    let mut user = enviam_user();
    user.insert("sub".into(), json!("00000000-0000-4000-8000-000000000002"));
    user.insert("role_crzp".into(), json!("B200, A100:X"));
    user.remove("role_rpp");
    user
}

struct Setup {
    gw: Gateway,
    service: SoapService,
    authorizer: AuthorizerSim,
}

async fn setup(test: &str) -> Option<Setup> {
    if !soap_peer::available(test) {
        return None;
    }
    support::logs::capture();
    let service = SoapService::start();
    let (authorizer, url) = aisgate::sim::authorizer::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    authorizer.grant(ENVIAM_SUB, "00007064", &["ISOH_EDIT", "ISOH_READ"]);
    authorizer.grant(NIA_SUB, "00007064", &["ISOH_READ"]);
    let mut enviam = OidcStackProvider::enviam_like("enviam", "");
    enviam.sim.users.push(roleless_user());
    let gw = Gateway::start(StackOptions {
        upstream: Some(service.base.clone()),
        apps: Some(APPS.replace("{authorizer}", &url)),
        oidc: vec![enviam],
        saml: Some(SamlStackProvider::default()),
        audit: "file = \"{dir}/audit.jsonl\"\n".to_owned(),
        ..Default::default()
    })
    .await;
    Some(Setup { gw, service, authorizer })
}

impl Setup {
    /// The audit file's events of type `event`, once at least `n` are written (the writer is
    /// asynchronous: polls with a deadline).
    async fn audit_events(&self, event: &str, n: usize) -> Vec<Value> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(self.gw.stack_dir.join("audit.jsonl")).unwrap_or_default();
            let found: Vec<Value> = text
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|e| e["event"] == event)
                .collect();
            if found.len() >= n || std::time::Instant::now() > deadline {
                assert_eq!(found.len(), n, "{event} events:\n{text}");
                return found;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    fn token(&self, user: usize) -> String {
        format!("Bearer {}", self.gw.oidc[0].issue_access_token(user))
    }

    /// Calls through the gateway with zeep on `prefix` (`isoh` or `isohs`), SOAP `version`
    /// 11 or 12; the WSDL is fetched without any Authorization header.
    async fn zeep(&self, prefix: &str, version: u8, calls: Value) -> Vec<Value> {
        let svc = self.gw.url(&format!("/{prefix}/Hlaseni{version}.svc"));
        zeep(json!({
            "wsdl": format!("{svc}?wsdl"),
            "binding": format!("Hlaseni{version}"),
            "address": svc,
            "calls": calls,
        }))
        .await
    }

    async fn metrics(&self) -> String {
        self.gw.client.get(format!("http://{}/metrics", self.gw.ops)).send().await.unwrap().text().await.unwrap()
    }
}

fn ok(result: &Value) -> &serde_json::Map<String, Value> {
    result["ok"].as_object().unwrap_or_else(|| panic!("expected a result, got {result}"))
}

/// zeep's Fault (code, message); the message ends with the gateway's request id, whose log
/// line must contain `reason`.
fn fault(result: &Value, reason: &str) -> (String, String) {
    let f = result["fault"].as_object().unwrap_or_else(|| panic!("expected a SOAP Fault, got {result}"));
    let (code, message) = (f["code"].as_str().unwrap().to_owned(), f["message"].as_str().unwrap().to_owned());
    let id = message
        .rsplit_once("(request id ")
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("fault message without request id: {message}"));
    let lines = support::logs::lines_for(id);
    assert!(lines.iter().any(|l| l.contains(reason)), "no log line with {reason:?} for {id}: {lines:#?}");
    (code, message)
}

fn saml(gw: &Gateway, key: &SigningKey, edit: impl FnOnce(&mut ResponseSpec)) -> String {
    format!("SAML {}", forwarded(gw, key, edit))
}

/// zeep over SOAP 1.1 and 1.2 with a bearer token: the WSDL comes without a token, the IČO in
/// the body is checked once with the authorizer, and the service receives the user, the
/// normalized roles and the checked IČO — not the token. The second binding's call is served
/// from both caches: no second profile call, no second authorizer call. The exempt reception
/// operation is not IČO-checked.
#[tokio::test]
async fn zeep_soap11_and_soap12_bearer_calls_carry_the_checked_ico_upstream() {
    let Some(s) = setup("zeep_soap11_and_soap12_bearer_calls_carry_the_checked_ico_upstream").await else { return };
    let token = s.token(0);
    let calls = json!([
        {"op": "PoskytniData", "ico": "7064", "authorization": token},
        {"op": "PrijmiData", "authorization": token},
    ]);
    for version in [11, 12] {
        let results = s.zeep("isoh", version, calls.clone()).await;
        let provided = ok(&results[0]);
        assert_eq!(provided["Operation"], "PoskytniData", "SOAP {version}");
        assert_eq!(provided["User"], ENVIAM_SUB);
        assert_eq!(provided["Ico"], "00007064");
        assert_eq!(provided["SubjectRoles"], "ISOH_EDIT,ISOH_READ");
        assert_eq!(provided["Roles"], "A100,A101");
        assert_eq!(provided["AuthOperation"], "PoskytniData");
        assert_eq!(provided["Authorization"], "absent");
        let received = ok(&results[1]);
        assert_eq!(received["Operation"], "PrijmiData");
        assert_eq!(received["AuthOperation"], "PrijmiData");
        assert_eq!(received["Ico"], Value::Null, "exempt: no IČO checked or sent");
    }
    assert_eq!(s.authorizer.calls(), 1, "one authorizer call for (user, IČO, operation)");
    assert_eq!(
        s.authorizer.last_request(),
        Some(json!({"user": ENVIAM_SUB, "ico": "00007064", "operation": "PoskytniData", "app": "isoh"}))
    );
    assert_eq!(s.gw.oidc[0].knobs().userinfo_calls, 1, "the token was validated once");
    let metrics = s.metrics().await;
    assert!(metrics.contains("aisgate_authorizer_cache_total{result=\"hit\"} 1"), "{metrics}");
    assert!(metrics.contains("aisgate_authorizer_calls_total{result=\"allowed\"} 1"), "{metrics}");
    assert_eq!(s.service.posts().await, 4);
    // The WSDL itself passes without a token (zeep fetched it so above, too).
    let wsdl = s.gw.client.get(s.gw.url("/isoh/Hlaseni11.svc?wsdl")).send().await.unwrap();
    assert_eq!(wsdl.status(), 200);
    assert!(wsdl.text().await.unwrap().contains("<wsdl:definitions"));
}

/// A forwarded SAML Response in `Authorization: SAML`: the same IČO check, keyed by the SAML
/// subject.
#[tokio::test]
async fn zeep_with_a_saml_header_is_authorized_by_ico() {
    let Some(s) = setup("zeep_with_a_saml_header_is_authorized_by_ico").await else { return };
    saml_ready(&s.gw).await;
    let header = saml(&s.gw, &idp_key(&s.gw), |_| {});
    let results =
        s.zeep("isohs", 11, json!([{"op": "PoskytniData", "ico": "00007064", "authorization": header}])).await;
    let provided = ok(&results[0]);
    assert_eq!(provided["User"], NIA_SUB);
    assert_eq!(provided["Ico"], "00007064");
    assert_eq!(provided["SubjectRoles"], "ISOH_READ");
    assert_eq!(provided["Authorization"], "absent");
    assert_eq!(s.authorizer.last_request().unwrap()["app"], "isoh-saml");
}

/// Expired token, SAML Response for another audience, SAML Response signed by a stranger:
/// 401, a SOAP Fault zeep reports as the client's, nothing reaches the service.
#[tokio::test]
async fn zeep_sees_401_faults_for_expired_wrong_audience_and_wrong_signature() {
    let Some(s) = setup("zeep_sees_401_faults_for_expired_wrong_audience_and_wrong_signature").await else { return };
    saml_ready(&s.gw).await;
    s.gw.oidc[0].knobs().userinfo_exp = Some(aisgate::session::now_unix() - 600);
    let expired = s.token(0);
    let results = s.zeep("isoh", 12, json!([{"op": "PoskytniData", "ico": "7064", "authorization": expired}])).await;
    let (code, message) = fault(&results[0], "access_token_expired");
    assert!(code.ends_with("Sender"), "{code}");
    assert!(message.contains("(request id "), "{message}");

    let stranger = stranger_key();
    let wrong_audience = saml(&s.gw, &idp_key(&s.gw), |r| r.audience = "https://other.example.cz/sp".into());
    let wrong_signature = saml(&s.gw, &stranger, |_| {});
    let results = s
        .zeep(
            "isohs",
            11,
            json!([
                {"op": "PoskytniData", "ico": "7064", "authorization": wrong_audience},
                {"op": "PoskytniData", "ico": "7064", "authorization": wrong_signature},
            ]),
        )
        .await;
    let (code, _) = fault(&results[0], "audience");
    assert!(code.ends_with("Client"), "{code}");
    let (code, _) = fault(&results[1], "signature");
    assert!(code.ends_with("Client"), "{code}");
    assert_eq!(s.authorizer.calls(), 0);
    assert_eq!(s.service.posts().await, 0);
}

/// A foreign IČO (the authorizer says no) and a user without the operation's CRŽP role: 403
/// Faults naming the reason but not the roles; the role check comes first (no authorizer
/// call for it), and nothing reaches the service.
#[tokio::test]
async fn zeep_sees_403_faults_for_foreign_ico_and_missing_role() {
    let Some(s) = setup("zeep_sees_403_faults_for_foreign_ico_and_missing_role").await else { return };
    let results = s
        .zeep(
            "isoh",
            11,
            json!([
                {"op": "PoskytniData", "ico": "12345678", "authorization": s.token(0)},
                {"op": "PoskytniData", "ico": "7064", "authorization": s.token(1)},
                {"op": "PrijmiData", "authorization": s.token(1)},
            ]),
        )
        .await;
    let (code, message) = fault(&results[0], "IcoDenied");
    assert_eq!(code, "soap:Client");
    assert!(message.contains("may not act for this organisation"), "{message}");
    assert_eq!(s.authorizer.calls(), 1);
    for missing_role in &results[1..] {
        let (_, message) = fault(missing_role, "rule: MissingRole");
        assert!(message.contains("lacks a role"), "{message}");
        assert!(!message.contains("A100") && !message.contains("A101"), "no role names: {message}");
    }
    assert_eq!(s.authorizer.calls(), 1, "a refused role is not sent to the authorizer");
    assert_eq!(s.service.posts().await, 0);
    // Each refusal is an `access_denied` audit event with its reason, and never the IČO asked for.
    let denied = s.audit_events("access_denied", 3).await;
    let reasons: Vec<&str> = denied.iter().map(|e| e["denied"].as_str().unwrap_or("")).collect();
    assert_eq!(reasons, ["ico_denied", "missing_role", "missing_role"], "{denied:#?}");
    assert!(denied.iter().all(|e| e["app"] == "isoh" && e.get("rule").is_none()), "{denied:#?}");
    let text = std::fs::read_to_string(s.gw.stack_dir.join("audit.jsonl")).unwrap();
    assert!(!text.contains("12345678"), "the IČO asked for is not audited: {text}");
}

/// The authorizer down (503), answering garbage or too slow (over `timeout_ms`): 503 Faults
/// zeep reports as the server's, a precise log line and metric each, and nothing reaches the
/// service (fail-closed). The identity provider's profile endpoint down: the same.
#[tokio::test]
async fn authorizer_or_profile_endpoint_down_is_a_503_fault_and_nothing_goes_through() {
    let Some(s) = setup("authorizer_or_profile_endpoint_down_is_a_503_fault_and_nothing_goes_through").await else {
        return;
    };
    let token = s.token(0);
    for (mode, reason) in [
        (Mode::Down, "authorizer: authorizer unavailable: HTTP 503"),
        (Mode::Malformed, "authorizer: authorizer answer malformed: \"allowed\" is not a boolean"),
        (Mode::Slow, "authorizer: authorizer timed out"),
    ] {
        s.authorizer.set_mode(mode);
        let results = s.zeep("isoh", 12, json!([{"op": "PoskytniData", "ico": "7064", "authorization": token}])).await;
        let (code, message) = fault(&results[0], reason);
        assert!(code.ends_with("Receiver"), "{mode:?}: {code}");
        assert!(message.contains("Authorization service unavailable"), "{message}");
    }
    let metrics = s.metrics().await;
    for result in ["unavailable", "malformed", "timeout"] {
        let line = format!("aisgate_authorizer_calls_total{{result=\"{result}\"}} 1");
        assert!(metrics.contains(&line), "{line}: {metrics}");
    }
    assert_eq!(s.service.posts().await, 0);
    // Back up: failures were not cached.
    s.authorizer.set_mode(Mode::Normal);
    let results = s.zeep("isoh", 11, json!([{"op": "PoskytniData", "ico": "7064", "authorization": token}])).await;
    assert_eq!(ok(&results[0])["Ico"], "00007064");
    assert_eq!(s.service.posts().await, 1);

    s.gw.oidc[0].knobs().userinfo_outage = true;
    let fresh = s.token(0);
    let results = s.zeep("isoh", 11, json!([{"op": "PoskytniData", "ico": "7064", "authorization": fresh}])).await;
    let (code, _) = fault(&results[0], "api credential validation unavailable");
    assert!(code.ends_with("Server"), "{code}");
    assert_eq!(s.service.posts().await, 1, "nothing more reached the service");
}

/// What the gateway buffered to read the IČO goes upstream byte for byte (comments, CDATA,
/// odd whitespace, an XML declaration included); a body over `max_body_bytes` is a 413 Fault,
/// a DTD or an ambiguous IČO a 400 Fault, none of them forwarded.
#[tokio::test]
async fn raw_soap_bodies_are_forwarded_byte_identical_and_refused_when_unsafe() {
    let Some(s) = setup("raw_soap_bodies_are_forwarded_byte_identical_and_refused_when_unsafe").await else { return };
    let token = s.token(0);
    let post = |body: String| {
        s.gw.client
            .post(s.gw.url("/isoh/Hlaseni11.svc"))
            .header("content-type", "text/xml; charset=utf-8")
            .header("soapaction", "\"urn:aisgate:isoh/IHlaseni/PoskytniData\"")
            .header("authorization", &token)
            .body(body)
            .send()
    };
    let body = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!-- a comment -->\r\n<S:Envelope xmlns:S=\"http://schemas.xmlsoap.org/soap/envelope/\">\n  <S:Body><i:PoskytniData xmlns:i=\"urn:aisgate:isoh\"><i:Zadost>\t<i:Ico><![CDATA[ 7064 ]]></i:Ico><i:Rok>2024</i:Rok></i:Zadost></i:PoskytniData></S:Body></S:Envelope>\n".to_owned();
    let resp = post(body.clone()).await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert!(text.contains(&format!("<t:BodySha256>{hex}</t:BodySha256>")), "{text}");
    assert!(text.contains("<t:Ico>00007064</t:Ico>"), "{text}");
    assert_eq!(s.service.posts().await, 1);

    let envelope = |inner: &str| {
        format!(
            "<S:Envelope xmlns:S=\"http://schemas.xmlsoap.org/soap/envelope/\"><S:Body><PoskytniData xmlns=\"urn:aisgate:isoh\">{inner}</PoskytniData></S:Body></S:Envelope>"
        )
    };
    let big = envelope(&format!("<Zadost><Ico>7064</Ico><Rok>{}</Rok></Zadost>", "1".repeat(10_000)));
    let dtd = format!("<!DOCTYPE x [<!ENTITY i \"7064\">]>{}", envelope("<Zadost><Ico>&i;</Ico></Zadost>"));
    let twice = envelope("<Zadost><Ico>7064</Ico></Zadost><Zadost><Ico>12345678</Ico></Zadost>");
    for (body, status, reason) in
        [(big, 413, "TooLarge"), (dtd, 400, "soap: SOAP body contains a DTD"), (twice, 400, "more than one element")]
    {
        let resp = post(body).await.unwrap();
        assert_eq!(resp.status(), status, "{reason}");
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/xml"));
        support::logs::assert_reason(&resp, reason);
        let fault = resp.text().await.unwrap();
        assert!(fault.contains("<faultcode>soap:Client</faultcode>"), "{fault}");
    }
    assert_eq!(s.service.posts().await, 1);
}

/// Issue 11 item 7: `aisgate demo` prints a command line that gets a token from its
/// EnviIAM-like IdP and calls its SOAP app; run as printed (bash, curl, openssl), it reaches
/// the demo SOAP service with the checked IČO and the user's CRŽP roles.
#[test]
fn the_demo_prints_a_working_soap_call_with_an_enviam_token() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    for tool in ["bash", "curl", "openssl"] {
        if Command::new(tool).arg("--version").output().is_err() && Command::new(tool).arg("version").output().is_err()
        {
            eprintln!("SKIPPED the_demo_prints_a_working_soap_call_with_an_enviam_token: no {tool}");
            return;
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_aisgate"))
        .args(["demo", "--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0"])
        .args(["--sim-login-listen", "127.0.0.1:0", "--sim-ws-listen", "127.0.0.1:0", "--no-access-log"])
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines().map_while(Result::ok);
    let mut script = Vec::new();
    for line in lines.by_ref() {
        if line.starts_with("Call the SOAP app") {
            break;
        }
    }
    for line in lines.by_ref() {
        if line.is_empty() && !script.is_empty() {
            break;
        }
        if !line.is_empty() {
            script.push(line);
        }
    }
    assert_eq!(script.len(), 5, "{script:#?}");
    let out = Command::new("bash").arg("-c").arg(script.join("\n")).output().unwrap();
    let _ = demo.kill();
    let _ = demo.wait();
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(answer.contains("<e:Header name=\"x-auth-subject-ico\">00007064</e:Header>"), "{answer}");
    assert!(answer.contains("<e:Header name=\"x-auth-roles\">A100,A101</e:Header>"), "{answer}");
    assert!(answer.contains("<e:Header name=\"x-auth-subject-roles\">ISOH_EDIT,ISOH_READ</e:Header>"), "{answer}");
    assert!(answer.contains("<e:Authorization>absent</e:Authorization>"), "{answer}");
}

/// The IČO check of `[app.authorize]` holds for browser sessions too: a session user posting
/// SOAP to a session app is forwarded with the checked IČO only when the authorizer allows it
/// (403 page otherwise), and nothing is forwarded for the refused one.
#[tokio::test]
async fn the_ico_check_holds_on_browser_session_paths_too() {
    let Some(s) = setup("the_ico_check_holds_on_browser_session_paths_too").await else { return };
    let cookie = s.gw.oidc_login("enviam", "/web/").await;
    let post = |ico: &str| {
        s.gw.client
            .post(s.gw.url("/web/Hlaseni11.svc"))
            .header("cookie", &cookie)
            .header("content-type", "text/xml; charset=utf-8")
            .body(format!(
                "<S:Envelope xmlns:S=\"http://schemas.xmlsoap.org/soap/envelope/\"><S:Body><PoskytniData xmlns=\"urn:aisgate:isoh\"><Zadost><Ico>{ico}</Ico></Zadost></PoskytniData></S:Body></S:Envelope>"
            ))
            .send()
    };
    let allowed = post("7064").await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert!(allowed.text().await.unwrap().contains("<t:Ico>00007064</t:Ico>"));
    let refused = post("12345678").await.unwrap();
    assert_eq!(refused.status(), 403);
    support::logs::assert_reason(&refused, "IcoDenied");
    assert_eq!(s.service.posts().await, 1);
}
