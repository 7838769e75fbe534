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
        .route("/__sandbox/webhooks", post(set_webhooks).get(get_webhooks))
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
    let events = {
        let mut org = app.write();
        let names = if app.webhooks.enabled() && req.rename_contacts > 0 {
            crate::webhooks::contact_names(&org)
        } else {
            Default::default()
        };
        let changed = crate::mutate::apply(&mut org, &req, &app.config, now);
        let events = if app.webhooks.enabled() {
            crate::webhooks::mutation_events(&org, &changed, &names, now)
        } else {
            Vec::new()
        };
        (changed, events)
    };
    let (changed, events) = events;
    app.webhooks.emit(events);
    Ok(Json(changed).into_response())
}

/// `POST /__sandbox/webhooks {"url": "http://...", "token": "..."}`: where mutation events
/// go from now on (`"url": null` stops them). Optional `"duplicates"` (0-1) and `"reorder"`
/// change the faults. Answers the settings without the token.
async fn set_webhooks(State(app): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let url = match body.get("url") {
        Some(Value::String(u)) => Some(u.clone()),
        Some(Value::Null) => None,
        _ => {
            return Err(ApiError::invalid(
                "url",
                "url is required: the webhook URL, or null to stop sending",
            ))
        }
    };
    let token = match body.get("token") {
        Some(Value::String(t)) if !t.is_empty() => Some(t.clone()),
        None | Some(Value::Null) => None,
        _ => {
            return Err(ApiError::invalid(
                "token",
                "token must be a non-empty string",
            ))
        }
    };
    if url.is_some() && token.is_none() && app.webhooks.settings().token.is_empty() {
        return Err(ApiError::invalid(
            "token",
            "token is required: the verification token the receiver expects",
        ));
    }
    app.webhooks
        .set(url, token)
        .map_err(|m| ApiError::invalid("url", m))?;
    if let Some(p) = body.get("duplicates") {
        let p = p
            .as_f64()
            .filter(|p| (0.0..=1.0).contains(p))
            .ok_or_else(|| {
                ApiError::invalid(
                    "duplicates",
                    "duplicates must be a probability between 0 and 1",
                )
            })?;
        app.webhooks.set_faults(Some(p), None);
    }
    if let Some(r) = body.get("reorder") {
        let r = r
            .as_bool()
            .ok_or_else(|| ApiError::invalid("reorder", "reorder must be true or false"))?;
        app.webhooks.set_faults(None, Some(r));
    }
    Ok(Json(app.webhooks.json()).into_response())
}

async fn get_webhooks(State(app): State<AppState>) -> Json<Value> {
    Json(app.webhooks.json())
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
