//! `driftbridge airbyte spec|check|discover|read`: the Airbyte protocol (DESIGN.md §6).
//! Glue only: the messages and the read are `protocols::airbyte`. stdout carries protocol
//! messages and nothing else; errors are TRACE messages there too.

use crate::common::{exit, fail, Ctx};
use protocols::airbyte;
use protocols::{ProtocolConfig, Wire};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use sync_core::Cancel;

/// Arguments of `driftbridge airbyte`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Print the SPEC message (the config's JSON Schema).
    Spec,
    /// Test the config's credential: a CONNECTION_STATUS message.
    Check(ConfigArg),
    /// Print the CATALOG message: every stream with its schema, keys and cursor.
    Discover(ConfigArg),
    /// Read the configured catalog's streams: RECORD, STATE, LOG and TRACE messages.
    Read(ReadArgs),
}

#[derive(Debug, clap::Args)]
struct ConfigArg {
    /// The config JSON file (see `airbyte spec`).
    #[arg(long)]
    config: PathBuf,
}

#[derive(Debug, clap::Args)]
struct ReadArgs {
    /// The config JSON file (see `airbyte spec`).
    #[arg(long)]
    config: PathBuf,
    /// The configured catalog JSON file (streams, sync modes).
    #[arg(long)]
    catalog: PathBuf,
    /// The state JSON file (the STREAM state messages of the last read).
    #[arg(long)]
    state: Option<PathBuf>,
}

/// Run the subcommand.
pub async fn run(_ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let wire = Wire::stdout();
    let send = |m: &Value| {
        wire.send(m)
            .map_err(|e| fail(exit::FAILURE, format!("cannot write to stdout: {e}")))
    };
    match args.command {
        Command::Spec => send(&airbyte::spec())?,
        Command::Check(a) => send(&airbyte::check(ProtocolConfig::load(&a.config)).await)?,
        Command::Discover(a) => match ProtocolConfig::load(&a.config) {
            Ok(_) => send(&airbyte::discover())?,
            Err(e) => {
                send(&airbyte::config_error_trace(&e))?;
                return Ok(ExitCode::from(exit::FAILURE));
            }
        },
        Command::Read(a) => return read(&wire, a).await,
    }
    Ok(ExitCode::SUCCESS)
}

async fn read(wire: &Wire, a: ReadArgs) -> anyhow::Result<ExitCode> {
    let inputs = ProtocolConfig::load(&a.config).and_then(|config| {
        let catalog = json_file("catalog", &a.catalog)?;
        let state = match &a.state {
            Some(p) => Some(json_file("state", p)?),
            None => None,
        };
        Ok((config, catalog, state))
    });
    let (config, catalog, state) = match inputs {
        Ok(i) => i,
        Err(e) => {
            let _ = wire.send(&airbyte::config_error_trace(&e));
            return Ok(ExitCode::from(exit::FAILURE));
        }
    };
    let cancel = Cancel::new();
    let stopper = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            crate::common::stop_signal().await;
            cancel.cancel();
        })
    };
    let outcome = airbyte::read(&config, &catalog, state.as_ref(), wire, cancel).await;
    stopper.abort();
    Ok(if outcome.succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::FAILURE)
    })
}

/// A JSON file of the protocol (catalog, state); an empty state file reads as `null`.
pub fn json_file(field: &str, path: &Path) -> Result<Value, protocols::ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| protocols::ConfigError {
        field: field.into(),
        message: format!("cannot read {}: {e}", path.display()),
    })?;
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).map_err(|e| protocols::ConfigError {
        field: field.into(),
        message: format!("{} is not JSON: {e}", path.display()),
    })
}
