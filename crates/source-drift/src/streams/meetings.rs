//! `meetings`: booked meetings in a `slotStart` window (Drift serves at most 30 days back,
//! ≤1000 per call; REFERENCE §7.4). Incremental writes a meeting
//! when its `updatedAt` differs from the one stored for its `slug` (see `KeyedCursors`).
//!
//! Deletes: a meeting of the last complete pass whose `slotStart` lies inside this run's
//! window but that Drift no longer returns is tombstoned (cancelled or deleted). A meeting
//! whose slot left the window (older than 30 days) is not: Drift simply stops serving it.

use crate::fail::{quarantine, to_record, Fail};
use crate::names::MEETINGS;
use crate::streams::full_refresh::{content_hash, key_map};
use crate::watermark::KeyedCursors;
use crate::Ctx;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use sync_core::SyncMode;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// Drift returns at most this many meetings per call (REFERENCE §7.4).
const MAX_PER_CALL: usize = 1000;

/// Meetings with `slotStart` in `[min, max]`; a window that comes back full is split in two
/// and read again, so no meeting is lost to the per-call cap.
async fn fetch_window(
    ctx: &Ctx,
    min: i64,
    max: i64,
) -> Result<drift_client::Records<drift_client::Meeting>, Fail> {
    let mut windows = vec![(min, max)];
    let mut found = drift_client::Records::default();
    while let Some((lo, hi)) = windows.pop() {
        let page = ctx.client.meetings(lo, hi).await?;
        if page.items.len() + page.unfit.len() >= MAX_PER_CALL && hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            windows.push((mid + 1, hi));
            windows.push((lo, mid));
        } else {
            found.items.extend(page.items);
            found.unfit.extend(page.unfit);
        }
    }
    Ok(found)
}

/// State after a complete pass: cursor per meeting key, and each meeting's `slotStart` (to
/// tell a deleted meeting from one that left the window).
#[derive(Debug, Default, Serialize, Deserialize)]
struct MeetingsState {
    #[serde(flatten)]
    cursors: KeyedCursors,
    #[serde(default)]
    slots: BTreeMap<String, i64>,
}

pub(crate) async fn read(ctx: &Ctx, mode: SyncMode) -> Result<(), Fail> {
    let stored: MeetingsState = ctx
        .state
        .get(MEETINGS)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let previous = match mode {
        SyncMode::FullRefresh => KeyedCursors::default(),
        SyncMode::Incremental => stored.cursors.clone(),
    };
    let now = chrono::Utc::now().timestamp_millis();
    // A minute inside the 30-day limit so clock skew does not push the window past it.
    let min = now - ctx.config.meetings_days_back * DAY_MS + 60_000;
    let max = now + ctx.config.meetings_days_ahead * DAY_MS;
    let mut seen = BTreeMap::new();
    let mut slots = BTreeMap::new();
    let fetched = fetch_window(ctx, min, max).await?;
    for unfit in &fetched.unfit {
        if let Some(key) = &unfit.key {
            // Still booked in Drift: not tombstoned, and quarantined again only on change.
            let value = i64::from_str_radix(&content_hash_hex(&unfit.raw)[..15], 16).unwrap_or(0);
            seen.insert(key.clone(), value);
            if !previous.changed(key, value) {
                continue;
            }
        }
        quarantine(&ctx.out, MEETINGS, unfit).await?;
    }
    for meeting in fetched.items {
        let record = to_record(&meeting)?;
        let key = ["slug", "eventId"]
            .iter()
            .find_map(|k| record.get(*k).and_then(Value::as_str))
            .unwrap_or_default()
            .to_owned();
        let updated = ["updatedAt", "slotStart"]
            .iter()
            .find_map(|k| record.get(*k).and_then(Value::as_i64))
            .unwrap_or(0);
        if let Some(slot) = record.get("slotStart").and_then(Value::as_i64) {
            slots.insert(key.clone(), slot);
        }
        seen.insert(key.clone(), updated);
        if previous.changed(&key, updated) {
            ctx.out.record(MEETINGS, record).await?;
        }
    }
    let gone = stored
        .slots
        .iter()
        .filter(|(key, slot)| (min..=max).contains(*slot) && !seen.contains_key(*key));
    for (key, _) in gone {
        ctx.out
            .tombstone(MEETINGS, key_map("slug", key, false))
            .await?;
    }
    let next = MeetingsState {
        cursors: KeyedCursors::from_seen(seen),
        slots,
    };
    let state = serde_json::to_value(&next).map_err(|e| Fail::Other(e.to_string()))?;
    ctx.out.checkpoint(MEETINGS, MEETINGS, state).await?;
    Ok(())
}

/// [`content_hash`] of one raw record's text.
fn content_hash_hex(raw: &str) -> String {
    content_hash(&[serde_json::Map::from_iter([(
        "unfit".to_owned(),
        Value::from(raw),
    )])])
}
