//! Files of pushes in the data directory: uploaded CSV files (`uploads/<id>.csv`, the input
//! of a push started from the API or the web UI) and results files of those pushes
//! (`results/<run id>.csv`, one row per input row: created, updated, unchanged, skipped or
//! rejected with the reason).
//!
//! Uploads hold personal data, so none is kept longer than needed: an upload is deleted once
//! a real (not dry) run of it is recorded ([`crate::pusher::PushRun`]), and [`sweep`] deletes
//! uploads never run after [`Retention::uploads`] (24 h) and results files after
//! [`Retention::results`] (30 days), by file age. `serve` sweeps at start and then every
//! [`SWEEP_EVERY`].

use crate::error::{ErrorKind, FlowError};
use drift_writer::InputSpec;
use std::path::{Path, PathBuf};

/// How long `serve` keeps uploads and results files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// An upload no real run used is deleted this long after it was uploaded: 24 h.
    pub uploads: std::time::Duration,
    /// A results file is deleted this long after it was written; `None` keeps them: 30 days.
    pub results: Option<std::time::Duration>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            uploads: std::time::Duration::from_secs(24 * 3600),
            results: Some(std::time::Duration::from_secs(30 * 24 * 3600)),
        }
    }
}

/// How often `serve` runs [`sweep`].
pub const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// What [`sweep`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Uploads deleted.
    pub uploads: usize,
    /// Results files deleted.
    pub results: usize,
}

/// Delete, in `data_dir`, the uploads older than `retention.uploads` and the results files
/// older than `retention.results` at time `now` (by modification time). Files that cannot be
/// read or removed are logged and skipped.
pub fn sweep(data_dir: &Path, retention: &Retention, now: std::time::SystemTime) -> Swept {
    let expired = |dir: PathBuf, max_age: std::time::Duration| -> usize {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > max_age);
            let csv = path.extension().is_some_and(|e| e == "csv");
            if old && csv {
                match std::fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cannot delete an expired file")
                    }
                }
            }
        }
        removed
    };
    Swept {
        uploads: expired(uploads_dir(data_dir), retention.uploads),
        results: retention
            .results
            .map_or(0, |age| expired(data_dir.join("results"), age)),
    }
}

/// Run [`sweep`] now and every [`SWEEP_EVERY`] until the task is aborted.
pub fn spawn_sweeper(data_dir: PathBuf, retention: Retention) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        loop {
            tick.tick().await;
            let swept = sweep(&data_dir, &retention, std::time::SystemTime::now());
            if swept != Swept::default() {
                tracing::info!(
                    uploads = swept.uploads,
                    results = swept.results,
                    "deleted expired uploads and results files"
                );
            }
        }
    })
}

fn uploads_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("uploads")
}

/// Letters, digits and `_` only: an id that can name a file without leaving its folder.
fn is_file_id(id: &str) -> bool {
    !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The results file of push run `run_id` started with an upload. Errors: not found for an
/// id that is not a run id.
pub fn results_path(data_dir: &Path, run_id: &str) -> Result<PathBuf, FlowError> {
    if !is_file_id(run_id) {
        return Err(FlowError::new(
            ErrorKind::NotFound,
            format!("no results for run \"{run_id}\""),
        ));
    }
    Ok(data_dir.join("results").join(format!("{run_id}.csv")))
}

/// The file of upload `id`. Errors: an invalid field `upload` when there is no such upload.
pub fn upload_path(data_dir: &Path, id: &str) -> Result<PathBuf, FlowError> {
    if !is_file_id(id) {
        return Err(FlowError::invalid(
            "upload",
            "no file uploaded; upload a CSV file first",
        ));
    }
    let path = uploads_dir(data_dir).join(format!("{id}.csv"));
    if !path.exists() {
        return Err(FlowError::invalid(
            "upload",
            "the uploaded file is gone; upload it again",
        ));
    }
    Ok(path)
}

/// Store an uploaded CSV; returns its id and its columns (header row).
/// Errors: an invalid field `file` when it is empty or not a readable CSV.
pub fn save_upload(data_dir: &Path, bytes: &[u8]) -> Result<(String, Vec<String>), FlowError> {
    if bytes.is_empty() {
        return Err(FlowError::invalid(
            "file",
            "the file is empty; choose a CSV file with a header row",
        ));
    }
    let dir = uploads_dir(data_dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| FlowError::internal(format!("create {}: {e}", dir.display())))?;
    let id = format!("upl_{:016x}", rand::random::<u64>());
    let path = dir.join(format!("{id}.csv"));
    std::fs::write(&path, bytes)
        .map_err(|e| FlowError::internal(format!("write {}: {e}", path.display())))?;
    let columns = InputSpec::Csv(path.clone())
        .open()
        .map_err(|e| {
            let _ = std::fs::remove_file(&path);
            FlowError::invalid("file", without_path(&e.to_string(), &path))
        })?
        .columns
        .unwrap_or_default();
    Ok((id, columns))
}

/// Deletes a file when dropped (an upload after its real run).
#[derive(Debug)]
pub(crate) struct DeleteOnDrop(pub(crate) PathBuf);

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %self.0.display(), error = %e, "cannot delete an upload after its run");
            }
        }
    }
}

/// `message` with the server-side `path` of an upload replaced by "the uploaded file" (the
/// server's directories are none of the client's business).
pub(crate) fn without_path(message: &str, path: &Path) -> String {
    message.replace(&path.display().to_string(), "the uploaded file")
}
