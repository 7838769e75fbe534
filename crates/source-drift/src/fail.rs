//! How a Drift error ends a stream or the run.

use sync_core::{Emitter, EmitterClosed, ErrorKind, RunError, StreamStatus};

/// Why a stream reader stopped early.
#[derive(Debug)]
pub(crate) enum Fail {
    /// A Drift request failed (after the client's retries).
    Drift(drift_client::Error),
    /// The engine stopped listening (cancelled or failed).
    Closed,
    /// Something else, e.g. a record that is not a JSON object.
    Other(String),
}

impl From<drift_client::Error> for Fail {
    fn from(e: drift_client::Error) -> Self {
        Fail::Drift(e)
    }
}

impl From<EmitterClosed> for Fail {
    fn from(_: EmitterClosed) -> Self {
        Fail::Closed
    }
}

/// Report the end of `streams` after `result`: success, unavailable (403), failed, or a
/// fatal error returned to the engine (401, rate limited beyond the wait cap, cancelled).
pub(crate) async fn conclude(
    out: &Emitter,
    streams: &[&str],
    result: Result<(), Fail>,
) -> Result<(), RunError> {
    let first = streams.first().copied();
    let status = match result {
        Ok(()) => StreamStatus::Succeeded,
        Err(Fail::Closed) => {
            return Err(RunError::new(
                ErrorKind::Cancelled,
                first,
                "the run stopped",
            ))
        }
        Err(Fail::Other(message)) => StreamStatus::Failed { error: message },
        Err(Fail::Drift(e)) => match &e {
            drift_client::Error::Unauthorized { .. } => {
                return Err(RunError::new(ErrorKind::Unauthorized, first, e.to_string()))
            }
            drift_client::Error::RateLimited { .. } => {
                return Err(RunError::new(ErrorKind::RateLimited, first, e.to_string()))
            }
            drift_client::Error::Forbidden { missing_scope, .. } => StreamStatus::Unavailable {
                reason: match missing_scope {
                    Some(scope) => format!("missing scope {scope} (or not in this Drift plan)"),
                    None => format!("forbidden by Drift (scope or plan): {e}"),
                },
            },
            _ => StreamStatus::Failed {
                error: e.to_string(),
            },
        },
    };
    for s in streams {
        out.status(s, status.clone()).await?;
    }
    Ok(())
}

/// Serialize a Drift model to the record's JSON object (unknown fields kept).
pub(crate) fn to_record<T: serde::Serialize>(
    model: &T,
) -> Result<serde_json::Map<String, serde_json::Value>, Fail> {
    match serde_json::to_value(model) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(other) => Err(Fail::Other(format!(
            "a Drift record is not a JSON object: {}",
            other
        ))),
        Err(e) => Err(Fail::Other(format!("cannot serialize a Drift record: {e}"))),
    }
}
