//! Result fusion for hybrid search: weighted reciprocal rank fusion (RRF).
//!
//! RRF only looks at ranks, so BM25 scores and cosine similarities need no
//! calibration against each other.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{IndexError, ScoredChunk, rank_order};

/// Which retrievers a search uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchType {
    #[default]
    Hybrid,
    Semantic,
    Lexical,
}

impl SearchType {
    pub fn as_str(self) -> &'static str {
        match self {
            SearchType::Hybrid => "hybrid",
            SearchType::Semantic => "semantic",
            SearchType::Lexical => "lexical",
        }
    }
}

impl fmt::Display for SearchType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SearchType {
    type Err = IndexError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hybrid" => Ok(SearchType::Hybrid),
            "semantic" => Ok(SearchType::Semantic),
            "lexical" => Ok(SearchType::Lexical),
            _ => Err(IndexError::InvalidSearchType(s.to_owned())),
        }
    }
}

/// Conventional RRF constant from Cormack et al. (2009).
pub const DEFAULT_K_RRF: f32 = 60.0;

/// Weighted reciprocal rank fusion: each list contributes
/// `w / (k_rrf + rank)` (rank starting at 1) for every chunk it contains.
/// Inputs must be ordered best first; the output holds at most `top_k`
/// chunks, best first, ties broken by ascending chunk id.
pub fn rrf(
    lexical: &[ScoredChunk],
    semantic: &[ScoredChunk],
    k_rrf: f32,
    w_lexical: f32,
    w_semantic: f32,
    top_k: usize,
) -> Vec<ScoredChunk> {
    let mut fused: HashMap<u64, ScoredChunk> = HashMap::new();
    for (list, weight) in [(lexical, w_lexical), (semantic, w_semantic)] {
        // A retriever should not list a chunk twice, but if it does only its
        // best rank counts.
        let mut seen = std::collections::HashSet::new();
        for (index, hit) in list.iter().enumerate() {
            if !seen.insert(hit.chunk_id) {
                continue;
            }
            let rank = (index + 1) as f32;
            let entry = fused.entry(hit.chunk_id).or_insert(ScoredChunk {
                chunk_id: hit.chunk_id,
                doc_id: hit.doc_id,
                score: 0.0,
            });
            entry.score += weight / (k_rrf + rank);
        }
    }
    let mut out: Vec<ScoredChunk> = fused.into_values().collect();
    out.sort_by(rank_order);
    out.truncate(top_k);
    out
}
