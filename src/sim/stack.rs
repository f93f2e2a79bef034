//! A complete local stack: test PKI, simulated KAAS IdP, optional echo upstream, and a
//! gateway built from a real configuration file. Shared by `aisgate demo` and the tests so
//! both run exactly the production code path.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::gateway::{self, Gateway};
use crate::sim;

/// How to assemble the stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Gateway address (port 0 for any).
    pub listen: SocketAddr,
    /// Ops address.
    pub ops_listen: SocketAddr,
    /// Upstream URL; `None` starts the built-in echo upstream.
    pub upstream: Option<String>,
    /// Simulator login host address.
    pub sim_login_listen: SocketAddr,
    /// Simulator web-service (mTLS) address.
    pub sim_ws_listen: SocketAddr,
    /// Write access logs.
    pub access_log: bool,
    /// Extra lines for `[server]`.
    pub server_extra: String,
    /// Extra lines for `[session]`. Unless they mention `cookie_name` (set it, or a comment
    /// `# default cookie_name` to test the defaults), the stack pins the cookie names to
    /// `aisgate_session` / `aisgate_login`, which the tests' browser-less client reads, instead
    /// of the `__Host-` defaults of a secure config.
    pub session_extra: String,
    /// Lines of an `[audit]` table (none when empty); `{dir}` is replaced by the stack directory.
    pub audit: String,
    /// Extra lines for the KAAS `[[provider]]` (e.g. `version = "v3_4"`); `{dir}` is replaced
    /// by the stack directory.
    pub provider_extra: String,
    /// Present the client certificate the simulated IdP knows (`true`) or another one from the
    /// same CA that it does not (`false`: every SOAP call gets HTTP 401 JSON).
    pub registered_client: bool,
    /// The `[[app]]` tables (and extra `[[provider]]`s); `{upstream}` is replaced by the upstream
    /// URL, `{dir}` by the stack directory (certificates) and `{port}` by the gateway's port. `None`: one app
    /// `echo` for every path, with `/public` public and `/logout` intercepted.
    pub apps: Option<String>,
    /// Simulated OpenID providers, each written as a `[[provider]] kind = "oidc"` table.
    pub oidc: Vec<OidcStackProvider>,
    /// A simulated NIA-shaped SAML IdP, written as a `[[provider]] kind = "saml"` table.
    pub saml: Option<SamlStackProvider>,
    /// The gateway's clock (the system clock by default; tests pass
    /// [`Clock::test`](crate::clock::Clock::test) and move it instead of sleeping).
    pub clock: crate::clock::Clock,
    /// The session key (base64 text of the key file) instead of a fresh random one: the
    /// gateways of one pair share their keys.
    pub session_key: Option<String>,
}

/// A simulated SAML IdP and its provider table.
#[derive(Debug, Clone)]
pub struct SamlStackProvider {
    /// Provider name (ACS `/.aisgate/callback/<name>`).
    pub name: String,
    /// The SP entityID (NIA: the registered unique URL).
    pub entity_id: String,
    /// Extra lines for the provider table (`{dir}` is replaced by the stack directory).
    pub extra: String,
    /// The base URL of the SP's ACS and SLO the simulator knows (an app's own
    /// `public_base_url`; `{port}` is the gateway's port); default: the public base URL.
    pub sp_base: Option<String>,
}

impl Default for SamlStackProvider {
    fn default() -> Self {
        SamlStackProvider {
            name: "nia".to_owned(),
            entity_id: "https://sp.aisgate.test/app/".to_owned(),
            extra: String::new(),
            sp_base: None,
        }
    }
}

/// A simulated OpenID provider and its provider table.
#[derive(Debug, Clone)]
pub struct OidcStackProvider {
    /// Provider name (callback `/.aisgate/callback/<name>`).
    pub name: String,
    /// Simulator settings; `redirect_uri` is set to the gateway's callback.
    pub sim: sim::oidc::OidcSimConfig,
    /// `client_auth` to configure instead of the one matching the simulator.
    pub client_auth: Option<String>,
    /// `issuer` to configure instead of the simulator's (byte-exact comparison tests); `{base}`
    /// is replaced by the simulator's base URL.
    pub issuer: Option<String>,
    /// Present the client certificate the simulator knows (`true`) or an unregistered one
    /// from the same CA (`false`).
    pub registered_client: bool,
    /// Extra lines for the provider table.
    pub extra: String,
}

impl OidcStackProvider {
    /// A CAAIS-like simulated provider (caais.md §1): client `MY_AIS` authenticated by mutual
    /// TLS, an issuer with a trailing slash, RS256 keys without `kid`, one official. `extra`
    /// is appended to its provider table.
    pub fn caais_like(name: &str, extra: &str) -> OidcStackProvider {
        OidcStackProvider {
            name: name.to_owned(),
            sim: sim::oidc::OidcSimConfig {
                client_id: "MY_AIS".into(),
                redirect_uri: String::new(),
                client_auth: sim::oidc::SimClientAuth::Mtls,
                issuer_trailing_slash: true,
                kid: false,
                alg: sim::oidc::SimAlg::Rs256,
                users: vec![sim::oidc::caais_user()],
                outage_at_start: false,
            },
            client_auth: None,
            issuer: None,
            registered_client: true,
            extra: extra.to_owned(),
        }
    }
}

impl OidcStackProvider {
    /// An EnviIAM-like simulated provider (enviam.md §5.5): public client `isoh` with PKCE,
    /// ES256 keys with `kid`, an issuer without trailing slash, one EnviIAM user. `extra` is
    /// appended to its provider table.
    pub fn enviam_like(name: &str, extra: &str) -> OidcStackProvider {
        OidcStackProvider {
            name: name.to_owned(),
            sim: sim::oidc::OidcSimConfig {
                client_id: "isoh".into(),
                redirect_uri: String::new(),
                client_auth: sim::oidc::SimClientAuth::Public,
                issuer_trailing_slash: false,
                kid: true,
                alg: sim::oidc::SimAlg::Es256,
                users: vec![sim::oidc::enviam_user()],
                outage_at_start: false,
            },
            client_auth: None,
            issuer: None,
            registered_client: true,
            extra: extra.to_owned(),
        }
    }
}

impl Default for StackOptions {
    fn default() -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        StackOptions {
            listen: any,
            ops_listen: any,
            upstream: None,
            sim_login_listen: any,
            sim_ws_listen: any,
            access_log: false,
            server_extra: String::new(),
            session_extra: String::new(),
            audit: String::new(),
            provider_extra: String::new(),
            registered_client: true,
            apps: None,
            oidc: Vec::new(),
            saml: None,
            clock: crate::clock::Clock::system(),
            session_key: None,
        }
    }
}

const DEFAULT_APPS: &str = r#"
[[app]]
name = "echo"
upstream = "{upstream}"
providers = ["jip"]
public_paths = ["/public"]
logout_paths = ["/logout"]

[app.headers]
identity_token = true
"#;

/// A prepared stack, not yet serving.
pub struct Stack {
    /// Temporary directory with the config, keys and certificates (removed by the caller).
    pub dir: PathBuf,
    /// The test PKI.
    pub pki: sim::certs::TestPki,
    /// The simulated IdP.
    pub sim: sim::kaas::KaasSim,
    /// Public base URL of the gateway (`http://localhost:port`).
    pub public_base: String,
    /// Upstream URL.
    pub upstream: String,
    /// The loaded configuration.
    pub config: Config,
    /// Its file.
    pub config_path: PathBuf,
    /// The gateway.
    pub gateway: Arc<Gateway>,
    /// Bound gateway listener.
    pub listener: TcpListener,
    /// Bound ops listener.
    pub ops: TcpListener,
    /// The simulated OpenID providers, in `StackOptions::oidc` order.
    pub oidc: Vec<sim::oidc::OidcSim>,
    /// The simulated SAML IdP.
    pub saml: Option<sim::saml::SamlSim>,
}

/// Why the stack could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// A listener could not be bound (typically: another program holds the port).
    #[error("cannot listen on {addr} ({listener}): {source}")]
    Listen {
        /// Which of the stack's own listeners.
        listener: StackListener,
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Anything else (certificates, simulators, the written configuration).
    #[error("{0}")]
    Other(String),
}

/// The stack's listeners that a caller chooses the address of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackListener {
    /// [`StackOptions::listen`].
    Gateway,
    /// [`StackOptions::ops_listen`].
    Ops,
}

impl std::fmt::Display for StackListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StackListener::Gateway => "gateway",
            StackListener::Ops => "ops",
        })
    }
}

impl From<String> for StackError {
    fn from(message: String) -> Self {
        StackError::Other(message)
    }
}

/// Creates the stack's directory under the system temp dir (`TMPDIR`), mode 0700: it holds
/// the session key and the private keys of the test PKI and the SAML SP, which must not be
/// readable by other users of a shared machine even though they are throwaway.
fn temp_dir() -> std::io::Result<PathBuf> {
    let id = crate::session::random_id();
    let name: String = id[..8].iter().map(|b| format!("{b:02x}")).collect();
    let dir = std::env::temp_dir().join(format!("aisgate-{name}"));
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    // `create`, not `create_dir_all`: a directory that already exists under the random name
    // is someone else's, never reused.
    builder.create(&dir)?;
    Ok(dir)
}

/// Makes every file in the stack directory private (0600): the directory's 0700 already
/// keeps others out; this keeps the keys private if a file is copied or the mode changed.
fn make_files_private(dir: &std::path::Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| format!("cannot restrict {}: {e}", path.display()))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Removes the stack directory when dropped, unless [`DirGuard::keep`] handed it over.
struct DirGuard(Option<PathBuf>);

impl DirGuard {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Assembles the stack. If it fails, or the future is dropped before it completes, its
/// temporary directory is removed; on success the caller removes [`Stack::dir`].
pub async fn prepare(opts: StackOptions) -> Result<Stack, StackError> {
    let dir = temp_dir().map_err(|e| StackError::Other(format!("cannot create a temporary directory: {e}")))?;
    let guard = DirGuard(Some(dir.clone()));
    let stack = prepare_in(dir, opts).await?;
    guard.keep();
    Ok(stack)
}

async fn prepare_in(dir: PathBuf, opts: StackOptions) -> Result<Stack, StackError> {
    let pki = sim::certs::generate(&dir)?;
    let listener = TcpListener::bind(opts.listen).await.map_err(|source| StackError::Listen {
        listener: StackListener::Gateway,
        addr: opts.listen,
        source,
    })?;
    let ops = TcpListener::bind(opts.ops_listen).await.map_err(|source| StackError::Listen {
        listener: StackListener::Ops,
        addr: opts.ops_listen,
        source,
    })?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let ops_addr = ops.local_addr().map_err(|e| e.to_string())?;
    let public_base = format!("http://localhost:{port}");
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
            callback_url: format!("{public_base}/.aisgate/callback/jip"),
            logout_prefix: format!("{public_base}/"),
            token_ttl: Duration::from_secs(300),
            style: crate::sim::kaas_soap::ResponseStyle::Quirks(Default::default()),
            users: sim::kaas::demo_users(),
        },
        &pki,
        opts.sim_login_listen,
        opts.sim_ws_listen,
    )
    .await?;
    let mut oidc = Vec::new();
    let mut oidc_tables = String::new();
    for p in &opts.oidc {
        let mut cfg = p.sim.clone();
        // A preset redirect URI (an app's own host) keeps it; `{port}` is the gateway's port.
        cfg.redirect_uri = if cfg.redirect_uri.is_empty() {
            format!("{public_base}/.aisgate/callback/{}", p.name)
        } else {
            cfg.redirect_uri.replace("{port}", &port.to_string())
        };
        let started = sim::oidc::start(cfg.clone(), &pki).await?;
        let (default_auth, credentials) = match &cfg.client_auth {
            sim::oidc::SimClientAuth::Mtls => ("tls_client_auth", {
                let (cert, key) = if p.registered_client {
                    (&pki.client_cert, &pki.client_key)
                } else {
                    (&pki.rogue_cert, &pki.rogue_key)
                };
                format!("client_cert = \"{}\"\nclient_key = \"{}\"\n", cert.display(), key.display())
            }),
            sim::oidc::SimClientAuth::Secret(secret) => {
                let file = dir.join(format!("{}.secret", p.name));
                std::fs::write(&file, secret).map_err(|e| e.to_string())?;
                ("client_secret_basic", format!("client_secret = {{ file = \"{}\" }}\n", file.display()))
            }
            sim::oidc::SimClientAuth::Public => ("none", String::new()),
        };
        let auth = p.client_auth.as_deref().unwrap_or(default_auth);
        // Credentials only for the method they belong to (an override tests their absence).
        let same_kind =
            auth == default_auth || (auth.starts_with("client_secret") && default_auth.starts_with("client_secret"));
        let credentials = if same_kind { credentials } else { String::new() };
        oidc_tables.push_str(&format!(
            "\n[[provider]]\nname = \"{name}\"\nkind = \"oidc\"\nissuer = \"{issuer}\"\ndiscovery_url = \"{discovery}\"\nclient_id = \"{client_id}\"\n\
             client_auth = \"{auth}\"\n{credentials}ca_bundle = \"{ca}\"\n{extra}\n",
            name = p.name,
            issuer = p.issuer.as_ref().map_or(started.issuer.clone(), |i| i.replace("{base}", &started.base)),
            discovery = started.discovery_url(),
            client_id = cfg.client_id,
            ca = pki.ca_cert.display(),
            extra = p.extra,
        ));
        oidc.push(started);
    }
    let (saml, saml_table) = match &opts.saml {
        Some(p) => {
            let sp_base = p.sp_base.as_ref().map_or(public_base.clone(), |b| b.replace("{port}", &port.to_string()));
            let (sim, table) = saml_provider(p, &dir, &sp_base).await?;
            (Some(sim), table)
        }
        None => (None, String::new()),
    };
    oidc_tables.push_str(&saml_table);
    let key = match &opts.session_key {
        Some(key) => key.clone(),
        None => base64::engine::general_purpose::STANDARD.encode(crate::session::random_id()),
    };
    let key_file = dir.join("session.key");
    std::fs::write(&key_file, key).map_err(|e| e.to_string())?;
    let default_apps = match &opts.saml {
        Some(p) => DEFAULT_APPS.replace("providers = [\"jip\"]", &format!("providers = [\"jip\", \"{}\"]", p.name)),
        None => DEFAULT_APPS.to_owned(),
    };
    let apps = opts
        .apps
        .as_deref()
        .unwrap_or(&default_apps)
        .replace("{upstream}", &upstream)
        .replace("{dir}", &dir.display().to_string())
        .replace("{port}", &port.to_string());
    // Tests and load tools start many logins from 127.0.0.1: the per-address limit is opted
    // out of unless the extra lines set it.
    let server_extra = if opts.server_extra.contains("login_starts_per_minute") {
        opts.server_extra.clone()
    } else {
        format!("login_starts_per_minute = 1000000\n{}", opts.server_extra)
    };
    let session_extra = if opts.session_extra.contains("cookie_name") {
        opts.session_extra.clone()
    } else {
        format!("cookie_name = \"aisgate_session\"\nlogin_cookie_name = \"aisgate_login\"\n{}", opts.session_extra)
    };
    let config_text = format!(
        r#"# Written by aisgate's local stack (demo/tests). The simulator exists only while it runs.
[server]
listen = ["{listen}"]
public_base_url = "{public_base}"
{server_extra}

[ops]
listen = "{ops_addr}"

[log]
access_log = {access_log}
{audit}
[session]
keys = [{{ id = "demo", file = "{key_file}" }}]
{session_extra}

[identity_token]
algorithm = "ES256"
# The local stack opts in: a fresh signing key at every start.
dangerous.ephemeral_key = true

[[provider]]
name = "jip"
kind = "kaas"
display_name = "JIP/KAAS (simulátor)"
ats_id = "AISGATE_DEMO"
login_url = "{login_url}"
logout_url = "{logout_url}"
auth_ws_url = "{ws_url}"
direct_ws_url = "{direct_ws_url}"
client_cert = "{client_cert}"
client_key = "{client_key}"
ca_bundle = "{ca}"
{provider_extra}
{oidc_tables}
{apps}"#,
        listen = listener.local_addr().map_err(|e| e.to_string())?,
        server_extra = server_extra,
        access_log = opts.access_log,
        audit = if opts.audit.is_empty() {
            String::new()
        } else {
            format!("\n[audit]\n{}\n", opts.audit.replace("{dir}", &dir.display().to_string()))
        },
        key_file = key_file.display(),
        session_extra = session_extra,
        login_url = sim.login_url(),
        logout_url = sim.logout_url(),
        ws_url = sim.auth_ws_url(),
        direct_ws_url = sim.direct_ws_url(),
        client_cert = if opts.registered_client { &pki.client_cert } else { &pki.rogue_cert }.display(),
        client_key = if opts.registered_client { &pki.client_key } else { &pki.rogue_key }.display(),
        ca = pki.ca_cert.display(),
        provider_extra = opts.provider_extra.replace("{dir}", &dir.display().to_string()),
    );
    let config_path = dir.join("aisgate.toml");
    std::fs::write(&config_path, config_text).map_err(|e| e.to_string())?;
    let joined =
        |errors: Vec<crate::config::ConfigError>| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
    make_files_private(&dir)?;
    let config = crate::config::load(&config_path).map_err(joined)?;
    let gateway =
        Gateway::build_with_clock(&config, &config_path, &gateway::process_env, opts.clock.clone()).map_err(joined)?;
    Ok(Stack { dir, pki, sim, public_base, upstream, config, config_path, gateway, listener, ops, oidc, saml })
}

/// Starts the SAML simulator with fresh SP keys (RSA: XML-Enc as NIA uses it) and writes the
/// provider table: metadata by URL, signature pinned to the simulator's metadata key.
async fn saml_provider(
    p: &SamlStackProvider,
    dir: &std::path::Path,
    public_base: &str,
) -> Result<(sim::saml::SamlSim, String), String> {
    let write = |name: &str, content: &str| -> Result<PathBuf, String> {
        let path = dir.join(name);
        std::fs::write(&path, content).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    };
    let signing = sim::certs::rsa_identity("aisgate SP signing")?;
    let encryption = sim::certs::rsa_identity("aisgate SP encryption")?;
    let urls = crate::provider::saml::SpUrls::new(public_base, &p.name);
    let started = sim::saml::start(sim::saml::SamlSimConfig {
        entity_id: sim::saml::NIA_ENTITY_ID.to_owned(),
        sp_entity_id: p.entity_id.clone(),
        acs_url: urls.acs,
        sp_slo_url: urls.slo,
        sp_encryption_cert: encryption.cert_der.clone(),
    })
    .await?;
    let name = &p.name;
    let table = format!(
        "\n[[provider]]\nname = \"{name}\"\nkind = \"saml\"\nprofile = \"nia\"\ndisplay_name = \"NIA (simulátor)\"\n\
         entity_id = \"{entity_id}\"\nidp_metadata_url = \"{metadata}\"\nidp_metadata_signer_certs = [\"{pin}\"]\n\
         idp_entity_id = \"urn:microsoft:cgg2010:FPSTS\"\ndangerous.issuer_case_insensitive = true\naudience_ignores_trailing_slash = true\n\
         signing_key = \"{sign_key}\"\nsigning_cert = \"{sign_cert}\"\n\
         encryption_keys = [{{ key = \"{enc_key}\", cert = \"{enc_cert}\" }}]\nloa = \"substantial\"\n{extra}\n",
        entity_id = p.entity_id,
        metadata = started.metadata_url(),
        pin = write(&format!("{name}-metadata-signer.pem"), &started.metadata_signer.cert_pem)?.display(),
        sign_key = write(&format!("{name}-signing.key"), &signing.key_pem)?.display(),
        sign_cert = write(&format!("{name}-signing.pem"), &signing.cert_pem)?.display(),
        enc_key = write(&format!("{name}-encryption.key"), &encryption.key_pem)?.display(),
        enc_cert = write(&format!("{name}-encryption.pem"), &encryption.cert_pem)?.display(),
        extra = p.extra.replace("{dir}", &dir.display().to_string()),
    );
    Ok((started, table))
}
