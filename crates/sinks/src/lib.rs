//! Sinks for synced records: SQLite (default) and JSONL, CSV always; PostgreSQL
//! (cargo feature `postgres`) and Parquet (feature `parquet`), whose dependencies are heavy.
//! The `driftbridge` binary enables both features.
//!
//! A **sink** is where a *data source* (a read from Drift) puts its records: a database or a
//! directory of files that this crate writes and the user reads. It is not a *data
//! destination*: that word means the reverse direction, records written *into* Drift by a
//! push (the `drift-writer` crate). The CLI names the sink with `sync --destination` (a
//! fixed contract; `--sink` is an alias), a data source's API object with its field `sink`.
//! In a sink: a **record** is a row (or a line) keyed by its stream's primary key; an
//! **upsert** inserts it or updates the row with that key; a **tombstone** marks the row of a
//! record deleted in Drift; **quarantine** keeps the records that cannot be stored as their
//! stream says, with the reason; a **checkpoint** (the source's state) is committed with the
//! records it covers; a **full refresh** brings a stream's whole content (with tombstones
//! for what disappeared), an **incremental** run what changed since the last checkpoint.
//! The other terms (stream, cursor, run) are defined in `sync_core`.
//!
//! Each sink lives in its own file or folder and implements
//! [`sync_core::Sink`]: `check` (reachable, writable, permissions) runs before any
//! request to the source; `prepare` creates one table (or folder of files) per stream from
//! the stream's JSON Schema; `commit` writes a batch and the source state together, so a run
//! killed at any point resumes with every record exactly once. Databases upsert on the
//! primary key and keep the state in a table of the same transaction; file sinks
//! (the `files` module) publish each file by write-fsync-rename and commit the state file
//! last. [`SinkSpec`] parses the `--destination` argument; [`open`] builds the
//! sink it names ([`open_with`] with [`OpenOptions`], e.g. hard deletes). Kinds not
//! built into this binary answer a clear error naming the cargo feature.
//!
//! Deletes in Drift arrive as tombstones ([`sync_core::Record::tombstone`]: the record with
//! this primary key was deleted). Every stream table and file carries `_deleted` (false for
//! live rows) and `_deleted_at` (when the deletion was seen; null while live), as Fivetran's
//! `_fivetran_deleted` does:
//! - databases (SQLite, PostgreSQL) soft-delete by default: a tombstone marks its row
//!   `_deleted = true` with `_deleted_at` and the batch's `_run_id`, and keeps its last data;
//!   a row already deleted keeps its first `_deleted_at`; an upsert of the key makes the row
//!   live again. With [`OpenOptions::hard_deletes`] the row is DELETEd instead. Within a
//!   batch the last operation on a key wins. [`sync_core::CommitReport::deleted`] counts the
//!   rows marked or removed;
//! - file sinks cannot take back what they published: they write the tombstone as a
//!   record of its stream (key fields, `_deleted = true`, `_deleted_at`), hard deletes or
//!   not, and count the tombstones written; readers take the last record per key.
//!
//! A replace batch (full-refresh streams) upserts in databases (rows that disappeared from
//! Drift are marked by the tombstones the source sends in the same batch; soft deletes
//! survive a full refresh) and writes a new file holding all the batch's records of that
//! stream, tombstones included, in file sinks. Tables of older versions get
//! `_deleted` and `_deleted_at` added by `prepare`, their rows live.
//!
//! Quarantine: the records a source could not fit to their stream's types
//! ([`sync_core::Batch::quarantined`]) are kept in the batch's commit, with the records a
//! sink refuses (no primary key): in the table `_driftbridge_rejected(id, run_id,
//! stream, primary_key, reason, _raw, rejected_at)` of the databases (an older table gains
//! `primary_key` in `prepare`, its rows kept), in `DIR/_rejected/<run-id>.jsonl` with the same
//! fields in file sinks. `primary_key` is the key as text, null when unknown.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod catalog;
pub mod csv;
pub mod files;
pub mod jsonl;
mod layout;
#[cfg(feature = "parquet")]
pub mod parquet;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod preview;
mod spec;
pub mod sqlite;

pub use crate::csv::CsvSink;
pub use jsonl::JsonlSink;
pub use layout::{child_rows, child_streams, SchemaContract};
#[cfg(feature = "parquet")]
pub use parquet::ParquetSink;
#[cfg(feature = "postgres")]
pub use postgres::PostgresSink;
pub use spec::{open, open_with, OpenOptions, SinkSpec};
pub use sqlite::SqliteSink;
