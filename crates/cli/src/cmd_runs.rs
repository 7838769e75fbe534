//! `driftbridge runs list | show ID | rejected ID | logs ID`: the run history kept in the
//! metadata store, and each run's log (`runs/<run id>.log` in the data directory, written by
//! `flows::logs` for every run, from the CLI or `serve`).

use crate::cmd_sync::{open_store, render_summary_body, Summary};
use crate::common::{exit, fail, Ctx};
use flows::push_job::PushRunSummary;
use std::process::ExitCode;
use store::RunRecord;

/// Arguments of `driftbridge runs`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  driftbridge runs list --limit 10
  driftbridge runs show run_20261130T115500_3f9a0c1d
  driftbridge runs logs run_20261130T115500_3f9a0c1d --follow
  driftbridge runs rejected run_20261130T115500_3f9a0c1d")]
pub struct Args {
    #[command(subcommand)]
    command: RunsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum RunsCommand {
    /// The most recent runs, newest first, with their type (sync, push, dry run) and what
    /// started them (manual, schedule); the filters combine.
    #[command(
        after_help = "Examples:\n  driftbridge runs list --type sync --status failed\n  driftbridge runs list --trigger schedule --status failed\n  driftbridge runs list --source nightly --limit 50\n  driftbridge runs list --type dry_run --destination \"Grace list\""
    )]
    List {
        /// How many runs to show.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Only runs of this type: sync, push or dry_run.
        #[arg(long = "type", value_name = "TYPE", value_parser = ["sync", "push", "dry_run"])]
        run_type: Option<String>,
        /// Only runs with this status (succeeded, succeeded_with_rejections, failed,
        /// rate_limited, cancelled, interrupted, skipped, running).
        #[arg(long)]
        status: Option<String>,
        /// Only the syncs of this data source.
        #[arg(long)]
        source: Option<String>,
        /// Only the pushes and dry runs of this saved destination.
        #[arg(long)]
        destination: Option<String>,
        /// Only runs started this way: manual (the CLI, the API's or web UI's run now) or
        /// schedule (the scheduler of `serve`).
        #[arg(long, value_name = "TRIGGER", value_parser = store::TRIGGERS)]
        trigger: Option<String>,
    },
    /// One run with its per-stream figures.
    Show {
        /// Run id (from `runs list` or the `sync` summary).
        id: String,
    },
    /// The records a sync run quarantined because they did not fit their stream's types:
    /// stream, primary key, reason and the record as Drift sent it. The sink keeps them too
    /// (table `_driftbridge_rejected`, or the `_rejected/` folder of a file sink).
    Rejected {
        /// Run id (from `runs list` or the `sync` summary).
        id: String,
    },
    /// The run's log: its events (started, each stream's figures, Drift rate limiting and
    /// retries, quarantined records, rejected push rows, finished; info and above, secrets
    /// redacted), oldest first, as `time LEVEL message key=value…`; with --json the JSON
    /// lines as stored (time, level, target, message, fields).
    Logs {
        /// Run id (from `runs list` or the `sync` / `push` summary).
        id: String,
        /// Keep printing new lines as they come until the run ends.
        #[arg(long)]
        follow: bool,
    },
}

/// Run the subcommand.
pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let store = open_store(ctx)?;
    match args.command {
        RunsCommand::List {
            limit,
            run_type,
            status,
            source,
            destination,
            trigger,
        } => {
            let filter = flows::run_filter::RunFilter {
                source,
                destination,
                run_type,
                status,
                trigger,
            };
            let scan = if filter.is_set() {
                limit.max(500)
            } else {
                limit
            };
            let runs = filter
                .list(&store, scan, limit)
                .map_err(|e| fail(e.exit_code(), e.message()))?;
            if ctx.json {
                outln!("{}", serde_json::to_string_pretty(&runs)?);
            } else {
                out!("{}", render_list(&runs));
            }
        }
        RunsCommand::Rejected { id } => {
            let rejected = store.rejected(&id).map_err(store_fail)?;
            if ctx.json {
                outln!("{}", serde_json::to_string_pretty(&rejected)?);
            } else {
                out!("{}", render_rejected(&id, &rejected));
            }
        }
        RunsCommand::Logs { id, follow } => print_logs(ctx, &store, &id, follow).await?,
        RunsCommand::Show { id } => {
            let run = store.get_run(&id).map_err(store_fail)?;
            if ctx.json {
                outln!("{}", serde_json::to_string_pretty(&run)?);
            } else {
                out!("{}", render_run(&run));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How often `runs logs --follow` looks for new lines.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_millis(300);

/// Print run `id`'s log; with `follow`, go on printing new lines until the run ends (also
/// when another process runs it: the status in the store says when it has ended).
async fn print_logs(ctx: &Ctx, store: &store::Store, id: &str, follow: bool) -> anyhow::Result<()> {
    let run = store.get_run(id).map_err(store_fail)?;
    let mut next = 0;
    loop {
        // Read the status first: lines written before the run ended are then all read below.
        let running = follow
            && store
                .get_run(&run.id)
                .map_err(store_fail)?
                .status
                .eq("running");
        let page = flows::logs::read(store.data_dir(), &run.id, next)
            .map_err(|e| fail(e.exit_code(), e.message()))?;
        for line in &page.lines {
            if ctx.json {
                outln!("{}", serde_json::to_string(line)?);
            } else {
                outln!("{}", line.text());
            }
        }
        next = page.next;
        if !running {
            return Ok(());
        }
        tokio::time::sleep(FOLLOW_EVERY).await;
    }
}

/// A store error as the CLI says it: exit 2 for what the user can fix (an unknown run id).
fn store_fail(e: store::StoreError) -> anyhow::Error {
    let code = if e.is_user_error() {
        exit::USAGE
    } else {
        exit::FAILURE
    };
    fail(code, e.to_string())
}

/// Quarantined records, one block each: stream, key, reason, then the raw record.
fn render_rejected(id: &str, rejected: &[store::RejectedRecord]) -> String {
    if rejected.is_empty() {
        return format!("run {id} quarantined no records\n");
    }
    let mut out = format!(
        "run {id} quarantined {} record{}:\n",
        rejected.len(),
        if rejected.len() == 1 { "" } else { "s" }
    );
    for r in rejected {
        out.push_str(&format!(
            "  {} {}  {}\n    {}\n",
            r.stream,
            r.primary_key.as_deref().unwrap_or("(no key)"),
            r.reason,
            r.raw
        ));
    }
    out
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn is_push(run: &RunRecord) -> bool {
    run.mode.starts_with("push")
}

/// Whether the run left a summary: a run that is still going or was killed has none, and its
/// figures are unknown (shown as `-`), not zero.
fn has_summary(run: &RunRecord) -> bool {
    match &run.summary {
        serde_json::Value::Null => false,
        serde_json::Value::Object(m) => !m.is_empty(),
        _ => true,
    }
}

/// Records written: per stream for a sync, rows created or updated in Drift for a push;
/// `None` when the run left no summary.
fn written(run: &RunRecord) -> Option<u64> {
    if !has_summary(run) {
        return None;
    }
    if is_push(run) {
        return Some(PushRunSummary::from_run(&run.summary).written());
    }
    serde_json::from_value::<Summary>(run.summary.clone())
        .ok()
        .map(|s| s.streams.iter().map(|st| st.records_written).sum())
}

/// Requests sent, or `None` when the run left no summary.
fn requests(run: &RunRecord) -> Option<u64> {
    if !has_summary(run) {
        return None;
    }
    if is_push(run) {
        return Some(PushRunSummary::from_run(&run.summary).requests);
    }
    run.summary["totals"]["requests"].as_u64()
}

fn figure(n: Option<u64>) -> String {
    n.map(|n| n.to_string()).unwrap_or_else(|| "-".into())
}

/// The run history as a table; columns are as wide as their longest value, so a long
/// credential name or the `interrupted` status keeps the rows aligned.
fn render_list(runs: &[RunRecord]) -> String {
    if runs.is_empty() {
        return "no runs (none yet, or none that match the filters): start one with `driftbridge sync --credential NAME`\n".into();
    }
    let header = [
        "ID",
        "STARTED (UTC)",
        "STATUS",
        "CREDENTIAL",
        "MODE",
        "WRITTEN",
        "REQUESTS",
        "TYPE",
        "TRIGGER",
        "DESTINATION",
    ];
    let rows: Vec<[String; 10]> = runs
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                time(r.started_at),
                r.status.clone(),
                r.credential.clone(),
                r.mode.clone(),
                figure(written(r)),
                figure(requests(r)),
                flows::run_filter::run_type(&r.mode).to_string(),
                r.trigger.as_str().to_string(),
                r.destination.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 10]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            match i {
                // The figures are right-aligned; the last column is not padded.
                5 | 6 => out.push_str(&format!("{cell:>w$}")),
                9 => out.push_str(cell),
                _ => out.push_str(&format!("{cell:<w$}")),
            }
            out.push_str(match i {
                6 => "  ",
                9 => "\n",
                _ => " ",
            });
        }
        out
    };
    let mut out = line(header);
    for row in &rows {
        out.push_str(&line(row.each_ref().map(String::as_str)));
    }
    out
}

fn render_run(run: &RunRecord) -> String {
    let mut out = format!(
        "run {}\n  status: {}\n  trigger: {}\n  started: {} UTC\n  finished: {}\n  credential: {}\n  destination: {}\n  mode: {}\n  streams: {}\n",
        run.id,
        run.status,
        run.trigger,
        time(run.started_at),
        run.finished_at.map(|t| format!("{} UTC", time(t))).unwrap_or_else(|| "-".into()),
        run.credential,
        run.destination,
        run.mode,
        run.streams.join(", ")
    );
    if let Some(flow) = &run.flow {
        out.push_str(&format!("  flow: {flow}\n"));
    }
    if !has_summary(run) {
        // Still going, or killed before it could write one: its figures are unknown.
        out.push_str(if run.status == "running" {
            "  figures: - (still running; they are written when it ends)\n"
        } else if run.status == "skipped" {
            "  figures: - (skipped: this start did not run; the error says why)\n"
        } else {
            "  figures: - (the run ended without a summary; its results file and destination hold what it finished)\n"
        });
    } else if is_push(run) {
        let line = PushRunSummary::from_run(&run.summary).line();
        out.push_str(&format!("  {line}\n"));
    } else {
        match serde_json::from_value::<Summary>(run.summary.clone()) {
            // The heading and the error are printed once, here, not again by the summary.
            Ok(summary) => out.push_str(&render_summary_body(&summary)),
            Err(_) if run.status == "running" => {
                out.push_str("  (still running, or stopped without a summary)\n")
            }
            Err(_) => {}
        }
    }
    if let Some(e) = &run.error {
        out.push_str(&format!("  error: {e}\n"));
    }
    out
}
