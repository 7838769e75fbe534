//! [`Observer`]: what a client tells its owner as it goes, beside the counters of
//! [`crate::MetricsSnapshot`] and [`crate::Meter`]: a request retried, a 429 answered. The
//! application layer turns these into run events (a line in the run's log, a metric);
//! the client itself logs them only at debug and info level.

use std::time::Duration;

/// Receives what a client does that its owner may want to report. Called on the task that
/// sent the request, so keep it cheap. Every method has a default that does nothing.
pub trait Observer: Send + Sync {
    /// An attempt of a request to `route` failed with `error` (its message has every secret
    /// scrubbed) and the request is repeated after `wait`.
    fn retrying(&self, route: &str, error: &crate::Error, wait: Duration) {
        let _ = (route, error, wait);
    }

    /// Drift answered 429 to a request to `route`, asking to wait `retry_after` when it said.
    fn rate_limited(&self, route: &str, retry_after: Option<Duration>) {
        let _ = (route, retry_after);
    }
}
