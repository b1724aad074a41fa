//! Retrieval evaluation on BEIR-format data: nDCG@10, recall@100 and MRR@10 per search type.
//!
//! The corpus goes through the real pipeline: each document is written as a text file into a
//! folder under the home directory, synced into a knowledge base like any other folder, and
//! queried through the same [`Searcher`] users get. Chunk hits are folded into document hits
//! (a document ranks where its best chunk ranks), as BEIR judges documents.

use crate::error::ServiceError;
use crate::search::{SearchRequest, Searcher};
use groundwork_index::SearchType;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;

/// Documents per query considered for recall@100.
const DEPTH: usize = 100;

#[derive(Debug, Deserialize)]
struct BeirDocument {
    #[serde(rename = "_id")]
    id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    text: String,
}

#[derive(Debug, Deserialize)]
struct BeirQuery {
    #[serde(rename = "_id")]
    id: String,
    text: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RetrievalMetrics {
    pub ndcg_at_10: f64,
    pub recall_at_100: f64,
    pub mrr_at_10: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalRow {
    pub search_type: SearchType,
    pub queries: usize,
    pub metrics: RetrievalMetrics,
    /// Median latency of a search call, audit record included.
    pub p50_ms: f64,
    /// Median time of the audit append within it.
    pub audit_p50_ms: f64,
    /// Latency of each query in milliseconds, including query embedding and the audit
    /// record, in query order.
    #[serde(skip)]
    pub latencies_ms: Vec<f64>,
    /// Of each latency, the part spent appending the audit record.
    #[serde(skip)]
    pub audit_ms: Vec<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub knowledge_base: String,
    pub documents: usize,
    pub rows: Vec<EvalRow>,
}

/// Queries with their judged-relevant documents and grades.
pub struct Judgements {
    pub queries: Vec<(String, String)>,
    pub qrels: HashMap<String, HashMap<String, u32>>,
}

/// Writes each corpus document to `<dir>/<id>.txt` (title, blank line, text). Files whose
/// content is already right are left alone, so re-running does not look like a change.
pub fn write_corpus_folder(corpus: &Path, dir: &Path) -> Result<usize, ServiceError> {
    std::fs::create_dir_all(dir)?;
    let file = std::fs::File::open(corpus)
        .map_err(|e| ServiceError::invalid(format!("{}: {e}", corpus.display())))?;
    let mut count = 0;
    for (number, line) in BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let document: BeirDocument = serde_json::from_str(&line)
            .map_err(|e| ServiceError::invalid(format!("{} line {}: {e}", corpus.display(), number + 1)))?;
        let name: String = document
            .id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{name}.txt"));
        let content = format!("{}\n\n{}\n", document.title, document.text);
        if std::fs::read(&path).ok().as_deref() != Some(content.as_bytes()) {
            std::fs::write(&path, content)?;
        }
        count += 1;
    }
    Ok(count)
}

/// Reads BEIR `queries.jsonl` and a qrels TSV (`query-id corpus-id score`, with a header).
/// Only queries that have judgements are kept, in file order.
pub fn read_judgements(queries: &Path, qrels: &Path) -> Result<Judgements, ServiceError> {
    let mut judged: HashMap<String, HashMap<String, u32>> = HashMap::new();
    let text = std::fs::read_to_string(qrels)
        .map_err(|e| ServiceError::invalid(format!("{}: {e}", qrels.display())))?;
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() < 3 {
            continue;
        }
        let grade: u32 = fields[2].trim().parse().unwrap_or(0);
        judged
            .entry(fields[0].to_string())
            .or_default()
            .insert(fields[1].to_string(), grade);
    }
    let text = std::fs::read_to_string(queries)
        .map_err(|e| ServiceError::invalid(format!("{}: {e}", queries.display())))?;
    let mut list = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let query: BeirQuery = serde_json::from_str(line)
            .map_err(|e| ServiceError::invalid(format!("{} line {}: {e}", queries.display(), number + 1)))?;
        if judged.contains_key(&query.id) {
            list.push((query.id, query.text));
        }
    }
    Ok(Judgements {
        queries: list,
        qrels: judged,
    })
}

/// Runs every query with each search type and scores the rankings.
pub fn evaluate(
    searcher: &Searcher<'_>,
    judgements: &Judgements,
    search_types: &[SearchType],
) -> Result<Vec<EvalRow>, ServiceError> {
    let mut rows = Vec::new();
    for &search_type in search_types {
        let mut totals = RetrievalMetrics::default();
        let mut latencies_ms = Vec::with_capacity(judgements.queries.len());
        let mut audit_ms = Vec::with_capacity(judgements.queries.len());
        for (query_id, text) in &judgements.queries {
            let started = std::time::Instant::now();
            let response = searcher.search(&SearchRequest {
                query: text.clone(),
                // Chunks, not documents: over-fetch so that DEPTH distinct documents remain.
                k: DEPTH * 2,
                search_type: Some(search_type),
                filter: None,
            })?;
            // `took_ms` covers the retrieval alone; the rest of the call is the audit append.
            let total_ms = started.elapsed().as_secs_f64() * 1e3;
            latencies_ms.push(total_ms);
            audit_ms.push((total_ms - response.took_ms).max(0.0));
            let mut seen = HashSet::new();
            let ranking: Vec<String> = response
                .hits
                .iter()
                .map(|hit| document_id_from_uri(&hit.uri))
                .filter(|id| seen.insert(id.clone()))
                .take(DEPTH)
                .collect();
            let metrics = score_ranking(&ranking, &judgements.qrels[query_id]);
            totals.ndcg_at_10 += metrics.ndcg_at_10;
            totals.recall_at_100 += metrics.recall_at_100;
            totals.mrr_at_10 += metrics.mrr_at_10;
        }
        let n = judgements.queries.len().max(1) as f64;
        rows.push(EvalRow {
            search_type,
            queries: judgements.queries.len(),
            metrics: RetrievalMetrics {
                ndcg_at_10: totals.ndcg_at_10 / n,
                recall_at_100: totals.recall_at_100 / n,
                mrr_at_10: totals.mrr_at_10 / n,
            },
            p50_ms: groundwork_core::stats::percentile(&latencies_ms, 0.5),
            audit_p50_ms: groundwork_core::stats::percentile(&audit_ms, 0.5),
            latencies_ms,
            audit_ms,
        });
    }
    Ok(rows)
}

/// The BEIR document id is the file stem of `<dir>/<id>.txt`.
fn document_id_from_uri(uri: &str) -> String {
    let name = uri.rsplit('/').next().unwrap_or(uri);
    name.strip_suffix(".txt").unwrap_or(name).to_string()
}

/// nDCG@10 (linear gains), recall@100 and MRR@10 of one ranking against graded judgements.
pub fn score_ranking(ranking: &[String], relevant: &HashMap<String, u32>) -> RetrievalMetrics {
    let gain = |id: &String| relevant.get(id).copied().unwrap_or(0) as f64;
    let dcg: f64 = ranking
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, id)| gain(id) / ((i + 2) as f64).log2())
        .sum();
    let mut ideal: Vec<f64> = relevant
        .values()
        .map(|&g| g as f64)
        .filter(|&g| g > 0.0)
        .collect();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, g)| g / ((i + 2) as f64).log2())
        .sum();
    let relevant_count = ideal.len();
    let found = ranking.iter().take(DEPTH).filter(|id| gain(id) > 0.0).count();
    let first = ranking.iter().take(10).position(|id| gain(id) > 0.0);
    RetrievalMetrics {
        ndcg_at_10: if idcg > 0.0 { dcg / idcg } else { 0.0 },
        recall_at_100: if relevant_count > 0 {
            found as f64 / relevant_count as f64
        } else {
            0.0
        },
        mrr_at_10: first.map_or(0.0, |p| 1.0 / (p + 1) as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_and_missing_rankings() {
        let relevant: HashMap<String, u32> = [("a".to_string(), 1), ("b".to_string(), 1)].into();
        let perfect = score_ranking(&["a".into(), "b".into(), "c".into()], &relevant);
        assert!((perfect.ndcg_at_10 - 1.0).abs() < 1e-12);
        assert_eq!(perfect.recall_at_100, 1.0);
        assert_eq!(perfect.mrr_at_10, 1.0);
        let second = score_ranking(&["c".into(), "a".into()], &relevant);
        assert_eq!(second.mrr_at_10, 0.5);
        assert_eq!(second.recall_at_100, 0.5);
        let expected = (1.0 / 3f64.log2()) / (1.0 + 1.0 / 3f64.log2());
        assert!((second.ndcg_at_10 - expected).abs() < 1e-12);
        assert_eq!(score_ranking(&[], &relevant), RetrievalMetrics::default());
    }
}

/// Where `eval retrieval` finds its data.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub corpus: std::path::PathBuf,
    pub queries: std::path::PathBuf,
    pub qrels: std::path::PathBuf,
    pub search_types: Vec<SearchType>,
}

impl crate::home::Groundwork {
    /// Builds (or incrementally refreshes) a knowledge base from a BEIR corpus and scores every
    /// search type on it. The knowledge base is named after the corpus file's folder, so a
    /// second run re-syncs nothing and re-embeds nothing.
    pub fn eval_retrieval(
        &self,
        options: &EvalOptions,
        observer: &mut dyn crate::SyncObserver,
    ) -> Result<EvalReport, ServiceError> {
        let stem = options
            .corpus
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .unwrap_or("corpus");
        let kb_name: String = format!("eval-{stem}")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let folder = self.home().join("eval").join(&kb_name);
        let documents = write_corpus_folder(&options.corpus, &folder)?;
        if self.store().kb(&kb_name).is_err() {
            self.create_kb(&kb_name, Default::default())?;
            self.add_source(&kb_name, &folder.to_string_lossy(), Default::default())?;
        }
        self.sync(&kb_name, observer)?;
        let judgements = read_judgements(&options.queries, &options.qrels)?;
        let searcher = self.searcher(&kb_name)?;
        let rows = evaluate(&searcher, &judgements, &options.search_types)?;
        Ok(EvalReport {
            knowledge_base: kb_name,
            documents,
            rows,
        })
    }
}
