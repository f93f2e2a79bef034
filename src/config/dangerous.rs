//! `dangerous` tables: every option that weakens security, in one visible place per
//! provider and app (rustls' `dangerous()`), logged at startup and printed by `check`
//! ([`super::warnings`]).
//!
//! Such an option can be needed (a test IdP without an encryption certificate, a plain-HTTP
//! IdP on a lab network), but it must never be on by accident or unseen: it is spelt out under
//! `[provider.dangerous]` / `[app.dangerous]` / `[identity_token.dangerous]`, the simulators,
//! demo and tests opt in explicitly, and production presets refuse the ones that would break
//! their guarantees. The keys used to live at the top of their tables; an old location is a
//! load error saying where the key went ([`moved_key_message`]).

use serde::Deserialize;

/// `[provider.dangerous]` of an OIDC or KAAS provider.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderDangerous {
    /// Allow plain `http://` IdP endpoints on hosts other than loopback (discovery, JWKS,
    /// token, userinfo, metadata, SOAP). Never with a production preset.
    #[serde(default)]
    pub allow_plain_http: bool,
}

/// `[provider.dangerous]` of a SAML provider.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamlDangerous {
    /// See [`ProviderDangerous::allow_plain_http`] (metadata, SSO, SLO, logout URLs).
    #[serde(default)]
    pub allow_plain_http: bool,
    /// Accept IdP-initiated Responses (no InResponseTo): bound to no browser (login CSRF).
    #[serde(default)]
    pub allow_unsolicited: bool,
    /// Accept an unencrypted Assertion (test IdPs without an encryption certificate).
    #[serde(default)]
    pub allow_unencrypted_assertions: bool,
    /// Accept unsigned LogoutRequests by HTTP POST (EnviIAM back channel); they must name a
    /// SessionIndex. No preset turns this on.
    #[serde(default)]
    pub accept_unsigned_logout_requests: bool,
    /// Compare the IdP entityID case-insensitively. NIA presets turn it on (NIA sends its
    /// entityID in varying case); `false` here turns it off for them.
    #[serde(default)]
    pub issuer_case_insensitive: Option<bool>,
    /// Do not check the achieved LoA against the requested one (CAAIS-IdP always reports
    /// "low", caais.md §2.7). Such a provider takes no part in step-up.
    #[serde(default)]
    pub ignore_returned_loa: bool,
}

/// `[identity_token.dangerous]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityTokenDangerous {
    /// Without `key_file`, sign with a key generated at every start: apps must refetch the
    /// JWKS after each restart, and instances behind a load balancer sign with different keys.
    #[serde(default)]
    pub ephemeral_key: bool,
}

/// Keys that moved into a `dangerous` table (issue 15 item 11): old key → what to write now.
const MOVED: &[(&str, &str)] = &[
    ("allow_unsolicited", "[provider.dangerous] allow_unsolicited = true"),
    ("allow_unencrypted_assertions", "[provider.dangerous] allow_unencrypted_assertions = true"),
    ("accept_unsigned_logout_requests", "[provider.dangerous] accept_unsigned_logout_requests = true"),
    ("issuer_case_insensitive", "[provider.dangerous] issuer_case_insensitive = true"),
    ("enforce_returned_loa", "[provider.dangerous] ignore_returned_loa = true (for enforce_returned_loa = false)"),
];

/// For a TOML "unknown field `key`" error: the key and the message naming its new place, if
/// the key moved into a `dangerous` table. The caller reports it at the key's file:line:column.
pub fn moved_key_message(toml_message: &str) -> Option<(&'static str, String)> {
    let rest = toml_message.strip_prefix("unknown field `")?;
    let key = &rest[..rest.find('`')?];
    let (old, now) = MOVED.iter().find(|(old, _)| *old == key)?;
    Some((old, format!("`{key}` weakens security and moved to the `dangerous` table: write {now}")))
}

/// Whether `host` is a loopback name or address (`localhost`, 127.0.0.0/8, `::1`).
fn loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// The problem with a configured IdP endpoint `url` of key `key`, if any: plain `http://` is
/// refused with a production preset, and elsewhere unless the host is loopback or
/// `allow_plain_http` is set. Over plain HTTP anyone on the path can read the IdP's answers
/// and substitute keys, tokens or metadata.
pub fn plain_http_problem(key: &str, url: &str, allow_plain_http: bool, production: bool) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    if parsed.scheme() != "http" {
        return None;
    }
    if production {
        return Some(format!("{key} {url:?}: plain http:// is not allowed with a production preset"));
    }
    let local = parsed.host().is_some_and(|h| loopback(&h));
    (!local && !allow_plain_http).then(|| {
        format!("{key} {url:?}: plain http:// is refused (use https://, or set [provider.dangerous] allow_plain_http = true)")
    })
}

/// Whether an endpoint learned at run time (OIDC discovery: JWKS, token, userinfo) may be
/// used: `https://`, or `http://` on loopback or with `allow_plain_http`.
pub fn endpoint_allowed(url: &str, allow_plain_http: bool) -> bool {
    match url::Url::parse(url) {
        Ok(u) if u.scheme() == "https" => true,
        Ok(u) if u.scheme() == "http" => allow_plain_http || u.host().is_some_and(|h| loopback(&h)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_refused_off_loopback_unless_allowed_and_always_with_production_presets() {
        let remote = "http://idp.example.cz/metadata";
        assert!(plain_http_problem("idp_metadata_url", remote, false, false)
            .is_some_and(|p| p.contains("allow_plain_http")));
        assert_eq!(plain_http_problem("idp_metadata_url", remote, true, false), None);
        assert!(plain_http_problem("idp_metadata_url", remote, true, true).is_some_and(|p| p.contains("production")));
        for local in ["http://localhost:8080/x", "http://127.0.0.1/x", "http://[::1]:9/x"] {
            assert_eq!(plain_http_problem("k", local, false, false), None, "{local}");
            assert!(plain_http_problem("k", local, true, true).is_some(), "{local}");
        }
        assert_eq!(plain_http_problem("k", "https://idp.example.cz/", false, true), None);
        assert!(endpoint_allowed("https://idp/jwks", false) && endpoint_allowed("http://127.0.0.1:1/jwks", false));
        assert!(
            !endpoint_allowed("http://idp.example.cz/jwks", false)
                && endpoint_allowed("http://idp.example.cz/jwks", true)
        );
    }

    #[test]
    fn moved_keys_name_their_new_place() {
        let (key, m) = moved_key_message("unknown field `allow_unsolicited`, expected one of `name`, …").unwrap();
        assert_eq!(key, "allow_unsolicited");
        assert!(m.contains("[provider.dangerous] allow_unsolicited = true"), "{m}");
        assert!(moved_key_message("unknown field `enforce_returned_loa`").unwrap().1.contains("ignore_returned_loa"));
        assert_eq!(moved_key_message("unknown field `typo`"), None);
    }
}
