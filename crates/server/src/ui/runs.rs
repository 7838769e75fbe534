//! Run pages: the history and one run with live progress (records per stream, requests, rate
//! budget used, 429s, retries), its outcome, the fix for an error, and its log (live while
//! it runs).

use super::{render, with_redirect};
use crate::api::runs::{list_views, view, RunView};
use crate::problem::ApiError;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use flows::check::format_time;
use flows::push_job::PushRunSummary;
use sync_core::StreamSummary;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/runs", get(list))
        .route("/runs/{id}", get(show))
        .route("/ui/runs/{id}/figures", get(figures))
        .route("/ui/runs/{id}/log", get(log))
        .route("/ui/runs/{id}/cancel", post(cancel))
}

/// One row of a runs table.
pub(crate) struct RunRow {
    pub id: String,
    pub flow: String,
    pub status: String,
    pub started: String,
    pub duration: String,
    pub written: String,
}

fn streams_of(run: &RunView) -> Vec<StreamSummary> {
    match &run.live {
        Some(live) => live.streams.clone(),
        None => serde_json::from_value(run.summary["streams"].clone()).unwrap_or_default(),
    }
}

impl RunRow {
    pub(crate) fn new(run: RunView) -> Self {
        let written: u64 = if run.mode.starts_with("push") {
            PushRunSummary::from_run(&run.summary).written()
        } else {
            streams_of(&run).iter().map(|s| s.records_written).sum()
        };
        RunRow {
            duration: match run.finished_at {
                Some(end) => format!("{:.1} s", (end - run.started_at) as f64 / 1000.0),
                None => "running".into(),
            },
            started: format_time(run.started_at),
            flow: run.flow.unwrap_or_else(|| "–".into()),
            status: run.status,
            id: run.id,
            written: written.to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage {
    nav: &'static str,
    runs: Vec<RunRow>,
}

async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let runs = list_views(&state, None, 100)?;
    Ok(render(&RunsPage {
        nav: "runs",
        runs: runs.into_iter().map(RunRow::new).collect(),
    }))
}

struct StreamRow {
    name: String,
    read: u64,
    written: u64,
    deleted: u64,
    rejected: u64,
    expected: String,
    requests: u64,
    rate_limited: u64,
    retries: u64,
    state: String,
}

/// What the figures section shows.
struct Figures {
    id: String,
    running: bool,
    status: String,
    flow: String,
    credential: String,
    mode: String,
    destination: String,
    streams: Vec<StreamRow>,
    /// Records quarantined or rejected in the whole run.
    rejected: u64,
    totals: String,
    error: String,
    fix: String,
    /// Download link of a push run's results file ("" for syncs).
    results: String,
}

fn state_name(s: &StreamSummary) -> String {
    let name = serde_json::to_value(s.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    match &s.reason {
        Some(r) => format!("{name}: {r}"),
        None => name,
    }
}

/// The fix a user should make for a run error (by its kind, sync-core's taxonomy).
fn fix_for(run: &RunView) -> String {
    let kind = run.summary["error"]["kind"].as_str().unwrap_or_default();
    match kind {
        "unauthorized" => format!("Drift rejected the key of credential \"{}\": rotate its key on the Authenticate screen, then run again.", run.credential),
        "forbidden" => "The token lacks a scope for a stream: rotate the key to a token with the scopes named above, or remove the stream.".into(),
        "rate_limited" => "Drift kept answering 429: lower the credential's rate budget or run later.".into(),
        "destination" => "The sink could not be written: check its path or connection and free space, then run again.".into(),
        "" if run.error.is_none() => String::new(),
        _ => "Run again: the next run resumes from the last checkpoint.".into(),
    }
}

impl Figures {
    fn new(run: &RunView) -> Self {
        let streams: Vec<StreamRow> = streams_of(run)
            .iter()
            .map(|s| StreamRow {
                name: s.stream.clone(),
                read: s.records_read,
                written: s.records_written,
                deleted: s.records_deleted,
                rejected: s.records_rejected,
                expected: s
                    .expected
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "–".into()),
                requests: s.requests.requests,
                rate_limited: s.requests.rate_limited,
                retries: s.requests.retries,
                state: state_name(s),
            })
            .collect();
        let is_push = run.mode.starts_with("push");
        let totals = match &run.live {
            None if is_push => PushRunSummary::from_run(&run.summary).line(),
            Some(l) => format!(
                "{} requests · rate budget used {:.0} of {} requests/minute · {} rate limited (429) · {} retries · {} waits",
                l.totals.requests, l.rate_used_per_min, l.rate_limit_per_min, l.totals.rate_limited, l.totals.retries, l.totals.waits
            ),
            None => {
                let t = &run.summary["totals"];
                let n = |k: &str| t[k].as_u64().unwrap_or(0);
                format!(
                    "{} requests · {} rate limited (429) · {} retries · {} waits ({:.1} s waiting) · took {:.1} s",
                    n("requests"), n("rate_limited"), n("retries"), n("waits"), n("wait_ms") as f64 / 1000.0,
                    run.summary["duration_ms"].as_u64().unwrap_or(0) as f64 / 1000.0
                )
            }
        };
        Figures {
            id: run.id.clone(),
            running: run.status == "running",
            status: run.status.clone(),
            flow: run.flow.clone().unwrap_or_else(|| "–".into()),
            credential: run.credential.clone(),
            mode: run.mode.clone(),
            destination: run.destination.clone(),
            rejected: if run.mode.starts_with("push") {
                0
            } else {
                streams.iter().map(|s| s.rejected).sum()
            },
            streams,
            totals,
            error: run.error.clone().unwrap_or_default(),
            fix: fix_for(run),
            results: if is_push && !run.status.eq("running") {
                format!("/ui/destinations/results/{}", run.id)
            } else {
                String::new()
            },
        }
    }
}

/// Most log lines the run page shows (the latest; the API and the CLI give them all).
const LOG_LINES_SHOWN: usize = 500;

/// One line of the log panel.
struct LogRow {
    time: String,
    level: String,
    /// `info`, `warn` or `error` (the CSS class).
    level_class: String,
    message: String,
    /// `key=value …`.
    fields: String,
}

/// What the log panel shows: the run's log, live while it runs.
struct LogPanel {
    id: String,
    running: bool,
    lines: Vec<LogRow>,
    /// Older lines left out.
    skipped: usize,
}

impl LogPanel {
    fn new(state: &AppState, run: &RunView) -> Result<Self, ApiError> {
        let page = crate::api::runs::log_page(state, &run.id, 0)?;
        let skipped = page.lines.len().saturating_sub(LOG_LINES_SHOWN);
        let lines = page
            .lines
            .into_iter()
            .skip(skipped)
            .map(|l| LogRow {
                fields: l
                    .fields
                    .iter()
                    .filter(|(_, v)| v.as_str() != Some(""))
                    .map(|(k, v)| match v.as_str() {
                        Some(s) => format!("{k}={s}"),
                        None => format!("{k}={v}"),
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
                level_class: l.level.to_ascii_lowercase(),
                time: l.time,
                level: l.level,
                message: l.message,
            })
            .collect();
        Ok(LogPanel {
            id: run.id.clone(),
            running: page.status == "running",
            lines,
            skipped,
        })
    }
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    nav: &'static str,
    id: String,
    f: Figures,
    log: LogPanel,
}

#[derive(Template)]
#[template(path = "run_log.html")]
struct LogFragment {
    log: LogPanel,
}

#[derive(Template)]
#[template(path = "run_figures.html")]
struct FiguresFragment {
    f: Figures,
}

async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let run = view(&state, &id)?;
    Ok(render(&RunPage {
        nav: "runs",
        id: run.id.clone(),
        f: Figures::new(&run),
        log: LogPanel::new(&state, &run)?,
    }))
}

/// The log panel alone (polled while the run runs).
async fn log(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let run = view(&state, &id)?;
    Ok(render(&LogFragment {
        log: LogPanel::new(&state, &run)?,
    }))
}

async fn figures(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let run = view(&state, &id)?;
    Ok(render(&FiguresFragment {
        f: Figures::new(&run),
    }))
}

async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if let Some(live) = state.flows.runner.live(&id) {
        live.cancel();
    }
    Ok(with_redirect(&format!("/runs/{id}")))
}
