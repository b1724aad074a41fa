//! Denied topics, detected by embedding similarity.
//!
//! Each topic is represented by the embeddings of its definition and of each example,
//! computed once when the guard is built. A text is scored as the best cosine similarity between
//! any of its *units* — the whole text and each sentence — and any of the topic's vectors. The
//! sentence units matter: a single off-limits question inside a long, otherwise harmless message
//! is diluted in the whole-text embedding but stands out on its own. Long texts have their
//! sentences grouped into at most [`MAX_SENTENCE_UNITS`] consecutive runs to bound the embedding
//! cost.
//!
//! Embedding similarity is model-specific: the default threshold (0.6) suits sentence-transformer
//! models such as all-MiniLM-L6-v2; operators tune it per topic with [`crate::Guard::topic_scores`].

use std::sync::Arc;

use crate::error::GuardError;
use crate::policy::{FilterAction, TopicPolicy};
use crate::text::{dot, embed_checked, split_sentences};
use crate::{Direction, TextEmbedder};

/// At most this many denied topics (Bedrock's limit).
pub const MAX_TOPICS: usize = 30;
/// At most this many examples per topic (Bedrock's limit).
pub const MAX_EXAMPLES: usize = 5;
/// Longest definition or example, in characters.
pub const MAX_TOPIC_TEXT_CHARS: usize = 1_000;
/// Sentence units embedded per text besides the whole text.
pub const MAX_SENTENCE_UNITS: usize = 32;

struct CompiledTopic {
    name: String,
    threshold: f32,
    input: FilterAction,
    output: FilterAction,
    vectors: Vec<Vec<f32>>,
}

/// The compiled topic section of a policy.
pub(crate) struct TopicIndex {
    topics: Vec<CompiledTopic>,
    dim: usize,
}

/// The best score of one topic on one text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TopicScore {
    pub topic: usize,
    pub score: f32,
    /// The unit that scored best.
    pub unit: (usize, usize),
}

impl TopicIndex {
    pub(crate) fn new(
        policies: &[TopicPolicy],
        default_threshold: f32,
        embedder: Option<&Arc<dyn TextEmbedder>>,
    ) -> Result<TopicIndex, GuardError> {
        if policies.is_empty() {
            return Ok(TopicIndex {
                topics: Vec::new(),
                dim: 0,
            });
        }
        let embedder = embedder.ok_or(GuardError::EmbedderRequired)?;
        if policies.len() > MAX_TOPICS {
            return Err(GuardError::TooManyTopics {
                count: policies.len(),
                max: MAX_TOPICS,
            });
        }
        let mut texts: Vec<&str> = Vec::new();
        for (i, t) in policies.iter().enumerate() {
            let invalid = |reason: &str| GuardError::InvalidTopic {
                name: t.name.clone(),
                reason: reason.to_string(),
            };
            let name = t.name.trim();
            if name.is_empty() || name.chars().count() > 100 {
                return Err(invalid("name must be 1 to 100 characters"));
            }
            if policies[..i]
                .iter()
                .any(|p| p.name.trim().eq_ignore_ascii_case(name))
            {
                return Err(GuardError::Duplicate {
                    kind: "denied topic",
                    name: name.to_string(),
                });
            }
            if t.definition.trim().is_empty() {
                return Err(invalid("definition must not be empty"));
            }
            if t.examples.len() > MAX_EXAMPLES {
                return Err(GuardError::TooManyExamples {
                    topic: name.to_string(),
                    count: t.examples.len(),
                    max: MAX_EXAMPLES,
                });
            }
            for text in std::iter::once(&t.definition).chain(&t.examples) {
                if text.trim().is_empty() || text.chars().count() > MAX_TOPIC_TEXT_CHARS {
                    return Err(invalid("definition and examples must be 1 to 1,000 characters"));
                }
                texts.push(text.trim());
            }
            if let Some(th) = t.threshold {
                crate::check_threshold(&format!("topics.{name}.threshold"), th, 0.0, 1.0)?;
            }
        }
        let mut vectors = embed_checked(embedder.as_ref(), &texts, None)?.into_iter();
        let dim = vectors.as_slice().first().map_or(0, Vec::len);
        let topics = policies
            .iter()
            .map(|t| CompiledTopic {
                name: t.name.trim().to_string(),
                threshold: t.threshold.unwrap_or(default_threshold),
                input: t.input_action,
                output: t.output_action,
                vectors: vectors.by_ref().take(1 + t.examples.len()).collect(),
            })
            .collect();
        Ok(TopicIndex { topics, dim })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.topics.is_empty()
    }

    pub(crate) fn dim(&self) -> usize {
        self.dim
    }

    pub(crate) fn name(&self, topic: usize) -> &str {
        &self.topics[topic].name
    }

    pub(crate) fn threshold(&self, topic: usize) -> f32 {
        self.topics[topic].threshold
    }

    pub(crate) fn action(&self, topic: usize, dir: Direction) -> FilterAction {
        let t = &self.topics[topic];
        match dir {
            Direction::Input => t.input,
            Direction::Output => t.output,
        }
    }

    /// Whether any topic is checked in `dir`.
    pub(crate) fn is_active(&self, dir: Direction) -> bool {
        (0..self.topics.len()).any(|i| self.action(i, dir) != FilterAction::None)
    }

    /// The best score of every topic over the given units and their (unit) vectors.
    pub(crate) fn score(&self, units: &[(usize, usize)], vectors: &[Vec<f32>]) -> Vec<TopicScore> {
        self.topics
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut best = TopicScore {
                    topic: i,
                    score: f32::NEG_INFINITY,
                    unit: units.first().copied().unwrap_or((0, 0)),
                };
                for (unit, v) in units.iter().zip(vectors) {
                    for tv in &t.vectors {
                        let s = dot(v, tv);
                        if s > best.score {
                            best.score = s;
                            best.unit = *unit;
                        }
                    }
                }
                best.score = best.score.max(0.0);
                best
            })
            .collect()
    }
}

/// The units a text is scored on: the whole (trimmed) text first, then its sentences — or, for
/// long texts, runs of consecutive sentences — when there is more than one.
pub(crate) fn text_units(text: &str) -> Vec<(usize, usize)> {
    let trimmed_start = text.len() - text.trim_start().len();
    let whole = (trimmed_start, trimmed_start + text.trim().len());
    if whole.0 == whole.1 {
        return Vec::new();
    }
    let sentences = split_sentences(text);
    let mut units = vec![whole];
    if sentences.len() > 1 {
        let per = sentences.len().div_ceil(MAX_SENTENCE_UNITS);
        for group in sentences.chunks(per) {
            units.push((group[0].0, group[group.len() - 1].1));
        }
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_whole_text_then_sentences_grouped_when_long() {
        assert!(text_units("   ").is_empty());
        assert_eq!(text_units(" One sentence. "), [(1, 14)]);
        let text = "First one. Second one.";
        assert_eq!(text_units(text), [(0, 22), (0, 10), (11, 22)]);
        let long: String = (0..100).map(|i| format!("Sentence {i}. ")).collect();
        let units = text_units(&long);
        assert_eq!(
            units.len(),
            1 + 100usize.div_ceil(100usize.div_ceil(MAX_SENTENCE_UNITS))
        );
        assert!(units.len() <= 1 + MAX_SENTENCE_UNITS);
    }
}
