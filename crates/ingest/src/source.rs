//! Sources: where documents come from. Local folders and S3-compatible buckets, both through
//! `object_store`, so listing, versions (ETags) and reads behave the same way for either.

use bytes::Bytes;
use futures::TryStreamExt;
use groundwork_core::{SourceConfig, UnixMillis};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::path::PathBuf;
use std::sync::Arc;

/// Suffix of sidecar metadata files (Amazon Bedrock Knowledge Base convention).
pub const SIDECAR_SUFFIX: &str = ".metadata.json";

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("`{0}` is not a source location: use a folder path, file:///abs/path or s3://bucket/prefix")]
    InvalidUri(String),
    #[error("folder {0} does not exist or is not a directory")]
    MissingFolder(PathBuf),
    #[error("cannot reach source {uri}: {message}")]
    Unavailable { uri: String, message: String },
    #[error("object {uri} is {size} bytes, over the limit of {limit}")]
    TooLarge { uri: String, size: u64, limit: u64 },
}

/// A source location in normalised form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An absolute folder.
    Folder(PathBuf),
    /// A bucket and key prefix (possibly empty).
    S3 { bucket: String, prefix: String },
}

impl Location {
    /// Normalises what a user typed: a relative or absolute folder path, a `file://` URI or an
    /// `s3://bucket/prefix` URI. Folders must exist, so a typo fails at `source add` time.
    pub fn parse(input: &str) -> Result<Location, SourceError> {
        if let Some(rest) = input.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() || bucket.contains(|c: char| c.is_whitespace()) {
                return Err(SourceError::InvalidUri(input.into()));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_start_matches('/').to_string(),
            });
        }
        if input.contains("://") && !input.starts_with("file://") {
            return Err(SourceError::InvalidUri(input.into()));
        }
        let path = match input.strip_prefix("file://") {
            Some(p) => PathBuf::from(p),
            None => PathBuf::from(input),
        };
        let absolute = std::fs::canonicalize(&path).map_err(|_| SourceError::MissingFolder(path.clone()))?;
        if !absolute.is_dir() {
            return Err(SourceError::MissingFolder(path));
        }
        Ok(Location::Folder(absolute))
    }

    /// The canonical URI: `file:///abs/dir/` (always a trailing slash, so prefixes match whole
    /// path segments) or `s3://bucket/prefix`.
    pub fn uri(&self) -> String {
        match self {
            Location::Folder(path) => {
                let mut s = format!("file://{}", path.display());
                if !s.ends_with('/') {
                    s.push('/');
                }
                s
            }
            Location::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
        }
    }
}

/// One listed object.
#[derive(Debug, Clone)]
pub struct ObjectEntry {
    /// The document URI: the source URI joined with the key.
    pub uri: String,
    pub path: ObjectPath,
    /// ETag when the store gives one, else size and modification time.
    pub version: String,
    pub size: u64,
    pub modified_at: UnixMillis,
}

/// A connected source: an object store plus the runtime that drives its async API, so the
/// rest of the pipeline stays synchronous.
pub struct SourceReader {
    store: Arc<dyn ObjectStore>,
    runtime: tokio::runtime::Runtime,
    location: Location,
    uri: String,
}

impl SourceReader {
    pub fn connect(uri: &str, config: &SourceConfig) -> Result<SourceReader, SourceError> {
        let location = Location::parse(uri)?;
        let unavailable = |e: object_store::Error| SourceError::Unavailable {
            uri: uri.to_string(),
            message: e.to_string(),
        };
        let store: Arc<dyn ObjectStore> = match &location {
            Location::Folder(root) => Arc::new(LocalFileSystem::new_with_prefix(root).map_err(unavailable)?),
            Location::S3 { bucket, .. } => {
                // Credentials and region come from the usual AWS environment variables; the
                // source config only overrides where to connect.
                let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
                if let Some(endpoint) = &config.endpoint {
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"))
                        .with_virtual_hosted_style_request(false);
                }
                let region = config
                    .region
                    .clone()
                    .or_else(|| std::env::var("AWS_REGION").ok())
                    .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
                    .unwrap_or_else(|| "us-east-1".to_string());
                builder = builder.with_region(region);
                Arc::new(builder.build().map_err(unavailable)?)
            }
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SourceError::Unavailable {
                uri: uri.to_string(),
                message: format!("cannot start I/O runtime: {e}"),
            })?;
        Ok(SourceReader {
            uri: location.uri(),
            store,
            runtime,
            location,
        })
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Lists every object under the source, hidden files (any path segment starting with a
    /// dot) excluded. The listing either completes or fails: a partial listing must never be
    /// mistaken for deletions.
    pub fn list(&self) -> Result<Vec<ObjectEntry>, SourceError> {
        let prefix = match &self.location {
            Location::Folder(_) => None,
            Location::S3 { prefix, .. } if prefix.is_empty() => None,
            Location::S3 { prefix, .. } => Some(ObjectPath::from(prefix.trim_end_matches('/'))),
        };
        let metas: Vec<object_store::ObjectMeta> = self
            .runtime
            .block_on(self.store.list(prefix.as_ref()).try_collect())
            .map_err(|e| SourceError::Unavailable {
                uri: self.uri.clone(),
                message: e.to_string(),
            })?;
        let mut entries: Vec<ObjectEntry> = metas
            .into_iter()
            .filter(|m| !m.location.parts().any(|p| p.as_ref().starts_with('.')))
            .map(|m| {
                let modified_at = m.last_modified.timestamp_millis();
                ObjectEntry {
                    uri: self.object_uri(&m.location),
                    version: m
                        .e_tag
                        .clone()
                        .or(m.version.clone())
                        .unwrap_or_else(|| format!("{}:{modified_at}", m.size)),
                    size: m.size,
                    modified_at,
                    path: m.location,
                }
            })
            .collect();
        entries.sort_by(|a, b| a.uri.cmp(&b.uri));
        Ok(entries)
    }

    /// Reads one object whole, refusing objects over `max_bytes` before transferring them.
    pub fn read(&self, entry: &ObjectEntry, max_bytes: u64) -> Result<Bytes, SourceError> {
        if entry.size > max_bytes {
            return Err(SourceError::TooLarge {
                uri: entry.uri.clone(),
                size: entry.size,
                limit: max_bytes,
            });
        }
        let unavailable = |e: object_store::Error| SourceError::Unavailable {
            uri: entry.uri.clone(),
            message: e.to_string(),
        };
        self.runtime.block_on(async {
            let result = self.store.get(&entry.path).await.map_err(unavailable)?;
            result.bytes().await.map_err(unavailable)
        })
    }

    /// Writes one object at `key` under the source, whole: a reader sees the old object or
    /// the new one, never a part (an S3 put; a rename for folders).
    pub fn put(&self, key: &str, body: Vec<u8>) -> Result<(), SourceError> {
        let path = ObjectPath::from(key);
        let unavailable = |e: object_store::Error| SourceError::Unavailable {
            uri: format!("{}{key}", self.uri),
            message: e.to_string(),
        };
        self.runtime.block_on(async {
            self.store.put(&path, body.into()).await.map_err(unavailable)?;
            Ok(())
        })
    }

    /// Reads the object at `key` under the source, up to `max_bytes`.
    pub fn get(&self, key: &str, max_bytes: u64) -> Result<Bytes, SourceError> {
        let path = ObjectPath::from(key);
        let uri = format!("{}{key}", self.uri);
        let unavailable = |e: object_store::Error| SourceError::Unavailable {
            uri: uri.clone(),
            message: e.to_string(),
        };
        self.runtime.block_on(async {
            let result = self.store.get(&path).await.map_err(unavailable)?;
            if result.meta.size > max_bytes {
                return Err(SourceError::TooLarge {
                    uri: uri.clone(),
                    size: result.meta.size,
                    limit: max_bytes,
                });
            }
            result.bytes().await.map_err(unavailable)
        })
    }

    fn object_uri(&self, path: &ObjectPath) -> String {
        match &self.location {
            Location::Folder(root) => {
                let mut base = format!("file://{}", root.display());
                if !base.ends_with('/') {
                    base.push('/');
                }
                format!("{base}{path}")
            }
            Location::S3 { bucket, .. } => format!("s3://{bucket}/{path}"),
        }
    }
}
