//! JSON and JSON Lines: scalars flattened to `path: value` lines (`user.name: Ada`,
//! `tags[1]: b`), so each line carries its own context for retrieval.
//!
//! Nesting is checked by a linear pre-scan before `serde_json` sees the input, so a document of
//! a million `[` is rejected with [`ParseError::TooDeep`] without recursion. In JSON Lines each
//! non-empty line is one record (records are separated by a blank line in the output); a line
//! that is not valid JSON, or is too deep, is skipped and counted in a warning.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::builder::TextBuilder;
use super::{ParseError, ParseLimits};

pub(crate) fn parse_json(text: &str, limits: &ParseLimits, b: &mut TextBuilder) -> Result<(), ParseError> {
    check_depth(text, limits.max_json_depth)?;
    let value = serde_json::from_str::<Json>(text).map_err(|e| {
        if e.to_string().contains("recursion limit") {
            ParseError::TooDeep {
                limit: limits.max_json_depth,
            }
        } else {
            ParseError::Corrupt(format!("JSON: {e}"))
        }
    })?;
    flatten(&value, &mut String::new(), b);
    Ok(())
}

pub(crate) fn parse_jsonl(
    text: &str,
    limits: &ParseLimits,
    b: &mut TextBuilder,
    warnings: &mut Vec<String>,
) -> Result<(), ParseError> {
    let mut good = 0usize;
    let mut bad = 0usize;
    let mut first_bad = None;
    for (n, line) in text.lines().enumerate() {
        if b.is_full() {
            break;
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let parsed = check_depth(line, limits.max_json_depth)
            .ok()
            .and_then(|()| serde_json::from_str::<Json>(line).ok());
        match parsed {
            Some(value) => {
                good += 1;
                b.paragraph_break();
                flatten(&value, &mut String::new(), b);
            }
            None => {
                bad += 1;
                first_bad.get_or_insert(n + 1);
            }
        }
    }
    if let Some(first) = first_bad {
        warnings.push(format!(
            "skipped {bad} invalid JSON line(s) (first at line {first})"
        ));
    }
    if good == 0 && bad > 0 {
        return Err(ParseError::Corrupt("JSON Lines: no valid line".to_owned()));
    }
    Ok(())
}

/// Fails if arrays/objects nest deeper than `limit` (strings are skipped properly, so brackets
/// inside them do not count).
pub(crate) fn check_depth(text: &str, limit: usize) -> Result<(), ParseError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &c in text.as_bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
            continue;
        }
        match c {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Err(ParseError::TooDeep { limit });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Appends one `path: value` line per scalar. Depth is bounded by the pre-scan (and by
/// `serde_json`'s own recursion limit of 128), so recursion here is safe.
fn flatten(value: &Json, path: &mut String, b: &mut TextBuilder) {
    match value {
        Json::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                if b.is_full() {
                    return;
                }
                let len = path.len();
                push_key(path, k);
                flatten(v, path, b);
                path.truncate(len);
            }
        }
        Json::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                if b.is_full() {
                    return;
                }
                let len = path.len();
                path.push('[');
                path.push_str(&i.to_string());
                path.push(']');
                flatten(v, path, b);
                path.truncate(len);
            }
        }
        scalar => {
            if !path.is_empty() {
                b.push_str(path);
                b.push_str(": ");
            }
            match scalar {
                Json::Null => b.push_str("null"),
                Json::Bool(v) => b.push_str(if *v { "true" } else { "false" }),
                Json::Number(n) => b.push_str(&n.to_string()),
                Json::String(s) => b.push_str(s),
                Json::Array(_) => b.push_str("[]"),
                Json::Object(_) => b.push_str("{}"),
            }
            b.push('\n');
        }
    }
}

/// `a.b` for plain keys, `a["odd key"]` for keys with spaces, dots, brackets or quotes.
fn push_key(path: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '$' || c == '@');
    if plain {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(&serde_json::Value::String(key.to_owned()).to_string());
        path.push(']');
    }
}

/// A JSON value that keeps object keys in document order (`serde_json::Value` sorts them
/// unless the workspace-wide `preserve_order` feature is on), so flattened lines follow the
/// file.
#[derive(Debug)]
enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Json>()? {
            entries.push((k, v));
        }
        Ok(Json::Object(entries))
    }
}
