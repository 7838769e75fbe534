//! Drift-shaped error responses (REFERENCE §5).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// The 401 message text Drift sends (REFERENCE §5.2, confirmed by a peer client's tests).
pub const UNAUTHORIZED_MESSAGE: &str = "The access token is invalid or has expired";

/// An error answer of a Drift route. Bodies follow REFERENCE §5.1 / the `[SIM]` choices of §5.2.
#[derive(Debug, Clone)]
pub enum ApiError {
    /// 401 `authentication_error`.
    Unauthorized,
    /// 403 `forbidden`, naming the missing scope.
    Forbidden {
        /// The scope the route needs.
        scope: &'static str,
    },
    /// 404 `not_found`.
    NotFound(String),
    /// 400 `validation_error` with the offending parameter.
    Invalid {
        /// Parameter or body field.
        param: String,
        /// What is wrong.
        message: String,
    },
    /// 400 in the legacy `errors` array form (older list page, REFERENCE §5.1).
    InvalidLegacy {
        /// Parameter.
        param: String,
        /// What is wrong.
        message: String,
    },
    /// 409 `conflict`.
    Conflict(String),
    /// 429 `rate_limit` with `Retry-After` seconds.
    RateLimited {
        /// Seconds until a request would be accepted.
        retry_after_s: u64,
    },
    /// Any status chosen by a fault plan (5xx: `server_error`).
    Status(StatusCode),
}

impl ApiError {
    /// Shorthand for a 400 on a field.
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            param: param.to_string(),
            message: message.into(),
        }
    }

    fn status_and_body(&self) -> (StatusCode, Value) {
        match self {
            // [SIM] error type names; the 401 text is Drift's.
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                err("authentication_error", UNAUTHORIZED_MESSAGE),
            ),
            ApiError::Forbidden { scope } => (
                StatusCode::FORBIDDEN,
                err(
                    "forbidden",
                    &format!("The access token is missing the required scope: {scope}"),
                ),
            ),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, err("not_found", m)),
            ApiError::Invalid { param, message } => (
                StatusCode::BAD_REQUEST,
                json!({"error": {"type": "validation_error", "message": message, "param": param}}),
            ),
            ApiError::InvalidLegacy { param, message } => (
                StatusCode::BAD_REQUEST,
                json!({"errors": [{"type": "validation_error", "message": message, "param": param}]}),
            ),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, err("conflict", m)),
            ApiError::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                err("rate_limit", "Too many requests"),
            ),
            ApiError::Status(s) => (*s, status_body(*s)),
        }
    }
}

fn status_body(s: StatusCode) -> Value {
    let kind = match s.as_u16() {
        429 => "rate_limit",
        401 => "authentication_error",
        403 => "forbidden",
        404 => "not_found",
        400..=499 => "invalid_request",
        _ => "server_error",
    };
    err(kind, s.canonical_reason().unwrap_or("error"))
}

fn err(kind: &str, message: &str) -> Value {
    json!({"error": {"type": kind, "message": message}})
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = self.status_and_body();
        let mut resp = (status, Json(body)).into_response();
        let retry = match &self {
            ApiError::RateLimited { retry_after_s } => Some(*retry_after_s),
            ApiError::Status(s) if s.as_u16() == 429 => Some(1),
            _ => None,
        };
        if let Some(secs) = retry {
            // [SIM] Retry-After in seconds (REFERENCE §4).
            resp.headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from(secs));
        }
        resp
    }
}

/// Result type of route handlers.
pub type ApiResult<T = Response> = Result<T, ApiError>;
