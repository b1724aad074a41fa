//! What can go wrong talking to a model.

/// A failed generation. Messages never include API keys or signatures.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("language model configuration: {0}")]
    Config(String),
    #[error("the language model did not answer within {0} s")]
    Timeout(u64),
    #[error("the language model is rate limiting (HTTP 429) and retries ran out")]
    RateLimited,
    #[error("the language model answered HTTP {status}: {excerpt}")]
    Http { status: u16, excerpt: String },
    #[error("the language model's answer could not be read: {0}")]
    Malformed(String),
    #[error("cannot reach the language model: {0}")]
    Transport(String),
    #[error("the answer broke off after streaming began: {0}")]
    Interrupted(String),
}

impl LlmError {
    /// Worth another attempt: overload, server errors and dropped connections.
    pub(crate) fn retryable(&self) -> bool {
        match self {
            LlmError::RateLimited | LlmError::Transport(_) | LlmError::Timeout(_) => true,
            LlmError::Http { status, .. } => *status == 429 || *status >= 500,
            LlmError::Config(_) | LlmError::Malformed(_) | LlmError::Interrupted(_) => false,
        }
    }
}

/// The first bytes of an error body, for messages (servers put the reason there).
pub(crate) fn excerpt(body: &str) -> String {
    const LIMIT: usize = 300;
    let trimmed = body.trim();
    match trimmed.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &trimmed[..cut]),
        None => trimmed.to_owned(),
    }
}
