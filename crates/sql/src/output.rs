//! Result formats: an aligned text table, CSV, a JSON array of objects, JSON Lines and Parquet.

use crate::error::{Result, SqlError};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Table,
    Csv,
    Json,
    Jsonl,
    Parquet,
}

impl std::str::FromStr for Format {
    type Err = SqlError;
    fn from_str(s: &str) -> Result<Format> {
        match s.to_ascii_lowercase().as_str() {
            "table" => Ok(Format::Table),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            "jsonl" | "ndjson" => Ok(Format::Jsonl),
            "parquet" => Ok(Format::Parquet),
            other => Err(SqlError::Invalid(format!(
                "`{other}` is not a format: use table, csv, json, jsonl or parquet"
            ))),
        }
    }
}

fn failed(e: impl std::fmt::Display) -> SqlError {
    SqlError::Internal(format!("cannot write the result: {e}"))
}

/// Writes `batches` (with `schema`, for an empty result) in `format`.
pub fn write(format: Format, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    use datafusion::arrow;
    match format {
        Format::Table => {
            let text = if batches.is_empty() {
                arrow::util::pretty::pretty_format_batches(&[RecordBatch::new_empty(schema.clone())])
            } else {
                arrow::util::pretty::pretty_format_batches(batches)
            }
            .map_err(failed)?;
            Ok(format!("{text}\n").into_bytes())
        }
        Format::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(Vec::new());
            if batches.is_empty() {
                writer
                    .write(&RecordBatch::new_empty(schema.clone()))
                    .map_err(failed)?;
            }
            for batch in batches {
                writer.write(batch).map_err(failed)?;
            }
            Ok(writer.into_inner())
        }
        Format::Json => {
            let mut writer = arrow::json::ArrayWriter::new(Vec::new());
            for batch in batches {
                writer.write(batch).map_err(failed)?;
            }
            writer.finish().map_err(failed)?;
            let bytes = writer.into_inner();
            Ok(if bytes.is_empty() { b"[]".to_vec() } else { bytes })
        }
        Format::Jsonl => {
            let mut writer = arrow::json::LineDelimitedWriter::new(Vec::new());
            for batch in batches {
                writer.write(batch).map_err(failed)?;
            }
            writer.finish().map_err(failed)?;
            Ok(writer.into_inner())
        }
        Format::Parquet => {
            let mut writer =
                datafusion::parquet::arrow::ArrowWriter::try_new(Vec::new(), schema.clone(), None)
                    .map_err(failed)?;
            for batch in batches {
                writer.write(batch).map_err(failed)?;
            }
            writer.into_inner().map_err(failed)
        }
    }
}

/// Rows as JSON objects (column → value), for API responses and answers.
pub fn rows_json(batches: &[RecordBatch]) -> Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    let mut writer = datafusion::arrow::json::ArrayWriter::new(Vec::new());
    for batch in batches {
        writer.write(batch).map_err(failed)?;
    }
    writer.finish().map_err(failed)?;
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&bytes).map_err(failed)
}
