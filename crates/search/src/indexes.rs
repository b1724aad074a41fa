//! The derived indexes of one knowledge base, and how they follow the store.
//!
//! Both indexes record the change-log sequence they reflect: tantivy in its commit payload, the
//! vector file in its header. Opening them replays the store's change log past that sequence,
//! so a crash anywhere (mid-sync, mid-commit) converges on the next open. The order is always
//! "write the derived index, then record its new sequence", never the reverse, so a sequence
//! can lag its index (harmless replay) but never run ahead of it (lost documents).

use groundwork_core::{DocumentId, KbId};
use groundwork_index::{AllowedDocs, IndexError, LexicalIndex, ScoredChunk, VectorConfig, VectorIndex};
use groundwork_store::{Store, StoreError};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum IndexSyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
}

/// The lexical and vector indexes of one knowledge base.
pub struct KbIndexes {
    kb_id: KbId,
    model: String,
    dir: PathBuf,
    pub lexical: LexicalIndex,
    pub vectors: VectorIndex,
    /// Sequence the in-memory vector index reflects.
    vector_seq: u64,
}

impl KbIndexes {
    /// Opens (or creates) the indexes under `dir` and replays the store's change log into them
    /// (see [`Self::catch_up`]). When another process holds the lexical writer (a running
    /// sync), the lexical index is searched as last committed and only the in-memory vector
    /// index catches up.
    pub fn open(
        dir: &Path,
        store: &Store,
        kb_id: KbId,
        model: &str,
        dimension: usize,
        vector_config: VectorConfig,
    ) -> Result<KbIndexes, IndexSyncError> {
        std::fs::create_dir_all(dir).map_err(IndexError::from)?;
        let lexical = LexicalIndex::open_or_create(&dir.join("lexical"))?;
        let vector_path = dir.join("vectors.bin");
        let (vectors, vector_seq) = match VectorIndex::load_with_config(&vector_path, vector_config) {
            Ok((index, seq)) if index.dim() == dimension => (index, seq),
            // Missing, corrupt or from another model: derived data, so rebuild from the store.
            _ => (VectorIndex::with_config(dimension, vector_config), 0),
        };
        let mut indexes = KbIndexes {
            kb_id,
            model: model.to_string(),
            dir: dir.to_path_buf(),
            lexical,
            vectors,
            vector_seq,
        };
        indexes.catch_up(store)?;
        Ok(indexes)
    }

    /// The change-log sequence the in-memory vector index reflects.
    pub fn vector_seq(&self) -> u64 {
        self.vector_seq
    }

    /// Replays store changes past each index's sequence. Returns how many documents moved.
    pub fn catch_up(&mut self, store: &Store) -> Result<usize, IndexSyncError> {
        let mut moved = 0;
        // Vectors: in memory first; saved to disk below when this process is the writer.
        let (documents, newest) = store.changed_documents(self.kb_id, self.vector_seq)?;
        if newest > self.vector_seq {
            if self.vector_seq == 0 {
                // Nothing loaded from disk: read every vector once rather than per document.
                self.vectors.clear();
                self.load_vectors(store, None)?;
            } else {
                for &document in &documents {
                    self.vectors.remove_doc(document as u64);
                    self.load_vectors(store, Some(document))?;
                }
            }
            self.vector_seq = newest;
            moved = documents.len();
        }
        // Lexical: only with the writer lock; otherwise a concurrent sync is the writer and
        // this process searches the last committed state.
        let lexical_seq = self.lexical.watermark()?;
        let (documents, newest) = store.changed_documents(self.kb_id, lexical_seq)?;
        let writer = match self.lexical.begin() {
            Ok(writer) => Some(writer),
            Err(IndexError::Locked) => None,
            Err(e) => return Err(e.into()),
        };
        let Some(mut writer) = writer else {
            // Another process is writing; show what it has committed so far.
            self.lexical.reload()?;
            return Ok(moved.max(documents.len()));
        };
        if newest > lexical_seq {
            for &document in &documents {
                writer.delete_doc(document as u64);
                for chunk in store.document_chunks(document)? {
                    writer.add_chunk(chunk.id as u64, document as u64, &chunk.text)?;
                }
            }
            writer.commit(newest)?;
            self.lexical.reload()?;
            moved = moved.max(documents.len());
        } else {
            writer.rollback()?;
        }
        if moved > 0 {
            self.build_ann_if_large();
            self.save_vectors()?;
        }
        Ok(moved)
    }

    /// Drops both indexes and rebuilds them from the store.
    pub fn rebuild(&mut self, store: &Store) -> Result<(), IndexSyncError> {
        self.lexical.clear()?;
        let newest = store.last_change_seq(self.kb_id)?;
        let mut writer = self.lexical.begin()?;
        let mut failure = None;
        store.for_each_chunk_text(self.kb_id, |chunk, doc, text| {
            if failure.is_none()
                && let Err(e) = writer.add_chunk(chunk as u64, doc as u64, text)
            {
                failure = Some(e);
            }
        })?;
        if let Some(e) = failure {
            return Err(e.into());
        }
        writer.commit(newest)?;
        self.lexical.reload()?;
        self.vectors.clear();
        self.load_vectors(store, None)?;
        self.vector_seq = newest;
        self.build_ann_if_large();
        self.save_vectors()?;
        Ok(())
    }

    /// Inserts the stored vectors of one document, or of the whole knowledge base.
    fn load_vectors(&mut self, store: &Store, document: Option<DocumentId>) -> Result<(), IndexSyncError> {
        let mut failure = None;
        let vectors = &mut self.vectors;
        store.for_each_chunk_vector(self.kb_id, &self.model, document, |chunk, doc, vector| {
            if failure.is_none()
                && let Err(e) = vectors.insert(chunk as u64, doc as u64, vector)
            {
                failure = Some(e);
            }
        })?;
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    pub fn search_lexical(
        &self,
        query: &str,
        k: usize,
        allowed: Option<&AllowedDocs>,
    ) -> Result<Vec<ScoredChunk>, IndexSyncError> {
        Ok(self.lexical.search(query, k, allowed)?)
    }

    pub fn search_vectors(&self, query: &[f32], k: usize, allowed: Option<&AllowedDocs>) -> Vec<ScoredChunk> {
        self.vectors.search(query, k, allowed)
    }

    /// Large indexes get an HNSW graph (saved with the vectors); small ones are scanned exactly.
    fn build_ann_if_large(&mut self) {
        if self.vectors.len() >= self.vectors.config().exact_threshold {
            self.vectors.build_ann();
        }
    }

    fn save_vectors(&self) -> Result<(), IndexSyncError> {
        self.vectors
            .save(&self.dir.join("vectors.bin"), self.vector_seq)?;
        Ok(())
    }
}
