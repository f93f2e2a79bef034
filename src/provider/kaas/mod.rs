//! JIP/KAAS and the CAAIS legacy API: `atsId` login redirect, `sessionId` callback,
//! SOAP `authConfirmation` over mutual TLS, one-time-credential `directAuthUser`,
//! `heartBeat`, `processLogout`.
//!
//! The protocol has no `state` parameter, so the gateway's browser-bound pre-login cookie is
//! the only login-CSRF defence; the token is format-checked before any SOAP call and never
//! logged. The token is single use: after a response arrives only `SYSTEM_ERROR` is retried
//! (once). One-time credentials are never retried and never logged.

mod client;
mod config;
pub(crate) mod identity;
pub mod reason;
pub mod soap;

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use self::client::SoapChannel;
pub use self::config::{Endpoints, KaasPreset, KaasProviderConfig, LoginMode};
pub use self::identity::to_identity;
pub use self::reason::Failure;
use self::soap::{AuthConfirmation, AuthStatus, ServiceVersion};
use crate::ops::metrics::{CounterHandle, GaugeHandle, HistogramHandle, Metrics};
use crate::provider::{
    capability, Authenticated, BrowserStep, CommonReason, LoginContext, LoginStart, LogoutState, ProtocolState,
    Provider, ProviderError, Readiness,
};

/// The token format accepted before any SOAP call (kaas.md §18.3, lenient about `_` as
/// caais.md §7.4 advises).
fn valid_session_id(token: &str) -> bool {
    (30..=50).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One-time credentials are short; anything longer is not worth a SOAP call.
const MAX_CREDENTIAL_LEN: usize = 100;

#[derive(Debug, Clone)]
struct HeartBeatState {
    ok: bool,
    detail: String,
}

/// Metric handles, registered once at startup.
struct KaasMetrics {
    latency: HistogramHandle,
    results: [(&'static str, CounterHandle); 5],
    up: GaugeHandle,
    cert_expiry: Vec<(&'static str, Option<i64>, GaugeHandle)>,
}

const RESULT_LABELS: [&str; 5] = ["ok", "session_not_found", "system_error", "verification_failed", "error"];

/// A running KAAS/CAAIS-legacy provider.
pub struct KaasProvider {
    name: String,
    display_name: String,
    ats_id: String,
    version: ServiceVersion,
    endpoints: Endpoints,
    logout_return_url: Option<String>,
    /// `Some(namespace)` when users log in with one-time credentials.
    direct: Option<soap::DirectNamespace>,
    channel: SoapChannel,
    heartbeat: Mutex<HeartBeatState>,
    heartbeat_interval: Duration,
    metrics: OnceLock<KaasMetrics>,
}

impl KaasProvider {
    /// Builds the provider: parses the client certificates and keys once, builds the clients.
    pub fn build(cfg: &KaasProviderConfig) -> Result<KaasProvider, String> {
        let version = cfg.service_version()?;
        let endpoints = cfg.endpoints()?;
        let direct_namespace = cfg.direct_namespace.parse::<soap::DirectNamespace>().map_err(|e| e.to_string())?;
        Ok(KaasProvider {
            name: cfg.name.clone(),
            display_name: cfg.display_name.clone().unwrap_or_else(|| cfg.name.clone()),
            ats_id: cfg.ats_id.clone(),
            version,
            endpoints,
            logout_return_url: cfg.logout_return_url.clone(),
            direct: (cfg.login_mode == LoginMode::Direct).then_some(direct_namespace),
            channel: SoapChannel::build(cfg)?,
            heartbeat: Mutex::new(HeartBeatState { ok: false, detail: "no heartBeat yet".to_owned() }),
            heartbeat_interval: Duration::from_secs(cfg.heartbeat_interval_secs.max(1)),
            metrics: OnceLock::new(),
        })
    }

    fn record(&self, started: Instant, result: &str) {
        if let Some(m) = self.metrics.get() {
            m.latency.observe(started.elapsed().as_secs_f64());
            let label = if RESULT_LABELS.contains(&result) { result } else { "error" };
            if let Some((_, counter)) = m.results.iter().find(|(l, _)| *l == label) {
                counter.inc();
            }
        }
    }

    async fn auth_confirmation(&self, session_id: &str) -> Result<AuthConfirmation, ProviderError> {
        let started = Instant::now();
        let request = soap::auth_confirmation_request(self.version, session_id);
        let result =
            match self.channel.call(&self.endpoints.auth_ws, soap::SOAP_ACTION_AUTH_CONFIRMATION, &request).await {
                Ok(body) => {
                    let version = self.version;
                    parse_bounded(body, move |b| soap::parse_auth_confirmation_response(b, version)).await
                }
                Err(e) => Err(e),
            };
        self.record(started, result.as_ref().map_or("error", |a| status_label(&a.status)));
        result
    }

    async fn direct_auth_user(
        &self,
        ns: soap::DirectNamespace,
        username: &str,
        password: &str,
    ) -> Result<AuthConfirmation, ProviderError> {
        let started = Instant::now();
        let request = soap::direct_auth_user_request(self.version, ns, username, password)
            .map_err(|e| ProviderError::with_context(Failure::CredentialsMalformed, e))?;
        let result =
            match self.channel.call(&self.endpoints.direct_ws, soap::SOAP_ACTION_DIRECT_AUTH_USER, &request).await {
                Ok(body) => {
                    let version = self.version;
                    parse_bounded(body, move |b| soap::parse_direct_auth_user_response(b, version, ns)).await
                }
                Err(e) => Err(e),
            };
        self.record(started, result.as_ref().map_or("error", |a| status_label(&a.status)));
        result
    }

    /// Runs one `heartBeat` and records the result for readiness and metrics.
    pub async fn heart_beat(&self) {
        let request = soap::heart_beat_request(self.version);
        let result = match self.channel.call(&self.endpoints.auth_ws, soap::SOAP_ACTION_HEART_BEAT, &request).await {
            Ok(body) => match soap::parse_heart_beat_response(&body, self.version) {
                Ok(hb) if hb.ok => HeartBeatState { ok: true, detail: "heartBeat OK".to_owned() },
                Ok(hb) => HeartBeatState {
                    ok: false,
                    detail: format!(
                        "heartBeat ERROR code={} message={}",
                        hb.code.as_deref().unwrap_or("-"),
                        hb.message.as_deref().unwrap_or("-")
                    ),
                },
                Err(e) => HeartBeatState { ok: false, detail: format!("heartBeat: {e}") },
            },
            Err(e) => HeartBeatState { ok: false, detail: e.to_string() },
        };
        if !result.ok {
            tracing::warn!(provider = %self.name, detail = %result.detail, "heartBeat failed");
        }
        if let Some(m) = self.metrics.get() {
            m.up.set(if result.ok { 1.0 } else { 0.0 });
            let now = crate::session::now_unix() as i64;
            for (label, not_after, gauge) in &m.cert_expiry {
                if let Some(not_after) = not_after {
                    let left = not_after - now;
                    gauge.set(left as f64);
                    if left < 30 * 86_400 {
                        tracing::warn!(provider = %self.name, certificate = label, days_left = left / 86_400, "client certificate expires soon");
                    }
                }
            }
        }
        *self.heartbeat.lock().unwrap_or_else(|e| e.into_inner()) = result;
    }

    fn classic_finish(&self, answer: AuthConfirmation) -> Result<Authenticated, ProviderError> {
        match answer.status {
            AuthStatus::Ok => {
                let attrs = answer
                    .attributes
                    .ok_or_else(|| ProviderError::with_context(Failure::ResponseInvalid, "OK without attributes"))?;
                let identity = to_identity(&self.name, self.version, attrs)?;
                Ok(Authenticated { identity, logout_state: LogoutState::None, tokens: None })
            }
            AuthStatus::SessionNotFound => Err(Failure::SessionNotFound.into()),
            AuthStatus::VerificationFailed => Err(Failure::VerificationFailed.into()),
            AuthStatus::SystemError => Err(Failure::SystemError.into()),
            other => Err(ProviderError::with_context(
                Failure::UnexpectedStatus,
                format_args!("{:?}", crate::provider::oidc::safe_code(other.as_str())),
            )),
        }
    }
}

fn status_label(status: &AuthStatus) -> &'static str {
    match status {
        AuthStatus::Ok => "ok",
        AuthStatus::SessionNotFound => "session_not_found",
        AuthStatus::SystemError => "system_error",
        AuthStatus::VerificationFailed => "verification_failed",
        AuthStatus::Other(_) => "error",
    }
}

/// Parses a SOAP answer; a big body (up to `soap::MAX_RESPONSE_BYTES`) is parsed on the
/// bounded CPU pool, off the I/O worker (issue 15 item 1).
async fn parse_bounded<T: Send + 'static>(
    body: Vec<u8>,
    parse: impl FnOnce(&[u8]) -> Result<T, soap::SoapError> + Send + 'static,
) -> Result<T, ProviderError> {
    crate::cpu::run_sized(crate::cpu::Work::Soap, body.len(), move || parse(&body))
        .await
        .map_err(crate::provider::cpu_refused)?
        .map_err(soap_error)
}

fn soap_error(e: soap::SoapError) -> ProviderError {
    match e {
        soap::SoapError::Fault { .. } => ProviderError::with_context(Failure::SoapFault, e),
        other => ProviderError::with_context(Failure::ResponseInvalid, other),
    }
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[async_trait]
impl Provider for KaasProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn display_name(&self) -> &str {
        &self.display_name
    }

    async fn begin(&self, ctx: &LoginContext) -> Result<LoginStart, ProviderError> {
        if self.direct.is_some() {
            return Ok(LoginStart {
                step: BrowserStep::Redirect(ctx.direct_form_url.clone()),
                state: ProtocolState::Kaas,
            });
        }
        let mut url = url::Url::parse(&self.endpoints.login)
            .map_err(|e| ProviderError::with_context(Failure::LoginUrlInvalid, e))?;
        url.query_pairs_mut().append_pair("atsId", &self.ats_id);
        Ok(LoginStart { step: BrowserStep::Redirect(url.into()), state: ProtocolState::Kaas })
    }

    async fn finish(
        &self,
        _ctx: &LoginContext,
        params: &[(String, String)],
        state: &ProtocolState,
    ) -> Result<Authenticated, ProviderError> {
        if !matches!(state, ProtocolState::Kaas) {
            return Err(CommonReason::PendingStateProtocol.into());
        }
        if let Some(ns) = self.direct {
            let (Some(username), Some(password)) = (param(params, "username"), param(params, "password")) else {
                return Err(Failure::CredentialsMissing.into());
            };
            let (username, password) = (username.trim(), password.trim());
            if username.is_empty() || password.is_empty() || username.len().max(password.len()) > MAX_CREDENTIAL_LEN {
                return Err(Failure::CredentialsMalformed.into());
            }
            // Never retried: one-time credentials are single use.
            let answer = self.direct_auth_user(ns, username, password).await?;
            return self.classic_finish(answer);
        }
        let token = param(params, "sessionId").ok_or(Failure::MissingSessionId)?;
        if !valid_session_id(token) {
            return Err(ProviderError::with_context(
                Failure::SessionIdMalformed,
                format_args!("{} characters", token.len()),
            ));
        }
        let mut answer = self.auth_confirmation(token).await?;
        if answer.status == AuthStatus::SystemError {
            tracing::warn!(provider = %self.name, "authConfirmation SYSTEM_ERROR; retrying once");
            answer = self.auth_confirmation(token).await?;
            if answer.status == AuthStatus::SystemError {
                return Err(ProviderError::with_context(Failure::SystemError, "twice"));
            }
        }
        self.classic_finish(answer)
    }

    async fn logout(&self, ctx: &LoginContext, _logout_state: &LogoutState) -> BrowserStep {
        let back = self.logout_return_url.clone().unwrap_or_else(|| ctx.logged_out_url.clone());
        match url::Url::parse(&self.endpoints.logout) {
            Ok(mut url) => {
                url.query_pairs_mut().append_pair("atsId", &self.ats_id).append_pair("uri", &back);
                BrowserStep::Redirect(url.into())
            }
            Err(_) => BrowserStep::Redirect(back),
        }
    }

    fn readiness(&self) -> Readiness {
        let hb = self.heartbeat.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Readiness { ready: hb.ok, detail: hb.detail }
    }

    fn direct_credentials(&self) -> Option<&dyn capability::DirectCredentials> {
        self.direct_url().map(|_| self as &dyn capability::DirectCredentials)
    }

    fn background(&self) -> Option<&dyn capability::Background> {
        Some(self)
    }
}

impl KaasProvider {
    /// The IdP page issuing one-time credentials, in a direct login mode.
    fn direct_url(&self) -> Option<String> {
        self.direct?;
        let mut url = url::Url::parse(&self.endpoints.login).ok()?;
        url.query_pairs_mut().append_pair("atsId", &self.ats_id).append_pair("providerType", "directAuth");
        Some(url.into())
    }
}

impl capability::DirectCredentials for KaasProvider {
    fn generator_url(&self) -> String {
        self.direct_url().unwrap_or_default()
    }
}

#[async_trait]
impl capability::Background for KaasProvider {
    fn register_metrics(&self, metrics: &mut Metrics) {
        let p = self.name.as_str();
        let latency = metrics.register_histogram(
            "aisgate_kaas_call_duration_seconds",
            "Duration of authConfirmation/directAuthUser calls, by provider.",
            &[("provider", p)],
            &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0],
        );
        let results = RESULT_LABELS.map(|result| {
            (
                result,
                metrics.register_counter(
                    "aisgate_kaas_call_results_total",
                    "authConfirmation/directAuthUser results, by provider and status.",
                    &[("provider", p), ("result", result)],
                ),
            )
        });
        let up = metrics.register_gauge(
            "aisgate_kaas_heartbeat_up",
            "1 if the last heartBeat answered OK, else 0.",
            &[("provider", p)],
        );
        let cert_expiry = self
            .channel
            .expiries()
            .map(|(label, not_after)| {
                let gauge = metrics.register_gauge(
                    "aisgate_client_certificate_expiry_seconds",
                    "Seconds until the mTLS client certificate expires (updated with each heartBeat).",
                    &[("provider", p), ("certificate", label)],
                );
                if let Some(not_after) = not_after {
                    gauge.set((not_after - crate::session::now_unix() as i64) as f64);
                }
                (label, not_after, gauge)
            })
            .collect();
        let _ = self.metrics.set(KaasMetrics { latency, results, up, cert_expiry });
    }

    async fn refresh(&self) {
        self.heart_beat().await;
    }

    fn refresh_interval(&self) -> Option<Duration> {
        Some(self.heartbeat_interval)
    }
}

#[cfg(test)]
mod tests {
    use super::soap::KaasAttributes;
    use super::*;
    use crate::identity::{Loa, OrgKind};

    #[test]
    fn session_id_format_is_checked_before_any_call() {
        assert!(valid_session_id("3f2504e0-4f89-11d3-9a0c-0305e82c3301"));
        assert!(!valid_session_id("short"));
        assert!(!valid_session_id(&"a".repeat(51)));
        assert!(!valid_session_id("3f2504e0-4f89-11d3-9a0c-0305e82c330'"));
        assert!(!valid_session_id("3f2504e0 4f89-11d3-9a0c-0305e82c3301"));
    }

    #[test]
    fn presets_have_distinct_login_and_logout_hosts_in_kaas_production() {
        let ep = KaasPreset::KaasProd.endpoints();
        assert_ne!(url::Url::parse(&ep.login).unwrap().host_str(), url::Url::parse(&ep.logout).unwrap().host_str());
        assert!(KaasPreset::CaaisTest
            .endpoints()
            .auth_ws
            .starts_with("https://cert-externalauthapi.caais-test-ext.gov.cz/"));
    }

    #[test]
    fn attributes_map_onto_identity_and_personal_data_respects_the_flag() {
        let mut a = KaasAttributes {
            user_id: Some("3f2504e0-4f89-11d3-9a0c-0305e82c3301".into()),
            username: Some("novak".into()),
            pristupove_role: vec!["R1".into(), "".into()],
            cinnostni_role: vec![("A100".into(), vec!["CR1".into(), "CR2".into()])],
            identifikator_ovm: Some("00007064".into()),
            typ_prihlaseni: Some("p-cert".into()),
            datum_narozeni: Some(soap::DatumSeStavem { datum: "1980-01-02".into(), stav: None }),
            ..KaasAttributes::default()
        };
        let id = to_identity("jip", ServiceVersion::V4_2, a.clone()).unwrap();
        assert_eq!(id.subject, "3f2504e0-4f89-11d3-9a0c-0305e82c3301");
        assert_eq!(id.access_roles, vec!["R1"]);
        assert_eq!(id.agenda_roles.len(), 2);
        assert_eq!(id.organisation.as_ref().unwrap().kind, Some(OrgKind::Ovm));
        assert_eq!(id.loa, Some(Loa::Substantial));
        assert_eq!(id.personal.as_ref().unwrap().birth_date.as_deref(), Some("1980-01-02"));
        a.neevidovat_osobni_udaje = Some(true);
        a.typ_prihlaseni_nia = Some("http://eidas.europa.eu/LoA/high".into());
        let id = to_identity("jip", ServiceVersion::V4_2, a).unwrap();
        assert!(id.personal.is_none() && id.no_personal_data);
        assert_eq!(id.loa, Some(Loa::High));
        assert!(to_identity("jip", ServiceVersion::V4_2, KaasAttributes::default()).is_err());
    }
}
