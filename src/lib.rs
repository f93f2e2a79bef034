//! aisgate: a reverse-proxy authentication gateway for Czech public-administration web apps.
//!
//! It runs the login of JIP/KAAS, CAAIS, NIA and EnviIAM on behalf of legacy apps and
//! forwards each request upstream with normalized identity headers. The request path is
//! described in [`gateway`]; protocols live under [`provider`], each in its own folder.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod api;
pub mod clock;
pub mod config;
pub mod cpu;
pub mod date;
#[cfg(feature = "sim")]
pub mod demo;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod http;
pub mod identity;
pub mod listen;
pub mod ops;
pub mod pages;
pub mod provider;
pub mod redact;
pub mod run;
pub mod session;
#[cfg(feature = "sim")]
pub mod sim;
pub mod tls;
pub mod upstream;
pub(crate) mod xml;

/// Formats an error with its whole `source()` chain (`outer: inner: innermost`), for operator
/// log lines that must say exactly what failed (DNS, TLS, HTTP).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}
