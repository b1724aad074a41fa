//! The table engine's typed errors. Each maps to one row of the error-code table; messages
//! name what the caller typed, never a table the caller may not know of.

use datafusion::error::DataFusionError;
use groundwork_core::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// Malformed SQL, an unknown column, a type error.
    #[error("{0}")]
    Invalid(String),
    /// A statement that is not one read-only query (DDL, DML, COPY, SET, table functions, …).
    #[error("refused: {0}")]
    Refused(String),
    /// A table that does not exist — or that the caller may not read, which is the same to them.
    #[error("{0}")]
    NotFound(String),
    #[error("the query did not finish within {0} s")]
    Timeout(u64),
    #[error("the query needed more memory than its limit of {0} MiB")]
    ResourcesExhausted(u64),
    /// A file, bucket or database behind a table could not be read.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error in the table engine: {0}")]
    Internal(String),
}

impl SqlError {
    pub fn code(&self) -> ErrorCode {
        match self {
            SqlError::Invalid(_) | SqlError::Refused(_) => ErrorCode::InvalidRequest,
            SqlError::NotFound(_) => ErrorCode::NotFound,
            SqlError::Timeout(_) => ErrorCode::Timeout,
            SqlError::ResourcesExhausted(_) => ErrorCode::ResourcesExhausted,
            SqlError::Unavailable(_) => ErrorCode::SourceUnavailable,
            SqlError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// Classifies an engine error: planning and type errors are the caller's; I/O is the
    /// source's; anything else is ours.
    pub(crate) fn from_datafusion(error: DataFusionError, memory_mib: u64) -> SqlError {
        match error.find_root() {
            DataFusionError::ResourcesExhausted(_) => SqlError::ResourcesExhausted(memory_mib),
            DataFusionError::SQL(e, _) => SqlError::Invalid(format!("SQL syntax: {e}")),
            DataFusionError::Plan(message) => SqlError::Invalid(clean(message)),
            DataFusionError::SchemaError(e, _) => SqlError::Invalid(e.to_string()),
            DataFusionError::NotImplemented(message) => {
                SqlError::Invalid(format!("not supported: {message}"))
            }
            DataFusionError::ObjectStore(e) => SqlError::Unavailable(e.to_string()),
            DataFusionError::IoError(e) => SqlError::Unavailable(e.to_string()),
            DataFusionError::ArrowError(e, _) => SqlError::Invalid(e.to_string()),
            DataFusionError::Execution(message) => SqlError::Invalid(clean(message)),
            DataFusionError::External(e) => match e.downcast_ref::<SqlError>() {
                Some(inner) => inner.duplicate(),
                None => SqlError::Unavailable(e.to_string()),
            },
            other => SqlError::Internal(other.to_string()),
        }
    }

    fn duplicate(&self) -> SqlError {
        match self {
            SqlError::Invalid(m) => SqlError::Invalid(m.clone()),
            SqlError::Refused(m) => SqlError::Refused(m.clone()),
            SqlError::NotFound(m) => SqlError::NotFound(m.clone()),
            SqlError::Timeout(s) => SqlError::Timeout(*s),
            SqlError::ResourcesExhausted(m) => SqlError::ResourcesExhausted(*m),
            SqlError::Unavailable(m) => SqlError::Unavailable(m.clone()),
            SqlError::Internal(m) => SqlError::Internal(m.clone()),
        }
    }
}

/// DataFusion's messages carry a trailing backtrace hint; keep the first line.
fn clean(message: &str) -> String {
    message.lines().next().unwrap_or(message).trim().to_owned()
}

pub type Result<T, E = SqlError> = std::result::Result<T, E>;
