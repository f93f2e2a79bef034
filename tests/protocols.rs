//! Client-side protocols through the gateway: HTTP/2 (cleartext prior knowledge and TLS with
//! ALPN), TLS termination with real certificates, WebSocket upgrade pass-through.

mod support;

use futures_util::{SinkExt, StreamExt};
use support::{header_echo, Gateway};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn http2_prior_knowledge_requests_are_proxied() {
    let gw = Gateway::with_upstream(&header_echo().await).await;
    let client = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let resp = client.get(gw.url("/public/h2")).header("x-auth-subject", "spoofed").send().await.unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["path"], "/public/h2");
    assert!(body["headers"].get("x-auth-subject").is_none());
    // The upstream gets a Host even though HTTP/2 carries :authority instead.
    assert!(body["headers"]["host"].as_str().unwrap().starts_with("127.0.0.1:"));
}

#[tokio::test]
async fn tls_termination_offers_http2_and_http11() {
    let (gw, ca) = Gateway::start_tls(aisgate::sim::stack::StackOptions {
        upstream: Some(header_echo().await),
        ..Default::default()
    })
    .await;
    let ca = reqwest::Certificate::from_pem(&ca).unwrap();
    for (client, version) in [
        (reqwest::Client::builder().tls_certs_only([ca.clone()]).build().unwrap(), reqwest::Version::HTTP_2),
        (
            reqwest::Client::builder().tls_certs_only([ca.clone()]).http1_only().build().unwrap(),
            reqwest::Version::HTTP_11,
        ),
    ] {
        let resp = client.get(gw.url("/public/tls")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.version(), version);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["headers"]["x-forwarded-proto"], "https");
    }
    // A client that does not trust the test CA cannot connect.
    assert!(reqwest::Client::new().get(gw.url("/public/tls")).send().await.is_err());
}

#[allow(clippy::result_large_err)] // the callback type is tungstenite's
async fn websocket_echo_upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                // Echo the identity the gateway injected in the handshake, then every frame.
                let mut subject = String::new();
                let callback =
                    |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
                     resp: tokio_tungstenite::tungstenite::handshake::server::Response| {
                        subject =
                            req.headers().get("x-auth-subject").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                        Ok(resp)
                    };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else { return };
                let _ = ws.send(Message::text(format!("subject={subject}"))).await;
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() || msg.is_binary() {
                        let _ = ws.send(msg).await;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn websocket_echo_works_through_the_proxy_with_identity() {
    let gw = Gateway::with_upstream(&websocket_echo_upstream().await).await;
    let cookie = gw.login().await;
    let mut request = format!("ws://{}/live", gw.addr).into_client_request().unwrap();
    request.headers_mut().insert("cookie", cookie.parse().unwrap());
    request.headers_mut().insert("x-auth-subject", "spoofed".parse().unwrap());
    let (mut ws, resp) = tokio_tungstenite::connect_async(request).await.expect("upgrade through the gateway");
    assert_eq!(resp.status(), 101);
    let hello = ws.next().await.unwrap().unwrap();
    assert_eq!(hello.into_text().unwrap().as_str(), "subject=6f1c0d2a-6b7e-4d0e-9a51-3c2b1f0e9d84");
    for i in 0..20 {
        ws.send(Message::text(format!("ping {i}"))).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap().into_text().unwrap().as_str(), format!("ping {i}"));
    }
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap().into_data().as_ref(), &[1u8, 2, 3]);
    ws.close(None).await.unwrap();

    // Without a session the upgrade is refused before reaching the upstream.
    let anonymous = format!("ws://{}/live", gw.addr).into_client_request().unwrap();
    assert!(tokio_tungstenite::connect_async(anonymous).await.is_err());
}

/// An HTTPS upstream whose certificate comes from its own test CA.
async fn tls_upstream(pki: &aisgate::sim::certs::TestPki) -> String {
    let config = aisgate::tls::server_config(&pki.server_cert, &pki.server_key).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else { return };
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(support::text(200, "tls upstream"))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    format!("https://localhost:{port}")
}

#[tokio::test]
async fn https_upstream_is_verified_against_the_apps_ca_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let pki = aisgate::sim::certs::generate(dir.path()).unwrap();
    let up = tls_upstream(&pki).await;
    let apps = format!(
        "[[app]]\nname = \"internal\"\npath_prefix = \"/internal\"\nupstream = \"{up}\"\nproviders = [\"jip\"]\npublic_paths = [\"/\"]\nupstream_ca_bundle = \"{}\"\n\
         [[app]]\nname = \"webpki\"\nupstream = \"{up}\"\nproviders = [\"jip\"]\npublic_paths = [\"/\"]\n",
        pki.ca_cert.display()
    );
    let gw = Gateway::start(aisgate::sim::stack::StackOptions { apps: Some(apps), ..Default::default() }).await;
    let ok = gw.client.get(gw.url("/internal/x")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "tls upstream");
    // The same upstream is refused where only the public web PKI is trusted.
    assert_eq!(gw.client.get(gw.url("/other")).send().await.unwrap().status(), 502);
}
