//! Source state: one JSON value per stream (or per group of streams read together).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The state a source resumes from: a JSON value per state key. Keys are chosen by the source
/// (usually the stream name); values are opaque to the engine and the sink, which
/// store them verbatim in the same commit as the records they cover.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct State {
    entries: BTreeMap<String, Value>,
}

impl State {
    /// Empty state: every stream starts from the beginning.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value stored under `key`, if any.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.get(key)
    }

    /// Store `value` under `key`, replacing the previous value.
    pub fn set(&mut self, key: impl Into<String>, value: Value) {
        self.entries.insert(key.into(), value);
    }

    /// Every (key, value) pair, ordered by key.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.entries.iter()
    }

    /// Whether no key is stored.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
