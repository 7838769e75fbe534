//! Conversations, messages, stats, reports (REFERENCE §7.2).

use futures::{Stream, TryStreamExt};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::client::{Kind, Req};
use crate::models::{Conversation, ConversationStats, Message, ReportResponse};
use crate::pagination::{
    next_from_link, next_from_pagination, paginate, Cursor, Fetched, Next, Page, PageCursor,
};
use crate::{Client, Error};

use super::Data;

const READ: &str = "conversation_read";
const WRITE: &str = "conversation_write";

/// Parameters of a conversations pass (`GET /conversations/list`).
///
/// `Default` is the first page of the current generation (`page_token`) with Drift's default
/// page size and every status.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListConversations {
    /// Page size: ≤ 100 for the `page_token` generation, ≤ 50 for legacy; `None` = Drift's 25.
    pub limit: Option<u32>,
    /// Status filter ids, repeated as `statusId`: 1 OPEN, 2 CLOSED, 3 PENDING. Empty = all.
    pub status_ids: Vec<u8>,
    /// Resume at this page (a `Page::next` stored earlier); `None` = first page.
    pub start: Option<PageCursor>,
    /// Ask for the legacy `next` / `pagination` generation on the first page. Either way the
    /// generation is detected from each response and both are followed.
    pub legacy: bool,
}

#[derive(Deserialize)]
pub(crate) struct ListBody {
    #[serde(default)]
    pub(crate) data: Option<Vec<Conversation>>,
    #[serde(default)]
    links: Option<Links>,
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Deserialize)]
struct Links {
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct Pagination {
    #[serde(default)]
    pub more: Option<bool>,
    #[serde(default)]
    pub next: Option<Value>,
}

#[derive(Deserialize)]
pub(crate) struct MessagesBody {
    #[serde(default)]
    pub(crate) data: Option<MessagesData>,
    #[serde(default)]
    pub(crate) pagination: Option<Pagination>,
}

#[derive(Deserialize)]
pub(crate) struct MessagesData {
    #[serde(default)]
    pub(crate) messages: Option<Vec<Message>>,
}

fn list_request(params: &ListConversations, cursor: Option<&PageCursor>) -> Req {
    let base = |req: Req| {
        let req = match params.limit {
            Some(limit) => req.query("limit", limit),
            None => req,
        };
        params
            .status_ids
            .iter()
            .fold(req, |r, id| r.query("statusId", id))
    };
    let list = || Req::get("conversations.list", READ, "conversations/list");
    match cursor.map(PageCursor::parse) {
        None if params.legacy => base(list()).query("next", ""),
        None => base(list()).query("page_token", ""),
        Some(Cursor::Link(rel)) => Req::get("conversations.list", READ, rel),
        Some(Cursor::Legacy(next)) => base(list()).query("next", next),
        Some(Cursor::PageToken(token)) => base(list()).query("page_token", token),
    }
}

/// Next page of a list response: `links.next` when present and non-empty, else the legacy
/// `pagination` object, else the end (REFERENCE §6).
pub(crate) fn list_next(client: &Client, body: &ListBody) -> Next {
    let link = body.links.as_ref().and_then(|l| l.next.as_deref());
    if link.is_some_and(|l| !l.trim().is_empty()) {
        return next_from_link(client, link);
    }
    match &body.pagination {
        Some(p) => next_from_pagination(p.more, p.next.as_ref()),
        None => Next::End,
    }
}

/// Largest `limit` of each generation (REFERENCE §7.2).
const MAX_LIMIT: u32 = 100;
const MAX_LIMIT_LEGACY: u32 = 50;

fn check_limit(params: &ListConversations) -> Result<(), Error> {
    let max = if params.legacy {
        MAX_LIMIT_LEGACY
    } else {
        MAX_LIMIT
    };
    match params.limit {
        Some(limit) if limit == 0 || limit > max => Err(Error::Invalid {
            field: Some("limit".into()),
            message: format!(
                "conversations.list: limit {limit} is out of range; use 1..={max} (Drift's \
                 maximum for the {} generation, REFERENCE §7.2)",
                if params.legacy {
                    "legacy next"
                } else {
                    "page_token"
                }
            ),
        }),
        _ => Ok(()),
    }
}

async fn fetch_list(
    client: Client,
    params: ListConversations,
    cursor: Option<PageCursor>,
) -> Result<Fetched<Conversation>, Error> {
    check_limit(&params)?;
    let req = list_request(&params, cursor.as_ref());
    let body: ListBody = client.json(&req).await?;
    let next = list_next(&client, &body);
    Ok(Fetched {
        items: body.data.unwrap_or_default(),
        next,
    })
}

async fn fetch_messages(
    client: Client,
    id: i64,
    cursor: Option<PageCursor>,
) -> Result<Fetched<Message>, Error> {
    let mut req = Req::get(
        "conversations.messages",
        READ,
        format!("conversations/{id}/messages"),
    );
    match cursor.as_ref().map(PageCursor::parse) {
        None => {}
        Some(Cursor::Link(rel)) => req.target = rel.to_string(),
        Some(Cursor::Legacy(next) | Cursor::PageToken(next)) => req = req.query("next", next),
    }
    let body: MessagesBody = client.json(&req).await?;
    let next = match &body.pagination {
        Some(p) => next_from_pagination(p.more, p.next.as_ref()),
        None => Next::End,
    };
    Ok(Fetched {
        items: body.data.and_then(|d| d.messages).unwrap_or_default(),
        next,
    })
}

impl Client {
    /// Pages of `GET /conversations/list`, newest `updatedAt` first, both generations
    /// (REFERENCE §6, quirk 5): `page_token` + `links.next`, or legacy `next` +
    /// `pagination{more,next}`, detected from each response. Needs `conversation_read`.
    ///
    /// Errors: any request error (the pages already yielded stay valid), and
    /// `Error::Pagination` for a repeated or cycling cursor, `more: true` without a cursor,
    /// a next link to another host, or the page cap.
    pub fn conversations(
        &self,
        params: ListConversations,
    ) -> impl Stream<Item = Result<Page<Conversation>, Error>> + Send + 'static {
        let start = params.start.clone();
        paginate(
            self.clone(),
            "conversations.list",
            start,
            move |client, cursor| fetch_list(client, params.clone(), cursor),
        )
    }

    /// `GET /conversations/{id}` (with participants, tags, relatedPlaybookId).
    /// Errors: `NotFound` for an unknown id.
    pub async fn conversation(&self, id: i64) -> Result<Conversation, Error> {
        let req = Req::get("conversations.get", READ, format!("conversations/{id}"));
        Ok(self.json::<Data<Conversation>>(&req).await?.data)
    }

    /// Pages of `GET /conversations/{id}/messages`, oldest first (quirk 7), following
    /// `next` while `pagination.more` is true.
    pub fn messages(
        &self,
        conversation_id: i64,
    ) -> impl Stream<Item = Result<Page<Message>, Error>> + Send + 'static {
        paginate(
            self.clone(),
            "conversations.messages",
            None,
            move |client, cursor| fetch_messages(client, conversation_id, cursor),
        )
    }

    /// Every message of a conversation (all pages of [`Client::messages`]), oldest first.
    pub async fn conversation_messages(&self, id: i64) -> Result<Vec<Message>, Error> {
        let pages: Vec<Page<Message>> = self.messages(id).try_collect().await?;
        Ok(pages.into_iter().flat_map(|p| p.items).collect())
    }

    /// `GET /conversations/stats`: bare `{"conversationCount": {...}}` (quirk 12).
    pub async fn conversation_stats(&self) -> Result<ConversationStats, Error> {
        let req = Req::get("conversations.stats", READ, "conversations/stats");
        self.json(&req).await
    }

    /// `POST /conversations/new` with `{"email", "message": {"body", "attributes"}}`.
    /// Drift answers with the bare conversation (quirk 8); a `data` wrapper is accepted too.
    /// Never retried blindly (it creates). Needs `conversation_write`.
    pub async fn create_conversation(
        &self,
        email: &str,
        body: &str,
        attributes: Map<String, Value>,
    ) -> Result<Conversation, Error> {
        let payload = serde_json::json!({
            "email": email,
            "message": { "body": body, "attributes": attributes },
        });
        let req = Req::with_body(
            Method::POST,
            "conversations.create",
            Some(WRITE),
            "conversations/new",
            &payload,
            Kind::Create,
        )?;
        Ok(self
            .json::<MaybeData<Conversation>>(&req)
            .await?
            .into_inner())
    }

    /// `POST /conversations/{id}/messages` with a body such as
    /// `{"type": "chat", "body": "...", "userId": 1}`. Returns the created messages: Drift's
    /// example answers `data.messages[]` (quirk 9); a single message in `data` is accepted
    /// too. Never retried blindly.
    pub async fn post_message(
        &self,
        conversation_id: i64,
        message: &Value,
    ) -> Result<Vec<Message>, Error> {
        let req = Req::with_body(
            Method::POST,
            "conversations.messages.create",
            Some(WRITE),
            format!("conversations/{conversation_id}/messages"),
            message,
            Kind::Create,
        )?;
        let posted: Data<PostedMessages> = self.json(&req).await?;
        Ok(match posted.data {
            PostedMessages::Many { messages } => messages,
            PostedMessages::One(m) => vec![*m],
        })
    }

    /// `POST /reports/conversations` with `{"filters": [...], "metrics": [...]}`; bare
    /// `{count, data}` answer. Drawn from the separate 60/min reports budget (REFERENCE §4).
    pub async fn reports_conversations(&self, query: &Value) -> Result<ReportResponse, Error> {
        let req = Req::with_body(
            Method::POST,
            "reports.conversations",
            Some(READ),
            "reports/conversations",
            query,
            Kind::Read,
        )?;
        self.json(&req).await
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PostedMessages {
    Many { messages: Vec<Message> },
    One(Box<Message>),
}

/// A payload that Drift documents bare but some clients see wrapped in `data`.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum MaybeData<T> {
    Wrapped { data: T },
    Bare(T),
}

impl<T> MaybeData<T> {
    pub(crate) fn into_inner(self) -> T {
        match self {
            MaybeData::Wrapped { data } => data,
            MaybeData::Bare(t) => t,
        }
    }
}
