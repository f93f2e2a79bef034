//! Every page the gateway and the demo render, in a real browser (issue 14, "Pages"): headless
//! Chromium driven over WebDriver walks the pages a user meets — through real logins at the
//! simulated JIP/KAAS, NIA, EnviIAM and CAAIS — once preferring Czech and once English, at a
//! 375 px wide phone viewport. For each page it saves a screenshot under
//! `target/browser-pages/` and checks that it rendered (`lang` as requested, a title, exactly
//! one visible `h1` with the page's heading), that it asked no host but the loopback test
//! servers, and that it is usable that narrow: no horizontal scroll, every link and button
//! inside the viewport and not covered, no text cut off by its box.
//!
//! Skips with a message without `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian
//! `chromium`, `chromium-driver`; `tools/test` installs them), fails then under
//! `AISGATE_REQUIRE_PEERS=1`.

mod support;

use std::path::PathBuf;

use aisgate::sim::stack::{OidcStackProvider, SamlStackProvider, StackOptions};
use serde_json::json;
use support::webdriver::{Driver, Session};
use support::Gateway;

/// The phone width the pages must work at (CSS pixels).
const WIDTH: u32 = 375;

const ADMIN_TOKEN: &str = "browser-pages-admin-token-0123456789abcdef";

/// The demo's shape: one app for every simulated IdP with an `/admin` rule nobody meets, plus
/// an app offering the account link (CAAIS users and legacy JIP/KAAS accounts), an app in
/// maintenance, an app logging in with JIP/KAAS only (the kept form post), and one whose
/// upstream is down.
const APPS: &str = r#"
[admin]
token_file = "{token}"

[links]
database = "{dir}/links.sqlite"
legacy_providers = ["jip"]
caais_providers = ["caais"]

[[app]]
name = "echo"
display_name = "Echo (demo)"
hosts = ["localhost"]
upstream = "{upstream}"
providers = ["jip", "nia", "enviam", "caais"]
public_paths = ["/public"]
logout_paths = ["/logout"]

[[app.rule]]
path_prefix = "/admin"
any_role = ["ADMIN"]

[[app]]
name = "desk"
display_name = "Spisová služba"
hosts = ["localhost"]
path_prefix = "/desk"
upstream = "{upstream}"
providers = ["caais", "jip"]
account_link = "offer"

[[app]]
name = "maint"
hosts = ["localhost"]
path_prefix = "/maint"
upstream = "{upstream}"
providers = ["jip"]

[[app]]
name = "forms"
hosts = ["localhost"]
path_prefix = "/forms"
upstream = "{upstream}"
providers = ["jip"]

[[app]]
name = "down"
hosts = ["localhost"]
path_prefix = "/down"
upstream = "http://127.0.0.1:9"
providers = ["jip"]
public_paths = ["/down"]
"#;

/// What one page must show: its name (the screenshot's), the `lang` it must declare and its
/// heading, in Czech and in English (the simulators and the echo upstream have one language).
struct Expect {
    name: &'static str,
    lang: Option<&'static str>,
    h1: [&'static str; 2],
}

const fn gateway_page(name: &'static str, cs: &'static str, en: &'static str) -> Expect {
    Expect { name, lang: None, h1: [cs, en] }
}

const fn fixed_page(name: &'static str, lang: &'static str, h1: &'static str) -> Expect {
    Expect { name, lang: Some(lang), h1: [h1, h1] }
}

const CHOOSER: Expect = gateway_page("chooser", "Zvolte způsob přihlášení", "Choose how to log in");
const KAAS_SIM: Expect = fixed_page("sim-jip-kaas", "cs", "Přihlášení do JIP/KAAS (simulace)");
const ECHO: Expect = fixed_page("demo-echo", "en", "Echo upstream");
const FORBIDDEN: Expect = gateway_page("403-forbidden", "Přístup odepřen", "Access denied");
const LOGOUT_CONFIRM: Expect = gateway_page("logout-confirm", "Odhlásit se?", "Log out?");
const LOGGED_OUT: Expect = gateway_page("logged-out", "Odhlášení proběhlo úspěšně", "You have been logged out");
const NOT_INITIATED: Expect =
    gateway_page("login-not-started", "Přihlášení nelze dokončit", "Login cannot be completed");
const SAML_POST: Expect =
    gateway_page("saml-post-to-idp", "Přesměrování k poskytovateli identity", "Redirecting to the identity provider");
const NIA_SIM: Expect = fixed_page("sim-nia", "cs", "Přihlášení přes NIA (simulace)");
const LOGIN_FAILED: Expect = gateway_page("login-refused-by-idp", "Přihlášení se nezdařilo", "Login failed");
const LOGIN_EXPIRED: Expect = gateway_page("login-expired", "Platnost přihlášení vypršela", "The login has expired");
const IDP_UNAVAILABLE: Expect = gateway_page(
    "idp-unavailable",
    "Přihlašovací služba je dočasně nedostupná",
    "The login service is temporarily unavailable",
);
const LINK: Expect = gateway_page("account-link", "Propojení s účtem JIP/KAAS", "Link your JIP/KAAS account");
const MAINTENANCE: Expect = gateway_page("maintenance-503", "Probíhá údržba", "Under maintenance");
const NOT_FOUND: Expect = gateway_page("404-unknown-host", "Stránka nebyla nalezena", "Page not found");
const SAVED_POST: Expect = gateway_page("form-post-continue", "Odeslání formuláře", "Sending your form");
const DIRECT_FORM: Expect =
    gateway_page("direct-login-form", "Přihlášení jednorázovými údaji", "Log in with one-time credentials");
const DIRECT_REFUSED: Expect =
    gateway_page("direct-login-refused", "Přihlášení jednorázovými údaji", "Log in with one-time credentials");
const ONE_TIME_SIM: Expect = fixed_page("sim-jip-kaas-one-time-credentials", "cs", "Jednorázové přihlašovací údaje");
const KAAS_SIM_DIRECT: Expect = fixed_page("sim-jip-kaas-direct", "cs", "Přihlášení do JIP/KAAS (simulace)");
const UPSTREAM_DOWN: Expect =
    gateway_page("502-upstream-down", "Služba je dočasně nedostupná", "The service is temporarily unavailable");

/// Collects what one page fails; the test lists every failure of every page at the end.
struct Walk<'a> {
    gw: &'a Gateway,
    session: Session,
    lang: &'static str,
    shots: PathBuf,
    seen: Vec<String>,
    failures: Vec<String>,
}

/// The checks run in the page: `lang`, title, visible `h1`s, viewport width, and what breaks
/// at that width. Every link and control is scrolled to the middle of the viewport and must
/// then lie inside it with its centre not covered by another element; a box that clips its
/// content (overflow other than visible, or an ellipsis) must not have more content than
/// room; nothing may reach past the viewport's sides.
const PAGE_CHECKS: &str = r#"
const de = document.documentElement;
const w = window.innerWidth;
const problems = [];
const shown = el => {
  const r = el.getBoundingClientRect();
  const s = getComputedStyle(el);
  return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none';
};
const label = el => `<${el.tagName.toLowerCase()}${el.className ? '.' + el.className : ''}> "${(el.innerText || el.value || '').trim().slice(0, 40)}"`;
if (de.scrollWidth > de.clientWidth) {
  problems.push(`horizontal scroll: scrollWidth ${de.scrollWidth} > clientWidth ${de.clientWidth}`);
}
for (const el of document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, label')) {
  if (!shown(el)) continue;
  el.scrollIntoView({block: 'center', inline: 'nearest'});
  const r = el.getBoundingClientRect();
  if (r.left < -0.5 || r.right > w + 0.5) {
    problems.push(`${label(el)} is outside the viewport: ${r.left.toFixed(1)}..${r.right.toFixed(1)} of ${w}`);
    continue;
  }
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  if (!hit || !(hit === el || el.contains(hit) || hit.contains(el) && hit.tagName === 'LABEL')) {
    problems.push(`${label(el)} is covered by ${hit ? label(hit) : 'nothing'}`);
  }
}
window.scrollTo(0, 0);
for (const el of document.body.querySelectorAll('*')) {
  if (!shown(el)) continue;
  const s = getComputedStyle(el);
  if ((s.overflowX !== 'visible' || s.textOverflow === 'ellipsis') && el.scrollWidth > el.clientWidth + 1) {
    problems.push(`text cut: ${label(el)} scrollWidth ${el.scrollWidth} > clientWidth ${el.clientWidth}`);
  }
  if (s.overflowY !== 'visible' && el.scrollHeight > el.clientHeight + 1 && el !== document.scrollingElement) {
    problems.push(`text cut: ${label(el)} scrollHeight ${el.scrollHeight} > clientHeight ${el.clientHeight}`);
  }
  const r = el.getBoundingClientRect();
  if (r.left < -0.5 || r.right > w + 0.5) {
    problems.push(`${label(el)} reaches outside the viewport: ${r.left.toFixed(1)}..${r.right.toFixed(1)} of ${w}`);
  }
}
return {
  lang: de.lang,
  title: document.title.trim(),
  h1: [...document.querySelectorAll('h1')].filter(shown).map(h => h.innerText.trim()),
  width: w,
  text: document.body ? document.body.innerText.trim().length : 0,
  problems,
};
"#;

impl Walk<'_> {
    /// Checks the page the browser shows now against `expect` and saves its screenshot.
    async fn check(&mut self, expect: &Expect) {
        self.session.wait_loaded().await;
        let name = format!("{}-{}", self.lang, expect.name);
        let url = self.session.url().await;
        let mut fail = |what: String| self.failures.push(format!("{name} ({url}): {what}"));
        let found = self.session.execute(PAGE_CHECKS, json!([])).await;
        let lang = expect.lang.unwrap_or(self.lang);
        let h1 = expect.h1[usize::from(self.lang == "en")];
        if found["lang"] != lang {
            fail(format!("document.documentElement.lang is {} instead of {lang:?}", found["lang"]));
        }
        if found["title"].as_str().is_none_or(str::is_empty) {
            fail("the <title> is empty".to_owned());
        }
        if found["h1"] != json!([h1]) {
            fail(format!("the visible h1 elements are {} instead of exactly one, {h1:?}", found["h1"]));
        }
        if found["text"].as_u64().unwrap_or(0) < 20 {
            fail("the page shows (almost) no text: it did not render".to_owned());
        }
        if found["width"] != WIDTH {
            fail(format!(
                "the viewport is {} CSS px wide instead of {WIDTH} (no `<meta name=viewport>`?)",
                found["width"]
            ));
        }
        for problem in found["problems"].as_array().into_iter().flatten() {
            fail(format!("at {WIDTH} px: {}", problem.as_str().unwrap_or_default()));
        }
        for requested in self.session.requested_urls().await {
            if !is_loopback(&requested) {
                fail(format!("requested {requested}: a host other than the loopback test servers"));
            }
        }
        let png = self.session.screenshot().await;
        assert!(png.starts_with(b"\x89PNG"), "{name}: the screenshot is a PNG");
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("screenshot saved");
        self.seen.push(name);
    }

    /// Navigates to `url` (typed in the address bar: `Sec-Fetch-Site: none`).
    async fn goto(&self, url: &str) {
        self.session.goto(url).await;
    }

    /// Navigates to `url` from a page of another site (the simulated KAAS's origin), as a link
    /// there would: `Sec-Fetch-Site: cross-site`.
    async fn goto_from_another_site(&self, url: &str) {
        self.session.goto(&format!("{}/", self.gw.sim.login_base)).await;
        self.session
            .execute_navigating("setTimeout(() => { window.location.href = arguments[0]; }, 0);", json!([url]))
            .await;
        assert!(self.session.url().await.starts_with(&self.gw.base), "the browser followed the link to {url}");
    }

    /// Submits, from the page shown now, a form of that page's origin to `action`
    /// (a user's form whose session had expired).
    async fn post_form(&self, action: &str, fields: &[(&str, &str)]) {
        let script = r#"
const form = document.createElement('form');
form.method = 'post';
form.action = arguments[0];
for (const [name, value] of arguments[1]) {
  const input = document.createElement('input');
  input.type = 'hidden'; input.name = name; input.value = value;
  form.appendChild(input);
}
document.body.appendChild(form);
setTimeout(() => form.submit(), 0);
"#;
        self.session.execute_navigating(script, json!([action, fields])).await;
    }

    /// Forgets the browser's cookies of the gateway (a new visitor).
    async fn forget_cookies(&self) {
        self.goto(&self.gw.url("/down/")).await;
        self.session.delete_cookies().await;
    }
}

/// `http://localhost`, `http://*.localhost`, `http://127.0.0.1` (any port), or a URL that
/// fetches nothing (`data:`, `about:`).
fn is_loopback(url: &str) -> bool {
    let Ok(url) = url::Url::parse(url) else { return false };
    match url.scheme() {
        "data" | "about" => true,
        "http" | "https" => {
            url.host_str().is_some_and(|h| h == "localhost" || h.ends_with(".localhost") || h == "127.0.0.1")
        }
        _ => false,
    }
}

async fn gateway(dir: &std::path::Path) -> Gateway {
    let token = dir.join("admin.token");
    std::fs::write(&token, format!("{ADMIN_TOKEN}\n")).expect("token file");
    let apps = APPS.replace("{token}", &token.display().to_string());
    let gw = Gateway::start(StackOptions {
        // The demo's echo upstream (`sim::echo`), whose page is one of the demo's pages.
        upstream: None,
        apps: Some(apps),
        oidc: vec![
            OidcStackProvider::enviam_like("enviam", "display_name = \"EnviIAM (simulátor)\""),
            OidcStackProvider::caais_like("caais", "display_name = \"CAAIS (simulátor)\""),
        ],
        // HTTP-POST binding: the gateway's own "continue to the identity provider" page.
        saml: Some(SamlStackProvider { extra: "sso_binding = \"post\"".to_owned(), ..SamlStackProvider::default() }),
        ..Default::default()
    })
    .await;
    let maintenance = gw
        .client
        .put(format!("http://{}/admin/maintenance/maint", gw.ops))
        .bearer_auth(ADMIN_TOKEN)
        .body(r#"{"message": "Do 14:00 probíhá migrace dat / data migration until 14:00.", "retry_after_secs": 600}"#)
        .send()
        .await
        .expect("admin API answers");
    assert_eq!(maintenance.status(), 200, "the maint app is put in maintenance");
    gw
}

/// Walks every page in the browser's language `lang`.
async fn walk(walk: &mut Walk<'_>) {
    let gw = walk.gw;
    // The chooser, the JIP/KAAS simulator, a login, the demo's echo page.
    walk.goto(&gw.url("/")).await;
    walk.check(&CHOOSER).await;
    walk.session.click("a[href*='provider=jip']").await;
    walk.check(&KAAS_SIM).await;
    walk.session.click("button[name=user]").await;
    walk.check(&ECHO).await;
    // The 403 page of a logged-in user.
    walk.goto(&gw.url("/admin")).await;
    walk.check(&FORBIDDEN).await;
    // A logout link on another site: the confirmation, then the logged-out page.
    walk.goto_from_another_site(&gw.url("/.aisgate/logout")).await;
    walk.check(&LOGOUT_CONFIRM).await;
    walk.session.click("form button[type=submit]").await;
    walk.check(&LOGGED_OUT).await;
    // A login callback this browser did not start.
    walk.goto(&gw.url("/.aisgate/callback/jip?sessionId=not-started-here")).await;
    walk.check(&NOT_INITIATED).await;
    // NIA: the gateway's HTTP-POST page, the simulator, a login.
    walk.goto(&gw.url("/.aisgate/login?provider=nia&return=%2F")).await;
    walk.check(&SAML_POST).await;
    walk.session.click("button[type=submit]").await;
    walk.check(&NIA_SIM).await;
    walk.session.click("button[type=submit]").await;
    walk.check(&ECHO).await;
    walk.forget_cookies().await;
    // The IdP refuses the login (OAuth `access_denied`).
    gw.oidc[0].knobs().authorize_error = Some("access_denied".to_owned());
    walk.goto(&gw.url("/.aisgate/login?provider=enviam&return=%2F")).await;
    walk.check(&LOGIN_FAILED).await;
    // The IdP's token endpoint is down.
    gw.oidc[1].knobs().token_outage = true;
    walk.goto(&gw.url("/.aisgate/login?provider=caais&return=%2F")).await;
    gw.oidc[1].knobs().token_outage = false;
    walk.check(&IDP_UNAVAILABLE).await;
    // A CAAIS user entering an app that offers the link to a JIP/KAAS account.
    walk.goto(&gw.url("/.aisgate/login?provider=caais&return=%2Fdesk%2F")).await;
    walk.check(&LINK).await;
    walk.forget_cookies().await;
    // An app in maintenance, an app whose upstream is down, a host without apps.
    walk.goto(&gw.url("/maint/")).await;
    walk.check(&MAINTENANCE).await;
    walk.goto(&gw.url("/down/")).await;
    walk.check(&UPSTREAM_DOWN).await;
    walk.goto(&format!("http://unknown.localhost:{}/", gw.addr.port())).await;
    walk.check(&NOT_FOUND).await;
    // A form of an app page sent without a session: kept across the login, offered
    // afterwards. (The app's page, not the gateway's: the gateway's pages send no referrer,
    // so a browser sends `Origin: null` with their forms.)
    walk.goto(&gw.url("/public/form")).await;
    walk.post_form(&gw.url("/forms/submit"), &[("subject", "Žádost o výpis"), ("note", "a&b=c")]).await;
    walk.session.click("button[name=user]").await;
    walk.check(&SAVED_POST).await;
    walk.session.click("button[type=submit]").await;
    walk.check(&ECHO).await;
    let echoed = walk.session.execute("return document.body.innerText", json!([])).await;
    assert!(
        echoed.as_str().is_some_and(|t| t.contains("POST /forms/submit")),
        "the kept form reached the app: {echoed}"
    );
}

/// The JIP/KAAS one-time-credential login (`login_mode = "direct"`, another gateway): the
/// gateway's form, the simulator's generator and its credentials, a refusal, the login.
async fn walk_direct(walk: &mut Walk<'_>, direct: &Gateway) {
    walk.goto(&direct.url("/")).await;
    walk.check(&DIRECT_FORM).await;
    let form = walk.session.url().await;
    // The generator opens in a new window for a user; here in the same one.
    let generator = walk.session.execute("return document.querySelector('a[target=_blank]').href", json!([])).await;
    walk.goto(generator.as_str().expect("a generator link")).await;
    walk.check(&KAAS_SIM_DIRECT).await;
    walk.session.click("button[name=user]").await;
    walk.check(&ONE_TIME_SIM).await;
    let read = "return [document.getElementById('username').innerText, document.getElementById('password').innerText]";
    let credentials = walk.session.execute(read, json!([])).await;
    let fill = "document.getElementById('username').value = arguments[0]; document.getElementById('password').value = arguments[1];";
    walk.goto(&form).await;
    walk.session.execute(fill, json!(["no-such-name", "wrong-password"])).await;
    walk.session.click("button[type=submit]").await;
    walk.check(&DIRECT_REFUSED).await;
    let refusal = walk.session.execute("return document.querySelector('[role=alert]').innerText", json!([])).await;
    assert!(refusal.as_str().is_some_and(|t| !t.is_empty()), "the refusal is shown");
    walk.session.execute(fill, json!([credentials[0], credentials[1]])).await;
    walk.session.click("button[type=submit]").await;
    walk.check(&ECHO).await;
}

/// A login that took longer than it may (15 minutes) at the IdP, at a gateway of its own:
/// its clock moves on, which would make the simulated OpenID providers' tokens look stale.
async fn walk_expired(walk: &mut Walk<'_>, gw: &Gateway) {
    walk.goto(&gw.url("/")).await;
    walk.check(&KAAS_SIM).await;
    gw.clock.advance(std::time::Duration::from_secs(16 * 60));
    walk.session.click("button[name=user]").await;
    walk.check(&LOGIN_EXPIRED).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_renders_in_czech_and_english_and_is_usable_375_px_wide() {
    let Some(driver) = Driver::start("browser_pages") else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let gw = gateway(dir.path()).await;
    let direct =
        Gateway::start(StackOptions { provider_extra: "login_mode = \"direct\"".into(), ..Default::default() }).await;
    let expiry = Gateway::start(StackOptions::default()).await;
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).parent().expect("target dir").join("browser-pages");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let mut failures = Vec::new();
    let mut seen = Vec::new();
    for lang in ["cs", "en"] {
        let session = driver.session(lang, WIDTH).await;
        let mut w = Walk { gw: &gw, session, lang, shots: shots.clone(), seen: Vec::new(), failures: Vec::new() };
        walk(&mut w).await;
        walk_direct(&mut w, &direct).await;
        walk_expired(&mut w, &expiry).await;
        failures.append(&mut w.failures);
        seen.append(&mut w.seen);
        w.session.close().await;
    }
    assert!(
        failures.is_empty(),
        "{} failures (screenshots in {}):\n{}",
        failures.len(),
        shots.display(),
        failures.join("\n")
    );
    // 25 page visits per language (the echo page four times, the JIP/KAAS simulator twice).
    assert_eq!(seen.len(), 2 * 25, "pages checked: {seen:?}");
}

/// Two pages with every defect the walk looks for: the checks must report each one (they
/// can fail, and say why).
const BROKEN_HEAD: &str = "<!doctype html><html><head><title> </title></head><body>\
    <h1>One</h1><h1>Two</h1><p>Some text long enough to count as rendered.</p>\
    <img src=\"http://tracker.example.com/pixel.png\" alt=\"\"></body></html>";
const BROKEN_LAYOUT: &str = "<!doctype html><html lang=\"cs\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
    content=\"width=device-width, initial-scale=1\"><title>Rozbitá</title></head><body><h1>Rozbitá stránka</h1>\
    <div style=\"width:600px\">Too wide for a phone.</div>\
    <p style=\"width:100px;overflow:hidden;white-space:nowrap\">A sentence cut off by its box.</p>\
    <p><a id=\"covered\" href=\"/x\">covered link</a></p>\
    <div style=\"position:relative;top:-3em;height:3em;background:#c00\">cover</div></body></html>";

#[tokio::test(flavor = "multi_thread")]
async fn the_checks_report_every_defect_of_a_broken_page() {
    let Some(driver) = Driver::start("browser_pages") else { return };
    let gw = Gateway::start(StackOptions::default()).await;
    let broken = support::upstream(|req: hyper::Request<hyper::body::Incoming>| async move {
        let page = if req.uri().path() == "/head" { BROKEN_HEAD } else { BROKEN_LAYOUT };
        support::text(200, page)
    })
    .await;
    let shots = tempfile::tempdir().expect("temp dir");
    let session = driver.session("cs", WIDTH).await;
    let mut w =
        Walk { gw: &gw, session, lang: "cs", shots: shots.path().to_owned(), seen: Vec::new(), failures: Vec::new() };
    w.goto(&format!("{broken}/head")).await;
    w.check(&gateway_page("broken-head", "Rozbitá stránka", "Broken page")).await;
    w.goto(&format!("{broken}/layout")).await;
    w.check(&gateway_page("broken-layout", "Rozbitá stránka", "Broken page")).await;
    w.session.close().await;
    let report = w.failures.join("\n");
    for expected in [
        "cs-broken-head (http://127.0.0.1:",
        "document.documentElement.lang is \"\" instead of \"cs\"",
        "the <title> is empty",
        "the visible h1 elements are [\"One\",\"Two\"] instead of exactly one",
        // A phone lays out a page without `<meta name=viewport>` 980 px wide.
        "the viewport is 98",
        "requested http://tracker.example.com/pixel.png: a host other than the loopback test servers",
        "cs-broken-layout (http://127.0.0.1:",
        // A phone zooms out to show an element wider than the screen: the viewport grows.
        "the viewport is 608 CSS px wide instead of 375",
        "at 375 px: horizontal scroll: scrollWidth 608 > clientWidth 375",
        "at 375 px: text cut: <p> \"A sentence cut off by its box.\" scrollWidth",
        "at 375 px: <a> \"covered link\" is covered by <div> \"cover\"",
    ] {
        assert!(report.contains(expected), "{expected:?} is not reported:\n{report}");
    }
    assert_eq!(w.seen.len(), 2, "both pages were screenshot");
}

#[test]
fn only_loopback_urls_count_as_local() {
    for local in
        ["http://localhost:8080/x", "http://unknown.localhost:1/", "http://127.0.0.1:9/a", "data:image/png;base64,AA"]
    {
        assert!(is_loopback(local), "{local}");
    }
    for remote in ["https://example.com/a.css", "http://localhost.example.com/", "http://10.0.0.1/", "ftp://127.0.0.1/"]
    {
        assert!(!is_loopback(remote), "{remote}");
    }
}
