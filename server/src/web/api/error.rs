//! The API's errors: each becomes an HTTP status and a JSON body with a stable code, and the
//! extractors' own rejections (a bad query string, JSON or path) are turned into the same shape.
//! Internal failures are logged here and answered without their details.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token, or one that is unknown or revoked, or whose admin was disabled.
    #[error("a valid API token is required: Authorization: Bearer <token>")]
    Unauthorized,
    /// The token's owner is no longer an administrator.
    #[error("this token's owner is not an administrator")]
    Forbidden,
    /// The thing named does not exist.
    #[error("not found")]
    NotFound,
    /// The request is malformed; the text says what to change (it names only the caller's input).
    #[error("{0}")]
    Invalid(String),
    /// The request is well formed but the data it names is not in a state that allows it
    /// (an assignee who is not, or no longer, an agent of the site); the text says which.
    #[error("{0}")]
    Conflict(String),
    /// Too many messages: wait this many milliseconds.
    #[error("too many requests; retry after {0} ms")]
    RateLimited(u32),
    /// The message could not be stored now (the database unreachable or its disk full, or too
    /// many messages waiting to be stored): nothing was stored; retry after this many ms.
    #[error("the server cannot store messages right now; retry after {0} ms")]
    Unavailable(u32),
    /// Something failed on our side (already logged).
    #[error("internal error")]
    Internal,
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable code: `unauthorized`, `forbidden`, `not_found`, `invalid`, `conflict`,
    /// `rate_limited`, `unavailable` or `internal`.
    #[schema(example = "not_found")]
    pub error: &'static str,
    /// What went wrong, for people.
    pub message: String,
}

impl ApiError {
    /// Logs `error` and answers without its details.
    pub fn internal(error: impl std::fmt::Display) -> ApiError {
        tracing::error!(%error, "API call failed");
        ApiError::Internal
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<store::Error> for ApiError {
    fn from(error: store::Error) -> Self {
        match error {
            store::Error::NotFound => ApiError::NotFound,
            other => ApiError::internal(other),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::Invalid(rejection.body_text())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError::Invalid(rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::Invalid(rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error) = self.status_and_code();
        let mut response = (
            status,
            Json(ErrorBody {
                error,
                message: self.to_string(),
            }),
        )
            .into_response();
        let headers = response.headers_mut();
        match self {
            ApiError::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::RateLimited(wait_ms) | ApiError::Unavailable(wait_ms) => {
                let seconds = wait_ms.div_ceil(1000).max(1);
                if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                    headers.insert(header::RETRY_AFTER, value);
                }
            }
            _ => {}
        }
        response
    }
}

/// `Query<T>` whose rejection is an [`ApiError`].
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `Path<T>` whose rejection is an [`ApiError`].
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `Json<T>` whose rejection is an [`ApiError`].
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);
