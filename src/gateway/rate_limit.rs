//! A fixed-window per-client rate limiter that fails closed.
//!
//! Each client gets `limit` attempts per `window`. Used where an unauthenticated request
//! costs the gateway, the IdP or the user something: login starts (each stores a pending
//! login and may cost the IdP a request) and one-time credential forms (guessing).
//!
//! Memory is bounded: at most `capacity` clients are tracked. When the table is full, the
//! clients whose window has ended are dropped; if it is still full, a client not yet tracked
//! is **refused** ([`Verdict::Full`]) rather than given a fresh counter. The old limiter
//! (a moka cache with `get_with`) failed open there: once a flood had filled it, every call
//! got a new zero counter that was never admitted, so nobody was limited any more. A tracked
//! counter is never reset before its window ends, whatever the flood does.
//!
//! IPv6 clients are counted per /64: one host usually owns a whole /64 and could otherwise
//! rotate addresses to escape the limit (and fill the table).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::session::shared::{CounterScope, SharedState};

/// What the limiter says about one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the client's limit.
    Allowed,
    /// The client used up its attempts for this window.
    Limited,
    /// Too many clients are tracked to take a new one: refused (fail closed).
    Full,
    /// The shared store that counts attempts across instances cannot answer: refused (fail
    /// closed) with the store-unavailable page.
    Unavailable,
}

impl Verdict {
    /// Whether the attempt may go on.
    pub fn allowed(self) -> bool {
        self == Verdict::Allowed
    }

    /// Log text of a refusal.
    pub fn reason(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Limited => "too many attempts from this client address",
            Verdict::Full => "too many clients tracked by the rate limiter (fail closed)",
            Verdict::Unavailable => "session store unavailable: the attempt cannot be counted (fail closed)",
        }
    }
}

/// Attempts per client per window.
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    clients: HashMap<IpAddr, (Instant, u32)>,
    /// When the table was last swept of ended windows (at most once per window).
    swept: Option<Instant>,
}

impl RateLimiter {
    /// `limit` attempts per `window` per client address, tracking at most `capacity` clients.
    pub fn new(limit: u32, window: Duration, capacity: u64) -> RateLimiter {
        RateLimiter {
            limit,
            window,
            capacity: usize::try_from(capacity).unwrap_or(usize::MAX).max(1),
            state: Mutex::new(State::default()),
        }
    }

    /// Attempts allowed per client per window.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Counts an attempt; `false` once the client is over the limit for this window (or the
    /// limiter cannot track it).
    pub fn allow(&self, client: IpAddr) -> bool {
        self.check(client).allowed()
    }

    /// Counts an attempt now and says why it is refused, if it is.
    pub fn check(&self, client: IpAddr) -> Verdict {
        self.check_at(client, Instant::now())
    }

    /// Counts an attempt in the store all instances share, when there is one (so the limit
    /// holds for the client across instances, not per instance), else here.
    pub async fn check_shared(&self, client: IpAddr, shared: Option<&dyn SharedState>, scope: CounterScope) -> Verdict {
        let Some(shared) = shared else { return self.check(client) };
        match shared.count_attempt(scope, &bucket(client).to_string(), self.window).await {
            Ok(count) if count <= u64::from(self.limit) => Verdict::Allowed,
            Ok(_) => Verdict::Limited,
            Err(e) => {
                tracing::error!(error = %e, "cannot count the attempt in the shared store");
                Verdict::Unavailable
            }
        }
    }

    /// [`RateLimiter::check`] at time `now` (tests).
    pub fn check_at(&self, client: IpAddr, now: Instant) -> Verdict {
        let key = bucket(client);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let window = self.window;
        let ended = |start: Instant| now.saturating_duration_since(start) >= window;
        if let Some((start, count)) = state.clients.get_mut(&key) {
            if ended(*start) {
                *start = now;
                *count = 0;
            }
            *count = count.saturating_add(1);
            return if *count <= self.limit { Verdict::Allowed } else { Verdict::Limited };
        }
        if state.clients.len() >= self.capacity {
            // Sweeping costs O(capacity): at most once per window, so a flood of new
            // addresses cannot make every request pay for it.
            if state.swept.is_none_or(|t| now.saturating_duration_since(t) >= window) {
                state.clients.retain(|_, (start, _)| !ended(*start));
                state.swept = Some(now);
            }
            if state.clients.len() >= self.capacity {
                return Verdict::Full;
            }
        }
        if self.limit == 0 {
            return Verdict::Limited;
        }
        state.clients.insert(key, (now, 1));
        Verdict::Allowed
    }
}

/// The address a client is counted under: itself for IPv4, its /64 for IPv6 (IPv4-mapped
/// IPv6 addresses count as the IPv4 address).
fn bucket(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn clients_are_limited_independently_and_windows_expire() {
        let limiter = RateLimiter::new(2, Duration::from_secs(60), 100);
        let t0 = Instant::now();
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        assert!(limiter.check_at(a, t0).allowed() && limiter.check_at(a, t0).allowed());
        assert_eq!(limiter.check_at(a, t0), Verdict::Limited);
        assert!(limiter.check_at(b, t0).allowed());
        assert!(limiter.check_at(a, t0 + Duration::from_secs(60)).allowed());
    }

    /// Issue 15 item 2: once the table is full, a new client is refused, and a flood of new
    /// addresses never resets a tracked client's counter (the old moka limiter handed out
    /// fresh zero counters: fail open).
    #[test]
    fn a_full_limiter_fails_closed_and_keeps_counting_the_tracked() {
        let limiter = RateLimiter::new(3, Duration::from_secs(60), 10);
        let t0 = Instant::now();
        let attacker = ip("192.0.2.1");
        for _ in 0..3 {
            assert!(limiter.check_at(attacker, t0).allowed());
        }
        assert_eq!(limiter.check_at(attacker, t0), Verdict::Limited);
        for i in 0..100u8 {
            let _ = limiter.check_at(IpAddr::from([198, 51, 100, i]), t0);
        }
        assert_eq!(limiter.check_at(ip("203.0.113.9"), t0), Verdict::Full);
        assert_eq!(limiter.check_at(attacker, t0), Verdict::Limited, "the flood must not reset the counter");
        // Once the windows have ended, room is made again.
        assert!(limiter.check_at(ip("203.0.113.9"), t0 + Duration::from_secs(61)).allowed());
    }

    #[test]
    fn an_ipv6_host_cannot_escape_by_rotating_addresses_in_its_64() {
        let limiter = RateLimiter::new(2, Duration::from_secs(60), 100);
        let t0 = Instant::now();
        assert!(limiter.check_at(ip("2001:db8:1:2::1"), t0).allowed());
        assert!(limiter.check_at(ip("2001:db8:1:2::2"), t0).allowed());
        assert_eq!(limiter.check_at(ip("2001:db8:1:2:ffff::3"), t0), Verdict::Limited);
        assert!(limiter.check_at(ip("2001:db8:1:3::1"), t0).allowed());
        assert_eq!(bucket(ip("::ffff:10.1.2.3")), ip("10.1.2.3"));
    }
}
