//! The façade every groundwork operation goes through.
//!
//! Faces (the CLI, the HTTP server) call [`Groundwork`] and nothing below it. This is
//! where a request is checked, the engines (`store`, `embed`, `index`, `ingest`) are driven, and
//! where access is decided and the audit record written (see `governance`).

mod actor;
mod admin;
mod answer;
mod audit;
mod auth;
mod backup;
pub mod bench;
mod config;
mod discovery;
mod error;
mod eval;
mod eval_sql;
mod guardrails;
mod home;
mod kb;
mod lineage;
mod loaded;
mod policy_guard;
mod quality;
mod record;
mod search;
mod table_sync;
mod tables;
mod text_sql;

pub use actor::{Actor, LOCAL_ADMIN};
pub use admin::{CreatedToken, normalise_location, parse_time_or_duration};
pub use answer::{AskRequest, ask, extractive_answer};
pub use audit::{AnchorLocation, AuditVerification};
pub use backup::{BackupLocation, BackupReport, Manifest, RestoreReport};
pub use bench::{BenchOptions, BenchReport};
pub use config::{Config, GuardrailsConfig, ServerConfig};
pub use discovery::{DescriptionChange, FoundTable, TableSearchRequest, TableSearchResponse};
pub use error::ServiceError;
pub use eval::{EvalOptions, EvalReport, EvalRow, RetrievalMetrics};
pub use eval_sql::{SqlEvalOptions, SqlEvalReport, TableEvalOptions, TableEvalReport};
pub use groundwork_govern::access::{Grant, Grantee, Level, NewGrant};
pub use groundwork_govern::audit::{Anchor, AuditRow};
pub use groundwork_index::SearchType;
pub use groundwork_ingest::parse::{WorkerCommand, WorkerLimits, register_worker_command, serve_worker};
pub use groundwork_ingest::sync::{SyncEvent, SyncObserver, SyncReport};
pub use groundwork_sql::output::Format as ResultFormat;
pub use groundwork_sql::quality::QualityReport;
pub use groundwork_sql::{QueryOutcome, RecordBatch, SqlError};
pub use groundwork_store::{AuditQuery, ChunkLineage, Principal, PrincipalKind, SqlExample, TokenRecord};
pub use guardrails::{CheckRequest, CheckResponse, CheckSource, MAX_CHECK_BYTES};
pub use home::{Groundwork, InitReport};
pub use kb::{DocumentFailure, IndexStatus, KbStatus};
pub use lineage::{AnswerLineage, UsedChunk};
pub use policy_guard::PolicyGuard;
pub use quality::QualityStatus;
pub use search::{MAX_K, QueryEmbeddingStats, SearchRequest, SearchResponse, Searcher};
pub use tables::{
    ColumnView, LineageTable, QueryLineage, SqlRequest, TableDescription, TableSummary, write_result,
};
pub use text_sql::{SqlAttempt, Stage, StageTimes, TableAnswer, TableQuestion};
