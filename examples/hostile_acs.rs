//! Benchmark for issue 15 item 1: a hostile ~190 KB SAML Response at the ACS.
//!
//! Runs the gateway in this process (the local stack: simulated NIA IdP, echo upstream,
//! `listen::serve` with its one-runtime-per-core workers) and measures:
//!
//! 1. **CPU per hostile request**: process CPU time (`/proc/self/stat` utime + stime, all
//!    threads, exited ones included) over sequential hostile POSTs to the ACS, divided by
//!    their number. Each request also costs the in-process client a login start and a
//!    190 KB POST (well under a millisecond; the same for both builds).
//! 2. **Latency of a normal proxied request during a burst**: one client sends
//!    authenticated `GET /` requests (proxied to the echo upstream) back to back while
//!    `BURST` hostile Responses are POSTed at once; reports p50 / p99 / max of those
//!    requests during the burst, against the same figures measured idle just before.
//!
//! The hostile Response is the simulator's genuine signed Response for a real login, with
//! copies of its `ds:Signature` (each referencing the whole Response, so each copy costs a
//! canonicalisation of ~190 KB and an RSA verification) and of its `xenc:EncryptedKey`
//! (an RSA private operation each, if reached) added until it is about `SIZE_KB` KB.
//! It is built from the simulator's output only, so this file compiles and measures the
//! same way on the code before and after the fix.
//!
//! ```text
//! cargo run --release --example hostile_acs            # full run
//! SMOKE=1 cargo run --release --example hostile_acs    # a second or two (CI)
//! ```
//! Tunables (environment): `BURST=50` hostile Responses in the burst, `SEQ_SECS=5` seconds
//! (at least 3 requests) of sequential hostile requests for the CPU figure, `SIZE_KB=190`,
//! `SIGNATURES=150` signature copies (the rest of the size is EncryptedKey copies).

use std::time::{Duration, Instant};

use aisgate::sim::stack::{prepare, SamlStackProvider, StackOptions};
use base64::Engine;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Process CPU time (user + system, all threads), from `/proc/self/stat`.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the `(comm)`: state is field 3; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // USER_HZ is 100 on Linux.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

fn cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next())
        .find(|kv| kv.starts_with(&format!("{name}=")) && kv.len() > name.len() + 1)
        .map(str::to_owned)
}

/// The `action` and hidden fields of an auto-POST form page.
fn parse_form(page: &str) -> (String, Vec<(String, String)>) {
    fn attr(tag: &str, name: &str) -> Option<String> {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[start..].find('"')? + start;
        Some(tag[start..end].replace("&amp;", "&").replace("&quot;", "\"").replace("&#x2F;", "/").replace("&#47;", "/"))
    }
    let action = page.find("<form").and_then(|i| attr(&page[i..], "action")).unwrap_or_default();
    let mut fields = Vec::new();
    let mut rest = page;
    while let Some(i) = rest.find("<input") {
        let end = rest[i..].find('>').map_or(rest.len(), |e| i + e);
        let tag = &rest[i..end];
        if let (Some(n), Some(v)) = (attr(tag, "name"), attr(tag, "value")) {
            fields.push((n, v));
        }
        rest = &rest[end..];
    }
    (action, fields)
}

struct Bench {
    base: String,
    client: reqwest::Client,
}

impl Bench {
    /// Starts a NIA login: the pre-login cookie and the browser step's response.
    async fn start(&self) -> (String, reqwest::Response) {
        let start = self
            .client
            .get(format!("{}/.aisgate/login?return=%2F&provider=nia", self.base))
            .header("accept", "text/html")
            .send()
            .await
            .expect("login start");
        let c = cookie(&start, "aisgate_login").expect("pre-login cookie");
        (c, start)
    }

    /// A whole login: (pre-login cookie, ACS URL, the simulator's form fields).
    async fn answered(&self) -> (String, String, Vec<(String, String)>) {
        let (c, start) = self.start().await;
        let answer = match start.status().as_u16() {
            302 => self.client.get(location(&start)).send().await.expect("IdP"),
            200 => {
                let (action, fields) = parse_form(&start.text().await.unwrap_or_default());
                self.client.post(action).form(&fields).send().await.expect("IdP")
            }
            other => panic!("login start answered {other}"),
        };
        let (acs, form) = parse_form(&answer.text().await.unwrap_or_default());
        (c, acs, form)
    }

    async fn post_acs(&self, acs: &str, login_cookie: &str, saml_response: &str) -> (u16, Duration) {
        let t = Instant::now();
        let resp = self
            .client
            .post(acs)
            .header("cookie", login_cookie)
            .header("accept", "text/html")
            .form(&[("SAMLResponse", saml_response)])
            .send()
            .await
            .expect("ACS");
        let status = resp.status().as_u16();
        let _ = resp.bytes().await;
        (status, t.elapsed())
    }
}

/// The element `<prefix:name …>…</prefix:name>` first found in `xml` (no nesting of the same name).
fn element<'a>(xml: &'a str, name: &str) -> Option<(usize, &'a str)> {
    let open = xml.find(&format!(":{name} ")).or_else(|| xml.find(&format!(":{name}>")))?;
    let start = xml[..open].rfind('<')?;
    let prefix = &xml[start + 1..open];
    let close = format!("</{prefix}:{name}>");
    let end = xml[start..].find(&close)? + start + close.len();
    Some((start, &xml[start..end]))
}

/// The simulator's Response with copies of its Signature and EncryptedKey until `size` bytes.
fn hostile(xml: &str, size: usize, signatures: usize) -> String {
    let (sig_at, sig) = element(xml, "Signature").expect("the Response is signed");
    let sig_end = sig_at + sig.len();
    // The copies without KeyInfo (the certificate): smaller, so more of them fit.
    let copy = match element(sig, "KeyInfo") {
        Some((at, info)) => format!("{}{}", &sig[..at], &sig[at + info.len()..]),
        None => sig.to_owned(),
    };
    let sig = copy.as_str();
    let key = element(xml, "EncryptedKey").map(|(_, k)| k.to_owned());
    let mut added = String::new();
    for _ in 0..signatures {
        if xml.len() + added.len() + sig.len() > size {
            break;
        }
        added.push_str(sig);
    }
    let mut out = format!("{}{}{}", &xml[..sig_end], added, &xml[sig_end..]);
    if let Some(key) = key {
        // Sibling EncryptedKeys before the original one.
        let (key_at, _) = element(&out, "EncryptedKey").expect("EncryptedKey");
        let mut keys = String::new();
        while out.len() + keys.len() + key.len() <= size {
            keys.push_str(&key);
        }
        out.insert_str(key_at, &keys);
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Sends authenticated proxied requests back to back until `stop`; returns their latencies.
/// `n=… p50 … p99 … max …` of `sorted` latencies.
fn latencies(sorted: &[Duration]) -> String {
    format!(
        "n={} p50 {} p99 {} max {}",
        sorted.len(),
        ms(percentile(sorted, 0.5)),
        ms(percentile(sorted, 0.99)),
        ms(sorted.last().copied().unwrap_or_default())
    )
}

async fn probe(bench: &Bench, session: &str, stop: tokio::sync::watch::Receiver<bool>) -> Vec<Duration> {
    let mut latencies = Vec::new();
    while !*stop.borrow() {
        let t = Instant::now();
        let resp =
            bench.client.get(format!("{}/", bench.base)).header("cookie", session).send().await.expect("proxied");
        assert_eq!(resp.status(), 200, "the proxied request must reach the upstream");
        let _ = resp.bytes().await;
        latencies.push(t.elapsed());
    }
    latencies
}

#[tokio::main]
async fn main() {
    let smoke = std::env::var("SMOKE").is_ok_and(|v| v == "1");
    let burst = env_num("BURST", if smoke { 4 } else { 50 }) as usize;
    let seq_secs = env_num("SEQ_SECS", if smoke { 0 } else { 5 });
    let size = env_num("SIZE_KB", if smoke { 40 } else { 190 }) as usize * 1024;
    let signatures = env_num("SIGNATURES", if smoke { 20 } else { 150 }) as usize;

    let stack =
        prepare(StackOptions { saml: Some(SamlStackProvider::default()), ..Default::default() }).await.expect("stack");
    let base = stack.public_base.clone();
    let grace = Duration::from_secs(stack.config.server.shutdown_grace_secs);
    let limits = aisgate::run::limits(&stack.config);
    aisgate::run::spawn_provider_refresh(&stack.gateway);
    let public = vec![aisgate::listen::PublicListener { listener: stack.listener, tls: None }];
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(aisgate::listen::serve(stack.gateway, public, stack.ops, limits, grace, async {
        let _ = stop_rx.await;
    }));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");
    let bench = Bench { base, client };

    // A real session for the proxied requests, and a genuine Response to make hostile.
    let (c, acs, form) = bench.answered().await;
    let login =
        bench.client.post(&acs).header("cookie", &c).form(&form).send().await.expect("ACS with a genuine Response");
    assert_eq!(login.status(), 302, "a genuine login completes");
    let session = cookie(&login, "aisgate_session").expect("session cookie");
    let (_, _, form) = bench.answered().await;
    let genuine = form.iter().find(|(k, _)| k == "SAMLResponse").map(|(_, v)| v.clone()).expect("SAMLResponse");
    let xml =
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(&genuine).expect("base64")).expect("UTF-8");
    let evil = hostile(&xml, size, signatures);
    // Approximate counts (open and close tags): for the report only.
    let sig_count = evil.matches("SignatureValue").count() / 2;
    let key_count = evil.matches("EncryptedKey").count() / 2;
    let evil_b64 = base64::engine::general_purpose::STANDARD.encode(&evil);
    println!(
        "hostile Response: {} bytes XML ({} bytes base64), ~{} ds:Signature, ~{} EncryptedKey",
        evil.len(),
        evil_b64.len(),
        sig_count,
        key_count
    );

    // 1. CPU per hostile request, sequential.
    let mut statuses = std::collections::BTreeMap::new();
    let (cpu0, t0) = (cpu_time(), Instant::now());
    let mut n = 0u32;
    let mut slowest = Duration::ZERO;
    while n < 3 || t0.elapsed() < Duration::from_secs(seq_secs) {
        let (c, _) = bench.start().await;
        let (status, took) = bench.post_acs(&acs, &c, &evil_b64).await;
        *statuses.entry(status).or_insert(0u32) += 1;
        slowest = slowest.max(took);
        n += 1;
    }
    let cpu = cpu_time().saturating_sub(cpu0);
    println!(
        "sequential: {n} hostile requests in {}, CPU {} per request (process total), slowest answer {}, statuses {statuses:?}",
        ms(t0.elapsed()),
        ms(cpu / n),
        ms(slowest)
    );

    // 2. Proxied latency idle, then during a burst of hostile Responses.
    let (stop, rx) = tokio::sync::watch::channel(false);
    let idle_probe = async {
        tokio::time::sleep(Duration::from_millis(if smoke { 200 } else { 1000 })).await;
        let _ = stop.send(true);
    };
    let (mut idle, ()) = tokio::join!(probe(&bench, &session, rx), idle_probe);
    idle.sort();
    let mut cookies = Vec::new();
    for _ in 0..burst {
        cookies.push(bench.start().await.0);
    }
    let (stop, rx) = tokio::sync::watch::channel(false);
    let bench = &bench;
    let attack = async {
        // Let the prober get going first.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t = Instant::now();
        let posts = cookies.iter().map(|c| bench.post_acs(&acs, c, &evil_b64));
        let results = futures_util::future::join_all(posts).await;
        let took = t.elapsed();
        let _ = stop.send(true);
        (results, took)
    };
    let (mut during, (results, took)) = tokio::join!(probe(bench, &session, rx), attack);
    during.sort();
    let mut burst_statuses = std::collections::BTreeMap::new();
    for (s, _) in &results {
        *burst_statuses.entry(*s).or_insert(0u32) += 1;
    }
    println!("proxied GET idle:   {}", latencies(&idle));
    println!("proxied GET during {burst} hostile Responses: {}", latencies(&during));
    println!("burst: all {burst} answered in {}, statuses {burst_statuses:?}", ms(took));
    let _ = stop_tx.send(());
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&stack.dir);
    println!("OK");
}
