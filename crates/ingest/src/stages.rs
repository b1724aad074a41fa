//! The prepare and embed stages of the sync pipeline (see `sync` for the whole, and the commit
//! stage), and what flows between stages: batches of documents that commit together, grouped
//! so that the embedder gets many texts at once.
//!
//! Invariants: documents leave the prepare stage in listing order, whatever order the threads
//! finish in; a group reaches the commit stage only once the vectors of all its chunks are in
//! the embedding cache; a stage that fails sends its error in place of the group and stops; a
//! stage whose next stage is gone, or that sees the sync cancelled (the commit stage has
//! stopped), stops without sending anything; and every group closes at a bounded size, so
//! documents with nothing to embed (touched, failed) commit as they go too.

use crate::pipeline::{StageClocks, ordered_map};
use crate::prepare::{Pending, Prepared, Preparer};
use crate::sync_types::{ChangeKind, FIRST_GROUP_CHUNKS, SyncError, SyncFailure, SyncOptions};
use groundwork_core::{ErrorCode, Source};
use groundwork_embed::Embedder;
use groundwork_objects::Connection;
use groundwork_store::{DocumentChange, Store};
use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::time::Instant;

/// What passes from one stage to the next.
pub(crate) enum Flow {
    Group(Group),
    /// A stage failed; nothing after this.
    Failed(SyncError),
    /// Every document went through.
    Done,
}

/// Documents that commit in one store transaction, with what the report says of them.
#[derive(Default)]
pub(crate) struct Batch {
    pub(crate) changes: Vec<DocumentChange>,
    /// The URI of each change, in order.
    pub(crate) uris: Vec<String>,
    pub(crate) added: usize,
    pub(crate) updated: usize,
    pub(crate) touched: usize,
    pub(crate) changed: Vec<(String, ChangeKind)>,
    pub(crate) failed: Vec<SyncFailure>,
    /// Set by the embedding stage.
    pub(crate) chunks: usize,
    pub(crate) embeddings_computed: usize,
    pub(crate) embeddings_cached: usize,
    pub(crate) tokens_embedded: usize,
}

/// Batches embedded together: enough chunks for the embedder to sort well.
#[derive(Default)]
pub(crate) struct Group {
    pub(crate) batches: Vec<Batch>,
    /// Chunks, counting a document without chunks (touched, failed) as one: the size that
    /// closes the group, so that a run of such documents still commits batch by batch.
    weight: usize,
    /// Chunk text.
    bytes: usize,
}

/// Cuts prepared documents, in listing order, into batches and groups.
pub(crate) struct GroupFormer {
    batch_documents: usize,
    max_bytes: usize,
    /// Weight (chunks) that completes the current group; doubles up to `max_group_chunks`.
    group_chunks: usize,
    max_group_chunks: usize,
    batch: Batch,
    group: Group,
}

impl GroupFormer {
    pub(crate) fn new(options: &SyncOptions) -> GroupFormer {
        GroupFormer {
            batch_documents: options.commit_batch_documents.max(1),
            max_bytes: options.commit_batch_bytes.max(1),
            group_chunks: FIRST_GROUP_CHUNKS.min(options.embed_batch).max(1),
            max_group_chunks: options.embed_batch.max(1),
            batch: Batch::default(),
            group: Group::default(),
        }
    }

    /// Adds one prepared document; returns the group it completed, if any. `Err` is a parser
    /// that cannot be reached, which stops the sync.
    fn add(&mut self, item: &Pending, prepared: Prepared) -> Result<Option<Group>, String> {
        let uri = item.entry.uri.clone();
        let mut weight = 1;
        let change = match prepared {
            Prepared::Unchanged(touch) => {
                self.batch.touched += 1;
                DocumentChange::Touch(touch)
            }
            Prepared::Parsed(write) => {
                let change = if item.state.as_ref().is_some_and(|s| s.content_sha256.is_some()) {
                    self.batch.updated += 1;
                    ChangeKind::Updated
                } else {
                    self.batch.added += 1;
                    ChangeKind::Added
                };
                self.batch.changed.push((uri.clone(), change));
                self.group.bytes += write.chunks.iter().map(|c| c.text.len()).sum::<usize>();
                weight = write.chunks.len().max(1);
                DocumentChange::Upsert(write)
            }
            Prepared::Failed(failure) => {
                self.batch.failed.push(SyncFailure {
                    uri: failure.uri.clone(),
                    code: ErrorCode::from_name(&failure.error_code).unwrap_or(ErrorCode::Internal),
                    message: failure.error_message.clone(),
                });
                DocumentChange::Failed(failure)
            }
            Prepared::ParserUnavailable(message) => return Err(message),
        };
        self.batch.changes.push(change);
        self.batch.uris.push(uri);
        self.group.weight += weight;
        // Past the byte budget, the batch and its group both end: the group's memory is bounded.
        let group_full = self.group.weight >= self.group_chunks || self.group.bytes >= self.max_bytes;
        if self.batch.changes.len() >= self.batch_documents || group_full {
            self.group.batches.push(std::mem::take(&mut self.batch));
        }
        if !group_full {
            return Ok(None);
        }
        self.group_chunks = (self.group_chunks * 2).min(self.max_group_chunks);
        Ok(Some(std::mem::take(&mut self.group)))
    }

    /// The last group, if anything is left.
    fn finish(mut self) -> Option<Group> {
        if !self.batch.changes.is_empty() {
            self.group.batches.push(std::mem::take(&mut self.batch));
        }
        (!self.group.batches.is_empty()).then_some(self.group)
    }
}

/// Documents the prepare stage may take ahead of the one the group former waits for, per
/// prepare thread, beyond the one each thread is preparing: so that one slow document does
/// not idle the other threads, while the documents held stay few.
const PREPARE_AHEAD_PER_THREAD: usize = 2;

/// The prepare stage: documents prepared on `threads` threads, put back in order and cut into
/// groups, which go to `groups`. Stops, sending nothing more, once `cancelled` is set.
pub(crate) fn prepare_stage(
    sources: &[(Source, Connection)],
    pending: &[Pending],
    threads: usize,
    preparer: &Preparer<'_>,
    mut former: GroupFormer,
    cancelled: &AtomicBool,
    groups: SyncSender<Flow>,
) {
    let mut failure = None;
    let finished = ordered_map(
        pending,
        threads,
        threads * (1 + PREPARE_AHEAD_PER_THREAD),
        |item| (item, preparer.prepare(item, &sources[item.source_index].1)),
        |(item, prepared)| {
            if cancelled.load(Ordering::Relaxed) {
                return ControlFlow::Break(());
            }
            match former.add(item, prepared) {
                Err(message) => {
                    failure = Some(SyncError::Parser(message));
                    ControlFlow::Break(())
                }
                Ok(Some(group)) => match groups.send(Flow::Group(group)) {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(_) => ControlFlow::Break(()),
                },
                Ok(None) => ControlFlow::Continue(()),
            }
        },
    );
    let last = match failure {
        Some(e) => Flow::Failed(e),
        None if finished => {
            if let Some(group) = former.finish()
                && groups.send(Flow::Group(group)).is_err()
            {
                return;
            }
            Flow::Done
        }
        // The sync was cancelled, or the next stage is gone (it failed, and says so itself).
        None => return,
    };
    let _ = groups.send(last);
}

/// The embedding stage.
pub(crate) struct Embedding<'a> {
    pub(crate) store: &'a Store,
    pub(crate) embedder: &'a dyn Embedder,
    pub(crate) embed_batch: usize,
    pub(crate) clocks: &'a StageClocks,
    /// Set once the commit stage has stopped: nothing more to embed.
    pub(crate) cancelled: &'a AtomicBool,
}

impl Embedding<'_> {
    /// Embeds each group from `groups` and hands it to `done`, passing an error or the end on
    /// as it comes. Returns when the end or an error has been passed on, when either channel
    /// is gone, or when the sync is cancelled.
    pub(crate) fn run(self, groups: Receiver<Flow>, done: SyncSender<Flow>) {
        loop {
            let waiting = Instant::now();
            let Ok(flow) = groups.recv() else {
                return;
            };
            self.clocks.embed_idle.add(waiting.elapsed());
            if self.cancelled.load(Ordering::Relaxed) {
                return;
            }
            let flow = match flow {
                Flow::Group(mut group) => match self.embed(&mut group) {
                    Ok(()) => Flow::Group(group),
                    Err(e) => Flow::Failed(e),
                },
                last => last,
            };
            let last = !matches!(flow, Flow::Group(_));
            if done.send(flow).is_err() || last {
                return;
            }
        }
    }

    /// Embeds the group's texts that the cache lacks, shortest first, and stores the vectors.
    fn embed(&self, group: &mut Group) -> Result<(), SyncError> {
        let model = self.embedder.fingerprint();
        let max_tokens = self.embedder.max_tokens();
        // Each distinct text once, counted in the batch it first appears in.
        let mut seen = HashSet::new();
        let mut unique: Vec<(usize, &str, &str, usize)> = Vec::new();
        let mut chunks = vec![0; group.batches.len()];
        for (b, batch) in group.batches.iter().enumerate() {
            for change in &batch.changes {
                if let DocumentChange::Upsert(write) = change {
                    for chunk in &write.chunks {
                        chunks[b] += 1;
                        if seen.insert(chunk.text_sha256.as_str()) {
                            unique.push((b, &chunk.text_sha256, &chunk.text, chunk.token_count));
                        }
                    }
                }
            }
        }
        let mut computed = vec![0; group.batches.len()];
        let mut tokens = vec![0; group.batches.len()];
        if !unique.is_empty() {
            let hashes: Vec<&str> = unique.iter().map(|u| u.1).collect();
            let cached = self
                .clocks
                .cache_lookup
                .time(|| self.store.cached_embeddings(model, &hashes))?;
            let mut missing: Vec<(usize, &str, &str, usize)> =
                unique.into_iter().filter(|u| !cached.contains_key(u.1)).collect();
            // Similar lengths in the same call (and in the same forward pass inside it).
            missing.sort_by_key(|u| u.3);
            let calls = missing.len().div_ceil(self.embed_batch);
            let per_call = missing.len().div_ceil(calls.max(1)).max(1);
            let mut rows = Vec::with_capacity(missing.len());
            for call in missing.chunks(per_call) {
                let inputs: Vec<&str> = call.iter().map(|u| u.2).collect();
                let vectors = self.clocks.embed.time(|| self.embedder.embed(&inputs))?;
                for (&(b, hash, _, token_count), vector) in call.iter().zip(vectors) {
                    computed[b] += 1;
                    tokens[b] += (token_count + 2).min(max_tokens);
                    rows.push((hash.to_string(), vector));
                }
            }
            if !rows.is_empty() {
                self.clocks
                    .cache_store
                    .time(|| self.store.put_embeddings(model, &rows))?;
            }
        }
        for (b, batch) in group.batches.iter_mut().enumerate() {
            batch.chunks = chunks[b];
            batch.embeddings_computed = computed[b];
            batch.embeddings_cached = chunks[b] - computed[b];
            batch.tokens_embedded = tokens[b];
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use groundwork_objects::ObjectEntry;
    use groundwork_store::{ChunkWrite, DocumentWrite, FailureWrite, VersionTouch};

    fn pending(i: usize) -> Pending {
        Pending {
            source_index: 0,
            source_id: 1,
            entry: ObjectEntry::for_tests(&format!("s3://b/doc{i:04}"), "v1"),
            sidecar: None,
            state: None,
            reembed: false,
        }
    }

    fn touched(i: usize) -> Prepared {
        Prepared::Unchanged(VersionTouch {
            document_id: i as i64,
            object_version: Some("v2".to_string()),
            size: 1,
            modified_at: 0,
        })
    }

    fn failed(i: usize) -> Prepared {
        Prepared::Failed(FailureWrite {
            source_id: 1,
            uri: format!("s3://b/doc{i:04}"),
            object_version: Some("v1".to_string()),
            sidecar_version: None,
            size: 1,
            modified_at: 0,
            error_code: ErrorCode::Empty.as_str().to_string(),
            error_message: "empty".to_string(),
        })
    }

    fn parsed(i: usize, chunks: usize, chunk_bytes: usize) -> Prepared {
        Prepared::Parsed(DocumentWrite {
            source_id: 1,
            uri: format!("s3://b/doc{i:04}"),
            object_version: Some("v1".to_string()),
            size: 1,
            modified_at: 0,
            content_sha256: format!("{i}"),
            sidecar_version: None,
            metadata: Default::default(),
            format: "text".to_string(),
            encoding: None,
            warnings: Vec::new(),
            parser: String::new(),
            chunker: String::new(),
            embedder: String::new(),
            chunks: (0..chunks)
                .map(|c| ChunkWrite {
                    text: "x".repeat(chunk_bytes),
                    text_sha256: format!("{i}-{c}"),
                    char_start: 0,
                    char_end: chunk_bytes,
                    page: None,
                    heading: None,
                    token_count: chunk_bytes,
                })
                .collect(),
        })
    }

    /// Feeds documents to a former; returns each group as the documents of its batches, the
    /// last (unfinished) one included.
    fn form(
        options: &SyncOptions,
        documents: impl Iterator<Item = (usize, Prepared)>,
    ) -> Vec<Vec<Vec<String>>> {
        let mut former = GroupFormer::new(options);
        let mut groups = Vec::new();
        let shape =
            |group: Group| -> Vec<Vec<String>> { group.batches.into_iter().map(|b| b.uris).collect() };
        for (i, prepared) in documents {
            if let Some(group) = former.add(&pending(i), prepared).unwrap() {
                groups.push(shape(group));
            }
        }
        groups.extend(former.finish().map(shape));
        groups
    }

    fn options(batch: usize, embed_batch: usize) -> SyncOptions {
        SyncOptions {
            commit_batch_documents: batch,
            embed_batch,
            ..SyncOptions::default()
        }
    }

    #[test]
    fn documents_with_nothing_to_embed_still_close_groups() {
        // 200 touched or failed documents: groups of FIRST_GROUP_CHUNKS documents (each weighs
        // one; `embed_batch` caps the doubling), cut into batches of 4, in listing order;
        // nothing waits for the end.
        let first = FIRST_GROUP_CHUNKS;
        let groups = form(
            &options(4, first),
            (0..200).map(|i| (i, if i % 3 == 0 { failed(i) } else { touched(i) })),
        );
        let sizes: Vec<usize> = groups.iter().map(|g| g.iter().map(Vec::len).sum()).collect();
        assert_eq!(sizes[..3], [first, first, first], "{sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), 200);
        assert!(groups.iter().flatten().all(|b| (1..=4).contains(&b.len())));
        let order: Vec<String> = groups.into_iter().flatten().flatten().collect();
        let want: Vec<String> = (0..200).map(|i| format!("s3://b/doc{i:04}")).collect();
        assert_eq!(order, want);
    }

    #[test]
    fn groups_grow_from_the_first_size_to_the_embed_batch() {
        // One chunk a document: the first group closes at FIRST_GROUP_CHUNKS, then doubles.
        let groups = form(&options(32, 512), (0..2000).map(|i| (i, parsed(i, 1, 10))));
        let sizes: Vec<usize> = groups.iter().map(|g| g.iter().map(Vec::len).sum()).collect();
        let first = FIRST_GROUP_CHUNKS;
        assert_eq!(sizes[..4], [first, 2 * first, 4 * first, 8 * first], "{sizes:?}");
        assert!(sizes.iter().all(|&s| s <= 512), "{sizes:?}");
        assert_eq!(sizes[sizes.len() - 2], 512, "{sizes:?}");
        // A group's last batch may be short; the others hold `commit_batch_documents`.
        for group in &groups {
            assert!(
                group[..group.len() - 1].iter().all(|b| b.len() == 32),
                "{group:?}"
            );
        }
    }

    #[test]
    fn the_byte_budget_closes_the_batch_and_the_group() {
        // 1,000-byte chunks, 3 a document, a 10,000-byte budget: a group closes at the
        // document that crosses it (4 documents, 12,000 bytes), however few chunks it has.
        let options = SyncOptions {
            commit_batch_bytes: 10_000,
            ..options(32, 1024)
        };
        let groups = form(&options, (0..20).map(|i| (i, parsed(i, 3, 1000))));
        let shapes: Vec<Vec<usize>> = groups.iter().map(|g| g.iter().map(Vec::len).collect()).collect();
        assert_eq!(shapes, [vec![4], vec![4], vec![4], vec![4], vec![4]]);
    }

    #[test]
    fn an_unreachable_parser_is_an_error() {
        let mut former = GroupFormer::new(&options(4, 16));
        assert!(former.add(&pending(0), touched(0)).unwrap().is_none());
        let error = former.add(&pending(1), Prepared::ParserUnavailable("gone".to_string()));
        assert_eq!(error.err().as_deref(), Some("gone"));
    }
}
