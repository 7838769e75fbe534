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
