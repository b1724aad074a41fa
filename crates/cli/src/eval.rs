//! Measurement: `eval retrieval` (nDCG@10, recall@100, MRR@10 on BEIR-format files) and
//! `bench` (embedding, ingestion and query figures).
//!
//! Grammar, then dispatch, then printing.

use crate::output::{SyncProgress, print_json};
use crate::search::SearchTypeArg;
use clap::{Args, Subcommand};
use groundwork_service::{BenchOptions, EvalOptions, EvalReport, Groundwork, SearchType};
use std::path::{Path, PathBuf};

// ---- grammar ------------------------------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// nDCG@10, recall@100 and MRR@10 per search type on BEIR-format files.
    Retrieval {
        #[arg(long)]
        corpus: PathBuf,
        #[arg(long)]
        queries: PathBuf,
        #[arg(long)]
        qrels: PathBuf,
        /// Search types to evaluate (default: all three).
        #[arg(long = "search-type", value_enum)]
        search_types: Vec<SearchTypeArg>,
    },
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// BEIR SciFact folder (corpus.jsonl, queries.jsonl, qrels/train.tsv).
    #[arg(long)]
    pub scifact: Option<PathBuf>,
    /// Synthetic vectors for the vector-index benchmark (0 skips it).
    #[arg(long, default_value_t = 0)]
    pub vectors: usize,
    /// Timed runs of the embedding micro-benchmarks (0 skips them).
    #[arg(long, default_value_t = 5)]
    pub embed_runs: usize,
}

// ---- dispatch -----------------------------------------------------------------------------

/// Evaluation makes its own knowledge base, so it initialises the home first.
pub fn eval_command(
    home: &Path,
    open: impl FnOnce() -> anyhow::Result<Groundwork>,
    command: EvalCommand,
    json: bool,
) -> anyhow::Result<()> {
    let EvalCommand::Retrieval {
        corpus,
        queries,
        qrels,
        search_types,
    } = command;
    Groundwork::init(home)?;
    let groundwork = open()?;
    let search_types = if search_types.is_empty() {
        vec![SearchType::Lexical, SearchType::Semantic, SearchType::Hybrid]
    } else {
        search_types.into_iter().map(Into::into).collect()
    };
    let mut progress = SyncProgress::new(json);
    let report = groundwork.eval_retrieval(
        &EvalOptions {
            corpus,
            queries,
            qrels,
            search_types,
        },
        &mut progress,
    )?;
    progress.finish();
    print_eval(&report, json)
}

pub fn bench(groundwork: &Groundwork, args: BenchArgs, json: bool) -> anyhow::Result<()> {
    let mut progress = SyncProgress::new(json);
    let mut say = |message: &str| {
        if !json {
            eprintln!("bench: {message}");
        }
    };
    let report = groundwork.bench(
        &BenchOptions {
            scifact: args.scifact,
            vectors: args.vectors,
            embed_runs: args.embed_runs,
        },
        &mut say,
        &mut progress,
    )?;
    progress.finish();
    print_json(&report)
}

// ---- printing -----------------------------------------------------------------------------

fn print_eval(report: &EvalReport, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(report);
    }
    println!(
        "{} documents, knowledge base `{}`",
        report.documents, report.knowledge_base
    );
    println!(
        "{:<10} {:>8} {:>10} {:>11} {:>8} {:>8} {:>10}",
        "type", "queries", "nDCG@10", "recall@100", "MRR@10", "p50 ms", "audit ms"
    );
    for row in &report.rows {
        println!(
            "{:<10} {:>8} {:>10.4} {:>11.4} {:>8.4} {:>8.2} {:>10.3}",
            row.search_type.to_string(),
            row.queries,
            row.metrics.ndcg_at_10,
            row.metrics.recall_at_100,
            row.metrics.mrr_at_10,
            row.p50_ms,
            row.audit_p50_ms
        );
    }
    Ok(())
}
