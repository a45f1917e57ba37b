//! Embedded migrations, one set per backend with the same version names.

use diesel::connection::SimpleConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::conn::{DatabaseUrl, DbConn, OpenError, per_backend};

/// The SQLite migrations (`migrations/sqlite`).
pub const SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
/// The PostgreSQL migrations (`migrations/postgres`).
pub const POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// The advisory lock that serializes servers migrating one PostgreSQL database at once.
const POSTGRES_LOCK: i64 = 0x0073_6869_706c_6f67;

fn with_lock<T>(
    conn: &mut DbConn,
    run: impl FnOnce(&mut DbConn) -> Result<T, String>,
) -> Result<T, String> {
    let postgres = per_backend!(conn, { sqlite(_) => false, postgres(_) => true });
    if postgres {
        conn.batch_execute(&format!("SELECT pg_advisory_lock({POSTGRES_LOCK})"))
            .map_err(|e| e.to_string())?;
    }
    let result = run(conn);
    if postgres {
        // Also released when the session ends, should this fail.
        let _ = conn.batch_execute(&format!("SELECT pg_advisory_unlock({POSTGRES_LOCK})"));
    }
    result
}

fn names(versions: Vec<diesel::migration::MigrationVersion<'_>>) -> Vec<String> {
    versions.into_iter().map(|v| v.to_string()).collect()
}

/// One migration applied, and how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Its version (`20261129000017`: the directory's date and number).
    pub version: String,
    /// How long it ran.
    pub took: std::time::Duration,
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in {:.3} s", self.version, self.took.as_secs_f64())
    }
}

/// Applies every pending migration, one at a time (each in its own transaction, timed), after
/// refusing a database migrated by a newer release ([`unknown`]); returns what was applied.
pub fn run_pending(conn: &mut DbConn) -> Result<Vec<Applied>, String> {
    with_lock(conn, |conn| {
        refuse_unknown(conn)?;
        let mut applied = Vec::new();
        while pending(conn)? > 0 {
            let started = std::time::Instant::now();
            let version = per_backend!(conn, {
                sqlite(c) => c.run_next_migration(SQLITE).map(|v| v.to_string()),
                postgres(c) => c.run_next_migration(POSTGRES).map(|v| v.to_string()),
            })
            .map_err(|e| e.to_string())?;
            applied.push(Applied {
                version,
                took: started.elapsed(),
            });
        }
        Ok(applied)
    })
}

/// The migrations applied to the database that this release does not know: a newer release
/// migrated it.
pub fn unknown(conn: &mut DbConn) -> Result<Vec<String>, String> {
    use diesel::migration::MigrationSource;
    let (applied, known) = per_backend!(conn, {
        sqlite(c) => (
            c.applied_migrations(),
            MigrationSource::<diesel::sqlite::Sqlite>::migrations(&SQLITE).map(|m| {
                m.iter()
                    .map(|m| m.name().version().to_string())
                    .collect::<Vec<_>>()
            }),
        ),
        postgres(c) => (
            c.applied_migrations(),
            MigrationSource::<diesel::pg::Pg>::migrations(&POSTGRES).map(|m| {
                m.iter()
                    .map(|m| m.name().version().to_string())
                    .collect::<Vec<_>>()
            }),
        ),
    });
    let applied = applied.map_err(|e| e.to_string())?;
    let known = known.map_err(|e| e.to_string())?;
    let mut unknown: Vec<String> = applied
        .iter()
        .map(ToString::to_string)
        .filter(|v| !known.contains(v))
        .collect();
    unknown.sort();
    Ok(unknown)
}

/// Refuses a database that a newer release migrated: this one would misread it.
pub fn refuse_unknown(conn: &mut DbConn) -> Result<(), String> {
    let unknown = unknown(conn)?;
    if unknown.is_empty() {
        return Ok(());
    }
    Err(format!(
        "this database was migrated by a newer release of shiplog: migration(s) {} are not \
         known to shiplog {}; run that release (or newer), or restore a backup made before it",
        unknown.join(", "),
        env!("CARGO_PKG_VERSION")
    ))
}

/// Reverts every applied migration (tests and disaster recovery only: it drops all data).
pub fn revert_all(conn: &mut DbConn) -> Result<Vec<String>, String> {
    with_lock(conn, |conn| {
        per_backend!(conn, {
            sqlite(c) => c.revert_all_migrations(SQLITE).map(names),
            postgres(c) => c.revert_all_migrations(POSTGRES).map(names),
        })
        .map_err(|e| e.to_string())
    })
}

/// Reverts the newest applied migration; returns its version (tests of a migration's data
/// conversion, and disaster recovery).
pub fn revert_last(conn: &mut DbConn) -> Result<String, String> {
    with_lock(conn, |conn| {
        per_backend!(conn, {
            sqlite(c) => c.revert_last_migration(SQLITE).map(|v| v.to_string()),
            postgres(c) => c.revert_last_migration(POSTGRES).map(|v| v.to_string()),
        })
        .map_err(|e| e.to_string())
    })
}

/// How many migrations are not applied yet.
pub fn pending(conn: &mut DbConn) -> Result<usize, String> {
    per_backend!(conn, {
        sqlite(c) => c.pending_migrations(SQLITE).map(|m| m.len()),
        postgres(c) => c.pending_migrations(POSTGRES).map(|m| m.len()),
    })
    .map_err(|e| e.to_string())
}

/// Connects and applies pending migrations (`shiplog migrate`).
pub fn migrate(url: &DatabaseUrl) -> Result<Vec<Applied>, OpenError> {
    let mut conn = url.connect()?;
    run_pending(&mut conn).map_err(|reason| OpenError::Migrate {
        url: url.to_string(),
        reason,
    })
}
