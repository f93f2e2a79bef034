//! This instance's decoded copies of the sessions it served recently, so a request whose
//! session record has not changed skips decrypting and decoding it and reuses the session's
//! per-process caches (rendered identity headers, the signed identity token, the token
//! slot's single flight).
//!
//! Within `local_cache_ms` (at most 1 s) of reading a session's record, a request here uses
//! the copy without asking Redis ([`Decoded::recent`]); a logout at any instance drops the
//! copy at once (the `ended` channel, see `spawn_subscriber`), and the bound holds should
//! a message be lost. After that the record is read again (one `EVALSHA`, which also renews
//! the idle TTL), and the copy is used only when the record read is byte-for-byte the one it
//! was decoded from: a deleted record is no session whatever is cached, and a changed record
//! (refreshed tokens written by another instance) is decoded anew. Records are sealed with a
//! fresh nonce on every write, so equal bytes mean the very same write. A token refresh
//! always reads the record itself ([`crate::session::SessionStore::reload`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;

use crate::session::{Session, StoreKey};

/// Memory bound of the copies (records plus an estimate of the decoded session each).
const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Estimated size of one decoded session and its per-app caches beyond its record.
const SESSION_OVERHEAD: u64 = 4096;

struct Entry {
    record: Vec<u8>,
    session: Arc<Session>,
    /// When the record was last read from Redis.
    read_at: std::sync::Mutex<Instant>,
}

/// The cache (see the module documentation).
pub(super) struct Decoded {
    entries: Cache<StoreKey, Arc<Entry>>,
    /// How long after a read the copy is used without reading again.
    fresh_for: Duration,
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
        Decoded { entries, fresh_for }
    }

    /// The copy of `key` if its record was read less than `fresh_for` ago.
    pub(super) fn recent(&self, key: &StoreKey) -> Option<Arc<Session>> {
        if self.fresh_for.is_zero() {
            return None;
        }
        let entry = self.entries.get(key)?;
        let read_at = *entry.read_at.lock().unwrap_or_else(|e| e.into_inner());
        (read_at.elapsed() < self.fresh_for).then(|| entry.session.clone())
    }

    /// The decoded session of `key` if it was decoded from exactly `record`.
    /// (Read just now: it counts as recent again.)
    pub(super) fn get(&self, key: &StoreKey, record: &[u8]) -> Option<Arc<Session>> {
        let entry = self.entries.get(key).filter(|e| e.record == record)?;
        *entry.read_at.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        Some(entry.session.clone())
    }

    /// Remembers that `record`, read (or written) just now, decodes to `session`.
    pub(super) fn put(&self, key: StoreKey, record: Vec<u8>, session: Arc<Session>) {
        let read_at = std::sync::Mutex::new(Instant::now());
        self.entries.insert(key, Arc::new(Entry { record, session, read_at }));
    }

    /// Drops the copy of an ended session.
    pub(super) fn forget(&self, key: &StoreKey) {
        self.entries.invalidate(key);
    }
}
