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
use groundwork_ingest::catalog::DocumentCatalog;
use groundwork_ingest::indexes::KbIndexes;
use groundwork_store::Store;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

/// Most results one request may ask for.
pub const MAX_K: usize = 1000;

/// How many recent allow-lists a searcher keeps. One is a set of document ids (8 bytes plus
/// hash-table overhead each), so this bounds the cache at a few of the catalog's size.
const RECENT_ALLOW_LISTS: usize = 8;

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

/// A knowledge base loaded for search: its embedder, its indexes in memory, and the document
/// catalog that access decisions are made over. One per knowledge base per process, shared by
/// every handle and so by every concurrent request.
pub(crate) struct LoadedKb {
    kb: KnowledgeBase,
    embedder: Arc<dyn Embedder>,
    /// Read-locked by searches; write-locked only while catching up with the store.
    indexes: RwLock<KbIndexes>,
    access: Mutex<AccessCache>,
}

impl LoadedKb {
    pub(crate) fn new(kb: KnowledgeBase, embedder: Arc<dyn Embedder>, indexes: KbIndexes) -> LoadedKb {
        let access = Mutex::new(AccessCache {
            catalog: DocumentCatalog::new(kb.id),
            recent: VecDeque::new(),
        });
        LoadedKb {
            kb,
            embedder,
            indexes: RwLock::new(indexes),
            access,
        }
    }

    pub(crate) fn write_indexes(&self) -> RwLockWriteGuard<'_, KbIndexes> {
        // Catching up is idempotent (it replays the change log from the index's own
        // sequence), so indexes left by a panicking writer are safe to use and to repair.
        self.indexes.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read_indexes(&self) -> RwLockReadGuard<'_, KbIndexes> {
        self.indexes.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Replays changes another handle or process committed since the indexes were last caught
    /// up, so a long-lived process (the server) searches what the store holds now.
    fn refresh(&self, store: &Store) -> Result<(), ServiceError> {
        let newest = store.last_change_seq(self.kb.id)?;
        if self.read_indexes().vector_seq() >= newest {
            return Ok(());
        }
        self.write_indexes().catch_up(store)?;
        Ok(())
    }
}

/// The document catalog and the allow-lists recently derived from it.
struct AccessCache {
    catalog: DocumentCatalog,
    /// Most recent first; every entry was computed from the catalog's current state.
    recent: VecDeque<(AllowListKey, AllowedDocs)>,
}

/// What an allow-list depends on besides the catalog (whose every move clears the cache): the
/// actor's effective access (its active grants at query time, so an expired grant changes
/// the key) and the filter.
#[derive(PartialEq, Eq)]
struct AllowListKey {
    policy: AccessPolicy,
    filter: Option<String>,
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
        if policy.denies_everything() {
            return Ok(SearchResponse {
                knowledge_base: self.loaded.kb.name.clone(),
                search_type,
                hits: Vec::new(),
                took_ms: started.elapsed().as_secs_f64() * 1000.0,
            });
        }
        self.loaded.refresh(self.groundwork.store())?;
        let allowed = self.allowed_documents(&policy, request.filter.as_ref())?;
        let depth = request.k.max(config.fusion_depth);
        // Embed before taking the index lock, so a catching-up writer never waits on the model.
        let query_vector = match search_type {
            SearchType::Lexical => None,
            SearchType::Semantic | SearchType::Hybrid => Some(self.embed_query(&request.query)?),
        };
        let indexes = self.loaded.read_indexes();
        let ranked: Vec<ScoredChunk> = match (search_type, query_vector) {
            (SearchType::Semantic, Some(query_vector)) => {
                indexes.search_vectors(&query_vector, request.k, allowed.as_ref())
            }
            (SearchType::Hybrid, Some(query_vector)) => {
                let lexical = indexes.search_lexical(&request.query, depth, allowed.as_ref())?;
                let semantic = indexes.search_vectors(&query_vector, depth, allowed.as_ref());
                rrf(
                    &lexical,
                    &semantic,
                    config.rrf_k,
                    config.lexical_weight,
                    config.semantic_weight,
                    request.k,
                )
            }
            _ => indexes.search_lexical(&request.query, request.k, allowed.as_ref())?,
        };
        drop(indexes);
        let hits = self.hydrate(&ranked, &policy, request.filter.as_ref())?;
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

    /// The documents the actor may read and the filter admits, or `None` when that is every
    /// document (the administrator, no filter).
    ///
    /// Decided per document over the in-memory catalog, which first catches up with the store,
    /// so grant, ACL and document changes all count from the next query on. The result is
    /// reused while neither the catalog, the policy nor the filter changes.
    fn allowed_documents(
        &self,
        policy: &AccessPolicy,
        filter: Option<&Filter>,
    ) -> Result<Option<AllowedDocs>, ServiceError> {
        if policy.allows_everything() && filter.is_none() {
            return Ok(None);
        }
        let key = AllowListKey {
            policy: policy.clone(),
            filter: filter.map(|f| serde_json::to_string(f).expect("filters serialise")),
        };
        // A panic while holding the lock leaves at worst a stale cache entry keyed by the
        // state it was computed from, so a poisoned lock is safe to keep using.
        let mut cache = self.loaded.access.lock().unwrap_or_else(|p| p.into_inner());
        if cache.catalog.catch_up(self.groundwork.store())? {
            cache.recent.clear();
        }
        if let Some(position) = cache.recent.iter().position(|(k, _)| *k == key) {
            let entry = cache.recent.remove(position).expect("position is in range");
            let allowed = entry.1.clone();
            cache.recent.push_front(entry);
            return Ok(Some(allowed));
        }
        let allowed: AllowedDocs = cache
            .catalog
            .iter()
            .filter(|(_, doc)| {
                policy.can_read(&doc.uri, &doc.metadata) && filter.is_none_or(|f| f.matches(&doc.metadata))
            })
            .map(|(id, _)| id as u64)
            .collect();
        cache.recent.push_front((key, allowed.clone()));
        cache.recent.truncate(RECENT_ALLOW_LISTS);
        Ok(Some(allowed))
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
