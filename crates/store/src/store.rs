//! The [`Store`] handle and its operations.
//!
//! One unit: one data structure, the [`Store`] handle, with its operations on the document
//! tables (knowledge bases, sources, documents and chunks, embedding cache, change log, sync
//! runs); governance and the audit log live in their own modules.

use crate::audit_journal::ReadAuditJournal;
use crate::error::{Result, StoreError};
use crate::migrations::MIGRATIONS;
use crate::sql::write_transaction;
use groundwork_core::{
    ChunkId, DocumentId, KbId, KnowledgeBase, KnowledgeBaseConfig, Source, SourceConfig, SourceId,
    UnixMillis, now_millis,
};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// A handle on the SQLite store. One connection guarded by a mutex: SQLite serialises writers
/// anyway, and WAL lets other processes (a `search` beside a `sync`) read concurrently.
pub struct Store {
    conn: Mutex<Connection>,
    /// Where the audit records of reads go first (see `audit_journal`); opened on the first
    /// read, so commands that never search start no flusher.
    pub(crate) read_audit: Mutex<Option<ReadAuditJournal>>,
    path: PathBuf,
}

/// What the sync planner needs to diff a listed object against the stored document.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentState {
    pub id: DocumentId,
    pub uri: String,
    pub object_version: Option<String>,
    pub size: Option<u64>,
    pub modified_at: Option<UnixMillis>,
    pub content_sha256: Option<String>,
    pub sidecar_version: Option<String>,
    pub failed_version: Option<String>,
    pub failed_sidecar_version: Option<String>,
}

/// A chunk to write for a document.
#[derive(Debug, Clone)]
pub struct ChunkWrite {
    pub text: String,
    pub text_sha256: String,
    pub char_start: usize,
    pub char_end: usize,
    pub page: Option<u32>,
    pub heading: Option<String>,
    pub token_count: usize,
}

/// A successfully parsed document version and its chunks; replaces any previous chunks.
#[derive(Debug, Clone)]
pub struct DocumentWrite {
    pub source_id: SourceId,
    pub uri: String,
    pub object_version: Option<String>,
    pub size: u64,
    pub modified_at: UnixMillis,
    pub content_sha256: String,
    pub sidecar_version: Option<String>,
    pub metadata: Map<String, Value>,
    pub format: String,
    pub encoding: Option<String>,
    /// What the parser noticed but did not fail on (an encoding guessed with low confidence,
    /// replaced bytes, truncation).
    pub warnings: Vec<String>,
    pub parser: String,
    pub chunker: String,
    pub embedder: String,
    pub chunks: Vec<ChunkWrite>,
}

/// An indexed document's parser warnings: (URI, encoding, warnings).
pub type DocumentWarnings = (String, Option<String>, Vec<String>);

/// A new object version whose bytes hash the same as the indexed one: only the version fields
/// move, the chunks stay.
#[derive(Debug, Clone)]
pub struct VersionTouch {
    pub document_id: DocumentId,
    pub object_version: Option<String>,
    pub size: u64,
    pub modified_at: UnixMillis,
}

/// A version that failed to parse. Chunks of the last good version, if any, stay searchable;
/// the failure is recorded so the same version is not retried until it changes.
#[derive(Debug, Clone)]
pub struct FailureWrite {
    pub source_id: SourceId,
    pub uri: String,
    pub object_version: Option<String>,
    pub sidecar_version: Option<String>,
    pub size: u64,
    pub modified_at: UnixMillis,
    pub error_code: String,
    pub error_message: String,
}

#[derive(Debug, Clone)]
pub enum DocumentChange {
    Upsert(DocumentWrite),
    Touch(VersionTouch),
    Failed(FailureWrite),
    Delete(DocumentId),
}

/// A document as access decisions and metadata filters see it: id, URI, metadata.
pub type DocumentView = (DocumentId, String, Map<String, Value>);

/// A chunk joined with its document, as search results need it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkRecord {
    pub id: ChunkId,
    pub document_id: DocumentId,
    pub ordinal: usize,
    pub text: String,
    pub text_sha256: String,
    pub char_start: usize,
    pub char_end: usize,
    pub page: Option<u32>,
    pub heading: Option<String>,
    pub uri: String,
    pub object_version: Option<String>,
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SyncRunRecord {
    pub id: i64,
    pub kb_id: KbId,
    pub started_at: UnixMillis,
    pub finished_at: Option<UnixMillis>,
    pub status: String,
    pub report: Option<Value>,
}

impl Store {
    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate(&mut conn, path)?;
        // Records that a killed process journalled but had not chained yet.
        crate::audit_journal::recover(path, &mut conn, crate::chain::chain_rows)?;
        Ok(Store {
            conn: Mutex::new(conn),
            read_audit: Mutex::new(None),
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn schema_version(&self) -> Result<i64> {
        Ok(self.conn().query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (transactions roll
        // back on drop), so a poisoned mutex is safe to keep using.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    // ---- knowledge bases -------------------------------------------------------------------

    pub fn create_kb(&self, name: &str, config: &KnowledgeBaseConfig) -> Result<KnowledgeBase> {
        let conn = self.conn();
        let created_at = now_millis();
        let config_json = serde_json::to_string(config).expect("config serialises");
        match conn.execute(
            "INSERT INTO knowledge_bases (name, config, created_at) VALUES (?1, ?2, ?3)",
            params![name, config_json, created_at],
        ) {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Err(StoreError::KbExists(name.into())),
            Err(e) => return Err(e.into()),
        }
        Ok(KnowledgeBase {
            id: conn.last_insert_rowid(),
            name: name.to_string(),
            config: config.clone(),
            created_at,
        })
    }

    pub fn kb(&self, name: &str) -> Result<KnowledgeBase> {
        self.conn()
            .query_row(
                "SELECT id, name, config, created_at FROM knowledge_bases WHERE name = ?1",
                [name],
                row_to_kb,
            )
            .optional()?
            .ok_or_else(|| StoreError::KbNotFound(name.into()))?
    }

    pub fn list_kbs(&self) -> Result<Vec<KnowledgeBase>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT id, name, config, created_at FROM knowledge_bases ORDER BY name")?;
        let rows = stmt.query_map([], row_to_kb)?;
        rows.map(|r| r?).collect()
    }

    pub fn delete_kb(&self, name: &str) -> Result<()> {
        let mut conn = self.conn();
        let tx = write_transaction(&mut conn)?;
        let id: Option<KbId> = tx
            .query_row("SELECT id FROM knowledge_bases WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        let id = id.ok_or_else(|| StoreError::KbNotFound(name.into()))?;
        tx.execute("DELETE FROM changes WHERE kb_id = ?1", [id])?;
        tx.execute("DELETE FROM knowledge_bases WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(())
    }

    /// Counts of documents, failed documents and chunks in a knowledge base.
    pub fn kb_counts(&self, kb_id: KbId) -> Result<(u64, u64, u64)> {
        let conn = self.conn();
        let documents: i64 = conn.query_row(
            "SELECT COUNT(*) FROM documents WHERE kb_id = ?1 AND content_sha256 IS NOT NULL",
            [kb_id],
            |r| r.get(0),
        )?;
        let failed: i64 = conn.query_row(
            "SELECT COUNT(*) FROM documents WHERE kb_id = ?1 AND failed_version IS NOT NULL",
            [kb_id],
            |r| r.get(0),
        )?;
        let chunks: i64 = conn.query_row("SELECT COUNT(*) FROM chunks WHERE kb_id = ?1", [kb_id], |r| {
            r.get(0)
        })?;
        Ok((documents as u64, failed as u64, chunks as u64))
    }

    // ---- sources ---------------------------------------------------------------------------

    pub fn add_source(&self, kb_id: KbId, uri: &str, config: &SourceConfig) -> Result<Source> {
        let conn = self.conn();
        let created_at = now_millis();
        let config_json = serde_json::to_string(config).expect("config serialises");
        match conn.execute(
            "INSERT INTO sources (kb_id, uri, config, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![kb_id, uri, config_json, created_at],
        ) {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Err(StoreError::SourceExists(uri.into())),
            Err(e) => return Err(e.into()),
        }
        Ok(Source {
            id: conn.last_insert_rowid(),
            kb_id,
            uri: uri.to_string(),
            config: config.clone(),
            created_at,
        })
    }

    pub fn sources(&self, kb_id: KbId) -> Result<Vec<Source>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT id, kb_id, uri, config, created_at FROM sources WHERE kb_id = ?1 ORDER BY id")?;
        let rows = stmt.query_map([kb_id], |r| {
            let config: String = r.get(3)?;
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, config, r.get(4)?))
        })?;
        let mut sources = Vec::new();
        for row in rows {
            let (id, kb_id, uri, config, created_at) = row?;
            let config = serde_json::from_str(&config)
                .map_err(|e| StoreError::Corrupt(format!("source {id} config: {e}")))?;
            sources.push(Source {
                id,
                kb_id,
                uri,
                config,
                created_at,
            });
        }
        Ok(sources)
    }

    /// Detaches a source; its documents leave the knowledge base (logged as deletions so the
    /// derived indexes drop them too).
    pub fn remove_source(&self, kb_id: KbId, uri: &str) -> Result<bool> {
        let mut conn = self.conn();
        let tx = write_transaction(&mut conn)?;
        let id: Option<SourceId> = tx
            .query_row(
                "SELECT id FROM sources WHERE kb_id = ?1 AND uri = ?2",
                params![kb_id, uri],
                |r| r.get(0),
            )
            .optional()?;
        let Some(id) = id else { return Ok(false) };
        tx.execute(
            "INSERT INTO changes (kb_id, document_id, op) SELECT kb_id, id, 'delete' FROM documents WHERE source_id = ?1",
            [id],
        )?;
        tx.execute("DELETE FROM sources WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(true)
    }

    // ---- documents -------------------------------------------------------------------------

    /// The stored state of every document of a source, keyed by URI, for diffing a listing.
    pub fn document_states(&self, source_id: SourceId) -> Result<HashMap<String, DocumentState>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, uri, object_version, size, modified_at, content_sha256, sidecar_version,
                    failed_version, failed_sidecar_version
             FROM documents WHERE source_id = ?1",
        )?;
        let rows = stmt.query_map([source_id], |r| {
            Ok(DocumentState {
                id: r.get(0)?,
                uri: r.get(1)?,
                object_version: r.get(2)?,
                size: r.get::<_, Option<i64>>(3)?.map(|s| s as u64),
                modified_at: r.get(4)?,
                content_sha256: r.get(5)?,
                sidecar_version: r.get(6)?,
                failed_version: r.get(7)?,
                failed_sidecar_version: r.get(8)?,
            })
        })?;
        let mut states = HashMap::new();
        for row in rows {
            let state = row?;
            states.insert(state.uri.clone(), state);
        }
        Ok(states)
    }

    /// URIs of the documents of `source_id` with a chunk whose text has no vector of `model`
    /// in the embedding cache: documents a sync must chunk and embed again even though their
    /// content is unchanged (after the local model's numeric path changed, say).
    pub fn documents_missing_vectors(&self, source_id: SourceId, model: &str) -> Result<HashSet<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT DISTINCT d.uri FROM documents d JOIN chunks c ON c.document_id = d.id
             WHERE d.source_id = ?1 AND NOT EXISTS
                 (SELECT 1 FROM embeddings e WHERE e.model = ?2 AND e.text_sha256 = c.text_sha256)",
        )?;
        let rows = stmt.query_map(rusqlite::params![source_id, model], |r| r.get::<_, String>(0))?;
        let mut uris = HashSet::new();
        for row in rows {
            uris.insert(row?);
        }
        Ok(uris)
    }

    /// Applies a batch of document changes in one transaction. Each change also appends to the
    /// change log, which is what the derived indexes replay.
    pub fn apply(&self, kb_id: KbId, changes: &[DocumentChange]) -> Result<()> {
        let mut conn = self.conn();
        let tx = write_transaction(&mut conn)?;
        let now = now_millis();
        for change in changes {
            match change {
                DocumentChange::Upsert(write) => upsert_document(&tx, kb_id, write, now)?,
                DocumentChange::Touch(touch) => {
                    tx.execute(
                        "UPDATE documents SET object_version = ?2, size = ?3, modified_at = ?4,
                             failed_version = NULL, failed_sidecar_version = NULL,
                             error_code = NULL, error_message = NULL, updated_at = ?5
                         WHERE id = ?1",
                        params![
                            touch.document_id,
                            touch.object_version,
                            touch.size as i64,
                            touch.modified_at,
                            now
                        ],
                    )?;
                }
                DocumentChange::Failed(failure) => {
                    tx.execute(
                        "INSERT INTO documents (kb_id, source_id, uri, failed_version, failed_sidecar_version,
                             size, modified_at, error_code, error_message, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                         ON CONFLICT (kb_id, uri) DO UPDATE SET
                             failed_version = excluded.failed_version,
                             failed_sidecar_version = excluded.failed_sidecar_version,
                             error_code = excluded.error_code,
                             error_message = excluded.error_message,
                             updated_at = excluded.updated_at",
                        params![
                            kb_id,
                            failure.source_id,
                            failure.uri,
                            failure.object_version.as_deref().unwrap_or(""),
                            failure.sidecar_version,
                            failure.size as i64,
                            failure.modified_at,
                            failure.error_code,
                            failure.error_message,
                            now
                        ],
                    )?;
                }
                DocumentChange::Delete(document_id) => {
                    tx.execute("DELETE FROM documents WHERE id = ?1", [document_id])?;
                    tx.execute(
                        "INSERT INTO changes (kb_id, document_id, op) VALUES (?1, ?2, 'delete')",
                        params![kb_id, document_id],
                    )?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Documents of a knowledge base that have chunks, with their metadata: the input for
    /// turning a metadata filter into an allow-list.
    /// Every indexed document of a knowledge base with its URI and metadata: what access
    /// decisions and metadata filters look at.
    pub fn document_metadata(&self, kb_id: KbId) -> Result<Vec<DocumentView>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, uri, metadata FROM documents WHERE kb_id = ?1 AND content_sha256 IS NOT NULL",
        )?;
        let rows = stmt.query_map([kb_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, uri, metadata) = row?;
            out.push((id, uri, parse_metadata(id, &metadata)?));
        }
        Ok(out)
    }

    /// The live documents among `ids` (deleted or never-indexed ones are absent).
    pub fn document_views(&self, ids: &[DocumentId]) -> Result<Vec<DocumentView>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, uri, metadata FROM documents WHERE id = ?1 AND content_sha256 IS NOT NULL",
        )?;
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let row = stmt
                .query_row([id], |r| Ok((r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
                .optional()?;
            if let Some((uri, metadata)) = row {
                out.push((id, uri, parse_metadata(id, &metadata)?));
            }
        }
        Ok(out)
    }

    /// Indexed documents the parser warned about.
    pub fn document_warnings(&self, kb_id: KbId, limit: usize) -> Result<Vec<DocumentWarnings>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT uri, encoding, warnings FROM documents
             WHERE kb_id = ?1 AND warnings IS NOT NULL ORDER BY uri LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![kb_id, limit as i64], |r| {
            let warnings: String = r.get(2)?;
            Ok((
                r.get(0)?,
                r.get(1)?,
                serde_json::from_str(&warnings).unwrap_or_default(),
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Failed documents of a knowledge base: (uri, error code, message).
    pub fn failed_documents(&self, kb_id: KbId) -> Result<Vec<(String, String, String)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT uri, COALESCE(error_code, ''), COALESCE(error_message, '') FROM documents
             WHERE kb_id = ?1 AND failed_version IS NOT NULL ORDER BY uri",
        )?;
        let rows = stmt.query_map([kb_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // ---- chunks ----------------------------------------------------------------------------

    /// Chunks by id, joined with their documents. Missing ids (deleted since an index was
    /// built) are skipped; the result follows the order of `ids`.
    pub fn chunks(&self, ids: &[ChunkId]) -> Result<Vec<ChunkRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT c.id, c.document_id, c.ordinal, c.text, c.text_sha256, c.char_start, c.char_end,
                    c.page, c.heading, d.uri, d.object_version, d.metadata
             FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id = ?1",
        )?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(record) = stmt.query_row([id], row_to_chunk).optional()? {
                out.push(record?);
            }
        }
        Ok(out)
    }

    /// All chunks of a document, in order.
    pub fn document_chunks(&self, document_id: DocumentId) -> Result<Vec<ChunkRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT c.id, c.document_id, c.ordinal, c.text, c.text_sha256, c.char_start, c.char_end,
                    c.page, c.heading, d.uri, d.object_version, d.metadata
             FROM chunks c JOIN documents d ON d.id = c.document_id
             WHERE c.document_id = ?1 ORDER BY c.ordinal",
        )?;
        let rows = stmt.query_map([document_id], row_to_chunk)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }

    /// Calls `each(chunk_id, document_id, text)` for every chunk of a knowledge base; used to
    /// rebuild the lexical index without holding everything in memory.
    pub fn for_each_chunk_text(
        &self,
        kb_id: KbId,
        mut each: impl FnMut(ChunkId, DocumentId, &str),
    ) -> Result<()> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT id, document_id, text FROM chunks WHERE kb_id = ?1")?;
        let mut rows = stmt.query([kb_id])?;
        while let Some(row) = rows.next()? {
            let text: String = row.get(2)?;
            each(row.get(0)?, row.get(1)?, &text);
        }
        Ok(())
    }

    /// Calls `each(chunk_id, document_id, vector)` for every chunk of a knowledge base that has
    /// an embedding under `model` (restricted to one document when `document_id` is given).
    pub fn for_each_chunk_vector(
        &self,
        kb_id: KbId,
        model: &str,
        document_id: Option<DocumentId>,
        mut each: impl FnMut(ChunkId, DocumentId, &[f32]),
    ) -> Result<()> {
        let conn = self.conn();
        // Two statements rather than `(?3 IS NULL OR c.document_id = ?3)`: SQLite cannot use
        // the per-document index through that OR, and the per-document form runs once for every
        // changed document during a sync.
        let mut stmt = match document_id {
            Some(_) => conn.prepare_cached(
                "SELECT c.id, c.document_id, e.vector FROM chunks c
                 JOIN embeddings e ON e.model = ?2 AND e.text_sha256 = c.text_sha256
                 WHERE c.document_id = ?3 AND c.kb_id = ?1",
            )?,
            None => conn.prepare_cached(
                "SELECT c.id, c.document_id, e.vector FROM chunks c
                 JOIN embeddings e ON e.model = ?2 AND e.text_sha256 = c.text_sha256
                 WHERE c.kb_id = ?1 AND ?3 IS NULL",
            )?,
        };
        let mut rows = stmt.query(params![kb_id, model, document_id])?;
        let mut vector = Vec::new();
        while let Some(row) = rows.next()? {
            let bytes = row
                .get_ref(2)?
                .as_blob()
                .map_err(|e| StoreError::Corrupt(format!("embedding blob: {e}")))?;
            decode_vector(bytes, &mut vector)?;
            each(row.get(0)?, row.get(1)?, &vector);
        }
        Ok(())
    }

    // ---- embedding cache -------------------------------------------------------------------

    /// Cached vectors for the given text hashes under `model`.
    pub fn cached_embeddings(&self, model: &str, text_hashes: &[&str]) -> Result<HashMap<String, Vec<f32>>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT vector FROM embeddings WHERE model = ?1 AND text_sha256 = ?2")?;
        let mut out = HashMap::new();
        for hash in text_hashes {
            let blob: Option<Vec<u8>> = stmt.query_row(params![model, hash], |r| r.get(0)).optional()?;
            if let Some(blob) = blob {
                let mut vector = Vec::new();
                decode_vector(&blob, &mut vector)?;
                out.insert(hash.to_string(), vector);
            }
        }
        Ok(out)
    }

    pub fn put_embeddings(&self, model: &str, vectors: &[(String, Vec<f32>)]) -> Result<()> {
        let mut conn = self.conn();
        let tx = write_transaction(&mut conn)?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO embeddings (model, text_sha256, vector) VALUES (?1, ?2, ?3)",
            )?;
            for (hash, vector) in vectors {
                stmt.execute(params![model, hash, encode_vector(vector)])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    // ---- change log ------------------------------------------------------------------------

    /// The newest change-log sequence of a knowledge base (0 when it has none).
    pub fn last_change_seq(&self, kb_id: KbId) -> Result<u64> {
        let seq: Option<i64> =
            self.conn()
                .query_row("SELECT MAX(seq) FROM changes WHERE kb_id = ?1", [kb_id], |r| {
                    r.get(0)
                })?;
        Ok(seq.unwrap_or(0) as u64)
    }

    /// Documents changed after `after_seq` (each once), and the newest sequence seen.
    pub fn changed_documents(&self, kb_id: KbId, after_seq: u64) -> Result<(Vec<DocumentId>, u64)> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT document_id, MAX(seq) FROM changes WHERE kb_id = ?1 AND seq > ?2
             GROUP BY document_id ORDER BY MAX(seq)",
        )?;
        let rows = stmt.query_map(params![kb_id, after_seq as i64], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })?;
        let mut documents = Vec::new();
        let mut newest = after_seq;
        for row in rows {
            let (document, seq) = row?;
            documents.push(document);
            newest = newest.max(seq as u64);
        }
        Ok((documents, newest))
    }

    // ---- sync runs -------------------------------------------------------------------------

    pub fn begin_sync_run(&self, kb_id: KbId) -> Result<i64> {
        let conn = self.conn();
        // A run still marked running was cut short (killed); say so rather than leave it open.
        conn.execute(
            "UPDATE sync_runs SET status = 'interrupted' WHERE kb_id = ?1 AND status = 'running'",
            [kb_id],
        )?;
        conn.execute(
            "INSERT INTO sync_runs (kb_id, started_at, status) VALUES (?1, ?2, 'running')",
            params![kb_id, now_millis()],
        )?;
        Ok(conn.last_insert_rowid())
    }

    pub fn finish_sync_run(&self, run_id: i64, status: &str, report: &Value) -> Result<()> {
        self.conn().execute(
            "UPDATE sync_runs SET finished_at = ?2, status = ?3, report = ?4 WHERE id = ?1",
            params![run_id, now_millis(), status, report.to_string()],
        )?;
        Ok(())
    }

    pub fn sync_runs(&self, kb_id: KbId, limit: usize) -> Result<Vec<SyncRunRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, kb_id, started_at, finished_at, status, report FROM sync_runs
             WHERE kb_id = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![kb_id, limit as i64], |r| {
            let report: Option<String> = r.get(5)?;
            Ok(SyncRunRecord {
                id: r.get(0)?,
                kb_id: r.get(1)?,
                started_at: r.get(2)?,
                finished_at: r.get(3)?,
                status: r.get(4)?,
                report: report.and_then(|s| serde_json::from_str(&s).ok()),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let supported = MIGRATIONS.len() as i64;
    if version > supported {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: version,
            supported,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = write_transaction(conn)?;
        // Another process may have applied this step while we waited for the write lock.
        let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if current > index as i64 {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

fn upsert_document(tx: &Transaction<'_>, kb_id: KbId, write: &DocumentWrite, now: i64) -> Result<()> {
    let metadata = Value::Object(write.metadata.clone()).to_string();
    let document_id: DocumentId = tx.query_row(
        "INSERT INTO documents (kb_id, source_id, uri, object_version, size, modified_at,
             content_sha256, sidecar_version, metadata, format, encoding, parser, chunker, embedder,
             failed_version, failed_sidecar_version, error_code, error_message, updated_at, warnings)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, NULL, NULL, NULL, NULL, ?15, ?16)
         ON CONFLICT (kb_id, uri) DO UPDATE SET
             source_id = excluded.source_id, object_version = excluded.object_version,
             size = excluded.size, modified_at = excluded.modified_at,
             content_sha256 = excluded.content_sha256, sidecar_version = excluded.sidecar_version,
             metadata = excluded.metadata, format = excluded.format, encoding = excluded.encoding,
             parser = excluded.parser, chunker = excluded.chunker, embedder = excluded.embedder,
             failed_version = NULL, failed_sidecar_version = NULL, error_code = NULL,
             error_message = NULL, updated_at = excluded.updated_at, warnings = excluded.warnings
         RETURNING id",
        params![
            kb_id,
            write.source_id,
            write.uri,
            write.object_version,
            write.size as i64,
            write.modified_at,
            write.content_sha256,
            write.sidecar_version,
            metadata,
            write.format,
            write.encoding,
            write.parser,
            write.chunker,
            write.embedder,
            now,
            (!write.warnings.is_empty()).then(|| serde_json::to_string(&write.warnings).expect("strings serialise"))
        ],
        |r| r.get(0),
    )?;
    tx.execute("DELETE FROM chunks WHERE document_id = ?1", [document_id])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO chunks (document_id, kb_id, ordinal, text, text_sha256, char_start, char_end,
             page, heading, token_count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for (ordinal, chunk) in write.chunks.iter().enumerate() {
        insert.execute(params![
            document_id,
            kb_id,
            ordinal as i64,
            chunk.text,
            chunk.text_sha256,
            chunk.char_start as i64,
            chunk.char_end as i64,
            chunk.page,
            chunk.heading,
            chunk.token_count as i64
        ])?;
    }
    tx.execute(
        "INSERT INTO changes (kb_id, document_id, op) VALUES (?1, ?2, 'upsert')",
        params![kb_id, document_id],
    )?;
    Ok(())
}

fn row_to_kb(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<KnowledgeBase>> {
    let id: KbId = row.get(0)?;
    let config: String = row.get(2)?;
    Ok(match serde_json::from_str(&config) {
        Ok(config) => Ok(KnowledgeBase {
            id,
            name: row.get(1)?,
            config,
            created_at: row.get(3)?,
        }),
        Err(e) => Err(StoreError::Corrupt(format!("knowledge base {id} config: {e}"))),
    })
}

fn row_to_chunk(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<ChunkRecord>> {
    let document_id: DocumentId = r.get(1)?;
    let metadata: String = r.get(11)?;
    Ok(match parse_metadata(document_id, &metadata) {
        Ok(metadata) => Ok(ChunkRecord {
            id: r.get(0)?,
            document_id,
            ordinal: r.get::<_, i64>(2)? as usize,
            text: r.get(3)?,
            text_sha256: r.get(4)?,
            char_start: r.get::<_, i64>(5)? as usize,
            char_end: r.get::<_, i64>(6)? as usize,
            page: r.get(7)?,
            heading: r.get(8)?,
            uri: r.get(9)?,
            object_version: r.get(10)?,
            metadata,
        }),
        Err(e) => Err(e),
    })
}

fn parse_metadata(document_id: DocumentId, text: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(StoreError::Corrupt(format!(
            "document {document_id} metadata is not a JSON object"
        ))),
    }
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

/// Vectors are stored as little-endian f32, the layout every platform we target reads natively.
fn encode_vector(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn decode_vector(bytes: &[u8], out: &mut Vec<f32>) -> Result<()> {
    if !bytes.len().is_multiple_of(4) {
        return Err(StoreError::Corrupt(format!(
            "embedding blob of {} bytes is not a whole number of f32",
            bytes.len()
        )));
    }
    out.clear();
    out.extend(
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
    );
    Ok(())
}
