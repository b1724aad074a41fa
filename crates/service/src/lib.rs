//! The façade every groundwork operation goes through.
//!
//! Faces (the CLI now, the HTTP server later) call [`Groundwork`] and nothing below it. This is
//! where a request is checked, the engines (`store`, `embed`, `index`, `ingest`) are driven, and
//! — with the governance milestone — where access is decided and the audit record written.

mod answer;
pub mod bench;
mod config;
mod error;
mod eval;
mod home;
mod search;

pub use answer::extractive_answer;
pub use bench::{BenchOptions, BenchReport};
pub use config::Config;
pub use error::ServiceError;
pub use eval::{EvalOptions, EvalReport, EvalRow, RetrievalMetrics};
pub use groundwork_index::SearchType;
pub use groundwork_ingest::sync::{SyncEvent, SyncObserver, SyncReport};
pub use home::{DocumentFailure, Groundwork, IndexStatus, InitReport, KbStatus};
pub use search::{SearchRequest, SearchResponse, Searcher};
