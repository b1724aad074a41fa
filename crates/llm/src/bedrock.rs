//! Amazon Bedrock's Converse API (`POST /model/{modelId}/converse`), signed with SigV4, and
//! `ConverseStream` (`…/converse-stream`) for streaming callers: AWS's binary event stream
//! (`crate::eventstream`), whose `contentBlockDelta` events are handed on as they arrive.
//! Throttling and server errors inside a stream arrive as exception messages and are typed like
//! their HTTP counterparts; once text has been handed on, a failure is not retried.

use crate::eventstream;
use crate::retry::{Failure, chat_with_retries, parse_retry_after};
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

    fn attempt(
        &self,
        payload: &[u8],
        on_delta: &mut Option<&mut dyn FnMut(&str)>,
        streamed_any: &mut bool,
    ) -> Result<ChatResponse, Failure> {
        let operation = if on_delta.is_some() {
            "converse-stream"
        } else {
            "converse"
        };
        let path = format!("/model/{}/{operation}", sigv4::encode(&self.model_id, true));
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
        let is_event_stream = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/vnd.amazon.eventstream"));
        if status.is_success()
            && is_event_stream
            && let Some(deliver) = on_delta.as_mut()
        {
            return self.read_stream(response, &mut **deliver, streamed_any);
        }
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
        if let Some(deliver) = on_delta.as_mut() {
            // Asked to stream, answered at once: hand over the whole text as one piece.
            *streamed_any = true;
            deliver(&answer);
        }
        Ok(ChatResponse {
            text: answer,
            model: self.model_id.clone(),
            usage,
            finish_reason: value.get("stopReason").and_then(Value::as_str).map(str::to_owned),
            attempts: 1,
        })
    }

    fn read_stream(
        &self,
        response: reqwest::blocking::Response,
        deliver: &mut dyn FnMut(&str),
        streamed_any: &mut bool,
    ) -> Result<ChatResponse, Failure> {
        let mut reader = std::io::BufReader::new(response);
        let mut text = String::new();
        let mut usage = None;
        let mut finish_reason = None;
        loop {
            let message = match eventstream::read_message(&mut reader) {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(eventstream::FrameError::Io(e)) if e.contains("timed out") => {
                    return Err(LlmError::Timeout(self.limits.timeout_secs).into());
                }
                Err(eventstream::FrameError::Malformed(e)) => return Err(LlmError::Malformed(e).into()),
                Err(e) => return Err(LlmError::Transport(e.to_string()).into()),
            };
            let payload: Value = serde_json::from_slice(&message.payload).map_err(|e| {
                LlmError::Malformed(format!(
                    "a stream event is not JSON ({e}): {}",
                    crate::error::excerpt(&String::from_utf8_lossy(&message.payload))
                ))
            })?;
            if message.header(":message-type") != Some("event") {
                let kind = message
                    .header(":exception-type")
                    .or(message.header(":error-code"))
                    .unwrap_or("unknown");
                let detail = payload
                    .get("message")
                    .or(payload.get("Message"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let error = if kind == "throttlingException" {
                    LlmError::RateLimited
                } else {
                    LlmError::Transport(format!(
                        "Bedrock reported {kind} mid-stream: {}",
                        crate::error::excerpt(detail)
                    ))
                };
                return Err(error.into());
            }
            match message.header(":event-type") {
                Some("contentBlockDelta") => {
                    if let Some(piece) = payload.pointer("/delta/text").and_then(Value::as_str)
                        && !piece.is_empty()
                    {
                        *streamed_any = true;
                        deliver(piece);
                        text.push_str(piece);
                    }
                }
                Some("messageStop") => {
                    finish_reason = payload
                        .get("stopReason")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                }
                Some("metadata") => {
                    usage = payload.get("usage").map(|u| Usage {
                        prompt_tokens: u.get("inputTokens").and_then(Value::as_u64).unwrap_or(0),
                        completion_tokens: u.get("outputTokens").and_then(Value::as_u64).unwrap_or(0),
                    });
                }
                // messageStart, contentBlockStart/Stop, and events added later.
                _ => {}
            }
        }
        if finish_reason.is_none() {
            return Err(
                LlmError::Transport("the stream ended before the answer was complete".to_owned()).into(),
            );
        }
        Ok(ChatResponse {
            text,
            model: self.model_id.clone(),
            usage,
            finish_reason,
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
        mut on_delta: Option<&mut dyn FnMut(&str)>,
    ) -> Result<ChatResponse, LlmError> {
        let payload = serde_json::to_vec(&Self::body(request)).expect("a JSON value serialises");
        chat_with_retries(&self.limits, |streamed_any| {
            self.attempt(&payload, &mut on_delta, streamed_any)
        })
    }
}
