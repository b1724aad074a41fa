//! `backup` and `restore` through the binary: an online backup while a sync and searches run,
//! restores that verify the audit chain, refusals (live home, existing store, incomplete or
//! altered backups), real kills during a backup, and an S3 destination.

use crate::require_model;
use crate::support::{TestHome, write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn corpus(docs: &Path, documents: usize, salt: &str) {
    for i in 0..documents {
        let mut text = format!("# Memo {i}\n\nmemo{i:03} concerns the {salt} schedule.\n\n");
        for s in 0..12 {
            text.push_str(&format!(
                "Item {s} of memo {i} says that room {} is booked on day {} for the {salt} review. ",
                (i * 7 + s) % 41,
                (i + s) % 28
            ));
        }
        write(&docs.join(format!("memo{i:03}.md")), text);
    }
}

fn documents(env: &TestHome, kb: &str) -> u64 {
    env.json(&["kb", "show", kb])["documents"].as_u64().unwrap()
}

fn audit_intact(env: &TestHome) -> serde_json::Value {
    let verified = env.json(&["audit", "verify"]);
    assert_eq!(verified["intact"], true, "{verified}");
    verified
}

#[test]
fn an_online_backup_restores_to_a_home_that_verifies() {
    let model = require_model!();
    let env = TestHome::new(model.clone());
    let docs = env.folder("docs");
    corpus(&docs, 60, "spring");
    env.ok(&["kb", "create", "memos"]);
    env.ok(&["source", "add", "memos", docs.to_str().unwrap()]);
    env.ok(&["user", "add", "alice"]);
    env.ok(&[
        "grant",
        "add",
        "--user",
        "alice",
        "--read",
        docs.to_str().unwrap(),
    ]);
    env.ok(&["sync", "memos"]);
    assert_eq!(documents(&env, "memos"), 60);

    // A second sync rewrites every memo and adds more; the backup is taken while it runs and
    // while searches go on.
    corpus(&docs, 90, "autumn");
    let mut sync = env
        .command(&["--json", "sync", "memos"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    env.json(&["--as", "alice", "search", "memos", "room booked", "-k", "3"]);
    let dest = env.root.join("backup-1");
    let report = env.json(&["backup", dest.to_str().unwrap()]);
    let sync_still_running = sync.try_wait().unwrap().is_none();
    env.json(&["search", "memos", "review schedule", "-k", "3"]);
    assert!(sync.wait().unwrap().success());
    eprintln!("backup taken while the sync was running: {sync_still_running}");
    let files: Vec<&str> = report["manifest"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["groundwork.db", "config.toml"], "{report}");
    assert!(dest.join("backup.json").is_file());
    assert!(!dest.join("indexes").exists(), "indexes are derived, not copied");
    let head = report["manifest"]["audit_head"]["seq"].as_i64().unwrap();

    // Restore into a new home: the chain verifies, the indexes are rebuilt from the store.
    let restored = TestHome::uninitialised(model.clone());
    let answer = restored.json(&["restore", dest.to_str().unwrap()]);
    assert_eq!(answer["audit_intact"], true, "{answer}");
    assert_eq!(answer["audit_records"].as_i64().unwrap(), head, "{answer}");
    let verified = audit_intact(&restored);
    assert!(
        verified["records"].as_i64().unwrap() > head,
        "the restore recorded itself"
    );
    let count = documents(&restored, "memos");
    assert!(
        (60..=90).contains(&count),
        "a snapshot between the two syncs: {count}"
    );
    let hits = restored.json(&["--as", "alice", "search", "memos", "room booked", "-k", "3"]);
    assert_eq!(TestHome::hit_uris(&hits).len(), 3, "{hits}");
    restored.assert_indexes_match_store("memos");
    // The restored home goes on where the backup stopped: a sync completes it.
    restored.ok(&["sync", "memos"]);
    assert_eq!(documents(&restored, "memos"), 90);
    let query = restored.json(&["audit", "query", "--action", "restore"]);
    assert_eq!(query.as_array().unwrap().len(), 1, "{query}");

    // The original home is untouched by its backup, apart from the backup's own record.
    audit_intact(&env);
    let records = env.json(&["audit", "query", "--action", "backup"]);
    assert_eq!(records.as_array().unwrap().len(), 1, "{records}");
    assert_eq!(records[0]["outcome"], "ok", "{records}");
}

#[test]
fn restore_refuses_what_it_must() {
    let model = require_model!();
    let env = TestHome::new(model.clone());
    let docs = env.folder("docs");
    corpus(&docs, 5, "winter");
    env.ok(&["kb", "create", "memos"]);
    env.ok(&["source", "add", "memos", docs.to_str().unwrap()]);
    env.ok(&["sync", "memos"]);
    let dest = env.root.join("backup");
    env.ok(&["backup", dest.to_str().unwrap()]);
    // Not into a folder that already holds something.
    assert_eq!(
        env.fails(&["backup", dest.to_str().unwrap()]),
        (4, "already_exists".into())
    );
    // Only administrators back up.
    env.ok(&["user", "add", "bob"]);
    let other = env.root.join("by-bob");
    assert_eq!(
        env.fails(&["--as", "bob", "backup", other.to_str().unwrap()]),
        (11, "forbidden".into())
    );
    assert!(!other.join("backup.json").exists());

    // An initialised home is not replaced without --force; with it, the old store is kept.
    let target = TestHome::new(model.clone());
    target.ok(&["kb", "create", "mine"]);
    assert_eq!(
        target.fails(&["restore", dest.to_str().unwrap()]),
        (4, "already_exists".into())
    );
    // Never while a process has the home open, --force or not.
    let (mut server, _) = target.serve(&[]);
    assert_eq!(
        target.fails(&["restore", "--force", dest.to_str().unwrap()]),
        (5, "busy".into())
    );
    crate::support::stop_with_sigterm(&mut server);
    let forced = target.json(&["restore", "--force", dest.to_str().unwrap()]);
    let previous = Path::new(forced["previous"].as_str().unwrap());
    assert!(previous.join("groundwork.db").is_file(), "{forced}");
    assert!(previous.join("config.toml").is_file(), "{forced}");
    let kbs: Vec<String> = target
        .json(&["kb", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kbs, ["memos"]);
    audit_intact(&target);

    // A backup without its manifest is incomplete: nothing is restored.
    let partial = env.root.join("partial");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::copy(dest.join("groundwork.db"), partial.join("groundwork.db")).unwrap();
    let fresh = TestHome::uninitialised(model.clone());
    assert_eq!(
        fresh.fails(&["restore", partial.to_str().unwrap()]),
        (3, "not_found".into())
    );
    assert!(!fresh.home.join("groundwork.db").exists());

    // A file that differs from the manifest (one byte) is refused before the home changes.
    let altered = env.root.join("altered");
    std::fs::create_dir_all(&altered).unwrap();
    for name in ["groundwork.db", "config.toml", "backup.json"] {
        std::fs::copy(dest.join(name), altered.join(name)).unwrap();
    }
    let mut db = std::fs::read(altered.join("groundwork.db")).unwrap();
    let middle = db.len() / 2;
    db[middle] ^= 0x55;
    std::fs::write(altered.join("groundwork.db"), db).unwrap();
    assert_eq!(
        fresh.fails(&["restore", altered.to_str().unwrap()]),
        (9, "corrupt".into())
    );
    assert!(!fresh.home.join("groundwork.db").exists());

    // A backup whose audit log was rewritten — and its manifest made to match — is refused.
    let forged = env.root.join("forged");
    std::fs::create_dir_all(&forged).unwrap();
    std::fs::copy(dest.join("config.toml"), forged.join("config.toml")).unwrap();
    std::fs::copy(dest.join("groundwork.db"), forged.join("groundwork.db")).unwrap();
    {
        let conn = rusqlite::Connection::open(forged.join("groundwork.db")).unwrap();
        // The store refuses UPDATE on the log through a trigger; a forger drops it first.
        conn.execute_batch("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")
            .unwrap();
        conn.execute("UPDATE audit_log SET actor = 'nobody' WHERE seq = 2", [])
            .unwrap();
    }
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dest.join("backup.json")).unwrap()).unwrap();
    for file in manifest["files"].as_array_mut().unwrap() {
        let bytes = std::fs::read(forged.join(file["name"].as_str().unwrap())).unwrap();
        file["bytes"] = bytes.len().into();
        file["sha256"] = groundwork_core::sha256_hex(&bytes).into();
    }
    std::fs::write(forged.join("backup.json"), manifest.to_string()).unwrap();
    assert_eq!(
        fresh.fails(&["restore", forged.to_str().unwrap()]),
        (9, "corrupt".into())
    );
    assert!(!fresh.home.join("groundwork.db").exists());
}

#[test]
fn a_killed_backup_is_never_restored_half() {
    let model = require_model!();
    let env = TestHome::new(model.clone());
    let docs = env.folder("docs");
    corpus(&docs, 80, "summer");
    env.ok(&["kb", "create", "memos"]);
    env.ok(&["source", "add", "memos", docs.to_str().unwrap()]);
    env.ok(&["sync", "memos"]);
    let mut killed_early = 0;
    let mut completed = 0;
    for (i, delay_ms) in [5u64, 20, 40, 70, 100, 150, 220, 300, 400]
        .into_iter()
        .enumerate()
    {
        let dest = env.root.join(format!("backup-{i}"));
        let mut child = env
            .command(&["--json", "backup", dest.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(delay_ms) && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
        }
        child.wait().unwrap();
        let fresh = TestHome::uninitialised(model.clone());
        if dest.join("backup.json").exists() {
            completed += 1;
            let answer = fresh.json(&["restore", dest.to_str().unwrap()]);
            assert_eq!(answer["audit_intact"], true, "{answer}");
            assert_eq!(documents(&fresh, "memos"), 80);
        } else {
            killed_early += 1;
            assert_eq!(
                fresh.fails(&["restore", dest.to_str().unwrap()]),
                (3, "not_found".into()),
                "an interrupted backup is refused"
            );
        }
        // The home itself is unharmed, whatever the moment of the kill.
        audit_intact(&env);
    }
    assert!(killed_early >= 1, "no kill landed before the manifest");
    assert!(completed >= 1, "no backup completed");
    env.json(&["search", "memos", "room booked"]);
    env.assert_indexes_match_store("memos");
    // Leftover scratch copies of killed backups never count as a home's files.
    env.ok(&["sync", "memos"]);
}

#[test]
fn backups_go_to_and_come_from_s3() {
    let model = require_model!();
    let Some(endpoint) = crate::s3::endpoint() else {
        return;
    };
    crate::s3::create_bucket(&endpoint, "gw-backups");
    let env = TestHome::new(model.clone());
    let docs = env.folder("docs");
    corpus(&docs, 10, "harvest");
    env.ok(&["kb", "create", "memos"]);
    env.ok(&["source", "add", "memos", docs.to_str().unwrap()]);
    env.ok(&["sync", "memos"]);
    let dest = "s3://gw-backups/nightly/2026-12-05";
    let report = env.json(&["backup", dest, "--endpoint", &endpoint]);
    assert_eq!(report["destination"], format!("{dest}/"), "{report}");
    assert_eq!(
        env.fails(&["backup", dest, "--endpoint", &endpoint]),
        (4, "already_exists".into())
    );
    let restored = TestHome::uninitialised(model);
    let answer = restored.json(&["restore", dest, "--endpoint", &endpoint]);
    assert_eq!(answer["audit_intact"], true, "{answer}");
    assert_eq!(documents(&restored, "memos"), 10);
    audit_intact(&restored);
    assert_eq!(
        restored.fails(&[
            "restore",
            "s3://gw-backups/nothing-here",
            "--endpoint",
            &endpoint,
            "--force"
        ]),
        (3, "not_found".into())
    );
}
