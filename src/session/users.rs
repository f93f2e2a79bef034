//! Sessions per user: the per-user limit (`[session] max_sessions_per_user`) and the types
//! of the admin listing.
//!
//! A user is a subject at one provider (the same person logging in through NIA and through
//! CAAIS is two users here: the gateway cannot link them). Each store keeps an index from the
//! user to their sessions ([`SessionStore::user_sessions`]): the memory store its logout
//! index by subject, the Redis store a sorted set per user named by an HMAC of the user
//! (`redis/index.rs`), so no key name carries a subject.
//!
//! Why a limit: a stolen password or a script that logs in in a loop would otherwise pile up
//! sessions without bound (each one lives until its idle timeout). With the limit the
//! newest login wins and the oldest session of that user ends, announced like any other end
//! (WebSocket tunnels close, other instances drop it).

use std::sync::Arc;

use super::{Session, SessionStore, StoreError, StoreKey};
use crate::audit::{Audit, EndReason, Event, Origin, SessionRef, Subject};

/// One session of a user in the per-user index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserSession {
    /// Its store key.
    pub key: StoreKey,
    /// When it was created, Unix seconds.
    pub created_at: u64,
}

/// A session found by [`SessionStore::scan_sessions`].
#[derive(Debug)]
pub struct Listed {
    /// Its store key (never shown: the admin API shows [`StoreKey::log_label`]).
    pub key: StoreKey,
    /// The session.
    pub session: Arc<Session>,
    /// When it was last used, Unix seconds, when the store knows.
    pub last_seen: Option<u64>,
}

/// A filter over sessions for [`SessionStore::scan_sessions`].
pub type Keep<'a> = dyn Fn(&StoreKey, &Session) -> bool + Send + Sync + 'a;

/// Ends the oldest sessions of the user of `session` (just saved under `key`) beyond `max`
/// (0: no limit), never `key` itself; each end is audited (`session_end`, reason `limit`).
/// Returns how many ended.
pub async fn enforce_limit(
    store: &dyn SessionStore,
    audit: &Audit,
    origin: Origin<'_>,
    key: StoreKey,
    session: &Session,
    max: usize,
) -> Result<usize, StoreError> {
    if max == 0 || session.identity.subject.is_empty() {
        return Ok(0);
    }
    let mut sessions = store.user_sessions(&session.identity.provider, &session.identity.subject).await?;
    if sessions.len() <= max {
        return Ok(0);
    }
    // Oldest first; among equal times the key decides, so that every instance picks the same.
    sessions.sort_by_key(|s| (s.created_at, s.key.0));
    let excess = sessions.len() - max;
    let mut ended = 0;
    for old in sessions.iter().filter(|s| s.key != key).take(excess) {
        if let Some(gone) = store.remove(&old.key).await? {
            tracing::info!(session = %old.key.log_label(), user = %gone.identity.log_label(), "max_sessions_per_user: oldest session ended");
            let (subject, session) = (Subject(&gone.identity), SessionRef(&old.key));
            audit.emit(Event::SessionEnd { origin, reason: EndReason::Limit, subject, session });
            ended += 1;
        }
    }
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::Clock;
    use crate::identity::Identity;
    use crate::session::memory::MemoryStore;

    fn session(sub: &str, created: u64) -> Session {
        let identity = Identity { provider: "nia".into(), subject: sub.into(), ..Identity::default() };
        Session::new(identity, crate::provider::LogoutState::None, 3600, created)
    }

    #[tokio::test]
    async fn the_oldest_sessions_of_that_user_end_beyond_the_limit() {
        let clock = Clock::test();
        let store = MemoryStore::new(100, Duration::from_secs(600), Duration::from_secs(60), clock.clone());
        let now = clock.now_unix();
        let keys: Vec<StoreKey> = (0u8..4).map(|i| StoreKey::of(&[i; 32])).collect();
        // Saved out of creation order: the limit goes by creation time, not by insertion.
        for (i, created) in [(1, now + 1), (0, now), (2, now + 2)] {
            store.save(keys[i], Arc::new(session("alice", created))).await.unwrap();
        }
        let bob = StoreKey::of(&[9; 32]);
        store.save(bob, Arc::new(session("bob", now))).await.unwrap();
        let newest = session("alice", now + 3);
        store.save(keys[3], Arc::new(session("alice", now + 3))).await.unwrap();
        assert_eq!(enforce_limit(&store, &Audit::off(), Origin::none(), keys[3], &newest, 2).await.unwrap(), 2);
        assert!(store.load(&keys[0]).await.unwrap().is_none(), "oldest ended");
        assert!(store.load(&keys[1]).await.unwrap().is_none(), "second oldest ended");
        assert!(store.load(&keys[2]).await.unwrap().is_some());
        assert!(store.load(&keys[3]).await.unwrap().is_some(), "the new login stays");
        assert!(store.load(&bob).await.unwrap().is_some(), "another user is untouched");
        let left = store.user_sessions("nia", "alice").await.unwrap();
        assert_eq!(left.iter().map(|s| s.key).collect::<Vec<_>>(), vec![keys[2], keys[3]], "oldest first");
    }

    #[tokio::test]
    async fn zero_means_no_limit_and_the_new_session_never_ends() {
        let clock = Clock::test();
        let store = MemoryStore::new(100, Duration::from_secs(600), Duration::from_secs(60), clock.clone());
        let now = clock.now_unix();
        for i in 0u8..5 {
            store.save(StoreKey::of(&[i; 32]), Arc::new(session("alice", now))).await.unwrap();
        }
        let newest = session("alice", now);
        assert_eq!(
            enforce_limit(&store, &Audit::off(), Origin::none(), StoreKey::of(&[4; 32]), &newest, 0).await.unwrap(),
            0
        );
        assert_eq!(store.user_sessions("nia", "alice").await.unwrap().len(), 5);
        // Same creation second for all: the new key is skipped wherever it sorts, never ended.
        assert_eq!(
            enforce_limit(&store, &Audit::off(), Origin::none(), StoreKey::of(&[0; 32]), &newest, 1).await.unwrap(),
            4
        );
        assert!(store.load(&StoreKey::of(&[0; 32])).await.unwrap().is_some());
    }
}
