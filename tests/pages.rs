//! Pages that must not strand users (issue 14 items 7, 8 and 10–14), through the real gateway:
//! the simulated NIA page and the demo's echo page and `/admin` rule, a reload or Back after a
//! login (KAAS callback, NIA form re-submitted, OIDC callback replayed), the 403 page of a
//! logged-in user, the cross-site logout confirmation, the home link of error pages, and the
//! chooser naming the app.

mod support;

use aisgate::sim::stack::{SamlStackProvider, StackOptions};
use support::logs::{self, line_with, request_id};
use support::{header_echo, location, parse_form, set_cookie, Gateway, NOT_INITIATED};

async fn start(apps: &str) -> Gateway {
    logs::capture();
    Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        apps: Some(apps.to_owned()),
        ..Default::default()
    })
    .await
}

async fn get(gw: &Gateway, url: &str, cookie: Option<&str>, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut req = gw.client.get(url).header("accept", "text/html");
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

/// Asserts the reload/Back redirect: a 302 to `to`, no new session, the INFO line with `reason`.
fn assert_went_on(resp: &reqwest::Response, to: &str, reason: &str) {
    assert_eq!(resp.status(), 302, "a logged-in browser goes on");
    assert_eq!(location(resp), to);
    assert!(set_cookie(resp, "aisgate_session").is_none(), "no session is made from the message");
    let line = line_with(&request_id(resp), "already logged in");
    assert!(line.contains("INFO") && line.contains(&format!("reason=\"{reason}\"")), "{line}");
}

// ---------------------------------------------------------------------------
// Item 10: reload or Back after a successful login
// ---------------------------------------------------------------------------

const JIP_APP: &str = r#"
[[app]]
name = "echo"
upstream = "{upstream}"
providers = ["jip"]
logout_paths = ["/logout"]

[[app.rule]]
path_prefix = "/admin"
any_role = ["ADMIN"]
"#;

#[tokio::test]
async fn reloading_the_kaas_callback_in_a_logged_in_browser_goes_on_instead_of_not_initiated() {
    let gw = start(JIP_APP).await;
    let (callback, login_cookie) = gw.begin_login("/reports", 0).await;
    let done = get(&gw, &callback, Some(&login_cookie), &[]).await;
    assert_eq!(done.status(), 302);
    let session = format!("aisgate_session={}", set_cookie(&done, "aisgate_session").unwrap());

    // Reload: the pre-login cookie was cleared by the login, the session is there.
    let reload = get(&gw, &callback, Some(&session), &[]).await;
    assert_went_on(&reload, "/", "no_login_cookie");
    // Back with a stale pre-login cookie still around: its login is used.
    let back = get(&gw, &callback, Some(&format!("{login_cookie}; {session}")), &[]).await;
    assert_went_on(&back, "/", "login_used");
    // The session still works: nothing was redeemed again or ended.
    assert_eq!(gw.navigate("/reports", Some(&session)).await.status(), 200);

    // Without a session the page is the old one: the login was not started here.
    let stranger = get(&gw, &callback, None, &[]).await;
    assert_eq!(stranger.status(), 400);
    assert!(stranger.text().await.unwrap().contains(NOT_INITIATED));
}

#[tokio::test]
async fn a_resubmitted_nia_post_in_a_logged_in_browser_goes_on_and_is_not_processed() {
    logs::capture();
    let apps = "[[app]]\nname = \"desk\"\nupstream = \"{upstream}\"\nproviders = [\"nia\", \"jip\"]\n";
    let gw = Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        apps: Some(apps.to_owned()),
        saml: Some(SamlStackProvider::default()),
        ..Default::default()
    })
    .await;
    let start = gw.navigate("/.aisgate/login?return=%2Fdesk&provider=nia", None).await;
    let login_cookie = format!("aisgate_login={}", set_cookie(&start, "aisgate_login").unwrap());
    let answer = gw.to_idp(start).await;
    let (acs, form) = parse_form(&answer.text().await.unwrap());
    let post = |cookie: String| {
        let req = gw.client.post(&acs).form(&form).header("accept", "text/html").header("cookie", cookie);
        async move { req.send().await.unwrap() }
    };
    let done = post(login_cookie.clone()).await;
    assert_eq!(done.status(), 302);
    assert_eq!(location(&done), "/desk");
    let session = format!("aisgate_session={}", set_cookie(&done, "aisgate_session").unwrap());

    // The auto-POST page re-submitted (Back, or reload of the POST): no pre-login cookie left.
    let again = post(session.clone()).await;
    assert_went_on(&again, "/", "no_login_cookie");
    // The same with the old pre-login cookie: its login is used.
    let used = post(format!("{login_cookie}; {session}")).await;
    assert_went_on(&used, "/", "login_used");
    // Nothing was processed: no refusal (an assertion replay) was logged for either.
    for resp in [&again, &used] {
        assert!(logs::lines_for(&request_id(resp)).iter().all(|l| !l.contains("login refused")));
    }
    // Without the session the response is refused as before.
    let stranger = post(String::new()).await;
    assert_eq!(stranger.status(), 400);
}

#[tokio::test]
async fn a_replayed_oidc_callback_in_a_logged_in_browser_goes_on_without_redeeming_the_code_again() {
    logs::capture();
    let apps =
        "[[app]]\nname = \"desk\"\npath_prefix = \"/desk\"\nupstream = \"{upstream}\"\nproviders = [\"caais\"]\n";
    let gw = Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        apps: Some(apps.to_owned()),
        oidc: vec![support::caais_provider("")],
        ..Default::default()
    })
    .await;
    let start = gw.navigate("/.aisgate/login?return=%2Fdesk%2Fcases&provider=caais", None).await;
    assert_eq!(start.status(), 302);
    let login_cookie = format!("aisgate_login={}", set_cookie(&start, "aisgate_login").unwrap());
    let answer = gw.client.get(location(&start)).send().await.unwrap();
    let callback = location(&answer);
    let done = get(&gw, &callback, Some(&login_cookie), &[]).await;
    assert_eq!(done.status(), 302);
    assert_eq!(location(&done), "/desk/cases");
    let session = format!("aisgate_session={}", set_cookie(&done, "aisgate_session").unwrap());

    let replay = get(&gw, &callback, Some(&format!("{login_cookie}; {session}")), &[]).await;
    // The pending login (and its return URL) is gone: the app offering the provider.
    assert_went_on(&replay, "/desk", "login_used");
    assert_went_on(&get(&gw, &callback, Some(&session), &[]).await, "/desk", "no_login_cookie");
    assert_eq!(gw.oidc[0].knobs().token_calls, 1, "the code is not redeemed again");
}

// ---------------------------------------------------------------------------
// Item 11: the 403 page of a logged-in user
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_403_page_names_the_user_and_offers_logout_and_another_account_which_works() {
    let gw = start(JIP_APP).await;
    let (session, _) = gw.login_to("/", 0).await;
    let denied = gw.navigate("/admin/users?page=2", Some(&session)).await;
    assert_eq!(denied.status(), 403);
    let page = denied.text().await.unwrap();
    assert!(page.contains("Jste přihlášeni jako Ing. Jiřina Nováková (JIP/KAAS (simulátor))."), "{page}");
    assert!(page.contains("href=\"/.aisgate/logout\">Odhlásit se</a>"), "{page}");
    let switch = "/.aisgate/logout?switch=1&return=%2Fadmin%2Fusers%3Fpage%3D2";
    assert!(
        page.contains(&format!("href=\"{}\">Přihlásit se jiným účtem</a>", switch.replace('&', "&amp;"))),
        "{page}"
    );
    let en = get(&gw, &gw.url("/admin"), Some(&session), &[("accept-language", "en")]).await;
    let en = en.text().await.unwrap();
    assert!(
        en.contains("You are logged in as Ing. Jiřina Nováková (JIP/KAAS (simulátor)).")
            && en.contains(">Log in with another account</a>")
    );

    // "Log in with another account": the session ends, the IdP's logout comes first…
    let out = get(&gw, &gw.url(switch), Some(&session), &[("sec-fetch-site", "same-origin")]).await;
    assert_eq!(out.status(), 302);
    assert!(location(&out).starts_with(&gw.sim.logout_url()), "to the IdP logout: {}", location(&out));
    let switch_cookie =
        format!("aisgate_login_switch={}", set_cookie(&out, "aisgate_login_switch").expect("switch cookie"));
    assert_eq!(gw.navigate("/", Some(&session)).await.status(), 302, "the session is gone");
    // …then the logged-out page starts the login to the same URL, once.
    let back = get(&gw, &gw.url("/.aisgate/logged-out"), Some(&switch_cookie), &[]).await;
    assert_eq!(back.status(), 302);
    assert_eq!(location(&back), "/.aisgate/login?return=%2Fadmin%2Fusers%3Fpage%3D2");
    line_with(&request_id(&back), "login with another account starts");
    let twice = get(&gw, &gw.url("/.aisgate/logged-out"), Some(&switch_cookie), &[]).await;
    assert_eq!(twice.status(), 200, "single use: the plain logged-out page");
}

// ---------------------------------------------------------------------------
// Item 12: the cross-site logout confirmation
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_cross_site_logout_asks_log_out_with_log_out_and_cancel_back_to_the_app() {
    let gw = start(JIP_APP).await;
    let session = gw.login().await;
    let cross = [("sec-fetch-site", "cross-site")];
    let page = get(&gw, &gw.url("/.aisgate/logout?return=%2Freports"), Some(&session), &cross).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("<h1>Odhlásit se?</h1>"), "{page}");
    // Relative: it posts to the host the session cookie belongs to (issue 12 item 6).
    assert!(page.contains("<form method=\"post\" action=\"/.aisgate/logout\">"), "{page}");
    assert!(page.contains(">Odhlásit se</button>") && page.contains("href=\"/reports\">Zrušit</a>"), "{page}");
    assert!(!page.contains("Přesměrování k poskytovateli identity") && !page.contains("Pokračovat"));
    // The app's own logout path: Cancel goes back to the app.
    let en = get(&gw, &gw.url("/logout"), Some(&session), &[cross[0], ("accept-language", "en")]).await;
    let en = en.text().await.unwrap();
    assert!(en.contains("<h1>Log out?</h1>") && en.contains(">Log out</button>"), "{en}");
    assert!(en.contains("href=\"/\">Cancel</a>") && !en.contains("Redirecting"), "{en}");
    // Nothing happened until the button is pressed.
    assert_eq!(gw.navigate("/reports", Some(&session)).await.status(), 200);
}

// ---------------------------------------------------------------------------
// Items 13 and 14: home links and the chooser
// ---------------------------------------------------------------------------

const HOSTED_APPS: &str = r#"
[[app]]
name = "portal"
display_name = "Spisová služba"
hosts = ["localhost"]
path_prefix = "/portal"
upstream = "{upstream}"
providers = ["jip", "caais"]

[[app]]
name = "archive"
hosts = ["localhost"]
path_prefix = "/archive"
upstream = "http://127.0.0.1:9"
providers = ["jip"]
public_paths = ["/archive"]

[[app]]
name = "desk"
hosts = ["desk.localhost"]
central_login = true
path_prefix = "/desk"
upstream = "{upstream}"
providers = ["jip", "caais"]
"#;

async fn hosted() -> Gateway {
    logs::capture();
    Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        apps: Some(HOSTED_APPS.to_owned()),
        oidc: vec![support::caais_provider("")],
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn the_404_page_links_home_only_to_a_real_app_never_to_the_same_404() {
    let gw = hosted().await;
    let home = "Přejít na úvodní stránku";
    // A host without apps: the public base URL's app (another host).
    let port = gw.addr.port();
    let unknown = get(&gw, &gw.url("/"), None, &[("host", &format!("unknown.localhost:{port}"))]).await;
    assert_eq!(unknown.status(), 404);
    let page = unknown.text().await.unwrap();
    assert!(page.contains(&format!("href=\"http://localhost:{port}/portal\">{home}</a>")), "{page}");
    // A path no app serves on a host with an app: that app, not `/` (which 404s here).
    let missing = gw.navigate("/nothing", None).await;
    assert_eq!(missing.status(), 404);
    let page = missing.text().await.unwrap();
    assert!(page.contains(&format!("href=\"/portal\">{home}</a>")), "{page}");
    assert!(!page.contains("href=\"/\""), "{page}");
    // Inside an app, home is that app: the archive's upstream is down (502), its page links
    // to the archive, not to the host's first app.
    let down = gw.navigate("/archive/2020", None).await;
    assert_eq!(down.status(), 502);
    assert!(down.text().await.unwrap().contains(&format!("href=\"/archive\">{home}</a>")));
    // The other host: its own app.
    let desk = get(&gw, &gw.url("/nothing"), None, &[("host", &format!("desk.localhost:{port}"))]).await;
    assert!(desk.text().await.unwrap().contains(&format!("href=\"/desk\">{home}</a>")));
}

#[tokio::test]
async fn the_404_page_of_an_unknown_host_on_the_public_base_host_has_no_home_link() {
    logs::capture();
    let apps =
        "[[app]]\nname = \"only\"\nhosts = [\"app.localhost\"]\ncentral_login = true\nupstream = \"{upstream}\"\nproviders = [\"jip\"]\n";
    let gw = start(apps).await;
    let port = gw.addr.port();
    // The base URL's host (localhost) has no app, nor does this host: no link at all.
    for host in [format!("localhost:{port}"), format!("other.localhost:{port}")] {
        let resp = get(&gw, &gw.url("/"), None, &[("host", &host)]).await;
        assert_eq!(resp.status(), 404);
        let page = resp.text().await.unwrap();
        assert!(!page.contains("<a "), "{host}: {page}");
        assert!(!page.contains("Přejít na úvodní stránku"), "{host}");
    }
}

#[tokio::test]
async fn the_chooser_says_which_app_the_user_is_entering() {
    let gw = hosted().await;
    let named = gw.navigate("/portal/spis/1", None).await;
    assert_eq!(named.status(), 200);
    let page = named.text().await.unwrap();
    assert!(page.contains("<p>Přihlašujete se do aplikace Spisová služba.</p>"), "{page}");
    assert!(page.contains("JIP/KAAS (simulátor)"));
    // No display name: host and path prefix, never the internal name.
    let port = gw.addr.port();
    let host = format!("desk.localhost:{port}");
    let unnamed = get(&gw, &gw.url("/desk"), None, &[("host", &host), ("accept-language", "en")]).await;
    let page = unnamed.text().await.unwrap();
    assert!(page.contains("<p>You are logging in to desk.localhost/desk.</p>"), "{page}");
}

// ---------------------------------------------------------------------------
// Items 7 and 8: the demo's simulated NIA page, the echo page, a 403 to see
// ---------------------------------------------------------------------------

/// A gateway with the simulated NIA (and JIP) in front of the demo's echo upstream.
async fn nia_to_echo() -> Gateway {
    logs::capture();
    let echo = aisgate::sim::echo::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let apps = "[[app]]\nname = \"desk\"\nupstream = \"{upstream}\"\nproviders = [\"nia\", \"jip\"]\n";
    Gateway::start(StackOptions {
        upstream: Some(format!("http://{echo}")),
        apps: Some(apps.to_owned()),
        saml: Some(SamlStackProvider::default()),
        ..Default::default()
    })
    .await
}

/// The `n`th form (0-based) of `page`, as [`parse_form`] reads the first.
fn nth_form(page: &str, n: usize) -> (String, Vec<(String, String)>) {
    let at = page.match_indices("<form").nth(n).unwrap_or_else(|| panic!("no form {n} in {page}")).0;
    parse_form(&page[at..])
}

#[tokio::test]
async fn the_nia_simulator_page_has_the_banner_and_a_user_choice_that_sets_the_identity_upstream() {
    let gw = nia_to_echo().await;
    let users = aisgate::sim::saml::nia_demo_users();
    assert!(users.len() >= 2 && users[0].bsi != users[1].bsi, "two different people to choose from");
    let mut seen = Vec::new();
    for (n, user) in users.iter().enumerate().take(2) {
        let start = gw.navigate("/.aisgate/login?return=%2Fdesk&provider=nia", None).await;
        let login_cookie = format!("aisgate_login={}", set_cookie(&start, "aisgate_login").unwrap());
        let page = gw.to_idp(start).await.text().await.unwrap();
        // The same page as the JIP/KAAS simulator's: lang, title, banner, h1, one button per user.
        assert!(page.starts_with("<!doctype html><html lang=\"cs\">"), "{page}");
        assert!(page.contains("<title>Simulovaný NIA</title>"), "{page}");
        assert!(page.contains("<strong>SIMULÁTOR / SIMULATOR</strong> — not a real identity provider."), "{page}");
        assert!(page.contains("<h1>Přihlášení přes NIA (simulace)</h1>"), "{page}");
        for u in &users {
            assert!(page.contains(&format!("<button type=\"submit\">{}</button>", u.label)), "{page}");
        }
        assert_eq!(page.matches("<form").count(), users.len(), "one form per user: {page}");

        let (acs, form) = nth_form(&page, n);
        let done = gw
            .client
            .post(&acs)
            .form(&form)
            .header("accept", "text/html")
            .header("cookie", &login_cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), 302, "the chosen user's Response is accepted");
        let session = format!("aisgate_session={}", set_cookie(&done, "aisgate_session").unwrap());
        let echo = gw.navigate("/desk", Some(&session)).await;
        assert_eq!(echo.status(), 200);
        let echo = echo.text().await.unwrap();
        // The upstream sees the chosen person: subject (BSI) and name in the echo's summary.
        assert!(echo.contains(&format!("<dt>Subject</dt><dd>{}</dd>", user.bsi)), "user {n}: {echo}");
        let name = format!("<dt>Name</dt><dd>{} {}</dd>", user.given_name, user.family_name);
        assert!(echo.contains(&name), "user {n}: {echo}");
        assert!(echo.contains("<dt>Provider</dt><dd>nia</dd>"), "{echo}");
        seen.push(user.bsi.clone());
    }
    assert_ne!(seen[0], seen[1]);
}

#[tokio::test]
async fn the_demo_config_denies_admin_to_its_users_with_a_403_and_the_reason_logged() {
    logs::capture();
    let apps = aisgate::demo::demo_apps(Some("nia"), "http://127.0.0.1:9", "http://127.0.0.1:9");
    let gw = Gateway::start(StackOptions {
        upstream: Some(header_echo().await),
        apps: Some(apps),
        saml: Some(SamlStackProvider::default()),
        oidc: vec![
            aisgate::sim::stack::OidcStackProvider::enviam_like("enviam", ""),
            aisgate::sim::stack::OidcStackProvider::caais_like("caais", ""),
        ],
        ..Default::default()
    })
    .await;
    for user in 0..aisgate::sim::kaas::demo_users().len() {
        let start = gw.navigate("/.aisgate/login?return=%2F&provider=jip", None).await;
        let done = gw.finish_kaas_login(&start, user).await;
        assert_eq!(done.status(), 302);
        let session = format!("aisgate_session={}", set_cookie(&done, "aisgate_session").unwrap());
        assert_eq!(gw.navigate("/", Some(&session)).await.status(), 200, "user {user} may use the app");
        let denied = gw.navigate("/admin", Some(&session)).await;
        assert_eq!(denied.status(), 403, "user {user}");
        let line = line_with(&request_id(&denied), "access denied");
        assert!(line.contains("MissingRole"), "{line}");
    }
}
