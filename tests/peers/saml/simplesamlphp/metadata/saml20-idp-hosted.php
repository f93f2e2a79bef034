<?php
// NIA's profile (nia.md §8): persistent NameID = PersonIdentifier, URI attribute names,
// Response and Assertion signed (rsa-sha256), Assertion encrypted (SimpleSAMLphp 1.19 with a
// certificate: aes128-cbc data, rsa-oaep-mgf1p key transport; it has no knob for the data cipher),
// signed AuthnRequests and LogoutRequests required, signed LogoutResponses.
$dir = getenv('AISGATE_SSP_DIR');
$metadata[getenv('AISGATE_SSP_ENTITY_ID')] = [
    'host' => '__DEFAULT__',
    'privatekey' => $dir . '/idp.key',
    'certificate' => $dir . '/idp.pem',
    'auth' => 'nia-user',
    // NIA's metadata: SSO by Redirect and POST, SLO by Redirect (nia.md §8.6).
    'SingleSignOnServiceBinding' => [
        'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect',
        'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST',
    ],
    'SingleLogoutServiceBinding' => ['urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect'],
    'NameIDFormat' => 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
    'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri',
    'authproc' => [
        10 => [
            'class' => 'saml:AttributeNameID',
            'Format' => 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
            'attribute' => 'http://eidas.europa.eu/attributes/naturalperson/PersonIdentifier',
        ],
        // The achieved LoA, as an eIDAS URI (nia.md §8.1).
        20 => [
            'class' => 'saml:AuthnContextClassRef',
            'AuthnContextClassRef' => 'http://eidas.europa.eu/LoA/substantial',
        ],
    ],
    'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    'saml20.sign.response' => true,
    'saml20.sign.assertion' => true,
    'assertion.encryption' => true,
    'validate.authnrequest' => true,
    'validate.logout' => true,
    'sign.logout' => true,
];
