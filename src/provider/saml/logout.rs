//! Single Logout messages (SAML Core §3.7): the LogoutRequest we send (nia.md §8.7, §11.5),
//! the LogoutResponse we answer an IdP's request with, and a strict reader for both as the IdP
//! sends them.
//!
//! The reader is namespace-aware, refuses DTDs and reads only direct children of the root, so a
//! NameID or Status smuggled deeper in the document (or in a foreign namespace) is never used.

use quick_xml::escape::escape;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use super::reason::Refusal;

const PROTOCOL: &[u8] = b"urn:oasis:names:tc:SAML:2.0:protocol";
const ASSERTION: &[u8] = b"urn:oasis:names:tc:SAML:2.0:assertion";

/// `urn:oasis:names:tc:SAML:2.0:status:Success`.
pub const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
/// `…:status:Requester`: the request was refused.
pub const STATUS_REQUESTER: &str = "urn:oasis:names:tc:SAML:2.0:status:Requester";
/// `…:status:Responder`: we could not complete it.
pub const STATUS_RESPONDER: &str = "urn:oasis:names:tc:SAML:2.0:status:Responder";
/// `…:status:UnknownPrincipal` (second level): the principal named is not known to us.
pub const STATUS_UNKNOWN_PRINCIPAL: &str = "urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal";

/// The subject of a logout, as the login's assertion named it. `Debug` redacts the NameID
/// (personal data) and the SessionIndex (it ends the session).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogoutSubject {
    /// NameID value.
    pub name_id: String,
    /// NameID `Format`.
    pub format: Option<String>,
    /// NameID `NameQualifier`.
    pub name_qualifier: Option<String>,
    /// NameID `SPNameQualifier`.
    pub sp_name_qualifier: Option<String>,
    /// `SessionIndex`.
    pub session_index: Option<String>,
}

impl std::fmt::Debug for LogoutSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogoutSubject")
            .field("name_id", &crate::redact::Redacted)
            .field("format", &self.format)
            .field("session_index", &crate::redact::opt(&self.session_index))
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for LogoutMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogoutMessage")
            .field("is_request", &self.is_request)
            .field("in_response_to", &self.in_response_to.is_some())
            .field("destination", &self.destination)
            .field("issuer", &self.issuer)
            .field("name_id", &crate::redact::opt(&self.name_id))
            .field("session_indexes", &self.session_indexes.len())
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

fn opt_attr(name: &str, value: Option<&str>) -> String {
    value.map(|v| format!(" {name}=\"{}\"", escape(v))).unwrap_or_default()
}

/// A LogoutRequest from us (SP-initiated SLO).
pub fn build_request(id: &str, issue_instant: u64, destination: &str, issuer: &str, subject: &LogoutSubject) -> String {
    let session_index = subject
        .session_index
        .as_deref()
        .map(|s| format!("<samlp:SessionIndex>{}</samlp:SessionIndex>", escape(s)))
        .unwrap_or_default();
    format!(
        "<samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" \
         xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{id}\" Version=\"2.0\" IssueInstant=\"{instant}\" \
         Destination=\"{destination}\"><saml:Issuer>{issuer}</saml:Issuer><saml:NameID{format}{nq}{spnq}>{name_id}</saml:NameID>\
         {session_index}</samlp:LogoutRequest>",
        id = escape(id),
        instant = crate::identity::headers::rfc3339(issue_instant),
        destination = escape(destination),
        issuer = escape(issuer),
        format = opt_attr("Format", subject.format.as_deref()),
        nq = opt_attr("NameQualifier", subject.name_qualifier.as_deref()),
        spnq = opt_attr("SPNameQualifier", subject.sp_name_qualifier.as_deref()),
        name_id = escape(subject.name_id.as_str()),
    )
}

/// A LogoutResponse from us, answering an IdP's LogoutRequest.
pub fn build_response(
    id: &str,
    issue_instant: u64,
    destination: Option<&str>,
    in_response_to: &str,
    issuer: &str,
    status: &str,
    sub_status: Option<&str>,
) -> String {
    let status = match sub_status {
        Some(sub) => format!(
            "<samlp:StatusCode Value=\"{}\"><samlp:StatusCode Value=\"{}\"/></samlp:StatusCode>",
            escape(status),
            escape(sub)
        ),
        None => format!("<samlp:StatusCode Value=\"{}\"/>", escape(status)),
    };
    format!(
        "<samlp:LogoutResponse xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" \
         xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{id}\" Version=\"2.0\" IssueInstant=\"{instant}\"{destination} \
         InResponseTo=\"{irt}\"><saml:Issuer>{issuer}</saml:Issuer><samlp:Status>{status}</samlp:Status></samlp:LogoutResponse>",
        id = escape(id),
        instant = crate::identity::headers::rfc3339(issue_instant),
        destination = opt_attr("Destination", destination),
        irt = escape(in_response_to),
        issuer = escape(issuer),
    )
}

/// A parsed LogoutRequest or LogoutResponse (only what the SP acts on; `Debug` redacts the
/// NameID and SessionIndexes).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct LogoutMessage {
    /// `true` for a LogoutRequest, `false` for a LogoutResponse.
    pub is_request: bool,
    /// `ID`.
    pub id: String,
    /// `InResponseTo` (responses).
    pub in_response_to: Option<String>,
    /// `Destination`.
    pub destination: Option<String>,
    /// `Version`.
    pub version: Option<String>,
    /// `IssueInstant`, as sent.
    pub issue_instant: Option<String>,
    /// `NotOnOrAfter` (requests), as sent.
    pub not_on_or_after: Option<String>,
    /// `Issuer`.
    pub issuer: Option<String>,
    /// `NameID` (requests).
    pub name_id: Option<String>,
    /// `SessionIndex` values (requests).
    pub session_indexes: Vec<String>,
    /// Top-level `StatusCode@Value` (responses).
    pub status: Option<String>,
}

/// Why a logout message is unacceptable: the precise [`Refusal`] and operator text (no message
/// content).
#[derive(Debug, thiserror::Error)]
#[error("{1}")]
pub struct LogoutParseError(pub Refusal, pub String);

fn err(s: &str) -> LogoutParseError {
    LogoutParseError(Refusal::Malformed, s.to_owned())
}

impl LogoutMessage {
    /// "LogoutRequest" or "LogoutResponse", for log lines.
    pub fn kind(&self) -> &'static str {
        if self.is_request {
            "LogoutRequest"
        } else {
            "LogoutResponse"
        }
    }
}

/// Reads a LogoutRequest or LogoutResponse.
pub fn parse(xml: &[u8]) -> Result<LogoutMessage, LogoutParseError> {
    let mut reader = quick_xml::NsReader::from_reader(xml);
    reader.config_mut().trim_text(false);
    let mut msg = LogoutMessage::default();
    let mut depth = 0usize;
    // (depth-1 child local name, namespace ok) currently collecting text for.
    let mut collecting: Option<&'static str> = None;
    let mut text = String::new();
    let mut in_status = false;
    let mut buf = Vec::new();
    loop {
        let (resolved, event) = reader
            .read_resolved_event_into(&mut buf)
            .map_err(|_| LogoutParseError(Refusal::NotWellFormed, "not well-formed XML".to_owned()))?;
        let ns_is = |want: &[u8]| matches!(&resolved, ResolveResult::Bound(ns) if ns.as_ref() == want);
        match event {
            Event::DocType(_) => return Err(LogoutParseError(Refusal::Doctype, "DOCTYPE is not allowed".to_owned())),
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let local = e.local_name();
                let local = local.as_ref();
                if depth == 0 {
                    msg.is_request = match local {
                        b"LogoutRequest" if ns_is(PROTOCOL) => true,
                        b"LogoutResponse" if ns_is(PROTOCOL) => false,
                        _ => return Err(err("root is not a SAML LogoutRequest or LogoutResponse")),
                    };
                    for attr in e.attributes() {
                        let attr = attr.map_err(|_| err("bad attribute"))?;
                        let value = attr.unescape_value().map_err(|_| err("bad attribute value"))?.into_owned();
                        match attr.key.as_ref() {
                            b"ID" => msg.id = value,
                            b"InResponseTo" => msg.in_response_to = Some(value),
                            b"Destination" => msg.destination = Some(value),
                            b"Version" => msg.version = Some(value),
                            b"IssueInstant" => msg.issue_instant = Some(value),
                            b"NotOnOrAfter" => msg.not_on_or_after = Some(value),
                            _ => {}
                        }
                    }
                } else if depth == 1 {
                    collecting = match local {
                        b"Issuer" if ns_is(ASSERTION) => Some("Issuer"),
                        b"NameID" if ns_is(ASSERTION) => Some("NameID"),
                        b"SessionIndex" if ns_is(PROTOCOL) => Some("SessionIndex"),
                        _ => None,
                    };
                    in_status = local == b"Status" && ns_is(PROTOCOL);
                    text.clear();
                } else if depth == 2 && in_status && local == b"StatusCode" && ns_is(PROTOCOL) && msg.status.is_none() {
                    for attr in e.attributes().flatten() {
                        if attr.key.as_ref() == b"Value" {
                            msg.status = attr.unescape_value().ok().map(|v| v.into_owned());
                        }
                    }
                }
                if !empty {
                    depth += 1;
                } else if depth == 1 {
                    collecting = None;
                }
            }
            Event::Text(t) if depth == 2 && collecting.is_some() => {
                text.push_str(&t.decode().map_err(|_| err("bad text"))?);
            }
            Event::GeneralRef(r) if depth == 2 && collecting.is_some() => {
                let name = r.decode().map_err(|_| err("bad entity"))?;
                let resolved = quick_xml::escape::resolve_predefined_entity(&name)
                    .map(str::to_owned)
                    .or_else(|| r.resolve_char_ref().ok().flatten().map(String::from));
                text.push_str(&resolved.ok_or_else(|| err("unknown entity"))?);
            }
            Event::CData(c) if depth == 2 && collecting.is_some() => {
                text.push_str(&String::from_utf8_lossy(&c));
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if depth == 1 {
                    let value = text.trim().to_owned();
                    match collecting.take() {
                        Some("Issuer") => msg.issuer = Some(value),
                        Some("NameID") => msg.name_id = Some(value),
                        Some("SessionIndex") => msg.session_indexes.push(value),
                        _ => {}
                    }
                    in_status = false;
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if msg.id.is_empty() {
        return Err(err("message has no ID"));
    }
    if !msg.is_request && msg.status.is_none() {
        return Err(err("LogoutResponse has no StatusCode"));
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 15 review (item 12): a received LogoutRequest carries the user's NameID and
    /// SessionIndex; its derived `Debug` printed them.
    #[test]
    fn logout_message_debug_redacts_the_name_id_and_session_indexes() {
        let msg = LogoutMessage {
            is_request: true,
            name_id: Some("CZ/CZ/secret-bsi".into()),
            session_indexes: vec!["secret-index".into()],
            ..LogoutMessage::default()
        };
        let text = format!("{msg:?}");
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("is_request: true"), "{text}");
    }

    #[test]
    fn logout_subject_debug_redacts_the_name_id_and_session_index() {
        let subject = LogoutSubject {
            name_id: "CZ/CZ/secret-bsi".into(),
            format: None,
            name_qualifier: None,
            sp_name_qualifier: None,
            session_index: Some("secret-index".into()),
        };
        let dbg = format!("{subject:?}");
        assert!(!dbg.contains("secret"), "{dbg}");
    }

    fn subject() -> LogoutSubject {
        LogoutSubject {
            name_id: "CZ/CZ/6e25&x".to_owned(),
            format: Some("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent".to_owned()),
            name_qualifier: None,
            sp_name_qualifier: None,
            session_index: Some("_05ee8e73".to_owned()),
        }
    }

    #[test]
    fn our_logout_request_parses_back() {
        let xml = build_request("_r1", 0, "https://idp/slo", "https://gw/", &subject());
        assert!(xml.contains("Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:persistent\""));
        let msg = parse(xml.as_bytes()).unwrap();
        assert!(msg.is_request);
        assert_eq!(msg.id, "_r1");
        assert_eq!(msg.name_id.as_deref(), Some("CZ/CZ/6e25&x"));
        assert_eq!(msg.session_indexes, ["_05ee8e73"]);
        assert_eq!(msg.issuer.as_deref(), Some("https://gw/"));
    }

    #[test]
    fn nia_logout_response_example_parses() {
        // nia.md §11.6 (default namespace, Destination with the damage space).
        let xml = br#"<LogoutResponse ID="_a78e" Version="2.0" IssueInstant="2018-07-13T08:23:16Z" InResponseTo="a2ci56" Destination="https:// 123xxx123.com/auth/tnia/sso" xmlns="urn:oasis:names:tc:SAML:2.0:protocol">
  <Issuer xmlns="urn:oasis:names:tc:SAML:2.0:assertion">urn:microsoft:cgg2010:FPSTS</Issuer>
  <Status><StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success" /></Status>
</LogoutResponse>"#;
        let msg = parse(xml).unwrap();
        assert!(!msg.is_request);
        assert_eq!(msg.in_response_to.as_deref(), Some("a2ci56"));
        assert_eq!(msg.status.as_deref(), Some(STATUS_SUCCESS));
        assert_eq!(msg.issuer.as_deref(), Some("urn:microsoft:cgg2010:FPSTS"));
    }

    #[test]
    fn our_logout_response_parses_back() {
        let xml = build_response("_s", 0, Some("https://idp/slo"), "_req", "https://gw/", STATUS_SUCCESS, None);
        let msg = parse(xml.as_bytes()).unwrap();
        assert_eq!((msg.in_response_to.as_deref(), msg.status.as_deref()), (Some("_req"), Some(STATUS_SUCCESS)));
    }

    #[test]
    fn a_logout_message_with_a_doctype_is_refused() {
        let xml = b"<!DOCTYPE x [<!ENTITY e \"x\">]><samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" ID=\"a\"/>";
        assert_eq!(parse(xml).unwrap_err().0, Refusal::Doctype);
    }

    #[test]
    fn a_name_id_nested_deeper_or_in_another_namespace_is_ignored() {
        let xml = br#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:evil="urn:evil" ID="a"><samlp:Extensions><saml:NameID>victim</saml:NameID></samlp:Extensions><evil:NameID>victim</evil:NameID></samlp:LogoutRequest>"#;
        assert_eq!(parse(xml).unwrap().name_id, None);
    }

    #[test]
    fn a_logout_response_without_status_or_a_foreign_root_is_refused() {
        let no_status = br#"<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="a"/>"#;
        assert!(parse(no_status).is_err());
        assert!(parse(br#"<Response xmlns="urn:oasis:names:tc:SAML:2.0:protocol" ID="a"/>"#).is_err());
    }
}
