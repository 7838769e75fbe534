//! Saved data destinations in the web UI: the list on the destinations page (Run, Delete),
//! "Save as destination" in the upload/map flow, and a saved destination's run page (upload a
//! CSV -> dry run preview -> run -> download the results file).

use super::credentials::Feedback;
use super::destinations::{
    append, confirm_response, errors, file_bytes, render_string, report_response, Confirm,
    PUSH_FIELDS,
};
use super::render;
use crate::api::saved_destinations::{self as api, CreateDestination, DestinationView};
use crate::problem::{ApiError, FieldError};
use crate::AppState;
use askama::Template;
use axum::extract::{Multipart, Path, State};
use axum::http::HeaderValue;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Form, Router};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/destinations/saved/{id}", get(run_page))
        .route("/ui/destinations/save", post(save))
        .route("/ui/destinations/saved/{id}", delete(remove))
        .route(
            "/ui/destinations/saved/{id}/upload",
            post(upload).layer(axum::extract::DefaultBodyLimit::max(
                crate::api::destinations::UPLOAD_LIMIT_BYTES,
            )),
        )
        .route("/ui/destinations/saved/{id}/run", post(run))
}

/// A saved destination as a table row.
pub(crate) struct SavedRow {
    pub id: String,
    pub name: String,
    pub object: String,
    pub key: String,
    pub credential: String,
    pub mapping: String,
}

impl From<DestinationView> for SavedRow {
    fn from(d: DestinationView) -> Self {
        SavedRow {
            id: d.id,
            name: d.name,
            object: d.object,
            key: d.key,
            credential: d.credential.unwrap_or_else(|| "(none: deleted)".into()),
            mapping: d
                .mapping
                .iter()
                .map(|(c, a)| format!("{c} → {a}"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// Every saved Drift destination as rows.
pub(crate) fn saved_rows(state: &AppState) -> Result<Vec<SavedRow>, ApiError> {
    Ok(api::list_views(state)?
        .into_iter()
        .map(SavedRow::from)
        .collect())
}

#[derive(Template)]
#[template(path = "dest_saved_list.html")]
struct SavedList {
    saved: Vec<SavedRow>,
    oob: bool,
}

#[derive(Template)]
#[template(path = "dest_saved_msg.html")]
struct SavedMessage {
    name: String,
}

/// The field slots of "Save as destination".
const SAVE_FIELDS: [&str; 5] = ["save_name", "credential", "object", "key", "mapping"];

fn field(pairs: &[(String, String)], name: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// Save the new-destination form (credential, object, key, mapping) under `save_name`.
async fn save(
    State(state): State<AppState>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let key = field(&pairs, "key");
    let body = CreateDestination {
        name: field(&pairs, "save_name"),
        description: None,
        credential: field(&pairs, "credential"),
        object: field(&pairs, "object"),
        key: (!key.is_empty()).then_some(key),
        mapping: super::destinations::mapping_of(&pairs)
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect(),
        include_unmapped: false,
        allow_new_attributes: field(&pairs, "allow_new_attributes") == "on",
        on_duplicate: None,
    };
    let rename = |e: FieldError| FieldError {
        field: if e.field == "name" {
            "save_name".into()
        } else {
            e.field
        },
        message: e.message,
    };
    let view = match api::save_new(&state, &body) {
        Ok(v) => v,
        Err(ApiError::Validation(e)) => {
            return Ok(errors(&SAVE_FIELDS, e.into_iter().map(rename).collect()))
        }
        Err(ApiError::Duplicate(message)) => {
            return Ok(errors(
                &SAVE_FIELDS,
                vec![FieldError {
                    field: "save_name".into(),
                    message,
                }],
            ))
        }
        Err(e) => return Err(e),
    };
    let mut response = render(&SavedMessage { name: view.name });
    let list = render_string(&SavedList {
        saved: saved_rows(&state)?,
        oob: true,
    });
    let clear = render_string(&Feedback::errors_only(
        SAVE_FIELDS
            .iter()
            .map(|f| FieldError {
                field: f.to_string(),
                message: String::new(),
            })
            .collect(),
    ));
    append(&mut response, format!("{list}{clear}")).await;
    Ok(response)
}

/// Delete a saved destination: the row goes away; a refusal (a flow uses it) shows in the
/// list's error slot and the row stays.
async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let record = api::find(&state, &id)?;
    match state.store.delete_destination(&record.id) {
        Ok(_) => Ok(Html("").into_response()),
        Err(e @ store::StoreError::UsedBy { .. }) => {
            let mut response = render(&Feedback::errors_only(vec![FieldError {
                field: "delete".into(),
                message: e.to_string(),
            }]));
            response
                .headers_mut()
                .insert("hx-reswap", HeaderValue::from_static("none"));
            Ok(response)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "dest_saved_run.html")]
struct RunPage {
    nav: &'static str,
    d: SavedRow,
}

async fn run_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let view = DestinationView::new(api::find(&state, &id)?)?;
    Ok(render(&RunPage {
        nav: "destinations",
        d: view.into(),
    }))
}

#[derive(Template)]
#[template(path = "dest_saved_upload.html")]
struct UploadFragment {
    id: String,
    upload: String,
    columns: String,
}

async fn upload(
    State(state): State<AppState>,
    Path(id): Path<String>,
    multipart: Multipart,
) -> Result<Response, ApiError> {
    let record = api::find(&state, &id)?;
    let bytes = match file_bytes(multipart).await {
        Ok(b) => b,
        Err(ApiError::Validation(e)) => return Ok(errors(&["file"], e)),
        Err(e) => return Err(e),
    };
    match flows::uploads::save_upload(state.store.data_dir(), &bytes).map_err(ApiError::from) {
        Ok((upload, columns)) => {
            let mut response = render(&UploadFragment {
                id: record.id,
                upload,
                columns: columns.join(", "),
            });
            let clear = render_string(&Feedback::errors_only(vec![FieldError {
                field: "file".into(),
                message: String::new(),
            }]));
            append(&mut response, clear).await;
            Ok(response)
        }
        Err(ApiError::Validation(e)) => Ok(errors(&["file"], e)),
        Err(e) => Err(e),
    }
}

async fn run(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let dry_run = field(&pairs, "dry_run") == "1";
    let confirmed = field(&pairs, "confirmed") == "1";
    let run = api::RunSaved {
        // Run first does a dry run and shows its counts; it writes only after **Write to
        // Drift** (as the push page does).
        dry_run: dry_run || !confirmed,
        allow_new_attributes: field(&pairs, "allow_new_attributes") == "on",
        edge: flows::check::Edge::Web,
    };
    match api::run_saved(&state, &id, &field(&pairs, "upload"), run).await {
        Ok(report) if !dry_run && !confirmed => {
            let d = DestinationView::new(api::find(&state, &id)?)?;
            Ok(confirm_response(
                report,
                d.credential.as_deref().unwrap_or_default(),
                &d.object,
                Confirm {
                    post_url: format!("/ui/destinations/saved/{}/run", d.id),
                    include: "#saved-run-form",
                },
            )
            .await)
        }
        Ok(report) => Ok(report_response(report).await),
        Err(ApiError::Validation(e)) => Ok(errors(&PUSH_FIELDS, e)),
        Err(e) => Err(e),
    }
}
