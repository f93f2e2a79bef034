//! Load tool for the login path: runs complete JIP/KAAS logins against a running
//! `aisgate demo` (gateway + simulated IdP over mutual TLS) and reports logins per second.
//!
//! Each login is the browser's whole round trip: the login link of the provider chooser
//! (`/.aisgate/login?return=/&provider=jip`: 302 to the IdP, pre-login cookie),
//! the simulated IdP's login form POST (303 to the callback with a fresh `sessionId`), and
//! the callback (`authConfirmation` over mTLS → session → 302 to the original URL).
//!
//! ```text
//! cargo run --release --example login_load -- http://localhost:8080 [concurrency] [seconds] [logins] [visit]
//! ```
//!
//! With `logins` > 0 it stops after that many logins (or `seconds`, whichever comes first):
//! `bench/sessions.sh` makes a known number of sessions. With `visit` = 1 each new session
//! then requests its return URL once, as a browser following the last redirect does (the
//! session's identity headers and token get rendered and cached).

use std::time::{Duration, Instant};

fn location(resp: &reqwest::Response) -> Option<String> {
    resp.headers().get("location")?.to_str().ok().map(str::to_owned)
}

fn cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next())
        .find(|kv| kv.starts_with(&format!("{name}=")) && kv.len() > name.len() + 1)
        .map(str::to_owned)
}

async fn one_login(client: &reqwest::Client, base: &str, visit: bool) -> Result<(), String> {
    // The demo offers several providers (`GET /` shows the chooser): pick JIP/KAAS as its link does.
    let start = client
        .get(format!("{base}/.aisgate/login?return=%2F&provider=jip"))
        .header("accept", "text/html")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let idp = location(&start).ok_or("no IdP redirect")?;
    let login_cookie = cookie(&start, "aisgate_login").ok_or("no pre-login cookie")?;
    let form = client.post(&idp).form(&[("user", "0")]).send().await.map_err(|e| e.to_string())?;
    let callback = location(&form).ok_or("no callback redirect")?;
    let done = client.get(&callback).header("cookie", login_cookie).send().await.map_err(|e| e.to_string())?;
    let Some(session) = cookie(&done, "aisgate_session").filter(|_| done.status() == 302) else {
        return Err(format!("callback answered {}", done.status()));
    };
    if visit {
        let page = client.get(format!("{base}/")).header("cookie", session).send().await.map_err(|e| e.to_string())?;
        if page.status() != 200 {
            return Err(format!("the first request of a new session answered {}", page.status()));
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let base = args.get(1).cloned().unwrap_or_else(|| "http://localhost:8080".into());
    let concurrency: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(16);
    let seconds: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(10);
    // 0: as many as fit in `seconds`.
    let total: u64 = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(0);
    let visit = args.get(5).map(String::as_str) == Some("1");
    let started_logins = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, base, started_logins) = (client.clone(), base.clone(), started_logins.clone());
        workers.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0u64);
            let more = || total == 0 || started_logins.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < total;
            while Instant::now() < deadline && more() {
                let t = Instant::now();
                match one_login(&client, &base, visit).await {
                    Ok(()) => latencies.push(t.elapsed()),
                    Err(e) => {
                        errors += 1;
                        if errors == 1 {
                            eprintln!("login failed: {e}");
                        }
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for w in workers {
        let (l, e) = w.await.expect("worker");
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| latencies.get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)));
    let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    println!(
        "logins: {} in {elapsed:.1}s = {:.0} logins/s (concurrency {concurrency}); errors: {errors}; latency p50 {:.1} ms, p99 {:.1} ms",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        ms(pct(0.5)),
        ms(pct(0.99)),
    );
    if errors > 0 || latencies.is_empty() {
        std::process::exit(1);
    }
}
