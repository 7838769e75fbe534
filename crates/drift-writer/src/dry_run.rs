//! A dry run's memory of its own plan (see [`DryRun`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde_json::{Map, Value};

/// What a dry run has planned so far, so that a later row meets the effects of earlier
/// rows as the real run meets them in Drift. The real run writes a row before the next row
/// with the same key is looked up (one worker per key, input order), so a row whose key an
/// earlier row creates finds that object and updates it, and values an earlier row set are
/// unchanged. A dry run writes nothing, so the writers record here what they would have
/// written and consult it after each lookup. Keys are namespaced by the writer.
///
/// Memory stays bounded: at most [`DRY_PLAN_LIMIT`] objects are remembered; past that a
/// warning is logged and further new objects are planned as before, without the effects of
/// earlier rows on them.
#[derive(Default)]
pub(crate) struct DryRun {
    planned: Mutex<HashMap<String, DryObject>>,
    full: AtomicBool,
}

/// Objects a dry run remembers at most (a few hundred bytes each).
pub(crate) const DRY_PLAN_LIMIT: usize = 100_000;

/// An object as a dry run expects Drift to hold it after the rows planned so far.
#[derive(Clone, Debug)]
pub(crate) struct DryObject {
    /// The row that would create it; `None` for an object already in Drift.
    pub created_by: Option<u64>,
    /// Its values: a contact's attributes, or an account as JSON.
    pub value: Map<String, Value>,
}

impl DryRun {
    /// What earlier rows of the run would have made of the object under `key`.
    pub(crate) fn get(&self, key: &str) -> Option<DryObject> {
        let planned = self.planned.lock().unwrap_or_else(|e| e.into_inner());
        planned.get(key).cloned()
    }

    /// Records what a row would make of the object under `key`.
    pub(crate) fn put(&self, key: String, object: DryObject) {
        let mut planned = self.planned.lock().unwrap_or_else(|e| e.into_inner());
        if planned.len() < DRY_PLAN_LIMIT || planned.contains_key(&key) {
            planned.insert(key, object);
        } else if !self.full.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                limit = DRY_PLAN_LIMIT,
                "dry run: over {DRY_PLAN_LIMIT} objects planned; later rows are planned \
                 without the effects of earlier rows on further objects"
            );
        }
    }
}
