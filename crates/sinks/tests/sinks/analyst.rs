//! Analyst-ready tables (issue 19) against an in-process Drift sandbox, for every database
//! sink: contacts' attribute columns typed from the org's `contact_attributes`, child tables
//! as long as the arrays they come from, a removed tag gone after the next incremental run,
//! history mode (versions, closed deletions, one open version per key after a crash and a
//! resume) and the schema contracts (`freeze` fails without writing, `discard` adds no
//! column, `evolve` adds one).

use crate::harness::{Crash, Crashing};
use async_trait::async_trait;
use serde_json::{json, Map, Value};
use sinks::{OpenOptions, SchemaContract};
use std::collections::BTreeMap;
use std::sync::Arc;
use sync_core::{run_sync, Cancel, RunOptions, RunReport, RunStatus, Sink, SyncMode};

/// A database sink seen through SQL.
#[async_trait]
pub trait Db: Sync {
    /// A fresh handle with `options`.
    fn open_with(&self, options: OpenOptions) -> Box<dyn Sink>;
    /// The first column of each row of `sql` as text (NULL as `None`). Table names in
    /// `sql` are written `{t}` (qualified by the database).
    async fn texts(&self, sql: &str) -> Vec<Option<String>>;
    /// The type of `column` of `table` as the database names it (lower case).
    async fn column_type(&self, table: &str, column: &str) -> Option<String>;
    /// Expected types: (string, number, boolean, epoch ms integer, timestamp twin suffix,
    /// timestamp twin type).
    fn types(&self) -> [&'static str; 6];
}

fn sandbox_config() -> drift_sandbox::SandboxConfig {
    drift_sandbox::SandboxConfig {
        conversations: 120,
        messages_per_conversation: 2,
        accounts: 20,
        rate_limit_per_min: 0,
        ..Default::default()
    }
}

fn client(sandbox: &drift_sandbox::SandboxHandle) -> drift_client::Client {
    drift_client::Client::builder(
        &sandbox.base_url(),
        drift_client::SecretString::from(sandbox.token()),
    )
    .rate_limit_per_min(60_000)
    .build()
    .unwrap()
}

/// The org's custom contact attributes (name, type, label), as a run reads them.
async fn custom_attributes(
    sandbox: &drift_sandbox::SandboxHandle,
) -> Vec<(String, String, String)> {
    client(sandbox)
        .contact_attributes()
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|a| {
            (
                a.name,
                a.attribute_type.unwrap_or_default(),
                a.display_name.unwrap_or_default(),
            )
        })
        .collect()
}

/// Sync every stream with the org's custom contact attributes as columns (as
/// `flows::SyncRun` does), into `dest`.
async fn sync(
    sandbox: &drift_sandbox::SandboxHandle,
    dest: &mut dyn Sink,
    mode: SyncMode,
    run_id: &str,
) -> RunReport {
    sync_with(sandbox, dest, mode, RunOptions::new(run_id, "drift:test")).await
}

/// [`sync`] with the engine's `options` (batch size, ...).
async fn sync_with(
    sandbox: &drift_sandbox::SandboxHandle,
    dest: &mut dyn Sink,
    mode: SyncMode,
    options: RunOptions,
) -> RunReport {
    let custom = custom_attributes(sandbox).await;
    let source = source_drift::DriftSource::new(client(sandbox), Default::default());
    let streams = source_drift::catalog()
        .select(&["all".into()], mode)
        .unwrap()
        .into_iter()
        .map(|mut s| {
            s.stream = source_drift::shapes::with_contact_attributes(s.stream, &custom);
            s
        })
        .collect();
    run_sync(
        Arc::new(source),
        dest,
        streams,
        options,
        Cancel::new(),
        None,
    )
    .await
}

async fn mutate(sandbox: &drift_sandbox::SandboxHandle, body: Value) -> Map<String, Value> {
    reqwest::Client::new()
        .post(format!("{}/__sandbox/mutate", sandbox.base_url()))
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

async fn count(db: &impl Db, sql: &str) -> i64 {
    db.texts(sql).await[0].as_deref().unwrap().parse().unwrap()
}

/// The `_raw` of every live row of `stream` as JSON.
async fn raws(db: &impl Db, stream: &str) -> Vec<Map<String, Value>> {
    db.texts(&format!("SELECT CAST(_raw AS TEXT) FROM {{t}}{stream}"))
        .await
        .into_iter()
        .map(|t| match serde_json::from_str(&t.unwrap()).unwrap() {
            Value::Object(m) => m,
            other => panic!("{other}"),
        })
        .collect()
}

fn array_len(v: Option<&Value>) -> i64 {
    v.and_then(Value::as_array).map_or(0, |a| a.len() as i64)
}

/// Contacts have one typed column per attribute of the org's `contact_attributes` and per
/// standard attribute; each child table has as many rows as the arrays it comes from; a
/// tag removed in Drift is gone from `conversation_tags` after the next incremental run.
pub async fn analyst_tables(db: &impl Db) {
    let sandbox = drift_sandbox::start(sandbox_config()).await.unwrap();
    let mut dest = db.open_with(OpenOptions::default());
    let report = sync(&sandbox, dest.as_mut(), SyncMode::Incremental, "run-1").await;
    drop(dest);
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");

    // Typed attribute columns, matching the sandbox's contact_attributes.
    let [string, number, boolean, millis, twin, twin_type] = db.types();
    let custom = custom_attributes(&sandbox).await;
    assert!(custom.len() >= 5, "{custom:?}");
    for (name, kind, _) in &custom {
        let want = match kind.as_str() {
            "STRING" => string,
            "NUMERIC" => number,
            "BOOLEAN" => boolean,
            "DATE" | "DATETIME" => millis,
            other => panic!("unexpected type {other}"),
        };
        assert_eq!(
            db.column_type("contacts", name).await.as_deref(),
            Some(want),
            "{name}"
        );
        if matches!(kind.as_str(), "DATE" | "DATETIME") {
            let t = format!("{name}{twin}");
            assert_eq!(
                db.column_type("contacts", &t).await.as_deref(),
                Some(twin_type)
            );
        }
    }
    assert_eq!(
        db.column_type("contacts", "email").await.as_deref(),
        Some(string)
    );
    let contacts = raws(db, "contacts").await;
    let emails = contacts
        .iter()
        .filter(|c| c["attributes"]["email"].is_string())
        .count() as i64;
    assert!(emails > 0);
    assert_eq!(
        count(db, "SELECT CAST(count(email) AS TEXT) FROM {t}contacts").await,
        emails
    );
    let tiers = contacts
        .iter()
        .filter(|c| c["attributes"]["plan_tier"].is_string())
        .count() as i64;
    assert!(tiers > 0, "the sandbox sets plan_tier on some contacts");
    assert_eq!(
        count(db, "SELECT CAST(count(plan_tier) AS TEXT) FROM {t}contacts").await,
        tiers
    );
    // Two keys equal but for case: the later one in sorted order gets a suffix.
    assert!(db
        .column_type("contacts", "_end_user_version_2")
        .await
        .is_some());

    // Child tables: one row per array element.
    let children: [(&str, &str, &[&str]); 6] = [
        ("conversations", "conversation_tags", &["conversationTags"]),
        (
            "conversations",
            "conversation_participants",
            &["participants"],
        ),
        ("messages", "message_buttons", &["buttons"]),
        (
            "accounts",
            "account_custom_properties",
            &["customProperties"],
        ),
        ("teams", "team_members", &["members"]),
        ("contacts", "contact_tags", &["attributes", "tags"]),
    ];
    for (parent, child, path) in children {
        let want: i64 = raws(db, parent)
            .await
            .iter()
            .map(|r| {
                let mut v = r.get(path[0]);
                for p in &path[1..] {
                    v = v.and_then(|v| v.get(p));
                }
                array_len(v)
            })
            .sum();
        assert!(want > 0, "the sandbox has {child}");
        let got = count(
            db,
            &format!("SELECT CAST(count(*) AS TEXT) FROM {{t}}{child}"),
        )
        .await;
        assert_eq!(got, want, "{child}");
    }
    let tags = db
        .texts("SELECT tag FROM {t}conversation_tags WHERE tag IS NOT NULL")
        .await;
    assert!(!tags.is_empty());

    // A tag removed in Drift disappears with the next incremental run.
    let changed = mutate(&sandbox, json!({"untag_conversations": 3})).await;
    let untagged: Vec<i64> = changed["untag_conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(untagged.len(), 3);
    let tags_of = |id: i64| {
        format!("SELECT CAST(count(*) AS TEXT) FROM {{t}}conversation_tags WHERE conversation_id = {id} AND NOT {}", is_deleted())
    };
    let mut before = BTreeMap::new();
    for id in &untagged {
        before.insert(*id, count(db, &tags_of(*id)).await);
    }
    let mut dest = db.open_with(OpenOptions::default());
    let report = sync(&sandbox, dest.as_mut(), SyncMode::Incremental, "run-2").await;
    drop(dest);
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    for id in &untagged {
        assert_eq!(
            count(db, &tags_of(*id)).await,
            before[id] - 1,
            "conversation {id}"
        );
    }
    sandbox.shutdown().await;
}

/// `_deleted` is true, written so both databases read it (0/1 in SQLite, boolean in
/// PostgreSQL): compared with a literal both accept.
fn is_deleted() -> &'static str {
    "CAST(_deleted AS TEXT) IN ('1', 'true')"
}

/// History mode: a renamed contact has 2 versions (the open one with the new name), a
/// deleted contact has no open version and its last version is marked deleted, unchanged
/// re-reads add no version, and every key has at most one open version.
pub async fn history_mode(db: &impl Db) {
    let sandbox = drift_sandbox::start(sandbox_config()).await.unwrap();
    let history = OpenOptions {
        history: true,
        ..Default::default()
    };
    let mut dest = db.open_with(history);
    let report = sync(&sandbox, dest.as_mut(), SyncMode::Incremental, "h-1").await;
    drop(dest);
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    let total = count(db, "SELECT CAST(count(*) AS TEXT) FROM {t}contacts").await;

    let changed = mutate(
        &sandbox,
        json!({"rename_contacts": 2, "delete_contacts": 1}),
    )
    .await;
    let renamed: Vec<i64> = changed["rename_contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let deleted = changed["delete_contacts"][0].as_i64().unwrap();
    // Twice: the second run re-reads unchanged contacts and must not add versions.
    for run in ["h-2", "h-3"] {
        let mut dest = db.open_with(history);
        let report = sync(&sandbox, dest.as_mut(), SyncMode::Incremental, run).await;
        drop(dest);
        assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    }
    for id in &renamed {
        let versions = count(
            db,
            &format!("SELECT CAST(count(*) AS TEXT) FROM {{t}}contacts WHERE id = {id}"),
        )
        .await;
        assert_eq!(versions, 2, "contact {id}");
        let open = db
            .texts(&format!(
                "SELECT name FROM {{t}}contacts WHERE id = {id} AND _valid_to IS NULL"
            ))
            .await;
        assert_eq!(open.len(), 1);
        assert!(
            open[0].as_deref().unwrap().ends_with(')'),
            "new name: {open:?}"
        );
        let closed = count(db, &format!("SELECT CAST(count(*) AS TEXT) FROM {{t}}contacts WHERE id = {id} AND _valid_to IS NOT NULL AND NOT {}", active_true())).await;
        assert_eq!(closed, 1);
    }
    let open = count(db, &format!("SELECT CAST(count(*) AS TEXT) FROM {{t}}contacts WHERE id = {deleted} AND _valid_to IS NULL")).await;
    assert_eq!(open, 0, "a deleted contact's version is closed");
    let marked = count(
        db,
        &format!(
            "SELECT CAST(count(*) AS TEXT) FROM {{t}}contacts WHERE id = {deleted} AND {}",
            is_deleted()
        ),
    )
    .await;
    assert_eq!(marked, 1);
    assert_eq!(
        count(db, "SELECT CAST(count(*) AS TEXT) FROM {t}contacts").await,
        total + renamed.len() as i64,
        "only the renamed contacts got a version"
    );
    assert_one_open_version(db, "contacts").await;
    sandbox.shutdown().await;
}

fn active_true() -> &'static str {
    "CAST(_active AS TEXT) IN ('1', 'true')"
}

async fn assert_one_open_version(db: &impl Db, table: &str) {
    let key = if table == "accounts" {
        "\"accountId\""
    } else {
        "id"
    };
    let dupes = count(
        db,
        &format!("SELECT CAST(count(*) AS TEXT) FROM (SELECT {key} FROM {{t}}{table} WHERE _valid_to IS NULL GROUP BY {key} HAVING count(*) > 1) d"),
    )
    .await;
    assert_eq!(dupes, 0, "{table}: keys with more than one open version");
    let open = count(
        db,
        &format!(
            "SELECT CAST(count(*) AS TEXT) FROM {{t}}{table} WHERE _valid_to IS NULL AND {}",
            active_true()
        ),
    )
    .await;
    let keys = count(
        db,
        &format!(
            "SELECT CAST(count(DISTINCT {key}) AS TEXT) FROM {{t}}{table} WHERE NOT {}",
            is_deleted()
        ),
    )
    .await;
    assert_eq!(open, keys, "{table}: every live key has its open version");
}

/// History mode, killed after a commit and resumed, after changes: one open version per
/// key, and the run after the crash succeeds.
pub async fn history_crash_and_resume(db: &impl Db) {
    let sandbox = drift_sandbox::start(sandbox_config()).await.unwrap();
    let history = OpenOptions {
        history: true,
        ..Default::default()
    };
    let mut dest = db.open_with(history);
    let report = sync(&sandbox, dest.as_mut(), SyncMode::Incremental, "c-1").await;
    drop(dest);
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    mutate(
        &sandbox,
        json!({"rename_contacts": 5, "touch_conversations": 20, "touch_accounts": 5}),
    )
    .await;
    for crash in [Crash::After(1), Crash::Before(1)] {
        let mut dest = Crashing {
            inner: db.open_with(history),
            crash,
            commits: 0,
        };
        // Small batches: the run commits several times before it would end.
        let mut options = RunOptions::new("c-2", "drift:test");
        options.batch_size = Some(10);
        let report = sync_with(&sandbox, &mut dest, SyncMode::Incremental, options).await;
        assert_eq!(report.status, RunStatus::Failed, "the crash ends the run");
    }
    let mut dest = db.open_with(history);
    let report = sync(&sandbox, dest.as_mut(), SyncMode::Incremental, "c-3").await;
    drop(dest);
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    for table in ["contacts", "conversations", "accounts"] {
        assert_one_open_version(db, table).await;
    }
    sandbox.shutdown().await;
}

/// Schema contracts on a contact attribute Drift starts sending: `freeze` fails the run
/// naming the field and the fix and adds no column; `discard` succeeds without a column;
/// `evolve` adds the column with the values.
pub async fn schema_contracts(db: &impl Db) {
    let sandbox = drift_sandbox::start(sandbox_config()).await.unwrap();
    let mut dest = db.open_with(OpenOptions::default());
    let report = sync(&sandbox, dest.as_mut(), SyncMode::Incremental, "s-1").await;
    drop(dest);
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    let changed = mutate(&sandbox, json!({"new_contact_attribute": "favorite color"})).await;
    let got = changed["new_contact_attribute"].as_array().unwrap().len() as i64;
    assert!(got > 0);

    let with = |c| OpenOptions {
        schema_contract: c,
        ..Default::default()
    };
    let before = count(db, "SELECT CAST(count(*) AS TEXT) FROM {t}contacts WHERE CAST(_raw AS TEXT) LIKE '%favorite color%'").await;
    assert_eq!(before, 0);
    let mut dest = db.open_with(with(SchemaContract::Freeze));
    let report = sync(&sandbox, dest.as_mut(), SyncMode::Incremental, "s-freeze").await;
    drop(dest);
    assert_eq!(report.status, RunStatus::Failed, "{report:?}");
    let message = report.error.as_ref().unwrap().message.clone();
    assert!(message.contains("attributes.favorite color"), "{message}");
    assert!(message.contains("`favorite_color`"), "{message}");
    assert!(message.contains("--schema-contract evolve"), "{message}");
    assert_eq!(db.column_type("contacts", "favorite_color").await, None);
    let after = count(db, "SELECT CAST(count(*) AS TEXT) FROM {t}contacts WHERE CAST(_raw AS TEXT) LIKE '%favorite color%'").await;
    assert_eq!(
        after, 0,
        "nothing of the batch with the new field was written"
    );

    let mut dest = db.open_with(with(SchemaContract::Discard));
    let report = sync(&sandbox, dest.as_mut(), SyncMode::FullRefresh, "s-discard").await;
    drop(dest);
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_eq!(db.column_type("contacts", "favorite_color").await, None);
    let kept = count(db, "SELECT CAST(count(*) AS TEXT) FROM {t}contacts WHERE CAST(_raw AS TEXT) LIKE '%favorite color%'").await;
    assert_eq!(kept, got, "discarded fields stay in _raw");

    let mut dest = db.open_with(OpenOptions::default());
    let report = sync(&sandbox, dest.as_mut(), SyncMode::FullRefresh, "s-evolve").await;
    drop(dest);
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_eq!(
        db.column_type("contacts", "favorite_color")
            .await
            .as_deref(),
        Some(db.types()[0])
    );
    let filled = count(
        db,
        "SELECT CAST(count(favorite_color) AS TEXT) FROM {t}contacts",
    )
    .await;
    assert_eq!(filled, got);
    sandbox.shutdown().await;
}
