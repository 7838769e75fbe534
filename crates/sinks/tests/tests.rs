//! Integration tests of the destinations. PostgreSQL and Parquet tests need their cargo
//! features (`cargo test -p destinations --all-features`; the workspace build enables them).

#[path = "destinations/csv.rs"]
mod csv;
#[path = "destinations/drift_org.rs"]
mod drift_org;
#[path = "destinations/harness.rs"]
mod harness;
#[path = "destinations/jsonl.rs"]
mod jsonl;
#[cfg(feature = "parquet")]
#[path = "destinations/parquet.rs"]
mod parquet;
#[cfg(feature = "postgres")]
#[path = "destinations/postgres.rs"]
mod postgres;
#[path = "destinations/sqlite.rs"]
mod sqlite;
