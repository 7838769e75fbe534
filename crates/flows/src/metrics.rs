//! The metrics a run counts, through the `metrics` facade: the process that wants them
//! installs a recorder (`serve` renders them at `/metrics` in the Prometheus text format);
//! without one (the CLI) counting costs nothing. Every run counts under the same names,
//! whichever edge started it, because only the run events ([`crate::events`]) count them.
//!
//! Names (labels in braces; every label has a bounded set of values: stream and object
//! names, run statuses, outcome names, or a credential name):
//!
//! - [`RUNS_STARTED`]`{kind}`: runs started, `kind` `sync` or `push`.
//! - [`RUNS`]`{status}`, [`RUN_DURATION`]`{status}`: runs finished, by status.
//! - [`RECORDS`]`{stream}`: records written per stream by syncs.
//! - [`RECORDS_QUARANTINED`]`{stream}`: records a sync quarantined (did not fit).
//! - [`PUSH_ROWS`]`{object, outcome}`: push rows per outcome (`created`, `updated`,
//!   `unchanged`, `skipped`, `rejected`).
//! - [`DRIFT_REQUESTS`]`{credential}`, [`DRIFT_RATE_LIMITED`], [`DRIFT_RETRIES`],
//!   [`DRIFT_WAITS`], [`DRIFT_WAIT_SECONDS`]: Drift API use per credential, by runs.
//! - [`CREDENTIAL_TESTS`]`{credential, status}`: credential tests.
//! - [`crate::realtime::WEBHOOK_EVENTS`]`{outcome}` and [`crate::realtime::WEBHOOK_LAG`]:
//!   webhook events of real-time data sources (issue 22).

/// Runs started, by `kind`.
pub const RUNS_STARTED: &str = "driftbridge_runs_started_total";
/// Runs finished, by `status`.
pub const RUNS: &str = "driftbridge_runs_total";
/// Wall time of finished runs, seconds, by `status` (a histogram).
pub const RUN_DURATION: &str = "driftbridge_run_duration_seconds";
/// Records written by syncs, by `stream`.
pub const RECORDS: &str = "driftbridge_records_total";
/// Records quarantined by syncs, by `stream`.
pub const RECORDS_QUARANTINED: &str = "driftbridge_records_quarantined_total";
/// Push rows, by `object` and `outcome`.
pub const PUSH_ROWS: &str = "driftbridge_push_rows_total";
/// Requests sent to Drift by runs, by `credential`.
pub const DRIFT_REQUESTS: &str = "driftbridge_drift_requests_total";
/// Requests Drift answered 429, by `credential`.
pub const DRIFT_RATE_LIMITED: &str = "driftbridge_drift_rate_limited_total";
/// Requests repeated after a retryable failure, by `credential`.
pub const DRIFT_RETRIES: &str = "driftbridge_drift_retries_total";
/// Times a request waited (budget, `Retry-After`, backoff), by `credential`.
pub const DRIFT_WAITS: &str = "driftbridge_drift_waits_total";
/// Seconds spent waiting, by `credential`.
pub const DRIFT_WAIT_SECONDS: &str = "driftbridge_drift_wait_seconds_total";
/// Credential tests, by `credential` and `status`.
pub const CREDENTIAL_TESTS: &str = "driftbridge_credential_tests_total";

/// The names a push run counts (a push from the CLI and one from the API count the same).
pub const PUSH_RUN_METRICS: [&str; 6] = [
    RUNS_STARTED,
    RUNS,
    RUN_DURATION,
    PUSH_ROWS,
    DRIFT_REQUESTS,
    DRIFT_WAITS,
];

/// Count a credential test (the REST API and the web UI test credentials; so may a worker).
pub fn credential_tested(credential: &str, status: &str) {
    metrics::counter!(CREDENTIAL_TESTS, "credential" => credential.to_string(), "status" => status.to_string())
        .increment(1);
}
