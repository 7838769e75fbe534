//! `accounts`: every page of `GET /accounts` (REFERENCE §7.3). Drift has no server-side
//! filter, so incremental filters client-side: an account is written when its
//! `updateDateTime` differs from the one stored for its `accountId` (see `KeyedCursors`).

use crate::fail::{to_record, Fail};
use crate::names::ACCOUNTS;
use crate::watermark::KeyedCursors;
use crate::Ctx;
use futures::StreamExt;
use serde_json::Value;
use std::collections::BTreeMap;
use sync_core::SyncMode;

/// Accounts per page (the Postman-derived spec's maximum; REFERENCE §6).
const PAGE_SIZE: u32 = 65;

pub(crate) async fn read(ctx: &Ctx, mode: SyncMode) -> Result<(), Fail> {
    let previous: KeyedCursors = match mode {
        SyncMode::FullRefresh => KeyedCursors::default(),
        SyncMode::Incremental => ctx
            .state
            .get(ACCOUNTS)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default(),
    };
    let mut seen = BTreeMap::new();
    let pages = ctx.client.accounts(PAGE_SIZE);
    futures::pin_mut!(pages);
    while let Some(page) = pages.next().await {
        for account in page?.items {
            let record = to_record(&account)?;
            let key = match record.get("accountId") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            let updated = record
                .get("updateDateTime")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            seen.insert(key.clone(), updated);
            if previous.changed(&key, updated) {
                ctx.out.record(ACCOUNTS, record).await?;
            }
        }
    }
    let next = KeyedCursors::from_seen(seen);
    let state = serde_json::to_value(&next).map_err(|e| Fail::Other(e.to_string()))?;
    ctx.out.checkpoint(ACCOUNTS, ACCOUNTS, state).await?;
    Ok(())
}
