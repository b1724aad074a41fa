//! The sync planner and executor: list → diff → parse → chunk → embed → commit.
//!
//! Diffing is two-step: an object whose version (ETag, else size and mtime) and sidecar version
//! match the store is skipped without being read; otherwise it is read and hashed, and if the
//! content hash matches what was indexed only the version fields move. Only genuinely new text
//! is parsed, chunked and embedded, and the embedding cache (keyed by model fingerprint and
//! chunk-text hash) spares re-embedding text seen before.
//!
//! Crash safety comes from the store: each batch of documents commits in one transaction with
//! its change-log rows. A sync killed at any point leaves every document at its old or its new
//! version; the next sync redoes whatever had not committed.

use crate::chunk::{self, Tokenize};
use crate::parse::{self, ParseError, ParseLimits, ParserPool};
use groundwork_core::{ChunkingConfig, ErrorCode, KnowledgeBase, Source, sha256_hex};
use groundwork_embed::Embedder;
use groundwork_objects::{Connection, ListFailure, ObjectEntry, ObjectError};
use groundwork_search::{IndexSyncError, LiveIndex};
use groundwork_store::{
    ChunkWrite, DocumentChange, DocumentState, DocumentWrite, FailureWrite, Store, StoreError, VersionTouch,
};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Source(#[from] ObjectError),
    #[error("embedding failed: {0}")]
    Embed(#[from] groundwork_embed::EmbedError),
    #[error(transparent)]
    Index(#[from] IndexSyncError),
    /// No parser worker process could be started (an installation fault).
    #[error("{0}")]
    Parser(String),
}

/// Limits and batch sizes for one sync.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub parse_limits: ParseLimits,
    /// Worker processes that parse (killed at the deadline, capped in memory and CPU time);
    /// `None` parses on a thread of this process with a deadline but no hard stop.
    pub parser_pool: Option<Arc<ParserPool>>,
    /// Documents committed per store transaction, at most.
    pub commit_batch_documents: usize,
    /// Chunk text held for one store transaction, at most (default 64 MiB): a batch commits
    /// early once its documents' chunks reach it, so a sync holds at most this much (plus one
    /// document) in memory whatever the corpus.
    pub commit_batch_bytes: usize,
    /// Most chunks indexed from one document (default 10,000, about 5 M characters of prose);
    /// the rest are left out with a warning on the document.
    pub max_chunks_per_document: usize,
    /// Texts handed to the embedder at once (it buckets them by length internally).
    pub embed_batch: usize,
    /// How often derived indexes are brought up to date during a long sync.
    pub index_interval: Duration,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            parse_limits: ParseLimits::default(),
            parser_pool: None,
            commit_batch_documents: 32,
            commit_batch_bytes: 64 * 1024 * 1024,
            max_chunks_per_document: 10_000,
            embed_batch: 256,
            index_interval: Duration::from_secs(20),
        }
    }
}

/// One document that could not be ingested, with a stable code and a human reason.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SyncFailure {
    pub uri: String,
    pub code: ErrorCode,
    pub message: String,
}

/// How a document changed in one sync run.
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Updated,
    Deleted,
}

/// One document a sync run added, updated or deleted (`kb versions` lists them per run).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChangedDocument {
    pub uri: String,
    pub change: ChangeKind,
}

/// Changed documents listed per run at most; the counts stay exact beyond it.
pub const MAX_LISTED_CHANGES: usize = 1000;

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SyncReport {
    pub run_id: i64,
    pub sources: usize,
    pub listed: usize,
    pub added: usize,
    pub updated: usize,
    /// New object versions whose content hash was unchanged: only version fields moved.
    pub touched: usize,
    pub unchanged: usize,
    pub deleted: usize,
    /// The documents added, updated and deleted, up to [`MAX_LISTED_CHANGES`].
    pub changed: Vec<ChangedDocument>,
    /// Changed documents beyond that limit, counted but not listed.
    pub changed_unlisted: usize,
    pub failed: Vec<SyncFailure>,
    /// Documents skipped because the same version already failed before.
    pub still_failing: usize,
    pub chunks_written: usize,
    pub embeddings_computed: usize,
    pub embeddings_cached: usize,
    pub tokens_embedded: usize,
    pub duration_ms: u64,
}

impl SyncReport {
    fn note_change(&mut self, uri: &str, change: ChangeKind) {
        if self.changed.len() < MAX_LISTED_CHANGES {
            self.changed.push(ChangedDocument {
                uri: uri.to_owned(),
                change,
            });
        } else {
            self.changed_unlisted += 1;
        }
    }
}

/// What a sync tells its caller as it goes (for progress bars).
#[derive(Debug, Clone)]
pub enum SyncEvent<'a> {
    Listed { source: &'a str, objects: usize },
    Planned { to_process: usize },
    Processed { uri: &'a str },
}

/// What a sync tells as it goes (for progress bars and job status).
pub trait SyncObserver {
    fn event(&mut self, _event: SyncEvent<'_>) {}
}

impl SyncObserver for () {}

/// Adapts an [`Embedder`]'s tokenizer to the chunker.
struct EmbedderTokens<'a>(&'a dyn Embedder);

impl Tokenize for EmbedderTokens<'_> {
    fn token_spans(&self, text: &str) -> Vec<(usize, usize)> {
        self.0.token_spans(text)
    }
}

/// A listed object that needs parsing, with its sidecar if any.
struct Pending {
    source_index: usize,
    source_id: i64,
    entry: ObjectEntry,
    sidecar: Option<ObjectEntry>,
    state: Option<DocumentState>,
}

/// Suffix of sidecar metadata files (Amazon Bedrock Knowledge Base convention).
pub const SIDECAR_SUFFIX: &str = ".metadata.json";

pub struct SyncEngine<'a> {
    pub store: &'a Store,
    pub kb: &'a KnowledgeBase,
    pub embedder: &'a dyn Embedder,
    /// The knowledge base's live search state, caught up after commits (periodically during a
    /// long sync, and once at the end) so that synced documents become searchable.
    pub indexes: &'a LiveIndex,
    pub options: SyncOptions,
}

impl SyncEngine<'_> {
    /// Syncs every source of the knowledge base.
    pub fn run(
        &self,
        sources: &[(Source, Connection)],
        observer: &mut dyn SyncObserver,
    ) -> Result<SyncReport, SyncError> {
        let started = Instant::now();
        let run_id = self.store.begin_sync_run(self.kb.id)?;
        let result = self.run_inner(sources, observer, run_id, started);
        match &result {
            Ok(report) => self.store.finish_sync_run(
                run_id,
                "completed",
                &serde_json::to_value(report).unwrap_or(Value::Null),
            )?,
            Err(e) => {
                let _ = self.store.finish_sync_run(
                    run_id,
                    "failed",
                    &serde_json::json!({ "error": e.to_string() }),
                );
            }
        }
        result
    }

    fn run_inner(
        &self,
        sources: &[(Source, Connection)],
        observer: &mut dyn SyncObserver,
        run_id: i64,
        started: Instant,
    ) -> Result<SyncReport, SyncError> {
        let mut report = SyncReport {
            run_id,
            sources: sources.len(),
            ..SyncReport::default()
        };
        let mut pending = Vec::new();
        let mut deletions = Vec::new();
        let mut listed_failures = Vec::new();
        for (source_index, (source, reader)) in sources.iter().enumerate() {
            let listing = reader.list()?;
            observer.event(SyncEvent::Listed {
                source: reader.uri(),
                objects: listing.objects.len(),
            });
            let mut states = self.store.document_states(source.id)?;
            let (documents, sidecars) = split_sidecars(listing.objects);
            let (entry_failures, sidecar_failures) = split_sidecar_failures(listing.failures);
            report.listed += documents.len() + entry_failures.len();
            // An entry the listing could not follow or represent is neither read nor taken for
            // a deletion: its last good version, if any, stays.
            for failure in entry_failures {
                if failure.subtree {
                    let below = format!("{}/", failure.uri.trim_end_matches('/'));
                    states.retain(|uri, _| !uri.starts_with(&below));
                }
                let state = states.remove(&failure.uri);
                if state
                    .as_ref()
                    .is_some_and(|s| s.failed_version.as_deref() == Some(failure.version.as_str()))
                {
                    report.still_failing += 1;
                    continue;
                }
                listed_failures.push(self.listing_failure(
                    source.id,
                    &failure.uri,
                    &failure,
                    None,
                    &mut report,
                ));
            }
            for entry in documents {
                let sidecar = sidecars.get(&entry.uri).cloned();
                let sidecar_version = sidecar.as_ref().map(|s| s.version.clone());
                let state = states.remove(&entry.uri);
                // A sidecar that cannot be read safely (a link, an odd name) fails its
                // document: indexing it without its metadata could drop an ACL.
                if let Some(failure) = sidecar_failures.get(&entry.uri) {
                    if state.as_ref().is_some_and(|s| {
                        s.failed_version.as_deref() == Some(entry.version.as_str())
                            && s.failed_sidecar_version.as_deref() == Some(failure.version.as_str())
                    }) {
                        report.still_failing += 1;
                    } else {
                        listed_failures.push(self.listing_failure(
                            source.id,
                            &entry.uri,
                            failure,
                            Some(&entry),
                            &mut report,
                        ));
                    }
                    continue;
                }
                if let Some(state) = &state {
                    let same_sidecar = state.sidecar_version == sidecar_version;
                    if state.object_version.as_deref() == Some(entry.version.as_str()) && same_sidecar {
                        report.unchanged += 1;
                        continue;
                    }
                    if state.failed_version.as_deref() == Some(entry.version.as_str())
                        && state.failed_sidecar_version == sidecar_version
                    {
                        report.still_failing += 1;
                        continue;
                    }
                }
                pending.push(Pending {
                    source_index,
                    source_id: source.id,
                    entry,
                    sidecar,
                    state,
                });
            }
            // Whatever the store has that the listing lacks was deleted at the source.
            for state in states.into_values() {
                report.note_change(&state.uri, ChangeKind::Deleted);
                deletions.push(state.id);
            }
        }
        observer.event(SyncEvent::Planned {
            to_process: pending.len(),
        });
        if !listed_failures.is_empty() {
            self.store.apply(self.kb.id, &listed_failures)?;
        }

        let tokens = EmbedderTokens(self.embedder);
        let mut last_index_update = Instant::now();
        let mut items = pending.iter().peekable();
        while items.peek().is_some() {
            let mut changes = Vec::new();
            let mut drafts = Vec::new();
            let mut batch_bytes = 0usize;
            while changes.len() < self.options.commit_batch_documents.max(1)
                && batch_bytes < self.options.commit_batch_bytes
                && let Some(item) = items.next()
            {
                let reader = &sources[item.source_index].1;
                match self.prepare(item, reader, &tokens) {
                    Prepared::Unchanged(touch) => {
                        report.touched += 1;
                        changes.push(DocumentChange::Touch(touch));
                    }
                    Prepared::Parsed(write) => {
                        let change = if item.state.as_ref().is_some_and(|s| s.content_sha256.is_some()) {
                            report.updated += 1;
                            ChangeKind::Updated
                        } else {
                            report.added += 1;
                            ChangeKind::Added
                        };
                        report.note_change(&item.entry.uri, change);
                        batch_bytes += write.chunks.iter().map(|c| c.text.len()).sum::<usize>();
                        drafts.push(changes.len());
                        changes.push(DocumentChange::Upsert(write));
                    }
                    Prepared::Failed(failure) => {
                        report.failed.push(SyncFailure {
                            uri: failure.uri.clone(),
                            code: ErrorCode::from_name(&failure.error_code).unwrap_or(ErrorCode::Internal),
                            message: failure.error_message.clone(),
                        });
                        changes.push(DocumentChange::Failed(failure));
                    }
                    Prepared::ParserUnavailable(message) => return Err(SyncError::Parser(message)),
                }
                observer.event(SyncEvent::Processed { uri: &item.entry.uri });
            }
            let texts: Vec<(&str, &str)> = drafts
                .iter()
                .filter_map(|&i| match &changes[i] {
                    DocumentChange::Upsert(write) => Some(write),
                    _ => None,
                })
                .flat_map(|write| {
                    write
                        .chunks
                        .iter()
                        .map(|c| (c.text_sha256.as_str(), c.text.as_str()))
                })
                .collect();
            self.embed_missing(&texts, &mut report)?;
            report.chunks_written += texts.len();
            self.store.apply(self.kb.id, &changes)?;
            if last_index_update.elapsed() >= self.options.index_interval {
                self.indexes.catch_up(self.store)?;
                last_index_update = Instant::now();
            }
        }
        if !deletions.is_empty() {
            report.deleted = deletions.len();
            let changes: Vec<DocumentChange> = deletions.into_iter().map(DocumentChange::Delete).collect();
            self.store.apply(self.kb.id, &changes)?;
        }
        self.indexes.catch_up(self.store)?;
        report.duration_ms = started.elapsed().as_millis() as u64;
        Ok(report)
    }

    /// The failure of an entry the listing reported (`document` is set when the entry is a
    /// document whose sidecar failed).
    fn listing_failure(
        &self,
        source_id: i64,
        uri: &str,
        failure: &ListFailure,
        document: Option<&ObjectEntry>,
        report: &mut SyncReport,
    ) -> DocumentChange {
        let (code, message) = match document {
            None => (failure.code, failure.message.clone()),
            Some(_) => (
                ErrorCode::BadSidecar,
                format!("{}: {} ({})", failure.uri, failure.message, failure.code),
            ),
        };
        report.failed.push(SyncFailure {
            uri: uri.to_string(),
            code,
            message: message.clone(),
        });
        DocumentChange::Failed(match document {
            None => FailureWrite {
                source_id,
                uri: uri.to_string(),
                object_version: Some(failure.version.clone()),
                sidecar_version: None,
                size: 0,
                modified_at: 0,
                error_code: code.as_str().to_string(),
                error_message: message,
            },
            Some(entry) => FailureWrite {
                source_id,
                uri: uri.to_string(),
                object_version: Some(entry.version.clone()),
                sidecar_version: Some(failure.version.clone()),
                size: entry.size,
                modified_at: entry.modified_at,
                error_code: code.as_str().to_string(),
                error_message: message,
            },
        })
    }

    /// Reads, hashes, parses and chunks one object. Never fails the sync: every problem with
    /// the object itself becomes a recorded failure.
    fn prepare(&self, item: &Pending, reader: &Connection, tokens: &EmbedderTokens<'_>) -> Prepared {
        let entry = &item.entry;
        let limits = &self.options.parse_limits;
        let fail = |code: ErrorCode, message: String| {
            Prepared::Failed(FailureWrite {
                source_id: item.source_id,
                uri: entry.uri.clone(),
                object_version: Some(entry.version.clone()),
                sidecar_version: item.sidecar.as_ref().map(|s| s.version.clone()),
                size: entry.size,
                modified_at: entry.modified_at,
                error_code: code.as_str().to_string(),
                error_message: message,
            })
        };
        let bytes = match reader.read(entry, limits.max_bytes) {
            Ok(bytes) => bytes,
            Err(ObjectError::TooLarge { size, limit, .. }) => {
                return fail(
                    ErrorCode::TooLarge,
                    format!("{size} bytes is over the limit of {limit}"),
                );
            }
            Err(e) => return fail(ErrorCode::Unreadable, e.to_string()),
        };
        let content_sha256 = sha256_hex(&bytes);
        let sidecar_version = item.sidecar.as_ref().map(|s| s.version.clone());
        if let Some(state) = &item.state
            && state.content_sha256.as_deref() == Some(content_sha256.as_str())
            && state.sidecar_version == sidecar_version
        {
            return Prepared::Unchanged(VersionTouch {
                document_id: state.id,
                object_version: Some(entry.version.clone()),
                size: entry.size,
                modified_at: entry.modified_at,
            });
        }
        let (metadata, declared_encoding) = match &item.sidecar {
            None => (Map::new(), None),
            Some(sidecar) => match reader
                .read(sidecar, 64 * 1024)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    let metadata = parse::parse_sidecar(&b).map_err(|e| e.to_string())?;
                    Ok((metadata, parse::sidecar_encoding(&b)))
                }) {
                Ok(read) => read,
                Err(message) => return fail(ErrorCode::BadSidecar, format!("{}: {message}", sidecar.uri)),
            },
        };
        let parsed = match &self.options.parser_pool {
            Some(pool) => pool.parse(&bytes, &entry.uri, limits, declared_encoding.as_deref()),
            None => parse::parse_isolated_declared(
                bytes.to_vec(),
                entry.uri.clone(),
                limits.clone(),
                declared_encoding,
            ),
        };
        let extracted = match parsed {
            Ok(extracted) => extracted,
            Err(ParseError::Unavailable(message)) => return Prepared::ParserUnavailable(message),
            Err(e) => return fail(e.code(), e.to_string()),
        };
        let strategy = chunking_strategy(&self.kb.config.chunking);
        let mut drafts = chunk::chunk(&extracted, &strategy, tokens);
        let mut warnings = extracted.warnings.clone();
        let max_chunks = self.options.max_chunks_per_document.max(1);
        if drafts.len() > max_chunks {
            warnings.push(format!(
                "indexed the first {max_chunks} of {} chunks ([ingest] max_chunks_per_document)",
                drafts.len()
            ));
            drafts.truncate(max_chunks);
        }
        let chunks: Vec<ChunkWrite> = drafts
            .into_iter()
            .map(|draft| ChunkWrite {
                text_sha256: sha256_hex(draft.text.as_bytes()),
                text: draft.text,
                char_start: draft.char_start,
                char_end: draft.char_end,
                page: draft.page,
                heading: draft.heading,
                token_count: draft.token_count,
            })
            .collect();
        Prepared::Parsed(DocumentWrite {
            source_id: item.source_id,
            uri: entry.uri.clone(),
            object_version: Some(entry.version.clone()),
            size: entry.size,
            modified_at: entry.modified_at,
            content_sha256,
            sidecar_version,
            metadata,
            format: extracted.format.as_str().to_string(),
            encoding: extracted.encoding.clone(),
            warnings,
            parser: parse::parser_version().to_string(),
            chunker: serde_json::to_string(&self.kb.config.chunking).unwrap_or_default(),
            embedder: self.embedder.fingerprint().to_string(),
            chunks,
        })
    }

    /// Embeds the texts whose hashes the cache lacks, and stores the new vectors.
    fn embed_missing(&self, texts: &[(&str, &str)], report: &mut SyncReport) -> Result<(), SyncError> {
        let model = self.embedder.fingerprint();
        let mut unique: Vec<(&str, &str)> = Vec::new();
        let mut seen = HashSet::new();
        for &(hash, text) in texts {
            if seen.insert(hash) {
                unique.push((hash, text));
            }
        }
        let hashes: Vec<&str> = unique.iter().map(|(h, _)| *h).collect();
        let cached = self.store.cached_embeddings(model, &hashes)?;
        let missing: Vec<(&str, &str)> = unique
            .into_iter()
            .filter(|(h, _)| !cached.contains_key(*h))
            .collect();
        report.embeddings_cached += texts.len() - missing.len();
        for group in missing.chunks(self.options.embed_batch.max(1)) {
            let inputs: Vec<&str> = group.iter().map(|(_, t)| *t).collect();
            let vectors = self.embedder.embed(&inputs)?;
            report.embeddings_computed += vectors.len();
            report.tokens_embedded += inputs
                .iter()
                .map(|t| (self.embedder.count_tokens(t) + 2).min(self.embedder.max_tokens()))
                .sum::<usize>();
            let rows: Vec<(String, Vec<f32>)> = group
                .iter()
                .zip(vectors)
                .map(|((hash, _), vector)| (hash.to_string(), vector))
                .collect();
            self.store.put_embeddings(model, &rows)?;
        }
        Ok(())
    }
}

enum Prepared {
    Unchanged(VersionTouch),
    Parsed(DocumentWrite),
    Failed(FailureWrite),
    /// No parser could be reached: the sync stops, recording nothing against the document.
    ParserUnavailable(String),
}

/// Separates `x.metadata.json` sidecars from documents; sidecars are keyed by the URI of the
/// document they describe. A sidecar without its document is ignored.
fn split_sidecars(listing: Vec<ObjectEntry>) -> (Vec<ObjectEntry>, HashMap<String, ObjectEntry>) {
    let mut documents = Vec::new();
    let mut sidecars = HashMap::new();
    for entry in listing {
        match entry.uri.strip_suffix(SIDECAR_SUFFIX) {
            Some(document_uri) => {
                sidecars.insert(document_uri.to_string(), entry);
            }
            None => documents.push(entry),
        }
    }
    (documents, sidecars)
}

/// Splits listing failures into those of entries and those of sidecars, the latter keyed by
/// the URI of the document they describe.
fn split_sidecar_failures(failures: Vec<ListFailure>) -> (Vec<ListFailure>, HashMap<String, ListFailure>) {
    let mut entries = Vec::new();
    let mut sidecars = HashMap::new();
    for failure in failures {
        match failure.uri.strip_suffix(SIDECAR_SUFFIX) {
            Some(document_uri) if !failure.subtree => {
                sidecars.insert(document_uri.to_string(), failure);
            }
            _ => entries.push(failure),
        }
    }
    (entries, sidecars)
}

fn chunking_strategy(config: &ChunkingConfig) -> chunk::ChunkingStrategy {
    match *config {
        ChunkingConfig::Default {
            max_tokens,
            overlap_tokens,
        } => chunk::ChunkingStrategy::Default {
            max_tokens,
            overlap_tokens,
        },
        ChunkingConfig::FixedSize {
            max_tokens,
            overlap_percent,
        } => chunk::ChunkingStrategy::FixedSize {
            max_tokens,
            overlap_percent,
        },
        ChunkingConfig::None => chunk::ChunkingStrategy::None,
    }
}
