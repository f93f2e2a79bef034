//! OpenID Connect relying party for CAAIS (mTLS `tls_client_auth`) and EnviIAM (public client
//! with PKCE), and any other provider given by its issuer.
//!
//! Login is the authorization code flow with PKCE S256, `state` and `nonce` (OIDC Core §3.1).
//! The state, nonce and code verifier live in the pending-login JSON that the gateway keeps
//! server-side, single use, under a handle only the starting browser's cookie carries; the
//! `state` parameter is still compared with it, so a code injected into another browser's
//! login is refused. The ID token is checked against an algorithm allow-list (RS256, ES256;
//! never `none`, never HMAC), the byte-exact issuer, audience/azp, time claims with skew, the
//! nonce and `at_hash`.
//!
//! Why not the `openidconnect` crate: the project keeps one crypto provider (aws-lc-rs, also
//! under rustls), and the CAAIS quirks — RS256 keys without `kid` where every key must be
//! tried, an issuer with a trailing slash, the token endpoint on a separate mTLS host — need
//! control over key selection and HTTP that the crate's typed flow makes awkward. The JOSE
//! subset needed here (two algorithms, compact JWS) is small enough to own and test.

mod access_token;
mod client;
mod config;
mod directory;
pub(crate) mod id_token;
pub(crate) mod identity;
pub mod jws;
pub mod logout_token;
pub mod reason;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use serde::{Deserialize, Serialize};

use self::client::IdpClient;
pub use self::config::{ClientAuth, OidcPreset, OidcProviderConfig, PresetValues, ResponseMode, SecretRef};
use self::directory::Directory;
use self::id_token::{constant_time_eq, Expected};
pub use self::identity::to_identity;
use self::jws::{Jws, JwsError};
pub use self::reason::{Failure, OAuthError, TokenKind};
use crate::identity::Loa;
use crate::ops::metrics::{CounterHandle, GaugeHandle, HistogramHandle, Metrics};
use crate::provider::{
    capability, Authenticated, BrowserStep, LoginContext, LoginProfile, LoginStart, LogoutState, LogoutTarget,
    ProtocolState, Provider, ProviderError, Readiness,
};
use crate::session::tokens::UpstreamTokens;

/// Lifetime assumed for an access token whose response has no `expires_in` (RFC 6749 §5.1
/// makes it optional); CAAIS issues 299-second tokens.
const DEFAULT_ACCESS_TOKEN_SECS: u64 = 300;

/// Longest authorization code accepted from the callback.
const MAX_CODE_LEN: usize = 4096;

/// Above this many bytes of ID token, logout uses an auto-submitted POST form instead of a
/// redirect (caais.md §1.10: large ID tokens).
const MAX_LOGOUT_GET_TOKEN: usize = 4000;

/// Largest logout token accepted. They carry a handful of claims; the ID token limit (which
/// must allow CAAIS's role lists) would be needlessly generous for an unauthenticated POST.
const MAX_LOGOUT_TOKEN_BYTES: usize = 16 * 1024;

/// Most logout token `jti`s remembered per provider. Only tokens that passed the signature and
/// every claim check are recorded, so filling it takes the IdP's signing key; a `jti` evicted
/// early by capacity is the only way a replay could pass, and that bound is far above any
/// real logout rate within the replay window.
const MAX_REMEMBERED_JTIS: u64 = 100_000;

/// The protocol state kept server-side between `begin` and `finish` (`Debug` redacted: the
/// nonce and PKCE verifier are secrets).
#[derive(Clone, Serialize, Deserialize)]
pub struct ExpectCallback {
    state: String,
    nonce: String,
    code_verifier: String,
    redirect_uri: String,
    issuer: String,
    /// The per-LoA client the login uses; `None`: the main client.
    #[serde(default)]
    client_loa: Option<Loa>,
}

impl std::fmt::Debug for ExpectCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpectCallback")
            .field("issuer", &self.issuer)
            .field("client_loa", &self.client_loa)
            .finish_non_exhaustive()
    }
}

/// What RP-initiated logout needs from the login: the ID token (`id_token_hint`) and the
/// client registration the session logged in with (a per-LoA one after step-up). `Debug`
/// redacts the ID token.
#[derive(Clone, Serialize, Deserialize)]
pub struct LogoutHint {
    /// Kept packed, ~40 % of its size (issue 13 item 3); serialized as the token string.
    id_token: crate::session::packed::PackedJws,
    /// A name of the configuration: shared, not copied per session.
    #[serde(with = "crate::session::names::serde_one")]
    client_id: std::sync::Arc<str>,
}

impl LogoutHint {
    /// The hint of a login with ID token `id_token` (compact JWS) by client `client_id`.
    pub fn new(id_token: String, client_id: String) -> LogoutHint {
        let client_id = crate::session::names::intern(&client_id);
        LogoutHint { id_token: crate::session::packed::PackedJws::new(&id_token), client_id }
    }

    /// The ID token of the login, byte for byte (`id_token_hint`); `None` if there is none.
    pub fn id_token(&self) -> Option<String> {
        self.id_token.get().filter(|token| !token.is_empty())
    }

    /// Heap bytes it owns (see [`crate::session::footprint`]).
    pub(crate) fn heap_bytes(&self) -> usize {
        use crate::session::footprint::Footprint;
        self.id_token.heap_bytes() + self.client_id.heap_bytes()
    }
}

impl std::fmt::Debug for LogoutHint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogoutHint")
            .field("id_token", &crate::redact::Redacted)
            .field("client_id", &self.client_id)
            .finish()
    }
}

/// A running OpenID Connect provider.
pub struct OidcProvider {
    name: String,
    /// The clock of expiry and time checks (a test clock in tests).
    clock: crate::clock::Clock,
    display_name: String,
    client_id: String,
    scopes: String,
    response_mode: ResponseMode,
    userinfo: bool,
    /// `profile_endpoint`: where API apps validate access tokens (default: userinfo).
    profile_endpoint: Option<String>,
    loa: Option<Loa>,
    post_logout_redirect_uri: Option<String>,
    skew: u64,
    max_token_bytes: usize,
    refresh_interval: Duration,
    client: IdpClient,
    /// Per-LoA client registrations (`[[provider.loa_client]]`), for step-up.
    loa_clients: Vec<(Loa, IdpClient)>,
    directory: Directory,
    /// `jti`s of accepted logout tokens, each kept for the whole window in which its token
    /// could still be accepted (single use, §2.6 step 7).
    seen_logout_jtis: moka::sync::Cache<String, ()>,
    /// The shared store of the `jti` cache when several instances run (Redis).
    shared: crate::session::shared::SharedSlot,
    metrics: OnceLock<OidcMetrics>,
}

/// Metric handles, registered once at startup.
struct OidcMetrics {
    up: GaugeHandle,
    token_latency: HistogramHandle,
    rejected: CounterHandle,
    logout_rejected: CounterHandle,
    refresh_success: CounterHandle,
    refresh_refused: CounterHandle,
    refresh_error: CounterHandle,
}

fn random_b64() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::session::random_id())
}

/// `code_challenge` for S256 (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// An IdP-supplied code, made safe for the log.
pub(crate) fn safe_code(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(64).collect()
}

impl TokenKind {
    /// The refusal of a JWT of this kind for a JOSE failure.
    fn rejected(self, e: JwsError) -> ProviderError {
        let failure = match &e {
            JwsError::TooLarge(_) | JwsError::Malformed(_) | JwsError::CriticalHeader => Failure::TokenMalformed(self),
            JwsError::AlgorithmNotAllowed(_) => Failure::TokenAlgorithm(self),
            JwsError::NoMatchingKey(_) => Failure::TokenKeyUnknown(self),
            JwsError::BadSignature => Failure::TokenSignature(self),
        };
        ProviderError::with_context(failure, e)
    }
}

fn rejected(e: JwsError) -> ProviderError {
    TokenKind::Id.rejected(e)
}

impl OidcProvider {
    /// Reads time from `clock` instead of the system clock (tests move it forward).
    pub fn with_clock(mut self, clock: crate::clock::Clock) -> OidcProvider {
        self.clock = clock;
        self
    }

    /// Takes over the `jti`s of accepted logout tokens from the provider this one replaces
    /// (hot reload, `crate::reload`), so a reload does not reopen their replay window.
    pub fn carrying_over(mut self, previous: &OidcProvider) -> OidcProvider {
        self.seen_logout_jtis = previous.seen_logout_jtis.clone();
        self
    }

    /// Builds the provider: loads the client certificate or secret once. Discovery and keys are
    /// fetched by `refresh` (at start and periodically) or by the first login.
    pub fn build(cfg: &OidcProviderConfig, env: &crate::gateway::EnvSource) -> Result<OidcProvider, String> {
        let problems = cfg.check();
        if let Some(first) = problems.into_iter().next() {
            return Err(first);
        }
        Ok(OidcProvider {
            clock: crate::clock::Clock::system(),
            name: cfg.name.clone(),
            display_name: cfg.display_name.clone().unwrap_or_else(|| cfg.name.clone()),
            client_id: cfg.client_id.clone(),
            scopes: cfg.scopes().join(" "),
            response_mode: cfg.response_mode,
            userinfo: cfg.userinfo,
            profile_endpoint: cfg.profile_endpoint.clone(),
            loa: cfg.loa,
            post_logout_redirect_uri: cfg.post_logout_redirect_uri.clone(),
            skew: cfg.clock_skew_secs,
            max_token_bytes: cfg.max_token_bytes,
            refresh_interval: Duration::from_secs(cfg.refresh_interval_secs.max(1)),
            client: IdpClient::build(cfg, env)?,
            loa_clients: cfg
                .loa_client
                .iter()
                .map(|c| {
                    let creds = client::Credentials {
                        client_id: &c.client_id,
                        client_cert: c.client_cert.as_deref().or(cfg.client_cert.as_deref()),
                        client_key: c.client_key.as_deref().or(cfg.client_key.as_deref()),
                        client_secret: c.client_secret.as_ref().or(cfg.client_secret.as_ref()),
                    };
                    IdpClient::build_for(cfg, &creds, env)
                        .map(|client| (c.loa, client))
                        .map_err(|e| format!("loa_client {}: {e}", c.loa.as_str()))
                })
                .collect::<Result<_, _>>()?,
            directory: Directory::new(
                cfg.discovery_url()?,
                cfg.expected_issuer(),
                Duration::from_secs(cfg.jwks_min_refetch_secs),
            )
            .with_plain_http(cfg.dangerous.allow_plain_http),
            // LRU: under moka's default admission a full cache would not admit a new jti, and
            // the replay check would pass it a second time (issue 15 item 2).
            seen_logout_jtis: crate::session::memory::one_shot_cache(
                MAX_REMEMBERED_JTIS,
                Duration::from_secs(logout_token::replay_window_secs(cfg.clock_skew_secs)),
            ),
            shared: crate::session::shared::SharedSlot::default(),
            metrics: OnceLock::new(),
        })
    }

    /// Verifies the signature, refetching the JWKS once (rate-limited) when no key we hold
    /// fits: a rotation at the IdP, or a token without `kid` signed with a new key.
    async fn verify_signature(&self, jws: &Jws, jwks_uri: &str, kind: TokenKind) -> Result<(), ProviderError> {
        let refetch = match jws.verify_bounded(self.directory.keys()).await.map_err(crate::provider::cpu_refused)? {
            Ok(()) => return Ok(()),
            Err(JwsError::NoMatchingKey(_)) => true,
            // Without a `kid` (or with one no key carries) a failed signature may be a key we
            // have not seen yet.
            Err(JwsError::BadSignature) => jws.kid.is_none() || !self.directory.keys().iter().any(|k| k.kid == jws.kid),
            Err(e) => return Err(kind.rejected(e)),
        };
        if !refetch {
            return Err(kind.rejected(JwsError::BadSignature));
        }
        self.directory.refetch_keys(&self.client, jwks_uri).await?;
        jws.verify_bounded(self.directory.keys())
            .await
            .map_err(crate::provider::cpu_refused)?
            .map_err(|e| kind.rejected(e))
    }

    /// Parses, verifies and checks the ID token; returns its claims.
    async fn check_id_token(
        &self,
        raw: &str,
        jwks_uri: &str,
        expect: &ExpectCallback,
        client_id: &str,
        access_token: Option<&str>,
    ) -> Result<serde_json::Map<String, serde_json::Value>, ProviderError> {
        let jws = Jws::parse(raw, self.max_token_bytes).map_err(rejected)?;
        self.verify_signature(&jws, jwks_uri, TokenKind::Id).await?;
        let want = Expected {
            issuer: &expect.issuer,
            client_id,
            nonce: Some(&expect.nonce),
            now: self.clock.now_unix(),
            skew: self.skew,
            access_token,
        };
        id_token::check_claims(&jws.payload, &want).map_err(|e| match e {
            id_token::IdTokenError::Jws(e) => TokenKind::Id.rejected(e),
            other => ProviderError::with_context(Failure::TokenClaims(TokenKind::Id), other),
        })
    }

    /// Verifies a logout token (Back-Channel Logout 1.0 §2.6): size, algorithm allow-list and
    /// signature with the provider's keys (one rate-limited JWKS refetch for an unknown key),
    /// then the claims, then single use of its `jti`.
    async fn check_logout_token(&self, raw: &str) -> Result<LogoutTarget, ProviderError> {
        let metadata = self.directory.require_metadata(&self.client, &self.name).await?;
        let jws = Jws::parse(raw, self.max_token_bytes.min(MAX_LOGOUT_TOKEN_BYTES))
            .map_err(|e| TokenKind::Logout.rejected(e))?;
        self.verify_signature(&jws, &metadata.jwks_uri, TokenKind::Logout).await?;
        let want = logout_token::Expected {
            issuer: &metadata.issuer,
            client_id: &self.client_id,
            now: self.clock.now_unix(),
            skew: self.skew,
        };
        let claims = logout_token::check_claims(&jws.payload, &want)
            .map_err(|e| ProviderError::with_context(Failure::TokenClaims(TokenKind::Logout), e))?;
        // Recorded only now, after every check: an unverified token cannot burn a jti. The
        // entry API makes check-and-insert atomic, so two concurrent replays cannot both pass.
        let now = self.clock.now_unix();
        let until = now.saturating_add(logout_token::replay_window_secs(self.skew));
        let local = || self.seen_logout_jtis.entry(claims.jti.clone()).or_insert_with(|| ()).is_fresh();
        let scope = crate::session::shared::OnceScope::OidcLogoutJti;
        if !self.shared.first_use(scope, &self.name, &claims.jti, (until, now), local).await? {
            return Err(Failure::LogoutTokenReplayed.into());
        }
        Ok(LogoutTarget { subject: claims.sub, sid: claims.sid })
    }

    async fn finish_code(
        &self,
        params: &[(String, String)],
        expect: &ExpectCallback,
    ) -> Result<Authenticated, ProviderError> {
        let metadata = self.directory.require_metadata(&self.client, &self.name).await?;
        // Mix-up defence: the discovered issuer must still be the one the login started with,
        // and an RFC 9207 `iss` parameter, when sent, must name it.
        if metadata.issuer != expect.issuer || param(params, "iss").is_some_and(|iss| iss != expect.issuer) {
            return Err(Failure::IssuerMismatch.into());
        }
        let code = param(params, "code").filter(|c| !c.is_empty()).ok_or(Failure::MissingCode)?;
        if code.len() > MAX_CODE_LEN {
            return Err(ProviderError::with_context(Failure::CodeTooLong, format_args!("{} bytes", code.len())));
        }
        let (client, configured_loa) = self.client_for(expect.client_loa)?;
        let started = Instant::now();
        let tokens =
            client.exchange_code(&metadata.token_endpoint, code, &expect.redirect_uri, &expect.code_verifier).await;
        if let Some(m) = self.metrics.get() {
            m.token_latency.observe(started.elapsed().as_secs_f64());
        }
        let tokens = tokens?;
        let raw =
            tokens.id_token.ok_or_else(|| ProviderError::with_context(Failure::TokenResponseInvalid, "no id_token"))?;
        let result = self
            .check_id_token(&raw, &metadata.jwks_uri, expect, client.client_id(), tokens.access_token.as_deref())
            .await;
        if let (Err(e), Some(m)) = (&result, self.metrics.get()) {
            if e.side() != crate::provider::Side::Outage {
                m.rejected.inc();
            }
        }
        let mut claims = result?;
        let now = self.clock.now_unix();
        if let (true, Some(endpoint), Some(access_token)) =
            (self.userinfo, &metadata.userinfo_endpoint, tokens.access_token.as_deref())
        {
            let info = client.userinfo(endpoint, access_token).await?;
            // OIDC Core §5.3.2: the userinfo `sub` must be the ID token's.
            if info.get("sub") != claims.get("sub") {
                return Err(Failure::UserinfoSubjectMismatch.into());
            }
            for (name, value) in info {
                claims.entry(name).or_insert(value);
            }
        }
        let identity = to_identity(&self.name, &claims, configured_loa, now);
        if identity.expires_at.is_some_and(|end| end.saturating_add(self.skew) <= now) {
            // A session that ends before it starts would send the browser straight back to the
            // IdP, whose SSO session would answer the same: a loop instead of an error page.
            return Err(Failure::SsoExpired.into());
        }
        let logout_state = LogoutState::Oidc(Box::new(LogoutHint::new(raw, client.client_id().to_owned())));
        let tokens = tokens.access_token.map(|access_token| UpstreamTokens {
            access_token,
            issued_at: now,
            expires_at: now.saturating_add(tokens.expires_in.unwrap_or(DEFAULT_ACCESS_TOKEN_SECS)),
            refresh_token: tokens.refresh_token,
            client_loa: expect.client_loa,
        });
        Ok(Authenticated { identity, logout_state, tokens })
    }

    /// The client registration for `loa` (`None`: the main one) and the LoA it guarantees.
    fn client_for(&self, loa: Option<Loa>) -> Result<(&IdpClient, Option<Loa>), ProviderError> {
        match loa {
            None => Ok((&self.client, self.loa)),
            Some(loa) if self.loa == Some(loa) => Ok((&self.client, self.loa)),
            Some(loa) => self
                .loa_clients
                .iter()
                .find(|(l, _)| *l == loa)
                .map(|(l, c)| (c, Some(*l)))
                .ok_or_else(|| ProviderError::with_context(Failure::LoaUnreachable, loa.as_str())),
        }
    }

    /// The client that guarantees at least `required`, the lowest such (the main one first).
    fn client_reaching(&self, required: Loa) -> Option<Loa> {
        if self.loa.is_some_and(|l| l >= required) {
            return self.loa;
        }
        self.loa_clients.iter().map(|(l, _)| *l).filter(|l| *l >= required).min()
    }

    /// Starts a login with the client for `client_loa` (`None`: the main one).
    async fn begin_with(&self, ctx: &LoginContext, client_loa: Option<Loa>) -> Result<LoginStart, ProviderError> {
        let (client, _) = self.client_for(client_loa)?;
        let metadata = self.directory.require_metadata(&self.client, &self.name).await?;
        let expect = ExpectCallback {
            state: random_b64(),
            nonce: random_b64(),
            code_verifier: random_b64(),
            redirect_uri: ctx.callback_url.clone(),
            issuer: metadata.issuer.clone(),
            client_loa,
        };
        let mut url = url::Url::parse(&metadata.authorization_endpoint).map_err(|e| {
            ProviderError::with_context(Failure::DiscoveryInvalid, format_args!("authorization_endpoint: {e}"))
        })?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", client.client_id())
                .append_pair("redirect_uri", &expect.redirect_uri)
                .append_pair("scope", &self.scopes)
                .append_pair("state", &expect.state)
                .append_pair("nonce", &expect.nonce)
                .append_pair("code_challenge", &pkce_challenge(&expect.code_verifier))
                .append_pair("code_challenge_method", "S256");
            if self.response_mode == ResponseMode::FormPost {
                q.append_pair("response_mode", "form_post");
            }
        }
        Ok(LoginStart { step: BrowserStep::Redirect(url.into()), state: ProtocolState::Oidc(expect) })
    }

    fn post_logout_uri(&self, ctx: &LoginContext) -> String {
        self.post_logout_redirect_uri.clone().unwrap_or_else(|| ctx.logged_out_url.clone())
    }

    /// RP-initiated logout (OIDC RP-Initiated Logout 1.0 §2) carrying `state`; `None` without
    /// a usable end-session endpoint.
    fn end_session(&self, ctx: &LoginContext, logout_state: &LogoutState, state: &str) -> Option<BrowserStep> {
        let endpoint = self.directory.metadata().and_then(|m| m.end_session_endpoint.clone())?;
        let hint = match logout_state {
            LogoutState::Oidc(hint) => Some(hint),
            _ => None,
        };
        let mut fields = vec![
            // The registration the session logged in with (a per-LoA one after step-up).
            ("client_id".to_owned(), hint.map_or(self.client_id.as_str(), |h| &*h.client_id).to_owned()),
            ("post_logout_redirect_uri".to_owned(), self.post_logout_uri(ctx)),
            ("state".to_owned(), state.to_owned()),
        ];
        let id_token = hint.and_then(|h| h.id_token());
        let long = id_token.as_ref().is_some_and(|token| token.len() > MAX_LOGOUT_GET_TOKEN);
        if let Some(id_token) = id_token {
            fields.push(("id_token_hint".to_owned(), id_token));
        }
        if long {
            return Some(BrowserStep::PostForm { action: endpoint, fields });
        }
        let mut url = url::Url::parse(&endpoint).ok()?;
        url.query_pairs_mut().extend_pairs(fields);
        Some(BrowserStep::Redirect(url.into()))
    }

    /// One refresh-token grant. An ID token in the answer is not used: identity and LoA stay
    /// those verified at login (OIDC Core §12.2 allows the IdP to omit it).
    async fn refresh_grant(&self, old: &UpstreamTokens) -> Result<UpstreamTokens, ProviderError> {
        let refresh_token = old.refresh_token.as_deref().ok_or(Failure::NoRefreshToken)?;
        let metadata = self.directory.require_metadata(&self.client, &self.name).await?;
        let now = self.clock.now_unix();
        let (client, _) = self.client_for(old.client_loa)?;
        let answer = client.refresh(&metadata.token_endpoint, refresh_token).await?;
        let access_token = answer.access_token.filter(|t| !t.is_empty()).ok_or_else(|| {
            ProviderError::with_context(Failure::TokenResponseInvalid, "refresh without access_token")
        })?;
        Ok(UpstreamTokens {
            access_token,
            issued_at: now,
            expires_at: now.saturating_add(answer.expires_in.unwrap_or(DEFAULT_ACCESS_TOKEN_SECS)),
            refresh_token: answer.refresh_token.filter(|t| !t.is_empty()),
            client_loa: old.client_loa,
        })
    }
}

#[async_trait]
impl Provider for OidcProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn display_name(&self) -> &str {
        &self.display_name
    }

    async fn begin(&self, ctx: &LoginContext) -> Result<LoginStart, ProviderError> {
        self.begin_with(ctx, None).await
    }

    async fn finish(
        &self,
        _ctx: &LoginContext,
        params: &[(String, String)],
        state: &ProtocolState,
    ) -> Result<Authenticated, ProviderError> {
        let ProtocolState::Oidc(expect) = state else {
            return Err(crate::provider::CommonReason::PendingStateProtocol.into());
        };
        // RFC 6749 §10.12: the state must be the one this browser's login sent.
        let got = param(params, "state").unwrap_or("");
        if !constant_time_eq(got.as_bytes(), expect.state.as_bytes()) {
            return Err(Failure::StateMismatch.into());
        }
        if let Some(error) = param(params, "error") {
            return Err(Failure::AuthorizationError(OAuthError::parse(error)).into());
        }
        self.finish_code(params, expect).await
    }

    async fn logout(&self, ctx: &LoginContext, logout_state: &LogoutState) -> BrowserStep {
        self.end_session(ctx, logout_state, &random_b64())
            .unwrap_or_else(|| BrowserStep::Redirect(self.post_logout_uri(ctx)))
    }

    fn readiness(&self) -> Readiness {
        self.directory.readiness()
    }

    fn login_profile(&self) -> LoginProfile {
        LoginProfile {
            returns_by_cross_site_post: self.response_mode == ResponseMode::FormPost,
            ..LoginProfile::default()
        }
    }

    fn step_up(&self) -> Option<&dyn capability::StepUp> {
        Some(self)
    }

    fn stateful_logout(&self) -> Option<&dyn capability::StatefulLogout> {
        Some(self)
    }

    fn backchannel_logout(&self) -> Option<&dyn capability::BackchannelLogout> {
        Some(self)
    }

    fn token_refresh(&self) -> Option<&dyn capability::TokenRefresh> {
        Some(self)
    }

    fn background(&self) -> Option<&dyn capability::Background> {
        Some(self)
    }

    fn use_shared_state(&self, shared: std::sync::Arc<dyn crate::session::shared::SharedState>) {
        self.shared.set(shared);
    }

    fn access_tokens(&self) -> Option<&dyn capability::AccessTokens> {
        Some(self)
    }
}

#[async_trait]
impl capability::AccessTokens for OidcProvider {
    async fn validate_access_token(
        &self,
        token: &str,
        local_jwt: bool,
    ) -> Result<capability::ValidatedToken, ProviderError> {
        self.check_access_token(token, local_jwt).await
    }
}

#[async_trait]
impl capability::StepUp for OidcProvider {
    fn can_reach_loa(&self, required: Loa) -> bool {
        self.client_reaching(required).is_some()
    }
    async fn begin_at_loa(&self, ctx: &LoginContext, required: Loa) -> Result<LoginStart, ProviderError> {
        let client_loa = self
            .client_reaching(required)
            .ok_or_else(|| ProviderError::with_context(Failure::LoaUnreachable, required.as_str()))?;
        // The main client keeps `None`, so its sessions look like every other main login.
        self.begin_with(ctx, (self.loa != Some(client_loa)).then_some(client_loa)).await
    }
}

impl capability::StatefulLogout for OidcProvider {
    fn logout_with_state(&self, ctx: &LoginContext, logout_state: &LogoutState, state: &str) -> Option<BrowserStep> {
        self.end_session(ctx, logout_state, state)
    }
}

#[async_trait]
impl capability::BackchannelLogout for OidcProvider {
    async fn verify_logout_token(&self, token: &str) -> Result<LogoutTarget, ProviderError> {
        let result = self.check_logout_token(token).await;
        if let (Err(e), Some(m)) = (&result, self.metrics.get()) {
            if e.side() != crate::provider::Side::Outage {
                m.logout_rejected.inc();
            }
        }
        result
    }
}

#[async_trait]
impl capability::TokenRefresh for OidcProvider {
    async fn refresh_tokens(&self, tokens: &UpstreamTokens) -> Result<UpstreamTokens, ProviderError> {
        let result = self.refresh_grant(tokens).await;
        if let Some(m) = self.metrics.get() {
            match &result {
                Ok(_) => m.refresh_success.inc(),
                Err(e) if e.side() == crate::provider::Side::Outage => m.refresh_error.inc(),
                Err(_) => m.refresh_refused.inc(),
            }
        }
        result
    }
}

#[async_trait]
impl capability::Background for OidcProvider {
    fn register_metrics(&self, metrics: &mut Metrics) {
        let p = [("provider", self.name.as_str())];
        let up = metrics.register_gauge(
            "aisgate_oidc_discovery_up",
            "1 if the last discovery and JWKS refresh succeeded, else 0.",
            &p,
        );
        let token_latency = metrics.register_histogram(
            "aisgate_oidc_token_duration_seconds",
            "Duration of authorization code exchanges at the token endpoint, by provider.",
            &p,
            &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0],
        );
        let rejected = metrics.register_counter(
            "aisgate_oidc_id_token_rejected_total",
            "ID tokens refused (signature, algorithm, issuer, audience, time, nonce, size), by provider.",
            &p,
        );
        let logout_rejected = metrics.register_counter(
            "aisgate_oidc_logout_token_rejected_total",
            "Back-channel logout tokens refused (signature, claims, replayed jti, size), by provider.",
            &p,
        );
        let mut refresh = |result: &str| {
            metrics.register_counter(
                "aisgate_oidc_token_refresh_total",
                "Refresh-token grants for upstream access tokens, by provider and result (success, refused: the session ended, error: IdP unavailable or invalid answer).",
                &[("provider", self.name.as_str()), ("result", result)],
            )
        };
        let (refresh_success, refresh_refused, refresh_error) =
            (refresh("success"), refresh("refused"), refresh("error"));
        let _ = self.metrics.set(OidcMetrics {
            up,
            token_latency,
            rejected,
            logout_rejected,
            refresh_success,
            refresh_refused,
            refresh_error,
        });
    }
    async fn refresh(&self) {
        self.directory.refresh(&self.client, &self.name).await;
        if let Some(m) = self.metrics.get() {
            m.up.set(if self.directory.readiness().ready { 1.0 } else { 0.0 });
        }
    }
    fn refresh_interval(&self) -> Option<Duration> {
        Some(self.refresh_interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_matches_the_caais_test_vector() {
        assert_eq!(pkce_challenge("my_challenge"), "aMmkIhFlicd0kYXQyGjE9u21JCM40Fu3c6qsfMqkssc");
    }
}
