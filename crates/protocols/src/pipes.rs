//! Dagster Pipes (protocol version 0.1), for `driftbridge sync` started by Dagster's
//! `PipesSubprocessClient`.
//!
//! Dagster starts the process with `DAGSTER_PIPES_CONTEXT` and `DAGSTER_PIPES_MESSAGES`, each
//! the base64 of the zlib-compressed JSON of a parameter object: the context parameters carry
//! `path` (a JSON file with the context: `asset_keys`, `run_id`, `extras`, …) or the context
//! inline as `data`; the message parameters carry `path` (a file the process appends one JSON
//! message per line to) or `stdio` (`"stderr"` or `"stdout"`). Each message is
//! `{"__dagster_pipes_version": "0.1", "method": …, "params": …}`; the methods used here are
//! `opened` (`{"extras": {}}`), `log` (`{"message", "level"}`),
//! `report_asset_materialization` (`{"asset_key", "data_version", "metadata"}`, each metadata
//! value `{"raw_value", "type"}`) and `closed` (`{}`, or `{"exception": {...}}` when the run failed).
//!
//! Which asset keys are reported: a stream whose name is one of the context's asset keys is
//! reported under it (a `multi_asset` with one spec per stream); otherwise, when the context
//! has exactly one asset key, one materialization for it carries every stream's figures as
//! `<stream>.records_written` etc. and the totals; with no asset key (an op) only logs are
//! sent. (Dagster Pipes docs: "Dagster Pipes details and customization"; the `dagster-pipes`
//! library's message writer and context loader.)

use base64::Engine as _;
use serde_json::{json, Map, Value};
use std::io::{Read, Write};
use std::path::PathBuf;

/// The Pipes protocol version written on every message.
pub const PIPES_VERSION: &str = "0.1";
/// Environment variable of the context parameters.
pub const CONTEXT_ENV: &str = "DAGSTER_PIPES_CONTEXT";
/// Environment variable of the message parameters.
pub const MESSAGES_ENV: &str = "DAGSTER_PIPES_MESSAGES";

/// The Pipes bootstrap could not be read. The message names the variable or file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Dagster Pipes: {0}")]
pub struct PipesError(pub String);

/// Encode a parameter object as Dagster does (JSON, zlib, base64): for tests and docs.
pub fn encode_param(value: &Value) -> String {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = z.write_all(value.to_string().as_bytes());
    let bytes = z.finish().unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decode a parameter object (base64, zlib, JSON).
///
/// Errors: [`PipesError`] naming `what` (the variable) and what was wrong.
pub fn decode_param(what: &str, text: &str) -> Result<Value, PipesError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| PipesError(format!("{what} is not base64: {e}")))?;
    let mut json = String::new();
    flate2::read::ZlibDecoder::new(bytes.as_slice())
        .read_to_string(&mut json)
        .map_err(|e| PipesError(format!("{what} is not zlib-compressed JSON: {e}")))?;
    serde_json::from_str(&json).map_err(|e| PipesError(format!("{what} is not JSON: {e}")))
}

#[derive(Debug, Clone)]
enum Channel {
    File(PathBuf),
    Stderr,
    Stdout,
}

/// A Pipes session opened from Dagster's bootstrap parameters.
#[derive(Debug, Clone)]
pub struct PipesSession {
    channel: Channel,
    asset_keys: Option<Vec<String>>,
}

/// The figures of one stream after a run, reported as materialization metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamReport {
    /// Stream name.
    pub stream: String,
    /// `succeeded`, `unavailable`, `failed`, …
    pub status: String,
    /// Records received from Drift.
    pub records_read: u64,
    /// Distinct rows written or updated in the destination.
    pub records_written: u64,
    /// Rows marked deleted (tombstones).
    pub records_deleted: u64,
    /// Records quarantined.
    pub records_rejected: u64,
    /// The stream's watermark after the run, epoch ms (Drift's clock), if it has one.
    pub watermark_ms: Option<i64>,
}

impl PipesSession {
    /// The session of this process, when Dagster started it (both variables set).
    ///
    /// Errors: [`PipesError`] when the variables are set but cannot be read.
    pub fn from_env() -> Result<Option<PipesSession>, PipesError> {
        match (std::env::var(CONTEXT_ENV), std::env::var(MESSAGES_ENV)) {
            (Ok(c), Ok(m)) => PipesSession::from_params(&c, &m).map(Some),
            _ => Ok(None),
        }
    }

    /// The session of the two encoded parameter objects.
    ///
    /// Errors: [`PipesError`] for undecodable parameters, an unreadable context file or
    /// parameters of another shape.
    pub fn from_params(context: &str, messages: &str) -> Result<PipesSession, PipesError> {
        let context = decode_param(CONTEXT_ENV, context)?;
        let messages = decode_param(MESSAGES_ENV, messages)?;
        let data = if let Some(path) = context.get("path").and_then(Value::as_str) {
            let text = std::fs::read_to_string(path)
                .map_err(|e| PipesError(format!("cannot read the context file {path}: {e}")))?;
            serde_json::from_str(&text)
                .map_err(|e| PipesError(format!("the context file {path} is not JSON: {e}")))?
        } else if let Some(data) = context.get("data") {
            data.clone()
        } else {
            return Err(PipesError(format!(
                "{CONTEXT_ENV} has neither `path` nor `data`"
            )));
        };
        let channel = if let Some(path) = messages.get("path").and_then(Value::as_str) {
            Channel::File(PathBuf::from(path))
        } else {
            match messages.get("stdio").and_then(Value::as_str) {
                Some("stderr") => Channel::Stderr,
                Some("stdout") => Channel::Stdout,
                _ => {
                    return Err(PipesError(format!(
                        "{MESSAGES_ENV} has neither `path` nor `stdio` (\"stderr\" or \"stdout\")"
                    )))
                }
            }
        };
        let asset_keys = data.get("asset_keys").and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        });
        Ok(PipesSession {
            channel,
            asset_keys,
        })
    }

    fn write(&self, method: &str, params: Value) {
        let line = json!({"__dagster_pipes_version": PIPES_VERSION, "method": method,
            "params": params})
        .to_string()
            + "\n";
        let written = match &self.channel {
            Channel::File(path) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(line.as_bytes())),
            Channel::Stderr => std::io::stderr().write_all(line.as_bytes()),
            Channel::Stdout => std::io::stdout().write_all(line.as_bytes()),
        };
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot write a Dagster Pipes message");
        }
    }

    /// `opened`: the process is up.
    pub fn opened(&self) {
        self.write("opened", json!({"extras": {}}));
    }

    /// `log` at `level` (`INFO`, `WARNING`, `ERROR`, …).
    pub fn log(&self, level: &str, message: &str) {
        self.write("log", json!({"message": message, "level": level}));
    }

    /// `report_asset_materialization` for the streams of a run (see the module docs for
    /// the asset keys). Returns the asset keys reported.
    pub fn report(&self, streams: &[StreamReport]) -> Vec<String> {
        let Some(keys) = &self.asset_keys else {
            self.log("INFO", "no asset in this step: figures only in the logs");
            return Vec::new();
        };
        let matching: Vec<&StreamReport> = streams
            .iter()
            .filter(|s| keys.contains(&s.stream))
            .collect();
        if !matching.is_empty() {
            for s in &matching {
                self.materialize(&s.stream, stream_metadata(s, ""));
            }
            return matching.iter().map(|s| s.stream.clone()).collect();
        }
        if let [key] = keys.as_slice() {
            let mut metadata = Map::new();
            for s in streams {
                metadata.extend(stream_metadata(s, &format!("{}.", s.stream)));
            }
            let sum = |f: fn(&StreamReport) -> u64| streams.iter().map(f).sum::<u64>();
            metadata.insert("records_written".into(), int(sum(|s| s.records_written)));
            metadata.insert("records_deleted".into(), int(sum(|s| s.records_deleted)));
            metadata.insert("records_rejected".into(), int(sum(|s| s.records_rejected)));
            self.materialize(key, metadata);
            return vec![key.clone()];
        }
        self.log(
            "WARNING",
            &format!(
                "none of the step's asset keys ({}) is a stream name: no materialization reported",
                keys.join(", ")
            ),
        );
        Vec::new()
    }

    fn materialize(&self, key: &str, metadata: Map<String, Value>) {
        self.write(
            "report_asset_materialization",
            json!({"asset_key": key, "data_version": null, "metadata": metadata}),
        );
    }

    /// `closed`, with the error that failed the run, if any.
    pub fn closed(&self, error: Option<&str>) {
        // Dagster reads `exception` only when present: a clean close sends `{}`.
        let params = match error {
            Some(message) => json!({"exception": {"name": "DriftbridgeRunFailed",
                "message": message, "stack": [], "cause": null, "context": null}}),
            None => json!({}),
        };
        self.write("closed", params);
    }
}

fn int(n: u64) -> Value {
    json!({"raw_value": n, "type": "int"})
}

fn stream_metadata(s: &StreamReport, prefix: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(format!("{prefix}records_read"), int(s.records_read));
    m.insert(format!("{prefix}records_written"), int(s.records_written));
    m.insert(format!("{prefix}records_deleted"), int(s.records_deleted));
    m.insert(format!("{prefix}records_rejected"), int(s.records_rejected));
    m.insert(
        format!("{prefix}status"),
        json!({"raw_value": s.status, "type": "text"}),
    );
    let watermark = match s.watermark_ms.and_then(sync_core::epoch_ms_to_rfc3339) {
        Some(t) => json!({"raw_value": t, "type": "text"}),
        None => json!({"raw_value": null, "type": "null"}),
    };
    m.insert(format!("{prefix}watermark"), watermark);
    m
}
