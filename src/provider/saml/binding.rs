//! SAML HTTP-Redirect and HTTP-POST binding codecs (SAML Bindings §3.4, §3.5).
//!
//! Redirect: `SAMLRequest`/`SAMLResponse` = base64(DEFLATE(xml)), signed over the exact
//! `SAMLx=…&RelayState=…&SigAlg=…` query bytes as received — re-encoding would let a different
//! encoding of the same values pass or fail a signature. Inflation is bounded: a 1 kB query may
//! otherwise expand to gigabytes (a "zip bomb").

use std::collections::HashMap;
use std::io::Read;

use base64::Engine;

use super::xmlsec::SigningKey;

/// Why a binding message cannot be decoded (operator log; never the message itself).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BindingError(pub String);

/// Which message a binding carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// `SAMLRequest` (AuthnRequest, LogoutRequest).
    Request,
    /// `SAMLResponse` (Response, LogoutResponse).
    Response,
}

impl MessageKind {
    /// The parameter name.
    pub fn param(self) -> &'static str {
        match self {
            MessageKind::Request => "SAMLRequest",
            MessageKind::Response => "SAMLResponse",
        }
    }
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// base64(DEFLATE(xml)), raw DEFLATE (RFC 1951) as §3.4.4.1 requires.
pub fn deflate_base64(xml: &str) -> String {
    let mut encoder = flate2::read::DeflateEncoder::new(xml.as_bytes(), flate2::Compression::default());
    let mut out = Vec::new();
    // Reading from an in-memory slice cannot fail.
    let _ = encoder.read_to_end(&mut out);
    b64().encode(out)
}

/// base64 for the POST binding.
pub fn base64(xml: &str) -> String {
    b64().encode(xml.as_bytes())
}

/// Decodes base64, tolerating the line breaks some IdPs insert.
pub fn decode_base64(value: &str, limit: usize) -> Result<Vec<u8>, BindingError> {
    let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.len() > limit.saturating_mul(4) / 3 + 4 {
        return Err(BindingError("message larger than the limit".to_owned()));
    }
    b64().decode(compact).map_err(|_| BindingError("message is not base64".to_owned()))
}

/// Inflates raw DEFLATE data, refusing more than `limit` bytes of output.
pub fn inflate(data: &[u8], limit: usize) -> Result<Vec<u8>, BindingError> {
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(data)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| BindingError("message is not DEFLATE data".to_owned()))?;
    if out.len() > limit {
        return Err(BindingError("inflated message larger than the limit".to_owned()));
    }
    Ok(out)
}

/// A POSTed (or CAAIS's GET, caais.md §2.5) base64 value: plain XML, or DEFLATE data when it
/// does not start like XML.
pub fn decode_lenient(value: &str, limit: usize) -> Result<Vec<u8>, BindingError> {
    let raw = decode_base64(value, limit)?;
    if raw.len() > limit {
        return Err(BindingError("message larger than the limit".to_owned()));
    }
    let first = raw.iter().copied().find(|b| !b.is_ascii_whitespace());
    if first == Some(b'<') || raw.starts_with(b"\xef\xbb\xbf") {
        Ok(raw)
    } else {
        inflate(&raw, limit)
    }
}

/// Builds an HTTP-Redirect URL. With `signer`, `SigAlg` and `Signature` are added over the
/// exact encoded query (§3.4.4.1).
pub fn redirect_url(
    endpoint: &str,
    kind: MessageKind,
    xml: &str,
    relay_state: Option<&str>,
    signer: Option<&SigningKey>,
) -> Result<String, BindingError> {
    let mut query = format!("{}={}", kind.param(), encode(&deflate_base64(xml)));
    if let Some(rs) = relay_state {
        query.push_str(&format!("&RelayState={}", encode(rs)));
    }
    if let Some(key) = signer {
        query.push_str(&format!("&SigAlg={}", encode(key.signature_algorithm())));
        let signature = key.sign_redirect(query.as_bytes()).map_err(|e| BindingError(format!("signing: {e}")))?;
        query.push_str(&format!("&Signature={}", encode(&b64().encode(signature))));
    }
    let separator = if endpoint.contains('?') { '&' } else { '?' };
    Ok(format!("{endpoint}{separator}{query}"))
}

/// A decoded HTTP-Redirect message.
#[derive(Debug)]
pub struct RedirectMessage {
    /// Request or response.
    pub kind: MessageKind,
    /// The inflated XML.
    pub xml: Vec<u8>,
    /// `RelayState`, decoded.
    pub relay_state: Option<String>,
    /// `(SigAlg, signed bytes, signature)` when the query is signed.
    pub signature: Option<(String, Vec<u8>, Vec<u8>)>,
}

/// The most query parameters an SLO/ACS request may carry: the binding uses five, and some
/// IdPs add a few of their own; a query of thousands is an attack on the parser.
const MAX_QUERY_PARAMS: usize = 32;

/// The parameters of the HTTP-Redirect binding (§3.4.4.1).
const BINDING_PARAMS: &[&str] = &["SAMLRequest", "SAMLResponse", "RelayState", "SigAlg", "Signature"];

/// Decodes an HTTP-Redirect query. The signed bytes are the raw `key=value` pieces as they
/// arrived, in the order §3.4.4.1 fixes.
pub fn decode_redirect(raw_query: &str, limit: usize) -> Result<RedirectMessage, BindingError> {
    // One pass with a hash map: linear in the query, where a scan of the pieces seen so far
    // for each piece is quadratic (a query of many thousand short parameters; issue 15 item 1).
    let mut raw: HashMap<&str, &str> = HashMap::new();
    for piece in raw_query.split('&').filter(|p| !p.is_empty()) {
        if raw.len() == MAX_QUERY_PARAMS {
            return Err(BindingError(format!("more than {MAX_QUERY_PARAMS} query parameters")));
        }
        let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
        if raw.insert(k, v).is_some() {
            // The name is attacker-chosen: say which one only if it is one the binding uses.
            let name = BINDING_PARAMS.iter().find(|p| **p == k).copied().unwrap_or("(other)");
            return Err(BindingError(format!("parameter {name} given twice")));
        }
    }
    let get_raw = |name: &str| raw.get(name).copied();
    let decoded = |v: &str| -> String {
        url::form_urlencoded::parse(format!("x={v}").as_bytes()).map(|(_, v)| v.into_owned()).next().unwrap_or_default()
    };
    let kind = match (get_raw("SAMLRequest"), get_raw("SAMLResponse")) {
        (Some(_), None) => MessageKind::Request,
        (None, Some(_)) => MessageKind::Response,
        _ => return Err(BindingError("expected exactly one of SAMLRequest and SAMLResponse".to_owned())),
    };
    let message = get_raw(kind.param()).map(decoded).unwrap_or_default();
    let xml = inflate(&decode_base64(&message, limit)?, limit)?;
    let relay_state = get_raw("RelayState").map(decoded);
    let signature = match (get_raw("SigAlg"), get_raw("Signature")) {
        (Some(alg), Some(sig)) => {
            let mut signed = format!("{}={}", kind.param(), get_raw(kind.param()).unwrap_or_default());
            if let Some(rs) = get_raw("RelayState") {
                signed.push_str(&format!("&RelayState={rs}"));
            }
            signed.push_str(&format!("&SigAlg={alg}"));
            let signature = decode_base64(&decoded(sig), 4096)?;
            Some((decoded(alg), signed.into_bytes(), signature))
        }
        (None, None) => None,
        _ => return Err(BindingError("SigAlg and Signature go together".to_owned())),
    };
    Ok(RedirectMessage { kind, xml, relay_state, signature })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_round_trip_keeps_xml_and_relay_state() {
        let url = redirect_url("https://idp/sso?x=1", MessageKind::Request, "<a>é</a>", Some("h/1+2"), None).unwrap();
        assert!(url.starts_with("https://idp/sso?x=1&SAMLRequest="));
        let query = url.split_once("x=1&").unwrap().1;
        let msg = decode_redirect(query, 1024).unwrap();
        assert_eq!(msg.kind, MessageKind::Request);
        assert_eq!(msg.xml, "<a>é</a>".as_bytes());
        assert_eq!(msg.relay_state.as_deref(), Some("h/1+2"));
        assert!(msg.signature.is_none());
    }

    #[test]
    fn signed_bytes_are_the_raw_query_pieces_in_binding_order() {
        let query = "Signature=c2ln&SigAlg=alg%3Ax&RelayState=r%2F&SAMLResponse=";
        let deflated = deflate_base64("<r/>");
        let query = format!("{query}{}", encode(&deflated));
        let msg = decode_redirect(&query, 1024).unwrap();
        let (alg, signed, sig) = msg.signature.unwrap();
        assert_eq!(alg, "alg:x");
        assert_eq!(signed, format!("SAMLResponse={}&RelayState=r%2F&SigAlg=alg%3Ax", encode(&deflated)).into_bytes());
        assert_eq!(sig, b"sig");
    }

    #[test]
    fn a_redirect_message_inflating_past_the_limit_is_refused() {
        let big = "<a>".to_owned() + &"x".repeat(100_000) + "</a>";
        let query = format!("SAMLRequest={}", encode(&deflate_base64(&big)));
        assert!(decode_redirect(&query, 10_000).unwrap_err().0.contains("limit"));
    }

    #[test]
    fn a_redirect_message_with_a_repeated_parameter_is_refused() {
        let query = format!("SAMLRequest={0}&SAMLRequest={0}", encode(&deflate_base64("<a/>")));
        assert!(decode_redirect(&query, 1024).unwrap_err().0.contains("SAMLRequest given twice"));
        assert!(decode_redirect("RelayState=x", 1024).is_err());
    }

    /// 20,000 distinct parameters: the old check compared each piece with every earlier one
    /// (2·10⁸ string comparisons) and then went on to decode; now the count is capped and the
    /// duplicate check is one hash-map pass.
    #[test]
    fn a_query_with_thousands_of_parameters_is_refused_by_count() {
        let mut query = format!("SAMLRequest={}&", encode(&deflate_base64("<a/>")));
        query.extend((0..20_000).map(|i| format!("p{i}=&")));
        assert_eq!(decode_redirect(&query, 1024).unwrap_err().0, "more than 32 query parameters");
        let few: String = (0..31).map(|i| format!("p{i}=&")).collect();
        let ok = format!("{few}SAMLRequest={}", encode(&deflate_base64("<a/>")));
        assert!(decode_redirect(&ok, 1024).is_ok(), "32 parameters are fine");
    }

    #[test]
    fn lenient_decoding_accepts_plain_and_deflated_base64() {
        assert_eq!(decode_lenient(&base64("<a/>"), 100).unwrap(), b"<a/>");
        assert_eq!(decode_lenient(&deflate_base64("<a/>"), 100).unwrap(), b"<a/>");
        assert!(decode_lenient("!!", 100).is_err());
    }
}
