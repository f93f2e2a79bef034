"""Checks aisgate's SAML SP messages with pysaml2 (and, under it, Debian's xmlsec1).

    python validate.py metadata --sp-metadata sp.xml
    python validate.py request --sp-metadata sp.xml --idp-base http://127.0.0.1:P \
        --idp-entity-id urn:... [--require-signature] (--url URL | --form-field NAME=VALUE ...)

`metadata`: validates against the SAML 2.0 metadata schema pysaml2 ships, loads it into a
pysaml2 metadata store, verifies its XML signature when it has one (with the signing
certificate it publishes), and prints a JSON summary.
`request`: decodes an AuthnRequest or LogoutRequest sent by HTTP-Redirect (`--url`, the
Location aisgate answered with) or HTTP-POST (`--form-field` for each hidden field of
aisgate's auto-submit form), validates it against pysaml2's SAML protocol and eIDAS schemas,
parses it as a pysaml2 IdP whose endpoints live under --idp-base (so Destination is checked),
with the signature checked against the SP's signing certificate from its metadata when
--require-signature is given (Redirect: the query signature; POST: the enveloped one), and
prints a JSON summary.
Exit status 0 when pysaml2 accepts; 1 with the reason on stderr when it refuses.
"""

import argparse
import base64
import json
import sys
from importlib.resources import files
from urllib.parse import parse_qs, urlparse

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.md import EntityDescriptor
from saml2.s_utils import UnsupportedBinding, decode_base64_and_inflate
from saml2.sigver import make_temp, pem_format
from saml2.xml.schema import _create_xml_schema_validator, validate as validate_protocol

import common

def refuse(reason, error=None):
    while error is not None and error.__cause__ is not None:  # name the root cause too
        error = error.__cause__
        reason += f" <- {type(error).__name__}: {error}"
    print(f"pysaml2 refused: {reason}", file=sys.stderr)
    sys.exit(1)


def check_metadata(args):
    with open(args.sp_metadata, "rb") as f:
        xml = f.read()
    schema = _create_xml_schema_validator(str(files("saml2.data.schemas").joinpath("saml-schema-metadata-2.0.xsd")))
    try:
        schema.validate(xml.decode("utf-8"))
    except Exception as e:
        refuse(f"metadata schema: {e}")
    idp = common.idp_server("urn:test:validator", "http://127.0.0.1:1", None, None, None, False)
    try:
        idp.metadata.load("local", args.sp_metadata)
    except Exception as e:
        refuse(f"metadata store: {type(e).__name__}: {e}")
    entities = list(idp.metadata.keys())
    if len(entities) != 1:
        refuse(f"expected one entity, found {len(entities)}")
    entity_id = entities[0]
    sp = idp.metadata[entity_id].get("spsso_descriptor")
    if not sp:
        refuse("no SPSSODescriptor")

    def endpoints(service):
        found = []
        for binding in (BINDING_HTTP_POST, BINDING_HTTP_REDIRECT):
            try:
                listed = getattr(idp.metadata, service)(entity_id, binding, "spsso") or []
            except UnsupportedBinding:
                listed = []
            found.extend({"binding": binding, "location": e["location"]} for e in listed)
        return found

    signing = idp.metadata.certs(entity_id, "spsso", "signing")
    encryption = idp.metadata.certs(entity_id, "spsso", "encryption")
    signature = "absent"
    if b"Signature" in xml and b"http://www.w3.org/2000/09/xmldsig#" in xml:
        if not signing:
            refuse("signed metadata without a signing certificate")
        cert = make_temp(pem_format(signing[0][1]), decode=False, delete_tmpfiles=True)
        try:
            ok = idp.sec.verify_signature(
                xml.decode("utf-8"),
                cert.name,
                node_name=f"{EntityDescriptor.c_namespace}:{EntityDescriptor.c_tag}",
            )
        except Exception as e:
            refuse(f"metadata signature: {type(e).__name__}: {e}")
        if not ok:
            refuse("metadata signature does not verify")
        signature = "verified"
    print(
        json.dumps(
            {
                "entity_id": entity_id,
                "acs": endpoints("assertion_consumer_service"),
                "slo": endpoints("single_logout_service"),
                "signing_certs": len(signing),
                "encryption_certs": len(encryption),
                "authn_requests_signed": sp[0].get("authn_requests_signed"),
                "want_assertions_signed": sp[0].get("want_assertions_signed"),
                "name_id_formats": [n["text"] for n in sp[0].get("name_id_format", [])],
                "signature": signature,
            }
        )
    )


def check_request(args):
    if args.url:
        binding = BINDING_HTTP_REDIRECT
        url = urlparse(args.url)
        params = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        xml = decode_base64_and_inflate(params["SAMLRequest"]).decode("utf-8")
    else:
        binding = BINDING_HTTP_POST
        params = dict(f.split("=", 1) for f in args.form_field)
        xml = base64.b64decode(params["SAMLRequest"]).decode("utf-8")
    try:
        validate_protocol(xml)
    except Exception as e:
        refuse(f"protocol schema: {e.args[0]['error'] if e.args and isinstance(e.args[0], dict) else e}")
    idp = common.idp_server(
        args.idp_entity_id, args.idp_base, args.idp_key, args.idp_cert, args.sp_metadata, args.require_signature
    )
    is_logout = ":LogoutRequest" in xml.split(">", 1)[0] or xml.lstrip().startswith("<LogoutRequest")
    parse = idp.parse_logout_request if is_logout else idp.parse_authn_request
    try:
        req = parse(params["SAMLRequest"], binding, params.get("RelayState"), params.get("SigAlg"), params.get("Signature"))
    except Exception as e:
        refuse(f"{type(e).__name__}: {e}", e)
    if req is None:
        refuse("request not parsed")
    if not req.issue_instant_ok():
        refuse("IssueInstant out of range")
    msg = req.message
    summary = {
        "kind": "LogoutRequest" if is_logout else "AuthnRequest",
        "binding": binding,
        "id": msg.id,
        "issuer": msg.issuer.text,
        "destination": msg.destination,
        "relay_state": params.get("RelayState"),
        "redirect_signed": "Signature" in params,
        "xml_signed": msg.signature is not None,
    }
    if is_logout:
        summary["name_id"] = msg.name_id.text if msg.name_id is not None else None
        summary["name_id_format"] = msg.name_id.format if msg.name_id is not None else None
        summary["session_index"] = [s.text for s in msg.session_index]
    else:
        # The ACS must be one the SP's metadata lists (pysaml2 raises otherwise).
        try:
            resp_args = idp.response_args(msg, [BINDING_HTTP_POST])
        except Exception as e:
            refuse(f"response_args: {type(e).__name__}: {e}")
        summary["acs_url"] = resp_args["destination"]
        ctx = msg.requested_authn_context
        summary["requested_authn_context"] = [c.text for c in ctx.authn_context_class_ref] if ctx else []
        summary["comparison"] = ctx.comparison if ctx else None
        summary["extensions"] = [e.tag for e in msg.extensions.extension_elements] if msg.extensions else []
    print(json.dumps(summary))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    md = sub.add_parser("metadata")
    md.add_argument("--sp-metadata", required=True)
    rq = sub.add_parser("request")
    rq.add_argument("--sp-metadata", required=True)
    rq.add_argument("--idp-base", required=True)
    rq.add_argument("--idp-entity-id", default="urn:microsoft:cgg2010:fpsts")
    # pysaml2 sets up its signature checker only with a key of its own.
    rq.add_argument("--idp-key", required=True)
    rq.add_argument("--idp-cert", required=True)
    rq.add_argument("--require-signature", action="store_true")
    rq.add_argument("--url")
    rq.add_argument("--form-field", action="append", default=[])
    args = parser.parse_args()
    if args.command == "metadata":
        check_metadata(args)
    else:
        if not args.url and not args.form_field:
            parser.error("give --url or --form-field")
        check_request(args)


if __name__ == "__main__":
    main()
