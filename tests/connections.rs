//! Connection-level boundaries: client body faults are the client's (not upstream outages),
//! protocol upgrades only to what was asked and allowed, idle and preface-only connections
//! reaped and a cap on open connections, the own endpoints' body cap, and upgraded
//! connections closed when their session ends.

mod support;

use std::time::Duration;

use aisgate::sim::stack::StackOptions;
use http_body_util::BodyExt;
use support::{upstream, Gateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::logs::capture as logs;

/// The log lines mentioning `needle`.
fn log_lines(needle: &str) -> Vec<String> {
    support::logs::text().lines().filter(|l| l.contains(needle)).map(str::to_owned).collect()
}

/// A raw HTTP/1.1 exchange: writes `request`, reads until the server closes (or 5 s pass).
async fn raw_exchange(gw: &Gateway, request: &[u8]) -> String {
    support::raw_request(gw.addr, request).await.1
}

fn status_of(response: &str) -> u16 {
    response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn header_of<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = &response[..response.find("\r\n\r\n")?];
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

fn json_of(response: &str) -> serde_json::Value {
    let body = &response[response.find("\r\n\r\n").map_or(0, |i| i + 4)..];
    // A chunked response: take the JSON object between the chunk framing.
    let start = body.find('{').unwrap_or(0);
    let end = body.rfind('}').map_or(body.len(), |i| i + 1);
    serde_json::from_str(&body[start..end]).unwrap_or(serde_json::Value::Null)
}

async fn metrics(gw: &Gateway) -> String {
    gw.client.get(format!("http://{}/metrics", gw.ops)).send().await.unwrap().text().await.unwrap()
}

fn metric_line<'a>(metrics: &'a str, series: &str) -> Option<&'a str> {
    metrics.lines().find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
}

/// An upstream that reads the whole request body and answers with its length.
async fn body_counter() -> String {
    upstream(|req: hyper::Request<hyper::body::Incoming>| async move {
        match req.into_body().collect().await {
            Ok(body) => support::text(200, body.to_bytes().len().to_string()),
            Err(_) => support::text(500, "broken upload"),
        }
    })
    .await
}

async fn small_body_gateway() -> Gateway {
    logs();
    Gateway::start(StackOptions {
        upstream: Some(body_counter().await),
        server_extra: "max_body_bytes = 1000".into(),
        ..Default::default()
    })
    .await
}

fn chunked_post(chunks: &[&[u8]]) -> Vec<u8> {
    let mut req = b"POST /public/upload HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\
        Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        .to_vec();
    for chunk in chunks {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    req
}

fn assert_client_fault(resp: &str, status: u16, code: &str) {
    assert_eq!(status_of(resp), status, "{resp}");
    assert_eq!(json_of(resp)["error"], code, "{resp}");
    let id = header_of(resp, "x-request-id").expect("X-Request-Id");
    let lines = log_lines(id);
    assert!(lines.iter().all(|l| !l.contains("ERROR")), "an ERROR line for a client fault: {lines:?}");
    assert!(
        lines.iter().any(|l| l.contains(" INFO ") && l.contains("client fault")),
        "no info line naming the client fault: {lines:?}"
    );
}

#[tokio::test]
async fn chunked_body_over_the_limit_is_413_not_an_upstream_error() {
    let gw = small_body_gateway().await;
    let chunk = [b'a'; 400];
    let resp = raw_exchange(&gw, &chunked_post(&[&chunk, &chunk, &chunk, &chunk])).await;
    assert_client_fault(&resp, 413, "payload_too_large");
    let m = metrics(&gw).await;
    for kind in ["connect", "timeout", "protocol"] {
        let series = format!("aisgate_upstream_errors_total{{app=\"echo\",kind=\"{kind}\"}}");
        assert_eq!(metric_line(&m, &series), Some(format!("{series} 0").as_str()), "{m}");
    }
    // Within the limit the same chunked upload passes.
    let ok = raw_exchange(&gw, &chunked_post(&[&chunk, &chunk])).await;
    assert_eq!(status_of(&ok), 200, "{ok}");
    assert!(ok.contains("800"), "{ok}");
}

#[tokio::test]
async fn malformed_chunked_body_is_400_not_an_upstream_error() {
    let gw = small_body_gateway().await;
    let req = b"POST /public/upload HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\
        Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n";
    let resp = raw_exchange(&gw, req).await;
    assert_client_fault(&resp, 400, "bad_request");
    let m = metrics(&gw).await;
    let series = "aisgate_upstream_errors_total{app=\"echo\",kind=\"protocol\"}";
    assert_eq!(metric_line(&m, series), Some(format!("{series} 0").as_str()), "{m}");
}

/// A raw upstream: reads a request head, writes `answer`, keeps the socket open a while.
async fn raw_upstream(answer: &'static [u8]) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(answer).await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            });
        }
    });
    format!("http://{addr}")
}

const WS_REQUEST: &[u8] = b"GET /public/ws HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\
    Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/// Sends an upgrade request through a gateway in front of `answer` and checks the switch is
/// refused with 502, the reason logged, and counted as an upstream protocol error.
async fn assert_switch_refused(answer: &'static [u8], reason: &str) {
    logs();
    let gw = Gateway::with_upstream(&raw_upstream(answer).await).await;
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    stream.write_all(WS_REQUEST).await.unwrap();
    let mut out = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut out)).await.unwrap().unwrap();
    let resp = String::from_utf8_lossy(&out[..n]).into_owned();
    assert_eq!(status_of(&resp), 502, "{resp}");
    assert!(!resp.contains("TUNNEL"), "upstream bytes leaked through: {resp}");
    let id = header_of(&resp, "x-request-id").unwrap();
    let lines = log_lines(id);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("ERROR") && l.contains("upstream protocol switch refused") && l.contains(reason)),
        "{lines:?}"
    );
    let m = metrics(&gw).await;
    let series = "aisgate_upstream_errors_total{app=\"echo\",kind=\"protocol\"}";
    assert_eq!(metric_line(&m, series), Some(format!("{series} 1").as_str()), "{m}");
}

#[tokio::test]
async fn a_bare_101_from_the_upstream_is_502_not_a_tunnel() {
    assert_switch_refused(b"HTTP/1.1 101 Switching Protocols\r\n\r\nTUNNEL", "without an Upgrade header").await;
}

#[tokio::test]
async fn a_101_to_another_protocol_than_requested_is_502() {
    assert_switch_refused(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\nTUNNEL",
        "which was not requested",
    )
    .await;
    assert_switch_refused(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nTUNNEL",
        "without Connection: upgrade",
    )
    .await;
}

#[tokio::test]
async fn an_h2c_or_unallowed_upgrade_is_forwarded_as_a_plain_request() {
    let gw = Gateway::with_upstream(&support::header_echo().await).await;
    for (upgrade, connection) in [("h2c", "Upgrade, HTTP2-Settings"), ("h2c", "Upgrade"), ("foo", "upgrade")] {
        let req = format!(
            "GET /public/x HTTP/1.1\r\nHost: localhost\r\nConnection: {connection}\r\nUpgrade: {upgrade}\r\n\
             HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
        );
        let mut stream = TcpStream::connect(gw.addr).await.unwrap();
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut out = vec![0u8; 8192];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut out)).await.unwrap().unwrap();
        let resp = String::from_utf8_lossy(&out[..n]).into_owned();
        assert_eq!(status_of(&resp), 200, "{resp}");
        let headers = json_of(&resp)["headers"].clone();
        for name in ["upgrade", "http2-settings", "connection"] {
            assert!(headers.get(name).is_none(), "{upgrade}/{connection}: {name} forwarded: {headers}");
        }
    }
}

/// Waits (bounded) until the metric `series` reads `value`.
async fn wait_metric(gw: &Gateway, series: &str, value: &str) {
    let mut last = String::new();
    for _ in 0..100 {
        last = metrics(gw).await;
        if metric_line(&last, series) == Some(format!("{series} {value}").as_str()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{series} never reached {value}:\n{last}");
}

/// Reads until the server closes the connection; returns how long that took, or panics after
/// `bound`.
async fn closed_within(stream: &mut TcpStream, bound: Duration) -> Duration {
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(started + bound, stream.read(&mut buf)).await {
            Err(_) => panic!("connection still open after {bound:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
        }
    }
}

/// A keep-alive HTTP/1 connection that has had one `GET path` answered with 200.
async fn after_one_request(gw: &Gateway, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 8192];
    let n = stream.read(&mut buf).await.unwrap();
    assert_eq!(status_of(&String::from_utf8_lossy(&buf[..n])), 200);
    stream
}

#[tokio::test]
async fn silent_preface_only_and_idle_connections_are_reaped_and_the_cap_refuses_the_excess() {
    let first_request = Duration::from_millis(800);
    let idle = Duration::from_millis(400);
    let gw = Gateway::start_with_limits(
        StackOptions { upstream: Some(support::header_echo().await), ..Default::default() },
        |limits| {
            limits.header_read_timeout = first_request;
            limits.idle_timeout = idle;
            limits.max_connections = 4;
        },
    )
    .await;
    let open = "aisgate_open_connections";
    // Two sockets that send nothing, one that sends only the HTTP/2 preface, one HTTP/1
    // keep-alive connection that idles after a request: the cap (4) is reached.
    let mut silent = [TcpStream::connect(gw.addr).await.unwrap(), TcpStream::connect(gw.addr).await.unwrap()];
    let mut preface = TcpStream::connect(gw.addr).await.unwrap();
    preface.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    let mut keep_alive = after_one_request(&gw, "/public/ka").await;
    let idle_from = tokio::time::Instant::now();
    wait_metric(&gw, open, "4").await;

    // Over the cap: closed right after accept, before the deadlines could matter.
    let mut excess = TcpStream::connect(gw.addr).await.unwrap();
    let _ = excess.write_all(b"GET /public/x HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    let took = closed_within(&mut excess, Duration::from_millis(300)).await;
    assert!(took < Duration::from_millis(300), "{took:?}");
    wait_metric(&gw, "aisgate_connections_refused_total", "1").await;

    // The idle keep-alive connection goes after `idle`, the others at the first-request deadline.
    closed_within(&mut keep_alive, Duration::from_secs(3)).await;
    let idled = idle_from.elapsed();
    // The server's idle clock starts when it has sent the response, a little before we read it.
    assert!(
        idled >= idle - Duration::from_millis(50) && idled < first_request,
        "idle connection closed after {idled:?}"
    );
    for stream in silent.iter_mut().chain([&mut preface]) {
        closed_within(stream, Duration::from_secs(3)).await;
    }
    wait_metric(&gw, "aisgate_connections_reaped_total{reason=\"first_request\"}", "3").await;
    wait_metric(&gw, "aisgate_connections_reaped_total{reason=\"idle\"}", "1").await;
    wait_metric(&gw, open, "0").await;

    // With the idle ones reaped, real users get through again (HTTP/1 and HTTP/2).
    assert_eq!(gw.client.get(gw.url("/public/after")).send().await.unwrap().status(), 200);
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let resp = h2.get(gw.url("/public/h2")).send().await.unwrap();
    assert_eq!((resp.version(), resp.status().as_u16()), (reqwest::Version::HTTP_2, 200));
    // …and their keep-alive connections are reaped once idle too.
    tokio::time::sleep(idle * 2).await;
    wait_metric(&gw, open, "0").await;
}

/// The header-read timeout holds for every HTTP/1 request head, not only the first: a
/// keep-alive connection that drips its next head byte by byte is closed
/// `header_read_timeout` after its last response, however long `idle_timeout` is. (The
/// gateway's connection watchdog enforces it; hyper's own per-request header timer is off.)
#[tokio::test]
async fn a_keep_alive_connection_dripping_its_next_head_is_closed_at_the_header_read_timeout() {
    let header_read = Duration::from_millis(600);
    let gw = Gateway::start_with_limits(
        StackOptions { upstream: Some(support::header_echo().await), ..Default::default() },
        |limits| {
            limits.header_read_timeout = header_read;
            limits.idle_timeout = Duration::from_secs(30);
        },
    )
    .await;
    let mut stream = after_one_request(&gw, "/public/first").await;
    let answered = tokio::time::Instant::now();
    let mut buf = vec![0u8; 8192];
    // The next head, one byte every 50 ms: never complete, never silent for long.
    let head =
        b"GET /public/second HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut closed = None;
    for byte in head.iter() {
        if stream.write_all(&[*byte]).await.is_err() {
            closed = Some(answered.elapsed());
            break;
        }
        match tokio::time::timeout(Duration::from_millis(50), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = Some(answered.elapsed());
                break;
            }
            Ok(Ok(n)) => panic!("unexpected answer to an incomplete head: {}", String::from_utf8_lossy(&buf[..n])),
            Err(_) => {}
        }
    }
    let closed = closed.expect("the dripping connection was never closed");
    assert!(
        closed >= header_read - Duration::from_millis(50) && closed < header_read * 3,
        "closed {closed:?} after the last response (header_read_timeout {header_read:?}, idle 30 s)"
    );
    wait_metric(&gw, "aisgate_connections_reaped_total{reason=\"idle\"}", "1").await;
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn open_ws(gw: &Gateway, path: &str, cookie: Option<&str>) -> Ws {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}{path}", gw.addr).into_client_request().unwrap();
    if let Some(cookie) = cookie {
        request.headers_mut().insert("cookie", cookie.parse().unwrap());
    }
    let (mut ws, resp) = tokio_tungstenite::connect_async(request).await.expect("upgrade through the gateway");
    assert_eq!(resp.status(), 101);
    assert!(echoes(&mut ws).await, "a fresh WebSocket echoes");
    ws
}

/// Whether the WebSocket still carries frames both ways.
async fn echoes(ws: &mut Ws) -> bool {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    if ws.send(Message::text("ping")).await.is_err() {
        return false;
    }
    matches!(
        tokio::time::timeout(Duration::from_secs(2), ws.next()).await,
        Ok(Some(Ok(msg))) if msg.is_text() && msg.to_text().unwrap() == "ping"
    )
}

/// Waits (at most `bound`) for the gateway to end the WebSocket; returns how long it took.
async fn ws_closed_within(ws: &mut Ws, bound: Duration) -> Duration {
    use futures_util::StreamExt;
    let started = tokio::time::Instant::now();
    loop {
        match tokio::time::timeout_at(started + bound, ws.next()).await {
            Err(_) => panic!("WebSocket still open after {bound:?}"),
            Ok(None) | Ok(Some(Err(_))) => return started.elapsed(),
            Ok(Some(Ok(msg))) if msg.is_close() => return started.elapsed(),
            Ok(Some(Ok(_))) => {}
        }
    }
}

fn assert_tunnel_close_logged(reason: &str) {
    let lines = log_lines("upgraded connection closed: its session is over");
    assert!(lines.iter().any(|l| l.contains(" INFO ") && l.contains(reason)), "{lines:?}");
}

#[tokio::test]
async fn websockets_close_when_their_session_logs_out_and_others_stay_open() {
    logs();
    let gw = Gateway::with_upstream(&support::websocket_echo().await).await;
    let cookie = gw.login().await;
    let other = gw.login().await;
    let mut mine = open_ws(&gw, "/live", Some(&cookie)).await;
    let mut theirs = open_ws(&gw, "/live", Some(&other)).await;
    let mut public = open_ws(&gw, "/public/live", None).await;

    let logout = gw.client.post(gw.url("/.aisgate/logout")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(logout.status(), 302);
    let took = ws_closed_within(&mut mine, Duration::from_secs(1)).await;
    eprintln!("WebSocket closed {took:?} after the logout answered");
    assert_tunnel_close_logged("session ended");
    assert!(echoes(&mut theirs).await, "another session's WebSocket stays open");
    assert!(echoes(&mut public).await, "a public WebSocket has no session to end");
}

#[tokio::test]
async fn websockets_close_at_the_sessions_absolute_expiry() {
    logs();
    let gw = Gateway::start(StackOptions {
        upstream: Some(support::websocket_echo().await),
        session_extra: "absolute_timeout_secs = 1\nidle_timeout_secs = 1".into(),
        ..Default::default()
    })
    .await;
    let cookie = gw.login().await;
    let mut ws = open_ws(&gw, "/live", Some(&cookie)).await;
    // The absolute expiry has whole-second resolution: at most 1 s from now.
    ws_closed_within(&mut ws, Duration::from_millis(2500)).await;
    // Whichever comes first: the tunnel's own timer, or the store announcing the expiry.
    let lines = log_lines("upgraded connection closed: its session is over");
    assert!(lines.iter().any(|l| l.contains("session expired") || l.contains("session ended")), "{lines:?}");
}

#[tokio::test]
async fn websockets_close_on_back_channel_logout() {
    logs();
    let apps = "[[app]]\nname = \"desk\"\nupstream = \"{upstream}\"\nproviders = [\"caais\"]\n";
    let gw = Gateway::start(StackOptions {
        upstream: Some(support::websocket_echo().await),
        apps: Some(apps.into()),
        oidc: vec![support::caais_provider("")],
        ..Default::default()
    })
    .await;
    let cookie = gw.oidc_login("caais", "/desk").await;
    let mut ws = open_ws(&gw, "/live", Some(&cookie)).await;
    let sub = aisgate::sim::oidc::caais_user()["sub"].as_str().unwrap().to_owned();
    let token = gw.oidc[0].logout_token(Some(&sub), None, None).unwrap();
    let resp = gw
        .client
        .post(gw.url("/.aisgate/backchannel-logout/caais"))
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    ws_closed_within(&mut ws, Duration::from_secs(1)).await;
    assert_tunnel_close_logged("session ended");
}

#[tokio::test]
async fn an_own_endpoint_body_over_the_cap_gets_the_documented_413() {
    logs();
    let gw = Gateway::with_upstream(&support::header_echo().await).await;
    let big = "a=".to_owned() + &"x".repeat(300 * 1024);
    // Known length: refused before the body is read.
    let resp = gw
        .client
        .post(gw.url("/.aisgate/callback/jip"))
        .header("accept", "application/json")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "payload_too_large", "{body}");
    assert!(log_lines(&id).iter().any(|l| l.contains(" INFO ") && l.contains("client fault")));
    // Chunked, no length: refused once it passes the cap, with the same page (browsers get HTML).
    let mut req = b"POST /.aisgate/callback/jip HTTP/1.1\r\nHost: localhost\r\nAccept: text/html\r\n\
        Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        .to_vec();
    for chunk in big.as_bytes().chunks(64 * 1024) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let resp = raw_exchange(&gw, &req).await;
    assert_eq!(status_of(&resp), 413, "{}", &resp[..resp.len().min(300)]);
    assert!(header_of(&resp, "content-type").unwrap().starts_with("text/html"), "{resp}");
    assert!(!resp.contains("Failed to buffer"), "{resp}");
}

#[tokio::test]
async fn a_saml_message_larger_than_256_kib_gets_through_the_cap_when_max_message_bytes_allows_it() {
    use base64::Engine;
    logs();
    // The simulated NIA provider keeps the default max_message_bytes (512 KiB): its own limit,
    // not the own endpoints' cap, decides about a 300 KB message.
    let gw = Gateway::start(StackOptions {
        upstream: Some(support::header_echo().await),
        saml: Some(aisgate::sim::stack::SamlStackProvider::default()),
        ..Default::default()
    })
    .await;
    let xml = format!(
        "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\">{}</samlp:Response>",
        "<x/>".repeat(75_000)
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(xml.as_bytes());
    let resp = gw
        .client
        .post(gw.url("/.aisgate/callback/nia"))
        .header("accept", "text/html")
        .form(&[("SAMLResponse", encoded.as_str()), ("RelayState", "r")])
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let page = resp.text().await.unwrap();
    assert_ne!(status, 413, "the cap cut a message the provider allows");
    // The message reached the SAML code, which refused it on its merits (no pending login).
    assert!(page.contains(support::NOT_INITIATED) || page.contains(support::LOGIN_FAILED), "{status}: {page}");
}

/// An upgraded (WebSocket) connection keeps its place under `max_connections` until the tunnel
/// closes, although the HTTP connection it came from has ended; only requests hyper can
/// upgrade carry the slot to the tunnel (plain requests skip it, see `listen::serve_connection`).
#[tokio::test]
async fn a_websocket_tunnel_keeps_its_connection_slot_until_it_closes() {
    let gw = Gateway::start_with_limits(
        StackOptions { upstream: Some(support::websocket_echo().await), ..Default::default() },
        |limits| limits.max_connections = 1,
    )
    .await;
    let open = "aisgate_open_connections";
    let mut ws = open_ws(&gw, "/public/live", None).await;
    // The HTTP connection has handed its socket to the tunnel (the tunnel echoes); its slot
    // is still taken, so the cap (1) refuses the next connection.
    wait_metric(&gw, open, "1").await;
    let mut excess = TcpStream::connect(gw.addr).await.unwrap();
    let _ = excess.write_all(b"GET /public/x HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    let took = closed_within(&mut excess, Duration::from_secs(2)).await;
    assert!(took < Duration::from_secs(2), "{took:?}");
    wait_metric(&gw, "aisgate_connections_refused_total", "1").await;
    assert!(echoes(&mut ws).await, "the tunnel is still open");

    // Closing the tunnel frees the slot: the next connection is served again (the echo
    // upstream answers no plain request, so the gateway's own 502 page is the answer).
    ws.close(None).await.unwrap();
    ws_closed_within(&mut ws, Duration::from_secs(2)).await;
    drop(ws);
    wait_metric(&gw, open, "0").await;
    let after = gw.client.get(gw.url("/public/after")).send().await.expect("served, not refused");
    assert_eq!(after.status(), 502);
    wait_metric(&gw, "aisgate_connections_refused_total", "1").await;
}
