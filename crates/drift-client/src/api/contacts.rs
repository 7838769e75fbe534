//! Contacts (REFERENCE §7.1).

use futures::TryStreamExt;
use reqwest::header::{HeaderMap, LINK};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::client::{Kind, Req};
use crate::models::{Contact, CustomAttribute, OkResult, TimelineEvent};
use crate::pagination::{next_from_link, paginate, Cursor, Fetched, Next, Page, PageCursor};
use crate::{Client, Error};

use super::Data;

const READ: &str = "contact_read";
const WRITE: &str = "contact_write";

/// `data` of a lookup: an array (quirk 3), though one doc example shows a single object.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    Many(Vec<Contact>),
    One(Box<Contact>),
}

#[derive(Deserialize)]
pub(crate) struct AttributesBody {
    #[serde(default)]
    pub(crate) properties: Vec<CustomAttribute>,
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
    let (body, headers): (Data<Option<OneOrMany>>, _) = client.json_with_headers(&req).await?;
    let items = match body.data {
        Some(OneOrMany::Many(v)) => v,
        Some(OneOrMany::One(c)) => vec![*c],
        None => Vec::new(),
    };
    let next = match link_next(&headers) {
        Some(link) => next_from_link(&client, Some(&link)),
        None => Next::End,
    };
    Ok(Fetched { items, next })
}

fn lookup_request(route: &'static str, query: Vec<(&'static str, String)>) -> Req {
    let mut req = Req::get(route, READ, "contacts");
    req.query = query;
    req
}

impl Client {
    /// `GET /contacts/{id}`. Errors: `NotFound` for an unknown id. Needs `contact_read`.
    pub async fn contact(&self, id: i64) -> Result<Contact, Error> {
        let req = Req::get("contacts.get", READ, format!("contacts/{id}"));
        Ok(self.json::<Data<Contact>>(&req).await?.data)
    }

    async fn lookup(&self, first: Req) -> Result<Vec<Contact>, Error> {
        let route = first.route;
        let pages: Vec<Page<Contact>> = paginate(self.clone(), route, None, move |c, cursor| {
            fetch_lookup(c, clone_req(&first), cursor)
        })
        .try_collect()
        .await?;
        Ok(pages.into_iter().flat_map(|p| p.items).collect())
    }

    /// `GET /contacts?email=` — every contact with that exact email (emails are not unique,
    /// quirk 3), following `Link: rel=next` headers.
    pub async fn contacts_by_email(&self, email: &str) -> Result<Vec<Contact>, Error> {
        self.lookup(lookup_request(
            "contacts.by_email",
            vec![("email", email.to_string())],
        ))
        .await
    }

    /// `GET /contacts?idType=external&id=` — contacts with that `externalId`.
    pub async fn contacts_by_external_id(&self, external_id: &str) -> Result<Vec<Contact>, Error> {
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
    pub async fn contact_attributes(&self) -> Result<Vec<CustomAttribute>, Error> {
        let req = Req::get(
            "contacts.attributes",
            "all_contact_read",
            "contacts/attributes",
        );
        Ok(self
            .json::<Data<AttributesBody>>(&req)
            .await?
            .data
            .properties)
    }

    /// `POST /contacts` with `{"attributes": {...}}` (`email` required). Never retried
    /// blindly. Errors: `Conflict` (or `Invalid`) for a duplicate email without externalId.
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
        Ok(self.json::<Data<Contact>>(&req).await?.data)
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
        Ok(self.json::<Data<Contact>>(&req).await?.data)
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
        Ok(self.json::<Data<TimelineEvent>>(&req).await?.data)
    }

    pub(crate) async fn ok_result(&self, req: &Req) -> Result<OkResult, Error> {
        let raw = self.send(req).await?;
        if raw.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(OkResult::default());
        }
        crate::decode::decode(req.route, &raw.body, &self.inner.redactor)
    }
}

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
