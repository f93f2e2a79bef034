//! The AuthnRequest (SAML Core §3.4.1) with the eIDAS extensions NIA reads (nia.md §8.1, §11.1
//! in the corrected "[rec]" form: schema element order, correct namespaces).
//!
//! Everything that goes into the XML comes from configuration or is generated here; values are
//! escaped anyway, so a config typo cannot change the document's structure.

use quick_xml::escape::escape;

use super::acs::LoaComparison;
use super::config::SpType;
use crate::identity::Loa;

/// What an AuthnRequest asks for.
#[derive(Debug, Clone)]
pub struct AuthnRequestParams<'a> {
    /// Request `ID` (later `InResponseTo`).
    pub id: &'a str,
    /// `IssueInstant`, Unix seconds.
    pub issue_instant: u64,
    /// The IdP's SSO URL (`Destination`).
    pub destination: &'a str,
    /// Our ACS URL.
    pub acs_url: &'a str,
    /// Our entityID (`Issuer`).
    pub issuer: &'a str,
    /// `ForceAuthn`.
    pub force_authn: bool,
    /// eIDAS `SPType`, when extensions are sent.
    pub sp_type: Option<SpType>,
    /// eIDAS RequestedAttributes (URIs), when extensions are sent.
    pub requested_attributes: &'a [String],
    /// `IsAgeOver` threshold.
    pub is_age_over: Option<u32>,
    /// `RequestedAuthnContext`.
    pub loa: Option<(Loa, LoaComparison)>,
}

/// The `Comparison` attribute value.
pub fn comparison_str(c: LoaComparison) -> &'static str {
    match c {
        LoaComparison::Exact => "exact",
        LoaComparison::Minimum => "minimum",
        LoaComparison::Maximum => "maximum",
        LoaComparison::Better => "better",
    }
}

/// A fresh message ID: `_` and 40 hex digits (an NCName; 160 random bits, SAML Core §1.3.4).
pub fn new_id() -> String {
    let random = crate::session::random_id();
    let hex: String = random[..20].iter().map(|b| format!("{b:02x}")).collect();
    format!("_{hex}")
}

/// The AuthnRequest XML (unsigned; the binding signs it).
pub fn build(p: &AuthnRequestParams<'_>) -> String {
    let mut xml = format!(
        "<samlp:AuthnRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" \
         xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{id}\" Version=\"2.0\" \
         IssueInstant=\"{instant}\" Destination=\"{destination}\" AssertionConsumerServiceURL=\"{acs}\" \
         ProtocolBinding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\"{force}>\
         <saml:Issuer>{issuer}</saml:Issuer>",
        id = escape(p.id),
        instant = crate::identity::headers::rfc3339(p.issue_instant),
        destination = escape(p.destination),
        acs = escape(p.acs_url),
        force = if p.force_authn { " ForceAuthn=\"true\"" } else { "" },
        issuer = escape(p.issuer),
    );
    if let Some(sp_type) = p.sp_type {
        xml.push_str("<samlp:Extensions xmlns:eidas=\"http://eidas.europa.eu/saml-extensions\">");
        xml.push_str(&format!("<eidas:SPType>{}</eidas:SPType>", sp_type.as_str()));
        if !p.requested_attributes.is_empty() {
            xml.push_str("<eidas:RequestedAttributes>");
            for uri in p.requested_attributes {
                let head = format!(
                    "<eidas:RequestedAttribute Name=\"{}\" \
                     NameFormat=\"urn:oasis:names:tc:SAML:2.0:attrname-format:uri\" isRequired=\"false\"",
                    escape(uri.as_str())
                );
                match p.is_age_over.filter(|_| uri.ends_with("/isAgeOver")) {
                    Some(age) => xml.push_str(&format!(
                        "{head}><eidas:AttributeValue>{age}</eidas:AttributeValue></eidas:RequestedAttribute>"
                    )),
                    None => xml.push_str(&format!("{head}/>")),
                }
            }
            xml.push_str("</eidas:RequestedAttributes>");
        }
        xml.push_str("</samlp:Extensions>");
    }
    if let Some((loa, comparison)) = p.loa {
        xml.push_str(&format!(
            "<samlp:RequestedAuthnContext Comparison=\"{}\"><saml:AuthnContextClassRef>{}</saml:AuthnContextClassRef>\
             </samlp:RequestedAuthnContext>",
            comparison_str(comparison),
            loa.uri()
        ));
    }
    xml.push_str("</samlp:AuthnRequest>");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params<'a>(attrs: &'a [String]) -> AuthnRequestParams<'a> {
        AuthnRequestParams {
            id: "_abc",
            issue_instant: 1_700_000_000,
            destination: "https://tnia.identita.gov.cz/FPSTS/saml2/basic",
            acs_url: "https://gw.example.cz/.aisgate/callback/nia",
            issuer: "https://gw.example.cz/app1/",
            force_authn: false,
            sp_type: Some(SpType::Public),
            requested_attributes: attrs,
            is_age_over: Some(18),
            loa: Some((Loa::Substantial, LoaComparison::Minimum)),
        }
    }

    #[test]
    fn nia_request_has_schema_order_and_the_age_threshold() {
        let attrs = vec![
            "http://eidas.europa.eu/attributes/naturalperson/PersonIdentifier".to_owned(),
            "http://www.stork.gov.eu/1.0/isAgeOver".to_owned(),
        ];
        let xml = build(&params(&attrs));
        let doc = roxml(&xml);
        assert!(xml.contains("<saml:Issuer>https://gw.example.cz/app1/</saml:Issuer>"));
        assert!(xml.contains("IssueInstant=\"2023-11-14T22:13:20Z\""));
        assert!(xml.contains("<eidas:SPType>public</eidas:SPType>"));
        assert!(xml.contains("isAgeOver\" NameFormat=\"urn:oasis:names:tc:SAML:2.0:attrname-format:uri\" isRequired=\"false\"><eidas:AttributeValue>18</eidas:AttributeValue>"));
        let ext = xml.find("<samlp:Extensions").unwrap();
        let ctx = xml.find("<samlp:RequestedAuthnContext Comparison=\"minimum\">").unwrap();
        assert!(
            xml.find("<saml:Issuer>").unwrap() < ext && ext < ctx,
            "schema order Issuer, Extensions, RequestedAuthnContext"
        );
        assert!(xml.contains("http://eidas.europa.eu/LoA/substantial"));
        assert!(!xml.contains("ForceAuthn"));
        assert!(doc, "well-formed");
    }

    #[test]
    fn force_authn_and_no_extensions() {
        let mut p = params(&[]);
        p.force_authn = true;
        p.sp_type = None;
        p.loa = None;
        let xml = build(&p);
        assert!(xml.contains("ForceAuthn=\"true\""));
        assert!(!xml.contains("Extensions") && !xml.contains("RequestedAuthnContext"));
    }

    #[test]
    fn configured_values_are_escaped() {
        let mut p = params(&[]);
        p.issuer = "https://x/?a=1&b=\"<";
        let xml = build(&p);
        assert!(xml.contains("https://x/?a=1&amp;b=&quot;&lt;"));
        assert!(roxml(&xml));
    }

    #[test]
    fn ids_are_fresh_ncnames() {
        let (a, b) = (new_id(), new_id());
        assert_ne!(a, b);
        assert!(a.starts_with('_') && a.len() == 41);
    }

    fn roxml(xml: &str) -> bool {
        let mut reader = quick_xml::Reader::from_str(xml);
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Eof) => return true,
                Err(_) => return false,
                _ => {}
            }
        }
    }
}
