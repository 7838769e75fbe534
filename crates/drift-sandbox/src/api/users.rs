//! Users, meetings, teams and playbooks (REFERENCE §7.4–§7.6).

use super::{api, bare, data, path_id, AppState, Params};
use crate::error::{ApiError, ApiResult};
use crate::messy::Stream;
use crate::org::int;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{Map, Value};

/// Most `userId` parameters `GET /users` accepts (REFERENCE §7.4).
pub const MAX_USER_IDS: usize = 20;
/// Most meetings per call (REFERENCE §7.4).
pub const MAX_MEETINGS: usize = 1000;
/// How far back meetings reach, ms (REFERENCE quirk 13).
pub const MEETINGS_LOOKBACK_MS: i64 = 30 * 86_400_000;

pub fn routes(r: Router<AppState>, app: &AppState) -> Router<AppState> {
    let user_read = Some("user_read");
    let r = r
        .route("/users/list", api(app, "users.list", user_read, get(list)))
        .route(
            "/users/meetings/org",
            api(app, "users.meetings", user_read, get(meetings)),
        )
        .route(
            "/users/{id}",
            api(app, "users.get", user_read, get(get_one)),
        )
        .route("/teams/org", api(app, "teams.list", user_read, get(teams)))
        .route(
            "/teams/users/{id}",
            api(app, "teams.by_user", user_read, get(teams_of_user)),
        )
        .route(
            "/playbooks/list",
            api(app, "playbooks.list", Some("playbook_read"), get(playbooks)),
        )
        .route(
            "/playbooks/clp",
            api(
                app,
                "playbooks.clp",
                Some("playbook_read"),
                get(landing_pages),
            ),
        );
    if app.config.compat.is_some() {
        // [compat airbyte-0.3] the peer lists users at `GET /users` without ids.
        r.route(
            "/users",
            api(app, "users.get_many", user_read, get(many_or_list)),
        )
    } else {
        r.route("/users", api(app, "users.get_many", user_read, get(many)))
    }
}

/// Every record of `records` as served for `stream` ([`crate::org::Org::show`]).
fn shown(org: &crate::org::Org, stream: Stream, records: &[crate::org::Obj]) -> Value {
    Value::Array(records.iter().map(|r| org.show_obj(stream, r)).collect())
}

async fn list(State(app): State<AppState>) -> Response {
    let org = app.read();
    data(shown(&org, Stream::Users, &org.users))
}

async fn get_one(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = path_id(&id, "userId")?;
    let org = app.read();
    let u = org
        .users
        .iter()
        .find(|u| int(u, "id") == id)
        .ok_or_else(|| ApiError::NotFound(format!("User {id} not found")))?;
    Ok(data(org.show_obj(Stream::Users, u)))
}

/// `GET /users?userId=1&userId=2` -> `{"data": {"<id>": User}}`; unknown ids are left out.
async fn many(State(app): State<AppState>, p: Params) -> ApiResult<Response> {
    let ids = p.all("userId");
    if ids.is_empty() {
        return Err(ApiError::invalid(
            "userId",
            "userId is required (repeat it, up to 20)",
        ));
    }
    if ids.len() > MAX_USER_IDS {
        return Err(ApiError::invalid(
            "userId",
            format!(
                "at most {MAX_USER_IDS} userId parameters, got {}",
                ids.len()
            ),
        ));
    }
    let ids: Vec<i64> = ids
        .iter()
        .map(|s| path_id(s, "userId"))
        .collect::<ApiResult<_>>()?;
    let org = app.read();
    let map: Map<String, Value> = org
        .users
        .iter()
        .filter(|u| ids.contains(&int(u, "id")))
        .map(|u| (int(u, "id").to_string(), org.show_obj(Stream::Users, u)))
        .collect();
    Ok(data(Value::Object(map)))
}

async fn many_or_list(state: State<AppState>, p: Params) -> ApiResult<Response> {
    if p.get("userId").is_none() {
        return Ok(list(state).await);
    }
    many(state, p).await
}

/// `GET /users/meetings/org?min_start_time=&max_start_time=` (ms, both required): meetings
/// whose `slotStart` lies in the window, never more than 30 days back, at most 1000.
async fn meetings(State(app): State<AppState>, p: Params) -> ApiResult<Response> {
    let bound = |k: &str| -> ApiResult<i64> {
        let v = p
            .get(k)
            .ok_or_else(|| ApiError::invalid(k, format!("{k} is required (epoch milliseconds)")))?;
        v.trim()
            .parse::<i64>()
            .map_err(|_| ApiError::invalid(k, format!("{k} must be epoch milliseconds, got `{v}`")))
    };
    let (min, max) = (bound("min_start_time")?, bound("max_start_time")?);
    if min > max {
        return Err(ApiError::invalid(
            "min_start_time",
            "min_start_time must not be after max_start_time",
        ));
    }
    let floor = app.clock.now_ms() - MEETINGS_LOOKBACK_MS;
    let org = app.read();
    let mut found: Vec<&crate::org::Obj> = org
        .meetings
        .iter()
        .filter(|m| {
            let s = int(m, "slotStart");
            s >= min.max(floor) && s <= max
        })
        .collect();
    found.sort_by_key(|m| int(m, "slotStart"));
    Ok(data(Value::Array(
        found
            .into_iter()
            .take(MAX_MEETINGS)
            .map(|m| org.show_obj(Stream::Meetings, m))
            .collect(),
    )))
}

async fn teams(State(app): State<AppState>) -> Response {
    let org = app.read();
    data(shown(&org, Stream::Teams, &org.teams))
}

async fn teams_of_user(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = path_id(&id, "userId")?;
    let org = app.read();
    let teams = org
        .teams
        .iter()
        .filter(|t| {
            t.get("members")
                .and_then(Value::as_array)
                .is_some_and(|m| m.iter().any(|x| x.as_i64() == Some(id)))
        })
        .map(|t| org.show_obj(Stream::Teams, t))
        .collect();
    Ok(data(Value::Array(teams)))
}

/// `GET /playbooks/list`: a bare array (REFERENCE quirk 12).
async fn playbooks(State(app): State<AppState>) -> Response {
    let org = app.read();
    bare(shown(&org, Stream::Playbooks, &org.playbooks))
}

async fn landing_pages(State(app): State<AppState>) -> Response {
    bare(Value::Array(
        app.read()
            .landing_pages
            .iter()
            .cloned()
            .map(Value::Object)
            .collect(),
    ))
}
