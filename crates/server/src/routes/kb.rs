//! Knowledge bases, their sources, sync jobs (administration: the service decides and audits).

use crate::api::*;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiResult, Body, Caller, Shared};
use crate::jobs::{self, JobStatus};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use groundwork_core::{KnowledgeBaseConfig, Source, SourceConfig};
use groundwork_service::KbStatus;

#[utoipa::path(get, path = "/v1/knowledge-bases", tag = "knowledge bases", security(("bearer" = [])),
    responses((status = 200, description = "Knowledge base names and settings", body = Object), (status = 401, body = ErrorBody)))]
pub async fn list_kbs(State(state): Shared, Caller(caller): Caller) -> Result<Response, ApiError> {
    let kbs = state.run(move || caller.list_kbs()).await?;
    Ok(axum::Json(kbs).into_response())
}

#[utoipa::path(post, path = "/v1/knowledge-bases", tag = "knowledge bases", security(("bearer" = [])),
    request_body = CreateKnowledgeBase,
    responses((status = 201, description = "Created", body = Object), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_kb(
    State(state): Shared,
    Caller(caller): Caller,
    Body(body): Body<CreateKnowledgeBase>,
) -> Result<Response, ApiError> {
    let config: KnowledgeBaseConfig = match body.config {
        None => KnowledgeBaseConfig::default(),
        Some(value) => {
            serde_json::from_value(value).map_err(|e| ApiError::invalid(format!("invalid config: {e}")))?
        }
    };
    let kb = state.run(move || caller.create_kb(&body.name, config)).await?;
    Ok((StatusCode::CREATED, axum::Json(kb)).into_response())
}

#[utoipa::path(get, path = "/v1/knowledge-bases/{name}", tag = "knowledge bases", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 200, description = "Counts, sources and failed documents", body = Object), (status = 404, body = ErrorBody)))]
pub async fn kb_status(
    State(state): Shared,
    Caller(caller): Caller,
    Path(name): Path<String>,
) -> ApiResult<KbStatus> {
    Ok(axum::Json(state.run(move || caller.kb_status(&name)).await?))
}

#[utoipa::path(delete, path = "/v1/knowledge-bases/{name}", tag = "knowledge bases", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)))]
pub async fn delete_kb(
    State(state): Shared,
    Caller(caller): Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.run(move || caller.delete_kb(&name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/knowledge-bases/{name}/sources", tag = "knowledge bases", security(("bearer" = [])),
    params(("name" = String, Path)), responses((status = 200, body = Object)))]
pub async fn list_sources(
    State(state): Shared,
    Caller(caller): Caller,
    Path(name): Path<String>,
) -> ApiResult<Vec<Source>> {
    Ok(axum::Json(state.run(move || caller.list_sources(&name)).await?))
}

#[utoipa::path(post, path = "/v1/knowledge-bases/{name}/sources", tag = "knowledge bases", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = AddSource,
    responses((status = 201, body = Object), (status = 400, body = ErrorBody)))]
pub async fn add_source(
    State(state): Shared,
    Caller(caller): Caller,
    Path(name): Path<String>,
    Body(body): Body<AddSource>,
) -> Result<Response, ApiError> {
    let config: SourceConfig = match body.config {
        None => SourceConfig::default(),
        Some(value) => {
            serde_json::from_value(value).map_err(|e| ApiError::invalid(format!("invalid config: {e}")))?
        }
    };
    let source = state
        .run(move || caller.add_source(&name, &body.uri, config))
        .await?;
    Ok((StatusCode::CREATED, axum::Json(source)).into_response())
}

#[utoipa::path(delete, path = "/v1/knowledge-bases/{name}/sources", tag = "knowledge bases", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = RemoveSource,
    responses((status = 204, description = "Removed"), (status = 404, body = ErrorBody)))]
pub async fn remove_source(
    State(state): Shared,
    Caller(caller): Caller,
    Path(name): Path<String>,
    Body(body): Body<RemoveSource>,
) -> Result<StatusCode, ApiError> {
    let removed = state.run(move || caller.remove_source(&name, &body.uri)).await?;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("no such source"))
    }
}

#[utoipa::path(post, path = "/v1/knowledge-bases/{name}/sync", tag = "knowledge bases", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 202, description = "Started; follow status_url", body = JobAccepted), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn start_sync(
    State(state): Shared,
    Caller(caller): Caller,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    // Decide access now rather than only inside the job, so a refused caller gets 403, not a job.
    let check = caller.clone();
    let kb = name.clone();
    state.run(move || check.check_sync(&kb)).await?;
    let id = jobs::start_sync(&state, caller, &name, "api");
    let accepted = JobAccepted {
        job_id: id,
        status_url: format!("/v1/jobs/{id}"),
    };
    Ok((StatusCode::ACCEPTED, axum::Json(accepted)).into_response())
}

#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "knowledge bases", security(("bearer" = [])),
    params(("id" = u64, Path)),
    responses((status = 200, body = JobStatus), (status = 404, body = ErrorBody)))]
pub async fn job(
    State(state): Shared,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<JobStatus> {
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::invalid("a job id is a number"))?;
    let status = state
        .jobs
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
    // Jobs are administrative: only their starter or an administrator may follow them.
    if !caller.actor().subject.admin && caller.actor().subject.user != status.actor {
        return Err(ApiError::not_found(format!("no job {id}")));
    }
    Ok(axum::Json(status))
}
