//! Structural limits of a received SAML document, checked right after the (depth-capped)
//! parse and before any canonicalisation, digest, signature check or decryption.
//!
//! Why: every `ds:Signature` costs an exclusive canonicalisation, a digest per `Reference` and
//! an RSA verification; every `xenc:EncryptedKey` is tried with every SP key (one RSA
//! private-key operation each). The ACS and SLO endpoints take unauthenticated input, so a
//! ~190 KB Response carrying hundreds of signatures or EncryptedKeys would otherwise buy an
//! attacker seconds of CPU per request (issue 15 item 1). The SAML profiles need very few of
//! them (a signed Response and a signed Assertion; one EncryptedData with its key, maybe a
//! second key during an SP key rollover), so anything beyond that is refused outright, with
//! the amplifier named, by one linear walk over the parsed tree.

use bergshamra::xml::uppsala::{Document, NodeId};

use super::xmlenc::XENC_NS;
use super::xmlsec::DSIG_NS;

/// Deepest element nesting accepted by the parser. A NIA Response nests 10 deep (down to
/// `EncryptedKey/KeyInfo/SecurityTokenReference/X509Data/X509IssuerSerial/X509IssuerName`),
/// metadata 7; uppsala's own default is 128.
pub const MAX_DEPTH: u32 = 32;

/// What a document may carry. The counts are per document as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Elements in total (a NIA Response has about 100).
    pub elements: usize,
    /// `ds:Signature` elements anywhere.
    pub signatures: usize,
    /// `ds:Reference` elements per `ds:SignedInfo` (the binding rules accept exactly one).
    pub references_per_signature: usize,
    /// `ds:Transform` elements per `ds:Transforms` (enveloped-signature + exclusive c14n).
    pub transforms_per_reference: usize,
    /// `xenc:EncryptedKey` elements anywhere.
    pub encrypted_keys: usize,
    /// `xenc:EncryptedData` elements anywhere.
    pub encrypted_data: usize,
}

impl Limits {
    /// A `samlp:Response`: Response and Assertion signatures, one EncryptedAssertion whose key
    /// may be wrapped twice (SP key rollover).
    pub const RESPONSE: Limits = Limits {
        elements: 4_000,
        signatures: 2,
        references_per_signature: 1,
        transforms_per_reference: 2,
        encrypted_keys: 2,
        encrypted_data: 1,
    };
    /// The Assertion decrypted from an EncryptedAssertion: at most its own signature.
    pub const DECRYPTED_ASSERTION: Limits =
        Limits { elements: 4_000, signatures: 1, encrypted_keys: 0, encrypted_data: 0, ..Limits::RESPONSE };
    /// A LogoutRequest / LogoutResponse (an `EncryptedID` is not supported).
    pub const LOGOUT: Limits =
        Limits { elements: 500, signatures: 1, encrypted_keys: 0, encrypted_data: 0, ..Limits::RESPONSE };
    /// IdP metadata: fetched from a configured source (file or TLS URL), up to 2 MB, and an
    /// aggregate may sign each of its entities.
    pub const METADATA: Limits =
        Limits { elements: 100_000, signatures: 16, encrypted_keys: 0, encrypted_data: 0, ..Limits::RESPONSE };
}

/// Which amplifier a document has too many of (a bounded set: it is a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Amplifier {
    /// Elements in total.
    Elements,
    /// `ds:Signature` elements.
    Signatures,
    /// `ds:Reference` elements in one `ds:SignedInfo`.
    ReferencesPerSignature,
    /// `ds:Transform` elements in one `ds:Transforms`.
    TransformsPerReference,
    /// `xenc:EncryptedKey` elements.
    EncryptedKeys,
    /// `xenc:EncryptedData` elements.
    EncryptedData,
}

impl Amplifier {
    /// A short snake_case name (log text and metric label).
    pub fn label(self) -> &'static str {
        match self {
            Amplifier::Elements => "elements",
            Amplifier::Signatures => "signatures",
            Amplifier::ReferencesPerSignature => "references_per_signature",
            Amplifier::TransformsPerReference => "transforms_per_reference",
            Amplifier::EncryptedKeys => "encrypted_keys",
            Amplifier::EncryptedData => "encrypted_data",
        }
    }
}

/// A document beyond its limits: what, how many were found (counting stops just past the
/// limit, so `found` is `limit + 1` for the first amplifier exceeded) and the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too complex: more than {limit} {} (found {found})", what.label())]
pub struct Exceeded {
    /// The amplifier.
    pub what: Amplifier,
    /// How many were counted.
    pub found: usize,
    /// The limit.
    pub limit: usize,
}

/// Counts the amplifiers in `root`'s subtree (the root included) in one walk, stopping at the
/// first limit exceeded. Never canonicalises, digests or decrypts anything.
pub(crate) fn check(doc: &Document<'_>, root: NodeId, limits: &Limits) -> Result<(), Exceeded> {
    let over = |what, found, limit| if found > limit { Err(Exceeded { what, found, limit }) } else { Ok(()) };
    let (mut elements, mut signatures, mut keys, mut data) = (0usize, 0usize, 0usize, 0usize);
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        let Some(element) = doc.element(node) else { continue };
        elements += 1;
        over(Amplifier::Elements, elements, limits.elements)?;
        let name = &element.name;
        if name.matches(Some(DSIG_NS), "Signature") {
            signatures += 1;
            over(Amplifier::Signatures, signatures, limits.signatures)?;
        } else if name.matches(Some(DSIG_NS), "SignedInfo") {
            let refs = doc.children_iter(node).filter(|&c| is(doc, c, DSIG_NS, "Reference")).count();
            over(Amplifier::ReferencesPerSignature, refs, limits.references_per_signature)?;
        } else if name.matches(Some(DSIG_NS), "Transforms") {
            let transforms = doc.children_iter(node).filter(|&c| is(doc, c, DSIG_NS, "Transform")).count();
            over(Amplifier::TransformsPerReference, transforms, limits.transforms_per_reference)?;
        } else if name.matches(Some(XENC_NS), "EncryptedKey") {
            keys += 1;
            over(Amplifier::EncryptedKeys, keys, limits.encrypted_keys)?;
        } else if name.matches(Some(XENC_NS), "EncryptedData") {
            data += 1;
            over(Amplifier::EncryptedData, data, limits.encrypted_data)?;
        }
        stack.extend(doc.children_iter(node));
    }
    Ok(())
}

/// Test instrumentation: how many signature-verification passes and RSA key unwraps ran on
/// this thread, so tests can show that a refused document cost no cryptography (per thread:
/// tests run in parallel).
#[cfg(test)]
pub(crate) mod crypto_ops {
    use std::cell::Cell;

    thread_local! {
        static OPS: Cell<usize> = const { Cell::new(0) };
    }

    /// Counts one operation.
    pub(crate) fn count() {
        OPS.with(|c| c.set(c.get() + 1));
    }

    /// Operations counted on this thread so far.
    pub(crate) fn get() -> usize {
        OPS.with(Cell::get)
    }
}

fn is(doc: &Document<'_>, node: NodeId, ns: &str, local: &str) -> bool {
    doc.element(node).is_some_and(|e| e.name.matches(Some(ns), local))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bergshamra::xml::uppsala;

    fn run(xml: &str, limits: &Limits) -> Result<(), Exceeded> {
        let doc = uppsala::parse(xml).unwrap();
        check(&doc, doc.document_element().unwrap(), limits)
    }

    const DS: &str = "xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"";
    const XE: &str = "xmlns:xenc=\"http://www.w3.org/2001/04/xmlenc#\"";

    #[test]
    fn each_amplifier_is_counted_against_its_own_limit() {
        let sig = "<ds:Signature><ds:SignedInfo><ds:Reference><ds:Transforms><ds:Transform/><ds:Transform/>\
                   </ds:Transforms></ds:Reference></ds:SignedInfo></ds:Signature>";
        assert_eq!(run(&format!("<r {DS}>{sig}{sig}</r>"), &Limits::RESPONSE), Ok(()));
        let err = run(&format!("<r {DS}>{sig}{sig}{sig}</r>"), &Limits::RESPONSE).unwrap_err();
        assert_eq!((err.what, err.found, err.limit), (Amplifier::Signatures, 3, 2));
        let two_refs = format!("<r {DS}><ds:SignedInfo><ds:Reference/><ds:Reference/></ds:SignedInfo></r>");
        assert_eq!(run(&two_refs, &Limits::RESPONSE).unwrap_err().what, Amplifier::ReferencesPerSignature);
        let three = format!("<r {DS}><ds:Transforms><ds:Transform/><ds:Transform/><ds:Transform/></ds:Transforms></r>");
        assert_eq!(run(&three, &Limits::RESPONSE).unwrap_err().what, Amplifier::TransformsPerReference);
        let keys = format!("<r {XE}><xenc:EncryptedKey/><xenc:EncryptedKey/><xenc:EncryptedKey/></r>");
        assert_eq!(run(&keys, &Limits::RESPONSE).unwrap_err().what, Amplifier::EncryptedKeys);
        let data = format!("<r {XE}><xenc:EncryptedData/><x><xenc:EncryptedData/></x></r>");
        assert_eq!(run(&data, &Limits::RESPONSE).unwrap_err().what, Amplifier::EncryptedData);
        assert_eq!(run(&format!("<r {XE}><xenc:EncryptedData/></r>"), &Limits::LOGOUT).unwrap_err().limit, 0);
        let wide = format!("<r>{}</r>", "<e/>".repeat(4_000));
        assert_eq!(run(&wide, &Limits::RESPONSE).unwrap_err().what, Amplifier::Elements);
    }

    #[test]
    fn same_local_names_in_other_namespaces_do_not_count() {
        let xml = "<r xmlns:x=\"urn:x\"><x:Signature/><x:Signature/><x:Signature/><Signature/><x:EncryptedKey/>\
                   <x:EncryptedKey/><x:EncryptedKey/></r>";
        assert_eq!(run(xml, &Limits::RESPONSE), Ok(()));
    }
}
