//! Tables over HTTP: listing and describing the tables a caller may read, governed SQL with the
//! rows streamed as JSON Lines, and data-quality rules, runs and status.
//!
//! The query stream: the worker runs the service's query on a blocking thread and sends each
//! batch as it comes; the response starts once the first batch (or the end) arrives, so errors
//! found before any row (bad SQL, an unknown table) are ordinary error responses, and an error
//! after rows were sent ends the stream with an `error` line.

use crate::api::{QualityRulesBody, QueryRequestBody};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiResult, Body, Caller, Shared};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use groundwork_service::{QualityReport, QualityStatus, SqlRequest, TableDescription, TableSummary};
use serde_json::json;

#[utoipa::path(get, path = "/v1/knowledge-bases/{name}/tables", tag = "tables", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 200, description = "The tables the caller may read", body = Object), (status = 404, body = ErrorBody)))]
pub async fn list_tables(
    State(state): Shared,
    Caller(caller): Caller,
    Path(name): Path<String>,
) -> ApiResult<Vec<TableSummary>> {
    Ok(axum::Json(state.run(move || caller.list_tables(&name)).await?))
}

#[utoipa::path(get, path = "/v1/knowledge-bases/{name}/tables/{table}", tag = "tables", security(("bearer" = [])),
    params(("name" = String, Path), ("table" = String, Path)),
    responses((status = 200, description = "Columns, profile, samples as the caller may see them", body = Object), (status = 404, body = ErrorBody)))]
pub async fn describe_table(
    State(state): Shared,
    Caller(caller): Caller,
    Path((name, table)): Path<(String, String)>,
) -> ApiResult<TableDescription> {
    Ok(axum::Json(
        state.run(move || caller.describe_table(&name, &table)).await?,
    ))
}

enum Piece {
    Rows(Vec<u8>),
    Done(Result<groundwork_service::QueryOutcome, ApiError>),
}

/// One read-only statement, run as the caller. The body streams as JSON Lines: one line per
/// row, then a last line `{"done": {columns, rows, truncated, plan_fingerprint, tables}}` (or
/// `{"error": {code, message}}` when the query fails after rows were sent).
#[utoipa::path(post, path = "/v1/knowledge-bases/{name}/query", tag = "tables", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = QueryRequestBody,
    responses((status = 200, description = "application/x-ndjson: rows, then a `done` line", content_type = "application/x-ndjson"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub async fn query(
    State(state): Shared,
    Caller(caller): Caller,
    Path(name): Path<String>,
    Body(body): Body<QueryRequestBody>,
) -> Result<Response, ApiError> {
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Piece>(8);
    let request = SqlRequest {
        knowledge_base: name,
        sql: body.sql,
        explain: body.explain.unwrap_or(false),
    };
    let rows_sender = sender.clone();
    let worker = tokio::task::spawn_blocking(move || {
        let result = caller.query(&request, &mut |batch| {
            let bytes = groundwork_service::write_result(
                groundwork_service::ResultFormat::Jsonl,
                &batch
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| (f.name().clone(), f.data_type().to_string()))
                    .collect::<Vec<_>>(),
                std::slice::from_ref(batch),
            )
            .map_err(|e| groundwork_service::SqlError::Internal(e.to_string()))?;
            // A client that went away stops the query.
            Ok(rows_sender.blocking_send(Piece::Rows(bytes)).is_ok())
        });
        let _ = sender.blocking_send(Piece::Done(result.map_err(ApiError::from)));
    });
    drop(worker);
    let deadline = std::time::Duration::from_secs(state.config().request_timeout_secs.max(1));
    let first = match tokio::time::timeout(deadline, receiver.recv()).await {
        Err(_) => return Err(ApiError::timeout(state.config().request_timeout_secs)),
        Ok(None) => return Err(ApiError::internal("the query worker", "ended without an answer")),
        Ok(Some(piece)) => piece,
    };
    let first = match first {
        Piece::Done(Err(error)) => return Err(error),
        other => other,
    };
    let stream = futures::stream::unfold((Some(first), receiver), |(pending, mut receiver)| async move {
        let piece = match pending {
            Some(piece) => piece,
            None => receiver.recv().await?,
        };
        let bytes = match piece {
            Piece::Rows(bytes) => bytes,
            Piece::Done(Ok(outcome)) => {
                let mut line = serde_json::to_vec(&json!({ "done": outcome })).unwrap_or_default();
                line.push(b'\n');
                line
            }
            Piece::Done(Err(error)) => {
                let mut line = serde_json::to_vec(&json!({ "error": error.body() })).unwrap_or_default();
                line.push(b'\n');
                line
            }
        };
        Some((
            Ok::<_, std::io::Error>(bytes::Bytes::from(bytes)),
            (None, receiver),
        ))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

#[utoipa::path(get, path = "/v1/knowledge-bases/{name}/tables/{table}/quality", tag = "tables", security(("bearer" = [])),
    params(("name" = String, Path), ("table" = String, Path)),
    responses((status = 200, description = "Rules and recent runs", body = Object), (status = 404, body = ErrorBody)))]
pub async fn quality_status(
    State(state): Shared,
    Caller(caller): Caller,
    Path((name, table)): Path<(String, String)>,
) -> ApiResult<QualityStatus> {
    Ok(axum::Json(
        state
            .run(move || caller.quality_status(&name, &table, 10))
            .await?,
    ))
}

#[utoipa::path(put, path = "/v1/knowledge-bases/{name}/tables/{table}/quality", tag = "tables", security(("bearer" = [])),
    params(("name" = String, Path), ("table" = String, Path)), request_body = QualityRulesBody,
    responses((status = 204, description = "Rules set"), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn set_quality_rules(
    State(state): Shared,
    Caller(caller): Caller,
    Path((name, table)): Path<(String, String)>,
    Body(body): Body<QualityRulesBody>,
) -> Result<axum::http::StatusCode, ApiError> {
    state
        .run(move || caller.set_quality_rules(&name, &table, body.rules.as_deref()))
        .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/knowledge-bases/{name}/tables/{table}/quality/run", tag = "tables", security(("bearer" = [])),
    params(("name" = String, Path), ("table" = String, Path)),
    responses((status = 200, description = "The run's outcomes", body = Object), (status = 403, body = ErrorBody)))]
pub async fn run_quality(
    State(state): Shared,
    Caller(caller): Caller,
    Path((name, table)): Path<(String, String)>,
) -> ApiResult<Vec<QualityReport>> {
    Ok(axum::Json(
        state.run(move || caller.run_quality(&name, Some(&table))).await?,
    ))
}
