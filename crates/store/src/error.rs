//! The store's error type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "the store at {path} has schema version {found}, newer than this binary supports ({supported}); upgrade groundwork"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("knowledge base `{0}` not found")]
    KbNotFound(String),
    #[error("knowledge base `{0}` already exists")]
    KbExists(String),
    #[error("source `{0}` is already attached to this knowledge base")]
    SourceExists(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("{0} not found")]
    PrincipalNotFound(String),
    #[error("{0} already exists")]
    PrincipalExists(String),
    #[error("refused: {0}")]
    Refused(String),
    #[error("audit journal: {0}")]
    AuditJournal(String),
    /// A file next to the store (a copy, a journal) could not be read or written.
    #[error("{0}")]
    Io(String),
}

pub(crate) type Result<T, E = StoreError> = std::result::Result<T, E>;
