//! A push's rows: each is counted by outcome; a rejected one is also logged.

use super::{RunEvent, RunScope, TARGET};
use drift_writer::{Object, Outcome, OutcomeKind};

/// A push row was rejected: logged with its reason (the results file has every row) and
/// counted under outcome `rejected`.
#[derive(Debug)]
pub struct PushRowRejected<'a> {
    /// What the push writes.
    pub object: Object,
    /// The row's outcome (kind `rejected`).
    pub outcome: &'a Outcome,
}

impl RunEvent for PushRowRejected<'_> {
    fn emit(self, run: &RunScope) {
        let o = self.outcome;
        let reason = o.reason.as_deref().unwrap_or("");
        tracing::warn!(target: TARGET, parent: run.span(), object = self.object.as_str(),
            row = o.row, key = o.key.as_deref().unwrap_or(""), reason,
            "push row {} rejected: {reason}", o.row);
        count(self.object, OutcomeKind::Rejected);
    }
}

/// A push row ended otherwise (created, updated, unchanged, skipped): counted by outcome,
/// not logged (the results file and the run's summary have it).
#[derive(Debug)]
pub struct PushRowDone<'a> {
    /// What the push writes.
    pub object: Object,
    /// The row's outcome.
    pub outcome: &'a Outcome,
}

impl RunEvent for PushRowDone<'_> {
    fn emit(self, _run: &RunScope) {
        count(self.object, self.outcome.kind);
    }
}

/// The event of `outcome`: [`PushRowRejected`] or [`PushRowDone`].
pub fn emit_outcome(run: &RunScope, object: Object, outcome: &Outcome) {
    if outcome.kind == OutcomeKind::Rejected {
        run.emit(PushRowRejected { object, outcome });
    } else {
        run.emit(PushRowDone { object, outcome });
    }
}

fn count(object: Object, outcome: OutcomeKind) {
    ::metrics::counter!(crate::metrics::PUSH_ROWS, "object" => object.as_str(),
        "outcome" => outcome.as_str())
    .increment(1);
}
