//! Run history: one row per `sync` / `push` run (DESIGN.md §1 step 6).

use crate::error::{Result, StoreError};
use crate::{from_json, now_ms, to_json, Store};
use rusqlite::{params, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

/// The statuses a run can have: `running` while it runs, then one of the others.
pub const RUN_STATUSES: &[&str] = &["running", "succeeded", "failed", "partial", "cancelled"];

/// Input of [`Store::insert_run`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRun {
    /// Credential name used.
    pub credential: String,
    /// Destination, as given (e.g. `sqlite:out.db`); must not contain a password.
    pub destination: String,
    /// `full` or `incremental`.
    pub mode: String,
    /// Streams synced.
    pub streams: Vec<String>,
    /// Flow name, when the run belongs to a flow.
    pub flow: Option<String>,
}

/// A stored run. Timestamps are epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Run id, e.g. `run_20261130T115500_3f9a0c1d` (sorts by start time).
    pub id: String,
    /// Credential name used.
    pub credential: String,
    /// Destination.
    pub destination: String,
    /// `full` or `incremental`.
    pub mode: String,
    /// Streams synced.
    pub streams: Vec<String>,
    /// Flow name, if any.
    pub flow: Option<String>,
    /// One of [`RUN_STATUSES`].
    pub status: String,
    /// Start time.
    pub started_at: i64,
    /// End time; `None` while running.
    pub finished_at: Option<i64>,
    /// Caller-defined summary (counts per stream, requests, waits, retries, ...); `{}` at start.
    pub summary: serde_json::Value,
    /// Error text of a failed run.
    pub error: Option<String>,
}

const COLUMNS: &str =
    "id, credential, destination, mode, streams, flow, status, started_at, finished_at, summary, error";

fn from_row(row: &Row<'_>) -> rusqlite::Result<(RunRecord, String, String)> {
    Ok((
        RunRecord {
            id: row.get(0)?,
            credential: row.get(1)?,
            destination: row.get(2)?,
            mode: row.get(3)?,
            streams: Vec::new(),
            flow: row.get(5)?,
            status: row.get(6)?,
            started_at: row.get(7)?,
            finished_at: row.get(8)?,
            summary: serde_json::Value::Null,
            error: row.get(10)?,
        },
        row.get(4)?,
        row.get(9)?,
    ))
}

fn finish((mut run, streams, summary): (RunRecord, String, String)) -> Result<RunRecord> {
    run.streams = from_json(&streams, "runs.streams")?;
    run.summary = from_json(&summary, "runs.summary")?;
    Ok(run)
}

fn run_not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        kind: "run",
        name: id.to_string(),
        hint: "run `driftbridge runs list` to see the run ids",
    }
}

impl Store {
    /// Record the start of a run (status `running`, started now). Returns the new run id.
    pub fn insert_run(&self, run: &NewRun) -> Result<String> {
        let started = now_ms();
        let stamp = chrono::DateTime::from_timestamp_millis(started)
            .map(|t| t.format("%Y%m%dT%H%M%S").to_string())
            .unwrap_or_default();
        let id = format!("run_{stamp}_{:08x}", rand::random::<u32>());
        self.conn().execute(
            "INSERT INTO runs (id, credential, destination, mode, streams, flow, status, started_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running', ?7)",
            params![
                id,
                run.credential,
                run.destination,
                run.mode,
                to_json(&run.streams),
                run.flow,
                started
            ],
        )?;
        Ok(id)
    }

    /// Record the end of a run: `status` (one of [`RUN_STATUSES`] other than `running`), the
    /// summary JSON and an optional error. Errors: [`StoreError::NotFound`],
    /// [`StoreError::Invalid`] (field `status`).
    pub fn finish_run(
        &self,
        id: &str,
        status: &str,
        summary: &serde_json::Value,
        error: Option<&str>,
    ) -> Result<()> {
        if status == "running" || !RUN_STATUSES.contains(&status) {
            return Err(StoreError::invalid(
                "status",
                format!("\"{status}\" is not a final run status; use succeeded, failed, partial or cancelled"),
            ));
        }
        let changed = self.conn().execute(
            "UPDATE runs SET status = ?2, finished_at = ?3, summary = ?4, error = ?5 WHERE id = ?1",
            params![id, status, now_ms(), to_json(summary), error],
        )?;
        if changed == 0 {
            return Err(run_not_found(id));
        }
        Ok(())
    }

    /// The latest `limit` runs, newest first.
    pub fn list_runs(&self, limit: usize) -> Result<Vec<RunRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?1"
        ))?;
        let rows = stmt.query_map(params![limit as i64], from_row)?;
        rows.map(|r| finish(r?)).collect()
    }

    /// One run by id. Errors: [`StoreError::NotFound`].
    pub fn get_run(&self, id: &str) -> Result<RunRecord> {
        let conn = self.conn();
        let row = conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM runs WHERE id = ?1"),
                params![id],
                from_row,
            )
            .optional()?;
        row.map(finish)
            .transpose()?
            .ok_or_else(|| run_not_found(id))
    }
}
