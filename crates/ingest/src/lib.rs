//! Ingestion: from a source (folder, S3 bucket) to chunks in the store and entries in the indexes.
//!
//! The pipeline is list → diff → parse → chunk → embed → commit. `parse` and `chunk` are pure
//! (bytes in, text and spans out); `source` talks to object storage; `sync` drives the pipeline
//! against the store and keeps the derived indexes in step.

pub mod catalog;
pub mod chunk;
pub mod folder;
pub mod indexes;
pub mod parse;
pub mod source;
pub mod sync;
