//! The memory store's [`LogoutStore`]: NameIDs of logins and LogoutRequests sent, in this
//! process (one instance, or sticky load balancing). Bounded like the store's other one-shot
//! caches (least recently used entries go first) and by each entry's own lifetime, read
//! against the store's clock.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::sync::Cache;
use moka::Expiry;

use super::MemoryStore;
use crate::clock::Clock;
use crate::session::slo::LogoutStore;
use crate::session::StoreError;

/// Entries per cache: a flood of logins or logouts evicts the oldest, never grows the process.
const CAPACITY: u64 = 100_000;

/// A value and the Unix second it ends at.
#[derive(Clone)]
struct Timed<V> {
    value: V,
    until: u64,
}

/// (provider, NameID or LogoutRequest ID).
type Key = (String, String);

/// Drops entries when their time is up (by the store's clock).
struct Until(Clock);

impl<V> Expiry<Key, Timed<V>> for Until {
    fn expire_after_create(&self, _key: &Key, value: &Timed<V>, _at: Instant) -> Option<Duration> {
        Some(Duration::from_secs(value.until.saturating_sub(self.0.now_unix())))
    }
}

/// Least recently used entries go first: each login writes its NameID once and at most one
/// NameID-only LogoutRequest reads it, so moka's default admission policy would refuse every
/// newer entry once the cache is full (issue 15 item 2).
fn cache<V: Clone + Send + Sync + 'static>(clock: &Clock, capacity: u64) -> Cache<Key, Timed<V>> {
    Cache::builder()
        .max_capacity(capacity)
        .eviction_policy(moka::policy::EvictionPolicy::lru())
        .expire_after(Until(clock.clone()))
        .build()
}

/// What the memory store keeps for single logout.
pub(super) struct Logouts {
    /// (provider, NameID) → the subject it logged in as.
    name_ids: Cache<Key, Timed<String>>,
    /// (provider, ID) of LogoutRequests awaiting their answer.
    sent: Cache<Key, Timed<()>>,
}

impl Logouts {
    pub(super) fn new(clock: &Clock) -> Logouts {
        Logouts { name_ids: cache(clock, CAPACITY), sent: cache(clock, CAPACITY) }
    }
}

fn key(provider: &str, value: &str) -> Key {
    (provider.to_owned(), value.to_owned())
}

impl MemoryStore {
    fn until(&self, ttl: Duration) -> u64 {
        self.clock.now_unix().saturating_add(ttl.as_secs().max(1))
    }
}

#[async_trait]
impl LogoutStore for MemoryStore {
    async fn remember_name_id(
        &self,
        provider: &str,
        name_id: &str,
        subject: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let entry = Timed { value: subject.to_owned(), until: self.until(ttl) };
        self.logouts.name_ids.insert(key(provider, name_id), entry);
        Ok(())
    }

    async fn subject_of_name_id(&self, provider: &str, name_id: &str) -> Result<Option<String>, StoreError> {
        let now = self.clock.now_unix();
        Ok(self.logouts.name_ids.get(&key(provider, name_id)).filter(|e| e.until > now).map(|e| e.value))
    }

    async fn logout_sent(&self, provider: &str, id: &str, ttl: Duration) -> Result<(), StoreError> {
        self.logouts.sent.insert(key(provider, id), Timed { value: (), until: self.until(ttl) });
        Ok(())
    }

    async fn take_logout_sent(&self, provider: &str, id: &str) -> Result<bool, StoreError> {
        let now = self.clock.now_unix();
        // `remove` is atomic: of two answers to one request, one takes it.
        Ok(self.logouts.sent.remove(&key(provider, id)).is_some_and(|e| e.until > now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(clock: &Clock) -> MemoryStore {
        MemoryStore::new(10, Duration::from_secs(60), Duration::from_secs(60), clock.clone())
    }

    #[tokio::test]
    async fn a_name_id_is_remembered_per_provider_until_its_time_is_up() {
        let clock = Clock::test();
        let store = store(&clock);
        store.remember_name_id("nia", "nameid-1", "CZ/CZ/subject", Duration::from_secs(60)).await.unwrap();
        assert_eq!(store.subject_of_name_id("nia", "nameid-1").await.unwrap().as_deref(), Some("CZ/CZ/subject"));
        assert_eq!(store.subject_of_name_id("other", "nameid-1").await.unwrap(), None, "another provider's");
        assert_eq!(store.subject_of_name_id("nia", "nameid-2").await.unwrap(), None);
        clock.advance(Duration::from_secs(60));
        assert_eq!(store.subject_of_name_id("nia", "nameid-1").await.unwrap(), None, "its session is over");
    }

    /// Issue 15 review (item 2 for item 4), moved here with the NameID memory: with moka's
    /// default admission policy a full memory refused every newer NameID, so a NameID-only
    /// logout of a newer user answered UnknownPrincipal and left the session.
    #[test]
    fn a_full_name_id_memory_still_remembers_the_newest_login() {
        let clock = Clock::test();
        let until = clock.now_unix() + 3600;
        let names = cache::<String>(&clock, 50);
        for i in 0..200 {
            names.insert(key("nia", &format!("old-{i}")), Timed { value: format!("subject-{i}"), until });
            names.run_pending_tasks();
        }
        names.insert(key("nia", "newest"), Timed { value: "subject-new".to_owned(), until });
        names.run_pending_tasks();
        assert_eq!(names.get(&key("nia", "newest")).map(|t| t.value).as_deref(), Some("subject-new"));
        assert!(names.entry_count() <= 50);
    }

    #[tokio::test]
    async fn a_sent_logout_request_is_taken_once_and_only_while_awaited() {
        let clock = Clock::test();
        let store = store(&clock);
        store.logout_sent("nia", "_lr1", Duration::from_secs(900)).await.unwrap();
        store.logout_sent("nia", "_lr2", Duration::from_secs(900)).await.unwrap();
        assert!(!store.take_logout_sent("other", "_lr1").await.unwrap(), "another provider's");
        assert!(store.take_logout_sent("nia", "_lr1").await.unwrap());
        assert!(!store.take_logout_sent("nia", "_lr1").await.unwrap(), "single use");
        assert!(!store.take_logout_sent("nia", "_never").await.unwrap());
        clock.advance(Duration::from_secs(900));
        assert!(!store.take_logout_sent("nia", "_lr2").await.unwrap(), "no longer awaited");
    }
}
