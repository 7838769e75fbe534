//! driftbridge's application layer: what a user's *flow* does, whichever edge started it.
//! A flow is a run of a data source (Drift streams into a sink, [`SyncRun`]) or of a data
//! destination (records into Drift, [`PushRun`]). The CLI (`driftbridge sync`, `push`,
//! `credentials test`), the server (REST API, web UI, schedules) and a future worker process
//! start them through the same functions here, so they behave the same everywhere: one
//! credential check, one Drift authentication (with OAuth refresh persistence), one address
//! policy, one push ledger, one scope check, one way to cancel, one set of metrics.
//!
//! Design decisions:
//! - **No HTTP here**: no axum, askama or utoipa in this crate's dependency tree (the
//!   optional `openapi` feature, turned on by the server only, derives `ToSchema` on the
//!   types the REST API answers with).
//! - **One error type**, [`FlowError`], whose [`ErrorKind`] the server maps to an HTTP
//!   status ([`FlowError::http_status`]) and the CLI to an exit code
//!   ([`FlowError::exit_code`]).
//! - **Two steps per run**: `prepare` checks the job and records the run (errors name the
//!   field at fault; nothing is recorded when it fails), then `run` runs it with the caller's
//!   cancel handle and callback (the CLI draws progress bars and cancels on Ctrl-C; the
//!   server keeps live figures and cancels on request).
//! - **Run events are types** ([`events`]): each run runs inside a `tracing` span carrying
//!   its run id, and what it reports (started, a stream finished, Drift rate limited or a
//!   request retried, a record quarantined, a push row rejected, finished) is one struct with
//!   an `emit()` that writes the tracing event and counts the metric under one fixed name.
//! - **Per-run logs** ([`logs`]): a tracing layer writes every event of a run's span (info
//!   and above, secrets redacted) to `runs/<run id>.log` in the data directory, as JSON
//!   lines that `driftbridge runs logs` and `GET /api/v1/runs/{id}/logs` read back.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod addresses;
pub mod alerts;
pub mod attributes;
pub mod check;
pub mod credential_add;
pub mod drift_auth;
pub mod error;
pub mod events;
pub mod job;
pub mod ledger;
pub mod logs;
pub mod metrics;
pub mod push_job;
pub mod pusher;
pub mod realtime;
pub mod run_filter;
pub mod runner;
pub mod schedule;
pub mod single;
pub mod sink_paths;
pub mod sink_secret;
pub mod sink_test;
pub mod sources;
pub mod uploads;

pub use addresses::AddressPolicy;
pub use error::{ErrorKind, FieldError, FlowError, StartError};
pub use job::{Summary, SyncJob, SyncRun, Totals};
pub use pusher::{PushInput, PushJob, PushOutcome, PushRun, PushSettings};
pub use runner::Runner;

use std::sync::Arc;
use store::Store;

/// The application over one metadata store, as a long-running process holds it (`serve`, a
/// worker): the store, the runs in progress and the address policy its Drift clients obey.
/// Cheap to clone.
#[derive(Clone)]
pub struct Flows {
    /// The metadata store (credentials, sources, destinations, runs).
    pub store: Arc<Store>,
    /// Runs in progress (live figures, cancel).
    pub runner: Arc<Runner>,
    /// Which hosts Drift clients may contact.
    pub addresses: AddressPolicy,
    /// Real-time data sources: webhook ids and the workers writing their events.
    pub realtime: Arc<realtime::Hub>,
}

impl Flows {
    /// The application over `store`, no run in progress, clients limited by `addresses`.
    pub fn new(store: Arc<Store>, addresses: AddressPolicy) -> Flows {
        Flows {
            store,
            runner: Arc::new(Runner::default()),
            addresses,
            realtime: Arc::new(realtime::Hub::default()),
        }
    }
}
