//! The Airbyte protocol (`driftbridge airbyte spec|check|discover|read`), protocol version
//! 0.2.0: one JSON message per line on stdout (SPEC, CONNECTION_STATUS, CATALOG, RECORD,
//! STATE, LOG, TRACE), nothing else; logs go to stderr.
//!
//! - **read** runs the same engine and Drift source as `driftbridge sync`
//!   ([`sync_core::run_sync`] with [`source_drift::DriftSource`]) into the protocol sink
//!   ([`crate::sink`]): RECORDs of each committed batch, then per-stream STATE messages (type
//!   `STREAM`) of the checkpoint it carries. A stream's state is
//!   `{"driftbridge_state": {key: value, …}}` with every source state key that belongs to the
//!   stream (the conversations pass keeps one state for conversations, messages and contacts,
//!   so each of the three carries it); a `--state` file is read back as the union of them.
//! - **Tombstones** (a contact that answers 404, an account marked deleted, a user gone from
//!   a full list) are RECORDs with the primary key, `"_deleted": true` and `"_deleted_at"`
//!   (RFC 3339); both fields are in every stream's schema.
//! - **Quarantined records** (they do not fit the stream's types) are LOG messages at level
//!   WARN with the stream, key, reason and the raw record (first 2,000 characters).
//! - **Stream statuses** are TRACE STREAM_STATUS messages: STARTED when a stream starts,
//!   RUNNING before its first record, COMPLETE after its last STATE, INCOMPLETE when it
//!   failed, was unavailable or never ended. Failures are TRACE ERROR messages with a
//!   `failure_type`: `config_error` (key rejected, scope missing, bad config),
//!   `transient_error` (rate limited beyond the wait cap, Drift 5xx, network), `system_error`
//!   (anything else); `read` then exits non-zero.

use crate::config::{ConfigError, ProtocolConfig};
use crate::sink::{entries_of, Dialect, ProtocolSink};
use crate::wire::Wire;
use serde_json::{json, Value};
use source_drift::DriftSource;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use sync_core::{
    run_sync, Cancel, ConfiguredStream, ErrorKind, ProgressEvent, ProgressFn, Quarantined, Record,
    RunOptions, RunStatus, StreamState, SyncMode,
};

/// The Airbyte protocol version these messages follow.
pub const PROTOCOL_VERSION: &str = "0.2.0";

/// Why a stream or the run failed, as Airbyte classifies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureType {
    /// The config is wrong: a rejected key, a missing scope, a bad field.
    Config,
    /// Retrying later may work: rate limited, Drift 5xx, network.
    Transient,
    /// Anything else.
    System,
}

impl FailureType {
    /// The protocol's spelling (`config_error`, `transient_error`, `system_error`).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureType::Config => "config_error",
            FailureType::Transient => "transient_error",
            FailureType::System => "system_error",
        }
    }

    fn of(kind: ErrorKind, message: &str) -> FailureType {
        match kind {
            ErrorKind::Unauthorized | ErrorKind::Forbidden | ErrorKind::Invalid => {
                FailureType::Config
            }
            ErrorKind::RateLimited | ErrorKind::Cancelled => FailureType::Transient,
            ErrorKind::Failed if transient_text(message) => FailureType::Transient,
            _ => FailureType::System,
        }
    }
}

/// Whether a Drift error message says the failure may pass (5xx, timeout, connection).
fn transient_text(message: &str) -> bool {
    ["server error", "timed out", "connection to Drift failed"]
        .iter()
        .any(|m| message.contains(m))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A LOG message.
pub fn log(level: &str, message: &str) -> Value {
    json!({"type": "LOG", "log": {"level": level, "message": message}})
}

/// A TRACE ERROR message; `stream` names the stream it concerns, if one.
pub fn error_trace(message: &str, failure: FailureType, stream: Option<&str>) -> Value {
    let mut error = json!({
        "message": message,
        "internal_message": message,
        "failure_type": failure.as_str(),
    });
    if let Some(s) = stream {
        error["stream_descriptor"] = json!({"name": s});
    }
    json!({"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": now_ms(), "error": error}})
}

/// The TRACE ERROR of a config that cannot be used.
pub fn config_error_trace(e: &ConfigError) -> Value {
    error_trace(&e.to_string(), FailureType::Config, None)
}

fn stream_status(stream: &str, status: &str) -> Value {
    json!({"type": "TRACE", "trace": {"type": "STREAM_STATUS", "emitted_at": now_ms(),
        "stream_status": {"stream_descriptor": {"name": stream}, "status": status}}})
}

/// The SPEC message: the config as JSON Schema (flat; `access_token` is `airbyte_secret`).
pub fn spec() -> Value {
    let names: Vec<&str> = source_drift::STREAMS.iter().map(|d| d.name).collect();
    json!({"type": "SPEC", "spec": {
        "documentationUrl": "https://example.invalid/driftbridge/docs/RUN-ELSEWHERE.md",
        "protocol_version": PROTOCOL_VERSION,
        "supportsIncremental": true,
        "supported_destination_sync_modes": ["append", "append_dedup", "overwrite"],
        "connectionSpecification": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "title": "driftbridge (Drift)",
            "type": "object",
            "required": ["access_token"],
            "additionalProperties": true,
            "properties": {
                "access_token": {"type": "string", "title": "Access token", "order": 0,
                    "airbyte_secret": true,
                    "description": "The Drift access token (Drift app settings). Sent as Authorization: Bearer; never logged."},
                "base_url": {"type": "string", "title": "Base URL", "order": 1,
                    "default": crate::config::DEFAULT_BASE_URL,
                    "description": "The Drift API root; https:// (http:// only to a loopback address)."},
                "start_date": {"type": "string", "title": "Start date", "order": 2,
                    "format": "date-time", "examples": ["2024-01-01T00:00:00Z"],
                    "description": "RFC 3339. Records last updated before it are not read on the first sync."},
                "rate_limit_per_min": {"type": "integer", "title": "Rate limit (requests/minute)",
                    "order": 3, "default": crate::config::DEFAULT_RATE_PER_MIN, "minimum": 1},
                "oauth": {"type": "object", "title": "OAuth app (optional)", "order": 4,
                    "description": "Refresh the access token when it expires (all three fields, or none).",
                    "properties": {
                        "client_id": {"type": "string", "title": "Client ID"},
                        "client_secret": {"type": "string", "title": "Client secret", "airbyte_secret": true},
                        "refresh_token": {"type": "string", "title": "Refresh token", "airbyte_secret": true}
                    }},
                "shared_budget_url": {"type": "string", "title": "Shared budget database", "order": 5,
                    "airbyte_secret": true,
                    "description": "postgres:// URL: share the rate budget with every driftbridge process using the same credential name and base URL."},
                "credential_name": {"type": "string", "title": "Credential name (shared budget)",
                    "order": 6, "default": "driftbridge"},
                "user_agent": {"type": "string", "title": "User-Agent", "order": 7},
                "streams": {"type": "array", "title": "Streams the check tests scopes for",
                    "order": 8, "items": {"type": "string", "enum": names}},
                "contacts_recheck": {"type": "integer", "title": "Contacts re-checked per incremental sync",
                    "order": 9, "minimum": 0,
                    "default": source_drift::DriftSourceConfig::default().contacts_recheck_per_run}
            }
        }
    }})
}

/// A stream's JSON Schema with the tombstone fields `_deleted` and `_deleted_at`.
fn with_tombstone_fields(schema: &Value) -> Value {
    let mut schema = schema.clone();
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert("_deleted".into(), json!({"type": ["null", "boolean"]}));
        props.insert(
            "_deleted_at".into(),
            json!({"type": ["null", "string"], "format": "date-time"}),
        );
    }
    schema
}

/// The CATALOG message: every stream of the Drift catalog, each readable in full refresh
/// and incremental mode, with its primary key and, where it has one, its cursor
/// (source-defined); each followed by its child tables ([`crate::children`]: the JSON
/// Schema of their columns, primary key = parent key + `_index`, the parent's sync modes,
/// no cursor field: they are read with their parent).
pub fn discover() -> Value {
    let streams: Vec<Value> = source_drift::catalog()
        .streams
        .iter()
        .flat_map(|s| {
            let mut entry = json!({
                "name": s.name,
                "json_schema": with_tombstone_fields(&s.json_schema),
                "supported_sync_modes": ["full_refresh", "incremental"],
                "source_defined_cursor": true,
                "source_defined_primary_key": s.primary_key.iter().map(|k| vec![k]).collect::<Vec<_>>(),
            });
            if let Some(c) = &s.cursor_field {
                entry["default_cursor_field"] = json!([c]);
            }
            let modes = entry["supported_sync_modes"].clone();
            let children = crate::children::of(&s.name).map(move |c| {
                json!({
                    "name": c.stream.name,
                    "json_schema": crate::children::schema(c),
                    "supported_sync_modes": modes,
                    "source_defined_cursor": true,
                    "source_defined_primary_key": c.stream.primary_key.iter().map(|k| vec![k]).collect::<Vec<_>>(),
                })
            });
            std::iter::once(entry).chain(children).collect::<Vec<_>>()
        })
        .collect();
    json!({"type": "CATALOG", "catalog": {"streams": streams}})
}

/// The CONNECTION_STATUS message of the credential test: `POST /app/token_info` (host
/// reached, token accepted, org, scopes, expiry) and, when the config names `streams`, their
/// scopes against the token's; the same steps and wording as `driftbridge credentials test`.
pub async fn check(config: Result<ProtocolConfig, ConfigError>) -> Value {
    let status = |ok: bool, message: String| {
        json!({"type": "CONNECTION_STATUS", "connectionStatus": {
            "status": if ok { "SUCCEEDED" } else { "FAILED" }, "message": message}})
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => return status(false, e.to_string()),
    };
    let needed: BTreeSet<String> = config
        .streams
        .iter()
        .filter_map(|s| source_drift::stream_def(s))
        .flat_map(|d| d.scopes.iter().map(|s| s.to_string()))
        .collect();
    let (report, failure) = flows::check::probe(
        "access_token",
        &config.base_url,
        config.rate_limit_per_min,
        config.auth(),
        &needed,
        flows::AddressPolicy::AllowPrivate,
        flows::check::Edge::Cli,
    )
    .await;
    let steps: Vec<String> = report.steps.iter().map(|s| s.detail.clone()).collect();
    match failure {
        None => status(true, steps.join("; ")),
        Some(f) => status(false, f.message),
    }
}

/// Which streams a configured catalog selects, each with its sync mode.
///
/// Errors: [`ConfigError`] (field `catalog`) for a catalog without `streams`, an unknown
/// stream or sync mode.
pub fn configured_streams(catalog: &Value) -> Result<Vec<ConfiguredStream>, ConfigError> {
    Ok(configured(catalog)?.0)
}

/// [`configured_streams`] with what to emit: a child stream (`conversation_tags`) is read
/// with its parent; a parent not selected itself is read but not emitted
/// ([`crate::children::plan`]).
///
/// Errors: as [`configured_streams`].
pub fn configured(
    catalog: &Value,
) -> Result<(Vec<ConfiguredStream>, crate::children::Emit), ConfigError> {
    let bad = |m: String| ConfigError {
        field: "catalog".into(),
        message: m,
    };
    let items = catalog
        .get("streams")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("a configured catalog needs a `streams` list".into()))?;
    let mut chosen = Vec::new();
    for item in items {
        let name = item
            .pointer("/stream/name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("each configured stream needs `stream.name`".into()))?;
        let mode = match item.get("sync_mode").and_then(Value::as_str) {
            Some("incremental") => SyncMode::Incremental,
            Some("full_refresh") | None => SyncMode::FullRefresh,
            Some(other) => {
                return Err(bad(format!(
                    "stream `{name}`: unknown sync_mode `{other}` (full_refresh or incremental)"
                )))
            }
        };
        chosen.push((name.to_string(), mode));
    }
    // In catalog order (the source reads the small streams first, then the conversations pass).
    crate::children::plan(&chosen).map_err(bad)
}

/// The source state in an Airbyte state file: a list of STREAM state messages (what the
/// platform and PyAirbyte pass), one such message, or a legacy object of stream states.
/// Unknown shapes read as no state.
pub fn state_from(value: &Value) -> BTreeMap<String, Value> {
    let mut state = BTreeMap::new();
    let mut take = |stream_state: Option<&Value>| {
        if let Some(entries) = stream_state
            .and_then(|s| s.get("driftbridge_state"))
            .and_then(Value::as_object)
        {
            for (k, v) in entries {
                state.insert(k.clone(), v.clone());
            }
        }
    };
    let messages: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        Value::Object(o) if o.contains_key("type") || o.contains_key("stream") => vec![value],
        Value::Object(o) if o.contains_key("driftbridge_state") => {
            take(Some(value));
            Vec::new()
        }
        Value::Object(o) => {
            for v in o.values() {
                take(Some(v));
            }
            Vec::new()
        }
        _ => Vec::new(),
    };
    for m in messages {
        let m = m.get("state").unwrap_or(m);
        take(m.pointer("/stream/stream_state"));
        if let Some(data) = m.get("data") {
            take(Some(data));
        }
    }
    state
}

struct Airbyte;

impl Dialect for Airbyte {
    fn record(&self, record: &Record) -> Value {
        let mut data = record.data.clone();
        if record.tombstone {
            data.insert("_deleted".into(), Value::Bool(true));
            data.insert(
                "_deleted_at".into(),
                json!(sync_core::epoch_ms_to_rfc3339(record.extracted_at)),
            );
        }
        json!({"type": "RECORD", "record": {"stream": record.stream, "data": data,
            "emitted_at": record.extracted_at}})
    }

    fn running(&self, stream: &str) -> Option<Value> {
        Some(stream_status(stream, "RUNNING"))
    }

    fn quarantined(&self, q: &Quarantined) -> Option<Value> {
        let raw: String = q.raw.chars().take(2000).collect();
        Some(log(
            "WARN",
            &format!(
                "record quarantined: stream {}, key {}: {}; raw record: {raw}",
                q.stream,
                q.key.as_deref().unwrap_or("(unreadable)"),
                q.reason
            ),
        ))
    }

    fn states(
        &self,
        changed: &BTreeSet<String>,
        state: &BTreeMap<String, Value>,
        counts: &BTreeMap<String, u64>,
    ) -> Vec<Value> {
        changed
            .iter()
            .map(|s| {
                let count = counts.get(s).copied().unwrap_or(0) as f64;
                json!({"type": "STATE", "state": {"type": "STREAM", "stream": {
                    "stream_descriptor": {"name": s},
                    "stream_state": {"driftbridge_state": Value::Object(entries_of(state, s))}},
                    "sourceStats": {"recordCount": count}}})
            })
            .collect()
    }
}

/// What `read` did: whether it succeeded (exit 0), and its figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadOutcome {
    /// Every selected stream completed (quarantined records do not fail a read).
    pub succeeded: bool,
    /// The engine's run status (`succeeded`, `succeeded_with_rejections`, …).
    pub status: RunStatus,
}

/// Run `read`: the streams `catalog` selects, from `state`, into `wire`. Everything it has
/// to say is a message on `wire` (errors included); nothing is returned as an error.
pub async fn read(
    config: &ProtocolConfig,
    catalog: &Value,
    state: Option<&Value>,
    wire: &Wire,
    cancel: Cancel,
) -> ReadOutcome {
    read_with(config, config.source_config(), catalog, state, wire, cancel).await
}

/// [`read`] with the Drift source's options given (page size, checkpoint interval: tests
/// use small pages to checkpoint often).
pub async fn read_with(
    config: &ProtocolConfig,
    source_config: source_drift::DriftSourceConfig,
    catalog: &Value,
    state: Option<&Value>,
    wire: &Wire,
    cancel: Cancel,
) -> ReadOutcome {
    let failed = ReadOutcome {
        succeeded: false,
        status: RunStatus::Failed,
    };
    let (streams, emit) = match configured(catalog) {
        Ok(s) => s,
        Err(e) => {
            let _ = wire.send(&config_error_trace(&e));
            return failed;
        }
    };
    let client = match config.client() {
        Ok(c) => c,
        Err(e) => {
            let _ = wire.send(&config_error_trace(&e));
            return failed;
        }
    };
    let defs: Vec<_> = streams.iter().map(|s| s.stream.clone()).collect();
    let initial = state.map(state_from).unwrap_or_default();
    let mut sink = ProtocolSink::new(
        Box::new(Airbyte),
        wire.clone(),
        &defs,
        emit.clone(),
        initial,
        config.start_date_ms,
    );
    let source = Arc::new(DriftSource::new(client, source_config));
    let seen: Arc<Mutex<HashMap<String, StreamState>>> = Arc::default();
    let run_id = format!("airbyte-{}", now_ms());
    let report = run_sync(
        source,
        &mut sink,
        streams,
        RunOptions::new(run_id, "airbyte"),
        cancel,
        Some(status_callback(wire.clone(), seen.clone(), emit.clone())),
    )
    .await;
    let mut lines = Vec::new();
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut reported_run_error = false;
    for s in &report.streams {
        let ended = matches!(
            seen.get(&s.stream),
            Some(StreamState::Succeeded | StreamState::Failed | StreamState::Unavailable)
        );
        let names = emit.names(&s.stream);
        if !ended {
            lines.extend(names.iter().map(|n| stream_status(n, "INCOMPLETE")));
        }
        // The stream named in error messages: the engine's, or its first selected child.
        let named = names.first().cloned().unwrap_or_else(|| s.stream.clone());
        let reason = s.reason.clone().unwrap_or_default();
        match s.state {
            StreamState::Unavailable => lines.push(error_trace(
                &format!(
                    "stream {} is unavailable with this token: {reason}; grant the scope to the Drift token or deselect the stream",
                    s.stream
                ),
                FailureType::Config,
                Some(&named),
            )),
            StreamState::Failed => {
                let (kind, message) = match &report.error {
                    Some(e) if e.stream.as_deref() == Some(s.stream.as_str()) => {
                        reported_run_error = true;
                        (e.kind, e.to_string())
                    }
                    _ => (ErrorKind::Failed, format!("stream {}: {reason}", s.stream)),
                };
                lines.push(error_trace(
                    &message,
                    FailureType::of(kind, &message),
                    Some(&named),
                ));
            }
            _ => {}
        }
    }
    if let (Some(e), false) = (&report.error, reported_run_error) {
        let message = e.to_string();
        lines.push(error_trace(
            &message,
            FailureType::of(e.kind, &message),
            e.stream.as_deref(),
        ));
    }
    let quarantined: u64 = report.streams.iter().map(|s| s.records_rejected).sum();
    if quarantined > 0 {
        lines.push(log(
            "WARN",
            &format!("{quarantined} records did not fit their streams and were sent as WARN logs above (not as RECORDs)"),
        ));
    }
    if sink.skipped_before_start() > 0 {
        lines.push(log(
            "INFO",
            &format!(
                "{} records older than start_date were not emitted",
                sink.skipped_before_start()
            ),
        ));
    }
    let _ = wire.send_all(&lines);
    let all_ok = report
        .streams
        .iter()
        .all(|s| s.state == StreamState::Succeeded);
    ReadOutcome {
        succeeded: all_ok
            && matches!(
                report.status,
                RunStatus::Succeeded | RunStatus::SucceededWithRejections
            ),
        status: report.status,
    }
}

/// TRACE STREAM_STATUS messages as the engine reports progress: STARTED when a stream
/// starts, COMPLETE when it succeeded (after its last commit), INCOMPLETE when it failed or
/// is unavailable. RUNNING is the sink's (before the stream's first record).
/// A parent read only for its children reports under their names ([`crate::children::Emit`]).
fn status_callback(
    wire: Wire,
    seen: Arc<Mutex<HashMap<String, StreamState>>>,
    emit: crate::children::Emit,
) -> ProgressFn {
    Arc::new(move |event: &ProgressEvent| {
        let s = &event.summary;
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.get(&s.stream) == Some(&s.state) {
            return;
        }
        seen.insert(s.stream.clone(), s.state);
        let status = match s.state {
            StreamState::Running => "STARTED",
            StreamState::Succeeded => "COMPLETE",
            StreamState::Failed | StreamState::Unavailable => "INCOMPLETE",
            StreamState::Pending | StreamState::Cancelled => return,
        };
        for name in emit.names(&s.stream) {
            let _ = wire.send(&stream_status(&name, status));
        }
    })
}

/// The stream states of `state` as Airbyte STREAM state messages (what a platform would
/// keep), e.g. to write a state file.
pub fn state_messages(state: &BTreeMap<String, Value>) -> Vec<Value> {
    let streams: BTreeSet<String> = state
        .keys()
        .flat_map(|k| crate::sink::streams_of(k).into_iter().map(str::to_string))
        .collect();
    Airbyte.states(&streams, state, &BTreeMap::new())
}
