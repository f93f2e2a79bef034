//! A 100 MB upload and a 100 MB download stream through an authenticated session without the
//! gateway buffering them. Alone in its binary so the peak-memory reading is not disturbed by
//! other tests.

mod support;

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use support::{upstream, Gateway};

const CHUNK: usize = 64 * 1024;
const TOTAL: usize = 100 * 1024 * 1024;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.to_owned()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn chunks() -> impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send + 'static {
    let chunk = Bytes::from(vec![0x5a; CHUNK]);
    futures_util::stream::iter((0..TOTAL / CHUNK).map(move |_| Ok(Frame::data(chunk.clone()))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_megabyte_upload_and_download_stream_with_bounded_memory() {
    let up = upstream(|req: hyper::Request<hyper::body::Incoming>| async move {
        if req.uri().path() == "/download" {
            let body = StreamBody::new(chunks().map(|r| r.map_err(|never| match never {})));
            return hyper::Response::new(BodyExt::boxed(body));
        }
        // Upload: count what arrives, chunk by chunk.
        let mut body = req.into_body();
        let mut received = 0usize;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.map(|f| f.into_data()) {
                received += data.map(|d| d.len()).unwrap_or(0);
            } else {
                return support::text(500, "broken upload");
            }
        }
        support::text(200, received.to_string())
    })
    .await;
    let gw = Gateway::with_upstream(&up).await;
    let cookie = gw.login().await;
    let client: Client<_, http_body_util::combinators::BoxBody<Bytes, Infallible>> =
        Client::builder(TokioExecutor::new()).build_http();
    let before = peak_rss_kib();

    let upload = hyper::Request::post(gw.url("/upload"))
        .header("cookie", &cookie)
        .body(BodyExt::boxed(StreamBody::new(chunks())))
        .unwrap();
    let resp = client.request(upload).await.unwrap();
    assert_eq!(resp.status(), 200);
    let count = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(count, TOTAL.to_string().as_bytes());

    let download = hyper::Request::get(gw.url("/download"))
        .header("cookie", &cookie)
        .body(BodyExt::boxed(http_body_util::Empty::new()))
        .unwrap();
    let resp = client.request(download).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut received = 0usize;
    while let Some(frame) = body.frame().await {
        received += frame.unwrap().into_data().map(|d| d.len()).unwrap_or(0);
    }
    assert_eq!(received, TOTAL);

    let grown_mib = (peak_rss_kib().saturating_sub(before)) / 1024;
    eprintln!("peak RSS grew by {grown_mib} MiB while streaming 2 x 100 MiB");
    assert!(grown_mib < 40, "peak RSS grew by {grown_mib} MiB: bodies are being buffered");
}
