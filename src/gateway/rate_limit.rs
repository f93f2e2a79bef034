//! A fixed-window per-client rate limiter for credential forms.
//!
//! Bounded memory (at most `capacity` clients tracked, oldest evicted first); each client
//! gets `limit` attempts per `window`. Used where a guessing attack costs the IdP or the user
//! something (one-time credential logins).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;

/// Attempts per client per window.
pub struct RateLimiter {
    attempts: Cache<IpAddr, Arc<AtomicU32>>,
    limit: u32,
}

impl RateLimiter {
    /// `limit` attempts per `window` per client address.
    pub fn new(limit: u32, window: Duration, capacity: u64) -> RateLimiter {
        RateLimiter { attempts: Cache::builder().max_capacity(capacity).time_to_live(window).build(), limit }
    }

    /// Counts an attempt; `false` once the client is over the limit for this window.
    pub fn allow(&self, client: IpAddr) -> bool {
        let counter = self.attempts.get_with(client, || Arc::new(AtomicU32::new(0)));
        counter.fetch_add(1, Ordering::Relaxed) < self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_limited_independently_and_windows_expire() {
        let limiter = RateLimiter::new(2, Duration::from_millis(200), 100);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(limiter.allow(a) && limiter.allow(a));
        assert!(!limiter.allow(a));
        assert!(limiter.allow(b));
        std::thread::sleep(Duration::from_millis(300));
        assert!(limiter.allow(a));
    }
}
