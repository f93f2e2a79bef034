//! What idle sessions cost in memory, per protocol, measured three ways (issue 13 items 1, 3).
//!
//! Fills a memory session store with `N` sessions of one protocol — realistic ones, made by
//! the providers' own mapping code from the simulated IdPs' demo users
//! (`aisgate::session::samples`: JIP/KAAS, NIA over SAML, CAAIS over OpenID Connect without
//! and with an `upstream_bearer` app, which keeps the access and refresh token) — and
//! reports per session:
//!
//! * `accounted`: the store's own estimate (`MemoryStore::accounted_bytes`, the gauge
//!   `aisgate_session_store_bytes`);
//! * `heap`: live heap bytes, from a counting allocator around mimalloc (the production
//!   allocator): exact and independent of machine load;
//! * `rss`: the growth of the process's `VmRSS` (`/proc/self/status`), allocator overhead
//!   and fragmentation included.
//!
//! Three phases: `idle` (just logged in), `in use` (one request each: identity headers of
//! one app rendered with the default header contract and an ES256 identity token minted,
//! both cached on the session), `idle again` (the clock moved past the cache idle time and the
//! store's sweep released the caches).
//!
//! ```text
//! cargo run --release --example session_memory -- <kaas|nia|caais|caais-bearer|all> [sessions]
//! ```
//! One protocol per process gives clean RSS figures (`bench/sessions.sh` does that).
//! `<protocol> <sessions> breakdown` prints one session's parts instead, and the store's own
//! bytes per session (moka's entry and the logout index) measured with `<sessions>` bare
//! sessions against what the store accounts for them.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aisgate::clock::Clock;
use aisgate::identity::headers::{HeaderMapping, HeaderMappingConfig};
use aisgate::identity::token::{IdentityTokenSigner, TokenAlgorithm};
use aisgate::session::memory::MemoryStore;
use aisgate::session::{samples, CacheKey, SessionStore, StoreKey};
use http::HeaderValue;

/// mimalloc, counting the bytes live (requested sizes).
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to mimalloc; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// `VmRSS` of this process, bytes (0 where `/proc` is missing).
fn rss() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .map_or(0, |kb| kb * 1024)
}

struct Snapshot {
    heap: isize,
    rss: i64,
}

fn snapshot() -> Snapshot {
    Snapshot { heap: LIVE.load(Ordering::Relaxed), rss: rss() }
}

fn row(protocol: &str, phase: &str, n: usize, accounted: u64, base: &Snapshot) {
    let now = snapshot();
    let per = |v: f64| v / n as f64;
    println!(
        "{protocol:<6} {phase:<11} {n:>8} {:>10.0} {:>10.0} {:>10.0}",
        per(accounted as f64),
        per((now.heap - base.heap) as f64),
        per((now.rss - base.rss) as f64),
    );
}

fn key(i: usize) -> StoreKey {
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&(i as u64).to_be_bytes());
    StoreKey::of(&id)
}

async fn measure(protocol: &str, n: usize) -> Result<(), String> {
    let clock = Clock::test();
    let now = clock.now_unix();
    let mapping = HeaderMapping::compile(&HeaderMappingConfig::default()).map_err(|e| e.to_string())?;
    let signer = IdentityTokenSigner::generate(TokenAlgorithm::Es256).map_err(|e| e.to_string())?;
    let cache_key = CacheKey::next(1);
    let store = MemoryStore::new(n as u64 + 1, Duration::from_secs(8 * 3600), Duration::from_secs(60), clock.clone());
    let keys: Vec<StoreKey> = (0..n).map(key).collect();
    let base = snapshot();
    for (i, key) in keys.iter().enumerate() {
        let session = samples::sample(protocol, i as u64, now).ok_or_else(|| format!("no sample for {protocol}"))?;
        store.save(*key, Arc::new(session)).await.map_err(|e| e.to_string())?;
    }
    if store.active_sessions() != n as u64 {
        return Err(format!("stored {} of {n} sessions", store.active_sessions()));
    }
    row(protocol, "idle", n, store.accounted_bytes(), &base);

    // The store accounts sessions as saved (no caches); add what the caches hold now.
    let (mut saved, mut with_caches) = (0u64, 0u64);
    for key in &keys {
        let session = store.load(key).await.map_err(|e| e.to_string())?.ok_or("session lost")?;
        saved += session.accounted_bytes() as u64;
        let headers = session.rendered_headers(cache_key, 0, |identity| mapping.render(identity).into());
        let token = session.identity_token(cache_key, 0, now, 150, |identity| {
            let claims = identity.token_claims("https://gw.example.cz", "portal", now, now + 300);
            let jwt = signer.sign(&claims).ok()?;
            HeaderValue::from_str(&jwt).ok().map(|v| (now + 300, v))
        });
        if headers.is_empty() || token.is_none() {
            return Err("nothing rendered".into());
        }
        with_caches += session.accounted_bytes() as u64;
    }
    row(protocol, "in use", n, store.accounted_bytes() + with_caches - saved, &base);

    clock.advance(Duration::from_secs(aisgate::session::CACHE_IDLE_SECS + 1));
    let released = store.release_idle_caches();
    if released != n {
        return Err(format!("released the caches of {released} of {n} sessions"));
    }
    row(protocol, "idle again", n, store.accounted_bytes(), &base);
    Ok(())
}

/// One sample session's accounted parts against the heap its clones take (counted).
fn breakdown(protocol: &str) -> Result<(), String> {
    let now = Clock::system().now_unix();
    let session = samples::sample(protocol, 7, now).ok_or_else(|| format!("no sample for {protocol}"))?;
    let heap = |f: &dyn Fn() -> Box<dyn std::any::Any>| {
        let before = LIVE.load(Ordering::Relaxed);
        let kept = f();
        let after = LIVE.load(Ordering::Relaxed);
        drop(kept);
        after - before
    };
    let id = &session.identity;
    let measured = [
        ("record", std::mem::size_of::<aisgate::session::Session>() as isize + 16),
        ("attributes", heap(&|| Box::new(id.attributes.clone()))),
        (
            "identity",
            heap(&|| Box::new(id.clone()))
                - heap(&|| Box::new(id.attributes.clone()))
                - std::mem::size_of_val(id) as isize,
        ),
        (
            "logout",
            heap(&|| Box::new(session.logout_state.clone())) - std::mem::size_of_val(&session.logout_state) as isize,
        ),
        ("tokens", heap(&|| Box::new(aisgate::session::tokens::TokenSlot::new(session.upstream_tokens.get()))) - 8),
        ("caches", 0),
    ];
    for ((part, accounted), (_, heap)) in session.accounted_parts().iter().zip(measured) {
        println!("{protocol:<6} {part:<11} {accounted:>10} {heap:>10}");
    }
    Ok(())
}

/// The store's own bytes per session (moka's entry and the logout index), measured: `n`
/// bare sessions (a subject, nothing else) saved, the heap growth less their records and
/// strings, against what the store accounts for it (`ENTRY_OVERHEAD` and the index).
async fn store_overhead(n: usize) -> Result<(), String> {
    use aisgate::identity::Identity;
    use aisgate::provider::LogoutState;
    let clock = Clock::test();
    let store = MemoryStore::new(n as u64 + 1, Duration::from_secs(8 * 3600), Duration::from_secs(60), clock.clone());
    let subjects: Vec<String> = (0..n).map(|i| format!("{i:016}")).collect();
    let base = snapshot();
    let mut sessions = 0usize;
    for (i, subject) in subjects.iter().enumerate() {
        let identity = Identity { provider: "p".into(), subject: subject.clone(), ..Identity::default() };
        let session = aisgate::session::Session::new(identity, LogoutState::None, 3600, clock.now_unix());
        sessions += session.accounted_bytes();
        store.save(key(i), Arc::new(session)).await.map_err(|e| e.to_string())?;
    }
    let heap = (snapshot().heap - base.heap) as usize;
    // Heap of a bare session: its `Arc` block and the two strings (requested sizes).
    let own = 16 + std::mem::size_of::<aisgate::session::Session>() + 1 + 16;
    let accounted = store.accounted_bytes() as usize - sessions;
    println!("store  entry+index {:>10} {:>10}", accounted / n, heap / n - own);
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map_or("all", String::as_str);
    let n: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let protocols: Vec<&str> = if which == "all" { samples::PROTOCOLS.to_vec() } else { vec![which] };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("no runtime: {e}");
            std::process::exit(2);
        }
    };
    if args.get(3).map(String::as_str) == Some("breakdown") {
        println!("protocol part        accounted  heap (clone, requested bytes)");
        for protocol in &protocols {
            if let Err(e) = breakdown(protocol) {
                eprintln!("session_memory {protocol}: {e}");
                std::process::exit(1);
            }
        }
        if let Err(e) = rt.block_on(store_overhead(n)) {
            eprintln!("session_memory store: {e}");
            std::process::exit(1);
        }
        return;
    }
    println!("protocol phase       sessions  accounted     heap B      rss B   (bytes per session)");
    for protocol in protocols {
        if let Err(e) = rt.block_on(measure(protocol, n)) {
            eprintln!("session_memory {protocol}: {e}");
            std::process::exit(1);
        }
    }
}
