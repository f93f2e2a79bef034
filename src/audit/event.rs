//! The audit event schema, version 1: typed events serialized as one flat JSON object each.
//!
//! Events borrow what they report (`&str`, `&Identity`, `&StoreKey`) and are serialized by
//! [`super::Audit::emit`] only when a sink is configured, so building one at a call site
//! costs nothing when auditing is off. Labels are computed at serialization: the subject
//! appears only as its keyed log label ([`Identity::log_label`]), a session only as the keyed
//! label of its store key ([`StoreKey::log_label`]); names, e-mails, tokens, cookie values and
//! IdP session ids have no field to go into.
//!
//! A change that removes or renames a field, or changes its meaning, bumps [`SCHEMA_VERSION`];
//! new fields and new event types do not (consumers ignore what they do not know).

use std::net::IpAddr;

use serde::{Serialize, Serializer};

use crate::identity::Identity;
use crate::session::StoreKey;

/// The `"v"` of every record.
pub const SCHEMA_VERSION: u32 = 1;

/// Where an event comes from: the request it was decided in. Both absent for events no
/// request caused (a session found expired by the store's housekeeping, a reload by
/// signal). `client_ip` is dropped from every record when `[audit] client_ip = false`.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Origin<'a> {
    /// The request id (as in the access log and the `X-Request-Id` response header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a str>,
    /// The client address (from `X-Forwarded-For` only behind trusted proxies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<IpAddr>,
}

impl<'a> Origin<'a> {
    /// A request's origin.
    pub fn request(request_id: &'a str, client_ip: IpAddr) -> Origin<'a> {
        Origin { request_id: Some(request_id), client_ip: Some(client_ip) }
    }

    /// No request (housekeeping, signals).
    pub fn none() -> Origin<'a> {
        Origin::default()
    }
}

/// Who an event is about, serialized as the non-personal facts of the identity: `user` (the
/// keyed log label `provider:hex`), `provider`, `protocol`, `loa` and `organisation` (the
/// IČO the user acted for). Never the subject, names, contacts or attributes.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a>(pub &'a Identity);

impl Serialize for Subject<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SubjectFacts::of(self.0).serialize(serializer)
    }
}

/// The fields a [`Subject`] is serialized as, owned: what a shared store keeps (sealed) next to
/// a session so that the session's end can be audited after its record is gone (a Redis TTL
/// expiry, [`Event::StoredSessionEnd`]). Never more than [`Subject`] writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SubjectFacts {
    /// The keyed log label `provider:hex`.
    pub user: String,
    /// The provider.
    pub provider: String,
    /// The protocol, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// The level of assurance, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loa: Option<String>,
    /// The IČO the user acted for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<String>,
}

impl SubjectFacts {
    /// The facts of `identity`, its label under the current log-label key.
    pub fn of(identity: &Identity) -> SubjectFacts {
        SubjectFacts {
            user: identity.log_label(),
            provider: identity.provider.clone(),
            protocol: Some(identity.protocol.clone()).filter(|p| !p.is_empty()),
            loa: identity.loa.map(|loa| loa.as_str().to_owned()),
            organisation: identity.organisation.as_ref().and_then(|o| o.ico.clone()),
        }
    }
}

/// A session, serialized as the keyed label of its store key (never the id or the key).
#[derive(Debug, Clone, Copy)]
pub struct SessionRef<'a>(pub &'a StoreKey);

impl Serialize for SessionRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.log_label())
    }
}

/// Who initiated a logout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogoutBy {
    /// The user, at `/.aisgate/logout` or an app's intercepted logout path.
    User,
    /// The IdP, through the browser (SAML `LogoutRequest` at the SLO endpoint).
    Idp,
    /// The IdP, server to server (OpenID Connect Back-Channel Logout, SAML SOAP binding).
    BackChannel,
}

/// The outcome of an action that can fail (logouts, admin actions, reloads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Done.
    Success,
    /// The request failed the gateway's checks (a forged logout token, a bad admin request).
    Refused,
    /// Valid, but naming nothing (an IdP `LogoutRequest` for no known session).
    Unmatched,
    /// The gateway could not do it (store down, IdP keys unavailable, a broken config).
    Error,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The absolute timeout (or the IdP's own session limit) passed.
    Expired,
    /// Not used for longer than `[session] idle_timeout_secs`.
    Idle,
    /// The user logged out.
    Logout,
    /// An operator ended it (admin API or `aisgate sessions`).
    Admin,
    /// A new login in the same browser (a step-up, another account) replaced it.
    Replaced,
    /// A limit made room: `max_sessions_per_user` (its oldest session), or a full store
    /// (its least recently used session).
    Limit,
    /// The IdP ended the grant: the token refresh was refused.
    Revoked,
}

/// One audit event. Serialized with `"event"` = the variant name in `snake_case` and the
/// variant's fields flat beside it (see the README's "Audit log" for the table).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<'a> {
    /// A login completed and a session was created.
    LoginSuccess {
        /// Request.
        #[serde(flatten)]
        origin: Origin<'a>,
        /// The app the login was for (its return URL's), if one serves it.
        #[serde(skip_serializing_if = "Option::is_none")]
        app: Option<&'a str>,
        /// Who logged in.
        #[serde(flatten)]
        subject: Subject<'a>,
        /// The new session.
        session: SessionRef<'a>,
        /// The LoA the login had to reach (a step-up), if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        required_loa: Option<&'static str>,
    },
    /// A login (or a login start) failed or was refused.
    LoginFailure {
        /// Request.
        #[serde(flatten)]
        origin: Origin<'a>,
        /// The provider the login was at.
        provider: &'a str,
        /// Its protocol (`kaas`, `saml2`, `oidc`).
        #[serde(skip_serializing_if = "Option::is_none")]
        protocol: Option<&'a str>,
        /// `refused` (the gateway's checks), `failure` (the IdP said no) or `error` (an
        /// outage), as `aisgate_logins_total`.
        result: &'static str,
        /// The bounded reason label of `src/provider/error.rs` (or a gateway label such as
        /// `login_start_rate_limited`), as `aisgate_login_refusals_total`.
        reason: &'static str,
    },
    /// A logout.
    Logout {
        /// Request.
        #[serde(flatten)]
        origin: Origin<'a>,
        /// Who initiated it.
        by: LogoutBy,
        /// The IdP that asked, for an IdP-initiated logout. `None` for a user's logout, whose
        /// `subject` carries the provider (one `provider` key per record).
        #[serde(skip_serializing_if = "Option::is_none")]
        provider: Option<&'a str>,
        /// The user, for a logout by the user.
        #[serde(flatten)]
        subject: Option<Subject<'a>>,
        /// The session, for a logout by the user.
        #[serde(skip_serializing_if = "Option::is_none")]
        session: Option<SessionRef<'a>>,
        /// Sessions ended (IdP-initiated logouts end every matching one).
        sessions_ended: usize,
        /// What happened.
        result: Outcome,
        /// Why it was refused or failed: a bounded reason label.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'static str>,
    },
    /// A session ended.
    SessionEnd {
        /// Request, if one found it.
        #[serde(flatten)]
        origin: Origin<'a>,
        /// Why.
        reason: EndReason,
        /// Whose.
        #[serde(flatten)]
        subject: Subject<'a>,
        /// Which.
        session: SessionRef<'a>,
    },
    /// A session of a shared store that ended by expiry, found by the store's housekeeping
    /// once its record was gone: the same record as [`Event::SessionEnd`] (`"event":
    /// "session_end"`, no request), its subject from the facts kept beside the session.
    #[serde(rename = "session_end")]
    StoredSessionEnd {
        /// Why (`expired` or `idle`).
        reason: EndReason,
        /// Whose.
        #[serde(flatten)]
        subject: &'a SubjectFacts,
        /// Which.
        session: SessionRef<'a>,
    },
    /// A logged-in user was refused by an app's `[[app.rule]]` (or its `default = "deny"`).
    AccessDenied {
        /// Request.
        #[serde(flatten)]
        origin: Origin<'a>,
        /// The app.
        app: &'a str,
        /// Index of the deciding `[[app.rule]]` within the app, from 0; absent when no rule
        /// matched and the app's default denied.
        #[serde(skip_serializing_if = "Option::is_none")]
        rule: Option<usize>,
        /// What the rule found missing: `missing_role`, `loa_too_low`, `organisation`,
        /// `provider`, `no_rule`; from the CRŽP IČO check `ico_denied`, `ico_missing`,
        /// `no_operation` (`api::authorize::Denial::audit_label`).
        denied: &'static str,
        /// Who.
        #[serde(flatten)]
        subject: Subject<'a>,
    },
    /// A route needed a higher LoA: a step-up login was asked for.
    StepUp {
        /// Request.
        #[serde(flatten)]
        origin: Origin<'a>,
        /// The app.
        app: &'a str,
        /// The LoA the route needs.
        required_loa: &'static str,
        /// The provider the step-up login goes to.
        via: &'a str,
        /// Who (with the LoA they have now).
        #[serde(flatten)]
        subject: Subject<'a>,
    },
    /// An operator action through the admin API.
    AdminAction {
        /// Request.
        #[serde(flatten)]
        origin: Origin<'a>,
        /// What: a bounded name such as `end_session`, `end_user_sessions`,
        /// `end_organisation_sessions`, `maintenance_on`, `maintenance_off`.
        action: &'a str,
        /// What it acted on: a session or user log label, an IČO, an app name — never a raw
        /// subject or session id.
        #[serde(skip_serializing_if = "Option::is_none")]
        target: Option<&'a str>,
        /// Sessions ended by the action, if it ends sessions.
        #[serde(skip_serializing_if = "Option::is_none")]
        sessions_ended: Option<usize>,
        /// What happened.
        result: Outcome,
    },
    /// Account links JIP/KAAS ↔ CAAIS created or deleted ([`crate::links`]).
    LinkChange {
        /// Request (login or admin API), or none (CLI).
        #[serde(flatten)]
        origin: Origin<'a>,
        /// `create`, `delete` or `import`.
        action: &'static str,
        /// `login` (two logins in one session), `admin` (admin API) or `cli`.
        source: &'static str,
        /// Log label of the CAAIS user (BSI) when one link is concerned — never the BSI.
        #[serde(skip_serializing_if = "Option::is_none")]
        user: Option<&'a str>,
        /// Log label of the legacy account when one link is concerned — never the id.
        #[serde(skip_serializing_if = "Option::is_none")]
        legacy: Option<&'a str>,
        /// Links created or deleted.
        count: usize,
        /// What happened.
        result: Outcome,
        /// Why not, for a refusal (a bounded label such as `legacy_id_linked_to_other_bsi`).
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'static str>,
    },
    /// A configuration reload (SIGHUP or the admin API).
    Reload {
        /// Request (admin API), or none (signal).
        #[serde(flatten)]
        origin: Origin<'a>,
        /// What happened: on `error` the old configuration stays.
        result: Outcome,
        /// Hash of the configuration now in force.
        #[serde(skip_serializing_if = "Option::is_none")]
        config_hash: Option<&'a str>,
        /// Why it failed (operator text with `file:line:column`; no secrets).
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<&'a str>,
    },
}

impl<'a> Event<'a> {
    /// The `"event"` value: also the syslog MSGID.
    pub fn name(&self) -> &'static str {
        match self {
            Event::LoginSuccess { .. } => "login_success",
            Event::LoginFailure { .. } => "login_failure",
            Event::Logout { .. } => "logout",
            Event::SessionEnd { .. } | Event::StoredSessionEnd { .. } => "session_end",
            Event::AccessDenied { .. } => "access_denied",
            Event::StepUp { .. } => "step_up",
            Event::AdminAction { .. } => "admin_action",
            Event::LinkChange { .. } => "link_change",
            Event::Reload { .. } => "reload",
        }
    }

    /// Whether the event records something refused or failed (syslog severity `notice`
    /// instead of `info`).
    pub fn is_refusal(&self) -> bool {
        match self {
            Event::LoginFailure { .. } | Event::AccessDenied { .. } => true,
            Event::Logout { result, .. }
            | Event::AdminAction { result, .. }
            | Event::LinkChange { result, .. }
            | Event::Reload { result, .. } => {
                matches!(result, Outcome::Refused | Outcome::Error)
            }
            _ => false,
        }
    }

    fn origin_mut(&mut self) -> Option<&mut Origin<'a>> {
        match self {
            Event::StoredSessionEnd { .. } => None,
            Event::LoginSuccess { origin, .. }
            | Event::LoginFailure { origin, .. }
            | Event::Logout { origin, .. }
            | Event::SessionEnd { origin, .. }
            | Event::AccessDenied { origin, .. }
            | Event::StepUp { origin, .. }
            | Event::AdminAction { origin, .. }
            | Event::LinkChange { origin, .. }
            | Event::Reload { origin, .. } => Some(origin),
        }
    }

    /// Drops the client address (`[audit] client_ip = false`).
    pub(crate) fn without_client_ip(mut self) -> Self {
        if let Some(origin) = self.origin_mut() {
            origin.client_ip = None;
        }
        self
    }
}

/// One line of the audit log: the version, the time, the event.
#[derive(Serialize)]
pub(crate) struct Record<'r, 'a> {
    /// [`SCHEMA_VERSION`].
    pub v: u32,
    /// RFC 3339 UTC with milliseconds, from [`crate::clock::Clock`].
    pub ts: &'r str,
    /// The event.
    #[serde(flatten)]
    pub event: &'r Event<'a>,
}

/// RFC 3339 UTC with milliseconds (`2026-12-05T11:19:01.123Z`) of Unix milliseconds.
pub(crate) fn timestamp(unix_millis: u64) -> String {
    let seconds = crate::date::format_rfc3339(unix_millis / 1000);
    match seconds.strip_suffix('Z') {
        Some(base) => format!("{base}.{:03}Z", unix_millis % 1000),
        None => seconds,
    }
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;
