//! A folder source never reads outside its root: symbolic links out of it, dangling or looping
//! links, special files and names the listing cannot represent each fail alone, with a code,
//! and the rest of the folder syncs. With `--follow-links`, links inside the root are read.

use crate::require_model;
use crate::support::{TestHome, failures, write};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;

fn expected(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// Every document URI the administrator can find with a lexical search for `term`.
fn lexical_uris(env: &TestHome, kb: &str, term: &str) -> Vec<String> {
    TestHome::hit_uris(&env.json(&["search", kb, term, "--search-type", "lexical", "-k", "50"]))
}

#[test]
fn links_never_escape_the_source_folder() {
    let model = require_model!();
    let env = TestHome::new(model);
    // Outside the source: what a link must never expose.
    let outside = env.folder("outside");
    write(&outside.join("shadow"), "root:SECRETHASH:19000:0:99999:7:::\n");
    write(
        &outside.join("sub/passwd.txt"),
        "SECRETHASH again, one level down.\n",
    );

    let docs = env.folder("docs");
    write(
        &docs.join("good.md"),
        "# Canteen\n\nThe canteen serves soup on Mondays.\n",
    );
    write(
        &docs.join("inner/target.txt"),
        "The inner target mentions lighthouses.\n",
    );
    symlink(&outside, docs.join("etc-dir")).unwrap();
    symlink(outside.join("shadow"), docs.join("shadow-link")).unwrap();
    symlink("../outside/shadow", docs.join("relative-escape")).unwrap();
    symlink("inner/target.txt", docs.join("inside-link.txt")).unwrap();
    symlink("inner", docs.join("inside-dir")).unwrap();
    symlink("missing.txt", docs.join("dangling.txt")).unwrap();
    symlink("loop-b", docs.join("loop-a")).unwrap();
    symlink("loop-a", docs.join("loop-b")).unwrap();
    symlink(".", docs.join("inner/self")).unwrap();

    env.ok(&["kb", "create", "links"]);
    env.ok(&["source", "add", "links", docs.to_str().unwrap()]);
    let report = env.json(&["sync", "links"]);
    assert_eq!(
        failures(&report),
        expected(&[
            ("etc-dir", "link_outside_root"),
            ("shadow-link", "link_outside_root"),
            ("relative-escape", "link_outside_root"),
            ("inside-link.txt", "link_not_followed"),
            ("inside-dir", "link_not_followed"),
            ("dangling.txt", "link_broken"),
            ("loop-a", "link_loop"),
            ("loop-b", "link_loop"),
            ("self", "link_not_followed"),
        ]),
        "{report}"
    );
    assert_eq!(report["added"], 2, "good.md and inner/target.txt: {report}");
    assert!(lexical_uris(&env, "links", "SECRETHASH").is_empty());

    // Unchanged failures are not reported again, and the rest stays unchanged.
    let again = env.json(&["sync", "links"]);
    assert_eq!(again["still_failing"], 9, "{again}");
    assert_eq!(again["unchanged"], 2, "{again}");
    assert!(again["failed"].as_array().unwrap().is_empty(), "{again}");

    // Following links: those inside the folder are read, under the link's own name; those
    // outside still are not; a link back into an ancestor is a loop, not a hang.
    env.ok(&["kb", "create", "follow"]);
    env.ok(&[
        "source",
        "add",
        "follow",
        docs.to_str().unwrap(),
        "--follow-links",
    ]);
    let followed = env.json(&["sync", "follow"]);
    assert_eq!(
        failures(&followed),
        expected(&[
            ("etc-dir", "link_outside_root"),
            ("shadow-link", "link_outside_root"),
            ("relative-escape", "link_outside_root"),
            ("dangling.txt", "link_broken"),
            ("loop-a", "link_loop"),
            ("loop-b", "link_loop"),
            ("self", "link_loop"),
        ]),
        "{followed}"
    );
    let mut uris: Vec<String> = lexical_uris(&env, "follow", "lighthouses")
        .iter()
        .map(|u| {
            u.trim_start_matches(&format!("file://{}/", docs.display()))
                .to_string()
        })
        .collect();
    uris.sort();
    assert_eq!(
        uris,
        ["inner/target.txt", "inside-dir/target.txt", "inside-link.txt"],
        "{followed}"
    );
    assert!(lexical_uris(&env, "follow", "SECRETHASH").is_empty());
    env.assert_indexes_match_store("follow");

    // A document later replaced by a link out of the folder keeps its last good version and
    // is never read through the link.
    std::fs::remove_file(docs.join("good.md")).unwrap();
    symlink(outside.join("shadow"), docs.join("good.md")).unwrap();
    let swapped = env.json(&["sync", "links"]);
    assert_eq!(
        failures(&swapped),
        expected(&[("good.md", "link_outside_root")]),
        "{swapped}"
    );
    assert_eq!(swapped["deleted"], 0, "{swapped}");
    assert_eq!(lexical_uris(&env, "links", "soup").len(), 1);
    assert!(lexical_uris(&env, "links", "SECRETHASH").is_empty());
}

#[test]
fn odd_entries_fail_alone_and_the_listing_completes() {
    let model = require_model!();
    let env = TestHome::new(model);
    let docs = env.folder("odd");
    write(&docs.join("good.txt"), "The library opens at nine.\n");
    write(&docs.join("keep.txt"), "Bicycles are parked in the courtyard.\n");
    write(
        &docs.join("name #1 & (draft).txt"),
        "Odd but printable names are fine: tulips.\n",
    );
    env.ok(&["kb", "create", "odd"]);
    env.ok(&["source", "add", "odd", docs.to_str().unwrap()]);
    let first = env.json(&["sync", "odd"]);
    assert_eq!(first["added"], 3, "{first}");

    write(&docs.join("new\nline.txt"), "A name with a newline.\n");
    write(
        &docs.join(OsStr::from_bytes(b"latin\xe9.txt")),
        "A name that is not UTF-8.\n",
    );
    let fifo = docs.join("pipe.txt");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    symlink("loop2", docs.join("loop1")).unwrap();
    symlink("loop1", docs.join("loop2")).unwrap();
    // A sidecar that is a link out of the folder fails its document rather than letting it be
    // indexed without its metadata (and its ACL).
    let outside = env.folder("elsewhere");
    write(
        &outside.join("open.metadata.json"),
        r#"{"metadataAttributes": {"department": "all"}}"#,
    );
    write(&docs.join("restricted.txt"), "Salaries are reviewed in March.\n");
    symlink(
        outside.join("open.metadata.json"),
        docs.join("restricted.txt.metadata.json"),
    )
    .unwrap();
    std::fs::remove_file(docs.join("keep.txt")).unwrap();

    let report = env.json(&["sync", "odd"]);
    assert_eq!(
        failures(&report),
        expected(&[
            ("new%0Aline.txt", "bad_name"),
            ("latin%E9.txt", "bad_name"),
            ("pipe.txt", "not_a_file"),
            ("loop1", "link_loop"),
            ("loop2", "link_loop"),
            ("restricted.txt", "bad_sidecar"),
        ]),
        "{report}"
    );
    // Deletions are still inferred from the completed listing.
    assert_eq!(report["deleted"], 1, "keep.txt: {report}");
    assert_eq!(report["unchanged"], 2, "{report}");
    assert!(lexical_uris(&env, "odd", "salaries").is_empty());
    assert_eq!(lexical_uris(&env, "odd", "library").len(), 1);
    env.assert_indexes_match_store("odd");
}

#[test]
fn a_source_root_replaced_by_a_link_is_refused() {
    let model = require_model!();
    let env = TestHome::new(model);
    let docs = env.folder("root");
    write(&docs.join("a.txt"), "Meeting rooms are booked in the portal.\n");
    env.ok(&["kb", "create", "moved"]);
    env.ok(&["source", "add", "moved", docs.to_str().unwrap()]);
    env.json(&["sync", "moved"]);
    let outside = env.folder("other");
    write(
        &outside.join("b.txt"),
        "This folder was never added as a source.\n",
    );
    std::fs::rename(&docs, env.root.join("root-old")).unwrap();
    symlink(&outside, &docs).unwrap();
    let (code, stderr) = env.fails(&["sync", "moved"]);
    assert_eq!(code, 7, "source_unavailable: {stderr}");
    // Nothing was deleted or read.
    assert_eq!(lexical_uris(&env, "moved", "portal").len(), 1);
    assert!(lexical_uris(&env, "moved", "never").is_empty());
}
