//! Run history: one row per `sync` / `push` run (DESIGN.md §1 step 6).
//!
//! A process that starts a run holds an exclusive lock on `runs/<run id>.lock` in the data
//! directory until it finishes the run. The operating system drops the lock when the process
//! ends however it ends (SIGKILL, crash, power loss), so a run still `running` whose lock is
//! free was left behind by a dead process: reading the history marks it `interrupted`.
//!
//! **One run at a time** per data source and per saved destination, across processes
//! ([`Store::insert_run_exclusive`]): the `run_locks` table maps what runs (a key such as
//! `source:<id>`) to the run holding it. The row is taken in the same IMMEDIATE transaction
//! that records the run, and removed when the run finishes. A row whose run's lock file no
//! live process holds (the holder died) is stale: the next start takes it over.

use crate::error::{Result, StoreError};
use crate::{from_json, now_ms, to_json, Store};
use rusqlite::{params, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

/// The statuses a run can have: `running` while it runs, then one of the others.
/// `succeeded_with_rejections`: finished, some records or rows were rejected or quarantined
/// (exit code 5); `rate_limited`: stopped because Drift kept rate limiting beyond the wait cap
/// (exit code 4); `interrupted`: the process running it stopped (killed, crashed) before it
/// finished; `skipped`: a scheduled start found its data source still running, so it did not
/// run (its error says which run was going). `partial` is what older versions wrote for
/// `succeeded_with_rejections`.
pub const RUN_STATUSES: &[&str] = &[
    "running",
    "succeeded",
    "succeeded_with_rejections",
    "failed",
    "rate_limited",
    "cancelled",
    "interrupted",
    "partial",
    "skipped",
];

/// Error text of an `interrupted` run.
pub const INTERRUPTED: &str = "the driftbridge process running this stopped (killed or \
     crashed) before the run finished; run it again: a sync resumes from its last checkpoint, \
     and a push skips the rows it already wrote";

/// What started a run (column `trigger` of `runs`, schema version 9). JSON: `"manual"` or
/// `"schedule"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// Someone asked for it: the CLI (`sync`, `push`, `sources run`, `destinations run`),
    /// the REST API's or the web UI's run now. Runs recorded before the column existed
    /// read as `manual`.
    #[default]
    Manual,
    /// The scheduler of `serve` started it (or recorded it `skipped`).
    Schedule,
}

/// The values of [`Trigger`], as stored and as filters spell them.
pub const TRIGGERS: [&str; 2] = ["manual", "schedule"];

impl Trigger {
    /// `manual` or `schedule`.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Schedule => "schedule",
        }
    }

    /// The trigger of a stored value: `schedule` is [`Trigger::Schedule`]; NULL (rows older
    /// than the column) and anything else read as [`Trigger::Manual`].
    pub fn of_column(value: Option<&str>) -> Trigger {
        match value {
            Some("schedule") => Trigger::Schedule,
            _ => Trigger::Manual,
        }
    }
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Trigger {
    type Err = String;

    /// `manual` or `schedule` (blanks trimmed); the error names both.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.trim() {
            "manual" => Ok(Trigger::Manual),
            "schedule" => Ok(Trigger::Schedule),
            other => Err(format!(
                "unknown trigger \"{other}\"; use one of: {}",
                TRIGGERS.join(", ")
            )),
        }
    }
}

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
    /// What started the run.
    pub trigger: Trigger,
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
    /// What started the run: `manual` or `schedule` (`manual` for runs recorded before
    /// schema version 9).
    #[serde(default)]
    pub trigger: Trigger,
}

const COLUMNS: &str =
    "id, credential, destination, mode, streams, flow, status, started_at, finished_at, summary, error, trigger";

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
            trigger: Trigger::of_column(row.get::<_, Option<String>>(11)?.as_deref()),
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

fn lock_path(data_dir: &std::path::Path, id: &str) -> std::path::PathBuf {
    data_dir.join("runs").join(format!("{id}.lock"))
}

/// Whether run `id`'s lock is free (no live process holds it). A missing lock file counts
/// as free (runs recorded before locks existed).
fn lock_is_free(data_dir: &std::path::Path, id: &str) -> bool {
    match std::fs::File::open(lock_path(data_dir, id)) {
        Ok(file) => match file.try_lock() {
            Ok(()) => true,
            Err(std::fs::TryLockError::WouldBlock) => false,
            // Cannot tell: leave the run alone.
            Err(std::fs::TryLockError::Error(_)) => false,
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(_) => false,
    }
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
        self.insert_run_locked(run, None)
    }

    /// Record the start of a run like [`Store::insert_run`], unless `key` (what runs, e.g.
    /// `source:<id>`) is held by a run in progress in this or another process: then
    /// [`StoreError::AlreadyRunning`] naming that run (`what` says what runs, for people) and
    /// nothing is recorded. A key whose holder's process died is taken over. The key is
    /// released when the run finishes ([`Store::finish_run`]) or is marked `interrupted`.
    pub fn insert_run_exclusive(&self, run: &NewRun, key: &str, what: &str) -> Result<String> {
        self.insert_run_locked(run, Some((key, what)))
    }

    fn insert_run_locked(&self, run: &NewRun, key: Option<(&str, &str)>) -> Result<String> {
        let started = now_ms();
        let stamp = chrono::DateTime::from_timestamp_millis(started)
            .map(|t| t.format("%Y%m%dT%H%M%S").to_string())
            .unwrap_or_default();
        let id = format!("run_{stamp}_{:08x}", rand::random::<u32>());
        let lock = self.lock_run(&id)?;
        let recorded = self.insert_run_row(&id, run, started, key);
        if let Err(e) = recorded {
            drop(lock);
            let _ = std::fs::remove_file(lock_path(&self.data_dir, &id));
            return Err(e);
        }
        self.run_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), lock);
        Ok(id)
    }

    fn insert_run_row(
        &self,
        id: &str,
        run: &NewRun,
        started: i64,
        key: Option<(&str, &str)>,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if let Some((key, what)) = key {
            let holder: Option<String> = tx
                .query_row(
                    "SELECT run_id FROM run_locks WHERE key = ?1",
                    params![key],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(holder) = holder {
                if self.is_live(&holder) {
                    return Err(StoreError::AlreadyRunning {
                        what: what.to_string(),
                        run_id: holder,
                    });
                }
                tracing::info!(key, stale = %holder, "taking over a run lock whose holder stopped");
                tx.execute("DELETE FROM run_locks WHERE key = ?1", params![key])?;
            }
            tx.execute(
                "INSERT INTO run_locks (key, run_id, taken_at) VALUES (?1, ?2, ?3)",
                params![key, id, started],
            )?;
        }
        tx.execute(
            "INSERT INTO runs (id, credential, destination, mode, streams, flow, status, started_at, trigger)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running', ?7, ?8)",
            params![
                id,
                run.credential,
                run.destination,
                run.mode,
                to_json(&run.streams),
                run.flow,
                started,
                run.trigger.as_str()
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Whether run `id` is held by a live process (this one, or one holding its lock file).
    fn is_live(&self, id: &str) -> bool {
        let held = self
            .run_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(id);
        held || !lock_is_free(&self.data_dir, id)
    }

    /// The run in progress holding `key` (see [`Store::insert_run_exclusive`]), if any: a
    /// stale key (its holder's process died) reads as `None`.
    pub fn running_in(&self, key: &str) -> Result<Option<String>> {
        let holder: Option<String> = self
            .conn()
            .query_row(
                "SELECT run_id FROM run_locks WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()?;
        Ok(holder.filter(|id| self.is_live(id)))
    }

    /// Record a start that did not happen (status `skipped`, started and finished at `at`,
    /// epoch ms: when it was due), `reason` as its error, e.g. a scheduled start that found
    /// its data source still running. Returns the new record's id.
    pub fn record_skipped_run(&self, run: &NewRun, reason: &str, at: i64) -> Result<String> {
        let now = at;
        let stamp = chrono::DateTime::from_timestamp_millis(now)
            .map(|t| t.format("%Y%m%dT%H%M%S").to_string())
            .unwrap_or_default();
        let id = format!("run_{stamp}_{:08x}", rand::random::<u32>());
        self.conn().execute(
            "INSERT INTO runs (id, credential, destination, mode, streams, flow, status, started_at, finished_at, error, trigger)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'skipped', ?7, ?7, ?8, ?9)",
            params![
                id,
                run.credential,
                run.destination,
                run.mode,
                to_json(&run.streams),
                run.flow,
                now,
                reason,
                run.trigger.as_str()
            ],
        )?;
        Ok(id)
    }

    /// Create and take the lock file of run `id`.
    fn lock_run(&self, id: &str) -> Result<std::fs::File> {
        let path = lock_path(&self.data_dir, id);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Io {
                action: "create the run lock directory",
                path: dir.to_path_buf(),
                source: e,
            })?;
        }
        let file = std::fs::File::create(&path).map_err(|e| StoreError::Io {
            action: "create the run lock file",
            path: path.clone(),
            source: e,
        })?;
        file.lock().map_err(|e| StoreError::Io {
            action: "lock the run lock file",
            path,
            source: e,
        })?;
        Ok(file)
    }

    /// Release run `id`'s lock (held by this process) and remove its lock file.
    fn unlock_run(&self, id: &str) {
        let held = self
            .run_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        if held.is_some() {
            let _ = std::fs::remove_file(lock_path(&self.data_dir, id));
        }
    }

    /// Mark every `running` run whose lock no live process holds as `interrupted` (error
    /// [`INTERRUPTED`], finished now, its summary kept). Called by the history readers, so a
    /// killed run never stays `running`. Returns the ids marked.
    pub fn mark_interrupted_runs(&self) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT id FROM runs WHERE status = 'running'")?;
        let running = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        drop(stmt);
        let held = self.run_locks.lock().unwrap_or_else(|e| e.into_inner());
        let mut marked = Vec::new();
        for id in running {
            if held.contains_key(&id) || !lock_is_free(&self.data_dir, &id) {
                continue;
            }
            conn.execute(
                "UPDATE runs SET status = 'interrupted', finished_at = ?2, error = ?3
                 WHERE id = ?1 AND status = 'running'",
                params![id, now_ms(), INTERRUPTED],
            )?;
            conn.execute("DELETE FROM run_locks WHERE run_id = ?1", params![id])?;
            let _ = std::fs::remove_file(lock_path(&self.data_dir, &id));
            marked.push(id);
        }
        Ok(marked)
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
                format!("\"{status}\" is not a final run status; use succeeded, succeeded_with_rejections, failed, rate_limited or cancelled"),
            ));
        }
        let changed = {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let changed = tx.execute(
                "UPDATE runs SET status = ?2, finished_at = ?3, summary = ?4, error = ?5 WHERE id = ?1",
                params![id, status, now_ms(), to_json(summary), error],
            )?;
            tx.execute("DELETE FROM run_locks WHERE run_id = ?1", params![id])?;
            tx.commit()?;
            changed
        };
        self.unlock_run(id);
        if changed == 0 {
            return Err(run_not_found(id));
        }
        Ok(())
    }

    /// The latest `limit` runs, newest first.
    pub fn list_runs(&self, limit: usize) -> Result<Vec<RunRecord>> {
        self.mark_interrupted_runs()?;
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?1"
        ))?;
        let rows = stmt.query_map(params![limit as i64], from_row)?;
        rows.map(|r| finish(r?)).collect()
    }

    /// The latest `limit` runs recording flow name `flow` (a data source's or saved
    /// destination's name; compared case-insensitively, blanks trimmed), newest first.
    pub fn flow_runs(&self, flow: &str, limit: usize) -> Result<Vec<RunRecord>> {
        self.mark_interrupted_runs()?;
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM runs WHERE lower(trim(flow)) = ?1
             ORDER BY started_at DESC, rowid DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(
            params![crate::validate::name_key(flow), limit as i64],
            from_row,
        )?;
        rows.map(|r| finish(r?)).collect()
    }

    /// One run by id. Errors: [`StoreError::NotFound`].
    pub fn get_run(&self, id: &str) -> Result<RunRecord> {
        self.mark_interrupted_runs()?;
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
