//! SAML attributes → [`Identity`] for NIA (nia.md §10), CAAIS SAML (caais.md §2.6) and EnviIAM
//! SAML (enviam.md §5.3). Attributes are renamed to the OIDC claim names of the same IdPs and
//! mapped by the one claims mapping (`oidc::identity`), so the two protocols cannot drift.
//! Base64 XML values (addresses, roles, documents) are parsed leniently but DTD-free.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::acs::SamlAssertion;
use super::reason::Refusal;
use crate::identity::{Identity, Loa};
use crate::xml::{parse_tree, Node, XmlError};

/// Which attribute profile a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// NIA eIDAS attribute catalogue (nia.md §10).
    Nia,
    /// CAAIS SAML attributes (caais.md §2).
    Caais,
    /// EnviIAM attributes (enviam.md §5.4).
    Enviam,
}

/// Options of the mapping that come from configuration.
#[derive(Debug, Clone, Default)]
pub struct MappingOptions {
    /// Refuse foreign eIDAS identities (BSI not starting with `CZ/CZ/`).
    pub refuse_foreign: bool,
    /// Attributes (by short name) that must be present, else the login is refused.
    pub required: Vec<String>,
}

/// Why the attributes cannot make an identity: the precise [`Refusal`] and a message for the
/// operator (attribute names only, never values: they are personal data).
#[derive(Debug, thiserror::Error)]
#[error("{detail}")]
pub struct MappingError {
    refusal: Refusal,
    detail: String,
}

impl MappingError {
    fn new(refusal: Refusal, detail: impl Into<String>) -> MappingError {
        MappingError { refusal, detail: detail.into() }
    }

    /// The precise reason.
    pub fn refusal(&self) -> Refusal {
        self.refusal
    }
}

/// The short name of an attribute: the last segment of a URI `Name` (so `…/CurrentFamilyName`
/// and `…/currentfamilyname` agree), else the `Name` itself. FriendlyName is not trusted to be
/// stable (NIA's `ZR10 IdType`).
fn short_name(name: &str) -> &str {
    name.trim().trim_end_matches('/').rsplit(['/', '#']).next().unwrap_or(name)
}

/// NIA and CAAIS short names (lower-cased, every spelling variant of nia.md §10.1 and
/// caais.md §2.6) → the OIDC claim names `oidc::identity` maps.
fn claim_for(short_lower: &str) -> Option<&'static str> {
    Some(match short_lower {
        "currentfamilyname" => "family_name",
        "currentgivenname" => "given_name",
        "dateofbirth" => "birthdate",
        "placeofbirth" => "birthplace",
        "countrycodeofbirth" => "country_of_birth",
        "email" => "email",
        "phonenumber" | "phone-number" => "phone_number",
        "legalentityshorcut" | "legalentityshortcut" => "legal_entity_shorcut",
        "lei" => "lei",
        "username" => "username",
        "degreebefore" => "degree_before",
        "degreeafter" => "degree_after",
        "legalentityname" => "legal_entity_name",
        "legalentityemail" => "legal_entity_email",
        "institutiontype" => "institution_type",
        "dateofdeath" => "date_of_death",
        "publicorganizationidentifier" => "public_organization_identifier",
        "authorizedprivateentitypersonaldatauseridentifier" => {
            "authorized_private_entity_personal_data_user_identifier"
        }
        _ => return None,
    })
}

/// Decodes a base64 XML attribute value and parses it as the children of a wrapper element
/// that declares NIA's `eidas:` prefix (CurrentAddress is a prefixed fragment without a root,
/// nia.md §10.2). Any XML declaration is dropped; a DTD is refused by the parser.
fn base64_xml(value: &str) -> Option<Node> {
    base64_xml_checked(value).ok()
}

/// [`base64_xml`], saying what is wrong (operator text, no content).
fn base64_xml_checked(value: &str) -> Result<Node, &'static str> {
    let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = B64.decode(compact).map_err(|_| "not base64")?;
    let text = String::from_utf8(bytes).map_err(|_| "not UTF-8")?;
    let body = match text.trim_start_matches('\u{feff}').trim_start() {
        t if t.starts_with("<?xml") => t.split_once("?>").map_or("", |(_, rest)| rest),
        t => t,
    };
    let wrapped = format!("<w xmlns:eidas=\"http://eidas.europa.eu/attributes/naturalperson\">{body}</w>");
    parse_tree(wrapped.as_bytes(), |_| Ok::<(), XmlError>(())).map_err(|_| "not well-formed XML")
}

/// Depth-first elements by local name, namespaces ignored (nia.md §10.3 "parse leniently").
fn find_all<'a>(node: &'a Node, local: &str, out: &mut Vec<&'a Node>) {
    for child in &node.children {
        if child.local.eq_ignore_ascii_case(local) {
            out.push(child);
        }
        find_all(child, local, out);
    }
}

fn text_of(node: &Node, local: &str) -> Option<String> {
    let mut found = Vec::new();
    find_all(node, local, &mut found);
    found.first().map(|n| n.text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// CurrentAddress → one line "Street 1/2, 11000 City" (nia.md §18.3 `X-Auth-Address`).
fn nia_address(value: &str) -> Option<String> {
    let xml = base64_xml(value)?;
    let street = text_of(&xml, "Thoroughfare");
    let area = text_of(&xml, "CvaddressArea");
    let locator = text_of(&xml, "LocatorDesignator");
    let first = match (street.or_else(|| area.clone()), locator) {
        (Some(s), Some(l)) => Some(format!("{s} {l}")),
        (s, l) => s.or(l),
    };
    let town = match (text_of(&xml, "PostCode"), text_of(&xml, "PostName").or(area)) {
        (Some(c), Some(n)) => Some(format!("{c} {n}")),
        (c, n) => c.or(n),
    };
    let parts: Vec<String> = first.into_iter().chain(town).collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// NIA FullIds → `[{type, document_id}]`; CAAIS DocumentIds likewise (`Type` attribute).
fn documents(xml: &Node) -> Vec<Value> {
    let mut out = Vec::new();
    let mut docs = Vec::new();
    find_all(xml, "Doklad", &mut docs);
    for d in docs {
        if let Some(number) = text_of(d, "Cislo") {
            out.push(json!({"type": text_of(d, "Druh").unwrap_or_default(), "document_id": number}));
        }
    }
    let mut ids = Vec::new();
    find_all(xml, "DocumentId", &mut ids);
    for d in ids.into_iter().filter(|d| !d.text.trim().is_empty()) {
        let kind = d.attrs.iter().find(|a| a.local == "Type").map_or("", |a| a.value.as_str());
        out.push(json!({"type": kind, "document_id": d.text.trim()}));
    }
    out
}

/// CAAIS AccessRoles / ActivityRoles (base64 XML, caais.md §2.6) → the OIDC claim shapes.
fn caais_roles(claims: &mut Map<String, Value>, short_lower: &str, xml: &Node) {
    let mut found = Vec::new();
    if short_lower == "accessroles" {
        find_all(xml, "AccessRoleCode", &mut found);
        let list = found.iter().map(|c| json!({"access_role_code": c.text.trim()}));
        append(claims, "access_roles", list);
    } else {
        find_all(xml, "Agenda", &mut found);
        let list = found.iter().map(|agenda| {
            let mut codes = Vec::new();
            find_all(agenda, "ActivityRoleCode", &mut codes);
            json!({
                "agenda_code": text_of(agenda, "AgendaCode").unwrap_or_default(),
                "activity_role_code": codes.iter().map(|c| c.text.trim().to_owned()).collect::<Vec<_>>(),
            })
        });
        append(claims, "activity_roles", list);
    }
}

/// Appends to the array claim `key` (several attribute values add up, none replaces another).
fn append(claims: &mut Map<String, Value>, key: &str, items: impl Iterator<Item = Value>) {
    match claims.entry(key.to_owned()).or_insert_with(|| Value::Array(Vec::new())) {
        Value::Array(list) => list.extend(items),
        other => *other = Value::Array(items.collect()),
    }
}

/// The first non-blank value of the attribute with short name `name` (case-insensitive: NIA
/// spells `tradresaID` and `tradresaid`).
fn raw_first<'a>(raw: &'a BTreeMap<String, Vec<String>>, name: &str) -> Option<&'a str> {
    raw.iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.iter().map(|s| s.trim()))
        .find(|s| !s.is_empty())
}

/// Maps a checked assertion to the normalized identity.
pub fn to_identity(
    profile: Profile,
    provider: &str,
    assertion: &SamlAssertion,
    options: &MappingOptions,
    now: u64,
) -> Result<Identity, MappingError> {
    let mut claims = Map::new();
    let mut raw: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut derived: Vec<(&str, String)> = Vec::new();
    let mut address = None;
    let mut docs = Vec::new();
    for attr in &assertion.attributes {
        let short = short_name(&attr.name);
        let lower = short.to_ascii_lowercase();
        raw.entry(short.to_owned()).or_default().extend(attr.values.iter().cloned());
        let Some(first) = attr.values.iter().map(|v| v.trim()).find(|v| !v.is_empty()) else { continue };
        match (profile, lower.as_str()) {
            (Profile::Enviam, _) => {
                claims.insert(short.to_owned(), Value::String(attr.values.join(",")));
            }
            (_, "currentaddress" | "currentaddresses") => address = nia_address(first),
            (_, "tradresaid") => {
                if let Some(code) = base64_xml(first).and_then(|x| text_of(&x, "adresniMistoKod")) {
                    derived.push(("address_ruian", code));
                }
            }
            (_, "fullids" | "documentids" | "accessroles" | "activityroles") => {
                // Every value, not only the first: an IdP (or an attacker's test of the
                // parser) may split the list, and a bad second value must not pass unseen.
                for value in attr.values.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
                    let xml = match base64_xml_checked(value) {
                        Ok(xml) => xml,
                        // CAAIS roles and documents decide what the user may do: a login that
                        // silently lost them would succeed with no roles and no trace (issue 15
                        // item 4c). Refuse, naming the attribute (never its value).
                        Err(why) if profile == Profile::Caais => {
                            return Err(MappingError::new(
                                Refusal::AttributeUndecodable,
                                format!("attribute {short} is {why} (base64 XML expected, caais.md §2.6)"),
                            ))
                        }
                        Err(why) => {
                            tracing::warn!(
                                attribute = short,
                                problem = why,
                                "SAML attribute value dropped: undecodable"
                            );
                            continue;
                        }
                    };
                    if lower.ends_with("roles") {
                        caais_roles(&mut claims, &lower, &xml);
                    } else {
                        docs.extend(documents(&xml));
                    }
                }
            }
            (_, "personidentified" | "isstatutoryrepresentative") => {
                let flag = first.eq_ignore_ascii_case("true") || first == "1";
                claims.insert(
                    if lower == "personidentified" { "person_identified" } else { "is_statutory_representative" }
                        .to_owned(),
                    Value::Bool(flag),
                );
            }
            (_, other) => {
                if let Some(claim) = claim_for(other) {
                    claims.insert(claim.to_owned(), Value::String(first.to_owned()));
                }
            }
        }
    }
    if profile == Profile::Nia {
        // IdType + IdNumber describe one document (nia.md §10.1 #13–14).
        if let (Some(t), Some(n)) = (raw_first(&raw, "IdType"), raw_first(&raw, "IdNumber")) {
            docs.push(json!({"type": t, "document_id": n}));
        }
    }
    if !docs.is_empty() {
        claims.insert("document_ids".to_owned(), Value::Array(docs));
    }

    // Subject: PersonIdentifier (the BSI) for NIA/CAAIS (nia.md §18.3), userUUID for EnviIAM,
    // else the NameID.
    let key = if profile == Profile::Enviam { "userUUID" } else { "PersonIdentifier" };
    let subject = raw_first(&raw, key).unwrap_or(assertion.name_id.trim()).to_owned();
    if subject.is_empty() {
        return Err(MappingError::new(
            Refusal::NoSubject,
            "no subject: neither the identifier attribute nor NameID has a value",
        ));
    }
    if profile == Profile::Nia {
        // eIDAS BSI `XX/YY/id` (nia.md §8.8): issuing country XX; foreign unless `CZ/CZ/`.
        // NIA's rule only: a CAAIS PersonIdentifier is a bare UUID (caais.md §1), so CAAIS users
        // were all "foreign" and `allow_foreign_eidas = false` refused every one of them.
        let foreign = !subject.starts_with("CZ/CZ/");
        if foreign && options.refuse_foreign {
            return Err(MappingError::new(
                Refusal::ForeignIdentity,
                "foreign eIDAS identity (BSI not issued CZ/CZ/) refused by configuration",
            ));
        }
        if let Some((country, _)) = subject.split_once('/') {
            derived.push(("subject_country", country.to_owned()));
        }
        derived.push(("foreign", foreign.to_string()));
    }
    for required in &options.required {
        if raw_first(&raw, required).is_none() {
            return Err(MappingError::new(
                Refusal::RequiredAttributeMissing,
                format!("required attribute {required:?} missing from the assertion"),
            ));
        }
    }
    claims.insert("sub".to_owned(), Value::String(subject));

    let mut identity = crate::provider::oidc::identity::to_identity(provider, &claims, None, now);
    identity.protocol = "saml2".to_owned();
    // The achieved LoA is the AuthnContextClassRef (nia.md §10.1 #16); EnviIAM's `loa`
    // attribute (mapped above) wins for it, its AuthnContext being CAS-internal.
    let achieved = assertion.authn_context.as_deref().and_then(Loa::parse_lenient);
    identity.loa = if profile == Profile::Enviam { identity.loa.or(achieved) } else { achieved };
    identity.authenticated_at = assertion.authn_instant.unwrap_or(now);
    identity.expires_at = identity.expires_at.or(assertion.session_not_on_or_after);
    if let Some(address) = address {
        identity.personal.get_or_insert_with(Default::default).address = Some(address);
    }
    for (k, v) in derived {
        raw.insert(k.to_owned(), vec![v]);
    }
    identity.attributes = raw.into();
    Ok(identity)
}

#[cfg(test)]
mod tests;
