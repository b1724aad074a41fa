//! The search state of a knowledge base, and retrieval inside an access decision.
//!
//! Invariant: retrieval ranks only inside the allow-list of documents the caller's policy and
//! filter admit, decided *before* ranking over the in-memory document catalog, and every hit is
//! checked again against the stored document when it is read back. A lagging catalog or index
//! can only drop a result, never leak one.
//!
//! [`LiveIndex`] is the one home of a knowledge base's derived state in a process: the indexes
//! (`indexes`, behind a lock so searches run during a sync) and the document catalog with the
//! allow-lists recently derived from it (`catalog`). Both follow the store's change log: sync
//! calls [`LiveIndex::catch_up`] after its commits, and every search [`LiveIndex::refresh`]es
//! first, so the sync path and the query path meet here from above and only go down from
//! here (to `index` and `store`). Nothing here knows of the service, the model or the faces.

pub mod catalog;
pub mod indexes;
pub mod tables;

use catalog::DocumentCatalog;
use groundwork_core::{Filter, Hit, KbId};
use groundwork_govern::access::AccessPolicy;
use groundwork_index::{AllowedDocs, ScoredChunk, SearchType, VectorConfig, rrf};
use groundwork_store::{Store, StoreError};
pub use indexes::{IndexSyncError, KbIndexes};
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// How many recent allow-lists are kept. One is a set of document ids (8 bytes plus hash-table
/// overhead each), so this bounds the cache at a few of the catalog's size.
const RECENT_ALLOW_LISTS: usize = 8;

/// One retrieval, already validated and authorised by the caller.
#[derive(Debug, Clone)]
pub struct Retrieval<'a> {
    pub policy: &'a AccessPolicy,
    pub filter: Option<&'a Filter>,
    pub query: &'a str,
    /// The query's embedding; `None` makes any search type lexical.
    pub vector: Option<&'a [f32]>,
    pub search_type: SearchType,
    pub k: usize,
    /// Candidates taken from each retriever before fusion.
    pub fusion_depth: usize,
    pub fusion: Fusion,
}

/// Weighted reciprocal rank fusion parameters.
#[derive(Debug, Clone, Copy)]
pub struct Fusion {
    pub rrf_k: f32,
    pub lexical_weight: f32,
    pub semantic_weight: f32,
}

/// The derived search state of one knowledge base in this process.
pub struct LiveIndex {
    kb_id: KbId,
    /// Read-locked by searches; write-locked only while catching up with the store.
    indexes: RwLock<KbIndexes>,
    access: Mutex<AccessCache>,
}

/// The document catalog and the allow-lists recently derived from it.
struct AccessCache {
    catalog: DocumentCatalog,
    /// Most recent first; every entry was computed from the catalog's current state.
    recent: VecDeque<(AllowListKey, AllowedDocs)>,
}

/// What an allow-list depends on besides the catalog (whose every move clears the cache): the
/// caller's effective access (its active grants at query time, so an expired grant changes
/// the key) and the filter.
#[derive(PartialEq, Eq)]
struct AllowListKey {
    policy: AccessPolicy,
    filter: Option<String>,
}

impl LiveIndex {
    /// Opens (or creates) the indexes under `dir`, replaying the store's change log into them.
    pub fn open(
        dir: &Path,
        store: &Store,
        kb_id: KbId,
        model: &str,
        dimension: usize,
        vector_config: VectorConfig,
    ) -> Result<LiveIndex, IndexSyncError> {
        let indexes = KbIndexes::open(dir, store, kb_id, model, dimension, vector_config)?;
        Ok(LiveIndex {
            kb_id,
            indexes: RwLock::new(indexes),
            access: Mutex::new(AccessCache {
                catalog: DocumentCatalog::new(kb_id),
                recent: VecDeque::new(),
            }),
        })
    }

    pub fn kb_id(&self) -> KbId {
        self.kb_id
    }

    /// The indexes for writing (catching up, rebuilding).
    pub fn write(&self) -> RwLockWriteGuard<'_, KbIndexes> {
        // Catching up is idempotent (it replays the change log from the index's own
        // sequence), so indexes left by a panicking writer are safe to use and to repair.
        self.indexes.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The indexes for reading.
    pub fn read(&self) -> RwLockReadGuard<'_, KbIndexes> {
        self.indexes.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Replays what the store committed since the indexes last caught up; returns how many
    /// documents moved. The indexes are write-locked only for the replay itself.
    pub fn catch_up(&self, store: &Store) -> Result<usize, IndexSyncError> {
        self.write().catch_up(store)
    }

    /// Catches up only when the store is ahead, so a long-lived process (the server) searches
    /// what the store holds now — including commits of other handles and processes.
    pub fn refresh(&self, store: &Store) -> Result<(), IndexSyncError> {
        let newest = store.last_change_seq(self.kb_id)?;
        if self.read().vector_seq() >= newest {
            return Ok(());
        }
        self.catch_up(store)?;
        Ok(())
    }

    /// Drops both indexes and rebuilds them from the store.
    pub fn rebuild(&self, store: &Store) -> Result<(), IndexSyncError> {
        self.write().rebuild(store)
    }

    /// Ranks inside the allow-list and reads the hits back from the store, re-checking each.
    pub fn retrieve(&self, store: &Store, request: &Retrieval<'_>) -> Result<Vec<Hit>, IndexSyncError> {
        if request.policy.denies_everything() {
            return Ok(Vec::new());
        }
        self.refresh(store)?;
        let allowed = self.allowed_documents(store, request.policy, request.filter)?;
        let allowed = allowed.as_ref();
        let depth = request.k.max(request.fusion_depth);
        let indexes = self.read();
        let ranked: Vec<ScoredChunk> = match (request.search_type, request.vector) {
            (SearchType::Semantic, Some(vector)) => indexes.search_vectors(vector, request.k, allowed),
            (SearchType::Hybrid, Some(vector)) => {
                let lexical = indexes.search_lexical(request.query, depth, allowed)?;
                let semantic = indexes.search_vectors(vector, depth, allowed);
                let fusion = request.fusion;
                rrf(
                    &lexical,
                    &semantic,
                    fusion.rrf_k,
                    fusion.lexical_weight,
                    fusion.semantic_weight,
                    request.k,
                )
            }
            _ => indexes.search_lexical(request.query, request.k, allowed)?,
        };
        drop(indexes);
        Ok(hydrate(store, &ranked, request.policy, request.filter)?)
    }

    /// The documents the policy lets the caller read and the filter admits, or `None` when
    /// that is every document (the administrator, no filter).
    ///
    /// Decided per document over the in-memory catalog, which first catches up with the store,
    /// so grant, ACL and document changes all count from the next query on. The result is
    /// reused while neither the catalog, the policy nor the filter changes.
    fn allowed_documents(
        &self,
        store: &Store,
        policy: &AccessPolicy,
        filter: Option<&Filter>,
    ) -> Result<Option<AllowedDocs>, StoreError> {
        if policy.allows_everything() && filter.is_none() {
            return Ok(None);
        }
        let key = AllowListKey {
            policy: policy.clone(),
            filter: filter.map(|f| serde_json::to_string(f).expect("filters serialise")),
        };
        // A panic while holding the lock leaves at worst a stale cache entry keyed by the
        // state it was computed from, so a poisoned lock is safe to keep using.
        let mut cache = self.access.lock().unwrap_or_else(|p| p.into_inner());
        if cache.catalog.catch_up(store)? {
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
}

/// Reads ranked chunks back from the store. Chunks deleted since the index was written are
/// skipped, and access and the filter are checked again on the stored document.
fn hydrate(
    store: &Store,
    ranked: &[ScoredChunk],
    policy: &AccessPolicy,
    filter: Option<&Filter>,
) -> Result<Vec<Hit>, StoreError> {
    let ids: Vec<i64> = ranked.iter().map(|c| c.chunk_id as i64).collect();
    let records = store.chunks(&ids)?;
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
