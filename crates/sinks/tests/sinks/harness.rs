//! Scenarios every sink passes (full sync, kill-and-resume, unicode, schema change,
//! sandbox sync, quarantine, tombstones and deletes, replace), written once; each
//! sink's module supplies a [`SinkUnderTest`] that opens the sink and reads its records
//! back.

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use sync_core::testing::{ScriptedSource, Step};
use sync_core::{
    run_sync, Batch, Cancel, Catalog, CommitReport, Emitter, ErrorKind, Message, Quarantined,
    ReadRequest, Record, RunError, RunOptions, RunReport, RunStatus, Sink, Source, SourceError,
    State, Stream, StreamStatus, SyncMode, WriteMode, EPOCH_MS_FORMAT,
};

/// A sink under test: how to open a fresh handle (a new run, or the run after a
/// crash) and how to read back what it holds.
#[async_trait]
pub trait SinkUnderTest: Sync {
    /// A fresh handle on the same sink.
    fn open(&self) -> Box<dyn Sink>;
    /// A fresh handle opened with hard deletes (`OpenOptions { hard_deletes: true, ..Default::default() }`).
    fn open_hard(&self) -> Box<dyn Sink>;
    /// Every record of `stream` it holds (all files / all rows), as the source sent it.
    async fn rows(&self, stream: &str) -> Vec<Map<String, Value>>;
    /// Every row of `stream` with its delete marks: databases' rows by `id`, files' records
    /// in file order (a log: tombstones included).
    async fn marked(&self, stream: &str) -> Vec<Row>;
    /// Every rejected record (`_driftbridge_rejected` by id, `_rejected/` files in order).
    async fn rejected(&self) -> Vec<RejectedRow>;
    /// Make every later commit fail at its state write (after its records, tombstones and
    /// rejected records were written), as a full disk would.
    async fn break_state_writes(&self);
    /// Whether the sink is a log of files (tombstones are written as records).
    fn is_log(&self) -> bool;
}

/// A stream row with its delete marks.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The record as the source sent it (`_raw`).
    pub data: Map<String, Value>,
    /// `_deleted`.
    pub deleted: bool,
    /// `_deleted_at`, RFC 3339 UTC with milliseconds.
    pub deleted_at: Option<String>,
    /// `_run_id`.
    pub run_id: String,
}

/// A row of `_driftbridge_rejected` or a line of `_rejected/`.
#[derive(Clone, Debug, PartialEq)]
pub struct RejectedRow {
    pub stream: String,
    pub primary_key: Option<String>,
    pub reason: String,
    /// `_raw` as JSON (a JSON string when the text is not JSON).
    pub raw: Value,
    pub run_id: String,
    /// RFC 3339 UTC with milliseconds.
    pub rejected_at: String,
}

/// Epoch milliseconds as the sinks write RFC 3339 (UTC, milliseconds, `Z`).
pub fn iso(ms: i64) -> String {
    sync_core::epoch_ms_to_rfc3339(ms).unwrap()
}

/// `_raw` text as the sinks store it: JSON, or a JSON string when it is not JSON.
pub fn raw_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// The rejected records of a file sink's `dir`: every line of `_rejected/*.jsonl`.
pub fn file_rejected(dir: &std::path::Path) -> Vec<RejectedRow> {
    data_files(dir, "_rejected", "jsonl")
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .map(|l| {
            let keys: Vec<&str> = l.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                [
                    "stream",
                    "primary_key",
                    "reason",
                    "_raw",
                    "run_id",
                    "rejected_at"
                ],
                "fields of a rejected line"
            );
            RejectedRow {
                stream: l["stream"].as_str().unwrap().to_owned(),
                primary_key: l["primary_key"].as_str().map(str::to_owned),
                reason: l["reason"].as_str().unwrap().to_owned(),
                raw: l["_raw"].clone(),
                run_id: l["run_id"].as_str().unwrap().to_owned(),
                rejected_at: l["rejected_at"].as_str().unwrap().to_owned(),
            }
        })
        .collect()
}

/// Make a file sink's commits fail at the state file: a folder where its temporary
/// file goes.
pub fn break_state_file(dir: &std::path::Path) {
    std::fs::create_dir_all(dir.join(format!(".{}.tmp", sinks::files::STATE_FILE))).unwrap();
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
        flatten: None,
        children: vec![],
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
        flatten: None,
        children: vec![],
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

/// Where a [`Crashing`] sink dies.
#[derive(Clone, Copy, Debug)]
pub enum Crash {
    /// Commit number `n` (0-based) never happens (the process died before it).
    Before(usize),
    /// Commit number `n` is durable, but the process died before the engine heard of it.
    After(usize),
}

/// Wraps a sink and "kills the process" at a commit: that commit's call returns an
/// error and the run ends, as if the process had died there.
pub struct Crashing {
    pub inner: Box<dyn Sink>,
    pub crash: Crash,
    pub commits: usize,
}

#[async_trait]
impl Sink for Crashing {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn batch_size(&self) -> Option<usize> {
        self.inner.batch_size()
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
        let killed = || RunError::new(ErrorKind::Sink, None, "killed");
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
    o.batch_size = Some(4);
    o.flush_interval = Duration::from_secs(3600);
    o
}

pub async fn run(
    source: ListSource,
    dest: &mut dyn Sink,
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
pub async fn full_sync(sink: &impl SinkUnderTest) {
    let recs = records(10);
    let source = ListSource::new(catalog(conversations_schema()), recs.clone(), 3);
    let mut dest = sink.open();
    let report = run(source, dest.as_mut(), &["all"], "run-1").await;
    // The run is over: the CLI and `serve` drop its sink, which releases a file
    // sink's lock on its directory.
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
pub async fn kill_and_resume(sink: &impl SinkUnderTest, crash: Crash) {
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
pub async fn unicode_round_trip(sink: &impl SinkUnderTest) {
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
/// are kept whole. Returns the run-2 records for sink-specific checks.
pub async fn schema_change(sink: &impl SinkUnderTest) -> Vec<Record> {
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
pub async fn sandbox_sync(sink: &impl SinkUnderTest) {
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
        // Distinct keys: a file sink also logs a tombstone after each soft-deleted account.
        let pk = source_drift::catalog()
            .get(stream)
            .unwrap()
            .primary_key
            .clone();
        let rows = sink.rows(stream).await;
        let keys: std::collections::BTreeSet<String> = rows
            .iter()
            .filter_map(|r| sync_core::key_text(r, &pk))
            .collect();
        assert_eq!(
            keys.len() as i64,
            counts[key].as_i64().unwrap(),
            "records of {stream}"
        );
        if !sink.is_log() {
            assert_eq!(rows.len(), keys.len(), "one row per record of {stream}");
        }
    }
    let mut served = Vec::new();
    let mut pages = Box::pin(client.conversations(Default::default()));
    while let Some(page) = pages.next().await {
        for c in page.unwrap().items {
            // The source completes each list row with the conversation itself
            // (participants, tags, playbook: GET /conversations/{id}).
            let mut row = obj(serde_json::to_value(&c).unwrap());
            let full = client.conversation(c.id).await.unwrap();
            row.extend(obj(serde_json::to_value(full).unwrap()));
            served.push(row);
        }
    }
    assert_exactly(&sink.rows("conversations").await, &served);
    sandbox.shutdown().await;
}

/// Records from a line-oriented file: drop the metadata the sink added (`_run_id`,
/// `_extracted_at`, `_deleted`, `_deleted_at`, and the `<field>_iso` twin of each field).
pub fn strip_meta(mut line: Map<String, Value>) -> Map<String, Value> {
    line.remove("_run_id");
    line.remove("_extracted_at");
    line.remove("_deleted");
    line.remove("_deleted_at");
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

/// Visible data files of `stream` under a file sink's `dir`, sorted.
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

// ---- Quarantine, tombstones, deletes, replace ----

/// Extraction times of the delete scenarios.
pub const T1: i64 = 1_700_000_000_000;
pub const T2: i64 = 1_700_000_060_000;
pub const T3: i64 = 1_700_000_120_000;

/// A record of `stream` read at `at`.
pub fn record_at(stream: &str, data: Value, at: i64) -> Record {
    Record {
        extracted_at: at,
        ..Record::new(stream, obj(data))
    }
}

/// A tombstone of `stream` for `id`, seen at `at`.
pub fn tombstone_at(stream: &str, id: i64, at: i64) -> Record {
    Record {
        extracted_at: at,
        ..Record::tombstone(stream, obj(json!({ "id": id })))
    }
}

/// A conversation `id` with a status.
pub fn conv(id: i64, status: &str) -> Value {
    json!({"id": id, "status": status, "updatedAt": T1})
}

fn direct_batch(run_id: &str, records: Vec<Record>) -> Batch {
    Batch {
        scope: "s".into(),
        run_id: run_id.into(),
        records,
        ..Batch::default()
    }
}

/// A handle checked and prepared for the `conversations` and `users` streams.
pub async fn prepared(mut dest: Box<dyn Sink>) -> Box<dyn Sink> {
    dest.check().await.unwrap();
    dest.prepare(&[conversations(conversations_schema()), users()])
        .await
        .unwrap();
    dest
}

/// The last row of each `id` (for a file log: its current state), by id.
pub fn current(rows: &[Row]) -> BTreeMap<i64, Row> {
    rows.iter()
        .map(|r| (r.data["id"].as_i64().unwrap(), r.clone()))
        .collect()
}

fn live(data: Value, run_id: &str) -> Row {
    Row {
        data: obj(data),
        deleted: false,
        deleted_at: None,
        run_id: run_id.into(),
    }
}

fn deleted(data: Value, at: i64, run_id: &str) -> Row {
    Row {
        data: obj(data),
        deleted: true,
        deleted_at: Some(iso(at)),
        run_id: run_id.into(),
    }
}

fn deleted_count(report: &CommitReport, stream: &str) -> u64 {
    report.deleted.get(stream).copied().unwrap_or(0)
}

/// Quarantined records land in the batch's commit with stream, primary key, reason, raw
/// text and run id; a commit that fails (at its state write) leaves neither its records,
/// nor its rejected records, nor its state.
pub async fn quarantine_commits_with_the_batch(sink: &impl SinkUnderTest) {
    let mut dest = prepared(sink.open()).await;
    let raw = r#"{"id":"x7","status":{"nested":"where a string belongs"}}"#;
    let q = Quarantined {
        extracted_at: T2,
        ..Quarantined::new(
            "conversations",
            Some("x7".into()),
            "field `id`: invalid type: string \"x7\", expected i64",
            raw,
        )
    };
    let not_json = Quarantined {
        extracted_at: T2,
        ..Quarantined::new("users", None, "not a JSON object", "<html>oops</html>")
    };
    let mut b = direct_batch("r1", vec![record_at("conversations", conv(1, "open"), T1)]);
    b.quarantined = vec![q, not_json];
    b.state = vec![("list".into(), json!({"next": 1}))];
    let report = dest.commit(b).await.unwrap();
    assert!(
        report.rejected.is_empty(),
        "the engine counts quarantined records itself: {report:?}"
    );
    let expected = vec![
        RejectedRow {
            stream: "conversations".into(),
            primary_key: Some("x7".into()),
            reason: "field `id`: invalid type: string \"x7\", expected i64".into(),
            raw: serde_json::from_str(raw).unwrap(),
            run_id: "r1".into(),
            rejected_at: iso(T2),
        },
        RejectedRow {
            stream: "users".into(),
            primary_key: None,
            reason: "not a JSON object".into(),
            raw: json!("<html>oops</html>"),
            run_id: "r1".into(),
            rejected_at: iso(T2),
        },
    ];
    assert_eq!(sink.rejected().await, expected);

    // The next commit dies at its state write: its record, its quarantined record and its
    // state are all gone.
    sink.break_state_writes().await;
    let mut b = direct_batch("r1", vec![record_at("conversations", conv(2, "open"), T1)]);
    b.quarantined = vec![Quarantined::new("conversations", None, "bad", "{}")];
    b.state = vec![("list".into(), json!({"next": 2}))];
    dest.commit(b).await.unwrap_err();
    drop(dest);
    assert_eq!(sink.rejected().await, expected);
    let ids: Vec<Value> = sink
        .rows("conversations")
        .await
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(ids, [json!(1)]);
    let state = sink.open().load_state("s").await.unwrap();
    assert_eq!(state.get("list"), Some(&json!({"next": 1})));
}

/// A tombstone marks its row deleted and keeps its data (databases), or is written as a
/// record with `_deleted: true` (files); a second tombstone keeps the first `_deleted_at`;
/// a tombstone for an unknown key writes nothing (databases); an upsert revives the row.
pub async fn tombstone_marks_and_upsert_revives(sink: &impl SinkUnderTest) {
    let mut dest = prepared(sink.open()).await;
    let first: Vec<Record> = (1..=3)
        .map(|i| record_at("conversations", conv(i, "open"), T1))
        .collect();
    let report = dest.commit(direct_batch("r1", first)).await.unwrap();
    assert_eq!(deleted_count(&report, "conversations"), 0);
    for row in sink.marked("conversations").await {
        assert!(!row.deleted && row.deleted_at.is_none(), "live: {row:?}");
    }

    let report = dest
        .commit(direct_batch(
            "r2",
            vec![
                tombstone_at("conversations", 2, T2),
                tombstone_at("conversations", 99, T2),
            ],
        ))
        .await
        .unwrap();
    let rows = sink.marked("conversations").await;
    if sink.is_log() {
        assert_eq!(
            deleted_count(&report, "conversations"),
            2,
            "tombstones written"
        );
        assert_eq!(
            rows[3..],
            [
                deleted(json!({"id": 2}), T2, "r2"),
                deleted(json!({"id": 99}), T2, "r2")
            ]
        );
    } else {
        assert_eq!(deleted_count(&report, "conversations"), 1, "rows marked");
        assert_eq!(
            rows,
            [
                live(conv(1, "open"), "r1"),
                deleted(conv(2, "open"), T2, "r2"),
                live(conv(3, "open"), "r1"),
            ],
            "the row keeps its data; no row for the unknown key"
        );
    }

    // Deleted again: the row keeps its first deletion time.
    let report = dest
        .commit(direct_batch(
            "r3",
            vec![tombstone_at("conversations", 2, T3)],
        ))
        .await
        .unwrap();
    if !sink.is_log() {
        assert_eq!(
            deleted_count(&report, "conversations"),
            0,
            "nothing changed"
        );
        assert_eq!(
            current(&sink.marked("conversations").await)[&2],
            deleted(conv(2, "open"), T2, "r2")
        );
    }

    // It comes back: live again with its new data.
    dest.commit(direct_batch(
        "r4",
        vec![record_at("conversations", conv(2, "reopened"), T3)],
    ))
    .await
    .unwrap();
    let now = current(&sink.marked("conversations").await);
    assert_eq!(now[&2], live(conv(2, "reopened"), "r4"));
    assert_eq!(now[&1], live(conv(1, "open"), "r1"));
}

/// Inside one batch the last operation on a key wins: upsert then tombstone leaves the
/// upserted data deleted; tombstone then upsert leaves the row live.
pub async fn last_operation_in_a_batch_wins(sink: &impl SinkUnderTest) {
    let mut dest = prepared(sink.open()).await;
    dest.commit(direct_batch(
        "r1",
        vec![
            record_at("conversations", conv(5, "old"), T1),
            record_at("conversations", conv(6, "old"), T1),
        ],
    ))
    .await
    .unwrap();
    let report = dest
        .commit(direct_batch(
            "r2",
            vec![
                // 4 is new: upserted, then deleted in the same batch.
                record_at("conversations", conv(4, "a"), T2),
                tombstone_at("conversations", 4, T2),
                // 5 is deleted, then comes back.
                tombstone_at("conversations", 5, T2),
                record_at("conversations", conv(5, "b"), T2),
                // 6: upsert, delete, upsert, delete: the last data, deleted.
                record_at("conversations", conv(6, "c"), T2),
                tombstone_at("conversations", 6, T2),
                record_at("conversations", conv(6, "d"), T2),
                tombstone_at("conversations", 6, T3),
            ],
        ))
        .await
        .unwrap();
    let rows = sink.marked("conversations").await;
    let now = current(&rows);
    if sink.is_log() {
        assert_eq!(
            deleted_count(&report, "conversations"),
            4,
            "tombstones written"
        );
        assert_eq!(now[&4], deleted(json!({"id": 4}), T2, "r2"));
        assert_eq!(now[&5], live(conv(5, "b"), "r2"));
        assert_eq!(now[&6], deleted(json!({"id": 6}), T3, "r2"));
        // The log keeps the data before the tombstone.
        let sixes: Vec<&Row> = rows.iter().filter(|r| r.data["id"] == 6).collect();
        assert_eq!(sixes[sixes.len() - 2], &live(conv(6, "d"), "r2"));
    } else {
        assert_eq!(deleted_count(&report, "conversations"), 2, "rows 4 and 6");
        assert_eq!(
            rows,
            [
                deleted(conv(4, "a"), T2, "r2"),
                live(conv(5, "b"), "r2"),
                deleted(conv(6, "d"), T3, "r2"),
            ]
        );
    }
}

/// Issue 22: a record read earlier (an incremental sync overlapping the real-time path)
/// never overwrites a newer version of it in a database: the upsert keeps the higher
/// `updatedAt` (an equal one is written). A file sink appends every version; the newest by
/// `updatedAt` is the current one when read.
pub async fn an_older_version_never_overwrites_a_newer_one(sink: &impl SinkUnderTest) {
    let version = |status: &str, at: i64| json!({"id": 7, "status": status, "updatedAt": at});
    let mut dest = prepared(sink.open()).await;
    for (run, status, at) in [("webhook", "newer", T2), ("sync", "older", T1)] {
        dest.commit(direct_batch(
            run,
            vec![record_at("conversations", version(status, at), at)],
        ))
        .await
        .unwrap();
    }
    let rows = sink.marked("conversations").await;
    if sink.is_log() {
        let newest = rows
            .iter()
            .max_by_key(|r| r.data["updatedAt"].as_i64())
            .unwrap();
        assert_eq!(newest, &live(version("newer", T2), "webhook"));
    } else {
        assert_eq!(rows, [live(version("newer", T2), "webhook")]);
    }
    // A newer version (or the same one again) is written.
    dest.commit(direct_batch(
        "sync2",
        vec![record_at("conversations", version("newest", T3), T3)],
    ))
    .await
    .unwrap();
    let rows = sink.marked("conversations").await;
    let newest = rows
        .iter()
        .max_by_key(|r| r.data["updatedAt"].as_i64())
        .unwrap();
    assert_eq!(newest, &live(version("newest", T3), "sync2"));
    if !sink.is_log() {
        assert_eq!(rows.len(), 1);
    }
}

/// With hard deletes a tombstone removes its row in a database (live or already marked);
/// a file sink writes the tombstone all the same.
pub async fn hard_deletes_remove_rows(sink: &impl SinkUnderTest) {
    let mut dest = prepared(sink.open()).await;
    dest.commit(direct_batch(
        "r1",
        (1..=3)
            .map(|i| record_at("conversations", conv(i, "open"), T1))
            .collect(),
    ))
    .await
    .unwrap();
    dest.commit(direct_batch(
        "r2",
        vec![tombstone_at("conversations", 3, T2)],
    ))
    .await
    .unwrap();
    drop(dest);
    let mut hard = prepared(sink.open_hard()).await;
    let report = hard
        .commit(direct_batch(
            "r3",
            vec![
                tombstone_at("conversations", 1, T3),
                tombstone_at("conversations", 3, T3),
                tombstone_at("conversations", 99, T3),
            ],
        ))
        .await
        .unwrap();
    let rows = sink.marked("conversations").await;
    if sink.is_log() {
        assert_eq!(deleted_count(&report, "conversations"), 3);
        let now = current(&rows);
        assert_eq!(now[&1], deleted(json!({"id": 1}), T3, "r3"));
        assert_eq!(now[&2], live(conv(2, "open"), "r1"));
        assert_eq!(now[&99], deleted(json!({"id": 99}), T3, "r3"));
        let first: Vec<Row> = (1..=3).map(|i| live(conv(i, "open"), "r1")).collect();
        assert_eq!(rows[..3], first, "nothing taken back from the files");
    } else {
        assert_eq!(
            deleted_count(&report, "conversations"),
            2,
            "a live and a marked row removed"
        );
        assert_eq!(rows, [live(conv(2, "open"), "r1")]);
    }
}

/// A replace batch (full-refresh stream) no longer empties a database table: rows not in
/// it stay, the tombstones in it mark rows deleted. A file sink's new file holds
/// the batch's records, tombstones included.
pub async fn replace_upserts_and_keeps_rows_not_in_the_batch(sink: &impl SinkUnderTest) {
    let mut dest = prepared(sink.open()).await;
    let user = |id: i64, name: &str| json!({"id": id, "name": name});
    let mut first = direct_batch(
        "r1",
        vec![
            record_at("users", user(1, "Ana"), T1),
            record_at("users", user(2, "Bo"), T1),
            record_at("users", user(3, "Cy"), T1),
        ],
    );
    first.replace = vec!["users".into()];
    dest.commit(first).await.unwrap();
    let mut second = direct_batch(
        "r2",
        vec![
            record_at("users", user(1, "Ana B."), T2),
            tombstone_at("users", 3, T2),
        ],
    );
    second.replace = vec!["users".into()];
    let report = dest.commit(second).await.unwrap();
    assert_eq!(deleted_count(&report, "users"), 1);
    let rows = sink.marked("users").await;
    if sink.is_log() {
        assert_eq!(
            rows,
            [
                live(user(1, "Ana B."), "r2"),
                deleted(json!({"id": 3}), T2, "r2")
            ],
            "the new file replaces the old one"
        );
    } else {
        assert_eq!(
            rows,
            [
                live(user(1, "Ana B."), "r2"),
                live(user(2, "Bo"), "r1"),
                deleted(user(3, "Cy"), T2, "r2"),
            ]
        );
    }
}

/// A run of the engine: quarantined records and tombstones reach the sink and the
/// run's figures (written = distinct keys, deleted, rejected; `succeeded_with_rejections`).
pub async fn engine_run_quarantines_and_deletes(sink: &impl SinkUnderTest) {
    let send = |m: Message| Step::Send(m);
    let steps = vec![
        send(Message::Record(record_at(
            "conversations",
            conv(1, "a"),
            T1,
        ))),
        send(Message::Record(record_at(
            "conversations",
            conv(2, "a"),
            T1,
        ))),
        send(Message::Record(record_at(
            "conversations",
            conv(1, "b"),
            T1,
        ))),
        send(Message::Quarantine(Quarantined::new(
            "conversations",
            Some("x".into()),
            "field `id`: not a number",
            r#"{"id":"x"}"#,
        ))),
        send(Message::Record(tombstone_at("conversations", 2, T2))),
        send(Message::Checkpoint {
            key: "list".into(),
            stream: "conversations".into(),
            state: json!({"next": 5}),
        }),
        send(Message::Status {
            stream: "conversations".into(),
            status: StreamStatus::Succeeded,
        }),
    ];
    let cat = Catalog {
        streams: vec![conversations(conversations_schema())],
    };
    let source = Arc::new(ScriptedSource::new(cat.clone(), steps));
    let streams = cat.select(&["all".into()], SyncMode::Incremental).unwrap();
    let mut dest = sink.open();
    let report = run_sync(
        source,
        dest.as_mut(),
        streams,
        options("run-q"),
        Cancel::new(),
        None,
    )
    .await;
    drop(dest);
    assert_eq!(
        report.status,
        RunStatus::SucceededWithRejections,
        "{report:?}"
    );
    let s = report.stream("conversations").unwrap();
    assert_eq!(
        (s.records_read, s.records_written, s.records_reread),
        (5, 2, 1)
    );
    assert_eq!((s.records_deleted, s.records_rejected), (1, 1));
    let rejected = sink.rejected().await;
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].primary_key.as_deref(), Some("x"));
    assert_eq!(rejected[0].run_id, "run-q");
    let now = current(&sink.marked("conversations").await);
    assert_eq!(now[&1], live(conv(1, "b"), "run-q"));
    assert!(now[&2].deleted && now[&2].deleted_at == Some(iso(T2)));
}

/// The `ORDER BY` columns of a database sink's `stream` table: its primary key's columns
/// (`id` for the test streams, `accountId` for accounts), quoted.
pub fn order_by(stream: &str) -> String {
    source_drift::catalog()
        .get(stream)
        .map(|s| s.primary_key.clone())
        .unwrap_or_else(|| vec!["id".into()])
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ")
}
