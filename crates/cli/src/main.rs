//! The `driftbridge` binary: glue over the library crates. See DESIGN.md §6 for the contract.

#[macro_use]
mod common;
mod cmd_airbyte;
mod cmd_alerts;
mod cmd_catalog;
mod cmd_credentials;
mod cmd_demo;
mod cmd_destinations;
mod cmd_push;
mod cmd_runs;
mod cmd_sandbox;
mod cmd_serve;
mod cmd_singer;
mod cmd_sources;
mod cmd_sync;
mod progress;

use clap::{Parser, Subcommand};
use common::Ctx;
use std::path::PathBuf;
use std::process::ExitCode;

/// driftbridge: move data between a Drift account and your data stores.
#[derive(Debug, Parser)]
#[command(name = "driftbridge", version, about, max_term_width = 100)]
#[command(after_help = "Examples:
  driftbridge demo                                   # the whole product, offline
  driftbridge credentials add --name prod --api-key-env DRIFT_KEY
  driftbridge sync --credential prod --streams conversations --destination sqlite:drift.db
  driftbridge sources create --name nightly --credential prod --streams all --schedule '0 3 * * *'
  driftbridge serve --print-token")]
struct Cli {
    /// Data directory (metadata store, vault key). Default: the platform data dir.
    #[arg(long, global = true, env = "DRIFTBRIDGE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Machine-readable JSON output on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// More logging on stderr (-v, -vv).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Less output.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Share each credential's rate budget through this PostgreSQL database
    /// (postgres://user@host/db) with every machine that uses it. Default: through the data
    /// directory, shared by every process on this machine.
    #[arg(
        long,
        global = true,
        env = "DRIFTBRIDGE_SHARED_BUDGET",
        hide_env_values = true,
        value_name = "URL"
    )]
    shared_budget: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the demo: sandbox + credential + sync into ./driftbridge-demo.db.
    Demo(cmd_demo::Args),
    /// Run the offline Drift API sandbox.
    Sandbox(cmd_sandbox::Args),
    /// Manage Drift credentials.
    Credentials(cmd_credentials::Args),
    /// Manage the vault that encrypts secrets at rest.
    Vault(cmd_credentials::VaultArgs),
    /// Sync Drift streams into a destination.
    Sync(cmd_sync::Args),
    /// Write records from a file or table into Drift (contacts, accounts, timeline, conversations).
    Push(cmd_push::Args),
    /// Serve the REST API (/api/v1) and the web UI.
    Serve(cmd_serve::Args),
    /// Run history and each run's log.
    Runs(cmd_runs::Args),
    /// Speak the Airbyte protocol (spec, check, discover, read) on stdout.
    Airbyte(cmd_airbyte::Args),
    /// Run as a Singer tap (SCHEMA, RECORD, STATE on stdout).
    Singer(cmd_singer::Args),
    /// The tables a sync writes (child tables included) as JSON, Markdown or dbt sources.
    Catalog(cmd_catalog::Args),
    /// Saved data sources (Drift streams into a sink, on a schedule): create, list, show,
    /// update, pause, resume, delete, run now.
    Sources(cmd_sources::Args),
    /// Saved data destinations (pushes into Drift): list, show, delete, run.
    Destinations(cmd_destinations::Args),
    /// Alerts: webhook channels told when a run fails or recovers, a credential is
    /// rejected, or records are rejected.
    Alerts(cmd_alerts::Args),
}

fn default_data_dir() -> PathBuf {
    directories_next_data_dir().unwrap_or_else(|| PathBuf::from(".driftbridge"))
}

fn directories_next_data_dir() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/driftbridge"))
}

/// Logging: events on stderr at the level of `-q`/`-v` (or `DRIFTBRIDGE_LOG`), as text or,
/// for `serve --log-format json`, JSON; and, whatever that level, every event of a run at
/// info and above in the run's own log (`runs/<run id>.log`, see `flows::logs`).
fn init_logging(verbose: u8, quiet: bool, json: bool) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("DRIFTBRIDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Colours only for a terminal: a log file or pipe gets plain text.
    let stderr = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let stderr = if json {
        stderr.json().with_filter(filter).boxed()
    } else {
        stderr.with_filter(filter).boxed()
    };
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(flows::logs::layer())
        .try_init();
}

/// API keys are decrypted into this process's memory by most commands: a core dump would
/// write them to disk. Core dumps are switched off (RLIMIT_CORE 0) and, on Linux, the
/// process is made non-dumpable (no core, no ptrace attach by other processes of the user)
/// before anything else runs. Failures are ignored: the OS may not allow it.
fn disable_core_dumps() {
    #[cfg(unix)]
    {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: setrlimit reads a valid, initialised rlimit for the duration of the call.
        unsafe {
            libc::setrlimit(libc::RLIMIT_CORE, &zero);
        }
    }
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_DUMPABLE takes plain integer arguments and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

fn main() -> ExitCode {
    disable_core_dumps();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let json_logs = matches!(&cli.command, Command::Serve(a) if a.json_logs());
    init_logging(cli.verbose, cli.quiet, json_logs);
    let ctx = Ctx {
        data_dir: cli.data_dir.unwrap_or_else(default_data_dir),
        json: cli.json,
        quiet: cli.quiet,
        shared_budget: cli.shared_budget.map(secrecy::SecretString::from),
    };
    let json = ctx.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(common::exit::FAILURE);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Demo(a) => cmd_demo::run(&ctx, a).await,
            Command::Sandbox(a) => cmd_sandbox::run(&ctx, a).await,
            Command::Credentials(a) => cmd_credentials::run(&ctx, a).await,
            Command::Vault(a) => cmd_credentials::run_vault(&ctx, a).await,
            Command::Sync(a) => cmd_sync::run(&ctx, a).await,
            Command::Push(a) => cmd_push::run(&ctx, a).await,
            Command::Serve(a) => cmd_serve::run(&ctx, a).await,
            Command::Runs(a) => cmd_runs::run(&ctx, a).await,
            Command::Airbyte(a) => cmd_airbyte::run(&ctx, a).await,
            Command::Singer(a) => cmd_singer::run(&ctx, a).await,
            Command::Catalog(a) => cmd_catalog::run(&ctx, a).await,
            Command::Sources(a) => cmd_sources::run(&ctx, a).await,
            Command::Destinations(a) => cmd_destinations::run(&ctx, a).await,
            Command::Alerts(a) => cmd_alerts::run(&ctx, a).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            let code = common::exit_code_of(&err);
            if json && !common::stdout_used() {
                // With --json, stdout stays machine-readable when a command fails before
                // printing its result (a failed sync prints its summary instead).
                let causes: Vec<String> = err.chain().skip(1).map(|c| c.to_string()).collect();
                outln!(
                    "{}",
                    serde_json::json!({"error": {"message": err.to_string(), "causes": causes,
                                                 "exit_code": common::exit_number(&err)}})
                );
            }
            code
        }
    }
}

/// A command line clap refused (or `--help` / `--version`): clap's text on stderr (help on
/// stdout) and exit 2 as clap does; with `--json` anywhere in the arguments, also the
/// `{"error": {...}}` line on stdout that every other failure prints, so a script reading
/// stdout sees a bad flag value the same way as any other error.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
        || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    {
        e.exit();
    }
    let json = std::env::args_os().skip(1).any(|a| a == "--json");
    let _ = e.print();
    if json {
        let text = e.render().to_string();
        // The paragraph before the usage: one line, or a list of missing arguments.
        let message = text
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ")
            .trim_start_matches("error: ")
            .to_string();
        outln!(
            "{}",
            serde_json::json!({"error": {"message": message, "causes": [],
                                         "exit_code": common::exit::USAGE}})
        );
    }
    ExitCode::from(common::exit::USAGE)
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
