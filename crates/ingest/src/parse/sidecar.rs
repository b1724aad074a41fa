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
//!
//! A document ACL may sit beside the attributes (or among them) as
//! `"access": {"read": ["group:finance", "user:alice"]}`; it is kept under the `access` key of
//! the document's metadata, where the access decision reads it. A malformed ACL fails the
//! document rather than indexing it without its restriction.
//!
//! A top-level `"encoding": "shift_jis"` (a WHATWG label) says how the document's text is
//! encoded, overriding detection and any declaration inside the document ([`sidecar_encoding`]).

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
    let mut attributes = attributes;
    let acl = match (root.remove(ACL_KEY), attributes.remove(ACL_KEY)) {
        (Some(_), Some(_)) => {
            return Err(ParseError::InvalidMetadata(
                "\"access\" is given twice (top level and in metadataAttributes)".to_owned(),
            ));
        }
        (Some(acl), None) | (None, Some(acl)) => Some(checked_acl(acl)?),
        (None, None) => None,
    };
    let mut out = Map::new();
    if let Some(acl) = acl {
        out.insert(ACL_KEY.to_owned(), acl);
    }
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

/// The encoding a sidecar declares for its document's text, if any (a string at the top level
/// under `encoding`). Read after [`parse_sidecar`] accepted the file.
pub fn sidecar_encoding(bytes: &[u8]) -> Option<String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let root: Value = serde_json::from_slice(bytes).ok()?;
    root.get("encoding")?.as_str().map(str::to_owned)
}

/// The metadata key of a document's ACL.
pub const ACL_KEY: &str = "access";

/// An ACL must be `{"read": [strings]}`; each entry `user:NAME` or `group:NAME`.
fn checked_acl(acl: Value) -> Result<Value, ParseError> {
    let bad = |what: &str| ParseError::InvalidMetadata(format!("access: {what}"));
    let Value::Object(mut acl) = acl else {
        return Err(bad("must be an object such as {\"read\": [\"group:finance\"]}"));
    };
    let Some(Value::Array(readers)) = acl.remove("read") else {
        return Err(bad("needs a \"read\" list"));
    };
    if let Some(other) = acl.keys().next() {
        return Err(bad(&format!("unknown key {other:?}")));
    }
    for reader in &readers {
        let valid = reader
            .as_str()
            .and_then(|r| r.split_once(':'))
            .is_some_and(|(kind, name)| matches!(kind, "user" | "group") && !name.is_empty());
        if !valid {
            return Err(bad(&format!("{reader} is not \"user:NAME\" or \"group:NAME\"")));
        }
    }
    Ok(serde_json::json!({ "read": readers }))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acls_are_kept_under_access_from_either_place() {
        let top = parse_sidecar(
            br#"{"metadataAttributes": {"year": 2024}, "access": {"read": ["group:finance"]}}"#,
        )
        .unwrap();
        assert_eq!(top["access"], serde_json::json!({"read": ["group:finance"]}));
        assert_eq!(top["year"], 2024);
        let inner =
            parse_sidecar(br#"{"metadataAttributes": {"access": {"read": ["user:alice", "group:hr"]}}}"#)
                .unwrap();
        assert_eq!(
            inner["access"],
            serde_json::json!({"read": ["user:alice", "group:hr"]})
        );
    }

    #[test]
    fn malformed_acls_fail_the_document() {
        for bad in [
            r#"{"metadataAttributes": {}, "access": "group:finance"}"#,
            r#"{"metadataAttributes": {}, "access": {"read": "group:finance"}}"#,
            r#"{"metadataAttributes": {}, "access": {"read": ["finance"]}}"#,
            r#"{"metadataAttributes": {}, "access": {"read": ["role:x"]}}"#,
            r#"{"metadataAttributes": {}, "access": {"read": [], "write": []}}"#,
            r#"{"metadataAttributes": {"access": {"read": []}}, "access": {"read": []}}"#,
        ] {
            assert!(parse_sidecar(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
