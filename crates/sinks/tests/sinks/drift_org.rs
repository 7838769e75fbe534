//! Scenarios against an in-process Drift sandbox that every sink passes: a messy org
//! (unfit records quarantined, the rest written, a re-run not stuck) and changes in Drift
//! (renamed contacts, deleted contacts, accounts and users) reaching the sink with the next
//! incremental run, soft by default and hard on request.

use crate::harness::{Row, SinkUnderTest};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use sync_core::{run_sync, Cancel, RunOptions, RunReport, RunStatus, Sink, SyncMode};

/// A sandbox org small enough for every sink, without rate limits.
fn sandbox_config(messy: bool) -> drift_sandbox::SandboxConfig {
    drift_sandbox::SandboxConfig {
        conversations: 200,
        messages_per_conversation: 2,
        accounts: 30,
        rate_limit_per_min: 0,
        messy,
        ..Default::default()
    }
}

/// Sync every stream of `sandbox` into `dest` with `mode`, as run `run_id`.
async fn sync(
    sandbox: &drift_sandbox::SandboxHandle,
    dest: &mut dyn Sink,
    mode: SyncMode,
    run_id: &str,
) -> RunReport {
    let client = drift_client::Client::builder(
        &sandbox.base_url(),
        drift_client::SecretString::from(sandbox.token()),
    )
    .rate_limit_per_min(60_000)
    .build()
    .unwrap();
    let source = source_drift::DriftSource::new(client, Default::default());
    let streams = source_drift::catalog()
        .select(&["all".into()], mode)
        .unwrap();
    run_sync(
        Arc::new(source),
        dest,
        streams,
        RunOptions::new(run_id, "drift:test"),
        Cancel::new(),
        None,
    )
    .await
}

fn primary_key(stream: &str) -> Vec<String> {
    source_drift::catalog()
        .get(stream)
        .unwrap()
        .primary_key
        .clone()
}

/// The last row of each key of `stream` (for a file log: the key's current state).
async fn current(sink: &impl SinkUnderTest, stream: &str) -> BTreeMap<String, Row> {
    let pk = primary_key(stream);
    sink.marked(stream)
        .await
        .into_iter()
        .map(|r| (sync_core::key_text(&r.data, &pk).expect("a key"), r))
        .collect()
}

/// `POST /__sandbox/mutate` with `body`; the ids it changed, by mutation.
async fn mutate(base_url: &str, body: Value) -> Map<String, Value> {
    reqwest::Client::new()
        .post(format!("{base_url}/__sandbox/mutate"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn ids(changed: &Map<String, Value>, key: &str) -> Vec<String> {
    changed[key]
        .as_array()
        .unwrap_or_else(|| panic!("mutate answered no {key}: {changed:?}"))
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// A contact's name as Drift serves it now.
async fn live_name(sandbox: &drift_sandbox::SandboxHandle, contact: &str) -> Value {
    let v: Value = reqwest::Client::new()
        .get(format!("{}/contacts/{contact}", sandbox.base_url()))
        .bearer_auth(sandbox.token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["data"]["attributes"]["name"].clone()
}

/// Against `sandbox --messy`: exactly the unfit records the sandbox served are quarantined,
/// each with its stream and a reason; every fitting record is written once; the run says
/// `succeeded_with_rejections`; an immediate re-run is not stuck and quarantines nothing new
/// that is not unfit.
pub async fn messy_org(sink: &impl SinkUnderTest) {
    let sandbox = drift_sandbox::start(sandbox_config(true)).await.unwrap();
    let mut dest = sink.open();
    let report = sync(&sandbox, dest.as_mut(), SyncMode::FullRefresh, "run-messy").await;
    drop(dest);
    assert_eq!(
        report.status,
        RunStatus::SucceededWithRejections,
        "{report:?}"
    );
    let counts = sandbox.counts();
    let unfit = counts["unfit"].as_object().expect("counts.unfit").clone();
    let unfit_total: u64 = unfit.values().map(|v| v.as_u64().unwrap()).sum();
    assert!(unfit_total > 0, "the messy sandbox served no unfit record");

    let rejected = sink.rejected().await;
    assert_eq!(rejected.len() as u64, unfit_total, "{rejected:#?}");
    let mut by_stream: BTreeMap<String, u64> = BTreeMap::new();
    for r in &rejected {
        assert!(r.reason.len() >= 10, "a reason that says what: {r:?}");
        assert_eq!(r.run_id, "run-messy");
        *by_stream.entry(r.stream.clone()).or_default() += 1;
    }
    for (stream, n) in &unfit {
        let n = n.as_u64().unwrap();
        assert_eq!(by_stream.get(stream).copied().unwrap_or(0), n, "{stream}");
        let summary = report.stream(stream).unwrap();
        assert_eq!(summary.records_rejected, n, "{summary:?}");
    }

    for (stream, key) in [
        ("conversations", "conversations"),
        ("accounts", "accounts"),
        ("users", "users"),
        ("teams", "teams"),
        ("playbooks", "playbooks"),
        ("meetings", "meetings"),
    ] {
        let pk = primary_key(stream);
        let keys: BTreeSet<String> = sink
            .rows(stream)
            .await
            .iter()
            .filter_map(|r| sync_core::key_text(r, &pk))
            .collect();
        let want = counts[key].as_u64().unwrap() - unfit[stream].as_u64().unwrap_or(0);
        assert_eq!(keys.len() as u64, want, "fitting records of {stream}");
    }

    // A re-run reads past the same unfit records again: it ends, and writes no new key.
    let before = sink.rows("conversations").await.len();
    let mut dest = sink.open();
    let again = sync(
        &sandbox,
        dest.as_mut(),
        SyncMode::Incremental,
        "run-messy-2",
    )
    .await;
    drop(dest);
    assert!(
        matches!(
            again.status,
            RunStatus::Succeeded | RunStatus::SucceededWithRejections
        ),
        "{again:?}"
    );
    if !sink.is_log() {
        assert_eq!(sink.rows("conversations").await.len(), before);
    }
    sandbox.shutdown().await;
}

/// One incremental run after changes in Drift: renamed contacts carry their new name,
/// deleted contacts (404), soft-deleted accounts and removed users are marked `_deleted`
/// with a time (a tombstone line in a file sink), and the run's deleted figures match.
/// With `hard`, a database sink has no row left for a deleted record.
pub async fn changes_reach_the_sink(sink: &impl SinkUnderTest, hard: bool) {
    let sandbox = drift_sandbox::start(sandbox_config(false)).await.unwrap();
    let open = || if hard { sink.open_hard() } else { sink.open() };
    let mut dest = open();
    let first = sync(&sandbox, dest.as_mut(), SyncMode::Incremental, "run-1").await;
    drop(dest);
    assert_eq!(first.status, RunStatus::Succeeded, "{first:?}");

    let changed = mutate(
        &sandbox.base_url(),
        json!({"rename_contacts": 3, "delete_contacts": 2, "delete_accounts": 2, "delete_users": 1}),
    )
    .await;
    let mut dest = open();
    let second = sync(&sandbox, dest.as_mut(), SyncMode::Incremental, "run-2").await;
    drop(dest);
    assert_eq!(second.status, RunStatus::Succeeded, "{second:?}");

    let contacts = current(sink, "contacts").await;
    for id in ids(&changed, "rename_contacts") {
        let row = contacts
            .get(&id)
            .unwrap_or_else(|| panic!("renamed contact {id}"));
        assert!(!row.deleted);
        assert_eq!(row.run_id, "run-2", "contact {id} was not re-read");
        assert_eq!(
            row.data["attributes"]["name"],
            live_name(&sandbox, &id).await,
            "contact {id}"
        );
    }
    let counts = sandbox.counts();
    for (stream, mutation) in [
        ("contacts", "delete_contacts"),
        ("accounts", "delete_accounts"),
        ("users", "delete_users"),
    ] {
        let now = current(sink, stream).await;
        let gone = ids(&changed, mutation);
        let summary = second.stream(stream).unwrap();
        assert_eq!(summary.records_deleted, gone.len() as u64, "{summary:?}");
        if hard && !sink.is_log() {
            for id in &gone {
                assert!(!now.contains_key(id), "{stream} {id} still has a row");
            }
            assert!(now.values().all(|r| !r.deleted), "{stream}");
        } else {
            for id in &gone {
                let row = now
                    .get(id)
                    .unwrap_or_else(|| panic!("{stream} {id} has no row"));
                assert!(row.deleted && row.deleted_at.is_some(), "{stream} {id}");
            }
            let marked = now.values().filter(|r| r.deleted).count() as u64;
            let want = counts[format!("deleted_{stream}")].as_u64().unwrap();
            assert_eq!(marked, want, "{stream} marked deleted");
        }
    }
    sandbox.shutdown().await;
}
