//! Running a data source in the background: the run itself is [`crate::job`] (the same as
//! `driftbridge sync`); this module keeps live figures per stream while it runs, lets it be
//! cancelled, and counts its metrics at the end.

use crate::addresses::AddressPolicy;
use crate::job::SyncRun;
pub use crate::job::{StartError, Summary, SyncJob, Totals};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use store::Store;
use sync_core::{Cancel, ProgressEvent, StreamSummary};
use utoipa::ToSchema;

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

/// Runs in progress, by run id.
#[derive(Default)]
pub struct Runner {
    live: Mutex<HashMap<String, Arc<LiveRun>>>,
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
    ///
    /// Errors: see [`SyncRun::prepare`].
    pub fn start(
        self: &Arc<Self>,
        store: Arc<Store>,
        job: SyncJob,
        addresses: AddressPolicy,
    ) -> Result<String, StartError> {
        let run = SyncRun::prepare(&store, &job, addresses)?;
        let run_id = run.run_id().to_owned();
        let live = Arc::new(LiveRun {
            order: run.stream_names(),
            streams: Mutex::new(HashMap::new()),
            client: run.client().clone(),
            rate_limit_per_min: run.rate_limit_per_min(),
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
        let runner = self.clone();
        let id = run_id.clone();
        tokio::spawn(async move {
            let (summary, recorded) = run.run(&store, live.cancel.clone(), Some(progress)).await;
            if let Err(e) = recorded {
                tracing::error!(run = %summary.run_id, error = %e, "cannot record the end of the run");
            }
            count_outcome(&summary, &live.client);
            runner
                .live
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        });
        Ok(run_id)
    }
}

/// Count the run's metrics (Drift usage, records per stream, outcome and duration).
fn count_outcome(summary: &Summary, client: &drift_client::Client) {
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
