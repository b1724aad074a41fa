//! Generated inputs for every parser and the sidecar reader: mutations of valid samples of each
//! format, each parsed in isolation under a deadline. Every input must come back as text or a
//! typed error — never a crash of the process, never an escape past the limits. A bounded count
//! runs in `cargo test`; `scripts/fuzz.sh` runs campaigns (`GROUNDWORK_FUZZ_CASES`,
//! `GROUNDWORK_FUZZ_SEED`).

use crate::parse::{W_NS, docx, minimal_pdf};
use groundwork_core::mutate::{FuzzTally, Mutator, cases, seed};
use groundwork_ingest::parse::{ParseError, ParseLimits, parse_isolated, parse_sidecar, sidecar_encoding};
use std::time::Duration;

/// A file name the parser is told, valid samples of its format, and tokens worth inserting.
type Target = (&'static str, Vec<Vec<u8>>, Vec<&'static [u8]>);

/// Samples per format.
fn samples() -> Vec<Target> {
    let text = vec![
        b"The cafeteria opens at eight.\r\nIt closes at six.\n\n\nSecond paragraph.".to_vec(),
        "Caf\u{e9} \u{65e5}\u{672c} \u{1F600}".as_bytes().to_vec(),
        b"\xff\xfeh\x00i\x00".to_vec(),
        b"Caf\xe9 cr\xe8me".to_vec(),
    ];
    let markdown = vec![
        b"# Title\n\nSome *text* with [a link](http://x).\n\n## Section\n\n- item\n- item\n\n```\ncode\n```\n| a | b |\n|---|---|\n| 1 | 2 |\n".to_vec(),
        b"Setext\n======\n\n> quote\n>> nested\n\n1. one\n2. two\n".to_vec(),
    ];
    let html = vec![
        b"<!doctype html><html><head><meta charset=\"utf-8\"><title>T</title><script>x()</script></head><body><h1>Head</h1><p>Para &amp; <b>bold</b></p><table><tr><td>1</td></tr></table></body></html>".to_vec(),
        b"<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=koi8-r\"></head><body><p>\xf4\xd2</p></body></html>".to_vec(),
    ];
    let csv = vec![
        b"name,age,city\n\"Smith, J\",42,\"New\nYork\"\nDoe,,Paris\n".to_vec(),
        b"a;b;c\n1;2;3\n".to_vec(),
    ];
    let tsv = vec![b"a\tb\n1\t2\n\"x\"\t\"y\"\"z\"\n".to_vec()];
    let json = vec![
        br#"{"title": "Handbook", "sections": [{"name": "Leave", "days": 25, "ok": true, "none": null}], "n": 1.5e3}"#.to_vec(),
        br#"[1, "two", {"three": [4, {"five": "six"}]}]"#.to_vec(),
    ];
    let jsonl = vec![b"{\"a\": 1}\n{\"b\": \"two\"}\nnot json\n{\"c\": [3]}\n".to_vec()];
    let pdf = vec![
        minimal_pdf(&["Leave policy", "Page two"]),
        minimal_pdf(&["One page (with parens) and \\\\ escapes"]),
    ];
    let docx = vec![docx(&format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{W_NS}"><w:body><w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Leave</w:t></w:r></w:p><w:p><w:r><w:t xml:space="preserve">Days: </w:t><w:tab/><w:t>25</w:t></w:r></w:p></w:body></w:document>"#
    ))];
    vec![
        (
            "f.txt",
            text,
            vec![b"\r\n", b"\xef\xbb\xbf", b"\x00", b"\xe2\x80\xa8"],
        ),
        (
            "f.md",
            markdown,
            vec![b"#", b"```", b"[", b"](", b"|", b"> ", b"<div>"],
        ),
        (
            "f.html",
            html,
            vec![b"<", b"</", b"<div>", b"<!--", b"&", b"<script>", b"charset="],
        ),
        ("f.csv", csv, vec![b"\"", b",", b"\n", b"\"\""]),
        ("f.tsv", tsv, vec![b"\t", b"\"", b"\n"]),
        (
            "f.json",
            json,
            vec![b"[", b"{", b"\"", b":", b",", b"\\u", b"1e999"],
        ),
        ("f.jsonl", jsonl, vec![b"\n", b"{", b"[", b"\""]),
        (
            "f.pdf",
            pdf,
            vec![
                b" obj",
                b"endobj",
                b"stream\n",
                b"<<",
                b">>",
                b"/Length ",
                b" 0 R",
                b"(",
            ],
        ),
        ("f.docx", docx, vec![b"PK\x03\x04", b"<w:t>", b"</w:p>", b"<w:p>"]),
    ]
}

#[test]
fn generated_inputs_never_crash_a_parser() {
    let limits = ParseLimits {
        timeout: Duration::from_secs(5),
        max_extracted_chars: 2_000_000,
        ..ParseLimits::default()
    };
    let per_format = cases(300);
    let mut all = FuzzTally::new("parsers");
    for (index, (name, samples, tokens)) in samples().into_iter().enumerate() {
        let mut mutator = Mutator::new(seed(7) ^ ((index as u64) << 32), &tokens);
        let mut tally = FuzzTally::new(name);
        for case in 0..per_format {
            let input = mutator.mutate(&samples);
            let size = input.len();
            let result = tally.time(|| parse_isolated(input, name.to_owned(), limits.clone()));
            match result {
                Ok(extracted) => {
                    tally.accepted += 1;
                    let chars = extracted.text.chars().count();
                    assert!(
                        chars <= limits.char_budget(size),
                        "{name} case {case}: {chars} characters from {size} bytes"
                    );
                    assert!(
                        !extracted.text.contains('\0'),
                        "{name} case {case}: a NUL in the text"
                    );
                }
                Err(ParseError::Panic(message)) => {
                    if tally.contained_panics == 0 {
                        eprintln!("{name} case {case}: contained panic: {message}");
                    }
                    tally.contained_panics += 1
                }
                Err(ParseError::Timeout(_)) => tally.hangs += 1,
                Err(_) => tally.refused += 1,
            }
        }
        eprintln!("{}", tally.report());
        all.cases += tally.cases;
        all.accepted += tally.accepted;
        all.refused += tally.refused;
        all.hangs += tally.hangs;
        all.contained_panics += tally.contained_panics;
        all.slowest_ms = all.slowest_ms.max(tally.slowest_ms);
        // Every format's mutations must reach both outcomes, or the generator is not testing it.
        assert!(
            tally.accepted > 0 && tally.refused + tally.contained_panics > 0,
            "{}",
            tally.report()
        );
        // Only the PDF library is known to panic; anything else panicking is our bug.
        if name != "f.pdf" {
            assert_eq!(tally.contained_panics, 0, "{}", tally.report());
        }
    }
    eprintln!("{}", all.report());
}

#[test]
fn generated_sidecars_are_read_or_refused() {
    let samples = vec![
        br#"{"metadataAttributes": {"dept": "hr", "year": 2024, "tags": ["a", "b"]}, "access": {"read": ["group:hr", "user:ann"]}}"#.to_vec(),
        br#"{"metadataAttributes": {"n": {"value": {"type": "NUMBER", "numberValue": 3}}}, "encoding": "koi8-r"}"#.to_vec(),
    ];
    let mut mutator = Mutator::new(
        seed(11),
        &[b"{", b"[", b"\"", b":", b",", b"\\u0000", b"\xef\xbb\xbf"],
    );
    let mut tally = FuzzTally::new("sidecar");
    for _ in 0..cases(2000) {
        let input = mutator.mutate(&samples);
        let result = tally.time(|| (parse_sidecar(&input), sidecar_encoding(&input)));
        match result.0 {
            Ok(_) => tally.accepted += 1,
            Err(_) => tally.refused += 1,
        }
    }
    eprintln!("{}", tally.report());
    assert!(tally.accepted > 0 && tally.refused > 0, "{}", tally.report());
}
