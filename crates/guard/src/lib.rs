//! groundwork's guardrail policy engine — the counterpart of Amazon Bedrock Guardrails and its
//! `ApplyGuardrail` API, as pure logic.
//!
//! A [`GuardPolicy`] (TOML or JSON, see [`policy`]) becomes a [`Guard`] once, at start-up; every
//! mistake in the policy surfaces there as a typed [`GuardError`]. The guard is then applied at
//! three points of a RAG request:
//!
//! * [`Guard::check_input`] on the user's question, before retrieval;
//! * [`Guard::check_retrieved`] on the retrieved chunks, before they enter the prompt (indirect
//!   prompt injection);
//! * [`Guard::check_output`] on the model's answer, with the question and the sources for the
//!   contextual grounding check.
//!
//! Each returns an [`Assessment`] shaped like Bedrock's (or a [`ChunkVerdict`] per chunk):
//! the overall action, the text to use from here on (original, anonymised, or the blocked
//! message) and one finding per detection. Findings never contain the matched text — only
//! offsets, lengths and policy names — because assessments are logged and audited.
//!
//! # Checks and their order
//!
//! Cheap checks run first; they always all run, so that an audit record lists everything wrong
//! with a text. Checks that call the embedder run last and are **skipped once a cheaper check
//! has blocked**: a blocked text is replaced by the blocked message whatever they would find, so
//! skipping them cannot change the outcome (they are listed in [`Assessment::skipped`]).
//!
//! | # | check | input | retrieved | output | cost |
//! |---|---|---|---|---|---|
//! | 1 | word filters (custom words, profanity) | ✓ | | ✓ | token scan, hash lookups |
//! | 2 | sensitive information (caller's PII spans, custom regexes) | ✓ | | ✓ | linear regexes |
//! | 3 | prompt attack | ✓ | ✓ | | normalisation + one regex set |
//! | 4 | denied topics | ✓ | | ✓ | embeddings |
//! | 5 | contextual grounding and relevance | | | ✓ | token sets (+ embeddings) |
//!
//! All checks but the embedding calls take well under a millisecond for 1,000 characters
//! (`cargo run --release -p groundwork-guard --example guard_bench`).
//!
//! The embedder ([`TextEmbedder`]) and the PII detector ([`PiiSpan`]) live in other crates and
//! enter through these small interfaces, which keeps this crate dependency-light and testable.

/// The assessment types live in `groundwork-core` (answers carry them); re-exported here.
pub use groundwork_core::guardrail as assessment;
mod attack;
pub mod error;
pub mod grounding;
pub mod policy;
mod profanity;
pub mod sensitive;
mod text;
pub mod topics;
pub mod words;

use std::sync::Arc;

pub use assessment::{
    AppliedAction, Assessment, CheckError, ChunkDisposition, ChunkVerdict, GroundingAssessment,
    GroundingFilter, GuardrailAction, GuardrailTrace, PiiFinding, PromptAttackAssessment, RegexFinding,
    Replacement, SensitiveInformationAssessment, SentenceGrounding, SignalMatch, TopicFinding, WordFinding,
    WordSource,
};
pub use error::GuardError;
pub use grounding::GroundingContext;
pub use policy::{
    ContextualGroundingPolicy, FilterAction, GroundingAction, GuardPolicy, PiiAction, PiiEntityPolicy,
    PromptAttackPolicy, RegexPolicy, RetrievedAction, SensitiveInformationPolicy, TopicPolicy, WordPolicy,
};
pub use sensitive::PiiSpan;

use sensitive::SensitiveFilter;
use text::EmbedCache;
use topics::{TopicIndex, text_units};
use words::WordFilter;

/// Turns texts into embedding vectors; implemented by the service on top of groundwork's
/// embedder. Vectors should be L2-normalised; the guard normalises them again defensively.
pub trait TextEmbedder: Send + Sync {
    /// One vector per text, in order, all of one dimension.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, GuardError>;
}

/// Whether a text is going into the model or coming out of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Input,
    Output,
}

/// Longest accepted blocked message, in characters (Bedrock's limit).
pub const MAX_BLOCKED_MESSAGE_CHARS: usize = 500;

/// A compiled guardrail policy. Cheap to share (`Arc<Guard>`); every check takes `&self`.
pub struct Guard {
    policy: GuardPolicy,
    embedder: Option<Arc<dyn TextEmbedder>>,
    words: WordFilter,
    sensitive: SensitiveFilter,
    topics: TopicIndex,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("policy", &self.policy)
            .field("embedder", &self.embedder.is_some())
            .finish_non_exhaustive()
    }
}

pub(crate) fn check_threshold(field: &str, value: f32, min: f32, max: f32) -> Result<(), GuardError> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(GuardError::InvalidThreshold {
            field: field.to_string(),
            value,
            min,
            max,
        })
    }
}

/// Collects findings and reasons while the checks of one text run.
struct Run {
    assessment: Assessment,
    block_reasons: Vec<String>,
    masked: bool,
}

impl Run {
    fn new(text: &str) -> Run {
        Run {
            assessment: Assessment {
                action: GuardrailAction::None,
                action_reason: None,
                blocked: false,
                detected: false,
                output_text: text.to_string(),
                topics: Vec::new(),
                words: Vec::new(),
                sensitive_information: SensitiveInformationAssessment::default(),
                prompt_attack: None,
                contextual_grounding: None,
                skipped: Vec::new(),
                errors: Vec::new(),
                replacements: Vec::new(),
            },
            block_reasons: Vec::new(),
            masked: false,
        }
    }

    fn blocked(&self) -> bool {
        !self.block_reasons.is_empty()
    }

    fn finish(mut self, blocked_message: &str) -> Assessment {
        let a = &mut self.assessment;
        a.blocked = !self.block_reasons.is_empty();
        a.detected = a.blocked
            || self.masked
            || !a.topics.is_empty()
            || !a.words.is_empty()
            || !a.sensitive_information.pii_entities.is_empty()
            || !a.sensitive_information.regexes.is_empty()
            || a.prompt_attack.as_ref().is_some_and(|p| p.detected)
            || a.contextual_grounding
                .as_ref()
                .is_some_and(|g| g.grounding.detected || g.relevance.detected);
        if a.blocked {
            a.output_text = blocked_message.to_string();
            a.replacements.clear();
            a.action_reason = Some(self.block_reasons.join("; "));
        } else if self.masked {
            a.action_reason = Some("sensitive information anonymized".to_string());
        }
        a.action = if a.blocked || self.masked {
            GuardrailAction::GuardrailIntervened
        } else {
            GuardrailAction::None
        };
        self.assessment
    }
}

impl Guard {
    /// Validates and compiles `policy`. Denied topics are embedded here, once, which needs an
    /// `embedder` ([`GuardError::EmbedderRequired`] without one); grounding uses it when given.
    pub fn new(policy: GuardPolicy, embedder: Option<Arc<dyn TextEmbedder>>) -> Result<Guard, GuardError> {
        if policy.name.trim().is_empty() {
            return Err(GuardError::EmptyPolicyName);
        }
        for (field, msg) in [
            ("blocked_input_message", &policy.blocked_input_message),
            ("blocked_output_message", &policy.blocked_output_message),
        ] {
            let n = msg.chars().count();
            if msg.trim().is_empty() || n > MAX_BLOCKED_MESSAGE_CHARS {
                return Err(GuardError::InvalidPolicy {
                    field: field.to_string(),
                    reason: format!("must be 1 to {MAX_BLOCKED_MESSAGE_CHARS} characters"),
                });
            }
        }
        check_threshold("topic_threshold", policy.topic_threshold, 0.0, 1.0)?;
        if let Some(pa) = &policy.prompt_attack {
            check_threshold("prompt_attack.threshold", pa.threshold, 0.01, 1.0)?;
            attack::warm_up();
        }
        if let Some(cg) = &policy.contextual_grounding {
            for (field, t) in [
                ("contextual_grounding.grounding_threshold", cg.grounding_threshold),
                ("contextual_grounding.relevance_threshold", cg.relevance_threshold),
            ] {
                if let Some(t) = t {
                    check_threshold(field, t, 0.0, 0.99)?;
                }
            }
        }
        let words = WordFilter::new(&policy.words.custom, policy.words.profanity)?;
        let sensitive = SensitiveFilter::new(&policy.sensitive_information)?;
        let topics = TopicIndex::new(&policy.topics, policy.topic_threshold, embedder.as_ref())?;
        Ok(Guard {
            policy,
            embedder,
            words,
            sensitive,
            topics,
        })
    }

    /// The policy this guard was built from.
    pub fn policy(&self) -> &GuardPolicy {
        &self.policy
    }

    /// Checks a user input: words, sensitive information, prompt attack, then denied topics.
    /// `pii` are the spans the PII detector found in `text` (byte offsets, sorted,
    /// non-overlapping; invalid spans are ignored).
    pub fn check_input(&self, text: &str, pii: &[PiiSpan]) -> Assessment {
        let mut run = Run::new(text);
        self.run_words(&mut run, text, Direction::Input);
        self.run_sensitive(&mut run, text, pii, Direction::Input);
        if let Some(pa) = &self.policy.prompt_attack
            && pa.input_action != FilterAction::None
        {
            let scan = attack::scan(text, attack::Source::Input);
            let detected = scan.score >= pa.threshold;
            let block = detected && pa.input_action == FilterAction::Block;
            if block {
                let names: Vec<&str> = scan.signals.iter().map(|s| s.signal.as_str()).collect();
                run.block_reasons.push(format!(
                    "prompt attack: score {} >= {} ({})",
                    scan.score,
                    pa.threshold,
                    names.join(", ")
                ));
            }
            run.assessment.prompt_attack = Some(PromptAttackAssessment {
                score: scan.score,
                threshold: pa.threshold,
                detected,
                action: if block {
                    AppliedAction::Blocked
                } else {
                    AppliedAction::None
                },
                signals: scan.signals,
            });
        }
        let cache = self.cache();
        self.run_topics(&mut run, text, Direction::Input, cache.as_ref());
        run.finish(&self.policy.blocked_input_message)
    }

    /// Screens retrieved chunks for indirect prompt injection. Returns one verdict per chunk, in
    /// order. Without a `prompt_attack` section (or with `retrieved_action = "NONE"`) every
    /// chunk is kept unflagged.
    pub fn check_retrieved(&self, chunks: &[&str]) -> Vec<ChunkVerdict> {
        let policy = self
            .policy
            .prompt_attack
            .as_ref()
            .filter(|p| p.retrieved_action != RetrievedAction::None);
        chunks
            .iter()
            .enumerate()
            .map(|(index, chunk)| {
                let Some(pa) = policy else {
                    return ChunkVerdict {
                        index,
                        disposition: ChunkDisposition::Keep,
                        flagged: false,
                        score: 0.0,
                        signals: Vec::new(),
                    };
                };
                let scan = attack::scan(chunk, attack::Source::Retrieved);
                let flagged = scan.score >= pa.threshold;
                let disposition = match (flagged, pa.retrieved_action) {
                    (true, RetrievedAction::Drop) => ChunkDisposition::Drop,
                    (true, RetrievedAction::Quote) => ChunkDisposition::Quote,
                    _ => ChunkDisposition::Keep,
                };
                ChunkVerdict {
                    index,
                    disposition,
                    flagged,
                    score: scan.score,
                    signals: scan.signals,
                }
            })
            .collect()
    }

    /// Checks a model answer: words, sensitive information, denied topics, then contextual
    /// grounding (when the policy has it and `grounding` is given). `pii` as for
    /// [`Guard::check_input`], found in `answer`.
    pub fn check_output(
        &self,
        answer: &str,
        pii: &[PiiSpan],
        grounding: Option<GroundingContext<'_>>,
    ) -> Assessment {
        let mut run = Run::new(answer);
        self.run_words(&mut run, answer, Direction::Output);
        self.run_sensitive(&mut run, answer, pii, Direction::Output);
        let cache = self.cache();
        self.run_topics(&mut run, answer, Direction::Output, cache.as_ref());
        if let (Some(policy), Some(ctx)) = (&self.policy.contextual_grounding, grounding) {
            if run.blocked() {
                run.assessment.skipped.push("contextual_grounding".to_string());
            } else {
                let semantic = cache.as_ref().filter(|_| policy.semantic);
                let (g, err) = grounding::assess(policy, answer, &ctx, semantic);
                if let Some(e) = err {
                    run.assessment.errors.push(CheckError {
                        check: "contextual_grounding".to_string(),
                        message: format!("{e}; scored on content words only"),
                    });
                }
                for (name, f) in [("grounding", &g.grounding), ("relevance", &g.relevance)] {
                    if f.action == AppliedAction::Blocked {
                        run.block_reasons.push(format!(
                            "contextual grounding: {name} {} < {}",
                            f.score,
                            f.threshold.unwrap_or(0.0)
                        ));
                    }
                }
                run.assessment.contextual_grounding = Some(g);
            }
        }
        run.finish(&self.policy.blocked_output_message)
    }

    /// Every denied topic's best similarity to `text` (whole or any sentence), for tuning
    /// thresholds. Empty when the policy has no topics.
    pub fn topic_scores(&self, text: &str) -> Result<Vec<(String, f32)>, GuardError> {
        let Some(cache) = self.cache().filter(|_| !self.topics.is_empty()) else {
            return Ok(Vec::new());
        };
        let units = text_units(text);
        let texts: Vec<&str> = units.iter().map(|&(s, e)| &text[s..e]).collect();
        let vectors = cache.embed(&texts)?;
        Ok(self
            .topics
            .score(&units, &vectors)
            .into_iter()
            .map(|s| (self.topics.name(s.topic).to_string(), text::round3(s.score)))
            .collect())
    }

    fn cache(&self) -> Option<EmbedCache<'_>> {
        let dim = (!self.topics.is_empty()).then(|| self.topics.dim());
        self.embedder.as_deref().map(|e| EmbedCache::new(e, dim))
    }

    fn run_words(&self, run: &mut Run, text: &str, dir: Direction) {
        let action = match dir {
            Direction::Input => self.policy.words.input_action,
            Direction::Output => self.policy.words.output_action,
        };
        if action == FilterAction::None || self.words.is_empty() {
            return;
        }
        let hits = self.words.find(text);
        if hits.is_empty() {
            return;
        }
        let applied = if action == FilterAction::Block {
            let mut list: Vec<&str> = Vec::new();
            for h in &hits {
                let label = match h.source {
                    WordSource::Custom => h.word.as_str(),
                    WordSource::Profanity => "profanity",
                };
                if !list.contains(&label) {
                    list.push(label);
                }
            }
            run.block_reasons
                .push(format!("word policy: {}", list.join(", ")));
            AppliedAction::Blocked
        } else {
            AppliedAction::None
        };
        run.assessment.words = hits
            .into_iter()
            .map(|h| WordFinding {
                word: h.word,
                source: h.source,
                start: h.start,
                end: h.end,
                action: applied,
            })
            .collect();
    }

    fn run_sensitive(&self, run: &mut Run, text: &str, pii: &[PiiSpan], dir: Direction) {
        if !self.sensitive.is_active(dir) {
            return;
        }
        let out = self.sensitive.apply(text, pii, dir);
        if !out.blocked_by.is_empty() {
            run.block_reasons
                .push(format!("sensitive information: {}", out.blocked_by.join(", ")));
        }
        if let Some((masked, replacements)) = out.masked {
            run.assessment.output_text = masked;
            run.assessment.replacements = replacements;
            run.masked = true;
        }
        if out.invalid_spans > 0 {
            run.assessment.errors.push(CheckError {
                check: "sensitive_information".to_string(),
                message: format!(
                    "{} PII span(s) outside the text or not on char boundaries were ignored",
                    out.invalid_spans
                ),
            });
        }
        run.assessment.sensitive_information = out.assessment;
    }

    fn run_topics(&self, run: &mut Run, text: &str, dir: Direction, cache: Option<&EmbedCache<'_>>) {
        if !self.topics.is_active(dir) {
            return;
        }
        if run.blocked() {
            run.assessment.skipped.push("topics".to_string());
            return;
        }
        let Some(cache) = cache else { return };
        let units = text_units(text);
        if units.is_empty() {
            return;
        }
        let texts: Vec<&str> = units.iter().map(|&(s, e)| &text[s..e]).collect();
        let vectors = match cache.embed(&texts) {
            Ok(v) => v,
            Err(e) => {
                run.assessment.errors.push(CheckError {
                    check: "topics".to_string(),
                    message: e.to_string(),
                });
                if self.policy.fail_closed {
                    run.block_reasons
                        .push("denied topics: check unavailable (fail closed)".to_string());
                }
                return;
            }
        };
        for s in self.topics.score(&units, &vectors) {
            let action = self.topics.action(s.topic, dir);
            let threshold = self.topics.threshold(s.topic);
            if action == FilterAction::None || s.score < threshold {
                continue;
            }
            let name = self.topics.name(s.topic);
            let applied = if action == FilterAction::Block {
                run.block_reasons.push(format!("denied topic: {name}"));
                AppliedAction::Blocked
            } else {
                AppliedAction::None
            };
            run.assessment.topics.push(TopicFinding {
                name: name.to_string(),
                score: text::round3(s.score),
                threshold,
                start: s.unit.0,
                end: s.unit.1,
                detected: true,
                action: applied,
            });
        }
    }
}
