//! The `Destination` trait: where records and state are committed together.

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
    /// Records to upsert (or, for streams in `replace`, the full new content).
    pub records: Vec<Record>,
    /// Streams whose tables are replaced by this batch's records of that stream.
    pub replace: Vec<String>,
    /// State entries (key, value) to store in the same commit.
    pub state: Vec<(String, Value)>,
}

/// A record the destination refused (e.g. missing primary key); kept, never dropped silently.
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
    /// Records refused (and quarantined by the destination), in batch order.
    pub rejected: Vec<Rejected>,
}

/// A place records are written to. Implementations live in the `destinations` crate
/// (SQLite by default; others behind cargo features).
#[async_trait]
pub trait Destination: Send {
    /// Where it writes, for logs and run records (e.g. `sqlite:/tmp/x.db`); no secrets.
    fn describe(&self) -> String;

    /// Check that the destination is usable (reachable, writable, permissions) before any
    /// request is sent to the source, so a wrong password or a read-only directory fails
    /// fast with a clear message. Called by [`crate::run_sync`] before `prepare`; the
    /// default accepts. Errors: kind `Destination`, naming what failed and the fix.
    async fn check(&mut self) -> Result<(), RunError> {
        Ok(())
    }

    /// Called once after a run in which the source completed, every stream succeeded and
    /// every commit was durable (never after a failed, killed or cancelled run), so a
    /// destination can drop what it keeps only to resume a broken run exactly once (the file
    /// destinations' replay window). The default does nothing. An error fails the run.
    async fn finish(&mut self) -> Result<(), RunError> {
        Ok(())
    }

    /// Create or migrate what the streams need (tables, columns, indexes). Idempotent.
    async fn prepare(&mut self, streams: &[Stream]) -> Result<(), RunError>;

    /// The state committed for `scope` by earlier runs.
    async fn load_state(&mut self, scope: &str) -> Result<State, RunError>;

    /// Write `batch` atomically: either all its records and state are durable, or none.
    async fn commit(&mut self, batch: Batch) -> Result<CommitReport, RunError>;
}
