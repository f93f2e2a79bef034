//! Test harness: a real gateway on an ephemeral port, with the simulated KAAS IdP (real mTLS)
//! and a test upstream, plus a browser-like client that does not follow redirects.

#![allow(dead_code)]

pub mod forwarded_saml;
pub mod instance;
pub mod logs;
pub mod oidc_provider;
pub mod redis_server;
pub mod soap_peer;
pub mod store_checks;
pub mod webdriver;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use aisgate::sim::stack::{prepare, Stack, StackOptions};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Titles of the gateway's Czech error pages.
pub const LOGIN_FAILED: &str = "Přihlášení se nezdařilo";
/// The IdP or its metadata cannot be reached.
pub const UNAVAILABLE: &str = "Přihlašovací služba je dočasně nedostupná";
/// No pre-login cookie, or a callback of another provider.
pub const NOT_INITIATED: &str = "Přihlášení nelze dokončit";
/// The pending login is unknown, used or expired.
pub const EXPIRED: &str = "Platnost přihlášení vypršela";

/// A running gateway.
pub struct Gateway {
    /// The gateway's test clock: tests move it forward instead of sleeping through a timeout.
    pub clock: aisgate::clock::Clock,
    pub base: String,
    pub addr: SocketAddr,
    pub ops: SocketAddr,
    pub stack_dir: std::path::PathBuf,
    pub sim: aisgate::sim::kaas::KaasSim,
    pub oidc: Vec<aisgate::sim::oidc::OidcSim>,
    pub saml: Option<aisgate::sim::saml::SamlSim>,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    pub done: tokio::task::JoinHandle<()>,
}

impl Gateway {
    pub async fn start(opts: StackOptions) -> Gateway {
        Gateway::start_inner(opts, false, |_| {}).await
    }

    /// Like `start`, on the clock `opts` names (the system clock by default) instead of a test
    /// clock: for benchmarks, where time passes.
    pub async fn start_on_clock(opts: StackOptions) -> Gateway {
        Gateway::start_clocked(opts, false, |_| {}).await
    }

    /// Like `start`, with the listener's connection limits adjusted by `tune` (sub-second
    /// timeouts the config's whole seconds cannot express).
    pub async fn start_with_limits(opts: StackOptions, tune: impl FnOnce(&mut aisgate::listen::Limits)) -> Gateway {
        Gateway::start_inner(opts, false, tune).await
    }

    /// Like `start`, with TLS termination (HTTP/2 and HTTP/1.1 by ALPN) using the test PKI's
    /// server certificate; `ca_pem` in the result trusts it.
    pub async fn start_tls(opts: StackOptions) -> (Gateway, Vec<u8>) {
        let gw = Gateway::start_inner(opts, true, |_| {}).await;
        let ca = std::fs::read(gw.stack_dir.join("ca.pem")).unwrap();
        (gw, ca)
    }

    async fn start_inner(
        mut opts: StackOptions,
        tls: bool,
        tune: impl FnOnce(&mut aisgate::listen::Limits),
    ) -> Gateway {
        if !opts.clock.is_test() {
            opts.clock = aisgate::clock::Clock::test();
        }
        Gateway::start_clocked(opts, tls, tune).await
    }

    async fn start_clocked(opts: StackOptions, tls: bool, tune: impl FnOnce(&mut aisgate::listen::Limits)) -> Gateway {
        let clock = opts.clock.clone();
        let stack: Stack = prepare(opts).await.expect("stack starts");
        let acceptor = tls.then(|| {
            let config = aisgate::tls::server_config(&stack.pki.server_cert, &stack.pki.server_key).unwrap();
            tokio_rustls::TlsAcceptor::from(config)
        });
        let addr = stack.listener.local_addr().unwrap();
        let ops = stack.ops.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        aisgate::run::spawn_provider_refresh(&stack.gateway);
        let mut limits = aisgate::run::limits(&stack.config);
        tune(&mut limits);
        let public = vec![aisgate::listen::PublicListener { listener: stack.listener, tls: acceptor }];
        let grace = Duration::from_secs(stack.config.server.shutdown_grace_secs);
        let done = tokio::spawn(aisgate::listen::serve(stack.gateway, public, stack.ops, limits, grace, async {
            let _ = rx.await;
        }));
        let base = if tls { format!("https://localhost:{}", addr.port()) } else { stack.public_base };
        Gateway {
            clock,
            base,
            addr,
            ops,
            stack_dir: stack.dir,
            sim: stack.sim,
            oidc: stack.oidc,
            saml: stack.saml,
            client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
            stop: Some(tx),
            done,
        }
    }

    pub async fn with_upstream(upstream: &str) -> Gateway {
        Gateway::start(StackOptions { upstream: Some(upstream.to_owned()), ..Default::default() }).await
    }

    /// Triggers graceful shutdown (what SIGTERM does).
    pub fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A browser navigation.
    pub async fn navigate(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(self.url(path)).header("accept", "text/html,application/xhtml+xml");
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send().await.unwrap()
    }

    /// Takes a login start `start` to the IdP, as a browser does: follows the redirect (302)
    /// or submits the auto-submit form (200, SAML HTTP-POST binding). Returns the IdP's answer.
    pub async fn to_idp(&self, start: reqwest::Response) -> reqwest::Response {
        match start.status().as_u16() {
            302 => self.client.get(location(&start)).send().await.unwrap(),
            200 => {
                let (action, fields) = parse_form(&start.text().await.unwrap());
                self.client.post(action).form(&fields).send().await.unwrap()
            }
            other => panic!("login start answered {other}"),
        }
    }

    /// Logs in through the simulated IdP as demo user `user`; returns the `Cookie` header
    /// value carrying the session, and the final redirect target.
    pub async fn login_to(&self, path: &str, user: usize) -> (String, String) {
        let start = self.navigate(path, None).await;
        assert_eq!(start.status(), 302, "unauthenticated navigation redirects to the IdP");
        let done = self.finish_kaas_login(&start, user).await;
        assert_eq!(done.status(), 302, "callback completes the login");
        let session = set_cookie(&done, "aisgate_session").expect("session cookie");
        (format!("aisgate_session={session}"), location(&done))
    }

    /// Follows a KAAS login redirect `start` (the gateway's answer carrying the pre-login cookie
    /// and `Location` at the simulator): picks demo user `user` and redeems the callback in the
    /// same browser; returns the callback's answer.
    pub async fn finish_kaas_login(&self, start: &reqwest::Response, user: usize) -> reqwest::Response {
        let login_cookie = set_cookie(start, "aisgate_login").expect("pre-login cookie");
        let form = self.client.post(location(start)).form(&[("user", user.to_string())]).send().await.unwrap();
        assert_eq!(form.status(), 303, "simulator redirects to the callback");
        let callback = location(&form);
        assert!(callback.starts_with(&self.url("/.aisgate/callback/jip?sessionId=")), "{callback}");
        self.client
            .get(&callback)
            .header("cookie", format!("aisgate_login={login_cookie}"))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap()
    }

    pub async fn login(&self) -> String {
        self.login_to("/", 0).await.0
    }

    /// Runs a login up to the IdP's redirect back: navigates to `path`, picks demo user `user`
    /// at the simulated IdP, and returns the callback URL (with `sessionId`) and the `Cookie`
    /// header value binding the login to this browser. Nothing is redeemed yet.
    pub async fn begin_login(&self, path: &str, user: usize) -> (String, String) {
        let start = self.navigate(path, None).await;
        assert_eq!(start.status(), 302, "unauthenticated navigation redirects to the IdP");
        let login_cookie = set_cookie(&start, "aisgate_login").expect("pre-login cookie");
        let form = self.client.post(location(&start)).form(&[("user", user.to_string())]).send().await.unwrap();
        assert_eq!(form.status(), 303, "simulator redirects to the callback");
        let callback = location(&form);
        assert!(callback.starts_with(&self.url("/.aisgate/callback/jip?sessionId=")), "{callback}");
        (callback, format!("aisgate_login={login_cookie}"))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.shutdown();
        let _ = std::fs::remove_dir_all(&self.stack_dir);
    }
}

pub fn location(resp: &reqwest::Response) -> String {
    resp.headers().get("location").expect("Location header").to_str().unwrap().to_owned()
}

/// The whole `Set-Cookie` header (with its attributes) that sets `name`.
pub fn raw_set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&prefix))
        .map(str::to_owned)
}

/// The value of a `Set-Cookie` for `name` (first one that is not a deletion).
pub fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

/// Starts a test upstream serving `handler` on an ephemeral port; returns its base URL.
pub async fn upstream<F, Fut>(handler: F) -> String
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<http_body_util::combinators::BoxBody<Bytes, std::io::Error>>> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(req).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

/// A full body response.
pub fn text(
    status: u16,
    body: impl Into<Bytes>,
) -> Response<http_body_util::combinators::BoxBody<Bytes, std::io::Error>> {
    Response::builder()
        .status(status)
        .body(Full::new(body.into()).map_err(|never: Infallible| match never {}).boxed())
        .unwrap()
}

/// An upstream that answers with the received headers as JSON.
pub async fn header_echo() -> String {
    upstream(|req: Request<Incoming>| async move {
        let map: serde_json::Map<String, serde_json::Value> = req
            .headers()
            .iter()
            .map(|(k, v)| {
                (k.as_str().to_owned(), serde_json::Value::String(String::from_utf8_lossy(v.as_bytes()).into()))
            })
            .collect();
        let body = serde_json::json!({ "path": req.uri().to_string(), "headers": map });
        text(200, body.to_string())
    })
    .await
}

/// A WebSocket upstream echoing every text frame.
pub async fn websocket_echo() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                use futures_util::{SinkExt, StreamExt};
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else { return };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() && ws.send(msg).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

impl Gateway {
    /// A complete OIDC login (query response mode) at `provider` returning to `return_to`;
    /// returns the session `Cookie` header value.
    pub async fn oidc_login(&self, provider: &str, return_to: &str) -> String {
        let encoded: String = url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect();
        let start = self.navigate(&format!("/.aisgate/login?return={encoded}&provider={provider}"), None).await;
        assert_eq!(start.status(), 302, "login redirects to the IdP");
        self.finish_oidc_login(&start, return_to, None).await
    }

    /// Follows a login redirect `start` (a gateway answer carrying the pre-login cookie and
    /// `Location` at the IdP) through the simulated IdP and the callback, sending the callback
    /// `session` (a `Cookie` value) too, as a browser that already has one does.
    pub async fn finish_oidc_login(&self, start: &reqwest::Response, return_to: &str, session: Option<&str>) -> String {
        let mut cookie = format!("aisgate_login={}", set_cookie(start, "aisgate_login").expect("pre-login cookie"));
        if let Some(session) = session {
            cookie = format!("{cookie}; {session}");
        }
        let answer = self.client.get(location(start)).send().await.unwrap();
        assert_eq!(answer.status(), 303, "the simulated IdP answers with a redirect");
        let done = self.client.get(location(&answer)).header("cookie", cookie).send().await.unwrap();
        assert_eq!(done.status(), 302, "callback completes the login");
        assert_eq!(location(&done), return_to);
        format!("aisgate_session={}", set_cookie(&done, "aisgate_session").expect("session cookie"))
    }
}

/// The CAAIS-like simulated provider `caais`: token endpoint on a separate mTLS host, RS256
/// keys without `kid`, an issuer with a trailing slash, client `MY_AIS`; `extra` lines go into
/// its provider table.
pub fn caais_provider(extra: &str) -> aisgate::sim::stack::OidcStackProvider {
    aisgate::sim::stack::OidcStackProvider::caais_like("caais", extra)
}

/// `(action, fields)` of an auto-submit form page (aisgate's form_post and SAML POST pages, a
/// SAML peer's): inputs without a name or value (a submit button) are skipped.
pub fn parse_form(page: &str) -> (String, Vec<(String, String)>) {
    fn attr(tag: &str, name: &str) -> Option<String> {
        let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        let end = tag[start..].find('"')? + start;
        Some(unescape(&tag[start..end]))
    }
    let form = &page[page.find("<form").expect("a form")..];
    let action = attr(&form[..form.find('>').unwrap()], "action").expect("form action");
    let fields = form
        .split("<input")
        .skip(1)
        .filter_map(|tag| {
            let tag = &tag[..tag.find('>')?];
            Some((attr(tag, "name")?, attr(tag, "value")?))
        })
        .collect();
    (action, fields)
}

/// HTML attribute unescaping: the named entities forms use and numeric references.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let Some(end) = rest[at..].find(';') else { break };
        let entity = &rest[at + 1..at + end];
        let c = match entity {
            "amp" => Some('&'),
            "quot" => Some('"'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => out.push(c),
            None => out.push_str(&rest[at..=at + end]),
        }
        rest = &rest[at + end + 1..];
    }
    out.push_str(rest);
    out
}

/// Sends `request` byte for byte (HTTP client libraries normalize what these tests need raw)
/// and returns the status code and the whole response text, read until the server closes
/// (or 5 s pass).
pub async fn raw_request(addr: SocketAddr, request: impl AsRef<[u8]>) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The server may answer (and close) before it has read all of a refused body.
    let _ = stream.write_all(request.as_ref()).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    (text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0), text)
}
