//! `driftbridge alerts add | list | delete | test`: notification channels (webhooks) told
//! when a run fails, a data source recovers, Drift rejects a credential or a run rejects
//! records ([`flows::alerts`]); the same channels as `/api/v1/alerts`. The webhook URL is a
//! secret: read from an environment variable, encrypted in the vault, shown masked.

use crate::common::{exit, fail, Ctx};
use flows::alerts::{self, NewChannel};
use flows::FlowError;
use secrecy::SecretString;
use serde_json::json;
use std::process::ExitCode;

/// Arguments of `driftbridge alerts`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  export HOOK='https://hooks.slack.com/services/T000/B000/XXXX'
  driftbridge alerts add --name ops --url-env HOOK --format slack --events run_failed,run_recovered
  driftbridge alerts test ops
  driftbridge alerts list
  driftbridge alerts delete ops")]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Add a webhook channel.
    Add {
        /// Unique name.
        #[arg(long)]
        name: String,
        /// Environment variable holding the webhook URL (kept out of the process list and
        /// the shell history).
        #[arg(long, value_name = "VAR")]
        url_env: String,
        /// `json` (the alert as a JSON object, default) or `slack` ({"text": "..."}, which
        /// Slack, Mattermost and most chat webhooks accept).
        #[arg(long, default_value = "json")]
        format: String,
        /// Events, comma-separated (default: all): run_failed, run_recovered,
        /// credential_failed, records_rejected.
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
    },
    /// The channels: name, format, events, URL (masked).
    List,
    /// Delete a channel.
    Delete {
        /// Name or id.
        name: String,
    },
    /// Send a test alert to a channel now; exits 1 when it is not delivered.
    Test {
        /// Name or id.
        name: String,
    },
}

fn flow_fail(e: FlowError) -> anyhow::Error {
    let message = e
        .fields()
        .iter()
        .map(|f| {
            let flag = match f.field.as_str() {
                "url" => "--url-env",
                "name" => "--name",
                "format" => "--format",
                "events" => "--events",
                other => other,
            };
            format!("{flag}: {}", f.message)
        })
        .collect::<Vec<_>>()
        .join("\n");
    let message = if message.is_empty() {
        e.message().to_string()
    } else {
        message
    };
    fail(e.exit_code(), message)
}

/// Run the subcommand.
pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let store = crate::common::open_store(ctx)?;
    // The CLI is one user's tool: any address, a local receiver included.
    let any = flows::AddressPolicy::AllowPrivate;
    match args.command {
        Command::Add {
            name,
            url_env,
            format,
            events,
        } => {
            let url = std::env::var(&url_env).map_err(|_| {
                fail(
                    exit::USAGE,
                    format!("--url-env: the environment variable {url_env} is not set; export the webhook URL in it first"),
                )
            })?;
            let channel = alerts::add(
                &store,
                any,
                &NewChannel {
                    name,
                    url: SecretString::from(url),
                    format: Some(format),
                    events,
                },
            )
            .map_err(flow_fail)?;
            if ctx.json {
                outln!("{}", serde_json::to_string_pretty(&channel)?);
            } else if !ctx.quiet {
                outln!(
                    "Added channel \"{}\" ({}, {}) for {}. Send a test with `driftbridge alerts test {}`.",
                    channel.name,
                    channel.format,
                    channel.url_mask,
                    channel.events.join(", "),
                    channel.name
                );
            }
        }
        Command::List => {
            let all = store
                .list_notification_channels()
                .map_err(|e| fail(exit::FAILURE, e.to_string()))?;
            if ctx.json {
                outln!("{}", serde_json::to_string_pretty(&all)?);
            } else if all.is_empty() {
                outln!("No notification channels. Add one with `driftbridge alerts add --name NAME --url-env VAR`.");
            } else {
                outln!("{:<20} {:<6} {:<40} EVENTS", "NAME", "FORMAT", "URL");
                for c in &all {
                    outln!(
                        "{:<20} {:<6} {:<40} {}",
                        c.name,
                        c.format,
                        c.url_mask,
                        c.events.join(",")
                    );
                }
            }
        }
        Command::Delete { name } => {
            let c = store
                .delete_notification_channel(&name)
                .map_err(|e| flow_fail(e.into()))?;
            if ctx.json {
                outln!("{}", json!({"deleted": c.name, "id": c.id}));
            } else if !ctx.quiet {
                outln!("Deleted channel \"{}\".", c.name);
            }
        }
        Command::Test { name } => {
            let c = alerts::test(&store, any, &name).await.map_err(flow_fail)?;
            if ctx.json {
                outln!("{}", json!({"delivered": true, "channel": c.name}));
            } else if !ctx.quiet {
                outln!(
                    "Test alert delivered to channel \"{}\" ({}).",
                    c.name,
                    c.url_mask
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
