//! `aisgate demo`: the gateway, an echo upstream and a simulated JIP/KAAS IdP on localhost.
//!
//! The demo writes a real configuration file (and real certificates for mutual TLS) into a
//! temporary directory and loads it through the same code path as `aisgate run`, so what you
//! see is what production runs — except the simulator, which only this command can start.

use std::net::SocketAddr;
use std::time::Duration;

use crate::listen::{self, PublicListener};
use crate::sim;

/// Demo options.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Gateway address.
    pub listen: SocketAddr,
    /// Ops address.
    pub ops_listen: SocketAddr,
    /// Use this upstream instead of the built-in echo server.
    pub upstream: Option<String>,
    /// Simulator login host address.
    pub sim_login_listen: SocketAddr,
    /// Simulator web-service (mTLS) address.
    pub sim_ws_listen: SocketAddr,
    /// Write access logs.
    pub access_log: bool,
}

/// Runs the demo until Ctrl-C. Returns the exit code.
pub async fn run(opts: DemoOptions) -> i32 {
    crate::run::init_logging(crate::config::LogFormat::Human, "info");
    match start(opts).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("demo failed: {e}");
            1
        }
    }
}

async fn start(opts: DemoOptions) -> Result<(), String> {
    let stack = sim::stack::prepare(sim::stack::StackOptions {
        listen: opts.listen,
        ops_listen: opts.ops_listen,
        upstream: opts.upstream.clone(),
        sim_login_listen: opts.sim_login_listen,
        sim_ws_listen: opts.sim_ws_listen,
        access_log: opts.access_log,
        ..Default::default()
    })
    .await?;
    crate::run::spawn_provider_refresh(&stack.gateway);
    println!(
        "\n================================================================================\n\
         \x20 aisgate DEMO — SIMULATED identity provider, NOT FOR PRODUCTION\n\
         ================================================================================\n\
         \x20 Open:            {}/\n\
         \x20 Upstream:        {}\n\
         \x20 Simulated KAAS:  {} (login), {} (SOAP, mutual TLS)\n\
         \x20 Ops:             http://{}/metrics  /readyz  /healthz\n\
         \x20 JWKS:            {}/.aisgate/jwks.json\n\
         \x20 Config written:  {}\n\
         \x20 Stop with Ctrl-C.\n\
         ================================================================================\n",
        stack.public_base,
        stack.upstream,
        stack.sim.login_base,
        stack.sim.ws_base,
        opts.ops_listen,
        stack.public_base,
        stack.config_path.display()
    );
    let limits = crate::run::limits(&stack.config);
    let public = vec![PublicListener { listener: stack.listener, tls: None }];
    listen::serve(stack.gateway, public, stack.ops, limits, Duration::from_secs(5), listen::shutdown_signal()).await;
    let _ = std::fs::remove_dir_all(&stack.dir);
    Ok(())
}
