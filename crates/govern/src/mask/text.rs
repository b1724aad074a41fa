//! Tokens and word lists shared by the NAME and ADDRESS heuristics and by the evaluator.
//!
//! Names and addresses have no fixed format, so they are found by looking at words: their shape
//! (capitalised, all caps, lower case, a number), the text between them (a space, a comma, a
//! line break) and whether they are in a small hand-written list (given names, countries, cities,
//! everyday words). A token is a maximal run of characters that are neither white space nor
//! punctuation; apostrophes and hyphens split tokens (`Arne's` → `Arne`, `s`), which keeps the
//! lists small and makes possessives easy to see.
//!
//! The lists are plain text files next to this module, written by hand for this crate (not
//! copied from a data generator), compiled in with `include_str!` and parsed once per process.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

/// The coarse shape of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Starts with an ASCII digit (`12`, `12a`, `45.`).
    Number,
    /// An upper-case letter followed by at least one lower-case letter, or a single capital.
    Title,
    /// Two or more letters, all upper case.
    Upper,
    /// Starts with a lower-case letter.
    Lower,
    /// Anything else (symbols, scripts without case).
    Other,
}

/// One word or number of a text, as byte offsets.
#[derive(Debug, Clone)]
pub(crate) struct Token<'a> {
    pub start: usize,
    pub end: usize,
    pub text: &'a str,
    pub lower: String,
    pub shape: Shape,
}

impl Token<'_> {
    pub fn is_number(&self) -> bool {
        self.shape == Shape::Number
    }

    /// Capitalised or all caps.
    pub fn is_capital(&self) -> bool {
        matches!(self.shape, Shape::Title | Shape::Upper)
    }

    pub fn has_digit(&self) -> bool {
        self.text.bytes().any(|b| b.is_ascii_digit())
    }

    pub fn char_len(&self) -> usize {
        self.text.chars().count()
    }
}

/// Whether `c` separates tokens: white space, ASCII punctuation, or common Unicode punctuation.
pub(crate) fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || c.is_ascii_punctuation()
        || ('\u{2000}'..='\u{206F}').contains(&c)
        || matches!(
            c,
            '«' | '»' | '¡' | '¿' | '·' | '\u{3000}' | '、' | '。' | '，' | '：'
        )
}

/// Byte spans of the tokens of `text`.
pub(crate) fn token_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        if is_separator(c) {
            if let Some(s) = start.take() {
                spans.push((s, i));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        spans.push((s, text.len()));
    }
    spans
}

fn shape_of(word: &str) -> Shape {
    let mut chars = word.chars();
    let Some(first) = chars.next() else {
        return Shape::Other;
    };
    if first.is_ascii_digit() {
        return Shape::Number;
    }
    if first.is_lowercase() {
        return Shape::Lower;
    }
    if first.is_uppercase() {
        let rest: Vec<char> = chars.filter(|c| c.is_alphabetic()).collect();
        if rest.is_empty() || rest.iter().any(|c| c.is_lowercase()) {
            return Shape::Title;
        }
        return Shape::Upper;
    }
    Shape::Other
}

pub(crate) fn tokenize(text: &str) -> Vec<Token<'_>> {
    token_spans(text)
        .into_iter()
        .map(|(start, end)| {
            let word = &text[start..end];
            Token {
                start,
                end,
                text: word,
                lower: word.to_lowercase(),
                shape: shape_of(word),
            }
        })
        .collect()
}

/// The tokens of one text plus per-token facts the heuristics share.
pub(crate) struct Ctx<'a> {
    pub text: &'a str,
    pub toks: Vec<Token<'a>>,
    /// The text has letters but none in upper case (chat messages typed in lower case).
    pub lowercase_text: bool,
    /// The text has letters but none in lower case (shouting).
    pub uppercase_text: bool,
    /// Token covered by a finding of a formatted type (email, phone, card…).
    pub covered: Vec<bool>,
    /// Index of the line each token is on.
    pub line: Vec<usize>,
    /// Number of tokens on each line.
    pub line_len: Vec<usize>,
}

impl<'a> Ctx<'a> {
    pub fn new(text: &'a str, covered_spans: &[(usize, usize)]) -> Ctx<'a> {
        let toks = tokenize(text);
        let has_upper = text.chars().any(|c| c.is_uppercase());
        let has_lower = text.chars().any(|c| c.is_lowercase());
        let covered = toks
            .iter()
            .map(|t| covered_spans.iter().any(|&(s, e)| t.start < e && s < t.end))
            .collect();
        let mut line = Vec::with_capacity(toks.len());
        let mut line_len = vec![0usize];
        let mut current = 0;
        let mut prev_end = 0;
        for t in &toks {
            current += text[prev_end..t.start].matches('\n').count();
            while line_len.len() <= current {
                line_len.push(0);
            }
            line_len[current] += 1;
            line.push(current);
            prev_end = t.end;
        }
        Ctx {
            text,
            toks,
            lowercase_text: has_lower && !has_upper,
            uppercase_text: has_upper && !has_lower,
            covered,
            line,
            line_len,
        }
    }

    pub fn len(&self) -> usize {
        self.toks.len()
    }

    /// The text between token `i - 1` and token `i` (before the first token for `i == 0`).
    pub fn gap(&self, i: usize) -> &'a str {
        let start = if i == 0 { 0 } else { self.toks[i - 1].end };
        let end = if i < self.toks.len() {
            self.toks[i].start
        } else {
            self.text.len()
        };
        &self.text[start..end]
    }

    /// The text after the last token.
    pub fn gap_after(&self, i: usize) -> &'a str {
        self.gap(i + 1)
    }

    /// Token `i` begins a sentence or a line (or the text).
    pub fn sentence_start(&self, i: usize) -> bool {
        if i == 0 {
            return true;
        }
        let gap = self.gap(i);
        gap.contains(['.', '!', '?', '\n', '"', '“', ':', '('])
    }

    /// The lower-cased token at `i`, or "" past the end.
    pub fn lower(&self, i: usize) -> &str {
        self.toks.get(i).map(|t| t.lower.as_str()).unwrap_or("")
    }

    /// Whether the phrase (lower-case words) starts at token `i` with only spaces, hyphens or
    /// apostrophes between its words. Returns the index of its last token.
    pub fn phrase_at(&self, i: usize, words: &[String]) -> Option<usize> {
        if i + words.len() > self.toks.len() {
            return None;
        }
        for (k, w) in words.iter().enumerate() {
            if self.toks[i + k].lower != *w {
                return None;
            }
            if k > 0 && !inline_gap(self.gap(i + k)) {
                return None;
            }
        }
        Some(i + words.len() - 1)
    }
}

/// Only spaces (no line break, no punctuation).
pub(crate) fn space_gap(gap: &str) -> bool {
    !gap.is_empty() && gap.chars().all(|c| c == ' ' || c == '\t' || c == '\u{a0}')
}

/// Spaces, a hyphen or an apostrophe: words of one phrase.
pub(crate) fn inline_gap(gap: &str) -> bool {
    !gap.is_empty()
        && gap
            .chars()
            .all(|c| matches!(c, ' ' | '\t' | '\u{a0}' | '-' | '\'' | '’'))
        && gap.chars().filter(|c| !c.is_whitespace()).count() <= 1
}

/// A set over a static word list, for lists consulted on every token.
pub(crate) fn word_set(list: &'static [&'static str]) -> HashSet<&'static str> {
    list.iter().copied().collect()
}

fn words(list: &'static str) -> impl Iterator<Item = &'static str> {
    list.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(str::split_whitespace)
}

fn set(list: &'static str) -> HashSet<String> {
    words(list).map(str::to_lowercase).collect()
}

/// Multi-word phrases keyed by their first word, longest first.
pub(crate) struct Phrases {
    by_first: HashMap<String, Vec<Vec<String>>>,
}

impl Phrases {
    pub fn from_lines(list: &str) -> Phrases {
        let mut by_first: HashMap<String, Vec<Vec<String>>> = HashMap::new();
        for line in list.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<String> = tokenize(line).into_iter().map(|t| t.lower).collect();
            if let Some(first) = words.first() {
                by_first.entry(first.clone()).or_default().push(words);
            }
        }
        for list in by_first.values_mut() {
            list.sort_by_key(|w| std::cmp::Reverse(w.len()));
        }
        Phrases { by_first }
    }

    /// The longest phrase starting at token `i`: the index of its last token.
    pub fn longest_at(&self, ctx: &Ctx, i: usize) -> Option<usize> {
        let candidates = self.by_first.get(ctx.lower(i))?;
        candidates.iter().find_map(|words| ctx.phrase_at(i, words))
    }
}

/// Cue phrases keyed by their last word, so "does a cue end at token i" is one lookup.
pub(crate) struct CueIndex {
    by_last: HashMap<String, Vec<Vec<String>>>,
}

impl CueIndex {
    pub fn new(phrases: &[&str]) -> CueIndex {
        let mut by_last: HashMap<String, Vec<Vec<String>>> = HashMap::new();
        for p in phrases {
            let words: Vec<String> = tokenize(p).into_iter().map(|t| t.lower).collect();
            if let Some(last) = words.last() {
                by_last.entry(last.clone()).or_default().push(words);
            }
        }
        for list in by_last.values_mut() {
            list.sort_by_key(|w| std::cmp::Reverse(w.len()));
        }
        CueIndex { by_last }
    }

    /// The longest cue phrase ending at token `i`.
    pub fn ending_at(&self, ctx: &Ctx, i: usize) -> Option<&[String]> {
        let list = self.by_last.get(ctx.lower(i))?;
        list.iter()
            .find(|w| i + 1 >= w.len() && ctx.phrase_at(i + 1 - w.len(), w) == Some(i))
            .map(Vec::as_slice)
    }
}

pub(crate) struct Lists {
    pub given: HashSet<String>,
    pub ambiguous: HashSet<String>,
    pub common: HashSet<String>,
    pub countries: Phrases,
    pub cities: Phrases,
}

pub(crate) fn lists() -> &'static Lists {
    static LISTS: OnceLock<Lists> = OnceLock::new();
    LISTS.get_or_init(|| Lists {
        given: set(include_str!("given_names.txt")),
        ambiguous: set(include_str!("ambiguous_names.txt")),
        common: set(include_str!("common_words.txt")),
        countries: Phrases::from_lines(include_str!("countries.txt")),
        cities: Phrases::from_lines(include_str!("cities.txt")),
    })
}

impl Lists {
    pub fn is_common(&self, lower: &str) -> bool {
        self.common.contains(lower)
    }

    /// A given name that needs no more evidence.
    pub fn is_given(&self, lower: &str) -> bool {
        self.given.contains(lower) && !self.ambiguous.contains(lower)
    }

    pub fn is_ambiguous_given(&self, lower: &str) -> bool {
        self.ambiguous.contains(lower)
    }

    /// A country or a listed city starts at `i`: the index of its last token.
    pub fn place_at(&self, ctx: &Ctx, i: usize) -> Option<usize> {
        self.countries
            .longest_at(ctx, i)
            .into_iter()
            .chain(self.cities.longest_at(ctx, i))
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_split_on_space_and_punctuation() {
        let text = "Arne's flat: 12b Rue d'Alsace, Zürich\nSÃ£o";
        let words: Vec<&str> = tokenize(text).iter().map(|t| t.text).collect();
        assert_eq!(
            words,
            ["Arne", "s", "flat", "12b", "Rue", "d", "Alsace", "Zürich", "SÃ£o"]
        );
        let shapes: Vec<Shape> = tokenize("Anna NASA bob 42 Ó").iter().map(|t| t.shape).collect();
        assert_eq!(
            shapes,
            [
                Shape::Title,
                Shape::Upper,
                Shape::Lower,
                Shape::Number,
                Shape::Title
            ]
        );
    }

    #[test]
    fn lists_parse() {
        let l = lists();
        assert!(l.is_given("margaret") && l.is_given("kwame") && l.is_given("ingrid"));
        assert!(!l.is_given("will") && l.is_ambiguous_given("will"));
        assert!(l.is_common("the") && !l.is_common("wisdom"));
        let ctx = Ctx::new("from the United Kingdom today", &[]);
        assert_eq!(l.place_at(&ctx, 2), Some(3));
        assert_eq!(l.place_at(&ctx, 0), None);
    }
}
