//! Knowledge bases and their sources, as configured by users.

use crate::{KbId, SourceId, UnixMillis};
use serde::{Deserialize, Serialize};

/// How documents are split into chunks. Serialised as a tagged object, e.g.
/// `{"strategy": "fixed_size", "max_tokens": 200, "overlap_percent": 10}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "strategy", rename_all = "snake_case")]
pub enum ChunkingConfig {
    /// Whole sentences packed up to `max_tokens` of the embedding model's tokenizer, with
    /// `overlap_tokens` of trailing sentences repeated at the start of the next chunk.
    Default {
        max_tokens: usize,
        overlap_tokens: usize,
    },
    /// Windows of exactly `max_tokens` tokens, overlapping by `overlap_percent`.
    FixedSize { max_tokens: usize, overlap_percent: u8 },
    /// One chunk per document.
    None,
}

impl Default for ChunkingConfig {
    /// About 300 tokens is the common default (Bedrock uses 300), but all-MiniLM-L6-v2 reads at
    /// most 256 tokens including [CLS] and [SEP]: a longer chunk would be searchable by keyword
    /// yet invisible to semantic search past token 254. So the default stays within the model.
    fn default() -> Self {
        ChunkingConfig::Default {
            max_tokens: 254,
            overlap_tokens: 50,
        }
    }
}

/// Which embedder a knowledge base uses. Changing it means re-embedding every chunk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EmbedderConfig {
    /// The local all-MiniLM-L6-v2 model from the home directory's model cache.
    #[default]
    Local,
    /// An OpenAI-compatible `/v1/embeddings` endpoint. The API key is read from the named
    /// environment variable at use, so it never lands in the store.
    Remote {
        base_url: String,
        model: String,
        api_key_env: Option<String>,
    },
}

/// What a knowledge base holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KbKind {
    /// Documents, chunked, embedded and searched.
    #[default]
    Documents,
    /// Tables (files, lakes, SQLite, PostgreSQL), catalogued and queried with SQL.
    Tables,
}

impl KbKind {
    pub fn is_documents(&self) -> bool {
        *self == KbKind::Documents
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnowledgeBaseConfig {
    #[serde(default, skip_serializing_if = "KbKind::is_documents")]
    pub kind: KbKind,
    #[serde(default)]
    pub chunking: ChunkingConfig,
    #[serde(default)]
    pub embedder: EmbedderConfig,
    /// The model that writes this knowledge base's answers; the server default when absent,
    /// and the extractive answer when neither is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<crate::LlmConfig>,
    /// The guardrail policy (a name under `[guardrails.policies]` in `config.toml`) applied to
    /// this knowledge base's questions, retrieved chunks and answers; the server default
    /// (`[guardrails] default`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardrail: Option<String>,
    /// Tables knowledge bases: whether result rows go to the model to write the answer.
    /// When false, a question returns the SQL and its rows, and the model sees only schemas.
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub send_rows_to_model: bool,
}

impl Default for KnowledgeBaseConfig {
    fn default() -> Self {
        KnowledgeBaseConfig {
            kind: KbKind::default(),
            chunking: ChunkingConfig::default(),
            embedder: EmbedderConfig::default(),
            llm: None,
            guardrail: None,
            send_rows_to_model: true,
        }
    }
}

fn yes() -> bool {
    true
}

fn is_yes(value: &bool) -> bool {
    *value
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnowledgeBase {
    pub id: KbId,
    pub name: String,
    pub config: KnowledgeBaseConfig,
    pub created_at: UnixMillis,
}

/// Connection settings of a source. Secrets are not stored here: S3 credentials come from the
/// environment (`AWS_ACCESS_KEY_ID`, …) or the config file at sync time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceConfig {
    /// S3 endpoint for S3-compatible servers, e.g. `http://127.0.0.1:9000`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Folder sources only: follow symbolic links whose resolved target stays inside the
    /// source folder. Off by default: a link is reported, never read. A link that resolves
    /// outside the folder is never followed either way.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub follow_links: bool,
    /// Tables sources only: the name of the table a folder or file forms, or the namespace of a
    /// database's tables (`NAME.table`), instead of the one derived from the location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub id: SourceId,
    pub kb_id: KbId,
    /// Normalised location: `file:///abs/dir/` or `s3://bucket/prefix`.
    pub uri: String,
    pub config: SourceConfig,
    pub created_at: UnixMillis,
}
