//! Why a push run stops early and the shared cell its tasks stop on: the dispatcher and
//! the workers check it, and a worker gives each row still queued when it is set a "not
//! sent" outcome (see [`crate::push`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use drift_client::Error;
use sync_core::Cancel;

use crate::engine::Done;

/// Why a run stopped before reading all its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopKind {
    /// 401: the token is invalid, expired or revoked (exit code 3).
    Unauthorized,
    /// 403: the token lacks a scope (exit code 3).
    Forbidden,
    /// 429 beyond the wait cap (exit code 4).
    RateLimited,
    /// The input could not be read any further.
    Input,
    /// Stopped on request (Ctrl-C, SIGTERM: the [`Cancel`] given to [`crate::push_until`]).
    Cancelled,
    /// The outcomes could not be written (results file not writable, disk full): the run
    /// stopped sending so that no more rows end without a saved outcome.
    Results,
}

/// A run that stopped early: why, and the message to show.
#[derive(Clone, Debug, PartialEq)]
pub struct Stop {
    /// Why.
    pub kind: StopKind,
    /// What happened (never contains the token).
    pub message: String,
}

/// Why and whether the run stopped; `flag` is awaitable so the dispatcher stops waiting
/// for input at once. Counts the rows given a "not sent" outcome.
#[derive(Default)]
pub(crate) struct StopCell {
    pub flag: Cancel,
    stop: Mutex<Option<Stop>>,
    pub not_sent: AtomicU64,
}

impl StopCell {
    pub(crate) fn set(&self, stop: Stop) {
        let mut slot = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(stop);
        }
        self.flag.cancel();
    }

    pub(crate) fn is_set(&self) -> bool {
        self.flag.is_cancelled()
    }

    pub(crate) fn take(&self) -> Option<Stop> {
        self.stop.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// The outcome of a row that was read but not sent because the run stopped: `rejected`,
    /// so `--only rejected` re-sends it.
    pub(crate) fn not_sent(&self) -> Done {
        self.not_sent.fetch_add(1, Ordering::SeqCst);
        let why = self
            .stop
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|s| s.message.clone())
            .unwrap_or_else(|| "stopped".into());
        Done::rejected(format!("not sent: the run stopped ({why})"))
    }
}

/// The message of a run stopped by `e` on the results; mentions an earlier stop.
pub(crate) fn results_stop(e: &std::io::Error, earlier: Option<Stop>) -> Stop {
    let after = earlier
        .map(|s| format!(" (after the run had stopped: {})", s.message))
        .unwrap_or_default();
    Stop {
        kind: StopKind::Results,
        message: format!("cannot write the results: {e}{after}"),
    }
}

/// The stop of a run cancelled from outside (Ctrl-C, SIGTERM, a server shutdown).
pub(crate) fn cancelled_stop() -> Stop {
    Stop {
        kind: StopKind::Cancelled,
        message: "the run was stopped (Ctrl-C or SIGTERM)".into(),
    }
}

pub(crate) fn stop_of(e: &Error) -> Stop {
    let kind = match e {
        Error::Unauthorized { .. } => StopKind::Unauthorized,
        Error::Forbidden { .. } => StopKind::Forbidden,
        _ => StopKind::RateLimited,
    };
    Stop {
        kind,
        message: e.to_string(),
    }
}
