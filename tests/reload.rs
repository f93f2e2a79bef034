//! Hot reload and graceful shutdown of the real `aisgate` binary: SIGHUP and `aisgate reload`
//! apply a new configuration without dropping sessions (memory store) or requests, a broken
//! one leaves the running configuration in place with its `file:line:column` in the log, and
//! SIGTERM lets every in-flight request finish within the grace period.
//!
//! The IdP (simulated JIP/KAAS) and the upstreams run in the test process; the gateway is the
//! binary, started on the configuration the local stack writes. No timing asserts: every
//! wait polls with a deadline.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aisgate::sim::stack::{prepare, StackOptions};

const BIN: &str = env!("CARGO_BIN_EXE_aisgate");
const ADMIN_TOKEN: &str = "reload-test-admin-token-0123456789abcdef";

/// The binary serving a stack's configuration, its output in a log file.
struct Running {
    child: Child,
    dir: PathBuf,
    config: PathBuf,
    log: PathBuf,
    base: String,
    ops: String,
    /// The simulated IdP, serving while the gateway runs.
    _sim: aisgate::sim::kaas::KaasSim,
    client: reqwest::Client,
}

impl Running {
    /// Prepares the stack (simulated IdP, upstream, configuration with the admin API on),
    /// frees its ports and starts the binary on them.
    async fn start(upstream: Option<String>, server_extra: &str) -> Running {
        Running::start_with(upstream, server_extra, "").await
    }

    /// [`Running::start`] with extra `[session]` lines.
    async fn start_with(upstream: Option<String>, server_extra: &str, session_extra: &str) -> Running {
        let opts = StackOptions {
            upstream,
            server_extra: server_extra.to_owned(),
            session_extra: session_extra.to_owned(),
            ..Default::default()
        };
        let stack = prepare(opts).await.expect("stack");
        let ops = stack.ops.local_addr().unwrap();
        let token_file = stack.dir.join("admin.token");
        std::fs::write(&token_file, format!("{ADMIN_TOKEN}\n")).unwrap();
        let mut text = std::fs::read_to_string(&stack.config_path).unwrap();
        text.push_str(&format!("\n[admin]\ntoken_file = \"{}\"\n", token_file.display()));
        std::fs::write(&stack.config_path, text).unwrap();
        let (dir, config, base, sim) = (stack.dir, stack.config_path, stack.public_base, stack.sim);
        // The binary binds the same ports.
        drop((stack.listener, stack.ops, stack.gateway));
        let log = dir.join("aisgate.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .unwrap();
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let running = Running { child, dir, config, log, base, ops: format!("http://{ops}"), _sim: sim, client };
        let (client, health) = (&running.client, &format!("{}/healthz", running.ops));
        running.wait_for(|| async move { client.get(health).send().await.is_ok() }).await;
        running
    }

    /// Polls `ready` until it holds; fails the test with the log after 30 s.
    async fn wait_for<F, Fut>(&self, ready: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready().await {
            assert!(Instant::now() < deadline, "timed out; gateway log:\n{}", self.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, name: &str) {
        let sent = Command::new("kill").args([&format!("-{name}"), &self.child.id().to_string()]).status().unwrap();
        assert!(sent.success(), "kill -{name}");
    }

    async fn metrics(&self) -> String {
        self.client.get(format!("{}/metrics", self.ops)).send().await.unwrap().text().await.unwrap()
    }

    /// `aisgate_config_reloads_total{result}` now.
    async fn reloads(&self, result: &str) -> u64 {
        let needle = format!("aisgate_config_reloads_total{{result=\"{result}\"}} ");
        let text = self.metrics().await;
        text.lines().find_map(|l| l.strip_prefix(&needle)).map_or(0, |v| v.trim().parse().unwrap())
    }

    /// Sends SIGHUP and waits until the reload counted with `result`.
    async fn sighup(&self, result: &str) {
        let before = self.reloads(result).await;
        self.signal("HUP");
        self.wait_for(|| async move { self.reloads(result).await > before }).await;
    }

    fn edit(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        assert!(text.contains(from), "{from:?} not in the config");
        std::fs::write(&self.config, text.replacen(from, to, 1)).unwrap();
    }

    /// Logs in at the simulated JIP/KAAS as demo user 0; returns the `Cookie` header value.
    async fn login(&self) -> String {
        let start =
            self.client.get(format!("{}/private", self.base)).header("accept", "text/html").send().await.unwrap();
        assert_eq!(start.status(), 302, "unauthenticated navigation redirects to the IdP");
        let login_cookie = support::set_cookie(&start, "aisgate_login").expect("pre-login cookie");
        let form = self.client.post(support::location(&start)).form(&[("user", "0")]).send().await.unwrap();
        assert_eq!(form.status(), 303, "simulator redirects to the callback");
        let done = self
            .client
            .get(support::location(&form))
            .header("cookie", format!("aisgate_login={login_cookie}"))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), 302, "callback completes the login");
        format!("aisgate_session={}", support::set_cookie(&done, "aisgate_session").expect("session cookie"))
    }

    /// GET `path` as an API client (no navigation: 401 instead of a login redirect).
    async fn get(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(cookie) = cookie {
            req = req.header("cookie", cookie);
        }
        req.send().await.unwrap()
    }

    /// Waits for the process to exit; its status.
    async fn exit(mut self) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, self.log_text());
            }
            assert!(Instant::now() < deadline, "gateway did not exit; log:\n{}", self.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn sha256_12(path: &Path) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &std::fs::read(path).unwrap());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>()[..12].to_owned()
}

/// The identity headers the upstream received (the header echo answers with them as JSON).
async fn identity_headers(resp: reqwest::Response) -> Vec<String> {
    assert_eq!(resp.status(), 200);
    let echoed: serde_json::Value = resp.json().await.unwrap();
    echoed["headers"].as_object().unwrap().keys().filter(|k| k.starts_with("x-auth-")).cloned().collect()
}

#[tokio::test]
async fn sighup_applies_a_new_rule_and_keeps_memory_store_sessions() {
    let gw = Running::start(Some(support::header_echo().await), "").await;
    let cookie = gw.login().await;
    assert!(identity_headers(gw.get("/private", Some(&cookie)).await).await.contains(&"x-auth-subject".to_owned()));
    assert_eq!(gw.get("/open/page", None).await.status(), 401, "/open is protected before the reload");
    let started_hash = sha256_12(&gw.config);
    assert!(gw.metrics().await.contains(&format!("aisgate_config_info{{hash=\"{started_hash}\"}} 1")));

    let readyz = &format!("{}/readyz", gw.ops);
    let client = &gw.client;
    gw.wait_for(|| async move { client.get(readyz).send().await.unwrap().status() == 200 }).await;

    gw.edit(r#"public_paths = ["/public"]"#, r#"public_paths = ["/public", "/open"]"#);
    gw.edit("[app.headers]\n", "[app.headers]\nrename = { \"X-Auth-Subject\" = \"Remote-User\" }\n");
    gw.sighup("success").await;

    // The new KAAS provider did its heartBeat before it took over: ready at once.
    let ready = gw.client.get(readyz).send().await.unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
    assert_eq!(gw.get("/open/page", None).await.status(), 200, "the new public path is in force");
    let echoed = gw.get("/private", Some(&cookie)).await;
    assert_eq!(echoed.status(), 200, "the session made before the reload still authenticates");
    let echoed: serde_json::Value = echoed.json().await.unwrap();
    // The session's cached identity headers are those of the new configuration.
    assert!(echoed["headers"]["remote-user"].is_string(), "{echoed}");
    assert!(echoed["headers"].get("x-auth-subject").is_none(), "{echoed}");
    let hash = sha256_12(&gw.config);
    assert_ne!(hash, started_hash);
    let metrics = gw.metrics().await;
    assert!(metrics.contains(&format!("aisgate_config_info{{hash=\"{hash}\"}} 1")), "{metrics}");
    assert!(!metrics.contains(&started_hash), "only the hash in use is exported");
    assert!(metrics.contains("aisgate_config_reloads_total{result=\"success\"} 1"), "{metrics}");
    // Counters continue across the reload instead of restarting at zero.
    assert!(metrics
        .lines()
        .any(|l| l.starts_with("aisgate_logins_total{") && l.contains("success") && l.ends_with(" 1")));
    let log = gw.log_text();
    assert!(log.lines().any(|l| l.contains("configuration reloaded") && l.contains(&hash)), "{log}");
    let ready: serde_json::Value = gw.client.get(readyz).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["config_hash"], hash.as_str());
}

#[tokio::test]
async fn a_broken_config_on_reload_keeps_the_running_one_and_logs_file_line_column() {
    let gw = Running::start(Some(support::header_echo().await), "").await;
    let cookie = gw.login().await;
    let hash = sha256_12(&gw.config);

    // A syntax error: the line of `[log]` becomes an unterminated table header.
    let text = std::fs::read_to_string(&gw.config).unwrap();
    let line = text.lines().position(|l| l == "[log]").unwrap() + 1;
    gw.edit("[log]", "[log");
    gw.sighup("failure").await;
    let log = gw.log_text();
    let located = format!("{}:{line}:", gw.config.display());
    assert!(
        log.lines().any(|l| l.contains("configuration reload failed") && l.contains(&located)),
        "the log names {located}:\n{log}"
    );

    // A valid file whose session store settings changed: refused, the memory store would
    // lose every session.
    gw.edit("[log", "[log]");
    gw.edit("[session]\n", "[session]\nmax_sessions = 5\n");
    gw.edit(r#"public_paths = ["/public"]"#, r#"public_paths = ["/public", "/open"]"#);
    gw.sighup("failure").await;
    let log = gw.log_text();
    assert!(
        log.lines().any(|l| l.contains("configuration reload failed")
            && l.contains("max_sessions changed")
            && l.contains("restart")),
        "{log}"
    );

    // Still the first configuration: /open protected, the session valid, the old hash.
    assert_eq!(gw.get("/open/page", None).await.status(), 401);
    assert!(!identity_headers(gw.get("/private", Some(&cookie)).await).await.is_empty());
    let metrics = gw.metrics().await;
    assert!(metrics.contains(&format!("aisgate_config_info{{hash=\"{hash}\"}} 1")), "{metrics}");
    assert!(metrics.contains("aisgate_config_reloads_total{result=\"failure\"} 2"), "{metrics}");
    assert_eq!(gw.reloads("success").await, 0);
}

fn reload_cli(config: &Path) -> (i32, String, String) {
    let out = Command::new(BIN).args(["reload", "--config"]).arg(config).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[tokio::test]
async fn the_reload_command_reloads_through_the_admin_api() {
    let gw = Running::start(Some(support::header_echo().await), "").await;
    gw.edit(r#"public_paths = ["/public"]"#, r#"public_paths = ["/public", "/open"]"#);
    let config = gw.config.clone();
    let (code, stdout, stderr) = tokio::task::spawn_blocking(move || reload_cli(&config)).await.unwrap();
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains(&format!("configuration reloaded, hash {}", sha256_12(&gw.config))), "{stdout}");
    assert_eq!(gw.get("/open/page", None).await.status(), 200);

    // A file that does not load: exit 1 with the error's location, the gateway not asked.
    gw.edit("[log]", "[log");
    let config = gw.config.clone();
    let (code, _, stderr) = tokio::task::spawn_blocking(move || reload_cli(&config)).await.unwrap();
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!("{}:", gw.config.display())) && stderr.contains("not asked to reload"),
        "{stderr}"
    );

    // A file the gateway refuses (a store setting changed): exit 1 with its reason.
    gw.edit("[log", "[log]");
    gw.edit("[session]\n", "[session]\nmax_sessions = 5\n");
    let config = gw.config.clone();
    let (code, _, stderr) = tokio::task::spawn_blocking(move || reload_cli(&config)).await.unwrap();
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("max_sessions changed") && stderr.contains("the running configuration stays"), "{stderr}");
    assert_eq!(gw.get("/open/page", None).await.status(), 200, "still the configuration of the first reload");

    // An app put in maintenance stays in maintenance across a reload.
    let on = gw.client.put(format!("{}/admin/maintenance/echo", gw.ops)).bearer_auth(ADMIN_TOKEN).body("{}");
    assert_eq!(on.send().await.unwrap().status(), 200);
    assert_eq!(gw.get("/public/x", None).await.status(), 503);
    gw.edit("[session]\nmax_sessions = 5\n", "[session]\n");
    gw.sighup("success").await;
    let resp = gw.get("/public/x", None).await;
    assert_eq!(resp.status(), 503, "still in maintenance after the reload");
    assert!(resp.headers().contains_key("retry-after"));

    // Without the admin token the endpoint refuses to reload anything.
    let resp = gw.client.post(format!("{}/admin/reload", gw.ops)).bearer_auth("x".repeat(40)).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(gw.reloads("success").await, 2);
    assert_eq!(gw.reloads("failure").await, 1);
}

/// Keep-alive clients requesting `path` until `stop`; counts each answer by status.
struct Load {
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Vec<String>>>,
}

impl Load {
    fn start(url: String, clients: usize) -> Load {
        let (ok, failed, stop) =
            (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let tasks = (0..clients)
            .map(|_| {
                let (url, ok, failed, stop) = (url.clone(), ok.clone(), failed.clone(), stop.clone());
                tokio::spawn(async move {
                    // One connection per client, reused for every request.
                    let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap();
                    let mut problems = Vec::new();
                    while !stop.load(Ordering::Acquire) {
                        let answer = match client.get(&url).send().await {
                            Ok(resp) => {
                                let status = resp.status();
                                resp.bytes().await.map(|_| status)
                            }
                            Err(e) => Err(e),
                        };
                        match answer {
                            Ok(status) if status == 200 => {
                                ok.fetch_add(1, Ordering::AcqRel);
                            }
                            Ok(status) => {
                                failed.fetch_add(1, Ordering::AcqRel);
                                problems.push(format!("status {status}"));
                            }
                            Err(e) => {
                                failed.fetch_add(1, Ordering::AcqRel);
                                problems.push(aisgate::error_chain(&e));
                            }
                        }
                    }
                    problems
                })
            })
            .collect();
        Load { ok, failed, stop, tasks }
    }

    async fn finish(self) -> (usize, usize, Vec<String>) {
        self.stop.store(true, Ordering::Release);
        let mut problems = Vec::new();
        for task in self.tasks {
            problems.extend(task.await.unwrap());
        }
        (self.ok.load(Ordering::Acquire), self.failed.load(Ordering::Acquire), problems)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_load_lose_no_request() {
    let gw = Running::start(Some(support::header_echo().await), "").await;
    let load = Load::start(format!("{}/public/ping", gw.base), 32);
    let answered = &load.ok;
    gw.wait_for(|| async move { answered.load(Ordering::Acquire) > 200 }).await;
    for round in 0..6 {
        // Alternate between two valid configurations.
        if round % 2 == 0 {
            gw.edit(r#"public_paths = ["/public"]"#, r#"public_paths = ["/public", "/open"]"#);
        } else {
            gw.edit(r#"public_paths = ["/public", "/open"]"#, r#"public_paths = ["/public"]"#);
        }
        let before = answered.load(Ordering::Acquire);
        gw.sighup("success").await;
        // Requests keep being answered between reloads.
        gw.wait_for(|| async move { answered.load(Ordering::Acquire) > before + 100 }).await;
    }
    let (ok, failed, problems) = load.finish().await;
    assert_eq!(gw.reloads("success").await, 6);
    assert_eq!(failed, 0, "{ok} answered, {failed} lost: {problems:?}");
    assert!(ok > 600, "{ok}");
    eprintln!("reload under load: 6 reloads, {ok} requests from 32 keep-alive clients, 0 lost");
}

/// An upstream that holds every request for `delay`, counting arrivals.
async fn slow_upstream(delay: Duration, arrived: Arc<AtomicUsize>) -> String {
    support::upstream(move |_req| {
        let arrived = arrived.clone();
        async move {
            arrived.fetch_add(1, Ordering::AcqRel);
            tokio::time::sleep(delay).await;
            support::text(200, "finished")
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_completes_every_in_flight_request_and_exits_0() {
    let arrived = Arc::new(AtomicUsize::new(0));
    let upstream = slow_upstream(Duration::from_millis(1500), arrived.clone()).await;
    let gw = Running::start(Some(upstream), "shutdown_grace_secs = 30\n").await;
    let client = reqwest::Client::new();
    let in_flight: Vec<_> = (0..40)
        .map(|i| {
            let (client, url) = (client.clone(), format!("{}/public/slow/{i}", gw.base));
            tokio::spawn(async move { client.get(url).send().await?.text().await })
        })
        .collect();
    let arrivals = &arrived;
    gw.wait_for(|| async move { arrivals.load(Ordering::Acquire) == 40 }).await;
    gw.signal("TERM");
    let mut finished = 0;
    for request in in_flight {
        let body = request.await.unwrap().expect("an in-flight request completes");
        assert_eq!(body, "finished");
        finished += 1;
    }
    assert_eq!(finished, 40);
    let base = gw.base.clone();
    let (status, log) = gw.exit().await;
    assert!(status.success(), "exit status {status}\n{log}");
    assert!(log.contains("shutting down: no new connections, draining in-flight requests"), "{log}");
    assert!(log.contains("aisgate stopped"), "{log}");
    assert!(reqwest::Client::new().get(format!("{base}/public/x")).send().await.is_err(), "no longer listening");
}

#[tokio::test]
async fn the_grace_period_bounds_the_drain_of_a_request_that_does_not_end() {
    let arrived = Arc::new(AtomicUsize::new(0));
    let upstream = slow_upstream(Duration::from_secs(3600), arrived.clone()).await;
    let gw = Running::start(Some(upstream), "shutdown_grace_secs = 1\n").await;
    let url = format!("{}/public/endless", gw.base);
    let stuck = tokio::spawn(async move { reqwest::Client::new().get(url).send().await });
    let arrivals = &arrived;
    gw.wait_for(|| async move { arrivals.load(Ordering::Acquire) == 1 }).await;
    gw.signal("INT");
    let (status, log) = gw.exit().await;
    assert!(status.success(), "exit status {status}\n{log}");
    assert!(log.contains("grace period over; dropping remaining connections"), "{log}");
    assert!(stuck.await.unwrap().is_err(), "the endless request was cut at the end of the grace period");
}

#[tokio::test]
async fn a_rebuilt_gateway_shares_the_store_limits_and_ephemeral_token_key_of_the_one_it_replaces() {
    let stack = prepare(StackOptions::default()).await.expect("stack");
    let env = aisgate::gateway::process_env;
    let old = &stack.gateway;
    let new = aisgate::gateway::Gateway::rebuild(&stack.config, &stack.config_path, &env, old).expect("rebuilds");
    assert!(Arc::ptr_eq(&old.store, &new.store), "the memory store (every session) carries over");
    assert!(Arc::ptr_eq(&old.login_start_limiter, &new.login_start_limiter));
    assert!(Arc::ptr_eq(&old.direct_limiter, &new.direct_limiter));
    assert_eq!(old.jwks(), new.jwks(), "the ephemeral identity-token key is kept: upstreams' JWKS stays valid");
    // A fresh build (a restart) gets a new ephemeral key and an empty store.
    let fresh = aisgate::gateway::Gateway::build(&stack.config, &stack.config_path, &env).unwrap();
    assert_ne!(old.jwks(), fresh.jwks());
    assert!(!Arc::ptr_eq(&old.store, &fresh.store));

    let text = std::fs::read_to_string(&stack.config_path).unwrap();
    std::fs::write(&stack.config_path, text.replacen("[session]\n", "[session]\nidle_timeout_secs = 60\n", 1)).unwrap();
    let changed = aisgate::config::load(&stack.config_path).unwrap();
    let errors = match aisgate::gateway::Gateway::rebuild(&changed, &stack.config_path, &env, old) {
        Ok(_) => panic!("a changed store setting must be refused"),
        Err(errors) => errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"),
    };
    assert!(errors.contains("idle_timeout_secs changed") && errors.contains("restart aisgate"), "{errors}");
    // At the `[session]` table (it used to be line 1 of the file).
    let session_line = text.lines().position(|l| l == "[session]").expect("a [session] table") + 1;
    assert!(errors.starts_with(&format!("{}:{session_line}:1:", stack.config_path.display())), "{errors}");
    let _ = std::fs::remove_dir_all(&stack.dir);
}

#[tokio::test]
async fn with_the_redis_store_a_reload_keeps_sessions_and_refuses_a_changed_redis_table() {
    let Some(redis) = support::redis_server::Redis::start().await else { return };
    let gw = Running::start_with(Some(support::header_echo().await), "", &redis.session_extra()).await;
    let cookie = gw.login().await;
    gw.edit(r#"public_paths = ["/public"]"#, r#"public_paths = ["/public", "/open"]"#);
    gw.sighup("success").await;
    assert_eq!(gw.get("/open/page", None).await.status(), 200);
    assert!(!identity_headers(gw.get("/private", Some(&cookie)).await).await.is_empty(), "the session survives");

    gw.edit("timeout_ms = 300\n", "timeout_ms = 1234\n");
    gw.sighup("failure").await;
    let log = gw.log_text();
    assert!(log.lines().any(|l| l.contains("[session.redis] changed") && l.contains("restart")), "{log}");
    assert!(!identity_headers(gw.get("/private", Some(&cookie)).await).await.is_empty());
}
