//! Vector-search benchmark on synthetic clustered embeddings.
//!
//! `cargo run --release -p groundwork-index --example bench_vectors -- \
//!     [n] [dim] [queries] [k] [ef_search] [ef_construction] [sweep ef...]`

use groundwork_index::VectorConfig;
use groundwork_index::bench::bench_vectors_with_config;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("arguments are integers"))
        .collect();
    let arg = |i: usize, default: usize| args.get(i).copied().unwrap_or(default);
    let mut config = VectorConfig::default();
    config.hnsw.ef_search = arg(4, config.hnsw.ef_search);
    config.hnsw.ef_construction = arg(5, config.hnsw.ef_construction);
    let report = bench_vectors_with_config(
        arg(0, 200_000),
        arg(1, 384),
        arg(2, 200),
        arg(3, 10),
        42,
        config,
        args.get(6..).unwrap_or(&[]),
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&report).expect("report serialises")
    );
}
