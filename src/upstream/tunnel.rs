//! Upgraded (WebSocket) connections: the byte tunnel between client and upstream, and its
//! end when the session that opened it ends.
//!
//! A tunnel is authorized once, at the upgrade request. Without more, it would outlive the
//! session: a user who logs out (or is logged out by the IdP, or whose session reaches its
//! absolute expiry) would keep a live, authenticated channel to the app. So a tunnel opened
//! with a session watches it: the store's ended-session notifications (which cover every way a
//! session ends, on any instance for a shared store) and a timer at the session's absolute
//! expiry. When either fires, both halves are dropped, closing both TCP connections; the
//! WebSocket peers see the connection end (no close frame: the gateway does not parse the
//! stream, so it cannot know it is at a frame boundary). Public paths carry no session and
//! are not watched.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::sync::broadcast::error::RecvError;

use crate::listen::conn::ConnSlot;
use crate::session::{now_unix, SessionStore, StoreKey};

/// The session an upgraded connection belongs to.
pub struct SessionBinding {
    /// The session's store key.
    pub key: StoreKey,
    /// Its absolute expiry, Unix seconds.
    pub expires_at: u64,
    /// The store, for re-checks.
    pub store: Arc<dyn SessionStore>,
    /// Ended-session notifications, subscribed *before* the upgrade request was forwarded so
    /// that a logout during the handshake is not missed.
    pub ended: tokio::sync::broadcast::Receiver<StoreKey>,
}

/// Why a tunnel was closed by the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    /// The store announced the session's end (logout, back-channel logout, eviction, …).
    Session,
    /// The session reached its absolute expiry.
    Expired,
}

impl SessionBinding {
    /// Whether (and how) the session is over, asking the store. A store failure counts as
    /// alive: an outage of the store must not cut every open tunnel (the store's
    /// notifications and the expiry timer still end them).
    async fn over(&self) -> Option<Ended> {
        match self.store.load(&self.key).await {
            Ok(Some(s)) if !s.is_expired(now_unix()) => None,
            Ok(Some(_)) => Some(Ended::Expired),
            Ok(None) => Some(Ended::Session),
            Err(_) => None,
        }
    }

    /// Resolves when the session ends.
    async fn ended(mut self) -> Ended {
        let expiry = tokio::time::sleep(Duration::from_secs(self.expires_at.saturating_sub(now_unix())));
        tokio::pin!(expiry);
        // The session may have ended between its lookup and the subscription.
        if let Some(ended) = self.over().await {
            return ended;
        }
        loop {
            tokio::select! {
                () = &mut expiry => return Ended::Expired,
                received = self.ended.recv() => match received {
                    Ok(key) if key == self.key => return Ended::Session,
                    Ok(_) => {}
                    // Missed notifications: ours may have been among them.
                    Err(RecvError::Lagged(_)) => {
                        if let Some(ended) = self.over().await {
                            return ended;
                        }
                    }
                    // The store is gone (shutdown): only the expiry timer is left.
                    Err(RecvError::Closed) => {
                        expiry.as_mut().await;
                        return Ended::Expired;
                    }
                },
            }
        }
    }
}

/// What an upgraded connection carries along besides its two halves.
pub struct Tunnel {
    /// Request id of the upgrade request, for logs.
    pub request_id: String,
    /// The client connection's place under `max_connections`, held until the tunnel closes.
    pub slot: Option<ConnSlot>,
    /// The session that opened it; `None` on public paths.
    pub session: Option<SessionBinding>,
}

/// Joins the two halves of an upgraded (WebSocket) connection and copies bytes both ways
/// until either side closes or, for a tunnel opened with a session, the session ends.
pub fn splice_upgrade(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade, tunnel: Tunnel) {
    let Tunnel { request_id, slot, session } = tunnel;
    tokio::spawn(async move {
        let _slot = slot;
        let copy = async {
            let (client, upstream) = match tokio::try_join!(client, upstream) {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(request_id, error = %e, "upgrade failed");
                    return;
                }
            };
            let mut client = TokioIo::new(client);
            let mut upstream = TokioIo::new(upstream);
            if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                tracing::debug!(request_id, error = %e, "upgraded connection closed with error");
            }
        };
        let Some(session) = session else {
            copy.await;
            return;
        };
        let label = session.key.log_label();
        tokio::pin!(copy);
        let ended = tokio::select! {
            () = &mut copy => return,
            ended = session.ended() => ended,
        };
        let reason = match ended {
            Ended::Session => "session ended",
            Ended::Expired => "session expired",
        };
        tracing::info!(request_id, session = %label, reason, "upgraded connection closed: its session is over");
        // Returning drops `copy` and with it both halves: both connections close.
    });
}
