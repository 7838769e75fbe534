//! Progress events while a run goes, and the report at its end.

use crate::error::RunError;
use crate::message::RequestMetrics;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Where a stream stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamState {
    /// Selected, not started yet.
    Pending,
    /// Being read.
    Running,
    /// Read and committed completely.
    Succeeded,
    /// Not readable with this credential or plan (403); not an error for the run.
    Unavailable,
    /// Failed; its state was not advanced past what was committed.
    Failed,
    /// Stopped by cancellation.
    Cancelled,
}

/// Figures of one stream in a run. Durations and waits in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamSummary {
    /// Stream name.
    pub stream: String,
    /// Where it stands.
    pub state: StreamState,
    /// Why it is unavailable or failed.
    pub reason: Option<String>,
    /// Records the source expects to deliver, when it knows (e.g. from `/conversations/stats`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<u64>,
    /// Records received from the source (quarantined ones and tombstones included).
    pub records_read: u64,
    /// Distinct rows written or updated in the sink (committed), each counted once
    /// per run however often it was read.
    pub records_written: u64,
    /// Records read again in this run after an earlier copy was written (pages that moved
    /// while being listed, overlap re-reads): written again, not counted in `records_written`.
    #[serde(default)]
    pub records_reread: u64,
    /// Rows marked deleted (or removed, with hard deletes) by tombstones.
    #[serde(default)]
    pub records_deleted: u64,
    /// Records quarantined: by the source (they do not fit the stream's types) or by the
    /// sink (no primary key). Kept in `_driftbridge_rejected` / `_rejected/`.
    pub records_rejected: u64,
    /// Requests, 429s, retries and wait time the source attributed to the stream.
    #[serde(flatten)]
    pub requests: RequestMetrics,
    /// Time from the stream's start to its end (or to now while running), ms.
    pub duration_ms: u64,
}

impl StreamSummary {
    /// A pending stream with zero figures.
    pub fn new(stream: &str) -> Self {
        Self {
            stream: stream.to_owned(),
            state: StreamState::Pending,
            reason: None,
            expected: None,
            records_read: 0,
            records_written: 0,
            records_reread: 0,
            records_deleted: 0,
            records_rejected: 0,
            requests: RequestMetrics::default(),
            duration_ms: 0,
        }
    }
}

/// One progress event: the current figures of a stream after a change.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgressEvent {
    /// The stream's figures now.
    pub summary: StreamSummary,
}

/// Callback receiving progress events (keep it cheap: it runs on the engine's task).
pub type ProgressFn = Arc<dyn Fn(&ProgressEvent) + Send + Sync>;

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every selected stream succeeded or is unavailable; nothing rejected.
    Succeeded,
    /// Completed, but some records were quarantined (exit code 5). Stored as
    /// `succeeded_with_rejections`; run records of older versions say `partial`.
    #[serde(alias = "partial")]
    SucceededWithRejections,
    /// A stream or the run failed.
    Failed,
    /// Stopped because Drift kept rate limiting beyond the wait cap (exit code 4); the
    /// committed checkpoint is kept, a later run goes on from it.
    RateLimited,
    /// Stopped by the user.
    Cancelled,
}

impl RunStatus {
    /// Lower-case name as stored in run records (`succeeded`, `succeeded_with_rejections`,
    /// `failed`, `rate_limited`, `cancelled`).
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::SucceededWithRejections => "succeeded_with_rejections",
            RunStatus::Failed => "failed",
            RunStatus::RateLimited => "rate_limited",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

/// The outcome of [`crate::run_sync`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Run id.
    pub run_id: String,
    /// Overall status.
    pub status: RunStatus,
    /// Per stream, in catalog order.
    pub streams: Vec<StreamSummary>,
    /// The error that failed the run (first failed stream, or the fatal error).
    pub error: Option<RunError>,
    /// Wall time of the run, ms.
    pub duration_ms: u64,
    /// The records quarantined in this run (committed to the sink), the first
    /// [`crate::MAX_REPORTED_QUARANTINE`] of them; every one is in the sink's
    /// `_driftbridge_rejected` / `_rejected/`, and the streams' `records_rejected` count all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quarantined: Vec<crate::Quarantined>,
}

impl RunReport {
    /// Summary of `stream`, if it was selected.
    pub fn stream(&self, stream: &str) -> Option<&StreamSummary> {
        self.streams.iter().find(|s| s.stream == stream)
    }
}
