//! Shared CLI context, exit codes, error plumbing and the opening of the metadata store.

use std::path::PathBuf;
use std::process::ExitCode;

/// Exit codes of the CLI contract (DESIGN.md §6).
pub mod exit {
    /// Failure.
    pub const FAILURE: u8 = 1;
    /// Usage or validation error.
    pub const USAGE: u8 = 2;
    /// Credential rejected by Drift (401/403).
    pub const CREDENTIAL_REJECTED: u8 = 3;
    /// Rate limited beyond the wait cap.
    pub const RATE_LIMITED: u8 = 4;
    /// Finished with rejections: some records rejected or quarantined.
    pub const PARTIAL: u8 = 5;
}

/// Global options every subcommand sees.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The data directory (metadata store, vault key). Already resolved.
    pub data_dir: PathBuf,
    /// `--json`: machine-readable output on stdout.
    pub json: bool,
    /// `-q`.
    pub quiet: bool,
    /// `--shared-budget` / `DRIFTBRIDGE_SHARED_BUDGET`: the PostgreSQL database where rate
    /// budgets are shared across machines (may hold a password); `None` = the data directory.
    pub shared_budget: Option<secrecy::SecretString>,
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

/// Open the metadata store in `--data-dir` and check the vault's master key at once, so a bad
/// `DRIFTBRIDGE_MASTER_KEY` (or key file) fails every command that uses the store, not only
/// those that read a secret. Errors: exit 1 naming the key's origin and the fix; a user error
/// of the store (see `StoreError::is_user_error`) exits 2.
pub fn open_store(ctx: &Ctx) -> anyhow::Result<store::Store> {
    let code = |e: &store::StoreError| {
        if e.is_user_error() {
            exit::USAGE
        } else {
            exit::FAILURE
        }
    };
    let store = store::Store::open(&ctx.data_dir).map_err(|e| {
        fail(
            code(&e),
            format!(
                "cannot open the data directory {}: {e}",
                ctx.data_dir.display()
            ),
        )
    })?;
    store
        .check_master_key()
        .map_err(|e| fail(code(&e), e.to_string()))?;
    if let Some(url) = &ctx.shared_budget {
        use secrecy::ExposeSecret;
        store
            .use_shared_budget(url.expose_secret())
            .map_err(|e| fail(exit::USAGE, format!("--shared-budget: {e}")))?;
    }
    Ok(store)
}

/// Map an error chain to an exit code: the first [`CliError`] found wins, else 1.
pub fn exit_code_of(err: &anyhow::Error) -> ExitCode {
    ExitCode::from(exit_number(err))
}

/// The exit code of `err` as a number (see [`exit_code_of`]).
pub fn exit_number(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<CliError>() {
            return e.code;
        }
    }
    exit::FAILURE
}

/// Resolves at the first Ctrl-C (SIGINT) or, on Unix, SIGTERM (what `kill`, systemd and
/// docker send): the commands that run for a while stop gracefully on either.
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// `println!` for results on stdout that never panics: once stdout is closed (e.g.
/// `driftbridge ... | head -3`), further output is dropped and the command goes on, so the
/// files it writes are finished and its exit code is its own.
macro_rules! outln {
    () => {
        $crate::common::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::common::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` counterpart of `outln!`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::common::write_stdout(format_args!($($arg)*))
    };
}

/// Set once a write to stdout failed (reader gone); later output is skipped.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Set by the first write to stdout.
static STDOUT_USED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the command has written anything to stdout (through `outln!`/`out!`).
pub fn stdout_used() -> bool {
    STDOUT_USED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Write to stdout, ignoring a closed pipe (see `outln!`).
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    STDOUT_USED.store(true, Ordering::Relaxed);
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_fmt(args)
        .and_then(|()| stdout.flush())
        .is_err()
    {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}
