//! The one-time-credential login form (JIP/KAAS "direct" login).
//!
//! The user obtains a one-time username and password from the IdP's generator page (opened in
//! a new tab) and types them here; the gateway — never the browser — redeems them. The form
//! carries a CSRF token bound to the browser's pre-login cookie. It never asks for the user's
//! real JIP credentials (direct v1 is deliberately not supported).

use super::{html_escape, is_safe_url, layout, paragraph, Lang};

/// Renders the form. `action` is the gateway's direct endpoint, `csrf` the token to echo,
/// `generator_url` the IdP page that issues one-time credentials, `failed` whether the last
/// attempt was refused.
pub fn direct_login_page(action: &str, csrf: &str, generator_url: &str, failed: bool, lang: Lang) -> String {
    let t = match lang {
        Lang::Cs => [
            "Přihlášení jednorázovými údaji",
            "1. Otevřete stránku pro vygenerování jednorázových přihlašovacích údajů a přihlaste se tam.",
            "Vygenerovat jednorázové údaje (otevře se v novém okně)",
            "2. Opište vygenerované jméno a heslo sem. Údaje platí 30 minut a lze je použít jen jednou.",
            "Jednorázové jméno",
            "Jednorázové heslo",
            "Přihlásit",
            "Jednorázové údaje nebyly přijaty: jsou neplatné, již použité nebo starší než 30 minut. Vygenerujte si nové.",
        ],
        Lang::En => [
            "Log in with one-time credentials",
            "1. Open the page that generates one-time login credentials and log in there.",
            "Generate one-time credentials (opens in a new window)",
            "2. Copy the generated name and password here. They are valid for 30 minutes and can be used once.",
            "One-time name",
            "One-time password",
            "Log in",
            "The one-time credentials were not accepted: they are invalid, already used or older than 30 minutes. Generate new ones.",
        ],
    };
    let [title, step1, generate, step2, user, pass, submit, refused] = t;
    let mut body = String::new();
    if failed {
        body.push_str(&format!("<p class=\"error\" role=\"alert\">{}</p>\n", html_escape(refused)));
    }
    body.push_str(&paragraph(step1));
    if is_safe_url(generator_url) {
        body.push_str(&format!(
            "<p><a class=\"button secondary\" href=\"{}\" target=\"_blank\" rel=\"noopener noreferrer\">{}</a></p>\n",
            html_escape(generator_url),
            html_escape(generate)
        ));
    }
    body.push_str(&paragraph(step2));
    body.push_str(&format!(
        "<form method=\"post\" action=\"{}\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\n\
         <p><label for=\"username\">{}</label><br><input id=\"username\" name=\"username\" required autocomplete=\"off\" spellcheck=\"false\"></p>\n\
         <p><label for=\"password\">{}</label><br><input id=\"password\" name=\"password\" type=\"password\" required autocomplete=\"off\"></p>\n\
         <button type=\"submit\" class=\"button\">{}</button>\n</form>\n",
        html_escape(action),
        html_escape(csrf),
        html_escape(user),
        html_escape(pass),
        html_escape(submit)
    ));
    layout(lang, title, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_has_csrf_fields_generator_link_and_escapes() {
        let html = direct_login_page(
            "/.aisgate/direct/jip",
            "t<k>",
            "https://idp/login?atsId=A&providerType=directAuth",
            true,
            Lang::Cs,
        );
        assert!(html.contains("name=\"csrf\" value=\"t&lt;k&gt;\""));
        assert!(html.contains("href=\"https://idp/login?atsId=A&amp;providerType=directAuth\" target=\"_blank\""));
        assert!(html.contains("type=\"password\""));
        assert!(html.contains("role=\"alert\""));
        let en = direct_login_page("/x", "t", "javascript:alert(1)", false, Lang::En);
        assert!(!en.contains("javascript:"), "unsafe generator URLs are dropped");
        assert!(en.contains("One-time password") && !en.contains("role=\"alert\""));
    }
}
