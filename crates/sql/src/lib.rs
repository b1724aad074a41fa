//! The table engine: discovering tables where they live (Parquet, CSV and JSON Lines files in
//! folders and buckets, SQLite files, PostgreSQL), profiling them, checking SQL, governing it
//! by plan rewriting, and running it on Apache DataFusion or in PostgreSQL.
//!
//! Invariant: nothing here decides *who* may read a table — the caller hands the engine the
//! tables a principal may read, each with its [`policy::TablePolicy`], and the engine
//! guarantees that a query sees nothing else: no other table (they are not registered, and a
//! name that is not among them is `not_found`), no row a row filter hides, no value a mask
//! hides. Knows nothing of the service layer, HTTP or argv.

pub mod catalog;
pub mod discover;
pub mod engine;
pub mod error;
pub mod files;
pub mod output;
pub mod policy;
pub mod postgres;
pub mod profile;
pub mod quality;
pub mod safety;
pub mod sqlite;
mod stores;

pub use catalog::{Column, FileFormat, TableDef, TableSource};
pub use engine::{Embedded, Limits, QueryEngine, QueryOutcome, QueryRequest, TableGrant, TouchedTable};
pub use error::SqlError;
pub use policy::{GrantView, Mask, TablePolicy};
pub use profile::Profile;

/// Re-exported so callers can handle result batches without depending on Arrow themselves.
pub use datafusion::arrow::array::RecordBatch;
