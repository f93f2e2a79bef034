//! The Redis store's per-user index, admin listing and shared maintenance notices.
//!
//! - `u:<hex HMAC>`: a sorted set per user (provider + subject) of their sessions' store
//!   keys, scored by creation time, so the oldest is found without opening a record. The
//!   name is an HMAC of the user under the sealing key ([`RecordKeys::index_name`]): no
//!   subject appears in a key name. Written in the same transaction as the session; its TTL
//!   is the absolute timeout, renewed by every login of that user. Members may outlive their
//!   session (idle expiry does not clean them): a look-up checks each member's record still
//!   exists and drops those that do not.
//! - `{m}maintenance` (a set of app names) and `{m}m:<app>` (each app's maintenance notice,
//!   the admin API's record; one hash tag, one transaction), read by every instance about
//!   once a second.
//!
//! The admin listing walks the `live` shards (every live session, scored by when it expires;
//! see `live.rs`) in batches, opening each record: a pass over the store, fine for an
//! operator's query and never on the request path. Only commands of the README's ACL for
//! the store are used (no `SCAN`, `PTTL` or hash commands): a missing permission would read
//! as an outage.
//!
//! [`RecordKeys::index_name`]: crate::session::record::RecordKeys::index_name

use redis::AsyncCommands;

use super::backend::Conn;
use super::keys::SESSION_SHARDS;
use super::{each, unhex32, RedisStore};
use crate::session::users::{Keep, Listed, UserSession};
use crate::session::{Session, StoreError, StoreKey};

/// Session records fetched per step of the admin listing.
const BATCH: usize = 200;

impl RedisStore {
    fn user_key(&self, name: &[u8; 32]) -> String {
        self.names.user(name)
    }

    fn maintenance_key(&self) -> String {
        self.names.maintenance()
    }

    fn notice_key(&self, app: &str) -> String {
        self.names.notice(app)
    }

    /// Sets or clears `app`'s notice: its key and its name in the set, in one transaction.
    pub(super) async fn put_notice(&self, app: &str, notice: Option<&[u8]>) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        match notice {
            Some(notice) => {
                pipe.cmd("SET").arg(self.notice_key(app)).arg(notice).ignore();
                pipe.cmd("SADD").arg(self.maintenance_key()).arg(app).ignore();
            }
            None => {
                pipe.cmd("DEL").arg(self.notice_key(app)).ignore();
                pipe.cmd("SREM").arg(self.maintenance_key()).arg(app).ignore();
            }
        }
        pipe.query_async::<()>(&mut conn).await.map_err(|e| self.failed(e))
    }

    /// Every app's notice (`SUNION` of the one set reads its members).
    pub(super) async fn notices(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut conn = self.conn().await?;
        let apps: Vec<String> = conn.sunion(self.maintenance_key()).await.map_err(|e| self.failed(e))?;
        if apps.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for app in &apps {
            pipe.cmd("GET").arg(self.notice_key(app));
        }
        let notices: Vec<Option<Vec<u8>>> = pipe.query_async(&mut conn).await.map_err(|e| self.failed(e))?;
        Ok(apps.into_iter().zip(notices).filter_map(|(app, notice)| Some((app, notice?))).collect())
    }

    /// The per-user set `session` is written to (under the sealing key); `None` without a
    /// subject (such a session belongs to no user and counts against no limit).
    fn user_set(&self, session: &Session) -> Option<String> {
        if session.identity.subject.is_empty() {
            return None;
        }
        self.keys.index_name("user", &session.identity.provider, &session.identity.subject).map(|n| self.user_key(&n))
    }

    /// The per-user index entry of `session` (store key hex `member`): a pipeline on the
    /// user's set alone (its own slot in a cluster), run before the session is written.
    pub(super) fn index_user(&self, session: &Session, member: &str, ttl_ms: u64) -> Option<redis::Pipeline> {
        let set = self.user_set(session)?;
        let mut pipe = redis::pipe();
        pipe.cmd("ZADD").arg(&set).arg(session.created_at).arg(member).ignore();
        pipe.cmd("PEXPIRE").arg(&set).arg(ttl_ms).ignore();
        Some(pipe)
    }

    /// Removes `member` from the per-user set of `session` (best effort: a stale member is
    /// dropped by the next look-up anyway).
    pub(super) async fn unindex_user(&self, conn: &mut Conn, session: &Session, member: &str) {
        for name in self.keys.index_names("user", &session.identity.provider, &session.identity.subject) {
            let _: Result<(), _> = conn.zrem(self.user_key(&name), member).await;
        }
    }

    /// [`SessionStore::user_sessions`](crate::session::SessionStore::user_sessions): the
    /// members of the user's sets (under every key of the ring) whose record still exists.
    pub(super) async fn sessions_of_user(&self, provider: &str, subject: &str) -> Result<Vec<UserSession>, StoreError> {
        if subject.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        let mut found = Vec::new();
        for name in self.keys.index_names("user", provider, subject) {
            let set = self.user_key(&name);
            let members: Vec<(String, f64)> =
                conn.zrangebyscore_withscores(&set, "-inf", "+inf").await.map_err(|e| self.failed(e))?;
            if members.is_empty() {
                continue;
            }
            let keys: Vec<Option<StoreKey>> = members.iter().map(|(m, _)| unhex32(m).map(StoreKey)).collect();
            // One EXISTS per record (different slots in a cluster). A malformed member checks
            // a key that cannot exist, and is dropped below.
            let checks = keys.iter().map(|key| {
                redis::cmd("EXISTS").arg(key.map_or_else(|| self.names.plain("s:-"), |k| self.session_key(&k))).clone()
            });
            let exists: Vec<bool> = each(&conn, checks).await.map_err(|e| self.failed(e))?;
            let mut dead = Vec::new();
            for (((member, score), key), live) in members.iter().zip(&keys).zip(exists) {
                match key {
                    // Scores are Unix seconds: whole numbers, exact in an f64.
                    Some(key) if live => found.push(UserSession { key: *key, created_at: *score as u64 }),
                    _ => dead.push(member.clone()),
                }
            }
            if !dead.is_empty() {
                let _: Result<(), _> = conn.zrem(&set, dead).await;
            }
        }
        found.sort_by_key(|s| (s.created_at, s.key.0));
        found.dedup_by_key(|s| s.key);
        Ok(found)
    }

    /// [`SessionStore::scan_sessions`](crate::session::SessionStore::scan_sessions) over
    /// the `live` shards, each in batches by expiry (a shard and its records share a slot, so
    /// a batch of records is one pipeline). A session renewed while the walk runs moves
    /// further on and may be met twice (kept once); one removed meanwhile may shift another
    /// past the walk, so callers that must catch every match walk again until none is left.
    pub(super) async fn scan(&self, keep: &Keep<'_>, limit: usize) -> Result<Vec<Listed>, StoreError> {
        let mut conn = self.conn().await?;
        let now_ms = self.opts.clock.now_millis();
        let idle_ms = u64::try_from(self.opts.idle.as_millis()).unwrap_or(u64::MAX);
        let mut seen = std::collections::HashSet::new();
        let mut found = Vec::new();
        for shard in 0..SESSION_SHARDS {
            let mut offset = 0usize;
            loop {
                let batch: Vec<(String, f64)> = redis::cmd("ZRANGEBYSCORE")
                    .arg(self.names.live(shard))
                    .arg(now_ms)
                    .arg("+inf")
                    .arg("WITHSCORES")
                    .arg("LIMIT")
                    .arg(offset)
                    .arg(BATCH)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| self.failed(e))?;
                if batch.is_empty() {
                    break;
                }
                offset += batch.len();
                // Scores are Unix milliseconds: whole numbers, exact in an f64.
                let members: Vec<(StoreKey, u64)> = batch
                    .iter()
                    .filter_map(|(m, score)| Some((StoreKey(unhex32(m)?), *score as u64)))
                    .filter(|(key, _)| seen.insert(key.0))
                    .collect();
                if members.is_empty() {
                    continue;
                }
                let mut pipe = redis::pipe();
                for (key, _) in &members {
                    pipe.cmd("GET").arg(self.session_key(key));
                }
                let records: Vec<Option<Vec<u8>>> = pipe.query_async(&mut conn).await.map_err(|e| self.failed(e))?;
                for ((key, expires_ms), record) in members.into_iter().zip(records) {
                    if found.len() >= limit {
                        return Ok(found);
                    }
                    let Some(session) = record.and_then(|r| self.open_session(&key, &r)) else { continue };
                    if session.is_expired(now_ms / 1000) || !keep(&key, &session) {
                        continue;
                    }
                    let last_seen = last_seen(idle_ms, expires_ms, &session);
                    found.push(Listed { key, session: std::sync::Arc::new(session), last_seen });
                }
            }
        }
        Ok(found)
    }
}

/// When a session was last read, from when its record expires (`expires_ms`, its score in
/// `live`): every read sets the TTL to `min(idle, time to the absolute end)`, so it was read
/// at `expires_ms - idle` — unless the absolute end capped the TTL, when the read time is
/// not known (`None`).
fn last_seen(idle_ms: u64, expires_ms: u64, session: &Session) -> Option<u64> {
    let read_ms = expires_ms.checked_sub(idle_ms)?;
    let capped = expires_ms >= session.expires_at.saturating_mul(1000);
    (!capped).then_some((read_ms / 1000).max(session.created_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_seen_follows_the_idle_expiry_and_is_unknown_when_the_absolute_end_capped_it() {
        let identity = crate::identity::Identity::default();
        let session = Session::new(identity, crate::provider::LogoutState::None, 10_000, 1_000);
        // Read at 2000 s with a 600 s idle timeout: the record expires at 2600 s.
        assert_eq!(last_seen(600_000, 2_600_000, &session), Some(2_000));
        // Read 200 s before the absolute end (11 000 s): the TTL is capped, the time unknown.
        assert_eq!(last_seen(600_000, 11_000_000, &session), None);
        assert_eq!(last_seen(600_000, 500_000, &session), None, "no sensible score");
    }
}
