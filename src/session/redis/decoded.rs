//! This instance's decoded copies of the sessions it served recently, so a request whose
//! session record has not changed skips decrypting and decoding it and reuses the session's
//! per-process caches (rendered identity headers, the signed identity token, the token
//! slot's single flight).
//!
//! Never a source of truth: every request still reads the record from Redis (one `EVALSHA`,
//! which also renews the idle TTL), and the copy is used only when the record read is
//! byte-for-byte the one it was decoded from. A logout anywhere deletes the record, so the
//! next request here finds none, whatever is cached; a changed record (refreshed tokens
//! written by another instance) is decoded anew. Records are sealed with a fresh nonce on
//! every write, so equal bytes mean the very same write.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;

use crate::session::{Session, StoreKey};

/// Memory bound of the copies (records plus an estimate of the decoded session each).
const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Estimated size of one decoded session and its per-app caches beyond its record.
const SESSION_OVERHEAD: u64 = 4096;

struct Entry {
    record: Vec<u8>,
    session: Arc<Session>,
}

/// The cache (see the module documentation).
pub(super) struct Decoded {
    entries: Cache<StoreKey, Arc<Entry>>,
}

impl Decoded {
    /// Copies unused for `idle` are dropped (a session idle that long is over anyway).
    pub(super) fn new(idle: Duration) -> Decoded {
        let entries = Cache::builder()
            .max_capacity(MAX_BYTES)
            .weigher(|_: &StoreKey, e: &Arc<Entry>| {
                u32::try_from(e.record.len() as u64 + SESSION_OVERHEAD).unwrap_or(u32::MAX)
            })
            .time_to_idle(idle.max(Duration::from_secs(1)))
            .build();
        Decoded { entries }
    }

    /// The decoded session of `key` if it was decoded from exactly `record`.
    pub(super) fn get(&self, key: &StoreKey, record: &[u8]) -> Option<Arc<Session>> {
        self.entries.get(key).filter(|e| e.record == record).map(|e| e.session.clone())
    }

    /// Remembers that `record` decodes to `session`.
    pub(super) fn put(&self, key: StoreKey, record: Vec<u8>, session: Arc<Session>) {
        self.entries.insert(key, Arc::new(Entry { record, session }));
    }

    /// Drops the copy of an ended session.
    pub(super) fn forget(&self, key: &StoreKey) {
        self.entries.invalidate(key);
    }
}
