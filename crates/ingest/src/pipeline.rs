//! The plumbing of the sync pipeline, apart from what flows through it: an ordered parallel
//! map with a bounded window, and per-stage clocks.
//!
//! Invariants of [`ordered_map`]: results reach the sink in input order, whatever order the
//! workers finish in; at most `window` items are taken and not yet handed to the sink (so the
//! memory of a slow sink stays bounded); the sink runs on the calling thread; and once the sink
//! says stop, no worker starts another item. A panic in `work` is raised on the calling thread
//! when its item's turn comes.

use serde::Serialize;
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Runs `work` over `items` on `threads` threads and hands each result to `sink` in input
/// order, on the calling thread. At most `window` items (at least `threads`) are in flight:
/// taken by a worker and not yet handed on. Stops early, starting no further item, when `sink`
/// returns [`ControlFlow::Break`]; returns whether it ran to the end.
pub fn ordered_map<'a, T, R>(
    items: &'a [T],
    threads: usize,
    window: usize,
    work: impl Fn(&'a T) -> R + Sync,
    mut sink: impl FnMut(R) -> ControlFlow<()>,
) -> bool
where
    T: Sync,
    R: Send,
{
    let threads = threads.clamp(1, items.len().max(1));
    let window = window.max(threads);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (job_tx, job_rx) = mpsc::channel::<usize>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (result_tx, result_rx) = mpsc::channel::<(usize, std::thread::Result<R>)>();
        for _ in 0..threads {
            let job_rx = Arc::clone(&job_rx);
            let result_tx = result_tx.clone();
            let (work, stop) = (&work, &stop);
            scope.spawn(move || {
                loop {
                    let next = job_rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok(index) = next else { break };
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    // A panic is handed to the caller's thread, in order, and raised there.
                    let result = std::panic::catch_unwind(AssertUnwindSafe(|| work(&items[index])));
                    if result_tx.send((index, result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(result_tx);
        let (mut sent, mut handed) = (0, 0);
        let mut ready: BTreeMap<usize, std::thread::Result<R>> = BTreeMap::new();
        while handed < items.len() {
            while sent < items.len() && sent - handed < window {
                // The workers hold the receiver until the job channel is dropped below.
                let _ = job_tx.send(sent);
                sent += 1;
            }
            let Ok((index, result)) = result_rx.recv() else {
                break;
            };
            ready.insert(index, result);
            while let Some(result) = ready.remove(&handed) {
                handed += 1;
                let result = match result {
                    Ok(result) => result,
                    Err(panic) => {
                        stop.store(true, Ordering::Relaxed);
                        std::panic::resume_unwind(panic);
                    }
                };
                if sink(result).is_break() {
                    stop.store(true, Ordering::Relaxed);
                    return false;
                }
            }
        }
        handed == items.len()
    })
}

/// Busy time of one stage, summed over the threads that run it; shared by reference.
#[derive(Debug, Default)]
pub struct Clock(AtomicU64);

impl Clock {
    /// Runs `f`, adding its wall time to the clock.
    pub fn time<R>(&self, f: impl FnOnce() -> R) -> R {
        let started = Instant::now();
        let result = f();
        self.add(started.elapsed());
        result
    }

    pub fn add(&self, elapsed: Duration) {
        self.0.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Milliseconds so far.
    pub fn ms(&self) -> u64 {
        self.0.load(Ordering::Relaxed) / 1000
    }
}

/// Where a sync's time went, stage by stage, in milliseconds. Stages overlap (parsing and
/// chunking run on several threads, embedding and committing on one each), so the stages sum
/// to more than the sync's wall time; the `_idle_ms` fields say how long the embedding and
/// commit stages waited for work, which shows which stage bounds the sync.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SyncTimings {
    /// Listing the sources and diffing the listings against the store.
    pub list_ms: u64,
    /// Reading objects and sidecars, and hashing them.
    pub read_ms: u64,
    /// Parsing (in worker processes, or on threads).
    pub parse_ms: u64,
    /// Chunking, with the tokenizer, and hashing the chunks.
    pub chunk_ms: u64,
    /// Looking chunk hashes up in the embedding cache.
    pub cache_lookup_ms: u64,
    /// The embedder (it tokenizes again, then runs the model).
    pub embed_ms: u64,
    /// Storing new vectors in the embedding cache.
    pub cache_store_ms: u64,
    /// Committing documents and chunks to the store.
    pub commit_ms: u64,
    /// Bringing the derived indexes up to date (during the sync and at its end).
    pub index_ms: u64,
    /// The embedding stage waiting for parsed and chunked documents.
    pub embed_idle_ms: u64,
    /// The commit stage waiting for embedded batches.
    pub commit_idle_ms: u64,
}

/// The clocks behind [`SyncTimings`], shared by the pipeline's threads.
#[derive(Debug, Default)]
pub struct StageClocks {
    pub list: Clock,
    pub read: Clock,
    pub parse: Clock,
    pub chunk: Clock,
    pub cache_lookup: Clock,
    pub embed: Clock,
    pub cache_store: Clock,
    pub commit: Clock,
    pub index: Clock,
    pub embed_idle: Clock,
    pub commit_idle: Clock,
}

impl StageClocks {
    pub fn timings(&self) -> SyncTimings {
        SyncTimings {
            list_ms: self.list.ms(),
            read_ms: self.read.ms(),
            parse_ms: self.parse.ms(),
            chunk_ms: self.chunk.ms(),
            cache_lookup_ms: self.cache_lookup.ms(),
            embed_ms: self.embed.ms(),
            cache_store_ms: self.cache_store.ms(),
            commit_ms: self.commit.ms(),
            index_ms: self.index.ms(),
            embed_idle_ms: self.embed_idle.ms(),
            commit_idle_ms: self.commit_idle.ms(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_order_whatever_order_workers_finish_in() {
        let items: Vec<u64> = (0..200).collect();
        let mut seen = Vec::new();
        let finished = ordered_map(
            &items,
            4,
            8,
            |&i| {
                // Later items often finish first.
                std::thread::sleep(Duration::from_micros((200 - i) % 7 * 50));
                i * 2
            },
            |r| {
                seen.push(r);
                ControlFlow::Continue(())
            },
        );
        assert!(finished);
        assert_eq!(seen, items.iter().map(|i| i * 2).collect::<Vec<_>>());
    }

    #[test]
    fn a_stop_starts_nothing_more_and_the_window_bounds_what_is_taken() {
        let items: Vec<usize> = (0..1000).collect();
        let started = AtomicU64::new(0);
        let mut handed = 0;
        let finished = ordered_map(
            &items,
            3,
            5,
            |&i| {
                started.fetch_add(1, Ordering::Relaxed);
                i
            },
            |_| {
                handed += 1;
                if handed == 10 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        );
        assert!(!finished);
        assert_eq!(handed, 10);
        // Ten handed on, at most `window` more taken before the stop.
        assert!(started.load(Ordering::Relaxed) <= 15, "{started:?}");
    }

    #[test]
    fn no_items_and_one_thread_work() {
        let none: Vec<u8> = Vec::new();
        assert!(ordered_map(&none, 4, 4, |&b| b, |_| ControlFlow::Continue(())));
        let mut out = Vec::new();
        assert!(ordered_map(
            &[1, 2, 3],
            1,
            1,
            |&b| b + 1,
            |r| {
                out.push(r);
                ControlFlow::Continue(())
            }
        ));
        assert_eq!(out, [2, 3, 4]);
    }
}
