//! A namespace-aware XML tree parser for small, untrusted documents: the KAAS SOAP
//! responses and requests, and the SAML SP's view of canonical signed XML (the Response, the
//! Assertion, base64-XML attribute values).
//!
//! Threats: entity expansion (billion laughs), XXE, memory and CPU exhaustion. Any
//! `<!DOCTYPE` and any entity reference other than the five predefined ones and character
//! references is refused ([`XmlError::Dtd`]): nothing is ever expanded. Input size, nesting
//! depth and element count are bounded. Errors carry structure only (names, byte offsets),
//! never document text, which may hold tokens or personal data.
//!
//! A leaf module: it knows no protocol, so SAML and KAAS share it without importing each
//! other.

use std::borrow::Cow;

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// Largest document (in bytes) the parser accepts.
///
/// Real KAAS responses are a few kilobytes, canonical SAML Responses tens; anything near this
/// size is an error page or an attack.
pub(crate) const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// Deepest element nesting the parser accepts. The deepest legitimate KAAS path
/// (`Envelope/Body/…Response/attributes/MistoNarozeni/MistoNarozeniSvet/stat`)
/// has seven levels.
const MAX_DEPTH: usize = 32;

/// Most elements a document may contain. Bounds the work done on input that
/// consists of many tiny elements.
const MAX_ELEMENTS: usize = 50_000;

/// Longest document-supplied text (names, namespaces) copied into an error value.
pub(crate) const MAX_ERROR_TEXT: usize = 256;

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum XmlError {
    /// The input is larger than [`MAX_DOCUMENT_BYTES`].
    #[error("XML document larger than {limit} bytes")]
    TooLarge {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// A `<!DOCTYPE>` or a non-predefined entity reference (refused without expansion).
    #[error("XML document contains a DTD or a non-predefined entity reference")]
    Dtd,
    /// Not well-formed (namespace-aware) XML, truncated, or beyond the structural limits.
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// The input holds no element at all (e.g. a JSON or empty body).
    #[error("no XML document element")]
    NoElement,
}

/// Caps document-supplied text before it goes into an error value.
pub(crate) fn truncate(s: &str) -> String {
    let mut out: String = s.chars().take(MAX_ERROR_TEXT).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// Whether XML 1.0 can carry `c` at all (production `Char`).
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

/// One element of the parsed document (also the SAML SP's view of canonical signed XML).
#[derive(Debug, Default)]
pub(crate) struct Node {
    /// Resolved namespace; `None` if unqualified.
    pub(crate) ns: Option<String>,
    /// Local name.
    pub(crate) local: String,
    /// Attributes other than namespace declarations.
    pub(crate) attrs: Vec<AttrValue>,
    /// Child elements in document order.
    pub(crate) children: Vec<Node>,
    /// Character data directly inside this element, references resolved, comments dropped.
    pub(crate) text: String,
}

/// One (non-`xmlns`) attribute.
#[derive(Debug)]
pub(crate) struct AttrValue {
    /// Resolved namespace; `None` if unqualified.
    pub(crate) ns: Option<String>,
    /// Local name.
    pub(crate) local: String,
    /// Unescaped value.
    pub(crate) value: String,
}

impl Node {
    /// Namespace-qualified name test.
    pub(crate) fn is(&self, ns: &str, local: &str) -> bool {
        self.local == local && self.ns.as_deref() == Some(ns)
    }
}

/// Parses a whole document into a [`Node`] tree with namespace resolution, refusing DTDs and
/// non-predefined entities and enforcing the size, depth and element-count limits.
/// `check_root` sees the document element (without children) before anything else is read,
/// so a caller refuses a document of the wrong kind without reading further; its error type
/// is the caller's, which takes the parser's [`XmlError`]s too.
pub(crate) fn parse_tree<E: From<XmlError>>(
    xml: &[u8],
    check_root: impl Fn(&Node) -> Result<(), E>,
) -> Result<Node, E> {
    if xml.len() > MAX_DOCUMENT_BYTES {
        return Err(XmlError::TooLarge { limit: MAX_DOCUMENT_BYTES }.into());
    }
    let mut reader = NsReader::from_reader(xml);
    let config = reader.config_mut();
    config.expand_empty_elements = true;
    config.check_end_names = true;
    config.trim_text(false);

    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let mut elements = 0usize;
    loop {
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(e) => return Err(map_xml_error(&e, reader.error_position()).into()),
        };
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                // `expand_empty_elements` makes `Empty` unreachable, but it
                // is handled correctly anyway.
                let is_empty = matches!(event, Event::Empty(_));
                if root.is_some() {
                    return Err(XmlError::Malformed("element after the document element".into()).into());
                }
                elements += 1;
                if stack.len() >= MAX_DEPTH || elements > MAX_ELEMENTS {
                    return Err(XmlError::Malformed("document too deep or too large".into()).into());
                }
                let node = new_node(&reader, start).map_err(E::from)?;
                if stack.is_empty() {
                    check_root(&node)?;
                }
                stack.push(node);
                if is_empty {
                    close_node(&mut stack, &mut root).map_err(E::from)?;
                }
            }
            Event::End(_) => close_node(&mut stack, &mut root).map_err(E::from)?,
            Event::Text(text) => {
                let text = text.xml_content().map_err(|_| XmlError::Malformed("invalid UTF-8 in text".into()))?;
                append_text(&mut stack, &text);
            }
            Event::CData(cdata) => {
                let text = cdata.xml_content().map_err(|_| XmlError::Malformed("invalid UTF-8 in CDATA".into()))?;
                append_text(&mut stack, &text);
            }
            Event::GeneralRef(reference) => {
                let resolved = resolve_reference(&reference).map_err(E::from)?;
                append_text(&mut stack, &resolved);
            }
            Event::DocType(_) => return Err(XmlError::Dtd.into()),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Malformed("truncated document: unclosed elements".into()).into());
    }
    // No element at all (e.g. a JSON error body) is "not XML" to the caller, not malformed.
    root.ok_or_else(|| XmlError::NoElement.into())
}

/// Pops the innermost open element and attaches it to its parent (or makes
/// it the document element).
fn close_node(stack: &mut Vec<Node>, root: &mut Option<Node>) -> Result<(), XmlError> {
    let node = stack.pop().ok_or_else(|| XmlError::Malformed("unbalanced end tag".into()))?;
    match stack.last_mut() {
        Some(parent) => parent.children.push(node),
        None => *root = Some(node),
    }
    Ok(())
}

/// Appends character data to the innermost open element. Text outside the
/// document element is ignored (quick-xml rejects non-whitespace there only
/// loosely, and it carries no meaning for us).
fn append_text(stack: &mut [Node], text: &str) {
    if let Some(node) = stack.last_mut() {
        node.text.push_str(text);
    }
}

/// Builds a node for a start tag, resolving attribute namespaces and
/// unescaping attribute values (predefined entities only).
fn new_node(reader: &NsReader<&[u8]>, start: &BytesStart<'_>) -> Result<Node, XmlError> {
    let (resolved, local) = reader.resolve_element(start.name());
    let ns = owned_namespace(resolved)?;
    let local = utf8(local.as_ref())?;
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| XmlError::Malformed(format!("bad attribute: {e}")))?;
        if attr.key.as_namespace_binding().is_some() {
            continue;
        }
        let (resolved, attr_local) = reader.resolve_attribute(attr.key);
        let attr_ns = owned_namespace(resolved)?;
        let value = attr
            .decode_and_unescape_value(reader.decoder())
            .map_err(|e| map_xml_error(&e, reader.buffer_position()))?;
        attrs.push(AttrValue { ns: attr_ns, local: utf8(attr_local.as_ref())?, value: value.into_owned() });
    }
    Ok(Node { ns, local, attrs, ..Node::default() })
}

/// Converts a resolution result into an owned namespace; an undeclared
/// prefix makes the document namespace-ill-formed.
fn owned_namespace(resolved: ResolveResult<'_>) -> Result<Option<String>, XmlError> {
    match resolved {
        ResolveResult::Bound(ns) => Ok(Some(utf8(ns.as_ref())?)),
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(_) => Err(XmlError::Malformed("undeclared namespace prefix".into())),
    }
}

/// Resolves `&…;` in text: character references and the five predefined
/// entities. Anything else could only come from a DTD, which is refused.
fn resolve_reference(reference: &BytesRef<'_>) -> Result<String, XmlError> {
    if reference.is_char_ref() {
        return match reference.resolve_char_ref() {
            Ok(Some(c)) if is_xml_char(c) => Ok(c.to_string()),
            _ => Err(XmlError::Malformed("invalid character reference".into())),
        };
    }
    let name = reference.decode().map_err(|_| XmlError::Malformed("invalid UTF-8 in entity reference".into()))?;
    resolve_predefined_entity(&name).map(str::to_owned).ok_or(XmlError::Dtd)
}

/// UTF-8 view of a name.
fn utf8(bytes: &[u8]) -> Result<String, XmlError> {
    std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| XmlError::Malformed("invalid UTF-8 in a name".into()))
}

/// Maps a quick-xml error without copying document text into the message:
/// escape and encoding errors could quote element content.
fn map_xml_error(err: &quick_xml::Error, position: u64) -> XmlError {
    use quick_xml::escape::EscapeError;
    let what: Cow<'static, str> = match err {
        quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(..)) => return XmlError::Dtd,
        quick_xml::Error::Escape(_) => "invalid character or entity reference".into(),
        quick_xml::Error::Encoding(_) => "invalid UTF-8".into(),
        quick_xml::Error::Io(_) => "I/O error".into(),
        quick_xml::Error::Syntax(e) => e.to_string().into(),
        quick_xml::Error::IllFormed(e) => e.to_string().into(),
        quick_xml::Error::InvalidAttr(e) => e.to_string().into(),
        quick_xml::Error::Namespace(e) => e.to_string().into(),
    };
    XmlError::Malformed(format!("{} at byte {position}", truncate(&what)))
}
