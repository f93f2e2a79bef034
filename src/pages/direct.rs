//! The one-time-credential login form (JIP/KAAS "direct" login).
//!
//! The user obtains a one-time username and password from the IdP's generator page (opened in
//! a new tab) and types them here; the gateway — never the browser — redeems them. The form
//! carries a CSRF token bound to the browser's pre-login cookie. It never asks for the user's
//! real JIP credentials (direct v1 is deliberately not supported).

use super::{is_safe_url, view, Lang};

/// What the form shows.
pub struct DirectForm<'a> {
    /// The gateway's direct endpoint (with the app's return URL).
    pub action: &'a str,
    /// The CSRF token to echo.
    pub csrf: &'a str,
    /// The IdP page that issues one-time credentials.
    pub generator_url: &'a str,
    /// How long the started login (and so this form) stays valid, whole minutes.
    pub minutes: u64,
    /// Whether the last attempt was refused.
    pub failed: bool,
}

/// "N minut" after "do" (genitive): 1 minuty, otherwise minut.
fn minutes_cs(n: u64) -> String {
    if n == 1 {
        "1 minuty".to_owned()
    } else {
        format!("{n} minut")
    }
}

fn minutes_en(n: u64) -> String {
    if n == 1 {
        "1 minute".to_owned()
    } else {
        format!("{n} minutes")
    }
}

/// Renders the form. The lifetime it states is the gateway's (the pending login's), not the
/// IdP's 30 minutes for the credentials: whichever ends first ends the login, and the
/// gateway's is the one a user waiting on this page runs into.
pub fn direct_login_page(form: &DirectForm<'_>, lang: Lang) -> String {
    let step2_cs = format!(
        "2. Opište vygenerované jméno a heslo sem do {} od zahájení přihlášení. Údaje lze použít jen jednou.",
        minutes_cs(form.minutes)
    );
    let step2_en = format!(
        "2. Copy the generated name and password here within {} of starting the login. They can be used once.",
        minutes_en(form.minutes)
    );
    let t: [&str; 8] = match lang {
        Lang::Cs => [
            "Přihlášení jednorázovými údaji",
            "1. Otevřete stránku pro vygenerování jednorázových přihlašovacích údajů a přihlaste se tam.",
            "Vygenerovat jednorázové údaje (otevře se v novém okně)",
            &step2_cs,
            "Jednorázové jméno",
            "Jednorázové heslo",
            "Přihlásit",
            "Jednorázové údaje nebyly přijaty: jsou neplatné, již použité nebo jim vypršela platnost. Vygenerujte si nové.",
        ],
        Lang::En => [
            "Log in with one-time credentials",
            "1. Open the page that generates one-time login credentials and log in there.",
            "Generate one-time credentials (opens in a new window)",
            &step2_en,
            "One-time name",
            "One-time password",
            "Log in",
            "The one-time credentials were not accepted: they are invalid, already used or expired. Generate new ones.",
        ],
    };
    let [title, step1, generate, step2, user, pass, submit, refused] = t;
    view::render(&view::DirectView {
        lang,
        title,
        failed: form.failed,
        refused,
        step1,
        generator_url: Some(form.generator_url).filter(|u| is_safe_url(u)),
        generate,
        step2,
        action: form.action,
        csrf: form.csrf,
        user,
        pass,
        submit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_has_csrf_fields_generator_link_and_escapes() {
        let form = DirectForm {
            action: "/.aisgate/direct/jip",
            csrf: "t<k>",
            generator_url: "https://idp/login?atsId=A&providerType=directAuth",
            minutes: 15,
            failed: true,
        };
        let html = direct_login_page(&form, Lang::Cs);
        assert!(html.contains("do 15 minut od zahájení"), "{html}");
        assert!(html.contains("name=\"csrf\" value=\"t&lt;k&gt;\""));
        assert!(html.contains("href=\"https://idp/login?atsId=A&amp;providerType=directAuth\" target=\"_blank\""));
        assert!(html.contains("type=\"password\""));
        assert!(html.contains("role=\"alert\""));
        let en = direct_login_page(
            &DirectForm { action: "/x", csrf: "t", generator_url: "javascript:alert(1)", minutes: 1, failed: false },
            Lang::En,
        );
        assert!(en.contains("within 1 minute of starting"), "{en}");
        assert!(!en.contains("javascript:"), "unsafe generator URLs are dropped");
        assert!(en.contains("One-time password") && !en.contains("role=\"alert\""));
    }
}
