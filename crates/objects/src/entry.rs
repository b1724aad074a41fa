//! What a listing yields: objects, the entries that failed alone, and the errors of a
//! connection — shared by folders and buckets.

use groundwork_core::UnixMillis;
use object_store::path::Path as ObjectPath;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("`{0}` is not a source location: use a folder path, file:///abs/path or s3://bucket/prefix")]
    InvalidUri(String),
    #[error("folder {0} does not exist or is not a directory")]
    MissingFolder(PathBuf),
    #[error("cannot reach source {uri}: {message}")]
    Unavailable { uri: String, message: String },
    #[error("object {uri} is {size} bytes, over the limit of {limit}")]
    TooLarge { uri: String, size: u64, limit: u64 },
    #[error("object {uri} does not exist")]
    NotFound { uri: String },
}

/// Where a listed file physically is, relative to its folder's root, with every link already
/// resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved(pub(crate) PathBuf);

/// One listed object.
#[derive(Debug, Clone)]
pub struct ObjectEntry {
    /// The document URI: the source URI joined with the key.
    pub uri: String,
    /// ETag when the store gives one, else size and modification time.
    pub version: String,
    pub size: u64,
    pub modified_at: UnixMillis,
    pub(crate) locator: Locator,
}

impl ObjectEntry {
    /// An entry as a bucket listing would give it, for pure unit tests of code that groups
    /// listings; it cannot be read.
    #[doc(hidden)]
    pub fn for_tests(uri: &str, version: &str) -> ObjectEntry {
        ObjectEntry {
            uri: uri.to_owned(),
            version: version.to_owned(),
            size: 0,
            modified_at: 0,
            locator: Locator::Object(ObjectPath::from(uri)),
        }
    }
}

/// Where the reader finds a listed object again.
#[derive(Debug, Clone)]
pub(crate) enum Locator {
    /// A file of a folder source, by its resolved path beneath the root.
    Folder(Resolved),
    /// An object in a bucket.
    Object(ObjectPath),
}

/// A listed entry that cannot be read as a document: reported as a failure of that entry,
/// never read, and never taken for a deletion.
#[derive(Debug, Clone, PartialEq)]
pub struct ListFailure {
    pub uri: String,
    /// Changes when the entry changes, so an unchanged failure is not reported again.
    pub version: String,
    pub code: groundwork_core::ErrorCode,
    pub message: String,
    /// A folder that could not be walked: every stored document under `uri/` is kept as is.
    pub subtree: bool,
}

/// What a completed listing found: the objects to sync and the entries that failed alone.
#[derive(Debug, Default)]
pub struct Listing {
    pub objects: Vec<ObjectEntry>,
    pub failures: Vec<ListFailure>,
}
