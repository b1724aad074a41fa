//! Retrieval over one knowledge base: lexical, semantic, or both fused.
//!
//! The actor's access (grants × document ACLs) and the metadata filter become one allow-list of
//! documents *before* ranking, and both retrievers rank only within it, so top-k is full
//! whenever enough readable documents match, ranked as a search over only those documents
//! would rank them. Every hit is then re-checked against both when it is read back from the
//! store, and every search appends an audit record with the chunks it returned.

use crate::error::ServiceError;
use crate::home::Groundwork;
use crate::loaded::LoadedKb;
use groundwork_core::{Filter, Hit, KnowledgeBase};
use groundwork_embed::Embedder;
use groundwork_govern::audit::ChunkRef;
use groundwork_index::SearchType;
use groundwork_search::{Fusion, Retrieval};
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

/// Most results one request may ask for.
pub const MAX_K: usize = 1000;

#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub query: String,
    pub k: usize,
    pub search_type: Option<SearchType>,
    pub filter: Option<Filter>,
}

impl SearchRequest {
    /// The request as the audit log records it (masked when sealed).
    pub(crate) fn audit_json(&self) -> serde_json::Value {
        serde_json::json!({
            "query": self.query,
            "k": self.k,
            "search_type": self.search_type,
            "filter": self.filter,
        })
    }
}

/// The audit log's reference to each returned chunk.
pub(crate) fn chunk_refs(hits: &[Hit]) -> Vec<ChunkRef> {
    hits.iter()
        .map(|hit| ChunkRef {
            chunk_id: hit.chunk_id,
            document_uri: hit.uri.clone(),
            object_version: hit.object_version.clone(),
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchResponse {
    pub knowledge_base: String,
    pub search_type: SearchType,
    pub hits: Vec<Hit>,
    pub took_ms: f64,
}

/// Searches one knowledge base for one handle's actor. Cheap to make: the heavy state lives
/// in the shared [`LoadedKb`].
pub struct Searcher<'a> {
    groundwork: &'a Groundwork,
    loaded: Arc<LoadedKb>,
}

impl<'a> Searcher<'a> {
    pub(crate) fn new(groundwork: &'a Groundwork, loaded: Arc<LoadedKb>) -> Self {
        Searcher { groundwork, loaded }
    }

    pub fn knowledge_base(&self) -> &KnowledgeBase {
        &self.loaded.kb
    }

    pub(crate) fn groundwork(&self) -> &Groundwork {
        self.groundwork
    }

    /// The knowledge base's embedder for queries: concurrent searches share its batched
    /// calls (see `Groundwork::query_embedder`).
    pub fn embedder(&self) -> &dyn Embedder {
        self.loaded.embedder.as_ref()
    }

    /// Searches as the handle's actor and audits the search.
    pub fn search(&self, request: &SearchRequest) -> Result<SearchResponse, ServiceError> {
        let started = Instant::now();
        let mut entry = self
            .groundwork
            .entry("search", Some(&self.loaded.kb.name), request.audit_json());
        entry.models = vec![self.embedder().fingerprint().to_string()];
        let result = self.retrieve(request);
        let chunks = result.as_ref().map(|r| chunk_refs(&r.hits)).unwrap_or_default();
        self.groundwork.record_read(entry, started, &result, chunks)?;
        result
    }

    /// The search itself, unaudited: callers audit the operation it is part of.
    pub(crate) fn retrieve(&self, request: &SearchRequest) -> Result<SearchResponse, ServiceError> {
        let started = Instant::now();
        let config = &self.groundwork.config().search;
        if request.query.len() > config.max_query_bytes {
            return Err(ServiceError::invalid(format!(
                "query is {} bytes; the limit is {}",
                request.query.len(),
                config.max_query_bytes
            )));
        }
        if request.k == 0 || request.k > MAX_K {
            return Err(ServiceError::invalid(format!("k must be between 1 and {MAX_K}")));
        }
        if let Some(filter) = &request.filter {
            filter.validate()?;
        }
        let search_type = request.search_type.unwrap_or(config.default_type);
        let policy = self.groundwork.access_policy()?;
        // Embed before any index lock is taken, so a catching-up writer never waits on the model.
        let vector = match search_type {
            SearchType::Lexical => None,
            _ if policy.denies_everything() => None,
            SearchType::Semantic | SearchType::Hybrid => Some(self.embed_query(&request.query)?),
        };
        let hits = self.loaded.live.retrieve(
            self.groundwork.store(),
            &Retrieval {
                policy: &policy,
                filter: request.filter.as_ref(),
                query: &request.query,
                vector: vector.as_deref(),
                search_type,
                k: request.k,
                fusion_depth: config.fusion_depth,
                fusion: Fusion {
                    rrf_k: config.rrf_k,
                    lexical_weight: config.lexical_weight,
                    semantic_weight: config.semantic_weight,
                },
            },
        )?;
        Ok(SearchResponse {
            knowledge_base: self.loaded.kb.name.clone(),
            search_type,
            hits,
            took_ms: started.elapsed().as_secs_f64() * 1000.0,
        })
    }

    fn embed_query(&self, query: &str) -> Result<Vec<f32>, ServiceError> {
        let mut vectors = self.embedder().embed(&[query])?;
        vectors
            .pop()
            .ok_or_else(|| ServiceError::invalid("the embedder returned no vector"))
    }
}

/// How this process embedded queries since it started: the counters its gatherers share (see
/// `groundwork_embed::GatheringEmbedder`) and the query cache's. Cache hits are searches that
/// did not run the model; benchmarks report them apart from the model's throughput.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct QueryEmbeddingStats {
    /// Embedding calls that went through a gatherer's queue.
    pub gathered_calls: u64,
    /// Batched model calls made for them, and the texts those held.
    pub batches: u64,
    pub batched_texts: u64,
    /// The most texts one batched call held.
    pub largest_batch: u64,
    /// Calls that went straight to the model (many texts at once, or gathering off).
    pub direct_calls: u64,
    /// `[search] query_cache_entries` (0: no cache), and the vectors it holds now.
    pub cache_capacity: usize,
    pub cache_entries: usize,
    pub cache_hits: u64,
    pub cache_misses: u64,
}

impl Groundwork {
    /// See [`QueryEmbeddingStats`]. Process-wide: every handle on this home shares them.
    pub fn query_embedding_stats(&self) -> QueryEmbeddingStats {
        let counted = self.shared.gather_counters.stats();
        let mut stats = QueryEmbeddingStats {
            gathered_calls: counted.gathered_calls,
            batches: counted.batches,
            batched_texts: counted.batched_texts,
            largest_batch: counted.largest_batch,
            direct_calls: counted.direct_calls,
            ..QueryEmbeddingStats::default()
        };
        if let Some(cache) = &self.shared.query_cache {
            stats.cache_capacity = cache.capacity();
            stats.cache_entries = cache.len();
            stats.cache_hits = cache.hits();
            stats.cache_misses = cache.misses();
        }
        stats
    }

    /// A searcher over one knowledge base, acting for this handle's actor.
    ///
    /// The knowledge base is loaded (indexes into memory) on first use in this process and
    /// shared from then on; each search first catches it up with the store.
    pub fn searcher(&self, kb_name: &str) -> Result<Searcher<'_>, ServiceError> {
        let kb = self.shared.store.kb(kb_name)?;
        let loaded = self.loaded_kb(&kb)?;
        Ok(Searcher::new(self, loaded))
    }
}
