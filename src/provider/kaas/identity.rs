//! Mapping every attribute of every service version onto [`Identity`].

use super::soap::{KaasAttributes, ServiceVersion};
use crate::identity::{AgendaRole, Identity, Loa, OrgKind, Organisation, PersonalData};
use crate::provider::ProviderError;

fn some(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// Maps every attribute of every version onto [`Identity`].
pub fn to_identity(provider: &str, version: ServiceVersion, a: KaasAttributes) -> Result<Identity, ProviderError> {
    let subject = some(a.user_id.clone())
        .or_else(|| some(a.uzivatel_id.clone()))
        .ok_or_else(|| ProviderError::with_context(super::Failure::ResponseInvalid, "OK without UzivatelId"))?;
    let ovm_id = some(a.identifikator_ovm.clone());
    let spuu_id = some(a.identifikator_spuu.clone());
    let kind = match (&ovm_id, &spuu_id) {
        (Some(_), _) => Some(OrgKind::Ovm),
        (None, Some(_)) => Some(OrgKind::Spuu),
        _ => None,
    };
    let organisation = Organisation {
        ico: some(a.ic_subjektu.clone()),
        code: some(a.zkratka_subjektu.clone()),
        name: some(a.nazev_subjektu.clone()),
        email: some(a.email_subjektu.clone()),
        kind,
        ovm_id,
        spuu_id,
        institution_type: a.typ_instituce.map(|t| t.to_string()),
    };
    let method = some(a.typ_prihlaseni.clone());
    // TypPrihlaseniNia when NIA was used; otherwise the CAAIS mapping of the login method.
    let loa = some(a.typ_prihlaseni_nia.clone()).and_then(|l| Loa::parse_lenient(&l)).or(match method.as_deref() {
        Some("p-pwd") => Some(Loa::Low),
        Some("p-cert") => Some(Loa::Substantial),
        _ => None,
    });
    let no_personal_data = a.neevidovat_osobni_udaje == Some(true);
    let personal = if no_personal_data { None } else { personal_data(&a) };
    let mut attributes = std::collections::BTreeMap::new();
    let mut raw = |name: &str, value: Option<String>| {
        if let Some(v) = some(value) {
            attributes.insert(name.to_owned(), vec![v]);
        }
    };
    raw("UzivatelId", a.uzivatel_id.clone());
    raw("userRequestIp", a.user_request_ip.clone());
    raw("OvmPrimarni", a.ovm_primarni.map(|b| b.to_string()));
    raw("TimeLimitedId", a.time_limited_id.clone());
    if let Some(p) = &a.pracoviste {
        raw("Pracoviste.Id", p.id.clone());
        raw("Pracoviste.Nazev", p.nazev.clone());
        raw("Pracoviste.Adresa", p.adresa.clone());
        raw("Pracoviste.KodAdresy", p.kod_adresy.clone());
    }
    let has_org = organisation != Organisation::default();
    Ok(Identity {
        provider: provider.to_owned(),
        protocol: format!("kaas-ws/{}", version.as_str()),
        subject,
        username: some(a.username),
        given_name: some(a.jmeno),
        family_name: some(a.prijmeni),
        title_before: some(a.titul_pred),
        title_after: some(a.titul_za),
        email: some(a.email),
        phone: None,
        organisation: has_org.then(|| Box::new(organisation)),
        access_roles: a.pristupove_role.into_iter().filter(|r| !r.trim().is_empty()).collect(),
        agenda_roles: a
            .cinnostni_role
            .into_iter()
            .flat_map(|(agenda, roles)| roles.into_iter().map(move |role| AgendaRole { agenda: agenda.clone(), role }))
            .collect(),
        loa,
        auth_method: method,
        identity_verified: a.osoba_ztotoznena,
        authenticated_at: crate::session::now_unix(),
        expires_at: None,
        personal: personal.map(Box::new),
        no_personal_data,
        attributes: attributes.into(),
        legacy: None,
    })
}

fn personal_data(a: &KaasAttributes) -> Option<PersonalData> {
    // Place and country come from the same branch of the XSD choice. The KAAS examples carry
    // both branches (kaas.md §16); the Czech one wins, so a Czech town is never paired with a
    // foreign country. MistoNarozeniCr implies the Czech Republic (SZR code 203).
    let (birth_place, birth_country) = match a.misto_narozeni.as_ref() {
        Some(p) => match (&p.cr, &p.svet) {
            (Some(cr), _) => (cr.nazev.clone(), Some("203".to_owned())),
            (None, Some(svet)) => (svet.misto.clone(), svet.stat.clone()),
            (None, None) => (None, None),
        },
        None => (None, None),
    };
    let data = PersonalData {
        birth_date: a.datum_narozeni.as_ref().map(|d| d.datum.clone()),
        death_date: a.datum_umrti.as_ref().map(|d| d.datum.clone()),
        birth_place,
        birth_country,
        documents: a.doklady.iter().map(|d| format!("{}:{}", d.typ.as_deref().unwrap_or(""), d.cislo)).collect(),
        address: None,
    };
    (data != PersonalData::default()).then_some(data)
}
