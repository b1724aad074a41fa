//! Sidecar metadata: `<file>.metadata.json` next to a document, in the Amazon Bedrock
//! Knowledge Base convention.
//!
//! Both shapes Bedrock accepts are read and normalised to plain JSON values:
//!
//! ```json
//! {"metadataAttributes": {"department": "hr", "year": 2024, "tags": ["a", "b"], "public": true}}
//! {"metadataAttributes": {"department": {"value": {"type": "STRING", "stringValue": "hr"},
//!                                         "includeForEmbedding": true}}}
//! ```
//!
//! Typed values may be `STRING`, `NUMBER`, `BOOLEAN` or `STRING_LIST`. Plain values may be
//! strings, numbers, booleans or lists of strings (`null` attributes are ignored). Files over
//! [`MAX_SIDECAR_BYTES`] (Bedrock's 10 KB limit) are rejected.

use serde_json::{Map, Value};

use super::ParseError;

/// Bedrock's limit on a metadata file.
pub const MAX_SIDECAR_BYTES: usize = 10 * 1024;

const SUFFIX: &str = ".metadata.json";

/// Whether `path` names a sidecar metadata file (`*.metadata.json`, ASCII case-insensitive).
pub fn is_sidecar(path: &str) -> bool {
    path.len() > SUFFIX.len()
        && path
            .get(path.len() - SUFFIX.len()..)
            .is_some_and(|s| s.eq_ignore_ascii_case(SUFFIX))
}

/// Parses a sidecar file into its attributes, as plain JSON values.
pub fn parse_sidecar(bytes: &[u8]) -> Result<Map<String, Value>, ParseError> {
    if bytes.len() > MAX_SIDECAR_BYTES {
        return Err(ParseError::TooLarge {
            size: bytes.len() as u64,
            limit: MAX_SIDECAR_BYTES as u64,
        });
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let root: Value =
        serde_json::from_slice(bytes).map_err(|e| ParseError::InvalidMetadata(format!("not JSON: {e}")))?;
    let Value::Object(mut root) = root else {
        return Err(ParseError::InvalidMetadata(
            "top level must be an object".to_owned(),
        ));
    };
    let attributes = match root.remove("metadataAttributes") {
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(ParseError::InvalidMetadata(
                "metadataAttributes must be an object".to_owned(),
            ));
        }
        None => {
            return Err(ParseError::InvalidMetadata(
                "missing metadataAttributes".to_owned(),
            ));
        }
    };
    let mut out = Map::new();
    for (key, value) in attributes {
        if key.trim().is_empty() {
            return Err(ParseError::InvalidMetadata("empty attribute name".to_owned()));
        }
        if let Some(v) = normalise(&key, value)? {
            out.insert(key, v);
        }
    }
    Ok(out)
}

fn invalid(key: &str, what: &str) -> ParseError {
    ParseError::InvalidMetadata(format!("attribute {key:?}: {what}"))
}

fn normalise(key: &str, value: Value) -> Result<Option<Value>, ParseError> {
    match value {
        Value::Null => Ok(None),
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(Some(value)),
        Value::Array(items) => {
            if items.iter().all(Value::is_string) {
                Ok(Some(Value::Array(items)))
            } else {
                Err(invalid(key, "lists may only contain strings"))
            }
        }
        Value::Object(mut obj) => {
            let Some(Value::Object(typed)) = obj.remove("value") else {
                return Err(invalid(
                    key,
                    "objects must be typed values ({\"value\": {\"type\": ...}})",
                ));
            };
            typed_value(key, &typed).map(Some)
        }
    }
}

fn typed_value(key: &str, typed: &Map<String, Value>) -> Result<Value, ParseError> {
    let ty = typed
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(key, "typed value without a type"))?;
    let field = |name: &str| {
        typed
            .get(name)
            .cloned()
            .ok_or_else(|| invalid(key, &format!("{ty} value without {name}")))
    };
    match ty.to_ascii_uppercase().as_str() {
        "STRING" => match field("stringValue")? {
            v @ Value::String(_) => Ok(v),
            _ => Err(invalid(key, "stringValue must be a string")),
        },
        "NUMBER" => match field("numberValue")? {
            v @ Value::Number(_) => Ok(v),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| invalid(key, "numberValue is not a number")),
            _ => Err(invalid(key, "numberValue must be a number")),
        },
        "BOOLEAN" => match field("booleanValue")? {
            v @ Value::Bool(_) => Ok(v),
            _ => Err(invalid(key, "booleanValue must be a boolean")),
        },
        "STRING_LIST" => match field("stringListValue")? {
            Value::Array(items) if items.iter().all(Value::is_string) => Ok(Value::Array(items)),
            _ => Err(invalid(key, "stringListValue must be a list of strings")),
        },
        other => Err(invalid(key, &format!("unknown type {other}"))),
    }
}
