//! The normalized identity every protocol produces and every header mapping consumes.
//!
//! No protocol type leaves `provider/`: KAAS SOAP attributes, SAML assertions and OIDC claims
//! are all mapped onto [`Identity`] at the edge of their provider module. The header contract
//! (`headers.rs`) and the authorization rules read only this type, so a new protocol never
//! needs a change in the request path.

pub mod attributes;
pub mod headers;
pub mod label;
pub mod token;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use self::attributes::Attributes;
pub use self::label::LogLabelKey;

/// eIDAS level of assurance. Ordered: `Low < Substantial < High`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Loa {
    /// `http://eidas.europa.eu/LoA/low`
    Low,
    /// `http://eidas.europa.eu/LoA/substantial`
    Substantial,
    /// `http://eidas.europa.eu/LoA/high`
    High,
}

impl Loa {
    /// The eIDAS URI, as NIA and CAAIS send it in `AuthnContextClassRef`.
    pub fn uri(self) -> &'static str {
        match self {
            Loa::Low => "http://eidas.europa.eu/LoA/low",
            Loa::Substantial => "http://eidas.europa.eu/LoA/substantial",
            Loa::High => "http://eidas.europa.eu/LoA/high",
        }
    }

    /// The short name used in configuration and headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Loa::Low => "low",
            Loa::Substantial => "substantial",
            Loa::High => "high",
        }
    }

    /// Parses a short name or any of the URI families the Czech IdPs use
    /// (`…/LoA/x`, `…/NotNotified/LoA/x`, `…/LoA/NotNotified/x`), case-insensitively.
    pub fn parse_lenient(value: &str) -> Option<Loa> {
        let last = value.trim().rsplit('/').next()?.to_ascii_lowercase();
        match last.as_str() {
            "low" => Some(Loa::Low),
            "substantial" => Some(Loa::Substantial),
            "high" => Some(Loa::High),
            _ => None,
        }
    }
}

impl FromStr for Loa {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Loa::parse_lenient(s).ok_or_else(|| format!("unknown level of assurance {s:?}"))
    }
}

impl fmt::Display for Loa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Kind of public-administration subject the user acts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrgKind {
    /// Orgán veřejné moci (public authority).
    #[serde(rename = "OVM")]
    Ovm,
    /// Soukromoprávní uživatel údajů (private-law user of register data).
    #[serde(rename = "SPUU")]
    Spuu,
}

impl OrgKind {
    /// Header value: `OVM` or `SPUU`.
    pub fn as_str(self) -> &'static str {
        match self {
            OrgKind::Ovm => "OVM",
            OrgKind::Spuu => "SPUU",
        }
    }
}

/// The organisation (subject) the user logged in for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organisation {
    /// IČO, kept as a string: padding differs between IdPs.
    pub ico: Option<String>,
    /// Subject code (`ZkratkaSubjektu`, `legal_entity_shorcut`).
    pub code: Option<String>,
    /// Subject name.
    pub name: Option<String>,
    /// Official e-mail of the subject.
    pub email: Option<String>,
    /// OVM or SPUÚ.
    pub kind: Option<OrgKind>,
    /// `IdentifikatorOvm` / `public_organization_identifier`.
    pub ovm_id: Option<String>,
    /// `IdentifikatorSpuu`.
    pub spuu_id: Option<String>,
    /// Institution type code (`TypInstituce`).
    pub institution_type: Option<String>,
}

/// An agenda (activity) role: `agenda:role`, e.g. `A100:CR01`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AgendaRole {
    /// Agenda code (`KodAgendy`).
    pub agenda: String,
    /// Activity role code (`KodCinnostniRole`).
    pub role: String,
}

impl fmt::Display for AgendaRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.agenda, self.role)
    }
}

/// Personal data: forwarded only when an app opts in, never when the IdP flags the person
/// as "do not record personal data". `Debug` says only which fields are present.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalData {
    /// Date of birth, `YYYY-MM-DD`.
    pub birth_date: Option<String>,
    /// Place of birth (name).
    pub birth_place: Option<String>,
    /// Country of birth (code as the IdP gives it).
    pub birth_country: Option<String>,
    /// Date of death, `YYYY-MM-DD`.
    pub death_date: Option<String>,
    /// Identity documents as `type:number`.
    pub documents: Vec<String>,
    /// One-line postal address.
    pub address: Option<String>,
}

/// The authenticated user, as every protocol reports it after normalization.
///
/// Missing fields deserialize to their defaults (`check --explain --as` reads a partial one).
///
/// `Debug` prints no personal data: no subject, names, contacts, organisation details or
/// attribute values (see [`crate::redact`]).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Identity {
    /// Configured provider name (`[[provider]] name`).
    pub provider: String,
    /// Protocol and version: `kaas-ws/<version>` (e.g. `kaas-ws/v4_2`), `saml2`, `oidc`.
    pub protocol: String,
    /// Stable subject identifier within the provider (BSI, `sub`, `UzivatelId`).
    pub subject: String,
    /// Login name.
    pub username: Option<String>,
    /// Given name.
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// Academic titles before the name.
    pub title_before: Option<String>,
    /// Academic titles after the name.
    pub title_after: Option<String>,
    /// E-mail address (often self-asserted).
    pub email: Option<String>,
    /// Phone number (self-asserted).
    pub phone: Option<String>,
    /// Organisation the user acts for (boxed: absent for most citizens' logins, and a
    /// session should not pay for its eight fields inline).
    pub organisation: Option<Box<Organisation>>,
    /// Access roles of this application.
    pub access_roles: Vec<String>,
    /// Agenda roles.
    pub agenda_roles: Vec<AgendaRole>,
    /// Level of assurance of this login.
    pub loa: Option<Loa>,
    /// Login method as the IdP names it (`p-pwd`, `p-cert`, `p-nia`, …).
    pub auth_method: Option<String>,
    /// Whether the IdP verified the person against the base registers.
    pub identity_verified: Option<bool>,
    /// When the user authenticated, seconds since the Unix epoch.
    pub authenticated_at: u64,
    /// Upper bound on the session set by the IdP (token or SSO expiry), Unix seconds.
    pub expires_at: Option<u64>,
    /// Personal data, present only if the provider obtained it (boxed, like `organisation`).
    pub personal: Option<Box<PersonalData>>,
    /// The IdP flagged the person as "do not record personal data".
    pub no_personal_data: bool,
    /// Raw protocol attributes by name, for custom header mappings (a sorted slice: see
    /// [`Attributes`]).
    pub attributes: Attributes,
    /// The user's legacy JIP/KAAS account: their own for a legacy login, the linked one for a
    /// CAAIS login with an account link (see [`crate::links`]); absent otherwise.
    pub legacy: Option<Box<LegacyAccount>>,
}

/// A legacy JIP/KAAS account as the JIP/KAAS login names it: what a legacy app keyed its
/// user records on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LegacyAccount {
    /// `UzivatelId` of the JIP/KAAS login.
    pub id: String,
    /// Login name (`Username`) at JIP/KAAS.
    pub username: Option<String>,
    /// Organisation IČO (`IcSubjektu`) of the JIP/KAAS login.
    pub organisation: Option<String>,
}

impl fmt::Debug for PersonalData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::redact::opt;
        f.debug_struct("PersonalData")
            .field("birth_date", &opt(&self.birth_date))
            .field("birth_place", &opt(&self.birth_place))
            .field("birth_country", &opt(&self.birth_country))
            .field("death_date", &opt(&self.death_date))
            .field("documents", &self.documents.len())
            .field("address", &opt(&self.address))
            .finish()
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::redact::{opt, Redacted};
        f.debug_struct("Identity")
            .field("provider", &self.provider)
            .field("protocol", &self.protocol)
            .field("subject", &Redacted)
            .field("username", &opt(&self.username))
            .field("organisation", &opt(&self.organisation))
            .field("access_roles", &self.access_roles.len())
            .field("agenda_roles", &self.agenda_roles.len())
            .field("loa", &self.loa)
            .field("auth_method", &self.auth_method)
            .field("identity_verified", &self.identity_verified)
            .field("authenticated_at", &self.authenticated_at)
            .field("expires_at", &self.expires_at)
            .field("personal", &opt(&self.personal))
            .field("no_personal_data", &self.no_personal_data)
            .field("attributes", &self.attributes.keys().collect::<Vec<_>>())
            .field("legacy", &self.legacy.as_ref().map(|_| crate::redact::Redacted))
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// A display-safe, non-identifying label for logs: provider and a short HMAC of the
    /// subject under the server's label key ([`label`]).
    ///
    /// Logs must not carry personal data, so the subject is never printed, and a keyed MAC
    /// (not a plain hash) keeps guessable subjects from being recovered from the label.
    pub fn log_label(&self) -> String {
        self.log_label_with(&label::key())
    }

    /// [`Identity::log_label`] under `key`.
    pub fn log_label_with(&self, key: &LogLabelKey) -> String {
        format!("{}:{}", self.provider, key.label(self.subject.as_bytes(), 6))
    }

    /// Claims of the signed identity token: registered claims plus the non-personal identity.
    ///
    /// Personal data is never put in the token; apps that need it opt in to headers.
    pub fn token_claims(&self, issuer: &str, audience: &str, issued_at: u64, expires_at: u64) -> serde_json::Value {
        let org = self.organisation.as_ref();
        let mut claims = serde_json::json!({
            "iss": issuer,
            "aud": audience,
            "sub": self.subject,
            "iat": issued_at,
            "nbf": issued_at,
            "exp": expires_at,
            "idp": self.provider,
            "protocol": self.protocol,
            "auth_time": self.authenticated_at,
            "preferred_username": self.username,
            "given_name": self.given_name,
            "family_name": self.family_name,
            "email": self.email,
            "roles": self.access_roles,
            "agenda_roles": self.agenda_roles.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "loa": self.loa.map(Loa::uri),
            "org": org.map(|o| serde_json::json!({
                "ico": o.ico, "code": o.code, "name": o.name,
                "kind": o.kind.map(OrgKind::as_str), "ovm_id": o.ovm_id, "spuu_id": o.spuu_id,
            })),
            "legacy": self.legacy.as_ref().map(|l| serde_json::json!({
                "id": l.id, "username": l.username, "org": l.organisation,
            })),
        });
        // Like headers: an absent value is an absent claim, never `null` or `[]`.
        prune_empty(&mut claims);
        claims
    }

    /// Access roles plus agenda roles as `agenda:role`, for authorization rules.
    pub fn has_role(&self, role: &str) -> bool {
        self.access_roles.iter().any(|r| r == role)
            || self.agenda_roles.iter().any(|r| role.split_once(':') == Some((r.agenda.as_str(), r.role.as_str())))
    }
}

fn prune_empty(value: &mut serde_json::Value) {
    if let serde_json::Value::Object(map) = value {
        for v in map.values_mut() {
            prune_empty(v);
        }
        map.retain(|_, v| match v {
            serde_json::Value::Null => false,
            serde_json::Value::Array(a) => !a.is_empty(),
            serde_json::Value::Object(o) => !o.is_empty(),
            _ => true,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 15 review (item 12): `Identity`'s `Debug` hid `personal`, but `PersonalData`'s own
    /// derived `Debug` printed birth data, documents and address.
    #[test]
    fn personal_data_debug_prints_no_personal_data() {
        let personal = PersonalData {
            birth_date: Some("1970-01-01".into()),
            birth_place: Some("secret-place".into()),
            documents: vec!["ID:secret-123".into()],
            address: Some("secret-street 1".into()),
            ..PersonalData::default()
        };
        let text = format!("{personal:?}");
        assert!(!text.contains("secret") && !text.contains("1970"), "{text}");
    }

    #[test]
    fn loa_parses_every_uri_family() {
        assert_eq!(Loa::parse_lenient("http://eidas.europa.eu/LoA/substantial"), Some(Loa::Substantial));
        assert_eq!(Loa::parse_lenient("http://eidas.europa.eu/NotNotified/LoA/high"), Some(Loa::High));
        assert_eq!(Loa::parse_lenient("http://eidas.europa.eu/LoA/NotNotified/low"), Some(Loa::Low));
        assert_eq!(Loa::parse_lenient("LOW"), Some(Loa::Low));
        assert_eq!(Loa::parse_lenient("medium"), None);
        assert!(Loa::Low < Loa::Substantial && Loa::Substantial < Loa::High);
    }

    /// Issue 15 item 12: the label is an HMAC under a server key, not a plain hash anyone
    /// can recompute from a guessed subject.
    #[test]
    fn log_label_is_keyed_stable_per_key_and_not_a_plain_hash() {
        let id = Identity { provider: "nia".into(), subject: "CZ/CZ/secret-bsi".into(), ..Identity::default() };
        let (k1, k2) = (LogLabelKey::from_bytes(&[1; 32]), LogLabelKey::from_bytes(&[2; 32]));
        assert_eq!(id.log_label_with(&k1), id.log_label_with(&LogLabelKey::from_bytes(&[1; 32])), "stable per key");
        assert_ne!(id.log_label_with(&k1), id.log_label_with(&k2), "differs across keys");
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, id.subject.as_bytes());
        let plain: String = digest.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect();
        for key in [&k1, &k2] {
            let label = id.log_label_with(key);
            assert!(label.starts_with("nia:") && !label.contains("secret") && !label.contains(&plain), "{label}");
        }
    }

    #[test]
    fn debug_output_contains_no_personal_data() {
        let id = Identity {
            provider: "nia".into(),
            subject: "CZ/CZ/secret-bsi".into(),
            given_name: Some("Jan".into()),
            family_name: Some("Novák".into()),
            email: Some("jan@example.cz".into()),
            personal: Some(Box::new(PersonalData { birth_date: Some("1970-01-01".into()), ..PersonalData::default() })),
            attributes: [("CurrentAddress".to_owned(), vec!["Praha 1".to_owned()])].into(),
            ..Identity::default()
        };
        let dbg = format!("{id:?} {id:#?}");
        for secret in ["secret-bsi", "Jan", "Novák", "jan@example", "1970", "Praha"] {
            assert!(!dbg.contains(secret), "{secret} in {dbg}");
        }
        assert!(dbg.contains("nia") && dbg.contains("CurrentAddress"), "{dbg}");
    }

    #[test]
    fn roles_match_access_and_agenda_forms() {
        let id = Identity {
            access_roles: vec!["ADMIN".into()],
            agenda_roles: vec![AgendaRole { agenda: "A100".into(), role: "CR01".into() }],
            ..Identity::default()
        };
        assert!(id.has_role("ADMIN"));
        assert!(id.has_role("A100:CR01"));
        assert!(!id.has_role("A100:CR02"));
        assert!(!id.has_role("admin"));
    }

    #[test]
    fn token_claims_leave_out_absent_values() {
        let id = Identity { provider: "jip".into(), subject: "s".into(), ..Identity::default() };
        let claims = id.token_claims("https://gw", "app", 10, 70);
        let obj = claims.as_object().unwrap();
        assert_eq!(claims["sub"], "s");
        assert_eq!(claims["exp"], 70);
        assert!(!obj.contains_key("email") && !obj.contains_key("roles") && !obj.contains_key("org"));
        assert!(obj.values().all(|v| !v.is_null()));
    }

    #[test]
    fn log_label_does_not_contain_subject_legacy() {
        let id = Identity { provider: "jip".into(), subject: "CZ/CZ/secret".into(), ..Identity::default() };
        assert!(!id.log_label().contains("secret"));
        assert!(id.log_label().starts_with("jip:"));
    }
}
