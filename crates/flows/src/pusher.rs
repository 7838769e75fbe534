//! Data destinations (records -> Drift, DESIGN.md §3): an uploaded CSV, a column mapping, a
//! dry run preview, a run, and the results file to download. Glue over
//! `source_drift::writer` (the same writer `driftbridge push` uses).
//!
//! Files live in the data directory: uploads in `uploads/<id>.csv`, results in
//! `results/<run id>.csv` (one row per input row: created, updated, unchanged, skipped or
//! rejected with the reason).
//!
//! Uploads hold personal data, so none is kept longer than needed: an upload is deleted once
//! a real (not dry) run of it is recorded, and [`sweep`] deletes uploads never run after
//! [`Retention::uploads`] (24 h) and results files after [`Retention::results`] (30 days),
//! by file age. `serve` sweeps at start and then every [`SWEEP_EVERY`].

use crate::addresses::AddressPolicy;
use crate::check::{self, FailureKind};
use crate::drift_auth::DriftAuth;
use crate::problem::{ApiError, ApiResult, FieldError};
use crate::push_job;
use serde::Serialize;
use source_drift::writer::{
    self, InputSpec, Key, Mapping, Object, OnDuplicate, PushOptions, ResultsWriter,
};
use std::path::{Path, PathBuf};
use store::{Credential, Store};
use utoipa::ToSchema;

/// Rows of a run shown in a preview (the results file has them all).
pub const PREVIEW_ROWS: usize = 50;

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

/// What to push.
#[derive(Debug, Clone)]
pub struct PushJob {
    /// Credential name or id.
    pub credential: String,
    /// `contacts`, `accounts`, `timeline` or `conversations`.
    pub object: String,
    /// Match key; empty = the object's default.
    pub key: String,
    /// `(column, attribute)` pairs; an empty attribute leaves the column out.
    pub mapping: Vec<(String, String)>,
    /// The upload id (see [`save_upload`]).
    pub upload: String,
    /// Validate and look up only: nothing is written to Drift.
    pub dry_run: bool,
    /// Send columns that are neither mapped nor standard as custom attributes.
    pub include_unmapped: bool,
    /// Several contacts share the key: `update-all`, `first` or `reject`; `None` = reject.
    pub on_duplicate: Option<String>,
    /// The saved destination this job runs, if any (recorded as the run's flow).
    pub destination: Option<String>,
}

/// One row's outcome.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OutcomeRow {
    /// 1-based input row.
    pub row: u64,
    /// Key value matched on.
    pub key: Option<String>,
    /// `created`, `updated`, `unchanged`, `skipped` or `rejected`.
    pub outcome: String,
    /// Drift id written or matched.
    pub drift_id: Option<String>,
    /// Why (every dry-run row, every rejected or skipped row).
    pub reason: Option<String>,
}

/// What a push did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PushReport {
    /// Run id (also in the run history).
    pub run_id: String,
    /// Dry run?
    pub dry_run: bool,
    /// Rows with an outcome.
    pub rows: u64,
    /// Rows per outcome.
    #[schema(value_type = Object)]
    pub counts: std::collections::BTreeMap<String, u64>,
    /// Drift requests made.
    pub requests: u64,
    /// Columns left out (neither mapped nor standard).
    pub ignored_columns: Vec<String>,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
    /// The first [`PREVIEW_ROWS`] outcomes.
    pub preview: Vec<OutcomeRow>,
    /// Where to download the results file.
    pub results_url: String,
    /// Warnings for people, e.g. a dry run with a credential that lacks the write scope (a
    /// real run would be refused).
    pub warnings: Vec<String>,
}

fn uploads_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("uploads")
}

/// The results file of run `run_id`.
pub fn results_path(data_dir: &Path, run_id: &str) -> ApiResult<PathBuf> {
    if !run_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(ApiError::NotFound(format!(
            "no results for run \"{run_id}\""
        )));
    }
    Ok(data_dir.join("results").join(format!("{run_id}.csv")))
}

fn upload_path(data_dir: &Path, id: &str) -> ApiResult<PathBuf> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(ApiError::field(
            "upload",
            "no file uploaded; upload a CSV file first",
        ));
    }
    let path = uploads_dir(data_dir).join(format!("{id}.csv"));
    if !path.exists() {
        return Err(ApiError::field(
            "upload",
            "the uploaded file is gone; upload it again",
        ));
    }
    Ok(path)
}

/// Store an uploaded CSV; returns its id and its columns (header row).
/// Errors: 422 on `file` when it is empty or not a readable CSV.
pub fn save_upload(data_dir: &Path, bytes: &[u8]) -> ApiResult<(String, Vec<String>)> {
    if bytes.is_empty() {
        return Err(ApiError::field(
            "file",
            "the file is empty; choose a CSV file with a header row",
        ));
    }
    let dir = uploads_dir(data_dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| ApiError::Internal(format!("create {}: {e}", dir.display())))?;
    let id = format!("upl_{:016x}", rand::random::<u64>());
    let path = dir.join(format!("{id}.csv"));
    std::fs::write(&path, bytes)
        .map_err(|e| ApiError::Internal(format!("write {}: {e}", path.display())))?;
    let columns = InputSpec::Csv(path.clone())
        .open()
        .map_err(|e| {
            let _ = std::fs::remove_file(&path);
            ApiError::field("file", without_path(&e.to_string(), &path))
        })?
        .columns
        .unwrap_or_default();
    Ok((id, columns))
}

/// Deletes a file when dropped (an upload after its real run).
struct DeleteOnDrop(PathBuf);

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
fn without_path(message: &str, path: &Path) -> String {
    message.replace(&path.display().to_string(), "the uploaded file")
}

/// Check the job's object, key, mapping and duplicate policy (every error, not only the
/// first) and build the writer's options.
pub(crate) fn options(job: &PushJob) -> Result<PushOptions, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut err = |field: &str, message: String| {
        errors.push(FieldError {
            field: field.into(),
            message,
        })
    };
    let object = Object::parse(&job.object);
    if object.is_none() {
        err(
            "object",
            format!(
                "unknown object \"{}\": use contacts, accounts, timeline or conversations",
                job.object
            ),
        );
    }
    let mut mapping = Mapping::default();
    for (column, attribute) in job.mapping.iter().filter(|(_, a)| !a.trim().is_empty()) {
        match Mapping::parse_pairs(&format!("{column}={}", attribute.trim())) {
            Ok(m) => mapping.extend(m),
            Err(e) => err("mapping", format!("column \"{column}\": {e}")),
        }
    }
    let Some(object) = object else {
        return Err(errors);
    };
    let mut opts = PushOptions::new(object);
    if !job.key.trim().is_empty() {
        match Key::parse(&job.key).filter(|k| object.keys().contains(k)) {
            Some(k) => opts.key = k,
            None => err(
                "key",
                format!(
                    "\"{}\" is not a key of {}: use {}",
                    job.key,
                    object.as_str(),
                    object
                        .keys()
                        .iter()
                        .map(|k| k.field())
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
            ),
        }
    }
    if let Some(policy) = job.on_duplicate.as_deref().filter(|p| !p.trim().is_empty()) {
        match OnDuplicate::parse(policy) {
            Some(p) => opts.on_duplicate = p,
            None => err(
                "on_duplicate",
                format!("unknown policy \"{policy}\": use update-all, first or reject"),
            ),
        }
    }
    opts.mapping = mapping;
    opts.include_unmapped = job.include_unmapped;
    opts.dry_run = job.dry_run;
    if errors.is_empty() {
        Ok(opts)
    } else {
        Err(errors)
    }
}

/// Run a push (or a dry run) of an uploaded file; records a run and writes the results file.
/// A credential whose base URL `addresses` refuses is a 422 on `credential`; nothing is sent.
pub async fn run(store: &Store, job: &PushJob, addresses: AddressPolicy) -> ApiResult<PushReport> {
    let opts = options(job).map_err(ApiError::Validation)?;
    let input_path = upload_path(store.data_dir(), &job.upload)?;
    let credential = crate::api::credentials::resolve(store, &job.credential).map_err(|_| {
        ApiError::field(
            "credential",
            format!(
                "no credential \"{}\"; pick one on the Authenticate screen",
                job.credential
            ),
        )
    })?;
    if let Some(refused) = addresses.check_base_url(&credential.base_url) {
        return Err(ApiError::field(
            "credential",
            format!(
                "credential \"{}\" cannot be used: {}",
                credential.name, refused.message
            ),
        ));
    }
    let warnings = scope_check(store, &credential, opts.object, opts.dry_run, addresses).await?;
    let client = DriftAuth::of(store, &credential)?
        .client(&credential.base_url, addresses)
        .rate_limit_per_min(credential.rate_limit_per_min)
        .build()
        .map_err(|e| ApiError::field("credential", AddressPolicy::explain(&e)))?;
    let input = InputSpec::Csv(input_path.clone())
        .open()
        .map_err(|e| ApiError::field("file", without_path(&e.to_string(), &input_path)))?;
    let run_id = store.insert_run(&push_job::new_run(
        &credential.name,
        &opts,
        job.destination.clone(),
    ))?;
    // A real run is the upload's last use: it is deleted however the run ends (the input
    // is open, so the run still reads it whole).
    let _delete_upload = (!opts.dry_run).then(|| DeleteOnDrop(input_path.clone()));
    let path = results_path(store.data_dir(), &run_id)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    let mut results = ResultsWriter::create(&path)
        .map_err(|e| ApiError::Internal(format!("results file: {e}")))?;
    let mut preview = Vec::new();
    let dry_run = opts.dry_run;
    let outcome = writer::push(&client, opts, input, None, |o| {
        if preview.len() < PREVIEW_ROWS {
            preview.push(OutcomeRow {
                row: o.row,
                key: o.key.clone(),
                outcome: o.kind.as_str().into(),
                drift_id: o.drift_id.clone(),
                reason: o.reason.clone(),
            });
        }
        results.write(o)
    })
    .await;
    let finished = results.finish();
    let mut summary = match outcome {
        Ok(s) => s,
        Err(e) => {
            if let Err(err) = push_job::fail(store, &run_id, &credential.name, &e) {
                tracing::error!(run = %run_id, error = %err, "cannot record the end of the run");
            }
            let field = match &e {
                writer::PushError::Drift(d) if d.is_auth() => "credential",
                _ => "file",
            };
            return Err(ApiError::field(
                field,
                without_path(&e.to_string(), &input_path),
            ));
        }
    };
    if let Err(e) = &finished {
        // The run is recorded failed with the counts it reached, not left running.
        summary.results_failed(e);
    }
    let report = PushReport {
        run_id: run_id.clone(),
        dry_run,
        rows: summary.rows,
        counts: summary
            .counts
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), *v))
            .collect(),
        requests: summary.requests,
        ignored_columns: summary.ignored_columns.clone(),
        stopped: summary.stopped.as_ref().map(|s| s.message.clone()),
        preview,
        results_url: format!("/api/v1/runs/{run_id}/results"),
        warnings,
    };
    push_job::finish(store, &run_id, &credential.name, &summary)?;
    Ok(report)
}

/// Before anything is written: compare the credential's scopes (token info, REFERENCE §2.3)
/// with what writing `object` needs (REFERENCE §3, [`store::scopes::WRITE_TARGET_SCOPES`]).
///
/// A missing scope refuses a real run (422 on `credential`, naming the scopes and the fix;
/// no write request is sent) and is a warning for a dry run, which may go on. A rejected key
/// refuses both. When token info cannot be read for another reason (host unreachable, rate
/// limited), the push goes on and reports its own error.
async fn scope_check(
    store: &Store,
    credential: &Credential,
    object: Object,
    dry_run: bool,
    addresses: AddressPolicy,
) -> ApiResult<Vec<String>> {
    let target = format!("push:{}", object.as_str());
    let (report, failure) = check::test_credential(store, credential, &[target], addresses).await?;
    let Some(failure) = failure else {
        return Ok(Vec::new());
    };
    match failure.kind {
        FailureKind::MissingScopes => {
            let missing = report.missing_scopes.join(", ");
            let plural = if report.missing_scopes.len() == 1 {
                ""
            } else {
                "s"
            };
            let message = format!(
                "credential \"{name}\" lacks the scope{plural} {missing} needed to write {object}; create a Drift token with the scopes {needed} and set it with Rotate key on the Authenticate screen (or `driftbridge credentials rotate {name}`)",
                name = credential.name,
                object = object.as_str(),
                needed = report.needed_scopes.join(", "),
            );
            if dry_run {
                Ok(vec![format!("{message}. A real run would be refused.")])
            } else {
                Err(ApiError::field("credential", message))
            }
        }
        FailureKind::Rejected | FailureKind::Config => {
            Err(ApiError::field("credential", failure.message))
        }
        _ => {
            tracing::warn!(credential = %credential.name, error = %failure.message,
                "scope check before a push could not read token info; pushing anyway");
            Ok(Vec::new())
        }
    }
}
