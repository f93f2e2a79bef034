//! `aisgate demo`: the gateway, an echo upstream and simulated JIP/KAAS, NIA, EnviIAM and
//! CAAIS IdPs on localhost, plus an EnviIAM-authenticated SOAP API app (a demo SOAP service
//! behind `auth = "bearer"`, CRŽP role rule and IČO check by the simulated authorizer).
//!
//! The demo writes a real configuration file (and real certificates for mutual TLS) into a
//! temporary directory and loads it through the same code path as `aisgate run`, so what you
//! see is what production runs — except the simulator, which only this command can start.

use std::time::Duration;

use crate::listen::{self, PublicListener};
use crate::sim;
use crate::sim::stack::{OidcStackProvider, StackError, StackListener, StackOptions};

/// The IČO the simulated authorizer lets the EnviIAM demo user act for.
const DEMO_ICO: &str = "00007064";

/// The demo's apps: the echo app for browser logins with every simulated IdP, and the SOAP
/// API app `/isoh/` (bearer tokens of the EnviIAM simulator, CRŽP role `A100` for
/// `PoskytniData`, the IČO in `Zadost/Ico` checked by the authorizer; `PrijmiData` is a
/// reception operation exempt from the IČO check, like those of `HlaseniOrp.svc`).
///
/// The echo app's `/admin` needs the access role `ADMIN`, which no simulated user has: the
/// demo's way to show a 403.
pub fn demo_apps(saml: Option<&str>, soap_upstream: &str, authorizer_url: &str) -> String {
    let providers: Vec<String> =
        ["jip"].into_iter().chain(saml).chain(["enviam", "caais"]).map(|p| format!("\"{p}\"")).collect();
    format!(
        r#"
[[app]]
name = "echo"
upstream = "{{upstream}}"
providers = [{providers}]
public_paths = ["/public"]
logout_paths = ["/logout"]

[app.headers]
identity_token = true

[[app.rule]]
path_prefix = "/admin"
any_role = ["ADMIN"]

[[app]]
name = "isoh-soap"
display_name = "ISOH SOAP (demo)"
path_prefix = "/isoh/"
upstream = "{soap_upstream}"
providers = ["enviam"]
auth = "bearer"
soap = true
[app.bearer]
provider = "enviam"
[app.authorize]
ico_check = true
exempt_operations = ["PrijmiData"]
[[app.authorize.operation]]
name = "PoskytniData"
ico_path = "Zadost/Ico"
[[app.rule]]
operation = "PoskytniData"
require_roles = {{ role_crzp = ["A100"] }}

[authorizer]
url = "{authorizer_url}"
"#,
        providers = providers.join(", "),
    )
}

/// The shell commands that get an access token from the simulated EnviIAM (authorization
/// code + PKCE, the code read from the redirect without following it) and call the SOAP app.
pub fn soap_call_script(idp: &str, redirect_uri: &str, gateway: &str) -> String {
    format!(
        r#"V=demo-pkce-verifier-0123456789-0123456789-0123456789
C=$(printf %s "$V" | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '=')
CODE=$(curl -s -o /dev/null -w '%{{redirect_url}}' "{idp}/oauth2/authorize?response_type=code&client_id=isoh&scope=openid&state=s&code_challenge_method=S256&code_challenge=$C&redirect_uri={redirect_uri}" | sed 's/.*[?&]code=\([^&]*\).*/\1/')
TOKEN=$(curl -s {idp}/oauth2/token -d grant_type=authorization_code -d client_id=isoh -d "code=$CODE" -d "code_verifier=$V" --data-urlencode "redirect_uri={redirect_uri}" | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
curl -s {gateway}/isoh/Hlaseni.svc -H "Authorization: Bearer $TOKEN" -H 'Content-Type: text/xml; charset=utf-8' -H 'SOAPAction: "urn:aisgate:isoh/IHlaseni/PoskytniData"' --data '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><PoskytniData xmlns="urn:aisgate:isoh"><Zadost><Ico>{ico}</Ico></Zadost></PoskytniData></s:Body></s:Envelope>'"#,
        ico = DEMO_ICO.trim_start_matches('0'),
    )
}

/// Runs the demo until Ctrl-C or SIGTERM. Returns the exit code.
///
/// The signals are taken over before anything is created: a Ctrl-C or SIGTERM while the demo
/// is still generating its keys or starting its simulators aborts the start, whose guards
/// remove the temporary directory (its keys) before the demo exits, instead of the process
/// dying with the directory left behind. SIGHUP, which would reload `aisgate run`, is logged
/// and ignored: the demo's configuration is generated, there is nothing to reload.
pub async fn run(opts: StackOptions) -> i32 {
    crate::run::init_logging(crate::config::LogFormat::Human, "info");
    let mut signals = match Signals::new() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("demo failed: cannot handle signals: {e}");
            return 1;
        }
    };
    // The start runs as a task of its own: key generation does not wait, so only another
    // task can notice a signal meanwhile.
    let mut starting = tokio::spawn(start(opts));
    let ready = tokio::select! {
        // Polled first: a signal that came during the start wins over a start that completed.
        biased;
        signal = signals.stop() => {
            // The start ends at its next wait, or completes; either way what it made (the
            // directory with the keys) is dropped, and so removed, before the demo exits.
            starting.abort();
            drop((&mut starting).await);
            eprintln!("demo stopped by {signal} while starting; its temporary directory is removed");
            return 0;
        }
        joined = &mut starting => match joined {
            Ok(ready) => ready,
            Err(e) => {
                eprintln!("demo failed: the start failed: {e}");
                return 1;
            }
        },
    };
    match ready {
        Ok(ready) => {
            ready.announce();
            ready.serve(signals).await;
            0
        }
        Err(e) => {
            eprintln!("demo failed: {e}");
            if let StackError::Listen { listener, .. } = e {
                let flag = match listener {
                    StackListener::Gateway => "--listen",
                    StackListener::Ops => "--ops-listen",
                };
                eprintln!(
                    "Another program (another demo?) holds that address: stop it, or choose a free one with \
                     `aisgate demo {flag} 127.0.0.1:PORT` (`aisgate demo --help` lists every address)."
                );
            }
            1
        }
    }
}

/// The demo's signal handlers, installed (replacing the default actions, which end the
/// process on the spot) when created.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
                hup: signal(SignalKind::hangup())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// Resolves on SIGTERM or SIGINT (naming it); logs and ignores every SIGHUP meanwhile.
    async fn stop(&mut self) -> &'static str {
        #[cfg(unix)]
        loop {
            tokio::select! {
                _ = self.term.recv() => return "SIGTERM",
                _ = self.int.recv() => return "SIGINT",
                _ = self.hup.recv() => {
                    tracing::warn!("SIGHUP ignored: the demo cannot reload its configuration (restart it to change it)");
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

/// Removes the demo's directory (keys, certificates, configuration) when dropped: on Ctrl-C,
/// SIGTERM, an error while serving or a panic alike.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A demo that has started: its stack, serving once [`Ready::serve`] is called; dropping it
/// removes the directory.
struct Ready {
    stack: sim::stack::Stack,
    _remove: RemoveOnDrop,
}

impl Ready {
    /// Prints the banner: what runs where, and how to call the SOAP app.
    fn announce(&self) {
        let stack = &self.stack;
        let ops = stack.ops.local_addr().map_or_else(|_| "-".to_owned(), |a| a.to_string());
        let enviam = stack.oidc.first().map_or("-", |o| o.base.as_str());
        let caais = stack.oidc.get(1).map_or("-", |o| o.base.as_str());
        let script =
            soap_call_script(enviam, &format!("{}/.aisgate/callback/enviam", stack.public_base), &stack.public_base);
        println!(
            "\n================================================================================\n\
             \x20 aisgate DEMO — SIMULATED identity provider, NOT FOR PRODUCTION\n\
             ================================================================================\n\
             \x20 Open:            {}/\n\
             \x20 Upstream:        {}\n\
             \x20 Simulated KAAS:  {} (login), {} (SOAP, mutual TLS)\n\
             \x20 Simulated NIA:   {} (SAML; SP metadata at {}/.aisgate/saml/nia/metadata)\n\
             \x20 Simulated EnviIAM: {} (OIDC, user Ing. Otto Klus, CRŽP roles A100, A101)\n\
             \x20 Simulated CAAIS:   {} (OIDC, mutual TLS token endpoint)\n\
             \x20 SOAP API app:    {}/isoh/Hlaseni.svc (bearer token; IČO {} allowed by the simulated authorizer)\n\
             \x20 Ops:             http://{}/metrics  /readyz  /healthz\n\
             \x20 JWKS:            {}/.aisgate/jwks.json\n\
             \x20 Config written:  {}\n\
             \x20 Stop with Ctrl-C.\n\
             ================================================================================\n",
            stack.public_base,
            stack.upstream,
            stack.sim.login_base,
            stack.sim.ws_base,
            stack.saml.as_ref().map_or("-", |s| s.base.as_str()),
            stack.public_base,
            enviam,
            caais,
            stack.public_base,
            DEMO_ICO,
            ops,
            stack.public_base,
            stack.config_path.display()
        );
        println!("Call the SOAP app with a token of the simulated EnviIAM (bash, curl, openssl):\n\n{script}\n");
    }

    /// Serves until SIGTERM or Ctrl-C, then removes the directory.
    async fn serve(self, mut signals: Signals) {
        let Ready { stack, _remove } = self;
        crate::run::spawn_provider_refresh(&stack.gateway);
        let limits = crate::run::limits(&stack.config);
        let public = vec![PublicListener { listener: stack.listener, tls: None }];
        let stop = async move {
            let signal = signals.stop().await;
            tracing::info!("{signal}: the demo stops");
        };
        listen::serve(stack.gateway, public, stack.ops, limits, Duration::from_secs(5), stop).await;
    }
}

/// Starts the simulators and prepares the gateway; nothing serves browsers yet.
/// If this future is dropped (a signal) or fails, the temporary directory is removed: by
/// `prepare` until it returns, then by [`Ready`]'s guard.
async fn start(mut opts: StackOptions) -> Result<Ready, StackError> {
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let soap = sim::soap_echo::start(local).await.map_err(|e| StackError::Other(format!("demo SOAP service: {e}")))?;
    let (authorizer, authorizer_url) =
        sim::authorizer::start(local).await.map_err(|e| StackError::Other(format!("simulated authorizer: {e}")))?;
    if let Some(sub) = sim::oidc::enviam_user().get("sub").and_then(|s| s.as_str()) {
        authorizer.grant(sub, DEMO_ICO, &["ISOH_EDIT", "ISOH_READ"]);
    }
    opts.oidc.push(OidcStackProvider::enviam_like("enviam", "display_name = \"EnviIAM (simulátor)\""));
    opts.oidc.push(OidcStackProvider::caais_like("caais", "display_name = \"CAAIS (simulátor)\""));
    if opts.apps.is_none() {
        let saml = opts.saml.as_ref().map(|s| s.name.clone());
        opts.apps = Some(demo_apps(saml.as_deref(), &format!("http://{soap}"), &authorizer_url));
    }
    // `prepare` removes the directory itself when it fails (e.g. a port is busy).
    let stack = sim::stack::prepare(opts).await?;
    let remove = RemoveOnDrop(stack.dir.clone());
    Ok(Ready { stack, _remove: remove })
}
