//! Retrieval over one knowledge base: lexical, semantic, or both fused.
//!
//! The actor's access (grants × document ACLs) and the metadata filter become one allow-list of
//! documents *before* ranking, and both retrievers rank only within it, so top-k is full
//! whenever enough readable documents match, ranked as a search over only those documents
//! would rank them. Every hit is then re-checked against both when it is read back from the
//! store, and every search appends an audit record with the chunks it returned.

use crate::error::ServiceError;
use crate::home::Groundwork;
use groundwork_core::{Filter, Hit, KnowledgeBase};
use groundwork_embed::Embedder;
use groundwork_govern::access::AccessPolicy;
use groundwork_govern::audit::ChunkRef;
use groundwork_index::{AllowedDocs, ScoredChunk, SearchType, rrf};
use groundwork_ingest::indexes::KbIndexes;
use serde::Serialize;
use std::collections::HashMap;
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

pub struct Searcher<'a> {
    groundwork: &'a Groundwork,
    kb: KnowledgeBase,
    embedder: Arc<dyn Embedder>,
    indexes: KbIndexes,
}

impl<'a> Searcher<'a> {
    pub(crate) fn new(
        groundwork: &'a Groundwork,
        kb: KnowledgeBase,
        embedder: Arc<dyn Embedder>,
        indexes: KbIndexes,
    ) -> Self {
        Searcher {
            groundwork,
            kb,
            embedder,
            indexes,
        }
    }

    pub fn knowledge_base(&self) -> &KnowledgeBase {
        &self.kb
    }

    pub(crate) fn groundwork(&self) -> &Groundwork {
        self.groundwork
    }

    pub fn embedder(&self) -> &dyn Embedder {
        self.embedder.as_ref()
    }

    /// Searches as the handle's actor and audits the search.
    pub fn search(&self, request: &SearchRequest) -> Result<SearchResponse, ServiceError> {
        let started = Instant::now();
        let mut entry = self
            .groundwork
            .entry("search", Some(&self.kb.name), request.audit_json());
        entry.models = vec![self.embedder.fingerprint().to_string()];
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
        if policy.denies_everything() {
            return Ok(SearchResponse {
                knowledge_base: self.kb.name.clone(),
                search_type,
                hits: Vec::new(),
                took_ms: started.elapsed().as_secs_f64() * 1000.0,
            });
        }
        let allowed = self.allowed_documents(&policy, request.filter.as_ref())?;
        let depth = request.k.max(config.fusion_depth);
        let ranked: Vec<ScoredChunk> = match search_type {
            SearchType::Lexical => {
                self.indexes
                    .search_lexical(&request.query, request.k, allowed.as_ref())?
            }
            SearchType::Semantic => {
                let query_vector = self.embed_query(&request.query)?;
                self.indexes
                    .search_vectors(&query_vector, request.k, allowed.as_ref())
            }
            SearchType::Hybrid => {
                let lexical = self
                    .indexes
                    .search_lexical(&request.query, depth, allowed.as_ref())?;
                let query_vector = self.embed_query(&request.query)?;
                let semantic = self
                    .indexes
                    .search_vectors(&query_vector, depth, allowed.as_ref());
                rrf(
                    &lexical,
                    &semantic,
                    config.rrf_k,
                    config.lexical_weight,
                    config.semantic_weight,
                    request.k,
                )
            }
        };
        let hits = self.hydrate(&ranked, &policy, request.filter.as_ref())?;
        Ok(SearchResponse {
            knowledge_base: self.kb.name.clone(),
            search_type,
            hits,
            took_ms: started.elapsed().as_secs_f64() * 1000.0,
        })
    }

    fn embed_query(&self, query: &str) -> Result<Vec<f32>, ServiceError> {
        let mut vectors = self.embedder.embed(&[query])?;
        vectors
            .pop()
            .ok_or_else(|| ServiceError::invalid("the embedder returned no vector"))
    }

    /// The documents the actor may read and the filter admits, or `None` when that is every
    /// document (the administrator, no filter).
    fn allowed_documents(
        &self,
        policy: &AccessPolicy,
        filter: Option<&Filter>,
    ) -> Result<Option<AllowedDocs>, ServiceError> {
        if policy.allows_everything() && filter.is_none() {
            return Ok(None);
        }
        let documents = self.groundwork.store().document_metadata(self.kb.id)?;
        Ok(Some(
            documents
                .into_iter()
                .filter(|(_, uri, metadata)| {
                    policy.can_read(uri, metadata) && filter.is_none_or(|f| f.matches(metadata))
                })
                .map(|(id, _, _)| id as u64)
                .collect(),
        ))
    }

    /// Reads ranked chunks back from the store. Chunks deleted since the index was written are
    /// skipped, and the filter is checked again on the stored metadata.
    fn hydrate(
        &self,
        ranked: &[ScoredChunk],
        policy: &AccessPolicy,
        filter: Option<&Filter>,
    ) -> Result<Vec<Hit>, ServiceError> {
        let ids: Vec<i64> = ranked.iter().map(|c| c.chunk_id as i64).collect();
        let records = self.groundwork.store().chunks(&ids)?;
        let scores: HashMap<i64, f32> = ranked.iter().map(|c| (c.chunk_id as i64, c.score)).collect();
        Ok(records
            .into_iter()
            .filter(|r| policy.can_read(&r.uri, &r.metadata) && filter.is_none_or(|f| f.matches(&r.metadata)))
            .map(|r| Hit {
                chunk_id: r.id,
                document_id: r.document_id,
                score: scores.get(&r.id).copied().unwrap_or_default(),
                content: r.text,
                uri: r.uri,
                object_version: r.object_version,
                metadata: r.metadata,
                char_start: r.char_start,
                char_end: r.char_end,
                page: r.page,
                heading: r.heading,
            })
            .collect())
    }
}
