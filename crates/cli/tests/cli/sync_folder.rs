//! Folder sources: adds, updates, deletes, unchanged re-syncs, answers, rebuilds, evaluation.

use crate::require_model;
use crate::support::{TestHome, file_name, write};
use serde_json::Value;

fn handbook(env: &TestHome) -> std::path::PathBuf {
    let docs = env.folder("docs");
    write(
        &docs.join("leave.md"),
        "# Parental leave\n\nEmployees get 26 weeks of paid parental leave. Apply through the HR portal.\n",
    );
    write(
        &docs.join("expenses.txt"),
        "Receipts are required for every expense above 25 euros. Claims are paid monthly.\n",
    );
    write(
        &docs.join("nested/security.html"),
        "<html><body><h1>Security</h1><p>Turn on two-factor authentication for every account.</p></body></html>",
    );
    docs
}

#[test]
fn add_update_delete_and_unchanged_resync() {
    let model = require_model!();
    let env = TestHome::new(model);
    let docs = handbook(&env);
    env.ok(&["kb", "create", "handbook"]);
    env.ok(&["source", "add", "handbook", docs.to_str().unwrap()]);

    let first = env.json(&["sync", "handbook"]);
    assert_eq!(first["added"], 3, "{first}");
    assert_eq!(first["failed"].as_array().unwrap().len(), 0, "{first}");
    assert!(first["embeddings_computed"].as_u64().unwrap() >= 3);

    let hits = env.json(&["search", "handbook", "two-factor authentication", "-k", "1"]);
    assert_eq!(file_name(&TestHome::hit_uris(&hits)[0]), "security.html");

    // Nothing changed: nothing is read, parsed or embedded.
    let again = env.json(&["sync", "handbook"]);
    assert_eq!(again["unchanged"], 3, "{again}");
    assert_eq!(again["embeddings_computed"], 0, "{again}");
    assert_eq!(again["chunks_written"], 0, "{again}");

    // Same bytes rewritten (new mtime): the content hash says nothing changed.
    std::fs::write(
        docs.join("expenses.txt"),
        std::fs::read(docs.join("expenses.txt")).unwrap(),
    )
    .unwrap();
    let touched = env.json(&["sync", "handbook"]);
    assert!(
        touched["touched"].as_u64().unwrap() + touched["unchanged"].as_u64().unwrap() == 3,
        "{touched}"
    );
    assert_eq!(touched["embeddings_computed"], 0, "{touched}");

    // Update: the new text is found, the old is gone.
    write(
        &docs.join("leave.md"),
        "# Parental leave\n\nEmployees get 30 weeks of paid parental leave from 2027 onwards. Sabbaticals are separate.\n",
    );
    let updated = env.json(&["sync", "handbook"]);
    assert_eq!(updated["updated"], 1, "{updated}");
    let hits = env.json(&[
        "search",
        "handbook",
        "sabbaticals",
        "-k",
        "5",
        "--search-type",
        "lexical",
    ]);
    assert_eq!(TestHome::hit_uris(&hits).len(), 1);
    assert!(hits["hits"][0]["content"].as_str().unwrap().contains("30 weeks"));
    let stale = env.json(&[
        "search",
        "handbook",
        "HR portal",
        "-k",
        "5",
        "--search-type",
        "lexical",
    ]);
    assert!(
        TestHome::hit_uris(&stale).is_empty(),
        "old text still indexed: {stale}"
    );

    // Delete: the document disappears from every search type.
    std::fs::remove_file(docs.join("nested/security.html")).unwrap();
    let deleted = env.json(&["sync", "handbook"]);
    assert_eq!(deleted["deleted"], 1, "{deleted}");
    for search_type in ["lexical", "semantic", "hybrid"] {
        let hits = env.json(&[
            "search",
            "handbook",
            "two-factor authentication",
            "-k",
            "10",
            "--search-type",
            search_type,
        ]);
        assert!(
            TestHome::hit_uris(&hits)
                .iter()
                .all(|u| !u.ends_with("security.html")),
            "{search_type}: deleted document still returned: {hits}"
        );
    }
    env.assert_indexes_match_store("handbook");

    let versions = env.json(&["kb", "versions", "handbook"]);
    assert_eq!(versions.as_array().unwrap().len(), 5);
    assert!(
        versions
            .as_array()
            .unwrap()
            .iter()
            .all(|run| run["status"] == "completed")
    );
    // Each run lists the documents it changed: newest first, the delete, then the update.
    let changed = |run: &serde_json::Value| -> Vec<(String, String)> {
        run["report"]["changed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let uri = c["uri"].as_str().unwrap();
                (
                    c["change"].as_str().unwrap().to_owned(),
                    uri[uri.rfind('/').unwrap() + 1..].to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(
        changed(&versions[0]),
        [("deleted".to_owned(), "security.html".to_owned())]
    );
    assert_eq!(
        changed(&versions[1]),
        [("updated".to_owned(), "leave.md".to_owned())]
    );
    // A user may not read the change lists: they name documents beyond the user's grants.
    env.ok(&["user", "add", "mallory"]);
    assert_eq!(
        env.fails(&["--as", "mallory", "kb", "versions", "handbook"]).1,
        "forbidden"
    );
}

#[test]
fn ask_cites_the_source_span_and_rebuild_restores_the_indexes() {
    let model = require_model!();
    let env = TestHome::new(model);
    let docs = handbook(&env);
    env.ok(&["kb", "create", "handbook"]);
    env.ok(&["source", "add", "handbook", docs.to_str().unwrap()]);
    env.ok(&["sync", "handbook"]);

    let answer = env.json(&[
        "ask",
        "handbook",
        "How many weeks of parental leave do employees get?",
    ]);
    assert_eq!(answer["mode"], "extractive", "{answer}");
    assert!(answer["text"].as_str().unwrap().contains("26 weeks"), "{answer}");
    let citation = &answer["citations"][0];
    let reference = &citation["references"][0];
    assert!(reference["uri"].as_str().unwrap().ends_with("leave.md"));
    assert!(reference["object_version"].is_string());
    // The span points at the cited sentence in the document's extracted text.
    let text = answer["text"].as_str().unwrap();
    let (start, end) = (
        citation["start"].as_u64().unwrap() as usize,
        citation["end"].as_u64().unwrap() as usize,
    );
    assert_eq!(&text[start..end], reference["excerpt"].as_str().unwrap());
    let span = reference["char_end"].as_u64().unwrap() - reference["char_start"].as_u64().unwrap();
    assert_eq!(
        span as usize,
        reference["excerpt"].as_str().unwrap().chars().count()
    );

    // Indexes are derived: delete them outright and rebuild.
    std::fs::remove_dir_all(env.home.join("indexes")).unwrap();
    let status = env.json(&["index", "rebuild", "handbook"]);
    assert_eq!(status["chunks"].as_u64().unwrap(), 3);
    env.assert_indexes_match_store("handbook");
    let hits = env.json(&["search", "handbook", "receipts for expenses", "-k", "1"]);
    assert_eq!(file_name(&TestHome::hit_uris(&hits)[0]), "expenses.txt");
}

#[test]
fn quickstart_runs_the_main_job() {
    let model = require_model!();
    let env = TestHome::new(model);
    let result = env.json(&["quickstart"]);
    assert_eq!(result["sync"]["added"], 5, "{result}");
    let uris = TestHome::hit_uris(&result["search"]);
    assert!(
        !uris.is_empty() && uris.iter().all(|u| u.contains("/hr/")),
        "filter ignored: {uris:?}"
    );
    assert!(
        result["answer"]["text"].as_str().unwrap().contains("26 weeks"),
        "{result}"
    );
}

#[test]
fn eval_retrieval_scores_a_small_beir_set() {
    let model = require_model!();
    let env = TestHome::new(model);
    let data = env.folder("beir");
    let corpus = [
        (
            "d1",
            "Photosynthesis",
            "Plants convert sunlight, water and carbon dioxide into glucose and oxygen.",
        ),
        (
            "d2",
            "Volcanoes",
            "Magma rises through the crust and erupts as lava, ash and gas.",
        ),
        (
            "d3",
            "Antibiotics",
            "Penicillin kills bacteria by breaking down their cell walls.",
        ),
        (
            "d4",
            "Tides",
            "The gravitational pull of the moon raises the oceans twice a day.",
        ),
    ];
    let lines: Vec<String> = corpus
        .iter()
        .map(|(id, title, text)| serde_json::json!({"_id": id, "title": title, "text": text}).to_string())
        .collect();
    write(&data.join("corpus.jsonl"), lines.join("\n"));
    write(
        &data.join("queries.jsonl"),
        [
            r#"{"_id": "q1", "text": "how do plants make sugar from light"}"#,
            r#"{"_id": "q2", "text": "what causes ocean tides"}"#,
            r#"{"_id": "q3", "text": "an unjudged query is ignored"}"#,
        ]
        .join("\n"),
    );
    write(
        &data.join("qrels.tsv"),
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td4\t1\n",
    );
    let report = env.json(&[
        "eval",
        "retrieval",
        "--corpus",
        data.join("corpus.jsonl").to_str().unwrap(),
        "--queries",
        data.join("queries.jsonl").to_str().unwrap(),
        "--qrels",
        data.join("qrels.tsv").to_str().unwrap(),
    ]);
    assert_eq!(report["documents"], 4);
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for row in rows {
        assert_eq!(row["queries"], 2, "{row}");
        let metrics: &Value = &row["metrics"];
        assert_eq!(metrics["recall_at_100"], 1.0, "{row}");
    }
    let semantic = rows.iter().find(|r| r["search_type"] == "semantic").unwrap();
    assert_eq!(semantic["metrics"]["mrr_at_10"], 1.0, "{semantic}");
}
