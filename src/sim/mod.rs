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

/// Binds `addr` and serves `router` in the background (a simulator or demo upstream named
/// `what` in the error log); returns the bound address.
pub async fn serve(
    addr: std::net::SocketAddr,
    router: axum::Router,
    what: &'static str,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "{what} stopped");
        }
    });
    Ok(bound)
}
