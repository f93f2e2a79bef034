//! The one HTML escaper: askama applies it to every `{{ }}` of the page templates
//! (auto-escaping, configured in `askama.toml`), and [`super::html_escape`] exposes it to the
//! few hand-built pages outside `pages` (the simulators).
//!
//! Escaping `&`, `<`, `>`, `"` and `'` makes a value safe in HTML text and in quoted attribute
//! values, which are the only places the templates put values. The named-entity forms
//! (`&amp;`, `&quot;`, `&#x27;`) are the ones the pages always used, so output that tests,
//! fixtures and dashboards scrape stays byte-identical.

use std::fmt::{self, Write};

/// askama escaper for `.html` templates.
#[derive(Debug, Clone, Copy, Default)]
pub struct Html;

impl askama::filters::Escaper for Html {
    fn write_escaped_str<W: Write>(&self, mut dest: W, string: &str) -> fmt::Result {
        let mut last = 0;
        for (at, byte) in string.bytes().enumerate() {
            if let Some(entity) = entity(byte) {
                dest.write_str(&string[last..at])?;
                dest.write_str(entity)?;
                last = at + 1;
            }
        }
        dest.write_str(&string[last..])
    }

    fn write_escaped_char<W: Write>(&self, mut dest: W, c: char) -> fmt::Result {
        match u8::try_from(c).ok().and_then(entity) {
            Some(entity) => dest.write_str(entity),
            None => dest.write_char(c),
        }
    }
}

/// The entity for an ASCII byte that must be escaped (never a UTF-8 continuation byte, so
/// slicing at these positions stays on character boundaries).
fn entity(byte: u8) -> Option<&'static str> {
    match byte {
        b'&' => Some("&amp;"),
        b'<' => Some("&lt;"),
        b'>' => Some("&gt;"),
        b'"' => Some("&quot;"),
        b'\'' => Some("&#x27;"),
        _ => None,
    }
}
