//! Connections: which backend a URL names, how each connection is set up, and how a statement
//! runs on it.
//!
//! ## How a statement runs: the rule
//!
//! Every statement of this crate is written once and runs on a `&mut DbConn` in one of three
//! ways, chosen in this order:
//!
//! 1. **[`Native`]** (`execute_on`, `load_on`, `get_result_on`, `first_on`): for every statement
//!    whose type does not name a backend, which is most of them and every one of the ingest's.
//!    It runs on the backend's own connection type, not through the `MultiConnection` wrapper,
//!    which rebuilds a statement's SQL on every run. A statement one backend cannot run fails
//!    the build here.
//! 2. **The `DbConn` wrapper** (diesel's `RunQueryDsl` on `DbConn`): only for a query whose
//!    type names the backend, which diesel needs it for: boxed for optional filters
//!    (`into_boxed`) or selecting a row struct (`as_select`). None is on the ingest path.
//! 3. **[`per_backend!`]**: for code that differs per backend (`FOR UPDATE`, the claim's
//!    `SKIP LOCKED`, the packer's fence, PostgreSQL's one-statement ingest write, SQLite's
//!    `BEGIN IMMEDIATE`): one arm per backend, each with the backend's own connection. Nothing
//!    else in this crate names a backend's variant of `DbConn` (`tests::one_style_per_backend`).
//!
//! Whether a statement is kept prepared is a separate, second choice: a raw SQL text that runs
//! often is wrapped in [`sqlite_keeps_prepared`], or in [`keeps_prepared`] when its plan may be
//! generic on PostgreSQL too (see "Statements kept prepared" below). Raw SQL texts are
//! constants whose `$n` appear in order (`tests::raw_statements_name_their_parameters_in_order`).
//!
//! **SQLite's build.** The bundled SQLite is compiled (`.cargo/config.toml`, `LIBSQLITE3_FLAGS`) in
//! multi-thread mode (`SQLITE_THREADSAFE=2`) and without memory statistics
//! (`SQLITE_DEFAULT_MEMSTATUS=0`). Serialized mode locks a connection's mutex on every API call
//! (each column of each row read); that was a tenth of a 365-day DORA read's profile, and buys
//! nothing here: every connection belongs to one thread at a time (the writer's, a reader's;
//! diesel's connections are not `Sync`). `conn::tests::sqlite_is_built_without_per_call_mutexes`
//! fails if a build loses the options.
//!
//! **SQLite readers read through a memory map** (`mmap_size` of 1 GiB on each reader connection): a
//! page of the file is read from the OS page cache in place instead of being copied into the
//! connection's 16 MiB page cache. A 365-day DORA query steps through 115,000 entries of the
//! covering index, each over 200 bytes (six 36- to 40-character texts), more than that cache holds,
//! so every run copied every page again (8 % of its profile was the kernel copying file pages);
//! with the map its store read fell from 97.5 to 76.0 ms (docs/benchmarks.md). Mapped pages are the
//! page cache the OS keeps anyway, but they count in the process's RSS (as file-backed) once
//! touched, so the writer does not map: with it mapping too, `bench http`'s peak RSS rose from
//! about 44 to 160 MiB as ingest touched the growing file. The cost SQLite documents: an I/O error
//! while reading a mapped page arrives as `SIGBUS` instead of an error code, i.e. a failing disk
//! stops the process instead of failing a query.
//! `conn::tests::sqlite_readers_read_through_a_memory_map` checks the setting takes effect on
//! readers and not on the writer.
//!
//! **Durability.** SQLite: `busy_timeout` first, then WAL, `synchronous=FULL`, `foreign_keys=ON`,
//! `temp_store=MEMORY`. PostgreSQL: `synchronous_commit=on`. A caller is answered after `COMMIT`
//! returns; `tests/durability.rs` kills a writing process with SIGKILL and finds every write it
//! reported.
//!
//! **Statements kept prepared.** Each raw statement's text is a constant (one per backend for the
//! claim), and every one SQLite runs is wrapped in `conn::sqlite_keeps_prepared`: SQLite keeps it
//! prepared in the connection's statement cache (diesel re-prepares a bare `sql_query` on every
//! run, which was a quarter of the SQLite writer thread's time), while PostgreSQL plans it with
//! each run's values. The ingest's lookup and its commit-sightings statements (`LOOKUP_SQL`,
//! `SIGHTING_SQL`, `SHARE_SQL`) are wrapped in `conn::keeps_prepared` instead: prepared on
//! PostgreSQL too, where after five runs a connection normally runs them on one generic plan
//! (planned without the values). A generic plan is made from whatever statistics exist at that
//! moment, possibly an empty, never analyzed table's, so such a statement may only reach each table
//! through the one index its conditions can use: the lookup finds an event by `(fingerprint,
//! workspace_id)` and a deployment by `(idempotency_key, workspace_id)` (PostgreSQL migration
//! 000015 put the workspace last in these unique keys) and compares the workspace with `IS NOT
//! DISTINCT FROM`, which no PostgreSQL index serves, so that `deployments_by_workspace_time` or
//! `pipeline_events_by_commit` can never tie with the unique key. `ingest::tests` checks the
//! generic plan on a fresh database (and SQLite's plan). Planning the lookup with its values on
//! every ingest took 0.11 to 0.25 ms of PostgreSQL's time, five to ten times its execution (0.02
//! ms); on the generic plan, 0.005 ms (`EXPLAIN ANALYZE`). A kept write is never executed but
//! loaded, `Kept::write`: diesel's `execute` ignores the wrapper on both backends (it hands the
//! statement over by reference, and `QueryFragment for &T` does not pass
//! `is_safe_to_cache_prepared` on), so each kept write returns a column (`RETURNING`) and is
//! loaded, handed over by value (`conn::tests::kept_writes_stay_prepared`). So are the lead-time
//! rewrites (`RESTART_SQL`, `RESTART_OWNER_SQL`) and the update that marks references deployed.

use std::fmt;
use std::path::PathBuf;

use diesel::connection::SimpleConnection;
use diesel::dsl::Limit;
use diesel::pg::{Pg, PgConnection};
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_dsl::methods::{ExecuteDsl, LimitDsl, LoadQuery};
use diesel::sqlite::{Sqlite, SqliteConnection};
use diesel::{Connection, QueryResult, RunQueryDsl};

pub use multi::DbConn;
pub(crate) use multi::MultiBackend;

/// The derive below generates public items of its own (`MultiBackend`, …) that carry no docs.
#[allow(missing_docs, unreachable_pub)]
mod multi {
    use diesel::pg::PgConnection;
    use diesel::sqlite::SqliteConnection;

    /// One connection to either backend; queries are written once against it.
    #[derive(diesel::MultiConnection)]
    pub enum DbConn {
        /// PostgreSQL.
        Postgresql(PgConnection),
        /// SQLite.
        Sqlite(SqliteConnection),
    }
}

/// Code that differs per backend, the one way it is written in this crate (rule 3 above): an
/// arm for SQLite, then one for PostgreSQL, each binding the backend's own connection type (or
/// `_`, which leaves the `DbConn` free for the arm's own statements).
///
/// ```text
/// let sql = per_backend!(conn, {
///     sqlite(_) => claim_sql!(""),
///     postgres(_) => claim_sql!("FOR UPDATE OF d SKIP LOCKED"),
/// });
/// ```
macro_rules! per_backend {
    ($conn:expr, { sqlite($sqlite:pat) => $on_sqlite:expr, postgres($postgres:pat) => $on_postgres:expr $(,)? }) => {
        match $conn {
            $crate::conn::DbConn::Sqlite($sqlite) => $on_sqlite,
            $crate::conn::DbConn::Postgresql($postgres) => $on_postgres,
        }
    };
}
pub(crate) use per_backend;

/// Runs a statement written once on the backend's own connection type (rule 1 above).
///
/// A statement is built once (diesel's query builder values do not depend on the backend until
/// they run) and run with one of these methods, which match on the connection and execute it
/// natively. The bounds require that the statement compiles for both backends, so a statement
/// one backend cannot run fails the build instead of a request. Running natively rather than
/// through the `MultiConnection` wrapper matters on the ingest path: the wrapper rebuilds a
/// statement's SQL on every execution (a one-off probe timed a wide insert at 20 µs through it
/// against 9 µs natively; see docs/benchmarks.md).
pub(crate) trait Native: Sized {
    /// `RunQueryDsl::execute`, natively.
    fn execute_on(self, conn: &mut DbConn) -> QueryResult<usize>
    where
        Self: ExecuteDsl<SqliteConnection> + ExecuteDsl<PgConnection>,
    {
        match conn {
            DbConn::Sqlite(c) => ExecuteDsl::<SqliteConnection>::execute(self, c),
            DbConn::Postgresql(c) => ExecuteDsl::<PgConnection>::execute(self, c),
        }
    }

    /// `RunQueryDsl::load`, natively.
    fn load_on<'q, U>(self, conn: &mut DbConn) -> QueryResult<Vec<U>>
    where
        Self: RunQueryDsl<SqliteConnection>
            + RunQueryDsl<PgConnection>
            + LoadQuery<'q, SqliteConnection, U>
            + LoadQuery<'q, PgConnection, U>,
    {
        match conn {
            DbConn::Sqlite(c) => RunQueryDsl::<SqliteConnection>::load(self, c),
            DbConn::Postgresql(c) => RunQueryDsl::<PgConnection>::load(self, c),
        }
    }

    /// `RunQueryDsl::get_result`, natively.
    fn get_result_on<'q, U>(self, conn: &mut DbConn) -> QueryResult<U>
    where
        Self: RunQueryDsl<SqliteConnection>
            + RunQueryDsl<PgConnection>
            + LoadQuery<'q, SqliteConnection, U>
            + LoadQuery<'q, PgConnection, U>,
    {
        match conn {
            DbConn::Sqlite(c) => RunQueryDsl::<SqliteConnection>::get_result(self, c),
            DbConn::Postgresql(c) => RunQueryDsl::<PgConnection>::get_result(self, c),
        }
    }

    /// `RunQueryDsl::first`, natively.
    fn first_on<'q, U>(self, conn: &mut DbConn) -> QueryResult<U>
    where
        Self: RunQueryDsl<SqliteConnection> + RunQueryDsl<PgConnection> + LimitDsl,
        Limit<Self>: LoadQuery<'q, SqliteConnection, U> + LoadQuery<'q, PgConnection, U>,
    {
        match conn {
            DbConn::Sqlite(c) => RunQueryDsl::<SqliteConnection>::first(self, c),
            DbConn::Postgresql(c) => RunQueryDsl::<PgConnection>::first(self, c),
        }
    }
}

impl<T> Native for T {}

/// A statement diesel would not keep prepared, kept: on SQLite always
/// ([`sqlite_keeps_prepared`]), on PostgreSQL too when it was written for a generic plan
/// ([`keeps_prepared`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kept<Q> {
    query: Q,
    on_postgres: bool,
}

/// Keeps a statement prepared on SQLite, in the connection's statement cache, keyed by its SQL
/// text and bind types. For a statement that diesel will not cache because its text could vary:
/// raw SQL (`diesel::sql_query`), which must then be a constant text, or a statement whose text
/// varies only with a bounded number of values (the ingest's `IN` list of references, at most
/// `MAX_REFERENCES`). (SQLite's multi-row inserts cannot be wrapped: diesel runs them through a
/// SQLite-specific path.) A kept write runs through [`Kept::write`], never `execute`.
///
/// Diesel prepares such a statement again on every run; preparing the ingest's lookup and
/// sighting statements that way was a quarter of the SQLite writer thread's time under `cargo
/// xtask bench http`. PostgreSQL is left as diesel does it: raw SQL unprepared, planned on each
/// run with the values sent, which a statement whose best plan depends on them needs (the DORA
/// edges' optional filters, the rewrite of a commit's lead-time starts). Overrides diesel's
/// `QueryFragment::is_safe_to_cache_prepared`, a documented-hidden method: a diesel upgrade that
/// changes it fails the build, and `tests::raw_sql_is_kept_prepared` checks the effect.
pub(crate) const fn sqlite_keeps_prepared<Q>(query: Q) -> Kept<Q> {
    Kept {
        query,
        on_postgres: false,
    }
}

/// Keeps a statement prepared on both backends: on PostgreSQL a named statement per
/// connection, parsed once and, after its first five runs, normally run on one generic plan
/// (planned without the values). Only for a statement whose every table is reached through the
/// one index its conditions can use, so that the generic plan is the right one whatever the
/// statistics said when it was made, an empty table's included (see `ingest::LOOKUP_SQL`;
/// `ingest::tests` checks the lookup's generic plan on a fresh database). A kept write runs
/// through [`Kept::write`].
pub(crate) const fn keeps_prepared<Q>(query: Q) -> Kept<Q> {
    Kept {
        query,
        on_postgres: true,
    }
}

impl<Q> QueryId for Kept<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Kept<Q> {
    type SqlType = Q::SqlType;
}

impl<Q> Kept<Q> {
    /// Runs a kept write and returns how many rows it wrote. A kept write is loaded, never
    /// executed: diesel's `execute` hands a statement to the connection by reference, and
    /// diesel's `QueryFragment` for `&T` does not pass `is_safe_to_cache_prepared` on, so an
    /// executed statement is prepared again on every run on either backend, whatever the
    /// wrapper says; a loaded one is handed over by value. So the write returns one row per row
    /// it writes (`RETURNING`), read as `U`. `tests::kept_writes_stay_prepared` checks it.
    pub(crate) fn write<'q, Conn, U>(self, conn: &mut Conn) -> QueryResult<usize>
    where
        Conn: Connection,
        Self: LoadQuery<'q, Conn, U>,
    {
        Ok(self.load::<U>(conn)?.len())
    }

    /// [`Kept::write`] on the backend's own connection type.
    pub(crate) fn write_on<'q, U>(self, conn: &mut DbConn) -> QueryResult<usize>
    where
        Self: LoadQuery<'q, SqliteConnection, U> + LoadQuery<'q, PgConnection, U>,
    {
        match conn {
            DbConn::Sqlite(c) => self.write::<_, U>(c),
            DbConn::Postgresql(c) => self.write::<_, U>(c),
        }
    }
}

impl<Q, Conn> RunQueryDsl<Conn> for Kept<Q> {}

impl<Q: QueryFragment<Sqlite>> QueryFragment<Sqlite> for Kept<Q> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        self.query.walk_ast(out)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &Sqlite) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Kept<Q> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.query.walk_ast(out)
    }

    fn is_safe_to_cache_prepared(&self, backend: &Pg) -> QueryResult<bool> {
        if self.on_postgres {
            Ok(true)
        } else {
            self.query.is_safe_to_cache_prepared(backend)
        }
    }
}

/// Where the data lives.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// An SQLite file (`sqlite://path`, `sqlite:///abs/path` or a plain path).
    Sqlite(PathBuf),
    /// A PostgreSQL database (`postgres://…` or `postgresql://…`).
    Postgres(String),
}

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL names no supported backend.
    #[error(
        "unsupported database URL {0:?}: use a file path or sqlite://path for SQLite, postgres://user:password@host/db for PostgreSQL"
    )]
    BadUrl(String),
    /// The database refused or could not be reached.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The URL, password hidden.
        url: String,
        /// What the driver said.
        reason: String,
    },
    /// Migrations failed.
    #[error("cannot migrate {url}: {reason}")]
    Migrate {
        /// The URL, password hidden.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

impl DatabaseUrl {
    /// Reads a database URL or SQLite path.
    pub fn parse(value: &str) -> Result<Self, OpenError> {
        let value = value.trim();
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            return Ok(Self::Postgres(value.to_owned()));
        }
        let path = value.strip_prefix("sqlite://").unwrap_or(value);
        let path = path.strip_prefix("sqlite:").unwrap_or(path);
        if path.is_empty() || path.contains("://") || path.contains(":memory:") {
            return Err(OpenError::BadUrl(redact(value)));
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }

    /// Whether this is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    /// Opens one connection for the readers: on SQLite it reads through a memory map
    /// (docs/ARCHITECTURE.md, "SQLite readers read through a memory map").
    pub fn connect_reader(&self) -> Result<DbConn, OpenError> {
        self.open(true)
    }

    /// Opens one connection, set up for durable writes.
    pub fn connect(&self) -> Result<DbConn, OpenError> {
        self.open(false)
    }

    fn open(&self, reader: bool) -> Result<DbConn, OpenError> {
        let fail = |reason: String| OpenError::Connect {
            url: self.to_string(),
            reason,
        };
        match self {
            Self::Sqlite(path) => {
                let path = path
                    .to_str()
                    .ok_or_else(|| fail("path is not UTF-8".to_owned()))?;
                let mut conn =
                    SqliteConnection::establish(path).map_err(|e| fail(e.to_string()))?;
                // busy_timeout first, so the pragmas below wait for a concurrent writer.
                // temp_store = MEMORY keeps savepoint sub-journals (one per request in a group
                // commit) in memory instead of spilling each to a temporary file. One batch, so
                // that opening a connection is one statement.
                let map = if reader { MMAP_SIZE } else { 0 };
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = 10000;
                     PRAGMA journal_mode = WAL;
                     PRAGMA synchronous = FULL;
                     PRAGMA foreign_keys = ON;
                     PRAGMA temp_store = MEMORY;
                     PRAGMA cache_size = -16384;
                     PRAGMA mmap_size = {map};"
                ))
                .map_err(|e| fail(e.to_string()))?;
                Ok(DbConn::Sqlite(conn))
            }
            Self::Postgres(url) => {
                let mut conn = PgConnection::establish(url).map_err(|e| fail(e.to_string()))?;
                conn.batch_execute(
                    "SET synchronous_commit = on; SET application_name = 'shiplog';",
                )
                .map_err(|e| fail(e.to_string()))?;
                Ok(DbConn::Postgresql(conn))
            }
        }
    }
}

/// How much of a SQLite file each connection maps into memory for reading.
const MMAP_SIZE: i64 = 1 << 30;

/// Hides the password of a URL.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Self::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_backend() {
        assert_eq!(
            DatabaseUrl::parse("shiplog.db").unwrap(),
            DatabaseUrl::Sqlite("shiplog.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/shiplog.db").unwrap(),
            DatabaseUrl::Sqlite("/var/lib/shiplog.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/s.db").unwrap(),
            DatabaseUrl::Sqlite("data/s.db".into())
        );
        assert!(
            DatabaseUrl::parse("postgresql://u:p@h/db")
                .unwrap()
                .is_postgres()
        );
        for bad in ["", "mysql://x/y", ":memory:", "sqlite://"] {
            assert!(DatabaseUrl::parse(bad).is_err(), "{bad:?}");
        }
    }

    /// The bundled SQLite is built with the options of `.cargo/config.toml`: multi-thread mode
    /// (each connection is used by one thread at a time) and no memory statistics.
    #[test]
    fn sqlite_is_built_without_per_call_mutexes() {
        #[derive(diesel::QueryableByName)]
        struct CompileOption {
            #[diesel(sql_type = diesel::sql_types::Text)]
            compile_options: String,
        }
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        let options: Vec<String> = diesel::sql_query("PRAGMA compile_options")
            .load::<CompileOption>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|o| o.compile_options)
            .collect();
        assert!(options.iter().any(|o| o == "THREADSAFE=2"), "{options:?}");
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
    }

    /// SQLite readers read through a memory map, the writer does not (docs/ARCHITECTURE.md):
    /// the pragma is silently capped to what the build allows, so check what it became.
    #[test]
    fn sqlite_readers_read_through_a_memory_map() {
        #[derive(diesel::QueryableByName)]
        struct MmapSize {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            mmap_size: i64,
        }
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::Sqlite(dir.path().join("map.db"));
        let size = |conn: DbConn| {
            let DbConn::Sqlite(mut conn) = conn else {
                panic!("a SQLite URL opens a SQLite connection");
            };
            diesel::sql_query("PRAGMA mmap_size")
                .get_result::<MmapSize>(&mut conn)
                .unwrap()
                .mmap_size
        };
        assert_eq!(size(url.connect_reader().unwrap()), MMAP_SIZE);
        assert_eq!(
            size(url.connect().unwrap()),
            0,
            "the writer reads without a map"
        );
    }

    /// Counts, from now on, the statements `conn` puts in its statement cache.
    fn count_cached(conn: &mut DbConn) -> std::sync::Arc<std::sync::Mutex<usize>> {
        use diesel::connection::InstrumentationEvent;

        let cached = std::sync::Arc::new(std::sync::Mutex::new(0));
        let counter = std::sync::Arc::clone(&cached);
        let instrumentation = move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::CacheQuery { .. } = event {
                *counter.lock().unwrap() += 1;
            }
        };
        match conn {
            DbConn::Sqlite(c) => c.set_instrumentation(instrumentation),
            DbConn::Postgresql(c) => c.set_instrumentation(instrumentation),
        }
        cached
    }

    /// How many statements a connection put in its statement cache while running one raw
    /// statement twice: bare (`None`), kept on SQLite only (`Some(false)`), or on both
    /// (`Some(true)`).
    fn cached_statements(conn: &mut DbConn, kept: Option<bool>) -> usize {
        #[derive(diesel::QueryableByName)]
        struct Sum {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            sum: i64,
        }
        let cached = count_cached(conn);
        for n in 0..2_i64 {
            let query =
                diesel::sql_query("SELECT $1 + 1 AS sum").bind::<diesel::sql_types::BigInt, _>(n);
            let sum = match kept {
                None => query.get_result_on::<Sum>(conn),
                Some(false) => sqlite_keeps_prepared(query).get_result_on::<Sum>(conn),
                Some(true) => keeps_prepared(query).get_result_on::<Sum>(conn),
            };
            assert_eq!(sum.unwrap().sum, n + 1);
        }
        *cached.lock().unwrap()
    }

    #[test]
    fn raw_sql_is_kept_prepared() {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::Sqlite(dir.path().join("kept.db"));
        assert_eq!(cached_statements(&mut url.connect().unwrap(), None), 0);
        for both in [false, true] {
            assert_eq!(
                cached_statements(&mut url.connect().unwrap(), Some(both)),
                1,
                "prepared once, run twice"
            );
        }
        if let Some(db) = crate::testdb::TestDb::postgres() {
            let url = DatabaseUrl::parse(db.url()).unwrap();
            assert_eq!(
                cached_statements(&mut url.connect().unwrap(), Some(false)),
                0,
                "PostgreSQL plans each run with its values"
            );
            assert_eq!(
                cached_statements(&mut url.connect().unwrap(), Some(true)),
                1,
                "PostgreSQL keeps a statement written for a generic plan"
            );
        }
    }

    /// How many statements a connection put in its statement cache while running one raw
    /// `UPDATE` twice, kept prepared on both backends: as a kept write, or executed.
    fn cached_writes(conn: &mut DbConn, as_write: bool) -> usize {
        #[derive(diesel::QueryableByName)]
        struct Written {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            #[expect(dead_code, reason = "the rows are only counted")]
            x: i64,
        }
        conn.batch_execute("CREATE TABLE kept (x BIGINT NOT NULL);")
            .unwrap();
        diesel::sql_query("INSERT INTO kept VALUES (0)")
            .execute_on(conn)
            .unwrap();
        let cached = count_cached(conn);
        for n in 1..3_i64 {
            let update = keeps_prepared(
                diesel::sql_query("UPDATE kept SET x = $1 RETURNING x")
                    .bind::<diesel::sql_types::BigInt, _>(n),
            );
            let written = if as_write {
                update.write_on::<Written>(conn)
            } else {
                update.execute_on(conn)
            };
            assert_eq!(written.unwrap(), 1);
        }
        *cached.lock().unwrap()
    }

    #[test]
    fn kept_writes_stay_prepared() {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::Sqlite(dir.path().join("writes.db"));
        assert_eq!(cached_writes(&mut url.connect().unwrap(), true), 1);
        let url = DatabaseUrl::Sqlite(dir.path().join("executed.db"));
        assert_eq!(
            cached_writes(&mut url.connect().unwrap(), false),
            0,
            "diesel prepares an executed statement again, wrapper or not"
        );
        if let Some(db) = crate::testdb::TestDb::postgres() {
            let url = DatabaseUrl::parse(db.url()).unwrap();
            assert_eq!(cached_writes(&mut url.connect().unwrap(), true), 1);
        }
    }

    #[test]
    fn passwords_never_print() {
        let url = DatabaseUrl::parse("postgres://shiplog:hunter2@db:5432/shiplog").unwrap();
        assert_eq!(url.to_string(), "postgres://shiplog:***@db:5432/shiplog");
        assert!(!format!("{url:?}").contains("hunter2"));
        let err = DatabaseUrl::parse("mysql://root:hunter2@db/x").unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }

    /// SQLite reads `$n` as a named parameter and numbers named parameters in order of first
    /// appearance, while diesel binds by position: a raw statement whose `$3` appears before
    /// its `$2` would bind the wrong values on SQLite only.
    #[test]
    fn raw_statements_name_their_parameters_in_order() {
        for (name, sql) in [
            ("BOARD_SQL", crate::environments::BOARD_SQL),
            ("DORA_EDGES_SQL", crate::deployments::dora::DORA_EDGES_SQL),
            (
                "ROWS_FOR_DAYS_SQL",
                crate::deployments::dora_days::ROWS_FOR_DAYS_SQL,
            ),
            ("LOOKUP_SQL", crate::deployments::ingest::LOOKUP_SQL),
            (
                "SIGHTING_SQL",
                crate::deployments::ingest::sightings::SIGHTING_SQL,
            ),
            (
                "RESTART_SQL",
                crate::deployments::ingest::sightings::RESTART_SQL,
            ),
            (
                "RESTART_OWNER_SQL",
                crate::deployments::ingest::sightings::RESTART_OWNER_SQL,
            ),
            (
                "SHARE_SQL",
                crate::deployments::ingest::sightings::SHARE_SQL,
            ),
            ("claim_sql", crate::hooks::claim_sql!("")),
        ] {
            let mut highest = 0u32;
            let mut rest = sql;
            while let Some(at) = rest.find('$') {
                rest = rest.get(at + 1..).unwrap_or_default();
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let n: u32 = digits.parse().unwrap();
                assert!(
                    n <= highest + 1,
                    "{name}: ${n} appears before ${}",
                    highest + 1
                );
                highest = highest.max(n);
            }
            assert!(highest > 0, "{name} has parameters");
        }
    }

    /// Rule 3: outside this module, no code but tests names a backend's variant of `DbConn`;
    /// per-backend code goes through `per_backend!`.
    #[test]
    fn one_style_per_backend() {
        fn sources(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    sources(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    found.push(path);
                }
            }
        }
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        assert!(files.len() > 20, "{files:?}");
        let mut offending = Vec::new();
        for file in files {
            if file.ends_with("conn.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            let code = text
                .split("\n#[cfg(test)]\nmod tests")
                .next()
                .unwrap_or_default();
            for (number, line) in code.lines().enumerate() {
                if line.contains("DbConn::Sqlite") || line.contains("DbConn::Postgresql") {
                    offending.push(format!("{}:{}: {line}", file.display(), number + 1));
                }
            }
        }
        assert!(offending.is_empty(), "{offending:#?}");
    }
}
