//! Object storage for every area: list, read, write and version objects under a `file://`
//! folder or an `s3://bucket/prefix`, with endpoints and credentials.
//!
//! Invariant: a connection never reads or writes outside its location. Folders are confined to
//! their root (no link is followed out of it, see `folder`); buckets to their bucket. Knows
//! nothing of documents, tables or the service: sync, table discovery, dataset exports and
//! audit anchors all meet storage here.

mod entry;
pub mod folder;
mod location;

pub use entry::{ListFailure, Listing, ObjectEntry, ObjectError};
pub use location::{Connection, Location};
