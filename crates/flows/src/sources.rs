//! Data sources (Drift streams into a sink) as the application runs them: their options
//! ([`SourceOptions`], kept in the store's `config` column with the sink's password masked)
//! and schedule ([`Schedule`]), and [`start_source`], which the REST API's "run now", the web
//! UI and the scheduler ([`crate::schedule`]) all start a source's run with.

use crate::error::{FieldError, FlowError};
use crate::job::SyncJob;
use crate::Flows;
use serde::{Deserialize, Serialize};
use store::SourceRecord;

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
    /// Paused: the schedule starts no run (Run now still does). Default `false`.
    #[serde(default)]
    pub paused: bool,
    /// Streams to read in full on the next run, whatever the mode and their saved cursor
    /// (a reset, [`reset_stream`]); emptied when that run starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reset_streams: Vec<String>,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            mode: "incremental".into(),
            sink: String::new(),
            schedule: None,
            paused: false,
            reset_streams: Vec::new(),
        }
    }
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

/// Start a run of `source` in the background (run now, or the scheduler); returns the run
/// id. The sink's password comes back from the vault only here, to open the sink.
///
/// Errors ([`FlowError`]): invalid `credential` (the source has none: it was deleted),
/// `sink` (its stored password cannot be read, it cannot be parsed, it lies inside the data
/// directory), `mode`; then those of [`crate::job::SyncRun::prepare`], with its field
/// `destination` called `sink`.
pub fn start_source(flows: &Flows, source: &SourceRecord) -> Result<String, FlowError> {
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
    let secret = flows.store.source_sink_secret(&source.id)?;
    let sink = crate::sink_secret::join(&options.sink, secret.as_ref())
        .map_err(|e| FlowError::invalid("sink", e))?;
    let job = SyncJob {
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
        reset_streams: options.reset_streams.clone(),
    };
    let run = flows
        .runner
        .start(flows.store.clone(), job, flows.addresses)
        .map_err(|e| e.renamed_field("destination", "sink"))?;
    if !options.reset_streams.is_empty() {
        // The run reads them in full now; a full pass it leaves unfinished is resumed by
        // the next run from the pass state saved in the sink.
        let cleared = SourceOptions {
            reset_streams: Vec::new(),
            ..options
        };
        if let Err(e) = save_options(&flows.store, &source.id, &cleared) {
            tracing::warn!(source = %source.name, error = %e, "could not clear the stream reset");
        }
    }
    Ok(run)
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
