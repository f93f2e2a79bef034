//! The audit trail: one typed event per login success or failure, logout, session end,
//! access denial, step-up, admin action and reload, written apart from the operational log.
//!
//! Auditors and security teams read a different stream than operators: it must be complete
//! for what it records, machine-readable, versioned, and free of secrets and personal data
//! (labels, not subjects; no tokens, cookie values or names — see [`event`]). It goes to a
//! JSON-lines file the operator rotates (reopened by [`Audit::reopen`], which the SIGHUP handler
//! calls) and/or to the local syslog (`[audit]`, see [`AuditConfig`]).
//!
//! **Never in the way of a request.** [`Audit::emit`] serializes the event and hands it to a
//! bounded channel read by a writer thread; when the channel is full (the disk or the syslog
//! daemon cannot keep up) the event is dropped, counted in `aisgate_audit_dropped_total` and
//! a warning is logged — the request goes on. The alternative, waiting for room, would let a
//! slow disk stall every login and a full disk take the service down; an auditor who needs
//! "no event lost" alerts on that counter (and on `aisgate_audit_write_errors_total`), which
//! are zero in normal operation. For the same reason a failing sink does **not** make
//! `/readyz` fail: taking both instances of a pair out of the load balancer because a log
//! disk filled would turn an audit problem into an outage for every user. `/readyz` reports
//! the sink's state in its body (`audit`) instead, for the operator. A sink that cannot be
//! opened at start is a configuration error: the gateway does not start.
//!
//! With no sink configured (the default), [`Audit::emit`] returns at once: events borrow
//! their data and nothing is formatted.

pub mod config;
pub mod event;
mod sink;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use config::{AuditConfig, Facility, SyslogFormat};
pub use event::{EndReason, Event, LogoutBy, Origin, Outcome, SessionRef, Subject, SubjectFacts, SCHEMA_VERSION};

use crate::clock::Clock;
use crate::ops::metrics::{LateCounter, Metrics};

/// A sink that cannot be opened at start.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The audit file cannot be opened for append (missing directory, permissions).
    #[error("[audit] file {}: {source}", path.display())]
    File {
        /// The configured path.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The syslog socket cannot be reached.
    #[error("[audit] syslog socket {}: {source}", path.display())]
    Syslog {
        /// The configured socket path.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The writer thread cannot be started.
    #[error("[audit] cannot start the writer thread: {0}")]
    Thread(std::io::Error),
}

/// The handle the gateway emits audit events through (`gateway.audit.emit(Event::…)`).
/// Cheap to clone; clones share the writer. Without a sink every call is a no-op.
#[derive(Clone, Default)]
pub struct Audit {
    inner: Option<Arc<Inner>>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit").field("enabled", &self.is_enabled()).finish()
    }
}

struct Inner {
    tx: SyncSender<sink::Msg>,
    clock: Clock,
    client_ip: bool,
    shared: Arc<Shared>,
}

/// State shared by the handles and the writer thread.
struct Shared {
    /// Set by [`Audit::reopen`] when the queue is full; the writer reopens before its next write.
    reopen: AtomicBool,
    /// Events are being dropped (warned about once per episode).
    dropping: AtomicBool,
    /// The last write failed (logged once per episode).
    failing: AtomicBool,
    /// The last write error, for `/readyz`.
    last_error: Mutex<Option<String>>,
    dropped: LateCounter,
    write_errors: LateCounter,
}

impl Shared {
    fn write_failed(&self, error: &str) {
        self.write_errors.inc();
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.to_owned());
        if !self.failing.swap(true, Ordering::AcqRel) {
            tracing::error!(
                error,
                "audit log write failed; events are lost until it recovers (aisgate_audit_write_errors_total)"
            );
        }
    }

    fn write_succeeded(&self) {
        if self.failing.swap(false, Ordering::AcqRel) {
            tracing::info!("audit log writes succeed again");
        }
    }
}

/// What `/readyz` says about the audit sink (informational: it never makes the gateway unready).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHealth {
    /// Whether a sink is configured.
    pub enabled: bool,
    /// Whether the last write succeeded and no event is being dropped.
    pub healthy: bool,
    /// The last write error, if the last write failed.
    pub detail: Option<String>,
}

impl Audit {
    /// No sink: every [`Audit::emit`] is a no-op.
    pub fn off() -> Audit {
        Audit { inner: None }
    }

    /// Opens the configured sinks and starts the writer thread; with no sink configured,
    /// [`Audit::off`]. Timestamps come from `clock`. With [`AuditConfig::dry_run`] the sinks
    /// are only checked and the handle is off.
    pub fn start(config: &AuditConfig, clock: Clock) -> Result<Audit, AuditError> {
        if !config.enabled() {
            return Ok(Audit::off());
        }
        if config.dry_run {
            sink::Sinks::check(config)?;
            return Ok(Audit::off());
        }
        let sinks = sink::Sinks::open(config)?;
        let (tx, rx) = sync_channel(config.queue);
        let shared = Arc::new(Shared {
            reopen: AtomicBool::new(false),
            dropping: AtomicBool::new(false),
            failing: AtomicBool::new(false),
            last_error: Mutex::new(None),
            dropped: LateCounter::default(),
            write_errors: LateCounter::default(),
        });
        let writer_shared = shared.clone();
        std::thread::Builder::new()
            .name("aisgate-audit".to_owned())
            .spawn(move || sinks.run(rx, writer_shared))
            .map_err(AuditError::Thread)?;
        Ok(Audit { inner: Some(Arc::new(Inner { tx, clock, client_ip: config.client_ip, shared })) })
    }

    /// Whether a sink is configured.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Records `event`. Never blocks and never fails: when the writer is behind by the whole
    /// queue the event is dropped and counted (`aisgate_audit_dropped_total`).
    pub fn emit(&self, event: Event<'_>) {
        let Some(inner) = &self.inner else { return };
        let event = if inner.client_ip { event } else { event.without_client_ip() };
        let unix_millis = inner.clock.now_millis();
        let ts = event::timestamp(unix_millis);
        let record = event::Record { v: SCHEMA_VERSION, ts: &ts, event: &event };
        let json = match serde_json::to_vec(&record) {
            Ok(json) => json,
            Err(e) => {
                // Unreachable with these types (no maps with non-string keys); counted anyway.
                inner.shared.write_failed(&format!("cannot serialize a {} event: {e}", event.name()));
                return;
            }
        };
        let entry = sink::Entry { name: event.name(), refusal: event.is_refusal(), unix_millis, ts, json };
        match inner.tx.try_send(sink::Msg::Entry(entry)) {
            Ok(()) => {
                if inner.shared.dropping.load(Ordering::Relaxed) && inner.shared.dropping.swap(false, Ordering::AcqRel)
                {
                    tracing::warn!(
                        "audit events are written again after some were dropped (aisgate_audit_dropped_total)"
                    );
                }
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                inner.shared.dropped.inc();
                if !inner.shared.dropping.swap(true, Ordering::AcqRel) {
                    tracing::warn!(
                        event = event.name(),
                        "audit queue full: dropping audit events until the writer catches up (aisgate_audit_dropped_total)"
                    );
                }
            }
        }
    }

    /// Reopens the audit file (after the operator renamed it for rotation) and reconnects to
    /// syslog: events emitted before this call are written to the old file, events after it
    /// to the new one. Never blocks: the writer does it. If the new file cannot be opened the
    /// old handle stays (events go on into the renamed file), the error is logged and counted.
    pub fn reopen(&self) {
        let Some(inner) = &self.inner else { return };
        // In order: events emitted before go to the old file, events after to the new one.
        // With the queue full, the flag makes the writer reopen before its next event.
        if let Err(TrySendError::Full(_)) = inner.tx.try_send(sink::Msg::Reopen) {
            inner.shared.reopen.store(true, Ordering::Release);
        }
    }

    /// Waits until every event emitted before this call was written, at most `timeout`;
    /// `false` on timeout. For shutdown and tests — it may wait for room in the queue, so
    /// request paths never call it.
    pub fn flush(&self, timeout: Duration) -> bool {
        let Some(inner) = &self.inner else { return true };
        let (done, wait) = std::sync::mpsc::channel();
        let deadline = std::time::Instant::now() + timeout;
        let mut msg = sink::Msg::Flush(done);
        loop {
            match inner.tx.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if std::time::Instant::now() < deadline => {
                    msg = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return false,
            }
        }
        wait.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())).is_ok()
    }

    /// Registers `aisgate_audit_dropped_total` and `aisgate_audit_write_errors_total`
    /// (counting what happened before, too). Without a sink both stay 0.
    pub fn register_metrics(&self, metrics: &mut Metrics) {
        let dropped = metrics.register_counter(
            "aisgate_audit_dropped_total",
            "Audit events dropped because the audit writer was behind by the whole [audit] queue (requests never wait for it).",
            &[],
        );
        let errors = metrics.register_counter(
            "aisgate_audit_write_errors_total",
            "Failed writes to an audit sink (file or syslog); the event is lost for that sink.",
            &[],
        );
        if let Some(inner) = &self.inner {
            inner.shared.dropped.attach(dropped);
            inner.shared.write_errors.attach(errors);
        }
    }

    /// Events dropped so far.
    pub fn dropped(&self) -> u64 {
        self.inner.as_ref().map_or(0, |i| i.shared.dropped.get())
    }

    /// Failed writes so far.
    pub fn write_errors(&self) -> u64 {
        self.inner.as_ref().map_or(0, |i| i.shared.write_errors.get())
    }

    /// The sink's state for `/readyz`.
    pub fn health(&self) -> AuditHealth {
        match &self.inner {
            None => AuditHealth { enabled: false, healthy: true, detail: None },
            Some(inner) => {
                let failing = inner.shared.failing.load(Ordering::Relaxed);
                let dropping = inner.shared.dropping.load(Ordering::Relaxed);
                let detail = if failing {
                    inner.shared.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
                } else if dropping {
                    Some("audit queue full: events are being dropped".to_owned())
                } else {
                    None
                };
                AuditHealth { enabled: true, healthy: !failing && !dropping, detail }
            }
        }
    }
}

#[cfg(test)]
mod tests;
