//! The audit log over HTTP: querying and verifying the chain (administrators only).

use crate::api::*;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiResult, Caller, Params, Shared};
use axum::extract::State;
use groundwork_core::now_millis;
use groundwork_service::{AuditQuery, AuditRow, AuditVerification, parse_time_or_duration};

/// Most audit records one query returns.
const MAX_AUDIT_ROWS: usize = 10_000;

#[utoipa::path(get, path = "/v1/audit", tag = "audit", security(("bearer" = [])),
    params(AuditQueryParams),
    responses((status = 200, description = "Records, oldest first", body = Object), (status = 403, body = ErrorBody)))]
pub async fn audit_query(
    State(state): Shared,
    Caller(caller): Caller,
    Params(params): Params<AuditQueryParams>,
) -> ApiResult<Vec<AuditRow>> {
    let now = now_millis();
    let time = |t: &Option<String>| t.as_deref().map(|t| parse_time_or_duration(t, now)).transpose();
    let query = AuditQuery {
        actor: params.actor.clone(),
        action: params.action.clone(),
        since: time(&params.since).map_err(ApiError::from)?,
        until: time(&params.until).map_err(ApiError::from)?,
        document_uri: params.document.clone(),
        after_seq: None,
        limit: Some(params.limit.unwrap_or(100).clamp(1, MAX_AUDIT_ROWS)),
    };
    Ok(axum::Json(state.run(move || caller.audit_query(&query)).await?))
}

#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody)))]
pub async fn audit_verify(State(state): Shared, Caller(caller): Caller) -> ApiResult<AuditVerification> {
    Ok(axum::Json(state.run(move || caller.audit_verify(None)).await?))
}
