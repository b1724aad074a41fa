//! Integration tests of the ingest crate.

mod chunk;
mod fuzz;
mod parse;
mod sync;
