//! PostgreSQL sink (`postgres://user[:password]@host:port/db[?schema=NAME]`, cargo
//! feature `postgres`): one table per stream in schema `NAME` (default `public`), upsert on
//! the primary key, state in the same transaction as the records.
//!
//! Table layout for a stream (name = stream name, identifiers quoted, so `conversationId`
//! keeps its case):
//! - one column per top-level schema property: `integer` -> bigint, `number` -> double
//!   precision, `string` -> text, `boolean` -> boolean, objects, arrays and mixed types ->
//!   jsonb;
//! - `<field>_ts timestamptz`: twin of every epoch-millisecond field (REFERENCE §1);
//! - `_extracted_at timestamptz`, `_run_id text` (the run that last changed the row), `_raw
//!   jsonb` (the whole record, so fields not in the schema are kept);
//! - `_deleted boolean NOT NULL DEFAULT false` and `_deleted_at timestamptz` (null while
//!   live): soft deletes, see below; primary key from the stream.
//!
//! A batch is loaded with binary `COPY` into a temporary table shaped like the target
//! (`LIKE`, dropped at commit), then merged with `INSERT ... SELECT ... ON CONFLICT (pk) DO
//! UPDATE`, which writes `_deleted = false, _deleted_at = NULL` (a record that comes back is
//! live); the stream state goes to `_driftbridge_state(scope, key, state jsonb, updated_at)`
//! in the same transaction.
//!
//! Deletes: the batch's tombstones (records deleted in Drift,
//! [`sync_core::Record::tombstone`]) are copied into a second temporary table and applied
//! after the merge: a live row of their key gets `_deleted = true`, `_deleted_at` = the
//! tombstone's extraction time and `_run_id` = the batch's run, its other columns (the last
//! data read) untouched; a row already deleted keeps its first `_deleted_at`, a key without a
//! row writes nothing; [`sync_core::CommitReport::deleted`] counts the rows marked. Within a
//! batch the last operation on a key wins (upsert then tombstone: the upserted data,
//! deleted; tombstone then upsert: live). With hard deletes ([`PostgresSink::open_with`],
//! [`crate::OpenOptions::hard_deletes`]) the rows are DELETEd instead (counted). A replace
//! batch (full-refresh streams) does not empty the table: it upserts the stream's records
//! and the rows that disappeared from Drift are marked by the tombstones in the same batch.
//!
//! Analyst-ready tables, schema contract and history mode work as in the SQLite sink (see
//! [`crate::sqlite`]): flattened columns, child tables (their rows of a batch's parents are
//! deleted through the batch's stage, then copied and merged like any table), `ALTER TABLE
//! ... ADD COLUMN` in the batch's transaction under `evolve`; in history mode the merge
//! closes the open versions whose `_raw` changed and inserts a version for every staged key
//! without an open one, and a unique index on the key `WHERE _valid_to IS NULL` keeps one
//! open version per key.
//!
//! `_driftbridge_rejected(id, run_id, stream, primary_key, reason, _raw jsonb, rejected_at
//! timestamptz)` keeps, in the batch's transaction, the records the source quarantined
//! ([`sync_core::Batch::quarantined`]: `primary_key` as text when it could be read, `_raw` the
//! record as received (text that is not JSON as a JSON string), `rejected_at` when it was
//! read) and the records without a primary key (`primary_key` null, `rejected_at` now).
//!
//! A schema may hold the user's own tables: `prepare` refuses a table (or view, ...) named
//! like a stream that driftbridge did not create (it lacks `_extracted_at`, `_run_id` or
//! `_raw`), or named like a bookkeeping table without its columns, before changing
//! anything, and then creates and migrates all tables in one transaction. Tables of older
//! versions are migrated: stream tables gain `_deleted` and `_deleted_at` (existing rows are
//! live), `_driftbridge_rejected` gains `primary_key` (existing rows keep theirs, null).
//!
//! Schema evolution: a property the table lacks becomes a new nullable column. A column
//! whose type no longer matches the schema keeps its type and data; a value that does not fit
//! it is written as null in that column (it is in `_raw`) and a warning is logged once per
//! column. PostgreSQL cannot store U+0000 in text or jsonb: a record holding it is written
//! with U+FFFD in its place, with a warning. Connections are plain TCP (no TLS) from a deadpool pool.

mod cell;
mod sql;

/// `(connection URL without `schema=`, schema)` of a sink URL (for [`crate::preview`]).
pub(crate) fn split_schema_pub(url: &str) -> (String, Option<String>) {
    split_schema(url)
}

use crate::layout::{self, Existing};
use crate::OpenOptions;
use async_trait::async_trait;
use cell::{copy_rows, has_nul_map, operations, replace_nul, Cell};
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use serde_json::Value;
use sql::{
    check_privileges, create_table_sql, delete_sql, err, merge_sql, pg_err, pg_text, quote,
    split_schema, target_of, PgColumn, PgTable, PgType, DELETE_COLUMNS, META,
};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use sync_core::{
    Batch, CommitReport, Quarantined, Record, Rejected, RunError, Sink, State, Stream,
};
use tokio_postgres::types::Type;
use tokio_postgres::{GenericClient, NoTls};

/// Name of the state table.
pub const STATE_TABLE: &str = "_driftbridge_state";
/// Name of the table of rejected records.
pub const REJECTED_TABLE: &str = "_driftbridge_rejected";
/// Schema used when the URL has no `schema=` parameter.
pub const DEFAULT_SCHEMA: &str = "public";

/// A PostgreSQL database used as a sink.
pub struct PostgresSink {
    pool: Pool,
    schema: String,
    described: String,
    target: String,
    tables: HashMap<String, Arc<PgTable>>,
    warned: HashSet<(String, String)>,
    options: OpenOptions,
    /// Column names (lower case) of each table in the database, after `prepare`.
    db_columns: HashMap<String, HashSet<String>>,
}

impl PostgresSink {
    /// A sink for the connection URL `url` (`postgres://` or `postgresql://`, libpq
    /// URL parameters allowed, plus `schema=NAME`). No connection is made here: `check`
    /// connects. Connect timeout 10 s unless the URL sets `connect_timeout`.
    ///
    /// Errors (kind `Sink`): the URL cannot be parsed, or `schema=` is empty. The
    /// message never contains the password.
    ///
    /// Tombstones mark rows deleted (soft deletes); see [`Self::open_with`] for hard deletes.
    pub fn open(url: &str) -> Result<Self, RunError> {
        Self::open_with(url, OpenOptions::default())
    }

    /// [`Self::open`] with `options`: with `hard_deletes` a tombstone DELETEs its row instead
    /// of marking it `_deleted` (module docs). Same errors as [`Self::open`].
    pub fn open_with(url: &str, options: OpenOptions) -> Result<Self, RunError> {
        let described = crate::SinkSpec::Postgres(url.to_owned()).describe();
        let (conn_url, schema) = split_schema(url);
        let schema = schema.unwrap_or_else(|| DEFAULT_SCHEMA.to_owned());
        if schema.is_empty() {
            return Err(err(
                &described,
                "`schema=` is empty; give a schema name, e.g. ?schema=drift",
            ));
        }
        let mut config: tokio_postgres::Config = conn_url.parse().map_err(|e| {
            err(
                &described,
                format!("not a valid connection URL ({e}); use postgres://user@host:5432/db"),
            )
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let target = target_of(&config);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(2)
            .build()
            .map_err(|e| err("connection pool", e))?;
        Ok(Self {
            pool,
            schema,
            described,
            target,
            tables: HashMap::new(),
            warned: HashSet::new(),
            options,
            db_columns: HashMap::new(),
        })
    }

    /// The schema tables are written to.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, RunError> {
        self.pool.get().await.map_err(|e| {
            let reason = match &e {
                deadpool_postgres::PoolError::Backend(pg) => pg_text(pg),
                other => other.to_string(),
            };
            err(
                &format!("cannot connect to {}", self.target),
                format!(
                    "{reason}; check the host, port, database, user and password in --destination"
                ),
            )
        })
    }

    fn qualified(&self, table: &str) -> String {
        format!("{}.{}", quote(&self.schema), quote(table))
    }
}

impl PostgresSink {
    /// Refuse, before anything changes, a relation named like a stream or a bookkeeping
    /// table in the schema that driftbridge did not create (see
    /// [`layout::refuse_foreign_table`], [`layout::refuse_foreign_bookkeeping`]).
    async fn refuse_foreign_tables(
        &self,
        client: &impl GenericClient,
        tables: &[(layout::TableDef, bool)],
    ) -> Result<(), RunError> {
        let place = format!("schema `{}` of {}", self.schema, self.target);
        let fix = "choose another schema (?schema=NAME in --destination)";
        let bookkeeping: [(&str, &[&str]); 2] = [
            (STATE_TABLE, &layout::STATE_COLUMNS),
            (REJECTED_TABLE, &layout::REJECTED_COLUMNS),
        ];
        for (table, columns) in bookkeeping {
            if let Some(existing) = self.existing(client, table).await? {
                layout::refuse_foreign_bookkeeping(
                    "postgres", &place, table, &existing, columns, fix,
                )?;
            }
        }
        for (def, history) in tables {
            let name = &def.stream.name;
            if let Some(existing) = self.existing(client, name).await? {
                layout::refuse_foreign_table("postgres", &place, name, &existing, fix)?;
                layout::refuse_other_history("postgres", &place, name, &existing, *history)?;
            }
        }
        Ok(())
    }

    /// What already holds the name `table` in the schema, if anything.
    async fn existing(
        &self,
        client: &impl GenericClient,
        table: &str,
    ) -> Result<Option<Existing>, RunError> {
        let row = client
            .query_opt(
                "SELECT c.relkind::text, ARRAY(SELECT a.attname::text FROM pg_attribute a
                   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = $1 AND c.relname = $2",
                &[&self.schema, &table],
            )
            .await
            .map_err(|e| pg_err(&format!("inspect table {table}"), &e))?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(match row.get::<_, String>(0).as_str() {
            "r" | "p" => Existing::Table(row.get(1)),
            "v" => Existing::Other("view".into()),
            "m" => Existing::Other("materialized view".into()),
            "f" => Existing::Other("foreign table".into()),
            "S" => Existing::Other("sequence".into()),
            "i" | "I" => Existing::Other("index".into()),
            other => Existing::Other(format!("relation of kind `{other}`")),
        }))
    }

    /// Create the table `def` if missing, add columns it lacks, read the actual types.
    /// Returns the table and its column names (lower case).
    async fn prepare_stream(
        &self,
        client: &impl GenericClient,
        def: layout::TableDef,
        history: bool,
    ) -> Result<(PgTable, HashSet<String>), RunError> {
        let stream = &def.stream;
        let qualified = self.qualified(&stream.name);
        let wanted: Vec<PgColumn> = def
            .columns
            .clone()
            .into_iter()
            .map(|column| PgColumn {
                actual: PgType::for_kind(column.kind),
                column,
            })
            .collect();
        let ctx = format!("create table {}", stream.name);
        client
            .batch_execute(&create_table_sql(
                &qualified,
                &wanted,
                &stream.primary_key,
                history,
            ))
            .await
            .map_err(|e| pg_err(&ctx, &e))?;
        if history {
            client
                .batch_execute(&sql::open_version_index_sql(
                    &self.schema,
                    &stream.name,
                    &stream.primary_key,
                ))
                .await
                .map_err(|e| pg_err(&ctx, &e))?;
        }
        let existing: HashMap<String, PgType> = client
            .query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns
                 WHERE table_schema = $1 AND table_name = $2",
                &[&self.schema, &stream.name],
            )
            .await
            .map_err(|e| pg_err(&ctx, &e))?
            .iter()
            .map(|r| (r.get(0), PgType::from_information_schema(r.get(1))))
            .collect();
        // Tables of older versions lack the soft-delete columns: their rows become live.
        for (name, def) in DELETE_COLUMNS {
            if !existing.contains_key(name) {
                let sql = format!(
                    "ALTER TABLE {qualified} ADD COLUMN IF NOT EXISTS {} {def}",
                    quote(name)
                );
                client
                    .batch_execute(&sql)
                    .await
                    .map_err(|e| pg_err(&format!("add column {name}"), &e))?;
            }
        }
        let mut columns = Vec::new();
        for mut c in wanted {
            match existing.get(&c.column.name) {
                None => {
                    let sql = format!(
                        "ALTER TABLE {qualified} ADD COLUMN IF NOT EXISTS {} {}",
                        quote(&c.column.name),
                        c.actual.sql()
                    );
                    client
                        .batch_execute(&sql)
                        .await
                        .map_err(|e| pg_err(&format!("add column {}", c.column.name), &e))?;
                }
                Some(actual) if *actual != c.actual => {
                    tracing::warn!(stream = %stream.name, column = %c.column.name,
                        table_type = actual.sql(), schema_type = c.actual.sql(),
                        "column type differs from the schema: the column keeps its type; values that do not fit it stay in _raw");
                    c.actual = actual.clone();
                }
                Some(_) => {}
            }
            if c.actual.wire().is_some() {
                columns.push(c);
            }
        }
        for field in &stream.index_fields {
            let sql = format!(
                "CREATE INDEX IF NOT EXISTS {} ON {qualified} ({})",
                quote(&format!("idx_{}_{}", stream.name, field)),
                quote(field)
            );
            client
                .batch_execute(&sql)
                .await
                .map_err(|e| pg_err(&format!("index {}.{field}", stream.name), &e))?;
        }
        let names = existing.keys().map(|k| k.to_lowercase()).collect();
        Ok((self.build_table(def, columns, history), names))
    }

    /// The statements of table `def` with `columns` as they are in the database.
    fn build_table(&self, def: layout::TableDef, columns: Vec<PgColumn>, history: bool) -> PgTable {
        let stream = &def.stream;
        let qualified = self.qualified(&stream.name);
        let stage = stage_name(&stream.name);
        let tombstones = tombstone_stage(&stream.name);
        let (mut soft_delete_sql, hard_delete_sql) =
            delete_sql(&qualified, &tombstones, &stream.primary_key);
        let merge = if history {
            soft_delete_sql = sql::history_delete_sql(&qualified, &tombstones, &stream.primary_key);
            sql::history_merge_sql(&qualified, &stage, &columns, &stream.primary_key)
        } else {
            let version = crate::layout::version_column(
                stream,
                &columns.iter().map(|c| c.column.clone()).collect::<Vec<_>>(),
            );
            merge_sql(
                &qualified,
                &stage,
                &columns,
                &stream.primary_key,
                version.as_deref(),
            )
        };
        let children = match stream.primary_key.as_slice() {
            [pk] => stream
                .children
                .iter()
                .map(|c| {
                    sql::child_sql(
                        &self.qualified(&c.name),
                        &c.parent_key,
                        &stage,
                        &tombstones,
                        pk,
                    )
                })
                .collect(),
            _ => Vec::new(),
        };
        PgTable {
            name: stream.name.clone(),
            primary_key: stream.primary_key.clone(),
            merge_sql: merge,
            soft_delete_sql,
            hard_delete_sql,
            columns,
            history,
            children,
            def,
        }
    }

    /// The cell for `value` in a column of type `actual`; `None` when it does not fit.
    fn row(&mut self, table: &PgTable, record: &Record, run_id: &str) -> Vec<Cell> {
        let cleaned = has_nul_map(&record.data).then(|| {
            tracing::warn!(stream = %table.name, "record holds U+0000, which PostgreSQL text and jsonb cannot store: written as U+FFFD");
            replace_nul(Value::Object(record.data.clone()))
        });
        let data = match &cleaned {
            Some(Value::Object(map)) => map,
            _ => &record.data,
        };
        let mut cells = Vec::with_capacity(table.columns.len() + META.len());
        for c in &table.columns {
            let value = c.column.value(data);
            match cell::cell(c, value) {
                Some(cell) => cells.push(cell),
                None => {
                    let key = (table.name.clone(), c.column.name.clone());
                    if self.warned.insert(key) {
                        let sample = value.map(|v| v.to_string()).unwrap_or_default();
                        tracing::warn!(stream = %table.name, column = %c.column.name,
                            column_type = c.actual.sql(), sample = %sample,
                            "value does not fit its column's type: stored as null there, kept in _raw");
                    }
                    cells.push(Cell::Null);
                }
            }
        }
        let extracted =
            DateTime::from_timestamp_millis(record.extracted_at).unwrap_or_else(Utc::now);
        cells.push(Cell::Ts(extracted));
        cells.push(Cell::Text(run_id.to_owned()));
        cells.push(Cell::Json(Value::Object(data.clone())));
        cells.push(Cell::Bool(false));
        cells.push(Cell::Null);
        cells
    }

    /// The cells of a tombstone in the tombstone stage: its key in the key columns' types,
    /// then `_deleted_at`. `None` when a key value does not fit its column (no row can have
    /// that key).
    fn tombstone_row(key_columns: &[&PgColumn], record: &Record) -> Option<Vec<Cell>> {
        let cleaned =
            has_nul_map(&record.data).then(|| replace_nul(Value::Object(record.data.clone())));
        let data = match &cleaned {
            Some(Value::Object(map)) => map,
            _ => &record.data,
        };
        let mut cells = Vec::with_capacity(key_columns.len() + 1);
        for c in key_columns {
            cells.push(cell::cell(c, data.get(&c.column.field))?);
        }
        let at = DateTime::from_timestamp_millis(record.extracted_at).unwrap_or_else(Utc::now);
        cells.push(Cell::Ts(at));
        Some(cells)
    }
}

/// Records per commit the PostgreSQL sink asks the engine for (see [`Sink::batch_size`]):
/// a commit stages each table of its streams, merges them and waits for the server's
/// durable flush, a cost paid per commit rather than per record.
/// With 500 records per commit a full read of 50,000 conversations took 35.6 s, with 2,000
/// 23.4 s and with 5,000 20.1 s (bench part 3 sizes against the sandbox, 2026-12-06).
pub const BATCH_SIZE: usize = 5_000;

/// Name (quoted) of the temporary table the records of `stream` are copied into.
fn stage_name(stream: &str) -> String {
    quote(&format!("_driftbridge_stage_{stream}"))
}

/// Name (quoted) of the temporary table the tombstones of `stream` are copied into.
fn tombstone_stage(stream: &str) -> String {
    quote(&format!("_driftbridge_tombstones_{stream}"))
}

impl PostgresSink {
    /// Write one stream's records of a batch: upserts, then tombstones. Returns (rows
    /// upserted, rows deleted).
    async fn write_stream(
        &mut self,
        tx: &deadpool_postgres::Transaction<'_>,
        table: &PgTable,
        records: &[&Record],
        run_id: &str,
    ) -> Result<(u64, u64), RunError> {
        let (upserts, tombstones) = operations(records, &table.primary_key);
        let written = records.iter().filter(|r| !r.tombstone).count() as u64;
        if !upserts.is_empty() {
            self.upsert(tx, table, &upserts, run_id).await?;
        }
        if !table.children.is_empty() && !upserts.is_empty() {
            // The children of the upserted records, before the tombstones: a tombstone that
            // is the last operation on its key marks them deleted with their parent.
            for child in &table.def.stream.children {
                let Some(ct) = self.tables.get(&child.name).cloned() else {
                    continue;
                };
                let rows: Vec<Record> = upserts
                    .iter()
                    .flat_map(|r| layout::child_records(&table.def.stream, child, r))
                    .collect();
                if !rows.is_empty() {
                    let refs: Vec<&Record> = rows.iter().collect();
                    self.upsert(tx, &ct, &refs, run_id).await?;
                }
            }
        }
        let deleted = if tombstones.is_empty() {
            0
        } else {
            self.delete(tx, table, &tombstones, run_id).await?
        };
        Ok((written, deleted))
    }

    /// COPY the last upsert per key into a stage and merge it into the table.
    async fn upsert(
        &mut self,
        tx: &deadpool_postgres::Transaction<'_>,
        table: &PgTable,
        records: &[&Record],
        run_id: &str,
    ) -> Result<(), RunError> {
        let ctx = format!("write {}", table.name);
        let stage = stage_name(&table.name);
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE {stage} (LIKE {}) ON COMMIT DROP",
            self.qualified(&table.name)
        ))
        .await
        .map_err(|e| pg_err(&ctx, &e))?;
        let rows: Vec<Vec<Cell>> = records.iter().map(|r| self.row(table, r, run_id)).collect();
        let mut names: Vec<String> = table
            .columns
            .iter()
            .map(|c| quote(&c.column.name))
            .collect();
        names.extend(META.iter().map(|(n, _)| quote(n)));
        let mut types: Vec<Type> = table
            .columns
            .iter()
            .filter_map(|c| c.actual.wire())
            .collect();
        types.extend(META.iter().filter_map(|(_, t)| t.wire()));
        copy_rows(tx, &stage, &names, &types, rows)
            .await
            .map_err(|e| pg_err(&format!("{ctx} (COPY)"), &e))?;
        tx.batch_execute(&table.merge_sql)
            .await
            .map_err(|e| pg_err(&format!("{ctx} (merge)"), &e))?;
        for (delete_children, _, _) in &table.children {
            tx.batch_execute(delete_children)
                .await
                .map_err(|e| pg_err(&format!("{ctx} (child rows)"), &e))?;
        }
        tx.batch_execute(&format!("DROP TABLE {stage}"))
            .await
            .map_err(|e| pg_err(&ctx, &e))
    }

    /// COPY the tombstones' keys into a stage and mark (or, with hard deletes, delete) the
    /// rows with those keys. Returns the number of rows changed.
    async fn delete(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        table: &PgTable,
        tombstones: &[&Record],
        run_id: &str,
    ) -> Result<u64, RunError> {
        let ctx = format!("delete from {}", table.name);
        let key_columns: Vec<&PgColumn> = table
            .primary_key
            .iter()
            .map(|k| {
                table.columns.iter().find(|c| &c.column.name == k).ok_or_else(|| {
                    err(
                        &ctx,
                        format!("primary key column `{k}` has a type driftbridge does not write; restore its type"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        let rows: Vec<Vec<Cell>> = tombstones
            .iter()
            .filter_map(|r| Self::tombstone_row(&key_columns, r))
            .collect();
        if rows.is_empty() {
            return Ok(0);
        }
        let stage = tombstone_stage(&table.name);
        let mut names: Vec<String> = key_columns.iter().map(|c| quote(&c.column.name)).collect();
        names.push(quote(layout::DELETED_AT));
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA",
            names.join(", "),
            self.qualified(&table.name)
        ))
        .await
        .map_err(|e| pg_err(&ctx, &e))?;
        let mut types: Vec<Type> = key_columns.iter().filter_map(|c| c.actual.wire()).collect();
        types.push(Type::TIMESTAMPTZ);
        copy_rows(tx, &stage, &names, &types, rows)
            .await
            .map_err(|e| pg_err(&format!("{ctx} (COPY)"), &e))?;
        let changed = if self.options.hard_deletes {
            tx.execute(&table.hard_delete_sql, &[]).await
        } else {
            tx.execute(&table.soft_delete_sql, &[&run_id]).await
        }
        .map_err(|e| pg_err(&ctx, &e))?;
        for (_, soft, hard) in &table.children {
            if self.options.hard_deletes {
                tx.execute(hard, &[]).await
            } else {
                tx.execute(soft, &[&run_id]).await
            }
            .map_err(|e| pg_err(&format!("{ctx} (child rows)"), &e))?;
        }
        tx.batch_execute(&format!("DROP TABLE {stage}"))
            .await
            .map_err(|e| pg_err(&ctx, &e))?;
        Ok(changed)
    }

    /// Keep a record without a primary key in `_driftbridge_rejected` (`primary_key` null,
    /// `rejected_at` now).
    async fn reject(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        run_id: &str,
        record: &Record,
        reason: &str,
    ) -> Result<(), RunError> {
        let raw = replace_nul(Value::Object(record.data.clone()));
        self.insert_rejected(tx, run_id, &record.stream, None, reason, raw, Utc::now())
            .await
            .map_err(|e| pg_err("reject", &e))
    }

    /// Keep a record the source quarantined in `_driftbridge_rejected` (`rejected_at`: when
    /// it was read).
    async fn quarantine(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        run_id: &str,
        q: &Quarantined,
    ) -> Result<(), RunError> {
        let raw = replace_nul(layout::raw_value(&q.raw));
        let at = DateTime::from_timestamp_millis(q.extracted_at).unwrap_or_else(Utc::now);
        let nul = |s: &str| s.replace('\0', "\u{fffd}");
        let key = q.key.as_deref().map(nul);
        self.insert_rejected(
            tx,
            run_id,
            &nul(&q.stream),
            key.as_deref(),
            &nul(&q.reason),
            raw,
            at,
        )
        .await
        .map_err(|e| pg_err("quarantine", &e))
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert_rejected(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        run_id: &str,
        stream: &str,
        key: Option<&str>,
        reason: &str,
        raw: Value,
        at: DateTime<Utc>,
    ) -> Result<(), tokio_postgres::Error> {
        let sql = format!(
            "INSERT INTO {} (run_id, stream, primary_key, reason, _raw, rejected_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            self.qualified(REJECTED_TABLE)
        );
        tx.execute(&sql, &[&run_id, &stream, &key, &reason, &raw, &at])
            .await?;
        Ok(())
    }

    async fn write_state(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        scope: &str,
        state: &[(String, Value)],
    ) -> Result<(), RunError> {
        let sql = format!(
            "INSERT INTO {} (scope, key, state, updated_at) VALUES ($1, $2, $3, now())
             ON CONFLICT (scope, key) DO UPDATE SET state = EXCLUDED.state, updated_at = EXCLUDED.updated_at",
            self.qualified(STATE_TABLE)
        );
        for (key, value) in state {
            tx.execute(&sql, &[&scope, key, value])
                .await
                .map_err(|e| pg_err("write state", &e))?;
        }
        Ok(())
    }

    /// Apply the schema contract to the keys of flattened objects in `batch` without a
    /// column: rebuild the tables that gain columns and return the columns to add in the
    /// batch's transaction (table, column, SQL type). Errors: `freeze` and a new key.
    fn evolve(&mut self, batch: &Batch) -> Result<Vec<(String, String, String)>, RunError> {
        let mut add = Vec::new();
        let flat: Vec<Arc<PgTable>> = self
            .tables
            .values()
            .filter(|t| t.def.stream.flatten.is_some())
            .cloned()
            .collect();
        for table in flat {
            let Some((def, added)) = layout::contract_step(
                &table.def,
                &batch.records,
                self.options.schema_contract,
                "_ts",
                self.db_columns.get(&table.name),
            )?
            else {
                continue;
            };
            let mut columns = table.columns.clone();
            for c in added {
                let actual = PgType::for_kind(c.kind);
                if self
                    .db_columns
                    .entry(table.name.clone())
                    .or_default()
                    .insert(c.name.to_lowercase())
                {
                    add.push((table.name.clone(), c.name.clone(), actual.sql().to_owned()));
                }
                columns.push(PgColumn { column: c, actual });
            }
            let rebuilt = self.build_table(def, columns, table.history);
            self.tables.insert(table.name.clone(), Arc::new(rebuilt));
        }
        Ok(add)
    }

    /// Group the batch's records by stream (in first-seen order) and split off the rejected.
    #[allow(clippy::type_complexity)]
    fn group<'b>(
        &self,
        records: &'b [Record],
    ) -> Result<
        (
            Vec<(Arc<PgTable>, Vec<&'b Record>)>,
            Vec<(&'b Record, String)>,
        ),
        RunError,
    > {
        let mut groups: Vec<(Arc<PgTable>, Vec<&Record>)> = Vec::new();
        let mut rejected = Vec::new();
        for record in records {
            let table = self.tables.get(&record.stream).ok_or_else(|| {
                err(
                    "write",
                    format!("stream `{}` was not prepared", record.stream),
                )
            })?;
            if let Some(reason) = layout::missing_key(&table.primary_key, &record.data) {
                rejected.push((record, reason));
                continue;
            }
            match groups.iter_mut().find(|(t, _)| t.name == record.stream) {
                Some((_, recs)) => recs.push(record),
                None => groups.push((table.clone(), vec![record])),
            }
        }
        Ok((groups, rejected))
    }
}

#[async_trait]
impl Sink for PostgresSink {
    fn describe(&self) -> String {
        self.described.clone()
    }

    /// [`BATCH_SIZE`]: each commit costs staging tables, merges and a durable flush on
    /// the server whatever its size.
    fn batch_size(&self) -> Option<usize> {
        Some(BATCH_SIZE)
    }

    async fn check(&mut self) -> Result<(), RunError> {
        let client = self.client().await?;
        check_privileges(&**client, &self.schema, &self.target).await
    }

    async fn prepare(&mut self, streams: &[Stream]) -> Result<(), RunError> {
        let mut client = self.client().await?;
        let history = self.options.history;
        let defs: Vec<(layout::TableDef, bool)> = streams
            .iter()
            .flat_map(|s| {
                layout::tables(s, "_ts")
                    .into_iter()
                    .enumerate()
                    .map(move |(i, d)| (d, history && i == 0))
            })
            .collect();
        self.refuse_foreign_tables(&**client, &defs).await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| pg_err("begin", &e))?;
        let schema = quote(&self.schema);
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {} (
               scope text NOT NULL, key text NOT NULL, state jsonb NOT NULL,
               updated_at timestamptz NOT NULL, PRIMARY KEY (scope, key));
             CREATE TABLE IF NOT EXISTS {rejected} (
               id bigserial PRIMARY KEY, run_id text, stream text NOT NULL,
               primary_key text, reason text NOT NULL, _raw jsonb NOT NULL,
               rejected_at timestamptz NOT NULL DEFAULT now());
             ALTER TABLE {rejected} ADD COLUMN IF NOT EXISTS primary_key text;",
            self.qualified(STATE_TABLE),
            rejected = self.qualified(REJECTED_TABLE)
        ))
        .await
        .map_err(|e| pg_err(&format!("prepare schema {}", self.schema), &e))?;
        let mut tables = Vec::with_capacity(defs.len());
        for (def, history) in defs {
            tables.push(self.prepare_stream(&*tx, def, history).await?);
        }
        tx.commit()
            .await
            .map_err(|e| pg_err(&format!("prepare schema {}", self.schema), &e))?;
        for (table, names) in tables {
            self.db_columns.insert(table.name.clone(), names);
            self.tables.insert(table.name.clone(), Arc::new(table));
        }
        Ok(())
    }

    async fn load_state(&mut self, scope: &str) -> Result<State, RunError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT key, state FROM {} WHERE scope = $1",
                    self.qualified(STATE_TABLE)
                ),
                &[&scope],
            )
            .await
            .map_err(|e| pg_err("read state", &e))?;
        let mut state = State::new();
        for row in rows {
            state.set(row.get::<_, String>(0), row.get::<_, Value>(1));
        }
        Ok(state)
    }

    async fn commit(&mut self, batch: Batch) -> Result<CommitReport, RunError> {
        let add = self.evolve(&batch)?;
        let (groups, rejected) = self.group(&batch.records)?;
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| pg_err("begin", &e))?;
        for (table, column, ty) in &add {
            let sql = format!(
                "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {ty}",
                self.qualified(table),
                quote(column)
            );
            tx.batch_execute(&sql)
                .await
                .map_err(|e| pg_err(&format!("add column {column} to {table}"), &e))?;
        }
        let mut report = CommitReport::default();
        // A replace batch upserts like any other: rows that disappeared from Drift are marked
        // by the tombstones it holds, the table is not emptied.
        for (table, records) in &groups {
            let (written, deleted) = self
                .write_stream(&tx, table, records, &batch.run_id)
                .await?;
            if written > 0 {
                *report.written.entry(table.name.clone()).or_default() += written;
            }
            if deleted > 0 {
                *report.deleted.entry(table.name.clone()).or_default() += deleted;
            }
        }
        for q in &batch.quarantined {
            self.quarantine(&tx, &batch.run_id, q).await?;
        }
        for (record, reason) in &rejected {
            self.reject(&tx, &batch.run_id, record, reason).await?;
            report.rejected.push(Rejected {
                stream: record.stream.clone(),
                reason: reason.clone(),
            });
        }
        self.write_state(&tx, &batch.scope, &batch.state).await?;
        tx.commit().await.map_err(|e| pg_err("commit", &e))?;
        Ok(report)
    }
}
