//! One error format for every failure: `{"error": {"code", "message"}}`
//! with the status code that fits.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crrt_platform::PlatformError;
use serde_json::json;

#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl AppError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        AppError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        AppError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        AppError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": {"code": self.code, "message": self.message}}));
        let mut response = (self.status, body).into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<PlatformError> for AppError {
    fn from(e: PlatformError) -> Self {
        let message = e.to_string();
        match e {
            PlatformError::Unauthenticated => {
                AppError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
            }
            PlatformError::Forbidden(_) => {
                AppError::new(StatusCode::FORBIDDEN, "forbidden", message)
            }
            PlatformError::NotFound(_) => AppError::not_found(message),
            PlatformError::Invalid(_) => {
                AppError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
            }
            PlatformError::Conflict(_) => AppError::new(StatusCode::CONFLICT, "conflict", message),
            PlatformError::RateLimited {
                retry_after_seconds,
            } => AppError {
                retry_after: Some(retry_after_seconds),
                ..AppError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
            },
            PlatformError::TooLarge(_) => {
                AppError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
            }
            PlatformError::Io(_) => {
                tracing::error!(error = %message, "evidence store failure");
                AppError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "storage",
                    "the evidence store could not keep the file; nothing was stored",
                )
            }
            PlatformError::Store(e) => {
                // Details go to the log, not to the client.
                tracing::error!(error = %e, "store failure");
                AppError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the server could not complete the request; see its log",
                )
            }
        }
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            _ => "bad_request",
        };
        // 422 from axum means well-formed JSON of the wrong shape: unknown
        // fields, wrong types, missing fields. Both are the client's to fix.
        let status = if status == StatusCode::UNPROCESSABLE_ENTITY {
            StatusCode::BAD_REQUEST
        } else {
            status
        };
        AppError::new(status, code, rejection.body_text())
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        AppError::bad_request(rejection.body_text())
    }
}
