//! The run record of a push (records -> Drift), the same for `driftbridge push` and the
//! server's data destinations: how the run is recorded, which status it ends with, the
//! summary stored with it ([`PushRunSummary`]) and a 401 marking the credential failed. Each
//! caller keeps its own progress and reply (the CLI's `--json` summary, the server's push
//! report); the run itself is [`crate::pusher::PushRun`].

use drift_writer::{OutcomeKind, PushError, PushOptions, StopKind, Summary};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use store::{NewRun, Store, StoreError, Trigger};

/// The run record of a push of `opts.object` with `credential` (mode `push` or
/// `push-dry-run`, destination `drift:<object>`), started by `trigger`.
pub fn new_run(
    credential: &str,
    opts: &PushOptions,
    flow: Option<String>,
    trigger: Trigger,
) -> NewRun {
    NewRun {
        credential: credential.to_owned(),
        destination: format!("drift:{}", opts.object.as_str()),
        mode: if opts.dry_run { "push-dry-run" } else { "push" }.into(),
        streams: vec![opts.object.as_str().into()],
        flow,
        trigger,
    }
}

/// The summary stored with a finished push run, whichever interface ran it; `runs show`,
/// `runs list`, the runs pages and `GET /api/v1/runs/{id}` read this shape.
///
/// Shape: `{"object": "contacts", "dry_run": false, "rows": 30, "counts": {"created": 10,
/// "updated": 18, "unchanged": 0, "skipped": 0, "rejected": 2}, "filtered_out": 0,
/// "requests": 61, "rate_limited": 0, "duration_ms": 2150, "ignored_columns": [],
/// "stopped": null, "not_sent": 0, "unsaved": 0}`. Every field defaults when absent, so summaries stored by earlier
/// versions still read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct PushRunSummary {
    /// `contacts`, `accounts`, `timeline` or `conversations`.
    pub object: String,
    /// Nothing was written (lookups only).
    pub dry_run: bool,
    /// Input rows with an outcome.
    pub rows: u64,
    /// Rows per outcome: `created`, `updated`, `unchanged`, `skipped`, `rejected` (each
    /// present, zero included).
    pub counts: BTreeMap<String, u64>,
    /// Rows of a results file left out by `--only`.
    pub filtered_out: u64,
    /// Drift requests made (lookups and writes, retries included).
    pub requests: u64,
    /// Requests answered 429 and retried.
    pub rate_limited: u64,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
    /// Columns neither mapped nor standard, left out.
    pub ignored_columns: Vec<String>,
    /// Why the run stopped before the end of the input, if it did.
    pub stopped: Option<String>,
    /// Rows read but not sent because the run stopped (counted as `rejected`).
    pub not_sent: u64,
    /// Rows whose outcome could not be written to the results file.
    pub unsaved: u64,
}

impl PushRunSummary {
    /// The stored summary of the writer's `summary`.
    pub fn of(s: &Summary) -> PushRunSummary {
        PushRunSummary {
            object: s.object.as_str().into(),
            dry_run: s.dry_run,
            rows: s.rows,
            counts: OutcomeKind::ALL
                .iter()
                .map(|k| (k.as_str().to_string(), s.count(*k)))
                .collect(),
            filtered_out: s.filtered_out,
            requests: s.requests,
            rate_limited: s.rate_limited,
            duration_ms: u64::try_from(s.elapsed.as_millis()).unwrap_or(u64::MAX),
            ignored_columns: s.ignored_columns.clone(),
            stopped: s.stopped.as_ref().map(|x| x.message.clone()),
            not_sent: s.not_sent,
            unsaved: s.unsaved,
        }
    }

    /// Reads a push run's stored summary. Summaries written by `driftbridge push` before
    /// this type existed kept the counts as top-level keys (`"created": 3`); they are read
    /// into `counts`. A summary that is not an object (a run that failed before its first
    /// row stores `{}`) reads as all zeros.
    pub fn from_run(summary: &Value) -> PushRunSummary {
        let mut s: PushRunSummary = serde_json::from_value(summary.clone()).unwrap_or_default();
        for kind in OutcomeKind::ALL {
            let name = kind.as_str();
            if !s.counts.contains_key(name) {
                let legacy = summary[name].as_u64().unwrap_or(0);
                s.counts.insert(name.to_string(), legacy);
            }
        }
        s
    }

    /// Rows with outcome `kind` (`"created"`, ...); 0 for an unknown kind.
    pub fn count(&self, kind: &str) -> u64 {
        self.counts.get(kind).copied().unwrap_or(0)
    }

    /// Records written to Drift: rows created plus rows updated (0 for a dry run's plans,
    /// which wrote nothing).
    pub fn written(&self) -> u64 {
        if self.dry_run {
            0
        } else {
            self.count("created") + self.count("updated")
        }
    }

    /// One line for people: `30 rows: 10 created, 18 updated, 0 unchanged, 0 skipped,
    /// 2 rejected; 61 Drift requests (0 rate limited) in 2.1 s`; counts are "would be"
    /// outcomes for a dry run. A run that stopped with rows read but not sent adds
    /// `; 5 of the rejected not sent (the run stopped)`.
    pub fn line(&self) -> String {
        let counts: Vec<String> = OutcomeKind::ALL
            .iter()
            .map(|k| format!("{} {}", self.count(k.as_str()), k.as_str()))
            .collect();
        let would = if self.dry_run { "would be " } else { "" };
        let not_sent = if self.not_sent > 0 {
            format!(
                "; {} of the rejected not sent (the run stopped)",
                self.not_sent
            )
        } else {
            String::new()
        };
        format!(
            "{} rows: {would}{}; {} Drift requests ({} rate limited) in {:.1} s{not_sent}",
            self.rows,
            counts.join(", "),
            self.requests,
            self.rate_limited,
            self.duration_ms as f64 / 1000.0
        )
    }
}

/// Status of a finished push: `cancelled` when it was stopped on request (Ctrl-C,
/// SIGTERM), `failed` when it stopped early otherwise (results file not writable
/// included), `succeeded_with_rejections` when rows were rejected, else `succeeded`.
pub fn status(s: &Summary) -> &'static str {
    match (&s.stopped, s.count(OutcomeKind::Rejected)) {
        (Some(stop), _) if stop.kind == StopKind::Cancelled => "cancelled",
        (Some(_), _) => "failed",
        (None, 0) => "succeeded",
        (None, _) => "succeeded_with_rejections",
    }
}

/// Finish push run `run_id`: its status, the [`PushRunSummary`] of `s` and the stop reason
/// as its error; a run stopped by a 401 marks `credential` failed.
pub fn finish(
    store: &Store,
    run_id: &str,
    credential: &str,
    s: &Summary,
) -> Result<(), StoreError> {
    let error = s.stopped.as_ref().map(|x| x.message.as_str());
    let summary = serde_json::to_value(PushRunSummary::of(s)).unwrap_or_default();
    store.finish_run(run_id, status(s), &summary, error)?;
    if let Some(stop) = &s.stopped {
        if stop.kind == StopKind::Unauthorized {
            store.mark_credential_failed(credential, &stop.message)?;
        }
    }
    Ok(())
}

/// Finish push run `run_id` that failed before its first row (status `failed`, the error
/// as its message); a 401 marks `credential` failed.
pub fn fail(
    store: &Store,
    run_id: &str,
    credential: &str,
    e: &PushError,
) -> Result<(), StoreError> {
    store.finish_run(
        run_id,
        "failed",
        &serde_json::json!({}),
        Some(&e.to_string()),
    )?;
    if let PushError::Drift(d @ drift_client::Error::Unauthorized { .. }) = e {
        store.mark_credential_failed(credential, &d.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_summary_stored_by_an_older_cli_push_reads_its_top_level_counts() {
        let old = json!({"object": "contacts", "rows": 3, "created": 2, "rejected": 1,
                         "requests": 7, "results": "out.csv"});
        let s = PushRunSummary::from_run(&old);
        assert_eq!(s.count("created"), 2);
        assert_eq!(s.count("rejected"), 1);
        assert_eq!(s.written(), 2);
        assert_eq!(s.requests, 7);
    }

    #[test]
    fn a_summary_stored_by_an_older_server_push_reads_its_counts() {
        let old = json!({"run_id": "run_1", "dry_run": false, "rows": 4,
                         "counts": {"updated": 4}, "requests": 8, "preview": []});
        let s = PushRunSummary::from_run(&old);
        assert_eq!(
            (s.count("updated"), s.count("created"), s.written()),
            (4, 0, 4)
        );
    }

    #[test]
    fn a_dry_run_writes_nothing_and_says_would_be() {
        let s = PushRunSummary::from_run(&json!({"dry_run": true, "rows": 2,
                                                  "counts": {"created": 2}}));
        assert_eq!(s.written(), 0);
        assert!(s.line().contains("would be 2 created"), "{}", s.line());
    }

    #[test]
    fn an_empty_summary_of_a_failed_run_reads_as_zeros() {
        let s = PushRunSummary::from_run(&json!({}));
        assert_eq!((s.rows, s.written()), (0, 0));
    }
}
