//! `/api/v1/destinations`: records -> Drift from an uploaded CSV (upload, then push or dry
//! run), and the results file of a push run. Saved destinations: see
//! [`super::saved_destinations`].

use crate::problem::{ApiError, ApiResult, Problem};
use crate::pusher::{self, PushJob, PushReport};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Largest CSV upload, bytes (20 MiB).
pub const UPLOAD_LIMIT_BYTES: usize = 20 * 1024 * 1024;

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
    let (upload, columns) = pusher::save_upload(state.store.data_dir(), &body)?;
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
    let job = PushJob {
        credential: body.credential,
        object: body.object,
        key: body.key.unwrap_or_default(),
        mapping: body.mapping.into_iter().collect(),
        upload: body.upload,
        dry_run: body.dry_run,
        include_unmapped: false,
        on_duplicate: None,
        destination: None,
    };
    Ok(Json(
        pusher::run(&state.store, &job, state.addresses).await?,
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
    let path = pusher::results_path(state.store.data_dir(), id)?;
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
