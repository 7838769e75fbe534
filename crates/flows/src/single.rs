//! One run at a time per data source and per saved destination, across every process on
//! one data directory (CLI runs, `serve`, several `serve`s). The store keeps who runs what
//! ([`store::Store::insert_run_exclusive`]: a `run_locks` row per key, released when the run
//! ends, taken over when its holder's process died); this module names the keys, so the
//! CLI, the REST API, the web UI and the scheduler lock the same thing:
//! - a sync of a saved data source (API run now, UI Run now, a schedule, or the CLI's
//!   `sync --flow NAME` with that source's name): `source:<source id>`;
//! - a sync with `--flow NAME` that is no saved source: `sync-flow:<name, lower case>`;
//! - a push of a saved destination (API, UI, CLI `push --destination NAME`):
//!   `destination:<destination id>`; a push recording another flow name:
//!   `push-flow:<name, lower case>`.
//!
//! Runs without a flow (an ad hoc `sync` or `push`) are not limited. A second start gets
//! [`crate::ErrorKind::Conflict`] naming the run in progress ([`FlowError::running_run`]):
//! 409 from the API, "already running: RUN_ID" and exit 2 from the CLI (unless `--wait`:
//! [`wait_for_end`]).

use crate::error::FlowError;
use std::time::Duration;
use store::Store;

/// What a run locks: its key in the store and what it is for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunKey {
    /// The key (`source:<id>`, `destination:<id>`, ...).
    pub key: String,
    /// For people: `data source "crm"`, `destination "leads"`, `flow "nightly"`.
    pub what: String,
}

/// The key of data source `id` (what the scheduler and the UI check).
pub fn source_key(id: &str) -> String {
    format!("source:{id}")
}

/// The key of saved destination `id`.
pub fn destination_key(id: &str) -> String {
    format!("destination:{id}")
}

/// The key of a sync recording flow name `flow`: its saved data source's when one has that
/// name (or id), else the name's own.
pub fn sync_key(store: &Store, flow: &str) -> RunKey {
    match store.source(flow) {
        Ok(source) => RunKey {
            key: source_key(&source.id),
            what: format!("data source \"{}\"", source.name),
        },
        Err(_) => RunKey {
            key: format!("sync-flow:{}", store::validate::name_key(flow)),
            what: format!("flow \"{flow}\""),
        },
    }
}

/// The key of a push recording flow name `flow`: its saved destination's when one has that
/// name (or id), else the name's own.
pub fn push_key(store: &Store, flow: &str) -> RunKey {
    match store.destination(flow) {
        Ok(d) => RunKey {
            key: destination_key(&d.id),
            what: format!("destination \"{}\"", d.name),
        },
        Err(_) => RunKey {
            key: format!("push-flow:{}", store::validate::name_key(flow)),
            what: format!("flow \"{flow}\""),
        },
    }
}

/// Fail fast when `key` is held by a run in progress (before a start opens its sink or
/// calls Drift); the store checks again, atomically, when the run is recorded.
pub fn check_free(store: &Store, key: &RunKey) -> Result<(), FlowError> {
    match store.running_in(&key.key)? {
        Some(run_id) => Err(store::StoreError::AlreadyRunning {
            what: key.what.clone(),
            run_id,
        }
        .into()),
        None => Ok(()),
    }
}

/// How often [`wait_for_end`] looks.
const POLL: Duration = Duration::from_millis(250);

/// Wait until run `run_id` is no longer `running` (finished, or `interrupted` because its
/// process died); a run that is not in the history counts as ended.
pub async fn wait_for_end(store: &Store, run_id: &str) {
    loop {
        tokio::time::sleep(POLL).await;
        match store.get_run(run_id) {
            Ok(run) if run.status == "running" => continue,
            _ => return,
        }
    }
}
