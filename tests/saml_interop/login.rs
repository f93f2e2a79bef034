//! The harness for full logins through the gateway against a third-party IdP: the pysaml2 IdP
//! (`tests/peers/saml/idp.py`) or SimpleSAMLphp (Debian). The gateway gets the IdP's metadata,
//! the IdP gets the gateway's SP metadata; the browser's steps are explicit, so each message
//! can be checked on the way (by pysaml2's validator, by `xmlsec1 --verify`).

use std::path::PathBuf;

use base64::Engine;

use crate::peers::{self, rsa_identity, PysamlIdp, RsaFiles, SspIdp};
use crate::support::{header_echo, location, parse_form, raw_set_cookie, set_cookie, Gateway};
use aisgate::sim::stack::StackOptions;

pub const BSI: &str = "CZ/CZ/7d3c1c52-3a7e-4b8e-9f21-5b0e6c9d4a11";
const SP_ENTITY_ID: &str = "https://gw.example.cz/sep5/";
const NIA_ENTITY_ID: &str = "urn:microsoft:cgg2010:fpsts";
const LOA: &str = "http://eidas.europa.eu/LoA/substantial";

/// The fixed test user: (pysaml2 attribute-map name, URI, value).
const USER: &[(&str, &str, &str)] = &[
    ("PersonIdentifier", "http://eidas.europa.eu/attributes/naturalperson/PersonIdentifier", BSI),
    ("CurrentFamilyName", "http://eidas.europa.eu/attributes/naturalperson/CurrentFamilyName", "NOVÁK"),
    ("CurrentGivenName", "http://eidas.europa.eu/attributes/naturalperson/CurrentGivenName", "JAN MARIE"),
    ("DateOfBirth", "http://eidas.europa.eu/attributes/naturalperson/DateOfBirth", "1968-03-29"),
    ("PlaceOfBirth", "http://eidas.europa.eu/attributes/naturalperson/PlaceOfBirth", "Ústí nad Labem"),
];

/// Which third-party IdP answers.
pub enum Peer<'a> {
    /// `tests/peers/saml/idp.py` with extra arguments.
    Pysaml2(&'a [&'a str]),
    /// SimpleSAMLphp (Debian).
    SimpleSamlPhp,
}

/// The running IdP process.
pub enum IdpProcess {
    Pysaml2(PysamlIdp),
    SimpleSamlPhp(SspIdp),
}

/// A running gateway with a `kind = "saml"` provider `nia` whose IdP is a third-party peer.
pub struct SamlStack {
    pub dir: tempfile::TempDir,
    /// The venv's Python (pysaml2 stacks only).
    pub python: Option<PathBuf>,
    pub idp: IdpProcess,
    pub idp_keys: RsaFiles,
    pub sp_signing: RsaFiles,
    pub gw: Gateway,
    /// The gateway's SP metadata, as the IdP got it.
    pub sp_metadata: PathBuf,
    /// Cookies the IdP set (SimpleSAMLphp's session), sent back to it like a browser.
    idp_cookies: std::sync::Mutex<Vec<String>>,
}

/// Starts the IdP, then the gateway (extra lines for the provider table), then hands the
/// gateway's SP metadata to the IdP (both read it on first use).
pub async fn start(peer: Peer<'_>, provider_extra: &str) -> Option<SamlStack> {
    // The gateway's log, when RUST_LOG asks for it: why a peer's message was refused.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "off".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    let python = match peer {
        Peer::Pysaml2(_) => Some(peers::pysaml2()?),
        Peer::SimpleSamlPhp => peers::simplesamlphp().then_some(None)?,
    };
    let dir = tempfile::tempdir().unwrap();
    let idp_keys = rsa_identity(dir.path(), "idp");
    let sp_signing = rsa_identity(dir.path(), "sp-signing");
    let sp_encryption = rsa_identity(dir.path(), "sp-encryption");
    let sp_metadata = dir.path().join("sp-metadata.xml");
    let (idp, metadata_url) = match (peer, &python) {
        (Peer::Pysaml2(extra), Some(python)) => {
            let mut args: Vec<String> = vec![
                "--key".into(),
                idp_keys.key.display().to_string(),
                "--cert".into(),
                idp_keys.cert.display().to_string(),
                "--sp-metadata".into(),
                sp_metadata.display().to_string(),
                "--want-signed-requests".into(),
            ];
            for (name, _, value) in USER {
                args.extend(["--attribute".to_owned(), format!("{name}={value}")]);
            }
            args.extend(extra.iter().map(|a| (*a).to_owned()));
            let idp = PysamlIdp::start(python, &args);
            let url = format!("{}/metadata", idp.base);
            (IdpProcess::Pysaml2(idp), url)
        }
        _ => {
            let attributes: serde_json::Map<String, serde_json::Value> =
                USER.iter().map(|(_, uri, value)| ((*uri).to_owned(), serde_json::json!([value]))).collect();
            let ssp_dir = dir.path().join("simplesamlphp");
            std::fs::create_dir(&ssp_dir).unwrap();
            let idp = SspIdp::start(&ssp_dir, &idp_keys, NIA_ENTITY_ID, &sp_metadata, &attributes.into()).await;
            let url = idp.metadata_url();
            (IdpProcess::SimpleSamlPhp(idp), url)
        }
    };
    let idp_metadata = dir.path().join("idp-metadata.xml");
    let md = reqwest::get(metadata_url).await.unwrap().bytes().await.unwrap();
    std::fs::write(&idp_metadata, md).unwrap();
    let apps = format!(
        r#"
[[provider]]
name = "nia"
kind = "saml"
preset = "nia-test"
entity_id = "{SP_ENTITY_ID}"
idp_metadata_file = "{idp_metadata}"
signing_key = "{sign_key}"
signing_cert = "{sign_cert}"
encryption_keys = [{{ key = "{enc_key}", cert = "{enc_cert}" }}]
sign_requests = true
loa = "substantial"
requested_attributes = ["PersonIdentifier", "CurrentFamilyName", "CurrentGivenName", "DateOfBirth", "PlaceOfBirth"]
{provider_extra}

[[app]]
name = "desk"
upstream = "{{upstream}}"
providers = ["nia"]
logout_paths = ["/logout"]

[app.headers]
personal_data = true
"#,
        idp_metadata = idp_metadata.display(),
        sign_key = sp_signing.key.display(),
        sign_cert = sp_signing.cert.display(),
        enc_key = sp_encryption.key.display(),
        enc_cert = sp_encryption.cert.display(),
    );
    // NIA queues logins: the preset keeps pending requests for an hour (nia.md §8.4).
    let session_extra = "login_ttl_secs = 3600".to_owned();
    let upstream = Some(header_echo().await);
    let gw = Gateway::start(StackOptions { upstream, apps: Some(apps), session_extra, ..Default::default() }).await;
    let metadata = gw.client.get(gw.url("/.aisgate/saml/nia/metadata")).send().await.unwrap();
    assert_eq!(metadata.status(), 200, "SP metadata endpoint");
    std::fs::write(&sp_metadata, metadata.bytes().await.unwrap()).unwrap();
    Some(SamlStack { dir, python, idp, idp_keys, sp_signing, gw, sp_metadata, idp_cookies: Default::default() })
}

pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    &fields.iter().find(|(k, _)| k == name).unwrap_or_else(|| panic!("no {name} field")).1
}

/// What the browser holds after the gateway sent it to the IdP.
pub enum ToIdp {
    /// HTTP-Redirect: the IdP URL with the query.
    Redirect(String),
    /// HTTP-POST: the form's action and fields.
    Post(String, Vec<(String, String)>),
}

/// The login start: navigates to `/desk` via the login endpoint; returns the pre-login
/// cookie header the browser would send on a cross-site POST back (empty when SameSite
/// keeps it home) and the message for the IdP.
pub async fn begin(gw: &Gateway) -> (Option<String>, ToIdp) {
    let start = gw.navigate("/.aisgate/login?return=%2Fdesk&provider=nia", None).await;
    // Browsers send a SameSite=Lax cookie on no cross-site POST (the IdP's form to the ACS).
    let cookie = raw_set_cookie(&start, "aisgate_login")
        .filter(|raw| raw.contains("SameSite=None"))
        .and_then(|_| set_cookie(&start, "aisgate_login"))
        .map(|v| format!("aisgate_login={v}"));
    match start.status().as_u16() {
        302 | 303 => (cookie, ToIdp::Redirect(location(&start))),
        200 => {
            let (action, fields) = parse_form(&start.text().await.unwrap());
            (cookie, ToIdp::Post(action, fields))
        }
        other => panic!("login start answered {other}: {}", start.text().await.unwrap()),
    }
}

impl SamlStack {
    /// The pysaml2 IdP (pysaml2 stacks only).
    pub fn pysaml(&self) -> &PysamlIdp {
        match &self.idp {
            IdpProcess::Pysaml2(idp) => idp,
            IdpProcess::SimpleSamlPhp(_) => panic!("not a pysaml2 stack"),
        }
    }

    /// The IdP's base URL.
    pub fn idp_base(&self) -> &str {
        match &self.idp {
            IdpProcess::Pysaml2(idp) => &idp.base,
            IdpProcess::SimpleSamlPhp(idp) => &idp.base,
        }
    }

    /// The venv Python (pysaml2 stacks only).
    pub fn python(&self) -> &std::path::Path {
        self.python.as_deref().expect("a pysaml2 stack")
    }

    /// A browser request to the IdP, with the cookies it set; remembers new ones.
    pub async fn to_idp(&self, req: reqwest::RequestBuilder) -> reqwest::Response {
        let cookies = self.idp_cookies.lock().unwrap().join("; ");
        let req = if cookies.is_empty() { req } else { req.header("cookie", cookies) };
        let resp = req.send().await.unwrap();
        let mut jar = self.idp_cookies.lock().unwrap();
        for pair in resp.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()?.split(';').next()) {
            let name = pair.split('=').next().unwrap_or_default().to_owned();
            jar.retain(|c| !c.starts_with(&format!("{name}=")));
            jar.push(pair.to_owned());
        }
        resp
    }

    /// `validate.py request` for what the gateway sent to the IdP.
    pub fn pysaml2_check(&self, message: &ToIdp) -> Result<serde_json::Value, String> {
        let mut args: Vec<String> = ["request", "--require-signature", "--sp-metadata"]
            .iter()
            .map(|s| (*s).to_owned())
            .chain([
                self.sp_metadata.display().to_string(),
                "--idp-base".into(),
                self.pysaml().base.clone(),
                "--idp-key".into(),
                self.idp_keys.key.display().to_string(),
                "--idp-cert".into(),
                self.idp_keys.cert.display().to_string(),
            ])
            .collect();
        match message {
            ToIdp::Redirect(url) => args.extend(["--url".to_owned(), url.clone()]),
            ToIdp::Post(_, fields) => {
                for (k, v) in fields {
                    args.extend(["--form-field".to_owned(), format!("{k}={v}")]);
                }
            }
        }
        peers::validate(self.python(), &args)
    }

    /// Delivers `message` to the IdP and returns the IdP's Response form (action, fields).
    pub async fn deliver(&self, message: &ToIdp) -> (String, Vec<(String, String)>) {
        let client = &self.gw.client;
        let answer = match message {
            ToIdp::Redirect(url) => self.to_idp(client.get(url)).await,
            ToIdp::Post(action, fields) => self.to_idp(client.post(action).form(fields)).await,
        };
        let status = answer.status();
        let page = answer.text().await.unwrap();
        assert_eq!(status, 200, "the IdP refused the AuthnRequest: {page}");
        parse_form(&page)
    }

    /// Posts the IdP's Response form to the gateway's ACS, as the browser does.
    pub async fn post_to_acs(
        &self,
        cookie: Option<&str>,
        action: &str,
        fields: &[(String, String)],
    ) -> reqwest::Response {
        let mut req = self.gw.client.post(action).form(fields).header("accept", "text/html");
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send().await.unwrap()
    }

    /// A complete login; returns the session `Cookie` header value.
    pub async fn login(&self) -> String {
        let (cookie, to_idp) = begin(&self.gw).await;
        let (action, fields) = self.deliver(&to_idp).await;
        assert_eq!(action, self.gw.url("/.aisgate/callback/nia"), "the IdP posts to the ACS from the SP metadata");
        let done = self.post_to_acs(cookie.as_deref(), &action, &fields).await;
        let status = done.status().as_u16();
        let session = set_cookie(&done, "aisgate_session");
        let target = done.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
        assert!(
            matches!(status, 302 | 303) && session.is_some(),
            "ACS refused the IdP's Response ({status}): {}",
            done.text().await.unwrap()
        );
        assert_eq!(target.as_deref().map(|t| t.trim_start_matches(&self.gw.base)), Some("/desk"));
        format!("aisgate_session={}", session.unwrap())
    }

    /// `aisgate_saml_message_rejected_total` for the provider.
    pub async fn rejected(&self) -> u64 {
        let url = format!("http://{}/metrics", self.gw.ops);
        let metrics = self.gw.client.get(url).send().await.unwrap().text().await.unwrap();
        let line = metrics.lines().find(|l| l.starts_with("aisgate_saml_message_rejected_total{provider=\"nia\"}"));
        line.and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or_else(|| panic!("no counter: {metrics}"))
    }

    /// The upstream's view of `/desk` with `cookie`: (status, headers as JSON).
    pub async fn desk(&self, cookie: &str) -> (u16, serde_json::Value) {
        let resp = self.gw.navigate("/desk", Some(cookie)).await;
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        (status, serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
    }
}

/// The identity headers the upstream received after a pysaml2 login.
pub fn assert_identity_headers(echo: &serde_json::Value) {
    let h = &echo["headers"];
    assert_eq!(h["x-auth-provider"], "nia");
    assert_eq!(h["x-auth-subject"], BSI);
    // Percent-encoded UTF-8 (the README's default `encoding`).
    assert_eq!(h["x-auth-family-name"], "NOV%C3%81K");
    assert_eq!(h["x-auth-given-name"], "JAN MARIE");
    assert_eq!(h["x-auth-loa"], "substantial");
    assert_eq!(h["x-auth-birth-date"], "1968-03-29");
    assert_eq!(h["x-auth-birth-place"], "%C3%9Ast%C3%AD nad Labem");
}

/// The decoded XML of a POST-binding `SAMLRequest`.
pub fn posted_xml(fields: &[(String, String)]) -> String {
    let raw = base64::engine::general_purpose::STANDARD.decode(field(fields, "SAMLRequest")).unwrap();
    String::from_utf8(raw).unwrap()
}

pub const LOA_URI: &str = LOA;
pub const ENTITY_ID: &str = SP_ENTITY_ID;
