//! Stream behaviour that needs a Drift org: scopes, resume state, selection.

use drift_sandbox::SandboxConfig;
use secrecy::SecretString;
use sinks::SqliteSink;
use source_drift::{catalog, DriftSource, DriftSourceConfig};
use std::path::Path;
use std::sync::Arc;
use sync_core::{run_sync, Cancel, RunOptions, RunReport, RunStatus, StreamState, SyncMode};

async fn sync(
    base_url: &str,
    token: &str,
    db: &Path,
    streams: &[&str],
    mode: SyncMode,
) -> RunReport {
    let options = sinks::OpenOptions::default();
    sync_with(base_url, token, db, streams, mode, options).await
}

/// [`sync`] into a SQLite destination opened with `options` (hard deletes).
pub(crate) async fn sync_with(
    base_url: &str,
    token: &str,
    db: &Path,
    streams: &[&str],
    mode: SyncMode,
    options: sinks::OpenOptions,
) -> RunReport {
    let client = drift_client::Client::builder(base_url, SecretString::from(token.to_owned()))
        .rate_limit_per_min(60_000)
        .build()
        .unwrap();
    let source = Arc::new(DriftSource::new(client, DriftSourceConfig::default()));
    let names: Vec<String> = streams.iter().map(|s| s.to_string()).collect();
    let selected = catalog().select(&names, mode).unwrap();
    let mut dest = SqliteSink::open_with(db, options).unwrap();
    run_sync(
        source,
        &mut dest,
        selected,
        RunOptions::new("r", "test"),
        Cancel::new(),
        None,
    )
    .await
}

fn sandbox_config() -> SandboxConfig {
    SandboxConfig {
        conversations: 30,
        messages_per_conversation: 2,
        rate_limit_per_min: 0,
        limited_tokens: vec![(
            "tok-basic".into(),
            ["conversation_read", "contact_read", "user_read"]
                .map(String::from)
                .to_vec(),
        )],
        ..Default::default()
    }
}

#[tokio::test]
async fn forbidden_streams_are_unavailable_naming_the_scope_and_the_others_complete() {
    let sandbox = drift_sandbox::start(sandbox_config()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let report = sync(
        &sandbox.base_url(),
        "tok-basic",
        &dir.path().join("d.db"),
        &["all"],
        SyncMode::Incremental,
    )
    .await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    for (stream, scope) in [
        ("accounts", "account_read"),
        ("playbooks", "playbook_read"),
        ("contact_attributes", "all_contact_read"),
    ] {
        let s = report.stream(stream).unwrap();
        assert_eq!(s.state, StreamState::Unavailable, "{stream}");
        let reason = s.reason.as_deref().unwrap();
        assert!(reason.contains(scope), "{stream}: {reason}");
        assert_eq!(s.records_written, 0);
    }
    let counts = sandbox.counts();
    for (stream, key) in [
        ("conversations", "conversations"),
        ("messages", "messages"),
        ("contacts", "contacts_in_conversations"),
        ("users", "users"),
        ("teams", "teams"),
        ("meetings", "meetings"),
    ] {
        let s = report.stream(stream).unwrap();
        assert_eq!(s.state, StreamState::Succeeded, "{stream}: {:?}", s.reason);
        assert_eq!(s.records_written, counts[key].as_u64().unwrap(), "{stream}");
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_selection_of_children_reads_conversations_without_writing_them() {
    let sandbox = drift_sandbox::start(sandbox_config()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("d.db");
    let report = sync(
        &sandbox.base_url(),
        &sandbox.token(),
        &db,
        &["messages"],
        SyncMode::FullRefresh,
    )
    .await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_eq!(report.streams.len(), 1);
    assert_eq!(
        report.stream("messages").unwrap().records_written,
        sandbox.counts()["messages"].as_u64().unwrap()
    );
    // The messages table and its child tables only.
    assert_eq!(
        tables(&db),
        vec![
            "_driftbridge_rejected",
            "_driftbridge_state",
            "message_attachments",
            "message_buttons",
            "messages"
        ]
    );
    // A later run selecting conversations too has its own state: it reads everything.
    let both = sync(
        &sandbox.base_url(),
        &sandbox.token(),
        &db,
        &["conversations", "messages"],
        SyncMode::Incremental,
    )
    .await;
    assert_eq!(both.stream("conversations").unwrap().records_written, 30);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_full_run_ends_with_the_conversations_expected_equal_to_those_read() {
    let sandbox = drift_sandbox::start(sandbox_config()).await.unwrap();
    // The estimate comes from /conversations/stats, which counts OPEN, CLOSED and PENDING
    // only: the seed's bulk_sent conversations are listed but not counted there.
    let client =
        drift_client::Client::builder(&sandbox.base_url(), SecretString::from(sandbox.token()))
            .build()
            .unwrap();
    let stats = client.conversation_stats().await.unwrap();
    let counted: i64 = ["OPEN", "CLOSED", "PENDING"]
        .iter()
        .filter_map(|s| stats.count(s))
        .sum();
    assert!(
        counted < 30,
        "the seed must hold bulk_sent conversations: {counted}"
    );
    let dir = tempfile::tempdir().unwrap();
    let report = sync(
        &sandbox.base_url(),
        &sandbox.token(),
        &dir.path().join("d.db"),
        &["conversations", "messages"],
        SyncMode::FullRefresh,
    )
    .await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    let conversations = report.stream("conversations").unwrap();
    assert_eq!(conversations.records_read, 30);
    assert_eq!(conversations.expected, Some(30), "{conversations:?}");
    sandbox.shutdown().await;
}

/// Table names of the database, sorted.
fn tables(db: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut stmt = c.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn incremental_full_refresh_streams_skip_unchanged_content_but_full_mode_rewrites() {
    let sandbox = drift_sandbox::start(sandbox_config()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("d.db");
    let streams = ["users", "teams", "playbooks", "contact_attributes"];
    let first = sync(
        &sandbox.base_url(),
        &sandbox.token(),
        &db,
        &streams,
        SyncMode::Incremental,
    )
    .await;
    let again = sync(
        &sandbox.base_url(),
        &sandbox.token(),
        &db,
        &streams,
        SyncMode::Incremental,
    )
    .await;
    let full = sync(
        &sandbox.base_url(),
        &sandbox.token(),
        &db,
        &streams,
        SyncMode::FullRefresh,
    )
    .await;
    for s in streams {
        assert!(first.stream(s).unwrap().records_written > 0, "{s}");
        assert_eq!(again.stream(s).unwrap().records_written, 0, "{s}");
        assert_eq!(again.stream(s).unwrap().requests.requests, 1, "{s}");
        assert_eq!(
            full.stream(s).unwrap().records_written,
            first.stream(s).unwrap().records_written,
            "{s}"
        );
    }
    sandbox.shutdown().await;
}

/// A pass over several pages in flight at once (page size 5, 4 fetches at a time) that
/// fails in the middle, then resumes: every conversation, message and contact is written
/// exactly once over the two runs (nothing committed is read again, nothing is skipped).
#[tokio::test]
async fn a_pass_failing_with_pages_in_flight_resumes_writing_each_record_once() {
    let mut config = sandbox_config();
    config.faults = vec![drift_sandbox::FaultSpec {
        route: "conversations.messages".into(),
        kind: drift_sandbox::FaultKind::Status,
        status: Some(400),
        after_requests: 17,
        count: Some(1),
        probability: None,
        delay_ms: None,
    }];
    let sandbox = drift_sandbox::start(config).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("d.db");
    let run = || async {
        let client =
            drift_client::Client::builder(&sandbox.base_url(), SecretString::from(sandbox.token()))
                .rate_limit_per_min(60_000)
                .build()
                .unwrap();
        let source_config = DriftSourceConfig {
            page_size: 5,
            fetch_concurrency: 4,
            checkpoint_interval_ms: 0,
            ..Default::default()
        };
        let source = Arc::new(DriftSource::new(client, source_config));
        let names = ["conversations", "messages", "contacts"].map(String::from);
        let selected = catalog().select(&names, SyncMode::Incremental).unwrap();
        let mut dest = SqliteSink::open(&db).unwrap();
        run_sync(
            source,
            &mut dest,
            selected,
            RunOptions::new("r", "test"),
            Cancel::new(),
            None,
        )
        .await
    };
    let first = run().await;
    assert_eq!(first.status, RunStatus::Failed, "{:?}", first.error);
    let second = run().await;
    assert_eq!(second.status, RunStatus::Succeeded, "{:?}", second.error);
    let conn = rusqlite::Connection::open(&db).unwrap();
    for (stream, expected) in [("conversations", 30), ("messages", 60)] {
        let written = first.stream(stream).unwrap().records_written
            + second.stream(stream).unwrap().records_written;
        assert!(
            first.stream(stream).unwrap().records_written < expected,
            "{stream}: the first run should stop early"
        );
        assert_eq!(written, expected, "{stream} written over both runs");
    }
    let contacts: u64 = conn
        .query_row("SELECT COUNT(*) FROM contacts", [], |r| r.get(0))
        .unwrap();
    assert!(contacts > 0);
    let written = first.stream("contacts").unwrap().records_written
        + second.stream("contacts").unwrap().records_written;
    assert_eq!(
        written, contacts,
        "each contact written once over both runs"
    );
    sandbox.shutdown().await;
}
