//! OpenAI-compatible chat completions (`POST {base_url}/chat/completions`), as served by vLLM,
//! llama.cpp's server, Ollama, LM Studio and OpenAI itself.
//!
//! Real servers deviate from the schema, so responses are read leniently: `content` may be a
//! string, null, or a list of text parts; older servers answer with `choices[0].text`; usage may
//! be missing or named `input_tokens`/`output_tokens`; a server asked to stream may answer with
//! one JSON body instead. What cannot be read at all is a `Malformed` error, never a panic.

use crate::retry::{Failure, chat_with_retries, parse_retry_after};
use crate::sse;
use crate::{ChatModel, ChatRequest, ChatResponse, LlmError, Usage};
use groundwork_core::LlmLimits;
use serde_json::{Value, json};
use std::io::{BufRead, Read};
use std::time::Duration;

/// Longest server-sent-event line accepted; a server that sends more without a line break is
/// broken or hostile, and must not grow our memory without bound.
const MAX_STREAM_LINE: u64 = 1 << 20;

pub struct OpenAiChat {
    client: reqwest::blocking::Client,
    url: String,
    model: String,
    api_key: Option<String>,
    limits: LlmLimits,
}

impl OpenAiChat {
    pub fn new(
        base_url: &str,
        model: &str,
        api_key: Option<String>,
        limits: LlmLimits,
    ) -> Result<OpenAiChat, LlmError> {
        let base = base_url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(LlmError::Config(format!(
                "base_url `{base}` is not an http(s) URL"
            )));
        }
        let client = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(limits.timeout_secs.clamp(1, 10)))
            .timeout(Duration::from_secs(limits.timeout_secs.max(1)))
            .build()
            .map_err(|e| LlmError::Config(e.to_string()))?;
        Ok(OpenAiChat {
            client,
            url: format!("{base}/chat/completions"),
            model: model.to_owned(),
            api_key,
            limits,
        })
    }

    fn transport(&self, error: reqwest::Error) -> LlmError {
        if error.is_timeout() {
            LlmError::Timeout(self.limits.timeout_secs)
        } else {
            // Without the URL: it may carry credentials in its userinfo.
            LlmError::Transport(error.without_url().to_string())
        }
    }

    fn attempt(
        &self,
        request: &ChatRequest,
        on_delta: &mut Option<&mut dyn FnMut(&str)>,
        streamed_any: &mut bool,
    ) -> Result<ChatResponse, Failure> {
        let stream = on_delta.is_some();
        let body = json!({
            "model": self.model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": stream,
        });
        let mut builder = self.client.post(&self.url).json(&body);
        if let Some(key) = &self.api_key {
            builder = builder.bearer_auth(key);
        }
        let response = builder.send().map_err(|e| self.transport(e))?;
        let status = response.status();
        if status.as_u16() == 429 {
            return Err(Failure {
                error: LlmError::RateLimited,
                retry_after: parse_retry_after(response.headers().get(reqwest::header::RETRY_AFTER)),
            });
        }
        if !status.is_success() {
            let retry_after = parse_retry_after(response.headers().get(reqwest::header::RETRY_AFTER));
            let text = response.text().unwrap_or_default();
            return Err(Failure {
                error: LlmError::Http {
                    status: status.as_u16(),
                    excerpt: crate::error::excerpt(&text),
                },
                retry_after,
            });
        }
        let is_event_stream = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if stream && is_event_stream {
            let deliver = on_delta.as_mut().expect("streaming has a callback");
            return self.read_stream(response, &mut **deliver, streamed_any);
        }
        let text = response.text().map_err(|e| self.transport(e))?;
        let parsed = self.read_body(&text)?;
        if let Some(deliver) = on_delta.as_mut() {
            // Asked to stream, answered at once: hand over the whole text as one piece.
            *streamed_any = true;
            deliver(&parsed.text);
        }
        Ok(parsed)
    }

    fn read_body(&self, text: &str) -> Result<ChatResponse, Failure> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| LlmError::Malformed(format!("not JSON ({e}): {}", crate::error::excerpt(text))))?;
        reported_error(&value)?;
        let choice = value.get("choices").and_then(|c| c.get(0));
        let content = choice.and_then(|c| choice_text(c, "message")).ok_or_else(|| {
            LlmError::Malformed(format!("no message content in: {}", crate::error::excerpt(text)))
        })?;
        Ok(ChatResponse {
            text: content,
            model: value
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or(&self.model)
                .to_owned(),
            usage: value.get("usage").and_then(usage),
            finish_reason: choice
                .and_then(|c| c.get("finish_reason"))
                .and_then(Value::as_str)
                .map(str::to_owned),
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
        let mut parser = sse::Parser::default();
        let mut text = String::new();
        let mut model = None;
        let mut usage_seen = None;
        let mut finish_reason = None;
        let mut done = false;
        let mut finished = false;
        let mut line = Vec::new();
        while !done {
            line.clear();
            // A line never grows past the cap, whatever the server sends.
            let read = (&mut reader)
                .take(MAX_STREAM_LINE)
                .read_until(b'\n', &mut line)
                .map_err(|e| {
                    if e.kind() == std::io::ErrorKind::TimedOut {
                        LlmError::Timeout(self.limits.timeout_secs)
                    } else {
                        LlmError::Transport(format!("the stream broke: {e}"))
                    }
                })?;
            if read as u64 == MAX_STREAM_LINE && !line.ends_with(b"\n") {
                return Err(LlmError::Malformed(format!(
                    "a stream line is longer than {MAX_STREAM_LINE} bytes"
                ))
                .into());
            }
            let event = if read == 0 {
                done = true;
                parser.finish()
            } else {
                parser.line(&String::from_utf8_lossy(&line))
            };
            let Some(event) = event else { continue };
            let data = event.data.trim();
            if data == "[DONE]" {
                finished = true;
                break;
            }
            if data.is_empty() {
                continue;
            }
            let chunk: Value = serde_json::from_str(data).map_err(|e| {
                LlmError::Malformed(format!(
                    "a stream event is not JSON ({e}): {}",
                    crate::error::excerpt(data)
                ))
            })?;
            reported_error(&chunk)?;
            if model.is_none() {
                model = chunk.get("model").and_then(Value::as_str).map(str::to_owned);
            }
            if let Some(u) = chunk.get("usage").and_then(usage) {
                usage_seen = Some(u);
            }
            let choice = chunk.get("choices").and_then(|c| c.get(0));
            if let Some(reason) = choice
                .and_then(|c| c.get("finish_reason"))
                .and_then(Value::as_str)
            {
                finish_reason = Some(reason.to_owned());
            }
            let piece = choice.and_then(|c| choice_text(c, "delta"));
            if let Some(piece) = piece.filter(|p| !p.is_empty()) {
                *streamed_any = true;
                deliver(&piece);
                text.push_str(&piece);
            }
        }
        // A stream ends with `[DONE]`; servers that omit it still send a finish reason. With
        // neither, the connection broke mid-answer.
        if !finished && finish_reason.is_none() {
            return Err(
                LlmError::Transport("the stream ended before the answer was complete".to_owned()).into(),
            );
        }
        if text.is_empty() && finish_reason.is_none() {
            return Err(LlmError::Malformed("the stream ended without any content".to_owned()).into());
        }
        Ok(ChatResponse {
            text,
            model: model.unwrap_or_else(|| self.model.clone()),
            usage: usage_seen,
            finish_reason,
            attempts: 1,
        })
    }
}

impl ChatModel for OpenAiChat {
    fn id(&self) -> String {
        format!("openai:{}", self.model)
    }

    fn chat(
        &self,
        request: &ChatRequest,
        mut on_delta: Option<&mut dyn FnMut(&str)>,
    ) -> Result<ChatResponse, LlmError> {
        chat_with_retries(&self.limits, |streamed_any| {
            self.attempt(request, &mut on_delta, streamed_any)
        })
    }
}

/// An `error` object the server put in a 200 answer (some do) as a typed error.
fn reported_error(value: &Value) -> Result<(), Failure> {
    match value.get("error").filter(|e| !e.is_null()) {
        Some(error) => {
            Err(LlmError::Malformed(format!("the server reported an error: {}", error_message(error))).into())
        }
        None => Ok(()),
    }
}

/// A choice's text: `message`/`delta` content (chat), else `text` (older completion servers).
fn choice_text(choice: &Value, field: &str) -> Option<String> {
    choice
        .get(field)
        .and_then(|m| m.get("content"))
        .and_then(content_text)
        .or_else(|| choice.get("text").and_then(Value::as_str).map(str::to_owned))
}

/// Message content as text: a string, or the text parts of a list; `None` for null/absent.
fn content_text(content: &Value) -> Option<String> {
    match content {
        Value::String(text) => Some(text.clone()),
        Value::Array(parts) => {
            let text: String = parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str).or(p.as_str()))
                .collect();
            Some(text)
        }
        _ => None,
    }
}

fn usage(value: &Value) -> Option<Usage> {
    let number = |names: [&str; 2]| names.iter().find_map(|n| value.get(*n).and_then(Value::as_u64));
    let prompt = number(["prompt_tokens", "input_tokens"]);
    let completion = number(["completion_tokens", "output_tokens"]);
    (prompt.is_some() || completion.is_some()).then(|| Usage {
        prompt_tokens: prompt.unwrap_or(0),
        completion_tokens: completion.unwrap_or(0),
    })
}

fn error_message(error: &Value) -> String {
    error
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| crate::error::excerpt(&error.to_string()))
}
