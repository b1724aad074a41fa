//! Table profiles: row count; per column the null fraction, the distinct count (exact up to a
//! million rows, HyperLogLog beyond, and said which), minimum and maximum, the most frequent
//! values of low-cardinality columns; and a few sample rows.
//!
//! Invariant: a profile costs one aggregate scan plus one grouped scan per low-cardinality
//! column (at most [`MAX_TOP_COLUMNS`]) and a five-row read; all of it runs as the
//! administrator through the same bounded engine as any query.

use crate::catalog::TableDef;
use crate::engine::{Embedded, Limits, TableGrant};
use crate::error::Result;
use crate::policy::TablePolicy;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::time::Instant;

/// Above this many rows, distinct counts are approximate.
pub const EXACT_DISTINCT_ROWS: u64 = 1_000_000;
/// Columns with at most this many distinct values get their most frequent values listed.
pub const LOW_CARDINALITY: u64 = 25;
/// Most columns whose frequent values are listed.
pub const MAX_TOP_COLUMNS: usize = 24;
const SAMPLE_ROWS: usize = 5;
const TOP_VALUES: usize = 10;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    pub name: String,
    pub null_fraction: f64,
    pub distinct: u64,
    pub distinct_exact: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<String>,
    /// The most frequent values and their counts, for low-cardinality columns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top: Vec<(String, u64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub rows: u64,
    pub columns: Vec<ColumnProfile>,
    pub samples: Vec<Map<String, Value>>,
    pub took_ms: f64,
    /// Scans the profile took.
    pub scans: usize,
}

/// `"a"."b"` for `a.b`.
pub fn quote_table(name: &str) -> String {
    name.split('.').map(quote).collect::<Vec<_>>().join(".")
}

pub fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Types `approx_distinct` accepts as they are.
fn hll_native(data_type: &DataType) -> bool {
    data_type.is_integer()
        || matches!(
            data_type,
            DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Binary
                | DataType::LargeBinary
        )
}

fn orderable(data_type: &DataType) -> bool {
    data_type.is_numeric()
        || matches!(
            data_type,
            DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Date32
                | DataType::Date64
                | DataType::Boolean
                | DataType::Timestamp(_, _)
        )
}

fn scalar(batch: &RecordBatch, column: usize) -> Option<String> {
    let array = batch.column(column);
    if array.is_null(0) {
        return None;
    }
    datafusion::arrow::util::display::array_value_to_string(array, 0).ok()
}

fn number(batch: &RecordBatch, column: usize) -> u64 {
    scalar(batch, column)
        .and_then(|s| s.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

impl Embedded {
    /// Runs `sql` over `def` as the administrator and returns every batch.
    pub fn collect_admin(&self, def: &TableDef, sql: &str, limits: Limits) -> Result<Vec<RecordBatch>> {
        let tables = [TableGrant {
            def: def.clone(),
            policy: TablePolicy::unrestricted(),
        }];
        let mut batches = Vec::new();
        let request = crate::engine::QueryRequest {
            sql,
            tables: &tables,
            limits,
            explain: false,
        };
        crate::engine::QueryEngine::query(self, &request, &mut |batch| {
            batches.push(batch.clone());
            Ok(true)
        })?;
        Ok(batches)
    }

    /// Profiles one table.
    pub fn profile(&self, def: &TableDef, limits: Limits) -> Result<Profile> {
        let started = Instant::now();
        let table = quote_table(&def.name);
        let mut limits = limits;
        limits.max_rows = limits.max_rows.max(MAX_TOP_COLUMNS * TOP_VALUES + 1);
        let rows = {
            let batches = self.collect_admin(def, &format!("SELECT count(*) FROM {table}"), limits)?;
            batches
                .first()
                .filter(|b| b.num_rows() > 0)
                .map_or(0, |b| number(b, 0))
        };
        let exact = rows <= EXACT_DISTINCT_ROWS;
        let types: Vec<(String, DataType)> = def
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.data_type.parse().unwrap_or(DataType::Utf8)))
            .collect();
        let mut selects = Vec::new();
        for (name, data_type) in &types {
            let c = quote(name);
            selects.push(format!("count({c})"));
            let comparable = orderable(data_type);
            selects.push(if !comparable {
                "CAST(NULL AS BIGINT)".to_owned()
            } else if exact {
                format!("count(DISTINCT {c})")
            } else if hll_native(data_type) {
                format!("approx_distinct({c})")
            } else {
                // DataFusion's HyperLogLog takes integers, strings and binaries only; floats,
                // decimals, dates and times are counted by their canonical text.
                format!("approx_distinct(CAST({c} AS VARCHAR))")
            });
            if comparable {
                selects.push(format!("CAST(min({c}) AS VARCHAR)"));
                selects.push(format!("CAST(max({c}) AS VARCHAR)"));
            } else {
                selects.push("CAST(NULL AS VARCHAR)".to_owned());
                selects.push("CAST(NULL AS VARCHAR)".to_owned());
            }
        }
        let mut scans = 1;
        let mut columns = Vec::new();
        if !types.is_empty() && rows > 0 {
            let sql = format!("SELECT {} FROM {table}", selects.join(", "));
            let batches = self.collect_admin(def, &sql, limits)?;
            scans += 1;
            let batch = batches.first().filter(|b| b.num_rows() > 0);
            for (i, (name, _)) in types.iter().enumerate() {
                let base = i * 4;
                let non_null = batch.map_or(0, |b| number(b, base));
                columns.push(ColumnProfile {
                    name: name.clone(),
                    null_fraction: if rows == 0 {
                        0.0
                    } else {
                        1.0 - non_null as f64 / rows as f64
                    },
                    distinct: batch.map_or(0, |b| number(b, base + 1)),
                    distinct_exact: exact,
                    min: batch.and_then(|b| scalar(b, base + 2)),
                    max: batch.and_then(|b| scalar(b, base + 3)),
                    top: Vec::new(),
                });
            }
        } else {
            for (name, _) in &types {
                columns.push(ColumnProfile {
                    name: name.clone(),
                    null_fraction: 0.0,
                    distinct: 0,
                    distinct_exact: true,
                    min: None,
                    max: None,
                    top: Vec::new(),
                });
            }
        }
        let low: Vec<usize> = columns
            .iter()
            .enumerate()
            .filter(|(i, c)| c.distinct > 0 && c.distinct <= LOW_CARDINALITY && orderable(&types[*i].1))
            .map(|(i, _)| i)
            .take(MAX_TOP_COLUMNS)
            .collect();
        for i in low {
            let c = quote(&columns[i].name);
            let sql = format!(
                "SELECT CAST({c} AS VARCHAR) AS v, count(*) AS n FROM {table} WHERE {c} IS NOT NULL \
                 GROUP BY {c} ORDER BY n DESC, v LIMIT {TOP_VALUES}"
            );
            let batches = self.collect_admin(def, &sql, limits)?;
            scans += 1;
            for batch in &batches {
                for row in 0..batch.num_rows() {
                    let value = datafusion::arrow::util::display::array_value_to_string(batch.column(0), row)
                        .unwrap_or_default();
                    let count = datafusion::arrow::util::display::array_value_to_string(batch.column(1), row)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    columns[i].top.push((value, count));
                }
            }
        }
        let samples = if rows > 0 {
            scans += 1;
            let batches =
                self.collect_admin(def, &format!("SELECT * FROM {table} LIMIT {SAMPLE_ROWS}"), limits)?;
            crate::output::rows_json(&batches)?
        } else {
            Vec::new()
        };
        Ok(Profile {
            rows,
            columns,
            samples,
            took_ms: started.elapsed().as_secs_f64() * 1e3,
            scans,
        })
    }
}
