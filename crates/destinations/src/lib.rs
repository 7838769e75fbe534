//! Destinations for synced records: SQLite (default); PostgreSQL, JSONL, CSV, Parquet behind
//! features.
//!
//! Each destination lives in its own file and implements [`sync_core::Destination`]: it
//! creates one table (or file set) per stream from the stream's JSON Schema, upserts on the
//! primary key, replaces full-refresh streams atomically and stores the source state in the
//! same commit as the records it covers. [`DestinationSpec`] parses the `--destination`
//! argument; [`open`] builds the destination it names. Kinds whose implementation is not in
//! this build answer a clear error naming the cargo feature, so the CLI contract
//! (DESIGN.md §6) is stable while they are being written.
//!
//! Adding a destination (PostgreSQL, JSONL, CSV, Parquet): put it in its own file
//! (`postgres.rs`, ...) behind a cargo feature of the same name that pulls its heavy
//! dependencies, implement [`sync_core::Destination`] — `prepare` creates what each
//! [`sync_core::Stream`] needs from `Stream::properties()` (same column rules and `_iso`
//! twins as SQLite), `load_state` / `commit` keep the state with the data (same transaction
//! for databases; for files: write, fsync, rename, then the state file), `Batch::replace`
//! swaps a table atomically — and add its arm to [`open`].
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod spec;
pub mod sqlite;

pub use spec::{open, DestinationSpec};
pub use sqlite::SqliteDestination;
