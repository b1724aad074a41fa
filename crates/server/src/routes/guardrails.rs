//! Guardrail policies: listing them and checking text against one (`ApplyGuardrail`).

use crate::api::*;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiResult, Body, Caller, Shared};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

#[utoipa::path(get, path = "/v1/guardrails", tag = "guardrails", security(("bearer" = [])),
    responses((status = 200, description = "`{default, policies}`: the configured policy names", body = Object), (status = 401, body = ErrorBody)))]
pub async fn list_guardrails(State(state): Shared, Caller(caller): Caller) -> Result<Response, ApiError> {
    let listed = state
        .run(move || {
            let names = caller.validate_guardrails()?;
            Ok(serde_json::json!({
                "default": caller.config().guardrails.default,
                "policies": names,
            }))
        })
        .await?;
    Ok(axum::Json(listed).into_response())
}

/// Applies a policy to texts without calling a model, like Bedrock's `ApplyGuardrail`.
#[utoipa::path(post, path = "/v1/guardrails/{name}/apply", tag = "guardrails", security(("bearer" = [])),
    params(("name" = String, Path, description = "A policy under [guardrails.policies]")), request_body = ApplyGuardrailRequest,
    responses((status = 200, body = ApplyGuardrailResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn apply_guardrail(
    State(state): Shared,
    Caller(caller): Caller,
    Path(name): Path<String>,
    Body(body): Body<ApplyGuardrailRequest>,
) -> ApiResult<ApplyGuardrailResponse> {
    let source: groundwork_service::CheckSource = body.source.parse()?;
    let (mut checked, mut query, mut grounding_sources) = (Vec::new(), None, Vec::new());
    for item in body.content {
        let qualifiers: Vec<String> = item
            .text
            .qualifiers
            .iter()
            .map(|q| q.to_ascii_lowercase())
            .collect();
        if qualifiers.iter().any(|q| q == "query") {
            query = Some(item.text.text);
        } else if qualifiers.iter().any(|q| q == "grounding_source") {
            grounding_sources.push(item.text.text);
        } else if let Some(other) = qualifiers.iter().find(|q| *q != "guard_content") {
            return Err(ApiError::from(groundwork_service::ServiceError::invalid(
                format!("unknown qualifier `{other}`; expected guard_content, query or grounding_source"),
            )));
        } else {
            checked.push(item.text.text);
        }
    }
    if checked.is_empty() {
        return Err(ApiError::from(groundwork_service::ServiceError::invalid(
            "no content to check: give at least one text without the query or grounding_source qualifier",
        )));
    }
    let request = groundwork_service::CheckRequest {
        policy: Some(name),
        source,
        text: checked.join("\n"),
        query,
        grounding_sources,
    };
    let response = state.run(move || caller.check_guardrail(&request)).await?;
    let assessment = response.assessment;
    Ok(axum::Json(ApplyGuardrailResponse {
        action: serde_json::to_value(assessment.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        action_reason: assessment.action_reason.clone(),
        outputs: vec![ContentText {
            text: assessment.output_text.clone(),
        }],
        assessments: vec![assessment],
    }))
}
