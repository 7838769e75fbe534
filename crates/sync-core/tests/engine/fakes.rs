//! An in-memory sink and helpers to build scripts.

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use sync_core::testing::Step;
use sync_core::{
    Batch, Catalog, CommitReport, ErrorKind, Message, Record, RunError, Sink, State, Stream,
    StreamStatus, WriteMode,
};

/// What the memory sink holds; shared with the test through an `Arc`.
#[derive(Default, Debug)]
pub struct Memory {
    /// stream -> id -> record data.
    pub tables: BTreeMap<String, BTreeMap<i64, Map<String, Value>>>,
    /// (scope, key) -> state.
    pub state: BTreeMap<(String, String), Value>,
    /// Every committed batch, in order.
    pub commits: Vec<Batch>,
    /// Fail the commit with this index (0-based).
    pub fail_commit: Option<usize>,
    /// Records per commit the sink asks for (`Sink::batch_size`).
    pub batch_size: Option<usize>,
}

pub struct MemorySink(pub Arc<Mutex<Memory>>);

#[async_trait]
impl Sink for MemorySink {
    fn describe(&self) -> String {
        "memory".into()
    }

    fn batch_size(&self) -> Option<usize> {
        self.0.lock().unwrap().batch_size
    }

    async fn prepare(&mut self, streams: &[Stream]) -> Result<(), RunError> {
        let mut m = self.0.lock().unwrap();
        for s in streams {
            m.tables.entry(s.name.clone()).or_default();
        }
        Ok(())
    }

    async fn load_state(&mut self, scope: &str) -> Result<State, RunError> {
        let m = self.0.lock().unwrap();
        let mut state = State::new();
        for ((sc, key), v) in &m.state {
            if sc == scope {
                state.set(key.clone(), v.clone());
            }
        }
        Ok(state)
    }

    async fn commit(&mut self, batch: Batch) -> Result<CommitReport, RunError> {
        let mut m = self.0.lock().unwrap();
        if m.fail_commit == Some(m.commits.len()) {
            return Err(RunError::new(ErrorKind::Sink, None, "disk full"));
        }
        let mut report = CommitReport::default();
        for s in &batch.replace {
            m.tables.insert(s.clone(), BTreeMap::new());
        }
        for r in &batch.records {
            let id = r.data["id"].as_i64().unwrap();
            let table = m.tables.get_mut(&r.stream).unwrap();
            if r.tombstone {
                // Hard delete: the row goes, counted when there was one.
                if table.remove(&id).is_some() {
                    *report.deleted.entry(r.stream.clone()).or_default() += 1;
                }
                continue;
            }
            table.insert(id, r.data.clone());
            *report.written.entry(r.stream.clone()).or_default() += 1;
        }
        for (k, v) in &batch.state {
            m.state.insert((batch.scope.clone(), k.clone()), v.clone());
        }
        m.commits.push(batch);
        Ok(report)
    }
}

pub fn stream(name: &str, write_mode: WriteMode) -> Stream {
    Stream {
        name: name.into(),
        json_schema: json!({"type": "object", "properties": {"id": {"type": "integer"}}}),
        primary_key: vec!["id".into()],
        cursor_field: None,
        write_mode,
        index_fields: vec![],
        flatten: None,
        children: vec![],
    }
}

pub fn catalog() -> Catalog {
    Catalog {
        streams: vec![
            stream("conversations", WriteMode::Upsert),
            stream("users", WriteMode::Replace),
        ],
    }
}

pub fn rec(stream: &str, id: i64) -> Step {
    let mut data = Map::new();
    data.insert("id".into(), json!(id));
    Step::Send(Message::Record(Record::new(stream, data)))
}

pub fn tombstone(stream: &str, id: i64) -> Step {
    let mut key = Map::new();
    key.insert("id".into(), json!(id));
    Step::Send(Message::Record(Record::tombstone(stream, key)))
}

pub fn quarantine(stream: &str, key: Option<&str>, reason: &str, raw: &str) -> Step {
    Step::Send(Message::Quarantine(sync_core::Quarantined::new(
        stream,
        key.map(str::to_owned),
        reason,
        raw,
    )))
}

pub fn checkpoint(stream: &str, value: Value) -> Step {
    Step::Send(Message::Checkpoint {
        key: stream.into(),
        stream: stream.into(),
        state: value,
    })
}

pub fn status(stream: &str, status: StreamStatus) -> Step {
    Step::Send(Message::Status {
        stream: stream.into(),
        status,
    })
}
