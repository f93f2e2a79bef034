//! Attribute mapping tests: the NIA catalogue with its spelling variants and base64 XML values,
//! foreign identities, CAAIS SAML and EnviIAM SAML attributes.

use super::*;
use crate::provider::saml::acs::SamlAttribute;
use crate::provider::saml::reason::Refusal;
use crate::sim::saml_response::{nia_current_address, nia_tradresa_id};

fn attr(name: &str, value: &str) -> SamlAttribute {
    SamlAttribute { name: name.to_owned(), friendly_name: None, values: vec![value.to_owned()] }
}

fn assertion(name_id: &str, attributes: Vec<SamlAttribute>) -> SamlAssertion {
    SamlAssertion {
        id: "_a".to_owned(),
        issuer: "urn:microsoft:cgg2010:fpsts".to_owned(),
        name_id: name_id.to_owned(),
        name_id_format: None,
        name_qualifier: None,
        sp_name_qualifier: None,
        session_index: Some("_s".to_owned()),
        authn_instant: Some(1000),
        session_not_on_or_after: None,
        authn_context: Some("http://eidas.europa.eu/LoA/substantial".to_owned()),
        not_on_or_after: 4600,
        audiences: Vec::new(),
        attributes,
    }
}

const BSI: &str = "CZ/CZ/2e3883ee-7e0d-47cb-8fee-2ea231a58ee6";
const EIDAS: &str = "http://eidas.europa.eu/attributes/naturalperson/";

fn nia_attrs() -> Vec<SamlAttribute> {
    let fullids = B64.encode(
        "<?xml version=\"1.0\"?><FullIds xmlns=\"http://schemas.eidentita.cz/moris/2022/identity/claims/fullids\">\
<Doklad><Cislo>111111980</Cislo><Druh>ID</Druh><PlatnostDo>2030-01-01</PlatnostDo></Doklad></FullIds>",
    );
    vec![
        attr(&format!("{EIDAS}PersonIdentifier"), BSI),
        attr(&format!("{EIDAS}CurrentFamilyName"), "FORMÁNEK"),
        attr(&format!("{EIDAS}CurrentGivenName"), "MILAN"),
        attr(&format!("{EIDAS}DateOfBirth"), "1968-03-29"),
        attr(&format!("{EIDAS}PlaceOfBirth"), "Hlízov"),
        attr("http://www.stork.gov.eu/1.0/countryCodeOfBirth", "CZ"),
        attr(&format!("{EIDAS}CurrentAddresses"), &nia_current_address("", "38", "Staré Křečany", "40761")),
        attr("http://schemas.eidentita.cz/moris/2016/identity/claims/tradresaid", &nia_tradresa_id("1236", "562343")),
        attr("http://www.stork.gov.eu/1.0/eMail", "milan@example.cz"),
        attr("http://schemas.eidentita.cz/moris/2016/identity/claims/phone-number", "+420777666555"),
        attr("http://schemas.eidentita.cz/moris/2022/identity/claims/fullids", &fullids),
        attr("http://www.stork.gov.eu/1.0/age", "57"),
    ]
}

#[test]
fn nia_catalogue_maps_names_birth_data_contacts_address_and_documents() {
    let a = assertion("ignored-nameid", nia_attrs());
    let id = to_identity(Profile::Nia, "nia", &a, &MappingOptions::default(), 5000).unwrap();
    assert_eq!(id.protocol, "saml2");
    assert_eq!(id.subject, BSI);
    assert_eq!((id.given_name.as_deref(), id.family_name.as_deref()), (Some("MILAN"), Some("FORMÁNEK")));
    assert_eq!(id.email.as_deref(), Some("milan@example.cz"));
    assert_eq!(id.phone.as_deref(), Some("+420777666555"));
    assert_eq!(id.loa, Some(Loa::Substantial));
    assert_eq!(id.authenticated_at, 1000);
    let p = id.personal.clone().unwrap();
    assert_eq!(p.birth_date.as_deref(), Some("1968-03-29"));
    assert_eq!(p.birth_place.as_deref(), Some("Hlízov"));
    assert_eq!(p.birth_country.as_deref(), Some("CZ"));
    assert_eq!(p.address.as_deref(), Some("Staré Křečany 38, 40761 Staré Křečany"));
    assert_eq!(p.documents, vec!["ID:111111980"]);
    assert_eq!(id.attributes["address_ruian"], vec!["1236"]);
    assert_eq!(id.attributes["subject_country"], vec!["CZ"]);
    assert_eq!(id.attributes["foreign"], vec!["false"]);
    assert_eq!(id.attributes["age"], vec!["57"]);
}

#[test]
fn nia_subject_falls_back_to_name_id_without_person_identifier() {
    let a = assertion(BSI, vec![attr(&format!("{EIDAS}CurrentGivenName"), "MILAN")]);
    assert_eq!(to_identity(Profile::Nia, "nia", &a, &MappingOptions::default(), 5000).unwrap().subject, BSI);
}

#[test]
fn foreign_eidas_identity_is_flagged_or_refused() {
    let a = assertion("x", vec![attr(&format!("{EIDAS}PersonIdentifier"), "SE/CZ/198611062384")]);
    let id = to_identity(Profile::Nia, "nia", &a, &MappingOptions::default(), 5000).unwrap();
    assert_eq!(id.attributes["foreign"], vec!["true"]);
    assert_eq!(id.attributes["subject_country"], vec!["SE"]);
    let refuse = MappingOptions { refuse_foreign: true, ..Default::default() };
    let err = to_identity(Profile::Nia, "nia", &a, &refuse, 5000).unwrap_err();
    assert_eq!(err.refusal(), Refusal::ForeignIdentity);
    assert!(err.to_string().contains("foreign"), "{err}");
}

#[test]
fn missing_required_attribute_is_refused() {
    let a = assertion(BSI, nia_attrs());
    let opts = MappingOptions { required: vec!["IdNumber".to_owned()], ..Default::default() };
    let err = to_identity(Profile::Nia, "nia", &a, &opts, 5000).unwrap_err();
    assert_eq!(err.refusal(), Refusal::RequiredAttributeMissing);
    assert!(err.to_string().contains("\"IdNumber\""), "{err}");
    let opts = MappingOptions { required: vec!["currentfamilyname".to_owned()], ..Default::default() };
    to_identity(Profile::Nia, "nia", &a, &opts, 5000).unwrap();
}

#[test]
fn damaged_base64_address_is_ignored_not_fatal() {
    let a = assertion(BSI, vec![attr(&format!("{EIDAS}CurrentAddress"), "PGVpZGFzOl!!!")]);
    let id = to_identity(Profile::Nia, "nia", &a, &MappingOptions::default(), 5000).unwrap();
    assert_eq!(id.personal, None);
}

#[test]
fn caais_saml_attributes_map_roles_organisation_and_documents() {
    let roles = B64.encode(
        "<AccessRoles><AccessRoleCode>editor</AccessRoleCode><AccessRoleCode>spravce</AccessRoleCode></AccessRoles>",
    );
    let activity = B64.encode(
        "<ActivityRoles>\n  <Agenda><AgendaCode>K100</AgendaCode><ActivityRoleCode>CR1111</ActivityRoleCode>\
<ActivityRoleCode>CR2222</ActivityRoleCode></Agenda></ActivityRoles>",
    );
    let docs = B64.encode("<DocumentIds><DocumentId Type=\"P\">222</DocumentId></DocumentIds>");
    let a = assertion(
        "nameid",
        vec![
            attr(&format!("{EIDAS}PersonIdentifier"), BSI),
            attr("Username", "humphrey"),
            attr("DegreeBefore", "Ing."),
            attr("LegalEntityShorcut", "MF"),
            attr("http://eidas.europa.eu/attributes/legalperson/LEI", "00006947"),
            attr("PublicOrganizationIdentifier", "00006947"),
            attr("AccessRoles", &roles),
            attr("ActivityRoles", &activity),
            attr("DocumentIds", &docs),
            attr("PersonIdentified", "true"),
        ],
    );
    let id = to_identity(Profile::Caais, "caais", &a, &MappingOptions::default(), 5000).unwrap();
    assert_eq!(id.subject, BSI);
    assert_eq!(id.username.as_deref(), Some("humphrey"));
    assert_eq!(id.title_before.as_deref(), Some("Ing."));
    assert_eq!(id.access_roles, vec!["editor", "spravce"]);
    assert_eq!(id.agenda_roles.iter().map(ToString::to_string).collect::<Vec<_>>(), ["K100:CR1111", "K100:CR2222"]);
    let org = id.organisation.unwrap();
    assert_eq!((org.code.as_deref(), org.ico.as_deref()), (Some("MF"), Some("00006947")));
    assert_eq!(id.identity_verified, Some(true));
    assert_eq!(id.personal.unwrap().documents, vec!["P:222"]);
}

#[test]
fn enviam_saml_attributes_map_uuid_roles_and_loa() {
    let uuid = "123e4567-e89b-12d3-a456-426655440000";
    let a = assertion(
        uuid,
        vec![
            attr("userUUID", uuid),
            attr("login", "custuser"),
            attr("given_name", "Otto"),
            attr("family_name", "Klus"),
            attr("role_cizp", "C100,C101, C110:C206"),
            attr("role_rpp", "A100:ACR01,A110:ACR06"),
            attr("loa", "high"),
        ],
    );
    let mut a = a;
    a.authn_context = Some("urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport".to_owned());
    let id = to_identity(Profile::Enviam, "enviam", &a, &MappingOptions::default(), 5000).unwrap();
    assert_eq!(id.subject, uuid);
    assert_eq!(id.username.as_deref(), Some("custuser"));
    assert_eq!(id.access_roles, vec!["C100", "C101", "C110:C206"]);
    assert_eq!(id.agenda_roles.iter().map(ToString::to_string).collect::<Vec<_>>(), ["A100:ACR01", "A110:ACR06"]);
    assert_eq!(id.loa, Some(Loa::High));
    assert!(!id.attributes.contains_key("foreign"));
}

/// Issue 15 item 4c: an undecodable CAAIS roles/documents value (bad base64, or base64 of
/// malformed XML) used to be dropped silently — a login with no roles and no trace. Now it is
/// refused, naming the attribute (not its value).
#[test]
fn undecodable_caais_base64_xml_attributes_refuse_the_login() {
    let good_roles = B64.encode("<AccessRoles><AccessRoleCode>editor</AccessRoleCode></AccessRoles>");
    for name in ["AccessRoles", "ActivityRoles", "DocumentIds"] {
        for (value, why) in
            [("!!not-base64!!".to_owned(), "not base64"), (B64.encode("<AccessRoles><x>"), "not well-formed XML")]
        {
            let a = assertion(
                "nameid",
                vec![
                    attr(&format!("{EIDAS}PersonIdentifier"), "6e25f1a8-b1b8-4f47-9a4b-1b2c3d4e5f60"),
                    attr("AccessRoles", &good_roles),
                    attr(name, &value),
                ],
            );
            let a = if name == "AccessRoles" { assertion("nameid", vec![attr(name, &value)]) } else { a };
            let err = to_identity(Profile::Caais, "caais", &a, &MappingOptions::default(), 5000).unwrap_err();
            assert_eq!(err.refusal(), Refusal::AttributeUndecodable, "{name}: {err}");
            assert_eq!(err.to_string(), format!("attribute {name} is {why} (base64 XML expected, caais.md §2.6)"));
        }
    }
}

/// Review of issue 15 item 4c: only the first value of a multi-valued CAAIS base64-XML
/// attribute was decoded, so an undecodable second value passed without a trace and the
/// roles of a second valid value were lost. Every value counts now.
#[test]
fn every_value_of_a_multi_valued_caais_role_attribute_is_decoded_and_checked() {
    let roles = |codes: &[&str]| {
        let inner: String = codes.iter().map(|c| format!("<AccessRoleCode>{c}</AccessRoleCode>")).collect();
        B64.encode(format!("<AccessRoles>{inner}</AccessRoles>"))
    };
    let multi = |values: Vec<String>| SamlAttribute { name: "AccessRoles".to_owned(), friendly_name: None, values };
    let a = assertion("nameid", vec![multi(vec![roles(&["editor"]), "!!not-base64!!".to_owned()])]);
    let err = to_identity(Profile::Caais, "caais", &a, &MappingOptions::default(), 5000).unwrap_err();
    assert_eq!(err.refusal(), Refusal::AttributeUndecodable, "{err}");
    let a = assertion("nameid", vec![multi(vec![roles(&["editor"]), roles(&["spravce", "C101"])])]);
    let id = to_identity(Profile::Caais, "caais", &a, &MappingOptions::default(), 5000).unwrap();
    assert_eq!(id.access_roles, vec!["C101", "editor", "spravce"]);
}

/// Issue 15 item 4c: the `CZ/CZ/` foreign-eIDAS rule is NIA's; a CAAIS PersonIdentifier is a
/// bare UUID, so every CAAIS user was `foreign` and `allow_foreign_eidas = false` refused all.
#[test]
fn caais_users_are_never_foreign_eidas_identities() {
    let a =
        assertion("nameid", vec![attr(&format!("{EIDAS}PersonIdentifier"), "6e25f1a8-b1b8-4f47-9a4b-1b2c3d4e5f60")]);
    let refuse = MappingOptions { refuse_foreign: true, ..Default::default() };
    let id = to_identity(Profile::Caais, "caais", &a, &refuse, 5000).unwrap();
    assert!(!id.attributes.contains_key("foreign"), "{:?}", id.attributes.get("foreign"));
    assert!(!id.attributes.contains_key("subject_country"));
}
