//! `config.toml` in the home directory: one file, every field optional, sensible defaults.

use crate::ServiceError;
use groundwork_index::SearchType;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub search: SearchConfig,
    pub ingest: IngestConfig,
    pub model: ModelConfig,
    pub audit: AuditConfig,
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
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    pub max_file_bytes: u64,
    pub parse_timeout_secs: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_file_bytes: 64 * 1024 * 1024,
            parse_timeout_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Folder of the local embedding model; defaults to `<home>/models/all-MiniLM-L6-v2`.
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// File holding an ed25519 seed (64 hex characters) that signs `audit anchor` output.
    pub signing_key_file: Option<PathBuf>,
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

    /// The commented default file written by `groundwork init`.
    pub fn default_file() -> String {
        let body = toml::to_string_pretty(&Config::default()).expect("default config serialises");
        format!(
            "# groundwork configuration. Every field is optional; these are the defaults.\n\
             # Environment: GROUNDWORK_HOME picks the home directory; AWS_* variables give S3 credentials.\n\n{body}"
        )
    }
}
