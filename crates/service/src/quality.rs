//! Data quality: rulesets per table (DQDL-like), runs that store their outcomes with history,
//! anomalies, and the trust status that listings and answers report.
//!
//! Invariant: rules are set and run by the administrator only (a run reads every row), and
//! every change and run is audited; a principal who may read a table sees its latest status,
//! with metric values only when their view of the table is the whole table.

use crate::error::ServiceError;
use crate::home::Groundwork;
use crate::tables::normalise_name;
use groundwork_core::{ErrorCode, now_millis};
use groundwork_sql::quality::{QualityReport, Ruleset, parse_ruleset};
use groundwork_store::QualityRun;
use serde::Serialize;
use serde_json::{Value, json};

/// A table's rules and its recent runs (`quality show`).
#[derive(Debug, Clone, Serialize)]
pub struct QualityStatus {
    pub table: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<String>,
    /// Newest first.
    pub runs: Vec<QualityRun>,
}

impl Groundwork {
    /// Sets (or, with `None`, removes) the ruleset of a table; it must parse.
    pub fn set_quality_rules(
        &self,
        kb_name: &str,
        table: &str,
        rules: Option<&str>,
    ) -> Result<(), ServiceError> {
        self.administer(
            "quality.rules",
            kb_name,
            json!({ "table": table, "rules": rules }),
            || {
                let kb = self.tables_kb(kb_name)?;
                let stored = self
                    .store()
                    .table(kb.id, &resolve(self, &kb, table)?)?
                    .ok_or_else(|| not_found(table))?;
                if let Some(text) = rules {
                    parse_ruleset(text).map_err(|e| ServiceError::invalid(format!("rules: {e}")))?;
                }
                Ok(self.store().set_quality_rules(stored.id, rules)?)
            },
        )
    }

    /// Runs the rules of one table, or of every table of `kb` that has rules.
    pub fn run_quality(
        &self,
        kb_name: &str,
        table: Option<&str>,
    ) -> Result<Vec<QualityReport>, ServiceError> {
        self.administer("quality.run", kb_name, json!({ "table": table }), || {
            let kb = self.tables_kb(kb_name)?;
            let all = self.all_tables(&kb)?;
            let wanted = match table {
                Some(name) => Some(resolve(self, &kb, name)?),
                None => None,
            };
            let defs: Vec<_> = all.iter().map(|t| t.def.clone()).collect();
            let mut reports = Vec::new();
            for table in &all {
                if wanted.as_ref().is_some_and(|w| *w != table.def.name) {
                    continue;
                }
                let Some(text) = self.store().quality_rules(table.stored.id)? else {
                    if wanted.is_some() {
                        return Err(ServiceError::invalid(format!(
                            "`{}` has no rules; set them with `quality set`",
                            table.def.name
                        )));
                    }
                    continue;
                };
                let ruleset: Ruleset = parse_ruleset(&text)
                    .map_err(|e| ServiceError::new(ErrorCode::Corrupt, format!("stored rules: {e}")))?;
                reports.push(self.run_rules(table, &defs, &ruleset)?);
            }
            Ok(reports)
        })
    }

    /// Runs the rules of the tables whose version moved in a sync (when the table has rules).
    pub(crate) fn run_quality_after_sync(
        &self,
        kb: &groundwork_core::KnowledgeBase,
        changed: &[String],
    ) -> Result<(), ServiceError> {
        let all = self.all_tables(kb)?;
        let defs: Vec<_> = all.iter().map(|t| t.def.clone()).collect();
        for table in all.iter().filter(|t| changed.contains(&t.def.name)) {
            if let Some(text) = self.store().quality_rules(table.stored.id)?
                && let Ok(ruleset) = parse_ruleset(&text)
            {
                self.run_rules(table, &defs, &ruleset)?;
            }
        }
        Ok(())
    }

    fn run_rules(
        &self,
        table: &crate::tables::Table,
        defs: &[groundwork_sql::TableDef],
        ruleset: &Ruleset,
    ) -> Result<QualityReport, ServiceError> {
        let past = self
            .store()
            .quality_runs(table.stored.id, groundwork_sql::quality::MAX_HISTORY)?;
        let history = |key: &str, k: usize| -> Vec<f64> {
            past.iter()
                .filter_map(|run| run.metrics.get(key).and_then(Value::as_f64))
                .take(k)
                .collect()
        };
        let engine = self.sql_engine()?;
        let report = engine.run_quality(&table.def, defs, ruleset, &history, self.config().sql.limits())?;
        self.store().add_quality_run(&QualityRun {
            id: 0,
            table_id: table.stored.id,
            at: now_millis(),
            version: table.stored.version.clone(),
            status: report.status.clone(),
            blocking_failed: report.blocking_failed,
            metrics: serde_json::to_value(&report.metrics).expect("metrics serialise"),
            outcomes: json!({ "outcomes": report.outcomes, "anomalies": report.anomalies, "scans": report.scans }),
        })?;
        Ok(report)
    }

    /// A table's rules and latest runs, for anyone who may read the table.
    pub fn quality_status(
        &self,
        kb_name: &str,
        table: &str,
        limit: usize,
    ) -> Result<QualityStatus, ServiceError> {
        let started = std::time::Instant::now();
        let entry = self.entry("quality.show", Some(kb_name), json!({ "table": table }));
        let result = (|| {
            let kb = self.tables_kb(kb_name)?;
            let policy = self.access_policy()?;
            let name = resolve(self, &kb, table)?;
            let readable = self
                .readable_tables(&kb, &policy)?
                .into_iter()
                .find(|(t, _)| t.def.name == name);
            let Some((table, table_policy)) = readable else {
                return Err(not_found(table));
            };
            let mut runs = self.store().quality_runs(table.stored.id, limit.clamp(1, 100))?;
            if !table_policy.is_unrestricted() {
                // Metrics are computed over every row; a narrower view sees only the verdicts.
                for run in &mut runs {
                    run.metrics = Value::Null;
                    if let Some(outcomes) = run.outcomes["outcomes"].as_array_mut() {
                        for outcome in outcomes {
                            outcome["metric"] = Value::Null;
                            outcome["threshold"] = Value::Null;
                            outcome["message"] = Value::Null;
                        }
                    }
                    run.outcomes["anomalies"] = Value::Null;
                }
            }
            Ok(QualityStatus {
                table: table.def.name.clone(),
                rules: self.store().quality_rules(table.stored.id)?,
                runs,
            })
        })();
        self.record_read(entry, started, &result, Vec::new())?;
        result
    }
}

/// The stored name of `table` in `kb`, written any way SQL would accept.
fn resolve(
    groundwork: &Groundwork,
    kb: &groundwork_core::KnowledgeBase,
    table: &str,
) -> Result<String, ServiceError> {
    let wanted = normalise_name(table);
    groundwork
        .store()
        .tables(kb.id)?
        .into_iter()
        .find(|t| normalise_name(&t.name) == wanted)
        .map(|t| t.name)
        .ok_or_else(|| not_found(table))
}

fn not_found(name: &str) -> ServiceError {
    ServiceError::new(ErrorCode::NotFound, format!("table `{name}` does not exist"))
}
