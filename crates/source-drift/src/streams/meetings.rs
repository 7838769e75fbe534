//! `meetings`: booked meetings in a `slotStart` window (Drift serves at most 30 days back,
//! ≤1000 per call; REFERENCE §7.4). Incremental writes a meeting
//! when its `updatedAt` differs from the one stored for its `slug` (see `KeyedCursors`).

use crate::fail::{to_record, Fail};
use crate::names::MEETINGS;
use crate::watermark::KeyedCursors;
use crate::Ctx;
use serde_json::Value;
use std::collections::BTreeMap;
use sync_core::{RequestMetrics, SyncMode};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

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
    let meetings = ctx.client.meetings(min, max).await;
    let one = RequestMetrics {
        requests: 1,
        ..Default::default()
    };
    ctx.out.metrics(MEETINGS, one).await?;
    let mut seen = BTreeMap::new();
    for meeting in meetings? {
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
