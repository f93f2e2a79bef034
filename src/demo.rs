//! `aisgate demo`: the gateway, an echo upstream and simulated JIP/KAAS and NIA IdPs on localhost.
//!
//! The demo writes a real configuration file (and real certificates for mutual TLS) into a
//! temporary directory and loads it through the same code path as `aisgate run`, so what you
//! see is what production runs — except the simulator, which only this command can start.

use std::time::Duration;

use crate::listen::{self, PublicListener};
use crate::sim;
use crate::sim::stack::{StackError, StackListener, StackOptions};

/// Runs the demo until Ctrl-C. Returns the exit code.
pub async fn run(opts: StackOptions) -> i32 {
    crate::run::init_logging(crate::config::LogFormat::Human, "info");
    match start(opts).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("demo failed: {e}");
            if let StackError::Listen { listener, .. } = e {
                let flag = match listener {
                    StackListener::Gateway => "--listen",
                    StackListener::Ops => "--ops-listen",
                };
                eprintln!(
                    "Another program (another demo?) holds that address: stop it, or choose a free one with \
                     `aisgate demo {flag} 127.0.0.1:PORT` (`aisgate demo --help` lists every address)."
                );
            }
            1
        }
    }
}

/// Removes the demo's directory (keys, certificates, configuration) when dropped: on Ctrl-C,
/// SIGTERM, an error while serving or a panic alike.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn start(opts: StackOptions) -> Result<(), StackError> {
    let ops_listen = opts.ops_listen;
    // `prepare` removes the directory itself when it fails (e.g. a port is busy).
    let stack = sim::stack::prepare(opts).await?;
    let _remove = RemoveOnDrop(stack.dir.clone());
    crate::run::spawn_provider_refresh(&stack.gateway);
    println!(
        "\n================================================================================\n\
         \x20 aisgate DEMO — SIMULATED identity provider, NOT FOR PRODUCTION\n\
         ================================================================================\n\
         \x20 Open:            {}/\n\
         \x20 Upstream:        {}\n\
         \x20 Simulated KAAS:  {} (login), {} (SOAP, mutual TLS)\n\
         \x20 Simulated NIA:   {} (SAML; SP metadata at {}/.aisgate/saml/nia/metadata)\n\
         \x20 Ops:             http://{}/metrics  /readyz  /healthz\n\
         \x20 JWKS:            {}/.aisgate/jwks.json\n\
         \x20 Config written:  {}\n\
         \x20 Stop with Ctrl-C.\n\
         ================================================================================\n",
        stack.public_base,
        stack.upstream,
        stack.sim.login_base,
        stack.sim.ws_base,
        stack.saml.as_ref().map_or("-", |s| s.base.as_str()),
        stack.public_base,
        ops_listen,
        stack.public_base,
        stack.config_path.display()
    );
    let limits = crate::run::limits(&stack.config);
    let public = vec![PublicListener { listener: stack.listener, tls: None }];
    listen::serve(stack.gateway, public, stack.ops, limits, Duration::from_secs(5), listen::shutdown_signal()).await;
    Ok(())
}
