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

impl AccountLink {
    /// The configured spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountLink::Off => "off",
            AccountLink::Offer => "offer",
            AccountLink::Require => "require",
        }
    }
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
    /// id).
    pub legacy_providers: Vec<String>,
    /// Providers whose login subject is a CAAIS BSI: only their logins are annotated with a
    /// link, asked to link and counted. Default: see [`LinksConfig::caais_providers`]. Logins
    /// of any other provider (NIA, EnviIAM, …) pass untouched.
    #[serde(default, rename = "caais_providers")]
    pub caais_list: Option<Vec<String>>,
    /// `aisgate check`: the database's directory is checked, nothing is created (the store is
    /// an empty in-memory one).
    #[serde(skip)]
    pub dry_run: bool,
}

impl LinksConfig {
    /// The providers whose subject is a CAAIS BSI: `caais_providers` when set, else every
    /// provider that is certainly CAAIS ([`CaaisSource::Certain`]) and not a legacy provider.
    pub fn caais_providers(&self, providers: &[crate::config::Located<crate::config::ProviderConfig>]) -> Vec<String> {
        match &self.caais_list {
            Some(list) => list.clone(),
            None => providers
                .iter()
                .filter(|p| {
                    caais_source(p) == CaaisSource::Certain && !self.legacy_providers.iter().any(|l| l == p.name())
                })
                .map(|p| p.name().to_owned())
                .collect(),
        }
    }
}

/// Whether a provider's login subject is a CAAIS BSI, as far as its configuration tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaaisSource {
    /// Certainly: a `caais-*` preset (OIDC, or `kind = "kaas"` at the CAAIS legacy API, whose
    /// `UzivatelId` is the BSI, caais.md §0 and §3.10, decoded to the same UUID text as the
    /// OIDC `sub`) or the CAAIS SAML profile. In the default `caais_providers`.
    Certain,
    /// Possibly: a generic OIDC provider or a `kind = "kaas"` provider without a preset (the
    /// configuration does not say which IdP it talks to). Only when listed.
    Possible,
    /// Never; why.
    Never(&'static str),
}

/// How `provider`'s configuration classifies its subject (see [`CaaisSource`]).
pub fn caais_source(provider: &crate::config::ProviderConfig) -> CaaisSource {
    use crate::config::ProviderConfig;
    use crate::provider::kaas::KaasPreset;
    use crate::provider::oidc::OidcPreset;
    use crate::provider::saml::attributes::Profile;
    match provider {
        ProviderConfig::Oidc(c) => match c.preset {
            Some(OidcPreset::CaaisOidcTest | OidcPreset::CaaisOidcProd | OidcPreset::CaaisOidcCms) => {
                CaaisSource::Certain
            }
            Some(OidcPreset::EnviamOidcTest | OidcPreset::EnviamOidcProd) => CaaisSource::Never("an EnviIAM preset"),
            None => CaaisSource::Possible,
        },
        ProviderConfig::Saml(c) => match c.profile() {
            Some(Profile::Caais) => CaaisSource::Certain,
            Some(Profile::Nia) => CaaisSource::Never("the NIA profile: an eIDAS PersonIdentifier"),
            Some(Profile::Enviam) => CaaisSource::Never("the EnviIAM profile"),
            None => CaaisSource::Never("no attribute profile"),
        },
        ProviderConfig::Kaas(c) => match c.preset {
            Some(KaasPreset::CaaisTest | KaasPreset::CaaisProd | KaasPreset::CaaisCms) => CaaisSource::Certain,
            Some(_) => CaaisSource::Never("a JIP/KAAS preset: its UzivatelId is a legacy JIP id"),
            None => CaaisSource::Possible,
        },
    }
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

/// The links of a running gateway: the store, which providers are legacy and which CAAIS,
/// and the metrics.
pub struct Links {
    /// The table.
    pub store: Arc<dyn LinkStore>,
    legacy_providers: Vec<String>,
    caais_providers: Vec<String>,
    /// `aisgate_caais_logins_total{app,linked}`: per app index, [unlinked, linked].
    caais_logins: Vec<[CounterHandle; 2]>,
}

impl Links {
    /// Builds the handle and registers `aisgate_caais_logins_total{app,linked}` for `apps`;
    /// `providers` are the configured providers (for the default `caais_providers`).
    pub fn new(
        store: Arc<dyn LinkStore>,
        cfg: &LinksConfig,
        providers: &[crate::config::Located<crate::config::ProviderConfig>],
        apps: &[&str],
        metrics: &mut Metrics,
    ) -> Links {
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
        let caais_providers = cfg.caais_providers(providers);
        Links { store, legacy_providers: cfg.legacy_providers.clone(), caais_providers, caais_logins }
    }

    /// Whether `provider` is a legacy JIP/KAAS provider.
    pub fn is_legacy(&self, provider: &str) -> bool {
        self.legacy_providers.iter().any(|p| p == provider)
    }

    /// Whether `provider`'s subject is a CAAIS BSI (and not a legacy provider's id).
    pub fn is_caais(&self, provider: &str) -> bool {
        !self.is_legacy(provider) && self.caais_providers.iter().any(|p| p == provider)
    }

    /// The configured legacy providers, in order.
    pub fn legacy_providers(&self) -> &[String] {
        &self.legacy_providers
    }

    /// Sets `identity.legacy` at login: a legacy login names its own account; a CAAIS login
    /// the linked one, if any; any other login none (its subject is no BSI: never looked up).
    /// A store failure leaves it unset (logged): the user is then treated as unlinked, which
    /// `require` apps refuse — fail closed.
    pub async fn annotate(&self, identity: &mut Identity) {
        if self.is_legacy(&identity.provider) {
            identity.legacy = legacy_of(identity).map(Box::new);
            return;
        }
        if !self.is_caais(&identity.provider) {
            identity.legacy = None;
            return;
        }
        match self.store.by_bsi(&identity.subject).await {
            Ok(found) => identity.legacy = found.map(|l| Box::new(l.legacy)),
            Err(e) => tracing::error!(user = %identity.log_label(), error = %e, "account link look-up failed"),
        }
    }

    /// Counts a CAAIS login at app `index` (other logins are not counted).
    pub fn count_login(&self, index: usize, identity: &Identity) {
        if !self.is_caais(&identity.provider) {
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
/// links needs `[links]`, a CAAIS provider among its providers (whose users get linked) and,
/// for `offer`, a legacy provider (to confirm with); every legacy provider must exist and be a
/// JIP/KAAS (`kind = "kaas"`) provider not at CAAIS; every listed CAAIS provider must exist,
/// may be CAAIS ([`caais_source`]) and must not be a legacy provider too.
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
                Some(p) if caais_source(p) == CaaisSource::Certain => issues.push((
                    p.loc.clone(),
                    format!("provider {name:?} is listed in [links] legacy_providers but has a CAAIS preset: its UzivatelId is a CAAIS BSI, not a legacy JIP id"),
                )),
                Some(_) => {}
            }
        }
        for name in links.caais_list.iter().flatten() {
            match config.provider.iter().find(|p| p.name() == name) {
                None => issues
                    .push((main_loc.clone(), format!("[links] caais provider {name:?} is not a configured provider"))),
                Some(p) if links.legacy_providers.contains(name) => issues.push((
                    p.loc.clone(),
                    format!("provider {name:?} is listed in both [links] legacy_providers and caais_providers"),
                )),
                Some(p) => {
                    if let CaaisSource::Never(why) = caais_source(p) {
                        issues.push((
                            p.loc.clone(),
                            format!("provider {name:?} is listed in [links] caais_providers but its subject is not a CAAIS BSI ({why})"),
                        ));
                    }
                }
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
                let caais = links.caais_providers(&config.provider);
                if !app.providers.iter().any(|p| caais.contains(p)) {
                    issues.push((
                        app.loc.clone(),
                        format!(
                            "app {:?}: account_link = \"{}\" needs a CAAIS provider among its providers (one of [links] caais_providers; by default the providers with a caais-* preset or the CAAIS SAML profile)",
                            app.name,
                            app.account_link.as_str()
                        ),
                    ));
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    const PROVIDERS: &str = r#"
[server]
listen = ["127.0.0.1:8080"]
public_base_url = "https://portal.example.cz"

[session]
keys = [{ id = "k1", file = "session.key" }]

[[provider]]
name = "jip"
kind = "kaas"
preset = "kaas-test"
ats_id = "MY_AIS"
client_cert = "c.pem"
client_key = "c.key"

[[provider]]
name = "caais"
kind = "oidc"
preset = "caais-oidc-test"
client_id = "MY_AIS"
client_cert = "c.pem"
client_key = "c.key"

[[provider]]
name = "caais-legacy"
kind = "kaas"
preset = "caais-test"
ats_id = "MY_AIS"
client_cert = "c.pem"
client_key = "c.key"

[[provider]]
name = "generic"
kind = "oidc"
issuer = "https://idp.example.cz/"
client_id = "x"

[[provider]]
name = "nia"
kind = "saml"
preset = "nia-test"
entity_id = "https://portal.example.cz/"
signing_key = "s.key"
signing_cert = "s.pem"
encryption_keys = [{ key = "e.key", cert = "e.pem" }]

[[provider]]
name = "caais-saml"
kind = "saml"
preset = "caais-saml-test"
entity_id = "AIS1"
signing_key = "s.key"
signing_cert = "s.pem"
encryption_keys = [{ key = "e.key", cert = "e.pem" }]

[[provider]]
name = "enviam"
kind = "oidc"
preset = "enviam-oidc-test"
client_id = "isoh"
"#;

    /// Loads `PROVIDERS` + `rest`; returns the config, the main file's location and the text.
    fn load(dir: &tempfile::TempDir, rest: &str) -> (crate::config::Config, crate::config::SourceLoc, String) {
        let text = format!("{PROVIDERS}{rest}");
        let path = dir.path().join("aisgate.toml");
        std::fs::write(&path, &text).unwrap();
        let config = crate::config::load(&path).unwrap_or_else(|e| panic!("{e:?}"));
        (config, crate::config::SourceLoc { file: path.into(), line: 1, column: 1 }, text)
    }

    /// 1-based line of the table header `header` that precedes the first `marker`.
    fn table_line(text: &str, header: &str, marker: &str) -> usize {
        let at = text.find(marker).unwrap();
        let start = text[..at].rfind(header).unwrap();
        text[..start].lines().count() + 1
    }

    fn names(list: &[String]) -> Vec<&str> {
        list.iter().map(String::as_str).collect()
    }

    #[test]
    fn default_caais_providers_are_the_certain_ones_and_a_list_replaces_them() {
        let dir = tempfile::tempdir().unwrap();
        let plain = "\n[[app]]\nname = \"plain\"\nupstream = \"http://127.0.0.1:3000\"\nproviders = [\"caais\"]\n";
        let (config, _, _) = load(&dir, &format!("[links]\nlegacy_providers = [\"jip\"]\n{plain}"));
        let links = config.links.as_ref().unwrap();
        // CAAIS presets (OIDC, the legacy API) and the CAAIS SAML profile; not the JIP/KAAS
        // preset, not a generic OIDC provider, not NIA, not EnviIAM.
        assert_eq!(names(&links.caais_providers(&config.provider)), ["caais", "caais-legacy", "caais-saml"]);
        let by_name = |n: &str| caais_source(config.provider.iter().find(|p| p.name() == n).unwrap());
        assert_eq!(by_name("generic"), CaaisSource::Possible);
        assert_eq!(by_name("nia"), CaaisSource::Never("the NIA profile: an eIDAS PersonIdentifier"));
        assert_eq!(by_name("jip"), CaaisSource::Never("a JIP/KAAS preset: its UzivatelId is a legacy JIP id"));

        let (config, _, _) =
            load(&dir, &format!("[links]\nlegacy_providers = [\"jip\"]\ncaais_providers = [\"generic\"]\n{plain}"));
        assert_eq!(names(&config.links.as_ref().unwrap().caais_providers(&config.provider)), ["generic"]);
    }

    #[test]
    fn check_accepts_a_caais_app_and_refuses_links_without_a_caais_provider_or_with_wrong_lists() {
        let dir = tempfile::tempdir().unwrap();
        let app = |name: &str, providers: &str, link: &str| {
            format!("\n[[app]]\nname = \"{name}\"\nupstream = \"http://127.0.0.1:3000\"\nproviders = [{providers}]\naccount_link = \"{link}\"\n")
        };
        let good =
            format!("[links]\nlegacy_providers = [\"jip\"]\n{}", app("desk", r#""caais", "nia", "jip""#, "offer"));
        let (config, main, _) = load(&dir, &good);
        assert!(check(&config, &main).is_empty(), "{:?}", check(&config, &main));

        // The loader runs `check`: its errors carry file:line:column.
        let refused = |rest: &str| -> (Vec<(usize, String)>, String) {
            let text = format!("{PROVIDERS}{rest}");
            let path = dir.path().join("bad.toml");
            std::fs::write(&path, &text).unwrap();
            let errors = crate::config::load(&path).expect_err("refused");
            assert!(errors.iter().all(|e| *e.loc.file == *path), "{errors:?}");
            (errors.into_iter().map(|e| (e.loc.line, e.message)).collect(), text)
        };
        let expect = |line: usize, m: &str| (line, m.to_owned());
        let (errors, text) = refused(&format!(
            "[links]\nlegacy_providers = [\"jip\", \"caais-legacy\"]\ncaais_providers = [\"caais\", \"nia\", \"missing\", \"jip\", \"generic\"]\n{}",
            app("desk", r#""caais", "jip""#, "offer")
        ));
        assert_eq!(
            errors,
            vec![
                expect(
                    table_line(&text, "[[provider]]", "name = \"caais-legacy\""),
                    "provider \"caais-legacy\" is listed in [links] legacy_providers but has a CAAIS preset: its UzivatelId is a CAAIS BSI, not a legacy JIP id"
                ),
                expect(
                    table_line(&text, "[[provider]]", "name = \"nia\""),
                    "provider \"nia\" is listed in [links] caais_providers but its subject is not a CAAIS BSI (the NIA profile: an eIDAS PersonIdentifier)"
                ),
                expect(
                    // The `[links]` table, not the file's first line.
                    text.lines().position(|l| l == "[links]").map_or(0, |i| i + 1),
                    "[links] caais provider \"missing\" is not a configured provider",
                ),
                expect(
                    table_line(&text, "[[provider]]", "name = \"jip\""),
                    "provider \"jip\" is listed in both [links] legacy_providers and caais_providers"
                ),
            ]
        );
        // An app asking for links whose providers are NIA and JIP/KAAS only: nobody to link.
        let (errors, text) = refused(&format!(
            "[links]\nlegacy_providers = [\"jip\"]\n{}",
            app("citizens", r#""nia", "jip""#, "require")
        ));
        assert_eq!(
            errors,
            vec![expect(
                table_line(&text, "[[app]]", "name = \"citizens\""),
                "app \"citizens\": account_link = \"require\" needs a CAAIS provider among its providers (one of [links] caais_providers; by default the providers with a caais-* preset or the CAAIS SAML profile)"
            )]
        );
    }
}
