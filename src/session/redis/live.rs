//! Live sessions in sorted sets, for the `aisgate_active_sessions` gauge and for announcing
//! sessions that end by idle or absolute expiry (Redis TTLs end silently).
//!
//! The live set is sharded like the sessions ([`super::keys`]): shard `{s:XX}live` holds the
//! store keys of the sessions of tag `s:XX`, each scored by when its record expires (Unix
//! ms) — in the same hash slot as those records, so one script can touch both on a Redis
//! Cluster. A member is written with the record, renewed by the same script that renews the
//! record's TTL at each read (one `ZADD` inside the one round trip), removed with the record
//! at logout. Every 5 seconds each instance runs the sweep script on every shard (256 small
//! scripts, sent at once over the multiplexed connections): members whose time is up and
//! whose record is gone are removed and published on the `ended` channel — each by exactly
//! one instance, since each script is atomic — and the shards' sizes add up to the gauge.
//! The count is therefore exact up to the sweep period, needs no `SCAN` of the keyspace,
//! and no extra round trip per request. A shard whose node is down is left out of that
//! sweep's count (the error is logged; `/readyz` reports the outage).
//!
//! **Auditing expiries.** Redis ends a session by TTL without telling anyone, and once its
//! record is gone nobody knows whose it was. So each session is written with its *end facts*
//! beside it (`P{s:XX}e:<store key>`, same slot; [`EndFacts`]: the audit subject fields
//! exactly as the memory store's `session_end` carries them — the keyed user label, provider,
//! protocol, LoA, IČO — and the absolute end, sealed like the record), kept until the
//! absolute end plus [`END_FACTS_GRACE`] and deleted with the session at a logout. The sweep
//! script takes them (`GETDEL`) in the same atomic step that removes the member, so exactly
//! one instance — the one whose script removed the member — gets them and writes the one
//! `session_end` (reason `expired` when the record's last TTL was its absolute end, else
//! `idle`, as the memory store decides), with no request origin, like the memory store's.
//! A session written without end facts (by a version before them) ends unaudited, as before.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::Script;

use super::keys::{KeyNames, SESSION_SHARDS};
use super::{backend, unhex32};
use crate::audit::{Audit, EndReason, Event, SessionRef, SubjectFacts};
use crate::clock::Clock;
use crate::session::record::{RecordKeys, RecordKind};
use crate::session::{Session, StoreKey};

/// How often the set is swept and counted.
pub(super) const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Most expired members handled per sweep (the rest wait for the next one).
const SWEEP_LIMIT: u32 = 1000;

/// How long a session's end facts outlive its absolute end: time for a sweep to find the
/// record gone even when every instance was down (restarted) around that moment.
pub(super) const END_FACTS_GRACE: Duration = Duration::from_secs(600);

/// KEYS: a live shard. ARGV: now (Unix ms), channel, this instance's id, the shard's record
/// key prefix (`P{s:XX}:`, same slot), limit, the shard's end-facts prefix (`P{s:XX}e:`).
/// Returns the set's size after the sweep, then for each announced member: the member, its
/// score (when its record was to expire, Unix ms) and its end facts (empty when none).
const SWEEP: &str = r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[5]))
local ended = {}
for i = 1, #due, 2 do
  local m = due[i]
  if redis.call('EXISTS', ARGV[4] .. m) == 0 then
    redis.call('ZREM', KEYS[1], m)
    redis.call('PUBLISH', ARGV[2], ARGV[3] .. ':' .. m)
    ended[#ended + 1] = m
    ended[#ended + 1] = due[i + 1]
    ended[#ended + 1] = redis.call('GETDEL', ARGV[6] .. m) or ''
  end
end
table.insert(ended, 1, redis.call('ZCARD', KEYS[1]))
return ended
";

/// What the `session_end` of a session's expiry needs once its record is gone, kept (sealed)
/// beside the session: its audit subject fields and its absolute end.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct EndFacts {
    /// The audit subject fields (no subject, names or ids: labels and bounded values).
    subject: SubjectFacts,
    /// The session's absolute end (Unix seconds).
    expires_at: u64,
}

impl EndFacts {
    /// The facts of `session`.
    pub(super) fn of(session: &Session) -> EndFacts {
        EndFacts { subject: SubjectFacts::of(&session.identity), expires_at: session.expires_at }
    }

    /// Sealed for the session of `key` (`None` without a sealing key).
    pub(super) fn seal(&self, keys: &RecordKeys, key: &StoreKey) -> Option<Vec<u8>> {
        let plain = serde_json::to_vec(self).ok()?;
        keys.seal(RecordKind::SessionEnd, key, b"", &plain)
    }

    /// Opens what [`EndFacts::seal`] wrote for `key`; `None` for anything else.
    fn open(keys: &RecordKeys, key: &StoreKey, sealed: &[u8]) -> Option<EndFacts> {
        let plain = keys.open(RecordKind::SessionEnd, key, sealed, 0).ok()?;
        serde_json::from_slice(&plain).ok()
    }

    /// Why the session ended, given when its record was to expire (`until_ms`, the live
    /// member's score): its absolute end, or an idle timeout before it.
    fn reason(&self, until_ms: u64) -> EndReason {
        if until_ms >= self.expires_at.saturating_mul(1000) {
            EndReason::Expired
        } else {
            EndReason::Idle
        }
    }
}

/// What the sweeper needs from the store.
pub(super) struct Sweeper {
    pub(super) backend: Arc<backend::Backend>,
    pub(super) names: KeyNames,
    pub(super) channel: String,
    pub(super) instance: String,
    pub(super) clock: Clock,
    pub(super) count: Arc<AtomicU64>,
    pub(super) keys: Arc<RecordKeys>,
    pub(super) audit: Arc<OnceLock<Audit>>,
}

impl Sweeper {
    /// One sweep of every shard: announces expired sessions (here and, via the channel,
    /// everywhere) and updates the count. Errors are left to the health check to report.
    async fn sweep(
        &self,
        script: &Script,
        ended: &tokio::sync::broadcast::Sender<StoreKey>,
    ) -> Result<(), redis::RedisError> {
        let conn = self.backend.conn().await?;
        let now_ms = self.clock.now_unix().saturating_mul(1000);
        let shards = (0..SESSION_SHARDS).map(|shard| {
            let mut conn = conn.clone();
            let mut invocation = script.key(self.names.live(shard));
            invocation
                .arg(now_ms)
                .arg(&self.channel)
                .arg(&self.instance)
                .arg(self.names.session_space(shard))
                .arg(SWEEP_LIMIT)
                .arg(self.names.end_facts_space(shard));
            async move { invocation.invoke_async::<Vec<redis::Value>>(&mut conn).await }
        });
        let answers = futures_util::future::join_all(shards).await;
        let mut size = 0u64;
        let mut failure = None;
        let mut unaudited = 0usize;
        for answer in answers {
            let answer = match answer {
                Ok(answer) => answer,
                Err(e) => {
                    failure = Some(e);
                    continue;
                }
            };
            let mut values = answer.into_iter();
            if let Some(redis::Value::Int(n)) = values.next() {
                size += u64::try_from(n).unwrap_or(0);
            }
            while let (Some(member), Some(until), Some(facts)) = (values.next(), values.next(), values.next()) {
                let Some(key) = text(&member).and_then(unhex32).map(StoreKey) else { continue };
                let _ = ended.send(key);
                if !self.audit_end(&key, text(&until).and_then(|u| u.parse::<f64>().ok()), &facts) {
                    unaudited += 1;
                }
            }
        }
        if unaudited > 0 {
            tracing::info!(
                sessions = unaudited,
                "sessions ended by expiry without end facts (written by an older version, or kept past their grace): not audited"
            );
        }
        self.count.store(size, Ordering::Relaxed);
        failure.map_or(Ok(()), Err)
    }

    /// Writes the `session_end` of the expired session `key`, which this instance's sweep
    /// claimed, from its end facts (`until_ms`: when its record was to expire). `false` when
    /// an audit is kept but the facts are missing or do not open.
    fn audit_end(&self, key: &StoreKey, until_ms: Option<f64>, facts: &redis::Value) -> bool {
        let Some(audit) = self.audit.get().filter(|a| a.is_enabled()) else { return true };
        let facts = match facts {
            redis::Value::BulkString(sealed) if !sealed.is_empty() => EndFacts::open(&self.keys, key, sealed),
            _ => None,
        };
        let (Some(facts), Some(until_ms)) = (facts, until_ms) else { return false };
        // Scores are whole milliseconds (written as integers).
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let reason = facts.reason(until_ms.max(0.0) as u64);
        audit.emit(Event::StoredSessionEnd { reason, subject: &facts.subject, session: SessionRef(key) });
        true
    }

    /// Runs the sweep every [`SWEEP_EVERY`], announcing into `ended`, until the store is
    /// dropped.
    pub(super) fn spawn(self, ended: tokio::sync::broadcast::Sender<StoreKey>) {
        let weak = ended.downgrade();
        drop(ended);
        tokio::spawn(async move {
            let script = Script::new(SWEEP);
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(ended) = weak.upgrade() else { return };
                if let Err(e) = self.sweep(&script, &ended).await {
                    tracing::debug!(error = %e, "session store (redis): live-session sweep failed");
                }
            }
        });
    }
}

/// The text of a bulk string reply.
fn text(value: &redis::Value) -> Option<&str> {
    match value {
        redis::Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    fn keys(secret: u8) -> RecordKeys {
        crate::session::keyring::Keyring::from_secrets(vec![("k1".into(), vec![secret; 32])]).unwrap().record_keys()
    }

    /// The end facts open only for their own session, under the session keys, as end facts
    /// (not as any other record); the reason follows the record's last TTL.
    #[test]
    fn end_facts_are_bound_to_their_session_and_name_the_reason_of_the_end() {
        let identity = Identity { provider: "jip".into(), subject: "CZ/CZ/secret".into(), ..Identity::default() };
        let session = Session::new(identity, crate::provider::LogoutState::None, 3600, 1_000);
        let facts = EndFacts::of(&session);
        let (key, other) = (StoreKey([1; 32]), StoreKey([2; 32]));
        let sealed = facts.seal(&keys(7), &key).unwrap();
        assert_eq!(EndFacts::open(&keys(7), &key, &sealed), Some(facts.clone()));
        assert!(!String::from_utf8_lossy(&sealed).contains("jip"), "sealed, not in the clear");
        assert_eq!(EndFacts::open(&keys(7), &other, &sealed), None, "moved to another session");
        assert_eq!(EndFacts::open(&keys(8), &key, &sealed), None, "another gateway pair's keys");
        assert!(keys(7).open(RecordKind::Session, &key, &sealed, 0).is_err(), "not a session record");
        // Absolute end 4 600 s: a record that was to expire then ended by it, earlier by idleness.
        assert_eq!(facts.reason(4_600_000), EndReason::Expired);
        assert_eq!(facts.reason(4_599_999), EndReason::Idle);
    }
}
