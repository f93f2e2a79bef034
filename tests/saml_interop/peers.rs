//! The third-party SAML peers the interop tests run as real processes: Debian's `xmlsec1` and
//! pysaml2 (PyPI, in `tests/peers/saml/.venv`, made by `tests/peers/saml/setup.sh`). A missing
//! peer skips a test with a message, unless `AISGATE_REQUIRE_PEERS` is set (`tools/test`),
//! where it fails it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Where the pysaml2 scripts and their venv live.
pub fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/saml")
}

fn missing(peer: &str, install: &str) {
    assert!(std::env::var_os("AISGATE_REQUIRE_PEERS").is_none(), "{peer} is required ({install})");
    eprintln!("skipping: {peer} not found ({install})");
}

/// The `xmlsec1` binary, when it runs.
pub fn xmlsec1() -> Option<PathBuf> {
    let ok = Command::new("xmlsec1").arg("--version").output().is_ok_and(|o| o.status.success());
    if ok {
        Some(PathBuf::from("xmlsec1"))
    } else {
        missing("xmlsec1", "apt-get install xmlsec1");
        None
    }
}

/// The venv's Python with pysaml2 importable (pysaml2 also needs `xmlsec1`).
pub fn pysaml2() -> Option<PathBuf> {
    let python = peers_dir().join(".venv/bin/python");
    let ok = xmlsec1().is_some()
        && Command::new(&python).args(["-c", "import saml2"]).output().is_ok_and(|o| o.status.success());
    if ok {
        Some(python)
    } else {
        missing("pysaml2", "tests/peers/saml/setup.sh, after apt-get install xmlsec1 python3-venv");
        None
    }
}

/// Runs a peer command; `Ok(stdout)` on exit 0, else `Err(stderr)`.
pub fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout)))
    }
}

/// `validate.py` (pysaml2) with `args`: `Ok(summary)` when pysaml2 accepts, `Err(reason)` when
/// it refuses.
pub fn validate(python: &Path, args: &[String]) -> Result<serde_json::Value, String> {
    let out = run(Command::new(python).arg("-W").arg("ignore").arg(peers_dir().join("validate.py")).args(args))?;
    serde_json::from_str(out.trim()).map_err(|e| format!("validator printed no JSON ({e}): {out}"))
}

/// The pysaml2 IdP (`idp.py`) as a child process; killed when dropped.
pub struct PysamlIdp {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl PysamlIdp {
    /// Starts `idp.py` with `args` and waits for the port it prints.
    pub fn start(python: &Path, args: &[String]) -> PysamlIdp {
        let mut child = Command::new(python)
            .arg("-W")
            .arg("ignore")
            .arg(peers_dir().join("idp.py"))
            .args(args)
            // The IdP exits when its stdin closes, so it never outlives this test process.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("idp.py starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("idp.py prints its port");
        let port: u16 = line.trim().strip_prefix("PORT ").and_then(|p| p.parse().ok()).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("idp.py did not start: {line:?}")
        });
        PysamlIdp { child, base: format!("http://127.0.0.1:{port}") }
    }

    /// What the IdP received so far (`/log`).
    pub async fn log(&self) -> Vec<serde_json::Value> {
        let body = reqwest::get(format!("{}/log", self.base)).await.unwrap().text().await.unwrap();
        serde_json::from_str(&body).unwrap()
    }

    /// The last event of `kind` in the log.
    pub async fn last(&self, kind: &str) -> serde_json::Value {
        let log = self.log().await;
        let errors: Vec<_> = log.iter().filter(|e| e["event"] == "error").collect();
        log.iter()
            .rev()
            .find(|e| e["event"] == kind)
            .cloned()
            .unwrap_or_else(|| panic!("the IdP saw no {kind}; its errors: {errors:#?}"))
    }
}

impl Drop for PysamlIdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SSP_WWW: &str = "/usr/share/simplesamlphp/www";

/// Whether SimpleSAMLphp (Debian) and the PHP CLI that serves it are installed.
pub fn simplesamlphp() -> bool {
    let ok = Path::new(SSP_WWW).join("saml2/idp/SSOService.php").is_file()
        && Command::new("php").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        missing("SimpleSAMLphp", "apt-get install --no-install-recommends simplesamlphp php-cli php-xml webfs");
    }
    ok
}

/// SimpleSAMLphp as an IdP under PHP's built-in server, configured by
/// `tests/peers/saml/simplesamlphp/` (see its README.txt); killed when dropped.
pub struct SspIdp {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl SspIdp {
    /// Starts SimpleSAMLphp with the IdP keys `keys`, entityID `entity_id`, the SP metadata
    /// file `sp_metadata` (read per request) and the test user's `attributes` (URI → values).
    pub async fn start(
        dir: &Path,
        keys: &RsaFiles,
        entity_id: &str,
        sp_metadata: &Path,
        attributes: &serde_json::Value,
    ) -> SspIdp {
        std::fs::copy(&keys.key, dir.join("idp.key")).unwrap();
        std::fs::copy(&keys.cert, dir.join("idp.pem")).unwrap();
        // PHP's server needs a port number: take a free one from the kernel.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let base = format!("http://127.0.0.1:{port}");
        let log = std::fs::File::create(dir.join("php.log")).unwrap();
        let child = Command::new("php")
            .args(["-S", &format!("127.0.0.1:{port}"), "-t", SSP_WWW])
            .env("SIMPLESAMLPHP_CONFIG_DIR", peers_dir().join("simplesamlphp"))
            .env("AISGATE_SSP_BASE", &base)
            .env("AISGATE_SSP_DIR", dir)
            .env("AISGATE_SSP_ENTITY_ID", entity_id)
            .env("AISGATE_SSP_SP_METADATA", sp_metadata)
            .env("AISGATE_SSP_ATTRIBUTES", attributes.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("php -S starts");
        let idp = SspIdp { child, base };
        // Readiness, not timing: wait until the server answers (or give up after ~20 s).
        for _ in 0..400 {
            if reqwest::get(idp.metadata_url()).await.is_ok_and(|r| r.status() == 200) {
                return idp;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("SimpleSAMLphp did not start: {}", std::fs::read_to_string(dir.join("php.log")).unwrap_or_default());
    }

    /// The IdP metadata URL.
    pub fn metadata_url(&self) -> String {
        format!("{}/saml2/idp/metadata.php", self.base)
    }
}

impl Drop for SspIdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An RSA key and self-signed certificate (`sim::certs::rsa_identity`) written to
/// `dir/<name>.key` and `dir/<name>.pem`, for the peers that read files.
pub struct RsaFiles {
    /// Key file.
    pub key: PathBuf,
    /// Certificate file.
    pub cert: PathBuf,
    /// The generated identity.
    pub id: aisgate::sim::certs::RsaIdentity,
}

pub fn rsa_identity(dir: &Path, name: &str) -> RsaFiles {
    let id = aisgate::sim::certs::rsa_identity(name).unwrap();
    let files = RsaFiles { key: dir.join(format!("{name}.key")), cert: dir.join(format!("{name}.pem")), id };
    std::fs::write(&files.key, &files.id.key_pem).unwrap();
    std::fs::write(&files.cert, &files.id.cert_pem).unwrap();
    files
}
