//! One sync run, the same for `driftbridge sync` and for `serve`'s background runs:
//! credential -> Drift client -> streams -> destination -> run record -> engine -> summary ->
//! run record finished (a 401 marks the credential failed).
//!
//! Two steps so each caller can keep its own surroundings: [`SyncRun::prepare`] checks the
//! job and records the run (status `running`; errors name the field at fault), then
//! [`SyncRun::run`] syncs with the caller's [`Cancel`] and progress callback (the CLI draws
//! its bars and cancels on Ctrl-C; the server keeps live figures and cancels on request)
//! and stores the [`Summary`]. The summary is the JSON that `driftbridge sync --json` prints
//! and that `driftbridge runs show` reads back, whichever of the two started the run.

use crate::addresses::AddressPolicy;
use crate::drift_auth::DriftAuth;
use destinations::DestinationSpec;
use serde::{Deserialize, Serialize};
use source_drift::{DriftSource, DriftSourceConfig};
use std::sync::Arc;
use store::{Credential, NewRun, Store, StoreError};
use sync_core::{
    run_sync, Cancel, ConfiguredStream, Destination, ErrorKind, ProgressFn, RunError, RunOptions,
    RunStatus, StreamSummary, SyncMode,
};
use utoipa::ToSchema;

/// What to run.
#[derive(Debug, Clone)]
pub struct SyncJob {
    /// Credential name.
    pub credential: String,
    /// Stream names, or `all`.
    pub streams: Vec<String>,
    /// Where records go.
    pub destination: DestinationSpec,
    /// Full refresh or incremental.
    pub mode: SyncMode,
    /// Data source (flow) name recorded on the run, if any.
    pub flow: Option<String>,
    /// Override of the credential's request budget (requests per minute) for this run.
    pub rate_limit_per_min: Option<u32>,
    /// Options of the Drift source (overlap, concurrency, extra contacts).
    pub source: DriftSourceConfig,
    /// Delete the rows of records deleted in Drift instead of marking them `_deleted`
    /// (databases; file sinks always write a tombstone record).
    pub hard_deletes: bool,
}

/// Requests, 429s, retries and waits of a whole run (the credential's client counters).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Totals {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// Responses with status 429.
    pub rate_limited: u64,
    /// Retried attempts.
    pub retries: u64,
    /// Times a request waited for the budget, a `Retry-After` or a backoff.
    pub waits: u64,
    /// Total waiting time, milliseconds.
    pub wait_ms: u64,
}

impl Totals {
    /// The counters of `client` now.
    pub fn of(client: &drift_client::Client) -> Self {
        let m = client.metrics();
        Totals {
            requests: m.requests,
            rate_limited: m.rate_limited,
            retries: m.retries,
            waits: m.waits,
            wait_ms: u64::try_from(m.wait_time.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// The summary of a finished run, stored on its run record (`driftbridge sync --json`
/// prints the same).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// Run id.
    pub run_id: String,
    /// `succeeded`, `succeeded_with_rejections`, `failed`, `rate_limited` or `cancelled`.
    pub status: RunStatus,
    /// Credential name.
    pub credential: String,
    /// Destination (no secrets).
    pub destination: String,
    /// `full` or `incremental`.
    pub mode: String,
    /// Per stream: records read/written, requests attributed to it, duration.
    pub streams: Vec<StreamSummary>,
    /// Requests, 429s, retries and waits of the whole run.
    pub totals: Totals,
    /// Why the run failed.
    pub error: Option<RunError>,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
}

/// Why a run could not start. Nothing is recorded in the run history for these.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Unknown credential, locked vault, store failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A field of the job is invalid: `streams` (unknown or none selected), `credential`
    /// (its base URL cannot make a client) or `destination` (inside the data directory, see
    /// [`crate::sink_paths`]).
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The field `destination` cannot be opened (the message says why).
    #[error("the destination cannot be opened: {0}")]
    Destination(String),
}

/// `full` or `incremental`, as recorded on runs.
pub fn mode_name(mode: SyncMode) -> &'static str {
    match mode {
        SyncMode::FullRefresh => "full",
        SyncMode::Incremental => "incremental",
    }
}

/// A checked job with its run recorded, ready to run.
pub struct SyncRun {
    run_id: String,
    credential: Credential,
    rate_limit_per_min: u32,
    client: drift_client::Client,
    streams: Vec<ConfiguredStream>,
    destination: Box<dyn Destination>,
    destination_name: String,
    mode: SyncMode,
    source: DriftSourceConfig,
}

impl SyncRun {
    /// Check `job` (credential, streams, client, destination, in that order) and record
    /// the run with status `running`. `addresses`: which hosts the client may contact (the
    /// CLI allows all; `serve` by `--allow-private-base-urls`).
    ///
    /// Errors: [`StartError::Store`] for an unknown credential or a store failure,
    /// [`StartError::Invalid`] naming `streams` or `credential` (also a base URL that
    /// `addresses` refuses: nothing is sent) or `destination` (a path inside the data
    /// directory: nothing is opened), [`StartError::Destination`] when the destination
    /// cannot be opened.
    pub fn prepare(
        store: &Store,
        job: &SyncJob,
        addresses: AddressPolicy,
    ) -> Result<SyncRun, StartError> {
        let credential = store.credential(&job.credential)?;
        if let Some(refused) = addresses.check_base_url(&credential.base_url) {
            return Err(StartError::Invalid {
                field: "credential",
                message: format!(
                    "credential \"{}\" cannot be used: {}",
                    credential.name, refused.message
                ),
            });
        }
        let streams = source_drift::catalog()
            .select(&job.streams, job.mode)
            .map_err(|e| StartError::Invalid {
                field: "streams",
                message: e.to_string(),
            })?;
        if streams.is_empty() {
            return Err(StartError::Invalid {
                field: "streams",
                message: "no stream selected; choose at least one".into(),
            });
        }
        let auth = DriftAuth::of(store, &credential)?;
        let rate = job
            .rate_limit_per_min
            .unwrap_or(credential.rate_limit_per_min);
        let client = auth
            .client(&credential.base_url, addresses)
            .rate_limit_per_min(rate)
            .build()
            .map_err(|e| StartError::Invalid {
                field: "credential",
                message: format!(
                    "credential {}: {}",
                    credential.name,
                    AddressPolicy::explain(&e)
                ),
            })?;
        if let Some(message) = crate::sink_paths::refusal(&job.destination, store.data_dir()) {
            return Err(StartError::Invalid {
                field: "destination",
                message,
            });
        }
        let options = destinations::OpenOptions {
            hard_deletes: job.hard_deletes,
        };
        let destination = destinations::open_with(&job.destination, options)
            .map_err(|e| StartError::Destination(e.to_string()))?;
        let destination_name = match &job.destination {
            DestinationSpec::Postgres(url) => crate::sink_secret::split(url).shown,
            other => other.describe(),
        };
        let run_id = store.insert_run(&NewRun {
            credential: credential.name.clone(),
            destination: destination_name.clone(),
            mode: mode_name(job.mode).into(),
            streams: streams.iter().map(|s| s.stream.name.clone()).collect(),
            flow: job.flow.clone(),
        })?;
        Ok(SyncRun {
            run_id,
            credential,
            rate_limit_per_min: rate,
            client,
            streams,
            destination,
            destination_name,
            mode: job.mode,
            source: job.source.clone(),
        })
    }

    /// The run id (already in the run history).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The credential's name.
    pub fn credential(&self) -> &str {
        &self.credential.name
    }

    /// The request budget of this run, requests per minute.
    pub fn rate_limit_per_min(&self) -> u32 {
        self.rate_limit_per_min
    }

    /// The Drift client of this run (its counters are the run's [`Totals`]).
    pub fn client(&self) -> &drift_client::Client {
        &self.client
    }

    /// The selected stream names, in run order.
    pub fn stream_names(&self) -> Vec<String> {
        self.streams.iter().map(|s| s.stream.name.clone()).collect()
    }

    /// Sync until done or `cancel`led, calling `progress` on every change of a stream's
    /// figures; then store the summary on the run record and, when Drift answered 401,
    /// mark the credential failed.
    ///
    /// Returns the summary and whether storing the outcome worked (a run that fails is
    /// still a summary; only the store can fail here).
    pub async fn run(
        mut self,
        store: &Store,
        cancel: Cancel,
        progress: Option<ProgressFn>,
    ) -> (Summary, Result<(), StoreError>) {
        let source = Arc::new(DriftSource::new(self.client.clone(), self.source.clone()));
        let options = RunOptions::new(self.run_id.clone(), format!("drift:{}", self.credential.id));
        let report = run_sync(
            source,
            self.destination.as_mut(),
            self.streams,
            options,
            cancel,
            progress,
        )
        .await;
        let rejected: Vec<store::RejectedRecord> = report
            .quarantined
            .iter()
            .map(|q| store::RejectedRecord {
                stream: q.stream.clone(),
                primary_key: q.key.clone(),
                reason: q.reason.clone(),
                raw: q.raw.clone(),
                rejected_at: q.extracted_at,
            })
            .collect();
        let summary = Summary {
            run_id: self.run_id,
            status: report.status,
            credential: self.credential.name,
            destination: self.destination_name,
            mode: mode_name(self.mode).into(),
            streams: report.streams,
            totals: Totals::of(&self.client),
            error: report.error,
            duration_ms: report.duration_ms,
        };
        let recorded = store
            .add_rejected(&summary.run_id, &rejected)
            .and_then(|()| record_outcome(store, &summary));
        (summary, recorded)
    }
}

/// Store the summary on the run record; mark the credential failed on a 401.
fn record_outcome(store: &Store, summary: &Summary) -> Result<(), StoreError> {
    let error = summary.error.as_ref().map(|e| e.to_string());
    let value = serde_json::to_value(summary).unwrap_or_default();
    store.finish_run(
        &summary.run_id,
        summary.status.as_str(),
        &value,
        error.as_deref(),
    )?;
    if let Some(e) = &summary.error {
        if e.kind == ErrorKind::Unauthorized {
            store.mark_credential_failed(&summary.credential, &e.message)?;
        }
    }
    Ok(())
}
