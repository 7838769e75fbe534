//! `/api/v1/sources`: data sources (Drift streams into a sink) — create, list, get, update,
//! delete, run now — and their schedules.
//!
//! A source's options (mode, sink, schedule) are kept in the store's `config` column as
//! [`SourceOptions`], the sink with its password masked; the password itself is encrypted
//! in the vault and given back only to open the sink for a run ([`flows::sink_secret`]).
//! Saving checks the credential's scopes against the chosen streams (REFERENCE §3): missing
//! scopes are a 422 on `streams`.

use super::runs::RunView;
use crate::problem::{ApiError, ApiResult, FieldError, Problem};
use crate::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use flows::check;
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
    /// The view without the real-time figures (see [`view`] for those).
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
            webhook_url: None,
            realtime: None,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// The view of `s` with its webhook URL and real-time figures.
pub(crate) fn view(state: &AppState, s: SourceRecord) -> SourceView {
    let status = flows::realtime::status(&state.flows, &s, &state.options.base_url());
    let mut view = SourceView::new(s);
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

/// A stream that can be read from Drift.
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
        source_drift::STREAMS
            .iter()
            .map(|d| StreamInfo {
                name: d.name.to_string(),
                scope: d.scopes.join(", "),
            })
            .collect(),
    )
}

/// Check every field of a source; returns the normalised options and streams.
pub(crate) fn validate(
    state: &AppState,
    name: &str,
    credential: &str,
    streams: &[String],
    options: &SourceOptions,
) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut push = |field: &str, message: String| {
        errors.push(FieldError {
            field: field.into(),
            message,
        })
    };
    if let Err(store::StoreError::Invalid { message, .. }) = store::validate::name(name) {
        push(
            "name",
            message
                .replace("credential name", "data source name")
                .replace("--name NAME", "a name"),
        );
    }
    if state.store.credential(credential).is_err()
        && crate::api::credentials::resolve(&state.store, credential).is_err()
    {
        push("credential", format!("no credential \"{credential}\"; pick one of the credentials on the Authenticate screen or add one"));
    }
    if streams.is_empty() {
        push("streams", "choose at least one stream".into());
    } else if let Err(e) = drift_writer::scopes::required_scopes(streams) {
        push("streams", e.0);
    }
    if let Err(e) = options.mode.parse::<sync_core::SyncMode>() {
        push("mode", e);
    }
    match options.sink.parse::<sinks::SinkSpec>() {
        Err(e) => push("sink", e),
        Ok(spec) => {
            if let Some(message) = flows::sink_paths::refusal(&spec, state.store.data_dir()) {
                push("sink", message);
            }
        }
    }
    if let Some(s) = &options.schedule {
        errors.extend(s.errors());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Test the credential for the chosen streams: missing scopes or a rejected key are field
/// errors (REFERENCE §3 scopes; DESIGN.md §1 step 2).
pub(crate) async fn scope_check(
    state: &AppState,
    credential: &str,
    streams: &[String],
) -> ApiResult<()> {
    let c = crate::api::credentials::resolve(&state.store, credential)?;
    let (report, failure) = crate::api::credentials::run_test(state, &c, streams).await?;
    match failure {
        None => Ok(()),
        Some(f) if f.kind == check::FailureKind::MissingScopes => Err(ApiError::field(
            "streams",
            format!(
                "credential \"{}\" lacks the scopes {} that these streams need; pick other streams or rotate the key to a token with those scopes",
                c.name,
                report.missing_scopes.join(", ")
            ),
        )),
        Some(f) => Err(ApiError::field("credential", f.message)),
    }
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
        realtime: None,
    };
    let mut view = save_new(
        &state,
        &body.name,
        &body.credential,
        &body.streams,
        &options,
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

/// Validate, check scopes, and create a source (shared with the UI wizard).
pub(crate) async fn save_new(
    state: &AppState,
    name: &str,
    credential: &str,
    streams: &[String],
    options: &SourceOptions,
) -> ApiResult<SourceView> {
    validate(state, name, credential, streams, options).map_err(ApiError::Validation)?;
    let sink = sink_secret::split(&options.sink);
    if sink.has_mask() {
        return Err(masked_sink_error());
    }
    if let Ok(existing) = state.store.source(name) {
        return Err(ApiError::Duplicate(format!(
            "data source name \"{}\" is already taken (names are case-insensitive, it clashes with \"{}\"); choose another name",
            name.trim(),
            existing.name
        )));
    }
    scope_check(state, credential, streams).await?;
    let credential = crate::api::credentials::resolve(&state.store, credential)?;
    let stored = SourceOptions {
        sink: sink.shown.clone(),
        ..options.clone()
    };
    let config = serde_json::to_value(&stored).map_err(|e| ApiError::Internal(e.to_string()))?;
    let record = state.store.create_source_with_secret(
        name,
        &credential.name,
        streams,
        &config,
        sink.sealed().as_ref(),
    )?;
    tracing::info!(source = %record.name, "data source saved");
    Ok(SourceView::new(record))
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

#[utoipa::path(patch, operation_id = "update_source", path = "/api/v1/sources/{id}", tag = "sources", request_body = UpdateSource,
    params(("id" = String, Path, description = "data source id or name")),
    responses((status = 200, body = SourceView), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<UpdateSource>, JsonRejection>,
) -> ApiResult<Json<SourceView>> {
    let Json(body) = body?;
    if let Some(Some(rt)) = &body.realtime {
        check_token(&rt.verification_token)?;
    }
    let record = state.store.source(&id)?;
    let current_realtime = SourceOptions::of(&record).realtime;
    let current = SourceView::new(record);
    let name = body.name.clone().unwrap_or(current.name.clone());
    let credential = body
        .credential
        .clone()
        .or(current.credential.clone())
        .unwrap_or_default();
    let streams = body.streams.clone().unwrap_or(current.streams.clone());
    let (sink, sink_secret) = match &body.sink {
        None => (current.sink.clone(), None),
        Some(new) => {
            let parts = sink_secret::split(new);
            if parts.only_masks() && parts.shown == current.sink {
                (parts.shown, None)
            } else if parts.has_mask() {
                return Err(masked_sink_error());
            } else {
                let sealed = parts.sealed();
                (parts.shown, Some(sealed))
            }
        }
    };
    let options = SourceOptions {
        mode: body.mode.unwrap_or(current.mode),
        sink,
        schedule: body.schedule.unwrap_or(current.schedule),
        // Changed below through flows::realtime (enable / disable).
        realtime: current_realtime,
    };
    validate(&state, &name, &credential, &streams, &options).map_err(ApiError::Validation)?;
    if body.credential.is_some() || body.streams.is_some() {
        scope_check(&state, &credential, &streams).await?;
    }
    let credential = crate::api::credentials::resolve(&state.store, &credential)?;
    let update = SourceUpdate {
        sink_secret,
        name: body.name,
        credential: Some(credential.name),
        streams: Some(streams),
        config: Some(
            serde_json::to_value(&options).map_err(|e| ApiError::Internal(e.to_string()))?,
        ),
    };
    let record = state.store.update_source(&current.id, &update)?;
    let record = match body.realtime {
        Some(Some(rt)) => {
            let token = secrecy::SecretString::from(rt.verification_token);
            flows::realtime::enable(&state.flows, &record.id, &token)?
        }
        Some(None) => flows::realtime::disable(&state.flows, &record.id)?,
        None => record,
    };
    Ok(Json(view(&state, record)))
}

#[utoipa::path(delete, operation_id = "delete_source", path = "/api/v1/sources/{id}", tag = "sources",
    params(("id" = String, Path, description = "data source id or name")),
    responses((status = 204), (status = 404, body = Problem)))]
async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let deleted = state.store.delete_source(&id)?;
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
    let run_id = flows::sources::start_source(&state.flows, &source)?;
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
    Ok(flows::sources::start_source(&state.flows, &record)?)
}

/// The 422 for a sink whose password is the mask but which is not the stored sink.
fn masked_sink_error() -> ApiError {
    ApiError::field(
        "sink",
        format!(
            "the sink's password is shown as {mask}, which is not a password: give the whole \
             URL with the password (a stored password is kept only when the sink is sent back \
             exactly as shown)",
            mask = sink_secret::MASK
        ),
    )
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
