//! [`RemoteEmbedder`]: an OpenAI-compatible `/v1/embeddings` client.
//!
//! Token counting is approximate here: the remote tokenizer is unknown, so
//! [`Embedder::count_tokens`] counts whitespace-separated words and
//! [`Embedder::token_spans`] returns the byte ranges of those words. Word
//! counts undercount BPE tokens by roughly a third, which the conservative
//! [`Embedder::max_tokens`] of 512 leaves room for.

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::{EmbedError, Embedder};

/// Inputs per HTTP request; most providers accept at least this many.
const MAX_INPUTS_PER_REQUEST: usize = 64;
/// Chunk budget reported to chunkers, in whitespace words.
const REMOTE_MAX_TOKENS: usize = 512;
/// How much of an error body is quoted back in [`EmbedError::Remote`].
const MAX_ERROR_CHARS: usize = 300;

/// Connection settings for [`RemoteEmbedder`].
#[derive(Clone)]
pub struct RemoteConfig {
    /// E.g. `http://localhost:8080` or `https://api.openai.com/v1`. The
    /// request goes to `{base_url}/v1/embeddings`, or `{base_url}/embeddings`
    /// when the URL already ends in `/v1`, or to `base_url` itself when it
    /// already ends in `/embeddings`.
    pub base_url: String,
    pub model: String,
    /// Sent as `Authorization: Bearer ...`; never printed.
    pub api_key: Option<String>,
    /// Expected vector length; when set, replies of another length are
    /// rejected. When unset it is learned from the first reply.
    pub dimension: Option<usize>,
    /// Whole-request timeout.
    pub timeout: Duration,
}

impl RemoteConfig {
    /// A config with no key, no fixed dimension and a 60 s timeout.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            dimension: None,
            timeout: Duration::from_secs(60),
        }
    }
}

impl std::fmt::Debug for RemoteConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("dimension", &self.dimension)
            .field("timeout", &self.timeout) // tidy: not an error code
            .finish()
    }
}

/// Embeds through a remote OpenAI-compatible service.
///
/// Uses blocking HTTP: call it from a plain thread (or `spawn_blocking`),
/// not directly inside an async runtime.
pub struct RemoteEmbedder {
    config: RemoteConfig,
    endpoint: String,
    client: reqwest::blocking::Client,
    fingerprint: String,
    learned_dimension: OnceLock<usize>,
}

impl std::fmt::Debug for RemoteEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteEmbedder")
            .field("config", &self.config)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

fn endpoint_for(base_url: &str) -> String {
    let base = base_url.trim().trim_end_matches('/');
    if base.ends_with("/embeddings") {
        base.to_string()
    } else if base.ends_with("/v1") {
        format!("{base}/embeddings")
    } else {
        format!("{base}/v1/embeddings")
    }
}

impl RemoteEmbedder {
    pub fn new(config: RemoteConfig) -> Result<Self, EmbedError> {
        let client = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(10).min(config.timeout))
            .timeout(config.timeout)
            .build()
            .map_err(|e| EmbedError::Request(format!("http client: {e}")))?;
        let endpoint = endpoint_for(&config.base_url);
        let fingerprint = format!(
            "remote:{}:{}",
            config.base_url.trim().trim_end_matches('/'),
            config.model
        );
        Ok(Self {
            config,
            endpoint,
            client,
            fingerprint,
            learned_dimension: OnceLock::new(),
        })
    }

    /// Asks the service for one vector to learn the dimension when the
    /// config does not state it.
    pub fn probe_dimension(&self) -> Result<usize, EmbedError> {
        if let Some(d) = self.config.dimension {
            return Ok(d);
        }
        let v = self.embed(&["dimension probe"])?;
        Ok(v.first().map(Vec::len).unwrap_or(0))
    }

    /// Removes the API key from text that may be shown to users (some
    /// services echo the Authorization header back in errors).
    fn redact(&self, text: &str) -> String {
        match &self.config.api_key {
            Some(k) if !k.is_empty() => text.replace(k.as_str(), "<redacted>"),
            _ => text.to_string(),
        }
    }

    fn request(&self, inputs: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let body = serde_json::json!({ "model": self.config.model, "input": inputs });
        let mut req = self.client.post(&self.endpoint).json(&body);
        if let Some(key) = &self.config.api_key {
            req = req.bearer_auth(key);
        }
        // reqwest errors carry the URL but never headers, so no key leaks.
        let resp = req
            .send()
            .map_err(|e| EmbedError::Request(self.redact(&e.to_string())))?;
        let status = resp.status();
        let text = resp
            .text()
            .map_err(|e| EmbedError::Request(self.redact(&e.to_string())))?;
        if !status.is_success() {
            return Err(EmbedError::Remote {
                status: status.as_u16(),
                message: self.redact(&error_message(&text)),
            });
        }
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            EmbedError::Request(format!(
                "reply is not JSON ({e}): {}",
                self.redact(&snippet(&text))
            ))
        })?;
        let vectors = parse_embeddings(&value, inputs.len())?;
        let want = self
            .config
            .dimension
            .or_else(|| self.learned_dimension.get().copied());
        for v in &vectors {
            match want {
                Some(d) if v.len() != d => {
                    return Err(EmbedError::Request(format!(
                        "reply has a {}-dimensional vector, expected {d}",
                        v.len()
                    )));
                }
                _ => {}
            }
        }
        if let Some(first) = vectors.first() {
            let _ = self.learned_dimension.set(first.len());
        }
        Ok(vectors)
    }
}

fn snippet(text: &str) -> String {
    let mut s: String = text.chars().take(MAX_ERROR_CHARS).collect();
    if text.chars().count() > MAX_ERROR_CHARS {
        s.push('…');
    }
    s
}

/// Prefers the OpenAI-style `{"error": {"message": ...}}` and falls back to
/// the start of the raw body.
fn error_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        let msg = v
            .pointer("/error/message")
            .or_else(|| v.get("error"))
            .or_else(|| v.get("message"))
            .or_else(|| v.get("detail"));
        if let Some(m) = msg {
            return snippet(&match m {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        }
    }
    let body = body.trim();
    if body.is_empty() {
        "(empty body)".to_string()
    } else {
        snippet(body)
    }
}

fn parse_vector(v: &Value) -> Option<Vec<f32>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_f64().map(|f| f as f32))
        .collect()
}

/// Reads `data[].embedding` placed by `data[].index` (position when the
/// index is missing). Also accepts a bare `{"embeddings": [[...]]}` reply,
/// which several self-hosted servers send.
fn parse_embeddings(value: &Value, expected: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
    let bad = |m: &str| EmbedError::Request(format!("malformed embeddings reply: {m}"));
    let mut slots: Vec<Option<Vec<f32>>> = vec![None; expected];
    if let Some(data) = value.get("data").and_then(Value::as_array) {
        for (pos, item) in data.iter().enumerate() {
            let idx = match item.get("index") {
                Some(i) => i
                    .as_u64()
                    .map(|i| i as usize)
                    .ok_or_else(|| bad("index is not a number"))?,
                None => pos,
            };
            let emb = item
                .get("embedding")
                .and_then(parse_vector)
                .ok_or_else(|| bad("missing or non-numeric embedding"))?;
            let slot = slots.get_mut(idx).ok_or_else(|| bad("index out of range"))?;
            if slot.replace(emb).is_some() {
                return Err(bad("duplicate index"));
            }
        }
    } else if let Some(list) = value.get("embeddings").and_then(Value::as_array) {
        if list.len() != expected {
            return Err(bad("wrong number of embeddings"));
        }
        for (slot, v) in slots.iter_mut().zip(list) {
            *slot = Some(parse_vector(v).ok_or_else(|| bad("non-numeric embedding"))?);
        }
    } else {
        return Err(bad("no data array"));
    }
    let out: Vec<Vec<f32>> = slots
        .into_iter()
        .collect::<Option<_>>()
        .ok_or_else(|| bad("fewer embeddings than inputs"))?;
    if let Some(first) = out.first()
        && (first.is_empty() || out.iter().any(|v| v.len() != first.len()))
    {
        return Err(bad("vectors of differing or zero length"));
    }
    Ok(out)
}

impl Embedder for RemoteEmbedder {
    fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The configured dimension, else the one learned from the first reply,
    /// else 0 (call [`RemoteEmbedder::probe_dimension`] to learn it up front).
    fn dimension(&self) -> usize {
        self.config
            .dimension
            .or_else(|| self.learned_dimension.get().copied())
            .unwrap_or(0)
    }

    fn max_tokens(&self) -> usize {
        REMOTE_MAX_TOKENS
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(MAX_INPUTS_PER_REQUEST) {
            out.extend(self.request(chunk)?);
        }
        Ok(out)
    }

    /// Whitespace-separated words (an approximation; see the module docs).
    fn count_tokens(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }

    /// Byte ranges of whitespace-separated words.
    fn token_spans(&self, text: &str) -> Vec<(usize, usize)> {
        let mut spans = Vec::new();
        let mut start = None;
        for (i, c) in text.char_indices() {
            match (c.is_whitespace(), start) {
                (true, Some(s)) => {
                    spans.push((s, i));
                    start = None;
                }
                (false, None) => start = Some(i),
                _ => {}
            }
        }
        if let Some(s) = start {
            spans.push((s, text.len()));
        }
        spans
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(endpoint_for("http://h:1"), "http://h:1/v1/embeddings");
        assert_eq!(endpoint_for("http://h:1/"), "http://h:1/v1/embeddings");
        assert_eq!(endpoint_for("http://h:1/v1"), "http://h:1/v1/embeddings");
        assert_eq!(endpoint_for("http://h/x/embeddings"), "http://h/x/embeddings");
    }

    #[test]
    fn parse_orders_by_index() {
        let v: Value = serde_json::json!({"data": [
            {"index": 1, "embedding": [3.0, 4.0]},
            {"index": 0, "embedding": [1.0, 2.0]}
        ]});
        let out = parse_embeddings(&v, 2).unwrap();
        assert_eq!(out, vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
        assert!(parse_embeddings(&v, 3).is_err());
        let dup: Value = serde_json::json!({"data": [
            {"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [2.0]}
        ]});
        assert!(parse_embeddings(&dup, 2).is_err());
    }

    #[test]
    fn word_spans() {
        let cfg = RemoteConfig::new("http://localhost:1", "m");
        let e = RemoteEmbedder::new(cfg).unwrap();
        let t = "  héllo  wörld\tx ";
        let spans = e.token_spans(t);
        let words: Vec<&str> = spans.iter().map(|&(s, e)| &t[s..e]).collect();
        assert_eq!(words, ["héllo", "wörld", "x"]);
        assert_eq!(e.count_tokens(t), 3);
        assert!(e.token_spans("").is_empty());
    }
}
