//! Data sources (Drift streams into a sink) as the application runs them: their options
//! ([`SourceOptions`], kept in the store's `config` column with the sink's password masked)
//! and schedule ([`Schedule`]); [`create`], [`update`], [`set_paused`] and [`delete`], which
//! the REST API, the web UI and the CLI (`driftbridge sources ...`) all manage them with;
//! [`health`] (paused, failure streak, last error, next run time); and [`start_source`] /
//! [`job_of`], which the REST API's "run now", the web UI, the scheduler
//! ([`crate::schedule`]) and `driftbridge sources run` all run a source with.

use crate::addresses::AddressPolicy;
use crate::error::{ErrorKind, FieldError, FlowError};
use crate::job::SyncJob;
use crate::Flows;
use serde::{Deserialize, Serialize};
use store::{SourceRecord, SourceUpdate, Store};

/// Longest schedule interval, minutes (one week).
pub const MAX_EVERY_MINUTES: u32 = 7 * 24 * 60;

/// When a source runs by itself: exactly one of `every_minutes` and `cron`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Run every this many minutes (1 to 10080), counted from the start of the last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_minutes: Option<u32>,
    /// Run at the times of a standard 5-field cron expression (minute hour day-of-month
    /// month day-of-week), in UTC, e.g. `0 2 * * *` (02:00 every day) or `*/15 * * * 1-5`.
    /// A run is due at the first such time after the last run's start (after the source's
    /// creation when it never ran); after downtime it runs once, not once per missed time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
}

impl Schedule {
    /// Every `minutes` minutes.
    pub fn every(minutes: u32) -> Schedule {
        Schedule {
            every_minutes: Some(minutes),
            cron: None,
        }
    }

    /// At the times of cron expression `expr` (UTC).
    pub fn cron(expr: &str) -> Schedule {
        Schedule {
            every_minutes: None,
            cron: Some(expr.trim().to_string()),
        }
    }

    /// For people: `every 60 minutes`, `cron 0 2 * * * (UTC)`.
    pub fn describe(&self) -> String {
        match (&self.every_minutes, &self.cron) {
            (Some(n), _) => format!("every {n} minutes"),
            (None, Some(c)) => format!("cron {c} (UTC)"),
            (None, None) => "when started".into(),
        }
    }

    /// Field errors of this schedule (empty when it is valid).
    pub fn errors(&self) -> Vec<FieldError> {
        let error = |field: &str, message: String| vec![FieldError::new(field, message)];
        match (self.every_minutes, &self.cron) {
            (Some(_), Some(_)) => error(
                "schedule",
                "give either every_minutes or cron, not both".into(),
            ),
            (None, None) => error(
                "schedule",
                "give every_minutes (e.g. 60) or cron (e.g. \"0 2 * * *\"), or no schedule".into(),
            ),
            (Some(n), None) if n == 0 || n > MAX_EVERY_MINUTES => error(
                "schedule",
                format!("every {n} minutes is out of range; use 1 to {MAX_EVERY_MINUTES}"),
            ),
            (None, Some(expr)) => match crate::schedule::parse_cron(expr) {
                Ok(_) => Vec::new(),
                Err(message) => error("schedule.cron", message),
            },
            _ => Vec::new(),
        }
    }
}

/// Per-use options of a data source.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SourceOptions {
    /// `full` (read everything each run) or `incremental` (changes since the last run).
    pub mode: String,
    /// Where records go: `sqlite:PATH`, `postgres://…`, `jsonl:DIR`, `csv:DIR`, `parquet:DIR`.
    /// Stored with its password masked (`postgres://user:••••@host/db`).
    pub sink: String,
    /// Optional schedule.
    pub schedule: Option<Schedule>,
    /// What a contact attribute without a column does (issue 19): `evolve` (default: a new
    /// nullable column), `freeze` (the run fails before writing it, naming the field) or
    /// `discard` (kept only in `_raw`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "evolve"))]
    pub schema_contract: sinks::SchemaContract,
    /// History mode (SQLite and PostgreSQL): keep every version of a record with
    /// `_valid_from`, `_valid_to` and `_active`. File sinks are append-only already.
    #[serde(default)]
    pub history: bool,
    /// A paused source keeps its schedule but the scheduler does not start it; it can
    /// still be run by hand (run now, `driftbridge sources run`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// Streams to read in full on the next run, whatever the mode and their saved cursor
    /// (a reset, [`reset_stream`]); emptied when that run starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reset_streams: Vec<String>,
    /// Set when the source is real time (issue 22): Drift's webhook events reach it at
    /// `/webhooks/drift/{webhook_id}` ([`crate::realtime`]). Its verification token is in the
    /// vault, not here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime: Option<RealtimeOptions>,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            mode: "incremental".into(),
            sink: String::new(),
            schedule: None,
            schema_contract: Default::default(),
            history: false,
            paused: false,
            reset_streams: Vec::new(),
            realtime: None,
        }
    }
}

/// The real-time part of a data source's options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RealtimeOptions {
    /// The unguessable path segment of the source's webhook URL (32 hex digits, 128 random
    /// bits; not the source's id, which appears in pages and logs).
    pub webhook_id: String,
}

impl SourceOptions {
    /// The options stored with `source` (incremental, no sink and no schedule when they
    /// cannot be read).
    pub fn of(source: &SourceRecord) -> SourceOptions {
        serde_json::from_value(source.config.clone()).unwrap_or_default()
    }
}

/// Store `options` as the config of data source `key` (id or name).
fn save_options(
    store: &store::Store,
    key: &str,
    options: &SourceOptions,
) -> Result<SourceRecord, FlowError> {
    let config = serde_json::to_value(options)
        .map_err(|e| FlowError::new(crate::ErrorKind::Internal, e.to_string()))?;
    Ok(store.update_source(
        key,
        &store::SourceUpdate {
            config: Some(config),
            ..Default::default()
        },
    )?)
}

/// Pause (`paused` = true: its schedule starts no run) or resume data source `key` (id or
/// name). Errors: not found.
pub fn set_paused(
    store: &store::Store,
    key: &str,
    paused: bool,
) -> Result<SourceRecord, FlowError> {
    let source = store.source(key)?;
    let mut options = SourceOptions::of(&source);
    options.paused = paused;
    tracing::info!(source = %source.name, paused, "data source paused or resumed");
    save_options(store, &source.id, &options)
}

/// Reset `stream` of data source `key`: its next run reads that stream in full (as a full
/// refresh: from the beginning, ignoring the cursor saved in the sink), then goes on
/// incrementally from what that run read. The other streams are untouched.
///
/// Errors: invalid `stream` when the source does not read it (the message lists the ones it
/// reads); not found.
pub fn reset_stream(
    store: &store::Store,
    key: &str,
    stream: &str,
) -> Result<SourceRecord, FlowError> {
    let source = store.source(key)?;
    let stream = stream.trim();
    let reads = source.streams.iter().any(|s| s == stream || s == "all")
        && source_drift::catalog().get(stream).is_some();
    if !reads {
        return Err(FlowError::invalid(
            "stream",
            format!(
                "data source \"{}\" does not read a stream \"{stream}\"; pick one of: {}",
                source.name,
                source.streams.join(", ")
            ),
        ));
    }
    let mut options = SourceOptions::of(&source);
    if !options.reset_streams.iter().any(|s| s == stream) {
        options.reset_streams.push(stream.to_string());
    }
    tracing::info!(source = %source.name, stream, "stream reset: next run reads it in full");
    save_options(store, &source.id, &options)
}

/// Start a run of `source` in the background (run now: `trigger` [`store::Trigger::Manual`];
/// the scheduler: [`store::Trigger::Schedule`]); returns the run id. The sink's password
/// comes back from the vault only here, to open the sink.
///
/// Errors ([`FlowError`]): invalid `credential` (the source has none: it was deleted),
/// `sink` (its stored password cannot be read, it cannot be parsed, it lies inside the data
/// directory), `mode`; then those of [`crate::job::SyncRun::prepare`], with its field
/// `destination` called `sink`.
pub fn start_source(
    flows: &Flows,
    source: &SourceRecord,
    trigger: store::Trigger,
) -> Result<String, FlowError> {
    let job = SyncJob {
        trigger,
        ..job_of(&flows.store, source)?
    };
    let run = flows
        .runner
        .start(flows.store.clone(), job, flows.addresses)
        .map_err(|e| e.renamed_field("destination", "sink"))?;
    reset_started(&flows.store, source);
    Ok(run)
}

/// Clear the stream reset of `source` once a run that reads those streams in full has
/// started (by [`start_source`] or `driftbridge sources run`): a full pass that run leaves
/// unfinished is resumed by the next run from the pass state saved in the sink.
pub fn reset_started(store: &Store, source: &SourceRecord) {
    let options = SourceOptions::of(source);
    if options.reset_streams.is_empty() {
        return;
    }
    let cleared = SourceOptions {
        reset_streams: Vec::new(),
        ..options
    };
    if let Err(e) = save_options(store, &source.id, &cleared) {
        tracing::warn!(source = %source.name, error = %e, "could not clear the stream reset");
    }
}

/// The sync job of a run of `source` (what [`start_source`] starts in the background and
/// `driftbridge sources run` runs in the foreground), its sink with the password from the
/// vault. Errors: as [`start_source`] before the run is prepared.
pub fn job_of(store: &Store, source: &SourceRecord) -> Result<SyncJob, FlowError> {
    let options = SourceOptions::of(source);
    let credential = source.credential.clone().ok_or_else(|| {
        FlowError::invalid(
            "credential",
            format!(
                "data source \"{}\" has no credential (it was deleted); give it one",
                source.name
            ),
        )
    })?;
    let secret = store.source_sink_secret(&source.id)?;
    let sink = crate::sink_secret::join(&options.sink, secret.as_ref())
        .map_err(|e| FlowError::invalid("sink", e))?;
    Ok(SyncJob {
        credential,
        streams: source.streams.clone(),
        sink: sink
            .parse()
            .map_err(|e: String| FlowError::invalid("sink", e))?,
        mode: options
            .mode
            .parse()
            .map_err(|e: String| FlowError::invalid("mode", e))?,
        flow: Some(source.name.clone()),
        rate_limit_per_min: None,
        source: Default::default(),
        hard_deletes: false,
        schema_contract: options.schema_contract,
        history: options.history,
        reset_streams: options.reset_streams.clone(),
        trigger: store::Trigger::Manual,
    })
}

/// A new data source as a user gives it (the API's body, the CLI's flags, the UI's form).
#[derive(Debug, Clone)]
pub struct NewSource {
    /// Unique name, 1-100 characters (case-insensitive).
    pub name: String,
    /// Credential name or id.
    pub credential: String,
    /// Streams to read, or `["all"]`.
    pub streams: Vec<String>,
    /// Mode, sink (may hold a PostgreSQL password: it goes to the vault), schedule, paused.
    pub options: SourceOptions,
}

/// Changes to a data source; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct SourceChange {
    /// New name.
    pub name: Option<String>,
    /// New credential (name or id).
    pub credential: Option<String>,
    /// New streams.
    pub streams: Option<Vec<String>>,
    /// New mode (`incremental` or `full`).
    pub mode: Option<String>,
    /// New sink. The sink as shown (password `••••`) keeps the stored password; a sink with
    /// another host, user, database or parameters needs the password again.
    pub sink: Option<String>,
    /// New schedule; `Some(None)` removes it.
    pub schedule: Option<Option<Schedule>>,
    /// Pause (`true`) or resume (`false`) the schedule.
    pub paused: Option<bool>,
    /// New schema contract (`evolve`, `freeze`, `discard`).
    pub schema_contract: Option<sinks::SchemaContract>,
    /// History mode on or off.
    pub history: Option<bool>,
}

/// Every field error of a data source (empty when it is valid): name, credential (by name
/// or id), streams (known, at least one), mode, sink (parses, not inside the data
/// directory), schedule.
pub fn validate(
    store: &Store,
    name: &str,
    credential: &str,
    streams: &[String],
    options: &SourceOptions,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut push = |field: &str, message: String| errors.push(FieldError::new(field, message));
    if let Err(store::StoreError::Invalid { message, .. }) = store::validate::name(name) {
        push(
            "name",
            message
                .replace("credential name", "data source name")
                .replace("--name NAME", "a name"),
        );
    }
    if crate::pusher::resolve_credential(store, credential).is_err() {
        push(
            "credential",
            format!("no credential \"{credential}\"; add it first, or pick one of the saved credentials"),
        );
    }
    if streams.is_empty() {
        push("streams", "choose at least one stream".into());
    } else if let Err(e) = drift_writer::scopes::required_scopes(streams) {
        push("streams", e.0);
    }
    if let Err(e) = options.mode.parse::<sync_core::SyncMode>() {
        push("mode", e);
    }
    match options.sink.parse::<sinks::SinkSpec>() {
        Err(e) => push("sink", e),
        Ok(spec) => {
            if let Some(message) = crate::sink_paths::refusal(&spec, store.data_dir()) {
                push("sink", message);
            }
        }
    }
    if let Some(s) = &options.schedule {
        errors.extend(s.errors());
    }
    errors
}

/// Test `credential` for `streams`: missing scopes are an error on `streams`, a rejected or
/// unreachable credential one on `credential` (REFERENCE §3 scopes; DESIGN.md §1 step 2).
/// `edge` words the fixes for the caller's interface (CLI, web UI or API).
pub async fn scope_check(
    store: &Store,
    addresses: AddressPolicy,
    credential: &str,
    streams: &[String],
    edge: crate::check::Edge,
) -> Result<(), FlowError> {
    let c = crate::pusher::resolve_credential(store, credential)?;
    let (report, failure) =
        crate::check::test_credential(store, &c, streams, addresses, edge).await?;
    crate::metrics::credential_tested(&c.name, &report.status);
    match failure {
        None => Ok(()),
        Some(f) if f.kind == crate::check::FailureKind::MissingScopes => Err(FlowError::invalid(
            "streams",
            format!(
                "credential \"{}\" lacks the scopes {} that these streams need; pick other streams or rotate the key to a token with those scopes",
                c.name,
                report.missing_scopes.join(", ")
            ),
        )),
        Some(f) => Err(FlowError::invalid("credential", f.message)),
    }
}

/// The error for a sink whose password is the mask but which is not the stored sink.
fn masked_sink_error() -> FlowError {
    FlowError::invalid(
        "sink",
        format!(
            "the sink's password is shown as {mask}, which is not a password: give the whole \
             URL with the password (a stored password is kept only when the sink is sent back \
             exactly as shown)",
            mask = crate::sink_secret::MASK
        ),
    )
}

/// Validate, check the credential's scopes for the streams, and save a new data source;
/// a PostgreSQL password in the sink is encrypted in the vault and the stored sink shows it
/// masked.
///
/// Errors ([`FlowError`]): every invalid field at once ([`validate`]); `sink` holding the
/// mask; [`ErrorKind::Conflict`] for a taken name; those of [`scope_check`]; the store's.
pub async fn create(
    store: &Store,
    addresses: AddressPolicy,
    new: &NewSource,
    edge: crate::check::Edge,
) -> Result<SourceRecord, FlowError> {
    let errors = validate(
        store,
        &new.name,
        &new.credential,
        &new.streams,
        &new.options,
    );
    if !errors.is_empty() {
        return Err(FlowError::invalid_fields(errors));
    }
    let sink = crate::sink_secret::split(&new.options.sink);
    if sink.has_mask() {
        return Err(masked_sink_error());
    }
    if let Ok(existing) = store.source(&new.name) {
        return Err(FlowError::new(
            ErrorKind::Conflict,
            format!(
                "data source name \"{}\" is already taken (names are case-insensitive, it clashes with \"{}\"); choose another name, or change that source",
                new.name.trim(),
                existing.name
            ),
        ));
    }
    scope_check(store, addresses, &new.credential, &new.streams, edge).await?;
    let credential = crate::pusher::resolve_credential(store, &new.credential)?;
    let stored = SourceOptions {
        sink: sink.shown.clone(),
        ..new.options.clone()
    };
    let config = serde_json::to_value(&stored).map_err(|e| FlowError::internal(e.to_string()))?;
    let record = store.create_source_with_secret(
        &new.name,
        &credential.name,
        &new.streams,
        &config,
        sink.sealed().as_ref(),
    )?;
    tracing::info!(source = %record.name, "data source saved");
    Ok(record)
}

/// Change data source `key` (id or name): validate the result as a whole, check scopes
/// again when the credential or streams change, keep the stored sink password when the
/// sink comes back as shown. Errors: as [`create`], and [`ErrorKind::NotFound`].
pub async fn update(
    store: &Store,
    addresses: AddressPolicy,
    key: &str,
    change: &SourceChange,
    edge: crate::check::Edge,
) -> Result<SourceRecord, FlowError> {
    let current = store.source(key)?;
    let now = SourceOptions::of(&current);
    let name = change.name.clone().unwrap_or(current.name.clone());
    let credential = change
        .credential
        .clone()
        .or(current.credential.clone())
        .unwrap_or_default();
    let streams = change.streams.clone().unwrap_or(current.streams.clone());
    let (sink, sink_secret) = match &change.sink {
        None => (now.sink.clone(), None),
        Some(new) => {
            let parts = crate::sink_secret::split(new);
            if parts.only_masks() && parts.shown == now.sink {
                (parts.shown, None)
            } else if parts.has_mask() {
                return Err(masked_sink_error());
            } else {
                let sealed = parts.sealed();
                (parts.shown, Some(sealed))
            }
        }
    };
    let options = SourceOptions {
        mode: change.mode.clone().unwrap_or(now.mode),
        sink,
        schedule: change.schedule.clone().unwrap_or(now.schedule),
        paused: change.paused.unwrap_or(now.paused),
        schema_contract: change.schema_contract.unwrap_or(now.schema_contract),
        history: change.history.unwrap_or(now.history),
        reset_streams: now.reset_streams.clone(),
        // Changed only through crate::realtime (enable / disable).
        realtime: now.realtime.clone(),
    };
    let errors = validate(store, &name, &credential, &streams, &options);
    if !errors.is_empty() {
        return Err(FlowError::invalid_fields(errors));
    }
    if change.name.is_some() {
        if let Ok(existing) = store.source(&name) {
            if existing.id != current.id {
                return Err(FlowError::new(
                    ErrorKind::Conflict,
                    format!(
                        "data source name \"{}\" is already taken by \"{}\"; choose another name",
                        name.trim(),
                        existing.name
                    ),
                ));
            }
        }
    }
    if change.credential.is_some() || change.streams.is_some() {
        scope_check(store, addresses, &credential, &streams, edge).await?;
    }
    let credential = crate::pusher::resolve_credential(store, &credential)?;
    let update = SourceUpdate {
        sink_secret,
        name: change.name.clone(),
        credential: Some(credential.name),
        streams: Some(streams),
        config: Some(
            serde_json::to_value(&options).map_err(|e| FlowError::internal(e.to_string()))?,
        ),
    };
    Ok(store.update_source(&current.id, &update)?)
}

/// Delete data source `key` (id or name) and its sink password; its run history and the
/// data it wrote stay. A source that is running is refused ([`ErrorKind::Conflict`] naming
/// the run: cancel it first). Errors: [`ErrorKind::NotFound`], the store's.
pub fn delete(store: &Store, key: &str) -> Result<SourceRecord, FlowError> {
    let current = store.source(key)?;
    if let Some(run_id) = store.running_in(&crate::single::source_key(&current.id))? {
        return Err(FlowError::new(
            ErrorKind::Conflict,
            format!(
                "data source \"{}\" is running (run {run_id}); cancel that run or wait for it to end, then delete the source",
                current.name
            ),
        ));
    }
    Ok(store.delete_source(&current.id)?)
}

/// Statuses that count as a failure in a source's failure streak.
const FAILED: &[&str] = &["failed", "rate_limited", "interrupted"];
/// Statuses that end a failure streak (a run that finished its work).
const SUCCEEDED: &[&str] = &["succeeded", "succeeded_with_rejections", "partial"];

/// How a data source is doing, from its settings and run history.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SourceHealth {
    /// Whether its schedule is paused.
    pub paused: bool,
    /// Failed runs in a row, most recent first (failed, rate limited, interrupted; skipped
    /// and cancelled runs neither count nor end the streak); 0 after a success.
    pub failure_streak: u32,
    /// Error of the latest failed run while the streak lasts, else `null`.
    pub last_error: Option<String>,
    /// When the scheduler starts it next (epoch ms); `null` without a schedule or paused.
    /// Can be in the past: it then starts within a scheduler tick of `serve`.
    pub next_run_at: Option<i64>,
    /// Its latest runs, newest first (at most 5).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub last_runs: Vec<store::RunRecord>,
}

/// The failure streak and last error of runs `runs` (newest first).
pub fn failure_streak(runs: &[store::RunRecord]) -> (u32, Option<String>) {
    let mut streak = 0;
    let mut last_error = None;
    for run in runs {
        if SUCCEEDED.contains(&run.status.as_str()) {
            break;
        }
        if FAILED.contains(&run.status.as_str()) {
            if streak == 0 {
                last_error = run.error.clone();
            }
            streak += 1;
        }
    }
    (streak, last_error)
}

/// Health of `source` at `now_ms` (epoch ms), from the store's run history.
pub fn health(store: &Store, source: &SourceRecord) -> SourceHealth {
    let options = SourceOptions::of(source);
    let runs = store.flow_runs(&source.name, 50).unwrap_or_default();
    let (failure_streak, last_error) = failure_streak(&runs);
    let next_run_at = match (&options.schedule, options.paused) {
        (Some(schedule), false) => {
            match runs.first() {
                Some(run) => crate::schedule::next_after(schedule, run.started_at),
                // An interval schedule runs at once when it never ran.
                None if schedule.every_minutes.is_some() => Some(source.created_at),
                None => crate::schedule::next_after(schedule, source.created_at),
            }
        }
        _ => None,
    };
    SourceHealth {
        paused: options.paused,
        failure_streak,
        last_error,
        next_run_at,
        last_runs: runs.into_iter().take(5).collect(),
    }
}

/// The last `limit` rows of `stream` in the sink of data source `key` (SQLite and PostgreSQL
/// sinks; the sink's stored password is used to connect and never shown), newest first.
///
/// Errors: invalid `stream` (the source does not read it), invalid `sink` (a file sink, or
/// its password cannot be read), unavailable (the database cannot be read); not found.
pub async fn preview(
    store: &store::Store,
    key: &str,
    stream: &str,
    limit: usize,
) -> Result<sinks::preview::Preview, FlowError> {
    let source = store.source(key)?;
    let stream = stream.trim();
    if !source.streams.iter().any(|s| s == stream || s == "all")
        || source_drift::catalog().get(stream).is_none()
    {
        return Err(FlowError::invalid(
            "stream",
            format!(
                "data source \"{}\" does not read a stream \"{stream}\"; pick one of: {}",
                source.name,
                source.streams.join(", ")
            ),
        ));
    }
    let options = SourceOptions::of(&source);
    let secret = store.source_sink_secret(&source.id)?;
    let sink = crate::sink_secret::join(&options.sink, secret.as_ref())
        .map_err(|e| FlowError::invalid("sink", e))?;
    let spec: sinks::SinkSpec = sink
        .parse()
        .map_err(|e: String| FlowError::invalid("sink", e))?;
    if !matches!(
        spec,
        sinks::SinkSpec::Sqlite(_) | sinks::SinkSpec::Postgres(_)
    ) {
        return Err(FlowError::invalid(
            "sink",
            format!(
                "{} is a file sink: open its files to see the rows (previews are for SQLite and PostgreSQL)",
                spec.describe()
            ),
        ));
    }
    sinks::preview::last_rows(&spec, stream, limit)
        .await
        .map_err(|e| FlowError::new(crate::ErrorKind::Unavailable, e.to_string()))
}
