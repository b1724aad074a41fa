//! Retrieval and answers: Bedrock-shaped `retrieve`, `retrieve-and-generate` and its
//! server-sent-events stream, as the caller. On a tables knowledge base the same three answer
//! as Bedrock's structured knowledge bases do (see `text_sql`).

use crate::api::*;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Body, Caller, Shared};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use groundwork_core::KbKind;
use groundwork_service::{Groundwork, SearchRequest, ServiceError, Stage, TableQuestion};

/// The answer of a tables knowledge base to `question`, as the caller.
fn over_tables(
    caller: &Groundwork,
    name: &str,
    question: String,
    model: Option<String>,
    stage: Stage,
    on_delta: Option<&mut dyn FnMut(&str)>,
) -> Result<Option<groundwork_service::TableAnswer>, ServiceError> {
    if caller.kb_kind(name)? != KbKind::Tables {
        return Ok(None);
    }
    let question = TableQuestion {
        knowledge_base: name.to_owned(),
        question,
        model,
        stage,
    };
    caller.ask_tables(&question, on_delta).map(Some)
}

#[utoipa::path(post, path = "/v1/knowledge-bases/{name}/retrieve", tag = "retrieval", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = RetrieveRequest,
    responses((status = 200, description = "Passages; on a tables knowledge base, the rows of the generated query as `ROW` results", body = RetrieveResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn retrieve(
    State(state): Shared,
    Caller(caller): Caller,
    Path(name): Path<String>,
    Body(body): Body<RetrieveRequest>,
) -> Result<Response, ApiError> {
    let options = body.retrieval_configuration.unwrap_or_default().options()?;
    let request = SearchRequest {
        query: body.retrieval_query.text,
        k: options.k,
        search_type: options.search_type,
        filter: options.filter,
    };
    let response = state
        .run(move || {
            let question = request.query.clone();
            if let Some(answer) = over_tables(&caller, &name, question, None, Stage::Rows, None)? {
                return Ok(Err(super::text_sql::structured_results(&answer)));
            }
            caller.searcher(&name)?.search(&request).map(Ok)
        })
        .await?;
    Ok(match response {
        Ok(response) => axum::Json(RetrieveResponse {
            search_type: response.search_type.into(),
            retrieval_results: response.hits.into_iter().map(RetrievalResult::from).collect(),
        })
        .into_response(),
        Err(rows) => axum::Json(rows).into_response(),
    })
}

#[utoipa::path(post, path = "/v1/knowledge-bases/{name}/retrieve-and-generate", tag = "retrieval", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = RetrieveAndGenerateRequest,
    responses((status = 200, description = "The answer with citations; on a tables knowledge base cited to the generated query and its rows (`ROW` references, `SQL` location)", body = RetrieveAndGenerateResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn retrieve_and_generate(
    State(state): Shared,
    Caller(caller): Caller,
    Path(name): Path<String>,
    Body(body): Body<RetrieveAndGenerateRequest>,
) -> Result<Response, ApiError> {
    let options = body.retrieval_configuration.unwrap_or_default().options()?;
    let question = body.input.text;
    let model = body.model;
    let answer = state
        .run(move || {
            if let Some(answer) = over_tables(
                &caller,
                &name,
                question.clone(),
                model.clone(),
                Stage::Answer,
                None,
            )? {
                return Ok(Err(answer));
            }
            let searcher = caller.searcher(&name)?;
            let request = groundwork_service::AskRequest {
                question,
                k: options.k,
                filter: options.filter,
                model,
            };
            groundwork_service::ask(&searcher, &request, None).map(Ok)
        })
        .await?;
    Ok(match answer {
        Ok(answer) => {
            state.metrics.generated(answer.usage);
            axum::Json(RetrieveAndGenerateResponse::from(answer)).into_response()
        }
        Err(answer) => {
            state.metrics.generated(answer.usage);
            axum::Json(super::text_sql::structured_answer(&answer)).into_response()
        }
    })
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
        match over_tables(
            &caller,
            &name,
            question.clone(),
            model.clone(),
            Stage::Answer,
            Some(&mut deliver),
        ) {
            Ok(None) => {}
            Ok(Some(answer)) => {
                worker_state.metrics.generated(answer.usage);
                let done = Event::default()
                    .event("done")
                    .json_data(super::text_sql::structured_answer(&answer))
                    .unwrap_or_default();
                let _ = sender.blocking_send(done);
                return;
            }
            Err(error) => {
                let _ = sender.blocking_send(error_event(ApiError::from(error)));
                return;
            }
        }
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
