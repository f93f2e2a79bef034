//! OIDC claims → [`Identity`], for CAAIS (caais.md §1.8) and EnviIAM (enviam.md §5.3) names.
//!
//! Absent claims and `""` are the same thing (CAAIS sends empty degrees). Every claim is also
//! kept in `Identity.attributes` as strings, so custom header mappings can reach claims this
//! mapping does not know; structured values are kept as compact JSON.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::identity::{AgendaRole, Identity, Loa, OrgKind, Organisation, PersonalData};

fn text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn first(claims: &Map<String, Value>, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| text(claims, n))
}

/// EnviIAM lists: `"A100, A101"` → `["A100", "A101"]`.
fn comma_list(value: &str) -> impl Iterator<Item = String> + '_ {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

fn access_roles(claims: &Map<String, Value>) -> Vec<String> {
    let mut roles = Vec::new();
    // CAAIS: [{"access_role_code": "editor"}]; plain strings tolerated.
    if let Some(Value::Array(list)) = claims.get("access_roles") {
        for item in list {
            let code = match item {
                Value::Object(o) => o.get("access_role_code").and_then(Value::as_str),
                Value::String(s) => Some(s.as_str()),
                _ => None,
            };
            roles.extend(code.map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned));
        }
    }
    // EnviIAM: "A100, A101"; `role_cizp` is the spelling of the SAML example (enviam.md §5.3).
    for name in ["role_crzp", "role_cizp"] {
        if let Some(list) = claims.get(name).and_then(Value::as_str) {
            roles.extend(comma_list(list));
        }
    }
    roles.sort();
    roles.dedup();
    roles
}

fn agenda_roles(claims: &Map<String, Value>) -> Vec<AgendaRole> {
    let mut roles = Vec::new();
    // CAAIS: [{"agenda_code": "K100", "activity_role_code": ["CR1111", "CR2222"]}].
    if let Some(Value::Array(list)) = claims.get("activity_roles") {
        for item in list.iter().filter_map(Value::as_object) {
            let Some(agenda) = item.get("agenda_code").and_then(Value::as_str).filter(|a| !a.trim().is_empty()) else {
                continue;
            };
            let codes: Vec<&str> = match item.get("activity_role_code") {
                Some(Value::Array(codes)) => codes.iter().filter_map(Value::as_str).collect(),
                Some(Value::String(code)) => vec![code.as_str()],
                _ => Vec::new(),
            };
            for code in codes.into_iter().map(str::trim).filter(|c| !c.is_empty()) {
                roles.push(AgendaRole { agenda: agenda.trim().to_owned(), role: code.to_owned() });
            }
        }
    }
    // EnviIAM: "A100:A001,A101:A002" (only after a JIP/KAAS login).
    if let Some(list) = claims.get("role_rpp").and_then(Value::as_str) {
        for pair in comma_list(list) {
            if let Some((agenda, role)) = pair.split_once(':') {
                roles.push(AgendaRole { agenda: agenda.trim().to_owned(), role: role.trim().to_owned() });
            }
        }
    }
    roles.sort();
    roles.dedup();
    roles
}

fn organisation(claims: &Map<String, Value>) -> Option<Organisation> {
    let ovm_id = text(claims, "public_organization_identifier");
    let spuu_id = text(claims, "authorized_private_entity_personal_data_user_identifier");
    let kind = match (&ovm_id, &spuu_id) {
        (Some(_), _) => Some(OrgKind::Ovm),
        (None, Some(_)) => Some(OrgKind::Spuu),
        _ => None,
    };
    let org = Organisation {
        ico: text(claims, "lei"),
        // `legal_entity_shorcut` (sic) is what CAAIS sends; the correct spelling is accepted too.
        code: first(claims, &["legal_entity_shorcut", "legal_entity_shortcut"]),
        name: text(claims, "legal_entity_name"),
        email: text(claims, "legal_entity_email"),
        kind,
        ovm_id,
        spuu_id,
        institution_type: text(claims, "institution_type"),
    };
    (org != Organisation::default()).then_some(org)
}

fn personal(claims: &Map<String, Value>) -> Option<PersonalData> {
    let documents = match claims.get("document_ids") {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|d| {
                let id = d.get("document_id").and_then(Value::as_str)?;
                Some(format!("{}:{id}", d.get("type").and_then(Value::as_str).unwrap_or("")))
            })
            .collect(),
        _ => Vec::new(),
    };
    let data = PersonalData {
        birth_date: text(claims, "birthdate"),
        birth_place: text(claims, "birthplace"),
        birth_country: text(claims, "country_of_birth"),
        death_date: text(claims, "date_of_death"),
        documents,
        address: None,
    };
    (data != PersonalData::default()).then_some(data)
}

fn as_strings(value: &Value) -> Vec<String> {
    match value {
        Value::Null => Vec::new(),
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(as_strings).collect(),
        other => vec![other.to_string()],
    }
}

/// Parses `SSOExpiration`, whose format EnviIAM does not document (enviam.md §5.3): Unix
/// seconds or milliseconds (number or string), or RFC 3339 / ISO 8601 UTC or with offset.
pub fn parse_instant(value: &Value) -> Option<u64> {
    let from_number = |n: u64| if n > 100_000_000_000 { n / 1000 } else { n };
    match value {
        Value::Number(n) => n.as_u64().map(from_number),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(n) = s.parse::<u64>() {
                return Some(from_number(n));
            }
            parse_rfc3339(s)
        }
        _ => None,
    }
}

/// Parses an RFC 3339 / `xs:dateTime` instant to Unix seconds; kept under this name for
/// existing callers, implemented once in [`crate::date::parse_rfc3339`].
pub(crate) fn parse_rfc3339(s: &str) -> Option<u64> {
    crate::date::parse_rfc3339(s)
}

/// Maps verified claims onto [`Identity`]. `configured_loa` is the LoA the client registration
/// guarantees (CAAIS conveys none, caais.md §1.9); a `loa` or `acr` claim wins over it.
pub fn to_identity(provider: &str, claims: &Map<String, Value>, configured_loa: Option<Loa>, now: u64) -> Identity {
    let subject = text(claims, "sub").unwrap_or_default();
    let loa = first(claims, &["loa", "acr"]).and_then(|l| Loa::parse_lenient(&l)).or(configured_loa);
    let mut attributes = BTreeMap::new();
    for (name, value) in claims {
        let values = as_strings(value);
        if !values.is_empty() {
            attributes.insert(name.clone(), values);
        }
    }
    Identity {
        provider: provider.to_owned(),
        protocol: "oidc".to_owned(),
        subject,
        username: first(claims, &["username", "login", "preferred_username"]),
        given_name: text(claims, "given_name"),
        family_name: text(claims, "family_name"),
        title_before: text(claims, "degree_before"),
        title_after: text(claims, "degree_after"),
        email: text(claims, "email"),
        phone: first(claims, &["phone_number", "phone"]),
        organisation: organisation(claims).map(Box::new),
        access_roles: access_roles(claims),
        agenda_roles: agenda_roles(claims),
        loa,
        auth_method: None,
        identity_verified: claims.get("person_identified").and_then(Value::as_bool),
        authenticated_at: claims.get("auth_time").and_then(Value::as_u64).unwrap_or(now),
        // Only the SSO session's end caps the gateway session: the ID token's `exp` (30 min at
        // CAAIS) says when the token may be accepted, not how long the user stays logged in.
        expires_at: claims.get("SSOExpiration").and_then(parse_instant),
        personal: personal(claims).map(Box::new),
        no_personal_data: false,
        attributes: attributes.into(),
        legacy: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn caais_claims_map_roles_organisation_and_the_misspelt_shortcut() {
        let claims = map(serde_json::json!({
            "sub": "16b33670-a816-4c1a-8712-d99e9ff85fec", "username": "humphrey_appleby",
            "given_name": "Humphrey", "family_name": "Appleby", "degree_before": "Sir", "degree_after": "",
            "person_identified": false,
            "access_roles": [{"access_role_code": "editor"}, {"access_role_code": "spravce"}],
            "activity_roles": [{"agenda_code": "K100", "activity_role_code": ["CR1111", "CR2222"]}],
            "legal_entity_shorcut": "MF", "lei": "6947", "legal_entity_name": "Ministerstvo financí",
            "public_organization_identifier": "00006947", "institution_type": 1,
            "document_ids": [{"type": "Pas", "document_id": "123456789"}]
        }));
        let id = to_identity("caais", &claims, Some(Loa::Substantial), 1000);
        assert_eq!(id.username.as_deref(), Some("humphrey_appleby"));
        assert_eq!(id.title_before.as_deref(), Some("Sir"));
        assert_eq!(id.title_after, None);
        assert_eq!(id.access_roles, vec!["editor", "spravce"]);
        assert_eq!(id.agenda_roles.iter().map(ToString::to_string).collect::<Vec<_>>(), ["K100:CR1111", "K100:CR2222"]);
        let org = id.organisation.unwrap();
        assert_eq!((org.code.as_deref(), org.ico.as_deref(), org.kind), (Some("MF"), Some("6947"), Some(OrgKind::Ovm)));
        assert_eq!(org.institution_type.as_deref(), Some("1"));
        assert_eq!(id.loa, Some(Loa::Substantial));
        assert_eq!(id.identity_verified, Some(false));
        assert_eq!(id.personal.unwrap().documents, vec!["Pas:123456789"]);
        assert_eq!(
            id.attributes["access_roles"],
            vec![r#"{"access_role_code":"editor"}"#, r#"{"access_role_code":"spravce"}"#]
        );
        assert_eq!(id.expires_at, None);
    }

    #[test]
    fn enviam_claims_map_crzp_and_rpp_roles_loa_and_sso_expiration() {
        let claims = map(serde_json::json!({
            "sub": "123e4567-e89b-12d3-a456-426655440000", "login": "custuser", "phone": "+420777666555",
            "role_crzp": "A100, A101", "role_rpp": "A100:A001,A101:A002", "loa": "high",
            "SSOExpiration": "2020-11-25T01:39:38Z"
        }));
        let id = to_identity("enviam", &claims, None, 1000);
        assert_eq!(id.username.as_deref(), Some("custuser"));
        assert_eq!(id.access_roles, vec!["A100", "A101"]);
        assert_eq!(id.agenda_roles.iter().map(ToString::to_string).collect::<Vec<_>>(), ["A100:A001", "A101:A002"]);
        assert_eq!(id.loa, Some(Loa::High));
        assert_eq!(id.phone.as_deref(), Some("+420777666555"));
        assert_eq!(id.expires_at, Some(1_606_268_378));
    }

    #[test]
    fn sso_expiration_formats() {
        assert_eq!(parse_instant(&serde_json::json!(1_606_268_378)), Some(1_606_268_378));
        assert_eq!(parse_instant(&serde_json::json!(1_606_268_378_000u64)), Some(1_606_268_378));
        assert_eq!(parse_instant(&serde_json::json!("2020-11-25T02:39:38.123+01:00")), Some(1_606_268_378));
        assert_eq!(parse_instant(&serde_json::json!("1970-01-01T00:00:00Z")), Some(0));
        assert_eq!(parse_instant(&serde_json::json!("tomorrow")), None);
    }
}
