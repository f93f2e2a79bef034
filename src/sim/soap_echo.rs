//! A small SOAP service for the demo: answers every SOAP 1.1 or 1.2 request with an envelope
//! echoing the identity headers the gateway sent (`X-Auth-*`) and the operation it received,
//! so a person can see what an EnviIAM-authenticated, IČO-checked call delivers upstream.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::header::CONTENT_TYPE;
use http::StatusCode;

use crate::api::fault::{xml_escape, SoapVersion, SOAP11_NS, SOAP12_NS};

/// Starts the service on `addr`; returns the bound address.
pub async fn start(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    super::serve(addr, Router::new().fallback(echo), "demo SOAP service").await
}

async fn echo(req: Request) -> Response {
    let Some(version) = SoapVersion::of(req.headers()) else {
        return (
            StatusCode::OK,
            "Demo SOAP service: POST a SOAP 1.1 (text/xml) or 1.2 (application/soap+xml) envelope.\n",
        )
            .into_response();
    };
    let headers: String = req
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-auth-") && name.as_str() != "x-auth-token")
        .map(|(name, value)| {
            format!(
                "<e:Header name=\"{}\">{}</e:Header>",
                xml_escape(name.as_str()),
                xml_escape(&String::from_utf8_lossy(value.as_bytes()))
            )
        })
        .collect();
    let authorization = if req.headers().contains_key(http::header::AUTHORIZATION) { "present" } else { "absent" };
    let ns = match version {
        SoapVersion::V11 => SOAP11_NS,
        SoapVersion::V12 => SOAP12_NS,
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<s:Envelope xmlns:s=\"{ns}\"><s:Body><e:EchoResponse xmlns:e=\"urn:aisgate:demo\">\
         {headers}<e:Authorization>{authorization}</e:Authorization></e:EchoResponse></s:Body></s:Envelope>\n"
    );
    ([(CONTENT_TYPE, version.content_type())], Body::from(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn echoes_identity_headers_in_the_request_soap_version() {
        let addr = start("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let resp = reqwest::Client::new()
            .post(format!("http://{addr}/isoh/Hlaseni.svc"))
            .header("content-type", "application/soap+xml; charset=utf-8")
            .header("x-auth-subject-ico", "00007064")
            .header("x-auth-subject", "a<b")
            .body("<x/>")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["content-type"], "application/soap+xml; charset=utf-8");
        let text = resp.text().await.unwrap();
        assert!(text.contains(SOAP12_NS), "{text}");
        assert!(text.contains("<e:Header name=\"x-auth-subject-ico\">00007064</e:Header>"), "{text}");
        assert!(text.contains("<e:Header name=\"x-auth-subject\">a&lt;b</e:Header>"), "{text}");
        assert!(text.contains("<e:Authorization>absent</e:Authorization>"), "{text}");
    }
}
