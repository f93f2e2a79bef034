//! The admin API: `/admin/…` on the ops listener, for operators and the `aisgate sessions` /
//! `aisgate maintenance` commands.
//!
//! It can end any user's session and take apps offline, so it is off unless `[admin]
//! token_file` names a file holding a bearer token, and every request must then carry
//! `Authorization: Bearer <token>`. The token is compared in constant time (both sides are
//! hashed first, so not even its length leaks through timing); a missing or wrong token is
//! `401` with no detail. The API lives on the ops listener only (default `127.0.0.1:9090`),
//! never on the public one, so a leaked token is useful only from inside the network.
//!
//! Answers name sessions by an opaque handle and users by their log label; they never carry
//! session ids, store keys, tokens, subjects or names (see `sessions`).
//!
//! # Mounting routes from other modules
//!
//! Other modules add their admin endpoints in [`router`], one `.merge(…)` line each, with a
//! `Router<Arc<Gateway>>` whose paths start with `/admin/` (for example
//! `.merge(crate::links::admin_routes())` for `/admin/links…`, and
//! `.merge(crate::reload::admin_routes())` for `POST /admin/reload`). Everything merged there
//! sits behind the same bearer-token check; nothing else is needed for authentication.

pub mod cli;
pub mod maintenance;
mod sessions;

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use http::{header, HeaderMap, StatusCode};
use zeroize::Zeroizing;

use crate::gateway::Gateway;

/// Shortest admin token accepted: 32 characters (e.g. `openssl rand -hex 16` gives 32).
pub const MIN_TOKEN_LEN: usize = 32;

/// Why the admin token cannot be loaded (a configuration error at startup).
#[derive(Debug, thiserror::Error)]
pub enum AdminSetupError {
    /// The file cannot be read.
    #[error("[admin] token_file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The token is shorter than [`MIN_TOKEN_LEN`] (or the file is empty).
    #[error("[admin] token_file {path}: the token must be at least {MIN_TOKEN_LEN} characters")]
    TooShort {
        /// The file.
        path: String,
    },
}

/// The admin API's credential: SHA-256 of the bearer token (the token itself is not kept).
#[derive(Clone)]
pub struct AdminAuth {
    digest: [u8; 32],
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminAuth(<redacted>)")
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

impl AdminAuth {
    /// Reads the token from `path` (one line; a trailing newline is ignored). A file that
    /// others can read is accepted with a warning: the token is as secret as a session key.
    pub fn load(path: &Path) -> Result<AdminAuth, AdminSetupError> {
        let shown = path.display().to_string();
        let text = Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| AdminSetupError::Read { path: shown.clone(), source })?,
        );
        warn_if_readable_by_others(path);
        AdminAuth::from_token(text.trim_end_matches(['\r', '\n'])).ok_or(AdminSetupError::TooShort { path: shown })
    }

    /// The credential for `token`; `None` when it is shorter than [`MIN_TOKEN_LEN`].
    pub fn from_token(token: &str) -> Option<AdminAuth> {
        (token.chars().count() >= MIN_TOKEN_LEN).then(|| AdminAuth { digest: sha256(token.as_bytes()) })
    }

    /// Whether `headers` carry `Authorization: Bearer <the token>`. Both tokens are hashed
    /// and the digests compared in constant time: neither the content nor the length of the
    /// right token shows in the time a wrong one takes.
    pub fn accepts(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Some((scheme, token)) = value.split_once(' ') else { return false };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return false;
        }
        let presented = sha256(token.trim().as_bytes());
        aws_lc_rs::constant_time::verify_slices_are_equal(&presented, &self.digest).is_ok()
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(file = %path.display(), "[admin] token_file is readable by group or others: chmod 600 it");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// The admin routes, each behind the bearer-token check; an empty router (every `/admin/`
/// path 404) when `[admin] token_file` is not set. The ops listener merges this.
///
/// Other modules mount their endpoints here with one `.merge(…)` line (see the module docs).
pub fn router(gw: Arc<Gateway>) -> Router {
    let Some(auth) = gw.admin.clone() else {
        return Router::new();
    };
    let routes: Router<Arc<Gateway>> = Router::new()
        // `/admin/sessions…`, `/admin/maintenance…`
        .merge(sessions::routes())
        // `/admin/links…`
        .merge(crate::links::admin::routes())
        // `POST /admin/reload`
        .merge(crate::reload::admin_routes());
    // Other modules' admin routes: one `.merge(…)` line each, above the `;`.
    let guard = Arc::new(Guard { auth, audit: gw.audit.clone() });
    routes.layer(axum::middleware::from_fn_with_state(guard, require_token)).with_state(gw)
}

/// What the token check needs: the credential, and the audit sink for refusals.
struct Guard {
    auth: AdminAuth,
    audit: crate::audit::Audit,
}

/// `401` unless the request carries the admin token. A refusal is logged and audited
/// (`admin_action` `authenticate`, result `refused`; the path is not recorded: it is the
/// caller's text).
async fn require_token(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    if guard.auth.accepts(req.headers()) {
        return next.run(req).await;
    }
    tracing::warn!(path = %req.uri().path(), "admin API request without a valid token");
    guard.audit.emit(crate::audit::Event::AdminAction {
        origin: crate::audit::Origin::none(),
        action: "authenticate",
        target: None,
        sessions_ended: None,
        result: crate::audit::Outcome::Refused,
    });
    unauthorized()
}

fn unauthorized() -> Response {
    let mut resp = Response::new(Body::from("{\"error\":\"unauthorized\"}"));
    *resp.status_mut() = StatusCode::UNAUTHORIZED;
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer realm=\"aisgate-admin\""));
    resp.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn the_right_bearer_token_is_accepted_in_any_scheme_case() {
        let auth = AdminAuth::from_token(TOKEN).unwrap();
        assert!(auth.accepts(&headers(&format!("Bearer {TOKEN}"))));
        assert!(auth.accepts(&headers(&format!("bearer {TOKEN}"))));
    }

    #[test]
    fn missing_wrong_truncated_or_non_bearer_tokens_are_refused() {
        let auth = AdminAuth::from_token(TOKEN).unwrap();
        assert!(!auth.accepts(&HeaderMap::new()), "no header");
        assert!(!auth.accepts(&headers("Bearer 0123456789abcdef0123456789abcdeX")), "last char differs");
        assert!(!auth.accepts(&headers(&format!("Bearer {}", &TOKEN[..31]))), "prefix of the token");
        assert!(!auth.accepts(&headers(&format!("Bearer {TOKEN}0"))), "token plus a char");
        assert!(!auth.accepts(&headers(&format!("Basic {TOKEN}"))), "another scheme");
        assert!(!auth.accepts(&headers(TOKEN)), "no scheme");
        assert!(!auth.accepts(&headers("Bearer ")), "empty token");
    }

    #[test]
    fn short_tokens_are_refused_at_load() {
        assert!(AdminAuth::from_token(&TOKEN[..31]).is_none());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "short\n").unwrap();
        assert!(matches!(AdminAuth::load(&path), Err(AdminSetupError::TooShort { .. })));
        std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
        assert!(AdminAuth::load(&path).unwrap().accepts(&headers(&format!("Bearer {TOKEN}"))), "newline trimmed");
        let err = AdminAuth::load(&dir.path().join("absent")).unwrap_err();
        assert!(err.to_string().contains("absent"), "{err}");
    }

    #[test]
    fn the_token_is_compared_as_a_digest_and_never_printed() {
        let auth = AdminAuth::from_token(TOKEN).unwrap();
        // Constant time: the comparison runs over two fixed-size digests, whatever the
        // presented length, so the length of the right token cannot be probed.
        assert_eq!(auth.digest.len(), 32);
        assert_eq!(auth.digest, sha256(TOKEN.as_bytes()));
        assert!(!format!("{auth:?}").contains(TOKEN));
    }
}
