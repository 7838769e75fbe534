//! SQLite sink: layout, upsert, atomic state, replace, rejects, engine run, the
//! shared quarantine and delete scenarios, migration of older tables.

use crate::harness::{self, obj, RejectedRow, Row, SinkUnderTest};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension};
use serde_json::{json, Map, Value};
use sinks::{OpenOptions, SqliteSink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use sync_core::testing::{ScriptedSource, Step};
use sync_core::{
    run_sync, Batch, Cancel, Catalog, Message, Record, RunOptions, RunStatus, Sink, Stream,
    StreamStatus, SyncMode, WriteMode, EPOCH_MS_FORMAT,
};

fn messages_stream() -> Stream {
    Stream {
        name: "messages".into(),
        json_schema: json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "additionalProperties": true, "properties": {
            "id": {"type": "integer"},
            "conversationId": {"type": ["null", "integer"]},
            "body": {"type": ["null", "string"]},
            "createdAt": {"type": ["null", "integer"], "format": EPOCH_MS_FORMAT},
            "score": {"type": ["null", "number"]},
            "author": {"type": ["null", "object"]},
            "bot": {"type": ["null", "boolean"]}
        }}),
        primary_key: vec!["id".into()],
        cursor_field: None,
        write_mode: WriteMode::Upsert,
        index_fields: vec!["conversationId".into()],
        flatten: None,
        children: vec![],
    }
}

fn users_stream() -> Stream {
    Stream {
        name: "users".into(),
        json_schema: json!({"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": ["null", "string"]}}}),
        primary_key: vec!["id".into()],
        cursor_field: None,
        write_mode: WriteMode::Replace,
        index_fields: vec![],
        flatten: None,
        children: vec![],
    }
}

fn record(stream: &str, v: Value) -> Record {
    let Value::Object(map) = v else {
        panic!("object")
    };
    Record {
        stream: stream.into(),
        data: map,
        extracted_at: 1_700_000_000_000,
        tombstone: false,
    }
}

fn batch(records: Vec<Record>, state: Vec<(&str, Value)>) -> Batch {
    Batch {
        scope: "drift:test".into(),
        run_id: "run-1".into(),
        records,
        replace: vec![],
        state: state.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        quarantined: vec![],
    }
}

async fn open(path: &Path) -> SqliteSink {
    let mut d = SqliteSink::open(path).unwrap();
    d.prepare(&[messages_stream(), users_stream()])
        .await
        .unwrap();
    d
}

fn query_strings(path: &Path, sql: &str) -> Vec<String> {
    let c = Connection::open(path).unwrap();
    let mut stmt = c.prepare(sql).unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn table_has_schema_columns_iso_twins_meta_columns_and_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let mut d = open(&path).await;
    let msg = json!({"id": 12400811902_i64, "conversationId": 3790012245_i64,
        "body": "<p>Grüße, 你好 👋</p>", "createdAt": 1700127760034_i64, "score": 0.5,
        "author": {"type": "user", "id": 2411803, "bot": false}, "bot": true,
        "buttons": [{"label": "Starter"}]});
    let report = d
        .commit(batch(vec![record("messages", msg.clone())], vec![]))
        .await
        .unwrap();
    assert_eq!(report.written["messages"], 1);

    let cols = query_strings(&path, "SELECT name FROM pragma_table_info('messages')");
    assert_eq!(
        cols,
        [
            "id",
            "conversationId",
            "body",
            "createdAt",
            "createdAt_iso",
            "score",
            "author",
            "bot",
            "_extracted_at",
            "_run_id",
            "_raw",
            "_deleted",
            "_deleted_at"
        ]
    );
    let c = Connection::open(&path).unwrap();
    let row: (i64, String, String, f64, String, i64, String, String, String) = c
        .query_row(
            "SELECT conversationId, body, createdAt_iso, score, author, bot, _extracted_at, _run_id, _raw FROM messages",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?)),
        )
        .unwrap();
    assert_eq!(row.0, 3790012245);
    assert_eq!(row.1, "<p>Grüße, 你好 👋</p>");
    assert_eq!(row.2, "2023-11-16T09:42:40.034Z");
    assert_eq!(row.3, 0.5);
    assert_eq!(
        serde_json::from_str::<Value>(&row.4).unwrap(),
        msg["author"]
    );
    assert_eq!(row.5, 1);
    assert_eq!(row.6, "2023-11-14T22:13:20.000Z");
    assert_eq!(row.7, "run-1");
    assert_eq!(
        serde_json::from_str::<Value>(&row.8).unwrap(),
        msg,
        "_raw keeps unknown fields"
    );
    let idx = query_strings(
        &path,
        "SELECT name FROM pragma_index_list('messages') WHERE origin = 'c'",
    );
    assert_eq!(idx, ["idx_messages_conversationId"]);
    let plan: Vec<String> = Connection::open(&path)
        .unwrap()
        .prepare("EXPLAIN QUERY PLAN SELECT * FROM messages WHERE conversationId = 1")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(3))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        plan.iter()
            .any(|p| p.contains("idx_messages_conversationId")),
        "{plan:?}"
    );
}

#[tokio::test]
async fn upsert_keeps_one_row_per_primary_key_with_the_latest_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let mut d = open(&path).await;
    d.commit(batch(
        vec![record("messages", json!({"id": 1, "body": "old"}))],
        vec![],
    ))
    .await
    .unwrap();
    d.commit(batch(
        vec![
            record("messages", json!({"id": 1, "body": "new"})),
            record("messages", json!({"id": 2})),
        ],
        vec![],
    ))
    .await
    .unwrap();
    assert_eq!(
        query_strings(
            &path,
            "SELECT coalesce(body, '-') FROM messages ORDER BY id"
        ),
        ["new", "-"]
    );
}

#[tokio::test]
async fn state_is_committed_with_the_batch_and_a_failed_batch_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let mut d = open(&path).await;
    d.commit(batch(
        vec![record("messages", json!({"id": 1}))],
        vec![("conversations", json!({"page": 1}))],
    ))
    .await
    .unwrap();
    // A record of an unprepared stream makes the commit fail after a valid record was written.
    let bad = batch(
        vec![
            record("messages", json!({"id": 2})),
            record("nope", json!({"id": 3})),
        ],
        vec![("conversations", json!({"page": 2}))],
    );
    let err = d.commit(bad).await.unwrap_err();
    assert!(err.message.contains("`nope` was not prepared"), "{err}");
    assert_eq!(
        query_strings(&path, "SELECT CAST(id AS TEXT) FROM messages"),
        ["1"]
    );
    // A fresh handle (the next run) reads the state of the last successful commit.
    let mut again = open(&path).await;
    let state = again.load_state("drift:test").await.unwrap();
    assert_eq!(state.get("conversations"), Some(&json!({"page": 1})));
    assert!(
        again.load_state("drift:other").await.unwrap().is_empty(),
        "state is per scope"
    );
}

#[tokio::test]
async fn replace_upserts_and_no_longer_empties_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let mut d = open(&path).await;
    d.commit(batch(
        vec![
            record("users", json!({"id": 1})),
            record("users", json!({"id": 2})),
        ],
        vec![],
    ))
    .await
    .unwrap();
    let mut b = batch(
        vec![record("users", json!({"id": 3, "name": "Zoë"}))],
        vec![],
    );
    b.replace = vec!["users".into()];
    d.commit(b).await.unwrap();
    assert_eq!(
        query_strings(
            &path,
            "SELECT id || ':' || coalesce(name, '-') || ':' || _deleted FROM users ORDER BY id"
        ),
        ["1:-:0", "2:-:0", "3:Zoë:0"],
        "rows not in the replace batch stay (only tombstones mark rows deleted)"
    );
}

#[tokio::test]
async fn record_without_primary_key_is_quarantined_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let mut d = open(&path).await;
    let report = d
        .commit(batch(
            vec![
                record("messages", json!({"id": null, "body": "x"})),
                record("messages", json!({"id": 5})),
            ],
            vec![],
        ))
        .await
        .unwrap();
    assert_eq!(report.written["messages"], 1);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(
        report.rejected[0].reason,
        "primary key field `id` is missing or null"
    );
    let rejected = query_strings(
        &path,
        "SELECT stream || ' | ' || coalesce(primary_key, 'NULL') || ' | ' || reason || ' | ' || _raw || ' | ' || run_id
         FROM _driftbridge_rejected",
    );
    assert_eq!(
        rejected,
        [
            r#"messages | NULL | primary key field `id` is missing or null | {"id":null,"body":"x"} | run-1"#
        ]
    );
}

#[tokio::test]
async fn new_schema_property_adds_a_column_to_an_existing_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    open(&path).await;
    let mut s = messages_stream();
    s.json_schema["properties"]["editedAt"] =
        json!({"type": ["null", "integer"], "format": EPOCH_MS_FORMAT});
    let mut d = SqliteSink::open(&path).unwrap();
    d.prepare(&[s]).await.unwrap();
    d.commit(batch(
        vec![record("messages", json!({"id": 1, "editedAt": 0}))],
        vec![],
    ))
    .await
    .unwrap();
    assert_eq!(
        query_strings(&path, "SELECT editedAt_iso FROM messages"),
        ["1970-01-01T00:00:00.000Z"]
    );
}

fn step_record(stream: &str, data: Value) -> Step {
    let Value::Object(map) = data else { panic!() };
    Step::Send(Message::Record(Record::new(stream, map)))
}

#[tokio::test]
async fn engine_run_with_a_fake_source_lands_records_and_state_and_resumes_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let catalog = Catalog {
        streams: vec![messages_stream(), users_stream()],
    };
    let steps = vec![
        step_record("messages", json!({"id": 1, "conversationId": 10})),
        step_record("messages", json!({"id": 2, "conversationId": 10})),
        Step::Send(Message::Checkpoint {
            key: "messages".into(),
            stream: "messages".into(),
            state: json!({"done": [10]}),
        }),
        step_record("users", json!({"id": 7, "name": "Ana"})),
        Step::Send(Message::Status {
            stream: "users".into(),
            status: StreamStatus::Succeeded,
        }),
        Step::Send(Message::Status {
            stream: "messages".into(),
            status: StreamStatus::Succeeded,
        }),
    ];
    let source = Arc::new(ScriptedSource::new(catalog.clone(), steps));
    let streams = catalog
        .select(&["all".into()], SyncMode::Incremental)
        .unwrap();
    let mut dest = SqliteSink::open(&path).unwrap();
    let report = run_sync(
        source,
        &mut dest,
        streams.clone(),
        RunOptions::new("r1", "scope"),
        Cancel::new(),
        None,
    )
    .await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_eq!(report.stream("messages").unwrap().records_written, 2);
    assert_eq!(report.stream("users").unwrap().records_written, 1);
    assert_eq!(query_strings(&path, "SELECT name FROM users"), ["Ana"]);

    let second = Arc::new(ScriptedSource::new(catalog, vec![]));
    let mut dest = SqliteSink::open(&path).unwrap();
    run_sync(
        second.clone(),
        &mut dest,
        streams,
        RunOptions::new("r2", "scope"),
        Cancel::new(),
        None,
    )
    .await;
    assert_eq!(
        second.seen_state().unwrap().get("messages"),
        Some(&json!({"done": [10]}))
    );
}

fn schema_of(path: &Path) -> Vec<String> {
    query_strings(
        path,
        "SELECT type || ' ' || name || ': ' || sql FROM sqlite_master ORDER BY name",
    )
}

#[tokio::test]
async fn a_table_driftbridge_did_not_create_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE Users(x int); INSERT INTO Users VALUES (1);
             CREATE VIEW messages AS SELECT 1 AS id;",
        )
        .unwrap();
    let before = schema_of(&path);

    let mut d = SqliteSink::open(&path).unwrap();
    // The first stream would be new; the second is the user's table (SQLite names are
    // case-insensitive): refused before either is created.
    let fresh = Stream {
        name: "fresh".into(),
        ..users_stream()
    };
    let err = d.prepare(&[fresh, users_stream()]).await.unwrap_err();
    assert_eq!(err.kind, sync_core::ErrorKind::Invalid);
    assert_eq!(
        err.message,
        format!(
            "sqlite: table `users` in {} was not created by driftbridge (it lacks the columns \
             _extracted_at, _run_id, _raw that driftbridge adds); it was left unchanged: choose \
             another database file, or rename or drop that table",
            path.display()
        )
    );
    let err = d.prepare(&[messages_stream()]).await.unwrap_err();
    assert!(
        err.message.contains("table `messages` in") && err.message.contains("(it is a view)"),
        "{err}"
    );

    // Nothing changed: no column added, no table created (not even the bookkeeping ones or
    // the first stream's), the rows and the journal mode as they were.
    assert_eq!(schema_of(&path), before);
    assert_eq!(
        query_strings(&path, "SELECT CAST(x AS TEXT) FROM Users"),
        ["1"]
    );
    assert_eq!(query_strings(&path, "PRAGMA journal_mode"), ["delete"]);
    assert!(d.load_state("drift:test").await.unwrap().is_empty());
}

#[tokio::test]
async fn missing_parent_directories_of_the_database_are_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nonexistent/dir/y.db");
    let mut d = open(&path).await;
    d.commit(batch(
        vec![record("users", json!({"id": 1, "name": "Ana"}))],
        vec![],
    ))
    .await
    .unwrap();
    assert_eq!(query_strings(&path, "SELECT name FROM users"), ["Ana"]);

    // A parent that cannot be created: the error names it and the fix.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let err = SqliteSink::open(&file.join("sub/y.db")).err().unwrap();
    let message = &err.message;
    assert!(
        message.starts_with(&format!(
            "sqlite: cannot create directory {}: ",
            file.join("sub").display()
        )),
        "{message}"
    );
    assert!(
        message.ends_with("; create it or choose a writable location"),
        "{message}"
    );
}

#[tokio::test]
async fn a_user_table_named_like_a_bookkeeping_table_is_refused_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    for (table, lacks) in [
        (
            "_driftbridge_state",
            "the columns scope, key, state, updated_at",
        ),
        (
            "_DRIFTBRIDGE_REJECTED",
            "the columns id, run_id, stream, reason, _raw, rejected_at",
        ),
    ] {
        let path = dir.path().join(format!("{table}.db"));
        Connection::open(&path)
            .unwrap()
            .execute_batch(&format!(
                "CREATE TABLE {table}(x text); INSERT INTO {table} VALUES ('mine');"
            ))
            .unwrap();
        let before = schema_of(&path);
        let mut d = SqliteSink::open(&path).unwrap();
        let err = d.prepare(&[users_stream()]).await.unwrap_err();
        assert_eq!(err.kind, sync_core::ErrorKind::Invalid, "{err}");
        assert_eq!(
            err.message,
            format!(
                "sqlite: table `{}` in {} was not created by driftbridge (it lacks {lacks} \
                 that driftbridge creates); it was left unchanged: choose another database \
                 file, or rename or drop that table",
                table.to_lowercase(),
                path.display()
            )
        );
        // Neither `users` nor the other bookkeeping table was created.
        assert_eq!(schema_of(&path), before, "{table}");
    }

    // A state table driftbridge created passes.
    let path = dir.path().join("ours.db");
    open(&path).await;
    let mut again = SqliteSink::open(&path).unwrap();
    again.prepare(&[users_stream()]).await.unwrap();
}

/// A database file of its own, seen through the shared scenarios.
struct Sqlite(tempfile::TempDir);

impl Sqlite {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }
    fn path(&self) -> PathBuf {
        self.0.path().join("d.db")
    }
    fn conn(&self) -> Connection {
        Connection::open(self.path()).unwrap()
    }
    fn has_table(&self, table: &str) -> bool {
        self.conn()
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |_| Ok(()),
            )
            .optional()
            .unwrap()
            .is_some()
    }
}

#[async_trait]
impl SinkUnderTest for Sqlite {
    fn open(&self) -> Box<dyn Sink> {
        Box::new(SqliteSink::open(&self.path()).unwrap())
    }
    fn open_hard(&self) -> Box<dyn Sink> {
        let options = OpenOptions {
            hard_deletes: true,
            ..Default::default()
        };
        Box::new(SqliteSink::open_with(&self.path(), options).unwrap())
    }
    async fn rows(&self, stream: &str) -> Vec<Map<String, Value>> {
        if !self.has_table(stream) {
            return vec![];
        }
        query_strings(&self.path(), &format!("SELECT _raw FROM \"{stream}\""))
            .iter()
            .map(|raw| obj(serde_json::from_str(raw).unwrap()))
            .collect()
    }
    async fn marked(&self, stream: &str) -> Vec<Row> {
        let c = self.conn();
        let mut stmt = c
            .prepare(&format!(
                "SELECT _raw, _deleted, _deleted_at, _run_id FROM \"{stream}\" ORDER BY {}",
                harness::order_by(stream)
            ))
            .unwrap();
        stmt.query_map([], |r| {
            Ok(Row {
                data: obj(serde_json::from_str(&r.get::<_, String>(0)?).unwrap()),
                deleted: match r.get::<_, i64>(1)? {
                    0 => false,
                    1 => true,
                    other => panic!("_deleted is {other}"),
                },
                deleted_at: r.get(2)?,
                run_id: r.get(3)?,
            })
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }
    async fn rejected(&self) -> Vec<RejectedRow> {
        let c = self.conn();
        let mut stmt = c
            .prepare(
                "SELECT stream, primary_key, reason, _raw, run_id, rejected_at
                 FROM _driftbridge_rejected ORDER BY id",
            )
            .unwrap();
        stmt.query_map([], |r| {
            Ok(RejectedRow {
                stream: r.get(0)?,
                primary_key: r.get(1)?,
                reason: r.get(2)?,
                raw: harness::raw_json(&r.get::<_, String>(3)?),
                run_id: r.get(4)?,
                rejected_at: r.get(5)?,
            })
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }
    async fn break_state_writes(&self) {
        self.conn()
            .execute_batch(
                "CREATE TRIGGER full_disk BEFORE INSERT ON _driftbridge_state
                 BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
            )
            .unwrap();
    }
    fn is_log(&self) -> bool {
        false
    }
}

#[tokio::test]
async fn full_sync_lands_every_record_once() {
    harness::full_sync(&Sqlite::new()).await;
}

#[tokio::test]
async fn quarantined_records_are_committed_with_the_batch() {
    harness::quarantine_commits_with_the_batch(&Sqlite::new()).await;
}

#[tokio::test]
async fn a_tombstone_marks_the_row_and_an_upsert_revives_it() {
    harness::tombstone_marks_and_upsert_revives(&Sqlite::new()).await;
}

#[tokio::test]
async fn the_last_operation_on_a_key_in_a_batch_wins() {
    harness::last_operation_in_a_batch_wins(&Sqlite::new()).await;
}

#[tokio::test]
async fn hard_deletes_remove_the_rows() {
    harness::hard_deletes_remove_rows(&Sqlite::new()).await;
}

#[tokio::test]
async fn an_older_version_never_overwrites_a_newer_one() {
    harness::an_older_version_never_overwrites_a_newer_one(&Sqlite::new()).await;
}

#[tokio::test]
async fn a_replace_batch_keeps_rows_it_does_not_hold() {
    harness::replace_upserts_and_keeps_rows_not_in_the_batch(&Sqlite::new()).await;
}

#[tokio::test]
async fn an_engine_run_quarantines_and_deletes() {
    harness::engine_run_quarantines_and_deletes(&Sqlite::new()).await;
}

#[tokio::test]
async fn a_messy_org_quarantines_only_its_unfit_records() {
    crate::drift_org::messy_org(&Sqlite::new()).await;
}

#[tokio::test]
async fn renames_and_deletes_in_drift_reach_the_sink() {
    crate::drift_org::changes_reach_the_sink(&Sqlite::new(), false).await;
}

#[tokio::test]
async fn hard_deletes_in_drift_remove_the_rows() {
    crate::drift_org::changes_reach_the_sink(&Sqlite::new(), true).await;
}

#[tokio::test]
async fn tables_of_an_older_version_are_migrated_and_keep_their_rows() {
    let sink = Sqlite::new();
    // The layout the previous version created (its CREATE statements), with rows.
    sink.conn()
        .execute_batch(
            r#"CREATE TABLE _driftbridge_state (
                 scope TEXT NOT NULL, key TEXT NOT NULL, state TEXT NOT NULL,
                 updated_at TEXT NOT NULL, PRIMARY KEY (scope, key));
               CREATE TABLE _driftbridge_rejected (
                 id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, stream TEXT NOT NULL,
                 reason TEXT NOT NULL, _raw TEXT NOT NULL, rejected_at TEXT NOT NULL);
               CREATE TABLE "users" ("id" INTEGER, "name" TEXT, "_extracted_at" TEXT NOT NULL,
                 "_run_id" TEXT, "_raw" TEXT NOT NULL, PRIMARY KEY ("id"));
               INSERT INTO _driftbridge_state VALUES ('s', 'list', '{"next":7}', '2023-01-01T00:00:00.000Z');
               INSERT INTO _driftbridge_rejected (run_id, stream, reason, _raw, rejected_at)
                 VALUES ('old', 'users', 'primary key field `id` is missing or null', '{"name":"x"}', '2023-01-01T00:00:00.000Z');
               INSERT INTO users VALUES (1, 'Ana', '2023-01-01T00:00:00.000Z', 'old', '{"id":1,"name":"Ana"}');
               INSERT INTO users VALUES (2, 'Bo', '2023-01-01T00:00:00.000Z', 'old', '{"id":2,"name":"Bo"}');"#,
        )
        .unwrap();
    let mut d = harness::prepared(sink.open()).await;
    assert_eq!(
        query_strings(
            &sink.path(),
            "SELECT name || ' ' || type || ' ' || \"notnull\" || ' ' || coalesce(dflt_value, '-')
             FROM pragma_table_info('users') WHERE name LIKE '\\_deleted%' ESCAPE '\\'"
        ),
        ["_deleted INTEGER 1 0", "_deleted_at TEXT 0 -"]
    );
    let live = |id: i64, name: &str| Row {
        data: obj(json!({"id": id, "name": name})),
        deleted: false,
        deleted_at: None,
        run_id: "old".into(),
    };
    assert_eq!(
        sink.marked("users").await,
        [live(1, "Ana"), live(2, "Bo")],
        "rows kept, live"
    );
    assert_eq!(
        sink.rejected().await,
        [RejectedRow {
            stream: "users".into(),
            primary_key: None,
            reason: "primary key field `id` is missing or null".into(),
            raw: json!({"name": "x"}),
            run_id: "old".into(),
            rejected_at: "2023-01-01T00:00:00.000Z".into(),
        }]
    );
    assert_eq!(
        d.load_state("s").await.unwrap().get("list"),
        Some(&json!({"next": 7}))
    );
    // The migrated tables take tombstones and quarantined records.
    let mut b = batch(
        vec![Record {
            extracted_at: harness::T2,
            ..Record::tombstone("users", obj(json!({"id": 2})))
        }],
        vec![],
    );
    b.quarantined = vec![sync_core::Quarantined::new(
        "users",
        Some("9".into()),
        "bad",
        "{}",
    )];
    let report = d.commit(b).await.unwrap();
    assert_eq!(report.deleted["users"], 1);
    let rows = sink.marked("users").await;
    assert_eq!(rows[0], live(1, "Ana"));
    assert_eq!(
        rows[1],
        Row {
            deleted: true,
            deleted_at: Some(harness::iso(harness::T2)),
            run_id: "run-1".into(),
            ..live(2, "Bo")
        }
    );
    assert_eq!(sink.rejected().await[1].primary_key.as_deref(), Some("9"));
}

#[async_trait]
impl crate::analyst::Db for Sqlite {
    fn open_with(&self, options: OpenOptions) -> Box<dyn Sink> {
        Box::new(SqliteSink::open_with(&self.path(), options).unwrap())
    }
    async fn texts(&self, sql: &str) -> Vec<Option<String>> {
        let c = self.conn();
        let mut stmt = c.prepare(&sql.replace("{t}", "")).unwrap();
        stmt.query_map([], |r| r.get::<_, Option<String>>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
    async fn column_type(&self, table: &str, column: &str) -> Option<String> {
        self.conn()
            .query_row(
                &format!("SELECT lower(type) FROM pragma_table_info('{table}') WHERE name = ?1"),
                [column],
                |r| r.get(0),
            )
            .optional()
            .unwrap()
    }
    fn types(&self) -> [&'static str; 6] {
        ["text", "real", "integer", "integer", "_iso", "text"]
    }
}

#[tokio::test]
async fn analyst_tables_flatten_contacts_and_fill_child_tables() {
    crate::analyst::analyst_tables(&Sqlite::new()).await;
}

#[tokio::test]
async fn history_mode_keeps_versions_and_closes_deletions() {
    crate::analyst::history_mode(&Sqlite::new()).await;
}

#[tokio::test]
async fn history_mode_keeps_one_open_version_after_a_crash() {
    crate::analyst::history_crash_and_resume(&Sqlite::new()).await;
}

#[tokio::test]
async fn schema_contracts_freeze_discard_and_evolve() {
    crate::analyst::schema_contracts(&Sqlite::new()).await;
}
