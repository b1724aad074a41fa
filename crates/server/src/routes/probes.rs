//! Probes: liveness, readiness (store and model), Prometheus metrics. Never authenticated,
//! never refused by the admission limits.

use crate::error::{ApiError, ErrorBody};
use crate::extract::Shared;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use groundwork_core::ErrorCode;

#[utoipa::path(get, path = "/healthz", tag = "probes", responses((status = 200, description = "The process is up")))]
pub async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// Ready when the store answers and the local model loads; `503` while shutting down.
#[utoipa::path(get, path = "/readyz", tag = "probes", responses(
    (status = 200, description = "Ready to serve"),
    (status = 503, description = "Not ready", body = ErrorBody)))]
pub async fn readyz(State(state): Shared) -> Result<axum::Json<serde_json::Value>, ApiError> {
    if state.is_draining() {
        return Err(ApiError::new(ErrorCode::Draining, "the server is shutting down"));
    }
    let handle = state.groundwork.clone();
    state
        .run(move || {
            handle.store().schema_version()?;
            handle.embedder()?;
            Ok(())
        })
        .await?;
    Ok(axum::Json(serde_json::json!({ "status": "ready" })))
}

#[utoipa::path(get, path = "/metrics", tag = "probes", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): Shared) -> Response {
    let mut text = state.metrics.render(state.jobs.running());
    text.push_str(&crate::metrics::render_query_embedding(
        &state.groundwork.query_embedding_stats(),
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
