//! `/api/v1/destinations`: records -> Drift from an uploaded CSV (upload, then push or dry
//! run), and the results file of a push run. Saved destinations: see
//! [`super::saved_destinations`].

use crate::problem::{ApiError, ApiResult, Problem};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use flows::{PushInput, PushJob, PushRun, PushSettings};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Largest CSV upload, bytes (20 MiB).
pub const UPLOAD_LIMIT_BYTES: usize = 20 * 1024 * 1024;

/// Rows of a run shown in a preview (the results file has them all).
pub const PREVIEW_ROWS: usize = 50;

/// One row's outcome.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OutcomeRow {
    /// 1-based input row.
    pub row: u64,
    /// Key value matched on.
    pub key: Option<String>,
    /// `created`, `updated`, `unchanged`, `skipped` or `rejected`.
    pub outcome: String,
    /// Drift id written or matched.
    pub drift_id: Option<String>,
    /// Why (every dry-run row, every rejected or skipped row).
    pub reason: Option<String>,
}

/// What a push did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PushReport {
    /// Run id (also in the run history).
    pub run_id: String,
    /// Dry run?
    pub dry_run: bool,
    /// Rows with an outcome.
    pub rows: u64,
    /// Rows per outcome.
    #[schema(value_type = Object)]
    pub counts: BTreeMap<String, u64>,
    /// Drift requests made.
    pub requests: u64,
    /// Columns left out (neither mapped nor standard).
    pub ignored_columns: Vec<String>,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
    /// The first [`PREVIEW_ROWS`] outcomes.
    pub preview: Vec<OutcomeRow>,
    /// Where to download the results file.
    pub results_url: String,
    /// Warnings for people, e.g. a dry run with a credential that lacks the write scope (a
    /// real run would be refused).
    pub warnings: Vec<String>,
}

/// Run a push (or a dry run) of upload `upload` with `credential` and `settings` (the same
/// [`PushRun`] as `driftbridge push`: push ledger, scope check, cancel by run id, run log
/// and metrics); `flow`: the saved destination it runs, if any. Returns the report once
/// every row has an outcome (the results file has them all).
///
/// `edge` words the fixes of errors (the REST API's or the web UI's).
///
/// Errors: 422 naming `object`, `key`, `mapping` (also an attribute Drift does not have
/// without `settings.allow_new_attributes`), `on_duplicate`, `upload`, `file` or
/// `credential` (unknown, refused address, rejected key, missing write scope for a real
/// run); 429 when Drift keeps rate limiting the calls made before the first row; 503 when
/// Drift cannot be reached for them.
pub(crate) async fn run_push(
    state: &AppState,
    credential: &str,
    settings: &PushSettings,
    upload: &str,
    flow: Option<String>,
    edge: flows::check::Edge,
) -> ApiResult<PushReport> {
    let options = settings.options()?;
    let dry_run = options.dry_run;
    let job = PushJob {
        credential: credential.to_string(),
        options,
        input: PushInput::Upload(upload.to_string()),
        results: None,
        flow,
        rate_limit_per_min: None,
        max_concurrency: None,
        trigger: store::Trigger::Manual,
        allow_new_attributes: settings.allow_new_attributes,
        edge,
    };
    let run = PushRun::prepare(&state.store, job, state.addresses())
        .await
        .map_err(|e| match e.store_error() {
            Some(store::StoreError::NotFound {
                kind: "credential", ..
            }) => ApiError::field(
                "credential",
                format!("no credential \"{credential}\"; pick one on the Authenticate screen"),
            ),
            _ => e.into(),
        })?;
    let preview = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let rows = preview.clone();
    let outcome = state
        .flows
        .runner
        .push(run, move |o| {
            let mut rows = rows.lock().unwrap_or_else(|e| e.into_inner());
            if rows.len() < PREVIEW_ROWS {
                rows.push(OutcomeRow {
                    row: o.row,
                    key: o.key.clone(),
                    outcome: o.kind.as_str().into(),
                    drift_id: o.drift_id.clone(),
                    reason: o.reason.clone(),
                });
            }
        })
        .await?;
    outcome.recorded?;
    let summary = &outcome.summary;
    let preview = std::mem::take(&mut *preview.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(PushReport {
        run_id: outcome.run_id.clone(),
        dry_run,
        rows: summary.rows,
        counts: summary
            .counts
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), *v))
            .collect(),
        requests: summary.requests,
        ignored_columns: summary.ignored_columns.clone(),
        stopped: summary.stopped.as_ref().map(|s| s.message.clone()),
        preview,
        results_url: format!("/api/v1/runs/{}/results", outcome.run_id),
        warnings: outcome.warnings,
    })
}

/// Answer of an upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct Upload {
    /// Upload id, for `push`.
    pub upload: String,
    /// The CSV's columns (header row), in order.
    pub columns: Vec<String>,
}

/// Body of `POST /api/v1/destinations/push`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    /// Credential name or id.
    pub credential: String,
    /// `contacts`, `accounts`, `timeline` or `conversations`.
    pub object: String,
    /// Match key (`email`, `externalId`, `domain`, `accountId`, `contactId`); default: the
    /// object's first.
    #[serde(default)]
    pub key: Option<String>,
    /// Column -> Drift attribute (`attr` or `attr:type`); unmapped standard columns pass as
    /// they are.
    #[serde(default)]
    pub mapping: BTreeMap<String, String>,
    /// Upload id from `POST /api/v1/destinations/uploads`.
    pub upload: String,
    /// Validate and look up only; nothing is written to Drift.
    #[serde(default)]
    pub dry_run: bool,
    /// Let the mapping name attributes Drift does not have: the push creates them as new
    /// custom attributes (default false: such a push, dry runs included, is a 422 on
    /// `mapping` before any row is sent).
    #[serde(default)]
    pub allow_new_attributes: bool,
}

/// Routes of `/api/v1/destinations` and the results download.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/destinations/uploads",
            post(upload)
                .layer(DefaultBodyLimit::max(UPLOAD_LIMIT_BYTES))
                .layer(axum::middleware::map_response(upload_too_large)),
        )
        .route("/destinations/push", post(push))
        .route("/runs/{id}/results", get(results))
}

#[utoipa::path(post, operation_id = "upload_csv", path = "/api/v1/destinations/uploads", tag = "destinations",
    request_body(content = String, content_type = "text/csv", description = "a CSV file with a header row"),
    responses((status = 201, body = Upload), (status = 422, body = Problem), (status = 413, body = Problem)))]
async fn upload(
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Upload>)> {
    let (upload, columns) = flows::uploads::save_upload(state.store.data_dir(), &body)?;
    Ok((StatusCode::CREATED, Json(Upload { upload, columns })))
}

/// A 413 of an upload route names the upload limit (20 MiB), not the general one.
pub(crate) async fn upload_too_large(response: Response) -> Response {
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::TooLarge(crate::problem::too_large_detail(UPLOAD_LIMIT_BYTES))
            .into_response();
    }
    response
}

#[utoipa::path(post, operation_id = "push_records", path = "/api/v1/destinations/push", tag = "destinations", request_body = PushRequest,
    responses((status = 200, body = PushReport, description = "every row has an outcome; see the results file"),
        (status = 422, body = Problem)))]
async fn push(
    State(state): State<AppState>,
    body: Result<Json<PushRequest>, JsonRejection>,
) -> ApiResult<Json<PushReport>> {
    let Json(body) = body?;
    let settings = PushSettings {
        object: body.object,
        key: body.key.unwrap_or_default(),
        mapping: body.mapping.into_iter().collect(),
        include_unmapped: false,
        on_duplicate: None,
        dry_run: body.dry_run,
        allow_new_attributes: body.allow_new_attributes,
    };
    Ok(Json(
        run_push(
            &state,
            &body.credential,
            &settings,
            &body.upload,
            None,
            flows::check::Edge::Api,
        )
        .await?,
    ))
}

#[utoipa::path(get, operation_id = "get_run_results", path = "/api/v1/runs/{id}/results", tag = "destinations",
    params(("id" = String, Path, description = "push run id")),
    responses((status = 200, content_type = "text/csv", description = "one row per input row"), (status = 404, body = Problem)))]
async fn results(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    results_file(&state, &id)
}

/// The results file of a push run as a CSV download. Cells a spreadsheet would run as a
/// formula carry a leading `'` (see `drift_writer::csv_cell`), also in files
/// written by versions that did not add it.
pub(crate) fn results_file(state: &AppState, id: &str) -> ApiResult<Response> {
    let path = flows::uploads::results_path(state.store.data_dir(), id)?;
    let bytes = std::fs::read(&path)
        .map_err(|_| ApiError::NotFound(format!("no results file for run \"{id}\"")))?;
    let bytes = neutralised(bytes);
    let disposition = format!("attachment; filename=\"{id}.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

/// `csv` with every cell passed through `csv_cell`; the bytes unchanged when they are not
/// a CSV the reader can read whole.
fn neutralised(csv_bytes: Vec<u8>) -> Vec<u8> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(csv_bytes.as_slice());
    let mut writer = csv::Writer::from_writer(Vec::with_capacity(csv_bytes.len()));
    for record in reader.records() {
        let Ok(record) = record else {
            return csv_bytes;
        };
        let cells = record
            .iter()
            .map(|c| drift_writer::csv_cell(c).into_owned());
        if writer.write_record(cells).is_err() {
            return csv_bytes;
        }
    }
    writer.into_inner().unwrap_or(csv_bytes)
}
