//! `driftbridge destinations list | show | delete | run`: the saved data destinations (a
//! push into Drift saved with `push --save NAME`, or from the REST API and the web UI), the
//! same store objects as `/api/v1/destinations`. `destinations run NAME --from FILE` is
//! `push --destination NAME --from FILE`: one run at a time per destination.

use crate::cmd_credentials::store_error;
use crate::common::{exit, fail, Ctx};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;
use store::DestinationRecord;

/// Arguments of `driftbridge destinations`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  driftbridge push contacts --credential prod --from leads.csv --key email --save leads
  driftbridge destinations list
  driftbridge destinations show leads
  driftbridge destinations run leads --from leads-2.csv --dry-run
  driftbridge destinations delete leads")]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// The saved destinations: name, kind, credential, object, key.
    List,
    /// One saved destination with its settings (mapping, key, policies).
    Show {
        /// Name or id.
        name: String,
    },
    /// Delete a saved destination (its run history stays).
    Delete {
        /// Name or id.
        name: String,
    },
    /// Run a saved push now with rows from --from (as `push --destination NAME`).
    Run {
        /// Name or id.
        name: String,
        /// Input: FILE.csv, FILE.jsonl, sqlite:PATH?table=T, postgres://...?table=T.
        #[arg(long)]
        from: String,
        /// Validate and look up only; say what would be written; write nothing to Drift.
        #[arg(long)]
        dry_run: bool,
        /// Results file, CSV or JSONL by extension.
        #[arg(long, value_name = "FILE")]
        results: Option<PathBuf>,
        /// When it is running already, wait for that run to end, then start.
        #[arg(long)]
        wait: bool,
        /// Let the mapping name attributes Drift does not have (the push creates them as
        /// new custom attributes); a destination saved with it allows them already.
        #[arg(long)]
        allow_new_attributes: bool,
    },
}

/// Run the subcommand.
pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let store = crate::common::open_store(ctx)?;
    match args.command {
        Command::List => {
            let all = store.list_destinations().map_err(store_error)?;
            if ctx.json {
                let views: Vec<Value> = all.iter().map(view).collect();
                outln!("{}", serde_json::to_string_pretty(&views)?);
            } else if all.is_empty() {
                outln!(
                    "No saved destinations. Save a push with `driftbridge push ... --save NAME`."
                );
            } else {
                outln!(
                    "{:<24} {:<8} {:<20} {:<14} {}",
                    "NAME",
                    "KIND",
                    "CREDENTIAL",
                    "OBJECT",
                    "KEY"
                );
                for d in &all {
                    outln!(
                        "{:<24} {:<8} {:<20} {:<14} {}",
                        d.name,
                        d.kind,
                        d.credential.as_deref().unwrap_or("(none)"),
                        text(d, "object"),
                        text(d, "key")
                    );
                }
            }
        }
        Command::Show { name } => {
            let d = store.destination(&name).map_err(store_error)?;
            if ctx.json {
                outln!("{}", serde_json::to_string_pretty(&view(&d))?);
            } else {
                let runs = store.flow_runs(&d.name, 5).unwrap_or_default();
                let mut out = format!("destination {} ({})\n", d.name, d.id);
                for (k, v) in [
                    ("kind", d.kind.clone()),
                    (
                        "credential",
                        d.credential.clone().unwrap_or_else(|| "(none)".into()),
                    ),
                    ("object", text(&d, "object")),
                    ("key", text(&d, "key")),
                    ("mapping", text(&d, "mapping")),
                    ("on duplicate", text(&d, "on_duplicate")),
                ] {
                    out.push_str(&format!("  {k:<13} {v}\n"));
                }
                for r in &runs {
                    out.push_str(&format!("  run {}  {}\n", r.id, r.status.replace('_', " ")));
                }
                out!("{out}");
            }
        }
        Command::Delete { name } => {
            let d = store.destination(&name).map_err(store_error)?;
            if let Some(run_id) = store
                .running_in(&flows::single::destination_key(&d.id))
                .map_err(store_error)?
            {
                return Err(fail(
                    exit::USAGE,
                    format!("destination \"{}\" is running (run {run_id}); wait for it to end, then delete it", d.name),
                ));
            }
            let d = store.delete_destination(&d.id).map_err(store_error)?;
            if ctx.json {
                outln!("{}", json!({"deleted": d.name, "id": d.id}));
            } else if !ctx.quiet {
                outln!(
                    "Deleted destination \"{}\" (its run history stays).",
                    d.name
                );
            }
        }
        Command::Run {
            name,
            from,
            dry_run,
            results,
            wait,
            allow_new_attributes,
        } => {
            let args = crate::cmd_push::Args {
                object: None,
                credential: None,
                from,
                key: None,
                map: Vec::new(),
                mapping: None,
                include_unmapped: false,
                allow_new_attributes,
                on_duplicate: None,
                dry_run,
                results,
                only: Vec::new(),
                resend_uncertain: false,
                rate_limit_per_min: None,
                concurrency: 8,
                save: None,
                destination: Some(name),
                wait,
            };
            return crate::cmd_push::run(ctx, args).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A string setting of `d`'s config, or `-`.
fn text(d: &DestinationRecord, key: &str) -> String {
    d.config
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| "-".into())
}

/// `--json` shape: the record (settings as saved; never secrets).
fn view(d: &DestinationRecord) -> Value {
    serde_json::to_value(d).unwrap_or(Value::Null)
}
