//! The admin API, the sessions CLI, the per-user session limit, "log out everywhere" and
//! maintenance mode (issue 10 items 5 and 7), through a real gateway with the simulated
//! JIP/KAAS IdP; the Redis variants on a real `redis-server` (skipped without it unless
//! `AISGATE_REQUIRE_PEERS` is set).

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aisgate::audit::{Audit, Origin};
use aisgate::clock::Clock;
use aisgate::identity::Identity;
use aisgate::session::keyring::Keyring;
use aisgate::session::redis::{RedisStore, RedisStoreOptions};
use aisgate::session::{users, Session, SessionStore, StoreKey};
use aisgate::sim::stack::StackOptions;
use serde_json::Value;
use support::redis_server::Redis;
use support::{header_echo, location, Gateway};

const TOKEN: &str = "admin-token-0123456789abcdef-0123456789";

/// Subjects, names and e-mails of the simulator's demo users: none may leave the gateway
/// through the admin API.
const PERSONAL: [&str; 8] = [
    "6f1c0d2a-6b7e-4d0e-9a51-3c2b1f0e9d84",
    "0b9c5a3e-2f4d-4c1a-8e7b-5d6f7a8b9c0d",
    "novakova",
    "Nováková",
    "dvorak",
    "Dvořák",
    "jirina.novakova@example.cz",
    "cenek.dvorak@example.cz",
];

/// A gateway with the admin API on, two apps (`desk` under `/desk`, `echo` at `/`), an audit
/// file, and `session` lines added to `[session]`.
struct Admin {
    gw: Gateway,
    dir: tempfile::TempDir,
}

impl Admin {
    async fn start(session: &str) -> Admin {
        Admin::start_with(session, String::new()).await
    }

    async fn start_with(session: &str, session_store: String) -> Admin {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("admin.token");
        std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
        let tables = format!(
            "[admin]\ntoken_file = \"{}\"\n\n[audit]\nfile = \"{}\"\n",
            token.display(),
            dir.path().join("audit.jsonl").display()
        );
        let apps = format!(
            "{tables}\n[[app]]\nname = \"desk\"\nupstream = \"{{upstream}}\"\nproviders = [\"jip\"]\npath_prefix = \"/desk\"\n\n\
             [[app]]\nname = \"echo\"\nupstream = \"{{upstream}}\"\nproviders = [\"jip\"]\n"
        );
        let gw = Gateway::start(StackOptions {
            upstream: Some(header_echo().await),
            session_extra: format!("{session}\n{session_store}"),
            apps: Some(apps),
            ..StackOptions::default()
        })
        .await;
        Admin { gw, dir }
    }

    fn ops(&self, path: &str) -> String {
        format!("http://{}{path}", self.gw.ops)
    }

    async fn call(&self, method: reqwest::Method, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.gw.client.request(method, self.ops(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, Some(TOKEN)).await
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, path, Some(TOKEN)).await
    }

    /// The sessions listed for `query`.
    async fn sessions(&self, query: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/admin/sessions{query}")).await;
        assert_eq!(status, 200, "{body}");
        body["sessions"].as_array().unwrap().clone()
    }

    /// The audit lines whose `event` is `event`, once at least `n` are there (the writer is
    /// asynchronous).
    async fn audit(&self, event: &str, n: usize) -> Vec<Value> {
        let file = self.dir.path().join("audit.jsonl");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let lines: Vec<Value> = text
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .filter(|l| l["event"] == event)
                .collect();
            if lines.len() >= n || tokio::time::Instant::now() > deadline {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// One login at `/` per demo user index, in order: the session cookies.
    async fn logins<const N: usize>(&self, users: [usize; N]) -> [String; N] {
        let mut cookies = Vec::with_capacity(N);
        for user in users {
            cookies.push(self.gw.login_to("/", user).await.0);
        }
        cookies.try_into().unwrap()
    }

    /// Whether `cookie` still opens `path` (200 from the upstream) or is sent to log in
    /// (302 to the IdP).
    async fn logged_in(&self, path: &str, cookie: &str) -> bool {
        let resp = self.gw.navigate(path, Some(cookie)).await;
        match resp.status().as_u16() {
            200 => true,
            302 => {
                assert!(!location(&resp).starts_with(&self.gw.url("/")), "to the IdP: {}", location(&resp));
                false
            }
            other => panic!("unexpected {other}"),
        }
    }
}

fn assert_no_personal_data(text: &str, cookies: &[&str]) {
    for secret in PERSONAL {
        assert!(!text.contains(secret), "{secret:?} in {text}");
    }
    for cookie in cookies {
        let value = cookie.trim_start_matches("aisgate_session=");
        assert!(!text.contains(value), "a session cookie in {text}");
        let id = value.split('.').nth(1).unwrap_or(value);
        assert!(!text.contains(id), "a session id in {text}");
    }
}

// ---------------------------------------------------------------------------------------
// Admin API
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_admin_api_needs_its_token_and_lists_sessions_without_personal_data() {
    let admin = Admin::start("").await;
    let (official, _) = admin.gw.login_to("/desk/", 0).await;
    let (clerk, _) = admin.gw.login_to("/", 1).await;

    for token in [None, Some("wrong-token-0123456789abcdef-0123456789"), Some(&TOKEN[..TOKEN.len() - 1])] {
        let (status, body) = admin.call(reqwest::Method::GET, "/admin/sessions", token).await;
        assert_eq!(status, 401, "{token:?}");
        assert_eq!(body["error"], "unauthorized");
    }
    let (status, _) = admin.call(reqwest::Method::DELETE, "/admin/sessions?organisation=00007064", None).await;
    assert_eq!(status, 401, "ending needs the token too");
    assert!(admin.logged_in("/desk/", &official).await, "an unauthorised end ended nothing");
    let healthz = admin.gw.client.get(admin.ops("/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), 200, "the rest of the ops listener needs no token");
    let refused = admin.audit("admin_action", 4).await;
    assert_eq!(refused.len(), 4, "{refused:#?}");
    assert!(refused.iter().all(|a| a["action"] == "authenticate" && a["result"] == "refused"), "{refused:#?}");

    let (status, body) = admin.get("/admin/sessions").await;
    assert_eq!(status, 200);
    assert_no_personal_data(&body.to_string(), &[&official, &clerk]);
    assert_eq!(body["truncated"], false);
    let all = body["sessions"].as_array().unwrap();
    assert_eq!(all.len(), 2, "{body}");
    let desk = all.iter().find(|s| s["app"] == "desk").expect("the login made for desk");
    assert_eq!(desk["provider"], "jip");
    assert_eq!(desk["organisation"], "00007064");
    assert!(desk["user"].as_str().unwrap().starts_with("jip:"), "{desk}");
    assert_eq!(desk["handle"].as_str().unwrap().len(), 16, "{desk}");
    assert!(desk["created_at"].as_u64().unwrap() <= desk["last_seen"].as_u64().unwrap());
    assert!(desk["expires_at"].as_u64().unwrap() > desk["created_at"].as_u64().unwrap());
    let echo = all.iter().find(|s| s["app"] == "echo").expect("the login made at /");
    assert_eq!(echo["organisation"], "00261581");

    // Filters: organisation (zero padding aside), user label, provider, app; all at once.
    assert_eq!(admin.sessions("?organisation=261581").await.len(), 1);
    let user = desk["user"].as_str().unwrap();
    let by_user = admin.sessions(&format!("?user={user}")).await;
    assert_eq!(by_user.len(), 1);
    assert_eq!(by_user[0]["handle"], desk["handle"]);
    assert_eq!(admin.sessions("?provider=jip&app=echo").await.len(), 1);
    assert_eq!(admin.sessions("?provider=nia").await.len(), 0);
    let (_, limited) = admin.get("/admin/sessions?limit=1").await;
    assert_eq!(limited["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(limited["truncated"], true);
    // A typo is refused, never read as "no filter".
    let (status, _) = admin.get("/admin/sessions?usr=x").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn ending_a_users_an_organisations_and_one_session_logs_them_out_and_is_audited() {
    let admin = Admin::start("").await;
    let [first, second, clerk, clerk_again] = admin.logins([0, 0, 1, 1]).await;
    let user = admin.sessions("?organisation=00007064").await[0]["user"].as_str().unwrap().to_owned();

    let (status, body) = admin.delete("/admin/sessions").await;
    assert_eq!((status, &body["error"]), (400, &Value::from("name a user or an organisation")), "never everyone");
    let (status, _) = admin.delete(&format!("/admin/sessions?user={user}&limit=1")).await;
    assert_eq!(status, 400, "limit is for listing");
    assert_eq!(admin.sessions("").await.len(), 4, "refused ends ended nothing");

    let (status, body) = admin.delete(&format!("/admin/sessions?user={user}")).await;
    assert_eq!((status, body["ended"].as_u64()), (200, Some(2)), "{body}");
    assert!(!admin.logged_in("/x", &first).await, "the user's first browser is logged out");
    assert!(!admin.logged_in("/x", &second).await, "and the second");
    assert!(admin.logged_in("/x", &clerk).await, "another user is not");

    // One session by its handle; a second try finds nothing.
    let handle = admin.sessions("").await[0]["handle"].as_str().unwrap().to_owned();
    let (status, body) = admin.delete(&format!("/admin/sessions/{handle}")).await;
    assert_eq!((status, body["ended"].as_u64()), (200, Some(1)));
    let (status, _) = admin.delete(&format!("/admin/sessions/{handle}")).await;
    assert_eq!(status, 404);
    assert_eq!(admin.sessions("").await.len(), 1);

    // The rest of the organisation.
    let (status, body) = admin.delete("/admin/sessions?organisation=00261581").await;
    assert_eq!((status, body["ended"].as_u64()), (200, Some(1)));
    assert!(!admin.logged_in("/x", &clerk).await && !admin.logged_in("/x", &clerk_again).await);
    assert!(admin.sessions("").await.is_empty());

    let actions = admin.audit("admin_action", 4).await;
    let summary: Vec<(&str, &str, u64)> = actions
        .iter()
        .map(|a| (a["action"].as_str().unwrap(), a["result"].as_str().unwrap(), a["sessions_ended"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("end_user_sessions", "success", 2),
            ("end_session", "success", 1),
            ("end_session", "unmatched", 0),
            ("end_organisation_sessions", "success", 1)
        ]
    );
    assert_eq!(actions[0]["target"], user.as_str());
    let ends = admin.audit("session_end", 4).await;
    assert_eq!(ends.iter().filter(|e| e["reason"] == "admin").count(), 4, "{ends:#?}");
    let file = std::fs::read_to_string(admin.dir.path().join("audit.jsonl")).unwrap();
    assert_no_personal_data(&file, &[&first, &second, &clerk, &clerk_again]);
}

// ---------------------------------------------------------------------------------------
// Per-user limit and log out everywhere
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_login_beyond_max_sessions_per_user_ends_that_users_oldest_session() {
    let admin = Admin::start("max_sessions_per_user = 2").await;
    let (oldest, _) = admin.gw.login_to("/", 0).await;
    admin.gw.clock.advance(Duration::from_secs(1));
    let (middle, _) = admin.gw.login_to("/", 0).await;
    admin.gw.clock.advance(Duration::from_secs(1));
    let (clerk, _) = admin.gw.login_to("/", 1).await;
    assert!(admin.logged_in("/x", &oldest).await, "at the limit, nothing ends");
    let (newest, _) = admin.gw.login_to("/", 0).await;

    assert!(!admin.logged_in("/x", &oldest).await, "the oldest session ended");
    assert!(admin.logged_in("/x", &middle).await);
    assert!(admin.logged_in("/x", &newest).await, "the new login stands");
    assert!(admin.logged_in("/x", &clerk).await, "another user's sessions do not count");
    let ends = admin.audit("session_end", 1).await;
    assert_eq!(ends.len(), 1, "{ends:#?}");
    assert_eq!(ends[0]["reason"], "limit");
    assert_eq!(ends[0]["organisation"], "00007064");
}

#[tokio::test]
async fn log_out_everywhere_ends_the_users_sessions_in_every_browser() {
    let admin = Admin::start("").await;
    let [laptop, phone, clerk] = admin.logins([0, 0, 1]).await;

    // A link from another site asks first, offering both choices as POST forms.
    let confirm = admin
        .gw
        .client
        .get(admin.gw.url("/.aisgate/logout?everywhere=1"))
        .header("sec-fetch-site", "cross-site")
        .header("accept-language", "en")
        .header("cookie", &laptop)
        .send()
        .await
        .unwrap();
    assert_eq!(confirm.status(), 200);
    let page = confirm.text().await.unwrap();
    // Relative: the form posts to the host whose session cookie it ends.
    assert!(page.contains("action=\"/.aisgate/logout?everywhere=1\""), "{page}");
    assert!(admin.logged_in("/x", &laptop).await && admin.logged_in("/x", &phone).await, "nothing happened yet");
    let plain = admin.gw.client.get(admin.gw.url("/.aisgate/logout")).header("sec-fetch-site", "cross-site");
    let page = plain.header("accept-language", "en").send().await.unwrap().text().await.unwrap();
    assert!(page.contains(">Log out on all devices</button>"), "{page}");

    let out = admin
        .gw
        .client
        .post(admin.gw.url("/.aisgate/logout?everywhere=1"))
        .header("cookie", &laptop)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 302);
    assert!(!admin.logged_in("/x", &laptop).await, "this browser is logged out");
    assert!(!admin.logged_in("/x", &phone).await, "and the other browser too");
    assert!(admin.logged_in("/x", &clerk).await, "another user is not");
    let logouts = admin.audit("logout", 2).await;
    let everywhere = logouts.iter().find(|l| l["reason"] == "everywhere").expect("an everywhere logout event");
    assert_eq!((everywhere["sessions_ended"].as_u64(), &everywhere["result"]), (Some(1), &Value::from("success")));
}

// ---------------------------------------------------------------------------------------
// Maintenance mode
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn maintenance_answers_503_with_retry_after_and_leaves_other_apps_and_ops_alone() {
    let admin = Admin::start("").await;
    let cookie = admin.gw.login().await;
    let on = |app: &str, body: &str| {
        admin.gw.client.put(admin.ops(&format!("/admin/maintenance/{app}"))).bearer_auth(TOKEN).body(body.to_owned())
    };
    let resp = on("desk", r#"{"message": "Do 14:00 <b>migrace</b>", "retry_after_secs": 120}"#).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(on("nonesuch", "").send().await.unwrap().status(), 404);
    assert_eq!(on("desk", r#"{"mesage": "typo"}"#).send().await.unwrap().status(), 400);

    let page = admin.gw.navigate("/desk/report", Some(&cookie)).await;
    assert_eq!(page.status(), 503);
    assert_eq!(page.headers()["retry-after"], "120");
    let html = page.text().await.unwrap();
    assert!(html.contains("<h1>Probíhá údržba</h1>") && html.contains("Do 14:00 &lt;b&gt;migrace&lt;/b&gt;"), "{html}");
    let english = admin
        .gw
        .client
        .get(admin.gw.url("/desk/"))
        .header("accept", "text/html")
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!((english.status().as_u16(), english.headers()["retry-after"].to_str().unwrap()), (503, "120"));
    assert!(english.text().await.unwrap().contains("<h1>Under maintenance</h1>"), "without a session too");
    let api = admin.gw.client.get(admin.gw.url("/desk/api")).header("accept", "application/json").send().await.unwrap();
    assert_eq!(api.status(), 503);
    assert_eq!(api.json::<Value>().await.unwrap()["error"], "maintenance");

    assert!(admin.logged_in("/x", &cookie).await, "the other app is unaffected");
    let metrics = admin.gw.client.get(admin.ops("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200, "ops unaffected");
    let (_, listed) = admin.get("/admin/maintenance").await;
    assert_eq!(listed["apps"][0]["app"], "desk");
    assert_eq!(listed["apps"][0]["retry_after_secs"], 120);

    let (status, _) = admin.delete("/admin/maintenance/desk").await;
    assert_eq!(status, 200);
    assert!(admin.logged_in("/desk/report", &cookie).await, "back after maintenance");
    let actions = admin.audit("admin_action", 2).await;
    let names: Vec<&str> = actions.iter().map(|a| a["action"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["maintenance_on", "maintenance_off"]);
    assert_eq!(actions[0]["target"], "desk");
}

// ---------------------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------------------

fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_aisgate")).args(args).output().unwrap()
}

fn config_of(admin: &Admin) -> PathBuf {
    admin.gw.stack_dir.join("aisgate.toml")
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[tokio::test]
async fn the_cli_lists_and_ends_sessions_and_switches_maintenance_through_the_api() {
    let admin = Admin::start("").await;
    let (official, _) = admin.gw.login_to("/desk/", 0).await;
    let (clerk, _) = admin.gw.login_to("/", 1).await;
    let config = config_of(&admin);
    let run = |args: Vec<String>| {
        let config = config.clone();
        tokio::task::spawn_blocking(move || {
            let mut all = args;
            all.extend(["--config".to_owned(), arg(&config).to_owned()]);
            cli(&all.iter().map(String::as_str).collect::<Vec<_>>())
        })
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let list = run(args(&["sessions", "list", "--organisation", "00007064"])).await.unwrap();
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    let table = String::from_utf8_lossy(&list.stdout).into_owned();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "header and one session: {table}");
    assert!(lines[0].starts_with("handle\tuser\tprovider\tapp\torganisation"), "{table}");
    let columns: Vec<&str> = lines[1].split('\t').collect();
    assert_eq!((columns[2], columns[3], columns[4]), ("jip", "desk", "00007064"), "{table}");
    assert_no_personal_data(&table, &[&official, &clerk]);

    let end = run(args(&["sessions", "end-user", columns[1]])).await.unwrap();
    assert!(end.status.success(), "{}", String::from_utf8_lossy(&end.stderr));
    assert!(String::from_utf8_lossy(&end.stdout).contains("\"ended\":1"));
    assert!(!admin.logged_in("/desk/", &official).await);
    let json = run(args(&["sessions", "list", "--json"])).await.unwrap();
    let listed: Value = serde_json::from_slice(&json.stdout).unwrap();
    let handle = listed["sessions"][0]["handle"].as_str().unwrap().to_owned();
    let end = run(args(&["sessions", "end", &handle])).await.unwrap();
    assert!(end.status.success());
    assert!(!admin.logged_in("/", &clerk).await);
    let again = run(args(&["sessions", "end", &handle])).await.unwrap();
    assert_eq!(again.status.code(), Some(1), "nothing to end is an error");
    assert!(String::from_utf8_lossy(&again.stderr).contains("404"));

    let on = run(args(&["maintenance", "on", "desk", "--message", "Upgrade", "--retry-after", "60"])).await.unwrap();
    assert!(on.status.success(), "{}", String::from_utf8_lossy(&on.stderr));
    let page = admin.gw.navigate("/desk/", None).await;
    assert_eq!((page.status().as_u16(), page.headers()["retry-after"].to_str().unwrap()), (503, "60"));
    assert!(run(args(&["maintenance", "off", "desk"])).await.unwrap().status.success());
    assert_eq!(admin.gw.navigate("/desk/", None).await.status(), 302, "to the login again");

    // Flags instead of the configuration; a wrong token is refused by the API.
    let wrong = admin.dir.path().join("wrong.token");
    std::fs::write(&wrong, "not-the-token-0123456789abcdef-0123456789").unwrap();
    let ops = admin.gw.ops.to_string();
    let refused = tokio::task::spawn_blocking(move || {
        cli(&["sessions", "list", "--ops", &ops, "--token-file", wrong.to_str().unwrap()])
    })
    .await
    .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"), "{}", String::from_utf8_lossy(&refused.stderr));
}

#[tokio::test]
async fn without_a_token_file_the_admin_api_does_not_exist() {
    let gw = Gateway::start(StackOptions { upstream: Some(header_echo().await), ..StackOptions::default() }).await;
    let resp = gw.client.get(format!("http://{}/admin/sessions", gw.ops)).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), 404);
}

// ---------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------

/// A store as `[session]` with the server's `session_extra` configures it (one instance).
fn redis_store(redis: &Redis) -> RedisStore {
    // The `[session.redis]` table, read as the `redis` field of `[session]`.
    let lines =
        format!("keys = []\nidle_timeout_secs = 600\n{}", redis.session_extra().replace("[session.redis]", "[redis]"));
    let session: aisgate::config::SessionConfig = toml::from_str(&lines).unwrap();
    let opts = RedisStoreOptions::of(&session, 60, 1, &Clock::system());
    let keyring = Keyring::from_secrets(vec![("k1".into(), vec![7u8; 32])]).unwrap();
    RedisStore::configured(&session, keyring.record_keys(), opts, &|_| None).unwrap()
}

fn session(sub: &str, created_at: u64) -> Arc<Session> {
    let identity = Identity { provider: "jip".into(), subject: sub.into(), ..Identity::default() };
    Arc::new(Session::new(identity, aisgate::provider::LogoutState::None, 3600, created_at))
}

#[tokio::test]
async fn redis_per_user_index_ends_the_oldest_across_instances_and_drops_stale_members() {
    let Some(redis) = Redis::start().await else { return };
    let (a, b) = (redis_store(&redis), redis_store(&redis));
    let mut ended_at_a = a.ended_sessions();
    let now = Clock::system().now_unix();
    let keys: Vec<StoreKey> = (0u8..4).map(|i| StoreKey::of(&[i; 32])).collect();
    // Saved through both instances, out of creation order.
    a.save(keys[1], session("alice", now - 20)).await.unwrap();
    b.save(keys[0], session("alice", now - 30)).await.unwrap();
    a.save(keys[2], session("alice", now - 10)).await.unwrap();
    b.save(StoreKey::of(&[9; 32]), session("bob", now - 40)).await.unwrap();
    let found = b.user_sessions("jip", "alice").await.unwrap();
    assert_eq!(found.iter().map(|s| s.key).collect::<Vec<_>>(), keys[..3].to_vec(), "oldest first");
    assert_eq!(found[0].created_at, now - 30);

    // No key name carries the subject.
    let mut conn = redis.conn().await;
    let names: Vec<String> = redis::cmd("KEYS").arg("*").query_async(&mut conn).await.unwrap();
    assert!(names.iter().any(|n| n.starts_with("aisgate:u:")), "{names:?}");
    assert!(names.iter().all(|n| !n.contains("alice") && !n.contains("bob")), "{names:?}");

    // A fourth login at B with a limit of 2 ends the two oldest, announced at A.
    let newest = session("alice", now);
    b.save(keys[3], newest.clone()).await.unwrap();
    let ended = users::enforce_limit(&b, &Audit::off(), Origin::none(), keys[3], &newest, 2).await.unwrap();
    assert_eq!(ended, 2);
    assert!(a.load(&keys[0]).await.unwrap().is_none() && a.load(&keys[1]).await.unwrap().is_none());
    assert!(a.load(&keys[2]).await.unwrap().is_some() && a.load(&keys[3]).await.unwrap().is_some());
    let mut announced = Vec::new();
    for _ in 0..2 {
        announced.push(tokio::time::timeout(Duration::from_secs(2), ended_at_a.recv()).await.unwrap().unwrap());
    }
    announced.sort_by_key(|k| k.0);
    let mut expected = vec![keys[0], keys[1]];
    expected.sort_by_key(|k| k.0);
    assert_eq!(announced, expected, "the other instance hears of both ends");
    assert!(a.load(&StoreKey::of(&[9; 32])).await.unwrap().is_some(), "another user untouched");

    // A member whose record is gone (idle expiry) is dropped at the next look-up.
    let stale: String = keys[2].0.iter().map(|b| format!("{b:02x}")).collect();
    let _: () =
        redis::cmd("DEL").arg(format!("aisgate:{{s:{}}}:{stale}", &stale[..2])).query_async(&mut conn).await.unwrap();
    let left = a.user_sessions("jip", "alice").await.unwrap();
    assert_eq!(left.iter().map(|s| s.key).collect::<Vec<_>>(), vec![keys[3]]);
    let user_sets: Vec<String> = redis::cmd("KEYS").arg("aisgate:u:*").query_async(&mut conn).await.unwrap();
    let mut members = 0;
    for set in user_sets {
        let n: usize = redis::cmd("ZCARD").arg(&set).query_async(&mut conn).await.unwrap();
        members += n;
    }
    assert_eq!(members, 2, "alice's newest and bob's: stale and ended members are gone");
}

#[tokio::test]
async fn redis_admin_listing_ending_and_maintenance_are_shared_by_both_instances() {
    let Some(redis) = Redis::start().await else { return };
    // As the README's ACL for the store allows, and no more: the admin features need no
    // command beyond it (a refused one would read as an outage).
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let acl = readme.lines().find(|l| l.starts_with("ACL SETUSER aisgate on >PASSWORD")).expect("the README's ACL");
    let mut args: Vec<String> = acl.split_whitespace().skip(2).map(str::to_owned).collect();
    args[2] = ">admin-test-password".into();
    let mut conn = redis.conn().await;
    let _: () = redis::cmd("ACL").arg("SETUSER").arg(&args).query_async(&mut conn).await.unwrap();
    let password = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(password.path(), "admin-test-password").unwrap();
    let store =
        redis.session_extra() + &format!("username = \"aisgate\"\npassword_file = \"{}\"\n", password.path().display());
    let admin = Admin::start_with("max_sessions_per_user = 5", store).await;
    let (official, _) = admin.gw.login_to("/desk/", 0).await;
    let (clerk, _) = admin.gw.login_to("/", 1).await;
    // Instance B: the same configuration built anew (as the pair's second gateway).
    let path = config_of(&admin);
    let config = aisgate::config::load(&path).unwrap();
    let b = aisgate::gateway::Gateway::build_with_clock(
        &config,
        &path,
        &aisgate::gateway::process_env,
        admin.gw.clock.clone(),
    )
    .unwrap();

    let listed = admin.sessions("").await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.iter().all(|s| s["last_seen"].is_u64()), "last use read from the idle TTL: {listed:?}");
    assert_no_personal_data(&Value::from(listed.clone()).to_string(), &[&official, &clerk]);
    let desk = listed.iter().find(|s| s["app"] == "desk").unwrap();

    // Maintenance switched on at A is in force at B after B's next refresh (≤ 1 s).
    let (status, _) = admin.call(reqwest::Method::PUT, "/admin/maintenance/desk", Some(TOKEN)).await;
    assert_eq!(status, 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while b.maintenance.notice("desk").is_none() {
        assert!(tokio::time::Instant::now() < deadline, "B did not see the maintenance within 3 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(b.maintenance.notice("desk").unwrap().retry_after_secs, 300, "the default Retry-After");
    assert!(b.maintenance.notice("echo").is_none());
    let (status, _) = admin.delete("/admin/maintenance/desk").await;
    assert_eq!(status, 200);
    aisgate::admin::maintenance::refresh(&b).await.unwrap();
    assert!(b.maintenance.notice("desk").is_none(), "off at A is off at B");

    // B lists what A made, and ends A's user by label: A logs the user out.
    let found = b.store.scan_sessions(&|_: &StoreKey, _: &Session| true, 10).await.unwrap();
    assert_eq!(found.len(), 2);
    let user = desk["user"].as_str().unwrap();
    let labels = b.keyring.log_label_key();
    let at_b: Vec<_> = found.iter().filter(|l| l.session.identity.log_label_with(&labels) == user).collect();
    assert_eq!(at_b.len(), 1);
    assert!(b.store.remove(&at_b[0].key).await.unwrap().is_some());
    assert!(!admin.logged_in("/desk/", &official).await, "ended at B, logged out at A");
    assert!(admin.logged_in("/", &clerk).await);
}
