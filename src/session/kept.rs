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

use std::collections::BTreeSet;

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

#[cfg(test)]
mod tests {
    use super::*;

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
