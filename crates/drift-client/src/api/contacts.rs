//! Contacts (REFERENCE §7.1).

use futures::TryStreamExt;
use reqwest::header::{HeaderMap, LINK};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::client::{Kind, Raw, Req};
use crate::decode::{kind_of, Body, BodyError};
use crate::models::{Contact, CustomAttribute, OkResult, TimelineEvent};
use crate::pagination::{next_from_link, paginate, Cursor, Fetched, Next, Page, PageCursor};
use crate::records::{RawRecord, Records};
use crate::retry::AttemptError;
use crate::{Client, Error};

use super::{data_record, Data};

const READ: &str = "contact_read";
const WRITE: &str = "contact_write";

/// `data` of a lookup: an array (quirk 3), though one doc example shows a single object.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    Many(Vec<Contact>),
    One(Box<Contact>),
}

/// What a contacts lookup must answer.
const EXPECT_LOOKUP: &str = "a JSON object with a \"data\" list of contacts";

/// The contacts of a lookup body (`data` a list, one object, or null).
pub(crate) fn lookup_body(body: &Body<'_>) -> Result<Records<Contact>, BodyError> {
    body.decode(
        EXPECT_LOOKUP,
        |d: Data<Option<OneOrMany>>| {
            Records::fitting(match d.data {
                Some(OneOrMany::Many(v)) => v,
                Some(OneOrMany::One(c)) => vec![*c],
                None => Vec::new(),
            })
        },
        |d: Data<Option<RawRecord>>| match d.data {
            None => Ok(Records::default()),
            Some(raw) => match kind_of(&raw) {
                "a list" => {
                    let list: Vec<RawRecord> =
                        serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
                    Ok(body.records(list))
                }
                "an object" => Ok(body.records(vec![raw])),
                other => Err(format!("\"data\" is {other}")),
            },
        },
    )
}

/// `data` of `GET /contacts/attributes`, its records typed or kept raw.
#[derive(Deserialize)]
pub(crate) struct AttributesBody<R> {
    pub(crate) properties: Option<Vec<R>>,
}

/// What `GET /contacts/attributes` must answer.
const EXPECT_ATTRIBUTES: &str = "a JSON object with a \"data.properties\" list";

/// The custom attributes of a `GET /contacts/attributes` body.
pub(crate) fn attributes_body(body: &Body<'_>) -> Result<Records<CustomAttribute>, BodyError> {
    body.decode(
        EXPECT_ATTRIBUTES,
        |d: Data<AttributesBody<CustomAttribute>>| {
            Records::fitting(d.data.properties.unwrap_or_default())
        },
        |d: Data<AttributesBody<RawRecord>>| {
            Ok(body.records(d.data.properties.unwrap_or_default()))
        },
    )
}

/// The `rel="next"` target of a `Link` header (`<url>; rel="next"` or `rel='next'`).
pub(crate) fn link_next(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|part| {
            let mut pieces = part.split(';');
            let target = pieces.next()?.trim();
            let is_next = pieces.any(|p| {
                let p = p.trim().replace(['"', '\''], "");
                p.eq_ignore_ascii_case("rel=next")
            });
            is_next.then(|| {
                target
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
        })
}

async fn fetch_lookup(
    client: Client,
    first: Req,
    cursor: Option<PageCursor>,
) -> Result<Fetched<Contact>, Error> {
    let req = match cursor.as_ref().map(PageCursor::parse) {
        Some(Cursor::Link(rel)) => Req::get(first.route, READ, rel),
        _ => first,
    };
    let (records, headers) = client.read_with_headers(&req, lookup_body).await?;
    let next = match link_next(&headers) {
        Some(link) => next_from_link(&client, Some(&link)),
        None => Next::End,
    };
    Ok(Fetched { records, next })
}

fn lookup_request(route: &'static str, query: Vec<(&'static str, String)>) -> Req {
    let mut req = Req::get(route, READ, "contacts");
    req.query = query;
    req
}

impl Client {
    /// `GET /contacts/{id}`. Errors: `NotFound` for an unknown id; `Unfit` when the contact
    /// does not fit the model. Needs `contact_read`.
    pub async fn contact(&self, id: i64) -> Result<Contact, Error> {
        let req = Req::get("contacts.get", READ, format!("contacts/{id}"));
        self.read(&req, |b| data_record(b, Some(id.to_string())))
            .await
    }

    async fn lookup(&self, first: Req) -> Result<Records<Contact>, Error> {
        let route = first.route;
        let pages: Vec<Page<Contact>> = paginate(self.clone(), route, None, move |c, cursor| {
            fetch_lookup(c, clone_req(&first), cursor)
        })
        .try_collect()
        .await?;
        let mut all = Records::default();
        for p in pages {
            all.extend(Records {
                items: p.items,
                unfit: p.unfit,
            });
        }
        Ok(all)
    }

    /// `GET /contacts?email=` — every contact with that exact email (emails are not unique,
    /// quirk 3), following `Link: rel=next` headers. Contacts that do not fit the model are
    /// in `unfit`.
    pub async fn contacts_by_email(&self, email: &str) -> Result<Records<Contact>, Error> {
        self.lookup(lookup_request(
            "contacts.by_email",
            vec![("email", email.to_string())],
        ))
        .await
    }

    /// `GET /contacts?idType=external&id=` — contacts with that `externalId` (those that do
    /// not fit the model: `unfit`).
    pub async fn contacts_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Records<Contact>, Error> {
        self.lookup(lookup_request(
            "contacts.by_external_id",
            vec![
                ("idType", "external".into()),
                ("id", external_id.to_string()),
            ],
        ))
        .await
    }

    /// `GET /contacts/attributes` → `data.properties[]`. Needs the elevated
    /// `all_contact_read` scope (quirk 4); without it `Forbidden` names that scope.
    /// Attributes that do not fit the model are in `unfit`.
    pub async fn contact_attributes(&self) -> Result<Records<CustomAttribute>, Error> {
        let req = Req::get(
            "contacts.attributes",
            "all_contact_read",
            "contacts/attributes",
        );
        self.read(&req, attributes_body).await
    }

    /// `POST /contacts` with `{"attributes": {...}}` (`email` required). Never retried
    /// blindly. Errors: `Conflict` (or `Invalid`) for a duplicate email without externalId;
    /// `Unfit` when Drift's answer does not fit the model (the contact was created).
    pub async fn create_contact(&self, attributes: &Map<String, Value>) -> Result<Contact, Error> {
        let body = serde_json::json!({ "attributes": attributes });
        let req = Req::with_body(
            Method::POST,
            "contacts.create",
            Some(WRITE),
            "contacts",
            &body,
            Kind::Create,
        )?;
        self.read(&req, |b| data_record(b, None)).await
    }

    /// `PATCH /contacts/{id}` with `{"attributes": {...}}` (partial update; retried).
    pub async fn update_contact(
        &self,
        id: i64,
        attributes: &Map<String, Value>,
    ) -> Result<Contact, Error> {
        let body = serde_json::json!({ "attributes": attributes });
        let req = Req::with_body(
            Method::PATCH,
            "contacts.update",
            Some(WRITE),
            format!("contacts/{id}"),
            &body,
            Kind::Idempotent,
        )?;
        self.read(&req, |b| data_record(b, Some(id.to_string())))
            .await
    }

    /// `DELETE /contacts/{id}` → `{"result":"OK","ok":true}` (200 or 202). An empty body is
    /// accepted as success.
    pub async fn delete_contact(&self, id: i64) -> Result<OkResult, Error> {
        let mut req = Req::get("contacts.delete", WRITE, format!("contacts/{id}"));
        req.method = Method::DELETE;
        req.kind = Kind::Idempotent;
        self.ok_result(&req).await
    }

    /// `POST /contacts/timeline` with `contactId` or `externalId`, `event`, optional
    /// `createdAt` (ms). Appends an event, so it is never retried blindly.
    pub async fn post_timeline_event(&self, event: &TimelineEvent) -> Result<TimelineEvent, Error> {
        let req = Req::with_body(
            Method::POST,
            "contacts.timeline",
            Some(WRITE),
            "contacts/timeline",
            event,
            Kind::Create,
        )?;
        self.read(&req, |b| data_record(b, None)).await
    }

    /// The `{"result":"OK","ok":true}` answer of a delete; an empty body is success.
    pub(crate) async fn ok_result(&self, req: &Req) -> Result<OkResult, Error> {
        let redactor = &self.inner.redactor;
        crate::retry::run(self, req, |raw: Raw| {
            if raw.body.iter().all(u8::is_ascii_whitespace) {
                return Ok(OkResult::default());
            }
            super::bare_record(&raw.body(req.route, redactor), EXPECT_OK)
                .map_err(AttemptError::body)
        })
        .await
    }
}

/// What a delete must answer (when it answers anything).
const EXPECT_OK: &str = "an empty body or a JSON object such as {\"result\": \"OK\"}";

fn clone_req(req: &Req) -> Req {
    Req {
        method: req.method.clone(),
        target: req.target.clone(),
        query: req.query.clone(),
        body: req.body.clone(),
        route: req.route,
        scope: req.scope,
        kind: req.kind,
    }
}
