//! The scheduler of `serve`: starts data sources whose schedule is due.
//!
//! A source with `schedule.every_minutes = N` runs when its last run started at least N
//! minutes ago (or it never ran), unless a run of it is still going. Checked every
//! [`TICK`]; a missed tick (server stopped) runs once when the server is back, not once per
//! missed interval.

use crate::api::sources::SourceView;
use crate::AppState;
use std::time::Duration;

/// How often schedules are checked.
pub const TICK: Duration = Duration::from_secs(15);

/// Start the sources that are due now; returns the run ids started.
pub fn run_due(state: &AppState, now_ms: i64) -> Vec<String> {
    let Ok(sources) = state.store.list_sources() else {
        return Vec::new();
    };
    let mut started = Vec::new();
    for source in sources.into_iter().map(SourceView::new) {
        let Some(schedule) = &source.schedule else {
            continue;
        };
        let last = crate::api::runs::list_views(state, Some(&source.name), 1).unwrap_or_default();
        let due = match last.first() {
            Some(run) if run.status == "running" => false,
            Some(run) => run.started_at + i64::from(schedule.every_minutes) * 60_000 <= now_ms,
            None => true,
        };
        if !due {
            continue;
        }
        match crate::api::sources::start_source(state, &source) {
            Ok(id) => {
                tracing::info!(source = %source.name, run = %id, "scheduled run started");
                started.push(id);
            }
            Err(e) => {
                tracing::warn!(source = %source.name, error = %e, "scheduled run could not start")
            }
        }
    }
    started
}

/// Check schedules every [`TICK`] until the task is aborted.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        loop {
            tick.tick().await;
            run_due(&state, chrono::Utc::now().timestamp_millis());
        }
    })
}
