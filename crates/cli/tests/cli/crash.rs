//! Real SIGKILLs at many points of a sync, then convergence; and searches during a sync.

use crate::require_model;
use crate::support::{TestHome, write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const DOCUMENTS: usize = 120;

/// Documents long enough to make a sync take seconds, each with a unique marker word.
fn corpus(env: &TestHome) -> std::path::PathBuf {
    let docs = env.folder("corpus");
    let topics = [
        "glaciers",
        "compilers",
        "vaccines",
        "bridges",
        "orchards",
        "satellites",
        "tariffs",
        "violins",
    ];
    for i in 0..DOCUMENTS {
        let topic = topics[i % topics.len()];
        let mut text = format!("# Report {i} on {topic}\n\nmarker{i:03} identifies this report.\n\n");
        for s in 0..24 {
            text.push_str(&format!(
                "Observation {s} about {topic} in study {i} notes that measurement {} differed from the baseline by {} percent. ",
                (i * 31 + s * 7) % 97,
                (i + s) % 13
            ));
        }
        write(&docs.join(format!("doc{i:03}.md")), text);
    }
    docs
}

fn spawn_sync(env: &TestHome, kb: &str) -> Child {
    env.command(&["--json", "sync", kb])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sync")
}

/// (uri, ordinal, text) of every chunk of a knowledge base, read straight from SQLite.
fn chunk_rows(env: &TestHome, kb: &str) -> Vec<(String, i64, String)> {
    let conn = rusqlite::Connection::open(env.home.join("groundwork.db")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT d.uri, c.ordinal, c.text FROM chunks c JOIN documents d ON d.id = c.document_id
             JOIN knowledge_bases k ON k.id = c.kb_id WHERE k.name = ?1 ORDER BY d.uri, c.ordinal",
        )
        .unwrap();
    stmt.query_map([kb], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn killed_syncs_converge_to_exactly_the_right_chunks() {
    let model = require_model!();
    let env = TestHome::new(model);
    let docs = corpus(&env);
    env.ok(&["kb", "create", "crashy"]);
    env.ok(&["source", "add", "crashy", docs.to_str().unwrap()]);

    // Kill at increasing delays: early (listing, model load), mid-batch, during index updates.
    let mut kills = 0;
    for delay_ms in [150u64, 400, 700, 1000, 1400, 1900, 2500, 3200, 4000, 5000] {
        let mut child = spawn_sync(&env, "crashy");
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
        // Change the corpus between kills too: an update and a delete must survive crashes.
        if delay_ms == 1000 {
            write(
                &docs.join("doc005.md"),
                "marker005 was rewritten after a crash. Only this sentence remains.",
            );
            std::fs::remove_file(docs.join("doc006.md")).unwrap();
        }
    }
    assert!(
        kills >= 3,
        "the sync finished too fast to be killed mid-way ({kills} kills)"
    );

    let last = env.json(&["sync", "crashy"]);
    assert_eq!(last["failed"].as_array().unwrap().len(), 0, "{last}");
    let status = env.json(&["kb", "show", "crashy"]);
    assert_eq!(
        status["documents"].as_u64().unwrap() as usize,
        DOCUMENTS - 1,
        "{status}"
    );
    env.assert_indexes_match_store("crashy");

    // The same folder synced once, without kills, into a second knowledge base.
    env.ok(&["kb", "create", "reference"]);
    env.ok(&["source", "add", "reference", docs.to_str().unwrap()]);
    env.ok(&["sync", "reference"]);
    let crashed = chunk_rows(&env, "crashy");
    let reference = chunk_rows(&env, "reference");
    assert_eq!(crashed.len(), reference.len(), "chunk counts differ");
    assert_eq!(
        crashed, reference,
        "killed syncs did not converge to the clean result"
    );

    // Nothing duplicated or stale in the lexical index: each marker finds exactly its document.
    for (marker, expected_hits) in [("marker005", 1usize), ("marker006", 0), ("marker077", 1)] {
        let hits = env.json(&["search", "crashy", marker, "-k", "10", "--search-type", "lexical"]);
        let uris = TestHome::hit_uris(&hits);
        let mut distinct = uris.clone();
        distinct.dedup();
        assert_eq!(distinct.len(), expected_hits, "{marker}: {uris:?}");
    }
    let rewritten = env.json(&[
        "search",
        "crashy",
        "marker005",
        "-k",
        "10",
        "--search-type",
        "lexical",
    ]);
    assert!(
        rewritten["hits"][0]["content"]
            .as_str()
            .unwrap()
            .contains("rewritten after a crash")
    );

    // A clean re-sync finds nothing to do.
    let again = env.json(&["sync", "crashy"]);
    assert_eq!(
        again["unchanged"].as_u64().unwrap() as usize,
        DOCUMENTS - 1,
        "{again}"
    );
    assert_eq!(again["embeddings_computed"], 0, "{again}");
}

#[test]
fn searches_keep_working_during_a_sync() {
    let model = require_model!();
    let env = TestHome::new(model);
    let docs = corpus(&env);
    env.ok(&["kb", "create", "busy"]);
    env.ok(&["source", "add", "busy", docs.to_str().unwrap()]);
    let mut sync = spawn_sync(&env, "busy");
    let started = Instant::now();
    let mut searches = 0;
    while sync.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(120) {
        for search_type in ["lexical", "semantic", "hybrid"] {
            env.json(&[
                "search",
                "busy",
                "glaciers measurement",
                "-k",
                "5",
                "--search-type",
                search_type,
            ]);
            searches += 1;
        }
    }
    assert!(sync.wait().unwrap().success());
    assert!(searches >= 3, "the sync ended before any search ran");
    // A second sync while none runs is fine; two at once: the second is refused as busy.
    let mut first = spawn_sync(&env, "busy");
    let second = env.output(&["--json", "sync", "busy"]);
    first.wait().unwrap();
    if !second.status.success() {
        assert_eq!(
            second.status.code(),
            Some(5),
            "a concurrent sync must fail as busy"
        );
    }
    env.assert_indexes_match_store("busy");
}
