//! What a sync is given and what it gives back: its options, its errors, its report and the
//! events it tells as it goes. `sync` re-exports all of it; this module holds no logic but the
//! defaults and the report's bounded list of changed documents.

use crate::parse::{ParseLimits, ParserPool};
use crate::pipeline::SyncTimings;
use groundwork_core::ErrorCode;
use groundwork_objects::ObjectError;
use groundwork_search::IndexSyncError;
use groundwork_store::StoreError;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

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
    /// Chunks embedded together, at least (unless the sync runs out of documents or a group
    /// reaches `commit_batch_bytes`): documents, in batches, are gathered until they hold this
    /// many (a document without chunks, touched or failed, counting as one), and their missing
    /// texts go to the embedder sorted by token count, in calls of at most this many texts (it
    /// buckets each call by length again). The more texts
    /// sorted together, the less padding: on SciFact, 32 documents per call padded 14% more
    /// tokens than there were, groups of 256 chunks 6%, of 1,024 chunks 1.7%. The first group
    /// has [`FIRST_GROUP_CHUNKS`] and each next one twice as many, up to this, so that the
    /// first documents commit (and show progress) early.
    pub embed_batch: usize,
    /// Threads that read, parse (through the parser pool, whose size bounds the parses at
    /// once) and chunk documents ahead of the embedder.
    pub prepare_threads: usize,
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
            embed_batch: 1024,
            prepare_threads: 2,
            index_interval: Duration::from_secs(20),
        }
    }
}

/// Chunks of the first group a sync embeds (see [`SyncOptions::embed_batch`]): few, so that
/// the first batches commit within a second or so of embedding even on a slow machine (a kill
/// then loses little, and progress shows at once); the groups double from there.
pub const FIRST_GROUP_CHUNKS: usize = 16;

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
    /// The fingerprint of the embedding model this sync ran with. A completed sync leaves
    /// every chunk of the knowledge base with a vector of it.
    pub model: String,
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
    /// Tokens of the texts embedded (not those from the cache), `[CLS]` and `[SEP]` included,
    /// as the chunker counted them.
    pub tokens_embedded: usize,
    pub duration_ms: u64,
    /// Documents read, parsed and committed (added, updated, touched or failed) per second of
    /// the whole sync.
    pub documents_per_s: f64,
    /// `tokens_embedded` per second of the whole sync.
    pub tokens_per_s: f64,
    /// Where the time went, stage by stage.
    pub timings: SyncTimings,
}

impl SyncReport {
    pub(crate) fn note_change(&mut self, uri: &str, change: ChangeKind) {
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
    Listed {
        source: &'a str,
        objects: usize,
    },
    Planned {
        to_process: usize,
    },
    /// A document committed (added, updated, touched or failed).
    Processed {
        uri: &'a str,
    },
    /// A batch committed: its documents (each also reported as `Processed`) and the tokens
    /// embedded for it.
    Committed {
        documents: usize,
        tokens_embedded: usize,
    },
}

/// What a sync tells as it goes (for progress bars and job status).
pub trait SyncObserver {
    fn event(&mut self, _event: SyncEvent<'_>) {}
}

impl SyncObserver for () {}
