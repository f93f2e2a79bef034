//! `aisgate links …`: import, export, list and delete account links on the configured
//! database directly (SQLite allows this next to a running gateway: WAL, busy timeout).
//! Every change is a `link_change` audit event (`source = "cli"`) in the configured audit
//! log; labels use the gateway's label key, so they match the gateway's log lines.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::file::{self, Format};
use super::{Change, LinkKey, LinkStore};

/// What to do.
#[derive(Debug)]
pub enum Command {
    /// Import a CSV or JSON file (all or nothing).
    Import {
        /// The file (`.csv` or `.json`).
        file: PathBuf,
    },
    /// Write every link to a file (format by extension) or to stdout (`format`).
    Export {
        /// The file; stdout when absent.
        file: Option<PathBuf>,
        /// Format for stdout.
        format: Format,
    },
    /// Print every link as CSV.
    List,
    /// Delete one link.
    Delete {
        /// By BSI or by legacy id.
        key: LinkKey,
    },
}

/// Runs `command` against the `[links]` of the config at `config_path`; the exit code.
pub fn run(config_path: &Path, command: Command) -> i32 {
    let config = match crate::config::load(config_path) {
        Ok(c) => c,
        Err(errors) => {
            crate::run::print_errors(&errors);
            return 2;
        }
    };
    let Some(cfg) = &config.links else {
        eprintln!("{}: no [links] table: account links are not configured", config_path.display());
        return 2;
    };
    match crate::session::keyring::Keyring::load(&config.session.keys, &crate::gateway::process_env) {
        Ok(keyring) => crate::identity::label::set_key(keyring.log_label_key()),
        Err(e) => {
            eprintln!("[session] {e}");
            return 2;
        }
    }
    let audit = match crate::audit::Audit::start(&config.audit, crate::clock::Clock::system()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("[audit] {e}: link changes must be audited");
            return 2;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return 1;
        }
    };
    // Inside the runtime: the Redis store's connection manager needs one.
    let store = match runtime.block_on(async { super::open(cfg, &config.session, &crate::gateway::process_env) }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("[links] {e}");
            return 1;
        }
    };
    let code = runtime.block_on(execute(store.as_ref(), &audit, command));
    if !audit.flush(Duration::from_secs(5)) {
        eprintln!("warning: the audit log did not confirm every event within 5 s");
    }
    code
}

async fn execute(store: &dyn LinkStore, audit: &crate::audit::Audit, command: Command) -> i32 {
    let origin = crate::audit::Origin::none();
    match command {
        Command::Import { file } => {
            let Some(format) = Format::of(&file) else {
                eprintln!("{}: the file name must end in .csv or .json", file.display());
                return 2;
            };
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("{}: {e}", file.display());
                    return 1;
                }
            };
            let result = match file::parse(&text, format, crate::session::now_unix()) {
                Ok((links, lines)) => store.import(links, lines).await,
                Err(e) => Err(e),
            };
            super::audit(audit, origin, Change::imported("cli", &result));
            match result {
                Ok(added) => {
                    println!("imported {added} new link(s) from {}", file.display());
                    0
                }
                Err(e) => {
                    eprintln!("{}: {e}; nothing was imported", file.display());
                    1
                }
            }
        }
        Command::Export { file: target, format } => {
            let format = target.as_deref().and_then(Format::of).unwrap_or(format);
            let text = match store.list().await.and_then(|all| file::render(&all, format)) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("{e}");
                    return 1;
                }
            };
            match target {
                None => {
                    print!("{text}");
                    0
                }
                Some(path) => match write_private(&path, &text) {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("{}: {e}", path.display());
                        1
                    }
                },
            }
        }
        Command::List => {
            match store.list().await.and_then(|all| file::render(&all, Format::Csv).map(|t| (all.len(), t))) {
                Ok((n, text)) => {
                    print!("{text}");
                    eprintln!("{n} link(s)");
                    0
                }
                Err(e) => {
                    eprintln!("{e}");
                    1
                }
            }
        }
        Command::Delete { key } => {
            let result = store.delete(key).await;
            super::audit(audit, origin, Change::deleted("cli", &result));
            match result {
                Ok(Some(link)) => {
                    println!("deleted the link {} ↔ {}", link.bsi, link.legacy.id);
                    0
                }
                Ok(None) => {
                    eprintln!("no such link");
                    1
                }
                Err(e) => {
                    eprintln!("{e}");
                    1
                }
            }
        }
    }
}

/// Exports hold personal identifiers: the file is created with mode 0600.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}
