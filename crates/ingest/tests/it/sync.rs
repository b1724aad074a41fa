//! The sync pipeline against a real store, real indexes and the real model: the overlapped
//! pipeline gives exactly what a document-by-document sync gives, and a failing stage fails the
//! sync without committing a partial batch or applying deletions.

use groundwork_core::{KnowledgeBase, KnowledgeBaseConfig, Source, SourceConfig};
use groundwork_embed::{EmbedError, Embedder, LocalEmbedder, LocalOptions};
use groundwork_ingest::sync::{SyncEngine, SyncError, SyncEvent, SyncObserver, SyncOptions, SyncReport};
use groundwork_objects::{Connection, Location};
use groundwork_search::LiveIndex;
use groundwork_store::Store;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn model() -> Option<Arc<LocalEmbedder>> {
    let dir = groundwork_embed::test_model_dir()?;
    Some(Arc::new(
        LocalEmbedder::load(&dir, LocalOptions::default()).expect("load the model"),
    ))
}

const TOPICS: [&str; 6] = [
    "glaciers",
    "compilers",
    "vaccines",
    "orchards",
    "tariffs",
    "violins",
];

/// Documents of very different lengths (one sentence to several chunks), two with the same
/// text (one cache entry, two chunks), and two that fail (empty, binary).
fn write_corpus(dir: &Path, documents: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..documents {
        let topic = TOPICS[i % TOPICS.len()];
        let sentences = (i * 7) % 41 + 1;
        let mut text = format!("Report {i} on {topic}. marker{i:03} names this report.\n\n");
        for s in 0..sentences {
            text.push_str(&format!(
                "Observation {s} about {topic} in study {i} found that measure {} moved by {} percent. ",
                (i * 31 + s * 7) % 97,
                (i + s) % 13
            ));
            if s % 9 == 8 {
                text.push_str("\n\n");
            }
        }
        std::fs::write(dir.join(format!("doc{i:03}.md")), text).unwrap();
    }
    std::fs::write(
        dir.join("same-a.txt"),
        "Identical text in two files about glaciers.",
    )
    .unwrap();
    std::fs::write(
        dir.join("same-b.txt"),
        "Identical text in two files about glaciers.",
    )
    .unwrap();
    std::fs::write(dir.join("empty.txt"), "").unwrap();
    std::fs::write(
        dir.join("binary.txt"),
        [0u8, 159, 146, 150, 0, 1, 2, 3, 255, 0].repeat(50),
    )
    .unwrap();
}

/// A knowledge base with one folder source, in its own store.
struct Kb {
    _home: tempfile::TempDir,
    store: Store,
    kb: KnowledgeBase,
    live: LiveIndex,
    sources: Vec<(Source, Connection)>,
}

impl Kb {
    fn new(folder: &Path, embedder: &dyn Embedder) -> Kb {
        let home = tempfile::tempdir().unwrap();
        let store = Store::open(&home.path().join("groundwork.db")).unwrap();
        let kb = store.create_kb("kb", &KnowledgeBaseConfig::default()).unwrap();
        let uri = Location::parse(folder.to_str().unwrap()).unwrap().uri();
        store.add_source(kb.id, &uri, &SourceConfig::default()).unwrap();
        let live = LiveIndex::open(
            &home.path().join("indexes"),
            &store,
            kb.id,
            embedder.fingerprint(),
            embedder.dimension(),
            Default::default(),
        )
        .unwrap();
        let mut kb = Kb {
            _home: home,
            store,
            kb,
            live,
            sources: Vec::new(),
        };
        kb.connect();
        kb
    }

    fn connect(&mut self) {
        self.sources = self
            .store
            .sources(self.kb.id)
            .unwrap()
            .into_iter()
            .map(|source| {
                let connection = Connection::connect(&source.uri, &source.config).unwrap();
                (source, connection)
            })
            .collect();
    }

    fn sync(
        &self,
        embedder: &dyn Embedder,
        options: SyncOptions,
        observer: &mut dyn SyncObserver,
    ) -> Result<SyncReport, SyncError> {
        SyncEngine {
            store: &self.store,
            kb: &self.kb,
            embedder,
            indexes: &self.live,
            options,
        }
        .run(&self.sources, observer)
    }

    /// uri → (content hash, chunks as (ordinal, text, char range, vector)), failures as a hash
    /// of `failed:`.
    fn contents(&self, model: &str) -> BTreeMap<String, (String, Vec<ChunkRow>)> {
        let mut vectors = BTreeMap::new();
        self.store
            .for_each_chunk_vector(self.kb.id, model, None, |chunk, _, vector| {
                vectors.insert(chunk, vector.to_vec());
            })
            .unwrap();
        let mut out = BTreeMap::new();
        for (source, _) in &self.sources {
            for (uri, state) in self.store.document_states(source.id).unwrap() {
                let hash = match (&state.content_sha256, &state.failed_version) {
                    (Some(hash), _) => hash.clone(),
                    (None, Some(_)) => "failed".to_string(),
                    (None, None) => "none".to_string(),
                };
                let chunks = self
                    .store
                    .document_chunks(state.id)
                    .unwrap()
                    .into_iter()
                    .map(|c| ChunkRow {
                        ordinal: c.ordinal,
                        text: c.text,
                        range: (c.char_start, c.char_end),
                        vector: vectors.get(&c.id).cloned().unwrap_or_default(),
                    })
                    .collect();
                out.insert(uri, (hash, chunks));
            }
        }
        out
    }

    /// Top chunks as (uri, ordinal, score) for a lexical and a semantic query.
    fn search(&self, query: &str, vector: &[f32]) -> (Vec<Hit>, Vec<Hit>) {
        let name = |chunk_id: u64, score: f32| {
            let chunk = &self.store.chunks(&[chunk_id as i64]).unwrap()[0];
            (chunk.uri.clone(), chunk.ordinal, score)
        };
        let indexes = self.live.read();
        let lexical = indexes.search_lexical(query, 10, None).unwrap();
        let semantic = indexes.search_vectors(vector, 10, None);
        (
            lexical.iter().map(|s| name(s.chunk_id, s.score)).collect(),
            semantic.iter().map(|s| name(s.chunk_id, s.score)).collect(),
        )
    }
}

type Hit = (String, usize, f32);

/// The same hits in the same order, scores equal but for rounding; hits whose scores tie
/// within rounding may swap places.
fn assert_same_hits(got: &[Hit], want: &[Hit], context: &str) {
    assert_eq!(got.len(), want.len(), "{context}: {got:?} {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g.2 - w.2).abs() < 1e-4, "{context} #{i}: {got:?} {want:?}");
        if (g.0.as_str(), g.1) != (w.0.as_str(), w.1) {
            let tie = |hits: &[Hit], j: usize| hits.get(j).is_some_and(|h| (h.2 - w.2).abs() < 1e-4);
            assert!(
                tie(want, i + 1) || (i > 0 && tie(want, i - 1)),
                "{context} #{i}: {got:?} {want:?}"
            );
        }
    }
}

#[derive(Debug, Clone)]
struct ChunkRow {
    ordinal: usize,
    text: String,
    range: (usize, usize),
    vector: Vec<f32>,
}

/// Counts what a sync reports as it goes.
#[derive(Default)]
struct Events {
    processed: usize,
    /// Documents of each committed batch.
    batches: Vec<usize>,
    committed_documents: usize,
    tokens: usize,
}

impl SyncObserver for Events {
    fn event(&mut self, event: SyncEvent<'_>) {
        match event {
            SyncEvent::Processed { .. } => self.processed += 1,
            SyncEvent::Committed {
                documents,
                tokens_embedded,
            } => {
                self.committed_documents += documents;
                self.batches.push(documents);
                self.tokens += tokens_embedded;
            }
            _ => {}
        }
    }
}

/// One document at a time, as a sync without a pipeline: batches of one document, one text
/// per embedder call, one thread preparing.
fn one_by_one() -> SyncOptions {
    SyncOptions {
        commit_batch_documents: 1,
        embed_batch: 1,
        prepare_threads: 1,
        ..SyncOptions::default()
    }
}

/// Small batches and groups, several threads: many groups in flight at once.
fn pipelined() -> SyncOptions {
    SyncOptions {
        commit_batch_documents: 3,
        embed_batch: 16,
        prepare_threads: 3,
        ..SyncOptions::default()
    }
}

fn assert_same_contents(
    got: &BTreeMap<String, (String, Vec<ChunkRow>)>,
    want: &BTreeMap<String, (String, Vec<ChunkRow>)>,
) {
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    for (uri, (hash, chunks)) in want {
        let (got_hash, got_chunks) = &got[uri];
        assert_eq!(got_hash, hash, "{uri}");
        assert_eq!(got_chunks.len(), chunks.len(), "{uri}");
        for (g, w) in got_chunks.iter().zip(chunks) {
            assert_eq!(
                (g.ordinal, &g.text, g.range),
                (w.ordinal, &w.text, w.range),
                "{uri}"
            );
            assert_eq!(g.vector.len(), w.vector.len(), "{uri} chunk {}", w.ordinal);
            assert!(!w.vector.is_empty(), "{uri} chunk {} has no vector", w.ordinal);
            // Batches of other shapes may round differently in the last bits.
            let worst = g
                .vector
                .iter()
                .zip(&w.vector)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(
                worst < 1e-4,
                "{uri} chunk {}: vectors differ by {worst}",
                w.ordinal
            );
        }
    }
}

#[test]
fn the_pipeline_stores_and_indexes_exactly_what_a_document_by_document_sync_does() {
    let Some(embedder) = model() else { return };
    let corpus = tempfile::tempdir().unwrap();
    write_corpus(corpus.path(), 60);
    let model = embedder.fingerprint().to_string();

    let reference = Kb::new(corpus.path(), embedder.as_ref());
    let want = reference.sync(embedder.as_ref(), one_by_one(), &mut ()).unwrap();
    let piped = Kb::new(corpus.path(), embedder.as_ref());
    let mut events = Events::default();
    let got = piped.sync(embedder.as_ref(), pipelined(), &mut events).unwrap();

    assert_eq!(got.added, 62, "{got:?}");
    assert_eq!(got.failed.len(), 2, "{got:?}");
    assert!(
        got.embeddings_cached >= 1,
        "the duplicate text came from the cache: {got:?}"
    );
    for (g, w) in [
        (got.added, want.added),
        (got.chunks_written, want.chunks_written),
        (got.embeddings_computed, want.embeddings_computed),
        (got.embeddings_cached, want.embeddings_cached),
        (got.tokens_embedded, want.tokens_embedded),
    ] {
        assert_eq!(g, w, "pipelined {got:?}\none by one {want:?}");
    }
    assert_eq!(got.failed, want.failed);
    assert_eq!(got.changed, want.changed);
    assert_eq!(events.processed, 64);
    assert_eq!(events.committed_documents, 64);
    assert_eq!(events.tokens, got.tokens_embedded);
    assert!(got.tokens_per_s > 0.0 && got.documents_per_s > 0.0, "{got:?}");

    let contents = piped.contents(&model);
    assert_same_contents(&contents, &reference.contents(&model));
    for (query, topic) in [("marker017 glaciers", "glaciers"), ("violins study", "violins")] {
        let vector = &embedder.embed(&[topic]).unwrap()[0];
        let (lexical, semantic) = piped.search(query, vector);
        let (want_lexical, want_semantic) = reference.search(query, vector);
        assert!(!lexical.is_empty() && !semantic.is_empty(), "{query}");
        assert_same_hits(&lexical, &want_lexical, query);
        assert_same_hits(&semantic, &want_semantic, query);
    }

    // The same again with the parse and chunk threads far ahead of one slow embedding call
    // per group: nothing changes.
    let wide = Kb::new(corpus.path(), embedder.as_ref());
    let options = SyncOptions {
        commit_batch_documents: 32,
        embed_batch: 512,
        prepare_threads: 4,
        ..SyncOptions::default()
    };
    wide.sync(embedder.as_ref(), options, &mut ()).unwrap();
    assert_same_contents(&wide.contents(&model), &contents);
}

/// Fails every call that embeds a text containing `poison`, else embeds with the model.
struct Failing<'a> {
    inner: &'a dyn Embedder,
    poison: &'a str,
    calls: AtomicUsize,
}

impl Embedder for Failing<'_> {
    fn fingerprint(&self) -> &str {
        self.inner.fingerprint()
    }
    fn dimension(&self) -> usize {
        self.inner.dimension()
    }
    fn max_tokens(&self) -> usize {
        self.inner.max_tokens()
    }
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if texts.iter().any(|t| t.contains(self.poison)) {
            return Err(EmbedError::Inference("poisoned text".to_string()));
        }
        self.inner.embed(texts)
    }
    fn count_tokens(&self, text: &str) -> usize {
        self.inner.count_tokens(text)
    }
    fn token_spans(&self, text: &str) -> Vec<(usize, usize)> {
        self.inner.token_spans(text)
    }
}

/// What [`Kb::contents`] returns: by URI, the content hash and the chunks.
type Contents = BTreeMap<String, (String, Vec<ChunkRow>)>;

/// A knowledge base over `n` reports plus `zz-gone.md`, synced once; then `zz-gone.md` is
/// deleted from the folder and every report revised, so that a second sync has new text to
/// embed for each and a deletion to apply. Returns the knowledge base, the model fingerprint
/// and its contents before the second sync.
fn synced_then_revised(corpus: &Path, embedder: &dyn Embedder, n: usize) -> (Kb, String, Contents) {
    write_corpus(corpus, n);
    let model = embedder.fingerprint().to_string();
    let kb = Kb::new(corpus, embedder);
    let gone = corpus.join("zz-gone.md");
    std::fs::write(&gone, "A document that is deleted before the failing sync.").unwrap();
    kb.sync(embedder, pipelined(), &mut ()).unwrap();
    std::fs::remove_file(&gone).unwrap();
    for i in 0..n {
        let path = corpus.join(format!("doc{i:03}.md"));
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("Revised. {text}")).unwrap();
    }
    let before = kb.contents(&model);
    (kb, model, before)
}

#[test]
fn an_embedding_failure_fails_the_sync_without_a_partial_batch_or_deletions() {
    let Some(embedder) = model() else { return };
    let corpus = tempfile::tempdir().unwrap();
    let (kb, model, before) = synced_then_revised(corpus.path(), embedder.as_ref(), 40);

    let failing = Failing {
        inner: embedder.as_ref(),
        poison: "marker021",
        calls: AtomicUsize::new(0),
    };
    let mut events = Events::default();
    let error = kb.sync(&failing, pipelined(), &mut events).unwrap_err();
    assert!(matches!(error, SyncError::Embed(_)), "{error}");
    assert!(failing.calls.load(Ordering::Relaxed) > 0);

    // What committed is whole batches, each reported once committed, in listing order, all
    // before the poisoned document; everything else is as it was, the deleted document
    // included.
    let after = kb.contents(&model);
    let revised: Vec<&String> = after
        .iter()
        .filter(|(uri, (hash, _))| before.get(*uri).map(|b| &b.0) != Some(hash))
        .map(|(uri, _)| uri)
        .collect();
    assert_eq!(revised.len(), events.committed_documents, "{revised:?}");
    assert_eq!(revised.len(), events.processed, "{revised:?}");
    assert!(
        events.batches.iter().all(|&b| (1..=3).contains(&b)),
        "{:?}",
        events.batches
    );
    assert!(revised.len() <= 21, "{revised:?}");
    for (i, uri) in revised.iter().enumerate() {
        assert!(uri.ends_with(&format!("doc{i:03}.md")), "{revised:?}");
    }
    assert!(
        after.keys().any(|uri| uri.ends_with("zz-gone.md")),
        "a failed sync applied deletions"
    );
    let runs = kb.store.sync_runs(kb.kb.id, 1).unwrap();
    assert_eq!(runs[0].status, "failed");

    // A sync that works converges on what one clean sync gives.
    kb.sync(embedder.as_ref(), pipelined(), &mut ()).unwrap();
    let clean = Kb::new(corpus.path(), embedder.as_ref());
    clean.sync(embedder.as_ref(), one_by_one(), &mut ()).unwrap();
    assert_same_contents(&kb.contents(&model), &clean.contents(&model));
}

#[test]
fn a_parser_that_cannot_start_fails_the_sync_without_recording_or_deleting_anything() {
    let Some(embedder) = model() else { return };
    let corpus = tempfile::tempdir().unwrap();
    let (kb, model, before) = synced_then_revised(corpus.path(), embedder.as_ref(), 30);

    let pool = groundwork_ingest::parse::ParserPool::new(
        groundwork_ingest::parse::WorkerCommand {
            program: corpus.path().join("no-such-parser"),
            args: Vec::new(),
        },
        Default::default(),
    );
    let options = SyncOptions {
        parser_pool: Some(Arc::new(pool)),
        ..pipelined()
    };
    let mut events = Events::default();
    let error = kb.sync(embedder.as_ref(), options, &mut events).unwrap_err();
    assert!(matches!(error, SyncError::Parser(_)), "{error}");
    assert_eq!(events.committed_documents, 0);
    // Nothing recorded against the documents, nothing deleted.
    assert_same_contents(&kb.contents(&model), &before);
    assert_eq!(kb.store.sync_runs(kb.kb.id, 1).unwrap()[0].status, "failed");
}

/// Panics when the `nth` batch has committed.
struct PanicAt {
    nth: usize,
    batches: usize,
    documents: usize,
}

impl SyncObserver for PanicAt {
    fn event(&mut self, event: SyncEvent<'_>) {
        if let SyncEvent::Committed { documents, .. } = event {
            self.batches += 1;
            self.documents += documents;
            if self.batches == self.nth {
                panic!("the observer gives up");
            }
        }
    }
}

#[test]
fn a_commit_stage_that_stops_stops_the_others_and_a_later_sync_converges() {
    let Some(embedder) = model() else { return };
    let corpus = tempfile::tempdir().unwrap();
    write_corpus(corpus.path(), 60);
    let model = embedder.fingerprint().to_string();
    let kb = Kb::new(corpus.path(), embedder.as_ref());
    // The commit stage unwinds after its second batch, while the stages before it are busy
    // preparing and embedding later groups: they stop, the scope ends, the panic comes out.
    let mut observer = PanicAt {
        nth: 2,
        batches: 0,
        documents: 0,
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        kb.sync(embedder.as_ref(), pipelined(), &mut observer)
    }));
    assert!(outcome.is_err(), "the observer's panic came out of the sync");
    // The two batches committed, nothing else did.
    let committed = kb
        .contents(&model)
        .values()
        .filter(|(hash, _)| hash != "none")
        .count();
    assert_eq!(committed, observer.documents);

    kb.sync(embedder.as_ref(), pipelined(), &mut ()).unwrap();
    let clean = Kb::new(corpus.path(), embedder.as_ref());
    clean.sync(embedder.as_ref(), one_by_one(), &mut ()).unwrap();
    assert_same_contents(&kb.contents(&model), &clean.contents(&model));
}

fn int8_model() -> LocalEmbedder {
    LocalEmbedder::load(
        &groundwork_embed::test_model_dir().unwrap(),
        LocalOptions {
            precision: groundwork_embed::Precision::Int8,
            ..LocalOptions::default()
        },
    )
    .unwrap()
}

#[test]
fn unchanged_documents_are_embedded_again_for_a_model_that_lacks_their_vectors() {
    let Some(fp32) = model() else { return };
    let int8 = int8_model();
    assert_ne!(fp32.fingerprint(), int8.fingerprint());
    let corpus = tempfile::tempdir().unwrap();
    write_corpus(corpus.path(), 12);
    let kb = Kb::new(corpus.path(), fp32.as_ref());
    let first = kb.sync(fp32.as_ref(), pipelined(), &mut ()).unwrap();
    assert!(first.embeddings_computed > 0);
    let again = kb.sync(fp32.as_ref(), pipelined(), &mut ()).unwrap();
    assert_eq!((again.updated, again.embeddings_computed), (0, 0));

    // The other numeric path (a new fingerprint): no document changed, yet every chunk's text
    // needs a vector of the new model, and gets one.
    let switched = kb.sync(&int8, pipelined(), &mut ()).unwrap();
    assert_eq!(switched.added, 0);
    assert_eq!(switched.embeddings_computed, first.embeddings_computed);
    let before = kb.contents(fp32.fingerprint());
    let after = kb.contents(int8.fingerprint());
    assert_eq!(before.len(), after.len());
    for (uri, (hash, chunks)) in &before {
        let (new_hash, new_chunks) = &after[uri];
        assert_eq!(hash, new_hash, "{uri}");
        assert_eq!(
            chunks.len(),
            new_chunks.len(),
            "{uri}: a chunk lacks an int8 vector"
        );
        for (old, new) in chunks.iter().zip(new_chunks) {
            assert_eq!((&old.text, old.range), (&new.text, new.range));
            let cosine: f32 = old.vector.iter().zip(&new.vector).map(|(a, b)| a * b).sum();
            assert!(
                cosine > 0.98,
                "{uri}: fp32 and int8 vectors too far apart ({cosine})"
            );
        }
    }
    // Then it is up to date for that model too, and the first model's vectors are still there.
    let settled = kb.sync(&int8, pipelined(), &mut ()).unwrap();
    assert_eq!((settled.updated, settled.embeddings_computed), (0, 0));
    assert_same_contents(&kb.contents(fp32.fingerprint()), &before);
}

#[test]
fn a_failed_run_with_another_model_leaves_nothing_without_a_vector_of_the_next() {
    let Some(fp32) = model() else { return };
    let int8 = int8_model();
    let corpus = tempfile::tempdir().unwrap();
    // Synced with fp32, then every report revised.
    let (kb, model, _) = synced_then_revised(corpus.path(), fp32.as_ref(), 40);
    // A sync with int8 commits the revised reports before the poisoned one, with int8 vectors
    // only, then fails.
    let failing = Failing {
        inner: &int8,
        poison: "marker021",
        calls: AtomicUsize::new(0),
    };
    let report = kb.sync(&failing, pipelined(), &mut ()).unwrap_err();
    assert!(matches!(report, SyncError::Embed(_)), "{report}");
    // Back on fp32: the run before did not complete with fp32, so every chunk is checked and
    // the reports the failed run committed are embedded again.
    let back = kb.sync(fp32.as_ref(), pipelined(), &mut ()).unwrap();
    assert!(back.embeddings_computed > 0);
    for (uri, (_, chunks)) in kb.contents(&model) {
        for chunk in chunks {
            assert_eq!(
                chunk.vector.len(),
                fp32.dimension(),
                "{uri}: a chunk lacks an fp32 vector"
            );
        }
    }
}
