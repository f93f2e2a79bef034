//! Login-loop protection (kaas.md §18.2): caps how many logins one browser may start in a
//! window.
//!
//! A loop needs no attacker: an app that keeps answering "not logged in", or an IdP that keeps
//! sending the browser back, would bounce it between gateway and IdP forever. The count lives
//! in a MAC-protected cookie, so it follows the browser (not the NAT address an office
//! shares) and cannot be reset by editing it; deleting the cookie resets it, which only a
//! person does, not a loop.

use std::time::Duration;

use aws_lc_rs::digest;

use crate::session::keyring::{Keyring, Purpose};

/// Logins one browser may start per window.
pub const MAX_STARTS: u32 = 10;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(300);

fn id(count: u32, since: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, format!("{count}.{since}").as_bytes()).as_ref());
    out
}

/// Verifies a counter cookie value `count.since.mac`.
fn open(keyring: &Keyring, value: &str) -> Option<(u32, u64)> {
    let mut parts = value.splitn(3, '.');
    let count = parts.next()?.parse().ok()?;
    let since = parts.next()?.parse().ok()?;
    keyring.verify_mac(Purpose::LoopGuard, &id(count, since), parts.next()?).then_some((count, since))
}

/// Counts one login start. Returns the new cookie value, or `None` when the browser has
/// started too many logins in the current window.
pub fn count_start(keyring: &Keyring, cookie: Option<&str>, now: u64) -> Option<String> {
    let (count, since) = match cookie.and_then(|v| open(keyring, v)) {
        Some((count, since)) if now.saturating_sub(since) < WINDOW.as_secs() => (count + 1, since),
        _ => (1, now),
    };
    (count <= MAX_STARTS).then(|| format!("{count}.{since}.{}", keyring.mac(Purpose::LoopGuard, &id(count, since))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Keyring {
        Keyring::from_secrets(vec![("k".into(), vec![3u8; 32])]).unwrap()
    }

    #[test]
    fn starts_are_capped_per_window_and_the_count_cannot_be_forged() {
        let k = ring();
        let mut cookie: Option<String> = None;
        for _ in 0..MAX_STARTS {
            cookie = Some(count_start(&k, cookie.as_deref(), 1000).expect("within the cap"));
        }
        assert!(count_start(&k, cookie.as_deref(), 1000).is_none(), "the 11th start in the window is refused");
        // A new window starts counting again.
        assert!(count_start(&k, cookie.as_deref(), 1000 + WINDOW.as_secs()).unwrap().starts_with("1."));
        // Editing the count invalidates the MAC: treated as no cookie (count 1), never as a reset to
        // an attacker-chosen value that would hide a loop... and never accepted as-is.
        let forged = cookie.unwrap().replacen("10.", "0.", 1);
        assert!(open(&k, &forged).is_none());
    }
}
