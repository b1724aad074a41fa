//! Sidecar metadata and every filter operator, applied inside retrieval.

use crate::require_model;
use crate::support::{TestHome, file_name, write};
use std::collections::BTreeSet;

/// Twenty policy documents; metadata varies by index so every operator has a distinct answer.
fn corpus(env: &TestHome) -> std::path::PathBuf {
    let docs = env.folder("policies");
    for i in 0..20 {
        let department = ["hr", "finance", "it", "legal"][i % 4];
        write(
            &docs.join(format!("p{i:02}.txt")),
            format!(
                "Policy number {i} of the {department} department describes the company policy on leave and travel."
            ),
        );
        let mut tags = vec!["policy".to_string()];
        if i % 3 == 0 {
            tags.push("travel".into());
        }
        let metadata = serde_json::json!({
            "metadataAttributes": {
                "department": department,
                "year": 2015 + i,
                "title": format!("{department}-policy-{i:02}"),
                "tags": tags,
            }
        });
        write(
            &docs.join(format!("p{i:02}.txt.metadata.json")),
            metadata.to_string(),
        );
    }
    // A document without a sidecar has no metadata at all.
    write(
        &docs.join("bare.txt"),
        "A policy document with no metadata about leave and travel.",
    );
    docs
}

fn names(env: &TestHome, filter_args: &[&str], k: &str) -> BTreeSet<String> {
    let mut args = vec![
        "search",
        "policies",
        "company policy on leave and travel",
        "-k",
        k,
    ];
    args.extend_from_slice(filter_args);
    let response = env.json(&args);
    TestHome::hit_uris(&response)
        .iter()
        .map(|u| file_name(u).trim_end_matches(".txt").to_string())
        .collect()
}

fn expected(indices: impl Iterator<Item = usize>) -> BTreeSet<String> {
    indices.map(|i| format!("p{i:02}")).collect()
}

#[test]
fn every_operator_selects_exactly_the_matching_documents() {
    let model = require_model!();
    let env = TestHome::new(model);
    let docs = corpus(&env);
    env.ok(&["kb", "create", "policies"]);
    env.ok(&["source", "add", "policies", docs.to_str().unwrap()]);
    let report = env.json(&["sync", "policies"]);
    assert_eq!(report["added"], 21, "{report}");

    let all = 0..20usize;
    let cases: Vec<(&str, BTreeSet<String>)> = vec![
        (
            r#"{"equals":{"key":"department","value":"hr"}}"#,
            expected(all.clone().filter(|i| i % 4 == 0)),
        ),
        (
            r#"{"notEquals":{"key":"department","value":"hr"}}"#,
            expected(all.clone().filter(|i| i % 4 != 0))
                .into_iter()
                .chain(["bare".to_string()])
                .collect(),
        ),
        (
            r#"{"greaterThan":{"key":"year","value":2030}}"#,
            expected(all.clone().filter(|i| 2015 + i > 2030)),
        ),
        (
            r#"{"greaterThanOrEquals":{"key":"year","value":2030}}"#,
            expected(all.clone().filter(|i| 2015 + i >= 2030)),
        ),
        (
            r#"{"lessThan":{"key":"year","value":2018}}"#,
            expected(all.clone().filter(|i| 2015 + i < 2018)),
        ),
        (
            r#"{"lessThanOrEquals":{"key":"year","value":2018}}"#,
            expected(all.clone().filter(|i| 2015 + i <= 2018)),
        ),
        (
            r#"{"in":{"key":"department","value":["it","legal"]}}"#,
            expected(all.clone().filter(|i| i % 4 >= 2)),
        ),
        (
            r#"{"notIn":{"key":"department","value":["it","legal"]}}"#,
            expected(all.clone().filter(|i| i % 4 < 2))
                .into_iter()
                .chain(["bare".to_string()])
                .collect(),
        ),
        (
            r#"{"startsWith":{"key":"title","value":"finance-"}}"#,
            expected(all.clone().filter(|i| i % 4 == 1)),
        ),
        (
            r#"{"stringContains":{"key":"title","value":"policy-1"}}"#,
            expected(10..20),
        ),
        (
            r#"{"listContains":{"key":"tags","value":"travel"}}"#,
            expected(all.clone().filter(|i| i % 3 == 0)),
        ),
        (
            r#"{"andAll":[{"equals":{"key":"department","value":"hr"}},{"listContains":{"key":"tags","value":"travel"}}]}"#,
            expected(all.clone().filter(|i| i % 4 == 0 && i % 3 == 0)),
        ),
        (
            r#"{"orAll":[{"equals":{"key":"year","value":2015}},{"equals":{"key":"year","value":2034}}]}"#,
            expected([0, 19].into_iter()),
        ),
    ];
    for (filter, want) in cases {
        for search_type in ["lexical", "semantic", "hybrid"] {
            let got = names(
                &env,
                &["--filter-json", filter, "--search-type", search_type],
                "50",
            );
            assert_eq!(got, want, "{search_type} {filter}");
        }
    }
    // The shorthand and several --filter flags (AND).
    let got = names(
        &env,
        &["--filter", "department=it", "--filter", "year>=2025"],
        "50",
    );
    assert_eq!(
        got,
        expected(all.clone().filter(|i| i % 4 == 2 && 2015 + i >= 2025))
    );
}

#[test]
fn a_selective_filter_still_fills_top_k() {
    let model = require_model!();
    let env = TestHome::new(model);
    let docs = corpus(&env);
    env.ok(&["kb", "create", "policies"]);
    env.ok(&["source", "add", "policies", docs.to_str().unwrap()]);
    env.ok(&["sync", "policies"]);
    // 5 legal documents; unfiltered, they would not all be in the top 5.
    for search_type in ["lexical", "semantic", "hybrid"] {
        let got = names(
            &env,
            &["--filter", "department=legal", "--search-type", search_type],
            "5",
        );
        assert_eq!(got, expected((0..20).filter(|i| i % 4 == 3)), "{search_type}");
    }
}
