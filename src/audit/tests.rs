use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::Instant;

use super::*;

fn failure(reason: &'static str) -> Event<'static> {
    Event::LoginFailure {
        origin: Origin::request("req-1", IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))),
        provider: "jip",
        protocol: Some("kaas"),
        result: "refused",
        reason,
    }
}

fn file_config(path: &Path) -> AuditConfig {
    AuditConfig { file: Some(path.to_owned()), ..AuditConfig::default() }
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is one JSON object"))
        .collect()
}

#[test]
fn an_audit_without_a_sink_is_off_and_emits_nothing() {
    let audit = Audit::start(&AuditConfig::default(), Clock::test()).unwrap();
    assert!(!audit.is_enabled());
    audit.emit(failure("signature"));
    assert_eq!((audit.dropped(), audit.write_errors()), (0, 0));
    assert!(audit.flush(Duration::from_millis(1)));
    assert_eq!(audit.health(), AuditHealth { enabled: false, healthy: true, detail: None });
}

#[test]
fn events_are_appended_as_json_lines_to_a_file_created_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let clock = Clock::test();
    let audit = Audit::start(&file_config(&path), clock.clone()).unwrap();
    audit.emit(failure("signature"));
    clock.advance(Duration::from_secs(1));
    audit.emit(failure("replayed"));
    assert!(audit.flush(Duration::from_secs(5)));
    let written = lines(&path);
    assert_eq!(written.len(), 2);
    assert_eq!(written[0]["v"], 1);
    assert_eq!(written[0]["event"], "login_failure");
    assert_eq!(written[0]["reason"], "signature");
    assert_eq!(written[0]["client_ip"], "192.0.2.7");
    assert_eq!(written[1]["reason"], "replayed");
    let (first, second) = (written[0]["ts"].as_str().unwrap(), written[1]["ts"].as_str().unwrap());
    assert!(first.ends_with('Z') && first.len() == "2026-12-05T11:19:01.123Z".len(), "{first}");
    assert!(second > first, "timestamps come from the injected clock: {first} {second}");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the audit file is created owner-only");
    assert!(audit.health().healthy);
}

#[test]
fn an_existing_file_is_appended_to_and_0640_can_be_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().join("kept.jsonl");
    std::fs::write(&kept, "{\"earlier\":true}\n").unwrap();
    let audit = Audit::start(&file_config(&kept), Clock::test()).unwrap();
    audit.emit(failure("signature"));
    assert!(audit.flush(Duration::from_secs(5)));
    let written = lines(&kept);
    assert_eq!(written.len(), 2, "appended, not truncated");
    assert_eq!(written[0]["earlier"], true);

    let group = dir.path().join("group.jsonl");
    let config = AuditConfig { file_mode: 0o640, ..file_config(&group) };
    let audit = Audit::start(&config, Clock::test()).unwrap();
    audit.emit(failure("signature"));
    assert!(audit.flush(Duration::from_secs(5)));
    assert_eq!(std::fs::metadata(&group).unwrap().permissions().mode() & 0o777, 0o640);
}

#[test]
fn reopen_after_a_rename_writes_new_events_to_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let rotated = dir.path().join("audit.jsonl.1");
    let audit = Audit::start(&file_config(&path), Clock::test()).unwrap();
    audit.emit(failure("before_rotation"));
    assert!(audit.flush(Duration::from_secs(5)));
    // logrotate without copytruncate: rename, then ask the gateway to reopen.
    std::fs::rename(&path, &rotated).unwrap();
    audit.emit(failure("between"));
    audit.reopen();
    audit.emit(failure("after_reopen"));
    assert!(audit.flush(Duration::from_secs(5)));
    let old: Vec<_> = lines(&rotated).iter().map(|l| l["reason"].as_str().unwrap().to_owned()).collect();
    let new: Vec<_> = lines(&path).iter().map(|l| l["reason"].as_str().unwrap().to_owned()).collect();
    assert_eq!(old, ["before_rotation", "between"], "events before the reopen go on into the renamed file");
    assert_eq!(new, ["after_reopen"], "events after the reopen go to a new file at the configured path");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn a_missing_directory_is_a_start_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("audit.jsonl");
    let err = Audit::start(&file_config(&path), Clock::test()).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("[audit] file ") && text.contains("no-such-dir"), "{text}");
}

#[test]
fn a_failed_reopen_keeps_writing_to_the_old_file_and_counts_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("logs");
    std::fs::create_dir(&sub).unwrap();
    let path = sub.join("audit.jsonl");
    let audit = Audit::start(&file_config(&path), Clock::test()).unwrap();
    let moved = dir.path().join("moved");
    std::fs::rename(&sub, &moved).unwrap(); // the configured directory is gone
    audit.reopen();
    audit.emit(failure("kept"));
    assert!(audit.flush(Duration::from_secs(5)));
    assert_eq!(audit.write_errors(), 1, "the failed reopen is counted");
    assert_eq!(lines(&moved.join("audit.jsonl"))[0]["reason"], "kept", "no event lost to a failed reopen");
}

fn syslog_socket(dir: &Path) -> (UnixDatagram, std::path::PathBuf) {
    let path = dir.join("log.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    (socket, path)
}

fn receive(socket: &UnixDatagram) -> String {
    let mut buf = vec![0u8; 65536];
    let n = socket.recv(&mut buf).expect("a syslog datagram");
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

#[test]
fn syslog_rfc5424_datagrams_reach_the_configured_socket() {
    let dir = tempfile::tempdir().unwrap();
    let (socket, path) = syslog_socket(dir.path());
    let config = AuditConfig {
        syslog: true,
        syslog_socket: path,
        syslog_facility: Facility::Local3,
        client_ip: false,
        ..AuditConfig::default()
    };
    let audit = Audit::start(&config, Clock::test()).unwrap();
    audit.emit(failure("signature"));
    let key = crate::session::StoreKey([1; 32]);
    let id = crate::identity::Identity { provider: "jip".into(), subject: "secret".into(), ..Default::default() };
    audit.emit(Event::SessionEnd {
        origin: Origin::none(),
        reason: EndReason::Expired,
        subject: Subject(&id),
        session: SessionRef(&key),
    });
    let first = receive(&socket);
    // local3 (19) * 8 + notice (5) = 157; a refusal is a notice.
    let pid = std::process::id();
    assert!(first.starts_with("<157>1 20"), "{first}");
    let (head, json) = first.split_once(" - ").unwrap();
    assert!(head.ends_with(&format!(" aisgate {pid} login_failure")), "{head}");
    let record: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(record["reason"], "signature");
    assert!(record.get("client_ip").is_none(), "client_ip = false leaves the address out: {json}");
    let second = receive(&socket);
    // local3 * 8 + info (6) = 158.
    assert!(second.starts_with("<158>1 "), "{second}");
    assert!(second.contains(" session_end - {") && !second.contains("secret"), "{second}");
}

#[test]
fn syslog_rfc3164_uses_the_bsd_header() {
    let entry = sink::Entry {
        name: "login_success",
        refusal: false,
        unix_millis: 1_796_469_541_123,
        ts: event::timestamp(1_796_469_541_123),
        json: b"{\"v\":1}".to_vec(),
    };
    let message = sink::format_syslog(SyslogFormat::Rfc3164, Facility::Authpriv, "host", 42, &entry);
    // authpriv (10) * 8 + info (6) = 86.
    assert_eq!(String::from_utf8(message).unwrap(), "<86>Dec  5 11:19:01 aisgate[42]: {\"v\":1}");
    let message = sink::format_syslog(SyslogFormat::Rfc5424, Facility::Auth, "gw-a", 42, &entry);
    assert_eq!(
        String::from_utf8(message).unwrap(),
        "<38>1 2026-12-05T11:19:01.123Z gw-a aisgate 42 login_success - {\"v\":1}"
    );
    let utf8 = sink::Entry { json: "{\"app\":\"spisová služba\"}".as_bytes().to_vec(), ..entry };
    let message = String::from_utf8(sink::format_syslog(SyslogFormat::Rfc5424, Facility::Auth, "gw-a", 42, &utf8));
    assert!(message.unwrap().ends_with(" - \u{feff}{\"app\":\"spisová služba\"}"), "RFC 5424 §6.4: BOM before UTF-8");
}

#[test]
fn a_missing_syslog_socket_is_a_start_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = AuditConfig { syslog: true, syslog_socket: dir.path().join("nope"), ..AuditConfig::default() };
    let text = Audit::start(&config, Clock::test()).unwrap_err().to_string();
    assert!(text.starts_with("[audit] syslog socket ") && text.contains("nope"), "{text}");
}

#[test]
fn a_full_queue_drops_and_counts_instead_of_blocking() {
    let dir = tempfile::tempdir().unwrap();
    // A syslog daemon that never reads: its socket buffer fills, the writer waits on each
    // datagram, and the queue behind it fills up.
    let (socket, path) = syslog_socket(dir.path());
    let config = AuditConfig { syslog: true, syslog_socket: path, queue: 16, ..AuditConfig::default() };
    let audit = Audit::start(&config, Clock::test()).unwrap();
    let mut metrics = crate::ops::metrics::Metrics::new(&[], &[]);
    audit.register_metrics(&mut metrics);
    let started = Instant::now();
    for _ in 0..5000 {
        audit.emit(failure("signature"));
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "emit never waits for the writer: {took:?}");
    let dropped = audit.dropped();
    assert!(dropped > 0, "events beyond the queue are dropped");
    assert!(metrics.render().contains(&format!("aisgate_audit_dropped_total {dropped}")), "{}", metrics.render());
    assert!(!audit.health().healthy, "dropping shows in /readyz's audit detail");
    drop(socket);
}

#[test]
fn a_dry_run_checks_the_sinks_without_creating_anything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let dry = |config: AuditConfig| AuditConfig { dry_run: true, ..config };
    let audit = Audit::start(&dry(file_config(&path)), Clock::test()).unwrap();
    assert!(!audit.is_enabled());
    assert!(!path.exists(), "check creates no file");
    let missing = dir.path().join("missing").join("audit.jsonl");
    let text = Audit::start(&dry(file_config(&missing)), Clock::test()).unwrap_err().to_string();
    assert!(text.contains("missing/audit.jsonl") && text.contains("No such file"), "{text}");
    std::fs::write(&path, "").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    // Root may write a read-only file anyway: only assert where permissions bind.
    if std::fs::OpenOptions::new().append(true).open(&path).is_err() {
        assert!(Audit::start(&dry(file_config(&path)), Clock::test()).is_err(), "an unwritable file is an error");
    }
    let socket = dry(AuditConfig { syslog: true, syslog_socket: dir.path().join("nope"), ..AuditConfig::default() });
    assert!(Audit::start(&socket, Clock::test()).is_err(), "a missing syslog socket is an error");
}
