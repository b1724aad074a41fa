//! Tests of `groundwork_ingest::parse`: every format, encodings, hostile inputs, isolation and
//! sidecar metadata.

use std::io::Write;
use std::time::Duration;

use groundwork_ingest::parse::{
    Extracted, Format, HeadingSpan, PageSpan, ParseError, ParseLimits, is_sidecar, parse, parse_isolated,
    parse_sidecar, parser_version, run_isolated,
};
use serde_json::json;

fn ok(bytes: &[u8], path: &str) -> Extracted {
    match parse(bytes, path, &ParseLimits::default()) {
        Ok(e) => e,
        Err(e) => panic!("parse of {path} failed: {e}"),
    }
}

fn err(bytes: &[u8], path: &str, limits: &ParseLimits) -> ParseError {
    match parse(bytes, path, limits) {
        Ok(e) => panic!("parse of {path} unexpectedly succeeded: {e:?}"),
        Err(e) => e,
    }
}

fn heading(level: u8, title: &str, start: usize) -> HeadingSpan {
    HeadingSpan {
        level,
        title: title.to_owned(),
        start,
    }
}

/// Every heading span must point at its title in the text.
fn assert_headings_point_at_titles(e: &Extracted) {
    for h in &e.headings {
        assert!(
            e.text[h.start..].starts_with(&h.title),
            "heading {h:?} does not point at its title in {:?}",
            e.text
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Format detection and metadata

#[test]
fn format_from_path() {
    let cases = [
        ("a/b/notes.TXT", Some(Format::Text)),
        ("x.log", Some(Format::Text)),
        ("README.md", Some(Format::Markdown)),
        ("doc.Markdown", Some(Format::Markdown)),
        ("page.HTM", Some(Format::Html)),
        ("report.pdf", Some(Format::Pdf)),
        ("c:\\docs\\letter.DocX", Some(Format::Docx)),
        ("t.csv", Some(Format::Csv)),
        ("t.tsv", Some(Format::Tsv)),
        ("d.json", Some(Format::Json)),
        ("d.ndjson", Some(Format::Jsonl)),
        ("d.jsonl", Some(Format::Jsonl)),
        ("Makefile", None),
        (".bashrc", None),
        ("dir.v2/file", None),
        ("image.png", None),
    ];
    for (path, expected) in cases {
        assert_eq!(Format::from_path(path), expected, "{path}");
    }
    assert_eq!(serde_json::to_value(Format::Jsonl).unwrap(), json!("jsonl"));
    assert_eq!(
        serde_json::from_value::<Format>(json!("markdown")).unwrap(),
        Format::Markdown
    );
    assert_eq!(parser_version(), "groundwork-parse/1");
}

#[test]
fn error_codes_are_stable() {
    let cases = [
        (ParseError::TooLarge { size: 2, limit: 1 }, "too_large"),
        (ParseError::Empty, "empty"),
        (ParseError::Binary, "binary"),
        (ParseError::Unsupported("x".into()), "unsupported"),
        (ParseError::Corrupt("x".into()), "corrupt"),
        (ParseError::TooDeep { limit: 1 }, "too_deep"),
        (ParseError::ZipBomb("x".into()), "zip_bomb"),
        (ParseError::Timeout(Duration::from_secs(1)), "timeout"),
        (ParseError::Panic("x".into()), "panic"),
        (ParseError::InvalidMetadata("x".into()), "invalid_metadata"),
    ];
    for (e, code) in cases {
        assert_eq!(e.code().as_str(), code);
    }
}

// ---------------------------------------------------------------------------------------------
// Plain text and encodings

#[test]
fn text_is_normalised() {
    let e = ok(
        b"\r\n  first line   \r\nsecond\tline\r\n\r\n\r\n\r\n\r\nthird\x07 line\rfourth\n\n\n",
        "notes.txt",
    );
    assert_eq!(e.format, Format::Text);
    assert_eq!(e.encoding.as_deref(), Some("utf-8"));
    assert_eq!(e.text, "first line\nsecond\tline\n\n\nthird line\nfourth");
    assert!(e.warnings.is_empty(), "{:?}", e.warnings);
    // A NUL in the first 8 KiB means binary; a stray one later is dropped.
    let mut late_nul = "x".repeat(9000).into_bytes();
    late_nul.extend(b"\0y");
    assert_eq!(ok(&late_nul, "n.txt").text, format!("{}y", "x".repeat(9000)));
}

#[test]
fn utf8_bom_is_stripped() {
    let e = ok("\u{feff}héllo wörld".as_bytes(), "a.txt");
    assert_eq!(e.text, "héllo wörld");
    assert_eq!(e.encoding.as_deref(), Some("utf-8"));
}

fn utf16(s: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if bom {
        out.extend(if big_endian { [0xFE, 0xFF] } else { [0xFF, 0xFE] });
    }
    for u in s.encode_utf16() {
        out.extend(if big_endian {
            u.to_be_bytes()
        } else {
            u.to_le_bytes()
        });
    }
    out
}

#[test]
fn utf16_with_bom() {
    let s = "Grüße, 世界! Line two.\r\nLine three 😀";
    let le = ok(&utf16(s, false, true), "w.txt");
    assert_eq!(le.text, "Grüße, 世界! Line two.\nLine three 😀");
    assert_eq!(le.encoding.as_deref(), Some("utf-16le"));
    let be = ok(&utf16(s, true, true), "w.txt");
    assert_eq!(be.text, le.text);
    assert_eq!(be.encoding.as_deref(), Some("utf-16be"));
}

#[test]
fn utf16_without_bom_is_detected_not_binary() {
    let e = ok(
        &utf16("plain ASCII text exported by a Windows tool", false, false),
        "w.txt",
    );
    assert_eq!(e.text, "plain ASCII text exported by a Windows tool");
    assert_eq!(e.encoding.as_deref(), Some("utf-16le"));
}

/// Real text in thirteen legacy encodings (CJK, Cyrillic, Greek, Hebrew, Arabic, Central
/// European, Turkish), written by Python's codecs: each decodes to its exact text, named.
#[test]
fn legacy_encodings_are_detected_and_decoded() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/encodings");
    let expected: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    assert!(expected.len() >= 10);
    let mut wrong = Vec::new();
    for (name, text) in &expected {
        let bytes = std::fs::read(dir.join(format!("{name}.txt"))).unwrap();
        assert!(std::str::from_utf8(&bytes).is_err(), "{name} must not be UTF-8");
        let e = ok(&bytes, &format!("{name}.txt"));
        if e.text != text.as_str().unwrap() {
            wrong.push(format!("{name}: decoded as {:?}: {}", e.encoding, e.text));
        }
        assert!(
            e.warnings.iter().all(|w| !w.contains("U+FFFD")),
            "{name}: {:?}",
            e.warnings
        );
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn declared_encodings_win_over_guessing() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/encodings");
    let html = ok(
        &std::fs::read(dir.join("declared-meta.html")).unwrap(),
        "declared-meta.html",
    );
    assert_eq!(html.encoding.as_deref(), Some("windows-1251"));
    assert!(html.text.contains("Отпуск двадцать дней."), "{}", html.text);
    let xml = ok(
        &std::fs::read(dir.join("declared-decl.xml")).unwrap(),
        "declared-decl.xml",
    );
    assert_eq!(xml.encoding.as_deref(), Some("shift_jis"));
    assert!(xml.text.contains("有給休暇は二十日です。"), "{}", xml.text);
    // A sidecar's label wins over everything inside the bytes; an unknown one is a warning.
    let bytes = std::fs::read(dir.join("ru-windows-1251.txt")).unwrap();
    let forced =
        groundwork_ingest::parse::parse_declared(&bytes, "r.txt", &ParseLimits::default(), Some("koi8-r"))
            .unwrap();
    assert_eq!(forced.encoding.as_deref(), Some("koi8-r"));
    let unknown =
        groundwork_ingest::parse::parse_declared(&bytes, "r.txt", &ParseLimits::default(), Some("klingon"))
            .unwrap();
    assert_eq!(unknown.encoding.as_deref(), Some("windows-1251"));
    assert!(
        unknown.warnings.iter().any(|w| w.contains("klingon")),
        "{:?}",
        unknown.warnings
    );
    assert_eq!(
        groundwork_ingest::parse::sidecar_encoding(br#"{"metadataAttributes": {}, "encoding": "gbk"}"#)
            .as_deref(),
        Some("gbk")
    );
}

#[test]
fn a_guess_of_low_confidence_is_a_warning() {
    // Four high bytes are too little to tell an encoding by: decoded, and said so.
    let e = ok(b"id \xe9\xe8 \xfc\xf1 ok", "short.txt");
    assert!(
        e.warnings.iter().any(|w| w.contains("low confidence")),
        "{:?}",
        e.warnings
    );
}

#[test]
fn latin1_fallback() {
    // "café naïve" in Latin-1, plus Windows-1252 curly quotes and euro sign.
    let e = ok(b"caf\xe9 na\xefve \x93quoted\x94 \x80 5", "l.txt");
    assert_eq!(e.text, "café naïve “quoted” € 5");
    assert_eq!(e.encoding.as_deref(), Some("windows-1252"));
}

#[test]
fn invalid_utf8_is_decoded_by_a_guess_that_says_so() {
    let e = ok(b"ok \xc3\x28 bad", "x.txt");
    assert!(
        e.text.starts_with("ok ") && e.text.ends_with("( bad"),
        "{}",
        e.text
    );
    assert_ne!(e.encoding.as_deref(), Some("utf-8"));
    assert!(
        e.warnings.iter().any(|w| w.contains("low confidence")),
        "{:?}",
        e.warnings
    );
}

#[test]
fn unknown_extension_text_is_parsed_as_text() {
    let e = ok(b"fn main() {}\n", "src/main.rs");
    assert_eq!(e.format, Format::Text);
    assert_eq!(e.text, "fn main() {}");
}

#[test]
fn known_binary_extension_is_unsupported() {
    let e = err(b"\x89PNG\r\n\x1a\n....", "img.png", &ParseLimits::default());
    assert_eq!(e.code().as_str(), "unsupported");
}

// ---------------------------------------------------------------------------------------------
// Markdown

#[test]
fn markdown_strips_markup_and_records_headings() {
    let md = "\
# Guide to *Groundwork*

Some **bold** and _italic_ text with a [link](https://example.com) and ![logo](l.png).
Keep snake_case and 2 * 3 as written; `code span` too.

Setext Title
============

> quoted line

```rust
let x = *y;
```

- item one
- item [two][ref]

[ref]: https://example.com/ref

## Closing ##
Done.
";
    let e = ok(md.as_bytes(), "guide.md");
    assert_eq!(e.format, Format::Markdown);
    assert_eq!(
        e.text,
        "\
Guide to Groundwork

Some bold and italic text with a link and logo.
Keep snake_case and 2 * 3 as written; code span too.

Setext Title

quoted line

let x = *y;

- item one
- item two

Closing

Done."
    );
    assert_eq!(
        e.headings,
        vec![
            heading(1, "Guide to Groundwork", 0),
            heading(1, "Setext Title", 123),
            heading(2, "Closing", 186),
        ]
    );
    assert_headings_point_at_titles(&e);
}

#[test]
fn markdown_hostile_nesting_is_linear() {
    let md = format!("{}x{}", "[".repeat(100_000), "](u)".repeat(100_000));
    let e = ok(md.as_bytes(), "n.md");
    assert_eq!(e.text, "x");
    let md = format!("{}x", "[".repeat(200_000));
    let e = ok(md.as_bytes(), "n.md");
    assert!(e.text.ends_with("[[x"));
    let ticks: String = (1..2000).map(|n| "`".repeat(n % 50 + 1) + " ").collect();
    ok(ticks.as_bytes(), "t.md");
}

// ---------------------------------------------------------------------------------------------
// HTML

#[test]
fn html_extracts_text_headings_and_drops_scripts() {
    let html = r#"<!DOCTYPE html>
<html><head><title>The  Title</title>
<style>body { color: red }</style>
<script>var x = "<p>not text</p>";</script></head>
<body>
<!-- a comment -->
<h1>Main &amp; Only</h1>
<p>First   paragraph
with <b>bold</b> text&nbsp;and &eacute;&#233;&#x41;.</p>
<ul><li>one</li><li>two</li></ul>
<h2 class="x">Sub</h2>
<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>
<pre>  keep
   spacing</pre>
<p>Line<br>break</p>
</body></html>"#;
    let e = ok(html.as_bytes(), "page.html");
    assert_eq!(e.format, Format::Html);
    assert_eq!(
        e.text,
        "\
The Title

Main & Only

First paragraph with bold text and ééA.

- one
- two

Sub

a | b
1 | 2

  keep
   spacing

Line
break"
    );
    assert_eq!(
        e.headings,
        vec![
            heading(0, "The Title", 0),
            heading(1, "Main & Only", 11),
            heading(2, "Sub", 80),
        ]
    );
    assert_headings_point_at_titles(&e);
}

// ---------------------------------------------------------------------------------------------
// CSV / TSV

#[test]
fn csv_rows_are_self_describing() {
    let csv = "name,city,note\r\n\
               Ada,London,\"likes \"\"math\"\", engines\"\r\n\
               Bob,,\"multi\r\nline\"\r\n\
               \r\n\
               Eve,Paris,x,extra\r\n";
    let e = ok(csv.as_bytes(), "people.csv");
    assert_eq!(e.format, Format::Csv);
    assert_eq!(
        e.text,
        "\
name: Ada; city: London; note: likes \"math\", engines
name: Bob; note: multi line
name: Eve; city: Paris; note: x; column 4: extra"
    );
    assert!(e.warnings.is_empty(), "{:?}", e.warnings);
}

#[test]
fn csv_semicolon_tsv_and_unterminated_quote() {
    let e = ok("Name;Preis\nBrot;2,50\n".as_bytes(), "p.csv");
    assert_eq!(e.text, "Name: Brot; Preis: 2,50");
    let e = ok(b"a\tb\n1\t2\n3\t\"4\n", "t.tsv");
    assert_eq!(e.format, Format::Tsv);
    assert_eq!(e.text, "a: 1; b: 2\na: 3; b: 4");
    assert_eq!(e.warnings, vec!["unterminated quoted field at end of file"]);
}

// ---------------------------------------------------------------------------------------------
// JSON / JSONL

#[test]
fn json_is_flattened_to_paths() {
    let doc = r#"{"title": "Handbook", "meta": {"year": 2024, "draft": false, "tags": ["hr", "policy"]},
                  "odd key": null, "empty": [], "sections": [{"h": "Leave", "days": 25.5}]}"#;
    let e = ok(doc.as_bytes(), "h.json");
    assert_eq!(e.format, Format::Json);
    assert_eq!(
        e.text,
        "\
title: Handbook
meta.year: 2024
meta.draft: false
meta.tags[0]: hr
meta.tags[1]: policy
[\"odd key\"]: null
empty: []
sections[0].h: Leave
sections[0].days: 25.5"
    );
}

#[test]
fn jsonl_skips_bad_lines() {
    let doc = "{\"id\": 1, \"text\": \"one\"}\nnot json\n\n{\"id\": 2, \"text\": \"two\"}\n[[[[1]]]]\n";
    let limits = ParseLimits {
        max_json_depth: 3,
        ..ParseLimits::default()
    };
    let e = parse(doc.as_bytes(), "r.jsonl", &limits).unwrap();
    assert_eq!(e.format, Format::Jsonl);
    assert_eq!(e.text, "id: 1\ntext: one\n\nid: 2\ntext: two");
    assert_eq!(
        e.warnings,
        vec!["skipped 2 invalid JSON line(s) (first at line 2)"]
    );
    let e = err(b"nope\nnope\n", "r.jsonl", &limits);
    assert_eq!(e.code().as_str(), "corrupt");
}

#[test]
fn deeply_nested_json_is_rejected_without_overflow() {
    let deep = vec![b'['; 1_000_000];
    let e = err(&deep, "deep.json", &ParseLimits::default());
    assert_eq!(e, ParseError::TooDeep { limit: 64 });
    // Brackets inside strings do not count.
    let in_string = format!("{{\"k\": \"{}\"}}", "[".repeat(1000));
    let e = ok(in_string.as_bytes(), "s.json");
    assert!(e.text.starts_with("k: [[["));
    // Limits above serde_json's own recursion limit still fail cleanly.
    let limits = ParseLimits {
        max_json_depth: 10_000,
        ..ParseLimits::default()
    };
    let e = err(&deep[..5000], "deep.json", &limits);
    assert_eq!(e.code().as_str(), "too_deep");
    let e = err(b"{\"a\": ", "broken.json", &ParseLimits::default());
    assert_eq!(e.code().as_str(), "corrupt");
}

// ---------------------------------------------------------------------------------------------
// DOCX

pub(crate) fn docx(document_xml: &str) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("[Content_Types].xml", opts).unwrap();
    zip.write_all(br#"<?xml version="1.0"?><Types/>"#).unwrap();
    zip.start_file("word/document.xml", opts).unwrap();
    zip.write_all(document_xml.as_bytes()).unwrap();
    zip.finish().unwrap().into_inner()
}

pub(crate) const W_NS: &str = "http://schemas.openxmlformats.org/wordprocessingml/2006/main";

#[test]
fn docx_text_tabs_breaks_and_headings() {
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="{W_NS}"><w:body>
<w:p><w:pPr><w:pStyle w:val="Title"/></w:pPr><w:r><w:t>Employee Handbook</w:t></w:r></w:p>
<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Leave &amp; Holidays</w:t></w:r></w:p>
<w:p><w:r><w:t xml:space="preserve">Days:</w:t><w:tab/><w:t>25</w:t></w:r><w:r><w:br/><w:t>Second line</w:t></w:r></w:p>
<w:p><w:r><w:delText>deleted</w:delText><w:t>Split </w:t></w:r><w:r><w:t>run.</w:t></w:r></w:p>
<w:p/>
<w:p><w:pPr><w:outlineLvl w:val="1"/></w:pPr><w:r><w:t>Outline heading</w:t></w:r></w:p>
<w:p><w:r><w:t>End.</w:t></w:r></w:p>
</w:body></w:document>"#
    );
    let e = ok(&docx(&xml), "handbook.docx");
    assert_eq!(e.format, Format::Docx);
    assert_eq!(e.encoding, None);
    assert_eq!(
        e.text,
        "\
Employee Handbook

Leave & Holidays

Days:\t25
Second line
Split run.

Outline heading

End."
    );
    assert_eq!(
        e.headings,
        vec![
            heading(0, "Employee Handbook", 0),
            heading(1, "Leave & Holidays", 19),
            heading(2, "Outline heading", 70),
        ]
    );
    assert_headings_point_at_titles(&e);
}

#[test]
fn docx_errors() {
    // A ZIP that is not a DOCX.
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("other.txt", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"hi").unwrap();
    let not_docx = zip.finish().unwrap().into_inner();
    assert_eq!(
        err(&not_docx, "x.docx", &ParseLimits::default()).code().as_str(),
        "unsupported"
    );
    // Truncated archive.
    let good = docx("<w:document/>");
    assert_eq!(
        err(&good[..good.len() / 2], "x.docx", &ParseLimits::default())
            .code()
            .as_str(),
        "corrupt"
    );
    // Not a ZIP at all.
    assert_eq!(
        err(b"hello", "x.docx", &ParseLimits::default()).code().as_str(),
        "corrupt"
    );
    // Malformed XML.
    assert_eq!(
        err(
            &docx("<w:document><w:p></w:x>"),
            "x.docx",
            &ParseLimits::default()
        )
        .code()
        .as_str(),
        "corrupt"
    );
}

/// A DOCX whose document.xml is `size` bytes of zeros, written in 1 MiB pieces so the test
/// never holds the decompressed data.
fn zeros_docx(size: usize) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("word/document.xml", opts).unwrap();
    let block = vec![0u8; 1 << 20];
    for _ in 0..size / block.len() {
        zip.write_all(&block).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

#[test]
fn zip_bomb_docx_is_rejected() {
    let bomb = zeros_docx(500 << 20);
    assert!(bomb.len() < 2 << 20, "bomb is {} bytes", bomb.len());
    let e = err(&bomb, "bomb.docx", &ParseLimits::default());
    assert_eq!(e.code().as_str(), "zip_bomb", "{e}");
}

/// Patches every declared uncompressed size of a single-entry ZIP to `size`.
fn lie_about_size(zip: &mut [u8], size: u32) {
    for (sig, offset) in [(b"PK\x03\x04", 22), (b"PK\x01\x02", 24)] {
        let pos = zip.windows(4).position(|w| w == sig).expect("signature present");
        zip[pos + offset..pos + offset + 4].copy_from_slice(&size.to_le_bytes());
    }
}

#[test]
fn zip_bomb_with_lying_header_stays_bounded() {
    let mut bomb = zeros_docx(200 << 20);
    lie_about_size(&mut bomb, 1000);
    let e = err(&bomb, "liar.docx", &ParseLimits::default());
    assert_eq!(e.code().as_str(), "zip_bomb", "{e}");
}

// ---------------------------------------------------------------------------------------------
// PDF

/// A minimal valid PDF with one Helvetica text line per page.
pub(crate) fn minimal_pdf(pages: &[&str]) -> Vec<u8> {
    let contents: Vec<String> = pages
        .iter()
        .map(|text| format!("BT /F1 24 Tf 72 720 Td ({text}) Tj ET"))
        .collect();
    pdf_from_contents(&contents)
}

/// A structurally valid PDF with the given page content streams (font `/F1` is Helvetica).
fn pdf_from_contents(pages: &[String]) -> Vec<u8> {
    let n = pages.len();
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 4 + 2 * i)).collect();
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_owned(),
    ];
    for (i, content) in pages.iter().enumerate() {
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] \
             /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
            5 + 2 * i
        ));
        objects.push(format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ));
    }
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n{o}\nendobj\n", i + 1).bytes());
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).bytes());
    for off in offsets {
        out.extend(format!("{off:010} 00000 n \n").bytes());
    }
    out.extend(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .bytes(),
    );
    out
}

#[test]
fn pdf_pages_are_recorded() {
    let pdf = minimal_pdf(&["Hello first page.", "Second page here."]);
    let e = ok(&pdf, "two.pdf");
    assert_eq!(e.format, Format::Pdf);
    assert_eq!(e.encoding, None);
    assert_eq!(e.pages.len(), 2, "{e:?}");
    assert_eq!(e.pages[0], PageSpan { page: 1, start: 0 });
    assert_eq!(e.pages[1].page, 2);
    assert!(e.text.contains("Hello first page."), "{:?}", e.text);
    assert!(
        e.text[e.pages[1].start..].starts_with("Second page here."),
        "{:?}",
        e.text
    );
}

#[test]
fn truncated_or_garbage_pdf_is_an_error_not_a_crash() {
    let pdf = minimal_pdf(&["Hello first page."]);
    for cut in [10, pdf.len() / 3, pdf.len() / 2, pdf.len() - 40] {
        let r = parse_isolated(pdf[..cut].to_vec(), "t.pdf".into(), ParseLimits::default());
        match r {
            Err(e) => assert!(
                matches!(e.code().as_str(), "corrupt" | "panic"),
                "cut at {cut}: unexpected {e:?}"
            ),
            // lopdf may recover a document without an xref table; that is fine too.
            Ok(e) => assert_eq!(e.format, Format::Pdf),
        }
    }
    let e = err(b"%PDF-1.7\n\x00\x01garbage", "g.pdf", &ParseLimits::default());
    assert!(matches!(e.code().as_str(), "corrupt" | "panic"), "{e:?}");
    // A .pdf without a PDF header.
    let e = err(b"just text", "fake.pdf", &ParseLimits::default());
    assert_eq!(e.code().as_str(), "corrupt");
}

#[test]
fn pdf_library_panic_is_contained() {
    // pdf-extract panics on a content stream that uses an undefined font.
    let pdf = pdf_from_contents(&["BT /F9 24 Tf (Hi) Tj ET".to_owned()]);
    let e = err(&pdf, "undefined-font.pdf", &ParseLimits::default());
    assert_eq!(e, ParseError::Panic("F9".to_owned()));
    let r = parse_isolated(pdf, "undefined-font.pdf".into(), ParseLimits::default());
    assert_eq!(r, Err(ParseError::Panic("F9".to_owned())));
    // Text-showing operator without operands.
    let pdf = pdf_from_contents(&["BT Tf (Hi) Tj ET".to_owned()]);
    let r = parse_isolated(pdf, "no-operands.pdf".into(), ParseLimits::default());
    assert_eq!(r.unwrap_err().code().as_str(), "panic");
}

// ---------------------------------------------------------------------------------------------
// Hostile inputs and limits

#[test]
fn binary_junk_named_txt_is_binary() {
    let junk: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert_eq!(
        err(&junk, "junk.txt", &ParseLimits::default()),
        ParseError::Binary
    );
    // Control characters without NULs.
    let controls: Vec<u8> = b"\x01\x02\x03\x04abc".repeat(100);
    assert_eq!(
        err(&controls, "c.txt", &ParseLimits::default()),
        ParseError::Binary
    );
    // Unknown extension with binary content.
    assert_eq!(
        err(&junk, "blob.xyz", &ParseLimits::default()).code().as_str(),
        "unsupported"
    );
}

#[test]
fn oversized_input_is_rejected_before_work() {
    let limits = ParseLimits {
        max_bytes: 1 << 20,
        ..ParseLimits::default()
    };
    let data = vec![b'a'; 2 << 20];
    assert_eq!(
        err(&data, "big.txt", &limits),
        ParseError::TooLarge {
            size: 2 << 20,
            limit: 1 << 20
        }
    );
}

#[test]
fn extracted_text_is_capped() {
    let limits = ParseLimits {
        max_extracted_chars: 10,
        ..ParseLimits::default()
    };
    let e = parse("ééééé ééééé ééééé".as_bytes(), "a.txt", &limits).unwrap();
    assert_eq!(e.text, "ééééé éééé");
    assert_eq!(
        e.warnings,
        vec!["extracted text truncated at 10 characters: [ingest] max_extracted_chars"]
    );
}

#[test]
fn a_small_file_cannot_expand_past_its_character_budget() {
    // Long header names over one-character values: every row repeats the names.
    let names: Vec<String> = (0..50).map(|i| format!("{}_{i:02}", "x".repeat(80))).collect();
    let mut csv = names.join(",");
    csv.push('\n');
    for _ in 0..2_000 {
        csv.push_str(&vec!["1"; 50].join(","));
        csv.push('\n');
    }
    let limits = ParseLimits::default();
    let e = parse(csv.as_bytes(), "wide-names.csv", &limits).unwrap();
    let budget = csv.len() * limits.max_chars_per_byte;
    assert!(budget < limits.max_extracted_chars);
    let kept = e.text.chars().count();
    assert!(
        kept <= budget && kept > budget - 100,
        "cut at the budget: {kept} of {budget}"
    );
    assert_eq!(
        e.warnings,
        vec![format!(
            "extracted text truncated at {budget} characters: 32 per input byte ([ingest] max_chars_per_byte)"
        )]
    );
    // A tiny file still gets the floor.
    assert_eq!(limits.char_budget(10), groundwork_ingest::parse::MIN_CHAR_BUDGET);
    // Ordinary text is nowhere near its budget.
    let plain = "The cafeteria opens at eight. ".repeat(1000);
    assert!(
        parse(plain.as_bytes(), "p.txt", &limits)
            .unwrap()
            .warnings
            .is_empty()
    );
}

#[test]
fn a_ragged_row_with_an_empty_extra_field_is_read() {
    // Found by the generated-input test: the fourth field of a two-column file, after an
    // empty third, indexed past the header names.
    let e = parse(b"a,b\n1,2,,4\n", "ragged.csv", &ParseLimits::default()).unwrap();
    assert_eq!(e.text, "a: 1; b: 2; column 4: 4");
}

#[test]
fn table_files_are_bounded_in_columns_and_cells() {
    let limits = ParseLimits {
        max_table_columns: 100,
        max_table_cells: 1_000,
        ..ParseLimits::default()
    };
    // Too wide in the header: fails before any row.
    let wide = format!(
        "{}\n1,2\n",
        (0..101).map(|i| format!("c{i}")).collect::<Vec<_>>().join(",")
    );
    let e = err(wide.as_bytes(), "wide.csv", &limits);
    assert_eq!(
        e,
        ParseError::TooWide {
            columns: 101,
            limit: 100
        }
    );
    assert_eq!(e.code().as_str(), "too_wide");
    // Or in a later row (TSV too).
    let ragged = format!("a\tb\n1\t2\n{}\n", vec!["x"; 150].join("\t"));
    assert_eq!(
        err(ragged.as_bytes(), "ragged.tsv", &limits),
        ParseError::TooWide {
            columns: 150,
            limit: 100
        }
    );
    // Cells: 10 columns, 1,000 cells = the header and 99 rows; the rest is cut with a warning.
    let mut long = (0..10).map(|i| format!("c{i}")).collect::<Vec<_>>().join(",");
    long.push('\n');
    for row in 0..500 {
        long.push_str(
            &(0..10)
                .map(|c| format!("{row}-{c}"))
                .collect::<Vec<_>>()
                .join(","),
        );
        long.push('\n');
    }
    let e = parse(long.as_bytes(), "long.csv", &limits).unwrap();
    assert_eq!(e.text.lines().count(), 99, "{}", e.text);
    assert!(e.text.ends_with("c9: 98-9"), "{}", &e.text[e.text.len() - 40..]);
    assert_eq!(
        e.warnings,
        vec!["table cut after 99 rows: more than 1000 cells ([ingest] max_table_cells)"]
    );
    // The defaults keep a 200,000-column file out.
    let huge = vec!["v"; 200_000].join(",");
    assert_eq!(
        err(huge.as_bytes(), "huge.csv", &ParseLimits::default())
            .code()
            .as_str(),
        "too_wide"
    );
}

#[test]
fn empty_inputs() {
    let limits = ParseLimits::default();
    assert_eq!(err(b"", "e.txt", &limits), ParseError::Empty);
    assert_eq!(err(b"", "e.pdf", &limits), ParseError::Empty);
    assert_eq!(err(b" \r\n\t\n", "e.md", &limits), ParseError::Empty);
    assert_eq!(err(b"\xEF\xBB\xBF", "e.txt", &limits), ParseError::Empty);
}

#[test]
fn mislabeled_pdf_is_sniffed() {
    let pdf = minimal_pdf(&["Sniffed text."]);
    let e = ok(&pdf, "actually-a-pdf.txt");
    assert_eq!(e.format, Format::Pdf);
    assert_eq!(e.warnings, vec!["content is a PDF despite the text extension"]);
    let e = ok(&pdf, "no-extension");
    assert_eq!(e.format, Format::Pdf);
}

// ---------------------------------------------------------------------------------------------
// Isolation

#[test]
fn isolated_parse_succeeds() {
    let e = parse_isolated(b"hello".to_vec(), "a.txt".into(), ParseLimits::default()).unwrap();
    assert_eq!(e.text, "hello");
    let e = parse_isolated(Vec::new(), "a.txt".into(), ParseLimits::default());
    assert_eq!(e, Err(ParseError::Empty));
}

#[test]
fn isolated_panic_becomes_error() {
    let r = run_isolated(Duration::from_secs(5), || panic!("boom in parser"));
    assert_eq!(r, Err(ParseError::Panic("boom in parser".to_owned())));
    let r = run_isolated(Duration::from_secs(5), || {
        let v: Vec<u8> = Vec::new();
        let i = v.len() + 3;
        Ok(Extracted {
            text: v[i].to_string(),
            format: Format::Text,
            encoding: None,
            pages: Vec::new(),
            headings: Vec::new(),
            warnings: Vec::new(),
        })
    });
    assert_eq!(r.unwrap_err().code().as_str(), "panic");
}

#[test]
fn isolated_timeout_abandons_the_thread() {
    let started = std::time::Instant::now();
    let r = run_isolated(Duration::from_millis(100), || {
        std::thread::sleep(Duration::from_secs(2));
        Err(ParseError::Empty)
    });
    assert_eq!(r, Err(ParseError::Timeout(Duration::from_millis(100))));
    assert!(started.elapsed() < Duration::from_secs(1));
}

// ---------------------------------------------------------------------------------------------
// Sidecar metadata

#[test]
fn sidecar_plain_and_typed_forms() {
    let plain = br#"{"metadataAttributes": {"department": "hr", "year": 2024, "tags": ["a","b"], "public": true, "gone": null}}"#;
    let m = parse_sidecar(plain).unwrap();
    assert_eq!(
        serde_json::Value::Object(m),
        json!({"department": "hr", "year": 2024, "tags": ["a", "b"], "public": true})
    );
    let typed = br#"{"metadataAttributes": {
        "department": {"value": {"type": "STRING", "stringValue": "hr"}, "includeForEmbedding": true},
        "year": {"value": {"type": "NUMBER", "numberValue": 2024}},
        "public": {"value": {"type": "BOOLEAN", "booleanValue": false}},
        "tags": {"value": {"type": "STRING_LIST", "stringListValue": ["x", "y"]}, "includeForEmbedding": false}
    }}"#;
    let m = parse_sidecar(typed).unwrap();
    assert_eq!(
        serde_json::Value::Object(m),
        json!({"department": "hr", "year": 2024, "public": false, "tags": ["x", "y"]})
    );
}

#[test]
fn sidecar_errors() {
    let big = format!(
        r#"{{"metadataAttributes": {{"k": "{}"}}}}"#,
        "x".repeat(11 * 1024)
    );
    assert_eq!(
        parse_sidecar(big.as_bytes()).unwrap_err().code().as_str(),
        "too_large"
    );
    for bad in [
        &b"not json"[..],
        b"[]",
        b"{}",
        br#"{"metadataAttributes": []}"#,
        br#"{"metadataAttributes": {"k": {"nested": 1}}}"#,
        br#"{"metadataAttributes": {"k": [1, 2]}}"#,
        br#"{"metadataAttributes": {"k": {"value": {"type": "DATE", "stringValue": "x"}}}}"#,
        br#"{"metadataAttributes": {"k": {"value": {"type": "NUMBER", "stringValue": "x"}}}}"#,
    ] {
        let e = parse_sidecar(bad).unwrap_err();
        assert_eq!(
            e.code().as_str(),
            "invalid_metadata",
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn sidecar_paths() {
    assert!(is_sidecar("docs/report.pdf.metadata.json"));
    assert!(is_sidecar("A.METADATA.JSON"));
    assert!(!is_sidecar("report.json"));
    assert!(!is_sidecar(".metadata.json"));
    assert!(!is_sidecar("metadata.json"));
}
