//! Tables: the catalogue of a tables knowledge base, its sync (discovery and profiles), and
//! governed SQL over it.
//!
//! Invariant: a principal sees a table — in listings, descriptions, SQL, `information_schema` —
//! only while an active grant covers its location, and then only through the union of those
//! grants' row filters and masks. A table they may not read is indistinguishable from one that
//! does not exist (`not_found`), while the audit record says which it was. Every listing,
//! description and query is audited; a query's record holds its SQL (masked when sealed), the
//! tables it read with their versions, the filters and masks applied, the plan fingerprint, the
//! rows returned and the latency.

use crate::error::ServiceError;
use crate::home::Groundwork;
use groundwork_core::{ErrorCode, KbKind, KnowledgeBase};
use groundwork_govern::access::AccessPolicy;
use groundwork_sql::profile::{ColumnProfile, Profile};
use groundwork_sql::{
    Embedded, GrantView, Mask, QueryEngine, QueryOutcome, QueryRequest, RecordBatch, SqlError, TableDef,
    TableGrant, TablePolicy,
};
use groundwork_store::{StoredTable, TableVersion};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

impl From<SqlError> for ServiceError {
    fn from(e: SqlError) -> Self {
        ServiceError::new(e.code(), e.to_string())
    }
}

/// A table as a listing shows it to one principal.
#[derive(Debug, Clone, Serialize)]
pub struct TableSummary {
    pub name: String,
    pub kind: String,
    pub location: String,
    pub version: String,
    pub version_no: i64,
    pub columns: usize,
    /// Row count from the last profile, when the principal's view is the whole table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// A row filter or a mask applies to this principal.
    pub restricted: bool,
    /// The latest data-quality status (`passed`, `failed`, `error`), when rules exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<String>,
    /// A blocking rule failed on the latest run.
    pub untrusted: bool,
}

/// One column as a description shows it to one principal.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnView {
    pub name: String,
    pub data_type: String,
    pub nullable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// A person's description, else a generated one, else one derived from the name,
    /// comment and profile.
    pub description: String,
    /// How this principal sees the column, when masked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<Mask>,
    /// Statistics of the whole column; withheld when the principal's view is not the whole
    /// column (a row filter or a mask applies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<ColumnProfile>,
}

/// `table describe`.
#[derive(Debug, Clone, Serialize)]
pub struct TableDescription {
    pub knowledge_base: String,
    pub name: String,
    pub kind: String,
    pub location: String,
    pub version: String,
    pub version_no: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// A person's description, else a generated one, else one derived (never empty).
    pub description: String,
    /// `person`, `generated` or `derived`.
    pub description_origin: String,
    pub columns: Vec<ColumnView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// A few rows as this principal may see them (through their filters and masks).
    pub samples: Vec<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profiled_at: Option<i64>,
    /// The row filter that applies to this principal, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_filter: Option<String>,
    /// Schema history (administrators only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<TableVersion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<String>,
    pub untrusted: bool,
}

/// One SQL statement over a tables knowledge base.
#[derive(Debug, Clone)]
pub struct SqlRequest {
    pub knowledge_base: String,
    pub sql: String,
    /// Plan only: the result is the plan, nothing is read.
    pub explain: bool,
}

/// `lineage query SEQ`: an audited query back to the tables and versions it read.
#[derive(Debug, Clone, Serialize)]
pub struct QueryLineage {
    pub record: groundwork_govern::audit::AuditRow,
    pub tables: Vec<LineageTable>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LineageTable {
    /// As recorded at the time of the query.
    pub used: Value,
    /// The table's version now, when it still exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<String>,
}

/// A stored table with its engine definition.
pub(crate) struct Table {
    pub(crate) stored: StoredTable,
    pub(crate) def: TableDef,
}

impl Table {
    fn from_stored(stored: StoredTable) -> Result<Table, ServiceError> {
        let def: TableDef = serde_json::from_value(stored.def.clone())
            .map_err(|e| ServiceError::new(ErrorCode::Corrupt, format!("table {}: {e}", stored.name)))?;
        Ok(Table { stored, def })
    }

    fn profile(&self) -> Option<Profile> {
        self.stored
            .profile
            .as_ref()
            .and_then(|p| serde_json::from_value(p.clone()).ok())
    }
}

/// The engine's view of a grant's table view (masks by name, unknown names fail closed).
fn policy_of(views: Vec<groundwork_govern::access::TableView>, def: &TableDef) -> TablePolicy {
    TablePolicy {
        views: views
            .into_iter()
            .map(|view| {
                let mut masks = BTreeMap::new();
                for (column, mask) in view.masks {
                    let mask = mask.parse::<Mask>().unwrap_or(Mask::Hide);
                    if column == "*" {
                        // A grant whose masks could not be read hides every column.
                        for c in &def.columns {
                            masks.insert(c.name.clone(), Mask::Hide);
                        }
                    } else {
                        masks.insert(column, mask);
                    }
                }
                GrantView {
                    row_filter: view.row_filter,
                    masks,
                }
            })
            .collect(),
    }
}

impl Groundwork {
    /// The table engine, started on first use and shared by every handle.
    pub(crate) fn sql_engine(&self) -> Result<Arc<Embedded>, ServiceError> {
        if let Some(engine) = self.shared.sql.get() {
            return Ok(engine.clone());
        }
        let key = self.mask_key()?;
        let engine = Arc::new(Embedded::new(key, self.config().sql.postgres.clone())?);
        Ok(self.shared.sql.get_or_init(|| engine).clone())
    }

    /// The key of the hash mask: made once per home (`sql.key`, readable by its owner only).
    fn mask_key(&self) -> Result<[u8; 32], ServiceError> {
        let path = self.home().join("sql.key");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let bytes = hex::decode(text.trim()).map_err(|_| {
                ServiceError::new(ErrorCode::Corrupt, format!("{} is not a key", path.display()))
            })?;
            return bytes.try_into().map_err(|_| {
                ServiceError::new(
                    ErrorCode::Corrupt,
                    format!("{} is not a 32-byte key", path.display()),
                )
            });
        }
        let key = groundwork_govern::token::random_key()
            .map_err(|e| ServiceError::new(ErrorCode::Internal, e.to_string()))?;
        let temporary = path.with_extension("tmp");
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temporary)?;
            file.write_all(hex::encode(key).as_bytes())?;
            file.sync_all()?;
        }
        // Another process may have won the race: whichever key landed first is the key.
        if std::fs::hard_link(&temporary, &path).is_err() {
            let _ = std::fs::remove_file(&temporary);
            return self.mask_key();
        }
        let _ = std::fs::remove_file(&temporary);
        Ok(key)
    }

    /// A knowledge base that must hold tables.
    pub(crate) fn tables_kb(&self, name: &str) -> Result<KnowledgeBase, ServiceError> {
        let kb = self.store().kb(name)?;
        if kb.config.kind != KbKind::Tables {
            return Err(ServiceError::invalid(format!(
                "`{name}` holds documents; tables live in a knowledge base made with `kb create NAME --kind tables`"
            )));
        }
        Ok(kb)
    }

    pub(crate) fn all_tables(&self, kb: &KnowledgeBase) -> Result<Vec<Table>, ServiceError> {
        self.store()
            .tables(kb.id)?
            .into_iter()
            .map(Table::from_stored)
            .collect()
    }

    /// The tables of `kb` this handle's actor may read, each with its policy.
    pub(crate) fn readable_tables(
        &self,
        kb: &KnowledgeBase,
        policy: &AccessPolicy,
    ) -> Result<Vec<(Table, TablePolicy)>, ServiceError> {
        Ok(self
            .all_tables(kb)?
            .into_iter()
            .filter_map(|table| {
                let views = policy.table_views(&table.def.location)?;
                let table_policy = policy_of(views, &table.def);
                Some((table, table_policy))
            })
            .collect())
    }

    /// The latest quality status of each table of `kb`: (status, blocking failed).
    fn latest_quality(&self, table_id: i64) -> Result<Option<(String, bool)>, ServiceError> {
        Ok(self
            .store()
            .quality_runs(table_id, 1)?
            .into_iter()
            .next()
            .map(|run| (run.status, run.blocking_failed)))
    }

    /// The tables the actor may read (`tables KB`).
    pub fn list_tables(&self, kb_name: &str) -> Result<Vec<TableSummary>, ServiceError> {
        let started = Instant::now();
        let entry = self.entry("table.list", Some(kb_name), Value::Null);
        let result = (|| {
            let kb = self.tables_kb(kb_name)?;
            let policy = self.access_policy()?;
            let mut out = Vec::new();
            for (table, table_policy) in self.readable_tables(&kb, &policy)? {
                let restricted = !table_policy.is_unrestricted();
                let quality = self.latest_quality(table.stored.id)?;
                out.push(TableSummary {
                    name: table.def.name.clone(),
                    kind: table.def.kind.clone(),
                    location: table.def.location.clone(),
                    version: table.stored.version.clone(),
                    version_no: table.stored.version_no,
                    columns: table.def.columns.len(),
                    rows: (!restricted).then(|| table.profile().map(|p| p.rows)).flatten(),
                    restricted,
                    untrusted: quality.as_ref().is_some_and(|q| q.1),
                    quality: quality.map(|q| q.0),
                });
            }
            Ok(out)
        })();
        let mut entry = entry;
        if let Ok(tables) = &result {
            entry.request = json!({ "returned": tables.len() });
        }
        self.record_read(entry, started, &result, Vec::new())?;
        result
    }

    /// One table as the actor may see it (`table describe KB TABLE`).
    pub fn describe_table(&self, kb_name: &str, table_name: &str) -> Result<TableDescription, ServiceError> {
        let started = Instant::now();
        let mut entry = self.entry("table.describe", Some(kb_name), json!({ "table": table_name }));
        let mut denied = false;
        let result = (|| {
            let kb = self.tables_kb(kb_name)?;
            let policy = self.access_policy()?;
            let all = self.all_tables(&kb)?;
            let wanted = normalise_name(table_name);
            let Some(table) = all.into_iter().find(|t| normalise_name(&t.def.name) == wanted) else {
                return Err(not_found(table_name));
            };
            let Some(views) = policy.table_views(&table.def.location) else {
                denied = true;
                return Err(not_found(table_name));
            };
            let table_policy = policy_of(views, &table.def);
            self.describe(&kb, table, table_policy, policy.subject().admin)
        })();
        if denied {
            entry.request["denied"] = json!("no grant covers the table");
        }
        self.record_read(entry, started, &result, Vec::new())?;
        result
    }

    fn describe(
        &self,
        kb: &KnowledgeBase,
        table: Table,
        table_policy: TablePolicy,
        admin: bool,
    ) -> Result<TableDescription, ServiceError> {
        let profile = table.profile();
        let described = self
            .describe_all(kb, std::slice::from_ref(&table))?
            .remove(&table.stored.id)
            .unwrap_or_default();
        let whole = table_policy.is_unrestricted();
        let row_filtered = table_policy.views.iter().all(|v| v.row_filter.is_some());
        let engine = self.sql_engine()?;
        // What the principal's view of the table looks like: its schema and a few rows, through
        // the same governed plan every query uses.
        let grant = [TableGrant {
            def: table.def.clone(),
            policy: table_policy.clone(),
        }];
        let sql = format!(
            "SELECT * FROM {} LIMIT 5",
            groundwork_sql::profile::quote_table(&table.def.name)
        );
        let mut batches: Vec<RecordBatch> = Vec::new();
        let outcome = engine.query(
            &QueryRequest {
                sql: &sql,
                tables: &grant,
                limits: self.config().sql.limits(),
                explain: false,
            },
            &mut |batch| {
                batches.push(batch.clone());
                Ok(true)
            },
        );
        let (samples, visible) = match outcome {
            Ok(outcome) => (groundwork_sql::output::rows_json(&batches)?, outcome.columns),
            // A source that cannot be read now still has a catalogue entry to show.
            Err(_) => (Vec::<Map<String, Value>>::new(), Vec::<(String, String)>::new()),
        };
        let names: Vec<&str> = table.def.columns.iter().map(|c| c.name.as_str()).collect();
        let applied = groundwork_sql::policy::applied(&table_policy, &names);
        let columns = table
            .def
            .columns
            .iter()
            .filter(|c| applied.masks.get(&c.name) != Some(&Mask::Hide))
            .map(|c| {
                let mask = applied.masks.get(&c.name).copied();
                let data_type = visible
                    .iter()
                    .find(|(name, _)| *name == c.name)
                    .map_or_else(|| c.data_type.clone(), |(_, t)| t.clone());
                ColumnView {
                    name: c.name.clone(),
                    data_type,
                    nullable: c.nullable,
                    comment: c.comment.clone(),
                    description: described.columns.get(&c.name).cloned().unwrap_or_default(),
                    mask,
                    profile: if mask.is_none() && !row_filtered || whole {
                        profile
                            .as_ref()
                            .and_then(|p| p.columns.iter().find(|pc| pc.name == c.name).cloned())
                            .filter(|_| whole || !row_filtered)
                    } else {
                        None
                    },
                }
            })
            .collect();
        let quality = self.latest_quality(table.stored.id)?;
        Ok(TableDescription {
            knowledge_base: kb.name.clone(),
            name: table.def.name.clone(),
            kind: table.def.kind.clone(),
            location: table.def.location.clone(),
            version: table.stored.version.clone(),
            version_no: table.stored.version_no,
            comment: table.def.comment.clone(),
            description: described.table.clone(),
            description_origin: described.table_origin.to_owned(),
            columns,
            rows: if row_filtered && !whole {
                None
            } else {
                profile.as_ref().map(|p| p.rows)
            },
            samples,
            profiled_at: table.stored.profiled_at,
            row_filter: applied.row_filter,
            versions: if admin {
                self.store().table_versions(table.stored.id)?
            } else {
                Vec::new()
            },
            untrusted: quality.as_ref().is_some_and(|q| q.1),
            quality: quality.map(|q| q.0),
        })
    }

    /// Runs one SQL statement as the actor, sending result batches to `sink`.
    pub fn query(
        &self,
        request: &SqlRequest,
        sink: &mut dyn FnMut(&RecordBatch) -> Result<bool, SqlError>,
    ) -> Result<QueryOutcome, ServiceError> {
        let started = Instant::now();
        let mut entry = self.entry(
            "sql.query",
            Some(&request.knowledge_base),
            json!({ "sql": request.sql, "explain": request.explain }),
        );
        let mut denied = Vec::new();
        let result = (|| {
            let kb = self.tables_kb(&request.knowledge_base)?;
            let policy = self.access_policy()?;
            self.run_governed_noting(&kb, &policy, &request.sql, request.explain, sink, &mut denied)
        })();
        if let Ok(outcome) = &result {
            entry.request["tables"] = serde_json::to_value(&outcome.tables).unwrap_or(Value::Null);
            entry.request["plan_fingerprint"] = json!(outcome.plan_fingerprint);
            entry.request["rows"] = json!(outcome.rows);
            entry.request["truncated"] = json!(outcome.truncated);
        }
        if !denied.is_empty() {
            entry.request["denied"] = json!(denied);
        }
        self.record_read(entry, started, &result, Vec::new())?;
        result
    }

    /// Runs `sql` as the holder of `policy` over the tables of `kb` it may read, through every
    /// check a person's SQL goes through.
    pub(crate) fn run_governed(
        &self,
        kb: &KnowledgeBase,
        policy: &AccessPolicy,
        sql: &str,
        explain: bool,
        sink: &mut dyn FnMut(&RecordBatch) -> Result<bool, SqlError>,
    ) -> Result<QueryOutcome, ServiceError> {
        self.run_governed_noting(kb, policy, sql, explain, sink, &mut Vec::new())
    }

    /// Runs `sql` as the holder of `policy` over the tables of `kb` it may read, through every
    /// check (one read-only statement, governed plan, limits), noting in `denied` the names
    /// the statement uses that exist but are not readable: refused exactly like names that do
    /// not exist.
    pub(crate) fn run_governed_noting(
        &self,
        kb: &KnowledgeBase,
        policy: &AccessPolicy,
        sql: &str,
        explain: bool,
        sink: &mut dyn FnMut(&RecordBatch) -> Result<bool, SqlError>,
        denied: &mut Vec<String>,
    ) -> Result<QueryOutcome, ServiceError> {
        let limits = self.config().sql.limits();
        if let Ok(checked) = groundwork_sql::safety::check(sql, limits.text) {
            let all = self.all_tables(kb)?;
            for reference in &checked.tables {
                let name = normalise_name(&reference.to_string());
                if let Some(table) = all.iter().find(|t| normalise_name(&t.def.name) == name)
                    && policy.table_views(&table.def.location).is_none()
                {
                    denied.push(table.def.name.clone());
                }
            }
        }
        if let Some(name) = denied.first() {
            return Err(not_found(name));
        }
        let tables: Vec<TableGrant> = self
            .readable_tables(kb, policy)?
            .into_iter()
            .map(|(table, policy)| TableGrant {
                def: table.def,
                policy,
            })
            .collect();
        let engine = self.sql_engine()?;
        Ok(engine.query(
            &QueryRequest {
                sql,
                tables: &tables,
                limits,
                explain,
            },
            sink,
        )?)
    }

    /// `lineage query SEQ`: the tables and versions an audited query read.
    pub fn query_lineage(&self, seq: i64) -> Result<QueryLineage, ServiceError> {
        self.require_admin("lineage.query", None)?;
        let record = self
            .store()
            .audit_record(seq)?
            .ok_or_else(|| ServiceError::new(ErrorCode::NotFound, format!("no audit record {seq}")))?;
        if !record.action.starts_with("sql.") && record.action != "ask" {
            return Err(ServiceError::invalid(format!(
                "record {seq} is `{}`, not a query",
                record.action
            )));
        }
        let request: Value = serde_json::from_str(&record.request).unwrap_or(Value::Null);
        let kb = record
            .target
            .as_deref()
            .and_then(|name| self.store().kb(name).ok());
        let current: HashMap<String, String> = match &kb {
            Some(kb) => self
                .store()
                .tables(kb.id)?
                .into_iter()
                .map(|t| (t.name, t.version))
                .collect(),
            None => HashMap::new(),
        };
        let tables = request["tables"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|used| LineageTable {
                current_version: used["name"].as_str().and_then(|n| current.get(n).cloned()),
                used,
            })
            .collect();
        Ok(QueryLineage { record, tables })
    }
}

/// A result in `format`, from its columns (as the outcome lists them) and batches.
pub fn write_result(
    format: groundwork_sql::output::Format,
    columns: &[(String, String)],
    batches: &[RecordBatch],
) -> Result<Vec<u8>, ServiceError> {
    let schema = groundwork_sql::engine::result_schema(columns);
    Ok(groundwork_sql::output::write(format, &schema, batches)?)
}

/// `ns.table` and `ns.table` spelled with quotes or case compare equal.
pub(crate) fn normalise_name(name: &str) -> String {
    let name = name.trim().replace('"', "").to_ascii_lowercase();
    name.strip_prefix("public.").map(str::to_owned).unwrap_or(name)
}

fn not_found(name: &str) -> ServiceError {
    ServiceError::new(ErrorCode::NotFound, format!("table `{name}` does not exist"))
}
