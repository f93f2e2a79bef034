//! SOAP 1.1 codec for the JIP/KAAS authentication web services and their
//! CAAIS "JIP/KAAS legacy API" re-implementation.
//!
//! # What
//!
//! * Request builders for `heartBeat`, `authConfirmation` (auth WS v2_1,
//!   v3_4, v4_1, v4_2) and `directAuthUser` (direct WS v3_4, v4_1, v4_2, in
//!   either the KAAS-document namespace `…/atsUser/<ver>` or the WSDL/CAAIS
//!   namespace `…/atsUser/atsSzr/<ver>`).
//! * Response parsers that turn the SOAP answers into typed values
//!   ([`AuthConfirmation`], [`HeartBeat`], [`KaasAttributes`]).
//! * Response builders and a request parser for the test simulator, which
//!   can emit either XSD-valid output ([`ResponseStyle::Strict`]) or the
//!   shapes real servers send ([`ResponseStyle::Quirks`]).
//!
//! # Why it looks like this
//!
//! The official examples and the real servers disagree with the WSDL in many
//! small ways (element order, prefixes, empty elements for "no value",
//! `UzivatelId` of the wrong length, empty role lists, ...; see kaas.md §16
//! and caais.md §3.10). The parser is therefore deliberately lenient about
//! *shape*: it matches elements by (namespace, local name), never by prefix,
//! ignores order and unknown elements, treats every element as optional and
//! an empty element as absent. Child elements are accepted both qualified
//! (which the XSDs' `elementFormDefault="qualified"` prescribes) and
//! unqualified.
//!
//! It is strict about what matters for security: the response wrapper must be
//! in exactly the namespace the request used, and the envelope must be SOAP
//! 1.1.
//!
//! # Threat model
//!
//! The SOAP peer is authenticated by TLS, but the gateway still treats its
//! bytes as untrusted input (a misconfigured endpoint, an intercepting proxy,
//! or a compromised upstream must not get code execution or memory
//! exhaustion in the gateway):
//!
//! * Input is capped at [`MAX_RESPONSE_BYTES`]; nesting depth and element
//!   count are bounded.
//! * Any `<!DOCTYPE` and any entity reference other than the five predefined
//!   ones and character references is refused ([`SoapError::Dtd`]). Nothing
//!   is ever expanded, so billion-laughs and XXE are impossible.
//! * Error values never carry the `sessionId`, the one-time credentials, or
//!   element text; they carry only structural information (names,
//!   namespaces, byte offsets) and, for a SOAP Fault, the server's own
//!   `faultcode`/`faultstring`, truncated.
//! * `TimeLimitedId` (a bearer token) and request secrets are redacted from
//!   `Debug` output so that they do not end up in logs by accident.
//! * Builders XML-escape every value, so credentials cannot inject markup.

use std::fmt;
use std::str::FromStr;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

use crate::xml::{is_xml_char, truncate, XmlError};
pub(crate) use crate::xml::{parse_tree, Node};

#[cfg(test)]
mod tests;

/// Largest SOAP response (in bytes) the parsers accept (the tree parser's limit).
///
/// Real responses are a few kilobytes; anything near this size is an error
/// page or an attack.
pub const MAX_RESPONSE_BYTES: usize = crate::xml::MAX_DOCUMENT_BYTES;

/// SOAP 1.1 envelope namespace.
pub const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// `Content-Type` for every request (SOAP 1.1).
pub const CONTENT_TYPE: &str = "text/xml; charset=utf-8";

/// SOAPAction of `authConfirmation`: the empty string, per every
/// `GetCredential_*.wsdl` (`<soap:operation soapAction=""/>`).
pub const SOAP_ACTION_AUTH_CONFIRMATION: &str = "";

/// SOAPAction of `heartBeat`, per every `GetCredential_*.wsdl`.
pub const SOAP_ACTION_HEART_BEAT: &str = "heartBeat";

/// SOAPAction of `directAuthUser`, per every `DirectAuth_*.wsdl` (v3_4+).
pub const SOAP_ACTION_DIRECT_AUTH_USER: &str = "directAuthUserv2";

/// Formats a SOAPAction as the quoted string SOAP 1.1 §6.1.1 prescribes for
/// the HTTP header, e.g. `"heartBeat"` or `""`.
///
/// The CAAIS curl examples send the value unquoted; whether both forms are
/// accepted is an open question (kaas.md §19 Q4), so callers may choose.
pub fn soap_action_header_value(action: &str) -> String {
    format!("\"{action}\"")
}

// ---------------------------------------------------------------------------
// Versions and namespaces
// ---------------------------------------------------------------------------

/// auth-WS / direct-WS service version.
///
/// The version is selected only by the XML namespace of the request body;
/// the endpoint URL is the same for all versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum ServiceVersion {
    /// v2_1: basic identity and roles; auth WS only (no direct v2_1).
    V2_1,
    /// v3_4: adds subject, login method, workplace, OVM id, `TimeLimitedId`.
    V3_4,
    /// v4_1: adds personal data under § 56a(5) of Act 111/2009 Coll.
    V4_1,
    /// v4_2: adds `IdentifikatorSpuu` and `TypPrihlaseniNia`.
    #[default]
    V4_2,
}

impl ServiceVersion {
    /// Every supported version, oldest first.
    pub const ALL: [ServiceVersion; 4] =
        [ServiceVersion::V2_1, ServiceVersion::V3_4, ServiceVersion::V4_1, ServiceVersion::V4_2];

    /// The version token used in namespaces and configuration, e.g. `"v4_2"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceVersion::V2_1 => "v2_1",
            ServiceVersion::V3_4 => "v3_4",
            ServiceVersion::V4_1 => "v4_1",
            ServiceVersion::V4_2 => "v4_2",
        }
    }

    /// Namespace of the authentication WS (`heartBeat`, `authConfirmation`):
    /// `http://agw-as.cz/ats-ws/atsSzr/<ver>`.
    pub fn auth_namespace(self) -> &'static str {
        match self {
            ServiceVersion::V2_1 => "http://agw-as.cz/ats-ws/atsSzr/v2_1",
            ServiceVersion::V3_4 => "http://agw-as.cz/ats-ws/atsSzr/v3_4",
            ServiceVersion::V4_1 => "http://agw-as.cz/ats-ws/atsSzr/v4_1",
            ServiceVersion::V4_2 => "http://agw-as.cz/ats-ws/atsSzr/v4_2",
        }
    }

    /// Whether the v3_4 attribute additions exist in this version's XSD.
    #[cfg(feature = "sim")] // only the simulator's builders ask
    pub(crate) fn has_v3_4(self) -> bool {
        self >= ServiceVersion::V3_4
    }

    /// Whether the v4_1 personal-data attributes exist in this version's XSD.
    #[cfg(feature = "sim")] // only the simulator's builders ask
    pub(crate) fn has_v4_1(self) -> bool {
        self >= ServiceVersion::V4_1
    }

    /// Whether the v4_2 attributes exist in this version's XSD.
    #[cfg(feature = "sim")] // only the simulator's builders ask
    pub(crate) fn has_v4_2(self) -> bool {
        self >= ServiceVersion::V4_2
    }
}

impl fmt::Display for ServiceVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServiceVersion {
    type Err = SoapError;

    /// Accepts `v2_1`, `v3_4`, `v4_1`, `v4_2` (also `2_1`, `v2.1`, `2.1`,
    /// case-insensitively).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('.', "_");
        let norm = norm.strip_prefix('v').unwrap_or(&norm);
        match norm {
            "2_1" => Ok(ServiceVersion::V2_1),
            "3_4" => Ok(ServiceVersion::V3_4),
            "4_1" => Ok(ServiceVersion::V4_1),
            "4_2" => Ok(ServiceVersion::V4_2),
            _ => Err(SoapError::UnsupportedVersion(truncate(s))),
        }
    }
}

/// Namespace variant for `directAuthUser` (v3_4+).
///
/// The KAAS technical document's examples use `…/atsUser/<ver>`, while the
/// published WSDLs and CAAIS use `…/atsUser/atsSzr/<ver>` (kaas.md §19 Q5).
/// Which one KAAS accepts is unknown, hence configurable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DirectNamespace {
    /// `http://agw-as.cz/ats-ws/atsUser/<ver>` (JIP/KAAS document examples).
    AtsUser,
    /// `http://agw-as.cz/ats-ws/atsUser/atsSzr/<ver>` (WSDL `targetNamespace`,
    /// CAAIS). The default, because it is the machine-readable contract.
    #[default]
    AtsUserAtsSzr,
}

impl DirectNamespace {
    /// Both variants.
    pub const ALL: [DirectNamespace; 2] = [DirectNamespace::AtsUser, DirectNamespace::AtsUserAtsSzr];

    /// Configuration token: `"atsUser"` or `"atsUser/atsSzr"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DirectNamespace::AtsUser => "atsUser",
            DirectNamespace::AtsUserAtsSzr => "atsUser/atsSzr",
        }
    }

    /// The `directAuthUser` namespace for `version`.
    ///
    /// Fails with [`SoapError::UnsupportedVersion`] for v2_1: there is no
    /// direct WS v2_1, and direct v1 (real credentials) is deliberately not
    /// supported.
    pub fn namespace(self, version: ServiceVersion) -> Result<&'static str, SoapError> {
        use DirectNamespace::{AtsUser, AtsUserAtsSzr};
        use ServiceVersion::{V2_1, V3_4, V4_1, V4_2};
        Ok(match (self, version) {
            (_, V2_1) => return Err(SoapError::UnsupportedVersion("direct v2_1".into())),
            (AtsUser, V3_4) => "http://agw-as.cz/ats-ws/atsUser/v3_4",
            (AtsUser, V4_1) => "http://agw-as.cz/ats-ws/atsUser/v4_1",
            (AtsUser, V4_2) => "http://agw-as.cz/ats-ws/atsUser/v4_2",
            (AtsUserAtsSzr, V3_4) => "http://agw-as.cz/ats-ws/atsUser/atsSzr/v3_4",
            (AtsUserAtsSzr, V4_1) => "http://agw-as.cz/ats-ws/atsUser/atsSzr/v4_1",
            (AtsUserAtsSzr, V4_2) => "http://agw-as.cz/ats-ws/atsUser/atsSzr/v4_2",
        })
    }
}

impl fmt::Display for DirectNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DirectNamespace {
    type Err = SoapError;

    /// Accepts `atsUser` and `atsUser/atsSzr` (case-insensitively).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "atsuser" => Ok(DirectNamespace::AtsUser),
            "atsuser/atsszr" => Ok(DirectNamespace::AtsUserAtsSzr),
            _ => Err(SoapError::UnsupportedVersion(truncate(s))),
        }
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Everything that can go wrong while building or parsing a SOAP message.
///
/// Messages never contain the `sessionId`, credentials, or element text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SoapError {
    /// The input is larger than [`MAX_RESPONSE_BYTES`].
    #[error("SOAP message larger than {limit} bytes")]
    TooLarge {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// The input has a `<!DOCTYPE>` or a non-predefined entity reference.
    /// Refused without expansion (XXE / billion-laughs defence).
    #[error("SOAP message contains a DTD or a non-predefined entity reference")]
    Dtd,
    /// The input is not well-formed (namespace-aware) XML, is truncated, or
    /// exceeds the structural limits.
    #[error("malformed SOAP message: {0}")]
    Malformed(String),
    /// The document element is not a SOAP 1.1 `Envelope` with a `Body`
    /// (e.g. an HTML error page, the CAAIS 401 JSON body, or SOAP 1.2).
    #[error("not a SOAP 1.1 envelope")]
    NotSoapEnvelope,
    /// The SOAP `Body` has no element child.
    #[error("SOAP body is empty")]
    EmptyBody,
    /// The server answered with a SOAP Fault.
    #[error("SOAP fault {code}: {string}")]
    Fault {
        /// `faultcode` (truncated).
        code: String,
        /// `faultstring` (truncated).
        string: String,
    },
    /// The body element has an unexpected local name (another operation).
    #[error("unexpected SOAP body element `{found}`, expected `{expected}`")]
    UnexpectedElement {
        /// Local name that was expected.
        expected: &'static str,
        /// Local name that was found (truncated).
        found: String,
    },
    /// The response element is in a different namespace (version) than the
    /// request.
    #[error("response namespace `{found}` does not match request namespace `{expected}`")]
    WrongNamespace {
        /// Namespace of the request.
        expected: String,
        /// Namespace of the response element (empty if unqualified).
        found: String,
    },
    /// The response has no (non-empty) `status` element.
    #[error("SOAP response has no status")]
    MissingStatus,
    /// Unknown or unsupported service version / namespace variant.
    #[error("unsupported service version: {0}")]
    UnsupportedVersion(String),
    /// A value to be sent contains a character XML 1.0 cannot carry (e.g. a
    /// NUL or other C0 control character).
    #[error("value contains a character that XML 1.0 cannot represent")]
    InvalidCharacter,
}

impl From<XmlError> for SoapError {
    fn from(e: XmlError) -> SoapError {
        match e {
            XmlError::TooLarge { limit } => SoapError::TooLarge { limit },
            XmlError::Dtd => SoapError::Dtd,
            XmlError::Malformed(what) => SoapError::Malformed(what),
            // No element at all (e.g. a JSON error body) is "not SOAP", not malformed.
            XmlError::NoElement => SoapError::NotSoapEnvelope,
        }
    }
}

// ---------------------------------------------------------------------------
// Data model
// ---------------------------------------------------------------------------

/// Value of a response `status` element (`authConfirmation`,
/// `directAuthUser`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuthStatus {
    /// `OK`: the user is authenticated.
    Ok,
    /// `SESSION_NOT_FOUND`: unknown, expired or already redeemed token.
    SessionNotFound,
    /// `SYSTEM_ERROR`: internal server error; retry later.
    SystemError,
    /// `VERIFICATION_FAILED`: wrong or expired one-time credentials.
    VerificationFailed,
    /// Any other value, verbatim. Must be treated as a failure.
    Other(String),
}

impl AuthStatus {
    /// Wire value, e.g. `"SESSION_NOT_FOUND"`.
    pub fn as_str(&self) -> &str {
        match self {
            AuthStatus::Ok => "OK",
            AuthStatus::SessionNotFound => "SESSION_NOT_FOUND",
            AuthStatus::SystemError => "SYSTEM_ERROR",
            AuthStatus::VerificationFailed => "VERIFICATION_FAILED",
            AuthStatus::Other(s) => s,
        }
    }

    /// Parses a wire value. Surrounding whitespace and letter case are
    /// ignored, since nothing else can be meant.
    pub fn from_wire(s: &str) -> Self {
        let t = trim_xml(s);
        match t.to_ascii_uppercase().as_str() {
            "OK" => AuthStatus::Ok,
            "SESSION_NOT_FOUND" => AuthStatus::SessionNotFound,
            "SYSTEM_ERROR" => AuthStatus::SystemError,
            "VERIFICATION_FAILED" => AuthStatus::VerificationFailed,
            _ => AuthStatus::Other(t.to_owned()),
        }
    }

    /// `true` only for [`AuthStatus::Ok`].
    pub fn is_ok(&self) -> bool {
        *self == AuthStatus::Ok
    }
}

/// Parsed `authConfirmationResponse` or `directAuthUserResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfirmation {
    /// Result of the call. Only [`AuthStatus::Ok`] means "authenticated".
    pub status: AuthStatus,
    /// `description` (direct WS only): human-readable result text (Czech).
    pub description: Option<String>,
    /// User data, present if the response had an `attributes` element.
    /// The response-level `userRequestIp` is folded into it.
    pub attributes: Option<KaasAttributes>,
}

/// Parsed `heartBeatResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeartBeat {
    /// `status` was `OK` (case-insensitive). `ERROR` or anything else is
    /// `false`.
    pub ok: bool,
    /// `code`: error number when the service is unavailable.
    pub code: Option<String>,
    /// `message`: text about the cause of unavailability.
    pub message: Option<String>,
}

/// Correctness flag `@stav` of register data (`MistoNarozeni`,
/// `DatumNarozeni`, `DatumUmrti`, `Doklad`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StavUdaje {
    /// `spravny`: correct.
    Spravny,
    /// `nespravny`: marked as incorrect in the population register.
    Nespravny,
    /// `nedefinovany`: undefined.
    Nedefinovany,
    /// `nespravnyTvar`: incorrect form.
    NespravnyTvar,
    /// Any other value, verbatim.
    Other(String),
}

impl StavUdaje {
    /// Wire value, e.g. `"spravny"`.
    pub fn as_str(&self) -> &str {
        match self {
            StavUdaje::Spravny => "spravny",
            StavUdaje::Nespravny => "nespravny",
            StavUdaje::Nedefinovany => "nedefinovany",
            StavUdaje::NespravnyTvar => "nespravnyTvar",
            StavUdaje::Other(s) => s,
        }
    }

    /// Parses a wire value (case-insensitively).
    pub fn from_wire(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "spravny" => StavUdaje::Spravny,
            "nespravny" => StavUdaje::Nespravny,
            "nedefinovany" => StavUdaje::Nedefinovany,
            "nespravnytvar" => StavUdaje::NespravnyTvar,
            _ => StavUdaje::Other(s.to_owned()),
        }
    }
}

/// A date (`xs:date` text, kept verbatim, e.g. `1978-04-02`) with its
/// register correctness flag.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DatumSeStavem {
    /// The date text.
    pub datum: String,
    /// `@stav`.
    pub stav: Option<StavUdaje>,
}

/// `Pracoviste`: the user's workplace (v3_4+). Never empty when present.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pracoviste {
    /// `Id`: workplace identifier.
    pub id: Option<String>,
    /// `Nazev`: workplace name.
    pub nazev: Option<String>,
    /// `Adresa`: free-text address.
    pub adresa: Option<String>,
    /// `KodAdresy`: RUIAN address-point code (`xs:int`, kept as text).
    pub kod_adresy: Option<String>,
}

/// `MistoNarozeni/MistoNarozeniCr`: birth place in the Czech Republic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MistoNarozeniCr {
    /// RUIAN municipality code (element text).
    pub kod: Option<String>,
    /// `@nazev`: municipality name.
    pub nazev: Option<String>,
    /// `@mop`: whether the code is a city-district code.
    pub mop: Option<bool>,
}

/// `MistoNarozeni/MistoNarozeniSvet`: birth place abroad.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MistoNarozeniSvet {
    /// `stat`: country code (SZR code list), e.g. `804`.
    pub stat: Option<String>,
    /// `stat/@nazev`: country name, e.g. `Ukrajina`.
    pub stat_nazev: Option<String>,
    /// `misto`: place name, e.g. `KYJEV`.
    pub misto: Option<String>,
}

/// `MistoNarozeni`: place of birth (v4_1+).
///
/// The XSD makes `cr` and `svet` a choice, but the KAAS examples carry both,
/// so both are kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MistoNarozeni {
    /// `@stav`.
    pub stav: Option<StavUdaje>,
    /// `MistoNarozeniCr`.
    pub cr: Option<MistoNarozeniCr>,
    /// `MistoNarozeniSvet`.
    pub svet: Option<MistoNarozeniSvet>,
}

/// `Doklady/Doklad`: an electronically readable identity document (v4_1+).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Doklad {
    /// Document number (element text).
    pub cislo: String,
    /// `@typ`: `ID` identity card, `P` passport, `IR`, `VS`, `PS`, ...
    pub typ: Option<String>,
    /// `@stav`.
    pub stav: Option<StavUdaje>,
}

/// User data from `attributes` (union of all versions), plus the
/// response-level `userRequestIp`.
///
/// Every field is optional because real servers omit "required" elements;
/// empty elements are read as absent. Fields are named after the XML
/// elements. `Debug` redacts `time_limited_id`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct KaasAttributes {
    /// Response-level `userRequestIp` (not inside `attributes` on the wire).
    /// Informational only: a proxy address in KAAS, always `0.0.0.0` in CAAIS.
    pub user_request_ip: Option<String>,
    /// `Username`: login name.
    pub username: Option<String>,
    /// `UzivatelId`: the raw wire value (base64).
    pub uzivatel_id: Option<String>,
    /// Canonical user id derived from `UzivatelId`: the lower-case UUID when
    /// the base64 decodes to 16 raw bytes (KAAS/XSD form) or to 36-char UUID
    /// text (CAAIS form); otherwise the raw value unchanged.
    ///
    /// Builders use it only when `uzivatel_id` is `None`.
    pub user_id: Option<String>,
    /// `ZkratkaSubjektu`: subject abbreviation, unique subject id in JIP.
    pub zkratka_subjektu: Option<String>,
    /// `IcSubjektu`: subject IČO, verbatim (padding is inconsistent).
    pub ic_subjektu: Option<String>,
    /// `Jmeno`: given name.
    pub jmeno: Option<String>,
    /// `Prijmeni`: family name.
    pub prijmeni: Option<String>,
    /// `TitulPred`: title before the name.
    pub titul_pred: Option<String>,
    /// `TitulZa`: title after the name.
    pub titul_za: Option<String>,
    /// `PristupoveRole/role*`: access roles for this AIS. Empty element or
    /// absent element both give an empty list.
    pub pristupove_role: Vec<String>,
    /// `CinnostniRole/Agenda*`: `(KodAgendy, [KodCinnostniRole…])`.
    pub cinnostni_role: Vec<(String, Vec<String>)>,
    /// `Email` (v3_4+).
    pub email: Option<String>,
    /// `NazevSubjektu` (v3_4+).
    pub nazev_subjektu: Option<String>,
    /// `EmailSubjektu` (v3_4+).
    pub email_subjektu: Option<String>,
    /// `TypInstituce` (v3_4+): institution-type code. `None` if absent or not
    /// a number.
    pub typ_instituce: Option<u32>,
    /// `OvmPrimarni` (v3_4+): main subject among subjects sharing an IČO.
    pub ovm_primarni: Option<bool>,
    /// `TypPrihlaseni` (v3_4+): `p-pwd`, `p-cert`, `p-hotp`, `p-nia`, ...
    pub typ_prihlaseni: Option<String>,
    /// `TypPrihlaseniNia` (v4_2): eIDAS LoA URI of the NIA means.
    pub typ_prihlaseni_nia: Option<String>,
    /// `OsobaZtotoznena` (v3_4+): identity matched against ROB.
    pub osoba_ztotoznena: Option<bool>,
    /// `TokenAifo` (v3_4+): never populated in practice.
    pub token_aifo: Option<String>,
    /// `Pracoviste` (v3_4+).
    pub pracoviste: Option<Pracoviste>,
    /// `IdentifikatorOvm` (v3_4+).
    pub identifikator_ovm: Option<String>,
    /// `IdentifikatorSpuu` (v4_2).
    pub identifikator_spuu: Option<String>,
    /// `TimeLimitedId` (v3_4+): bearer token of local administrators.
    /// Sensitive; redacted by `Debug`.
    pub time_limited_id: Option<String>,
    /// `MistoNarozeni` (v4_1+).
    pub misto_narozeni: Option<MistoNarozeni>,
    /// `DatumNarozeni` (v4_1+).
    pub datum_narozeni: Option<DatumSeStavem>,
    /// `DatumUmrti` (v4_1+).
    pub datum_umrti: Option<DatumSeStavem>,
    /// `Doklady/Doklad*` (v4_1+).
    pub doklady: Vec<Doklad>,
    /// `NeevidovatOsobniUdaje` (v4_1+): personal data must not be recorded.
    pub neevidovat_osobni_udaje: Option<bool>,
}

impl fmt::Debug for KaasAttributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Written out by hand only to keep the bearer token out of logs.
        let tli = self.time_limited_id.as_ref().map(|_| "<redacted>");
        f.debug_struct("KaasAttributes")
            .field("user_request_ip", &self.user_request_ip)
            .field("username", &self.username)
            .field("uzivatel_id", &self.uzivatel_id)
            .field("user_id", &self.user_id)
            .field("zkratka_subjektu", &self.zkratka_subjektu)
            .field("ic_subjektu", &self.ic_subjektu)
            .field("jmeno", &self.jmeno)
            .field("prijmeni", &self.prijmeni)
            .field("titul_pred", &self.titul_pred)
            .field("titul_za", &self.titul_za)
            .field("pristupove_role", &self.pristupove_role)
            .field("cinnostni_role", &self.cinnostni_role)
            .field("email", &self.email)
            .field("nazev_subjektu", &self.nazev_subjektu)
            .field("email_subjektu", &self.email_subjektu)
            .field("typ_instituce", &self.typ_instituce)
            .field("ovm_primarni", &self.ovm_primarni)
            .field("typ_prihlaseni", &self.typ_prihlaseni)
            .field("typ_prihlaseni_nia", &self.typ_prihlaseni_nia)
            .field("osoba_ztotoznena", &self.osoba_ztotoznena)
            .field("token_aifo", &self.token_aifo)
            .field("pracoviste", &self.pracoviste)
            .field("identifikator_ovm", &self.identifikator_ovm)
            .field("identifikator_spuu", &self.identifikator_spuu)
            .field("time_limited_id", &tli)
            .field("misto_narozeni", &self.misto_narozeni)
            .field("datum_narozeni", &self.datum_narozeni)
            .field("datum_umrti", &self.datum_umrti)
            .field("doklady", &self.doklady)
            .field("neevidovat_osobni_udaje", &self.neevidovat_osobni_udaje)
            .finish()
    }
}

// ---------------------------------------------------------------------------
// Request builders (gateway side)
// ---------------------------------------------------------------------------

/// Builds the `authConfirmation` request envelope (kaas.md §10.6 template).
///
/// Send with [`SOAP_ACTION_AUTH_CONFIRMATION`]. The caller must already have
/// validated `session_id` (`^[A-Za-z0-9-]{30,50}$`); it is XML-escaped here
/// anyway, and characters XML cannot carry are replaced by U+FFFD.
pub fn auth_confirmation_request(version: ServiceVersion, session_id: &str) -> String {
    let mut sid = String::with_capacity(session_id.len());
    escape_text_lossy(session_id, &mut sid);
    request_envelope(&format!(
        "<m:authConfirmationRequest xmlns:m=\"{}\">\n      <m:sessionId>{sid}</m:sessionId>\n    </m:authConfirmationRequest>",
        version.auth_namespace()
    ))
}

/// Builds the `heartBeat` request envelope (empty `heartBeatRequest`).
///
/// Send with [`SOAP_ACTION_HEART_BEAT`].
pub fn heart_beat_request(version: ServiceVersion) -> String {
    request_envelope(&format!("<m:heartBeatRequest xmlns:m=\"{}\"/>", version.auth_namespace()))
}

/// Builds the `directAuthUser` request envelope for one-time credentials.
///
/// Send with [`SOAP_ACTION_DIRECT_AUTH_USER`]. Fails for v2_1 (no such
/// service; direct v1 with real credentials is deliberately unsupported) and
/// for credentials containing characters XML 1.0 cannot represent. The
/// credentials are XML-escaped; they never appear in errors.
pub fn direct_auth_user_request(
    version: ServiceVersion,
    ns: DirectNamespace,
    username: &str,
    password: &str,
) -> Result<String, SoapError> {
    let namespace = ns.namespace(version)?;
    let username = escape_text_strict(username)?;
    let password = escape_text_strict(password)?;
    Ok(request_envelope(&format!(
        "<m:directAuthUserRequest xmlns:m=\"{namespace}\">\n      <m:username>{username}</m:username>\n      <m:password>{password}</m:password>\n    </m:directAuthUserRequest>"
    )))
}

/// Wraps a request payload in the canonical SOAP 1.1 envelope.
fn request_envelope(payload: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soapenv:Envelope xmlns:soapenv=\"{SOAP_ENV_NS}\">\n  <soapenv:Body>\n    {payload}\n  </soapenv:Body>\n</soapenv:Envelope>\n"
    )
}

// ---------------------------------------------------------------------------
// Response parsers (gateway side)
// ---------------------------------------------------------------------------

/// Parses an `authConfirmation` response.
///
/// The `authConfirmationResponse` element must be in
/// `version.auth_namespace()`, otherwise [`SoapError::WrongNamespace`].
/// A non-`OK` status is *not* an error here; inspect `status`.
pub fn parse_auth_confirmation_response(xml: &[u8], version: ServiceVersion) -> Result<AuthConfirmation, SoapError> {
    let ns = version.auth_namespace();
    let payload = parse_body_payload(xml, "authConfirmationResponse", ns)?;
    read_auth_confirmation(&payload, ns)
}

/// Parses a `directAuthUser` response (v3_4+; v2_1 is
/// [`SoapError::UnsupportedVersion`]).
///
/// Accepts both the XSD order (`attributes`, `status`, `description`) and the
/// KAAS-document order with the undocumented `userRequestIp`.
pub fn parse_direct_auth_user_response(
    xml: &[u8],
    version: ServiceVersion,
    ns: DirectNamespace,
) -> Result<AuthConfirmation, SoapError> {
    let namespace = ns.namespace(version)?;
    let payload = parse_body_payload(xml, "directAuthUserResponse", namespace)?;
    read_auth_confirmation(&payload, namespace)
}

/// Parses a `heartBeat` response.
pub fn parse_heart_beat_response(xml: &[u8], version: ServiceVersion) -> Result<HeartBeat, SoapError> {
    let ns = version.auth_namespace();
    let payload = parse_body_payload(xml, "heartBeatResponse", ns)?;
    let status = read_status(&payload, ns)?;
    Ok(HeartBeat {
        ok: status.eq_ignore_ascii_case("OK"),
        code: payload.field_text(ns, "code"),
        message: payload.field_text(ns, "message"),
    })
}

/// Reads the common shape of both authentication responses.
fn read_auth_confirmation(payload: &Node, ns: &str) -> Result<AuthConfirmation, SoapError> {
    let status = AuthStatus::from_wire(&read_status(payload, ns)?);
    let description = payload.field_text(ns, "description");
    let user_request_ip = payload.field_text(ns, "userRequestIp");
    let attributes = payload.field(ns, "attributes").map(|node| {
        let mut attrs = read_attributes(node, ns);
        attrs.user_request_ip = user_request_ip;
        attrs
    });
    Ok(AuthConfirmation { status, description, attributes })
}

/// Returns the single non-empty `status` text.
///
/// Two `status` elements are refused: there is no safe way to pick one.
fn read_status(payload: &Node, ns: &str) -> Result<String, SoapError> {
    let mut statuses = payload.fields(ns, "status");
    let first = statuses.next().ok_or(SoapError::MissingStatus)?;
    if statuses.next().is_some() {
        return Err(SoapError::Malformed("duplicate status element".into()));
    }
    first.value().ok_or(SoapError::MissingStatus)
}

/// Maps the `attributes` element onto [`KaasAttributes`].
///
/// Every known element of every version is read regardless of the requested
/// version: extra data is harmless and keeps the parser forward compatible.
fn read_attributes(node: &Node, ns: &str) -> KaasAttributes {
    let text = |local: &str| node.field_text(ns, local);
    let uzivatel_id = text("UzivatelId");
    KaasAttributes {
        user_request_ip: None,
        username: text("Username"),
        user_id: uzivatel_id.as_deref().map(decode_user_id),
        uzivatel_id,
        zkratka_subjektu: text("ZkratkaSubjektu"),
        ic_subjektu: text("IcSubjektu"),
        jmeno: text("Jmeno"),
        prijmeni: text("Prijmeni"),
        titul_pred: text("TitulPred"),
        titul_za: text("TitulZa"),
        pristupove_role: read_access_roles(node, ns),
        cinnostni_role: read_agenda_roles(node, ns),
        email: text("Email"),
        nazev_subjektu: text("NazevSubjektu"),
        email_subjektu: text("EmailSubjektu"),
        typ_instituce: text("TypInstituce").and_then(|v| v.parse().ok()),
        ovm_primarni: text("OvmPrimarni").as_deref().and_then(parse_bool),
        typ_prihlaseni: text("TypPrihlaseni"),
        typ_prihlaseni_nia: text("TypPrihlaseniNia"),
        osoba_ztotoznena: text("OsobaZtotoznena").as_deref().and_then(parse_bool),
        token_aifo: text("TokenAifo"),
        pracoviste: node.field(ns, "Pracoviste").and_then(|n| read_workplace(n, ns)),
        identifikator_ovm: text("IdentifikatorOvm"),
        identifikator_spuu: text("IdentifikatorSpuu"),
        time_limited_id: text("TimeLimitedId"),
        misto_narozeni: node.field(ns, "MistoNarozeni").and_then(|n| read_birth_place(n, ns)),
        datum_narozeni: node.field(ns, "DatumNarozeni").and_then(|n| read_date(n, ns)),
        datum_umrti: node.field(ns, "DatumUmrti").and_then(|n| read_date(n, ns)),
        doklady: read_documents(node, ns),
        neevidovat_osobni_udaje: text("NeevidovatOsobniUdaje").as_deref().and_then(parse_bool),
    }
}

/// `PristupoveRole/role*`; empty `role` elements are skipped.
fn read_access_roles(node: &Node, ns: &str) -> Vec<String> {
    node.field(ns, "PristupoveRole")
        .map(|list| list.fields(ns, "role").filter_map(Node::value).collect())
        .unwrap_or_default()
}

/// `CinnostniRole/Agenda*`; an `Agenda` without `KodAgendy` cannot be keyed
/// and is skipped.
fn read_agenda_roles(node: &Node, ns: &str) -> Vec<(String, Vec<String>)> {
    let Some(list) = node.field(ns, "CinnostniRole") else {
        return Vec::new();
    };
    list.fields(ns, "Agenda")
        .filter_map(|agenda| {
            let code = agenda.field_text(ns, "KodAgendy")?;
            let roles = agenda.fields(ns, "KodCinnostniRole").filter_map(Node::value).collect();
            Some((code, roles))
        })
        .collect()
}

/// `Pracoviste`; `None` when it has no non-empty child.
fn read_workplace(node: &Node, ns: &str) -> Option<Pracoviste> {
    let workplace = Pracoviste {
        id: node.field_text(ns, "Id"),
        nazev: node.field_text(ns, "Nazev"),
        adresa: node.field_text(ns, "Adresa"),
        kod_adresy: node.field_text(ns, "KodAdresy"),
    };
    (workplace != Pracoviste::default()).then_some(workplace)
}

/// `MistoNarozeni`; `None` when it carries nothing at all.
fn read_birth_place(node: &Node, ns: &str) -> Option<MistoNarozeni> {
    let cr = node.field(ns, "MistoNarozeniCr").and_then(|n| {
        let cr = MistoNarozeniCr {
            kod: n.value(),
            nazev: n.attr(ns, "nazev"),
            mop: n.attr(ns, "mop").as_deref().and_then(parse_bool),
        };
        (cr != MistoNarozeniCr::default()).then_some(cr)
    });
    let svet = node.field(ns, "MistoNarozeniSvet").and_then(|n| {
        let stat = n.field(ns, "stat");
        let svet = MistoNarozeniSvet {
            stat: stat.and_then(Node::value),
            stat_nazev: stat.and_then(|s| s.attr(ns, "nazev")),
            misto: n.field_text(ns, "misto"),
        };
        (svet != MistoNarozeniSvet::default()).then_some(svet)
    });
    let place = MistoNarozeni { stav: node.attr(ns, "stav").map(|s| StavUdaje::from_wire(&s)), cr, svet };
    (place != MistoNarozeni::default()).then_some(place)
}

/// `DatumNarozeni` / `DatumUmrti`; an empty date is absent even if it has a
/// `stav`.
fn read_date(node: &Node, ns: &str) -> Option<DatumSeStavem> {
    Some(DatumSeStavem { datum: node.value()?, stav: node.attr(ns, "stav").map(|s| StavUdaje::from_wire(&s)) })
}

/// `Doklady/Doklad*`; a document without a number is skipped.
fn read_documents(node: &Node, ns: &str) -> Vec<Doklad> {
    let Some(list) = node.field(ns, "Doklady") else {
        return Vec::new();
    };
    list.fields(ns, "Doklad")
        .filter_map(|doc| {
            Some(Doklad {
                cislo: doc.value()?,
                typ: doc.attr(ns, "typ"),
                stav: doc.attr(ns, "stav").map(|s| StavUdaje::from_wire(&s)),
            })
        })
        .collect()
}

/// `xs:boolean` plus the `TRUE`/`FALSE` spelling of `OvmPrimarni`:
/// case-insensitive `true`/`false`/`1`/`0`. Anything else is unknown.
fn parse_bool(s: &str) -> Option<bool> {
    let t = trim_xml(s);
    if t.eq_ignore_ascii_case("true") || t == "1" {
        Some(true)
    } else if t.eq_ignore_ascii_case("false") || t == "0" {
        Some(false)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------
// UzivatelId
// ---------------------------------------------------------------------------

/// Base64 decoder that tolerates missing padding (robustness only; the
/// alphabet stays strict).
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Canonical form of a `UzivatelId` (see [`KaasAttributes::user_id`]).
fn decode_user_id(raw: &str) -> String {
    // xs:base64Binary allows embedded whitespace.
    let compact: String = raw.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    match LENIENT_BASE64.decode(compact.as_bytes()) {
        Ok(bytes) if bytes.len() == 16 => format_uuid(&bytes),
        Ok(bytes) => match std::str::from_utf8(&bytes) {
            Ok(text) if parse_uuid(text).is_some() => text.to_ascii_lowercase(),
            _ => raw.to_owned(),
        },
        Err(_) => raw.to_owned(),
    }
}

/// Parses hyphenated UUID text (`8-4-4-4-12` hex digits).
pub(crate) fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b.get(i) != Some(&b'-')) {
        return None;
    }
    let hex: Vec<u8> = b.iter().copied().filter(|&c| c != b'-').collect();
    let mut out = [0u8; 16];
    for (slot, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        let hi = char::from(*hi).to_digit(16)?;
        let lo = char::from(*lo).to_digit(16)?;
        // Both digits are < 16, so the value fits in a byte.
        *slot = u8::try_from(hi * 16 + lo).ok()?;
    }
    (hex.len() == 32).then_some(out)
}

/// Formats 16 bytes as lower-case hyphenated UUID text.
pub(crate) fn format_uuid(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(36);
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

// ---------------------------------------------------------------------------
// Escaping
// ---------------------------------------------------------------------------

/// Escapes `s` for element content (`attr = false`) or a double-quoted
/// attribute value (`attr = true`). Characters XML cannot carry become
/// U+FFFD; callers that must not alter data check [`is_xml_char`] first.
pub(crate) fn escape_into(s: &str, attr: bool, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attr => out.push_str("&quot;"),
            '\'' if attr => out.push_str("&apos;"),
            // Parsers normalise literal CR (and TAB/LF in attributes), so
            // these are sent as character references to survive verbatim.
            '\r' => out.push_str("&#13;"),
            '\n' if attr => out.push_str("&#10;"),
            '\t' if attr => out.push_str("&#9;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

/// Element-content escaping that replaces unrepresentable characters.
pub(crate) fn escape_text_lossy(s: &str, out: &mut String) {
    escape_into(s, false, out);
}

/// Element-content escaping that refuses unrepresentable characters, for
/// credentials that must arrive unaltered.
pub(crate) fn escape_text_strict(s: &str) -> Result<String, SoapError> {
    if !s.chars().all(is_xml_char) {
        return Err(SoapError::InvalidCharacter);
    }
    let mut out = String::with_capacity(s.len());
    escape_into(s, false, &mut out);
    Ok(out)
}

impl Node {
    /// A payload child: in the service namespace (XSD-conformant) or
    /// unqualified (lenient).
    pub(crate) fn is_field(&self, ns: &str, local: &str) -> bool {
        self.local == local && self.ns.as_deref().is_none_or(|n| n == ns)
    }

    pub(crate) fn field(&self, ns: &str, local: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.is_field(ns, local))
    }

    pub(crate) fn fields<'a>(&'a self, ns: &'a str, local: &'a str) -> impl Iterator<Item = &'a Node> {
        self.children.iter().filter(move |c| c.is_field(ns, local))
    }

    /// Trimmed text; `None` when empty (empty element = absent).
    pub(crate) fn value(&self) -> Option<String> {
        let t = trim_xml(&self.text);
        (!t.is_empty()).then(|| t.to_owned())
    }

    pub(crate) fn field_text(&self, ns: &str, local: &str) -> Option<String> {
        self.field(ns, local).and_then(Node::value)
    }

    /// Trimmed attribute value, unqualified (per `attributeFormDefault`) or
    /// in the service namespace; `None` when absent or empty.
    pub(crate) fn attr(&self, ns: &str, local: &str) -> Option<String> {
        self.attrs
            .iter()
            .find(|a| a.local == local && a.ns.as_deref().is_none_or(|n| n == ns))
            .map(|a| trim_xml(&a.value))
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }
}

/// Trims XML whitespace only (not e.g. NBSP, which is data).
pub(crate) fn trim_xml(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
}

/// Parses `xml` and returns the body's payload element after checking its
/// local name and namespace; turns a SOAP Fault into [`SoapError::Fault`].
fn parse_body_payload(xml: &[u8], local: &'static str, ns: &str) -> Result<Node, SoapError> {
    let payload = body_payload(parse_document(xml)?)?;
    if payload.local != local {
        return Err(SoapError::UnexpectedElement { expected: local, found: truncate(&payload.local) });
    }
    match payload.ns.as_deref() {
        Some(found) if found == ns => Ok(payload),
        found => Err(SoapError::WrongNamespace { expected: ns.to_owned(), found: truncate(found.unwrap_or("")) }),
    }
}

/// Extracts the first element child of `Envelope/Body`.
pub(crate) fn body_payload(envelope: Node) -> Result<Node, SoapError> {
    if !envelope.is(SOAP_ENV_NS, "Envelope") {
        return Err(SoapError::NotSoapEnvelope);
    }
    let body = envelope.children.into_iter().find(|c| c.is(SOAP_ENV_NS, "Body")).ok_or(SoapError::NotSoapEnvelope)?;
    let payload = body.children.into_iter().next().ok_or(SoapError::EmptyBody)?;
    if payload.is(SOAP_ENV_NS, "Fault") {
        return Err(fault_error(&payload));
    }
    Ok(payload)
}

/// Converts a SOAP 1.1 Fault element into an error. `faultcode` and
/// `faultstring` are unqualified per SOAP 1.1, but any namespace is accepted.
fn fault_error(fault: &Node) -> SoapError {
    let text = |local: &str| {
        fault.children.iter().find(|c| c.local == local).and_then(Node::value).map(|v| truncate(&v)).unwrap_or_default()
    };
    SoapError::Fault { code: text("faultcode"), string: text("faultstring") }
}

/// Parses a whole document into a [`Node`] tree with namespace resolution,
/// refusing DTDs and non-predefined entities and enforcing the size, depth
/// and element-count limits.
///
/// The first element must be a SOAP 1.1 `Envelope`; anything else is
/// reported as [`SoapError::NotSoapEnvelope`] without reading further.
pub(crate) fn parse_document(xml: &[u8]) -> Result<Node, SoapError> {
    parse_tree(xml, |node| if node.is(SOAP_ENV_NS, "Envelope") { Ok(()) } else { Err(SoapError::NotSoapEnvelope) })
}
