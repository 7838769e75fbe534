//! Destinations for synced records: SQLite (default); PostgreSQL, JSONL, CSV, Parquet behind features.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
