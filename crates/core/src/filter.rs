//! Metadata filters with the operators of Amazon Bedrock Knowledge Bases' `RetrievalFilter`.
//!
//! A filter is evaluated against a document's metadata (the `metadataAttributes` of its sidecar
//! file) to decide whether the document may appear in results. Retrieval turns a filter into an
//! allow-list of documents *before* ranking, so top-k stays full when enough documents match.
//!
//! Semantics, chosen to be predictable rather than clever:
//! - A missing key fails every positive test (`equals`, `in`, comparisons, `startsWith`,
//!   `stringContains`, `listContains`) and passes the negative ones (`notEquals`, `notIn`).
//! - Numbers compare numerically (1 equals 1.0); strings compare by Unicode code points, so ISO
//!   dates order correctly; comparing a number with a string is false.
//! - `stringContains` on a list attribute is true when any string member contains the value.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::cmp::Ordering;

/// Deepest nesting of `andAll`/`orAll` accepted, so a hostile filter cannot exhaust the stack.
pub const MAX_FILTER_DEPTH: usize = 16;
/// Most leaf conditions in one filter.
pub const MAX_FILTER_CONDITIONS: usize = 256;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FilterError {
    #[error("invalid filter: {0}")]
    Invalid(String),
}

/// One key/value condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub key: String,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Filter {
    Equals(Condition),
    NotEquals(Condition),
    GreaterThan(Condition),
    GreaterThanOrEquals(Condition),
    LessThan(Condition),
    LessThanOrEquals(Condition),
    In(Condition),
    NotIn(Condition),
    StartsWith(Condition),
    StringContains(Condition),
    ListContains(Condition),
    AndAll(Vec<Filter>),
    OrAll(Vec<Filter>),
}

impl Filter {
    /// Parses the Bedrock JSON form, e.g. `{"equals": {"key": "department", "value": "hr"}}`,
    /// and checks its shape and size limits.
    pub fn from_json(text: &str) -> Result<Filter, FilterError> {
        let filter: Filter = serde_json::from_str(text).map_err(|e| FilterError::Invalid(e.to_string()))?;
        filter.validate()?;
        Ok(filter)
    }

    /// Parses the CLI shorthand `key=value`, `key!=value`, `key>=value`, `key>value`,
    /// `key<=value`, `key<value`. The value is read as JSON when it parses (numbers, booleans,
    /// lists), otherwise as a string, so `year>=2020` compares numbers and `dept=hr` strings.
    pub fn from_shorthand(text: &str) -> Result<Filter, FilterError> {
        const OPERATORS: [&str; 6] = ["!=", ">=", "<=", "=", ">", "<"];
        let (pos, op) = OPERATORS
            .iter()
            .filter_map(|op| text.find(op).map(|pos| (pos, *op)))
            // Leftmost operator wins; at the same position the longer one (">=" over ">").
            .min_by_key(|(pos, op)| (*pos, std::cmp::Reverse(op.len())))
            .ok_or_else(|| {
                FilterError::Invalid(format!(
                    "`{text}` has no operator; use key=value, key!=value, key>=value, key<value"
                ))
            })?;
        let key = text[..pos].trim();
        if key.is_empty() {
            return Err(FilterError::Invalid(format!("`{text}` has an empty key")));
        }
        let raw = text[pos + op.len()..].trim();
        let value = serde_json::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.into()));
        let condition = Condition {
            key: key.to_string(),
            value,
        };
        Ok(match op {
            "=" => Filter::Equals(condition),
            "!=" => Filter::NotEquals(condition),
            ">=" => Filter::GreaterThanOrEquals(condition),
            "<=" => Filter::LessThanOrEquals(condition),
            ">" => Filter::GreaterThan(condition),
            _ => Filter::LessThan(condition),
        })
    }

    /// Checks nesting depth, condition count, and operator/value shapes.
    pub fn validate(&self) -> Result<(), FilterError> {
        let mut conditions = 0;
        self.validate_at(0, &mut conditions)
    }

    fn validate_at(&self, depth: usize, conditions: &mut usize) -> Result<(), FilterError> {
        if depth > MAX_FILTER_DEPTH {
            return Err(FilterError::Invalid(format!(
                "filter nests deeper than {MAX_FILTER_DEPTH} levels"
            )));
        }
        match self {
            Filter::AndAll(children) | Filter::OrAll(children) => {
                if children.is_empty() {
                    return Err(FilterError::Invalid(
                        "andAll/orAll needs at least one filter".into(),
                    ));
                }
                children
                    .iter()
                    .try_for_each(|child| child.validate_at(depth + 1, conditions))
            }
            leaf => {
                *conditions += 1;
                if *conditions > MAX_FILTER_CONDITIONS {
                    return Err(FilterError::Invalid(format!(
                        "filter has more than {MAX_FILTER_CONDITIONS} conditions"
                    )));
                }
                let condition = leaf.condition().expect("leaf filters carry a condition");
                match leaf {
                    Filter::In(c) | Filter::NotIn(c) if !c.value.is_array() => Err(FilterError::Invalid(
                        format!("`in`/`notIn` on `{}` needs a list value", c.key),
                    )),
                    Filter::StartsWith(c) | Filter::StringContains(c) if !c.value.is_string() => {
                        Err(FilterError::Invalid(format!(
                            "`startsWith`/`stringContains` on `{}` needs a string value",
                            c.key
                        )))
                    }
                    _ if condition.key.is_empty() => Err(FilterError::Invalid("filter key is empty".into())),
                    _ => Ok(()),
                }
            }
        }
    }

    fn condition(&self) -> Option<&Condition> {
        match self {
            Filter::Equals(c)
            | Filter::NotEquals(c)
            | Filter::GreaterThan(c)
            | Filter::GreaterThanOrEquals(c)
            | Filter::LessThan(c)
            | Filter::LessThanOrEquals(c)
            | Filter::In(c)
            | Filter::NotIn(c)
            | Filter::StartsWith(c)
            | Filter::StringContains(c)
            | Filter::ListContains(c) => Some(c),
            Filter::AndAll(_) | Filter::OrAll(_) => None,
        }
    }

    /// Combines several filters with `andAll`; one filter stays as it is.
    pub fn all(mut filters: Vec<Filter>) -> Option<Filter> {
        match filters.len() {
            0 => None,
            1 => filters.pop(),
            _ => Some(Filter::AndAll(filters)),
        }
    }

    /// Does a document with this metadata pass the filter?
    pub fn matches(&self, metadata: &Map<String, Value>) -> bool {
        match self {
            Filter::AndAll(children) => children.iter().all(|c| c.matches(metadata)),
            Filter::OrAll(children) => children.iter().any(|c| c.matches(metadata)),
            leaf => {
                let condition = leaf.condition().expect("leaf filters carry a condition");
                let actual = metadata.get(&condition.key);
                let expected = &condition.value;
                match (leaf, actual) {
                    (Filter::NotEquals(_), None) | (Filter::NotIn(_), None) => true,
                    (_, None) => false,
                    (Filter::Equals(_), Some(a)) => values_equal(a, expected),
                    (Filter::NotEquals(_), Some(a)) => !values_equal(a, expected),
                    (Filter::GreaterThan(_), Some(a)) => compare(a, expected) == Some(Ordering::Greater),
                    (Filter::GreaterThanOrEquals(_), Some(a)) => {
                        matches!(compare(a, expected), Some(Ordering::Greater | Ordering::Equal))
                    }
                    (Filter::LessThan(_), Some(a)) => compare(a, expected) == Some(Ordering::Less),
                    (Filter::LessThanOrEquals(_), Some(a)) => {
                        matches!(compare(a, expected), Some(Ordering::Less | Ordering::Equal))
                    }
                    (Filter::In(_), Some(a)) => expected
                        .as_array()
                        .is_some_and(|options| options.iter().any(|o| values_equal(a, o))),
                    (Filter::NotIn(_), Some(a)) => !expected
                        .as_array()
                        .is_some_and(|options| options.iter().any(|o| values_equal(a, o))),
                    (Filter::StartsWith(_), Some(Value::String(a))) => {
                        expected.as_str().is_some_and(|prefix| a.starts_with(prefix))
                    }
                    (Filter::StringContains(_), Some(Value::String(a))) => {
                        expected.as_str().is_some_and(|needle| a.contains(needle))
                    }
                    (Filter::StringContains(_), Some(Value::Array(items))) => {
                        expected.as_str().is_some_and(|needle| {
                            items
                                .iter()
                                .any(|i| i.as_str().is_some_and(|s| s.contains(needle)))
                        })
                    }
                    (Filter::ListContains(_), Some(Value::Array(items))) => {
                        items.iter().any(|i| values_equal(i, expected))
                    }
                    _ => false,
                }
            }
        }
    }
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn every_operator_against_one_document() {
        let doc = meta(
            json!({"department": "hr", "year": 2024, "tags": ["leave", "policy"], "title": "Parental leave"}),
        );
        let cases = [
            (r#"{"equals":{"key":"department","value":"hr"}}"#, true),
            (r#"{"equals":{"key":"year","value":2024.0}}"#, true),
            (r#"{"notEquals":{"key":"department","value":"hr"}}"#, false),
            (r#"{"notEquals":{"key":"missing","value":"x"}}"#, true),
            (r#"{"greaterThan":{"key":"year","value":2023}}"#, true),
            (r#"{"greaterThanOrEquals":{"key":"year","value":2024}}"#, true),
            (r#"{"lessThan":{"key":"year","value":2024}}"#, false),
            (r#"{"lessThanOrEquals":{"key":"year","value":2024}}"#, true),
            (r#"{"greaterThan":{"key":"department","value":3}}"#, false),
            (r#"{"in":{"key":"department","value":["hr","finance"]}}"#, true),
            (r#"{"notIn":{"key":"department","value":["hr"]}}"#, false),
            (r#"{"startsWith":{"key":"title","value":"Parental"}}"#, true),
            (r#"{"stringContains":{"key":"title","value":"leave"}}"#, true),
            (r#"{"stringContains":{"key":"tags","value":"pol"}}"#, true),
            (r#"{"listContains":{"key":"tags","value":"leave"}}"#, true),
            (r#"{"listContains":{"key":"tags","value":"holiday"}}"#, false),
            (
                r#"{"andAll":[{"equals":{"key":"department","value":"hr"}},{"lessThan":{"key":"year","value":2000}}]}"#,
                false,
            ),
            (
                r#"{"orAll":[{"equals":{"key":"department","value":"it"}},{"listContains":{"key":"tags","value":"policy"}}]}"#,
                true,
            ),
        ];
        for (text, expected) in cases {
            let filter = Filter::from_json(text).unwrap();
            assert_eq!(filter.matches(&doc), expected, "{text}");
        }
    }

    #[test]
    fn shorthand_reads_numbers_and_strings() {
        assert_eq!(
            Filter::from_shorthand("year>=2020").unwrap(),
            Filter::GreaterThanOrEquals(Condition {
                key: "year".into(),
                value: json!(2020)
            })
        );
        assert_eq!(
            Filter::from_shorthand("department=hr").unwrap(),
            Filter::Equals(Condition {
                key: "department".into(),
                value: json!("hr")
            })
        );
        assert_eq!(
            Filter::from_shorthand("a!=b=c").unwrap(),
            Filter::NotEquals(Condition {
                key: "a".into(),
                value: json!("b=c")
            })
        );
        assert!(Filter::from_shorthand("no operator").is_err());
        assert!(Filter::from_shorthand("=x").is_err());
    }

    #[test]
    fn rejects_hostile_shapes() {
        let deep = format!(
            "{}{}{}",
            r#"{"andAll":["#.repeat(40),
            r#"{"equals":{"key":"a","value":1}}"#,
            "]}".repeat(40)
        );
        assert!(Filter::from_json(&deep).is_err());
        assert!(Filter::from_json(r#"{"in":{"key":"a","value":"not a list"}}"#).is_err());
        assert!(Filter::from_json(r#"{"andAll":[]}"#).is_err());
        assert!(Filter::from_json(r#"{"bogus":{"key":"a","value":1}}"#).is_err());
    }
}
