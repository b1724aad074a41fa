//! Integration tests of the ingest crate.

mod chunk;
mod parse;
