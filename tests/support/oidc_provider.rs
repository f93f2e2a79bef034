//! The real npm `oidc-provider` as a child process (tests/peers/oidc-provider/server.mjs), and
//! a browser that follows its redirects with its cookies but stops at the gateway.
//!
//! Shared by tests/oidc_interop.rs and benches/oidc_logins.rs. The peer needs `node` and
//! `npm ci --prefix tests/peers/oidc-provider` (tools/test runs it); without them the tests
//! skip with a message, or fail when `AISGATE_REQUIRE_PEERS=1`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use aisgate::sim::certs::TestPki;
use serde_json::{json, Map, Value};

/// The peer's directory.
pub fn peer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/oidc-provider")
}

/// Why the peer cannot run, if it cannot.
fn missing() -> Option<String> {
    let dir = peer_dir();
    if !dir.join("node_modules/oidc-provider/package.json").is_file() {
        return Some(format!("{} has no node_modules (run `npm ci --prefix {}`)", dir.display(), dir.display()));
    }
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => None,
        _ => Some("`node` is not installed".to_owned()),
    }
}

/// Whether the peer can run: `false` (after printing why) lets a test skip; with
/// `AISGATE_REQUIRE_PEERS=1` a missing peer fails the test instead.
pub fn available(test: &str) -> bool {
    let Some(why) = missing() else { return true };
    if std::env::var("AISGATE_REQUIRE_PEERS").is_ok_and(|v| v == "1") {
        panic!("{test}: the oidc-provider peer is required (AISGATE_REQUIRE_PEERS=1) but {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
    false
}

/// Which real provider the peer imitates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Trailing-slash issuer, token endpoint on a second mTLS host, RS256 without `kid`.
    Caais,
    /// Public clients with PKCE, ES256 with `kid`.
    Enviam,
}

/// A running oidc-provider.
pub struct NodeOp {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    log: PathBuf,
    /// Issuer identifier.
    pub issuer: String,
    /// Browser-facing base URL (`https://localhost:P`).
    pub rest: String,
    /// The mTLS host of the token endpoint.
    pub cert: String,
    _dir: tempfile::TempDir,
}

impl NodeOp {
    /// Starts the peer with TLS from `pki` and the given accounts (claims keyed by `sub`).
    /// `access_token_ttl`: seconds, default the library's (1 h).
    pub async fn start(
        profile: Profile,
        pki: &TestPki,
        accounts: &[Map<String, Value>],
        access_token_ttl: Option<u64>,
    ) -> NodeOp {
        let dir = tempfile::tempdir().expect("temp dir");
        let accounts: Map<String, Value> = accounts
            .iter()
            .map(|a| (a["sub"].as_str().expect("account sub").to_owned(), Value::Object(a.clone())))
            .collect();
        let config = json!({
            "profile": if profile == Profile::Caais { "caais" } else { "enviam" },
            "tls": { "cert": pki.server_cert, "key": pki.server_key, "ca": pki.ca_cert },
            "accounts": accounts,
            "access_token_ttl": access_token_ttl,
        });
        let config_path = dir.path().join("op.json");
        std::fs::write(&config_path, config.to_string()).expect("write op config");
        let log = dir.path().join("op.log");
        let mut child = Command::new("node")
            .arg(peer_dir().join("server.mjs"))
            .arg(&config_path)
            .current_dir(peer_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("op log"))
            .spawn()
            .expect("node starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut op = NodeOp {
            child,
            stdin,
            lines,
            log,
            issuer: String::new(),
            rest: String::new(),
            cert: String::new(),
            _dir: dir,
        };
        let ready: Value = serde_json::from_str(&op.next_line().await).expect("the peer's first line is JSON");
        op.issuer = ready["issuer"].as_str().expect("issuer").to_owned();
        op.rest = ready["rest"].as_str().expect("rest").to_owned();
        op.cert = ready["cert"].as_str().expect("cert").to_owned();
        op
    }

    async fn next_line(&mut self) -> String {
        match tokio::time::timeout(Duration::from_secs(20), self.lines.recv()).await {
            Ok(Some(line)) => line,
            _ => panic!("oidc-provider said nothing; its log:\n{}", self.log_text()),
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Registers a client (oidc-provider metadata plus `aisgate_account`, the `sub` its
    /// automatic login signs in) and waits for the acknowledgement.
    pub async fn register(&mut self, client: Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{client}").and_then(|()| stdin.flush()).expect("write to the peer");
        let ack: Value = serde_json::from_str(&self.next_line().await).expect("JSON acknowledgement");
        assert_eq!(ack["registered"], client["client_id"]);
    }

    /// The gateway's `[[provider]]` table for `client_id` at this provider; `extra` is appended.
    pub fn provider_table(&self, name: &str, client_id: &str, pki: &TestPki, auth: ClientAuth, extra: &str) -> String {
        let credentials = match auth {
            ClientAuth::Registered => cert_lines(&pki.client_cert, &pki.client_key),
            ClientAuth::Rogue => cert_lines(&pki.rogue_cert, &pki.rogue_key),
            ClientAuth::Public => "client_auth = \"none\"\n".to_owned(),
        };
        format!(
            "\n[[provider]]\nname = \"{name}\"\nkind = \"oidc\"\nissuer = \"{issuer}\"\nclient_id = \"{client_id}\"\n\
             {credentials}ca_bundle = \"{ca}\"\n{extra}\n",
            issuer = self.issuer,
            ca = pki.ca_cert.display(),
        )
    }

    /// A CAAIS-like confidential client: `tls_client_auth` bound to the registered certificate's
    /// subject DN, refresh tokens, back-channel logout to the gateway's provider `name`.
    pub fn caais_client(client_id: &str, gateway: &str, name: &str, account: &str) -> Value {
        let mut client = Self::client(client_id, gateway, name, account);
        client["token_endpoint_auth_method"] = json!("tls_client_auth");
        client["tls_client_auth_subject_dn"] = json!("CN=aisgate demo AIS");
        client
    }

    /// An EnviIAM-like public client (PKCE required), answering with `form_post`.
    pub fn enviam_client(client_id: &str, gateway: &str, name: &str, account: &str) -> Value {
        let mut client = Self::client(client_id, gateway, name, account);
        client["token_endpoint_auth_method"] = json!("none");
        client["id_token_signed_response_alg"] = json!("ES256");
        client
    }

    fn client(client_id: &str, gateway: &str, name: &str, account: &str) -> Value {
        json!({
            "client_id": client_id,
            "redirect_uris": [format!("{gateway}/.aisgate/callback/{name}")],
            "post_logout_redirect_uris": [format!("{gateway}/.aisgate/logged-out")],
            "backchannel_logout_uri": format!("{gateway}/.aisgate/backchannel-logout/{name}"),
            "backchannel_logout_session_required": true,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "aisgate_account": account,
        })
    }
}

fn cert_lines(cert: &Path, key: &Path) -> String {
    format!(
        "client_auth = \"tls_client_auth\"\nclient_cert = \"{}\"\nclient_key = \"{}\"\n",
        cert.display(),
        key.display()
    )
}

/// Which credentials the gateway presents at the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// The certificate the client is registered with.
    Registered,
    /// A certificate from the same CA with another subject DN.
    Rogue,
    /// None: a public client.
    Public,
}

impl Drop for NodeOp {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- oidc-provider log ---\n{}", self.log_text());
        }
    }
}

/// What the provider answered once the browser reached the gateway again.
#[derive(Debug)]
pub enum Answer {
    /// A redirect to this gateway URL (query mode, or the logout return).
    Redirect(String),
    /// An auto-submitted POST form (`form_post`): action and fields.
    Form(String, Vec<(String, String)>),
}

/// A browser at the provider: follows its redirects with its cookies (one jar, no domain
/// rules: there is one provider) and stops at the first URL under `gateway`.
pub struct OpBrowser {
    client: reqwest::Client,
    jar: Mutex<HashMap<String, String>>,
    gateway: String,
}

impl OpBrowser {
    /// A browser trusting the test CA `ca` (PEM file); `gateway` is the gateway's base URL.
    pub fn new(ca: &Path, gateway: &str) -> OpBrowser {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).expect("CA")).expect("CA PEM");
        let client = reqwest::Client::builder()
            .tls_certs_only([ca])
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        OpBrowser { client, jar: Mutex::new(HashMap::new()), gateway: gateway.to_owned() }
    }

    fn cookie_header(&self) -> String {
        let jar = self.jar.lock().expect("jar");
        jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> reqwest::Response {
        let resp = req.header("cookie", self.cookie_header()).send().await.expect("provider reachable");
        let mut jar = self.jar.lock().expect("jar");
        for raw in resp.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()) {
            let Some((name, value)) = raw.split(';').next().and_then(|kv| kv.split_once('=')) else { continue };
            let expired = raw.to_ascii_lowercase().contains("expires=thu, 01 jan 1970");
            if value.is_empty() || expired {
                jar.remove(name);
            } else {
                jar.insert(name.to_owned(), value.to_owned());
            }
        }
        resp
    }

    /// GETs `url` at the provider and follows its redirects until one leads to the gateway,
    /// or the provider answers with a page (form_post, logout confirmation).
    pub async fn visit(&self, url: &str) -> Answer {
        let resp = self.send(self.client.get(url)).await;
        self.follow(resp).await
    }

    /// GETs a JSON document at the provider.
    pub async fn json(&self, url: &str) -> Value {
        self.json_with(url, None).await
    }

    /// GETs a JSON document at the provider with `Authorization: <authorization>`.
    pub async fn json_with(&self, url: &str, authorization: Option<&str>) -> Value {
        let mut req = self.client.get(url);
        if let Some(value) = authorization {
            req = req.header("authorization", value);
        }
        let resp = self.send(req).await;
        assert_eq!(resp.status(), 200, "{url}");
        resp.json().await.expect("JSON from the provider")
    }

    /// POSTs a form at the provider, then as `visit`.
    pub async fn post(&self, url: &str, form: &[(String, String)]) -> Answer {
        let resp = self.send(self.client.post(url).form(form)).await;
        self.follow(resp).await
    }

    async fn follow(&self, mut resp: reqwest::Response) -> Answer {
        for _ in 0..10 {
            if resp.status().is_redirection() {
                let location = resp.headers()["location"].to_str().expect("ASCII Location");
                let next = resp.url().join(location).expect("Location URL").to_string();
                if next.starts_with(&self.gateway) {
                    return Answer::Redirect(next);
                }
                resp = self.send(self.client.get(&next)).await;
                continue;
            }
            let status = resp.status();
            let base = resp.url().clone();
            let page = resp.text().await.unwrap_or_default();
            assert_eq!(status, 200, "the provider answered {status}: {page}");
            let (action, fields) = parse_form(&page);
            let action = base.join(&action).expect("form action").to_string();
            return Answer::Form(action, fields);
        }
        panic!("more than 10 redirects at the provider");
    }
}

/// Runs a login at the gateway's OIDC `provider` for `path`: the gateway's redirect, the
/// provider's pages through `browser`, and the callback delivered with the pre-login cookie
/// (GET in query mode, POST for form_post). Returns the gateway's answer to the callback.
pub async fn gateway_login(gw: &super::Gateway, browser: &OpBrowser, provider: &str, path: &str) -> reqwest::Response {
    let start = gw.navigate(&format!("/.aisgate/login?return={path}&provider={provider}"), None).await;
    assert_eq!(start.status(), 302, "the gateway sends the browser to the provider");
    let cookie = format!("aisgate_login={}", super::set_cookie(&start, "aisgate_login").expect("pre-login cookie"));
    let req = match browser.visit(&super::location(&start)).await {
        Answer::Redirect(callback) => gw.client.get(callback),
        Answer::Form(action, fields) => gw.client.post(action).form(&fields),
    };
    req.header("cookie", cookie).header("accept", "text/html").send().await.expect("gateway reachable")
}

/// The first form of a page: its action and its `<input>` name/value pairs (oidc-provider's
/// form_post and logout pages put the inputs inside the form).
pub fn parse_form(page: &str) -> (String, Vec<(String, String)>) {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[start..].find('"')? + start;
        let raw = &tag[start..end];
        Some(
            raw.replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&"),
        )
    };
    let form = &page[page.find("<form").unwrap_or_else(|| panic!("no form in {page}"))..];
    let action = attr(&form[..form.find('>').expect("form tag")], "action").expect("form action");
    let fields = form
        .split("<input")
        .skip(1)
        .filter_map(|tag| Some((attr(tag, "name")?, attr(tag, "value").unwrap_or_default())))
        .collect();
    (action, fields)
}
