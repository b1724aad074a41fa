//! Retrieval and answers: Bedrock-shaped `retrieve`, `retrieve-and-generate` and its
//! server-sent-events stream, as the caller.

use crate::api::*;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiResult, Body, Caller, Shared};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use groundwork_service::SearchRequest;

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
            let request = groundwork_service::AskRequest {
                question,
                k: options.k,
                filter: options.filter,
                model,
            };
            groundwork_service::ask(&searcher, &request, None)
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
            let request = groundwork_service::AskRequest {
                question,
                k: options.k,
                filter: options.filter,
                model,
            };
            groundwork_service::ask(&searcher, &request, Some(&mut deliver))
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
    let body = error.body();
    axum::response::sse::Event::default()
        .event("error")
        .json_data(&body)
        .unwrap_or_default()
}
