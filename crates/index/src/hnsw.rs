//! Hierarchical Navigable Small World graph (Malkov & Yashunin, 2016) over
//! vectors owned by [`crate::vector::VectorIndex`].
//!
//! Nodes are the vector slots `0..len`. Similarity is the dot product of
//! unit vectors (higher is better).
//!
//! Layout: neighbour lists live in flat arrays of `AtomicU32` (count first,
//! then ids) so that construction can run on all cores. A writer changes a
//! node's lists only while holding that node's mutex; readers do not lock,
//! they may observe a list mid-update, which HNSW construction tolerates
//! (every id stored is a valid node). After construction the graph is only
//! read, so searches see a stable graph.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};

use parking_lot::Mutex;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::distance::DotFn;
use groundwork_core::rng::SplitMix64;

/// Graph construction and search parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HnswParams {
    /// Neighbours per node on upper layers; layer 0 keeps `2 * m`.
    pub m: usize,
    /// Beam width while inserting (quality of the graph).
    pub ef_construction: usize,
    /// Default beam width while searching (raised to `k` when smaller). 400 because the
    /// 1M-vector benchmark measured recall@10 0.976 at 200, 0.987 at 300 and 0.997 at 400,
    /// with p50 latency still under 3 ms.
    pub ef_search: usize,
    /// Seed for level assignment.
    pub seed: u64,
}

impl Default for HnswParams {
    fn default() -> Self {
        Self {
            m: 16,
            ef_construction: 128,
            ef_search: 400,
            seed: 0x6772_6f75_6e64,
        }
    }
}

/// Highest layer a node may get; with m=16 a level above 8 is already
/// astronomically unlikely.
const MAX_LEVEL: usize = 15;

/// Read-only view of the vector storage (slot-major, `dim` floats each).
#[derive(Clone, Copy)]
pub(crate) struct VectorsRef<'a> {
    pub data: &'a [f32],
    pub dim: usize,
    pub dot: DotFn,
}

impl VectorsRef<'_> {
    #[inline(always)]
    fn get(&self, slot: u32) -> &[f32] {
        let start = slot as usize * self.dim;
        &self.data[start..start + self.dim]
    }

    #[inline(always)]
    fn sim_to(&self, query: &[f32], slot: u32) -> f32 {
        (self.dot)(query, self.get(slot))
    }

    #[inline(always)]
    fn sim(&self, a: u32, b: u32) -> f32 {
        (self.dot)(self.get(a), self.get(b))
    }
}

/// (similarity, node) ordered by similarity, then node id for determinism.
#[derive(Debug, Clone, Copy)]
struct Scored(f32, u32);

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then_with(|| other.1.cmp(&self.1))
    }
}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Scored {}

/// Generation-stamped visited marks: clearing is O(1) per search.
struct Visited {
    marks: Vec<u32>,
    epoch: u32,
}

impl Visited {
    fn new(n: usize) -> Self {
        Self {
            marks: vec![0; n],
            epoch: 0,
        }
    }

    fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.fill(0);
            self.epoch = 1;
        }
    }

    /// Marks `node`; returns true if it was already marked.
    #[inline(always)]
    fn check_and_mark(&mut self, node: u32) -> bool {
        let mark = &mut self.marks[node as usize];
        if *mark == self.epoch {
            true
        } else {
            *mark = self.epoch;
            false
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct EntryPoint {
    node: u32,
    level: usize,
}

/// The HNSW graph. See the module docs for the concurrency model.
pub struct Hnsw {
    params: HnswParams,
    /// Layer-0 capacity per node (`2 * m`).
    m0: usize,
    levels: Vec<u8>,
    /// `len * (m0 + 1)` words: `[count, ids...]` per node.
    layer0: Vec<AtomicU32>,
    /// For nodes with level > 0: `level * (m + 1)` words, layers 1..=level.
    upper: Vec<Option<Box<[AtomicU32]>>>,
    locks: Vec<Mutex<()>>,
    entry: Mutex<Option<EntryPoint>>,
    visited_pool: Mutex<Vec<Visited>>,
    rng: SplitMix64,
}

impl Hnsw {
    pub(crate) fn new(params: HnswParams) -> Self {
        let params = HnswParams {
            m: params.m.clamp(2, 256),
            ef_construction: params.ef_construction.max(1),
            ef_search: params.ef_search.max(1),
            seed: params.seed,
        };
        Self {
            m0: params.m * 2,
            params,
            levels: Vec::new(),
            layer0: Vec::new(),
            upper: Vec::new(),
            locks: Vec::new(),
            entry: Mutex::new(None),
            visited_pool: Mutex::new(Vec::new()),
            rng: SplitMix64::new(params.seed),
        }
    }

    pub fn params(&self) -> HnswParams {
        self.params
    }

    pub(crate) fn set_ef_search(&mut self, ef: usize) {
        self.params.ef_search = ef.max(1);
    }

    /// Number of nodes in the graph (slots `0..len`).
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// Approximate heap footprint in bytes.
    pub fn memory_bytes(&self) -> usize {
        let upper: usize = self
            .upper
            .iter()
            .map(|u| u.as_ref().map_or(0, |b| b.len() * 4))
            .sum();
        self.levels.len()
            + self.layer0.len() * 4
            + upper
            + self.upper.len() * std::mem::size_of::<Option<Box<[AtomicU32]>>>()
            + self.locks.len() * std::mem::size_of::<Mutex<()>>()
    }

    fn random_level(&mut self) -> usize {
        let ml = 1.0 / (self.params.m as f64).ln();
        let level = (-self.rng.next_f64_open().ln() * ml) as usize;
        level.min(MAX_LEVEL)
    }

    /// Allocates nodes `len..new_len` (levels drawn from the seeded RNG).
    fn grow(&mut self, new_len: usize) {
        let stride0 = self.m0 + 1;
        let stride = self.params.m + 1;
        for _ in self.levels.len()..new_len {
            let level = self.random_level();
            self.levels.push(level as u8);
            self.layer0.extend((0..stride0).map(|_| AtomicU32::new(0)));
            self.upper
                .push((level > 0).then(|| (0..level * stride).map(|_| AtomicU32::new(0)).collect()));
            self.locks.push(Mutex::new(()));
        }
    }

    /// Inserts slots `self.len()..vectors_len` into the graph, in parallel.
    pub(crate) fn extend(&mut self, vectors: VectorsRef<'_>) {
        let start = self.len();
        let end = vectors.data.len() / vectors.dim;
        if end <= start {
            return;
        }
        self.grow(end);
        let this: &Hnsw = self;
        let mut next = start;
        // Seed the graph serially so parallel inserts always find an entry.
        while next < end && this.entry.lock().is_none() {
            this.insert(next as u32, vectors);
            next += 1;
        }
        // Small graphs are built serially first: concurrent inserts into a
        // graph of a few hundred nodes would mostly link to each other's
        // half-finished neighbourhoods.
        let serial_end = end.min(next.max(1024));
        for node in next..serial_end {
            this.insert(node as u32, vectors);
        }
        (serial_end..end)
            .into_par_iter()
            .with_min_len(64)
            .for_each(|node| this.insert(node as u32, vectors));
    }

    fn take_visited(&self) -> Visited {
        let n = self.len();
        let mut visited = self.visited_pool.lock().pop().unwrap_or_else(|| Visited::new(n));
        visited.reset(n);
        visited
    }

    fn return_visited(&self, visited: Visited) {
        self.visited_pool.lock().push(visited);
    }

    /// The neighbour list words of `node` on `layer` (count first).
    #[inline(always)]
    fn list(&self, node: u32, layer: usize) -> &[AtomicU32] {
        if layer == 0 {
            let stride = self.m0 + 1;
            let start = node as usize * stride;
            &self.layer0[start..start + stride]
        } else {
            let stride = self.params.m + 1;
            match &self.upper[node as usize] {
                Some(words) if words.len() >= layer * stride => &words[(layer - 1) * stride..layer * stride],
                _ => &[],
            }
        }
    }

    /// Copies the current neighbours of `node` on `layer` into `out`.
    #[inline(always)]
    fn neighbours_into(&self, node: u32, layer: usize, out: &mut Vec<u32>) {
        out.clear();
        let list = self.list(node, layer);
        if list.is_empty() {
            return;
        }
        let count = (list[0].load(AtomicOrdering::Acquire) as usize).min(list.len() - 1);
        out.extend(list[1..=count].iter().map(|id| id.load(AtomicOrdering::Relaxed)));
    }

    /// Overwrites a neighbour list; caller holds the node's lock.
    fn write_list(&self, node: u32, layer: usize, ids: &[u32]) {
        let list = self.list(node, layer);
        let count = ids.len().min(list.len().saturating_sub(1));
        for (slot, &id) in list[1..=count].iter().zip(ids) {
            slot.store(id, AtomicOrdering::Relaxed);
        }
        list[0].store(count as u32, AtomicOrdering::Release);
    }

    fn insert(&self, node: u32, vectors: VectorsRef<'_>) {
        let level = self.levels[node as usize] as usize;
        let query = vectors.get(node);

        // Inserting above the current top layer changes the entry point; such
        // inserts (about log_m(n) of them) hold the entry lock throughout, as
        // hnswlib does, so no thread starts from a half-linked entry point.
        let guard = self.entry.lock();
        let entry = match *guard {
            None => {
                drop(guard);
                *self.entry.lock() = Some(EntryPoint { node, level });
                return;
            }
            Some(entry) => entry,
        };
        let raising_entry = if level > entry.level {
            Some(guard)
        } else {
            drop(guard);
            None
        };

        let mut visited = self.take_visited();
        let mut scratch = Vec::with_capacity(self.m0 + 1);
        let mut current = Scored(vectors.sim_to(query, entry.node), entry.node);
        for layer in (level + 1..=entry.level).rev() {
            current = self.greedy_closest(query, current, layer, vectors, &mut scratch);
        }
        let mut entry_points = vec![current];
        for layer in (0..=level.min(entry.level)).rev() {
            let found = self.search_layer(
                query,
                &entry_points,
                self.params.ef_construction,
                layer,
                vectors,
                &mut visited,
                &mut scratch,
                None,
                usize::MAX,
            );
            let max_links = if layer == 0 { self.m0 } else { self.params.m };
            let selected = select_diverse(&found, self.params.m, vectors);
            {
                let _lock = self.locks[node as usize].lock();
                self.write_list(node, layer, &selected);
            }
            for &neighbour in &selected {
                self.link(neighbour, node, layer, max_links, vectors, &mut scratch);
            }
            entry_points = found;
        }
        self.return_visited(visited);
        if let Some(mut guard) = raising_entry {
            *guard = Some(EntryPoint { node, level });
        }
    }

    /// Adds `new` to `node`'s list on `layer`, re-selecting a diverse subset
    /// when the list is full.
    fn link(
        &self,
        node: u32,
        new: u32,
        layer: usize,
        max_links: usize,
        vectors: VectorsRef<'_>,
        scratch: &mut Vec<u32>,
    ) {
        let _lock = self.locks[node as usize].lock();
        self.neighbours_into(node, layer, scratch);
        if scratch.contains(&new) {
            return;
        }
        if scratch.len() < max_links {
            scratch.push(new);
            self.write_list(node, layer, scratch);
            return;
        }
        let mut candidates: Vec<Scored> = scratch
            .iter()
            .chain(std::iter::once(&new))
            .map(|&other| Scored(vectors.sim(node, other), other))
            .collect();
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        let kept = select_diverse(&candidates, max_links, vectors);
        self.write_list(node, layer, &kept);
    }

    /// Greedy walk on an upper layer towards the node most similar to `query`.
    fn greedy_closest(
        &self,
        query: &[f32],
        mut current: Scored,
        layer: usize,
        vectors: VectorsRef<'_>,
        scratch: &mut Vec<u32>,
    ) -> Scored {
        loop {
            let mut improved = false;
            self.neighbours_into(current.1, layer, scratch);
            for &candidate in scratch.iter() {
                let sim = vectors.sim_to(query, candidate);
                if sim > current.0 {
                    current = Scored(sim, candidate);
                    improved = true;
                }
            }
            if !improved {
                return current;
            }
        }
    }

    /// Beam search on one layer. Returns up to `ef` nodes, best first.
    ///
    /// With `accept`, every node is still traversed (rejected nodes are
    /// bridges to accepted ones) but only accepted nodes enter the result
    /// beam; the search stops once the beam holds `ef` accepted nodes and no
    /// candidate can improve it. Since the beam bounds which candidates are
    /// worth expanding, a beam of `ef` accepted nodes explores about as far
    /// as an unfiltered beam of `ef / selectivity` nodes.
    ///
    /// `max_evaluations` caps the similarity computations: a filter that
    /// admits far fewer nodes near the query than expected would otherwise
    /// walk the whole graph looking for them. The search then returns what
    /// it has (possibly fewer than `ef` nodes).
    #[allow(clippy::too_many_arguments)]
    fn search_layer(
        &self,
        query: &[f32],
        entry_points: &[Scored],
        ef: usize,
        layer: usize,
        vectors: VectorsRef<'_>,
        visited: &mut Visited,
        scratch: &mut Vec<u32>,
        accept: Option<&dyn Fn(u32) -> bool>,
        max_evaluations: usize,
    ) -> Vec<Scored> {
        let accepted = |node: u32| accept.is_none_or(|f| f(node));
        visited.reset(self.len());
        // Max-heap of nodes to expand; min-heap (via Reverse) of results.
        let mut candidates: BinaryHeap<Scored> = BinaryHeap::with_capacity(ef * 2);
        let mut results: BinaryHeap<std::cmp::Reverse<Scored>> = BinaryHeap::with_capacity(ef + 1);
        for &ep in entry_points {
            if visited.check_and_mark(ep.1) {
                continue;
            }
            candidates.push(ep);
            if accepted(ep.1) {
                results.push(std::cmp::Reverse(ep));
                if results.len() > ef {
                    results.pop();
                }
            }
        }
        let mut evaluations = 0usize;
        while let Some(candidate) = candidates.pop() {
            let worst = results.peek().map_or(f32::NEG_INFINITY, |r| r.0.0);
            if results.len() >= ef && candidate.0 < worst {
                break;
            }
            if evaluations >= max_evaluations {
                break;
            }
            self.neighbours_into(candidate.1, layer, scratch);
            for &neighbour in scratch.iter() {
                if visited.check_and_mark(neighbour) {
                    continue;
                }
                evaluations += 1;
                let sim = vectors.sim_to(query, neighbour);
                let worst = results.peek().map_or(f32::NEG_INFINITY, |r| r.0.0);
                if results.len() < ef || sim > worst {
                    candidates.push(Scored(sim, neighbour));
                    if accepted(neighbour) {
                        results.push(std::cmp::Reverse(Scored(sim, neighbour)));
                        if results.len() > ef {
                            results.pop();
                        }
                    }
                }
            }
        }
        let mut out: Vec<Scored> = results.into_iter().map(|r| r.0).collect();
        out.sort_unstable_by(|a, b| b.cmp(a));
        out
    }

    /// Approximate top-`k` (best first) as `(similarity, slot)`, restricted to
    /// nodes for which `accept` returns true. May return fewer than `k` when
    /// accepted nodes are rare or `max_evaluations` similarity computations
    /// did not find enough of them; the caller widens `ef` or falls back to
    /// exact.
    pub(crate) fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        vectors: VectorsRef<'_>,
        accept: Option<&dyn Fn(u32) -> bool>,
        max_evaluations: usize,
    ) -> Vec<(f32, u32)> {
        let Some(entry) = *self.entry.lock() else {
            return Vec::new();
        };
        if k == 0 {
            return Vec::new();
        }
        let mut scratch = Vec::with_capacity(self.m0 + 1);
        let mut current = Scored(vectors.sim_to(query, entry.node), entry.node);
        for layer in (1..=entry.level).rev() {
            current = self.greedy_closest(query, current, layer, vectors, &mut scratch);
        }
        let mut visited = self.take_visited();
        let found = self.search_layer(
            query,
            &[current],
            ef.max(k),
            0,
            vectors,
            &mut visited,
            &mut scratch,
            accept,
            max_evaluations,
        );
        self.return_visited(visited);
        found.into_iter().take(k).map(|s| (s.0, s.1)).collect()
    }

    // ---- raw access for persistence -------------------------------------

    pub(crate) fn entry_point(&self) -> Option<(u32, usize)> {
        self.entry.lock().map(|e| (e.node, e.level))
    }

    pub(crate) fn levels(&self) -> &[u8] {
        &self.levels
    }

    /// Raw words of layer 0 (`len * (m0 + 1)`).
    pub(crate) fn layer0_words(&self) -> impl Iterator<Item = u32> + '_ {
        self.layer0.iter().map(|w| w.load(AtomicOrdering::Relaxed))
    }

    /// Raw words of the upper layers of `node` (`level * (m + 1)`).
    pub(crate) fn upper_words(&self, node: usize) -> impl Iterator<Item = u32> + '_ {
        self.upper[node]
            .iter()
            .flat_map(|words| words.iter().map(|w| w.load(AtomicOrdering::Relaxed)))
    }

    /// Rebuilds a graph from persisted parts. Validates every id and count so
    /// a corrupt file cannot make later searches index out of bounds.
    pub(crate) fn from_parts(
        params: HnswParams,
        levels: Vec<u8>,
        layer0: Vec<u32>,
        upper: Vec<Option<Vec<u32>>>,
        entry: Option<(u32, usize)>,
    ) -> Result<Self, String> {
        let mut graph = Hnsw::new(params);
        if graph.params.m != params.m {
            return Err(format!("invalid m {}", params.m));
        }
        let n = levels.len();
        let stride0 = graph.m0 + 1;
        let stride = graph.params.m + 1;
        if layer0.len() != n * stride0 || upper.len() != n {
            return Err("graph arrays do not match node count".into());
        }
        let check_list = |words: &[u32], stride: usize| -> Result<(), String> {
            for list in words.chunks_exact(stride) {
                let count = list[0] as usize;
                if count >= stride {
                    return Err(format!("neighbour count {count} exceeds capacity"));
                }
                if list[1..=count].iter().any(|&id| id as usize >= n) {
                    return Err("neighbour id out of range".into());
                }
            }
            Ok(())
        };
        check_list(&layer0, stride0)?;
        for (node, words) in upper.iter().enumerate() {
            let level = levels[node] as usize;
            if level > MAX_LEVEL {
                return Err(format!("level {level} too high"));
            }
            let expected = level * stride;
            match words {
                None if level == 0 => {}
                Some(words) if level > 0 && words.len() == expected => check_list(words, stride)?,
                _ => return Err("upper-layer lists do not match level".into()),
            }
        }
        match entry {
            None if n == 0 => {}
            Some((node, level)) if (node as usize) < n && level == levels[node as usize] as usize => {}
            _ => return Err("invalid entry point".into()),
        }
        graph.levels = levels;
        graph.layer0 = layer0.into_iter().map(AtomicU32::new).collect();
        graph.upper = upper
            .into_iter()
            .map(|u| u.map(|w| w.into_iter().map(AtomicU32::new).collect()))
            .collect();
        graph.locks = (0..n).map(|_| Mutex::new(())).collect();
        *graph.entry.lock() = entry.map(|(node, level)| EntryPoint { node, level });
        // Continue the level sequence deterministically after a reload.
        graph.rng = SplitMix64::new(params.seed ^ (n as u64).wrapping_mul(0x9E37_79B9));
        Ok(graph)
    }
}

/// HNSW neighbour-selection heuristic: walk candidates best first and keep
/// one only if it is more similar to the base than to every neighbour kept
/// so far. This keeps links pointing in different directions, which is what
/// lets greedy search escape local clusters.
fn select_diverse(sorted_candidates: &[Scored], max: usize, vectors: VectorsRef<'_>) -> Vec<u32> {
    let mut kept: Vec<u32> = Vec::with_capacity(max);
    for candidate in sorted_candidates {
        if kept.len() >= max {
            break;
        }
        let diverse = kept
            .iter()
            .all(|&other| vectors.sim(candidate.1, other) < candidate.0);
        if diverse {
            kept.push(candidate.1);
        }
    }
    kept
}
