//! Per-run logs: every event of a run's span (info and above) as one JSON line in
//! `runs/<run id>.log` in the data directory, beside the run's lock file.
//!
//! How a line gets there: a run opens its log ([`RunLog::open`], which registers the file
//! under the run id) before it creates its span ([`crate::events::RunScope`]); the
//! [`RunLogLayer`] — installed once per process by the binary, next to its stderr logger —
//! finds the file when the span is created and writes every event whose scope holds the
//! span: the run's own events, and what the libraries log while it runs (a sink's
//! warning, a Drift OAuth refresh). Each line is
//! `{"time": RFC 3339 UTC with ms, "level": "WARN", "target": "...", "message": "...",
//! "fields": {...}}`.
//!
//! Secrets never reach the file: Drift client errors are scrubbed where they are made, and
//! the log replaces every secret the run holds (the credential's key, its OAuth client
//! secret and refresh token, a sink's password) with `[redacted]` in each value it writes.
//!
//! Reading: [`read`] (all lines, or those after line N for tailing) and [`LogLine::text`]
//! (`time LEVEL message key=value…`). Runs are never pruned or deleted from the run history,
//! so their logs are kept as long as the data directory; [`remove`] deletes one.

use crate::error::{ErrorKind, FlowError};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// What a secret is replaced with in a run log.
pub const REDACTED: &str = "[redacted]";

/// The folder of the data directory holding run logs (and run lock files).
pub const RUNS_DIR: &str = "runs";

/// One open run log.
struct RunLogFile {
    file: Mutex<std::fs::File>,
    secrets: Vec<SecretString>,
}

impl RunLogFile {
    fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.secrets {
            let s = secret.expose_secret();
            // Very short values would blank out ordinary words; keys are long.
            if s.len() >= 4 && out.contains(s) {
                out = out.replace(s, REDACTED);
            }
        }
        out
    }

    fn write(&self, line: &LogLine) {
        let Ok(mut text) = serde_json::to_string(line) else {
            return;
        };
        text = self.redact(&text);
        text.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        // A log line that cannot be written must not fail the run.
        let _ = file.write_all(text.as_bytes());
    }
}

/// Run logs open in this process, by run id.
fn open_logs() -> &'static Mutex<HashMap<String, Arc<RunLogFile>>> {
    static OPEN: OnceLock<Mutex<HashMap<String, Arc<RunLogFile>>>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
}

/// A run's log, open while the run runs; closed (unregistered) when dropped.
#[derive(Debug)]
pub struct RunLog {
    run_id: String,
}

impl RunLog {
    /// Create `runs/<run_id>.log` in `data_dir` (appending if it exists) and register it, so
    /// the events of the span of run `run_id` created from now on are written to it, with
    /// `secrets` redacted. A log that cannot be created is reported as a warning and the
    /// run goes on without it.
    pub fn open(data_dir: &Path, run_id: &str, secrets: Vec<SecretString>) -> RunLog {
        let opened = path(data_dir, run_id).and_then(|path| {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| io_error("create", dir, &e))?;
            }
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| io_error("open", &path, &e))
        });
        match opened {
            Ok(file) => {
                let log = Arc::new(RunLogFile {
                    file: Mutex::new(file),
                    secrets,
                });
                open_logs()
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(run_id.to_string(), log);
            }
            Err(e) => {
                tracing::warn!(run_id, error = %e, "cannot open the run log; the run goes on without it")
            }
        }
        RunLog {
            run_id: run_id.to_string(),
        }
    }
}

impl Drop for RunLog {
    fn drop(&mut self) {
        open_logs()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.run_id);
    }
}

fn io_error(action: &str, path: &Path, e: &std::io::Error) -> FlowError {
    FlowError::internal(format!("{action} {}: {e}", path.display()))
}

/// The log file of run `run_id` in `data_dir`. Errors: a run id that is not one
/// (letters, digits and `_` only), as not found.
pub fn path(data_dir: &Path, run_id: &str) -> Result<PathBuf, FlowError> {
    if run_id.is_empty()
        || !run_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(FlowError::new(
            ErrorKind::NotFound,
            format!("no run \"{run_id}\"; run `driftbridge runs list` to see the run ids"),
        ));
    }
    Ok(data_dir.join(RUNS_DIR).join(format!("{run_id}.log")))
}

/// Delete the log of run `run_id`, if it has one (for whoever deletes the run).
pub fn remove(data_dir: &Path, run_id: &str) -> Result<(), FlowError> {
    let path = path(data_dir, run_id)?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("remove", &path, &e)),
    }
}

/// One line of a run log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogLine {
    /// When, RFC 3339 UTC with milliseconds.
    pub time: String,
    /// `ERROR`, `WARN` or `INFO`.
    pub level: String,
    /// Where it was logged (`driftbridge::run` for the run's own events).
    pub target: String,
    /// What happened, for people.
    pub message: String,
    /// The event's fields (stream, route, reason, counts, ...).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub fields: Map<String, Value>,
}

impl LogLine {
    /// The line for people: `time LEVEL message key=value…` (values with spaces quoted).
    pub fn text(&self) -> String {
        let mut out = format!("{} {:<5} {}", self.time, self.level, self.message);
        for (key, value) in &self.fields {
            let value = match value {
                Value::String(s) if s.is_empty() => continue,
                Value::String(s) if s.contains(char::is_whitespace) || s.contains('"') => {
                    format!("{s:?}")
                }
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push_str(&format!(" {key}={value}"));
        }
        out
    }
}

/// What [`read`] found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LogPage {
    /// The lines after the one asked for, in order (lines that are not JSON are left out).
    pub lines: Vec<LogLine>,
    /// The number of lines read so far: ask for the lines after this one next.
    pub next: usize,
}

/// The lines of run `run_id`'s log after the first `after` (0: all). A run without a log
/// (one recorded by a version before run logs) reads as no lines.
pub fn read(data_dir: &Path, run_id: &str, after: usize) -> Result<LogPage, FlowError> {
    let path = path(data_dir, run_id)?;
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io_error("read", &path, &e)),
    };
    // Only whole lines: the last one may still be being written.
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    let all: Vec<&str> = complete.lines().collect();
    let lines = all
        .iter()
        .skip(after)
        .filter_map(|l| serde_json::from_str::<LogLine>(l).ok())
        .collect();
    Ok(LogPage {
        lines,
        next: all.len().max(after),
    })
}

/// The [`tracing_subscriber::Layer`] that writes the events of run spans to their run logs.
/// Install it once per process beside the stderr logger, with a level filter of INFO (see
/// [`layer`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct RunLogLayer;

/// The run-log layer with its own filter (info and above), independent of the stderr log
/// level: `registry().with(stderr_layer.with_filter(env_filter)).with(flows::logs::layer())`.
pub fn layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    use tracing_subscriber::Layer as _;
    RunLogLayer.with_filter(tracing_subscriber::filter::LevelFilter::INFO)
}

/// Reads the `run_id` field of a run span.
#[derive(Default)]
struct RunIdVisitor(Option<String>);

impl Visit for RunIdVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "run_id" {
            self.0 = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "run_id" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

/// Collects an event's message and fields.
#[derive(Default)]
struct FieldsVisitor {
    message: String,
    fields: Map<String, Value>,
}

impl FieldsVisitor {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
        } else {
            self.fields.insert(field.name().to_string(), value);
        }
    }
}

impl Visit for FieldsVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_string()));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
}

impl<S> tracing_subscriber::Layer<S> for RunLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let meta = attrs.metadata();
        if meta.name() != crate::events::RUN_SPAN || meta.target() != crate::events::TARGET {
            return;
        }
        let mut visitor = RunIdVisitor::default();
        attrs.record(&mut visitor);
        let Some(run_id) = visitor.0 else { return };
        let log = open_logs()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&run_id)
            .cloned();
        if let (Some(log), Some(span)) = (log, ctx.span(id)) {
            span.extensions_mut().insert(log);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if *event.metadata().level() > Level::INFO {
            return;
        }
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        let Some(log) = scope
            .into_iter()
            .find_map(|span| span.extensions().get::<Arc<RunLogFile>>().cloned())
        else {
            return;
        };
        let mut visitor = FieldsVisitor::default();
        event.record(&mut visitor);
        let line = LogLine {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            level: event.metadata().level().to_string(),
            target: event.metadata().target().to_string(),
            message: log.redact(&visitor.message),
            fields: visitor
                .fields
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => (k, Value::String(log.redact(&s))),
                    other => (k, other),
                })
                .collect(),
        };
        log.write(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{RunKind, RunScope};
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn events_of_a_run_span_go_to_its_file_redacted_and_others_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let subscriber = tracing_subscriber::registry().with(layer());
        tracing::subscriber::with_default(subscriber, || {
            let log = RunLog::open(
                dir.path(),
                "run_t1",
                vec![SecretString::from("tok_SECRET_123456")],
            );
            let scope = RunScope::new(RunKind::Sync, "run_t1", "sb", "sqlite:x.db", None);
            tracing::info!("outside any run");
            scope.span().in_scope(|| {
                tracing::warn!(stream = "conversations", "a warning with tok_SECRET_123456");
                tracing::debug!("too detailed");
            });
            tracing::info!(parent: scope.span(), n = 3, "explicit parent");
            drop(log);
        });
        let page = read(dir.path(), "run_t1", 0).unwrap();
        let messages: Vec<&str> = page.lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(
            messages,
            ["a warning with [redacted]", "explicit parent"],
            "{page:?}"
        );
        assert_eq!(page.lines[0].level, "WARN");
        assert_eq!(page.lines[0].fields["stream"], "conversations");
        assert_eq!(page.next, 2);
        let text = page.lines[0].text();
        assert!(
            text.contains("WARN  a warning with [redacted] stream=conversations"),
            "{text}"
        );
        let tail = read(dir.path(), "run_t1", 1).unwrap();
        assert_eq!((tail.lines.len(), tail.next), (1, 2));
        assert_eq!(read(dir.path(), "run_none", 0).unwrap(), LogPage::default());
        assert!(read(dir.path(), "../etc/passwd", 0).is_err());
    }
}
