//! Where the Redis store's connection goes: one server (`url`), the master that a set of
//! Redis Sentinels names (`sentinels` + `master_name`), followed across failovers, or a Redis
//! Cluster (`cluster`, a few of its nodes; the rest are learnt from them).
//!
//! With a cluster the client keeps the slot map and one multiplexed connection per node, and
//! follows `MOVED`/`ASK` redirections and failovers by itself (it reloads the slot map after
//! a connection error); every multi-key operation stays within one hash slot (see
//! [`super::keys`]). Subscriptions go to one of the configured nodes: a `PUBLISH` on any node
//! of a cluster reaches the subscribers of every node.
//!
//! With a single server the connection manager reconnects to the same address by itself.
//! With Sentinel that is not enough: after a failover the old address is dead or a read-only
//! replica. Any connection-level error (I/O, refused, timeout, `READONLY`) therefore drops the
//! current connection, and the next operation (or the health ping, once a second) asks the
//! Sentinels for the master again. A request during the switch gets the 503 page, never an
//! answer from a stale replica.

use std::sync::Mutex;
use std::time::Duration;

use std::sync::atomic::{AtomicUsize, Ordering};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisError};

use super::RedisSetupError;
use crate::config::RedisConfig;

/// How to reach the master.
enum Target {
    /// One address; the connection manager reconnects to it.
    Fixed,
    /// Ask these Sentinels.
    Sentinel(Box<tokio::sync::Mutex<SentinelClient>>),
    /// A Redis Cluster (see [`Cluster`]).
    Cluster(Box<Cluster>),
}

/// A Redis Cluster's client and current connection.
///
/// The cluster client follows `MOVED` redirections, but after a connection error it only
/// reconnects to the same address: when a master dies and its replica takes over, nothing
/// would ever tell it of the new master. So, as with Sentinel, a connection-level error
/// drops the connection (at most once per [`CLUSTER_RENEW_AFTER`]), and the next operation
/// builds a new one, which reads the slot map afresh from the configured nodes.
pub(crate) struct Cluster {
    client: redis::cluster::ClusterClient,
    config: redis::cluster::ClusterConfig,
    /// The connection and when it was made; `None` after a connection-level failure.
    current: Mutex<Option<(ClusterConnection, std::time::Instant)>>,
    /// Built inside a runtime (the connection spawns its tasks).
    started: bool,
    /// A client per configured node for the subscription, tried in turn.
    seeds: Vec<Client>,
    next: AtomicUsize,
}

/// The shortest life of a cluster connection before a failure may replace it (so a burst of
/// failing requests does not rebuild it for each).
const CLUSTER_RENEW_AFTER: Duration = Duration::from_millis(250);

impl Cluster {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(ClusterConnection, std::time::Instant)>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn conn(&self) -> Result<ClusterConnection, RedisError> {
        if !self.started {
            return Err(not_started());
        }
        let mut current = self.lock();
        if let Some((conn, _)) = current.as_ref() {
            return Ok(conn.clone());
        }
        // Connects in the background; the first command waits for it (bounded by the timeouts).
        let conn = self.client.get_pending_async_connection_with_config(self.config.clone());
        *current = Some((conn.clone(), std::time::Instant::now()));
        Ok(conn)
    }

    fn failed(&self) {
        let mut current = self.lock();
        if current.as_ref().is_some_and(|(_, made)| made.elapsed() >= CLUSTER_RENEW_AFTER) {
            tracing::info!("session store (redis): cluster connection failed; reading the slot map again");
            *current = None;
        }
    }
}

/// A connection to the store: one server (or the master the Sentinels name), or a cluster.
/// Both are multiplexed and cheap to clone.
#[derive(Clone)]
pub(crate) enum Conn {
    /// One server.
    One(ConnectionManager),
    /// A Redis Cluster (commands routed by their first key's slot).
    Cluster(ClusterConnection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Conn::One(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::One(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::One(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// The current connection and how to find the next one.
pub(crate) struct Backend {
    target: Target,
    config: ConnectionManagerConfig,
    /// The connected client and its manager; `None` until resolved (Sentinel) or after a
    /// connection-level failure (Sentinel).
    current: Mutex<Option<(Client, ConnectionManager)>>,
    timeout: Duration,
}

/// The password, read from its file or variable (never inline in the configuration).
fn password(
    cfg: &RedisConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<zeroize::Zeroizing<String>>, RedisSetupError> {
    Ok(match (&cfg.password_file, &cfg.password_env) {
        (Some(_), Some(_)) => return Err(RedisSetupError::TwoPasswords),
        (Some(path), None) => {
            let text = std::fs::read_to_string(path)
                .map_err(|source| RedisSetupError::Read { path: path.display().to_string(), source })?;
            Some(zeroize::Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_owned()))
        }
        (None, Some(var)) => {
            Some(zeroize::Zeroizing::new(env(var).ok_or_else(|| RedisSetupError::MissingEnv(var.clone()))?))
        }
        (None, None) => None,
    })
}

fn read_ca(cfg: &RedisConfig) -> Result<Option<Vec<u8>>, RedisSetupError> {
    cfg.ca_file
        .as_ref()
        .map(|path| {
            std::fs::read(path).map_err(|source| RedisSetupError::Read { path: path.display().to_string(), source })
        })
        .transpose()
}

/// The connection settings of a server (`url`, or a cluster node) with the ACL user and
/// password, and whether it is TLS.
fn node_info(cfg: &RedisConfig, url: &str, password: Option<&str>) -> Result<(ConnectionInfo, bool), RedisSetupError> {
    let url = url::Url::parse(url).map_err(|e| RedisSetupError::BadUrl(format!("{url:?}: {e}")))?;
    let tls = match url.scheme() {
        "redis" => false,
        "rediss" => true,
        other => return Err(RedisSetupError::BadUrl(format!("scheme {other:?}: use redis:// or rediss://"))),
    };
    if url.password().is_some() {
        return Err(RedisSetupError::PasswordInUrl);
    }
    if cfg.ca_file.is_some() && !tls {
        return Err(RedisSetupError::CaWithoutTls);
    }
    let info = url.into_connection_info().map_err(|e| RedisSetupError::BadUrl(e.to_string()))?;
    let mut settings = info.redis_settings().clone();
    if let Some(user) = &cfg.username {
        settings = settings.set_username(user);
    }
    if let Some(password) = password {
        settings = settings.set_password(password);
    }
    Ok((info.set_redis_settings(settings), tls))
}

/// A client of one server (`url`, or a cluster node for the subscription).
fn node_client(info: ConnectionInfo, ca: Option<&[u8]>) -> Result<Client, RedisSetupError> {
    let built = match ca {
        Some(pem) => {
            Client::build_with_tls(info, redis::TlsCertificates { client_tls: None, root_cert: Some(pem.to_vec()) })
        }
        None => Client::open(info),
    };
    built.map_err(|e| RedisSetupError::Client(e.to_string()))
}

/// The client of a single server from `url`.
fn fixed_client(cfg: &RedisConfig, url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Client, RedisSetupError> {
    let password = password(cfg, env)?;
    let (info, _) = node_info(cfg, url, password.as_ref().map(|p| p.as_str()))?;
    node_client(info, read_ca(cfg)?.as_deref())
}

/// The cluster client's seed nodes (with the same TLS, CA and ACL settings each) and a
/// client per node for the subscription.
fn cluster_clients(
    cfg: &RedisConfig,
    env: &dyn Fn(&str) -> Option<String>,
    timeout: Duration,
) -> Result<(redis::cluster::ClusterClient, Vec<Client>), RedisSetupError> {
    let password = password(cfg, env)?;
    let mut infos = Vec::with_capacity(cfg.cluster.len());
    let mut any_tls = None;
    for url in &cfg.cluster {
        let (info, tls) = node_info(cfg, url, password.as_ref().map(|p| p.as_str()))?;
        if any_tls.replace(tls).is_some_and(|before| before != tls) {
            return Err(RedisSetupError::MixedClusterTls);
        }
        infos.push(info);
    }
    let ca = read_ca(cfg)?;
    let seeds = infos.iter().map(|info| node_client(info.clone(), ca.as_deref())).collect::<Result<_, _>>()?;
    // One quick retry, then the error (as for one server): a request waits about two
    // timeouts at most, and the next operation retries.
    let mut builder = ClusterClientBuilder::new(infos)
        .connection_timeout(timeout)
        .response_timeout(timeout)
        .retries(1)
        .min_retry_wait(50)
        .max_retry_wait(200);
    if let Some(pem) = ca {
        builder = builder.certs(redis::TlsCertificates { client_tls: None, root_cert: Some(pem) });
    }
    let client = builder.build().map_err(|e| RedisSetupError::Client(e.to_string()))?;
    Ok((client, seeds))
}

/// A Sentinel address `host:port`; over TLS when `tls` (then verified against the CA the
/// builder is given).
fn sentinel_addr(text: &str, tls: bool) -> Result<ConnectionAddr, RedisSetupError> {
    let bad = || RedisSetupError::BadSentinel(text.to_owned());
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    let port = port.parse().map_err(|_| bad())?;
    Ok(if tls {
        ConnectionAddr::TcpTls { host: host.to_owned(), port, insecure: false, tls_params: None }
    } else {
        ConnectionAddr::Tcp(host.to_owned(), port)
    })
}

/// The Sentinel client for `sentinels` + `master_name`.
fn sentinel_client(cfg: &RedisConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<SentinelClient, RedisSetupError> {
    let name = cfg.master_name.as_deref().filter(|n| !n.is_empty()).ok_or(RedisSetupError::NoMasterName)?;
    // With a CA: TLS to the Sentinels and to the master they name, both verified against it
    // (a deployment with `tls-port` on both, and `tls-replication yes`).
    let ca = read_ca(cfg)?;
    let addrs = cfg.sentinels.iter().map(|s| sentinel_addr(s, ca.is_some())).collect::<Result<Vec<_>, _>>()?;
    let mut builder = SentinelClientBuilder::new(addrs, name, SentinelServerType::Master)
        .map_err(|e| RedisSetupError::Client(e.to_string()))?;
    if let Some(pem) = ca {
        let certificates = || redis::TlsCertificates { client_tls: None, root_cert: Some(pem.clone()) };
        builder = builder
            .set_client_to_sentinel_certificates(certificates())
            .set_client_to_redis_tls_mode(redis::TlsMode::Secure)
            .set_client_to_redis_certificates(certificates());
    }
    if let Some(user) = &cfg.username {
        builder = builder.set_client_to_redis_username(user);
    }
    if let Some(password) = password(cfg, env)? {
        builder = builder.set_client_to_redis_password(password.as_str());
    }
    builder.build().map_err(|e| RedisSetupError::Client(e.to_string()))
}

/// Whether `e` means "this connection (or this server as master) is gone".
fn connection_level(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_timeout()
        || e.code() == Some("READONLY")
        || e.to_string().contains("READONLY")
}

impl Backend {
    /// Validates the settings; connects nothing yet.
    pub(crate) fn new(cfg: &RedisConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<Backend, RedisSetupError> {
        let timeout = Duration::from_millis(cfg.timeout_ms.max(1));
        // One quick retry, then the error: a request waits for at most about two timeouts,
        // never for a long reconnect back-off. The next operation retries.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let in_runtime = tokio::runtime::Handle::try_current().is_ok();
        let (target, current) = match (&cfg.url, cfg.sentinels.is_empty(), cfg.cluster.is_empty()) {
            (Some(url), true, true) => (Target::Fixed, Some(fixed_client(cfg, url, env)?)),
            (None, false, true) => {
                (Target::Sentinel(Box::new(tokio::sync::Mutex::new(sentinel_client(cfg, env)?))), None)
            }
            (None, true, false) => {
                let (client, seeds) = cluster_clients(cfg, env, timeout)?;
                let config =
                    redis::cluster::ClusterConfig::new().set_connection_timeout(timeout).set_response_timeout(timeout);
                let cluster = Cluster {
                    client,
                    config,
                    current: Mutex::new(None),
                    started: in_runtime,
                    seeds,
                    next: AtomicUsize::new(0),
                };
                (Target::Cluster(Box::new(cluster)), None)
            }
            _ => return Err(RedisSetupError::OneTarget),
        };
        let current = match current {
            // Inside a runtime only: the manager spawns its reconnect task.
            Some(client) if in_runtime => {
                let manager = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
                    .map_err(|e| RedisSetupError::Client(e.to_string()))?;
                Some((client, manager))
            }
            _ => None,
        };
        Ok(Backend { target, config, current: Mutex::new(current), timeout })
    }

    /// Whether this backend can connect at all (built inside a runtime).
    pub(super) fn started(&self) -> bool {
        match &self.target {
            Target::Fixed => self.lock().is_some(),
            Target::Sentinel(_) => tokio::runtime::Handle::try_current().is_ok(),
            Target::Cluster(cluster) => cluster.started,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Client, ConnectionManager)>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The connection to the master (or to the cluster).
    pub(crate) async fn conn(&self) -> Result<Conn, RedisError> {
        if let Target::Cluster(cluster) = &self.target {
            return cluster.conn().map(Conn::Cluster);
        }
        if let Some((_, manager)) = self.lock().as_ref() {
            return Ok(Conn::One(manager.clone()));
        }
        self.resolve().await.map(|(_, manager)| Conn::One(manager))
    }

    /// A client for the subscription connection: the master's, or (cluster) the next
    /// configured node's, so a dead node is left for another at the next attempt.
    pub(super) async fn client(&self) -> Result<Client, RedisError> {
        if let Target::Cluster(cluster) = &self.target {
            let at = cluster.next.fetch_add(1, Ordering::Relaxed);
            return cluster.seeds.get(at % cluster.seeds.len().max(1)).cloned().ok_or_else(not_started);
        }
        if let Some((client, _)) = self.lock().as_ref() {
            return Ok(client.clone());
        }
        self.resolve().await.map(|(client, _)| client)
    }

    /// Asks the Sentinels for the master and connects to it.
    async fn resolve(&self) -> Result<(Client, ConnectionManager), RedisError> {
        let Target::Sentinel(sentinel) = &self.target else {
            return Err(not_started());
        };
        let asked = tokio::time::timeout(self.timeout * 2, async { sentinel.lock().await.async_get_client().await });
        let client = match asked.await {
            Ok(found) => found?,
            Err(_) => return Err(RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))),
        };
        let mut current = self.lock();
        if let Some((known, manager)) = current.as_ref() {
            // Another request resolved it meanwhile.
            if known.get_connection_info().addr() == client.get_connection_info().addr() {
                return Ok((known.clone(), manager.clone()));
            }
        }
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), self.config.clone())?;
        tracing::info!(master = %client.get_connection_info().addr(), "session store (redis): master from the sentinels");
        *current = Some((client.clone(), manager.clone()));
        Ok((client, manager))
    }

    /// Notes a failed operation: a connection-level failure makes the next operation ask the
    /// Sentinels again (Sentinel) or read the slot map afresh (cluster, see [`Cluster`]).
    pub(crate) fn failed(&self, e: &RedisError) {
        if !connection_level(e) {
            return;
        }
        match &self.target {
            Target::Fixed => {}
            Target::Sentinel(_) => *self.lock() = None,
            Target::Cluster(cluster) => cluster.failed(),
        }
    }
}

fn not_started() -> RedisError {
    RedisError::from((redis::ErrorKind::Client, "redis store not started (no runtime)"))
}
