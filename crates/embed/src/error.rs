//! The error type shared by every part of the crate.

use std::path::PathBuf;

/// Everything that can go wrong while loading, running or fetching a model.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A required model file (or the model folder) does not exist.
    #[error("model file not found: {path} (run `groundwork models fetch`)")]
    ModelNotFound { path: PathBuf },

    /// The model files exist but cannot be used (bad config, missing weight, ...).
    #[error("invalid model: {0}")]
    InvalidModel(String),

    /// The tokenizer could not be loaded or failed on an input.
    #[error("tokenizer error: {0}")]
    Tokenizer(String),

    /// The forward pass failed.
    #[error("inference error: {0}")]
    Inference(String),

    /// A remote embedding service answered with a non-success status.
    #[error("remote embedding service returned HTTP {status}: {message}")]
    Remote { status: u16, message: String },

    /// A remote embedding service could not be reached or sent an unusable reply.
    #[error("remote embedding request failed: {0}")]
    Request(String),

    /// Downloading or unpacking the model failed.
    #[error("model fetch failed: {0}")]
    Fetch(String),

    /// A fetched file does not have the expected SHA-256.
    #[error("sha256 mismatch for {file}: expected {expected}, got {actual}")]
    HashMismatch {
        file: String,
        expected: String,
        actual: String,
    },

    /// Reading or writing a local file failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl EmbedError {
    /// Builds a closure for `map_err` that attaches the path to an I/O error.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> EmbedError {
        let path = path.into();
        move |source| EmbedError::Io { path, source }
    }
}
