//! Table discovery for one source: which tables it holds now, with their columns and versions.
//!
//! Invariant: discovery is incremental — a table whose version (its files' ETags, its database
//! file's version, its PostgreSQL fingerprint) equals the known one is returned as known, with
//! nothing read. A source that cannot be listed fails as a whole (nothing is taken for a
//! deletion); one table that cannot be read fails alone.

use crate::catalog::{FileFormat, TableDef, TableSource};
use crate::engine::{Embedded, Limits};
use crate::error::{Result, SqlError};
use crate::files::{self, Candidate};
use crate::postgres::PgLocation;
use groundwork_core::{ErrorCode, SourceConfig};
use groundwork_objects::{Connection, Location, ObjectEntry};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where a tables source lives.
#[derive(Debug, Clone, PartialEq)]
pub enum TableLocation {
    /// A folder or bucket prefix of files (and SQLite databases, for folders).
    Objects(Location),
    /// One SQLite database file.
    Sqlite(PathBuf),
    Postgres(PgLocation),
}

const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";

impl TableLocation {
    /// Parses what a user typed at `source add` for a tables knowledge base.
    pub fn parse(input: &str) -> Result<TableLocation> {
        if input.starts_with("postgres://") || input.starts_with("postgresql://") {
            return Ok(TableLocation::Postgres(PgLocation::parse(input)?));
        }
        let as_path = Path::new(input.strip_prefix("file://").unwrap_or(input));
        if !input.starts_with("s3://") && as_path.is_file() {
            let canonical =
                std::fs::canonicalize(as_path).map_err(|e| SqlError::Invalid(format!("{input}: {e}")))?;
            return if is_sqlite(&canonical) {
                Ok(TableLocation::Sqlite(canonical))
            } else {
                Err(SqlError::Invalid(format!(
                    "{input} is a file but not a SQLite database; add its folder to read Parquet, CSV or JSON Lines files"
                )))
            };
        }
        Location::parse(input)
            .map(TableLocation::Objects)
            .map_err(|e| SqlError::Invalid(e.to_string()))
    }

    /// Parses a stored source URI (as [`Self::uri`] wrote it).
    pub fn stored(uri: &str) -> Result<TableLocation> {
        if uri.starts_with("postgres://") {
            return Ok(TableLocation::Postgres(PgLocation::parse(uri)?));
        }
        if let Some(path) = uri.strip_prefix("sqlite://") {
            return Ok(TableLocation::Sqlite(PathBuf::from(path)));
        }
        Location::stored(uri)
            .map(TableLocation::Objects)
            .map_err(|e| SqlError::Invalid(e.to_string()))
    }

    /// The URI stored for the source: `file:///dir/`, `s3://…`, `sqlite:///abs/db.sqlite`, or
    /// `postgres://user@host:port/db?schema=…`.
    pub fn uri(&self) -> String {
        match self {
            TableLocation::Objects(location) => location.uri(),
            TableLocation::Sqlite(path) => format!("sqlite://{}", path.display()),
            TableLocation::Postgres(location) => location.uri(),
        }
    }
}

fn is_sqlite(path: &Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok()
        && header == SQLITE_MAGIC
}

fn is_sqlite_name(uri: &str) -> bool {
    let lower = uri.to_ascii_lowercase();
    lower.ends_with(".sqlite") || lower.ends_with(".sqlite3") || lower.ends_with(".db")
}

/// What discovery found.
#[derive(Debug, Default)]
pub struct Discovered {
    /// Every table the source holds now (new, changed and unchanged).
    pub tables: Vec<TableDef>,
    /// Names of the tables that were read this time (new or changed).
    pub read: Vec<String>,
    /// Tables (or entries) that failed alone: `(location, code, message)`.
    pub failures: Vec<(String, ErrorCode, String)>,
}

impl Embedded {
    /// Discovers the tables of one source. `known` holds the tables stored for it, by
    /// location; `name` overrides the table name (a folder or file) or namespace (a database).
    pub fn discover(
        &self,
        location: &TableLocation,
        config: &SourceConfig,
        name: Option<&str>,
        known: &HashMap<String, TableDef>,
    ) -> Result<Discovered> {
        match location {
            TableLocation::Postgres(pg) => {
                let namespace = name.unwrap_or(&pg.database).to_owned();
                let tables = self.block_on(crate::postgres::discover(self.postgres(), pg, &namespace))?;
                let read = tables
                    .iter()
                    .filter(|t| known.get(&t.location).is_none_or(|k| k.version != t.version))
                    .map(|t| t.name.clone())
                    .collect();
                Ok(Discovered {
                    tables,
                    read,
                    failures: Vec::new(),
                })
            }
            TableLocation::Sqlite(path) => {
                let version = file_version(path)?;
                let location = format!("file://{}", path.display());
                let namespace = name
                    .map(str::to_owned)
                    .unwrap_or_else(|| stem(&path.to_string_lossy()));
                let mut found = Discovered::default();
                self.discover_sqlite(path, &location, &namespace, &version, known, &mut found);
                if let Some((_, _, message)) = found.failures.first()
                    && found.tables.is_empty()
                {
                    return Err(SqlError::Unavailable(message.clone()));
                }
                Ok(found)
            }
            TableLocation::Objects(objects) => self.discover_objects(objects, config, name, known),
        }
    }

    fn discover_sqlite(
        &self,
        path: &Path,
        location: &str,
        namespace: &str,
        version: &str,
        known: &HashMap<String, TableDef>,
        found: &mut Discovered,
    ) {
        // Unchanged file: every known table of it stands, nothing is opened.
        let prefix = format!("{location}/");
        let known_here: Vec<&TableDef> = known
            .values()
            .filter(|t| t.location.starts_with(&prefix))
            .collect();
        if !known_here.is_empty() && known_here.iter().all(|t| t.source_version == version) {
            found.tables.extend(known_here.into_iter().cloned());
            return;
        }
        match crate::sqlite::discover(path, location, namespace, version) {
            Ok(tables) => {
                for table in tables {
                    if known
                        .get(&table.location)
                        .is_none_or(|k| k.version != table.version)
                    {
                        found.read.push(table.name.clone());
                    }
                    found.tables.push(table);
                }
            }
            Err(e) => found
                .failures
                .push((location.to_owned(), e.code_for_document(), e.to_string())),
        }
    }

    fn discover_objects(
        &self,
        location: &Location,
        config: &SourceConfig,
        name: Option<&str>,
        known: &HashMap<String, TableDef>,
    ) -> Result<Discovered> {
        let connection =
            Connection::connect(&location.uri(), config).map_err(|e| SqlError::Unavailable(e.to_string()))?;
        let listing = connection
            .list()
            .map_err(|e| SqlError::Unavailable(e.to_string()))?;
        let mut found = Discovered::default();
        for failure in &listing.failures {
            found
                .failures
                .push((failure.uri.clone(), failure.code, failure.message.clone()));
        }
        // Delta Lake tables are recognised and reported, not misread as loose Parquet files.
        let mut delta_roots: Vec<String> = Vec::new();
        for object in &listing.objects {
            if let Some((root, _)) = object.uri.split_once("/_delta_log/")
                && !delta_roots.iter().any(|r| r == root)
            {
                delta_roots.push(root.to_owned());
            }
        }
        for root in &delta_roots {
            found.failures.push((
                format!("{root}/"),
                ErrorCode::Unsupported,
                "a Delta Lake table; Delta tables are not read yet".into(),
            ));
        }
        let in_delta = |uri: &str| delta_roots.iter().any(|r| uri.starts_with(&format!("{r}/")));
        let data: Vec<ObjectEntry> = listing
            .objects
            .iter()
            .filter(|o| !in_delta(&o.uri) && FileFormat::of(&o.uri).is_some())
            .cloned()
            .collect();
        let root_uri = connection.uri().to_owned();
        for candidate in files::group(&root_uri, &data, name) {
            match known.get(&candidate.location) {
                Some(table) if table.source_version == candidate.version() => {
                    found.tables.push(table.clone())
                }
                _ => match self.read_candidate(&candidate, config) {
                    Ok(table) => {
                        found.read.push(table.name.clone());
                        found.tables.push(table);
                    }
                    Err(e) => found.failures.push((
                        candidate.location.clone(),
                        e.code_for_document(),
                        e.to_string(),
                    )),
                },
            }
        }
        // SQLite databases in a local folder are read in place.
        if let Location::Folder(root) = location {
            for object in listing
                .objects
                .iter()
                .filter(|o| is_sqlite_name(&o.uri) && !in_delta(&o.uri))
            {
                let Some(relative) = object.uri.strip_prefix(&root_uri) else {
                    continue;
                };
                let path = root.join(relative);
                if !is_sqlite(&path) {
                    continue;
                }
                let database = object.uri.clone();
                self.discover_sqlite(
                    &path,
                    &database,
                    &stem(relative),
                    &object.version,
                    known,
                    &mut found,
                );
            }
        }
        found.tables.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }

    fn read_candidate(&self, candidate: &Candidate, config: &SourceConfig) -> Result<TableDef> {
        let def = TableDef {
            name: candidate.name.clone(),
            location: candidate.location.clone(),
            source: TableSource::Files {
                root: candidate.root.clone(),
                format: candidate.format,
                partition_columns: candidate.partition_columns.clone(),
                files: candidate.files.iter().map(|(uri, _)| uri.clone()).collect(),
                endpoint: config.endpoint.clone(),
                region: config.region.clone(),
            },
            columns: Vec::new(),
            kind: "table".into(),
            comment: None,
            version: candidate.version(),
            source_version: candidate.version(),
            schema_hash: String::new(),
        };
        let session = self.session(&[], &Limits::default())?;
        crate::stores::register_all(&session.context, &[&def])?;
        let state = session.context.state();
        let columns = self.block_on(files::infer(&state, candidate))?;
        Ok(TableDef {
            schema_hash: TableDef::columns_hash(&columns),
            columns,
            ..def
        })
    }
}

fn stem(path: &str) -> String {
    let file = path.trim_end_matches('/').rsplit('/').next().unwrap_or(path);
    file.rsplit_once('.').map_or(file, |(stem, _)| stem).to_owned()
}

fn file_version(path: &Path) -> Result<String> {
    use std::os::unix::fs::MetadataExt;
    let metadata =
        std::fs::metadata(path).map_err(|e| SqlError::Unavailable(format!("{}: {e}", path.display())))?;
    let mtime = metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .unwrap_or_default()
        .as_micros();
    Ok(format!("{:x}-{mtime:x}-{:x}", metadata.ino(), metadata.len()))
}

impl SqlError {
    /// The code of a table that failed alone.
    pub fn code_for_document(&self) -> ErrorCode {
        match self {
            SqlError::Invalid(_) | SqlError::Refused(_) => ErrorCode::Corrupt,
            SqlError::Unavailable(_) | SqlError::NotFound(_) => ErrorCode::Unreadable,
            SqlError::Timeout(_) => ErrorCode::Timeout,
            SqlError::ResourcesExhausted(_) => ErrorCode::TooLarge,
            SqlError::Internal(_) => ErrorCode::Internal,
        }
    }
}
