//! A run starts and finishes.

use super::{RunEvent, RunKind, RunScope, TARGET};
use std::time::Duration;

/// A run was recorded and starts: what it reads or writes.
#[derive(Debug)]
pub struct RunStarted<'a> {
    /// Streams of a sync (in run order), or the object of a push.
    pub what: &'a [String],
    /// `full` or `incremental` for a sync; `push` or `push-dry-run`.
    pub mode: &'a str,
    /// What started it: `manual` or `schedule`.
    pub trigger: store::Trigger,
}

impl RunEvent for RunStarted<'_> {
    fn emit(self, run: &RunScope) {
        let what = self.what.join(",");
        match run.kind() {
            RunKind::Sync => tracing::info!(target: TARGET, parent: run.span(),
                streams = %what, mode = self.mode, trigger = self.trigger.as_str(),
                "sync started: streams {what}"),
            RunKind::Push => tracing::info!(target: TARGET, parent: run.span(),
                object = %what, mode = self.mode, trigger = self.trigger.as_str(),
                "push started: {what}"),
        }
        ::metrics::counter!(crate::metrics::RUNS_STARTED, "kind" => run.kind().as_str())
            .increment(1);
    }
}

/// A run ended and its outcome is recorded: its status, wall time and Drift use.
#[derive(Debug)]
pub struct RunFinished<'a> {
    /// `succeeded`, `succeeded_with_rejections`, `failed`, `rate_limited` or `cancelled`.
    pub status: &'a str,
    /// Wall time.
    pub duration: Duration,
    /// Requests, 429s, retries and waits of the run's Drift client.
    pub usage: drift_client::MetricsSnapshot,
    /// Why it failed or stopped, if it did (no secret: client errors are scrubbed).
    pub error: Option<&'a str>,
}

impl RunEvent for RunFinished<'_> {
    fn emit(self, run: &RunScope) {
        let duration_ms = u64::try_from(self.duration.as_millis()).unwrap_or(u64::MAX);
        let u = &self.usage;
        let wait_ms = u64::try_from(u.wait_time.as_millis()).unwrap_or(u64::MAX);
        let message = format!(
            "{} {}: {} Drift requests ({} rate limited, {} retries) in {:.1} s",
            run.kind().as_str(),
            self.status,
            u.requests,
            u.rate_limited,
            u.retries,
            self.duration.as_secs_f64()
        );
        match (self.status, self.error) {
            ("succeeded", _) | ("succeeded_with_rejections", _) | (_, None) => {
                tracing::info!(target: TARGET, parent: run.span(), status = self.status,
                    duration_ms, requests = u.requests, rate_limited = u.rate_limited,
                    retries = u.retries, waits = u.waits, wait_ms, "{message}")
            }
            (_, Some(error)) => {
                tracing::warn!(target: TARGET, parent: run.span(), status = self.status,
                    duration_ms, requests = u.requests, rate_limited = u.rate_limited,
                    retries = u.retries, waits = u.waits, wait_ms, error = %error, "{message}")
            }
        }
        ::metrics::counter!(crate::metrics::RUNS, "status" => self.status.to_string()).increment(1);
        ::metrics::histogram!(crate::metrics::RUN_DURATION, "status" => self.status.to_string())
            .record(self.duration.as_secs_f64());
        let label = ("credential", run.credential().to_string());
        ::metrics::counter!(crate::metrics::DRIFT_REQUESTS, std::slice::from_ref(&label))
            .increment(u.requests);
        ::metrics::counter!(crate::metrics::DRIFT_WAITS, std::slice::from_ref(&label))
            .increment(u.waits);
        ::metrics::counter!(crate::metrics::DRIFT_WAIT_SECONDS, &[label])
            .increment(u.wait_time.as_secs());
    }
}
