//! `groundwork bench`: the figures the project promises, measured in one run.
//!
//! - embedding throughput at batch 32 × 128 tokens and query latency at 1 × 16 tokens, for
//!   each numeric path this CPU runs fast (fp32; int8 where it has VNNI), named by kernel;
//! - parse throughput over the SciFact files, in-thread and through the parser worker
//!   processes (`[ingest] parse_isolation`), one document at a time as a sync parses;
//! - SciFact ingestion from a folder into a fresh home (documents/s, chunks/s, tokens/s),
//!   the re-sync of the unchanged folder, query latency p50/p99 and quality per search type;
//! - the vector index alone on a synthetic corpus (exact scan and HNSW, recall@10);
//! - peak resident memory of the process;
//! - beside each, the reference's figure and the ratio to it, when given the JSON that
//!   `../shared/bench/reference/bench.py --json` wrote on the same machine (ONNX Runtime's
//!   32 × 128 and 1 × 16 shapes, its whole-corpus encode sorted by length).

use crate::error::ServiceError;
use crate::eval::{EvalRow, evaluate, read_judgements, write_corpus_folder};
use crate::home::Groundwork;
use groundwork_core::ErrorCode;
use groundwork_embed::{LocalEmbedder, LocalOptions, Precision};
use groundwork_index::SearchType;
use groundwork_ingest::parse::{ParseLimits, ParserPool, parse_isolated};
use serde::Serialize;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// BEIR SciFact folder (corpus.jsonl, queries.jsonl, qrels/train.tsv); skipped when None.
    pub scifact: Option<PathBuf>,
    /// Synthetic vectors for the vector-index benchmark; 0 skips it.
    pub vectors: usize,
    /// Timed runs of the embedding micro-benchmarks; 0 skips them.
    pub embed_runs: usize,
    /// With `scifact`: measure parse throughput only, not the sync and the queries.
    pub parse_only: bool,
    /// The reference: `bench.py` itself (run here first, with the Python of its installation:
    /// `$REF_DIR`, else `~/.cache/groundwork-reference`, as `setup.sh` makes it), or the JSON
    /// `bench.py --backend ort --json PATH` wrote earlier.
    pub reference: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EmbeddingBench {
    pub precision: Precision,
    /// The kernel that ran, e.g. `fp32 avx512` or `int8 avx512-vnni`.
    pub backend: String,
    pub batch_32x128_tokens_per_s: f64,
    pub batch_32x128_ms: f64,
    pub query_1x16_p50_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LatencyRow {
    pub search_type: SearchType,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Median time spent appending each search's audit record (part of `p50_ms`'s calls).
    pub audit_p50_ms: f64,
    /// `audit_p50_ms / p50_ms`.
    pub audit_share_of_p50: f64,
    pub ndcg_at_10: f64,
    pub recall_at_100: f64,
    pub mrr_at_10: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ParseBench {
    pub documents: usize,
    pub megabytes: f64,
    /// On a thread of this process with a deadline (no hard stop).
    pub thread_documents_per_s: f64,
    /// Through the pool of worker processes; `None` when parsing is not isolated in processes.
    pub process_documents_per_s: Option<f64>,
    /// `process_documents_per_s / thread_documents_per_s`.
    pub process_over_thread: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScifactBench {
    pub documents: usize,
    pub chunks: usize,
    pub ingest_s: f64,
    pub documents_per_s: f64,
    pub chunks_per_s: f64,
    pub embedding_tokens_per_s: f64,
    /// Where the first sync's time went, stage by stage (stages overlap).
    pub ingest_timings: groundwork_ingest::sync::SyncTimings,
    pub resync_s: f64,
    pub resync_embeddings_computed: usize,
    pub queries: usize,
    pub search: Vec<LatencyRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// One row per numeric path (fp32, then int8 where the CPU has VNNI); empty when skipped.
    pub embedding: Vec<EmbeddingBench>,
    pub parse: Option<ParseBench>,
    pub scifact: Option<ScifactBench>,
    pub vectors: Option<groundwork_index::VectorBenchReport>,
    pub peak_rss_mib: f64,
    /// The figures above beside the reference's, when one was given.
    pub reference: Option<ReferenceComparison>,
}

/// ONNX Runtime's figures from `bench.py` and ours over them (above 1 is faster for
/// throughput; below 1 is faster for latency and wall time).
#[derive(Debug, Clone, Serialize)]
pub struct ReferenceComparison {
    pub file: PathBuf,
    /// When and where the reference ran (its `date` and `machine.cpu`).
    pub measured: String,
    pub ort_32x128_tokens_per_s: Option<f64>,
    pub ort_1x16_ms: Option<f64>,
    /// Its whole-corpus encode, sorted by length (`bench.py --corpus`).
    pub ort_corpus_sorted_s: Option<f64>,
    /// Per numeric path: ours / reference tokens per second at 32 × 128, and ours /
    /// reference milliseconds at 1 × 16.
    pub embedding: Vec<EmbeddingRatio>,
    /// Our SciFact first sync (parse, chunk, embed, commit, index) over its corpus encode.
    pub scifact_sync_over_corpus_encode: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EmbeddingRatio {
    pub backend: String,
    pub batch_32x128_throughput_ratio: Option<f64>,
    pub query_1x16_latency_ratio: Option<f64>,
}

impl Groundwork {
    pub fn bench(
        &self,
        options: &BenchOptions,
        progress: &mut dyn FnMut(&str),
        observer: &mut dyn crate::SyncObserver,
    ) -> Result<BenchReport, ServiceError> {
        // First: a bad reference fails before the long measurements, and a reference that runs
        // here runs in the same window as ours.
        let reference = match options.reference.as_deref() {
            Some(path) if path.extension().is_some_and(|e| e == "py") => {
                progress("the reference (ONNX Runtime fp32, bench.py); it waits for an idle CPU");
                let corpus = options.scifact.as_ref().map(|dir| dir.join("corpus.jsonl"));
                Some(Reference::run(
                    path,
                    corpus.as_deref(),
                    &self.home().join("bench"),
                )?)
            }
            Some(path) => Some(Reference::read(path)?),
            None => None,
        };
        let mut embedding = Vec::new();
        if options.embed_runs > 0 {
            let mut precisions = vec![Precision::Fp32];
            if groundwork_embed::vnni_available() {
                precisions.push(Precision::Int8);
            }
            for precision in precisions {
                progress(&format!("embedding micro-benchmarks, {}", precision.name()));
                let options_ = LocalOptions {
                    precision,
                    ..LocalOptions::default()
                };
                let embedder = LocalEmbedder::load(&self.model_dir(), options_)?;
                let batch = groundwork_embed::measure_throughput(&embedder, 32, 128, options.embed_runs);
                let query =
                    groundwork_embed::measure_throughput(&embedder, 1, 16, options.embed_runs.max(20));
                embedding.push(EmbeddingBench {
                    precision,
                    backend: embedder.backend(),
                    batch_32x128_tokens_per_s: batch.tokens_per_sec,
                    batch_32x128_ms: batch.ms_per_batch,
                    query_1x16_p50_ms: query.ms_per_batch,
                });
            }
        }
        let (parse, scifact) = match &options.scifact {
            Some(dir) => {
                let (parse, scifact) = self.bench_scifact(dir, options.parse_only, progress, observer)?;
                (Some(parse), scifact)
            }
            None => (None, None),
        };
        let vectors = if options.vectors > 0 {
            progress(&format!("vector index on {} synthetic vectors", options.vectors));
            Some(groundwork_index::bench_vectors(options.vectors, 384, 200, 10, 7))
        } else {
            None
        };
        let reference = reference.map(|reference| reference.compare(&embedding, scifact.as_ref()));
        Ok(BenchReport {
            embedding,
            parse,
            scifact,
            vectors,
            peak_rss_mib: peak_rss_mib(),
            reference,
        })
    }

    fn bench_scifact(
        &self,
        dir: &std::path::Path,
        parse_only: bool,
        progress: &mut dyn FnMut(&str),
        observer: &mut dyn crate::SyncObserver,
    ) -> Result<(ParseBench, Option<ScifactBench>), ServiceError> {
        // A fresh home, so that nothing is cached: this measures a first ingestion.
        let scratch = self
            .home()
            .join("bench")
            .join(format!("run-{}", std::process::id()));
        let _cleanup = RemoveOnDrop(scratch.clone());
        Groundwork::init(&scratch)?;
        std::fs::write(
            scratch.join("config.toml"),
            format!(
                "[model]\ndir = {:?}\nprecision = {:?}\n",
                self.model_dir().to_string_lossy(),
                self.config().model.precision.name()
            ),
        )?;
        let bench_home = Groundwork::open(&scratch)?;
        let folder = scratch.join("scifact-docs");
        progress("writing SciFact documents to a folder");
        let documents = write_corpus_folder(&dir.join("corpus.jsonl"), &folder)?;
        bench_home.create_kb("scifact", Default::default())?;
        bench_home.add_source("scifact", &folder.to_string_lossy(), Default::default())?;
        progress("parse throughput, in-thread and in worker processes");
        let parse = bench_parse(
            &folder,
            bench_home.shared.parsers.as_deref(),
            &bench_home.config().ingest.sync_options(None).parse_limits,
        )?;
        if parse_only {
            return Ok((parse, None));
        }
        bench_home.embedder()?;
        progress("first sync (parse, chunk, embed, index)");
        let started = Instant::now();
        let first = bench_home.sync("scifact", observer)?;
        let ingest_s = started.elapsed().as_secs_f64();
        progress("re-sync of the unchanged folder");
        let started = Instant::now();
        let second = bench_home.sync("scifact", observer)?;
        let resync_s = started.elapsed().as_secs_f64();
        progress("queries");
        let judgements = read_judgements(&dir.join("queries.jsonl"), &dir.join("qrels/train.tsv"))?;
        let searcher = bench_home.searcher("scifact")?;
        let rows: Vec<EvalRow> = evaluate(
            &searcher,
            &judgements,
            &[SearchType::Lexical, SearchType::Semantic, SearchType::Hybrid],
        )?;
        let search = rows
            .iter()
            .map(|row| LatencyRow {
                search_type: row.search_type,
                p50_ms: percentile(&row.latencies_ms, 0.50),
                p99_ms: percentile(&row.latencies_ms, 0.99),
                audit_p50_ms: percentile(&row.audit_ms, 0.50),
                audit_share_of_p50: percentile(&row.audit_ms, 0.50) / percentile(&row.latencies_ms, 0.50),
                ndcg_at_10: row.metrics.ndcg_at_10,
                recall_at_100: row.metrics.recall_at_100,
                mrr_at_10: row.metrics.mrr_at_10,
            })
            .collect();
        let scifact = ScifactBench {
            documents,
            chunks: first.chunks_written,
            ingest_s,
            documents_per_s: documents as f64 / ingest_s,
            chunks_per_s: first.chunks_written as f64 / ingest_s,
            embedding_tokens_per_s: first.tokens_embedded as f64 / ingest_s,
            ingest_timings: first.timings.clone(),
            resync_s,
            resync_embeddings_computed: second.embeddings_computed,
            queries: judgements.queries.len(),
            search,
        };
        Ok((parse, Some(scifact)))
    }
}

/// Parses every file of `folder` one at a time, first in-thread, then through `pool`. The files
/// are read beforehand, so only parsing (and, for the pool, the trip to the worker) is timed.
fn bench_parse(
    folder: &Path,
    pool: Option<&ParserPool>,
    limits: &ParseLimits,
) -> Result<ParseBench, ServiceError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder)? {
        let path = entry?.path();
        if path.is_file() {
            let body = std::fs::read(&path)?;
            files.push((path.to_string_lossy().into_owned(), body));
        }
    }
    files.sort();
    let bytes: usize = files.iter().map(|(_, body)| body.len()).sum();
    let started = Instant::now();
    for (name, body) in &files {
        let _ = parse_isolated(body.clone(), name.clone(), limits.clone());
    }
    let thread_s = started.elapsed().as_secs_f64();
    let process_s = pool.map(|pool| {
        let started = Instant::now();
        for (name, body) in &files {
            let _ = pool.parse(body, name, limits, None);
        }
        started.elapsed().as_secs_f64()
    });
    let per_s = |seconds: f64| files.len() as f64 / seconds.max(1e-9);
    Ok(ParseBench {
        documents: files.len(),
        megabytes: bytes as f64 / 1e6,
        thread_documents_per_s: per_s(thread_s),
        process_documents_per_s: process_s.map(per_s),
        process_over_thread: process_s.map(|p| thread_s / p.max(1e-9)),
    })
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

use groundwork_core::stats::percentile;

/// Peak resident set size of this process, from getrusage (kilobytes on Linux).
/// The reference figures read from `bench.py`'s JSON.
struct Reference {
    file: PathBuf,
    measured: String,
    batch_tokens_per_s: Option<f64>,
    query_ms: Option<f64>,
    corpus_sorted_s: Option<f64>,
}

impl Reference {
    fn read(file: &Path) -> Result<Reference, ServiceError> {
        let bad = |why: String| {
            ServiceError::new(
                ErrorCode::InvalidRequest,
                format!("reference file {}: {why}", file.display()),
            )
        };
        let text = std::fs::read_to_string(file).map_err(|e| bad(e.to_string()))?;
        let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let ort = doc
            .pointer("/results/ort")
            .ok_or_else(|| bad("no ONNX Runtime results (run bench.py with --backend ort)".into()))?;
        let number = |pointer: &str| ort.pointer(pointer).and_then(serde_json::Value::as_f64);
        Ok(Reference {
            file: file.to_path_buf(),
            measured: format!(
                "{} on {}",
                doc.pointer("/date").and_then(|v| v.as_str()).unwrap_or("?"),
                doc.pointer("/machine/cpu")
                    .and_then(|v| v.as_str())
                    .unwrap_or("?")
            ),
            batch_tokens_per_s: number("/shapes/32x128/tok_per_s"),
            query_ms: number("/shapes/1x16/median_ms"),
            corpus_sorted_s: number("/corpus/sorted/wall_s"),
        })
    }

    /// Runs `script` (`bench.py`) for ONNX Runtime's 1 × 16 and 32 × 128 shapes and, with
    /// `corpus`, its whole-corpus encode sorted by length, then reads what it wrote.
    fn run(script: &Path, corpus: Option<&Path>, scratch: &Path) -> Result<Reference, ServiceError> {
        let failed = |why: String| {
            ServiceError::new(
                ErrorCode::InvalidRequest,
                format!("reference {}: {why}", script.display()),
            )
        };
        let installation = std::env::var_os("REF_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/groundwork-reference"))
            })
            .ok_or_else(|| failed("no REF_DIR or HOME to find its installation".into()))?;
        Reference::run_with(&installation.join("venv/bin/python"), script, corpus, scratch)
    }

    /// [`Reference::run`] with a given interpreter.
    fn run_with(
        python: &Path,
        script: &Path,
        corpus: Option<&Path>,
        scratch: &Path,
    ) -> Result<Reference, ServiceError> {
        let failed = |why: String| {
            ServiceError::new(
                ErrorCode::InvalidRequest,
                format!("reference {}: {why}", script.display()),
            )
        };
        if !python.is_file() {
            return Err(failed(format!(
                "not installed: no {} (run its setup.sh)",
                python.display()
            )));
        }
        std::fs::create_dir_all(scratch)?;
        let out = scratch.join(format!("reference-{}.json", std::process::id()));
        let mut command = std::process::Command::new(python);
        command
            .arg(script)
            .args(["--backend", "ort", "--shapes", "1x16,32x128", "--json"])
            .arg(&out);
        if let Some(corpus) = corpus {
            command
                .arg("--corpus")
                .arg(corpus)
                .args(["--corpus-orders", "sorted"]);
        }
        // Its table goes to our standard error: standard output carries our report.
        let stderr = std::io::stderr().as_fd().try_clone_to_owned()?;
        let status = command.stdout(stderr).status();
        let read = match status {
            Ok(status) if status.success() => Reference::read(&out),
            Ok(status) => Err(failed(format!("exited with {status}"))),
            Err(e) => Err(failed(e.to_string())),
        };
        let _ = std::fs::remove_file(&out);
        read
    }

    fn compare(self, embedding: &[EmbeddingBench], scifact: Option<&ScifactBench>) -> ReferenceComparison {
        let ratio = |ours: f64, theirs: Option<f64>| theirs.filter(|t| *t > 0.0).map(|t| ours / t);
        ReferenceComparison {
            embedding: embedding
                .iter()
                .map(|row| EmbeddingRatio {
                    backend: row.backend.clone(),
                    batch_32x128_throughput_ratio: ratio(
                        row.batch_32x128_tokens_per_s,
                        self.batch_tokens_per_s,
                    ),
                    query_1x16_latency_ratio: ratio(row.query_1x16_p50_ms, self.query_ms),
                })
                .collect(),
            scifact_sync_over_corpus_encode: scifact.and_then(|s| ratio(s.ingest_s, self.corpus_sorted_s)),
            file: self.file,
            measured: self.measured,
            ort_32x128_tokens_per_s: self.batch_tokens_per_s,
            ort_1x16_ms: self.query_ms,
            ort_corpus_sorted_s: self.corpus_sorted_s,
        }
    }
}

fn peak_rss_mib() -> f64 {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0;
    if ok { usage.ru_maxrss as f64 / 1024.0 } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(precision: Precision, tokens_per_s: f64, query_ms: f64) -> EmbeddingBench {
        EmbeddingBench {
            precision,
            backend: format!("{} test", precision.name()),
            batch_32x128_tokens_per_s: tokens_per_s,
            batch_32x128_ms: 0.0,
            query_1x16_p50_ms: query_ms,
        }
    }

    #[test]
    fn reference_figures_are_read_from_bench_py_json_and_compared() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ort.json");
        std::fs::write(
            &file,
            r#"{"date": "2026-12-05T10:00:00+00:00", "machine": {"cpu": "AMD EPYC"},
                "results": {"ort": {"shapes": {"32x128": {"tok_per_s": 8000.0},
                                               "1x16": {"median_ms": 5.0}},
                                    "corpus": {}}}}"#,
        )
        .unwrap();
        let reference = Reference::read(&file).unwrap();
        let compared = reference.compare(
            &[
                row(Precision::Fp32, 8800.0, 2.5),
                row(Precision::Int8, 12000.0, 2.0),
            ],
            None,
        );
        assert_eq!(compared.measured, "2026-12-05T10:00:00+00:00 on AMD EPYC");
        assert_eq!(compared.embedding[0].batch_32x128_throughput_ratio, Some(1.1));
        assert_eq!(compared.embedding[0].query_1x16_latency_ratio, Some(0.5));
        assert_eq!(compared.embedding[1].batch_32x128_throughput_ratio, Some(1.5));
        // The corpus encode was not measured: no ratio rather than a made-up one.
        assert_eq!(compared.ort_corpus_sorted_s, None);
        assert_eq!(compared.scifact_sync_over_corpus_encode, None);
    }

    #[test]
    fn a_reference_file_that_is_not_bench_py_json_is_a_request_error() {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in [("empty.json", ""), ("st.json", r#"{"results": {"st": {}}}"#)] {
            let file = dir.path().join(name);
            std::fs::write(&file, body).unwrap();
            let error = Reference::read(&file).err().expect("refused");
            assert_eq!(error.code(), ErrorCode::InvalidRequest, "{name}");
        }
        let missing = Reference::read(&dir.path().join("missing.json"))
            .err()
            .expect("refused");
        assert_eq!(missing.code(), ErrorCode::InvalidRequest);
        // A reference script without its installation, or one that fails, is refused too.
        let script = dir.path().join("bench.py");
        let absent = Reference::run_with(&dir.path().join("venv/bin/python"), &script, None, dir.path());
        let error = absent.err().expect("refused");
        assert_eq!(error.code(), ErrorCode::InvalidRequest);
        assert!(error.to_string().contains("not installed"), "{error}");
        let failing = Reference::run_with(Path::new("/bin/false"), &script, None, dir.path());
        assert_eq!(failing.err().expect("refused").code(), ErrorCode::InvalidRequest);
    }
}
