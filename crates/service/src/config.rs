//! `config.toml` in the home directory: one file, every field optional, sensible defaults.

use crate::ServiceError;
use groundwork_index::SearchType;
use groundwork_ingest::parse::{
    ParseLimits, ParserPool, PoolConfig, WorkerLimits, registered_worker_command,
};
use groundwork_ingest::sync::SyncOptions;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub search: SearchConfig,
    pub ingest: IngestConfig,
    pub model: ModelConfig,
    pub audit: AuditConfig,
    pub oidc: OidcConfig,
    pub server: ServerConfig,
    /// The model that writes answers when a knowledge base names none; extractive answers when
    /// unset. `provider = "openai"` (`base_url`, `model`, `api_key_env`) or `"bedrock"`
    /// (`region`, `model_id`), with optional `[llm.limits]`.
    pub llm: Option<groundwork_core::LlmConfig>,
    /// Further models a request may choose by name (`[llms.NAME]`, shaped like `[llm]`):
    /// `ask --model NAME`, `"model": "NAME"` in retrieve-and-generate. Callers pick among these
    /// and nothing else, so a request can never point the server at an arbitrary endpoint.
    pub llms: std::collections::BTreeMap<String, groundwork_core::LlmConfig>,
    /// Named guardrail policies and the one applied by default; see [`GuardrailsConfig`].
    pub guardrails: GuardrailsConfig,
    /// What one SQL query may cost, and where PostgreSQL passwords come from.
    pub sql: SqlConfig,
}

/// `[sql]`: bounds on every query (the CLI's, the API's, generated ones), and PostgreSQL.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqlConfig {
    /// Longest SQL text accepted, in bytes.
    pub max_sql_bytes: usize,
    /// A query still running after this many seconds is stopped (`timeout`).
    pub timeout_secs: u64,
    /// Memory one query may use for joins, sorts and aggregates (`resources_exhausted` past it).
    pub max_memory_mb: usize,
    /// Rows a result holds at most; more are cut and the result says it was truncated.
    pub max_rows: usize,
    /// Bytes a result holds at most (as Arrow arrays), likewise.
    pub max_result_mb: usize,
    /// Run a table's data-quality rules after every sync that changed it.
    pub quality_after_sync: bool,
    /// PostgreSQL sources: `[sql.postgres.password_env]` maps a connection
    /// (`"postgres://user@host:5432/db"`) to the environment variable holding its password.
    pub postgres: groundwork_sql::postgres::Connections,
}

impl Default for SqlConfig {
    fn default() -> Self {
        SqlConfig {
            max_sql_bytes: 64 * 1024,
            timeout_secs: 30,
            max_memory_mb: 512,
            max_rows: 10_000,
            max_result_mb: 64,
            quality_after_sync: true,
            postgres: Default::default(),
        }
    }
}

impl SqlConfig {
    pub fn limits(&self) -> groundwork_sql::Limits {
        groundwork_sql::Limits {
            text: groundwork_sql::safety::TextLimits {
                max_bytes: self.max_sql_bytes,
                ..Default::default()
            },
            timeout: std::time::Duration::from_secs(self.timeout_secs.max(1)),
            memory_bytes: self.max_memory_mb.max(16) << 20,
            max_rows: self.max_rows.max(1),
            max_bytes: self.max_result_mb.max(1) << 20,
        }
    }
}

/// Guardrail policies, by name (`[guardrails.policies.NAME]`, each shaped like
/// `crates/guard/policy.example.toml`), and the policy applied to knowledge bases that name
/// none. No default: questions and answers pass unguarded, as before guardrails existed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardrailsConfig {
    pub default: Option<String>,
    pub policies: std::collections::BTreeMap<String, groundwork_guard::GuardPolicy>,
}

/// `groundwork serve`: where it listens and what one request may cost.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on; `serve --listen` overrides it.
    pub listen: String,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// A request still running after this many seconds is answered with `timeout`.
    pub request_timeout_secs: u64,
    /// Requests handled at once; more are refused with `overloaded` rather than queued.
    pub max_concurrent_requests: usize,
    /// Knowledge bases synced in the background, with their interval (`30m`, `6h`, `1d`).
    pub sync_schedule: std::collections::BTreeMap<String, String>,
    /// New requests are refused with `overloaded` while the process's resident memory is over
    /// this many MiB (probes and /metrics stay answerable); no limit when unset.
    pub memory_limit_mb: Option<u64>,
    /// PEM certificate chain and private key; with both set the server speaks HTTPS only.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".to_owned(),
            max_body_bytes: 1024 * 1024,
            request_timeout_secs: 60,
            max_concurrent_requests: 64,
            sync_schedule: std::collections::BTreeMap::new(),
            memory_limit_mb: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    pub default_type: SearchType,
    /// The `k` of reciprocal rank fusion: larger flattens the contribution of top ranks.
    pub rrf_k: f32,
    pub lexical_weight: f32,
    pub semantic_weight: f32,
    /// How many candidates each retriever hands to fusion.
    pub fusion_depth: usize,
    /// Longest query accepted, in bytes.
    pub max_query_bytes: usize,
    /// Knowledge bases with at least this many chunks get an HNSW graph for semantic search;
    /// smaller ones are scanned exactly.
    pub ann_min_chunks: usize,
    /// A permission-restricted semantic search scans exactly (instead of walking the graph)
    /// when the reader may see at most this many chunks; above it a cost estimate chooses
    /// between the scan and a filtered graph walk.
    pub filter_exact_max_chunks: usize,
    /// Most queries embedded together (default 32): concurrent searches queue their queries
    /// while a batch is being embedded and the next batch takes them all, up to this many. 0 or
    /// 1 embeds each query on its own. Gathered or alone, a query gets the same vector.
    pub query_batch_max: usize,
    /// Microseconds a batch waits for more queries before it starts, when others are already
    /// queued beside the first (a lone query never waits); default 0, start at once with what
    /// is queued.
    pub query_batch_window_us: u64,
    /// Query batches embedded at once (default 1, at least 1). 1 suits the local model, whose
    /// every call already spreads over all cores; more suit a model that runs each call on one
    /// thread (or a remote endpoint), about one per core.
    pub query_batch_concurrency: usize,
    /// Query vectors kept in memory, by model fingerprint and exact query text, least recently
    /// used out first; 0 (the default) keeps none. Each entry holds one vector and its query
    /// (at most `max_query_bytes`). Only vectors are kept, never results: each search still
    /// makes its own access decision.
    pub query_cache_entries: usize,
}

impl SearchConfig {
    /// The vector index's settings these make.
    pub fn vector_config(&self) -> groundwork_index::VectorConfig {
        groundwork_index::VectorConfig {
            exact_threshold: self.ann_min_chunks.max(1),
            filter_exact_max: self.filter_exact_max_chunks,
            ..groundwork_index::VectorConfig::default()
        }
    }

    /// How concurrent queries are gathered into batches these make.
    pub fn gather_options(&self) -> groundwork_embed::GatherOptions {
        groundwork_embed::GatherOptions {
            max_batch: self.query_batch_max,
            window: std::time::Duration::from_micros(self.query_batch_window_us),
            concurrency: self.query_batch_concurrency.max(1),
        }
    }
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            default_type: SearchType::Hybrid,
            rrf_k: 60.0,
            lexical_weight: 1.0,
            semantic_weight: 1.0,
            fusion_depth: 100,
            max_query_bytes: 8 * 1024,
            ann_min_chunks: groundwork_index::VectorConfig::default().exact_threshold,
            filter_exact_max_chunks: groundwork_index::VectorConfig::default().filter_exact_max,
            query_batch_max: 32,
            query_batch_window_us: 0,
            query_batch_concurrency: 1,
            query_cache_entries: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest object read at all (`too_large` above it).
    pub max_file_bytes: u64,
    /// Wall-clock limit of one document's parse (`timeout` above it).
    pub parse_timeout_secs: u64,
    /// Most characters extracted from one document; the rest is cut with a warning.
    pub max_extracted_chars: usize,
    /// Most characters extracted per input byte (floor 64 Ki characters); the rest is cut
    /// with a warning.
    pub max_chars_per_byte: usize,
    /// Most columns of a CSV/TSV file (`too_wide` above it).
    pub max_table_columns: usize,
    /// Most cells read from a CSV/TSV file; the rest is cut with a warning.
    pub max_table_cells: usize,
    /// Most chunks indexed from one document; the rest is left out with a warning.
    pub max_chunks_per_document: usize,
    /// Documents committed per store transaction during a sync (smaller: progress survives a
    /// kill sooner; larger: fewer commits).
    pub commit_batch_documents: usize,
    /// Where documents are parsed: `process` (a pool of worker processes, killed at the
    /// deadline and capped in memory and CPU time by the OS) or `thread` (in the server's own
    /// process: a deadline, but a stuck parser keeps its thread and memory).
    pub parse_isolation: ParseIsolation,
    /// Worker processes parsing at once (`process` isolation).
    pub parse_workers: usize,
    /// Memory cap of one parser worker process, in MiB (`out_of_memory` above it; at least
    /// 128, since the parse thread's stack counts too).
    pub parse_memory_mb: u64,
}

/// See [`IngestConfig::parse_isolation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParseIsolation {
    Process,
    Thread,
}

impl Default for IngestConfig {
    fn default() -> Self {
        let parse = ParseLimits::default();
        let sync = SyncOptions::default();
        IngestConfig {
            max_file_bytes: parse.max_bytes,
            parse_timeout_secs: parse.timeout.as_secs(),
            max_extracted_chars: parse.max_extracted_chars,
            max_chars_per_byte: parse.max_chars_per_byte,
            max_table_columns: parse.max_table_columns,
            max_table_cells: parse.max_table_cells,
            max_chunks_per_document: sync.max_chunks_per_document,
            commit_batch_documents: sync.commit_batch_documents,
            parse_isolation: ParseIsolation::Process,
            parse_workers: PoolConfig::default().workers,
            parse_memory_mb: PoolConfig::default().limits.memory_bytes / (1024 * 1024),
        }
    }
}

impl IngestConfig {
    /// The pool of parser worker processes these settings make, when isolation is `process`
    /// and this program can act as a worker (it registered how; a library caller parses
    /// in-thread).
    pub fn parser_pool(&self) -> Option<ParserPool> {
        if self.parse_isolation != ParseIsolation::Process {
            return None;
        }
        let command = registered_worker_command()?;
        Some(ParserPool::new(
            command.clone(),
            PoolConfig {
                workers: self.parse_workers.max(1),
                limits: WorkerLimits {
                    memory_bytes: self.parse_memory_mb.max(128) * 1024 * 1024,
                    cpu_seconds_per_document: self.parse_timeout_secs.max(1),
                },
                ..PoolConfig::default()
            },
        ))
    }

    /// The parser's limits and the sync's options these settings make, parsing in `pool`.
    pub fn sync_options(&self, pool: Option<Arc<ParserPool>>) -> SyncOptions {
        SyncOptions {
            parser_pool: pool,
            parse_limits: ParseLimits {
                max_bytes: self.max_file_bytes,
                timeout: std::time::Duration::from_secs(self.parse_timeout_secs),
                max_extracted_chars: self.max_extracted_chars,
                max_chars_per_byte: self.max_chars_per_byte,
                max_table_columns: self.max_table_columns,
                max_table_cells: self.max_table_cells,
                ..ParseLimits::default()
            },
            max_chunks_per_document: self.max_chunks_per_document,
            commit_batch_documents: self.commit_batch_documents.max(1),
            ..SyncOptions::default()
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Folder of the local embedding model; defaults to `<home>/models/all-MiniLM-L6-v2`.
    pub dir: Option<PathBuf>,
    /// The numbers the local model's linear layers compute with: `"fp32"` (within 1e-5 of
    /// sentence-transformers; the default when absent, and what `init` writes on CPUs without
    /// AVX-512 VNNI) or `"int8"` (8-bit weights and activations: on CPUs with VNNI 2.5 times
    /// fp32's batch throughput with SciFact nDCG@10 within 0.002, see ARCHITECTURE.md; what
    /// `init` writes there). Part of the model's fingerprint: after a change, each knowledge
    /// base on the local model re-embeds its chunks at its next sync, and until then semantic
    /// search finds none of them.
    pub precision: groundwork_embed::Precision,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// File holding an ed25519 seed (64 hex characters) that signs `audit anchor` output.
    pub signing_key_file: Option<PathBuf>,
}

/// Identity-provider (OIDC/JWT) bearer tokens; off until `issuer` and `audience` are set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcConfig {
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// The provider's JWKS as a file…
    pub jwks_file: Option<PathBuf>,
    /// …or a URL, fetched at authentication time.
    pub jwks_url: Option<String>,
    /// The claim that names the user.
    pub user_claim: String,
    /// The claim that lists the user's groups.
    pub groups_claim: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_secs: i64,
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            issuer: None,
            audience: None,
            jwks_file: None,
            jwks_url: None,
            user_claim: "sub".to_owned(),
            groups_claim: "groups".to_owned(),
            leeway_secs: 60,
        }
    }
}

impl OidcConfig {
    /// Loads the JWKS from the file or URL configured.
    pub(crate) fn key_set(&self) -> Result<groundwork_govern::jwt::KeySet, String> {
        let text = match (&self.jwks_file, &self.jwks_url) {
            (Some(file), _) => {
                std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?
            }
            (None, Some(url)) => reqwest::blocking::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .and_then(|client| client.get(url).send())
                .and_then(|response| response.error_for_status())
                .and_then(|response| response.text())
                .map_err(|e| format!("{url}: {e}"))?,
            (None, None) => return Err("neither jwks_file nor jwks_url is set".to_owned()),
        };
        groundwork_govern::jwt::KeySet::from_json(&text).map_err(|e| e.to_string())
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ServiceError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                toml::from_str(&text).map_err(|e| ServiceError::invalid(format!("{}: {e}", path.display())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(e.into()),
        }
    }

    /// The commented default file written by `groundwork init`. One value is chosen for the
    /// machine rather than fixed: `[model] precision` is `int8` where the CPU has AVX-512
    /// VNNI (measured faster than fp32 with the same retrieval quality, see ARCHITECTURE.md),
    /// else `fp32`. A file without the key means `fp32`, so a home made before the choice
    /// existed keeps the vectors it has.
    pub fn default_file() -> String {
        let mut config = Config::default();
        config.model.precision = groundwork_embed::Precision::machine_default();
        let body = toml::to_string_pretty(&config).expect("default config serialises");
        format!(
            "# groundwork configuration. Every field is optional; these are the defaults, except\n\
             # [model] precision, chosen for this machine (fp32 when absent).\n\
             # Environment: GROUNDWORK_HOME picks the home directory; AWS_* variables give S3 credentials.\n\n{body}"
        )
    }
}
