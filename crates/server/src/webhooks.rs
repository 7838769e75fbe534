//! `POST /webhooks/drift/{webhook_id}`: Drift's webhook events for a real-time data source
//! (issue 22). Outside the admin-token auth (Drift cannot send it): the unguessable webhook
//! id names the source and the verification token (REFERENCE §7.9) authenticates the
//! sender. The work is [`flows::realtime::accept`]; this is the HTTP edge only.
//!
//! Answers: 200 `{"status": "queued"}` once the event is durably queued (or
//! `{"status": "duplicate"}`), 401 for a missing or wrong verification token (counted in
//! `driftbridge_webhook_events_total{outcome="rejected"}`), 404 for an unknown webhook id,
//! 413 over 256 KiB, 400 for a body that is not a Drift event, 503 when the queue cannot be
//! written (Drift may retry). Bodies are never logged.

use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use flows::realtime::{self, Accepted, Refusal};
use serde_json::json;

/// The header Drift sends the verification token in (REFERENCE §7.9).
pub const TOKEN_HEADER: &str = "x-verification-token";

/// The webhook route.
pub fn router() -> Router<AppState> {
    Router::new().route("/webhooks/drift/{webhook_id}", post(receive))
}

fn answer(status: StatusCode, kind: &str, detail: &str) -> Response {
    let body = json!({
        "type": format!("urn:driftbridge:problem:{kind}"),
        "title": status.canonical_reason().unwrap_or("error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(crate::problem::PROBLEM_JSON),
    );
    response
}

async fn receive(
    State(state): State<AppState>,
    Path(webhook_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header_token = headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let flows = state.flows.clone();
    // The queue insert is a short SQLite write: keep it off the async workers.
    let outcome = tokio::task::spawn_blocking(move || {
        realtime::accept(&flows, &webhook_id, header_token.as_deref(), &body)
    })
    .await;
    match outcome {
        Ok(Ok(Accepted::Queued)) => Json(json!({"status": "queued"})).into_response(),
        Ok(Ok(Accepted::Duplicate)) => Json(json!({"status": "duplicate"})).into_response(),
        Ok(Err(Refusal::Unauthorized)) => answer(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong verification token (header X-Verification-Token or the body's token field)",
        ),
        Ok(Err(Refusal::UnknownWebhook)) => answer(
            StatusCode::NOT_FOUND,
            "not-found",
            "no real-time data source has this webhook URL; copy it again from the data source's page",
        ),
        Ok(Err(Refusal::TooLarge)) => answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            &format!("a webhook event may have at most {} bytes", realtime::MAX_EVENT_BYTES),
        ),
        Ok(Err(Refusal::Invalid(why))) => answer(
            StatusCode::BAD_REQUEST,
            "bad-request",
            &format!("not a Drift webhook event: {why}"),
        ),
        Ok(Err(Refusal::Unavailable(why))) => {
            tracing::error!(error = %why, "webhook event not queued: the metadata store failed");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the event could not be queued; send it again",
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "webhook event not queued");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the event could not be queued; send it again",
            )
        }
    }
}
