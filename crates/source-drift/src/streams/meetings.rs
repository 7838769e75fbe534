//! `meetings`: booked meetings in a `slotStart` window (Drift serves at most 30 days back,
//! ≤1000 per call; REFERENCE §7.4). Incremental writes a meeting
//! when its `updatedAt` differs from the one stored for its `slug` (see `KeyedCursors`).

use crate::fail::{to_record, Fail};
use crate::names::MEETINGS;
use crate::watermark::KeyedCursors;
use crate::Ctx;
use serde_json::Value;
use std::collections::BTreeMap;
use sync_core::SyncMode;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// Drift returns at most this many meetings per call (REFERENCE §7.4).
const MAX_PER_CALL: usize = 1000;

/// Meetings with `slotStart` in `[min, max]`; a window that comes back full is split in two
/// and read again, so no meeting is lost to the per-call cap.
async fn fetch_window(ctx: &Ctx, min: i64, max: i64) -> Result<Vec<drift_client::Meeting>, Fail> {
    let mut windows = vec![(min, max)];
    let mut found = Vec::new();
    while let Some((lo, hi)) = windows.pop() {
        let page = ctx.client.meetings(lo, hi).await?;
        if page.len() >= MAX_PER_CALL && hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            windows.push((mid + 1, hi));
            windows.push((lo, mid));
        } else {
            found.extend(page);
        }
    }
    Ok(found)
}

pub(crate) async fn read(ctx: &Ctx, mode: SyncMode) -> Result<(), Fail> {
    let previous: KeyedCursors = match mode {
        SyncMode::FullRefresh => KeyedCursors::default(),
        SyncMode::Incremental => ctx
            .state
            .get(MEETINGS)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default(),
    };
    let now = chrono::Utc::now().timestamp_millis();
    // A minute inside the 30-day limit so clock skew does not push the window past it.
    let min = now - ctx.config.meetings_days_back * DAY_MS + 60_000;
    let max = now + ctx.config.meetings_days_ahead * DAY_MS;
    let mut seen = BTreeMap::new();
    for meeting in fetch_window(ctx, min, max).await? {
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
        seen.insert(key.clone(), updated);
        if previous.changed(&key, updated) {
            ctx.out.record(MEETINGS, record).await?;
        }
    }
    let next = KeyedCursors::from_seen(seen);
    let state = serde_json::to_value(&next).map_err(|e| Fail::Other(e.to_string()))?;
    ctx.out.checkpoint(MEETINGS, MEETINGS, state).await?;
    Ok(())
}
