//! Contacts: get, find by email / external id, create, update, delete, attributes,
//! timeline (REFERENCE §7.1).

use super::{api, data, json_body, ok_result, path_id, AppState, Params};
use crate::error::{ApiError, ApiResult};
use crate::messy::Stream;
use crate::org::{attr_str, bump_versions, int, IdGen, Obj, Org};
use crate::seed::obj;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{delete, get, patch, post};
use axum::Router;
use serde_json::{json, Value};

pub fn routes(r: Router<AppState>, app: &AppState) -> Router<AppState> {
    r.route(
        "/contacts",
        api(app, "contacts.find", Some("contact_read"), get(find)),
    )
    .route(
        "/contacts",
        api(app, "contacts.create", Some("contact_write"), post(create)),
    )
    .route(
        "/contacts/attributes",
        api(
            app,
            "contacts.attributes",
            Some("all_contact_read"),
            get(attributes),
        ),
    )
    .route(
        "/contacts/timeline",
        api(
            app,
            "contacts.timeline",
            Some("contact_write"),
            post(timeline),
        ),
    )
    .route(
        "/contacts/{id}",
        api(app, "contacts.get", Some("contact_read"), get(get_one)),
    )
    .route(
        "/contacts/{id}",
        api(app, "contacts.update", Some("contact_write"), patch(update)),
    )
    .route(
        "/contacts/{id}",
        api(
            app,
            "contacts.delete",
            Some("contact_write"),
            delete(remove),
        ),
    )
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("Contact {id} not found"))
}

async fn get_one(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = path_id(&id, "contactId")?;
    let org = app.read();
    let c = org.contacts.get(&id).ok_or_else(|| not_found(id))?;
    Ok(data(org.show_obj(Stream::Contacts, c)))
}

/// `GET /contacts?email=..&limit=n` or `GET /contacts?idType=external&id=..&id=..`; always an
/// array. Neither form -> 400: Drift has no list-all (REFERENCE §7.1 `[SIM]`).
async fn find(State(app): State<AppState>, p: Params) -> ApiResult<Response> {
    let org = app.read();
    let found: Vec<Value> = if let Some(email) = p.get("email") {
        let limit = p.int("limit", i64::from(u16::MAX), 1, i64::from(u16::MAX))? as usize;
        org.contacts_by_email(email)
            .into_iter()
            .take(limit)
            .map(|c| org.show_obj(Stream::Contacts, c))
            .collect()
    } else if let Some(kind) = p.get("idType") {
        if kind != "external" {
            return Err(ApiError::invalid(
                "idType",
                format!("idType must be `external`, got `{kind}`"),
            ));
        }
        let ids = p.all("id");
        if ids.is_empty() {
            return Err(ApiError::invalid(
                "id",
                "id is required with idType=external (repeat it for several)",
            ));
        }
        ids.iter()
            .flat_map(|id| org.contacts_by_external_id(id))
            .map(|c| org.show_obj(Stream::Contacts, c))
            .collect()
    } else {
        return Err(ApiError::invalid(
            "email",
            "give `email` or `idType=external&id=...`; Drift cannot list all contacts",
        ));
    };
    Ok(data(Value::Array(found)))
}

/// Create a contact from its attributes; returns the new id. Versions start at 1,
/// `externalId` is null unless given (Drift never invents one), `external_id` echoes it.
pub fn insert_contact(org: &mut Org, attrs: Obj, now: i64) -> i64 {
    let id = IdGen::take(&mut org.ids.contact);
    let external = attrs.get("externalId").cloned().unwrap_or(Value::Null);
    let mut a = obj(
        json!({"_END_USER_VERSION": 1, "_end_user_version": 1, "_calculated_version": 1,
        "socialProfiles": {}, "externalId": external}),
    );
    if !external.is_null() {
        a.insert("external_id".into(), external);
    }
    for (k, v) in attrs {
        if k != "externalId" && !v.is_null() {
            a.insert(k, v);
        }
    }
    a.entry("events").or_insert(json!({}));
    a.entry("tags").or_insert(json!([]));
    a.insert("start_date".into(), json!(now));
    org.contacts.insert(
        id,
        obj(json!({"id": id, "createdAt": now, "attributes": Value::Object(a)})),
    );
    id
}

fn attributes_of(body: &Value) -> ApiResult<Obj> {
    body.get("attributes")
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| ApiError::invalid("attributes", "body must be {\"attributes\": {...}}"))
}

/// `POST /contacts`: `email` required; a duplicate email is a 409 unless an `externalId` is
/// given, then a duplicate `externalId` is (REFERENCE §7.1, `[SIM]` 409 `conflict`).
async fn create(State(app): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let attrs = attributes_of(&json_body(&body)?)?;
    let email = attrs
        .get("email")
        .and_then(Value::as_str)
        .filter(|e| !e.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("attributes.email", "attributes.email is required"))?
        .to_string();
    let external = attrs
        .get("externalId")
        .and_then(Value::as_str)
        .map(str::to_string);
    let now = app.clock.now_ms();
    let mut org = app.write();
    match &external {
        Some(x) if !org.contacts_by_external_id(x).is_empty() => {
            return Err(ApiError::Conflict(format!(
                "A contact with externalId {x} already exists"
            )));
        }
        None if !org.contacts_by_email(&email).is_empty() => {
            return Err(ApiError::Conflict(format!(
                "A contact with email {email} already exists; give an externalId to create another"
            )));
        }
        _ => {}
    }
    let id = insert_contact(&mut org, attrs, now);
    let c = org.contacts.get(&id).cloned().unwrap_or_default();
    Ok(data(Value::Object(c)))
}

/// `PATCH /contacts/{id}`: partial; a null value clears an existing attribute, new keys with
/// non-null values are added; versions go up by one.
async fn update(
    State(app): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let id = path_id(&id, "contactId")?;
    let attrs = attributes_of(&json_body(&body)?)?;
    let mut org = app.write();
    let c = org.contacts.get_mut(&id).ok_or_else(|| not_found(id))?;
    let a = match c.get_mut("attributes") {
        Some(Value::Object(a)) => a,
        _ => {
            c.insert("attributes".into(), json!({}));
            c.get_mut("attributes")
                .and_then(Value::as_object_mut)
                .ok_or_else(|| not_found(id))?
        }
    };
    let mut diff = Vec::new();
    for (k, v) in attrs {
        if v.is_null() && !a.contains_key(&k) {
            continue;
        }
        let previous = a.get(&k).cloned().unwrap_or(Value::Null);
        if previous != v {
            diff.push(
                json!({"name": format!("attributes.{k}"), "previous": previous, "updated": v}),
            );
        }
        a.insert(k, v);
    }
    bump_versions(a);
    let out = Value::Object(c.clone());
    drop(org);
    if !diff.is_empty() {
        let now = app.clock.now_ms();
        app.webhooks.emit(vec![(
            "contact_updated",
            json!({"endUserId": id, "timestamp": now, "orgId": crate::config::ORG_ID, "diff": diff}),
        )]);
    }
    Ok(data(out))
}

async fn remove(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = path_id(&id, "contactId")?;
    let mut org = app.write();
    org.contacts.remove(&id).ok_or_else(|| not_found(id))?;
    org.deleted_contacts.insert(id);
    Ok(ok_result())
}

/// `GET /contacts/attributes` -> `{"data": {"properties": [...]}}` (needs all_contact_read).
async fn attributes(State(app): State<AppState>) -> Response {
    let org = app.read();
    let properties: Vec<Value> = org
        .attributes
        .iter()
        .map(|a| org.show_obj(Stream::ContactAttributes, a))
        .collect();
    data(json!({ "properties": properties }))
}

/// `POST /contacts/timeline`: `contactId` or `externalId`, `event` required, `createdAt`
/// optional (default now); answers the stored event.
async fn timeline(State(app): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let event = body
        .get("event")
        .and_then(Value::as_str)
        .filter(|e| !e.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("event", "event is required: a non-empty string"))?;
    let created = match body.get("createdAt") {
        None | Some(Value::Null) => app.clock.now_ms(),
        Some(v) => v.as_i64().ok_or_else(|| {
            ApiError::invalid("createdAt", "createdAt must be epoch milliseconds")
        })?,
    };
    let mut org = app.write();
    let contact_id = if let Some(id) = body.get("contactId").filter(|v| !v.is_null()) {
        let id = id
            .as_i64()
            .ok_or_else(|| ApiError::invalid("contactId", "contactId must be an integer"))?;
        org.contacts
            .get(&id)
            .map(|c| int(c, "id"))
            .ok_or_else(|| not_found(id))?
    } else if let Some(x) = body.get("externalId").and_then(Value::as_str) {
        let found = org
            .contacts
            .values()
            .find(|c| attr_str(c, "externalId") == Some(x))
            .map(|c| int(c, "id"));
        found.ok_or_else(|| ApiError::NotFound(format!("Contact with externalId {x} not found")))?
    } else {
        return Err(ApiError::invalid(
            "contactId",
            "contactId or externalId is required",
        ));
    };
    let attrs: Obj = body
        .get("attributes")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), Value::String(stringify(v))))
                .collect()
        })
        .unwrap_or_default();
    let ev = obj(
        json!({"contactId": contact_id, "event": event, "createdAt": created, "attributes": attrs}),
    );
    org.timeline.push(ev.clone());
    Ok(data(Value::Object(ev)))
}

/// Timeline attribute values are stringified (REFERENCE §7.1).
fn stringify(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
