//! Assertion Consumer Service: the base64-decoded `SAMLResponse` bytes → a checked assertion.
//!
//! Threats: forged or wrapped assertions (XSW), replay, assertions meant for another SP or
//! request, stale or future assertions, a weaker login than requested. Signatures are checked
//! on the exact bytes before anything is decrypted or read; fields are then read only from the
//! exclusive-canonical form of the signed (or decrypted-and-bound) element, by fixed paths
//! (SAML core §2–3, profiles §4.1.4, notes §3).

use std::collections::{BinaryHeap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use super::reason::Refusal;
use super::xmlsec::{self, DecryptionKeys, IdpCertificates, Limits, XmlSecError};
use crate::identity::Loa;
use crate::xml::{parse_tree, Node, XmlError};
use bergshamra::xml::uppsala;

/// SAML 2.0 assertion namespace.
pub const SAML_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
/// SAML 2.0 protocol namespace.
pub const SAMLP_NS: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";
const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
/// `Issuer@Format` of an entity (the only one profiles §4.1.4.2 allows).
const ENTITY_FORMAT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity";

/// How a requested LoA is compared with the achieved one (`RequestedAuthnContext@Comparison`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LoaComparison {
    /// Achieved == requested.
    Exact,
    /// Achieved >= requested.
    Minimum,
    /// Achieved <= requested.
    Maximum,
    /// Achieved > requested.
    Better,
}

impl LoaComparison {
    /// Whether `achieved` satisfies `requested` under this comparison (SAML core §3.3.2.2.1).
    pub fn satisfied(self, requested: Loa, achieved: Loa) -> bool {
        match self {
            LoaComparison::Exact => achieved == requested,
            LoaComparison::Minimum => achieved >= requested,
            LoaComparison::Maximum => achieved <= requested,
            LoaComparison::Better => achieved > requested,
        }
    }
}

/// What a Response must match, from configuration and the pending AuthnRequest.
#[derive(Debug, Clone)]
pub struct Expectations<'a> {
    /// The IdP entityID; compared case-insensitively when `issuer_case_insensitive` (NIA).
    pub idp_entity_id: &'a str,
    /// NIA sends `urn:microsoft:cgg2010:fpsts` in varying case.
    pub issuer_case_insensitive: bool,
    /// Our entityID; an `Audience` must equal it (or differ only by a trailing slash when
    /// `audience_ignores_trailing_slash`).
    pub sp_entity_id: &'a str,
    /// NIA's Audience drops the entityID's trailing slash.
    pub audience_ignores_trailing_slash: bool,
    /// Our ACS URL: `Destination` and `Recipient` must equal it.
    pub acs_url: &'a str,
    /// The pending AuthnRequest ID; `None` only for an unsolicited response (when enabled).
    pub request_id: Option<&'a str>,
    /// The requested LoA and comparison, checked against the achieved `AuthnContextClassRef`.
    pub requested_loa: Option<(Loa, LoaComparison)>,
    /// Clock skew tolerated on `NotBefore` / `NotOnOrAfter`.
    pub clock_skew: Duration,
    /// Current time, Unix seconds.
    pub now: u64,
    /// Refuse a plain (unencrypted) Assertion.
    pub require_encrypted_assertion: bool,
    /// Forwarded Responses (`Authorization: SAML` on API apps): issued to one of these calling
    /// applications instead of us. The `Audience` must be one of their entity IDs,
    /// `Destination` and `Recipient` one of their ACS URLs, and `InResponseTo` (the caller's
    /// request) is not ours to check. Empty: a Response to our own ACS.
    pub callers: &'a [SamlCaller],
}

/// An application allowed to forward the Responses the IdP issued to it (API apps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamlCaller {
    /// Its SP entity ID.
    pub entity_id: String,
    /// Its ACS URLs.
    pub acs_urls: Vec<String>,
}

impl Expectations<'_> {
    /// Whether `url` is where this Response may be addressed (`Destination`, `Recipient`).
    fn recipient_ok(&self, url: &str) -> bool {
        if self.callers.is_empty() {
            url == self.acs_url
        } else {
            self.callers.iter().any(|c| c.acs_urls.iter().any(|a| a == url))
        }
    }

    /// Whether `audience` names a party this Response may be for.
    fn audience_ok(&self, audience: &str) -> bool {
        let same = |ours: &str| {
            audience == ours
                || (self.audience_ignores_trailing_slash
                    && audience.trim_end_matches('/') == ours.trim_end_matches('/'))
        };
        if self.callers.is_empty() {
            same(self.sp_entity_id)
        } else {
            self.callers.iter().any(|c| same(&c.entity_id))
        }
    }
}

/// One `saml:Attribute`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamlAttribute {
    /// `Name` (a URI or an OID/short name, as the IdP sends it).
    pub name: String,
    /// `FriendlyName`, when present.
    pub friendly_name: Option<String>,
    /// Text values in document order (whitespace kept, comments dropped).
    pub values: Vec<String>,
}

/// A checked assertion: everything later steps may rely on. `Debug` prints no NameID,
/// SessionIndex or attribute value.
#[derive(Clone, PartialEq, Eq)]
pub struct SamlAssertion {
    /// Assertion `ID` (replay cache key).
    pub id: String,
    /// Assertion `Issuer`.
    pub issuer: String,
    /// `Subject/NameID` value.
    pub name_id: String,
    /// `NameID@Format`.
    pub name_id_format: Option<String>,
    /// `NameID@NameQualifier` / `SPNameQualifier`, echoed in a LogoutRequest.
    pub name_qualifier: Option<String>,
    /// `NameID@SPNameQualifier`.
    pub sp_name_qualifier: Option<String>,
    /// `AuthnStatement@SessionIndex`.
    pub session_index: Option<String>,
    /// `AuthnStatement@AuthnInstant`, Unix seconds.
    pub authn_instant: Option<u64>,
    /// `AuthnStatement@SessionNotOnOrAfter`, Unix seconds.
    pub session_not_on_or_after: Option<u64>,
    /// Achieved `AuthnContextClassRef`.
    pub authn_context: Option<String>,
    /// Latest instant the assertion may be accepted (`Conditions@NotOnOrAfter`), Unix seconds;
    /// the replay cache keeps the ID until then.
    pub not_on_or_after: u64,
    /// The accepted `Audience` of each `AudienceRestriction` (ours, or a caller's entity ID).
    pub audiences: Vec<String>,
    /// Attributes in document order.
    pub attributes: Vec<SamlAttribute>,
}

impl std::fmt::Debug for SamlAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SamlAssertion")
            .field("issuer", &self.issuer)
            .field("name_id", &crate::redact::Redacted)
            .field("name_id_format", &self.name_id_format)
            .field("authn_context", &self.authn_context)
            .field("not_on_or_after", &self.not_on_or_after)
            .field("attributes", &self.attributes.iter().map(|a| a.name.as_str()).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Why a Response was refused: the precise [`Refusal`] (metric label, side) and the operator
/// detail (which element, by how much; never personal data).
#[derive(Debug, thiserror::Error)]
#[error("{detail}")]
pub struct AcsError {
    refusal: Refusal,
    detail: String,
}

impl AcsError {
    /// A refusal with its operator detail.
    pub fn new(refusal: Refusal, detail: impl Into<String>) -> AcsError {
        AcsError { refusal, detail: detail.into() }
    }

    /// The precise reason.
    pub fn refusal(&self) -> Refusal {
        self.refusal
    }
}

impl From<XmlSecError> for AcsError {
    fn from(e: XmlSecError) -> AcsError {
        AcsError { refusal: Refusal::from(&e), detail: e.to_string() }
    }
}

impl From<super::limits::Exceeded> for AcsError {
    fn from(e: super::limits::Exceeded) -> AcsError {
        XmlSecError::from(e).into()
    }
}

/// A failed SAML check.
fn invalid(refusal: Refusal, msg: impl Into<String>) -> AcsError {
    AcsError::new(refusal, msg)
}

/// Not the SAML the schema requires.
fn malformed(refusal: Refusal, msg: impl std::fmt::Display) -> AcsError {
    AcsError::new(refusal, format!("malformed response: {msg}"))
}

/// Values from IdPs are quoted in messages only shortened (they are not personal data, but
/// an attacker controls them).
fn quote(v: &str) -> String {
    let short: String = v.chars().take(80).collect();
    format!("{short:?}")
}

/// Parses canonical XML (already size-capped, DOCTYPE-free) into the namespace-aware tree.
fn tree(canonical: &str) -> Result<Node, AcsError> {
    parse_tree(canonical.as_bytes(), |_| Ok::<(), XmlError>(())).map_err(|e| malformed(Refusal::NotWellFormed, e))
}

impl Node {
    fn child(&self, ns: &str, local: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.is(ns, local))
    }
    fn kids<'a>(&'a self, ns: &'a str, local: &'a str) -> impl Iterator<Item = &'a Node> {
        self.children.iter().filter(move |c| c.is(ns, local))
    }
    /// An unqualified attribute (SAML attributes are unqualified).
    fn plain_attr(&self, local: &str) -> Option<&str> {
        self.attrs.iter().find(|a| a.ns.is_none() && a.local == local).map(|a| a.value.as_str())
    }
    fn trimmed(&self) -> &str {
        self.text.trim()
    }
}

fn instant(node: &Node, attr: &str, what: &str) -> Result<Option<u64>, AcsError> {
    match node.plain_attr(attr) {
        None => Ok(None),
        Some(v) => crate::date::parse_rfc3339(v.trim())
            .map(Some)
            .ok_or_else(|| malformed(Refusal::IssueInstant, format!("{what}@{attr} is not an xs:dateTime"))),
    }
}

fn issuer_matches(found: &str, expect: &Expectations<'_>) -> bool {
    if expect.issuer_case_insensitive {
        found.eq_ignore_ascii_case(expect.idp_entity_id)
    } else {
        found == expect.idp_entity_id
    }
}

/// The assertion element in the verified document: the single `Assertion` or
/// `EncryptedAssertion` child of the Response (fixed path; anything else is ignored).
enum Carried {
    Plain(uppsala::NodeId),
    Encrypted(uppsala::NodeId),
}

fn carried(doc: &uppsala::Document<'_>, root: uppsala::NodeId) -> Result<Carried, AcsError> {
    let plain = doc.child_elements_by_name_ns(root, SAML_NS, "Assertion");
    let encrypted = doc.child_elements_by_name_ns(root, SAML_NS, "EncryptedAssertion");
    match (plain.as_slice(), encrypted.as_slice()) {
        ([a], []) => Ok(Carried::Plain(*a)),
        ([], [e]) => Ok(Carried::Encrypted(*e)),
        (p, e) => Err(malformed(
            Refusal::Malformed,
            format!(
                "Response carries {} Assertion and {} EncryptedAssertion children, expected exactly one in total",
                p.len(),
                e.len()
            ),
        )),
    }
}

/// Processes the base64-decoded bytes of a POSTed `SAMLResponse` exactly as received.
pub fn process_response(
    xml: &[u8],
    certs: &IdpCertificates,
    keys: &DecryptionKeys,
    expect: &Expectations<'_>,
) -> Result<SamlAssertion, AcsError> {
    let text = xmlsec::check_input(xml)?;
    let doc = xmlsec::parse(text)?;
    let root = xmlsec::document_element(&doc)?;
    if !doc.element(root).is_some_and(|e| e.name.matches(Some(SAMLP_NS), "Response")) {
        return Err(malformed(Refusal::Malformed, "document element is not samlp:Response"));
    }
    // Count signatures, references, transforms, EncryptedKeys and EncryptedData before any
    // canonicalisation or cryptography (issue 15 item 1: each is an RSA operation or a c14n).
    super::limits::check(&doc, root, &Limits::RESPONSE)?;
    // Verify every signature on the exact bytes before decrypting anything (notes "verify
    // before decrypt": the Response signature covers the ciphertext).
    let signed = xmlsec::signed_elements(&doc, text, certs)?;
    let response_signed = signed.contains(&root);
    let response = tree(&xmlsec::canonical(&doc, root)?)?;
    check_response(&response, response_signed, expect)?;

    let (canonical, assertion_signed) = match carried(&doc, root)? {
        Carried::Plain(node) => {
            if expect.require_encrypted_assertion {
                return Err(invalid(
                    Refusal::NotEncrypted,
                    "the Assertion is not encrypted but encryption is required",
                ));
            }
            (xmlsec::canonical(&doc, node)?, signed.contains(&node))
        }
        Carried::Encrypted(node) => {
            let plaintext = super::xmlenc::decrypt_assertion(&doc, node, keys)?;
            match decrypted_assertion(&plaintext, certs) {
                Ok(found) => found,
                Err(e) if response_signed => return Err(e),
                // Unsigned ciphertext: every failure up to the Assertion's own signature is the
                // one decryption error, so parse errors cannot serve as a CBC padding oracle
                // (Jager & Somorovsky 2011, "How to break XML Encryption").
                Err(_) => return Err(XmlSecError::Decryption.into()),
            }
        }
    };
    if !response_signed && !assertion_signed {
        return Err(XmlSecError::Unsigned(
            "neither the Response nor its Assertion carries a valid signature by a trusted IdP key".to_owned(),
        )
        .into());
    }
    check_assertion(&tree(&canonical)?, expect)
}

/// Parses the decrypted Assertion and verifies its own signature, bound to it (notes gap 2).
/// Returns its canonical form and whether it is signed.
fn decrypted_assertion(plaintext: &[u8], certs: &IdpCertificates) -> Result<(String, bool), AcsError> {
    let text = xmlsec::check_input(plaintext)?;
    let inner = xmlsec::parse(text)?;
    let root = xmlsec::document_element(&inner)?;
    if !inner.element(root).is_some_and(|e| e.name.matches(Some(SAML_NS), "Assertion")) {
        return Err(malformed(Refusal::Malformed, "the decrypted element is not saml:Assertion"));
    }
    super::limits::check(&inner, root, &Limits::DECRYPTED_ASSERTION)?;
    let signed = xmlsec::signed_elements(&inner, text, certs)?.contains(&root);
    Ok((xmlsec::canonical(&inner, root)?, signed))
}

/// Status, Issuer, Destination and InResponseTo of the Response (SAML core §3.2.2, bindings
/// §3.5.5.2, profiles §4.1.4.3).
fn check_response(response: &Node, signed: bool, expect: &Expectations<'_>) -> Result<(), AcsError> {
    version_and_instant(response, "Response", expect)?;
    match response.child(SAML_NS, "Issuer") {
        Some(issuer) => check_issuer(issuer, "Response", expect)?,
        // Profiles §4.1.4.2: a signed Response MUST carry an Issuer (the signature says who).
        None if signed => return Err(malformed(Refusal::IssuerMissing, "signed Response without Issuer")),
        None => {}
    }
    match response.plain_attr("Destination") {
        Some(d) if !expect.recipient_ok(d) => {
            return Err(invalid(Refusal::Destination, format!("Response Destination {} is not our ACS URL", quote(d))))
        }
        None if signed => {
            return Err(invalid(Refusal::Destination, "signed Response without Destination (SAML bindings §3.5.5.2)"))
        }
        _ => {}
    }
    check_in_response_to(response.plain_attr("InResponseTo"), expect, "Response")?;
    status(response)
}

/// `Version` must be exactly "2.0" (SAML core §4.1.2: a 2.0 processor refuses any other major
/// or minor version) and `IssueInstant` present, an `xs:dateTime` and not in the future beyond
/// the tolerated skew (core §3.2.2 / §2.3.3: required on both Response and Assertion).
fn version_and_instant(node: &Node, what: &str, expect: &Expectations<'_>) -> Result<(), AcsError> {
    if node.plain_attr("Version") != Some("2.0") {
        return Err(malformed(Refusal::Version, format!("{what} Version is not 2.0")));
    }
    let issued = instant(node, "IssueInstant", what)?
        .ok_or_else(|| malformed(Refusal::IssueInstant, format!("{what} without IssueInstant")))?;
    if issued > expect.now.saturating_add(expect.clock_skew.as_secs()) {
        return Err(invalid(
            Refusal::IssuedInFuture,
            format!("{what} IssueInstant is {}s in the future", issued - expect.now),
        ));
    }
    Ok(())
}

/// The issuer is the configured IdP, named as an entity: `Format` absent or `…:entity`
/// (profiles §4.1.4.2, core §8.3.6).
fn check_issuer(issuer: &Node, what: &str, expect: &Expectations<'_>) -> Result<(), AcsError> {
    if let Some(format) = issuer.plain_attr("Format") {
        if format != ENTITY_FORMAT {
            return Err(invalid(
                Refusal::IssuerFormat,
                format!("{what} Issuer Format {} is not the entity format", quote(format)),
            ));
        }
    }
    if !issuer_matches(issuer.trimmed(), expect) {
        return Err(invalid(
            Refusal::Issuer,
            format!("{what} Issuer {} is not the configured IdP", quote(issuer.trimmed())),
        ));
    }
    Ok(())
}

fn check_in_response_to(found: Option<&str>, expect: &Expectations<'_>, what: &str) -> Result<(), AcsError> {
    if !expect.callers.is_empty() {
        // A forwarded Response answers the caller's AuthnRequest.
        return Ok(());
    }
    match (found, expect.request_id) {
        (Some(f), Some(r)) if f == r => Ok(()),
        (Some(f), Some(_)) => {
            Err(invalid(Refusal::InResponseTo, format!("{what} InResponseTo {} is not the pending request", quote(f))))
        }
        (None, Some(_)) => Err(invalid(
            Refusal::InResponseTo,
            format!("unsolicited {what} (no InResponseTo) while a request is pending"),
        )),
        (Some(f), None) => {
            Err(invalid(Refusal::InResponseTo, format!("{what} InResponseTo {} but no request is pending", quote(f))))
        }
        (None, None) => Ok(()),
    }
}

/// Success, or an error naming both status levels with an operator hint for NIA's codes.
fn status(response: &Node) -> Result<(), AcsError> {
    let code = response
        .child(SAMLP_NS, "Status")
        .and_then(|s| s.child(SAMLP_NS, "StatusCode"))
        .ok_or_else(|| malformed(Refusal::Malformed, "Response without Status/StatusCode"))?;
    let top = code.plain_attr("Value").unwrap_or("");
    if top == STATUS_SUCCESS {
        return Ok(());
    }
    let short = |v: &str| v.rsplit(':').next().unwrap_or(v).to_owned();
    let second = code.child(SAMLP_NS, "StatusCode").and_then(|c| c.plain_attr("Value")).map(short);
    let hint = match second.as_deref() {
        Some("AuthnFailed") => ": the user did not authenticate (failed or cancelled at the IdP)",
        Some("RequestDenied") => ": the IdP refused the request (SP not registered or not allowed)",
        Some("NoPassive") => ": passive login impossible, the user has no session at the IdP",
        Some("NoAuthnContext") => ": the requested level of assurance cannot be met",
        Some("RequestUnsupported") | Some("InvalidNameIDPolicy") => ": the IdP does not support the request",
        Some("UnknownPrincipal") => ": the IdP does not know the user",
        _ => "",
    };
    let mut msg = short(top);
    if let Some(s) = second {
        msg = format!("{msg}/{s}");
    }
    Err(AcsError::new(Refusal::IdpStatus, format!("status {msg}{hint}")))
}

/// The assertion checks of SAML profiles §4.1.4.2–3 and core §2.5.
fn check_assertion(a: &Node, expect: &Expectations<'_>) -> Result<SamlAssertion, AcsError> {
    let skew = expect.clock_skew.as_secs();
    let now = expect.now;
    let id = a
        .plain_attr("ID")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| malformed(Refusal::Malformed, "Assertion without ID"))?;
    version_and_instant(a, "Assertion", expect)?;
    let issuer_node =
        a.child(SAML_NS, "Issuer").ok_or_else(|| malformed(Refusal::IssuerMissing, "Assertion without Issuer"))?;
    check_issuer(issuer_node, "Assertion", expect)?;
    let issuer = issuer_node.trimmed();
    let subject =
        a.child(SAML_NS, "Subject").ok_or_else(|| malformed(Refusal::Malformed, "Assertion without Subject"))?;
    let name_id = subject
        .child(SAML_NS, "NameID")
        .ok_or_else(|| malformed(Refusal::Malformed, "Subject without NameID (EncryptedID is not supported)"))?;
    let scd_until = bearer_confirmation(subject, expect)?;

    let conditions =
        a.child(SAML_NS, "Conditions").ok_or_else(|| invalid(Refusal::Malformed, "Assertion without Conditions"))?;
    if let Some(nb) = instant(conditions, "NotBefore", "Conditions")? {
        if nb > now + skew {
            return Err(invalid(
                Refusal::NotYetValid,
                format!("Assertion not yet valid (NotBefore is {}s ahead)", nb - now),
            ));
        }
    }
    let cond_until = instant(conditions, "NotOnOrAfter", "Conditions")?;
    if let Some(t) = cond_until {
        if t + skew <= now {
            return Err(invalid(
                Refusal::Expired,
                format!("Assertion expired (Conditions NotOnOrAfter {}s ago)", now - t),
            ));
        }
    }
    let audiences = audience(conditions, expect)?;

    let authn = a
        .child(SAML_NS, "AuthnStatement")
        .ok_or_else(|| invalid(Refusal::Malformed, "Assertion without AuthnStatement"))?;
    let session_not_on_or_after = instant(authn, "SessionNotOnOrAfter", "AuthnStatement")?;
    if session_not_on_or_after.is_some_and(|t| t + skew <= now) {
        return Err(invalid(Refusal::Expired, "AuthnStatement SessionNotOnOrAfter has passed"));
    }
    let authn_context = authn
        .child(SAML_NS, "AuthnContext")
        .and_then(|c| c.child(SAML_NS, "AuthnContextClassRef"))
        .map(|c| c.trimmed().to_owned());
    if let Some((requested, comparison)) = expect.requested_loa {
        let achieved = authn_context.as_deref().and_then(Loa::parse_lenient).ok_or_else(|| {
            invalid(
                Refusal::LoaNotSatisfied,
                format!(
                    "achieved AuthnContextClassRef {} is not an eIDAS LoA",
                    quote(authn_context.as_deref().unwrap_or(""))
                ),
            )
        })?;
        if !comparison.satisfied(requested, achieved) {
            return Err(invalid(
                Refusal::LoaNotSatisfied,
                format!("achieved LoA {achieved} does not satisfy requested {requested} ({comparison:?})"),
            ));
        }
    }
    let not_on_or_after = match cond_until {
        Some(c) => c.min(scd_until),
        None => scd_until,
    };
    Ok(SamlAssertion {
        id: id.to_owned(),
        issuer: issuer.to_owned(),
        name_id: name_id.trimmed().to_owned(),
        name_id_format: name_id.plain_attr("Format").map(str::to_owned),
        name_qualifier: name_id.plain_attr("NameQualifier").map(str::to_owned),
        sp_name_qualifier: name_id.plain_attr("SPNameQualifier").map(str::to_owned),
        session_index: authn.plain_attr("SessionIndex").map(str::to_owned),
        authn_instant: instant(authn, "AuthnInstant", "AuthnStatement")?,
        session_not_on_or_after,
        authn_context,
        not_on_or_after,
        audiences,
        attributes: attributes(a),
    })
}

/// At least one bearer `SubjectConfirmation` whose data names our ACS, the pending request and
/// a future `NotOnOrAfter` (profiles §4.1.4.2). Returns its `NotOnOrAfter`.
fn bearer_confirmation(subject: &Node, expect: &Expectations<'_>) -> Result<u64, AcsError> {
    let skew = expect.clock_skew.as_secs();
    let mut why = AcsError::new(Refusal::SubjectConfirmation, "no bearer SubjectConfirmation");
    for sc in subject.kids(SAML_NS, "SubjectConfirmation").filter(|sc| sc.plain_attr("Method") == Some(BEARER)) {
        let Some(data) = sc.child(SAML_NS, "SubjectConfirmationData") else {
            why = AcsError::new(
                Refusal::SubjectConfirmation,
                "bearer SubjectConfirmation without SubjectConfirmationData",
            );
            continue;
        };
        if !data.plain_attr("Recipient").is_some_and(|r| expect.recipient_ok(r)) {
            why = AcsError::new(
                Refusal::SubjectConfirmation,
                format!(
                    "SubjectConfirmationData Recipient {} is not our ACS URL",
                    quote(data.plain_attr("Recipient").unwrap_or(""))
                ),
            );
            continue;
        }
        let Some(until) = instant(data, "NotOnOrAfter", "SubjectConfirmationData")? else {
            why = AcsError::new(Refusal::SubjectConfirmation, "SubjectConfirmationData without NotOnOrAfter");
            continue;
        };
        if until + skew <= expect.now {
            why = AcsError::new(
                Refusal::SubjectConfirmation,
                format!("SubjectConfirmationData expired (NotOnOrAfter {}s ago)", expect.now - until),
            );
            continue;
        }
        if instant(data, "NotBefore", "SubjectConfirmationData")?.is_some_and(|nb| nb > expect.now + skew) {
            why = AcsError::new(Refusal::SubjectConfirmation, "SubjectConfirmationData not yet valid");
            continue;
        }
        if let Err(e) = check_in_response_to(data.plain_attr("InResponseTo"), expect, "SubjectConfirmationData") {
            why = e;
            continue;
        }
        return Ok(until);
    }
    Err(why)
}

/// Every `AudienceRestriction` must name us (core §2.5.1.4), or a caller for a forwarded
/// Response; at least one must exist (profiles §4.1.4.2). Returns the accepted audiences.
fn audience(conditions: &Node, expect: &Expectations<'_>) -> Result<Vec<String>, AcsError> {
    let mut matched = Vec::new();
    for restriction in conditions.kids(SAML_NS, "AudienceRestriction") {
        match restriction.kids(SAML_NS, "Audience").map(Node::trimmed).find(|a| expect.audience_ok(a)) {
            Some(a) => matched.push(a.to_owned()),
            None => {
                let first = restriction.child(SAML_NS, "Audience").map(Node::trimmed).unwrap_or("");
                return Err(invalid(Refusal::Audience, format!("Audience {} is not our entityID", quote(first))));
            }
        }
    }
    if matched.is_empty() {
        Err(invalid(Refusal::Audience, "Assertion without AudienceRestriction"))
    } else {
        Ok(matched)
    }
}

/// Attributes of every `AttributeStatement`. `xsi:nil="true"` values are skipped; `xsi:type`
/// is not needed to read a text value (its QName prefix may even be unbound after exclusive
/// c14n, which is why it is never resolved); element content is refused as a value.
fn attributes(a: &Node) -> Vec<SamlAttribute> {
    let mut out = Vec::new();
    for statement in a.kids(SAML_NS, "AttributeStatement") {
        for attr in statement.kids(SAML_NS, "Attribute") {
            let values = attr
                .kids(SAML_NS, "AttributeValue")
                .filter(|v| {
                    let nil = v.attrs.iter().any(|x| {
                        x.ns.as_deref() == Some(XSI_NS) && x.local == "nil" && matches!(x.value.trim(), "true" | "1")
                    });
                    !nil && v.children.is_empty()
                })
                .map(|v| v.text.clone())
                .collect();
            out.push(SamlAttribute {
                name: attr.plain_attr("Name").unwrap_or("").to_owned(),
                friendly_name: attr.plain_attr("FriendlyName").map(str::to_owned),
                values,
            });
        }
    }
    out
}

/// Assertion IDs seen until their `NotOnOrAfter` (plus skew): a second use is refused.
/// Bounded; when full of unexpired IDs it refuses new ones (fail closed) rather than forget.
pub struct ReplayCache {
    capacity: usize,
    inner: Mutex<ReplayState>,
}

#[derive(Default)]
struct ReplayState {
    seen: HashMap<String, u64>,
    expiry: BinaryHeap<std::cmp::Reverse<(u64, String)>>,
}

impl ReplayCache {
    /// A cache holding at most `capacity` IDs.
    pub fn new(capacity: u64) -> Self {
        ReplayCache {
            capacity: usize::try_from(capacity).unwrap_or(usize::MAX),
            inner: Mutex::new(ReplayState::default()),
        }
    }

    /// Records `id` until `until` (Unix seconds); `false` when it was already recorded (or the
    /// cache is full of unexpired IDs).
    pub fn first_use(&self, id: &str, until: u64) -> bool {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.first_use_at(id, until, now)
    }

    /// [`Self::first_use`] at the given current time (Unix seconds).
    pub fn first_use_at(&self, id: &str, until: u64, now: u64) -> bool {
        let Ok(mut state) = self.inner.lock() else { return false };
        while state.expiry.peek().is_some_and(|std::cmp::Reverse((t, _))| *t < now) {
            if let Some(std::cmp::Reverse((_, old))) = state.expiry.pop() {
                state.seen.remove(&old);
            }
        }
        if state.seen.contains_key(id) || state.seen.len() >= self.capacity {
            return false;
        }
        state.seen.insert(id.to_owned(), until);
        state.expiry.push(std::cmp::Reverse((until, id.to_owned())));
        true
    }

    /// [`Self::first_use_at`] for a checked assertion, keeping its ID until `NotOnOrAfter + skew`.
    pub fn check(&self, assertion: &SamlAssertion, skew: Duration, now: u64) -> Result<(), AcsError> {
        if self.first_use_at(&assertion.id, assertion.not_on_or_after.saturating_add(skew.as_secs()), now) {
            Ok(())
        } else {
            Err(invalid(Refusal::Replayed, "Assertion ID already used (replay) or the replay cache is full"))
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
