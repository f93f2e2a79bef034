//! Per-app maintenance mode: while an app is in maintenance, every request to it gets a
//! 503 page (Czech or English, with the operator's message) and `Retry-After`, and nothing
//! reaches its upstream. Other apps, the gateway's own endpoints and the ops listener are
//! unaffected.
//!
//! The notices live in the session store ([`SessionStore::set_maintenance`]): with Redis
//! every instance sees the same ones, and with the memory store they survive a reload
//! together with the sessions. The request path never waits for the store: each gateway
//! keeps a [`Board`] that the admin API updates at once and a background task refreshes from
//! the store every second (so another instance follows within about a second). With no app
//! in maintenance the check is one atomic load.
//!
//! [`SessionStore::set_maintenance`]: crate::session::SessionStore::set_maintenance

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::gateway::Gateway;
use crate::session::StoreError;

/// `Retry-After` when the operator gives none: five minutes.
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 300;

/// Longest operator message shown on the page, characters.
pub const MAX_MESSAGE_CHARS: usize = 500;

/// How often each instance re-reads the notices from the store.
const REFRESH: Duration = Duration::from_secs(1);

/// One app's maintenance notice, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// The operator's message for users (plain text), if any.
    #[serde(default)]
    pub message: Option<String>,
    /// `Retry-After` of the 503 answers, seconds.
    pub retry_after_secs: u64,
    /// When maintenance was switched on, Unix seconds.
    pub since: u64,
}

/// The notices this instance enforces, by app name.
#[derive(Debug, Default)]
pub struct Board {
    /// Whether any app is in maintenance (the fast path of every request).
    any: AtomicBool,
    notices: RwLock<HashMap<String, Arc<Notice>>>,
}

impl Board {
    /// The notice of `app` if it is in maintenance.
    pub fn notice(&self, app: &str) -> Option<Arc<Notice>> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        self.notices.read().unwrap_or_else(|e| e.into_inner()).get(app).cloned()
    }

    /// Every notice, by app name.
    pub fn all(&self) -> Vec<(String, Arc<Notice>)> {
        let notices = self.notices.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<_> = notices.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    fn replace(&self, notices: HashMap<String, Arc<Notice>>) {
        let mut current = self.notices.write().unwrap_or_else(|e| e.into_inner());
        self.any.store(!notices.is_empty(), Ordering::Release);
        *current = notices;
    }

    fn set(&self, app: &str, notice: Option<Notice>) {
        let mut current = self.notices.write().unwrap_or_else(|e| e.into_inner());
        match notice {
            Some(notice) => current.insert(app.to_owned(), Arc::new(notice)),
            None => current.remove(app),
        };
        self.any.store(!current.is_empty(), Ordering::Release);
    }
}

/// Switches maintenance of `app` on (`Some`) or off (`None`) in the store, for every
/// instance, and on this instance's board at once.
pub async fn set(gw: &Gateway, app: &str, notice: Option<Notice>) -> Result<(), StoreError> {
    let record = notice
        .as_ref()
        .map(serde_json::to_vec)
        .transpose()
        .map_err(|e| StoreError::Unavailable(format!("maintenance notice does not encode: {e}")))?;
    gw.store.set_maintenance(app, record.as_deref()).await?;
    gw.maintenance.set(app, notice);
    Ok(())
}

/// Re-reads every notice from the store into the board. A record that does not decode is
/// skipped (and logged); notices of apps this configuration does not have are kept in the
/// store but never match a request.
pub async fn refresh(gw: &Gateway) -> Result<(), StoreError> {
    let mut notices = HashMap::new();
    for (app, record) in gw.store.maintenance().await? {
        match serde_json::from_slice::<Notice>(&record) {
            Ok(notice) => {
                notices.insert(app, Arc::new(notice));
            }
            Err(e) => tracing::warn!(app, error = %e, "maintenance notice in the store does not decode; ignored"),
        }
    }
    gw.maintenance.replace(notices);
    Ok(())
}

/// Starts the task that refreshes `gw`'s board from the store every second (inside a Tokio
/// runtime only; it stops when the gateway is dropped). While the store is unreachable the
/// last known notices stay in force.
pub fn spawn_refresh(gw: &Arc<Gateway>) {
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    let weak = Arc::downgrade(gw);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tick.tick().await;
            let Some(gw) = weak.upgrade() else { return };
            match refresh(&gw).await {
                Ok(()) => failing = false,
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "cannot read maintenance notices; the last known ones stay in force");
                }
                Err(_) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(message: &str) -> Notice {
        Notice { message: Some(message.into()), retry_after_secs: 60, since: 1 }
    }

    #[test]
    fn board_answers_only_for_apps_in_maintenance() {
        let board = Board::default();
        assert!(board.notice("desk").is_none());
        board.set("desk", Some(notice("m")));
        assert_eq!(board.notice("desk").as_deref(), Some(&notice("m")));
        assert!(board.notice("other").is_none(), "another app is unaffected");
        board.set("desk", None);
        assert!(board.notice("desk").is_none());
        assert!(!board.any.load(Ordering::Acquire), "fast path back on");
        board.replace(HashMap::from([("a".to_owned(), Arc::new(notice("x")))]));
        assert_eq!(board.all().len(), 1);
    }
}
