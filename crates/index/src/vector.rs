//! In-memory cosine-similarity index over chunk embeddings.
//!
//! Vectors are L2-normalised on insert and stored contiguously (slot-major),
//! so cosine similarity is one dot product over a cache-friendly array.
//!
//! Retrieval strategy:
//! * below [`VectorConfig::exact_threshold`] live vectors, or while no graph
//!   has been built, an exact scan (parallel above
//!   [`VectorConfig::parallel_scan_min`]); exact is the ground truth;
//! * above it, the HNSW graph built by [`VectorIndex::build_ann`]. Vectors
//!   inserted after the last build are scanned exactly and merged in, so
//!   results never miss fresh data.
//!
//! Filters: with a graph, a planner sizes the allowed set (from a sample of
//! the allow-list when it is long) and picks the cheaper of two paths. An
//! exact scan of the allowed slots through the doc-id → slots map — through
//! the 8-bit codes of [`crate::quantized`] once they are many enough for
//! memory traffic to dominate — always answers up to
//! [`VectorConfig::filter_exact_max`] chunks. Above it, the graph is walked
//! through every node while only allowed ones enter a beam of
//! `ef × selectivity` (at least `k`), which explores about as far as the
//! unfiltered search and so costs about the same, as long as `k /
//! selectivity` stays within twice `ef`; below that the scan answers. A
//! graph search that comes up short, or runs out of its evaluation budget
//! before it does, falls back to the exact scan, so the top-k is always
//! full.
//!
//! Updates append a new slot and tombstone the old one; `build_ann`
//! compacts and rebuilds once tombstones exceed
//! [`VectorConfig::rebuild_tombstone_fraction`].
//!
//! One unit: one data structure, [`VectorIndex`], with its operations (insert, the search
//! strategies, the file format), which all work on its slot layout.

use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::allowed::IdMap;
use crate::distance::{DotFn, kernel, normalize};
use crate::hnsw::{Hnsw, HnswParams, VectorsRef};
use crate::persist::{open_checked, write_atomically};
use crate::quantized::Codes;
use crate::topk::TopK;
use crate::{AllowedDocs, IndexError, Result, ScoredChunk};

const MAGIC: &[u8; 8] = b"GWVECIDX";
const FORMAT_VERSION: u32 = 1;
const FLAG_GRAPH: u32 = 1;
/// Embedding models produce at most a few thousand dimensions; anything
/// larger in a file header is corruption.
const MAX_DIM: usize = 65_536;
/// Slots are addressed by u32 in the graph.
const MAX_SLOTS: usize = u32::MAX as usize - 1;
/// Scan block size for the parallel exact scan.
const SCAN_BLOCK: usize = 4096;
/// Allow-lists of at least this many chunks are scanned through the 8-bit codes first (see
/// [`crate::quantized`]); below it the f32 scan is as fast.
const QUANTIZED_SCAN_MIN: usize = 2048;
/// Allowed slots are sorted before a scan when they are at least 1/this of all slots.
const SORT_SLOTS_DENSITY: usize = 16;
/// Allow-lists of more documents than this are sized from a sample of this many when a search
/// is planned: looking every document up costs a cache miss or two each (listing the slots of
/// 5,000 documents took 0.4 ms at 1M vectors), which at 10% or 50% readable would cost more
/// than the graph search it decides on.
const PLAN_SAMPLE: usize = 256;
/// Planner cost of a graph search per unit of the unfiltered beam it explores, in allowed
/// chunks an exact scan could read in the same time. Measured at 1M vectors (384-d, m = 16,
/// two cores): the unfiltered search at ef 400 took 0.9 ms, the scan about 75 ns per allowed
/// chunk (8-bit codes), so one beam unit costs about 30 chunks.
const GRAPH_COST_PER_BEAM: f64 = 30.0;
/// The planner walks the graph for a filter only while the filtered search explores at most
/// this many times as far as the unfiltered one (`k / selectivity ≤ 2 ef`). Measured at 1M
/// vectors, ef 400, k 10: recall@10 0.99 at 2% allowed (1.25 times as far), 0.90 at 1% (2.5
/// times), 0.73 at 0.5%, and widening the beam further did not bring it back.
const GRAPH_MAX_BEAM_GROWTH: f64 = 2.0;
/// A filtered graph search gives up after this many similarity computations per unit of the
/// beam it was expected to explore, and the exact scan answers instead: it only happens when
/// the allowed chunks near the query are far rarer than across the index. (A search takes
/// about 4 per unit: 1,700 at ef 400 and 1M vectors, unfiltered or filtered alike.)
const GRAPH_BUDGET_PER_BEAM: usize = 32;

/// Tuning knobs; the defaults suit 384-d sentence embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VectorConfig {
    /// Below this many live vectors search always scans exactly.
    pub exact_threshold: usize,
    /// Exact scans over more vectors than this run on the rayon pool.
    pub parallel_scan_min: usize,
    /// Filtered searches scan exactly when at most this many chunks are
    /// allowed...
    pub filter_exact_max: usize,
    /// ...or when the allowed chunks are at most this fraction of the index.
    /// Above both, a cost estimate chooses between the exact scan and the
    /// filtered graph search (see [`VectorIndex::search_with_ef`]).
    pub filter_exact_fraction: f32,
    /// `build_ann` rebuilds from scratch above this tombstone fraction.
    pub rebuild_tombstone_fraction: f32,
    pub hnsw: HnswParams,
}

impl Default for VectorConfig {
    fn default() -> Self {
        Self {
            exact_threshold: 50_000,
            // Scattered slots (an allow-list) miss the TLB on nearly every vector, so even a
            // few thousand are worth splitting across cores: at 1M vectors a 1% allow-list
            // took 8.1 ms on one core.
            parallel_scan_min: 4_096,
            filter_exact_max: 20_000,
            // No fixed fraction: a filtered graph search keeps a beam of about
            // ef × selectivity allowed nodes, which explores as far as the unfiltered search,
            // so it costs about the same at any selectivity down to k / ef; below that the
            // cost estimate turns to the exact scan. At 1M vectors and 10% allowed the exact
            // scan of 100k slots took 18 ms on two cores, the graph about as long as the
            // unfiltered search (0.9 ms).
            filter_exact_fraction: 0.0,
            rebuild_tombstone_fraction: 0.2,
            hnsw: HnswParams::default(),
        }
    }
}

/// See the module documentation.
pub struct VectorIndex {
    dim: usize,
    config: VectorConfig,
    dot: DotFn,
    /// `slots * dim` normalised components.
    data: Vec<f32>,
    /// 8-bit codes of `data`, slot for slot.
    codes: Codes,
    chunk_ids: Vec<u64>,
    doc_ids: Vec<u64>,
    live: Vec<bool>,
    slot_by_chunk: IdMap<u32>,
    slots_by_doc: IdMap<Vec<u32>>,
    live_count: usize,
    /// Covers slots `0..graph.len()`; later slots are "pending".
    graph: Option<Hnsw>,
}

impl std::fmt::Debug for VectorIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorIndex")
            .field("dim", &self.dim)
            .field("live", &self.live_count)
            .field("slots", &self.chunk_ids.len())
            .field("graph_nodes", &self.graph.as_ref().map(Hnsw::len))
            .finish()
    }
}

impl VectorIndex {
    pub fn new(dim: usize) -> Self {
        Self::with_config(dim, VectorConfig::default())
    }

    pub fn with_config(dim: usize, config: VectorConfig) -> Self {
        Self {
            dim: dim.max(1),
            config,
            dot: kernel(),
            data: Vec::new(),
            codes: Codes::new(dim.max(1)),
            chunk_ids: Vec::new(),
            doc_ids: Vec::new(),
            live: Vec::new(),
            slot_by_chunk: IdMap::default(),
            slots_by_doc: IdMap::default(),
            live_count: 0,
            graph: None,
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn config(&self) -> &VectorConfig {
        &self.config
    }

    /// Changes the default HNSW beam width used by searches.
    pub fn set_ef_search(&mut self, ef: usize) {
        self.config.hnsw.ef_search = ef.max(1);
        if let Some(graph) = &mut self.graph {
            graph.set_ef_search(ef);
        }
    }

    /// Number of live (searchable) chunks.
    pub fn len(&self) -> usize {
        self.live_count
    }

    pub fn is_empty(&self) -> bool {
        self.live_count == 0
    }

    pub fn contains_chunk(&self, chunk_id: u64) -> bool {
        self.slot_by_chunk.contains_key(&chunk_id)
    }

    /// True when a graph exists (searches above the exact threshold use it).
    pub fn has_ann(&self) -> bool {
        self.graph.is_some()
    }

    /// Approximate heap footprint in bytes (vectors, ids, maps, graph).
    pub fn memory_bytes(&self) -> usize {
        let slots = self.chunk_ids.len();
        self.data.capacity() * 4
            + slots * (8 + 8 + 1)
            + self.slot_by_chunk.capacity() * 16
            + self.slots_by_doc.capacity() * 40
            + self.live_count * 4
            + self.codes.memory_bytes()
            + self.graph.as_ref().map_or(0, Hnsw::memory_bytes)
    }

    /// Adds or replaces the embedding of `chunk_id`. The vector is
    /// normalised; it must have the index dimension and finite components.
    pub fn insert(&mut self, chunk_id: u64, doc_id: u64, vector: &[f32]) -> Result<()> {
        if vector.len() != self.dim {
            return Err(IndexError::DimensionMismatch {
                expected: self.dim,
                got: vector.len(),
            });
        }
        if vector.iter().any(|x| !x.is_finite()) {
            return Err(IndexError::InvalidVector(format!(
                "chunk {chunk_id} has non-finite components"
            )));
        }
        if self.chunk_ids.len() >= MAX_SLOTS {
            return Err(IndexError::CapacityExceeded(MAX_SLOTS));
        }
        if let Some(&old) = self.slot_by_chunk.get(&chunk_id) {
            self.tombstone(old);
        }
        let slot = self.chunk_ids.len() as u32;
        let start = self.data.len();
        self.data.extend_from_slice(vector);
        normalize(&mut self.data[start..]);
        self.codes.push(&self.data[start..]);
        self.chunk_ids.push(chunk_id);
        self.doc_ids.push(doc_id);
        self.live.push(true);
        self.slot_by_chunk.insert(chunk_id, slot);
        self.slots_by_doc.entry(doc_id).or_default().push(slot);
        self.live_count += 1;
        Ok(())
    }

    /// Removes every chunk of `doc_id`; returns how many were removed.
    pub fn remove_doc(&mut self, doc_id: u64) -> usize {
        let Some(slots) = self.slots_by_doc.remove(&doc_id) else {
            return 0;
        };
        for &slot in &slots {
            self.live[slot as usize] = false;
            self.slot_by_chunk.remove(&self.chunk_ids[slot as usize]);
        }
        self.live_count -= slots.len();
        slots.len()
    }

    /// Removes everything (keeps dimension and configuration).
    pub fn clear(&mut self) {
        *self = Self::with_config(self.dim, self.config);
    }

    fn tombstone(&mut self, slot: u32) {
        let s = slot as usize;
        self.live[s] = false;
        self.slot_by_chunk.remove(&self.chunk_ids[s]);
        if let Some(slots) = self.slots_by_doc.get_mut(&self.doc_ids[s]) {
            slots.retain(|&x| x != slot);
            if slots.is_empty() {
                self.slots_by_doc.remove(&self.doc_ids[s]);
            }
        }
        self.live_count -= 1;
    }

    fn tombstones(&self) -> usize {
        self.chunk_ids.len() - self.live_count
    }

    fn vectors(&self) -> VectorsRef<'_> {
        VectorsRef {
            data: &self.data,
            dim: self.dim,
            dot: self.dot,
        }
    }

    /// Builds or updates the HNSW graph: compacts and rebuilds from scratch
    /// when tombstones exceed the configured fraction, otherwise inserts
    /// vectors added since the last build. Cheap when nothing changed. Uses
    /// the rayon pool.
    pub fn build_ann(&mut self) {
        let slots = self.chunk_ids.len();
        let too_many_tombstones =
            self.tombstones() as f64 > self.config.rebuild_tombstone_fraction as f64 * slots as f64;
        if too_many_tombstones {
            self.compact();
        }
        let mut graph = self.graph.take().unwrap_or_else(|| Hnsw::new(self.config.hnsw));
        graph.extend(self.vectors());
        self.graph = Some(graph);
    }

    /// Drops tombstoned slots (and the graph, whose node ids are slots).
    fn compact(&mut self) {
        let dim = self.dim;
        let mut write = 0usize;
        for read in 0..self.chunk_ids.len() {
            if !self.live[read] {
                continue;
            }
            if read != write {
                self.data.copy_within(read * dim..(read + 1) * dim, write * dim);
                self.chunk_ids[write] = self.chunk_ids[read];
                self.doc_ids[write] = self.doc_ids[read];
            }
            write += 1;
        }
        self.data.truncate(write * dim);
        self.codes.rebuild(&self.data);
        self.chunk_ids.truncate(write);
        self.doc_ids.truncate(write);
        self.live = vec![true; write];
        self.rebuild_maps();
        self.graph = None;
    }

    fn rebuild_maps(&mut self) {
        self.slot_by_chunk.clear();
        self.slots_by_doc.clear();
        self.live_count = 0;
        for slot in 0..self.chunk_ids.len() {
            if self.live[slot] {
                self.slot_by_chunk.insert(self.chunk_ids[slot], slot as u32);
                self.slots_by_doc
                    .entry(self.doc_ids[slot])
                    .or_default()
                    .push(slot as u32);
                self.live_count += 1;
            }
        }
    }

    /// Top-`k` chunks by cosine similarity, best first (ties by chunk id).
    /// With `allowed`, only chunks of allowed documents are ranked, and the
    /// result is full whenever at least `k` such chunks exist. A query of the
    /// wrong dimension or with non-finite components returns no results.
    pub fn search(&self, query: &[f32], k: usize, allowed: Option<&AllowedDocs>) -> Vec<ScoredChunk> {
        self.search_with_ef(query, k, allowed, self.config.hnsw.ef_search)
    }

    /// [`search`](Self::search) with an explicit HNSW beam width.
    pub fn search_with_ef(
        &self,
        query: &[f32],
        k: usize,
        allowed: Option<&AllowedDocs>,
        ef: usize,
    ) -> Vec<ScoredChunk> {
        let Some(query) = self.prepare_query(query) else {
            return Vec::new();
        };
        if k == 0 || self.live_count == 0 {
            return Vec::new();
        }
        let use_graph = self.graph.is_some() && self.live_count >= self.config.exact_threshold;
        let top = match allowed {
            None if use_graph => {
                self.ann_search(&query, k, ef, None, self.live_count, k.min(self.live_count))
            }
            None => self.exact_all(&query, k),
            Some(_) if !use_graph => self.exact_allowed(&query, k, allowed),
            Some(allowed) => {
                let (eligible, counted) = self.estimate_allowed_chunks(allowed);
                if counted && eligible == 0 {
                    TopK::new(k)
                } else if self.plan_graph(eligible, k, ef) {
                    let want = if counted { k.min(eligible) } else { k };
                    self.ann_search(&query, k, ef, Some(allowed), eligible, want)
                } else {
                    self.exact_allowed(&query, k, Some(allowed))
                }
            }
        };
        self.to_results(top)
    }

    /// Whether a filtered search with about `eligible` allowed chunks should walk the graph
    /// rather than scan those chunks exactly.
    ///
    /// A filtered graph search keeps a beam of `ef × selectivity` allowed nodes (at least `k`),
    /// and since only candidates better than the beam's worst are expanded it explores about as
    /// far as an unfiltered beam of `max(ef, k / selectivity)` nodes: the same cost as the
    /// unfiltered search down to a selectivity of `k / ef`, growing as `1 / selectivity` below.
    /// Its recall holds while that is at most [`GRAPH_MAX_BEAM_GROWTH`] times `ef`; further out
    /// the allowed top-k lies where the graph's links no longer lead straight to the best nodes.
    /// The scan reads each allowed chunk once. The cheaper one wins, unless the configured
    /// thresholds ask for the exact scan.
    fn plan_graph(&self, eligible: usize, k: usize, ef: usize) -> bool {
        let live = self.live_count.max(1);
        if eligible <= self.config.filter_exact_max
            || (eligible as f64) <= self.config.filter_exact_fraction as f64 * live as f64
        {
            return false;
        }
        let beam = Self::filtered_beam(eligible, live, k, ef).1;
        beam <= GRAPH_MAX_BEAM_GROWTH * ef.max(k) as f64
            && GRAPH_COST_PER_BEAM * beam.min(live as f64) < eligible as f64
    }

    /// The beam of allowed nodes a filtered graph search keeps, and the unfiltered beam width
    /// it is expected to explore as far as.
    fn filtered_beam(eligible: usize, live: usize, k: usize, ef: usize) -> (usize, f64) {
        let selectivity = (eligible as f64 / live.max(1) as f64).clamp(f64::MIN_POSITIVE, 1.0);
        let ef = ef.max(k);
        let kept = ((ef as f64 * selectivity).ceil() as usize).clamp(k.max(1), ef);
        (kept, kept as f64 / selectivity)
    }

    /// The exact top-`k` of the allowed chunks (of every live chunk without a filter).
    fn exact_allowed(&self, query: &[f32], k: usize, allowed: Option<&AllowedDocs>) -> TopK<u32> {
        match allowed {
            None => self.exact_all(query, k),
            Some(allowed) => self.exact_slots(query, k, &self.allowed_slots(allowed)),
        }
    }

    /// Exact top-`k` regardless of any graph: the ground truth.
    pub fn search_exact(&self, query: &[f32], k: usize, allowed: Option<&AllowedDocs>) -> Vec<ScoredChunk> {
        let Some(query) = self.prepare_query(query) else {
            return Vec::new();
        };
        let top = self.exact_allowed(&query, k, allowed);
        self.to_results(top)
    }

    fn prepare_query(&self, query: &[f32]) -> Option<Vec<f32>> {
        if query.len() != self.dim || query.iter().any(|x| !x.is_finite()) {
            return None;
        }
        let mut q = query.to_vec();
        normalize(&mut q);
        Some(q)
    }

    fn to_results(&self, top: TopK<u32>) -> Vec<ScoredChunk> {
        top.into_sorted_vec()
            .into_iter()
            .map(|c| ScoredChunk {
                chunk_id: c.key,
                doc_id: self.doc_ids[c.item as usize],
                score: c.score,
            })
            .collect()
    }

    /// The number of live chunks `allowed` admits, and whether it was counted (`true`) or
    /// extrapolated from a sample of [`PLAN_SAMPLE`] documents (`false`), which is all planning
    /// needs; the exact paths list the slots themselves.
    fn estimate_allowed_chunks(&self, allowed: &AllowedDocs) -> (usize, bool) {
        // Iterate whichever side is smaller. Hash-set order is unrelated to a document's
        // chunk count, so the first documents in it are a fair sample.
        if allowed.len() <= self.slots_by_doc.len() {
            let sampled: usize = allowed
                .iter()
                .take(PLAN_SAMPLE)
                .filter_map(|doc| self.slots_by_doc.get(&doc))
                .map(Vec::len)
                .sum();
            if allowed.len() <= PLAN_SAMPLE {
                (sampled, true)
            } else {
                let estimate = sampled as f64 * allowed.len() as f64 / PLAN_SAMPLE as f64;
                (estimate.round() as usize, false)
            }
        } else {
            let (mut admitted, mut seen) = (0usize, 0usize);
            for (doc, slots) in self.slots_by_doc.iter().take(PLAN_SAMPLE) {
                seen += slots.len();
                if allowed.contains(*doc) {
                    admitted += slots.len();
                }
            }
            if self.slots_by_doc.len() <= PLAN_SAMPLE {
                (admitted, true)
            } else {
                let estimate = admitted as f64 * self.live_count as f64 / seen.max(1) as f64;
                (estimate.round() as usize, false)
            }
        }
    }

    fn allowed_slots(&self, allowed: &AllowedDocs) -> Vec<u32> {
        let mut slots: Vec<u32> = if allowed.len() <= self.slots_by_doc.len() {
            // Two passes: the map lookups (a cache miss each) do not depend on one another,
            // nor do the reads of the lists they find, so the CPU overlaps each pass's misses;
            // one pass would chain a list read behind every lookup.
            let lists: Vec<&[u32]> = allowed
                .iter()
                .filter_map(|doc| self.slots_by_doc.get(&doc).map(Vec::as_slice))
                .collect();
            let mut slots = Vec::with_capacity(lists.iter().map(|list| list.len()).sum());
            for list in lists {
                slots.extend_from_slice(list);
            }
            slots
        } else {
            self.slots_by_doc
                .iter()
                .filter(|(doc, _)| allowed.contains(**doc))
                .flat_map(|(_, slots)| slots.iter().copied())
                .collect()
        };
        // Sequential memory access for the scan, where the slots are dense enough for it to
        // pay: at 1M vectors sorting 20,000 slots (2%) took 0.2 ms and the scan gained nothing,
        // while a 30% scan took 23 ms sorted and 29 ms in hash order.
        if slots.len().saturating_mul(SORT_SLOTS_DENSITY) >= self.chunk_ids.len() {
            slots.sort_unstable();
        }
        slots
    }

    #[inline]
    fn score_slot(&self, query: &[f32], slot: usize) -> f32 {
        (self.dot)(query, &self.data[slot * self.dim..(slot + 1) * self.dim])
    }

    fn scan_range(&self, query: &[f32], k: usize, range: std::ops::Range<usize>) -> TopK<u32> {
        let mut top = TopK::new(k);
        for slot in range {
            if self.live[slot] {
                let score = self.score_slot(query, slot);
                top.push(score, self.chunk_ids[slot], slot as u32);
            }
        }
        top
    }

    fn exact_all(&self, query: &[f32], k: usize) -> TopK<u32> {
        let slots = self.chunk_ids.len();
        if slots < self.config.parallel_scan_min {
            return self.scan_range(query, k, 0..slots);
        }
        (0..slots.div_ceil(SCAN_BLOCK))
            .into_par_iter()
            .map(|block| {
                let start = block * SCAN_BLOCK;
                self.scan_range(query, k, start..(start + SCAN_BLOCK).min(slots))
            })
            .reduce(
                || TopK::new(k),
                |mut a, b| {
                    a.merge(b);
                    a
                },
            )
    }

    fn scan_slots(&self, query: &[f32], k: usize, slots: &[u32]) -> TopK<u32> {
        let mut top = TopK::new(k);
        for &slot in slots {
            let score = self.score_slot(query, slot as usize);
            top.push(score, self.chunk_ids[slot as usize], slot);
        }
        top
    }

    fn exact_slots(&self, query: &[f32], k: usize, slots: &[u32]) -> TopK<u32> {
        if slots.len() >= QUANTIZED_SCAN_MIN {
            return self.exact_slots_quantized(query, k, slots);
        }
        if slots.len() < self.config.parallel_scan_min {
            return self.scan_slots(query, k, slots);
        }
        slots
            .par_chunks(SCAN_BLOCK)
            .map(|block| self.scan_slots(query, k, block))
            .reduce(
                || TopK::new(k),
                |mut a, b| {
                    a.merge(b);
                    a
                },
            )
    }

    /// The exact top-`k` of `slots`, reading 8-bit codes for all of them and f32 vectors only
    /// for the few that can still make the top-`k` (see [`crate::quantized`]).
    fn exact_slots_quantized(&self, query: &[f32], k: usize, slots: &[u32]) -> TopK<u32> {
        let code = self.codes.query(query);
        let shortlist = k.saturating_mul(4).max(32);
        // Pass 1: approximate scores and upper bounds; the best approximations are shortlisted.
        let scan = |block: &[u32]| {
            let mut top = TopK::new(shortlist);
            let mut uppers = Vec::with_capacity(block.len());
            for &slot in block {
                let (approx, upper) = self.codes.score(&code, slot as usize);
                top.push(approx, self.chunk_ids[slot as usize], slot);
                uppers.push(upper);
            }
            (top, uppers)
        };
        let (approximate, uppers) = if slots.len() < self.config.parallel_scan_min {
            scan(slots)
        } else {
            let parts: Vec<(TopK<u32>, Vec<f32>)> = slots.par_chunks(SCAN_BLOCK).map(scan).collect();
            let mut top = TopK::new(shortlist);
            let mut uppers = Vec::with_capacity(slots.len());
            for (part, part_uppers) in parts {
                top.merge(part);
                uppers.extend(part_uppers);
            }
            (top, uppers)
        };
        // Exact scores of the shortlist give the k-th best exact score…
        let mut shortlisted: Vec<u32> = approximate
            .into_sorted_vec()
            .into_iter()
            .map(|c| c.item)
            .collect();
        let mut exact = TopK::new(k);
        for &slot in &shortlisted {
            exact.push(
                self.score_slot(query, slot as usize),
                self.chunk_ids[slot as usize],
                slot,
            );
        }
        // …and pass 2 re-scores every other slot whose bound reaches it (ties included).
        let threshold = if exact.len() >= k {
            exact.threshold().unwrap_or(f32::NEG_INFINITY)
        } else {
            f32::NEG_INFINITY
        };
        shortlisted.sort_unstable();
        for (&slot, &upper) in slots.iter().zip(&uppers) {
            if upper >= threshold && shortlisted.binary_search(&slot).is_err() {
                exact.push(
                    self.score_slot(query, slot as usize),
                    self.chunk_ids[slot as usize],
                    slot,
                );
            }
        }
        exact
    }

    /// Graph search plus an exact scan of slots added after the last build.
    /// `eligible` is (an estimate of) the number of live chunks passing the
    /// filter and `want` the number of hits that makes the top-k full; if the
    /// graph cannot deliver them, the exact scan answers instead, so the top-k
    /// is always full.
    ///
    /// Unfiltered, the beam is `ef` and widened on a shortfall (tombstones).
    /// Filtered, the beam holds `ef × selectivity` allowed nodes (at least
    /// `k`; see [`Self::plan_graph`]), and a shortfall goes straight to the
    /// exact scan, as does a search that runs out of its evaluation budget.
    fn ann_search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        allowed: Option<&AllowedDocs>,
        eligible: usize,
        want: usize,
    ) -> TopK<u32> {
        let Some(graph) = &self.graph else {
            return self.exact_allowed(query, k, allowed);
        };
        let accept = |slot: u32| {
            let s = slot as usize;
            self.live[s] && allowed.is_none_or(|a| a.contains(self.doc_ids[s]))
        };
        let mut ef = ef.max(k);
        let mut budget = usize::MAX;
        if allowed.is_some() {
            let (kept, beam) = Self::filtered_beam(eligible, self.live_count, k, ef);
            ef = kept;
            budget = (beam.min(graph.len() as f64) as usize)
                .saturating_mul(GRAPH_BUDGET_PER_BEAM)
                .max(1);
        }
        let pending_start = graph.len();
        let pending = pending_start..self.chunk_ids.len();
        loop {
            let hits = graph.search(query, k, ef, self.vectors(), Some(&accept), budget);
            let mut top = TopK::new(k);
            for (score, slot) in hits {
                top.push(score, self.chunk_ids[slot as usize], slot);
            }
            for slot in pending.clone() {
                if accept(slot as u32) {
                    let score = self.score_slot(query, slot);
                    top.push(score, self.chunk_ids[slot], slot as u32);
                }
            }
            if top.len() >= want {
                return top;
            }
            if allowed.is_some() || ef >= graph.len() {
                break;
            }
            ef = ef.saturating_mul(4);
        }
        self.exact_allowed(query, k, allowed)
    }

    // ---- persistence ------------------------------------------------------

    /// Saves vectors, ids, tombstones and the graph (if built) together with
    /// the store `watermark` they reflect. Atomic: write temp, fsync, rename.
    pub fn save(&self, path: &Path, watermark: u64) -> Result<()> {
        write_atomically(path, |w| {
            w.bytes(MAGIC)?;
            w.u32(FORMAT_VERSION)?;
            w.u32(if self.graph.is_some() { FLAG_GRAPH } else { 0 })?;
            w.u64(watermark)?;
            w.u32(self.dim as u32)?;
            w.u64(self.chunk_ids.len() as u64)?;
            w.u64s(self.chunk_ids.iter().copied())?;
            w.u64s(self.doc_ids.iter().copied())?;
            w.bytes(&self.live.iter().map(|&l| l as u8).collect::<Vec<u8>>())?;
            w.f32s(&self.data)?;
            if let Some(graph) = &self.graph {
                let params = graph.params();
                w.u32(params.m as u32)?;
                w.u32(params.ef_construction as u32)?;
                w.u64(params.seed)?;
                w.u64(graph.len() as u64)?;
                match graph.entry_point() {
                    Some((node, level)) => {
                        w.u32(node)?;
                        w.u32(level as u32)?;
                    }
                    None => {
                        w.u32(u32::MAX)?;
                        w.u32(0)?;
                    }
                }
                w.bytes(graph.levels())?;
                w.u32s(graph.layer0_words())?;
                for node in 0..graph.len() {
                    w.u32s(graph.upper_words(node))?;
                }
            }
            Ok(())
        })
    }

    /// Loads an index written by [`save`](Self::save) with the default
    /// configuration; returns it with the stored watermark.
    pub fn load(path: &Path) -> Result<(Self, u64)> {
        Self::load_with_config(path, VectorConfig::default())
    }

    /// Like [`load`](Self::load); graph parameters come from the file, the
    /// other knobs (and `ef_search`) from `config`.
    pub fn load_with_config(path: &Path, config: VectorConfig) -> Result<(Self, u64)> {
        let corrupt = |msg: &str| IndexError::Corrupt(msg.to_owned());
        let mut r = open_checked(path)?;
        let mut magic = [0u8; 8];
        r.bytes(&mut magic)?;
        if &magic != MAGIC {
            return Err(corrupt("not a groundwork vector index (bad magic)"));
        }
        let version = r.u32()?;
        if version != FORMAT_VERSION {
            return Err(IndexError::Corrupt(format!(
                "unsupported vector index format version {version}"
            )));
        }
        let flags = r.u32()?;
        if flags & !FLAG_GRAPH != 0 {
            return Err(corrupt("unknown flags"));
        }
        let watermark = r.u64()?;
        let dim = r.u32()? as usize;
        if dim == 0 || dim > MAX_DIM {
            return Err(IndexError::Corrupt(format!("invalid dimension {dim}")));
        }
        let slots = r.u64()?;
        // Each slot needs 17 bytes of ids/flags plus 4*dim of vector: check
        // against the file length before allocating anything.
        let per_slot = 17 + 4 * dim as u64;
        if slots > MAX_SLOTS as u64 || slots.saturating_mul(per_slot) > r.remaining() {
            return Err(corrupt("slot count exceeds file size"));
        }
        let slots = slots as usize;
        let chunk_ids = r.u64s(slots)?;
        let doc_ids = r.u64s(slots)?;
        let live_bytes = r.u8s(slots)?;
        if live_bytes.iter().any(|&b| b > 1) {
            return Err(corrupt("invalid tombstone flag"));
        }
        let data = r.f32s(slots * dim)?;
        if data.iter().any(|x| !x.is_finite()) {
            return Err(corrupt("non-finite vector component"));
        }
        let mut index = VectorIndex::with_config(dim, config);
        index.data = data;
        // Derived from the vectors, so not stored: the file format stays as it was.
        index.codes.rebuild(&index.data);
        index.chunk_ids = chunk_ids;
        index.doc_ids = doc_ids;
        index.live = live_bytes.into_iter().map(|b| b == 1).collect();
        index.rebuild_maps();
        if index.slot_by_chunk.len() != index.live_count {
            return Err(corrupt("duplicate live chunk id"));
        }

        if flags & FLAG_GRAPH != 0 {
            let m = r.u32()? as usize;
            let ef_construction = r.u32()? as usize;
            let seed = r.u64()?;
            let nodes = r.u64()?;
            let entry_node = r.u32()?;
            let entry_level = r.u32()? as usize;
            if !(2..=256).contains(&m) || nodes > slots as u64 {
                return Err(corrupt("invalid graph header"));
            }
            let nodes = nodes as usize;
            let stride0 = 2 * m + 1;
            let levels = r.u8s(nodes)?;
            let upper_words: u64 = levels.iter().map(|&l| l as u64 * (m as u64 + 1)).sum();
            let needed = (nodes as u64 * stride0 as u64 + upper_words) * 4;
            r.ensure(needed)?;
            let layer0 = r.u32s(nodes * stride0)?;
            let mut upper = Vec::with_capacity(nodes);
            for &level in &levels {
                upper.push(if level == 0 {
                    None
                } else {
                    Some(r.u32s(level as usize * (m + 1))?)
                });
            }
            let params = HnswParams {
                m,
                ef_construction,
                ef_search: config.hnsw.ef_search,
                seed,
            };
            let entry = (entry_node != u32::MAX).then_some((entry_node, entry_level));
            let graph = Hnsw::from_parts(params, levels, layer0, upper, entry)
                .map_err(|e| IndexError::Corrupt(format!("graph: {e}")))?;
            index.config.hnsw = params;
            index.graph = Some(graph);
        }
        r.finish()?;
        Ok((index, watermark))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::bench::clustered_vectors;

    const DIM: usize = 32;
    const K: usize = 10;

    /// 8,000 clustered vectors, four chunks per document, with a graph.
    fn indexed() -> (VectorIndex, Vec<f32>) {
        let (data, queries) = clustered_vectors(8_000, 40, DIM, 5);
        let config = VectorConfig {
            exact_threshold: 1_000,
            filter_exact_max: 0,
            hnsw: HnswParams {
                m: 16,
                ef_construction: 64,
                ef_search: 128,
                seed: 3,
            },
            ..VectorConfig::default()
        };
        let mut index = VectorIndex::with_config(DIM, config);
        for (i, v) in data.chunks_exact(DIM).enumerate() {
            index.insert(i as u64, (i / 4) as u64, v).unwrap();
        }
        index.build_ann();
        (index, queries)
    }

    /// About `per_mille`‰ of `documents`, scattered by a multiplicative hash.
    fn scattered(documents: u64, per_mille: u64) -> AllowedDocs {
        (0..documents)
            .filter(|d| d.wrapping_mul(0x9E37_79B9_7F4A_7C15) % 1000 < per_mille)
            .collect()
    }

    /// The filtered graph search, whatever the planner would choose.
    fn graph_search(index: &VectorIndex, query: &[f32], allowed: &AllowedDocs) -> Vec<ScoredChunk> {
        let query = index.prepare_query(query).unwrap();
        let eligible = index.allowed_slots(allowed).len();
        let ef = index.config.hnsw.ef_search;
        let top = index.ann_search(&query, K, ef, Some(allowed), eligible, K.min(eligible));
        index.to_results(top)
    }

    #[test]
    fn filtered_graph_search_keeps_to_the_allow_list_and_its_recall_at_every_selectivity() {
        let (index, queries) = indexed();
        let documents = 2_000;
        for per_mille in [1000, 500, 200, 100, 50, 20, 10, 2] {
            let allowed = scattered(documents, per_mille);
            let eligible = index.allowed_slots(&allowed).len();
            let (mut found, mut wanted) = (0, 0);
            for query in queries.chunks_exact(DIM) {
                let truth = index.search_exact(query, K, Some(&allowed));
                assert_eq!(truth.len(), K.min(eligible));
                for got in [
                    graph_search(&index, query, &allowed),
                    index.search(query, K, Some(&allowed)),
                ] {
                    assert!(
                        got.iter().all(|hit| allowed.contains(hit.doc_id)),
                        "{per_mille}‰: a hit outside the allow-list"
                    );
                    assert_eq!(got.len(), truth.len(), "{per_mille}‰: top-k not full");
                    let ids: HashSet<u64> = got.iter().map(|hit| hit.chunk_id).collect();
                    assert_eq!(ids.len(), got.len(), "{per_mille}‰: a chunk twice");
                }
                let got = graph_search(&index, query, &allowed);
                let truth: HashSet<u64> = truth.iter().map(|hit| hit.chunk_id).collect();
                found += got.iter().filter(|hit| truth.contains(&hit.chunk_id)).count();
                wanted += truth.len();
            }
            let recall = found as f64 / wanted as f64;
            assert!(
                recall >= 0.95,
                "{per_mille}‰ allowed: graph recall@{K} {recall:.3}"
            );
        }
    }

    #[test]
    fn an_allow_list_far_from_the_query_still_fills_the_top_k_exactly() {
        let (index, queries) = indexed();
        // The documents of the chunks least like the first query: the graph search has to
        // walk through most of the graph to meet them.
        let query = &queries[..DIM];
        let negated: Vec<f32> = query.iter().map(|x| -x).collect();
        let far: AllowedDocs = index
            .search_exact(&negated, 300, None)
            .iter()
            .map(|hit| hit.doc_id)
            .collect();
        let truth = index.search_exact(query, K, Some(&far));
        for got in [
            graph_search(&index, query, &far),
            index.search(query, K, Some(&far)),
        ] {
            assert!(got.iter().all(|hit| far.contains(hit.doc_id)));
            assert_eq!(got.len(), truth.len());
        }
        // Out of evaluations before it meets them, the graph search comes back short, and
        // the caller scans instead.
        let graph = index.graph.as_ref().unwrap();
        let prepared = index.prepare_query(query).unwrap();
        let accept = |slot: u32| far.contains(index.doc_ids[slot as usize]);
        let short = graph.search(&prepared, K, K, index.vectors(), Some(&accept), 20);
        assert!(short.len() < K);
        assert!(short.iter().all(|&(_, slot)| accept(slot)));
        // Documents without chunks, and an allow-list larger than the index's documents.
        let absent: AllowedDocs = (1_000_000..1_010_000u64).collect();
        assert!(index.search(query, K, Some(&absent)).is_empty());
        let mixed: AllowedDocs = (0..5u64).chain(1_000_000..1_010_000).collect();
        let got = index.search(query, K, Some(&mixed));
        assert_eq!(got, index.search_exact(query, K, Some(&mixed)));
        assert!(got.iter().all(|hit| hit.doc_id < 5));
    }

    #[test]
    fn allowed_chunks_are_counted_when_few_and_estimated_when_many() {
        let (index, _) = indexed();
        let few: AllowedDocs = (0..100u64).collect();
        assert_eq!(index.estimate_allowed_chunks(&few), (400, true));
        for per_mille in [200, 500, 1000] {
            let allowed = scattered(2_000, per_mille);
            let exact = index.allowed_slots(&allowed).len();
            let (estimate, counted) = index.estimate_allowed_chunks(&allowed);
            assert!(!counted);
            assert!(
                (estimate as f64 - exact as f64).abs() <= 0.05 * exact as f64 + 1.0,
                "{per_mille}‰: estimate {estimate}, exact {exact}"
            );
        }
        // More allowed documents than indexed ones: sampled from the index side.
        let wide: AllowedDocs = (0..2_000u64).chain(10_000..20_000).collect();
        let (estimate, counted) = index.estimate_allowed_chunks(&wide);
        assert_eq!((estimate, counted), (8_000, false));
    }
}
