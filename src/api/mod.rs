//! API mode: requests that authenticate by header (bearer token, SAML header) instead of a
//! browser session.

pub mod authorize;
