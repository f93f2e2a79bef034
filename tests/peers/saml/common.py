"""Shared pieces of the pysaml2 peers used by aisgate's interop tests (tests/saml_interop.rs).

The peers are real third-party SAML software (pysaml2 from PyPI, which runs the Debian
`xmlsec1` binary for every signature and encryption step); nothing here re-implements SAML.
This module only turns command-line arguments into a pysaml2 IdP configuration.
"""

import os
import shutil

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_PERSISTENT
from saml2.server import Server

HERE = os.path.dirname(os.path.abspath(__file__))

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"


def xmlsec_binary():
    """The Debian `xmlsec1` binary pysaml2 shells out to."""
    path = shutil.which("xmlsec1")
    if path is None:
        raise SystemExit("xmlsec1 not found (apt-get install xmlsec1)")
    return path


def idp_config(entity_id, base, key, cert, sp_metadata, want_signed_requests):
    """A pysaml2 IdP configuration: SSO by HTTP-Redirect and HTTP-POST, SLO by both,
    persistent NameIDs, URI-named eIDAS attributes (attributemaps/eidas_uri.py)."""
    return IdPConfig().load(
        {
            "entityid": entity_id,
            "xmlsec_binary": xmlsec_binary(),
            "key_file": key,
            "cert_file": cert,
            "metadata": {"local": [sp_metadata]} if sp_metadata else {},
            "attribute_map_dir": os.path.join(HERE, "attributemaps"),
            "accepted_time_diff": 180,
            "delete_tmpfiles": True,
            "service": {
                "idp": {
                    "endpoints": {
                        "single_sign_on_service": [
                            (f"{base}/sso/redirect", BINDING_HTTP_REDIRECT),
                            (f"{base}/sso/post", BINDING_HTTP_POST),
                        ],
                        "single_logout_service": [
                            (f"{base}/slo/redirect", BINDING_HTTP_REDIRECT),
                            (f"{base}/slo/post", BINDING_HTTP_POST),
                        ],
                    },
                    "name_id_format": [NAMEID_FORMAT_PERSISTENT],
                    "want_authn_requests_signed": want_signed_requests,
                    "signing_algorithm": RSA_SHA256,
                    "digest_algorithm": SHA256,
                    "policy": {
                        "default": {
                            "lifetime": {"minutes": 60},
                            "attribute_restrictions": None,
                            "name_form": NAME_FORMAT_URI,
                        }
                    },
                }
            },
        }
    )


def idp_server(entity_id, base, key, cert, sp_metadata, want_signed_requests):
    """A pysaml2 `Server` for the configuration above."""
    return Server(config=idp_config(entity_id, base, key, cert, sp_metadata, want_signed_requests))
