//! What a guardrail check returns: the verdict, the text to use, and one finding per thing
//! detected — plain data, so that answers (and everything above them) can carry a guardrail
//! trace without depending on the guardrail engine (`groundwork-guard`), which fills it in.
//!
//! The shape mirrors Bedrock's `ApplyGuardrail` response (`action`, `outputs`, and the
//! per-policy assessments) with snake_case names. One rule holds throughout: **no finding
//! carries the matched text.** Assessments end up in logs and the audit trail; echoing an email
//! address or a card number there would leak exactly what the sensitive-information filter
//! exists to contain. Findings give byte offsets and lengths into the checked text instead. Word
//! findings name the *policy entry* that matched (policy data, not user data).

use serde::{Deserialize, Serialize};

/// The overall outcome, as Bedrock names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GuardrailAction {
    /// The text passes unchanged (possibly with detect-only findings).
    None,
    /// The guard blocked the text or rewrote it (anonymisation).
    GuardrailIntervened,
}

/// What the guard did about one finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AppliedAction {
    /// The finding blocked the text.
    Blocked,
    /// The finding's span was masked in `output_text`.
    Anonymized,
    /// Reported only (detect mode, or a flag-only grounding check).
    None,
}

/// The result of [`crate::Guard::check_input`] or [`crate::Guard::check_output`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// `GUARDRAIL_INTERVENED` when the text was blocked or rewritten, else `NONE`.
    pub action: GuardrailAction,
    /// Why the guard intervened, naming checks and policy entries (never matched values).
    pub action_reason: Option<String>,
    /// The text was replaced by the blocked message.
    pub blocked: bool,
    /// Some check detected something, including detect-only findings.
    pub detected: bool,
    /// The text to use from here on: the original, the anonymised text, or the blocked message.
    pub output_text: String,
    /// Denied topics that matched.
    pub topics: Vec<TopicFinding>,
    /// Custom words and profanity that matched.
    pub words: Vec<WordFinding>,
    /// PII entities and custom-regex matches.
    pub sensitive_information: SensitiveInformationAssessment,
    /// The prompt-attack score; `None` when the check did not run.
    pub prompt_attack: Option<PromptAttackAssessment>,
    /// Grounding and relevance scores; `None` when the check did not run.
    pub contextual_grounding: Option<GroundingAssessment>,
    /// Checks not run because a cheaper check had already blocked the text.
    pub skipped: Vec<String>,
    /// Checks that could not run (embedder failure).
    pub errors: Vec<CheckError>,
    /// Spans of the checked text that `output_text` replaces (anonymisation), in order; for
    /// callers that keep offsets into the text, such as citations. Empty when blocked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replacements: Vec<Replacement>,
}

/// One span of the checked text replaced in [`Assessment::output_text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replacement {
    /// Byte range in the checked text.
    pub start: usize,
    pub end: usize,
    /// Length in bytes of the placeholder that took its place.
    pub replacement_len: usize,
}

impl Replacement {
    /// Where byte offset `offset` of the checked text lands in the rewritten text, given every
    /// replacement in order. An offset inside a replaced span moves to its placeholder's start
    /// (for a span's start) or end (for a span's end), so a covering range stays covering.
    pub fn shift(replacements: &[Replacement], offset: usize, is_end: bool) -> usize {
        let mut delta: isize = 0;
        for r in replacements {
            if offset >= r.end {
                delta += r.replacement_len as isize - (r.end - r.start) as isize;
            } else if offset > r.start {
                let landed = (r.start as isize + delta) as usize;
                return if is_end {
                    landed + r.replacement_len
                } else {
                    landed
                };
            } else {
                break;
            }
        }
        (offset as isize + delta) as usize
    }
}

impl Assessment {
    /// True when the caller must not use the original text as is.
    pub fn intervened(&self) -> bool {
        self.action == GuardrailAction::GuardrailIntervened
    }
}

/// A denied topic that matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicFinding {
    /// The topic's name from the policy.
    pub name: String,
    /// Best cosine similarity between the text (whole or one sentence) and the topic.
    pub score: f32,
    /// The threshold it was compared with.
    pub threshold: f32,
    /// Byte range of the sentence that scored best (the whole text when that scored best).
    pub start: usize,
    pub end: usize,
    /// Always true for reported topics (kept for symmetry with Bedrock).
    pub detected: bool,
    pub action: AppliedAction,
}

/// Whether a word came from the policy's custom list or the built-in profanity list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WordSource {
    Custom,
    Profanity,
}

/// One word or phrase match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WordFinding {
    /// The policy entry that matched, lowercased (not the text as written).
    pub word: String,
    pub source: WordSource,
    /// Byte range of the match in the checked text.
    pub start: usize,
    pub end: usize,
    pub action: AppliedAction,
}

/// Sensitive-information findings, split like Bedrock's.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SensitiveInformationAssessment {
    pub pii_entities: Vec<PiiFinding>,
    pub regexes: Vec<RegexFinding>,
}

/// A PII entity found by the caller's detector to which the policy applied an action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PiiFinding {
    /// The entity type as configured in the policy (e.g. `EMAIL`).
    #[serde(rename = "type")]
    pub entity_type: String,
    pub start: usize,
    pub end: usize,
    /// Length in bytes; the value itself is never included.
    pub length: usize,
    pub detected: bool,
    pub action: AppliedAction,
}

/// A custom-regex match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegexFinding {
    pub name: String,
    pub start: usize,
    pub end: usize,
    /// Length in bytes; the value itself is never included.
    pub length: usize,
    pub detected: bool,
    pub action: AppliedAction,
}

/// One prompt-attack signal that matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalMatch {
    /// Stable signal name, e.g. `instruction_override`, `role_marker_token`.
    pub signal: String,
    /// Its contribution to the score.
    pub weight: f32,
    /// Byte range of its first occurrence in the checked text.
    pub start: usize,
    pub end: usize,
}

/// The prompt-attack detector's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptAttackAssessment {
    /// Sum of the weights of the distinct signals that matched, capped at 1.
    pub score: f32,
    pub threshold: f32,
    /// `score >= threshold`.
    pub detected: bool,
    pub action: AppliedAction,
    pub signals: Vec<SignalMatch>,
}

/// What happens to one retrieved chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChunkDisposition {
    /// Use as usual.
    Keep,
    /// Leave out of the prompt.
    Drop,
    /// Use, but present as untrusted quoted data (the text is not rewritten here).
    Quote,
}

/// The verdict on one retrieved chunk from [`crate::Guard::check_retrieved`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkVerdict {
    /// Position of the chunk in the slice passed in.
    pub index: usize,
    pub disposition: ChunkDisposition,
    /// The chunk scored at or above the threshold (set whatever the action, except `NONE`).
    pub flagged: bool,
    pub score: f32,
    pub signals: Vec<SignalMatch>,
}

impl ChunkVerdict {
    /// The chunk should go into the prompt (kept or quoted).
    pub fn is_kept(&self) -> bool {
        self.disposition != ChunkDisposition::Drop
    }

    /// The prompt builder should wrap the chunk as untrusted quoted text.
    pub fn is_quoted(&self) -> bool {
        self.disposition == ChunkDisposition::Quote
    }
}

/// One filter of the grounding check (`GROUNDING` or `RELEVANCE`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundingFilter {
    /// 0..=1, higher is better.
    pub score: f32,
    /// The policy's threshold, if one is set.
    pub threshold: Option<f32>,
    /// `score < threshold`.
    pub detected: bool,
    pub action: AppliedAction,
}

/// The support score of one answer sentence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentenceGrounding {
    /// Byte range of the sentence in the answer.
    pub start: usize,
    pub end: usize,
    /// 0..=1: how well the sources support the sentence.
    pub score: f32,
    /// Index of the single source that supports it best, if any shares a content word.
    pub best_source: Option<usize>,
    /// Content words counted (citation markers and stop words excluded); the sentence's weight.
    pub content_words: usize,
}

/// The contextual grounding check's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundingAssessment {
    pub grounding: GroundingFilter,
    pub relevance: GroundingFilter,
    /// The lowest sentence score (1 when no sentence has content words).
    pub min_sentence_score: f32,
    /// Per-sentence scores; sentences without content words ("Sure!") are omitted.
    pub sentences: Vec<SentenceGrounding>,
    /// Whether embeddings contributed, or content words alone.
    pub used_embeddings: bool,
}

/// A check that could not run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckError {
    /// `topics` or `contextual_grounding`.
    pub check: String,
    pub message: String,
}

/// Everything one guarded request went through — the input check, the verdicts on the
/// retrieved chunks that were flagged, and the output check — for the response and, summarised,
/// for the audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardrailTrace {
    /// The policy applied.
    pub policy: String,
    /// `GUARDRAIL_INTERVENED` when any stage blocked or rewrote text, else `NONE`.
    pub action: GuardrailAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Assessment>,
    /// Verdicts on flagged retrieved chunks only (an empty list: nothing was flagged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retrieved: Vec<ChunkVerdict>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Assessment>,
}

impl GuardrailTrace {
    /// A trace with no stage run yet.
    pub fn new(policy: &str) -> GuardrailTrace {
        GuardrailTrace {
            policy: policy.to_string(),
            action: GuardrailAction::None,
            input: None,
            retrieved: Vec::new(),
            output: None,
        }
    }

    /// Recomputes [`Self::action`] from the stages.
    pub fn settle(&mut self) {
        let intervened = [&self.input, &self.output]
            .into_iter()
            .flatten()
            .any(Assessment::intervened)
            || self
                .retrieved
                .iter()
                .any(|v| v.disposition != ChunkDisposition::Keep);
        self.action = if intervened {
            GuardrailAction::GuardrailIntervened
        } else {
            GuardrailAction::None
        };
    }

    /// The audit form: outcomes and reasons, no text (neither the question nor the answer, which
    /// the record holds elsewhere, masked, or not at all).
    pub fn audit_summary(&self) -> serde_json::Value {
        let stage = |a: &Option<Assessment>| {
            a.as_ref().map(|a| {
                serde_json::json!({
                    "action": a.action,
                    "blocked": a.blocked,
                    "detected": a.detected,
                    "reason": a.action_reason,
                })
            })
        };
        let count = |d: ChunkDisposition| self.retrieved.iter().filter(|v| v.disposition == d).count();
        serde_json::json!({
            "policy": self.policy,
            "action": self.action,
            "input": stage(&self.input),
            "retrieved": {
                "flagged": self.retrieved.len(),
                "dropped": count(ChunkDisposition::Drop),
                "quoted": count(ChunkDisposition::Quote),
            },
            "output": stage(&self.output),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Replacement;

    #[test]
    fn offsets_follow_replacements() {
        // "mail bob@x.io now" -> "mail {EMAIL} now": 8 bytes became 7.
        let r = [Replacement {
            start: 5,
            end: 13,
            replacement_len: 7,
        }];
        assert_eq!(Replacement::shift(&r, 0, false), 0);
        assert_eq!(Replacement::shift(&r, 5, false), 5);
        assert_eq!(Replacement::shift(&r, 13, true), 12);
        assert_eq!(Replacement::shift(&r, 17, true), 16);
        // Inside the span: a start moves to the placeholder's start, an end to its end.
        assert_eq!(Replacement::shift(&r, 8, false), 5);
        assert_eq!(Replacement::shift(&r, 8, true), 12);
    }
}
