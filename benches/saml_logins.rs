//! SAML logins per second at the gateway's Assertion Consumer Service, through the whole
//! gateway: the browser's POST of a signed Response with an encrypted Assertion (NIA-shaped:
//! rsa-sha256, aes256-cbc + rsa-oaep-mgf1p, RSA-2048) to `/.aisgate/callback/nia`, where the
//! gateway takes the pending login, verifies, decrypts, checks and maps the Response, and
//! creates the session.
//!
//! The simulated IdP signs and encrypts on the same two cores, so the logins are prepared
//! first (AuthnRequest → simulator → auto-submit form, untimed) and only the ACS POSTs are
//! timed, `concurrency` at a time. The load generator shares the cores, so the bench also reads
//! the CPU time of the gateway's worker threads (`aisgate-worker-*`, from /proc) over the timed
//! phase: CPU per login, and the logins/s the cores would give the gateway alone.
//!
//! ```text
//! cargo bench --bench saml_logins -- [logins] [concurrency]
//! ```
//!
//! A benchmark, not a test: it prints figures and fails only when logins fail.

#[path = "../tests/support/mod.rs"]
mod support;

// The allocator of the aisgate binary (src/main.rs), so the gateway's CPU cost is the real one.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use aisgate::sim::stack::{SamlStackProvider, StackOptions};
use futures_util::StreamExt;
use support::{header_echo, location, parse_form, set_cookie, Gateway};

const APP: &str = "\n[[app]]\nname = \"desk\"\nupstream = \"{upstream}\"\nproviders = [\"nia\"]\n";

/// A login started by one browser, with the IdP's answer not yet delivered.
struct Prepared {
    cookie: String,
    acs: String,
    form: Vec<(String, String)>,
}

async fn prepare(gw: &Gateway) -> Prepared {
    let start = gw.navigate("/.aisgate/login?return=%2Fdesk&provider=nia", None).await;
    let cookie = format!("aisgate_login={}", set_cookie(&start, "aisgate_login").expect("pre-login cookie"));
    let answer = gw.client.get(location(&start)).send().await.expect("simulator");
    let (acs, form) = parse_form(&answer.text().await.expect("simulator page"));
    Prepared { cookie, acs, form }
}

/// CPU seconds used so far by the gateway's worker threads (Linux /proc; `None` elsewhere).
fn gateway_cpu_seconds() -> Option<f64> {
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("stat")).ok()?;
        // `pid (comm) state …`: utime and stime are fields 14 and 15.
        let (head, rest) = stat.rsplit_once(") ")?;
        if !head.contains("(aisgate-worker") {
            continue;
        }
        let fields: Vec<&str> = rest.split(' ').collect();
        ticks += fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    }
    // USER_HZ is 100 on every Linux this runs on.
    Some(ticks as f64 / 100.0)
}

fn main() {
    // `cargo bench` passes `--bench`; the numbers are ours.
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let logins = args.first().copied().unwrap_or(3000);
    let concurrency = args.get(1).copied().unwrap_or(16);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let errors = runtime.block_on(async {
        let gw = Gateway::start(StackOptions {
            upstream: Some(header_echo().await),
            apps: Some(APP.to_owned()),
            saml: Some(SamlStackProvider::default()),
            ..Default::default()
        })
        .await;
        let prepared: Vec<Prepared> =
            futures_util::stream::iter(0..logins).map(|_| prepare(&gw)).buffer_unordered(concurrency).collect().await;
        let cpu_before = gateway_cpu_seconds();
        let started = Instant::now();
        let results: Vec<Option<Duration>> = futures_util::stream::iter(prepared.iter())
            .map(|p| async {
                let t = Instant::now();
                let done = gw.client.post(&p.acs).form(&p.form).header("cookie", &p.cookie).send().await.ok()?;
                (done.status() == 302 && set_cookie(&done, "aisgate_session").is_some()).then(|| t.elapsed())
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let elapsed = started.elapsed().as_secs_f64();
        let cpu_used = gateway_cpu_seconds().zip(cpu_before).map(|(after, before)| after - before);
        let mut latencies: Vec<Duration> = results.iter().flatten().copied().collect();
        let errors = results.len() - latencies.len();
        latencies.sort();
        let pct = |p: f64| {
            let i = ((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1));
            latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        println!(
            "SAML ACS through the gateway ({} CPUs shared by the load and the gateway): {} logins in {elapsed:.2}s \
             = {:.0} logins/s (concurrency {concurrency}); errors: {errors}; p50 {:.1} ms, p99 {:.1} ms",
            std::thread::available_parallelism().map_or(0, usize::from),
            latencies.len(),
            latencies.len() as f64 / elapsed,
            pct(0.5),
            pct(0.99),
        );
        if let Some(cpu) = cpu_used.filter(|c| *c > 0.0 && !latencies.is_empty()) {
            let per_login = cpu / latencies.len() as f64;
            let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
            println!(
                "gateway worker CPU: {:.0} µs per login => {:.0} logins/s if the gateway had the {cores} cores to itself",
                per_login * 1e6,
                cores / per_login
            );
        }
        errors
    });
    if errors > 0 {
        std::process::exit(1);
    }
}
