//! Reading configuration files: the main file, its includes, and precise error locations.
//!
//! Every error an operator sees names `file:line:column`, whether it comes from TOML syntax,
//! an unknown key (serde `deny_unknown_fields`), a bad value, or a cross-field check.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Deserializer};

use super::{AppConfig, Config, ProviderConfig};

/// A place in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceLoc {
    /// The file.
    pub file: Arc<Path>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl Default for SourceLoc {
    fn default() -> Self {
        SourceLoc { file: Arc::from(Path::new("")), line: 1, column: 1 }
    }
}

impl fmt::Display for SourceLoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// A value together with where it was written.
#[derive(Debug)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Where its table starts.
    pub loc: SourceLoc,
    span: Range<usize>,
}

impl<T> std::ops::Deref for Located<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = toml::Spanned::<T>::deserialize(deserializer)?;
        let span = spanned.span();
        Ok(Located { value: spanned.into_inner(), loc: SourceLoc::default(), span })
    }
}

/// A configuration error at a known place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where.
    pub loc: SourceLoc,
    /// Why.
    pub message: String,
}

impl ConfigError {
    /// An error at `loc`.
    pub fn at(loc: &SourceLoc, message: impl Into<String>) -> ConfigError {
        ConfigError { loc: loc.clone(), message: message.into() }
    }

    /// An error about a whole file (line 1).
    pub fn file(file: &Path, message: impl Into<String>) -> ConfigError {
        ConfigError { loc: SourceLoc { file: file.into(), line: 1, column: 1 }, message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.loc, self.message)
    }
}

/// Where each key of the main file is written, by dotted path (`"session.keys"`,
/// `"session.keys[1]"`, `"admin.token_file"`), so an error found after parsing (a cross-field
/// check, a file the runtime cannot open) points at the key instead of at the file's first
/// line. Filled by [`load`]; empty for a configuration parsed some other way.
#[derive(Debug, Clone, Default)]
pub struct KeyLocs {
    keys: HashMap<String, (usize, usize)>,
}

impl KeyLocs {
    /// The keys of `source`, a file `toml::from_str` accepted.
    fn read(source: &str) -> KeyLocs {
        let mut locs = KeyLocs::default();
        if let Ok(root) = toml::de::DeTable::parse(source) {
            locs.table("", root.get_ref(), source);
        }
        locs
    }

    fn table(&mut self, prefix: &str, table: &toml::de::DeTable<'_>, source: &str) {
        for (key, value) in table.iter() {
            let path =
                if prefix.is_empty() { key.get_ref().to_string() } else { format!("{prefix}.{}", key.get_ref()) };
            // A `[table]` header starts before its key: the table is at its `[`.
            self.keys.insert(path.clone(), line_column(source, key.span().start.min(value.span().start)));
            self.value(&path, value, source);
        }
    }

    fn value(&mut self, path: &str, value: &toml::Spanned<toml::de::DeValue<'_>>, source: &str) {
        match value.get_ref() {
            toml::de::DeValue::Table(table) => self.table(path, table, source),
            toml::de::DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    self.keys.insert(item_path.clone(), line_column(source, item.span().start));
                    self.value(&item_path, item, source);
                }
            }
            _ => {}
        }
    }

    /// Where `key` (a dotted path) is written in `main_file`: the first of `keys` written
    /// there, else the nearest written parent of the first one (`[session]` for an unset
    /// `session.idle_timeout_secs`), else the file's first line.
    pub fn at(&self, main_file: &Path, keys: &[&str]) -> SourceLoc {
        let written = keys.iter().find_map(|k| self.keys.get(*k)).copied().or_else(|| {
            let mut path = keys.first().copied().unwrap_or_default();
            while let Some(cut) = path.rfind(['.', '[']) {
                path = &path[..cut];
                if let Some(&at) = self.keys.get(path) {
                    return Some(at);
                }
            }
            None
        });
        let (line, column) = written.unwrap_or((1, 1));
        SourceLoc { file: main_file.into(), line, column }
    }
}

/// The shape of an included file: only apps and providers.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IncludeFile {
    #[serde(default)]
    provider: Vec<Located<ProviderConfig>>,
    #[serde(default)]
    app: Vec<Located<AppConfig>>,
}

/// Converts a byte offset into a 1-based line and column (in characters).
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Byte offset of the first line at or after `from` setting `key` outside a `dangerous`
/// table (where it belongs now), if there is one. The error of a provider spans the whole
/// `provider` array (a tagged enum), so the key is searched for.
fn key_in_table(source: &str, from: usize, key: &str) -> Option<usize> {
    let mut offset = from;
    let mut in_dangerous = false;
    for line in source.get(from..)?.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            in_dangerous = trimmed.trim_end().ends_with(".dangerous]");
        }
        let rest = trimmed.strip_prefix(key).map(str::trim_start);
        if !in_dangerous && rest.is_some_and(|r| r.starts_with('=')) {
            return Some(offset + (line.len() - trimmed.len()));
        }
        offset += line.len();
    }
    None
}

fn locate<T>(items: &mut [Located<T>], file: &Arc<Path>, source: &str) {
    for item in items {
        let (line, column) = line_column(source, item.span.start);
        item.loc = SourceLoc { file: file.clone(), line, column };
    }
}

fn parse_file<T: serde::de::DeserializeOwned>(path: &Path) -> Result<(T, String), ConfigError> {
    let source =
        std::fs::read_to_string(path).map_err(|e| ConfigError::file(path, format!("cannot read file: {e}")))?;
    match toml::from_str::<T>(&source) {
        Ok(value) => Ok((value, source)),
        Err(e) => {
            let mut offset = e.span().map_or(0, |s| s.start);
            // toml's message repeats the snippet; the first line is the reason.
            let first = e.message().lines().next().unwrap_or("invalid TOML");
            // A key that moved into a `dangerous` table: say where it went, at the key itself
            // (a provider's error spans its whole table: tagged enum).
            let message = match super::dangerous::moved_key_message(first) {
                Some((key, message)) => {
                    offset = key_in_table(&source, offset, key).unwrap_or(offset);
                    message
                }
                None => first.to_owned(),
            };
            let (line, column) = if e.span().is_some() { line_column(&source, offset) } else { (1, 1) };
            Err(ConfigError { loc: SourceLoc { file: path.into(), line, column }, message })
        }
    }
}

/// Loads the main file and its includes, then runs every cross-field check.
///
/// Returns every error found, not just the first, so one `aisgate check` run shows them all.
pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
    let (mut config, source) = parse_file::<Config>(path).map_err(|e| vec![e])?;
    let file: Arc<Path> = path.into();
    locate(&mut config.provider, &file, &source);
    locate(&mut config.app, &file, &source);
    config.locs = KeyLocs::read(&source);
    let mut errors = Vec::new();
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    for pattern in config.include.clone() {
        let full = base.join(&pattern);
        let paths = match glob::glob(&full.to_string_lossy()) {
            Ok(paths) => paths,
            Err(e) => {
                errors.push(ConfigError::file(path, format!("include pattern {pattern:?} is invalid: {e}")));
                continue;
            }
        };
        let mut matched: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
        matched.sort();
        for included in matched {
            match parse_file::<IncludeFile>(&included) {
                Ok((mut inc, source)) => {
                    let file: Arc<Path> = included.as_path().into();
                    locate(&mut inc.provider, &file, &source);
                    locate(&mut inc.app, &file, &source);
                    config.provider.extend(inc.provider);
                    config.app.extend(inc.app);
                }
                Err(e) => errors.push(e),
            }
        }
    }
    errors.extend(super::check::check(&config, path).into_iter().map(|i| i.into_error()));
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters_not_bytes() {
        let s = "a = 1\nb = \"ř\" x";
        assert_eq!(line_column(s, 0), (1, 1));
        assert_eq!(line_column(s, 6), (2, 1));
        let x = s.find('x').unwrap();
        assert_eq!(line_column(s, x), (2, 9));
        assert_eq!(line_column(s, 10_000), (2, 10));
    }

    #[test]
    fn key_locations_name_the_key_the_array_item_or_the_table() {
        let s = "# main\n[session]\n  idle_timeout_secs = 0\nkeys = [{ id = \"a\" },\n  { id = \"b\" }]\n\n[[x.items]]\nid = 1\n[admin]\n";
        let locs = KeyLocs::read(s);
        let at = |keys: &[&str]| {
            let loc = locs.at(Path::new("main.toml"), keys);
            assert_eq!(&*loc.file, Path::new("main.toml"));
            (loc.line, loc.column)
        };
        assert_eq!(at(&["session.idle_timeout_secs"]), (3, 3));
        assert_eq!(at(&["session.keys[0]"]), (4, 9));
        assert_eq!(at(&["session.keys[1]"]), (5, 3));
        // An unset key: its table (at the header's `[`); the first written of several.
        assert_eq!(at(&["session.cookie_name"]), (2, 1));
        assert_eq!(at(&["session.cookie_name", "session.keys"]), (4, 1));
        assert_eq!(at(&["admin.token_file"]), (9, 1));
        // An array of tables: its entry's header.
        assert_eq!(at(&["x.items[0].id"]), (8, 1));
        assert_eq!(at(&["x.items[0]"]), (7, 1));
        assert_eq!(at(&["audit.file"]), (1, 1));
    }
}
