//! SAML SP through the real gateway with the simulated NIA: login by HTTP-Redirect and
//! HTTP-POST, identity headers upstream, SP- and IdP-initiated single logout, metadata
//! (endpoint, CLI, refresh, pinned signature), and every refusal with its user page.

mod support;

use aisgate::provider::saml::limits::Amplifier;
use aisgate::provider::saml::logout::{self, LogoutSubject};
use aisgate::provider::saml::reason::Refusal;
use aisgate::sim::saml::MetadataSigner;
use aisgate::sim::stack::{SamlStackProvider, StackOptions};
use support::{
    header_echo, location, parse_form, raw_set_cookie, set_cookie, Gateway, EXPIRED, LOGIN_FAILED, NOT_INITIATED,
};

const APPS: &str = r#"
[[app]]
name = "desk"
upstream = "{upstream}"
providers = ["nia", "jip"]
logout_paths = ["/logout"]
"#;

use support::logs::capture as logs;

/// The operator's log line for the request that got `resp`: a warning or error naming it.
fn assert_logged(resp: &reqwest::Response, label: &str) {
    let id = resp.headers().get("x-request-id").expect("X-Request-Id").to_str().unwrap().to_owned();
    let text = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    assert!(
        text.lines().any(|l| l.contains(&id) && (l.contains("WARN") || l.contains("ERROR"))),
        "{label}: no warning or error logged for request {id}"
    );
    // The BSI (pseudonym) and SAML payloads never reach the log.
    assert!(
        !text.contains("2e3883ee-7e0d-47cb-8fee-2ea231a58ee6") && !text.contains("SAMLResponse="),
        "{label}: {text}"
    );
}

async fn gateway(extra: &str) -> Gateway {
    logs();
    Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        apps: Some(APPS.to_owned()),
        saml: Some(SamlStackProvider { extra: extra.to_owned(), ..Default::default() }),
        ..Default::default()
    })
    .await
}

fn sim(gw: &Gateway) -> &aisgate::sim::saml::SamlSim {
    gw.saml.as_ref().expect("SAML simulator")
}

/// The browser's side of a login up to the IdP's answer, not yet delivered.
struct Pending {
    cookie: String,
    acs: String,
    form: Vec<(String, String)>,
}

/// Starts a login at NIA for `/desk` and lets the simulator answer (either binding).
async fn begin(gw: &Gateway) -> Pending {
    let start = gw.navigate("/.aisgate/login?return=%2Fdesk&provider=nia", None).await;
    let raw_cookie = raw_set_cookie(&start, "aisgate_login").expect("pre-login cookie");
    // The IdP returns by cross-site POST: a Lax cookie would not come back.
    assert!(raw_cookie.contains("SameSite=None; Secure"), "{raw_cookie}");
    let cookie = format!("aisgate_login={}", set_cookie(&start, "aisgate_login").unwrap());
    let answer = gw.to_idp(start).await;
    assert_eq!(answer.status(), 200, "the simulator answers with a form");
    let (acs, form) = parse_form(&answer.text().await.unwrap());
    Pending { cookie, acs, form }
}

async fn deliver(gw: &Gateway, p: &Pending, cookie: Option<&str>) -> reqwest::Response {
    let mut req = gw.client.post(&p.acs).form(&p.form).header("accept", "text/html");
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    req.send().await.unwrap()
}

async fn login(gw: &Gateway) -> String {
    let p = begin(gw).await;
    assert_eq!(p.acs, gw.url("/.aisgate/callback/nia"));
    let done = deliver(gw, &p, Some(&p.cookie)).await;
    assert_eq!(done.status(), 302, "ACS completes the login: {}", done.text().await.unwrap_or_default());
    assert_eq!(location(&done), "/desk");
    format!("aisgate_session={}", set_cookie(&done, "aisgate_session").expect("session cookie"))
}

async fn upstream_headers(gw: &Gateway, cookie: &str) -> reqwest::Response {
    gw.client.get(gw.url("/desk")).header("cookie", cookie).send().await.unwrap()
}

async fn assert_refused(resp: reqwest::Response, status: u16, title: &str, label: &str) {
    assert_eq!(resp.status().as_u16(), status, "{label}");
    assert_logged(&resp, label);
    assert!(set_cookie(&resp, "aisgate_session").is_none(), "{label}: no session on failure");
    let page = resp.text().await.unwrap();
    assert!(page.contains(title), "{label}: {title:?} missing\n{page}");
    assert!(!page.contains("SAMLResponse") && !page.contains("CZ/CZ/"), "{label}: no SAML data in the page");
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

fn inflate(b64: &str) -> String {
    use std::io::Read;
    let raw = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap();
    let mut out = String::new();
    flate2::read::DeflateDecoder::new(&raw[..]).read_to_string(&mut out).unwrap();
    out
}

async fn metrics(gw: &Gateway) -> String {
    gw.client.get(format!("http://{}/metrics", gw.ops)).send().await.unwrap().text().await.unwrap()
}

// ---------------------------------------------------------------------------
// Login
// ---------------------------------------------------------------------------

#[tokio::test]
async fn nia_login_by_redirect_reaches_the_upstream_with_identity_headers() {
    let gw = gateway("").await;
    let cookie = login(&gw).await;
    let h: serde_json::Value = upstream_headers(&gw, &cookie).await.json().await.unwrap();
    let h = &h["headers"];
    assert_eq!(h["x-auth-provider"], "nia");
    assert_eq!(h["x-auth-protocol"], "saml2");
    assert_eq!(h["x-auth-subject"], "CZ/CZ/2e3883ee-7e0d-47cb-8fee-2ea231a58ee6");
    assert_eq!(h["x-auth-loa"], "substantial");
    let (binding, signed) = sim(&gw).knobs().last_binding.unwrap();
    assert_eq!((binding, signed), ("redirect", false), "NIA default: Redirect, unsigned");
    let request = sim(&gw).knobs().last_authn_request.clone().unwrap();
    assert!(request.contains("<saml:Issuer>https://sp.aisgate.test/app/</saml:Issuer>"));
    assert!(request.contains("<eidas:SPType>public</eidas:SPType>"));
    assert!(request.contains("Comparison=\"minimum\""));
    assert!(request.contains(&format!("AssertionConsumerServiceURL=\"{}\"", gw.url("/.aisgate/callback/nia"))));
}

#[tokio::test]
async fn nia_login_by_post_binding_with_signed_requests() {
    let gw = gateway("sso_binding = \"post\"\nsign_requests = true").await;
    let start = gw.navigate("/.aisgate/login?return=%2Fdesk&provider=nia", None).await;
    assert_eq!(start.status(), 200, "POST binding: an auto-submit page");
    let page = start.text().await.unwrap();
    assert!(!page.contains("<script"), "no inline script");
    assert!(page.contains("name=\"SAMLRequest\"") && page.contains("name=\"RelayState\""));
    let cookie = login(&gw).await;
    assert_eq!(upstream_headers(&gw, &cookie).await.status(), 200);
    assert_eq!(sim(&gw).knobs().last_binding, Some(("post", true)));
}

#[tokio::test]
async fn caais_embedded_signature_rides_inside_the_deflated_redirect() {
    let gw = gateway("sign_requests = true\nredirect_signature = \"embedded\"").await;
    let start = gw.navigate("/.aisgate/login?return=%2Fdesk&provider=nia", None).await;
    let to = location(&start);
    assert!(query_param(&to, "SigAlg").is_none() && query_param(&to, "Signature").is_none());
    let xml = inflate(&query_param(&to, "SAMLRequest").unwrap());
    assert!(xml.contains("<ds:Signature"), "enveloped signature inside the request");
    let query_signed = gateway("sign_requests = true").await;
    let start = query_signed.navigate("/.aisgate/login?return=%2Fdesk&provider=nia", None).await;
    let to = location(&start);
    assert_eq!(query_param(&to, "SigAlg").as_deref(), Some("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"));
    assert!(query_param(&to, "Signature").is_some());
    assert!(!inflate(&query_param(&to, "SAMLRequest").unwrap()).contains("<ds:Signature"));
}

#[tokio::test]
async fn a_deflated_response_by_get_is_accepted_as_caais_sends_it() {
    use std::io::Read;
    let gw = gateway("").await;
    let p = begin(&gw).await;
    let field = |n: &str| p.form.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap();
    let xml = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, field("SAMLResponse")).unwrap();
    let mut deflated = Vec::new();
    flate2::read::DeflateEncoder::new(&xml[..], flate2::Compression::default()).read_to_end(&mut deflated).unwrap();
    let value = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, deflated);
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("SAMLResponse", &value)
        .append_pair("RelayState", &field("RelayState"))
        .finish();
    let resp = gw.client.get(format!("{}?{query}", p.acs)).header("cookie", &p.cookie).send().await.unwrap();
    assert_eq!(resp.status(), 302, "{}", resp.text().await.unwrap_or_default());
}

#[tokio::test]
async fn force_authn_age_threshold_and_attributes_come_from_config() {
    let gw = gateway("force_authn = true\nrequested_attributes = [\"PersonIdentifier\", \"IsAgeOver\"]\nis_age_over = 21\nloa_comparison = \"exact\"").await;
    begin(&gw).await;
    let request = sim(&gw).knobs().last_authn_request.clone().unwrap();
    assert!(request.contains("ForceAuthn=\"true\""));
    assert!(request.contains("<eidas:AttributeValue>21</eidas:AttributeValue>"), "{request}");
    assert!(request.contains("Comparison=\"exact\""));
    assert!(!request.contains("CurrentFamilyName"));
}

// ---------------------------------------------------------------------------
// Refusals at the ACS
// ---------------------------------------------------------------------------

#[tokio::test]
async fn acs_post_without_a_pre_login_cookie_is_refused() {
    let gw = gateway("").await;
    let p = begin(&gw).await;
    assert_refused(deliver(&gw, &p, None).await, 400, NOT_INITIATED, "no cookie").await;
}

#[tokio::test]
async fn acs_post_with_another_browsers_pre_login_cookie_is_refused() {
    let gw = gateway("").await;
    let victim = begin(&gw).await;
    let attacker = begin(&gw).await;
    // The attacker's response delivered with the victim's cookie: InResponseTo differs.
    assert_refused(deliver(&gw, &attacker, Some(&victim.cookie)).await, 400, LOGIN_FAILED, "other request").await;
    let forged = "aisgate_login=forged.value";
    assert_refused(deliver(&gw, &victim, Some(forged)).await, 400, NOT_INITIATED, "forged cookie").await;
}

#[tokio::test]
async fn a_response_for_one_provider_at_another_providers_acs_is_refused() {
    let gw = gateway("").await;
    let p = begin(&gw).await;
    let resp = gw
        .client
        .post(gw.url("/.aisgate/callback/jip"))
        .form(&p.form)
        .header("cookie", &p.cookie)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_refused(resp, 400, NOT_INITIATED, "mix-up").await;
}

#[tokio::test]
async fn a_replayed_response_is_refused() {
    let gw = gateway("").await;
    let p = begin(&gw).await;
    assert_eq!(deliver(&gw, &p, Some(&p.cookie)).await.status(), 302);
    // Same response, a fresh pending login whose request ID differs: refused either way.
    let again = begin(&gw).await;
    let replay = Pending { cookie: again.cookie, acs: p.acs.clone(), form: p.form.clone() };
    assert_refused(deliver(&gw, &replay, Some(&replay.cookie)).await, 400, LOGIN_FAILED, "replay").await;
}

#[tokio::test]
async fn a_response_with_a_failed_status_shows_the_login_failed_page() {
    let gw = gateway("").await;
    sim(&gw).knobs().edit = Some(Box::new(|s| s.status = "urn:oasis:names:tc:SAML:2.0:status:Responder".to_owned()));
    let p = begin(&gw).await;
    assert_refused(deliver(&gw, &p, Some(&p.cookie)).await, 400, LOGIN_FAILED, "status").await;
    assert!(metrics(&gw).await.contains("aisgate_saml_message_rejected_total{provider=\"nia\"} 1"));
}

/// Issue 15 items 1 and 4b: malformed Responses (not base64, not XML, a DTD) and a ~190 KB
/// Response with a hundred signatures are refused as a failed login (400, not an outage), and
/// every one is counted in `aisgate_saml_message_rejected_total` (malformed ones were not).
#[tokio::test]
async fn every_refused_response_is_counted_malformed_and_hostile_ones_included() {
    use base64::Engine;
    let b64 = |x: &str| base64::engine::general_purpose::STANDARD.encode(x);
    let gw = gateway("").await;
    let mut refused = 0;
    for (label, reason) in [
        ("not base64", "encoding"),
        ("not XML", "not_well_formed"),
        ("DOCTYPE", "doctype"),
        ("hostile", "too_many_signatures"),
    ] {
        let mut p = begin(&gw).await;
        let field = p.form.iter_mut().find(|(k, _)| k == "SAMLResponse").unwrap();
        field.1 = match label {
            "not base64" => "%%%-not-base64".to_owned(),
            "not XML" => b64("<samlp:Response><unclosed></samlp:Response>"),
            "DOCTYPE" => b64("<!DOCTYPE r [<!ENTITY e \"x\">]><r>&e;</r>"),
            _ => {
                let genuine =
                    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(&field.1).unwrap()).unwrap();
                let start = genuine.find("<ds:Signature").unwrap();
                let end = genuine.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
                let signature = &genuine[start..end];
                let xml = genuine.replacen(signature, &signature.repeat(100), 1);
                assert!(xml.len() > 150_000, "{}", xml.len());
                b64(&xml)
            }
        };
        assert_refused(deliver(&gw, &p, Some(&p.cookie)).await, 400, LOGIN_FAILED, label).await;
        refused += 1;
        let text = metrics(&gw).await;
        let expect = format!("aisgate_saml_message_rejected_total{{provider=\"nia\"}} {refused}");
        assert!(text.contains(&expect), "{label} counted");
        let by_reason = format!("aisgate_login_refusals_total{{provider=\"nia\",reason=\"{reason}\"}} 1");
        assert!(text.contains(&by_reason), "{label}: {by_reason} missing");
    }
}

#[tokio::test]
async fn a_response_below_the_requested_loa_is_refused() {
    let gw = gateway("").await;
    sim(&gw).knobs().edit = Some(Box::new(|s| s.authn_context = "http://eidas.europa.eu/LoA/low".to_owned()));
    let p = begin(&gw).await;
    assert_refused(deliver(&gw, &p, Some(&p.cookie)).await, 400, LOGIN_FAILED, "low LoA").await;
}

/// A gateway whose `/desk/secure` needs LoA high while NIA logins ask for substantial (the stack default).
async fn step_up_gateway() -> Gateway {
    logs();
    let apps = format!("{APPS}\n[[app.rule]]\npath_prefix = \"/desk/secure\"\nmin_loa = \"high\"\n");
    Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        apps: Some(apps),
        saml: Some(SamlStackProvider::default()),
        ..Default::default()
    })
    .await
}

/// Follows a step-up redirect at the simulator and delivers its answer.
async fn step_up(gw: &Gateway, cookie: &str) -> reqwest::Response {
    let step = gw.navigate("/desk/secure", Some(cookie)).await;
    assert_eq!(step.status(), 302, "step-up instead of 403");
    let login_cookie = format!("aisgate_login={}", set_cookie(&step, "aisgate_login").expect("pre-login cookie"));
    let answer = gw.client.get(location(&step)).send().await.unwrap();
    let request = sim(gw).knobs().last_authn_request.clone().unwrap_or_default();
    assert!(
        request.contains("Comparison=\"minimum\"") && request.contains("http://eidas.europa.eu/LoA/high"),
        "{request}"
    );
    let (acs, form) = parse_form(&answer.text().await.unwrap());
    gw.client.post(acs).form(&form).header("cookie", format!("{login_cookie}; {cookie}")).send().await.unwrap()
}

#[tokio::test]
async fn a_route_needing_a_higher_loa_steps_up_at_nia_and_replaces_the_session() {
    let gw = step_up_gateway().await;
    let low = login(&gw).await;
    let h: serde_json::Value = upstream_headers(&gw, &low).await.json().await.unwrap();
    assert_eq!(h["headers"]["x-auth-loa"], "substantial");
    let done = step_up(&gw, &low).await;
    assert_eq!(done.status(), 302, "ACS completes the step-up");
    assert_eq!(location(&done), "/desk/secure");
    let high = format!("aisgate_session={}", set_cookie(&done, "aisgate_session").expect("new session"));
    assert_ne!(high, low, "a fresh session id");
    let resp = gw.client.get(gw.url("/desk/secure")).header("cookie", &high).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let h: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(h["headers"]["x-auth-loa"], "high");
}

#[tokio::test]
async fn a_step_up_answered_with_the_old_loa_is_refused() {
    let gw = step_up_gateway().await;
    let low = login(&gw).await;
    sim(&gw).knobs().edit = Some(Box::new(|s| s.authn_context = "http://eidas.europa.eu/LoA/substantial".to_owned()));
    let done = step_up(&gw, &low).await;
    assert_eq!(done.status(), 400, "achieved LoA below the step-up request");
    assert!(set_cookie(&done, "aisgate_session").is_none(), "no new session");
}

/// An IdP-initiated Response as the simulator would send it unasked (no InResponseTo
/// anywhere), carrying `relay_state`.
async fn unsolicited(gw: &Gateway, relay_state: &str) -> Pending {
    sim(gw).knobs().edit = Some(Box::new(|s| {
        s.in_response_to = None;
        s.sc_in_response_to = None;
    }));
    let mut p = begin(gw).await;
    for (name, value) in &mut p.form {
        if name == "RelayState" {
            *value = relay_state.to_owned();
        }
    }
    p
}

#[tokio::test]
async fn an_unsolicited_response_logs_in_only_when_allowed_and_only_if_it_answers_no_request() {
    let gw = gateway("dangerous.allow_unsolicited = true").await;
    // A Response that claims to answer a request (another browser's) is refused without the
    // pre-login cookie: only a truly IdP-initiated one is accepted.
    let p = begin(&gw).await;
    assert_refused(deliver(&gw, &p, None).await, 400, LOGIN_FAILED, "solicited response without the cookie").await;
    // RelayState names the local target.
    let done = deliver(&gw, &unsolicited(&gw, "/desk/from-idp").await, None).await;
    assert_eq!(done.status(), 302, "IdP-initiated login accepted");
    assert_eq!(location(&done), "/desk/from-idp");
    let cookie = format!("aisgate_session={}", set_cookie(&done, "aisgate_session").expect("session"));
    let h: serde_json::Value = upstream_headers(&gw, &cookie).await.json().await.unwrap();
    assert_eq!(h["headers"]["x-auth-provider"], "nia");
    // An absolute RelayState is no open redirect: the login lands on `/`.
    let done = deliver(&gw, &unsolicited(&gw, "https://evil.example/").await, None).await;
    assert_eq!(done.status(), 302);
    assert_eq!(location(&done), "/");
}

#[tokio::test]
async fn an_unsolicited_response_is_refused_by_default() {
    let gw = gateway("").await;
    let p = unsolicited(&gw, "/desk").await;
    assert_refused(deliver(&gw, &p, None).await, 400, NOT_INITIATED, "unsolicited, not allowed").await;
}

#[tokio::test]
async fn a_pending_request_past_its_ttl_is_refused() {
    let gw = gateway("pending_request_ttl_secs = 1").await;
    let p = begin(&gw).await;
    gw.clock.advance(std::time::Duration::from_millis(2100));
    assert_refused(deliver(&gw, &p, Some(&p.cookie)).await, 400, LOGIN_FAILED, "expired request").await;
    // The pending login was single use: delivering again finds nothing.
    assert_refused(deliver(&gw, &p, Some(&p.cookie)).await, 400, EXPIRED, "used").await;
}

#[tokio::test]
async fn a_nia_login_may_outlast_the_gateways_login_ttl_up_to_the_providers_own() {
    // nia.md §8.4: NIA queues logins for tens of minutes; the provider's 3600 s wins over a
    // short [session] login_ttl_secs for its own logins, cookie included.
    logs();
    let gw = Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        apps: Some(APPS.to_owned()),
        session_extra: "login_ttl_secs = 1\n".to_owned(),
        saml: Some(SamlStackProvider { extra: "pending_request_ttl_secs = 3600".to_owned(), ..Default::default() }),
        ..Default::default()
    })
    .await;
    let start = gw.navigate("/.aisgate/login?return=%2Fdesk&provider=nia", None).await;
    let cookie = raw_set_cookie(&start, "aisgate_login").expect("pre-login cookie");
    assert!(cookie.contains("Max-Age=3600"), "{cookie}");
    let p = begin(&gw).await;
    // A KAAS login started at the same time keeps the gateway's 1 s, although the store now
    // holds pending logins for an hour.
    let kaas = gw.navigate("/.aisgate/login?return=%2Fdesk&provider=jip", None).await;
    let kaas_cookie = format!("aisgate_login={}", set_cookie(&kaas, "aisgate_login").unwrap());
    let form = gw.client.post(location(&kaas)).form(&[("user", "0")]).send().await.unwrap();
    let kaas_callback = location(&form);
    gw.clock.advance(std::time::Duration::from_millis(2100));
    let done = deliver(&gw, &p, Some(&p.cookie)).await;
    assert_eq!(done.status(), 302, "the queued login completes after login_ttl_secs");
    let late = gw.client.get(&kaas_callback).header("cookie", &kaas_cookie).header("accept", "text/html");
    assert_refused(late.send().await.unwrap(), 400, EXPIRED, "KAAS login past login_ttl_secs").await;
}

// ---------------------------------------------------------------------------
// Logout
// ---------------------------------------------------------------------------

#[tokio::test]
async fn sp_initiated_logout_sends_a_signed_logout_request_and_checks_the_response() {
    let gw = gateway("").await;
    let cookie = login(&gw).await;
    let out = gw.client.post(gw.url("/logout")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(out.status(), 302);
    let to = location(&out);
    assert!(to.starts_with(&format!("{}/slo?SAMLRequest=", sim(&gw).base)), "{to}");
    assert!(query_param(&to, "Signature").is_some(), "signed by HTTP-Redirect");
    // The session is gone before the IdP answers.
    assert_eq!(upstream_headers(&gw, &cookie).await.status(), 401);
    let idp = gw.client.get(&to).send().await.unwrap();
    let back = location(&idp);
    assert!(back.starts_with(&gw.url("/.aisgate/saml/nia/slo?SAMLResponse=")), "{back}");
    let request = sim(&gw).knobs().last_logout_request.clone().unwrap();
    assert!(request.contains("CZ/CZ/2e3883ee-7e0d-47cb-8fee-2ea231a58ee6") && request.contains("<samlp:SessionIndex>"));
    let done = gw.client.get(&back).send().await.unwrap();
    assert_eq!(done.status(), 302);
    assert_eq!(location(&done), "/.aisgate/logged-out");
    // The LogoutResponse was single use.
    assert_eq!(gw.client.get(&back).send().await.unwrap().status(), 400);
}

#[tokio::test]
async fn a_logout_response_to_no_pending_request_is_refused() {
    let gw = gateway("").await;
    let cookie = login(&gw).await;
    sim(&gw).knobs().logout_in_response_to = Some("_not_ours".to_owned());
    let out = gw.client.post(gw.url("/logout")).header("cookie", &cookie).send().await.unwrap();
    let back = location(&gw.client.get(location(&out)).send().await.unwrap());
    let refused = gw.client.get(&back).header("accept", "text/html").send().await.unwrap();
    assert_eq!(refused.status(), 400);
    assert_logged(&refused, "stray LogoutResponse");
    assert!(refused.text().await.unwrap().contains("<html"), "a user page");
}

#[tokio::test]
async fn idp_initiated_logout_ends_the_session_and_answers() {
    let gw = gateway("").await;
    let cookie = login(&gw).await;
    let h: serde_json::Value = upstream_headers(&gw, &cookie).await.json().await.unwrap();
    assert_eq!(h["headers"]["x-auth-provider"], "nia");
    let session_index = sim(&gw).knobs().last_session_index.clone();
    let (url, id) =
        sim(&gw).logout_request_url("CZ/CZ/2e3883ee-7e0d-47cb-8fee-2ea231a58ee6", session_index.as_deref()).unwrap();
    let answer = gw.client.get(&url).send().await.unwrap();
    assert_eq!(answer.status(), 302);
    let reply = location(&answer);
    assert!(reply.starts_with(&format!("{}/slo?SAMLResponse=", sim(&gw).base)), "{reply}");
    assert_eq!(query_param(&reply, "RelayState").as_deref(), Some("idp-rs"));
    let xml = inflate(&query_param(&reply, "SAMLResponse").unwrap());
    assert!(xml.contains(&format!("InResponseTo=\"{id}\"")) && xml.contains("status:Success"), "{xml}");
    assert_eq!(upstream_headers(&gw, &cookie).await.status(), 401, "the session is gone");
}

#[tokio::test]
async fn an_unsigned_idp_logout_request_is_refused() {
    let gw = gateway("").await;
    let cookie = login(&gw).await;
    let (url, _) = sim(&gw).logout_request_url("CZ/CZ/2e3883ee-7e0d-47cb-8fee-2ea231a58ee6", None).unwrap();
    let unsigned = url.split("&SigAlg=").next().unwrap().to_owned();
    let resp = gw.client.get(&unsigned).header("accept", "text/html").send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_logged(&resp, "unsigned LogoutRequest");
    let body = sim(&gw).unsigned_logout_request("CZ/CZ/2e3883ee-7e0d-47cb-8fee-2ea231a58ee6", Some("_x"));
    let back_channel = gw
        .client
        .post(gw.url("/.aisgate/saml/nia/slo"))
        .header("content-type", "text/xml")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(back_channel.status(), 400, "unsigned back channel refused unless enabled");
    assert_eq!(upstream_headers(&gw, &cookie).await.status(), 200, "the session survives");
}

#[tokio::test]
async fn enviam_style_unsigned_back_channel_logout_needs_the_session_index() {
    let gw = gateway("dangerous.accept_unsigned_logout_requests = true").await;
    let cookie = login(&gw).await;
    let post = |body: String| gw.client.post(gw.url("/.aisgate/saml/nia/slo")).form(&[("logoutRequest", body)]).send();
    let without_index = sim(&gw).unsigned_logout_request("CZ/CZ/2e3883ee-7e0d-47cb-8fee-2ea231a58ee6", None);
    assert_eq!(post(without_index).await.unwrap().status(), 400);
    let wrong_index = sim(&gw).unsigned_logout_request("CZ/CZ/2e3883ee-7e0d-47cb-8fee-2ea231a58ee6", Some("_other"));
    assert_eq!(post(wrong_index).await.unwrap().status(), 200, "EnviIAM ignores the answer");
    assert_eq!(upstream_headers(&gw, &cookie).await.status(), 200, "another session index ends nothing");
    let index = sim(&gw).knobs().last_session_index.clone();
    let right = sim(&gw).unsigned_logout_request("CZ/CZ/2e3883ee-7e0d-47cb-8fee-2ea231a58ee6", index.as_deref());
    // A bare XML body works as well as the CAS form field.
    let resp = gw
        .client
        .post(gw.url("/.aisgate/saml/nia/slo"))
        .header("content-type", "text/xml")
        .body(right)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(upstream_headers(&gw, &cookie).await.status(), 401, "the session with that index ended");
}

/// The WARN line logged for the request that got `resp` names `refusal` (its log text).
fn assert_refusal_logged(resp: &reqwest::Response, refusal: Refusal) {
    let id = resp.headers().get("x-request-id").expect("X-Request-Id").to_str().unwrap().to_owned();
    let text = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    let wanted = refusal.to_string();
    assert!(
        text.lines().any(|l| l.contains(&id) && l.contains("WARN") && l.contains(&wanted)),
        "no WARN naming {wanted:?} ({}) for request {id}",
        refusal.label()
    );
}

const BSI: &str = "CZ/CZ/2e3883ee-7e0d-47cb-8fee-2ea231a58ee6";

/// A LogoutRequest from the simulated IdP, shaped by the test, signed by HTTP-Redirect.
fn idp_logout_request(gw: &Gateway, id: &str, name_id: &str, destination: &str, instant: Option<u64>) -> String {
    let subject = LogoutSubject {
        name_id: name_id.to_owned(),
        format: None,
        name_qualifier: None,
        sp_name_qualifier: None,
        session_index: None,
    };
    let xml = logout::build_request(id, instant.unwrap_or(0), destination, sim(gw).entity_id(), &subject);
    let xml = match instant {
        Some(_) => xml,
        None => xml.replace(" IssueInstant=\"1970-01-01T00:00:00Z\"", ""),
    };
    sim(gw).redirect_signed(&xml).unwrap()
}

/// The status codes of the LogoutResponse a front-channel reply carries.
fn reply_status(resp: &reqwest::Response) -> String {
    inflate(&query_param(&location(resp), "SAMLResponse").unwrap())
}

/// SAML core §3.2.2: a LogoutRequest addressed to another SP is discarded (it used to end the
/// session).
#[tokio::test]
async fn an_idp_logout_request_for_another_destination_is_refused() {
    let gw = gateway("").await;
    let cookie = login(&gw).await;
    let now = aisgate::session::now_unix();
    let url = idp_logout_request(&gw, "_lr_foreign", BSI, "https://other-sp.example/slo", Some(now));
    let resp = gw.client.get(&url).header("accept", "text/html").send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_refusal_logged(&resp, Refusal::Destination);
    assert_eq!(upstream_headers(&gw, &cookie).await.status(), 200, "the session survives");
}

/// A captured NameID-only logout URL ends a later session of the same user no more.
#[tokio::test]
async fn a_replayed_idp_logout_request_is_refused() {
    let gw = gateway("").await;
    let first = login(&gw).await;
    let now = aisgate::session::now_unix();
    let url = idp_logout_request(&gw, "_lr_once", BSI, sim(&gw).sp_slo_url(), Some(now));
    assert_eq!(gw.client.get(&url).send().await.unwrap().status(), 302);
    assert_eq!(upstream_headers(&gw, &first).await.status(), 401, "the first use logs out");
    let second = login(&gw).await;
    let replay = gw.client.get(&url).header("accept", "text/html").send().await.unwrap();
    assert_eq!(replay.status(), 400);
    assert_refusal_logged(&replay, Refusal::Replayed);
    assert_eq!(upstream_headers(&gw, &second).await.status(), 200, "the later session survives");
}

/// IssueInstant must be present, an xs:dateTime and within the clock skew (180 s) of now.
#[tokio::test]
async fn an_idp_logout_request_without_a_fresh_issue_instant_is_refused() {
    let gw = gateway("").await;
    let cookie = login(&gw).await;
    let now = aisgate::session::now_unix();
    let slo = sim(&gw).sp_slo_url().to_owned();
    for (id, instant, refusal) in [
        ("_lr_none", None, Refusal::IssueInstant),
        ("_lr_old", Some(now - 600), Refusal::Stale),
        ("_lr_future", Some(now + 600), Refusal::IssuedInFuture),
    ] {
        let url = idp_logout_request(&gw, id, BSI, &slo, instant);
        let resp = gw.client.get(&url).header("accept", "text/html").send().await.unwrap();
        assert_eq!(resp.status(), 400, "{}", refusal.label());
        assert_refusal_logged(&resp, refusal);
    }
    assert_eq!(upstream_headers(&gw, &cookie).await.status(), 200, "the session survives");
}

/// The HTTP-POST binding: an enveloped-signed LogoutRequest addressed elsewhere is refused;
/// one carrying a pile of extra signatures is refused by count before any verification.
#[tokio::test]
async fn a_posted_idp_logout_request_is_held_to_destination_and_signature_limits() {
    let gw = gateway("").await;
    let cookie = login(&gw).await;
    let idp = &sim(&gw).idp;
    let key =
        aisgate::provider::saml::xmlsec::SigningKey::from_pem(idp.key_pem.as_bytes(), idp.cert_pem.as_bytes()).unwrap();
    let now = aisgate::session::now_unix();
    let subject = LogoutSubject {
        name_id: BSI.to_owned(),
        format: None,
        name_qualifier: None,
        sp_name_qualifier: None,
        session_index: None,
    };
    let post = |xml: String| {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(xml);
        gw.client
            .post(gw.url("/.aisgate/saml/nia/slo"))
            .header("accept", "text/html")
            .form(&[("SAMLRequest", b64)])
            .send()
    };
    let foreign =
        logout::build_request("_lp_foreign", now, "https://other-sp.example/slo", sim(&gw).entity_id(), &subject);
    let resp = post(key.sign_enveloped(&foreign).unwrap()).await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_refusal_logged(&resp, Refusal::Destination);
    let ours = logout::build_request("_lp_many", now, sim(&gw).sp_slo_url(), sim(&gw).entity_id(), &subject);
    let signed = key.sign_enveloped(&ours).unwrap();
    let start = signed.find("<ds:Signature").unwrap();
    let end = signed.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let many = signed.replacen(&signed[start..end], &signed[start..end].repeat(50), 1);
    let resp = post(many).await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_refusal_logged(&resp, Refusal::TooComplex(Amplifier::Signatures));
    assert_eq!(upstream_headers(&gw, &cookie).await.status(), 200, "the session survives both");
}

/// NIA's NameID need not be the PersonIdentifier (the session subject): a NameID-only
/// LogoutRequest used to answer Success and leave the session. Now the NameID is translated to
/// the subject it logged in as; a NameID no login here had is answered Responder /
/// UnknownPrincipal, not Success.
#[tokio::test]
async fn a_name_id_only_logout_request_ends_the_session_of_that_name_id_or_says_it_cannot() {
    let gw = gateway("").await;
    sim(&gw).knobs().edit = Some(Box::new(|s| s.name_id = "nameid-7f3a".to_owned()));
    let cookie = login(&gw).await;
    let h: serde_json::Value = upstream_headers(&gw, &cookie).await.json().await.unwrap();
    assert_eq!(h["headers"]["x-auth-subject"], BSI, "the subject is the PersonIdentifier, not the NameID");
    let now = aisgate::session::now_unix();
    let slo = sim(&gw).sp_slo_url().to_owned();
    let unknown = idp_logout_request(&gw, "_lr_unknown", "nameid-unknown", &slo, Some(now));
    let resp = gw.client.get(&unknown).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let answer = reply_status(&resp);
    assert!(answer.contains("status:Responder") && answer.contains("status:UnknownPrincipal"), "{answer}");
    assert!(!answer.contains("status:Success"), "{answer}");
    assert_eq!(upstream_headers(&gw, &cookie).await.status(), 200, "nobody's session ended");
    let ours = idp_logout_request(&gw, "_lr_ours", "nameid-7f3a", &slo, Some(now));
    let resp = gw.client.get(&ours).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    assert!(reply_status(&resp).contains("status:Success"));
    assert_eq!(upstream_headers(&gw, &cookie).await.status(), 401, "the NameID's session ended");
}

// ---------------------------------------------------------------------------
// Metadata
// ---------------------------------------------------------------------------

#[tokio::test]
async fn sp_metadata_is_served_under_the_gateway_prefix() {
    let gw = gateway("").await;
    let resp = gw.client.get(gw.url("/.aisgate/saml/nia/metadata")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/samlmetadata+xml");
    let xml = resp.text().await.unwrap();
    assert!(xml.contains("entityID=\"https://sp.aisgate.test/app/\""));
    assert!(xml.contains("use=\"signing\"") && xml.contains("use=\"encryption\""));
    assert!(xml.contains(&format!("Location=\"{}\"", gw.url("/.aisgate/callback/nia"))));
    assert!(xml.contains(&format!("Location=\"{}\"", gw.url("/.aisgate/saml/nia/slo"))));
    assert_eq!(gw.client.get(gw.url("/.aisgate/saml/jip/metadata")).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn cli_prints_the_same_sp_metadata() {
    let gw = gateway("").await;
    let served = gw.client.get(gw.url("/.aisgate/saml/nia/metadata")).send().await.unwrap().text().await.unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aisgate"))
        .args(["saml-metadata", "--config"])
        .arg(gw.stack_dir.join("aisgate.toml"))
        .args(["--provider", "nia"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), served);
    let unknown = std::process::Command::new(env!("CARGO_BIN_EXE_aisgate"))
        .args(["saml-metadata", "--config"])
        .arg(gw.stack_dir.join("aisgate.toml"))
        .args(["--provider", "jip"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
}

#[tokio::test]
async fn a_failed_metadata_refresh_keeps_the_last_good_copy() {
    let gw = gateway("metadata_refresh_secs = 1").await;
    login(&gw).await;
    sim(&gw).knobs().metadata_outage = true;
    let before = sim(&gw).knobs().metadata_fetches;
    while sim(&gw).knobs().metadata_fetches < before + 2 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(metrics(&gw).await.contains("aisgate_saml_metadata_up{provider=\"nia\"} 0"));
    login(&gw).await;
    assert!(metrics(&gw).await.contains("aisgate_saml_metadata_valid_until_seconds{provider=\"nia\"} 1"));
}

#[tokio::test]
async fn metadata_with_a_bad_signature_is_refused() {
    let gw = gateway("metadata_refresh_secs = 1").await;
    login(&gw).await;
    for signer in [MetadataSigner::Stranger, MetadataSigner::Unsigned] {
        sim(&gw).knobs().metadata_signer = signer;
        let before = sim(&gw).knobs().metadata_fetches;
        while sim(&gw).knobs().metadata_fetches < before + 2 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(metrics(&gw).await.contains("aisgate_saml_metadata_up{provider=\"nia\"} 0"), "{signer:?} refused");
        // The last good (correctly signed) copy stays in use.
        login(&gw).await;
    }
    let doc = sim(&gw).metadata_xml().unwrap();
    assert!(!doc.contains("<ds:Signature"), "the simulator really served it unsigned");
}

// ---------------------------------------------------------------------------
// Refusals are not outages (issue 15 items 7, 8)
// ---------------------------------------------------------------------------

/// Rewrites the delivered `SAMLResponse` XML with `edit` (the browser controls it).
fn tamper(p: &mut Pending, edit: impl Fn(String) -> String) {
    use base64::Engine as _;
    let b64 = &base64::engine::general_purpose::STANDARD;
    let field = p.form.iter_mut().find(|(k, _)| k == "SAMLResponse").expect("SAMLResponse field");
    let xml = String::from_utf8(b64.decode(&field.1).unwrap()).unwrap();
    field.1 = b64.encode(edit(xml));
}

/// A tampered Response from the browser is a refusal: the 400 login-failed page, counted as
/// `result="refused"` with its reason, logged as `login refused: …` — never a 503 or an
/// `error` (which would let anyone fire outage alerts).
async fn assert_refusal_not_outage(gw: &Gateway, resp: reqwest::Response, reason: &str, label: &str) {
    let id = support::logs::request_id(&resp);
    assert_refused(resp, 400, LOGIN_FAILED, label).await;
    let line = support::logs::line_with(&id, "login refused:");
    assert!(line.contains("WARN") && line.contains(&format!("reason=\"{reason}\"")), "{label}: {line}");
    assert!(!line.contains("identity provider rejected") && !line.contains("unavailable"), "{label}: {line}");
    let m = metrics(gw).await;
    assert!(m.contains("aisgate_logins_total{provider=\"nia\",result=\"refused\"} 1"), "{label}: {m}");
    assert!(m.contains("aisgate_logins_total{provider=\"nia\",result=\"error\"} 0"), "{label}: {m}");
    let series = format!("aisgate_login_refusals_total{{provider=\"nia\",reason=\"{reason}\"}} 1");
    assert!(m.contains(&series), "{label}: {series} missing\n{m}");
}

#[tokio::test]
async fn a_response_with_a_doctype_is_refused_not_an_outage() {
    let gw = gateway("").await;
    let mut p = begin(&gw).await;
    tamper(&mut p, |xml| {
        let body = xml.strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>").unwrap_or(&xml).to_owned();
        format!("<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY e \"x\">]>{body}")
    });
    let resp = deliver(&gw, &p, Some(&p.cookie)).await;
    assert_refusal_not_outage(&gw, resp, "doctype", "DOCTYPE").await;
}

#[tokio::test]
async fn a_response_with_a_bad_signature_is_refused_not_an_outage() {
    let gw = gateway("").await;
    let mut p = begin(&gw).await;
    tamper(&mut p, |xml| {
        // Flip one character of the Response's signature value.
        let at = xml.find("SignatureValue>").expect("a signed Response") + "SignatureValue>".len();
        let mut bytes = xml.into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    });
    let resp = deliver(&gw, &p, Some(&p.cookie)).await;
    assert_refusal_not_outage(&gw, resp, "signature", "bad signature").await;
}

#[tokio::test]
async fn a_non_success_status_is_the_idps_no_counted_as_failure() {
    let gw = gateway("").await;
    sim(&gw).knobs().edit = Some(Box::new(|s| s.status = "urn:oasis:names:tc:SAML:2.0:status:Responder".to_owned()));
    let p = begin(&gw).await;
    let resp = deliver(&gw, &p, Some(&p.cookie)).await;
    let id = support::logs::request_id(&resp);
    assert_refused(resp, 400, LOGIN_FAILED, "status").await;
    let line = support::logs::line_with(&id, "login denied by the identity provider");
    assert!(line.contains("reason=\"idp_status\""), "{line}");
    let m = metrics(&gw).await;
    assert!(m.contains("aisgate_logins_total{provider=\"nia\",result=\"failure\"} 1"), "{m}");
    assert!(m.contains("aisgate_logins_total{provider=\"nia\",result=\"refused\"} 0"), "{m}");
}
