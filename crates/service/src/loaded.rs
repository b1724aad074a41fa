//! The per-process state of a knowledge base loaded for search.
//!
//! Invariant: one per knowledge base per process (keyed by id, so a deleted and recreated
//! knowledge base is never served from a stale entry), shared by every handle and request.

use groundwork_core::KnowledgeBase;
use groundwork_embed::Embedder;
use groundwork_search::LiveIndex;
use std::sync::Arc;

/// A knowledge base loaded for search: its embedder and its live search state (indexes and
/// document catalog). One per knowledge base per process, shared by every handle and so by
/// every concurrent request.
pub(crate) struct LoadedKb {
    pub(crate) kb: KnowledgeBase,
    pub(crate) embedder: Arc<dyn Embedder>,
    pub(crate) live: LiveIndex,
}
