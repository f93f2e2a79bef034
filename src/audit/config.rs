//! `[audit]`: where audit events go. Off unless a sink is named.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

/// `[audit]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// JSON-lines file, opened for append (created with `file_mode`); reopened by
    /// `aisgate reload` / SIGHUP after the operator rotated it.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Permissions of a file the gateway creates: `0o600` (default) or `0o640` (a log group
    /// may read). An existing file keeps its own.
    #[serde(default = "default_file_mode", deserialize_with = "file_mode")]
    pub file_mode: u32,
    /// Send every event to the local syslog too (a datagram to `syslog_socket`).
    #[serde(default)]
    pub syslog: bool,
    /// The local syslog socket.
    #[serde(default = "default_syslog_socket")]
    pub syslog_socket: PathBuf,
    /// Syslog facility.
    #[serde(default)]
    pub syslog_facility: Facility,
    /// Syslog message format.
    #[serde(default)]
    pub syslog_format: SyslogFormat,
    /// Record the client address (`client_ip`) in events; `false` leaves it out.
    #[serde(default = "yes")]
    pub client_ip: bool,
    /// Events waiting for the writer; beyond, new events are dropped and counted in
    /// `aisgate_audit_dropped_total` (requests never wait for the audit log).
    #[serde(default = "default_queue", deserialize_with = "queue")]
    pub queue: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            file: None,
            file_mode: default_file_mode(),
            syslog: false,
            syslog_socket: default_syslog_socket(),
            syslog_facility: Facility::default(),
            syslog_format: SyslogFormat::default(),
            client_ip: true,
            queue: default_queue(),
        }
    }
}

impl AuditConfig {
    /// Whether any sink is configured.
    pub fn enabled(&self) -> bool {
        self.file.is_some() || self.syslog
    }
}

/// Syslog facilities an audit trail may go to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Facility {
    /// `auth` (4).
    Auth,
    /// `authpriv` (10): security messages readable by root only on most systems. Default.
    #[default]
    Authpriv,
    /// `daemon` (3).
    Daemon,
    /// `user` (1).
    User,
    /// `local0` (16).
    Local0,
    /// `local1` (17).
    Local1,
    /// `local2` (18).
    Local2,
    /// `local3` (19).
    Local3,
    /// `local4` (20).
    Local4,
    /// `local5` (21).
    Local5,
    /// `local6` (22).
    Local6,
    /// `local7` (23).
    Local7,
}

impl Facility {
    /// The facility number (RFC 5424 §6.2.1).
    pub fn code(self) -> u8 {
        match self {
            Facility::User => 1,
            Facility::Daemon => 3,
            Facility::Auth => 4,
            Facility::Authpriv => 10,
            Facility::Local0 => 16,
            Facility::Local1 => 17,
            Facility::Local2 => 18,
            Facility::Local3 => 19,
            Facility::Local4 => 20,
            Facility::Local5 => 21,
            Facility::Local6 => 22,
            Facility::Local7 => 23,
        }
    }
}

/// Syslog message format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogFormat {
    /// RFC 5424 (`<PRI>1 TIMESTAMP HOST APP PROCID MSGID - MSG`). Default.
    #[default]
    Rfc5424,
    /// The BSD format of RFC 3164 (`<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG`), as glibc's
    /// `syslog()` writes to `/dev/log`.
    Rfc3164,
}

fn default_file_mode() -> u32 {
    0o600
}

fn default_syslog_socket() -> PathBuf {
    PathBuf::from("/dev/log")
}

fn default_queue() -> usize {
    8192
}

fn yes() -> bool {
    true
}

fn file_mode<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let mode = u32::deserialize(d)?;
    if mode == 0o600 || mode == 0o640 {
        Ok(mode)
    } else {
        Err(serde::de::Error::custom(format!(
            "file_mode must be 0o600 or 0o640 (an audit trail is not world-readable), not 0o{mode:o}"
        )))
    }
}

fn queue<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let queue = usize::deserialize(d)?;
    if (16..=1_000_000).contains(&queue) {
        Ok(queue)
    } else {
        Err(serde::de::Error::custom(format!("queue must be between 16 and 1000000, not {queue}")))
    }
}
