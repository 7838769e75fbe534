//! The Drift routes (REFERENCE §7) and the helpers they share.

mod accounts;
mod app;
mod contacts;
mod conversations;
mod reports;
mod users;

use crate::error::{ApiError, ApiResult};
use crate::guard::{guard, RouteInfo};
use crate::state::App;
use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::{middleware, Json, Router};
use serde_json::{json, Value};
use std::sync::Arc;

/// Shorthand for the shared state type.
pub type AppState = Arc<App>;

/// The name of every Drift route the sandbox serves (`unknown` is any other path): what a
/// fault plan's `route` and the request log's `route` name. `api` refuses (in tests) a
/// route missing here.
pub const ROUTES: &[&str] = &[
    "accounts.create",
    "accounts.delete",
    "accounts.get",
    "accounts.list",
    "accounts.update",
    "app.token_info",
    "contacts.attributes",
    "contacts.create",
    "contacts.delete",
    "contacts.find",
    "contacts.get",
    "contacts.timeline",
    "contacts.update",
    "conversations.create",
    "conversations.get",
    "conversations.list",
    "conversations.messages",
    "conversations.post_message",
    "conversations.stats",
    "playbooks.clp",
    "playbooks.list",
    "reports.conversations",
    "teams.by_user",
    "teams.list",
    "unknown",
    "users.get",
    "users.get_many",
    "users.list",
    "users.meetings",
];

/// Wrap a method router in the guard layer with its route name and scope.
fn api(
    app: &AppState,
    name: &'static str,
    scope: Option<&'static str>,
    mr: MethodRouter<AppState>,
) -> MethodRouter<AppState> {
    debug_assert!(ROUTES.contains(&name), "route {name} is not in ROUTES");
    let info = RouteInfo {
        name,
        scope,
        reports: name.starts_with("reports."),
    };
    mr.layer(middleware::from_fn_with_state((app.clone(), info), guard))
}

/// Every Drift route of the sandbox.
pub fn router(app: &AppState) -> Router<AppState> {
    let r = Router::new();
    let r = app::routes(r, app);
    let r = contacts::routes(r, app);
    let r = conversations::routes(r, app);
    let r = accounts::routes(r, app);
    let r = users::routes(r, app);
    let r = reports::routes(r, app);
    r.fallback_service(
        api(app, "unknown", None, axum::routing::any(not_found)).with_state(app.clone()),
    )
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("No route for {}", uri.path()))
}

/// Query parameters in order, repeated keys kept (`statusId=1&statusId=2`).
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parse a raw query string.
    pub fn parse(query: Option<&str>) -> Params {
        Params(
            url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// First value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// `key` parsed as an integer in `min..=max`; `default` when absent; 400 otherwise.
    pub fn int(&self, key: &str, default: i64, min: i64, max: i64) -> ApiResult<i64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid(
                        key,
                        format!("{key} must be an integer between {min} and {max}, got `{v}`"),
                    )
                }),
        }
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Params {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Params::parse(parts.uri.query()))
    }
}

/// Parse a JSON request body; 400 `validation_error` when it is not JSON.
pub fn json_body(bytes: &Bytes) -> ApiResult<Value> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid("body", format!("request body must be JSON: {e}")))
}

/// Parse a numeric path id; 400 naming the parameter when it is not a number.
pub fn path_id(raw: &str, name: &str) -> ApiResult<i64> {
    raw.parse::<i64>()
        .map_err(|_| ApiError::invalid(name, format!("{name} must be an integer, got `{raw}`")))
}

/// `{"data": v}` with status 200.
pub fn data(v: Value) -> Response {
    Json(json!({ "data": v })).into_response()
}

/// Bare JSON with status 200.
pub fn bare(v: Value) -> Response {
    Json(v).into_response()
}

/// Drift's delete acknowledgement `{"result":"OK","ok":true}` (REFERENCE examples/ok_result.json).
pub fn ok_result() -> Response {
    bare(json!({"result": "OK", "ok": true}))
}
