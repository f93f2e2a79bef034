//! The simulator half of the KAAS SOAP codec: response builders (XSD-strict or with the
//! quirks real servers show) and the request parser of the simulated KAAS/CAAIS web services.
//! Split from [`crate::provider::kaas::soap`] so the gateway's codec (request builders,
//! response parsers) carries no simulator code into a production build.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::provider::kaas::soap::*;
use crate::xml::truncate;

// ---------------------------------------------------------------------------
// Response builders (simulator side)
// ---------------------------------------------------------------------------

/// How the simulator shapes its responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseStyle {
    /// Valid against the version's XSD, provided the attribute *values*
    /// satisfy the XSD facets (e.g. `Username` 4–50 chars, `TypInstituce`
    /// 1–100, at least one access role). XSD element order, `soapenv`/`ns2`
    /// prefixes, `UzivatelId` as base64 of 16 bytes, at most one of
    /// `MistoNarozeniCr`/`MistoNarozeniSvet`, and the required `description`
    /// in direct responses (no `userRequestIp` there: the XSD lacks it).
    Strict,
    /// The deviations seen from real servers and in the official examples.
    Quirks(Quirks),
}

/// Knobs for [`ResponseStyle::Quirks`]. `Default` gives the CAAIS shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quirks {
    /// Payload prefix (`ns2` CAAIS, `kaas`, `v4_2` KAAS); `None` or an empty
    /// string puts the payload in a default namespace. An invalid prefix
    /// falls back to `ns2`.
    pub prefix: Option<String>,
    /// Envelope prefix (`SOAP-ENV` CAAIS, `soapenv`/`soap` KAAS); empty means
    /// a default namespace. An invalid prefix falls back to `soapenv`.
    pub envelope_prefix: String,
    /// Emit `attributes` before `status` (CAAIS `directAuthUser`); otherwise
    /// the KAAS document order `status`, `description`, `userRequestIp`,
    /// `attributes` is used.
    pub attributes_before_status: bool,
    /// When `UzivatelId` is derived from `user_id`, send base64 of the
    /// 36-char UUID text (CAAIS) instead of 16 raw bytes (KAAS/XSD).
    pub base64_user_id: bool,
    /// Always send an empty `<PristupoveRole/>` (CAAIS users without roles),
    /// whatever `pristupove_role` holds.
    pub empty_access_roles: bool,
}

impl Default for Quirks {
    fn default() -> Self {
        Quirks {
            prefix: Some("ns2".into()),
            envelope_prefix: "SOAP-ENV".into(),
            attributes_before_status: false,
            base64_user_id: true,
            empty_access_roles: false,
        }
    }
}

/// Builds an `authConfirmationResponse` envelope.
///
/// Only elements that exist in `version`'s XSD are emitted. Absent values
/// become empty elements (as KAAS and CAAIS do), except the optional
/// `DatumNarozeni`/`DatumUmrti`/`Pracoviste` children, which are omitted.
/// `attrs.user_request_ip` becomes the response-level `userRequestIp`.
pub fn auth_confirmation_response(
    version: ServiceVersion,
    status: &AuthStatus,
    attrs: Option<&KaasAttributes>,
    style: ResponseStyle,
) -> String {
    let shape = Shape::new(&style);
    let mut w = XmlOut::new(shape.prefix);
    w.depth = 2;
    w.open_root("authConfirmationResponse", version.auth_namespace());
    let write_attrs = |w: &mut XmlOut| {
        if let Some(a) = attrs {
            write_attributes(w, version, a, &shape);
        }
    };
    if shape.attributes_first {
        write_attrs(&mut w);
    }
    w.leaf("status", status.as_str());
    if let Some(ip) = attrs.and_then(|a| a.user_request_ip.as_deref()) {
        w.leaf("userRequestIp", ip);
    }
    if !shape.attributes_first {
        write_attrs(&mut w);
    }
    w.close("authConfirmationResponse");
    response_envelope(shape.envelope_prefix, &w.buf)
}

/// Builds a `directAuthUserResponse` envelope with a status-derived
/// `description` (see [`direct_auth_user_response_with_description`]).
///
/// For v2_1 (no such service) a SOAP Fault is returned instead.
pub fn direct_auth_user_response(
    version: ServiceVersion,
    ns: DirectNamespace,
    status: &AuthStatus,
    attrs: Option<&KaasAttributes>,
    style: ResponseStyle,
) -> String {
    direct_auth_user_response_with_description(version, ns, status, None, attrs, style)
}

/// Builds a `directAuthUserResponse` envelope.
///
/// `description: None` uses a Czech default text for the status (the XSD
/// requires the element). Strict: `attributes`, `status`, `description`.
/// Quirks: see [`Quirks::attributes_before_status`]; `userRequestIp` is
/// emitted when present. For v2_1 a SOAP Fault is returned instead.
pub fn direct_auth_user_response_with_description(
    version: ServiceVersion,
    ns: DirectNamespace,
    status: &AuthStatus,
    description: Option<&str>,
    attrs: Option<&KaasAttributes>,
    style: ResponseStyle,
) -> String {
    let Ok(namespace) = ns.namespace(version) else {
        return soap_fault_response("SOAP-ENV:Client", "directAuthUser v2_1 does not exist");
    };
    let shape = Shape::new(&style);
    let description = description.unwrap_or_else(|| default_description(status));
    // The XSD sequence puts `attributes` first.
    let attributes_first = shape.strict || shape.attributes_first;
    let mut w = XmlOut::new(shape.prefix);
    w.depth = 2;
    w.open_root("directAuthUserResponse", namespace);
    let write_attrs = |w: &mut XmlOut| {
        if let Some(a) = attrs {
            write_attributes(w, version, a, &shape);
        }
    };
    if attributes_first {
        write_attrs(&mut w);
    }
    w.leaf("status", status.as_str());
    w.leaf("description", description);
    if !shape.strict {
        if let Some(ip) = attrs.and_then(|a| a.user_request_ip.as_deref()) {
            w.leaf("userRequestIp", ip);
        }
    }
    if !attributes_first {
        write_attrs(&mut w);
    }
    w.close("directAuthUserResponse");
    response_envelope(shape.envelope_prefix, &w.buf)
}

/// Builds a `heartBeatResponse` envelope (CAAIS shape: `SOAP-ENV`/`ns2`,
/// valid against the XSD).
pub fn heart_beat_response(version: ServiceVersion, ok: bool, code: Option<&str>, message: Option<&str>) -> String {
    let mut w = XmlOut::new("ns2");
    w.depth = 2;
    w.open_root("heartBeatResponse", version.auth_namespace());
    w.leaf("status", if ok { "OK" } else { "ERROR" });
    if let Some(code) = code {
        w.leaf("code", code);
    }
    if let Some(message) = message {
        w.leaf("message", message);
    }
    w.close("heartBeatResponse");
    response_envelope("SOAP-ENV", &w.buf)
}

/// Builds a SOAP 1.1 Fault envelope (for the simulator's error paths).
pub fn soap_fault_response(faultcode: &str, faultstring: &str) -> String {
    let mut w = XmlOut::new("");
    w.depth = 2;
    w.open_prefixed("SOAP-ENV:Fault");
    w.leaf("faultcode", faultcode);
    w.leaf("faultstring", faultstring);
    w.close_prefixed("SOAP-ENV:Fault");
    response_envelope("SOAP-ENV", &w.buf)
}

/// Default Czech `description` for a direct-WS status.
fn default_description(status: &AuthStatus) -> &'static str {
    match status {
        AuthStatus::Ok => "Autentizace proběhla úspěšně.",
        AuthStatus::VerificationFailed => "Ověření uživatele selhalo.",
        AuthStatus::SystemError => "Systémová chyba.",
        AuthStatus::SessionNotFound | AuthStatus::Other(_) => "Chyba.",
    }
}

/// Resolved output shape shared by the response builders.
struct Shape<'a> {
    strict: bool,
    prefix: &'a str,
    envelope_prefix: &'a str,
    attributes_first: bool,
    base64_user_id: bool,
    empty_access_roles: bool,
}

impl<'a> Shape<'a> {
    fn new(style: &'a ResponseStyle) -> Self {
        match style {
            ResponseStyle::Strict => Shape {
                strict: true,
                prefix: "ns2",
                envelope_prefix: "soapenv",
                attributes_first: false,
                base64_user_id: false,
                empty_access_roles: false,
            },
            ResponseStyle::Quirks(q) => Shape {
                strict: false,
                prefix: match q.prefix.as_deref() {
                    None | Some("") => "",
                    Some(p) if is_valid_prefix(p) => p,
                    Some(_) => "ns2",
                },
                envelope_prefix: match q.envelope_prefix.as_str() {
                    "" => "",
                    p if is_valid_prefix(p) => p,
                    _ => "soapenv",
                },
                attributes_first: q.attributes_before_status,
                base64_user_id: q.base64_user_id,
                empty_access_roles: q.empty_access_roles,
            },
        }
    }
}

/// Writes the response envelope (with an empty `Header`, as both KAAS and
/// CAAIS do) around an already serialised payload.
fn response_envelope(prefix: &str, payload: &str) -> String {
    let (p, decl) = if prefix.is_empty() {
        (String::new(), "xmlns".to_owned())
    } else {
        (format!("{prefix}:"), format!("xmlns:{prefix}"))
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{p}Envelope {decl}=\"{SOAP_ENV_NS}\">\n  <{p}Header/>\n  <{p}Body>{payload}\n  </{p}Body>\n</{p}Envelope>\n"
    )
}

/// Writes `attributes` with the elements of `version`'s XSD, in XSD order.
fn write_attributes(w: &mut XmlOut, version: ServiceVersion, a: &KaasAttributes, shape: &Shape) {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    w.open("attributes");
    w.leaf("Username", &opt(&a.username));
    w.leaf("UzivatelId", &encode_user_id(a, shape));
    w.leaf("ZkratkaSubjektu", &opt(&a.zkratka_subjektu));
    w.leaf("IcSubjektu", &opt(&a.ic_subjektu));
    w.leaf("Jmeno", &opt(&a.jmeno));
    w.leaf("Prijmeni", &opt(&a.prijmeni));
    w.leaf("TitulPred", &opt(&a.titul_pred));
    w.leaf("TitulZa", &opt(&a.titul_za));
    write_access_roles(w, a, shape);
    write_agenda_roles(w, a);
    if version.has_v3_4() {
        w.leaf("Email", &opt(&a.email));
        w.leaf("NazevSubjektu", &opt(&a.nazev_subjektu));
        w.leaf("EmailSubjektu", &opt(&a.email_subjektu));
        let typ = a.typ_instituce.map(|t| t.to_string()).unwrap_or_default();
        w.leaf("TypInstituce", &typ);
        let primary = match a.ovm_primarni {
            Some(true) => "TRUE",
            Some(false) => "FALSE",
            None => "",
        };
        w.leaf("OvmPrimarni", primary);
        w.leaf("TypPrihlaseni", &opt(&a.typ_prihlaseni));
    }
    if version.has_v4_2() {
        w.leaf("TypPrihlaseniNia", &opt(&a.typ_prihlaseni_nia));
    }
    if version.has_v3_4() {
        w.leaf("OsobaZtotoznena", bool_text(a.osoba_ztotoznena));
        w.leaf("TokenAifo", &opt(&a.token_aifo));
        write_workplace(w, a.pracoviste.as_ref());
    }
    if version.has_v4_1() {
        write_birth_place(w, a.misto_narozeni.as_ref(), shape);
        write_date(w, "DatumNarozeni", a.datum_narozeni.as_ref());
        write_date(w, "DatumUmrti", a.datum_umrti.as_ref());
        write_documents(w, &a.doklady);
        w.leaf("NeevidovatOsobniUdaje", bool_text(a.neevidovat_osobni_udaje));
    }
    if version.has_v3_4() {
        w.leaf("IdentifikatorOvm", &opt(&a.identifikator_ovm));
    }
    if version.has_v4_2() {
        w.leaf("IdentifikatorSpuu", &opt(&a.identifikator_spuu));
    }
    if version.has_v3_4() {
        w.leaf("TimeLimitedId", &opt(&a.time_limited_id));
    }
    w.close("attributes");
}

/// `xs:boolean` text; empty for unknown.
fn bool_text(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "true",
        Some(false) => "false",
        None => "",
    }
}

/// Chooses the `UzivatelId` wire value: the raw value if set, else derived
/// from a UUID `user_id` (16 raw bytes, or UUID text under
/// [`Quirks::base64_user_id`]), else `user_id` verbatim.
fn encode_user_id(a: &KaasAttributes, shape: &Shape) -> String {
    if let Some(raw) = &a.uzivatel_id {
        return raw.clone();
    }
    let Some(id) = &a.user_id else {
        return String::new();
    };
    match parse_uuid(id) {
        Some(_) if shape.base64_user_id => STANDARD.encode(id.to_ascii_lowercase()),
        Some(bytes) => STANDARD.encode(bytes),
        None => id.clone(),
    }
}

/// `PristupoveRole`; empty element when there are no roles (or the quirk
/// asks for it).
fn write_access_roles(w: &mut XmlOut, a: &KaasAttributes, shape: &Shape) {
    if shape.empty_access_roles || a.pristupove_role.is_empty() {
        w.empty("PristupoveRole");
        return;
    }
    w.open("PristupoveRole");
    for role in &a.pristupove_role {
        w.leaf("role", role);
    }
    w.close("PristupoveRole");
}

/// `CinnostniRole/Agenda*`.
fn write_agenda_roles(w: &mut XmlOut, a: &KaasAttributes) {
    if a.cinnostni_role.is_empty() {
        w.empty("CinnostniRole");
        return;
    }
    w.open("CinnostniRole");
    for (agenda, roles) in &a.cinnostni_role {
        w.open("Agenda");
        w.leaf("KodAgendy", agenda);
        for role in roles {
            w.leaf("KodCinnostniRole", role);
        }
        w.close("Agenda");
    }
    w.close("CinnostniRole");
}

/// `Pracoviste`; its children are optional in the XSD, so absent ones are
/// omitted.
fn write_workplace(w: &mut XmlOut, p: Option<&Pracoviste>) {
    let Some(p) = p else {
        w.empty("Pracoviste");
        return;
    };
    w.open("Pracoviste");
    let children = [("Id", &p.id), ("Nazev", &p.nazev), ("Adresa", &p.adresa), ("KodAdresy", &p.kod_adresy)];
    for (name, value) in children {
        if let Some(v) = value {
            w.leaf(name, v);
        }
    }
    w.close("Pracoviste");
}

/// `MistoNarozeni`. Strict emits at most one branch of the XSD choice
/// (`MistoNarozeniCr` wins); Quirks emits both like the KAAS examples.
fn write_birth_place(w: &mut XmlOut, m: Option<&MistoNarozeni>, shape: &Shape) {
    let Some(m) = m else {
        w.empty("MistoNarozeni");
        return;
    };
    let stav = m.stav.as_ref().map(StavUdaje::as_str);
    w.open_with_attrs("MistoNarozeni", &[("stav", stav)]);
    if let Some(cr) = &m.cr {
        let mop = cr.mop.map(|b| bool_text(Some(b)));
        let attrs = [("mop", mop), ("nazev", cr.nazev.as_deref())];
        w.leaf_with_attrs("MistoNarozeniCr", &attrs, cr.kod.as_deref().unwrap_or(""));
    }
    if let Some(svet) = m.svet.as_ref().filter(|_| !shape.strict || m.cr.is_none()) {
        w.open("MistoNarozeniSvet");
        let attrs = [("nazev", svet.stat_nazev.as_deref())];
        w.leaf_with_attrs("stat", &attrs, svet.stat.as_deref().unwrap_or(""));
        w.leaf("misto", svet.misto.as_deref().unwrap_or(""));
        w.close("MistoNarozeniSvet");
    }
    w.close("MistoNarozeni");
}

/// `DatumNarozeni` / `DatumUmrti` (optional in the XSD: omitted if absent).
fn write_date(w: &mut XmlOut, name: &str, d: Option<&DatumSeStavem>) {
    if let Some(d) = d {
        let attrs = [("stav", d.stav.as_ref().map(StavUdaje::as_str))];
        w.leaf_with_attrs(name, &attrs, &d.datum);
    }
}

/// `Doklady/Doklad*`.
fn write_documents(w: &mut XmlOut, docs: &[Doklad]) {
    if docs.is_empty() {
        w.empty("Doklady");
        return;
    }
    w.open("Doklady");
    for doc in docs {
        let attrs = [("stav", doc.stav.as_ref().map(StavUdaje::as_str)), ("typ", doc.typ.as_deref())];
        w.leaf_with_attrs("Doklad", &attrs, &doc.cislo);
    }
    w.close("Doklady");
}

/// Whether `p` can be used as a namespace prefix (an ASCII NCName not
/// starting with `xml`).
fn is_valid_prefix(p: &str) -> bool {
    let mut chars = p.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !p.to_ascii_lowercase().starts_with("xml")
}

/// Minimal indenting XML writer for payload elements that share one prefix.
struct XmlOut {
    buf: String,
    /// `"ns2:"` or `""` (default namespace).
    prefix: String,
    depth: usize,
}

impl XmlOut {
    fn new(prefix: &str) -> Self {
        let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}:") };
        XmlOut { buf: String::new(), prefix, depth: 0 }
    }

    fn newline(&mut self) {
        self.buf.push('\n');
        for _ in 0..self.depth {
            self.buf.push_str("  ");
        }
    }

    /// Opens the payload root and declares its namespace.
    fn open_root(&mut self, name: &str, namespace: &str) {
        self.newline();
        let decl = match self.prefix.strip_suffix(':') {
            Some(p) => format!("xmlns:{p}"),
            None => "xmlns".to_owned(),
        };
        self.buf.push_str(&format!("<{}{name} {decl}=\"", self.prefix));
        escape_into(namespace, true, &mut self.buf);
        self.buf.push_str("\">");
        self.depth += 1;
    }

    fn open(&mut self, name: &str) {
        self.open_with_attrs(name, &[]);
    }

    fn open_with_attrs(&mut self, name: &str, attrs: &[(&str, Option<&str>)]) {
        self.newline();
        self.start_tag(name, attrs);
        self.buf.push('>');
        self.depth += 1;
    }

    fn close(&mut self, name: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.newline();
        self.buf.push_str(&format!("</{}{name}>", self.prefix));
    }

    /// Opens an element whose (prefixed) name is given literally.
    fn open_prefixed(&mut self, qname: &str) {
        self.newline();
        self.buf.push_str(&format!("<{qname}>"));
        self.depth += 1;
    }

    fn close_prefixed(&mut self, qname: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.newline();
        self.buf.push_str(&format!("</{qname}>"));
    }

    fn empty(&mut self, name: &str) {
        self.leaf(name, "");
    }

    fn leaf(&mut self, name: &str, value: &str) {
        self.leaf_with_attrs(name, &[], value);
    }

    /// `<p:name a="…">value</p:name>`, or `<p:name a="…"/>` for "".
    fn leaf_with_attrs(&mut self, name: &str, attrs: &[(&str, Option<&str>)], value: &str) {
        self.newline();
        self.start_tag(name, attrs);
        if value.is_empty() {
            self.buf.push_str("/>");
        } else {
            self.buf.push('>');
            escape_into(value, false, &mut self.buf);
            self.buf.push_str(&format!("</{}{name}>", self.prefix));
        }
    }

    fn start_tag(&mut self, name: &str, attrs: &[(&str, Option<&str>)]) {
        self.buf.push_str(&format!("<{}{name}", self.prefix));
        for (key, value) in attrs {
            if let Some(value) = value {
                self.buf.push_str(&format!(" {key}=\""));
                escape_into(value, true, &mut self.buf);
                self.buf.push('"');
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Request parser (simulator side)
// ---------------------------------------------------------------------------

/// A request the simulator received, identified by the body element's
/// (namespace, local name).
#[derive(Clone, PartialEq, Eq)]
pub enum KaasRequest {
    /// `heartBeatRequest`.
    HeartBeat {
        /// Version selected by the namespace.
        version: ServiceVersion,
    },
    /// `authConfirmationRequest`.
    AuthConfirmation {
        /// Version selected by the namespace.
        version: ServiceVersion,
        /// The token (trimmed). Redacted by `Debug`.
        session_id: String,
    },
    /// `directAuthUserRequest`.
    DirectAuthUser {
        /// Version selected by the namespace.
        version: ServiceVersion,
        /// Namespace variant the client used.
        ns: DirectNamespace,
        /// One-time username, verbatim.
        username: String,
        /// One-time password, verbatim. Redacted by `Debug`.
        password: String,
    },
}

impl fmt::Debug for KaasRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KaasRequest::HeartBeat { version } => f.debug_struct("HeartBeat").field("version", version).finish(),
            KaasRequest::AuthConfirmation { version, .. } => {
                f.debug_struct("AuthConfirmation").field("version", version).field("session_id", &"<redacted>").finish()
            }
            KaasRequest::DirectAuthUser { version, ns, username, .. } => f
                .debug_struct("DirectAuthUser")
                .field("version", version)
                .field("ns", ns)
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

/// Parses a request envelope (for the simulator). Accepts every version and
/// namespace variant; `…/atsUser/v1` and other namespaces are
/// [`SoapError::UnsupportedVersion`].
pub fn parse_request(xml: &[u8]) -> Result<KaasRequest, SoapError> {
    let payload = body_payload(parse_document(xml)?)?;
    let ns = payload.ns.clone().unwrap_or_default();
    match payload.local.as_str() {
        "heartBeatRequest" => Ok(KaasRequest::HeartBeat { version: auth_version_of(&ns)? }),
        "authConfirmationRequest" => {
            let version = auth_version_of(&ns)?;
            let session_id = payload
                .field_text(&ns, "sessionId")
                .ok_or_else(|| SoapError::Malformed("authConfirmationRequest without sessionId".into()))?;
            Ok(KaasRequest::AuthConfirmation { version, session_id })
        }
        "directAuthUserRequest" => {
            let (version, variant) = direct_version_of(&ns)?;
            // Credentials are taken verbatim: whitespace may be significant.
            let raw = |local: &str| {
                payload
                    .field(&ns, local)
                    .map(|n| n.text.clone())
                    .ok_or_else(|| SoapError::Malformed(format!("directAuthUserRequest without {local}")))
            };
            Ok(KaasRequest::DirectAuthUser {
                version,
                ns: variant,
                username: raw("username")?,
                password: raw("password")?,
            })
        }
        other => Err(SoapError::UnexpectedElement {
            expected: "heartBeatRequest|authConfirmationRequest|directAuthUserRequest",
            found: truncate(other),
        }),
    }
}

/// Auth-WS version whose namespace is `ns`.
fn auth_version_of(ns: &str) -> Result<ServiceVersion, SoapError> {
    ServiceVersion::ALL
        .into_iter()
        .find(|v| v.auth_namespace() == ns)
        .ok_or_else(|| SoapError::UnsupportedVersion(truncate(ns)))
}

/// Direct-WS version and variant whose namespace is `ns`.
fn direct_version_of(ns: &str) -> Result<(ServiceVersion, DirectNamespace), SoapError> {
    ServiceVersion::ALL
        .into_iter()
        .flat_map(|v| DirectNamespace::ALL.into_iter().map(move |d| (v, d)))
        .find(|(v, d)| d.namespace(*v).ok() == Some(ns))
        .ok_or_else(|| SoapError::UnsupportedVersion(truncate(ns)))
}
