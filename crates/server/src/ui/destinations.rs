//! The new data destination page: Drift -> Authenticate -> object and key -> upload a CSV,
//! see its columns, map them -> dry run preview -> run -> download the results file.

use super::credentials::Feedback;
use super::render;
use super::saved_destinations::{saved_rows, SavedRow};
use crate::api::destinations::{OutcomeRow, PushReport};
use crate::problem::{ApiError, FieldError};
use crate::AppState;
use askama::Template;
use axum::extract::{Multipart, Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use flows::PushSettings;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/destinations", get(page))
        .route(
            "/ui/destinations/upload",
            post(upload).layer(axum::extract::DefaultBodyLimit::max(
                crate::api::destinations::UPLOAD_LIMIT_BYTES,
            )),
        )
        .route("/ui/destinations/push", post(push))
        .route("/ui/destinations/keys", get(keys))
        .route("/ui/destinations/results/{id}", get(results))
}

#[derive(Template)]
#[template(path = "destination_new.html")]
struct DestinationPage {
    nav: &'static str,
    credentials: Vec<store::Credential>,
    saved: Vec<SavedRow>,
    oob: bool,
}

async fn page(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(render(&DestinationPage {
        nav: "destinations",
        credentials: state.store.list_credentials()?,
        saved: saved_rows(&state)?,
        oob: false,
    }))
}

#[derive(Template)]
#[template(path = "dest_mapping.html")]
struct MappingFragment {
    upload: String,
    columns: Vec<MapRow>,
    /// What a column can be mapped to (Drift's attributes for the object).
    choices: Vec<flows::attributes::AttributeChoice>,
    /// Why custom attributes are missing from `choices` ("" when they are there).
    note: String,
    object: String,
}

/// One column of the mapping.
struct MapRow {
    column: String,
    /// The pre-selected attribute: one of the choices matching the column, else "" (left
    /// out): never a name Drift does not have.
    selected: String,
    /// The name a new custom attribute would get (`full name` -> `fullName`).
    new_name: String,
}

#[derive(Template)]
#[template(path = "dest_keys.html")]
struct KeyOptions {
    keys: Vec<&'static str>,
}

#[derive(serde::Deserialize)]
struct KeysQuery {
    #[serde(default)]
    object: String,
}

/// The "Match rows on" options of an object: only its own keys, the default first.
async fn keys(axum::extract::Query(q): axum::extract::Query<KeysQuery>) -> Response {
    render(&KeyOptions {
        keys: flows::attributes::keys_of(&q.object).unwrap_or_default(),
    })
}

/// The `map:COLUMN` fields of a push form as `column -> attribute`: a picked attribute as
/// is, `new:NAME` (a new custom attribute) as `NAME`, "" for a column left out.
pub(super) fn mapping_of(pairs: &[(String, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .filter_map(|(k, v)| {
            let column = k.strip_prefix("map:")?;
            let value = v.trim();
            let value = value.strip_prefix("new:").unwrap_or(value);
            Some((column.to_string(), value.to_string()))
        })
        .collect()
}

/// Suggest an attribute for a column: its name without spaces, in camelCase (`full name` ->
/// `fullName`); the user edits it.
fn suggest(column: &str) -> String {
    let mut out = String::new();
    for (i, word) in column.split_whitespace().enumerate() {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            if i == 0 {
                out.push_str(word);
            } else {
                out.extend(first.to_uppercase());
                out.push_str(chars.as_str());
            }
        }
    }
    out
}

/// Field-error slots for `fields` (each set, empty when valid) as out-of-band swaps.
pub(super) fn errors(fields: &[&str], errors: Vec<FieldError>) -> Response {
    let slots = fields
        .iter()
        .map(|f| FieldError {
            field: f.to_string(),
            message: errors
                .iter()
                .filter(|e| e.field == *f)
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; "),
        })
        .collect();
    render(&Feedback::errors_only(slots))
}

/// The bytes of the `file` field of a multipart upload. A file over the upload limit is a
/// field error on `file` naming the limit (20 MiB), shown in the form.
pub(super) async fn file_bytes(mut multipart: Multipart) -> Result<Vec<u8>, ApiError> {
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::field(
                "file",
                crate::problem::too_large_detail(crate::api::destinations::UPLOAD_LIMIT_BYTES),
            )
        } else {
            ApiError::BadRequest(format!("the upload cannot be read: {e}"))
        }
    };
    let mut bytes = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        if field.name() == Some("file") {
            bytes = field.bytes().await.map_err(unreadable)?.to_vec();
        }
    }
    Ok(bytes)
}

/// The fields of the upload form: the file's bytes, and the credential and object of the
/// destination form (included by htmx) to offer that object's Drift attributes.
async fn upload_fields(mut multipart: Multipart) -> Result<(Vec<u8>, String, String), ApiError> {
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::field(
                "file",
                crate::problem::too_large_detail(crate::api::destinations::UPLOAD_LIMIT_BYTES),
            )
        } else {
            ApiError::BadRequest(format!("the upload cannot be read: {e}"))
        }
    };
    let (mut bytes, mut credential, mut object) = (Vec::new(), String::new(), String::new());
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        match field.name() {
            Some("file") => bytes = field.bytes().await.map_err(unreadable)?.to_vec(),
            Some("credential") => credential = field.text().await.map_err(unreadable)?,
            Some("object") => object = field.text().await.map_err(unreadable)?,
            _ => {}
        }
    }
    Ok((bytes, credential, object))
}

async fn upload(State(state): State<AppState>, multipart: Multipart) -> Result<Response, ApiError> {
    let (bytes, credential, object) = match upload_fields(multipart).await {
        Ok(b) => b,
        Err(ApiError::Validation(e)) => return Ok(errors(&["file"], e)),
        Err(e) => return Err(e),
    };
    let object = if object.is_empty() {
        "contacts".to_string()
    } else {
        object
    };
    let (choices, note) = match flows::attributes::attribute_choices(
        &state.store,
        &credential,
        &object,
        state.addresses(),
    )
    .await
    .map_err(ApiError::from)
    {
        Ok(found) => found,
        Err(ApiError::Validation(e)) => return Ok(errors(&PUSH_FIELDS, e)),
        Err(ApiError::NotFound(message)) => {
            return Ok(errors(
                &PUSH_FIELDS,
                vec![FieldError {
                    field: "credential".into(),
                    message,
                }],
            ))
        }
        Err(e) => return Err(e),
    };
    match flows::uploads::save_upload(state.store.data_dir(), &bytes).map_err(ApiError::from) {
        Ok((upload, columns)) => {
            let columns = columns
                .into_iter()
                .map(|c| MapRow {
                    selected: flows::attributes::suggested(&c, &choices)
                        .map(|a| a.name.clone())
                        .unwrap_or_default(),
                    new_name: suggest(&c),
                    column: c,
                })
                .collect();
            let mut response = render(&MappingFragment {
                upload,
                columns,
                choices,
                note: note.unwrap_or_default(),
                object,
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

pub(super) fn render_string(t: &impl Template) -> String {
    t.render().unwrap_or_default()
}

/// Append out-of-band HTML to a rendered response.
pub(super) async fn append(response: &mut Response, extra: String) {
    let body = std::mem::take(response.body_mut());
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let mut html = String::from_utf8_lossy(&bytes).into_owned();
    html.push_str(&extra);
    *response.body_mut() = axum::body::Body::from(html);
    response
        .headers_mut()
        .remove(axum::http::header::CONTENT_LENGTH);
}

#[derive(Template)]
#[template(path = "dest_result.html")]
struct ResultFragment {
    r: PushReport,
    counts: String,
    ignored: String,
    stopped: String,
    rows: Vec<RowView>,
}

struct RowView {
    row: u64,
    key: String,
    outcome: String,
    drift_id: String,
    reason: String,
}

impl From<&OutcomeRow> for RowView {
    fn from(o: &OutcomeRow) -> Self {
        RowView {
            row: o.row,
            key: o.key.clone().unwrap_or_default(),
            outcome: o.outcome.clone(),
            drift_id: o.drift_id.clone().unwrap_or_default(),
            reason: o.reason.clone().unwrap_or_default(),
        }
    }
}

/// Field slots of a push form.
pub(super) const PUSH_FIELDS: [&str; 6] =
    ["credential", "object", "key", "upload", "mapping", "file"];

#[derive(Template)]
#[template(path = "dest_confirm.html")]
struct ConfirmFragment {
    rows: u64,
    /// `2 would be created, 1 would be rejected`.
    counts: String,
    object: String,
    credential: String,
    run_id: String,
    /// Where **Write to Drift** posts (the push page's or the saved destination's run).
    post_url: String,
    /// The forms whose fields it sends again (`hx-include`).
    include: &'static str,
}

async fn push(
    State(state): State<AppState>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (credential, upload) = (get("credential"), get("upload"));
    let mapping: std::collections::BTreeMap<String, String> =
        mapping_of(&pairs).into_iter().collect();
    let dry_run = get("dry_run") == "1";
    let confirmed = get("confirmed") == "1";
    let settings = PushSettings {
        object: get("object"),
        key: get("key"),
        mapping: mapping.into_iter().collect(),
        include_unmapped: false,
        on_duplicate: None,
        // A real run comes only after the user has seen what a dry run would do.
        dry_run: dry_run || !confirmed,
        // A target Drift does not list would create a new custom attribute: only when
        // asked (flows refuses it otherwise, dry runs included, naming this checkbox).
        allow_new_attributes: get("allow_new_attributes") == "on",
    };
    let run = crate::api::destinations::run_push(
        &state,
        &credential,
        &settings,
        &upload,
        None,
        flows::check::Edge::Web,
    )
    .await;
    match run {
        Ok(report) if !dry_run && !confirmed => Ok(confirm_response(
            report,
            &credential,
            &get("object"),
            Confirm {
                post_url: "/ui/destinations/push".into(),
                include: "#dest-form, #mapping",
            },
        )
        .await),
        Ok(report) => Ok(report_response(report).await),
        Err(ApiError::Validation(e)) => Ok(errors(&PUSH_FIELDS, e)),
        Err(e) => Err(e),
    }
}

/// Where the **Write to Drift** button of a confirmation step posts, and what it sends.
pub(super) struct Confirm {
    /// The route that runs for real (with `dry_run=0`, `confirmed=1`).
    pub post_url: String,
    /// The forms whose fields it sends again (`hx-include`).
    pub include: &'static str,
}

/// The confirmation step before a real run: what the dry run just found, and the button
/// that writes to Drift (the push page's and a saved destination's Run).
pub(super) async fn confirm_response(
    report: PushReport,
    credential: &str,
    object: &str,
    confirm: Confirm,
) -> Response {
    let counts = report
        .counts
        .iter()
        .filter(|(_, v)| **v > 0)
        .map(|(k, v)| format!("{v} would be {k}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut response = render(&ConfirmFragment {
        rows: report.rows,
        counts: if counts.is_empty() {
            "nothing would change".into()
        } else {
            counts
        },
        object: object.to_string(),
        credential: credential.to_string(),
        run_id: report.run_id,
        post_url: confirm.post_url,
        include: confirm.include,
    });
    append(
        &mut response,
        render_string(&Feedback::errors_only(
            PUSH_FIELDS
                .iter()
                .map(|f| FieldError {
                    field: f.to_string(),
                    message: String::new(),
                })
                .collect(),
        )),
    )
    .await;
    response
}

/// The result fragment of a push (counts, warnings, preview rows, results link), clearing the
/// field-error slots.
pub(super) async fn report_response(report: PushReport) -> Response {
    let counts = if report.counts.is_empty() {
        "no rows".to_string()
    } else {
        let verb = if report.dry_run { "would be " } else { "" };
        let parts: Vec<String> = report
            .counts
            .iter()
            .map(|(k, v)| format!("{v} {verb}{k}"))
            .collect();
        format!(
            "{} rows: {}; {} Drift requests",
            report.rows,
            parts.join(", "),
            report.requests
        )
    };
    let fragment = ResultFragment {
        counts,
        ignored: report.ignored_columns.join(", "),
        stopped: report.stopped.clone().unwrap_or_default(),
        rows: report.preview.iter().map(RowView::from).collect(),
        r: report,
    };
    let mut response = render(&fragment);
    append(
        &mut response,
        render_string(&Feedback::errors_only(
            PUSH_FIELDS
                .iter()
                .map(|f| FieldError {
                    field: f.to_string(),
                    message: String::new(),
                })
                .collect(),
        )),
    )
    .await;
    response
}

async fn results(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    crate::api::destinations::results_file(&state, &id)
}
