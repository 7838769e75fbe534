//! Scenarios every destination passes (full sync, kill-and-resume, unicode, schema change,
//! sandbox sync), written once; each destination's module supplies a [`Sink`] that opens the
//! destination and reads its records back.

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use sync_core::{
    run_sync, Batch, Cancel, Catalog, CommitReport, Destination, Emitter, ErrorKind, Message,
    ReadRequest, Record, RunError, RunOptions, RunReport, RunStatus, Source, SourceError, State,
    Stream, StreamStatus, SyncMode, WriteMode, EPOCH_MS_FORMAT,
};

/// A destination under test: how to open a fresh handle (a new run, or the run after a
/// crash) and how to read back what it holds.
#[async_trait]
pub trait Sink: Sync {
    /// A fresh handle on the same destination.
    fn open(&self) -> Box<dyn Destination>;
    /// Every record of `stream` it holds (all files / all rows), as the source sent it.
    async fn rows(&self, stream: &str) -> Vec<Map<String, Value>>;
}

pub fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

/// Schema of the test `conversations` stream (v1), with every column kind.
pub fn conversations_schema() -> Value {
    json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
        "additionalProperties": true, "properties": {
        "id": {"type": "integer"},
        "contactId": {"type": ["null", "integer"]},
        "status": {"type": ["null", "string"]},
        "updatedAt": {"type": ["null", "integer"], "format": EPOCH_MS_FORMAT},
        "score": {"type": ["null", "number"]},
        "open": {"type": ["null", "boolean"]},
        "tags": {"type": ["null", "array"]},
        "attributes": {"type": ["null", "object"]}
    }})
}

pub fn conversations(schema: Value) -> Stream {
    Stream {
        name: "conversations".into(),
        json_schema: schema,
        primary_key: vec!["id".into()],
        cursor_field: Some("updatedAt".into()),
        write_mode: WriteMode::Upsert,
        index_fields: vec!["contactId".into()],
    }
}

pub fn users() -> Stream {
    Stream {
        name: "users".into(),
        json_schema: json!({"type": "object", "properties": {
            "id": {"type": "integer"}, "name": {"type": ["null", "string"]}}}),
        primary_key: vec!["id".into()],
        cursor_field: None,
        write_mode: WriteMode::Replace,
        index_fields: vec![],
    }
}

/// Conversation `i`: every kind of value, a nested object, an unknown field.
pub fn conversation(i: i64) -> Map<String, Value> {
    obj(json!({
        "id": 1000 + i,
        "contactId": 5000 + i % 7,
        "status": if i % 2 == 0 { "open" } else { "closed" },
        "updatedAt": 1_700_000_000_000_i64 + i * 1000,
        "score": i as f64 / 4.0,
        "open": i % 2 == 0,
        "tags": [{"color": "blue", "name": format!("tag {i}")}],
        "attributes": {"source": "chat", "nested": {"depth": [1, 2, 3]}},
        "fieldDriftAddedLater": format!("extra {i}")
    }))
}

/// Strings that break naive writers: scripts, emoji, combining marks, RTL, quotes,
/// separators and line breaks.
pub const UNICODE: [&str; 6] = [
    "Grüße aus Köln — naïve café",
    "你好，世界 / こんにちは / 안녕하세요",
    "emoji 👋🏽 👨‍👩‍👧 🇯🇵",
    "e\u{301} (combining) and עברית ← RTL",
    "quote \" comma , semicolon ; tab \t",
    "line\nbreak\r\nand trailing backslash \\",
];

/// A source playing a fixed list of upsert records with a checkpoint every `every`
/// records, resuming after the last committed checkpoint (state key `list`: `{"next": n}`),
/// then the full content of the replace stream `users` if it is selected.
pub struct ListSource {
    pub catalog: Catalog,
    pub records: Vec<Record>,
    pub users: Vec<Map<String, Value>>,
    pub every: usize,
    /// On resume, start this many records before the committed position, as the Drift
    /// source re-reads the page in progress: records already committed are sent again.
    pub rewind: usize,
}

impl ListSource {
    pub fn new(catalog: Catalog, records: Vec<Record>, every: usize) -> Self {
        Self {
            catalog,
            records,
            users: vec![
                obj(json!({"id": 1, "name": "Zoë"})),
                obj(json!({"id": 2, "name": "李"})),
            ],
            every,
            rewind: 0,
        }
    }
}

#[async_trait]
impl Source for ListSource {
    fn catalog(&self) -> Catalog {
        self.catalog.clone()
    }

    async fn read(&self, request: ReadRequest, out: Emitter) -> Result<(), SourceError> {
        let start = request
            .state
            .get("list")
            .and_then(|v| v["next"].as_u64())
            .map_or(0, |n| (n as usize).saturating_sub(self.rewind));
        for (i, r) in self.records.iter().enumerate().skip(start) {
            out.send(Message::Record(r.clone())).await?;
            if (i + 1) % self.every == 0 {
                out.send(checkpoint(i + 1)).await?;
            }
        }
        out.send(checkpoint(self.records.len())).await?;
        let selected = |n: &str| request.streams.iter().any(|s| s.stream.name == n);
        if selected("users") {
            for u in &self.users {
                out.send(Message::Record(Record::new("users", u.clone())))
                    .await?;
            }
        }
        for s in &request.streams {
            out.send(Message::Status {
                stream: s.stream.name.clone(),
                status: StreamStatus::Succeeded,
            })
            .await?;
        }
        Ok(())
    }
}

fn checkpoint(next: usize) -> Message {
    Message::Checkpoint {
        key: "list".into(),
        stream: "conversations".into(),
        state: json!({ "next": next }),
    }
}

/// Where a [`Crashing`] destination dies.
#[derive(Clone, Copy, Debug)]
pub enum Crash {
    /// Commit number `n` (0-based) never happens (the process died before it).
    Before(usize),
    /// Commit number `n` is durable, but the process died before the engine heard of it.
    After(usize),
}

/// Wraps a destination and "kills the process" at a commit: that commit's call returns an
/// error and the run ends, as if the process had died there.
pub struct Crashing {
    pub inner: Box<dyn Destination>,
    pub crash: Crash,
    pub commits: usize,
}

#[async_trait]
impl Destination for Crashing {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn check(&mut self) -> Result<(), RunError> {
        self.inner.check().await
    }
    async fn prepare(&mut self, streams: &[Stream]) -> Result<(), RunError> {
        self.inner.prepare(streams).await
    }
    async fn load_state(&mut self, scope: &str) -> Result<State, RunError> {
        self.inner.load_state(scope).await
    }
    async fn commit(&mut self, batch: Batch) -> Result<CommitReport, RunError> {
        let n = self.commits;
        self.commits += 1;
        let killed = || RunError::new(ErrorKind::Destination, None, "killed");
        match self.crash {
            Crash::Before(k) if k == n => Err(killed()),
            Crash::After(k) if k == n => {
                self.inner.commit(batch).await?;
                Err(killed())
            }
            _ => self.inner.commit(batch).await,
        }
    }
}

pub fn options(run_id: &str) -> RunOptions {
    let mut o = RunOptions::new(run_id, "test:scope");
    o.batch_size = 4;
    o.flush_interval = Duration::from_secs(3600);
    o
}

pub async fn run(
    source: ListSource,
    dest: &mut dyn Destination,
    streams: &[&str],
    run_id: &str,
) -> RunReport {
    let names: Vec<String> = streams.iter().map(|s| s.to_string()).collect();
    let selected = source
        .catalog
        .select(&names, SyncMode::Incremental)
        .unwrap();
    run_sync(
        Arc::new(source),
        dest,
        selected,
        options(run_id),
        Cancel::new(),
        None,
    )
    .await
}

/// `rows` hold each expected record exactly once (by `id`) and nothing else.
pub fn assert_exactly(rows: &[Map<String, Value>], expected: &[Map<String, Value>]) {
    let mut by_id: BTreeMap<String, &Map<String, Value>> = BTreeMap::new();
    for r in rows {
        let id = r["id"].to_string();
        assert!(by_id.insert(id.clone(), r).is_none(), "record {id} twice");
    }
    let want: BTreeMap<String, &Map<String, Value>> =
        expected.iter().map(|r| (r["id"].to_string(), r)).collect();
    assert_eq!(
        by_id.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "record ids"
    );
    for (id, r) in &want {
        assert_eq!(by_id[id], *r, "record {id}");
    }
}

pub fn catalog(schema: Value) -> Catalog {
    Catalog {
        streams: vec![conversations(schema), users()],
    }
}

fn records(n: i64) -> Vec<Record> {
    (0..n)
        .map(|i| Record::new("conversations", conversation(i)))
        .collect()
}

fn data(records: &[Record]) -> Vec<Map<String, Value>> {
    records.iter().map(|r| r.data.clone()).collect()
}

/// A run of the engine lands every record once, as sent, and the replace stream's content;
/// the next run starts from the committed state and replaces the replace stream again.
pub async fn full_sync(sink: &impl Sink) {
    let recs = records(10);
    let source = ListSource::new(catalog(conversations_schema()), recs.clone(), 3);
    let mut dest = sink.open();
    let report = run(source, dest.as_mut(), &["all"], "run-1").await;
    // The run is over: the CLI and `serve` drop its destination, which releases a file
    // destination's lock on its directory.
    drop(dest);
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_eq!(report.stream("conversations").unwrap().records_written, 10);
    assert_exactly(&sink.rows("conversations").await, &data(&recs));
    let users = ListSource::new(catalog(conversations_schema()), vec![], 1).users;
    assert_exactly(&sink.rows("users").await, &users);
    let state = sink.open().load_state("test:scope").await.unwrap();
    assert_eq!(state.get("list"), Some(&json!({"next": 10})));
    // A second run: nothing new to read, and the replace stream is replaced by the same
    // content (not emptied, not doubled).
    let source = ListSource::new(catalog(conversations_schema()), recs.clone(), 3);
    let report = run(source, sink.open().as_mut(), &["all"], "run-2").await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_exactly(&sink.rows("conversations").await, &data(&recs));
    assert_exactly(&sink.rows("users").await, &users);
}

/// A run killed at a commit (before it, or after it but before the engine heard) and run
/// again leaves every record exactly once. Checkpoints every 3 records and batches of 4, so
/// commits hold records past the last checkpoint, and the resumed source also re-reads 4
/// records before its checkpoint: all of those are sent again.
pub async fn kill_and_resume(sink: &impl Sink, crash: Crash) {
    let recs = records(23);
    let cat = Catalog {
        streams: vec![conversations(conversations_schema())],
    };
    let mut first = Crashing {
        inner: sink.open(),
        crash,
        commits: 0,
    };
    let source = |recs: Vec<Record>| ListSource {
        rewind: 4,
        ..ListSource::new(cat.clone(), recs, 3)
    };
    let report = run(
        source(recs.clone()),
        &mut first,
        &["conversations"],
        "run-killed",
    )
    .await;
    assert_eq!(report.status, RunStatus::Failed, "{report:?}");
    drop(first);
    let landed = sink.rows("conversations").await.len();
    assert!(
        landed < recs.len(),
        "the killed run stopped early ({landed})"
    );
    let mut second = sink.open();
    let report = run(
        source(recs.clone()),
        second.as_mut(),
        &["conversations"],
        "run-resumed",
    )
    .await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_exactly(&sink.rows("conversations").await, &data(&recs));
}

/// Every string of [`UNICODE`] comes back byte for byte, in a typed column's field and in
/// nested JSON.
pub async fn unicode_round_trip(sink: &impl Sink) {
    let recs: Vec<Record> = UNICODE
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut d = conversation(i as i64);
            d.insert("status".into(), json!(s));
            d.insert(
                "attributes".into(),
                json!({ "text": s, s.to_string(): [s] }),
            );
            Record::new("conversations", d)
        })
        .collect();
    let source = ListSource::new(catalog(conversations_schema()), recs.clone(), 2);
    let mut dest = sink.open();
    let report = run(source, dest.as_mut(), &["conversations"], "run-unicode").await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_exactly(&sink.rows("conversations").await, &data(&recs));
}

/// The v2 schema of the schema-change scenario: a new field `channel`, and `score` turned
/// from a number into a string.
pub fn conversations_schema_v2() -> Value {
    let mut s = conversations_schema();
    s["properties"]["channel"] = json!({"type": ["null", "string"]});
    s["properties"]["score"] = json!({"type": ["null", "string"]});
    s
}

/// Run 1 with the v1 schema, run 2 with v2 (a new field, a type change); both runs' records
/// are kept whole. Returns the run-2 records for destination-specific checks.
pub async fn schema_change(sink: &impl Sink) -> Vec<Record> {
    let first = records(3);
    let mut dest = sink.open();
    let report = run(
        ListSource::new(catalog(conversations_schema()), first.clone(), 2),
        dest.as_mut(),
        &["conversations"],
        "run-v1",
    )
    .await;
    drop(dest);
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    let second: Vec<Record> = (10..13)
        .map(|i| {
            let mut d = conversation(i);
            d.insert("channel".into(), json!("email"));
            d.insert("score".into(), json!("high"));
            Record::new("conversations", d)
        })
        .collect();
    // The source's state says the first 3 records are done: run 2 plays 3 more after them.
    let mut all = first.clone();
    all.extend(second.clone());
    let mut dest = sink.open();
    let report = run(
        ListSource::new(catalog(conversations_schema_v2()), all.clone(), 2),
        dest.as_mut(),
        &["conversations"],
        "run-v2",
    )
    .await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_eq!(report.stream("conversations").unwrap().records_written, 3);
    assert_exactly(&sink.rows("conversations").await, &data(&all));
    second
}

/// A full sync of every stream from an in-process Drift sandbox, compared with what the
/// sandbox serves: per-stream counts from `/__sandbox/counts`, and every conversation
/// exactly as the Drift client reads it.
pub async fn sandbox_sync(sink: &impl Sink) {
    let sandbox = drift_sandbox::start(drift_sandbox::SandboxConfig {
        conversations: 30,
        messages_per_conversation: 3,
        accounts: 12,
        rate_limit_per_min: 0,
        ..Default::default()
    })
    .await
    .unwrap();
    let client = drift_client::Client::new(
        &sandbox.base_url(),
        drift_client::SecretString::from(sandbox.token()),
    )
    .unwrap();
    let source = source_drift::DriftSource::new(client.clone(), Default::default());
    let streams = source_drift::catalog()
        .select(&["all".into()], SyncMode::FullRefresh)
        .unwrap();
    let mut dest = sink.open();
    let report = run_sync(
        Arc::new(source),
        dest.as_mut(),
        streams,
        RunOptions::new("run-sandbox", "drift:test"),
        Cancel::new(),
        None,
    )
    .await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    let counts: Value = reqwest::get(format!("{}/__sandbox/counts", sandbox.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (stream, key) in [
        ("conversations", "conversations"),
        ("messages", "messages"),
        ("contacts", "contacts_in_conversations"),
        ("accounts", "accounts"),
        ("users", "users"),
        ("teams", "teams"),
        ("playbooks", "playbooks"),
        ("meetings", "meetings"),
    ] {
        assert_eq!(
            sink.rows(stream).await.len() as i64,
            counts[key].as_i64().unwrap(),
            "records of {stream}"
        );
    }
    let mut served = Vec::new();
    let mut pages = Box::pin(client.conversations(Default::default()));
    while let Some(page) = pages.next().await {
        for c in page.unwrap().items {
            served.push(obj(serde_json::to_value(c).unwrap()));
        }
    }
    assert_exactly(&sink.rows("conversations").await, &served);
    sandbox.shutdown().await;
}

/// Records from a line-oriented file: drop the metadata the destination added (`_run_id`,
/// `_extracted_at`, and the `<field>_iso` twin of each field).
pub fn strip_meta(mut line: Map<String, Value>) -> Map<String, Value> {
    line.remove("_run_id");
    line.remove("_extracted_at");
    let twins: Vec<String> = line
        .keys()
        .filter(|k| {
            k.strip_suffix("_iso")
                .is_some_and(|base| line.contains_key(base))
        })
        .cloned()
        .collect();
    for k in twins {
        line.remove(&k);
    }
    line
}

/// Visible data files of `stream` under a file destination's `dir`, sorted.
pub fn data_files(dir: &std::path::Path, stream: &str, ext: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join(stream))
        .map(|rd| {
            rd.map(|e| e.unwrap().path())
                .filter(|p| {
                    let name = p.file_name().unwrap().to_string_lossy().into_owned();
                    !name.starts_with('.') && name.ends_with(&format!(".{ext}"))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}
