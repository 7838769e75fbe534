//! `POST /app/token_info` (REFERENCE §2.3).

use super::{api, bare, AppState};
use crate::config::ORG_ID;
use crate::error::{ApiError, ApiResult};
use crate::guard::bearer;
use crate::state::lock;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

pub fn routes(r: Router<AppState>, app: &AppState) -> Router<AppState> {
    r.route(
        "/app/token_info",
        api(app, "app.token_info", None, post(token_info)),
    )
}

/// Inspect the token in the body (`access_token`, or `accessToken` as a peer sends it), or
/// the bearer token when the body names none. A bogus body token -> 400 (REFERENCE §2.3).
async fn token_info(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        super::json_body(&body)?
    };
    let named = body
        .get("access_token")
        .or_else(|| body.get("accessToken"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let token = match named.or_else(|| bearer(&headers).map(str::to_string)) {
        Some(t) => t,
        None => return Err(ApiError::Unauthorized),
    };
    let now = app.clock.now_ms();
    let tokens = lock(&app.tokens);
    let entry = tokens
        .check(Some(&token), now)
        .map_err(|_| ApiError::invalid("access_token", "access_token is not a valid token"))?;
    // [SIM] expires_in is the token's lifetime in ms from created_at (REFERENCE §2.3, quirk 14),
    // so a client computes the expiry as created_at + expires_in.
    let expires_in = entry
        .expires_at
        .map_or(0, |at| (at - entry.created_at).max(1));
    Ok(bare(json!({
        "access_token": token,
        "authenticated_userid": format!("orgId:{ORG_ID}"),
        "credential_id": "app-0000sandbox",
        "token_type": "bearer",
        "expires_in": expires_in,
        "created_at": entry.created_at,
        "scope": entry.scopes.join(" "),
        "id": entry.id,
    })))
}
