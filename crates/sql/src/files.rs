//! Tables made of files: which files of a folder or bucket form which table, and the provider
//! that reads exactly those files.
//!
//! Invariant: a file table reads only below its own location — its folder, or its one file —
//! through the confined store (`stores`), so never outside the source's root nor through a
//! link; discovery lists through `groundwork-objects`, which follows the same rule. Grouping: below the source's root, each folder is one table (named after it, all
//! its files of one format, Hive-style `key=value/` folders becoming partition columns); files
//! lying directly in the root are one table when several share a format (named after the
//! root), else one table each (named after the file).

use crate::catalog::{Column, FileFormat, TableDef, TableSource, identifier};
use crate::error::{Result, SqlError};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use groundwork_objects::ObjectEntry;
use object_store::ObjectStoreExt;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Files that form one table, before their schema is known.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub name: String,
    /// The table's location: its folder (with a trailing `/`) or its lone file.
    pub location: String,
    /// The folder the files (and partition folders) are under, with a trailing `/`.
    pub root: String,
    pub format: FileFormat,
    pub partition_columns: Vec<String>,
    /// `(uri, version)` of every file, sorted by URI.
    pub files: Vec<(String, String)>,
}

impl Candidate {
    /// Changes when any file is added, removed or changed.
    pub fn version(&self) -> String {
        let text: Vec<String> = self.files.iter().map(|(u, v)| format!("{u}\u{1f}{v}")).collect();
        groundwork_core::sha256_hex(text.join("\u{1e}").as_bytes())[..16].to_owned()
    }
}

/// Groups a completed listing of a source rooted at `root_uri` (with a trailing `/`) into table
/// candidates. Files of other formats are ignored; `name` overrides the name of a table formed
/// by the root itself.
pub fn group(root_uri: &str, objects: &[ObjectEntry], root_name: Option<&str>) -> Vec<Candidate> {
    let root_uri = if root_uri.ends_with('/') {
        root_uri.to_owned()
    } else {
        format!("{root_uri}/")
    };
    let mut at_root: Vec<(&ObjectEntry, FileFormat)> = Vec::new();
    // Folder name below the root → (format → files).
    let mut folders: BTreeMap<String, BTreeMap<String, Vec<&ObjectEntry>>> = BTreeMap::new();
    for object in objects {
        let Some(relative) = object.uri.strip_prefix(&root_uri) else {
            continue;
        };
        let Some(format) = FileFormat::of(relative) else {
            continue;
        };
        match relative.split_once('/') {
            None => at_root.push((object, format)),
            Some((folder, _)) => folders
                .entry(folder.to_owned())
                .or_default()
                .entry(format!("{format:?}"))
                .or_default()
                .push(object),
        }
    }
    let mut candidates = Vec::new();
    let root_table = root_name
        .map(identifier)
        .unwrap_or_else(|| identifier(last_segment(&root_uri)));
    // Files in the root: one table per format when several share it (their schemas are merged
    // when read, as DataFusion merges compatible files), else one per file.
    let mut by_format: BTreeMap<String, Vec<(&ObjectEntry, FileFormat)>> = BTreeMap::new();
    for (object, format) in at_root {
        by_format
            .entry(format!("{format:?}"))
            .or_default()
            .push((object, format));
    }
    for (_, files) in by_format {
        if files.len() >= 2 {
            candidates.push(Candidate {
                name: root_table.clone(),
                location: root_uri.clone(),
                root: root_uri.clone(),
                format: files[0].1,
                partition_columns: Vec::new(),
                files: sorted(files.iter().map(|(o, _)| *o)),
            });
        } else {
            for (object, format) in files {
                candidates.push(lone(&root_uri, object, format));
            }
        }
    }
    for (folder, formats) in folders {
        let several = formats.len() > 1;
        for (format_name, files) in formats {
            let format = FileFormat::of(&files[0].uri).expect("grouped by format");
            let table_root = format!("{root_uri}{folder}/");
            let base = identifier(&folder);
            candidates.push(Candidate {
                name: if several {
                    format!("{base}_{}", format_name.to_ascii_lowercase())
                } else {
                    base
                },
                location: table_root.clone(),
                partition_columns: partition_columns(&table_root, &files),
                root: table_root,
                format,
                files: sorted(files.into_iter()),
            });
        }
    }
    deduplicate_names(&mut candidates);
    candidates
}

fn lone(root_uri: &str, object: &ObjectEntry, format: FileFormat) -> Candidate {
    let file = last_segment(&object.uri);
    let stem = file.rsplit_once('.').map_or(file, |(stem, _)| stem);
    Candidate {
        name: identifier(stem),
        location: object.uri.clone(),
        root: root_uri.to_owned(),
        format,
        partition_columns: Vec::new(),
        files: vec![(object.uri.clone(), object.version.clone())],
    }
}

fn sorted<'a>(objects: impl Iterator<Item = &'a ObjectEntry>) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = objects.map(|o| (o.uri.clone(), o.version.clone())).collect();
    files.sort();
    files
}

fn last_segment(uri: &str) -> &str {
    uri.trim_end_matches('/').rsplit('/').next().unwrap_or(uri)
}

/// `key=value` folder names common to every file below `table_root`, in path order; a key
/// that not every file has is not a partition column.
fn partition_columns(table_root: &str, files: &[&ObjectEntry]) -> Vec<String> {
    let keys_of = |uri: &str| -> Vec<String> {
        let relative = uri.strip_prefix(table_root).unwrap_or(uri);
        let mut segments: Vec<&str> = relative.split('/').collect();
        segments.pop();
        segments
            .into_iter()
            .map_while(|s| s.split_once('=').map(|(k, _)| k.to_owned()))
            .collect()
    };
    let mut common: Option<Vec<String>> = None;
    for file in files {
        let keys = keys_of(&file.uri);
        common = Some(match common {
            None => keys,
            Some(previous) => previous
                .into_iter()
                .zip(keys)
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| a)
                .collect(),
        });
    }
    common.unwrap_or_default()
}

fn deduplicate_names(candidates: &mut [Candidate]) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for candidate in candidates.iter_mut() {
        let count = seen.entry(candidate.name.clone()).or_insert(0);
        *count += 1;
        if *count > 1 {
            candidate.name = format!("{}_{count}", candidate.name);
        }
    }
}

/// The DataFusion format of a file format.
fn listing_options(format: FileFormat, partition_columns: &[String], extension: &str) -> ListingOptions {
    let format_impl: Arc<dyn datafusion::datasource::file_format::FileFormat> = match format {
        FileFormat::Parquet => Arc::new(ParquetFormat::default()),
        FileFormat::Csv => Arc::new(CsvFormat::default().with_has_header(true)),
        FileFormat::Jsonl => Arc::new(JsonFormat::default()),
    };
    ListingOptions::new(format_impl)
        .with_file_extension(extension.to_owned())
        .with_table_partition_cols(
            partition_columns
                .iter()
                .map(|name| (name.clone(), DataType::Utf8))
                .collect(),
        )
}

fn urls(files: &[(String, String)]) -> Result<Vec<ListingTableUrl>> {
    files
        .iter()
        .map(|(uri, _)| ListingTableUrl::parse(uri).map_err(|e| SqlError::Invalid(format!("{uri}: {e}"))))
        .collect()
}

/// Infers the columns of a candidate from its files (Parquet footers; a sample of CSV and JSON
/// Lines records). Files whose schemas disagree cannot be one table: the error says so.
pub async fn infer(state: &dyn Session, candidate: &Candidate) -> Result<Vec<Column>> {
    let options = listing_options(candidate.format, &candidate.partition_columns, "");
    let store_url = urls(&candidate.files[..1])?.remove(0);
    let store = state
        .runtime_env()
        .object_store(&store_url)
        .map_err(|e| SqlError::Unavailable(e.to_string()))?;
    let mut metas = Vec::new();
    for url in urls(&candidate.files)? {
        let meta = store
            .head(url.prefix())
            .await
            .map_err(|e| SqlError::Unavailable(format!("{url}: {e}")))?;
        metas.push(meta);
    }
    let schema = options
        .format
        .infer_schema(state, &store, &metas)
        .await
        .map_err(|e| SqlError::Invalid(format!("cannot read the schema of `{}`: {e}", candidate.name)))?;
    let mut columns: Vec<Column> = schema
        .fields()
        .iter()
        .map(|f| Column {
            name: f.name().clone(),
            data_type: f.data_type().to_string(),
            nullable: f.is_nullable(),
            comment: None,
        })
        .collect();
    for name in &candidate.partition_columns {
        columns.push(Column {
            name: name.clone(),
            data_type: DataType::Utf8.to_string(),
            nullable: false,
            comment: Some("partition folder".into()),
        });
    }
    Ok(columns)
}

/// The provider of a files table, over exactly its listed files, with its stored columns (no
/// file is read to plan a query).
pub fn provider(def: &TableDef) -> Result<Arc<dyn TableProvider>> {
    let TableSource::Files {
        format,
        partition_columns,
        files,
        root,
        ..
    } = &def.source
    else {
        return Err(SqlError::Internal(format!("{} is not a files table", def.name)));
    };
    // A folder table reads its folder (so Hive partition values come from the paths) through
    // the confined store; a lone file, just that file.
    let listed: Vec<(String, String)> = if def.location.ends_with('/') || files.is_empty() {
        vec![(root.clone(), String::new())]
    } else {
        files.iter().map(|f| (f.clone(), String::new())).collect()
    };
    // Other files in a table's folder (a README, a `.crc`) are not rows of it.
    let extension = files
        .first()
        .and_then(|f| f.rsplit_once('.'))
        .map(|(_, e)| format!(".{e}"))
        .unwrap_or_else(|| format.extension().to_owned());
    let fields: Vec<Field> = def
        .columns
        .iter()
        .filter(|c| !partition_columns.contains(&c.name))
        .map(|c| {
            let data_type: DataType = c.data_type.parse().unwrap_or(DataType::Utf8);
            Field::new(&c.name, data_type, c.nullable)
        })
        .collect();
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let config = ListingTableConfig::new_with_multi_paths(urls(&listed)?)
        .with_listing_options(listing_options(*format, partition_columns, &extension))
        .with_schema(schema);
    Ok(Arc::new(
        ListingTable::try_new(config).map_err(|e| SqlError::Internal(e.to_string()))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(uri: &str) -> ObjectEntry {
        ObjectEntry::for_tests(uri, "v1")
    }

    #[test]
    fn folders_files_and_partitions_group_into_tables() {
        let objects: Vec<ObjectEntry> = [
            "file:///d/orders/dt=2024-01-01/region=eu/a.parquet",
            "file:///d/orders/dt=2024-01-02/region=us/b.parquet",
            "file:///d/customers.csv",
            "file:///d/Events Log/2024/x.jsonl",
            "file:///d/notes.txt",
        ]
        .iter()
        .map(|u| entry(u))
        .collect();
        let tables = group("file:///d/", &objects, None);
        let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["customers", "events_log", "orders"]);
        let orders = &tables[2];
        assert_eq!(orders.partition_columns, ["dt", "region"]);
        assert_eq!(orders.location, "file:///d/orders/");
        assert_eq!(orders.files.len(), 2);
        assert_eq!(tables[0].location, "file:///d/customers.csv");
        assert!(tables[1].partition_columns.is_empty());
    }

    #[test]
    fn root_files_of_one_format_are_one_table() {
        let objects: Vec<ObjectEntry> = ["s3://b/sales/part-0.parquet", "s3://b/sales/part-1.parquet"]
            .iter()
            .map(|u| entry(u))
            .collect();
        let tables = group("s3://b/sales/", &objects, None);
        assert_eq!(tables.len(), 1);
        assert_eq!(tables[0].name, "sales");
        let renamed = group("s3://b/sales/", &objects, Some("Q1 Sales"));
        assert_eq!(renamed[0].name, "q1_sales");
        let before = tables[0].version();
        let changed = group("s3://b/sales/", &[entry("s3://b/sales/part-0.parquet")], None);
        assert_ne!(changed[0].version(), before);
    }
}
