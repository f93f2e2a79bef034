//! The identity header contract: which `X-Auth-*` headers an upstream receives, and how.
//!
//! Upstreams trust these headers blindly, so two rules hold everywhere: every client-sent
//! header in the identity namespace is removed before forwarding ([`IdentityNamespace`]), and
//! the values set here come only from [`Identity`]. Values that are not plain ASCII (Czech
//! diacritics) are encoded per app, because legacy apps disagree on what header bytes mean.

use std::borrow::Cow;

use http::{HeaderName, HeaderValue};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde::Deserialize;

use super::Identity;
use crate::http::header_spelling as spelling;

/// How non-ASCII header values are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeaderEncoding {
    /// Percent-encoded UTF-8 (`Ř` → `%C5%98`); ASCII passes unchanged. The default: it
    /// survives every proxy and header parser.
    #[default]
    Percent,
    /// Raw UTF-8 bytes (obs-text). Only for upstreams that decode header bytes as UTF-8.
    Utf8,
    /// windows-1250 bytes, for old Windows/Java apps; unmappable characters become `?`.
    #[serde(rename = "windows-1250")]
    Windows1250,
}

/// Whether a header is sent by default or only when the app opts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exposure {
    /// Sent unless disabled.
    Default,
    /// Personal data: sent only with `personal_data = true` (and never when the IdP flags the
    /// person as "do not record personal data").
    Personal,
}

/// One entry of the header contract.
pub struct Field {
    /// Default header name.
    pub header: &'static str,
    /// Default exposure.
    pub exposure: Exposure,
    /// Whether the value is a list (elements are escaped so `,` stays a separator).
    pub list: bool,
    /// Extracts the value from an identity; `None` means "send no header at all".
    pub extract: fn(&Identity) -> Option<Cow<'_, str>>,
    /// One-line description for the README and `aisgate check`.
    pub about: &'static str,
}

fn opt(value: &Option<String>) -> Option<Cow<'_, str>> {
    value.as_deref().filter(|v| !v.is_empty()).map(Cow::Borrowed)
}

fn org<'a>(id: &'a Identity, get: fn(&'a super::Organisation) -> &'a Option<String>) -> Option<Cow<'a, str>> {
    id.organisation.as_ref().and_then(|o| opt(get(o)))
}

fn personal<'a>(id: &'a Identity, get: fn(&'a super::PersonalData) -> &'a Option<String>) -> Option<Cow<'a, str>> {
    id.personal.as_ref().and_then(|p| opt(get(p)))
}

fn flag(value: Option<bool>) -> Option<Cow<'static, str>> {
    value.map(|v| Cow::Borrowed(if v { "true" } else { "false" }))
}

/// Separates list elements between extraction and encoding; no identity value contains it
/// (control characters are refused by every encoding).
const LIST_SEPARATOR: char = '\u{1f}';

fn nonempty_list(items: Vec<String>) -> Option<Cow<'static, str>> {
    (!items.is_empty()).then(|| Cow::Owned(items.join(&LIST_SEPARATOR.to_string())))
}

/// The default header contract, in the order headers are emitted.
pub static CONTRACT: &[Field] = &[
    Field {
        header: "X-Auth-Provider",
        exposure: Exposure::Default,
        list: false,
        extract: |i| Some(Cow::Borrowed(&i.provider)),
        about: "configured provider name",
    },
    Field {
        header: "X-Auth-Protocol",
        exposure: Exposure::Default,
        list: false,
        extract: |i| Some(Cow::Borrowed(&i.protocol)),
        about: "protocol and version: kaas-ws/v4_2 (KAAS, its version), saml2, oidc",
    },
    Field {
        header: "X-Auth-Subject",
        exposure: Exposure::Default,
        list: false,
        extract: |i| Some(Cow::Borrowed(&i.subject)),
        about: "stable user id within the provider (UzivatelId, BSI, sub)",
    },
    Field {
        header: "X-Auth-Username",
        exposure: Exposure::Default,
        list: false,
        extract: |i| opt(&i.username),
        about: "login name",
    },
    Field {
        header: "X-Auth-Given-Name",
        exposure: Exposure::Default,
        list: false,
        extract: |i| opt(&i.given_name),
        about: "given name",
    },
    Field {
        header: "X-Auth-Family-Name",
        exposure: Exposure::Default,
        list: false,
        extract: |i| opt(&i.family_name),
        about: "family name",
    },
    Field {
        header: "X-Auth-Title-Before",
        exposure: Exposure::Default,
        list: false,
        extract: |i| opt(&i.title_before),
        about: "titles before the name",
    },
    Field {
        header: "X-Auth-Title-After",
        exposure: Exposure::Default,
        list: false,
        extract: |i| opt(&i.title_after),
        about: "titles after the name",
    },
    Field {
        header: "X-Auth-Email",
        exposure: Exposure::Default,
        list: false,
        extract: |i| opt(&i.email),
        about: "e-mail",
    },
    Field {
        header: "X-Auth-Phone",
        exposure: Exposure::Default,
        list: false,
        extract: |i| opt(&i.phone),
        about: "phone number (self-asserted)",
    },
    Field {
        header: "X-Auth-Roles",
        exposure: Exposure::Default,
        list: true,
        extract: |i| nonempty_list(i.access_roles.clone()),
        about: "access roles, comma-separated",
    },
    Field {
        header: "X-Auth-Agenda-Roles",
        exposure: Exposure::Default,
        list: true,
        extract: |i| nonempty_list(i.agenda_roles.iter().map(ToString::to_string).collect()),
        about: "agenda roles as agenda:role, comma-separated",
    },
    Field {
        header: "X-Auth-Org-Ico",
        exposure: Exposure::Default,
        list: false,
        extract: |i| org(i, |o| &o.ico),
        about: "organisation IČO (string, padding as the IdP sends it)",
    },
    Field {
        header: "X-Auth-Org-Code",
        exposure: Exposure::Default,
        list: false,
        extract: |i| org(i, |o| &o.code),
        about: "organisation code (ZkratkaSubjektu)",
    },
    Field {
        header: "X-Auth-Org-Name",
        exposure: Exposure::Default,
        list: false,
        extract: |i| org(i, |o| &o.name),
        about: "organisation name",
    },
    Field {
        header: "X-Auth-Org-Email",
        exposure: Exposure::Default,
        list: false,
        extract: |i| org(i, |o| &o.email),
        about: "organisation official e-mail",
    },
    Field {
        header: "X-Auth-Org-Kind",
        exposure: Exposure::Default,
        list: false,
        extract: |i| i.organisation.as_ref().and_then(|o| o.kind).map(|k| Cow::Borrowed(k.as_str())),
        about: "OVM or SPUU",
    },
    Field {
        header: "X-Auth-Org-Ovm-Id",
        exposure: Exposure::Default,
        list: false,
        extract: |i| org(i, |o| &o.ovm_id),
        about: "OVM identifier",
    },
    Field {
        header: "X-Auth-Org-Spuu-Id",
        exposure: Exposure::Default,
        list: false,
        extract: |i| org(i, |o| &o.spuu_id),
        about: "SPUÚ identifier",
    },
    Field {
        header: "X-Auth-Org-Type",
        exposure: Exposure::Default,
        list: false,
        extract: |i| org(i, |o| &o.institution_type),
        about: "institution type code (TypInstituce)",
    },
    Field {
        header: "X-Auth-Loa",
        exposure: Exposure::Default,
        list: false,
        extract: |i| i.loa.map(|l| Cow::Borrowed(l.as_str())),
        about: "level of assurance: low, substantial or high",
    },
    Field {
        header: "X-Auth-Loa-Uri",
        exposure: Exposure::Default,
        list: false,
        extract: |i| i.loa.map(|l| Cow::Borrowed(l.uri())),
        about: "level of assurance as eIDAS URI",
    },
    Field {
        header: "X-Auth-Method",
        exposure: Exposure::Default,
        list: false,
        extract: |i| opt(&i.auth_method),
        about: "login method as the IdP names it (p-pwd, p-cert, p-nia, …)",
    },
    Field {
        header: "X-Auth-Identity-Verified",
        exposure: Exposure::Default,
        list: false,
        extract: |i| flag(i.identity_verified),
        about: "person verified against base registers: true/false",
    },
    Field {
        header: "X-Auth-Authn-Instant",
        exposure: Exposure::Default,
        list: false,
        extract: |i| Some(Cow::Owned(rfc3339(i.authenticated_at))),
        about: "time of authentication, RFC 3339 UTC",
    },
    Field {
        header: "X-Auth-No-Personal-Data",
        exposure: Exposure::Default,
        list: false,
        extract: |i| i.no_personal_data.then_some(Cow::Borrowed("true")),
        about: "present (true) when the IdP forbids recording personal data",
    },
    Field {
        header: "X-Auth-Legacy-Id",
        exposure: Exposure::Default,
        list: false,
        extract: |i| i.legacy.as_ref().map(|l| Cow::Borrowed(l.id.as_str())).filter(|v| !v.is_empty()),
        about: "legacy JIP/KAAS UzivatelId: the login's own, or the account linked to the CAAIS user",
    },
    Field {
        header: "X-Auth-Legacy-Username",
        exposure: Exposure::Default,
        list: false,
        extract: |i| i.legacy.as_ref().and_then(|l| opt(&l.username)),
        about: "legacy JIP/KAAS login name (with X-Auth-Legacy-Id)",
    },
    Field {
        header: "X-Auth-Legacy-Org",
        exposure: Exposure::Default,
        list: false,
        extract: |i| i.legacy.as_ref().and_then(|l| opt(&l.organisation)),
        about: "legacy JIP/KAAS organisation IČO (with X-Auth-Legacy-Id)",
    },
    Field {
        header: "X-Auth-Birth-Date",
        exposure: Exposure::Personal,
        list: false,
        extract: |i| personal(i, |p| &p.birth_date),
        about: "date of birth YYYY-MM-DD (personal data)",
    },
    Field {
        header: "X-Auth-Birth-Place",
        exposure: Exposure::Personal,
        list: false,
        extract: |i| personal(i, |p| &p.birth_place),
        about: "place of birth (personal data)",
    },
    Field {
        header: "X-Auth-Birth-Country",
        exposure: Exposure::Personal,
        list: false,
        extract: |i| personal(i, |p| &p.birth_country),
        about: "country of birth (personal data)",
    },
    Field {
        header: "X-Auth-Death-Date",
        exposure: Exposure::Personal,
        list: false,
        extract: |i| personal(i, |p| &p.death_date),
        about: "date of death (personal data)",
    },
    Field {
        header: "X-Auth-Address",
        exposure: Exposure::Personal,
        list: false,
        extract: |i| personal(i, |p| &p.address),
        about: "one-line address (personal data)",
    },
    Field {
        header: "X-Auth-Documents",
        exposure: Exposure::Personal,
        list: true,
        extract: |i| i.personal.as_ref().and_then(|p| nonempty_list(p.documents.clone())),
        about: "identity documents type:number (personal data)",
    },
];

/// Formats Unix seconds as RFC 3339 UTC (`2026-11-21T13:40:00Z`); kept under this name for
/// existing callers, implemented once in [`crate::date::format_rfc3339`].
pub fn rfc3339(unix: u64) -> String {
    crate::date::format_rfc3339(unix)
}

/// Per-app header mapping as written in the config (`[app.headers]`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderMappingConfig {
    /// Encoding of non-ASCII values.
    #[serde(default)]
    pub encoding: HeaderEncoding,
    /// Rename headers: default name → name sent upstream.
    #[serde(default)]
    pub rename: std::collections::BTreeMap<String, String>,
    /// Headers of the contract not to send.
    #[serde(default)]
    pub disable: Vec<String>,
    /// Send the personal-data headers (birth date, documents, address, …).
    #[serde(default)]
    pub personal_data: bool,
    /// Extra headers from raw provider attributes: header name → attribute name.
    #[serde(default)]
    pub attributes: std::collections::BTreeMap<String, String>,
    /// Add a signed identity token (JWT) header; needs `[identity_token]`.
    #[serde(default)]
    pub identity_token: bool,
    /// Name of the identity token header.
    #[serde(default = "default_token_header")]
    pub identity_token_header: String,
}

fn default_token_header() -> String {
    "X-Auth-Token".to_owned()
}

/// Errors in a header mapping; reported by `aisgate check` with the app's location.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MappingError {
    /// `rename`/`disable` names a header that is not in the contract.
    #[error("{0:?} is not a header of the contract (see README, header contract)")]
    UnknownHeader(String),
    /// A header name is not a valid HTTP field name.
    #[error("{0:?} is not a valid HTTP header name")]
    InvalidName(String),
    /// Two entries would send the same header.
    #[error("header {0:?} would be sent twice")]
    Duplicate(String),
}

enum Source {
    Contract(usize),
    Attribute(String),
}

/// A compiled per-app mapping: applied on every authenticated request.
pub struct HeaderMapping {
    entries: Vec<(HeaderName, Source, bool)>,
    encoding: HeaderEncoding,
    personal_data: bool,
    /// Header for the signed identity token, if enabled.
    pub token_header: Option<HeaderName>,
}

impl HeaderMapping {
    /// Compiles a mapping, validating every header name.
    pub fn compile(cfg: &HeaderMappingConfig) -> Result<HeaderMapping, MappingError> {
        let known = |name: &str| CONTRACT.iter().position(|f| f.header.eq_ignore_ascii_case(name));
        for name in cfg.rename.keys().chain(cfg.disable.iter()) {
            known(name).ok_or_else(|| MappingError::UnknownHeader(name.clone()))?;
        }
        let parse = |name: &str| {
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| MappingError::InvalidName(name.to_owned()))
        };
        let mut entries = Vec::new();
        for (index, field) in CONTRACT.iter().enumerate() {
            if cfg.disable.iter().any(|d| d.eq_ignore_ascii_case(field.header)) {
                continue;
            }
            if field.exposure == Exposure::Personal && !cfg.personal_data {
                continue;
            }
            let name = cfg
                .rename
                .iter()
                .find(|(from, _)| from.eq_ignore_ascii_case(field.header))
                .map_or(field.header, |(_, to)| to.as_str());
            entries.push((parse(name)?, Source::Contract(index), field.list));
        }
        for (header, attribute) in &cfg.attributes {
            entries.push((parse(header)?, Source::Attribute(attribute.clone()), true));
        }
        let token_header = if cfg.identity_token { Some(parse(&cfg.identity_token_header)?) } else { None };
        let mut seen: Vec<&HeaderName> = entries.iter().map(|(n, _, _)| n).chain(token_header.iter()).collect();
        seen.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        if let Some(w) = seen.windows(2).find(|w| w[0] == w[1]) {
            return Err(MappingError::Duplicate(w[0].to_string()));
        }
        Ok(HeaderMapping { entries, encoding: cfg.encoding, personal_data: cfg.personal_data, token_header })
    }

    /// Every header name this mapping can send: they are stripped from client requests even
    /// when they fall outside the `X-Auth-` namespace (a rename to `Remote-User`, say).
    pub fn header_names(&self) -> impl Iterator<Item = &HeaderName> {
        self.entries.iter().map(|(n, _, _)| n).chain(self.token_header.iter())
    }

    /// The raw attributes this mapping reads (`[app.headers.attributes]` values): what a
    /// session must keep of [`Identity::attributes`] (`crate::session::kept`).
    pub fn attribute_names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().filter_map(|(_, source, _)| match source {
            Source::Attribute(name) => Some(name.as_str()),
            Source::Contract(_) => None,
        })
    }

    /// Renders the headers for one identity. Values that cannot be encoded are left out
    /// (the caller logs the header name, never the value).
    pub fn render(&self, identity: &Identity) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::with_capacity(self.entries.len());
        for (name, source, list) in &self.entries {
            let value: Option<Cow<'_, str>> = match source {
                Source::Contract(index) => {
                    let field = &CONTRACT[*index];
                    // Never forward personal data when the IdP says it must not be recorded.
                    if field.exposure == Exposure::Personal && (!self.personal_data || identity.no_personal_data) {
                        None
                    } else {
                        (field.extract)(identity)
                    }
                }
                Source::Attribute(attr) => {
                    identity.attributes.get(attr).filter(|v| !v.is_empty()).and_then(|v| nonempty_list(v.clone()))
                }
            };
            if let Some(value) = value {
                if let Some(encoded) = encode_value(&value, self.encoding, *list) {
                    out.push((name.clone(), encoded));
                } else {
                    tracing::warn!(header = %name, "identity header value not encodable; header left out");
                }
            }
        }
        out
    }
}

/// Characters escaped in percent mode: controls, non-ASCII and `%` itself (so decoding is
/// unambiguous); in list values also `,`, which separates elements.
const PERCENT_SET: &AsciiSet = &CONTROLS.add(b'%');
const PERCENT_LIST_SET: &AsciiSet = &PERCENT_SET.add(b',');

fn encode_value(value: &str, encoding: HeaderEncoding, list: bool) -> Option<HeaderValue> {
    // Raw encodings cannot escape a ',' inside an element; the README says so.
    let joined;
    let value = if list && encoding != HeaderEncoding::Percent {
        joined = value.replace(LIST_SEPARATOR, ",");
        joined.as_str()
    } else {
        value
    };
    match encoding {
        HeaderEncoding::Percent => {
            // Escape each element's own commas, then join elements with ','.
            let encoded: String = if list {
                value
                    .split(LIST_SEPARATOR)
                    .map(|part| utf8_percent_encode(part, PERCENT_LIST_SET).to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            } else {
                utf8_percent_encode(value, PERCENT_SET).to_string()
            };
            HeaderValue::from_str(&encoded).ok()
        }
        HeaderEncoding::Utf8 => {
            if value.chars().any(char::is_control) {
                return None;
            }
            HeaderValue::from_bytes(value.as_bytes()).ok()
        }
        HeaderEncoding::Windows1250 => {
            if value.chars().any(char::is_control) {
                return None;
            }
            let mut bytes = Vec::with_capacity(value.len());
            let mut buf = [0u8; 4];
            for ch in value.chars() {
                let (encoded, _, unmappable) = encoding_rs::WINDOWS_1250.encode(ch.encode_utf8(&mut buf));
                if unmappable {
                    bytes.push(b'?');
                } else {
                    bytes.extend_from_slice(&encoded);
                }
            }
            HeaderValue::from_bytes(&bytes).ok()
        }
    }
}

/// Recognizes client-sent headers in the identity namespace, whatever their case and
/// whether they use `_` or `-`.
///
/// Why `_` too: CGI-style upstreams (PHP, mod_wsgi) map both `X-Auth-User` and
/// `X_Auth_User` to `HTTP_X_AUTH_USER`, so a client could spoof one through the other.
pub struct IdentityNamespace {
    extra: Vec<String>,
}

impl IdentityNamespace {
    /// The `X-Auth-` namespace plus the given extra names (renamed headers, token header).
    pub fn new<'a>(extra: impl IntoIterator<Item = &'a str>) -> IdentityNamespace {
        let mut extra: Vec<String> = extra.into_iter().map(spelling::normalize).collect();
        extra.sort();
        extra.dedup();
        extra.retain(|n| !in_prefix(n));
        IdentityNamespace { extra }
    }

    /// Whether `name` (any case, `_` or `-`) belongs to the namespace.
    ///
    /// Runs for every header of every request, so it compares in place without allocating.
    pub fn contains(&self, name: &str) -> bool {
        let name = name.as_bytes();
        spelling::starts_with(name, b"x-auth-")
            || spelling::same(name, b"x-auth")
            || self.extra.iter().any(|e| spelling::same(name, e.as_bytes()))
    }
}

fn in_prefix(normalized: &str) -> bool {
    normalized == "x-auth" || normalized.starts_with("x-auth-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{AgendaRole, Loa, Organisation, PersonalData};

    fn sample() -> Identity {
        Identity {
            provider: "jip".into(),
            protocol: "kaas-ws/v4_2".into(),
            subject: "3f2504e0-4f89-11d3-9a0c-0305e82c3301".into(),
            username: Some("novakj".into()),
            given_name: Some("Jiří".into()),
            family_name: Some("Novák".into()),
            access_roles: vec!["ADMIN".into(), "READ,ER".into()],
            agenda_roles: vec![AgendaRole { agenda: "A100".into(), role: "CR01".into() }],
            organisation: Some(Box::new(Organisation { ico: Some("00007064".into()), ..Organisation::default() })),
            loa: Some(Loa::Substantial),
            authenticated_at: 1_763_732_400,
            personal: Some(Box::new(PersonalData { birth_date: Some("1980-01-02".into()), ..PersonalData::default() })),
            ..Identity::default()
        }
    }

    fn get<'a>(h: &'a [(HeaderName, HeaderValue)], name: &str) -> Option<&'a [u8]> {
        h.iter().find(|(n, _)| n.as_str().eq_ignore_ascii_case(name)).map(|(_, v)| v.as_bytes())
    }

    #[test]
    fn default_contract_percent_encodes_non_ascii_and_list_commas() {
        let m = HeaderMapping::compile(&HeaderMappingConfig::default()).unwrap();
        let h = m.render(&sample());
        assert_eq!(get(&h, "x-auth-given-name"), Some(&b"Ji%C5%99%C3%AD"[..]));
        assert_eq!(get(&h, "x-auth-roles"), Some(&b"ADMIN,READ%2CER"[..]));
        assert_eq!(get(&h, "x-auth-agenda-roles"), Some(&b"A100:CR01"[..]));
        assert_eq!(get(&h, "x-auth-loa"), Some(&b"substantial"[..]));
        assert_eq!(get(&h, "x-auth-loa-uri"), Some(&b"http://eidas.europa.eu/LoA/substantial"[..]));
        assert_eq!(get(&h, "x-auth-org-ico"), Some(&b"00007064"[..]));
        assert_eq!(get(&h, "x-auth-authn-instant"), Some(&b"2025-11-21T13:40:00Z"[..]));
        // Absent values produce no header at all, never an empty one.
        assert_eq!(get(&h, "x-auth-email"), None);
        // Personal data is opt-in.
        assert_eq!(get(&h, "x-auth-birth-date"), None);
    }

    #[test]
    fn raw_utf8_and_windows_1250_encodings() {
        let cfg = HeaderMappingConfig { encoding: HeaderEncoding::Utf8, ..HeaderMappingConfig::default() };
        let h = HeaderMapping::compile(&cfg).unwrap().render(&sample());
        assert_eq!(get(&h, "x-auth-family-name"), Some("Novák".as_bytes()));
        let cfg = HeaderMappingConfig { encoding: HeaderEncoding::Windows1250, ..HeaderMappingConfig::default() };
        let mut id = sample();
        id.given_name = Some("Jiří 漢".into());
        let h = HeaderMapping::compile(&cfg).unwrap().render(&id);
        assert_eq!(get(&h, "x-auth-given-name"), Some(&[b'J', b'i', 0xF8, 0xED, b' ', b'?'][..]));
    }

    #[test]
    fn rename_disable_and_personal_opt_in() {
        let mut cfg = HeaderMappingConfig::default();
        cfg.rename.insert("X-Auth-Username".into(), "Remote-User".into());
        cfg.disable.push("x-auth-roles".into());
        cfg.personal_data = true;
        let m = HeaderMapping::compile(&cfg).unwrap();
        let h = m.render(&sample());
        assert_eq!(get(&h, "remote-user"), Some(&b"novakj"[..]));
        assert_eq!(get(&h, "x-auth-username"), None);
        assert_eq!(get(&h, "x-auth-roles"), None);
        assert_eq!(get(&h, "x-auth-birth-date"), Some(&b"1980-01-02"[..]));
        assert!(m.header_names().any(|n| n == "remote-user"));
        // The IdP's "no personal data" flag wins over the app's opt-in.
        let mut id = sample();
        id.no_personal_data = true;
        assert_eq!(get(&m.render(&id), "x-auth-birth-date"), None);
    }

    #[test]
    fn mapping_errors_are_precise() {
        let mut cfg = HeaderMappingConfig::default();
        cfg.disable.push("X-Auth-Nope".into());
        assert_eq!(HeaderMapping::compile(&cfg).err(), Some(MappingError::UnknownHeader("X-Auth-Nope".into())));
        let mut cfg = HeaderMappingConfig::default();
        cfg.rename.insert("X-Auth-Username".into(), "bad header".into());
        assert_eq!(HeaderMapping::compile(&cfg).err(), Some(MappingError::InvalidName("bad header".into())));
        let mut cfg = HeaderMappingConfig::default();
        cfg.rename.insert("X-Auth-Username".into(), "X-Auth-Subject".into());
        assert_eq!(HeaderMapping::compile(&cfg).err(), Some(MappingError::Duplicate("x-auth-subject".into())));
    }

    #[test]
    fn namespace_matches_every_case_and_separator_variant() {
        let ns = IdentityNamespace::new(["Remote-User"]);
        for name in [
            "x-auth-subject",
            "X-AUTH-SUBJECT",
            "x_auth_subject",
            "X_Auth-Subject",
            "x-auth",
            "x-auth-anything-new",
            "remote_user",
            "REMOTE-USER",
        ] {
            assert!(ns.contains(name), "{name}");
        }
        for name in ["x-authorization", "authorization", "x-forwarded-for", "x-auth2"] {
            assert!(!ns.contains(name), "{name}");
        }
    }

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
