//! Guardrail policies at work: the named policies of `config.toml` compiled once per process,
//! the PII detector that feeds them, and the `guardrail_check` operation (groundwork's
//! `ApplyGuardrail`).
//!
//! `groundwork_guard` is pure policy logic; it is told where the PII is (spans from
//! `groundwork_govern::mask`, built for exactly the entity types the policy names) and given
//! an embedder for denied topics and grounding (the local model behind [`TextEmbedder`]).
//! [`PolicyGuard`] joins the three. `answer` applies a knowledge base's policy to the
//! question, the retrieved chunks and the answer; this module also checks arbitrary text.

use crate::error::ServiceError;
use crate::home::Groundwork;
use crate::policy_guard::PolicyGuard;
use groundwork_core::KnowledgeBase;
use groundwork_guard::{Assessment, GroundingContext};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Instant;

/// Longest text `guardrail_check` accepts, in bytes (Bedrock's ApplyGuardrail takes 25 text
/// units of 1,000 characters per request; this is the same order).
pub const MAX_CHECK_BYTES: usize = 100 * 1024;

/// Which way a checked text flows, as `ApplyGuardrail` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CheckSource {
    /// A user's question.
    Input,
    /// A model's answer.
    Output,
}

impl std::str::FromStr for CheckSource {
    type Err = ServiceError;
    fn from_str(s: &str) -> Result<CheckSource, ServiceError> {
        match s.to_ascii_lowercase().as_str() {
            "input" => Ok(CheckSource::Input),
            "output" => Ok(CheckSource::Output),
            other => Err(ServiceError::invalid(format!(
                "unknown guardrail source `{other}`; expected input or output"
            ))),
        }
    }
}

/// A request to check text against a policy without calling a model.
#[derive(Debug, Clone)]
pub struct CheckRequest {
    /// The policy; the server default when `None`.
    pub policy: Option<String>,
    pub source: CheckSource,
    pub text: String,
    /// For an output check: the question the text answers (relevance)…
    pub query: Option<String>,
    /// …and the passages it should be grounded in (contextual grounding).
    pub grounding_sources: Vec<String>,
}

/// The outcome of [`Groundwork::check_guardrail`].
#[derive(Debug, Clone, Serialize)]
pub struct CheckResponse {
    pub policy: String,
    pub source: CheckSource,
    pub assessment: Assessment,
}

fn undefined_policy(name: &str) -> ServiceError {
    ServiceError::invalid(format!(
        "no guardrail policy `{name}` in config.toml (define it under [guardrails.policies.{name}])"
    ))
}

impl Groundwork {
    /// The compiled policy `name`, built on first use and shared by every handle.
    pub fn guardrail(&self, name: &str) -> Result<Arc<PolicyGuard>, ServiceError> {
        let mut compiled = self.shared.guards.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(guard) = compiled.get(name) {
            return Ok(guard.clone());
        }
        let policy = self
            .config()
            .guardrails
            .policies
            .get(name)
            .cloned()
            .ok_or_else(|| undefined_policy(name))?;
        let guard = Arc::new(PolicyGuard::compile(name, policy, || self.query_embedder())?);
        compiled.insert(name.to_owned(), guard.clone());
        Ok(guard)
    }

    /// Compiles every configured policy, so that a mistake in one stops `serve` at start-up
    /// rather than failing the first question it should guard.
    pub fn validate_guardrails(&self) -> Result<Vec<String>, ServiceError> {
        let guardrails = &self.config().guardrails;
        if let Some(default) = &guardrails.default
            && !guardrails.policies.contains_key(default)
        {
            return Err(ServiceError::invalid(format!(
                "[guardrails] default names `{default}`, which is not under [guardrails.policies]"
            )));
        }
        for name in guardrails.policies.keys() {
            self.guardrail(name)?;
        }
        Ok(guardrails.policies.keys().cloned().collect())
    }

    /// The policy that guards `kb`: its own, else the server default, else none.
    pub(crate) fn guardrail_for(&self, kb: &KnowledgeBase) -> Result<Option<Arc<PolicyGuard>>, ServiceError> {
        match kb
            .config
            .guardrail
            .as_ref()
            .or(self.config().guardrails.default.as_ref())
        {
            Some(name) => self.guardrail(name).map(Some),
            None => Ok(None),
        }
    }

    /// Fails unless `name` is a configured policy (for knowledge bases that name one).
    pub(crate) fn require_guardrail_defined(&self, name: &str) -> Result<(), ServiceError> {
        if self.config().guardrails.policies.contains_key(name) {
            Ok(())
        } else {
            Err(undefined_policy(name))
        }
    }

    /// Applies a policy to `request.text` without calling any model, like Bedrock's
    /// `ApplyGuardrail`. Any actor may check text (faces authenticate before they call): it reads no data. Audited as
    /// `guardrail_check` with the outcome but never the text.
    pub fn check_guardrail(&self, request: &CheckRequest) -> Result<CheckResponse, ServiceError> {
        let started = Instant::now();
        let name = request
            .policy
            .clone()
            .or_else(|| self.config().guardrails.default.clone())
            .ok_or_else(|| {
                ServiceError::invalid("no policy named and no [guardrails] default in config.toml")
            })?;
        let mut entry = self.entry(
            "guardrail_check",
            Some(&name),
            serde_json::json!({
                "source": request.source,
                "text_bytes": request.text.len(),
                "grounding_sources": request.grounding_sources.len(),
            }),
        );
        let result = self.run_check(&name, request);
        if let Ok(response) = &result {
            entry.request["result"] = serde_json::json!({
                "action": response.assessment.action,
                "blocked": response.assessment.blocked,
                "detected": response.assessment.detected,
                "reason": response.assessment.action_reason,
            });
        }
        self.record_read(entry, started, &result, Vec::new())?;
        result
    }

    fn run_check(&self, name: &str, request: &CheckRequest) -> Result<CheckResponse, ServiceError> {
        if request.text.len() > MAX_CHECK_BYTES {
            return Err(ServiceError::invalid(format!(
                "text is {} bytes; the limit is {MAX_CHECK_BYTES}",
                request.text.len()
            )));
        }
        let guard = self.guardrail(name)?;
        let assessment = match request.source {
            CheckSource::Input => guard.check_input(&request.text),
            CheckSource::Output => {
                let sources: Vec<&str> = request.grounding_sources.iter().map(String::as_str).collect();
                let context = (!sources.is_empty() || request.query.is_some()).then(|| GroundingContext {
                    question: request.query.as_deref().unwrap_or(""),
                    sources: &sources,
                });
                guard.check_output(&request.text, context)
            }
        };
        Ok(CheckResponse {
            policy: guard.name().to_owned(),
            source: request.source,
            assessment,
        })
    }
}
