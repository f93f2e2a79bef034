//! Benchmark for issue 13 item 4: the latency of proxied requests on a gateway that is
//! completing SAML logins at a constant rate.
//!
//! The gateway runs in this process (the local stack: simulated NIA-shaped SAML IdP, an
//! upstream, the real `listen::serve` with one single-threaded runtime per core and the login
//! CPU pool, `src/cpu.rs`), on loopback, with the real clock and the binary's allocator.
//!
//! 1. **Untimed preparation**: `RATE × DURATION` genuine logins are started (AuthnRequest →
//!    simulated NIA, which signs the Response and encrypts its Assertion: RSA-2048, rsa-sha256,
//!    aes256-cbc + rsa-oaep-mgf1p) and their auto-POST forms kept. The simulator's signing is
//!    the expensive part of a login here; it is all done before anything is measured.
//! 2. **Idle**: a probe client sends authenticated `GET /` (proxied to the upstream) at a steady
//!    open-loop rate (`PROBE_RATE`/s, latency measured from each request's scheduled start,
//!    so a stall counts in full) for `IDLE_SECS`.
//! 3. **Under login load**: the prepared Responses are POSTed to the ACS open loop at `RATE`/s
//!    (one every 1/`RATE` s whether or not earlier ones have been answered), while the probe
//!    goes on the same way on its own thread and connection pool.
//!
//! Printed per rate: proxied p50 / p99 / max idle and during the load and the p99 ratio against
//! the 2× target (PASS/FAIL, informational), the achieved login rate, the logins' latency
//! (from the scheduled send), the logins' answers by status, the CPU the gateway's threads
//! used, and the load average. With `NGINX_URL` (bench/saml_load.sh starts one proxying to
//! the same upstream) the idle probe is also run against nginx, for a reference idle p99.
//!
//! ```text
//! cargo run --release --example saml_load                 # 500 logins/s for 8 s
//! RATES="500 300" cargo run --release --example saml_load # each rate in turn
//! SMOKE=1 cargo run --example saml_load                   # a second or two (CI)
//! ```
//! Environment: `RATES="500"` logins/s (a list: each measured in turn), `DURATION=8` seconds of
//! load per rate, `IDLE_SECS=5`, `PROBE_RATE=200` proxied requests/s, `PREPARE_CONCURRENCY=16`,
//! `LOGIN_WORKERS` / `LOGIN_QUEUE` (`[server] login_workers` / `login_queue`; default: the
//! gateway's defaults), `UPSTREAM` (an upstream URL; default: the built-in echo), `NGINX_URL`,
//! `POOL_NICE` (an A/B switch: the login pool's threads get this nice from outside).
//! A benchmark, not a test: it judges nothing by its exit status (it fails only when the
//! setup does).

#[path = "../tests/support/mod.rs"]
mod support;

// The allocator of the aisgate binary (src/main.rs), so the gateway's costs are the real ones.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aisgate::sim::stack::{SamlStackProvider, StackOptions};
use futures_util::StreamExt;
use support::{location, parse_form, set_cookie, Gateway};

fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

/// One login started by a browser, with the IdP's answer not yet delivered.
struct Prepared {
    cookie: String,
    acs: String,
    form: Vec<(String, String)>,
}

/// Starts a NIA login and fetches the simulator's answer (the first user's form).
async fn prepare_login(client: &reqwest::Client, base: &str) -> Prepared {
    let start = client
        .get(format!("{base}/.aisgate/login?return=%2F&provider=nia"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("login start");
    let cookie = format!("aisgate_login={}", set_cookie(&start, "aisgate_login").expect("pre-login cookie"));
    let answer = match start.status().as_u16() {
        302 => client.get(location(&start)).send().await.expect("simulated NIA"),
        200 => {
            let (action, fields) = parse_form(&start.text().await.expect("login page"));
            client.post(action).form(&fields).send().await.expect("simulated NIA")
        }
        other => panic!("login start answered {other}"),
    };
    let (acs, fields) = parse_form(&answer.text().await.expect("simulator page"));
    // The page has one form per demo user: keep the first form's fields (the first of each name).
    let mut form: Vec<(String, String)> = Vec::new();
    for (name, value) in fields {
        if !form.iter().any(|(n, _)| *n == name) {
            form.push((name, value));
        }
    }
    Prepared { cookie, acs, form }
}

/// CPU seconds used so far by this process's threads, grouped by thread name
/// (`aisgate-worker-*` → "I/O workers"; `aisgate-login-*` are the
/// threads the I/O workers' runtimes start: the login pool; `bench-*` → this program).
fn thread_cpu() -> BTreeMap<&'static str, f64> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return out };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        let Some((head, rest)) = stat.rsplit_once(") ") else { continue };
        let group = if head.contains("(aisgate-worker") {
            "gateway I/O workers"
        } else if head.contains("(aisgate-login") {
            "login pool"
        } else {
            "other (load generator, probe, simulators)"
        };
        let fields: Vec<&str> = rest.split(' ').collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        // utime and stime (fields 14 and 15); USER_HZ is 100 on Linux.
        *out.entry(group).or_insert(0.0) += (ticks(11) + ticks(12)) as f64 / 100.0;
    }
    out
}

/// With `POOL_NICE=n`: gives every login-pool thread (`aisgate-login-*`) nice `n`
/// every 20 ms from outside, whatever the gateway does itself. An A/B switch for the same
/// binary: `POOL_NICE=0` (as root) undoes a nice the pool gives its threads, `POOL_NICE=10`
/// applies one to a build that does not.
fn renice_pool_threads(nice: i32) {
    let spawned = std::thread::Builder::new().name("bench-renice".into()).spawn(move || loop {
        if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
            for task in tasks.flatten() {
                let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
                let tid = task.file_name().to_string_lossy().parse().ok().and_then(rustix::process::Pid::from_raw);
                if let (true, Some(tid)) = (comm.starts_with("aisgate-login"), tid) {
                    // On Linux a thread id addresses that one thread.
                    let _ = rustix::process::setpriority_process(Some(tid), nice);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    });
    spawned.expect("renice thread");
}

/// Busy and total jiffies of the whole machine (first line of /proc/stat).
fn machine_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let nums: Vec<u64> =
        stat.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    let total: u64 = nums.iter().sum();
    // idle + iowait.
    let idle = nums.get(3).copied().unwrap_or(0) + nums.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `p50 … p99 … max …` of unsorted latencies.
struct Summary {
    n: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Summary {
    fn of(mut latencies: Vec<Duration>) -> Summary {
        latencies.sort();
        Summary {
            n: latencies.len(),
            p50: percentile(&latencies, 0.5),
            p99: percentile(&latencies, 0.99),
            max: latencies.last().copied().unwrap_or_default(),
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "n={} p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms", self.n, ms(self.p50), ms(self.p99), ms(self.max))
    }
}

/// Sends `GET url` with `cookie` at `rate`/s, open loop, for `secs`, on its own thread, runtime
/// and connection pool; returns each request's latency from its scheduled start. A request
/// that does not answer 200 (the upstream's page) is a setup failure.
fn probe(url: String, cookie: Option<String>, rate: f64, secs: f64) -> std::thread::JoinHandle<Vec<Duration>> {
    std::thread::Builder::new()
        .name("bench-probe".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("probe runtime");
            runtime.block_on(async move {
                let client = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .expect("probe client");
                let url = Arc::new(url);
                let cookie = Arc::new(cookie);
                let period = Duration::from_secs_f64(1.0 / rate);
                let count = (rate * secs).round().max(1.0) as u64;
                let start = Instant::now();
                let mut tasks = Vec::with_capacity(count as usize);
                for i in 0..count {
                    let scheduled = start + period * i as u32;
                    tokio::time::sleep_until(scheduled.into()).await;
                    let (client, url, cookie) = (client.clone(), Arc::clone(&url), Arc::clone(&cookie));
                    tasks.push(tokio::spawn(async move {
                        let mut req = client.get(url.as_str());
                        if let Some(c) = cookie.as_deref() {
                            req = req.header("cookie", c);
                        }
                        let resp = req.send().await.expect("proxied request");
                        let status = resp.status();
                        let _ = resp.bytes().await;
                        assert_eq!(status, 200, "the proxied request must reach the upstream");
                        scheduled.elapsed()
                    }));
                }
                let mut latencies = Vec::with_capacity(tasks.len());
                for t in tasks {
                    latencies.push(t.await.expect("probe request"));
                }
                latencies
            })
        })
        .expect("probe thread")
}

/// The probe's latencies, once its thread is done (waited for off the runtime's workers).
async fn finished(probe: std::thread::JoinHandle<Vec<Duration>>) -> Vec<Duration> {
    tokio::task::spawn_blocking(move || probe.join().expect("probe thread")).await.expect("probe thread")
}

/// What the load phase at one rate measured.
struct LoadResult {
    sent: usize,
    elapsed: Duration,
    succeeded: usize,
    statuses: BTreeMap<String, usize>,
    logins: Summary,
    max_send_lag: Duration,
}

/// POSTs the prepared Responses to the ACS at `rate`/s, open loop.
async fn login_load(client: &reqwest::Client, prepared: Vec<Prepared>, rate: f64) -> LoadResult {
    let period = Duration::from_secs_f64(1.0 / rate);
    let sent = prepared.len();
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(sent);
    let mut max_send_lag = Duration::ZERO;
    for (i, p) in prepared.into_iter().enumerate() {
        let scheduled = start + period * i as u32;
        tokio::time::sleep_until(scheduled.into()).await;
        max_send_lag = max_send_lag.max(scheduled.elapsed());
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let resp = client.post(&p.acs).header("cookie", &p.cookie).form(&p.form).send().await;
            let outcome = match resp {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let session = set_cookie(&resp, "aisgate_session").is_some();
                    let _ = resp.bytes().await;
                    if status == 302 && session {
                        Ok(())
                    } else {
                        Err(status.to_string())
                    }
                }
                Err(e) if e.is_timeout() => Err("timeout".to_owned()),
                Err(_) => Err("connection error".to_owned()),
            };
            (outcome, scheduled.elapsed())
        }));
    }
    let mut statuses = BTreeMap::new();
    let mut latencies = Vec::with_capacity(sent);
    for t in tasks {
        let (outcome, took) = t.await.expect("login task");
        let key = match outcome {
            Ok(()) => {
                latencies.push(took);
                "302 + session".to_owned()
            }
            Err(status) => status,
        };
        *statuses.entry(key).or_insert(0) += 1;
    }
    LoadResult {
        sent,
        elapsed: start.elapsed(),
        succeeded: latencies.len(),
        statuses,
        logins: Summary::of(latencies),
        max_send_lag,
    }
}

fn main() {
    let smoke = std::env::var("SMOKE").is_ok_and(|v| v == "1");
    let rates: Vec<f64> = std::env::var("RATES")
        .unwrap_or_else(|_| if smoke { "20".into() } else { "500".into() })
        .split([' ', ','])
        .filter_map(|r| r.parse().ok())
        .filter(|r: &f64| *r > 0.0)
        .collect();
    let duration = env_num("DURATION", if smoke { 1.0 } else { 8.0 });
    let idle_secs = env_num("IDLE_SECS", if smoke { 0.5 } else { 5.0 });
    let probe_rate = env_num("PROBE_RATE", if smoke { 50.0 } else { 200.0 });
    let prepare_concurrency = env_num("PREPARE_CONCURRENCY", 16.0) as usize;
    let login_workers: Option<usize> =
        std::env::var("LOGIN_WORKERS").ok().map(|v| v.trim().parse().expect("LOGIN_WORKERS"));
    let login_queue: Option<usize> = std::env::var("LOGIN_QUEUE").ok().map(|v| v.trim().parse().expect("LOGIN_QUEUE"));
    let mut server_extra = String::new();
    for (key, value) in [("login_workers", login_workers), ("login_queue", login_queue)] {
        if let Some(v) = value {
            server_extra.push_str(&format!("{key} = {v}\n"));
        }
    }
    if let Ok(nice) = std::env::var("POOL_NICE") {
        renice_pool_threads(nice.trim().parse().expect("POOL_NICE: an integer"));
    }
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("bench-client").build().expect("runtime");
    runtime.block_on(async move {
        let gw = Gateway::start_on_clock(StackOptions {
            upstream: std::env::var("UPSTREAM").ok(),
            server_extra,
            // Every simulated login is the same person: without this, the 21st login would end
            // the probe's session (`max_sessions_per_user`, default 20). Real logins are
            // different people.
            session_extra: "max_sessions_per_user = 0\n".into(),
            saml: Some(SamlStackProvider::default()),
            ..Default::default()
        })
        .await;
        let (base, client) = (gw.base.clone(), gw.client.clone());
        let workers = login_workers.unwrap_or_else(aisgate::cpu::default_workers);
        let queue = login_queue.unwrap_or_else(|| aisgate::cpu::default_queue(workers));
        println!(
            "saml_load: {} CPUs, login_workers {workers}, login_queue {queue}, POOL_NICE {}, probe {probe_rate}/s, load {duration} s per rate, load average at start {}",
            std::thread::available_parallelism().map_or(0, usize::from),
            std::env::var("POOL_NICE").unwrap_or_else(|_| "unset".into()),
            load_average()
        );

        // A real session for the probe.
        let p = prepare_login(&client, &base).await;
        let login = client.post(&p.acs).header("cookie", &p.cookie).form(&p.form).send().await.expect("ACS");
        assert_eq!(login.status(), 302, "a genuine login completes");
        let session = format!("aisgate_session={}", set_cookie(&login, "aisgate_session").expect("session cookie"));
        let url = format!("{base}/");
        // Warm-up: connections, caches.
        let _ = finished(probe(url.clone(), Some(session.clone()), probe_rate, 0.5)).await;

        if let Ok(nginx) = std::env::var("NGINX_URL") {
            let idle = Summary::of(finished(probe(nginx, None, probe_rate, idle_secs)).await);
            println!("nginx proxy_pass, idle (reference):   {idle}");
        }

        let mut results = Vec::new();
        for rate in &rates {
            let rate = *rate;
            let logins = (rate * duration).round().max(1.0) as usize;
            let t = Instant::now();
            let prepared: Vec<Prepared> = futures_util::stream::iter(0..logins)
                .map(|_| prepare_login(&client, &base))
                .buffer_unordered(prepare_concurrency.max(1))
                .collect()
                .await;
            println!("\n== {rate}/s: {logins} logins prepared (untimed) in {:.1} s", t.elapsed().as_secs_f64());
            // Let the machine settle after the preparation.
            tokio::time::sleep(Duration::from_millis(if smoke { 100 } else { 1000 })).await;

            let idle = Summary::of(finished(probe(url.clone(), Some(session.clone()), probe_rate, idle_secs)).await);
            let (cpu0, machine0, load0) = (thread_cpu(), machine_jiffies(), load_average());
            let during = probe(url.clone(), Some(session.clone()), probe_rate, duration);
            let load = login_load(&client, prepared, rate).await;
            let during = Summary::of(finished(during).await);
            let (cpu1, machine1) = (thread_cpu(), machine_jiffies());
            let secs = load.elapsed.as_secs_f64();
            let achieved = load.succeeded as f64 / secs;
            let machine_busy = (machine1.0 - machine0.0) as f64 / (machine1.1 - machine0.1).max(1) as f64;
            println!("proxied GET / idle:                  {idle}");
            println!("proxied GET / during {rate}/s logins: {during}");
            println!(
                "logins: {} sent open loop at {rate}/s (generator lag up to {:.1} ms), {} completed in {secs:.2} s = {achieved:.0}/s; latency {}; answers {:?}",
                load.sent,
                ms(load.max_send_lag),
                load.succeeded,
                load.logins,
                load.statuses
            );
            let cpu: Vec<String> = cpu1
                .iter()
                .map(|(group, after)| {
                    let used = after - cpu0.get(group).copied().unwrap_or(0.0);
                    format!("{group} {:.2} cores", used / secs)
                })
                .collect();
            let pool_cpu = cpu1.get("login pool").copied().unwrap_or(0.0) - cpu0.get("login pool").copied().unwrap_or(0.0);
            println!(
                "CPU during the load: {}; login pool {:.0} µs per login; whole machine {:.0} % busy; load average {load0} → {}",
                cpu.join(", "),
                pool_cpu / load.succeeded.max(1) as f64 * 1e6,
                machine_busy * 100.0,
                load_average()
            );
            let sustained = achieved >= 0.95 * rate && load.succeeded == load.sent && load.logins.p99.as_secs_f64() < 1.0;
            results.push((rate, achieved, sustained, idle, during));
        }
        println!();
        for (rate, achieved, sustained, idle, during) in &results {
            let ratio = ms(during.p99) / ms(idle.p99).max(1e-3);
            println!(
                "RESULT saml_load: {rate}/s offered, {achieved:.0}/s achieved ({}): proxied p99 idle {:.2} ms, during {:.2} ms = {ratio:.2}x idle (target <= 2x) {}",
                if *sustained { "sustained" } else { "NOT sustained" },
                ms(idle.p99),
                ms(during.p99),
                if ratio <= 2.0 { "PASS" } else { "FAIL" },
            );
        }
        drop(gw);
    });
}
