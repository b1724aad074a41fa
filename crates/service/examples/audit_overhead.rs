//! Audit overhead on ordinary searches: the share of each `search` call spent appending its
//! audit record, at a typical result size.
//!
//! `cargo run -p groundwork-service --example audit_overhead -- HOME KB QUERIES.jsonl [K] [TYPE]`
//! (for example the `eval-scifact` knowledge base that `groundwork eval retrieval` builds).

use groundwork_core::stats::percentile;
use groundwork_service::{Groundwork, SearchRequest, SearchType};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() >= 3,
        "usage: audit_overhead HOME KB QUERIES.jsonl [K] [TYPE]"
    );
    let k: usize = args.get(3).map_or(Ok(10), |k| k.parse())?;
    let search_type: SearchType = args.get(4).map_or(Ok(SearchType::Hybrid), |t| t.parse())?;
    let groundwork = Groundwork::open(std::path::Path::new(&args[0]))?;
    let searcher = groundwork.searcher(&args[1])?;
    let queries: Vec<String> = std::fs::read_to_string(&args[2])?
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|q| q["text"].as_str().map(str::to_owned))
        .collect();
    let (mut total, mut audit) = (Vec::new(), Vec::new());
    for query in &queries {
        let started = Instant::now();
        let response = searcher.search(&SearchRequest {
            query: query.clone(),
            k,
            search_type: Some(search_type),
            filter: None,
        })?;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        total.push(ms);
        audit.push((ms - response.took_ms).max(0.0));
    }
    let (p50, audit_p50) = (percentile(&total, 0.5), percentile(&audit, 0.5));
    println!(
        "{} {search_type} searches, k={k}: p50 {p50:.2} ms, of which the audit append {audit_p50:.3} ms ({:.1}%); p99 {:.2} ms",
        queries.len(),
        100.0 * audit_p50 / p50,
        percentile(&total, 0.99)
    );
    Ok(())
}
