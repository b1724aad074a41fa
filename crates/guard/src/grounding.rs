//! Contextual grounding and relevance, scored without an LLM.
//!
//! Bedrock asks a model whether each claim of the answer is supported by the sources. groundwork
//! approximates that with two cheap, explainable measures per answer sentence:
//!
//! * **Content-word recall** — the share of the sentence's content words (lowercased, stop words
//!   removed, lightly stemmed; citation markers like `[1]` ignored) that occur in the sources.
//!   Recall is computed against the union of all sources, because one sentence often combines
//!   facts from two chunks; the single best source is still reported.
//! * **Semantic support** (only with an embedder and `semantic = true`) — the best cosine similarity between the
//!   sentence and any source sentence, mapped onto 0..1 (0.3 → 0, 0.85 → 1). This rewards faithful
//!   paraphrases that recall misses.
//!
//! A sentence's support is recall alone, or the mean of both when embeddings are available. It is
//! then multiplied by `(found + 1) / (numbers + 1)` over the numbers the sentence states, since
//! an invented figure ("$500" where the source says "$50") barely moves either measure yet is the
//! typical hallucination that matters.
//!
//! **Answer grounding is the mean of sentence scores weighted by each sentence's number of content
//! words**, i.e. an estimate of the share of the answer's content that the sources support —
//! closest to Bedrock's definition. The minimum was rejected as the headline score because
//! per-sentence heuristics are noisy: one short connective sentence ("This keeps things simple.")
//! would block otherwise faithful answers. A single invented claim still pulls a short answer
//! down, and the per-sentence scores and `min_sentence_score` are returned so that callers can
//! highlight or strip individual sentences.
//!
//! **Relevance** is the share of the question's content words that the answer uses, or, with an
//! embedder, the higher of that and the question–answer cosine mapped onto 0..1 (0.15 → 0,
//! 0.65 → 1).

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;

use crate::assessment::{AppliedAction, GroundingAssessment, GroundingFilter, SentenceGrounding};
use crate::error::GuardError;
use crate::policy::{ContextualGroundingPolicy, GroundingAction};
use crate::text::{EmbedCache, content_word, dot, is_number, rescale, round3, split_sentences, tokenize};

/// Cosine that maps to no semantic support.
const SUPPORT_COS_FLOOR: f32 = 0.3;
/// Cosine that maps to full semantic support.
const SUPPORT_COS_CEIL: f32 = 0.85;
const RELEVANCE_COS_FLOOR: f32 = 0.15;
const RELEVANCE_COS_CEIL: f32 = 0.65;
/// Source sentences embedded per answer; further ones count for recall only.
pub const MAX_SOURCE_SENTENCES: usize = 256;
/// Answer sentences scored; further ones are not (their words still count for relevance).
pub const MAX_ANSWER_SENTENCES: usize = 128;

/// What the answer is checked against.
#[derive(Debug, Clone, Copy)]
pub struct GroundingContext<'a> {
    /// The user's question (for relevance).
    pub question: &'a str,
    /// The texts the answer should be based on (retrieved chunks), in citation order.
    pub sources: &'a [&'a str],
}

/// Citation markers: `[1]`, `[1, 2]`, `[1-3]`, `[^1]`, `[doc 2]`, `[source 3]`, `【1†source】`.
static CITATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\[\s*(?:\^|doc(?:ument)?\s*|source\s*|ref\s*|chunk\s*)?\d+(?:\s*[,;–-]\s*\d+)*\s*\]|【[^】]{0,40}】",
    )
    .expect("citation pattern compiles")
});

struct Sentence {
    range: (usize, usize),
    words: HashSet<String>,
    numbers: Vec<String>,
}

fn words_of(text: &str, offset: usize, skip: &[(usize, usize)]) -> (HashSet<String>, Vec<String>) {
    let mut words = HashSet::new();
    let mut numbers = Vec::new();
    for t in tokenize(text) {
        let (s, e) = (t.start + offset, t.end + offset);
        if skip.iter().any(|&(a, b)| s < b && a < e) {
            continue;
        }
        if let Some(w) = content_word(&t.text) {
            if is_number(&w) && !numbers.contains(&w) {
                numbers.push(w.clone());
            }
            words.insert(w);
        }
    }
    (words, numbers)
}

/// Scores `answer` against `ctx`. Embedding failures fall back to content words and are returned
/// alongside the assessment.
pub(crate) fn assess(
    policy: &ContextualGroundingPolicy,
    answer: &str,
    ctx: &GroundingContext<'_>,
    cache: Option<&EmbedCache<'_>>,
) -> (GroundingAssessment, Option<GuardError>) {
    let citations: Vec<(usize, usize)> = CITATION.find_iter(answer).map(|m| (m.start(), m.end())).collect();
    let sentences: Vec<Sentence> = split_sentences(answer)
        .into_iter()
        .filter_map(|(s, e)| {
            let (words, numbers) = words_of(&answer[s..e], s, &citations);
            (!words.is_empty()).then_some(Sentence {
                range: (s, e),
                words,
                numbers,
            })
        })
        .take(MAX_ANSWER_SENTENCES)
        .collect();
    let sources: Vec<HashSet<String>> = ctx.sources.iter().map(|src| words_of(src, 0, &[]).0).collect();
    let union: HashSet<&str> = sources.iter().flatten().map(String::as_str).collect();
    let (answer_words, _) = words_of(answer, 0, &citations);
    let (question_words, _) = words_of(ctx.question, 0, &[]);

    let mut error = None;
    let semantic = match cache {
        Some(cache) => match semantic_scores(answer, ctx, &sentences, cache) {
            Ok(s) => Some(s),
            Err(e) => {
                error = Some(e);
                None
            }
        },
        None => None,
    };

    let mut scored = Vec::with_capacity(sentences.len());
    for (i, s) in sentences.iter().enumerate() {
        let recall = |set: &dyn Fn(&str) -> bool| {
            s.words.iter().filter(|w| set(w)).count() as f32 / s.words.len() as f32
        };
        let union_recall = recall(&|w| union.contains(w));
        let per_source: Vec<f32> = sources
            .iter()
            .enumerate()
            .map(|(k, src)| {
                let lex = recall(&|w| src.contains(w));
                match &semantic {
                    Some(sem) => 0.5 * lex + 0.5 * sem.per_source[i][k],
                    None => lex,
                }
            })
            .collect();
        let best_source = per_source
            .iter()
            .enumerate()
            .filter(|&(_, &v)| v > 0.0)
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(k, _)| k);
        let base = match &semantic {
            Some(sem) => 0.5 * union_recall + 0.5 * sem.sentence[i],
            None => union_recall,
        };
        let found = s.numbers.iter().filter(|n| union.contains(n.as_str())).count();
        let factor = (found + 1) as f32 / (s.numbers.len() + 1) as f32;
        scored.push(SentenceGrounding {
            start: s.range.0,
            end: s.range.1,
            score: round3((base * factor).clamp(0.0, 1.0)),
            best_source,
            content_words: s.words.len(),
        });
    }

    let total: usize = scored.iter().map(|s| s.content_words).sum();
    let grounding = if total == 0 {
        1.0
    } else {
        scored
            .iter()
            .map(|s| s.score * s.content_words as f32)
            .sum::<f32>()
            / total as f32
    };
    let min_sentence_score = scored.iter().map(|s| s.score).fold(1.0f32, f32::min);

    let lexical_relevance = if question_words.is_empty() {
        1.0
    } else {
        question_words
            .iter()
            .filter(|w| answer_words.contains(*w))
            .count() as f32
            / question_words.len() as f32
    };
    let relevance = match &semantic {
        Some(sem) => lexical_relevance.max(sem.relevance),
        None => lexical_relevance,
    };

    let filter = |score: f32, threshold: Option<f32>| {
        let detected = threshold.is_some_and(|t| score < t);
        GroundingFilter {
            score: round3(score),
            threshold,
            detected,
            action: match (detected, policy.action) {
                (true, GroundingAction::Block) => AppliedAction::Blocked,
                _ => AppliedAction::None,
            },
        }
    };
    let assessment = GroundingAssessment {
        grounding: filter(grounding, policy.grounding_threshold),
        relevance: filter(relevance, policy.relevance_threshold),
        min_sentence_score: round3(min_sentence_score),
        sentences: scored,
        used_embeddings: semantic.is_some(),
    };
    (assessment, error)
}

struct Semantic {
    /// Per answer sentence: best rescaled similarity to any source sentence.
    sentence: Vec<f32>,
    /// Per answer sentence and source: best rescaled similarity to that source's sentences.
    per_source: Vec<Vec<f32>>,
    relevance: f32,
}

fn semantic_scores(
    answer: &str,
    ctx: &GroundingContext<'_>,
    sentences: &[Sentence],
    cache: &EmbedCache<'_>,
) -> Result<Semantic, GuardError> {
    let mut texts: Vec<&str> = Vec::new();
    let question = ctx.question.trim();
    let whole = answer.trim();
    texts.push(if question.is_empty() { whole } else { question });
    texts.push(whole);
    texts.extend(sentences.iter().map(|s| &answer[s.range.0..s.range.1]));
    let mut owners: Vec<usize> = Vec::new(); // source index of each source sentence
    'sources: for (k, src) in ctx.sources.iter().enumerate() {
        for (s, e) in split_sentences(src) {
            if owners.len() == MAX_SOURCE_SENTENCES {
                break 'sources;
            }
            texts.push(&src[s..e]);
            owners.push(k);
        }
    }
    let vectors = cache.embed(&texts)?;
    let relevance = if question.is_empty() {
        1.0
    } else {
        rescale(
            dot(&vectors[0], &vectors[1]),
            RELEVANCE_COS_FLOOR,
            RELEVANCE_COS_CEIL,
        )
    };
    let answer_vecs = &vectors[2..2 + sentences.len()];
    let source_vecs = &vectors[2 + sentences.len()..];
    let mut sentence = Vec::with_capacity(sentences.len());
    let mut per_source = Vec::with_capacity(sentences.len());
    for av in answer_vecs {
        let mut best = vec![0.0f32; ctx.sources.len()];
        for (sv, &k) in source_vecs.iter().zip(&owners) {
            let s = rescale(dot(av, sv), SUPPORT_COS_FLOOR, SUPPORT_COS_CEIL);
            best[k] = best[k].max(s);
        }
        sentence.push(best.iter().copied().fold(0.0, f32::max));
        per_source.push(best);
    }
    Ok(Semantic {
        sentence,
        per_source,
        relevance,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ContextualGroundingPolicy {
        ContextualGroundingPolicy {
            grounding_threshold: Some(0.6),
            relevance_threshold: Some(0.3),
            action: GroundingAction::Block,
            semantic: true,
        }
    }

    const SOURCES: &[&str] = &[
        "Refunds are available within 30 days of purchase. Items must be unused and in their \
         original packaging.",
        "Shipping is free for orders over $50. Express delivery costs $12 and arrives in two \
         business days.",
    ];

    fn run(question: &str, answer: &str) -> GroundingAssessment {
        let ctx = GroundingContext {
            question,
            sources: SOURCES,
        };
        assess(&policy(), answer, &ctx, None).0
    }

    #[test]
    fn faithful_answer_scores_high_and_cites_are_ignored() {
        let a = run(
            "How long do I have to get a refund?",
            "You can get a refund within 30 days of purchase [1]. The items must be unused and \
             in the original packaging [1].",
        );
        assert!(a.grounding.score >= 0.8, "{a:?}");
        assert!(!a.grounding.detected);
        assert!(a.relevance.score >= 0.5, "{a:?}");
        assert_eq!(a.sentences.len(), 2);
        assert!(a.sentences.iter().all(|s| s.best_source == Some(0)));
    }

    #[test]
    fn invented_answer_scores_low() {
        let a = run(
            "How long do I have to get a refund?",
            "Refunds are processed by our partner bank within 90 days. You also receive a \
             lifetime warranty and a complimentary gift card.",
        );
        assert!(a.grounding.score < 0.4, "{a:?}");
        assert!(a.grounding.detected);
        assert_eq!(a.grounding.action, AppliedAction::Blocked);
    }

    #[test]
    fn wrong_numbers_pull_a_sentence_down() {
        let right = run("", "Express delivery costs $12 [2].");
        let wrong = run("", "Express delivery costs $120 [2].");
        assert!(right.grounding.score > 0.9, "{right:?}");
        assert!(wrong.grounding.score < 0.5, "{wrong:?}");
    }

    #[test]
    fn combined_sources_count_and_filler_weighs_little() {
        let a = run(
            "refund shipping",
            "Refunds take 30 days and shipping is free over $50. Hope that helps!",
        );
        assert!(a.grounding.score >= 0.6, "{a:?}");
        assert!(a.min_sentence_score < 0.5);
    }

    #[test]
    fn irrelevant_answer_has_low_relevance_and_no_sources_means_ungrounded() {
        let a = run("What is the capital of France?", "Shipping is free over $50.");
        assert!(a.relevance.score < 0.3 && a.relevance.detected, "{a:?}");
        let ctx = GroundingContext {
            question: "q",
            sources: &[],
        };
        let (a, _) = assess(&policy(), "Paris is the capital.", &ctx, None);
        assert_eq!(a.grounding.score, 0.0);
        let (a, _) = assess(&policy(), "Yes.", &ctx, None);
        assert_eq!(a.grounding.score, 1.0, "no content words, nothing ungrounded");
        assert!(a.sentences.is_empty());
    }
}
