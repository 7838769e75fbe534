//! Accounts: list, get, create, update, soft delete (REFERENCE §7.3).

use super::{api, data, json_body, ok_result, AppState, Params};
use crate::error::{ApiError, ApiResult};
use crate::faults::CursorFault;
use crate::messy::Stream;
use crate::org::{text, IdGen, Obj, Org};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{delete, get, patch, post};
use axum::{Extension, Router};
use serde_json::{json, Value};

/// Largest `size` of `GET /accounts` (REFERENCE §6: 65).
pub const MAX_SIZE: i64 = 65;

pub fn routes(r: Router<AppState>, app: &AppState) -> Router<AppState> {
    r.route(
        "/accounts",
        api(app, "accounts.list", Some("account_read"), get(list)),
    )
    .route(
        "/accounts/create",
        api(app, "accounts.create", Some("account_write"), post(create)),
    )
    .route(
        "/accounts/update",
        api(app, "accounts.update", Some("account_write"), patch(update)),
    )
    .route(
        "/accounts/{id}",
        api(app, "accounts.get", Some("account_read"), get(get_one)),
    )
    .route(
        "/accounts/{id}",
        api(
            app,
            "accounts.delete",
            Some("account_write"),
            delete(remove),
        ),
    )
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("Account {id} not found"))
}

/// `GET /accounts?index=&size=` -> `{"data": {"accounts", "total", "next"}}`; `next` is an
/// absolute URL on this sandbox while `index + size < total` [SIM §9].
async fn list(
    State(app): State<AppState>,
    p: Params,
    fault: Option<Extension<CursorFault>>,
) -> ApiResult<Response> {
    let index = p.int("index", 0, 0, i64::MAX)? as usize;
    let size = p.int("size", 10, 1, MAX_SIZE)? as usize;
    let org = app.read();
    let total = org.accounts.len();
    let page: Vec<Value> = org
        .accounts
        .iter()
        .skip(index)
        .take(size)
        .map(|a| org.show_obj(Stream::Accounts, a))
        .collect();
    let normal = (index + size < total).then_some(index + size);
    let next_index = CursorFault::next_cursor(fault.map(|f| f.0), index, 0, normal);
    let next =
        next_index.map(|n| json!(format!("{}/accounts?index={n}&size={size}", app.base_url())));
    let mut page = page;
    if app.config.compat.is_some() {
        crate::compat::mark_last_row(&mut page, next.as_ref());
    }
    let mut body = json!({"accounts": page, "total": total});
    if let Some(n) = next {
        body["next"] = n;
    }
    Ok(data(body))
}

async fn get_one(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let org = app.read();
    let i = *org.account_pos.get(&id).ok_or_else(|| not_found(&id))?;
    Ok(data(org.show_obj(Stream::Accounts, &org.accounts[i])))
}

/// Domain without `www.` and case, for the uniqueness rule.
fn bare_domain(d: &str) -> String {
    let d = d.trim().to_ascii_lowercase();
    d.strip_prefix("www.").map(str::to_string).unwrap_or(d)
}

/// Index of a live (not deleted) account with this domain, other than `except`.
fn domain_taken(org: &Org, domain: &str, except: Option<usize>) -> bool {
    let want = bare_domain(domain);
    org.accounts.iter().enumerate().any(|(i, a)| {
        Some(i) != except
            && a.get("deleted") != Some(&Value::Bool(true))
            && text(a, "domain").is_some_and(|d| bare_domain(d) == want)
    })
}

fn owner_id(body: &Obj) -> ApiResult<i64> {
    body.get("ownerId").and_then(Value::as_i64).ok_or_else(|| {
        ApiError::invalid(
            "ownerId",
            "ownerId is required: the Drift user id owning the account",
        )
    })
}

/// `POST /accounts/create`: `ownerId` and `domain` required, domain unique among live
/// accounts (duplicate -> 409 `[SIM]`); id and timestamps assigned here.
async fn create(State(app): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let body = body
        .as_object()
        .cloned()
        .ok_or_else(|| ApiError::invalid("body", "body must be a JSON object"))?;
    let owner = owner_id(&body)?;
    let domain = text(&body, "domain")
        .filter(|d| !d.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("domain", "domain is required"))?
        .to_string();
    let now = app.clock.now_ms();
    let mut org = app.write();
    if domain_taken(&org, &domain, None) {
        return Err(ApiError::Conflict(format!(
            "An account with domain {domain} already exists"
        )));
    }
    let counter = IdGen::take(&mut org.ids.account);
    let account_id = format!("{counter}_{}", bare_domain(&domain));
    let mut a = Obj::new();
    a.insert("ownerId".into(), json!(owner));
    a.insert(
        "name".into(),
        body.get("name").cloned().unwrap_or(Value::Null),
    );
    a.insert("domain".into(), json!(domain));
    a.insert("accountId".into(), json!(account_id));
    a.insert(
        "customProperties".into(),
        body.get("customProperties")
            .cloned()
            .unwrap_or_else(|| json!([])),
    );
    a.insert("deleted".into(), json!(false));
    a.insert("createDateTime".into(), json!(now));
    a.insert("updateDateTime".into(), json!(now));
    a.insert(
        "targeted".into(),
        body.get("targeted").cloned().unwrap_or(json!(false)),
    );
    org.accounts.push(a.clone());
    org.reindex_accounts();
    Ok(data(Value::Object(a)))
}

/// `PATCH /accounts/update`: `accountId` and `ownerId` in the body (REFERENCE quirk 10);
/// given fields replace the stored ones; `accountId`, `createDateTime`, `deleted` are kept.
async fn update(State(app): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let body = body
        .as_object()
        .cloned()
        .ok_or_else(|| ApiError::invalid("body", "body must be a JSON object"))?;
    let id = text(&body, "accountId")
        .ok_or_else(|| ApiError::invalid("accountId", "accountId is required in the body"))?
        .to_string();
    owner_id(&body)?;
    let now = app.clock.now_ms();
    let mut org = app.write();
    let i = *org.account_pos.get(&id).ok_or_else(|| not_found(&id))?;
    if let Some(d) = text(&body, "domain") {
        if domain_taken(&org, d, Some(i)) {
            return Err(ApiError::Conflict(format!(
                "An account with domain {d} already exists"
            )));
        }
    }
    let a = &mut org.accounts[i];
    for (k, v) in body {
        if !matches!(
            k.as_str(),
            "accountId" | "createDateTime" | "updateDateTime" | "deleted"
        ) {
            a.insert(k, v);
        }
    }
    a.insert("updateDateTime".into(), json!(now));
    Ok(data(Value::Object(a.clone())))
}

/// `DELETE /accounts/{id}`: soft delete; the account stays readable with `deleted: true`.
async fn remove(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let now = app.clock.now_ms();
    let mut org = app.write();
    let i = *org.account_pos.get(&id).ok_or_else(|| not_found(&id))?;
    org.accounts[i].insert("deleted".into(), json!(true));
    org.accounts[i].insert("updateDateTime".into(), json!(now));
    Ok(ok_result())
}
