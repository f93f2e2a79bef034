"""A small real SOAP service (standard library only: wsgiref + ElementTree) in the shape of an
ISOH WCF `.svc` endpoint, for tests/soap_api.rs and the benchmark.

    python3 service.py PORT        # prints "READY <port>" once listening (PORT 0: any)

Two endpoints with one contract (document/literal, namespace urn:aisgate:isoh):
  /isoh/Hlaseni11.svc   SOAP 1.1 (text/xml, SOAPAction)
  /isoh/Hlaseni12.svc   SOAP 1.2 (application/soap+xml; action=...)
  `?wsdl` on either answers its WSDL. Operations:
  PoskytniData(Zadost{Ico, Rok}) -- data provision (IČO-checked at the gateway)
  PrijmiData(Data)               -- data reception (exempt from the IČO check, like HlaseniOrp.svc)
Both answer a `Vysledek` echoing what the gateway sent: the identity headers, whether an
Authorization header arrived, and the SHA-256 of the request body as received.
GET /__stats answers {"posts": N}: how many SOAP requests reached the service.
"""

import hashlib
import json
import sys
import threading
import xml.etree.ElementTree as ET
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

NS = "urn:aisgate:isoh"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"

STATS = {"posts": 0}
LOCK = threading.Lock()

WSDL = """<?xml version="1.0" encoding="utf-8"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
    xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/"
    xmlns:xs="http://www.w3.org/2001/XMLSchema"
    xmlns:tns="urn:aisgate:isoh" targetNamespace="urn:aisgate:isoh">
  <wsdl:types>
    <xs:schema targetNamespace="urn:aisgate:isoh" elementFormDefault="qualified">
      <xs:complexType name="Zadost">
        <xs:sequence>
          <xs:element name="Ico" type="xs:string"/>
          <xs:element name="Rok" type="xs:int"/>
        </xs:sequence>
      </xs:complexType>
      <xs:complexType name="Vysledek">
        <xs:sequence>
          <xs:element name="Operation" type="xs:string"/>
          <xs:element name="User" type="xs:string"/>
          <xs:element name="Ico" type="xs:string"/>
          <xs:element name="SubjectRoles" type="xs:string"/>
          <xs:element name="Roles" type="xs:string"/>
          <xs:element name="AuthOperation" type="xs:string"/>
          <xs:element name="Authorization" type="xs:string"/>
          <xs:element name="BodySha256" type="xs:string"/>
        </xs:sequence>
      </xs:complexType>
      <xs:element name="PoskytniData">
        <xs:complexType><xs:sequence><xs:element name="Zadost" type="tns:Zadost"/></xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="PoskytniDataResponse">
        <xs:complexType><xs:sequence><xs:element name="Vysledek" type="tns:Vysledek"/></xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="PrijmiData">
        <xs:complexType><xs:sequence><xs:element name="Data" type="xs:string"/></xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="PrijmiDataResponse">
        <xs:complexType><xs:sequence><xs:element name="Vysledek" type="tns:Vysledek"/></xs:sequence></xs:complexType>
      </xs:element>
    </xs:schema>
  </wsdl:types>
  <wsdl:message name="PoskytniDataIn"><wsdl:part name="parameters" element="tns:PoskytniData"/></wsdl:message>
  <wsdl:message name="PoskytniDataOut"><wsdl:part name="parameters" element="tns:PoskytniDataResponse"/></wsdl:message>
  <wsdl:message name="PrijmiDataIn"><wsdl:part name="parameters" element="tns:PrijmiData"/></wsdl:message>
  <wsdl:message name="PrijmiDataOut"><wsdl:part name="parameters" element="tns:PrijmiDataResponse"/></wsdl:message>
  <wsdl:portType name="IHlaseni">
    <wsdl:operation name="PoskytniData">
      <wsdl:input message="tns:PoskytniDataIn"/><wsdl:output message="tns:PoskytniDataOut"/>
    </wsdl:operation>
    <wsdl:operation name="PrijmiData">
      <wsdl:input message="tns:PrijmiDataIn"/><wsdl:output message="tns:PrijmiDataOut"/>
    </wsdl:operation>
  </wsdl:portType>
  <wsdl:binding name="Hlaseni11" type="tns:IHlaseni">
    <soap:binding transport="http://schemas.xmlsoap.org/soap/http" style="document"/>
    <wsdl:operation name="PoskytniData">
      <soap:operation soapAction="urn:aisgate:isoh/IHlaseni/PoskytniData" style="document"/>
      <wsdl:input><soap:body use="literal"/></wsdl:input><wsdl:output><soap:body use="literal"/></wsdl:output>
    </wsdl:operation>
    <wsdl:operation name="PrijmiData">
      <soap:operation soapAction="urn:aisgate:isoh/IHlaseni/PrijmiData" style="document"/>
      <wsdl:input><soap:body use="literal"/></wsdl:input><wsdl:output><soap:body use="literal"/></wsdl:output>
    </wsdl:operation>
  </wsdl:binding>
  <wsdl:binding name="Hlaseni12" type="tns:IHlaseni">
    <soap12:binding transport="http://schemas.xmlsoap.org/soap/http" style="document"/>
    <wsdl:operation name="PoskytniData">
      <soap12:operation soapAction="urn:aisgate:isoh/IHlaseni/PoskytniData" style="document"/>
      <wsdl:input><soap12:body use="literal"/></wsdl:input><wsdl:output><soap12:body use="literal"/></wsdl:output>
    </wsdl:operation>
    <wsdl:operation name="PrijmiData">
      <soap12:operation soapAction="urn:aisgate:isoh/IHlaseni/PrijmiData" style="document"/>
      <wsdl:input><soap12:body use="literal"/></wsdl:input><wsdl:output><soap12:body use="literal"/></wsdl:output>
    </wsdl:operation>
  </wsdl:binding>
  <wsdl:service name="Hlaseni">
    <wsdl:port name="Hlaseni11" binding="tns:Hlaseni11"><soap:address location="{base}/isoh/Hlaseni11.svc"/></wsdl:port>
    <wsdl:port name="Hlaseni12" binding="tns:Hlaseni12"><soap12:address location="{base}/isoh/Hlaseni12.svc"/></wsdl:port>
  </wsdl:service>
</wsdl:definitions>
"""

FIELDS = ["Operation", "User", "Ico", "SubjectRoles", "Roles", "AuthOperation", "Authorization", "BodySha256"]


def esc(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fault(env_ns, version, text, status="500 Internal Server Error"):
    if version == 12:
        body = (f'<s:Fault><s:Code><s:Value>s:Sender</s:Value></s:Code>'
                f'<s:Reason><s:Text xml:lang="en">{esc(text)}</s:Text></s:Reason></s:Fault>')
    else:
        body = f"<s:Fault><faultcode>s:Client</faultcode><faultstring>{esc(text)}</faultstring></s:Fault>"
    return status, f'<s:Envelope xmlns:s="{env_ns}"><s:Body>{body}</s:Body></s:Envelope>'


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    method = environ["REQUEST_METHOD"]
    if path == "/__stats":
        with LOCK:
            body = json.dumps(STATS).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    version = 11 if path.endswith("Hlaseni11.svc") else 12 if path.endswith("Hlaseni12.svc") else None
    if version is None:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    if method == "GET":
        query = environ.get("QUERY_STRING", "").lower()
        if query == "wsdl":
            host = environ.get("HTTP_X_FORWARDED_HOST") or environ.get("HTTP_HOST", "localhost")
            proto = environ.get("HTTP_X_FORWARDED_PROTO", "http")
            start_response("200 OK", [("Content-Type", "text/xml; charset=utf-8")])
            return [WSDL.replace("{base}", f"{proto}://{host}").encode()]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"Hlaseni service; add ?wsdl"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    with LOCK:
        STATS["posts"] += 1
    env_ns = SOAP11 if version == 11 else SOAP12
    ctype = "text/xml; charset=utf-8" if version == 11 else "application/soap+xml; charset=utf-8"
    try:
        doc = ET.fromstring(raw)
        body = doc.find(f"{{{env_ns}}}Body")
        op = body[0]
    except Exception as exc:  # noqa: BLE001 - any parse failure is the client's
        status, text = fault(env_ns, version, f"bad request: {exc}")
        start_response(status, [("Content-Type", ctype)])
        return [text.encode()]
    operation = op.tag.split("}")[-1]
    values = {
        "Operation": operation,
        "User": environ.get("HTTP_X_AUTH_SUBJECT", ""),
        "Ico": environ.get("HTTP_X_AUTH_SUBJECT_ICO", ""),
        "SubjectRoles": environ.get("HTTP_X_AUTH_SUBJECT_ROLES", ""),
        "Roles": environ.get("HTTP_X_AUTH_ROLES", ""),
        "AuthOperation": environ.get("HTTP_X_AUTH_OPERATION", ""),
        "Authorization": "present" if "HTTP_AUTHORIZATION" in environ else "absent",
        "BodySha256": hashlib.sha256(raw).hexdigest(),
    }
    fields = "".join(f"<t:{k}>{esc(values[k])}</t:{k}>" for k in FIELDS)
    text = (f'<s:Envelope xmlns:s="{env_ns}"><s:Body><t:{operation}Response xmlns:t="{NS}">'
            f"<t:Vysledek>{fields}</t:Vysledek></t:{operation}Response></s:Body></s:Envelope>")
    start_response("200 OK", [("Content-Type", ctype)])
    return [text.encode()]


class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = make_server("127.0.0.1", port, app, server_class=Server, handler_class=QuietHandler)
    print(f"READY {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
