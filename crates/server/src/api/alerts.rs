//! `/api/v1/alerts`: notification channels (webhooks) told when a run fails, a data source
//! recovers, Drift rejects a credential or a run rejects records ([`flows::alerts`]). The
//! webhook URL is write-only: answers show `url_mask`. Internal addresses are refused unless
//! the server runs with `--allow-private-base-urls` (as for Drift base URLs).

use crate::problem::{ApiResult, Problem};
use crate::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use store::NotificationChannel;
use utoipa::ToSchema;

/// A notification channel as the API shows it. Timestamps: epoch ms.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertChannelView {
    /// Stable id, `ntf_…`.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// `json` (the alert as JSON) or `slack` (`{"text": ...}`).
    pub format: String,
    /// Events it receives: `run_failed`, `run_recovered`, `credential_failed`,
    /// `records_rejected`.
    pub events: Vec<String>,
    /// The webhook URL, only scheme and host shown: `https://hooks.slack.com/••••`.
    pub url_mask: String,
    /// Creation time.
    pub created_at: i64,
    /// Last change time.
    pub updated_at: i64,
}

impl From<NotificationChannel> for AlertChannelView {
    fn from(c: NotificationChannel) -> Self {
        AlertChannelView {
            id: c.id,
            name: c.name,
            format: c.format,
            events: c.events,
            url_mask: c.url_mask,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// Body of `POST /api/v1/alerts`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAlertChannel {
    /// Unique name, 1-100 characters.
    pub name: String,
    /// Webhook URL, http(s) (write-only, encrypted at rest).
    #[schema(value_type = String)]
    pub url: SecretString,
    /// `json` (default) or `slack`.
    #[serde(default)]
    pub format: Option<String>,
    /// Events; default all.
    #[serde(default)]
    pub events: Vec<String>,
}

/// Answer of `POST /api/v1/alerts/{id}/test`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertTestResult {
    /// Always `true` (a failed delivery is a 503 problem).
    pub delivered: bool,
    /// The channel.
    pub channel: AlertChannelView,
}

/// Routes under `/api/v1/alerts`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/alerts", get(list).post(create))
        .route("/alerts/{id}", delete(remove))
        .route("/alerts/{id}/test", post(test))
}

#[utoipa::path(get, operation_id = "list_alert_channels", path = "/api/v1/alerts", tag = "alerts",
    responses((status = 200, body = [AlertChannelView]), (status = 401, body = Problem)))]
pub(crate) async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<AlertChannelView>>> {
    Ok(Json(
        state
            .store
            .list_notification_channels()?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

#[utoipa::path(post, operation_id = "create_alert_channel", path = "/api/v1/alerts", tag = "alerts", request_body = CreateAlertChannel,
    responses((status = 201, body = AlertChannelView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    body: Result<Json<CreateAlertChannel>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(body) = body?;
    let channel = flows::alerts::add(
        &state.store,
        state.addresses(),
        &flows::alerts::NewChannel {
            name: body.name,
            url: body.url,
            format: body.format,
            events: body.events,
        },
    )?;
    let view = AlertChannelView::from(channel);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/alerts/{}", view.id))],
        Json(view),
    )
        .into_response())
}

#[utoipa::path(delete, operation_id = "delete_alert_channel", path = "/api/v1/alerts/{id}", tag = "alerts",
    params(("id" = String, Path, description = "channel id or name")),
    responses((status = 204), (status = 404, body = Problem)))]
pub(crate) async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_notification_channel(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, operation_id = "test_alert_channel", path = "/api/v1/alerts/{id}/test", tag = "alerts",
    params(("id" = String, Path, description = "channel id or name")),
    responses((status = 200, body = AlertTestResult), (status = 404, body = Problem),
        (status = 503, body = Problem, description = "the webhook did not accept the test alert")))]
pub(crate) async fn test(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<AlertTestResult>> {
    let channel = flows::alerts::test(&state.store, state.addresses(), &id).await?;
    Ok(Json(AlertTestResult {
        delivered: true,
        channel: channel.into(),
    }))
}
