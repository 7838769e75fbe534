//! Integration tests of the sinks. PostgreSQL and Parquet tests need their cargo
//! features (`cargo test -p sinks --all-features`; the workspace build enables them).

#[path = "sinks/analyst.rs"]
mod analyst;
#[path = "sinks/csv.rs"]
mod csv;
#[path = "sinks/drift_org.rs"]
mod drift_org;
#[path = "sinks/harness.rs"]
mod harness;
#[path = "sinks/jsonl.rs"]
mod jsonl;
#[cfg(feature = "parquet")]
#[path = "sinks/parquet.rs"]
mod parquet;
#[cfg(feature = "postgres")]
#[path = "sinks/postgres.rs"]
mod postgres;
#[path = "sinks/sqlite.rs"]
mod sqlite;
