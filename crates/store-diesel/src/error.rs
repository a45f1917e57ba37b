//! The adapter's internal error, and how each port is told of it: its own outcomes (a code
//! taken, a limit reached), else a [`BackendFailure`] that keeps the error as its cause.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use shiplog_app::ports::{
    ApplicationStoreError, BackendFailure, DeploymentStoreError, EnvironmentStoreError,
    KeyStoreError, ProjectStoreError, TeamStoreError, WorkspaceStoreError,
};
use shiplog_domain::ids::{ApplicationCode, EnvironmentCode};

/// What a store operation can fail with, before it is told in a port's terms.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The driver failed.
    #[error("database error: {0}")]
    Db(#[from] DieselError),
    /// A stored value does not parse (a bug or a hand-edited row).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The backend cannot be reached (the writer or readers stopped, no connection).
    #[error("{0}")]
    Unavailable(String),
    /// The write's batch or transaction did not commit.
    #[error(transparent)]
    Batch(#[from] crate::exec::BatchFailure),
    /// An exclusive idempotency key was reused with another payload.
    #[error("idempotency conflict on {0}")]
    Conflict(String),
    /// The application does not exist and may not be created.
    #[error("application {0} not found")]
    ApplicationNotFound(ApplicationCode),
    /// The environment does not exist and may not be created.
    #[error("environment {0} not found")]
    EnvironmentNotFound(EnvironmentCode),
    /// The workspace's environment limit is reached.
    #[error("environment limit {0} reached")]
    EnvironmentLimit(u32),
    /// A concurrent transaction won a race on a unique key; rerunning the whole transaction
    /// finds its row (PostgreSQL's writer pool does).
    #[error("a concurrent write won the race: {0}")]
    Raced(#[source] Box<StoreError>),
    /// A listing's cursor names no deployment of the workspace.
    #[error("unknown cursor")]
    UnknownCursor,
}

impl StoreError {
    /// Whether a unique constraint refused the write.
    pub(crate) fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            Self::Db(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }

    /// Whether rerunning the whole transaction may succeed: PostgreSQL aborted it for a
    /// serialization failure or a deadlock with a concurrent one, or it lost a race on a unique
    /// key.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Self::Raced(_)
            | Self::Db(DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _)) => {
                true
            }
            // Diesel has no kind for SQLSTATE 40P01.
            Self::Db(DieselError::DatabaseError(_, info)) => {
                info.message().starts_with("deadlock detected")
            }
            _ => false,
        }
    }

    /// Whether a foreign key refused the write.
    pub(crate) fn is_foreign_key_violation(&self) -> bool {
        matches!(
            self,
            Self::Db(DieselError::DatabaseError(
                DatabaseErrorKind::ForeignKeyViolation,
                _
            ))
        )
    }

    /// Whether the error is about one ingest plan (its conflict, its missing application or
    /// environment, a value the database refuses) rather than about the database.
    pub(crate) fn refuses_the_plan(&self) -> bool {
        matches!(
            self,
            Self::Conflict(_)
                | Self::ApplicationNotFound(_)
                | Self::EnvironmentNotFound(_)
                | Self::EnvironmentLimit(_)
        ) || self.refuses_value()
    }

    /// Whether the database refused a value of the request (text it cannot hold, a number out
    /// of its range, a constraint on a column): the client's error, never an outage.
    pub(crate) fn refuses_value(&self) -> bool {
        let Self::Db(DieselError::DatabaseError(kind, info)) = self else {
            return false;
        };
        match kind {
            DatabaseErrorKind::CheckViolation | DatabaseErrorKind::NotNullViolation => true,
            _ => {
                // PostgreSQL's data exceptions (SQLSTATE class 22) and SQLite's equivalents,
                // which diesel reports without a kind of their own.
                let message = info.message().to_ascii_lowercase();
                [
                    "invalid byte sequence",
                    "character with byte sequence",
                    "value too long",
                    "out of range",
                    "numeric field overflow",
                    "invalid input syntax",
                    "string or blob too big",
                    "datatype mismatch",
                ]
                .iter()
                .any(|needle| message.contains(needle))
            }
        }
    }
}

/// How a write that may clash on a unique key is told to its port: the clash as `taken` (a
/// code or slug already in use), any other failure as the port's usual error.
pub(crate) fn taken_or<E: From<StoreError>>(
    taken: impl FnOnce() -> E,
) -> impl FnOnce(StoreError) -> E {
    move |error| {
        if error.is_unique_violation() {
            taken()
        } else {
            error.into()
        }
    }
}

/// A stored value that does not parse.
pub(crate) fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {value:?}"))
}

/// The port's view of a failure: a value the database refused (the request's fault), or a
/// backend that failed. The error itself is kept as the cause, for the log.
impl From<StoreError> for BackendFailure {
    fn from(error: StoreError) -> Self {
        if error.refuses_value() {
            Self::refused(error)
        } else {
            Self::unavailable(error)
        }
    }
}

/// Ports whose outcomes the store decides where it writes (a code already taken): any other
/// error is a backend failure.
macro_rules! backend_failures {
    ($($port_error:ty),*) => {
        $(impl From<StoreError> for $port_error {
            fn from(error: StoreError) -> Self {
                Self::Backend(error.into())
            }
        })*
    };
}

backend_failures!(
    WorkspaceStoreError,
    ProjectStoreError,
    TeamStoreError,
    ApplicationStoreError
);

impl From<StoreError> for KeyStoreError {
    fn from(error: StoreError) -> Self {
        if error.is_foreign_key_violation() {
            Self::OwnerNotFound
        } else {
            Self::Backend(error.into())
        }
    }
}

impl From<StoreError> for EnvironmentStoreError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::EnvironmentNotFound(code) => Self::EnvironmentNotFound(code),
            StoreError::EnvironmentLimit(limit) => Self::LimitReached { limit },
            other => Self::Backend(other.into()),
        }
    }
}

impl From<StoreError> for DeploymentStoreError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(key) => Self::Conflict(key),
            StoreError::ApplicationNotFound(code) => Self::ApplicationNotFound(code),
            StoreError::EnvironmentNotFound(code) => Self::EnvironmentNotFound(code),
            StoreError::EnvironmentLimit(limit) => Self::EnvironmentLimitReached { limit },
            StoreError::UnknownCursor => Self::UnknownCursor,
            other => Self::Backend(other.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use diesel::result::{DatabaseErrorKind, Error as DieselError};

    use super::*;
    use crate::exec::BatchFailure;

    #[test]
    fn the_detail_keeps_every_cause_once() {
        let driver = || {
            DieselError::DatabaseError(
                DatabaseErrorKind::Unknown,
                Box::new("could not write to file".to_owned()),
            )
        };
        let failed = StoreError::Batch(BatchFailure::Commit(Arc::new(driver())));
        let detail = |error: StoreError| BackendFailure::from(error).detail();
        assert_eq!(
            detail(StoreError::Batch(BatchFailure::Commit(Arc::new(driver())))),
            "the commit failed: could not write to file"
        );
        assert!(
            std::error::Error::source(&failed).is_some(),
            "the cause is kept"
        );
        assert_eq!(
            detail(StoreError::Db(driver())),
            "database error: could not write to file"
        );
        let raced = StoreError::Raced(Box::new(StoreError::Db(driver())));
        assert_eq!(
            detail(raced),
            "a concurrent write won the race: database error: could not write to file"
        );
    }
}
