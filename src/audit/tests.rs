use super::*;

#[test]
fn an_audit_without_a_sink_is_off() {
    let audit = Audit::start(&AuditConfig::default(), Clock::test()).unwrap();
    assert!(!audit.is_enabled());
    assert!(audit.flush(Duration::from_millis(1)));
}
