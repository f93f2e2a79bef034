//! Real Redis processes for tests: a `redis-server` on a loopback port in its own temporary
//! directory, and `redis-sentinel`s watching it. Both skip (return `None` with a message)
//! when the binary is missing, unless `AISGATE_REQUIRE_PEERS` is set, where that fails.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `redis-server` process on a loopback port, persisting to its own directory (so a
/// `SHUTDOWN SAVE` and restart keeps the data, as a production restart with persistence).
pub struct Redis {
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub(crate) child: Option<Child>,
    /// Extra server arguments (TLS); `{port}` is replaced by the port.
    extra: Vec<String>,
    /// Whether the port speaks TLS (only TCP acceptance is probed then).
    tls: bool,
}

pub fn redis_binary() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join("redis-server")).find(|p| p.is_file()));
    if found.is_none() {
        assert!(
            std::env::var_os("AISGATE_REQUIRE_PEERS").is_none(),
            "redis-server is required (apt-get install redis-server)"
        );
        eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
    }
    found
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Redis {
    /// Starts a server, or `None` (test skipped) without the binary.
    pub async fn start() -> Option<Redis> {
        Redis::start_with(Vec::new(), false).await
    }

    /// Starts a server with extra arguments; `tls`: the port is a TLS port.
    pub async fn start_with(extra: Vec<String>, tls: bool) -> Option<Redis> {
        let binary = redis_binary()?;
        let mut redis = Redis { port: free_port(), dir: tempfile::tempdir().unwrap(), child: None, extra, tls };
        redis.spawn(&binary).await;
        Some(redis)
    }

    async fn spawn(&mut self, binary: &std::path::Path) {
        let port = self.port.to_string();
        let mut args: Vec<String> = if self.tls {
            vec!["--port".into(), "0".into(), "--tls-port".into(), port.clone()]
        } else {
            vec!["--port".into(), port.clone()]
        };
        args.extend(self.extra.iter().map(|a| a.replace("{port}", &port)));
        let child = Command::new(binary)
            .args(&args)
            .args(["--bind", "127.0.0.1", "--save", "3600 1", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--daemonize", "no", "--protected-mode", "yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        // Wait (bounded) until it answers.
        for _ in 0..200 {
            if self.tls {
                if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                    return;
                }
            } else if let Ok(mut conn) = self.client().get_multiplexed_async_connection().await {
                if redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server on port {} did not come up", self.port);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).unwrap()
    }

    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        self.client().get_multiplexed_async_connection().await.unwrap()
    }

    /// Stops the server, saving its data first (what a restart with persistence does).
    pub async fn stop(&mut self) {
        let mut conn = self.conn().await;
        let _ = redis::cmd("SHUTDOWN").arg("SAVE").query_async::<()>(&mut conn).await;
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// Kills the server (a crash: nothing saved).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory.
    pub async fn restart(&mut self) {
        let binary = redis_binary().unwrap();
        self.spawn(&binary).await;
    }

    /// `[session]` lines pointing a gateway at this server.
    pub fn session_extra(&self) -> String {
        format!("store = \"redis\"\n[session.redis]\nurl = \"{}\"\ntimeout_ms = 300\n", self.url())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL: nothing to save at the end of a test.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A `redis-sentinel` monitoring `master` as `mymaster` (quorum 1, quick failure detection).
pub struct Sentinel {
    pub port: u16,
    _dir: tempfile::TempDir,
    child: Child,
}

impl Sentinel {
    pub async fn start(master: &Redis) -> Option<Sentinel> {
        Sentinel::start_with_quorum(master, 1).await
    }

    /// A Sentinel of a group that needs `quorum` of its members to agree the master is down.
    pub async fn start_with_quorum(master: &Redis, quorum: u32) -> Option<Sentinel> {
        Sentinel::start_configured(master, quorum, None).await
    }

    /// A Sentinel speaking only TLS (its own port and to the master), with the server
    /// certificate, key and CA of `tls`.
    pub async fn start_tls(master: &Redis, tls: &aisgate::sim::certs::TestPki) -> Option<Sentinel> {
        Sentinel::start_configured(master, 1, Some(tls)).await
    }

    async fn start_configured(
        master: &Redis,
        quorum: u32,
        tls: Option<&aisgate::sim::certs::TestPki>,
    ) -> Option<Sentinel> {
        let Some(binary) = which("redis-sentinel") else {
            assert!(
                std::env::var_os("AISGATE_REQUIRE_PEERS").is_none(),
                "redis-sentinel is required (apt-get install redis-sentinel)"
            );
            eprintln!("SKIPPED: redis-sentinel is not installed (apt-get install redis-sentinel)");
            return None;
        };
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("sentinel.conf");
        let listen = match tls {
            None => format!("port {port}\n"),
            Some(pki) => format!(
                "port 0\ntls-port {port}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\n\
                 tls-auth-clients no\ntls-replication yes\n",
                pki.server_cert.display(),
                pki.server_key.display(),
                pki.ca_cert.display()
            ),
        };
        std::fs::write(
            &conf,
            format!(
                "{listen}bind 127.0.0.1\ndaemonize no\ndir {}\n\
                 sentinel monitor mymaster 127.0.0.1 {} {quorum}\n\
                 sentinel down-after-milliseconds mymaster 500\n\
                 sentinel failover-timeout mymaster 3000\n",
                dir.path().display(),
                master.port
            ),
        )
        .unwrap();
        let child = Command::new(binary).arg(&conf).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        // Owned by the guard from here on: killed and waited for on every path.
        let sentinel = Sentinel { port, _dir: dir, child };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Some(sentinel);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-sentinel did not come up");
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(name)).find(|p| p.is_file()))
}

/// A Redis Cluster of real `redis-server`s on loopback ports: `masters` masters with
/// `replicas` replicas each, made with `redis-cli --cluster create`, up once every node says
/// `cluster_state:ok`. Quick failure detection (`cluster-node-timeout` 1000 ms).
pub struct RedisCluster {
    pub nodes: Vec<Redis>,
    /// With TLS (ports, bus and replication): the CA the test's own clients trust.
    ca: Option<PathBuf>,
}

impl RedisCluster {
    /// Starts the cluster, or `None` (test skipped) without `redis-server` / `redis-cli`.
    pub async fn start(masters: usize, replicas: usize) -> Option<RedisCluster> {
        RedisCluster::start_with(masters, replicas, None).await
    }

    /// The same, speaking only TLS with the server certificate of `pki` (`tls-cluster`,
    /// `tls-replication`; clients need no certificate).
    pub async fn start_tls(
        masters: usize,
        replicas: usize,
        pki: &aisgate::sim::certs::TestPki,
    ) -> Option<RedisCluster> {
        RedisCluster::start_with(masters, replicas, Some(pki)).await
    }

    async fn start_with(
        masters: usize,
        replicas: usize,
        pki: Option<&aisgate::sim::certs::TestPki>,
    ) -> Option<RedisCluster> {
        redis_binary()?;
        let Some(cli) = which("redis-cli") else {
            assert!(
                std::env::var_os("AISGATE_REQUIRE_PEERS").is_none(),
                "redis-cli is required (apt-get install redis-tools)"
            );
            eprintln!("SKIPPED: redis-cli is not installed (apt-get install redis-tools)");
            return None;
        };
        let mut nodes = Vec::new();
        for _ in 0..masters * (1 + replicas) {
            // The bus port is given (the default, port + 10000, may be past 65535).
            let bus = free_port().to_string();
            let mut extra: Vec<String> =
                ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout"]
                    .into_iter()
                    .map(str::to_owned)
                    .chain(["1000".to_owned(), "--cluster-port".to_owned(), bus])
                    .collect();
            if let Some(pki) = pki {
                for (flag, value) in [
                    ("--tls-cert-file", pki.server_cert.display().to_string()),
                    ("--tls-key-file", pki.server_key.display().to_string()),
                    ("--tls-ca-cert-file", pki.ca_cert.display().to_string()),
                    ("--tls-auth-clients", "no".to_owned()),
                    // The bus and replication links present a client certificate of the CA.
                    ("--tls-client-cert-file", pki.client_cert.display().to_string()),
                    ("--tls-client-key-file", pki.client_key.display().to_string()),
                    ("--tls-cluster", "yes".to_owned()),
                    ("--tls-replication", "yes".to_owned()),
                ] {
                    extra.extend([flag.to_owned(), value]);
                }
            }
            nodes.push(Redis::start_with(extra, pki.is_some()).await?);
        }
        let ca = pki.map(|p| p.ca_cert.clone());
        let tls_args: Vec<String> = match &ca {
            Some(ca) => vec!["--tls".into(), "--cacert".into(), ca.display().to_string()],
            None => Vec::new(),
        };
        let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let created = tokio::task::spawn_blocking(move || {
            // Bounded: a cluster whose nodes cannot meet would make it wait for ever.
            Command::new("timeout")
                .arg("30")
                .arg(cli)
                .args(&tls_args)
                .arg("--cluster")
                .arg("create")
                .args(&addrs)
                .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
                .output()
        })
        .await
        .unwrap()
        .unwrap();
        assert!(created.status.success(), "redis-cli --cluster create: {}", String::from_utf8_lossy(&created.stdout));
        let cluster = RedisCluster { nodes, ca };
        cluster.wait_ok(Duration::from_secs(20)).await;
        Some(cluster)
    }

    /// Waits until every running node reports `cluster_state:ok` and knows every slot.
    pub async fn wait_ok(&self, limit: Duration) {
        let until = tokio::time::Instant::now() + limit;
        loop {
            let mut all = true;
            for node in self.nodes.iter().filter(|n| n.child.is_some()) {
                let Ok(mut conn) = self.client(node).get_multiplexed_async_connection().await else {
                    all = false;
                    break;
                };
                let info: String = redis::cmd("CLUSTER").arg("INFO").query_async(&mut conn).await.unwrap_or_default();
                if !info.contains("cluster_state:ok") || !info.contains("cluster_slots_ok:16384") {
                    all = false;
                    break;
                }
            }
            if all {
                return;
            }
            assert!(tokio::time::Instant::now() < until, "the cluster did not reach cluster_state:ok");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The node URLs (`redis://127.0.0.1:port`, or `rediss://localhost:port` with TLS).
    pub fn urls(&self) -> Vec<String> {
        match self.ca {
            None => self.nodes.iter().map(Redis::url).collect(),
            Some(_) => self.nodes.iter().map(|n| format!("rediss://localhost:{}", n.port)).collect(),
        }
    }

    fn tls_certs(&self) -> Option<redis::TlsCertificates> {
        let pem = std::fs::read(self.ca.as_ref()?).unwrap();
        Some(redis::TlsCertificates { client_tls: None, root_cert: Some(pem) })
    }

    /// A client of one node (over TLS trusting the CA, with TLS).
    pub fn client(&self, node: &Redis) -> redis::Client {
        match self.tls_certs() {
            None => node.client(),
            Some(certs) => redis::Client::build_with_tls(format!("rediss://localhost:{}", node.port), certs).unwrap(),
        }
    }

    /// A connection to one node.
    pub async fn node_conn(&self, node: &Redis) -> redis::aio::MultiplexedConnection {
        self.client(node).get_multiplexed_async_connection().await.unwrap()
    }

    /// `[session]` lines pointing a gateway at the cluster (two of its nodes as seeds, as an
    /// operator would list a few).
    pub fn session_extra(&self) -> String {
        let seeds: Vec<String> = self.urls().into_iter().take(2).map(|u| format!("\"{u}\"")).collect();
        format!("store = \"redis\"\n[session.redis]\ncluster = [{}]\ntimeout_ms = 300\n", seeds.join(", "))
    }

    /// A cluster client for the test's own look-ups.
    pub async fn conn(&self) -> redis::cluster_async::ClusterConnection {
        let mut builder = redis::cluster::ClusterClientBuilder::new(self.urls());
        if let Some(certs) = self.tls_certs() {
            builder = builder.certs(certs);
        }
        builder.build().unwrap().get_async_connection().await.unwrap()
    }

    /// The slot of `key` (asked of the server).
    pub async fn slot(&self, key: &str) -> u16 {
        let mut conn = self.conn().await;
        redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query_async(&mut conn).await.unwrap()
    }

    /// The index in `nodes` of the master serving `slot` (from `CLUSTER SLOTS` of a running
    /// node: ranges of `[first, last, [master host, master port, …], replicas…]`).
    pub async fn master_of(&self, slot: u16) -> usize {
        let node = self.nodes.iter().find(|n| n.child.is_some()).expect("a running node");
        let mut conn = self.node_conn(node).await;
        let ranges: Vec<(u16, u16, (String, u16))> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async::<Vec<Vec<redis::Value>>>(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .map(|range| {
                let (first, last, master) = (&range[0], &range[1], &range[2]);
                redis::from_redis_value_ref::<(u16, u16)>(&redis::Value::Array(vec![first.clone(), last.clone()]))
                    .map(|(f, l)| (f, l, redis::from_redis_value_ref::<(String, u16)>(&trim2(master)).unwrap()))
                    .unwrap()
            })
            .collect();
        let (_, _, (_, port)) = ranges
            .into_iter()
            .find(|(f, l, _)| (*f..=*l).contains(&slot))
            .unwrap_or_else(|| panic!("no master serves slot {slot}"));
        self.nodes.iter().position(|n| n.port == port).unwrap()
    }

    /// Kills node `i` (a crash).
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }
}

/// The first two fields (host, port) of a `CLUSTER SLOTS` node entry.
fn trim2(node: &redis::Value) -> redis::Value {
    match node {
        redis::Value::Array(parts) => redis::Value::Array(parts.iter().take(2).cloned().collect()),
        other => other.clone(),
    }
}
