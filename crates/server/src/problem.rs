//! Errors returned to clients as `application/problem+json` (RFC 9457).
//!
//! Every error has a stable `type` (a `urn:driftbridge:problem:*` URN that clients may match
//! on), a short `title`, the HTTP `status`, a human `detail` naming the fix, and for input
//! errors (422) a list of field errors. Internal errors are logged and answered with a generic
//! detail; no problem ever contains a secret.

use axum::extract::rejection::{FormRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use store::StoreError;
use utoipa::ToSchema;

/// Media type of problem bodies.
pub const PROBLEM_JSON: &str = "application/problem+json";

pub use flows::FieldError;

/// A problem details body (RFC 9457).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// Stable problem type, e.g. `urn:driftbridge:problem:validation`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What happened and what to do.
    pub detail: String,
    /// Field errors (422 only); empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Objects blocking the request (409 `in-use` only): e.g. `data source "crm"`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub used_by: Vec<String>,
    /// The run in progress (409 `already-running` only): what was asked to run is running
    /// already, in this or another process; one run at a time each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 422: one or more fields are invalid.
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    /// 400: the body or query could not be read at all.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no or wrong admin token / session.
    #[error("authentication required")]
    Unauthorized,
    /// 403: a state-changing request from another origin.
    #[error("{0}")]
    ForeignOrigin(String),
    /// 404: the named object does not exist.
    #[error("{0}")]
    NotFound(String),
    /// 409: the name is already taken.
    #[error("{0}")]
    Duplicate(String),
    /// 409: the credential is still used.
    #[error("{detail}")]
    InUse {
        /// Message naming the users.
        detail: String,
        /// The users (`data source "crm"`, ...).
        users: Vec<String>,
    },
    /// 409: the run is not running (cancel).
    #[error("{0}")]
    NotRunning(String),
    /// 409: the data source or saved destination is running already (one run at a time).
    #[error("{detail}")]
    AlreadyRunning {
        /// Message naming the run in progress.
        detail: String,
        /// The run in progress.
        run_id: String,
    },
    /// 405: the route exists but not with this method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 421: the request's `Host` is not one this server answers (DNS rebinding, see
    /// [`crate::hardening`]).
    #[error("{0}")]
    MisdirectedHost(String),
    /// 408: the request body stopped arriving (see [`crate::limits::Limits::body_timeout`]).
    #[error("{0}")]
    RequestTimeout(String),
    /// 413: body over the size limit.
    #[error("{0}")]
    TooLarge(String),
    /// 415: wrong content type.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 501: the feature is not available in this build yet.
    #[error("{0}")]
    NotImplemented(String),
    /// 503: the vault cannot be opened (wrong or missing master key).
    #[error("{0}")]
    VaultLocked(String),
    /// 429: Drift kept rate limiting the run's requests beyond the wait cap.
    #[error("{0}")]
    RateLimited(String),
    /// 503: something a run needs does not answer (Drift, the sink).
    #[error("{0}")]
    Unavailable(String),
    /// 500: anything else; the detail is logged, not returned.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 422 for a single field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    /// `(status, type suffix, title)` of this error.
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use ApiError as E;
        match self {
            E::Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Invalid input",
            ),
            E::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Malformed request"),
            E::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Authentication required",
            ),
            E::ForeignOrigin(_) => (
                StatusCode::FORBIDDEN,
                "foreign-origin",
                "Request from another origin",
            ),
            E::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            E::Duplicate(_) => (StatusCode::CONFLICT, "duplicate-name", "Name already taken"),
            E::InUse { .. } => (StatusCode::CONFLICT, "in-use", "Still in use"),
            E::NotRunning(_) => (StatusCode::CONFLICT, "not-running", "Run not running"),
            E::AlreadyRunning { .. } => {
                (StatusCode::CONFLICT, "already-running", "Already running")
            }
            E::MethodNotAllowed(_) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            E::MisdirectedHost(_) => (
                StatusCode::MISDIRECTED_REQUEST,
                "misdirected-host",
                "Host not served",
            ),
            E::RequestTimeout(_) => (
                StatusCode::REQUEST_TIMEOUT,
                "request-timeout",
                "Request body too slow",
            ),
            E::TooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Request body too large",
            ),
            E::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            E::NotImplemented(_) => (
                StatusCode::NOT_IMPLEMENTED,
                "not-implemented",
                "Not implemented",
            ),
            E::VaultLocked(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "vault-locked",
                "Vault cannot be opened",
            ),
            E::RateLimited(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Rate limited by Drift",
            ),
            E::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Unavailable",
            ),
            E::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }

    /// The problem body of this error.
    pub fn problem(&self) -> Problem {
        let (status, kind, title) = self.parts();
        let detail = match self {
            ApiError::Validation(errors) => errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; "),
            ApiError::Unauthorized => "send the admin token as `Authorization: Bearer <token>` or log in at /login; `driftbridge serve --print-token` makes a new token".to_string(),
            ApiError::Internal(_) => "the server failed; see its log for details".to_string(),
            other => other.to_string(),
        };
        Problem {
            kind: format!("urn:driftbridge:problem:{kind}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail,
            errors: match self {
                ApiError::Validation(errors) => errors.clone(),
                _ => Vec::new(),
            },
            used_by: match self {
                ApiError::InUse { users, .. } => users.clone(),
                _ => Vec::new(),
            },
            run_id: match self {
                ApiError::AlreadyRunning { run_id, .. } => Some(run_id.clone()),
                _ => None,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(error = %detail, "request failed");
        }
        let problem = self.problem();
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, [(header::CONTENT_TYPE, PROBLEM_JSON)], body).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"driftbridge\""),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid { field, message } => ApiError::field(field, message),
            StoreError::NotFound { kind, name, .. } => {
                ApiError::NotFound(format!("{kind} \"{name}\" not found"))
            }
            e @ StoreError::Duplicate { .. } => ApiError::Duplicate(e.to_string()),
            StoreError::InUse { name, users } => ApiError::InUse {
                detail: format!(
                    "credential \"{name}\" is used by {}; delete or re-point them first, or delete with ?force=true",
                    users.join(", ")
                ),
                users,
            },
            e @ StoreError::UsedBy { .. } => {
                let users = match &e {
                    StoreError::UsedBy { users, .. } => users.clone(),
                    _ => Vec::new(),
                };
                ApiError::InUse {
                    detail: e.to_string(),
                    users,
                }
            }
            ref e @ StoreError::AlreadyRunning { ref run_id, .. } => ApiError::AlreadyRunning {
                detail: e.to_string(),
                run_id: run_id.clone(),
            },
            e @ (StoreError::WrongMasterKey { .. } | StoreError::MasterKey(_)) => {
                ApiError::VaultLocked(e.to_string())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// An error of the application layer as the API answers it: by its kind
/// ([`flows::FlowError::http_status`]), a store error as the store's errors always are, and
/// a rejected credential as a 422 on field `credential` (the request named a credential
/// that cannot be used; a 401 would mean the admin token is wrong).
impl From<flows::FlowError> for ApiError {
    fn from(e: flows::FlowError) -> Self {
        use flows::ErrorKind as K;
        let e = match e.into_store_error() {
            Ok(store) => return store.into(),
            Err(e) => e,
        };
        match e.kind() {
            K::Invalid { .. } => ApiError::Validation(e.fields().to_vec()),
            K::Unauthorized => ApiError::field("credential", e.message()),
            K::NotFound => ApiError::NotFound(e.message().to_string()),
            K::Conflict => ApiError::Duplicate(e.message().to_string()),
            K::RateLimited => ApiError::RateLimited(e.message().to_string()),
            K::Unavailable => ApiError::Unavailable(e.message().to_string()),
            K::Internal => ApiError::Internal(e.message().to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            // The body's values are left out of the message (see `json_error`).
            JsonRejection::JsonDataError(e) => {
                ApiError::Validation(vec![crate::json_error::field_error(&e.body_text())])
            }
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType(
                "send the body as JSON with `Content-Type: application/json`".into(),
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::TooLarge(too_large_detail(crate::BODY_LIMIT_BYTES))
            }
            other => {
                ApiError::BadRequest(format!("the body is not valid JSON: {}", other.body_text()))
            }
        }
    }
}

impl From<FormRejection> for ApiError {
    fn from(r: FormRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::TooLarge(too_large_detail(crate::BODY_LIMIT_BYTES));
        }
        ApiError::BadRequest(format!("the form cannot be read: {}", r.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest(format!("bad query string: {}", r.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest(format!("bad path: {}", r.body_text()))
    }
}

/// Detail of a 413 for a body over `limit` bytes: the limit in MiB and bytes, and the fix
/// (CSV uploads, whose limit is [`crate::api::destinations::UPLOAD_LIMIT_BYTES`], are told to
/// split the file).
pub(crate) fn too_large_detail(limit: usize) -> String {
    let mib = limit as f64 / (1024.0 * 1024.0);
    let fix = if limit == crate::api::destinations::UPLOAD_LIMIT_BYTES {
        "split the CSV file into smaller files and push each"
    } else {
        "send less"
    };
    format!("the request body is larger than the limit of {mib} MiB ({limit} bytes); {fix}")
}

/// Result of an API handler.
pub type ApiResult<T> = Result<T, ApiError>;
