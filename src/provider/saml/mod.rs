//! SAML 2.0 service provider: NIA (eIDAS profile), CAAIS SAML and EnviIAM SAML.
//!
//! One concern per module:
//! - [`xmlsec`]: XML-DSig verification and signing on `bergshamra`
//!   (aws-lc) behind the binding rules of `spec/saml-xmlsec-notes.md`: the exact POSTed bytes,
//!   only the signed node by fixed paths, a signature algorithm allow-list, keys parsed once.
//! - [`xmlenc`]: XML-Enc decryption of the one `EncryptedData` at the fixed path, on aws-lc-rs
//!   with the SP keys parsed once (bergshamra's decrypt re-imports the key on every call).
//! - [`acs`]: the Assertion Consumer Service: a `SAMLResponse` → a checked [`acs::SamlAssertion`].
//! - [`attributes`]: NIA / CAAIS / EnviIAM attributes → the normalized [`crate::identity::Identity`].
//! - [`config`], [`metadata`] (SP and IdP metadata), [`idp`] (metadata refresh), [`binding`]
//!   (Redirect/POST codecs), [`authn_request`], [`logout`] and `slo` (single logout).
//!
//! The ACS is the gateway's callback `/.aisgate/callback/{name}` (POST; GET for CAAIS's
//! deflated responses). A response is bound to the browser twice: the pending login taken
//! with the pre-login cookie (`SameSite=None; Secure`, since the IdP returns by cross-site
//! POST), and `InResponseTo` equal to the request ID stored in that pending login.

pub mod acs;
pub mod attributes;
pub mod authn_request;
pub mod binding;
pub mod config;
pub mod idp;
pub mod limits;
pub mod logout;
pub mod metadata;
pub mod reason;
mod slo;
pub mod xmlenc;
pub mod xmlsec;

use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use self::config::SamlProviderConfig;
use self::config::{Binding, RedirectSignature, SpType};
use self::idp::{Idp, Source};
use self::logout::LogoutSubject;
pub use self::reason::Refusal;
use self::xmlsec::{DecryptionKeys, IdpCertificates, SigningKey};
use crate::identity::Loa;
use crate::ops::metrics::{CounterHandle, GaugeHandle, Metrics};
use crate::provider::{
    capability, Authenticated, BrowserStep, LoginContext, LoginProfile, LoginStart, LogoutState, ProtocolState,
    Provider, ProviderError, Readiness, SloMessage, SloOutcome,
};

/// How long a sent LogoutRequest waits for its LogoutResponse.
const LOGOUT_WAIT: Duration = Duration::from_secs(15 * 60);

/// The protocol state kept server-side between `begin` and `finish` (`Debug` redacted).
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingRequest {
    request_id: String,
    issued_at: u64,
    relay_state: String,
    /// The LoA this request asked for, when it differs from the configured one (step-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    step_up_loa: Option<Loa>,
}

impl std::fmt::Debug for PendingRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingRequest").field("issued_at", &self.issued_at).finish_non_exhaustive()
    }
}

/// The SP's own URLs, derived from `public_base_url` and the provider name (stable).
#[derive(Debug, Clone)]
pub struct SpUrls {
    /// Assertion Consumer Service.
    pub acs: String,
    /// Single Logout Service.
    pub slo: String,
    /// SP metadata.
    pub metadata: String,
}

impl SpUrls {
    /// The URLs for provider `name` under `public_base_url`.
    pub fn new(public_base_url: &str, name: &str) -> SpUrls {
        let base = public_base_url.trim_end_matches('/');
        SpUrls {
            acs: format!("{base}{}callback/{name}", crate::http::RESERVED_PREFIX),
            slo: format!("{base}{}saml/{name}/slo", crate::http::RESERVED_PREFIX),
            metadata: format!("{base}{}saml/{name}/metadata", crate::http::RESERVED_PREFIX),
        }
    }
}

/// Metric handles, registered once at startup.
struct SamlMetrics {
    metadata_up: GaugeHandle,
    valid_until: GaugeHandle,
    cert_not_after: GaugeHandle,
    rejected: CounterHandle,
}

/// A running SAML service provider.
pub struct SamlProvider {
    name: String,
    /// The clock of expiry and time checks (a test clock in tests).
    clock: crate::clock::Clock,
    display_name: String,
    profile: attributes::Profile,
    entity_id: String,
    urls: SpUrls,
    signing: Option<SigningKey>,
    sign_requests: bool,
    redirect_signature: RedirectSignature,
    decryption: std::sync::Arc<DecryptionKeys>,
    encryption_certs: Vec<Vec<u8>>,
    idp: Idp,
    idp_sso_url: Option<String>,
    idp_slo_url: Option<String>,
    sso_binding: Binding,
    sp_type: Option<SpType>,
    requested_attributes: Vec<String>,
    is_age_over: Option<u32>,
    loa: Option<(Loa, acs::LoaComparison)>,
    enforce_returned_loa: bool,
    force_authn: bool,
    name_id_format: String,
    mapping: attributes::MappingOptions,
    issuer_case_insensitive: bool,
    audience_ignores_trailing_slash: bool,
    require_encrypted_assertion: bool,
    /// Accept IdP-initiated Responses (no pending request, no InResponseTo).
    allow_unsolicited: bool,
    pending_ttl: u64,
    skew: u64,
    max_message_bytes: usize,
    logout_redirect_url: Option<String>,
    post_logout_redirect_url: Option<String>,
    accept_unsigned_logout_requests: bool,
    refresh_interval: Duration,
    replay: std::sync::Arc<acs::ReplayCache>,
    /// IDs of IdP LogoutRequests accepted, until they could no longer be accepted anyway.
    logout_replay: std::sync::Arc<acs::ReplayCache>,
    /// The session store, where the IDs of LogoutRequests we sent wait for their LogoutResponse
    /// (single use) and the NameID → session subject pairs of logins are kept (so a NameID-only
    /// LogoutRequest finds sessions whose subject is the PersonIdentifier / userUUID
    /// attribute): shared by every instance when the sessions are.
    logouts: crate::session::slo::LogoutSlot,
    /// The shared store of the replay caches when several instances run (Redis).
    shared: crate::session::shared::SharedSlot,
    metrics: OnceLock<SamlMetrics>,
}

fn read_file(what: &str, path: &std::path::Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{what}: cannot read {}: {e}", path.display()))
}

/// DER certificates of a PEM file.
fn pem_certs(what: &str, path: &std::path::Path) -> Result<Vec<Vec<u8>>, String> {
    let certs = crate::tls::load_certs(path).map_err(|e| format!("{what}: {e}"))?;
    Ok(certs.into_iter().map(|c| c.as_ref().to_vec()).collect())
}

impl SamlProvider {
    /// Starts a login; `step_up_loa` asks for at least that LoA instead of the configured one.
    async fn begin_with(&self, step_up_loa: Option<Loa>) -> Result<LoginStart, ProviderError> {
        let requested_loa = step_up_loa.map(|l| (l, acs::LoaComparison::Minimum)).or(self.loa);
        let idp = self.idp.state().await?;
        let destination = self.sso_endpoint(&idp)?;
        let request_id = authn_request::new_id();
        let issued_at = self.clock.now_unix();
        let xml = authn_request::build(&authn_request::AuthnRequestParams {
            id: &request_id,
            issue_instant: issued_at,
            destination: &destination,
            acs_url: &self.urls.acs,
            issuer: &self.entity_id,
            force_authn: self.force_authn,
            sp_type: self.sp_type,
            requested_attributes: &self.requested_attributes,
            is_age_over: self.is_age_over,
            loa: requested_loa,
        });
        // RelayState: an opaque random handle (≤ 80 bytes, SAML Bindings §3.4.3); the real state
        // stays server-side in the pending login.
        let relay_state = authn_request::new_id();
        let signer = self.signing.as_ref().filter(|_| self.sign_requests);
        let sign_error = |e: xmlsec::XmlSecError| {
            ProviderError::with_context(Refusal::KeyUnusable, format_args!("signing the AuthnRequest: {e}"))
        };
        let step = match (self.sso_binding, signer) {
            (Binding::Redirect, Some(key)) if self.redirect_signature == RedirectSignature::Embedded => {
                let signed = key.sign_enveloped(&xml).map_err(sign_error)?;
                binding::redirect_url(&destination, binding::MessageKind::Request, &signed, Some(&relay_state), None)
            }
            (Binding::Redirect, signer) => {
                binding::redirect_url(&destination, binding::MessageKind::Request, &xml, Some(&relay_state), signer)
            }
            (Binding::Post, signer) => {
                let xml = match signer {
                    Some(key) => key.sign_enveloped(&xml).map_err(sign_error)?,
                    None => xml,
                };
                let fields = vec![
                    ("SAMLRequest".to_owned(), binding::base64(&xml)),
                    ("RelayState".to_owned(), relay_state.clone()),
                ];
                return Ok(LoginStart {
                    step: BrowserStep::PostForm { action: destination, fields },
                    state: ProtocolState::Saml(PendingRequest { request_id, issued_at, relay_state, step_up_loa }),
                });
            }
        }
        .map(BrowserStep::Redirect)
        .map_err(|e| ProviderError::with_context(Refusal::OutgoingMessage, format_args!("AuthnRequest: {e}")))?;
        let state = ProtocolState::Saml(PendingRequest { request_id, issued_at, relay_state, step_up_loa });
        Ok(LoginStart { step, state })
    }

    /// Reads time from `clock` instead of the system clock (tests move it forward).
    pub fn with_clock(mut self, clock: crate::clock::Clock) -> SamlProvider {
        self.idp.set_clock(clock.clone());
        self.clock = clock;
        self
    }

    /// Takes over the single-use memory of the provider this one replaces (hot reload,
    /// `crate::reload`): assertion and LogoutRequest IDs already used. A reload must not
    /// reopen a replay window. (LogoutRequests sent and the NameID memory of logins are in
    /// the session store, which a reload keeps.)
    pub fn carrying_over(mut self, previous: &SamlProvider) -> SamlProvider {
        self.replay = previous.replay.clone();
        self.logout_replay = previous.logout_replay.clone();
        self
    }

    /// Builds the provider: loads keys and certificates once; a metadata file is read now so
    /// its errors appear at startup, a metadata URL on the first refresh.
    pub fn build(cfg: &SamlProviderConfig, public_base_url: &str) -> Result<SamlProvider, String> {
        if let Some(first) = cfg.check().into_iter().next() {
            return Err(first);
        }
        let profile = cfg.profile().ok_or("profile is not set")?;
        let signing = match (&cfg.signing_key, &cfg.signing_cert) {
            (Some(key), Some(cert)) => Some(
                SigningKey::from_pem(&read_file("signing_key", key)?, &read_file("signing_cert", cert)?)
                    .map_err(|e| format!("signing_key: {e}"))?,
            ),
            _ => None,
        };
        let mut key_pems = Vec::new();
        let mut encryption_certs = Vec::new();
        for pair in &cfg.encryption_keys {
            key_pems.push(read_file("encryption key", &pair.key)?);
            encryption_certs.extend(pem_certs("encryption cert", &pair.cert)?);
        }
        // No keys is a valid setup where plain assertions are accepted (test IdPs with
        // `allow_unencrypted_assertions`, EnviIAM): an EncryptedAssertion then fails to decrypt.
        let decryption = if key_pems.is_empty() {
            DecryptionKeys::none()
        } else {
            DecryptionKeys::from_pem(&key_pems).map_err(|e| format!("encryption_keys: {e}"))?
        };
        let pinned = if cfg.idp_metadata_signer_certs.is_empty() {
            None
        } else {
            let mut ders = Vec::new();
            for path in &cfg.idp_metadata_signer_certs {
                ders.extend(pem_certs("idp_metadata_signer_certs", path)?);
            }
            Some(IdpCertificates::from_der(&ders).map_err(|e| format!("idp_metadata_signer_certs: {e}"))?)
        };
        let source = match (&cfg.idp_metadata_file, cfg.metadata_url()) {
            (Some(path), _) => Source::File(path.clone()),
            (None, Some(url)) => Source::Url {
                url,
                client: idp::http_client(
                    cfg.ca_bundle.as_deref(),
                    Duration::from_secs(cfg.connect_timeout_secs),
                    Duration::from_secs(cfg.timeout_secs),
                )?,
            },
            (None, None) => return Err("no IdP metadata source".to_owned()),
        };
        let idp = Idp::new(source, pinned, cfg.idp_entity_id(), cfg.issuer_case_insensitive());
        if let Some(path) = &cfg.idp_metadata_file {
            let bytes = read_file("idp_metadata_file", path)?;
            match idp.install(&bytes) {
                Ok(()) => {}
                // Expired metadata is not used, but it does not stop the gateway (and its other
                // providers) from starting: readiness reports it until the file is replaced.
                Err(e) if e.refusal == Refusal::MetadataExpired => {
                    tracing::error!(provider = %cfg.name, file = %path.display(), error = %e, "IdP metadata expired: logins refused until it is replaced");
                }
                Err(e) => return Err(format!("idp_metadata_file {}: {e}", path.display())),
            }
        }
        Ok(SamlProvider {
            clock: crate::clock::Clock::system(),
            name: cfg.name.clone(),
            display_name: cfg.display_name.clone().unwrap_or_else(|| cfg.name.clone()),
            profile,
            entity_id: cfg.entity_id.clone(),
            urls: SpUrls::new(public_base_url, &cfg.name),
            signing,
            sign_requests: cfg.sign_requests(),
            redirect_signature: cfg.redirect_signature(),
            decryption: std::sync::Arc::new(decryption),
            encryption_certs,
            idp,
            idp_sso_url: cfg.idp_sso_url.clone(),
            idp_slo_url: cfg.idp_slo_url.clone(),
            sso_binding: cfg.sso_binding(),
            sp_type: cfg.eidas_extensions().then_some(cfg.sp_type),
            requested_attributes: cfg.requested_attribute_uris(),
            is_age_over: cfg.is_age_over,
            loa: cfg.loa.map(|l| (l, cfg.loa_comparison)),
            enforce_returned_loa: !cfg.dangerous.ignore_returned_loa,
            force_authn: cfg.force_authn,
            name_id_format: cfg.name_id_format(),
            mapping: attributes::MappingOptions {
                refuse_foreign: !cfg.allow_foreign_eidas,
                required: cfg.required_attributes.clone(),
            },
            issuer_case_insensitive: cfg.issuer_case_insensitive(),
            audience_ignores_trailing_slash: cfg.audience_ignores_trailing_slash(),
            require_encrypted_assertion: cfg.requires_encrypted_assertions(),
            allow_unsolicited: cfg.dangerous.allow_unsolicited,
            pending_ttl: cfg.pending_request_ttl_secs(),
            skew: cfg.clock_skew_secs,
            max_message_bytes: cfg.max_message_bytes,
            logout_redirect_url: cfg.logout_redirect_url(),
            post_logout_redirect_url: cfg.post_logout_redirect_url.clone(),
            accept_unsigned_logout_requests: cfg.accept_unsigned_logout_requests(),
            refresh_interval: Duration::from_secs(cfg.metadata_refresh_secs.max(1)),
            replay: std::sync::Arc::new(acs::ReplayCache::new(100_000)),
            logout_replay: std::sync::Arc::new(acs::ReplayCache::new(100_000)),
            logouts: crate::session::slo::LogoutSlot::default(),
            shared: crate::session::shared::SharedSlot::default(),
            metrics: OnceLock::new(),
        })
    }

    /// The SP URLs (registered at the IdP).
    pub fn urls(&self) -> &SpUrls {
        &self.urls
    }

    /// The SP metadata document.
    pub fn sp_metadata(&self) -> String {
        metadata::sp_metadata(&metadata::SpMetadata {
            entity_id: &self.entity_id,
            acs_url: &self.urls.acs,
            slo_url: &self.urls.slo,
            signing_cert: self.signing.as_ref().map(SigningKey::certificate_der),
            encryption_certs: &self.encryption_certs,
            name_id_format: &self.name_id_format,
            requests_signed: self.sign_requests,
        })
    }

    /// Counts every refused message in `aisgate_saml_message_rejected_total`: malformed ones
    /// too (they were missed: 55 of 75 refusals counted, issue 15 item 4b); only our own
    /// outages (no metadata, cannot sign) are not a refused message.
    /// Verifies, decrypts and checks a Response (the ACS checks of `acs::process_response`)
    /// off the I/O worker, bounded (issue 15 item 1, `crate::cpu`): the job owns what it
    /// reads. `callers`: a Response forwarded by one of them (API apps) instead of one to our
    /// own ACS.
    async fn verify(
        &self,
        xml: Vec<u8>,
        request_id: Option<String>,
        requested_loa: Option<(Loa, acs::LoaComparison)>,
        (now, skew): (u64, u64),
        callers: Option<std::sync::Arc<[acs::SamlCaller]>>,
    ) -> Result<acs::SamlAssertion, ProviderError> {
        let idp = self.idp.current().ok_or_else(|| ProviderError::from(self.idp.unusable_because()))?;
        let (sp_entity_id, acs_url) = (self.entity_id.clone(), self.urls.acs.clone());
        let decryption = std::sync::Arc::clone(&self.decryption);
        let (issuer_case_insensitive, audience_ignores_trailing_slash) =
            (self.issuer_case_insensitive, self.audience_ignores_trailing_slash);
        let (clock_skew, require_encrypted_assertion) = (Duration::from_secs(skew), self.require_encrypted_assertion);
        let processed = crate::cpu::run(crate::cpu::Work::SamlAcs, move || {
            let expect = acs::Expectations {
                idp_entity_id: &idp.metadata.entity_id,
                issuer_case_insensitive,
                sp_entity_id: &sp_entity_id,
                audience_ignores_trailing_slash,
                acs_url: &acs_url,
                request_id: request_id.as_deref(),
                requested_loa,
                clock_skew,
                now,
                require_encrypted_assertion,
                callers: callers.as_deref().unwrap_or(&[]),
            };
            acs::process_response(&xml, &idp.certs, &decryption, &expect)
        })
        .await
        .map_err(crate::provider::cpu_refused)?;
        processed.map_err(|e| ProviderError::with_context(e.refusal(), e))
    }

    fn rejected(&self, e: ProviderError) -> ProviderError {
        if let (crate::provider::Side::Refused | crate::provider::Side::Denied, Some(m)) =
            (e.side(), self.metrics.get())
        {
            m.rejected.inc();
        }
        e
    }

    /// The session subject a NameID logged in as; the NameID itself when unknown (a profile
    /// without an identifier attribute, or a login whose session is over: then no session
    /// matches and the IdP is told so, see `slo::request_outcome`).
    async fn subject_of_name_id(&self, name_id: &str) -> Result<String, ProviderError> {
        Ok(self.logouts.subject_of_name_id(&self.name, name_id).await?.unwrap_or_else(|| name_id.to_owned()))
    }

    fn post_logout_url(&self, ctx: &LoginContext) -> String {
        self.post_logout_redirect_url.clone().unwrap_or_else(|| ctx.logged_out_url.clone())
    }

    fn sso_endpoint(&self, state: &idp::IdpState) -> Result<String, ProviderError> {
        if let Some(url) = &self.idp_sso_url {
            return Ok(url.clone());
        }
        metadata::IdpMetadata::endpoint(&state.metadata.sso, self.sso_binding.uri()).ok_or_else(|| {
            ProviderError::with_context(
                Refusal::EndpointMissing,
                format_args!("SingleSignOnService for {}", self.sso_binding.uri()),
            )
        })
    }

    async fn check_response(
        &self,
        params: &[(String, String)],
        state: &ProtocolState,
    ) -> Result<Authenticated, ProviderError> {
        // An unsolicited state is an IdP-initiated login (the gateway found no pending login);
        // only `allow_unsolicited` providers take one, and then the Response must not claim to
        // answer any request (acs: InResponseTo absent).
        let pending: Option<&PendingRequest> = match state {
            ProtocolState::Unsolicited if self.allow_unsolicited => None,
            ProtocolState::Unsolicited => return Err(Refusal::Unsolicited.into()),
            ProtocolState::Saml(pending) => Some(pending),
            _ => return Err(crate::provider::CommonReason::PendingStateProtocol.into()),
        };
        let now = self.clock.now_unix();
        let param = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        let value = param("SAMLResponse")
            .ok_or_else(|| ProviderError::with_context(Refusal::MissingMessage, "no SAMLResponse"))?;
        if let Some(pending) = pending {
            // nia.md §8.4: logins may queue for tens of minutes, but not forever.
            if now.saturating_sub(pending.issued_at) > self.pending_ttl {
                return Err(ProviderError::with_context(
                    Refusal::RequestExpired,
                    format_args!("{} s", self.pending_ttl),
                ));
            }
            if param("RelayState").is_some_and(|rs| rs != pending.relay_state) {
                return Err(Refusal::RelayStateMismatch.into());
            }
        }
        let xml = binding::decode_lenient(value, self.max_message_bytes)
            .map_err(|e| ProviderError::with_context(Refusal::Encoding, format_args!("SAMLResponse: {e}")))?;
        let requested_loa = pending
            .as_ref()
            .and_then(|p| p.step_up_loa)
            .map(|l| (l, acs::LoaComparison::Minimum))
            .or(self.loa)
            .filter(|_| self.enforce_returned_loa);
        let request_id = pending.as_ref().map(|p| p.request_id.clone());
        let assertion = self.verify(xml, request_id, requested_loa, (now, self.skew), None).await?;
        // Single use across every instance sharing the store; without one, this instance's.
        let until = assertion.not_on_or_after.saturating_add(self.skew);
        let local = || self.replay.check(&assertion, Duration::from_secs(self.skew), now).is_ok();
        let scope = crate::session::shared::OnceScope::SamlAssertion;
        if !self.shared.first_use(scope, &self.name, &assertion.id, (until, now), local).await? {
            let e = acs::replayed();
            return Err(ProviderError::with_context(e.refusal(), e));
        }
        let identity = attributes::to_identity(self.profile, &self.name, &assertion, &self.mapping, now)
            .map_err(|e| ProviderError::with_context(e.refusal(), e))?;
        if assertion.name_id != identity.subject {
            // Fail closed: a session a NameID-only LogoutRequest could not find is not made.
            let pair = (self.name.as_str(), assertion.name_id.as_str(), identity.subject.as_str());
            self.logouts.remember_name_id(pair, identity.expires_at, now).await?;
        }
        let subject = LogoutSubject {
            name_id: assertion.name_id.clone(),
            format: assertion.name_id_format.clone(),
            name_qualifier: assertion.name_qualifier.clone(),
            sp_name_qualifier: assertion.sp_name_qualifier.clone(),
            // Session::idp_session_id reads it here: IdP-initiated logout by SessionIndex.
            session_index: assertion.session_index.clone(),
        };
        let logout_state = LogoutState::Saml(Box::new(subject));
        Ok(Authenticated { identity, logout_state, tokens: None })
    }
}

/// `aisgate saml-metadata`: the SP metadata of provider `name` in the configuration at `path`,
/// exactly as the gateway serves it (keys are loaded; the IdP is not contacted).
pub fn metadata_from_config(path: &std::path::Path, name: &str) -> Result<String, String> {
    let config = crate::config::load(path)
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))?;
    let cfg = config
        .provider
        .iter()
        .find_map(|p| match &p.value {
            crate::config::ProviderConfig::Saml(saml) if saml.name == name => Some(saml),
            _ => None,
        })
        .ok_or_else(|| format!("no [[provider]] kind = \"saml\" named {name:?}"))?;
    let provider =
        SamlProvider::build(cfg, &config.server.public_base_url).map_err(|e| format!("provider {name:?}: {e}"))?;
    Ok(provider.sp_metadata())
}

#[async_trait]
impl Provider for SamlProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn display_name(&self) -> &str {
        &self.display_name
    }

    async fn begin(&self, _ctx: &LoginContext) -> Result<LoginStart, ProviderError> {
        self.begin_with(None).await
    }

    async fn finish(
        &self,
        _ctx: &LoginContext,
        params: &[(String, String)],
        state: &ProtocolState,
    ) -> Result<Authenticated, ProviderError> {
        self.check_response(params, state).await.map_err(|e| self.rejected(e))
    }

    async fn logout(&self, ctx: &LoginContext, logout_state: &LogoutState) -> BrowserStep {
        slo::logout_step(self, ctx, logout_state).await
    }

    fn readiness(&self) -> Readiness {
        match self.idp.current() {
            Some(state) => Readiness { ready: true, detail: format!("IdP metadata for {}", state.metadata.entity_id) },
            None => Readiness { ready: false, detail: self.idp.unusable_because().detail },
        }
    }

    fn login_profile(&self) -> LoginProfile {
        LoginProfile {
            returns_by_cross_site_post: true,
            accepts_unsolicited: self.allow_unsolicited,
            pending_login_ttl: Some(self.pending_ttl),
            max_inbound_message_bytes: Some(self.max_message_bytes),
        }
    }

    fn step_up(&self) -> Option<&dyn capability::StepUp> {
        Some(self)
    }

    fn single_logout(&self) -> Option<&dyn capability::SingleLogout> {
        Some(self)
    }

    fn metadata(&self) -> Option<&dyn capability::Metadata> {
        Some(self)
    }

    fn forwarded_responses(&self) -> Option<&dyn capability::ForwardedResponses> {
        Some(self)
    }

    fn background(&self) -> Option<&dyn capability::Background> {
        Some(self)
    }

    fn use_shared_state(&self, shared: std::sync::Arc<dyn crate::session::shared::SharedState>) {
        self.shared.set(shared);
    }

    fn use_logout_store(&self, store: std::sync::Arc<dyn crate::session::SessionStore>, session_lifetime: Duration) {
        self.logouts.set(store, session_lifetime);
    }
}

#[async_trait]
impl capability::StepUp for SamlProvider {
    /// Step-up needs an achieved LoA the gateway can trust: only providers that check it
    /// (`enforce_returned_loa`; CAAIS-IdP always reports "low", caais.md §2.7) take part.
    fn can_reach_loa(&self, _required: Loa) -> bool {
        self.enforce_returned_loa
    }
    async fn begin_at_loa(&self, _ctx: &LoginContext, required: Loa) -> Result<LoginStart, ProviderError> {
        if !self.enforce_returned_loa {
            return Err(Refusal::StepUpUnavailable.into());
        }
        self.begin_with(Some(required)).await
    }
}

#[async_trait]
impl capability::SingleLogout for SamlProvider {
    async fn handle_message(&self, message: &SloMessage) -> Result<SloOutcome, ProviderError> {
        slo::handle(self, message).await.map_err(|e| self.rejected(e))
    }
}

#[async_trait]
impl capability::ForwardedResponses for SamlProvider {
    async fn validate_forwarded(
        &self,
        base64: &str,
        max_bytes: usize,
        skew_secs: u64,
        callers: std::sync::Arc<[acs::SamlCaller]>,
    ) -> Result<capability::ForwardedAssertion, ProviderError> {
        let result = async {
            // Base64 of the XML itself (no DEFLATE: that is the Redirect binding's), bounded.
            let xml = binding::decode_base64(base64, max_bytes.min(self.max_message_bytes)).map_err(|e| {
                ProviderError::with_context(Refusal::Encoding, format_args!("Authorization: SAML: {e}"))
            })?;
            let now = self.clock.now_unix();
            let requested_loa = self.loa.filter(|_| self.enforce_returned_loa);
            let assertion = self.verify(xml, None, requested_loa, (now, skew_secs), Some(callers)).await?;
            let identity = attributes::to_identity(self.profile, &self.name, &assertion, &self.mapping, now)
                .map_err(|e| ProviderError::with_context(e.refusal(), e))?;
            let audience = assertion.audiences.first().cloned().unwrap_or_default();
            Ok(capability::ForwardedAssertion { identity, audience, not_on_or_after: assertion.not_on_or_after })
        }
        .await;
        result.map_err(|e| self.rejected(e))
    }
}

impl capability::Metadata for SamlProvider {
    fn metadata_document(&self) -> String {
        self.sp_metadata()
    }
}

#[async_trait]
impl capability::Background for SamlProvider {
    fn register_metrics(&self, metrics: &mut Metrics) {
        let p = [("provider", self.name.as_str())];
        let metadata_up = metrics.register_gauge(
            "aisgate_saml_metadata_up",
            "1 if the last IdP metadata refresh succeeded, else 0 (the last good copy stays in use).",
            &p,
        );
        let valid_until = metrics.register_gauge(
            "aisgate_saml_metadata_valid_until_seconds",
            "validUntil of the IdP metadata in use, Unix seconds (0: none given).",
            &p,
        );
        let cert_not_after = metrics.register_gauge(
            "aisgate_saml_idp_cert_not_after_seconds",
            "Earliest notAfter of the IdP signing certificates in use, Unix seconds.",
            &p,
        );
        let rejected = metrics.register_counter(
            "aisgate_saml_message_rejected_total",
            "SAML Responses and logout messages refused (signature, status, binding, time, replay), by provider.",
            &p,
        );
        let _ = self.metrics.set(SamlMetrics { metadata_up, valid_until, cert_not_after, rejected });
    }
    async fn refresh(&self) {
        let result = self.idp.refresh().await;
        match &result {
            Ok(state) => {
                tracing::debug!(provider = %self.name, entity_id = %state.metadata.entity_id, "IdP metadata refreshed")
            }
            Err(e) => tracing::warn!(
                provider = %self.name,
                source = %self.idp.describe(),
                error = %e,
                kept_last_good = self.idp.current().is_some(),
                "IdP metadata refresh failed"
            ),
        }
        if let Some(m) = self.metrics.get() {
            m.metadata_up.set(if result.is_ok() { 1.0 } else { 0.0 });
            if let Some(state) = self.idp.current() {
                m.valid_until.set(state.metadata.valid_until.unwrap_or(0) as f64);
                m.cert_not_after.set(state.metadata.certs_not_after().unwrap_or(0) as f64);
            }
        }
    }
    fn refresh_interval(&self) -> Option<Duration> {
        Some(self.refresh_interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minimal IdP metadata (entity `urn:idp`): the signing certificate `cert_der`, a
    /// redirect-binding SSO endpoint and, when given, `validUntil`.
    fn idp_metadata(cert_der: &[u8], valid_until: Option<&str>) -> String {
        let cert = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, cert_der);
        let valid_until = valid_until.map(|v| format!(" validUntil=\"{v}\"")).unwrap_or_default();
        format!(
            "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" entityID=\"urn:idp\"{valid_until}>\
             <md:IDPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\"><md:KeyDescriptor>\
             <ds:KeyInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:X509Data><ds:X509Certificate>{cert}\
             </ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>\
             <md:SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" Location=\"https://idp/sso\"/>\
             </md:IDPSSODescriptor></md:EntityDescriptor>"
        )
    }

    fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    /// Issue 15 item 6: the README's test-IdP setup (`allow_unencrypted_assertions = true`,
    /// no `encryption_keys`) passed `SamlProviderConfig::check` but failed to build ("no SP
    /// decryption key configured"), so `aisgate check` refused it. Item 4c: so did
    /// `enviam-saml-prod` without keys.
    #[test]
    fn providers_without_encryption_keys_build_when_plain_assertions_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let idp = crate::sim::certs::rsa_identity("test idp").unwrap();
        let metadata = write(dir.path(), "idp.xml", &idp_metadata(&idp.cert_der, None));
        let test_idp: SamlProviderConfig = toml::from_str(&format!(
            "name = \"t\"\nprofile = \"nia\"\nentity_id = \"https://gw.example.cz/\"\n\
             idp_metadata_file = {metadata:?}\ndangerous.allow_unencrypted_assertions = true"
        ))
        .unwrap();
        let built = SamlProvider::build(&test_idp, "https://gw.example.cz").unwrap();
        assert!(!built.require_encrypted_assertion);
        assert!(!built.sp_metadata().contains("use=\"encryption\""));

        let key = write(dir.path(), "s.key", &idp.key_pem);
        let pem = write(dir.path(), "s.pem", &idp.cert_pem);
        let enviam: SamlProviderConfig = toml::from_str(&format!(
            "name = \"e\"\npreset = \"enviam-saml-prod\"\nentity_id = \"https://gw.example.cz/\"\n\
             signing_key = {key:?}\nsigning_cert = {pem:?}"
        ))
        .unwrap();
        let built = SamlProvider::build(&enviam, "https://gw.example.cz").unwrap();
        assert!(!built.require_encrypted_assertion, "signed plain assertions are EnviIAM's normal case");
    }

    /// Issue 15 item 5: an expired metadata file does not keep the gateway from starting, is
    /// not used, and readiness says why.
    #[tokio::test]
    async fn an_expired_metadata_file_is_not_trusted_and_readiness_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let idp = crate::sim::certs::rsa_identity("test idp").unwrap();
        let metadata = write(dir.path(), "idp.xml", &idp_metadata(&idp.cert_der, Some("2020-01-01T00:00:00Z")));
        let cfg: SamlProviderConfig = toml::from_str(&format!(
            "name = \"t\"\nprofile = \"nia\"\nentity_id = \"https://gw.example.cz/\"\n\
             idp_metadata_file = {metadata:?}\ndangerous.allow_unencrypted_assertions = true\ndangerous.allow_unsolicited = true"
        ))
        .unwrap();
        let provider = SamlProvider::build(&cfg, "https://gw.example.cz").unwrap();
        let readiness = provider.readiness();
        assert!(!readiness.ready);
        assert!(readiness.detail.contains("expired"), "{}", readiness.detail);
        let form = [("SAMLResponse".to_owned(), "PHIvPg==".to_owned())];
        let err = provider.check_response(&form, &ProtocolState::Unsolicited).await.err().unwrap();
        assert_eq!(err.reason(), &crate::provider::Reason::Saml(Refusal::MetadataExpired));
        assert_eq!(err.side(), crate::provider::Side::Outage);
    }

    /// A hot reload builds a new provider; the IDs used before it stay used (no replay
    /// window opens at a reload).
    #[test]
    fn a_provider_built_by_a_reload_remembers_the_ids_used_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let idp = crate::sim::certs::rsa_identity("test idp").unwrap();
        let metadata = write(dir.path(), "idp.xml", &idp_metadata(&idp.cert_der, None));
        let cfg: SamlProviderConfig = toml::from_str(&format!(
            "name = \"t\"\nprofile = \"nia\"\nentity_id = \"https://gw.example.cz/\"\n\
             idp_metadata_file = {metadata:?}\ndangerous.allow_unencrypted_assertions = true"
        ))
        .unwrap();
        let before = SamlProvider::build(&cfg, "https://gw.example.cz").unwrap();
        assert!(before.replay.first_use_at("assertion-1", 2_000, 1_000));
        assert!(before.logout_replay.first_use_at("logout-1", 2_000, 1_000));

        let fresh = SamlProvider::build(&cfg, "https://gw.example.cz").unwrap();
        let after = SamlProvider::build(&cfg, "https://gw.example.cz").unwrap().carrying_over(&before);
        assert!(!after.replay.first_use_at("assertion-1", 2_000, 1_001), "a replay after the reload is refused");
        assert!(!after.logout_replay.first_use_at("logout-1", 2_000, 1_001));
        // Without the carry-over the new provider would have accepted the replay.
        assert!(fresh.replay.first_use_at("assertion-1", 2_000, 1_001));
    }

    #[test]
    fn sp_urls_are_stable_under_the_gateway_prefix() {
        let urls = SpUrls::new("https://gw.example.cz/", "nia");
        assert_eq!(urls.acs, "https://gw.example.cz/.aisgate/callback/nia");
        assert_eq!(urls.slo, "https://gw.example.cz/.aisgate/saml/nia/slo");
        assert_eq!(urls.metadata, "https://gw.example.cz/.aisgate/saml/nia/metadata");
    }
}
