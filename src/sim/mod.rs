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

/// A simulator's browser page: `lang="cs"`, `title`, the yellow "SIMULÁTOR / SIMULATOR"
/// banner, an `h1` and `body` (markup the caller escaped). Every simulated IdP's login page
/// uses it, so a person can always tell a simulator from the real thing.
pub fn sim_page(title: &str, h1: &str, body: &str) -> String {
    use crate::pages::html_escape;
    format!(
        "<!doctype html><html lang=\"cs\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2rem}}.sim{{background:#fff3cd;padding:.5rem 1rem;border:2px solid #b58900}}\
         button{{font-size:1rem;padding:.5rem 1rem}}code{{overflow-wrap:anywhere}}.credential{{font-size:1.25rem}}</style></head><body><main>\
         <p class=\"sim\"><strong>SIMULÁTOR / SIMULATOR</strong> — not a real identity provider.</p>\
         <h1>{}</h1>{body}</main></body></html>",
        html_escape(title),
        html_escape(h1),
    )
}

/// One user to pick on a simulator's login page: a submit button labelled `label`, sending
/// `user=value` when `value` is given (one form, several users) or just submitting its own
/// form (one form per user).
pub fn user_button(value: Option<usize>, label: &str) -> String {
    let name = value.map(|v| format!(" name=\"user\" value=\"{v}\"")).unwrap_or_default();
    format!("<p><button{name} type=\"submit\">{}</button></p>", crate::pages::html_escape(label))
}

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
