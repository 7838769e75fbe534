//! The `Sink` trait: where records and state are committed together.

use crate::error::RunError;
use crate::model::{Record, Stream};
use crate::state::State;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A unit of work committed atomically: records, tables to replace, and state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    /// State scope (which source instance the state belongs to, e.g. `drift:<credential>`).
    pub scope: String,
    /// Run id written on every row (`_run_id`).
    pub run_id: String,
    /// Records to upsert and tombstones, in the order the source sent them (for streams in
    /// `replace`, the stream's full content).
    pub records: Vec<Record>,
    /// Streams read in full (full refresh) whose every record is in this batch, with
    /// tombstones for the records that disappeared from the source. Databases upsert them
    /// (rows not in the batch stay; soft deletes survive a full refresh); file sinks
    /// write a new file holding them that replaces the stream's earlier files.
    pub replace: Vec<String>,
    /// State entries (key, value) to store in the same commit.
    pub state: Vec<(String, Value)>,
    /// Records the source could not fit to their stream's types, to keep in quarantine
    /// (`_driftbridge_rejected` in databases, `_rejected/` in file sinks) in the same commit.
    pub quarantined: Vec<Quarantined>,
}

/// A record the source received but could not fit to its stream's types (an object where an
/// id belongs, a non-numeric id): kept with the reason, never dropped. The stream's cursor
/// moves past it, so a re-run is not stuck on it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quarantined {
    /// Stream name.
    pub stream: String,
    /// The record's primary key as text (see [`crate::key_text`]), when one could be read.
    pub key: Option<String>,
    /// Why it does not fit, naming the field (e.g. ``field `id`: invalid type: string "abc",
    /// expected i64``).
    pub reason: String,
    /// The record exactly as received, as JSON text.
    pub raw: String,
    /// When it was read, epoch milliseconds (our clock).
    pub extracted_at: i64,
}

impl Quarantined {
    /// A record of `stream` quarantined now.
    pub fn new(
        stream: impl Into<String>,
        key: Option<String>,
        reason: impl Into<String>,
        raw: impl Into<String>,
    ) -> Self {
        Self {
            stream: stream.into(),
            key,
            reason: reason.into(),
            raw: raw.into(),
            extracted_at: chrono::Utc::now().timestamp_millis(),
        }
    }
}

/// A record the sink refused (e.g. missing primary key); kept, never dropped silently.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rejected {
    /// Stream name.
    pub stream: String,
    /// Why it was refused.
    pub reason: String,
}

/// What a commit wrote.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CommitReport {
    /// Rows written per stream.
    pub written: BTreeMap<String, u64>,
    /// Records refused (and quarantined by the sink), in batch order.
    pub rejected: Vec<Rejected>,
    /// Rows marked deleted (or removed, with hard deletes) per stream by the batch's
    /// tombstones; file sinks count the tombstones written.
    pub deleted: BTreeMap<String, u64>,
}

/// A place records are written to. Implementations live in the `sinks` crate
/// (SQLite by default; others behind cargo features).
#[async_trait]
pub trait Sink: Send {
    /// Where it writes, for logs and run records (e.g. `sqlite:/tmp/x.db`); no secrets.
    fn describe(&self) -> String;

    /// Check that the sink is usable (reachable, writable, permissions) before any
    /// request is sent to the source, so a wrong password or a read-only directory fails
    /// fast with a clear message. Called by [`crate::run_sync`] before `prepare`; the
    /// default accepts. Errors: kind `Sink`, naming what failed and the fix.
    async fn check(&mut self) -> Result<(), RunError> {
        Ok(())
    }

    /// Called once after a run in which the source completed, every stream succeeded and
    /// every commit was durable (never after a failed, killed or cancelled run), so a
    /// sink can drop what it keeps only to resume a broken run exactly once (the file
    /// sinks' replay window). The default does nothing. An error fails the run.
    async fn finish(&mut self) -> Result<(), RunError> {
        Ok(())
    }

    /// Records per commit this sink works best with, when the run does not set
    /// [`crate::RunOptions::batch_size`]; `None` (the default): [`crate::DEFAULT_BATCH_SIZE`].
    /// A sink with a fixed cost per commit (a network round trip, a durable flush, staging
    /// tables) asks for more; every commit still carries the checkpoints covering its
    /// records, so a larger batch only means a resumed run reads a little more again.
    fn batch_size(&self) -> Option<usize> {
        None
    }

    /// Create or migrate what the streams need (tables, columns, indexes). Idempotent.
    async fn prepare(&mut self, streams: &[Stream]) -> Result<(), RunError>;

    /// The state committed for `scope` by earlier runs.
    async fn load_state(&mut self, scope: &str) -> Result<State, RunError>;

    /// Write `batch` atomically: either all its records and state are durable, or none.
    async fn commit(&mut self, batch: Batch) -> Result<CommitReport, RunError>;
}
