//! Engine behaviour: commit discipline, replace, cancellation, failures.

use crate::fakes::*;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use sync_core::testing::{ScriptedSource, Step};
use sync_core::{
    run_sync, Cancel, ErrorKind, RequestMetrics, RunError, RunOptions, RunReport, RunStatus,
    StreamState, StreamStatus, SyncMode,
};

async fn run_script(mem: &Arc<Mutex<Memory>>, steps: Vec<Step>, batch_size: usize) -> RunReport {
    run_with(mem, steps, batch_size, Cancel::new()).await
}

async fn run_with(
    mem: &Arc<Mutex<Memory>>,
    steps: Vec<Step>,
    batch_size: usize,
    cancel: Cancel,
) -> RunReport {
    let source = Arc::new(ScriptedSource::new(catalog(), steps));
    let streams = catalog()
        .select(&["all".into()], SyncMode::Incremental)
        .unwrap();
    let mut dest = MemorySink(mem.clone());
    let mut opts = RunOptions::new("run-1", "test");
    opts.batch_size = Some(batch_size);
    run_sync(source, &mut dest, streams, opts, cancel, None).await
}

fn ids(mem: &Arc<Mutex<Memory>>, stream: &str) -> Vec<i64> {
    mem.lock().unwrap().tables[stream].keys().copied().collect()
}

fn state(mem: &Arc<Mutex<Memory>>, key: &str) -> Option<serde_json::Value> {
    mem.lock()
        .unwrap()
        .state
        .get(&("test".to_string(), key.to_string()))
        .cloned()
}

/// Records per commit of the run's commits that hold records.
fn commit_sizes(mem: &Arc<Mutex<Memory>>) -> Vec<usize> {
    let m = mem.lock().unwrap();
    m.commits
        .iter()
        .map(|b| b.records.len())
        .filter(|n| *n > 0)
        .collect()
}

#[tokio::test]
async fn the_sink_sets_the_batch_size_unless_the_run_does() {
    let steps = || {
        let mut steps = vec![status("conversations", StreamStatus::Started)];
        steps.extend((1..=7).map(|i| rec("conversations", i)));
        steps.push(status("conversations", StreamStatus::Succeeded));
        steps
    };
    // The sink asks for 3 records per commit and the run leaves it to the sink.
    let mem = Arc::new(Mutex::new(Memory {
        batch_size: Some(3),
        ..Memory::default()
    }));
    let source = Arc::new(ScriptedSource::new(catalog(), steps()));
    let streams = catalog()
        .select(&["all".into()], SyncMode::Incremental)
        .unwrap();
    let opts = RunOptions::new("run-1", "test");
    assert_eq!(opts.batch_size, None);
    let report = run_sync(
        source,
        &mut MemorySink(mem.clone()),
        streams,
        opts,
        Cancel::new(),
        None,
    )
    .await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_eq!(commit_sizes(&mem), vec![3, 3, 1]);
    assert_eq!(ids(&mem, "conversations"), (1..=7).collect::<Vec<_>>());
    // A run that sets its own size wins over the sink's.
    let mem = Arc::new(Mutex::new(Memory {
        batch_size: Some(3),
        ..Memory::default()
    }));
    let report = run_script(&mem, steps(), 2).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_eq!(commit_sizes(&mem), vec![2, 2, 2, 1]);
}

#[tokio::test]
async fn every_committed_checkpoint_covers_the_records_before_it() {
    let mem = Arc::new(Mutex::new(Memory::default()));
    let mut steps = vec![status("conversations", StreamStatus::Started)];
    for i in 1..=10 {
        steps.push(rec("conversations", i));
        if i % 3 == 0 {
            steps.push(checkpoint("conversations", json!({"through": i})));
        }
    }
    steps.push(status("conversations", StreamStatus::Succeeded));
    let report = run_script(&mem, steps, 2).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    // Replay the commits: whenever a state is committed, every record up to it is durable.
    let m = mem.lock().unwrap();
    let mut durable = 0;
    for batch in &m.commits {
        durable += batch.records.len() as i64;
        for (_, v) in &batch.state {
            assert!(
                v["through"].as_i64().unwrap() <= durable,
                "state ahead of data: {v}"
            );
        }
    }
    assert_eq!(durable, 10);
    drop(m);
    assert_eq!(state(&mem, "conversations"), Some(json!({"through": 9})));
    let s = report.stream("conversations").unwrap();
    assert_eq!((s.records_read, s.records_written), (10, 10));
    assert_eq!(s.state, StreamState::Succeeded);
}

#[tokio::test]
async fn fatal_source_error_keeps_committed_data_and_checkpoint() {
    let mem = Arc::new(Mutex::new(Memory::default()));
    let steps = vec![
        status("conversations", StreamStatus::Started),
        rec("conversations", 1),
        rec("conversations", 2),
        checkpoint("conversations", json!({"page": 2})),
        rec("conversations", 3),
        Step::Fail(RunError::new(
            ErrorKind::Unauthorized,
            Some("conversations"),
            "token revoked",
        )),
    ];
    let report = run_script(&mem, steps, 100).await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(report.error.as_ref().unwrap().kind, ErrorKind::Unauthorized);
    assert_eq!(ids(&mem, "conversations"), vec![1, 2, 3]);
    assert_eq!(state(&mem, "conversations"), Some(json!({"page": 2})));
    assert_eq!(
        report.stream("conversations").unwrap().state,
        StreamState::Failed
    );
    assert_eq!(report.stream("users").unwrap().state, StreamState::Failed);
}

#[tokio::test]
async fn replace_stream_swaps_its_table_only_when_it_succeeds() {
    let mem = Arc::new(Mutex::new(Memory::default()));
    let first = vec![
        rec("users", 1),
        rec("users", 2),
        checkpoint("users", json!({"hash": "a"})),
        status("users", StreamStatus::Succeeded),
    ];
    run_script(&mem, first, 100).await;
    assert_eq!(ids(&mem, "users"), vec![1, 2]);
    let failing = vec![
        rec("users", 3),
        checkpoint("users", json!({"hash": "b"})),
        status(
            "users",
            StreamStatus::Failed {
                error: "boom".into(),
            },
        ),
    ];
    let report = run_script(&mem, failing, 100).await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(
        report.error.as_ref().unwrap().stream.as_deref(),
        Some("users")
    );
    assert_eq!(
        ids(&mem, "users"),
        vec![1, 2],
        "a failed full refresh keeps the old table"
    );
    assert_eq!(state(&mem, "users"), Some(json!({"hash": "a"})));
    let second = vec![
        rec("users", 3),
        checkpoint("users", json!({"hash": "c"})),
        status("users", StreamStatus::Succeeded),
    ];
    run_script(&mem, second, 100).await;
    assert_eq!(ids(&mem, "users"), vec![3]);
    assert_eq!(state(&mem, "users"), Some(json!({"hash": "c"})));
}

#[tokio::test]
async fn unavailable_stream_does_not_fail_the_run() {
    let mem = Arc::new(Mutex::new(Memory::default()));
    let steps = vec![
        status(
            "users",
            StreamStatus::Unavailable {
                reason: "missing scope user_read".into(),
            },
        ),
        rec("conversations", 1),
        status("conversations", StreamStatus::Succeeded),
    ];
    let report = run_script(&mem, steps, 100).await;
    assert_eq!(report.status, RunStatus::Succeeded);
    let users = report.stream("users").unwrap();
    assert_eq!(users.state, StreamState::Unavailable);
    assert_eq!(users.reason.as_deref(), Some("missing scope user_read"));
}

#[tokio::test]
async fn unchanged_state_and_no_records_commit_nothing() {
    let mem = Arc::new(Mutex::new(Memory::default()));
    let steps = || vec![checkpoint("conversations", json!({"watermark": 5}))];
    run_script(&mem, steps(), 100).await;
    assert_eq!(mem.lock().unwrap().commits.len(), 1);
    run_script(&mem, steps(), 100).await;
    assert_eq!(
        mem.lock().unwrap().commits.len(),
        1,
        "second run rewrote an unchanged state"
    );
}

#[tokio::test]
async fn cancel_commits_what_was_received_and_stops_the_source() {
    let mem = Arc::new(Mutex::new(Memory::default()));
    let mut steps = vec![status("conversations", StreamStatus::Started)];
    for i in 1..=1000 {
        steps.push(rec("conversations", i));
        steps.push(checkpoint("conversations", json!({"through": i})));
        steps.push(Step::Sleep(Duration::from_millis(5)));
    }
    let cancel = Cancel::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        c2.cancel();
    });
    let report = run_with(&mem, steps, 10_000, cancel).await;
    assert_eq!(report.status, RunStatus::Cancelled);
    let committed = ids(&mem, "conversations");
    assert!(
        !committed.is_empty() && committed.len() < 1000,
        "{}",
        committed.len()
    );
    let through = state(&mem, "conversations").unwrap()["through"]
        .as_i64()
        .unwrap();
    assert_eq!(
        through,
        *committed.last().unwrap(),
        "state matches the committed records"
    );
    assert_eq!(
        report.stream("conversations").unwrap().state,
        StreamState::Cancelled
    );
}

#[tokio::test]
async fn sink_failure_ends_the_run_with_a_sink_error() {
    let mem = Arc::new(Mutex::new(Memory {
        fail_commit: Some(0),
        ..Memory::default()
    }));
    let steps = vec![
        rec("conversations", 1),
        checkpoint("conversations", json!(1)),
    ];
    let report = run_script(&mem, steps, 1).await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(report.error.unwrap().kind, ErrorKind::Sink);
    assert_eq!(state(&mem, "conversations"), None);
}

#[tokio::test]
async fn metrics_add_up_per_stream_and_the_source_sees_committed_state() {
    let mem = Arc::new(Mutex::new(Memory::default()));
    mem.lock()
        .unwrap()
        .state
        .insert(("test".into(), "conversations".into()), json!({"w": 1}));
    let m = RequestMetrics {
        requests: 2,
        rate_limited: 1,
        retries: 1,
        wait_ms: 30,
    };
    let steps = vec![
        Step::Send(sync_core::Message::Metrics {
            stream: "conversations".into(),
            metrics: m,
        }),
        Step::Send(sync_core::Message::Metrics {
            stream: "conversations".into(),
            metrics: m,
        }),
    ];
    let source = Arc::new(ScriptedSource::new(catalog(), steps));
    let streams = catalog()
        .select(&["conversations".into()], SyncMode::Incremental)
        .unwrap();
    let mut dest = MemorySink(mem.clone());
    let report = run_sync(
        source.clone(),
        &mut dest,
        streams,
        RunOptions::new("r", "test"),
        Cancel::new(),
        None,
    )
    .await;
    let s = report.stream("conversations").unwrap();
    assert_eq!(
        (
            s.requests.requests,
            s.requests.rate_limited,
            s.requests.wait_ms
        ),
        (4, 2, 60)
    );
    assert_eq!(
        source.seen_state().unwrap().get("conversations"),
        Some(&json!({"w": 1}))
    );
    assert!(report.stream("users").is_none());
}

#[tokio::test]
async fn record_of_an_unselected_stream_fails_the_run() {
    let mem = Arc::new(Mutex::new(Memory::default()));
    let source = Arc::new(ScriptedSource::new(catalog(), vec![rec("users", 1)]));
    let streams = catalog()
        .select(&["conversations".into()], SyncMode::Incremental)
        .unwrap();
    let mut dest = MemorySink(mem.clone());
    let report = run_sync(
        source,
        &mut dest,
        streams,
        RunOptions::new("r", "test"),
        Cancel::new(),
        None,
    )
    .await;
    let err = report.error.unwrap();
    assert_eq!(err.stream.as_deref(), Some("users"));
    assert!(err.message.contains("not selected"));
}

#[tokio::test]
async fn a_record_read_twice_in_a_run_is_written_once_and_reread_once() {
    let mem = Arc::new(Mutex::new(Memory::default()));
    let steps = vec![
        rec("conversations", 1),
        rec("conversations", 2),
        // Batches of 2: the copy of 1 comes in a later commit than the first.
        rec("conversations", 1),
        rec("conversations", 3),
        rec("users", 7),
        rec("users", 7),
        status("users", StreamStatus::Succeeded),
        status("conversations", StreamStatus::Succeeded),
    ];
    let report = run_script(&mem, steps, 2).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    let c = report.stream("conversations").unwrap();
    assert_eq!(
        (c.records_read, c.records_written, c.records_reread),
        (4, 3, 1)
    );
    let u = report.stream("users").unwrap();
    assert_eq!(
        (u.records_read, u.records_written, u.records_reread),
        (2, 1, 1)
    );
    // The next run counts its own rows again: distinct per run.
    let report = run_script(&mem, vec![rec("conversations", 1)], 2).await;
    let c = report.stream("conversations").unwrap();
    assert_eq!((c.records_written, c.records_reread), (1, 0));
}

#[tokio::test]
async fn quarantined_records_are_committed_with_the_batch_and_counted_as_rejected() {
    let mem = Arc::new(Mutex::new(Memory::default()));
    let steps = vec![
        status("conversations", StreamStatus::Started),
        rec("conversations", 1),
        quarantine(
            "conversations",
            Some("abc"),
            "field `id`: invalid type: string \"abc\", expected i64",
            r#"{"id":"abc"}"#,
        ),
        checkpoint("conversations", json!({"through": 2})),
        quarantine("conversations", None, "not an object", "[1]"),
        status("conversations", StreamStatus::Succeeded),
    ];
    let report = run_script(&mem, steps, 100).await;
    assert_eq!(
        report.status,
        RunStatus::SucceededWithRejections,
        "{report:?}"
    );
    assert_eq!(report.status.as_str(), "succeeded_with_rejections");
    let c = report.stream("conversations").unwrap();
    assert_eq!(
        (c.records_read, c.records_written, c.records_rejected),
        (3, 1, 2)
    );
    assert_eq!(c.state, StreamState::Succeeded);
    let m = mem.lock().unwrap();
    // One commit: the record, both quarantined records and the checkpoint together.
    assert_eq!(m.commits.len(), 1, "{:?}", m.commits);
    let batch = &m.commits[0];
    assert_eq!(batch.records.len(), 1);
    assert_eq!(
        batch.state,
        [("conversations".to_string(), json!({"through": 2}))]
    );
    let q: Vec<_> = batch
        .quarantined
        .iter()
        .map(|q| (q.stream.as_str(), q.key.as_deref(), q.raw.as_str()))
        .collect();
    assert_eq!(
        q,
        [
            ("conversations", Some("abc"), r#"{"id":"abc"}"#),
            ("conversations", None, "[1]")
        ]
    );
}

#[tokio::test]
async fn quarantined_records_are_kept_when_the_source_fails_later() {
    let mem = Arc::new(Mutex::new(Memory::default()));
    let steps = vec![
        quarantine("conversations", None, "bad", "1"),
        quarantine("conversations", None, "bad", "2"),
        Step::Sleep(Duration::from_millis(50)),
        Step::Fail(RunError::new(ErrorKind::Failed, None, "boom")),
    ];
    let report = run_script(&mem, steps, 2).await;
    assert_eq!(report.status, RunStatus::Failed);
    let m = mem.lock().unwrap();
    let kept: usize = m.commits.iter().map(|b| b.quarantined.len()).sum();
    assert_eq!(kept, 2, "quarantined records are never dropped");
    assert_eq!(report.stream("conversations").unwrap().records_rejected, 2);
}

#[tokio::test]
async fn tombstones_reach_the_destination_and_their_deletes_are_counted() {
    let mem = Arc::new(Mutex::new(Memory::default()));
    let steps = vec![
        rec("conversations", 1),
        rec("conversations", 2),
        checkpoint("conversations", json!(1)),
        tombstone("conversations", 2),
        // No row: the sink deletes nothing, so nothing is counted.
        tombstone("conversations", 99),
        status("conversations", StreamStatus::Succeeded),
        rec("users", 1),
        rec("users", 2),
        tombstone("users", 3),
        status("users", StreamStatus::Succeeded),
    ];
    let report = run_script(&mem, steps, 2).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    let c = report.stream("conversations").unwrap();
    assert_eq!(
        (c.records_read, c.records_written, c.records_deleted),
        (4, 2, 1),
        "tombstones are read, not written"
    );
    assert_eq!(ids(&mem, "conversations"), vec![1]);
    let u = report.stream("users").unwrap();
    assert_eq!((u.records_written, u.records_deleted), (2, 0));
    // The replace stream's tombstone is in its one commit with its records.
    let m = mem.lock().unwrap();
    let users = m.commits.iter().find(|b| b.replace == ["users"]).unwrap();
    assert_eq!(users.records.len(), 3);
    assert!(users.records[2].tombstone);
}

#[tokio::test]
async fn rate_limited_beyond_the_wait_cap_ends_the_run_rate_limited_with_its_checkpoint() {
    let mem = Arc::new(Mutex::new(Memory::default()));
    let steps = vec![
        status("conversations", StreamStatus::Started),
        rec("conversations", 1),
        checkpoint("conversations", json!({"page": 1})),
        Step::Fail(RunError::new(
            ErrorKind::RateLimited,
            Some("conversations"),
            "still rate limited after waiting 600 s",
        )),
    ];
    let report = run_script(&mem, steps, 100).await;
    assert_eq!(report.status, RunStatus::RateLimited, "{report:?}");
    assert_eq!(report.status.as_str(), "rate_limited");
    assert_eq!(report.error.as_ref().unwrap().kind, ErrorKind::RateLimited);
    assert_eq!(ids(&mem, "conversations"), vec![1]);
    assert_eq!(state(&mem, "conversations"), Some(json!({"page": 1})));
    assert_eq!(
        report.stream("conversations").unwrap().state,
        StreamState::Failed
    );
}
