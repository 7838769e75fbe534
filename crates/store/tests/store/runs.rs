//! Run history.

use crate::helpers::*;
use store::{NewRun, StoreError, Trigger};

fn new_run(credential: &str) -> NewRun {
    NewRun {
        credential: credential.into(),
        destination: "sqlite:out.db".into(),
        mode: "incremental".into(),
        streams: vec!["conversations".into(), "messages".into()],
        flow: None,
        trigger: Trigger::Manual,
    }
}

#[test]
fn insert_then_finish_then_read() {
    let (_dir, store) = new_store();
    let id = store.insert_run(&new_run("sandbox")).unwrap();
    assert!(id.starts_with("run_"), "{id}");
    let run = store.get_run(&id).unwrap();
    assert_eq!(run.status, "running");
    assert_eq!(run.finished_at, None);
    assert_eq!(run.streams, ["conversations", "messages"]);
    assert_eq!(run.summary, serde_json::json!({}));

    let summary = serde_json::json!({"conversations": {"records": 200}, "requests": 12});
    store
        .finish_run(
            &id,
            "succeeded_with_rejections",
            &summary,
            Some("2 records rejected"),
        )
        .unwrap();
    let run = store.get_run(&id).unwrap();
    assert_eq!(run.status, "succeeded_with_rejections");
    assert_eq!(run.summary, summary);
    assert_eq!(run.error.as_deref(), Some("2 records rejected"));
    assert!(run.finished_at.unwrap() >= run.started_at);
}

#[test]
fn each_run_keeps_what_started_it() {
    let (_dir, store) = new_store();
    let manual = store.insert_run(&new_run("a")).unwrap();
    let scheduled = NewRun {
        trigger: Trigger::Schedule,
        flow: Some("nightly".into()),
        ..new_run("a")
    };
    let by_schedule = store.insert_run(&scheduled).unwrap();
    let skipped = store
        .record_skipped_run(&scheduled, "still running", 1_700_000_000_000)
        .unwrap();
    assert_eq!(store.get_run(&manual).unwrap().trigger, Trigger::Manual);
    assert_eq!(
        store.get_run(&by_schedule).unwrap().trigger,
        Trigger::Schedule
    );
    assert_eq!(store.get_run(&skipped).unwrap().trigger, Trigger::Schedule);
    let json = serde_json::to_value(store.get_run(&by_schedule).unwrap()).unwrap();
    assert_eq!(json["trigger"], "schedule");
}

#[test]
fn runs_recorded_before_schema_version_9_read_as_manual() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = store_with(&dir, &key(1));
        let raw = raw(&store);
        // Back to the schema of version 8, with a run recorded then.
        raw.execute_batch(
            "ALTER TABLE runs DROP COLUMN trigger;
             INSERT INTO runs (id, credential, destination, mode, status, started_at)
             VALUES ('run_old', 'a', 'sqlite:out.db', 'incremental', 'succeeded', 1);
             PRAGMA user_version = 8;",
        )
        .unwrap();
    }
    let store = store_with(&dir, &key(1));
    let version: i64 = raw(&store)
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 9, "the trigger column is added by migration 9");
    assert_eq!(store.get_run("run_old").unwrap().trigger, Trigger::Manual);
    let stored: Option<String> = raw(&store)
        .query_row("SELECT trigger FROM runs WHERE id = 'run_old'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(stored, None, "old rows are not rewritten");
}

#[test]
fn triggers_parse_and_refuse_other_words() {
    assert_eq!("schedule".parse::<Trigger>(), Ok(Trigger::Schedule));
    assert_eq!(" manual ".parse::<Trigger>(), Ok(Trigger::Manual));
    let err = "cron".parse::<Trigger>().unwrap_err();
    assert!(err.contains("manual, schedule"), "{err}");
}

#[test]
fn list_is_newest_first_and_limited() {
    let (_dir, store) = new_store();
    let ids: Vec<String> = (0..3)
        .map(|_| store.insert_run(&new_run("a")).unwrap())
        .collect();
    let listed: Vec<String> = store
        .list_runs(2)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed, [ids[2].clone(), ids[1].clone()]);
}

#[test]
fn unknown_run_and_bad_status_are_errors() {
    let (_dir, store) = new_store();
    assert!(matches!(
        store.get_run("run_x"),
        Err(StoreError::NotFound { .. })
    ));
    let err = store
        .finish_run("run_x", "succeeded", &serde_json::json!({}), None)
        .unwrap_err();
    assert!(err.to_string().contains("run_x"), "{err}");
    let id = store.insert_run(&new_run("a")).unwrap();
    let err = store
        .finish_run(&id, "done", &serde_json::json!({}), None)
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::Invalid {
            field: "status",
            ..
        }
    ));
    assert_eq!(store.get_run(&id).unwrap().status, "running");
}

#[test]
fn runs_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let store = store_with(&dir, &key(1));
        store.insert_run(&new_run("a")).unwrap()
    };
    let store = store_with(&dir, &key(1));
    assert_eq!(store.get_run(&id).unwrap().credential, "a");
}

#[test]
fn store_is_in_wal_mode_at_the_current_schema_version() {
    let (_dir, store) = new_store();
    let raw = raw(&store);
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = raw
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, store::SCHEMA_VERSION);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(store.db_path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the metadata store is private");
        let parent = tempfile::tempdir().unwrap();
        let fresh = parent.path().join("new-data-dir");
        store::Store::open_with(&fresh, store::KeySource::Key(key(1))).unwrap();
        let dir_mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700, "a data dir it creates is private");
    }
}

#[test]
fn newer_schema_is_refused() {
    let (dir, store) = new_store();
    raw(&store).pragma_update(None, "user_version", 99).unwrap();
    drop(store);
    let err = store::Store::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
        "{err:?}"
    );
}

#[test]
fn store_can_be_shared_across_threads() {
    fn shared<T: Send + Sync + 'static>(_: &T) {}
    let (_dir, store) = new_store();
    shared(&store);
    let store = std::sync::Arc::new(store);
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let s = std::sync::Arc::clone(&store);
            std::thread::spawn(move || s.insert_run(&new_run("a")).unwrap())
        })
        .collect();
    let ids: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let listed: Vec<String> = store
        .list_runs(10)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed.len(), 3);
    assert!(ids.iter().all(|id| listed.contains(id)));
}

#[test]
fn a_run_whose_process_is_gone_reads_as_interrupted_and_a_live_one_stays_running() {
    let (dir, store) = new_store();
    // Another process (here: another store handle) starts two runs and finishes one.
    let other = store_with(&dir, &key(1));
    let live = other.insert_run(&new_run("a")).unwrap();
    let finished = other.insert_run(&new_run("a")).unwrap();
    other
        .finish_run(&finished, "succeeded", &serde_json::json!({}), None)
        .unwrap();
    assert_eq!(store.get_run(&live).unwrap().status, "running");
    assert!(store.mark_interrupted_runs().unwrap().is_empty());
    // That process dies (its handle and lock go away).
    drop(other);
    let run = store.get_run(&live).unwrap();
    assert_eq!(run.status, "interrupted");
    assert_eq!(run.error.as_deref(), Some(store::INTERRUPTED));
    assert!(run.finished_at.is_some());
    assert_eq!(store.get_run(&finished).unwrap().status, "succeeded");
    // This process's own runs are never taken for dead.
    let mine = store.insert_run(&new_run("b")).unwrap();
    assert_eq!(store.list_runs(10).unwrap()[0].id, mine);
    assert_eq!(store.get_run(&mine).unwrap().status, "running");
    assert!(!dir
        .path()
        .join("runs")
        .join(format!("{live}.lock"))
        .exists());
}

#[test]
fn quarantined_records_are_kept_per_run_in_order() {
    let (_dir, store) = new_store();
    let a = store.insert_run(&new_run("acme")).unwrap();
    let b = store.insert_run(&new_run("acme")).unwrap();
    let rec = |key: Option<&str>, reason: &str| store::RejectedRecord {
        stream: "users".into(),
        primary_key: key.map(str::to_owned),
        reason: reason.into(),
        raw: r#"{"id":"abc"}"#.into(),
        rejected_at: 1_700_000_000_000,
    };
    store
        .add_rejected(&a, &[rec(Some("abc"), "field `id`: not an integer")])
        .unwrap();
    store
        .add_rejected(&a, &[rec(None, "second"), rec(None, "third")])
        .unwrap();
    let listed = store.rejected(&a).unwrap();
    let reasons: Vec<_> = listed.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(reasons, ["field `id`: not an integer", "second", "third"]);
    assert_eq!(listed[0].primary_key.as_deref(), Some("abc"));
    assert_eq!(listed[0].raw, r#"{"id":"abc"}"#);
    assert!(
        store.rejected(&b).unwrap().is_empty(),
        "another run has none"
    );
    let unknown = store.rejected("run_nope").unwrap_err().to_string();
    assert!(unknown.contains("runs list"), "{unknown}");
}

#[test]
fn one_run_per_key_across_stores_released_at_the_end() {
    let (dir, store) = new_store();
    let other = store_with(&dir, &key(1));
    let first = store
        .insert_run_exclusive(&new_run("c"), "source:src_1", "data source \"crm\"")
        .unwrap();
    assert_eq!(
        other.running_in("source:src_1").unwrap().as_deref(),
        Some(first.as_str())
    );
    match other.insert_run_exclusive(&new_run("c"), "source:src_1", "data source \"crm\"") {
        Err(e @ StoreError::AlreadyRunning { .. }) => {
            assert!(
                e.to_string()
                    .starts_with(&format!("already running: {first}")),
                "{e}"
            );
            assert!(e.to_string().contains("data source \"crm\""), "{e}");
        }
        other => panic!("second start: {other:?}"),
    }
    assert_eq!(
        store.list_runs(10).unwrap().len(),
        1,
        "nothing recorded for the refused start"
    );
    // Another key is free meanwhile.
    let elsewhere = other
        .insert_run_exclusive(&new_run("c"), "source:src_2", "data source \"b\"")
        .unwrap();
    other
        .finish_run(&elsewhere, "succeeded", &serde_json::json!({}), None)
        .unwrap();
    store
        .finish_run(&first, "succeeded", &serde_json::json!({}), None)
        .unwrap();
    assert_eq!(other.running_in("source:src_1").unwrap(), None);
    let second = other
        .insert_run_exclusive(&new_run("c"), "source:src_1", "data source \"crm\"")
        .unwrap();
    assert_ne!(second, first);
}

#[test]
fn a_key_whose_holder_died_is_taken_over() {
    let (dir, store) = new_store();
    let held = {
        // A process that starts a run and dies: its store (and the run's lock file) goes.
        let dying = store_with(&dir, &key(1));
        dying
            .insert_run_exclusive(&new_run("c"), "destination:dst_1", "destination \"d\"")
            .unwrap()
    };
    assert_eq!(
        store.running_in("destination:dst_1").unwrap(),
        None,
        "stale"
    );
    let next = store
        .insert_run_exclusive(&new_run("c"), "destination:dst_1", "destination \"d\"")
        .unwrap();
    assert_eq!(store.get_run(&held).unwrap().status, "interrupted");
    assert_eq!(store.get_run(&next).unwrap().status, "running");
    assert_eq!(
        store.running_in("destination:dst_1").unwrap().as_deref(),
        Some(next.as_str())
    );
}

#[test]
fn a_skipped_start_is_recorded_as_finished_with_its_reason() {
    let (_dir, store) = new_store();
    let id = store
        .record_skipped_run(
            &new_run("c"),
            "scheduled start skipped: still running",
            1_800_000_000_000,
        )
        .unwrap();
    let run = store.get_run(&id).unwrap();
    assert_eq!(run.status, "skipped");
    assert_eq!(run.started_at, 1_800_000_000_000);
    assert_eq!(run.finished_at, Some(run.started_at));
    assert_eq!(
        run.error.as_deref(),
        Some("scheduled start skipped: still running")
    );
    assert!(store::RUN_STATUSES.contains(&"skipped"));
}
