//! PostgreSQL sink against the real server (127.0.0.1:5432, database `test`; override
//! with `DRIFTBRIDGE_TEST_POSTGRES_URL`). Each test writes into its own schema and drops it.

use crate::harness::{self, obj, Crash, RejectedRow, Row, SinkUnderTest};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use sinks::{OpenOptions, PostgresSink};
use std::sync::atomic::{AtomicUsize, Ordering};
use sync_core::{Batch, ErrorKind, Record, Sink};
use tokio_postgres::{Client, NoTls};

fn base_url() -> String {
    std::env::var("DRIFTBRIDGE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

async fn connect() -> Client {
    let (client, conn) = tokio_postgres::connect(&base_url(), NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// A schema of its own for one test.
struct Pg {
    schema: String,
    client: Client,
}

impl Pg {
    async fn new(test: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let schema = format!(
            "dbt_{test}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let client = connect().await;
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await
            .unwrap();
        Self { schema, client }
    }

    fn url(&self) -> String {
        format!("{}?schema={}", base_url(), self.schema)
    }

    async fn drop_schema(self) {
        self.client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema
            ))
            .await
            .unwrap();
    }

    /// Names of the tables, views, indexes, ... in the schema.
    async fn relations(&self) -> Vec<String> {
        self.client
            .query(
                "SELECT relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE nspname = $1 ORDER BY relname",
                &[&self.schema],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    async fn column_types(&self, table: &str) -> Vec<(String, String)> {
        self.client
            .query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns
                 WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                &[&self.schema, &table],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }
}

#[async_trait]
impl SinkUnderTest for Pg {
    fn open(&self) -> Box<dyn Sink> {
        Box::new(PostgresSink::open(&self.url()).unwrap())
    }
    async fn rows(&self, stream: &str) -> Vec<Map<String, Value>> {
        let sql = format!("SELECT _raw FROM \"{}\".\"{stream}\"", self.schema);
        match self.client.query(&sql, &[]).await {
            Ok(rows) => rows.iter().map(|r| obj(r.get::<_, Value>(0))).collect(),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {
                vec![]
            }
            Err(e) => panic!("{e}"),
        }
    }
    fn open_hard(&self) -> Box<dyn Sink> {
        let options = OpenOptions {
            hard_deletes: true,
            ..Default::default()
        };
        Box::new(PostgresSink::open_with(&self.url(), options).unwrap())
    }
    async fn marked(&self, stream: &str) -> Vec<Row> {
        let sql = format!(
            "SELECT _raw, _deleted, _deleted_at, _run_id FROM \"{}\".\"{stream}\" ORDER BY {}",
            self.schema,
            harness::order_by(stream)
        );
        self.client
            .query(&sql, &[])
            .await
            .unwrap()
            .iter()
            .map(|r| Row {
                data: obj(r.get(0)),
                deleted: r.get(1),
                deleted_at: r.get::<_, Option<DateTime<Utc>>>(2).map(iso),
                run_id: r.get(3),
            })
            .collect()
    }
    async fn rejected(&self) -> Vec<RejectedRow> {
        let sql = format!(
            "SELECT stream, primary_key, reason, _raw, run_id, rejected_at
             FROM \"{}\"._driftbridge_rejected ORDER BY id",
            self.schema
        );
        self.client
            .query(&sql, &[])
            .await
            .unwrap()
            .iter()
            .map(|r| RejectedRow {
                stream: r.get(0),
                primary_key: r.get(1),
                reason: r.get(2),
                raw: r.get(3),
                run_id: r.get(4),
                rejected_at: iso(r.get(5)),
            })
            .collect()
    }
    async fn break_state_writes(&self) {
        self.client
            .batch_execute(&format!(
                "CREATE FUNCTION \"{0}\".full_disk() RETURNS trigger LANGUAGE plpgsql
                   AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$;
                 CREATE TRIGGER full_disk BEFORE INSERT OR UPDATE ON \"{0}\"._driftbridge_state
                   FOR EACH ROW EXECUTE FUNCTION \"{0}\".full_disk();",
                self.schema
            ))
            .await
            .unwrap();
    }
    fn is_log(&self) -> bool {
        false
    }
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[tokio::test]
async fn full_sync_creates_typed_columns_with_timestamptz_twins() {
    let pg = Pg::new("full").await;
    harness::full_sync(&pg).await;
    let types = pg.column_types("conversations").await;
    let types: Vec<(&str, &str)> = types
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(
        types,
        [
            ("id", "bigint"),
            ("contactId", "bigint"),
            ("status", "text"),
            ("updatedAt", "bigint"),
            ("updatedAt_ts", "timestamp with time zone"),
            ("score", "double precision"),
            ("open", "boolean"),
            ("tags", "jsonb"),
            ("attributes", "jsonb"),
            ("_extracted_at", "timestamp with time zone"),
            ("_run_id", "text"),
            ("_raw", "jsonb"),
            ("_deleted", "boolean"),
            ("_deleted_at", "timestamp with time zone"),
        ]
    );
    let row = pg
        .client
        .query_one(
            &format!(
                "SELECT to_char(\"updatedAt_ts\" AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS'),
                        score, open, attributes, _run_id
                 FROM \"{}\".conversations WHERE id = 1001",
                pg.schema
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "2023-11-14T22:13:21.000");
    assert_eq!(row.get::<_, f64>(1), 0.25);
    assert!(!row.get::<_, bool>(2));
    assert_eq!(
        row.get::<_, Value>(3),
        harness::conversation(1)["attributes"]
    );
    assert_eq!(row.get::<_, String>(4), "run-1");
    let pk: String = pg
        .client
        .query_one(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint
             WHERE conrelid = ($1 || '.conversations')::regclass AND contype = 'p'",
            &[&format!("\"{}\"", pg.schema)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(pk, "PRIMARY KEY (id)");
    pg.drop_schema().await;
}

#[tokio::test]
async fn killed_before_a_commit_and_resumed_lands_every_record_once() {
    let pg = Pg::new("kill_before").await;
    harness::kill_and_resume(&pg, Crash::Before(2)).await;
    pg.drop_schema().await;
}

#[tokio::test]
async fn killed_after_a_commit_and_resumed_lands_every_record_once() {
    let pg = Pg::new("kill_after").await;
    harness::kill_and_resume(&pg, Crash::After(2)).await;
    pg.drop_schema().await;
}

#[tokio::test]
async fn unicode_round_trips() {
    let pg = Pg::new("unicode").await;
    harness::unicode_round_trip(&pg).await;
    let statuses: Vec<String> = pg
        .client
        .query(
            &format!(
                "SELECT status FROM \"{}\".conversations ORDER BY id",
                pg.schema
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(statuses, harness::UNICODE);
    pg.drop_schema().await;
}

#[tokio::test]
async fn schema_change_adds_a_column_and_keeps_a_changed_type_in_raw() {
    let pg = Pg::new("evolve").await;
    let second = harness::schema_change(&pg).await;
    let types = pg.column_types("conversations").await;
    assert!(
        types.contains(&("channel".into(), "text".into())),
        "{types:?}"
    );
    assert!(
        types.contains(&("score".into(), "double precision".into())),
        "the column keeps its type: {types:?}"
    );
    let id = second[0].data["id"].as_i64().unwrap();
    let row = pg
        .client
        .query_one(
            &format!(
                "SELECT channel, score, _raw->>'score' FROM \"{}\".conversations WHERE id = $1",
                pg.schema
            ),
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("email"));
    assert_eq!(
        row.get::<_, Option<f64>>(1),
        None,
        "the new value does not fit"
    );
    assert_eq!(row.get::<_, Option<String>>(2).as_deref(), Some("high"));
    let old: Option<f64> = pg
        .client
        .query_one(
            &format!(
                "SELECT score FROM \"{}\".conversations WHERE id = 1001",
                pg.schema
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(old, Some(0.25), "earlier data kept");
    pg.drop_schema().await;
}

#[tokio::test]
async fn sandbox_sync_matches_the_sandbox() {
    let pg = Pg::new("sandbox").await;
    harness::sandbox_sync(&pg).await;
    pg.drop_schema().await;
}

#[tokio::test]
async fn a_messy_org_quarantines_only_its_unfit_records() {
    let pg = Pg::new("messy").await;
    crate::drift_org::messy_org(&pg).await;
    pg.drop_schema().await;
}

#[tokio::test]
async fn renames_and_deletes_in_drift_reach_the_sink() {
    let pg = Pg::new("changes").await;
    crate::drift_org::changes_reach_the_sink(&pg, false).await;
    pg.drop_schema().await;
}

#[tokio::test]
async fn hard_deletes_in_drift_remove_the_rows() {
    let pg = Pg::new("hard").await;
    crate::drift_org::changes_reach_the_sink(&pg, true).await;
    pg.drop_schema().await;
}

fn batch(records: Vec<Value>, state: Value) -> Batch {
    Batch {
        scope: "s".into(),
        run_id: "r".into(),
        records: records
            .into_iter()
            .map(|v| Record::new("conversations", obj(v)))
            .collect(),
        replace: vec![],
        state: vec![("list".into(), state)],
        quarantined: vec![],
    }
}

async fn prepared(pg: &Pg) -> PostgresSink {
    let mut d = PostgresSink::open(&pg.url()).unwrap();
    d.check().await.unwrap();
    d.prepare(&[harness::conversations(harness::conversations_schema())])
        .await
        .unwrap();
    d
}

#[tokio::test]
async fn a_failed_commit_writes_neither_records_nor_state() {
    let pg = Pg::new("atomic").await;
    let mut d = prepared(&pg).await;
    d.commit(batch(vec![json!({"id": 1})], json!(1)))
        .await
        .unwrap();
    let mut bad = batch(vec![json!({"id": 2})], json!(2));
    bad.records.push(Record::new("nope", obj(json!({"id": 3}))));
    let err = d.commit(bad).await.unwrap_err();
    assert!(err.message.contains("`nope` was not prepared"), "{err}");
    assert_eq!(pg.rows("conversations").await.len(), 1);
    let state = prepared(&pg).await.load_state("s").await.unwrap();
    assert_eq!(state.get("list"), Some(&json!(1)));
    pg.drop_schema().await;
}

#[tokio::test]
async fn upsert_keeps_the_last_version_even_within_one_batch_and_rejects_keyless() {
    let pg = Pg::new("upsert").await;
    let mut d = prepared(&pg).await;
    d.commit(batch(vec![json!({"id": 1, "status": "old"})], json!(1)))
        .await
        .unwrap();
    let report = d
        .commit(batch(
            vec![
                json!({"id": 1, "status": "mid"}),
                json!({"id": 1, "status": "new"}),
                json!({"status": "no id"}),
            ],
            json!(2),
        ))
        .await
        .unwrap();
    assert_eq!(report.written["conversations"], 2);
    assert_eq!(report.rejected.len(), 1);
    let rows = pg.rows("conversations").await;
    assert_eq!(rows, [obj(json!({"id": 1, "status": "new"}))]);
    let rejected: Value = pg
        .client
        .query_one(
            &format!("SELECT _raw FROM \"{}\"._driftbridge_rejected", pg.schema),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rejected, json!({"status": "no id"}));
    pg.drop_schema().await;
}

#[tokio::test]
async fn check_names_an_unknown_user_and_an_unreachable_server() {
    let url = base_url().replace("postgres@", "no_such_user_db@");
    let mut d = PostgresSink::open(&url).unwrap();
    let err = d.check().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Sink);
    assert!(err.message.contains("cannot connect to"), "{err}");
    assert!(err.message.contains("no_such_user_db"), "{err}");
    assert!(err.message.contains("check the host, port"), "{err}");

    let mut d = PostgresSink::open("postgres://me:secret@127.0.0.1:1/test").unwrap();
    let err = d.check().await.unwrap_err();
    assert!(err.message.contains("127.0.0.1:1/test"), "{err}");
    assert!(
        !err.message.contains("secret"),
        "no password in errors: {err}"
    );
    assert_eq!(d.describe(), "postgres://me:****@127.0.0.1:1/test");
}

#[tokio::test]
async fn check_names_a_missing_privilege() {
    let pg = Pg::new("privs").await;
    pg.client
        .batch_execute(&format!(
            "DO $$ BEGIN CREATE ROLE driftbridge_test_reader LOGIN;
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
             CREATE SCHEMA \"{0}\"; REVOKE CREATE ON SCHEMA \"{0}\" FROM PUBLIC;",
            pg.schema
        ))
        .await
        .unwrap();
    let url = base_url().replace("postgres@", "driftbridge_test_reader@");
    let mut d = PostgresSink::open(&format!("{url}?schema={}", pg.schema)).unwrap();
    let err = d.check().await.unwrap_err();
    assert!(
        err.message.contains("may not create tables in schema"),
        "{err}"
    );
    assert!(err.message.contains("GRANT CREATE ON SCHEMA"), "{err}");
    pg.drop_schema().await;
}

#[test]
fn a_bad_url_is_refused_at_open() {
    let err = PostgresSink::open("postgres://u@h:notaport/db")
        .err()
        .unwrap();
    assert!(err.message.contains("not a valid connection URL"), "{err}");
    let err = PostgresSink::open("postgres://u@h/db?schema=")
        .err()
        .unwrap();
    assert!(err.message.contains("`schema=` is empty"), "{err}");
}

#[tokio::test]
async fn a_nul_character_is_replaced_instead_of_failing_the_batch() {
    let pg = Pg::new("nul").await;
    let mut d = prepared(&pg).await;
    d.commit(batch(
        vec![json!({"id": 1, "status": "a\u{0}b", "attributes": {"k\u{0}": ["x\u{0}"]}})],
        json!(1),
    ))
    .await
    .unwrap();
    let rows = pg.rows("conversations").await;
    assert_eq!(
        rows,
        [obj(
            json!({"id": 1, "status": "a\u{fffd}b", "attributes": {"k\u{fffd}": ["x\u{fffd}"]}})
        )]
    );
    pg.drop_schema().await;
}

#[tokio::test]
async fn a_table_driftbridge_did_not_create_is_refused_and_left_unchanged() {
    let pg = Pg::new("foreign").await;
    pg.client
        .batch_execute(&format!(
            "CREATE SCHEMA \"{0}\"; CREATE TABLE \"{0}\".users (x int); INSERT INTO \"{0}\".users VALUES (1);
             CREATE VIEW \"{0}\".conversations AS SELECT 1 AS id;",
            pg.schema
        ))
        .await
        .unwrap();
    let before = pg.relations().await;

    let mut d = PostgresSink::open(&pg.url()).unwrap();
    d.check().await.unwrap();
    // The first stream would be new; the second is the user's table: refused before either
    // is created.
    let fresh = sync_core::Stream {
        name: "fresh".into(),
        ..harness::users()
    };
    let err = d.prepare(&[fresh, harness::users()]).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(
        err.message.starts_with(&format!(
            "postgres: table `users` in schema `{}` of ",
            pg.schema
        )),
        "{err}"
    );
    assert!(
        err.message.ends_with(
            " was not created by driftbridge (it lacks the columns _extracted_at, _run_id, \
             _raw that driftbridge adds); it was left unchanged: choose another schema \
             (?schema=NAME in --destination), or rename or drop that table"
        ),
        "{err}"
    );
    let err = d
        .prepare(&[harness::conversations(harness::conversations_schema())])
        .await
        .unwrap_err();
    assert!(
        err.message.contains("table `conversations` in schema")
            && err.message.contains("(it is a view)"),
        "{err}"
    );

    // Nothing changed: the columns and rows as they were, no table created.
    assert_eq!(pg.relations().await, before);
    assert_eq!(
        pg.column_types("users").await,
        [("x".to_owned(), "integer".to_owned())]
    );
    let rows = pg
        .client
        .query(&format!("SELECT x FROM \"{}\".users", pg.schema), &[])
        .await
        .unwrap();
    assert_eq!(
        rows.iter().map(|r| r.get::<_, i32>(0)).collect::<Vec<_>>(),
        [1]
    );
    pg.drop_schema().await;
}

#[tokio::test]
async fn a_user_table_named_like_a_bookkeeping_table_is_refused_and_nothing_is_created() {
    for (table, lacks) in [
        (
            "_driftbridge_state",
            "the columns scope, key, state, updated_at",
        ),
        (
            "_driftbridge_rejected",
            "the columns id, run_id, stream, reason, _raw, rejected_at",
        ),
    ] {
        let pg = Pg::new("bookkeeping").await;
        pg.client
            .batch_execute(&format!(
                "CREATE SCHEMA \"{0}\"; CREATE TABLE \"{0}\".{table} (x text);
                 INSERT INTO \"{0}\".{table} VALUES ('mine');",
                pg.schema
            ))
            .await
            .unwrap();
        let before = pg.relations().await;
        let mut d = PostgresSink::open(&pg.url()).unwrap();
        let err = d.prepare(&[harness::users()]).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid, "{err}");
        assert!(
            err.message.starts_with(&format!(
                "postgres: table `{table}` in schema `{}` of ",
                pg.schema
            )),
            "{err}"
        );
        assert!(
            err.message.ends_with(&format!(
                " was not created by driftbridge (it lacks {lacks} that driftbridge creates); \
                 it was left unchanged: choose another schema (?schema=NAME in --destination), \
                 or rename or drop that table"
            )),
            "{err}"
        );
        assert_eq!(pg.relations().await, before, "nothing created");
        assert_eq!(
            pg.column_types(table).await,
            [("x".to_owned(), "text".to_owned())]
        );
        pg.drop_schema().await;
    }
}

#[tokio::test]
async fn quarantined_records_are_committed_with_the_batch() {
    let pg = Pg::new("quarantine").await;
    harness::quarantine_commits_with_the_batch(&pg).await;
    pg.drop_schema().await;
}

#[tokio::test]
async fn a_tombstone_marks_the_row_and_an_upsert_revives_it() {
    let pg = Pg::new("tombstone").await;
    harness::tombstone_marks_and_upsert_revives(&pg).await;
    pg.drop_schema().await;
}

#[tokio::test]
async fn the_last_operation_on_a_key_in_a_batch_wins() {
    let pg = Pg::new("order").await;
    harness::last_operation_in_a_batch_wins(&pg).await;
    pg.drop_schema().await;
}

#[tokio::test]
async fn an_older_version_never_overwrites_a_newer_one() {
    let pg = Pg::new("newer").await;
    harness::an_older_version_never_overwrites_a_newer_one(&pg).await;
    pg.drop_schema().await;
}

#[tokio::test]
async fn hard_deletes_remove_the_rows() {
    let pg = Pg::new("hard").await;
    harness::hard_deletes_remove_rows(&pg).await;
    pg.drop_schema().await;
}

#[tokio::test]
async fn a_replace_batch_keeps_rows_it_does_not_hold() {
    let pg = Pg::new("replace").await;
    harness::replace_upserts_and_keeps_rows_not_in_the_batch(&pg).await;
    pg.drop_schema().await;
}

#[tokio::test]
async fn an_engine_run_quarantines_and_deletes() {
    let pg = Pg::new("engine").await;
    harness::engine_run_quarantines_and_deletes(&pg).await;
    pg.drop_schema().await;
}

#[tokio::test]
async fn tables_of_an_older_version_are_migrated_and_keep_their_rows() {
    let pg = Pg::new("migrate").await;
    // The layout the previous version created (its CREATE statements), with rows.
    pg.client
        .batch_execute(&format!(
            r#"CREATE SCHEMA "{0}";
               CREATE TABLE "{0}"._driftbridge_state (
                 scope text NOT NULL, key text NOT NULL, state jsonb NOT NULL,
                 updated_at timestamptz NOT NULL, PRIMARY KEY (scope, key));
               CREATE TABLE "{0}"._driftbridge_rejected (
                 id bigserial PRIMARY KEY, run_id text, stream text NOT NULL,
                 reason text NOT NULL, _raw jsonb NOT NULL,
                 rejected_at timestamptz NOT NULL DEFAULT now());
               CREATE TABLE "{0}"."users" ("id" bigint, "name" text,
                 "_extracted_at" timestamptz NOT NULL, "_run_id" text, "_raw" jsonb NOT NULL,
                 PRIMARY KEY ("id"));
               INSERT INTO "{0}"._driftbridge_state VALUES ('s', 'list', '{{"next":7}}', now());
               INSERT INTO "{0}"._driftbridge_rejected (run_id, stream, reason, _raw, rejected_at)
                 VALUES ('old', 'users', 'primary key field `id` is missing or null',
                         '{{"name":"x"}}', '2023-01-01T00:00:00Z');
               INSERT INTO "{0}".users VALUES
                 (1, 'Ana', '2023-01-01T00:00:00Z', 'old', '{{"id":1,"name":"Ana"}}'),
                 (2, 'Bo', '2023-01-01T00:00:00Z', 'old', '{{"id":2,"name":"Bo"}}');"#,
            pg.schema
        ))
        .await
        .unwrap();
    let mut d = harness::prepared(pg.open()).await;
    let types = pg.column_types("users").await;
    assert_eq!(
        types[types.len() - 2..],
        [
            ("_deleted".to_owned(), "boolean".to_owned()),
            (
                "_deleted_at".to_owned(),
                "timestamp with time zone".to_owned()
            )
        ]
    );
    assert!(
        pg.column_types("_driftbridge_rejected")
            .await
            .contains(&("primary_key".to_owned(), "text".to_owned())),
        "primary_key added"
    );
    let live = |id: i64, name: &str| Row {
        data: obj(json!({"id": id, "name": name})),
        deleted: false,
        deleted_at: None,
        run_id: "old".into(),
    };
    assert_eq!(
        pg.marked("users").await,
        [live(1, "Ana"), live(2, "Bo")],
        "rows kept, live"
    );
    assert_eq!(
        pg.rejected().await,
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
    // The migrated tables take upserts, tombstones and quarantined records.
    let b = Batch {
        scope: "s".into(),
        run_id: "new".into(),
        records: vec![
            Record::new("users", obj(json!({"id": 1, "name": "Ana B."}))),
            Record {
                extracted_at: harness::T2,
                ..Record::tombstone("users", obj(json!({"id": 2})))
            },
        ],
        quarantined: vec![sync_core::Quarantined::new(
            "users",
            Some("9".into()),
            "bad",
            "{}",
        )],
        ..Batch::default()
    };
    let report = d.commit(b).await.unwrap();
    assert_eq!(report.deleted["users"], 1);
    assert_eq!(
        pg.marked("users").await,
        [
            Row {
                run_id: "new".into(),
                ..live(1, "Ana B.")
            },
            Row {
                deleted: true,
                deleted_at: Some(harness::iso(harness::T2)),
                run_id: "new".into(),
                ..live(2, "Bo")
            }
        ]
    );
    assert_eq!(pg.rejected().await[1].primary_key.as_deref(), Some("9"));
    pg.drop_schema().await;
}

#[async_trait]
impl crate::analyst::Db for Pg {
    fn open_with(&self, options: OpenOptions) -> Box<dyn Sink> {
        Box::new(PostgresSink::open_with(&self.url(), options).unwrap())
    }
    async fn texts(&self, sql: &str) -> Vec<Option<String>> {
        let sql = sql.replace("{t}", &format!("\"{}\".", self.schema));
        self.client
            .query(&sql, &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, Option<String>>(0))
            .collect()
    }
    async fn column_type(&self, table: &str, column: &str) -> Option<String> {
        self.column_types(table)
            .await
            .into_iter()
            .find(|(c, _)| c == column)
            .map(|(_, t)| t)
    }
    fn types(&self) -> [&'static str; 6] {
        [
            "text",
            "double precision",
            "boolean",
            "bigint",
            "_ts",
            "timestamp with time zone",
        ]
    }
}

#[tokio::test]
async fn analyst_tables_flatten_contacts_and_fill_child_tables() {
    let pg = Pg::new("analyst").await;
    crate::analyst::analyst_tables(&pg).await;
    pg.drop_schema().await;
}

#[tokio::test]
async fn history_mode_keeps_versions_and_closes_deletions() {
    let pg = Pg::new("history").await;
    crate::analyst::history_mode(&pg).await;
    pg.drop_schema().await;
}

#[tokio::test]
async fn history_mode_keeps_one_open_version_after_a_crash() {
    let pg = Pg::new("history_crash").await;
    crate::analyst::history_crash_and_resume(&pg).await;
    pg.drop_schema().await;
}

#[tokio::test]
async fn schema_contracts_freeze_discard_and_evolve() {
    let pg = Pg::new("contracts").await;
    crate::analyst::schema_contracts(&pg).await;
    pg.drop_schema().await;
}
