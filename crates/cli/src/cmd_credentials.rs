//! `driftbridge credentials` (stub until its issue lands).

use crate::common::{fail, Ctx};
use std::process::ExitCode;

/// Arguments of `driftbridge credentials`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run the subcommand.
pub async fn run(_ctx: &Ctx, _args: Args) -> anyhow::Result<ExitCode> {
    Err(fail(
        crate::common::exit::FAILURE,
        "`credentials` is not implemented yet",
    ))
}

/// Arguments of `driftbridge vault`.
#[derive(Debug, clap::Args)]
pub struct VaultArgs {}

/// Run `driftbridge vault`.
pub async fn run_vault(_ctx: &Ctx, _args: VaultArgs) -> anyhow::Result<ExitCode> {
    Err(fail(
        crate::common::exit::FAILURE,
        "`vault` is not implemented yet",
    ))
}
