//! Conversations, messages and stats (REFERENCE §7.2, §6).

use super::{api, bare, data, json_body, path_id, AppState, Params};
use crate::error::{ApiError, ApiResult};
use crate::faults::CursorFault;
use crate::messy::Stream;
use crate::org::{int, text, Author, Body, IdGen, Message, Obj, Org};
use crate::seed::{obj, BOT_USER_ID, INBOX_ID};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use base64::Engine;
use serde_json::{json, Value};
use std::borrow::Cow;
use std::sync::Arc;

/// Messages per page of `GET /conversations/{id}/messages` (REFERENCE §6: "always 50").
pub const MESSAGES_PAGE: usize = 50;

pub fn routes(r: Router<AppState>, app: &AppState) -> Router<AppState> {
    let r = if app.config.compat.is_some() {
        // [compat airbyte-0.3] the peer lists conversations at `GET /conversations`.
        r.route(
            "/conversations",
            api(
                app,
                "conversations.list",
                Some("conversation_read"),
                get(list),
            ),
        )
    } else {
        r
    };
    r.route(
        "/conversations/list",
        api(
            app,
            "conversations.list",
            Some("conversation_read"),
            get(list),
        ),
    )
    .route(
        "/conversations/stats",
        api(
            app,
            "conversations.stats",
            Some("conversation_read"),
            get(stats),
        ),
    )
    .route(
        "/conversations/new",
        api(
            app,
            "conversations.create",
            Some("conversation_write"),
            post(create),
        ),
    )
    .route(
        "/conversations/{id}",
        api(
            app,
            "conversations.get",
            Some("conversation_read"),
            get(get_one),
        ),
    )
    .route(
        "/conversations/{id}/messages",
        api(
            app,
            "conversations.messages",
            Some("conversation_read"),
            get(messages),
        ),
    )
    .route(
        "/conversations/{id}/messages",
        api(
            app,
            "conversations.post_message",
            Some("conversation_write"),
            post(post_message),
        ),
    )
}

/// Where a list page starts and what it filters (the decoded cursor).
#[derive(Clone, Debug, PartialEq)]
struct ListPos {
    offset: usize,
    limit: usize,
    statuses: Vec<u8>,
}

/// `[SIM]` `page_token` = base64url of `{"offset":n,"limit":n,"statusId":[..]}` (REFERENCE §9).
fn encode_token(p: &ListPos) -> String {
    let raw = json!({"offset": p.offset, "limit": p.limit, "statusId": p.statuses}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_token(t: &str) -> Option<ListPos> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t.trim_end_matches('='))
        .ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    Some(ListPos {
        offset: v.get("offset")?.as_u64()? as usize,
        limit: v.get("limit")?.as_u64()? as usize,
        statuses: v
            .get("statusId")?
            .as_array()?
            .iter()
            .filter_map(|s| s.as_u64().map(|n| n as u8))
            .collect(),
    })
}

fn status_id(status: &str) -> Option<u8> {
    match status {
        "open" => Some(1),
        "closed" => Some(2),
        "pending" => Some(3),
        _ => None,
    }
}

fn parse_statuses(p: &Params, legacy: bool) -> ApiResult<Vec<u8>> {
    p.all("statusId")
        .into_iter()
        .map(|s| match s.trim() {
            "1" => Ok(1),
            "2" => Ok(2),
            "3" => Ok(3),
            _ => Err(invalid(
                legacy,
                "statusId",
                format!("statusId must be 1 (open), 2 (closed) or 3 (pending), got `{s}`"),
            )),
        })
        .collect()
}

fn invalid(legacy: bool, param: &str, message: String) -> ApiError {
    if legacy {
        ApiError::InvalidLegacy {
            param: param.into(),
            message,
        }
    } else {
        ApiError::Invalid {
            param: param.into(),
            message,
        }
    }
}

/// `GET /conversations/list`: the current generation (`page_token`, `links`) unless the
/// request carries `next` and no `page_token`, then the legacy one (`pagination`) `[SIM]` §6.
async fn list(
    State(app): State<AppState>,
    p: Params,
    fault: Option<Extension<CursorFault>>,
) -> ApiResult<Response> {
    let legacy = p.get("next").is_some() && p.get("page_token").is_none();
    let pos = list_position(&p, legacy)?;
    let (mut rows, more) = page_rows(&app.read(), &pos);
    let first = ListPos {
        offset: 0,
        ..pos.clone()
    };
    let normal = more.then(|| ListPos {
        offset: pos.offset + pos.limit,
        ..pos.clone()
    });
    let next = CursorFault::next_cursor(fault.map(|f| f.0), pos.clone(), first, normal);
    if legacy {
        let mut body = json!({ "data": rows });
        if let Some(n) = next {
            body["pagination"] = json!({"more": true, "next": n.offset.to_string()});
        }
        return Ok(bare(body));
    }
    let url = |p: &ListPos| {
        format!(
            "{}/conversations/list?page_token={}",
            app.base_url(),
            encode_token(p)
        )
    };
    let mut links = json!({ "self": url(&pos) });
    if let Some(n) = &next {
        links["next"] = json!(url(n));
    }
    if app.config.compat.is_some() {
        crate::compat::mark_last_row(&mut rows, links.get("next"));
    }
    Ok(bare(json!({ "data": rows, "links": links })))
}

/// Where the requested page starts: `limit` (legacy ≤ 50, current ≤ 100, default 25),
/// `statusId` filters, and the cursor of the generation in use.
fn list_position(p: &Params, legacy: bool) -> ApiResult<ListPos> {
    let max = if legacy { 50 } else { 100 };
    let limit = match p.get("limit") {
        None => None,
        Some(_) => Some(p.int("limit", 25, 1, max).map_err(|_| {
            invalid(
                legacy,
                "limit",
                format!("limit must be between 1 and {max}"),
            )
        })? as usize),
    };
    let statuses = parse_statuses(p, legacy)?;
    let fresh = |offset| ListPos {
        offset,
        limit: limit.unwrap_or(25),
        statuses: statuses.clone(),
    };
    if legacy {
        let next = p.get("next").unwrap_or("").trim();
        if next.is_empty() {
            return Ok(fresh(0));
        }
        let offset = next.parse::<usize>().map_err(|_| {
            let message = format!("next must be a cursor from a previous page, got `{next}`");
            invalid(true, "next", message)
        })?;
        return Ok(fresh(offset));
    }
    let Some(token) = p.get("page_token").map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(fresh(0));
    };
    let mut pos = decode_token(token).ok_or_else(|| {
        ApiError::invalid(
            "page_token",
            "page_token is not a token from a previous page",
        )
    })?;
    if let Some(l) = limit {
        pos.limit = l;
    }
    Ok(pos)
}

/// The rows of one list page (list view: no participants, tags or playbook) and whether
/// more rows follow.
fn page_rows(org: &Org, pos: &ListPos) -> (Vec<Value>, bool) {
    let mut matching = org
        .order
        .iter()
        .map(|&i| &org.conversations[i])
        .filter(|c| {
            pos.statuses.is_empty()
                || text(c, "status")
                    .and_then(status_id)
                    .is_some_and(|s| pos.statuses.contains(&s))
        });
    let rows: Vec<Value> = matching
        .by_ref()
        .skip(pos.offset)
        .take(pos.limit)
        .map(|c| org.show(Stream::Conversations, list_row(c)))
        .collect();
    let more = matching.next().is_some();
    (rows, more)
}

fn list_row(c: &Obj) -> Value {
    let mut row = c.clone();
    for k in ["participants", "conversationTags", "relatedPlaybookId"] {
        row.shift_remove(k);
    }
    Value::Object(row)
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("Conversation {id} not found"))
}

async fn get_one(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = path_id(&id, "conversationId")?;
    let org = app.read();
    let (_, c) = org.conversation(id).ok_or_else(|| not_found(id))?;
    Ok(data(org.show_obj(Stream::Conversations, c)))
}

/// `GET /conversations/{id}/messages?next=<cursor>`: oldest first, 50 per page; the cursor
/// is the id of the last message of the previous page `[SIM]`.
async fn messages(
    State(app): State<AppState>,
    Path(id): Path<String>,
    p: Params,
    fault: Option<Extension<CursorFault>>,
) -> ApiResult<Response> {
    let id = path_id(&id, "conversationId")?;
    let after = match p.get("next").map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(s.parse::<i64>().map_err(|_| {
            ApiError::invalid(
                "next",
                format!("next must be a cursor from a previous page, got `{s}`"),
            )
        })?),
    };
    let org = app.read();
    let (i, _) = org.conversation(id).ok_or_else(|| not_found(id))?;
    let all = &org.messages[i];
    let start = after.map_or(0, |a| all.partition_point(|m| m.id <= a));
    let mut page: Vec<Value> = all[start..]
        .iter()
        .take(MESSAGES_PAGE)
        .map(|m| org.show(Stream::Messages, m.to_json()))
        .collect();
    let more = all.len() > start + MESSAGES_PAGE;
    let normal = more.then(|| all[start + MESSAGES_PAGE - 1].id);
    let next = CursorFault::next_cursor(fault.map(|f| f.0), after.unwrap_or(0), 0, normal);
    if app.config.compat.is_some() {
        let url = next.map(|n| {
            json!(format!(
                "{}/conversations/{id}/messages?next={n}",
                app.base_url()
            ))
        });
        crate::compat::mark_last_row(&mut page, url.as_ref());
    }
    let pagination = match next {
        Some(n) => json!({"more": true, "next": n.to_string()}),
        None => json!({"more": false}),
    };
    Ok(bare(
        json!({"data": {"messages": page}, "pagination": pagination}),
    ))
}

/// `GET /conversations/stats`: bare `{"conversationCount": {OPEN, CLOSED, PENDING}}`.
async fn stats(State(app): State<AppState>) -> Response {
    let org = app.read();
    let mut counts = [0u64; 3];
    for c in &org.conversations {
        if let Some(s) = text(c, "status").and_then(status_id) {
            counts[usize::from(s) - 1] += 1;
        }
    }
    bare(
        json!({"conversationCount": {"OPEN": counts[0], "CLOSED": counts[1], "PENDING": counts[2]}}),
    )
}

/// HTML as Drift renders a posted body.
fn as_html(body: &str) -> String {
    if body.trim_start().starts_with('<') {
        body.to_string()
    } else {
        format!("<p>{body}</p>")
    }
}

/// `POST /conversations/{id}/messages` -> `{"data": {"messages": [message]}}` (doc example).
async fn post_message(
    State(app): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let id = path_id(&id, "conversationId")?;
    let body = json_body(&body)?;
    let kind = match body.get("type").and_then(Value::as_str) {
        Some("chat") => "chat",
        Some("private_note") => "private_note",
        _ => {
            return Err(ApiError::invalid(
                "type",
                "type is required: `chat` or `private_note`",
            ))
        }
    };
    let text_body = body
        .get("body")
        .and_then(Value::as_str)
        .map_or(Body::Absent, |b| Body::Text(Cow::Owned(as_html(b))));
    let user = body.get("userId").and_then(Value::as_i64);
    let now = app.clock.now_ms();
    let mut org = app.write();
    let (i, _) = org.conversation(id).ok_or_else(|| not_found(id))?;
    if let Some(u) = user {
        if !org.users.iter().any(|x| int(x, "id") == u) {
            return Err(ApiError::invalid(
                "userId",
                format!("userId {u} is not a user of this org"),
            ));
        }
    }
    let author_id = user.unwrap_or(BOT_USER_ID);
    let author = Author {
        user: true,
        id: author_id,
        bot: author_id == BOT_USER_ID,
    };
    let msg_id = IdGen::take(&mut org.ids.message);
    let mut msg = Message::new(msg_id, id, now, author, kind, text_body);
    if let Some(b) = body.get("buttons") {
        let mut extra = Obj::new();
        extra.insert("buttons".into(), b.clone());
        msg.extra = Some(Arc::new(extra));
    }
    msg.attributes = Some(Arc::new(obj(
        json!({"developer_app_id": "app-0000sandbox"}),
    )));
    let out = msg.to_json();
    org.messages[i].push(msg);
    org.conversations[i].insert("updatedAt".into(), json!(now));
    org.reposition(i);
    drop(org);
    app.webhooks.emit(vec![("new_message", out.clone())]);
    Ok(data(json!({ "messages": [out] })))
}

/// `POST /conversations/new`: finds the earliest contact with the email or creates one;
/// answers the bare conversation (REFERENCE §7.2, quirk 8).
async fn create(State(app): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let email = body
        .get("email")
        .and_then(Value::as_str)
        .filter(|e| e.contains('@'))
        .ok_or_else(|| {
            ApiError::invalid("email", "email is required and must be an email address")
        })?
        .to_string();
    let msg_body = body
        .pointer("/message/body")
        .and_then(Value::as_str)
        .map_or(Body::Absent, |b| Body::Text(Cow::Owned(as_html(b))));
    let msg_attrs = body
        .pointer("/message/attributes")
        .and_then(Value::as_object)
        .cloned();
    let now = app.clock.now_ms();
    let mut org = app.write();
    let contact_id = match org.contacts_by_email(&email).first() {
        Some(c) => int(c, "id"),
        None => super::contacts::insert_contact(&mut org, obj(json!({"email": email})), now),
    };
    let id = IdGen::take(&mut org.ids.conversation);
    let conv = obj(
        json!({"id": id, "status": "open", "participants": [BOT_USER_ID], "contactId": contact_id,
        "inboxId": INBOX_ID, "createdAt": now, "updatedAt": now, "conversationTags": []}),
    );
    let author = Author {
        user: false,
        id: contact_id,
        bot: false,
    };
    let mut msg = Message::new(
        IdGen::take(&mut org.ids.message),
        id,
        now,
        author,
        "chat",
        msg_body,
    );
    msg.attributes = msg_attrs.map(Arc::new);
    let events = if app.webhooks.enabled() {
        crate::webhooks::conversation_events(&conv, std::slice::from_ref(&msg))
    } else {
        Vec::new()
    };
    org.push_conversation(conv, vec![msg]);
    drop(org);
    app.webhooks.emit(events);
    Ok(bare(
        json!({"status": "open", "participants": [BOT_USER_ID], "contactId": contact_id,
        "createdAt": now, "id": id, "inboxId": INBOX_ID}),
    ))
}
