//! Paths, handlers and the middleware around them.
//!
//! Each handler: extract and check the request (malformed JSON or query strings become
//! `invalid_request`), authenticate, then make one service call through
//! [`AppState::run`]. Nothing here decides access; the service does, and audits.

use crate::AppState;
use crate::api::*;
use crate::error::{ApiError, ErrorBody};
use crate::jobs::{self, JobStatus};
use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use groundwork_core::{KnowledgeBaseConfig, Source, SourceConfig, now_millis};
use groundwork_service::{
    AuditQuery, AuditRow, AuditVerification, CreatedToken, Grant, Grantee, Groundwork, KbStatus, Level,
    Principal, PrincipalKind, SearchRequest, TokenRecord, parse_time_or_duration,
};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Instant;

type Shared = State<Arc<AppState>>;
type ApiResult<T> = Result<axum::Json<T>, ApiError>;

/// Most audit records one query returns.
const MAX_AUDIT_ROWS: usize = 10_000;

pub fn router(state: Arc<AppState>) -> Router {
    let max_body = state.config().max_body_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
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
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
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
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method; see /openapi.json",
    )
}

// ---- extractors ------------------------------------------------------------------------

/// A JSON body whose rejections speak the API's error shape.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is over the server's limit",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        ),
        _ => ApiError::invalid(rejection.body_text()),
    }
}

/// Query-string parameters whose rejections speak the API's error shape.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Params(value)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError::invalid(rejection.body_text())
}

/// The request's authenticated handle.
pub struct Caller(pub Groundwork);

/// The bearer credential of `Authorization`, or why there is none.
pub(crate) fn bearer(headers: &axum::http::HeaderMap) -> Result<String, &'static str> {
    match headers.get(header::AUTHORIZATION) {
        None => Err("no Authorization header"),
        Some(value) => match value.to_str() {
            Err(_) => Err("Authorization header is not text"),
            Ok(text) => match text.trim().split_once(' ') {
                Some((scheme, credential))
                    if scheme.eq_ignore_ascii_case("bearer") && !credential.trim().is_empty() =>
                {
                    Ok(credential.trim().to_owned())
                }
                _ => Err("Authorization header is not a bearer credential"),
            },
        },
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let bearer = bearer(&parts.headers);
        Ok(Caller(state.authenticate(bearer).await?))
    }
}

// ---- probes ----------------------------------------------------------------------------

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
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "the server is shutting down",
        ));
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
    let text = state.metrics.render(state.jobs.running());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::document(),
    )
        .into_response()
}

// ---- knowledge bases -------------------------------------------------------------------

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

// ---- retrieval -------------------------------------------------------------------------

#[utoipa::path(post, path = "/v1/knowledge-bases/{name}/retrieve", tag = "retrieval", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = RetrieveRequest,
    responses((status = 200, body = RetrieveResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn retrieve(
    State(state): Shared,
    Caller(caller): Caller,
    Path(name): Path<String>,
    Body(body): Body<RetrieveRequest>,
) -> ApiResult<RetrieveResponse> {
    let options = body.retrieval_configuration.unwrap_or_default().options()?;
    let request = SearchRequest {
        query: body.retrieval_query.text,
        k: options.k,
        search_type: options.search_type,
        filter: options.filter,
    };
    let response = state
        .run(move || caller.searcher(&name)?.search(&request))
        .await?;
    Ok(axum::Json(RetrieveResponse {
        search_type: response.search_type.into(),
        retrieval_results: response.hits.into_iter().map(RetrievalResult::from).collect(),
    }))
}

#[utoipa::path(post, path = "/v1/knowledge-bases/{name}/retrieve-and-generate", tag = "retrieval", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = RetrieveAndGenerateRequest,
    responses((status = 200, body = RetrieveAndGenerateResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn retrieve_and_generate(
    State(state): Shared,
    Caller(caller): Caller,
    Path(name): Path<String>,
    Body(body): Body<RetrieveAndGenerateRequest>,
) -> ApiResult<RetrieveAndGenerateResponse> {
    let options = body.retrieval_configuration.unwrap_or_default().options()?;
    let question = body.input.text;
    let model = body.model;
    let answer = state
        .run(move || {
            let searcher = caller.searcher(&name)?;
            groundwork_service::ask_with_model(
                &searcher,
                &question,
                options.k,
                options.filter,
                model.as_deref(),
                None,
            )
        })
        .await?;
    state.metrics.generated(answer.usage);
    Ok(axum::Json(answer.into()))
}

/// Server-sent events: `delta` events carry the text as the model writes it (raw, with its
/// `[n]` markers); one `done` event carries the final response (clean text and citations, as
/// `retrieve-and-generate` returns it), or one `error` event `{code, message}`.
#[utoipa::path(post, path = "/v1/knowledge-bases/{name}/retrieve-and-generate-stream", tag = "retrieval", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = RetrieveAndGenerateRequest,
    responses((status = 200, description = "text/event-stream of `delta`, then `done` or `error`", content_type = "text/event-stream"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn retrieve_and_generate_stream(
    State(state): Shared,
    Caller(caller): Caller,
    Path(name): Path<String>,
    Body(body): Body<RetrieveAndGenerateRequest>,
) -> Result<Response, ApiError> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let options = body.retrieval_configuration.unwrap_or_default().options()?;
    let question = body.input.text;
    let model = body.model;
    let (sender, receiver) = tokio::sync::mpsc::channel::<Event>(64);
    let worker_state = state.clone();
    let deadline = std::time::Duration::from_secs(state.config().request_timeout_secs.max(1));
    let worker = tokio::task::spawn_blocking(move || {
        let deltas = sender.clone();
        let mut deliver = |piece: &str| {
            // A client that went away stops receiving; the generation itself runs to its end.
            let _ = deltas.blocking_send(Event::default().event("delta").data(piece));
        };
        let result = caller.searcher(&name).and_then(|searcher| {
            groundwork_service::ask_with_model(
                &searcher,
                &question,
                options.k,
                options.filter,
                model.as_deref(),
                Some(&mut deliver),
            )
        });
        let last = match result {
            Ok(answer) => {
                worker_state.metrics.generated(answer.usage);
                let response = RetrieveAndGenerateResponse::from(answer);
                Event::default()
                    .event("done")
                    .json_data(&response)
                    .unwrap_or_default()
            }
            Err(error) => error_event(ApiError::from(error)),
        };
        let _ = sender.blocking_send(last);
    });
    // The stream ends when the worker drops its sender. Past the request timeout the client
    // gets an error event and the stream ends; the worker is left to finish on its own.
    let deadline = tokio::time::Instant::now() + deadline;
    let seconds = state.config().request_timeout_secs.max(1);
    drop(worker);
    let stream = futures::stream::unfold(Some(receiver), move |receiver| async move {
        let mut receiver = receiver?;
        match tokio::time::timeout_at(deadline, receiver.recv()).await {
            Ok(Some(event)) => Some((Ok::<_, std::convert::Infallible>(event), Some(receiver))),
            Ok(None) => None,
            Err(_) => Some((Ok(error_event(ApiError::timeout(seconds))), None)),
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

fn error_event(error: ApiError) -> axum::response::sse::Event {
    let body = ErrorBody {
        code: error.code.to_owned(),
        message: error.message,
    };
    axum::response::sse::Event::default()
        .event("error")
        .json_data(&body)
        .unwrap_or_default()
}

// ---- guardrails ------------------------------------------------------------------------

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

// ---- audit -----------------------------------------------------------------------------

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

// ---- principals, tokens, grants ---------------------------------------------------------

#[utoipa::path(get, path = "/v1/users", tag = "admin", security(("bearer" = [])), responses((status = 200, body = Object), (status = 403, body = ErrorBody)))]
pub async fn list_users(State(state): Shared, Caller(caller): Caller) -> ApiResult<Vec<Principal>> {
    Ok(axum::Json(
        state
            .run(move || caller.list_principals(PrincipalKind::User))
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/groups", tag = "admin", security(("bearer" = [])), responses((status = 200, body = Object), (status = 403, body = ErrorBody)))]
pub async fn list_groups(State(state): Shared, Caller(caller): Caller) -> ApiResult<Vec<Principal>> {
    Ok(axum::Json(
        state
            .run(move || caller.list_principals(PrincipalKind::Group))
            .await?,
    ))
}

async fn add_principal(
    state: Arc<AppState>,
    caller: Groundwork,
    kind: PrincipalKind,
    name: String,
) -> Result<Response, ApiError> {
    let principal = state.run(move || caller.add_principal(kind, &name)).await?;
    Ok((StatusCode::CREATED, axum::Json(principal)).into_response())
}

#[utoipa::path(post, path = "/v1/users", tag = "admin", security(("bearer" = [])), request_body = CreatePrincipal,
    responses((status = 201, body = Object), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn add_user(
    State(state): Shared,
    Caller(caller): Caller,
    Body(body): Body<CreatePrincipal>,
) -> Result<Response, ApiError> {
    add_principal(state, caller, PrincipalKind::User, body.name).await
}

#[utoipa::path(post, path = "/v1/groups", tag = "admin", security(("bearer" = [])), request_body = CreatePrincipal,
    responses((status = 201, body = Object), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn add_group(
    State(state): Shared,
    Caller(caller): Caller,
    Body(body): Body<CreatePrincipal>,
) -> Result<Response, ApiError> {
    add_principal(state, caller, PrincipalKind::Group, body.name).await
}

#[utoipa::path(delete, path = "/v1/users/{name}", tag = "admin", security(("bearer" = [])), params(("name" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 404, body = ErrorBody)))]
pub async fn remove_user(
    State(state): Shared,
    Caller(caller): Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .run(move || caller.remove_principal(PrincipalKind::User, &name))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/v1/groups/{name}", tag = "admin", security(("bearer" = [])), params(("name" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 404, body = ErrorBody)))]
pub async fn remove_group(
    State(state): Shared,
    Caller(caller): Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .run(move || caller.remove_principal(PrincipalKind::Group, &name))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/groups/{name}/members", tag = "admin", security(("bearer" = [])), params(("name" = String, Path)),
    request_body = AddMember, responses((status = 204, description = "Added"), (status = 404, body = ErrorBody)))]
pub async fn add_member(
    State(state): Shared,
    Caller(caller): Caller,
    Path(group): Path<String>,
    Body(body): Body<AddMember>,
) -> Result<StatusCode, ApiError> {
    state.run(move || caller.add_member(&group, &body.user)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/v1/groups/{name}/members/{user}", tag = "admin", security(("bearer" = [])),
    params(("name" = String, Path), ("user" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 404, body = ErrorBody)))]
pub async fn remove_member(
    State(state): Shared,
    Caller(caller): Caller,
    Path((group, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.run(move || caller.remove_member(&group, &user)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/tokens", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "Token records (never secrets)", body = Object), (status = 403, body = ErrorBody)))]
pub async fn list_tokens(State(state): Shared, Caller(caller): Caller) -> ApiResult<Vec<TokenRecord>> {
    Ok(axum::Json(state.run(move || caller.list_tokens(None)).await?))
}

#[utoipa::path(post, path = "/v1/tokens", tag = "admin", security(("bearer" = [])), request_body = CreateToken,
    responses((status = 201, description = "The token; its secret is shown this once", body = Object), (status = 403, body = ErrorBody)))]
pub async fn create_token(
    State(state): Shared,
    Caller(caller): Caller,
    Body(body): Body<CreateToken>,
) -> Result<Response, ApiError> {
    let expires = body
        .expires
        .as_deref()
        .map(|t| parse_time_or_duration(t, now_millis()))
        .transpose()?;
    let created: CreatedToken = state
        .run(move || caller.create_token(&body.user, None, expires))
        .await?;
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204, description = "Revoked"), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    State(state): Shared,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.run(move || caller.revoke_token(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/grants", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody)))]
pub async fn list_grants(State(state): Shared, Caller(caller): Caller) -> ApiResult<Vec<Grant>> {
    Ok(axum::Json(state.run(move || caller.list_grants()).await?))
}

#[utoipa::path(post, path = "/v1/grants", tag = "admin", security(("bearer" = [])), request_body = CreateGrant,
    responses((status = 201, body = Object), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn add_grant(
    State(state): Shared,
    Caller(caller): Caller,
    Body(body): Body<CreateGrant>,
) -> Result<Response, ApiError> {
    let grantee = match body.grantee.split_once(':') {
        Some(("user", name)) => Grantee::User(name.to_owned()),
        Some(("group", name)) => Grantee::Group(name.to_owned()),
        _ => return Err(ApiError::invalid("grantee is `user:NAME` or `group:NAME`")),
    };
    let level = match body.level.as_deref().unwrap_or("read") {
        "read" => Level::Read,
        "readwrite" => Level::ReadWrite,
        other => {
            return Err(ApiError::invalid(format!(
                "level is `read` or `readwrite`, not `{other}`"
            )));
        }
    };
    let until = body
        .until
        .as_deref()
        .map(|t| parse_time_or_duration(t, now_millis()))
        .transpose()?;
    let grant = state
        .run(move || caller.add_grant(grantee, &body.location, level, until))
        .await?;
    Ok((StatusCode::CREATED, axum::Json(grant)).into_response())
}

#[utoipa::path(delete, path = "/v1/grants/{id}", tag = "admin", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 204, description = "Revoked"), (status = 404, body = ErrorBody)))]
pub async fn revoke_grant(
    State(state): Shared,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::invalid("a grant id is a number"))?;
    state.run(move || caller.revoke_grant(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
