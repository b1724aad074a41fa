//! Answers with citations.
//!
//! One shape serves both the extractive answer (sentences picked from retrieved chunks, no LLM)
//! and the generated answer of a later milestone: the text, plus citations that each cover a
//! span of that text and point to the references that support it.

use crate::{ChunkId, DocumentId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerMode {
    /// Sentences quoted from the sources; no model wrote anything.
    Extractive,
    /// Text written by a language model from the retrieved sources.
    Generated,
    /// Nothing relevant was found; `text` says so.
    NoAnswer,
    /// A guardrail blocked the question or the answer; `text` is the policy's blocked message.
    Blocked,
}

/// Where a piece of evidence lives: the object, its version, the chunk, and the span in the
/// document's extracted text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    pub uri: String,
    pub object_version: Option<String>,
    pub document_id: DocumentId,
    pub chunk_id: ChunkId,
    /// Unicode-scalar span of the cited text within the document's extracted text.
    pub char_start: usize,
    pub char_end: usize,
    pub page: Option<u32>,
    pub heading: Option<String>,
    /// The cited text itself.
    pub excerpt: String,
}

/// A span of the answer text and the references that support it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Citation {
    /// Byte span within [`Answer::text`].
    pub start: usize,
    pub end: usize,
    pub references: Vec<Reference>,
}

/// One sentence of an extractive answer with its relevance score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswerSentence {
    pub text: String,
    pub score: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub mode: AnswerMode,
    pub text: String,
    pub citations: Vec<Citation>,
    /// Identifies the models involved (embedder fingerprint, and the LLM that wrote the text).
    pub models: Vec<String>,
    /// Tokens the LLM was billed for, where its server reported them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<TokenUsage>,
    /// What the knowledge base's guardrail policy did, when one applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardrail: Option<crate::guardrail::GuardrailTrace>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}
