//! Accounts (REFERENCE §7.3).

use futures::Stream;
use reqwest::Method;
use serde::Deserialize;

use crate::client::{Kind, Req};
use crate::decode::{Body, BodyError};
use crate::models::{Account, OkResult};
use crate::pagination::{next_from_link, paginate, Cursor, Fetched, Next, Page, PageCursor};
use crate::records::{RawRecord, Records};
use crate::{Client, Error};

use super::{data_record, Data};

const READ: &str = "account_read";
const WRITE: &str = "account_write";

/// `data` of `GET /accounts`, its records typed (`R = Account`) or kept raw.
#[derive(Deserialize)]
pub(crate) struct AccountsPage<R> {
    pub(crate) accounts: Option<Vec<R>>,
    pub(crate) total: Option<u64>,
    pub(crate) next: Option<String>,
}

/// What `GET /accounts` must answer.
const EXPECT_ACCOUNTS: &str = "a JSON object with \"data.accounts\"";

/// A decoded page of `GET /accounts`: its accounts, `data.total` and `data.next`.
pub(crate) type AccountsFetched = (Records<Account>, Option<u64>, Option<String>);

/// Decodes a page of `GET /accounts`.
pub(crate) fn accounts_page(body: &Body<'_>) -> Result<AccountsFetched, BodyError> {
    body.decode(
        EXPECT_ACCOUNTS,
        |d: Data<AccountsPage<Account>>| {
            let p = d.data;
            (
                Records::fitting(p.accounts.unwrap_or_default()),
                p.total,
                p.next,
            )
        },
        |d: Data<AccountsPage<RawRecord>>| {
            let p = d.data;
            Ok((
                body.records(p.accounts.unwrap_or_default()),
                p.total,
                p.next,
            ))
        },
    )
}

/// `index` query value of a relative link, if any.
pub(crate) fn link_index(cursor: &PageCursor) -> Option<u64> {
    let Cursor::Link(rel) = cursor.parse() else {
        return None;
    };
    let (_, query) = rel.split_once('?')?;
    query
        .split('&')
        .find_map(|p| p.strip_prefix("index="))
        .and_then(|v| v.parse().ok())
}

async fn fetch_accounts(
    client: Client,
    size: u32,
    cursor: Option<PageCursor>,
) -> Result<Fetched<Account>, Error> {
    if size == 0 {
        return Err(Error::Invalid {
            field: Some("page_size".into()),
            message: "accounts.list: page_size must be at least 1 (Drift's maximum is 65 or \
                      100, REFERENCE §7.3)"
                .into(),
            status: None,
        });
    }
    let req = match cursor.as_ref().map(PageCursor::parse) {
        Some(Cursor::Link(rel)) => Req::get("accounts.list", READ, rel),
        _ => Req::get("accounts.list", READ, "accounts")
            .query("index", 0)
            .query("size", size),
    };
    let (records, total, next) = client.read(&req, accounts_page).await?;
    let next = accounts_next(&client, next.as_deref(), total);
    Ok(Fetched { records, next })
}

/// `data.next` unless `data.total` is reached: then nothing is left even if a next link
/// was sent.
pub(crate) fn accounts_next(client: &Client, next: Option<&str>, total: Option<u64>) -> Next {
    match next_from_link(client, next) {
        Next::Cursor(c) if matches!((link_index(&c), total), (Some(i), Some(t)) if i >= t) => {
            Next::End
        }
        other => other,
    }
}

impl Client {
    /// Pages of `GET /accounts?index&size` (`size` ≤ 65 per the Postman-derived spec;
    /// REFERENCE §7.3), following `data.next` until it disappears or its `index` reaches
    /// `data.total`. Needs `account_read` (paid plans; 403 otherwise).
    pub fn accounts(
        &self,
        page_size: u32,
    ) -> impl Stream<Item = Result<Page<Account>, Error>> + Send + 'static {
        paginate(
            self.clone(),
            "accounts.list",
            None,
            move |client, cursor| fetch_accounts(client, page_size, cursor),
        )
    }

    /// `GET /accounts/{accountId}` (soft-deleted ones come back with `deleted: true`).
    /// Errors: `NotFound`; `Unfit` (key: `account_id`) when it does not fit the model.
    pub async fn account(&self, account_id: &str) -> Result<Account, Error> {
        let req = Req::get(
            "accounts.get",
            READ,
            format!("accounts/{}", path_segment(account_id)),
        );
        self.read(&req, |b| data_record(b, Some(account_id.to_string())))
            .await
    }

    /// `POST /accounts/create` (`ownerId` required; duplicate domain → `Conflict`/`Invalid`).
    /// Never retried blindly.
    pub async fn create_account(&self, account: &Account) -> Result<Account, Error> {
        let req = Req::with_body(
            Method::POST,
            "accounts.create",
            Some(WRITE),
            "accounts/create",
            account,
            Kind::Create,
        )?;
        self.read(&req, |b| data_record(b, None)).await
    }

    /// `PATCH /accounts/update` with the full account incl. `accountId` and `ownerId`
    /// (quirk 10: the id is in the body, not the path). Errors: `Invalid` when `accountId`
    /// is missing, before any request.
    pub async fn update_account(&self, account: &Account) -> Result<Account, Error> {
        if account.account_id.as_deref().is_none_or(str::is_empty) {
            return Err(Error::Invalid {
                field: Some("accountId".into()),
                message: "accounts.update needs accountId in the body (REFERENCE §7.3)".into(),
                status: None,
            });
        }
        let req = Req::with_body(
            Method::PATCH,
            "accounts.update",
            Some(WRITE),
            "accounts/update",
            account,
            Kind::Idempotent,
        )?;
        self.read(&req, |b| data_record(b, account.account_id.clone()))
            .await
    }

    /// `DELETE /accounts/{accountId}` (soft delete) → `{"result":"OK","ok":true}`.
    pub async fn delete_account(&self, account_id: &str) -> Result<OkResult, Error> {
        let mut req = Req::get(
            "accounts.delete",
            WRITE,
            format!("accounts/{}", path_segment(account_id)),
        );
        req.method = Method::DELETE;
        req.kind = Kind::Idempotent;
        self.ok_result(&req).await
    }
}

/// Percent-encodes a string id for use as one path segment.
pub(crate) fn path_segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
