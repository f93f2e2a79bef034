//! Where the Redis store's connection goes: one server (`url`), or the master that a set of
//! Redis Sentinels names (`sentinels` + `master_name`), followed across failovers.
//!
//! With a single server the connection manager reconnects to the same address by itself.
//! With Sentinel that is not enough: after a failover the old address is dead or a read-only
//! replica. Any connection-level error (I/O, refused, timeout, `READONLY`) therefore drops the
//! current connection, and the next operation (or the health ping, once a second) asks the
//! Sentinels for the master again. A request during the switch gets the 503 page, never an
//! answer from a stale replica.

use std::sync::Mutex;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{Client, ConnectionAddr, IntoConnectionInfo, RedisError};

use super::RedisSetupError;
use crate::config::RedisConfig;

/// How to reach the master.
enum Target {
    /// One address; the connection manager reconnects to it.
    Fixed,
    /// Ask these Sentinels.
    Sentinel(Box<tokio::sync::Mutex<SentinelClient>>),
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

/// The client of a single server from `url`.
fn fixed_client(cfg: &RedisConfig, url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Client, RedisSetupError> {
    let url = url::Url::parse(url).map_err(|e| RedisSetupError::BadUrl(e.to_string()))?;
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
    let password = password(cfg, env)?;
    let info = url.into_connection_info().map_err(|e| RedisSetupError::BadUrl(e.to_string()))?;
    let mut settings = info.redis_settings().clone();
    if let Some(user) = &cfg.username {
        settings = settings.set_username(user);
    }
    if let Some(password) = &password {
        settings = settings.set_password(password.as_str());
    }
    let info = info.set_redis_settings(settings);
    let built = match read_ca(cfg)? {
        Some(pem) => Client::build_with_tls(info, redis::TlsCertificates { client_tls: None, root_cert: Some(pem) }),
        None => Client::open(info),
    };
    built.map_err(|e| RedisSetupError::Client(e.to_string()))
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
        let (target, current) = match (&cfg.url, cfg.sentinels.is_empty()) {
            (Some(url), true) => (Target::Fixed, Some(fixed_client(cfg, url, env)?)),
            (None, false) => (Target::Sentinel(Box::new(tokio::sync::Mutex::new(sentinel_client(cfg, env)?))), None),
            _ => return Err(RedisSetupError::UrlOrSentinels),
        };
        let current = match current {
            // Inside a runtime only: the manager spawns its reconnect task.
            Some(client) if tokio::runtime::Handle::try_current().is_ok() => {
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
        match self.target {
            Target::Fixed => self.lock().is_some(),
            Target::Sentinel(_) => tokio::runtime::Handle::try_current().is_ok(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Client, ConnectionManager)>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The connection to the master.
    pub(crate) async fn conn(&self) -> Result<ConnectionManager, RedisError> {
        if let Some((_, manager)) = self.lock().as_ref() {
            return Ok(manager.clone());
        }
        self.resolve().await.map(|(_, manager)| manager)
    }

    /// The master's client (for the subscription connection).
    pub(super) async fn client(&self) -> Result<Client, RedisError> {
        if let Some((client, _)) = self.lock().as_ref() {
            return Ok(client.clone());
        }
        self.resolve().await.map(|(client, _)| client)
    }

    /// Asks the Sentinels for the master and connects to it.
    async fn resolve(&self) -> Result<(Client, ConnectionManager), RedisError> {
        let Target::Sentinel(sentinel) = &self.target else {
            return Err(RedisError::from((redis::ErrorKind::Client, "redis store not started (no runtime)")));
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

    /// Notes a failed operation: with Sentinel, a connection-level failure makes the next
    /// operation ask the Sentinels again.
    pub(crate) fn failed(&self, e: &RedisError) {
        if matches!(self.target, Target::Sentinel(_)) && connection_level(e) {
            *self.lock() = None;
        }
    }
}
