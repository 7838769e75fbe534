//! `driftbridge serve` (stub until its issue lands).

use crate::common::{fail, Ctx};
use std::process::ExitCode;

/// Arguments of `driftbridge serve`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run the subcommand.
pub async fn run(_ctx: &Ctx, _args: Args) -> anyhow::Result<ExitCode> {
    Err(fail(
        crate::common::exit::FAILURE,
        "`serve` is not implemented yet",
    ))
}
