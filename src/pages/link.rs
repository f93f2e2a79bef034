//! The account-link pages: the confirmation a CAAIS user without a link to a legacy JIP/KAAS
//! account meets (offer or require), and the refusals. Plain text only; the forms POST back to
//! the gateway with a CSRF token bound to the session.

use askama::Template;

use super::{is_safe_url, message_page, view, Lang};

#[derive(Template)]
#[template(path = "link.html")]
struct LinkView<'a> {
    lang: Lang,
    title: &'a str,
    paragraphs: Vec<&'a str>,
    action: &'a str,
    csrf: &'a str,
    return_to: &'a str,
    confirm: &'a str,
    skip: Option<&'a str>,
}

/// The confirmation page: `required` leaves out the "skip" button. `legacy` is the legacy
/// provider's display name.
pub fn link_page(action: &str, csrf: &str, return_to: &str, legacy: &str, required: bool, lang: Lang) -> String {
    let (title, why, how, must, confirm, skip) = match lang {
        Lang::Cs => (
            "Propojení s účtem JIP/KAAS",
            "Tato aplikace dosud znala uživatele podle jejich účtu JIP/KAAS. Váš účet CAAIS s ním zatím není propojen.",
            format!("Potvrďte prosím jednou, že jste vlastníkem účtu, přihlášením přes {legacy}. Poté budete pokračovat do aplikace."),
            "Bez propojení vás aplikace nemůže obsloužit.",
            "Propojit přihlášením přes JIP/KAAS",
            "Teď ne",
        ),
        Lang::En => (
            "Link your JIP/KAAS account",
            "This application used to know its users by their JIP/KAAS account. Your CAAIS account is not linked to one yet.",
            format!("Please confirm once that the account is yours by logging in with {legacy}. You will then continue to the application."),
            "The application cannot serve you without the link.",
            "Link by logging in with JIP/KAAS",
            "Not now",
        ),
    };
    let mut paragraphs = vec![why, how.as_str()];
    if required {
        paragraphs.push(must);
    }
    if !is_safe_url(action) || !is_safe_url(return_to) {
        return message_page(title, &paragraphs, lang);
    }
    let skip = (!required).then_some(skip);
    view::render(&LinkView { lang, title, paragraphs, action, csrf, return_to, confirm, skip })
}

/// Why a link was not made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkRefusal {
    /// The legacy account is linked to another CAAIS user.
    LegacyTaken,
    /// The confirmation no longer belongs to this browser's CAAIS session (logged out, another
    /// session, expired).
    SessionChanged,
    /// The link store is unavailable.
    Unavailable,
    /// `require` and the app has no legacy login to confirm with.
    NoLegacyLogin,
}

/// The page for a refused link; `continue_url` (the app, when it can be used without the
/// link) becomes a button.
pub fn link_refused_page(reason: LinkRefusal, lang: Lang) -> String {
    let (title, text, todo) = match (reason, lang) {
        (LinkRefusal::LegacyTaken, Lang::Cs) => (
            "Účet JIP/KAAS je již propojen",
            "Účet JIP/KAAS, kterým jste se přihlásili, je již propojen s jiným účtem CAAIS. Jeden účet JIP/KAAS lze propojit jen s jedním účtem CAAIS.",
            "Pokud jde o omyl, obraťte se na správce aplikace; propojení může zrušit.",
        ),
        (LinkRefusal::LegacyTaken, Lang::En) => (
            "The JIP/KAAS account is already linked",
            "The JIP/KAAS account you logged in with is already linked to another CAAIS account. One JIP/KAAS account can be linked to one CAAIS account only.",
            "If this is a mistake, contact the application's administrator; they can remove the link.",
        ),
        (LinkRefusal::SessionChanged, Lang::Cs) => (
            "Propojení nelze dokončit",
            "Potvrzení nepatří k vašemu současnému přihlášení CAAIS (mezitím jste se odhlásili nebo vypršela jeho platnost).",
            "Přihlaste se znovu přes CAAIS a propojení spusťte ze stránky, kterou vám aplikace nabídne.",
        ),
        (LinkRefusal::SessionChanged, Lang::En) => (
            "The link cannot be completed",
            "The confirmation does not belong to your current CAAIS login (you logged out meanwhile, or it expired).",
            "Log in with CAAIS again and start the link from the page the application shows you.",
        ),
        (LinkRefusal::Unavailable, Lang::Cs) => (
            "Propojení je dočasně nedostupné",
            "Úložiště propojení účtů právě nefunguje.",
            "Zkuste to prosím za chvíli znovu.",
        ),
        (LinkRefusal::Unavailable, Lang::En) => (
            "Account links are temporarily unavailable",
            "The account link store is not working right now.",
            "Please try again in a moment.",
        ),
        (LinkRefusal::NoLegacyLogin, Lang::Cs) => (
            "Aplikace vyžaduje propojení s účtem JIP/KAAS",
            "Tato aplikace obslouží jen uživatele CAAIS propojené s účtem JIP/KAAS a váš účet propojen není. Přihlášení přes JIP/KAAS zde již není k dispozici.",
            "Obraťte se na správce aplikace: propojení může založit za vás.",
        ),
        (LinkRefusal::NoLegacyLogin, Lang::En) => (
            "The application requires a linked JIP/KAAS account",
            "This application serves CAAIS users linked to a JIP/KAAS account only, and yours is not. The JIP/KAAS login is no longer available here.",
            "Contact the application's administrator: they can create the link for you.",
        ),
    };
    message_page(title, &[text, todo], lang)
}
