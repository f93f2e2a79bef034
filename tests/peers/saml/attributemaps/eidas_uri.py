"""NIA's attribute names (spec nia.md §10.1, canonical URIs) for pysaml2's attribute converter:
local name (the FriendlyName NIA sends) <-> claim URI, NameFormat uri."""

EIDAS = "http://eidas.europa.eu/attributes/naturalperson/"
STORK = "http://www.stork.gov.eu/1.0/"
MORIS = "http://schemas.eidentita.cz/moris/2016/identity/claims/"

_NAMES = {
    "PersonIdentifier": EIDAS + "PersonIdentifier",
    "CurrentFamilyName": EIDAS + "CurrentFamilyName",
    "CurrentGivenName": EIDAS + "CurrentGivenName",
    "DateOfBirth": EIDAS + "DateOfBirth",
    "PlaceOfBirth": EIDAS + "PlaceOfBirth",
    "CurrentAddress": EIDAS + "CurrentAddress",
    "CountryCodeOfBirth": STORK + "countryCodeOfBirth",
    "Email": STORK + "eMail",
    "IsAgeOver": STORK + "isAgeOver",
    "Age": STORK + "age",
    "PhoneNumber": MORIS + "phonenumber",
    "TRadresaID": MORIS + "tradresaID",
}

MAP = {
    "identifier": "urn:oasis:names:tc:SAML:2.0:attrname-format:uri",
    "fro": {uri: name for name, uri in _NAMES.items()},
    # pysaml2 looks local names up lower-cased.
    "to": {name.lower(): uri for name, uri in _NAMES.items()},
}
