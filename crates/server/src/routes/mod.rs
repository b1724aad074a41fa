//! The router: every path mapped to its handler (one file per area beside this one), the
//! admission middleware (concurrency and memory limits, metrics) and the fallbacks.
//!
//! Each handler: extract and check the request (malformed JSON or query strings become
//! `invalid_request`), authenticate, then make one service call through
//! [`AppState::run`]. Nothing here decides access; the service does, and audits.

pub mod admin;
pub mod audit;
pub mod guardrails;
pub mod kb;
pub mod probes;
pub mod retrieval;
pub mod tables;
pub mod text_sql;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Shared;
use admin::*;
use audit::*;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use groundwork_core::ErrorCode;
use guardrails::*;
use kb::*;
use probes::*;
use retrieval::*;
use std::sync::Arc;
use std::time::Instant;
use tables::*;
use text_sql::*;

pub fn router(state: Arc<AppState>) -> Router {
    let max_body = state.config().max_body_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(crate::openapi::serve))
        .route("/v1/knowledge-bases", get(list_kbs).post(create_kb))
        .route("/v1/knowledge-bases/{name}", get(kb_status).delete(delete_kb))
        .route(
            "/v1/knowledge-bases/{name}/sources",
            get(list_sources).post(add_source).delete(remove_source),
        )
        .route("/v1/knowledge-bases/{name}/sync", post(start_sync))
        .route("/v1/jobs/{id}", get(job))
        .route("/v1/knowledge-bases/{name}/retrieve", post(retrieve))
        .route(
            "/v1/knowledge-bases/{name}/retrieve-and-generate",
            post(retrieve_and_generate),
        )
        .route(
            "/v1/knowledge-bases/{name}/retrieve-and-generate-stream",
            post(retrieve_and_generate_stream),
        )
        .route("/v1/knowledge-bases/{name}/tables", get(list_tables))
        .route("/v1/knowledge-bases/{name}/tables/{table}", get(describe_table))
        .route(
            "/v1/knowledge-bases/{name}/tables/{table}/quality",
            get(quality_status).put(set_quality_rules),
        )
        .route(
            "/v1/knowledge-bases/{name}/tables/{table}/quality/run",
            post(run_quality),
        )
        .route("/v1/knowledge-bases/{name}/query", post(query))
        .route("/v1/knowledge-bases/{name}/generate-query", post(generate_query))
        .route("/v1/guardrails", get(list_guardrails))
        .route("/v1/guardrails/{name}/apply", post(apply_guardrail))
        .route("/v1/audit", get(audit_query))
        .route("/v1/audit/verify", get(audit_verify))
        .route("/v1/users", get(list_users).post(add_user))
        .route("/v1/users/{name}", delete(remove_user))
        .route("/v1/groups", get(list_groups).post(add_group))
        .route("/v1/groups/{name}", delete(remove_group))
        .route("/v1/groups/{name}/members", post(add_member))
        .route("/v1/groups/{name}/members/{user}", delete(remove_member))
        .route("/v1/tokens", get(list_tokens).post(create_token))
        .route("/v1/tokens/{id}", delete(revoke_token))
        .route("/v1/grants", get(list_grants).post(add_grant))
        .route("/v1/grants/{id}", delete(revoke_grant))
        .merge(
            // MCP over streamable HTTP; every request authenticated before the protocol layer.
            Router::new()
                .route_service("/mcp", crate::mcp::http_service(&state))
                .layer(middleware::from_fn_with_state(
                    state.clone(),
                    crate::mcp::authenticate,
                )),
        )
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(state.clone(), admit))
        .with_state(state)
}

/// Bounds concurrency and memory (refusing, not queueing, past either limit), counts and times
/// requests.
async fn admit(State(state): Shared, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    state.metrics.request_started();
    // Probes and metrics stay answerable when the server is saturated.
    let exempt = matches!(route.as_str(), "/healthz" | "/readyz" | "/metrics");
    let permit = if exempt {
        None
    } else {
        state.permits.clone().try_acquire_owned().ok()
    };
    let over_memory = !exempt && state.over_memory_limit();
    let response = if over_memory {
        ApiError::new(
            ErrorCode::Overloaded,
            "the server is over its memory limit; retry shortly",
        )
        .into_response()
    } else if exempt || permit.is_some() {
        next.run(request).await
    } else {
        ApiError::overloaded().into_response()
    };
    drop(permit);
    state.metrics.request_finished(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

async fn no_route() -> ApiError {
    ApiError::not_found("no such endpoint; see /openapi.json")
}

async fn wrong_method() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this endpoint does not take that method; see /openapi.json",
    )
}
