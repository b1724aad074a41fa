//! The document catalog: every live document's URI and metadata, held in memory and kept in
//! step with the store's change log like the indexes are.
//!
//! Access decisions and metadata filters are made per document before ranking (see the
//! service's search). Reading and parsing every document's metadata from SQLite on each query
//! costs time proportional to the corpus; the catalog pays it once and then only replays the
//! documents changed since, one indexed query on the change log per search.
//!
//! The catalog is a cache, never an authority: hits are re-checked against the stored document
//! when they are read back, so a catalog that lags the store can only drop a result, never leak
//! one.

use groundwork_core::{DocumentId, KbId};
use groundwork_store::{Store, StoreError};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// One live document as access decisions and filters see it.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    pub uri: String,
    pub metadata: Map<String, Value>,
}

/// The live documents of one knowledge base as of a change-log sequence.
#[derive(Debug, Default)]
pub struct DocumentCatalog {
    kb_id: KbId,
    documents: HashMap<DocumentId, CatalogEntry>,
    seq: u64,
    loaded: bool,
}

impl DocumentCatalog {
    /// An empty catalog; the first [`Self::catch_up`] loads it.
    pub fn new(kb_id: KbId) -> DocumentCatalog {
        DocumentCatalog {
            kb_id,
            ..DocumentCatalog::default()
        }
    }

    /// Brings the catalog up to the store's latest change. Returns whether anything moved.
    pub fn catch_up(&mut self, store: &Store) -> Result<bool, StoreError> {
        if !self.loaded {
            // The sequence is read first: a change that lands between the two reads is then
            // replayed again on the next catch-up rather than missed.
            let seq = store.last_change_seq(self.kb_id)?;
            self.documents = store
                .document_metadata(self.kb_id)?
                .into_iter()
                .map(|(id, uri, metadata)| (id, CatalogEntry { uri, metadata }))
                .collect();
            self.seq = seq;
            self.loaded = true;
            return Ok(true);
        }
        let (changed, newest) = store.changed_documents(self.kb_id, self.seq)?;
        if changed.is_empty() {
            return Ok(false);
        }
        let mut current: HashMap<DocumentId, CatalogEntry> = store
            .document_views(&changed)?
            .into_iter()
            .map(|(id, uri, metadata)| (id, CatalogEntry { uri, metadata }))
            .collect();
        for id in changed {
            match current.remove(&id) {
                Some(entry) => self.documents.insert(id, entry),
                None => self.documents.remove(&id),
            };
        }
        self.seq = newest;
        Ok(true)
    }

    /// The change-log sequence the catalog reflects; it identifies the catalog's state, so
    /// anything derived from the catalog can be cached under it.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn len(&self) -> usize {
        self.documents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (DocumentId, &CatalogEntry)> {
        self.documents.iter().map(|(id, entry)| (*id, entry))
    }
}
