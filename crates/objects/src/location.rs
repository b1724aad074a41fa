//! Locations and connections: a folder or an `s3://bucket/prefix`, listed, read and written
//! through one [`Connection`], so that listing, versions (ETags) and reads behave the same way
//! for either. Folders are walked and read by `folder`, confined to their root; buckets go
//! through `object_store`.

use crate::entry::{Listing, Locator, ObjectEntry, ObjectError};
use crate::folder::Folder;
use bytes::Bytes;
use futures::TryStreamExt;
use groundwork_core::SourceConfig;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::path::PathBuf;
use std::sync::Arc;

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
    pub fn parse(input: &str) -> Result<Location, ObjectError> {
        if let Some(rest) = input.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() || bucket.contains(|c: char| c.is_whitespace()) {
                return Err(ObjectError::InvalidUri(input.into()));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_start_matches('/').to_string(),
            });
        }
        if input.contains("://") && !input.starts_with("file://") {
            return Err(ObjectError::InvalidUri(input.into()));
        }
        let path = match input.strip_prefix("file://") {
            Some(p) => PathBuf::from(p),
            None => PathBuf::from(input),
        };
        let absolute = std::fs::canonicalize(&path).map_err(|_| ObjectError::MissingFolder(path.clone()))?;
        if !absolute.is_dir() {
            return Err(ObjectError::MissingFolder(path));
        }
        Ok(Location::Folder(absolute))
    }

    /// A location as stored for a source (already normalised when it was added). A folder is
    /// taken as written, not resolved again, so that a folder later replaced by a link is
    /// noticed (see `Folder::open`) instead of silently followed.
    pub fn stored(uri: &str) -> Result<Location, ObjectError> {
        match uri.strip_prefix("file://") {
            Some(path) if path.starts_with('/') => {
                let trimmed = path.trim_end_matches('/');
                Ok(Location::Folder(PathBuf::from(if trimmed.is_empty() {
                    "/"
                } else {
                    trimmed
                })))
            }
            Some(_) => Err(ObjectError::InvalidUri(uri.into())),
            None => Location::parse(uri),
        }
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

/// A connected location. Folders are walked and read by [`Folder`], confined to their root;
/// buckets go through `object_store` on a runtime of their own, so the rest of the pipeline
/// stays synchronous.
pub struct Connection {
    backend: Backend,
    uri: String,
}

enum Backend {
    Folder(Folder),
    Bucket {
        store: Arc<dyn ObjectStore>,
        runtime: tokio::runtime::Runtime,
        bucket: String,
        prefix: String,
    },
}

impl Connection {
    /// Connects to a source by its stored URI (as [`Location::uri`] wrote it).
    pub fn connect(uri: &str, config: &SourceConfig) -> Result<Connection, ObjectError> {
        let location = Location::stored(uri)?;
        let unavailable = |e: object_store::Error| ObjectError::Unavailable {
            uri: uri.to_string(),
            message: e.to_string(),
        };
        let backend = match &location {
            Location::Folder(root) => Backend::Folder(Folder::open(root, config.follow_links)?),
            Location::S3 { bucket, prefix } => {
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
                let store: Arc<dyn ObjectStore> = Arc::new(builder.build().map_err(unavailable)?);
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| ObjectError::Unavailable {
                        uri: uri.to_string(),
                        message: format!("cannot start I/O runtime: {e}"),
                    })?;
                Backend::Bucket {
                    store,
                    runtime,
                    bucket: bucket.clone(),
                    prefix: prefix.clone(),
                }
            }
        };
        Ok(Connection {
            uri: location.uri(),
            backend,
        })
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Lists every object under the source, hidden files (any path segment starting with a
    /// dot) excluded. The listing completes or fails as a whole — a partial listing must never
    /// be mistaken for deletions — but an entry that cannot be represented or safely followed
    /// is a [`ListFailure`] of its own, and the rest is listed.
    pub fn list(&self) -> Result<Listing, ObjectError> {
        match &self.backend {
            Backend::Folder(folder) => folder.list(),
            Backend::Bucket {
                store,
                runtime,
                bucket,
                prefix,
            } => {
                let prefix = (!prefix.is_empty()).then(|| ObjectPath::from(prefix.trim_end_matches('/')));
                let metas: Vec<object_store::ObjectMeta> = runtime
                    .block_on(store.list(prefix.as_ref()).try_collect())
                    .map_err(|e| ObjectError::Unavailable {
                        uri: self.uri.clone(),
                        message: e.to_string(),
                    })?;
                let mut objects: Vec<ObjectEntry> = metas
                    .into_iter()
                    .filter(|m| !m.location.parts().any(|p| p.as_ref().starts_with('.')))
                    .map(|m| {
                        let modified_at = m.last_modified.timestamp_millis();
                        ObjectEntry {
                            uri: format!("s3://{bucket}/{}", m.location),
                            version: m
                                .e_tag
                                .clone()
                                .or(m.version.clone())
                                .unwrap_or_else(|| format!("{}:{modified_at}", m.size)),
                            size: m.size,
                            modified_at,
                            locator: Locator::Object(m.location),
                        }
                    })
                    .collect();
                objects.sort_by(|a, b| a.uri.cmp(&b.uri));
                Ok(Listing {
                    objects,
                    failures: Vec::new(),
                })
            }
        }
    }

    /// Reads one object whole, refusing objects over `max_bytes` before transferring them.
    pub fn read(&self, entry: &ObjectEntry, max_bytes: u64) -> Result<Bytes, ObjectError> {
        if entry.size > max_bytes {
            return Err(ObjectError::TooLarge {
                uri: entry.uri.clone(),
                size: entry.size,
                limit: max_bytes,
            });
        }
        match (&self.backend, &entry.locator) {
            (Backend::Folder(folder), Locator::Folder(resolved)) => {
                Ok(folder.read(&entry.uri, resolved, max_bytes)?.into())
            }
            (Backend::Bucket { store, runtime, .. }, Locator::Object(path)) => {
                let unavailable = |e: object_store::Error| ObjectError::Unavailable {
                    uri: entry.uri.clone(),
                    message: e.to_string(),
                };
                runtime.block_on(async {
                    let result = store.get(path).await.map_err(unavailable)?;
                    result.bytes().await.map_err(unavailable)
                })
            }
            _ => Err(ObjectError::Unavailable {
                uri: entry.uri.clone(),
                message: "the entry was listed by another source".into(),
            }),
        }
    }

    /// Writes one object at `key` under the source, whole: a reader sees the old object or
    /// the new one, never a part (an S3 put; a rename for folders).
    pub fn put(&self, key: &str, body: Vec<u8>) -> Result<(), ObjectError> {
        match &self.backend {
            Backend::Folder(folder) => folder.put(key, &body),
            Backend::Bucket { store, runtime, .. } => {
                let path = ObjectPath::from(key);
                let unavailable = |e: object_store::Error| ObjectError::Unavailable {
                    uri: format!("{}{key}", self.uri),
                    message: e.to_string(),
                };
                runtime.block_on(async {
                    store.put(&path, body.into()).await.map_err(unavailable)?;
                    Ok(())
                })
            }
        }
    }

    /// Reads the object at `key` under the source, up to `max_bytes`.
    pub fn get(&self, key: &str, max_bytes: u64) -> Result<Bytes, ObjectError> {
        match &self.backend {
            Backend::Folder(folder) => Ok(folder.get(key, max_bytes)?.into()),
            Backend::Bucket { store, runtime, .. } => {
                let path = ObjectPath::from(key);
                let uri = format!("{}{key}", self.uri);
                let unavailable = |e: object_store::Error| ObjectError::Unavailable {
                    uri: uri.clone(),
                    message: e.to_string(),
                };
                runtime.block_on(async {
                    let result = store.get(&path).await.map_err(|e| match e {
                        object_store::Error::NotFound { .. } => ObjectError::NotFound { uri: uri.clone() },
                        e => unavailable(e),
                    })?;
                    if result.meta.size > max_bytes {
                        return Err(ObjectError::TooLarge {
                            uri: uri.clone(),
                            size: result.meta.size,
                            limit: max_bytes,
                        });
                    }
                    result.bytes().await.map_err(unavailable)
                })
            }
        }
    }
}
