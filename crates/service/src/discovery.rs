//! Table discovery, and what it searches: descriptions of tables and columns (a person's, else
//! a model's, else one derived from names, comments and profiles — never empty), verified
//! example questions, and one table index per knowledge base built from them.
//!
//! Invariant: only tables the asker may read are candidates — their ids are the allow-list
//! *before* ranking, as for documents — and a hit names only columns the asker can see. The
//! index is shared by every asker, so it holds nothing a grant could hide from one of them:
//! frequent values enter a card only for tables no grant restricts (by row filter or mask),
//! and a column some grant hides is left out of the card altogether. Setting a description or
//! an example is an administrator's change, audited; a search is audited as a read.

use crate::error::ServiceError;
use crate::home::Groundwork;
use crate::loaded::{Catalogue, Described};
use crate::tables::{Table, normalise_name};
use groundwork_core::{ErrorCode, KnowledgeBase, LlmConfig, now_millis};
use groundwork_govern::access::Grant;
use groundwork_index::AllowedDocs;
use groundwork_llm::sql_prompt;
use groundwork_search::tables::{CardColumn, TableCard, TableIndex, TableRanking, words};
use groundwork_sql::TablePolicy;
use groundwork_sql::profile::Profile;
use groundwork_store::{DescriptionOrigin, SqlExample, StoredDescription};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

/// Frequent values a card or a prompt shows per column at most.
const CARD_VALUES: usize = 8;

/// `tables KB --search QUESTION`.
#[derive(Debug, Clone)]
pub struct TableSearchRequest {
    pub knowledge_base: String,
    pub question: String,
    pub k: usize,
}

/// A table found for a question.
#[derive(Debug, Clone, Serialize)]
pub struct FoundTable {
    pub name: String,
    pub score: f32,
    pub description: String,
    /// `person`, `generated` or `derived`.
    pub description_origin: String,
    /// Columns whose descriptions matched the question, best first (only columns the asker
    /// sees).
    pub matched_columns: Vec<String>,
    /// Why it ranked where it did.
    pub why: Vec<String>,
    pub version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableSearchResponse {
    pub knowledge_base: String,
    pub question: String,
    pub tables: Vec<FoundTable>,
    /// Tables the asker may read (the candidates).
    pub candidates: usize,
}

/// `table describe KB TABLE --set TEXT [--column C]`, or `--clear`.
#[derive(Debug, Clone)]
pub struct DescriptionChange {
    pub knowledge_base: String,
    pub table: String,
    pub column: Option<String>,
    /// `None` removes the person's description (the generated or derived one shows again).
    pub text: Option<String>,
}

impl Groundwork {
    /// Ranks the tables the actor may read for `request.question` (audited as `table.search`).
    pub fn search_tables(&self, request: &TableSearchRequest) -> Result<TableSearchResponse, ServiceError> {
        let started = Instant::now();
        let mut entry = self.entry(
            "table.search",
            Some(&request.knowledge_base),
            json!({ "question": request.question, "k": request.k }),
        );
        let result = (|| {
            let kb = self.tables_kb(&request.knowledge_base)?;
            let policy = self.access_policy()?;
            let readable = self.readable_tables(&kb, &policy)?;
            let tables = self.find_tables(&kb, &readable, &request.question, request.k)?;
            Ok(TableSearchResponse {
                knowledge_base: kb.name.clone(),
                question: request.question.clone(),
                candidates: readable.len(),
                tables,
            })
        })();
        if let Ok(response) = &result {
            entry.request["returned"] = json!(response.tables.iter().map(|t| &t.name).collect::<Vec<_>>());
        }
        self.record_read(entry, started, &result, Vec::new())?;
        result
    }

    /// The ranked tables among `readable` (already decided by the caller), unaudited.
    pub(crate) fn find_tables(
        &self,
        kb: &KnowledgeBase,
        readable: &[(Table, TablePolicy)],
        question: &str,
        k: usize,
    ) -> Result<Vec<FoundTable>, ServiceError> {
        if readable.is_empty() || question.trim().is_empty() {
            return Ok(Vec::new());
        }
        let catalogue = self.catalogue(kb)?;
        let allowed: AllowedDocs = readable.iter().map(|(t, _)| t.stored.id as u64).collect();
        let embedder = self.query_embedder_for(kb)?;
        let vector = embedder.embed(&[question])?.pop();
        let hits = catalogue
            .index
            .search(
                question,
                vector.as_deref(),
                k,
                Some(&allowed),
                &TableRanking::default(),
            )
            .map_err(|e| ServiceError::new(ErrorCode::Internal, e))?;
        let by_id: HashMap<i64, &(Table, TablePolicy)> =
            readable.iter().map(|r| (r.0.stored.id, r)).collect();
        Ok(hits
            .into_iter()
            .filter_map(|hit| {
                let (table, policy) = by_id.get(&(hit.id as i64))?;
                let visible = visible_columns(table, policy);
                let described = catalogue
                    .described
                    .get(&table.stored.id)
                    .cloned()
                    .unwrap_or_default();
                Some(FoundTable {
                    name: table.def.name.clone(),
                    score: hit.score,
                    description: described.table,
                    description_origin: described.table_origin.to_owned(),
                    matched_columns: hit
                        .matched_columns
                        .into_iter()
                        .filter(|c| visible.iter().any(|v| v == c))
                        .collect(),
                    why: hit
                        .why
                        .into_iter()
                        .filter(|w| !w.starts_with("columns matched"))
                        .collect(),
                    version: table.stored.version.clone(),
                })
            })
            .collect())
    }

    /// The catalogue of `kb`, rebuilt when anything a card is made of changed since.
    pub(crate) fn catalogue(&self, kb: &KnowledgeBase) -> Result<Arc<Catalogue>, ServiceError> {
        let grants = self.store().grants()?;
        let stamp = format!(
            "{}|{:?}",
            self.store().table_catalogue_stamp(kb.id)?,
            grants
                .iter()
                .map(|g| (g.id, g.revoked_at, g.expires_at))
                .collect::<Vec<_>>()
        );
        // Building holds the map's lock: two requests for a stale catalogue build it once.
        let mut cached = self.shared.catalogues.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = cached.get(&kb.id)
            && existing.stamp == stamp
        {
            return Ok(existing.clone());
        }
        let built = Arc::new(self.build_catalogue(kb, stamp, &grants)?);
        cached.insert(kb.id, built.clone());
        Ok(built)
    }

    fn build_catalogue(
        &self,
        kb: &KnowledgeBase,
        stamp: String,
        grants: &[Grant],
    ) -> Result<Catalogue, ServiceError> {
        let tables = self.all_tables(kb)?;
        let described = self.describe_all(kb, &tables)?;
        let examples = self.store().sql_examples(kb.id)?;
        let now = now_millis();
        let mut cards = Vec::with_capacity(tables.len());
        for table in &tables {
            let restriction = restriction(grants, &table.def.location, now);
            let profile: Option<Profile> = table
                .stored
                .profile
                .as_ref()
                .and_then(|p| serde_json::from_value(p.clone()).ok());
            let text = &described[&table.stored.id];
            let columns = table
                .def
                .columns
                .iter()
                .filter(|c| !restriction.hidden.contains(&c.name))
                .map(|c| CardColumn {
                    name: c.name.clone(),
                    data_type: c.data_type.clone(),
                    description: text.columns.get(&c.name).cloned().unwrap_or_default(),
                    values: if restriction.any {
                        Vec::new()
                    } else {
                        frequent_values(profile.as_ref(), &c.name)
                    },
                })
                .collect();
            let name = normalise_name(&table.def.name);
            let table_examples: Vec<String> = examples
                .iter()
                .filter(|e| e.tables.iter().any(|t| normalise_name(t) == name))
                .map(|e| e.question.clone())
                .collect();
            let quality = self.store().quality_runs(table.stored.id, 1)?.into_iter().next();
            let mut prior = 1.0f32;
            if text.person_written {
                prior *= 1.1;
            }
            if !table_examples.is_empty() {
                prior *= 1.1;
            }
            match quality {
                Some(run) if run.blocking_failed => prior *= 0.7,
                Some(run) if run.status == "passed" => prior *= 1.05,
                _ => {}
            }
            cards.push(TableCard {
                id: table.stored.id as u64,
                name: table.def.name.clone(),
                namespace: namespace(table),
                description: text.table.clone(),
                columns,
                examples: table_examples,
                prior,
            });
        }
        let embedder = self.embedder_for(kb)?;
        let index = TableIndex::build(cards, embedder.dimension(), &mut |texts| {
            embedder.embed(texts).map_err(|e| e.to_string())
        })
        .map_err(|e| ServiceError::new(ErrorCode::Internal, format!("table index: {e}")))?;
        Ok(Catalogue {
            stamp,
            index,
            described,
            examples,
        })
    }

    /// Descriptions of every table of `kb`: a person's, else a generated one, else derived.
    pub(crate) fn describe_all(
        &self,
        kb: &KnowledgeBase,
        tables: &[Table],
    ) -> Result<HashMap<i64, Described>, ServiceError> {
        let stored = self.store().table_descriptions(kb.id)?;
        let mut by_key: HashMap<(String, String), &StoredDescription> = HashMap::new();
        for description in &stored {
            let key = (normalise_name(&description.table), description.column.clone());
            let better = match by_key.get(&key) {
                None => true,
                Some(existing) => {
                    existing.origin == DescriptionOrigin::Generated
                        && description.origin == DescriptionOrigin::Person
                }
            };
            if better {
                by_key.insert(key, description);
            }
        }
        let mut out = HashMap::new();
        for table in tables {
            let name = normalise_name(&table.def.name);
            let profile: Option<Profile> = table
                .stored
                .profile
                .as_ref()
                .and_then(|p| serde_json::from_value(p.clone()).ok());
            let mut described = Described::default();
            match by_key.get(&(name.clone(), String::new())) {
                Some(d) => {
                    described.table = d.text.clone();
                    described.table_origin = origin_name(d.origin);
                    described.person_written = d.origin == DescriptionOrigin::Person;
                }
                None => {
                    described.table = derived_table_description(table, profile.as_ref());
                    described.table_origin = "derived";
                }
            }
            for column in &table.def.columns {
                let text = match by_key.get(&(name.clone(), column.name.clone())) {
                    Some(d) => {
                        described.person_written |= d.origin == DescriptionOrigin::Person;
                        d.text.clone()
                    }
                    None => derived_column_description(column, profile.as_ref()),
                };
                described.columns.insert(column.name.clone(), text);
            }
            out.insert(table.stored.id, described);
        }
        Ok(out)
    }

    /// Sets or clears a person's description of a table or column (administrators; audited).
    pub fn set_description(&self, change: &DescriptionChange) -> Result<(), ServiceError> {
        let request = json!({
            "table": change.table,
            "column": change.column,
            "text": change.text,
        });
        self.administer("table.describe.set", &change.knowledge_base, request, || {
            let kb = self.tables_kb(&change.knowledge_base)?;
            let table = self.table_by_name(&kb, &change.table)?;
            let column = match &change.column {
                None => String::new(),
                Some(wanted) => table
                    .def
                    .columns
                    .iter()
                    .find(|c| c.name.eq_ignore_ascii_case(wanted))
                    .map(|c| c.name.clone())
                    .ok_or_else(|| {
                        ServiceError::new(
                            ErrorCode::NotFound,
                            format!("table `{}` has no column `{wanted}`", table.def.name),
                        )
                    })?,
            };
            let text = change.text.as_deref().map(str::trim).unwrap_or_default();
            if change.text.is_some() && text.is_empty() {
                return Err(ServiceError::invalid(
                    "a description cannot be empty; use --clear to remove one",
                ));
            }
            if text.chars().count() > 4000 {
                return Err(ServiceError::invalid("a description is at most 4,000 characters"));
            }
            self.store().set_table_description(
                kb.id,
                &StoredDescription {
                    table: table.def.name.clone(),
                    column,
                    origin: DescriptionOrigin::Person,
                    text: text.to_owned(),
                    author: self.actor.subject.user.clone(),
                    table_version: None,
                    at: now_millis(),
                },
                change.text.is_none(),
            )?;
            Ok(())
        })
    }

    /// A table of `kb` by name, for administrators (no access decision: callers are admins).
    pub(crate) fn table_by_name(&self, kb: &KnowledgeBase, name: &str) -> Result<Table, ServiceError> {
        let wanted = normalise_name(name);
        self.all_tables(kb)?
            .into_iter()
            .find(|t| normalise_name(&t.def.name) == wanted)
            .ok_or_else(|| ServiceError::new(ErrorCode::NotFound, format!("table `{name}` does not exist")))
    }

    /// After a sync: with a model configured, writes descriptions of the tables in `changed`
    /// (and of any table that has none for its version). A failure is reported per table and
    /// never fails the sync; the derived description stays in its place.
    pub(crate) fn generate_descriptions(
        &self,
        kb: &KnowledgeBase,
        llm: &LlmConfig,
    ) -> Result<Vec<(String, String)>, ServiceError> {
        let tables = self.all_tables(kb)?;
        let stored = self.store().table_descriptions(kb.id)?;
        let model = match groundwork_llm::connect(llm) {
            Ok(model) => model,
            Err(e) => return Ok(vec![(kb.name.clone(), format!("cannot reach the model: {e}"))]),
        };
        let mut failures = Vec::new();
        for table in &tables {
            let current = stored.iter().any(|d| {
                d.origin == DescriptionOrigin::Generated
                    && d.column.is_empty()
                    && normalise_name(&d.table) == normalise_name(&table.def.name)
                    && d.table_version.as_deref() == Some(table.stored.version.as_str())
            });
            if current {
                continue;
            }
            let facts = table_facts(table);
            let request = sql_prompt::build_describe(&table.def.name, &facts, llm.limits());
            let reply = match model.chat(&request, None) {
                Ok(reply) => reply,
                Err(e) => {
                    failures.push((table.def.name.clone(), e.to_string()));
                    continue;
                }
            };
            let Some(parsed) = sql_prompt::parse_descriptions(&reply.text) else {
                failures.push((
                    table.def.name.clone(),
                    "the model's reply held no descriptions".into(),
                ));
                continue;
            };
            let at = now_millis();
            let author = model.id();
            let write = |column: String, text: String| {
                self.store().set_table_description(
                    kb.id,
                    &StoredDescription {
                        table: table.def.name.clone(),
                        column,
                        origin: DescriptionOrigin::Generated,
                        text,
                        author: author.clone(),
                        table_version: Some(table.stored.version.clone()),
                        at,
                    },
                    false,
                )
            };
            if !parsed.table.is_empty() {
                write(String::new(), parsed.table.clone())?;
            }
            for (column, text) in parsed.columns {
                // Only columns the table has: a model's reply cannot add names.
                if let Some(c) = table
                    .def
                    .columns
                    .iter()
                    .find(|c| c.name.eq_ignore_ascii_case(&column))
                {
                    write(c.name.clone(), text)?;
                }
            }
        }
        Ok(failures)
    }

    /// Adds a verified example, validated by running its SQL as the administrator.
    pub fn add_sql_example(
        &self,
        kb_name: &str,
        question: &str,
        sql: &str,
    ) -> Result<SqlExample, ServiceError> {
        let request = json!({ "question": question, "sql": sql });
        self.administer("sql.example.add", kb_name, request, || {
            if question.trim().is_empty() {
                return Err(ServiceError::invalid("an example needs a question"));
            }
            let kb = self.tables_kb(kb_name)?;
            let policy = self.access_policy()?;
            let outcome = self.run_governed(&kb, &policy, sql, false, &mut |_| Ok(true))?;
            let tables: Vec<String> = outcome.tables.iter().map(|t| t.name.clone()).collect();
            Ok(self.store().add_sql_example(
                kb.id,
                question.trim(),
                sql.trim(),
                &tables,
                &self.actor().subject.user,
            )?)
        })
    }

    /// The verified examples of a knowledge base (administrators: an example's SQL may name
    /// tables others cannot read).
    pub fn sql_examples(&self, kb_name: &str) -> Result<Vec<SqlExample>, ServiceError> {
        self.administer("sql.example.list", kb_name, Value::Null, || {
            let kb = self.tables_kb(kb_name)?;
            Ok(self.store().sql_examples(kb.id)?)
        })
    }

    pub fn remove_sql_example(&self, kb_name: &str, id: i64) -> Result<(), ServiceError> {
        self.administer("sql.example.remove", kb_name, json!({ "id": id }), || {
            let kb = self.tables_kb(kb_name)?;
            if !self.store().remove_sql_example(kb.id, id)? {
                return Err(ServiceError::new(
                    ErrorCode::NotFound,
                    format!("no example {id} in `{kb_name}`"),
                ));
            }
            Ok(())
        })
    }
}

/// What the grants on a location take away from someone: any restriction at all, and the
/// columns some grant hides.
struct Restriction {
    any: bool,
    hidden: Vec<String>,
}

fn restriction(grants: &[Grant], location: &str, now: i64) -> Restriction {
    let mut out = Restriction {
        any: false,
        hidden: Vec::new(),
    };
    for grant in grants {
        let active = grant.revoked_at.is_none() && grant.expires_at.is_none_or(|at| at > now);
        if !active || !groundwork_govern::location::covers(&grant.location, location) {
            continue;
        }
        if grant.row_filter.is_some() || !grant.masks.is_empty() {
            out.any = true;
        }
        for (column, mask) in &grant.masks {
            if mask != "null" && mask != "hash" {
                out.hidden.push(column.clone());
            }
        }
    }
    out
}

/// The columns of `table` the holder of `policy` sees (hidden ones left out).
pub(crate) fn visible_columns(table: &Table, policy: &TablePolicy) -> Vec<String> {
    let names: Vec<&str> = table.def.columns.iter().map(|c| c.name.as_str()).collect();
    let applied = groundwork_sql::policy::applied(policy, &names);
    names
        .into_iter()
        .filter(|n| applied.masks.get(*n) != Some(&groundwork_sql::Mask::Hide))
        .map(str::to_owned)
        .collect()
}

pub(crate) fn frequent_values(profile: Option<&Profile>, column: &str) -> Vec<String> {
    profile
        .and_then(|p| p.columns.iter().find(|c| c.name == column))
        .map(|c| {
            c.top
                .iter()
                .take(CARD_VALUES)
                .map(|(v, _)| v.chars().take(60).collect())
                .collect()
        })
        .unwrap_or_default()
}

fn namespace(table: &Table) -> String {
    match table.def.name.rsplit_once('.') {
        Some((namespace, _)) => namespace.to_owned(),
        None => format!("source {}", table.stored.source_id),
    }
}

fn origin_name(origin: DescriptionOrigin) -> &'static str {
    match origin {
        DescriptionOrigin::Person => "person",
        DescriptionOrigin::Generated => "generated",
    }
}

/// A table described from what is known without a model: its name in words, its comment, its
/// size and its columns.
fn derived_table_description(table: &Table, profile: Option<&Profile>) -> String {
    let short = table.def.name.rsplit('.').next().unwrap_or(&table.def.name);
    let mut text = match &table.def.comment {
        Some(comment) if !comment.trim().is_empty() => format!("{}. ", comment.trim().trim_end_matches('.')),
        _ => String::new(),
    };
    text.push_str(&format!("{} {}", capitalise(&words(short)), table.def.kind));
    if let Some(p) = profile {
        text.push_str(&format!(" with {} rows", p.rows));
    }
    let columns: Vec<String> = table
        .def
        .columns
        .iter()
        .take(12)
        .map(|c| words(&c.name))
        .collect();
    text.push_str(&format!("; columns: {}", columns.join(", ")));
    if table.def.columns.len() > 12 {
        text.push_str(&format!(" and {} more", table.def.columns.len() - 12));
    }
    text.push('.');
    text
}

fn derived_column_description(column: &groundwork_sql::Column, profile: Option<&Profile>) -> String {
    let mut text = words(&column.name);
    if let Some(comment) = column.comment.as_deref().filter(|c| !c.trim().is_empty()) {
        text.push_str(": ");
        text.push_str(comment.trim());
    }
    if let Some(c) = profile.and_then(|p| p.columns.iter().find(|c| c.name == column.name)) {
        if let (Some(min), Some(max)) = (&c.min, &c.max)
            && c.top.is_empty()
        {
            let cut = |s: &str| s.chars().take(40).collect::<String>();
            text.push_str(&format!(" (from {} to {})", cut(min), cut(max)));
        }
        if c.null_fraction > 0.5 {
            text.push_str(" (mostly empty)");
        }
    }
    if text.is_empty() {
        text = format!("column of type {}", column.data_type);
    }
    text
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// What a model is told of a table to describe it: schema, statistics, three sample rows.
fn table_facts(table: &Table) -> String {
    let profile: Option<Profile> = table
        .stored
        .profile
        .as_ref()
        .and_then(|p| serde_json::from_value(p.clone()).ok());
    let mut text = format!("Name: {}\nKind: {}\n", table.def.name, table.def.kind);
    if let Some(comment) = &table.def.comment {
        text.push_str(&format!("Comment: {comment}\n"));
    }
    if let Some(p) = &profile {
        text.push_str(&format!("Rows: {}\n", p.rows));
    }
    text.push_str("Columns:\n");
    for column in &table.def.columns {
        text.push_str(&format!("- {} {}", column.name, column.data_type));
        if let Some(comment) = &column.comment {
            text.push_str(&format!(" -- {comment}"));
        }
        let values = frequent_values(profile.as_ref(), &column.name);
        if !values.is_empty() {
            text.push_str(&format!(" (frequent: {})", values.join(", ")));
        }
        text.push('\n');
    }
    if let Some(p) = &profile {
        for sample in p.samples.iter().take(3) {
            let cells: BTreeMap<&String, String> = sample
                .iter()
                .map(|(k, v)| (k, v.to_string().chars().take(80).collect()))
                .collect();
            text.push_str(&format!(
                "Sample: {}\n",
                serde_json::to_string(&cells).unwrap_or_default()
            ));
        }
    }
    text
}
