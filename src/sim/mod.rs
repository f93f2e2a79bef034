//! Simulated peers for `aisgate demo` and the test suite: an echo upstream, a JIP/KAAS/CAAIS
//! legacy IdP, and a throw-away PKI for real mutual TLS.
//!
//! Nothing here is reachable from a production configuration: simulators only start from the
//! `demo` command (with a loud banner) or from tests.

pub mod authorizer;
pub mod certs;
pub mod echo;
pub mod kaas;
pub mod kaas_soap;
pub mod oidc;
pub mod saml;
pub mod saml_response;
pub mod soap_echo;
pub mod stack;
