//! Backing up and restoring an SQLite database (`shiplog backup`, `shiplog restore`).
//!
//! A backup is SQLite's `VACUUM INTO`: one read transaction copies a consistent snapshot of the
//! database into a new file while the server keeps writing (WAL readers never block the
//! writer), then the copy's `PRAGMA integrity_check` must answer `ok`. A restore checks the
//! backup the same way, and that this release knows every migration it carries, then copies it
//! beside the database and renames it into place, removing the database's write-ahead log and
//! shared-memory files so nothing of the replaced database is replayed over it. The server
//! must be stopped during a restore. PostgreSQL databases are backed up with `pg_dump` and
//! restored with `pg_restore` (docs/operations.md, "Backup and restore").

use std::path::{Path, PathBuf};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::conn::{DatabaseUrl, per_backend};
use crate::migrations;

/// Why PostgreSQL is not backed up by shiplog itself, and what to run instead.
const POSTGRES: &str = "a PostgreSQL database is backed up with PostgreSQL's own tools: \
    `pg_dump --format=custom --file=shiplog.dump \"$SHIPLOG_DATABASE_URL\"`, and restored into \
    an empty database with `pg_restore --no-owner --dbname=\"$SHIPLOG_DATABASE_URL\" \
    shiplog.dump` (docs/operations.md, \"Backup and restore\")";

#[derive(QueryableByName)]
struct Check {
    #[diesel(sql_type = diesel::sql_types::Text)]
    integrity_check: String,
}

/// Copies the SQLite database at `url` into `to`, a file that must not exist yet, while it may
/// be in use; then checks the copy. Answers the copy's size in bytes.
pub fn backup(url: &DatabaseUrl, to: &Path) -> Result<u64, String> {
    let DatabaseUrl::Sqlite(_) = url else {
        return Err(POSTGRES.to_owned());
    };
    if to.exists() {
        return Err(format!(
            "{} exists already: name a new file (a backup never overwrites one)",
            to.display()
        ));
    }
    let target = to
        .to_str()
        .ok_or_else(|| format!("{}: the path must be UTF-8", to.display()))?;
    let mut conn = url.connect_reader().map_err(|e| e.to_string())?;
    let copied = per_backend!(&mut conn, {
        sqlite(c) => diesel::sql_query("VACUUM INTO ?")
            .bind::<diesel::sql_types::Text, _>(target)
            .execute(c),
        postgres(_) => return Err(POSTGRES.to_owned()),
    });
    copied.map_err(|e| format!("the copy into {} failed: {e}", to.display()))?;
    check(to)?;
    std::fs::metadata(to)
        .map(|m| m.len())
        .map_err(|e| format!("{}: {e}", to.display()))
}

/// Checks the SQLite file at `path`: SQLite's integrity check, and migrations this release
/// knows (a backup of a newer release is refused).
pub fn check(path: &Path) -> Result<(), String> {
    if !path.is_file() {
        return Err(format!("{}: no such file", path.display()));
    }
    let url = DatabaseUrl::Sqlite(path.to_path_buf());
    let unreadable = |e: &dyn std::fmt::Display| {
        format!("{} is not a readable SQLite database: {e}", path.display())
    };
    let mut conn = url.connect_reader().map_err(|e| unreadable(&e))?;
    let checks: Vec<Check> = per_backend!(&mut conn, {
        sqlite(c) => diesel::sql_query("PRAGMA integrity_check").load(c),
        postgres(_) => return Err(POSTGRES.to_owned()),
    })
    .map_err(|e| unreadable(&e))?;
    let problems: Vec<String> = checks
        .into_iter()
        .map(|c| c.integrity_check)
        .filter(|c| c != "ok")
        .collect();
    if !problems.is_empty() {
        return Err(format!(
            "{} fails SQLite's integrity check: {}",
            path.display(),
            problems.join("; ")
        ));
    }
    migrations::refuse_unknown(&mut conn).map_err(|e| format!("{}: {e}", path.display()))
}

/// Puts the checked backup `from` in place of the SQLite database at `url` (which may not
/// exist yet). The server using `url` must be stopped.
pub fn restore(from: &Path, url: &DatabaseUrl) -> Result<(), String> {
    let DatabaseUrl::Sqlite(database) = url else {
        return Err(POSTGRES.to_owned());
    };
    check(from)?;
    let staging = sibling(database, ".restoring");
    std::fs::copy(from, &staging)
        .map_err(|e| format!("copying {} to {}: {e}", from.display(), staging.display()))?;
    std::fs::File::open(&staging)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("{}: {e}", staging.display()))?;
    for stale in [sibling(database, "-wal"), sibling(database, "-shm")] {
        match std::fs::remove_file(&stale) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", stale.display())),
        }
    }
    std::fs::rename(&staging, database).map_err(|e| {
        format!(
            "moving {} to {}: {e}",
            staging.display(),
            database.display()
        )
    })?;
    // The restored file opens as a database with its schema (a last check of what is in place).
    let mut conn = url.connect().map_err(|e| e.to_string())?;
    conn.batch_execute("SELECT 1 FROM workspaces LIMIT 1")
        .map_err(|e| format!("{}: {e}", database.display()))
}

/// `path` with `suffix` added to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}
