//! `POST /reports/conversations` (REFERENCE §7.2; its own 60/minute bucket, §4).

use super::{api, bare, json_body, AppState};
use crate::error::{ApiError, ApiResult};
use crate::org::{int, text, Obj};
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

pub fn routes(r: Router<AppState>, app: &AppState) -> Router<AppState> {
    r.route(
        "/reports/conversations",
        api(
            app,
            "reports.conversations",
            Some("conversation_read"),
            post(report),
        ),
    )
}

/// `POST /reports/conversations` (REFERENCE §7.2): filters `status IN [...]`, `createdAt` /
/// `updatedAt` `BETWEEN [ms, ms]`, `HAS_PROPERTY`; metrics computed per conversation, `"NaN"`
/// for unknown or missing ones. Bare `{count, data}`.
async fn report(State(app): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let metrics: Vec<String> = match body.get("metrics") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|m| m.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| {
                ApiError::invalid("metrics", "metrics must be an array of metric names")
            })?,
        _ => {
            return Err(ApiError::invalid(
                "metrics",
                "metrics is required: an array of metric names",
            ))
        }
    };
    let filters = match body.get("filters") {
        None => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err(ApiError::invalid("filters", "filters must be an array")),
    };
    for f in &filters {
        check_filter(f)?;
    }
    let org = app.read();
    let rows: Vec<Value> = org
        .order
        .iter()
        .map(|&i| (&org.conversations[i], org.messages[i].len()))
        .filter(|(c, _)| filters.iter().all(|f| filter_matches(c, f)))
        .map(|(c, n)| json!({"conversationId": c.get("id"), "metrics": metrics.iter().map(|m| metric(c, n, m)).collect::<Vec<_>>()}))
        .collect();
    Ok(bare(json!({"count": rows.len(), "data": rows})))
}

fn check_filter(f: &Value) -> ApiResult<()> {
    let op = f.get("operation").and_then(Value::as_str);
    let ok = f.get("property").and_then(Value::as_str).is_some()
        && matches!(op, Some("IN" | "BETWEEN" | "HAS_PROPERTY"));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "filters",
            "each filter needs `property` and `operation` IN, BETWEEN or HAS_PROPERTY",
        ))
    }
}

fn filter_matches(c: &Obj, f: &Value) -> bool {
    let prop = f.get("property").and_then(Value::as_str).unwrap_or("");
    let values = f
        .get("values")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let field = c.get(prop);
    match f.get("operation").and_then(Value::as_str) {
        Some("HAS_PROPERTY") => field.is_some_and(|v| !v.is_null()),
        Some("IN") => field.is_some_and(|v| {
            values.iter().any(|x| {
                x == v || x.as_str().map(str::to_lowercase) == v.as_str().map(str::to_lowercase)
            })
        }),
        Some("BETWEEN") => {
            let n = field.and_then(Value::as_i64);
            let lo = values.first().and_then(Value::as_i64).unwrap_or(i64::MIN);
            let hi = values.get(1).and_then(Value::as_i64).unwrap_or(i64::MAX);
            n.is_some_and(|n| (lo..=hi).contains(&n))
        }
        _ => false,
    }
}

fn metric(c: &Obj, messages: usize, name: &str) -> Value {
    let closed = text(c, "status") == Some("closed");
    match name {
        "createdAt" | "updatedAt" | "relatedPlaybookId" | "contactId" => c
            .get(name)
            .cloned()
            .filter(|v| !v.is_null())
            .unwrap_or_else(|| json!("NaN")),
        "timeToCloseMillis" if closed => json!(int(c, "updatedAt") - int(c, "createdAt")),
        "messageCount" => json!(messages),
        _ => json!("NaN"),
    }
}
