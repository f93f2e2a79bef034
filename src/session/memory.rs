//! In-process session store: bounded, with idle and absolute expiry per entry.
//!
//! Built on moka's concurrent cache: reads are lock-free on the hot path, capacity is bounded
//! (least-valuable entries are evicted first, so a flood of logins cannot exhaust memory), and a
//! per-entry expiry gives each session `min(idle timeout, time to absolute expiry)`, renewed on
//! every read — which is exactly the idle-timeout semantics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::sync::Cache;
use moka::Expiry;

use super::{now_unix, PendingLogin, Session, SessionStore, StoreError, StoreKey};

/// Memory-backed [`SessionStore`].
pub struct MemoryStore {
    sessions: Cache<StoreKey, Arc<Session>>,
    pending: Cache<StoreKey, PendingLogin>,
}

struct SessionExpiry {
    idle: Duration,
}

impl SessionExpiry {
    fn remaining(&self, session: &Session) -> Duration {
        let absolute = Duration::from_secs(session.expires_at.saturating_sub(now_unix()));
        self.idle.min(absolute)
    }
}

impl Expiry<StoreKey, Arc<Session>> for SessionExpiry {
    fn expire_after_create(&self, _key: &StoreKey, value: &Arc<Session>, _at: Instant) -> Option<Duration> {
        Some(self.remaining(value))
    }

    fn expire_after_read(
        &self,
        _key: &StoreKey,
        value: &Arc<Session>,
        _at: Instant,
        _current: Option<Duration>,
        _last_modified: Instant,
    ) -> Option<Duration> {
        Some(self.remaining(value))
    }
}

impl MemoryStore {
    /// A store for at most `max_sessions` sessions.
    pub fn new(max_sessions: u64, idle: Duration, login_ttl: Duration) -> MemoryStore {
        MemoryStore {
            sessions: Cache::builder().max_capacity(max_sessions).expire_after(SessionExpiry { idle }).build(),
            // Pending logins are small and short-lived; bound them too (login floods).
            pending: Cache::builder().max_capacity(max_sessions.max(1000)).time_to_live(login_ttl).build(),
        }
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Arc<Session>>, StoreError> {
        let found = self.sessions.get(key);
        // moka expires lazily at its own granularity; enforce the absolute limit exactly.
        Ok(found.filter(|s| !s.is_expired(now_unix())))
    }

    async fn save(&self, key: StoreKey, session: Arc<Session>) -> Result<(), StoreError> {
        self.sessions.insert(key, session);
        Ok(())
    }

    async fn remove(&self, key: &StoreKey) -> Result<Option<Arc<Session>>, StoreError> {
        Ok(self.sessions.remove(key))
    }

    async fn put_pending(&self, key: StoreKey, pending: PendingLogin) -> Result<(), StoreError> {
        self.pending.insert(key, pending);
        Ok(())
    }

    async fn take_pending(&self, key: &StoreKey) -> Result<Option<PendingLogin>, StoreError> {
        Ok(self.pending.remove(key))
    }

    fn active_sessions(&self) -> u64 {
        self.sessions.run_pending_tasks();
        self.sessions.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    fn session(absolute: u64) -> Arc<Session> {
        Arc::new(Session::new(Identity::default(), serde_json::Value::Null, absolute, 1))
    }

    #[tokio::test]
    async fn saved_session_loads_and_removed_session_is_gone() {
        let store = MemoryStore::new(10, Duration::from_secs(60), Duration::from_secs(60));
        let key = StoreKey::of(&[1; 32]);
        store.save(key, session(60)).await.unwrap();
        assert!(store.load(&key).await.unwrap().is_some());
        assert!(store.remove(&key).await.unwrap().is_some());
        assert!(store.load(&key).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn absolutely_expired_session_is_not_returned() {
        let store = MemoryStore::new(10, Duration::from_secs(60), Duration::from_secs(60));
        let key = StoreKey::of(&[2; 32]);
        store.save(key, session(0)).await.unwrap();
        assert!(store.load(&key).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn idle_session_expires() {
        let store = MemoryStore::new(10, Duration::from_millis(200), Duration::from_secs(60));
        let key = StoreKey::of(&[3; 32]);
        store.save(key, session(60)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(store.load(&key).await.unwrap().is_some(), "a read renews the idle timer");
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(store.load(&key).await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(store.load(&key).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn pending_login_is_single_use() {
        let store = MemoryStore::new(10, Duration::from_secs(60), Duration::from_secs(60));
        let key = StoreKey::of(&[4; 32]);
        let pending = PendingLogin {
            provider: "p".into(),
            return_to: "/".into(),
            created_at: 0,
            protocol_state: serde_json::Value::Null,
        };
        store.put_pending(key, pending).await.unwrap();
        assert!(store.take_pending(&key).await.unwrap().is_some());
        assert!(store.take_pending(&key).await.unwrap().is_none());
    }
}
