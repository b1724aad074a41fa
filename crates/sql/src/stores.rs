//! Object stores a query's file tables read from.
//!
//! Invariant: `s3://` tables read through a store built for their bucket and endpoint, with
//! credentials from the environment (never from a table definition). Local tables read through
//! [`ConfinedLocal`], never DataFusion's own file store (which follows symbolic links wherever
//! they point): it reads only below the roots of the session's tables, refuses any path with a
//! link on it, lists without following links, and writes nothing.

use crate::catalog::{TableDef, TableSource};
use crate::error::{Result, SqlError};
use async_trait::async_trait;
use bytes::Bytes;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Registers the stores `tables` need in `context`.
pub fn register_all(context: &SessionContext, tables: &[&TableDef]) -> Result<()> {
    let mut roots = Vec::new();
    for def in tables {
        let TableSource::Files {
            root,
            endpoint,
            region,
            ..
        } = &def.source
        else {
            continue;
        };
        if let Some(rest) = root.strip_prefix("s3://") {
            register_bucket(context, rest, endpoint.as_deref(), region.as_deref())?;
        } else if let Some(path) = root.strip_prefix("file://") {
            roots.push(PathBuf::from(path));
        }
    }
    let url = url::Url::parse("file://").expect("a URL");
    context.register_object_store(&url, Arc::new(ConfinedLocal::new(roots)));
    Ok(())
}

fn register_bucket(
    context: &SessionContext,
    rest: &str,
    endpoint: Option<&str>,
    region: Option<&str>,
) -> Result<()> {
    let bucket = rest.split('/').next().unwrap_or_default();
    let url = url::Url::parse(&format!("s3://{bucket}"))
        .map_err(|e| SqlError::Invalid(format!("s3://{rest}: {e}")))?;
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Some(endpoint) = endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(false);
    }
    let region = region
        .map(str::to_owned)
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .unwrap_or_else(|| "us-east-1".to_owned());
    let store = builder
        .with_region(region)
        .build()
        .map_err(|e| SqlError::Unavailable(format!("s3://{rest}: {e}")))?;
    context.register_object_store(&url, Arc::new(store));
    Ok(())
}

/// The local file store of one query: reads below `roots` only, through no link.
#[derive(Debug)]
pub struct ConfinedLocal {
    inner: LocalFileSystem,
    roots: Vec<PathBuf>,
}

impl std::fmt::Display for ConfinedLocal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConfinedLocal({} roots)", self.roots.len())
    }
}

fn refused(path: &str, why: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "ConfinedLocal",
        source: format!("{path}: {why}").into(),
    }
}

fn read_only() -> object_store::Error {
    object_store::Error::NotImplemented {
        operation: "writing".into(),
        implementer: "ConfinedLocal (tables are read-only)".into(),
    }
}

impl ConfinedLocal {
    pub fn new(roots: Vec<PathBuf>) -> ConfinedLocal {
        ConfinedLocal {
            inner: LocalFileSystem::new(),
            roots,
        }
    }

    /// The filesystem path of `location`, when it lies below a root and no component from the
    /// root down is a symbolic link.
    fn check(&self, location: &ObjectPath) -> object_store::Result<PathBuf> {
        let path = PathBuf::from(format!("/{location}"));
        let Some(root) = self.roots.iter().find(|root| path.starts_with(root)) else {
            return Err(refused(location.as_ref(), "outside every table of this query"));
        };
        let mut current = root.clone();
        let below = path.strip_prefix(root).expect("starts with the root");
        for component in below.components() {
            current.push(component);
            match std::fs::symlink_metadata(&current) {
                Ok(metadata) if metadata.file_type().is_symlink() => {
                    return Err(refused(location.as_ref(), "a symbolic link is on the path"));
                }
                Ok(_) => {}
                Err(e) => return Err(refused(location.as_ref(), &e.to_string())),
            }
        }
        Ok(path)
    }

    fn allowed(&self, location: &ObjectPath) -> bool {
        self.check(location).is_ok()
    }
}

/// Regular files below `dir`, through no link (a link is skipped, never followed).
fn walk(dir: &Path, out: &mut Vec<ObjectMeta>, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if file_type.is_dir() && depth < 64 {
            walk(&path, out, depth + 1);
        } else if file_type.is_file()
            && let (Ok(metadata), Ok(location)) = (entry.metadata(), ObjectPath::from_filesystem_path(&path))
        {
            out.push(ObjectMeta {
                location,
                last_modified: metadata.modified().map(Into::into).unwrap_or_default(),
                size: metadata.len(),
                e_tag: None,
                version: None,
            });
        }
    }
}

#[async_trait]
impl ObjectStore for ConfinedLocal {
    async fn put_opts(
        &self,
        _: &ObjectPath,
        _: PutPayload,
        _: PutOptions,
    ) -> object_store::Result<PutResult> {
        Err(read_only())
    }

    async fn put_multipart_opts(
        &self,
        _: &ObjectPath,
        _: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        Err(read_only())
    }

    async fn get_opts(&self, location: &ObjectPath, options: GetOptions) -> object_store::Result<GetResult> {
        self.check(location)?;
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &ObjectPath,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.check(location)?;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<ObjectPath>>,
    ) -> BoxStream<'static, object_store::Result<ObjectPath>> {
        locations.map(|_| Err(read_only())).boxed()
    }

    fn list(&self, prefix: Option<&ObjectPath>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let Some(prefix) = prefix else {
            return futures::stream::empty().boxed();
        };
        let dir = match self.check(prefix) {
            Ok(dir) => dir,
            Err(e) => return futures::stream::once(async move { Err(e) }).boxed(),
        };
        let mut found = Vec::new();
        if dir.is_file() {
            if let Ok(metadata) = std::fs::metadata(&dir) {
                found.push(ObjectMeta {
                    location: prefix.clone(),
                    last_modified: metadata.modified().map(Into::into).unwrap_or_default(),
                    size: metadata.len(),
                    e_tag: None,
                    version: None,
                });
            }
        } else {
            walk(&dir, &mut found, 0);
        }
        futures::stream::iter(found.into_iter().map(Ok)).boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&ObjectPath>) -> object_store::Result<ListResult> {
        if let Some(prefix) = prefix {
            self.check(prefix)?;
        } else {
            return Ok(ListResult {
                common_prefixes: Vec::new(),
                objects: Vec::new(),
            });
        }
        let listed = self.inner.list_with_delimiter(prefix).await?;
        Ok(ListResult {
            common_prefixes: listed
                .common_prefixes
                .into_iter()
                .filter(|p| self.allowed(p))
                .collect(),
            objects: listed
                .objects
                .into_iter()
                .filter(|o| self.allowed(&o.location))
                .collect(),
        })
    }

    async fn copy_opts(&self, _: &ObjectPath, _: &ObjectPath, _: CopyOptions) -> object_store::Result<()> {
        Err(read_only())
    }
}
