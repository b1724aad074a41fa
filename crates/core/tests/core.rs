//! Generated inputs for the metadata-filter parsers (the JSON form requests carry and the CLI
//! shorthand): every input is parsed or refused with a typed error, and whatever parses can be
//! evaluated against any metadata without a panic.

use groundwork_core::Filter;
use groundwork_core::mutate::{FuzzTally, Mutator, cases, seed};
use serde_json::{Map, Value, json};

#[test]
fn generated_filters_parse_or_are_refused() {
    let samples: Vec<Vec<u8>> = [
        r#"{"equals": {"key": "dept", "value": "hr"}}"#,
        r#"{"andAll": [{"greaterThanOrEquals": {"key": "year", "value": 2020}}, {"in": {"key": "tag", "value": ["a", "b"]}}]}"#,
        r#"{"orAll": [{"startsWith": {"key": "x", "value": "pre"}}, {"listContains": {"key": "l", "value": 3}}, {"notIn": {"key": "y", "value": [1.5, null]}}]}"#,
        r#"{"stringContains": {"key": "title", "value": "leave"}}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let metadata: Vec<Map<String, Value>> = [
        json!({"dept": "hr", "year": 2024, "tag": ["a", "c"], "title": "Leave policy", "l": [1, 2, 3]}),
        json!({"dept": 7, "year": "2024", "x": null, "y": 1.5}),
        json!({}),
    ]
    .into_iter()
    .map(|v| v.as_object().unwrap().clone())
    .collect();
    let mut mutator = Mutator::new(
        seed(3),
        &[
            b"{",
            b"}",
            b"[",
            b"]",
            b"\"",
            b":",
            b",",
            b"{\"andAll\": [",
            b"{\"orAll\": [",
            b"1e999",
            b"-0",
            b"\\u0000",
        ],
    );
    let mut tally = FuzzTally::new("filter (JSON)");
    for _ in 0..cases(5000) {
        let input = mutator.mutate(&samples);
        let text = String::from_utf8_lossy(&input);
        let parsed = tally.time(|| Filter::from_json(&text));
        match parsed {
            Ok(filter) => {
                tally.accepted += 1;
                for m in &metadata {
                    let _ = filter.matches(m);
                }
                // What parses re-serialises to something that parses to the same filter.
                let again = Filter::from_json(&serde_json::to_string(&filter).unwrap()).unwrap();
                assert_eq!(again, filter, "{text}");
            }
            Err(_) => tally.refused += 1,
        }
    }
    eprintln!("{}", tally.report());
    assert!(tally.accepted > 0 && tally.refused > 0, "{}", tally.report());

    let shorthand: Vec<Vec<u8>> = ["dept=hr", "year>=2020", "tags!=[1,2]", "a<b", "x>\"y\""]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    let mut mutator = Mutator::new(seed(5), &[b"=", b"!=", b">=", b"<", b"[", b"\""]);
    let mut tally = FuzzTally::new("filter (shorthand)");
    for _ in 0..cases(5000) {
        let input = mutator.mutate(&shorthand);
        let text = String::from_utf8_lossy(&input);
        match tally.time(|| Filter::from_shorthand(&text)) {
            Ok(filter) => {
                tally.accepted += 1;
                for m in &metadata {
                    let _ = filter.matches(m);
                }
            }
            Err(_) => tally.refused += 1,
        }
    }
    eprintln!("{}", tally.report());
    assert!(tally.accepted > 0 && tally.refused > 0, "{}", tally.report());
}
