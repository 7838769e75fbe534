//! Running a data source in the background: Drift streams into a sink through the sync-core
//! engine, with live figures per stream while it runs and a run record at its end.
//!
//! The run record's summary has the same JSON shape as `driftbridge sync` writes (run id,
//! status, credential, destination, mode, streams, totals, error, duration_ms), so
//! `driftbridge runs show` reads runs started here too.

use crate::addresses::AddressPolicy;
use destinations::DestinationSpec;
use serde::{Deserialize, Serialize};
use source_drift::{DriftSource, DriftSourceConfig};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use store::{NewRun, Store, StoreError};
use sync_core::{
    run_sync, Cancel, ErrorKind, ProgressEvent, RunError, RunOptions, RunStatus, StreamSummary,
    SyncMode,
};
use utoipa::ToSchema;

/// What to run.
#[derive(Debug, Clone)]
pub struct SyncJob {
    /// Credential name.
    pub credential: String,
    /// Stream names (or `all`).
    pub streams: Vec<String>,
    /// Where records go.
    pub destination: DestinationSpec,
    /// Full refresh or incremental.
    pub mode: SyncMode,
    /// Data source (flow) name recorded on the run.
    pub flow: Option<String>,
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
    fn of(client: &drift_client::Client) -> Self {
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

/// Figures of a run in progress.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LiveFigures {
    /// Per stream, in the order they were selected.
    #[schema(value_type = Vec<Object>)]
    pub streams: Vec<StreamSummary>,
    /// Whole-run request counters so far.
    pub totals: Totals,
    /// The credential's budget, requests per minute.
    pub rate_limit_per_min: u32,
    /// Requests per minute used so far (average since the start).
    pub rate_used_per_min: f64,
    /// Milliseconds since the start.
    pub elapsed_ms: u64,
}

/// A run in progress.
pub struct LiveRun {
    order: Vec<String>,
    streams: Mutex<HashMap<String, StreamSummary>>,
    client: drift_client::Client,
    rate_limit_per_min: u32,
    started: std::time::Instant,
    cancel: Cancel,
}

impl LiveRun {
    /// The figures now.
    pub fn figures(&self) -> LiveFigures {
        let map = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let streams = self
            .order
            .iter()
            .map(|s| map.get(s).cloned().unwrap_or_else(|| StreamSummary::new(s)))
            .collect();
        let totals = Totals::of(&self.client);
        let elapsed = self.started.elapsed();
        let minutes = elapsed.as_secs_f64().max(1.0) / 60.0;
        LiveFigures {
            streams,
            rate_used_per_min: (totals.requests as f64 / minutes * 10.0).round() / 10.0,
            totals,
            rate_limit_per_min: self.rate_limit_per_min,
            elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Ask the run to stop after the commit in progress.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
}

/// The summary stored on the run record (same shape as `driftbridge sync --json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// Run id.
    pub run_id: String,
    /// `succeeded`, `partial`, `failed` or `cancelled`.
    pub status: RunStatus,
    /// Credential name.
    pub credential: String,
    /// Destination (no secrets).
    pub destination: String,
    /// `full` or `incremental`.
    pub mode: String,
    /// Per stream: records read/written, requests, duration.
    pub streams: Vec<StreamSummary>,
    /// Requests, 429s, retries and waits of the whole run.
    pub totals: Totals,
    /// Why the run failed.
    pub error: Option<RunError>,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Unknown credential, store failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A field of the job is invalid (`streams`, `credential`).
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The destination cannot be opened.
    #[error("the destination cannot be opened: {0}")]
    Destination(String),
}

/// Runs in progress, by run id.
#[derive(Default)]
pub struct Runner {
    live: Mutex<HashMap<String, Arc<LiveRun>>>,
}

fn mode_name(mode: SyncMode) -> &'static str {
    match mode {
        SyncMode::FullRefresh => "full",
        SyncMode::Incremental => "incremental",
    }
}

impl Runner {
    /// The live run `id`, if it is still running.
    pub fn live(&self, id: &str) -> Option<Arc<LiveRun>> {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Start `job` in the background; returns the run id at once. The run record is written
    /// now (status `running`) and finished when the run ends. A credential whose base URL
    /// `addresses` refuses fails here (field `credential`) and nothing is sent.
    pub fn start(
        self: &Arc<Self>,
        store: Arc<Store>,
        job: SyncJob,
        addresses: AddressPolicy,
    ) -> Result<String, StartError> {
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
        let key = store.credential_api_key(&credential.name)?;
        let client = addresses
            .client(&credential.base_url, key)
            .rate_limit_per_min(credential.rate_limit_per_min)
            .build()
            .map_err(|e| StartError::Invalid {
                field: "credential",
                message: AddressPolicy::explain(&e),
            })?;
        let mut destination = destinations::open(&job.destination)
            .map_err(|e| StartError::Destination(e.to_string()))?;
        let order: Vec<String> = streams.iter().map(|s| s.stream.name.clone()).collect();
        let run_id = store.insert_run(&NewRun {
            credential: credential.name.clone(),
            destination: job.destination.describe(),
            mode: mode_name(job.mode).into(),
            streams: order.clone(),
            flow: job.flow.clone(),
        })?;
        let live = Arc::new(LiveRun {
            order,
            streams: Mutex::new(HashMap::new()),
            client: client.clone(),
            rate_limit_per_min: credential.rate_limit_per_min,
            started: std::time::Instant::now(),
            cancel: Cancel::new(),
        });
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(run_id.clone(), live.clone());
        let progress_target = live.clone();
        let progress: sync_core::ProgressFn = Arc::new(move |event: &ProgressEvent| {
            let mut map = progress_target
                .streams
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            map.insert(event.summary.stream.clone(), event.summary.clone());
        });
        let source = Arc::new(DriftSource::new(
            client.clone(),
            DriftSourceConfig::default(),
        ));
        let options = RunOptions::new(run_id.clone(), format!("drift:{}", credential.id));
        let runner = self.clone();
        let id = run_id.clone();
        let (credential_name, destination_name, mode) = (
            credential.name.clone(),
            job.destination.describe(),
            mode_name(job.mode),
        );
        tokio::spawn(async move {
            let cancel = live.cancel.clone();
            let report = run_sync(
                source,
                destination.as_mut(),
                streams,
                options,
                cancel,
                Some(progress),
            )
            .await;
            let summary = Summary {
                run_id: id.clone(),
                status: report.status,
                credential: credential_name,
                destination: destination_name,
                mode: mode.into(),
                streams: report.streams,
                totals: Totals::of(&client),
                error: report.error,
                duration_ms: report.duration_ms,
            };
            record_outcome(&store, &summary, &client);
            runner
                .live
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        });
        Ok(run_id)
    }
}

/// Store the summary, count metrics, and mark the credential failed on a 401.
fn record_outcome(store: &Store, summary: &Summary, client: &drift_client::Client) {
    let error = summary.error.as_ref().map(|e| e.to_string());
    let value = serde_json::to_value(summary).unwrap_or_default();
    if let Err(e) = store.finish_run(
        &summary.run_id,
        summary.status.as_str(),
        &value,
        error.as_deref(),
    ) {
        tracing::error!(run = %summary.run_id, error = %e, "cannot record the end of the run");
    }
    if let Some(e) = &summary.error {
        if e.kind == ErrorKind::Unauthorized {
            if let Err(err) = store.mark_credential_failed(&summary.credential, &e.message) {
                tracing::error!(credential = %summary.credential, error = %err, "cannot mark the credential failed");
            }
        }
    }
    crate::metrics::drift_usage(&summary.credential, &client.metrics());
    for stream in &summary.streams {
        crate::metrics::records_written(&stream.stream, stream.records_written);
    }
    crate::metrics::run_finished(
        summary.status.as_str(),
        std::time::Duration::from_millis(summary.duration_ms),
    );
    tracing::info!(run = %summary.run_id, status = summary.status.as_str(), "run finished");
}
