//! Which runs to list: by type (sync, push, dry run), status, data source, saved
//! destination or trigger (manual, schedule). Shared by `driftbridge runs list
//! --type/--status/--source/--destination/--trigger`,
//! `GET /api/v1/runs?type=&status=&source=&destination=&trigger=` and the web UI's Runs
//! filters.

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
    /// What started the runs: `manual` or `schedule` ([`store::TRIGGERS`]).
    pub trigger: Option<String>,
}

fn set(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl RunFilter {
    /// Errors: invalid `type` when it is not one of [`RUN_TYPES`], invalid `trigger` when
    /// it is not one of [`store::TRIGGERS`].
    pub fn check(&self) -> Result<(), FlowError> {
        if let Some(t) = set(&self.run_type).filter(|t| !RUN_TYPES.contains(t)) {
            return Err(FlowError::invalid(
                "type",
                format!(
                    "unknown run type \"{t}\"; use one of: {}",
                    RUN_TYPES.join(", ")
                ),
            ));
        }
        if let Some(t) = set(&self.trigger) {
            t.parse::<store::Trigger>()
                .map_err(|e| FlowError::invalid("trigger", e))?;
        }
        Ok(())
    }

    /// Whether any filter is set (a filtered list scans more runs).
    pub fn is_set(&self) -> bool {
        [
            &self.source,
            &self.destination,
            &self.run_type,
            &self.status,
            &self.trigger,
        ]
        .into_iter()
        .any(|f| set(f).is_some())
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
        let trigger_ok = set(&self.trigger).is_none_or(|t| t == r.trigger.as_str());
        source_ok && destination_ok && type_ok && status_ok && trigger_ok
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(mode: &str, trigger: store::Trigger) -> RunRecord {
        RunRecord {
            id: "run_1".into(),
            credential: "acme".into(),
            destination: "sqlite:out.db".into(),
            mode: mode.into(),
            streams: vec![],
            flow: Some("nightly".into()),
            status: "succeeded".into(),
            started_at: 0,
            finished_at: Some(1),
            summary: serde_json::json!({}),
            error: None,
            trigger,
        }
    }

    #[test]
    fn the_trigger_filter_keeps_only_runs_started_that_way() {
        let scheduled = run("incremental", store::Trigger::Schedule);
        let manual = run("incremental", store::Trigger::Manual);
        let filter = RunFilter {
            trigger: Some("schedule".into()),
            source: Some("Nightly".into()),
            ..Default::default()
        };
        assert!(filter.is_set());
        assert!(filter.keeps(&scheduled));
        assert!(!filter.keeps(&manual));
        assert!(!RunFilter::default().is_set());
    }

    #[test]
    fn an_unknown_trigger_is_refused_naming_the_field_and_the_words() {
        let e = RunFilter {
            trigger: Some("cron".into()),
            ..Default::default()
        }
        .check()
        .unwrap_err();
        assert_eq!(e.fields()[0].field, "trigger");
        assert!(e.message().contains("manual, schedule"), "{}", e.message());
    }
}
