//! The SQLite link store: one file on this instance (bundled SQLite, WAL journal, mode 0600).
//!
//! Uniqueness in both directions is the schema's (`bsi` primary key, `legacy_id` UNIQUE), so
//! no interleaving of two gateways' writes (or a CLI's) can link one legacy id twice. Every
//! call runs on the blocking pool (`spawn_blocking`): SQLite does file I/O and fsync.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::{Link, LinkError, LinkKey, LinkStore};
use crate::identity::LegacyAccount;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS links (
    bsi TEXT NOT NULL PRIMARY KEY,
    legacy_id TEXT NOT NULL UNIQUE,
    legacy_username TEXT,
    legacy_org TEXT,
    created_at INTEGER NOT NULL,
    source TEXT NOT NULL
)";

/// The SQLite store.
pub struct SqliteLinks {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

fn storage(e: impl std::fmt::Display) -> LinkError {
    LinkError::Storage(e.to_string())
}

impl SqliteLinks {
    /// Opens (creating, mode 0600) the database at `path` and its table.
    pub fn open(path: &Path) -> Result<SqliteLinks, LinkError> {
        create_private(path).map_err(|e| LinkError::Storage(format!("{}: {e}", path.display())))?;
        let conn = Connection::open(path).map_err(|e| LinkError::Storage(format!("{}: {e}", path.display())))?;
        // WAL: readers never wait for the writer; FULL: a link is on disk when create returns.
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(storage)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), mode, "links database: WAL journal not available");
        }
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;").map_err(storage)?;
        conn.execute(SCHEMA, []).map_err(storage)?;
        Ok(SqliteLinks { conn: Arc::new(Mutex::new(conn)), path: path.to_owned() })
    }

    /// For `aisgate check`: refuses a database whose directory is missing, creates nothing,
    /// and returns an empty in-memory store.
    pub fn dry_run(path: &Path) -> Result<SqliteLinks, LinkError> {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !dir.is_dir() {
            return Err(LinkError::Storage(format!(
                "{}: the directory {} does not exist",
                path.display(),
                dir.display()
            )));
        }
        let conn = Connection::open_in_memory().map_err(storage)?;
        conn.execute(SCHEMA, []).map_err(storage)?;
        Ok(SqliteLinks { conn: Arc::new(Mutex::new(conn)), path: path.to_owned() })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, LinkError> + Send + 'static,
    ) -> Result<T, LinkError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(storage)?
    }
}

/// Creates the file with mode 0600 if it does not exist; narrows an existing one to 0600.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        options.open(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    options.open(path)?;
    Ok(())
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Link> {
    Ok(Link {
        bsi: r.get(0)?,
        legacy: LegacyAccount { id: r.get(1)?, username: r.get(2)?, organisation: r.get(3)? },
        created_at: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
        source: r.get(5)?,
    })
}

const COLUMNS: &str = "bsi, legacy_id, legacy_username, legacy_org, created_at, source";

fn find(conn: &Connection, column: &str, value: &str) -> Result<Option<Link>, LinkError> {
    conn.query_row(&format!("SELECT {COLUMNS} FROM links WHERE {column} = ?1"), [value], row)
        .optional()
        .map_err(storage)
}

/// Inserts `link` unless an identical one exists; `Ok(false)` for the identical one.
fn insert(conn: &Connection, link: &Link) -> Result<bool, LinkError> {
    link.validate()?;
    if let Some(existing) = find(conn, "bsi", &link.bsi)? {
        return if existing.legacy.id == link.legacy.id { Ok(false) } else { Err(LinkError::BsiTaken) };
    }
    if find(conn, "legacy_id", &link.legacy.id)?.is_some() {
        return Err(LinkError::LegacyTaken);
    }
    let created = i64::try_from(link.created_at).unwrap_or(i64::MAX);
    conn.execute(
        &format!("INSERT INTO links ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        params![link.bsi, link.legacy.id, link.legacy.username, link.legacy.organisation, created, link.source],
    )
    .map_err(|e| match e.sqlite_error_code() {
        // The checks above ran in the same transaction or connection; a constraint failure
        // here is still a conflict, never a silent overwrite.
        Some(rusqlite::ErrorCode::ConstraintViolation) => LinkError::LegacyTaken,
        _ => storage(e),
    })?;
    Ok(true)
}

#[async_trait]
impl LinkStore for SqliteLinks {
    async fn by_bsi(&self, bsi: &str) -> Result<Option<Link>, LinkError> {
        let bsi = bsi.to_owned();
        self.run(move |c| find(c, "bsi", &bsi)).await
    }

    async fn create(&self, link: Link) -> Result<(), LinkError> {
        self.run(move |c| {
            // IMMEDIATE: the write lock is taken before the checks, so a second process
            // cannot slip a conflicting row between check and insert.
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(storage)?;
            insert(&tx, &link)?;
            tx.commit().map_err(storage)
        })
        .await
    }

    async fn delete(&self, key: LinkKey) -> Result<Option<Link>, LinkError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(storage)?;
            let (column, value) = match &key {
                LinkKey::Bsi(v) => ("bsi", v),
                LinkKey::Legacy(v) => ("legacy_id", v),
            };
            let found = find(&tx, column, value)?;
            if found.is_some() {
                tx.execute(&format!("DELETE FROM links WHERE {column} = ?1"), [value]).map_err(storage)?;
            }
            tx.commit().map_err(storage)?;
            Ok(found)
        })
        .await
    }

    async fn list(&self) -> Result<Vec<Link>, LinkError> {
        self.run(|c| {
            let mut stmt = c.prepare(&format!("SELECT {COLUMNS} FROM links ORDER BY bsi")).map_err(storage)?;
            let rows = stmt.query_map([], row).map_err(storage)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(storage)
        })
        .await
    }

    async fn import(&self, links: Vec<Link>, lines: Vec<usize>) -> Result<usize, LinkError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(storage)?;
            let mut added = 0;
            for (i, link) in links.iter().enumerate() {
                let line = lines.get(i).copied().unwrap_or(i + 1);
                match insert(&tx, link) {
                    Ok(true) => added += 1,
                    Ok(false) => {}
                    Err(e) => return Err(LinkError::Import { line, reason: e.to_string() }),
                }
            }
            // Dropping `tx` on an error above rolls everything back: all or nothing.
            tx.commit().map_err(storage)?;
            Ok(added)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(bsi: &str, legacy: &str) -> Link {
        Link {
            bsi: bsi.into(),
            legacy: LegacyAccount { id: legacy.into(), username: Some("novakova".into()), organisation: None },
            created_at: 1,
            source: "login".into(),
        }
    }

    fn temp_db() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("links.sqlite");
        (dir, path)
    }

    #[tokio::test]
    async fn one_legacy_id_links_to_one_bsi_and_the_file_is_private() {
        let (_dir, path) = temp_db();
        let store = SqliteLinks::open(&path).unwrap();
        store.create(link("bsi-a", "jip-1")).await.unwrap();
        // Idempotent for the identical link.
        store.create(link("bsi-a", "jip-1")).await.unwrap();
        assert!(matches!(store.create(link("bsi-b", "jip-1")).await, Err(LinkError::LegacyTaken)));
        assert!(matches!(store.create(link("bsi-a", "jip-2")).await, Err(LinkError::BsiTaken)));
        assert_eq!(store.by_bsi("bsi-a").await.unwrap().unwrap().legacy.id, "jip-1");
        assert!(store.by_bsi("bsi-b").await.unwrap().is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        // Survives reopening.
        drop(store);
        let store = SqliteLinks::open(&path).unwrap();
        assert_eq!(store.list().await.unwrap(), vec![link("bsi-a", "jip-1")]);
        assert_eq!(store.delete(LinkKey::Legacy("jip-1".into())).await.unwrap(), Some(link("bsi-a", "jip-1")));
        assert!(store.list().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn import_is_all_or_nothing_and_names_the_line() {
        let (_dir, path) = temp_db();
        let store = SqliteLinks::open(&path).unwrap();
        store.create(link("bsi-a", "jip-1")).await.unwrap();
        let batch = vec![link("bsi-b", "jip-2"), link("bsi-c", "jip-1")];
        match store.import(batch, vec![2, 3]).await {
            Err(LinkError::Import { line: 3, reason }) => assert!(reason.contains("already linked"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(store.list().await.unwrap().len(), 1, "nothing of the refused batch was stored");
        assert_eq!(store.import(vec![link("bsi-a", "jip-1"), link("bsi-b", "jip-2")], vec![2, 3]).await.unwrap(), 1);
    }
}
