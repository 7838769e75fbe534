//! Records a sync run quarantined: they did not fit their stream's types (an object where an
//! id belongs, a non-numeric id). The sink keeps every one of them (`_driftbridge_rejected`,
//! `_rejected/`); the store keeps them per run so `driftbridge runs rejected RUN_ID` and
//! `GET /api/v1/runs/{id}/rejected` can list them whatever the sink is.

use crate::error::Result;
use crate::Store;
use rusqlite::params;
use serde::{Deserialize, Serialize};

/// One quarantined record of a run. `rejected_at` is epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedRecord {
    /// Stream name (e.g. `conversations`).
    pub stream: String,
    /// The record's primary key as text, when one could be read.
    pub primary_key: Option<String>,
    /// Why it does not fit, naming the field.
    pub reason: String,
    /// The record as Drift sent it (JSON text).
    pub raw: String,
    /// When it was read, epoch milliseconds.
    pub rejected_at: i64,
}

impl Store {
    /// Append `records` to run `run_id`'s quarantined records (after those already stored).
    /// The run need not exist yet in this store's history; nothing checks it.
    pub fn add_rejected(&self, run_id: &str, records: &[RejectedRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let next: i64 = tx.query_row(
            "SELECT COALESCE(MAX(seq), 0) FROM run_rejected WHERE run_id = ?1",
            params![run_id],
            |r| r.get(0),
        )?;
        {
            let mut stmt = tx.prepare(
                "INSERT INTO run_rejected (run_id, seq, stream, primary_key, reason, raw, rejected_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (i, r) in records.iter().enumerate() {
                stmt.execute(params![
                    run_id,
                    next + 1 + i as i64,
                    r.stream,
                    r.primary_key,
                    r.reason,
                    r.raw,
                    r.rejected_at
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The quarantined records of run `run_id`, in the order they were read. Errors:
    /// [`crate::StoreError::NotFound`] when no such run is recorded.
    pub fn rejected(&self, run_id: &str) -> Result<Vec<RejectedRecord>> {
        self.get_run(run_id)?;
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT stream, primary_key, reason, raw, rejected_at FROM run_rejected \
             WHERE run_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![run_id], |r| {
            Ok(RejectedRecord {
                stream: r.get(0)?,
                primary_key: r.get(1)?,
                reason: r.get(2)?,
                raw: r.get(3)?,
                rejected_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
