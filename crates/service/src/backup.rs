//! Backups of a home directory and restores from them.
//!
//! A backup is the store copied online through SQLite's backup API (one consistent snapshot
//! while syncs and searches go on), `config.toml`, and a manifest (`backup.json`: format,
//! schema version, audit head, each file's size and SHA-256) written **last**. Indexes are not
//! copied — they are derived, and rebuilt from the store on first use — nor are models (fetched
//! again) or secrets kept outside the home (key files, passwords in the environment).
//!
//! Invariants: a destination without a manifest holds no backup, and restore refuses it; a
//! restore checks every file against the manifest before touching the home, refuses a home
//! that has a store unless forced (and then keeps the old store and config in
//! `pre-restore-<time>/`), refuses a home that any process has open (every handle holds a shared
//! lock on `locks/home.lock`, restore takes it exclusively), and ends by verifying the audit
//! chain of what it installed and appending its own record to it. Backups are taken by
//! administrators and audited.

use groundwork_core::{ErrorCode, SourceConfig, now_millis};
use groundwork_govern::audit::ChainVerifier;
use groundwork_objects::Connection;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::ServiceError;
use crate::home::{CONFIG_FILE, Groundwork, STORE_FILE, lock_home};

/// The manifest's name; written last.
pub const MANIFEST: &str = "backup.json";
const FORMAT: &str = "groundwork-backup/1";
/// Largest manifest or config file read back.
const MAX_SMALL_FILE: u64 = 1 << 20;

/// Where a backup goes or comes from: a local folder, or an `s3://bucket/prefix` (optionally
/// on an S3-compatible endpoint).
#[derive(Debug, Clone)]
pub struct BackupLocation {
    pub location: String,
    pub endpoint: Option<String>,
}

/// `backup.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: String,
    pub created_at: i64,
    /// The groundwork version that wrote it.
    pub version: String,
    pub store_schema_version: i64,
    /// Sequence and hash of the last audit record in the copied store.
    pub audit_head: Option<AuditHead>,
    pub files: Vec<BackupFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BackupFile {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// What `backup` did.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    pub destination: String,
    pub manifest: Manifest,
    pub duration_ms: u64,
}

/// What `restore` did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub home: PathBuf,
    pub source: String,
    pub manifest: Manifest,
    /// Where the replaced store and config were moved (with `--force` over an existing home).
    pub previous: Option<PathBuf>,
    /// The restored audit chain verified from its first record to its head.
    pub audit_intact: bool,
    pub audit_records: u64,
    pub duration_ms: u64,
}

/// A backup destination or source, opened.
enum Place {
    Folder(PathBuf),
    Objects {
        connection: Connection,
        prefix: String,
        uri: String,
    },
}

impl Place {
    fn open(location: &BackupLocation) -> Result<Place, ServiceError> {
        let text = location.location.trim();
        if text.is_empty() {
            return Err(ServiceError::invalid("a backup location is required"));
        }
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(ServiceError::invalid(format!("{text}: no bucket")));
            }
            let config = SourceConfig {
                endpoint: location.endpoint.clone(),
                ..Default::default()
            };
            let connection = Connection::connect(&format!("s3://{bucket}/"), &config)
                .map_err(|e| ServiceError::new(ErrorCode::SourceUnavailable, e.to_string()))?;
            let prefix = prefix.trim_matches('/');
            let prefix = if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            };
            return Ok(Place::Objects {
                connection,
                uri: format!("s3://{bucket}/{prefix}"),
                prefix,
            });
        }
        if location.endpoint.is_some() {
            return Err(ServiceError::invalid(
                "--endpoint applies to s3:// locations only",
            ));
        }
        Ok(Place::Folder(PathBuf::from(text)))
    }

    fn describe(&self) -> String {
        match self {
            Place::Folder(path) => path.display().to_string(),
            Place::Objects { uri, .. } => uri.clone(),
        }
    }

    fn unavailable(&self, e: impl std::fmt::Display) -> ServiceError {
        ServiceError::new(ErrorCode::SourceUnavailable, format!("{}: {e}", self.describe()))
    }

    /// The manifest, if the place holds one.
    fn manifest(&self) -> Result<Option<Manifest>, ServiceError> {
        let bytes = match self {
            Place::Folder(dir) => match std::fs::read(dir.join(MANIFEST)) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(self.unavailable(e)),
            },
            Place::Objects {
                connection, prefix, ..
            } => match connection.get(&format!("{prefix}{MANIFEST}"), MAX_SMALL_FILE) {
                Ok(bytes) => bytes.to_vec(),
                Err(groundwork_objects::ObjectError::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(self.unavailable(e)),
            },
        };
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
            ServiceError::new(
                ErrorCode::Corrupt,
                format!("{}/{MANIFEST} is not a backup manifest: {e}", self.describe()),
            )
        })?;
        if manifest.format != FORMAT {
            return Err(ServiceError::new(
                ErrorCode::Corrupt,
                format!("{}: unknown backup format `{}`", self.describe(), manifest.format),
            ));
        }
        Ok(Some(manifest))
    }

    /// Writes one file of the backup (the manifest last, atomically).
    fn put(&self, name: &str, source: &Path) -> Result<(), ServiceError> {
        match self {
            Place::Folder(dir) => {
                let partial = dir.join(format!("{name}.partial"));
                std::fs::copy(source, &partial)
                    .and_then(|_| std::fs::File::open(&partial)?.sync_all())
                    .and_then(|()| std::fs::rename(&partial, dir.join(name)))
                    .map_err(|e| self.unavailable(e))
            }
            Place::Objects {
                connection, prefix, ..
            } => {
                let body = std::fs::read(source).map_err(|e| self.unavailable(e))?;
                connection
                    .put(&format!("{prefix}{name}"), body)
                    .map_err(|e| self.unavailable(e))
            }
        }
    }

    /// Reads one file of the backup into `dest`, checking it against the manifest's entry.
    fn fetch(&self, file: &BackupFile, dest: &Path) -> Result<(), ServiceError> {
        if file.name.contains(['/', '\\']) || file.name.starts_with('.') {
            return Err(ServiceError::new(
                ErrorCode::Corrupt,
                format!(
                    "{}: the manifest names an odd file `{}`",
                    self.describe(),
                    file.name
                ),
            ));
        }
        // Into the scratch folder first (streamed for folders; an object no larger than the
        // manifest says), then checked against the manifest.
        match self {
            Place::Folder(dir) => {
                std::fs::copy(dir.join(&file.name), dest).map_err(|e| self.unavailable(e))?;
            }
            Place::Objects {
                connection, prefix, ..
            } => {
                let bytes = connection
                    .get(&format!("{prefix}{}", file.name), file.bytes)
                    .map_err(|e| self.unavailable(e))?;
                std::fs::write(dest, &bytes)?;
            }
        }
        let (bytes, sha256) = digest(dest)?;
        if bytes != file.bytes || sha256 != file.sha256 {
            return Err(ServiceError::new(
                ErrorCode::Corrupt,
                format!(
                    "{}/{}: {bytes} bytes that do not match the manifest ({} bytes, sha256 {})",
                    self.describe(),
                    file.name,
                    file.bytes,
                    file.sha256
                ),
            ));
        }
        std::fs::File::open(dest)?.sync_all()?;
        Ok(())
    }
}

/// SHA-256 and size of a file, streamed.
fn digest(path: &Path) -> Result<(u64, String), ServiceError> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((bytes, hex::encode(hasher.finalize())))
}

/// A scratch folder inside the home, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(home: &Path, what: &str) -> Result<Scratch, ServiceError> {
        let dir = home.join(format!(".{what}-{}-{}", std::process::id(), now_millis()));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Groundwork {
    /// Takes a consistent online copy of this home to `dest` (see the module documentation).
    pub fn backup(&self, dest: &BackupLocation) -> Result<BackupReport, ServiceError> {
        self.require_admin("backup", Some(&dest.location))?;
        let started = Instant::now();
        let entry = self.entry(
            "backup",
            Some(&dest.location),
            json!({ "endpoint": dest.endpoint }),
        );
        let result = self.backup_inner(dest, started);
        let mut record = entry;
        if let Ok(report) = &result {
            record.request["audit_head"] = json!(report.manifest.audit_head);
            record.request["files"] = json!(report.manifest.files);
        }
        self.record(record, started, &result, Vec::new())?;
        result
    }

    fn backup_inner(&self, dest: &BackupLocation, started: Instant) -> Result<BackupReport, ServiceError> {
        let place = Place::open(dest)?;
        match &place {
            Place::Folder(dir) => {
                if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
                    return Err(ServiceError::new(
                        ErrorCode::AlreadyExists,
                        format!(
                            "{} is not empty; back up into a new or empty folder",
                            dir.display()
                        ),
                    ));
                }
                std::fs::create_dir_all(dir)?;
            }
            Place::Objects { .. } => {
                if place.manifest()?.is_some() {
                    return Err(ServiceError::new(
                        ErrorCode::AlreadyExists,
                        format!("{} already holds a backup", place.describe()),
                    ));
                }
            }
        }
        let scratch = Scratch::new(self.home(), "backup")?;
        let copy = scratch.0.join(STORE_FILE);
        let info = self.store().copy_to(&copy)?;
        let config = scratch.0.join(CONFIG_FILE);
        std::fs::copy(self.home().join(CONFIG_FILE), &config)?;
        let mut files = Vec::new();
        for (name, path) in [(STORE_FILE, &copy), (CONFIG_FILE, &config)] {
            let (bytes, sha256) = digest(path)?;
            place.put(name, path)?;
            files.push(BackupFile {
                name: name.to_owned(),
                bytes,
                sha256,
            });
        }
        let manifest = Manifest {
            format: FORMAT.to_owned(),
            created_at: now_millis(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            store_schema_version: info.schema_version,
            audit_head: info.audit_head.map(|(seq, hash)| AuditHead { seq, hash }),
            files,
        };
        let manifest_path = scratch.0.join(MANIFEST);
        std::fs::write(
            &manifest_path,
            serde_json::to_vec_pretty(&manifest).expect("manifests serialise"),
        )?;
        place.put(MANIFEST, &manifest_path)?;
        Ok(BackupReport {
            destination: place.describe(),
            manifest,
            duration_ms: started.elapsed().as_millis() as u64,
        })
    }

    /// Restores the backup at `source` into `home` (see the module documentation). Works on a
    /// home that does not exist yet; `force` replaces an existing store.
    pub fn restore(home: &Path, source: &BackupLocation, force: bool) -> Result<RestoreReport, ServiceError> {
        let started = Instant::now();
        let place = Place::open(source)?;
        let Some(manifest) = place.manifest()? else {
            return Err(ServiceError::new(
                ErrorCode::NotFound,
                format!(
                    "{} holds no complete backup (no {MANIFEST}; a backup that was interrupted has none)",
                    place.describe()
                ),
            ));
        };
        let supported = groundwork_store::supported_schema_version();
        if manifest.store_schema_version > supported {
            return Err(ServiceError::new(
                ErrorCode::Corrupt,
                format!(
                    "the backup's store has schema version {}, newer than this binary supports ({supported}); upgrade groundwork",
                    manifest.store_schema_version
                ),
            ));
        }
        for name in [STORE_FILE, CONFIG_FILE] {
            if !manifest.files.iter().any(|f| f.name == name) {
                return Err(ServiceError::new(
                    ErrorCode::Corrupt,
                    format!("{}: the manifest lists no {name}", place.describe()),
                ));
            }
        }
        std::fs::create_dir_all(home)?;
        let lock = lock_home(
            home,
            true,
            "is open in another process (a server, a sync, a search); stop it before restoring",
        )?;
        let existing = home.join(STORE_FILE).exists();
        if existing && !force {
            return Err(ServiceError::new(
                ErrorCode::AlreadyExists,
                format!(
                    "{} already holds a store; restore with --force to replace it (the old one is kept)",
                    home.display()
                ),
            ));
        }
        // Everything is fetched and checked before the home changes.
        let scratch = Scratch::new(home, "restore")?;
        for file in &manifest.files {
            place.fetch(file, &scratch.0.join(&file.name))?;
        }
        let info = groundwork_store::inspect(&scratch.0.join(STORE_FILE))?;
        let head = info.audit_head.clone().map(|(seq, hash)| AuditHead { seq, hash });
        if head != manifest.audit_head {
            return Err(ServiceError::new(
                ErrorCode::Corrupt,
                format!(
                    "{}: the store's audit head does not match the manifest",
                    place.describe()
                ),
            ));
        }
        // The chain must verify from its first record to the manifest's head before it is
        // installed: a backup whose log was altered is refused, not restored.
        let verification = {
            let store = groundwork_store::Store::open(&scratch.0.join(STORE_FILE))?;
            let mut verifier = ChainVerifier::default();
            store.for_each_audit(|row| verifier.push(row))?;
            let verification = verifier.finish(None, |seq| {
                store.audit_record(seq).ok().flatten().map(|row| row.hash)
            });
            store.checkpoint()?;
            verification
        };
        if let Some(problem) = &verification.first_break {
            return Err(ServiceError::new(
                ErrorCode::Corrupt,
                format!(
                    "{}: the backup's audit chain is broken: {problem}",
                    place.describe()
                ),
            ));
        }
        let previous = if existing {
            let dir = home.join(format!("pre-restore-{}", now_millis()));
            std::fs::create_dir_all(&dir)?;
            for name in [
                STORE_FILE.to_owned(),
                format!("{STORE_FILE}-wal"),
                format!("{STORE_FILE}-shm"),
                format!("{STORE_FILE}.audit-journal"),
                CONFIG_FILE.to_owned(),
            ] {
                let path = home.join(&name);
                if path.exists() {
                    std::fs::rename(&path, dir.join(&name))?;
                }
            }
            Some(dir)
        } else {
            None
        };
        // Derived: rebuilt from the restored store on first use.
        let indexes = home.join("indexes");
        if indexes.exists() {
            std::fs::remove_dir_all(&indexes)?;
        }
        for dir in ["models", "indexes", "locks"] {
            std::fs::create_dir_all(home.join(dir))?;
        }
        std::fs::rename(scratch.0.join(CONFIG_FILE), home.join(CONFIG_FILE))?;
        std::fs::rename(scratch.0.join(STORE_FILE), home.join(STORE_FILE))?;
        drop(scratch);
        drop(lock);

        let restored = Groundwork::open(home)?;
        let report = RestoreReport {
            home: home.to_path_buf(),
            source: place.describe(),
            audit_intact: true,
            audit_records: verification.records,
            manifest,
            previous,
            duration_ms: started.elapsed().as_millis() as u64,
        };
        let entry = restored.entry(
            "restore",
            Some(&source.location),
            json!({
                "backup_created_at": report.manifest.created_at,
                "audit_head": report.manifest.audit_head,
                "previous": report.previous,
                "audit_intact": report.audit_intact,
            }),
        );
        restored.record(entry, started, &Ok::<(), ServiceError>(()), Vec::new())?;
        Ok(report)
    }
}
