//! The protocol sink: a [`sync_core::Sink`] whose "database" is the platform reading stdout.
//! For each batch the engine commits, it writes the batch's records (tombstones as records
//! marked deleted), its quarantined records as warnings, and then the state messages of the
//! checkpoint the batch carries — so every state message follows the records it covers, which
//! is the whole checkpoint contract of both Airbyte and Singer. Its `load_state` answers from
//! the `--state` file the platform handed over.
//!
//! How state maps: the Drift source keeps state under keys it chooses (`conversations+
//! messages+contacts` for the conversations pass, which reads the three streams together and
//! keeps one watermark; `accounts`; `users`; …). A key belongs to every stream it names (the
//! part before any `.`, split on `+`), and the state message of a stream carries every key
//! that belongs to it, verbatim. Reading a state back takes the union of the streams' keys,
//! so a run resumes from exactly the committed checkpoint, whichever stream's message the
//! platform kept last.
//!
//! Child streams ([`crate::children`]): the rows of a parent record's selected child tables
//! follow it, so the state messages after them cover them too; a child's state message
//! carries its parent's entries. A parent read only for its children sends nothing itself.

use crate::children::Emit;
use crate::wire::Wire;
use async_trait::async_trait;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use sync_core::{
    Batch, CommitReport, ErrorKind, Quarantined, Record, RunError, Sink, State, Stream,
};

/// The names of the streams a state key belongs to (see the module docs):
/// `conversations+messages+contacts.contacts_known` -> conversations, messages, contacts.
pub fn streams_of(key: &str) -> Vec<&str> {
    key.split('.')
        .next()
        .unwrap_or_default()
        .split('+')
        .filter(|s| !s.is_empty())
        .collect()
}

/// The state entries of `stream` in `state` (every key that belongs to it; a child stream
/// such as `conversation_tags` has its parent's, since it is read with it).
pub fn entries_of(state: &BTreeMap<String, Value>, stream: &str) -> serde_json::Map<String, Value> {
    let stream = crate::children::get(stream).map_or(stream, |c| c.parent.as_str());
    state
        .iter()
        .filter(|(k, _)| streams_of(k).contains(&stream))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The watermark (epoch ms, Drift's clock) of `stream` in `state`: the `watermark` field of
/// the first of its entries that has one (conversations pass, accounts, meetings).
pub fn watermark_of(state: &BTreeMap<String, Value>, stream: &str) -> Option<i64> {
    entries_of(state, stream)
        .values()
        .find_map(|v| v.get("watermark").and_then(Value::as_i64))
}

/// How one protocol spells what the sink writes.
pub(crate) trait Dialect: Send + Sync {
    /// The message of one record (a tombstone included).
    fn record(&self, record: &Record) -> Value;
    /// A message before the first record of `stream` in the run, if the protocol has one.
    fn running(&self, stream: &str) -> Option<Value>;
    /// The message of a quarantined record, if the protocol has one (else it is logged).
    fn quarantined(&self, q: &Quarantined) -> Option<Value>;
    /// The state messages after a commit that changed the state of `changed` streams:
    /// `state` is the whole state now; `counts` the records of each stream written since its
    /// last state message.
    fn states(
        &self,
        changed: &BTreeSet<String>,
        state: &BTreeMap<String, Value>,
        counts: &BTreeMap<String, u64>,
    ) -> Vec<Value>;
}

/// Writes committed batches as protocol messages (see the module docs).
pub struct ProtocolSink {
    dialect: Box<dyn Dialect>,
    wire: Wire,
    selected: BTreeMap<String, Stream>,
    emit: Emit,
    state: BTreeMap<String, Value>,
    start_date_ms: Option<i64>,
    running: HashSet<String>,
    since_state: BTreeMap<String, u64>,
    skipped: u64,
}

impl ProtocolSink {
    pub(crate) fn new(
        dialect: Box<dyn Dialect>,
        wire: Wire,
        selected: &[Stream],
        emit: Emit,
        state: BTreeMap<String, Value>,
        start_date_ms: Option<i64>,
    ) -> ProtocolSink {
        ProtocolSink {
            dialect,
            wire,
            selected: selected
                .iter()
                .map(|s| (s.name.clone(), s.clone()))
                .collect(),
            emit,
            state,
            start_date_ms,
            running: HashSet::new(),
            since_state: BTreeMap::new(),
            skipped: 0,
        }
    }

    /// Records not written because their cursor is older than `start_date`.
    pub fn skipped_before_start(&self) -> u64 {
        self.skipped
    }

    /// Whether `record` is older than `start_date` by its stream's cursor (epoch ms; digit
    /// strings accepted, as Drift sometimes sends them).
    fn before_start(&self, record: &Record) -> bool {
        let (Some(start), false) = (self.start_date_ms, record.tombstone) else {
            return false;
        };
        let Some(cursor) = self
            .selected
            .get(&record.stream)
            .and_then(|s| s.cursor_field.as_deref())
        else {
            return false;
        };
        let value = match record.data.get(cursor) {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        value.is_some_and(|v| v < start)
    }
}

impl ProtocolSink {
    /// Add `record`'s message to `lines` (after its stream's RUNNING message the first time).
    fn emit_record(&mut self, lines: &mut Vec<Value>, record: &Record) {
        if self.running.insert(record.stream.clone()) {
            lines.extend(self.dialect.running(&record.stream));
        }
        lines.push(self.dialect.record(record));
        *self.since_state.entry(record.stream.clone()).or_default() += 1;
    }
}

#[async_trait]
impl Sink for ProtocolSink {
    fn describe(&self) -> String {
        "stdout".to_string()
    }

    async fn prepare(&mut self, _streams: &[Stream]) -> Result<(), RunError> {
        Ok(())
    }

    async fn load_state(&mut self, _scope: &str) -> Result<State, RunError> {
        let mut state = State::new();
        for (k, v) in &self.state {
            state.set(k.clone(), v.clone());
        }
        Ok(state)
    }

    async fn commit(&mut self, batch: Batch) -> Result<CommitReport, RunError> {
        let mut lines = Vec::with_capacity(batch.records.len() + 4);
        let mut report = CommitReport::default();
        for record in &batch.records {
            if self.before_start(record) {
                self.skipped += 1;
                continue;
            }
            if !self.emit.hidden.contains(&record.stream) {
                self.emit_record(&mut lines, record);
            }
            // The full set of the record's children, right after it (tombstones have none).
            let rows: Vec<Record> = match (
                self.emit.children.get(&record.stream),
                self.selected.get(&record.stream),
            ) {
                (Some(children), Some(parent)) => children
                    .iter()
                    .flat_map(|c| sinks::child_rows(parent, &c.table, record))
                    .collect(),
                _ => Vec::new(),
            };
            for row in &rows {
                self.emit_record(&mut lines, row);
            }
            let counts = if record.tombstone {
                &mut report.deleted
            } else {
                &mut report.written
            };
            *counts.entry(record.stream.clone()).or_default() += 1;
        }
        for q in &batch.quarantined {
            tracing::warn!(stream = %q.stream, key = ?q.key, reason = %q.reason, "record quarantined");
            lines.extend(self.dialect.quarantined(q));
        }
        let mut changed = BTreeSet::new();
        for (key, value) in batch.state {
            for s in streams_of(&key)
                .into_iter()
                .filter(|s| self.selected.contains_key(*s))
            {
                changed.extend(self.emit.names(s));
            }
            self.state.insert(key, value);
        }
        if !changed.is_empty() {
            lines.extend(
                self.dialect
                    .states(&changed, &self.state, &self.since_state),
            );
            for s in &changed {
                self.since_state.remove(s);
            }
        }
        self.wire.send_all(&lines).map_err(|e| {
            RunError::new(
                ErrorKind::Sink,
                None,
                format!("cannot write protocol messages to stdout: {e}"),
            )
        })?;
        Ok(report)
    }
}
