//! Running a table's rules: the planned scans through the engine (as the administrator, with
//! the tables a `ReferentialIntegrity` rule names), the metrics judged against their thresholds
//! and history, and row-count and completeness anomalies flagged.
//!
//! Invariant: one failing scan never takes down the other rules — a shared aggregate that fails
//! (a bad regex, `Mean` over text) is rerun one metric at a time, and only the metrics that fail
//! again come out as `error`.

use super::{
    AnomalyCheck, History, Outcome, Ruleset, Scan, Status, detect_anomalies, evaluate, plan, table_trusted,
};
use crate::catalog::TableDef;
use crate::engine::{Embedded, Limits, QueryEngine, QueryRequest, TableGrant};
use crate::error::Result;
use crate::policy::TablePolicy;
use crate::profile::{quote, quote_table};
use datafusion::arrow::array::{Array, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// Row-count and completeness values are compared with this many past runs.
pub const ANOMALY_WINDOW: usize = 5;

/// One run of a table's rules.
#[derive(Debug, Clone, Serialize)]
pub struct QualityReport {
    pub table: String,
    /// `passed` when every rule passed, `failed` when one failed, `error` when one could not
    /// be computed (and none failed).
    pub status: String,
    /// A blocking rule did not pass: the table is not to be trusted.
    pub blocking_failed: bool,
    pub outcomes: Vec<Outcome>,
    pub metrics: BTreeMap<String, Option<f64>>,
    pub anomalies: Vec<(String, AnomalyCheck)>,
    /// Statements the run took (one aggregate scan covers most rules).
    pub scans: usize,
    /// Rows of the table (from the run's row count, when a rule asked for it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<f64>,
    pub took_ms: f64,
}

impl Embedded {
    /// Runs `ruleset` over `table`; `others` are the tables a rule may reference.
    pub fn run_quality(
        &self,
        table: &TableDef,
        others: &[TableDef],
        ruleset: &Ruleset,
        history: History<'_>,
        limits: Limits,
    ) -> Result<QualityReport> {
        let started = Instant::now();
        let quoted = quote_table(&table.name);
        let plan = plan(&ruleset.rules, &quoted, &|s: &str| quote(s));
        let tables: Vec<TableGrant> = std::iter::once(table)
            .chain(others.iter().filter(|o| o.name != table.name))
            .map(|def| TableGrant {
                def: def.clone(),
                policy: TablePolicy::unrestricted(),
            })
            .collect();
        let mut metrics: HashMap<String, Option<f64>> = HashMap::new();
        metrics.insert(
            super::key::COLUMN_COUNT.to_owned(),
            Some(table.columns.len() as f64),
        );
        let mut scans = 0;
        let mut failed: Vec<&Scan> = Vec::new();
        for scan in &plan.scans {
            scans += 1;
            match self.scan_row(&tables, &scan.sql, limits) {
                Ok(row) => metrics.extend(scan.bind(&row)),
                Err(_) => failed.push(scan),
            }
        }
        // A failed aggregate is rerun one metric at a time; other failed scans (a key check, a
        // reference, custom SQL) leave their one metric missing, which judges as `error`.
        if failed.iter().any(|s| s.kind == super::ScanKind::Aggregate) {
            for retry in plan.isolated() {
                scans += 1;
                if let Ok(row) = self.scan_row(&tables, &retry.sql, limits) {
                    metrics.extend(retry.bind(&row));
                }
            }
        }
        let outcomes = evaluate(&ruleset.rules, &metrics, history);
        let anomalies = detect_anomalies(&metrics, history, ANOMALY_WINDOW)
            .into_iter()
            .filter(|(_, check)| check.anomalous)
            .collect();
        let blocking_failed = !table_trusted(&outcomes);
        let status = if outcomes.iter().any(|o| o.status == Status::Failed) {
            "failed"
        } else if outcomes.iter().any(|o| o.status == Status::Error) {
            "error"
        } else {
            "passed"
        };
        Ok(QualityReport {
            table: table.name.clone(),
            status: status.to_owned(),
            blocking_failed,
            rows: metrics.get(super::key::ROW_COUNT).copied().flatten(),
            outcomes,
            metrics: metrics.into_iter().collect(),
            anomalies,
            scans,
            took_ms: started.elapsed().as_secs_f64() * 1e3,
        })
    }

    /// The first row of `sql` as numbers (NULL, or anything not a number, as `None`).
    fn scan_row(&self, tables: &[TableGrant], sql: &str, limits: Limits) -> Result<Vec<Option<f64>>> {
        let mut row = Vec::new();
        self.query(
            &QueryRequest {
                sql,
                tables,
                limits,
                explain: false,
            },
            &mut |batch| {
                if row.is_empty() && batch.num_rows() > 0 {
                    for column in batch.columns() {
                        let value = cast(column, &DataType::Float64)
                            .ok()
                            .and_then(|a| a.as_any().downcast_ref::<Float64Array>().cloned())
                            .and_then(|a| (!a.is_null(0)).then(|| a.value(0)));
                        row.push(value);
                    }
                }
                Ok(false)
            },
        )?;
        Ok(row)
    }
}
