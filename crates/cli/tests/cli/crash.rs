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

/// Sync runs of a knowledge base marked running in the store.
fn running_syncs(env: &TestHome, kb: &str) -> usize {
    let conn = rusqlite::Connection::open(env.home.join("groundwork.db")).unwrap();
    conn.query_row(
        "SELECT count(*) FROM sync_runs r JOIN knowledge_bases k ON k.id = r.kb_id
         WHERE k.name = ?1 AND r.status = 'running'",
        [kb],
        |r| r.get::<_, i64>(0),
    )
    .unwrap() as usize
}

/// Documents of a knowledge base committed to the store, read straight from SQLite.
fn document_count(env: &TestHome, kb: &str) -> usize {
    let conn = rusqlite::Connection::open(env.home.join("groundwork.db")).unwrap();
    conn.query_row(
        "SELECT count(*) FROM documents d JOIN knowledge_bases k ON k.id = d.kb_id
         WHERE k.name = ?1 AND d.content_sha256 IS NOT NULL",
        [kb],
        |r| r.get::<_, i64>(0),
    )
    .unwrap() as usize
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
    // Small commit batches, so that kills land between commits as well as inside them.
    let config = env.home.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("commit_batch_documents = 32"), "{text}");
    std::fs::write(
        &config,
        text.replace("commit_batch_documents = 32", "commit_batch_documents = 4"),
    )
    .unwrap();
    env.ok(&["kb", "create", "crashy"]);
    env.ok(&["source", "add", "crashy", docs.to_str().unwrap()]);

    // Kill at increasing delays: early (listing, model load), mid-batch, during index updates.
    let mut kills = 0;
    // Kills that landed after some but not all documents had committed: the case the store's
    // per-batch transactions exist for.
    let mut partial_kills = 0;
    for delay_ms in [150u64, 400, 700, 1000, 1400, 1900, 2500, 3200, 4000, 5000] {
        let mut child = spawn_sync(&env, "crashy");
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
            child.wait().unwrap();
            let committed = document_count(&env, "crashy");
            if committed > 0 && committed < DOCUMENTS - 1 {
                partial_kills += 1;
            }
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
    assert!(
        partial_kills >= 1,
        "no kill landed between two commits ({kills} kills): nothing here tested a partial sync"
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

    // The vectors agree with the clean sync, not only in number: semantic searches rank the
    // same chunks with the same scores in both knowledge bases.
    for query in [
        "melting ice sheets",
        "music instruments with strings",
        "import taxes",
    ] {
        let ranked = |kb: &str| -> Vec<(String, String, String)> {
            let hits = env.json(&["search", kb, query, "-k", "8", "--search-type", "semantic"]);
            hits["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    (
                        crate::support::file_name(h["uri"].as_str().unwrap()).to_string(),
                        h["content"].as_str().unwrap().to_string(),
                        format!("{:.5}", h["score"].as_f64().unwrap()),
                    )
                })
                .collect()
        };
        let (crashed, clean) = (ranked("crashy"), ranked("reference"));
        assert_eq!(crashed.len(), 8, "{query}: {crashed:?}");
        assert_eq!(
            crashed, clean,
            "{query}: semantic ranking differs after the kills"
        );
    }

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
    // Two syncs at once: the second is refused as busy while the first holds the lock. Every
    // document changes, so the first has seconds of embedding to do; the second starts once
    // the first has begun its run (it takes the lock before that).
    for i in 0..DOCUMENTS {
        let path = docs.join(format!("doc{i:03}.md"));
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&format!(
            "\n\nAddendum {i}: the lock test rewrote this report on a rainy day.\n"
        ));
        write(&path, text);
    }
    let mut first = spawn_sync(&env, "busy");
    let deadline = Instant::now() + Duration::from_secs(60);
    while running_syncs(&env, "busy") == 0 {
        assert!(Instant::now() < deadline, "the first sync never started its run");
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first sync ended before it was seen running"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = env.output(&["--json", "sync", "busy"]);
    let first_still_running = first.try_wait().unwrap().is_none();
    assert!(first.wait().unwrap().success());
    assert_eq!(
        second.status.code(),
        Some(5),
        "a sync while another runs must fail as busy: {}",
        String::from_utf8_lossy(&second.stdout)
    );
    assert!(
        first_still_running,
        "the first sync ended before the second was answered: inconclusive"
    );
    env.assert_indexes_match_store("busy");
}
