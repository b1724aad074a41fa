//! Amazon Bedrock's Converse API (`POST /model/{modelId}/converse`), signed with SigV4.
//!
//! Streaming (`ConverseStream`) uses AWS's binary event-stream framing; this provider asks for
//! the whole answer and hands it to a streaming caller as one piece.

use crate::retry::{Failure, parse_retry_after, with_retries};
use crate::sigv4::{self, Credentials};
use crate::{ChatModel, ChatRequest, ChatResponse, LlmError, Role, Usage};
use groundwork_core::LlmLimits;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};

pub struct BedrockChat {
    client: reqwest::blocking::Client,
    endpoint: reqwest::Url,
    region: String,
    model_id: String,
    credentials: Credentials,
    limits: LlmLimits,
}

impl BedrockChat {
    pub fn new(
        region: &str,
        model_id: &str,
        endpoint: Option<&str>,
        credentials: Credentials,
        limits: LlmLimits,
    ) -> Result<BedrockChat, LlmError> {
        let endpoint = endpoint
            .map(str::to_owned)
            .unwrap_or_else(|| format!("https://bedrock-runtime.{region}.amazonaws.com"));
        let endpoint = reqwest::Url::parse(&endpoint)
            .map_err(|e| LlmError::Config(format!("Bedrock endpoint `{endpoint}`: {e}")))?;
        if endpoint.host_str().is_none() {
            return Err(LlmError::Config("the Bedrock endpoint has no host".to_owned()));
        }
        let client = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(limits.timeout_secs.clamp(1, 10)))
            .timeout(Duration::from_secs(limits.timeout_secs.max(1)))
            .build()
            .map_err(|e| LlmError::Config(e.to_string()))?;
        Ok(BedrockChat {
            client,
            endpoint,
            region: region.to_owned(),
            model_id: model_id.to_owned(),
            credentials,
            limits,
        })
    }

    fn body(request: &ChatRequest) -> Value {
        let system: Vec<Value> = request
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| json!({ "text": m.content }))
            .collect();
        let messages: Vec<Value> = request
            .messages
            .iter()
            .filter(|m| m.role != Role::System)
            .map(|m| {
                let role = if m.role == Role::Assistant {
                    "assistant"
                } else {
                    "user"
                };
                json!({ "role": role, "content": [{ "text": m.content }] })
            })
            .collect();
        json!({
            "messages": messages,
            "system": system,
            "inferenceConfig": { "maxTokens": request.max_tokens, "temperature": request.temperature },
        })
    }

    fn attempt(&self, payload: &[u8]) -> Result<ChatResponse, Failure> {
        let path = format!("/model/{}/converse", sigv4::encode(&self.model_id, true));
        let host = match self.endpoint.port() {
            Some(port) => format!("{}:{port}", self.endpoint.host_str().unwrap_or_default()),
            None => self.endpoint.host_str().unwrap_or_default().to_owned(),
        };
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let amz_date = sigv4::amz_date(now);
        let content_hash = sigv4::payload_hash(payload);
        let mut headers: Vec<(&str, &str)> = vec![
            ("content-type", "application/json"),
            ("x-amz-content-sha256", &content_hash),
            ("x-amz-date", &amz_date),
        ];
        if let Some(token) = &self.credentials.session_token {
            headers.push(("x-amz-security-token", token));
        }
        let authorization = sigv4::authorization(
            &sigv4::Request {
                method: "POST",
                host: &host,
                path: &path,
                query: &[],
                headers: &headers,
                payload,
            },
            &self.credentials,
            &self.region,
            "bedrock",
            &amz_date,
        );
        let mut url = self.endpoint.clone();
        url.set_path(&path);
        let mut builder = self
            .client
            .post(url)
            .body(payload.to_vec())
            .header("authorization", authorization);
        for (name, value) in &headers {
            builder = builder.header(*name, *value);
        }
        let response = builder.send().map_err(|e| {
            if e.is_timeout() {
                LlmError::Timeout(self.limits.timeout_secs)
            } else {
                LlmError::Transport(e.without_url().to_string())
            }
        })?;
        let status = response.status();
        let retry_after = parse_retry_after(response.headers().get(reqwest::header::RETRY_AFTER));
        let text = response.text().map_err(|e| LlmError::Transport(e.to_string()))?;
        // Bedrock signals throttling with 429 and `ThrottlingException`.
        if status.as_u16() == 429 {
            return Err(Failure {
                error: LlmError::RateLimited,
                retry_after,
            });
        }
        if !status.is_success() {
            return Err(Failure {
                error: LlmError::Http {
                    status: status.as_u16(),
                    excerpt: crate::error::excerpt(&text),
                },
                retry_after,
            });
        }
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| LlmError::Malformed(format!("not JSON ({e}): {}", crate::error::excerpt(&text))))?;
        let content = value
            .pointer("/output/message/content")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                LlmError::Malformed(format!("no output message in: {}", crate::error::excerpt(&text)))
            })?;
        let answer: String = content
            .iter()
            .filter_map(|block| block.get("text").and_then(Value::as_str))
            .collect();
        let usage = value.get("usage").map(|u| Usage {
            prompt_tokens: u.get("inputTokens").and_then(Value::as_u64).unwrap_or(0),
            completion_tokens: u.get("outputTokens").and_then(Value::as_u64).unwrap_or(0),
        });
        Ok(ChatResponse {
            text: answer,
            model: self.model_id.clone(),
            usage,
            finish_reason: value.get("stopReason").and_then(Value::as_str).map(str::to_owned),
            attempts: 1,
        })
    }
}

impl ChatModel for BedrockChat {
    fn id(&self) -> String {
        format!("bedrock:{}", self.model_id)
    }

    fn chat(
        &self,
        request: &ChatRequest,
        on_delta: Option<&mut dyn FnMut(&str)>,
    ) -> Result<ChatResponse, LlmError> {
        let payload = serde_json::to_vec(&Self::body(request)).expect("a JSON value serialises");
        let (mut response, attempts) = with_retries(&self.limits, || self.attempt(&payload))?;
        response.attempts = attempts;
        if let Some(deliver) = on_delta {
            deliver(&response.text);
        }
        Ok(response)
    }
}
