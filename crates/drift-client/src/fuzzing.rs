//! Entry points for the fuzz targets in the workspace's `fuzz/` folder and the
//! `reliability` crate's fuzz-style tests. Not a stable API (hidden from the docs): each
//! function runs one piece of the real decoding path on untrusted bytes and returns what
//! the client would act on, so a fuzzer can check that nothing panics, loops or leaks.

use std::sync::OnceLock;
use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::SecretString;

use crate::api::accounts::{accounts_next, accounts_page, link_index};
use crate::api::contacts::{attributes_body, link_next, lookup_body};
use crate::api::conversations::{list_next, list_page, maybe_data_record, messages_page};
use crate::api::users::{bare_list, user_map};
use crate::api::{data_list, data_record, token_info_body};
use crate::budget::Lane;
use crate::decode::{Body, BodyError};
use crate::error::{parse_error_body, Redactor};
use crate::models::{Contact, ConversationStats, Meeting, Playbook, Team, User};
use crate::pagination::{next_from_pagination, paginate, Fetched, Next, PageCursor};
use crate::records::{Records, Unfit};
use crate::{Client, Error, RateBudget};

/// Token of the fuzzing client; a decode error must never contain it.
pub const FUZZ_TOKEN: &str = "fuzz-canary-token-7d1f0c2a";

/// Base URL of the fuzzing client.
pub const FUZZ_BASE: &str = "https://driftapi.com/";

/// Every response envelope the client decodes (REFERENCE §1, §6, §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Envelope {
    /// `GET /conversations/list` (both pagination generations).
    ConversationsList,
    /// `GET /conversations/{id}/messages`.
    Messages,
    /// `GET /accounts?index&size`.
    Accounts,
    /// `GET /contacts?email=` / `?idType=external` (array or single object in `data`).
    ContactLookup,
    /// `GET /contacts/{id}`.
    Contact,
    /// `GET /contacts/attributes`.
    Attributes,
    /// `GET /users/list`.
    Users,
    /// `GET /users?userId=..` (map keyed by id).
    UsersByIds,
    /// `GET /teams/org`.
    Teams,
    /// `GET /playbooks/list` (bare array or wrapped).
    Playbooks,
    /// `GET /users/meetings/org`.
    Meetings,
    /// `POST /app/token_info`.
    TokenInfo,
    /// `GET /conversations/stats`.
    ConversationStats,
    /// Any error body (REFERENCE §5.1).
    ErrorBody,
}

impl Envelope {
    /// Every envelope, in a fixed order (a fuzz input's first byte picks one).
    pub const ALL: [Envelope; 14] = [
        Envelope::ConversationsList,
        Envelope::Messages,
        Envelope::Accounts,
        Envelope::ContactLookup,
        Envelope::Contact,
        Envelope::Attributes,
        Envelope::Users,
        Envelope::UsersByIds,
        Envelope::Teams,
        Envelope::Playbooks,
        Envelope::Meetings,
        Envelope::TokenInfo,
        Envelope::ConversationStats,
        Envelope::ErrorBody,
    ];
}

/// What decoding a body yielded: records and the next-page decision, or the decode error.
#[derive(Debug)]
pub struct Decoded {
    /// Records in the body that fit their model.
    pub records: usize,
    /// Records in the body that do not fit their model (redacted like errors).
    pub unfit: Vec<Unfit>,
    /// The next page the client would fetch (`None`: end of the pass).
    pub next: Result<Option<PageCursor>, String>,
}

fn client() -> &'static Client {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        #[allow(clippy::expect_used)]
        Client::builder(FUZZ_BASE, SecretString::from(FUZZ_TOKEN))
            .page_cap(64)
            .build()
            .expect("the fuzzing client's constant settings are valid")
    })
}

fn next_of(next: Next) -> Result<Option<PageCursor>, String> {
    match next {
        Next::End => Ok(None),
        Next::Cursor(c) => Ok(Some(c)),
        Next::Missing(reason) => Err(reason.to_string()),
        Next::Refused(reason) => Err(reason),
    }
}

fn redactor() -> &'static Redactor {
    static REDACTOR: OnceLock<Redactor> = OnceLock::new();
    REDACTOR.get_or_init(|| Redactor::new(SecretString::from(FUZZ_TOKEN)))
}

/// Runs `decode` on `body` as a 200 JSON answer of `route`.
fn de<T>(
    route: &str,
    body: &[u8],
    decode: impl FnOnce(&Body<'_>) -> Result<T, BodyError>,
) -> Result<T, Error> {
    decode(&Body::json(route, body, redactor())).map_err(|e| e.error)
}

fn plain(records: Records<impl Sized>) -> Decoded {
    Decoded {
        records: records.items.len(),
        unfit: records.unfit,
        next: Ok(None),
    }
}

fn one(records: usize) -> Decoded {
    Decoded {
        records,
        unfit: Vec::new(),
        next: Ok(None),
    }
}

/// Decodes `body` as `envelope` exactly as the client does (lone-surrogate repair and
/// per-record decoding included) and works out the next page. Errors are the client's
/// `Error::Decode` (the envelope) or `Error::Unfit` (a single record).
pub fn decode_envelope(envelope: Envelope, body: &[u8]) -> Result<Decoded, Error> {
    Ok(match envelope {
        Envelope::ConversationsList => {
            let page = de("conversations.list", body, list_page)?;
            let next = next_of(list_next(client(), &page));
            Decoded {
                next,
                ..plain(page.records)
            }
        }
        Envelope::Messages => {
            let (records, p) = de("conversations.messages", body, messages_page)?;
            let p = p.as_ref();
            let next = next_of(next_from_pagination(
                p.and_then(|p| p.more),
                p.and_then(|p| p.next.as_ref()),
            ));
            Decoded {
                next,
                ..plain(records)
            }
        }
        Envelope::Accounts => {
            let (records, total, next) = de("accounts.list", body, accounts_page)?;
            let next = next_of(accounts_next(client(), next.as_deref(), total));
            if let Ok(Some(c)) = &next {
                let _ = link_index(c);
            }
            Decoded {
                next,
                ..plain(records)
            }
        }
        Envelope::ContactLookup => plain(de("contacts.lookup", body, lookup_body)?),
        Envelope::Contact => {
            let _: Contact = de("contacts.get", body, |b| data_record(b, Some("1".into())))?;
            one(1)
        }
        Envelope::Attributes => plain(de("contacts.attributes", body, attributes_body)?),
        Envelope::Users => plain(de("users.list", body, data_list::<User>)?),
        Envelope::UsersByIds => plain(de("users.get_many", body, user_map)?),
        Envelope::Teams => plain(de("teams.list", body, data_list::<Team>)?),
        Envelope::Playbooks => plain(de("playbooks.list", body, bare_list::<Playbook>)?),
        Envelope::Meetings => plain(de("meetings.list", body, data_list::<Meeting>)?),
        Envelope::TokenInfo => {
            de("app.token_info", body, token_info_body)?;
            one(1)
        }
        Envelope::ConversationStats => {
            let _: ConversationStats = de("conversations.stats", body, |b| {
                maybe_data_record(b, "a JSON object with \"conversationCount\"")
            })?;
            one(1)
        }
        Envelope::ErrorBody => {
            let e = parse_error_body(body);
            one(usize::from(e.param.is_some()))
        }
    })
}

/// `Retry-After` as the client reads it: seconds (integer or decimal) or an HTTP date.
pub fn retry_after(value: &str) -> Option<Duration> {
    crate::budget::parse_retry_after(value)
}

/// A `*-Reset` value as the client reads it: delta seconds, epoch seconds or epoch ms.
pub fn rate_limit_reset(value: &str) -> Option<Duration> {
    crate::budget::parse_reset(value)
}

/// The wait a fresh rate budget takes from a response with `status` and `headers`
/// (name, raw value bytes); header pairs that are not valid HTTP are skipped as the HTTP
/// stack would refuse them.
pub fn rate_limit_wait(status: u16, headers: &[(&str, &[u8])]) -> Option<Duration> {
    let map = header_map(headers);
    let budget = RateBudget::new(600).ok()?;
    budget.observe(Lane::Main, status, &map, 0)
}

/// The `rel="next"` target of `Link` headers (contacts lookups).
pub fn link_header_next(values: &[&[u8]]) -> Option<String> {
    let pairs: Vec<(&str, &[u8])> = values.iter().map(|v| ("link", *v)).collect();
    link_next(&header_map(&pairs))
}

fn header_map(headers: &[(&str, &[u8])]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            map.append(n, v);
        }
    }
    map
}

/// A next link (absolute or relative) resolved against [`FUZZ_BASE`]: the cursor the
/// client would store, or why it refuses the link (other host, outside the base path).
pub fn next_link(link: &str) -> Result<Option<PageCursor>, String> {
    next_of(crate::pagination::next_from_link(client(), Some(link)))
}

/// One scripted page for [`drive_pages`].
#[derive(Clone, Debug)]
pub enum Step {
    /// The page says it is the last.
    End,
    /// The page names this cursor: a raw value as Drift sends it in `pagination.next`.
    Legacy(String),
    /// The page names this next link.
    Link(String),
    /// `more: true` without a cursor.
    Missing,
}

/// Runs the real pagination loop over scripted pages (the script repeats its last step
/// when the loop asks for more pages than it has) and returns, per page yielded, its
/// number or the error. The loop must stop: the client's page cap here is 64.
pub fn drive_pages(script: Vec<Step>) -> Vec<Result<u32, String>> {
    let script = std::sync::Arc::new(script);
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let pages = paginate(
        client().clone(),
        "fuzz.list",
        None,
        move |c: Client, cursor: Option<PageCursor>| {
            let script = script.clone();
            let i = calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async move {
                let _ = cursor;
                let step = script
                    .get(i)
                    .or_else(|| script.last())
                    .cloned()
                    .unwrap_or(Step::End);
                let next = match step {
                    Step::End => Next::End,
                    Step::Legacy(v) => {
                        next_from_pagination(Some(true), Some(&serde_json::Value::String(v)))
                    }
                    Step::Link(l) => crate::pagination::next_from_link(&c, Some(&l)),
                    Step::Missing => next_from_pagination(Some(true), None),
                };
                Ok::<_, Error>(Fetched {
                    records: Records::fitting(vec![()]),
                    next,
                })
            }
        },
    );
    futures::executor::block_on(
        pages
            .map(|p: Result<crate::Page<()>, Error>| p.map(|p| p.number).map_err(|e| e.to_string()))
            .take(1000)
            .collect(),
    )
}
