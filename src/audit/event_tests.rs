use super::*;

#[test]
fn timestamps_are_rfc3339_utc_with_milliseconds() {
    assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(timestamp(1_796_556_341_123), "2026-12-05T11:25:41.123Z");
}
