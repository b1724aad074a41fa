//! Questions over tables: discover the tables, prompt a model with their schemas, check and run
//! the SQL it writes as the asker, and answer from the rows.
//!
//! Invariant: the model is untrusted. Its SQL goes through exactly the checks a person's SQL
//! goes through (one read-only statement, tables the asker may read, their row filters and
//! masks applied by plan rewriting, limits, `EXPLAIN` before running), as the asker, so what
//! the prompt said — or what a description, a value or a document told the model — cannot
//! widen what the answer reads. The prompt itself shows only tables the asker may read, only
//! columns they see, and frequent values only of columns they see whole. A failed check goes
//! back to the model at most [`RETRIES`] times. One `ask` record holds the tables discovered,
//! every attempt with its outcome, the SQL run, the rows returned, the models and tokens.

use crate::discovery::{FoundTable, frequent_values, visible_columns};
use crate::error::ServiceError;
use crate::home::Groundwork;
use crate::tables::Table;
use groundwork_core::{ErrorCode, KnowledgeBase, LlmConfig, TokenUsage};
use groundwork_llm::sql_prompt::{self, FailedAttempt, PromptColumn, PromptExample, PromptTable};
use groundwork_llm::{ChatModel, ChatRequest, ChatResponse};
use groundwork_sql::{QueryEngine, RecordBatch, TablePolicy, TouchedTable};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::time::Instant;

/// Times the model may correct a query after a failed check.
pub const RETRIES: usize = 2;
/// Tables discovered for a question.
const DISCOVERED: usize = 5;
/// Characters of schema the prompt holds before columns are pruned.
const SCHEMA_BUDGET: usize = 12_000;
/// Verified examples shown at most.
const EXAMPLES: usize = 3;
/// Result rows shown to the model at most, and characters of them.
const ANSWER_ROWS: usize = 50;
const ANSWER_CHARS: usize = 8_000;

/// A question over a tables knowledge base.
#[derive(Debug, Clone)]
pub struct TableQuestion {
    pub knowledge_base: String,
    pub question: String,
    /// An entry of `[llms]`, in place of the knowledge base's and the default model.
    pub model: Option<String>,
    /// What to do with the SQL once it passed the checks.
    pub stage: Stage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Return the checked SQL without running it (`sql --generate`, `generate-query`).
    Generate,
    /// Run it and return the rows (structured `retrieve`).
    Rows,
    /// Run it and answer from the rows (`ask`), unless the knowledge base keeps rows from
    /// the model.
    Answer,
}

/// One try of the model.
#[derive(Debug, Clone, Serialize)]
pub struct SqlAttempt {
    /// The SQL it wrote (`None`: the reply held none).
    pub sql: Option<String>,
    /// Why it was refused; `None` for the attempt that passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// Milliseconds per stage.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StageTimes {
    pub discovery_ms: f64,
    pub prompt_ms: f64,
    pub model_ms: f64,
    pub validation_ms: f64,
    pub execution_ms: f64,
    pub answer_ms: f64,
}

impl StageTimes {
    /// Everything outside the model.
    pub fn outside_model_ms(&self) -> f64 {
        self.discovery_ms + self.prompt_ms + self.validation_ms + self.execution_ms
    }
}

/// What a question over tables produced.
#[derive(Debug, Clone, Serialize)]
pub struct TableAnswer {
    pub knowledge_base: String,
    pub question: String,
    /// `generated` (an answer written from the rows), `rows` (the SQL and rows only), `sql`
    /// (the checked SQL, not run), `no_answer` (no readable table matched), `blocked` (the
    /// guardrail policy stopped the question or the answer).
    pub mode: String,
    pub text: String,
    /// The statement that passed the checks (and ran, unless `mode` is `sql`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    pub dialect: String,
    /// The citations: the tables the SQL read, at the versions read, with what governed them.
    pub tables: Vec<TouchedTable>,
    pub columns: Vec<(String, String)>,
    pub rows: Vec<Map<String, Value>>,
    pub truncated: bool,
    pub attempts: Vec<SqlAttempt>,
    /// The tables discovery offered the model.
    pub discovered: Vec<FoundTable>,
    pub models: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<TokenUsage>,
    pub times: StageTimes,
}

impl Groundwork {
    /// Answers `request.question` over a tables knowledge base as this handle's actor (see the
    /// module's invariant). `on_delta` receives the answer's text as the model writes it.
    pub fn ask_tables(
        &self,
        request: &TableQuestion,
        on_delta: Option<&mut dyn FnMut(&str)>,
    ) -> Result<TableAnswer, ServiceError> {
        let started = Instant::now();
        let action = if request.stage == Stage::Generate {
            "sql.generate"
        } else {
            "ask"
        };
        let mut entry = self.entry(
            action,
            Some(&request.knowledge_base),
            json!({ "query": request.question, "kind": "tables" }),
        );
        let mut trace = Trace::default();
        let result = self.ask_tables_inner(request, on_delta, &mut trace);
        entry.request["discovered"] = json!(trace.discovered);
        entry.request["attempts"] = json!(trace.attempts);
        if !trace.guardrail.is_empty() {
            entry.request["guardrail"] = json!(trace.guardrail);
        }
        if let Ok(answer) = &result {
            entry.request["sql"] = json!(answer.sql);
            entry.request["tables"] = serde_json::to_value(&answer.tables).unwrap_or(Value::Null);
            entry.request["rows"] = json!(answer.rows.len());
            entry.request["truncated"] = json!(answer.truncated);
            entry.request["mode"] = json!(answer.mode);
            entry.request["usage"] = json!(answer.usage);
        }
        entry.models = trace.models;
        self.record_read(entry, started, &result, Vec::new())?;
        result
    }

    fn ask_tables_inner(
        &self,
        request: &TableQuestion,
        on_delta: Option<&mut dyn FnMut(&str)>,
        trace: &mut Trace,
    ) -> Result<TableAnswer, ServiceError> {
        let mut times = StageTimes::default();
        let kb = self.tables_kb(&request.knowledge_base)?;
        let llm = self.sql_model(&kb, request.model.as_deref())?;
        // The knowledge base's guardrail policy screens the question before anything runs and
        // the written answer before it is returned (a table answer has no passages to ground
        // it in, so the grounding check does not apply).
        let guard = self.guardrail_for(&kb)?;
        let mut question = request.question.clone();
        if let Some(guard) = &guard {
            let input = guard.check_input(&question);
            trace.guardrail.push(format!("input: {:?}", input.action));
            if input.blocked {
                return Ok(blocked(request, &kb, input.output_text, trace));
            }
            if input.intervened() {
                question = input.output_text;
            }
        }
        let request = &TableQuestion {
            question,
            ..request.clone()
        };
        let engine = self.sql_engine()?;
        let dialect = engine.dialect().to_owned();
        let clock = Instant::now();
        let policy = self.access_policy()?;
        let readable = self.readable_tables(&kb, &policy)?;
        let discovered = self.find_tables(&kb, &readable, &request.question, DISCOVERED)?;
        trace
            .models
            .push(self.embedder_for(&kb)?.fingerprint().to_owned());
        trace.discovered = discovered.iter().map(|t| t.name.clone()).collect();
        times.discovery_ms = ms(clock);
        let mut answer = TableAnswer {
            knowledge_base: kb.name.clone(),
            question: request.question.clone(),
            mode: "no_answer".into(),
            text: "No table you can read in the knowledge base matches this question.".into(),
            sql: None,
            dialect,
            tables: Vec::new(),
            columns: Vec::new(),
            rows: Vec::new(),
            truncated: false,
            attempts: Vec::new(),
            discovered: discovered.clone(),
            models: Vec::new(),
            usage: None,
            times,
        };
        if discovered.is_empty() {
            // Nothing readable matched: no call to the model, which could only invent.
            answer.models = trace.models.clone();
            return Ok(answer);
        }
        let clock = Instant::now();
        let chosen: Vec<&(Table, TablePolicy)> = discovered
            .iter()
            .filter_map(|found| readable.iter().find(|(t, _)| t.def.name == found.name))
            .collect();
        let prompt_tables = self.prompt_tables(&kb, &chosen, &discovered)?;
        let examples = self.prompt_examples(&kb, &readable, &request.question)?;
        answer.times.prompt_ms = ms(clock);
        let model = groundwork_llm::connect(&llm).map_err(generation_error)?;
        trace.models.push(model.id());
        let mut usage = TokenUsage::default();
        let mut failures: Vec<FailedAttempt> = Vec::new();
        let mut passed: Option<(String, Option<groundwork_sql::QueryOutcome>, Vec<RecordBatch>)> = None;
        for _ in 0..=RETRIES {
            let chat = sql_prompt::build_sql(
                &request.question,
                &answer.dialect,
                &prompt_tables,
                &examples,
                &failures,
                llm.limits(),
            );
            let clock = Instant::now();
            let reply = call(model.as_ref(), &chat, None, &mut usage)?;
            answer.times.model_ms += ms(clock);
            let Some(sql) = sql_prompt::extract_sql(&reply.text) else {
                let error = "the reply held no SQL query".to_owned();
                trace.attempts.push(SqlAttempt {
                    sql: None,
                    error: Some(error.clone()),
                    code: Some(ErrorCode::NoQuery.as_str().into()),
                });
                failures.push(FailedAttempt {
                    sql: reply.text.chars().take(2000).collect(),
                    error,
                });
                continue;
            };
            // Exactly the checks of a person's SQL, as the asker: parse, read-only, governed
            // plan, EXPLAIN; then, unless only the SQL is wanted, the run itself.
            let clock = Instant::now();
            let checked = self.run_governed(&kb, &policy, &sql, true, &mut |_| Ok(true));
            answer.times.validation_ms += ms(clock);
            let checked = checked.and_then(|outcome| {
                if request.stage == Stage::Generate {
                    return Ok((None, Vec::new()));
                }
                let clock = Instant::now();
                let mut batches = Vec::new();
                let ran = self.run_governed(&kb, &policy, &sql, false, &mut |batch| {
                    batches.push(batch.clone());
                    Ok(true)
                });
                answer.times.execution_ms += ms(clock);
                let _ = outcome;
                ran.map(|outcome| (Some(outcome), batches))
            });
            match checked {
                Ok((outcome, batches)) => {
                    trace.attempts.push(SqlAttempt {
                        sql: Some(sql.clone()),
                        error: None,
                        code: None,
                    });
                    passed = Some((sql, outcome, batches));
                    break;
                }
                Err(error) => {
                    trace.attempts.push(SqlAttempt {
                        sql: Some(sql.clone()),
                        error: Some(error.to_string()),
                        code: Some(error.code().as_str().into()),
                    });
                    failures.push(FailedAttempt {
                        sql,
                        error: error.to_string(),
                    });
                }
            }
        }
        answer.attempts = trace.attempts.clone();
        answer.usage = Some(usage);
        answer.models = trace.models.clone();
        let Some((sql, outcome, batches)) = passed else {
            return Err(ServiceError::new(
                ErrorCode::NoQuery,
                format!(
                    "the model wrote no query that passed the checks in {} attempts; the last error: {}",
                    RETRIES + 1,
                    failures.last().map_or("none", |f| f.error.as_str())
                ),
            ));
        };
        answer.sql = Some(sql.clone());
        let Some(outcome) = outcome else {
            answer.mode = "sql".into();
            answer.text = String::new();
            return Ok(answer);
        };
        answer.rows = groundwork_sql::output::rows_json(&batches)?;
        answer.columns = outcome.columns.clone();
        answer.truncated = outcome.truncated;
        answer.tables = outcome.tables.clone();
        if request.stage == Stage::Rows || !kb.config.send_rows_to_model {
            answer.mode = "rows".into();
            answer.text = format!(
                "{} row{}{}.",
                answer.rows.len(),
                if answer.rows.len() == 1 { "" } else { "s" },
                if answer.truncated {
                    " (cut at the limit)"
                } else {
                    ""
                }
            );
            return Ok(answer);
        }
        let clock = Instant::now();
        let (shown, cut) = rows_text(&answer.columns, &answer.rows);
        let chat = sql_prompt::build_answer(
            &request.question,
            &sql,
            &shown,
            cut || answer.truncated,
            llm.limits(),
        );
        let reply = call(model.as_ref(), &chat, on_delta, &mut usage)?;
        answer.times.answer_ms = ms(clock);
        answer.usage = Some(usage);
        answer.mode = "generated".into();
        answer.text = reply.text.trim().to_owned();
        if let Some(guard) = &guard {
            let output = guard.check_output(&answer.text, None);
            trace.guardrail.push(format!("output: {:?}", output.action));
            if output.blocked {
                answer.mode = "blocked".into();
                answer.text = output.output_text;
                answer.rows.clear();
            } else if output.intervened() {
                answer.text = output.output_text;
            }
        }
        Ok(answer)
    }

    /// The model that writes SQL for `kb`: `name` under `[llms]`, else the knowledge base's,
    /// else `[llm]`; without one, text-to-SQL is refused (`no_query`).
    fn sql_model(&self, kb: &KnowledgeBase, name: Option<&str>) -> Result<LlmConfig, ServiceError> {
        let config = self.config();
        match name {
            Some(name) => config.llms.get(name).cloned().ok_or_else(|| {
                ServiceError::invalid(format!("no model `{name}` under [llms] in config.toml"))
            }),
            None => kb
                .config
                .llm
                .clone()
                .or_else(|| config.llm.clone())
                .ok_or_else(|| {
                    ServiceError::new(
                        ErrorCode::NoQuery,
                        "questions over tables need a model to write SQL: configure [llm] in config.toml \
                     (or run SQL yourself with `groundwork sql`)",
                    )
                }),
        }
    }

    /// The discovered tables as the prompt shows them to this asker: visible columns only,
    /// frequent values only where their view is the whole table, pruned to the budget.
    fn prompt_tables(
        &self,
        kb: &KnowledgeBase,
        chosen: &[&(Table, TablePolicy)],
        discovered: &[FoundTable],
    ) -> Result<Vec<PromptTable>, ServiceError> {
        let catalogue = self.catalogue(kb)?;
        let mut tables: Vec<PromptTable> = chosen
            .iter()
            .map(|(table, policy)| {
                let described = catalogue
                    .described
                    .get(&table.stored.id)
                    .cloned()
                    .unwrap_or_default();
                let whole = policy.is_unrestricted();
                let profile = table
                    .stored
                    .profile
                    .as_ref()
                    .and_then(|p| serde_json::from_value(p.clone()).ok());
                let visible = visible_columns(table, policy);
                PromptTable {
                    name: table.def.name.clone(),
                    description: described.table.clone(),
                    columns: table
                        .def
                        .columns
                        .iter()
                        .filter(|c| visible.contains(&c.name))
                        .map(|c| PromptColumn {
                            name: c.name.clone(),
                            data_type: c.data_type.clone(),
                            description: described.columns.get(&c.name).cloned().unwrap_or_default(),
                            values: if whole {
                                frequent_values(profile.as_ref(), &c.name)
                            } else {
                                Vec::new()
                            },
                        })
                        .collect(),
                    omitted_columns: 0,
                }
            })
            .collect();
        let size = |tables: &[PromptTable]| -> usize {
            tables
                .iter()
                .flat_map(|t| &t.columns)
                .map(|c| {
                    c.name.len()
                        + c.data_type.len()
                        + c.description.len()
                        + c.values.iter().map(String::len).sum::<usize>()
                        + 8
                })
                .sum::<usize>()
                + tables
                    .iter()
                    .map(|t| t.description.len() + t.name.len())
                    .sum::<usize>()
        };
        if size(&tables) > SCHEMA_BUDGET {
            // Keep what matched the question, the keys that join tables, and the first few.
            for (table, found) in tables.iter_mut().zip(discovered) {
                let before = table.columns.len();
                let mut index = 0;
                table.columns.retain(|c| {
                    index += 1;
                    let lower = c.name.to_ascii_lowercase();
                    index <= 6
                        || found.matched_columns.contains(&c.name)
                        || lower == "id"
                        || lower.ends_with("_id")
                        || lower.ends_with("id") && c.name.chars().any(char::is_uppercase)
                        || lower.ends_with("_key")
                        || lower.ends_with("code")
                });
                table.omitted_columns = before - table.columns.len();
            }
            while size(&tables) > SCHEMA_BUDGET && tables.len() > 1 {
                tables.pop();
            }
        }
        Ok(tables)
    }

    /// The verified examples closest to `question` whose tables the asker may all read.
    fn prompt_examples(
        &self,
        kb: &KnowledgeBase,
        readable: &[(Table, TablePolicy)],
        question: &str,
    ) -> Result<Vec<PromptExample>, ServiceError> {
        let catalogue = self.catalogue(kb)?;
        let names: Vec<String> = readable
            .iter()
            .map(|(t, _)| crate::tables::normalise_name(&t.def.name))
            .collect();
        let usable: Vec<&groundwork_store::SqlExample> = catalogue
            .examples
            .iter()
            .filter(|e| {
                e.tables
                    .iter()
                    .all(|t| names.contains(&crate::tables::normalise_name(t)))
            })
            .collect();
        if usable.is_empty() {
            return Ok(Vec::new());
        }
        let embedder = self.query_embedder_for(kb)?;
        let mut texts: Vec<&str> = vec![question];
        texts.extend(usable.iter().map(|e| e.question.as_str()));
        let vectors = embedder.embed(&texts)?;
        let (query, rest) = vectors.split_first().expect("the question was embedded");
        let mut scored: Vec<(f32, usize)> = rest
            .iter()
            .enumerate()
            .map(|(i, v)| (query.iter().zip(v).map(|(a, b)| a * b).sum(), i))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        Ok(scored
            .into_iter()
            .take(EXAMPLES)
            .map(|(_, i)| PromptExample {
                question: usable[i].question.clone(),
                sql: usable[i].sql.clone(),
            })
            .collect())
    }
}

/// What one `ask_tables` did, for its audit record whatever the outcome.
#[derive(Default)]
struct Trace {
    discovered: Vec<String>,
    attempts: Vec<SqlAttempt>,
    models: Vec<String>,
    guardrail: Vec<String>,
}

/// The answer to a question the guardrail policy blocked: its message, nothing run.
fn blocked(request: &TableQuestion, kb: &KnowledgeBase, text: String, trace: &Trace) -> TableAnswer {
    TableAnswer {
        knowledge_base: kb.name.clone(),
        question: request.question.clone(),
        mode: "blocked".into(),
        text,
        sql: None,
        dialect: String::new(),
        tables: Vec::new(),
        columns: Vec::new(),
        rows: Vec::new(),
        truncated: false,
        attempts: Vec::new(),
        discovered: Vec::new(),
        models: trace.models.clone(),
        usage: None,
        times: StageTimes::default(),
    }
}

fn call(
    model: &dyn ChatModel,
    chat: &ChatRequest,
    on_delta: Option<&mut dyn FnMut(&str)>,
    usage: &mut TokenUsage,
) -> Result<ChatResponse, ServiceError> {
    let reply = model.chat(chat, on_delta).map_err(generation_error)?;
    if let Some(u) = reply.usage {
        usage.prompt_tokens += u.prompt_tokens;
        usage.completion_tokens += u.completion_tokens;
    }
    Ok(reply)
}

/// The rows as a small text table for the answer prompt; true when rows were left out.
fn rows_text(columns: &[(String, String)], rows: &[Map<String, Value>]) -> (String, bool) {
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    let mut text = names.join(" | ");
    let mut cut = false;
    for (i, row) in rows.iter().enumerate() {
        let line: Vec<String> = names
            .iter()
            .map(|n| match row.get(*n) {
                None | Some(Value::Null) => "NULL".to_owned(),
                Some(Value::String(s)) => s.chars().take(200).collect(),
                Some(other) => other.to_string(),
            })
            .collect();
        let line = line.join(" | ");
        if i >= ANSWER_ROWS || text.len() + line.len() > ANSWER_CHARS {
            cut = true;
            break;
        }
        text.push('\n');
        text.push_str(&line);
    }
    (text, cut)
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

fn generation_error(error: groundwork_llm::LlmError) -> ServiceError {
    ServiceError::new(ErrorCode::GenerationFailed, error.to_string())
}
