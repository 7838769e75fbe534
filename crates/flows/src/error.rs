//! The one error type of the application layer, [`FlowError`], and what each edge makes of
//! it: the server answers [`FlowError::http_status`] (as a problem body), the CLI exits with
//! [`FlowError::exit_code`] (README "Exit codes"). Each error has a [`ErrorKind`]; both
//! mappings follow from the kind alone, so a new error needs no change in either edge.
//!
//! Messages name the fix and never hold a secret (keys, OAuth secrets, sink passwords).

use serde::Serialize;
use store::StoreError;

/// One invalid field of a request: the API's 422 lists them, the CLI prints the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    /// The field as spelled in the request body (`name`, `api_key`, `base_url`, ...).
    pub field: String,
    /// What is wrong and how to fix it (the same text the CLI prints).
    pub message: String,
}

impl FieldError {
    /// The error of `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What kind of failure a [`FlowError`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// A field of the request is invalid (the first one, when several are).
    Invalid {
        /// The field (`credential`, `streams`, `destination`, `sink`, `file`, ...).
        field: String,
    },
    /// The named object does not exist.
    NotFound,
    /// The request conflicts with what is stored (a name taken, an object still in use, a run
    /// not running, a data source or saved destination already running).
    Conflict,
    /// Drift rejected the credential (401/403), or it lacks the scopes the run needs.
    Unauthorized,
    /// Drift kept rate limiting beyond the wait cap.
    RateLimited,
    /// Something the run needs does not answer: the vault cannot be opened, Drift or the
    /// sink cannot be reached.
    Unavailable,
    /// Anything else (a bug, a file-system failure).
    Internal,
}

/// An error of the application layer (boxed: one pointer wide, so results stay small).
#[derive(Debug)]
pub struct FlowError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    kind: ErrorKind,
    message: String,
    fields: Vec<FieldError>,
    store: Option<StoreError>,
}

impl std::fmt::Display for FlowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for FlowError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .store
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<StoreError> for FlowError {
    fn from(e: StoreError) -> Self {
        let kind = match &e {
            StoreError::Invalid { field, .. } => ErrorKind::Invalid {
                field: (*field).to_string(),
            },
            StoreError::NotFound { .. } => ErrorKind::NotFound,
            StoreError::Duplicate { .. }
            | StoreError::InUse { .. }
            | StoreError::UsedBy { .. }
            | StoreError::AlreadyRunning { .. } => ErrorKind::Conflict,
            StoreError::WrongMasterKey { .. } | StoreError::MasterKey(_) => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        };
        let fields = match &e {
            StoreError::Invalid { field, message } => vec![FieldError::new(*field, message)],
            _ => Vec::new(),
        };
        FlowError(Box::new(Inner {
            kind,
            message: e.to_string(),
            fields,
            store: Some(e),
        }))
    }
}

impl FlowError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> FlowError {
        let message = message.into();
        let fields = match &kind {
            ErrorKind::Invalid { field } => vec![FieldError::new(field.clone(), message.clone())],
            _ => Vec::new(),
        };
        FlowError(Box::new(Inner {
            kind,
            message,
            fields,
            store: None,
        }))
    }

    /// Field `field` is invalid.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> FlowError {
        FlowError::new(
            ErrorKind::Invalid {
                field: field.into(),
            },
            message,
        )
    }

    /// Several fields are invalid (every error, not only the first). `fields` must not be
    /// empty; an empty list reads as an internal error.
    pub fn invalid_fields(fields: Vec<FieldError>) -> FlowError {
        let Some(first) = fields.first() else {
            return FlowError::internal("validation failed without naming a field");
        };
        let message = fields
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        FlowError(Box::new(Inner {
            kind: ErrorKind::Invalid {
                field: first.field.clone(),
            },
            message,
            fields,
            store: None,
        }))
    }

    /// The credential was rejected or lacks scopes.
    pub fn unauthorized(message: impl Into<String>) -> FlowError {
        FlowError::new(ErrorKind::Unauthorized, message)
    }

    /// An internal failure.
    pub fn internal(message: impl Into<String>) -> FlowError {
        FlowError::new(ErrorKind::Internal, message)
    }

    /// The kind of failure.
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    /// The message for people (names the fix; no secret).
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The invalid fields (empty unless the kind is [`ErrorKind::Invalid`]).
    pub fn fields(&self) -> &[FieldError] {
        &self.0.fields
    }

    /// The store's error this one comes from, if any (its edges may say it their own way).
    pub fn store_error(&self) -> Option<&StoreError> {
        self.0.store.as_ref()
    }

    /// The run in progress that made this start fail, when it is one of a data source or
    /// saved destination already running (kind [`ErrorKind::Conflict`]; see
    /// [`crate::single`]).
    pub fn running_run(&self) -> Option<&str> {
        match &self.0.store {
            Some(StoreError::AlreadyRunning { run_id, .. }) => Some(run_id),
            _ => None,
        }
    }

    /// Takes the store's error this one comes from, if any.
    pub fn into_store_error(mut self) -> Result<StoreError, FlowError> {
        match self.0.store.take() {
            Some(e) => Ok(e),
            None => Err(self),
        }
    }

    /// This error with field `field` instead of the one it names (an edge that calls the
    /// field differently, e.g. the API's `sink` for a run's `destination`). Kinds other than
    /// [`ErrorKind::Invalid`] are returned as they are.
    pub fn renamed_field(mut self, from: &str, to: &str) -> FlowError {
        if let ErrorKind::Invalid { field } = &mut self.0.kind {
            if field == from {
                *field = to.to_string();
            }
        }
        for f in &mut self.0.fields {
            if f.field == from {
                f.field = to.to_string();
            }
        }
        self
    }

    /// The HTTP status the REST API answers this error with: 422 for an invalid field and
    /// for a credential Drift rejects (the request named an unusable credential: a 401 would
    /// say the admin token is wrong), 404, 409, 429 rate limited, 503 unavailable, 500.
    pub fn http_status(&self) -> u16 {
        match self.0.kind {
            ErrorKind::Invalid { .. } | ErrorKind::Unauthorized => 422,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::RateLimited => 429,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }

    /// The CLI's exit code (README "Exit codes"): 2 usage or validation (an invalid field,
    /// an unknown or clashing name), 3 credential rejected, 4 rate limited, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self.0.kind {
            ErrorKind::Invalid { .. } | ErrorKind::NotFound | ErrorKind::Conflict => 2,
            ErrorKind::Unauthorized => 3,
            ErrorKind::RateLimited => 4,
            ErrorKind::Unavailable | ErrorKind::Internal => 1,
        }
    }
}

/// Why a run could not start (nothing is recorded in the run history for these): the
/// [`FlowError`] of `prepare`.
pub type StartError = FlowError;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_one_status_and_one_exit_code() {
        let cases = [
            (FlowError::invalid("streams", "x"), 422, 2),
            (FlowError::unauthorized("x"), 422, 3),
            (FlowError::new(ErrorKind::RateLimited, "x"), 429, 4),
            (FlowError::new(ErrorKind::NotFound, "x"), 404, 2),
            (FlowError::new(ErrorKind::Conflict, "x"), 409, 2),
            (FlowError::new(ErrorKind::Unavailable, "x"), 503, 1),
            (FlowError::internal("x"), 500, 1),
        ];
        for (e, status, code) in cases {
            assert_eq!((e.http_status(), e.exit_code()), (status, code), "{e:?}");
        }
    }

    #[test]
    fn store_errors_keep_their_kind_and_field() {
        let e = FlowError::from(StoreError::Invalid {
            field: "name",
            message: "too long".into(),
        });
        assert_eq!(
            e.kind(),
            &ErrorKind::Invalid {
                field: "name".into()
            }
        );
        assert_eq!(e.fields()[0].field, "name");
        assert_eq!(e.exit_code(), 2);
        let renamed =
            FlowError::invalid("destination", "inside").renamed_field("destination", "sink");
        assert_eq!(renamed.fields()[0].field, "sink");
    }
}
