//! `accounts`: every page of `GET /accounts` on every run (REFERENCE §7.3). Drift has no
//! server-side filter, so incremental filters client-side: an account is written when its
//! content changed since the last complete pass (a content fingerprint per `accountId`, so a
//! soft delete that leaves `updateDateTime` alone is still seen).
//!
//! Deletes: Drift deletes accounts softly (`deleted: true`, still listed). Such an account is
//! written and then tombstoned, so its row keeps its data and is marked `_deleted`; an account
//! of the last complete pass that is no longer listed is tombstoned too. Because the list is
//! read whole on every run, both are seen by the next run, incremental or full.

use crate::fail::{quarantine, to_record, Fail};
use crate::names::ACCOUNTS;
use crate::streams::full_refresh::{content_hash, key_map};
use crate::Ctx;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use sync_core::SyncMode;

/// Accounts per page (the Postman-derived spec's maximum; REFERENCE §6).
const PAGE_SIZE: u32 = 65;

/// State after a complete pass: `accountId` -> content fingerprint (hex FNV-1a of the record).
/// State of older versions (`updateDateTime` per key) does not parse: the next run then writes
/// every account once and has no list to find absent ones in.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Fingerprints {
    #[serde(default)]
    accounts: BTreeMap<String, String>,
}

pub(crate) async fn read(ctx: &Ctx, mode: SyncMode) -> Result<(), Fail> {
    let previous: Fingerprints = ctx
        .state
        .get(ACCOUNTS)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let mut seen = BTreeMap::new();
    let pages = ctx.client.accounts(PAGE_SIZE);
    futures::pin_mut!(pages);
    while let Some(page) = pages.next().await {
        let page = page?;
        for unfit in &page.unfit {
            // Quarantined once per change of its raw content; its key is not tombstoned.
            let key = unfit
                .key
                .clone()
                .unwrap_or_else(|| format!("unfit:{}", unfit.raw));
            let print = content_hash(&[serde_json::Map::from_iter([(
                "unfit".to_owned(),
                Value::from(unfit.raw.as_str()),
            )])]);
            let changed = previous.accounts.get(&key) != Some(&print);
            seen.insert(key, print);
            if mode == SyncMode::FullRefresh || changed {
                quarantine(&ctx.out, ACCOUNTS, unfit).await?;
            }
        }
        for account in page.items {
            let record = to_record(&account)?;
            let key = match record.get("accountId") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            let print = content_hash(std::slice::from_ref(&record));
            let changed = previous.accounts.get(&key) != Some(&print);
            seen.insert(key.clone(), print);
            if mode == SyncMode::FullRefresh || changed {
                let deleted = account.deleted == Some(true);
                ctx.out.record(ACCOUNTS, record).await?;
                if deleted {
                    ctx.out
                        .tombstone(ACCOUNTS, key_map("accountId", &key, false))
                        .await?;
                }
            }
        }
    }
    for gone in previous.accounts.keys().filter(|k| !seen.contains_key(*k)) {
        ctx.out
            .tombstone(ACCOUNTS, key_map("accountId", gone, false))
            .await?;
    }
    let next = Fingerprints { accounts: seen };
    let state = serde_json::to_value(&next).map_err(|e| Fail::Other(e.to_string()))?;
    ctx.out.checkpoint(ACCOUNTS, ACCOUNTS, state).await?;
    Ok(())
}
