//! `driftbridge singer`: a Singer tap (DESIGN.md §6). Glue only: `protocols::singer`.

use crate::common::{exit, fail, Ctx};
use protocols::{singer, ProtocolConfig, Wire};
use std::path::PathBuf;
use std::process::ExitCode;
use sync_core::Cancel;

/// Arguments of `driftbridge singer`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The config JSON file: access_token, base_url, start_date, rate_limit_per_min,
    /// user_agent, oauth, shared_budget_url (README "Run inside Airbyte / Meltano / Dagster").
    #[arg(long)]
    config: PathBuf,
    /// The state JSON file (`{"bookmarks": ...}` of the last STATE message).
    #[arg(long)]
    state: Option<PathBuf>,
    /// The catalog with the streams to sync selected (metadata `selected: true`). Without
    /// it, every stream is synced.
    #[arg(long, conflicts_with = "properties")]
    catalog: Option<PathBuf>,
    /// The catalog, as older Singer runners name it.
    #[arg(long)]
    properties: Option<PathBuf>,
    /// Print the catalog (every stream, its schema and metadata) and exit.
    #[arg(long)]
    discover: bool,
}

/// Run the subcommand.
pub async fn run(_ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let usage = |e: protocols::ConfigError| fail(exit::USAGE, e.to_string());
    let config = ProtocolConfig::load(&args.config).map_err(usage)?;
    if args.discover {
        outln!("{}", serde_json::to_string_pretty(&singer::discover())?);
        return Ok(ExitCode::SUCCESS);
    }
    let catalog = match args.catalog.as_ref().or(args.properties.as_ref()) {
        Some(p) => Some(crate::cmd_airbyte::json_file("catalog", p).map_err(usage)?),
        None => None,
    };
    let state = match &args.state {
        Some(p) => Some(crate::cmd_airbyte::json_file("state", p).map_err(usage)?),
        None => None,
    };
    let cancel = Cancel::new();
    let stopper = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            crate::common::stop_signal().await;
            cancel.cancel();
        })
    };
    let outcome = singer::sync(
        &config,
        catalog.as_ref(),
        state.as_ref(),
        &Wire::stdout(),
        cancel,
    )
    .await
    .map_err(usage)?;
    stopper.abort();
    match outcome.error {
        None => Ok(ExitCode::SUCCESS),
        Some(e) => Err(fail(exit::FAILURE, format!("singer sync failed: {e}"))),
    }
}
