//! Chat models that write answers: the provider protocols (OpenAI-compatible chat completions,
//! Amazon Bedrock Converse), the prompt that keeps retrieved text in its place, and the mapping
//! of the model's citation markers back to the sources.
//!
//! Everything here is blocking (reqwest's blocking client): the service calls it from worker
//! threads, as it calls SQLite and the embedding model. Streaming hands each piece of text to a
//! callback as it arrives.

pub mod bedrock;
pub mod citations;
pub mod error;
pub mod eventstream;
pub mod openai;
pub mod prompt;
mod retry;
pub mod sigv4;
pub mod sql_prompt;
pub mod sse;

pub use error::LlmError;

use groundwork_core::LlmConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    pub max_tokens: u32,
    pub temperature: f32,
}

/// Tokens billed for one generation, where the server reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    pub text: String,
    /// The model as the server named it (falls back to the configured one).
    pub model: String,
    pub usage: Option<Usage>,
    pub finish_reason: Option<String>,
    /// Attempts made, including the successful one.
    pub attempts: u32,
}

/// A chat model. `on_delta`, when given, receives the text as it is generated (streaming);
/// the response holds the whole text either way.
pub trait ChatModel: Send + Sync {
    /// Identifies provider and model for audit records: `openai:<model>`, `bedrock:<model>`.
    fn id(&self) -> String;

    fn chat(
        &self,
        request: &ChatRequest,
        on_delta: Option<&mut dyn FnMut(&str)>,
    ) -> Result<ChatResponse, LlmError>;
}

/// The model a config describes. API keys are read from the environment now.
pub fn connect(config: &LlmConfig) -> Result<Box<dyn ChatModel>, LlmError> {
    match config {
        LlmConfig::OpenAi {
            base_url,
            model,
            api_key_env,
            limits,
        } => {
            let api_key = match api_key_env {
                None => None,
                Some(variable) => Some(std::env::var(variable).map_err(|_| {
                    LlmError::Config(format!(
                        "the API key is expected in ${variable}, which is not set"
                    ))
                })?),
            };
            Ok(Box::new(openai::OpenAiChat::new(
                base_url,
                model,
                api_key,
                limits.clone(),
            )?))
        }
        LlmConfig::Bedrock {
            region,
            model_id,
            endpoint,
            limits,
        } => {
            let credentials = sigv4::Credentials::from_env()?;
            Ok(Box::new(bedrock::BedrockChat::new(
                region,
                model_id,
                endpoint.as_deref(),
                credentials,
                limits.clone(),
            )?))
        }
    }
}
