//! `driftbridge sync`: read Drift streams into a sink (DESIGN.md §6).
//!
//! Glue only: the run itself (credential -> client -> streams -> destination -> run record
//! -> engine -> summary) is [`flows::SyncRun`], shared with `serve`'s background runs. This
//! file parses the arguments, draws the progress bars, cancels on Ctrl-C, prints the
//! summary and maps it to the exit codes.

use crate::common::{exit, fail, Ctx};
use crate::progress::{count, duration, Progress};
use flows::{FlowError, SyncRun};
use sinks::SinkSpec;
use source_drift::DriftSourceConfig;
use std::process::ExitCode;
use std::time::Duration;
use store::Store;
use sync_core::{Cancel, ErrorKind, RunStatus, StreamState, StreamSummary, SyncMode};

/// Default sink when `--destination` is not given: a file in the current directory.
pub const DEFAULT_SINK: &str = "sqlite:driftbridge-data.db";

/// Arguments of `driftbridge sync`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  driftbridge sync --credential prod --streams conversations,contacts --destination sqlite:drift.db
  driftbridge sync --credential prod --destination postgres://etl@db.internal/analytics --mode full
  driftbridge sync --credential prod --destination parquet:./lake --flow nightly --wait

Exit codes: 0 ok, 1 failure, 2 usage or already running, 3 credential rejected,
4 rate limited, 5 finished with rejected records.")]
pub struct Args {
    /// Name of the Drift credential to read with (see `credentials list`).
    #[arg(long)]
    pub credential: String,
    /// Streams to sync, comma-separated, or `all`: conversations, messages, contacts,
    /// accounts, users, teams, playbooks, meetings, contact_attributes; and the child tables
    /// conversation_tags and conversation_participants, which cost one more request per
    /// conversation and are read only when named or with `all`.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    pub streams: Vec<String>,
    /// Where to write: sqlite:PATH, postgres://..., jsonl:DIR, csv:DIR or parquet:DIR
    /// (default: the SQLite file ./driftbridge-data.db in the current directory).
    #[arg(
        long = "destination",
        visible_alias = "sink",
        value_name = "DESTINATION",
        default_value = DEFAULT_SINK
    )]
    pub sink: String,
    /// `incremental` (default: changes since the last run; the first run reads everything) or
    /// `full` (read everything again).
    #[arg(long, default_value = "incremental", value_parser = parse_mode)]
    pub mode: SyncMode,
    /// Flow name to record on the run. A flow (a saved data source of that name, or any
    /// other name) runs one at a time across processes: a second start exits 2 with
    /// "already running: RUN_ID" unless `--wait`.
    #[arg(long)]
    pub flow: Option<String>,
    /// When the `--flow` is running already (in this or another process), wait for that run
    /// to end, then start, instead of exiting 2.
    #[arg(long)]
    pub wait: bool,
    /// Override the credential's request budget (requests per minute) for this run.
    #[arg(long)]
    pub rate_limit_per_min: Option<u32>,
    /// Also read these contacts by email (comma-separated), besides the contacts of the
    /// conversations read. Read again on every run.
    #[arg(long, value_delimiter = ',')]
    pub contact_emails: Vec<String>,
    /// Also read these contacts by external id (comma-separated). Read again on every run.
    #[arg(long, value_delimiter = ',')]
    pub contact_external_ids: Vec<String>,
    /// Known contacts an incremental run re-reads besides those of the conversations it
    /// reads, in a rotation, so contacts deleted (404) or changed in Drift without a
    /// conversation update reach the sink within ceil(contacts / N) runs; 0 turns it off.
    #[arg(long, default_value_t = DriftSourceConfig::default().contacts_recheck_per_run)]
    pub contacts_recheck: usize,
    /// Delete the rows of records deleted in Drift instead of marking them `_deleted = true`
    /// with `_deleted_at` (SQLite, PostgreSQL; file sinks always write a tombstone record).
    #[arg(long)]
    pub hard_deletes: bool,
    /// What a contact attribute without a column does: `evolve` (default: add a nullable
    /// column), `freeze` (fail before writing it, naming the field) or `discard` (keep it
    /// only in `_raw` and `attributes`).
    #[arg(long, default_value = "evolve", value_parser = parse_contract)]
    pub schema_contract: sinks::SchemaContract,
    /// History mode (SQLite, PostgreSQL): keep every version of a record with
    /// `_valid_from`, `_valid_to` (null while current) and `_active`; a deletion closes the
    /// current version. File sinks are append-only already and ignore it.
    #[arg(long)]
    pub history: bool,
}

/// Parse `--schema-contract` (`evolve`, `freeze`, `discard`); also used by `sources`.
pub(crate) fn parse_contract(s: &str) -> Result<sinks::SchemaContract, String> {
    s.parse()
}

fn parse_mode(s: &str) -> Result<SyncMode, String> {
    s.parse()
}

pub use flows::{Summary, SyncJob};

/// Run the subcommand.
pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let sink: SinkSpec = args
        .sink
        .parse()
        .map_err(|e: String| fail(exit::USAGE, format!("--destination: {e}")))?;
    let job = SyncJob {
        credential: args.credential,
        streams: args.streams,
        sink,
        mode: args.mode,
        flow: args.flow,
        rate_limit_per_min: args.rate_limit_per_min,
        source: DriftSourceConfig {
            contact_emails: args.contact_emails,
            contact_external_ids: args.contact_external_ids,
            contacts_recheck_per_run: args.contacts_recheck,
            ..Default::default()
        },
        hard_deletes: args.hard_deletes,
        schema_contract: args.schema_contract,
        history: args.history,
        reset_streams: Vec::new(),
        trigger: store::Trigger::Manual,
    };
    // Started by Dagster's PipesSubprocessClient: report to it (protocols::pipes).
    let pipes =
        protocols::pipes::PipesSession::from_env().map_err(|e| fail(exit::USAGE, e.to_string()))?;
    if let Some(p) = &pipes {
        p.opened();
    }
    let ran = match open_store(ctx) {
        Ok(store) => execute_waiting(ctx, &store, &job, args.wait)
            .await
            .map(|summary| (store, summary)),
        Err(e) => Err(e),
    };
    let (store, summary) = match ran {
        Ok(r) => r,
        Err(e) => {
            if let Some(p) = &pipes {
                p.closed(Some(&e.to_string()));
            }
            return Err(e);
        }
    };
    if let Some(p) = &pipes {
        report_to_pipes(p, &store, &job, &summary).await;
    }
    print_summary(ctx, &summary)?;
    let code = finish(&summary);
    if let Some(p) = &pipes {
        p.closed(code.as_ref().err().map(|e| e.to_string()).as_deref());
    }
    code
}

/// Dagster Pipes: the run's log lines as `log` messages, then one asset materialization
/// per stream (records read, written, deleted, rejected, status, watermark).
async fn report_to_pipes(
    pipes: &protocols::pipes::PipesSession,
    store: &Store,
    job: &SyncJob,
    summary: &Summary,
) {
    if let Ok(page) = flows::logs::read(store.data_dir(), &summary.run_id, 0) {
        for line in page.lines {
            let level = match line.level.as_str() {
                "WARN" => "WARNING",
                other => other,
            };
            pipes.log(level, &line.text());
        }
    }
    let state = sink_state(store, job).await;
    let reports: Vec<_> = summary
        .streams
        .iter()
        .map(|s| protocols::pipes::StreamReport {
            stream: s.stream.clone(),
            status: serde_json::to_value(s.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            records_read: s.records_read,
            records_written: s.records_written,
            records_deleted: s.records_deleted,
            records_rejected: s.records_rejected,
            watermark_ms: protocols::sink::watermark_of(&state, &s.stream),
        })
        .collect();
    pipes.report(&reports);
}

/// The state the run left in its destination (for the watermarks), or none.
async fn sink_state(
    store: &Store,
    job: &SyncJob,
) -> std::collections::BTreeMap<String, serde_json::Value> {
    let Ok(credential) = store.credential(&job.credential) else {
        return Default::default();
    };
    let Ok(mut sink) = sinks::open(&job.sink) else {
        return Default::default();
    };
    match sink.load_state(&format!("drift:{}", credential.id)).await {
        Ok(state) => state.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Err(_) => Default::default(),
    }
}

/// Open the metadata store, mapping its errors to exit codes.
pub fn open_store(ctx: &Ctx) -> anyhow::Result<Store> {
    crate::common::open_store(ctx)
}

fn store_err(e: store::StoreError) -> anyhow::Error {
    let code = if e.is_user_error() {
        exit::USAGE
    } else {
        exit::FAILURE
    };
    fail(code, e.to_string())
}

/// Run `job` (the same run as `serve`'s, [`flows::SyncRun`]) with progress bars and Ctrl-C:
/// record the run, sync, store the summary; a 401 marks the credential failed.
/// Errors only for what prevents the run from starting (unknown credential or stream, bad
/// base URL, unopenable sink: exit 2, or 1 for the sink) or from recording
/// its end; a run that fails later returns its summary.
pub async fn execute(ctx: &Ctx, store: &Store, job: &SyncJob) -> anyhow::Result<Summary> {
    execute_waiting(ctx, store, job, false).await
}

/// [`execute`]; with `wait`, a flow running already (exit 2 otherwise) is waited for, then
/// the run starts.
pub async fn execute_waiting(
    ctx: &Ctx,
    store: &Store,
    job: &SyncJob,
    wait: bool,
) -> anyhow::Result<Summary> {
    // The CLI is one user's tool: any address, loopback sandbox included.
    let any = flows::AddressPolicy::AllowPrivate;
    let run = loop {
        match SyncRun::prepare(store, job, any) {
            Ok(run) => break run,
            Err(e) if wait && e.running_run().is_some() => {
                let running = e.running_run().unwrap_or_default().to_string();
                if !ctx.quiet {
                    eprintln!("waiting: {running} is running; this run starts when it ends");
                }
                flows::single::wait_for_end(store, &running).await;
            }
            Err(e) => return Err(start_error(e)),
        }
    };
    let cancel = Cancel::new();
    let progress = Progress::new(ctx, run.rate_limit_per_min());
    let ctrl_c = spawn_ctrl_c(cancel.clone(), progress.clone());
    let (summary, recorded) = run.run(store, cancel, Some(progress.callback())).await;
    ctrl_c.abort();
    progress.clear();
    recorded.map_err(store_err)?;
    Ok(summary)
}

/// A run that cannot start, as the CLI says it (DESIGN.md §6 exit codes, by the error's
/// kind); an invalid `streams` names the flag. Other messages name the credential or the
/// destination already.
fn start_error(e: FlowError) -> anyhow::Error {
    let code = e.exit_code();
    match e.kind() {
        flows::ErrorKind::Invalid { field } if field == "streams" => {
            fail(code, format!("--streams: {}", e.message()))
        }
        _ if e.running_run().is_some() => fail(
            code,
            format!("{} (or pass --wait to start after it)", e.message()),
        ),
        _ => fail(code, e.message()),
    }
}

/// On Ctrl-C or SIGTERM: stop the run after its current commit (the message goes above
/// the progress bars, which are cleared when the run ends).
fn spawn_ctrl_c(cancel: Cancel, progress: Progress) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        crate::common::stop_signal().await;
        progress.println("interrupted: stopping after the current commit (the checkpoint is kept)");
        cancel.cancel();
    })
}

/// Exit code of a finished run (DESIGN.md §6), as an error for the non-zero ones.
pub fn finish(summary: &Summary) -> anyhow::Result<ExitCode> {
    let message = summary
        .error
        .as_ref()
        .map(|e| e.to_string())
        .unwrap_or_default();
    let all_forbidden = !summary.streams.is_empty()
        && summary
            .streams
            .iter()
            .all(|s| s.state == StreamState::Unavailable);
    match summary.status {
        RunStatus::Succeeded if all_forbidden => Err(fail(
            exit::CREDENTIAL_REJECTED,
            format!(
                "run {}: Drift refused every selected stream (403); grant the scopes named above to credential {}",
                summary.run_id, summary.credential
            ),
        )),
        RunStatus::Succeeded => Ok(ExitCode::SUCCESS),
        RunStatus::SucceededWithRejections => {
            let rejected: u64 = summary.streams.iter().map(|s| s.records_rejected).sum();
            Err(fail(
                exit::PARTIAL,
                format!(
                    "run {} finished; {rejected} record{} did not fit and {} quarantined: see `driftbridge runs rejected {}` (kept in the sink's _driftbridge_rejected table or _rejected/ folder)",
                    summary.run_id,
                    plural(rejected),
                    if rejected == 1 { "was" } else { "were" },
                    summary.run_id
                ),
            ))
        }
        RunStatus::RateLimited => Err(fail(
            exit::RATE_LIMITED,
            format!(
                "run {} stopped: {message}; the checkpoint is kept, run it again later or lower the credential's rate budget",
                summary.run_id
            ),
        )),
        RunStatus::Cancelled => Err(fail(
            exit::FAILURE,
            format!(
                "run {} cancelled; the next run resumes from its checkpoint",
                summary.run_id
            ),
        )),
        RunStatus::Failed => {
            let code = match summary.error.as_ref().map(|e| e.kind) {
                Some(ErrorKind::Unauthorized | ErrorKind::Forbidden) => exit::CREDENTIAL_REJECTED,
                Some(ErrorKind::RateLimited) => exit::RATE_LIMITED,
                Some(ErrorKind::Invalid) => exit::USAGE,
                _ => exit::FAILURE,
            };
            let hint = if code == exit::CREDENTIAL_REJECTED && message.contains("oauth.token") {
                // Drift refused the token exchange: the message says why; the fix is a new
                // OAuth app setting, not only a new key.
                format!(
                    "; credential {} is marked failed: save the right OAuth app settings with `driftbridge credentials rotate {} --api-key-env VAR --oauth-client-id ID --oauth-client-secret-env VAR --oauth-refresh-token-env VAR`",
                    summary.credential, summary.credential
                )
            } else if code == exit::CREDENTIAL_REJECTED {
                format!(
                    "; credential {} is marked failed: check or rotate its API key (`driftbridge credentials rotate {}`)",
                    summary.credential, summary.credential
                )
            } else {
                String::new()
            };
            Err(fail(
                code,
                format!("run {} failed: {message}{hint}", summary.run_id),
            ))
        }
    }
}

/// Print the summary: JSON with `--json`, else a table.
pub fn print_summary(ctx: &Ctx, summary: &Summary) -> anyhow::Result<()> {
    if ctx.json {
        outln!("{}", serde_json::to_string_pretty(summary)?);
    } else if !ctx.quiet {
        out!("{}", render_summary(summary));
    }
    Ok(())
}

fn secs(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

/// `"s"` unless `n` is 1.
fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn state_text(s: &StreamSummary) -> String {
    let name = match s.state {
        StreamState::Pending => "pending",
        StreamState::Running => "running",
        StreamState::Succeeded => "ok",
        StreamState::Unavailable => "unavailable",
        StreamState::Failed => "failed",
        StreamState::Cancelled => "cancelled",
    };
    match &s.reason {
        Some(r) => format!("{name}: {r}"),
        None => name.to_owned(),
    }
}

/// The summary as text: a heading line, then [`render_summary_body`], then the error.
pub fn render_summary(s: &Summary) -> String {
    let mut out = format!(
        "run {} {} in {} (credential {}, {}, mode {})\n",
        s.run_id,
        s.status.as_str().replace('_', " "),
        secs(s.duration_ms),
        s.credential,
        s.sink,
        s.mode
    );
    out.push_str(&render_summary_body(s));
    if let Some(e) = &s.error {
        out.push_str(&format!("  error: {e}\n"));
    }
    out
}

/// The per-stream table and the totals in plain words (`runs show` prints them under its
/// own heading).
pub fn render_summary_body(s: &Summary) -> String {
    let mut out = format!(
        "  {:<20} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}  {}\n",
        "stream", "read", "written", "deleted", "rejected", "requests", "duration", "status"
    );
    for st in &s.streams {
        out.push_str(&format!(
            "  {:<20} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}  {}\n",
            st.stream,
            st.records_read,
            st.records_written,
            st.records_deleted,
            st.records_rejected,
            st.requests.requests,
            secs(st.duration_ms),
            state_text(st)
        ));
    }
    let reread: u64 = s.streams.iter().map(|st| st.records_reread).sum();
    if reread > 0 {
        out.push_str(&format!(
            "  {} read again in this run (pages that moved while listed, overlap) and written once\n",
            count(reread, "record", "records")
        ));
    }
    out.push_str(&totals_text(&s.totals));
    out
}

/// The run's requests and waits in plain words: `total: 120 requests, 2 retried; Drift
/// asked to slow down 1 time (429)` and `waited 4.2 s for the rate budget and retries`.
fn totals_text(t: &flows::Totals) -> String {
    let mut line = format!("  total: {}", count(t.requests, "request", "requests"));
    if t.retries > 0 {
        line.push_str(&format!(", {} retried", t.retries));
    }
    if t.rate_limited > 0 {
        line.push_str(&format!(
            "; Drift asked to slow down {} (429)",
            count(t.rate_limited, "time", "times")
        ));
    }
    line.push('\n');
    if t.wait_wall_ms > 0 {
        line.push_str(&format!(
            "  waited {} for the rate budget and retries\n",
            duration(Duration::from_millis(t.wait_wall_ms))
        ));
    } else if t.waits > 0 {
        // A summary from before the wall-clock figure was kept.
        line.push_str(&format!(
            "  requests waited for the rate budget and retries {}\n",
            count(t.waits, "time", "times")
        ));
    }
    line
}
