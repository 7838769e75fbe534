//! Runs in the background of a long-running process (`serve`, a worker): the run itself is
//! [`crate::job::SyncRun`] or [`crate::pusher::PushRun`] (the same as the CLI's); this module
//! keeps live figures per stream while a run goes and lets it be cancelled by id.

use crate::addresses::AddressPolicy;
use crate::error::FlowError;
use crate::job::{SyncJob, SyncRun, Totals};
use crate::pusher::{PushOutcome, PushRun};
use drift_writer::Outcome;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use store::Store;
use sync_core::{Cancel, ProgressEvent, StreamSummary};

/// Figures of a run in progress.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LiveFigures {
    /// Per stream, in the order they were selected (empty for a push).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
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
    fn new(order: Vec<String>, client: drift_client::Client, rate_limit_per_min: u32) -> Self {
        LiveRun {
            order,
            streams: Mutex::new(HashMap::new()),
            client,
            rate_limit_per_min,
            started: std::time::Instant::now(),
            cancel: Cancel::new(),
        }
    }

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

    /// Ask the run to stop: a sync after the commit in progress, a push once the requests
    /// in flight finish (rows read but not sent are rejected as not sent).
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
}

/// Runs in progress, by run id.
#[derive(Default)]
pub struct Runner {
    live: Mutex<HashMap<String, Arc<LiveRun>>>,
}

/// Removes a run from [`Runner`]'s live runs when dropped (however its task ends).
struct Tracked {
    runner: Arc<Runner>,
    id: String,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.runner
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
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

    fn track(self: &Arc<Self>, id: &str, live: Arc<LiveRun>) -> Tracked {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), live);
        Tracked {
            runner: self.clone(),
            id: id.to_string(),
        }
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
    ) -> Result<String, FlowError> {
        let run = SyncRun::prepare(&store, &job, addresses)?;
        let run_id = run.run_id().to_owned();
        let live = Arc::new(LiveRun::new(
            run.stream_names(),
            run.client().clone(),
            run.rate_limit_per_min(),
        ));
        let tracked = self.track(&run_id, live.clone());
        let progress_target = live.clone();
        let progress: sync_core::ProgressFn = Arc::new(move |event: &ProgressEvent| {
            let mut map = progress_target
                .streams
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            map.insert(event.summary.stream.clone(), event.summary.clone());
        });
        tokio::spawn(async move {
            let _tracked = tracked;
            // The run logs and counts its own end; a failure to record it is logged there.
            let _ = run.run(&store, live.cancel.clone(), Some(progress)).await;
        });
        Ok(run_id)
    }

    /// Run prepared push `run` to its end on a task of its own, live (cancellable by id)
    /// while it runs, calling `on_outcome` for each row; returns its outcome. The task goes
    /// on if the caller stops waiting (e.g. an HTTP client that hangs up), so the run is
    /// always recorded.
    ///
    /// Errors: see [`PushRun::run`].
    pub async fn push<F>(
        self: &Arc<Self>,
        run: PushRun,
        on_outcome: F,
    ) -> Result<PushOutcome, FlowError>
    where
        F: FnMut(&Outcome) + Send + 'static,
    {
        let live = Arc::new(LiveRun::new(
            Vec::new(),
            run.client().clone(),
            run.rate_limit_per_min(),
        ));
        let tracked = self.track(run.run_id(), live.clone());
        let task = tokio::spawn(async move {
            let _tracked = tracked;
            run.run(live.cancel.clone(), on_outcome).await
        });
        task.await
            .map_err(|e| FlowError::internal(format!("the push ended abnormally: {e}")))?
    }
}
