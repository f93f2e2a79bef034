//! EnviIAM role requirements: `require_roles` of `[[app.rule]]` against the `role_crzp`
//! (alias `role_cizp`) and `role_rpp` claims (enviam.md §5.3, §12.4).
//!
//! Claim values are comma-separated lists with optional spaces (`"A100, A101"`,
//! `"C100,C110:C206"`); each value is split on `,`, trimmed, and empty entries dropped. An
//! `X:Y` entry is one role and stays whole: `C110:C206` is not `C110` and not `C206`.
//! Matching is exact and case-sensitive on whole entries.
//!
//! Semantics: within one claim, `match = "any"` (the default) needs at least one of the
//! listed roles, `match = "all"` every one of them. Each claim that lists roles must be
//! satisfied (the claims are combined with AND); a claim with an empty list is not checked.

use serde::Deserialize;

use crate::identity::Identity;

/// Raw claim names of the CRŽP roles: `role_crzp` (OIDC), `role_cizp` (the SAML example).
pub(crate) const CRZP_CLAIMS: [&str; 2] = ["role_crzp", "role_cizp"];
/// Raw claim name of the JIP/KAAS (RPP) roles.
pub(crate) const RPP_CLAIM: &str = "role_rpp";

/// How the roles listed for one claim combine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleMatch {
    /// At least one listed role.
    #[default]
    Any,
    /// Every listed role.
    All,
}

/// `require_roles = { role_crzp = [...], role_rpp = [...], match = "any" }` of a rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleRequirement {
    /// Required CRŽP roles (`role_crzp`; `role_cizp` is accepted as the key too).
    #[serde(default, alias = "role_cizp")]
    pub role_crzp: Vec<String>,
    /// Required JIP/KAAS roles (`role_rpp`), usually `agenda:role` pairs.
    #[serde(default)]
    pub role_rpp: Vec<String>,
    /// `any` (default) or `all`, per claim.
    #[serde(default, rename = "match")]
    pub mode: RoleMatch,
}

/// Which claim failed a requirement (logged; the client sees only "missing role").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingClaimRole {
    /// `role_crzp` / `role_cizp`.
    Crzp,
    /// `role_rpp`.
    Rpp,
}

impl MissingClaimRole {
    /// The claim name for logs.
    pub fn claim(self) -> &'static str {
        match self {
            MissingClaimRole::Crzp => "role_crzp",
            MissingClaimRole::Rpp => "role_rpp",
        }
    }
}

/// Splits an EnviIAM role list: `"A100, C110:C206"` → `["A100", "C110:C206"]`.
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// The user's roles from the raw claims `names` (every value, split), sorted, without duplicates.
fn claim_roles(identity: &Identity, names: &[&str]) -> Vec<String> {
    let mut roles: Vec<String> = names
        .iter()
        .filter_map(|n| identity.attributes.get(n))
        .flatten()
        .flat_map(|v| split_list(v))
        .map(str::to_owned)
        .collect();
    roles.sort();
    roles.dedup();
    roles
}

/// The user's CRŽP roles (`role_crzp` and `role_cizp`), normalized.
pub fn crzp_roles(identity: &Identity) -> Vec<String> {
    claim_roles(identity, &CRZP_CLAIMS)
}

/// The user's RPP roles (`role_rpp`), normalized.
pub fn rpp_roles(identity: &Identity) -> Vec<String> {
    claim_roles(identity, &[RPP_CLAIM])
}

impl RoleRequirement {
    /// Normalizes configured entries the way claims are read: an entry `"A100, A101"` is two
    /// roles; blanks are dropped.
    pub fn normalized(&self) -> RoleRequirement {
        let norm = |list: &[String]| list.iter().flat_map(|e| split_list(e)).map(str::to_owned).collect();
        RoleRequirement { role_crzp: norm(&self.role_crzp), role_rpp: norm(&self.role_rpp), mode: self.mode }
    }

    /// Whether nothing is required.
    pub fn is_empty(&self) -> bool {
        self.role_crzp.is_empty() && self.role_rpp.is_empty()
    }

    /// Checks `identity`; the error names the first claim that fails.
    pub fn check(&self, identity: &Identity) -> Result<(), MissingClaimRole> {
        let holds = |required: &[String], have: &[String]| {
            let has = |r: &String| have.binary_search(r).is_ok();
            required.is_empty()
                || match self.mode {
                    RoleMatch::Any => required.iter().any(has),
                    RoleMatch::All => required.iter().all(has),
                }
        };
        if !holds(&self.role_crzp, &crzp_roles(identity)) {
            return Err(MissingClaimRole::Crzp);
        }
        if !holds(&self.role_rpp, &rpp_roles(identity)) {
            return Err(MissingClaimRole::Rpp);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(claims: &[(&str, &str)]) -> Identity {
        let mut id = Identity::default();
        for (k, v) in claims {
            id.attributes.insert((*k).to_owned(), vec![(*v).to_owned()]);
        }
        id
    }

    fn req(crzp: &[&str], rpp: &[&str], mode: RoleMatch) -> RoleRequirement {
        RoleRequirement {
            role_crzp: crzp.iter().map(|s| (*s).to_owned()).collect(),
            role_rpp: rpp.iter().map(|s| (*s).to_owned()).collect(),
            mode,
        }
        .normalized()
    }

    #[test]
    fn claim_lists_are_split_trimmed_and_pairs_kept_whole() {
        let id =
            user(&[("role_cizp", "C100,C101, C110:C206"), ("role_crzp", "A100, A101"), ("role_rpp", "A100:A001,")]);
        assert_eq!(crzp_roles(&id), ["A100", "A101", "C100", "C101", "C110:C206"]);
        assert_eq!(rpp_roles(&id), ["A100:A001"]);
    }

    #[test]
    fn pairs_match_only_as_whole_entries() {
        let id = user(&[("role_crzp", "C110:C206")]);
        assert_eq!(req(&["C110"], &[], RoleMatch::Any).check(&id), Err(MissingClaimRole::Crzp));
        assert_eq!(req(&["C206"], &[], RoleMatch::Any).check(&id), Err(MissingClaimRole::Crzp));
        assert_eq!(req(&["c110:c206"], &[], RoleMatch::Any).check(&id), Err(MissingClaimRole::Crzp));
        assert_eq!(req(&["C110:C206"], &[], RoleMatch::Any).check(&id), Ok(()));
    }

    #[test]
    fn any_and_all_per_claim_and_claims_combine_with_and() {
        let id = user(&[("role_crzp", "A100, A101"), ("role_rpp", "A100:A001")]);
        assert_eq!(req(&["A100", "X"], &[], RoleMatch::Any).check(&id), Ok(()));
        assert_eq!(req(&["A100", "X"], &[], RoleMatch::All).check(&id), Err(MissingClaimRole::Crzp));
        assert_eq!(req(&["A100, A101"], &[], RoleMatch::All).check(&id), Ok(()));
        // Both claims must hold.
        assert_eq!(req(&["A100"], &["A100:A002"], RoleMatch::Any).check(&id), Err(MissingClaimRole::Rpp));
        assert_eq!(req(&["A100"], &["A100:A001"], RoleMatch::Any).check(&id), Ok(()));
        // An RPP role is not a CRŽP role, even when the code is the same.
        assert_eq!(req(&["A100:A001"], &[], RoleMatch::Any).check(&id), Err(MissingClaimRole::Crzp));
        // No claim at all: denied.
        assert_eq!(req(&["A100"], &[], RoleMatch::Any).check(&Identity::default()), Err(MissingClaimRole::Crzp));
        assert_eq!(req(&[], &[], RoleMatch::All).check(&Identity::default()), Ok(()));
    }

    #[test]
    fn config_key_role_cizp_is_an_alias() {
        let r: RoleRequirement = toml::from_str("role_cizp = [\"C100\"]\nmatch = \"all\"").unwrap();
        assert_eq!(r.role_crzp, ["C100"]);
        assert_eq!(r.mode, RoleMatch::All);
    }
}
