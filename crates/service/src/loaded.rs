//! The per-process state of a knowledge base loaded for search.
//!
//! Also the searchable catalogue of a tables knowledge base ([`Catalogue`]), rebuilt when
//! its stamp (tables, descriptions, examples, quality runs, grants) moves.
//!
//! Invariant: one per knowledge base per process (keyed by id, so a deleted and recreated
//! knowledge base is never served from a stale entry), shared by every handle and request.

use groundwork_core::KnowledgeBase;
use groundwork_embed::Embedder;
use groundwork_search::LiveIndex;
use groundwork_search::tables::TableIndex;
use groundwork_store::SqlExample;
use std::collections::HashMap;
use std::sync::Arc;

/// A knowledge base loaded for search: its query embedder and its live search state (indexes
/// and document catalog). One per knowledge base per process, shared by every handle and so by
/// every concurrent request.
pub(crate) struct LoadedKb {
    pub(crate) kb: KnowledgeBase,
    /// The knowledge base's embedder behind a gatherer (`groundwork_embed::GatheringEmbedder`):
    /// concurrent searches share its batched calls. Same fingerprint as the embedder syncs use.
    pub(crate) embedder: Arc<dyn Embedder>,
    pub(crate) live: LiveIndex,
}

/// A table's and its columns' descriptions as resolved for prompts and cards.
#[derive(Debug, Clone, Default)]
pub(crate) struct Described {
    pub(crate) table: String,
    pub(crate) table_origin: &'static str,
    pub(crate) columns: HashMap<String, String>,
    pub(crate) person_written: bool,
}

/// The searchable catalogue of one tables knowledge base, as of `stamp`.
pub(crate) struct Catalogue {
    pub(crate) stamp: String,
    pub(crate) index: TableIndex,
    /// Table id → descriptions.
    pub(crate) described: HashMap<i64, Described>,
    pub(crate) examples: Vec<SqlExample>,
}
