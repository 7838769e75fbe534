//! `/__sandbox/*` admin routes (DESIGN.md §7). They need no Drift token, add no latency
//! and are not counted in the stats.

use crate::api::{json_body, AppState};
use crate::config::FaultPlan;
use crate::error::{ApiError, ApiResult};
use crate::state::lock;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// The admin router.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/__sandbox/stats", get(stats))
        .route("/__sandbox/counts", get(counts))
        .route("/__sandbox/reset", post(reset))
        .route("/__sandbox/mutate", post(mutate))
        .route("/__sandbox/faults", post(set_faults).get(get_faults))
        .route("/__sandbox/log", get(log))
}

async fn stats(State(app): State<AppState>) -> Json<Value> {
    Json(lock(&app.stats).to_json())
}

/// What a full sync of each stream should deliver (DESIGN.md §7); `now_ms` is the sandbox
/// clock (it decides which meetings a default sync asks for).
///
/// Every record served counts, unfit ones included. `contacts` is every contact in the org,
/// `contacts_in_conversations` the existing contacts conversations refer to, `users` the
/// users still listed, `accounts` every account served (soft-deleted ones too).
/// `deleted_contacts` and `deleted_users` count the contacts and users deleted since the
/// org was built (start or reset); `deleted_accounts` the accounts served with
/// `deleted: true` (seeded soft deletes included, as a sync sees all of them). With
/// `--messy`, `unfit` holds the unfit records a full `sync --streams all` receives per
/// stream ([`crate::messy::Messy::unfit_counts`]); without it the key is absent.
pub fn counts_json(org: &crate::org::Org, now_ms: i64) -> Value {
    let mut counts = json!({
        "conversations": org.conversations.len(),
        "messages": org.message_count(),
        "contacts": org.contacts.len(),
        "contacts_in_conversations": org.contacts_in_conversations(),
        "accounts": org.accounts.len(),
        "users": org.users.len(),
        "teams": org.teams.len(),
        "playbooks": org.playbooks.len(),
        "meetings": org.meetings.len(),
        "deleted_contacts": org.deleted_contacts.len(),
        "deleted_accounts": org.deleted_accounts(),
        "deleted_users": org.deleted_users.len(),
    });
    if let Some(messy) = &org.messy {
        counts["unfit"] = messy.unfit_counts(org, now_ms);
    }
    counts
}

async fn counts(State(app): State<AppState>) -> Json<Value> {
    let now = app.clock.now_ms();
    Json(counts_json(&app.read(), now))
}

async fn reset(State(app): State<AppState>) -> Response {
    let done = tokio::task::spawn_blocking(move || app.reset()).await;
    match done {
        Ok(Ok(())) => Json(json!({"ok": true})).into_response(),
        Ok(Err(e)) => admin_error(e.to_string()),
        Err(e) => admin_error(format!("reset did not finish: {e}")),
    }
}

/// 500 with a Drift-shaped body naming what went wrong.
fn admin_error(message: String) -> Response {
    let body = json!({"error": {"type": "server_error", "message": message}});
    (axum::http::StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
}

async fn mutate(State(app): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let body = if body.is_empty() {
        json!({})
    } else {
        json_body(&body)?
    };
    let req = crate::mutate::MutateRequest::from_json(&body)?;
    let now = app.clock.now_ms();
    let changed = crate::mutate::apply(&mut app.write(), &req, &app.config, now);
    Ok(Json(changed).into_response())
}

async fn set_faults(State(app): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::invalid("faults", "body must be UTF-8 JSON"))?;
    let plan = FaultPlan::from_json(text).map_err(|m| ApiError::invalid("faults", m))?;
    *lock(&app.faults) = crate::faults::Faults::new(&plan.faults, app.config.seed);
    Ok(Json(json!({"faults": plan.faults})).into_response())
}

async fn get_faults(State(app): State<AppState>) -> Json<Value> {
    Json(json!({"faults": lock(&app.faults).specs()}))
}

async fn log(State(app): State<AppState>) -> Json<Value> {
    Json(lock(&app.stats).log_json())
}
