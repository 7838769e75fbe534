//! Accounts (REFERENCE §7.3).

use futures::Stream;
use reqwest::Method;
use serde::Deserialize;

use crate::client::{Kind, Req};
use crate::models::{Account, OkResult};
use crate::pagination::{next_from_link, paginate, Cursor, Fetched, Next, Page, PageCursor};
use crate::{Client, Error};

use super::Data;

const READ: &str = "account_read";
const WRITE: &str = "account_write";

#[derive(Deserialize)]
pub(crate) struct AccountsPage {
    #[serde(default)]
    pub(crate) accounts: Option<Vec<Account>>,
    #[serde(default)]
    pub(crate) total: Option<u64>,
    #[serde(default)]
    pub(crate) next: Option<String>,
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
        });
    }
    let req = match cursor.as_ref().map(PageCursor::parse) {
        Some(Cursor::Link(rel)) => Req::get("accounts.list", READ, rel),
        _ => Req::get("accounts.list", READ, "accounts")
            .query("index", 0)
            .query("size", size),
    };
    let page: Data<AccountsPage> = client.json(&req).await?;
    let page = page.data;
    let next = match next_from_link(&client, page.next.as_deref()) {
        // `data.total` reached: nothing is left even if a next link was sent.
        Next::Cursor(c) if matches!((link_index(&c), page.total), (Some(i), Some(t)) if i >= t) => {
            Next::End
        }
        other => other,
    };
    Ok(Fetched {
        items: page.accounts.unwrap_or_default(),
        next,
    })
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
    pub async fn account(&self, account_id: &str) -> Result<Account, Error> {
        let req = Req::get(
            "accounts.get",
            READ,
            format!("accounts/{}", path_segment(account_id)),
        );
        Ok(self.json::<Data<Account>>(&req).await?.data)
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
        Ok(self.json::<Data<Account>>(&req).await?.data)
    }

    /// `PATCH /accounts/update` with the full account incl. `accountId` and `ownerId`
    /// (quirk 10: the id is in the body, not the path). Errors: `Invalid` when `accountId`
    /// is missing, before any request.
    pub async fn update_account(&self, account: &Account) -> Result<Account, Error> {
        if account.account_id.as_deref().is_none_or(str::is_empty) {
            return Err(Error::Invalid {
                field: Some("accountId".into()),
                message: "accounts.update needs accountId in the body (REFERENCE §7.3)".into(),
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
        Ok(self.json::<Data<Account>>(&req).await?.data)
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
