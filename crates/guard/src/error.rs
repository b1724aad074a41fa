//! The crate's one error type.
//!
//! Errors come from two places only: building a [`crate::Guard`] from a policy (every policy
//! mistake is caught there, with the offending name, so a bad policy fails at start-up rather
//! than on the first request) and the embedder. The checks themselves never fail: a check that
//! cannot run records a [`crate::CheckError`] in its assessment and, with `fail_closed`, blocks.

use thiserror::Error;

/// Everything that can go wrong building or running a guard.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum GuardError {
    /// The policy's `name` is empty or blank.
    #[error("guard policy name must not be empty")]
    EmptyPolicyName,
    /// A policy field holds a value outside its allowed range or format.
    #[error("invalid guard policy field `{field}`: {reason}")]
    InvalidPolicy { field: String, reason: String },
    /// A threshold is not a finite number inside its allowed range.
    #[error("threshold `{field}` = {value} is outside {min}..={max}")]
    InvalidThreshold {
        field: String,
        value: f32,
        min: f32,
        max: f32,
    },
    /// Two entries of one kind share a name (topics, regexes, entity types).
    #[error("duplicate {kind} `{name}` in guard policy")]
    Duplicate { kind: &'static str, name: String },
    /// A custom regex did not compile, or is too long, too large, or matches the empty string.
    #[error("sensitive-information regex `{name}` is invalid: {reason}")]
    InvalidRegex { name: String, reason: String },
    /// A denied topic is malformed (empty definition, over-long fields…).
    #[error("denied topic `{name}` is invalid: {reason}")]
    InvalidTopic { name: String, reason: String },
    /// More denied topics than the engine accepts.
    #[error("too many denied topics: {count} (at most {max})")]
    TooManyTopics { count: usize, max: usize },
    /// A denied topic with more examples than the engine accepts.
    #[error("denied topic `{topic}` has {count} examples (at most {max})")]
    TooManyExamples { topic: String, count: usize, max: usize },
    /// A custom word or phrase the word filter cannot match as whole words.
    #[error("custom word `{word}` is invalid: {reason}")]
    InvalidWord { word: String, reason: String },
    /// The policy has denied topics but no embedder was supplied.
    #[error("the guard policy has denied topics, which need an embedder, but none was given")]
    EmbedderRequired,
    /// The embedder returned an error.
    #[error("embedder failed: {0}")]
    Embedder(String),
    /// The embedder answered with the wrong number of vectors, mixed dimensions, or non-finite
    /// values.
    #[error("embedder returned unusable vectors: {0}")]
    EmbedderShape(String),
}
