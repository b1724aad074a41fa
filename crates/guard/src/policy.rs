//! The guardrail policy: what to check and what to do about each finding.
//!
//! The shape follows Amazon Bedrock Guardrails (`CreateGuardrail`) closely enough that a Bedrock
//! configuration translates field by field, in snake_case and TOML. Two principles:
//!
//! * **A missing section is a disabled check.** An empty policy guards nothing; every check is
//!   opted into, so upgrading groundwork never starts blocking traffic on its own.
//! * **Inside a section, defaults are the safe choice** (block on input and output, anonymise
//!   sensitive data, quote suspicious chunks), so `[prompt_attack]` alone is a working config.
//!
//! Actions have one vocabulary across checks: `BLOCK` replaces the whole text with the blocked
//! message, `ANONYMIZE` (sensitive information only) masks the span as `{TYPE}`, `DETECT` leaves
//! the text unchanged but reports the finding (Bedrock's "NONE" action, a.k.a. detect mode) and
//! `NONE` switches that check off for that direction. Every struct rejects unknown fields, so a
//! typo in a policy file is an error rather than a silently disabled check.

use serde::{Deserialize, Serialize};

/// Bedrock's default blocked message, used for both directions unless overridden.
pub const DEFAULT_BLOCKED_MESSAGE: &str = "Sorry, the model cannot answer this question.";
/// Default similarity a text must reach against a denied topic to count as that topic.
pub const DEFAULT_TOPIC_THRESHOLD: f32 = 0.6;
/// Default prompt-attack score at which the detector reports an attack.
pub const DEFAULT_PROMPT_ATTACK_THRESHOLD: f32 = 0.5;

/// A complete guardrail policy. Deserialize it from TOML or JSON; validate it by building a
/// [`crate::Guard`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuardPolicy {
    /// Name for logs and audit records; must not be blank. Default `"default"`.
    pub name: String,
    /// Text returned in place of a blocked user input. Default: Bedrock's
    /// "Sorry, the model cannot answer this question.".
    pub blocked_input_message: String,
    /// Text returned in place of a blocked model answer. Default as for input.
    pub blocked_output_message: String,
    /// When a check that could block cannot run (the embedder failed), block anyway (`true`,
    /// the default) or let the text through with the error recorded (`false`).
    pub fail_closed: bool,
    /// PII entity types (detected by the caller) and custom regexes (run by the guard).
    pub sensitive_information: SensitiveInformationPolicy,
    /// Similarity threshold for denied topics without their own `threshold`. Default 0.6,
    /// tuned for sentence-transformer embeddings such as all-MiniLM-L6-v2; range 0..=1.
    pub topic_threshold: f32,
    /// Denied topics (at most 30, each with at most 5 examples). Needs an embedder.
    pub topics: Vec<TopicPolicy>,
    /// Custom blocked words and phrases plus the built-in profanity list.
    pub words: WordPolicy,
    /// The prompt-attack detector; absent means off.
    pub prompt_attack: Option<PromptAttackPolicy>,
    /// The contextual grounding and relevance check on answers; absent means off.
    pub contextual_grounding: Option<ContextualGroundingPolicy>,
}

impl Default for GuardPolicy {
    fn default() -> Self {
        GuardPolicy {
            name: "default".to_string(),
            blocked_input_message: DEFAULT_BLOCKED_MESSAGE.to_string(),
            blocked_output_message: DEFAULT_BLOCKED_MESSAGE.to_string(),
            fail_closed: true,
            sensitive_information: SensitiveInformationPolicy::default(),
            topic_threshold: DEFAULT_TOPIC_THRESHOLD,
            topics: Vec::new(),
            words: WordPolicy::default(),
            prompt_attack: None,
            contextual_grounding: None,
        }
    }
}

/// What to do with a sensitive-information finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PiiAction {
    /// Replace the whole text with the blocked message.
    Block,
    /// Replace the span with `{TYPE}` (`{EMAIL}`, `{EMPLOYEE_ID}`).
    Anonymize,
    /// Leave the text unchanged; report the finding.
    Detect,
    /// Do not check this type in this direction.
    None,
}

/// What to do when a word, topic or prompt-attack check fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FilterAction {
    /// Replace the whole text with the blocked message.
    Block,
    /// Leave the text unchanged; report the finding.
    Detect,
    /// Do not run the check in this direction.
    None,
}

/// What to do with a retrieved chunk that looks like an injection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RetrievedAction {
    /// Remove the chunk from the prompt.
    Drop,
    /// Keep it, but have the prompt builder present it as untrusted quoted data.
    Quote,
    /// Keep it as is; report the finding.
    Detect,
    /// Do not scan retrieved chunks.
    None,
}

/// What to do when an answer falls under a grounding or relevance threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GroundingAction {
    /// Replace the answer with the blocked output message.
    Block,
    /// Keep the answer; report it as detected.
    Flag,
}

/// Sensitive-information filters (Bedrock `sensitiveInformationPolicyConfig`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensitiveInformationPolicy {
    /// Actions per PII entity type. The caller's PII detector finds these and passes them in as
    /// [`crate::PiiSpan`]s; spans of types not listed here are ignored.
    pub entities: Vec<PiiEntityPolicy>,
    /// Custom regexes, compiled and run by the guard itself.
    pub regexes: Vec<RegexPolicy>,
}

/// The actions for one PII entity type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiiEntityPolicy {
    /// Bedrock entity type name, e.g. `EMAIL`, `NAME`, `US_SOCIAL_SECURITY_NUMBER`; matched
    /// case-insensitively against [`crate::PiiSpan::entity_type`]. Required.
    #[serde(rename = "type")]
    pub entity_type: String,
    /// Action on user input. Default `ANONYMIZE`.
    #[serde(default = "anonymize")]
    pub input_action: PiiAction,
    /// Action on model output. Default `ANONYMIZE`.
    #[serde(default = "anonymize")]
    pub output_action: PiiAction,
}

/// One custom regex filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegexPolicy {
    /// Name reported in assessments and used as the mask (`{NAME}`); 1–100 characters.
    pub name: String,
    /// Rust `regex` syntax, at most 500 characters; must not match the empty string. Compiled
    /// with a 1 MiB program size limit. Add `(?i)` for case-insensitive matching.
    pub pattern: String,
    /// Free text for operators; not used by the engine.
    #[serde(default)]
    pub description: Option<String>,
    /// Action on user input. Default `ANONYMIZE`.
    #[serde(default = "anonymize")]
    pub input_action: PiiAction,
    /// Action on model output. Default `ANONYMIZE`.
    #[serde(default = "anonymize")]
    pub output_action: PiiAction,
}

/// A denied topic (Bedrock `GuardrailTopicConfig`, type DENY).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicPolicy {
    /// Topic name, 1–100 characters, unique within the policy.
    pub name: String,
    /// What the topic covers, 1–1,000 characters (Bedrock allows 200). Written as a description
    /// ("Investment advice: recommendations about buying or selling securities").
    pub definition: String,
    /// Up to 5 example user inputs, each at most 1,000 characters.
    #[serde(default)]
    pub examples: Vec<String>,
    /// Similarity threshold for this topic; default: the policy's `topic_threshold`.
    #[serde(default)]
    pub threshold: Option<f32>,
    /// Action on user input. Default `BLOCK`.
    #[serde(default = "block")]
    pub input_action: FilterAction,
    /// Action on model output. Default `BLOCK`.
    #[serde(default = "block")]
    pub output_action: FilterAction,
}

/// Word filters (Bedrock `wordPolicyConfig`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WordPolicy {
    /// Words or phrases (at most 10,000, each at most 100 characters) matched
    /// case-insensitively as whole words; whitespace and hyphens between the words of a phrase
    /// may vary. Only letters, digits, spaces, apostrophes and hyphens are accepted.
    pub custom: Vec<String>,
    /// Also match the built-in English profanity list. Default `false`.
    pub profanity: bool,
    /// Action on user input. Default `BLOCK`.
    pub input_action: FilterAction,
    /// Action on model output. Default `BLOCK`.
    pub output_action: FilterAction,
}

impl Default for WordPolicy {
    fn default() -> Self {
        WordPolicy {
            custom: Vec::new(),
            profanity: false,
            input_action: FilterAction::Block,
            output_action: FilterAction::Block,
        }
    }
}

/// The prompt-attack detector (Bedrock's `PROMPT_ATTACK` content filter, plus retrieved-chunk
/// screening for indirect prompt injection).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromptAttackPolicy {
    /// Action on user input (`BLOCK`, `DETECT` or `NONE`). Default `BLOCK`.
    pub input_action: FilterAction,
    /// Action on retrieved chunks (`DROP`, `QUOTE`, `DETECT` or `NONE`). Default `QUOTE`.
    pub retrieved_action: RetrievedAction,
    /// Score (0 < t ≤ 1) at which a text counts as an attack. Default 0.5: one strong signal
    /// ("ignore all previous instructions") or two weaker ones together.
    pub threshold: f32,
}

impl Default for PromptAttackPolicy {
    fn default() -> Self {
        PromptAttackPolicy {
            input_action: FilterAction::Block,
            retrieved_action: RetrievedAction::Quote,
            threshold: DEFAULT_PROMPT_ATTACK_THRESHOLD,
        }
    }
}

/// The contextual grounding check (Bedrock `contextualGroundingPolicyConfig`).
///
/// Scores are always computed and reported when the section is present and the caller passes a
/// [`crate::GroundingContext`]; a threshold only decides whether a score counts as detected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContextualGroundingPolicy {
    /// Answers whose grounding score is below this are detected; 0..=0.99 like Bedrock.
    /// Default: none (report only).
    pub grounding_threshold: Option<f32>,
    /// Answers whose relevance score is below this are detected; 0..=0.99. Default: none.
    pub relevance_threshold: Option<f32>,
    /// `BLOCK` or `FLAG`. Default `FLAG`: the scores are heuristics, not an LLM judge, so
    /// blocking is opted into.
    pub action: GroundingAction,
    /// Add semantic support (embeddings of every answer and source sentence) to the
    /// content-word measures. It credits faithful paraphrases, but embeds some 60 sentences
    /// per answer: about 0.25 s on two CPU cores with the local model
    /// (`examples/guard_overhead` in the service crate). Default `false`.
    pub semantic: bool,
}

impl Default for ContextualGroundingPolicy {
    fn default() -> Self {
        ContextualGroundingPolicy {
            grounding_threshold: None,
            relevance_threshold: None,
            action: GroundingAction::Flag,
            semantic: false,
        }
    }
}

fn anonymize() -> PiiAction {
    PiiAction::Anonymize
}

fn block() -> FilterAction {
    FilterAction::Block
}
