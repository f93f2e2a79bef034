//! The `aisgate` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// mimalloc: per-thread free lists suit a proxy's many short-lived allocations better than
// glibc malloc (measured in bench/; see the README there).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Reverse-proxy authentication gateway for Czech public-administration web apps.
#[derive(Parser)]
#[command(name = "aisgate", version, about)]
struct Cli {
    /// Configuration file (for the default `run` command).
    #[arg(long, short, global = false)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Run {
        /// Configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a configuration and print a summary; exits non-zero with file:line:column errors.
    ///
    /// With `--explain URL`: which app, path readings, rules and providers decide a request for
    /// URL, and whether it is served (as the identity in `--as`, or without a session); exits 0
    /// when served, 1 when not.
    Check {
        /// Configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Explain the gateway's decision for this URL (`https://host/path` or `/path`).
        #[arg(long, value_name = "URL")]
        explain: Option<String>,
        /// With `--explain`: decide as this identity (JSON in the shape of the gateway's
        /// `Identity`: `provider`, `access_roles`, `agenda_roles`, `loa`, `organisation`, …).
        #[arg(long = "as", value_name = "IDENTITY.json", requires = "explain")]
        as_identity: Option<PathBuf>,
    },
    /// Make the running gateway reload its configuration (like SIGHUP), through
    /// `POST /admin/reload` on its ops listener with the `[admin] token_file` token. Exits 0
    /// when the new configuration is in use, 1 when it was refused (the errors are printed;
    /// the running one stays).
    Reload {
        /// Configuration file of the running gateway (for the ops address and admin token).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print the SAML SP metadata of a provider (what `/.aisgate/saml/NAME/metadata` serves).
    SamlMetadata {
        /// Configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Name of the `kind = "saml"` provider.
        #[arg(long, short)]
        provider: String,
    },
    /// Account links JIP/KAAS ↔ CAAIS on the configured `[links]` database: import, export,
    /// list, delete. Every change is an audit event.
    Links {
        /// Configuration file.
        #[arg(long, short)]
        config: PathBuf,
        #[command(subcommand)]
        action: LinksAction,
    },
    /// List or end sessions through the running gateway's admin API (`[admin] token_file`).
    Sessions {
        #[command(flatten)]
        target: aisgate::admin::cli::Target,
        #[command(subcommand)]
        command: aisgate::admin::cli::SessionsCommand,
    },
    /// Switch an app's maintenance mode through the running gateway's admin API.
    Maintenance {
        #[command(flatten)]
        target: aisgate::admin::cli::Target,
        #[command(subcommand)]
        command: aisgate::admin::cli::MaintenanceCommand,
    },
    /// Start a local demo: gateway + echo upstream + simulated JIP/KAAS and NIA (SAML) IdPs.
    Demo {
        /// Gateway address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Ops address.
        #[arg(long, default_value = "127.0.0.1:9090")]
        ops_listen: SocketAddr,
        /// Proxy to this upstream instead of the built-in echo server.
        #[arg(long)]
        upstream: Option<String>,
        /// Simulated IdP login host.
        #[arg(long, default_value = "127.0.0.1:8081")]
        sim_login_listen: SocketAddr,
        /// Simulated IdP web-service host (mutual TLS).
        #[arg(long, default_value = "127.0.0.1:8443")]
        sim_ws_listen: SocketAddr,
        /// Turn off access logs (benchmarks).
        #[arg(long)]
        no_access_log: bool,
        /// Keep sessions in this Redis (`redis://host:port`) instead of memory.
        #[arg(long, value_name = "REDIS_URL")]
        session_store: Option<String>,
    },
}

#[derive(Subcommand)]
enum LinksAction {
    /// Import links from a CSV or JSON file: all or nothing, errors name the line.
    Import {
        /// `.csv` (header bsi,legacy_id,legacy_username,legacy_organisation) or `.json`.
        file: PathBuf,
    },
    /// Export every link to FILE (`.csv` or `.json`, created mode 0600) or to stdout.
    Export {
        /// Target file; stdout when absent.
        file: Option<PathBuf>,
        /// Format on stdout.
        #[arg(long, value_parser = ["csv", "json"], default_value = "json")]
        format: String,
    },
    /// Print every link as CSV.
    List,
    /// Delete the link of a BSI or of a legacy id.
    Delete {
        /// The CAAIS user id.
        #[arg(long, conflicts_with = "legacy_id", required_unless_present = "legacy_id")]
        bsi: Option<String>,
        /// The legacy JIP/KAAS UzivatelId.
        #[arg(long)]
        legacy_id: Option<String>,
    },
}

fn links_command(config: &std::path::Path, action: LinksAction) -> i32 {
    use aisgate::links::cli::Command;
    use aisgate::links::file::Format;
    use aisgate::links::LinkKey;
    let command = match action {
        LinksAction::Import { file } => Command::Import { file },
        LinksAction::Export { file, format } => {
            Command::Export { file, format: if format == "csv" { Format::Csv } else { Format::Json } }
        }
        LinksAction::List => Command::List,
        LinksAction::Delete { bsi: Some(bsi), .. } => Command::Delete { key: LinkKey::Bsi(bsi) },
        LinksAction::Delete { legacy_id: Some(id), .. } => Command::Delete { key: LinkKey::Legacy(id) },
        LinksAction::Delete { .. } => return 2,
    };
    aisgate::links::cli::run(config, command)
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()
}

/// Runs `task` to completion on a new runtime; its exit code, or 1 without a runtime.
fn block_on(task: impl std::future::Future<Output = i32>) -> i32 {
    match runtime() {
        Ok(rt) => rt.block_on(task),
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            1
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match (cli.command, cli.config) {
        (Some(Command::Check { config, explain: None, .. }), _) => aisgate::run::check(&config),
        (Some(Command::Check { config, explain: Some(url), as_identity }), _) => {
            aisgate::run::explain(&config, &url, as_identity.as_deref())
        }
        (Some(Command::Reload { config }), _) => block_on(aisgate::reload::cli(&config)),
        (Some(Command::SamlMetadata { config, provider }), _) => {
            match aisgate::provider::saml::metadata_from_config(&config, &provider) {
                Ok(xml) => {
                    print!("{xml}");
                    0
                }
                Err(e) => {
                    eprintln!("{e}");
                    2
                }
            }
        }
        (Some(Command::Run { config }), _) | (None, Some(config)) => block_on(aisgate::run::run(&config)),
        (Some(Command::Sessions { target, command }), _) => block_on(aisgate::admin::cli::sessions(&target, command)),
        (Some(Command::Maintenance { target, command }), _) => {
            block_on(aisgate::admin::cli::maintenance(&target, command))
        }
        (Some(Command::Links { config, action }), _) => links_command(&config, action),
        (Some(demo @ Command::Demo { .. }), _) => run_demo(demo),
        (None, None) => {
            eprintln!("usage: aisgate run --config FILE | aisgate check --config FILE | aisgate demo (see --help)");
            2
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// `aisgate demo`: the simulators exist only in a build with the `sim` feature.
#[cfg(feature = "sim")]
fn run_demo(demo: Command) -> i32 {
    let Command::Demo { listen, ops_listen, upstream, sim_login_listen, sim_ws_listen, no_access_log, session_store } =
        demo
    else {
        return 2;
    };
    let opts = aisgate::sim::stack::StackOptions {
        listen,
        ops_listen,
        upstream,
        sim_login_listen,
        sim_ws_listen,
        access_log: !no_access_log,
        session_extra: session_store
            .map(|url| format!("store = \"redis\"\n[session.redis]\nurl = {}\n", toml_edit::value(url)))
            .unwrap_or_default(),
        saml: Some(aisgate::sim::stack::SamlStackProvider::default()),
        ..Default::default()
    };
    block_on(aisgate::demo::run(opts))
}

/// `aisgate demo` in a production build (no simulators compiled in).
#[cfg(not(feature = "sim"))]
fn run_demo(_demo: Command) -> i32 {
    eprintln!(
        "this aisgate was built without the simulators; run the demo with `cargo run --release --features sim -- demo`"
    );
    2
}
