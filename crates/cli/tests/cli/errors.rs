//! Bad requests get a typed error, a stable code and the right exit status.

use crate::require_model;
use crate::support::TestHome;

#[test]
fn bad_requests_are_refused_with_codes() {
    let model = require_model!();
    let env = TestHome::new(model);
    let docs = env.folder("docs");
    crate::support::write(&docs.join("a.txt"), "Some text about leave.");
    assert_eq!(env.fails(&["search", "nope", "query"]), (3, "not_found".into()));
    env.ok(&["kb", "create", "kb1"]);
    assert_eq!(env.fails(&["kb", "create", "kb1"]), (4, "already_exists".into()));
    assert_eq!(
        env.fails(&["kb", "create", "bad name!"]),
        (2, "invalid_request".into())
    );
    assert_eq!(
        env.fails(&["source", "add", "kb1", env.root.join("missing").to_str().unwrap()]),
        (2, "invalid_request".into())
    );
    assert_eq!(
        env.fails(&["source", "add", "kb1", "ftp://host/x"]),
        (2, "invalid_request".into())
    );
    env.ok(&["source", "add", "kb1", docs.to_str().unwrap()]);
    env.ok(&["sync", "kb1"]);
    assert_eq!(
        env.fails(&["search", "kb1", "leave", "--filter", "no operator"]),
        (2, "invalid_request".into())
    );
    assert_eq!(
        env.fails(&["search", "kb1", "leave", "--filter-json", "{\"bogus\":1}"]),
        (2, "invalid_request".into())
    );
    assert_eq!(
        env.fails(&["search", "kb1", "leave", "-k", "0"]),
        (2, "invalid_request".into())
    );
    let huge = "word ".repeat(5000);
    assert_eq!(
        env.fails(&["search", "kb1", &huge]),
        (2, "invalid_request".into())
    );
    // Hostile query syntax is just text.
    for query in [
        "AND OR ((( :",
        "\"unterminated",
        "title:*",
        "🙂 \u{7} \u{202e}",
        "",
    ] {
        env.json(&["search", "kb1", query, "--search-type", "lexical"]);
        env.json(&["search", "kb1", query]);
    }
    // Not initialised.
    let other = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_groundwork"))
        .args(["--json", "--home"])
        .arg(other.path().join("nothing"))
        .args(["kb", "list"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(8));
}
