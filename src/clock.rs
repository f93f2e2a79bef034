//! The clock every expiry decision reads: sessions (idle and absolute), pending logins, SAML
//! and OIDC time checks, token refresh.
//!
//! Injected rather than read from `SystemTime::now()` at each site, so a test moves time
//! forward ([`Clock::advance`]) instead of sleeping through a timeout: expiry tests then take
//! no wall-clock time and cannot flake on a loaded machine. A test clock runs with the system
//! clock plus an offset, so peers that read the real time (simulators, real IdPs) stay within
//! the allowed skew, and nothing else about time changes. Production uses [`Clock::system`]:
//! a test clock is only made by [`Clock::test`], which no configuration reaches.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Unix time from the system clock, or the system clock plus an offset a test advances.
/// Cheap to clone; clones share the offset.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Milliseconds added to the system time; `None` for the system clock.
    offset_ms: Option<Arc<AtomicU64>>,
}

/// Milliseconds since the Unix epoch from the system clock (0 if it reads before 1970).
fn system_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock { offset_ms: None }
    }

    /// A test clock: the system time until [`Clock::advance`] moves it ahead.
    pub fn test() -> Clock {
        Clock { offset_ms: Some(Arc::new(AtomicU64::new(0))) }
    }

    /// Whether this is a test clock.
    pub fn is_test(&self) -> bool {
        self.offset_ms.is_some()
    }

    /// Moves a test clock (and all its clones) forward by `by`. On the system clock it does
    /// nothing: production time cannot be moved.
    pub fn advance(&self, by: Duration) {
        if let Some(offset) = &self.offset_ms {
            offset.fetch_add(u64::try_from(by.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_millis(&self) -> u64 {
        let offset = self.offset_ms.as_ref().map_or(0, |o| o.load(Ordering::Relaxed));
        system_millis().saturating_add(offset)
    }

    /// Seconds since the Unix epoch.
    pub fn now_unix(&self) -> u64 {
        self.now_millis() / 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_clock_moves_with_its_clones_and_the_system_clock_does_not_move() {
        let clock = Clock::test();
        let clone = clock.clone();
        let before = clock.now_unix();
        clone.advance(Duration::from_secs(3600));
        assert!(clock.now_unix() >= before + 3600);
        let system = Clock::system();
        system.advance(Duration::from_secs(3600));
        assert!(system.now_unix() < before + 3600);
    }
}
