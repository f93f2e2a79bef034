//! Typed protocol state the gateway keeps for a provider: between `begin` and `finish` of a
//! login ([`PendingState`]) and for the logout of a session ([`LogoutState`]).
//!
//! Why typed and versioned: the state used to be a `serde_json::Value`, where a serialization
//! failure silently became `Null` — and `Null` meant "an IdP-initiated login", so a bug could
//! turn a solicited login into an unsolicited one. Now every protocol's state is its own
//! variant, "unsolicited" is a variant of its own that only the gateway creates (and only for
//! providers that accept such logins), a serialization failure is an error, and a stored
//! state that this gateway cannot read (corrupt, or written by another version into a shared
//! store) decodes to a marker that `finish` refuses with a precise reason instead of guessing.

use serde::{Deserialize, Serialize};

use super::{oidc, saml, CommonReason, ProviderError};

/// What a provider needs at `finish` to check the IdP's answer against the login it started.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ProtocolState {
    /// A SAML AuthnRequest (its ID, RelayState, issue time, step-up LoA).
    Saml(saml::PendingRequest),
    /// An OpenID Connect authorization request (state, nonce, PKCE verifier, issuer, client).
    Oidc(oidc::ExpectCallback),
    /// A JIP/KAAS login: nothing beyond the browser binding (the protocol has no `state`).
    Kaas,
    /// A login the gateway did not start (SAML IdP-initiated SSO): created by the gateway
    /// only, only for providers that accept such logins.
    Unsolicited,
    /// Not a login: the gateway's check of the return from an RP-initiated logout. No
    /// provider's `finish` accepts it.
    LogoutReturn,
    /// Not a login: a finished login waiting to be handed to an app's host
    /// (`gateway::handoff`). No provider's `finish` accepts it.
    Handoff(crate::session::handoff::HandoffGrant),
}

/// The stored, versioned form of a [`ProtocolState`].
#[derive(Debug, Clone)]
pub enum PendingState {
    /// Version 1.
    V1(ProtocolState),
    /// Stored by a gateway version this one does not know (decoding only).
    Foreign,
    /// Stored data that does not decode as any state (decoding only).
    Undecodable,
}

impl PendingState {
    /// The current version of `state`.
    pub fn new(state: ProtocolState) -> PendingState {
        PendingState::V1(state)
    }

    /// The protocol state, or the precise reason it cannot be used (the login must be started
    /// again; nothing is guessed).
    pub fn protocol(&self) -> Result<&ProtocolState, ProviderError> {
        match self {
            PendingState::V1(state) => Ok(state),
            PendingState::Foreign => Err(ProviderError::new(CommonReason::PendingStateVersion)),
            PendingState::Undecodable => Err(ProviderError::new(CommonReason::PendingStateUndecodable)),
        }
    }
}

/// The wire form: `{"v": "1", "state": …}`.
#[derive(Serialize, Deserialize)]
#[serde(tag = "v", content = "state")]
enum Known {
    #[serde(rename = "1")]
    V1(ProtocolState),
}

/// Decoding falls back step by step: a known version, else any versioned object (a foreign
/// version, or version 1 whose content does not decode), else anything at all.
#[derive(Deserialize)]
#[serde(untagged)]
enum Wire {
    Known(Known),
    Versioned { v: String },
    Other(serde::de::IgnoredAny),
}

impl Serialize for PendingState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            PendingState::V1(state) => Known::V1(state.clone()).serialize(serializer),
            // Never written back as something else: storing it is an error.
            PendingState::Foreign | PendingState::Undecodable => {
                Err(serde::ser::Error::custom("an unreadable pending-login state cannot be stored"))
            }
        }
    }
}

impl<'de> Deserialize<'de> for PendingState {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<PendingState, D::Error> {
        Ok(match Wire::deserialize(deserializer)? {
            Wire::Known(Known::V1(state)) => PendingState::V1(state),
            Wire::Versioned { v } if v == "1" => PendingState::Undecodable,
            Wire::Versioned { .. } => PendingState::Foreign,
            Wire::Other(_) => PendingState::Undecodable,
        })
    }
}

/// What a provider needs to log a session out at the IdP.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub enum LogoutState {
    /// Nothing (JIP/KAAS; a SAML login without a NameID).
    #[default]
    None,
    /// The SAML subject of the login (NameID, qualifiers, SessionIndex). Boxed, like the
    /// hint: every session holds a `LogoutState`, most of them `None`.
    Saml(Box<saml::logout::LogoutSubject>),
    /// The OpenID Connect ID token hint and the client registration of the login.
    Oidc(Box<oidc::LogoutHint>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::Reason;

    /// Issue 15 review (item 12): what a verified back-channel logout names (user, IdP
    /// session) and a received SLO message (its SAMLRequest) printed in full under the derived
    /// `Debug` of `LogoutTarget` and `SloMessage`.
    #[test]
    fn logout_target_and_slo_message_debug_redact_their_content() {
        let target =
            crate::provider::LogoutTarget { subject: Some("secret-sub".into()), sid: Some("secret-sid".into()) };
        let message = crate::provider::SloMessage {
            is_post: true,
            raw_query: Some("SAMLRequest=secret".into()),
            form: vec![("SAMLRequest".into(), "secret".into())],
            xml_body: Some(b"<secret/>".to_vec()),
        };
        let text = format!("{target:?} {message:?}");
        assert!(!text.contains("secret"), "{text}");
    }

    #[test]
    fn a_state_round_trips_in_its_version() {
        let json = serde_json::to_string(&PendingState::new(ProtocolState::Unsolicited)).unwrap();
        assert_eq!(json, r#"{"v":"1","state":"Unsolicited"}"#);
        let back: PendingState = serde_json::from_str(&json).unwrap();
        assert!(matches!(back.protocol(), Ok(ProtocolState::Unsolicited)));
    }

    #[test]
    fn a_foreign_version_is_refused_with_its_reason() {
        let back: PendingState = serde_json::from_str(r#"{"v":"2","state":{"Saml":{}}}"#).unwrap();
        let e = back.protocol().unwrap_err();
        assert_eq!(e.reason(), &Reason::Common(CommonReason::PendingStateVersion));
        assert_eq!(e.label(), "pending_state_version");
        assert_eq!(e.side(), crate::provider::Side::Refused);
    }

    #[test]
    fn undecodable_state_is_refused_never_taken_for_unsolicited() {
        // `null` was "unsolicited" in the untyped days; a version-1 state with a broken
        // content, or anything else, is now undecodable.
        for raw in ["null", r#"{"v":"1","state":{"Saml":{"request_id":7}}}"#, r#"{"nonce":"x"}"#, "[1]"] {
            let back: PendingState = serde_json::from_str(raw).unwrap();
            let e = back.protocol().unwrap_err();
            assert_eq!(e.reason(), &Reason::Common(CommonReason::PendingStateUndecodable), "{raw}");
        }
    }

    #[test]
    fn an_unreadable_state_is_never_stored() {
        assert!(serde_json::to_string(&PendingState::Undecodable).is_err());
        assert!(serde_json::to_string(&PendingState::Foreign).is_err());
    }

    #[test]
    fn a_stored_pending_login_with_a_foreign_state_still_loads() {
        // The rest of the pending login (provider, return URL) stays readable, so the
        // callback can answer with the precise reason and a restart link.
        let raw = r#"{"provider":"nia","return_to":"/desk","created_at":1,"protocol_state":{"v":"9"}}"#;
        let p: crate::session::PendingLogin = serde_json::from_str(raw).unwrap();
        assert_eq!(p.protocol_state.protocol().unwrap_err().label(), "pending_state_version");
    }
}
