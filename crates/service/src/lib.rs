//! The façade every groundwork operation goes through.
//!
//! Faces (the CLI, the HTTP server) call [`Groundwork`] and nothing below it. This is
//! where a request is checked, the engines (`store`, `embed`, `index`, `ingest`) are driven, and
//! where access is decided and the audit record written (see `governance`).

mod answer;
pub mod bench;
mod config;
mod error;
mod eval;
mod governance;
mod guardrails;
mod home;
mod search;

pub use answer::{ask, ask_with_model, extractive_answer};
pub use bench::{BenchOptions, BenchReport};
pub use config::{Config, GuardrailsConfig, ServerConfig};
pub use error::ServiceError;
pub use eval::{EvalOptions, EvalReport, EvalRow, RetrievalMetrics};
pub use governance::{
    Actor, AnchorLocation, AnswerLineage, AuditVerification, CreatedToken, LOCAL_ADMIN, UsedChunk,
    normalise_location, parse_time_or_duration,
};
pub use groundwork_govern::access::{Grant, Grantee, Level};
pub use groundwork_govern::audit::{Anchor, AuditRow};
pub use groundwork_index::SearchType;
pub use groundwork_ingest::sync::{SyncEvent, SyncObserver, SyncReport};
pub use groundwork_store::{AuditQuery, ChunkLineage, Principal, PrincipalKind, TokenRecord};
pub use guardrails::{CheckRequest, CheckResponse, CheckSource, MAX_CHECK_BYTES, PolicyGuard};
pub use home::{DocumentFailure, Groundwork, IndexStatus, InitReport, KbStatus};
pub use search::{SearchRequest, SearchResponse, Searcher};
