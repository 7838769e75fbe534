//! `POST /app/token_info` (REFERENCE §2.3) and `POST /oauth2/token` (the refresh grant,
//! REFERENCE §2.2).

use super::{api, bare, AppState};
use crate::auth::GrantError;
use crate::config::ORG_ID;
use crate::error::{ApiError, ApiResult};
use crate::guard::bearer;
use crate::state::lock;
use crate::stats::LogEntry;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

pub fn routes(r: Router<AppState>, app: &AppState) -> Router<AppState> {
    r.route(
        "/app/token_info",
        api(app, "app.token_info", None, post(token_info)),
    )
    // Outside the bearer guard: a client calls it because its access token has expired.
    .route("/oauth2/token", post(oauth_token))
}

/// `POST /oauth2/token` with `grant_type=refresh_token`: form-encoded snake_case fields
/// (`client_id`, `client_secret`, `refresh_token`, `grant_type`), or JSON with the camelCase
/// keys of Drift's sample app (`clientId`, `clientSecret`, `refreshToken`, `grantType`), which
/// are answered in camelCase too (REFERENCE §2.2). The answer is `access_token`,
/// `refresh_token`, `token_type`, `expires_in` (seconds, as in
/// examples/oauth_token_response.json) and `orgId`. `[SIM]` errors use OAuth 2.0's codes
/// (RFC 6749 §5.2): 400 `invalid_request` / `unsupported_grant_type` / `invalid_grant`,
/// 401 `invalid_client`. Counted in the stats as route `oauth.token`.
async fn oauth_token(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let json_style = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let fields: std::collections::HashMap<String, String> = if json_style {
        serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .map(|o| {
                o.into_iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        url::form_urlencoded::parse(&body).into_owned().collect()
    };
    let field = |snake: &str, camel: &str| {
        fields
            .get(snake)
            .or_else(|| fields.get(camel))
            .cloned()
            .unwrap_or_default()
    };
    let now = app.clock.now_ms();
    let outcome = if field("grant_type", "grantType") != "refresh_token" {
        Err((
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "the sandbox supports grant_type=refresh_token only",
        ))
    } else {
        let (id, secret, refresh) = (
            field("client_id", "clientId"),
            field("client_secret", "clientSecret"),
            field("refresh_token", "refreshToken"),
        );
        if id.is_empty() || secret.is_empty() || refresh.is_empty() {
            Err((
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "client_id, client_secret and refresh_token are required",
            ))
        } else {
            lock(&app.tokens)
                .refresh(&id, &secret, &refresh, now)
                .map_err(|e| match e {
                    GrantError::InvalidClient => (
                        StatusCode::UNAUTHORIZED,
                        "invalid_client",
                        "unknown client_id or wrong client_secret",
                    ),
                    GrantError::InvalidGrant => (
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "the refresh token is invalid, already used or revoked",
                    ),
                })
        }
    };
    let response = match outcome {
        Ok(grant) => {
            let expires_in = grant.ttl_ms / 1000;
            let body = if json_style {
                json!({"accessToken": grant.access_token, "refreshToken": grant.refresh_token,
                       "tokenType": "bearer", "expiresIn": expires_in, "orgId": ORG_ID})
            } else {
                json!({"access_token": grant.access_token, "refresh_token": grant.refresh_token,
                       "token_type": "bearer", "expires_in": expires_in, "orgId": ORG_ID})
            };
            bare(body)
        }
        Err((status, code, message)) => (
            status,
            axum::Json(json!({"error": code, "error_description": message})),
        )
            .into_response(),
    };
    lock(&app.stats).record(LogEntry {
        at: now,
        method: "POST".into(),
        path: "/oauth2/token".into(),
        query: None,
        route: "oauth.token".into(),
        status: response.status().as_u16(),
        authorization: None,
        fault: None,
    });
    response
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
