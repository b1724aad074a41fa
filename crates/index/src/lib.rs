//! Derived, rebuildable search structures for groundwork.
//!
//! Everything in this crate can be regenerated from the document store, so
//! the structures favour speed and simplicity over durability guarantees:
//! each persisted structure records the store sequence number ("watermark")
//! it reflects, letting the caller replay whatever came after a crash.
//!
//! * [`lexical::LexicalIndex`]: BM25 full-text search on tantivy.
//! * [`vector::VectorIndex`]: cosine similarity search, exact scan for small
//!   sets and an HNSW graph ([`hnsw`]) for large ones.
//! * [`fusion`]: weighted reciprocal rank fusion of the two result lists.
//! * [`bench::bench_vectors`]: synthetic benchmark used by the CLI.
//!
//! Access control arrives as an allow-list of document ids
//! ([`AllowedDocs`]) and is applied inside retrieval, so a top-k is always
//! full whenever enough allowed chunks exist.

pub mod allowed;
pub mod bench;
mod distance;
pub mod error;
pub mod fusion;
pub mod hnsw;
pub mod lexical;
mod persist;
mod quantized;
mod topk;
pub mod vector;

pub use allowed::AllowedDocs;
pub use bench::{LatencyStats, VectorBenchReport, bench_vectors, clustered_vectors};
pub use error::{IndexError, Result};
pub use fusion::{SearchType, rrf};
pub use hnsw::HnswParams;
pub use lexical::{LexicalIndex, LexicalWriter};
pub use vector::{VectorConfig, VectorIndex};

use serde::{Deserialize, Serialize};

/// One retrieved chunk with its relevance score (higher is better).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoredChunk {
    pub chunk_id: u64,
    pub doc_id: u64,
    pub score: f32,
}

/// Canonical result order: best score first, ties broken by ascending
/// chunk id so that every retrieval path is deterministic.
pub(crate) fn rank_order(a: &ScoredChunk, b: &ScoredChunk) -> std::cmp::Ordering {
    b.score
        .total_cmp(&a.score)
        .then_with(|| a.chunk_id.cmp(&b.chunk_id))
}
