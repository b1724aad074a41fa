//! Measurement: `eval retrieval` (nDCG@10, recall@100, MRR@10 on BEIR-format files), `eval
//! tables` (table discovery on Spider/BIRD files), `eval sql` (text-to-SQL execution accuracy)
//! and `bench` (embedding, ingestion and query figures).
//!
//! Grammar, then dispatch, then printing.

use crate::output::{SyncProgress, print_json};
use crate::search::SearchTypeArg;
use clap::{Args, Subcommand};
use groundwork_service::{
    BenchOptions, EvalOptions, EvalReport, Groundwork, SearchType, SqlEvalOptions, SqlEvalReport,
    TableEvalOptions, TableEvalReport,
};
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
    /// Table discovery: recall@1/3/5/10, all gold tables in the top 5, MRR and latency over
    /// one catalogue of every database in a Spider- or BIRD-format file.
    Tables {
        /// `tables.json` (Spider/BIRD schema file).
        #[arg(long)]
        tables: PathBuf,
        /// Questions with gold SQL (`dev.json`).
        #[arg(long)]
        questions: PathBuf,
        /// BIRD's `dev_databases_descriptions` folder.
        #[arg(long)]
        descriptions: Option<PathBuf>,
        /// Append BIRD's evidence to each question.
        #[arg(long)]
        evidence: bool,
        #[arg(long)]
        limit: Option<usize>,
        /// Grow the catalogue to this many tables with renamed copies (latency at scale).
        #[arg(long)]
        synthetic_tables: Option<usize>,
    },
    /// Text-to-SQL end to end on a tables knowledge base over a SQLite database: execution
    /// accuracy, runnable rate, retries, tokens and time per stage, with the configured model.
    Sql {
        /// A tables knowledge base with the database among its sources.
        kb: String,
        /// The SQLite file the gold SQL runs on.
        #[arg(long)]
        database: PathBuf,
        /// Spider- or text2sql-data-format questions with gold SQL.
        #[arg(long)]
        questions: PathBuf,
        #[arg(long)]
        limit: Option<usize>,
        /// A model named under [llms] in config.toml.
        #[arg(long)]
        model: Option<String>,
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
    /// With --scifact: measure parse throughput (in-thread and in worker processes) and stop
    /// before the sync.
    #[arg(long, requires = "scifact")]
    pub parse_only: bool,
    /// The reference: `../shared/bench/reference/bench.py` (run first, from its installation
    /// made by setup.sh), or the JSON it wrote with `--backend ort --json PATH` on this
    /// machine. Each figure is printed beside ONNX Runtime's, with the ratio.
    #[arg(long)]
    pub reference: Option<PathBuf>,
}

// ---- dispatch -----------------------------------------------------------------------------

/// Evaluation makes its own knowledge base, so it initialises the home first.
pub fn eval_command(
    home: &Path,
    open: impl FnOnce() -> anyhow::Result<Groundwork>,
    command: EvalCommand,
    json: bool,
) -> anyhow::Result<()> {
    let (corpus, queries, qrels, search_types) = match command {
        EvalCommand::Retrieval {
            corpus,
            queries,
            qrels,
            search_types,
        } => (corpus, queries, qrels, search_types),
        EvalCommand::Tables {
            tables,
            questions,
            descriptions,
            evidence,
            limit,
            synthetic_tables,
        } => {
            let report = open()?.eval_tables(&TableEvalOptions {
                tables,
                questions,
                descriptions,
                evidence,
                limit,
                synthetic_tables,
            })?;
            return print_table_eval(&report, json);
        }
        EvalCommand::Sql {
            kb,
            database,
            questions,
            limit,
            model,
        } => {
            let report = open()?.eval_sql(&SqlEvalOptions {
                knowledge_base: kb,
                database,
                questions,
                limit,
                model,
            })?;
            return print_sql_eval(&report, json);
        }
    };
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
            parse_only: args.parse_only,
            reference: args.reference,
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

fn print_table_eval(report: &TableEvalReport, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(report);
    }
    println!(
        "{} databases, {} tables, {} questions ({} skipped){}; index built in {:.1} s",
        report.databases,
        report.tables,
        report.questions,
        report.skipped,
        if report.evidence { ", with evidence" } else { "" },
        report.build_s
    );
    println!(
        "recall@1 {:.3}  @3 {:.3}  @5 {:.3}  @10 {:.3}  all gold in top 5 {:.3}  MRR {:.3}",
        report.recall_at_1,
        report.recall_at_3,
        report.recall_at_5,
        report.recall_at_10,
        report.all_gold_at_5,
        report.mrr
    );
    println!(
        "search p50 {:.2} ms, p95 {:.2} ms (question embedding included)",
        report.search_p50_ms, report.search_p95_ms
    );
    Ok(())
}

fn print_sql_eval(report: &SqlEvalReport, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(report);
    }
    println!(
        "{} questions ({} with gold SQL that does not run left out)",
        report.questions, report.gold_failed
    );
    println!(
        "execution accuracy {:.3}, runnable {:.3}, mean corrections {:.2}, tokens {} in / {} out",
        report.execution_accuracy,
        report.runnable,
        report.mean_retries,
        report.prompt_tokens,
        report.completion_tokens
    );
    let s = &report.stage_p50_ms;
    println!(
        "p50 ms: discovery {:.1}, prompt {:.1}, model {:.1}, validation {:.1}, execution {:.1}; outside the model {:.1}",
        s.discovery_ms, s.prompt_ms, s.model_ms, s.validation_ms, s.execution_ms, report.outside_model_p50_ms
    );
    Ok(())
}
