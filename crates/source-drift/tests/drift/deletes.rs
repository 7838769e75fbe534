//! What changes in Drift reaches the sink with the next incremental run: renamed contacts,
//! deleted contacts (404), soft-deleted accounts, removed users; soft by default, hard on
//! request.

use crate::streams::sync_with;
use drift_sandbox::SandboxConfig;
use serde_json::{json, Value};
use sinks::OpenOptions;
use std::path::Path;
use sync_core::{RunStatus, SyncMode};

fn config() -> SandboxConfig {
    SandboxConfig {
        conversations: 60,
        messages_per_conversation: 1,
        rate_limit_per_min: 0,
        ..Default::default()
    }
}

async fn mutate(base_url: &str, body: Value) -> Value {
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

fn count(db: &Path, sql: &str) -> u64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap() as u64
}

fn name_of(db: &Path, contact: i64) -> Option<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    let raw: String = c
        .query_row("SELECT _raw FROM contacts WHERE id = ?1", [contact], |r| {
            r.get(0)
        })
        .unwrap();
    let v: Value = serde_json::from_str(&raw).unwrap();
    v["attributes"]["name"].as_str().map(str::to_owned)
}

async fn live_name(base_url: &str, token: &str, contact: i64) -> Option<String> {
    let v: Value = reqwest::Client::new()
        .get(format!("{base_url}/contacts/{contact}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["data"]["attributes"]["name"].as_str().map(str::to_owned)
}

fn ids(changed: &Value, key: &str) -> Vec<i64> {
    changed[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn one_incremental_run_brings_renames_and_marks_deletes_of_contacts_accounts_and_users() {
    let sandbox = drift_sandbox::start(config()).await.unwrap();
    let (url, token) = (sandbox.base_url(), sandbox.token());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("d.db");
    let soft = OpenOptions::default();
    let first = sync_with(&url, &token, &db, &["all"], SyncMode::Incremental, soft).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{first:?}");
    let seeded_deleted = sandbox.counts()["deleted_accounts"].as_u64().unwrap();
    assert_eq!(
        count(&db, "SELECT count(*) FROM accounts WHERE _deleted"),
        seeded_deleted
    );

    let changed = mutate(
        &url,
        json!({"rename_contacts": 4, "delete_contacts": 3, "delete_accounts": 2, "delete_users": 1}),
    )
    .await;
    let renamed = ids(&changed, "rename_contacts");
    assert_eq!(renamed.len(), 4);
    let before: Vec<_> = renamed.iter().map(|c| name_of(&db, *c)).collect();

    let second = sync_with(&url, &token, &db, &["all"], SyncMode::Incremental, soft).await;
    assert_eq!(second.status, RunStatus::Succeeded, "{second:?}");
    for (contact, old) in renamed.iter().zip(before) {
        let now = name_of(&db, *contact);
        assert_ne!(now, old, "contact {contact} still has its old name");
        assert_eq!(now, live_name(&url, &token, *contact).await);
    }
    let counts = sandbox.counts();
    for stream in ["contacts", "accounts", "users"] {
        let want = counts[format!("deleted_{stream}")].as_u64().unwrap();
        let sql =
            format!("SELECT count(*) FROM {stream} WHERE _deleted AND _deleted_at IS NOT NULL");
        assert_eq!(count(&db, &sql), want, "{stream} marked deleted");
    }
    let contacts = second.stream("contacts").unwrap();
    assert_eq!(contacts.records_deleted, 3, "{contacts:?}");
    // A deleted contact keeps its last data, only marked.
    let gone = ids(&changed, "delete_contacts");
    let kept = count(
        &db,
        &format!(
            "SELECT count(*) FROM contacts WHERE _deleted AND id = {} AND _raw LIKE '%attributes%'",
            gone[0]
        ),
    );
    assert_eq!(kept, 1);

    // An unchanged third run marks nothing again and re-reads no deleted contact as new.
    let third = sync_with(&url, &token, &db, &["all"], SyncMode::Incremental, soft).await;
    assert_eq!(third.status, RunStatus::Succeeded, "{third:?}");
    let deleted: u64 = third.streams.iter().map(|s| s.records_deleted).sum();
    assert_eq!(deleted, 0, "{third:?}");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn hard_deletes_remove_the_rows_of_deleted_records() {
    let sandbox = drift_sandbox::start(config()).await.unwrap();
    let (url, token) = (sandbox.base_url(), sandbox.token());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("d.db");
    let hard = OpenOptions {
        hard_deletes: true,
        ..Default::default()
    };
    let first = sync_with(&url, &token, &db, &["all"], SyncMode::Incremental, hard).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{first:?}");
    let changed = mutate(&url, json!({"delete_contacts": 2, "delete_users": 1})).await;
    let second = sync_with(&url, &token, &db, &["all"], SyncMode::Incremental, hard).await;
    assert_eq!(second.status, RunStatus::Succeeded, "{second:?}");
    for id in ids(&changed, "delete_contacts") {
        assert_eq!(
            count(
                &db,
                &format!("SELECT count(*) FROM contacts WHERE id = {id}")
            ),
            0
        );
    }
    for id in ids(&changed, "delete_users") {
        assert_eq!(
            count(&db, &format!("SELECT count(*) FROM users WHERE id = {id}")),
            0
        );
    }
    let counts = sandbox.counts();
    assert_eq!(
        count(&db, "SELECT count(*) FROM contacts"),
        counts["contacts_in_conversations"].as_u64().unwrap()
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM users"),
        counts["users"].as_u64().unwrap()
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM contacts WHERE _deleted"),
        0
    );
    sandbox.shutdown().await;
}
