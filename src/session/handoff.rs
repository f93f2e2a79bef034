//! The stored form of a login handed from the central login host to an app's host
//! (`gateway::handoff`; issue 12 item 6).
//!
//! Both records live in the pending-login store: the login's own [`PendingLogin`] carries
//! the [`HandoffTarget`] from the start on the login host to the callback, and the finished
//! login waits there as a [`HandoffGrant`] under a fresh random handle, which is all the
//! URL to the app's host carries. Taking it is single use; a used grant leaves a tombstone
//! so that a replay is told apart (and logged) from an unknown handle.
//!
//! [`PendingLogin`]: super::PendingLogin

use serde::{Deserialize, Serialize};

/// Where a login on the central login host goes once it is done, and the browser it belongs
/// to.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffTarget {
    /// The app's host (lower case).
    pub host: String,
    /// The commitment to the binding cookie the app's host set in this browser: a MAC of the
    /// binding id under [`Purpose::HandoffBinding`](super::keyring::Purpose::HandoffBinding).
    pub binding: String,
}

/// A finished login waiting for the app's host to take it.
#[derive(Clone, Serialize, Deserialize)]
pub struct HandoffGrant {
    /// The app's host and the browser binding.
    pub target: HandoffTarget,
    /// The session to create there (identity, logout state, tokens), serialized; it is stored
    /// like a session (sealed at rest in a shared store) and never leaves the gateway.
    pub session: String,
    /// Set on the tombstone a taken grant leaves: a second use is a replay.
    #[serde(default)]
    pub used: bool,
}

/// Redacted: the binding commitment and the session (identity, tokens) stay out of logs.
impl std::fmt::Debug for HandoffTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandoffTarget").field("host", &self.host).finish_non_exhaustive()
    }
}

/// Redacted like [`HandoffTarget`].
impl std::fmt::Debug for HandoffGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandoffGrant").field("target", &self.target).field("used", &self.used).finish_non_exhaustive()
    }
}
