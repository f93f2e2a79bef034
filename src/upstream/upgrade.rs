//! Protocol upgrades (RFC 9110 §7.8): what a client may ask for and what an upstream must
//! answer before the gateway turns the exchange into a raw byte tunnel.
//!
//! A tunnel is opaque to the gateway: nothing after the `101` is inspected. So it is opened
//! only for a protocol the app allows (`upgrade_protocols`, default `["websocket"]`), and only
//! when the upstream's `101` really names one of the protocols that were requested and says
//! `Connection: upgrade`. A bare `101`, or one switching to something else, is an upstream
//! fault (502), never a tunnel.
//!
//! A request asking only for protocols the app does not allow is *not refused*: the `Upgrade`
//! header is dropped and the request is forwarded as the plain HTTP/1.1 request it also is —
//! exactly what a server that does not implement the upgrade does (RFC 9110 §7.8: a server
//! may ignore `Upgrade`). `h2c` can never be allowed, and `HTTP2-Settings` is never forwarded
//! (it is removed as a hop-by-hop header): an h2c upgrade would hand the upstream a second
//! protocol stream the gateway cannot see into.

use http::header::{CONNECTION, UPGRADE};
use http::{HeaderMap, HeaderValue, Version};

/// The protocols a client asked for and the app allows, as forwarded upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requested(Vec<String>);

impl Requested {
    /// The protocol tokens (e.g. `websocket`), as sent upstream.
    pub fn protocols(&self) -> &[String] {
        &self.0
    }
}

/// Why an upstream's `101 Switching Protocols` was not accepted.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SwitchError {
    /// The request asked for no upgrade, yet the upstream switched.
    #[error("upstream switched protocols although no upgrade was requested")]
    NotRequested,
    /// The `101` has no `Upgrade` header.
    #[error("upstream answered 101 without an Upgrade header")]
    MissingUpgrade,
    /// The `101` names a protocol that was not requested.
    #[error("upstream switched to {0:?}, which was not requested")]
    Unrequested(String),
    /// The `101` lacks `Connection: upgrade`.
    #[error("upstream answered 101 without Connection: upgrade")]
    NoConnectionUpgrade,
}

/// The protocol name of an `Upgrade` token (`websocket`, `foo/2` → `foo`), lower-case.
fn protocol_name(token: &str) -> String {
    token.split('/').next().unwrap_or("").trim().to_ascii_lowercase()
}

fn tokens(headers: &HeaderMap, name: http::HeaderName) -> impl Iterator<Item = &str> {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Applies the app's upgrade policy to a client request, before hop-by-hop stripping.
///
/// Returns the upgrade to forward, with the request's `Upgrade` header narrowed to the allowed
/// protocols; `None` when the request is not an upgrade or asks only for protocols that are
/// not allowed (it is then forwarded as a plain request: the caller strips `Upgrade`).
/// `allowed` holds lower-case protocol names.
pub fn negotiate(version: Version, headers: &mut HeaderMap, allowed: &[String]) -> Option<Requested> {
    if !super::hop_by_hop::is_upgrade(version, headers) {
        return None;
    }
    let kept: Vec<String> = tokens(headers, UPGRADE)
        .filter(|t| {
            let name = protocol_name(t);
            // h2c is refused by the config check too; never tunnel it whatever the config says.
            name != "h2c" && allowed.contains(&name)
        })
        .map(str::to_owned)
        .collect();
    if kept.is_empty() {
        tracing::debug!("upgrade to a protocol the app does not allow; forwarded as a plain request");
        return None;
    }
    match HeaderValue::from_str(&kept.join(", ")) {
        Ok(v) => {
            headers.insert(UPGRADE, v);
            Some(Requested(kept))
        }
        Err(_) => None,
    }
}

/// Checks an upstream's `101` against what was requested: it must name exactly one of the
/// requested protocols in `Upgrade` and say `Connection: upgrade`.
pub fn check_switch(requested: Option<&Requested>, response: &HeaderMap) -> Result<(), SwitchError> {
    let requested = requested.ok_or(SwitchError::NotRequested)?;
    let mut switched = tokens(response, UPGRADE);
    let Some(first) = switched.next() else { return Err(SwitchError::MissingUpgrade) };
    // One protocol only: a server switches to one (RFC 9110 §7.8 "the protocol(s)" is the
    // layering order, which no upgrade the gateway allows uses).
    if switched.next().is_some() || !requested.0.iter().any(|r| protocol_name(r) == protocol_name(first)) {
        let all: Vec<&str> = tokens(response, UPGRADE).collect();
        return Err(SwitchError::Unrequested(all.join(", ")));
    }
    if !tokens(response, CONNECTION).any(|t| t.eq_ignore_ascii_case("upgrade")) {
        return Err(SwitchError::NoConnectionUpgrade);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(upgrade: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("Upgrade, HTTP2-Settings"));
        h.insert(UPGRADE, HeaderValue::from_str(upgrade).unwrap());
        h
    }

    fn websocket() -> Vec<String> {
        vec!["websocket".to_owned()]
    }

    #[test]
    fn websocket_is_allowed_by_default_and_others_are_narrowed_away() {
        let mut h = request("foo/1, WebSocket");
        let req = negotiate(Version::HTTP_11, &mut h, &websocket()).unwrap();
        assert_eq!(req.protocols(), ["WebSocket"]);
        assert_eq!(h[UPGRADE], "WebSocket");
    }

    #[test]
    fn unallowed_and_h2c_upgrades_are_not_upgrades() {
        let allowed = vec!["h2c".to_owned(), "websocket".to_owned()];
        assert_eq!(negotiate(Version::HTTP_11, &mut request("h2c"), &allowed), None);
        assert_eq!(negotiate(Version::HTTP_11, &mut request("foo"), &websocket()), None);
        assert_eq!(negotiate(Version::HTTP_2, &mut request("websocket"), &websocket()), None);
        let foo = vec!["foo".to_owned()];
        assert!(negotiate(Version::HTTP_11, &mut request("foo/2"), &foo).is_some());
    }

    #[test]
    fn a_101_must_name_a_requested_protocol_and_connection_upgrade() {
        let requested = Requested(vec!["websocket".to_owned()]);
        let mut ok = HeaderMap::new();
        ok.insert(UPGRADE, HeaderValue::from_static("WebSocket"));
        ok.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        assert_eq!(check_switch(Some(&requested), &ok), Ok(()));
        assert_eq!(check_switch(None, &ok), Err(SwitchError::NotRequested));
        assert_eq!(check_switch(Some(&requested), &HeaderMap::new()), Err(SwitchError::MissingUpgrade));
        let mut other = ok.clone();
        other.insert(UPGRADE, HeaderValue::from_static("h2c"));
        assert_eq!(check_switch(Some(&requested), &other), Err(SwitchError::Unrequested("h2c".into())));
        let mut two = ok.clone();
        two.insert(UPGRADE, HeaderValue::from_static("websocket, h2c"));
        assert!(matches!(check_switch(Some(&requested), &two), Err(SwitchError::Unrequested(_))));
        let mut no_conn = ok.clone();
        no_conn.remove(CONNECTION);
        assert_eq!(check_switch(Some(&requested), &no_conn), Err(SwitchError::NoConnectionUpgrade));
    }
}
