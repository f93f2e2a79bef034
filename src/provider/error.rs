//! Why a provider step failed, as a typed reason that travels unflattened from the protocol
//! code to the page, the metric label, the audit event and the log line.
//!
//! Every failure is on one of three [`Side`]s, and the side alone decides what the user sees
//! and which alert fires:
//!
//! * [`Side::Refused`]: the message a browser (or a peer) delivered failed the gateway's
//!   **own** checks — malformed, forged or missing signature, wrapping, DOCTYPE, stale,
//!   replayed, wrong audience or destination, too large, LoA too low, state mismatch. Anyone
//!   can produce these, so they must never read as an outage (an attacker could otherwise fire
//!   outage alerts at will): 400 "login failed", `result="refused"`, WARN `login refused`.
//! * [`Side::Denied`]: the identity provider itself said no (SAML non-Success status, an OAuth
//!   error response, KAAS invalid or used token): 400 "login failed", `result="failure"`.
//! * [`Side::Outage`]: the IdP or the channel to it is down or answers nonsense over the
//!   authenticated back channel, or our own configuration keeps every login from succeeding
//!   (transport, TLS, 5xx, SOAP fault, metadata missing, `invalid_client`): 503,
//!   `result="error"`, ERROR log. Only an operator can fix these, and no request content an
//!   outsider controls leads here.
//!
//! The reason's [`Reason::label`] is a bounded `snake_case` set (a metric label value); its
//! `Display` is the operator log text. Neither carries tokens, ids or personal data: values
//! an attacker controls are only quoted by the protocol code as bounded enums. The optional
//! context of a [`ProviderError`] is operator-only detail (a URL, an HTTP status, a parser
//! message) under the same rule.

use std::fmt;

use super::{kaas, oidc, saml};
use crate::ops::metrics::LoginResult;
use crate::pages::ErrorKind;

/// Whose fault a failure is; decides the page, the `result` label and the log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The delivered message failed the gateway's own checks.
    Refused,
    /// The identity provider said no.
    Denied,
    /// The identity provider, the channel to it, or our configuration of it failed.
    Outage,
}

impl Side {
    /// The page shown to the user: "login failed" (400) unless it is an outage (503).
    pub fn page(self) -> ErrorKind {
        match self {
            Side::Refused | Side::Denied => ErrorKind::LoginFailed,
            Side::Outage => ErrorKind::IdpUnavailable,
        }
    }

    /// The `result` label of `aisgate_logins_total`.
    pub fn metric_result(self) -> LoginResult {
        match self {
            Side::Refused => LoginResult::Refused,
            Side::Denied => LoginResult::Failure,
            Side::Outage => LoginResult::Error,
        }
    }

    /// The words the log line starts with.
    pub fn log_prefix(self) -> &'static str {
        match self {
            Side::Refused => "login refused",
            Side::Denied => "login denied by the identity provider",
            Side::Outage => "identity provider unavailable",
        }
    }
}

/// Failures every protocol shares (channel, gateway-held state, generic callback checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum CommonReason {
    /// The pending login's protocol state cannot be decoded (corrupt, or written by another
    /// version of the gateway). Refused: the login must simply be started again.
    #[error("the pending login's state cannot be decoded")]
    PendingStateUndecodable,
    /// The pending login's state has a version this gateway does not know (a rollback, or a
    /// store shared with a newer version).
    #[error("the pending login's state is of an unknown version")]
    PendingStateVersion,
    /// The pending login was started for another protocol than the callback's provider.
    #[error("the pending login belongs to another protocol")]
    PendingStateProtocol,
    /// A callback for a login the gateway did not start, at a provider that takes none.
    #[error("a login the gateway did not start (unsolicited)")]
    Unsolicited,
    /// The provider cannot do what was asked (a capability it does not have).
    #[error("the provider does not support this")]
    Unsupported,
    /// The IdP cannot be reached (DNS, TCP, TLS, timeout).
    #[error("identity provider unreachable")]
    Unreachable,
    /// The IdP answered with an HTTP error status.
    #[error("identity provider answered with an HTTP error")]
    HttpStatus,
    /// An IdP answer over the back channel exceeded the size limit.
    #[error("identity provider response larger than the limit")]
    ResponseTooLarge,
    /// Gateway check: a callback without a valid pre-login cookie (login CSRF defence).
    #[error("callback without a valid pre-login cookie")]
    NoLoginCookie,
    /// Gateway check: the pre-login cookie names a login that is unknown, used or expired.
    #[error("callback for an unknown, used or expired login")]
    LoginUnknown,
    /// Gateway check: the login took longer than this provider allows.
    #[error("callback for an expired login")]
    LoginExpired,
    /// Gateway check: the callback is another provider's than the login's (mix-up).
    #[error("callback of another provider than the login's")]
    ProviderMismatch,
    /// Gateway check: a step-up login achieved a lower LoA than the route needs.
    #[error("the login achieved a lower LoA than required")]
    LoaTooLow,
    /// Every CPU worker for login messages is busy and the wait queue is full
    /// ([`crate::cpu`]): answered 503 with `Retry-After`. Our capacity, not the IdP, but
    /// real users cannot log in, so it counts as an outage (and in
    /// `aisgate_login_work_refused_total`).
    #[error("login work pool is full: every CPU worker busy and the queue full")]
    Busy,
    /// The CPU job processing a login message failed unexpectedly (a bug).
    #[error("processing the login message failed unexpectedly")]
    WorkFailed,
    /// The shared session store (Redis) could not record or check a one-time message id:
    /// refused (fail closed), since the message might be a replay. Answered with the
    /// store-unavailable page (503).
    #[error("session store unavailable: a one-time message id could not be checked")]
    StoreUnavailable,
    /// The session ended (a logout, at any instance) while one of its requests waited for a
    /// token refresh.
    #[error("the session ended while its tokens were refreshed")]
    SessionEnded,
}

impl CommonReason {
    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            CommonReason::PendingStateUndecodable => "pending_state_undecodable",
            CommonReason::PendingStateVersion => "pending_state_version",
            CommonReason::PendingStateProtocol => "pending_state_protocol",
            CommonReason::Unsolicited => "unsolicited",
            CommonReason::Unsupported => "unsupported",
            CommonReason::Unreachable => "unreachable",
            CommonReason::HttpStatus => "http_status",
            CommonReason::ResponseTooLarge => "response_too_large",
            CommonReason::NoLoginCookie => "no_login_cookie",
            CommonReason::LoginUnknown => "login_unknown",
            CommonReason::LoginExpired => "login_expired",
            CommonReason::ProviderMismatch => "provider_mismatch",
            CommonReason::LoaTooLow => "loa_too_low",
            CommonReason::Busy => "busy",
            CommonReason::WorkFailed => "work_failed",
            CommonReason::StoreUnavailable => "store_unavailable",
            CommonReason::SessionEnded => "session_ended",
        }
    }

    /// Whose fault it is.
    pub fn side(&self) -> Side {
        match self {
            CommonReason::PendingStateUndecodable
            | CommonReason::PendingStateVersion
            | CommonReason::PendingStateProtocol
            | CommonReason::Unsolicited
            | CommonReason::Unsupported
            | CommonReason::NoLoginCookie
            | CommonReason::LoginUnknown
            | CommonReason::LoginExpired
            | CommonReason::ProviderMismatch
            | CommonReason::LoaTooLow
            | CommonReason::SessionEnded => Side::Refused,
            CommonReason::Unreachable
            | CommonReason::HttpStatus
            | CommonReason::ResponseTooLarge
            | CommonReason::Busy
            | CommonReason::WorkFailed
            | CommonReason::StoreUnavailable => Side::Outage,
        }
    }
}

/// Why a provider step failed: the protocol's own precise reason, or a shared one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// A SAML refusal.
    Saml(saml::Refusal),
    /// An OpenID Connect failure.
    Oidc(oidc::Failure),
    /// A JIP/KAAS failure.
    Kaas(kaas::Failure),
    /// A failure every protocol shares.
    Common(CommonReason),
}

impl Reason {
    /// The bounded `snake_case` metric label (`reason` of `aisgate_login_refusals_total`).
    pub fn label(&self) -> &'static str {
        match self {
            Reason::Saml(r) => r.label(),
            Reason::Oidc(r) => r.label(),
            Reason::Kaas(r) => r.label(),
            Reason::Common(r) => r.label(),
        }
    }

    /// Whose fault it is.
    pub fn side(&self) -> Side {
        match self {
            Reason::Saml(r) => r.side(),
            Reason::Oidc(r) => r.side(),
            Reason::Kaas(r) => r.side(),
            Reason::Common(r) => r.side(),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Saml(r) => r.fmt(f),
            Reason::Oidc(r) => r.fmt(f),
            Reason::Kaas(r) => r.fmt(f),
            Reason::Common(r) => r.fmt(f),
        }
    }
}

impl From<saml::Refusal> for Reason {
    fn from(r: saml::Refusal) -> Reason {
        Reason::Saml(r)
    }
}

impl From<oidc::Failure> for Reason {
    fn from(r: oidc::Failure) -> Reason {
        Reason::Oidc(r)
    }
}

impl From<kaas::Failure> for Reason {
    fn from(r: kaas::Failure) -> Reason {
        Reason::Kaas(r)
    }
}

impl From<CommonReason> for Reason {
    fn from(r: CommonReason) -> Reason {
        Reason::Common(r)
    }
}

/// A failed provider step: a typed [`Reason`] plus optional operator-only context (never
/// tokens, ids or personal data).
#[derive(Debug)]
pub struct ProviderError {
    reason: Reason,
    context: Option<Box<str>>,
}

impl ProviderError {
    /// A failure with no further detail.
    pub fn new(reason: impl Into<Reason>) -> ProviderError {
        ProviderError { reason: reason.into(), context: None }
    }

    /// A failure with operator-only detail (a URL, an HTTP status, a parser message).
    pub fn with_context(reason: impl Into<Reason>, context: impl fmt::Display) -> ProviderError {
        ProviderError { reason: reason.into(), context: Some(context.to_string().into_boxed_str()) }
    }

    /// The reason.
    pub fn reason(&self) -> &Reason {
        &self.reason
    }

    /// The operator-only detail, if any.
    pub fn context(&self) -> Option<&str> {
        self.context.as_deref()
    }

    /// Whose fault it is.
    pub fn side(&self) -> Side {
        self.reason.side()
    }

    /// The words the operator log line starts with: the side's, except for the gateway's own
    /// capacity (a full CPU pool), which is no identity provider's outage — an operator reading
    /// "identity provider unavailable" would look in the wrong place.
    pub fn log_prefix(&self) -> &'static str {
        match self.reason {
            Reason::Common(CommonReason::Busy | CommonReason::WorkFailed) => "login work refused by the gateway",
            Reason::Common(CommonReason::StoreUnavailable) => "session store unavailable",
            _ => self.side().log_prefix(),
        }
    }

    /// The bounded metric label of the reason.
    pub fn label(&self) -> &'static str {
        self.reason.label()
    }

    /// The page shown to the user.
    pub fn page(&self) -> ErrorKind {
        if self.reason == Reason::Common(CommonReason::StoreUnavailable) {
            return ErrorKind::SessionStoreUnavailable;
        }
        self.side().page()
    }

    /// The `result` label of `aisgate_logins_total`.
    pub fn metric_result(&self) -> LoginResult {
        self.side().metric_result()
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.context {
            Some(context) => write!(f, "{}: {context}", self.reason),
            None => self.reason.fmt(f),
        }
    }
}

impl std::error::Error for ProviderError {}

/// A shared-store failure while checking a one-time id: refused as unavailable (fail closed).
impl From<crate::session::StoreError> for ProviderError {
    fn from(e: crate::session::StoreError) -> ProviderError {
        ProviderError::with_context(CommonReason::StoreUnavailable, e)
    }
}

impl From<saml::Refusal> for ProviderError {
    fn from(r: saml::Refusal) -> ProviderError {
        ProviderError::new(r)
    }
}

impl From<oidc::Failure> for ProviderError {
    fn from(r: oidc::Failure) -> ProviderError {
        ProviderError::new(r)
    }
}

impl From<kaas::Failure> for ProviderError {
    fn from(r: kaas::Failure) -> ProviderError {
        ProviderError::new(r)
    }
}

impl From<CommonReason> for ProviderError {
    fn from(r: CommonReason) -> ProviderError {
        ProviderError::new(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_never_outages() {
        assert_eq!(Side::Refused.page(), ErrorKind::LoginFailed);
        assert_eq!(Side::Refused.metric_result(), LoginResult::Refused);
        assert_eq!(Side::Denied.metric_result(), LoginResult::Failure);
        assert_eq!(Side::Outage.page(), ErrorKind::IdpUnavailable);
    }

    #[test]
    fn labels_are_bounded_snake_case_and_distinct() {
        use crate::provider::{kaas, oidc};
        let kinds = [oidc::TokenKind::Id, oidc::TokenKind::Logout];
        let mut reasons: Vec<Reason> = [
            CommonReason::PendingStateUndecodable,
            CommonReason::PendingStateVersion,
            CommonReason::PendingStateProtocol,
            CommonReason::Unsolicited,
            CommonReason::Unsupported,
            CommonReason::Unreachable,
            CommonReason::HttpStatus,
            CommonReason::ResponseTooLarge,
            CommonReason::NoLoginCookie,
            CommonReason::LoginUnknown,
            CommonReason::LoginExpired,
            CommonReason::ProviderMismatch,
            CommonReason::LoaTooLow,
        ]
        .into_iter()
        .map(Reason::from)
        .collect();
        reasons.extend(
            [
                kaas::Failure::MissingSessionId,
                kaas::Failure::SessionIdMalformed,
                kaas::Failure::CredentialsMissing,
                kaas::Failure::CredentialsMalformed,
                kaas::Failure::SessionNotFound,
                kaas::Failure::VerificationFailed,
                kaas::Failure::SystemError,
                kaas::Failure::UnexpectedStatus,
                kaas::Failure::SoapFault,
                kaas::Failure::ResponseInvalid,
                kaas::Failure::LoginUrlInvalid,
                kaas::Failure::ClientCertificateRefused,
            ]
            .map(Reason::from),
        );
        for kind in kinds {
            reasons.extend(
                [
                    oidc::Failure::TokenMalformed(kind),
                    oidc::Failure::TokenAlgorithm(kind),
                    oidc::Failure::TokenKeyUnknown(kind),
                    oidc::Failure::TokenSignature(kind),
                    oidc::Failure::TokenClaims(kind),
                ]
                .map(Reason::from),
            );
        }
        reasons.extend(
            [
                oidc::Failure::AuthorizationError(oidc::OAuthError::AccessDenied),
                oidc::Failure::TokenEndpointError(oidc::OAuthError::InvalidClient),
                oidc::Failure::TokenEndpointError(oidc::OAuthError::InvalidGrant),
                oidc::Failure::MissingCode,
                oidc::Failure::CodeTooLong,
                oidc::Failure::StateMismatch,
                oidc::Failure::IssuerMismatch,
                oidc::Failure::LogoutTokenReplayed,
                oidc::Failure::SsoExpired,
                oidc::Failure::UserinfoSubjectMismatch,
                oidc::Failure::LoaUnreachable,
                oidc::Failure::NoRefreshToken,
                oidc::Failure::DiscoveryInvalid,
                oidc::Failure::DiscoveryUnavailable,
                oidc::Failure::JwksInvalid,
                oidc::Failure::TokenResponseInvalid,
                oidc::Failure::UserinfoInvalid,
            ]
            .map(Reason::from),
        );
        let mut seen = std::collections::BTreeSet::new();
        for r in &reasons {
            let label = r.label();
            assert!(!label.is_empty() && label.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{label}");
            assert!(seen.insert(label), "label {label} used twice");
            assert!(!r.to_string().is_empty());
        }
    }

    #[test]
    fn display_is_reason_then_context() {
        let e = ProviderError::with_context(CommonReason::HttpStatus, "HTTP 502");
        assert_eq!(e.to_string(), "identity provider answered with an HTTP error: HTTP 502");
        assert_eq!(e.label(), "http_status");
        assert_eq!(e.side(), Side::Outage);
    }
}
