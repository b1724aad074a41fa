//! Tables of tables knowledge bases: their definitions (stored as the engine's JSON), versions,
//! schema history, profiles, data-quality rules and runs.
//!
//! Invariant: one source's discovery commits in one transaction — every table it found is
//! upserted, every table it no longer has is deleted, and a changed schema appends a row to
//! `table_versions` — so a crash leaves the old catalogue or the new one, never a mix.

use crate::error::{Result, StoreError};
use crate::sql::write_transaction;
use crate::store::Store;
use groundwork_core::{KbId, SourceId, UnixMillis, now_millis};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;

/// A stored table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredTable {
    pub id: i64,
    pub kb_id: KbId,
    pub source_id: SourceId,
    pub name: String,
    pub location: String,
    pub version: String,
    /// 1 at discovery, +1 at every schema change.
    pub version_no: i64,
    pub schema_hash: String,
    /// The engine's table definition.
    pub def: Value,
    pub profile: Option<Value>,
    /// The version the profile was computed at.
    pub profiled_version: Option<String>,
    pub profiled_at: Option<UnixMillis>,
    pub updated_at: UnixMillis,
}

/// A table as one discovery found it.
#[derive(Debug, Clone)]
pub struct TableWrite {
    pub name: String,
    pub location: String,
    pub version: String,
    pub schema_hash: String,
    pub def: Value,
    /// The columns, for the schema history.
    pub columns: Value,
}

/// A schema version of a table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableVersion {
    pub version_no: i64,
    pub version: String,
    pub schema_hash: String,
    pub columns: Value,
    pub at: UnixMillis,
}

/// One data-quality run of a table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QualityRun {
    pub id: i64,
    pub table_id: i64,
    pub at: UnixMillis,
    pub version: String,
    /// `passed`, `failed` or `error`.
    pub status: String,
    pub blocking_failed: bool,
    /// Metric key → value, for dynamic thresholds over history.
    pub metrics: Value,
    pub outcomes: Value,
}

const COLUMNS: &str = "id, kb_id, source_id, name, location, version, version_no, schema_hash, def, profile, \
                       profiled_version, profiled_at, updated_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(StoredTable, String, Option<String>)> {
    Ok((
        StoredTable {
            id: r.get(0)?,
            kb_id: r.get(1)?,
            source_id: r.get(2)?,
            name: r.get(3)?,
            location: r.get(4)?,
            version: r.get(5)?,
            version_no: r.get(6)?,
            schema_hash: r.get(7)?,
            def: Value::Null,
            profile: None,
            profiled_version: r.get(10)?,
            profiled_at: r.get(11)?,
            updated_at: r.get(12)?,
        },
        r.get(8)?,
        r.get(9)?,
    ))
}

fn parse(raw: (StoredTable, String, Option<String>)) -> Result<StoredTable> {
    let (mut table, def, profile) = raw;
    table.def = serde_json::from_str(&def)
        .map_err(|e| StoreError::Corrupt(format!("table {}: definition: {e}", table.name)))?;
    table.profile = profile
        .map(|p| serde_json::from_str(&p))
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("table {}: profile: {e}", table.name)))?;
    Ok(table)
}

/// What one discovery changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TableChanges {
    pub added: Vec<String>,
    pub updated: Vec<String>,
    /// Tables whose columns changed (a new version number).
    pub schema_changed: Vec<String>,
    pub deleted: Vec<String>,
    pub unchanged: usize,
}

impl Store {
    /// Every table of a knowledge base, by name.
    pub fn tables(&self, kb_id: KbId) -> Result<Vec<StoredTable>> {
        let conn = self.conn();
        let mut statement = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM tables WHERE kb_id = ?1 ORDER BY name"
        ))?;
        let raw: Vec<_> = statement
            .query_map(params![kb_id], row)?
            .collect::<rusqlite::Result<_>>()?;
        raw.into_iter().map(parse).collect()
    }

    pub fn table(&self, kb_id: KbId, name: &str) -> Result<Option<StoredTable>> {
        let conn = self.conn();
        let raw = conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM tables WHERE kb_id = ?1 AND name = ?2"),
                params![kb_id, name],
                row,
            )
            .optional()?;
        raw.map(parse).transpose()
    }

    /// Replaces what one source holds with what its discovery found, in one transaction.
    pub fn apply_tables(
        &self,
        kb_id: KbId,
        source_id: SourceId,
        found: &[TableWrite],
    ) -> Result<TableChanges> {
        let mut conn = self.conn();
        let tx = write_transaction(&mut conn)?;
        let now = now_millis();
        let mut changes = TableChanges::default();
        let existing: Vec<(i64, String, String, String, i64)> = {
            let mut statement = tx.prepare(
                "SELECT id, name, version, schema_hash, version_no FROM tables WHERE kb_id = ?1 AND source_id = ?2",
            )?;
            statement
                .query_map(params![kb_id, source_id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect::<rusqlite::Result<_>>()?
        };
        for table in found {
            let def = serde_json::to_string(&table.def).expect("JSON values serialise");
            let columns = serde_json::to_string(&table.columns).expect("JSON values serialise");
            match existing.iter().find(|e| e.1 == table.name) {
                Some((id, _, version, schema_hash, version_no)) => {
                    if *version == table.version && *schema_hash == table.schema_hash {
                        changes.unchanged += 1;
                        continue;
                    }
                    let schema_changed = *schema_hash != table.schema_hash;
                    let version_no = if schema_changed {
                        version_no + 1
                    } else {
                        *version_no
                    };
                    tx.execute(
                        "UPDATE tables SET location = ?2, version = ?3, version_no = ?4, schema_hash = ?5, def = ?6, \
                         updated_at = ?7 WHERE id = ?1",
                        params![id, table.location, table.version, version_no, table.schema_hash, def, now],
                    )?;
                    if schema_changed {
                        tx.execute(
                            "INSERT INTO table_versions (table_id, version_no, version, schema_hash, columns, at) \
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                            params![id, version_no, table.version, table.schema_hash, columns, now],
                        )?;
                        changes.schema_changed.push(table.name.clone());
                    }
                    changes.updated.push(table.name.clone());
                }
                None => {
                    let taken: bool = tx
                        .query_row(
                            "SELECT 1 FROM tables WHERE kb_id = ?1 AND name = ?2",
                            params![kb_id, table.name],
                            |_| Ok(true),
                        )
                        .optional()?
                        .unwrap_or(false);
                    if taken {
                        return Err(StoreError::Refused(format!(
                            "two sources name a table `{}`; give one source another name (source add --name)",
                            table.name
                        )));
                    }
                    tx.execute(
                        "INSERT INTO tables (kb_id, source_id, name, location, version, version_no, schema_hash, def, \
                         created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?8, ?8)",
                        params![kb_id, source_id, table.name, table.location, table.version, table.schema_hash, def, now],
                    )?;
                    let id = tx.last_insert_rowid();
                    tx.execute(
                        "INSERT INTO table_versions (table_id, version_no, version, schema_hash, columns, at) \
                         VALUES (?1, 1, ?2, ?3, ?4, ?5)",
                        params![id, table.version, table.schema_hash, columns, now],
                    )?;
                    changes.added.push(table.name.clone());
                }
            }
        }
        for (id, name, ..) in &existing {
            if !found.iter().any(|t| t.name == *name) {
                tx.execute("DELETE FROM tables WHERE id = ?1", params![id])?;
                changes.deleted.push(name.clone());
            }
        }
        tx.commit()?;
        Ok(changes)
    }

    /// Stores a table's profile, computed at `version`.
    pub fn set_table_profile(&self, table_id: i64, version: &str, profile: &Value) -> Result<()> {
        self.conn().execute(
            "UPDATE tables SET profile = ?2, profiled_version = ?3, profiled_at = ?4 WHERE id = ?1",
            params![
                table_id,
                serde_json::to_string(profile).expect("JSON values serialise"),
                version,
                now_millis()
            ],
        )?;
        Ok(())
    }

    /// The schema history of a table, oldest first.
    pub fn table_versions(&self, table_id: i64) -> Result<Vec<TableVersion>> {
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT version_no, version, schema_hash, columns, at FROM table_versions WHERE table_id = ?1 ORDER BY id",
        )?;
        let rows = statement.query_map(params![table_id], |r| {
            let columns: String = r.get(3)?;
            Ok(TableVersion {
                version_no: r.get(0)?,
                version: r.get(1)?,
                schema_hash: r.get(2)?,
                columns: serde_json::from_str(&columns).unwrap_or(Value::Null),
                at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The data-quality ruleset of a table, if any.
    pub fn quality_rules(&self, table_id: i64) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT ruleset FROM quality_rules WHERE table_id = ?1",
                params![table_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn set_quality_rules(&self, table_id: i64, ruleset: Option<&str>) -> Result<()> {
        let conn = self.conn();
        match ruleset {
            Some(text) => conn.execute(
                "INSERT INTO quality_rules (table_id, ruleset, updated_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (table_id) DO UPDATE SET ruleset = excluded.ruleset, updated_at = excluded.updated_at",
                params![table_id, text, now_millis()],
            )?,
            None => conn.execute("DELETE FROM quality_rules WHERE table_id = ?1", params![table_id])?,
        };
        Ok(())
    }

    pub fn add_quality_run(&self, run: &QualityRun) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO quality_runs (table_id, at, version, status, blocking_failed, metrics, outcomes) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                run.table_id,
                run.at,
                run.version,
                run.status,
                run.blocking_failed,
                serde_json::to_string(&run.metrics).expect("JSON values serialise"),
                serde_json::to_string(&run.outcomes).expect("JSON values serialise"),
            ],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// The newest runs of a table, newest first.
    pub fn quality_runs(&self, table_id: i64, limit: usize) -> Result<Vec<QualityRun>> {
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT id, table_id, at, version, status, blocking_failed, metrics, outcomes FROM quality_runs \
             WHERE table_id = ?1 ORDER BY at DESC, id DESC LIMIT ?2",
        )?;
        let rows = statement.query_map(params![table_id, limit as i64], |r| {
            let metrics: String = r.get(6)?;
            let outcomes: String = r.get(7)?;
            Ok(QualityRun {
                id: r.get(0)?,
                table_id: r.get(1)?,
                at: r.get(2)?,
                version: r.get(3)?,
                status: r.get(4)?,
                blocking_failed: r.get(5)?,
                metrics: serde_json::from_str(&metrics).unwrap_or(Value::Null),
                outcomes: serde_json::from_str(&outcomes).unwrap_or(Value::Null),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
