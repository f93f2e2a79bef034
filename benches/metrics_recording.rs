//! Per-request metric recording cost (bench/README.md, "Metrics recording cost"):
//! `AppMetrics::observe_request` on prometheus-client (one counter add, one histogram
//! observation behind prometheus-client's mutex) against the hand-written lock-free
//! recording it replaced in issue 15 (13b), copied below as the baseline: one atomic add
//! per status counter, one per bucket, one for the sum in integer nanoseconds.
//!
//! Run: `cargo bench --bench metrics_recording` (release profile). Prints ns per recorded
//! request on one thread, and per thread with two threads recording into the same app
//! (the contended case: every request of one app on both cores of this machine).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use aisgate::ops::metrics::{Metrics, REQUEST_DURATION_BUCKETS};

/// The pre-13b recording path: status counters and a lock-free histogram.
struct Baseline {
    status: Box<[AtomicU64]>,
    other: AtomicU64,
    bounds: [f64; 13],
    buckets: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
}

impl Baseline {
    fn new() -> Self {
        Baseline {
            status: (0..500).map(|_| AtomicU64::new(0)).collect(),
            other: AtomicU64::new(0),
            bounds: REQUEST_DURATION_BUCKETS,
            buckets: (0..=REQUEST_DURATION_BUCKETS.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    #[inline]
    fn observe_request(&self, status: u16, seconds: f64) {
        match self.status.get(usize::from(status.wrapping_sub(100))) {
            Some(c) => c.fetch_add(1, Ordering::Relaxed),
            None => self.other.fetch_add(1, Ordering::Relaxed),
        };
        let idx = self.bounds.iter().position(|b| seconds <= *b).unwrap_or(self.bounds.len());
        if let Some(bucket) = self.buckets.get(idx) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_nanos.fetch_add((seconds * 1e9 + 0.5) as u64, Ordering::Relaxed);
    }
}

/// ns per call of `record`, on one thread and per thread on two threads at once.
fn measure(name: &str, n: u64, record: impl Fn(u16, f64) + Sync) {
    let call = |i: u64| {
        let status = std::hint::black_box(if i % 16 == 0 { 404 } else { 200 });
        let seconds = std::hint::black_box((i % 1000) as f64 * 1e-4);
        record(status, seconds);
    };
    let start = Instant::now();
    (0..n).for_each(call);
    let one = start.elapsed().as_nanos() as f64 / n as f64;
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| (0..n).for_each(call));
        }
    });
    let two = start.elapsed().as_nanos() as f64 / n as f64;
    println!("{name:<46} 1 thread {one:6.1} ns/request   2 threads, one app {two:6.1} ns/request/thread");
}

fn main() {
    const N: u64 = 10_000_000;
    for round in 1..=3 {
        println!("round {round} ({N} requests per thread)");
        let baseline = Baseline::new();
        measure("hand-written lock-free (before 13b)", N, |s, t| baseline.observe_request(s, t));
        let metrics = Metrics::new(&["a"], &[]);
        let app = metrics.app(0);
        measure("prometheus-client (AppMetrics, now)", N, |s, t| app.observe_request(s, t));
    }
}
