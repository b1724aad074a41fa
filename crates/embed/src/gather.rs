//! [`GatheringEmbedder`]: concurrent small `embed` calls (search queries) share one batched
//! call of the inner embedder, and [`QueryCache`], an optional bounded cache of query vectors.
//!
//! A server embeds one query per request. Run one by one, eight concurrent requests make
//! eight forward passes that each multiply a handful of token rows by every weight matrix,
//! and contend for the same cores while they do. Gathered, they make one pass whose matrix
//! products have eight times the rows for about the cost of one (the weights are read once),
//! which is where the throughput comes from.
//!
//! How calls meet (leader/follower, no extra thread): a caller queues its texts. If fewer than
//! [`GatherOptions::concurrency`] batches are running it becomes a leader: it takes queued
//! calls in arrival order, whole, up to [`GatherOptions::max_batch`] texts, embeds them in one
//! inner call, files each caller's own vectors, and wakes the others. A caller that finds
//! every lane busy waits for a batch to end; its call goes in a later batch, so batches grow
//! by themselves as load grows, and a lone call never waits for company. A leader waits up to
//! [`GatherOptions::window`] for more calls only when other calls are already queued beside
//! its own (so there is concurrency to gather) and the batch is not yet full.
//!
//! Results are exact per caller: the inner embedder pads the batch and masks the padding (and
//! the 8-bit path quantises activations per row), so a gathered query's vector matches its
//! vector embedded alone (to float rounding, ~1e-7). An inner error is copied to every caller
//! of the failed batch; a panic in the inner call is caught and becomes such an error, so no
//! caller waits for a batch that will never end. Calls of more than `max_batch` texts
//! (documents, answer sentences) bypass the queue and go straight to the inner embedder.
//!
//! One unit: the queue, the leader protocol over it and the cache in front of it, with the
//! tests that stage their concurrency (a gated inner embedder holds a batch open while calls
//! queue behind it).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::{EmbedError, Embedder};

/// Tuning of a [`GatheringEmbedder`].
#[derive(Debug, Clone)]
pub struct GatherOptions {
    /// Most texts in one gathered call; `max_batch <= 1` turns gathering off (every call goes
    /// straight to the inner embedder, as without the wrapper).
    pub max_batch: usize,
    /// How long a leader that sees other calls queued beside its own waits for more before
    /// it starts the batch. Zero: it starts at once with what is queued.
    pub window: Duration,
    /// Batches run at once (at least one). One suits an inner embedder that spreads a call
    /// over every core; with single-threaded inner calls, one per core keeps the cores busy.
    pub concurrency: usize,
}

impl Default for GatherOptions {
    fn default() -> Self {
        GatherOptions {
            max_batch: 32,
            window: Duration::ZERO,
            concurrency: 1,
        }
    }
}

/// Counters of a [`GatheringEmbedder`] since it was made.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct GatherStats {
    /// `embed` calls that went through the queue.
    pub gathered_calls: u64,
    /// Inner calls made for them.
    pub batches: u64,
    /// Texts in those inner calls.
    pub batched_texts: u64,
    /// The most texts one inner call held.
    pub largest_batch: u64,
    /// Calls that went straight to the inner embedder (more than `max_batch` texts, or
    /// gathering off).
    pub direct_calls: u64,
    /// Single-text calls answered from the [`QueryCache`], and those that were not.
    pub cache_hits: u64,
    pub cache_misses: u64,
}

/// The counters behind [`GatherStats`], which several gatherers may share
/// ([`GatheringEmbedder::with_counters`]) so that a process's totals survive a gatherer being
/// dropped (a counter that went backwards would read as a restart).
#[derive(Debug, Default)]
pub struct GatherCounters {
    gathered_calls: AtomicU64,
    batches: AtomicU64,
    batched_texts: AtomicU64,
    largest_batch: AtomicU64,
    direct_calls: AtomicU64,
}

impl GatherCounters {
    /// The counts so far (the cache's fields are zero: the cache counts its own).
    pub fn stats(&self) -> GatherStats {
        GatherStats {
            gathered_calls: self.gathered_calls.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            batched_texts: self.batched_texts.load(Ordering::Relaxed),
            largest_batch: self.largest_batch.load(Ordering::Relaxed),
            direct_calls: self.direct_calls.load(Ordering::Relaxed),
            cache_hits: 0,
            cache_misses: 0,
        }
    }
}

type Vectors = Vec<Vec<f32>>;

/// The queue and the outcome of finished calls, under one mutex.
#[derive(Default)]
struct State {
    /// Calls waiting for a batch: their id and texts.
    queue: VecDeque<(u64, Vec<String>)>,
    /// Texts in `queue`.
    queued_texts: usize,
    /// Outcomes of calls whose batch ended, until their caller takes them.
    done: HashMap<u64, Result<Vectors, EmbedError>>,
    /// Leaders gathering or running a batch.
    running: usize,
    next_id: u64,
}

/// An [`Embedder`] whose concurrent small calls share batched calls of the inner embedder
/// (see the module documentation). Its fingerprint, dimension and tokenisation are the inner
/// embedder's: the vectors it returns are interchangeable with the inner ones.
pub struct GatheringEmbedder {
    inner: Arc<dyn Embedder>,
    options: GatherOptions,
    cache: Option<Arc<QueryCache>>,
    state: Mutex<State>,
    /// Signalled when a batch ends (waiting callers look for their outcome or lead next).
    finished: Condvar,
    /// Signalled when a call is queued (a leader inside its window looks again).
    arrived: Condvar,
    counters: Arc<GatherCounters>,
}

impl std::fmt::Debug for GatheringEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatheringEmbedder")
            .field("fingerprint", &self.inner.fingerprint())
            .field("options", &self.options)
            .field("cache", &self.cache.as_ref().map(|c| c.capacity()))
            .finish_non_exhaustive()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // The state is consistent at every unlock (a panic of the inner call is caught outside the
    // lock), so a poisoned lock is still usable.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// A copy of an inner error for each caller of a failed batch (the error type holds I/O
/// errors, so it cannot be `Clone`): same variant and message (an I/O error keeps its kind
/// and text, not its source chain).
fn replicate(error: &EmbedError) -> EmbedError {
    match error {
        EmbedError::ModelNotFound { path } => EmbedError::ModelNotFound { path: path.clone() },
        EmbedError::InvalidModel(m) => EmbedError::InvalidModel(m.clone()),
        EmbedError::Tokenizer(m) => EmbedError::Tokenizer(m.clone()),
        EmbedError::Inference(m) => EmbedError::Inference(m.clone()),
        EmbedError::Remote { status, message } => EmbedError::Remote {
            status: *status,
            message: message.clone(),
        },
        EmbedError::Request(m) => EmbedError::Request(m.clone()),
        EmbedError::Fetch(m) => EmbedError::Fetch(m.clone()),
        EmbedError::HashMismatch {
            file,
            expected,
            actual,
        } => EmbedError::HashMismatch {
            file: file.clone(),
            expected: expected.clone(),
            actual: actual.clone(),
        },
        EmbedError::Io { path, source } => EmbedError::Io {
            path: path.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
    }
}

/// The message of a caught panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

impl GatheringEmbedder {
    pub fn new(inner: Arc<dyn Embedder>, options: GatherOptions) -> Self {
        GatheringEmbedder {
            inner,
            options,
            cache: None,
            state: Mutex::new(State::default()),
            finished: Condvar::new(),
            arrived: Condvar::new(),
            counters: Arc::default(),
        }
    }

    /// Counts into `counters` (shared with other gatherers) instead of counters of its own.
    pub fn with_counters(mut self, counters: Arc<GatherCounters>) -> Self {
        self.counters = counters;
        self
    }

    /// Answers single-text calls from `cache` when it holds the text for this fingerprint,
    /// and stores what it embeds for them there.
    pub fn with_cache(mut self, cache: Arc<QueryCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    pub fn inner(&self) -> &Arc<dyn Embedder> {
        &self.inner
    }

    pub fn options(&self) -> &GatherOptions {
        &self.options
    }

    /// The counters so far (shared ones count for every gatherer sharing them); the cache's
    /// are the cache's, across every embedder using it.
    pub fn stats(&self) -> GatherStats {
        let (cache_hits, cache_misses) = self
            .cache
            .as_ref()
            .map(|c| (c.hits(), c.misses()))
            .unwrap_or_default();
        GatherStats {
            cache_hits,
            cache_misses,
            ..self.counters.stats()
        }
    }

    /// Calls queued and not yet taken into a batch (for tests that stage concurrency).
    #[cfg(test)]
    fn queued(&self) -> usize {
        lock(&self.state).queue.len()
    }

    fn gather(&self, texts: &[&str]) -> Result<Vectors, EmbedError> {
        self.counters.gathered_calls.fetch_add(1, Ordering::Relaxed);
        let mut state = lock(&self.state);
        let id = state.next_id;
        state.next_id += 1;
        state
            .queue
            .push_back((id, texts.iter().map(|t| (*t).to_owned()).collect()));
        state.queued_texts += texts.len();
        self.arrived.notify_all();
        loop {
            if let Some(outcome) = state.done.remove(&id) {
                return outcome;
            }
            if state.running >= self.options.concurrency.max(1) {
                state = self.finished.wait(state).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            if state.queue.is_empty() {
                // Another leader took this call into its batch; wait for that batch.
                state = self.finished.wait(state).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            state.running += 1;
            state = self.wait_window(state);
            if state.queue.is_empty() {
                // Another lane's leader took everything while this one waited.
                state.running -= 1;
                continue;
            }
            let mut ids = Vec::new();
            let mut batch: Vec<String> = Vec::new();
            let mut counts = Vec::new();
            while let Some((_, next)) = state.queue.front() {
                if !batch.is_empty() && batch.len() + next.len() > self.options.max_batch {
                    break;
                }
                let (call, call_texts) = state.queue.pop_front().expect("front exists");
                state.queued_texts -= call_texts.len();
                ids.push(call);
                counts.push(call_texts.len());
                batch.extend(call_texts);
            }
            drop(state);
            state = self.run_batch(ids, &batch, &counts);
        }
    }

    /// Inside a leader: waits up to the window for the batch to fill, when other calls are
    /// queued beside the leader's own.
    fn wait_window<'a>(&'a self, mut state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        if self.options.window.is_zero() || state.queue.len() < 2 {
            return state;
        }
        let deadline = Instant::now() + self.options.window;
        while state.queued_texts < self.options.max_batch {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = self
                .arrived
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        state
    }

    /// Runs one batch outside the lock, files each caller's outcome, and hands back the lock.
    /// A panic of the inner call becomes an error for each caller of the batch (the leader
    /// included), so nobody waits for a batch that will never end.
    fn run_batch(&self, ids: Vec<u64>, batch: &[String], counts: &[usize]) -> MutexGuard<'_, State> {
        let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.inner.embed(&refs)))
            .unwrap_or_else(|payload| {
                Err(EmbedError::Inference(format!(
                    "the batched embedding call panicked: {}",
                    panic_message(payload.as_ref())
                )))
            })
            .and_then(|vectors| {
                if vectors.len() == refs.len() {
                    Ok(vectors)
                } else {
                    Err(EmbedError::Inference(format!(
                        "the embedder returned {} vectors for {} texts",
                        vectors.len(),
                        refs.len()
                    )))
                }
            });
        self.counters.batches.fetch_add(1, Ordering::Relaxed);
        self.counters
            .batched_texts
            .fetch_add(refs.len() as u64, Ordering::Relaxed);
        self.counters
            .largest_batch
            .fetch_max(refs.len() as u64, Ordering::Relaxed);
        let mut state = lock(&self.state);
        match outcome {
            Ok(vectors) => {
                let mut vectors = vectors.into_iter();
                for (&id, &count) in ids.iter().zip(counts) {
                    state.done.insert(id, Ok(vectors.by_ref().take(count).collect()));
                }
            }
            Err(error) => {
                for &id in &ids {
                    state.done.insert(id, Err(replicate(&error)));
                }
            }
        }
        state.running -= 1;
        self.finished.notify_all();
        state
    }
}

impl Embedder for GatheringEmbedder {
    fn fingerprint(&self) -> &str {
        self.inner.fingerprint()
    }

    fn dimension(&self) -> usize {
        self.inner.dimension()
    }

    fn max_tokens(&self) -> usize {
        self.inner.max_tokens()
    }

    fn embed(&self, texts: &[&str]) -> Result<Vectors, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let cache = self.cache.as_ref().filter(|_| texts.len() == 1);
        if let Some(cache) = cache
            && let Some(vector) = cache.get(self.fingerprint(), texts[0])
        {
            return Ok(vec![vector]);
        }
        let vectors = if self.options.max_batch <= 1 || texts.len() > self.options.max_batch {
            self.counters.direct_calls.fetch_add(1, Ordering::Relaxed);
            self.inner.embed(texts)?
        } else {
            self.gather(texts)?
        };
        if let Some(cache) = cache
            && let Some(vector) = vectors.first()
        {
            cache.insert(self.fingerprint(), texts[0], vector.clone());
        }
        Ok(vectors)
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.inner.count_tokens(text)
    }

    fn token_spans(&self, text: &str) -> Vec<(usize, usize)> {
        self.inner.token_spans(text)
    }
}

/// A bounded least-recently-used cache of query vectors, keyed by the embedder's fingerprint
/// and the exact query text, so vectors of different models never mix and one cache can
/// serve every embedder of a process.
///
/// It holds query *vectors* only, never search results: every search that uses a cached
/// vector still makes its own access decision and filters, so access control is unaffected.
/// Off unless a capacity above zero is configured; its hits are not a measure of the model's
/// throughput, and benchmarks report them apart.
pub struct QueryCache {
    capacity: usize,
    entries: Mutex<Lru>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// A cache key: the embedder's fingerprint and the exact query text, as a pair (so no
/// separator can make two distinct pairs meet).
type Key = (String, String);

/// Entries by key with their last use, and keys by last use (oldest first).
#[derive(Default)]
struct Lru {
    by_key: HashMap<Key, (Vec<f32>, u64)>,
    by_use: BTreeMap<u64, Key>,
    clock: u64,
}

impl std::fmt::Debug for QueryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryCache")
            .field("capacity", &self.capacity)
            .field("hits", &self.hits())
            .field("misses", &self.misses())
            .finish_non_exhaustive()
    }
}

fn cache_key(fingerprint: &str, text: &str) -> Key {
    (fingerprint.to_owned(), text.to_owned())
}

impl QueryCache {
    /// A cache of at most `capacity` vectors (at least one).
    pub fn new(capacity: usize) -> Self {
        QueryCache {
            capacity: capacity.max(1),
            entries: Mutex::new(Lru::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// Vectors held now.
    pub fn len(&self) -> usize {
        self.lock().by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Lru> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The vector of `text` under `fingerprint`, counting a hit or a miss.
    pub fn get(&self, fingerprint: &str, text: &str) -> Option<Vec<f32>> {
        let key = cache_key(fingerprint, text);
        let mut lru = self.lock();
        lru.clock += 1;
        let now = lru.clock;
        let Some((vector, used)) = lru.by_key.get_mut(&key) else {
            drop(lru);
            self.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let before = std::mem::replace(used, now);
        let vector = vector.clone();
        lru.by_use.remove(&before);
        lru.by_use.insert(now, key);
        drop(lru);
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(vector)
    }

    /// Stores the vector of `text` under `fingerprint`, evicting the least recently used
    /// entry when full.
    pub fn insert(&self, fingerprint: &str, text: &str, vector: Vec<f32>) {
        let key = cache_key(fingerprint, text);
        let mut lru = self.lock();
        lru.clock += 1;
        let now = lru.clock;
        if let Some((_, before)) = lru.by_key.insert(key.clone(), (vector, now)) {
            lru.by_use.remove(&before);
        }
        lru.by_use.insert(now, key);
        while lru.by_key.len() > self.capacity {
            let Some((_, oldest)) = lru.by_use.pop_first() else {
                break;
            };
            lru.by_key.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::thread;

    /// A test double: each text's vector is `[len, first byte, 1]`; "bad" fails its batch and
    /// "boom" panics. While `gate` is closed, every inner call waits at it, so a test can
    /// queue calls behind a running batch before letting it finish.
    struct Counting {
        fingerprint: String,
        calls: Mutex<Vec<Vec<String>>>,
        gate: (Mutex<bool>, Condvar),
        entered: AtomicBool,
    }

    impl Counting {
        fn new(fingerprint: &str) -> Arc<Self> {
            Arc::new(Counting {
                fingerprint: fingerprint.to_owned(),
                calls: Mutex::new(Vec::new()),
                gate: (Mutex::new(true), Condvar::new()),
                entered: AtomicBool::new(false),
            })
        }

        fn close(&self) {
            *self.gate.0.lock().unwrap() = false;
        }

        fn open(&self) {
            *self.gate.0.lock().unwrap() = true;
            self.gate.1.notify_all();
        }

        fn batch_sizes(&self) -> Vec<usize> {
            self.calls.lock().unwrap().iter().map(Vec::len).collect()
        }
    }

    fn vector_of(text: &str) -> Vec<f32> {
        vec![text.len() as f32, text.bytes().next().unwrap_or(0) as f32, 1.0]
    }

    impl Embedder for Counting {
        fn fingerprint(&self) -> &str {
            &self.fingerprint
        }
        fn dimension(&self) -> usize {
            3
        }
        fn max_tokens(&self) -> usize {
            64
        }
        fn embed(&self, texts: &[&str]) -> Result<Vectors, EmbedError> {
            self.calls
                .lock()
                .unwrap()
                .push(texts.iter().map(|t| t.to_string()).collect());
            self.entered.store(true, Ordering::SeqCst);
            let mut open = self.gate.0.lock().unwrap();
            while !*open {
                open = self.gate.1.wait(open).unwrap();
            }
            drop(open);
            if texts.contains(&"boom") {
                panic!("boom");
            }
            if texts.contains(&"bad") {
                return Err(EmbedError::Inference("bad input".into()));
            }
            Ok(texts.iter().map(|t| vector_of(t)).collect())
        }
        fn count_tokens(&self, text: &str) -> usize {
            text.split_whitespace().count()
        }
        fn token_spans(&self, _text: &str) -> Vec<(usize, usize)> {
            Vec::new()
        }
    }

    /// Polls (no timing assertion) until `condition` holds.
    fn until(condition: impl Fn() -> bool) {
        while !condition() {
            thread::sleep(Duration::from_millis(1));
        }
    }

    type Outcome = thread::JoinHandle<thread::Result<Result<Vectors, EmbedError>>>;

    /// Starts a call of `texts` on its own thread.
    fn call(gatherer: &Arc<GatheringEmbedder>, texts: &[&str]) -> Outcome {
        let gatherer = gatherer.clone();
        let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
        thread::spawn(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                gatherer.embed(&refs)
            }))
        })
    }

    /// Holds the inner embedder inside a first call of "first", queues `calls` behind it,
    /// then lets everything run; the outcomes of `calls` in order.
    fn staged(
        inner: &Arc<Counting>,
        gatherer: &Arc<GatheringEmbedder>,
        calls: &[&[&str]],
    ) -> Vec<thread::Result<Result<Vectors, EmbedError>>> {
        inner.close();
        let first = call(gatherer, &["first"]);
        until(|| inner.entered.load(Ordering::SeqCst));
        let mut handles = Vec::new();
        for (i, texts) in calls.iter().enumerate() {
            handles.push(call(gatherer, texts));
            // One at a time, so the queue's order is the order of `calls`.
            until(|| gatherer.queued() == i + 1);
        }
        inner.open();
        assert_eq!(first.join().unwrap().unwrap().unwrap(), vec![vector_of("first")]);
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    }

    fn gatherer(inner: &Arc<Counting>, max_batch: usize) -> Arc<GatheringEmbedder> {
        Arc::new(GatheringEmbedder::new(
            inner.clone(),
            GatherOptions {
                max_batch,
                window: Duration::ZERO,
                concurrency: 1,
            },
        ))
    }

    #[test]
    fn calls_queued_behind_a_batch_share_the_next_one_and_get_their_own_vectors() {
        let inner = Counting::new("fp");
        let gatherer = gatherer(&inner, 32);
        let calls: Vec<Vec<&str>> = vec![vec!["a"], vec!["bb", "ccc"], vec!["dddd"], vec!["e"]];
        let refs: Vec<&[&str]> = calls.iter().map(Vec::as_slice).collect();
        let outcomes = staged(&inner, &gatherer, &refs);
        for (texts, outcome) in calls.iter().zip(outcomes) {
            let expected: Vectors = texts.iter().map(|t| vector_of(t)).collect();
            assert_eq!(outcome.unwrap().unwrap(), expected);
        }
        // The lone first call did not wait for company; the four queued calls made one batch.
        assert_eq!(inner.batch_sizes(), vec![1, 5]);
        let stats = gatherer.stats();
        assert_eq!(stats.gathered_calls, 5);
        assert_eq!(stats.batches, 2);
        assert_eq!(stats.batched_texts, 6);
        assert_eq!(stats.largest_batch, 5);
        assert_eq!(gatherer.fingerprint(), "fp");
    }

    #[test]
    fn batches_hold_at_most_max_batch_texts_and_larger_calls_go_direct() {
        let inner = Counting::new("fp");
        let gatherer = gatherer(&inner, 3);
        let calls: Vec<&[&str]> = vec![&["a"], &["b"], &["c", "d"], &["e"], &["f"], &["g"]];
        for outcome in staged(&inner, &gatherer, &calls) {
            outcome.unwrap().unwrap();
        }
        // Whole calls in arrival order: [a, b] (c+d would make four), [c, d, e], [f, g].
        assert_eq!(inner.batch_sizes(), vec![1, 2, 3, 2]);
        let big = gatherer.embed(&["1", "2", "3", "4"]).unwrap();
        assert_eq!(big.len(), 4);
        assert_eq!(inner.batch_sizes().last(), Some(&4));
        assert_eq!(gatherer.stats().direct_calls, 1);
    }

    #[test]
    fn an_error_reaches_every_caller_of_the_failed_batch_only() {
        let inner = Counting::new("fp");
        let gatherer = gatherer(&inner, 2);
        let calls: Vec<&[&str]> = vec![&["x"], &["bad"], &["y"]];
        let outcomes = staged(&inner, &gatherer, &calls);
        // [x, bad] failed together; y ran in the next batch.
        for outcome in &outcomes[..2] {
            let error = outcome.as_ref().unwrap().as_ref().unwrap_err();
            assert!(error.to_string().contains("bad input"), "{error}");
        }
        assert_eq!(
            outcomes[2].as_ref().unwrap().as_ref().unwrap(),
            &vec![vector_of("y")]
        );
    }

    #[test]
    fn a_panicking_batch_fails_its_callers_and_the_queue_goes_on() {
        let inner = Counting::new("fp");
        let gatherer = gatherer(&inner, 2);
        let calls: Vec<&[&str]> = vec![&["boom"], &["z"], &["w"]];
        let outcomes = staged(&inner, &gatherer, &calls);
        // [boom, z] failed together, whichever caller led it; w ran in the next batch.
        for outcome in &outcomes[..2] {
            let error = outcome.as_ref().unwrap().as_ref().unwrap_err();
            assert!(error.to_string().contains("panicked: boom"), "{error}");
        }
        assert_eq!(
            outcomes[2].as_ref().unwrap().as_ref().unwrap(),
            &vec![vector_of("w")]
        );
        assert_eq!(gatherer.embed(&["after"]).unwrap(), vec![vector_of("after")]);
    }

    #[test]
    fn gathering_off_calls_the_inner_embedder_as_is() {
        let inner = Counting::new("fp");
        let gatherer = gatherer(&inner, 1);
        assert_eq!(gatherer.embed(&["a", "b"]).unwrap().len(), 2);
        assert_eq!(gatherer.embed(&["c"]).unwrap(), vec![vector_of("c")]);
        assert_eq!(inner.batch_sizes(), vec![2, 1]);
        assert_eq!(gatherer.stats().direct_calls, 2);
        assert!(gatherer.embed(&[]).unwrap().is_empty());
    }

    #[test]
    fn a_window_lets_a_leader_with_company_wait_for_a_full_batch() {
        let inner = Counting::new("fp");
        let gatherer = Arc::new(GatheringEmbedder::new(
            inner.clone(),
            GatherOptions {
                max_batch: 4,
                // Long enough never to expire here: the batch starts because it fills.
                window: Duration::from_secs(600),
                concurrency: 1,
            },
        ));
        inner.close();
        let first = call(&gatherer, &["first"]);
        until(|| inner.entered.load(Ordering::SeqCst));
        let mut handles = vec![call(&gatherer, &["a"])];
        until(|| gatherer.queued() == 1);
        handles.push(call(&gatherer, &["b"]));
        until(|| gatherer.queued() == 2);
        inner.open();
        first.join().unwrap().unwrap().unwrap();
        // Two calls are queued, fewer than a full batch: the next leader waits for two more.
        handles.push(call(&gatherer, &["c"]));
        handles.push(call(&gatherer, &["d"]));
        for handle in handles {
            handle.join().unwrap().unwrap().unwrap();
        }
        assert_eq!(inner.batch_sizes(), vec![1, 4]);
    }

    #[test]
    fn a_lone_call_never_waits_for_the_window() {
        let inner = Counting::new("fp");
        let gatherer = Arc::new(GatheringEmbedder::new(
            inner.clone(),
            GatherOptions {
                max_batch: 8,
                // Were a lone call to wait for company, these tests would hang.
                window: Duration::from_secs(600),
                concurrency: 1,
            },
        ));
        assert_eq!(gatherer.embed(&["alone"]).unwrap(), vec![vector_of("alone")]);
        // One call queued behind a running batch is alone in the queue when it leads next.
        let outcomes = staged(&inner, &gatherer, &[&["next"]]);
        assert_eq!(
            outcomes[0].as_ref().unwrap().as_ref().unwrap(),
            &vec![vector_of("next")]
        );
        assert_eq!(inner.batch_sizes(), vec![1, 1, 1]);
    }

    #[test]
    fn gatherers_sharing_counters_add_up_and_keep_them_when_dropped() {
        let counters = Arc::new(GatherCounters::default());
        for fingerprint in ["one", "two"] {
            let inner = Counting::new(fingerprint);
            let gatherer =
                GatheringEmbedder::new(inner, GatherOptions::default()).with_counters(counters.clone());
            gatherer.embed(&["a", "bb"]).unwrap();
        }
        let stats = counters.stats();
        assert_eq!(
            (
                stats.gathered_calls,
                stats.batches,
                stats.batched_texts,
                stats.largest_batch
            ),
            (2, 2, 4, 2)
        );
    }

    #[test]
    fn with_two_lanes_two_batches_run_at_once() {
        let inner = Counting::new("fp");
        let gatherer = Arc::new(GatheringEmbedder::new(
            inner.clone(),
            GatherOptions {
                max_batch: 32,
                window: Duration::ZERO,
                concurrency: 2,
            },
        ));
        inner.close();
        let first = call(&gatherer, &["first"]);
        let second = call(&gatherer, &["second"]);
        // Both are inside the inner embedder at once, each leading its own batch.
        until(|| inner.batch_sizes().len() == 2);
        let mut handles = Vec::new();
        for (i, text) in ["a", "b", "c"].iter().enumerate() {
            handles.push(call(&gatherer, &[text]));
            until(|| gatherer.queued() == i + 1);
        }
        inner.open();
        for handle in [first, second].into_iter().chain(handles) {
            handle.join().unwrap().unwrap().unwrap();
        }
        assert_eq!(inner.batch_sizes(), vec![1, 1, 3]);
    }

    #[test]
    fn the_cache_answers_repeated_single_queries_least_recently_used_out_first() {
        let inner = Counting::new("fp-1");
        let cache = Arc::new(QueryCache::new(2));
        let gatherer =
            GatheringEmbedder::new(inner.clone(), GatherOptions::default()).with_cache(cache.clone());
        for text in ["a", "bb", "a"] {
            assert_eq!(gatherer.embed(&[text]).unwrap(), vec![vector_of(text)]);
        }
        assert_eq!(
            (cache.hits(), cache.misses(), inner.batch_sizes().len()),
            (1, 2, 2)
        );
        // "bb" is now the least recently used: "ccc" evicts it, and "a" stays.
        gatherer.embed(&["ccc"]).unwrap();
        gatherer.embed(&["a"]).unwrap();
        assert_eq!(inner.batch_sizes().len(), 3);
        gatherer.embed(&["bb"]).unwrap();
        assert_eq!(inner.batch_sizes().len(), 4);
        assert_eq!(cache.len(), 2);
        // Calls of several texts are neither answered from nor stored in the cache.
        gatherer.embed(&["a", "bb"]).unwrap();
        assert_eq!(inner.batch_sizes().len(), 5);
        let stats = gatherer.stats();
        assert_eq!((stats.cache_hits, stats.cache_misses), (2, 4));
    }

    #[test]
    fn the_cache_keeps_fingerprints_apart() {
        let cache = Arc::new(QueryCache::new(8));
        let one = Counting::new("model-1");
        let two = Counting::new("model-2");
        let first = GatheringEmbedder::new(one.clone(), GatherOptions::default()).with_cache(cache.clone());
        let second = GatheringEmbedder::new(two.clone(), GatherOptions::default()).with_cache(cache.clone());
        first.embed(&["same text"]).unwrap();
        second.embed(&["same text"]).unwrap();
        assert_eq!((one.batch_sizes().len(), two.batch_sizes().len()), (1, 1));
        assert_eq!(cache.len(), 2);
        first.embed(&["same text"]).unwrap();
        assert_eq!(one.batch_sizes().len(), 1);
        assert_eq!(cache.hits(), 1);
    }

    /// The real model behind a gate, so a test can make it batch queries it would otherwise
    /// get one at a time.
    struct Gated {
        inner: crate::LocalEmbedder,
        gate: Arc<Counting>,
    }

    impl Embedder for Gated {
        fn fingerprint(&self) -> &str {
            self.inner.fingerprint()
        }
        fn dimension(&self) -> usize {
            self.inner.dimension()
        }
        fn max_tokens(&self) -> usize {
            self.inner.max_tokens()
        }
        fn embed(&self, texts: &[&str]) -> Result<Vectors, EmbedError> {
            self.gate.embed(&["first"])?;
            self.inner.embed(texts)
        }
        fn count_tokens(&self, text: &str) -> usize {
            self.inner.count_tokens(text)
        }
        fn token_spans(&self, text: &str) -> Vec<(usize, usize)> {
            self.inner.token_spans(text)
        }
    }

    #[test]
    fn gathered_queries_match_queries_embedded_alone_with_the_real_model() {
        let Some(dir) = crate::test_model_dir() else {
            return;
        };
        // Both precisions: the 8-bit path quantises activations per row, so a row's neighbours
        // in the batch never change its numbers.
        for precision in [crate::Precision::Fp32, crate::Precision::Int8] {
            gathered_matches_alone(&dir, precision);
        }
    }

    fn gathered_matches_alone(dir: &std::path::Path, precision: crate::Precision) {
        let options = crate::LocalOptions {
            precision,
            ..crate::LocalOptions::default()
        };
        let alone = crate::LocalEmbedder::load(dir, options.clone()).unwrap();
        let gate = Counting::new("gate");
        let gated = Arc::new(Gated {
            inner: crate::LocalEmbedder::load(dir, options).unwrap(),
            gate: gate.clone(),
        });
        let gatherer = Arc::new(GatheringEmbedder::new(gated.clone(), GatherOptions::default()));
        // Lengths from 3 to ~40 tokens, so the short ones are padded inside the batch.
        let queries = [
            "vitamin D",
            "Does smoking cause lung cancer in non-smokers exposed to second-hand smoke?",
            "0-dimensional biomaterials lack inductive properties.",
            "ALDH1 expression is associated with poorer prognosis for breast cancer primary \
             tumors, and with better outcomes after chemotherapy in some cohorts of patients \
             treated between 1990 and 2005.",
            "TNF",
            "Élan vital, naïve café: non-ASCII text 🙂",
        ];
        gate.close();
        let first = call(&gatherer, &["warm up"]);
        until(|| gate.entered.load(Ordering::SeqCst));
        let mut handles = Vec::new();
        for (i, query) in queries.iter().enumerate() {
            handles.push(call(&gatherer, &[query]));
            until(|| gatherer.queued() == i + 1);
        }
        gate.open();
        first.join().unwrap().unwrap().unwrap();
        let mut outcomes = Vec::new();
        for handle in handles {
            outcomes.push(handle.join().unwrap().unwrap().unwrap().pop().unwrap());
        }
        // The queries made one batch (the "first" call's ended before it started).
        assert_eq!(gatherer.stats().largest_batch, queries.len() as u64);
        for (query, gathered) in queries.iter().zip(outcomes) {
            let single = alone.embed(&[query]).unwrap().pop().unwrap();
            assert_eq!(gathered.len(), single.len());
            let worst = gathered
                .iter()
                .zip(&single)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(
                worst <= 1e-6,
                "{precision:?} {query:?}: gathered and alone differ by {worst}"
            );
        }
    }
}
