//! SQLite database files as tables: discovery (every table and view) and a read-only provider
//! that streams rows into Arrow batches, with projection and limit pushed into SQLite.
//!
//! Invariant: a database is only ever opened read-only (`SQLITE_OPEN_READ_ONLY`,
//! `PRAGMA query_only`), extensions cannot load, and every statement sent to it is one this
//! module wrote from quoted identifiers — never text from a query.

use crate::catalog::{Column, TableDef, TableSource, identifier};
use crate::error::{Result, SqlError};
use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, Float64Builder, Int64Builder, RecordBatch, RecordBatchOptions,
    StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::catalog::{Session, TableProvider};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;
use datafusion::physical_plan::streaming::PartitionStream;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::Arc;

/// Rows sampled per column to settle its type when the declared type says nothing.
const TYPE_SAMPLE_ROWS: usize = 10_000;

/// Opens a database read-only.
pub fn open(path: &Path) -> Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(|e| SqlError::Unavailable(format!("{}: {e}", path.display())))?;
    connection
        .pragma_update(None, "query_only", true)
        .map_err(|e| SqlError::Unavailable(format!("{}: {e}", path.display())))?;
    Ok(connection)
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Every table and view of the database at `path`. `namespace` prefixes the SQL names
/// (`ns.table`); `location` is the database's URI (tables get `location/table`).
pub fn discover(path: &Path, location: &str, namespace: &str, version: &str) -> Result<Vec<TableDef>> {
    let connection = open(path)?;
    let failed = |e: rusqlite::Error| SqlError::Unavailable(format!("{}: {e}", path.display()));
    let mut statement = connection
        .prepare(
            "SELECT name, type, COALESCE(sql, '') FROM sqlite_master \
             WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .map_err(failed)?;
    let objects: Vec<(String, String, String)> = statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(failed)?
        .collect::<std::result::Result<_, _>>()
        .map_err(failed)?;
    let namespace = identifier(namespace);
    let mut tables = Vec::new();
    for (name, kind, sql) in objects {
        let columns = columns(&connection, &name)?;
        let schema_hash = TableDef::columns_hash(&columns);
        tables.push(TableDef {
            name: format!("{namespace}.{}", identifier(&name)),
            location: format!("{}/{name}", location.trim_end_matches('/')),
            source: TableSource::Sqlite {
                path: path.to_string_lossy().into_owned(),
                table: name.clone(),
            },
            columns,
            kind: kind.clone(),
            comment: None,
            // The file's version covers the data; the definition covers a changed view.
            version: groundwork_core::sha256_hex(format!("{version}\u{1f}{sql}").as_bytes())[..16].to_owned(),
            source_version: version.to_owned(),
            schema_hash,
        });
    }
    Ok(tables)
}

/// A table's columns: the declared type's affinity when it has one, else what a sample of the
/// values holds (integers, reals, text, blobs).
fn columns(connection: &Connection, table: &str) -> Result<Vec<Column>> {
    let failed = |e: rusqlite::Error| SqlError::Unavailable(format!("{table}: {e}"));
    let mut statement = connection
        .prepare(&format!("PRAGMA table_info({})", quote(table)))
        .map_err(failed)?;
    let declared: Vec<(String, String, bool)> = statement
        .query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? != 0)))
        .map_err(failed)?
        .collect::<std::result::Result<_, _>>()
        .map_err(failed)?;
    let mut out = Vec::with_capacity(declared.len());
    for (name, declared_type, not_null) in declared {
        let data_type = match affinity(&declared_type) {
            Some(t) => t,
            None => sampled_type(connection, table, &name)?,
        };
        out.push(Column {
            name,
            data_type: data_type.to_string(),
            nullable: !not_null,
            comment: None,
        });
    }
    Ok(out)
}

/// SQLite's type affinity rules, as Arrow types; `None` when the declared type is empty or
/// says nothing (`NUMERIC`, no type).
fn affinity(declared: &str) -> Option<DataType> {
    let d = declared.to_ascii_uppercase();
    if d.contains("INT") {
        Some(DataType::Int64)
    } else if d.contains("CHAR") || d.contains("CLOB") || d.contains("TEXT") {
        Some(DataType::Utf8)
    } else if d.contains("BLOB") {
        Some(DataType::Binary)
    } else if d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB") {
        Some(DataType::Float64)
    } else {
        None
    }
}

fn sampled_type(connection: &Connection, table: &str, column: &str) -> Result<DataType> {
    let sql = format!(
        "SELECT DISTINCT typeof({c}) FROM (SELECT {c} FROM {t} LIMIT {TYPE_SAMPLE_ROWS})",
        c = quote(column),
        t = quote(table)
    );
    let failed = |e: rusqlite::Error| SqlError::Unavailable(format!("{table}.{column}: {e}"));
    let mut statement = connection.prepare(&sql).map_err(failed)?;
    let kinds: Vec<String> = statement
        .query_map([], |r| r.get(0))
        .map_err(failed)?
        .collect::<std::result::Result<_, _>>()
        .map_err(failed)?;
    let has = |k: &str| kinds.iter().any(|x| x == k);
    Ok(if has("text") {
        DataType::Utf8
    } else if has("blob") {
        DataType::Binary
    } else if has("real") {
        DataType::Float64
    } else if has("integer") {
        DataType::Int64
    } else {
        DataType::Utf8
    })
}

/// A table of a database file.
#[derive(Debug)]
pub struct SqliteTable {
    path: String,
    table: String,
    schema: SchemaRef,
}

impl SqliteTable {
    pub fn new(def: &TableDef) -> Result<SqliteTable> {
        let TableSource::Sqlite { path, table } = &def.source else {
            return Err(SqlError::Internal(format!("{} is not a SQLite table", def.name)));
        };
        let fields: Vec<Field> = def
            .columns
            .iter()
            .map(|c| Field::new(&c.name, c.data_type.parse().unwrap_or(DataType::Utf8), true))
            .collect();
        Ok(SqliteTable {
            path: path.clone(),
            table: table.clone(),
            schema: Arc::new(Schema::new(fields)),
        })
    }
}

#[async_trait]
impl TableProvider for SqliteTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let projected = Arc::new(match projection {
            Some(p) => self.schema.project(p)?,
            None => self.schema.as_ref().clone(),
        });
        let columns = if projected.fields().is_empty() {
            "1".to_owned()
        } else {
            projected
                .fields()
                .iter()
                .map(|f| quote(f.name()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut sql = format!("SELECT {columns} FROM {}", quote(&self.table));
        if let Some(n) = limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        let partition = Arc::new(SqlitePartition {
            path: self.path.clone(),
            sql,
            schema: Arc::clone(&projected),
            batch_size: state.config().batch_size(),
        });
        StreamingTable::try_new(projected, vec![partition])?
            .scan(state, None, &[], limit)
            .await
    }
}

#[derive(Debug)]
struct SqlitePartition {
    path: String,
    sql: String,
    schema: SchemaRef,
    batch_size: usize,
}

impl PartitionStream for SqlitePartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _context: Arc<TaskContext>) -> SendableRecordBatchStream {
        let mut builder = RecordBatchReceiverStreamBuilder::new(Arc::clone(&self.schema), 2);
        let sender = builder.tx();
        let (path, sql, schema, batch_size) = (
            self.path.clone(),
            self.sql.clone(),
            Arc::clone(&self.schema),
            self.batch_size.max(1),
        );
        builder.spawn_blocking(move || {
            let external = |e: rusqlite::Error| DataFusionError::External(Box::new(e));
            let connection = open(Path::new(&path)).map_err(|e| DataFusionError::External(Box::new(e)))?;
            let mut statement = connection.prepare(&sql).map_err(external)?;
            let mut rows = statement.query([]).map_err(external)?;
            loop {
                let mut builders: Vec<Box<dyn ArrayBuilder>> = schema
                    .fields()
                    .iter()
                    .map(|f| builder_for(f.data_type()))
                    .collect();
                let mut count = 0;
                while count < batch_size {
                    let Some(row) = rows.next().map_err(external)? else {
                        break;
                    };
                    for (i, field) in schema.fields().iter().enumerate() {
                        let value = row.get_ref(i).map_err(external)?;
                        append(builders[i].as_mut(), field, value)?;
                    }
                    count += 1;
                }
                if count == 0 {
                    return Ok(());
                }
                let arrays: Vec<ArrayRef> = builders.iter_mut().map(|b| b.finish()).collect();
                let options = RecordBatchOptions::new().with_row_count(Some(count));
                let batch = RecordBatch::try_new_with_options(Arc::clone(&schema), arrays, &options)?;
                // The consumer went away (a limit reached, a timeout): stop reading.
                if sender.blocking_send(Ok(batch)).is_err() || count < batch_size {
                    return Ok(());
                }
            }
        });
        builder.build()
    }
}

fn builder_for(data_type: &DataType) -> Box<dyn ArrayBuilder> {
    match data_type {
        DataType::Int64 => Box::new(Int64Builder::new()),
        DataType::Float64 => Box::new(Float64Builder::new()),
        DataType::Binary => Box::new(BinaryBuilder::new()),
        _ => Box::new(StringBuilder::new()),
    }
}

/// Appends one value, converting across SQLite's dynamic types where that loses nothing
/// (integers into a real column, anything into a text column); a value that cannot be the
/// column's type is an error that says so, never a silent NULL.
fn append(builder: &mut dyn ArrayBuilder, field: &Field, value: ValueRef<'_>) -> DfResult<()> {
    let mismatch = || {
        DataFusionError::Execution(format!(
            "column `{}` holds a {} value where {} was discovered; re-sync the knowledge base",
            field.name(),
            value.data_type(),
            field.data_type()
        ))
    };
    let any = builder.as_any_mut();
    match field.data_type() {
        DataType::Int64 => {
            let b = any
                .downcast_mut::<Int64Builder>()
                .expect("builder matches the field");
            match value {
                ValueRef::Null => b.append_null(),
                ValueRef::Integer(i) => b.append_value(i),
                ValueRef::Real(r) if r.fract() == 0.0 && r.abs() < 9.0e15 => b.append_value(r as i64),
                ValueRef::Text(t) => match std::str::from_utf8(t).ok().and_then(|t| t.trim().parse().ok()) {
                    Some(i) => b.append_value(i),
                    None if t.is_empty() => b.append_null(),
                    None => return Err(mismatch()),
                },
                _ => return Err(mismatch()),
            }
        }
        DataType::Float64 => {
            let b = any
                .downcast_mut::<Float64Builder>()
                .expect("builder matches the field");
            match value {
                ValueRef::Null => b.append_null(),
                ValueRef::Integer(i) => b.append_value(i as f64),
                ValueRef::Real(r) => b.append_value(r),
                ValueRef::Text(t) => match std::str::from_utf8(t).ok().and_then(|t| t.trim().parse().ok()) {
                    Some(r) => b.append_value(r),
                    None if t.is_empty() => b.append_null(),
                    None => return Err(mismatch()),
                },
                ValueRef::Blob(_) => return Err(mismatch()),
            }
        }
        DataType::Binary => {
            let b = any
                .downcast_mut::<BinaryBuilder>()
                .expect("builder matches the field");
            match value {
                ValueRef::Null => b.append_null(),
                ValueRef::Blob(x) | ValueRef::Text(x) => b.append_value(x),
                ValueRef::Integer(i) => b.append_value(i.to_string()),
                ValueRef::Real(r) => b.append_value(r.to_string()),
            }
        }
        _ => {
            let b = any
                .downcast_mut::<StringBuilder>()
                .expect("builder matches the field");
            match value {
                ValueRef::Null => b.append_null(),
                ValueRef::Text(t) => b.append_value(String::from_utf8_lossy(t)),
                ValueRef::Integer(i) => b.append_value(i.to_string()),
                ValueRef::Real(r) => b.append_value(r.to_string()),
                ValueRef::Blob(x) => b.append_value(hex::encode(x)),
            }
        }
    }
    Ok(())
}
