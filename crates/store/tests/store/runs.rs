//! Run history.

use crate::helpers::*;
use store::{NewRun, StoreError};

fn new_run(credential: &str) -> NewRun {
    NewRun {
        credential: credential.into(),
        destination: "sqlite:out.db".into(),
        mode: "incremental".into(),
        streams: vec!["conversations".into(), "messages".into()],
        flow: None,
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
        .finish_run(&id, "partial", &summary, Some("2 records rejected"))
        .unwrap();
    let run = store.get_run(&id).unwrap();
    assert_eq!(run.status, "partial");
    assert_eq!(run.summary, summary);
    assert_eq!(run.error.as_deref(), Some("2 records rejected"));
    assert!(run.finished_at.unwrap() >= run.started_at);
}

#[test]
fn list_is_newest_first_and_limited() {
    let (_dir, store) = new_store();
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let s = std::sync::Arc::clone(&store);
            std::thread::spawn(move || s.insert_run(&new_run("a")).unwrap())
        })
        .collect();
    let ids: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(store.list_runs(10).unwrap().len(), ids.len());
}
