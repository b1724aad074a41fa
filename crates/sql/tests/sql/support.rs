//! Helpers: an engine, files written with real writers, queries collected into JSON rows.

use groundwork_core::SourceConfig;
use groundwork_sql::discover::TableLocation;
use groundwork_sql::{
    Embedded, Limits, QueryEngine, QueryOutcome, QueryRequest, RecordBatch, SqlError, TableDef, TableGrant,
};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::Path;

pub fn engine() -> Embedded {
    Embedded::new([7u8; 32], Default::default()).expect("engine starts")
}

/// Runs `sql` over `tables` and returns the rows as JSON objects.
pub fn query(
    engine: &Embedded,
    tables: &[TableGrant],
    sql: &str,
) -> Result<(Vec<Map<String, Value>>, QueryOutcome), SqlError> {
    query_with(engine, tables, sql, Limits::default())
}

pub fn query_with(
    engine: &Embedded,
    tables: &[TableGrant],
    sql: &str,
    limits: Limits,
) -> Result<(Vec<Map<String, Value>>, QueryOutcome), SqlError> {
    let mut batches: Vec<RecordBatch> = Vec::new();
    let outcome = engine.query(
        &QueryRequest {
            sql,
            tables,
            limits,
            explain: false,
        },
        &mut |batch| {
            batches.push(batch.clone());
            Ok(true)
        },
    )?;
    Ok((groundwork_sql::output::rows_json(&batches)?, outcome))
}

/// Discovers every table of a source location.
pub fn discover(engine: &Embedded, location: &str) -> Vec<TableDef> {
    let location = TableLocation::parse(location).expect("a location");
    let found = engine
        .discover(&location, &SourceConfig::default(), None, &HashMap::new())
        .expect("discovery");
    assert!(found.failures.is_empty(), "{:?}", found.failures);
    found.tables
}

pub fn sqlite(path: &Path, script: &str) {
    let connection = rusqlite::Connection::open(path).expect("create database");
    connection.execute_batch(script).expect("fill database");
}

pub fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().expect("a folder")).expect("create folder");
    std::fs::write(path, content).expect("write file");
}

/// A small Parquet file from CSV text, written with the Arrow writer.
pub fn parquet(path: &Path, csv: &str) {
    use datafusion::arrow::csv::ReaderBuilder;
    use datafusion::arrow::csv::reader::Format;
    use std::io::Cursor;
    std::fs::create_dir_all(path.parent().expect("a folder")).expect("create folder");
    let format = Format::default().with_header(true);
    let (schema, _) = format
        .infer_schema(Cursor::new(csv.as_bytes()), None)
        .expect("schema");
    let schema = std::sync::Arc::new(schema);
    let reader = ReaderBuilder::new(schema.clone())
        .with_format(format)
        .build(Cursor::new(csv.as_bytes()))
        .expect("reader");
    let file = std::fs::File::create(path).expect("create parquet");
    let mut writer = datafusion::parquet::arrow::ArrowWriter::try_new(file, schema, None).expect("writer");
    for batch in reader {
        writer.write(&batch.expect("batch")).expect("write batch");
    }
    writer.close().expect("close parquet");
}

pub fn unrestricted(tables: &[TableDef]) -> Vec<TableGrant> {
    tables
        .iter()
        .map(|def| TableGrant {
            def: def.clone(),
            policy: groundwork_sql::TablePolicy::unrestricted(),
        })
        .collect()
}

pub fn column(rows: &[Map<String, Value>], name: &str) -> Vec<Value> {
    rows.iter()
        .map(|r| r.get(name).cloned().unwrap_or(Value::Null))
        .collect()
}
