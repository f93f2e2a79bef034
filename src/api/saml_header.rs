//! `Authorization: SAML <base64 SAMLResponse>`: a Response the IdP issued to a calling
//! application, forwarded with each call (enviam.md §5.4 step 3, §12.3).
//!
//! Validated like the ACS (signature and algorithms, limits before cryptography, issuer,
//! status, times, encrypted assertions) on the CPU pool, except that the `Audience` must be
//! one of the configured callers' entity IDs and `Destination`/`Recipient` one of their ACS
//! URLs, and `InResponseTo` names the caller's request, not ours. Re-use by the caller until
//! `SubjectConfirmationData/@NotOnOrAfter` is the documented pattern, so there is no
//! one-time replay check; instead validated Responses are cached until then, keyed by the
//! SHA-256 of the header value (not by the assertion ID alone: a forged Response reusing a
//! genuine ID must never hit the cache), which also saves the signature work.

use std::sync::Arc;
use std::time::Duration;

use super::config::{AuthMethod, SamlHeaderConfig};
use super::{ApiFailure, ApiIdentity};
use crate::clock::Clock;
use crate::identity::Identity;
use crate::provider::saml::acs::SamlCaller;
use crate::provider::Provider;

#[derive(Debug)]
struct Validated {
    identity: Arc<Identity>,
    /// The caller's entity ID (the Audience).
    audience: String,
    /// `NotOnOrAfter` (the earliest of the confirmation's and the conditions'), Unix seconds.
    until: u64,
}

/// Validates forwarded SAML Responses of one app.
pub(crate) struct SamlHeaderValidator {
    provider: Arc<dyn Provider>,
    callers: Arc<[SamlCaller]>,
    max_header_bytes: usize,
    skew: u64,
    cache: moka::sync::Cache<[u8; 32], Arc<Validated>>,
    clock: Clock,
}

/// Longest a validated Response is kept in real time, whatever its `NotOnOrAfter` says (the
/// entry's own time is checked on each use).
const MAX_CACHE_SECS: u64 = 3600;

impl SamlHeaderValidator {
    pub(crate) fn new(cfg: &SamlHeaderConfig, provider: Arc<dyn Provider>, clock: Clock) -> Result<Self, String> {
        if provider.forwarded_responses().is_none() {
            return Err(format!("[app.saml_header] provider {:?} is not kind = \"saml\"", cfg.provider));
        }
        if cfg.caller.is_empty() || cfg.caller.iter().any(|c| c.entity_id.is_empty() || c.acs_urls.is_empty()) {
            return Err("[app.saml_header] needs at least one caller, each with entity_id and acs_urls".to_owned());
        }
        let callers: Vec<SamlCaller> = cfg
            .caller
            .iter()
            .map(|c| SamlCaller { entity_id: c.entity_id.clone(), acs_urls: c.acs_urls.clone() })
            .collect();
        Ok(SamlHeaderValidator {
            provider,
            callers: callers.into(),
            max_header_bytes: cfg.max_header_bytes,
            skew: cfg.clock_skew_secs,
            cache: moka::sync::Cache::builder()
                .max_capacity(cfg.cache_entries)
                .time_to_live(Duration::from_secs(MAX_CACHE_SECS))
                .build(),
            clock,
        })
    }

    fn refused(reason: &'static str, detail: impl Into<String>) -> ApiFailure {
        ApiFailure::Refused { scheme: AuthMethod::SamlHeader, reason, detail: detail.into() }
    }

    /// Validates `value` (the text after `SAML `).
    pub(crate) async fn validate(&self, value: &str) -> Result<ApiIdentity, ApiFailure> {
        // Bounded before any decoding or hashing.
        if value.len() > self.max_header_bytes {
            return Err(Self::refused("saml_header_too_large", format!("{} bytes", value.len())));
        }
        if value.is_empty() {
            return Err(Self::refused("saml_header_empty", "no SAMLResponse after the scheme"));
        }
        let key = super::cache_key(value);
        let now = self.clock.now_unix();
        if let Some(hit) = self.cache.get(&key).filter(|v| v.until > now) {
            return Ok(ApiIdentity {
                identity: Arc::clone(&hit.identity),
                scheme: AuthMethod::SamlHeader,
                client: Some(hit.audience.clone()),
                cached: true,
            });
        }
        let Some(forwarded) = self.provider.forwarded_responses() else {
            return Err(Self::refused("unsupported", "the provider does not take forwarded Responses"));
        };
        let answer = forwarded
            .validate_forwarded(value, self.max_header_bytes, self.skew, Arc::clone(&self.callers))
            .await
            .map_err(|e| ApiFailure::from_provider(AuthMethod::SamlHeader, &e))?;
        let validated = Arc::new(Validated {
            identity: Arc::new(answer.identity),
            audience: answer.audience,
            until: answer.not_on_or_after,
        });
        if validated.until > now {
            self.cache.insert(key, Arc::clone(&validated));
        }
        Ok(ApiIdentity {
            identity: Arc::clone(&validated.identity),
            scheme: AuthMethod::SamlHeader,
            client: Some(validated.audience.clone()),
            cached: false,
        })
    }
}
