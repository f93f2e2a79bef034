//! The shared session store on a real **Redis Cluster** (issue 10 item 1): `redis-server`s in
//! cluster mode started by the test (loopback ports, temporary directories), joined with
//! `redis-cli --cluster create`, and gateway instances using it through
//! `[session.redis] cluster = [...]`. Skipped with a message when `redis-server` or
//! `redis-cli` is missing, unless `AISGATE_REQUIRE_PEERS` is set, where a skip is a failure.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aisgate::audit::{Audit, Origin};
use aisgate::clock::Clock;
use aisgate::identity::{Identity, LegacyAccount};
use aisgate::links::{Link, LinkError, LinkKey, LinkStore};
use aisgate::session::keyring::Keyring;
use aisgate::session::redis::{RedisSetupError, RedisStore, RedisStoreOptions};
use aisgate::session::shared::{CounterScope, OnceScope, SharedState};
use aisgate::session::{users, Session, SessionStore, StoreKey};
use aisgate::sim::stack::StackOptions;
use support::instance::Instance;
use support::redis_server::RedisCluster;
use support::{location, logs, store_checks, Gateway};

async fn get_json(client: &reqwest::Client, url: String, cookie: &str) -> reqwest::Response {
    client.get(url).header("accept", "application/json").header("cookie", cookie).send().await.unwrap()
}

async fn readyz(ops: SocketAddr) -> (u16, serde_json::Value) {
    let resp = reqwest::get(format!("http://{ops}/readyz")).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// Every session record key in the cluster (asked of each running master).
async fn session_records(cluster: &RedisCluster, prefix: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (i, node) in cluster.nodes.iter().enumerate().filter(|(_, n)| n.child.is_some()) {
        let mut conn = cluster.node_conn(node).await;
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{prefix}{{s:??}}:*")).query_async(&mut conn).await.unwrap();
        let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut conn).await.unwrap();
        if matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master") {
            found.extend(keys.into_iter().map(|k| (i, k)));
        }
    }
    found
}

fn keyring() -> Keyring {
    Keyring::from_secrets(vec![("k1".into(), vec![7u8; 32])]).unwrap()
}

/// A store on the cluster as `[session.redis]` with `cluster = [...]` configures it.
fn cluster_store(cluster: &RedisCluster, prefix: &str, clock: &Clock) -> RedisStore {
    let nodes: Vec<String> = cluster.urls().iter().map(|u| format!("\"{u}\"")).collect();
    let cfg: aisgate::config::RedisConfig = toml::from_str(&format!(
        "cluster = [{}]\nkey_prefix = \"{prefix}\"\ntimeout_ms = 500\nlocal_cache_ms = 0\n",
        nodes.join(", ")
    ))
    .unwrap();
    let opts = store_checks::store_options(clock);
    RedisStore::new(&cfg, keyring().record_keys(), opts, &|_| None).unwrap()
}

fn user_session(sub: &str, sid: Option<&str>, created_at: u64) -> Arc<Session> {
    let mut identity = Identity { provider: "jip".into(), subject: sub.into(), ..Identity::default() };
    if let Some(sid) = sid {
        identity.attributes.insert("sid".into(), vec![sid.into()]);
    }
    Arc::new(Session::new(identity, aisgate::provider::LogoutState::None, 3600, created_at))
}

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn cluster_settings_are_checked_at_startup() {
    let setup = |text: &str| {
        let cfg: aisgate::config::RedisConfig = toml::from_str(text).unwrap();
        let opts = RedisStoreOptions::of(&toml::from_str("keys = []\n").unwrap(), 60, 1, &Clock::system());
        RedisStore::new(&cfg, keyring().record_keys(), opts, &|_| None).err()
    };
    let both = setup("url = \"redis://127.0.0.1:1\"\ncluster = [\"redis://127.0.0.1:2\"]\n");
    assert!(matches!(both, Some(RedisSetupError::OneTarget)), "{both:?}");
    assert!(both
        .unwrap()
        .to_string()
        .contains("exactly one of url (one server), sentinels (with master_name) and cluster"));
    let mixed = setup("cluster = [\"redis://127.0.0.1:2\", \"rediss://127.0.0.1:3\"]\n");
    assert!(matches!(mixed, Some(RedisSetupError::MixedClusterTls)), "{mixed:?}");
    let password = setup("cluster = [\"redis://:secret@127.0.0.1:2\"]\n");
    assert!(matches!(password, Some(RedisSetupError::PasswordInUrl)), "{password:?}");
    let ca = setup("cluster = [\"redis://127.0.0.1:2\"]\nca_file = \"/nonexistent\"\n");
    assert!(matches!(ca, Some(RedisSetupError::CaWithoutTls)), "{ca:?}");
    let braces = setup("cluster = [\"redis://127.0.0.1:2\"]\nkey_prefix = \"gw{1}:\"\n");
    assert!(matches!(braces, Some(RedisSetupError::BracesInPrefix)), "{braces:?}");
    assert!(
        setup("cluster = [\"redis://127.0.0.1:2\", \"redis://127.0.0.1:3\"]\n").is_none(),
        "a valid cluster setting"
    );
}

// ---------------------------------------------------------------------------------------
// Two gateway instances on one cluster
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_session_on_the_cluster_works_at_both_instances_and_logout_at_one_ends_it_at_the_other() {
    logs::capture();
    let Some(cluster) = RedisCluster::start(3, 0).await else { return };
    let a = Gateway::start(StackOptions { session_extra: cluster.session_extra(), ..Default::default() }).await;
    let b = Instance::of(&a).await;
    let (_, ready) = readyz(b.ops).await;
    assert_eq!(ready["session_store"]["backend"], "redis", "{ready}");
    assert_eq!(ready["session_store"]["ready"], true, "{ready}");

    // `aisgate check` names the cluster.
    let config = a.stack_dir.join("aisgate.toml");
    let checked = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_aisgate")).arg("check").arg("--config").arg(config).output()
    })
    .await
    .unwrap()
    .unwrap();
    let out = String::from_utf8_lossy(&checked.stdout);
    assert!(checked.status.success(), "{out}{}", String::from_utf8_lossy(&checked.stderr));
    let seeds = cluster.urls()[..2].join(", ");
    assert!(
        out.contains(&format!("  session store: redis cluster, seed nodes {seeds}, key prefix \"aisgate:\"")),
        "{out}"
    );

    let cookie = a.login().await;
    let at_a = get_json(&a.client, a.url("/x"), &cookie).await;
    assert_eq!(at_a.status(), 200);
    let at_a: serde_json::Value = at_a.json().await.unwrap();
    let at_b = get_json(&b.client, b.url("/x"), &cookie).await;
    assert_eq!(at_b.status(), 200, "instance B serves the session A made, through the cluster");
    let at_b: serde_json::Value = at_b.json().await.unwrap();
    assert!(at_a["headers"]["x-auth-subject"].is_string());
    assert_eq!(at_b["headers"]["x-auth-subject"], at_a["headers"]["x-auth-subject"]);
    // One record, with its live-shard member in the same slot (the load script needs both).
    let records = session_records(&cluster, "aisgate:").await;
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0].1;
    let tag = &record["aisgate:".len()..record.find('}').unwrap() + 1];
    assert_eq!(cluster.slot(record).await, cluster.slot(&format!("aisgate:{tag}live")).await);
    let mut conn = cluster.conn().await;
    let live: u64 = redis::cmd("ZCARD").arg(format!("aisgate:{tag}live")).query_async(&mut conn).await.unwrap();
    assert_eq!(live, 1, "the session is counted in its shard");

    // Logout at B ends it at A (A must not serve it from its local copy for more than 1 s).
    let logout = b.client.post(b.url("/.aisgate/logout")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(logout.status(), 302);
    let started = tokio::time::Instant::now();
    loop {
        let after = a.navigate("/x", Some(&cookie)).await;
        if after.status() == 302 {
            assert!(!location(&after).starts_with(&a.url("/")), "to the IdP, not the app: {}", location(&after));
            break;
        }
        assert_eq!(after.status(), 200);
        assert!(started.elapsed() < Duration::from_secs(1), "logged out at B, still served at A after 1 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(session_records(&cluster, "aisgate:").await.is_empty(), "the record is gone");
    let live: u64 = redis::cmd("ZCARD").arg(format!("aisgate:{tag}live")).query_async(&mut conn).await.unwrap();
    assert_eq!(live, 0, "and its live member");

    // A login started at A completes at B, once.
    store_checks::assert_login_completes_at_the_other_once(&a, &b).await;
}

/// The SAML replay cache and the rate limits are single keys in any slot: shared by both
/// instances on the cluster.
#[tokio::test]
async fn replays_are_refused_and_rate_limits_count_across_instances_on_the_cluster() {
    logs::capture();
    let Some(cluster) = RedisCluster::start(3, 0).await else { return };
    let apps = "[[app]]\nname = \"desk\"\nupstream = \"{upstream}\"\nproviders = [\"nia\", \"jip\"]\n";
    let (a, b) = store_checks::saml_pair(apps, "login_starts_per_minute = 4\n", cluster.session_extra()).await;
    // Login start 1 (of 4 per minute) at A.
    store_checks::assert_saml_replay_refused(&a, &b).await;

    // Starts 2 and 3 at B, 4 at A; the fifth is refused at either.
    let start = |n: usize| format!("/.aisgate/login?return=%2Fdesk%2F{n}&provider=jip");
    let at_b = |path: String| b.client.get(b.url(&path)).header("accept", "text/html").send();
    assert_eq!(at_b(start(1)).await.unwrap().status(), 302);
    assert_eq!(at_b(start(2)).await.unwrap().status(), 302);
    assert_eq!(a.navigate(&start(3), None).await.status(), 302);
    let fifth = at_b(start(4)).await.unwrap();
    let id = logs::request_id(&fifth);
    assert_eq!(fifth.status(), 429, "the client's fifth start within the minute, whichever instance");
    let line = logs::line_with(&id, "login starts rate-limited");
    assert!(line.contains("too many attempts from this client address"), "{line}");
    assert_eq!(a.navigate(&start(5), None).await.status(), 429, "and at A too");
}

/// 40 parallel requests of one session due for refresh, spread over both instances on the
/// cluster: one refresh at the IdP (the lease `{s:XX}l:…` is one key next to the session).
#[tokio::test]
async fn forty_parallel_requests_over_both_instances_refresh_once_on_the_cluster() {
    logs::capture();
    let Some(cluster) = RedisCluster::start(3, 0).await else { return };
    let (a, b, cookie) = store_checks::bearer_pair(cluster.session_extra()).await;
    store_checks::assert_forty_requests_refresh_once(&a, &b, &cookie).await;
}

// ---------------------------------------------------------------------------------------
// The store's operations on the cluster
// ---------------------------------------------------------------------------------------

/// Sessions spread over every master; both instances count them all (the 256 live shards);
/// an expiry is announced at both; the per-user limit, the admin listing, logout by subject
/// and sid, the maintenance board, one-time ids and counters all work across slots.
#[tokio::test]
async fn the_store_spreads_sessions_over_the_masters_and_every_operation_works_across_slots() {
    let Some(cluster) = RedisCluster::start(3, 0).await else { return };
    let clock = Clock::test();
    let dir = tempfile::tempdir().unwrap();
    let ((audit_a, path_a), (audit_b, path_b)) =
        (store_checks::audit_file(dir.path(), "a", &clock), store_checks::audit_file(dir.path(), "b", &clock));
    let a = cluster_store(&cluster, "c1:", &clock).with_audit(audit_a.clone());
    let b = cluster_store(&cluster, "c1:", &clock).with_audit(audit_b.clone());
    let now = clock.now_unix();
    let keys: Vec<StoreKey> = (0u8..60).map(|i| StoreKey::of(&[i; 32])).collect();
    for (i, key) in keys.iter().enumerate() {
        let store = if i % 2 == 0 { &a } else { &b };
        store.save(*key, user_session(&format!("user{i}"), Some(&format!("sid{i}")), now)).await.unwrap();
    }
    let records = session_records(&cluster, "c1:").await;
    assert_eq!(records.len(), 60);
    for master in 0..3 {
        assert!(records.iter().any(|(node, _)| *node == master), "master {master} holds sessions: {records:?}");
    }
    store_checks::both_count(&a, &b, 60).await;
    for key in &keys {
        assert!(b.load(key).await.unwrap().is_some(), "B reads every session");
    }

    // Logout by sid and by subject (index sets in other slots than the sessions).
    assert_eq!(b.remove_for_subject("jip", None, Some("sid3")).await.unwrap(), 1);
    assert!(a.load(&keys[3]).await.unwrap().is_none());
    assert_eq!(a.remove_for_subject("jip", Some("user4"), None).await.unwrap(), 1);
    assert!(b.load(&keys[4]).await.unwrap().is_none());
    store_checks::both_count(&a, &b, 58).await;

    // The per-user limit: four sessions of alice over both instances; a limit of 2 ends the
    // two oldest.
    let alice: Vec<StoreKey> = (100u8..104).map(|i| StoreKey::of(&[i; 32])).collect();
    for (i, key) in alice.iter().enumerate() {
        let store = if i % 2 == 0 { &a } else { &b };
        store.save(*key, user_session("alice", None, now - 40 + 10 * i as u64)).await.unwrap();
    }
    let found = b.user_sessions("jip", "alice").await.unwrap();
    assert_eq!(found.iter().map(|s| s.key).collect::<Vec<_>>(), alice, "oldest first");
    let newest = b.load(&alice[3]).await.unwrap().unwrap();
    let ended = users::enforce_limit(&b, &Audit::off(), Origin::none(), alice[3], &newest, 2).await.unwrap();
    assert_eq!(ended, 2);
    assert!(a.load(&alice[0]).await.unwrap().is_none() && a.load(&alice[1]).await.unwrap().is_none());
    assert!(a.load(&alice[2]).await.unwrap().is_some());

    // The admin listing walks every shard on every master.
    let every = a.scan_sessions(&|_, _| true, 1000).await.unwrap();
    let listed: std::collections::HashSet<StoreKey> = every.iter().map(|l| l.key).collect();
    assert_eq!(listed.len(), every.len(), "each session listed once");
    for key in keys.iter().enumerate().filter(|(i, _)| ![3, 4].contains(i)).map(|(_, k)| k) {
        assert!(listed.contains(key), "a live session is listed");
    }
    assert_eq!(listed.len(), 58 + 2, "58 of the 60 and alice's two");
    let hers = b.scan_sessions(&|_, s| s.identity.subject == "alice", 1000).await.unwrap();
    assert_eq!(hers.len(), 2);

    // The maintenance board (one tag, one transaction) is shared.
    a.set_maintenance("desk", Some(b"{\"message\":\"x\"}")).await.unwrap();
    a.set_maintenance("billing", Some(b"{}")).await.unwrap();
    let mut board = b.maintenance().await.unwrap();
    board.sort();
    assert_eq!(board.iter().map(|(app, _)| app.as_str()).collect::<Vec<_>>(), ["billing", "desk"]);
    b.set_maintenance("desk", None).await.unwrap();
    assert_eq!(a.maintenance().await.unwrap().len(), 1);

    // One-time ids and attempt counters.
    let ttl = Duration::from_secs(60);
    assert!(a.first_use(OnceScope::SamlAssertion, "nia", "id-1", ttl).await.unwrap());
    assert!(!b.first_use(OnceScope::SamlAssertion, "nia", "id-1", ttl).await.unwrap(), "a replay at B");
    assert_eq!(a.count_attempt(CounterScope::LoginStart, "192.0.2.1", ttl).await.unwrap(), 1);
    assert_eq!(b.count_attempt(CounterScope::LoginStart, "192.0.2.1", ttl).await.unwrap(), 2);
    // The refresh lease: one holder across instances.
    let lease = a.try_refresh_lease(&keys[0], Duration::from_secs(3)).await.unwrap().expect("free");
    assert!(b.try_refresh_lease(&keys[0], Duration::from_secs(3)).await.unwrap().is_none(), "held by A");
    lease.release().await;
    assert!(b.try_refresh_lease(&keys[0], Duration::from_secs(3)).await.unwrap().is_some(), "released");

    // An expiry (record gone by TTL, here deleted) is announced at both instances and
    // audited once, by one of them, as idle (last: the clock moves past every idle end).
    let (mut at_a, mut at_b) = (a.ended_sessions(), b.ended_sessions());
    let record = records.iter().map(|(_, k)| k).find(|k| k.ends_with(&hex(&keys[5].0))).unwrap().clone();
    let mut conn = cluster.conn().await;
    let _: () = redis::cmd("DEL").arg(&record).query_async(&mut conn).await.unwrap();
    clock.advance(Duration::from_secs(601));
    for ended in [&mut at_a, &mut at_b] {
        let skip = [keys[3], keys[4], alice[0], alice[1]];
        assert_eq!(store_checks::next_ended(ended, &skip).await, Some(keys[5]), "the expiry is announced");
    }
    // (The logouts and the limit above were ended by their callers, who audit them.)
    let ends = store_checks::session_ends(&[(&audit_a, &path_a), (&audit_b, &path_b)]);
    let ends: Vec<(&str, &str)> =
        ends.iter().map(|(_, e)| (e["session"].as_str().unwrap(), e["reason"].as_str().unwrap())).collect();
    assert_eq!(ends, [(keys[5].log_label().as_str(), "idle")], "one record over both instances");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Account links on the cluster: every link key is in the `{links}` slot, so the
/// create/delete/import scripts run there.
#[tokio::test]
async fn account_links_work_on_the_cluster() {
    let Some(cluster) = RedisCluster::start(3, 0).await else { return };
    let nodes: Vec<String> = cluster.urls().iter().map(|u| format!("\"{u}\"")).collect();
    // The link store names its keys with a key derived from the session key (no id in a name).
    let session: aisgate::config::SessionConfig = toml::from_str(&format!(
        "keys = [{{ id = \"k1\", env = \"SESSION_KEY\" }}]\nstore = \"redis\"\n[redis]\ncluster = [{}]\n",
        nodes.join(", ")
    ))
    .unwrap();
    let key =
        |name: &str| (name == "SESSION_KEY").then(|| "Y2x1c3Rlci1saW5rcy1zZXNzaW9uLWtleS0wMTIzNDU2Nzg=".to_owned());
    let links = aisgate::links::redis::RedisLinks::configured(&session, &key).unwrap();
    let link = |bsi: &str, legacy: &str| Link {
        bsi: bsi.into(),
        legacy: LegacyAccount { id: legacy.into(), username: Some(format!("{legacy}-name")), organisation: None },
        created_at: 1,
        source: "admin".into(),
    };
    links.create(link("bsi-1", "old-1")).await.unwrap();
    assert!(matches!(links.create(link("bsi-2", "old-1")).await, Err(LinkError::LegacyTaken)));
    assert_eq!(links.by_bsi("bsi-1").await.unwrap().unwrap().legacy.id, "old-1");
    assert_eq!(links.import(vec![link("bsi-2", "old-2"), link("bsi-3", "old-3")], vec![1, 2]).await.unwrap(), 2);
    assert_eq!(links.list().await.unwrap().len(), 3);
    let gone = links.delete(LinkKey::Legacy("old-2".into())).await.unwrap().unwrap();
    assert_eq!(gone.bsi, "bsi-2");
    assert_eq!(links.list().await.unwrap().iter().map(|l| l.bsi.as_str()).collect::<Vec<_>>(), ["bsi-1", "bsi-3"]);
    for node in cluster.nodes.iter().filter(|n| n.child.is_some()) {
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(&mut node.conn().await).await.unwrap();
        assert!(!keys.iter().any(|k| k.contains("bsi-") || k.contains("old-")), "an id in a key name: {keys:?}");
    }
}

/// Single-logout state on the cluster (single-key commands, any slot): a NameID remembered
/// and a LogoutRequest recorded at one instance are found at the other, the request once.
#[tokio::test]
async fn single_logout_state_works_on_the_cluster() {
    use aisgate::session::slo::LogoutStore;
    let Some(cluster) = RedisCluster::start(3, 0).await else { return };
    let clock = Clock::system();
    let (a, b) = (cluster_store(&cluster, "slo:", &clock), cluster_store(&cluster, "slo:", &clock));
    let ttl = Duration::from_secs(60);
    for i in 0..20 {
        a.remember_name_id("nia", &format!("nameid-{i}"), &format!("subject-{i}"), ttl).await.unwrap();
        a.logout_sent("nia", &format!("_lr-{i}"), ttl).await.unwrap();
    }
    for i in 0..20 {
        let subject = b.subject_of_name_id("nia", &format!("nameid-{i}")).await.unwrap();
        assert_eq!(subject, Some(format!("subject-{i}")));
        assert!(b.take_logout_sent("nia", &format!("_lr-{i}")).await.unwrap(), "answered at B");
        assert!(!a.take_logout_sent("nia", &format!("_lr-{i}")).await.unwrap(), "once");
    }
}

/// TLS to every node (verified against `ca_file`, the nodes' addresses learnt from the
/// cluster included) and an ACL user with exactly the README's permissions for the store plus
/// its cluster additions: logins, use and logout work; a CA that does not vouch for the
/// nodes gives 503s and a not-ready store.
#[tokio::test]
async fn tls_and_an_acl_user_with_the_readme_permissions_work_on_the_cluster() {
    logs::capture();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let pki = aisgate::sim::certs::generate(dirs[0].path()).unwrap();
    let other = aisgate::sim::certs::generate(dirs[1].path()).unwrap();
    let Some(cluster) = RedisCluster::start_tls(3, 0, &pki).await else { return };
    let readme = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let acl = readme.lines().find(|l| l.starts_with("ACL SETUSER aisgate on >PASSWORD")).expect("the README's ACL");
    let mut args: Vec<String> = acl.split_whitespace().skip(2).map(str::to_owned).collect();
    args[2] = ">cluster-test-password".into();
    let additions = "+cluster|slots +readonly +asking";
    assert!(readme.contains(&format!("`{additions}`")), "the README names the cluster additions");
    args.extend(additions.split_whitespace().map(str::to_owned));
    for node in &cluster.nodes {
        let mut conn = cluster.node_conn(node).await;
        let _: () = redis::cmd("ACL").arg("SETUSER").arg(&args).query_async(&mut conn).await.unwrap();
    }
    let password = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(password.path(), "cluster-test-password\n").unwrap();
    let with = |ca: &std::path::Path| {
        format!(
            "store = \"redis\"\n[session.redis]\ncluster = [\"{}\"]\nca_file = \"{}\"\nusername = \"aisgate\"\n\
             password_file = \"{}\"\ntimeout_ms = 500\n",
            cluster.urls()[0],
            ca.display(),
            password.path().display()
        )
    };
    let a = Gateway::start(StackOptions { session_extra: with(&pki.ca_cert), ..Default::default() }).await;
    let cookie = a.login().await;
    assert_eq!(get_json(&a.client, a.url("/x"), &cookie).await.status(), 200, "sessions over TLS with the ACL user");
    assert_eq!(session_records(&cluster, "aisgate:").await.len(), 1);
    let logout = a.client.post(a.url("/.aisgate/logout")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(logout.status(), 302);
    assert_eq!(a.navigate("/x", Some(&cookie)).await.status(), 302, "logged out");
    assert!(session_records(&cluster, "aisgate:").await.is_empty());
    let (_, ready) = readyz(a.ops).await;
    assert_eq!(ready["session_store"]["ready"], true, "no command refused (NOPERM reads as an outage): {ready}");

    let b = Gateway::start(StackOptions { session_extra: with(&other.ca_cert), ..Default::default() }).await;
    let refused = b.navigate("/y", None).await;
    let id = logs::request_id(&refused);
    assert_eq!(refused.status(), 503, "nodes the CA does not vouch for are not used");
    logs::line_with(&id, "session store unavailable");
    let (_, ready) = readyz(b.ops).await;
    assert_eq!(ready["session_store"]["ready"], false, "{ready}");
}

// ---------------------------------------------------------------------------------------
// A master failing
// ---------------------------------------------------------------------------------------

/// Three masters with a replica each. The master holding a session's slot is killed: until
/// its replica takes over, requests of that session get the 503 page (the reason logged),
/// a logged-out session never passes, and afterwards the session is served again (it was
/// replicated) without any restart.
#[tokio::test]
async fn a_master_failing_over_gives_503s_never_a_pass_and_the_session_survives() {
    logs::capture();
    let Some(mut cluster) = RedisCluster::start(3, 1).await else { return };
    let a = Gateway::start(StackOptions {
        session_extra: format!("{}local_cache_ms = 0\n", cluster.session_extra()),
        ..Default::default()
    })
    .await;
    let cookie = a.login().await;
    let ended = a.login().await;
    let logout = a.client.post(a.url("/.aisgate/logout")).header("cookie", &ended).send().await.unwrap();
    assert_eq!(logout.status(), 302);
    let records = session_records(&cluster, "aisgate:").await;
    assert_eq!(records.len(), 1, "{records:?}");
    let (master, record) = records[0].clone();
    assert_eq!(master, cluster.master_of(cluster.slot(&record).await).await);
    // Wait until a replica holds the record (replication is asynchronous).
    let mut replicated = false;
    for _ in 0..100 {
        for (i, node) in cluster.nodes.iter().enumerate().filter(|(i, _)| *i != master) {
            let mut conn = cluster.node_conn(node).await;
            let _: () = redis::cmd("READONLY").query_async(&mut conn).await.unwrap();
            let here: Result<bool, _> = redis::cmd("EXISTS").arg(&record).query_async(&mut conn).await;
            replicated |= matches!(here, Ok(true)) && i != master;
        }
        if replicated {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(replicated, "the record reached a replica");

    cluster.kill(master);
    let killed = tokio::time::Instant::now();
    let mut refused = 0;
    let served_again = loop {
        assert!(killed.elapsed() < Duration::from_secs(30), "the session is not served again 30 s after the kill");
        // A logged-out session never passes, whatever the cluster's state.
        let gone = get_json(&a.client, a.url("/x"), &ended).await;
        assert_ne!(gone.status(), 200, "a logged-out session passed during the failover");
        let resp = get_json(&a.client, a.url("/x"), &cookie).await;
        match resp.status().as_u16() {
            200 => break killed.elapsed(),
            503 => {
                let id = logs::request_id(&resp);
                let body = resp.text().await.unwrap();
                assert!(!body.contains("x-auth-subject"), "nothing reached the app: {body}");
                logs::line_with(&id, "session store failed");
                refused += 1;
            }
            other => panic!("unexpected {other} during the failover: {}", resp.text().await.unwrap()),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(refused > 0, "requests to the dead master's slot got 503 until the failover");
    eprintln!(
        "failover: session served again {} ms after SIGKILL of its master ({refused} × 503 before)",
        served_again.as_millis()
    );
    // /readyz follows within the health ping's second.
    let mut ready = readyz(a.ops).await.1;
    for _ in 0..40 {
        if ready["session_store"]["ready"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        ready = readyz(a.ops).await.1;
    }
    assert_eq!(ready["session_store"]["ready"], true, "ready again after the failover: {ready}");
    // New logins work after the failover too.
    let second = a.login().await;
    assert_eq!(get_json(&a.client, a.url("/y"), &second).await.status(), 200);
}

/// A master without a replica (session 6 left this untested; README: "its sessions are
/// unavailable (503, never passed without their session) until it is back"): killed, its
/// sessions fail closed with `Unavailable` — never a session, never "no session" that a
/// caller could mistake for a logout — and `/readyz` says so; nothing can be written to its
/// slots. Restarted (without persistence its sessions are gone), the same store instance
/// serves again without a restart: its old sessions are no sessions, sessions on the other
/// masters survived, new ones in its slots work.
#[tokio::test]
async fn a_master_without_a_replica_fails_its_sessions_closed_until_it_is_back() {
    let Some(mut cluster) = RedisCluster::start(3, 0).await else { return };
    let clock = Clock::test();
    let store = cluster_store(&cluster, "c4:", &clock);
    let now = clock.now_unix();
    // Store keys whose first bytes spread over the 256 tags, so over the three masters.
    let keys: Vec<StoreKey> = (0u8..12).map(|i| StoreKey([i * 21; 32])).collect();
    for (i, key) in keys.iter().enumerate() {
        store.save(*key, user_session(&format!("user{i}"), None, now)).await.unwrap();
    }
    let records = session_records(&cluster, "c4:").await;
    let master_of = |key: &StoreKey| records.iter().find(|(_, r)| r.ends_with(&hex(&key.0))).map(|(m, _)| *m).unwrap();
    let dead = master_of(&keys[0]);
    let (on_dead, elsewhere): (Vec<StoreKey>, Vec<StoreKey>) = keys.iter().partition(|k| master_of(k) == dead);
    assert!(!elsewhere.is_empty(), "sessions on the other masters too: {records:?}");

    cluster.kill(dead);
    let killed = tokio::time::Instant::now();
    // Fails closed at once and for as long as the master is down; /readyz follows.
    let mut unavailable = 0;
    while killed.elapsed() < Duration::from_secs(3) || store.readiness().ready {
        assert!(killed.elapsed() < Duration::from_secs(15), "readiness: {:?}", store.readiness());
        for key in &on_dead {
            match store.load(key).await {
                Err(aisgate::session::StoreError::Unavailable(_)) => unavailable += 1,
                other => panic!("a session on the dead master must fail closed, got {other:?}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(unavailable > 0);
    let ready = store.readiness();
    assert!(!ready.ready && ready.detail.as_deref().is_some_and(|d| d.starts_with("redis")), "{ready:?}");
    // A new session with keys[0]'s first byte: its tag, so its slot on the dead master.
    let mut fresh = [7u8; 32];
    fresh[0] = keys[0].0[0];
    let fresh = StoreKey(fresh);
    assert!(store.save(fresh, user_session("late", None, now)).await.is_err(), "no write to the dead slots");

    // Back (empty: it saved nothing before the crash): the store recovers by itself.
    cluster.nodes[dead].restart().await;
    cluster.wait_ok(Duration::from_secs(30)).await;
    let back = tokio::time::Instant::now();
    while !store.readiness().ready {
        assert!(back.elapsed() < Duration::from_secs(15), "not ready again: {:?}", store.readiness());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for key in &on_dead {
        // A lost record is no session (the user logs in again), read without an error.
        let mut found = store.load(key).await;
        while found.is_err() && back.elapsed() < Duration::from_secs(15) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            found = store.load(key).await;
        }
        assert!(matches!(found, Ok(None)), "{found:?}");
    }
    for key in &elsewhere {
        assert!(store.load(key).await.unwrap().is_some(), "the other masters' sessions survived");
    }
    store.save(fresh, user_session("late", None, now)).await.unwrap();
    assert!(store.load(&fresh).await.unwrap().is_some(), "its slots take new sessions again");
}
