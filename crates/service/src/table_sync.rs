//! Sync of a tables knowledge base: discovery of every source's tables, one catalogue commit
//! per source, then profiles (and data-quality rules) of the tables that changed.
//!
//! Invariant: a table is re-read only when its version moved — an unchanged file, database or
//! PostgreSQL table costs a listing, not a scan — and a source that cannot be listed fails
//! the sync without touching its catalogue.

use crate::error::ServiceError;
use crate::home::Groundwork;
use groundwork_core::KnowledgeBase;
use groundwork_ingest::sync::{
    ChangeKind, ChangedDocument, SyncEvent, SyncFailure, SyncObserver, SyncReport,
};
use groundwork_sql::TableDef;
use groundwork_sql::discover::TableLocation;
use groundwork_store::TableWrite;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Instant;

impl Groundwork {
    /// Discovers the tables of every source of a tables knowledge base, commits each source's
    /// catalogue in one transaction, and profiles the tables that are new or changed.
    pub(crate) fn sync_tables(
        &self,
        kb: &KnowledgeBase,
        observer: &mut dyn SyncObserver,
    ) -> Result<SyncReport, ServiceError> {
        let started = Instant::now();
        let store = self.store();
        let run_id = store.begin_sync_run(kb.id)?;
        let result = self.sync_tables_inner(kb, observer, run_id);
        let result = result.map(|mut report| {
            report.duration_ms = started.elapsed().as_millis() as u64;
            report
        });
        match &result {
            Ok(report) => store.finish_sync_run(
                run_id,
                "completed",
                &serde_json::to_value(report).unwrap_or(Value::Null),
            )?,
            Err(e) => {
                let _ = store.finish_sync_run(run_id, "failed", &json!({ "error": e.to_string() }));
            }
        }
        result
    }

    fn sync_tables_inner(
        &self,
        kb: &KnowledgeBase,
        observer: &mut dyn SyncObserver,
        run_id: i64,
    ) -> Result<SyncReport, ServiceError> {
        let store = self.store();
        let engine = self.sql_engine()?;
        let sources = store.sources(kb.id)?;
        let mut report = SyncReport {
            run_id,
            sources: sources.len(),
            ..SyncReport::default()
        };
        let known_all = self.all_tables(kb)?;
        let mut to_profile = Vec::new();
        for source in &sources {
            let location = TableLocation::stored(&source.uri)?;
            let known: HashMap<String, TableDef> = known_all
                .iter()
                .filter(|t| t.stored.source_id == source.id)
                .map(|t| (t.def.location.clone(), t.def.clone()))
                .collect();
            let found = engine.discover(&location, &source.config, source.config.name.as_deref(), &known)?;
            observer.event(SyncEvent::Listed {
                source: &source.uri,
                objects: found.tables.len(),
            });
            for (uri, code, message) in &found.failures {
                report.failed.push(SyncFailure {
                    uri: uri.clone(),
                    code: *code,
                    message: message.clone(),
                });
            }
            let writes: Vec<TableWrite> = found
                .tables
                .iter()
                .map(|def| TableWrite {
                    name: def.name.clone(),
                    location: def.location.clone(),
                    version: def.version.clone(),
                    schema_hash: def.schema_hash.clone(),
                    def: serde_json::to_value(def).expect("table definitions serialise"),
                    columns: serde_json::to_value(&def.columns).expect("columns serialise"),
                })
                .collect();
            let changes = store.apply_tables(kb.id, source.id, &writes)?;
            report.listed += found.tables.len();
            report.unchanged += changes.unchanged;
            for (names, kind) in [
                (&changes.added, ChangeKind::Added),
                (&changes.updated, ChangeKind::Updated),
                (&changes.deleted, ChangeKind::Deleted),
            ] {
                for name in names {
                    report.changed.push(ChangedDocument {
                        uri: name.clone(),
                        change: kind,
                    });
                }
            }
            report.added += changes.added.len();
            report.updated += changes.updated.len();
            report.deleted += changes.deleted.len();
            to_profile.extend(changes.added.iter().chain(&changes.updated).cloned());
        }
        observer.event(SyncEvent::Planned {
            to_process: to_profile.len(),
        });
        // Profiles follow the catalogue: a table is profiled when its version moved (or it was
        // never profiled), so an unchanged re-sync reads nothing.
        let limits = self.config().sql.limits();
        for table in self.all_tables(kb)? {
            let stale = table.stored.profiled_version.as_deref() != Some(table.stored.version.as_str());
            if !stale {
                continue;
            }
            match engine.profile(&table.def, limits) {
                Ok(profile) => {
                    store.set_table_profile(
                        table.stored.id,
                        &table.stored.version,
                        &serde_json::to_value(&profile).expect("profiles serialise"),
                    )?;
                }
                Err(e) => report.failed.push(SyncFailure {
                    uri: table.def.location.clone(),
                    code: e.code_for_document(),
                    message: format!("profile of `{}`: {e}", table.def.name),
                }),
            }
            observer.event(SyncEvent::Processed { uri: &table.def.name });
        }
        if self.config().sql.quality_after_sync {
            let changed: Vec<String> = report
                .changed
                .iter()
                .filter(|c| c.change != ChangeKind::Deleted)
                .map(|c| c.uri.clone())
                .collect();
            self.run_quality_after_sync(kb, &changed)?;
        }
        // With a model configured, every table gets a generated description of its current
        // version; a table the model could not describe keeps its derived one and is reported.
        if let Some(llm) = kb.config.llm.clone().or_else(|| self.config().llm.clone()) {
            for (table, message) in self.generate_descriptions(kb, &llm)? {
                report.failed.push(SyncFailure {
                    uri: table,
                    code: groundwork_core::ErrorCode::GenerationFailed,
                    message: format!("description: {message}"),
                });
            }
        }
        Ok(report)
    }
}
