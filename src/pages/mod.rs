//! The gateway's own HTML pages: error pages, login-method chooser, logged-out
//! page, SAML HTTP-POST form page and a generic message page.
//!
//! These pages are shown to citizens and officials of Czech public
//! administration, so they are Czech by default and English only when the
//! browser prefers English, accessible (HTML5 landmarks, `lang`, headings,
//! high contrast, visible focus, responsive) and self-contained: inline CSS
//! only, no JavaScript and no external assets, so they work under a strict
//! `Content-Security-Policy` and leak nothing to third parties. The threats
//! are cross-site scripting through reflected values (request ids, URLs, SAML
//! form fields, provider labels) and information disclosure: every dynamic
//! string is HTML-escaped, link targets with a non-HTTP scheme
//! (`javascript:`, `data:` …) are dropped, and error pages never show internal
//! details — only a generic explanation, the status code and the request id.
//!
//! The HTML is askama templates (`templates/`, compiled in): every `{{ value }}`
//! is escaped by the template engine (`escape.rs`, set in `askama.toml`), so a
//! value cannot reach a page unescaped by forgetting a call.

mod direct;
mod escape;
pub mod link;
mod view;
pub use direct::{direct_login_page, DirectForm};

use ::http::StatusCode;

/// Language of a rendered page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    /// Czech, the default.
    #[default]
    Cs,
    /// English.
    En,
}

/// Maximum number of `Accept-Language` entries examined.
const MAX_LANGUAGE_ENTRIES: usize = 32;

/// Parses an RFC 9110 `qvalue` into thousandths (`"0.85"` → 850).
fn parse_qvalue(v: &str) -> Option<u16> {
    let (int, frac) = match v.split_once('.') {
        Some((i, f)) => (i, f),
        None => (v, ""),
    };
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let milli: u16 = frac.bytes().zip([100u16, 10, 1]).map(|(b, weight)| u16::from(b - b'0') * weight).sum();
    match int {
        "0" => Some(milli),
        "1" if milli == 0 => Some(1000),
        _ => None,
    }
}

impl Lang {
    /// Chooses the page language from an `Accept-Language` header value.
    ///
    /// The entry with the highest q-value among the languages we have wins;
    /// ties go to the entry listed first. `cs` and `sk` (Slovak readers are
    /// served Czech) and `*` select Czech, `en` selects English, region
    /// subtags are ignored (`en-GB` → English). Entries with `q=0` or a
    /// malformed q-value are ignored. With no header, no usable entry, or only
    /// other languages (`de`), the result is Czech.
    pub fn from_accept_language(header: Option<&str>) -> Lang {
        let Some(header) = header else {
            return Lang::Cs;
        };
        let mut best: Option<(u16, Lang)> = None;
        for entry in header.split(',').take(MAX_LANGUAGE_ENTRIES) {
            let mut parts = entry.split(';');
            let tag = parts.next().unwrap_or("").trim();
            let mut q = Some(1000u16);
            for param in parts {
                let param = param.trim();
                if let Some((name, value)) = param.split_once('=') {
                    if name.trim().eq_ignore_ascii_case("q") {
                        q = parse_qvalue(value.trim());
                    }
                }
            }
            let Some(q) = q.filter(|&q| q > 0) else {
                continue;
            };
            let primary = tag.split(['-', '_']).next().unwrap_or("");
            let lang = if primary.eq_ignore_ascii_case("cs") || primary.eq_ignore_ascii_case("sk") || primary == "*" {
                Lang::Cs
            } else if primary.eq_ignore_ascii_case("en") {
                Lang::En
            } else {
                continue;
            };
            let better = match best {
                Some((best_q, _)) => q > best_q,
                None => true,
            };
            if better {
                best = Some((q, lang));
            }
        }
        best.map(|(_, lang)| lang).unwrap_or(Lang::Cs)
    }

    /// The BCP 47 code used in the `lang` attribute: `"cs"` or `"en"`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Cs => "cs",
            Lang::En => "en",
        }
    }
}

/// What went wrong, as far as the user needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request was malformed (400).
    BadRequest,
    /// No such page (404).
    NotFound,
    /// The user is not authorized (403).
    Forbidden,
    /// The request body is too large (413).
    PayloadTooLarge,
    /// The identity provider reported the login token invalid or already
    /// used; the page offers "log in again" (400).
    LoginFailed,
    /// The login callback arrived without our pre-login cookie: the login was
    /// not started here (or cookies are blocked); the page offers a restart
    /// (400).
    LoginNotInitiated,
    /// The login took too long and its state expired (400).
    LoginExpired,
    /// The identity provider is unreachable (503).
    IdpUnavailable,
    /// The upstream application is unreachable (502).
    UpstreamUnavailable,
    /// The upstream application did not answer in time (504).
    UpstreamTimeout,
    /// The session store is unreachable (503).
    SessionStoreUnavailable,
    /// The client is rate-limited (429).
    TooManyRequests,
    /// Any other failure (500).
    Internal,
}

impl ErrorKind {
    /// Every error kind, in declaration order.
    pub const ALL: [ErrorKind; 13] = [
        ErrorKind::BadRequest,
        ErrorKind::NotFound,
        ErrorKind::Forbidden,
        ErrorKind::PayloadTooLarge,
        ErrorKind::LoginFailed,
        ErrorKind::LoginNotInitiated,
        ErrorKind::LoginExpired,
        ErrorKind::IdpUnavailable,
        ErrorKind::UpstreamUnavailable,
        ErrorKind::UpstreamTimeout,
        ErrorKind::SessionStoreUnavailable,
        ErrorKind::TooManyRequests,
        ErrorKind::Internal,
    ];

    /// The HTTP status code the error page is served with.
    ///
    /// The three login-callback failures use 400 rather than 401, because a
    /// 401 response must carry a `WWW-Authenticate` challenge, which does
    /// not exist for browser-redirect logins.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::BadRequest | ErrorKind::LoginFailed | ErrorKind::LoginNotInitiated | ErrorKind::LoginExpired => {
                StatusCode::BAD_REQUEST
            }
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::IdpUnavailable | ErrorKind::SessionStoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            ErrorKind::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether this error belongs to the login flow (its retry link is
    /// labelled "log in again" instead of "try again").
    pub fn is_login_error(self) -> bool {
        matches!(self, ErrorKind::LoginFailed | ErrorKind::LoginNotInitiated | ErrorKind::LoginExpired)
    }
}

/// Everything an error page shows. All strings are escaped when rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorPage<'a> {
    /// What went wrong.
    pub kind: ErrorKind,
    /// The request id the user can quote to support (shown verbatim,
    /// escaped, truncated to 128 characters).
    pub request_id: Option<&'a str>,
    /// Target of the "try again" / "log in again" link. Dropped if it has a
    /// scheme other than `http`/`https`.
    pub retry_url: Option<&'a str>,
    /// Target of the "home page" link. Dropped if it has a scheme other than
    /// `http`/`https`.
    pub home_url: Option<&'a str>,
}

impl<'a> ErrorPage<'a> {
    /// An error page of `kind` with no request id and no links.
    pub fn new(kind: ErrorKind) -> ErrorPage<'a> {
        ErrorPage { kind, request_id: None, retry_url: None, home_url: None }
    }
}

/// One way to log in, shown on the chooser page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderChoice<'a> {
    /// Human-readable name, e.g. "Identita občana (NIA)".
    pub label: &'a str,
    /// Where the choice leads (usually a gateway login URL). A choice whose
    /// URL has a scheme other than `http`/`https` is not shown.
    pub url: &'a str,
}

/// Maximum number of characters of a request id shown on a page.
const MAX_REQUEST_ID_CHARS: usize = 128;

/// Escapes `&`, `<`, `>`, `"` and `'` so that `s` is safe in HTML text and in
/// quoted attribute values: the escaper askama applies to the page templates
/// (`escape.rs`), for pages built outside them (the simulators).
pub fn html_escape(s: &str) -> String {
    use askama::filters::Escaper as _;
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    // Writing to a String cannot fail.
    let _ = escape::Html.write_escaped_str(&mut out, s);
    out
}

/// Whether `url` may be used as a link or form target: no whitespace,
/// control characters or backslashes, and either no scheme (a relative
/// reference) or `http`/`https`.
fn is_safe_url(url: &str) -> bool {
    if url.is_empty() || url.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\') {
        return false;
    }
    let before_delim = url.split(['/', '?', '#']).next().unwrap_or(url);
    match before_delim.split_once(':') {
        Some((scheme, _)) => scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http"),
        None => true,
    }
}

/// The inline style sheet embedded in every page's `<style>` element.
///
/// Public so the caller can compute its hash for a `Content-Security-Policy`
/// `style-src 'sha256-…'` source instead of allowing `'unsafe-inline'`.
/// Colours meet WCAG AA (text #1a1a1a on #fff ≈ 17:1, links and buttons
/// #0b4fa0 / #fff ≈ 7.8:1); focus is a 3 px dark outline.
pub const PAGE_STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;background:#eef0f3;color:#1a1a1a;font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,Helvetica,Arial,sans-serif;font-size:1rem;line-height:1.5}\
main{max-width:40rem;margin:2rem auto;padding:1.5rem 1.5rem 2rem;background:#fff;border-top:.5rem solid #0b4fa0;border-radius:.25rem}\
h1{font-size:1.75rem;line-height:1.25;margin:0 0 1rem}\
p{margin:0 0 1rem}\
a{color:#0b4fa0;text-decoration:underline;text-underline-offset:.15em}\
a:hover{color:#063a78;text-decoration-thickness:.15em}\
a:focus-visible,button:focus-visible{outline:3px solid #1a1a1a;outline-offset:3px}\
.actions,.choices{list-style:none;padding:0;margin:1.5rem 0 0}\
.actions{display:flex;flex-wrap:wrap;gap:.75rem}\
.choices{display:grid;gap:.75rem}\
.choices .button{display:block;text-align:center}\
.button{display:inline-block;min-height:2.75rem;padding:.625rem 1.25rem;background:#0b4fa0;color:#fff;border:2px solid #0b4fa0;border-radius:.25rem;font:inherit;font-weight:600;text-decoration:none;cursor:pointer}\
.button:hover{background:#063a78;border-color:#063a78;color:#fff}\
.button.secondary{background:#fff;color:#0b4fa0}\
.button.secondary:hover{background:#eef0f3;color:#063a78}\
.details{margin:1.5rem 0 0;padding:1rem;background:#eef0f3;border-radius:.25rem;font-size:.9375rem}\
.details dl{margin:0}\
.details dt{font-weight:600}\
.details dd{margin:0 0 .5rem;font-family:ui-monospace,Consolas,\"Liberation Mono\",monospace;overflow-wrap:anywhere}\
.details p{margin:0}\
@media (max-width:40rem){main{margin:0;min-height:100vh;border-radius:0}h1{font-size:1.5rem}}\
@media (forced-colors:active){.button{border:2px solid ButtonText}}";

/// A button link to `url`, or `None` if `url` is unsafe (dropped, never rendered).
fn button_link<'a>(url: &'a str, label: &'a str, secondary: bool) -> Option<view::Link<'a>> {
    let class = if secondary { "button secondary" } else { "button" };
    is_safe_url(url).then_some(view::Link { class, url, label })
}

/// A page of plain-text paragraphs and optional button links, in `message.html`.
fn message_view<'a>(
    lang: Lang,
    title: &'a str,
    paragraphs: Vec<&'a str>,
    links: Vec<view::Link<'a>>,
    list_class: &'static str,
) -> String {
    view::render(&view::MessageView { lang, title, paragraphs, links, list_class })
}

/// Title, explanation and advice for one error kind.
struct ErrorText {
    title: &'static str,
    what: &'static str,
    todo: &'static str,
}

fn error_text(kind: ErrorKind, lang: Lang) -> ErrorText {
    let (title, what, todo) = match (kind, lang) {
        (ErrorKind::BadRequest, Lang::Cs) => (
            "Neplatný požadavek",
            "Požadavek nebylo možné zpracovat, protože je neúplný nebo má nesprávný formát.",
            "Zkontrolujte adresu v prohlížeči, nebo přejděte na úvodní stránku a zkuste to znovu.",
        ),
        (ErrorKind::BadRequest, Lang::En) => (
            "Bad request",
            "The request could not be processed because it is incomplete or malformed.",
            "Check the address in your browser, or go to the home page and try again.",
        ),
        (ErrorKind::NotFound, Lang::Cs) => (
            "Stránka nebyla nalezena",
            "Požadovaná stránka neexistuje nebo byla přesunuta.",
            "Zkontrolujte, zda je adresa správná, nebo pokračujte na úvodní stránku.",
        ),
        (ErrorKind::NotFound, Lang::En) => (
            "Page not found",
            "The page you requested does not exist or has been moved.",
            "Check that the address is correct, or continue to the home page.",
        ),
        (ErrorKind::Forbidden, Lang::Cs) => (
            "Přístup odepřen",
            "K této stránce nemáte oprávnění.",
            "Pokud se domníváte, že byste přístup mít měli, obraťte se na správce aplikace nebo na podporu.",
        ),
        (ErrorKind::Forbidden, Lang::En) => (
            "Access denied",
            "You do not have permission to access this page.",
            "If you believe you should have access, contact the application administrator or support.",
        ),
        (ErrorKind::PayloadTooLarge, Lang::Cs) => (
            "Odesílaná data jsou příliš velká",
            "Požadavek obsahuje více dat, než služba dokáže přijmout.",
            "Zkuste odeslat menší soubor nebo méně dat najednou.",
        ),
        (ErrorKind::PayloadTooLarge, Lang::En) => (
            "The data sent is too large",
            "The request contains more data than the service accepts.",
            "Try sending a smaller file or less data at once.",
        ),
        (ErrorKind::LoginFailed, Lang::Cs) => (
            "Přihlášení se nezdařilo",
            "Přihlášení se nepodařilo ověřit: poskytovatel identity ho nepotvrdil, nebo odpověď doručená prohlížečem neprošla kontrolou. Platnost přihlašovacího požadavku mohla vypršet, nebo již byl použit.",
            "Zkuste se prosím přihlásit znovu.",
        ),
        (ErrorKind::LoginFailed, Lang::En) => (
            "Login failed",
            "Your login could not be confirmed: the identity provider did not confirm it, or the answer your browser delivered did not pass our checks. The login request may have expired or already been used.",
            "Please try logging in again.",
        ),
        (ErrorKind::LoginNotInitiated, Lang::Cs) => (
            "Přihlášení nelze dokončit",
            "Přihlášení nebylo zahájeno v tomto prohlížeči, nebo prohlížeč neuchoval údaje potřebné k jeho dokončení (cookies).",
            "Zahajte přihlášení znovu. Pokud problém přetrvává, povolte v prohlížeči cookies pro tento web.",
        ),
        (ErrorKind::LoginNotInitiated, Lang::En) => (
            "Login cannot be completed",
            "The login was not started in this browser, or your browser did not keep the data needed to complete it (cookies).",
            "Start the login again. If the problem persists, allow cookies for this site in your browser.",
        ),
        (ErrorKind::LoginExpired, Lang::Cs) => (
            "Platnost přihlášení vypršela",
            "Přihlašování trvalo příliš dlouho, a proto ho z bezpečnostních důvodů nelze dokončit.",
            "Zahajte prosím přihlášení znovu.",
        ),
        (ErrorKind::LoginExpired, Lang::En) => (
            "The login has expired",
            "The login took too long, so for security reasons it cannot be completed.",
            "Please start the login again.",
        ),
        (ErrorKind::IdpUnavailable, Lang::Cs) => (
            "Přihlašovací služba je dočasně nedostupná",
            "Poskytovatel identity momentálně neodpovídá.",
            "Zkuste to prosím znovu za několik minut.",
        ),
        (ErrorKind::IdpUnavailable, Lang::En) => (
            "The login service is temporarily unavailable",
            "The identity provider is not responding at the moment.",
            "Please try again in a few minutes.",
        ),
        (ErrorKind::UpstreamUnavailable, Lang::Cs) => (
            "Služba je dočasně nedostupná",
            "Aplikace, do které se pokoušíte vstoupit, momentálně neodpovídá.",
            "Zkuste to prosím znovu za několik minut.",
        ),
        (ErrorKind::UpstreamUnavailable, Lang::En) => (
            "The service is temporarily unavailable",
            "The application you are trying to reach is not responding at the moment.",
            "Please try again in a few minutes.",
        ),
        (ErrorKind::UpstreamTimeout, Lang::Cs) => (
            "Služba neodpověděla včas",
            "Aplikace neodpověděla v časovém limitu.",
            "Zkuste to prosím znovu. Pokud problém přetrvává, obraťte se na podporu.",
        ),
        (ErrorKind::UpstreamTimeout, Lang::En) => (
            "The service did not respond in time",
            "The application did not respond within the time limit.",
            "Please try again. If the problem persists, contact support.",
        ),
        (ErrorKind::SessionStoreUnavailable, Lang::Cs) => (
            "Služba je dočasně nedostupná",
            "Kvůli dočasnému technickému problému nebylo možné ověřit vaše přihlášení.",
            "Zkuste to prosím znovu za několik minut.",
        ),
        (ErrorKind::SessionStoreUnavailable, Lang::En) => (
            "The service is temporarily unavailable",
            "Your login could not be verified because of a temporary technical problem.",
            "Please try again in a few minutes.",
        ),
        (ErrorKind::TooManyRequests, Lang::Cs) => (
            "Příliš mnoho požadavků",
            "Z vašeho připojení přišlo v krátké době příliš mnoho požadavků.",
            "Chvíli prosím počkejte a zkuste to znovu.",
        ),
        (ErrorKind::TooManyRequests, Lang::En) => (
            "Too many requests",
            "Too many requests have been received from your connection in a short time.",
            "Please wait a moment and try again.",
        ),
        (ErrorKind::Internal, Lang::Cs) => (
            "Došlo k neočekávané chybě",
            "Při zpracování požadavku došlo k chybě na straně služby.",
            "Zkuste to prosím znovu. Pokud problém přetrvává, obraťte se na podporu.",
        ),
        (ErrorKind::Internal, Lang::En) => (
            "An unexpected error occurred",
            "An error occurred in the service while processing your request.",
            "Please try again. If the problem persists, contact support.",
        ),
    };
    ErrorText { title, what, todo }
}

/// Fixed labels used across pages.
struct Labels {
    try_again: &'static str,
    log_in_again: &'static str,
    home: &'static str,
    log_out: &'static str,
    switch_account: &'static str,
    error_code: &'static str,
    request_id: &'static str,
    quote_request_id: &'static str,
}

fn labels(lang: Lang) -> Labels {
    match lang {
        Lang::Cs => Labels {
            try_again: "Zkusit znovu",
            log_in_again: "Přihlásit se znovu",
            home: "Přejít na úvodní stránku",
            log_out: "Odhlásit se",
            switch_account: "Přihlásit se jiným účtem",
            error_code: "Kód chyby",
            request_id: "Identifikátor požadavku",
            quote_request_id: "Při kontaktu s podporou uveďte identifikátor požadavku.",
        },
        Lang::En => Labels {
            try_again: "Try again",
            log_in_again: "Log in again",
            home: "Go to the home page",
            log_out: "Log out",
            switch_account: "Log in with another account",
            error_code: "Error code",
            request_id: "Request ID",
            quote_request_id: "Please quote the request ID when contacting support.",
        },
    }
}

/// Renders an error page. Serve it with `page.kind.status()`.
///
/// Shows a title, what happened, what the user can do, optional
/// "try again"/"log in again" and home links, the status code and, if
/// given, the request id. Never shows internal details.
pub fn error_page(page: &ErrorPage, lang: Lang) -> String {
    let l = labels(lang);
    let retry_label = if page.kind.is_login_error() { l.log_in_again } else { l.try_again };
    let links = [
        page.retry_url.and_then(|u| button_link(u, retry_label, false)),
        page.home_url.and_then(|u| button_link(u, l.home, page.retry_url.is_some())),
    ]
    .into_iter()
    .flatten()
    .collect();
    render_error_view(page.kind, page.request_id, None, links, lang)
}

/// Puts an error page of `kind` together: its texts, the status code, `links`, who is
/// signed in (the 403 page only) and the request id, cut to [`MAX_REQUEST_ID_CHARS`] and
/// dropped when blank. Shared by [`error_page`] and [`forbidden_page`] so that both show
/// the request id under the same bound.
fn render_error_view(
    kind: ErrorKind,
    request_id: Option<&str>,
    signed_in: Option<String>,
    links: Vec<view::Link<'_>>,
    lang: Lang,
) -> String {
    let text = error_text(kind, lang);
    let l = labels(lang);
    let request_id = request_id
        .map(|id| id.chars().take(MAX_REQUEST_ID_CHARS).collect::<String>())
        .filter(|id| !id.trim().is_empty());
    view::render(&view::ErrorView {
        lang,
        title: text.title,
        what: text.what,
        signed_in,
        todo: text.todo,
        links,
        list_class: "actions",
        error_code_label: l.error_code,
        status: kind.status().as_u16(),
        request_id_label: l.request_id,
        request_id,
        quote_request_id: l.quote_request_id,
    })
}

/// Who is logged in, for the 403 page (issue 14 item 11): without it the page is a dead end
/// for a user who logged in with the wrong account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedIn<'a> {
    /// The user's display name, if the identity has one (escaped when rendered).
    pub name: Option<&'a str>,
    /// The display name of the provider the user logged in with (escaped).
    pub provider: &'a str,
    /// Target of the "log out" link.
    pub logout_url: &'a str,
    /// Target of the "log in with another account" link: a logout that then starts a login
    /// to the same app.
    pub switch_url: &'a str,
}

/// Renders the 403 page for a logged-in user: the error page of [`ErrorKind::Forbidden`]
/// plus who is logged in (name and provider) and links to log out and to log in with another
/// account. Links with an unsafe URL are dropped, like everywhere else.
pub fn forbidden_page(page: &ErrorPage, who: &SignedIn, lang: Lang) -> String {
    let l = labels(lang);
    let signed_in = match (who.name.filter(|n| !n.trim().is_empty()), lang) {
        (Some(name), Lang::Cs) => format!("Jste přihlášeni jako {name} ({}).", who.provider),
        (Some(name), Lang::En) => format!("You are logged in as {name} ({}).", who.provider),
        (None, Lang::Cs) => format!("Jste přihlášeni přes {}.", who.provider),
        (None, Lang::En) => format!("You are logged in with {}.", who.provider),
    };
    let links = [
        button_link(who.switch_url, l.switch_account, false),
        button_link(who.logout_url, l.log_out, true),
        page.home_url.and_then(|u| button_link(u, l.home, true)),
    ]
    .into_iter()
    .flatten()
    .collect();
    render_error_view(ErrorKind::Forbidden, page.request_id, Some(signed_in), links, lang)
}

/// Renders the "choose how to log in" page with one button per provider.
/// Choices with an unsafe URL are omitted; with no usable choice the page
/// says that no login method is available. `app` names the application the
/// user is entering (its display name, or host and path), so the user knows
/// which service asks them to log in (issue 14 item 14).
pub fn chooser_page(app: &str, choices: &[ProviderChoice], lang: Lang) -> String {
    let (title, entering, intro, none) = match lang {
        Lang::Cs => (
            "Zvolte způsob přihlášení",
            format!("Přihlašujete se do aplikace {app}."),
            "Vyberte, jakým způsobem se chcete přihlásit.",
            "Momentálně není k dispozici žádný způsob přihlášení. Zkuste to prosím později.",
        ),
        Lang::En => (
            "Choose how to log in",
            format!("You are logging in to {app}."),
            "Select the way you want to log in.",
            "No login method is available at the moment. Please try again later.",
        ),
    };
    let links: Vec<_> = choices.iter().filter_map(|c| button_link(c.url, c.label, false)).collect();
    let paragraph = if links.is_empty() { none } else { intro };
    message_view(lang, title, vec![&entering, paragraph], links, "choices")
}

/// Renders the "you have been logged out" page. It never logs in again by
/// itself (no refresh, no script); the optional link lets the user do so.
pub fn logged_out_page(login_again_url: Option<&str>, lang: Lang) -> String {
    let l = labels(lang);
    let (title, what, advice) = match lang {
        Lang::Cs => (
            "Odhlášení proběhlo úspěšně",
            "Vaše relace byla ukončena.",
            "Pokud používáte sdílený počítač, doporučujeme zavřít všechna okna prohlížeče.",
        ),
        Lang::En => (
            "You have been logged out",
            "Your session has ended.",
            "If you are using a shared computer, we recommend closing all browser windows.",
        ),
    };
    let links = login_again_url.and_then(|u| button_link(u, l.log_in_again, false)).into_iter().collect();
    message_view(lang, title, vec![what, advice], links, "actions")
}

/// Renders the confirmation of a logout that another site started (a cross-site GET, e.g.
/// a link or image on a foreign page): the question "Log out?", a POST button to `action`
/// that logs out, and a "Cancel" link back to `cancel_url` (the app). Nothing happens until
/// the user presses the button (issue 14 item 12). An unsafe `action` renders no form; an
/// unsafe `cancel_url` no cancel link.
pub fn logout_confirm_page(action: &str, cancel_url: Option<&str>, lang: Lang) -> String {
    let l = labels(lang);
    let (title, explain, cancel, broken, everywhere) = match lang {
        Lang::Cs => (
            "Odhlásit se?",
            "Odhlášení vyžádala jiná stránka. Chcete se opravdu odhlásit?",
            "Zrušit",
            "Odhlášení nelze dokončit. Zkuste to prosím znovu.",
            "Odhlásit se na všech zařízeních",
        ),
        Lang::En => (
            "Log out?",
            "Another page asked to log you out. Do you really want to log out?",
            "Cancel",
            "The logout cannot be completed. Please try again.",
            "Log out on all devices",
        ),
    };
    if !is_safe_url(action) {
        return message_view(lang, title, vec![broken], Vec::new(), "actions");
    }
    let cancel_url = cancel_url.filter(|u| is_safe_url(u));
    // "Log out on all devices" ends every session of this user (`everywhere=1`); not offered
    // twice when the action already asks for it.
    let everywhere_url = (!action.contains("everywhere=1"))
        .then(|| format!("{action}{}everywhere=1", if action.contains('?') { '&' } else { '?' }));
    let everywhere_action = everywhere_url.as_deref();
    let confirm = l.log_out;
    view::render(&view::ConfirmView {
        lang,
        title,
        explain,
        action,
        confirm,
        cancel_url,
        cancel,
        everywhere_action,
        everywhere,
    })
}

/// Renders a POST form to `action` carrying `fields` as hidden inputs, for
/// the SAML HTTP-POST binding.
///
/// Without JavaScript a POST cannot be submitted automatically (a
/// `<meta http-equiv="refresh">` can only issue a GET), so the page shows a
/// short explanation and a prominent, autofocused "Continue" button — the
/// user presses Enter or clicks. Field names and values and the action are
/// escaped. If `action` has a scheme other than `http`/`https`, no form is
/// rendered and the page says the redirect cannot be completed.
pub fn form_post_page(action: &str, fields: &[(&str, &str)], lang: Lang) -> String {
    let (title, explain, button, broken) = match lang {
        Lang::Cs => (
            "Přesměrování k poskytovateli identity",
            "Pro pokračování stiskněte tlačítko Pokračovat. Prohlížeč odešle požadavek poskytovateli identity.",
            "Pokračovat",
            "Přesměrování nelze dokončit. Zkuste to prosím znovu.",
        ),
        Lang::En => (
            "Redirecting to the identity provider",
            "To proceed, press the Continue button. Your browser will send the request to the identity provider.",
            "Continue",
            "The redirect cannot be completed. Please try again.",
        ),
    };
    post_form(lang, (title, explain, button, broken), action, fields)
}

/// Renders the form POST that a login interrupted (its session had expired), to be sent on
/// now that the user is logged in: the saved `fields` as hidden inputs posted to `action`
/// (the validated return URL) with a visible "Continue" button. Nothing submits it for the
/// user: the gateway's pages run no script (CSP `default-src 'none'`), and a second look
/// before a form is sent again is no bad thing. Escaped and refused like [`form_post_page`].
pub fn saved_post_page(action: &str, fields: &[(&str, &str)], lang: Lang) -> String {
    let texts = match lang {
        Lang::Cs => (
            "Odeslání formuláře",
            "Přihlášení proběhlo. Formulář, který jste odeslali před přihlášením, odešlete stisknutím tlačítka Pokračovat.",
            "Pokračovat",
            "Formulář nelze odeslat. Vyplňte jej prosím znovu.",
        ),
        Lang::En => (
            "Sending your form",
            "You are signed in. Press Continue to send the form you submitted before signing in.",
            "Continue",
            "The form cannot be sent. Please fill it in again.",
        ),
    };
    post_form(lang, texts, action, fields)
}

/// The hidden-field POST form of [`form_post_page`] and [`saved_post_page`]: `texts` are the
/// title, explanation, button label and the message shown instead for an unsafe `action`.
fn post_form(
    lang: Lang,
    (title, explain, button, broken): (&str, &str, &str, &str),
    action: &str,
    fields: &[(&str, &str)],
) -> String {
    if !is_safe_url(action) {
        return message_view(lang, title, vec![broken], Vec::new(), "actions");
    }
    view::render(&view::FormPostView { lang, title, explain, action, fields, button })
}

/// Renders the page of an app in maintenance (served with 503 and `Retry-After`): the
/// operator's `message`, if any, and when to come back. The message is plain text.
pub fn maintenance_page(message: Option<&str>, lang: Lang) -> String {
    let (title, what, later) = match lang {
        Lang::Cs => (
            "Probíhá údržba",
            "Aplikace je dočasně nedostupná kvůli plánované údržbě.",
            "Zkuste to prosím znovu později.",
        ),
        Lang::En => (
            "Under maintenance",
            "The application is temporarily unavailable for scheduled maintenance.",
            "Please try again later.",
        ),
    };
    let mut paragraphs = vec![what];
    paragraphs.extend(message.filter(|m| !m.trim().is_empty()));
    paragraphs.push(later);
    message_view(lang, title, paragraphs, Vec::new(), "actions")
}

/// Renders a simple informational page: a title and paragraphs, all plain
/// text (escaped by the template, so callers cannot inject markup).
pub fn message_page(title: &str, paragraphs: &[&str], lang: Lang) -> String {
    message_view(lang, title, paragraphs.to_vec(), Vec::new(), "actions")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Injection payload without whitespace, so that it also passes the URL
    /// safety check and must be neutralized by escaping alone.
    const XSS: &str = "\"'><script>alert(1)</script><svg/onload=alert(1)>";

    fn all_pages() -> Vec<String> {
        let mut pages = Vec::new();
        for lang in [Lang::Cs, Lang::En] {
            for kind in ErrorKind::ALL {
                pages.push(error_page(&ErrorPage::new(kind), lang));
                pages.push(error_page(
                    &ErrorPage {
                        kind,
                        request_id: Some("req-1"),
                        retry_url: Some("/.aisgate/login"),
                        home_url: Some("/"),
                    },
                    lang,
                ));
            }
            pages.push(chooser_page("Portál", &[ProviderChoice { label: "NIA", url: "/.aisgate/login/nia" }], lang));
            pages.push(chooser_page("Portál", &[], lang));
            pages.push(logged_out_page(Some("/.aisgate/login"), lang));
            pages.push(logged_out_page(None, lang));
            pages.push(form_post_page("/.aisgate/acs", &[("SAMLRequest", "abc")], lang));
            pages.push(logout_confirm_page("/.aisgate/logout", Some("/desk"), lang));
            pages.push(logout_confirm_page("/.aisgate/logout", None, lang));
            pages.push(maintenance_page(Some("message"), lang));
            let who = SignedIn {
                name: Some("Ing. Jiřina Nováková"),
                provider: "NIA",
                logout_url: "/.aisgate/logout",
                switch_url: "/.aisgate/logout?switch=1&return=%2Fdesk",
            };
            pages.push(forbidden_page(&ErrorPage::new(ErrorKind::Forbidden), &who, lang));
            pages.push(message_page("Titulek", &["Text"], lang));
        }
        pages
    }

    /// Elements and attributes the pages may contain; anything else (a
    /// `<script>`, an `<img src>`, an `onerror=` handler) means escaping failed.
    const ALLOWED_TAGS: &[&str] = &[
        "!DOCTYPE", "html", "head", "meta", "title", "style", "body", "main", "h1", "p", "a", "ul", "li", "div", "dl",
        "dt", "dd", "form", "input", "button",
    ];
    const ALLOWED_ATTRS: &[&str] = &[
        "html",
        "lang",
        "charset",
        "name",
        "content",
        "class",
        "href",
        "method",
        "action",
        "type",
        "value",
        "autofocus",
    ];

    /// Parses every tag of `html` and asserts that only allowed elements and
    /// attributes occur, that attribute values are double-quoted and contain
    /// no raw `<`, `>` or `"`, and that there is no script, external asset or
    /// refresh.
    fn assert_no_active_content(html: &str) {
        let lower = html.to_ascii_lowercase();
        for needle in ["javascript:", "url(", "@import", "http-equiv", "refresh"] {
            assert!(!lower.contains(needle), "found {needle:?} in:\n{html}");
        }
        let mut rest = html;
        while let Some(start) = rest.find('<') {
            let after = &rest[start + 1..];
            let end = after.find('>').unwrap_or_else(|| panic!("unclosed tag in {html}"));
            let tag = &after[..end];
            rest = &after[end + 1..];
            let closing = tag.starts_with('/');
            let tag = tag.strip_prefix('/').unwrap_or(tag);
            let name_end = tag.find([' ', '\n']).unwrap_or(tag.len());
            let name = &tag[..name_end];
            assert!(ALLOWED_TAGS.contains(&name), "tag {name:?} in:\n{html}");
            if name == "style" && !closing {
                let close = rest.find("</style>").unwrap_or_else(|| panic!("no </style>"));
                rest = &rest[close..];
            }
            let mut attrs = &tag[name_end..];
            loop {
                attrs = attrs.trim_start();
                if attrs.is_empty() {
                    break;
                }
                let n_end = attrs.find(['=', ' ']).unwrap_or(attrs.len());
                let attr = &attrs[..n_end];
                assert!(ALLOWED_ATTRS.contains(&attr), "attribute {attr:?} in {tag:?}");
                attrs = &attrs[n_end..];
                if let Some(v) = attrs.strip_prefix("=\"") {
                    let v_end = v.find('"').unwrap_or_else(|| panic!("unquoted {tag:?}"));
                    assert!(!v[..v_end].contains(['<', '>']), "raw <> in {tag:?}");
                    attrs = &v[v_end + 1..];
                } else {
                    assert!(!attrs.starts_with('='), "unquoted value in {tag:?}");
                }
            }
        }
    }

    #[test]
    fn language_negotiation_table() {
        let cases: &[(Option<&str>, Lang)] = &[
            (None, Lang::Cs),
            (Some(""), Lang::Cs),
            (Some("cs"), Lang::Cs),
            (Some("en"), Lang::En),
            (Some("en-GB"), Lang::En),
            (Some("en-US,en;q=0.9"), Lang::En),
            (Some("EN-us"), Lang::En),
            (Some("en_GB"), Lang::En),
            (Some("cs,en"), Lang::Cs),
            (Some("en,cs"), Lang::En),
            (Some("en;q=0.9, cs;q=0.8"), Lang::En),
            (Some("cs;q=0.8, en;q=0.9"), Lang::En),
            (Some("en;q=0.8, cs;q=0.9"), Lang::Cs),
            (Some("cs-CZ,cs;q=0.9,en;q=0.8"), Lang::Cs),
            (Some("de"), Lang::Cs),
            (Some("de-DE,de;q=0.9"), Lang::Cs),
            (Some("de, en;q=0.5"), Lang::En),
            (Some("de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7"), Lang::En),
            (Some("en;q=0"), Lang::Cs),
            (Some("en;q=0.000"), Lang::Cs),
            (Some("en;q=0.001"), Lang::En),
            (Some("en;q=1.000"), Lang::En),
            (Some("en;q=abc"), Lang::Cs),
            (Some("en;q=1.5"), Lang::Cs),
            (Some("en;q=0.1234"), Lang::Cs),
            (Some("en;Q=0.5"), Lang::En),
            (Some("en ; q = 0.5 , cs ; q = 0.4"), Lang::En),
            (Some("*"), Lang::Cs),
            (Some("*;q=0.5, en;q=0.6"), Lang::En),
            (Some("en;q=0.4, *;q=0.5"), Lang::Cs),
            (Some("sk, en;q=0.9"), Lang::Cs),
            (Some("fr;q=0.9, en;q=0.8, cs;q=0.8"), Lang::En),
            (Some("enx"), Lang::Cs),
            (Some(",,,;;;=="), Lang::Cs),
            (Some("en;level=1"), Lang::En),
        ];
        for (header, expected) in cases {
            assert_eq!(Lang::from_accept_language(*header), *expected, "{header:?}");
        }
    }

    #[test]
    fn language_negotiation_handles_huge_headers() {
        let header = format!("{}en", "de,".repeat(10_000));
        // Only the first entries are examined; none of them is usable.
        assert_eq!(Lang::from_accept_language(Some(&header)), Lang::Cs);
    }

    #[test]
    fn language_codes() {
        assert_eq!(Lang::Cs.code(), "cs");
        assert_eq!(Lang::En.code(), "en");
        assert_eq!(Lang::default(), Lang::Cs);
    }

    #[test]
    fn error_kinds_map_to_expected_statuses() {
        let expected = [
            (ErrorKind::BadRequest, 400),
            (ErrorKind::NotFound, 404),
            (ErrorKind::Forbidden, 403),
            (ErrorKind::PayloadTooLarge, 413),
            (ErrorKind::LoginFailed, 400),
            (ErrorKind::LoginNotInitiated, 400),
            (ErrorKind::LoginExpired, 400),
            (ErrorKind::IdpUnavailable, 503),
            (ErrorKind::UpstreamUnavailable, 502),
            (ErrorKind::UpstreamTimeout, 504),
            (ErrorKind::SessionStoreUnavailable, 503),
            (ErrorKind::TooManyRequests, 429),
            (ErrorKind::Internal, 500),
        ];
        assert_eq!(expected.len(), ErrorKind::ALL.len());
        for (kind, status) in expected {
            assert_eq!(kind.status().as_u16(), status, "{kind:?}");
        }
    }

    #[test]
    fn every_error_kind_renders_in_both_languages_with_status_and_request_id() {
        for kind in ErrorKind::ALL {
            for (lang, id_label) in [(Lang::Cs, "Identifikátor požadavku"), (Lang::En, "Request ID")] {
                let html = error_page(
                    &ErrorPage {
                        kind,
                        request_id: Some("abc-123"),
                        retry_url: Some("/retry"),
                        home_url: Some("/home"),
                    },
                    lang,
                );
                assert!(html.contains(&format!("<html lang=\"{}\">", lang.code())));
                assert!(html.contains(id_label), "{kind:?} {lang:?}");
                assert!(html.contains("<dd>abc-123</dd>"), "{kind:?} {lang:?}");
                let status = kind.status().as_u16().to_string();
                assert!(html.contains(&format!("<dd>{status}</dd>")), "{kind:?}");
                assert!(html.contains("href=\"/retry\""));
                assert!(html.contains("href=\"/home\""));
            }
            let cs = error_text(kind, Lang::Cs);
            let en = error_text(kind, Lang::En);
            assert_ne!(cs.title, en.title, "{kind:?}");
            assert_ne!(cs.what, en.what, "{kind:?}");
            assert_ne!(cs.todo, en.todo, "{kind:?}");
        }
    }

    #[test]
    fn error_page_without_request_id_omits_it() {
        for lang in [Lang::Cs, Lang::En] {
            let html = error_page(&ErrorPage::new(ErrorKind::Internal), lang);
            assert!(!html.contains("Identifikátor požadavku"));
            assert!(!html.contains("Request ID"));
            assert!(!html.contains("<a "), "no links without urls");
            assert!(html.contains("<dd>500</dd>"));
        }
        let blank = ErrorPage { request_id: Some("   "), ..ErrorPage::new(ErrorKind::Internal) };
        assert!(!error_page(&blank, Lang::Cs).contains("Identifikátor požadavku"));
    }

    #[test]
    fn error_page_escapes_injected_request_id_and_urls() {
        for kind in ErrorKind::ALL {
            for lang in [Lang::Cs, Lang::En] {
                let retry = format!("/x{XSS}");
                let home = format!("/h{XSS}");
                let html = error_page(
                    &ErrorPage { kind, request_id: Some(XSS), retry_url: Some(&retry), home_url: Some(&home) },
                    lang,
                );
                assert_no_active_content(&html);
                assert!(html.contains("&lt;script&gt;"), "{kind:?}");
                assert!(html.contains("href=\"/x&quot;&#x27;&gt;&lt;script&gt;"), "{kind:?}");
                assert!(html.contains("href=\"/h&quot;&#x27;&gt;&lt;script&gt;"), "{kind:?}");
                assert!(html.contains("<dd>&quot;&#x27;&gt;&lt;script&gt;"), "{kind:?}");
            }
        }
    }

    #[test]
    fn error_page_drops_links_with_dangerous_schemes() {
        for url in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "java\tscript:alert(1)",
            " javascript:alert(1)",
            "data:text/html,<script>",
            "vbscript:x",
            "\\\\evil",
            "",
        ] {
            let html = error_page(
                &ErrorPage { retry_url: Some(url), home_url: Some(url), ..ErrorPage::new(ErrorKind::LoginFailed) },
                Lang::Cs,
            );
            assert!(!html.contains("<a "), "{url:?}");
            assert_no_active_content(&html);
        }
    }

    #[test]
    fn error_page_keeps_http_and_relative_links() {
        for url in ["/a?b=1&c=2", "https://idp.example/login", "HTTP://x", "a/b"] {
            let html = error_page(&ErrorPage { retry_url: Some(url), ..ErrorPage::new(ErrorKind::Internal) }, Lang::En);
            assert!(html.contains(&format!("href=\"{}\"", html_escape(url))), "{url}");
        }
    }

    #[test]
    fn long_request_id_is_truncated() {
        let id = "x".repeat(10_000);
        let html = error_page(&ErrorPage { request_id: Some(&id), ..ErrorPage::new(ErrorKind::Internal) }, Lang::En);
        assert!(html.contains(&"x".repeat(MAX_REQUEST_ID_CHARS)));
        assert!(!html.contains(&"x".repeat(MAX_REQUEST_ID_CHARS + 1)));
    }

    #[test]
    fn login_errors_offer_log_in_again_and_others_try_again() {
        for kind in ErrorKind::ALL {
            let page = ErrorPage { retry_url: Some("/r"), ..ErrorPage::new(kind) };
            let cs = error_page(&page, Lang::Cs);
            let en = error_page(&page, Lang::En);
            if kind.is_login_error() {
                assert!(cs.contains("Přihlásit se znovu"), "{kind:?}");
                assert!(en.contains("Log in again"), "{kind:?}");
            } else {
                assert!(cs.contains("Zkusit znovu"), "{kind:?}");
                assert!(en.contains("Try again"), "{kind:?}");
            }
        }
    }

    #[test]
    fn czech_texts_use_proper_diacritics() {
        let page = |k| error_page(&ErrorPage::new(k), Lang::Cs);
        assert!(page(ErrorKind::LoginFailed).contains("Přihlášení se nezdařilo"));
        assert!(page(ErrorKind::UpstreamUnavailable).contains("Služba je dočasně nedostupná"));
        assert!(page(ErrorKind::LoginNotInitiated).contains("nebylo zahájeno"));
        assert!(logged_out_page(None, Lang::Cs).contains("Odhlášení proběhlo úspěšně"));
        assert!(chooser_page("Portál", &[], Lang::Cs).contains("Momentálně není"));
    }

    #[test]
    fn english_texts_are_used_for_english() {
        let html = error_page(&ErrorPage::new(ErrorKind::UpstreamTimeout), Lang::En);
        assert!(html.contains("The service did not respond in time"));
        assert!(logged_out_page(None, Lang::En).contains("You have been logged out"));
        assert!(chooser_page("Portál", &[], Lang::En).contains("No login method"));
    }

    #[test]
    fn every_page_has_accessible_skeleton() {
        for html in all_pages() {
            assert!(html.starts_with("<!DOCTYPE html>"));
            assert!(html.contains("<html lang=\"cs\">") || html.contains("<html lang=\"en\">"));
            assert!(html.contains("<meta charset=\"utf-8\">"));
            assert!(html.contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"));
            assert!(html.contains("<main>") && html.contains("</main>"));
            assert_eq!(html.matches("<h1>").count(), 1);
            assert!(html.contains("<title>") && !html.contains("<title></title>"));
            assert!(html.contains(":focus-visible"));
            assert!(html.contains("</html>"));
        }
    }

    #[test]
    fn no_page_references_external_assets_or_scripts() {
        for html in all_pages() {
            assert!(!html.contains("http://"), "{html}");
            assert!(!html.contains("https://"), "{html}");
            assert_no_active_content(&html);
        }
    }

    #[test]
    fn chooser_lists_every_safe_choice_in_order() {
        let html = chooser_page(
            "Portál",
            &[
                ProviderChoice { label: "Identita občana (NIA)", url: "/.aisgate/login/nia" },
                ProviderChoice { label: "JIP/KAAS", url: "/.aisgate/login/jip" },
            ],
            Lang::Cs,
        );
        assert!(html.contains("Zvolte způsob přihlášení"));
        let nia = html.find("Identita občana (NIA)");
        let jip = html.find("JIP/KAAS");
        assert!(matches!((nia, jip), (Some(a), Some(b)) if a < b));
        assert!(html.contains("href=\"/.aisgate/login/nia\""));
    }

    /// Issue 14 item 14: the chooser names the app the user is entering, in both languages.
    #[test]
    fn chooser_names_the_app_being_entered() {
        let choices = [ProviderChoice { label: "NIA", url: "/.aisgate/login?provider=nia" }];
        let cs = chooser_page("Spisová služba", &choices, Lang::Cs);
        assert!(cs.contains("<p>Přihlašujete se do aplikace Spisová služba.</p>"), "{cs}");
        let en = chooser_page("intranet.example.cz/desk/", &choices, Lang::En);
        assert!(en.contains("<p>You are logging in to intranet.example.cz/desk/.</p>"), "{en}");
        // Even with no usable choice the page says which app asked.
        assert!(chooser_page("Spisová služba", &[], Lang::Cs).contains("Spisová služba"));
    }

    #[test]
    fn chooser_escapes_labels_and_urls_and_drops_unsafe_choices() {
        let url = format!("/login{XSS}");
        let html = chooser_page(
            XSS,
            &[ProviderChoice { label: XSS, url: &url }, ProviderChoice { label: "evil", url: "javascript:alert(1)" }],
            Lang::En,
        );
        assert_no_active_content(&html);
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains(">evil<"));
        assert_eq!(html.matches("<a ").count(), 1);
    }

    #[test]
    fn chooser_with_only_unsafe_choices_says_none_available() {
        let html = chooser_page("Portál", &[ProviderChoice { label: "x", url: "data:x" }], Lang::En);
        assert!(html.contains("No login method is available"));
        assert!(!html.contains("<a "));
    }

    #[test]
    fn logged_out_page_never_logs_in_automatically() {
        for lang in [Lang::Cs, Lang::En] {
            for url in [None, Some("/.aisgate/login")] {
                let html = logged_out_page(url, lang);
                assert!(!html.to_ascii_lowercase().contains("refresh"));
                assert!(!html.contains("<form"));
                assert_no_active_content(&html);
            }
        }
        let html = logged_out_page(Some("/.aisgate/login"), Lang::Cs);
        assert!(html.contains("href=\"/.aisgate/login\""));
        assert!(html.contains("Přihlásit se znovu"));
        assert!(!logged_out_page(None, Lang::Cs).contains("<a "));
    }

    #[test]
    fn logged_out_page_escapes_login_url() {
        let url = format!("/l{XSS}");
        let html = logged_out_page(Some(&url), Lang::En);
        assert_no_active_content(&html);
        assert!(html.contains("&lt;script&gt;"));
    }

    #[test]
    fn form_post_page_has_form_fields_and_visible_button() {
        let html = form_post_page(
            "https://idp.example/saml/sso",
            &[("SAMLRequest", "PHNhbWw+"), ("RelayState", "abc")],
            Lang::Cs,
        );
        assert!(html.contains("<form method=\"post\" action=\"https://idp.example/saml/sso\">"));
        assert!(html.contains("<input type=\"hidden\" name=\"SAMLRequest\" value=\"PHNhbWw+\">"));
        assert!(html.contains("<input type=\"hidden\" name=\"RelayState\" value=\"abc\">"));
        assert!(html.contains("<button type=\"submit\" class=\"button\" autofocus>Pokračovat</button>"));
        assert_no_active_content(&html);
        // The form action is the only absolute URL: no external assets.
        let without_action = html.replace("https://idp.example/saml/sso", "");
        assert!(!without_action.contains("https://") && !without_action.contains("http://"));
        let en = form_post_page("https://idp.example/", &[], Lang::En);
        assert!(en.contains(">Continue</button>"));
    }

    #[test]
    fn form_post_page_escapes_action_names_and_values() {
        let action = format!("https://idp.example/{XSS}");
        let html = form_post_page(&action, &[(XSS, XSS), ("a&b", "c'd")], Lang::En);
        assert_no_active_content(&html);
        assert!(html.contains("name=\"a&amp;b\" value=\"c&#x27;d\""));
        assert_eq!(html.matches("<input").count(), 2);
    }

    #[test]
    fn form_post_page_refuses_unsafe_action() {
        for action in ["javascript:alert(1)", "data:text/html,x", ""] {
            let html = form_post_page(action, &[("SAMLRequest", "x")], Lang::Cs);
            assert!(!html.contains("<form"), "{action:?}");
            assert!(!html.contains("SAMLRequest"));
            assert!(html.contains("Přesměrování nelze dokončit"));
        }
    }

    fn who<'a>(name: Option<&'a str>, provider: &'a str) -> SignedIn<'a> {
        SignedIn {
            name,
            provider,
            logout_url: "/.aisgate/logout",
            switch_url: "/.aisgate/logout?switch=1&return=%2Fdesk%2Fadmin",
        }
    }

    /// Issue 14 item 11: the 403 page says who is logged in and offers a way out.
    #[test]
    fn forbidden_page_names_the_user_and_provider_and_offers_logout_and_another_account() {
        let page =
            ErrorPage { kind: ErrorKind::Forbidden, request_id: Some("r-1"), retry_url: None, home_url: Some("/desk") };
        let cs = forbidden_page(&page, &who(Some("Ing. Jiřina Nováková"), "Identita občana (NIA)"), Lang::Cs);
        assert!(cs.contains("<p>Jste přihlášeni jako Ing. Jiřina Nováková (Identita občana (NIA)).</p>"), "{cs}");
        assert!(cs.contains("href=\"/.aisgate/logout\">Odhlásit se</a>"), "{cs}");
        assert!(
            cs.contains("href=\"/.aisgate/logout?switch=1&amp;return=%2Fdesk%2Fadmin\">Přihlásit se jiným účtem</a>")
        );
        assert!(cs.contains("href=\"/desk\">Přejít na úvodní stránku</a>"));
        assert!(cs.contains("Přístup odepřen") && cs.contains("<dd>403</dd>"));
        let en = forbidden_page(&page, &who(None, "CAAIS"), Lang::En);
        assert!(en.contains("<p>You are logged in with CAAIS.</p>"), "{en}");
        assert!(en.contains(">Log out</a>") && en.contains(">Log in with another account</a>"));
        assert!(!en.contains("Jste přihlášeni"));
    }

    #[test]
    fn forbidden_page_escapes_the_name_and_provider_and_drops_unsafe_links() {
        let mut signed = who(Some(XSS), XSS);
        signed.logout_url = "javascript:alert(1)";
        let html = forbidden_page(&ErrorPage::new(ErrorKind::Forbidden), &signed, Lang::En);
        assert_no_active_content(&html);
        assert!(html.contains("You are logged in as &quot;&#x27;&gt;&lt;script&gt;"), "{html}");
        assert!(!html.contains(">Log out</a>"));
        assert!(html.contains(">Log in with another account</a>"));
    }

    /// Issue 10 item 5: the confirmation also offers "log out on all devices" as a second
    /// POST form (`everywhere=1`), once.
    #[test]
    fn logout_confirmation_offers_logging_out_on_all_devices() {
        let cs = logout_confirm_page("/.aisgate/logout?switch=1&return=%2Fdesk", None, Lang::Cs);
        assert!(cs.contains("action=\"/.aisgate/logout?switch=1&amp;return=%2Fdesk&amp;everywhere=1\""), "{cs}");
        assert!(cs.contains(">Odhlásit se na všech zařízeních</button>"), "{cs}");
        let en = logout_confirm_page("/.aisgate/logout", None, Lang::En);
        assert!(
            en.contains("action=\"/.aisgate/logout?everywhere=1\"") && en.contains(">Log out on all devices</button>")
        );
        let once = logout_confirm_page("/.aisgate/logout?everywhere=1", None, Lang::En);
        assert_eq!(once.matches("<form").count(), 1, "{once}");
    }

    #[test]
    fn maintenance_page_shows_the_escaped_message_in_both_languages() {
        let cs = maintenance_page(Some("Do 14:00 <b>migrace</b>"), Lang::Cs);
        assert!(
            cs.contains("<h1>Probíhá údržba</h1>") && cs.contains("<p>Do 14:00 &lt;b&gt;migrace&lt;/b&gt;</p>"),
            "{cs}"
        );
        let en = maintenance_page(None, Lang::En);
        assert!(en.contains("<h1>Under maintenance</h1>") && en.contains("Please try again later."), "{en}");
        assert_no_active_content(&maintenance_page(Some(XSS), Lang::En));
    }

    /// Issue 14 item 12: the cross-site logout confirmation asks "Log out?" with a Log out
    /// button and a Cancel link back to the app — not "Redirecting to the identity provider".
    #[test]
    fn logout_confirmation_asks_log_out_with_log_out_and_cancel() {
        let cs = logout_confirm_page("https://gw.example/.aisgate/logout", Some("/desk"), Lang::Cs);
        assert!(cs.contains("<title>Odhlásit se?</title>") && cs.contains("<h1>Odhlásit se?</h1>"), "{cs}");
        assert!(cs.contains("<form method=\"post\" action=\"https://gw.example/.aisgate/logout\">"));
        assert!(cs.contains("<button type=\"submit\" class=\"button\" autofocus>Odhlásit se</button>"));
        assert!(cs.contains("<a class=\"button secondary\" href=\"/desk\">Zrušit</a>"));
        assert!(!cs.contains("Přesměrování") && !cs.contains("Pokračovat"));
        let en = logout_confirm_page("/.aisgate/logout", Some("/desk"), Lang::En);
        assert!(en.contains("<h1>Log out?</h1>") && en.contains(">Log out</button>") && en.contains(">Cancel</a>"));
        assert!(!en.contains("Redirecting") && !en.contains("Continue"));
        // No cancel target (or an unsafe one): no cancel link; an unsafe action: no form.
        assert!(!logout_confirm_page("/.aisgate/logout", Some("javascript:x"), Lang::En).contains("Cancel"));
        assert!(!logout_confirm_page("javascript:x", Some("/desk"), Lang::En).contains("<form"));
        assert_no_active_content(&logout_confirm_page(&format!("/l{XSS}"), Some(&format!("/c{XSS}")), Lang::En));
    }

    #[test]
    fn message_page_escapes_title_and_paragraphs() {
        let html = message_page(XSS, &[XSS, "Druhý odstavec"], Lang::Cs);
        assert_no_active_content(&html);
        assert_eq!(html.matches("<p>").count(), 2);
        assert!(html.contains("<p>Druhý odstavec</p>"));
    }

    #[test]
    fn every_page_embeds_exactly_the_public_style_sheet() {
        for html in all_pages() {
            assert!(html.contains(&format!("<style>{PAGE_STYLE}</style>")));
        }
    }

    #[test]
    fn html_escape_escapes_all_special_characters() {
        assert_eq!(
            html_escape("<a href=\"x\" title='y'>&amp;</a>"),
            "&lt;a href=&quot;x&quot; title=&#x27;y&#x27;&gt;&amp;amp;&lt;/a&gt;"
        );
        assert_eq!(html_escape("Přihlášení"), "Přihlášení");
        assert_eq!(html_escape(""), "");
    }

    #[test]
    fn qvalue_parser_follows_rfc_grammar() {
        assert_eq!(parse_qvalue("1"), Some(1000));
        assert_eq!(parse_qvalue("1."), Some(1000));
        assert_eq!(parse_qvalue("1.000"), Some(1000));
        assert_eq!(parse_qvalue("0"), Some(0));
        assert_eq!(parse_qvalue("0.5"), Some(500));
        assert_eq!(parse_qvalue("0.05"), Some(50));
        assert_eq!(parse_qvalue("0.123"), Some(123));
        assert_eq!(parse_qvalue("1.001"), None);
        assert_eq!(parse_qvalue("2"), None);
        assert_eq!(parse_qvalue(".5"), None);
        assert_eq!(parse_qvalue("0.1234"), None);
        assert_eq!(parse_qvalue("-0"), None);
        assert_eq!(parse_qvalue(""), None);
    }
}

/// Tests of the template engine switch (issue 15, 13b): every page kind renders in both
/// languages, and user-controlled values are escaped by the templates.
#[cfg(test)]
mod template_tests {
    use super::*;

    /// Every page kind, rendered in `lang`, with its language marker (a text only that
    /// language's page has).
    fn page_kinds(lang: Lang) -> Vec<(&'static str, String, &'static str)> {
        let (cs, en) = (lang == Lang::Cs, lang == Lang::En);
        let pick = |c: &'static str, e: &'static str| {
            if cs {
                c
            } else if en {
                e
            } else {
                unreachable!()
            }
        };
        let form = DirectForm {
            action: "/.aisgate/direct/jip",
            csrf: "t",
            generator_url: "https://idp/",
            minutes: 5,
            failed: true,
        };
        vec![
            (
                "error",
                error_page(&ErrorPage::new(ErrorKind::LoginFailed), lang),
                pick("Přihlášení se nezdařilo", "Login failed"),
            ),
            (
                "chooser",
                chooser_page("Portál", &[ProviderChoice { label: "NIA", url: "/.aisgate/login?provider=nia" }], lang),
                pick("Zvolte způsob přihlášení", "Choose how to log in"),
            ),
            (
                "logged_out",
                logged_out_page(Some("/"), lang),
                pick("Odhlášení proběhlo úspěšně", "You have been logged out"),
            ),
            (
                "form_post",
                form_post_page("https://idp/sso", &[("SAMLRequest", "x")], lang),
                pick("Pokračovat", "Continue"),
            ),
            (
                "saved_post",
                saved_post_page("/app/form", &[("note", "x")], lang),
                pick("Odeslání formuláře", "Sending your form"),
            ),
            ("message", message_page("T", &["p"], lang), ""),
            ("direct", direct_login_page(&form, lang), pick("Jednorázové heslo", "One-time password")),
        ]
    }

    #[test]
    fn every_page_kind_renders_in_both_languages() {
        for lang in [Lang::Cs, Lang::En] {
            for (kind, html, marker) in page_kinds(lang) {
                assert!(html.contains(&format!("<html lang=\"{}\">", lang.code())), "{kind} {lang:?}: {html}");
                assert!(html.contains(marker), "{kind} {lang:?} lacks {marker:?}: {html}");
                assert!(html.trim_end().ends_with("</html>"), "{kind} {lang:?}");
                assert_eq!(html.matches("<h1>").count(), 1, "{kind} {lang:?}");
            }
        }
        // And the two languages differ (no page kind is served only in Czech).
        for ((kind, cs, _), (_, en, _)) in page_kinds(Lang::Cs).into_iter().zip(page_kinds(Lang::En)) {
            if kind != "message" {
                assert_ne!(cs, en, "{kind}");
            }
        }
    }

    /// A return URL, a provider's display name, a request id, form fields and a CSRF token
    /// carrying markup come out as text on every page kind.
    #[test]
    fn user_controlled_values_are_escaped_by_the_templates() {
        const SCRIPT: &str = "\"><script>alert(1)</script>";
        let return_url = format!("/.aisgate/login?return=/app{SCRIPT}");
        let pages = [
            error_page(
                &ErrorPage {
                    kind: ErrorKind::LoginExpired,
                    request_id: Some(SCRIPT),
                    retry_url: Some(&return_url),
                    home_url: Some(&return_url),
                },
                Lang::Cs,
            ),
            chooser_page("Portál", &[ProviderChoice { label: SCRIPT, url: &return_url }], Lang::En),
            logged_out_page(Some(&return_url), Lang::Cs),
            form_post_page(&return_url, &[(SCRIPT, SCRIPT)], Lang::En),
            saved_post_page(&return_url, &[(SCRIPT, SCRIPT)], Lang::Cs),
            message_page(SCRIPT, &[SCRIPT], Lang::Cs),
            direct_login_page(
                &DirectForm {
                    action: &return_url,
                    csrf: SCRIPT,
                    generator_url: &return_url,
                    minutes: 5,
                    failed: false,
                },
                Lang::En,
            ),
        ];
        for html in pages {
            assert!(!html.contains("<script"), "{html}");
            // Every occurrence is the escaped one: no attribute or element was broken out of.
            assert_eq!(html.matches("alert(1)").count(), html.matches("&quot;&gt;&lt;script&gt;alert(1)").count());
            assert!(html.contains("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
        }
    }
}
