//! Every log line of a test binary, captured (tests share the process, so lines are told apart
//! by request id).

use std::sync::{Arc, Mutex, OnceLock};

/// The captured log of this test binary; the first call installs the subscriber.
pub fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let _ = tracing_subscriber::fmt().with_ansi(false).with_writer(move || LogSink(sink.clone())).try_init();
        buf
    })
}

/// The captured log as text.
pub fn text() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap()).into_owned()
}

/// The log lines of the request that got `resp` (by its `X-Request-Id`).
pub fn lines_for(resp: &reqwest::Response) -> Vec<String> {
    let id = resp.headers().get("x-request-id").expect("X-Request-Id").to_str().unwrap().to_owned();
    text().lines().filter(|l| l.contains(&id)).map(str::to_owned).collect()
}

/// Asserts that the request that got `resp` logged a line containing `needle`.
pub fn assert_reason(resp: &reqwest::Response, needle: &str) {
    let lines = lines_for(resp);
    assert!(lines.iter().any(|l| l.contains(needle)), "no log line with {needle:?} for this request: {lines:#?}");
}

struct LogSink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
