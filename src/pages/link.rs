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

/// The page for a refused link: what happened and what to do.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offer_has_skip_require_does_not_and_values_are_escaped() {
        let offer = link_page("/.aisgate/link", "tok\"<x>", "/desk?a=1&b=2", "JIP <KAAS>", false, Lang::Cs);
        assert!(offer.contains("lang=\"cs\"") && offer.contains("Teď ne"), "{offer}");
        assert!(offer.contains("value=\"skip\""), "{offer}");
        assert!(offer.contains("/desk?a=1&amp;b=2") && offer.contains("JIP &lt;KAAS&gt;"), "{offer}");
        assert!(!offer.contains("tok\"<x>"), "the token is escaped: {offer}");
        let require = link_page("/.aisgate/link", "t", "/desk", "JIP", true, Lang::En);
        assert!(require.contains("lang=\"en\"") && require.contains("cannot serve you without the link"), "{require}");
        assert!(!require.contains("value=\"skip\""), "{require}");
        // An unsafe return URL renders no form at all.
        let broken = link_page("/.aisgate/link", "t", "javascript:alert(1)", "JIP", false, Lang::En);
        assert!(!broken.contains("<form"), "{broken}");
    }

    #[test]
    fn every_refusal_explains_itself_in_both_languages() {
        for reason in [
            LinkRefusal::LegacyTaken,
            LinkRefusal::SessionChanged,
            LinkRefusal::Unavailable,
            LinkRefusal::NoLegacyLogin,
        ] {
            let cs = link_refused_page(reason, Lang::Cs);
            let en = link_refused_page(reason, Lang::En);
            assert!(cs.contains("lang=\"cs\"") && en.contains("lang=\"en\""));
            assert_ne!(cs, en);
        }
        assert!(
            link_refused_page(LinkRefusal::LegacyTaken, Lang::En).contains("already linked to another CAAIS account")
        );
    }
}
