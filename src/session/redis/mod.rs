//! Session store on Redis, shared by every gateway instance (`[session] store = "redis"`).
//!
//! What lives where (all names start with `key_prefix`; the exact names, and which share a
//! Redis Cluster hash slot, are in [`keys`]):
//! - `{s:XX}:<hex store key>`: a session record, `"<absolute end, Unix seconds>\n"` in the clear
//!   (the load script needs it to cap the idle TTL) followed by the sealed session
//!   ([`super::record`]); TTL = min(idle timeout, time to the absolute end), renewed by every
//!   read in the same round trip (a Lua script).
//! - `p:<hex store key>`: a sealed pending login; TTL = the longest login lifetime. Taken with
//!   `GETDEL`, so a login handle is redeemable once across all instances.
//! - `i:<hex HMAC>`: the set of session keys indexed by `(provider, sid)` or
//!   `(provider, subject)` for back-channel and SAML logout; the name is an HMAC (subjects are
//!   personal data). Entries may outlive their session (idle expiry does not clean them); a
//!   logout re-checks every candidate against the session itself, as the memory store does.
//! - `u:<hex HMAC>`, `maintenance` and `m:<app>`: the per-user index and the apps'
//!   maintenance notices (see `index.rs`).
//! - `{s:XX}live`: 256 sorted sets (shards, one per session tag) of the live sessions'
//!   store keys scored by expiry, for the `aisgate_active_sessions` gauge and for announcing
//!   expiries (see [`live`]).
//! - `{s:XX}e:<hex store key>`: a session's sealed end facts, so that its expiry by TTL is
//!   audited once (see [`live`]).
//! - `o:…`, `c:…`, `l:…`: one-time ids, attempt counters and refresh leases shared by the
//!   instances (see [`shared`]).
//! - `n:…`, `x:…`: single-logout state, the NameID memory and the LogoutRequests sent (see
//!   [`slo`]).
//! - channel `ended`: every ended session's store key, published by the instance that ended
//!   it (or, for an expiry, by the instance whose sweep found it) and fed into
//!   [`SessionStore::ended_sessions`] on every other instance.
//!
//! Store keys are SHA-256 of the session id, so a dump holds no usable cookie; records are
//! encrypted and bound to their key, so a dump holds no identity and a write access to Redis
//! cannot mint a session for a chosen id without the session key.
//!
//! Outages: every operation waits at most `timeout_ms` (connect and response), then fails
//! with [`StoreError::Unavailable`], which the gateway turns into its 503 page: a request is
//! never let through without its session. The connection manager reconnects on the next
//! operation after an I/O error, and a health task pings once a second, so `/readyz` reports
//! the outage and its end without any traffic.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
pub(crate) mod backend;
mod decoded;
mod index;
pub(crate) mod keys;
mod live;
mod shared;
mod slo;

use backend::Conn;
use keys::KeyNames;
use redis::{AsyncCommands, Script};

use super::record::{RecordKeys, RecordKind};
use super::{LogoutBy, PendingLogin, Session, SessionStore, StoreError, StoreKey, StoreReadiness};
use crate::audit::Audit;
use crate::clock::Clock;
use crate::config::RedisConfig;
use crate::ops::metrics::{LateCounter, Metrics};

/// Why the Redis store cannot be set up (a configuration error at startup).
#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    /// `store = "redis"` without a `[session.redis]` table.
    #[error("store = \"redis\" needs a [session.redis] table with a url")]
    Missing,
    /// The URL does not parse or is not `redis://` / `rediss://`.
    #[error("[session.redis] url: {0}")]
    BadUrl(String),
    /// A password inside the URL would end up in config files, backups and logs.
    #[error("[session.redis] url must not contain a password: use password_file or password_env")]
    PasswordInUrl,
    /// A CA is meaningless without TLS, and likely means the `s` of `rediss://` is missing.
    #[error("[session.redis] ca_file is set but the url is not rediss:// (TLS)")]
    CaWithoutTls,
    /// Both password sources.
    #[error("[session.redis] set at most one of password_file and password_env")]
    TwoPasswords,
    /// A file could not be read.
    #[error("[session.redis] cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The password variable is not set.
    #[error("[session.redis] password_env: environment variable {0} is not set")]
    MissingEnv(String),
    /// None or several of `url`, `sentinels` and `cluster`.
    #[error(
        "[session.redis] set exactly one of url (one server), sentinels (with master_name) and cluster (nodes of a Redis Cluster)"
    )]
    OneTarget,
    /// Cluster nodes, some `redis://` and some `rediss://`.
    #[error("[session.redis] cluster: all nodes redis:// or all rediss:// (one TLS setting for the cluster)")]
    MixedClusterTls,
    /// `sentinels` without `master_name`.
    #[error("[session.redis] sentinels need master_name (the name the sentinels monitor)")]
    NoMasterName,
    /// A Sentinel address that is not `host:port`.
    #[error("[session.redis] sentinel {0:?} is not host:port")]
    BadSentinel(String),
    /// A brace in `key_prefix` would become the hash tag of every key (see `keys`).
    #[error("[session.redis] key_prefix must not contain {{ or }} (they decide Redis Cluster hash slots)")]
    BracesInPrefix,
    /// The client refused the settings (e.g. a CA file without a certificate).
    #[error("[session.redis] {0}")]
    Client(String),
    /// A local cache longer than the one-second bound on logouts at other instances.
    #[error("[session.redis] local_cache_ms = {0}: at most 1000 (a logout elsewhere must take effect within 1 s)")]
    LocalCacheTooLong(u64),
}

/// The longest `local_cache_ms`: a logout at one instance takes effect at all within 1 s.
const MAX_LOCAL_CACHE_MS: u64 = 1000;

/// Timing and sizing the store needs from `[session]` and the gateway.
#[derive(Debug, Clone)]
pub struct RedisStoreOptions {
    /// Idle timeout.
    pub idle: Duration,
    /// Lifetime of pending logins.
    pub login_ttl: Duration,
    /// Absolute session timeout (the longest a session, and so an index entry, can live).
    pub absolute: Duration,
    /// Number of apps (per-process caches of a loaded session).
    pub apps: usize,
    /// The clock expiry decisions read.
    pub clock: Clock,
}

impl RedisStoreOptions {
    /// The options of `[session]`, with the longest pending-login lifetime of all providers.
    pub fn of(session: &crate::config::SessionConfig, login_ttl_secs: u64, apps: usize, clock: &Clock) -> Self {
        RedisStoreOptions {
            idle: Duration::from_secs(session.idle_timeout_secs),
            login_ttl: Duration::from_secs(login_ttl_secs),
            absolute: Duration::from_secs(session.absolute_timeout_secs),
            apps,
            clock: clock.clone(),
        }
    }
}

/// Reads a session, renews its idle TTL capped by its absolute end, in one round trip.
/// KEYS: the session, the live set ([`live`]). ARGV: now (Unix seconds), idle timeout (ms),
/// the member (hex store key). An expired record is deleted.
const LOAD: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return false end
local nl = string.find(v, '\n', 1, true)
if not nl then return false end
local left = (tonumber(string.sub(v, 1, nl - 1)) or 0) - tonumber(ARGV[1])
if left <= 0 then
  redis.call('DEL', KEYS[1])
  return false
end
local ttl = math.min(tonumber(ARGV[2]), left * 1000)
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], tonumber(ARGV[1]) * 1000 + ttl, ARGV[3])
return v
";

/// Deletes a session and announces it on the channel in one step, returning the record.
/// KEYS: session, the live set, its end facts. ARGV: channel name, message, member (hex
/// store key). The end facts go too: a session ended by a request is audited by it.
const REMOVE: &str = r"
local v = redis.call('GETDEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('DEL', KEYS[3])
if v then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return v
";

/// The shared store.
pub struct RedisStore {
    /// The connection (single server or Sentinel). Outside a runtime (`aisgate check`) the
    /// settings are validated and nothing connects.
    backend: Arc<backend::Backend>,
    names: KeyNames,
    channel: String,
    keys: Arc<RecordKeys>,
    opts: RedisStoreOptions,
    load: Script,
    remove: Script,
    /// Attempt counters (see `shared`).
    count: Script,
    /// This instance's id on the channel: its own announcements are delivered locally, not
    /// twice.
    instance: String,
    ended: tokio::sync::broadcast::Sender<StoreKey>,
    health: Arc<Health>,
    /// Sessions decoded from records read recently, reused while the record is unchanged.
    decoded: Arc<decoded::Decoded>,
    /// Session reads under way: concurrent misses for one session share one `EVALSHA`.
    flights: decoded::Flights,
    /// Live sessions as last counted by the sweep ([`live`]).
    live_count: Arc<std::sync::atomic::AtomicU64>,
    /// Where the sweep audits the expiries it claims ([`RedisStore::with_audit`]).
    audit: Arc<OnceLock<Audit>>,
}

/// How long `/readyz` reports the last ACL refusal (the health ping cannot tell whether the
/// ACL was fixed: it only runs `PING`).
const REFUSAL_SHOWN: Duration = Duration::from_secs(60);

/// The last known state of the connection, for `/readyz`.
#[derive(Default)]
struct Health {
    down: AtomicBool,
    detail: Mutex<Option<String>>,
    /// The last ACL refusal and when it happened: a misconfiguration the server keeps
    /// answering (and the health ping does not see).
    refused: Mutex<Option<(std::time::Instant, String)>>,
    /// Operations refused by the ACL (`aisgate_session_store_errors_total{reason="acl_denied"}`).
    denied_count: LateCounter,
    /// Operations failed by an outage or error (`…{reason="unavailable"}`).
    unavailable_count: LateCounter,
}

impl Health {
    fn fail(&self, why: &str) {
        let mut detail = self.detail.lock().unwrap_or_else(|e| e.into_inner());
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::error!(error = why, "session store (redis) unavailable");
        }
        *detail = Some(why.to_owned());
    }

    fn ok(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::info!("session store (redis) available again");
        }
        *self.detail.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Notes an ACL refusal (logged once per distinct refusal and minute, not per request).
    fn refused(&self, why: &str) {
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        let repeated = refused.as_ref().is_some_and(|(at, last)| last == why && at.elapsed() < REFUSAL_SHOWN);
        if !repeated {
            tracing::error!(
                reason = "acl_denied",
                error = why,
                "session store (redis) misconfigured: its ACL user lacks a permission"
            );
        }
        *refused = Some((std::time::Instant::now(), why.to_owned()));
    }

    /// Why the store cannot serve now: an outage first, else an ACL refusal seen within
    /// [`REFUSAL_SHOWN`].
    fn detail(&self) -> Option<String> {
        let detail = self.detail.lock().unwrap_or_else(|e| e.into_inner()).clone();
        detail.or_else(|| {
            let refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
            refused.as_ref().filter(|(at, _)| at.elapsed() < REFUSAL_SHOWN).map(|(_, why)| why.clone())
        })
    }
}

/// The operator-facing text of an ACL refusal (`NOPERM`), or `None` for any other error.
/// Redis names the refused command (or says "a key" / "a channel", never which); `keys` adds
/// the names of the keys the operation uses, as patterns: no store key, no value.
fn acl_refusal(e: &redis::RedisError, keys: &str) -> Option<String> {
    let text = e.to_string();
    if e.code() != Some("NOPERM") && !text.contains("NOPERM") {
        return None;
    }
    let said = text.lines().next().unwrap_or_default();
    Some(format!("redis ACL refuses the store's user ({said}) on {keys}: grant it the commands, keys and channel of README \"Shared sessions on Redis\""))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl RedisStore {
    /// Validates the settings and, inside a Tokio runtime, starts the connection (lazily: the
    /// gateway starts while Redis is down, and `/readyz` says so), the health task and the
    /// subscription to the `ended` channel.
    pub fn new(
        cfg: &RedisConfig,
        keys: RecordKeys,
        opts: RedisStoreOptions,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<RedisStore, RedisSetupError> {
        if cfg.local_cache_ms > MAX_LOCAL_CACHE_MS {
            return Err(RedisSetupError::LocalCacheTooLong(cfg.local_cache_ms));
        }
        if !keys::prefix_ok(&cfg.key_prefix) {
            return Err(RedisSetupError::BracesInPrefix);
        }
        let backend = Arc::new(backend::Backend::new(cfg, env)?);
        let names = KeyNames::new(&cfg.key_prefix);
        let opts_idle = opts.idle;
        let (ended, _) = tokio::sync::broadcast::channel(1024);
        let health = Arc::new(Health::default());
        let store = RedisStore {
            backend,
            channel: names.ended_channel(),
            names,
            keys: Arc::new(keys),
            opts,
            load: Script::new(LOAD),
            remove: Script::new(REMOVE),
            count: Script::new(shared::COUNT),
            instance: hex(&super::random_id()[..16]),
            ended,
            health,
            decoded: Arc::new(decoded::Decoded::new(opts_idle, Duration::from_millis(cfg.local_cache_ms))),
            flights: decoded::Flights::default(),
            live_count: Arc::default(),
            audit: Arc::default(),
        };
        if store.backend.started() {
            let timeout = Duration::from_millis(cfg.timeout_ms.max(1));
            spawn_health(store.backend.clone(), store.health.clone(), timeout);
            spawn_subscriber(
                store.backend.clone(),
                (store.channel.clone(), store.instance.clone()),
                store.ended.clone(),
                store.decoded.clone(),
            );
            let sweeper = live::Sweeper {
                backend: store.backend.clone(),
                names: store.names.clone(),
                channel: store.channel.clone(),
                instance: store.instance.clone(),
                clock: store.opts.clock.clone(),
                count: store.live_count.clone(),
                keys: store.keys.clone(),
                audit: store.audit.clone(),
            };
            sweeper.spawn(store.ended.clone());
        }
        Ok(store)
    }

    /// Audits the session ends this store finds by itself — expiries, which Redis carries out
    /// silently by TTL — to `audit` (see [`live`]); ends callers ask for are audited by the
    /// caller, as with the memory store.
    pub fn with_audit(self, audit: Audit) -> RedisStore {
        let _ = self.audit.set(audit);
        self
    }

    /// [`RedisStore::new`] from `[session]`, which must have a `[session.redis]` table.
    pub fn configured(
        session: &crate::config::SessionConfig,
        keys: RecordKeys,
        opts: RedisStoreOptions,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<RedisStore, RedisSetupError> {
        RedisStore::new(session.redis.as_ref().ok_or(RedisSetupError::Missing)?, keys, opts, env)
    }

    async fn conn(&self) -> Result<Conn, StoreError> {
        self.backend.conn().await.map_err(|e| self.failed(e))
    }

    /// Turns a Redis error into the store error, noting the outage for `/readyz` (and, with
    /// Sentinel, that the master must be looked up again).
    fn failed(&self, e: redis::RedisError) -> StoreError {
        self.failed_on(e, "its keys")
    }

    /// [`RedisStore::failed`] for an operation on `keys` (patterns under the prefix, for the
    /// text of an ACL refusal): a refusal by the ACL is [`StoreError::Denied`], a
    /// misconfiguration, not an outage (the connection is fine), and fails closed the same.
    fn failed_on(&self, e: redis::RedisError, keys: &str) -> StoreError {
        if let Some(why) = acl_refusal(&e, &keys.replace("{p}", &self.names.plain(""))) {
            self.health.denied_count.inc();
            self.health.refused(&why);
            return StoreError::Denied(why);
        }
        self.health.unavailable_count.inc();
        self.backend.failed(&e);
        let why = format!("redis: {e}");
        self.health.fail(&why);
        StoreError::Unavailable(why)
    }

    fn session_key(&self, key: &StoreKey) -> String {
        self.names.session(key)
    }

    fn pending_key(&self, key: &StoreKey) -> String {
        self.names.pending(key)
    }

    fn index_key(&self, name: &[u8; 32]) -> String {
        self.names.index(name)
    }

    /// The index sets a session belongs to (under the sealing key). Empty values are not
    /// indexed: an empty `sub` or `sid` in a logout never matches a session lacking one.
    fn index_entries(&self, session: &Session) -> Vec<String> {
        let provider = &session.identity.provider;
        let mut names = Vec::with_capacity(2);
        if !session.identity.subject.is_empty() {
            names.extend(self.keys.index_name("sub", provider, &session.identity.subject));
        }
        if let Some(sid) = session.idp_session_id() {
            names.extend(self.keys.index_name("sid", provider, sid));
        }
        names.iter().map(|n| self.index_key(n)).collect()
    }

    /// Opens a session record; a record that does not open is treated as absent (and
    /// logged): a foreign or tampered record must never become a session.
    fn open_session(&self, key: &StoreKey, record: &[u8]) -> Option<Session> {
        let header_len = record.iter().position(|b| *b == b'\n')? + 1;
        let plain = match self.keys.open(RecordKind::Session, key, record, header_len) {
            Ok(plain) => plain,
            Err(e) => {
                tracing::warn!(session = %key.log_label(), error = %e, "session record refused");
                return None;
            }
        };
        match serde_json::from_slice::<Session>(&plain) {
            Ok(session) => Some(session),
            Err(e) => {
                tracing::warn!(session = %key.log_label(), error = %e, "session record does not decode");
                None
            }
        }
    }

    /// The sealed record of `session` and its TTL (ms), or `None` when it is already over.
    fn sealed_session(&self, key: &StoreKey, session: &Session) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        let now = self.opts.clock.now_unix();
        let left_ms = session.expires_at.saturating_sub(now).saturating_mul(1000);
        let ttl_ms = left_ms.min(u64::try_from(self.opts.idle.as_millis()).unwrap_or(u64::MAX));
        if ttl_ms == 0 {
            return Ok(None);
        }
        let plain = serde_json::to_vec(session)
            .map_err(|e| StoreError::Unavailable(format!("session does not encode: {e}")))?;
        let header = format!("{}\n", session.expires_at);
        let record = self
            .keys
            .seal(RecordKind::Session, key, header.as_bytes(), &plain)
            .ok_or_else(|| StoreError::Unavailable("no session key to seal records".into()))?;
        Ok(Some((record, ttl_ms)))
    }

    /// The sealed end facts of `session` ([`live::EndFacts`]) and their TTL (ms): until the
    /// session's absolute end plus [`live::END_FACTS_GRACE`], so the sweep that finds the
    /// record gone still has them; never renewed (the session cannot outlive its absolute end).
    fn end_facts(&self, key: &StoreKey, session: &Session) -> Result<(Vec<u8>, u64), StoreError> {
        let left_ms = session.expires_at.saturating_sub(self.opts.clock.now_unix()).saturating_mul(1000);
        let ttl_ms = left_ms.saturating_add(u64::try_from(live::END_FACTS_GRACE.as_millis()).unwrap_or(u64::MAX));
        let facts = live::EndFacts::of(session)
            .seal(&self.keys, key)
            .ok_or_else(|| StoreError::Unavailable("no session key to seal records".into()))?;
        Ok((facts, ttl_ms))
    }

    /// Announces locally that `key` ended (other instances hear it on the channel).
    fn announce(&self, key: StoreKey) {
        // Fails only when nobody listens.
        let _ = self.ended.send(key);
    }

    async fn remove_session(&self, conn: &mut Conn, key: &StoreKey) -> Result<Option<Session>, StoreError> {
        let message = format!("{}:{}", self.instance, hex(&key.0));
        let record: Option<Vec<u8>> = self
            .remove
            .key(self.session_key(key))
            .key(self.names.live_of(key))
            .key(self.names.end_facts(key))
            .arg(&self.channel)
            .arg(message)
            .arg(hex(&key.0))
            .invoke_async(conn)
            .await
            .map_err(|e| {
                self.failed_on(e, "EVALSHA of keys {p}{s:*}:*, {p}{s:*}live and {p}{s:*}e:*, channel {p}ended")
            })?;
        self.decoded.forget(key);
        let Some(record) = record else { return Ok(None) };
        self.announce(*key);
        let session = self.open_session(key, &record);
        if let Some(session) = &session {
            // Best effort: a stale index entry is only a candidate that fails the re-check.
            let member = hex(&key.0);
            for set in self.index_entries(session) {
                let _: Result<(), _> = conn.srem(set, &member).await;
            }
            self.unindex_user(conn, session, &member).await;
        }
        Ok(session)
    }
}

/// Runs single-key commands concurrently, one per key, on the multiplexed connection (it
/// pipelines them): the cluster-safe form of a multi-key read (see [`keys`]).
async fn each<T: redis::FromRedisValue>(
    conn: &Conn,
    cmds: impl IntoIterator<Item = redis::Cmd>,
) -> redis::RedisResult<Vec<T>> {
    futures_util::future::try_join_all(cmds.into_iter().map(|cmd| {
        let mut conn = conn.clone();
        async move { cmd.query_async::<T>(&mut conn).await }
    }))
    .await
}

/// Runs pipelines concurrently, each within one hash slot (see [`keys`]); their replies are
/// ignored.
async fn each_pipeline(conn: &Conn, pipes: Vec<redis::Pipeline>) -> redis::RedisResult<()> {
    futures_util::future::try_join_all(pipes.into_iter().map(|pipe| {
        let mut conn = conn.clone();
        async move { pipe.query_async::<()>(&mut conn).await }
    }))
    .await
    .map(drop)
}

/// Pings once a second so `/readyz` follows Redis going and coming back without traffic
/// (and the connection manager reconnects after an outage).
fn spawn_health(backend: Arc<backend::Backend>, health: Arc<Health>, timeout: Duration) {
    let weak = Arc::downgrade(&health);
    drop(health);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // The store is gone (gateway dropped): stop.
            let Some(health) = weak.upgrade() else { return };
            let ping = tokio::time::timeout(timeout * 2, async {
                let mut conn = backend.conn().await?;
                redis::cmd("PING").query_async::<String>(&mut conn).await
            });
            match ping.await {
                Ok(Ok(_)) => health.ok(),
                Ok(Err(e)) => {
                    backend.failed(&e);
                    health.fail(&format!("redis: {e}"));
                }
                Err(_) => health.fail("redis: no answer to PING within the timeout"),
            }
        }
    });
}

/// Listens on the `ended` channel and feeds other instances' endings into the local
/// broadcast; reconnects after any failure. Stops when the store is dropped.
fn spawn_subscriber(
    backend: Arc<backend::Backend>,
    (channel, instance): (String, String),
    ended: tokio::sync::broadcast::Sender<StoreKey>,
    decoded: Arc<decoded::Decoded>,
) {
    use futures_util::StreamExt;
    let weak = ended.downgrade();
    drop(ended);
    tokio::spawn(async move {
        loop {
            if weak.upgrade().is_none() {
                return;
            }
            let client = match backend.client().await {
                Ok(client) => client,
                Err(e) => {
                    tracing::debug!(error = %e, "session store (redis): no server for the subscription");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
            };
            match client.get_async_pubsub().await {
                Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                    Ok(()) => {
                        let mut messages = pubsub.on_message();
                        while let Some(msg) = messages.next().await {
                            let Some(ended) = weak.upgrade() else { return };
                            let payload = msg.get_payload_bytes();
                            let Some((from, key)) = std::str::from_utf8(payload).ok().and_then(|p| p.split_once(':'))
                            else {
                                continue;
                            };
                            if from == instance {
                                continue;
                            }
                            if let Some(key) = unhex32(key) {
                                // Ended elsewhere: this instance's copy goes first.
                                decoded.forget(&StoreKey(key));
                                let _ = ended.send(StoreKey(key));
                            }
                        }
                        tracing::warn!("session store (redis): subscription to ended sessions lost; reconnecting");
                    }
                    Err(e) => tracing::warn!(error = %e, "session store (redis): cannot subscribe to ended sessions"),
                },
                Err(e) => tracing::debug!(error = %e, "session store (redis): subscriber cannot connect"),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Arc<Session>>, StoreError> {
        // Read within the last `local_cache_ms` and not ended since (see `decoded`).
        match self.decoded.lookup(key) {
            decoded::Lookup::Fresh(session) => Ok(Some(session).filter(|s| !s.is_expired(self.opts.clock.now_unix()))),
            // This request reads ahead of the copy's expiry; the others keep using it.
            decoded::Lookup::Due(_turn) => self.reload(key).await,
            // No usable copy: one read for every concurrent request of this session.
            decoded::Lookup::Miss => self.flights.read(key, || self.reload(key)).await,
        }
    }

    async fn reload(&self, key: &StoreKey) -> Result<Option<Arc<Session>>, StoreError> {
        let mut conn = self.conn().await?;
        let now = self.opts.clock.now_unix();
        let idle_ms = u64::try_from(self.opts.idle.as_millis()).unwrap_or(u64::MAX);
        let record: Option<Vec<u8>> = self
            .load
            .key(self.session_key(key))
            .key(self.names.live_of(key))
            .arg(now)
            .arg(idle_ms)
            .arg(hex(&key.0))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.failed_on(e, "EVALSHA of keys {p}{s:*}:* and {p}{s:*}live"))?;
        let Some(record) = record else {
            self.decoded.forget(key);
            return Ok(None);
        };
        // The same record as last time here: the same session, caches and all.
        let session = match self.decoded.get(key, &record) {
            Some(session) => session,
            None => {
                let Some(session) = self.open_session(key, &record).map(Arc::new) else { return Ok(None) };
                self.decoded.put(*key, record, session.clone());
                session
            }
        };
        Ok(Some(session).filter(|s| !s.is_expired(now)))
    }

    async fn save(&self, key: StoreKey, session: Arc<Session>) -> Result<(), StoreError> {
        let Some((record, ttl_ms)) = self.sealed_session(&key, &session)? else { return Ok(()) };
        let mut conn = self.conn().await?;
        let member = hex(&key.0);
        let index_ttl_ms = u64::try_from(self.opts.absolute.as_millis()).unwrap_or(u64::MAX).max(1);
        // The index entries first, each set on its own (in a cluster each is in its own
        // slot): an entry whose session was never written is only a candidate that fails the
        // re-check, while a session written without its entries could not be logged out by
        // its IdP. A failure here fails the save, so no session exists without them.
        let mut sets = Vec::new();
        for set in self.index_entries(&session) {
            let mut pipe = redis::pipe();
            pipe.cmd("SADD").arg(&set).arg(&member).ignore();
            pipe.cmd("PEXPIRE").arg(&set).arg(index_ttl_ms).ignore();
            sets.push(pipe);
        }
        sets.extend(self.index_user(&session, &member, index_ttl_ms));
        each_pipeline(&conn, sets).await.map_err(|e| self.failed(e))?;
        // Then the record, its live shard and its end facts: one slot, one transaction.
        let (facts, facts_ttl_ms) = self.end_facts(&key, &session)?;
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("SET").arg(self.session_key(&key)).arg(record).arg("PX").arg(ttl_ms).ignore();
        let expires_ms = self.opts.clock.now_unix().saturating_mul(1000).saturating_add(ttl_ms);
        pipe.cmd("ZADD").arg(self.names.live_of(&key)).arg(expires_ms).arg(&member).ignore();
        pipe.cmd("SET").arg(self.names.end_facts(&key)).arg(facts).arg("PX").arg(facts_ttl_ms).ignore();
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.failed_on(e, "keys {p}{s:*}:*, {p}{s:*}live, {p}{s:*}e:*, {p}i:*, {p}u:*"))
    }

    async fn remove(&self, key: &StoreKey) -> Result<Option<Arc<Session>>, StoreError> {
        let mut conn = self.conn().await?;
        Ok(self.remove_session(&mut conn, key).await?.map(Arc::new))
    }

    async fn put_pending(&self, key: StoreKey, pending: PendingLogin) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let plain = serde_json::to_vec(&pending)
            .map_err(|e| StoreError::Unavailable(format!("pending login does not encode: {e}")))?;
        let record = self
            .keys
            .seal(RecordKind::Pending, &key, b"", &plain)
            .ok_or_else(|| StoreError::Unavailable("no session key to seal records".into()))?;
        let ttl_ms = u64::try_from(self.opts.login_ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        // SET … PX rather than PSETEX: one command less for the operator's ACL.
        redis::cmd("SET")
            .arg(self.pending_key(&key))
            .arg(record)
            .arg("PX")
            .arg(ttl_ms)
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.failed_on(e, "key {p}p:*"))
    }

    async fn take_pending(&self, key: &StoreKey) -> Result<Option<PendingLogin>, StoreError> {
        let mut conn = self.conn().await?;
        // GETDEL: atomic, so of two callbacks with the same handle (on any instances) exactly
        // one gets the login.
        let record: Option<Vec<u8>> =
            conn.get_del(self.pending_key(key)).await.map_err(|e| self.failed_on(e, "key {p}p:*"))?;
        let Some(record) = record else { return Ok(None) };
        let plain = match self.keys.open(RecordKind::Pending, key, &record, 0) {
            Ok(plain) => plain,
            Err(e) => {
                tracing::warn!(error = %e, "pending login record refused");
                return Ok(None);
            }
        };
        Ok(serde_json::from_slice(&plain)
            .map_err(|e| tracing::warn!(error = %e, "pending login record does not decode"))
            .ok())
    }

    async fn remove_for_subject(
        &self,
        provider: &str,
        subject: Option<&str>,
        sid: Option<&str>,
    ) -> Result<usize, StoreError> {
        let names = match LogoutBy::new(subject, sid) {
            Some(LogoutBy::Sid { sid, .. }) => self.keys.index_names("sid", provider, sid),
            Some(LogoutBy::Subject(sub)) => self.keys.index_names("sub", provider, sub),
            None => return Ok(0),
        };
        let mut conn = self.conn().await?;
        let sets: Vec<String> = names.iter().map(|n| self.index_key(n)).collect();
        // One SUNION per set (in a cluster the sets live in different slots, see `keys`); not
        // SMEMBERS, so the README's ACL for the store stays as it was.
        let reads = sets.iter().map(|set| redis::cmd("SUNION").arg(set).clone());
        let mut members: Vec<String> =
            each::<Vec<String>>(&conn, reads).await.map_err(|e| self.failed_on(e, "SUNION of keys {p}i:*"))?.concat();
        members.sort_unstable();
        members.dedup();
        let candidates: Vec<(String, StoreKey)> =
            members.into_iter().filter_map(|m| unhex32(&m).map(|k| (m, StoreKey(k)))).collect();
        // Every candidate's record at once: one GET per record, sent together on the
        // multiplexed connection (one round trip), not an MGET (a cluster refuses one across
        // slots, and the records are in different slots).
        let gets = candidates.iter().map(|(_, key)| redis::cmd("GET").arg(self.session_key(key)).clone());
        let records: Vec<Option<Vec<u8>>> =
            each(&conn, gets).await.map_err(|e| self.failed_on(e, "GET of keys {p}{s:*}:*"))?;
        let now = self.opts.clock.now_unix();
        let (mut ended, mut stale) = (0, Vec::new());
        for ((member, key), record) in candidates.iter().zip(records) {
            // Re-check against the session itself: the index may name a key that expired,
            // or (with a sid and a subject) another user's session.
            let Some(session) = record.and_then(|r| self.open_session(key, &r)) else {
                stale.push(member);
                continue;
            };
            if session.is_expired(now) || !session.matches_logout(provider, subject, sid) {
                continue;
            }
            if self.remove_session(&mut conn, key).await?.is_some() {
                ended += 1;
            }
        }
        if !stale.is_empty() {
            // Best effort: the entries of records gone, one SREM per set for all of them.
            let srems = sets.iter().map(|set| redis::cmd("SREM").arg(set).arg(&stale).clone());
            let _: Result<Vec<()>, _> = each(&conn, srems).await;
        }
        Ok(ended)
    }

    async fn tokens_refreshed(&self, key: &StoreKey, session: &Arc<Session>) -> Result<(), StoreError> {
        // `XX`: only over the existing record. A logout (at any instance) while the refresh
        // was under way must not be undone by writing the session back.
        let Some((record, ttl_ms)) = self.sealed_session(key, session)? else { return Ok(()) };
        let mut conn = self.conn().await?;
        let written = redis::cmd("SET")
            .arg(self.session_key(key))
            .arg(&record)
            .arg("PX")
            .arg(ttl_ms)
            .arg("XX")
            .query_async::<Option<String>>(&mut conn)
            .await
            .map_err(|e| self.failed(e))?;
        if written.is_some() {
            // This session (with its caches) is what the new record decodes to.
            self.decoded.put(*key, record, session.clone());
        }
        Ok(())
    }

    async fn user_sessions(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Vec<crate::session::users::UserSession>, StoreError> {
        self.sessions_of_user(provider, subject).await
    }

    async fn scan_sessions(
        &self,
        keep: &crate::session::users::Keep<'_>,
        limit: usize,
    ) -> Result<Vec<crate::session::users::Listed>, StoreError> {
        self.scan(keep, limit).await
    }

    async fn set_maintenance(&self, app: &str, notice: Option<&[u8]>) -> Result<(), StoreError> {
        self.put_notice(app, notice).await
    }

    async fn maintenance(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.notices().await
    }

    fn active_sessions(&self) -> u64 {
        // Counted by the sweep every few seconds (see `live`): no Redis call per scrape.
        self.live_count.load(Ordering::Relaxed)
    }

    fn ended_sessions(&self) -> tokio::sync::broadcast::Receiver<StoreKey> {
        self.ended.subscribe()
    }

    fn register_metrics(&self, metrics: &mut Metrics) {
        let help = "Session store operations that failed, by reason: acl_denied (the Redis ACL refused a command or key: a misconfiguration), unavailable (Redis down, not answering in time or answering with an error). Each failed closed.";
        for (reason, count) in
            [("acl_denied", &self.health.denied_count), ("unavailable", &self.health.unavailable_count)]
        {
            count.attach(metrics.register_counter("aisgate_session_store_errors_total", help, &[("reason", reason)]));
        }
    }

    fn readiness(&self) -> StoreReadiness {
        let detail =
            if self.backend.started() { self.health.detail() } else { Some("redis store not started".to_owned()) };
        StoreReadiness { ready: detail.is_none(), backend: "redis", detail }
    }
}
