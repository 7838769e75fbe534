//! What the run's Drift client reports: 429s and retries, as they happen.

use super::{RunEvent, RunScope, TARGET};
use std::time::Duration;

/// Drift answered 429 to one of the run's requests.
#[derive(Debug)]
pub struct DriftRateLimited<'a> {
    /// The route (`conversations.list`, `contacts.create`, ...).
    pub route: &'a str,
    /// The wait Drift asked for, if it said.
    pub retry_after: Option<Duration>,
}

impl RunEvent for DriftRateLimited<'_> {
    fn emit(self, run: &RunScope) {
        let retry_after_ms = self
            .retry_after
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        tracing::warn!(target: TARGET, parent: run.span(), route = self.route, retry_after_ms,
            "Drift rate limited a request to {} (429)", self.route);
        ::metrics::counter!(crate::metrics::DRIFT_RATE_LIMITED, "credential" => run.credential().to_string())
            .increment(1);
    }
}

/// One of the run's requests failed in a way worth another attempt (5xx, 429, timeout,
/// dropped connection) and is sent again after a wait.
#[derive(Debug)]
pub struct RequestRetried<'a> {
    /// The route.
    pub route: &'a str,
    /// What failed (scrubbed of secrets by the client).
    pub error: &'a drift_client::Error,
    /// The wait before the next attempt.
    pub wait: Duration,
}

impl RunEvent for RequestRetried<'_> {
    fn emit(self, run: &RunScope) {
        let wait_ms = u64::try_from(self.wait.as_millis()).unwrap_or(u64::MAX);
        tracing::warn!(target: TARGET, parent: run.span(), route = self.route, wait_ms,
            error = %self.error, "retrying a request to {} in {wait_ms} ms", self.route);
        ::metrics::counter!(crate::metrics::DRIFT_RETRIES, "credential" => run.credential().to_string())
            .increment(1);
    }
}

/// Turns a Drift client's [`drift_client::Observer`] calls into the run's events (attach it
/// with `ClientBuilder::observer`). The events name the run's span, also when the request
/// runs on another task. The client is built before the run is recorded (its settings are
/// checked first), so the run is bound later ([`RunObserver::bind`]); calls before that are
/// not reported.
#[derive(Debug, Default)]
pub struct RunObserver {
    scope: std::sync::OnceLock<RunScope>,
}

impl RunObserver {
    /// An observer not bound to a run yet.
    pub fn new() -> RunObserver {
        RunObserver::default()
    }

    /// Report into `scope` from now on (the first binding holds).
    pub fn bind(&self, scope: RunScope) {
        let _ = self.scope.set(scope);
    }
}

impl drift_client::Observer for RunObserver {
    fn retrying(&self, route: &str, error: &drift_client::Error, wait: Duration) {
        if let Some(scope) = self.scope.get() {
            scope.emit(RequestRetried { route, error, wait });
        }
    }

    fn rate_limited(&self, route: &str, retry_after: Option<Duration>) {
        if let Some(scope) = self.scope.get() {
            scope.emit(DriftRateLimited { route, retry_after });
        }
    }
}
