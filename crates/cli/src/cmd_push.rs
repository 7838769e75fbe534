//! `driftbridge push contacts|accounts|timeline|conversations` (DESIGN.md §3, §6): records
//! from a CSV / JSONL file, a SQLite table or query, or an earlier results file, into Drift.
//!
//! Glue only: the run is [`flows::PushRun`], the same as a push from the REST API or the
//! web UI (one client per run carrying the credential's rate budget, the scope check, the
//! push ledger, the run record, its log and metrics). This file parses the flags, checks
//! the results path, draws the progress, cancels on Ctrl-C, prints the summary and maps the
//! result to the exit codes of DESIGN.md §6 (2 usage, 3 credential rejected, 4 rate
//! limited, 5 some rows rejected; 1 when stopped by Ctrl-C / SIGTERM or when the results
//! file cannot be written).
//!
//! Ctrl-C or SIGTERM stops a push like `sync`: no further row is taken, requests in flight
//! finish, rows already read get a "not sent" outcome, the results file is finished, the
//! run is recorded `cancelled` with its counts and the summary is printed; a second signal
//! exits at once.

mod paths;
mod saved;

use crate::common::{exit, fail, Ctx};
use drift_writer::{
    self as writer, InputSpec, Key, Mapping, Object, OnDuplicate, OutcomeKind, PushOptions,
    StopKind, Summary,
};
use flows::{AddressPolicy, FlowError, PushInput, PushJob, PushRun};
use serde_json::json;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Arguments of `driftbridge push`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  driftbridge push contacts --credential prod --from leads.csv --key email --dry-run
  driftbridge push contacts --credential prod --from leads.csv --map org=company --save leads
  driftbridge push --destination leads --from leads-2.csv
  driftbridge push contacts --from driftbridge-push-contacts-T.csv --only rejected --credential prod")]
pub struct Args {
    /// What to write: contacts, accounts, timeline or conversations (may be omitted with
    /// --destination).
    pub(crate) object: Option<String>,
    /// Credential to write with (its rate budget is shared by the whole run).
    #[arg(long)]
    pub(crate) credential: Option<String>,
    /// Input: FILE.csv, FILE.jsonl, sqlite:PATH?table=T, sqlite:PATH?query=SELECT...,
    /// postgres://USER@HOST/DB?table=T or ?query=SELECT..., or a results file of an earlier
    /// push (with --only).
    #[arg(long)]
    pub(crate) from: String,
    /// Field rows are matched on: contacts email|externalId, accounts domain|accountId,
    /// timeline contactId|externalId, conversations email. Default: the first.
    #[arg(long)]
    pub(crate) key: Option<String>,
    /// Column mapping, col=attribute[:type],... (types: string, email, domain, number,
    /// integer, boolean, date). Repeatable.
    #[arg(long = "map", value_name = "COL=ATTR,...")]
    pub(crate) map: Vec<String>,
    /// Mapping file: a JSON object {"col": "attribute[:type]"} or col=attribute lines.
    #[arg(long, value_name = "FILE")]
    pub(crate) mapping: Option<PathBuf>,
    /// Send columns that are neither mapped nor standard as custom attributes.
    #[arg(long)]
    pub(crate) include_unmapped: bool,
    /// Let the mapping name attributes Drift does not have: the push creates them as new
    /// custom attributes. Without it such a push (a dry run too) is refused before any row
    /// is sent, naming each column and attribute.
    #[arg(long)]
    pub(crate) allow_new_attributes: bool,
    /// Several contacts share the key: update-all, first, or reject (default).
    #[arg(long, value_name = "POLICY")]
    pub(crate) on_duplicate: Option<String>,
    /// Validate and look up only; print what would be sent; write nothing to Drift.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Results file, CSV or JSONL by extension (default: driftbridge-push-OBJECT-TIME.csv).
    /// It is created anew, so it may not be the --from or --mapping file.
    #[arg(long, value_name = "FILE")]
    pub(crate) results: Option<PathBuf>,
    /// With a results file as --from: only rows with these earlier outcomes (e.g. rejected).
    #[arg(long, value_delimiter = ',', value_name = "OUTCOMES")]
    pub(crate) only: Vec<String>,
    /// Timeline events and conversations: send rows again whose earlier attempt ended
    /// uncertain (connection dropped or timed out after sending; it may have landed).
    /// Without it such rows come back rejected, to be checked in Drift first.
    #[arg(long)]
    pub(crate) resend_uncertain: bool,
    /// Override the credential's request budget for this run.
    #[arg(long)]
    pub(crate) rate_limit_per_min: Option<u32>,
    /// Rows in flight at once.
    #[arg(long, default_value_t = 8)]
    pub(crate) concurrency: usize,
    /// Save these settings as a data destination named NAME (run it again with
    /// --destination NAME).
    #[arg(long, value_name = "NAME")]
    pub(crate) save: Option<String>,
    /// Run a saved push destination (object, credential, key, mapping); flags given here
    /// override it.
    #[arg(long, value_name = "NAME")]
    pub(crate) destination: Option<String>,
    /// When the `--destination` is running already (in this or another process), wait for
    /// that run to end, then start, instead of exiting 2 with "already running: RUN_ID".
    #[arg(long)]
    pub(crate) wait: bool,
}

/// Run the subcommand.
pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    if let Some(results) = &args.results {
        paths::check_results(results, &args, &ctx.data_dir)?;
    }
    let store = Arc::new(crate::common::open_store(ctx)?);
    let settings = saved::resolve(&store, &args)?;
    let opts = options(&settings, &args)?;
    let input = InputSpec::parse(&args.from).map_err(|e| fail(exit::USAGE, e.to_string()))?;
    let results_path = args
        .results
        .clone()
        .unwrap_or_else(|| default_results(opts.object));
    paths::check_results(&results_path, &args, &ctx.data_dir)?;
    let saved_as = args.save.as_ref().map(|name| (name.clone(), opts.clone()));
    let job = PushJob {
        credential: settings.credential.clone(),
        options: opts,
        input: PushInput::Spec(input),
        results: Some(results_path.clone()),
        flow: settings.destination.clone(),
        rate_limit_per_min: args.rate_limit_per_min,
        max_concurrency: Some(args.concurrency.max(1)),
        trigger: store::Trigger::Manual,
        allow_new_attributes: settings.allow_new_attributes,
        edge: flows::check::Edge::Cli,
    };
    // The CLI is one user's tool: any address, loopback sandbox included.
    let run = loop {
        match PushRun::prepare(&store, job.clone(), AddressPolicy::AllowPrivate).await {
            Ok(run) => break run,
            Err(e) if args.wait && e.running_run().is_some() => {
                let running = e.running_run().unwrap_or_default().to_string();
                if !ctx.quiet {
                    eprintln!("waiting: {running} is running; this push starts when it ends");
                }
                flows::single::wait_for_end(&store, &running).await;
            }
            Err(e) => return Err(flow_error(e)),
        }
    };
    for warning in run.warnings() {
        eprintln!("warning: {warning}");
    }
    let run_id = run.run_id().to_string();
    let credential = run.credential().to_string();
    let print_plans = run.dry_run() && !ctx.quiet && !ctx.json;
    let mut progress = Progress::new(!ctx.quiet && std::io::stderr().is_terminal());
    let cancel = sync_core::Cancel::new();
    let signals = spawn_signals(cancel.clone(), ctx.quiet);
    // Rows finish in any order (several are in flight): a dry run's plan is printed after
    // the run, in input order.
    let mut plans: Vec<(u64, String)> = Vec::new();
    let outcome = run
        .run(cancel, |o| {
            if print_plans {
                let reason = o.reason.as_deref().unwrap_or("");
                plans.push((
                    o.row,
                    format!("row {}: {} {reason}", o.row, planned(o.kind, true))
                        .trim_end()
                        .to_string(),
                ));
            }
            progress.tick(o.kind);
        })
        .await;
    plans.sort_by_key(|(row, _)| *row);
    for (_, line) in &plans {
        outln!("{line}");
    }
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            signals.abort();
            return Err(flow_error(e));
        }
    };
    let summary = outcome.summary;
    if summary.rows == 0 && summary.filtered_out == 0 && summary.stopped.is_none() {
        eprintln!(
            "warning: --from {}: the input has no rows",
            shown_input(&args.from)
        );
    }
    if let Some((name, opts)) = saved_as {
        saved::save(&store, &name, &credential, &opts, &args)?;
        if !ctx.quiet && !ctx.json {
            eprintln!("note: saved as destination {name}; run it again with --destination {name}");
        }
    }
    let code = finish(ctx, &run_id, &summary, &results_path);
    // Until the run is recorded and its summary printed, a second signal exits at once.
    signals.abort();
    code
}

/// An error of the application layer with its exit code (DESIGN.md §6).
fn flow_error(e: FlowError) -> anyhow::Error {
    if e.running_run().is_some() {
        return fail(
            e.exit_code(),
            format!("{} (or pass --wait to start after it)", e.message()),
        );
    }
    fail(e.exit_code(), e.message())
}

/// On Ctrl-C or SIGTERM: stop the push (no new rows; requests in flight finish). A second
/// signal exits at once (exit 130), leaving the run to show as `interrupted`.
fn spawn_signals(cancel: sync_core::Cancel, quiet: bool) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        crate::common::stop_signal().await;
        if !quiet {
            eprintln!(
                "interrupted: finishing the requests in flight, then stopping (press Ctrl-C \
                 again to quit at once)"
            );
        }
        cancel.cancel();
        crate::common::stop_signal().await;
        eprintln!("interrupted again: quitting now; the results file may miss the rows in flight");
        std::process::exit(130);
    })
}

/// Settings after merging a saved destination with the flags.
pub(crate) struct Settings {
    pub object: Object,
    pub credential: String,
    pub key: Option<String>,
    pub mapping: Mapping,
    pub include_unmapped: bool,
    pub allow_new_attributes: bool,
    pub on_duplicate: Option<String>,
    pub destination: Option<String>,
}

fn usage(msg: impl Into<String>) -> anyhow::Error {
    fail(exit::USAGE, msg)
}

/// Parses an object name (exit 2 naming the choices).
pub(crate) fn parse_object(text: &str) -> anyhow::Result<Object> {
    Object::parse(text).ok_or_else(|| {
        usage(format!(
            "unknown object `{text}`: use contacts, accounts, timeline or conversations"
        ))
    })
}

/// The user's mapping from --map and --mapping.
pub(crate) fn mapping_of(args: &Args) -> anyhow::Result<Mapping> {
    let mut mapping = Mapping::default();
    if let Some(path) = &args.mapping {
        mapping.extend(Mapping::from_file(path).map_err(|e| usage(e.to_string()))?);
    }
    for m in &args.map {
        mapping.extend(Mapping::parse_pairs(m).map_err(|e| usage(format!("--map: {e}")))?);
    }
    Ok(mapping)
}

fn options(s: &Settings, args: &Args) -> anyhow::Result<PushOptions> {
    let mut opts = PushOptions::new(s.object);
    if let Some(k) = &s.key {
        opts.key = Key::parse(k).ok_or_else(|| {
            usage(format!(
                "unknown --key `{k}`: use email, externalId, domain, accountId or contactId"
            ))
        })?;
    }
    if let Some(d) = &s.on_duplicate {
        opts.on_duplicate = OnDuplicate::parse(d).ok_or_else(|| {
            usage(format!(
                "unknown --on-duplicate `{d}`: use update-all, first or reject"
            ))
        })?;
    }
    opts.mapping = s.mapping.clone();
    opts.include_unmapped = s.include_unmapped;
    opts.dry_run = args.dry_run;
    opts.concurrency = args.concurrency.max(1);
    opts.resend_uncertain = args.resend_uncertain;
    if !args.only.is_empty() {
        let only = args
            .only
            .iter()
            .map(|o| {
                OutcomeKind::parse(o).ok_or_else(|| {
                    usage(format!(
                        "unknown --only `{o}`: use created, updated, unchanged, skipped or rejected"
                    ))
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        opts.only = Some(only);
    }
    if !s.object.keys().contains(&opts.key) {
        let keys: Vec<&str> = s.object.keys().iter().map(|k| k.field()).collect();
        return Err(usage(format!(
            "--key {} does not apply to {}: use {}",
            opts.key.field(),
            s.object.as_str(),
            keys.join(" or ")
        )));
    }
    Ok(opts)
}

/// A progress line on stderr (a terminal only) every few seconds of a long push.
struct Progress {
    on: bool,
    counts: [u64; 5],
    last: std::time::Instant,
}

impl Progress {
    fn new(on: bool) -> Progress {
        Progress {
            on,
            counts: [0; 5],
            last: std::time::Instant::now(),
        }
    }

    fn tick(&mut self, kind: OutcomeKind) {
        if let Some(i) = OutcomeKind::ALL.iter().position(|k| *k == kind) {
            self.counts[i] += 1;
        }
        if self.on && self.last.elapsed() >= std::time::Duration::from_secs(5) {
            self.last = std::time::Instant::now();
            let parts: Vec<String> = OutcomeKind::ALL
                .iter()
                .zip(self.counts)
                .map(|(k, n)| format!("{} {n}", k.as_str()))
                .collect();
            let total: u64 = self.counts.iter().sum();
            eprintln!("  {total} rows: {}", parts.join(", "));
        }
    }
}

/// `--from` as it may be printed: a PostgreSQL URL with its password masked.
fn shown_input(from: &str) -> String {
    match InputSpec::parse(from) {
        Ok(InputSpec::Postgres { url, .. }) => format!("{url:?}"),
        _ => from.to_string(),
    }
}

fn default_results(object: Object) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    PathBuf::from(format!("driftbridge-push-{}-{stamp}.csv", object.as_str()))
}

fn summary_json(s: &Summary, results: &std::path::Path, run_id: &str) -> serde_json::Value {
    let mut v = json!({
        "run_id": run_id,
        "object": s.object.as_str(),
        "dry_run": s.dry_run,
        "rows": s.rows,
        "filtered_out": s.filtered_out,
        "requests": s.requests,
        "rate_limited": s.rate_limited,
        "requests_per_row": s.requests_per_row(),
        "rows_per_sec": s.rows_per_sec(),
        "elapsed_ms": s.elapsed.as_millis() as u64,
        "results": results.display().to_string(),
        "ignored_columns": s.ignored_columns,
        "stopped": s.stopped.as_ref().map(|x| x.message.clone()),
        "not_sent": s.not_sent,
        "uncertain": s.uncertain,
        "unsaved": s.unsaved,
    });
    for kind in OutcomeKind::ALL {
        v[kind.as_str()] = json!(s.count(kind));
    }
    v
}

fn print_summary(ctx: &Ctx, s: &Summary, results: &std::path::Path, run_id: &str) {
    if ctx.json {
        outln!("{}", summary_json(s, results, run_id));
        return;
    }
    if ctx.quiet {
        return;
    }
    let dry = if s.dry_run {
        " (dry run: nothing written)"
    } else {
        ""
    };
    outln!(
        "push {}{dry}: {} in {:.1} s ({:.0} rows/s), {} ({:.2} per row)",
        s.object.as_str(),
        crate::progress::count(s.rows, "row", "rows"),
        s.elapsed.as_secs_f64(),
        s.rows_per_sec(),
        crate::progress::count(s.requests, "request", "requests"),
        s.requests_per_row()
    );
    let counts: Vec<String> = OutcomeKind::ALL
        .iter()
        .map(|k| format!("{} {}", planned(*k, s.dry_run), s.count(*k)))
        .collect();
    outln!("  {}", counts.join(", "));
    if s.filtered_out > 0 {
        outln!("  {} rows left out by --only", s.filtered_out);
    }
    if s.not_sent > 0 {
        outln!(
            "  {} rows not sent because the run stopped (rejected, reason \"not sent\")",
            s.not_sent
        );
    }
    if s.uncertain > 0 {
        outln!(
            "  {} rows may or may not have been written (rejected; check them in Drift; a re-run \
             does not send them again unless --resend-uncertain)",
            s.uncertain
        );
    }
    if s.unsaved > 0 {
        outln!(
            "  results: {} (could not be written: {} outcomes not saved)",
            results.display(),
            s.unsaved
        );
    } else {
        outln!("  results: {}", results.display());
    }
    if !s.ignored_columns.is_empty() {
        eprintln!(
            "note: columns not sent (neither mapped nor standard): {}; map them with --map \
             col=attribute or send them as custom attributes with --include-unmapped",
            s.ignored_columns.join(", ")
        );
    }
}

/// An outcome as a dry run words it (`would create`: nothing was written) or as a real
/// run does (`created`).
fn planned(kind: OutcomeKind, dry_run: bool) -> &'static str {
    match (dry_run, kind) {
        (false, k) => k.as_str(),
        (true, OutcomeKind::Created) => "would create",
        (true, OutcomeKind::Updated) => "would update",
        (true, OutcomeKind::Unchanged) => "would leave unchanged",
        (true, OutcomeKind::Skipped) => "would skip",
        (true, OutcomeKind::Rejected) => "rejected",
    }
}

/// What a stopped run did and how to go on: rows with an outcome (all in the results
/// file), rows read but not sent, the last row read, and that a re-run is safe.
fn stopped_message(s: &Summary, stop: &writer::Stop, results: &std::path::Path) -> String {
    let results = results.display();
    let not_sent = if s.not_sent > 0 {
        format!(" ({} of them `rejected` as not sent)", s.not_sent)
    } else {
        String::new()
    };
    let unread = if s.last_row > 0 {
        format!("rows after row {} were not processed", s.last_row)
    } else {
        "no row was processed".to_string()
    };
    let again = if s.uncertain > 0 {
        format!(
            "rows already written are found again and come back unchanged; the {} rows whose \
             write may or may not have landed are not sent again: they come back rejected, to \
             be checked in Drift and sent with --resend-uncertain if missing",
            s.uncertain
        )
    } else {
        "rows already written are found again and come back unchanged, nothing is written \
         twice"
            .to_string()
    };
    format!(
        "{}. {} rows have an outcome in {results}{not_sent}; {unread}. \
         Re-run the same input to finish ({again}), or re-feed only the rows listed as \
         rejected with --from {results} --only rejected",
        stop.message, s.rows
    )
}

/// What a run whose results file could not be written did: how many rows were written to
/// Drift with no saved outcome, and why a re-run does not duplicate them.
fn unsaved_message(s: &Summary, stop: &writer::Stop, results: &std::path::Path) -> String {
    let written = s.count(OutcomeKind::Created) + s.count(OutcomeKind::Updated);
    let not_sent = if s.not_sent > 0 {
        format!("; {} rows read were not sent", s.not_sent)
    } else {
        String::new()
    };
    format!(
        "{} ({}); the run stopped sending. {} rows were processed ({} written to Drift: {} \
         created, {} updated) but the outcomes of {} of them could not be saved{not_sent}. \
         Re-running the same input with a writable --results is safe: rows already written are \
         found again (contacts and accounts by their key, timeline events and conversations in \
         the push ledger) and come back unchanged, not created twice",
        stop.message,
        results.display(),
        s.rows,
        written,
        s.count(OutcomeKind::Created),
        s.count(OutcomeKind::Updated),
        s.unsaved
    )
}

/// Print the summary of a push whose end is recorded, and its exit code.
fn finish(
    ctx: &Ctx,
    run_id: &str,
    s: &Summary,
    results: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let rejected = s.count(OutcomeKind::Rejected);
    print_summary(ctx, s, results, run_id);
    if let Some(stop) = &s.stopped {
        let code = match stop.kind {
            StopKind::Unauthorized | StopKind::Forbidden => exit::CREDENTIAL_REJECTED,
            StopKind::RateLimited => exit::RATE_LIMITED,
            StopKind::Input | StopKind::Cancelled | StopKind::Results => exit::FAILURE,
        };
        let message = if stop.kind == StopKind::Results {
            unsaved_message(s, stop, results)
        } else {
            stopped_message(s, stop, results)
        };
        return Err(fail(code, message));
    }
    if rejected > 0 {
        if !ctx.quiet && !ctx.json {
            eprintln!(
                "note: {rejected} rows rejected (reasons in {}); fix them and re-feed with \
                 --from {} --only rejected",
                results.display(),
                results.display()
            );
        }
        return Ok(ExitCode::from(exit::PARTIAL));
    }
    Ok(ExitCode::SUCCESS)
}
