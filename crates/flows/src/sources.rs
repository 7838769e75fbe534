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
    /// Set when the source is real time (issue 22): Drift's webhook events reach it at
    /// `/webhooks/drift/{webhook_id}` ([`crate::realtime`]). Its verification token is in the
    /// vault, not here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime: Option<RealtimeOptions>,
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
        serde_json::from_value(source.config.clone()).unwrap_or(SourceOptions {
            mode: "incremental".into(),
            sink: String::new(),
            schedule: None,
            realtime: None,
        })
    }
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
    };
    flows
        .runner
        .start(flows.store.clone(), job, flows.addresses)
        .map_err(|e| e.renamed_field("destination", "sink"))
}
