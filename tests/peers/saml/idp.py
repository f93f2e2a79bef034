"""A NIA-like SAML 2.0 IdP made of pysaml2, for aisgate's interop tests.

    python idp.py --key idp.key --cert idp.pem --sp-metadata sp.xml \
        --attribute PersonIdentifier=CZ/CZ/... --attribute CurrentFamilyName=NOVÁK ...

Binds 127.0.0.1:0 and prints `PORT <n>` on stdout. Endpoints (base http://127.0.0.1:<n>):
  GET  /sso/redirect, POST /sso/post   AuthnRequest (HTTP-Redirect / HTTP-POST binding): the
        fixed test user is authenticated without UI; the answer is pysaml2's auto-submit form
        POSTing a signed Response (Assertion signed too, then encrypted to the SP's encryption
        certificate from its metadata) to the ACS named in the SP metadata.
  GET  /slo/redirect, POST /slo/post   LogoutRequest -> LogoutResponse (Success only when NameID
        and SessionIndex match a login this IdP issued), by HTTP-Redirect (signed query).
  GET  /metadata                        the IdP's metadata (pysaml2).
  GET  /log                             JSON list of what the IdP received (for assertions).
The SP metadata file is read on the first SAML request, so it may be written after start.
The process exits when its standard input closes (the test that started it went away).
"""

import argparse
import json
import os
import re
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.metadata import create_metadata_string
from saml2.s_utils import error_status_factory
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
from saml2.samlp import STATUS_UNKNOWN_PRINCIPAL
from saml2.server import Server
from saml2.sigver import RSA_OAEP_MGF1P, make_temp, pre_encryption_part

import common

XMLENC = "http://www.w3.org/2001/04/xmlenc#"
XMLENC11 = "http://www.w3.org/2009/xmlenc11#"
# Data-encryption algorithm -> (URI, xmlsec1 --session-key). tripledes-cbc is pysaml2's own
# default (kept to prove aisgate refuses it).
DATA_ENCRYPTION = {
    "aes128-cbc": (XMLENC + "aes128-cbc", "aes-128"),
    "aes256-cbc": (XMLENC + "aes256-cbc", "aes-256"),
    "aes128-gcm": (XMLENC11 + "aes128-gcm", "aes-128"),
    "aes256-gcm": (XMLENC11 + "aes256-gcm", "aes-256"),
    "tripledes-cbc": (XMLENC + "tripledes-cbc", "des-192"),
}


class NiaLikeServer(Server):
    """pysaml2's Server with a selectable data-encryption algorithm (pysaml2 hard-codes
    tripledes-cbc) and a record of the SessionIndex of every assertion it issues."""

    data_encryption = "aes256-cbc"
    last_session_index = None

    def _encrypt_assertion(self, encrypt_cert, sp_entity_id, response, node_xpath=None):
        self.last_session_index = session_index_of(str(response))
        uri, session_key = DATA_ENCRYPTION[self.data_encryption]
        certs = [(None, encrypt_cert)] if encrypt_cert else self.metadata.certs(sp_entity_id, "any", "encryption")
        if not certs:
            raise ValueError("no encryption certificate for the SP in its metadata")
        name, cert = certs[0]
        wrapped = cert if "BEGIN CERTIFICATE" in cert else f"-----BEGIN CERTIFICATE-----\n{cert}\n-----END CERTIFICATE-----\n"
        unwrapped = "".join(line for line in wrapped.splitlines() if "CERTIFICATE" not in line)
        tmp = make_temp(wrapped.encode("ascii"), decode=False, delete_tmpfiles=True)
        template = pre_encryption_part(msg_enc=uri, key_enc=RSA_OAEP_MGF1P, key_name=name, encrypt_cert=unwrapped)
        return self.sec.encrypt_assertion(response, tmp.name, template, key_type=session_key, node_xpath=node_xpath)


def received(event, binding, msg, params):
    """The log fields every received request has."""
    return {
        "event": event,
        "binding": binding,
        "id": msg.id,
        "issuer": msg.issuer.text,
        "destination": msg.destination,
        "redirect_signed": "Signature" in params,
        "xml_signed": msg.signature is not None,
    }


def session_index_of(xml):
    found = re.search(r'SessionIndex="([^"]+)"', xml)
    return found.group(1) if found else None


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.log = []
        self.sessions = {}  # SessionIndex -> NameID value
        self.metadata_loaded = False
        self.server = None

    def record(self, **event):
        with self.lock:
            self.log.append(event)

    def idp(self):
        """The pysaml2 server, with the SP metadata loaded on first use."""
        with self.lock:
            if not self.metadata_loaded:
                self.server.metadata.load("local", self.args.sp_metadata)
                self.metadata_loaded = True
            return self.server


class Handler(BaseHTTPRequestHandler):
    state = None  # set in main()

    def log_message(self, format, *args):  # noqa: A002 - http.server's signature
        pass  # no request logging: URLs carry SAML messages

    def params(self):
        url = urlparse(self.path)
        if self.command == "POST":
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length).decode("ascii")
            query = parse_qs(body, keep_blank_values=True)
        else:
            query = parse_qs(url.query, keep_blank_values=True)
        return url.path, {k: v[0] for k, v in query.items()}

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def dispatch(self):
        path, params = self.params()
        try:
            if path == "/metadata":
                xml = create_metadata_string(None, config=self.state.server.config, sign=False)
                return self.reply(200, "application/samlmetadata+xml", xml)
            if path == "/log":
                with self.state.lock:
                    return self.reply(200, "application/json", json.dumps(self.state.log).encode())
            binding = BINDING_HTTP_REDIRECT if self.command == "GET" else BINDING_HTTP_POST
            if path in ("/sso/redirect", "/sso/post"):
                return self.sso(binding, params)
            if path in ("/slo/redirect", "/slo/post"):
                return self.slo(binding, params)
            return self.reply(404, "text/plain", b"not found")
        except Exception as e:  # the test reads the reason in the body and in /log
            reason = f"{type(e).__name__}: {e}"
            self.state.record(event="error", path=path, reason=reason, trace=traceback.format_exc())
            return self.reply(400, "text/plain", reason.encode())

    def sso(self, binding, params):
        idp = self.state.idp()
        req = idp.parse_authn_request(
            params["SAMLRequest"], binding, params.get("RelayState"), params.get("SigAlg"), params.get("Signature")
        )
        if req is None:
            raise ValueError("pysaml2 refused the AuthnRequest")
        msg = req.message
        args = self.state.args
        self.state.record(
            **received("authn_request", binding, msg, params),
            acs_url=msg.assertion_consumer_service_url,
            requested_authn_context=[c.text for c in msg.requested_authn_context.authn_context_class_ref]
            if msg.requested_authn_context
            else [],
            comparison=msg.requested_authn_context.comparison if msg.requested_authn_context else None,
        )
        identity = {}
        for item in args.attribute:
            name, value = item.split("=", 1)
            identity.setdefault(name, []).append(value)
        subject = identity["PersonIdentifier"][0]
        resp_args = idp.response_args(msg, [BINDING_HTTP_POST])
        encrypt = args.data_encryption != "none"
        if encrypt:
            idp.data_encryption = args.data_encryption
        response = idp.create_authn_response(
            identity,
            userid=subject,
            name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=subject),
            authn={"class_ref": args.loa, "authn_auth": args.entity_id},
            sign_response=True,
            sign_assertion=not args.unsigned_assertion,
            encrypt_assertion=encrypt,
            **resp_args,
        )
        response = str(response)
        session_index = idp.last_session_index if encrypt else session_index_of(response)
        with self.state.lock:
            self.state.sessions[session_index] = subject
        http = idp.apply_binding(
            BINDING_HTTP_POST, response, resp_args["destination"], params.get("RelayState", ""), response=True
        )
        return self.reply(200, "text/html; charset=utf-8", http["data"].encode())

    def slo(self, binding, params):
        idp = self.state.idp()
        if "SAMLRequest" not in params:
            raise ValueError("only SP-initiated logout (a LogoutRequest) is supported")
        req = idp.parse_logout_request(
            params["SAMLRequest"], binding, params.get("RelayState"), params.get("SigAlg"), params.get("Signature")
        )
        if req is None:
            raise ValueError("pysaml2 refused the LogoutRequest")
        msg = req.message
        indexes = [s.text for s in msg.session_index]
        name_id = msg.name_id.text if msg.name_id is not None else None
        with self.state.lock:
            matched = bool(indexes) and all(self.state.sessions.get(i) == name_id for i in indexes)
            if matched:
                for i in indexes:
                    del self.state.sessions[i]
        self.state.record(
            **received("logout_request", binding, msg, params),
            name_id=name_id,
            name_id_format=msg.name_id.format if msg.name_id is not None else None,
            session_index=indexes,
            matched=matched,
        )
        status = None if matched else error_status_factory((STATUS_UNKNOWN_PRINCIPAL, "no such session"))
        reply_binding, destination = idp.pick_binding(
            "single_logout_service", [BINDING_HTTP_REDIRECT, BINDING_HTTP_POST], "spsso", entity_id=msg.issuer.text
        )
        response = idp.create_logout_response(msg, [reply_binding], status=status, sign=reply_binding == BINDING_HTTP_POST)
        http = idp.apply_binding(
            reply_binding,
            str(response),
            destination,
            params.get("RelayState", ""),
            response=True,
            sign=reply_binding == BINDING_HTTP_REDIRECT,
        )
        if reply_binding == BINDING_HTTP_REDIRECT:
            location = dict(http["headers"])["Location"]
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        return self.reply(200, "text/html; charset=utf-8", http["data"].encode())

    def reply(self, status, content_type, body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entity-id", default="urn:microsoft:cgg2010:fpsts")
    parser.add_argument("--key", required=True, help="IdP signing key (PEM)")
    parser.add_argument("--cert", required=True, help="IdP signing certificate (PEM)")
    parser.add_argument("--sp-metadata", required=True, help="SP metadata file (read on first use)")
    parser.add_argument("--want-signed-requests", action="store_true")
    parser.add_argument("--data-encryption", default="aes256-cbc", choices=[*DATA_ENCRYPTION, "none"])
    parser.add_argument("--unsigned-assertion", action="store_true", help="sign only the Response")
    parser.add_argument("--loa", default="http://eidas.europa.eu/LoA/substantial")
    parser.add_argument("--attribute", action="append", default=[], help="NAME=VALUE (NAME from attributemaps)")
    args = parser.parse_args()
    if not any(a.startswith("PersonIdentifier=") for a in args.attribute):
        parser.error("--attribute PersonIdentifier=... is required (it is also the NameID)")

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = httpd.server_address[1]
    state = State(args)
    state.server = NiaLikeServer(
        config=common.idp_config(
            args.entity_id, f"http://127.0.0.1:{port}", args.key, args.cert, None, args.want_signed_requests
        )
    )
    Handler.state = state

    def exit_when_stdin_closes():
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    print(f"PORT {port}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
