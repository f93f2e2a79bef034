//! The container files work as the README says, without a container engine (CI has none):
//! the README's `docker run` line and `docker/compose.yaml` mount exactly the files
//! `docker/aisgate.toml` needs, so `aisgate check` passes inside the container (issue 14 item 2).
//! The build itself is checked by `tools/docker-build-check`.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_aisgate");
const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// A bind mount: path on the host relative to the repository, absolute path in the container.
type Mount = (String, String);

/// The `-v "$PWD/HOST:CONTAINER:ro"` arguments of the README's `docker run` line (the one that
/// starts the image with its default command), continuation lines joined.
fn readme_docker_run_mounts() -> Vec<Mount> {
    let readme = std::fs::read_to_string(Path::new(REPO).join("README.md")).unwrap();
    let joined = readme.replace("\\\n", " ");
    let line = joined
        .lines()
        .find(|l| l.trim_start().starts_with("docker run --rm -p ") && l.trim_end().ends_with(" aisgate"))
        .expect("README has a `docker run … aisgate` line");
    line.split(" -v ")
        .skip(1)
        .map(|arg| {
            let arg = arg.split_whitespace().next().unwrap().trim_matches('"');
            let rest = arg.strip_prefix("$PWD/").unwrap_or_else(|| panic!("mount {arg} is not $PWD-relative"));
            let mut parts = rest.split(':');
            (parts.next().unwrap().to_owned(), parts.next().unwrap().to_owned())
        })
        .collect()
}

/// Gateway service `service`'s `volumes` (relative to docker/) and `secrets` (at
/// /run/secrets/NAME) in docker/compose.yaml. A line-based reading of the file's own layout,
/// not a YAML parser: if the layout changes, the assertion that mounts were found fails.
fn compose_mounts(service: &str) -> Vec<Mount> {
    let text = compose_text();
    let header = format!("{service}:");
    let mut mounts = Vec::new();
    let mut section = "";
    let mut secret_files = std::collections::HashMap::new();
    let mut secret_name = String::new();
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        match (indent, trimmed) {
            (0, t) => section = if t == "secrets:" { "top-secrets" } else { "" },
            (2, t) if t == header => section = "aisgate",
            (2, name) if section == "top-secrets" => secret_name = name.trim_end_matches(':').to_owned(),
            (2, _) => section = if section == "top-secrets" { section } else { "" },
            (4, "volumes:") if section.starts_with("aisgate") => section = "aisgate-volumes",
            (4, "secrets:") if section.starts_with("aisgate") => section = "aisgate-secrets",
            (4, t) if section == "top-secrets" => {
                if let Some(file) = t.strip_prefix("file: ") {
                    secret_files.insert(secret_name.clone(), file.trim_start_matches("./").to_owned());
                }
            }
            (4, _) if section.starts_with("aisgate") => section = "aisgate",
            (6, t) if section == "aisgate-volumes" => {
                let spec = t.trim_start_matches("- ").trim_start_matches("./");
                let mut parts = spec.split(':');
                mounts.push((format!("docker/{}", parts.next().unwrap()), parts.next().unwrap().to_owned()));
            }
            (6, t) if section == "aisgate-secrets" => {
                let name = t.trim_start_matches("- ").split_whitespace().next().unwrap().to_owned();
                mounts.push((name.clone(), format!("/run/secrets/{name}")));
            }
            _ => {}
        }
    }
    // Secrets name a top-level entry whose `file` is the host path.
    mounts
        .into_iter()
        .map(|(host, container)| match secret_files.get(&host) {
            Some(file) => (format!("docker/{file}"), container),
            None => (host, container),
        })
        .collect()
}

/// The host side as the README's preparation commands leave it: the repository's
/// docker/aisgate.toml, a session key, an EC P-256 token key and a KAAS client certificate.
fn prepared_host(host: &Path) {
    let docker = host.join("docker");
    for d in ["secrets", "token", "kaas"] {
        std::fs::create_dir_all(docker.join(d)).unwrap();
    }
    for config in ["aisgate.toml", "aisgate-pair.toml"] {
        std::fs::copy(Path::new(REPO).join("docker").join(config), docker.join(config)).unwrap();
    }
    std::fs::write(docker.join("secrets/session_key"), "c2Vzc2lvbi1rZXktZm9yLXRoZS1jb250YWluZXItdGVzdA==\n").unwrap();
    std::fs::write(docker.join("secrets/redis_password"), "cmVkaXMtcGFzc3dvcmQ=\n").unwrap();
    std::fs::create_dir_all(host.join("pki")).unwrap();
    let pki = aisgate::sim::certs::generate(&host.join("pki")).unwrap();
    // rcgen's keys are EC P-256 in PKCS#8, as `openssl genpkey … ec_paramgen_curve:P-256` writes.
    std::fs::copy(&pki.server_key, docker.join("token/token-es256.pem")).unwrap();
    std::fs::copy(&pki.client_cert, docker.join("kaas/client.pem")).unwrap();
    std::fs::copy(&pki.client_key, docker.join("kaas/client.key")).unwrap();
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    }
}

/// Lays the mounts out under `root` as the container sees them, points the configuration's
/// absolute paths under the mounted top-level directories (/etc, /run) into `root`, and runs
/// `aisgate check` on it.
fn check_in_container(mounts: &[Mount]) -> (i32, String) {
    let tmp = tempfile::tempdir().unwrap();
    let host = tmp.path().join("host");
    let root = tmp.path().join("root");
    prepared_host(&host);
    for (from, to) in mounts {
        let source = host.join(from);
        assert!(source.exists(), "the README's preparation does not create {from}");
        copy_tree(&source, &root.join(to.trim_start_matches('/')));
    }
    let config = root.join("etc/aisgate/aisgate.toml");
    let text = std::fs::read_to_string(&config).expect("the configuration is mounted at /etc/aisgate/aisgate.toml");
    let mut tops: Vec<String> =
        mounts.iter().map(|(_, to)| to.trim_start_matches('/').split('/').next().unwrap().to_owned()).collect();
    tops.dedup();
    let mut rewritten = text;
    for top in &tops {
        rewritten = rewritten.replace(&format!("\"/{top}/"), &format!("\"{}/{top}/", root.display()));
    }
    std::fs::write(&config, rewritten).unwrap();
    let out = Command::new(BIN).args(["check", "--config"]).arg(&config).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn paths(mounts: &[Mount]) -> Vec<PathBuf> {
    mounts.iter().map(|(_, to)| PathBuf::from(to)).collect()
}

#[test]
fn the_readme_docker_run_line_mounts_everything_the_container_config_needs() {
    let mounts = readme_docker_run_mounts();
    assert!(mounts.len() >= 2, "{mounts:?}");
    let (code, out) = check_in_container(&mounts);
    assert_eq!(code, 0, "mounts {mounts:?}:\n{out}");
    assert!(out.contains("configuration OK"), "{out}");
}

fn compose_text() -> String {
    std::fs::read_to_string(Path::new(REPO).join("docker/compose.yaml")).unwrap()
}

#[test]
fn the_compose_file_mounts_everything_the_container_config_needs() {
    for service in ["aisgate-a", "aisgate-b"] {
        let mounts = compose_mounts(service);
        let paths = paths(&mounts);
        for secret in ["/run/secrets/session_key", "/run/secrets/redis_password"] {
            assert!(paths.contains(&PathBuf::from(secret)), "{service}: {mounts:?}");
        }
        let (code, out) = check_in_container(&mounts);
        assert_eq!(code, 0, "{service}: mounts {mounts:?}:\n{out}");
        assert!(out.contains("configuration OK"), "{out}");
    }
}

/// The lines of the top-level service `name` in docker/compose.yaml (its header excluded).
fn service_block(text: &str, name: &str) -> Vec<String> {
    let header = format!("  {name}:");
    let mut lines = text.lines().skip_while(|l| *l != header);
    assert!(lines.next().is_some(), "docker/compose.yaml has no service {name}");
    let mut block: Vec<String> =
        lines.take_while(|l| l.is_empty() || l.starts_with("    ")).map(str::to_owned).collect();
    while block.last().is_some_and(|l| l.is_empty()) {
        block.pop();
    }
    block
}

/// docker/compose.yaml is the production shape the README describes (issue 10): two identical
/// gateways sharing sessions on the compose Redis, behind a load balancer without stickiness
/// whose address is the one the gateways trust. Checked without a container engine, so the
/// files cannot drift apart unnoticed.
#[test]
fn the_compose_pair_is_two_identical_gateways_on_redis_behind_a_balancer_without_stickiness() {
    let text = compose_text();
    for service in ["lb", "aisgate-a", "aisgate-b", "redis", "echo"] {
        assert!(!service_block(&text, service).is_empty(), "service {service}");
    }
    assert_eq!(service_block(&text, "aisgate-a"), service_block(&text, "aisgate-b"), "the two gateways differ");
    let gateway = service_block(&text, "aisgate-a").join("\n");
    assert!(gateway.contains("./aisgate-pair.toml:/etc/aisgate/aisgate.toml:ro"), "{gateway}");
    assert!(!gateway.contains("ports:"), "gateways are reached only through the balancer");

    // The balancer: its configuration exists, is mounted, names both gateways, never sticks.
    let lb = service_block(&text, "lb").join("\n");
    assert!(lb.contains("./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro"), "{lb}");
    let haproxy = std::fs::read_to_string(Path::new(REPO).join("docker/haproxy.cfg")).unwrap();
    let directives: Vec<&str> =
        haproxy.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    for server in ["server aisgate-a aisgate-a:8080", "server aisgate-b aisgate-b:8080"] {
        assert!(directives.contains(&server), "haproxy.cfg lacks {server:?}");
    }
    assert!(directives.contains(&"balance roundrobin"), "{directives:?}");
    for sticky in ["cookie", "stick", "balance source", "hash-type"] {
        assert!(!directives.iter().any(|d| d.starts_with(sticky)), "haproxy.cfg sticks: {sticky}");
    }

    // The gateways trust exactly the balancer's fixed address, inside the compose network.
    let address = lb.lines().find_map(|l| l.trim().strip_prefix("ipv4_address: ")).expect("lb ipv4_address").trim();
    let pair = std::fs::read_to_string(Path::new(REPO).join("docker/aisgate-pair.toml")).unwrap();
    let config: toml::Value = toml::from_str(&pair).unwrap();
    assert_eq!(
        config["server"]["trusted_proxies"].as_array().unwrap(),
        &vec![toml::Value::from(format!("{address}/32"))]
    );
    let subnet = text.lines().find_map(|l| l.trim().strip_prefix("- subnet: ")).expect("network subnet");
    let net: ipnet::IpNet = subnet.trim().parse().unwrap();
    assert!(net.contains(&address.parse::<std::net::IpAddr>().unwrap()), "{address} outside {subnet}");
    // Sessions on the compose Redis, with the password the Redis service is given.
    assert_eq!(config["session"]["store"].as_str(), Some("redis"));
    assert_eq!(config["session"]["redis"]["url"].as_str(), Some("redis://redis:6379"));
    assert_eq!(config["session"]["redis"]["password_file"].as_str(), Some("/run/secrets/redis_password"));
    let redis = service_block(&text, "redis").join("\n");
    assert!(redis.contains("--requirepass \\\"$$(cat /run/secrets/redis_password)\\\""), "{redis}");
}

#[test]
fn a_docker_run_line_that_mounts_only_the_config_fails_the_check() {
    // The README's old line (issue 14 item 2): the session key and certificates were missing.
    let (code, out) = check_in_container(&[("docker/aisgate.toml".to_owned(), "/etc/aisgate/aisgate.toml".to_owned())]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("session key \"c1\": cannot read"), "{out}");
}
