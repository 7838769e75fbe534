//! The Alerts page: notification channels (list, add, send a test, delete), the same as
//! `/api/v1/alerts` and `driftbridge alerts`. Plain forms posting back to the page (no
//! htmx needed); the webhook URL is write-only (shown masked).

use super::render;
use crate::problem::ApiError;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use secrecy::SecretString;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/alerts", get(page).post(add))
        .route("/alerts/{id}/test", post(test))
        .route("/alerts/{id}/delete", post(remove))
}

#[derive(Template, Default)]
#[template(path = "alerts.html")]
struct AlertsPage {
    nav: &'static str,
    channels: Vec<store::NotificationChannel>,
    events: Vec<&'static str>,
    message: String,
    name: String,
    error_name: Option<String>,
    error_url: Option<String>,
    error_other: Option<String>,
}

fn base(state: &AppState, message: String) -> Result<AlertsPage, ApiError> {
    Ok(AlertsPage {
        nav: "alerts",
        channels: state.store.list_notification_channels()?,
        events: flows::alerts::EVENTS.to_vec(),
        message,
        ..AlertsPage::default()
    })
}

async fn page(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(render(&base(&state, String::new())?))
}

async fn add(
    State(state): State<AppState>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let field = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let new = flows::alerts::NewChannel {
        name: field("name"),
        url: SecretString::from(field("url")),
        format: Some(field("format")),
        events: pairs
            .iter()
            .filter(|(k, _)| k == "events")
            .map(|(_, v)| v.clone())
            .collect(),
    };
    if new.events.is_empty() {
        let mut page = base(&state, String::new())?;
        page.name = new.name;
        page.error_other = Some("tick at least one event".into());
        return Ok(render(&page));
    }
    match flows::alerts::add(&state.store, state.addresses(), &new) {
        Ok(c) => Ok(render(&base(
            &state,
            format!("Channel \"{}\" added. Send it a test to check it.", c.name),
        )?)),
        Err(e) => {
            let mut page = base(&state, String::new())?;
            page.name = new.name;
            if e.fields().is_empty() {
                page.error_name = Some(e.message().to_string());
            }
            for f in e.fields() {
                match f.field.as_str() {
                    "name" => page.error_name = Some(f.message.clone()),
                    "url" => page.error_url = Some(f.message.clone()),
                    _ => page.error_other = Some(f.message.clone()),
                }
            }
            Ok(render(&page))
        }
    }
}

async fn test(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let message = match flows::alerts::test(&state.store, state.addresses(), &id).await {
        Ok(c) => format!("Test alert delivered to \"{}\".", c.name),
        Err(e) => e.message().to_string(),
    };
    Ok(render(&base(&state, message)?))
}

async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let c = state.store.delete_notification_channel(&id)?;
    Ok(render(&base(
        &state,
        format!("Channel \"{}\" deleted.", c.name),
    )?))
}
