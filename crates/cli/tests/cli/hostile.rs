//! A corpus of hostile files: each fails alone with a typed reason; the sync and the good
//! documents are unaffected; a failure is not retried until the file changes.

use crate::require_model;
use crate::support::{TestHome, file_name, write};
use std::collections::BTreeMap;
use std::io::Write;

fn zip_bomb(path: &std::path::Path) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    zip.start_file("word/document.xml", options).unwrap();
    let block = vec![b'0'; 1 << 20];
    for _ in 0..500 {
        zip.write_all(&block).unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn hostile_files_fail_alone_with_reasons() {
    let model = require_model!();
    let env = TestHome::new(model);
    let docs = env.folder("hostile");
    write(
        &docs.join("good.md"),
        "# Good\n\nThe cafeteria opens at eight in the morning.\n",
    );
    write(
        &docs.join("truncated.pdf"),
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pa",
    );
    let mut junk: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    junk[10] = 0;
    write(&docs.join("junk.txt"), junk);
    write(
        &docs.join("latin1.txt"),
        b"Caf\xe9 cr\xe8me br\xfbl\xe9e is served on Fridays.",
    );
    write(&docs.join("deep.json"), "[".repeat(1_000_000));
    write(&docs.join("empty.txt"), b"");
    zip_bomb(&docs.join("bomb.docx"));
    let huge = std::fs::File::create(docs.join("huge.txt")).unwrap();
    huge.set_len(200 * 1024 * 1024).unwrap(); // sparse: 200 MB without writing them
    write(
        &docs.join("bad-sidecar.txt"),
        "A document whose metadata file is broken.",
    );
    write(&docs.join("bad-sidecar.txt.metadata.json"), "{not json");

    env.ok(&["kb", "create", "hostile"]);
    env.ok(&["source", "add", "hostile", docs.to_str().unwrap()]);
    let report = env.json(&["sync", "hostile"]);
    let failures: BTreeMap<String, String> = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                file_name(f["uri"].as_str().unwrap()).to_string(),
                f["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: BTreeMap<String, String> = [
        ("truncated.pdf", "corrupt"),
        ("junk.txt", "binary"),
        ("deep.json", "too_deep"),
        ("empty.txt", "empty"),
        ("bomb.docx", "zip_bomb"),
        ("huge.txt", "too_large"),
        ("bad-sidecar.txt", "bad_sidecar"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    // A truncated PDF may also surface as a contained parser panic; both are typed failures.
    let mut failures_normalised = failures.clone();
    if failures.get("truncated.pdf").map(String::as_str) == Some("panic") {
        failures_normalised.insert("truncated.pdf".into(), "corrupt".into());
    }
    assert_eq!(failures_normalised, expected, "{report}");
    assert_eq!(report["added"], 2, "good.md and latin1.txt: {report}");

    // Latin-1 was decoded, not mangled.
    let hits = env.json(&["search", "hostile", "crème brûlée", "--search-type", "lexical"]);
    assert_eq!(file_name(&TestHome::hit_uris(&hits)[0]), "latin1.txt");

    // The failures are recorded in the store, and not retried while unchanged.
    let status = env.json(&["kb", "show", "hostile"]);
    assert_eq!(status["failed_documents"], 7, "{status}");
    let again = env.json(&["sync", "hostile"]);
    assert_eq!(again["still_failing"], 7, "{again}");
    assert_eq!(again["failed"].as_array().unwrap().len(), 0, "{again}");

    // Fixing a file gets it retried and indexed.
    write(
        &docs.join("empty.txt"),
        "No longer empty: the gym is on the third floor.",
    );
    let fixed = env.json(&["sync", "hostile"]);
    assert_eq!(fixed["added"], 1, "{fixed}");
    let status = env.json(&["kb", "show", "hostile"]);
    assert_eq!(status["failed_documents"], 6, "{status}");
    env.assert_indexes_match_store("hostile");
}

#[test]
fn text_in_legacy_encodings_is_searchable_and_guesses_are_reported() {
    let model = require_model!();
    let env = TestHome::new(model);
    let docs = env.folder("docs");
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ingest/tests/fixtures/encodings");
    for name in ["ja-shift_jis.txt", "ru-koi8-r.txt", "ar-windows-1256.txt"] {
        std::fs::copy(fixtures.join(name), docs.join(name)).unwrap();
    }
    // Too short to guess: decoded, with a warning on the document; a sidecar can say.
    write(&docs.join("short.txt"), b"Cr\xe8me \xe0 8 h.");
    write(
        &docs.join("told.txt"),
        b"\xf4\xd2\xc1\xd7\xc1 \xcc\xc5\xd4\xcf\xcd.",
    );
    write(
        &docs.join("told.txt.metadata.json"),
        r#"{"metadataAttributes": {}, "encoding": "koi8-r"}"#,
    );
    env.ok(&["kb", "create", "world"]);
    env.ok(&["source", "add", "world", docs.to_str().unwrap()]);
    let report = env.json(&["sync", "world"]);
    assert_eq!(report["added"], 5, "{report}");
    for (query, file) in [
        ("оплачиваемый отпуск", "ru-koi8-r.txt"),
        ("الإجازة السنوية", "ar-windows-1256.txt"),
        ("Трава летом", "told.txt"),
    ] {
        let hits = env.json(&["search", "world", query, "--search-type", "lexical"]);
        let uris = TestHome::hit_uris(&hits);
        assert!(!uris.is_empty(), "{query}: {hits}");
        assert_eq!(file_name(&uris[0]), file, "{query}: {hits}");
    }
    let status = env.json(&["kb", "show", "world"]);
    let warned: Vec<&str> = status["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| file_name(w["uri"].as_str().unwrap()))
        .collect();
    assert_eq!(warned, ["short.txt"], "{status}");
    assert!(
        status["warnings"][0]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("low confidence")
    );
}

#[test]
fn a_small_file_cannot_cause_unbounded_work() {
    let model = require_model!();
    let env = TestHome::new(model);
    let docs = env.folder("bounded");
    // 3.6 MB, 200,000 columns: once 20,496 chunks and ten minutes of embedding; now refused
    // before a row is read.
    let mut wide = (0..200_000)
        .map(|i| format!("c{i}"))
        .collect::<Vec<_>>()
        .join(",");
    wide.push('\n');
    wide.push_str(&vec!["7"; 200_000].join(","));
    write(&docs.join("wide.csv"), wide);
    // A long document under a small chunk bound: indexed up to the bound, with a warning.
    let long: String = (0..400)
        .map(|i| format!("Paragraph {i} of the handbook says the canteen serves meal number {i}.\n\n"))
        .collect();
    write(&docs.join("long.md"), long);
    write(&docs.join("fine.md"), "# Fine\n\nThe library opens at nine.\n");
    let config = env.home.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("max_chunks_per_document = 10000"), "{text}");
    std::fs::write(
        &config,
        text.replace("max_chunks_per_document = 10000", "max_chunks_per_document = 5"),
    )
    .unwrap();

    env.ok(&["kb", "create", "bounded"]);
    env.ok(&["source", "add", "bounded", docs.to_str().unwrap()]);
    let report = env.json(&["sync", "bounded"]);
    let failed = report["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{report}");
    assert_eq!(file_name(failed[0]["uri"].as_str().unwrap()), "wide.csv");
    assert_eq!(failed[0]["code"], "too_wide", "{report}");
    assert!(
        failed[0]["message"].as_str().unwrap().contains("200000 columns"),
        "{report}"
    );
    assert_eq!(report["added"], 2, "{report}");
    assert_eq!(
        report["chunks_written"], 6,
        "5 chunks of long.md and 1 of fine.md: {report}"
    );

    let status = env.json(&["kb", "show", "bounded"]);
    let warnings = status["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{status}");
    assert_eq!(file_name(warnings[0]["uri"].as_str().unwrap()), "long.md");
    let warning = warnings[0]["warnings"][0].as_str().unwrap();
    assert!(
        warning.starts_with("indexed the first 5 of ") && warning.contains("max_chunks_per_document"),
        "{warning}"
    );
    // What was kept is searchable; what was cut is not.
    let hits = env.json(&["search", "bounded", "Paragraph 0", "--search-type", "lexical"]);
    assert_eq!(file_name(&TestHome::hit_uris(&hits)[0]), "long.md", "{hits}");
    let late = env.json(&["search", "bounded", "399", "--search-type", "lexical"]);
    assert!(TestHome::hit_uris(&late).is_empty(), "{late}");
    env.assert_indexes_match_store("bounded");
}
