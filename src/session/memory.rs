//! In-process session store: bounded, with idle and absolute expiry per entry.
//!
//! Built on moka's concurrent cache: reads are lock-free on the hot path, capacity is bounded
//! (least recently used entries are evicted first, so a flood of logins cannot exhaust memory
//! and never locks newcomers out: see [`one_shot_cache`]), and a
//! per-entry expiry gives each session `min(idle timeout, time to absolute expiry)`, renewed on
//! every read — which is exactly the idle-timeout semantics.
//!
//! Back-channel logout needs to find sessions by the IdP's session id (`sid`) and by user
//! (`sub`), so a secondary index maps `(provider, subject)` to store keys and `(provider, sid)`
//! to the user whose sessions have that sid.
//! It is kept consistent by moka's eviction listener, which runs for every way an entry leaves
//! the cache (explicit removal, replacement, idle or absolute expiry, capacity eviction): the
//! index therefore never holds more than two entries per cached session, so it is bounded by the
//! same `max_sessions`. Expired entries leave the index when moka's housekeeping evicts them;
//! until then a lookup may name a key that is gone, which is harmless because every candidate
//! is re-checked against the session it points to before it is removed or counted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use moka::Expiry;

use super::users::{Keep, Listed, UserSession};
use super::{LogoutBy, PendingLogin, SavedPost, Session, SessionStore, StoreError, StoreKey};
use crate::audit::{Audit, EndReason, Event, Origin, SessionRef, Subject};
use crate::clock::Clock;

mod slo;

/// A bounded cache with least-recently-used eviction and a time to live, for entries that are
/// written once and read (at most) once: pending logins, replay caches, sent-request IDs.
///
/// moka's default policy (TinyLFU) admits a new key only if it is estimated to be used more
/// often than the entry it would evict. A one-shot key is never used before it is inserted,
/// so once a flood has filled the cache every new key is refused admission: real users'
/// pending logins vanish at once ("expired login"), a replay cache forgets what it was told
/// to remember. LRU always admits the newest key and evicts the oldest instead, so a flood
/// must outpace a login's whole round trip to disturb it (and per-address limits on login
/// starts, `server.login_starts_per_minute`, make that a botnet's job).
pub fn one_shot_cache<K, V>(capacity: u64, ttl: Duration) -> Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    Cache::builder().max_capacity(capacity).eviction_policy(EvictionPolicy::lru()).time_to_live(ttl).build()
}

/// Bytes of kept form POSTs ([`PendingLogin::saved_post`]) a memory store holds at most:
/// 64 MiB, a thousand forms of the default 64 KiB cap.
pub const SAVED_POSTS_BUDGET: u64 = 64 << 20;

/// Memory-backed [`SessionStore`].
pub struct MemoryStore {
    sessions: Cache<StoreKey, Entry>,
    /// Idle timeout, milliseconds, enforced on every read against `clock`.
    idle_ms: u64,
    clock: Clock,
    ended: tokio::sync::broadcast::Sender<StoreKey>,
    pending: Cache<StoreKey, PendingLogin>,
    /// The form POSTs kept with pending logins, by the same key, within
    /// [`SAVED_POSTS_BUDGET`] bytes: a flood of large forms evicts other saved forms (their
    /// logins still finish, by GET), never pending logins, and cannot grow the process.
    saved_posts: Cache<StoreKey, Arc<SavedPost>>,
    index: Arc<Mutex<LogoutIndex>>,
    /// What the stored sessions were accounted at when saved, bytes (see
    /// [`MemoryStore::accounted_bytes`]).
    bytes: Arc<AtomicU64>,
    /// The thread that releases idle sessions' caches; stopped (and joined) with the store.
    _sweeper: Option<Sweeper>,
    /// Maintenance notices by app (kept here so that they survive a reload with the store).
    maintenance: Mutex<std::collections::BTreeMap<String, Vec<u8>>>,
    /// Where the ends the store itself decides (expiry, idle, capacity) are audited; ends
    /// callers ask for (logout, replacement, admin) are audited by the caller, who knows why.
    audit: Arc<OnceLock<Audit>>,
    /// NameIDs of logins and LogoutRequests sent, for single logout (`memory/slo.rs`).
    logouts: slo::Logouts,
}

/// What a session is indexed under: by IdP session id or by subject, always per provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum IndexKey<'a> {
    Sid(&'a str, &'a str),
    Subject(&'a str, &'a str),
}

/// A session in its user's index entry: its store key and the hash of its IdP session id
/// (`0` without one), which tells whether a `sid` entry is still needed when it leaves.
type Indexed = (StoreKey, u32);

/// Secondary index for back-channel logout and the per-user limit: `(provider, sub)` → the
/// user's store keys, and `(provider, sid)` → the user whose sessions have that sid.
///
/// Keyed by a 32-bit keyed hash of the index key, not by copies of the provider, subject
/// and sid (issue 13 item 3). A `sid` entry names its user's entry (4 bytes) instead of
/// holding a 32-byte store key: an idle CAAIS or NIA session has both entries, and the
/// user's entry of one session (`one`, 41 bytes a bucket) has no room for a list, which
/// users with several sessions keep in `many`. A hash collision can only add a candidate:
/// every caller re-checks each candidate against its session ([`Session::matches_logout`],
/// the subject compare of `user_sessions`), and the hash key is random per process, so
/// nobody can aim one. A `sid` entry stays while a session of its user has that sid's hash,
/// so the index still never holds more entries than the cache holds sessions (times two).
struct LogoutIndex {
    hasher: std::hash::RandomState,
    /// Users with one session (nearly all), by subject hash.
    one: HashMap<u32, Indexed>,
    /// Users with several sessions, by subject hash (never also in `one`).
    many: HashMap<u32, Vec<Indexed>>,
    /// `sid` hash → subject hash of the user whose sessions have it.
    sids: HashMap<u32, u32>,
    /// `sid` hash → sessions it cannot name by their user: sessions without a subject, and a
    /// `sid` whose entry already names another user (the same sid from two users, or a
    /// collision). Empty in practice.
    other_sids: HashMap<u32, Vec<StoreKey>>,
}

impl Default for LogoutIndex {
    fn default() -> Self {
        LogoutIndex {
            hasher: std::hash::RandomState::new(),
            one: HashMap::new(),
            many: HashMap::new(),
            sids: HashMap::new(),
            other_sids: HashMap::new(),
        }
    }
}

impl LogoutIndex {
    /// The subject and sid hashes of a session. Empty values are not indexed, so an empty
    /// `sub` or `sid` in a logout token can never match a session that lacks one.
    fn entries(&self, session: &Session) -> (Option<u32>, Option<u32>) {
        let provider = session.identity.provider.as_str();
        let subject = &session.identity.subject;
        let by_subject = (!subject.is_empty()).then(|| self.hash(IndexKey::Subject(provider, subject)));
        let by_sid = session.idp_session_id().map(|sid| self.hash(IndexKey::Sid(provider, sid)));
        (by_subject, by_sid)
    }

    fn hash(&self, entry: IndexKey<'_>) -> u32 {
        // The low 32 bits of a keyed 64-bit hash.
        std::hash::BuildHasher::hash_one(&self.hasher, entry) as u32
    }

    /// The sessions of the user with subject hash `user`.
    fn user(&self, user: u32) -> &[Indexed] {
        match self.one.get(&user) {
            Some(one) => std::slice::from_ref(one),
            None => self.many.get(&user).map_or(&[], Vec::as_slice),
        }
    }

    fn add(&mut self, key: StoreKey, session: &Session) {
        let (user, sid) = self.entries(session);
        if let Some(user) = user {
            let indexed = (key, sid.unwrap_or(0));
            if let Some(many) = self.many.get_mut(&user) {
                if !many.contains(&indexed) {
                    many.push(indexed);
                }
            } else if let Some(&one) = self.one.get(&user) {
                if one != indexed {
                    self.one.remove(&user);
                    self.many.insert(user, vec![one, indexed]);
                }
            } else {
                self.one.insert(user, indexed);
            }
        }
        let Some(sid) = sid else { return };
        match (user, self.sids.get(&sid)) {
            (Some(user), None) => {
                self.sids.insert(sid, user);
            }
            (Some(user), Some(&named)) if named == user => {}
            _ => {
                let keys = self.other_sids.entry(sid).or_default();
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
    }

    fn remove(&mut self, key: &StoreKey, session: &Session) {
        let (user, sid) = self.entries(session);
        if let Some(user) = user {
            if self.one.get(&user).is_some_and(|(one, _)| one == key) {
                self.one.remove(&user);
            } else if let Some(many) = self.many.get_mut(&user) {
                many.retain(|(k, _)| k != key);
                match many[..] {
                    [] => {
                        self.many.remove(&user);
                    }
                    [only] => {
                        self.many.remove(&user);
                        self.one.insert(user, only);
                    }
                    _ => {}
                }
            }
        }
        let Some(sid) = sid else { return };
        // The sid entry goes with the last of its user's sessions that has this sid.
        if let Some(user) = user.filter(|user| self.sids.get(&sid) == Some(user)) {
            if !self.user(user).iter().any(|&(_, s)| s == sid) {
                self.sids.remove(&sid);
            }
        }
        if let Some(keys) = self.other_sids.get_mut(&sid) {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                self.other_sids.remove(&sid);
            }
        }
    }

    fn lookup(&self, entry: IndexKey<'_>) -> Vec<StoreKey> {
        let hash = self.hash(entry);
        match entry {
            IndexKey::Subject(..) => self.user(hash).iter().map(|&(key, _)| key).collect(),
            IndexKey::Sid(..) => {
                let named = self.sids.get(&hash).map_or(&[][..], |&user| self.user(user));
                let mut keys: Vec<StoreKey> =
                    named.iter().filter(|&&(_, sid)| sid == hash).map(|&(key, _)| key).collect();
                for key in self.other_sids.get(&hash).into_iter().flatten() {
                    if !keys.contains(key) {
                        keys.push(*key);
                    }
                }
                keys
            }
        }
    }

    /// Heap bytes of the index (see [`super::footprint`]): the tables (a key, a value and a
    /// control byte per bucket) and the lists of users with several sessions.
    fn bytes(&self) -> usize {
        use super::footprint::block;
        fn table<V>(map: &HashMap<u32, V>) -> usize {
            block(map.capacity() * (std::mem::size_of::<(u32, V)>() + 1))
        }
        let lists = self.many.values().map(|l| block(l.capacity() * std::mem::size_of::<Indexed>())).sum::<usize>()
            + self.other_sids.values().map(|l| block(l.capacity() * std::mem::size_of::<StoreKey>())).sum::<usize>();
        table(&self.one) + table(&self.many) + table(&self.sids) + table(&self.other_sids) + lists
    }

    /// Number of index entries (a session under its user, a sid), for tests of the bound.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.one.len()
            + self.many.values().map(Vec::len).sum::<usize>()
            + self.sids.len()
            + self.other_sids.values().map(Vec::len).sum::<usize>()
    }
}

/// A stored session and what it was accounted at when saved (bytes, see
/// [`MemoryStore::accounted_bytes`]).
#[derive(Clone)]
struct Entry {
    session: Arc<Session>,
    bytes: u32,
}

/// moka's own expiry bounds memory (it runs on moka's clock); the decisions that a session is
/// over are made on the store's [`Clock`] in `load`.
struct SessionExpiry {
    idle: Duration,
    clock: Clock,
}

impl SessionExpiry {
    fn remaining(&self, entry: &Entry) -> Duration {
        let absolute = Duration::from_secs(entry.session.expires_at.saturating_sub(self.clock.now_unix()));
        self.idle.min(absolute)
    }
}

impl Expiry<StoreKey, Entry> for SessionExpiry {
    fn expire_after_create(&self, _key: &StoreKey, value: &Entry, _at: Instant) -> Option<Duration> {
        Some(self.remaining(value))
    }

    fn expire_after_read(
        &self,
        _key: &StoreKey,
        value: &Entry,
        _at: Instant,
        _current: Option<Duration>,
        _last_modified: Instant,
    ) -> Option<Duration> {
        Some(self.remaining(value))
    }
}

impl MemoryStore {
    /// A store for at most `max_sessions` sessions, reading time from `clock`.
    pub fn new(max_sessions: u64, idle: Duration, login_ttl: Duration, clock: Clock) -> MemoryStore {
        let index = Arc::new(Mutex::new(LogoutIndex::default()));
        let listener_index = index.clone();
        // Bounded: a burst of endings larger than this makes slow receivers lag (they then
        // re-check their session), it never grows memory.
        let (ended, _) = tokio::sync::broadcast::channel(1024);
        let listener_ended = ended.clone();
        let audit: Arc<OnceLock<Audit>> = Arc::default();
        let (listener_audit, listener_clock) = (audit.clone(), clock.clone());
        // Runs for every removal cause, so the index shrinks with the cache. It must not call
        // back into the cache (moka may run it while holding internal locks).
        let bytes = Arc::new(AtomicU64::new(0));
        let listener_bytes = bytes.clone();
        let listener = move |key: Arc<StoreKey>, entry: Entry, cause: moka::notification::RemovalCause| {
            listener_index.lock().unwrap_or_else(|e| e.into_inner()).remove(&key, &entry.session);
            listener_bytes.fetch_sub(u64::from(entry.bytes), Ordering::Relaxed);
            // A replaced value lives on under the same key; every other cause ends the session.
            // Sending fails only when nobody listens, which is fine.
            if cause != moka::notification::RemovalCause::Replaced {
                let _ = listener_ended.send(*key);
            }
            // moka's housekeeping found it over (idle or absolute) or made room.
            let reason = match cause {
                moka::notification::RemovalCause::Expired if entry.session.is_expired(listener_clock.now_unix()) => {
                    Some(EndReason::Expired)
                }
                moka::notification::RemovalCause::Expired => Some(EndReason::Idle),
                moka::notification::RemovalCause::Size => Some(EndReason::Limit),
                _ => None,
            };
            if let (Some(reason), Some(audit)) = (reason, listener_audit.get()) {
                audit_end(audit, reason, &key, &entry.session);
            }
        };
        let sessions = Cache::builder()
            .max_capacity(max_sessions)
            // A new session has never been read: under TinyLFU a full store would refuse
            // it and the fresh login would loop. The least recently used session goes.
            .eviction_policy(EvictionPolicy::lru())
            .expire_after(SessionExpiry { idle, clock: clock.clone() })
            .eviction_listener(listener)
            .build();
        let sweeper = start_sweeper(sessions.clone(), clock.clone());
        MemoryStore {
            sessions,
            idle_ms: u64::try_from(idle.as_millis()).unwrap_or(u64::MAX),
            logouts: slo::Logouts::new(&clock),
            clock,
            ended,
            // Pending logins are small and short-lived; bound them too (login floods).
            pending: one_shot_cache(max_sessions.max(1000), login_ttl),
            saved_posts: Cache::builder()
                .max_capacity(SAVED_POSTS_BUDGET)
                .eviction_policy(EvictionPolicy::lru())
                .weigher(|_, saved: &Arc<SavedPost>| u32::try_from(saved.bytes()).unwrap_or(u32::MAX).max(1))
                .time_to_live(login_ttl)
                .build(),
            index,
            bytes,
            _sweeper: sweeper,
            maintenance: Mutex::default(),
            audit,
        }
    }

    /// What the stored sessions cost, bytes: each session as accounted when it was saved
    /// ([`Session::accounted_bytes`]: record, identity, logout state, tokens) plus the
    /// store's own per-entry bookkeeping ([`ENTRY_OVERHEAD`]) and the logout index. Per-app
    /// caches of sessions in use are not in it (they are released after
    /// [`super::CACHE_IDLE_SECS`] without a request). The gauge `aisgate_session_store_bytes`.
    pub fn accounted_bytes(&self) -> u64 {
        let index = self.index().bytes();
        self.bytes.load(Ordering::Relaxed).saturating_add(index as u64)
    }

    /// Releases the per-app caches of sessions not read for [`super::CACHE_IDLE_SECS`]
    /// (the sweeper thread runs it every half of that); returns how many it released.
    pub fn release_idle_caches(&self) -> usize {
        release_idle_caches(&self.sessions, &self.clock)
    }

    /// Audits the session ends this store decides (expiry, idle timeout, capacity) to `audit`.
    pub fn with_audit(self, audit: Audit) -> MemoryStore {
        let _ = self.audit.set(audit);
        self
    }

    /// Removes a session `load` found over, auditing why.
    fn end(&self, key: &StoreKey, reason: EndReason) {
        // An explicit removal: the listener leaves the audit to us.
        if let (Some(entry), Some(audit)) = (self.sessions.remove(key), self.audit.get()) {
            audit_end(audit, reason, key, &entry.session);
        }
    }

    fn index(&self) -> std::sync::MutexGuard<'_, LogoutIndex> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When `entry` was last read (ms), if it is still live on the store's clock (idle and
    /// absolute limits); looking does not renew it.
    fn live(&self, entry: &Entry) -> Option<u64> {
        let now = self.clock.now_millis();
        let last_seen = entry.session.last_seen_ms();
        let idle = now.saturating_sub(last_seen) > self.idle_ms;
        (!idle && !entry.session.is_expired(now / 1000)).then_some(last_seen)
    }
}

/// The store's own bookkeeping per session, bytes, on top of [`Session::accounted_bytes`]:
/// moka's entry (key, value, access-order and timer nodes, hash-table slot). Measured with
/// a counting allocator by `examples/session_memory.rs` (`breakdown`, the `store` row:
/// 298–302 heap bytes per entry besides the index with 20,000–100,000 sessions; it was 256
/// before that row measured it; bench/README.md "Session memory").
pub const ENTRY_OVERHEAD: usize = 304;

fn release_idle_caches(sessions: &Cache<StoreKey, Entry>, clock: &Clock) -> usize {
    let idle_before = clock.now_millis().saturating_sub(super::CACHE_IDLE_SECS * 1000);
    let mut released = 0;
    for (_, entry) in sessions.iter() {
        if entry.session.last_seen_ms() < idle_before && entry.session.has_caches() {
            entry.session.release_caches();
            released += 1;
        }
    }
    released
}

/// The thread releasing idle sessions' caches every half [`super::CACHE_IDLE_SECS`]. It
/// holds a handle on the sessions, so dropping it stops and joins the thread: the store's
/// sessions are freed with the store, not at the thread's next wake-up.
struct Sweeper {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        // Disconnecting the channel wakes the thread at once.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts the [`Sweeper`]; `None` (caches are then kept until their session ends) if no
/// thread can be started.
fn start_sweeper(sessions: Cache<StoreKey, Entry>, clock: Clock) -> Option<Sweeper> {
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let period = Duration::from_secs(super::CACHE_IDLE_SECS / 2);
    let sweep = move || {
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(period) {
            release_idle_caches(&sessions, &clock);
        }
    };
    // A small stack: it walks the cache and nothing else.
    match std::thread::Builder::new().name("aisgate-sessions".into()).stack_size(64 * 1024).spawn(sweep) {
        Ok(thread) => Some(Sweeper { stop: Some(stop), thread: Some(thread) }),
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the session cache sweeper; caches stay until sessions end");
            None
        }
    }
}

/// The `session_end` event of a session the store ended by itself (no request: no origin).
fn audit_end(audit: &Audit, reason: EndReason, key: &StoreKey, session: &Session) {
    let subject = Subject(&session.identity);
    audit.emit(Event::SessionEnd { origin: Origin::none(), reason, subject, session: SessionRef(key) });
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Arc<Session>>, StoreError> {
        let Some(entry) = self.sessions.get(key) else { return Ok(None) };
        // moka expires lazily at its own granularity and on its own clock; enforce both limits
        // exactly, on the store's clock. An idle session is gone for good.
        let now = self.clock.now_millis();
        if now.saturating_sub(entry.session.last_seen_ms()) > self.idle_ms {
            self.end(key, EndReason::Idle);
            return Ok(None);
        }
        if entry.session.is_expired(now / 1000) {
            self.end(key, EndReason::Expired);
            return Ok(None);
        }
        entry.session.touch(now);
        Ok(Some(entry.session))
    }

    async fn save(&self, key: StoreKey, session: Arc<Session>) -> Result<(), StoreError> {
        // Insert first: replacing an entry fires the listener for the old value, which must
        // not undo the new value's index entries.
        session.seen_at(self.clock.now_millis());
        let accounted = session.accounted_bytes().saturating_add(ENTRY_OVERHEAD);
        let bytes = u32::try_from(accounted).unwrap_or(u32::MAX);
        self.bytes.fetch_add(u64::from(bytes), Ordering::Relaxed);
        self.sessions.insert(key, Entry { session: session.clone(), bytes });
        self.index().add(key, &session);
        Ok(())
    }

    async fn remove(&self, key: &StoreKey) -> Result<Option<Arc<Session>>, StoreError> {
        Ok(self.sessions.remove(key).map(|e| e.session))
    }

    async fn put_pending(&self, key: StoreKey, mut pending: PendingLogin) -> Result<(), StoreError> {
        if let Some(saved) = pending.saved_post.take() {
            self.saved_posts.insert(key, Arc::new(saved));
        }
        self.pending.insert(key, pending);
        Ok(())
    }

    async fn take_pending(&self, key: &StoreKey) -> Result<Option<PendingLogin>, StoreError> {
        let saved = self.saved_posts.remove(key);
        Ok(self.pending.remove(key).map(|mut pending| {
            pending.saved_post = saved.map(Arc::unwrap_or_clone);
            pending
        }))
    }

    async fn remove_for_subject(
        &self,
        provider: &str,
        subject: Option<&str>,
        sid: Option<&str>,
    ) -> Result<usize, StoreError> {
        let entry = match LogoutBy::new(subject, sid) {
            Some(LogoutBy::Sid { sid, .. }) => IndexKey::Sid(provider, sid),
            Some(LogoutBy::Subject(sub)) => IndexKey::Subject(provider, sub),
            None => return Ok(0),
        };
        // Copy the candidates out and release the lock: removing fires the listener, which
        // takes the same lock.
        let candidates = self.index().lookup(entry);
        let mut ended = 0;
        for key in candidates {
            // Re-check against the session itself: the index may briefly name a key that
            // expired or was replaced.
            let Some(Entry { session, .. }) = self.sessions.get(&key) else { continue };
            if session.matches_logout(provider, subject, sid) && self.sessions.remove(&key).is_some() {
                ended += 1;
            }
        }
        Ok(ended)
    }

    async fn user_sessions(&self, provider: &str, subject: &str) -> Result<Vec<UserSession>, StoreError> {
        if subject.is_empty() {
            return Ok(Vec::new());
        }
        // The per-user index is the logout index by subject.
        let candidates = self.index().lookup(IndexKey::Subject(provider, subject));
        let mut found: Vec<UserSession> = candidates
            .into_iter()
            .filter_map(|key| {
                let entry = self.sessions.get(&key)?;
                self.live(&entry)?;
                let id = &entry.session.identity;
                (id.provider == provider && id.subject == subject)
                    .then_some(UserSession { key, created_at: entry.session.created_at })
            })
            .collect();
        found.sort_by_key(|s| (s.created_at, s.key.0));
        Ok(found)
    }

    async fn scan_sessions(&self, keep: &Keep<'_>, limit: usize) -> Result<Vec<Listed>, StoreError> {
        let mut found = Vec::new();
        for (key, entry) in self.sessions.iter() {
            if found.len() >= limit {
                break;
            }
            let Some(last_seen_ms) = self.live(&entry) else { continue };
            if keep(&key, &entry.session) {
                found.push(Listed { key: *key, session: entry.session.clone(), last_seen: Some(last_seen_ms / 1000) });
            }
        }
        Ok(found)
    }

    async fn set_maintenance(&self, app: &str, notice: Option<&[u8]>) -> Result<(), StoreError> {
        let mut map = self.maintenance.lock().unwrap_or_else(|e| e.into_inner());
        match notice {
            Some(notice) => map.insert(app.to_owned(), notice.to_vec()),
            None => map.remove(app),
        };
        Ok(())
    }

    async fn maintenance(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let map = self.maintenance.lock().unwrap_or_else(|e| e.into_inner());
        Ok(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    fn active_sessions(&self) -> u64 {
        self.sessions.run_pending_tasks();
        self.sessions.entry_count()
    }

    fn memory_bytes(&self) -> Option<u64> {
        Some(self.accounted_bytes())
    }

    fn ended_sessions(&self) -> tokio::sync::broadcast::Receiver<StoreKey> {
        self.ended.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    fn session(absolute: u64) -> Arc<Session> {
        Arc::new(Session::new(
            Identity::default(),
            crate::provider::LogoutState::None,
            absolute,
            crate::session::now_unix(),
        ))
    }

    #[tokio::test]
    async fn saved_session_loads_and_removed_session_is_gone() {
        let store = MemoryStore::new(10, Duration::from_secs(60), Duration::from_secs(60), Clock::system());
        let key = StoreKey::of(&[1; 32]);
        store.save(key, session(60)).await.unwrap();
        assert!(store.load(&key).await.unwrap().is_some());
        assert!(store.remove(&key).await.unwrap().is_some());
        assert!(store.load(&key).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn absolutely_expired_session_is_not_returned() {
        let store = MemoryStore::new(10, Duration::from_secs(60), Duration::from_secs(60), Clock::system());
        let key = StoreKey::of(&[2; 32]);
        store.save(key, session(0)).await.unwrap();
        assert!(store.load(&key).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn idle_session_expires() {
        // Ten minutes idle: moka's own (wall-clock) expiry cannot fire during the test, so
        // only the store's check on its clock can end the session.
        let clock = Clock::test();
        let store = MemoryStore::new(10, Duration::from_secs(600), Duration::from_secs(60), clock.clone());
        let key = StoreKey::of(&[3; 32]);
        store.save(key, session(3600)).await.unwrap();
        clock.advance(Duration::from_secs(360));
        assert!(store.load(&key).await.unwrap().is_some(), "a read renews the idle timer");
        clock.advance(Duration::from_secs(360));
        assert!(store.load(&key).await.unwrap().is_some());
        clock.advance(Duration::from_secs(601));
        assert!(store.load(&key).await.unwrap().is_none());
        assert!(store.load(&key).await.unwrap().is_none(), "an idle session is gone for good");
    }

    fn user_session(provider: &str, sub: &str, sid: Option<&str>, absolute: u64) -> Arc<Session> {
        let mut identity = Identity { provider: provider.into(), subject: sub.into(), ..Identity::default() };
        if let Some(sid) = sid {
            identity.attributes.insert("sid".into(), vec![sid.into()]);
        }
        Arc::new(Session::new(identity, crate::provider::LogoutState::None, absolute, crate::session::now_unix()))
    }

    fn store() -> MemoryStore {
        MemoryStore::new(100, Duration::from_secs(60), Duration::from_secs(60), Clock::system())
    }

    #[tokio::test]
    async fn logout_by_sid_ends_only_that_session() {
        let store = store();
        let (a, b) = (StoreKey::of(&[10; 32]), StoreKey::of(&[11; 32]));
        store.save(a, user_session("caais", "alice", Some("s1"), 60)).await.unwrap();
        store.save(b, user_session("caais", "alice", Some("s2"), 60)).await.unwrap();
        assert_eq!(store.remove_for_subject("caais", None, Some("s1")).await.unwrap(), 1);
        assert!(store.load(&a).await.unwrap().is_none());
        assert!(store.load(&b).await.unwrap().is_some(), "the other browser's session stays");
    }

    /// A sid entry names its user's entry: it must stay while any of that user's sessions
    /// has the sid (two apps' logins in one IdP session), and a sid two users share (or a
    /// session without subject) is still found.
    #[tokio::test]
    async fn a_sid_shared_by_sessions_stays_indexed_until_the_last_of_them_ends() {
        let store = store();
        let keys: Vec<StoreKey> = (60u8..65).map(|i| StoreKey::of(&[i; 32])).collect();
        store.save(keys[0], user_session("caais", "alice", Some("s1"), 60)).await.unwrap();
        store.save(keys[1], user_session("caais", "alice", Some("s1"), 60)).await.unwrap();
        store.save(keys[2], user_session("caais", "alice", Some("s2"), 60)).await.unwrap();
        store.save(keys[3], user_session("caais", "bob", Some("s1"), 60)).await.unwrap();
        store.save(keys[4], user_session("caais", "", Some("s1"), 60)).await.unwrap();
        store.remove(&keys[0]).await.unwrap();
        let mut found = store.index().lookup(IndexKey::Sid("caais", "s1"));
        let mut expected = vec![keys[1], keys[3], keys[4]];
        found.sort_by_key(|k| k.0);
        expected.sort_by_key(|k| k.0);
        assert_eq!(found, expected, "alice's other s1 session, bob's and the subjectless one");
        assert_eq!(store.index().lookup(IndexKey::Sid("caais", "s2")), vec![keys[2]]);
        assert_eq!(store.remove_for_subject("caais", None, Some("s1")).await.unwrap(), 3);
        assert!(store.load(&keys[2]).await.unwrap().is_some(), "the s2 session stays");
        assert_eq!(store.index().len(), 2, "alice's s2 session under her subject and its sid");
        store.remove(&keys[2]).await.unwrap();
        assert_eq!(store.index().len(), 0);
    }

    #[tokio::test]
    async fn logout_by_sid_with_another_users_subject_ends_nothing() {
        let store = store();
        let a = StoreKey::of(&[12; 32]);
        store.save(a, user_session("caais", "alice", Some("s1"), 60)).await.unwrap();
        assert_eq!(store.remove_for_subject("caais", Some("bob"), Some("s1")).await.unwrap(), 0);
        assert!(store.load(&a).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn logout_by_subject_ends_all_of_that_users_sessions_at_that_provider_only() {
        let store = store();
        let keys: Vec<StoreKey> = (20u8..24).map(|i| StoreKey::of(&[i; 32])).collect();
        store.save(keys[0], user_session("caais", "alice", Some("s1"), 60)).await.unwrap();
        store.save(keys[1], user_session("caais", "alice", None, 60)).await.unwrap();
        store.save(keys[2], user_session("enviam", "alice", Some("s1"), 60)).await.unwrap();
        store.save(keys[3], user_session("caais", "bob", Some("s3"), 60)).await.unwrap();
        assert_eq!(store.remove_for_subject("caais", Some("alice"), None).await.unwrap(), 2);
        assert!(store.load(&keys[0]).await.unwrap().is_none());
        assert!(store.load(&keys[1]).await.unwrap().is_none());
        assert!(store.load(&keys[2]).await.unwrap().is_some(), "other provider untouched");
        assert!(store.load(&keys[3]).await.unwrap().is_some(), "other user untouched");
        assert_eq!(store.remove_for_subject("enviam", None, Some("s3")).await.unwrap(), 0, "sid is per provider");
    }

    #[tokio::test]
    async fn logout_without_sid_or_subject_ends_nothing() {
        let store = store();
        store.save(StoreKey::of(&[30; 32]), user_session("caais", "", None, 60)).await.unwrap();
        assert_eq!(store.remove_for_subject("caais", None, None).await.unwrap(), 0);
        assert_eq!(store.remove_for_subject("caais", Some(""), Some("")).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn removed_and_expired_sessions_leave_no_index_entries() {
        let clock = Clock::test();
        let store = MemoryStore::new(100, Duration::from_secs(600), Duration::from_secs(60), clock.clone());
        let (a, b) = (StoreKey::of(&[40; 32]), StoreKey::of(&[41; 32]));
        store.save(a, user_session("caais", "alice", Some("s1"), 60)).await.unwrap();
        store.save(b, user_session("caais", "bob", Some("s2"), 60)).await.unwrap();
        assert_eq!(store.index().len(), 4);
        store.remove(&a).await.unwrap();
        assert_eq!(store.index().len(), 2, "explicit removal cleans the index");
        clock.advance(Duration::from_secs(601));
        assert!(store.load(&b).await.unwrap().is_none());
        store.sessions.run_pending_tasks();
        assert_eq!(store.index().len(), 0, "idle expiry cleans the index");
        assert_eq!(store.remove_for_subject("caais", Some("bob"), None).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn ended_sessions_are_announced_but_replacements_are_not() {
        let store = store();
        let mut ended = store.ended_sessions();
        let (a, b) = (StoreKey::of(&[50; 32]), StoreKey::of(&[51; 32]));
        store.save(a, user_session("caais", "alice", Some("s1"), 60)).await.unwrap();
        store.save(a, user_session("caais", "alice", Some("s1"), 60)).await.unwrap();
        store.save(b, user_session("caais", "bob", Some("s2"), 60)).await.unwrap();
        store.remove(&a).await.unwrap();
        assert_eq!(store.remove_for_subject("caais", Some("bob"), None).await.unwrap(), 1);
        assert_eq!(ended.recv().await.unwrap(), a, "removal, not the replacement, is announced");
        assert_eq!(ended.recv().await.unwrap(), b, "a back-channel logout is announced");
        assert!(ended.try_recv().is_err());
    }

    /// Issue 13 item 3: an idle session of each protocol, made by the providers' own mapping
    /// code (`session::samples`), as the store accounts it: record, identity, logout state,
    /// tokens, the store's entry and the logout index. JIP/KAAS and NIA meet the 2 KiB
    /// target; a CAAIS session keeps its ID token (CAAIS requires `id_token_hint` at logout),
    /// packed to ~0.55 KB (`session::packed`), and no upstream tokens unless an app forwards
    /// them (`caais-bearer`: an RS256 JWT access token and a refresh token, ~1 KB more):
    /// 2,025 heap bytes at 20,000 sessions (within 2 KiB, measured by
    /// `examples/session_memory.rs`'s counting allocator, which a unit test cannot do), 2,232
    /// accounted (the gauge's estimate is ~200 B above the heap, bench/README.md).
    #[tokio::test]
    async fn an_idle_session_of_each_protocol_stays_within_its_byte_budget() {
        let now = crate::session::now_unix();
        // Accounted bytes (the gauge's), which are at or above the heap's (bench/README.md
        // "Session memory"), here with 100 sessions: KAAS 1,533, NIA 1,480, CAAIS 2,215 (its ID
        // token packed: 1.5 KB verbatim; no upstream tokens without an `upstream_bearer` app;
        // 2,025 heap bytes), CAAIS with its tokens kept 3,255.
        for (protocol, budget) in [("kaas", 1600), ("nia", 1550), ("caais", 2250), ("caais-bearer", 3300)] {
            let store = MemoryStore::new(1000, Duration::from_secs(600), Duration::from_secs(60), Clock::test());
            for i in 0..100u8 {
                let session = crate::session::samples::sample(protocol, i.into(), now).unwrap();
                let bearer = protocol == "caais-bearer";
                assert_eq!(session.upstream_tokens.is_empty(), !bearer, "{protocol}: tokens only for a bearer app");
                store.save(StoreKey::of(&[i; 32]), Arc::new(session)).await.unwrap();
            }
            let per_session = store.accounted_bytes() / 100;
            assert!(per_session <= budget, "{protocol}: {per_session} bytes per idle session, budget {budget}");
            // The record alone (inline fields) and the entry overhead: an accounting that
            // lost a part would show here.
            let floor = (std::mem::size_of::<Session>() + ENTRY_OVERHEAD) as u64;
            assert!(per_session > floor, "{protocol}: {per_session} bytes is less than a bare record");
            for i in 0..100u8 {
                store.remove(&StoreKey::of(&[i; 32])).await.unwrap();
            }
            store.sessions.run_pending_tasks();
            assert_eq!(store.bytes.load(Ordering::Relaxed), 0, "{protocol}: removed sessions are no longer counted");
            assert_eq!(store.index().len(), 0);
        }
    }

    /// Per-app caches (rendered headers, identity tokens) live while a session is used and
    /// are released after `CACHE_IDLE_SECS` without a request; the next request renders again.
    #[tokio::test]
    async fn idle_sessions_release_their_caches_and_render_them_again_on_the_next_request() {
        let clock = Clock::test();
        let store = MemoryStore::new(10, Duration::from_secs(600), Duration::from_secs(60), clock.clone());
        let (key, cache_key) = (StoreKey::of(&[70; 32]), crate::session::CacheKey::next(1));
        let session = crate::session::samples::sample("kaas", 1, clock.now_unix()).unwrap();
        store.save(key, Arc::new(session)).await.unwrap();
        let renders = std::sync::atomic::AtomicUsize::new(0);
        let render = |_: &crate::identity::Identity| -> crate::session::RenderedHeaders {
            renders.fetch_add(1, Ordering::Relaxed);
            let value = http::HeaderValue::from_static("subject");
            Arc::from(vec![(http::HeaderName::from_static("x-auth-subject"), value)])
        };
        let session = store.load(&key).await.unwrap().unwrap();
        let bare = session.accounted_bytes();
        session.rendered_headers(cache_key, 0, render);
        assert!(session.has_caches());
        assert!(session.accounted_bytes() > bare, "the caches are accounted while they live");
        clock.advance(Duration::from_secs(crate::session::CACHE_IDLE_SECS - 1));
        assert_eq!(store.release_idle_caches(), 0, "used within the idle time: kept");
        session.rendered_headers(cache_key, 0, render);
        assert_eq!(renders.load(Ordering::Relaxed), 1, "cached");
        clock.advance(Duration::from_secs(2));
        assert_eq!(store.release_idle_caches(), 1);
        assert!(!session.has_caches());
        assert_eq!(session.accounted_bytes(), bare);
        let again = store.load(&key).await.unwrap().unwrap();
        assert_eq!(again.rendered_headers(cache_key, 0, render)[0].1, "subject");
        assert_eq!(renders.load(Ordering::Relaxed), 2, "rendered again after the release");
    }

    #[tokio::test]
    async fn pending_login_is_single_use() {
        let store = MemoryStore::new(10, Duration::from_secs(60), Duration::from_secs(60), Clock::system());
        let key = StoreKey::of(&[4; 32]);
        let pending = PendingLogin {
            provider: "p".into(),
            return_to: "/".into(),
            created_at: 0,
            protocol_state: crate::provider::PendingState::new(crate::provider::ProtocolState::Kaas),
            min_loa: None,
            login_base: None,
            handoff: None,
            link: None,
            saved_post: None,
        };
        store.put_pending(key, pending).await.unwrap();
        assert!(store.take_pending(&key).await.unwrap().is_some());
        assert!(store.take_pending(&key).await.unwrap().is_none());
    }

    /// Kept form POSTs have their own byte budget: a flood of large ones evicts older saved
    /// forms, never pending logins, and memory stays bounded.
    #[tokio::test]
    async fn kept_form_posts_stay_within_their_byte_budget_and_never_evict_logins() {
        let store = MemoryStore::new(10_000, Duration::from_secs(60), Duration::from_secs(300), Clock::system());
        let big = SavedPost { fields: vec![("text".into(), "x".repeat(64 * 1024))] };
        let first = StoreKey::of(&[1; 32]);
        store.put_pending(first, PendingLogin { saved_post: Some(big.clone()), ..pending("first") }).await.unwrap();
        for i in 0..1100u32 {
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&i.to_be_bytes());
            id[31] = 7;
            store
                .put_pending(StoreKey::of(&id), PendingLogin { saved_post: Some(big.clone()), ..pending("flood") })
                .await
                .unwrap();
        }
        store.saved_posts.run_pending_tasks();
        store.pending.run_pending_tasks();
        assert!(
            store.saved_posts.weighted_size() <= SAVED_POSTS_BUDGET,
            "bounded: {}",
            store.saved_posts.weighted_size()
        );
        let taken = store.take_pending(&first).await.unwrap().expect("the login itself survives");
        assert_eq!(taken.provider, "first");
        assert_eq!(taken.saved_post, None, "its form was evicted by the flood");
        // A recent one comes back whole, once.
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&1099u32.to_be_bytes());
        id[31] = 7;
        let last = store.take_pending(&StoreKey::of(&id)).await.unwrap().expect("recent login");
        assert_eq!(last.saved_post, Some(big));
        assert!(store.take_pending(&StoreKey::of(&id)).await.unwrap().is_none(), "single use");
    }

    fn pending(provider: &str) -> PendingLogin {
        PendingLogin {
            provider: provider.into(),
            return_to: "/".into(),
            created_at: 0,
            protocol_state: crate::provider::PendingState::new(crate::provider::ProtocolState::Kaas),
            min_loa: None,
            login_base: None,
            handoff: None,
            link: None,
            saved_post: None,
        }
    }

    /// Issue 15 item 2: under moka's default admission policy a store filled by a flood of
    /// login starts refused every new pending login, so the real user's callback found
    /// nothing ("expired login"). With LRU the newest login is kept.
    #[tokio::test]
    async fn a_real_login_completes_after_a_flood_filled_the_pending_store() {
        let store = MemoryStore::new(1000, Duration::from_secs(60), Duration::from_secs(60), Clock::system());
        for i in 0..3000u32 {
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&i.to_be_bytes());
            store.put_pending(StoreKey::of(&id), pending("flood")).await.unwrap();
            if i % 100 == 0 {
                store.pending.run_pending_tasks();
            }
        }
        store.pending.run_pending_tasks();
        let real = StoreKey::of(&[0xee; 32]);
        store.put_pending(real, pending("real")).await.unwrap();
        store.pending.run_pending_tasks();
        // More of the flood arrives while the user is at the IdP.
        for i in 3000..3100u32 {
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&i.to_be_bytes());
            store.put_pending(StoreKey::of(&id), pending("flood")).await.unwrap();
        }
        store.pending.run_pending_tasks();
        assert!(store.pending.entry_count() <= 1000, "still bounded");
        let taken = store.take_pending(&real).await.unwrap();
        assert_eq!(taken.map(|p| p.provider), Some("real".to_owned()));
    }

    /// The audit lines a store with an audit file wrote while `f` ran.
    async fn audited<F: std::future::Future<Output = ()>>(
        store: impl FnOnce(Audit) -> MemoryStore,
        f: impl FnOnce(MemoryStore) -> F,
    ) -> Vec<serde_json::Value> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let config = crate::audit::AuditConfig { file: Some(path.clone()), ..Default::default() };
        let audit = Audit::start(&config, Clock::test()).unwrap();
        f(store(audit.clone())).await;
        assert!(audit.flush(Duration::from_secs(5)));
        let text = std::fs::read_to_string(&path).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[tokio::test]
    async fn sessions_the_store_ends_are_audited_with_their_reason() {
        let clock = Clock::test();
        let (idle, expired, removed) = (StoreKey::of(&[50; 32]), StoreKey::of(&[51; 32]), StoreKey::of(&[52; 32]));
        let store_clock = clock.clone();
        let make = move |audit| {
            MemoryStore::new(10, Duration::from_secs(600), Duration::from_secs(60), store_clock).with_audit(audit)
        };
        let lines = audited(make, |store| async move {
            store.save(idle, user_session("jip", "idle-user", None, 3600)).await.unwrap();
            store.save(expired, user_session("jip", "expired-user", None, 300)).await.unwrap();
            store.save(removed, user_session("jip", "removed-user", None, 3600)).await.unwrap();
            // A removal the caller asked for (logout, admin) is the caller's to audit.
            store.remove(&removed).await.unwrap();
            clock.advance(Duration::from_secs(301));
            assert!(store.load(&expired).await.unwrap().is_none());
            clock.advance(Duration::from_secs(300));
            assert!(store.load(&idle).await.unwrap().is_none());
        })
        .await;
        let got: Vec<(&str, &str, String)> = lines
            .iter()
            .map(|l| (l["event"].as_str().unwrap(), l["reason"].as_str().unwrap(), l["session"].to_string()))
            .collect();
        let label = |k: &StoreKey| format!("\"{}\"", k.log_label());
        assert_eq!(got, [("session_end", "expired", label(&expired)), ("session_end", "idle", label(&idle))]);
        assert!(lines.iter().all(|l| l.get("request_id").is_none()), "no request ended these");
        let text = serde_json::to_string(&lines).unwrap();
        assert!(!text.contains("-user"), "subjects never appear: {text}");
    }

    #[tokio::test]
    async fn a_full_store_audits_the_session_it_evicts_as_limit() {
        let make = |audit| {
            MemoryStore::new(1, Duration::from_secs(600), Duration::from_secs(60), Clock::system()).with_audit(audit)
        };
        let (first, second) = (StoreKey::of(&[60; 32]), StoreKey::of(&[61; 32]));
        let lines = audited(make, |store| async move {
            store.save(first, user_session("jip", "a", None, 3600)).await.unwrap();
            store.sessions.run_pending_tasks();
            store.save(second, user_session("jip", "b", None, 3600)).await.unwrap();
            store.sessions.run_pending_tasks();
        })
        .await;
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!((lines[0]["event"].as_str(), lines[0]["reason"].as_str()), (Some("session_end"), Some("limit")));
        assert_eq!(lines[0]["session"].as_str().unwrap(), first.log_label());
    }
}
