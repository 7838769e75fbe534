//! The reliability suite's one integration-test binary (issue 10): the real `driftbridge`
//! binary (found by `reliability::driftbridge_bin`) against in-process sandboxes.
//!
//! - `crash_matrix`: SIGKILL at seeded points, re-run, every record exactly once.
//! - `fault_matrix`: each sandbox fault against sync and push, expected outcomes in a table.
//! - `bad_input`: hostile credential fields, inputs and arguments get a named error, no panic.
//! - `secrets`, `secrets_sinks`: a canary token is found nowhere in output, logs, files,
//!   databases or sinks (PostgreSQL tables, JSONL, CSV and Parquet files).
//! - `ssrf`: next links and redirects to another host are refused; no token leaves.
//! - `fuzz_regressions`: inputs the fuzz targets (fuzz/) found, replayed on every run.

#[path = "reliability/bad_input.rs"]
mod bad_input;
#[path = "reliability/common.rs"]
mod common;
#[path = "reliability/crash_matrix.rs"]
mod crash_matrix;
#[path = "reliability/fault_matrix.rs"]
mod fault_matrix;
#[path = "reliability/fuzz_regressions.rs"]
mod fuzz_regressions;
#[path = "reliability/secrets.rs"]
mod secrets;
#[path = "reliability/secrets_sinks.rs"]
mod secrets_sinks;
#[path = "reliability/ssrf.rs"]
mod ssrf;
