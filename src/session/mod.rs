//! Sessions: opaque ids in authenticated cookies, data held server-side.
//!
//! A session cookie carries `kid.id.tag`: a 256-bit random id and an HMAC over it. A forged
//! or tampered cookie fails the MAC and is refused before any store lookup, so guessing ids
//! costs the attacker nothing but also gains nothing, and a store outage cannot be triggered by
//! junk cookies. The store is keyed by SHA-256 of the id, so a leaked store dump (Redis
//! snapshot) does not contain usable cookies.

pub(crate) mod footprint;
pub mod handoff;
pub mod kept;
pub mod keyring;
pub mod memory;
pub mod names;
pub mod packed;
pub mod record;
pub mod redis;
#[cfg(feature = "sim")]
pub mod samples;
pub mod shared;
pub mod slo;
pub mod tokens;
pub mod users;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use http::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use crate::identity::Identity;

/// Seconds since the Unix epoch on the system clock, for what is not an expiry decision;
/// expiry reads the injected [`Clock`](crate::clock::Clock).
pub fn now_unix() -> u64 {
    crate::clock::Clock::system().now_unix()
}

/// A fresh 256-bit random value (session ids, login handles, request and message ids).
///
/// If the system random number generator fails the process aborts (after an ERROR log and a
/// line on stderr): every id derived from a failed fill would be the same predictable value
/// (all zeros), i.e. guessable sessions and login handles for everybody. There is no safe
/// way to go on without randomness, and an abort makes the supervisor restart or alert.
pub fn random_id() -> [u8; 32] {
    random_or_abort(|buf| aws_lc_rs::rand::fill(buf).map_err(|_| ()))
}

/// Fills 32 bytes with `fill`, aborting the process when it fails (see [`random_id`]).
fn random_or_abort(fill: impl FnOnce(&mut [u8]) -> Result<(), ()>) -> [u8; 32] {
    let mut id = [0u8; 32];
    if fill(&mut id).is_err() {
        tracing::error!("system random number generator failed: aborting (ids would be predictable)");
        eprintln!("{RNG_FAILURE}");
        std::process::abort();
    }
    id
}

/// The line written to stderr before the abort of [`random_or_abort`].
const RNG_FAILURE: &str =
    "aisgate: FATAL: the system random number generator failed; aborting rather than issuing predictable ids";

/// The key under which a session or pending login is stored: SHA-256 of its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StoreKey(pub [u8; 32]);

impl StoreKey {
    /// Derives the store key of an id.
    pub fn of(id: &[u8; 32]) -> StoreKey {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, id);
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        StoreKey(key)
    }

    /// A short, non-reversible label for audit logs: an HMAC of the store key under the
    /// server's label key ([`crate::identity::label`]), so log lines cannot be matched to
    /// entries of a leaked store dump.
    pub fn log_label(&self) -> String {
        self.log_label_with(&crate::identity::label::key())
    }

    /// [`StoreKey::log_label`] under `key`.
    pub fn log_label_with(&self, key: &crate::identity::LogLabelKey) -> String {
        key.label(&self.0, 8)
    }
}

/// Rendered identity headers for one app, cached on the session.
pub type RenderedHeaders = Arc<[(HeaderName, HeaderValue)]>;

/// Per-app caches of a session not read for this long are dropped (the memory store's sweep,
/// [`Session::release_caches`]); the next request renders them again. An idle session then
/// costs its record only (issue 13 item 3: ≤ 2 KiB per idle session), while an active one
/// renders its headers once a minute at most.
pub const CACHE_IDLE_SECS: u64 = 60;

/// A logged-in session. `Debug` redacts the logout state and tokens.
///
/// Kept small (issue 13 item 3): the app name is shared ([`names::intern`]), the identity's
/// strings and lists hold no spare capacity ([`footprint::Footprint::shrink`]), tokens take 8 bytes when
/// the login brought none, and the per-app caches exist only while the session is in use.
/// [`Session::accounted_bytes`] says what one costs. The JSON form (a shared store's
/// record) is the same as before these changes: records written by older versions decode.
#[derive(Serialize, Deserialize)]
pub struct Session {
    /// Who.
    pub identity: Identity,
    /// When the session was created, Unix seconds.
    pub created_at: u64,
    /// Hard end of the session, Unix seconds: the absolute timeout, capped by IdP expiry.
    pub expires_at: u64,
    /// Provider data needed for logout (NameID and SessionIndex, id_token, …).
    pub logout_state: crate::provider::LogoutState,
    /// Access and refresh tokens for `upstream_bearer` apps (empty for providers without).
    #[serde(default)]
    pub upstream_tokens: tokens::TokenSlot,
    /// The user chose "not now" on the account-link offer (`account_link = "offer"`).
    #[serde(default)]
    pub link_skipped: bool,
    /// The app whose page the login started from (`[[app]] name`, shared: see
    /// [`names::intern`]), for the admin listing; `None` for logins that named no app
    /// (IdP-initiated, or a return URL no app serves).
    #[serde(default, with = "names::serde_opt")]
    pub app: Option<Arc<str>>,
    /// When the session was last read in this process, milliseconds of the store's clock:
    /// the memory store's idle timeout and the release of idle caches read it.
    #[serde(skip)]
    last_seen_ms: AtomicU64,
    /// Per-app rendered headers and identity tokens while the session is in use; a
    /// per-process cache, never stored, valid for one gateway configuration (a reload starts
    /// afresh, see [`CacheKey`]). `None` until the first request and again after
    /// [`CACHE_IDLE_SECS`] without one.
    #[serde(skip)]
    caches: arc_swap::ArcSwapOption<AppCaches>,
}

/// Which gateway configuration a session's per-app caches belong to: app indexes, header
/// mappings and token keys are those of one build of the gateway. A session cached for
/// another one (before a hot reload) renders again instead of sending stale headers, or
/// another app's, to an upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheKey {
    /// The gateway build, unique in the process (never 0).
    pub generation: u64,
    /// Its number of apps.
    pub apps: usize,
}

impl CacheKey {
    /// The key of a newly built gateway with `apps` apps.
    pub fn next(apps: usize) -> CacheKey {
        static GENERATION: AtomicU64 = AtomicU64::new(1);
        CacheKey { generation: GENERATION.fetch_add(1, Ordering::Relaxed), apps }
    }
}

/// A session's per-app caches for one gateway build.
struct AppCaches {
    /// [`CacheKey::generation`] they belong to.
    generation: u64,
    /// Per-app rendered headers.
    rendered: Box<[OnceLock<RenderedHeaders>]>,
    /// Per-app signed identity token and its expiry.
    tokens: Mutex<Box<[Option<MintedToken>]>>,
}

/// A signed identity token and its expiry (Unix seconds).
type MintedToken = (u64, HeaderValue);

impl AppCaches {
    fn new(key: CacheKey) -> AppCaches {
        AppCaches {
            generation: key.generation,
            rendered: (0..key.apps).map(|_| OnceLock::new()).collect(),
            tokens: Mutex::new(vec![None; key.apps].into_boxed_slice()),
        }
    }

    /// Heap bytes: the two per-app arrays and what is cached in them (header names are
    /// shared with the configuration and not counted).
    fn bytes(&self) -> usize {
        use footprint::block;
        let pair = std::mem::size_of::<(HeaderName, HeaderValue)>();
        let rendered: usize = self
            .rendered
            .iter()
            .filter_map(OnceLock::get)
            .map(|h| block(16 + h.len() * pair) + h.iter().map(|(_, v)| block(v.len())).sum::<usize>())
            .sum();
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let minted: usize = tokens.iter().flatten().map(|(_, v)| block(v.len())).sum();
        block(16 + std::mem::size_of::<AppCaches>())
            + block(std::mem::size_of_val::<[OnceLock<RenderedHeaders>]>(&self.rendered))
            + block(std::mem::size_of_val::<[Option<MintedToken>]>(&tokens))
            + rendered
            + minted
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("identity", &self.identity)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("logout_state", &crate::redact::Redacted)
            .field("upstream_tokens", &self.upstream_tokens)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A new session for `identity` created at `now` (Unix seconds), expiring after
    /// `absolute_secs` or at the IdP's limit. The identity and logout state are stored
    /// without spare capacity.
    pub fn new(
        mut identity: Identity,
        mut logout_state: crate::provider::LogoutState,
        absolute_secs: u64,
        now: u64,
    ) -> Session {
        let created_at = now;
        let mut expires_at = created_at.saturating_add(absolute_secs);
        if let Some(idp_limit) = identity.expires_at {
            expires_at = expires_at.min(idp_limit);
        }
        footprint::Footprint::shrink(&mut identity);
        footprint::Footprint::shrink(&mut logout_state);
        Session {
            identity,
            created_at,
            expires_at,
            logout_state,
            upstream_tokens: tokens::TokenSlot::default(),
            link_skipped: false,
            app: None,
            last_seen_ms: AtomicU64::new(0),
            caches: arc_swap::ArcSwapOption::empty(),
        }
    }

    /// A copy of this session with `identity` (an account link added) and `link_skipped`, and
    /// no per-process caches: same creation, expiry, logout state and tokens. Stored under
    /// a new id by the caller (the account link is a change of what the session grants).
    pub(crate) fn relinked(&self, mut identity: Identity, link_skipped: bool) -> Session {
        footprint::Footprint::shrink(&mut identity);
        Session {
            identity,
            created_at: self.created_at,
            expires_at: self.expires_at,
            logout_state: self.logout_state.clone(),
            upstream_tokens: tokens::TokenSlot::new(self.upstream_tokens.get()),
            link_skipped,
            app: self.app.clone(),
            last_seen_ms: AtomicU64::new(0),
            caches: arc_swap::ArcSwapOption::empty(),
        }
    }

    /// What this session costs in memory, bytes: its allocation (inline size) and every heap
    /// block it owns, per-app caches included (an estimate, see [`footprint`]).
    pub fn accounted_bytes(&self) -> usize {
        self.accounted_parts().iter().map(|(_, bytes)| bytes).sum()
    }

    /// [`Session::accounted_bytes`] by part: the record itself (`Arc<Session>`, inline
    /// fields), the identity's raw attributes, the rest of the identity, the logout state,
    /// the upstream tokens and the per-app caches.
    pub fn accounted_parts(&self) -> [(&'static str, usize); 6] {
        use footprint::{block, Footprint};
        let attributes = self.identity.attributes.heap_bytes();
        [
            // `Arc<Session>`: two counters in front of the value.
            ("record", block(16 + std::mem::size_of::<Session>())),
            ("attributes", attributes),
            ("identity", self.identity.heap_bytes() - attributes),
            ("logout", self.logout_state.heap_bytes()),
            ("tokens", self.upstream_tokens.heap_bytes()),
            ("caches", self.caches.load().as_ref().map_or(0, |c| c.bytes())),
        ]
    }

    /// Notes a read at `now_ms` (the store's clock, milliseconds); never goes back in time.
    pub(crate) fn touch(&self, now_ms: u64) {
        self.last_seen_ms.fetch_max(now_ms, Ordering::Relaxed);
    }

    /// Sets the time of the last read (a store saving the session), milliseconds.
    pub(crate) fn seen_at(&self, now_ms: u64) {
        self.last_seen_ms.store(now_ms, Ordering::Relaxed);
    }

    /// When the session was last read in this process (see [`Session::touch`]), ms.
    pub(crate) fn last_seen_ms(&self) -> u64 {
        self.last_seen_ms.load(Ordering::Relaxed)
    }

    /// Drops the per-app caches (a request in flight keeps the copy it holds); the next
    /// request renders them again.
    pub(crate) fn release_caches(&self) {
        self.caches.store(None);
    }

    /// Whether the per-app caches exist.
    pub(crate) fn has_caches(&self) -> bool {
        self.caches.load().is_some()
    }

    /// Runs `f` on the caches of the gateway build `key`: the current ones when they are its,
    /// else fresh ones (first use, after their release, or the configuration was reloaded).
    fn with_caches<T>(&self, key: CacheKey, f: impl FnOnce(&AppCaches) -> T) -> T {
        let current = self.caches.load();
        if let Some(caches) = current.as_ref().filter(|c| c.generation == key.generation) {
            return f(caches);
        }
        let fresh = Arc::new(AppCaches::new(key));
        let before = self.caches.compare_and_swap(&current, Some(fresh.clone()));
        // Another request of this session got there first with this build's caches: use
        // theirs, so that both do not render.
        let theirs = (*before).as_ref().filter(|c| c.generation == key.generation && !Arc::ptr_eq(c, &fresh));
        match theirs {
            Some(theirs) => f(theirs),
            None => f(&fresh),
        }
    }

    /// The session with the IdP's tokens for upstreams.
    pub fn with_tokens(mut self, tokens: Option<tokens::UpstreamTokens>) -> Session {
        self.upstream_tokens = tokens::TokenSlot::new(tokens);
        self
    }

    /// The session, noting the app its login started from (see [`Session::app`]).
    pub fn with_app(mut self, app: Option<Arc<str>>) -> Session {
        self.app = app;
        self
    }

    /// The IdP's session id, if the login carried one: the SAML `SessionIndex` (kept once, in
    /// the logout state) or the `sid` claim of an OIDC ID token (a kept raw attribute). The
    /// SAML one is not copied into the raw attributes: the copy cost an idle NIA session a
    /// B-tree node of its own (issue 13 item 3); records stored before still carry it there and
    /// in the logout state, with the same value.
    pub fn idp_session_id(&self) -> Option<&str> {
        let id = match &self.logout_state {
            crate::provider::LogoutState::Saml(subject) => subject.session_index.as_deref(),
            _ => self.identity.attributes.get("sid").and_then(|v| v.first()).map(String::as_str),
        };
        id.filter(|s| !s.is_empty())
    }

    /// Whether this session is the target of a back-channel logout for `provider` by `sid`
    /// (when given) or else by `subject`.
    pub fn matches_logout(&self, provider: &str, subject: Option<&str>, sid: Option<&str>) -> bool {
        if self.identity.provider != provider {
            return false;
        }
        match LogoutBy::new(subject, sid) {
            // With both, both must match: a sid from one user never ends another's session.
            Some(LogoutBy::Sid { sid, subject }) => {
                self.idp_session_id() == Some(sid) && subject.is_none_or(|s| self.identity.subject == s)
            }
            Some(LogoutBy::Subject(sub)) => self.identity.subject == sub,
            None => false,
        }
    }

    /// Whether the absolute lifetime is over.
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }

    /// Returns the cached rendered headers for app `index` of the gateway build `key`,
    /// rendering them once.
    pub fn rendered_headers(
        &self,
        key: CacheKey,
        index: usize,
        render: impl FnOnce(&Identity) -> RenderedHeaders,
    ) -> RenderedHeaders {
        self.with_caches(key, |caches| match caches.rendered.get(index) {
            Some(cell) => cell.get_or_init(|| render(&self.identity)).clone(),
            None => render(&self.identity),
        })
    }

    /// Returns a cached identity token for app `index` of the gateway build `key` valid for at
    /// least `min_remaining` seconds, or mints one with `mint` (which returns the token and
    /// its expiry).
    pub fn identity_token(
        &self,
        key: CacheKey,
        index: usize,
        now: u64,
        min_remaining: u64,
        mint: impl FnOnce(&Identity) -> Option<(u64, HeaderValue)>,
    ) -> Option<HeaderValue> {
        self.with_caches(key, |caches| {
            let mut tokens = caches.tokens.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(Some((exp, value))) = tokens.get(index) {
                if *exp >= now.saturating_add(min_remaining) {
                    return Some(value.clone());
                }
            }
            let (exp, value) = mint(&self.identity)?;
            if let Some(slot) = tokens.get_mut(index) {
                *slot = Some((exp, value.clone()));
            }
            Some(value)
        })
    }
}

/// State kept between "send the browser to the IdP" and "the IdP sent it back".
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    /// Provider name.
    pub provider: String,
    /// Validated same-origin URL to return to after login.
    pub return_to: String,
    /// When the login started, Unix seconds.
    pub created_at: u64,
    /// Protocol state (request ID, nonce, PKCE verifier, …), typed and versioned.
    pub protocol_state: crate::provider::PendingState,
    /// LoA the login must achieve (step-up); a lower one is refused.
    #[serde(default)]
    pub min_loa: Option<crate::identity::Loa>,
    /// The callback base URL the login was started with, when it is not `[server]
    /// public_base_url` (an app's own base, or its host's with `providers_by_host`): the
    /// provider must finish with the same redirect URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_base: Option<String>,
    /// A login on the central login host for an app on another host: where it is handed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<handoff::HandoffTarget>,
    /// Set when this is the JIP/KAAS confirmation of an account link: the CAAIS session it
    /// belongs to. The login then makes a link, never a session.
    #[serde(default)]
    pub link: Option<crate::links::LinkIntent>,
    /// The form POST whose expired session started this login, replayed once after it
    /// (README "Form posts across a login").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_post: Option<SavedPost>,
}

/// The fields of a same-origin `application/x-www-form-urlencoded` POST kept in a pending
/// login, in their order. `Debug` shows only their number: values are whatever the user
/// typed.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SavedPost {
    /// Decoded name/value pairs, in the order of the body.
    pub fields: Vec<(String, String)>,
}

impl SavedPost {
    /// The bytes its names and values take (what a store holding it in memory budgets).
    pub fn bytes(&self) -> usize {
        self.fields.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}

impl std::fmt::Debug for SavedPost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SavedPost").field("fields", &self.fields.len()).finish_non_exhaustive()
    }
}

/// Redacted: the protocol state holds request ids, nonces and PKCE verifiers; the return URL
/// may carry personal data in its query.
impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("provider", &self.provider)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// Session store failure. Existing sessions in other stores or caches are unaffected.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The backend is unreachable or answered with an error.
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    /// The backend's access rules refuse an operation (a Redis ACL user lacking a command or
    /// a key pattern): a misconfiguration rather than an outage, which fails closed all the
    /// same. The text names the command and the kind of key, never a key or a value.
    #[error("session store misconfigured: {0}")]
    Denied(String),
}

/// What a back-channel logout names its sessions by: the IdP session id when it gives one
/// (then a subject, if also given, must match too), else the subject. Empty values count as
/// absent. One rule for [`Session::matches_logout`] and for the stores' index look-ups, so
/// that the index a store searches is always the one the re-check applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogoutBy<'a> {
    /// By IdP session id (`sid`), narrowed by `subject` when that is given.
    Sid {
        /// The IdP session id.
        sid: &'a str,
        /// The subject that must match too, if the logout named one.
        subject: Option<&'a str>,
    },
    /// Every session of this subject.
    Subject(&'a str),
}

impl<'a> LogoutBy<'a> {
    /// The target of a logout naming `subject` and/or `sid`; `None` when it names neither
    /// (both absent or empty): a logout must never widen into "everyone".
    pub(crate) fn new(subject: Option<&'a str>, sid: Option<&'a str>) -> Option<Self> {
        let subject = subject.filter(|s| !s.is_empty());
        match (sid.filter(|s| !s.is_empty()), subject) {
            (Some(sid), subject) => Some(LogoutBy::Sid { sid, subject }),
            (None, Some(sub)) => Some(LogoutBy::Subject(sub)),
            (None, None) => None,
        }
    }
}

/// Server-side session storage. Memory now; Redis implements the same trait. Single-logout
/// state ([`slo::LogoutStore`]) is part of it: shared exactly when the sessions are.
#[async_trait]
pub trait SessionStore: slo::LogoutStore + Send + Sync + 'static {
    /// Looks up a session and refreshes its idle timer.
    async fn load(&self, key: &StoreKey) -> Result<Option<Arc<Session>>, StoreError>;
    /// [`SessionStore::load`] from the store itself, never from a per-instance copy: what a
    /// token refresh reads to see whether another instance refreshed already. The memory
    /// store has no copies.
    async fn reload(&self, key: &StoreKey) -> Result<Option<Arc<Session>>, StoreError> {
        self.load(key).await
    }
    /// Stores a new session.
    async fn save(&self, key: StoreKey, session: Arc<Session>) -> Result<(), StoreError>;
    /// Destroys a session, returning it if it existed.
    async fn remove(&self, key: &StoreKey) -> Result<Option<Arc<Session>>, StoreError>;
    /// Stores a pending login for the configured login lifetime.
    async fn put_pending(&self, key: StoreKey, pending: PendingLogin) -> Result<(), StoreError>;
    /// Takes (and so invalidates: single use) a pending login.
    async fn take_pending(&self, key: &StoreKey) -> Result<Option<PendingLogin>, StoreError>;
    /// Destroys every session of `provider` whose IdP session id is `sid` when one is given
    /// (and whose subject is `subject`, when that is given too), else every session of
    /// `subject` at that provider (OIDC Back-Channel Logout). Returns how
    /// many were destroyed. Both `None` (or empty) matches nothing: a logout must never widen
    /// into "everyone".
    async fn remove_for_subject(
        &self,
        provider: &str,
        subject: Option<&str>,
        sid: Option<&str>,
    ) -> Result<usize, StoreError>;
    /// Keeps a session whose upstream tokens were just refreshed. The memory store holds the
    /// very `Session` the refresh updated, so it has nothing to do; a shared store writes it
    /// back, or the next request (at any instance) would refresh again with a refresh token
    /// the IdP may already have rotated away.
    async fn tokens_refreshed(&self, _key: &StoreKey, _session: &Arc<Session>) -> Result<(), StoreError> {
        Ok(())
    }
    /// Every live session of the user `subject` at `provider`, oldest first: the per-user
    /// index behind `[session] max_sessions_per_user` ([`users::enforce_limit`]).
    async fn user_sessions(&self, provider: &str, subject: &str) -> Result<Vec<users::UserSession>, StoreError>;
    /// Live sessions for which `keep` holds, at most `limit` of them, in no particular order
    /// (the admin listing). Walks the whole store: for operators, never the request path.
    async fn scan_sessions(&self, keep: &users::Keep<'_>, limit: usize) -> Result<Vec<users::Listed>, StoreError>;
    /// Sets (`Some`) or clears (`None`) the maintenance notice of `app` — an opaque record
    /// the admin API writes — for every instance sharing this store.
    async fn set_maintenance(&self, app: &str, notice: Option<&[u8]>) -> Result<(), StoreError>;
    /// Every maintenance notice, by app name.
    async fn maintenance(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Approximate number of live sessions, for the metric.
    fn active_sessions(&self) -> u64;
    /// What the sessions this process holds cost in memory, bytes (`Some` for the memory
    /// store: [`memory::MemoryStore::accounted_bytes`]; `None` for a shared store, whose
    /// sessions live in Redis), for the gauge `aisgate_session_store_bytes`.
    fn memory_bytes(&self) -> Option<u64> {
        None
    }
    /// Subscribes to the keys of sessions that end from now on, however they end: logout,
    /// back-channel logout, expiry, eviction, an admin kill — and, for a shared store, on any
    /// instance (a Redis store would feed this from keyspace notifications or a pub/sub
    /// channel). Long-lived connections of a session (WebSocket tunnels) close on it.
    ///
    /// Delivery is best effort: a receiver that lags (`RecvError::Lagged`) may have missed
    /// keys and must re-check its session with [`SessionStore::load`].
    fn ended_sessions(&self) -> tokio::sync::broadcast::Receiver<StoreKey>;
    /// Registers the store's own metric families (the Redis store's
    /// `aisgate_session_store_errors_total`) in a gateway's registry; a reload's registry
    /// continues the same series. The memory store has none.
    fn register_metrics(&self, _metrics: &mut crate::ops::metrics::Metrics) {}
    /// Whether the store can serve requests now, and why not (for `/readyz`). The memory
    /// store always can.
    fn readiness(&self) -> StoreReadiness {
        StoreReadiness { ready: true, backend: "memory", detail: None }
    }
}

/// What `/readyz` says about the session store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreReadiness {
    /// Whether sessions can be read and written now.
    pub ready: bool,
    /// `memory` or `redis`.
    pub backend: &'static str,
    /// Why not (an operator-facing error text: no ids, no personal data).
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session's cached headers and identity tokens belong to one gateway build: after a
    /// hot reload (another key) they are rendered again, and an in-flight request of the old
    /// build never gets the new build's (or the other way round).
    #[test]
    fn per_app_caches_are_rendered_again_for_another_gateway_build() {
        let session = Session::new(Identity::default(), crate::provider::LogoutState::None, 60, 0);
        let headers = |value: &'static str| -> RenderedHeaders {
            Arc::from(vec![(HeaderName::from_static("x-auth-subject"), HeaderValue::from_static(value))])
        };
        let (before, after) = (CacheKey::next(2), CacheKey::next(3));
        assert_eq!(session.rendered_headers(before, 1, |_| headers("old"))[0].1, "old");
        assert_eq!(session.rendered_headers(before, 1, |_| headers("unused"))[0].1, "old", "cached");
        assert_eq!(session.rendered_headers(after, 1, |_| headers("new"))[0].1, "new", "reloaded: rendered again");
        assert_eq!(session.rendered_headers(after, 2, |_| headers("third"))[0].1, "third", "the new build's app count");
        assert_eq!(session.rendered_headers(after, 1, |_| headers("unused"))[0].1, "new");
        assert_eq!(session.rendered_headers(before, 1, |_| headers("old again"))[0].1, "old again");

        let token = |v: &'static str| Some((100, HeaderValue::from_static(v)));
        assert_eq!(session.identity_token(before, 0, 0, 10, |_| token("t1")).unwrap(), "t1");
        assert_eq!(session.identity_token(before, 0, 0, 10, |_| token("unused")).unwrap(), "t1", "cached");
        assert_eq!(session.identity_token(after, 0, 0, 10, |_| token("t2")).unwrap(), "t2", "minted by the new build");
    }

    /// Issue 13 item 3: a SAML session keeps its SessionIndex once, in the logout state; the
    /// IdP-initiated logout finds it there, and a record stored with the older copy in the raw
    /// attributes still matches.
    #[test]
    fn a_saml_session_is_matched_by_the_session_index_of_its_logout_state() {
        let saml = |index: Option<&str>| {
            crate::provider::LogoutState::Saml(Box::new(crate::provider::saml::logout::LogoutSubject {
                name_id: "n".into(),
                format: None,
                name_qualifier: None,
                sp_name_qualifier: None,
                session_index: index.map(str::to_owned),
            }))
        };
        let identity = Identity { provider: "nia".into(), subject: "CZ/CZ/x".into(), ..Identity::default() };
        let session = Session::new(identity.clone(), saml(Some("_s1")), 60, 0);
        assert!(session.identity.attributes.is_empty(), "no copy in the raw attributes");
        assert_eq!(session.idp_session_id(), Some("_s1"));
        assert!(session.matches_logout("nia", None, Some("_s1")));
        assert!(session.matches_logout("nia", Some("CZ/CZ/x"), Some("_s1")));
        assert!(!session.matches_logout("nia", None, Some("_s2")), "another SessionIndex");
        assert!(!session.matches_logout("nia", Some("CZ/CZ/y"), Some("_s1")), "another user's SessionIndex");
        assert!(!session.matches_logout("other", None, Some("_s1")), "another provider");

        let mut older = identity.clone();
        older.attributes.insert("sid".into(), vec!["_s1".into()]);
        let stored = serde_json::to_value(Session::new(older, saml(Some("_s1")), 60, 0)).unwrap();
        let stored: Session = serde_json::from_value(stored).unwrap();
        assert!(stored.matches_logout("nia", None, Some("_s1")), "a record with the older copy");

        // A SAML attribute named `sid` is not a SessionIndex: a login without one has none.
        let mut named = identity;
        named.attributes.insert("sid".into(), vec!["_s3".into()]);
        let without = Session::new(named, saml(None), 60, 0);
        assert_eq!(without.idp_session_id(), None);
        assert!(!without.matches_logout("nia", None, Some("_s3")));
    }

    #[test]
    fn debug_output_of_sessions_and_pending_logins_contains_no_secret() {
        let identity = Identity { provider: "nia".into(), subject: "CZ/CZ/secret-bsi".into(), ..Identity::default() };
        let subject = crate::provider::saml::logout::LogoutSubject {
            name_id: "secret-nameid".into(),
            format: None,
            name_qualifier: None,
            sp_name_qualifier: None,
            session_index: Some("secret-index".into()),
        };
        let logout = crate::provider::LogoutState::Saml(Box::new(subject));
        let session = Session::new(identity, logout, 60, 0).with_tokens(Some(tokens::UpstreamTokens {
            access_token: "secret-access".into(),
            issued_at: 0,
            expires_at: 60,
            refresh_token: Some("secret-refresh".into()),
            client_loa: None,
        }));
        let pending = PendingLogin {
            provider: "nia".into(),
            return_to: "/desk?rc=secret-rc".into(),
            created_at: 0,
            protocol_state: crate::provider::PendingState::new(crate::provider::ProtocolState::Kaas),
            min_loa: None,
            login_base: None,
            handoff: None,
            link: None,
            saved_post: None,
        };
        let dbg = format!("{session:?} {pending:?} {:?}", StoreKey::of(&[1; 32]).log_label());
        assert!(!dbg.contains("secret"), "{dbg}");
        assert!(dbg.contains("nia"), "{dbg}");
    }

    /// Issue 13 item 3: the compact layout (boxed token slot and logout state, interned app
    /// name) writes the same JSON as before, so sessions a shared store holds from before an
    /// upgrade decode, and older instances read what newer ones write.
    /// A compact RS256 JWS: header, a CAAIS-like payload, 256 signature bytes.
    fn rs256_token() -> String {
        use base64::Engine;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let payload = br#"{"aud":"MY_AIS","iss":"https://caais.example.gov.cz/","nonce":"n1","sid":"eMixuOvXWbt6xqZP-FEoAmUIoRc33GWp894xk0B60Ew","sub":"16b33670-a816-4c1a-8712-d99e9ff85fec"}"#;
        let signature: Vec<u8> = (0..=255u8).map(|b| b.wrapping_mul(167)).collect();
        format!("{}.{}.{}", b64(br#"{"alg":"RS256"}"#), b64(payload), b64(&signature))
    }

    #[test]
    fn a_session_record_keeps_its_stored_layout() {
        let identity = serde_json::to_value(Identity {
            provider: "nia".into(),
            subject: "CZ/CZ/x".into(),
            organisation: Some(Box::new(crate::identity::Organisation {
                ico: Some("00007064".into()),
                ..Default::default()
            })),
            ..Identity::default()
        })
        .unwrap();
        assert_eq!(identity["organisation"]["ico"], "00007064", "a boxed part is written inline");
        let tokens = serde_json::json!({"access_token": "a", "issued_at": 1, "expires_at": 2,
            "refresh_token": "r", "client_loa": null});
        let saml = serde_json::json!({"Saml": {"name_id": "n", "format": null, "name_qualifier": null,
            "sp_name_qualifier": null, "session_index": "s"}});
        let cases = [
            (saml, serde_json::json!({"current": {"tokens": null, "retry_at": 0}}), serde_json::json!("portal")),
            (
                serde_json::json!({"Oidc": {"id_token": "h.p.s", "client_id": "MY_AIS"}}),
                serde_json::json!({"current": {"tokens": tokens, "retry_at": 5}}),
                serde_json::Value::Null,
            ),
            ("None".into(), serde_json::json!({"current": {"tokens": null, "retry_at": 0}}), serde_json::Value::Null),
            // A real-shaped RS256 ID token: held packed in memory, written back as the string.
            (
                serde_json::json!({"Oidc": {"id_token": rs256_token(), "client_id": "MY_AIS"}}),
                serde_json::json!({"current": {"tokens": null, "retry_at": 0}}),
                serde_json::Value::Null,
            ),
        ];
        for (logout, slot, app) in cases {
            let old = serde_json::json!({"identity": identity, "created_at": 10, "expires_at": 20,
                "logout_state": logout, "upstream_tokens": slot, "link_skipped": false, "app": app});
            let session: Session = serde_json::from_value(old.clone()).unwrap();
            assert_eq!(session.identity.provider, "nia");
            assert_eq!(session.app.as_deref(), app.as_str());
            assert_eq!(serde_json::to_value(&session).unwrap(), old, "written back unchanged");
        }
        let read: Session = serde_json::from_value(serde_json::json!({"identity": identity, "created_at": 10,
            "expires_at": 20, "logout_state": "None", "app": "portal"}))
        .unwrap();
        assert!(read.upstream_tokens.is_empty(), "a record without tokens (older layout) still decodes");
        let again: Session = serde_json::from_value(serde_json::to_value(&read).unwrap()).unwrap();
        assert!(Arc::ptr_eq(read.app.as_ref().unwrap(), again.app.as_ref().unwrap()), "app names are interned");
    }

    #[test]
    fn random_ids_are_never_all_zero_and_never_repeat() {
        let ids: std::collections::HashSet<[u8; 32]> = (0..1000).map(|_| random_id()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(!ids.contains(&[0u8; 32]));
    }

    /// Runs in a child process only (see below): a failing RNG must abort, not return zeros.
    #[test]
    #[ignore = "aborts the process; run as a child by rng_failure_aborts_the_process"]
    fn rng_failure_child() {
        let id = random_or_abort(|_| Err(()));
        // Reached only if the failure was swallowed (the old behaviour: an all-zero id).
        println!("RETURNED {id:?}");
    }

    #[test]
    fn rng_failure_aborts_the_process() {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args(["--ignored", "--exact", "session::tests::rng_failure_child", "--nocapture", "--test-threads=1"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stdout.contains("RETURNED"), "random_or_abort returned after a failure: {stdout}");
        assert!(stderr.contains(RNG_FAILURE), "no fatal message on stderr: {stderr}");
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(out.status.signal(), Some(6), "expected SIGABRT, got {:?}", out.status);
        }
    }
}
