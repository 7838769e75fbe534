//! Error taxonomy of a run, shared by sources, sinks and the CLI's exit codes.

use serde::{Deserialize, Serialize};

/// What kind of failure ended a stream or a run. The CLI maps it to an exit code
/// (DESIGN.md §6: 2 invalid configuration, 3 credential rejected, 4 rate limited beyond the
/// wait cap, 1 otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The credential was rejected (HTTP 401): the run stops, the checkpoint is kept.
    Unauthorized,
    /// A scope or plan is missing (HTTP 403).
    Forbidden,
    /// Still rate limited after waiting as long as allowed.
    RateLimited,
    /// The sink could not write or commit. Serialized as `destination` (the name run
    /// records and the API have always used).
    #[serde(rename = "destination")]
    Sink,
    /// The run cannot go on as configured and nothing was changed: the user must change the
    /// configuration (e.g. a sink table that driftbridge did not create).
    Invalid,
    /// The run was cancelled (Ctrl-C).
    Cancelled,
    /// Anything else (transport, pagination, decode, server errors after retries).
    Failed,
}

/// Why a run (or one of its streams) failed. `message` never contains a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}{message}", stream.as_ref().map(|s| format!("stream {s}: ")).unwrap_or_default())]
pub struct RunError {
    /// The failure class.
    pub kind: ErrorKind,
    /// The stream it happened in, when known.
    pub stream: Option<String>,
    /// Human-readable reason.
    pub message: String,
}

impl RunError {
    /// Build an error.
    pub fn new(kind: ErrorKind, stream: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            kind,
            stream: stream.map(str::to_owned),
            message: message.into(),
        }
    }
}
