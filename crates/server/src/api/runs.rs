//! `/api/v1/runs`: run history and live status, cancel, and each run's log.

use crate::problem::{ApiError, ApiResult, Problem};
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use flows::runner::LiveFigures;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A run: the stored record plus, while it runs, live figures. Timestamps: epoch ms.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunView {
    /// Run id.
    pub id: String,
    /// Data source name, when started from one.
    pub flow: Option<String>,
    /// Credential name.
    pub credential: String,
    /// Destination.
    pub destination: String,
    /// `full` or `incremental` (syncs); `push` or `push-dry-run` (pushes).
    pub mode: String,
    /// `sync` (a data source's run), `push` (records into Drift) or `dry_run` (a push that
    /// only planned what it would send).
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub run_type: String,
    /// What started the run: `manual` (the CLI's `sync`, `push`, `sources run`,
    /// `destinations run`; the API's and the web UI's run now) or `schedule` (the
    /// scheduler). Runs recorded before driftbridge kept it read as `manual`.
    #[schema(example = "manual", pattern = "^(manual|schedule)$")]
    pub trigger: String,
    /// Streams selected.
    pub streams: Vec<String>,
    /// `running`, `succeeded`, `succeeded_with_rejections`, `failed`, `rate_limited`, `cancelled` or `interrupted` (the process
    /// running it stopped before it finished; see `store::INTERRUPTED`).
    pub status: String,
    /// Start time.
    pub started_at: i64,
    /// End time.
    pub finished_at: Option<i64>,
    /// Error of a failed run, with the fix when there is one.
    pub error: Option<String>,
    /// The stored summary (per-stream figures, totals) once finished; `{}` before.
    #[schema(value_type = Object)]
    pub summary: serde_json::Value,
    /// Figures while it runs.
    pub live: Option<LiveFigures>,
}

/// The view of run `id`.
pub(crate) fn view(state: &AppState, id: &str) -> ApiResult<RunView> {
    let r = state.store.get_run(id)?;
    let live = if r.status == "running" {
        state.flows.runner.live(id).map(|l| l.figures())
    } else {
        None
    };
    Ok(RunView {
        id: r.id,
        flow: r.flow,
        credential: r.credential,
        destination: r.destination,
        run_type: run_type(&r.mode).into(),
        mode: r.mode,
        trigger: r.trigger.as_str().into(),
        streams: r.streams,
        status: r.status,
        started_at: r.started_at,
        finished_at: r.finished_at,
        error: r.error,
        summary: r.summary,
        live,
    })
}

pub use flows::run_filter::{run_type, RUN_TYPES};

/// Query of `GET /api/v1/runs`. Filters combine (all must hold).
#[derive(Debug, Deserialize, Default, Clone, utoipa::IntoParams)]
pub struct RunsQuery {
    /// Only runs of this data source (name, case-insensitive): syncs.
    pub source: Option<String>,
    /// Only runs of this saved data destination (name, case-insensitive): pushes and dry runs.
    pub destination: Option<String>,
    /// Only runs of this type: `sync`, `push` or `dry_run`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub run_type: Option<String>,
    /// Only runs with this status (`running`, `succeeded`, `succeeded_with_rejections`,
    /// `failed`, `rate_limited`, `cancelled`, `interrupted`, `skipped`).
    pub status: Option<String>,
    /// Only runs started this way: `manual` or `schedule`.
    pub trigger: Option<String>,
    /// At most this many (default 50, at most 500), newest first.
    pub limit: Option<usize>,
}

impl RunsQuery {
    /// The filters of this query.
    pub(crate) fn filter(&self) -> flows::run_filter::RunFilter {
        flows::run_filter::RunFilter {
            source: self.source.clone(),
            destination: self.destination.clone(),
            run_type: self.run_type.clone(),
            status: self.status.clone(),
            trigger: self.trigger.clone(),
        }
    }

    /// A 422 naming `type` when it is not one of [`RUN_TYPES`], or `trigger` when it is
    /// neither `manual` nor `schedule`.
    pub(crate) fn check(&self) -> ApiResult<()> {
        Ok(self.filter().check()?)
    }
}

/// Routes under `/api/v1/runs`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/runs", get(list))
        .route("/runs/{id}", get(show))
        .route("/runs/{id}/cancel", post(cancel))
        .route("/runs/{id}/rejected", get(rejected))
        .route("/runs/{id}/logs", get(logs))
}

/// Query of `GET /api/v1/runs/{id}/logs`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct LogsQuery {
    /// Only the lines after this many (the `next` of the previous answer); default 0: all.
    pub after: Option<usize>,
}

/// A page of a run's log.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunLogs {
    /// Run id.
    pub run_id: String,
    /// The run's status now (`running` while more lines may come).
    pub status: String,
    /// The lines after `after`, in order.
    pub lines: Vec<flows::logs::LogLine>,
    /// Lines read so far: pass it as `after` to get only newer lines.
    pub next: usize,
}

/// The lines of run `id`'s log after the first `after`, with the run's status.
pub(crate) fn log_page(state: &AppState, id: &str, after: usize) -> ApiResult<RunLogs> {
    let run = state.store.get_run(id)?;
    let page = flows::logs::read(state.store.data_dir(), &run.id, after)?;
    Ok(RunLogs {
        run_id: run.id,
        status: run.status,
        lines: page.lines,
        next: page.next,
    })
}

#[utoipa::path(get, path = "/api/v1/runs/{id}/logs", tag = "runs",
    params(("id" = String, Path, description = "run id"), LogsQuery),
    responses((status = 200, body = RunLogs, description = "the run's events (info and above, secrets redacted), oldest first; poll with `after` = `next` while `status` is `running`"),
        (status = 404, body = Problem)))]
async fn logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<LogsQuery>, QueryRejection>,
) -> ApiResult<Json<RunLogs>> {
    let Query(q) = query?;
    Ok(Json(log_page(&state, &id, q.after.unwrap_or(0))?))
}

/// Runs newest first, optionally of one data source (syncs of it only).
pub(crate) fn list_views(
    state: &AppState,
    source: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<RunView>> {
    let query = RunsQuery {
        source: source.map(str::to_string),
        ..Default::default()
    };
    filtered_views(state, &query, limit)
}

/// Runs newest first that pass `query`'s filters (among the last 500), at most `limit`.
pub(crate) fn filtered_views(
    state: &AppState,
    query: &RunsQuery,
    limit: usize,
) -> ApiResult<Vec<RunView>> {
    query
        .filter()
        .list(&state.store, 500, limit)?
        .into_iter()
        .map(|r| view(state, &r.id))
        .collect()
}

#[utoipa::path(get, operation_id = "list_runs", path = "/api/v1/runs", tag = "runs", params(RunsQuery),
    responses((status = 200, body = [RunView]), (status = 401, body = Problem),
        (status = 422, body = Problem, description = "unknown `type` or `trigger`")))]
async fn list(
    State(state): State<AppState>,
    query: Result<Query<RunsQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<RunView>>> {
    let Query(q) = query?;
    q.check()?;
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    Ok(Json(filtered_views(&state, &q, limit)?))
}

#[utoipa::path(get, operation_id = "get_run", path = "/api/v1/runs/{id}", tag = "runs", params(("id" = String, Path, description = "run id")),
    responses((status = 200, body = RunView), (status = 404, body = Problem)))]
async fn show(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<RunView>> {
    Ok(Json(view(&state, &id)?))
}

/// A record a sync run quarantined because it did not fit its stream's types.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RejectedView {
    /// Stream name.
    pub stream: String,
    /// The record's primary key as text, when one could be read.
    pub primary_key: Option<String>,
    /// Why it does not fit, naming the field.
    pub reason: String,
    /// The record as Drift sent it (JSON text).
    pub raw: String,
    /// When it was read, epoch ms.
    pub rejected_at: i64,
}

#[utoipa::path(get, operation_id = "list_run_rejected", path = "/api/v1/runs/{id}/rejected", tag = "runs", params(("id" = String, Path, description = "run id")),
    responses((status = 200, body = [RejectedView]), (status = 404, body = Problem)))]
async fn rejected(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<RejectedView>>> {
    let records = state.store.rejected(&id)?;
    Ok(Json(
        records
            .into_iter()
            .map(|r| RejectedView {
                stream: r.stream,
                primary_key: r.primary_key,
                reason: r.reason,
                raw: r.raw,
                rejected_at: r.rejected_at,
            })
            .collect(),
    ))
}

#[utoipa::path(post, operation_id = "cancel_run", path = "/api/v1/runs/{id}/cancel", tag = "runs", params(("id" = String, Path, description = "run id")),
    responses((status = 202, body = RunView), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<RunView>)> {
    let current = view(&state, &id)?;
    let live = state.flows.runner.live(&id).ok_or_else(|| {
        ApiError::NotRunning(format!(
            "run {id} is not running (status {}); nothing to cancel",
            current.status
        ))
    })?;
    live.cancel();
    Ok((StatusCode::ACCEPTED, Json(current)))
}
