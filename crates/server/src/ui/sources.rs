//! Data source pages: the list, the new data source wizard (Drift -> Authenticate -> streams,
//! mode and sink -> save -> run) and a source's page with Run now and its runs.

use super::runs::RunRow;
use super::{render, with_redirect};
use crate::api::sources::{self, Schedule, SourceOptions, SourceView};
use crate::problem::{ApiError, FieldError};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/sources", get(list))
        .route("/sources/new", get(new_page))
        .route("/sources/{id}", get(show))
        .route("/ui/sources", post(save))
        .route("/ui/sources/{id}/run", post(run_now))
        .route("/sources/{id}/edit", get(edit_page))
        .route("/ui/sources/{id}/edit", post(save_edit))
        .route("/ui/sources/{id}/pause", post(pause))
        .route("/ui/sources/{id}/resume", post(resume))
        .route("/ui/sources/{id}/reset", post(reset))
        .route("/ui/sources/{id}", axum::routing::delete(delete))
        .route("/ui/sources/{id}/preview", get(preview))
}

/// A source as a table row / fact list.
struct SourceRow {
    id: String,
    name: String,
    credential: String,
    streams: String,
    /// The streams one by one (the Reset stream picker).
    stream_list: Vec<String>,
    mode: String,
    sink: String,
    schedule: String,
    paused: bool,
    /// The next scheduled start ([`super::Time`]); `None` without a schedule or paused.
    next_run: Option<super::Time>,
    /// Streams the next run reads in full.
    resets: String,
}

impl SourceRow {
    fn new(s: SourceView) -> Self {
        let stream_list = if s.streams.iter().any(|n| n == "all") {
            source_drift::STREAMS
                .iter()
                .map(|d| d.name.to_string())
                .collect()
        } else {
            s.streams.clone()
        };
        SourceRow {
            id: s.id,
            name: s.name,
            credential: s.credential.unwrap_or_else(|| "(none: deleted)".into()),
            streams: s.streams.join(", "),
            stream_list,
            mode: s.mode,
            sink: s.sink,
            schedule: s
                .schedule
                .map(|s| s.describe())
                .unwrap_or_else(|| "when started".into()),
            paused: s.paused,
            next_run: s.next_run_at.map(super::Time::at),
            resets: s.reset_streams.join(", "),
        }
    }
}

#[derive(Template)]
#[template(path = "sources.html")]
struct SourcesPage {
    nav: &'static str,
    sources: Vec<SourceRow>,
}

async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let sources = state.store.list_sources()?;
    Ok(render(&SourcesPage {
        nav: "sources",
        sources: sources
            .into_iter()
            .map(|s| SourceRow::new(SourceView::of(&state.store, s)))
            .collect(),
    }))
}

#[derive(Template)]
#[template(path = "source_new.html")]
struct NewSourcePage {
    nav: &'static str,
    credentials: Vec<store::Credential>,
    streams: Vec<(String, String)>,
    sink: super::sink_form::SinkForm,
    /// The source being edited ("" when new): its stored sink password can be tested.
    source_id: String,
}

async fn new_page(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(render(&NewSourcePage {
        nav: "sources",
        credentials: state.store.list_credentials()?,
        streams: source_drift::selectable_streams(),
        sink: super::sink_form::SinkForm::of(&sources::default_sink(&state)),
        source_id: String::new(),
    }))
}

#[derive(Template)]
#[template(path = "source.html")]
struct SourcePage {
    nav: &'static str,
    s: SourceRow,
    runs: Vec<RunRow>,
    /// The run in progress (in any process), if any: Run now is disabled meanwhile.
    running: Option<String>,
    /// The records-per-run chart (SVG).
    chart: String,
    /// Real time: the webhook URL to paste into Drift, events in the last hour, lag p95.
    realtime: Option<RealtimeRow>,
}

/// The real-time part of a source's page.
struct RealtimeRow {
    webhook_url: String,
    events_last_hour: u64,
    lag: String,
}

async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let source = sources::view(&state, state.store.source(&id)?);
    let realtime = match (&source.webhook_url, &source.realtime) {
        (Some(url), Some(rt)) => Some(RealtimeRow {
            webhook_url: url.clone(),
            events_last_hour: rt.events_last_hour,
            lag: rt
                .lag_ms_p95
                .map_or_else(|| "no event yet".to_string(), |ms| format!("{ms} ms (p95)")),
        }),
        _ => None,
    };
    let runs = crate::api::runs::list_views(&state, Some(&source.name), 20)?;
    let running = state
        .store
        .running_in(&flows::single::source_key(&source.id))?;
    let runs: Vec<RunRow> = runs.into_iter().map(RunRow::new).collect();
    Ok(render(&SourcePage {
        nav: "sources",
        s: SourceRow::new(source),
        chart: super::runs::records_chart(&runs),
        runs,
        running,
        realtime,
    }))
}

/// The wizard's fields (`streams` repeats, so the form is read as pairs).
fn field(pairs: &[(String, String)], name: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

const FIELDS: [&str; 6] = ["name", "credential", "streams", "mode", "sink", "schedule"];

/// Save the wizard; errors go to the field slots, success redirects to the source's page
/// (or starts a run and goes to the run's page).
async fn save(
    State(state): State<AppState>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let streams: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "streams")
        .map(|(_, v)| v.clone())
        .collect();
    let schedule = match schedule_of(&pairs) {
        Ok(s) => s,
        Err(e) => return Ok(feedback(vec![e])),
    };
    let sink = match super::sink_form::compose(&pairs, false) {
        Some(Ok(sink)) => sink,
        Some(Err(e)) => return Ok(feedback(vec![e])),
        None => field(&pairs, "sink").trim().to_string(),
    };
    let options = SourceOptions {
        mode: field(&pairs, "mode"),
        sink,
        schedule,
        ..Default::default()
    };
    let credential = field(&pairs, "credential");
    let saved = sources::save_new(
        &state,
        &field(&pairs, "name"),
        &credential,
        &streams,
        &options,
        flows::check::Edge::Web,
    )
    .await;
    let source = match saved {
        Ok(s) => s,
        Err(ApiError::Validation(errors)) => return Ok(feedback(errors)),
        Err(ApiError::Duplicate(message)) => {
            return Ok(feedback(vec![FieldError {
                field: "name".into(),
                message,
            }]))
        }
        Err(e) => return Err(e),
    };
    if field(&pairs, "then") == "run" {
        let run = sources::start_source(&state, &source)?;
        return Ok(with_redirect(&format!("/runs/{run}")));
    }
    Ok(with_redirect(&format!("/sources/{}", source.id)))
}

/// The schedule choice of the form: `schedule` = `none` (or absent), `every` (with
/// `every_minutes`) or `cron` (with `cron`).
fn schedule_of(pairs: &[(String, String)]) -> Result<Option<Schedule>, FieldError> {
    let every = field(pairs, "every_minutes");
    let every = every.trim();
    let cron = field(pairs, "cron");
    let kind = field(pairs, "schedule");
    match kind.as_str() {
        "every" | "" if !every.is_empty() => match every.parse::<u32>() {
            Ok(n) => Ok(Some(Schedule::every(n))),
            Err(_) => Err(FieldError {
                field: "schedule".into(),
                message: format!(
                    "\"{every}\" is not a number of minutes; use a whole number such as 60"
                ),
            }),
        },
        "every" => Err(FieldError {
            field: "schedule".into(),
            message: "give the number of minutes between runs, e.g. 60".into(),
        }),
        "cron" => Ok(Some(Schedule::cron(&cron))),
        _ => Ok(None),
    }
}

fn feedback(errors: Vec<FieldError>) -> Response {
    let slots: Vec<FieldError> = FIELDS
        .iter()
        .map(|f| FieldError {
            field: f.to_string(),
            message: errors
                .iter()
                .filter(|e| e.field == *f || e.field.starts_with(&format!("{f}.")))
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; "),
        })
        .collect();
    render(&super::credentials::Feedback::errors_only(slots))
}

async fn run_now(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let source = SourceView::new(state.store.source(&id)?);
    match sources::start_source(&state, &source) {
        Ok(run) => Ok(with_redirect(&format!("/runs/{run}"))),
        Err(ApiError::Validation(errors)) => {
            let message = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            Ok(render(&super::credentials::Feedback::errors_only(vec![
                FieldError {
                    field: "run".into(),
                    message,
                },
            ])))
        }
        Err(ApiError::AlreadyRunning { detail, .. }) => {
            Ok(render(&super::credentials::Feedback::errors_only(vec![
                FieldError {
                    field: "run".into(),
                    message: detail,
                },
            ])))
        }
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "source_edit.html")]
struct EditSourcePage {
    nav: &'static str,
    sink: super::sink_form::SinkForm,
    source_id: String,
    s: SourceView,
    credentials: Vec<store::Credential>,
    streams: Vec<(String, String)>,
    every: String,
    cron: String,
}

impl EditSourcePage {
    fn has_stream(&self, name: &str) -> bool {
        self.s.streams.iter().any(|s| s == name || s == "all")
    }

    fn schedule_kind(&self) -> &'static str {
        match &self.s.schedule {
            Some(s) if s.every_minutes.is_some() => "every",
            Some(_) => "cron",
            None => "none",
        }
    }
}

async fn edit_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let s = SourceView::new(state.store.source(&id)?);
    let every = s
        .schedule
        .as_ref()
        .and_then(|s| s.every_minutes)
        .map(|n| n.to_string())
        .unwrap_or_default();
    let cron = s
        .schedule
        .as_ref()
        .and_then(|s| s.cron.clone())
        .unwrap_or_default();
    Ok(render(&EditSourcePage {
        nav: "sources",
        sink: super::sink_form::SinkForm::of(&s.sink),
        source_id: s.id.clone(),
        s,
        credentials: state.store.list_credentials()?,
        streams: source_drift::selectable_streams(),
        every,
        cron,
    }))
}

/// Save the Edit page: errors go to the field slots; success goes back to the source's page.
async fn save_edit(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let streams: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "streams")
        .map(|(_, v)| v.clone())
        .collect();
    let schedule = match schedule_of(&pairs) {
        Ok(s) => s,
        Err(e) => return Ok(feedback(vec![e])),
    };
    let sink = match super::sink_form::compose(&pairs, true) {
        Some(Ok(sink)) => sink,
        Some(Err(e)) => return Ok(feedback(vec![e])),
        None => field(&pairs, "sink").trim().to_string(),
    };
    let body = sources::UpdateSource {
        name: Some(field(&pairs, "name")),
        credential: Some(field(&pairs, "credential")),
        streams: Some(streams),
        mode: Some(field(&pairs, "mode")),
        sink: Some(sink),
        schedule: Some(schedule),
        paused: None,
        schema_contract: None,
        history: None,
        realtime: None,
    };
    match sources::apply_update(&state, &id, body, flows::check::Edge::Web).await {
        Ok(view) => Ok(with_redirect(&format!("/sources/{}", view.id))),
        Err(ApiError::Validation(errors)) => Ok(feedback(errors)),
        Err(ApiError::Duplicate(message)) => Ok(feedback(vec![FieldError {
            field: "name".into(),
            message,
        }])),
        Err(e) => Err(e),
    }
}

async fn pause(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let source = flows::sources::set_paused(&state.store, &id, true)?;
    Ok(with_redirect(&format!("/sources/{}", source.id)))
}

async fn resume(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let source = flows::sources::set_paused(&state.store, &id, false)?;
    Ok(with_redirect(&format!("/sources/{}", source.id)))
}

#[derive(serde::Deserialize)]
struct ResetForm {
    stream: String,
}

/// Reset one stream: its next run reads it in full.
async fn reset(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(f): Form<ResetForm>,
) -> Result<Response, ApiError> {
    match flows::sources::reset_stream(&state.store, &id, &f.stream).map_err(ApiError::from) {
        Ok(source) => Ok(with_redirect(&format!("/sources/{}", source.id))),
        Err(ApiError::Validation(errors)) => {
            let message = errors
                .into_iter()
                .map(|e| e.message)
                .collect::<Vec<_>>()
                .join("; ");
            Ok(render(&super::credentials::Feedback::errors_only(vec![
                FieldError {
                    field: "reset".into(),
                    message,
                },
            ])))
        }
        Err(e) => Err(e),
    }
}

/// Delete the source (its runs stay in the history) and go back to the list.
async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let source = state.store.delete_source(&id)?;
    tracing::info!(source = %source.name, "data source deleted from the web UI");
    Ok(with_redirect("/sources"))
}

/// Rows a preview shows.
const PREVIEW_ROWS: usize = 20;

#[derive(Template)]
#[template(path = "source_preview.html")]
struct PreviewFragment {
    stream: String,
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
    error: String,
}

#[derive(serde::Deserialize)]
struct PreviewQuery {
    #[serde(default)]
    stream: String,
}

/// The last rows of a stream in the source's sink (SQLite, PostgreSQL).
async fn preview(
    State(state): State<AppState>,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<PreviewQuery>,
) -> Result<Response, ApiError> {
    let found = flows::sources::preview(&state.store, &id, &q.stream, PREVIEW_ROWS)
        .await
        .map_err(ApiError::from);
    let fragment = match found {
        Ok(p) => PreviewFragment {
            stream: q.stream,
            columns: p.columns,
            rows: p
                .rows
                .into_iter()
                .map(|r| {
                    r.into_iter()
                        .map(|v| v.unwrap_or_else(|| "∅".into()))
                        .collect()
                })
                .collect(),
            error: String::new(),
        },
        Err(ApiError::Validation(errors)) => PreviewFragment {
            stream: q.stream,
            columns: Vec::new(),
            rows: Vec::new(),
            error: errors
                .into_iter()
                .map(|e| e.message)
                .collect::<Vec<_>>()
                .join("; "),
        },
        Err(ApiError::Unavailable(message)) => PreviewFragment {
            stream: q.stream,
            columns: Vec::new(),
            rows: Vec::new(),
            error: message,
        },
        Err(e) => return Err(e),
    };
    Ok(render(&fragment))
}
