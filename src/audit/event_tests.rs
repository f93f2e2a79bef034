use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::identity::{Identity, Loa, Organisation};

const TS: &str = "2026-12-05T11:19:01.123Z";

fn identity() -> Identity {
    Identity {
        provider: "caais".into(),
        protocol: "oidc".into(),
        subject: "CZ/CZ/9a8b7c6d-secret-subject".into(),
        given_name: Some("Otto".into()),
        family_name: Some("Klus".into()),
        email: Some("otto.klus@example.cz".into()),
        loa: Some(Loa::Substantial),
        organisation: Some(Box::new(Organisation {
            ico: Some("00007064".into()),
            name: Some("Ministerstvo vnitra".into()),
            ..Organisation::default()
        })),
        ..Identity::default()
    }
}

/// The record as the sink writes it, with the keyed labels (which depend on the process's
/// label key) replaced by placeholders after checking they are the identity's and session's.
fn line(event: &Event<'_>, id: &Identity, key: &StoreKey) -> String {
    let json = serde_json::to_string(&Record { v: SCHEMA_VERSION, ts: TS, event }).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    if let Some(user) = value.get("user") {
        assert_eq!(user.as_str().unwrap(), id.log_label(), "user is the keyed log label");
    }
    if let Some(session) = value.get("session") {
        assert_eq!(session.as_str().unwrap(), key.log_label(), "session is the keyed store-key label");
    }
    json.replace(&id.log_label(), "<user>").replace(&key.log_label(), "<session>")
}

#[test]
fn schema_v1_golden_lines() {
    let id = identity();
    let key = StoreKey([7; 32]);
    let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
    let origin = Origin::request("gw1-42", ip);
    let (subject, session) = (Subject(&id), SessionRef(&key));
    let cases: Vec<(Event<'_>, &str)> = vec![
        (
            Event::LoginSuccess { origin, app: Some("spisovka"), subject, session, required_loa: None },
            r#"{"v":1,"ts":"2026-12-05T11:19:01.123Z","event":"login_success","request_id":"gw1-42","client_ip":"192.0.2.10","app":"spisovka","user":"<user>","provider":"caais","protocol":"oidc","loa":"substantial","organisation":"00007064","session":"<session>"}"#,
        ),
        (
            Event::LoginFailure {
                origin,
                provider: "nia",
                protocol: Some("saml2"),
                result: "refused",
                reason: "signature",
            },
            r#"{"v":1,"ts":"2026-12-05T11:19:01.123Z","event":"login_failure","request_id":"gw1-42","client_ip":"192.0.2.10","provider":"nia","protocol":"saml2","result":"refused","reason":"signature"}"#,
        ),
        (
            Event::Logout {
                origin,
                by: LogoutBy::User,
                provider: None,
                subject: Some(subject),
                session: Some(session),
                sessions_ended: 1,
                result: Outcome::Success,
                reason: None,
            },
            r#"{"v":1,"ts":"2026-12-05T11:19:01.123Z","event":"logout","request_id":"gw1-42","client_ip":"192.0.2.10","by":"user","user":"<user>","provider":"caais","protocol":"oidc","loa":"substantial","organisation":"00007064","session":"<session>","sessions_ended":1,"result":"success"}"#,
        ),
        (
            Event::Logout {
                origin,
                by: LogoutBy::BackChannel,
                provider: Some("caais"),
                subject: None,
                session: None,
                sessions_ended: 0,
                result: Outcome::Refused,
                reason: Some("logout_token_signature"),
            },
            r#"{"v":1,"ts":"2026-12-05T11:19:01.123Z","event":"logout","request_id":"gw1-42","client_ip":"192.0.2.10","by":"back_channel","provider":"caais","sessions_ended":0,"result":"refused","reason":"logout_token_signature"}"#,
        ),
        (
            Event::SessionEnd { origin: Origin::none(), reason: EndReason::Idle, subject, session },
            r#"{"v":1,"ts":"2026-12-05T11:19:01.123Z","event":"session_end","reason":"idle","user":"<user>","provider":"caais","protocol":"oidc","loa":"substantial","organisation":"00007064","session":"<session>"}"#,
        ),
        (
            Event::AccessDenied { origin, app: "spisovka", rule: Some(2), denied: "missing_role", subject },
            r#"{"v":1,"ts":"2026-12-05T11:19:01.123Z","event":"access_denied","request_id":"gw1-42","client_ip":"192.0.2.10","app":"spisovka","rule":2,"denied":"missing_role","user":"<user>","provider":"caais","protocol":"oidc","loa":"substantial","organisation":"00007064"}"#,
        ),
        (
            Event::StepUp { origin, app: "spisovka", required_loa: "high", via: "caais", subject },
            r#"{"v":1,"ts":"2026-12-05T11:19:01.123Z","event":"step_up","request_id":"gw1-42","client_ip":"192.0.2.10","app":"spisovka","required_loa":"high","via":"caais","user":"<user>","provider":"caais","protocol":"oidc","loa":"substantial","organisation":"00007064"}"#,
        ),
        (
            Event::AdminAction {
                origin,
                action: "end_session",
                target: Some("caais:0a1b2c3d4e5f"),
                sessions_ended: Some(1),
                result: Outcome::Success,
            },
            r#"{"v":1,"ts":"2026-12-05T11:19:01.123Z","event":"admin_action","request_id":"gw1-42","client_ip":"192.0.2.10","action":"end_session","target":"caais:0a1b2c3d4e5f","sessions_ended":1,"result":"success"}"#,
        ),
        (
            Event::Reload { origin: Origin::none(), result: Outcome::Success, config_hash: Some("3f2a"), error: None },
            r#"{"v":1,"ts":"2026-12-05T11:19:01.123Z","event":"reload","result":"success","config_hash":"3f2a"}"#,
        ),
    ];
    for (event, golden) in &cases {
        assert_eq!(line(event, &id, &key), *golden, "{}", event.name());
        assert!(golden.contains(&format!("\"event\":\"{}\"", event.name())));
    }
}

#[test]
fn records_carry_no_subject_names_contacts_or_organisation_name() {
    let id = identity();
    let key = StoreKey([9; 32]);
    let event = Event::LoginSuccess {
        origin: Origin::none(),
        app: None,
        subject: Subject(&id),
        session: SessionRef(&key),
        required_loa: Some("high"),
    };
    let json = serde_json::to_string(&Record { v: SCHEMA_VERSION, ts: TS, event: &event }).unwrap();
    for secret in ["secret-subject", "9a8b7c6d", "Otto", "Klus", "otto.klus", "Ministerstvo"] {
        assert!(!json.contains(secret), "{secret} leaked into {json}");
    }
    assert!(!json.contains(&hex(&key.0)), "the raw store key never appears");
    assert!(json.contains(r#""required_loa":"high""#), "{json}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_client_address_can_be_left_out() {
    let origin = Origin::request("r-1", IpAddr::V4(Ipv4Addr::LOCALHOST));
    let event = Event::LoginFailure { origin, provider: "jip", protocol: None, result: "failure", reason: "x" };
    let json = serde_json::to_string(&event.without_client_ip()).unwrap();
    assert_eq!(
        json,
        r#"{"event":"login_failure","request_id":"r-1","provider":"jip","result":"failure","reason":"x"}"#
    );
}

#[test]
fn refusals_are_told_apart_for_syslog_severity() {
    let failure = Event::LoginFailure {
        origin: Origin::none(),
        provider: "jip",
        protocol: None,
        result: "refused",
        reason: "login_unknown",
    };
    assert!(failure.is_refusal());
    let reload = |result| Event::Reload { origin: Origin::none(), result, config_hash: None, error: None };
    assert!(reload(Outcome::Error).is_refusal());
    assert!(!reload(Outcome::Success).is_refusal());
}

#[test]
fn timestamps_are_rfc3339_utc_with_milliseconds() {
    assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(timestamp(1_796_469_541_123), "2026-12-05T11:19:01.123Z");
    assert_eq!(timestamp(1_796_469_541_007), "2026-12-05T11:19:01.007Z");
}

/// A shared store's expiry event ([`Event::StoredSessionEnd`], written from the sealed facts
/// kept beside the session) is byte for byte the memory store's `session_end` of the same
/// session: no field more, none of the identity's personal data, the facts survive storage.
#[test]
fn a_stored_session_end_is_the_memory_stores_session_end() {
    let (id, key) = (identity(), StoreKey([9; 32]));
    let stored: SubjectFacts = serde_json::from_slice(&serde_json::to_vec(&SubjectFacts::of(&id)).unwrap()).unwrap();
    for reason in [EndReason::Idle, EndReason::Expired] {
        let memory =
            Event::SessionEnd { origin: Origin::none(), reason, subject: Subject(&id), session: SessionRef(&key) };
        let shared = Event::StoredSessionEnd { reason, subject: &stored, session: SessionRef(&key) };
        assert_eq!(shared.name(), "session_end");
        let line = line(&shared, &id, &key);
        assert_eq!(line, self::line(&memory, &id, &key));
        for personal in ["secret-subject", "Otto", "Klus", "otto.klus", "Ministerstvo"] {
            assert!(!line.contains(personal), "{line}");
        }
        assert!(!shared.clone().without_client_ip().is_refusal());
    }
    let bare = Identity { provider: "jip".into(), subject: "x".into(), ..Identity::default() };
    let facts = serde_json::to_value(SubjectFacts::of(&bare)).unwrap();
    let fields: Vec<&str> = facts.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!((fields, &facts["provider"]), (vec!["provider", "user"], &"jip".into()), "absent facts are left out");
}
