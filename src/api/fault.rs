//! Failure answers of API paths: the RFC 6750 / `SAML` challenge, and the body — a SOAP Fault
//! in the request's SOAP version on SOAP paths, else small JSON.
//!
//! SOAP 1.1 (WCF `basicHttpBinding`): `text/xml; charset=utf-8`, `soap:Envelope` of
//! `http://schemas.xmlsoap.org/soap/envelope/` with `faultcode` (`soap:Client` /
//! `soap:Server`) and `faultstring`. SOAP 1.2 (`wsHttpBinding`): `application/soap+xml;
//! charset=utf-8`, envelope `http://www.w3.org/2003/05/soap-envelope` with `Code/Value`
//! (`soap:Sender` / `soap:Receiver`) and `Reason/Text xml:lang`. Every text is XML-escaped.
//!
//! [`error_response`] is the one builder: the authorizer's 403 uses it too.

use axum::body::Body;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use super::{ApiApp, ApiFailure, Route};
use crate::gateway::request::RequestInfo;

/// SOAP 1.1 envelope namespace.
pub const SOAP11_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// SOAP 1.2 envelope namespace.
pub const SOAP12_NS: &str = "http://www.w3.org/2003/05/soap-envelope";

/// The SOAP version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoapVersion {
    /// SOAP 1.1 (`text/xml`).
    V11,
    /// SOAP 1.2 (`application/soap+xml`).
    V12,
}

impl SoapVersion {
    /// The version the request's `Content-Type` names: `application/soap+xml` is 1.2,
    /// `text/xml` 1.1; anything else (or none) is not SOAP.
    pub fn of(headers: &HeaderMap) -> Option<SoapVersion> {
        let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
        let media = value.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/soap+xml") {
            Some(SoapVersion::V12)
        } else if media.eq_ignore_ascii_case("text/xml") {
            Some(SoapVersion::V11)
        } else {
            None
        }
    }

    /// The `Content-Type` of a fault in this version.
    pub fn content_type(self) -> &'static str {
        match self {
            SoapVersion::V11 => "text/xml; charset=utf-8",
            SoapVersion::V12 => "application/soap+xml; charset=utf-8",
        }
    }
}

/// Whose fault a SOAP Fault reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCode {
    /// The caller's (credential, authorization): 1.1 `soap:Client`, 1.2 `soap:Sender`.
    Sender,
    /// The service side's (identity provider down): 1.1 `soap:Server`, 1.2 `soap:Receiver`.
    Receiver,
}

impl FaultCode {
    /// The code for an HTTP status: 5xx is the receiver's, everything else the sender's.
    pub fn for_status(status: StatusCode) -> FaultCode {
        if status.is_server_error() {
            FaultCode::Receiver
        } else {
            FaultCode::Sender
        }
    }

    fn qname(self, version: SoapVersion) -> &'static str {
        match (self, version) {
            (FaultCode::Sender, SoapVersion::V11) => "soap:Client",
            (FaultCode::Receiver, SoapVersion::V11) => "soap:Server",
            (FaultCode::Sender, SoapVersion::V12) => "soap:Sender",
            (FaultCode::Receiver, SoapVersion::V12) => "soap:Receiver",
        }
    }
}

/// Escapes text for XML character data and attribute values.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The SOAP Fault envelope (`reason` in English, `xml:lang="en"` in 1.2).
pub fn soap_fault_xml(version: SoapVersion, code: FaultCode, reason: &str) -> String {
    let reason = xml_escape(reason);
    let code = code.qname(version);
    match version {
        SoapVersion::V11 => format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
             <soap:Envelope xmlns:soap=\"{SOAP11_NS}\"><soap:Body><soap:Fault>\
             <faultcode>{code}</faultcode><faultstring xml:lang=\"en\">{reason}</faultstring>\
             </soap:Fault></soap:Body></soap:Envelope>"
        ),
        SoapVersion::V12 => format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
             <soap:Envelope xmlns:soap=\"{SOAP12_NS}\"><soap:Body><soap:Fault>\
             <soap:Code><soap:Value>{code}</soap:Value></soap:Code>\
             <soap:Reason><soap:Text xml:lang=\"en\">{reason}</soap:Text></soap:Reason>\
             </soap:Fault></soap:Body></soap:Envelope>"
        ),
    }
}

/// An API error answer: a SOAP Fault (when `soap` is set) or JSON
/// `{"error": code, "error_description": reason, "request_id": …}`, with `status`, never
/// cached. `code` is a short machine code (`invalid_token`, `forbidden`, …); `reason` the
/// sentence a client (WCF shows `faultstring`) displays, without personal data.
pub fn error_response(
    soap: Option<SoapVersion>,
    status: StatusCode,
    code: &str,
    reason: &str,
    info: &RequestInfo,
) -> Response<Body> {
    let (content_type, body) = match soap {
        Some(version) => {
            let text = format!("{reason} (request id {})", info.id());
            (version.content_type(), soap_fault_xml(version, FaultCode::for_status(status), &text))
        }
        None => (
            "application/json",
            serde_json::json!({ "error": code, "error_description": reason, "request_id": info.id() }).to_string(),
        ),
    };
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    resp
}

/// What the client is told about a failure: machine code and sentence.
fn describe(failure: &ApiFailure) -> (&'static str, &'static str) {
    match failure {
        ApiFailure::Missing => ("unauthenticated", "Authentication required: send Authorization: Bearer or SAML"),
        ApiFailure::Malformed(_) => ("invalid_request", "Malformed Authorization header"),
        ApiFailure::Refused { scheme: super::AuthMethod::SamlHeader, .. } => {
            ("invalid_saml", "The SAML Response is invalid, expired or not issued to an accepted application")
        }
        ApiFailure::Refused { .. } => ("invalid_token", "The access token is invalid, expired or not accepted here"),
        ApiFailure::Unavailable { .. } => {
            ("temporarily_unavailable", "The identity provider is unavailable; try again later")
        }
    }
}

/// A quoted-string for a challenge parameter (RFC 9110 §5.6.4).
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars().filter(|c| c.is_ascii() && !c.is_ascii_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The 401 / 400 / 503 answer for an authentication failure on `route`: a challenge for
/// every scheme the route accepts (401 only; RFC 6750 §3: `error` only when a token was
/// presented), `Retry-After` when the CPU pool was full.
pub fn failure_response(
    api: &ApiApp,
    route: &Route,
    headers: &HeaderMap,
    failure: &ApiFailure,
    info: &RequestInfo,
) -> Response<Body> {
    let (code, reason) = describe(failure);
    let status = failure.status();
    let mut resp = error_response(route.soap_version(headers), status, code, reason, info);
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::BAD_REQUEST {
        let realm = quoted(api.realm());
        let failed = failure.scheme();
        if route.bearer {
            let mut challenge = format!("Bearer realm={realm}");
            match (failed, failure) {
                (Some(super::AuthMethod::Bearer), _) => {
                    challenge.push_str(&format!(", error=\"invalid_token\", error_description={}", quoted(reason)))
                }
                (_, ApiFailure::Malformed(_)) => challenge.push_str(", error=\"invalid_request\""),
                _ => {}
            }
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                resp.headers_mut().append(WWW_AUTHENTICATE, v);
            }
        }
        if route.saml {
            let mut challenge = format!("SAML realm={realm}");
            if failed == Some(super::AuthMethod::SamlHeader) {
                challenge.push_str(&format!(", error=\"invalid_token\", error_description={}", quoted(reason)));
            }
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                resp.headers_mut().append(WWW_AUTHENTICATE, v);
            }
        }
    }
    if matches!(failure, ApiFailure::Unavailable { busy: true, .. }) {
        resp.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> RequestInfo {
        let conn = crate::gateway::request::ConnInfo { peer: "127.0.0.1:1".parse().unwrap(), tls: false };
        RequestInfo::new(&HeaderMap::new(), &conn, &[])
    }

    fn body(resp: Response<Body>) -> String {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let bytes = rt.block_on(axum::body::to_bytes(resp.into_body(), 1 << 20)).unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// The fault parsed with the gateway's own XML reader.
    struct Doc(crate::xml::Node);

    fn parse(xml: &str) -> Doc {
        Doc(crate::xml::parse_tree::<crate::xml::XmlError>(xml.as_bytes(), |_| Ok(())).unwrap())
    }

    fn find<'a>(n: &'a crate::xml::Node, local: &str) -> Option<&'a crate::xml::Node> {
        if n.local == local {
            return Some(n);
        }
        n.children.iter().find_map(|c| find(c, local))
    }

    impl Doc {
        fn text(&self, local: &str) -> Option<&str> {
            find(&self.0, local).map(|e| e.text.as_str())
        }
        fn ns_of(&self, local: &str) -> Option<&str> {
            find(&self.0, local).and_then(|e| e.ns.as_deref())
        }
        fn attr(&self, local: &str, name: &str) -> Option<&str> {
            find(&self.0, local).and_then(|e| e.attrs.iter().find(|a| a.local == name).map(|a| a.value.as_str()))
        }
    }

    #[test]
    fn version_comes_from_the_content_type() {
        let mut h = HeaderMap::new();
        assert_eq!(SoapVersion::of(&h), None);
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/xml; charset=utf-8"));
        assert_eq!(SoapVersion::of(&h), Some(SoapVersion::V11));
        h.insert(CONTENT_TYPE, HeaderValue::from_static("Application/SOAP+xml;charset=utf-8;action=\"urn:x\""));
        assert_eq!(SoapVersion::of(&h), Some(SoapVersion::V12));
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert_eq!(SoapVersion::of(&h), None);
    }

    #[test]
    fn soap11_fault_has_faultcode_and_escaped_faultstring() {
        let resp =
            error_response(Some(SoapVersion::V11), StatusCode::UNAUTHORIZED, "x", "bad <token> & \"x\"", &info());
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(resp.headers()[CONTENT_TYPE], "text/xml; charset=utf-8");
        let xml = body(resp);
        let doc = parse(&xml);
        assert_eq!(doc.ns_of("Envelope"), Some(SOAP11_NS));
        assert_eq!(doc.ns_of("Fault"), Some(SOAP11_NS));
        assert_eq!(doc.text("faultcode"), Some("soap:Client"));
        assert!(doc.text("faultstring").unwrap().starts_with("bad <token> & \"x\" (request id "), "{xml}");
        assert!(!xml.contains("<token>"), "{xml}");
    }

    #[test]
    fn soap12_fault_has_code_value_and_reason_text() {
        let resp = error_response(Some(SoapVersion::V12), StatusCode::SERVICE_UNAVAILABLE, "x", "down", &info());
        assert_eq!(resp.headers()[CONTENT_TYPE], "application/soap+xml; charset=utf-8");
        let doc = parse(&body(resp));
        assert_eq!(doc.ns_of("Envelope"), Some(SOAP12_NS));
        assert_eq!(doc.ns_of("Value"), Some(SOAP12_NS));
        assert_eq!(doc.text("Value"), Some("soap:Receiver"));
        assert_eq!(doc.attr("Text", "lang"), Some("en"));
        assert!(doc.text("Text").unwrap().starts_with("down (request id "));
        let sender = parse(&body(error_response(Some(SoapVersion::V12), StatusCode::FORBIDDEN, "x", "no", &info())));
        assert_eq!(sender.text("Value"), Some("soap:Sender"));
    }

    #[test]
    fn json_error_without_soap() {
        let resp = error_response(None, StatusCode::FORBIDDEN, "forbidden", "no role", &info());
        assert_eq!(resp.headers()[CONTENT_TYPE], "application/json");
        let v: serde_json::Value = serde_json::from_str(&body(resp)).unwrap();
        assert_eq!(v["error"], "forbidden");
        assert_eq!(v["error_description"], "no role");
    }

    #[test]
    fn escaping_covers_markup_and_control_characters() {
        assert_eq!(xml_escape("a<b>&'\"\u{1}"), "a&lt;b&gt;&amp;&apos;&quot;\u{FFFD}");
        assert_eq!(quoted("a\"b\\c\u{7}č"), "\"a\\\"b\\\\c\"");
    }
}
