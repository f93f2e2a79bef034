//! JIP/KAAS → CAAIS migration through the whole gateway (issue 12 items 1–5): one app offering
//! the simulated JIP/KAAS and CAAIS (OIDC) side by side, account links made by two logins in
//! one browser session, kept in the SQLite file across a restart, refused for a second BSI,
//! bulk import/export through the CLI, and the Big Bang switch by configuration.

mod support;

use std::path::Path;

use aisgate::links::{Link, LinkKey};
use aisgate::sim::stack::{SamlStackProvider, StackOptions};
use serde_json::Value;
use support::{caais_provider, header_echo, location, logs, parse_form, set_cookie, Gateway};

/// KAAS demo user 0's `UzivatelId` (the legacy id).
const JIP_USER_0: &str = "6f1c0d2a-6b7e-4d0e-9a51-3c2b1f0e9d84";
/// The CAAIS simulator's official (BSI).
const CAAIS_BSI: &str = "16b33670-a816-4c1a-8712-d99e9ff85fec";
/// A second CAAIS user (another BSI).
const CAAIS_BSI_2: &str = "0c0ffee0-0000-4000-8000-000000000002";

fn apps(db: &Path, providers: &str, account_link: &str) -> String {
    apps_with(&format!("database = \"{}\"", db.display()), providers, account_link)
}

/// The app tables with `links` as the body of `[links]` (besides `legacy_providers`).
fn apps_with(links: &str, providers: &str, account_link: &str) -> String {
    format!(
        r#"
[links]
{links}
legacy_providers = ["jip"]
caais_providers = ["caais"]

[[app]]
name = "desk"
upstream = "{{upstream}}"
providers = [{providers}]
account_link = "{account_link}"

[app.headers]
identity_token = true
rename = {{ "X-Auth-Legacy-Id" = "X-Legacy-User" }}
"#
    )
}

async fn gateway(db: &Path, providers: &str, account_link: &str) -> Gateway {
    start(apps(db, providers, account_link), String::new()).await
}

/// The session key of every gateway these tests start: two on one Redis are a pair, and the
/// instances of a pair share their keys (the link store's key names are made with them).
const PAIR_SESSION_KEY: &str = "bGlua3MtcGFpci1zZXNzaW9uLWtleS0wMTIzNDU2Nzg5YWI=";

/// A gateway with the simulated KAAS and CAAIS (two CAAIS users: `knobs().user` picks).
async fn start(apps: String, session_extra: String) -> Gateway {
    logs::capture();
    let mut caais = caais_provider("");
    let mut second = aisgate::sim::oidc::caais_user();
    second.insert("sub".into(), CAAIS_BSI_2.into());
    second.insert("username".into(), "bernard_woolley".into());
    caais.sim.users.push(second);
    Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        oidc: vec![caais],
        apps: Some(apps),
        session_extra,
        session_key: Some(PAIR_SESSION_KEY.to_owned()),
        ..StackOptions::default()
    })
    .await
}

/// The upstream's view of a request: the headers it received.
async fn upstream_headers(gw: &Gateway, cookie: &str) -> serde_json::Map<String, Value> {
    let resp = gw.navigate("/", Some(cookie)).await;
    assert_eq!(resp.status(), 200, "served by the upstream");
    let body: Value = resp.json().await.unwrap();
    body["headers"].as_object().unwrap().clone()
}

/// Confirms the link from the page the app sends a CAAIS session without one to: POSTs the
/// confirmation, logs in at the KAAS simulator as `kaas_user` and redeems the callback in the
/// same browser. Returns the callback's answer.
async fn confirm_with_kaas(gw: &Gateway, session: &str, kaas_user: usize) -> reqwest::Response {
    let to_page = gw.navigate("/", Some(session)).await;
    assert_eq!(to_page.status(), 302, "an unlinked CAAIS session is sent to the link page");
    assert_eq!(location(&to_page), "/.aisgate/link?return=%2F");
    let page = gw.navigate(&location(&to_page), Some(session)).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Propojení s účtem JIP/KAAS"), "{html}");
    let (action, fields) = parse_form(&html);
    assert_eq!(action, "/.aisgate/link");
    assert!(fields.iter().any(|(k, v)| k == "do" && v == "confirm"), "{fields:?}");
    let start = gw.client.post(gw.url(&action)).header("cookie", session).form(&fields).send().await.unwrap();
    assert_eq!(start.status(), 302, "the confirmation starts a JIP/KAAS login");
    let login_cookie = set_cookie(&start, "aisgate_login").expect("pre-login cookie");
    let form = gw.client.post(location(&start)).form(&[("user", kaas_user.to_string())]).send().await.unwrap();
    assert_eq!(form.status(), 303);
    gw.client
        .get(location(&form))
        .header("cookie", format!("aisgate_login={login_cookie}; {session}"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
}

fn metric(text: &str, series: &str) -> u64 {
    text.lines().find_map(|l| l.strip_prefix(series)?.trim().parse().ok()).unwrap_or(0)
}

async fn metrics(gw: &Gateway) -> String {
    gw.client.get(format!("http://{}/metrics", gw.ops)).send().await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn unlinked_caais_user_confirms_with_kaas_and_the_link_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("links.sqlite");
    let audit = dir.path().join("audit.jsonl");
    let with_audit =
        || format!("[audit]\nfile = \"{}\"\n{}", audit.display(), apps(&db, r#""caais", "jip""#, "require"));
    let gw = start(with_audit(), String::new()).await;

    let caais = gw.oidc_login("caais", "/").await;
    // `require`: API requests of an unlinked user are refused, with the reason logged.
    let api = gw.client.get(gw.url("/")).header("cookie", &caais).send().await.unwrap();
    assert_eq!(api.status(), 403);
    logs::assert_reason(&api, "account_link_required");
    // The require page offers no "skip".
    let page = gw.navigate("/.aisgate/link?return=%2F", Some(&caais)).await.text().await.unwrap();
    assert!(!page.contains("value=\"skip\""), "{page}");

    let done = confirm_with_kaas(&gw, &caais, 0).await;
    assert_eq!(done.status(), 302, "the link is stored and the user continues");
    assert_eq!(location(&done), "/");
    let linked = format!("aisgate_session={}", set_cookie(&done, "aisgate_session").expect("a new session id"));
    assert_ne!(linked, caais, "the linked session has a new id");
    let headers = upstream_headers(&gw, &linked).await;
    assert_eq!(headers["x-auth-subject"], CAAIS_BSI);
    assert_eq!(headers["x-legacy-user"], JIP_USER_0, "the legacy id under the app's header name");
    assert_eq!(headers["x-auth-legacy-username"], "novakova");
    assert_eq!(headers["x-auth-legacy-org"], "00007064");
    // The old session id is gone: the app's login chooser, not the upstream.
    let old = gw.navigate("/", Some(&caais)).await.text().await.unwrap();
    assert!(old.contains("provider=caais") && !old.contains("x-auth-subject"), "{old}");
    let m = metrics(&gw).await;
    assert_eq!(metric(&m, r#"aisgate_caais_logins_total{app="desk",linked="false"}"#), 1, "{m}");
    drop(gw);

    // Restart on the same database: the next CAAIS login carries the legacy id at once.
    let gw = start(with_audit(), String::new()).await;
    let again = gw.oidc_login("caais", "/").await;
    let headers = upstream_headers(&gw, &again).await;
    assert_eq!(headers["x-legacy-user"], JIP_USER_0);
    let claims = identity_token_claims(headers["x-auth-token"].as_str().unwrap());
    assert_eq!(claims["legacy"]["id"], JIP_USER_0, "the identity token carries the legacy id");
    let m = metrics(&gw).await;
    assert_eq!(metric(&m, r#"aisgate_caais_logins_total{app="desk",linked="true"}"#), 1, "{m}");
    assert_eq!(metric(&m, r#"aisgate_app_logins_total{app="desk",protocol="oidc"}"#), 1, "{m}");

    // A second CAAIS user (another BSI) cannot take the same legacy account.
    gw.oidc[0].knobs().user = 1;
    let other = gw.oidc_login("caais", "/").await;
    let refused = confirm_with_kaas(&gw, &other, 0).await;
    assert_eq!(refused.status(), 409);
    logs::assert_reason(&refused, "legacy_id_linked_to_other_bsi");
    let refused_id = logs::request_id(&refused);
    let page = refused.text().await.unwrap();
    assert!(page.contains("Účet JIP/KAAS je již propojen"), "{page}");
    assert_eq!(gw.navigate("/", Some(&other)).await.status(), 302, "still unlinked: back to the link page");
    drop(gw);
    // Both attempts are audit events: labels, never the ids.
    let trail = std::fs::read_to_string(&audit).unwrap();
    let changes: Vec<(String, String, String)> = trail
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "link_change")
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or("-").to_owned();
            assert_eq!((s("action"), s("source")), ("create".to_owned(), "login".to_owned()));
            assert!(s("user").starts_with("bsi:") && s("legacy").starts_with("legacy:"), "{e}");
            (s("result"), s("reason"), s("request_id"))
        })
        .collect();
    assert_eq!(changes.len(), 2, "{trail}");
    assert_eq!((changes[0].0.as_str(), changes[0].1.as_str()), ("success", "-"));
    assert_eq!((changes[1].0.as_str(), changes[1].1.as_str()), ("refused", "legacy_id_linked_to_other_bsi"));
    assert_eq!(changes[1].2, refused_id);
    assert!(!trail.contains(JIP_USER_0) && !trail.contains(CAAIS_BSI), "{trail}");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let rows: Vec<(String, String)> = conn
        .prepare("SELECT bsi, legacy_id FROM links")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, vec![(CAAIS_BSI.to_owned(), JIP_USER_0.to_owned())]);
}

#[tokio::test]
async fn offer_can_be_skipped_and_a_confirmation_from_another_session_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&dir.path().join("links.sqlite"), r#""caais", "jip""#, "offer").await;
    let caais = gw.oidc_login("caais", "/").await;
    let page = gw.navigate("/.aisgate/link?return=%2F", Some(&caais)).await.text().await.unwrap();
    assert!(page.contains("value=\"skip\""), "offer has a skip button: {page}");
    let csrf = parse_form(&page).1.into_iter().find(|(k, _)| k == "csrf").unwrap().1;
    // A forged token is refused.
    let forged = [("do", "skip"), ("return", "/"), ("csrf", "x")];
    let bad = gw.client.post(gw.url("/.aisgate/link")).header("cookie", &caais).form(&forged).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    logs::assert_reason(&bad, "account link form refused");

    // Confirmation started in this session, finished in a browser logged in as someone else.
    let start = gw
        .client
        .post(gw.url("/.aisgate/link"))
        .header("cookie", &caais)
        .form(&[("do", "confirm"), ("return", "/"), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 302);
    let login_cookie = set_cookie(&start, "aisgate_login").unwrap();
    gw.oidc[0].knobs().user = 1;
    let other = gw.oidc_login("caais", "/").await;
    let form = gw.client.post(location(&start)).form(&[("user", "0")]).send().await.unwrap();
    let done = gw
        .client
        .get(location(&form))
        .header("cookie", format!("aisgate_login={login_cookie}; {other}"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 403);
    logs::assert_reason(&done, "session_changed");
    // Single use: the same confirmation delivered again, now with the right session, is dead.
    let replay = gw
        .client
        .get(location(&form))
        .header("cookie", format!("aisgate_login={login_cookie}; {caais}"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 400, "the pending confirmation was taken by its first use");
    logs::assert_reason(&replay, "callback for an unknown, used or expired login");
    let still = gw.navigate("/", Some(&caais)).await;
    assert_eq!(location(&still), "/.aisgate/link?return=%2F", "no link from a replay");

    // Skip: the app is served without the legacy headers.
    let skip = [("do", "skip"), ("return", "/"), ("csrf", csrf.as_str())];
    let skipped = gw.client.post(gw.url("/.aisgate/link")).header("cookie", &caais).form(&skip).send().await.unwrap();
    assert_eq!(skipped.status(), 302);
    let headers = upstream_headers(&gw, &caais).await;
    assert_eq!(headers["x-auth-subject"], CAAIS_BSI);
    assert!(!headers.contains_key("x-legacy-user"), "{headers:?}");
}

fn identity_token_claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn switching_an_app_from_kaas_to_caais_by_config_keeps_the_same_headers() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("links.sqlite");
    // Before: JIP/KAAS only.
    let gw = gateway(&db, r#""jip""#, "off").await;
    let (kaas, _) = gw.login_to("/", 0).await;
    let before = upstream_headers(&gw, &kaas).await;
    let m = metrics(&gw).await;
    assert_eq!(metric(&m, r#"aisgate_app_logins_total{app="desk",protocol="kaas"}"#), 1, "{m}");
    drop(gw);
    // The institution's migration links the user; then only the provider list changes.
    let store = aisgate::links::sqlite::SqliteLinks::open(&db).unwrap();
    let legacy = aisgate::identity::LegacyAccount {
        id: JIP_USER_0.into(),
        username: Some("novakova".into()),
        organisation: Some("00007064".into()),
    };
    let link = aisgate::links::Link { bsi: CAAIS_BSI.into(), legacy, created_at: 1, source: "import".into() };
    aisgate::links::LinkStore::create(&store, link).await.unwrap();
    drop(store);
    let gw = gateway(&db, r#""caais""#, "require").await;
    let caais = gw.oidc_login("caais", "/").await;
    let after = upstream_headers(&gw, &caais).await;

    let identity = |h: &serde_json::Map<String, Value>| -> std::collections::BTreeSet<String> {
        h.keys().filter(|k| k.starts_with("x-auth-") || *k == "x-legacy-user").cloned().collect()
    };
    // What the app keys its users on is the same value under the same name.
    assert_eq!(before["x-legacy-user"], JIP_USER_0);
    assert_eq!(after["x-legacy-user"], JIP_USER_0);
    // Headers the KAAS login sent and the CAAIS login did not, and the reverse: only those
    // whose value the simulated CAAIS user or its protocol lacks.
    let only_kaas: Vec<String> = identity(&before).difference(&identity(&after)).cloned().collect();
    let only_caais: Vec<String> = identity(&after).difference(&identity(&before)).cloned().collect();
    assert!(only_caais.is_empty(), "CAAIS adds headers KAAS did not send: {only_caais:?}");
    for header in &only_kaas {
        assert!(
            [
                "x-auth-email",
                "x-auth-loa",
                "x-auth-loa-uri",
                "x-auth-method",
                "x-auth-identity-verified",
                "x-auth-org-email",
                "x-auth-org-kind",
                "x-auth-org-type",
                "x-auth-org-ovm-id"
            ]
            .contains(&header.as_str()),
            "{header} missing after the switch ({only_kaas:?})"
        );
    }
    for header in [
        "x-auth-subject",
        "x-auth-username",
        "x-auth-org-ico",
        "x-auth-legacy-username",
        "x-auth-legacy-org",
        "x-auth-token",
    ] {
        assert!(after.contains_key(header) && before.contains_key(header), "{header}");
    }
    assert_eq!(before["x-auth-protocol"].as_str().map(|p| p.starts_with("kaas-ws/")), Some(true));
    assert_eq!(after["x-auth-protocol"], "oidc");
}

const ADMIN_TOKEN: &str = "links-admin-token-0123456789abcdef";

fn cli(config: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_aisgate"))
        .arg("links")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn bulk_import_export_round_trip_through_the_cli_and_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("links.sqlite");
    let token = dir.path().join("admin.token");
    std::fs::write(&token, ADMIN_TOKEN).unwrap();
    let audit = dir.path().join("audit.jsonl");
    let extra = format!("[admin]\ntoken_file = \"{}\"\n\n[audit]\nfile = \"{}\"\n", token.display(), audit.display());
    logs::capture();
    let gw = Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        oidc: vec![caais_provider("")],
        apps: Some(format!("{extra}{}", apps(&db, r#""caais", "jip""#, "offer"))),
        ..StackOptions::default()
    })
    .await;
    let config = gw.stack_dir.join("aisgate.toml");
    let csv = "bsi,legacy_id,legacy_username,legacy_organisation\n\
               a-bsi,jip-1,novakova,00007064\n\
               b-bsi,jip-2,,\n\
               c-bsi,jip-3,dvorak,00261581\n";
    let input = dir.path().join("migration.csv");
    std::fs::write(&input, csv).unwrap();

    let out = cli(&config, &["import", input.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("imported 3 new link(s) from {}", input.display()));

    // A file whose third line takes an already linked legacy id: nothing of it is imported.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "bsi,legacy_id,legacy_username,legacy_organisation\nd-bsi,jip-4,,\ne-bsi,jip-1,,\n").unwrap();
    let out = cli(&config, &["import", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 3: the legacy id is already linked to another CAAIS user; nothing was imported"),
        "{err}"
    );

    // Export (CLI, JSON file) and list (CLI, CSV) give back what was imported.
    let exported = dir.path().join("export.json");
    assert!(cli(&config, &["export", exported.to_str().unwrap()]).status.success());
    let json: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&exported).unwrap()).unwrap();
    let ids: Vec<(&str, &str)> = json.iter().map(|l| (l["bsi"].as_str().unwrap(), l["id"].as_str().unwrap())).collect();
    assert_eq!(ids, vec![("a-bsi", "jip-1"), ("b-bsi", "jip-2"), ("c-bsi", "jip-3")]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&exported).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let list = cli(&config, &["list"]);
    assert_eq!(String::from_utf8_lossy(&list.stdout), csv);

    // The admin API: token required; export as CSV; delete; import the JSON export back.
    let admin = |path: &str| format!("http://{}{path}", gw.ops);
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let anonymous = gw.client.get(admin("/admin/links")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let got = gw.client.get(admin("/admin/links?format=csv")).header("authorization", &bearer).send().await.unwrap();
    assert_eq!(got.text().await.unwrap(), csv);
    let deleted =
        gw.client.delete(admin("/admin/links/legacy/jip-2")).header("authorization", &bearer).send().await.unwrap();
    assert_eq!(deleted.status(), 200);
    let body: Value = deleted.json().await.unwrap();
    assert_eq!(body["deleted"]["bsi"], "b-bsi");
    assert_eq!(String::from_utf8_lossy(&cli(&config, &["list"]).stdout).lines().count(), 3, "header + 2 links");
    let imported = gw
        .client
        .post(admin("/admin/links"))
        .header("authorization", &bearer)
        .header("content-type", "application/json")
        .body(std::fs::read_to_string(&exported).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(imported.status(), 200);
    assert_eq!(imported.json::<Value>().await.unwrap()["imported"], 1, "only the deleted link was new");
    let got = gw.client.get(admin("/admin/links?format=csv")).header("authorization", &bearer).send().await.unwrap();
    assert_eq!(got.text().await.unwrap(), csv, "round trip");
    let refused = gw
        .client
        .post(admin("/admin/links"))
        .header("authorization", &bearer)
        .header("content-type", "text/csv")
        .body("bsi,legacy_id,legacy_username,legacy_organisation\nz-bsi,jip-3,,\n")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let why: Value = refused.json().await.unwrap();
    assert_eq!(why["detail"], "line 2: the legacy id is already linked to another CAAIS user");

    // Delete by BSI through the CLI.
    let stored = cli(&config, &["delete", "--bsi", "a-bsi"]);
    assert!(stored.status.success(), "{}", String::from_utf8_lossy(&stored.stderr));

    // Every change is an audit event, with labels instead of ids.
    drop(gw);
    let trail = std::fs::read_to_string(&audit).unwrap();
    let events: Vec<Value> = trail.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let changes: Vec<(String, String, String, u64)> = events
        .iter()
        .filter(|e| e["event"] == "link_change")
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or("").to_owned();
            (s("action"), s("source"), s("result"), e["count"].as_u64().unwrap())
        })
        .collect();
    let expect = |a: &str, s: &str, r: &str, n: u64| (a.to_owned(), s.to_owned(), r.to_owned(), n);
    assert_eq!(
        changes,
        vec![
            expect("import", "cli", "success", 3),
            expect("import", "cli", "refused", 0),
            expect("delete", "admin", "success", 1),
            expect("import", "admin", "success", 1),
            expect("import", "admin", "refused", 0),
            expect("delete", "cli", "success", 1),
        ],
        "{trail}"
    );
    assert!(!trail.contains("a-bsi") && !trail.contains("jip-1"), "ids never reach the audit trail: {trail}");
}

#[tokio::test]
async fn links_on_redis_are_shared_by_two_instances_and_unique_across_them() {
    let Some(redis) = support::redis_server::Redis::start().await else { return };
    let apps = apps_with("store = \"redis\"", r#""caais", "jip""#, "require");
    let one = start(apps.clone(), redis.session_extra()).await;
    let two = start(apps, redis.session_extra()).await;

    // Linked at instance one.
    let caais = one.oidc_login("caais", "/").await;
    let done = confirm_with_kaas(&one, &caais, 0).await;
    assert_eq!(done.status(), 302);
    // Instance two knows the link at the next login.
    let again = two.oidc_login("caais", "/").await;
    assert_eq!(upstream_headers(&two, &again).await["x-legacy-user"], JIP_USER_0);
    // The second BSI is refused at instance two: the uniqueness is the store's, not a process's.
    two.oidc[0].knobs().user = 1;
    let other = two.oidc_login("caais", "/").await;
    let refused = confirm_with_kaas(&two, &other, 0).await;
    assert_eq!(refused.status(), 409);
    logs::assert_reason(&refused, "legacy_id_linked_to_other_bsi");
    // What Redis holds: a hash per BSI and a key per legacy id, named by keyed hashes (no id in
    // any key name), without expiry.
    let link_keys = assert_no_id_in_key_names(&redis, &[CAAIS_BSI, CAAIS_BSI_2, JIP_USER_0]).await;
    assert_eq!(link_keys.len(), 4, "bsi hash, legacy key, set of all, key id: {link_keys:?}");
    let mut conn = redis.conn().await;
    for key in &link_keys {
        let ttl: i64 = redis::cmd("TTL").arg(key).query_async(&mut conn).await.unwrap();
        assert_eq!(ttl, -1, "links never expire: {key}");
    }

    // Import on Redis is all or nothing too, with the refused entry's line.
    let config = aisgate::config::load(&one.stack_dir.join("aisgate.toml")).unwrap();
    let store = aisgate::links::redis::RedisLinks::configured(&config.session, &|_| None).unwrap();
    let csv = format!("{}\nnew-bsi,jip-new,,\nthird-bsi,{JIP_USER_0},,\n", aisgate::links::file::CSV_HEADER);
    let (batch, lines) = aisgate::links::file::parse(&csv, aisgate::links::file::Format::Csv, 1).unwrap();
    match aisgate::links::LinkStore::import(&store, batch, lines).await {
        Err(aisgate::links::LinkError::Import { line: 3, reason }) => {
            assert!(reason.contains("already linked"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let all = aisgate::links::LinkStore::list(&store).await.unwrap();
    assert_eq!(all.iter().map(|l| l.bsi.as_str()).collect::<Vec<_>>(), vec![CAAIS_BSI], "nothing of the batch stored");

    // Found by both ids; the export imports back after a delete by either id.
    let link = aisgate::links::LinkStore::by_bsi(&store, CAAIS_BSI).await.unwrap().expect("found by BSI");
    assert_eq!(link.legacy.id, JIP_USER_0);
    let export = aisgate::links::file::render(&all, aisgate::links::file::Format::Json).unwrap();
    let by_legacy = LinkKey::Legacy(JIP_USER_0.to_owned());
    let deleted =
        aisgate::links::LinkStore::delete(&store, by_legacy.clone()).await.unwrap().expect("found by legacy id");
    assert_eq!(deleted.bsi, CAAIS_BSI);
    assert!(aisgate::links::LinkStore::by_bsi(&store, CAAIS_BSI).await.unwrap().is_none());
    assert!(aisgate::links::LinkStore::delete(&store, by_legacy).await.unwrap().is_none(), "gone");
    let (batch, lines) = aisgate::links::file::parse(&export, aisgate::links::file::Format::Json, 1).unwrap();
    assert_eq!(aisgate::links::LinkStore::import(&store, batch, lines).await.unwrap(), 1);
    let back: Vec<Link> = aisgate::links::LinkStore::list(&store).await.unwrap();
    let source = |links: Vec<Link>| links.into_iter().map(|l| Link { source: String::new(), ..l }).collect::<Vec<_>>();
    assert_eq!(source(back), source(all), "the export came back whole (as an import)");
    assert_no_id_in_key_names(&redis, &[CAAIS_BSI, JIP_USER_0]).await;
    let by_bsi = LinkKey::Bsi(CAAIS_BSI.to_owned());
    assert_eq!(
        aisgate::links::LinkStore::delete(&store, by_bsi).await.unwrap().map(|l| l.legacy.id).as_deref(),
        Some(JIP_USER_0)
    );
    assert!(aisgate::links::LinkStore::list(&store).await.unwrap().is_empty());
}

/// Every key name in `redis` (the test's own server: `KEYS` is fine), checked for `ids`;
/// returns the link store's keys.
async fn assert_no_id_in_key_names(redis: &support::redis_server::Redis, ids: &[&str]) -> Vec<String> {
    let mut conn = redis.conn().await;
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(&mut conn).await.unwrap();
    for key in &keys {
        assert!(!ids.iter().any(|id| key.contains(id)), "an id in the key name {key:?}");
    }
    keys.into_iter().filter(|k| k.starts_with("aisgate:{links}:")).collect()
}

/// Links stored by an earlier version (raw BSI and legacy id in the key names) are renamed to
/// keyed hashes at the first use of the store, and found by both ids afterwards.
#[tokio::test]
async fn links_on_redis_named_by_raw_ids_are_renamed_at_first_use() {
    let Some(redis) = support::redis_server::Redis::start().await else { return };
    let gw = start(apps_with("store = \"redis\"", r#""caais", "jip""#, "require"), redis.session_extra()).await;
    let mut conn = redis.conn().await;
    for (bsi, legacy) in [(CAAIS_BSI, JIP_USER_0), (CAAIS_BSI_2, "jip-old-2")] {
        let _: () = redis::cmd("HSET")
            .arg(format!("aisgate:{{links}}:b:{bsi}"))
            .arg(&[
                "legacy_id",
                legacy,
                "legacy_username",
                "old-user",
                "legacy_org",
                "",
                "created_at",
                "7",
                "source",
                "import",
            ])
            .query_async(&mut conn)
            .await
            .unwrap();
        let _: () = redis::cmd("SET")
            .arg(format!("aisgate:{{links}}:l:{legacy}"))
            .arg(bsi)
            .query_async(&mut conn)
            .await
            .unwrap();
        let _: () = redis::cmd("SADD").arg("aisgate:{links}:all").arg(bsi).query_async(&mut conn).await.unwrap();
    }
    let config = aisgate::config::load(&gw.stack_dir.join("aisgate.toml")).unwrap();
    let store = aisgate::links::redis::RedisLinks::configured(&config.session, &|_| None).unwrap();
    let link = aisgate::links::LinkStore::by_bsi(&store, CAAIS_BSI).await.unwrap().expect("found after the rename");
    assert_eq!(
        (link.legacy.id.as_str(), link.legacy.username.as_deref(), link.created_at),
        (JIP_USER_0, Some("old-user"), 7)
    );
    let link_keys = assert_no_id_in_key_names(&redis, &[CAAIS_BSI, CAAIS_BSI_2, JIP_USER_0, "jip-old-2"]).await;
    assert_eq!(link_keys.len(), 6, "two links of two keys, the set, the key id: {link_keys:?}");
    let deleted = aisgate::links::LinkStore::delete(&store, LinkKey::Legacy("jip-old-2".to_owned())).await.unwrap();
    assert_eq!(deleted.map(|l| l.bsi).as_deref(), Some(CAAIS_BSI_2), "found by the legacy id");
    // The next login is linked through the renamed key: the legacy account reaches the app.
    let session = gw.oidc_login("caais", "/").await;
    assert_eq!(upstream_headers(&gw, &session).await["x-legacy-user"], JIP_USER_0);
}

#[tokio::test]
async fn check_refuses_account_links_it_cannot_serve() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&dir.path().join("links.sqlite"), r#""caais", "jip""#, "offer").await;
    let good = std::fs::read_to_string(gw.stack_dir.join("aisgate.toml")).unwrap();
    let check = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_aisgate"))
            .args(["check", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // `offer` without a legacy provider among the app's providers: nothing to confirm with.
    let (code, err) =
        check("no-legacy.toml", good.replace(r#"providers = ["caais", "jip"]"#, r#"providers = ["caais"]"#));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(r#"app "desk": account_link = "offer" needs one of [links] legacy_providers among its providers"#),
        "{err}"
    );
    // A legacy provider that is not JIP/KAAS.
    let (code, err) =
        check("not-kaas.toml", good.replace(r#"legacy_providers = ["jip"]"#, r#"legacy_providers = ["caais"]"#));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(r#"provider "caais" is listed in [links] legacy_providers but is kind "oidc", not "kaas""#),
        "{err}"
    );
    // account_link without [links].
    let start = good.find("[links]").unwrap();
    let end = good[start..].find("[[app]]").unwrap() + start;
    let (code, err) = check("no-links.toml", format!("{}{}", &good[..start], &good[end..]));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(r#"app "desk": account_link needs a [links] table"#), "{err}");
    // check creates no database, and names a database in a missing directory.
    let db = dir.path().join("links.sqlite");
    let fresh = dir.path().join("fresh.sqlite");
    let (code, err) = check("fresh.toml", good.replace(&db.display().to_string(), &fresh.display().to_string()));
    assert_ne!(code, Some(2), "{err}");
    assert!(!fresh.exists(), "check must not create the links database");
    let nowhere = dir.path().join("missing-dir/links.sqlite");
    let (code, err) = check("nowhere.toml", good.replace(&db.display().to_string(), &nowhere.display().to_string()));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("missing-dir does not exist"), "{err}");
}

#[tokio::test]
async fn require_without_a_legacy_login_explains_that_only_an_administrator_can_link() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&dir.path().join("links.sqlite"), r#""caais""#, "require").await;
    let caais = gw.oidc_login("caais", "/").await;
    let to_page = gw.navigate("/", Some(&caais)).await;
    assert_eq!(location(&to_page), "/.aisgate/link?return=%2F");
    let page = gw.navigate(&location(&to_page), Some(&caais)).await;
    assert_eq!(page.status(), 403);
    logs::assert_reason(&page, "no_legacy_login");
    let html = page.text().await.unwrap();
    assert!(html.contains("Aplikace vyžaduje propojení s účtem JIP/KAAS") && !html.contains("<form"), "{html}");
}

/// The simulated NIA's subject: an eIDAS PersonIdentifier, not a CAAIS BSI.
const NIA_SUBJECT: &str = "CZ/CZ/2e3883ee-7e0d-47cb-8fee-2ea231a58ee6";

/// A complete login at the simulated NIA returning to `/`; the session `Cookie` value.
async fn nia_login(gw: &Gateway) -> String {
    let start = gw.navigate("/.aisgate/login?return=%2F&provider=nia", None).await;
    let login_cookie = format!("aisgate_login={}", set_cookie(&start, "aisgate_login").expect("pre-login cookie"));
    let answer = gw.to_idp(start).await;
    assert_eq!(answer.status(), 200, "the simulated NIA answers with a form");
    let (acs, form) = parse_form(&answer.text().await.unwrap());
    let done = gw
        .client
        .post(&acs)
        .form(&form)
        .header("cookie", &login_cookie)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 302, "the NIA login completes");
    assert_eq!(location(&done), "/");
    format!("aisgate_session={}", set_cookie(&done, "aisgate_session").expect("session cookie"))
}

/// A NIA (SAML eIDAS) login at an app that requires links and also offers CAAIS and JIP/KAAS:
/// the subject is no CAAIS BSI, so there is nothing to link. The user reaches the upstream
/// with no link page and no legacy headers — even when the table (wrongly) holds a link under
/// that very subject — and is not counted as a CAAIS login; a CAAIS user of the same app still is.
#[tokio::test]
async fn a_nia_login_at_a_require_app_passes_without_link_page_legacy_headers_or_caais_count() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("links.sqlite");
    logs::capture();
    let gw = Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        oidc: vec![caais_provider("")],
        saml: Some(SamlStackProvider::default()),
        apps: Some(apps(&db, r#""nia", "caais", "jip""#, "require")),
        ..StackOptions::default()
    })
    .await;

    // Straight to the upstream (a navigation and an API request), with no legacy headers.
    let nia = nia_login(&gw).await;
    let to_app = gw.navigate("/", Some(&nia)).await;
    assert_eq!(to_app.status(), 200, "no link page for a NIA session: {:?}", to_app.headers().get("location"));
    let headers = upstream_headers(&gw, &nia).await;
    assert_eq!(headers["x-auth-provider"], "nia");
    assert_eq!(headers["x-auth-subject"], NIA_SUBJECT);
    let api = gw.client.get(gw.url("/")).header("cookie", &nia).send().await.unwrap();
    assert_eq!(api.status(), 200, "require does not refuse a NIA session");
    // The link page has nothing to offer a NIA session: back to the app.
    let page = gw.navigate("/.aisgate/link?return=%2F", Some(&nia)).await;
    assert_eq!(page.status(), 302);
    assert_eq!(location(&page), "/");
    // Counted as a SAML login of the app, not as a CAAIS login.
    let m = metrics(&gw).await;
    assert_eq!(metric(&m, r#"aisgate_app_logins_total{app="desk",protocol="saml"}"#), 1, "{m}");
    assert_eq!(metric(&m, r#"aisgate_caais_logins_total{app="desk",linked="false"}"#), 0, "{m}");
    assert_eq!(metric(&m, r#"aisgate_caais_logins_total{app="desk",linked="true"}"#), 0, "{m}");

    // A link stored (by mistake) under the NIA subject is not looked up for a NIA login.
    let store = aisgate::links::sqlite::SqliteLinks::open(&db).unwrap();
    let legacy = aisgate::identity::LegacyAccount { id: JIP_USER_0.into(), username: None, organisation: None };
    let link = aisgate::links::Link { bsi: NIA_SUBJECT.into(), legacy, created_at: 1, source: "import".into() };
    aisgate::links::LinkStore::create(&store, link).await.unwrap();
    drop(store);
    let again = nia_login(&gw).await;
    let headers = upstream_headers(&gw, &again).await;
    let legacy: Vec<&String> =
        headers.keys().filter(|k| k.starts_with("x-auth-legacy") || *k == "x-legacy-user").collect();
    assert!(legacy.is_empty(), "a NIA subject is never looked up as a BSI: {legacy:?}");
    let claims = identity_token_claims(headers["x-auth-token"].as_str().unwrap());
    assert!(claims.get("legacy").is_none(), "{claims}");
    let m = metrics(&gw).await;
    assert_eq!(metric(&m, r#"aisgate_caais_logins_total{app="desk",linked="true"}"#), 0, "{m}");

    // A CAAIS user of the same app is still asked to link, and counted.
    let caais = gw.oidc_login("caais", "/").await;
    assert_eq!(location(&gw.navigate("/", Some(&caais)).await), "/.aisgate/link?return=%2F");
    let m = metrics(&gw).await;
    assert_eq!(metric(&m, r#"aisgate_caais_logins_total{app="desk",linked="false"}"#), 1, "{m}");
}
