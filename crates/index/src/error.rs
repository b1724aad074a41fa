//! Error type shared by every index structure in this crate.

use tantivy::TantivyError;
use tantivy::directory::error::LockError;

pub type Result<T, E = IndexError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Another writer (usually another process) holds the index lock.
    #[error("index is locked by another writer")]
    Locked,
    /// A persisted file is truncated, malformed or fails its checksum.
    #[error("corrupt index file: {0}")]
    Corrupt(String),
    /// The on-disk index was written with an incompatible schema; rebuild it.
    #[error("index schema mismatch: {0}")]
    SchemaMismatch(String),
    #[error("vector has dimension {got}, index expects {expected}")]
    DimensionMismatch { expected: usize, got: usize },
    #[error("invalid vector: {0}")]
    InvalidVector(String),
    #[error("vector index is full ({0} slots)")]
    CapacityExceeded(usize),
    #[error("unknown search type {0:?} (expected hybrid, semantic or lexical)")]
    InvalidSearchType(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot open index directory: {0}")]
    OpenDirectory(#[from] tantivy::directory::error::OpenDirectoryError),
    #[error("tantivy error: {0}")]
    Tantivy(TantivyError),
}

impl From<TantivyError> for IndexError {
    fn from(err: TantivyError) -> Self {
        match err {
            // Surface lock contention as its own variant so callers can retry
            // or report "another groundwork process is indexing".
            TantivyError::LockFailure(LockError::LockBusy, _) => IndexError::Locked,
            TantivyError::SchemaError(msg) => IndexError::SchemaMismatch(msg),
            other => IndexError::Tantivy(other),
        }
    }
}
