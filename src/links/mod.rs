//! Account links: a legacy JIP/KAAS account ↔ a CAAIS user (BSI), for the migration to CAAIS.
//!
//! CAAIS generates new user ids (BSI) and does not migrate JIP ids (caais.md §1, "BSI is always
//! newly generated in CAAIS, not migrated from JIP/KAAS"), while legacy apps key their user
//! records on the JIP `UzivatelId`. A link lets the upstream keep receiving the legacy id
//! (`X-Auth-Legacy-Id`) after the switch to CAAIS.
//!
//! Threat: a link grants one person's legacy records to another. So a link is created only
//! from two successful logins in the same browser session — the CAAIS login, then a JIP/KAAS
//! login started from that session's confirmation page and bound to it server-side (the
//! pending login carries the CAAIS session's store key; single use, the login lifetime) — or
//! by an operator (import, admin API). Never from user input. One legacy id links to exactly
//! one BSI and one BSI to one legacy id: the stores enforce both atomically.

pub mod admin;
pub mod cli;
pub mod file;
pub mod redis;
pub mod sqlite;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::identity::{Identity, LegacyAccount};
use crate::ops::metrics::{CounterHandle, Metrics};

/// `[[app]] account_link`: what a CAAIS login without a link meets at this app.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountLink {
    /// No link page; a stored link is still forwarded.
    #[default]
    Off,
    /// A page offers the confirmation with the legacy login; the user may skip it.
    Offer,
    /// The app is served only to CAAIS users with a link.
    Require,
}

/// Where links are kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkStoreKind {
    /// An SQLite file on this instance (bundled SQLite, WAL, mode 0600).
    #[default]
    Sqlite,
    /// The sessions' Redis (`[session.redis]`), shared by several instances.
    Redis,
}

/// `[links]`: the account link table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinksConfig {
    /// Backend; `sqlite` (the default).
    #[serde(default)]
    pub store: LinkStoreKind,
    /// SQLite database file; created (mode 0600) when missing.
    #[serde(default = "default_database")]
    pub database: PathBuf,
    /// Providers whose logins are legacy JIP/KAAS accounts (their `UzivatelId` is the legacy
    /// id); every other provider's login is a CAAIS login whose subject is the BSI.
    pub legacy_providers: Vec<String>,
    /// `aisgate check`: the database's directory is checked, nothing is created (the store is
    /// an empty in-memory one).
    #[serde(skip)]
    pub dry_run: bool,
}

fn default_database() -> PathBuf {
    PathBuf::from("/var/lib/aisgate/links.sqlite")
}

/// The JIP/KAAS confirmation login of an account link, kept in its pending login
/// (server-side, single use, the login lifetime): which CAAIS session and user it belongs to.
#[derive(Clone, Serialize, Deserialize)]
pub struct LinkIntent {
    /// Store key of the CAAIS session that started the confirmation.
    pub session: [u8; 32],
    /// That session's provider.
    pub provider: String,
    /// That session's BSI.
    pub bsi: String,
}

/// One link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// CAAIS user id (BSI, the OIDC `sub` / SAML PersonIdentifier).
    pub bsi: String,
    /// The legacy account.
    #[serde(flatten)]
    pub legacy: LegacyAccount,
    /// When the link was made, Unix seconds.
    #[serde(default)]
    pub created_at: u64,
    /// How: `login` (two logins in one session), `import` or `admin`.
    #[serde(default = "default_source")]
    pub source: String,
}

fn default_source() -> String {
    "import".to_owned()
}

/// Link store failures.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The legacy id is already linked to another BSI.
    #[error("the legacy id is already linked to another CAAIS user")]
    LegacyTaken,
    /// The BSI is already linked to another legacy id.
    #[error("the CAAIS user is already linked to another legacy id")]
    BsiTaken,
    /// A field is empty or too long.
    #[error("{0}")]
    Invalid(&'static str),
    /// An import file entry is refused; nothing was imported.
    #[error("line {line}: {reason}")]
    Import {
        /// 1-based line (CSV) or array element (JSON).
        line: usize,
        /// Why.
        reason: String,
    },
    /// The backend failed.
    #[error("link store: {0}")]
    Storage(String),
}

impl LinkError {
    /// A bounded label for logs and audit events.
    pub fn label(&self) -> &'static str {
        match self {
            LinkError::LegacyTaken => "legacy_id_linked_to_other_bsi",
            LinkError::BsiTaken => "bsi_linked_to_other_legacy_id",
            LinkError::Invalid(_) => "invalid",
            LinkError::Import { .. } => "import_refused",
            LinkError::Storage(_) => "storage",
        }
    }
}

/// What `delete` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkKey {
    /// By CAAIS BSI.
    Bsi(String),
    /// By legacy id.
    Legacy(String),
}

/// Longest accepted id or name, bytes.
pub const MAX_FIELD: usize = 256;

impl Link {
    /// Checks the fields: ids non-empty, every value short and free of control characters.
    pub fn validate(&self) -> Result<(), LinkError> {
        let fields =
            [Some(&self.bsi), Some(&self.legacy.id), self.legacy.username.as_ref(), self.legacy.organisation.as_ref()];
        if self.bsi.trim().is_empty() {
            return Err(LinkError::Invalid("bsi is empty"));
        }
        if self.legacy.id.trim().is_empty() {
            return Err(LinkError::Invalid("legacy_id is empty"));
        }
        for value in fields.into_iter().flatten() {
            if value.len() > MAX_FIELD {
                return Err(LinkError::Invalid("a value is longer than 256 bytes"));
            }
            if value.chars().any(char::is_control) {
                return Err(LinkError::Invalid("a value contains control characters"));
            }
        }
        Ok(())
    }
}

/// A durable link table. Both directions are unique.
#[async_trait]
pub trait LinkStore: Send + Sync + 'static {
    /// The link of a BSI.
    async fn by_bsi(&self, bsi: &str) -> Result<Option<Link>, LinkError>;
    /// Stores a new link; [`LinkError::LegacyTaken`] / [`LinkError::BsiTaken`] when either side
    /// is linked already (an identical link is not an error).
    async fn create(&self, link: Link) -> Result<(), LinkError>;
    /// Deletes a link; returns it if it existed.
    async fn delete(&self, key: LinkKey) -> Result<Option<Link>, LinkError>;
    /// Every link, ordered by BSI.
    async fn list(&self) -> Result<Vec<Link>, LinkError>;
    /// Stores all `links` or none (entries identical to stored links are skipped); returns
    /// how many were new. Errors name the entry's line (`lines[i]` for `links[i]`).
    async fn import(&self, links: Vec<Link>, lines: Vec<usize>) -> Result<usize, LinkError>;
}

/// Opens the configured store; `session` holds the Redis connection settings.
pub fn open(
    cfg: &LinksConfig,
    session: &crate::config::SessionConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Arc<dyn LinkStore>, LinkError> {
    match cfg.store {
        LinkStoreKind::Sqlite if cfg.dry_run => Ok(Arc::new(sqlite::SqliteLinks::dry_run(&cfg.database)?)),
        LinkStoreKind::Sqlite => Ok(Arc::new(sqlite::SqliteLinks::open(&cfg.database)?)),
        LinkStoreKind::Redis => Ok(Arc::new(redis::RedisLinks::configured(session, env)?)),
    }
}

/// The links of a running gateway: the store, which providers are legacy, and the metrics.
pub struct Links {
    /// The table.
    pub store: Arc<dyn LinkStore>,
    legacy_providers: Vec<String>,
    /// `aisgate_caais_logins_total{app,linked}`: per app index, [unlinked, linked].
    caais_logins: Vec<[CounterHandle; 2]>,
}

impl Links {
    /// Builds the handle and registers `aisgate_caais_logins_total{app,linked}` for `apps`.
    pub fn new(store: Arc<dyn LinkStore>, cfg: &LinksConfig, apps: &[&str], metrics: &mut Metrics) -> Links {
        let caais_logins = apps
            .iter()
            .map(|app| {
                ["false", "true"].map(|linked| {
                    metrics.register_counter(
                        "aisgate_caais_logins_total",
                        "CAAIS logins per app, by whether the user has an account link to a legacy JIP/KAAS account.",
                        &[("app", app), ("linked", linked)],
                    )
                })
            })
            .collect();
        Links { store, legacy_providers: cfg.legacy_providers.clone(), caais_logins }
    }

    /// Whether `provider` is a legacy JIP/KAAS provider.
    pub fn is_legacy(&self, provider: &str) -> bool {
        self.legacy_providers.iter().any(|p| p == provider)
    }

    /// The configured legacy providers, in order.
    pub fn legacy_providers(&self) -> &[String] {
        &self.legacy_providers
    }

    /// Sets `identity.legacy` at login: a legacy login names its own account; a CAAIS login
    /// the linked one, if any. A store failure leaves it unset (logged): the user is then
    /// treated as unlinked, which `require` apps refuse — fail closed.
    pub async fn annotate(&self, identity: &mut Identity) {
        if self.is_legacy(&identity.provider) {
            identity.legacy = legacy_of(identity);
            return;
        }
        match self.store.by_bsi(&identity.subject).await {
            Ok(found) => identity.legacy = found.map(|l| l.legacy),
            Err(e) => tracing::error!(user = %identity.log_label(), error = %e, "account link look-up failed"),
        }
    }

    /// Counts a CAAIS (non-legacy) login at app `index`.
    pub fn count_login(&self, index: usize, identity: &Identity) {
        if self.is_legacy(&identity.provider) {
            return;
        }
        if let Some(pair) = self.caais_logins.get(index) {
            pair[usize::from(identity.legacy.is_some())].inc();
        }
    }
}

/// The legacy account a JIP/KAAS login names: its `UzivatelId`, login name and IČO.
pub fn legacy_of(identity: &Identity) -> Option<LegacyAccount> {
    (!identity.subject.is_empty()).then(|| LegacyAccount {
        id: identity.subject.clone(),
        username: identity.username.clone(),
        organisation: identity.organisation.as_ref().and_then(|o| o.ico.clone()),
    })
}

/// Cross-field checks of `[links]` and `account_link` for `aisgate check`: an app asking for
/// links needs `[links]` and a legacy provider among its providers (to confirm with); every
/// legacy provider must exist and be a JIP/KAAS (`kind = "kaas"`) provider.
pub fn check(
    config: &crate::config::Config,
    main_loc: &crate::config::SourceLoc,
) -> Vec<(crate::config::SourceLoc, String)> {
    let mut issues = Vec::new();
    if let Some(links) = &config.links {
        for name in &links.legacy_providers {
            match config.provider.iter().find(|p| p.name() == name) {
                None => issues
                    .push((main_loc.clone(), format!("[links] legacy provider {name:?} is not a configured provider"))),
                Some(p) if p.kind() != "kaas" => issues.push((
                    p.loc.clone(),
                    format!(
                        "provider {name:?} is listed in [links] legacy_providers but is kind {:?}, not \"kaas\"",
                        p.kind()
                    ),
                )),
                Some(_) => {}
            }
        }
    }
    for app in &config.app {
        if app.account_link == AccountLink::Off {
            continue;
        }
        match &config.links {
            None => issues.push((app.loc.clone(), format!("app {:?}: account_link needs a [links] table", app.name))),
            Some(links) => {
                if !app.providers.iter().any(|p| links.legacy_providers.contains(p))
                    && app.account_link == AccountLink::Offer
                {
                    issues.push((
                        app.loc.clone(),
                        format!("app {:?}: account_link = \"offer\" needs one of [links] legacy_providers among its providers", app.name),
                    ));
                }
            }
        }
    }
    issues
}

/// `aisgate_app_logins_total{app,protocol}`: logins per app (the app the login returned to)
/// and protocol family (`kaas`, `saml`, `oidc`), so an operator sees when an app's legacy
/// logins stop.
pub struct AppLogins {
    provider_kinds: Vec<&'static str>,
    counters: std::collections::HashMap<(usize, &'static str), CounterHandle>,
}

impl AppLogins {
    /// Registers a series for every app and the protocol of each of its providers.
    /// `provider_kinds[i]` is the `kind` of provider `i`.
    pub fn new(
        apps: &[crate::gateway::route::App],
        provider_kinds: Vec<&'static str>,
        metrics: &mut Metrics,
    ) -> AppLogins {
        let mut counters = std::collections::HashMap::new();
        for app in apps {
            for kind in app.providers.iter().filter_map(|i| provider_kinds.get(*i).copied()) {
                counters.entry((app.index, kind)).or_insert_with(|| {
                    metrics.register_counter(
                        "aisgate_app_logins_total",
                        "Successful logins per app (the app the login returned to) and protocol (kaas, saml, oidc).",
                        &[("app", &app.name), ("protocol", kind)],
                    )
                });
            }
        }
        AppLogins { provider_kinds, counters }
    }

    /// Counts a successful login by provider `provider` that returned to app `app`.
    pub fn count(&self, app: usize, provider: usize) {
        let Some(kind) = self.provider_kinds.get(provider) else { return };
        if let Some(counter) = self.counters.get(&(app, *kind)) {
            counter.inc();
        }
    }
}

/// The keyed, non-reversible log label of a BSI (`bsi:…`): logs and audit events never carry
/// the id itself.
pub fn bsi_label(bsi: &str) -> String {
    format!("bsi:{}", crate::identity::label::key().label(bsi.as_bytes(), 6))
}

/// The log label of a legacy id (`legacy:…`).
pub fn legacy_label(id: &str) -> String {
    format!("legacy:{}", crate::identity::label::key().label(id.as_bytes(), 6))
}

/// One link change for the audit log.
pub struct Change<'a> {
    /// `create`, `delete` or `import`.
    pub action: &'static str,
    /// `login`, `admin` or `cli`.
    pub source: &'static str,
    /// The link, when one is concerned.
    pub link: Option<&'a Link>,
    /// How many links changed.
    pub count: usize,
    /// The store's answer.
    pub result: Result<(), &'a LinkError>,
}

impl<'a> Change<'a> {
    /// The change of a delete that answered `result`.
    pub fn deleted(source: &'static str, result: &'a Result<Option<Link>, LinkError>) -> Change<'a> {
        let link = result.as_ref().ok().and_then(Option::as_ref);
        Change {
            action: "delete",
            source,
            link,
            count: usize::from(link.is_some()),
            result: result.as_ref().map(|_| ()),
        }
    }

    /// The change of an import that answered `result` (links added).
    pub fn imported(source: &'static str, result: &'a Result<usize, LinkError>) -> Change<'a> {
        let count = *result.as_ref().unwrap_or(&0);
        Change { action: "import", source, link: None, count, result: result.as_ref().map(|_| ()) }
    }
}

/// Emits `change` as a `link_change` audit event.
pub fn audit(audit: &crate::audit::Audit, origin: crate::audit::Origin<'_>, change: Change<'_>) {
    use crate::audit::{Event, Outcome};
    let user = change.link.map(|l| bsi_label(&l.bsi));
    let legacy = change.link.map(|l| legacy_label(&l.legacy.id));
    let (result, reason) = match change.result {
        Ok(()) => (Outcome::Success, None),
        Err(e @ LinkError::Storage(_)) => (Outcome::Error, Some(e.label())),
        Err(e) => (Outcome::Refused, Some(e.label())),
    };
    audit.emit(Event::LinkChange {
        origin,
        action: change.action,
        source: change.source,
        user: user.as_deref(),
        legacy: legacy.as_deref(),
        count: change.count,
        result,
        reason,
    });
}
