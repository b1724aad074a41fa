//! Text-to-SQL evaluation: `eval tables` (table discovery on Spider- or BIRD-format files) and
//! `eval sql` (the whole pipeline on a tables knowledge base over SQLite databases).
//!
//! Invariant: both measure the code users get. `eval tables` builds one catalogue of every
//! database in the file with the same [`TableIndex`] and ranking discovery uses, descriptions
//! from the files standing in for a knowledge base's; gold tables are the tables the gold SQL
//! reads. `eval sql` asks each question through [`Groundwork::ask_tables`] (discovery, prompt,
//! model, checks, run — as the administrator) and compares its rows with the gold SQL's, run
//! directly on the SQLite file, as result sets (order matters only when the gold SQL orders).

use crate::error::ServiceError;
use crate::home::Groundwork;
use crate::text_sql::{Stage, StageTimes, TableQuestion};
use groundwork_core::stats::percentile;
use groundwork_search::tables::{CardColumn, TableCard, TableIndex, TableRanking, words};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `eval tables`.
#[derive(Debug, Clone)]
pub struct TableEvalOptions {
    /// Spider/BIRD `tables.json`.
    pub tables: PathBuf,
    /// Questions with gold SQL (`question`, `SQL` or `query`, `db_id`, BIRD's `evidence`).
    pub questions: PathBuf,
    /// BIRD's `dev_databases_descriptions` folder (`<db>/database_description/<table>.csv`).
    pub descriptions: Option<PathBuf>,
    /// Append BIRD's evidence to each question.
    pub evidence: bool,
    pub limit: Option<usize>,
    /// Grow the catalogue to this many tables with renamed copies (for latency at scale);
    /// quality is measured over the original tables either way.
    pub synthetic_tables: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableEvalReport {
    pub databases: usize,
    pub tables: usize,
    pub questions: usize,
    /// Questions whose gold SQL could not be read or named no known table.
    pub skipped: usize,
    pub evidence: bool,
    pub recall_at_1: f64,
    pub recall_at_3: f64,
    pub recall_at_5: f64,
    pub recall_at_10: f64,
    /// Share of questions with every gold table in the top 5.
    pub all_gold_at_5: f64,
    pub mrr: f64,
    /// One table search (question embedding included).
    pub search_p50_ms: f64,
    pub search_p95_ms: f64,
    pub build_s: f64,
}

#[derive(Debug, Deserialize)]
struct SchemaFile {
    db_id: String,
    table_names_original: Vec<String>,
    #[serde(default)]
    table_names: Vec<String>,
    column_names_original: Vec<(i64, String)>,
    #[serde(default)]
    column_names: Vec<(i64, String)>,
    #[serde(default)]
    column_types: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct GoldQuestion {
    #[serde(default)]
    db_id: String,
    question: String,
    #[serde(default, alias = "query")]
    #[serde(rename = "SQL")]
    sql: String,
    #[serde(default)]
    evidence: String,
}

impl Groundwork {
    /// Table recall, all-gold share, MRR and latency of discovery over one merged catalogue.
    pub fn eval_tables(&self, options: &TableEvalOptions) -> Result<TableEvalReport, ServiceError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|e| ServiceError::invalid(format!("{}: {e}", path.display())))
        };
        let schemas: Vec<SchemaFile> = serde_json::from_slice(&read(&options.tables)?)
            .map_err(|e| ServiceError::invalid(format!("{}: {e}", options.tables.display())))?;
        let questions: Vec<GoldQuestion> = serde_json::from_slice(&read(&options.questions)?)
            .map_err(|e| ServiceError::invalid(format!("{}: {e}", options.questions.display())))?;
        let mut cards = Vec::new();
        // (db, lower-case table) → card id.
        let mut ids: HashMap<(String, String), u64> = HashMap::new();
        for schema in &schemas {
            let described = match &options.descriptions {
                Some(dir) => column_descriptions(&dir.join(&schema.db_id).join("database_description")),
                None => HashMap::new(),
            };
            for (t, table) in schema.table_names_original.iter().enumerate() {
                let id = cards.len() as u64;
                ids.insert((schema.db_id.clone(), table.to_ascii_lowercase()), id);
                let file = described.get(&table.to_ascii_lowercase());
                let columns: Vec<CardColumn> = schema
                    .column_names_original
                    .iter()
                    .enumerate()
                    .filter(|(_, (owner, _))| *owner == t as i64)
                    .map(|(c, (_, name))| {
                        let natural = schema.column_names.get(c).map(|(_, n)| n.as_str()).unwrap_or("");
                        let from_file = file.and_then(|f| f.get(&name.to_ascii_lowercase()));
                        let description = match from_file {
                            Some(text) if !text.is_empty() => text.clone(),
                            _ if words(natural) != words(name) => natural.to_owned(),
                            _ => String::new(),
                        };
                        CardColumn {
                            name: name.clone(),
                            data_type: schema.column_types.get(c).cloned().unwrap_or_default(),
                            description,
                            values: Vec::new(),
                        }
                    })
                    .collect();
                let natural = schema.table_names.get(t).cloned().unwrap_or_default();
                let description = if natural.is_empty() || words(&natural) == words(table) {
                    String::new()
                } else {
                    format!("{natural}.")
                };
                cards.push(TableCard {
                    id,
                    name: format!("{}.{table}", schema.db_id),
                    namespace: schema.db_id.clone(),
                    description,
                    columns,
                    examples: Vec::new(),
                    prior: 1.0,
                });
            }
        }
        let originals = cards.len();
        if let Some(target) = options.synthetic_tables {
            while cards.len() < target {
                let source = cards[cards.len() % originals].clone();
                let namespace = format!("{}_copy{}", source.namespace, cards.len() / originals);
                cards.push(TableCard {
                    id: cards.len() as u64,
                    name: format!("{namespace}.{}", source.name.split('.').nth(1).unwrap_or("")),
                    namespace,
                    ..source
                });
            }
        }
        let tables = cards.len();
        let embedder = self.embedder()?;
        let started = Instant::now();
        // Renamed copies repeat their columns' texts: each distinct text is embedded once.
        let mut cache: HashMap<String, Vec<f32>> = HashMap::new();
        let index = TableIndex::build(cards, embedder.dimension(), &mut |texts| {
            let missing: Vec<&str> = texts
                .iter()
                .copied()
                .filter(|t| !cache.contains_key(*t))
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            for batch in missing.chunks(64) {
                let vectors = embedder.embed(batch).map_err(|e| e.to_string())?;
                for (text, vector) in batch.iter().zip(vectors) {
                    cache.insert((*text).to_owned(), vector);
                }
            }
            Ok(texts.iter().map(|t| cache[*t].clone()).collect())
        })
        .map_err(|e| ServiceError::new(groundwork_core::ErrorCode::Internal, e))?;
        let build_s = started.elapsed().as_secs_f64();
        let ranking = TableRanking::default();
        let mut sums = [0.0f64; 4];
        let (mut all_gold, mut mrr, mut evaluated, mut skipped) = (0usize, 0.0f64, 0usize, 0usize);
        let mut latencies = Vec::new();
        for question in questions.iter().take(options.limit.unwrap_or(usize::MAX)) {
            let gold: HashSet<u64> = match groundwork_sql::safety::sqlite_tables_read(&question.sql) {
                Ok(names) => names
                    .into_iter()
                    .filter_map(|n| ids.get(&(question.db_id.clone(), n)).copied())
                    .collect(),
                Err(_) => HashSet::new(),
            };
            if gold.is_empty() {
                skipped += 1;
                continue;
            }
            let text = if options.evidence && !question.evidence.is_empty() {
                format!("{} {}", question.question, question.evidence)
            } else {
                question.question.clone()
            };
            let clock = Instant::now();
            let vector = embedder.embed(&[text.as_str()])?.pop();
            let hits = index
                .search(&text, vector.as_deref(), 10, None, &ranking)
                .map_err(|e| ServiceError::new(groundwork_core::ErrorCode::Internal, e))?;
            latencies.push(clock.elapsed().as_secs_f64() * 1e3);
            let ranked: Vec<u64> = hits.iter().map(|h| h.id).collect();
            for (slot, k) in [1usize, 3, 5, 10].into_iter().enumerate() {
                let found = ranked.iter().take(k).filter(|id| gold.contains(id)).count();
                sums[slot] += found as f64 / gold.len() as f64;
            }
            if gold.iter().all(|g| ranked.iter().take(5).any(|r| r == g)) {
                all_gold += 1;
            }
            if let Some(rank) = ranked.iter().position(|id| gold.contains(id)) {
                mrr += 1.0 / (rank + 1) as f64;
            }
            evaluated += 1;
        }
        let n = evaluated.max(1) as f64;
        Ok(TableEvalReport {
            databases: schemas.len(),
            tables,
            questions: evaluated,
            skipped,
            evidence: options.evidence,
            recall_at_1: sums[0] / n,
            recall_at_3: sums[1] / n,
            recall_at_5: sums[2] / n,
            recall_at_10: sums[3] / n,
            all_gold_at_5: all_gold as f64 / n,
            mrr: mrr / n,
            search_p50_ms: percentile(&latencies, 0.5),
            search_p95_ms: percentile(&latencies, 0.95),
            build_s,
        })
    }
}

/// BIRD's column descriptions: table (lower case) → column (lower case) → text. Files that are
/// not UTF-8 are read lossily; unreadable folders give nothing.
fn column_descriptions(dir: &Path) -> HashMap<String, HashMap<String, String>> {
    let mut out = HashMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("csv") {
            continue;
        }
        let Some(table) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim_start_matches('\u{feff}');
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(text.as_bytes());
        let mut columns = HashMap::new();
        for record in reader.records().flatten() {
            let field = |i: usize| record.get(i).unwrap_or("").trim().to_owned();
            let (original, expanded, description, values) = (field(0), field(1), field(2), field(4));
            let mut parts: Vec<String> = Vec::new();
            for part in [expanded, description, values] {
                if !part.is_empty()
                    && !parts.iter().any(|p| p.eq_ignore_ascii_case(&part))
                    && part != original
                {
                    parts.push(part.split_whitespace().collect::<Vec<_>>().join(" "));
                }
            }
            columns.insert(original.to_ascii_lowercase(), parts.join(". "));
        }
        out.insert(table.to_ascii_lowercase(), columns);
    }
    out
}

/// `eval sql`.
#[derive(Debug, Clone)]
pub struct SqlEvalOptions {
    /// A tables knowledge base whose sources include `database`.
    pub knowledge_base: String,
    /// The SQLite file the gold SQL runs on.
    pub database: PathBuf,
    /// Spider-format (`question`, `query`) or text2sql-data-format (`sentences`, `sql`,
    /// `variables`) questions.
    pub questions: PathBuf,
    pub limit: Option<usize>,
    pub model: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SqlEvalReport {
    pub knowledge_base: String,
    pub questions: usize,
    /// Gold SQL that did not run on the database (left out of the accuracy).
    pub gold_failed: usize,
    /// Generated SQL that passed the checks and ran.
    pub runnable: f64,
    /// Result sets equal to the gold ones.
    pub execution_accuracy: f64,
    /// Corrections per question (attempts after the first), mean.
    pub mean_retries: f64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Median milliseconds per stage.
    pub stage_p50_ms: StageTimes,
    /// Median of discovery + prompt + validation + execution.
    pub outside_model_p50_ms: f64,
    /// Per question: whether it matched, and the error if it failed.
    pub results: Vec<Value>,
}

impl Groundwork {
    /// Execution accuracy of the text-to-SQL pipeline on `options.questions`.
    pub fn eval_sql(&self, options: &SqlEvalOptions) -> Result<SqlEvalReport, ServiceError> {
        self.require_admin("eval.sql", Some(&options.knowledge_base))?;
        let questions = gold_pairs(&options.questions)?;
        let gold_db = rusqlite::Connection::open_with_flags(
            &options.database,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| ServiceError::invalid(format!("{}: {e}", options.database.display())))?;
        let mut report = SqlEvalReport {
            knowledge_base: options.knowledge_base.clone(),
            questions: 0,
            gold_failed: 0,
            runnable: 0.0,
            execution_accuracy: 0.0,
            mean_retries: 0.0,
            prompt_tokens: 0,
            completion_tokens: 0,
            stage_p50_ms: StageTimes::default(),
            outside_model_p50_ms: 0.0,
            results: Vec::new(),
        };
        let (mut runnable, mut correct, mut retries) = (0usize, 0usize, 0usize);
        let mut stages: Vec<StageTimes> = Vec::new();
        for (question, gold_sql) in questions.into_iter().take(options.limit.unwrap_or(usize::MAX)) {
            let Ok(gold) = sqlite_rows(&gold_db, &gold_sql) else {
                report.gold_failed += 1;
                continue;
            };
            report.questions += 1;
            let ordered = gold_sql.to_ascii_lowercase().contains("order by");
            let asked = self.ask_tables(
                &TableQuestion {
                    knowledge_base: options.knowledge_base.clone(),
                    question: question.clone(),
                    model: options.model.clone(),
                    stage: Stage::Rows,
                },
                None,
            );
            match asked {
                Ok(answer) => {
                    runnable += 1;
                    retries += answer.attempts.len().saturating_sub(1);
                    if let Some(usage) = answer.usage {
                        report.prompt_tokens += usage.prompt_tokens;
                        report.completion_tokens += usage.completion_tokens;
                    }
                    stages.push(answer.times);
                    let rows: Vec<Vec<String>> = answer
                        .rows
                        .iter()
                        .map(|row| answer.columns.iter().map(|(c, _)| cell(row.get(c))).collect())
                        .collect();
                    let matched = same_result(&gold, &rows, ordered);
                    correct += usize::from(matched);
                    report.results.push(json!({
                        "question": question, "matched": matched, "sql": answer.sql,
                        "attempts": answer.attempts.len(),
                    }));
                }
                Err(error) => {
                    retries += crate::text_sql::RETRIES;
                    report.results.push(json!({
                        "question": question, "matched": false, "error": error.code().as_str(),
                    }));
                }
            }
        }
        let n = report.questions.max(1) as f64;
        report.runnable = runnable as f64 / n;
        report.execution_accuracy = correct as f64 / n;
        report.mean_retries = retries as f64 / n;
        let p50 = |f: fn(&StageTimes) -> f64| percentile(&stages.iter().map(f).collect::<Vec<_>>(), 0.5);
        report.stage_p50_ms = StageTimes {
            discovery_ms: p50(|s| s.discovery_ms),
            prompt_ms: p50(|s| s.prompt_ms),
            model_ms: p50(|s| s.model_ms),
            validation_ms: p50(|s| s.validation_ms),
            execution_ms: p50(|s| s.execution_ms),
            answer_ms: p50(|s| s.answer_ms),
        };
        report.outside_model_p50_ms = p50(StageTimes::outside_model_ms);
        Ok(report)
    }
}

/// (question, gold SQL) pairs from Spider- or text2sql-data-format files. In the latter,
/// variables are substituted into both.
fn gold_pairs(path: &Path) -> Result<Vec<(String, String)>, ServiceError> {
    let bytes = std::fs::read(path).map_err(|e| ServiceError::invalid(format!("{}: {e}", path.display())))?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ServiceError::invalid(format!("{}: {e}", path.display())))?;
    let entries = value.as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for entry in entries {
        if let (Some(question), Some(sql)) = (
            entry["question"].as_str(),
            entry["query"].as_str().or_else(|| entry["SQL"].as_str()),
        ) {
            out.push((question.to_owned(), sql.to_owned()));
            continue;
        }
        // text2sql-data: several sentences share the first (shortest) SQL.
        let Some(sql) = entry["sql"]
            .as_array()
            .and_then(|s| s.iter().filter_map(Value::as_str).min_by_key(|s| s.len()))
        else {
            continue;
        };
        for sentence in entry["sentences"].as_array().cloned().unwrap_or_default() {
            let (Some(text), Some(variables)) =
                (sentence["text"].as_str(), sentence["variables"].as_object())
            else {
                continue;
            };
            let (mut text, mut sql) = (text.to_owned(), sql.to_owned());
            for (name, value) in variables {
                let value = value.as_str().unwrap_or_default();
                text = text.replace(name.as_str(), value);
                sql = sql
                    .replace(&format!("\"{name}\""), &format!("'{value}'"))
                    .replace(name.as_str(), value);
            }
            out.push((text, sql));
        }
    }
    if out.is_empty() {
        return Err(ServiceError::invalid(format!(
            "{}: no questions with gold SQL (expected Spider or text2sql-data format)",
            path.display()
        )));
    }
    Ok(out)
}

fn sqlite_rows(connection: &rusqlite::Connection, sql: &str) -> rusqlite::Result<Vec<Vec<String>>> {
    let mut statement = connection.prepare(sql)?;
    let width = statement.column_count();
    let mut rows = statement.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut cells = Vec::with_capacity(width);
        for i in 0..width {
            let value = match row.get_ref(i)? {
                rusqlite::types::ValueRef::Null => Value::Null,
                rusqlite::types::ValueRef::Integer(n) => json!(n),
                rusqlite::types::ValueRef::Real(x) => json!(x),
                rusqlite::types::ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
                rusqlite::types::ValueRef::Blob(b) => Value::String(hex::encode(b)),
            };
            cells.push(cell(Some(&value)));
        }
        out.push(cells);
        if out.len() > 100_000 {
            break;
        }
    }
    Ok(out)
}

/// One value in the form results are compared in: numbers rounded, text trimmed.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "NULL".into(),
        Some(Value::Number(n)) => n.as_f64().map_or_else(|| n.to_string(), number),
        Some(Value::String(s)) => match s.trim().parse::<f64>() {
            Ok(x)
                if s.trim()
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | 'e' | 'E' | '+')) =>
            {
                number(x)
            }
            _ => s.trim().to_owned(),
        },
        Some(other) => other.to_string(),
    }
}

fn number(x: f64) -> String {
    let rounded = (x * 1e6).round() / 1e6;
    if rounded == rounded.trunc() && rounded.abs() < 1e15 {
        format!("{}", rounded as i64)
    } else {
        format!("{rounded}")
    }
}

/// Result sets compared as Spider and BIRD do: the same rows (as multisets, or in order when
/// the gold SQL orders), columns compared by position.
fn same_result(gold: &[Vec<String>], ours: &[Vec<String>], ordered: bool) -> bool {
    if gold.len() != ours.len() {
        return false;
    }
    if ordered {
        return gold == ours;
    }
    let mut a = gold.to_vec();
    let mut b = ours.to_vec();
    a.sort();
    b.sort();
    a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_compare_as_sets_unless_ordered() {
        let gold = vec![
            vec!["1".to_owned(), "a".to_owned()],
            vec!["2".to_owned(), "b".to_owned()],
        ];
        let swapped = vec![gold[1].clone(), gold[0].clone()];
        assert!(same_result(&gold, &swapped, false));
        assert!(!same_result(&gold, &swapped, true));
        assert!(!same_result(&gold, &gold[..1], false));
        assert_eq!(cell(Some(&json!(2.0))), "2");
        assert_eq!(cell(Some(&json!("2.50"))), "2.5");
        assert_eq!(cell(Some(&json!(1.0 / 3.0))), "0.333333");
        assert_eq!(cell(Some(&json!(" Ada "))), "Ada");
    }
}
