//! Live sessions in a sorted set, for the `aisgate_active_sessions` gauge and for announcing
//! sessions that end by idle or absolute expiry (Redis TTLs end silently).
//!
//! `live` (under `key_prefix`) holds each session's store key scored by when its record
//! expires (Unix ms): written with the record, renewed by the same script that renews the
//! record's TTL at each read (one `ZADD` inside the one round trip), removed with the record
//! at logout. Every 5 seconds each instance runs one sweep script: members whose time is up
//! and whose record is gone are removed and published on the `ended` channel — each by
//! exactly one instance, since the script is atomic — and the set's size is the gauge. The
//! count is therefore exact up to the sweep period, costs one small command per instance
//! per 5 s (no `SCAN` of the keyspace), and needs no extra round trip per request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::Script;

use super::{backend, unhex32};
use crate::clock::Clock;
use crate::session::StoreKey;

/// How often the set is swept and counted.
pub(super) const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Most expired members handled per sweep (the rest wait for the next one).
const SWEEP_LIMIT: u32 = 1000;

/// KEYS: the live set. ARGV: now (Unix ms), channel, this instance's id, key prefix, limit.
/// Returns the set's size after the sweep, then the announced members.
const SWEEP: &str = r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[5]))
local ended = {}
for _, m in ipairs(due) do
  if redis.call('EXISTS', ARGV[4] .. 's:' .. m) == 0 then
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
    pub(super) live_key: String,
    pub(super) prefix: String,
    pub(super) channel: String,
    pub(super) instance: String,
    pub(super) clock: Clock,
    pub(super) count: Arc<AtomicU64>,
}

impl Sweeper {
    /// One sweep: announces expired sessions (here and, via the channel, everywhere) and
    /// updates the count. Errors are left to the health check to report.
    async fn sweep(
        &self,
        script: &Script,
        ended: &tokio::sync::broadcast::Sender<StoreKey>,
    ) -> Result<(), redis::RedisError> {
        let mut conn = self.backend.conn().await?;
        let now_ms = self.clock.now_unix().saturating_mul(1000);
        let answer: Vec<redis::Value> = script
            .key(&self.live_key)
            .arg(now_ms)
            .arg(&self.channel)
            .arg(&self.instance)
            .arg(&self.prefix)
            .arg(SWEEP_LIMIT)
            .invoke_async(&mut conn)
            .await?;
        let mut values = answer.into_iter();
        if let Some(redis::Value::Int(size)) = values.next() {
            self.count.store(u64::try_from(size).unwrap_or(0), Ordering::Relaxed);
        }
        for value in values {
            if let redis::Value::BulkString(member) = value {
                if let Some(key) = std::str::from_utf8(&member).ok().and_then(unhex32) {
                    let _ = ended.send(StoreKey(key));
                }
            }
        }
        Ok(())
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
