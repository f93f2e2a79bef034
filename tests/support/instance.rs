//! A second gateway instance in the test process: the same configuration file as a
//! [`Gateway`] built anew and served on its own ports, as the second gateway of a pair
//! behind a load balancer (shared sessions on Redis, Sentinel or Cluster).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;

use super::Gateway;

/// Another instance of gateway `a`: the same configuration file (same public URL, session
/// keys, providers, Redis) built anew and served on its own ports, as the second gateway of
/// a pair behind a load balancer.
pub struct Instance {
    pub addr: SocketAddr,
    pub ops: SocketAddr,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Instance {
    pub async fn of(a: &Gateway) -> Instance {
        let path = a.stack_dir.join("aisgate.toml");
        let config = aisgate::config::load(&path).unwrap_or_else(|e| panic!("{e:?}"));
        let gw = aisgate::gateway::Gateway::build_with_clock(
            &config,
            &path,
            &aisgate::gateway::process_env,
            a.clock.clone(),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ops = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (addr, ops_addr) = (listener.local_addr().unwrap(), ops.local_addr().unwrap());
        aisgate::run::spawn_provider_refresh(&gw);
        let limits = aisgate::run::limits(&config);
        let public = vec![aisgate::listen::PublicListener { listener, tls: None }];
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(aisgate::listen::serve(gw, public, ops, limits, Duration::from_secs(1), async {
            let _ = rx.await;
        }));
        Instance {
            addr,
            ops: ops_addr,
            client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
            stop: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.addr.port())
    }

    pub async fn get_json(&self, path: &str, cookie: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .header("accept", "application/json")
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
