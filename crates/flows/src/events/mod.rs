//! Run events as types (Vector's `internal_events` is the model): one struct per thing a run
//! reports, whose [`RunEvent::emit`] writes one `tracing` event inside the run's span and
//! counts its metric under one fixed name ([`crate::metrics`]). Runs report only through
//! these, so a run started by the CLI, the server or a worker logs and counts the same.
//!
//! Every run has a [`RunScope`]: the `run` span (fields `run_id`, `kind`, `credential`,
//! `destination`, `flow`) that the run's futures are instrumented with and that every
//! event names as its parent, also when it is emitted from another task (a Drift client's
//! retry). The span is at WARN level, so a default log filter (`warn`) keeps it: every
//! warning logged during a run names its run id, in `serve`'s log as in the CLI's. The
//! per-run log ([`crate::logs`]) is filled from this span.

mod drift;
mod push;
mod run;
mod streams;

pub use drift::{DriftRateLimited, RequestRetried, RunObserver};
pub use push::{emit_outcome, PushRowDone, PushRowRejected};
pub use run::{RunFinished, RunStarted};
pub use streams::{RecordQuarantined, StreamFinished};

/// The `tracing` target of run events and of the run span.
pub const TARGET: &str = "driftbridge::run";

/// The name of the span every run runs in.
pub const RUN_SPAN: &str = "run";

/// What a run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunKind {
    /// Drift streams into a sink.
    Sync,
    /// Records into Drift.
    Push,
}

impl RunKind {
    /// `sync` or `push`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Sync => "sync",
            RunKind::Push => "push",
        }
    }
}

/// A run's identity as its events report it: the span they go into and the labels of their
/// metrics. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RunScope {
    span: tracing::Span,
    run_id: String,
    kind: RunKind,
    credential: String,
}

impl RunScope {
    /// The scope of run `run_id` of `kind` with credential `credential`, writing to
    /// `destination` (a sink as shown, password masked, or `drift:<object>`), started from
    /// data source or destination `flow` if any. Creates the run span.
    pub fn new(
        kind: RunKind,
        run_id: &str,
        credential: &str,
        destination: &str,
        flow: Option<&str>,
    ) -> RunScope {
        // A root span: a run outlives the request or command that started it.
        let span = tracing::warn_span!(
            target: TARGET,
            parent: None,
            RUN_SPAN,
            run_id = %run_id,
            kind = %kind.as_str(),
            credential = %credential,
            destination = %destination,
            flow = tracing::field::Empty,
        );
        if let Some(flow) = flow {
            span.record("flow", flow);
        }
        RunScope {
            span,
            run_id: run_id.to_string(),
            kind,
            credential: credential.to_string(),
        }
    }

    /// The run span.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Sync or push.
    pub fn kind(&self) -> RunKind {
        self.kind
    }

    /// The credential's name (the label of Drift metrics).
    pub fn credential(&self) -> &str {
        &self.credential
    }

    /// Emit `event` in this run.
    pub fn emit(&self, event: impl RunEvent) {
        event.emit(self);
    }
}

/// Something a run reports: a tracing event in the run's span and its metric.
pub trait RunEvent {
    /// Log it in `run`'s span and count it.
    fn emit(self, run: &RunScope);
}
