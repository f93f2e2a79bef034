//! The Redis store's per-user index, admin listing and shared maintenance notices.
//!
//! - `u:<hex HMAC>`: a sorted set per user (provider + subject) of their sessions' store
//!   keys, scored by creation time, so the oldest is found without opening a record. The
//!   name is an HMAC of the user under the sealing key ([`RecordKeys::index_name`]): no
//!   subject appears in a key name. Written in the same transaction as the session; its TTL
//!   is the absolute timeout, renewed by every login of that user. Members may outlive their
//!   session (idle expiry does not clean them): a look-up checks each member's record still
//!   exists and drops those that do not.
//! - `maintenance`: a hash of app name → maintenance notice (the admin API's record), read
//!   by every instance about once a second.
//!
//! The admin listing walks the session records with `SCAN` in batches (never `KEYS`, which
//! would block Redis), opening each one: it costs a pass over the store, which is fine for
//! an operator's query and never runs on the request path.
//!
//! [`RecordKeys::index_name`]: crate::session::record::RecordKeys::index_name

use redis::aio::ConnectionManager;
use redis::AsyncCommands;

use super::{hex, unhex32, RedisStore};
use crate::session::users::{Keep, Listed, UserSession};
use crate::session::{Session, StoreError, StoreKey};

/// Session records fetched per `SCAN` step of the admin listing.
const SCAN_BATCH: usize = 200;

/// `text` with Redis glob characters escaped, for a `SCAN MATCH` pattern.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl RedisStore {
    fn user_key(&self, name: &[u8; 32]) -> String {
        format!("{}u:{}", self.prefix, hex(name))
    }

    pub(super) fn maintenance_key(&self) -> String {
        format!("{}maintenance", self.prefix)
    }

    /// The per-user set `session` is written to (under the sealing key); `None` without a
    /// subject (such a session belongs to no user and counts against no limit).
    fn user_set(&self, session: &Session) -> Option<String> {
        if session.identity.subject.is_empty() {
            return None;
        }
        self.keys.index_name("user", &session.identity.provider, &session.identity.subject).map(|n| self.user_key(&n))
    }

    /// Adds the per-user index entry of `session` (store key hex `member`) to `pipe`, the
    /// transaction that writes the session.
    pub(super) fn index_user(&self, pipe: &mut redis::Pipeline, session: &Session, member: &str, ttl_ms: u64) {
        if let Some(set) = self.user_set(session) {
            pipe.cmd("ZADD").arg(&set).arg(session.created_at).arg(member).ignore();
            pipe.cmd("PEXPIRE").arg(&set).arg(ttl_ms).ignore();
        }
    }

    /// Removes `member` from the per-user set of `session` (best effort: a stale member is
    /// dropped by the next look-up anyway).
    pub(super) async fn unindex_user(&self, conn: &mut ConnectionManager, session: &Session, member: &str) {
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
            let members: Vec<(String, f64)> = conn.zrange_withscores(&set, 0, -1).await.map_err(|e| self.failed(e))?;
            if members.is_empty() {
                continue;
            }
            let keys: Vec<Option<StoreKey>> = members.iter().map(|(m, _)| unhex32(m).map(StoreKey)).collect();
            let mut pipe = redis::pipe();
            for key in &keys {
                // A malformed member checks a key that cannot exist, and is dropped below.
                pipe.cmd("EXISTS").arg(key.map_or_else(|| format!("{}s:-", self.prefix), |k| self.session_key(&k)));
            }
            let exists: Vec<bool> = pipe.query_async(&mut conn).await.map_err(|e| self.failed(e))?;
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
    /// `SCAN MATCH <prefix>s:*`.
    pub(super) async fn scan(&self, keep: &Keep<'_>, limit: usize) -> Result<Vec<Listed>, StoreError> {
        let mut conn = self.conn().await?;
        let pattern = format!("{}s:*", glob_escape(&self.prefix));
        let prefix_len = self.prefix.len() + 2;
        let now_ms = self.opts.clock.now_millis();
        let idle_ms = u64::try_from(self.opts.idle.as_millis()).unwrap_or(u64::MAX);
        let mut found = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, names): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_BATCH)
                .query_async(&mut conn)
                .await
                .map_err(|e| self.failed(e))?;
            let keys: Vec<StoreKey> =
                names.iter().filter_map(|n| n.get(prefix_len..).and_then(unhex32)).map(StoreKey).collect();
            if !keys.is_empty() {
                let mut pipe = redis::pipe();
                for key in &keys {
                    pipe.cmd("GET").arg(self.session_key(key));
                    pipe.cmd("PTTL").arg(self.session_key(key));
                }
                let answers: Vec<(Option<Vec<u8>>, i64)> =
                    pipe.query_async(&mut conn).await.map_err(|e| self.failed(e))?;
                for (key, (record, pttl)) in keys.into_iter().zip(answers) {
                    if found.len() >= limit {
                        return Ok(found);
                    }
                    let Some(session) = record.and_then(|r| self.open_session(&key, &r)) else { continue };
                    if session.is_expired(now_ms / 1000) || !keep(&key, &session) {
                        continue;
                    }
                    let last_seen = last_seen(now_ms, idle_ms, pttl, &session);
                    found.push(Listed { key, session: std::sync::Arc::new(session), last_seen });
                }
            }
            if next == 0 || found.len() >= limit {
                return Ok(found);
            }
            cursor = next;
        }
    }
}

/// When a session was last read, from its remaining TTL: every read sets the TTL to
/// `min(idle, time to the absolute end)`, so with `pttl` left it was read at
/// `now - idle + pttl` — unless the absolute end capped the TTL, when the read time is not
/// known (`None`).
fn last_seen(now_ms: u64, idle_ms: u64, pttl: i64, session: &Session) -> Option<u64> {
    let pttl = u64::try_from(pttl).ok()?;
    let read_ms = now_ms.saturating_add(pttl).checked_sub(idle_ms)?;
    let capped = read_ms.saturating_add(idle_ms) >= session.expires_at.saturating_mul(1000);
    (!capped).then_some((read_ms / 1000).max(session.created_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_of_the_prefix_are_escaped() {
        assert_eq!(glob_escape("aisgate:"), "aisgate:");
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }

    #[test]
    fn last_seen_follows_the_idle_ttl_and_is_unknown_when_the_absolute_end_capped_it() {
        let identity = crate::identity::Identity::default();
        let session = Session::new(identity, crate::provider::LogoutState::None, 10_000, 1, 1_000);
        // Read at 2000 s with a 600 s idle timeout; now 2100 s: 500 s left.
        assert_eq!(last_seen(2_100_000, 600_000, 500_000, &session), Some(2_000));
        // 200 s before the absolute end (11 000 s) the TTL is capped: unknown.
        assert_eq!(last_seen(10_850_000, 600_000, 150_000, &session), None);
        assert_eq!(last_seen(2_100_000, 600_000, -2, &session), None, "no TTL");
    }
}
