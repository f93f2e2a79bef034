//! A small W3C WebDriver client (JSON over HTTP, reqwest) for Debian's headless Chromium
//! driven by ChromeDriver (`chromium`, `chromium-driver`): start the driver on a free loopback
//! port, open a session, navigate, run a script, take a screenshot, read the performance log.
//!
//! Only what the browser tests use; a crate (fantoccini, thirtyfour) would add a second HTTP
//! stack and dozens of dependencies for the same five commands. When the binaries are missing
//! the tests skip with a message, or fail when `AISGATE_REQUIRE_PEERS=1`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

/// The browser and its driver, as Debian installs them.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A running ChromeDriver; killed when dropped.
pub struct Driver {
    child: Child,
    base: String,
    client: reqwest::Client,
}

/// Why the browser cannot run, if it cannot.
fn missing() -> Option<String> {
    [CHROMIUM, CHROMEDRIVER].into_iter().find(|path| !std::path::Path::new(path).is_file()).map(|path| {
        format!("{path} is not installed (Debian packages chromium and chromium-driver; tools/test installs them)")
    })
}

impl Driver {
    /// Starts ChromeDriver on a free loopback port, or returns `None` after printing why the
    /// test `test` skips; with `AISGATE_REQUIRE_PEERS=1` a missing browser fails it instead.
    pub fn start(test: &str) -> Option<Driver> {
        if let Some(why) = missing() {
            if std::env::var("AISGATE_REQUIRE_PEERS").is_ok_and(|v| v == "1") {
                panic!("{test}: headless Chromium is required (AISGATE_REQUIRE_PEERS=1) but {why}");
            }
            eprintln!("SKIPPED {test}: {why}");
            return None;
        }
        // `--port=0`: the driver picks a free port and names it on its first lines.
        let mut child = Command::new(CHROMEDRIVER)
            .args(["--port=0", "--allowed-ips=127.0.0.1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let stdout = child.stdout.take().expect("chromedriver stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut port = None;
        for line in lines.by_ref().take(20) {
            let line = line.expect("chromedriver output");
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                port = rest.trim_end_matches('.').trim().parse::<u16>().ok();
                break;
            }
        }
        // Whatever the driver writes later is read and dropped: a closed pipe would make its
        // next write fail.
        std::thread::spawn(move || lines.for_each(drop));
        let Some(port) = port else {
            let _ = child.kill();
            panic!("chromedriver did not say which port it listens on");
        };
        let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build().expect("client");
        Some(Driver { child, base: format!("http://127.0.0.1:{port}"), client })
    }

    /// Opens a headless Chromium preferring `language` (`Accept-Language` and
    /// `navigator.languages`) with a phone's viewport `width` CSS pixels wide (pixel ratio 1).
    ///
    /// Host names resolve only to loopback (`localhost`, `*.localhost`, `127.0.0.1`): any other
    /// name fails to resolve (`--host-resolver-rules`), so a page cannot reach the network even
    /// by mistake, and the performance log records every request the page tried.
    pub async fn session(&self, language: &str, width: u32) -> Session {
        let args = [
            "--headless=new".to_owned(),
            // Tests and CI run as root, where Chromium's sandbox cannot start.
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--hide-scrollbars".to_owned(),
            format!("--lang={language}"),
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE *.localhost, EXCLUDE 127.0.0.1"
                .to_owned(),
        ];
        let caps = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:loggingPrefs": { "performance": "ALL" },
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    "args": args,
                    "prefs": { "intl.accept_languages": language },
                    "mobileEmulation": { "deviceMetrics": { "width": width, "height": 812, "pixelRatio": 1 } },
                },
            }},
        });
        let answer = self.request(reqwest::Method::POST, &format!("{}/session", self.base), Some(caps)).await;
        let id = answer["sessionId"].as_str().unwrap_or_else(|| panic!("no session id in {answer}")).to_owned();
        Session { client: self.client.clone(), base: format!("{}/session/{id}", self.base) }
    }

    async fn request(&self, method: reqwest::Method, url: &str, body: Option<Value>) -> Value {
        call(&self.client, method, url, body).await
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver command: the `value` of the answer, or a panic naming the driver's error.
async fn call(client: &reqwest::Client, method: reqwest::Method, url: &str, body: Option<Value>) -> Value {
    try_call(client, method, url, body).await.unwrap_or_else(|e| panic!("{e}"))
}

/// One WebDriver command: the `value` of the answer, or the driver's error.
async fn try_call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let mut req = client.request(method.clone(), url);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.map_err(|e| format!("{method} {url}: {e}"))?;
    let status = resp.status();
    let answer: Value = resp.json().await.map_err(|e| format!("{method} {url}: {e}"))?;
    let value = answer.get("value").cloned().unwrap_or(Value::Null);
    if !status.is_success() || value.get("error").is_some() {
        return Err(format!("{method} {url}: {status} {}: {}", value["error"], value["message"]));
    }
    Ok(value)
}

/// A browser session; call [`Session::close`] at the end (the driver's drop ends it too).
pub struct Session {
    client: reqwest::Client,
    base: String,
}

impl Session {
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        call(&self.client, method, &format!("{}{path}", self.base), body).await
    }

    /// Navigates to `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({ "url": url }))).await;
    }

    /// The page's current URL.
    pub async fn url(&self) -> String {
        self.cmd(reqwest::Method::GET, "/url", None).await.as_str().unwrap_or_default().to_owned()
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its result.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.cmd(reqwest::Method::POST, "/execute/sync", Some(json!({ "script": script, "args": args }))).await
    }

    /// Clicks the first element matching the CSS `selector` as a user does (WebDriver
    /// Element Click: scrolled into view, refused if another element covers it) and waits
    /// until the page it leads to has loaded.
    pub async fn click(&self, selector: &str) {
        let find = json!({ "using": "css selector", "value": selector });
        let found =
            match try_call(&self.client, reqwest::Method::POST, &format!("{}/element", self.base), Some(find)).await {
                Ok(found) => found,
                Err(e) => {
                    let text = self.execute("return document.body.innerText", json!([])).await;
                    panic!("no {selector} to click at {}: {e}\npage text: {text}", self.url().await);
                }
            };
        let id = found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {selector}"))
            .to_owned();
        self.navigating(async {
            self.cmd(reqwest::Method::POST, &format!("/element/{id}/click"), Some(json!({}))).await;
        })
        .await;
    }

    /// Runs `script`, which leaves the page (sets `location`, submits a form), and waits until
    /// the page it leads to has loaded.
    pub async fn execute_navigating(&self, script: &str, args: Value) {
        self.navigating(async {
            self.execute(script, args).await;
        })
        .await;
    }

    /// Runs `action`, which makes the browser leave the page, and waits until another
    /// document has loaded: the current one is marked first, so a page still showing (a click
    /// returns before the navigation it starts) is never taken for the next one.
    async fn navigating(&self, action: impl std::future::Future<Output = ()>) {
        self.execute("window.__aisgateLeaving = true;", json!([])).await;
        action.await;
        let check = "return !window.__aisgateLeaving && document.readyState === 'complete'";
        for _ in 0..200 {
            // A script run while the next document replaces this one may fail: try again.
            let answer = try_call(
                &self.client,
                reqwest::Method::POST,
                &format!("{}/execute/sync", self.base),
                Some(json!({ "script": check, "args": [] })),
            )
            .await;
            if answer.is_ok_and(|done| done == true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no new page loaded (still at {})", self.url().await);
    }

    /// Waits until the document has loaded.
    pub async fn wait_loaded(&self) {
        for _ in 0..100 {
            if self.execute("return document.readyState", json!([])).await == "complete" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the page did not finish loading");
    }

    /// A PNG screenshot of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        let data = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD.decode(data.as_str().unwrap_or_default()).expect("base64 PNG")
    }

    /// Every URL the browser asked for since the last call (DevTools
    /// `Network.requestWillBeSent` in the performance log, which reading empties).
    pub async fn requested_urls(&self) -> Vec<String> {
        let entries = self.cmd(reqwest::Method::POST, "/se/log", Some(json!({ "type": "performance" }))).await;
        entries
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| serde_json::from_str::<Value>(e["message"].as_str()?).ok())
            .filter(|m| m["message"]["method"] == "Network.requestWillBeSent")
            .filter_map(|m| m["message"]["params"]["request"]["url"].as_str().map(str::to_owned))
            .collect()
    }

    /// Deletes the cookies of the page's site (WebDriver Delete All Cookies).
    pub async fn delete_cookies(&self) {
        self.cmd(reqwest::Method::DELETE, "/cookie", None).await;
    }

    /// Ends the session (closes the browser).
    pub async fn close(self) {
        self.cmd(reqwest::Method::DELETE, "", None).await;
    }
}
