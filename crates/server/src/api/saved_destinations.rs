//! Saved data destinations (records -> Drift) under `/api/v1/destinations`: list, create, get,
//! update (PATCH or PUT), delete, and run one on an uploaded CSV.
//!
//! A saved destination is a store destination of kind `drift` whose `config` has the shape
//! `driftbridge push --save NAME` writes ([`SavedConfig`]), so `push --destination NAME` runs
//! one saved here and this API runs one saved by the CLI. Its settings are checked like the
//! CLI's flags (object, key, mapping, duplicate policy) and its credential must exist.

use super::destinations::PushReport;
use crate::problem::{ApiError, ApiResult, FieldError, Problem};
use crate::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use flows::PushSettings;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use store::{DestinationRecord, DestinationUpdate};
use utoipa::ToSchema;

/// Store kind of a destination that writes to Drift (as `push --save` stores it).
pub const KIND: &str = "drift";

/// The `config` JSON of a saved Drift destination, as `driftbridge push --save` writes it.
/// Keys this build does not know (e.g. the CLI's `from`) are kept as they are.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedConfig {
    /// `contacts`, `accounts`, `timeline` or `conversations`.
    pub object: String,
    /// Match key (`email`, `externalId`, ...), resolved: never empty.
    pub key: String,
    /// Mapping as `col=attribute[:type],col2=attribute2` (the CLI's `--map` syntax).
    #[serde(default)]
    pub mapping: String,
    /// Send unmapped, non-standard columns as custom attributes.
    #[serde(default)]
    pub include_unmapped: bool,
    /// The mapping may name attributes Drift does not have (runs create them).
    #[serde(default)]
    pub allow_new_attributes: bool,
    /// Duplicate policy: `update-all`, `first` or `reject`.
    #[serde(default)]
    pub on_duplicate: Option<String>,
    /// What the destination is for (API and UI only; the CLI ignores it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Other keys, kept as saved.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// A saved destination as the API shows it (never a key). Timestamps: epoch ms.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DestinationView {
    /// Stable id, `dst_…`.
    pub id: String,
    /// Unique name (case-insensitive).
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// Credential name (`null` if the credential was force-deleted).
    pub credential: Option<String>,
    /// `contacts`, `accounts`, `timeline` or `conversations`.
    pub object: String,
    /// Match key.
    pub key: String,
    /// Column -> Drift attribute (`attr` or `attr:type`).
    #[schema(value_type = Object)]
    pub mapping: BTreeMap<String, String>,
    /// Send unmapped, non-standard columns as custom attributes.
    pub include_unmapped: bool,
    /// Runs may create attributes Drift does not have yet (the mapping names them).
    pub allow_new_attributes: bool,
    /// Duplicate policy: `update-all`, `first` or `reject`.
    pub on_duplicate: String,
    /// Creation time.
    pub created_at: i64,
    /// Last change time.
    pub updated_at: i64,
}

/// Mapping pairs text (`a=b,c=d:type`) as `(column, attribute)` pairs.
fn mapping_pairs(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter_map(|p| p.split_once('='))
        .map(|(c, a)| (c.trim().to_string(), a.trim().to_string()))
        .filter(|(c, _)| !c.is_empty())
        .collect()
}

impl DestinationView {
    /// The view of a stored destination. Errors: 500 when its config is not a saved push.
    pub(crate) fn new(d: DestinationRecord) -> ApiResult<Self> {
        let c: SavedConfig = serde_json::from_value(d.config).map_err(|e| {
            ApiError::Internal(format!("destination {} has a bad config: {e}", d.name))
        })?;
        Ok(DestinationView {
            id: d.id,
            name: d.name,
            description: c.description,
            credential: d.credential,
            object: c.object,
            key: c.key,
            mapping: mapping_pairs(&c.mapping).into_iter().collect(),
            include_unmapped: c.include_unmapped,
            allow_new_attributes: c.allow_new_attributes,
            on_duplicate: c.on_duplicate.unwrap_or_else(|| "reject".into()),
            created_at: d.created_at,
            updated_at: d.updated_at,
        })
    }
}

/// Body of `POST /api/v1/destinations` (and `PUT /api/v1/destinations/{name}`, which
/// replaces every setting).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDestination {
    /// Unique name, 1-100 characters.
    pub name: String,
    /// What it is for (up to 1000 characters).
    #[serde(default)]
    pub description: Option<String>,
    /// Credential name or id.
    pub credential: String,
    /// `contacts`, `accounts`, `timeline` or `conversations`.
    pub object: String,
    /// Match key; default: the object's first (contacts `email`, accounts `domain`,
    /// timeline `contactId`, conversations `email`).
    #[serde(default)]
    pub key: Option<String>,
    /// Column -> Drift attribute (`attr` or `attr:type`); an empty attribute leaves the
    /// column out.
    #[serde(default)]
    pub mapping: BTreeMap<String, String>,
    /// Send unmapped, non-standard columns as custom attributes (default false).
    #[serde(default)]
    pub include_unmapped: bool,
    /// Runs may create the attributes the mapping names that Drift does not have (default
    /// false: a run of such a mapping is refused before any row is sent unless its run
    /// request opts in).
    #[serde(default)]
    pub allow_new_attributes: bool,
    /// `update-all`, `first` or `reject` (default).
    #[serde(default)]
    pub on_duplicate: Option<String>,
}

/// Body of `PATCH /api/v1/destinations/{name}`: absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDestination {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New description (empty removes it).
    #[serde(default)]
    pub description: Option<String>,
    /// New credential (name or id).
    #[serde(default)]
    pub credential: Option<String>,
    /// New object.
    #[serde(default)]
    pub object: Option<String>,
    /// New key.
    #[serde(default)]
    pub key: Option<String>,
    /// New mapping (replaces the whole mapping).
    #[serde(default)]
    pub mapping: Option<BTreeMap<String, String>>,
    /// New unmapped-column policy.
    #[serde(default)]
    pub include_unmapped: Option<bool>,
    /// New-attribute opt-in.
    #[serde(default)]
    pub allow_new_attributes: Option<bool>,
    /// New duplicate policy.
    #[serde(default)]
    pub on_duplicate: Option<String>,
}

/// Body of `POST /api/v1/destinations/{name}/runs`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunDestination {
    /// Upload id from `POST /api/v1/destinations/uploads`.
    pub upload: String,
    /// Validate and look up only; nothing is written to Drift.
    #[serde(default)]
    pub dry_run: bool,
    /// Let the mapping name attributes Drift does not have: the push creates them as new
    /// custom attributes (for this run; the destination's own `allow_new_attributes` counts too. Default false: such a push, dry runs included, is a 422 on
    /// `mapping` before any row is sent).
    #[serde(default)]
    pub allow_new_attributes: bool,
}

/// Routes of the saved destinations.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/destinations", get(list).post(create))
        .route(
            "/destinations/{name}",
            get(show).patch(update).put(replace).delete(delete),
        )
        .route("/destinations/{name}/runs", post(run))
}

/// A saved Drift destination by id or name; other kinds are not served here (404).
pub(crate) fn find(state: &AppState, key: &str) -> ApiResult<DestinationRecord> {
    let d = state.store.destination(key)?;
    if d.kind != KIND {
        return Err(ApiError::NotFound(format!(
            "destination \"{}\" writes to {}, not to Drift; this API serves Drift destinations only",
            d.name, d.kind
        )));
    }
    Ok(d)
}

/// Check every setting (collecting all errors) and build the config to store; returns the
/// credential's name too.
pub(crate) fn validate(
    state: &AppState,
    body: &CreateDestination,
    other: serde_json::Map<String, serde_json::Value>,
) -> Result<(String, SavedConfig), Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut push = |field: &str, message: String| {
        errors.push(FieldError {
            field: field.into(),
            message,
        })
    };
    if let Err(store::StoreError::Invalid { message, .. }) = store::validate::name(&body.name) {
        push(
            "name",
            message
                .replace("credential name", "destination name")
                .replace("--name NAME", "a name"),
        );
    }
    let description = match store::validate::description(body.description.as_deref()) {
        Ok(d) => d,
        Err(e) => {
            push("description", e.to_string().replace("description: ", ""));
            None
        }
    };
    let credential = crate::api::credentials::resolve(&state.store, &body.credential);
    if credential.is_err() {
        push(
            "credential",
            format!(
                "no credential \"{}\"; pick one of the credentials on the Authenticate screen (GET /api/v1/credentials) or add one",
                body.credential
            ),
        );
    }
    for column in body.mapping.keys() {
        if column.contains(',') || column.contains('=') || column.trim().is_empty() {
            push("mapping", format!("column \"{column}\" cannot be saved: a saved mapping's column names may not be empty or contain `,` or `=`; rename the column in the file"));
        }
    }
    let settings = PushSettings {
        object: body.object.clone(),
        key: body.key.clone().unwrap_or_default(),
        mapping: body.mapping.clone().into_iter().collect(),
        include_unmapped: body.include_unmapped,
        on_duplicate: body.on_duplicate.clone(),
        dry_run: true,
        allow_new_attributes: body.allow_new_attributes,
    };
    let opts = settings
        .options()
        .map_err(|e| errors.extend(e.fields().iter().cloned()))
        .ok();
    match (opts, credential) {
        (Some(opts), Ok(credential)) if errors.is_empty() => Ok((
            credential.name,
            SavedConfig {
                object: opts.object.as_str().into(),
                key: opts.key.field().into(),
                mapping: opts.mapping.to_pairs(),
                include_unmapped: opts.include_unmapped,
                allow_new_attributes: body.allow_new_attributes,
                on_duplicate: serde_json::to_value(opts.on_duplicate)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string)),
                description,
                other,
            },
        )),
        _ => Err(errors),
    }
}

fn config_json(config: &SavedConfig) -> ApiResult<serde_json::Value> {
    serde_json::to_value(config).map_err(|e| ApiError::Internal(e.to_string()))
}

#[utoipa::path(get, operation_id = "list_destinations", path = "/api/v1/destinations", tag = "destinations",
    responses((status = 200, body = [DestinationView]), (status = 401, body = Problem)))]
pub(crate) async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<DestinationView>>> {
    Ok(Json(list_views(&state)?))
}

/// Every saved Drift destination, by name.
pub(crate) fn list_views(state: &AppState) -> ApiResult<Vec<DestinationView>> {
    state
        .store
        .list_destinations()?
        .into_iter()
        .filter(|d| d.kind == KIND)
        .map(DestinationView::new)
        .collect()
}

#[utoipa::path(post, operation_id = "create_destination", path = "/api/v1/destinations", tag = "destinations", request_body = CreateDestination,
    responses((status = 201, body = DestinationView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    body: Result<Json<CreateDestination>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(body) = body?;
    let view = save_new(&state, &body)?;
    let location = format!("/api/v1/destinations/{}", view.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response())
}

/// Validate and save a new destination (shared with the UI's "Save as destination").
pub(crate) fn save_new(state: &AppState, body: &CreateDestination) -> ApiResult<DestinationView> {
    let (credential, config) =
        validate(state, body, Default::default()).map_err(ApiError::Validation)?;
    let id =
        state
            .store
            .add_destination(&body.name, KIND, Some(&credential), &config_json(&config)?)?;
    tracing::info!(destination = %body.name.trim(), "data destination saved");
    DestinationView::new(state.store.destination(&id)?)
}

#[utoipa::path(get, operation_id = "get_destination", path = "/api/v1/destinations/{name}", tag = "destinations",
    params(("name" = String, Path, description = "destination name or id")),
    responses((status = 200, body = DestinationView), (status = 404, body = Problem)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<DestinationView>> {
    Ok(Json(DestinationView::new(find(&state, &name)?)?))
}

#[utoipa::path(patch, operation_id = "update_destination", path = "/api/v1/destinations/{name}", tag = "destinations", request_body = UpdateDestination,
    params(("name" = String, Path, description = "destination name or id")),
    responses((status = 200, body = DestinationView), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub(crate) async fn update(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<UpdateDestination>, JsonRejection>,
) -> ApiResult<Json<DestinationView>> {
    let Json(body) = body?;
    let record = find(&state, &name)?;
    let mut other = serde_json::Map::new();
    let current: Option<SavedConfig> = serde_json::from_value(record.config.clone()).ok();
    if let Some(c) = &current {
        other = c.other.clone();
    }
    let current = DestinationView::new(record.clone())?;
    let merged = CreateDestination {
        name: body.name.unwrap_or(current.name),
        description: body.description.or(current.description),
        credential: body.credential.or(current.credential).unwrap_or_default(),
        object: body.object.clone().unwrap_or(current.object),
        // A new object without a new key takes the object's default key.
        key: body.key.or(body.object.is_none().then_some(current.key)),
        mapping: body.mapping.unwrap_or(current.mapping),
        include_unmapped: body.include_unmapped.unwrap_or(current.include_unmapped),
        allow_new_attributes: body
            .allow_new_attributes
            .unwrap_or(current.allow_new_attributes),
        on_duplicate: body.on_duplicate.or(Some(current.on_duplicate)),
    };
    Ok(Json(save_update(&state, &record, &merged, other)?))
}

#[utoipa::path(put, operation_id = "replace_destination", path = "/api/v1/destinations/{name}", tag = "destinations", request_body = CreateDestination,
    params(("name" = String, Path, description = "destination name or id")),
    responses((status = 200, body = DestinationView), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub(crate) async fn replace(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<CreateDestination>, JsonRejection>,
) -> ApiResult<Json<DestinationView>> {
    let Json(body) = body?;
    let record = find(&state, &name)?;
    Ok(Json(save_update(
        &state,
        &record,
        &body,
        Default::default(),
    )?))
}

fn save_update(
    state: &AppState,
    record: &DestinationRecord,
    body: &CreateDestination,
    other: serde_json::Map<String, serde_json::Value>,
) -> ApiResult<DestinationView> {
    let (credential, config) = validate(state, body, other).map_err(ApiError::Validation)?;
    let update = DestinationUpdate {
        name: Some(body.name.clone()),
        credential: Some(credential),
        config: Some(config_json(&config)?),
    };
    DestinationView::new(state.store.update_destination(&record.id, &update)?)
}

#[utoipa::path(delete, operation_id = "delete_destination", path = "/api/v1/destinations/{name}", tag = "destinations",
    params(("name" = String, Path, description = "destination name or id")),
    responses((status = 204), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "a flow writes to it")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let record = find(&state, &name)?;
    state.store.delete_destination(&record.id)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, operation_id = "run_destination", path = "/api/v1/destinations/{name}/runs", tag = "destinations", request_body = RunDestination,
    params(("name" = String, Path, description = "destination name or id")),
    responses((status = 200, body = PushReport, description = "every row has an outcome; see the results file"),
        (status = 404, body = Problem),
        (status = 409, body = Problem, description = "the destination is running already (in this or another process): `run_id` names that run"),
        (status = 422, body = Problem)))]
pub(crate) async fn run(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<RunDestination>, JsonRejection>,
) -> ApiResult<Json<PushReport>> {
    let Json(body) = body?;
    let run = RunSaved {
        dry_run: body.dry_run,
        allow_new_attributes: body.allow_new_attributes,
        edge: flows::check::Edge::Api,
    };
    Ok(Json(run_saved(&state, &name, &body.upload, run).await?))
}

/// How a saved destination is run: a dry run or not, the run's own opt-in to new
/// attributes, and the edge whose fixes errors name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunSaved {
    pub dry_run: bool,
    pub allow_new_attributes: bool,
    pub edge: flows::check::Edge,
}

/// Run saved destination `name` on upload `upload` (shared with the UI's Run button).
pub(crate) async fn run_saved(
    state: &AppState,
    name: &str,
    upload: &str,
    run: RunSaved,
) -> ApiResult<PushReport> {
    let record = find(state, name)?;
    let view = DestinationView::new(record.clone())?;
    let credential = view.credential.clone().ok_or_else(|| {
        ApiError::field(
            "credential",
            format!(
                "destination \"{}\" has no credential (it was deleted); give it one with PATCH /api/v1/destinations/{}",
                view.name, view.id
            ),
        )
    })?;
    let config: SavedConfig = serde_json::from_value(record.config)
        .map_err(|e| ApiError::Internal(format!("destination {}: {e}", view.name)))?;
    let settings = PushSettings {
        object: config.object,
        key: config.key,
        mapping: mapping_pairs(&config.mapping),
        include_unmapped: config.include_unmapped,
        on_duplicate: config.on_duplicate,
        dry_run: run.dry_run,
        allow_new_attributes: config.allow_new_attributes || run.allow_new_attributes,
    };
    super::destinations::run_push(
        state,
        &credential,
        &settings,
        upload,
        Some(view.name),
        run.edge,
    )
    .await
}
