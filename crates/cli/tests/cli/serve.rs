//! `groundwork serve` as a real process: it listens, answers with a token, and stops cleanly on
//! SIGTERM with its audit chain intact; a SIGKILL loses no record of a search it answered.

use crate::require_model;
use crate::support::{TestHome, stop_with_sigterm};
use serde_json::{Value, json};
use std::time::Duration;

#[test]
fn serve_answers_over_http_and_stops_on_sigterm() {
    let model = require_model!();
    let env = TestHome::new(model);
    let docs = env.folder("docs");
    std::fs::write(
        docs.join("glaciers.md"),
        "# Glaciers\n\nGlaciers are measured by repeat GPS surveys of stakes drilled into the ice.\n",
    )
    .unwrap();
    env.ok(&["kb", "create", "notes"]);
    env.ok(&["source", "add", "notes", docs.to_str().unwrap()]);
    env.ok(&["sync", "notes"]);
    let token = env.json(&["token", "create", "--user", "admin"])["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let (mut child, base) = env.serve(&[]);

    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    assert_eq!(
        client.get(format!("{base}/healthz")).send().unwrap().status(),
        200
    );
    let response: Value = client
        .post(format!("{base}/v1/knowledge-bases/notes/retrieve"))
        .bearer_auth(&token)
        .json(&json!({ "retrievalQuery": { "text": "how are glaciers measured" } }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let text = response["retrievalResults"][0]["content"]["text"]
        .as_str()
        .unwrap();
    assert!(text.contains("GPS surveys"), "{response}");

    let exit = stop_with_sigterm(&mut child);
    assert!(exit.success(), "serve exited with {exit:?}");
    assert!(
        client.get(format!("{base}/healthz")).send().is_err(),
        "still listening"
    );

    let verified = env.json(&["audit", "verify"]);
    assert_eq!(verified["intact"], true, "{verified}");
    let searches = env.json(&["audit", "query", "--action", "search"]);
    assert_eq!(searches.as_array().unwrap().len(), 1, "{searches}");
}

/// Searches are recorded through the read-audit journal; a kill before the journal reaches the
/// chain must lose none of the searches the server answered.
#[test]
fn searches_answered_before_a_kill_are_all_in_the_audit_chain() {
    let model = require_model!();
    let env = TestHome::new(model);
    let docs = env.folder("docs");
    std::fs::write(
        docs.join("tides.md"),
        "# Tides\n\nTides are driven by the gravity of the moon and the sun.\n",
    )
    .unwrap();
    env.ok(&["kb", "create", "notes"]);
    env.ok(&["source", "add", "notes", docs.to_str().unwrap()]);
    env.ok(&["sync", "notes"]);
    let token = env.json(&["token", "create", "--user", "admin"])["token"]
        .as_str()
        .unwrap()
        .to_owned();

    // A flush interval far beyond the test: the kill finds every record still journalled.
    let (mut child, base) = env.serve(&[("GROUNDWORK_AUDIT_FLUSH_MS", "600000")]);
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let questions = [
        "what drives tides",
        "moon gravity",
        "sun and tides",
        "ocean",
        "tides",
    ];
    for question in questions {
        let response = client
            .post(format!("{base}/v1/knowledge-bases/notes/retrieve"))
            .bearer_auth(&token)
            .json(&json!({ "retrievalQuery": { "text": question } }))
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // The next process to open the store chains what the killed one journalled.
    let verified = env.json(&["audit", "verify"]);
    assert_eq!(verified["intact"], true, "{verified}");
    let searches = env.json(&["audit", "query", "--action", "search"]);
    let recorded: Vec<String> = searches
        .as_array()
        .unwrap()
        .iter()
        .map(|row| serde_json::from_str::<Value>(row["request"].as_str().unwrap()).unwrap())
        .map(|request| request["query"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(recorded, questions, "{searches}");
    let journals: Vec<_> = std::fs::read_dir(env.home.join("groundwork.db.audit-journal"))
        .unwrap()
        .collect();
    assert!(
        journals.is_empty(),
        "recovered journals are removed: {journals:?}"
    );
}
