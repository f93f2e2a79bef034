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

/// The aisgate service's `volumes` (relative to docker/) and `secrets` (at /run/secrets/NAME)
/// in docker/compose.yaml. A line-based reading of the file's own layout, not a YAML parser:
/// if the layout changes, the assertion that mounts were found fails.
fn compose_mounts() -> Vec<Mount> {
    let text = std::fs::read_to_string(Path::new(REPO).join("docker/compose.yaml")).unwrap();
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
            (2, "aisgate:") => section = "aisgate",
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
    std::fs::copy(Path::new(REPO).join("docker/aisgate.toml"), docker.join("aisgate.toml")).unwrap();
    std::fs::write(docker.join("secrets/session_key"), "c2Vzc2lvbi1rZXktZm9yLXRoZS1jb250YWluZXItdGVzdA==\n").unwrap();
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

#[test]
fn the_compose_file_mounts_everything_the_container_config_needs() {
    let mounts = compose_mounts();
    assert!(paths(&mounts).contains(&PathBuf::from("/run/secrets/session_key")), "{mounts:?}");
    let (code, out) = check_in_container(&mounts);
    assert_eq!(code, 0, "mounts {mounts:?}:\n{out}");
    assert!(out.contains("configuration OK"), "{out}");
}

#[test]
fn a_docker_run_line_that_mounts_only_the_config_fails_the_check() {
    // The README's old line (issue 14 item 2): the session key and certificates were missing.
    let (code, out) = check_in_container(&[("docker/aisgate.toml".to_owned(), "/etc/aisgate/aisgate.toml".to_owned())]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("session key \"c1\": cannot read"), "{out}");
}
