//! The central login host (issue 12 item 6): an app on host `H` whose IdP returns to another
//! host `L` (`[server] public_base_url`'s, one registration for all apps) logs in there and
//! gets the finished login handed back.
//!
//! ```text
//! H  GET /desk                 → 302 L/.aisgate/login?return=/desk&provider=p&for=H&bind=C
//!                                Set-Cookie (on H): <login>_handoff = seal(b)    C = MAC(b)
//! L  GET /.aisgate/login?…     → the usual login (pre-login cookie on L), the pending login
//!                                remembers (H, C)
//! L  GET /.aisgate/callback/p  → the login is verified; the session waits in the store under
//!                                a fresh random handle h (single use, 60 s)
//!                              → 302 H/.aisgate/handoff?h=…
//! H  GET /.aisgate/handoff?h=… → taken (single use), checked: not used before, at most 60 s
//!                                old, for this host, and MAC(b) of this browser's binding
//!                                cookie equals C → a fresh session id, `__Host-` cookie on H
//! ```
//!
//! The URL carries a random handle only — never a session id, never the binding `b` (only its
//! MAC travels, through L). Another browser holding the URL lacks `b` (refused: not bound or
//! binding mismatch); a second use finds the tombstone the first one left (refused: replay);
//! a late one is refused as expired. Every refusal is logged with its reason.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::Extension;
use base64::Engine;
use http::header::SET_COOKIE;
use http::{HeaderMap, Response};

use super::endpoints::{audit_refused, encode, login_url, param, query_pairs, request_host};
use super::request::{clear_cookie, set_cookie, RequestInfo};
use super::rescue;
use super::route::App;
use super::{Gateway, RESERVED_PREFIX};
use crate::http::return_url::ReturnUrl;
use crate::pages::ErrorKind;
use crate::provider::{PendingState, ProtocolState};
use crate::session::handoff::{HandoffGrant, HandoffTarget};
use crate::session::keyring::Purpose;
use crate::session::{random_id, PendingLogin, Session, StoreKey};

/// How long a finished login waits for the app's host, seconds.
pub const HANDOFF_TTL_SECS: u64 = 60;

/// Longest binding commitment accepted in the login URL (`kid.` + 43 characters of MAC).
const MAX_BINDING_LEN: usize = 128;

/// The app host's binding cookie: `<login_cookie_name>_handoff`.
fn binding_cookie_name(gw: &Gateway) -> String {
    format!("{}_handoff", gw.login_cookie_name)
}

/// On the app's host `here`: sends the browser to the login host `base` with a fresh binding
/// (its cookie on this host, its MAC in the URL).
pub(super) fn send_to_login_host(
    gw: &Gateway,
    app: &App,
    base: &str,
    (provider, loa): (&str, Option<crate::identity::Loa>),
    return_to: &ReturnUrl,
    here: &str,
    info: &RequestInfo,
) -> Response<Body> {
    let binding = random_id();
    let commitment = gw.keyring.mac(Purpose::HandoffBinding, &binding);
    let mut url = format!(
        "{base}{RESERVED_PREFIX}login?return={}&provider={}&for={}&bind={}",
        encode(return_to.as_str()),
        encode(provider),
        encode(here),
        encode(&commitment)
    );
    if let Some(loa) = loa {
        url.push_str(&format!("&loa={}", loa.as_str()));
    }
    tracing::info!(request_id = info.id(), app = %app.name, host = here, login_base = base, provider, "login continues on the central login host");
    // The binding lives as long as the whole login may take, plus the handoff.
    let ttl = gw.provider(provider).map_or(gw.login_ttl_secs, |(_, p)| gw.login_ttl_for(p.as_ref())) + HANDOFF_TTL_SECS;
    let mut resp = rescue::redirect(&url);
    let cookie =
        set_cookie(&binding_cookie_name(gw), &gw.keyring.seal(Purpose::Handoff, &binding), Some(ttl), gw.cookie_secure);
    resp.headers_mut().append(SET_COOKIE, cookie);
    resp
}

/// On the login host `here`: accepts a login for `target` (an app host) only when the app
/// names that host, hands its logins over (`central_login`), and its callbacks come here; the
/// binding commitment must be present. Else `None` (the caller answers 400), logged with the
/// reason.
pub(super) fn accept_start(
    gw: &Gateway,
    app: &App,
    target: String,
    here: &str,
    bind: Option<&str>,
    info: &RequestInfo,
) -> Option<HandoffTarget> {
    let callback_host = crate::config::hosts::host_of(&gw.login_base(app, &target));
    let why = if !app.names_host(&target) {
        Some("the app does not answer for that host")
    } else if !app.central_login {
        Some("the app does not hand logins over (central_login is off)")
    } else if !callback_host.eq_ignore_ascii_case(here) || target.eq_ignore_ascii_case(here) {
        Some("this host is not the app's login host")
    } else if !bind.is_some_and(|b| !b.is_empty() && b.len() <= MAX_BINDING_LEN) {
        Some("no browser binding")
    } else {
        None
    };
    match (why, bind) {
        (None, Some(binding)) => Some(HandoffTarget { host: target, binding: binding.to_owned() }),
        (why, _) => {
            let why = why.unwrap_or("no browser binding");
            tracing::warn!(request_id = info.id(), client = %info.client_ip, app = %app.name, reason = "handoff_start_refused", "login for another host refused: {why}");
            None
        }
    }
}

/// On the login host, once the login is verified: stores `session` for the app's host under a
/// fresh handle and sends the browser there. `base` is the login's callback base (its scheme
/// and port are the app host's too).
pub(super) async fn grant(
    gw: &Gateway,
    (index, provider): (usize, &str),
    target: HandoffTarget,
    session: Session,
    return_to: &str,
    base: &str,
    info: &RequestInfo,
) -> Response<Body> {
    let Ok(serialized) = serde_json::to_string(&session) else {
        tracing::error!(request_id = info.id(), provider, "cannot serialize the session for the handoff");
        return rescue::error(ErrorKind::Internal, info, None);
    };
    let host = target.host.clone();
    let handle = random_id();
    let record = PendingLogin {
        provider: provider.to_owned(),
        return_to: return_to.to_owned(),
        created_at: gw.clock.now_unix(),
        protocol_state: PendingState::new(ProtocolState::Handoff(HandoffGrant {
            target,
            session: serialized,
            used: false,
        })),
        min_loa: None,
        login_base: None,
        handoff: None,
        link: None,
        saved_post: None,
    };
    if let Err(e) = gw.store.put_pending(StoreKey::of(&handle), record).await {
        tracing::error!(request_id = info.id(), error = %e, "cannot store the login handoff");
        return rescue::error(ErrorKind::SessionStoreUnavailable, info, None);
    }
    // The login succeeded at the IdP; `login_success` is audited where the session is made.
    tracing::info!(
        request_id = info.id(),
        provider,
        user = %session.identity.log_label(),
        loa = session.identity.loa.map_or("-", |l| l.as_str()),
        handoff_to = %host,
        "login handed over to the app's host",
    );
    gw.metrics.provider(index).login(crate::ops::metrics::LoginResult::Success);
    let handle = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(handle);
    let to = format!("{}{RESERVED_PREFIX}handoff?h={handle}", crate::config::hosts::with_host(base, &host));
    let mut resp = rescue::redirect(&to);
    resp.headers_mut().append(SET_COOKIE, clear_cookie(&gw.loop_cookie_name, gw.cookie_secure));
    resp
}

/// `aisgate_login_handoffs_total{result, reason}`: handoffs taken, and refused by reason.
pub struct HandoffMetrics {
    success: crate::ops::metrics::CounterHandle,
    refused: Vec<(Refusal, crate::ops::metrics::CounterHandle)>,
}

impl HandoffMetrics {
    /// Registers every series (all reasons start at 0).
    pub fn register(metrics: &mut crate::ops::metrics::Metrics) -> HandoffMetrics {
        const NAME: &str = "aisgate_login_handoffs_total";
        const HELP: &str =
            "Logins handed from the central login host to an app's host: taken (success) or refused, by reason.";
        let success = metrics.register_counter(NAME, HELP, &[("result", "success"), ("reason", "none")]);
        let refused = Refusal::ALL
            .iter()
            .map(|r| (*r, metrics.register_counter(NAME, HELP, &[("result", "refused"), ("reason", r.label())])))
            .collect();
        HandoffMetrics { success, refused }
    }

    fn refused(&self, refusal: Refusal) {
        if let Some((_, counter)) = self.refused.iter().find(|(r, _)| *r == refusal) {
            counter.inc();
        }
    }
}

/// Why a handoff was refused: the log reason and the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The `h` parameter is missing or not a handle.
    Malformed,
    /// No such handoff: never issued, or gone with the store's expiry.
    Unknown,
    /// The handoff was used before (a replay).
    Replayed,
    /// Older than [`HANDOFF_TTL_SECS`].
    Expired,
    /// Issued for another host.
    WrongHost,
    /// This browser has no binding cookie: another browser.
    NotBound,
    /// This browser's binding is not the one the login was started with.
    BindingMismatch,
    /// The session it carries is over or unreadable.
    SessionUnusable,
}

impl Refusal {
    const ALL: [Refusal; 8] = [
        Refusal::Malformed,
        Refusal::Unknown,
        Refusal::Replayed,
        Refusal::Expired,
        Refusal::WrongHost,
        Refusal::NotBound,
        Refusal::BindingMismatch,
        Refusal::SessionUnusable,
    ];

    fn label(self) -> &'static str {
        match self {
            Refusal::Malformed => "handoff_malformed",
            Refusal::Unknown => "handoff_unknown",
            Refusal::Replayed => "handoff_replayed",
            Refusal::Expired => "handoff_expired",
            Refusal::WrongHost => "handoff_wrong_host",
            Refusal::NotBound => "handoff_not_bound",
            Refusal::BindingMismatch => "handoff_binding_mismatch",
            Refusal::SessionUnusable => "handoff_session_unusable",
        }
    }

    fn why(self) -> &'static str {
        match self {
            Refusal::Malformed => "no handoff handle",
            Refusal::Unknown => "unknown or expired handoff",
            Refusal::Replayed => "handoff already used (replay)",
            Refusal::Expired => "handoff expired",
            Refusal::WrongHost => "handoff issued for another host",
            Refusal::NotBound => "no browser binding cookie (another browser)",
            Refusal::BindingMismatch => "the browser binding does not match (another browser or login)",
            Refusal::SessionUnusable => "the handed-over session is over or unreadable",
        }
    }

    fn page(self) -> ErrorKind {
        match self {
            Refusal::Malformed => ErrorKind::BadRequest,
            Refusal::Unknown | Refusal::Replayed | Refusal::Expired | Refusal::SessionUnusable => {
                ErrorKind::LoginExpired
            }
            Refusal::WrongHost | Refusal::NotBound | Refusal::BindingMismatch => ErrorKind::LoginNotInitiated,
        }
    }
}

fn refuse(
    gw: &Gateway,
    refusal: Refusal,
    provider: &str,
    return_to: Option<&str>,
    info: &RequestInfo,
) -> Response<Body> {
    tracing::warn!(request_id = info.id(), client = %info.client_ip, provider, reason = refusal.label(), "login handoff refused: {}", refusal.why());
    audit_refused(gw, info, provider, refusal.label());
    gw.handoffs.refused(refusal);
    let restart = return_to.map(login_url);
    let mut resp = rescue::error(refusal.page(), info, restart.as_deref().or(info.home()));
    resp.headers_mut().append(SET_COOKIE, clear_cookie(&binding_cookie_name(gw), gw.cookie_secure));
    resp
}

fn decode_handle(value: &str) -> Option<[u8; 32]> {
    if value.len() != 43 {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(value).ok()?;
    bytes.try_into().ok()
}

/// `GET /.aisgate/handoff?h=…` on the app's host: takes the finished login (single use) and,
/// when it is this browser's, for this host and fresh, makes this host's session.
pub(super) async fn take(
    State(gw): State<Arc<Gateway>>,
    Extension(info): Extension<RequestInfo>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response<Body> {
    let params = query_pairs(query.as_deref());
    let Some(handle) = param(&params, "h").and_then(decode_handle) else {
        return refuse(&gw, Refusal::Malformed, "-", None, &info);
    };
    let key = StoreKey::of(&handle);
    let record = match gw.store.take_pending(&key).await {
        Ok(Some(record)) => record,
        Ok(None) => return refuse(&gw, Refusal::Unknown, "-", None, &info),
        Err(e) => {
            tracing::error!(request_id = info.id(), error = %e, "cannot read the login handoff");
            return rescue::error(ErrorKind::SessionStoreUnavailable, &info, None);
        }
    };
    let Ok(ProtocolState::Handoff(grant)) = record.protocol_state.protocol() else {
        return refuse(&gw, Refusal::Unknown, "-", None, &info);
    };
    let (provider, return_to) = (record.provider.as_str(), record.return_to.as_str());
    if grant.used {
        // Put the tombstone back: every later use is a replay too.
        let _ = gw.store.put_pending(key, record.clone()).await;
        return refuse(&gw, Refusal::Replayed, provider, Some(return_to), &info);
    }
    // Taken: what is left is a tombstone without the session, so a second use is a replay.
    let mut tombstone = record.clone();
    tombstone.protocol_state = PendingState::new(ProtocolState::Handoff(HandoffGrant {
        target: grant.target.clone(),
        session: String::new(),
        used: true,
    }));
    if let Err(e) = gw.store.put_pending(key, tombstone).await {
        tracing::warn!(request_id = info.id(), error = %e, "cannot leave the handoff's tombstone (a replay will read as unknown)");
    }
    if gw.clock.now_unix().saturating_sub(record.created_at) > HANDOFF_TTL_SECS {
        return refuse(&gw, Refusal::Expired, provider, Some(return_to), &info);
    }
    if !grant.target.host.eq_ignore_ascii_case(&request_host(&headers)) {
        return refuse(&gw, Refusal::WrongHost, provider, Some(return_to), &info);
    }
    let name = binding_cookie_name(&gw);
    let Some(binding) = super::cookies::open(&gw, &headers, &name, Purpose::Handoff, &info) else {
        return refuse(&gw, Refusal::NotBound, provider, Some(return_to), &info);
    };
    if !gw.keyring.verify_mac(Purpose::HandoffBinding, &binding, &grant.target.binding) {
        return refuse(&gw, Refusal::BindingMismatch, provider, Some(return_to), &info);
    }
    let now = gw.clock.now_unix();
    let session = match serde_json::from_str::<Session>(&grant.session) {
        Ok(session) if !session.is_expired(now) => session,
        _ => return refuse(&gw, Refusal::SessionUnusable, provider, Some(return_to), &info),
    };
    // A fresh id on this host; any previous session of this browser here ends (fixation).
    super::endpoints::end_replaced_session(&gw, &headers, &info).await;
    let id = random_id();
    let key = StoreKey::of(&id);
    let session = Arc::new(session);
    if let Err(e) = gw.store.save(key, session.clone()).await {
        tracing::error!(request_id = info.id(), error = %e, "cannot store session");
        return rescue::error(ErrorKind::SessionStoreUnavailable, &info, None);
    }
    super::endpoints::session_established(&gw, &info, key, &session, None).await;
    gw.handoffs.success.inc();
    // Re-validated: stored values never skip the return URL rules.
    let target = ReturnUrl::parse(return_to).unwrap_or_else(|_| ReturnUrl::root());
    let mut resp = rescue::redirect(target.as_str());
    let value = gw.keyring.seal(Purpose::Session, &id);
    resp.headers_mut().append(SET_COOKIE, set_cookie(&gw.cookie_name, &value, None, gw.cookie_secure));
    resp.headers_mut().append(SET_COOKIE, clear_cookie(&name, gw.cookie_secure));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_well_formed_handle_is_looked_up() {
        let handle = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 32]);
        assert_eq!(decode_handle(&handle), Some([7u8; 32]));
        for bad in ["", "abc", &format!("{handle}A"), &handle.replace('B', "*")] {
            assert_eq!(decode_handle(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_refusal_has_its_own_reason() {
        let labels: std::collections::HashSet<&str> = Refusal::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(labels.len(), Refusal::ALL.len());
        assert!(labels.iter().all(|l| l.starts_with("handoff_")));
    }
}
