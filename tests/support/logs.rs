//! Captures the gateway's log output (one process-wide subscriber per test binary) so tests
//! can assert the operator's log line for a request, not only its status. Tests share the
//! process, so lines are told apart by request id.

use std::sync::{Arc, Mutex, OnceLock};

type Buffer = Arc<Mutex<Vec<u8>>>;

/// Installs the capturing subscriber (idempotent); call before starting the gateway.
pub fn capture() -> &'static Buffer {
    static LOGS: OnceLock<Buffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || Sink(sink.clone()))
            .try_init();
        buf
    })
}

/// The whole captured log as text.
pub fn text() -> String {
    String::from_utf8_lossy(&capture().lock().unwrap()).into_owned()
}

struct Sink(Buffer);

impl std::io::Write for Sink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The request id the gateway answered `resp` with.
pub fn request_id(resp: &reqwest::Response) -> String {
    resp.headers().get("x-request-id").expect("X-Request-Id").to_str().unwrap().to_owned()
}

/// Every captured log line that names request id `id`.
pub fn lines_for(id: &str) -> Vec<String> {
    // The id must end there: `ab-1` is not `ab-1f`.
    let names = |l: &str| {
        l.match_indices(id).any(|(at, _)| !l[at + id.len()..].starts_with(|c: char| c.is_ascii_alphanumeric()))
    };
    text().lines().filter(|l| names(l)).map(str::to_owned).collect()
}

/// The log line for request `id` that contains `message`; panics listing the lines if none.
pub fn line_with(id: &str, message: &str) -> String {
    let lines = lines_for(id);
    lines
        .iter()
        .find(|l| l.contains(message))
        .cloned()
        .unwrap_or_else(|| panic!("no log line {message:?} in {lines:#?}"))
}

/// Asserts that the request that got `resp` logged a line containing `needle`.
pub fn assert_reason(resp: &reqwest::Response, needle: &str) {
    line_with(&request_id(resp), needle);
}
