//! The API's errors: one stable table of codes, each with its HTTP status, and a JSON body
//! `{"code": …, "message": …}`.
//!
//! Messages of internal failures never leave the process: the client gets a fixed text and
//! the detail goes to the server's log, so no path, SQL or secret can leak through an error.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use groundwork_core::ErrorCode;
use groundwork_service::ServiceError;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A code from the table in ARCHITECTURE.md (`invalid_request`, `not_found`, …).
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
}

/// An error on its way to becoming a response.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn timeout(seconds: u64) -> ApiError {
        ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            format!("the request did not finish within {seconds} s"),
        )
    }

    pub fn overloaded() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the server is at its concurrency limit; retry shortly",
        )
    }

    /// A failure whose detail stays in the log. `context` says where it happened.
    pub fn internal(context: &str, detail: impl std::fmt::Display) -> ApiError {
        eprintln!("groundwork serve: internal error in {context}: {detail}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the details",
        )
    }
}

/// The HTTP status of each service error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::AlreadyExists => StatusCode::CONFLICT,
        ErrorCode::Busy => StatusCode::CONFLICT,
        ErrorCode::ModelUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::SourceUnavailable => StatusCode::BAD_GATEWAY,
        ErrorCode::NotInitialised => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Corrupt => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::GenerationFailed => StatusCode::BAD_GATEWAY,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> ApiError {
        let code = error.code();
        match code {
            // These carry engine detail (paths, SQLite messages); log it, answer generically.
            ErrorCode::Internal | ErrorCode::Corrupt | ErrorCode::NotInitialised => {
                let mut api = ApiError::internal(code.as_str(), &error);
                api.status = status_of(code);
                api.code = code.as_str();
                api
            }
            _ => ApiError::new(status_of(code), code.as_str(), error.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code.to_owned(),
            message: self.message,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_detail_never_reaches_the_body() {
        let error = ServiceError::new(ErrorCode::Internal, "store database error: /secret/path");
        let api = ApiError::from(error);
        assert_eq!(api.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!api.message.contains("/secret/path"));
        let refused = ApiError::from(ServiceError::new(ErrorCode::Forbidden, "admins only"));
        assert_eq!(
            (refused.status, refused.code),
            (StatusCode::FORBIDDEN, "forbidden")
        );
    }
}
