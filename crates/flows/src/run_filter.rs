//! Which runs to list: by type (sync, push, dry run), status, data source or saved
//! destination. Shared by `driftbridge runs list --type/--status/--source/--destination`,
//! `GET /api/v1/runs?type=&status=&source=&destination=` and the web UI's Runs filters.

use crate::error::FlowError;
use store::RunRecord;

/// The run types, as `type` spells them: a data source's run, a push into Drift, and a push
/// that only planned what it would send.
pub const RUN_TYPES: [&str; 3] = ["sync", "push", "dry_run"];

/// The type of a run with mode `mode` (`push`, `push-dry-run`, or a sync mode).
pub fn run_type(mode: &str) -> &'static str {
    match mode {
        "push" => "push",
        "push-dry-run" => "dry_run",
        _ => "sync",
    }
}

/// Filters that combine (all must hold); `None` or an empty text: no filter.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Syncs of this data source (name, case-insensitive).
    pub source: Option<String>,
    /// Pushes and dry runs of this saved destination (name, case-insensitive).
    pub destination: Option<String>,
    /// `sync`, `push` or `dry_run`.
    pub run_type: Option<String>,
    /// A run status (`succeeded`, `failed`, ...).
    pub status: Option<String>,
}

fn set(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl RunFilter {
    /// Errors: invalid `type` when it is not one of [`RUN_TYPES`].
    pub fn check(&self) -> Result<(), FlowError> {
        match set(&self.run_type) {
            Some(t) if !RUN_TYPES.contains(&t) => Err(FlowError::invalid(
                "type",
                format!(
                    "unknown run type \"{t}\"; use one of: {}",
                    RUN_TYPES.join(", ")
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Does run `r` pass every filter?
    pub fn keeps(&self, r: &RunRecord) -> bool {
        let flow = r.flow.as_deref().map(store::validate::name_key);
        let kind = run_type(&r.mode);
        let named =
            |wanted: &str| flow.as_deref() == Some(store::validate::name_key(wanted).as_str());
        let source_ok = set(&self.source).is_none_or(|w| kind == "sync" && named(w));
        let destination_ok = set(&self.destination).is_none_or(|w| kind != "sync" && named(w));
        let type_ok = set(&self.run_type).is_none_or(|t| t == kind);
        let status_ok = set(&self.status).is_none_or(|s| s == r.status);
        source_ok && destination_ok && type_ok && status_ok
    }

    /// Runs newest first that pass the filters, among the last `scan` runs, at most `limit`.
    ///
    /// Errors: the store's.
    pub fn list(
        &self,
        store: &store::Store,
        scan: usize,
        limit: usize,
    ) -> Result<Vec<RunRecord>, FlowError> {
        Ok(store
            .list_runs(scan)?
            .into_iter()
            .filter(|r| self.keeps(r))
            .take(limit)
            .collect())
    }
}
