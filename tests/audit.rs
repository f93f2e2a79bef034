//! The audit trail end to end: a real gateway with `[audit] file` in front of the simulated
//! JIP/KAAS and CAAIS IdPs. Logins (good and refused), a denied rule, a step-up, logouts (by
//! the user and by the IdP's back channel) and session ends each leave one JSON line with the
//! reason label — and nothing the file must not hold: no cookie value, login token, subject
//! or name.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aisgate::sim::stack::StackOptions;
use serde_json::Value;
use support::{header_echo, location, set_cookie, Gateway};

const AUDIT: &str = "file = \"{dir}/audit.jsonl\"\n";

fn audit_file(gw: &Gateway) -> PathBuf {
    gw.stack_dir.join("audit.jsonl")
}

/// The audit lines once at least `n` are written (the writer thread is asynchronous; polls
/// with a deadline).
async fn audit_lines(gw: &Gateway, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(audit_file(gw)).unwrap_or_default();
        let lines: Vec<Value> =
            text.lines().map(|l| serde_json::from_str(l).expect("one JSON object a line")).collect();
        if lines.len() >= n || Instant::now() > deadline {
            assert!(lines.len() >= n, "expected {n} audit lines, got {}: {text}", lines.len());
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn events(lines: &[Value]) -> Vec<(String, String)> {
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    lines.iter().map(|l| (text(&l["event"]), text(l.get("reason").unwrap_or(&Value::Null)))).collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(e, r)| ((*e).to_owned(), (*r).to_owned())).collect()
}

const KAAS_APPS: &str = r#"
[[app]]
name = "echo"
upstream = "{upstream}"
providers = ["jip"]
logout_paths = ["/logout"]

[[app.rule]]
path_prefix = "/reports"
any_role = ["REFERENT"]

[[app.rule]]
path_prefix = "/admin"
any_role = ["ADMIN"]
"#;

/// The session key of every gateway in this file. Log labels (the audit's `session` and `user`)
/// are keyed process-wide by the last gateway built (one gateway per process in production),
/// and this file's tests run in parallel in one process: with a fresh random key per gateway,
/// a gateway started by another test between two events of one test changes the labels
/// under it (`step_up_replaced_session_and_back_channel_logouts_are_audited` failed so in CI).
const SESSION_KEY: &str = "YXVkaXQtdGVzdHMtc2Vzc2lvbi1rZXktMDEyMzQ1Njc4OWFiY2Q=";

/// Stack options with this file's shared session key (see [`SESSION_KEY`]).
fn same_labels() -> StackOptions {
    StackOptions { session_key: Some(SESSION_KEY.to_owned()), ..Default::default() }
}

async fn kaas_gateway() -> Gateway {
    Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        apps: Some(KAAS_APPS.to_owned()),
        audit: AUDIT.to_owned(),
        session_extra: "idle_timeout_secs = 600\n".to_owned(),
        ..same_labels()
    })
    .await
}

/// Redeems a KAAS callback URL in the browser holding `login_cookie`.
async fn callback(gw: &Gateway, url: &str, login_cookie: &str) -> reqwest::Response {
    gw.client.get(url).header("cookie", login_cookie).header("accept", "text/html").send().await.unwrap()
}

#[tokio::test]
async fn kaas_logins_refusals_a_denied_rule_logout_and_idle_end_are_audited_without_secrets() {
    let gw = kaas_gateway().await;

    // 1. A callback without the pre-login cookie: the gateway's own refusal.
    let (url, _) = gw.begin_login("/", 0).await;
    let token = url.split("sessionId=").nth(1).unwrap().to_owned();
    let resp = gw.client.get(&url).header("accept", "text/html").send().await.unwrap();
    assert_eq!(resp.status(), 400);
    // 2. A malformed token in the right browser: the provider's refusal.
    let (url, login_cookie) = gw.begin_login("/", 0).await;
    let bad = format!("{}sessionId=not-a-token", url.split("sessionId=").next().unwrap());
    assert_eq!(callback(&gw, &bad, &login_cookie).await.status(), 400);
    // 3. A good login; its request id is in the response.
    let (url, login_cookie) = gw.begin_login("/", 0).await;
    let good_token = url.split("sessionId=").nth(1).unwrap().to_owned();
    let done = callback(&gw, &url, &login_cookie).await;
    assert_eq!(done.status(), 302, "login completes");
    let login_request = done.headers()["x-request-id"].to_str().unwrap().to_owned();
    let session_value = set_cookie(&done, "aisgate_session").unwrap();
    let session = format!("aisgate_session={session_value}");
    // 4. Rule 0 lets the REFERENT in; rule 1 wants ADMIN.
    assert_eq!(gw.navigate("/reports/q1", Some(&session)).await.status(), 200);
    let denied = gw.navigate("/admin/users", Some(&session)).await;
    assert_eq!(denied.status(), 403);
    let denied_request = denied.headers()["x-request-id"].to_str().unwrap().to_owned();
    // 5. The user logs out at the app's logout path.
    let out = gw.navigate("/logout", Some(&session)).await;
    assert_eq!(out.status(), 302);
    assert_eq!(gw.navigate("/reports", Some(&session)).await.status(), 302, "logged out: login again");
    // 6. Another login, then idle past `idle_timeout_secs`.
    let (again, _) = gw.login_to("/", 1).await;
    gw.clock.advance(Duration::from_secs(601));
    assert_eq!(gw.navigate("/reports", Some(&again)).await.status(), 302, "idle session is over");

    let lines = audit_lines(&gw, 8).await;
    assert_eq!(
        events(&lines),
        pairs(&[
            ("login_failure", "no_login_cookie"),
            ("login_failure", "session_id_malformed"),
            ("login_success", "-"),
            ("access_denied", "-"),
            ("logout", "-"),
            ("session_end", "logout"),
            ("login_success", "-"),
            ("session_end", "idle"),
        ]),
        "{lines:#?}"
    );
    // The two unauthenticated navigations above only started logins: no events of their own.
    assert_eq!(lines.len(), 8, "nothing else is audited: {lines:#?}");
    for line in &lines {
        assert_eq!(line["v"], 1);
        assert!(line["ts"].as_str().unwrap().ends_with('Z'));
    }
    let (refusal, success, denial) = (&lines[1], &lines[2], &lines[3]);
    assert_eq!(refusal["result"], "refused");
    assert_eq!(refusal["provider"], "jip");
    assert_eq!(refusal["protocol"], "kaas");
    assert_eq!(refusal["client_ip"], "127.0.0.1");
    assert_eq!(success["request_id"], login_request.as_str(), "the login's request id");
    assert_eq!(success["provider"], "jip");
    assert_eq!(success["app"], "echo", "the app the login was for");
    assert!(success["protocol"].as_str().unwrap().starts_with("kaas-ws/"), "{success}");
    assert_eq!(success["organisation"], "00007064", "the IČO the user acted for");
    let user = success["user"].as_str().unwrap();
    assert!(user.starts_with("jip:") && user.len() == "jip:".len() + 12, "a keyed label: {user}");
    let session_label = success["session"].as_str().unwrap();
    assert_eq!(session_label.len(), 16, "{session_label}");
    assert_eq!(denial["request_id"], denied_request.as_str());
    assert_eq!((denial["app"].as_str(), denial["rule"].as_u64()), (Some("echo"), Some(1)), "rule 1 (/admin)");
    assert_eq!(denial["denied"], "missing_role");
    assert_eq!(denial["user"], user);
    assert_eq!((lines[4]["by"].as_str(), lines[4]["result"].as_str()), (Some("user"), Some("success")));
    assert_eq!(lines[4]["session"], session_label, "the logout names the session that ended");
    assert_eq!(lines[5]["session"], session_label);
    assert_ne!(lines[6]["user"], user, "another demo user");
    assert_eq!(lines[7]["user"], lines[6]["user"]);
    assert_eq!(lines[7]["organisation"], "00261581");

    let text = std::fs::read_to_string(audit_file(&gw)).unwrap();
    let id_part = session_value.split('.').nth(1).unwrap_or(&session_value);
    for secret in [
        session_value.as_str(),
        id_part,
        token.as_str(),
        good_token.as_str(),
        "6f1c0d2a-6b7e-4d0e-9a51-3c2b1f0e9d84", // the subject (UzivatelId)
        "Jiřina",
        "Nováková",
        "novakova",
        "jirina.novakova@example.cz",
        "Ministerstvo vnitra",
        "Dvořák",
        "REFERENT",
    ] {
        assert!(!text.contains(secret), "{secret:?} must not be in the audit file:\n{text}");
    }
}

#[tokio::test]
async fn an_audit_file_in_a_missing_directory_stops_the_gateway_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let opts =
        StackOptions { audit: format!("file = \"{}/missing/audit.jsonl\"\n", dir.path().display()), ..same_labels() };
    let err = match aisgate::sim::stack::prepare(opts).await {
        Ok(_) => panic!("the gateway must not start without its audit sink"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("[audit] file") && err.contains("missing/audit.jsonl"), "{err}");
}

const OIDC_APPS: &str = r#"
[[app]]
name = "desk"
upstream = "{upstream}"
providers = ["caais"]

[[app.rule]]
path_prefix = "/secure"
min_loa = "high"
"#;

async fn oidc_gateway(audit: &str) -> Gateway {
    let gw = Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        apps: Some(OIDC_APPS.to_owned()),
        audit: audit.to_owned(),
        oidc: vec![support::caais_provider(
            "loa = \"substantial\"\n[[provider.loa_client]]\nloa = \"high\"\nclient_id = \"MY_AIS_HIGH\"\n",
        )],
        ..same_labels()
    })
    .await;
    gw.oidc[0].knobs().extra_client_ids = vec!["MY_AIS_HIGH".into()];
    gw
}

#[tokio::test]
async fn step_up_replaced_session_and_back_channel_logouts_are_audited() {
    let gw = oidc_gateway(&format!("{AUDIT}client_ip = false\n")).await;
    let low = gw.oidc_login("caais", "/").await;
    let step = gw.navigate("/secure/page", Some(&low)).await;
    assert_eq!(step.status(), 302, "step-up");
    let high = gw.finish_oidc_login(&step, "/secure/page", Some(&low)).await;
    // A forged logout token is refused; a real one ends the session.
    let forged = gw
        .client
        .post(gw.url("/.aisgate/backchannel-logout/caais"))
        .form(&[("logout_token", "eyJhbGciOiJub25lIn0.e30.")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    let sid = gw.oidc[0].knobs().last_sid.clone().expect("the ID token carried a sid");
    let token = gw.oidc[0].logout_token(None, Some(&sid), None).unwrap();
    let resp = gw.client.post(gw.url("/.aisgate/backchannel-logout/caais")).form(&[("logout_token", &token)]).send();
    assert_eq!(resp.await.unwrap().status(), 200);
    assert_eq!(gw.navigate("/secure", Some(&high)).await.status(), 302, "ended by the IdP");

    let lines = audit_lines(&gw, 6).await;
    assert_eq!(
        events(&lines),
        pairs(&[
            ("login_success", "-"),
            ("step_up", "-"),
            ("session_end", "replaced"),
            ("login_success", "-"),
            ("logout", "logout_token_algorithm"),
            ("logout", "-"),
        ]),
        "{lines:#?}"
    );
    let (first, step_up, replaced, second) = (&lines[0], &lines[1], &lines[2], &lines[3]);
    assert_eq!((first["protocol"].as_str(), first["loa"].as_str()), (Some("oidc"), Some("substantial")));
    assert_eq!(first["app"], "desk");
    assert_eq!(
        (step_up["app"].as_str(), step_up["required_loa"].as_str(), step_up["via"].as_str()),
        (Some("desk"), Some("high"), Some("caais"))
    );
    assert_eq!(step_up["loa"], "substantial", "the LoA the user had");
    assert_eq!(replaced["session"], first["session"], "the lower session was replaced");
    assert_eq!((second["loa"].as_str(), second["required_loa"].as_str()), (Some("high"), Some("high")));
    assert_ne!(second["session"], first["session"]);
    let (refused, ended) = (&lines[4], &lines[5]);
    assert_eq!(
        (refused["by"].as_str(), refused["result"].as_str(), refused["sessions_ended"].as_u64()),
        (Some("back_channel"), Some("refused"), Some(0))
    );
    assert_eq!(
        (ended["by"].as_str(), ended["provider"].as_str(), ended["result"].as_str(), ended["sessions_ended"].as_u64()),
        (Some("back_channel"), Some("caais"), Some("success"), Some(1))
    );
    for line in &lines {
        assert!(line.get("client_ip").is_none(), "client_ip = false: {line}");
    }
    let text = std::fs::read_to_string(audit_file(&gw)).unwrap();
    for secret in [low.split('=').nth(1).unwrap(), high.split('=').nth(1).unwrap(), &token, &sid] {
        assert!(!text.contains(secret), "{secret:?} must not be in the audit file");
    }
}

#[tokio::test]
async fn a_step_up_login_that_returns_a_lower_loa_is_audited_as_loa_too_low() {
    let gw = oidc_gateway(AUDIT).await;
    let low = gw.oidc_login("caais", "/").await;
    gw.oidc[0].knobs().loa_claim = Some("substantial".into());
    let step = gw.navigate("/secure", Some(&low)).await;
    let cookie = format!("aisgate_login={}", set_cookie(&step, "aisgate_login").unwrap());
    let answer = gw.client.get(location(&step)).send().await.unwrap();
    let done = gw.client.get(location(&answer)).header("cookie", cookie).header("accept", "text/html").send();
    assert_eq!(done.await.unwrap().status(), 400);
    let lines = audit_lines(&gw, 3).await;
    assert_eq!(
        events(&lines),
        pairs(&[("login_success", "-"), ("step_up", "-"), ("login_failure", "loa_too_low")]),
        "{lines:#?}"
    );
    assert_eq!((lines[2]["result"].as_str(), lines[2]["protocol"].as_str()), (Some("refused"), Some("oidc")));
}

#[tokio::test]
async fn without_an_audit_table_no_file_is_written_and_metrics_show_zero_drops() {
    let gw = oidc_gateway("").await;
    let _ = gw.oidc_login("caais", "/").await;
    assert!(!audit_file(&gw).exists());
    let metrics = gw.client.get(format!("http://{}/metrics", gw.ops)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("aisgate_audit_dropped_total 0"), "{metrics}");
    let ready: Value = gw.client.get(format!("http://{}/readyz", gw.ops)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["audit"], serde_json::json!({"enabled": false, "healthy": true, "detail": null}));
}

#[tokio::test]
async fn an_operator_ending_a_session_is_audited_as_admin_action_and_session_end_admin() {
    use std::os::unix::fs::PermissionsExt;
    let secrets = tempfile::tempdir().unwrap();
    let token = "audit-test-admin-token-0123456789abcdef";
    let token_file = secrets.path().join("admin.token");
    std::fs::write(&token_file, token).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let gw = Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        // `[admin]` is a table of its own after the `[audit]` lines.
        audit: format!("{AUDIT}\n[admin]\ntoken_file = \"{}\"\n", token_file.display()),
        ..same_labels()
    })
    .await;
    let (session, _) = gw.login_to("/", 0).await;
    let first = audit_lines(&gw, 1).await;
    let handle = first[0]["session"].as_str().unwrap().to_owned();
    let admin = |method: reqwest::Method, path: &str| {
        gw.client.request(method, format!("http://{}{path}", gw.ops)).bearer_auth(token).send()
    };
    let ended = admin(reqwest::Method::DELETE, &format!("/admin/sessions/{handle}")).await.unwrap();
    assert_eq!(ended.status(), 200);
    let again = admin(reqwest::Method::DELETE, &format!("/admin/sessions/{handle}")).await.unwrap();
    assert_eq!(again.status(), 404, "already ended");
    assert_eq!(gw.navigate("/", Some(&session)).await.status(), 302, "the session is over");

    let lines = audit_lines(&gw, 4).await;
    assert_eq!(
        events(&lines),
        pairs(&[("login_success", "-"), ("session_end", "admin"), ("admin_action", "-"), ("admin_action", "-")]),
        "{lines:#?}"
    );
    assert_eq!(lines[1]["session"], handle.as_str());
    assert_eq!(lines[1]["user"], first[0]["user"]);
    let summary =
        |l: &Value| (l["action"].clone(), l["target"].clone(), l["sessions_ended"].clone(), l["result"].clone());
    let (action, target) = (Value::from("end_session"), Value::from(handle.as_str()));
    assert_eq!(summary(&lines[2]), (action.clone(), target.clone(), Value::from(1), Value::from("success")));
    assert_eq!(summary(&lines[3]), (action, target, Value::from(0), Value::from("unmatched")));
    let text = std::fs::read_to_string(audit_file(&gw)).unwrap();
    assert!(!text.contains(token), "the admin token never reaches the audit file");
}

/// The simulated NIA's BSI of its demo user (a pseudonym: never in the audit file).
const BSI: &str = "CZ/CZ/2e3883ee-7e0d-47cb-8fee-2ea231a58ee6";

#[tokio::test]
async fn saml_idp_initiated_logouts_are_audited_by_idp_and_back_channel() {
    let gw = Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        apps: Some("[[app]]\nname = \"desk\"\nupstream = \"{upstream}\"\nproviders = [\"nia\"]\n".to_owned()),
        saml: Some(aisgate::sim::stack::SamlStackProvider::default()),
        audit: AUDIT.to_owned(),
        ..same_labels()
    })
    .await;
    let saml = gw.saml.as_ref().unwrap();
    let start = gw.navigate("/.aisgate/login?return=%2Fdesk&provider=nia", None).await;
    let cookie = format!("aisgate_login={}", set_cookie(&start, "aisgate_login").unwrap());
    let (acs, form) = support::parse_form(&gw.to_idp(start).await.text().await.unwrap());
    let done = gw.client.post(&acs).form(&form).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(done.status(), 302, "logged in at NIA");
    let session = format!("aisgate_session={}", set_cookie(&done, "aisgate_session").unwrap());
    // An unsigned LogoutRequest on the SOAP back channel is refused; a signed one through the
    // browser ends the session.
    let unsigned = saml.unsigned_logout_request(BSI, Some("_x"));
    let refused = gw.client.post(gw.url("/.aisgate/saml/nia/slo")).header("content-type", "text/xml").body(unsigned);
    assert_eq!(refused.send().await.unwrap().status(), 400);
    let index = saml.knobs().last_session_index.clone();
    let (url, _) = saml.logout_request_url(BSI, index.as_deref()).unwrap();
    assert_eq!(gw.client.get(&url).send().await.unwrap().status(), 302);
    assert_eq!(gw.client.get(gw.url("/desk")).header("cookie", &session).send().await.unwrap().status(), 401);

    let lines = audit_lines(&gw, 3).await;
    assert_eq!(events(&lines), pairs(&[("login_success", "-"), ("logout", "unsigned"), ("logout", "-")]), "{lines:#?}");
    assert_eq!((lines[0]["provider"].as_str(), lines[0]["protocol"].as_str()), (Some("nia"), Some("saml2")));
    let summary =
        |l: &Value| (l["by"].clone(), l["provider"].clone(), l["sessions_ended"].clone(), l["result"].clone());
    let nia = Value::from("nia");
    assert_eq!(summary(&lines[1]), (Value::from("back_channel"), nia.clone(), Value::from(0), Value::from("refused")));
    assert_eq!(summary(&lines[2]), (Value::from("idp"), nia, Value::from(1), Value::from("success")));
    let text = std::fs::read_to_string(audit_file(&gw)).unwrap();
    assert!(!text.contains("2e3883ee") && !text.contains("SAML"), "no BSI, no SAML message: {text}");
}
