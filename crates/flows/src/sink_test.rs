//! Testing a sink before saving it (the web UI's Test button next to the sink form and
//! `POST /api/v1/sinks/test`): the same checks a run makes before it reads anything from
//! Drift ([`sync_core::Sink::check`]: reachable, credentials accepted, writable), without a
//! run.

use crate::error::{ErrorKind, FlowError};
use sinks::SinkSpec;
use store::Store;

/// Check sink `sink` (`sqlite:PATH`, `postgres://…`, `jsonl:DIR`, `csv:DIR`, `parquet:DIR`,
/// with its password when it has one) as a run would; returns the sink described without
/// its password (`postgres://user:••••@host/db`). A SQLite file or a directory that does not
/// exist yet is created, as the first run would.
///
/// Errors: invalid `sink` (cannot be parsed, lies inside the data directory); unavailable
/// (cannot be opened or checked: the message says what failed and names the fix, never the
/// password).
pub async fn test_sink(store: &Store, sink: &str) -> Result<String, FlowError> {
    let spec: SinkSpec = sink
        .trim()
        .parse()
        .map_err(|e: String| FlowError::invalid("sink", e))?;
    if let Some(refused) = crate::sink_paths::refusal(&spec, store.data_dir()) {
        return Err(FlowError::invalid("sink", refused));
    }
    let described = spec.describe();
    let mut opened = sinks::open_with(&spec, sinks::OpenOptions::default()).map_err(|e| {
        FlowError::new(
            ErrorKind::Unavailable,
            format!("the sink {described} cannot be opened: {e}"),
        )
    })?;
    opened.check().await.map_err(|e| {
        FlowError::new(
            ErrorKind::Unavailable,
            format!("the sink {described} failed its check: {e}"),
        )
    })?;
    tracing::info!(sink = %described, "sink tested");
    Ok(described)
}
