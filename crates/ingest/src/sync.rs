//! The sync planner and executor: list → diff → parse → chunk → embed → commit.
//!
//! Diffing is two-step: an object whose version (ETag, else size and mtime) and sidecar version
//! match the store is skipped without being read; otherwise it is read and hashed, and if the
//! content hash matches what was indexed only the version fields move. Only genuinely new text
//! is parsed, chunked and embedded, and the embedding cache (keyed by model fingerprint and
//! chunk-text hash) spares re-embedding text seen before.
//!
//! The stages after the diff overlap, as a pipeline of threads joined by bounded channels:
//!
//! 1. **prepare** (`prepare`, on `prepare_threads` threads; parsing itself in the parser pool's
//!    worker processes): read, hash, parse and chunk each document. Results are put back in
//!    listing order and cut into *batches* (`commit_batch_documents`), and batches into
//!    *groups* of at least `embed_batch` chunks (fewer for the first groups);
//! 2. **embed** (one thread): look the group's chunk hashes up in the embedding cache, embed the
//!    missing texts sorted by token count (so that texts of similar length share a forward
//!    pass, across documents), and store the new vectors in the cache;
//! 3. **commit** (the calling thread): commit each batch of the group, and have the indexes
//!    catch up every `index_interval`.
//!
//! While one group commits, the next embeds and a third is prepared; a channel between two
//! stages holds nothing (each send waits for the receiver), so a sync holds at most three
//! groups of chunk text, each of at most `commit_batch_bytes` plus one document, and the
//! `3 × prepare_threads` documents the prepare stage may have taken ahead of the group being
//! formed (those being parsed hold their bytes and text, those done their chunks). A group
//! closes at `embed_batch` chunks, a document without chunks counting as one, so documents
//! commit steadily whatever they are.
//!
//! Crash safety comes from the store: each batch of documents commits in one transaction with
//! its change-log rows, after the vectors of its chunks are in the embedding cache (a cached
//! vector without its document is harmless; a committed chunk without its vector cannot
//! happen). Batches commit in listing order. A sync killed at any point leaves every document
//! at its old or its new version; the next sync redoes whatever had not committed. An error in
//! any stage stops the others and fails the sync: the groups before the failing one have
//! committed, nothing from it on commits (no batch is committed in part), and deletions (which
//! need the whole listing processed) are not applied. No stage waits forever: a stage whose
//! next one is gone stops at its next send, and once the commit stage stops (done, failed,
//! panicking) a flag stops the others at their next document or group; the sync returns when
//! the documents being parsed and the embedding call under way are done.

use crate::pipeline::StageClocks;
use crate::prepare::{Pending, Preparer};
use crate::stages::{Embedding, Flow, GroupFormer, prepare_stage};
use groundwork_core::{ErrorCode, KnowledgeBase, Source};
use groundwork_embed::Embedder;
use groundwork_objects::{Connection, ListFailure, ObjectEntry};
use groundwork_search::LiveIndex;
use groundwork_store::{DocumentChange, FailureWrite, Store};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::time::Instant;

pub use crate::pipeline::SyncTimings;
pub use crate::sync_types::{
    ChangeKind, ChangedDocument, FIRST_GROUP_CHUNKS, MAX_LISTED_CHANGES, SyncError, SyncEvent, SyncFailure,
    SyncObserver, SyncOptions, SyncReport,
};

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

    /// Whether the sync run before the current one completed with `model`.
    fn previous_run_completed_with(&self, model: &str) -> Result<bool, SyncError> {
        let runs = self.store.sync_runs(self.kb.id, 2)?;
        Ok(runs.get(1).is_some_and(|run| {
            run.status == "completed"
                && run
                    .report
                    .as_ref()
                    .and_then(|report| report.get("model"))
                    .and_then(Value::as_str)
                    == Some(model)
        }))
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
            model: self.embedder.fingerprint().to_owned(),
            sources: sources.len(),
            ..SyncReport::default()
        };
        let clocks = StageClocks::default();
        let listing_started = Instant::now();
        // Chunks without a vector of this model can only exist if the run before this one did
        // not complete with this model (the model changed, or a run failed or was killed); only
        // then is every chunk checked (a join over all of them, too slow for every sync).
        let vectors_complete = self.previous_run_completed_with(&report.model)?;
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
            let missing_vectors = if vectors_complete {
                HashSet::new()
            } else {
                self.store
                    .documents_missing_vectors(source.id, self.embedder.fingerprint())?
            };
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
                let reembed = missing_vectors.contains(&entry.uri);
                if let Some(state) = &state {
                    let same_sidecar = state.sidecar_version == sidecar_version;
                    if state.object_version.as_deref() == Some(entry.version.as_str())
                        && same_sidecar
                        && !reembed
                    {
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
                    reembed,
                });
            }
            // Whatever the store has that the listing lacks was deleted at the source.
            for state in states.into_values() {
                report.note_change(&state.uri, ChangeKind::Deleted);
                deletions.push(state.id);
            }
        }
        clocks.list.add(listing_started.elapsed());
        observer.event(SyncEvent::Planned {
            to_process: pending.len(),
        });
        if !listed_failures.is_empty() {
            self.store.apply(self.kb.id, &listed_failures)?;
        }

        self.run_pipeline(sources, &pending, observer, &mut report, &clocks)?;
        if !deletions.is_empty() {
            report.deleted = deletions.len();
            let changes: Vec<DocumentChange> = deletions.into_iter().map(DocumentChange::Delete).collect();
            self.store.apply(self.kb.id, &changes)?;
        }
        clocks.index.time(|| self.indexes.catch_up(self.store))?;
        let elapsed = started.elapsed();
        report.duration_ms = elapsed.as_millis() as u64;
        let seconds = elapsed.as_secs_f64().max(1e-3);
        report.documents_per_s = pending.len() as f64 / seconds;
        report.tokens_per_s = report.tokens_embedded as f64 / seconds;
        report.timings = clocks.timings();
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

    /// Prepares, embeds and commits `pending` through the pipeline of the module doc, merging
    /// what it did into `report`.
    fn run_pipeline(
        &self,
        sources: &[(Source, Connection)],
        pending: &[Pending],
        observer: &mut dyn SyncObserver,
        report: &mut SyncReport,
        clocks: &StageClocks,
    ) -> Result<(), SyncError> {
        if pending.is_empty() {
            return Ok(());
        }
        let preparer = Preparer {
            limits: &self.options.parse_limits,
            pool: self.options.parser_pool.as_deref(),
            chunking: &self.kb.config.chunking,
            embedder: self.embedder,
            max_chunks_per_document: self.options.max_chunks_per_document,
            clocks,
        };
        let former = GroupFormer::new(&self.options);
        let threads = self.options.prepare_threads.max(1);
        let cancelled = AtomicBool::new(false);
        let embedding = Embedding {
            store: self.store,
            embedder: self.embedder,
            embed_batch: self.options.embed_batch.max(1),
            clocks,
            cancelled: &cancelled,
        };
        std::thread::scope(|scope| {
            // Rendezvous channels: a stage hands on a group only when the next one takes it.
            let (group_tx, group_rx) = sync_channel::<Flow>(0);
            let (done_tx, done_rx) = sync_channel::<Flow>(0);
            let (preparer, cancelled) = (&preparer, &cancelled);
            let prepare = scope.spawn(move || {
                prepare_stage(sources, pending, threads, preparer, former, cancelled, group_tx)
            });
            let embed = scope.spawn(move || embedding.run(group_rx, done_tx));
            // However the commit stage ends (done, an error, a panic of the observer), the
            // other stages stop at their next document or group; the scope then waits for them.
            let _cancel = CancelOnDrop(cancelled);
            let ended = self.commit_stage(&done_rx, observer, report, clocks)?;
            if !ended {
                // A stage ended without a word: it panicked. Raise its panic here.
                cancelled.store(true, Ordering::Relaxed);
                drop(done_rx);
                for ended in [prepare.join(), embed.join()] {
                    if let Err(panic) = ended {
                        std::panic::resume_unwind(panic);
                    }
                }
                unreachable!("a sync stage closed its channel without a panic or a last word");
            }
            Ok(())
        })
    }

    /// Commits each batch of each embedded group, in order, and has the indexes catch up now
    /// and then. `Ok(false)` when the channel closed before the end.
    fn commit_stage(
        &self,
        groups: &Receiver<Flow>,
        observer: &mut dyn SyncObserver,
        report: &mut SyncReport,
        clocks: &StageClocks,
    ) -> Result<bool, SyncError> {
        let mut last_index_update = Instant::now();
        loop {
            let waiting = Instant::now();
            let Ok(flow) = groups.recv() else {
                return Ok(false);
            };
            clocks.commit_idle.add(waiting.elapsed());
            let group = match flow {
                Flow::Group(group) => group,
                Flow::Failed(e) => return Err(e),
                Flow::Done => return Ok(true),
            };
            for batch in group.batches {
                clocks
                    .commit
                    .time(|| self.store.apply(self.kb.id, &batch.changes))?;
                report.added += batch.added;
                report.updated += batch.updated;
                report.touched += batch.touched;
                for (uri, change) in &batch.changed {
                    report.note_change(uri, *change);
                }
                report.failed.extend(batch.failed);
                report.chunks_written += batch.chunks;
                report.embeddings_computed += batch.embeddings_computed;
                report.embeddings_cached += batch.embeddings_cached;
                report.tokens_embedded += batch.tokens_embedded;
                for uri in &batch.uris {
                    observer.event(SyncEvent::Processed { uri });
                }
                observer.event(SyncEvent::Committed {
                    documents: batch.uris.len(),
                    tokens_embedded: batch.tokens_embedded,
                });
                if last_index_update.elapsed() >= self.options.index_interval {
                    clocks.index.time(|| self.indexes.catch_up(self.store))?;
                    last_index_update = Instant::now();
                }
            }
        }
    }
}

/// Sets the flag when dropped: the commit stage's way of stopping the stages before it, on
/// every way out, unwinding included.
struct CancelOnDrop<'a>(&'a AtomicBool);

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
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
