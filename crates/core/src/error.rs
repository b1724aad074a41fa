//! The stable table of error codes.
//!
//! Every typed error in the workspace maps to one of these codes. Scripts match on the code
//! (printed in `--json` output and, later, in HTTP error bodies), never on message text, so a
//! code, once published, keeps its meaning.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request itself is malformed (bad filter, bad flag value, query too long).
    InvalidRequest,
    /// A named thing (knowledge base, source, document, chunk) does not exist.
    NotFound,
    /// The thing to create exists already.
    AlreadyExists,
    /// Another process holds a lock the operation needs (for example a sync in progress).
    Busy,
    /// The embedding model is not installed or cannot be loaded.
    ModelUnavailable,
    /// A source (folder, bucket) could not be listed or read.
    SourceUnavailable,
    /// The home directory has not been initialised or its store is unreadable.
    NotInitialised,
    /// A stored or derived file is corrupt; `index rebuild` or a restore is needed.
    Corrupt,
    /// The credentials are missing, malformed, unknown, revoked or expired.
    Unauthenticated,
    /// The principal is known but not allowed to do this.
    Forbidden,
    /// The language model failed: unreachable, timed out, rate limited, or answered garbage.
    GenerationFailed,
    /// Anything else: a bug or an environment failure. The message says what.
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::NotFound => "not_found",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::Busy => "busy",
            ErrorCode::ModelUnavailable => "model_unavailable",
            ErrorCode::SourceUnavailable => "source_unavailable",
            ErrorCode::NotInitialised => "not_initialised",
            ErrorCode::Corrupt => "corrupt",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::GenerationFailed => "generation_failed",
            ErrorCode::Internal => "internal",
        }
    }

    /// Process exit code for the CLI; distinct per class so scripts can branch on it.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorCode::InvalidRequest => 2,
            ErrorCode::NotFound => 3,
            ErrorCode::AlreadyExists => 4,
            ErrorCode::Busy => 5,
            ErrorCode::ModelUnavailable => 6,
            ErrorCode::SourceUnavailable => 7,
            ErrorCode::NotInitialised => 8,
            ErrorCode::Corrupt => 9,
            ErrorCode::Unauthenticated => 10,
            ErrorCode::Forbidden => 11,
            ErrorCode::GenerationFailed => 12,
            ErrorCode::Internal => 1,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
