//! Word filters: custom words and phrases plus the built-in profanity list.
//!
//! Matching works on word tokens, not substrings, so "class", "assess" and "Scunthorpe" never
//! match "ass" or "cunt", while case, Unicode case, invisible characters inside a word
//! ("f\u{200B}uck") and the whitespace or hyphens between the words of a phrase do not matter.
//! Entries are indexed by their first word, so a text is scanned once whatever the list size
//! (Bedrock allows 10,000 custom words).

use std::collections::HashMap;

use crate::assessment::WordSource;
use crate::error::GuardError;
use crate::profanity::PROFANITY;
use crate::text::{Token, is_invisible, tokenize};

/// At most this many custom words and phrases (Bedrock's limit).
pub const MAX_CUSTOM_WORDS: usize = 10_000;
/// At most this many characters per custom word or phrase.
pub const MAX_WORD_CHARS: usize = 100;
/// Findings reported per text; further matches are not listed (the verdict is unaffected).
const MAX_FINDINGS: usize = 100;

#[derive(Debug)]
struct Entry {
    tokens: Vec<String>,
    word: String,
    source: WordSource,
}

/// One match: which entry, where.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WordHit {
    pub word: String,
    pub source: WordSource,
    pub start: usize,
    pub end: usize,
}

/// Compiled word lists.
#[derive(Debug, Default)]
pub(crate) struct WordFilter {
    by_first: HashMap<String, Vec<Entry>>,
}

impl WordFilter {
    pub(crate) fn new(custom: &[String], profanity: bool) -> Result<WordFilter, GuardError> {
        if custom.len() > MAX_CUSTOM_WORDS {
            return Err(GuardError::InvalidPolicy {
                field: "words.custom".to_string(),
                reason: format!("{} entries, at most {MAX_CUSTOM_WORDS}", custom.len()),
            });
        }
        let mut filter = WordFilter::default();
        for word in custom {
            let invalid = |reason: &str| GuardError::InvalidWord {
                word: word.clone(),
                reason: reason.to_string(),
            };
            if word.chars().count() > MAX_WORD_CHARS {
                return Err(invalid("longer than 100 characters"));
            }
            if let Some(c) = word
                .chars()
                .find(|&c| !(c.is_alphanumeric() || c.is_whitespace() || matches!(c, '\'' | '’' | '-')))
            {
                return Err(invalid(&format!(
                    "contains `{c}`; only letters, digits, spaces, apostrophes and hyphens match \
                     as whole words"
                )));
            }
            let tokens: Vec<String> = tokenize(word).into_iter().map(|t| t.text).collect();
            if tokens.is_empty() {
                return Err(invalid("has no letters or digits"));
            }
            filter.add(tokens, WordSource::Custom);
        }
        if profanity {
            for word in PROFANITY {
                filter.add(vec![(*word).to_string()], WordSource::Profanity);
            }
        }
        Ok(filter)
    }

    fn add(&mut self, tokens: Vec<String>, source: WordSource) {
        let bucket = self.by_first.entry(tokens[0].clone()).or_default();
        if bucket.iter().any(|e| e.tokens == tokens) {
            return;
        }
        bucket.push(Entry {
            word: tokens.join(" "),
            tokens,
            source,
        });
        // Longest phrase first, so that the longest match at a position wins.
        bucket.sort_by_key(|e| std::cmp::Reverse(e.tokens.len()));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_first.is_empty()
    }

    /// All non-overlapping matches in `text`, leftmost-longest.
    pub(crate) fn find(&self, text: &str) -> Vec<WordHit> {
        if self.is_empty() {
            return Vec::new();
        }
        let tokens = tokenize(text);
        let mut hits = Vec::new();
        let mut i = 0;
        while i < tokens.len() && hits.len() < MAX_FINDINGS {
            let matched = self.by_first.get(&tokens[i].text).and_then(|bucket| {
                bucket
                    .iter()
                    .find(|e| phrase_matches(text, &tokens[i..], &e.tokens))
            });
            match matched {
                Some(e) => {
                    let last = &tokens[i + e.tokens.len() - 1];
                    hits.push(WordHit {
                        word: e.word.clone(),
                        source: e.source,
                        start: tokens[i].start,
                        end: last.end,
                    });
                    i += e.tokens.len();
                }
                None => i += 1,
            }
        }
        hits
    }
}

/// Whether `phrase` matches the tokens at the start of `tokens`, with only whitespace, hyphens
/// or invisible characters between consecutive words.
fn phrase_matches(text: &str, tokens: &[Token], phrase: &[String]) -> bool {
    if tokens.len() < phrase.len() {
        return false;
    }
    for (k, word) in phrase.iter().enumerate() {
        if tokens[k].text != *word {
            return false;
        }
        if k > 0 {
            let gap = &text[tokens[k - 1].end..tokens[k].start];
            if !gap
                .chars()
                .all(|c| c.is_whitespace() || c == '-' || is_invisible(c))
            {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(filter: &WordFilter, text: &str) -> Vec<String> {
        filter.find(text).into_iter().map(|h| h.word).collect()
    }

    #[test]
    fn profanity_matches_whole_words_and_inflections_only() {
        let f = WordFilter::new(&[], true).unwrap();
        for benign in [
            "A classic class in Scunthorpe will assess the bass and the grass.",
            "Cocktails at Dickens' house; a finger prick test; blue tits nest here.",
            "Hello, shiitake mushrooms and the assassin's passage.",
            "Summa cum laude, the dam held, what the hell, that's crap.",
        ] {
            assert!(found(&f, benign).is_empty(), "{benign}: {:?}", found(&f, benign));
        }
        assert_eq!(found(&f, "What the FUCK is this shit?"), ["fuck", "shit"]);
        assert_eq!(
            found(&f, "He was fucking annoyed, the Bullshit!"),
            ["fucking", "bullshit"]
        );
        assert_eq!(found(&f, "you ass."), ["ass"]);
        assert_eq!(found(&f, "f\u{200B}uck that"), ["fuck"]);
        assert_eq!(found(&f, "Ünicode ASSHOLE"), ["asshole"]);
    }

    #[test]
    fn custom_phrases_match_across_whitespace_and_case() {
        let words = vec!["Project Falcon".to_string(), "acme-corp".to_string()];
        let f = WordFilter::new(&words, false).unwrap();
        let text = "About PROJECT\n  falcon and Acme Corp, not projects falconry.";
        let hits = f.find(text);
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].word, "project falcon");
        assert_eq!(&text[hits[0].start..hits[0].end], "PROJECT\n  falcon");
        assert_eq!(hits[1].word, "acme corp");
        assert!(
            f.find("project, falcon").is_empty(),
            "punctuation breaks a phrase"
        );
        assert!(f.find("projectfalcon").is_empty());
    }

    #[test]
    fn longest_phrase_wins_and_duplicates_collapse() {
        let words = vec!["red".to_string(), "red alert".to_string(), "RED".to_string()];
        let f = WordFilter::new(&words, false).unwrap();
        assert_eq!(found(&f, "red alert now, red"), ["red alert", "red"]);
    }

    #[test]
    fn invalid_custom_words_are_typed_errors() {
        for bad in ["c++", "", "  ", "a.b", &"x".repeat(101)] {
            let err = WordFilter::new(&[bad.to_string()], false).unwrap_err();
            assert!(matches!(err, GuardError::InvalidWord { .. }), "{bad}: {err}");
        }
    }
}
