//! Sensitive-information filters: PII entity spans from the caller plus custom regexes.
//!
//! Built-in entity types (EMAIL, NAME, …) are detected elsewhere (groundwork's PII detector)
//! and arrive as [`PiiSpan`]s, so the guard does not duplicate that detector; it only applies
//! the policy's per-type action. Custom regexes are the policy's own, so the guard compiles and
//! runs them, with bounded pattern length and program size so that a policy file cannot make
//! the engine blow up (the `regex` crate guarantees linear-time matching on top).
//!
//! `ANONYMIZE` masks a span as `{TYPE}` (Bedrock's identifier tags). When spans overlap, the
//! earliest (then longest) wins and the others stay reported but are not masked twice.

use std::collections::HashMap;

use regex::{Regex, RegexBuilder};

use crate::Direction;
use crate::assessment::{
    AppliedAction, PiiFinding, RegexFinding, Replacement, SensitiveInformationAssessment,
};
use crate::error::GuardError;
use crate::policy::{PiiAction, SensitiveInformationPolicy};

/// Longest accepted custom pattern, in characters (Bedrock's limit).
pub const MAX_PATTERN_CHARS: usize = 500;
/// Compiled-program size limit per custom regex.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Lazy-DFA cache limit per custom regex.
const REGEX_DFA_LIMIT: usize = 2 << 20;
/// Matches reported per regex and text; further matches are still masked or blocked.
const MAX_REPORTED_PER_REGEX: usize = 100;

/// A span of sensitive information found by the caller's PII detector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PiiSpan {
    /// Bedrock entity type (`EMAIL`, `NAME`, …) or the name of a custom regex in the policy.
    pub entity_type: String,
    /// Byte offset of the first byte, on a char boundary.
    pub start: usize,
    /// Byte offset one past the last byte, on a char boundary.
    pub end: usize,
}

struct CompiledRegex {
    name: String,
    regex: Regex,
    input: PiiAction,
    output: PiiAction,
}

/// The compiled sensitive-information section of a policy.
pub(crate) struct SensitiveFilter {
    /// Uppercased entity type → (type as configured, input action, output action).
    entities: HashMap<String, (String, PiiAction, PiiAction)>,
    regexes: Vec<CompiledRegex>,
}

/// The result of applying the filter to one text.
pub(crate) struct SensitiveOutcome {
    pub assessment: SensitiveInformationAssessment,
    /// Type or regex names whose action is BLOCK and that were found.
    pub blocked_by: Vec<String>,
    /// The text with ANONYMIZE spans masked, and the replacements made, if any were.
    pub masked: Option<(String, Vec<Replacement>)>,
    /// Spans from the caller that were out of bounds or not on char boundaries (ignored).
    pub invalid_spans: usize,
}

impl SensitiveFilter {
    pub(crate) fn new(policy: &SensitiveInformationPolicy) -> Result<SensitiveFilter, GuardError> {
        let mut entities = HashMap::new();
        for e in &policy.entities {
            let t = e.entity_type.trim();
            if t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(GuardError::InvalidPolicy {
                    field: "sensitive_information.entities.type".to_string(),
                    reason: format!("`{}` is not an entity type name (A-Z, 0-9, _)", e.entity_type),
                });
            }
            let key = t.to_ascii_uppercase();
            if entities
                .insert(key, (t.to_string(), e.input_action, e.output_action))
                .is_some()
            {
                return Err(GuardError::Duplicate {
                    kind: "sensitive-information entity type",
                    name: t.to_string(),
                });
            }
        }
        let mut regexes: Vec<CompiledRegex> = Vec::new();
        for r in &policy.regexes {
            let invalid = |reason: String| GuardError::InvalidRegex {
                name: r.name.clone(),
                reason,
            };
            let name = r.name.trim();
            if name.is_empty() || name.chars().count() > 100 {
                return Err(invalid("name must be 1 to 100 characters".to_string()));
            }
            if entities.contains_key(&name.to_ascii_uppercase())
                || regexes.iter().any(|c| c.name.eq_ignore_ascii_case(name))
            {
                return Err(GuardError::Duplicate {
                    kind: "sensitive-information name",
                    name: name.to_string(),
                });
            }
            let len = r.pattern.chars().count();
            if len == 0 || len > MAX_PATTERN_CHARS {
                return Err(invalid(format!(
                    "pattern has {len} characters; 1 to {MAX_PATTERN_CHARS} are accepted"
                )));
            }
            let regex = RegexBuilder::new(&r.pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_DFA_LIMIT)
                .nest_limit(64)
                .build()
                .map_err(|e| invalid(e.to_string()))?;
            if regex.is_match("") {
                return Err(invalid("pattern matches the empty string".to_string()));
            }
            regexes.push(CompiledRegex {
                name: name.to_string(),
                regex,
                input: r.input_action,
                output: r.output_action,
            });
        }
        Ok(SensitiveFilter { entities, regexes })
    }

    /// Whether anything is configured for `dir`.
    pub(crate) fn is_active(&self, dir: Direction) -> bool {
        self.entities
            .values()
            .any(|&(_, i, o)| pick(dir, i, o) != PiiAction::None)
            || self
                .regexes
                .iter()
                .any(|r| pick(dir, r.input, r.output) != PiiAction::None)
    }

    pub(crate) fn apply(&self, text: &str, pii: &[PiiSpan], dir: Direction) -> SensitiveOutcome {
        let mut assessment = SensitiveInformationAssessment::default();
        let mut blocked_by: Vec<String> = Vec::new();
        let mut masks: Vec<(usize, usize, String)> = Vec::new();
        let mut invalid_spans = 0;
        let note_block = |name: &str, blocked_by: &mut Vec<String>| {
            if !blocked_by.iter().any(|b| b == name) {
                blocked_by.push(name.to_string());
            }
        };

        for span in pii {
            let valid = span.start < span.end
                && span.end <= text.len()
                && text.is_char_boundary(span.start)
                && text.is_char_boundary(span.end);
            if !valid {
                invalid_spans += 1;
                continue;
            }
            let key = span.entity_type.trim().to_ascii_uppercase();
            if let Some((name, i, o)) = self.entities.get(&key) {
                let action = pick(dir, *i, *o);
                if action == PiiAction::None {
                    continue;
                }
                let applied = applied(action);
                if action == PiiAction::Block {
                    note_block(name, &mut blocked_by);
                }
                if action == PiiAction::Anonymize {
                    masks.push((span.start, span.end, name.clone()));
                }
                assessment.pii_entities.push(PiiFinding {
                    entity_type: name.clone(),
                    start: span.start,
                    end: span.end,
                    length: span.end - span.start,
                    detected: true,
                    action: applied,
                });
            } else if let Some(r) = self.regexes.iter().find(|r| r.name.eq_ignore_ascii_case(&key)) {
                // The caller's detector may also report matches of custom regexes by name.
                let action = pick(dir, r.input, r.output);
                if action != PiiAction::None {
                    push_regex_finding(&mut assessment, &r.name, span.start, span.end, action);
                    if action == PiiAction::Block {
                        note_block(&r.name, &mut blocked_by);
                    }
                    if action == PiiAction::Anonymize {
                        masks.push((span.start, span.end, r.name.clone()));
                    }
                }
            }
        }

        for r in &self.regexes {
            let action = pick(dir, r.input, r.output);
            if action == PiiAction::None {
                continue;
            }
            let mut reported = 0;
            for m in r.regex.find_iter(text).filter(|m| !m.is_empty()) {
                if reported < MAX_REPORTED_PER_REGEX
                    && !assessment
                        .regexes
                        .iter()
                        .any(|f| f.name == r.name && f.start == m.start() && f.end == m.end())
                {
                    push_regex_finding(&mut assessment, &r.name, m.start(), m.end(), action);
                    reported += 1;
                }
                if action == PiiAction::Block {
                    note_block(&r.name, &mut blocked_by);
                    break; // the text is blocked; further matches change nothing
                }
                if action == PiiAction::Anonymize {
                    masks.push((m.start(), m.end(), r.name.clone()));
                }
            }
        }

        let masked = (!masks.is_empty()).then(|| mask(text, masks));
        SensitiveOutcome {
            assessment,
            blocked_by,
            masked,
            invalid_spans,
        }
    }
}

fn push_regex_finding(
    a: &mut SensitiveInformationAssessment,
    name: &str,
    start: usize,
    end: usize,
    action: PiiAction,
) {
    a.regexes.push(RegexFinding {
        name: name.to_string(),
        start,
        end,
        length: end - start,
        detected: true,
        action: applied(action),
    });
}

fn pick(dir: Direction, input: PiiAction, output: PiiAction) -> PiiAction {
    match dir {
        Direction::Input => input,
        Direction::Output => output,
    }
}

fn applied(action: PiiAction) -> AppliedAction {
    match action {
        PiiAction::Block => AppliedAction::Blocked,
        PiiAction::Anonymize => AppliedAction::Anonymized,
        PiiAction::Detect | PiiAction::None => AppliedAction::None,
    }
}

/// Replaces each span with `{LABEL}`; overlapping spans: earliest, then longest, wins.
/// Returns the new text and the replacements made, in order.
fn mask(text: &str, mut spans: Vec<(usize, usize, String)>) -> (String, Vec<Replacement>) {
    spans.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut out = String::with_capacity(text.len());
    let mut replaced = Vec::new();
    let mut pos = 0;
    for (start, end, label) in spans {
        if start < pos {
            continue;
        }
        out.push_str(&text[pos..start]);
        out.push('{');
        out.push_str(&label);
        out.push('}');
        replaced.push(Replacement {
            start,
            end,
            replacement_len: label.len() + 2,
        });
        pos = end;
    }
    out.push_str(&text[pos..]);
    (out, replaced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{PiiEntityPolicy, RegexPolicy};

    fn regex(name: &str, pattern: &str, action: PiiAction) -> RegexPolicy {
        RegexPolicy {
            name: name.to_string(),
            pattern: pattern.to_string(),
            description: None,
            input_action: action,
            output_action: action,
        }
    }

    fn entity(t: &str, input: PiiAction, output: PiiAction) -> PiiEntityPolicy {
        PiiEntityPolicy {
            entity_type: t.to_string(),
            input_action: input,
            output_action: output,
        }
    }

    fn span(t: &str, text: &str, needle: &str) -> PiiSpan {
        let start = text.find(needle).unwrap();
        PiiSpan {
            entity_type: t.to_string(),
            start,
            end: start + needle.len(),
        }
    }

    #[test]
    fn anonymize_masks_entities_and_regexes_and_reports_offsets_only() {
        let policy = SensitiveInformationPolicy {
            entities: vec![
                entity("EMAIL", PiiAction::Anonymize, PiiAction::Anonymize),
                entity("name", PiiAction::Detect, PiiAction::Anonymize),
            ],
            regexes: vec![regex("EMPLOYEE_ID", r"\bEMP-\d{6}\b", PiiAction::Anonymize)],
        };
        let f = SensitiveFilter::new(&policy).unwrap();
        let text = "Ask Jane Roe (jane@example.com) about EMP-123456.";
        let pii = [
            span("NAME", text, "Jane Roe"),
            span("EMAIL", text, "jane@example.com"),
        ];
        let out = f.apply(text, &pii, Direction::Input);
        assert_eq!(
            out.masked.as_ref().map(|(text, _)| text.as_str()),
            Some("Ask Jane Roe ({EMAIL}) about {EMPLOYEE_ID}.")
        );
        assert!(out.blocked_by.is_empty());
        let a = &out.assessment;
        assert_eq!(a.pii_entities.len(), 2);
        assert_eq!(a.pii_entities[0].entity_type, "name");
        assert_eq!(a.pii_entities[0].action, AppliedAction::None);
        assert_eq!(a.pii_entities[1].action, AppliedAction::Anonymized);
        assert_eq!(a.pii_entities[1].length, "jane@example.com".len());
        assert_eq!(a.regexes[0].name, "EMPLOYEE_ID");
        let json = serde_json::to_string(a).unwrap();
        assert!(
            !json.contains("jane@example.com") && !json.contains("123456"),
            "{json}"
        );

        let out = f.apply(text, &pii, Direction::Output);
        assert_eq!(
            out.masked.as_ref().map(|(text, _)| text.as_str()),
            Some("Ask {name} ({EMAIL}) about {EMPLOYEE_ID}.")
        );
    }

    #[test]
    fn block_and_none_and_unknown_types() {
        let policy = SensitiveInformationPolicy {
            entities: vec![entity(
                "US_SOCIAL_SECURITY_NUMBER",
                PiiAction::Block,
                PiiAction::None,
            )],
            regexes: vec![],
        };
        let f = SensitiveFilter::new(&policy).unwrap();
        let text = "SSN 123-45-6789, phone 555-0100";
        let pii = [
            span("US_SOCIAL_SECURITY_NUMBER", text, "123-45-6789"),
            span("PHONE", text, "555-0100"),
        ];
        let out = f.apply(text, &pii, Direction::Input);
        assert_eq!(out.blocked_by, ["US_SOCIAL_SECURITY_NUMBER"]);
        assert_eq!(
            out.assessment.pii_entities.len(),
            1,
            "unconfigured types are ignored"
        );
        let out = f.apply(text, &pii, Direction::Output);
        assert!(out.blocked_by.is_empty() && out.assessment.pii_entities.is_empty());
        assert!(!f.is_active(Direction::Output));
    }

    #[test]
    fn overlapping_and_invalid_spans_are_handled() {
        let policy = SensitiveInformationPolicy {
            entities: vec![entity("EMAIL", PiiAction::Anonymize, PiiAction::Anonymize)],
            regexes: vec![regex("DOMAIN", r"example\.com", PiiAction::Anonymize)],
        };
        let f = SensitiveFilter::new(&policy).unwrap();
        let text = "mail é@example.com";
        let bad = [
            PiiSpan {
                entity_type: "EMAIL".into(),
                start: 6,
                end: 7,
            }, // inside 'é'
            PiiSpan {
                entity_type: "EMAIL".into(),
                start: 3,
                end: 99,
            },
        ];
        let out = f.apply(text, &bad, Direction::Input);
        assert_eq!(out.invalid_spans, 2);
        let pii = [span("EMAIL", text, "é@example.com")];
        let out = f.apply(text, &pii, Direction::Input);
        assert_eq!(
            out.masked.as_ref().map(|(text, _)| text.as_str()),
            Some("mail {EMAIL}")
        );
        assert_eq!(
            out.assessment.regexes.len(),
            1,
            "the inner match is still reported"
        );
    }

    #[test]
    fn bad_regexes_are_typed_errors() {
        for (pattern, want) in [
            ("(unclosed", "regex"),
            ("a*", "empty string"),
            ("^", "empty string"),
            (&"a".repeat(501), "characters"),
            ("", "characters"),
            (r"\w{1000}\w{1000}\w{1000}", "size"),
        ] {
            let policy = SensitiveInformationPolicy {
                entities: vec![],
                regexes: vec![regex("R", pattern, PiiAction::Block)],
            };
            match SensitiveFilter::new(&policy) {
                Err(GuardError::InvalidRegex { reason, .. }) => {
                    assert!(reason.to_lowercase().contains(want), "{pattern}: {reason}")
                }
                other => panic!("{pattern}: {:?}", other.err()),
            }
        }
        let dup = SensitiveInformationPolicy {
            entities: vec![entity("EMAIL", PiiAction::Block, PiiAction::Block)],
            regexes: vec![regex("email", "x", PiiAction::Block)],
        };
        assert!(matches!(
            SensitiveFilter::new(&dup),
            Err(GuardError::Duplicate { .. })
        ));
    }
}
