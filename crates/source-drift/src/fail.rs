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

/// Send a record Drift returned that does not fit its model to quarantine under `stream`.
pub(crate) async fn quarantine(
    out: &Emitter,
    stream: &str,
    unfit: &drift_client::Unfit,
) -> Result<(), EmitterClosed> {
    out.quarantine(
        stream,
        unfit.key.clone(),
        unfit.reason.clone(),
        unfit.raw.clone(),
    )
    .await
}

/// Read an integer field of a raw record leniently (a number or a string of digits), for a
/// record that did not fit as a whole: its id and cursor may still be readable.
pub(crate) fn raw_i64(raw: &serde_json::Value, field: &str) -> Option<i64> {
    match raw.get(field)? {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Counts the requests of one stream ([`drift_client::Meter`]) and reports what it counted
/// since the last report as [`sync_core::RequestMetrics`].
pub(crate) struct StreamMeter {
    stream: &'static str,
    meter: drift_client::Meter,
    reported: drift_client::MeterSnapshot,
}

impl StreamMeter {
    /// A meter for `stream`, and a handle of `client` that counts into it.
    pub(crate) fn attach(
        stream: &'static str,
        client: &drift_client::Client,
    ) -> (StreamMeter, drift_client::Client) {
        let meter = drift_client::Meter::new();
        let metered = client.with_meter(meter.clone());
        let reported = drift_client::MeterSnapshot::default();
        (
            StreamMeter {
                stream,
                meter,
                reported,
            },
            metered,
        )
    }

    /// Send the counts since the last report (nothing when none).
    pub(crate) async fn report(&mut self, out: &Emitter) -> Result<(), EmitterClosed> {
        let now = self.meter.snapshot();
        let before = std::mem::replace(&mut self.reported, now);
        let delta = sync_core::RequestMetrics {
            requests: now.requests.saturating_sub(before.requests),
            rate_limited: now.rate_limited.saturating_sub(before.rate_limited),
            retries: now.retries.saturating_sub(before.retries),
            wait_ms: u64::try_from(now.wait_time.saturating_sub(before.wait_time).as_millis())
                .unwrap_or(u64::MAX),
        };
        out.metrics(self.stream, delta).await
    }
}
