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

/// An error on its way to becoming a response. Its status is the code's row in the table.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status: status_of(code),
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidRequest, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Unauthenticated, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, message)
    }

    pub fn timeout(seconds: u64) -> ApiError {
        ApiError::new(
            ErrorCode::Timeout,
            format!("the request did not finish within {seconds} s"),
        )
    }

    pub fn overloaded() -> ApiError {
        ApiError::new(
            ErrorCode::Overloaded,
            "the server is at its concurrency limit; retry shortly",
        )
    }

    /// A failure whose detail stays in the log. `context` says where it happened.
    pub fn internal(context: &str, detail: impl std::fmt::Display) -> ApiError {
        eprintln!("groundwork serve: internal error in {context}: {detail}");
        ApiError::new(
            ErrorCode::Internal,
            "internal error; the server log has the details",
        )
    }

    /// The JSON body of this error.
    pub fn body(self) -> ErrorBody {
        ErrorBody {
            code: self.code.as_str().to_owned(),
            message: self.message,
        }
    }
}

/// The HTTP status of an error code, from its row in the table (a document-only code, which
/// no request should fail with, answers 500).
pub fn status_of(code: ErrorCode) -> StatusCode {
    code.http_status()
        .and_then(|status| StatusCode::from_u16(status).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> ApiError {
        let code = error.code();
        match code {
            // These carry engine detail (paths, SQLite messages); log it, answer generically.
            ErrorCode::Internal | ErrorCode::Corrupt | ErrorCode::NotInitialised => {
                let mut api = ApiError::internal(code.as_str(), &error);
                api.status = status_of(code);
                api.code = code;
                api
            }
            _ => ApiError::new(code, error.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let mut response = (status, axum::Json(self.body())).into_response();
        if status == StatusCode::UNAUTHORIZED {
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
            (StatusCode::FORBIDDEN, ErrorCode::Forbidden)
        );
    }
}
