//! Conversations, messages, stats, reports (REFERENCE §7.2).

use futures::{Stream, TryStreamExt};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::client::{Kind, Req};
use crate::decode::{kind_of, Body, BodyError};
use crate::models::{Conversation, ConversationStats, Message, ReportResponse};
use crate::pagination::{
    next_from_link, next_from_pagination, paginate, Cursor, Fetched, Next, Page, PageCursor,
};
use crate::records::{RawRecord, Records};
use crate::{Client, Error};

use super::{bare_record, data_record, unfit_error, Data};

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

/// A `GET /conversations/list` body, its records typed (`R = Conversation`) or kept raw.
#[derive(Deserialize)]
pub(crate) struct ListBody<R> {
    pub(crate) data: Option<Vec<R>>,
    links: Option<Links>,
    pagination: Option<Pagination>,
}

/// What `GET /conversations/list` must answer.
const EXPECT_LIST: &str = super::EXPECT_LIST;

/// A decoded `GET /conversations/list` body: its records (those that fit and the unfit
/// ones) and what it says about the next page.
pub(crate) struct ListPage {
    pub(crate) records: Records<Conversation>,
    links: Option<Links>,
    pagination: Option<Pagination>,
}

/// Decodes a `GET /conversations/list` body.
pub(crate) fn list_page(body: &Body<'_>) -> Result<ListPage, BodyError> {
    body.decode(
        EXPECT_LIST,
        |b: ListBody<Conversation>| ListPage {
            records: Records::fitting(b.data.unwrap_or_default()),
            links: b.links,
            pagination: b.pagination,
        },
        |b: ListBody<RawRecord>| {
            Ok(ListPage {
                records: body.records(b.data.unwrap_or_default()),
                links: b.links,
                pagination: b.pagination,
            })
        },
    )
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

/// A `GET /conversations/{id}/messages` body, its records typed or kept raw.
#[derive(Deserialize)]
pub(crate) struct MessagesBody<R> {
    pub(crate) data: Option<MessagesData<R>>,
    pub(crate) pagination: Option<Pagination>,
}

#[derive(Deserialize)]
pub(crate) struct MessagesData<R> {
    pub(crate) messages: Option<Vec<R>>,
}

/// What `GET /conversations/{id}/messages` must answer.
const EXPECT_MESSAGES: &str = "a JSON object with a \"data.messages\" list";

/// Decodes a messages body: its messages and its `pagination`.
pub(crate) fn messages_page(
    body: &Body<'_>,
) -> Result<(Records<Message>, Option<Pagination>), BodyError> {
    body.decode(
        EXPECT_MESSAGES,
        |b: MessagesBody<Message>| {
            let list = b.data.and_then(|d| d.messages).unwrap_or_default();
            (Records::fitting(list), b.pagination)
        },
        |b: MessagesBody<RawRecord>| {
            let list = b.data.and_then(|d| d.messages).unwrap_or_default();
            Ok((body.records(list), b.pagination))
        },
    )
}

/// What `GET /conversations/stats` must answer.
const EXPECT_STATS: &str = "a JSON object with \"conversationCount\"";
/// What `POST /reports/conversations` must answer.
const EXPECT_REPORT: &str = "a JSON object with \"count\" and \"data\"";
/// What `POST /conversations/new` must answer.
const EXPECT_CONVERSATION: &str = "a JSON object: the conversation (or it in \"data\")";
/// What `POST /conversations/{id}/messages` must answer.
const EXPECT_POSTED: &str = "a JSON object with \"data.messages\" (or a message in \"data\")";

/// A body that is the record, or has it in `data` (quirk 8).
pub(crate) fn maybe_data_record<T: crate::records::Model>(
    body: &Body<'_>,
    expected: &str,
) -> Result<T, BodyError> {
    body.decode(
        expected,
        |m: MaybeData<T>| Ok(m.into_inner()),
        |raw: RawRecord| {
            if kind_of(&raw) != "an object" {
                return Err(format!("the body is {}", kind_of(&raw)));
            }
            let wrapped: Option<Data<RawRecord>> = serde_json::from_str(raw.get()).ok();
            Ok(match wrapped {
                Some(d) if kind_of(&d.data) == "an object" => body.record(&d.data, None),
                _ => body.record(&raw, None),
            })
        },
    )?
    .map_err(unfit_error)
}

/// The messages a post answered: `data.messages[]`, or one message in `data` (quirk 9).
/// One that does not fit is the call's error (`Unfit`).
pub(crate) fn posted_messages(body: &Body<'_>) -> Result<Vec<Message>, BodyError> {
    let records = body.decode(
        EXPECT_POSTED,
        |posted: Data<PostedMessages>| {
            Records::fitting(match posted.data {
                PostedMessages::Many { messages } => messages,
                PostedMessages::One(m) => vec![*m],
            })
        },
        |posted: Data<RawRecord>| {
            if kind_of(&posted.data) != "an object" {
                return Err(format!("\"data\" is {}", kind_of(&posted.data)));
            }
            let many: MessagesData<RawRecord> =
                serde_json::from_str(posted.data.get()).unwrap_or(MessagesData { messages: None });
            Ok(match many.messages {
                Some(list) => body.records(list),
                None => body.records(vec![posted.data]),
            })
        },
    )?;
    match records.unfit.into_iter().next() {
        Some(u) => Err(unfit_error(u)),
        None => Ok(records.items),
    }
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
pub(crate) fn list_next(client: &Client, body: &ListPage) -> Next {
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
            status: None,
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
    let page = client.read(&req, list_page).await?;
    let next = list_next(&client, &page);
    Ok(Fetched {
        records: page.records,
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
    let (records, pagination) = client.read(&req, messages_page).await?;
    let next = match &pagination {
        Some(p) => next_from_pagination(p.more, p.next.as_ref()),
        None => Next::End,
    };
    Ok(Fetched { records, next })
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
    /// Errors: `NotFound` for an unknown id; `Unfit` when it does not fit the model.
    pub async fn conversation(&self, id: i64) -> Result<Conversation, Error> {
        let req = Req::get("conversations.get", READ, format!("conversations/{id}"));
        self.read(&req, |b| data_record(b, Some(id.to_string())))
            .await
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

    /// Every message of a conversation (all pages of [`Client::messages`]), oldest first;
    /// messages that do not fit the model are in `unfit`.
    pub async fn conversation_messages(&self, id: i64) -> Result<Records<Message>, Error> {
        let pages: Vec<Page<Message>> = self.messages(id).try_collect().await?;
        let mut all = Records::default();
        for p in pages {
            all.extend(Records {
                items: p.items,
                unfit: p.unfit,
            });
        }
        Ok(all)
    }

    /// `GET /conversations/stats`: bare `{"conversationCount": {...}}` (quirk 12).
    pub async fn conversation_stats(&self) -> Result<ConversationStats, Error> {
        let req = Req::get("conversations.stats", READ, "conversations/stats");
        self.read(&req, |b| bare_record(b, EXPECT_STATS)).await
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
        self.read(&req, |b| maybe_data_record(b, EXPECT_CONVERSATION))
            .await
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
        self.read(&req, posted_messages).await
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
        self.read(&req, |b| bare_record(b, EXPECT_REPORT)).await
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum PostedMessages {
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
