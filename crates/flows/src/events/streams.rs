//! A sync's streams: one finished, a record quarantined.

use super::{RunEvent, RunScope, TARGET};
use sync_core::{StreamState, StreamSummary};

/// A stream of a sync ended (succeeded, unavailable, failed or cancelled), with its figures.
#[derive(Debug)]
pub struct StreamFinished<'a> {
    /// The stream's figures at its end.
    pub summary: &'a StreamSummary,
}

/// `ok`, `unavailable`, `failed`, ... of a stream state.
fn state_name(state: StreamState) -> &'static str {
    match state {
        StreamState::Pending => "pending",
        StreamState::Running => "running",
        StreamState::Succeeded => "succeeded",
        StreamState::Unavailable => "unavailable",
        StreamState::Failed => "failed",
        StreamState::Cancelled => "cancelled",
    }
}

impl RunEvent for StreamFinished<'_> {
    fn emit(self, run: &RunScope) {
        let s = self.summary;
        let state = state_name(s.state);
        let reason = s.reason.as_deref().unwrap_or("");
        let message = format!(
            "stream {} {state}: {} read, {} written, {} deleted, {} rejected, {} requests",
            s.stream,
            s.records_read,
            s.records_written,
            s.records_deleted,
            s.records_rejected,
            s.requests.requests
        );
        if s.state == StreamState::Succeeded {
            tracing::info!(target: TARGET, parent: run.span(), stream = %s.stream, state,
                records_read = s.records_read, records_written = s.records_written,
                records_deleted = s.records_deleted, records_rejected = s.records_rejected,
                requests = s.requests.requests, duration_ms = s.duration_ms, "{message}");
        } else {
            tracing::warn!(target: TARGET, parent: run.span(), stream = %s.stream, state,
                reason, records_read = s.records_read, records_written = s.records_written,
                records_rejected = s.records_rejected, requests = s.requests.requests,
                duration_ms = s.duration_ms, "{message}");
        }
        ::metrics::counter!(crate::metrics::RECORDS, "stream" => s.stream.clone())
            .increment(s.records_written);
        ::metrics::counter!(crate::metrics::RECORDS_QUARANTINED, "stream" => s.stream.clone())
            .increment(s.records_rejected);
    }
}

/// A record of a sync did not fit its stream and was quarantined (kept in the sink's
/// `_driftbridge_rejected` / `_rejected/` and listed by `runs rejected`). Counted with the
/// stream's figures ([`StreamFinished`]), so this only logs.
#[derive(Debug)]
pub struct RecordQuarantined<'a> {
    /// Stream name.
    pub stream: &'a str,
    /// The record's primary key, when one could be read.
    pub key: Option<&'a str>,
    /// Why it does not fit, naming the field.
    pub reason: &'a str,
}

impl RunEvent for RecordQuarantined<'_> {
    fn emit(self, run: &RunScope) {
        let key = self.key.unwrap_or("(no key)");
        tracing::warn!(target: TARGET, parent: run.span(), stream = %self.stream, key,
            reason = %self.reason, "record of {} quarantined: {}", self.stream, self.reason);
    }
}
