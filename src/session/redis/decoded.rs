//! This instance's decoded copies of the sessions it served recently, so a request whose
//! session record has not changed skips decrypting and decoding it and reuses the session's
//! per-process caches (rendered identity headers, the signed identity token, the token
//! slot's single flight).
//!
//! Within `local_cache_ms` (at most 1 s) of reading a session's record, a request here uses
//! the copy without asking Redis ([`Decoded::lookup`]); a logout at any instance drops the
//! copy at once (the `ended` channel, see `spawn_subscriber`), and the bound holds should
//! a message be lost. After that the record is read again (one `EVALSHA`, which also renews
//! the idle TTL), and the copy is used only when the record read is byte-for-byte the one it
//! was decoded from: a deleted record is no session whatever is cached, and a changed record
//! (refreshed tokens written by another instance) is decoded anew. Records are sealed with a
//! fresh nonce on every write, so equal bytes mean the very same write. A token refresh
//! always reads the record itself ([`crate::session::SessionStore::reload`]).
//!
//! How a busy session is read again (bench/README "Redis session store against the memory
//! store" has the measurements behind this):
//! - **Ahead of time, by one request.** Once a copy is older than [`REFRESH_AFTER`] of
//!   `local_cache_ms` (90 %), the first request to see that reads the record again while
//!   every other request keeps using the copy; so under steady traffic the copy never
//!   expires and no burst of requests waits for Redis. A busy session costs at most
//!   `1000 / (0.9 × local_cache_ms)` reads per second per instance (1.11 for 1 s).
//! - **One read for all on a miss** ([`Flights`]): when there is no usable copy (first
//!   request here, or a session quiet for longer than `local_cache_ms`), the concurrent
//!   requests for it share one read instead of each sending its own `EVALSHA`.
//!
//! Neither stretches the bound: a copy is only ever used within `local_cache_ms` of the read
//! it came from.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::sync::Cache;

use crate::session::{Session, StoreError, StoreKey};

/// Memory bound of the copies (records plus an estimate of the decoded session each).
const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Estimated size of one decoded session and its per-app caches beyond its record.
const SESSION_OVERHEAD: u64 = 4096;

/// The share (in tenths) of `local_cache_ms` after which one request reads the record again
/// ahead of the copy's expiry.
const REFRESH_AFTER: u32 = 9;

struct Entry {
    record: Vec<u8>,
    session: Arc<Session>,
    /// When the record was last read from Redis (ms since [`Decoded::epoch`]).
    read_at: AtomicU64,
    /// A request is reading the record ahead of time.
    refreshing: AtomicBool,
}

/// What [`Decoded::lookup`] found.
pub(super) enum Lookup {
    /// A copy read recently: use it, no Redis.
    Fresh(Arc<Session>),
    /// A copy still within the bound but due to be read again, and this caller is the one to
    /// do it (everyone else gets [`Lookup::Fresh`] meanwhile). The guard lets the next
    /// request try again should this one fail or be dropped before its read lands.
    Due(RefreshTurn),
    /// No usable copy: read the record (through [`Flights`]).
    Miss,
}

/// The turn to read a due copy's record again (see [`Lookup::Due`]); gives it back on drop.
pub(super) struct RefreshTurn(Arc<Entry>);

impl Drop for RefreshTurn {
    fn drop(&mut self) {
        self.0.refreshing.store(false, Ordering::Release);
    }
}

/// The cache (see the module documentation).
pub(super) struct Decoded {
    entries: Cache<StoreKey, Arc<Entry>>,
    /// How long after a read the copy is used without reading again (ms).
    fresh_ms: u64,
    /// Age (ms) from which one request reads the record again ahead of time.
    refresh_ms: u64,
    /// The origin of `read_at`.
    epoch: Instant,
}

impl Decoded {
    /// Copies unused for `idle` are dropped (a session idle that long is over anyway); a copy
    /// read less than `fresh_for` ago is used without reading Redis.
    pub(super) fn new(idle: Duration, fresh_for: Duration) -> Decoded {
        let entries = Cache::builder()
            .max_capacity(MAX_BYTES)
            .weigher(|_: &StoreKey, e: &Arc<Entry>| {
                u32::try_from(e.record.len() as u64 + SESSION_OVERHEAD).unwrap_or(u32::MAX)
            })
            .time_to_idle(idle.max(Duration::from_secs(1)))
            .build();
        let fresh_ms = u64::try_from(fresh_for.as_millis()).unwrap_or(u64::MAX);
        let refresh_ms = fresh_ms / 10 * u64::from(REFRESH_AFTER);
        Decoded { entries, fresh_ms, refresh_ms, epoch: Instant::now() }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The copy of `key`, if one may be used now (see [`Lookup`]).
    pub(super) fn lookup(&self, key: &StoreKey) -> Lookup {
        if self.fresh_ms == 0 {
            return Lookup::Miss;
        }
        let Some(entry) = self.entries.get(key) else { return Lookup::Miss };
        let age = self.now_ms().saturating_sub(entry.read_at.load(Ordering::Acquire));
        if age >= self.fresh_ms {
            return Lookup::Miss;
        }
        if age >= self.refresh_ms && !entry.refreshing.swap(true, Ordering::AcqRel) {
            return Lookup::Due(RefreshTurn(entry));
        }
        Lookup::Fresh(entry.session.clone())
    }

    /// The decoded session of `key` if it was decoded from exactly `record`.
    /// (Read just now: it counts as recent again.)
    pub(super) fn get(&self, key: &StoreKey, record: &[u8]) -> Option<Arc<Session>> {
        let entry = self.entries.get(key).filter(|e| e.record == record)?;
        entry.read_at.store(self.now_ms(), Ordering::Release);
        Some(entry.session.clone())
    }

    /// Remembers that `record`, read (or written) just now, decodes to `session`.
    pub(super) fn put(&self, key: StoreKey, record: Vec<u8>, session: Arc<Session>) {
        let read_at = AtomicU64::new(self.now_ms());
        self.entries.insert(key, Arc::new(Entry { record, session, read_at, refreshing: AtomicBool::new(false) }));
    }

    /// Drops the copy of an ended session.
    pub(super) fn forget(&self, key: &StoreKey) {
        self.entries.invalidate(key);
    }
}

/// What a read of a session gives.
pub(super) type Read = Result<Option<Arc<Session>>, StoreError>;

type Flight = Arc<tokio::sync::OnceCell<Read>>;

/// Reads of session records under way, one per store key: the concurrent requests for a
/// session without a usable copy wait for the same read (see the module documentation).
#[derive(Default)]
pub(super) struct Flights {
    under_way: Mutex<HashMap<StoreKey, Flight>>,
}

/// Takes a finished (or abandoned) read out of [`Flights`] when its last waiter leaves, so
/// the next miss reads again rather than reusing an old answer.
struct Landing<'a> {
    flights: &'a Flights,
    key: StoreKey,
    flight: Flight,
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        let mut map = self.flights.under_way.lock().unwrap_or_else(|e| e.into_inner());
        // Done, or nobody else is waiting for it (all waiters dropped before it landed).
        let over = self.flight.initialized() || Arc::strong_count(&self.flight) <= 2;
        if over && map.get(&self.key).is_some_and(|f| Arc::ptr_eq(f, &self.flight)) {
            map.remove(&self.key);
        }
    }
}

impl Flights {
    /// The answer of `read` for `key`, shared with every concurrent caller for the same key:
    /// one of them runs its `read`, the others wait for its answer. Should the reader be
    /// dropped (its request cancelled), the next waiter runs its own.
    pub(super) async fn read<F, Fut>(&self, key: &StoreKey, read: F) -> Read
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Read>,
    {
        let flight = {
            let mut map = self.under_way.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(*key).or_default().clone()
        };
        let landing = Landing { flights: self, key: *key, flight };
        landing.flight.get_or_init(read).await.clone()
    }

    /// Reads under way (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.under_way.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn session() -> Arc<Session> {
        let identity = crate::identity::Identity::default();
        Arc::new(Session::new(identity, crate::provider::LogoutState::None, 10_000, 1_000))
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_read_and_the_next_miss_reads_again() {
        let flights = Arc::new(Flights::default());
        let reads = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Notify::new());
        let key = StoreKey([9; 32]);
        let mut waiting = Vec::new();
        for _ in 0..64 {
            let (flights, reads, gate) = (flights.clone(), reads.clone(), gate.clone());
            waiting.push(tokio::spawn(async move {
                flights
                    .read(&key, || async move {
                        reads.fetch_add(1, Ordering::SeqCst);
                        gate.notified().await;
                        Ok(Some(session()))
                    })
                    .await
            }));
        }
        // One read started; every other request joins it (the read cannot land before `gate`).
        while reads.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        gate.notify_one();
        let mut sessions = Vec::new();
        for w in waiting {
            sessions.push(w.await.unwrap().unwrap().unwrap());
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1, "64 concurrent misses, one read");
        assert!(sessions.iter().all(|s| Arc::ptr_eq(s, &sessions[0])), "everyone got the one answer");
        assert_eq!(flights.len(), 0, "the landed read is gone");
        // The next miss reads again (no stale answer kept).
        let again = flights.read(&key, || async { Ok(None) }).await.unwrap();
        assert!(again.is_none());
    }

    #[tokio::test]
    async fn an_error_is_shared_and_a_cancelled_reader_hands_over_to_a_waiter() {
        let flights = Flights::default();
        let key = StoreKey([8; 32]);
        let failed = flights.read(&key, || async { Err(StoreError::Unavailable("redis: down".into())) }).await;
        assert_eq!(failed.err().map(|e| e.to_string()).as_deref(), Some("session store unavailable: redis: down"));
        assert_eq!(flights.len(), 0);

        // The first reader never finishes (its request is dropped): the read is not stuck.
        let stuck = flights.read(&key, std::future::pending::<Read>);
        let dropped = tokio::time::timeout(Duration::from_millis(20), stuck).await;
        assert!(dropped.is_err(), "the first read never lands");
        assert_eq!(flights.len(), 0, "an abandoned read leaves nothing behind");
        let next = flights.read(&key, || async { Ok(Some(session())) }).await.unwrap();
        assert!(next.is_some(), "the next caller reads by itself");
    }

    #[test]
    fn a_copy_is_fresh_then_due_for_exactly_one_caller_then_missing() {
        let mut decoded = Decoded::new(Duration::from_secs(600), Duration::from_millis(1000));
        // Ages below are simulated by moving `read_at` back: start the clock 10 s ago.
        decoded.epoch = Instant::now().checked_sub(Duration::from_secs(10)).expect("monotonic clock older than 10 s");
        let key = StoreKey([7; 32]);
        assert!(matches!(decoded.lookup(&key), Lookup::Miss), "nothing read yet");
        decoded.put(key, b"record".to_vec(), session());
        assert!(matches!(decoded.lookup(&key), Lookup::Fresh(_)), "just read");
        let entry = decoded.entries.get(&key).unwrap();
        // 950 ms old: due, for one caller only; the others use the copy meanwhile.
        entry.read_at.store(decoded.now_ms() - 950, Ordering::Release);
        let turn = match decoded.lookup(&key) {
            Lookup::Due(turn) => turn,
            _ => panic!("950 ms of 1000: due"),
        };
        assert!(matches!(decoded.lookup(&key), Lookup::Fresh(_)), "one refresh at a time");
        drop(turn);
        assert!(matches!(decoded.lookup(&key), Lookup::Due(_)), "a dropped turn is given back");
        // Read again with the same record: fresh again.
        assert!(decoded.get(&key, b"record").is_some());
        assert!(matches!(decoded.lookup(&key), Lookup::Fresh(_)));
        assert!(decoded.get(&key, b"other").is_none(), "another record is not this copy");
        entry.read_at.store(decoded.now_ms() - 1000, Ordering::Release);
        assert!(matches!(decoded.lookup(&key), Lookup::Miss), "never used past the bound");
    }
}
