//! Complete OIDC logins per second through the gateway: the browser's redirect to the
//! provider, the provider's answer, and the callback, where the gateway redeems the code at
//! the token endpoint over mutual TLS, verifies the RS256 ID token (JWKS without `kid`), calls
//! userinfo, and creates the session. Two providers, both CAAIS-like:
//!
//! * `sim`: the in-process simulator (src/sim/oidc.rs), i.e. the gateway's own cost plus a
//!   provider that does almost nothing;
//! * `oidc-provider`: the real npm `oidc-provider` (tests/peers/oidc-provider), a separate
//!   Node.js process; skipped with a message when its node_modules are missing.
//!
//! Each of `concurrency` workers is one browser: its first login creates an SSO session at the
//! provider, later ones reuse it (a returning user), so each measured login is one
//! authorization redirect, one code exchange and one ID-token validation at the gateway.
//!
//! ```text
//! cargo bench --bench oidc_logins -- [concurrency] [seconds]
//! ```
//!
//! A benchmark, not a test: it prints figures and fails only when logins fail.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use aisgate::sim::oidc::caais_user;
use aisgate::sim::stack::StackOptions;
use support::oidc_provider::{gateway_login, ClientAuth, NodeOp, OpBrowser, Profile};
use support::{header_echo, Gateway};

const APP: &str = "\n[[app]]\nname = \"desk\"\nupstream = \"{upstream}\"\nproviders = [\"caais\"]\n";
const PROVIDER_EXTRA: &str = "scopes = [\"openid\", \"profile\", \"role\", \"subject\"]\nuserinfo = true\n";

/// The gateway with the in-process CAAIS-like simulator.
async fn with_sim() -> Gateway {
    let provider = support::caais_provider(PROVIDER_EXTRA);
    Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        apps: Some(APP.to_owned()),
        oidc: vec![provider],
        ..Default::default()
    })
    .await
}

/// The gateway with oidc-provider (CAAIS profile); the provider and the PKI live as long as it.
async fn with_oidc_provider() -> (Gateway, NodeOp, aisgate::sim::certs::TestPki, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = aisgate::sim::certs::generate(dir.path()).expect("PKI");
    let mut op = NodeOp::start(Profile::Caais, &pki, &[caais_user()], None).await;
    let table = op.provider_table("caais", "MY_AIS", &pki, ClientAuth::Registered, PROVIDER_EXTRA);
    let gw = Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        apps: Some(format!("{table}{APP}")),
        ..Default::default()
    })
    .await;
    let sub = caais_user()["sub"].as_str().unwrap_or_default().to_owned();
    op.register(NodeOp::caais_client("MY_AIS", &gw.base, "caais", &sub)).await;
    (gw, op, pki, dir)
}

/// `aisgate_oidc_token_duration_seconds` sum and count from the ops endpoint.
async fn token_histogram(gw: &Gateway) -> (f64, f64) {
    let text = gw.client.get(format!("http://{}/metrics", gw.ops)).send().await.expect("metrics");
    let text = text.text().await.unwrap_or_default();
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        value("aisgate_oidc_token_duration_seconds_sum{provider=\"caais\"}"),
        value("aisgate_oidc_token_duration_seconds_count{provider=\"caais\"}"),
    )
}

/// Runs the load and prints one line of figures; returns the number of failed logins.
async fn measure(label: &str, gw: &Gateway, ca: &Path, concurrency: usize, secs: u64) -> u64 {
    // Warm-up: discovery, JWKS, connection pools, one SSO session per browser.
    let browsers: Vec<OpBrowser> = (0..concurrency).map(|_| OpBrowser::new(ca, &gw.base)).collect();
    for b in &browsers {
        gateway_login(gw, b, "caais", "/desk").await;
    }
    let (sum0, count0) = token_histogram(gw).await;
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let results = futures_util::future::join_all(browsers.iter().map(|b| async move {
        let (mut latencies, mut errors) = (Vec::new(), 0u64);
        while Instant::now() < deadline {
            let t = Instant::now();
            let done = gateway_login(gw, b, "caais", "/desk").await;
            if done.status() == 302 && support::set_cookie(&done, "aisgate_session").is_some() {
                latencies.push(t.elapsed());
            } else {
                errors += 1;
            }
        }
        (latencies, errors)
    }))
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let (sum1, count1) = token_histogram(gw).await;
    let mut latencies: Vec<Duration> = results.iter().flat_map(|(l, _)| l.iter().copied()).collect();
    let errors: u64 = results.iter().map(|(_, e)| e).sum();
    latencies.sort();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let exchanges = count1 - count0;
    let exchange_ms = if exchanges > 0.0 { (sum1 - sum0) / exchanges * 1000.0 } else { 0.0 };
    println!(
        "{label:<14} logins: {} in {elapsed:.1}s = {:.0} logins/s (concurrency {concurrency}); errors: {errors}; \
         login p50 {:.1} ms, p99 {:.1} ms; token endpoint mean {exchange_ms:.1} ms over {exchanges} exchanges",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        pct(0.5),
        pct(0.99),
    );
    errors
}

fn main() {
    // `cargo bench` passes `--bench`; the numbers are ours.
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let concurrency = args.first().copied().unwrap_or(8) as usize;
    let secs = args.get(1).copied().unwrap_or(10);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let errors = runtime.block_on(async {
        println!(
            "OIDC login benchmark ({} CPUs shared by the load, the gateway and the provider)",
            std::thread::available_parallelism().map_or(0, usize::from)
        );
        let gw = with_sim().await;
        let mut errors = measure("sim", &gw, &gw.stack_dir.join("ca.pem"), concurrency, secs).await;
        drop(gw);
        if support::oidc_provider::available("oidc_logins bench") {
            let (gw, _op, pki, _dir) = with_oidc_provider().await;
            errors += measure("oidc-provider", &gw, &pki.ca_cert, concurrency, secs).await;
        }
        errors
    });
    if errors > 0 {
        std::process::exit(1);
    }
}
