//! Tests of `groundwork_ingest::chunk` with a simple word/punctuation tokenizer (the real model
//! tokenizer is tested with the embedding crate).

use groundwork_ingest::chunk::{
    ChunkDraft, ChunkingStrategy, DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP_TOKENS, Tokenize, chunk,
    split_segments, token_spans_in_pieces,
};
use groundwork_ingest::parse::{Extracted, Format, HeadingSpan, PageSpan, ParseLimits, parse};
use serde_json::json;

/// Tokens: maximal runs of alphanumeric characters, and each other non-whitespace character.
struct WordTokenizer;

impl Tokenize for WordTokenizer {
    fn token_spans(&self, text: &str) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut word: Option<usize> = None;
        for (i, c) in text.char_indices() {
            if c.is_alphanumeric() {
                word.get_or_insert(i);
                continue;
            }
            if let Some(s) = word.take() {
                out.push((s, i));
            }
            if !c.is_whitespace() {
                out.push((i, i + c.len_utf8()));
            }
        }
        if let Some(s) = word {
            out.push((s, text.len()));
        }
        out
    }
}

fn tokens(s: &str) -> usize {
    WordTokenizer.token_spans(s).len()
}

fn doc(text: &str) -> Extracted {
    Extracted {
        text: text.to_owned(),
        format: Format::Text,
        encoding: Some("utf-8".to_owned()),
        pages: Vec::new(),
        headings: Vec::new(),
        warnings: Vec::new(),
    }
}

fn default(max_tokens: usize, overlap_tokens: usize) -> ChunkingStrategy {
    ChunkingStrategy::Default {
        max_tokens,
        overlap_tokens,
    }
}

/// The invariants every chunk must satisfy.
fn check_invariants(e: &Extracted, chunks: &[ChunkDraft]) {
    for c in chunks {
        assert!(e.text.is_char_boundary(c.start) && e.text.is_char_boundary(c.end));
        assert_eq!(&e.text[c.start..c.end], c.text);
        assert_eq!(c.text.trim(), c.text, "not trimmed: {:?}", c.text);
        assert!(!c.text.is_empty());
        assert_eq!(c.char_start, e.text[..c.start].chars().count());
        assert_eq!(c.char_end, e.text[..c.end].chars().count());
        assert_eq!(c.token_count, tokens(&c.text));
    }
    for w in chunks.windows(2) {
        assert!(w[0].start <= w[1].start, "chunks out of order");
    }
}

/// The text is fully covered: every non-whitespace byte lies in some chunk.
fn check_coverage(e: &Extracted, chunks: &[ChunkDraft]) {
    let mut covered = vec![false; e.text.len()];
    for c in chunks {
        covered[c.start..c.end].iter_mut().for_each(|b| *b = true);
    }
    for (i, ch) in e.text.char_indices() {
        assert!(
            ch.is_whitespace() || covered[i],
            "byte {i} ({ch:?}) not in any chunk"
        );
    }
}

fn texts(chunks: &[ChunkDraft]) -> Vec<&str> {
    chunks.iter().map(|c| c.text.as_str()).collect()
}

#[test]
fn sentence_splitter_handles_abbreviations_and_decimals() {
    let text = "Dr. Smith paid 3.14 dollars, e.g. for tea. He left! Did J. R. Doe come? \
                \"Yes,\" she said. See Fig. 2 for details. The U.S. Army arrived. \
                It costs approx. 5 units... Then it ended.\n\
                A wrapped line that continues\non the next line. New para\n\nhere.";
    let cuts = split_segments(text, &[], false);
    let sentences: Vec<&str> = cuts
        .iter()
        .enumerate()
        .map(|(k, &(s, _))| text[s..cuts.get(k + 1).map_or(text.len(), |c| c.0)].trim())
        .collect();
    assert_eq!(
        sentences,
        vec![
            "Dr. Smith paid 3.14 dollars, e.g. for tea.",
            "He left!",
            "Did J. R. Doe come?",
            "\"Yes,\" she said.",
            "See Fig. 2 for details.",
            "The U.S. Army arrived.",
            "It costs approx. 5 units...",
            "Then it ended.",
            "A wrapped line that continues\non the next line.",
            "New para",
            "here.",
        ]
    );
}

#[test]
fn cjk_sentences_split_without_spaces() {
    let text = "今日は晴れです。明日は雨でしょう！本当？";
    let cuts = split_segments(text, &[], false);
    assert_eq!(cuts.len(), 3);
}

#[test]
fn default_packs_sentences_with_overlap() {
    // Each sentence is 5 tokens ("Sentence number N ends ." -> 4 words + '.').
    let text: String = (1..=20)
        .map(|i| format!("Sentence number {i} ends."))
        .collect::<Vec<_>>()
        .join(" ");
    let e = doc(&text);
    let chunks = chunk(&e, &default(20, 5), &WordTokenizer);
    check_invariants(&e, &chunks);
    check_coverage(&e, &chunks);
    for c in &chunks {
        assert!(c.token_count <= 20, "{c:?}");
        assert!(c.text.ends_with("ends."), "chunk ends mid-sentence: {:?}", c.text);
        assert!(c.text.starts_with("Sentence"), "{:?}", c.text);
    }
    // 4 sentences per chunk, the last sentence of each chunk repeated in the next.
    assert_eq!(
        texts(&chunks[..2]),
        vec![
            "Sentence number 1 ends. Sentence number 2 ends. Sentence number 3 ends. Sentence number 4 ends.",
            "Sentence number 4 ends. Sentence number 5 ends. Sentence number 6 ends. Sentence number 7 ends.",
        ]
    );
    assert_eq!(chunks.len(), 7);
    assert!(chunks.last().unwrap().text.ends_with("Sentence number 20 ends."));
    for w in chunks.windows(2) {
        assert!(
            w[1].start < w[0].end,
            "no overlap between {:?} and {:?}",
            w[0],
            w[1]
        );
    }
    // Without overlap the chunks tile the text.
    let chunks = chunk(&e, &default(20, 0), &WordTokenizer);
    assert_eq!(chunks.len(), 5);
    for w in chunks.windows(2) {
        assert!(w[1].start > w[0].end);
    }
}

#[test]
fn long_sentence_is_cut_at_token_boundaries() {
    let text = format!(
        "Short one. {} end. Tail sentence.",
        "Words ".repeat(95).trim_end()
    );
    let e = doc(&text);
    let chunks = chunk(&e, &default(30, 6), &WordTokenizer);
    check_invariants(&e, &chunks);
    check_coverage(&e, &chunks);
    assert!(chunks.iter().all(|c| c.token_count <= 30));
    assert_eq!(chunks[0].text, "Short one.");
    assert_eq!(chunks.last().unwrap().text, "Tail sentence.");
    assert!(chunks.len() >= 5);
}

#[test]
fn headings_start_chunks_and_are_attributed() {
    let md = "# Intro\n\nFirst section text. It has two sentences.\n\n## Details\n\nDetail one. Detail two.\n\n## Empty\n## Last\n\nFinal words.";
    let e = parse(md.as_bytes(), "d.md", &ParseLimits::default()).unwrap();
    assert_eq!(e.headings.len(), 4);
    let chunks = chunk(&e, &ChunkingStrategy::default(), &WordTokenizer);
    check_invariants(&e, &chunks);
    check_coverage(&e, &chunks);
    let got: Vec<(&str, Option<&str>)> = chunks
        .iter()
        .map(|c| (c.text.as_str(), c.heading.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "Intro\n\nFirst section text. It has two sentences.",
                Some("Intro")
            ),
            ("Details\n\nDetail one. Detail two.", Some("Details")),
            ("Empty\n\nLast\n\nFinal words.", Some("Last")),
        ]
    );
}

#[test]
fn pages_are_attributed_by_chunk_start() {
    let text = "Page one text. More of page one.\n\nPage two starts here. And continues.";
    let mut e = doc(text);
    e.format = Format::Pdf;
    e.pages = vec![
        PageSpan { page: 1, start: 0 },
        PageSpan {
            page: 2,
            start: text.find("Page two").unwrap(),
        },
    ];
    let chunks = chunk(&e, &default(8, 0), &WordTokenizer);
    check_invariants(&e, &chunks);
    let pages: Vec<(&str, Option<u32>)> = chunks.iter().map(|c| (c.text.as_str(), c.page)).collect();
    assert_eq!(
        pages,
        vec![
            ("Page one text.", Some(1)),
            ("More of page one.", Some(1)),
            ("Page two starts here. And continues.", Some(2)),
        ]
    );
}

#[test]
fn line_oriented_formats_split_on_every_line() {
    let e = parse(
        b"name,age\nAda,36\nBob,41\nCy,29\n",
        "p.csv",
        &ParseLimits::default(),
    )
    .unwrap();
    let chunks = chunk(&e, &default(9, 0), &WordTokenizer);
    check_invariants(&e, &chunks);
    assert_eq!(
        texts(&chunks),
        vec!["name: Ada; age: 36", "name: Bob; age: 41", "name: Cy; age: 29"]
    );
}

#[test]
fn none_strategy_is_one_chunk() {
    let text = format!("  {}  ", "long text. ".repeat(2000));
    let e = doc(&text);
    let chunks = chunk(&e, &ChunkingStrategy::None, &WordTokenizer);
    assert_eq!(chunks.len(), 1);
    check_invariants(&e, &chunks);
    assert_eq!(chunks[0].text, text.trim());
    assert_eq!(chunks[0].token_count, 6000);
}

#[test]
fn fixed_size_windows() {
    let text: String = (0..100).map(|i| format!("w{i} ")).collect();
    let e = doc(text.trim());
    let chunks = chunk(
        &e,
        &ChunkingStrategy::FixedSize {
            max_tokens: 10,
            overlap_percent: 20,
        },
        &WordTokenizer,
    );
    check_invariants(&e, &chunks);
    check_coverage(&e, &chunks);
    // Windows start every 8 tokens: 0, 8, ..., 96.
    assert_eq!(chunks.len(), 13);
    assert!(chunks[..12].iter().all(|c| c.token_count == 10));
    assert_eq!(chunks[0].text, "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9");
    assert_eq!(chunks[1].text, "w8 w9 w10 w11 w12 w13 w14 w15 w16 w17");
    assert_eq!(chunks[12].text, "w96 w97 w98 w99");
}

#[test]
fn unicode_text_never_splits_inside_a_character() {
    let unit = "Ünïcödé téxt wïth émojis 😀🎉 and 中文字符。Ελληνικά κείμενα! Ещё русский текст? ";
    let text = unit.repeat(60);
    let e = doc(text.trim());
    for strategy in [
        default(7, 3),
        default(40, 10),
        ChunkingStrategy::FixedSize {
            max_tokens: 5,
            overlap_percent: 50,
        },
        ChunkingStrategy::None,
    ] {
        let chunks = chunk(&e, &strategy, &WordTokenizer);
        assert!(!chunks.is_empty());
        check_invariants(&e, &chunks);
        check_coverage(&e, &chunks);
    }
}

/// A tokenizer whose spans cut characters in half must not make chunks do so.
struct ByteTokenizer;

impl Tokenize for ByteTokenizer {
    fn token_spans(&self, text: &str) -> Vec<(usize, usize)> {
        (0..text.len())
            .step_by(3)
            .map(|i| (i, (i + 3).min(text.len())))
            .collect()
    }
}

#[test]
fn misaligned_token_spans_are_snapped() {
    let e = doc("ééééé ééééé ééééé ééééé");
    let chunks = chunk(
        &e,
        &ChunkingStrategy::FixedSize {
            max_tokens: 2,
            overlap_percent: 0,
        },
        &ByteTokenizer,
    );
    assert!(!chunks.is_empty());
    for c in &chunks {
        assert_eq!(&e.text[c.start..c.end], c.text);
    }
}

#[test]
fn empty_text_gives_no_chunks() {
    for strategy in [
        ChunkingStrategy::default(),
        ChunkingStrategy::None,
        ChunkingStrategy::FixedSize {
            max_tokens: 10,
            overlap_percent: 10,
        },
    ] {
        assert!(chunk(&doc(""), &strategy, &WordTokenizer).is_empty());
        assert!(chunk(&doc(" \n\t "), &strategy, &WordTokenizer).is_empty());
    }
}

#[test]
fn strategy_serde_and_defaults() {
    assert_eq!(
        ChunkingStrategy::default(),
        default(DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP_TOKENS)
    );
    assert_eq!(DEFAULT_MAX_TOKENS, 254);
    assert_eq!(
        serde_json::to_value(ChunkingStrategy::default()).unwrap(),
        json!({"strategy": "default", "max_tokens": 254, "overlap_tokens": 50})
    );
    let parsed: ChunkingStrategy = serde_json::from_value(json!({"strategy": "default"})).unwrap();
    assert_eq!(parsed, ChunkingStrategy::default());
    let parsed: ChunkingStrategy =
        serde_json::from_value(json!({"strategy": "fixed_size", "max_tokens": 128})).unwrap();
    assert_eq!(
        parsed,
        ChunkingStrategy::FixedSize {
            max_tokens: 128,
            overlap_percent: 20
        }
    );
    let parsed: ChunkingStrategy = serde_json::from_value(json!({"strategy": "none"})).unwrap();
    assert_eq!(parsed, ChunkingStrategy::None);
    assert!(serde_json::from_value::<ChunkingStrategy>(json!({"strategy": "semantic"})).is_err());
}

#[test]
fn large_document_is_chunked_quickly() {
    let para = "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs! \
                How vexingly quick daft zebras jump?\n\n";
    let text = para.repeat(20_000); // ~2.6 MB, ~600k tokens
    let mut e = doc(&text);
    e.headings = (0..200)
        .map(|k| HeadingSpan {
            level: 1,
            title: format!("H{k}"),
            start: k * 100 * para.len(),
        })
        .collect();
    let started = std::time::Instant::now();
    let chunks = chunk(&e, &ChunkingStrategy::default(), &WordTokenizer);
    let elapsed = started.elapsed();
    assert!(chunks.len() > 2000);
    assert!(chunks.iter().all(|c| c.token_count <= DEFAULT_MAX_TOKENS));
    assert!(elapsed.as_secs() < 20, "chunking took {elapsed:?}");
    assert_eq!(chunks[0].heading.as_deref(), Some("H0"));
}

#[test]
fn tokenizing_in_pieces_gives_the_tokens_of_the_whole_text() {
    let mut rng = groundwork_core::rng::SplitMix64::new(5);
    let pieces = [
        "leave",
        "budget,",
        "日本語",
        "é",
        "\n\n",
        "x",
        "policy.",
        "  ",
        "naïve",
    ];
    let mut text = String::new();
    while text.len() < 5_000 {
        text.push_str(pieces[rng.below(pieces.len())]);
        if rng.chance(70) {
            text.push(' ');
        }
    }
    text.push_str(&"y".repeat(700)); // one word longer than a piece
    let whole = WordTokenizer.token_spans(&text);
    let long = text.len() - 700;
    for piece in [64, 100, 257, 1000, 10_000] {
        let cut = token_spans_in_pieces(&WordTokenizer, &text, piece);
        if piece >= 1000 {
            assert_eq!(cut, whole, "piece {piece}");
        } else {
            // Only the over-long word may be cut differently.
            let before = |s: &[(usize, usize)]| s.iter().filter(|t| t.1 <= long).copied().collect::<Vec<_>>();
            assert_eq!(before(&cut), before(&whole), "piece {piece}");
        }
    }
}
