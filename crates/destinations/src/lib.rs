//! Destinations for synced records: SQLite (default) and JSONL, CSV always; PostgreSQL
//! (cargo feature `postgres`) and Parquet (feature `parquet`), whose dependencies are heavy.
//! The `driftbridge` binary enables both features.
//!
//! Each destination lives in its own file or folder and implements
//! [`sync_core::Destination`]: `check` (reachable, writable, permissions) runs before any
//! request to the source; `prepare` creates one table (or folder of files) per stream from
//! the stream's JSON Schema; `commit` writes a batch and the source state together, so a run
//! killed at any point resumes with every record exactly once. Databases upsert on the
//! primary key and keep the state in a table of the same transaction; file destinations
//! (the `files` module) publish each file by write-fsync-rename and commit the state file
//! last. [`DestinationSpec`] parses the `--destination` argument; [`open`] builds the
//! destination it names. Kinds not built into this binary answer a clear error naming the
//! cargo feature.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod csv;
pub mod files;
pub mod jsonl;
mod layout;
#[cfg(feature = "parquet")]
pub mod parquet;
#[cfg(feature = "postgres")]
pub mod postgres;
mod spec;
pub mod sqlite;

pub use crate::csv::CsvDestination;
pub use jsonl::JsonlDestination;
#[cfg(feature = "parquet")]
pub use parquet::ParquetDestination;
#[cfg(feature = "postgres")]
pub use postgres::PostgresDestination;
pub use spec::{open, DestinationSpec};
pub use sqlite::SqliteDestination;
