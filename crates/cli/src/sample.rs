//! `groundwork quickstart`: the whole main job on a small handbook that this binary writes.

use crate::kb::{print_sync_report, sync_once};
use crate::output::print_json;
use crate::search::print_answer;
use crate::setup::fetch_model;
use groundwork_core::Filter;
use groundwork_service::{Groundwork, SearchRequest, extractive_answer};
use std::path::Path;

const KB: &str = "handbook";

/// (file name, content, sidecar metadata)
const HANDBOOK: &[(&str, &str, &str)] = &[
    (
        "hr/parental-leave.md",
        "# Parental leave\n\nAll employees are entitled to 26 weeks of paid parental leave after the birth or adoption of a child. \
         The leave can be taken in up to three blocks within the first two years.\n\n\
         ## How to apply\n\nTell your manager at least eight weeks before the leave starts and file the request in the HR portal. \
         Parents who work part time receive leave in proportion to their contracted hours.\n",
        r#"{"metadataAttributes": {"department": "hr", "year": 2026, "tags": ["leave", "family"]}}"#,
    ),
    (
        "hr/holidays.md",
        "# Annual holidays\n\nEvery full-time employee gets 28 days of paid holiday per year, plus public holidays. \
         Up to five unused days can be carried over into the first quarter of the next year.\n",
        r#"{"metadataAttributes": {"department": "hr", "year": 2026, "tags": ["leave"]}}"#,
    ),
    (
        "finance/expenses.md",
        "# Expense policy\n\nTravel must be booked through the travel desk. Receipts are required for every expense above 25 euros. \
         Claims are reimbursed with the next monthly salary payment.\n",
        r#"{"metadataAttributes": {"department": "finance", "year": 2025, "tags": ["travel", "money"]}}"#,
    ),
    (
        "it/security.html",
        "<html><head><title>Security basics</title></head><body><h1>Security basics</h1>\
         <p>Use the company password manager and turn on two-factor authentication for every account.</p>\
         <p>Report lost laptops to the IT service desk within one hour.</p></body></html>",
        r#"{"metadataAttributes": {"department": "it", "year": 2026}}"#,
    ),
    (
        "it/onboarding.txt",
        "New starters receive their laptop on the first day. The IT service desk sets up email, chat and the VPN. \
         Remote employees get their equipment by courier before their start date.\n",
        r#"{"metadataAttributes": {"department": "it", "year": 2024}}"#,
    ),
];

pub fn quickstart(home: &Path, model_from: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let say = |message: &str| {
        if !json {
            eprintln!("quickstart: {message}");
        }
    };
    Groundwork::init(home)?;
    let groundwork = Groundwork::open(home)?;
    say(&format!("home is {}", home.display()));
    if groundwork.embedder().is_err() {
        say("installing the embedding model");
        fetch_model(&groundwork, model_from, json)?;
    }
    let folder = home.join("samples").join(KB);
    for (name, content, metadata) in HANDBOOK {
        let path = folder.join(name);
        std::fs::create_dir_all(path.parent().expect("sample paths have a folder"))?;
        write_if_changed(&path, content)?;
        write_if_changed(&folder.join(format!("{name}.metadata.json")), metadata)?;
    }
    if groundwork.store().kb(KB).is_err() {
        say("creating knowledge base `handbook` with the sample folder as its source");
        groundwork.create_kb(KB, Default::default())?;
        groundwork.add_source(KB, &folder.to_string_lossy(), Default::default())?;
    }
    say("syncing");
    let report = sync_once(&groundwork, KB, json)?;
    let searcher = groundwork.searcher(KB)?;
    let query = "parental leave policy";
    let filter = Filter::from_shorthand("department=hr").map_err(groundwork_service::ServiceError::from)?;
    let search = searcher.search(&SearchRequest {
        query: query.to_string(),
        k: 3,
        search_type: None,
        filter: Some(filter),
    })?;
    let question = "How many days of parental leave do we get?";
    let answer = extractive_answer(&searcher, &groundwork_service::AskRequest::new(question, 5))?;
    if json {
        return print_json(&serde_json::json!({ "sync": report, "search": search, "answer": answer }));
    }
    print_sync_report(&report, false)?;
    println!("\n$ groundwork search {KB} \"{query}\" -k 3 --filter department=hr");
    for (rank, hit) in search.hits.iter().enumerate() {
        println!("{}. {:.4}  {}", rank + 1, hit.score, hit.uri);
    }
    println!("\n$ groundwork ask {KB} \"{question}\"");
    print_answer(&answer, false)
}

fn write_if_changed(path: &Path, content: &str) -> std::io::Result<()> {
    if std::fs::read(path).ok().as_deref() != Some(content.as_bytes()) {
        std::fs::write(path, content)?;
    }
    Ok(())
}
