//! Extractors: JSON bodies and query strings whose rejections speak the API's error shape,
//! and the bearer credential authenticated into the request's own handle.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use groundwork_core::ErrorCode;
use groundwork_service::Groundwork;
use serde::de::DeserializeOwned;
use std::sync::Arc;

pub(crate) type Shared = State<Arc<AppState>>;
pub(crate) type ApiResult<T> = Result<axum::Json<T>, ApiError>;

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
            ErrorCode::PayloadTooLarge,
            "the request body is over the server's limit",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            ErrorCode::UnsupportedMediaType,
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
