//! Ingestion: from a source (folder, S3 bucket) to chunks in the store and entries in the indexes.
//!
//! The pipeline is list → diff → parse → chunk → embed → commit. `parse` and `chunk` are pure
//! (bytes in, text and spans out); sources are read through `groundwork-objects`; `sync` drives the pipeline
//! against the store, then has the search state (`groundwork-search`) catch up with the commits.

pub mod chunk;
pub mod parse;
mod pipeline;
mod prepare;
mod stages;
pub mod sync;
mod sync_types;
