//! The real SOAP peer of tests/peers/soap: a SOAP 1.1 + 1.2 service (Python standard library,
//! started as a child process) and the zeep client (PyPI, in tests/peers/soap/.venv made by
//! its setup.sh, which tools/test runs). Without python3 or the venv the tests skip with a
//! message, or fail when `AISGATE_REQUIRE_PEERS=1`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// The peer's directory.
pub fn peer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/soap")
}

fn venv_python() -> PathBuf {
    peer_dir().join(".venv/bin/python")
}

/// Whether the peer can run: `false` (after printing why) lets a test skip; with
/// `AISGATE_REQUIRE_PEERS=1` a missing peer fails the test instead.
pub fn available(test: &str) -> bool {
    let why = if !venv_python().is_file() {
        format!("{} has no .venv (run {}/setup.sh)", peer_dir().display(), peer_dir().display())
    } else {
        return true;
    };
    if std::env::var("AISGATE_REQUIRE_PEERS").is_ok_and(|v| v == "1") {
        panic!("{test}: the SOAP peer (zeep) is required (AISGATE_REQUIRE_PEERS=1) but {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
    false
}

/// A running SOAP service; killed when dropped.
pub struct SoapService {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl SoapService {
    /// Starts the service on an ephemeral port and waits for its `READY` line.
    pub fn start() -> SoapService {
        let mut child = Command::new(venv_python())
            .arg(peer_dir().join("service.py"))
            .arg("0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the SOAP service starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("READY line");
        let port = line.trim().strip_prefix("READY ").unwrap_or_else(|| panic!("SOAP service said {line:?}"));
        SoapService { child, base: format!("http://127.0.0.1:{port}") }
    }

    /// SOAP requests that reached the service so far.
    pub async fn posts(&self) -> u64 {
        let stats: Value =
            reqwest::get(format!("{}/__stats", self.base)).await.unwrap().json().await.expect("stats JSON");
        stats["posts"].as_u64().expect("posts")
    }
}

impl Drop for SoapService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the zeep client with `spec` (see tests/peers/soap/client.py) off the async workers
/// (the gateway under test serves on the same runtime) and returns its per-call results.
pub async fn zeep(spec: Value) -> Vec<Value> {
    let out = tokio::task::spawn_blocking(move || {
        Command::new(venv_python())
            .arg(peer_dir().join("client.py"))
            .arg(spec.to_string())
            .output()
            .expect("zeep client runs")
    })
    .await
    .unwrap();
    assert!(out.status.success(), "zeep client failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("zeep client output {e}: {}", String::from_utf8_lossy(&out.stdout)))
}
