//! The command line: `check` accepts a good configuration and names file:line:column for bad
//! ones; `run` drains in-flight requests on SIGTERM.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_aisgate");

struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        let dir = tempfile::tempdir().unwrap().keep();
        aisgate::sim::certs::generate(&dir).unwrap();
        std::fs::write(dir.join("session.key"), [7u8; 32]).unwrap();
        Dir(dir)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text.replace("{dir}", &self.0.display().to_string())).unwrap();
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn good_config(listen: &str, ops: &str, upstream: &str) -> String {
    format!(
        r#"include = ["apps.d/*.toml"]

[server]
listen = ["{listen}"]
public_base_url = "https://portal.example.cz"
shutdown_grace_secs = 10

[ops]
listen = "{ops}"

[session]
keys = [{{ id = "k1", file = "{{dir}}/session.key" }}]

[[provider]]
name = "jip"
kind = "kaas"
preset = "caais-test"
ats_id = "MY_AIS"
client_cert = "{{dir}}/client.pem"
client_key = "{{dir}}/client.key"

[[app]]
name = "portal"
upstream = "{upstream}"
providers = ["jip"]
public_paths = ["/public"]
"#
    )
}

fn check(config: &Path) -> (i32, String, String) {
    let out = Command::new(BIN).args(["check", "--config"]).arg(config).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn check_accepts_a_good_config_and_prints_a_summary() {
    let dir = Dir::new();
    let main = dir.write("aisgate.toml", &good_config("127.0.0.1:8080", "127.0.0.1:9090", "http://127.0.0.1:3000"));
    dir.write("apps.d/reports.toml", "[[app]]\nname = \"reports\"\npath_prefix = \"/reports\"\nupstream = \"https://reports.internal:8443/app/\"\nproviders = [\"jip\"]\n");
    let (code, stdout, stderr) = check(&main);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("configuration OK"));
    assert!(stdout.contains("jip (kind kaas), callback https://portal.example.cz/.aisgate/callback/jip"), "{stdout}");
    assert!(stdout.contains("reports: any host /reports -> https://reports.internal:8443/app/"), "{stdout}");
}

#[test]
fn bad_configs_name_file_line_column_and_reason() {
    let dir = Dir::new();
    let base = good_config("127.0.0.1:8080", "127.0.0.1:9090", "http://127.0.0.1:3000");
    // Unknown key: line 5 of the main file.
    let typo = dir.write("typo.toml", &base.replace("public_base_url", "public_base_ur"));
    let (code, _, err) = check(&typo);
    assert_eq!(code, 2);
    assert!(err.starts_with(&format!("{}:5:1: unknown field `public_base_ur`", typo.display())), "{err}");
    // A wrong value type names its line and column.
    let bad_type = dir.write("type.toml", &base.replace("shutdown_grace_secs = 10", "shutdown_grace_secs = \"ten\""));
    let (_, _, err) = check(&bad_type);
    assert!(err.starts_with(&format!("{}:6:23: invalid type: string \"ten\"", bad_type.display())), "{err}");
    // Cross-field errors point at the table, in the included file where it lives.
    let main = dir.write("main.toml", &base);
    let included = dir.write(
        "apps.d/broken.toml",
        "# broken app\n\n[[app]]\nname = \"broken\"\npath_prefix = \"/b\"\nupstream = \"ftp://x\"\nproviders = [\"nope\"]\n",
    );
    let (code, _, err) = check(&main);
    assert_eq!(code, 2);
    let lines: Vec<&str> = err.lines().collect();
    let at = format!("{}:3:1: app \"broken\"", included.display());
    assert!(
        lines.contains(&format!("{at}: upstream \"ftp://x\" must be an http(s) URL without query").as_str()),
        "{err}"
    );
    assert!(lines.contains(&format!("{at}: provider \"nope\" is not defined in any [[provider]]").as_str()), "{err}");
    std::fs::remove_file(&included).unwrap();
    // TOML syntax errors and unreadable secrets are located too.
    let syntax = dir.write("syntax.toml", &base.replace("[ops]", "[ops"));
    let (_, _, err) = check(&syntax);
    assert!(err.starts_with(&format!("{}:8:5: unclosed table", syntax.display())), "{err}");
    let missing_key = dir.write("nokey.toml", &base.replace("session.key", "missing.key"));
    let (code, _, err) = check(&missing_key);
    assert_eq!(code, 2);
    assert!(err.contains("[session] session key \"k1\": cannot read"), "{err}");
    let unknown_kind = dir.write("kind.toml", &base.replace("kind = \"kaas\"", "kind = \"ldap\""));
    let (_, _, err) = check(&unknown_kind);
    assert!(err.contains(":16:8: unknown variant `ldap`, expected one of `kaas`, `saml`, `oidc`"), "{err}");
}

#[test]
fn session_admin_and_audit_errors_name_the_key_not_the_first_line() {
    // These tables' errors used to point at line 1 of the main file. `good_config`'s
    // `[session]` is line 11 and its `keys = [{ … }]` line 12 (the key's entry at column 9);
    // an `[admin]` or `[audit]` table is put in before it, its key indented to show the column.
    let dir = Dir::new();
    let base = good_config("127.0.0.1:8080", "127.0.0.1:9090", "http://127.0.0.1:3000");
    let error_line = |config: &Path| {
        let (code, _, err) = check(config);
        assert_eq!(code, 2, "{err}");
        err
    };

    // [session], a cross-field check (config::check): the key that is wrong.
    let idle = dir.write("idle.toml", &base.replace("[session]\n", "[session]\nidle_timeout_secs = 0\n"));
    let err = error_line(&idle);
    assert!(
        err.contains(&format!(
            "{}:12:1: [session] idle_timeout_secs must be > 0 and ≤ absolute_timeout_secs",
            idle.display()
        )),
        "{err}"
    );
    // [session], a key file that cannot be read (Gateway::build): that key's entry.
    let unreadable = dir.write("nokey.toml", &base.replace("session.key", "missing.key"));
    let err = error_line(&unreadable);
    assert!(
        err.contains(&format!("{}:12:9: [session] session key \"k1\": cannot read", unreadable.display())),
        "{err}"
    );

    // [admin]: a token file that cannot be read.
    let admin = base.replace("[session]\n", "[admin]\n  token_file = \"{dir}/absent.token\"\n\n[session]\n");
    let admin = dir.write("admin.toml", &admin);
    let err = error_line(&admin);
    assert!(err.contains(&format!("{}:12:3: [admin] token_file ", admin.display())), "{err}");

    // [audit]: a file in a directory that does not exist.
    let audit = base.replace("[session]\n", "[audit]\n    file = \"{dir}/no/such/dir/audit.log\"\n\n[session]\n");
    let audit = dir.write("audit.toml", &audit);
    let err = error_line(&audit);
    assert!(err.contains(&format!("{}:12:5: [audit] file ", audit.display())), "{err}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish() {
    let slow = support::upstream(|_req| async {
        tokio::time::sleep(Duration::from_millis(2000)).await;
        support::text(200, "finished")
    })
    .await;
    let dir = Dir::new();
    let (port, ops) = (free_port(), free_port());
    let config = dir.write("run.toml", &good_config(&format!("127.0.0.1:{port}"), &format!("127.0.0.1:{ops}"), &slow));
    let mut child = Command::new(BIN)
        .arg("run")
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if client.get(format!("http://127.0.0.1:{ops}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "gateway did not start");
    let url = format!("http://127.0.0.1:{port}/public/slow");
    let in_flight = tokio::spawn(async move { reqwest::Client::new().get(url).send().await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let resp = in_flight.await.unwrap().expect("in-flight request completes");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "finished");
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(reqwest::Client::new().get(format!("http://127.0.0.1:{port}/public/x")).send().await.is_err());
}

#[test]
fn the_example_config_fails_only_for_its_missing_key_and_certificate_files() {
    // Keeps config/aisgate.example.toml in step with the schema: every field it shows parses
    // and passes the cross-field checks; what remains are the files it points at.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/aisgate.example.toml");
    let (code, _, err) = check(&example);
    assert_eq!(code, 2);
    let lines: Vec<&str> = err.lines().collect();
    assert!(!lines.is_empty());
    for line in lines {
        assert!(line.contains("No such file or directory") || line.contains("cannot read"), "{line}");
    }
}

#[test]
fn the_readme_shows_what_check_prints_for_the_example_config() {
    // Issue 14 item 5: the README's example named line 163 for the jip provider long after it
    // had moved. Every line it quotes for the example config must be in check's output.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (_, _, err) = check(&repo.join("config/aisgate.example.toml"));
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let quoted: Vec<&str> = readme.lines().filter(|l| l.starts_with("config/aisgate.example.toml:")).collect();
    assert!(quoted.len() >= 2, "the README quotes the example's errors");
    // check prints paths as given; the test passes an absolute one.
    let printed: Vec<String> = err.lines().map(|l| l.replace(&format!("{}/", repo.display()), "")).collect();
    for line in quoted {
        assert!(printed.iter().any(|p| p == line), "README line not printed by check: {line}\n{printed:#?}");
    }
}

#[test]
fn check_refuses_secure_cookies_on_a_plain_http_public_url_except_for_localhost() {
    let dir = Dir::new();
    let base = good_config("127.0.0.1:8080", "127.0.0.1:9090", "http://127.0.0.1:3000");
    let plain = dir.write("plain.toml", &base.replace("https://portal.example.cz", "http://portal.example.cz"));
    let (code, _, err) = check(&plain);
    assert_eq!(code, 2);
    assert!(
        err.starts_with(&format!(
            // Line 5 of `good_config`: the key, not the file's first line.
            "{}:5:1: [server] public_base_url \"http://portal.example.cz\" is plain http but [session] cookie_secure = true",
            plain.display()
        )),
        "{err}"
    );
    for local in ["http://localhost:8080", "http://127.0.0.1:8080", "http://[::1]:8080"] {
        let config = dir.write("local.toml", &base.replace("https://portal.example.cz", local));
        let (code, _, err) = check(&config);
        assert_eq!(code, 0, "{local}: {err}");
    }
    // Development over plain http: allowed with cookie_secure = false, and warned about.
    let dev = base
        .replace("https://portal.example.cz", "http://portal.example.cz")
        .replace("[session]\n", "[session]\ncookie_secure = false\n");
    let (code, out, err) = check(&dir.write("dev.toml", &dev));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("DANGEROUS: [session] cookie_secure = false"), "{out}");
}

#[test]
fn check_warns_about_every_setting_that_weakens_security() {
    let dir = Dir::new();
    let base = good_config("127.0.0.1:8080", "127.0.0.1:9090", "http://127.0.0.1:3000");
    let (code, out, _) = check(&dir.write("good.toml", &base));
    assert_eq!(code, 0);
    assert!(!out.contains("warning:"), "a secure config has no warnings: {out}");
    let weak = base
        .replace("[session]\n", "[session]\ncookie_name = \"sid\"\nlogin_cookie_name = \"__Host-pre\"\n")
        .replace("shutdown_grace_secs = 10", "shutdown_grace_secs = 10\ntrusted_proxies = [\"0.0.0.0/0\", \"10.0.0.0/8\"]")
        .replace(
            "public_paths = [\"/public\"]\n",
            "public_paths = [\"/public\"]\nforward_gateway_cookies = true\n\n[app.dangerous]\nskip_upstream_tls_verify = true\n",
        );
    let main = dir.write("weak.toml", &weak);
    let (code, out, err) = check(&main);
    assert_eq!(code, 0, "{err}");
    let warnings: Vec<&str> = out.lines().filter(|l| l.starts_with("warning: ")).collect();
    let at = |line: usize| format!("warning: {}:{line}:1: DANGEROUS: ", main.display());
    let app_line = weak.lines().position(|l| l == "[[app]]").unwrap() + 1;
    let cookie_name_line = weak.lines().position(|l| l.starts_with("cookie_name = ")).unwrap() + 1;
    let expected = [
        format!("{}[session] cookie_name \"sid\" lacks the __Host- prefix", at(cookie_name_line)),
        format!("{}[server] trusted_proxies contains 0.0.0.0/0", at(1)),
        format!("{}app \"portal\": dangerous.skip_upstream_tls_verify", at(app_line)),
        format!("{}app \"portal\": forward_gateway_cookies = true", at(app_line)),
    ];
    for e in &expected {
        assert!(warnings.iter().any(|w| w.starts_with(e.as_str())), "{e} missing in {warnings:#?}");
    }
    assert_eq!(warnings.len(), expected.len(), "{warnings:#?}");
}

fn explain(config: &Path, url: &str, identity: Option<&Path>) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["check", "--config"]).arg(config).args(["--explain", url]);
    if let Some(identity) = identity {
        cmd.arg("--as").arg(identity);
    }
    let out = cmd.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

const RULES: &str = r#"
[[app.rule]]
path_prefix = "/admin"
any_role = ["ADMIN"]

[[app.rule]]
path_prefix = "/admin/reports"
any_role = ["REPORTS"]
"#;

#[test]
fn check_warns_about_a_rule_shadowed_by_an_earlier_broader_one() {
    let dir = Dir::new();
    let config = dir.write("aisgate.toml", &(good_config("127.0.0.1:0", "127.0.0.1:0", "http://127.0.0.1:1") + RULES));
    let (code, _, stderr) = check(&config);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("warning: ")
            && stderr
                .contains("rule #2 (path_prefix \"/admin/reports\") is never used: rule #1 (path_prefix \"/admin\")"),
        "{stderr}"
    );
    assert!(stderr.contains("aisgate.toml:"), "the warning names the file: {stderr}");
}

/// Issue 11 item 5: an operation rule (`operation = …`) decides SOAP operations, not paths:
/// it is not shadowed by a path rule with the same prefix, nor does it shadow one; two rules
/// for the same operation do shadow.
#[test]
fn operation_rules_shadow_only_rules_of_the_same_operation() {
    let dir = Dir::new();
    let rules = r#"
[[app.rule]]
path_prefix = "/admin"
operation = "PoskytniData"
require_roles = { role_crzp = ["C110:C206"] }

[[app.rule]]
path_prefix = "/admin"
any_role = ["ADMIN"]

[[app.rule]]
path_prefix = "/admin/x"
operation = "PrijmiData"
require_roles = { role_rpp = ["A100:A001"] }

[[app.rule]]
path_prefix = "/admin/x"
operation = "PoskytniData"
require_roles = { role_cizp = ["C100"] }
"#;
    let config = dir.write("aisgate.toml", &(good_config("127.0.0.1:0", "127.0.0.1:0", "http://127.0.0.1:1") + rules));
    let (code, _, stderr) = check(&config);
    assert_eq!(code, 0, "{stderr}");
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("is never used")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("rule #4 (path_prefix \"/admin/x\") is never used: rule #1"), "{stderr}");
}

#[test]
fn check_explain_names_app_readings_rule_and_verdict() {
    let dir = Dir::new();
    let config = dir.write("aisgate.toml", &(good_config("127.0.0.1:0", "127.0.0.1:0", "http://127.0.0.1:1") + RULES));
    let clerk = dir.write("clerk.json", r#"{"provider": "jip", "subject": "u1", "access_roles": ["CTENAR"]}"#);
    let admin = dir.write("admin.json", r#"{"provider": "jip", "subject": "u2", "access_roles": ["ADMIN"]}"#);
    let stranger = dir.write("nia.json", r#"{"provider": "nia", "subject": "u3", "access_roles": ["ADMIN"]}"#);

    let (code, text) = explain(&config, "https://portal.example.cz/admin;x/secret", Some(&clerk));
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("app: portal"), "{text}");
    assert!(text.contains(r#"readings (every one must pass): ["/admin;x/secret", "/admin/secret"]"#), "{text}");
    assert!(
        text.contains(
            r#""/admin/secret": rule #1 (path_prefix "/admin", any_role ["ADMIN"]): denied: none of the required roles"#
        ),
        "{text}"
    );
    assert!(text.contains("result: 403"), "{text}");

    let (code, text) = explain(&config, "/admin/secret", Some(&admin));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("result: allowed"), "{text}");

    let (code, text) = explain(&config, "/admin/secret", Some(&stranger));
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("identity from provider \"nia\", not one of the app's"), "{text}");

    let (code, text) = explain(&config, "/public/x", None);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("public path"), "{text}");

    let (code, text) = explain(&config, "/other", None);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("no session: browsers are sent to log in (jip)"), "{text}");

    let (code, text) = explain(&config, "/public/%25%32%65%25%32%65/admin", None);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("double-encoded") && text.contains("400"), "{text}");

    let (code, text) = explain(&config, "https://portal.example.cz:@evil.com/", None);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("Host is malformed"), "{text}");
}

/// A SAML provider table for the dangerous-settings tests (NIA test preset, no keys).
const NIA: &str = r#"
[[provider]]
name = "nia"
kind = "saml"
preset = "nia-test"
entity_id = "https://portal.example.cz/"
encryption_keys = [{ key = "{dir}/enc.key", cert = "{dir}/enc.pem" }]
"#;

fn with_rsa_keys(dir: &Dir) {
    let rsa = aisgate::sim::certs::rsa_identity("sp").unwrap();
    dir.write("enc.key", &rsa.key_pem);
    dir.write("enc.pem", &rsa.cert_pem);
}

#[test]
fn a_key_that_moved_into_dangerous_is_refused_naming_its_new_place_and_position() {
    let dir = Dir::new();
    let text = good_config("127.0.0.1:0", "127.0.0.1:0", "http://127.0.0.1:1") + NIA + "allow_unsolicited = true\n";
    let config = dir.write("moved.toml", &text);
    let (code, _, err) = check(&config);
    assert_ne!(code, 0, "{err}");
    let line = text.lines().position(|l| l == "allow_unsolicited = true").unwrap() + 1;
    assert!(
        err.contains(&format!(
            "{}:{line}:1: `allow_unsolicited` weakens security and moved to the `dangerous` table: write [provider.dangerous] allow_unsolicited = true",
            config.display()
        )),
        "{err}"
    );
}

#[test]
fn every_set_dangerous_option_is_printed_by_check_and_plain_http_needs_one() {
    let dir = Dir::new();
    with_rsa_keys(&dir);
    let base = good_config("127.0.0.1:0", "127.0.0.1:0", "http://127.0.0.1:1");
    let weak = base.clone()
        + NIA
        + "\n[provider.dangerous]\nallow_unencrypted_assertions = true\nallow_unsolicited = true\n\
           accept_unsigned_logout_requests = true\nignore_returned_loa = true\n\
           \n[identity_token]\nalgorithm = \"ES256\"\ndangerous.ephemeral_key = true\n";
    let main = dir.write("weak.toml", &weak);
    let (code, out, err) = check(&main);
    assert_eq!(code, 0, "{err}");
    for expected in [
        "provider \"nia\": dangerous.allow_unencrypted_assertions",
        "provider \"nia\": dangerous.allow_unsolicited",
        "provider \"nia\": dangerous.accept_unsigned_logout_requests",
        "provider \"nia\": dangerous.ignore_returned_loa",
        "provider \"nia\": dangerous.issuer_case_insensitive: the IdP entityID is compared ignoring case (implied by the preset)",
        "[identity_token] dangerous.ephemeral_key",
    ] {
        assert!(out.lines().any(|l| l.contains("DANGEROUS: ") && l.contains(expected)), "{expected} missing:\n{out}");
    }

    // An ephemeral identity-token key is an opt-in.
    let implicit = base.clone() + "\n[identity_token]\nalgorithm = \"ES256\"\n";
    let (code, _, err) = check(&dir.write("token.toml", &implicit));
    assert_ne!(code, 0);
    assert!(
        err.contains("[identity_token] has no key_file: set one, or [identity_token.dangerous] ephemeral_key = true"),
        "{err}"
    );

    // Plain http:// off loopback: refused, allowed by opt-in (and then printed).
    let plain = base.clone()
        + "\n[[provider]]\nname = \"lab\"\nkind = \"saml\"\nprofile = \"caais\"\nentity_id = \"lab\"\n\
           idp_metadata_url = \"http://idp.lab.example/metadata\"\n\
           encryption_keys = [{ key = \"{dir}/enc.key\", cert = \"{dir}/enc.pem\" }]\n[provider.dangerous]\n";
    let (code, _, err) = check(&dir.write("plain.toml", &plain));
    assert_ne!(code, 0);
    assert!(err.contains("idp_metadata_url \"http://idp.lab.example/metadata\": plain http:// is refused"), "{err}");
    let allowed = plain.replace("[provider.dangerous]\n", "[provider.dangerous]\nallow_plain_http = true\n");
    let (code, out, err) = check(&dir.write("allowed.toml", &allowed));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("provider \"lab\": dangerous.allow_plain_http"), "{out}");
    // With a production preset, never.
    let prod = base
        + "\n[[provider]]\nname = \"nia\"\nkind = \"saml\"\npreset = \"nia-prod\"\nentity_id = \"https://portal.example.cz/\"\n\
           idp_metadata_url = \"http://idp.lab.example/metadata\"\n\
           encryption_keys = [{ key = \"{dir}/enc.key\", cert = \"{dir}/enc.pem\" }]\n[provider.dangerous]\nallow_plain_http = true\n";
    let (code, _, err) = check(&dir.write("prod.toml", &prod));
    assert_ne!(code, 0);
    assert!(err.contains("plain http:// is not allowed with a production preset"), "{err}");
}

#[test]
fn human_logs_written_to_a_pipe_have_no_colour_codes() {
    // Issue 14: the human format wrote ANSI colour codes into files and pipes. Here stdout
    // is a pipe, so the lines must be plain text.
    use std::io::{BufRead, BufReader};
    let dir = Dir::new();
    let config = dir.write("run.toml", &good_config("127.0.0.1:0", "127.0.0.1:0", "http://127.0.0.1:1"));
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    // Reads until the start line; if the gateway exits first, the pipe closes and the loop ends.
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let started = line.contains("aisgate started");
        seen.push(line);
        if started {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let start =
        seen.iter().find(|l| l.contains("aisgate started")).unwrap_or_else(|| panic!("no start line: {seen:#?}"));
    assert!(start.contains("INFO"), "{start}");
    assert!(seen.iter().all(|l| !l.contains('\x1b')), "colour codes in a pipe: {seen:#?}");
}

#[test]
fn a_demo_that_cannot_listen_removes_its_directory_and_suggests_another_address() {
    // Issue 14 item 9: a busy port left `aisgate-*` (with private keys) in the temp dir.
    let tmp = tempfile::tempdir().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let out = Command::new(BIN)
        .args(["demo", "--listen", &busy.local_addr().unwrap().to_string()])
        .args(["--ops-listen", "127.0.0.1:0", "--sim-login-listen", "127.0.0.1:0", "--sim-ws-listen", "127.0.0.1:0"])
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("cannot listen on {} (gateway)", busy.local_addr().unwrap())), "{stderr}");
    assert!(stderr.contains("aisgate demo --listen 127.0.0.1:PORT"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "left behind in TMPDIR: {left:?}");
}

#[cfg(unix)]
#[tokio::test]
async fn the_stack_directory_and_its_keys_are_private() {
    // Issue 14 item 9: the directory holding the demo's keys was world-readable.
    use std::os::unix::fs::PermissionsExt;
    let stack = aisgate::sim::stack::prepare(aisgate::sim::stack::StackOptions {
        saml: Some(aisgate::sim::stack::SamlStackProvider::default()),
        ..Default::default()
    })
    .await
    .unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir_mode = mode(&stack.dir);
    let mut keys = Vec::new();
    for entry in std::fs::read_dir(&stack.dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "key") {
            keys.push((path.clone(), mode(&path)));
        }
    }
    std::fs::remove_dir_all(&stack.dir).unwrap();
    assert_eq!(dir_mode, 0o700, "directory mode {dir_mode:o}");
    assert!(keys.len() >= 4, "session, server, client and SAML keys expected: {keys:?}");
    for (path, m) in keys {
        assert_eq!(m, 0o600, "{} has mode {m:o}", path.display());
    }
}

#[test]
fn check_prints_every_url_to_register_at_each_idp() {
    // Issue 14 item 4: `check` printed only the callback; the registration forms also ask for
    // the SLO, metadata, post-logout and back-channel URLs.
    let dir = Dir::new();
    with_rsa_keys(&dir);
    let config = good_config("127.0.0.1:0", "127.0.0.1:0", "http://127.0.0.1:1")
        + NIA
        + "\n[[provider]]\nname = \"caais\"\nkind = \"oidc\"\npreset = \"caais-oidc-test\"\nclient_id = \"MY_AIS\"\n\
           client_cert = \"{dir}/client.pem\"\nclient_key = \"{dir}/client.key\"\n\
           post_logout_redirect_uri = \"https://portal.example.cz/bye\"\n";
    let (code, out, err) = check(&dir.write("all.toml", &config));
    assert_eq!(code, 0, "{err}");
    let base = "https://portal.example.cz/.aisgate";
    for expected in [
        format!("register return URL (login callback): {base}/callback/jip"),
        format!("register logout return URL: {base}/logged-out"),
        "register entity ID (NIA: Unikátní URL adresa zabezpečené části webu): https://portal.example.cz/".to_owned(),
        format!(
            "register assertion consumer service (NIA: URL adresa pro příjem vydaného tokenu): {base}/callback/nia"
        ),
        format!("register single logout service (NIA: URL adresa po odhlášení): {base}/saml/nia/slo"),
        format!("register SP metadata (encryption and signing certificates): {base}/saml/nia/metadata"),
        format!("register redirect_uri: {base}/callback/caais"),
        "register post_logout_redirect_uri: https://portal.example.cz/bye".to_owned(),
        format!("register backchannel_logout_uri: {base}/backchannel-logout/caais"),
    ] {
        assert!(out.lines().any(|l| l.trim() == expected), "{expected} missing:\n{out}");
    }
}

#[test]
fn the_quick_start_config_passes_check_and_prints_what_to_register() {
    // Issue 14 item 4: the README's quick-start configuration (one app behind NIA, one behind
    // CAAIS OIDC) must load as written, with the files its openssl commands make.
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = &readme[readme.find("### 2. Your own gateway").expect("quick-start section")..];
    let start = section.find("```toml\n").unwrap() + "```toml\n".len();
    let block = &section[start..start + section[start..].find("```").unwrap()];
    let dir = Dir::new();
    let rsa = aisgate::sim::certs::rsa_identity("nia").unwrap();
    dir.write("nia-enc.key", &rsa.key_pem);
    dir.write("nia-enc.pem", &rsa.cert_pem);
    std::fs::copy(dir.0.join("client.pem"), dir.0.join("caais.pem")).unwrap();
    std::fs::copy(dir.0.join("client.key"), dir.0.join("caais.key")).unwrap();
    let config = dir.write("aisgate.toml", &block.replace("/etc/aisgate/", "{dir}/"));
    let (code, out, err) = check(&config);
    assert_eq!(code, 0, "{err}");
    for expected in [
        "register single logout service (NIA: URL adresa po odhlášení): https://portal.example.cz/.aisgate/saml/nia/slo",
        "register backchannel_logout_uri: https://portal.example.cz/.aisgate/backchannel-logout/caais",
    ] {
        assert!(out.lines().any(|l| l.trim() == expected), "{expected} missing:\n{out}");
    }
    assert!(block.lines().count() <= 35, "the quick-start config stays short");
}

#[test]
fn check_prints_the_urls_to_register_for_every_host_a_provider_serves() {
    // Issue 12 item 6: an OpenID provider serving an app with its own public_base_url has a
    // redirect URI on that host too; and where each app host's logins complete is shown.
    let dir = Dir::new();
    let config = good_config("127.0.0.1:0", "127.0.0.1:0", "http://127.0.0.1:1")
        + "\n[[provider]]\nname = \"caais\"\nkind = \"oidc\"\npreset = \"caais-oidc-test\"\nclient_id = \"MY_AIS\"\n\
           client_cert = \"{dir}/client.pem\"\nclient_key = \"{dir}/client.key\"\n\
           \n[[app]]\nname = \"own\"\nhosts = [\"own.example.cz\"]\nupstream = \"http://127.0.0.1:1\"\nproviders = [\"caais\"]\n\
           public_base_url = \"https://own.example.cz\"\n\
           \n[[app]]\nname = \"central\"\nhosts = [\"spis.example.cz\"]\nupstream = \"http://127.0.0.1:1\"\nproviders = [\"caais\", \"jip\"]\n\
           central_login = true\n";
    let (code, out, err) = check(&dir.write("hosts.toml", &config));
    assert_eq!(code, 0, "{err}");
    for expected in [
        "register redirect_uri: https://own.example.cz/.aisgate/callback/caais",
        "register redirect_uri: https://portal.example.cz/.aisgate/callback/caais",
        "register return URL (login callback): https://portal.example.cz/.aisgate/callback/jip",
        "own on own.example.cz: logins complete at https://own.example.cz",
        "central on spis.example.cz: logins complete at https://portal.example.cz, handed over",
    ] {
        assert!(out.lines().any(|l| l.trim() == expected), "{expected} missing:\n{out}");
    }
    // JIP/KAAS has one return URL: jip is used at one base only, so one line.
    assert_eq!(
        out.lines().filter(|l| l.trim().starts_with("register return URL (login callback):")).count(),
        1,
        "{out}"
    );
}

#[test]
fn check_probes_the_audit_file_without_creating_it_and_names_a_missing_directory() {
    let dir = Dir::new();
    let base = good_config("127.0.0.1:8080", "127.0.0.1:9090", "http://127.0.0.1:3000");
    std::fs::create_dir(dir.0.join("logs")).unwrap();
    let good = dir.write("good.toml", &format!("{base}\n[audit]\nfile = \"{{dir}}/logs/audit.jsonl\"\n"));
    let (code, out, err) = check(&good);
    assert_eq!(code, 0, "{err}");
    let summary = format!("  audit: file {}/logs/audit.jsonl (0o600)", dir.0.display());
    assert!(out.lines().any(|l| l == summary), "{out}");
    assert!(!dir.0.join("logs/audit.jsonl").exists(), "check creates no audit file (it may run as another user)");
    let missing = dir.write("missing.toml", &format!("{base}\n[audit]\nfile = \"{{dir}}/nope/audit.jsonl\"\n"));
    let (code, _, err) = check(&missing);
    assert_eq!(code, 2);
    let line = err.lines().find(|l| l.contains("[audit] file")).unwrap_or_else(|| panic!("{err}"));
    assert!(line.starts_with(&format!("{}:", missing.display())), "file:line:column first: {line}");
    assert!(line.contains("nope/audit.jsonl") && line.contains("No such file or directory"), "{line}");
}
