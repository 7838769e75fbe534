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
}

/// A source as a table row / fact list.
struct SourceRow {
    id: String,
    name: String,
    credential: String,
    streams: String,
    mode: String,
    sink: String,
    schedule: String,
}

impl SourceRow {
    fn new(s: SourceView) -> Self {
        SourceRow {
            id: s.id,
            name: s.name,
            credential: s.credential.unwrap_or_else(|| "(none: deleted)".into()),
            streams: s.streams.join(", "),
            mode: s.mode,
            sink: s.sink,
            schedule: s
                .schedule
                .map(|s| s.describe())
                .unwrap_or_else(|| "when started".into()),
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
            .map(|s| SourceRow::new(SourceView::new(s)))
            .collect(),
    }))
}

#[derive(Template)]
#[template(path = "source_new.html")]
struct NewSourcePage {
    nav: &'static str,
    credentials: Vec<store::Credential>,
    streams: Vec<(&'static str, String)>,
    default_sink: String,
}

async fn new_page(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(render(&NewSourcePage {
        nav: "sources",
        credentials: state.store.list_credentials()?,
        streams: source_drift::STREAMS
            .iter()
            .map(|d| (d.name, d.scopes.join(", ")))
            .collect(),
        default_sink: sources::default_sink(&state),
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
    Ok(render(&SourcePage {
        nav: "sources",
        s: SourceRow::new(source),
        runs: runs.into_iter().map(RunRow::new).collect(),
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
    let options = SourceOptions {
        mode: field(&pairs, "mode"),
        sink: field(&pairs, "sink").trim().to_string(),
        schedule,
        realtime: None,
    };
    let credential = field(&pairs, "credential");
    let saved = sources::save_new(
        &state,
        &field(&pairs, "name"),
        &credential,
        &streams,
        &options,
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
