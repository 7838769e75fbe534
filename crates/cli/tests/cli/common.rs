//! Shared helpers for CLI tests.

use std::path::PathBuf;

/// Path of the `driftbridge` binary built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_driftbridge"))
}
