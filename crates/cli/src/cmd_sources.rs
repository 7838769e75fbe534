//! `driftbridge sources list | show | create | update | pause | resume | delete | run`: the
//! saved data sources (Drift streams into a sink, on a schedule or by hand), the same store
//! objects the REST API (`/api/v1/sources`) and the web UI manage, through the same
//! functions ([`flows::sources`]). `sources run` runs one now in the foreground, as the
//! server's "run now" does in the background (one run at a time per source), and prints
//! the summary and exits like `sync`. Real time (webhooks) is in [`realtime`].

mod realtime;

use crate::cmd_sync::{self, open_store};
use crate::common::{exit, fail, Ctx};
use flows::sources::{self, NewSource, Schedule, SourceChange, SourceOptions};
use flows::FlowError;
use serde_json::json;
use std::process::ExitCode;
use store::{SourceRecord, Store};

/// Arguments of `driftbridge sources`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  driftbridge sources create --name nightly --credential prod \\
      --streams conversations,users --destination sqlite:/srv/drift.db --schedule '0 3 * * *'
  driftbridge sources list
  driftbridge sources show nightly
  driftbridge sources pause nightly
  driftbridge sources run nightly
  driftbridge sources update nightly --every-minutes 60
  DRIFT_VERIFICATION_TOKEN=... driftbridge sources update nightly \\
      --realtime --verification-token-env DRIFT_VERIFICATION_TOKEN
  driftbridge sources show nightly --public-url https://driftbridge.example.com
  driftbridge sources delete nightly")]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    /// The URL `serve` is reached at (its --public-url), to print a real-time source's
    /// webhook URL whole; without it the webhook URL is printed as its path
    /// (`/webhooks/drift/ID`), to prefix with that URL.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "DRIFTBRIDGE_PUBLIC_URL"
    )]
    public_url: Option<String>,
}

/// Schedule flags of `create` and `update`.
#[derive(Debug, clap::Args)]
struct ScheduleArgs {
    /// Run at the times of a 5-field cron expression, in UTC: minute hour day-of-month
    /// month day-of-week, e.g. '0 3 * * *' (03:00 every day).
    #[arg(long, value_name = "CRON", conflicts_with = "every_minutes")]
    schedule: Option<String>,
    /// Run every N minutes (1 to 10080), counted from the start of the last run.
    #[arg(long, value_name = "N")]
    every_minutes: Option<u32>,
}

impl ScheduleArgs {
    fn schedule(&self) -> Option<Schedule> {
        match (&self.schedule, self.every_minutes) {
            (Some(cron), _) => Some(Schedule::cron(cron)),
            (None, Some(n)) => Some(Schedule::every(n)),
            (None, None) => None,
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// The data sources: name, credential, streams, schedule, paused, next run, failures.
    List,
    /// One data source: its settings, schedule, paused or not, next run time, failure
    /// streak, last error and latest runs.
    Show {
        /// Name or id.
        name: String,
    },
    /// Save a data source (the credential is tested for the streams' scopes first).
    Create {
        /// Unique name (case-insensitive).
        #[arg(long)]
        name: String,
        /// Credential to read with (see `driftbridge credentials list`).
        #[arg(long)]
        credential: String,
        /// Streams, comma-separated, or `all`.
        #[arg(long, value_delimiter = ',', required = true)]
        streams: Vec<String>,
        /// Where to write, as in `sync`: sqlite:PATH, postgres://..., jsonl:DIR, csv:DIR or
        /// parquet:DIR; a relative path is made absolute. Default: the SQLite file
        /// sinks/driftbridge-data.db in the data directory.
        #[arg(
            long = "destination",
            visible_alias = "sink",
            value_name = "DESTINATION"
        )]
        sink: Option<String>,
        /// `incremental` (default) or `full` (also `full-refresh`).
        #[arg(long, default_value = "incremental")]
        mode: String,
        #[command(flatten)]
        schedule: ScheduleArgs,
        /// Save it paused: its schedule does not start it until `sources resume`.
        #[arg(long)]
        paused: bool,
        /// Schema contract, as `sync --schema-contract`: `evolve` (default), `freeze` or
        /// `discard`.
        #[arg(long, default_value = "evolve", value_parser = crate::cmd_sync::parse_contract)]
        schema_contract: sinks::SchemaContract,
        /// History mode, as `sync --history` (SQLite, PostgreSQL).
        #[arg(long)]
        history: bool,
        #[command(flatten)]
        realtime: realtime::CreateArgs,
    },
    /// Change a data source; flags not given stay as they are.
    Update {
        /// Name or id.
        name: String,
        /// New name.
        #[arg(long = "name", value_name = "NEW_NAME")]
        new_name: Option<String>,
        /// New credential (the streams' scopes are tested again).
        #[arg(long)]
        credential: Option<String>,
        /// New streams, comma-separated.
        #[arg(long, value_delimiter = ',')]
        streams: Option<Vec<String>>,
        /// New destination (see `create`).
        #[arg(
            long = "destination",
            visible_alias = "sink",
            value_name = "DESTINATION"
        )]
        sink: Option<String>,
        /// New mode: `incremental` or `full`.
        #[arg(long)]
        mode: Option<String>,
        #[command(flatten)]
        schedule: ScheduleArgs,
        /// Remove the schedule (it then runs only when started).
        #[arg(long, conflicts_with_all = ["schedule", "every_minutes"])]
        no_schedule: bool,
        /// New schema contract: `evolve`, `freeze` or `discard`.
        #[arg(long, value_parser = crate::cmd_sync::parse_contract)]
        schema_contract: Option<sinks::SchemaContract>,
        /// History mode on (`true`) or off (`false`).
        #[arg(long, value_name = "BOOL")]
        history: Option<bool>,
        #[command(flatten)]
        realtime: realtime::UpdateArgs,
    },
    /// Pause the schedule (a running run goes on; `sources run` still runs it).
    Pause {
        /// Name or id.
        name: String,
    },
    /// Resume the schedule.
    Resume {
        /// Name or id.
        name: String,
    },
    /// Delete a data source (its run history and the data it wrote stay).
    Delete {
        /// Name or id.
        name: String,
    },
    /// Run it now in the foreground, as the server's "run now" does; prints the summary
    /// and exits like `sync` (2 "already running: RUN_ID" when it runs elsewhere).
    Run {
        /// Name or id.
        name: String,
        /// When it is running already, wait for that run to end, then start.
        #[arg(long)]
        wait: bool,
    },
}

/// Run the subcommand.
pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let store = open_store(ctx)?;
    // The CLI is one user's tool: any address, loopback sandbox included.
    let any = flows::AddressPolicy::AllowPrivate;
    let base = realtime::base(args.public_url.as_deref())?;
    let out = Out {
        ctx,
        store: &store,
        base: &base,
    };
    match args.command {
        Command::List => list(&out),
        Command::Show { name } => show(&out, &name),
        Command::Create {
            name,
            credential,
            streams,
            sink,
            mode,
            schedule,
            paused,
            schema_contract,
            history,
            realtime,
        } => {
            // The token is read and checked before anything is saved.
            let realtime = realtime.change()?;
            let new = NewSource {
                name,
                credential,
                streams,
                options: SourceOptions {
                    mode: mode_of(&mode)?,
                    sink: match sink {
                        Some(s) => absolute(&s)?,
                        None => default_sink(&store),
                    },
                    schedule: schedule.schedule(),
                    paused,
                    schema_contract,
                    history,
                    reset_streams: Vec::new(),
                    realtime: None,
                },
            };
            let record = sources::create(&store, any, &new, flows::check::Edge::Cli)
                .await
                .map_err(flow_fail)?;
            let id = record.id.clone();
            let record = realtime::apply(&store, record, &realtime).map_err(|e| {
                // Nothing half-made: the source goes again when its token cannot be stored.
                let _ = store.delete_source(&id);
                flow_fail(e)
            })?;
            done(&out, record, "Saved")
        }
        Command::Update {
            name,
            new_name,
            credential,
            streams,
            sink,
            mode,
            schedule,
            no_schedule,
            schema_contract,
            history,
            realtime,
        } => {
            let realtime = realtime.change()?;
            let change = SourceChange {
                name: new_name,
                credential,
                streams,
                mode: mode.as_deref().map(mode_of).transpose()?,
                sink: sink.as_deref().map(absolute).transpose()?,
                schedule: if no_schedule {
                    Some(None)
                } else {
                    schedule.schedule().map(Some)
                },
                paused: None,
                schema_contract,
                history,
            };
            let record = sources::update(&store, any, &name, &change, flows::check::Edge::Cli)
                .await
                .map_err(flow_fail)?;
            let record = realtime::apply(&store, record, &realtime).map_err(flow_fail)?;
            done(&out, record, "Updated")
        }
        Command::Pause { name } => {
            let record = sources::set_paused(&store, &name, true).map_err(flow_fail)?;
            done(&out, record, "Paused")
        }
        Command::Resume { name } => {
            let record = sources::set_paused(&store, &name, false).map_err(flow_fail)?;
            done(&out, record, "Resumed")
        }
        Command::Delete { name } => {
            let record = sources::delete(&store, &name).map_err(flow_fail)?;
            if ctx.json {
                outln!("{}", json!({"deleted": record.name, "id": record.id}));
            } else if !ctx.quiet {
                outln!(
                    "Deleted data source \"{}\" (its run history and the data it wrote stay).",
                    record.name
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { name, wait } => {
            let record = store.source(&name).map_err(|e| flow_fail(e.into()))?;
            let job = sources::job_of(&store, &record).map_err(flow_fail)?;
            let summary = cmd_sync::execute_waiting(ctx, &store, &job, wait).await?;
            sources::reset_started(&store, &record);
            cmd_sync::print_summary(ctx, &summary)?;
            cmd_sync::finish(&summary)
        }
    }
}

/// A [`FlowError`] as the CLI says it: its exit code, the message with the API's field
/// names turned into this command's flags.
fn flow_fail(e: FlowError) -> anyhow::Error {
    let message = e
        .fields()
        .iter()
        .map(|f| format!("{}: {}", flag_of(&f.field), f.message))
        .collect::<Vec<_>>()
        .join("\n");
    let message = if message.is_empty() {
        e.message().to_string()
    } else {
        message
    };
    fail(e.exit_code(), message)
}

/// The flag of a source field.
fn flag_of(field: &str) -> &str {
    match field {
        "name" => "--name",
        "credential" => "--credential",
        "streams" => "--streams",
        "mode" => "--mode",
        "sink" => "--destination",
        "schedule" | "schedule.cron" => "--schedule",
        "realtime.verification_token" => "--verification-token-env",
        other => other,
    }
}

/// `incremental` or `full`, as the API stores it. Errors: exit 2 naming `--mode`.
fn mode_of(mode: &str) -> anyhow::Result<String> {
    let parsed: sync_core::SyncMode = mode
        .trim()
        .parse()
        .map_err(|e: String| fail(exit::USAGE, format!("--mode: {e}")))?;
    Ok(flows::job::mode_name(parsed).to_string())
}

/// The sink with a relative file path made absolute (a schedule runs it from `serve`,
/// whose working directory is another). Errors: exit 2 naming `--destination`.
fn absolute(sink: &str) -> anyhow::Result<String> {
    let spec: sinks::SinkSpec = sink
        .trim()
        .parse()
        .map_err(|e: String| fail(exit::USAGE, format!("--destination: {e}")))?;
    let cwd = std::env::current_dir().map_err(|e| {
        fail(
            exit::FAILURE,
            format!("cannot read the current directory: {e}"),
        )
    })?;
    let abs = |kind: &str, p: &std::path::Path| {
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            cwd.join(p)
        };
        format!("{kind}:{}", p.display())
    };
    Ok(match &spec {
        sinks::SinkSpec::Sqlite(p) => abs("sqlite", p),
        sinks::SinkSpec::Jsonl(p) => abs("jsonl", p),
        sinks::SinkSpec::Csv(p) => abs("csv", p),
        sinks::SinkSpec::Parquet(p) => abs("parquet", p),
        sinks::SinkSpec::Postgres(_) => sink.trim().to_string(),
    })
}

/// The default sink of a new source, as the API's: `sqlite:<data dir>/sinks/driftbridge-data.db`.
fn default_sink(store: &Store) -> String {
    format!(
        "sqlite:{}",
        store
            .data_dir()
            .join(flows::sink_paths::SINKS_DIR)
            .join("driftbridge-data.db")
            .display()
    )
}

/// What the output of `sources` needs: the context, the store and the base of webhook
/// URLs ([`realtime::base`]).
struct Out<'a> {
    ctx: &'a Ctx,
    store: &'a Store,
    base: &'a str,
}

/// A source as `--json` prints it: the API's fields (the sink's password masked; the
/// verification token never).
fn view(out: &Out<'_>, record: &SourceRecord) -> serde_json::Value {
    let store = out.store;
    let options = SourceOptions::of(record);
    let health = sources::health(store, record);
    let (webhook_url, realtime) = realtime::view_fields(store, record, out.base);
    json!({
        "id": record.id,
        "name": record.name,
        "credential": record.credential,
        "streams": record.streams,
        "mode": options.mode,
        "sink": options.sink,
        "schedule": options.schedule,
        "paused": health.paused,
        "failure_streak": health.failure_streak,
        "last_error": health.last_error,
        "next_run_at": health.next_run_at,
        "webhook_url": webhook_url,
        "realtime": realtime,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    })
}

fn done(out: &Out<'_>, record: SourceRecord, verb: &str) -> anyhow::Result<ExitCode> {
    let ctx = out.ctx;
    if ctx.json {
        outln!("{}", serde_json::to_string_pretty(&view(out, &record))?);
    } else if !ctx.quiet {
        let options = SourceOptions::of(&record);
        let schedule = options
            .schedule
            .as_ref()
            .map(Schedule::describe)
            .unwrap_or_else(|| "no schedule".into());
        let paused = if options.paused { ", paused" } else { "" };
        outln!(
            "{verb} data source \"{}\" ({}; {schedule}{paused}). Run it now with `driftbridge sources run {}`.",
            record.name,
            record.streams.join(", "),
            record.name
        );
        if let Some(s) = flows::realtime::status(out.store, &record, out.base) {
            outln!(
                "Real time is on: give Drift the webhook URL {}",
                s.webhook_url
            );
            if out.base.is_empty() {
                outln!("  ({})", realtime::PATH_NOTE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list(out: &Out<'_>) -> anyhow::Result<ExitCode> {
    let (ctx, store) = (out.ctx, out.store);
    let all = store
        .list_sources()
        .map_err(|e| fail(exit::FAILURE, e.to_string()))?;
    if ctx.json {
        let views: Vec<_> = all.iter().map(|s| view(out, s)).collect();
        outln!("{}", serde_json::to_string_pretty(&views)?);
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() {
        outln!("No data sources. Save one with `driftbridge sources create --name NAME --credential NAME --streams all`.");
        return Ok(ExitCode::SUCCESS);
    }
    let now = chrono::Utc::now().timestamp_millis();
    let rows: Vec<[String; 7]> = all
        .iter()
        .map(|s| {
            let options = SourceOptions::of(s);
            let health = sources::health(store, s);
            [
                s.name.clone(),
                s.credential.clone().unwrap_or_else(|| "(none)".into()),
                s.streams.join(","),
                schedule_text(&options, &health, now),
                health
                    .last_runs
                    .first()
                    .map(|r| r.status.replace('_', " "))
                    .unwrap_or_else(|| "never ran".into()),
                match health.failure_streak {
                    0 => "-".into(),
                    1 => "1 failure".into(),
                    n => format!("{n} failures in a row"),
                },
                match flows::realtime::status(store, s, out.base) {
                    Some(rt) => format!("on ({}/h)", rt.events_last_hour),
                    None => "-".into(),
                },
            ]
        })
        .collect();
    let header = [
        "NAME",
        "CREDENTIAL",
        "STREAMS",
        "SCHEDULE",
        "LAST RUN",
        "FAILING",
        "REAL TIME",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    outln!("{}", line(&header.map(String::from)));
    for row in &rows {
        outln!("{}", line(row));
    }
    Ok(ExitCode::SUCCESS)
}

/// `cron 0 3 * * * (UTC), next in 5 h`, `paused (every 60 minutes)`, `by hand`.
fn schedule_text(options: &SourceOptions, health: &sources::SourceHealth, now: i64) -> String {
    match (&options.schedule, options.paused) {
        (None, _) => "by hand".into(),
        (Some(s), true) => format!("paused ({})", s.describe()),
        (Some(s), false) => match health.next_run_at {
            Some(at) => format!("{}, next {}", s.describe(), relative(at, now)),
            None => s.describe(),
        },
    }
}

/// `in 5 min`, `in 3 h`, `now` (a time due or past: within the next scheduler tick).
fn relative(at: i64, now: i64) -> String {
    let secs = (at - now) / 1000;
    match secs {
        i64::MIN..=59 => "now".into(),
        60..=5_399 => format!("in {} min", (secs + 30) / 60),
        5_400..=172_799 => format!("in {} h", (secs + 1_800) / 3_600),
        _ => format!("in {} days", (secs + 43_200) / 86_400),
    }
}

/// Local time of epoch ms `at`, `2026-12-06 03:00 UTC+01:00`.
fn when(at: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M %:z")
                .to_string()
        })
        .unwrap_or_else(|| at.to_string())
}

fn show(out: &Out<'_>, name: &str) -> anyhow::Result<ExitCode> {
    let (ctx, store) = (out.ctx, out.store);
    let record = store.source(name).map_err(|e| flow_fail(e.into()))?;
    if ctx.json {
        let mut v = view(out, &record);
        v["last_runs"] = serde_json::to_value(sources::health(store, &record).last_runs)?;
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let options = SourceOptions::of(&record);
    let health = sources::health(store, &record);
    let now = chrono::Utc::now().timestamp_millis();
    let mut text = format!("data source {} ({})\n", record.name, record.id);
    let mut field = |k: &str, v: String| text.push_str(&format!("  {k:<15} {v}\n"));
    field(
        "credential",
        record
            .credential
            .clone()
            .unwrap_or_else(|| "(none: it was deleted; give one with `sources update`)".into()),
    );
    field("streams", record.streams.join(", "));
    field("mode", options.mode.clone());
    field("destination", options.sink.clone());
    field(
        "schedule",
        options
            .schedule
            .as_ref()
            .map(Schedule::describe)
            .unwrap_or_else(|| "none (runs when started)".into()),
    );
    field("paused", if options.paused { "yes" } else { "no" }.into());
    field(
        "next run",
        match health.next_run_at {
            Some(at) => format!("{} ({})", when(at), relative(at, now)),
            None if options.paused => "none while paused".into(),
            None => "none".into(),
        },
    );
    field(
        "failure streak",
        match health.failure_streak {
            0 => "0".into(),
            n => format!("{n} failed run{} in a row", if n == 1 { "" } else { "s" }),
        },
    );
    if let Some(e) = &health.last_error {
        field("last error", e.clone());
    }
    for (k, v) in realtime::show_lines(store, &record, out.base) {
        field(&k, v);
    }
    if health.last_runs.is_empty() {
        text.push_str("  no runs yet\n");
    } else {
        text.push_str("  latest runs:\n");
        for r in &health.last_runs {
            text.push_str(&format!(
                "    {}  {}  {}\n",
                r.id,
                when(r.started_at),
                r.status.replace('_', " ")
            ));
        }
    }
    out!("{text}");
    Ok(ExitCode::SUCCESS)
}
