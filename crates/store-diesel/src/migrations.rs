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

/// A migration not applied yet, as `shiplog migrate --plan` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Its name (`2026-11-29-000017_dora_days`).
    pub name: String,
    /// What it changes.
    pub what: &'static str,
    /// The table it rewrites row by row, and how many rows that table holds now.
    pub rewrites: Option<(&'static str, i64)>,
    /// What it will do to this database's rows, one line each (000006: the environments it
    /// merges).
    pub details: Vec<String>,
}

#[derive(diesel::QueryableByName)]
struct Merge {
    #[diesel(sql_type = diesel::sql_types::Text)]
    workspace: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    code: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    copies: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    production: i64,
}

/// The environments migration 000006 will merge: codes that several environments of one
/// workspace share.
fn merges(conn: &mut DbConn) -> Vec<String> {
    use diesel::RunQueryDsl;
    let sql = "SELECT w.code AS workspace, e.code AS code, COUNT(*) AS copies, \
               SUM(CASE WHEN e.kind = 'production' THEN 1 ELSE 0 END) AS production \
               FROM environments e JOIN workspaces w ON w.id = e.workspace_id \
               GROUP BY w.code, e.code HAVING COUNT(*) > 1 ORDER BY w.code, e.code";
    let rows: Result<Vec<Merge>, _> = per_backend!(conn, {
        sqlite(c) => diesel::sql_query(sql).load(c),
        postgres(c) => diesel::sql_query(sql).load(c),
    });
    rows.unwrap_or_default()
        .into_iter()
        .map(|m| {
            let kind = if m.production > 0 {
                ", kind production"
            } else {
                ""
            };
            format!(
                "workspace {}: the {} environments named {} become one (the oldest{kind})",
                m.workspace, m.copies, m.code
            )
        })
        .collect()
}

/// What the migrations that rewrite or convert data do, by number, and the table they rewrite;
/// every other one only adds tables, columns, indexes or triggers (docs/upgrading.md has the
/// timings). Those marked PostgreSQL change nothing on SQLite ([`POSTGRES_ONLY`]).
const CONVERTING: [(&str, &str, Option<&str>); 10] = [
    (
        "000006",
        "makes environments the workspace's: the environments of one code in several projects \
         become the oldest of them (production if any was), and what named the others names it",
        Some("environments"),
    ),
    (
        "000009",
        "computes every deployment's lead-time start from its commit's recorded events",
        Some("deployments"),
    ),
    (
        "000014",
        "computes every deployment's rework signal from its branch, ref and message",
        Some("deployments"),
    ),
    (
        "000015",
        "rebuilds the unique keys of deployments and pipeline events (ingest waits)",
        Some("deployments"),
    ),
    ("000016", "drops five foreign keys (no scan)", None),
    (
        "000017",
        "adds dora_days and its triggers, and lists every past day to pack (one scan of \
         deployments; the server packs them in the background)",
        Some("deployments"),
    ),
    (
        "000018",
        "marks every packed DORA day to be packed again (the server repacks in the background)",
        Some("dora_days"),
    ),
    (
        "000020",
        "builds the deployments' time-order indexes for listings (one scan of deployments per \
         index; ingest waits)",
        Some("deployments"),
    ),
    (
        "000021",
        "builds the commit sightings' time index for what a deployment changed (one scan of \
         commit_sightings; ingest waits)",
        Some("commit_sightings"),
    ),
    (
        "000022",
        "adds people and lets a session belong to one (SQLite copies the live sessions into a \
         rebuilt table; PostgreSQL alters it)",
        Some("sessions"),
    ),
];

/// The migrations that change nothing on SQLite (their SQLite files only say why).
const POSTGRES_ONLY: [&str; 2] = ["000015", "000016"];

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// The migrations not applied yet, oldest first, with what each will change; writes nothing.
pub fn plan(conn: &mut DbConn) -> Result<Vec<Planned>, String> {
    use diesel::RunQueryDsl;
    use diesel::migration::Migration;

    let names: Vec<String> = per_backend!(conn, {
        sqlite(c) => c
            .pending_migrations(SQLITE)
            .map(|m| m.iter().map(|m| m.name().to_string()).collect()),
        postgres(c) => c
            .pending_migrations(POSTGRES)
            .map(|m| m.iter().map(|m| m.name().to_string()).collect()),
    })
    .map_err(|e| e.to_string())?;
    let sqlite = per_backend!(conn, { sqlite(_) => true, postgres(_) => false });
    let mut planned = Vec::new();
    for name in names {
        let numbered = |number: &str| name.contains(&format!("-{number}_"));
        let converting = CONVERTING.iter().find(|(number, _, _)| numbered(number));
        let (what, table) = match converting {
            _ if sqlite && POSTGRES_ONLY.iter().any(|number| numbered(number)) => (
                "changes nothing on SQLite (it changes PostgreSQL only)",
                None,
            ),
            Some((_, what, table)) => (*what, *table),
            None => (
                "adds tables, columns, indexes or triggers; rewrites no row",
                None,
            ),
        };
        // A table a pending migration creates has no rows to count yet.
        let rewrites = table.and_then(|table| {
            let sql = format!("SELECT COUNT(*) AS n FROM {table}");
            per_backend!(conn, {
                sqlite(c) => diesel::sql_query(sql).get_result::<Count>(c),
                postgres(c) => diesel::sql_query(sql).get_result::<Count>(c),
            })
            .ok()
            .map(|count| (table, count.n))
        });
        let details = if numbered("000006") {
            merges(conn)
        } else {
            Vec::new()
        };
        planned.push(Planned {
            name,
            what,
            rewrites,
            details,
        });
    }
    Ok(planned)
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
