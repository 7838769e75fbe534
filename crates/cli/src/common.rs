//! Shared CLI context, exit codes and error plumbing.
#![allow(dead_code)] // TODO(skeleton): remove once every subcommand uses the shared context

use std::path::PathBuf;
use std::process::ExitCode;

/// Exit codes of the CLI contract (DESIGN.md §6).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Failure.
    pub const FAILURE: u8 = 1;
    /// Usage or validation error.
    pub const USAGE: u8 = 2;
    /// Credential rejected by Drift (401/403).
    pub const CREDENTIAL_REJECTED: u8 = 3;
    /// Rate limited beyond the wait cap.
    pub const RATE_LIMITED: u8 = 4;
    /// Partial: some records rejected.
    pub const PARTIAL: u8 = 5;
}

/// Global options every subcommand sees.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The data directory (metadata store, vault key). Already resolved.
    pub data_dir: PathBuf,
    /// `--json`: machine-readable output on stdout.
    pub json: bool,
    /// `-v` count (0 = default).
    pub verbose: u8,
    /// `-q`.
    pub quiet: bool,
}

/// An error that carries the exit code it should end the process with.
/// Wrap with `anyhow::Error::new(CliError::new(code, msg))` or use [`fail`].
#[derive(Debug)]
pub struct CliError {
    /// Exit code (see [`exit`]).
    pub code: u8,
    /// Message shown to the user (never contains a secret).
    pub message: String,
}

impl CliError {
    /// Build a CLI error with an exit code.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// Shorthand: an `anyhow::Error` that exits with `code`.
pub fn fail(code: u8, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(CliError::new(code, message))
}

/// Map an error chain to an exit code: the first [`CliError`] found wins, else 1.
pub fn exit_code_of(err: &anyhow::Error) -> ExitCode {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<CliError>() {
            return ExitCode::from(e.code);
        }
    }
    ExitCode::from(exit::FAILURE)
}
