//! The SOAP operation of a request and the IČO in its body.
//!
//! The operation has up to two readings, like a path (see `http::path_forms`): the action
//! (SOAP 1.1 `SOAPAction` header, SOAP 1.2 `action` parameter of the `Content-Type`; its last
//! `/`- or `#`-separated segment, as WCF names `http://tempuri.org/IService/Method`) and the
//! local name of the first element of `soap:Body`. Stacks dispatch on either, so every
//! decision is taken on every reading (see `mod.rs`).
//!
//! The body is read with quick-xml's namespace-aware streaming reader: no DTD (refused, never
//! expanded), predefined entities only, bounded depth and element count; the caller bounds
//! its size before. The IČO is the text at a configured path of local names below the
//! operation element. A path that matches more than once is refused: the gateway would check
//! one value and the service could use another.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

pub use crate::api::fault::{SoapVersion, SOAP11_NS, SOAP12_NS};

/// Deepest element nesting read (a SOAP request of the ISOH services has well under ten).
pub const MAX_DEPTH: usize = 32;
/// Most elements read.
const MAX_ELEMENTS: usize = 50_000;
/// Longest IČO text accepted before validation, bytes.
const MAX_ICO_TEXT: usize = 64;

/// Why a SOAP body cannot be authorized (400 to the client; the reason is logged).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SoapError {
    /// A `<!DOCTYPE` or a non-predefined entity.
    #[error("SOAP body contains a DTD or an entity reference")]
    Dtd,
    /// Deeper than [`MAX_DEPTH`] or more than the element limit.
    #[error("SOAP body too deep or too large")]
    TooDeep,
    /// Not well-formed XML.
    #[error("SOAP body is not well-formed XML")]
    Malformed,
    /// The document is not a SOAP 1.1/1.2 envelope with one body.
    #[error("not a SOAP envelope")]
    NotSoap,
    /// `soap:Body` has no element, or more than one.
    #[error("SOAP body must contain exactly one operation element")]
    Operation,
    /// The IČO path matches more than one element.
    #[error("the IČO path matches more than one element")]
    AmbiguousIco,
    /// The IČO path's element has child elements (the value must be text).
    #[error("the IČO element is not a text element")]
    IcoNotText,
}

/// The `action` parameter of a SOAP 1.2 `Content-Type`.
fn action_param(headers: &http::HeaderMap) -> Option<String> {
    SoapVersion::of(headers)?;
    let value = headers.get(http::header::CONTENT_TYPE)?.to_str().ok()?;
    value
        .split(';')
        .skip(1)
        .filter_map(|p| p.split_once('='))
        .find_map(|(k, v)| k.trim().eq_ignore_ascii_case("action").then(|| v.trim().trim_matches('"').to_owned()))
        .filter(|a| !a.is_empty())
}

/// The action of a request: `SOAPAction` (1.1), else the 1.2 `action` parameter.
pub fn action(headers: &http::HeaderMap) -> Option<String> {
    let header = headers
        .get("soapaction")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().trim_matches('"').to_owned())
        .filter(|v| !v.is_empty());
    header.or_else(|| action_param(headers))
}

/// The operation name an action stands for: its last `/` or `#` segment.
pub fn action_name(action: &str) -> &str {
    action.rsplit(['/', '#']).next().unwrap_or(action)
}

/// What the body says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BodyView {
    /// Local name of the operation element (first child of `soap:Body`).
    pub operation: String,
    /// Text at the IČO path, trimmed, if the path matched.
    pub ico: Option<String>,
}

/// Reads a SOAP envelope: the operation element and, with `ico_path_for(operation)`, the text
/// at that path of local names below it.
pub fn read_body<'p>(
    xml: &[u8],
    ico_path_for: impl FnOnce(&str) -> Option<&'p [String]>,
) -> Result<BodyView, SoapError> {
    let mut reader = NsReader::from_reader(xml);
    let config = reader.config_mut();
    config.expand_empty_elements = true;
    config.check_end_names = true;

    // The open elements' local names below the operation element (depth counted separately).
    let mut depth = 0usize;
    let mut elements = 0usize;
    let mut envelope_ns: Option<&'static str> = None;
    let mut in_body = false;
    let mut seen_body = false;
    let mut view: Option<BodyView> = None;
    let mut ico_path: Option<&'p [String]> = None;
    let mut ico_path_for = Some(ico_path_for);
    // Path below the operation element; `matched` = how many leading entries match the path.
    let mut below: Vec<bool> = Vec::new();
    let mut capturing = false;
    let mut captured = String::new();
    let mut matches = 0usize;
    let mut op_depth = 0usize;

    loop {
        let event = reader.read_event().map_err(|e| match e {
            quick_xml::Error::Escape(quick_xml::escape::EscapeError::UnrecognizedEntity(..)) => SoapError::Dtd,
            _ => SoapError::Malformed,
        })?;
        match event {
            Event::Start(start) => {
                depth += 1;
                elements += 1;
                if depth > MAX_DEPTH || elements > MAX_ELEMENTS {
                    return Err(SoapError::TooDeep);
                }
                if capturing {
                    return Err(SoapError::IcoNotText);
                }
                let (ns, local) = reader.resolve_element(start.name());
                let ns = match ns {
                    ResolveResult::Bound(ns) => Some(ns.as_ref().to_vec()),
                    ResolveResult::Unbound => None,
                    ResolveResult::Unknown(_) => return Err(SoapError::Malformed),
                };
                let local = std::str::from_utf8(local.as_ref()).map_err(|_| SoapError::Malformed)?;
                match depth {
                    1 => {
                        envelope_ns = match (ns.as_deref(), local) {
                            (Some(n), "Envelope") if n == SOAP11_NS.as_bytes() => Some(SOAP11_NS),
                            (Some(n), "Envelope") if n == SOAP12_NS.as_bytes() => Some(SOAP12_NS),
                            _ => return Err(SoapError::NotSoap),
                        };
                    }
                    2 => {
                        let env = envelope_ns.unwrap_or_default().as_bytes();
                        if ns.as_deref() == Some(env) && local == "Body" {
                            if seen_body {
                                return Err(SoapError::NotSoap);
                            }
                            seen_body = true;
                            in_body = true;
                        }
                    }
                    3 if in_body => {
                        if view.is_some() {
                            return Err(SoapError::Operation);
                        }
                        ico_path = ico_path_for.take().and_then(|f| f(local));
                        view = Some(BodyView { operation: local.to_owned(), ico: None });
                        op_depth = depth;
                        below.clear();
                    }
                    d if in_body && d > 3 && view.is_some() => {
                        // Below the operation element: does this element continue a match?
                        let level = d - op_depth - 1;
                        let parent_matches = level == 0 || below.get(level - 1).copied().unwrap_or(false);
                        let here = parent_matches && ico_path.and_then(|p| p.get(level)).is_some_and(|n| n == local);
                        below.truncate(level);
                        below.push(here);
                        if here && ico_path.is_some_and(|p| p.len() == level + 1) {
                            matches += 1;
                            if matches > 1 {
                                return Err(SoapError::AmbiguousIco);
                            }
                            capturing = true;
                            captured.clear();
                        }
                    }
                    _ => {}
                }
            }
            Event::End(_) => {
                if capturing {
                    capturing = false;
                    if let Some(v) = view.as_mut() {
                        v.ico = Some(captured.trim().to_owned());
                    }
                }
                if depth == 2 {
                    in_body = false;
                }
                depth = depth.saturating_sub(1);
            }
            Event::Text(text) if capturing => {
                let text = text.xml_content().map_err(|_| SoapError::Malformed)?;
                if captured.len() + text.len() > MAX_ICO_TEXT {
                    return Err(SoapError::IcoNotText);
                }
                captured.push_str(&text);
            }
            Event::CData(cdata) if capturing => {
                let text = cdata.xml_content().map_err(|_| SoapError::Malformed)?;
                if captured.len() + text.len() > MAX_ICO_TEXT {
                    return Err(SoapError::IcoNotText);
                }
                captured.push_str(&text);
            }
            Event::GeneralRef(reference) => {
                let resolved = if reference.is_char_ref() {
                    match reference.resolve_char_ref() {
                        Ok(Some(c)) if crate::xml::is_xml_char(c) => c.to_string(),
                        _ => return Err(SoapError::Malformed),
                    }
                } else {
                    let name = reference.decode().map_err(|_| SoapError::Malformed)?;
                    quick_xml::escape::resolve_predefined_entity(&name).ok_or(SoapError::Dtd)?.to_owned()
                };
                if capturing {
                    captured.push_str(&resolved);
                }
            }
            Event::DocType(_) => return Err(SoapError::Dtd),
            Event::Eof => break,
            _ => {}
        }
    }
    if depth != 0 || envelope_ns.is_none() {
        return Err(SoapError::Malformed);
    }
    if !seen_body {
        return Err(SoapError::NotSoap);
    }
    view.ok_or(SoapError::Operation)
}

/// A Czech IČO, normalized to its 8-digit zero-padded form (`7064` → `00007064`); `None` if
/// the text is not 1–8 ASCII digits.
pub fn normalize_ico(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty() && text.len() <= 8 && text.bytes().all(|b| b.is_ascii_digit())).then(|| format!("{text:0>8}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> Vec<String> {
        p.split('/').map(str::to_owned).collect()
    }

    fn env11(body: &str) -> String {
        format!(
            "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"{SOAP11_NS}\"><s:Header><h:Ico xmlns:h=\"urn:h\">99999999</h:Ico></s:Header><s:Body>{body}</s:Body></s:Envelope>"
        )
    }

    #[test]
    fn soap11_operation_and_ico_by_local_names_whatever_the_prefixes() {
        let p = path("Zadost/Ico");
        let xml = env11("<m:Poskytni xmlns:m=\"urn:isoh\"><m:Zadost><x:Ico xmlns:x=\"urn:other\"> 7064 </x:Ico></m:Zadost></m:Poskytni>");
        let view = read_body(xml.as_bytes(), |op| (op == "Poskytni").then_some(p.as_slice())).unwrap();
        assert_eq!(view, BodyView { operation: "Poskytni".into(), ico: Some("7064".into()) });
        assert_eq!(normalize_ico(view.ico.as_deref().unwrap()).as_deref(), Some("00007064"));
    }

    #[test]
    fn soap12_default_namespace_and_missing_ico() {
        let p = path("Zadost/Ico");
        let xml = format!(
            "<Envelope xmlns=\"{SOAP12_NS}\"><Body><Poskytni xmlns=\"urn:isoh\"><Zadost><Jine>1</Jine></Zadost><Ico>1</Ico></Poskytni></Body></Envelope>"
        );
        let view = read_body(xml.as_bytes(), |_| Some(p.as_slice())).unwrap();
        assert_eq!(view, BodyView { operation: "Poskytni".into(), ico: None });
    }

    #[test]
    fn ico_in_header_or_at_another_depth_is_not_taken() {
        let p = path("Ico");
        let xml = env11("<Op xmlns=\"urn:x\"><Zadost><Ico>1</Ico></Zadost></Op>");
        assert_eq!(read_body(xml.as_bytes(), |_| Some(p.as_slice())).unwrap().ico, None);
    }

    #[test]
    fn a_path_matching_twice_is_refused() {
        let p = path("Zadost/Ico");
        let xml = env11("<Op><Zadost><Ico>1</Ico></Zadost><Zadost><Ico>2</Ico></Zadost></Op>");
        assert_eq!(read_body(xml.as_bytes(), |_| Some(p.as_slice())), Err(SoapError::AmbiguousIco));
        let nested = env11("<Op><Zadost><Ico><Ico>2</Ico></Ico></Zadost></Op>");
        assert_eq!(read_body(nested.as_bytes(), |_| Some(p.as_slice())), Err(SoapError::IcoNotText));
    }

    #[test]
    fn entities_split_ico_text_is_joined_and_dtds_refused() {
        let p = path("Ico");
        let xml = env11("<Op><Ico>00&#55;064</Ico></Op>");
        assert_eq!(read_body(xml.as_bytes(), |_| Some(p.as_slice())).unwrap().ico.as_deref(), Some("007064"));
        let dtd = format!("<!DOCTYPE x [<!ENTITY a \"1\">]>{}", env11("<Op><Ico>&a;</Ico></Op>"));
        assert_eq!(read_body(dtd.as_bytes(), |_| Some(p.as_slice())), Err(SoapError::Dtd));
        let ent = env11("<Op><Ico>&a;</Ico></Op>");
        assert_eq!(read_body(ent.as_bytes(), |_| Some(p.as_slice())), Err(SoapError::Dtd));
    }

    #[test]
    fn depth_bombs_are_refused_before_the_end() {
        let bomb = env11(&format!("<Op>{}{}</Op>", "<a>".repeat(10_000), "</a>".repeat(10_000)));
        assert_eq!(read_body(bomb.as_bytes(), |_| None), Err(SoapError::TooDeep));
        let wide = env11(&format!("<Op>{}</Op>", "<a/>".repeat(60_000)));
        assert_eq!(read_body(wide.as_bytes(), |_| None), Err(SoapError::TooDeep));
    }

    #[test]
    fn not_soap_or_two_operations_or_broken_xml_is_refused() {
        assert_eq!(read_body(b"<Envelope><Body><Op/></Body></Envelope>", |_| None), Err(SoapError::NotSoap));
        assert_eq!(read_body(env11("<A/><B/>").as_bytes(), |_| None), Err(SoapError::Operation));
        assert_eq!(read_body(env11("").as_bytes(), |_| None), Err(SoapError::Operation));
        assert_eq!(read_body(env11("<Op>").as_bytes(), |_| None), Err(SoapError::Malformed));
        assert_eq!(read_body(b"{\"json\": 1}", |_| None), Err(SoapError::Malformed));
        let two_bodies =
            format!("<s:Envelope xmlns:s=\"{SOAP11_NS}\"><s:Body><A/></s:Body><s:Body><B/></s:Body></s:Envelope>");
        assert_eq!(read_body(two_bodies.as_bytes(), |_| None), Err(SoapError::NotSoap));
    }

    #[test]
    fn action_from_header_or_content_type_parameter() {
        let mut h = http::HeaderMap::new();
        h.insert(
            "content-type",
            "application/soap+xml; charset=utf-8; action=\"http://tempuri.org/IHlaseniOrp/PrijmiData\""
                .parse()
                .unwrap(),
        );
        assert_eq!(SoapVersion::of(&h), Some(SoapVersion::V12));
        assert_eq!(action(&h).as_deref().map(action_name), Some("PrijmiData"));
        h.insert("content-type", "text/xml; charset=utf-8".parse().unwrap());
        h.insert("soapaction", "\"urn:isoh#Poskytni\"".parse().unwrap());
        assert_eq!(action_param(&h), None);
        assert_eq!(action(&h).as_deref().map(action_name), Some("Poskytni"));
        h.remove("soapaction");
        h.insert("content-type", "application/json; action=x".parse().unwrap());
        assert_eq!(action(&h), None);
    }

    #[test]
    fn ico_normalization() {
        assert_eq!(normalize_ico("7064").as_deref(), Some("00007064"));
        assert_eq!(normalize_ico("00164801").as_deref(), Some("00164801"));
        for bad in ["", "123456789", "12a4", "1 2", "-1", "١٢٣"] {
            assert_eq!(normalize_ico(bad), None, "{bad}");
        }
    }
}
