//! Running governed SQL: the engine interface, and its embedded DataFusion implementation.
//!
//! Invariant: a query sees only the tables it is handed, each behind its policy; a name it
//! uses that is not among them is `not_found` (whether the table is missing or unreadable is
//! the caller's business to audit, never the query's to learn). Every run is bounded: text
//! size, wall-clock time (the plan is dropped, which cancels it), a memory pool with no spill
//! to disk, and a cap on rows and bytes, with truncation reported.
//!
//! [`QueryEngine`] is the seam for other engines: a distributed engine (Trino, Spark, Ballista)
//! implements `query` over the same [`TableGrant`]s — registering each table behind a view
//! that applies the policy's row filter and masks — and everything above it (access
//! decisions, audit, formats, text-to-SQL) stays as is.

use crate::catalog::{TableDef, TableSource};
use crate::error::{Result, SqlError};
use crate::policy::{Applied, GovernedTable, MaskHash, TablePolicy};
use crate::safety::{self, TextLimits};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::catalog::memory::MemorySchemaProvider;
use datafusion::common::TableReference;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder, ScalarUDF};
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bounds on one query.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub text: TextLimits,
    pub timeout: Duration,
    pub memory_bytes: usize,
    pub max_rows: usize,
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            text: TextLimits::default(),
            timeout: Duration::from_secs(30),
            memory_bytes: 512 << 20,
            max_rows: 10_000,
            max_bytes: 64 << 20,
        }
    }
}

/// A table a query may read, and what of it.
#[derive(Debug, Clone)]
pub struct TableGrant {
    pub def: TableDef,
    pub policy: TablePolicy,
}

/// One query.
#[derive(Debug, Clone)]
pub struct QueryRequest<'a> {
    pub sql: &'a str,
    pub tables: &'a [TableGrant],
    pub limits: Limits,
    /// Plan only: the result is the plan, nothing is read.
    pub explain: bool,
}

/// A table the query read, as the audit log records it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TouchedTable {
    pub name: String,
    pub location: String,
    pub version: String,
    #[serde(flatten)]
    pub applied: Applied,
}

/// What a query did; the rows went to the sink.
#[derive(Debug, Clone, Serialize)]
pub struct QueryOutcome {
    /// `(name, Arrow type)` of each result column.
    pub columns: Vec<(String, String)>,
    pub rows: usize,
    pub bytes: usize,
    /// More rows (or bytes) than the limits allow existed; what was sent stops at the limit.
    pub truncated: bool,
    pub tables: Vec<TouchedTable>,
    /// SHA-256 of the optimised logical plan (its text), which names tables, filters and masks.
    pub plan_fingerprint: String,
    /// The logical and physical plans, for `--explain`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<String>,
    pub elapsed_ms: f64,
}

/// Receives result batches in order; returns `false` to stop early.
pub type Sink<'a> = dyn FnMut(&RecordBatch) -> Result<bool> + 'a;

/// An engine that runs governed SQL over the tables it is given.
pub trait QueryEngine: Send + Sync {
    /// The SQL dialect generated queries should be written in.
    fn dialect(&self) -> &'static str;
    fn query(&self, request: &QueryRequest<'_>, sink: &mut Sink<'_>) -> Result<QueryOutcome>;
}

/// Apache DataFusion, in this process.
pub struct Embedded {
    /// Always `Some` until dropped (see the `Drop` impl).
    runtime: Option<tokio::runtime::Runtime>,
    mask_hash: ScalarUDF,
    postgres: crate::postgres::Connections,
}

impl Embedded {
    /// `mask_key` keys the hash mask (keep it secret and stable: changing it changes every
    /// hashed value); `postgres` resolves passwords of PostgreSQL sources.
    pub fn new(mask_key: [u8; 32], postgres: crate::postgres::Connections) -> Result<Embedded> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("groundwork-sql")
            .enable_all()
            .build()
            .map_err(|e| SqlError::Internal(format!("cannot start the SQL runtime: {e}")))?;
        Ok(Embedded {
            runtime: Some(runtime),
            mask_hash: MaskHash::udf(mask_key),
            postgres,
        })
    }

    pub fn postgres(&self) -> &crate::postgres::Connections {
        &self.postgres
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the engine")
    }

    /// Runs `future` on the engine's runtime, from synchronous code.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime().block_on(future)
    }

    /// A fresh session: only `tables` registered (each behind its policy), no table
    /// functions, no URL tables, no `CREATE EXTERNAL TABLE` factories, memory capped.
    pub fn session(&self, tables: &[TableGrant], limits: &Limits) -> Result<Session> {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(limits.memory_bytes)))
            .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled))
            .build_arc()
            .map_err(|e| SqlError::Internal(e.to_string()))?;
        let mut config = SessionConfig::new()
            .with_batch_size(8192)
            .with_target_partitions(2)
            .with_information_schema(true)
            .with_default_catalog_and_schema("groundwork", "public");
        // A folder table holds every file below it, in nested folders too (`events/2024/…`).
        config.options_mut().execution.listing_table_ignore_subdirectory = false;
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .with_table_functions(HashMap::new())
            .with_table_factories(HashMap::new())
            .build();
        let context = SessionContext::new_with_state(state);
        context.register_udf(self.mask_hash.clone());
        let defs: Vec<&TableDef> = tables.iter().map(|g| &g.def).collect();
        crate::stores::register_all(&context, &defs)?;
        let mut registered = BTreeMap::new();
        for grant in tables {
            let provider = self.provider(&grant.def)?;
            let (provider, applied): (Arc<dyn TableProvider>, Applied) = if grant.policy.is_unrestricted() {
                (provider, Applied::default())
            } else {
                let governed = GovernedTable::try_new(provider, &grant.policy, &self.mask_hash)?;
                let applied = governed.applied.clone();
                (Arc::new(governed), applied)
            };
            let reference = TableReference::parse_str(&grant.def.name);
            if let Some(schema) = reference.schema()
                && context
                    .catalog("groundwork")
                    .and_then(|c| c.schema(schema))
                    .is_none()
            {
                context
                    .catalog("groundwork")
                    .expect("the default catalog exists")
                    .register_schema(schema, Arc::new(MemorySchemaProvider::new()))
                    .map_err(|e| SqlError::Internal(e.to_string()))?;
            }
            context
                .register_table(reference.clone(), provider)
                .map_err(|e| SqlError::Invalid(format!("table `{}`: {e}", grant.def.name)))?;
            registered.insert(
                normalise(&reference),
                TouchedTable {
                    name: grant.def.name.clone(),
                    location: grant.def.location.clone(),
                    version: grant.def.version.clone(),
                    applied,
                },
            );
        }
        Ok(Session {
            context,
            registered,
            memory_mib: (limits.memory_bytes >> 20) as u64,
        })
    }

    fn provider(&self, def: &TableDef) -> Result<Arc<dyn TableProvider>> {
        match &def.source {
            TableSource::Files { .. } => crate::files::provider(def),
            TableSource::Sqlite { .. } => Ok(Arc::new(crate::sqlite::SqliteTable::new(def)?)),
            TableSource::Postgres { .. } => Ok(Arc::new(crate::postgres::PgTable::new(def, &self.postgres)?)),
        }
    }
}

impl Drop for Embedded {
    /// The engine may be dropped from async code (a server shutting down): a runtime must not
    /// block there, so it is let go in the background.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A query's session: the registered tables and what each applies.
pub struct Session {
    pub context: SessionContext,
    registered: BTreeMap<String, TouchedTable>,
    memory_mib: u64,
}

/// `schema.table` or `table`, lower case, as registered names are compared.
fn normalise(reference: &TableReference) -> String {
    match reference.schema() {
        Some(schema) if schema != "public" => format!("{schema}.{}", reference.table()),
        _ => reference.table().to_owned(),
    }
    .to_ascii_lowercase()
}

impl Session {
    /// Plans a checked statement, refusing names that are not registered.
    pub async fn plan(&self, checked: safety::Checked) -> Result<LogicalPlan> {
        for reference in &checked.tables {
            let is_catalog =
                matches!(reference.schema(), Some(s) if s.eq_ignore_ascii_case("information_schema"));
            if !is_catalog && !self.registered.contains_key(&normalise(reference)) {
                return Err(SqlError::NotFound(format!("table `{reference}` does not exist")));
            }
        }
        let state = self.context.state();
        let plan = state
            .statement_to_plan(checked.statement)
            .await
            .map_err(|e| SqlError::from_datafusion(e, self.memory_mib))?;
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(|e| SqlError::Refused(first_line(&e.to_string())))?;
        Ok(plan)
    }

    /// The registered tables a plan scans.
    pub fn touched(&self, plan: &LogicalPlan) -> Vec<TouchedTable> {
        let mut names = std::collections::BTreeSet::new();
        let _ = plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                names.insert(normalise(&scan.table_name));
            }
            Ok(TreeNodeRecursion::Continue)
        });
        names
            .into_iter()
            .filter_map(|name| self.registered.get(&name).cloned())
            .collect()
    }
}

impl QueryEngine for Embedded {
    fn dialect(&self) -> &'static str {
        "Apache DataFusion SQL (PostgreSQL-like)"
    }

    fn query(&self, request: &QueryRequest<'_>, sink: &mut Sink<'_>) -> Result<QueryOutcome> {
        let started = Instant::now();
        let checked = safety::check(request.sql, request.limits.text)?;
        let session = self.session(request.tables, &request.limits)?;
        let limits = request.limits;
        let seconds = limits.timeout.as_secs().max(1);
        let work = async {
            let plan = session.plan(checked).await?;
            let touched = session.touched(&plan);
            let state = session.context.state();
            let optimized = state
                .optimize(&plan)
                .map_err(|e| SqlError::from_datafusion(e, session.memory_mib))?;
            let plan_fingerprint =
                groundwork_core::sha256_hex(optimized.display_indent().to_string().as_bytes());
            let columns: Vec<(String, String)> = plan
                .schema()
                .fields()
                .iter()
                .map(|f| (f.name().clone(), f.data_type().to_string()))
                .collect();
            if request.explain {
                let text = match crate::postgres::whole_query(&optimized) {
                    Some((location, _, sql)) => format!(
                        "logical plan:\n{}\n\nruns in PostgreSQL ({}), as:\n{sql}",
                        optimized.display_indent(),
                        location.connection_url()
                    ),
                    None => {
                        let physical = state
                            .create_physical_plan(&plan)
                            .await
                            .map_err(|e| SqlError::from_datafusion(e, session.memory_mib))?;
                        format!(
                            "logical plan:\n{}\n\nphysical plan:\n{}",
                            optimized.display_indent(),
                            datafusion::physical_plan::displayable(physical.as_ref()).indent(false)
                        )
                    }
                };
                return Ok((
                    QueryOutcome {
                        columns,
                        rows: 0,
                        bytes: 0,
                        truncated: false,
                        tables: touched,
                        plan_fingerprint,
                        explain: Some(text),
                        elapsed_ms: 0.0,
                    },
                    None,
                ));
            }
            // One row past the cap tells a truncated result from one that fits exactly.
            let capped = LogicalPlanBuilder::from(optimized)
                .limit(0, Some(limits.max_rows.saturating_add(1)))
                .and_then(|b| b.build())
                .map_err(|e| SqlError::Internal(e.to_string()))?;
            // A query over tables of one PostgreSQL database runs there, whole.
            let physical = match crate::postgres::whole_query(&capped) {
                Some((location, connections, sql)) => crate::postgres::pushed_down(
                    location,
                    connections,
                    sql,
                    Arc::clone(capped.schema().inner()),
                ),
                None => state
                    .create_physical_plan(&capped)
                    .await
                    .map_err(|e| SqlError::from_datafusion(e, session.memory_mib))?,
            };
            let stream = datafusion::physical_plan::execute_stream(physical, session.context.task_ctx())
                .map_err(|e| SqlError::from_datafusion(e, session.memory_mib))?;
            let outcome = QueryOutcome {
                columns,
                rows: 0,
                bytes: 0,
                truncated: false,
                tables: touched,
                plan_fingerprint,
                explain: None,
                elapsed_ms: 0.0,
            };
            Ok((outcome, Some(stream)))
        };
        let deadline = started + limits.timeout;
        let remaining = || deadline.saturating_duration_since(Instant::now());
        let (mut outcome, stream) = self
            .runtime()
            .block_on(async { tokio::time::timeout(remaining(), work).await })
            .map_err(|_| SqlError::Timeout(seconds))??;
        // Batches go to the sink from plain synchronous code, outside the runtime, so a sink
        // may block (a full channel to a slow client) without stalling the engine.
        if let Some(mut stream) = stream {
            loop {
                let next = self
                    .runtime()
                    .block_on(async { tokio::time::timeout(remaining(), stream.next()).await })
                    .map_err(|_| SqlError::Timeout(seconds))?;
                let Some(batch) = next else {
                    break;
                };
                let batch = batch.map_err(|e| SqlError::from_datafusion(e, limits_mib(&limits)))?;
                let room = limits.max_rows - outcome.rows;
                let take = batch.num_rows().min(room);
                let part = batch.slice(0, take);
                let size = part.get_array_memory_size();
                if take < batch.num_rows() || outcome.bytes + size > limits.max_bytes {
                    outcome.truncated = true;
                }
                if outcome.bytes + size > limits.max_bytes {
                    break;
                }
                outcome.rows += take;
                outcome.bytes += size;
                if take > 0 && !sink(&part)? {
                    break;
                }
                if outcome.truncated {
                    break;
                }
            }
        }
        outcome.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        Ok(outcome)
    }
}

/// The schema of a result, for writers that need it before the first batch.
pub fn result_schema(columns: &[(String, String)]) -> SchemaRef {
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, t)| Field::new(name, t.parse().unwrap_or(DataType::Utf8), true))
            .collect::<Vec<_>>(),
    ))
}

fn limits_mib(limits: &Limits) -> u64 {
    (limits.memory_bytes >> 20) as u64
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or(text).to_owned()
}
