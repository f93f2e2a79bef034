//! Which raw attributes a session keeps: the ones the configuration reads.
//!
//! [`Identity::attributes`] holds every raw attribute or claim of the login (all ID-token
//! claims, every SAML attribute) so that custom header mappings can name any of them. Most
//! are never read: the typed fields of [`Identity`] carry the same values, and protocol
//! claims (`nonce`, `at_hash`, `jti`, …) mean nothing after the login. Kept for the whole
//! session they were the largest part of it (a NIA session ~3 KB of its ~4.7, a CAAIS one
//! ~3.6 KB: bench/README.md "Session memory"), and a shared store wrote them to Redis.
//!
//! A session therefore keeps only the raw attributes some app's `[app.headers.attributes]`
//! maps, the role claims the API rules read (`role_crzp`, `role_cizp`, `role_rpp`) and the
//! IdP session id (`sid`, for back-channel logout). Less personal data is held, too. The
//! price: an attribute mapping added by a reload reaches sessions that log in after it.
//!
//! The same holds for the upstream tokens of an OpenID Connect login ([`KeptTokens`]): the
//! access and refresh token (a CAAIS access token is an RS256 JWT of ~0.75 KB) and the
//! token slot's locks are only needed by apps with `upstream_bearer = true`, so a session
//! keeps them only when such an app lists its provider. Bearer credentials the gateway never
//! sends are not held either (they are wiped when dropped). A reload that turns
//! `upstream_bearer` on applies to sessions that log in after it; older sessions of that
//! provider are forwarded without `Authorization` until their users log in again.

use std::collections::BTreeSet;

use super::tokens::UpstreamTokens;
use crate::identity::Identity;

/// The names of the raw attributes sessions keep (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct KeptAttributes {
    names: BTreeSet<String>,
}

impl KeptAttributes {
    /// Keeps `names` (the attributes the header mappings read), the IdP session id
    /// ([`super::Session::idp_session_id`]) and the role claims of `require_roles`.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> KeptAttributes {
        use crate::api::authorize::roles::{CRZP_CLAIMS, RPP_CLAIM};
        let always = ["sid", RPP_CLAIM].into_iter().chain(CRZP_CLAIMS);
        let names = names.into_iter().chain(always).map(str::to_owned).collect();
        KeptAttributes { names }
    }

    /// Drops the raw attributes of `identity` nobody reads.
    pub fn prune(&self, identity: &mut Identity) {
        identity.attributes.retain(|name, _| self.names.contains(name));
    }
}

/// The providers whose sessions keep the login's upstream tokens: those some app with
/// `upstream_bearer = true` lists (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct KeptTokens {
    providers: BTreeSet<String>,
}

impl KeptTokens {
    /// Keeps the tokens of logins at `providers` (the providers of the `upstream_bearer` apps).
    pub fn new<'a>(providers: impl IntoIterator<Item = &'a str>) -> KeptTokens {
        KeptTokens { providers: providers.into_iter().map(str::to_owned).collect() }
    }

    /// The tokens a new session of `provider` keeps: `tokens` when an app can send them
    /// upstream, else none (the dropped tokens are wiped).
    pub fn keep(&self, provider: &str, tokens: Option<UpstreamTokens>) -> Option<UpstreamTokens> {
        tokens.filter(|_| self.providers.contains(provider))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_stay_only_for_providers_of_bearer_apps() {
        let tokens = || {
            Some(UpstreamTokens {
                access_token: "a".into(),
                issued_at: 0,
                expires_at: 300,
                refresh_token: Some("r".into()),
                client_loa: None,
            })
        };
        let kept = KeptTokens::new(["caais"]);
        assert_eq!(kept.keep("caais", tokens()), tokens(), "an upstream_bearer app lists caais");
        assert_eq!(kept.keep("enviam", tokens()), None, "no upstream_bearer app lists enviam");
        assert_eq!(kept.keep("caais", None), None, "a login without tokens stays without");
        assert_eq!(KeptTokens::default().keep("caais", tokens()), None, "no upstream_bearer app at all");
    }

    #[test]
    fn only_mapped_attributes_the_sid_and_role_claims_stay() {
        let mut identity = Identity::default();
        for name in ["sid", "nonce", "at_hash", "CurrentAddress", "DateOfBirth", "role_rpp", "Pracoviste.Id"] {
            identity.attributes.insert(name.to_owned(), vec![format!("{name}-value")]);
        }
        KeptAttributes::new(["Pracoviste.Id"]).prune(&mut identity);
        let kept: Vec<&str> = identity.attributes.keys().map(String::as_str).collect();
        assert_eq!(kept, ["Pracoviste.Id", "role_rpp", "sid"], "mapped, role claim and sid; the rest is gone");
        assert_eq!(identity.attributes["Pracoviste.Id"], ["Pracoviste.Id-value"], "values unchanged");
    }
}
