//! `driftbridge sync`: read Drift streams into a sink (DESIGN.md §6).
//!
//! Glue only: the run itself (credential -> client -> streams -> destination -> run record
//! -> engine -> summary) is [`flows::SyncRun`], shared with `serve`'s background runs. This
//! file parses the arguments, draws the progress bars, cancels on Ctrl-C, prints the
//! summary and maps it to the exit codes.

use crate::common::{exit, fail, Ctx};
use flows::{FlowError, SyncRun};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use sinks::SinkSpec;
use source_drift::DriftSourceConfig;
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use store::Store;
use sync_core::{
    Cancel, ErrorKind, ProgressEvent, ProgressFn, RunStatus, StreamState, StreamSummary, SyncMode,
};

/// Default sink when `--destination` is not given: a file in the current directory.
pub const DEFAULT_SINK: &str = "sqlite:driftbridge-data.db";

/// Arguments of `driftbridge sync`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Name of the Drift credential to read with (see `credentials list`).
    #[arg(long)]
    pub credential: String,
    /// Streams to sync, comma-separated, or `all`: conversations, messages, contacts,
    /// accounts, users, teams, playbooks, meetings, contact_attributes.
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
        reset_streams: Vec::new(),
    };
    let store = open_store(ctx)?;
    let summary = execute_waiting(ctx, &store, &job, args.wait).await?;
    print_summary(ctx, &summary)?;
    finish(&summary)
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
    let ctrl_c = spawn_ctrl_c(cancel.clone(), ctx.quiet);
    let bars = Bars::new(ctx, run.rate_limit_per_min());
    let (summary, recorded) = run.run(store, cancel, Some(bars.callback())).await;
    ctrl_c.abort();
    bars.clear();
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

/// On Ctrl-C or SIGTERM: stop the run after its current commit.
fn spawn_ctrl_c(cancel: Cancel, quiet: bool) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        crate::common::stop_signal().await;
        if !quiet {
            eprintln!("interrupted: stopping after the current commit (the checkpoint is kept)");
        }
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

/// The summary as a text table (also used by `runs show`).
pub fn render_summary(s: &Summary) -> String {
    let mut out = format!(
        "run {} {} in {} (credential {}, {}, mode {})\n",
        s.run_id,
        s.status.as_str(),
        secs(s.duration_ms),
        s.credential,
        s.sink,
        s.mode
    );
    out.push_str(&format!(
        "  {:<20} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}  {}\n",
        "stream", "read", "written", "deleted", "rejected", "requests", "duration", "status"
    ));
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
            "  {reread} record{} read again in this run (pages that moved while listed, overlap) and written once\n",
            plural(reread)
        ));
    }
    let t = &s.totals;
    out.push_str(&format!(
        "  total: {} requests, {} rate limited (429), {} retries, {} waits ({} waiting, summed over concurrent requests)\n",
        t.requests,
        t.rate_limited,
        t.retries,
        t.waits,
        secs(t.wait_ms)
    ));
    if let Some(e) = &s.error {
        out.push_str(&format!("  error: {e}\n"));
    }
    out
}

/// Progress bars on stderr, one per stream (hidden when stderr is not a terminal, or with
/// `-q` / `--json`).
struct Bars {
    multi: MultiProgress,
    bars: Arc<Mutex<HashMap<String, ProgressBar>>>,
    budget: ProgressBar,
    rate_per_min: u32,
    started: std::time::Instant,
}

impl Bars {
    fn new(ctx: &Ctx, rate_per_min: u32) -> Self {
        let target = if ctx.quiet || ctx.json {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let multi = MultiProgress::with_draw_target(target);
        let budget = multi.add(ProgressBar::no_length());
        budget.set_style(
            ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Self {
            multi,
            bars: Arc::new(Mutex::new(HashMap::new())),
            budget,
            rate_per_min,
            started: std::time::Instant::now(),
        }
    }

    fn callback(&self) -> ProgressFn {
        let multi = self.multi.clone();
        let bars = self.bars.clone();
        let budget = self.budget.clone();
        let (rate, started) = (self.rate_per_min, self.started);
        let requests = Arc::new(Mutex::new(HashMap::<String, u64>::new()));
        Arc::new(move |event: &ProgressEvent| {
            let Ok(mut bars) = bars.lock() else { return };
            let s = &event.summary;
            if let Ok(mut requests) = requests.lock() {
                requests.insert(s.stream.clone(), s.requests.requests);
                let total: u64 = requests.values().sum();
                let minutes = started.elapsed().as_secs_f64().max(1.0) / 60.0;
                budget.set_message(format!(
                    "rate budget: {:.0} of {rate} requests/minute used ({total} requests so far)",
                    total as f64 / minutes
                ));
            }
            let bar = bars
                .entry(s.stream.clone())
                .or_insert_with(|| new_bar(&multi, &s.stream));
            if let Some(total) = s.expected {
                if bar.length() != Some(total) {
                    bar.set_length(total);
                    bar.set_style(counted_style());
                }
            }
            bar.set_position(s.records_read);
            bar.set_message(format!(
                "written {} · {} requests · {}",
                s.records_written,
                s.requests.requests,
                state_text(s)
            ));
        })
    }

    fn clear(&self) {
        self.budget.finish_and_clear();
        if let Ok(bars) = self.bars.lock() {
            for bar in bars.values() {
                bar.finish_and_clear();
            }
        }
        let _ = self.multi.clear();
    }
}

fn new_bar(multi: &MultiProgress, stream: &str) -> ProgressBar {
    let bar = multi.add(ProgressBar::no_length());
    bar.set_style(
        ProgressStyle::with_template("{prefix:>20} {spinner} {pos} records  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(stream.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

fn counted_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>20} [{bar:25}] {pos}/{len} eta {eta}  {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}
