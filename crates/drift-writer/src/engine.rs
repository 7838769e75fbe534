//! The push run: read rows, map and check them, hand them to workers sharded by key, and
//! collect exactly one outcome per row.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drift_client::{Client, Error};
use sync_core::Cancel;
use tokio::sync::mpsc;

use crate::dry_run::DryRun;
use crate::input::{Input, InputError, RowResult};
use crate::mapping::{all_absent, FieldType, Mapper, Mapping, MappingError, Prepared};
use crate::stop::{cancelled_stop, results_stop, stop_of, Stop, StopCell, StopKind};
use crate::{accounts, contacts, events, Key, Object, OnDuplicate, Outcome, OutcomeKind, Planned};

/// Settings of one push run.
#[derive(Clone, Debug)]
pub struct PushOptions {
    /// What is written.
    pub object: Object,
    /// What rows are matched on (must be one of [`Object::keys`]).
    pub key: Key,
    /// Column mapping.
    pub mapping: Mapping,
    /// Send unmapped columns as custom attributes under their own names.
    pub include_unmapped: bool,
    /// Several contacts with one key: what to do.
    pub on_duplicate: OnDuplicate,
    /// Validate and look up only; no write request is made.
    pub dry_run: bool,
    /// Rows in flight at once (default 8; the client's rate budget paces them).
    pub concurrency: usize,
    /// With a results file as input: only rows whose earlier outcome is one of these.
    pub only: Option<Vec<OutcomeKind>>,
    /// Send timeline events and conversations again even when an earlier push's attempt
    /// ended uncertain (it may have landed; see [`Ledger::put_uncertain`]).
    pub resend_uncertain: bool,
}

impl PushOptions {
    /// Options with defaults: the object's default key, no mapping, reject duplicates,
    /// 8 rows in flight.
    pub fn new(object: Object) -> PushOptions {
        PushOptions {
            object,
            key: object.keys()[0],
            mapping: Mapping::default(),
            include_unmapped: false,
            on_duplicate: OnDuplicate::Reject,
            dry_run: false,
            concurrency: 8,
            only: None,
            resend_uncertain: false,
        }
    }
}

/// Remembers writes Drift cannot be asked about (timeline events, conversations), so a
/// re-run of the same input does not send them twice. Keys are row fingerprints (hex).
pub trait Ledger: Send + Sync {
    /// The Drift id recorded for this fingerprint, if it was sent before.
    fn get(&self, fingerprint: &str) -> Result<Option<String>, String>;
    /// Records a successful write.
    fn put(&self, fingerprint: &str, drift_id: &str) -> Result<(), String>;
    /// The error of an earlier attempt whose write may or may not have landed (connection
    /// dropped or timed out after the request was sent), if one is recorded and no
    /// successful write since. [`Ledger::get`] does not report such a fingerprint as sent.
    fn uncertain(&self, _fingerprint: &str) -> Result<Option<String>, String> {
        Ok(None)
    }
    /// Records an attempt whose write may or may not have landed: a re-run does not send
    /// the row again (unless [`PushOptions::resend_uncertain`]).
    fn put_uncertain(&self, _fingerprint: &str, _error: &str) -> Result<(), String> {
        Ok(())
    }
}

/// Counts and figures of a run.
#[derive(Clone, Debug)]
pub struct Summary {
    /// What was written.
    pub object: Object,
    /// Whether it was a dry run (no writes).
    pub dry_run: bool,
    /// Rows with an outcome (those whose outcome could not be saved included, see
    /// [`Summary::unsaved`]).
    pub rows: u64,
    /// Outcomes by kind.
    pub counts: BTreeMap<OutcomeKind, u64>,
    /// Rows read but not sent because the run stopped; each is `rejected` with a reason
    /// starting "not sent: the run stopped", so a re-feed with `--only rejected` sends them.
    pub not_sent: u64,
    /// Rows (timeline events, conversations) whose write may or may not have landed: this
    /// run's uncertain attempts and rows not sent again because an earlier attempt was
    /// uncertain. Each is `rejected`; a re-run does not send them (see
    /// [`PushOptions::resend_uncertain`]).
    pub uncertain: u64,
    /// Rows whose outcome the sink refused (see [`StopKind::Results`]); they are counted in
    /// `rows` and `counts` but are in no results file.
    pub unsaved: u64,
    /// The highest input row number with an outcome (0 when none): when the run stopped,
    /// rows after it were not read.
    pub last_row: u64,
    /// Rows of a results file left out by `only`.
    pub filtered_out: u64,
    /// Drift requests made by the run (lookups and writes, retries included).
    pub requests: u64,
    /// Requests answered 429 and retried.
    pub rate_limited: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Columns neither mapped nor standard, left out (see `--include-unmapped`).
    pub ignored_columns: Vec<String>,
    /// Set when the run stopped early: every row read has an outcome (rows queued for a
    /// write are `rejected` as not sent), rows after [`Summary::last_row`] were not read.
    pub stopped: Option<Stop>,
}

impl Summary {
    /// Rows with outcome `kind`.
    pub fn count(&self, kind: OutcomeKind) -> u64 {
        self.counts.get(&kind).copied().unwrap_or(0)
    }

    /// Rows per second of wall time.
    pub fn rows_per_sec(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Records the failure to finish the results file (its last flush): the run becomes
    /// stopped with [`StopKind::Results`] unless it already is, and every outcome counts as
    /// unsaved (whatever was buffered is lost).
    pub fn results_failed(&mut self, e: &std::io::Error) {
        if matches!(&self.stopped, Some(s) if s.kind == StopKind::Results) {
            return;
        }
        self.unsaved = self.rows;
        self.stopped = Some(results_stop(e, self.stopped.take()));
    }

    /// Drift requests per row with an outcome.
    pub fn requests_per_row(&self) -> f64 {
        if self.rows == 0 {
            0.0
        } else {
            self.requests as f64 / self.rows as f64
        }
    }
}

/// Errors that prevent a run from starting or finishing its bookkeeping.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// Bad mapping (names the entry and the fix).
    #[error(transparent)]
    Mapping(#[from] MappingError),
    /// Bad input or options.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A Drift call needed before the first row failed (e.g. loading accounts for
    /// `--key domain`); `is_auth()` on it means exit code 3.
    #[error("{0}")]
    Drift(#[from] Error),
    /// The run's own machinery failed (a task of the run ended abnormally). A results file
    /// that cannot be written is not an error: the run stops with [`StopKind::Results`] and
    /// returns its [`Summary`], so the rows it wrote are counted.
    #[error("cannot write the results: {0}")]
    Results(#[from] std::io::Error),
}

/// A write's result for one row, before it becomes an [`Outcome`].
#[derive(Debug)]
pub(crate) struct Done {
    pub kind: OutcomeKind,
    pub id: Option<String>,
    pub reason: Option<String>,
}

impl Done {
    pub fn new(kind: OutcomeKind, id: impl Into<Option<String>>, reason: Option<String>) -> Done {
        Done {
            kind,
            id: id.into(),
            reason,
        }
    }

    pub fn rejected(reason: impl Into<String>) -> Done {
        Done::new(OutcomeKind::Rejected, None, Some(reason.into()))
    }

    /// A dry-run outcome: what would happen and the requests that would be sent.
    pub fn planned(kind: OutcomeKind, id: Option<String>, plans: &[Planned]) -> Done {
        let sends: Vec<String> = plans.iter().map(ToString::to_string).collect();
        Done::new(
            kind,
            id,
            Some(format!("dry run: would send {}", sends.join(" ; "))),
        )
    }
}

/// An error that stops the run (401/403, 429 beyond the cap), or a request the run's stop
/// kept from being sent ([`Error::Stopped`]: the row gets its "not sent" outcome).
#[derive(Debug)]
pub(crate) struct Fatal(pub Error);

/// A row-level reason for `e`, or [`Fatal`] when `e` must stop the run.
pub(crate) fn reason_or_fatal(e: Error) -> Result<String, Fatal> {
    if e.is_auth() || matches!(e, Error::RateLimited { .. } | Error::Stopped { .. }) {
        Err(Fatal(e))
    } else {
        Ok(e.to_string())
    }
}

/// Rejects the row with `e`'s message, or stops the run.
pub(crate) fn reject(e: Error) -> Result<Done, Fatal> {
    reason_or_fatal(e).map(Done::rejected)
}

/// The outcome of a lookup that failed with `e` after a create answered `last` ambiguously:
/// when the run's stop kept the lookup from being sent, the row is rejected saying the
/// create may have landed (a re-run of the same input looks it up again), not "not sent".
pub(crate) fn lookup_failed(e: Error, last: &str) -> Result<Done, Fatal> {
    match e {
        Error::Stopped { .. } => Ok(Done::rejected(format!(
            "{last}; the create may have landed, and the run was stopped before a lookup could \
             tell; re-run the same input to find it (it is looked up before any create)"
        ))),
        e => reject(e),
    }
}

/// Whether a failed create may have landed (so it must be looked up before any retry). An
/// answer that does not fit the client's model ([`Error::Unfit`]) is treated like one that
/// cannot be read ([`Error::Decode`]).
pub(crate) fn ambiguous(e: &Error) -> bool {
    matches!(
        e,
        Error::Server { .. }
            | Error::Timeout { .. }
            | Error::Transport { .. }
            | Error::Decode { .. }
            | Error::Unfit(_)
    )
}

/// How often a create is attempted when lookups prove the earlier attempts did not land.
pub(crate) const CREATE_ATTEMPTS: u32 = 3;

/// Pause before re-trying a create that provably did not land.
pub(crate) async fn create_backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(250 * 2u64.pow(attempt))).await;
}

/// What every worker shares.
pub(crate) struct Ctx {
    pub client: Client,
    pub opts: PushOptions,
    pub ledger: Option<Arc<dyn Ledger>>,
    pub accounts: Option<accounts::Index>,
    /// A dry run's plan so far (unused by a real run).
    pub dry: DryRun,
    /// Rows whose write may or may not have landed ([`Summary::uncertain`]).
    pub uncertain: std::sync::atomic::AtomicU64,
}

/// Runs a push: reads `input`, writes to Drift through `client` (its rate budget paces
/// every request), and calls `on_outcome` once per row, in the order rows finish.
///
/// A 401/403, a 429 beyond the client's wait cap or an `on_outcome` error stops the run:
/// no further row is taken from the input, requests in flight finish (the row whose
/// request failed is `rejected` with the reason), rows already read but not sent are
/// `rejected` with "not sent: the run stopped (...)" (so every row read has exactly one
/// outcome and a re-feed with `--only rejected` sends them), and [`Summary::stopped`] says
/// why. Errors: [`PushError`] for problems found before the first row (mapping, `only`
/// without a results file, Drift setup calls).
pub async fn push<F>(
    client: &Client,
    opts: PushOptions,
    input: Input,
    ledger: Option<Arc<dyn Ledger>>,
    on_outcome: F,
) -> Result<Summary, PushError>
where
    F: FnMut(&Outcome) -> std::io::Result<()>,
{
    push_until(client, opts, input, ledger, &Cancel::new(), on_outcome).await
}

/// [`push`] that also stops when `cancel` is cancelled (Ctrl-C, SIGTERM): like any stop,
/// requests in flight finish, rows read but not sent are `rejected` as not sent, and the
/// summary's [`Summary::stopped`] has kind [`StopKind::Cancelled`].
pub async fn push_until<F>(
    client: &Client,
    opts: PushOptions,
    input: Input,
    ledger: Option<Arc<dyn Ledger>>,
    cancel: &Cancel,
    mut on_outcome: F,
) -> Result<Summary, PushError>
where
    F: FnMut(&Outcome) -> std::io::Result<()>,
{
    check_options(&opts, &input)?;
    let started = Instant::now();
    let before = client.metrics();
    let mut mapper = Mapper::new(opts.object, opts.key, &opts.mapping, opts.include_unmapped);
    if let (Some(cols), false) = (&input.columns, input.is_results) {
        mapper.check_columns(cols)?;
    }
    if opts.object == Object::Contacts {
        mapper = mapper.with_custom_types(custom_types(client).await?);
    }
    let accounts = match (opts.object, opts.key) {
        (Object::Accounts, Key::Domain) => Some(accounts::Index::load(client).await?),
        _ => None,
    };
    let stop = Arc::new(StopCell::default());
    let ctx = Arc::new(Ctx {
        // Once the run stops, a request still waiting for the budget, a slot or a retry is
        // not sent (its row gets the "not sent" outcome); only requests sent finish.
        client: client.with_stop(stop.flag.subscribe()),
        opts,
        ledger,
        accounts,
        dry: DryRun::default(),
        uncertain: Default::default(),
    });
    let watcher = {
        let (cancel, stop) = (cancel.clone(), stop.clone());
        tokio::spawn(async move {
            cancel.cancelled().await;
            stop.set(cancelled_stop());
        })
    };
    let (out_tx, mut out_rx) = mpsc::channel::<Outcome>(256);
    let workers = spawn_workers(&ctx, &stop, &out_tx);
    let rows = spawn_reader(input.rows);
    // Tasks of the run stay in the caller's span (a run's span: their logs name the run).
    let dispatcher = tokio::spawn(tracing::Instrument::in_current_span(dispatch(
        ctx.clone(),
        mapper,
        rows,
        workers,
        out_tx,
        stop.clone(),
    )));
    let mut counts = BTreeMap::new();
    let (mut rows, mut unsaved, mut last_row) = (0u64, 0u64, 0u64);
    let mut sink_error = None;
    while let Some(o) = out_rx.recv().await {
        *counts.entry(o.kind).or_insert(0) += 1;
        rows += 1;
        last_row = last_row.max(o.row);
        if sink_error.is_some() {
            unsaved += 1;
            continue;
        }
        if let Err(e) = on_outcome(&o) {
            // Stop sending at once: every further row would end with no saved outcome.
            stop.set(Stop {
                kind: StopKind::Results,
                message: format!("cannot write the results: {e}"),
            });
            sink_error = Some(e);
            unsaved += 1;
        }
    }
    watcher.abort();
    let (mapper, filtered_out) = dispatcher
        .await
        .map_err(|e| std::io::Error::other(format!("push dispatcher failed: {e}")))?;
    let mut stopped = stop.take();
    if let Some(e) = sink_error {
        if !matches!(&stopped, Some(s) if s.kind == StopKind::Results) {
            stopped = Some(results_stop(&e, stopped));
        }
    }
    let after = client.metrics();
    Ok(Summary {
        object: ctx.opts.object,
        dry_run: ctx.opts.dry_run,
        rows,
        counts,
        not_sent: stop.not_sent.load(Ordering::SeqCst),
        uncertain: ctx.uncertain.load(Ordering::SeqCst),
        unsaved,
        last_row,
        filtered_out,
        requests: after.requests.saturating_sub(before.requests),
        rate_limited: after.rate_limited.saturating_sub(before.rate_limited),
        elapsed: started.elapsed(),
        ignored_columns: mapper.ignored_columns(),
        stopped,
    })
}

fn check_options(opts: &PushOptions, input: &Input) -> Result<(), InputError> {
    if !opts.object.keys().contains(&opts.key) {
        let keys: Vec<&str> = opts.object.keys().iter().map(|k| k.field()).collect();
        return Err(InputError::whole(format!(
            "--key {} does not apply to {}; use one of: {}",
            opts.key.field(),
            opts.object.as_str(),
            keys.join(", ")
        )));
    }
    if opts.only.is_some() && !input.is_results {
        return Err(InputError::whole(
            "--only needs a results file of an earlier push as --from \
             (columns row,key,outcome,drift_id,reason,input)",
        ));
    }
    Ok(())
}

/// Custom contact attribute types from Drift; without `all_contact_read` (403) values keep
/// their input types. A 401 stops the run before it starts.
async fn custom_types(client: &Client) -> Result<HashMap<String, FieldType>, Error> {
    match client.contact_attributes().await {
        Ok(attrs) => Ok(attrs
            .into_iter()
            .filter_map(|a| {
                Some((
                    a.name.clone(),
                    FieldType::from_drift(a.attribute_type.as_deref()?),
                ))
            })
            .collect()),
        Err(e @ Error::Unauthorized { .. }) => Err(e),
        Err(e) => {
            tracing::info!(error = %e, "custom attribute types unavailable; values keep their input types");
            Ok(HashMap::new())
        }
    }
}

fn spawn_reader(rows: Box<dyn Iterator<Item = RowResult> + Send>) -> mpsc::Receiver<RowResult> {
    let (tx, rx) = mpsc::channel(256);
    tokio::task::spawn_blocking(move || {
        for row in rows {
            if tx.blocking_send(row).is_err() {
                break;
            }
        }
    });
    rx
}

fn spawn_workers(
    ctx: &Arc<Ctx>,
    stop: &Arc<StopCell>,
    out: &mpsc::Sender<Outcome>,
) -> Vec<mpsc::Sender<Prepared>> {
    (0..ctx.opts.concurrency.max(1))
        .map(|_| {
            let (tx, rx) = mpsc::channel::<Prepared>(8);
            tokio::spawn(tracing::Instrument::in_current_span(work(
                ctx.clone(),
                rx,
                out.clone(),
                stop.clone(),
            )));
            tx
        })
        .collect()
}

async fn work(
    ctx: Arc<Ctx>,
    mut rx: mpsc::Receiver<Prepared>,
    out: mpsc::Sender<Outcome>,
    stop: Arc<StopCell>,
) {
    // Runs until the dispatcher closes the queue: once the run stops, the rows still queued
    // are not sent but each gets its "not sent" outcome (none is dropped).
    while let Some(p) = rx.recv().await {
        if stop.is_set() {
            let done = stop.not_sent();
            if out.send(finish(p, done)).await.is_err() {
                break;
            }
            continue;
        }
        let done = match handle(&ctx, &p).await {
            Ok(mut done) => {
                if ctx.opts.dry_run && done.reason.is_none() {
                    done.reason = Some("dry run: nothing to send".into());
                }
                done
            }
            // The run's stop kept this row's next request from being sent (a lookup that
            // found nothing is not a write): the row was not written.
            Err(Fatal(Error::Stopped { .. })) => stop.not_sent(),
            Err(Fatal(e)) => {
                stop.set(stop_of(&e));
                Done::rejected(format!("not written, the run stopped: {e}"))
            }
        };
        if out.send(finish(p, done)).await.is_err() {
            break;
        }
    }
}

async fn handle(ctx: &Ctx, p: &Prepared) -> Result<Done, Fatal> {
    match ctx.opts.object {
        Object::Contacts => contacts::upsert(ctx, p).await,
        Object::Accounts => accounts::upsert(ctx, p).await,
        Object::Timeline => events::timeline(ctx, p).await,
        Object::Conversations => events::conversation(ctx, p).await,
    }
}

fn finish(p: Prepared, done: Done) -> Outcome {
    Outcome {
        row: p.row,
        key: p.key,
        kind: done.kind,
        drift_id: done.id,
        reason: done.reason,
        input: p.input,
    }
}

/// Reads rows, maps them, rejects the bad ones at once and shards the rest by key.
/// Returns the mapper (for the ignored columns) and the rows `only` left out.
async fn dispatch(
    ctx: Arc<Ctx>,
    mut mapper: Mapper,
    mut rows: mpsc::Receiver<RowResult>,
    workers: Vec<mpsc::Sender<Prepared>>,
    out: mpsc::Sender<Outcome>,
    stop: Arc<StopCell>,
) -> (Mapper, u64) {
    let mut filtered = 0u64;
    loop {
        // Once the run stops no further row is taken; every row taken gets an outcome
        // (a worker gives queued rows their "not sent" outcome).
        let row = tokio::select! {
            biased;
            _ = stop.flag.cancelled() => break,
            row = rows.recv() => match row {
                Some(row) => row,
                None => break,
            },
        };
        let row = match row {
            Ok(r) => r,
            Err(e) => match e.row {
                Some(n) => {
                    if let (Some(only), Some(prior)) = (&ctx.opts.only, e.prior) {
                        if !only.contains(&prior) {
                            filtered += 1;
                            continue;
                        }
                    }
                    let reason = format!("input {e}");
                    let o = rejected_row(n, None, reason, e.input);
                    if out.send(o).await.is_err() {
                        break;
                    }
                    continue;
                }
                None => {
                    stop.set(Stop {
                        kind: StopKind::Input,
                        message: e.message,
                    });
                    break;
                }
            },
        };
        if let (Some(only), Some(prior)) = (&ctx.opts.only, row.prior) {
            if !only.contains(&prior) {
                filtered += 1;
                continue;
            }
        }
        let routed = route(&ctx, &mut mapper, row);
        let sent = match routed {
            Route::Outcome(o) => out.send(o).await.is_ok(),
            Route::Worker(p) => {
                let key = p.key.as_deref().unwrap_or("");
                // Domains that name one account (`www.`, case) share a worker too.
                let key = match ctx.opts.key {
                    Key::Domain => accounts::bare(key),
                    _ => key.to_string(),
                };
                let shard = shard_of(&key, workers.len());
                workers[shard].send(p).await.is_ok()
            }
        };
        if !sent {
            break;
        }
    }
    (mapper, filtered)
}

enum Route {
    Outcome(Outcome),
    Worker(Prepared),
}

fn route(ctx: &Ctx, mapper: &mut Mapper, row: crate::Row) -> Route {
    let number = row.number;
    if all_absent(&row.fields) {
        return Route::Outcome(Outcome {
            row: number,
            key: None,
            kind: OutcomeKind::Skipped,
            drift_id: None,
            reason: Some("empty row: every value is blank".into()),
            input: row.fields,
        });
    }
    let input = row.fields.clone();
    match mapper.prepare(row) {
        Err((key, reason)) => Route::Outcome(rejected_row(number, key, reason, input)),
        Ok(p) if p.key.is_none() => {
            let field = ctx.opts.key.field();
            let reason = format!(
                "missing key: the row has no {field}; map a column to {field} (--map col={field}) \
                 or choose another --key"
            );
            Route::Outcome(rejected_row(number, None, reason, p.input))
        }
        Ok(p) => Route::Worker(p),
    }
}

fn rejected_row(
    row: u64,
    key: Option<String>,
    reason: String,
    input: serde_json::Map<String, serde_json::Value>,
) -> Outcome {
    Outcome {
        row,
        key,
        kind: OutcomeKind::Rejected,
        drift_id: None,
        reason: Some(reason),
        input,
    }
}

/// Worker index for a key: the same key (case-insensitively) always lands on one worker.
fn shard_of(key: &str, n: usize) -> usize {
    let mut h = DefaultHasher::new();
    key.to_lowercase().hash(&mut h);
    (h.finish() % n.max(1) as u64) as usize
}

/// A stable 128-bit fingerprint (two FNV-1a passes) of `parts`, as 32 hex digits. Used as
/// the [`Ledger`] key of writes Drift cannot look up.
pub(crate) fn fingerprint(parts: &[&str]) -> String {
    let fnv = |seed: u64| {
        let mut h = seed;
        for part in parts {
            for b in part.as_bytes().iter().chain(std::iter::once(&0xffu8)) {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        h
    };
    format!(
        "{:016x}{:016x}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x84222325_cbf29ce4)
    )
}
