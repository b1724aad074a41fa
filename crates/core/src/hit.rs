//! A search result: one chunk, where it came from, and why it ranked.

use crate::{ChunkId, DocumentId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub chunk_id: ChunkId,
    pub document_id: DocumentId,
    /// Fused score for hybrid search, BM25 for lexical, cosine similarity for semantic.
    pub score: f32,
    pub content: String,
    /// Location of the source object, e.g. `s3://bucket/key` or `file:///abs/path`.
    pub uri: String,
    /// The object version (ETag or version id) that this chunk was extracted from.
    pub object_version: Option<String>,
    pub metadata: Map<String, Value>,
    /// Unicode-scalar offsets of the chunk in the document's extracted text.
    pub char_start: usize,
    pub char_end: usize,
    pub page: Option<u32>,
    pub heading: Option<String>,
}
