//! JSONL sink: the shared scenarios, file layout, crash recovery, check.

use crate::harness::{self, data_files, obj, strip_meta, Crash, RejectedRow, Row, SinkUnderTest};
use async_trait::async_trait;
use serde_json::{json, Map, Value};
use sinks::files::STATE_FILE;
use sinks::{JsonlSink, OpenOptions, SinkSpec};
use std::path::{Path, PathBuf};
use sync_core::{Batch, Record, RunStatus, Sink};

struct Jsonl(tempfile::TempDir);

impl Jsonl {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }
    fn dir(&self) -> PathBuf {
        self.0.path().join("out")
    }
}

fn lines(path: &Path) -> Vec<Map<String, Value>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| obj(serde_json::from_str(l).unwrap()))
        .collect()
}

#[async_trait]
impl SinkUnderTest for Jsonl {
    fn open(&self) -> Box<dyn Sink> {
        Box::new(JsonlSink::open(&self.dir()))
    }
    fn open_hard(&self) -> Box<dyn Sink> {
        let spec = SinkSpec::Jsonl(self.dir());
        sinks::open_with(
            &spec,
            OpenOptions {
                hard_deletes: true,
                ..Default::default()
            },
        )
        .unwrap()
    }
    async fn rows(&self, stream: &str) -> Vec<Map<String, Value>> {
        data_files(&self.dir(), stream, "jsonl")
            .iter()
            .flat_map(|f| lines(f))
            .map(strip_meta)
            .collect()
    }
    async fn marked(&self, stream: &str) -> Vec<Row> {
        data_files(&self.dir(), stream, "jsonl")
            .iter()
            .flat_map(|f| lines(f))
            .map(|line| Row {
                deleted: line["_deleted"].as_bool().expect("_deleted is a boolean"),
                deleted_at: match &line["_deleted_at"] {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    other => panic!("_deleted_at is {other}"),
                },
                run_id: line["_run_id"].as_str().unwrap().to_owned(),
                data: strip_meta(line),
            })
            .collect()
    }
    async fn rejected(&self) -> Vec<RejectedRow> {
        harness::file_rejected(&self.dir())
    }
    async fn break_state_writes(&self) {
        harness::break_state_file(&self.dir());
    }
    fn is_log(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn full_sync_lands_every_record_once() {
    let sink = Jsonl::new();
    harness::full_sync(&sink).await;
    let files = data_files(&sink.dir(), "conversations", "jsonl");
    assert_eq!(files, [sink.dir().join("conversations/run-1.jsonl")]);
    let first = &lines(&files[0])[0];
    assert_eq!(first["updatedAt_iso"], "2023-11-14T22:13:20.000Z");
    assert_eq!(first["_run_id"], "run-1");
    assert_eq!(
        first["fieldDriftAddedLater"], "extra 0",
        "unknown fields kept"
    );
    let hidden: Vec<_> = std::fs::read_dir(sink.dir().join("conversations"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "no temporary file left: {hidden:?}");
}

#[tokio::test]
async fn killed_before_a_commit_and_resumed_lands_every_record_once() {
    harness::kill_and_resume(&Jsonl::new(), Crash::Before(2)).await;
}

#[tokio::test]
async fn killed_after_a_commit_and_resumed_lands_every_record_once() {
    harness::kill_and_resume(&Jsonl::new(), Crash::After(2)).await;
}

#[tokio::test]
async fn unicode_round_trips() {
    harness::unicode_round_trip(&Jsonl::new()).await;
}

#[tokio::test]
async fn schema_change_between_runs_keeps_both_runs() {
    let sink = Jsonl::new();
    harness::schema_change(&sink).await;
    let v2 = lines(&sink.dir().join("conversations/run-v2.jsonl"));
    assert_eq!(v2[0]["channel"], "email");
    assert_eq!(v2[0]["score"], "high");
}

#[tokio::test]
async fn sandbox_sync_matches_the_sandbox() {
    harness::sandbox_sync(&Jsonl::new()).await;
}

#[tokio::test]
async fn a_messy_org_quarantines_only_its_unfit_records() {
    crate::drift_org::messy_org(&Jsonl::new()).await;
}

#[tokio::test]
async fn renames_and_deletes_in_drift_reach_the_sink() {
    crate::drift_org::changes_reach_the_sink(&Jsonl::new(), false).await;
}

fn rec(id: i64) -> Record {
    Record::new("conversations", obj(json!({"id": id, "status": "open"})))
}

fn batch(ids: std::ops::Range<i64>, next: i64) -> Batch {
    Batch {
        scope: "s".into(),
        run_id: "r1".into(),
        records: ids.map(rec).collect(),
        replace: vec![],
        state: vec![("list".into(), json!({ "next": next }))],
        quarantined: vec![],
    }
}

async fn prepared(dir: &Path) -> JsonlSink {
    let mut d = JsonlSink::open(dir);
    d.check().await.unwrap();
    d.prepare(&[harness::conversations(harness::conversations_schema())])
        .await
        .unwrap();
    d
}

#[tokio::test]
async fn crash_between_rename_and_state_is_undone_at_the_next_open() {
    let sink = Jsonl::new();
    let dir = sink.dir();
    let mut d = prepared(&dir).await;
    d.commit(batch(0..3, 3)).await.unwrap();
    let state_before = std::fs::read(dir.join(STATE_FILE)).unwrap();
    d.commit(batch(3..6, 6)).await.unwrap();
    drop(d);
    // The process died after publishing the second batch's file but before its state:
    // the state file is the first commit's, and a temporary file was half written.
    std::fs::write(dir.join(STATE_FILE), state_before).unwrap();
    std::fs::write(dir.join("conversations/.r1.jsonl.tmp"), "{\"id\": 9").unwrap();

    let mut again = prepared(&dir).await;
    let state = again.load_state("s").await.unwrap();
    assert_eq!(state.get("list"), Some(&json!({"next": 3})));
    let ids: Vec<Value> = sink
        .rows("conversations")
        .await
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(
        ids,
        [json!(0), json!(1), json!(2)],
        "uncommitted lines removed"
    );
    assert!(!dir.join("conversations/.r1.jsonl.tmp").exists());
    // The resumed run sends the second batch again: it lands once.
    again.commit(batch(3..6, 6)).await.unwrap();
    assert_eq!(sink.rows("conversations").await.len(), 6);
}

#[tokio::test]
async fn a_run_file_never_written_to_state_is_removed() {
    let sink = Jsonl::new();
    let dir = sink.dir();
    let mut d = prepared(&dir).await;
    d.commit(batch(0..2, 2)).await.unwrap();
    let state_before = std::fs::read(dir.join(STATE_FILE)).unwrap();
    let mut b = batch(2..4, 4);
    b.run_id = "r2".into();
    d.commit(b).await.unwrap();
    drop(d);
    std::fs::write(dir.join(STATE_FILE), state_before).unwrap();
    prepared(&dir).await;
    assert_eq!(
        data_files(&dir, "conversations", "jsonl"),
        [dir.join("conversations/r1.jsonl")]
    );
}

#[tokio::test]
async fn record_without_primary_key_goes_to_the_rejected_file() {
    let sink = Jsonl::new();
    let mut d = prepared(&sink.dir()).await;
    let mut b = batch(0..1, 1);
    b.records.push(Record::new(
        "conversations",
        obj(json!({"status": "no id"})),
    ));
    let report = d.commit(b).await.unwrap();
    assert_eq!(report.written["conversations"], 1);
    assert_eq!(
        report.rejected[0].reason,
        "primary key field `id` is missing or null"
    );
    let rejected = lines(&sink.dir().join("_rejected/r1.jsonl"));
    assert_eq!(rejected[0]["stream"], "conversations");
    assert_eq!(rejected[0]["primary_key"], Value::Null);
    assert_eq!(rejected[0]["run_id"], "r1");
    assert_eq!(rejected[0]["_raw"], json!({"status": "no id"}));
}

#[tokio::test]
async fn quarantined_records_are_committed_with_the_batch() {
    harness::quarantine_commits_with_the_batch(&Jsonl::new()).await;
}

#[tokio::test]
async fn a_tombstone_is_written_as_a_deleted_record() {
    let sink = Jsonl::new();
    harness::tombstone_marks_and_upsert_revives(&sink).await;
    // The tombstone's line: its key and the metadata, no other field, no twin.
    let tombstone = lines(&sink.dir().join("conversations/r2.jsonl"))[0].clone();
    let keys: Vec<&str> = tombstone.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["id", "_extracted_at", "_run_id", "_deleted", "_deleted_at"]
    );
    let live = lines(&sink.dir().join("conversations/r1.jsonl"))[0].clone();
    assert_eq!(live["_deleted"], json!(false));
    assert_eq!(live["_deleted_at"], Value::Null);
}

#[tokio::test]
async fn the_last_operation_on_a_key_in_a_batch_wins() {
    harness::last_operation_in_a_batch_wins(&Jsonl::new()).await;
}

#[tokio::test]
async fn every_version_is_appended_and_the_newest_is_current() {
    harness::an_older_version_never_overwrites_a_newer_one(&Jsonl::new()).await;
}

#[tokio::test]
async fn hard_deletes_still_write_the_tombstone() {
    harness::hard_deletes_remove_rows(&Jsonl::new()).await;
}

#[tokio::test]
async fn a_replace_batch_writes_its_tombstones_in_the_new_file() {
    harness::replace_upserts_and_keeps_rows_not_in_the_batch(&Jsonl::new()).await;
}

#[tokio::test]
async fn an_engine_run_quarantines_and_deletes() {
    harness::engine_run_quarantines_and_deletes(&Jsonl::new()).await;
}

#[tokio::test]
async fn a_rejected_record_sent_again_after_a_crash_is_kept_once() {
    let sink = Jsonl::new();
    let dir = sink.dir();
    let q =
        sync_core::Quarantined::new("conversations", Some("x".into()), "bad id", r#"{"id":"x"}"#);
    let mut d = prepared(&dir).await;
    let mut b = batch(0..2, 2);
    b.quarantined = vec![q.clone()];
    d.commit(b).await.unwrap();
    drop(d);
    // The run died after that commit; the resumed run reads the same page again.
    let mut again = prepared(&dir).await;
    let mut b = batch(0..3, 3);
    b.quarantined = vec![sync_core::Quarantined {
        extracted_at: q.extracted_at + 5_000,
        ..q
    }];
    again.commit(b).await.unwrap();
    let rejected = sink.rejected().await;
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(sink.rows("conversations").await.len(), 3);
}

#[tokio::test]
async fn check_fails_fast_on_a_directory_it_cannot_create() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let mut d = JsonlSink::open(&file.join("out"));
    let err = d.check().await.unwrap_err();
    assert!(
        err.message.starts_with("jsonl: cannot create directory"),
        "{err}"
    );
    assert!(err.message.contains("choose a writable location"), "{err}");
}

#[tokio::test]
async fn check_refuses_a_directory_of_foreign_files() {
    let sink = Jsonl::new();
    std::fs::create_dir_all(sink.dir().join("conversations")).unwrap();
    std::fs::write(sink.dir().join("conversations/mine.jsonl"), "{}\n").unwrap();
    let err = JsonlSink::open(&sink.dir()).check().await.unwrap_err();
    assert!(err.message.contains("not written by driftbridge"), "{err}");
    assert!(sink.dir().join("conversations/mine.jsonl").exists());
}

#[tokio::test]
async fn after_a_clean_run_the_next_runs_file_holds_everything_it_reads() {
    let sink = Jsonl::new();
    harness::full_sync(&sink).await;
    // An incremental run re-reading 3 records before the watermark (the overlap): a clean
    // run emptied the replay window, so the new run's file holds them (files are logs).
    let recs: Vec<Record> = (0..10)
        .map(|i| Record::new("conversations", harness::conversation(i)))
        .collect();
    let source = harness::ListSource {
        rewind: 3,
        ..harness::ListSource::new(harness::catalog(harness::conversations_schema()), recs, 3)
    };
    let mut d = sink.open();
    let report = harness::run(source, d.as_mut(), &["conversations"], "run-3").await;
    assert_eq!(report.stream("conversations").unwrap().records_written, 3);
    let ids: Vec<Value> = lines(&sink.dir().join("conversations/run-3.jsonl"))
        .iter()
        .map(|l| l["id"].clone())
        .collect();
    assert_eq!(ids, [json!(1007), json!(1008), json!(1009)]);
}

fn another_run(dir: &Path) -> String {
    format!(
        "jsonl: another run is writing to {}: wait for it to finish or choose another directory",
        dir.display()
    )
}

#[tokio::test]
async fn a_second_run_into_the_same_directory_is_refused_and_the_first_runs_file_kept() {
    let sink = Jsonl::new();
    let dir = sink.dir();
    // The first run is under way: it committed 3 records and goes on.
    let mut first = prepared(&dir).await;
    first.commit(batch(0..3, 3)).await.unwrap();

    // A second run into the same directory fails at its start and writes nothing.
    let recs: Vec<Record> = (0..4)
        .map(|i| Record::new("conversations", harness::conversation(i)))
        .collect();
    let source =
        harness::ListSource::new(harness::catalog(harness::conversations_schema()), recs, 2);
    let mut second = JsonlSink::open(&dir);
    let report = harness::run(source, &mut second, &["conversations"], "run-2").await;
    assert_eq!(report.status, RunStatus::Failed, "{report:?}");
    assert_eq!(report.error.unwrap().message, another_run(&dir));
    drop(second);
    // A caller that skips `check` is refused too, before recovery touches any file.
    let err = JsonlSink::open(&dir).load_state("s").await.unwrap_err();
    assert_eq!(err.message, another_run(&dir));
    assert_eq!(
        data_files(&dir, "conversations", "jsonl"),
        [dir.join("conversations/r1.jsonl")]
    );

    // The first run goes on: every line it reported written is there, once.
    first.commit(batch(3..6, 6)).await.unwrap();
    drop(first);
    let ids: Vec<Value> = sink
        .rows("conversations")
        .await
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(ids, (0..6).map(|i| json!(i)).collect::<Vec<_>>());
    // It has ended (dropped): the next run may write.
    let mut next = prepared(&dir).await;
    let state = next.load_state("s").await.unwrap();
    assert_eq!(state.get("list"), Some(&json!({"next": 6})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_racing_to_create_the_directory_one_wins_the_other_is_told_why() {
    for _ in 0..20 {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("new/out");
        let mut a = JsonlSink::open(&dir);
        let mut b = JsonlSink::open(&dir);
        let (ra, rb) = tokio::join!(a.check(), b.check());
        let errors: Vec<String> = [ra, rb]
            .into_iter()
            .filter_map(|r| r.err().map(|e| e.message))
            .collect();
        assert_eq!(errors, [another_run(&dir)]);
    }
}

/// File sinks follow the database layout: each child table is a folder of its own with one
/// line per array element, and contacts' attributes are top-level fields of their lines.
#[tokio::test]
async fn child_tables_are_folders_and_contacts_are_flattened() {
    let sink = Jsonl::new();
    let sandbox = drift_sandbox::start(drift_sandbox::SandboxConfig {
        conversations: 40,
        messages_per_conversation: 2,
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
    let source = source_drift::DriftSource::new(client, Default::default());
    let streams = source_drift::catalog()
        .select(&["all".into()], sync_core::SyncMode::FullRefresh)
        .unwrap();
    let mut dest = sink.open();
    let report = sync_core::run_sync(
        std::sync::Arc::new(source),
        dest.as_mut(),
        streams,
        sync_core::RunOptions::new("run-files", "drift:test"),
        sync_core::Cancel::new(),
        None,
    )
    .await;
    drop(dest);
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    let tags: usize = sink
        .rows("conversations")
        .await
        .iter()
        .map(|c| c["conversationTags"].as_array().map_or(0, Vec::len))
        .sum();
    assert!(tags > 0);
    let rows: Vec<Map<String, Value>> = data_files(&sink.dir(), "conversation_tags", "jsonl")
        .iter()
        .flat_map(|f| lines(f))
        .collect();
    assert_eq!(rows.len(), tags);
    assert!(rows
        .iter()
        .all(|r| r["tag"].is_string() && r["conversation_id"].is_i64()));
    let contacts: Vec<Map<String, Value>> = data_files(&sink.dir(), "contacts", "jsonl")
        .iter()
        .flat_map(|f| lines(f))
        .collect();
    assert!(contacts
        .iter()
        .all(|c| c["email"] == c["attributes"]["email"] && c.contains_key("email")));
    sandbox.shutdown().await;
}
