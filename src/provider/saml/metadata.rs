//! SAML metadata: the SP's own document (what NIA pulls the encryption certificate from,
//! nia.md §7.2) and the IdP's (endpoints and signing certificates).
//!
//! IdP metadata decides whose signatures the SP trusts, so when a signer certificate is pinned
//! only the signed, canonical bytes are read (xmlsec::verify_root), and a refresh that fails in
//! any way keeps the last good copy instead of leaving the provider without keys.

use base64::Engine;
use quick_xml::escape::escape;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

const MD: &[u8] = b"urn:oasis:names:tc:SAML:2.0:metadata";
const DS: &[u8] = b"http://www.w3.org/2000/09/xmldsig#";

/// What the SP publishes.
#[derive(Debug, Clone)]
pub struct SpMetadata<'a> {
    /// entityID.
    pub entity_id: &'a str,
    /// ACS URL (HTTP-POST).
    pub acs_url: &'a str,
    /// SLO URL (HTTP-Redirect and HTTP-POST).
    pub slo_url: &'a str,
    /// DER of the signing certificate.
    pub signing_cert: Option<&'a [u8]>,
    /// DER of every encryption certificate (current and previous: all during a rollover).
    pub encryption_certs: &'a [Vec<u8>],
    /// NameIDFormat.
    pub name_id_format: &'a str,
    /// `AuthnRequestsSigned`.
    pub requests_signed: bool,
}

fn key_descriptor(usage: &str, der: &[u8]) -> String {
    format!(
        "<md:KeyDescriptor use=\"{usage}\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate>\
         </ds:X509Data></ds:KeyInfo></md:KeyDescriptor>",
        base64::engine::general_purpose::STANDARD.encode(der)
    )
}

/// The SP metadata document (SAML Metadata §2.4.4).
pub fn sp_metadata(m: &SpMetadata<'_>) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" \
         xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" entityID=\"{}\">\
         <md:SPSSODescriptor AuthnRequestsSigned=\"{}\" WantAssertionsSigned=\"false\" \
         protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">",
        escape(m.entity_id),
        m.requests_signed
    );
    if let Some(der) = m.signing_cert {
        xml.push_str(&key_descriptor("signing", der));
    }
    for der in m.encryption_certs {
        xml.push_str(&key_descriptor("encryption", der));
    }
    let slo = escape(m.slo_url);
    xml.push_str(&format!(
        "<md:SingleLogoutService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" Location=\"{slo}\"/>\
         <md:SingleLogoutService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" Location=\"{slo}\"/>\
         <md:NameIDFormat>{}</md:NameIDFormat>\
         <md:AssertionConsumerService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" Location=\"{}\" \
         index=\"0\" isDefault=\"true\"/></md:SPSSODescriptor></md:EntityDescriptor>\n",
        escape(m.name_id_format),
        escape(m.acs_url)
    ));
    xml
}

/// An endpoint: binding URI and location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `Binding`.
    pub binding: String,
    /// `Location`.
    pub location: String,
}

/// What the SP uses from IdP metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdpMetadata {
    /// entityID.
    pub entity_id: String,
    /// `validUntil` of the EntityDescriptor (or its EntitiesDescriptor), Unix seconds.
    pub valid_until: Option<u64>,
    /// SingleSignOnService endpoints.
    pub sso: Vec<Endpoint>,
    /// SingleLogoutService endpoints.
    pub slo: Vec<Endpoint>,
    /// DER signing certificates (`use="signing"` or no `use`).
    pub signing_certs: Vec<Vec<u8>>,
}

impl IdpMetadata {
    /// The location for a binding URI.
    pub fn endpoint(list: &[Endpoint], binding: &str) -> Option<String> {
        list.iter().find(|e| e.binding == binding).map(|e| e.location.clone())
    }

    /// The earliest `notAfter` of the signing certificates, Unix seconds.
    pub fn certs_not_after(&self) -> Option<u64> {
        self.signing_certs
            .iter()
            .filter_map(|der| x509_parser::parse_x509_certificate(der).ok())
            .map(|(_, c)| c.validity().not_after.timestamp().max(0) as u64)
            .min()
    }
}

/// Why IdP metadata is unusable (no document content in the text).
#[derive(Debug, thiserror::Error)]
#[error("IdP metadata: {0}")]
pub struct MetadataError(pub String);

fn err(s: impl Into<String>) -> MetadataError {
    MetadataError(s.into())
}

/// Parses an `xs:dateTime` (`validUntil`) to Unix seconds.
pub fn parse_instant(s: &str) -> Option<u64> {
    crate::date::parse_rfc3339(s.trim())
}

/// Reads IdP metadata: an EntityDescriptor, or an EntitiesDescriptor holding the one with
/// `expected_entity_id` (else the first with an IDPSSODescriptor).
pub fn parse_idp(
    xml: &[u8],
    expected_entity_id: Option<&str>,
    case_insensitive: bool,
) -> Result<IdpMetadata, MetadataError> {
    let matches = |id: &str| match expected_entity_id {
        None => true,
        Some(want) if case_insensitive => want.eq_ignore_ascii_case(id),
        Some(want) => want == id,
    };
    let mut reader = quick_xml::NsReader::from_reader(xml);
    let mut buf = Vec::new();
    let mut stack: Vec<Vec<u8>> = Vec::new();
    let mut outer_valid_until = None;
    let mut current: Option<IdpMetadata> = None;
    let mut has_idp = false;
    let mut key_use_signing = false;
    let mut cert_text: Option<String> = None;
    let mut found: Option<IdpMetadata> = None;
    loop {
        let (resolved, event) = reader.read_resolved_event_into(&mut buf).map_err(|_| err("not well-formed XML"))?;
        let ns = match &resolved {
            ResolveResult::Bound(n) => n.as_ref().to_vec(),
            _ => Vec::new(),
        };
        match event {
            Event::DocType(_) => return Err(err("DOCTYPE is not allowed")),
            Event::Start(ref e) | Event::Empty(ref e) => {
                let local = e.local_name().as_ref().to_vec();
                let attr = |name: &[u8]| {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == name)
                        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
                };
                let in_idp = stack.iter().any(|s| s == b"IDPSSODescriptor");
                match (ns.as_slice(), local.as_slice()) {
                    (MD, b"EntitiesDescriptor") => {
                        outer_valid_until = attr(b"validUntil").and_then(|v| parse_instant(&v)).or(outer_valid_until)
                    }
                    (MD, b"EntityDescriptor") => {
                        current = Some(IdpMetadata {
                            entity_id: attr(b"entityID").unwrap_or_default(),
                            valid_until: attr(b"validUntil").and_then(|v| parse_instant(&v)).or(outer_valid_until),
                            ..Default::default()
                        });
                        has_idp = false;
                    }
                    (MD, b"IDPSSODescriptor") => has_idp = true,
                    (MD, b"KeyDescriptor") if in_idp => {
                        key_use_signing = attr(b"use").is_none_or(|u| u == "signing");
                    }
                    (DS, b"X509Certificate") if in_idp && key_use_signing => cert_text = Some(String::new()),
                    (MD, b"SingleSignOnService" | b"SingleLogoutService") if in_idp => {
                        if let (Some(cur), Some(binding), Some(location)) =
                            (current.as_mut(), attr(b"Binding"), attr(b"Location"))
                        {
                            let list = if local == b"SingleSignOnService" { &mut cur.sso } else { &mut cur.slo };
                            list.push(Endpoint { binding, location });
                        }
                    }
                    _ => {}
                }
                if matches!(event, Event::Start(_)) {
                    stack.push(local);
                }
            }
            Event::Text(t) => {
                if let Some(text) = cert_text.as_mut() {
                    text.push_str(&t.decode().map_err(|_| err("bad text"))?);
                }
            }
            Event::End(e) => {
                let local = e.local_name().as_ref().to_vec();
                stack.pop();
                match local.as_slice() {
                    b"X509Certificate" => {
                        if let (Some(text), Some(cur)) = (cert_text.take(), current.as_mut()) {
                            let der = super::binding::decode_base64(&text, 64 * 1024)
                                .map_err(|_| err("a signing certificate is not base64"))?;
                            cur.signing_certs.push(der);
                        }
                    }
                    b"EntityDescriptor" => {
                        if let Some(cur) = current.take() {
                            if has_idp && found.is_none() && matches(&cur.entity_id) {
                                found = Some(cur);
                            }
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    let found = found.ok_or_else(|| match expected_entity_id {
        Some(id) => err(format!("no IDPSSODescriptor for entityID {id:?}")),
        None => err("no EntityDescriptor with an IDPSSODescriptor"),
    })?;
    if found.signing_certs.is_empty() {
        return Err(err("the IdP has no signing certificate"));
    }
    if found.sso.is_empty() {
        return Err(err("the IdP has no SingleSignOnService"));
    }
    Ok(found)
}

#[cfg(test)]
mod tests;
