//! The durable source of truth: one SQLite database (WAL, `synchronous=FULL`) per home directory.
//!
//! Everything that cannot be recomputed lives here: knowledge bases, sources, documents with
//! their object versions and content hashes, chunks, the embedding cache, sync runs, and the
//! change log that derived indexes replay. Search indexes are *derived* from this store and
//! record the change-log sequence they reflect (see `groundwork-index`).
//!
//! Governance state (principals, memberships, tokens, grants) and the append-only audit chain
//! live here too; every governance change commits together with its audit record.
//!
//! Architecture invariant: a document and its chunks change in one transaction together with a
//! change-log row, so a reader (or a crash) sees the old or the new version, never a mix.

mod audit_journal;
mod backup;
mod chain;
mod error;
mod governance;
mod migrations;
mod sql;
mod store;
mod tables;
mod text_sql;

pub use backup::{CopyInfo, inspect, supported_schema_version};
pub use error::StoreError;
pub use governance::{AuditQuery, ChunkLineage, Principal, PrincipalKind, TokenRecord};
pub use rusqlite::Transaction;
pub use store::{
    ChunkRecord, ChunkWrite, DocumentChange, DocumentState, DocumentView, DocumentWrite, FailureWrite, Store,
    SyncRunRecord, VersionTouch,
};
pub use tables::{QualityRun, StoredTable, TableChanges, TableVersion, TableWrite};
pub use text_sql::{DescriptionOrigin, SqlExample, StoredDescription};
