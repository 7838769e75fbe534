//! `/api/v1/sources`: data sources (Drift streams into a sink) — create, list, get, update,
//! delete, run now — and their schedules.
//!
//! A source's options (mode, sink, schedule) are kept in the store's `config` column as
//! [`SourceOptions`], the sink with its password masked; the password itself is encrypted
//! in the vault and given back only to open the sink for a run ([`flows::sink_secret`]).
//! Saving checks the credential's scopes against the chosen streams (REFERENCE §3): missing
//! scopes are a 422 on `streams`.

use super::runs::RunView;
use crate::problem::{ApiError, ApiResult, Problem};
use crate::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use flows::sink_secret;
use serde::{Deserialize, Serialize};
use store::{SourceRecord, SourceUpdate};
use utoipa::ToSchema;

pub use flows::sources::{Schedule, SourceOptions, MAX_EVERY_MINUTES};

/// A data source as the API shows it. Timestamps: epoch ms.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SourceView {
    /// Stable id, `src_…`.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Credential name (`null` if it was force-deleted).
    pub credential: Option<String>,
    /// Streams read.
    pub streams: Vec<String>,
    /// `full` or `incremental`.
    pub mode: String,
    /// Sink, its password (if any) shown as `••••`: `postgres://user:••••@host/db`.
    pub sink: String,
    /// Schedule, if any.
    pub schedule: Option<Schedule>,
    /// `evolve`, `freeze` or `discard`: what a contact attribute without a column does.
    #[schema(value_type = String, example = "evolve")]
    pub schema_contract: sinks::SchemaContract,
    /// History mode: every version of a record is kept (SQLite, PostgreSQL).
    pub history: bool,
    /// Whether the schedule is paused (the scheduler does not start it; run now still does).
    pub paused: bool,
    /// Failed runs in a row (failed, rate limited, interrupted); 0 after a success.
    pub failure_streak: u32,
    /// Error of the latest failed run while the streak lasts, else `null`.
    pub last_error: Option<String>,
    /// When the scheduler starts it next (epoch ms); `null` without a schedule or when
    /// paused. A time in the past means "within the next scheduler tick".
    pub next_run_at: Option<i64>,
    /// Streams its next run reads in full (reset with `POST /api/v1/sources/{id}/reset`).
    pub reset_streams: Vec<String>,
    /// For a real-time source: the URL to give Drift as the app's webhook request URL
    /// (absolute, on `serve --public-url`, else the bind address; its last segment is a
    /// random id, not the source's id). `null` otherwise.
    pub webhook_url: Option<String>,
    /// For a real-time source: its webhook figures; `null` otherwise. The verification
    /// token is write-only and never shown.
    pub realtime: Option<RealtimeView>,
    /// Creation time.
    pub created_at: i64,
    /// Last change time.
    pub updated_at: i64,
}

/// The real-time figures of a source (issue 22).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RealtimeView {
    /// Always `true` (a source that is not real time has `"realtime": null`).
    pub enabled: bool,
    /// Webhook events accepted in the last hour (duplicates not counted).
    pub events_last_hour: u64,
    /// 95th percentile of the lag from Drift's event time to the commit of the event's
    /// records in the sink over the last hour, milliseconds; `null` before the first event.
    pub lag_ms_p95: Option<i64>,
}

/// Body field `realtime` of a create or update: makes the source real time.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RealtimeInput {
    /// The Verification Token of your Drift app (dev.drift.com → your app → App
    /// Credentials). Write-only: encrypted in the vault, never shown again.
    pub verification_token: String,
}

impl SourceView {
    /// The view of `s` without its run history (`failure_streak` 0, no `last_error` or
    /// `next_run_at`): see [`SourceView::of`] for the whole view.
    pub(crate) fn new(s: SourceRecord) -> Self {
        let options = SourceOptions::of(&s);
        SourceView {
            id: s.id,
            name: s.name,
            credential: s.credential,
            streams: s.streams,
            mode: options.mode,
            sink: options.sink,
            schedule: options.schedule,
            schema_contract: options.schema_contract,
            history: options.history,
            paused: options.paused,
            failure_streak: 0,
            last_error: None,
            next_run_at: None,
            reset_streams: options.reset_streams,
            webhook_url: None,
            realtime: None,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }

    /// The view of `s` with its failure streak, last error and next run time
    /// ([`flows::sources::health`]).
    pub(crate) fn of(store: &store::Store, s: SourceRecord) -> Self {
        let health = flows::sources::health(store, &s);
        SourceView {
            failure_streak: health.failure_streak,
            last_error: health.last_error,
            next_run_at: health.next_run_at,
            ..SourceView::new(s)
        }
    }
}

/// The view of `s` with its webhook URL and real-time figures.
pub(crate) fn view(state: &AppState, s: SourceRecord) -> SourceView {
    let status = flows::realtime::status(&state.store, &s, &state.options.base_url());
    let mut view = SourceView::of(&state.store, s);
    if let Some(rt) = status {
        view.webhook_url = Some(rt.webhook_url);
        view.realtime = Some(RealtimeView {
            enabled: true,
            events_last_hour: rt.events_last_hour,
            lag_ms_p95: rt.lag_ms_p95,
        });
    }
    view
}

fn check_token(token: &str) -> Result<(), ApiError> {
    Ok(flows::realtime::check_token(token)?)
}

/// Body of `POST /api/v1/sources`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSource {
    /// Unique name, 1-100 characters.
    pub name: String,
    /// Credential name or id.
    pub credential: String,
    /// Streams (see `GET /api/v1/streams`), or `["all"]`.
    pub streams: Vec<String>,
    /// `incremental` (default) or `full`.
    #[serde(default)]
    pub mode: Option<String>,
    /// Sink; default `sqlite:<data dir>/sinks/driftbridge-data.db`. A path inside the data
    /// directory (other than its `sinks/` folder) is refused. A PostgreSQL password in it
    /// (`postgres://user:PASSWORD@host/db` or `?password=`) is write-only: it is encrypted
    /// in the vault and every answer shows it as `••••`.
    #[serde(default)]
    pub sink: Option<String>,
    /// Optional schedule.
    #[serde(default)]
    pub schedule: Option<Schedule>,
    /// `evolve` (default: a new contact attribute adds a nullable column), `freeze` (a run
    /// meeting a new attribute fails before writing it, naming the field) or `discard`
    /// (new attributes stay only in `_raw`).
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "evolve")]
    pub schema_contract: Option<sinks::SchemaContract>,
    /// History mode (SQLite, PostgreSQL): keep every version of a record with
    /// `_valid_from`, `_valid_to` and `_active` (default false).
    #[serde(default)]
    pub history: Option<bool>,
    /// Create it paused (its schedule does not start it until resumed). Default `false`.
    #[serde(default)]
    pub paused: bool,
    /// Makes the source real time: `serve` then accepts Drift's webhook events at the
    /// view's `webhook_url`, checked against this verification token.
    #[serde(default)]
    pub realtime: Option<RealtimeInput>,
}

/// Body of `PATCH /api/v1/sources/{id}`: absent fields stay as they are; `schedule: null`
/// removes the schedule.
#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateSource {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New credential.
    #[serde(default)]
    pub credential: Option<String>,
    /// New streams.
    #[serde(default)]
    pub streams: Option<Vec<String>>,
    /// New mode.
    #[serde(default)]
    pub mode: Option<String>,
    /// New sink. The sink as answers show it (password `••••`) keeps the stored password;
    /// a sink with another host, user, database or parameters needs the password again.
    #[serde(default)]
    pub sink: Option<String>,
    /// New schedule; `null` removes it.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<Schedule>)]
    pub schedule: Option<Option<Schedule>>,
    /// Real time: an object sets (or changes) the verification token, keeping the webhook
    /// URL; `null` turns real time off (the webhook URL stops working).
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<RealtimeInput>)]
    pub realtime: Option<Option<RealtimeInput>>,
    /// New schema contract: `evolve`, `freeze` or `discard`.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "freeze")]
    pub schema_contract: Option<sinks::SchemaContract>,
    /// History mode on or off.
    #[serde(default)]
    pub history: Option<bool>,
    /// `true` pauses the schedule, `false` resumes it.
    #[serde(default)]
    pub paused: Option<bool>,
}

/// Body of `POST /api/v1/sources/{id}/reset`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetStream {
    /// The stream whose next read is a full one (one of the source's streams).
    pub stream: String,
}

mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// A stream that can be read from Drift, or a child table read only when selected by name
/// (`conversation_tags`, `conversation_participants`: one more request per conversation).
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamInfo {
    /// Stream name.
    pub name: String,
    /// OAuth scope it needs (REFERENCE §3).
    pub scope: String,
}

/// Routes under `/api/v1/sources` and `/api/v1/streams`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/streams", get(streams))
        .route("/sources", get(list).post(create))
        .route("/sources/{id}", get(show).patch(update).delete(delete))
        .route("/sources/{id}/run", post(run_now))
        .route("/sources/{id}/reset", post(reset))
}

/// The default sink of a new source: `sqlite:<data dir>/sinks/driftbridge-data.db` (the
/// one folder of the data directory a sink may write to, see [`crate::sink_paths`]).
pub(crate) fn default_sink(state: &AppState) -> String {
    format!(
        "sqlite:{}",
        state
            .store
            .data_dir()
            .join(flows::sink_paths::SINKS_DIR)
            .join("driftbridge-data.db")
            .display()
    )
}

#[utoipa::path(get, operation_id = "list_streams", path = "/api/v1/streams", tag = "sources",
    responses((status = 200, body = [StreamInfo])))]
async fn streams() -> Json<Vec<StreamInfo>> {
    Json(
        source_drift::selectable_streams()
            .into_iter()
            .map(|(name, scope)| StreamInfo { name, scope })
            .collect(),
    )
}

#[utoipa::path(get, operation_id = "list_sources", path = "/api/v1/sources", tag = "sources",
    responses((status = 200, body = [SourceView]), (status = 401, body = Problem)))]
async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<SourceView>>> {
    Ok(Json(
        state
            .store
            .list_sources()?
            .into_iter()
            .map(|s| view(&state, s))
            .collect(),
    ))
}

#[utoipa::path(post, operation_id = "create_source", path = "/api/v1/sources", tag = "sources", request_body = CreateSource,
    responses((status = 201, body = SourceView), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create(
    State(state): State<AppState>,
    body: Result<Json<CreateSource>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(body) = body?;
    if let Some(rt) = &body.realtime {
        check_token(&rt.verification_token)?;
    }
    let options = SourceOptions {
        mode: body.mode.unwrap_or_else(|| "incremental".into()),
        sink: body.sink.unwrap_or_else(|| default_sink(&state)),
        schedule: body.schedule,
        schema_contract: body.schema_contract.unwrap_or_default(),
        history: body.history.unwrap_or(false),
        paused: body.paused,
        ..Default::default()
    };
    let mut view = save_new(
        &state,
        &body.name,
        &body.credential,
        &body.streams,
        &options,
        flows::check::Edge::Api,
    )
    .await?;
    if let Some(rt) = body.realtime {
        let token = secrecy::SecretString::from(rt.verification_token);
        match flows::realtime::enable(&state.flows, &view.id, &token) {
            Ok(record) => view = self::view(&state, record),
            Err(e) => {
                // Nothing half-made: the source goes again when its token cannot be stored.
                let _ = state.store.delete_source(&view.id);
                return Err(e.into());
            }
        }
    }
    let location = format!("/api/v1/sources/{}", view.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response())
}

/// Validate, check scopes, and create a source (shared with the UI wizard): see
/// [`flows::sources::create`].
pub(crate) async fn save_new(
    state: &AppState,
    name: &str,
    credential: &str,
    streams: &[String],
    options: &SourceOptions,
    edge: flows::check::Edge,
) -> ApiResult<SourceView> {
    let new = flows::sources::NewSource {
        name: name.to_string(),
        credential: credential.to_string(),
        streams: streams.to_vec(),
        options: options.clone(),
    };
    let record = flows::sources::create(&state.store, state.addresses(), &new, edge).await?;
    Ok(view(state, record))
}

#[utoipa::path(get, operation_id = "get_source", path = "/api/v1/sources/{id}", tag = "sources",
    params(("id" = String, Path, description = "data source id or name")),
    responses((status = 200, body = SourceView), (status = 404, body = Problem)))]
async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<SourceView>> {
    Ok(Json(view(&state, state.store.source(&id)?)))
}

#[utoipa::path(post, operation_id = "reset_source_stream", path = "/api/v1/sources/{id}/reset", tag = "sources", request_body = ResetStream,
    params(("id" = String, Path, description = "data source id or name")),
    responses((status = 200, body = SourceView, description = "the next run reads the stream in full (`reset_streams`)"),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn reset(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<ResetStream>, JsonRejection>,
) -> ApiResult<Json<SourceView>> {
    let Json(body) = body?;
    let record = flows::sources::reset_stream(&state.store, &id, &body.stream)?;
    Ok(Json(view(&state, record)))
}

#[utoipa::path(patch, operation_id = "update_source", path = "/api/v1/sources/{id}", tag = "sources", request_body = UpdateSource,
    params(("id" = String, Path, description = "data source id or name")),
    responses((status = 200, body = SourceView), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<UpdateSource>, JsonRejection>,
) -> ApiResult<Json<SourceView>> {
    let Json(body) = body?;
    Ok(Json(
        apply_update(&state, &id, body, flows::check::Edge::Api).await?,
    ))
}

/// Apply `body` to data source `id` (the API's PATCH and the web UI's Edit page), through
/// [`flows::sources::update`]: validated as a new source is; a changed credential or
/// streams re-checks the scopes.
pub(crate) async fn apply_update(
    state: &AppState,
    id: &str,
    body: UpdateSource,
    edge: flows::check::Edge,
) -> ApiResult<SourceView> {
    if let Some(Some(rt)) = &body.realtime {
        check_token(&rt.verification_token)?;
    }
    let change = flows::sources::SourceChange {
        name: body.name,
        credential: body.credential,
        streams: body.streams,
        mode: body.mode,
        sink: body.sink,
        schedule: body.schedule,
        paused: body.paused,
        schema_contract: body.schema_contract,
        history: body.history,
    };
    let record = flows::sources::update(&state.store, state.addresses(), id, &change, edge).await?;
    let record = match body.realtime {
        Some(Some(rt)) => {
            let token = secrecy::SecretString::from(rt.verification_token);
            flows::realtime::enable(&state.flows, &record.id, &token)?
        }
        Some(None) => flows::realtime::disable(&state.flows, &record.id)?,
        None => record,
    };
    Ok(view(state, record))
}

#[utoipa::path(delete, operation_id = "delete_source", path = "/api/v1/sources/{id}", tag = "sources",
    params(("id" = String, Path, description = "data source id or name")),
    responses((status = 204), (status = 404, body = Problem)))]
async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let deleted = flows::sources::delete(&state.store, &id)?;
    state.flows.realtime.forget(&deleted.id);
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, operation_id = "run_source", path = "/api/v1/sources/{id}/run", tag = "sources",
    params(("id" = String, Path, description = "data source id or name")),
    responses((status = 202, body = RunView, description = "the run started; poll its Location"),
        (status = 404, body = Problem),
        (status = 409, body = Problem, description = "the data source is running already (in this or another process): `run_id` names that run"),
        (status = 422, body = Problem)))]
async fn run_now(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let source = state.store.source(&id)?;
    let run_id = flows::sources::start_source(&state.flows, &source, store::Trigger::Manual)?;
    let view = super::runs::view(&state, &run_id)?;
    let location = format!("/api/v1/runs/{run_id}");
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response())
}

/// Start a run of `source` (run now, the web UI); returns the run id. See
/// [`flows::sources::start_source`].
pub(crate) fn start_source(state: &AppState, source: &SourceView) -> ApiResult<String> {
    let record = state.store.source(&source.id)?;
    Ok(flows::sources::start_source(
        &state.flows,
        &record,
        store::Trigger::Manual,
    )?)
}

/// Move the passwords of sinks saved in clear (by versions before the vault kept them) into
/// the vault, leaving the masked sink in the source's options. Called when `serve` starts;
/// returns how many sources were changed. A source that cannot be changed (vault locked) is
/// logged and left as it was.
pub fn seal_clear_sink_passwords(state: &AppState) -> usize {
    let Ok(sources) = state.store.list_sources() else {
        return 0;
    };
    let mut sealed = 0;
    for record in sources {
        let Ok(mut options) = serde_json::from_value::<SourceOptions>(record.config.clone()) else {
            continue;
        };
        let parts = sink_secret::split(&options.sink);
        if parts.secrets.is_empty() || parts.has_mask() {
            continue;
        }
        options.sink = parts.shown.clone();
        let Ok(config) = serde_json::to_value(&options) else {
            continue;
        };
        let update = SourceUpdate {
            sink_secret: Some(parts.sealed()),
            config: Some(config),
            ..SourceUpdate::default()
        };
        match state.store.update_source(&record.id, &update) {
            Ok(_) => sealed += 1,
            Err(e) => tracing::warn!(source = %record.name, error = %e,
                "cannot move the sink password of this data source into the vault; it stays in clear until the vault opens"),
        }
    }
    if sealed > 0 {
        tracing::info!(
            sources = sealed,
            "moved sink passwords saved in clear into the vault"
        );
    }
    sealed
}
