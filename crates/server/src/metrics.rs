//! Prometheus metrics in the text exposition format, kept by hand: a few counters and one
//! latency histogram need no metrics framework.
//!
//! Labels are route templates (`/v1/knowledge-bases/{name}/retrieve`), never raw paths, so a
//! client cannot grow the series without bound by requesting made-up URLs.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct RouteSeries {
    /// Requests by status code.
    by_status: BTreeMap<u16, u64>,
    /// Cumulative counts per bucket, then +Inf.
    buckets: [u64; BUCKETS.len() + 1],
    seconds_sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<(String, String), RouteSeries>>,
    in_flight: AtomicU64,
    syncs_succeeded: AtomicU64,
    syncs_failed: AtomicU64,
    tokens_embedded: AtomicU64,
    embedding_millis: AtomicU64,
    answers_generated: AtomicU64,
    llm_prompt_tokens: AtomicU64,
    llm_completion_tokens: AtomicU64,
}

impl Metrics {
    pub fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn request_finished(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let series = routes.entry((method.to_owned(), route.to_owned())).or_default();
        *series.by_status.entry(status).or_default() += 1;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                series.buckets[i] += 1;
            }
        }
        series.buckets[BUCKETS.len()] += 1;
        series.seconds_sum += seconds;
    }

    pub fn sync_finished(&self, ok: bool, tokens_embedded: usize, duration_ms: u64) {
        if ok {
            self.syncs_succeeded.fetch_add(1, Ordering::Relaxed);
        } else {
            self.syncs_failed.fetch_add(1, Ordering::Relaxed);
        }
        self.tokens_embedded
            .fetch_add(tokens_embedded as u64, Ordering::Relaxed);
        self.embedding_millis.fetch_add(duration_ms, Ordering::Relaxed);
    }

    /// Counts an answer and, when a model wrote it and reported usage, its tokens.
    pub fn generated(&self, usage: Option<groundwork_core::TokenUsage>) {
        self.answers_generated.fetch_add(1, Ordering::Relaxed);
        if let Some(usage) = usage {
            self.llm_prompt_tokens
                .fetch_add(usage.prompt_tokens, Ordering::Relaxed);
            self.llm_completion_tokens
                .fetch_add(usage.completion_tokens, Ordering::Relaxed);
        }
    }

    /// The exposition text; `syncs_running` comes from the job table.
    pub fn render(&self, syncs_running: usize) -> String {
        let mut out = String::new();
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str("# HELP groundwork_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE groundwork_http_requests_total counter\n");
        for ((method, route), series) in routes.iter() {
            for (status, count) in &series.by_status {
                let _ = writeln!(
                    out,
                    "groundwork_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}"
                );
            }
        }
        out.push_str("# HELP groundwork_http_request_duration_seconds Request latency by route.\n");
        out.push_str("# TYPE groundwork_http_request_duration_seconds histogram\n");
        for ((method, route), series) in routes.iter() {
            let labels = format!("method=\"{method}\",route=\"{route}\"");
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "groundwork_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    series.buckets[i]
                );
            }
            let total = series.buckets[BUCKETS.len()];
            let _ = writeln!(
                out,
                "groundwork_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {total}"
            );
            let _ = writeln!(
                out,
                "groundwork_http_request_duration_seconds_sum{{{labels}}} {}",
                series.seconds_sum
            );
            let _ = writeln!(
                out,
                "groundwork_http_request_duration_seconds_count{{{labels}}} {total}"
            );
        }
        let gauges = [
            (
                "groundwork_http_requests_in_flight",
                "gauge",
                "Requests being handled.",
                self.in_flight.load(Ordering::Relaxed),
            ),
            (
                "groundwork_syncs_running",
                "gauge",
                "Sync jobs running.",
                syncs_running as u64,
            ),
            (
                "groundwork_resident_memory_bytes",
                "gauge",
                "Resident memory of the server process (0 where unknown).",
                resident_memory_bytes().unwrap_or(0),
            ),
            (
                "groundwork_syncs_succeeded_total",
                "counter",
                "Sync jobs that succeeded.",
                self.syncs_succeeded.load(Ordering::Relaxed),
            ),
            (
                "groundwork_syncs_failed_total",
                "counter",
                "Sync jobs that failed.",
                self.syncs_failed.load(Ordering::Relaxed),
            ),
            (
                "groundwork_embedding_tokens_total",
                "counter",
                "Tokens embedded by syncs.",
                self.tokens_embedded.load(Ordering::Relaxed),
            ),
            (
                "groundwork_answers_total",
                "counter",
                "Answers returned (generated or extractive).",
                self.answers_generated.load(Ordering::Relaxed),
            ),
            (
                "groundwork_llm_prompt_tokens_total",
                "counter",
                "Prompt tokens sent to language models.",
                self.llm_prompt_tokens.load(Ordering::Relaxed),
            ),
            (
                "groundwork_llm_completion_tokens_total",
                "counter",
                "Tokens written by language models.",
                self.llm_completion_tokens.load(Ordering::Relaxed),
            ),
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        }
        let _ = writeln!(
            out,
            "# HELP groundwork_sync_seconds_total Wall time of finished syncs (embedding throughput = tokens / seconds).\n# TYPE groundwork_sync_seconds_total counter\ngroundwork_sync_seconds_total {}",
            self.embedding_millis.load(Ordering::Relaxed) as f64 / 1000.0
        );
        out
    }
}

/// How queries were embedded (`Groundwork::query_embedding_stats`): batching by the gatherer,
/// and the query cache, whose hits are searches that did not run the model.
pub fn render_query_embedding(stats: &groundwork_service::QueryEmbeddingStats) -> String {
    let series = [
        (
            "groundwork_query_embed_calls_total",
            "counter",
            "Query embedding calls that went through the gathering queue.",
            stats.gathered_calls,
        ),
        (
            "groundwork_query_embed_batches_total",
            "counter",
            "Batched model calls made for gathered queries.",
            stats.batches,
        ),
        (
            "groundwork_query_embed_batched_texts_total",
            "counter",
            "Texts in batched model calls (divided by batches: the mean batch).",
            stats.batched_texts,
        ),
        (
            "groundwork_query_embed_largest_batch",
            "gauge",
            "The most texts one batched model call held.",
            stats.largest_batch,
        ),
        (
            "groundwork_query_embed_direct_calls_total",
            "counter",
            "Query-time embedding calls made straight to the model (many texts, or gathering off).",
            stats.direct_calls,
        ),
        (
            "groundwork_query_cache_capacity",
            "gauge",
            "Query vectors the cache may hold ([search] query_cache_entries; 0: off).",
            stats.cache_capacity as u64,
        ),
        (
            "groundwork_query_cache_entries",
            "gauge",
            "Query vectors the cache holds.",
            stats.cache_entries as u64,
        ),
        (
            "groundwork_query_cache_hits_total",
            "counter",
            "Queries answered from the query cache (the model did not run).",
            stats.cache_hits,
        ),
        (
            "groundwork_query_cache_misses_total",
            "counter",
            "Queries the cache did not hold.",
            stats.cache_misses,
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, value) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    }
    out
}

/// The process's resident memory, from `/proc/self/statm` (Linux); `None` elsewhere.
pub fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.request_started();
        metrics.request_finished("POST", "/v1/knowledge-bases/{name}/retrieve", 200, 0.02);
        let text = metrics.render(0);
        assert!(text.contains(
            "groundwork_http_requests_total{method=\"POST\",route=\"/v1/knowledge-bases/{name}/retrieve\",status=\"200\"} 1"
        ));
        assert!(text.contains("le=\"0.01\"} 0"));
        assert!(text.contains("le=\"0.025\"} 1"));
        assert!(text.contains("le=\"+Inf\"} 1"));
        assert!(text.contains("groundwork_http_requests_in_flight 0"));
    }

    #[test]
    fn renders_query_embedding_counters() {
        let stats = groundwork_service::QueryEmbeddingStats {
            gathered_calls: 10,
            batches: 3,
            batched_texts: 10,
            largest_batch: 6,
            direct_calls: 1,
            cache_capacity: 64,
            cache_entries: 5,
            cache_hits: 4,
            cache_misses: 6,
        };
        let text = render_query_embedding(&stats);
        for line in [
            "# TYPE groundwork_query_embed_batches_total counter",
            "groundwork_query_embed_calls_total 10",
            "groundwork_query_embed_batches_total 3",
            "groundwork_query_embed_batched_texts_total 10",
            "# TYPE groundwork_query_embed_largest_batch gauge",
            "groundwork_query_embed_largest_batch 6",
            "groundwork_query_embed_direct_calls_total 1",
            "groundwork_query_cache_capacity 64",
            "groundwork_query_cache_entries 5",
            "groundwork_query_cache_hits_total 4",
            "groundwork_query_cache_misses_total 6",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
