//! Parsers run in worker processes: a parser that loops, sleeps, outgrows its memory cap,
//! overflows its stack, aborts or panics fails that one document with a typed code, the sync and
//! the other documents are unaffected, and no worker is left behind — even when the sync itself
//! is killed while a worker is stuck.
//!
//! The misbehaving parsers are the debug build's test faults (`GROUNDWORK_TEST_PARSER_FAULTS`,
//! see `groundwork_ingest::parse::worker`): the kernel limits, the kill at the deadline and the
//! classification of each death are the real ones. The memory cap is also shown on a real parse.

use crate::require_model;
use crate::support::{TestHome, failures, write};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Arms the test faults; any value does, and each test passes its own so that it can tell its
/// workers from those of tests running beside it (a worker's environment holds nothing else).
const FAULTS: &str = "GROUNDWORK_TEST_PARSER_FAULTS";

fn configure(env: &TestHome, settings: &[(&str, &str)]) {
    let config = env.home.join("config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    for (name, value) in settings {
        let start = text
            .find(&format!("\n{name} = "))
            .unwrap_or_else(|| panic!("{name} is not in the written config:\n{text}"));
        let end = start + 1 + text[start + 1..].find('\n').unwrap();
        text.replace_range(start + 1..end, &format!("{name} = {value}"));
    }
    std::fs::write(&config, text).unwrap();
}

/// The parent process of `pid`, from `/proc/PID/status`.
fn parent_of(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))?
        .trim()
        .parse()
        .ok()
}

/// The processes whose parent is `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|&pid| parent_of(pid) == Some(parent))
        .collect()
}

/// Parse workers of this test binary's `groundwork`, armed with `marker`, whose parent is no
/// longer a `groundwork` process (orphans), by pid.
fn orphaned_workers(marker: &str) -> Vec<u32> {
    let armed = format!("{FAULTS}={marker}");
    let binary = std::fs::canonicalize(env!("CARGO_BIN_EXE_groundwork")).unwrap();
    let mut orphans = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let is_worker = std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.split(|b| *b == 0).any(|arg| arg == b"parse-worker"))
            && std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == binary)
            && std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|e| e.split(|b| *b == 0).any(|var| var == armed.as_bytes()));
        if !is_worker {
            continue;
        }
        let parent_is_groundwork = parent_of(pid)
            .is_some_and(|p| std::fs::read_link(format!("/proc/{p}/exe")).is_ok_and(|exe| exe == binary));
        if !parent_is_groundwork {
            orphans.push(pid);
        }
    }
    orphans
}

fn wait_for_no_orphans(marker: &str, within: Duration) {
    let until = Instant::now() + within;
    loop {
        let orphans = orphaned_workers(marker);
        if orphans.is_empty() {
            return;
        }
        assert!(Instant::now() < until, "parse workers left behind: {orphans:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_stuck_or_exploding_parser_fails_only_its_document() {
    let model = require_model!();
    let env = TestHome::new(model);
    configure(
        &env,
        &[
            ("parse_timeout_secs", "2"),
            ("parse_memory_mb", "256"),
            ("parse_workers", "2"),
        ],
    );
    let docs = env.folder("isolated");
    for i in 0..6 {
        write(
            &docs.join(format!("good-{i}.md")),
            format!("# Room {i}\n\nMeeting room {i} has a whiteboard and {i} chairs.\n"),
        );
    }
    let expected = [
        ("spin", "timeout"),
        ("sleep", "timeout"),
        ("grow", "out_of_memory"),
        ("abort", "panic"),
        ("overflow", "panic"),
        ("panic", "panic"),
    ];
    for (kind, _) in expected {
        write(
            &docs.join(format!("{kind}.txt")),
            format!("%GROUNDWORK-TEST-FAULT {kind}\n"),
        );
    }
    env.ok(&["kb", "create", "isolated"]);
    env.ok(&["source", "add", "isolated", docs.to_str().unwrap()]);
    let report = env.json_with_env(&["sync", "isolated"], &[(FAULTS, "exploding")]);
    let expected: BTreeMap<String, String> = expected
        .iter()
        .map(|(kind, code)| (format!("{kind}.txt"), code.to_string()))
        .collect();
    assert_eq!(failures(&report), expected, "{report}");
    assert_eq!(report["added"], 6, "{report}");
    let grow = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["uri"].as_str().unwrap().ends_with("grow.txt"))
        .unwrap();
    assert!(grow["message"].as_str().unwrap().contains("256 MiB"), "{grow}");

    let hits = env.json(&[
        "search",
        "isolated",
        "whiteboard chairs",
        "-k",
        "10",
        "--search-type",
        "lexical",
    ]);
    assert_eq!(TestHome::hit_uris(&hits).len(), 6, "{hits}");
    env.assert_indexes_match_store("isolated");
    wait_for_no_orphans("exploding", Duration::from_secs(5));

    // Without the faults armed the same files are plain text: the pool carries no state over.
    for kind in expected.keys() {
        write(
            &docs.join(kind),
            format!("%GROUNDWORK-TEST-FAULT {kind}\nnow fixed\n"),
        );
    }
    let again = env.json(&["sync", "isolated"]);
    assert_eq!(again["added"], 6, "{again}");
    assert!(failures(&again).is_empty(), "{again}");
}

#[test]
fn a_real_parse_over_the_memory_cap_fails_with_out_of_memory() {
    let model = require_model!();
    let env = TestHome::new(model);
    configure(&env, &[("parse_memory_mb", "128")]);
    let docs = env.folder("big");
    // 48 MB of plain prose: reading, decoding and normalising it needs well over 128 MiB with
    // the parse thread's stack; the small file next to it parses in the same pool.
    let line = "The quarterly report lists every meeting room and its whiteboard.\n";
    write(&docs.join("big.txt"), line.repeat(48_000_000 / line.len()));
    write(
        &docs.join("small.txt"),
        "The small note names the canteen's opening hours.",
    );
    env.ok(&["kb", "create", "big"]);
    env.ok(&["source", "add", "big", docs.to_str().unwrap()]);
    let report = env.json(&["sync", "big"]);
    let expected: BTreeMap<String, String> = [("big.txt".to_string(), "out_of_memory".to_string())].into();
    assert_eq!(failures(&report), expected, "{report}");
    assert_eq!(report["added"], 1, "{report}");
}

#[test]
fn a_worker_stuck_when_its_sync_is_killed_is_stopped_by_its_cpu_limit() {
    let model = require_model!();
    let env = TestHome::new(model);
    configure(&env, &[("parse_timeout_secs", "2")]);
    let docs = env.folder("stuck");
    write(&docs.join("spin.txt"), "%GROUNDWORK-TEST-FAULT spin\n");
    env.ok(&["kb", "create", "stuck"]);
    env.ok(&["source", "add", "stuck", docs.to_str().unwrap()]);
    let mut sync = env.command(&["--json", "sync", "stuck"]);
    let mut sync = sync
        .env(FAULTS, "stuck")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the sync's worker to start, then kill the sync before its deadline can.
    let parent = sync.id();
    let until = Instant::now() + Duration::from_secs(60);
    let worker = loop {
        if let Some(pid) = children_of(parent).first() {
            break *pid;
        }
        assert!(Instant::now() < until, "the sync never started a parse worker");
        std::thread::sleep(Duration::from_millis(20));
    };
    sync.kill().unwrap();
    sync.wait().unwrap();
    assert!(
        std::path::Path::new(&format!("/proc/{worker}")).exists(),
        "the worker should outlive its killed parent until its own limit stops it"
    );
    // Its limit is 2 s of CPU time, which a loaded machine may take a while to give it.
    wait_for_no_orphans("stuck", Duration::from_secs(60));
    // The next sync records the document's failure and finishes.
    let report = env.json_with_env(&["sync", "stuck"], &[(FAULTS, "stuck")]);
    let expected: BTreeMap<String, String> = [("spin.txt".to_string(), "timeout".to_string())].into();
    assert_eq!(failures(&report), expected, "{report}");
}
