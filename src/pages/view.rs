//! The askama templates behind the page functions (`src/pages/templates/*.html`). Every
//! `{{ value }}` in them is escaped by [`super::escape::Html`]; only the constant style sheet
//! is inserted with `|safe`. The structs hold plain text: nothing here builds markup.

use askama::Template;

use super::Lang;

/// A button-styled link. Built only from URLs that passed [`super::is_safe_url`].
pub(super) struct Link<'a> {
    /// `button` or `button secondary`.
    pub class: &'static str,
    /// Target (escaped in the template).
    pub url: &'a str,
    /// Text (escaped in the template).
    pub label: &'a str,
}

/// Error page body (`error.html`).
#[derive(Template)]
#[template(path = "error.html")]
pub(super) struct ErrorView<'a> {
    pub lang: Lang,
    pub title: &'a str,
    pub what: &'a str,
    /// "You are logged in as …" on the 403 page (issue 14 item 11).
    pub signed_in: Option<String>,
    pub todo: &'a str,
    pub links: Vec<Link<'a>>,
    pub list_class: &'static str,
    pub error_code_label: &'a str,
    pub status: u16,
    pub request_id_label: &'a str,
    pub request_id: Option<String>,
    pub quote_request_id: &'a str,
}

/// Paragraphs and an optional list of button links (`message.html`): the chooser, the
/// logged-out page, a message page and the form page's refusal.
#[derive(Template)]
#[template(path = "message.html")]
pub(super) struct MessageView<'a> {
    pub lang: Lang,
    pub title: &'a str,
    pub paragraphs: Vec<&'a str>,
    pub links: Vec<Link<'a>>,
    pub list_class: &'static str,
}

/// The SAML HTTP-POST / form_post auto-form (`form_post.html`).
#[derive(Template)]
#[template(path = "form_post.html")]
pub(super) struct FormPostView<'a> {
    pub lang: Lang,
    pub title: &'a str,
    pub explain: &'a str,
    pub action: &'a str,
    pub fields: &'a [(&'a str, &'a str)],
    pub button: &'a str,
}

/// A question answered by a POST button or a cancel link (`confirm.html`): the cross-site
/// logout confirmation.
#[derive(Template)]
#[template(path = "confirm.html")]
pub(super) struct ConfirmView<'a> {
    pub lang: Lang,
    pub title: &'a str,
    pub explain: &'a str,
    pub action: &'a str,
    pub confirm: &'a str,
    pub cancel_url: Option<&'a str>,
    pub cancel: &'a str,
    /// "Log out on all devices": a second POST form, when offered.
    pub everywhere_action: Option<&'a str>,
    pub everywhere: &'a str,
}

/// The one-time-credential form (`direct.html`).
#[derive(Template)]
#[template(path = "direct.html")]
pub(super) struct DirectView<'a> {
    pub lang: Lang,
    pub title: &'a str,
    pub failed: bool,
    pub refused: &'a str,
    pub step1: &'a str,
    pub generator_url: Option<&'a str>,
    pub generate: &'a str,
    pub step2: &'a str,
    pub action: &'a str,
    pub csrf: &'a str,
    pub user: &'a str,
    pub pass: &'a str,
    pub submit: &'a str,
}

/// Served if a template ever fails to render (askama fails only when a `Display` impl does;
/// none of the values here can): a generic, static page rather than a panic.
const RENDER_FAILED: &str = "<!DOCTYPE html>\n<html lang=\"cs\">\n<head>\n<meta charset=\"utf-8\">\n\
<title>Chyba / Error</title>\n</head>\n<body>\n<main>\n<h1>Chyba / Error</h1>\n</main>\n</body>\n</html>\n";

/// Renders `view`, falling back to [`RENDER_FAILED`].
pub(super) fn render(view: &impl Template) -> String {
    view.render().unwrap_or_else(|_| RENDER_FAILED.to_owned())
}
