//! Which language model writes answers, and how to reach it. Plain data: the `llm` crate
//! talks to the model; the service picks the config (request, then knowledge base, then the
//! server default).

use serde::{Deserialize, Serialize};

/// A chat model behind one of the supported protocols. Secrets are never stored here: API keys
/// are read from the named environment variable at use, AWS credentials from the usual
/// `AWS_*` variables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case", deny_unknown_fields)]
pub enum LlmConfig {
    /// Any OpenAI-compatible `/chat/completions` endpoint (vLLM, llama.cpp server, Ollama,
    /// LM Studio, OpenAI). `base_url` includes the version path, e.g. `http://127.0.0.1:8000/v1`.
    #[serde(rename = "openai")]
    OpenAi {
        base_url: String,
        model: String,
        #[serde(default)]
        api_key_env: Option<String>,
        #[serde(default)]
        limits: LlmLimits,
    },
    /// Amazon Bedrock's Converse API, signed with SigV4.
    Bedrock {
        region: String,
        model_id: String,
        /// Overrides `https://bedrock-runtime.<region>.amazonaws.com` (VPC endpoints, tests).
        #[serde(default)]
        endpoint: Option<String>,
        #[serde(default)]
        limits: LlmLimits,
    },
}

impl LlmConfig {
    pub fn limits(&self) -> &LlmLimits {
        match self {
            LlmConfig::OpenAi { limits, .. } | LlmConfig::Bedrock { limits, .. } => limits,
        }
    }
}

/// Time, retries and size of one generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmLimits {
    /// Per attempt, connect to last byte.
    pub timeout_secs: u64,
    /// Further attempts after a 429, a 5xx or a dropped connection.
    pub max_retries: u32,
    /// Tokens the model may write.
    pub max_tokens: u32,
    pub temperature: f32,
    /// Longest wait a `Retry-After` may ask for before the call gives up instead.
    pub max_retry_after_secs: u64,
}

impl Default for LlmLimits {
    fn default() -> Self {
        LlmLimits {
            timeout_secs: 60,
            max_retries: 2,
            max_tokens: 512,
            temperature: 0.0,
            max_retry_after_secs: 30,
        }
    }
}
