//! The cost of one read's audit record, piece by piece: sealing (masking, encoding, hashing),
//! and what a search waits for (`append_read_audit`: masking and the journal write; the
//! flusher thread chains the journal into SQLite in batches meanwhile).
//!
//! `cargo run --release -p groundwork-store --example audit_append -- [N]`

use groundwork_govern::audit::{AuditEntry, ChunkRef, Outcome};
use groundwork_store::Store;
use std::time::Instant;

fn entry(i: usize) -> AuditEntry {
    AuditEntry {
        at: 1_700_000_000_000 + i as i64,
        actor: "alice".into(),
        auth: "token:3".into(),
        action: "search".into(),
        target: Some("eval-scifact".into()),
        request: serde_json::json!({
            "query": "0-dimensional biomaterials show inductive properties. contact bob@example.com",
            "k": 10,
            "search_type": "lexical",
        }),
        outcome: Outcome::Ok,
        code: None,
        chunks: (0..10)
            .map(|c| ChunkRef {
                chunk_id: (i * 10 + c) as i64,
                document_uri: format!("file:///data/scifact/corpus/{}.txt", i * 10 + c),
                object_version: Some(format!("{:032x}", i * 7919 + c)),
            })
            .collect(),
        models: Vec::new(),
        latency_ms: Some(0.7),
    }
}

use groundwork_core::stats::percentile;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map_or(Ok(2000), |n| n.parse())?;
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("groundwork.db"))?;

    let mut seal = Vec::with_capacity(n);
    for i in 0..n {
        let entry = entry(i);
        let started = Instant::now();
        let row = entry.seal(i as i64, "00");
        seal.push(started.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(row);
    }
    let mut append = Vec::with_capacity(n);
    for i in 0..n {
        let entry = entry(i);
        let started = Instant::now();
        store.append_read_audit(entry)?;
        append.push(started.elapsed().as_secs_f64() * 1e6);
    }
    let mut chained = 0;
    store.for_each_audit(|_| {
        chained += 1;
        true
    })?;
    assert_eq!(chained, n, "every journalled record reached the chain");
    println!(
        "{n} records: seal (mask + encode + hash) p50 {:.1} µs; append_read_audit (what a search waits for) p50 {:.1} µs, p99 {:.1} µs; all {n} chained",
        percentile(&seal, 0.5),
        percentile(&append, 0.5),
        percentile(&append, 0.99)
    );
    Ok(())
}
