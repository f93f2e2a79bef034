//! The Redis store as every instance's [`SharedState`]: replay caches, attempt counters and the
//! token-refresh lease.
//!
//! Keys (all under `key_prefix`):
//! - `o:<scope>:<hex SHA-256 of (provider, id)>`: a one-time id, `SET NX PX` until it could no
//!   longer be accepted anyway. Unkeyed hash: stable across session-key rotations (a replay
//!   after a rotation is still refused); the ids are random message ids, not personal data.
//! - `c:<scope>:<hex HMAC of the client bucket>:<window number>`: an attempt counter,
//!   `INCR` + `PEXPIRE` in one script. Keyed hash: client addresses are personal data.
//! - `{s:XX}l:<hex store key>`: the refresh lease (next to its session, see `keys`) of a session, `SET NX PX` with a random token,
//!   renewed and released only by the holder of the token (compare-and-expire,
//!   compare-and-delete scripts).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::{hex, RedisStore};
use crate::session::shared::{CounterScope, OnceScope, RefreshLease, SharedState};
use crate::session::{StoreError, StoreKey};

/// Counts an attempt and sets the counter's expiry on the first one. KEYS: the counter;
/// ARGV: its TTL in ms.
pub(super) const COUNT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
";

/// Extends the lease if it is still ours. KEYS: the lease; ARGV: token, TTL in ms.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
";

/// Deletes the lease if it is still ours. KEYS: the lease; ARGV: token.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisStore {
    fn once_key(&self, scope: OnceScope, provider: &str, id: &str) -> String {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        // Length-prefixed: ("ab","c") and ("a","bc") never collide.
        for field in [provider, id] {
            ctx.update(&(field.len() as u64).to_be_bytes());
            ctx.update(field.as_bytes());
        }
        self.names.plain(&format!("o:{}:{}", scope.label(), hex(ctx.finish().as_ref())))
    }

    fn lease_key(&self, key: &StoreKey) -> String {
        self.names.lease(key)
    }

    /// `SET name value PX ttl NX`: whether `name` was new (and is now set).
    async fn set_new(&self, name: &str, value: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        let set: Option<String> = redis::cmd("SET")
            .arg(name)
            .arg(value)
            .arg("PX")
            .arg(ms(ttl))
            .arg("NX")
            .query_async(&mut conn)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(set.is_some())
    }
}

#[async_trait]
impl SharedState for RedisStore {
    async fn first_use(&self, scope: OnceScope, provider: &str, id: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.set_new(&self.once_key(scope, provider, id), "1", ttl).await
    }

    async fn count_attempt(&self, scope: CounterScope, client: &str, window: Duration) -> Result<u64, StoreError> {
        let name = self
            .keys
            .index_name("attempts", scope.label(), client)
            .ok_or_else(|| StoreError::Unavailable("no session key to name counters".into()))?;
        let window_secs = window.as_secs().max(1);
        let number = self.opts.clock.now_unix() / window_secs;
        let key = self.names.plain(&format!("c:{}:{}:{number}", scope.label(), hex(&name)));
        let mut conn = self.conn().await?;
        self.count.key(key).arg(ms(window)).invoke_async(&mut conn).await.map_err(|e| self.failed(e))
    }

    async fn try_refresh_lease(&self, key: &StoreKey, lease: Duration) -> Result<Option<RefreshLease>, StoreError> {
        let token = hex(&crate::session::random_id()[..16]);
        let name = self.lease_key(key);
        if !self.set_new(&name, &token, lease).await? {
            return Ok(None);
        }
        let backend = self.backend.clone();
        let (renew_name, renew_token) = (name.clone(), token.clone());
        // Renewed at a third of the lease: two renewals may fail (a slow round trip) before
        // another instance could take it.
        let renewal = tokio::spawn(async move {
            let script = Script::new(RENEW);
            let mut tick = tokio::time::interval(lease / 3);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Ok(mut conn) = backend.conn().await else { continue };
                let renewed: Result<u64, _> =
                    script.key(&renew_name).arg(&renew_token).arg(ms(lease)).invoke_async(&mut conn).await;
                match renewed {
                    Ok(0) => {
                        tracing::warn!(
                            "token refresh lease lost (expired before renewal); another instance may refresh too"
                        );
                        return;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "token refresh lease not renewed"),
                }
            }
        });
        let backend = Arc::clone(&self.backend);
        let release: crate::session::shared::ReleaseFn = Box::new(move || {
            Box::pin(async move {
                let Ok(mut conn) = backend.conn().await else { return };
                let released: Result<u64, _> =
                    Script::new(RELEASE).key(&name).arg(&token).invoke_async(&mut conn).await;
                if let Err(e) = released {
                    tracing::warn!(error = %e, "token refresh lease not released; it expires by itself");
                }
            })
        });
        Ok(Some(RefreshLease::new(renewal, release)))
    }
}
