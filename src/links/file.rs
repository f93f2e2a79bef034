//! Link files for bulk import and export: CSV or JSON, chosen by the file name's extension.
//!
//! CSV: a header line `bsi,legacy_id,legacy_username,legacy_organisation` (the last two may be
//! empty), one link per line, no quoting (ids, login names and IČOs contain no commas; a
//! field with `"` or a wrong column count is refused with its line number). JSON: an array of
//! objects `{"bsi", "id", "username", "organisation"}` (what `export` writes).

use super::{Link, LinkError};
use crate::identity::LegacyAccount;

/// The CSV header.
pub const CSV_HEADER: &str = "bsi,legacy_id,legacy_username,legacy_organisation";

/// A file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated, with [`CSV_HEADER`].
    Csv,
    /// A JSON array.
    Json,
}

impl Format {
    /// By extension: `.csv` or `.json`.
    pub fn of(path: &std::path::Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

fn refuse(line: usize, reason: impl Into<String>) -> LinkError {
    LinkError::Import { line, reason: reason.into() }
}

fn nonempty(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

/// Parses and validates a whole file; returns the links and each one's line number. Any bad
/// entry (or a duplicate within the file) fails the whole file.
pub fn parse(text: &str, format: Format, now: u64) -> Result<(Vec<Link>, Vec<usize>), LinkError> {
    let mut links = Vec::new();
    let mut lines = Vec::new();
    match format {
        Format::Csv => {
            let mut rows = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
            match rows.next() {
                Some((_, header)) if header.trim().eq_ignore_ascii_case(CSV_HEADER) => {}
                _ => return Err(refuse(1, format!("the first line must be {CSV_HEADER:?}"))),
            }
            for (line, text) in rows {
                if text.trim().is_empty() {
                    continue;
                }
                if text.contains('"') {
                    return Err(refuse(line, "quoted fields are not supported"));
                }
                let fields: Vec<&str> = text.split(',').collect();
                let [bsi, id, username, org] = fields[..] else {
                    return Err(refuse(line, format!("expected 4 fields, found {}", fields.len())));
                };
                let legacy = LegacyAccount {
                    id: id.trim().to_owned(),
                    username: nonempty(username),
                    organisation: nonempty(org),
                };
                links.push(Link { bsi: bsi.trim().to_owned(), legacy, created_at: now, source: "import".into() });
                lines.push(line);
            }
        }
        Format::Json => {
            let parsed: Vec<Link> = serde_json::from_str(text).map_err(|e| refuse(e.line(), e.to_string()))?;
            for (i, mut link) in parsed.into_iter().enumerate() {
                link.source = "import".into();
                if link.created_at == 0 {
                    link.created_at = now;
                }
                links.push(link);
                lines.push(i + 1);
            }
        }
    }
    let mut seen_bsi = std::collections::HashSet::new();
    let mut seen_legacy = std::collections::HashSet::new();
    for (link, line) in links.iter().zip(&lines) {
        link.validate().map_err(|e| refuse(*line, e.to_string()))?;
        if !seen_bsi.insert(link.bsi.as_str()) {
            return Err(refuse(*line, "the bsi appears twice in the file"));
        }
        if !seen_legacy.insert(link.legacy.id.as_str()) {
            return Err(refuse(*line, "the legacy_id appears twice in the file"));
        }
    }
    Ok((links, lines))
}

/// Writes links in `format` (what [`parse`] reads back).
pub fn render(links: &[Link], format: Format) -> Result<String, LinkError> {
    match format {
        Format::Json => serde_json::to_string_pretty(links).map_err(|e| LinkError::Storage(e.to_string())),
        Format::Csv => {
            let mut out = format!("{CSV_HEADER}\n");
            for l in links {
                let fields = [
                    l.bsi.as_str(),
                    l.legacy.id.as_str(),
                    l.legacy.username.as_deref().unwrap_or(""),
                    l.legacy.organisation.as_deref().unwrap_or(""),
                ];
                if fields.iter().any(|f| f.contains([',', '"', '\n'])) {
                    return Err(LinkError::Storage(format!("link of {} cannot be written as CSV; use JSON", l.bsi)));
                }
                out.push_str(&fields.join(","));
                out.push('\n');
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_errors_name_the_line() {
        let text = format!("{CSV_HEADER}\nbsi-1,jip-1,novak,00007064\nbsi-2,jip-2\n");
        match parse(&text, Format::Csv, 0) {
            Err(LinkError::Import { line: 3, reason }) => assert!(reason.contains("expected 4 fields"), "{reason}"),
            other => panic!("{other:?}"),
        }
        let text = format!("{CSV_HEADER}\nbsi-1,jip-1,,\nbsi-2,jip-1,,\n");
        match parse(&text, Format::Csv, 0) {
            Err(LinkError::Import { line: 3, reason }) => {
                assert!(reason.contains("legacy_id appears twice"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        match parse("bsi;legacy\n", Format::Csv, 0) {
            Err(LinkError::Import { line: 1, .. }) => {}
            other => panic!("{other:?}"),
        }
        match parse(&format!("{CSV_HEADER}\n,jip-1,,\n"), Format::Csv, 0) {
            Err(LinkError::Import { line: 2, reason }) => assert!(reason.contains("bsi is empty"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn csv_and_json_round_trip() {
        let text = format!("{CSV_HEADER}\nbsi-1,jip-1,novak,00007064\nbsi-2,jip-2,,\n");
        let (links, lines) = parse(&text, Format::Csv, 7).unwrap();
        assert_eq!(lines, vec![2, 3]);
        assert_eq!(links[1].legacy.username, None);
        assert_eq!(render(&links, Format::Csv).unwrap(), text);
        let json = render(&links, Format::Json).unwrap();
        assert_eq!(parse(&json, Format::Json, 0).unwrap().0, links);
    }
}
