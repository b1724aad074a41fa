//! Shared text primitives: word tokens with byte offsets, stop words and a light stemmer for
//! content-word matching, sentence splitting, and vector helpers for embeddings.
//!
//! Why hand-rolled: every check must report byte offsets into the caller's text (findings never
//! carry the matched text), be insensitive to case, whitespace and invisible characters, and stay
//! far below a millisecond per 1,000 characters. A general tokenizer would give none of these
//! for free and would be a heavy dependency for a pure-logic crate.

use crate::error::GuardError;

/// Characters that render as nothing and are used to split words invisibly: zero-width space,
/// joiners, soft hyphen, bidi controls, word joiner, BOM. Matching skips them.
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}')
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{02BC}')
}

/// One word of a text: a run of letters and digits (apostrophes inside words and `.`/`,` inside
/// numbers included, invisible characters skipped), lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    /// Byte offset of the first character.
    pub start: usize,
    /// Byte offset one past the last character.
    pub end: usize,
    /// Lowercased text; apostrophes normalised to `'`, invisible characters and thousands
    /// separators removed.
    pub text: String,
}

/// Splits `text` into word tokens.
pub(crate) fn tokenize(text: &str) -> Vec<Token> {
    let mut out = Vec::with_capacity(text.len() / 5 + 1);
    let mut cur: Option<Token> = None;
    let mut prev: Option<char> = None; // last character appended to `cur`
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c.is_alphanumeric() {
            let t = cur.get_or_insert_with(|| Token {
                start: i,
                end: i,
                text: String::new(),
            });
            if c.is_ascii() {
                t.text.push(c.to_ascii_lowercase());
            } else {
                t.text.extend(c.to_lowercase());
            }
            t.end = i + c.len_utf8();
            prev = Some(c);
            continue;
        }
        if let Some(t) = cur.as_mut() {
            if is_invisible(c) {
                continue;
            }
            let next = chars.peek().map(|&(_, n)| n);
            let joins_word = is_apostrophe(c)
                && prev.is_some_and(char::is_alphabetic)
                && next.is_some_and(char::is_alphabetic);
            let joins_number = matches!(c, '.' | ',')
                && prev.is_some_and(|p| p.is_ascii_digit())
                && next.is_some_and(|n| n.is_ascii_digit());
            if joins_word {
                t.text.push('\'');
                continue;
            }
            if joins_number {
                if c == '.' {
                    t.text.push('.');
                }
                continue;
            }
            out.push(cur.take().expect("current token"));
        }
        prev = None;
    }
    if let Some(t) = cur {
        out.push(t);
    }
    out
}

/// English function words ignored when comparing content.
#[rustfmt::skip]
const STOP_WORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any",
    "are", "aren't", "as", "at", "be", "because", "been", "before", "being", "below", "between",
    "both", "but", "by", "can", "can't", "cannot", "could", "couldn't", "did", "didn't", "do",
    "does", "doesn't", "doing", "don't", "down", "during", "each", "either", "else", "etc", "ever",
    "every", "few", "for", "from", "further", "get", "gets", "got", "had", "hadn't", "has",
    "hasn't", "have", "haven't", "having", "he", "he's", "her", "here", "here's", "hers", "herself",
    "him", "himself", "his", "how", "however", "i", "i'd", "i'll", "i'm", "i've", "if", "in",
    "into", "is", "isn't", "it", "it's", "its", "itself", "just", "let", "let's", "may", "me",
    "might", "more", "most", "much", "must", "my", "myself", "no", "nor", "not", "now", "of", "off",
    "on", "once", "only", "or", "other", "others", "our", "ours", "ourselves", "out", "over", "own",
    "per", "please", "same", "shall", "she", "she's", "should", "shouldn't", "so", "some", "such",
    "than", "that", "that's", "the", "their", "theirs", "them", "themselves", "then", "there",
    "there's", "these", "they", "they're", "this", "those", "through", "thus", "to", "too", "under",
    "until", "up", "upon", "us", "very", "via", "was", "wasn't", "we", "we're", "we've", "were",
    "weren't", "what", "what's", "when", "where", "whether", "which", "while", "who", "who's",
    "whom", "whose", "why", "will", "with", "within", "without", "won't", "would", "wouldn't",
    "yes", "yet", "you", "you'd", "you'll", "you're", "you've", "your", "yours", "yourself",
    "yourselves",
];

pub(crate) fn is_stop_word(w: &str) -> bool {
    STOP_WORDS.binary_search(&w).is_ok()
}

/// A light English stemmer: folds plural, past, gerund and adverb suffixes and a final `e` so
/// that "charges", "charged", "charging" and "charge" compare equal. It only has to be
/// consistent between the answer and its sources, not linguistically right.
pub(crate) fn stem(word: &str) -> String {
    let w = word.trim_end_matches("'s");
    if !w.is_ascii() || w.len() <= 3 || w.bytes().any(|b| b.is_ascii_digit()) {
        return w.to_string();
    }
    let mut s: &str = w;
    if let Some(b) = s.strip_suffix("ies").filter(|b| b.len() >= 2) {
        return format!("{b}y");
    }
    let mut verbal = false;
    if let Some(b) = s.strip_suffix("sses") {
        s = &w[..b.len() + 2];
    } else if let Some(b) = s.strip_suffix("ing").filter(|b| b.len() >= 3) {
        s = b;
        verbal = true;
    } else if let Some(b) = s.strip_suffix("ed").filter(|b| b.len() >= 3) {
        s = b;
        verbal = true;
    } else if let Some(b) = s.strip_suffix("ly").filter(|b| b.len() >= 4) {
        s = b;
    } else if ["ches", "shes", "xes", "zes"].iter().any(|x| s.ends_with(x)) {
        s = &s[..s.len() - 2];
    } else if s.ends_with('s') && !s.ends_with("ss") && !s.ends_with("us") && !s.ends_with("is") {
        s = &s[..s.len() - 1];
    }
    let b = s.as_bytes();
    if verbal && b.len() >= 3 {
        let (x, y) = (b[b.len() - 1], b[b.len() - 2]);
        if x == y && !matches!(x, b'l' | b's' | b'z') && !b"aeiou".contains(&x) {
            s = &s[..s.len() - 1];
        }
    }
    if s.len() > 3 && s.ends_with('e') {
        s = &s[..s.len() - 1];
    }
    s.to_string()
}

/// A token's content-word form, or `None` for stop words and lone letters.
pub(crate) fn content_word(token: &str) -> Option<String> {
    let is_number = token.bytes().next().is_some_and(|b| b.is_ascii_digit());
    if is_number {
        return Some(token.to_string());
    }
    if token.chars().count() < 2 || is_stop_word(token) {
        return None;
    }
    Some(stem(token))
}

/// True for number tokens ("30", "1299.00", "2nd").
pub(crate) fn is_number(token: &str) -> bool {
    token.bytes().next().is_some_and(|b| b.is_ascii_digit())
}

#[rustfmt::skip]
const ABBREVIATIONS: &[&str] = &[
    "a.m", "al", "approx", "cf", "co", "corp", "dept", "dr", "e.g", "eg", "est", "etc", "fig",
    "i.e", "ie", "inc", "jr", "ltd", "mr", "mrs", "ms", "nr", "p.m", "pp", "prof", "sr", "st",
    "vol", "vs",
];

/// Splits `text` into sentences, returned as trimmed byte ranges. Boundaries: `.`, `!`, `?`
/// (and their CJK forms) followed by whitespace or the end, except after common abbreviations
/// and single-letter initials; and every line break, since answers often use list items.
pub(crate) fn split_sentences(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0usize;
    let bytes = text.as_bytes();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let end_here = match c {
            '\n' => Some(i),
            '。' | '！' | '？' => Some(i + c.len_utf8()),
            '.' | '!' | '?' => {
                let next = chars.peek().map(|&(_, n)| n);
                let at_gap = next.is_none_or(|n| n.is_whitespace());
                let abbreviation = c == '.' && is_abbreviation(&text[start..i]);
                (at_gap && !abbreviation).then_some(i + 1)
            }
            _ => None,
        };
        if let Some(end) = end_here {
            push_trimmed(text, start, end, &mut out);
            start = if bytes[i] == b'\n' { i + 1 } else { end };
        }
    }
    push_trimmed(text, start, text.len(), &mut out);
    out
}

fn is_abbreviation(before: &str) -> bool {
    let word: String = before
        .rsplit(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("")
        .to_lowercase();
    let letters = word.chars().filter(|c| c.is_alphabetic()).count();
    letters == 1 && word.chars().count() == 1 || ABBREVIATIONS.binary_search(&word.as_str()).is_ok()
}

fn push_trimmed(text: &str, start: usize, end: usize, out: &mut Vec<(usize, usize)>) {
    let s = &text[start..end];
    let lead = s.len() - s.trim_start().len();
    let trimmed = s.trim();
    if !trimmed.is_empty() {
        out.push((start + lead, start + lead + trimmed.len()));
    }
}

/// Scales `v` to unit length; leaves a zero vector alone.
pub(crate) fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Dot product, i.e. cosine similarity of unit vectors.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Calls the embedder and checks its answer: one finite vector per text, all of dimension
/// `dim` when given (else of one common dimension), normalised to unit length.
pub(crate) fn embed_checked(
    embedder: &dyn crate::TextEmbedder,
    texts: &[&str],
    dim: Option<usize>,
) -> Result<Vec<Vec<f32>>, GuardError> {
    if texts.is_empty() {
        return Ok(Vec::new());
    }
    let mut vectors = embedder.embed(texts)?;
    if vectors.len() != texts.len() {
        return Err(GuardError::EmbedderShape(format!(
            "{} vectors for {} texts",
            vectors.len(),
            texts.len()
        )));
    }
    let want = dim.unwrap_or(vectors[0].len());
    for v in &mut vectors {
        if v.is_empty() || v.len() != want {
            return Err(GuardError::EmbedderShape(format!(
                "dimension {} where {want} was expected",
                v.len()
            )));
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err(GuardError::EmbedderShape("non-finite value".to_string()));
        }
        normalize(v);
    }
    Ok(vectors)
}

/// Memoises embeddings for the duration of one check, so that a text embedded by one check
/// (an answer sentence for topics) is not embedded again by another (grounding).
pub(crate) struct EmbedCache<'a> {
    embedder: &'a dyn crate::TextEmbedder,
    dim: std::cell::Cell<Option<usize>>,
    vectors: std::cell::RefCell<std::collections::HashMap<String, Vec<f32>>>,
}

impl<'a> EmbedCache<'a> {
    pub(crate) fn new(embedder: &'a dyn crate::TextEmbedder, dim: Option<usize>) -> Self {
        EmbedCache {
            embedder,
            dim: std::cell::Cell::new(dim),
            vectors: Default::default(),
        }
    }

    /// Unit vectors for `texts`, embedding only those not seen before, in one call.
    pub(crate) fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, GuardError> {
        let mut missing: Vec<&str> = Vec::new();
        {
            let known = self.vectors.borrow();
            for t in texts {
                if !known.contains_key(*t) && !missing.contains(t) {
                    missing.push(t);
                }
            }
        }
        if !missing.is_empty() {
            let fresh = embed_checked(self.embedder, &missing, self.dim.get())?;
            self.dim.set(fresh.first().map(Vec::len).or(self.dim.get()));
            let mut known = self.vectors.borrow_mut();
            for (t, v) in missing.into_iter().zip(fresh) {
                known.insert(t.to_string(), v);
            }
        }
        let known = self.vectors.borrow();
        Ok(texts.iter().map(|t| known[*t].clone()).collect())
    }
}

/// Maps a cosine similarity onto 0..=1 between `floor` (0) and `ceil` (1).
pub(crate) fn rescale(cos: f32, floor: f32, ceil: f32) -> f32 {
    ((cos - floor) / (ceil - floor)).clamp(0.0, 1.0)
}

/// Rounds a score to three decimals so that assessments print stably.
pub(crate) fn round3(x: f32) -> f32 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        tokenize(text).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn stop_words_are_sorted_for_binary_search() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
        assert!(ABBREVIATIONS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn tokens_keep_offsets_and_fold_case_apostrophes_invisibles_numbers() {
        let text = "Don’t SHOUT: f\u{200B}oo costs $1,299.50 (3.5%).";
        let toks = tokenize(text);
        let w: Vec<&str> = toks.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(w, ["don't", "shout", "foo", "costs", "1299.50", "3.5"]);
        assert_eq!(&text[toks[1].start..toks[1].end], "SHOUT");
        assert_eq!(&text[toks[2].start..toks[2].end], "f\u{200B}oo");
        assert_eq!(words("Ünïcode ÉTÉ"), ["ünïcode", "été"]);
        assert_eq!(words("end. 'quoted'"), ["end", "quoted"]);
    }

    #[test]
    fn stemmer_folds_common_inflections() {
        for group in [
            &["charge", "charges", "charged", "charging"][..],
            &["refund", "refunds", "refunded", "refunding"],
            &["policy", "policies"],
            &["stop", "stopped", "stopping", "stops"],
            &["store", "stored", "storing", "stores"],
            &["box", "boxes"],
        ] {
            let stems: Vec<String> = group.iter().map(|w| stem(w)).collect();
            assert!(stems.windows(2).all(|p| p[0] == p[1]), "{group:?} -> {stems:?}");
        }
        assert_ne!(stem("class"), stem("clas"));
    }

    #[test]
    fn sentences_split_on_terminators_and_lines_but_not_abbreviations() {
        let text = "Dr. Smith arrived at 3.5 p.m. today. It rained!  Why?\n- item one\n- item two";
        let s: Vec<&str> = split_sentences(text)
            .into_iter()
            .map(|(a, b)| &text[a..b])
            .collect();
        assert_eq!(
            s,
            [
                "Dr. Smith arrived at 3.5 p.m. today.",
                "It rained!",
                "Why?",
                "- item one",
                "- item two"
            ]
        );
        assert!(split_sentences("  \n ").is_empty());
        assert_eq!(split_sentences("e.g. this, i.e. that.").len(), 1);
    }

    #[test]
    fn vectors_normalise_and_rescale() {
        let mut v = vec![3.0, 4.0];
        normalize(&mut v);
        assert!((dot(&v, &v) - 1.0).abs() < 1e-6);
        let mut z = vec![0.0, 0.0];
        normalize(&mut z);
        assert_eq!(z, [0.0, 0.0]);
        assert_eq!(rescale(0.1, 0.3, 0.8), 0.0);
        assert_eq!(rescale(0.9, 0.3, 0.8), 1.0);
        assert!((rescale(0.55, 0.3, 0.8) - 0.5).abs() < 1e-6);
    }
}
