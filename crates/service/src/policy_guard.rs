//! A compiled guardrail policy: the guard engine of one named policy of `config.toml`, the PII
//! detector built for exactly the entity types it names, and the local model behind the
//! guard's [`TextEmbedder`] when the policy needs one.
//!
//! `groundwork_guard` is pure policy logic; it is told where the PII is (spans from
//! `groundwork_govern::mask`) and given an embedder. [`PolicyGuard`] joins the three.

use crate::error::ServiceError;
use groundwork_embed::Embedder;
use groundwork_govern::mask::{Detector, EntityKind};
use groundwork_guard::{
    Assessment, ChunkVerdict, GroundingContext, Guard, GuardError, GuardPolicy, PiiAction, PiiSpan,
    TextEmbedder,
};
use std::sync::Arc;

/// One compiled policy: the guard, and a PII detector for the entity types it names.
pub struct PolicyGuard {
    name: String,
    guard: Guard,
    /// `None` when the policy names no PII entity type.
    pii: Option<Detector>,
    /// Entity types whose output action rewrites text; reference excerpts are redacted for them.
    redacted_in_output: Vec<EntityKind>,
}

impl std::fmt::Debug for PolicyGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyGuard")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The local embedder as the guard sees it.
struct GuardEmbedder(Arc<dyn Embedder>);

impl TextEmbedder for GuardEmbedder {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, GuardError> {
        self.0
            .embed(texts)
            .map_err(|e| GuardError::Embedder(e.to_string()))
    }
}

impl PolicyGuard {
    /// Compiles `policy` under `name`. `embedder` is only called for when the policy has checks
    /// that use one.
    pub(crate) fn compile(
        name: &str,
        mut policy: GuardPolicy,
        embedder: impl FnOnce() -> Result<Arc<dyn Embedder>, ServiceError>,
    ) -> Result<PolicyGuard, ServiceError> {
        policy.name = name.to_owned();
        let invalid =
            |message: String| ServiceError::invalid(format!("guardrail policy `{name}`: {message}"));
        let mut kinds = Vec::new();
        let mut redacted_in_output = Vec::new();
        for entity in &policy.sensitive_information.entities {
            let kind = entity_kind(&entity.entity_type).ok_or_else(|| {
                invalid(format!(
                    "unknown PII entity type `{}`; expected one of {}",
                    entity.entity_type,
                    EntityKind::BEDROCK.map(EntityKind::as_str).join(", ")
                ))
            })?;
            if entity.input_action != PiiAction::None || entity.output_action != PiiAction::None {
                kinds.push(kind);
            }
            if matches!(entity.output_action, PiiAction::Anonymize | PiiAction::Block) {
                redacted_in_output.push(kind);
            }
        }
        let pii = if kinds.is_empty() {
            None
        } else {
            Some(Detector::with_kinds(&kinds, &[]).map_err(|e| invalid(e.to_string()))?)
        };
        let needs_embedder =
            !policy.topics.is_empty() || policy.contextual_grounding.as_ref().is_some_and(|g| g.semantic);
        let embedder: Option<Arc<dyn TextEmbedder>> = if needs_embedder {
            Some(Arc::new(GuardEmbedder(embedder()?)))
        } else {
            None
        };
        let guard = Guard::new(policy, embedder).map_err(|e| invalid(e.to_string()))?;
        Ok(PolicyGuard {
            name: name.to_owned(),
            guard,
            pii,
            redacted_in_output,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn policy(&self) -> &GuardPolicy {
        self.guard.policy()
    }

    fn pii_spans(&self, text: &str) -> Vec<PiiSpan> {
        let Some(detector) = &self.pii else {
            return Vec::new();
        };
        detector
            .find(text)
            .into_iter()
            .map(|finding| PiiSpan {
                entity_type: finding.kind.as_str().to_owned(),
                start: finding.start,
                end: finding.end,
            })
            .collect()
    }

    /// Checks a question before retrieval.
    pub fn check_input(&self, text: &str) -> Assessment {
        self.guard.check_input(text, &self.pii_spans(text))
    }

    /// Screens retrieved chunks for injected instructions.
    pub fn check_retrieved(&self, chunks: &[&str]) -> Vec<ChunkVerdict> {
        self.guard.check_retrieved(chunks)
    }

    /// Checks an answer, with the question and sources for contextual grounding.
    pub fn check_output(&self, text: &str, grounding: Option<GroundingContext<'_>>) -> Assessment {
        self.guard.check_output(text, &self.pii_spans(text), grounding)
    }

    /// `text` with the PII types this policy anonymises or blocks in output masked as
    /// `{TYPE}`: for the excerpts of references shown beside a guarded answer.
    pub fn redact_excerpt(&self, text: &str) -> String {
        let Some(detector) = &self.pii else {
            return text.to_owned();
        };
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for finding in detector.find(text) {
            if !self.redacted_in_output.contains(&finding.kind) || finding.start < last {
                continue;
            }
            out.push_str(&text[last..finding.start]);
            out.push('{');
            out.push_str(finding.kind.as_str());
            out.push('}');
            last = finding.end;
        }
        out.push_str(&text[last..]);
        out
    }
}

/// The entity kind a policy names, case-insensitively.
fn entity_kind(name: &str) -> Option<EntityKind> {
    EntityKind::ALL
        .into_iter()
        .find(|kind| kind.as_str().eq_ignore_ascii_case(name.trim()))
}
