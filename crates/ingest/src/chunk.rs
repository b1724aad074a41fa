//! Chunking: [`Extracted`] text into retrieval-sized pieces with exact source offsets.
//!
//! Every [`ChunkDraft`] satisfies `chunk.text == extracted.text[chunk.start..chunk.end]`, never
//! starts or ends inside a UTF-8 character, carries Unicode-scalar offsets too, and is trimmed
//! of surrounding whitespace. Token counts come from the embedding model's tokenizer through
//! [`Tokenize`]; the whole text is tokenized once and sentence boundaries are mapped onto the
//! token sequence by binary search, so chunking is O(n log n) overall rather than re-tokenizing
//! sentences.
//!
//! Strategies ([`ChunkingStrategy`]):
//! - `Default`: sentences (see [`split_segments`]) packed greedily up to `max_tokens`, with
//!   whole trailing sentences of at most `overlap_tokens` repeated at the start of the next
//!   chunk. A chunk never crosses into a new heading's section (a heading starts a new chunk,
//!   and no overlap is carried across it), which keeps citations precise. A sentence longer
//!   than `max_tokens` is cut at token boundaries.
//! - `FixedSize`: windows of exactly `max_tokens` tokens (the last may be shorter) with
//!   `overlap_percent` overlap, ignoring sentences.
//! - `None`: the whole document as one chunk, however long.

use serde::{Deserialize, Serialize};

use crate::parse::Extracted;

/// Token boundaries from the embedding model's tokenizer.
pub trait Tokenize {
    /// Byte spans `(start, end)` of the tokens of `text`, in order, without special tokens.
    fn token_spans(&self, text: &str) -> Vec<(usize, usize)>;
}

/// Token budget of a default chunk.
///
/// The product spec asks for "about 300 tokens of the embedding model's tokenizer", but the
/// embedding model truncates its input at 256 tokens including `[CLS]` and `[SEP]`: anything
/// past 254 content tokens would be silently cut from the chunk's embedding while still being
/// shown (and cited) as part of the chunk. 254 is therefore the largest budget at which every
/// chunk is fully embedded.
pub const DEFAULT_MAX_TOKENS: usize = 254;
/// Overlap of the default strategy: about 20% of [`DEFAULT_MAX_TOKENS`], in whole sentences.
pub const DEFAULT_OVERLAP_TOKENS: usize = 50;
/// Overlap of the fixed-size strategy when none is given.
pub const DEFAULT_OVERLAP_PERCENT: u8 = 20;

fn default_max_tokens() -> usize {
    DEFAULT_MAX_TOKENS
}
fn default_overlap_tokens() -> usize {
    DEFAULT_OVERLAP_TOKENS
}
fn default_overlap_percent() -> u8 {
    DEFAULT_OVERLAP_PERCENT
}

/// How to cut a document into chunks. Serialised as `{"strategy": "default", "max_tokens":
/// 254, "overlap_tokens": 50}`, `{"strategy": "fixed_size", ...}`, `{"strategy": "none"}`;
/// omitted numbers take the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "strategy", rename_all = "snake_case")]
pub enum ChunkingStrategy {
    /// Sentence-aware packing with sentence overlap.
    Default {
        /// Most tokens in a chunk.
        #[serde(default = "default_max_tokens")]
        max_tokens: usize,
        /// Most tokens of whole trailing sentences repeated in the next chunk.
        #[serde(default = "default_overlap_tokens")]
        overlap_tokens: usize,
    },
    /// Fixed token windows.
    FixedSize {
        /// Tokens per window.
        #[serde(default = "default_max_tokens")]
        max_tokens: usize,
        /// Overlap between consecutive windows, in percent of `max_tokens` (capped at 90).
        #[serde(default = "default_overlap_percent")]
        overlap_percent: u8,
    },
    /// One chunk per document.
    None,
}

impl Default for ChunkingStrategy {
    fn default() -> Self {
        ChunkingStrategy::Default {
            max_tokens: DEFAULT_MAX_TOKENS,
            overlap_tokens: DEFAULT_OVERLAP_TOKENS,
        }
    }
}

/// A chunk before it is stored: text plus where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkDraft {
    /// `extracted.text[start..end]`.
    pub text: String,
    /// Byte offset into [`Extracted::text`].
    pub start: usize,
    /// Byte offset (exclusive) into [`Extracted::text`].
    pub end: usize,
    /// Unicode scalar offset of `start`.
    pub char_start: usize,
    /// Unicode scalar offset of `end`.
    pub char_end: usize,
    /// Page containing `start` (PDF only).
    pub page: Option<u32>,
    /// Title of the nearest heading at or before the chunk's first body text.
    pub heading: Option<String>,
    /// Tokens of the chunk (tokens of the whole text that start inside it).
    pub token_count: usize,
}

/// Cuts `extracted` into chunks. Empty or whitespace-only text gives no chunks.
pub fn chunk(
    extracted: &Extracted,
    strategy: &ChunkingStrategy,
    tokenizer: &dyn Tokenize,
) -> Vec<ChunkDraft> {
    let text = extracted.text.as_str();
    if text.trim().is_empty() {
        return Vec::new();
    }
    let tokens = sanitize(token_spans_in_pieces(tokenizer, text, TOKENIZE_PIECE_BYTES), text);
    let ctx = Ctx {
        text,
        starts: tokens.iter().map(|t| t.0).collect(),
        tokens,
    };
    let ranges = match *strategy {
        ChunkingStrategy::None => {
            let (s, e) = trim(text, 0, text.len());
            vec![Range {
                start: s,
                end: e,
                anchor: s,
            }]
        }
        ChunkingStrategy::FixedSize {
            max_tokens,
            overlap_percent,
        } => {
            let max = max_tokens.max(1);
            let overlap = max * usize::from(overlap_percent.min(90)) / 100;
            let (s, e) = trim(text, 0, text.len());
            let mut out = Vec::new();
            ctx.windows(s, e, 0, ctx.tokens.len(), max, overlap, &mut out);
            out
        }
        ChunkingStrategy::Default {
            max_tokens,
            overlap_tokens,
        } => {
            let mut heading_starts: Vec<usize> = extracted.headings.iter().map(|h| h.start).collect();
            heading_starts.sort_unstable();
            let line_oriented = extracted.format.is_line_oriented();
            let segments = ctx.segments(&split_segments(text, &heading_starts, line_oriented));
            pack(&ctx, &segments, max_tokens.max(1), overlap_tokens)
        }
    };
    drafts(extracted, &ctx, ranges)
}

struct Ctx<'a> {
    text: &'a str,
    tokens: Vec<(usize, usize)>,
    starts: Vec<usize>,
}

/// A chunk's byte range, and where its first body (non-heading) text starts.
#[derive(Debug, Clone, Copy)]
struct Range {
    start: usize,
    end: usize,
    anchor: usize,
}

/// A sentence-like unit: trimmed byte range, index range of the tokens starting between its
/// cut points, and whether it begins at a heading.
#[derive(Debug, Clone, Copy)]
struct Segment {
    start: usize,
    end: usize,
    tok_lo: usize,
    tok_hi: usize,
    heading: bool,
}

impl Segment {
    fn tokens(&self) -> usize {
        self.tok_hi - self.tok_lo
    }
}

impl Ctx<'_> {
    /// Index of the first token starting at or after `pos`.
    fn token_at(&self, pos: usize) -> usize {
        self.starts.partition_point(|&s| s < pos)
    }

    fn segments(&self, cuts: &[(usize, bool)]) -> Vec<Segment> {
        let mut out = Vec::with_capacity(cuts.len());
        for (k, &(cut, heading)) in cuts.iter().enumerate() {
            let next = cuts.get(k + 1).map_or(self.text.len(), |c| c.0);
            let (start, end) = trim(self.text, cut, next);
            if start >= end {
                continue;
            }
            out.push(Segment {
                start,
                end,
                tok_lo: self.token_at(cut),
                tok_hi: self.token_at(next),
                heading,
            });
        }
        out
    }

    /// Cuts `[start, end)` holding tokens `lo..hi` into windows of `max` tokens overlapping by
    /// `overlap` tokens. The first window starts at `start` and the last ends at `end`, so no
    /// text is lost at the edges.
    #[allow(clippy::too_many_arguments)]
    fn windows(
        &self,
        start: usize,
        end: usize,
        lo: usize,
        hi: usize,
        max: usize,
        overlap: usize,
        out: &mut Vec<Range>,
    ) {
        if hi <= lo + max {
            out.push(Range {
                start,
                end,
                anchor: start,
            });
            return;
        }
        let step = max.saturating_sub(overlap).max(1);
        let mut p = lo;
        loop {
            let q = (p + max).min(hi);
            let s = if p == lo {
                start
            } else {
                self.tokens[p].0.max(start)
            };
            let e = if q == hi {
                end
            } else {
                self.tokens[q - 1].1.min(end)
            };
            let (s, e) = trim(self.text, s, e);
            if s < e {
                out.push(Range {
                    start: s,
                    end: e,
                    anchor: s,
                });
            }
            if q == hi {
                break;
            }
            p += step;
        }
    }
}

/// Greedy packing of segments (see the module docs).
fn pack(ctx: &Ctx<'_>, segs: &[Segment], max: usize, overlap: usize) -> Vec<Range> {
    let mut out = Vec::new();
    // Current chunk: segments cur..i, `cur_tokens` tokens.
    let mut cur = 0usize;
    let mut cur_tokens = 0usize;
    let mut has_body = false;
    let flush = |out: &mut Vec<Range>, from: usize, to: usize| {
        if from >= to {
            return;
        }
        let anchor = segs[from..to]
            .iter()
            .find(|s| !s.heading)
            .map_or(segs[from].start, |s| s.start);
        out.push(Range {
            start: segs[from].start,
            end: segs[to - 1].end,
            anchor,
        });
    };
    let mut i = 0;
    while i < segs.len() {
        let seg = segs[i];
        let n = seg.tokens();
        if seg.heading && has_body {
            flush(&mut out, cur, i);
            cur = i;
            cur_tokens = 0;
            has_body = false;
        }
        if n > max {
            flush(&mut out, cur, i);
            ctx.windows(
                seg.start,
                seg.end,
                seg.tok_lo,
                seg.tok_hi,
                max,
                overlap.min(max / 2),
                &mut out,
            );
            i += 1;
            cur = i;
            cur_tokens = 0;
            has_body = false;
            continue;
        }
        if cur < i && cur_tokens + n > max {
            flush(&mut out, cur, i);
            // Carry whole trailing sentences (not the whole chunk, so we always advance).
            let mut k = i;
            let mut carried = 0;
            while k > cur + 1 && carried + segs[k - 1].tokens() <= overlap {
                k -= 1;
                carried += segs[k].tokens();
            }
            while k < i && carried + n > max {
                carried -= segs[k].tokens();
                k += 1;
            }
            cur = k;
            cur_tokens = carried;
            has_body = segs[k..i].iter().any(|s| !s.heading);
        }
        cur_tokens += n;
        has_body |= !seg.heading;
        i += 1;
    }
    flush(&mut out, cur, segs.len());
    out
}

/// Sentence and paragraph boundaries of `text`: returns cut positions (segment starts, the
/// first is 0), each flagged when a heading starts there (`heading_starts` sorted).
///
/// A cut is made:
/// - at a heading start;
/// - after a blank line; after any line break in line-oriented formats (CSV, JSON);
/// - after a single line break unless it looks like a soft wrap (the line does not end in
///   sentence punctuation and the next line starts with a lowercase letter);
/// - after `.`, `!`, `?`, `…` (plus closing quotes/brackets) followed by spaces and a character
///   that can start a sentence (uppercase, digit, opening quote/bracket, uncased letter), unless
///   the period ends a known abbreviation (`Dr.`, `Fig.`, `e.g.`, an initial `J.`);
///   decimals like `3.14` have no space and are never cut;
/// - right after CJK full stops `。！？` (no space needed).
pub fn split_segments(text: &str, heading_starts: &[usize], line_oriented: bool) -> Vec<(usize, bool)> {
    let mut cuts: Vec<(usize, bool)> = vec![(0, false)];
    let cut = |pos: usize, heading: bool, cuts: &mut Vec<(usize, bool)>| {
        if let Some(last) = cuts.last_mut()
            && last.0 == pos
        {
            last.1 |= heading;
            return;
        }
        cuts.push((pos, heading));
    };
    let len = text.len();
    let mut h = 0;
    let mut i = 0;
    while i < len {
        if h < heading_starts.len() && heading_starts[h] <= i {
            cut(i, true, &mut cuts);
            while h < heading_starts.len() && heading_starts[h] <= i {
                h += 1;
            }
        }
        let Some(c) = text[i..].chars().next() else {
            break;
        };
        match c {
            '\n' | '\r' => {
                let run_end = i + text[i..].find(|ch: char| !ch.is_whitespace()).unwrap_or(len - i);
                if run_end >= len {
                    break;
                }
                let newlines = text[i..run_end].matches('\n').count();
                let split = newlines >= 2 || line_oriented || {
                    let before = text[..i].trim_end().trim_end_matches(CLOSERS);
                    let ends_sentence = before
                        .chars()
                        .next_back()
                        .is_some_and(|p| ".!?:;…。！？".contains(p));
                    let next = text[run_end..].chars().next();
                    ends_sentence || next.is_some_and(|n| !n.is_lowercase())
                };
                if split {
                    cut(run_end, false, &mut cuts);
                }
                // Do not jump past a heading start inside the run.
                i = run_end;
            }
            '.' | '!' | '?' | '…' => {
                let run_end = i + text[i..]
                    .find(|ch: char| !matches!(ch, '.' | '!' | '?' | '…'))
                    .unwrap_or(len - i);
                let closed = run_end
                    + text[run_end..]
                        .find(|ch: char| !CLOSERS.contains(&ch))
                        .unwrap_or(len - run_end);
                let spaced = closed
                    + text[closed..]
                        .find(|ch: char| !matches!(ch, ' ' | '\t' | '\u{a0}'))
                        .unwrap_or(len - closed);
                let single_period = c == '.' && run_end == i + 1;
                if spaced > closed
                    && spaced < len
                    && text[spaced..].chars().next().is_some_and(starts_sentence)
                    && !(single_period && is_abbreviation(&text[..i]))
                {
                    cut(spaced, false, &mut cuts);
                    i = spaced;
                } else {
                    i = closed.max(i + c.len_utf8());
                }
            }
            '。' | '！' | '？' => {
                let end = i
                    + c.len_utf8()
                    + text[i + c.len_utf8()..]
                        .find(|ch: char| !matches!(ch, '」' | '』' | '）' | '"' | '”'))
                        .unwrap_or(len - i - c.len_utf8());
                if end < len {
                    cut(end, false, &mut cuts);
                }
                i = end;
            }
            _ => i += c.len_utf8(),
        }
    }
    cuts
}

const CLOSERS: &[char] = &['"', '\'', '”', '’', ')', ']', '»', '」', '』'];

fn starts_sentence(c: char) -> bool {
    c.is_uppercase()
        || c.is_ascii_digit()
        || matches!(
            c,
            '"' | '\'' | '“' | '‘' | '(' | '[' | '«' | '¿' | '¡' | '-' | '•' | '*'
        )
        || (c.is_alphabetic() && !c.is_lowercase())
}

/// Abbreviations whose period does not end a sentence even before a capital or digit.
/// Case-sensitive on purpose: "No. 5" is an abbreviation, "said no. Then" is not
/// (the lowercase forms listed are the ones only used as abbreviations).
const ABBREVIATIONS: &[&str] = &[
    "Mr", "Mrs", "Ms", "Mx", "Dr", "Prof", "Sr", "Jr", "St", "Mt", "Ft", "Rev", "Hon", "Gov", "Sen", "Rep",
    "Gen", "Col", "Lt", "Capt", "Sgt", "Fig", "Figs", "fig", "figs", "No", "Nos", "Nr", "Vol", "vol", "vols",
    "vs", "cf", "al", "approx", "ca", "p", "pp", "Ch", "ch", "Sec", "sec", "Eq", "Eqs", "eq", "Ref", "Refs",
    "ref", "Art", "art", "Abb", "Abs", "Dept", "dept", "resp", "incl", "excl", "Jan", "Feb", "Mar", "Apr",
    "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun",
    "Ave", "Blvd", "Rd",
];

/// Whether the word right before a period (the end of `before`) is an abbreviation.
fn is_abbreviation(before: &str) -> bool {
    let tail_start = before
        .char_indices()
        .rev()
        .take(40)
        .find(|&(_, c)| c.is_whitespace() || matches!(c, '(' | '[' | '"' | '\'' | '“' | '‘'))
        .map_or_else(
            || before.char_indices().rev().take(40).last().map_or(0, |(p, _)| p),
            |(p, c)| p + c.len_utf8(),
        );
    let word = &before[tail_start..];
    if word.is_empty() {
        return false;
    }
    let mut chars = word.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        // A single letter: an initial ("J. Smith") or a list label.
        return c.is_alphabetic();
    }
    if word.contains('.') {
        // "e.g", "i.e", "U.S", "Ph.D": short alphabetic parts joined by periods.
        return word
            .split('.')
            .all(|p| p.chars().count() <= 3 && p.chars().all(char::is_alphabetic));
    }
    ABBREVIATIONS.contains(&word)
}

/// Drops malformed spans and snaps the rest to character boundaries, keeping starts ascending.
/// Text handed to the tokenizer at once. A tokenizer keeps several words of bookkeeping per
/// byte while it works (alignments, normalised copies, one string per token), which for a
/// document of 20 M characters came to gigabytes; pieces keep that to a few megabytes.
const TOKENIZE_PIECE_BYTES: usize = 64 * 1024;

/// [`Tokenize::token_spans`] over pieces of about `piece` bytes cut at whitespace, with the
/// spans moved back to offsets in `text`. Word-piece tokenizers split at whitespace anyway, so
/// the tokens are the same as those of the whole text; a piece without whitespace (one huge
/// "word") is cut at a character boundary.
pub fn token_spans_in_pieces(tokenizer: &dyn Tokenize, text: &str, piece: usize) -> Vec<(usize, usize)> {
    if text.len() <= piece {
        return tokenizer.token_spans(text);
    }
    let mut spans = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = floor_boundary(text, (start + piece).min(text.len()));
        // Back to the last whitespace of the piece, if it has one.
        if end < text.len()
            && let Some(cut) = text[start..end].rfind(char::is_whitespace)
            && cut > 0
        {
            end = start + cut;
        }
        if end <= start {
            end = ceil_boundary(text, start + 1);
        }
        spans.extend(
            tokenizer
                .token_spans(&text[start..end])
                .into_iter()
                .map(|(s, e)| (s + start, e + start)),
        );
        start = end;
    }
    spans
}

fn sanitize(spans: Vec<(usize, usize)>, text: &str) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for (s, e) in spans {
        if s >= e || e > text.len() {
            continue;
        }
        let s = floor_boundary(text, s);
        let e = ceil_boundary(text, e);
        if out.last().is_some_and(|&(ps, _)| s < ps) {
            continue;
        }
        out.push((s, e));
    }
    out
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(text: &str, mut i: usize) -> usize {
    while i < text.len() && !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// `[start, end)` without surrounding whitespace (snapped to character boundaries).
fn trim(text: &str, start: usize, end: usize) -> (usize, usize) {
    let start = ceil_boundary(text, start.min(text.len()));
    let end = floor_boundary(text, end.min(text.len())).max(start);
    let slice = &text[start..end];
    let lead = slice.len() - slice.trim_start().len();
    let trimmed = slice.trim();
    (start + lead, start + lead + trimmed.len())
}

/// Unicode scalar offsets for ascending-ish byte offsets in O(distance moved).
struct CharCursor<'a> {
    text: &'a str,
    byte: usize,
    chars: usize,
}

impl CharCursor<'_> {
    fn to(&mut self, byte: usize) -> usize {
        if byte >= self.byte {
            self.chars += self.text[self.byte..byte].chars().count();
        } else {
            self.chars -= self.text[byte..self.byte].chars().count();
        }
        self.byte = byte;
        self.chars
    }
}

fn drafts(extracted: &Extracted, ctx: &Ctx<'_>, ranges: Vec<Range>) -> Vec<ChunkDraft> {
    let text = ctx.text;
    let mut headings: Vec<(usize, &str)> = extracted
        .headings
        .iter()
        .map(|h| (h.start, h.title.as_str()))
        .collect();
    headings.sort_by_key(|h| h.0);
    let mut cursor = CharCursor {
        text,
        byte: 0,
        chars: 0,
    };
    let mut out = Vec::with_capacity(ranges.len());
    for r in ranges {
        if r.start >= r.end {
            continue;
        }
        let char_start = cursor.to(r.start);
        let char_end = cursor.to(r.end);
        let p = extracted.pages.partition_point(|p| p.start <= r.start);
        let page = p.checked_sub(1).map(|k| extracted.pages[k].page);
        let h = headings.partition_point(|&(s, _)| s <= r.anchor);
        let heading = h.checked_sub(1).map(|k| headings[k].1.to_owned());
        out.push(ChunkDraft {
            text: text[r.start..r.end].to_owned(),
            start: r.start,
            end: r.end,
            char_start,
            char_end,
            page,
            heading,
            token_count: ctx.token_at(r.end) - ctx.token_at(r.start),
        });
    }
    out
}
