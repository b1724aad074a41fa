//! What a table is: its SQL name, where it lives (the location grants cover), how to read it,
//! its columns and the version it was discovered at. Plain data, stored by the caller.

use serde::{Deserialize, Serialize};

/// File formats a folder or bucket table can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    Parquet,
    Csv,
    /// JSON Lines (one object per line).
    Jsonl,
}

impl FileFormat {
    /// The format of a file, by extension.
    pub fn of(name: &str) -> Option<FileFormat> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".parquet") {
            Some(FileFormat::Parquet)
        } else if lower.ends_with(".csv") {
            Some(FileFormat::Csv)
        } else if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") {
            Some(FileFormat::Jsonl)
        } else {
            None
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Parquet => ".parquet",
            FileFormat::Csv => ".csv",
            FileFormat::Jsonl => ".jsonl",
        }
    }
}

/// How to read a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TableSource {
    /// Parquet, CSV or JSON Lines files: every file under `root` (a `file://` folder or an
    /// `s3://bucket/prefix/`) with the format's extension, or just `files` when the table is a
    /// lone file. Hive-style `key=value/` folders become `partition_columns`.
    Files {
        root: String,
        format: FileFormat,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        partition_columns: Vec<String>,
        /// The exact files, when the table is not a whole folder.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<String>,
        /// The S3-compatible endpoint of an `s3://` root.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
    },
    /// A table or view of a SQLite database file, opened read-only.
    Sqlite { path: String, table: String },
    /// A table or view of a PostgreSQL database, queried in PostgreSQL.
    Postgres {
        /// `postgres://user@host:port/db` — never with a password.
        url: String,
        schema: String,
        table: String,
    },
}

/// One column as discovered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// The Arrow type as DataFusion shows it (`Int64`, `Utf8`, `Date32`, …).
    pub data_type: String,
    pub nullable: bool,
    /// The source's own comment (a PostgreSQL `COMMENT ON COLUMN`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A discovered table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    /// The name SQL uses: `orders`, or `ns.orders` for tables of a database source.
    pub name: String,
    /// The location grants are matched against: the folder or file URI, `s3://…`,
    /// `file:///db.sqlite/table`, `postgres://host:port/db/schema/table`.
    pub location: String,
    pub source: TableSource,
    pub columns: Vec<Column>,
    /// `table` or `view`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Changes whenever the data may have changed: a hash of the files' ETags, the database
    /// file's version, or a PostgreSQL fingerprint.
    pub version: String,
    /// The version of what was read to discover the table (the files' combined ETags, the
    /// database file's version, the PostgreSQL fingerprint): unchanged means nothing to read.
    #[serde(default)]
    pub source_version: String,
    /// Changes only when the columns change.
    pub schema_hash: String,
}

impl TableDef {
    /// The hash of the column list (names, types, nullability).
    pub fn columns_hash(columns: &[Column]) -> String {
        let text: Vec<String> = columns
            .iter()
            .map(|c| format!("{}\u{1f}{}\u{1f}{}", c.name, c.data_type, c.nullable))
            .collect();
        groundwork_core::sha256_hex(text.join("\u{1e}").as_bytes())[..16].to_owned()
    }
}

/// A name as a SQL identifier: lower case, letters, digits and `_`, not starting with a digit.
pub fn identifier(raw: &str) -> String {
    let mut out: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    while out.contains("__") {
        out = out.replace("__", "_");
    }
    let trimmed = out.trim_matches('_').to_owned();
    match trimmed.chars().next() {
        None => "t".to_owned(),
        Some(c) if c.is_ascii_digit() => format!("t_{trimmed}"),
        Some(_) => trimmed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_plain() {
        assert_eq!(identifier("Sales Orders-2024"), "sales_orders_2024");
        assert_eq!(identifier("2024"), "t_2024");
        assert_eq!(identifier("..."), "t");
        assert_eq!(FileFormat::of("a/B.PARQUET"), Some(FileFormat::Parquet));
        assert_eq!(FileFormat::of("x.ndjson"), Some(FileFormat::Jsonl));
        assert_eq!(FileFormat::of("x.txt"), None);
    }
}
