//! Connections: which backend a URL names, and how each connection is set up for durability.

use std::fmt;
use std::path::PathBuf;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;

pub use multi::DbConn;

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

    /// Opens one connection, set up for durable writes.
    pub fn connect(&self) -> Result<DbConn, OpenError> {
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
                // commit) in memory instead of spilling each to a temporary file.
                conn.batch_execute(
                    "PRAGMA busy_timeout = 10000;
                     PRAGMA journal_mode = WAL;
                     PRAGMA synchronous = FULL;
                     PRAGMA foreign_keys = ON;
                     PRAGMA temp_store = MEMORY;
                     PRAGMA cache_size = -16384;",
                )
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

    #[test]
    fn passwords_never_print() {
        let url = DatabaseUrl::parse("postgres://shiplog:hunter2@db:5432/shiplog").unwrap();
        assert_eq!(url.to_string(), "postgres://shiplog:***@db:5432/shiplog");
        assert!(!format!("{url:?}").contains("hunter2"));
        let err = DatabaseUrl::parse("mysql://root:hunter2@db/x").unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }
}
