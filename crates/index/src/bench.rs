//! Synthetic vector-search benchmark (called by the CLI's `bench` command).
//!
//! The corpus imitates sentence embeddings: points scattered around a few
//! hundred random topic centres, normalised, so that neighbours are
//! meaningful (uniform random high-dimensional data has no structure and is
//! the pathological worst case for any ANN index).

use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::allowed::AllowedDocs;
use crate::vector::{VectorConfig, VectorIndex};
use groundwork_core::rng::SplitMix64;
use groundwork_core::stats::percentile;

/// Latency distribution of one search strategy, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyStats {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    /// Mean recall@k against the exact scan (1.0 for the exact scan itself).
    pub recall: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct VectorBenchReport {
    pub n: usize,
    pub dim: usize,
    pub queries: usize,
    pub k: usize,
    pub threads: usize,
    pub hnsw_m: usize,
    pub hnsw_ef_construction: usize,
    pub hnsw_ef_search: usize,
    pub generate_secs: f64,
    pub build_secs: f64,
    pub vectors_bytes: usize,
    pub total_memory_bytes: usize,
    pub exact: LatencyStats,
    /// HNSW figures at `hnsw_ef_search`.
    pub hnsw: LatencyStats,
    /// HNSW figures at other beam widths (same graph).
    pub hnsw_sweep: Vec<EfPoint>,
    /// Default search when only a fraction of the documents may be read (the access
    /// allow-list), on the same index.
    pub access: Vec<AccessPoint>,
}

/// Search restricted to a random fraction of the documents.
#[derive(Debug, Clone, Serialize)]
pub struct AccessPoint {
    pub readable_fraction: f64,
    pub readable_chunks: usize,
    /// p50 relative to the unrestricted search's p50.
    pub p50_vs_unrestricted: f64,
    #[serde(flatten)]
    pub stats: LatencyStats,
}

/// Readable fractions measured by [`bench_vectors`]: everything, 50%, 10%, 5%, 1%, 0.1%.
pub const ACCESS_FRACTIONS: [f64; 6] = [1.0, 0.5, 0.1, 0.05, 0.01, 0.001];

#[derive(Debug, Clone, Serialize)]
pub struct EfPoint {
    pub ef_search: usize,
    #[serde(flatten)]
    pub stats: LatencyStats,
}

/// Topic centres of a synthetic embedding space.
struct Topics {
    centres: Vec<f32>,
    count: usize,
    dim: usize,
}

impl Topics {
    fn new(n: usize, dim: usize, seed: u64) -> Self {
        let count = ((n as f64).sqrt() as usize).clamp(1, 1000);
        let mut rng = SplitMix64::new(seed);
        let centres = (0..count * dim).map(|_| rng.next_gaussian()).collect();
        Self { centres, count, dim }
    }

    /// `n` unit vectors near random centres (deterministic for a seed).
    fn sample(&self, n: usize, seed: u64) -> Vec<f32> {
        let dim = self.dim;
        let mut data = vec![0.0f32; n * dim];
        data.par_chunks_mut(dim * 1024)
            .enumerate()
            .for_each(|(block, out)| {
                let mut rng = SplitMix64::new(seed ^ (block as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F));
                for v in out.chunks_exact_mut(dim) {
                    let c = rng.below(self.count);
                    let centre = &self.centres[c * dim..(c + 1) * dim];
                    // Noise of the same magnitude as the centre: within-topic
                    // cosine around 0.5, across topics around 0, roughly like
                    // MiniLM-style sentence embeddings.
                    for (x, &m) in v.iter_mut().zip(centre) {
                        *x = m + rng.next_gaussian();
                    }
                    crate::distance::normalize(v);
                }
            });
        data
    }
}

/// `n` clustered unit vectors plus `queries` query vectors drawn from the
/// same topics (deterministic for a given seed).
pub fn clustered_vectors(n: usize, queries: usize, dim: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let topics = Topics::new(n, dim, seed);
    (
        topics.sample(n, seed.wrapping_add(1)),
        topics.sample(queries, seed.wrapping_add(2)),
    )
}

fn stats(mut latencies: Vec<f64>, recall: f64) -> LatencyStats {
    latencies.sort_by(f64::total_cmp);
    let mean = latencies.iter().sum::<f64>() / latencies.len().max(1) as f64;
    LatencyStats {
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
        mean_ms: mean,
        recall,
    }
}

/// Builds a clustered corpus of `n` vectors, builds the HNSW graph, and
/// measures exact-scan and HNSW query latency plus HNSW recall@`k`.
pub fn bench_vectors(n: usize, dim: usize, queries: usize, k: usize, seed: u64) -> VectorBenchReport {
    bench_vectors_with_config(n, dim, queries, k, seed, VectorConfig::default(), &[])
}

/// [`bench_vectors`] with explicit index parameters; `sweep` lists extra
/// `ef_search` values to measure on the same graph.
pub fn bench_vectors_with_config(
    n: usize,
    dim: usize,
    queries: usize,
    k: usize,
    seed: u64,
    config: VectorConfig,
    sweep: &[usize],
) -> VectorBenchReport {
    let started = Instant::now();
    let (data, query_data) = clustered_vectors(n, queries, dim, seed);
    let mut index = VectorIndex::with_config(dim, config);
    for (i, v) in data.chunks_exact(dim).enumerate() {
        index
            .insert(i as u64, (i / 4) as u64, v)
            .expect("synthetic vectors are valid");
    }
    drop(data);
    let generate_secs = started.elapsed().as_secs_f64();

    let started = Instant::now();
    index.build_ann();
    let build_secs = started.elapsed().as_secs_f64();

    let mut exact_lat = Vec::with_capacity(queries);
    let mut truths = Vec::with_capacity(queries);
    for q in query_data.chunks_exact(dim) {
        let t = Instant::now();
        let truth = index.search_exact(q, k, None);
        exact_lat.push(t.elapsed().as_secs_f64() * 1e3);
        truths.push(truth);
    }
    let mut efs: Vec<usize> = sweep.to_vec();
    efs.push(config.hnsw.ef_search);
    efs.sort_unstable();
    efs.dedup();
    let mut hnsw_sweep = Vec::with_capacity(efs.len());
    let mut hnsw = None;
    for ef in efs {
        let mut latencies = Vec::with_capacity(queries);
        let mut hits = 0usize;
        let mut wanted = 0usize;
        for (q, truth) in query_data.chunks_exact(dim).zip(&truths) {
            let t = Instant::now();
            let approx = index.search_with_ef(q, k, None, ef);
            latencies.push(t.elapsed().as_secs_f64() * 1e3);
            let truth_ids: std::collections::HashSet<u64> = truth.iter().map(|c| c.chunk_id).collect();
            hits += approx.iter().filter(|c| truth_ids.contains(&c.chunk_id)).count();
            wanted += truth.len();
        }
        let point = EfPoint {
            ef_search: ef,
            stats: stats(latencies, hits as f64 / wanted.max(1) as f64),
        };
        if ef == config.hnsw.ef_search {
            hnsw = Some(point.stats.clone());
        }
        hnsw_sweep.push(point);
    }
    let access = access_points(&index, &query_data, dim, k, seed);
    let params = index.config().hnsw;
    VectorBenchReport {
        n,
        dim,
        queries,
        k,
        threads: rayon::current_num_threads(),
        hnsw_m: params.m,
        hnsw_ef_construction: params.ef_construction,
        hnsw_ef_search: params.ef_search,
        generate_secs,
        build_secs,
        vectors_bytes: n * dim * 4,
        total_memory_bytes: index.memory_bytes(),
        exact: stats(exact_lat, 1.0),
        hnsw: hnsw.unwrap_or_else(|| stats(Vec::new(), 0.0)),
        hnsw_sweep,
        access,
    }
}

/// Latency and recall of the default search (graph or exact scan, as the index chooses) for
/// allow-lists of random documents, against an exact scan over the same allow-list.
fn access_points(
    index: &VectorIndex,
    query_data: &[f32],
    dim: usize,
    k: usize,
    seed: u64,
) -> Vec<AccessPoint> {
    let mut points: Vec<AccessPoint> = Vec::new();
    let documents = index.len().div_ceil(4) as u64;
    for fraction in ACCESS_FRACTIONS {
        let allowed: Option<AllowedDocs> = (fraction < 1.0).then(|| {
            (0..documents)
                .filter(|&doc| {
                    let mut rng = SplitMix64::new(seed ^ doc.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    (rng.next_u64() % 1_000_000) as f64 / 1e6 < fraction
                })
                .collect()
        });
        let readable_chunks = allowed.as_ref().map_or(index.len(), |a| a.len() * 4);
        let mut latencies = Vec::new();
        let (mut hits, mut wanted) = (0usize, 0usize);
        for q in query_data.chunks_exact(dim) {
            let t = Instant::now();
            let found = index.search(q, k, allowed.as_ref());
            latencies.push(t.elapsed().as_secs_f64() * 1e3);
            let truth: std::collections::HashSet<u64> = index
                .search_exact(q, k, allowed.as_ref())
                .iter()
                .map(|c| c.chunk_id)
                .collect();
            hits += found.iter().filter(|c| truth.contains(&c.chunk_id)).count();
            wanted += truth.len();
        }
        let stats = stats(latencies, hits as f64 / wanted.max(1) as f64);
        let baseline = points.first().map_or(stats.p50_ms, |p| p.stats.p50_ms);
        points.push(AccessPoint {
            readable_fraction: fraction,
            readable_chunks,
            p50_vs_unrestricted: stats.p50_ms / baseline.max(f64::MIN_POSITIVE),
            stats,
        });
    }
    points
}
