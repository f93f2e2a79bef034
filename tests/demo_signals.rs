//! `aisgate demo` and signals (issue 14 item 9): the demo's temporary directory (the keys of
//! its test PKI, the SAML SP and the session key) is removed however the demo ends — a Ctrl-C
//! or SIGTERM while it is still generating its keys included, which used to kill the process
//! with the directory left behind — and a SIGHUP (a terminal closing, or a reload habit from
//! `aisgate run`) no longer kills it: it is logged and ignored.
//!
//! Each test runs the real binary with `TMPDIR` pointing at its own empty directory, so the
//! demo's `aisgate-*` directory is the only thing that can appear there.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_aisgate");

/// How long a debug build may take to start the demo or to stop it.
const PATIENCE: Duration = Duration::from_secs(120);

/// A running `aisgate demo` with its output collected line by line.
struct Demo {
    child: Child,
    tmp: tempfile::TempDir,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Demo {
    fn start() -> Demo {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(BIN)
            .args(["demo", "--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0"])
            .args(["--sim-login-listen", "127.0.0.1:0", "--sim-ws-listen", "127.0.0.1:0", "--no-access-log"])
            .env("TMPDIR", tmp.path())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("aisgate demo starts");
        let (tx, lines) = mpsc::channel();
        let stdout: Box<dyn Read + Send> = Box::new(child.stdout.take().expect("stdout"));
        let stderr: Box<dyn Read + Send> = Box::new(child.stderr.take().expect("stderr"));
        for pipe in [stdout, stderr] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            });
        }
        Demo { child, tmp, lines, seen: Vec::new() }
    }

    /// The demo's `aisgate-*` directories in its `TMPDIR` (and anything else found there).
    fn left(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.tmp.path()).expect("TMPDIR").map(|e| e.expect("entry").path()).collect()
    }

    /// Waits for the demo's directory to appear: the demo has begun generating its keys.
    fn wait_for_directory(&self) -> PathBuf {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(dir) = self.left().into_iter().next() {
                return dir;
            }
            assert!(Instant::now() < deadline, "no directory appeared in TMPDIR");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits for an output line containing `needle`; returns it.
    fn wait_for_line(&mut self, needle: &str) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {needle:?}; output:\n{}", self.seen.join("\n")),
            }
        }
    }

    fn signal(&self, name: &str) {
        let sent = Command::new("kill").args([&format!("-{name}"), &self.child.id().to_string()]).status();
        assert!(sent.expect("kill runs").success(), "kill -{name}");
    }

    /// Waits for the demo to exit; returns its status and all its output.
    fn wait_for_exit(&mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the demo did not exit; output:\n{}", self.seen.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The pipes close with the process: collect what is left.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        (status, self.seen.join("\n"))
    }

    /// The ops listener's address, from the banner's "Ops:" line.
    fn ops_addr(&mut self) -> String {
        let ops = self.wait_for_line("Ops:");
        let addr = ops.split("http://").nth(1).and_then(|rest| rest.split('/').next()).unwrap_or_default();
        assert!(!addr.ends_with(":0"), "the banner names the bound port: {ops:?}");
        addr.to_owned()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The process ended by itself (exit code 0), not killed by a signal's default action.
fn assert_exited_cleanly(status: ExitStatus, output: &str) {
    assert_eq!(status.signal(), None, "killed by signal {:?}; output:\n{output}", status.signal());
    assert_eq!(status.code(), Some(0), "{output}");
}

fn assert_removed(demo: &Demo, dir: &Path, output: &str) {
    assert!(!dir.exists(), "{} (with the demo's keys) was left behind; output:\n{output}", dir.display());
    assert!(demo.left().is_empty(), "left in TMPDIR: {:?}", demo.left());
}

#[test]
fn sigterm_or_ctrl_c_while_the_demo_generates_its_keys_removes_its_directory() {
    for signal in ["TERM", "INT"] {
        let mut demo = Demo::start();
        // The directory exists from before the first key is generated: signal right then.
        let dir = demo.wait_for_directory();
        let config_written = dir.join("aisgate.toml").exists();
        demo.signal(signal);
        let (status, output) = demo.wait_for_exit();
        assert!(!config_written, "SIG{signal} came after the keys were written; the test missed its moment");
        assert_exited_cleanly(status, &output);
        // The start (seconds of key generation and simulators in a debug build) is cut short:
        // the demo never announces itself.
        assert!(output.contains(&format!("demo stopped by SIG{signal} while starting")), "{output}");
        assert!(!output.contains("Stop with Ctrl-C"), "the demo went on starting after SIG{signal}: {output}");
        assert_removed(&demo, &dir, &output);
    }
}

#[test]
fn ctrl_c_once_the_demo_serves_removes_its_directory() {
    let mut demo = Demo::start();
    demo.wait_for_line("Stop with Ctrl-C");
    let dir = demo.wait_for_directory();
    assert!(dir.join("aisgate.toml").is_file(), "the demo runs from its written configuration");
    demo.signal("INT");
    let (status, output) = demo.wait_for_exit();
    assert_exited_cleanly(status, &output);
    assert!(output.contains("SIGINT: the demo stops"), "{output}");
    assert_removed(&demo, &dir, &output);
}

#[test]
fn sighup_is_logged_and_ignored_by_the_demo() {
    let mut demo = Demo::start();
    let ops = demo.ops_addr();
    demo.wait_for_line("Stop with Ctrl-C");
    let dir = demo.wait_for_directory();
    demo.signal("HUP");
    let line = demo.wait_for_line("SIGHUP ignored");
    assert!(line.contains("WARN") && line.contains("cannot reload"), "{line}");
    // Still serving: the liveness endpoint answers.
    let mut stream = std::net::TcpStream::connect(&ops).expect("the demo still listens");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(dir.exists(), "the directory stays while the demo runs");
    demo.signal("TERM");
    let (status, output) = demo.wait_for_exit();
    assert_exited_cleanly(status, &output);
    assert_removed(&demo, &dir, &output);
}
