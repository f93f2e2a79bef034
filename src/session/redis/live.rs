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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::Script;

use super::keys::{KeyNames, SESSION_SHARDS};
use super::{backend, unhex32};
use crate::clock::Clock;
use crate::session::StoreKey;

/// How often the set is swept and counted.
pub(super) const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Most expired members handled per sweep (the rest wait for the next one).
const SWEEP_LIMIT: u32 = 1000;

/// KEYS: a live shard. ARGV: now (Unix ms), channel, this instance's id, the shard's record
/// key prefix (`P{s:XX}:`, same slot), limit.
/// Returns the set's size after the sweep, then the announced members.
const SWEEP: &str = r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[5]))
local ended = {}
for _, m in ipairs(due) do
  if redis.call('EXISTS', ARGV[4] .. m) == 0 then
    redis.call('ZREM', KEYS[1], m)
    redis.call('PUBLISH', ARGV[2], ARGV[3] .. ':' .. m)
    ended[#ended + 1] = m
  end
end
table.insert(ended, 1, redis.call('ZCARD', KEYS[1]))
return ended
";

/// What the sweeper needs from the store.
pub(super) struct Sweeper {
    pub(super) backend: Arc<backend::Backend>,
    pub(super) names: KeyNames,
    pub(super) channel: String,
    pub(super) instance: String,
    pub(super) clock: Clock,
    pub(super) count: Arc<AtomicU64>,
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
                .arg(SWEEP_LIMIT);
            async move { invocation.invoke_async::<Vec<redis::Value>>(&mut conn).await }
        });
        let answers = futures_util::future::join_all(shards).await;
        let mut size = 0u64;
        let mut failure = None;
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
            for value in values {
                if let redis::Value::BulkString(member) = value {
                    if let Some(key) = std::str::from_utf8(&member).ok().and_then(unhex32) {
                        let _ = ended.send(StoreKey(key));
                    }
                }
            }
        }
        self.count.store(size, Ordering::Relaxed);
        failure.map_or(Ok(()), Err)
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
