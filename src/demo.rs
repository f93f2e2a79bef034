//! `aisgate demo`: the gateway, an echo upstream and a simulated JIP/KAAS IdP on localhost.
//!
//! The demo writes a real configuration file (and real certificates for mutual TLS) into a
//! temporary directory and loads it through the same code path as `aisgate run`, so what you
//! see is what production runs — except the simulator, which only this command can start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;

use crate::gateway::{self, Gateway};
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

fn demo_dir() -> std::io::Result<PathBuf> {
    let id = crate::session::random_id();
    let name: String = id[..6].iter().map(|b| format!("{b:02x}")).collect();
    let dir = std::env::temp_dir().join(format!("aisgate-demo-{name}"));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
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
    let dir = demo_dir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let pki = sim::certs::generate(&dir)?;
    let gateway_listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", opts.listen))?;
    let port = gateway_listener.local_addr().map_err(|e| e.to_string())?.port();
    let public = format!("http://localhost:{port}");
    let upstream = match &opts.upstream {
        Some(u) => u.clone(),
        None => {
            let addr = sim::echo::start(SocketAddr::from(([127, 0, 0, 1], 0))).await.map_err(|e| e.to_string())?;
            format!("http://{addr}")
        }
    };
    let sim = sim::kaas::start(
        sim::kaas::KaasSimConfig {
            ats_id: "AISGATE_DEMO".into(),
            callback_url: format!("{public}/.aisgate/callback/jip"),
            logout_prefix: format!("{public}/"),
            token_ttl: Duration::from_secs(300),
            style: crate::provider::kaas::soap::ResponseStyle::Quirks(Default::default()),
            users: sim::kaas::demo_users(),
        },
        &pki,
        opts.sim_login_listen,
        opts.sim_ws_listen,
    )
    .await?;
    let key = base64::engine::general_purpose::STANDARD.encode(crate::session::random_id());
    let key_file = dir.join("session.key");
    std::fs::write(&key_file, key).map_err(|e| e.to_string())?;
    let config_text = format!(
        r#"# Written by `aisgate demo`. The simulator URLs below exist only while the demo runs.
[server]
listen = ["{listen}"]
public_base_url = "{public}"

[ops]
listen = "{ops}"

[log]
access_log = {access_log}

[session]
keys = [{{ id = "demo", file = "{key_file}" }}]

[identity_token]
algorithm = "ES256"

[[provider]]
name = "jip"
kind = "kaas"
display_name = "JIP/KAAS (simulátor)"
ats_id = "AISGATE_DEMO"
version = "v4_2"
login_url = "{login_url}"
logout_url = "{logout_url}"
auth_ws_url = "{ws_url}"
client_cert = "{client_cert}"
client_key = "{client_key}"
ca_bundle = "{ca}"

[[app]]
name = "echo"
upstream = "{upstream}"
providers = ["jip"]
public_paths = ["/public"]
logout_paths = ["/logout"]

[app.headers]
identity_token = true
"#,
        listen = opts.listen,
        ops = opts.ops_listen,
        access_log = opts.access_log,
        key_file = key_file.display(),
        login_url = sim.login_url(),
        logout_url = sim.logout_url(),
        ws_url = sim.auth_ws_url(),
        client_cert = pki.client_cert.display(),
        client_key = pki.client_key.display(),
        ca = pki.ca_cert.display(),
    );
    let config_path = dir.join("aisgate-demo.toml");
    std::fs::write(&config_path, config_text).map_err(|e| e.to_string())?;
    let config = crate::config::load(&config_path)
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))?;
    let gw = Gateway::build(&config, &config_path, &gateway::process_env)
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))?;
    let ops = tokio::net::TcpListener::bind(opts.ops_listen)
        .await
        .map_err(|e| format!("cannot listen on {} (ops): {e}", opts.ops_listen))?;
    crate::run::spawn_provider_refresh(&gw);
    println!(
        "\n================================================================================\n\
         \x20 aisgate DEMO — SIMULATED identity provider, NOT FOR PRODUCTION\n\
         ================================================================================\n\
         \x20 Open:            {public}/\n\
         \x20 Upstream:        {upstream}\n\
         \x20 Simulated KAAS:  {} (login), {} (SOAP, mutual TLS)\n\
         \x20 Ops:             http://{}/metrics  /readyz  /healthz\n\
         \x20 JWKS:            {public}/.aisgate/jwks.json\n\
         \x20 Config written:  {}\n\
         \x20 Stop with Ctrl-C.\n\
         ================================================================================\n",
        sim.login_base,
        sim.ws_base,
        opts.ops_listen,
        config_path.display()
    );
    let public_listeners = vec![PublicListener { listener: gateway_listener, tls: None }];
    listen::serve(
        gw,
        public_listeners,
        ops,
        crate::run::limits(&config),
        Duration::from_secs(5),
        listen::shutdown_signal(),
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
