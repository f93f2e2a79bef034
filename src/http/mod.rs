//! HTTP helpers shared by the request path: one canonical path, safe return URLs.

pub mod canonical_path;
pub mod return_url;
