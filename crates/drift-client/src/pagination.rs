//! Pagination shared by every paginated endpoint (REFERENCE §6).
//!
//! One loop ([`paginate`]) with small per-endpoint hooks that fetch a page and say what
//! comes next. A pass ends only on a structural signal (no next link, `more: false`, no
//! `pagination` object). A repeated cursor, a cursor cycle, `more: true` without a cursor,
//! a next link to another host, or the page cap is an `Error::Pagination` naming the
//! endpoint and page — never a silent stop.
//!
//! When the cursor a page returned is bad, the page itself is still yielded (its records
//! were read correctly) and the error follows as the next item. Move a watermark only after
//! the stream has ended without error.
//!
//! Records that do not fit their model never fail a page: they come in [`Page::unfit`]
//! and the pass goes on. Repeat detection compares the keys of the records that fit.

use std::collections::HashMap;
use std::future::Future;

use futures::Stream;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::base::relative_link;
use crate::records::{Records, Unfit};
use crate::{Client, Error};

/// One page of records.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    /// The records of this page that fit their model, in Drift's order.
    pub items: Vec<T>,
    /// The records of this page that do not fit their model even leniently, in Drift's
    /// order (see [`Unfit`]). They do not stop the pass.
    pub unfit: Vec<Unfit>,
    /// 1-based page number within this pass (a resumed pass starts at 1 again).
    pub number: u32,
    /// Cursor of the following page; `None` on the last page. Store it to resume there.
    pub next: Option<PageCursor>,
}

/// Opaque position of a page. Store it (e.g. in a checkpoint) and pass it back as
/// `ListConversations::start` to resume a pass at that page.
///
/// Encodings (stable): `/path?query` — a next link relative to the base URL;
/// `next:<cursor>` — a legacy `next` cursor; `page_token:<token>` or any other string — a
/// `page_token` value (use the prefix for a raw token that starts with `/` or `next:`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct PageCursor(pub String);

impl PageCursor {
    pub(crate) fn link(relative: &str) -> PageCursor {
        PageCursor(format!("/{relative}"))
    }

    pub(crate) fn legacy(next: &str) -> PageCursor {
        PageCursor(format!("next:{next}"))
    }

    pub(crate) fn parse(&self) -> Cursor<'_> {
        if let Some(rel) = self.0.strip_prefix('/') {
            Cursor::Link(rel)
        } else if let Some(next) = self.0.strip_prefix("next:") {
            Cursor::Legacy(next)
        } else if let Some(token) = self.0.strip_prefix("page_token:") {
            Cursor::PageToken(token)
        } else {
            Cursor::PageToken(&self.0)
        }
    }

    /// Identity used to detect repeats: the `page_token` of a link when it has one.
    fn key(&self) -> String {
        if let Cursor::Link(rel) = self.parse() {
            if let Some((_, query)) = rel.split_once('?') {
                for pair in query.split('&') {
                    if let Some(token) = pair.strip_prefix("page_token=") {
                        return format!("page_token:{token}");
                    }
                }
            }
        }
        match self.parse() {
            Cursor::PageToken(t) => format!("page_token:{t}"),
            _ => self.0.clone(),
        }
    }
}

/// A decoded [`PageCursor`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Cursor<'a> {
    /// Path and query relative to the base URL.
    Link(&'a str),
    /// Legacy `next` cursor value.
    Legacy(&'a str),
    /// `page_token` value.
    PageToken(&'a str),
}

/// What a fetched page says about the next one.
#[derive(Debug)]
pub(crate) enum Next {
    End,
    Cursor(PageCursor),
    /// `more: true` (or equivalent) but no cursor.
    Missing(&'static str),
    /// A cursor that must not be followed (other host).
    Refused(String),
}

/// What identifies a record within a page, so that a page served twice in a row is noticed
/// even when its cursor looked new (a next cursor that leads back to the first page, which
/// was fetched without one). `None`: not comparable (the page is never taken for a repeat).
pub(crate) trait PageKey {
    fn page_key(&self) -> Option<String>;
}

impl PageKey for crate::Conversation {
    fn page_key(&self) -> Option<String> {
        Some(self.id.to_string())
    }
}

impl PageKey for crate::Message {
    fn page_key(&self) -> Option<String> {
        Some(self.id.to_string())
    }
}

impl PageKey for crate::Contact {
    fn page_key(&self) -> Option<String> {
        Some(self.id.to_string())
    }
}

impl PageKey for crate::Account {
    fn page_key(&self) -> Option<String> {
        self.account_id.clone()
    }
}

impl PageKey for () {
    fn page_key(&self) -> Option<String> {
        None
    }
}

/// A fetched page before validation.
pub(crate) struct Fetched<T> {
    pub records: Records<T>,
    pub next: Next,
}

/// Next link (absolute or relative) → cursor, refusing other hosts. Empty → end.
pub(crate) fn next_from_link(client: &Client, link: Option<&str>) -> Next {
    match link.map(str::trim).filter(|l| !l.is_empty()) {
        None => Next::End,
        Some(link) => match relative_link(&client.inner.base, link) {
            Ok(rel) => Next::Cursor(PageCursor::link(&rel)),
            Err(reason) => Next::Refused(reason),
        },
    }
}

/// `pagination: {more, next}` → next. `more: false` ends; `more: true` needs a cursor;
/// `more` absent follows a cursor when there is one. The cursor may be a string or a number
/// (quirk 6: documented as int, sent as string).
pub(crate) fn next_from_pagination(more: Option<bool>, next: Option<&Value>) -> Next {
    let cursor = match next {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    match (more, cursor) {
        (Some(false), _) => Next::End,
        (_, Some(c)) => Next::Cursor(PageCursor::legacy(&c)),
        (Some(true), None) => Next::Missing("pagination.more is true but pagination.next is empty"),
        (None, None) => Next::End,
    }
}

struct State<F> {
    client: Client,
    fetch: F,
    route: &'static str,
    cursor: Option<PageCursor>,
    number: u32,
    /// Cursor key → page number fetched with it.
    seen: HashMap<String, u32>,
    /// Record keys of the previous page (see [`PageKey`]).
    last_keys: Vec<String>,
    pending: Option<Error>,
    done: bool,
}

/// Drives `fetch(client, cursor)` page by page until a structural end.
pub(crate) fn paginate<T, F, Fut>(
    client: Client,
    route: &'static str,
    start: Option<PageCursor>,
    fetch: F,
) -> impl Stream<Item = Result<Page<T>, Error>> + Send + 'static
where
    T: PageKey + Send + 'static,
    F: Fn(Client, Option<PageCursor>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Fetched<T>, Error>> + Send,
{
    let mut seen = HashMap::new();
    if let Some(c) = &start {
        seen.insert(c.key(), 1);
    }
    let state = State {
        client,
        fetch,
        route,
        cursor: start,
        number: 0,
        seen,
        last_keys: Vec::new(),
        pending: None,
        done: false,
    };
    futures::stream::unfold(state, |mut st| async move {
        if let Some(e) = st.pending.take() {
            st.done = true;
            return Some((Err(e), st));
        }
        if st.done {
            return None;
        }
        st.number += 1;
        let item = step(&mut st).await;
        Some((item, st))
    })
}

async fn step<T, F, Fut>(st: &mut State<F>) -> Result<Page<T>, Error>
where
    T: PageKey,
    F: Fn(Client, Option<PageCursor>) -> Fut,
    Fut: Future<Output = Result<Fetched<T>, Error>>,
{
    let number = st.number;
    if number > st.client.inner.page_cap {
        st.done = true;
        return Err(pagination_error(
            st.route,
            number,
            format!(
                "page cap of {} pages reached; raise ClientBuilder::page_cap if the data is \
                 really this large",
                st.client.inner.page_cap
            ),
        ));
    }
    let fetched = match (st.fetch)(st.client.clone(), st.cursor.clone()).await {
        Ok(f) => f,
        Err(e) => {
            st.done = true;
            return Err(e);
        }
    };
    let keys: Vec<String> = fetched
        .records
        .items
        .iter()
        .filter_map(T::page_key)
        .collect();
    if !keys.is_empty() && keys == st.last_keys {
        st.done = true;
        return Err(pagination_error(
            st.route,
            number,
            format!(
                "repeated page: page {number} holds the same {} records as page {} (its cursor \
                 led back to a page already read)",
                keys.len(),
                number - 1
            ),
        ));
    }
    st.last_keys = keys;
    let next = match fetched.next {
        Next::End => {
            st.done = true;
            None
        }
        Next::Missing(reason) => {
            st.pending = Some(pagination_error(st.route, number, reason.to_string()));
            None
        }
        Next::Refused(reason) => {
            st.pending = Some(pagination_error(st.route, number, reason));
            None
        }
        Next::Cursor(c) => {
            check_repeat(st, number, &c);
            st.cursor = Some(c.clone());
            Some(c)
        }
    };
    Ok(Page {
        items: fetched.records.items,
        unfit: fetched.records.unfit,
        number,
        next,
    })
}

fn check_repeat<F>(st: &mut State<F>, number: u32, c: &PageCursor) {
    let key = c.key();
    match st.seen.get(&key) {
        Some(&used_by) if used_by == number => {
            st.pending = Some(pagination_error(
                st.route,
                number,
                format!(
                    "repeated cursor: page {number} returned the cursor it was fetched with ({})",
                    c.0
                ),
            ));
        }
        Some(&used_by) => {
            st.pending = Some(pagination_error(
                st.route,
                number,
                format!(
                    "cursor cycle: page {number} returned cursor {} already used for page {used_by}",
                    c.0
                ),
            ));
        }
        None => {
            st.seen.insert(key, number + 1);
        }
    }
}

fn pagination_error(route: &str, page: u32, reason: String) -> Error {
    Error::Pagination {
        endpoint: route.to_string(),
        page,
        reason,
    }
}

/// Flattens a stream of pages into a stream of records (errors pass through in place).
///
/// Use it when page boundaries do not matter; keep the page stream when you checkpoint
/// `Page::next` or need the records that did not fit ([`Page::unfit`], not in this stream).
pub fn into_records<T, S>(pages: S) -> impl Stream<Item = Result<T, Error>> + Send + 'static
where
    T: Send + 'static,
    S: Stream<Item = Result<Page<T>, Error>> + Send + 'static,
{
    use futures::StreamExt;
    pages.flat_map(|page| {
        let items: Vec<Result<T, Error>> = match page {
            Ok(p) => p.items.into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e)],
        };
        futures::stream::iter(items)
    })
}
