//! What single logout (SAML SLO) needs every instance of a gateway to agree on: which session
//! subject a NameID logged in as, and which LogoutRequests the gateway sent and has not seen
//! answered yet.
//!
//! It is part of the session store ([`super::SessionStore`] requires [`LogoutStore`]), so it is
//! shared exactly when the sessions are: the memory store keeps it in the process
//! (`memory/slo.rs`), the Redis store in Redis (`redis/slo.rs`). Behind a load balancer
//! without stickiness a NameID-only LogoutRequest arriving at instance B ends the session made
//! at A, and the IdP's LogoutResponse to a LogoutRequest A sent is accepted at B — once.
//!
//! Both fail closed: a store that cannot answer is an error the caller turns into a refusal
//! with the reason (`store_unavailable`), never a LogoutResponse accepted unchecked nor a
//! login whose NameID went unrecorded.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;

use super::{SessionStore, StoreError};

/// Single-logout state of a session store (see the module documentation). Every entry has a
/// bounded lifetime: a NameID as long as its session can live, a sent LogoutRequest as long as
/// its answer is awaited.
#[async_trait]
pub trait LogoutStore: Send + Sync {
    /// Remembers for `ttl` that `name_id` of `provider` logged in as `subject` (a later login
    /// of the same NameID replaces it).
    async fn remember_name_id(
        &self,
        provider: &str,
        name_id: &str,
        subject: &str,
        ttl: Duration,
    ) -> Result<(), StoreError>;
    /// The subject `name_id` of `provider` logged in as, while remembered.
    async fn subject_of_name_id(&self, provider: &str, name_id: &str) -> Result<Option<String>, StoreError>;
    /// Records the ID of a LogoutRequest sent for `provider`, awaited for `ttl`.
    async fn logout_sent(&self, provider: &str, id: &str, ttl: Duration) -> Result<(), StoreError>;
    /// Takes the ID of a LogoutRequest sent for `provider`: `Ok(true)` once, for the first
    /// answer across every instance; `Ok(false)` for an ID never sent, already answered or no
    /// longer awaited.
    async fn take_logout_sent(&self, provider: &str, id: &str) -> Result<bool, StoreError>;
}

/// The session store as a provider's [`LogoutStore`], given once at gateway build
/// ([`crate::provider::Provider::use_logout_store`]), with the longest a session lives.
/// Without one (a provider outside a gateway) nothing can be recorded or found: every call
/// fails closed.
#[derive(Default)]
pub struct LogoutSlot(OnceLock<(Arc<dyn SessionStore>, Duration)>);

impl LogoutSlot {
    /// Uses `store` from now on (set once; later calls are ignored). `session_lifetime`: the
    /// absolute session timeout, the longest a NameID is remembered.
    pub fn set(&self, store: Arc<dyn SessionStore>, session_lifetime: Duration) {
        let _ = self.0.set((store, session_lifetime));
    }

    fn store(&self) -> Result<&(Arc<dyn SessionStore>, Duration), StoreError> {
        self.0.get().ok_or_else(|| StoreError::Unavailable("no session store for single logout".into()))
    }

    /// [`LogoutStore::remember_name_id`] for as long as the session of a login at `now` can
    /// live: the absolute session timeout, capped by the IdP's limit (`idp_end`, Unix seconds).
    pub async fn remember_name_id(
        &self,
        (provider, name_id, subject): (&str, &str, &str),
        idp_end: Option<u64>,
        now: u64,
    ) -> Result<(), StoreError> {
        let (store, lifetime) = self.store()?;
        let ttl = match idp_end {
            Some(end) => (*lifetime).min(Duration::from_secs(end.saturating_sub(now))),
            None => *lifetime,
        };
        store.remember_name_id(provider, name_id, subject, ttl.max(Duration::from_secs(1))).await
    }

    /// [`LogoutStore::subject_of_name_id`].
    pub async fn subject_of_name_id(&self, provider: &str, name_id: &str) -> Result<Option<String>, StoreError> {
        self.store()?.0.subject_of_name_id(provider, name_id).await
    }

    /// [`LogoutStore::logout_sent`].
    pub async fn logout_sent(&self, provider: &str, id: &str, ttl: Duration) -> Result<(), StoreError> {
        self.store()?.0.logout_sent(provider, id, ttl).await
    }

    /// [`LogoutStore::take_logout_sent`].
    pub async fn take_logout_sent(&self, provider: &str, id: &str) -> Result<bool, StoreError> {
        self.store()?.0.take_logout_sent(provider, id).await
    }
}
