//! The writer thread and its sinks: a JSON-lines file and the local syslog socket.
//!
//! One OS thread per [`super::Audit`] drains a bounded channel and does the (blocking) writes,
//! so a slow disk or a stuck syslog daemon never holds a request or a runtime worker. Each
//! record is one `write` on an `O_APPEND` file (a whole line, visible at once to `tail -f`
//! and to a shipper) and one datagram to syslog.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use super::config::{AuditConfig, Facility, SyslogFormat};
use super::{AuditError, Shared};

/// A serialized record on its way to the sinks.
pub(super) struct Entry {
    /// The event name (syslog MSGID).
    pub name: &'static str,
    /// Syslog severity `notice` rather than `info`.
    pub refusal: bool,
    /// Unix milliseconds of the record's `ts`.
    pub unix_millis: u64,
    /// The record's `ts`.
    pub ts: String,
    /// The JSON record, without a newline.
    pub json: Vec<u8>,
}

/// What the writer thread is told.
pub(super) enum Msg {
    /// Write this.
    Entry(Entry),
    /// Reopen the file (and reconnect to syslog) before what comes next.
    Reopen,
    /// Answer once everything before this was written.
    Flush(Sender<()>),
}

/// Time a syslog datagram may wait for room in the daemon's socket buffer; beyond, it counts
/// as a failed write (the thread must not hang on a stuck daemon forever).
const SYSLOG_SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// The configured sinks, owned by the writer thread.
pub(super) struct Sinks {
    file: Option<FileSink>,
    syslog: Option<SyslogSink>,
}

impl Sinks {
    /// Opens every configured sink; an error names the path (the gateway refuses to start).
    pub fn open(config: &AuditConfig) -> Result<Sinks, AuditError> {
        let file = match &config.file {
            Some(path) => Some(FileSink::open(path, config.file_mode)?),
            None => None,
        };
        let syslog = if config.syslog { Some(SyslogSink::connect(config)?) } else { None };
        Ok(Sinks { file, syslog })
    }

    /// The writer loop: runs until every sender is gone, then returns (closing the file).
    pub fn run(mut self, rx: Receiver<Msg>, shared: Arc<Shared>) {
        while let Ok(msg) = rx.recv() {
            if shared.reopen.swap(false, Ordering::AcqRel) {
                self.reopen(&shared);
            }
            match msg {
                Msg::Entry(entry) => self.write(&entry, &shared),
                Msg::Reopen => self.reopen(&shared),
                Msg::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    fn reopen(&mut self, shared: &Shared) {
        if let Some(file) = &mut self.file {
            match file.reopen() {
                Ok(()) => tracing::info!(path = %file.path.display(), "audit log reopened"),
                // The old handle stays: events go on into the renamed file rather than nowhere.
                Err(e) => shared.write_failed(&format!("cannot reopen {}: {e}", file.path.display())),
            }
        }
        if let Some(syslog) = &mut self.syslog {
            if let Err(e) = syslog.reconnect() {
                shared.write_failed(&format!("cannot reconnect to syslog {}: {e}", syslog.path.display()));
            }
        }
    }

    fn write(&mut self, entry: &Entry, shared: &Shared) {
        let mut ok = true;
        if let Some(file) = &mut self.file {
            if let Err(e) = file.write(&entry.json) {
                ok = false;
                shared.write_failed(&format!("cannot write {}: {e}", file.path.display()));
            }
        }
        if let Some(syslog) = &mut self.syslog {
            if let Err(e) = syslog.send(entry) {
                ok = false;
                shared.write_failed(&format!("cannot send to syslog {}: {e}", syslog.path.display()));
            }
        }
        if ok {
            shared.write_succeeded();
        }
    }
}

/// The JSON-lines file.
struct FileSink {
    path: PathBuf,
    mode: u32,
    file: File,
}

impl FileSink {
    fn open(path: &Path, mode: u32) -> Result<FileSink, AuditError> {
        let file = open_append(path, mode).map_err(|source| AuditError::File { path: path.to_owned(), source })?;
        Ok(FileSink { path: path.to_owned(), mode, file })
    }

    /// Opens the path again (after the operator renamed the file away).
    fn reopen(&mut self) -> std::io::Result<()> {
        self.file = open_append(&self.path, self.mode)?;
        Ok(())
    }

    fn write(&mut self, json: &[u8]) -> std::io::Result<()> {
        let mut line = Vec::with_capacity(json.len() + 1);
        line.extend_from_slice(json);
        line.push(b'\n');
        // One write of the whole line on an O_APPEND file.
        self.file.write_all(&line)
    }
}

fn open_append(path: &Path, mode: u32) -> std::io::Result<File> {
    OpenOptions::new().append(true).create(true).mode(mode).open(path)
}

/// The local syslog socket.
struct SyslogSink {
    path: PathBuf,
    socket: UnixDatagram,
    facility: Facility,
    format: SyslogFormat,
    hostname: String,
    pid: u32,
}

impl SyslogSink {
    fn connect(config: &AuditConfig) -> Result<SyslogSink, AuditError> {
        let path = config.syslog_socket.clone();
        let socket = connect(&path).map_err(|source| AuditError::Syslog { path: path.clone(), source })?;
        Ok(SyslogSink {
            path,
            socket,
            facility: config.syslog_facility,
            format: config.syslog_format,
            hostname: hostname(),
            pid: std::process::id(),
        })
    }

    fn reconnect(&mut self) -> std::io::Result<()> {
        self.socket = connect(&self.path)?;
        Ok(())
    }

    /// Sends one datagram; after a failure (the daemon restarted and made a new socket)
    /// reconnects once and tries again.
    fn send(&mut self, entry: &Entry) -> std::io::Result<()> {
        let message = self.format(entry);
        if self.socket.send(&message).is_ok() {
            return Ok(());
        }
        self.reconnect()?;
        self.socket.send(&message).map(|_| ())
    }

    fn format(&self, entry: &Entry) -> Vec<u8> {
        format_syslog(self.format, self.facility, &self.hostname, self.pid, entry)
    }
}

fn connect(path: &Path) -> std::io::Result<UnixDatagram> {
    let socket = UnixDatagram::unbound()?;
    socket.connect(path)?;
    socket.set_write_timeout(Some(SYSLOG_SEND_TIMEOUT))?;
    Ok(socket)
}

/// The machine's host name for RFC 5424's HOSTNAME (`-` when unknown).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "-".to_owned())
}

/// Severity `info` (6), or `notice` (5) for refusals and failures.
fn severity(entry: &Entry) -> u8 {
    if entry.refusal {
        5
    } else {
        6
    }
}

/// One syslog message: RFC 5424 (`<PRI>1 TS HOST aisgate PID MSGID - JSON`, §6) or RFC 3164
/// (`<PRI>Mmm dd hh:mm:ss aisgate[PID]: JSON`, §4.1, as glibc writes to `/dev/log`, where
/// the daemon adds the host). Both in UTC.
pub(super) fn format_syslog(
    format: SyslogFormat,
    facility: Facility,
    hostname: &str,
    pid: u32,
    entry: &Entry,
) -> Vec<u8> {
    let pri = u16::from(facility.code()) * 8 + u16::from(severity(entry));
    let head = match format {
        SyslogFormat::Rfc5424 => format!("<{pri}>1 {} {hostname} aisgate {pid} {} - ", entry.ts, entry.name),
        SyslogFormat::Rfc3164 => format!("<{pri}>{} aisgate[{pid}]: ", bsd_timestamp(entry.unix_millis)),
    };
    let mut message = Vec::with_capacity(head.len() + entry.json.len());
    message.extend_from_slice(head.as_bytes());
    message.extend_from_slice(&entry.json);
    message
}

/// RFC 3164 §4.1.2 TIMESTAMP: `Mmm dd hh:mm:ss`, the day space-padded.
fn bsd_timestamp(unix_millis: u64) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let seconds = i64::try_from(unix_millis / 1000).unwrap_or(0);
    let t = time::OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let month = MONTHS.get(usize::from(u8::from(t.month())).saturating_sub(1)).copied().unwrap_or("Jan");
    format!("{month} {:>2} {:02}:{:02}:{:02}", t.day(), t.hour(), t.minute(), t.second())
}
