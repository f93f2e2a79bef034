//! `aisgate sessions …` and `aisgate maintenance …`: a client of the admin API.
//!
//! The commands talk to the running gateway's ops listener, so they act on what the
//! gateway holds (with Redis: every instance's sessions) and leave the same audit trail as
//! any other admin request. Where to connect and the token come from the configuration
//! (`[ops] listen`, `[admin] token_file`) or from `--ops` / `--token-file`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Where the admin API is and how to authenticate.
pub struct AdminClient {
    base: String,
    token: Zeroizing<String>,
    client: reqwest::Client,
}

/// Why a command could not talk to the API.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Neither `--config` nor `--ops` and `--token-file`.
    #[error("say where the gateway is: --config FILE, or --ops HOST:PORT and --token-file FILE")]
    NoTarget,
    /// The configuration does not load.
    #[error("{0}")]
    Config(String),
    /// The configuration has no `[admin] token_file` and none was given.
    #[error("no admin token: set [admin] token_file in the configuration or pass --token-file")]
    NoToken,
    /// The token file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("admin API at {base}: {source}")]
    Http {
        /// The API's base URL.
        base: String,
        /// Cause.
        source: reqwest::Error,
    },
    /// The API answered with an error status.
    #[error("admin API: {status}: {body}")]
    Status {
        /// The status.
        status: reqwest::StatusCode,
        /// The answer's body (JSON, no secrets).
        body: String,
    },
}

/// The address to connect to for a listener bound to `addr`: a wildcard listener is reached
/// on loopback.
fn connect_addr(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port()),
        _ => addr,
    }
}

impl AdminClient {
    /// The client for `--config`, `--ops` and `--token-file` (flags win over the file).
    pub fn new(config: Option<&Path>, ops: Option<SocketAddr>, token_file: Option<&Path>) -> Result<Self, CliError> {
        let loaded = config
            .map(|path| {
                crate::config::load(path).map_err(|errors| {
                    CliError::Config(errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))
                })
            })
            .transpose()?;
        let ops = ops.or(loaded.as_ref().map(|c| c.ops.listen)).ok_or(CliError::NoTarget)?;
        let token_file: PathBuf = match (token_file, loaded.as_ref().and_then(|c| c.admin.token_file.clone())) {
            (Some(path), _) => path.to_owned(),
            (None, Some(path)) => path,
            (None, None) if loaded.is_some() => return Err(CliError::NoToken),
            (None, None) => return Err(CliError::NoTarget),
        };
        let text = std::fs::read_to_string(&token_file)
            .map_err(|source| CliError::Read { path: token_file.display().to_string(), source })?;
        let token = Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_owned());
        let base = format!("http://{}", connect_addr(ops));
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|source| CliError::Http { base: base.clone(), source })?;
        Ok(AdminClient { base, token, client })
    }

    /// Sends `method path` (with a JSON `body`) and returns the answer's JSON text, or the
    /// error status with its body.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<String>) -> Result<String, CliError> {
        let mut request = self.client.request(method, format!("{}{path}", self.base)).bearer_auth(self.token.as_str());
        if let Some(body) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        }
        let http = |source| CliError::Http { base: self.base.clone(), source };
        let resp = request.send().await.map_err(http)?;
        let status = resp.status();
        let text = resp.text().await.map_err(http)?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(CliError::Status { status, body: text })
        }
    }
}

/// Where the gateway's admin API is (`aisgate sessions` / `aisgate maintenance`).
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The gateway's configuration: `[ops] listen` and `[admin] token_file`.
    #[arg(long, short, global = true)]
    pub config: Option<PathBuf>,
    /// The ops listener, `HOST:PORT` (instead of, or overriding, the configuration).
    #[arg(long, value_name = "HOST:PORT", global = true)]
    pub ops: Option<SocketAddr>,
    /// File holding the admin token (instead of, or overriding, the configuration).
    #[arg(long, value_name = "FILE", global = true)]
    pub token_file: Option<PathBuf>,
}

/// `aisgate sessions …`
#[derive(Debug, clap::Subcommand)]
pub enum SessionsCommand {
    /// List sessions (handle, user label, provider, app, organisation, LoA, times).
    List {
        /// Only this user: the log label as in the logs (`provider:hex`).
        #[arg(long)]
        user: Option<String>,
        /// Only this organisation (IČO).
        #[arg(long)]
        organisation: Option<String>,
        /// Only this provider.
        #[arg(long)]
        provider: Option<String>,
        /// Only logins made for this app.
        #[arg(long)]
        app: Option<String>,
        /// At most this many (default 100).
        #[arg(long)]
        limit: Option<usize>,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// End one session by its handle (from `list`).
    End {
        /// The session's handle.
        handle: String,
    },
    /// End every session of a user (log label `provider:hex`).
    EndUser {
        /// The user's log label.
        user: String,
    },
    /// End every session of an organisation (IČO).
    EndOrg {
        /// The organisation's IČO.
        organisation: String,
    },
}

/// `aisgate maintenance …`
#[derive(Debug, clap::Subcommand)]
pub enum MaintenanceCommand {
    /// Put an app in maintenance: it answers 503 with a page and `Retry-After`.
    On {
        /// The app (`[[app]] name`).
        app: String,
        /// A message for users on the page (plain text).
        #[arg(long)]
        message: Option<String>,
        /// `Retry-After`, seconds (default 300).
        #[arg(long, value_name = "SECONDS")]
        retry_after: Option<u64>,
    },
    /// End an app's maintenance.
    Off {
        /// The app (`[[app]] name`).
        app: String,
    },
    /// List the apps in maintenance.
    Status,
}

/// Runs `aisgate sessions …`; returns the exit code (0 done, 1 the API refused or failed,
/// 2 usage or configuration).
pub async fn sessions(target: &Target, command: SessionsCommand) -> i32 {
    let client = match client(target) {
        Ok(client) => client,
        Err(code) => return code,
    };
    use reqwest::Method;
    let (method, path, table) = match command {
        SessionsCommand::List { user, organisation, provider, app, limit, json } => {
            let limit = limit.map(|l| l.to_string());
            let q = query(&[
                ("user", user.as_deref()),
                ("organisation", organisation.as_deref()),
                ("provider", provider.as_deref()),
                ("app", app.as_deref()),
                ("limit", limit.as_deref()),
            ]);
            (Method::GET, format!("/admin/sessions{q}"), !json)
        }
        SessionsCommand::End { handle } => (Method::DELETE, format!("/admin/sessions/{}", segment(&handle)), false),
        SessionsCommand::EndUser { user } => {
            (Method::DELETE, format!("/admin/sessions{}", query(&[("user", Some(&user))])), false)
        }
        SessionsCommand::EndOrg { organisation } => {
            (Method::DELETE, format!("/admin/sessions{}", query(&[("organisation", Some(&organisation))])), false)
        }
    };
    let shown = |text: String| if table { sessions_table(&text).unwrap_or(text) } else { text };
    finish(client.call(method, &path, None).await.map(shown))
}

/// Runs `aisgate maintenance …`; exit codes as [`sessions`].
pub async fn maintenance(target: &Target, command: MaintenanceCommand) -> i32 {
    let client = match client(target) {
        Ok(client) => client,
        Err(code) => return code,
    };
    use reqwest::Method;
    let answer = match command {
        MaintenanceCommand::On { app, message, retry_after } => {
            let body = serde_json::json!({ "message": message, "retry_after_secs": retry_after }).to_string();
            client.call(Method::PUT, &format!("/admin/maintenance/{}", segment(&app)), Some(body)).await
        }
        MaintenanceCommand::Off { app } => {
            client.call(Method::DELETE, &format!("/admin/maintenance/{}", segment(&app)), None).await
        }
        MaintenanceCommand::Status => client.call(Method::GET, "/admin/maintenance", None).await,
    };
    finish(answer)
}

fn client(target: &Target) -> Result<AdminClient, i32> {
    AdminClient::new(target.config.as_deref(), target.ops, target.token_file.as_deref()).map_err(|e| {
        eprintln!("aisgate: {e}");
        2
    })
}

fn finish(answer: Result<String, CliError>) -> i32 {
    match answer {
        Ok(text) => {
            println!("{}", text.trim_end());
            0
        }
        Err(e) => {
            eprintln!("aisgate: {e}");
            1
        }
    }
}

/// A query string of the non-empty `pairs`, percent-encoded.
pub fn query(pairs: &[(&str, Option<&str>)]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        if let Some(value) = value {
            out.append_pair(name, value);
        }
    }
    let text = out.finish();
    if text.is_empty() {
        text
    } else {
        format!("?{text}")
    }
}

/// The path segment `text`, percent-encoded.
pub fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// `aisgate sessions list` output: one line per session, tab-separated, with a header.
pub fn sessions_table(json: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    let field = |s: &serde_json::Value, name: &str| match &s[name] {
        serde_json::Value::Null => "-".to_owned(),
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Number(n) => n.as_u64().map_or_else(|| n.to_string(), crate::date::format_rfc3339),
        other => other.to_string(),
    };
    let columns = ["handle", "user", "provider", "app", "organisation", "loa", "created_at", "last_seen", "expires_at"];
    let mut out = columns.join("\t");
    out.push('\n');
    for s in value["sessions"].as_array()? {
        out.push_str(&columns.iter().map(|c| field(s, c)).collect::<Vec<_>>().join("\t"));
        out.push('\n');
    }
    if value["truncated"] == serde_json::Value::Bool(true) {
        out.push_str("(more sessions match: raise --limit or narrow the filter)\n");
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listeners_are_reached_on_loopback() {
        assert_eq!(connect_addr("0.0.0.0:9090".parse().unwrap()), "127.0.0.1:9090".parse().unwrap());
        assert_eq!(connect_addr("[::]:9090".parse().unwrap()), "[::1]:9090".parse().unwrap());
        assert_eq!(connect_addr("10.0.0.5:9090".parse().unwrap()), "10.0.0.5:9090".parse().unwrap());
    }

    #[test]
    fn query_skips_absent_values_and_encodes_the_rest() {
        assert_eq!(query(&[("user", None)]), "");
        assert_eq!(
            query(&[("user", Some("nia:ab")), ("app", None), ("organisation", Some("a&b"))]),
            "?user=nia%3Aab&organisation=a%26b"
        );
        assert_eq!(segment("a/b c"), "a%2Fb+c");
    }

    #[test]
    fn the_table_shows_each_session_with_readable_times() {
        let json = r#"{"sessions":[{"handle":"h1","user":"nia:ab","provider":"nia","app":null,"organisation":"1","loa":"high","created_at":0,"last_seen":null,"expires_at":60}],"truncated":true}"#;
        let table = sessions_table(json).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("handle\tuser\tprovider"));
        assert_eq!(lines[1], "h1\tnia:ab\tnia\t-\t1\thigh\t1970-01-01T00:00:00Z\t-\t1970-01-01T00:01:00Z");
        assert!(lines[2].contains("more sessions match"));
    }

    #[test]
    fn missing_target_or_token_is_a_clear_error() {
        assert!(matches!(AdminClient::new(None, None, None), Err(CliError::NoTarget)));
        assert!(matches!(AdminClient::new(None, Some("127.0.0.1:1".parse().unwrap()), None), Err(CliError::NoTarget)));
        let err = AdminClient::new(None, Some("127.0.0.1:1".parse().unwrap()), Some(Path::new("/nonexistent/t")));
        assert!(matches!(err, Err(CliError::Read { .. })));
    }
}
