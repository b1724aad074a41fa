//! End-to-end tests of the `groundwork` binary: real model, real SQLite and tantivy, real files,
//! a real S3-compatible server (when `scripts/test.sh` started one), real process kills.

mod support;

mod backup;
mod crash;
mod errors;
mod filters;
mod governance;
mod guardrails;
mod hostile;
mod isolation;
mod links;
mod mcp;
mod remote;
mod s3;
mod serve;
mod sync_folder;
mod tables;
mod text_sql;
