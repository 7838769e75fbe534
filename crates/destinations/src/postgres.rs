//! PostgreSQL destination (`postgres://user[:password]@host:port/db[?schema=NAME]`, cargo
//! feature `postgres`): one table per stream in schema `NAME` (default `public`), upsert on
//! the primary key, state in the same transaction as the records.
//!
//! Table layout for a stream (name = stream name, identifiers quoted, so `conversationId`
//! keeps its case):
//! - one column per top-level schema property: `integer` -> bigint, `number` -> double
//!   precision, `string` -> text, `boolean` -> boolean, objects, arrays and mixed types ->
//!   jsonb;
//! - `<field>_ts timestamptz`: twin of every epoch-millisecond field (REFERENCE §1);
//! - `_extracted_at timestamptz`, `_run_id text`, `_raw jsonb` (the whole record, so fields
//!   not in the schema are kept); primary key from the stream.
//!
//! A batch is loaded with binary `COPY` into a temporary table shaped like the target
//! (`LIKE`, dropped at commit), then merged with `INSERT ... SELECT ... ON CONFLICT (pk) DO
//! UPDATE`; the stream state goes to `_driftbridge_state(scope, key, state jsonb, updated_at)`
//! in the same transaction. Records without a primary key go to `_driftbridge_rejected`.
//!
//! Schema evolution: a property the table lacks becomes a new nullable column. A column
//! whose type no longer matches the schema keeps its type and data; a value that does not fit
//! it is written as null in that column (it is in `_raw`) and a warning is logged once per
//! column. Connections are plain TCP (no TLS) from a deadpool pool.

use crate::layout::{self, dest_err, Column, ColumnKind};
use async_trait::async_trait;
use bytes::BytesMut;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use sync_core::{
    Batch, CommitReport, Destination, PropertyKind, Record, Rejected, RunError, State, Stream,
};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{GenericClient, NoTls};

/// Name of the state table.
pub const STATE_TABLE: &str = "_driftbridge_state";
/// Name of the table of rejected records.
pub const REJECTED_TABLE: &str = "_driftbridge_rejected";
/// Schema used when the URL has no `schema=` parameter.
pub const DEFAULT_SCHEMA: &str = "public";

/// A PostgreSQL database used as a destination.
pub struct PostgresDestination {
    pool: Pool,
    schema: String,
    described: String,
    target: String,
    tables: HashMap<String, Arc<PgTable>>,
    warned: HashSet<(String, String)>,
}

/// A column type this destination writes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum PgType {
    BigInt,
    Double,
    Text,
    Boolean,
    Jsonb,
    Timestamptz,
    /// A type changed by hand to something else: the column is left alone.
    Other(String),
}

impl PgType {
    fn for_kind(kind: ColumnKind) -> Self {
        match kind {
            ColumnKind::Value(PropertyKind::Integer) => Self::BigInt,
            ColumnKind::Value(PropertyKind::Number) => Self::Double,
            ColumnKind::Value(PropertyKind::String) => Self::Text,
            ColumnKind::Value(PropertyKind::Boolean) => Self::Boolean,
            ColumnKind::Value(PropertyKind::Json) => Self::Jsonb,
            ColumnKind::Timestamp => Self::Timestamptz,
        }
    }

    /// From `information_schema.columns.data_type`.
    fn from_information_schema(name: &str) -> Self {
        match name {
            "bigint" => Self::BigInt,
            "double precision" => Self::Double,
            "text" => Self::Text,
            "boolean" => Self::Boolean,
            "jsonb" => Self::Jsonb,
            "timestamp with time zone" => Self::Timestamptz,
            other => Self::Other(other.to_owned()),
        }
    }

    fn sql(&self) -> &str {
        match self {
            Self::BigInt => "bigint",
            Self::Double => "double precision",
            Self::Text => "text",
            Self::Boolean => "boolean",
            Self::Jsonb => "jsonb",
            Self::Timestamptz => "timestamptz",
            Self::Other(name) => name,
        }
    }

    fn wire(&self) -> Option<Type> {
        Some(match self {
            Self::BigInt => Type::INT8,
            Self::Double => Type::FLOAT8,
            Self::Text => Type::TEXT,
            Self::Boolean => Type::BOOL,
            Self::Jsonb => Type::JSONB,
            Self::Timestamptz => Type::TIMESTAMPTZ,
            Self::Other(_) => return None,
        })
    }
}

/// A column as it is in the table.
#[derive(Clone, Debug)]
struct PgColumn {
    column: Column,
    /// The type the table has (may differ from the schema's after a type change).
    actual: PgType,
}

#[derive(Debug)]
struct PgTable {
    name: String,
    primary_key: Vec<String>,
    /// Columns written by COPY, in order (schema columns with a known type, then meta).
    columns: Vec<PgColumn>,
    merge_sql: String,
}

/// One cell of the binary COPY.
#[derive(Debug)]
enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
    Json(Value),
    Ts(DateTime<Utc>),
}

impl ToSql for Cell {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Cell::Null => Ok(IsNull::Yes),
            Cell::Int(v) => v.to_sql(ty, out),
            Cell::Float(v) => v.to_sql(ty, out),
            Cell::Text(v) => v.to_sql(ty, out),
            Cell::Bool(v) => v.to_sql(ty, out),
            Cell::Json(v) => v.to_sql(ty, out),
            Cell::Ts(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn err(context: &str, e: impl std::fmt::Display) -> RunError {
    dest_err("postgres", context, e)
}

/// The server's message for a database error, else the error and its cause.
fn pg_text(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} (SQLSTATE {})", db.message(), db.code().code());
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

fn pg_err(context: &str, e: &tokio_postgres::Error) -> RunError {
    err(context, pg_text(e))
}

/// Split `?schema=NAME` off a connection URL; other parameters are left to tokio-postgres.
fn split_schema(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut schema = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|p| match p.strip_prefix("schema=") {
            Some(name) => {
                schema = Some(name.to_owned());
                false
            }
            None => !p.is_empty(),
        })
        .collect();
    if rest.is_empty() {
        (base.to_owned(), schema)
    } else {
        (format!("{base}?{}", rest.join("&")), schema)
    }
}

impl PostgresDestination {
    /// A destination for the connection URL `url` (`postgres://` or `postgresql://`, libpq
    /// URL parameters allowed, plus `schema=NAME`). No connection is made here: `check`
    /// connects. Connect timeout 10 s unless the URL sets `connect_timeout`.
    ///
    /// Errors (kind `Destination`): the URL cannot be parsed, or `schema=` is empty. The
    /// message never contains the password.
    pub fn open(url: &str) -> Result<Self, RunError> {
        let described = crate::DestinationSpec::Postgres(url.to_owned()).describe();
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

fn target_of(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or("(default database)");
    let user = config.get_user().unwrap_or("(default user)");
    format!("{host}:{port}/{db} as {user}")
}

/// Check: connected; writable server; may create in the schema (or the schema in the
/// database) and use temporary tables.
async fn check_privileges(
    client: &impl GenericClient,
    schema: &str,
    target: &str,
) -> Result<(), RunError> {
    let row = client
        .query_one(
            "SELECT current_setting('transaction_read_only') = 'on',
                    has_database_privilege(current_database(), 'TEMP'),
                    has_database_privilege(current_database(), 'CREATE'),
                    (SELECT has_schema_privilege(oid, 'CREATE') FROM pg_namespace WHERE nspname = $1),
                    current_user::text",
            &[&schema],
        )
        .await
        .map_err(|e| pg_err("check privileges", &e))?;
    let read_only: bool = row.get(0);
    let temp: bool = row.get(1);
    let create_db: bool = row.get(2);
    let create_schema: Option<bool> = row.get(3);
    let user: String = row.get(4);
    let problem = if read_only {
        Some("the server is read-only (a standby?); point --destination at the primary".to_owned())
    } else if !temp {
        Some(format!(
            "user `{user}` may not create temporary tables; GRANT TEMP ON DATABASE to it"
        ))
    } else {
        match create_schema {
            Some(false) => Some(format!(
                "user `{user}` may not create tables in schema `{schema}`; GRANT CREATE ON SCHEMA {schema} to it or choose another ?schema="
            )),
            None if !create_db => Some(format!(
                "schema `{schema}` does not exist and user `{user}` may not create it; create it or GRANT CREATE ON DATABASE"
            )),
            _ => None,
        }
    };
    match problem {
        Some(p) => Err(err(&format!("{target} is not writable"), p)),
        None => Ok(()),
    }
}

fn create_table_sql(qualified: &str, columns: &[PgColumn], pk: &[String]) -> String {
    let mut defs: Vec<String> = columns
        .iter()
        .map(|c| format!("{} {}", quote(&c.column.name), c.actual.sql()))
        .collect();
    defs.push("\"_extracted_at\" timestamptz NOT NULL".into());
    defs.push("\"_run_id\" text".into());
    defs.push("\"_raw\" jsonb NOT NULL".into());
    let pk: Vec<String> = pk.iter().map(|k| quote(k)).collect();
    defs.push(format!("PRIMARY KEY ({})", pk.join(", ")));
    format!(
        "CREATE TABLE IF NOT EXISTS {qualified} ({})",
        defs.join(", ")
    )
}

const META: [(&str, PgType); 3] = [
    (layout::EXTRACTED_AT, PgType::Timestamptz),
    (layout::RUN_ID, PgType::Text),
    (layout::RAW, PgType::Jsonb),
];

fn merge_sql(qualified: &str, stage: &str, columns: &[PgColumn], pk: &[String]) -> String {
    let mut names: Vec<String> = columns.iter().map(|c| quote(&c.column.name)).collect();
    names.extend(META.iter().map(|(n, _)| quote(n)));
    let list = names.join(", ");
    let pk_cols: Vec<String> = pk.iter().map(|k| quote(k)).collect();
    let updates: Vec<String> = names
        .iter()
        .filter(|n| !pk_cols.contains(n))
        .map(|n| format!("{n} = EXCLUDED.{n}"))
        .collect();
    format!(
        "INSERT INTO {qualified} ({list}) SELECT {list} FROM {stage} ON CONFLICT ({}) DO UPDATE SET {}",
        pk_cols.join(", "),
        updates.join(", ")
    )
}

impl PostgresDestination {
    /// Create the table of `stream` if missing, add columns it lacks, read the actual types.
    async fn prepare_stream(
        &self,
        client: &impl GenericClient,
        stream: &Stream,
    ) -> Result<PgTable, RunError> {
        let qualified = self.qualified(&stream.name);
        let wanted: Vec<PgColumn> = layout::columns(stream, "_ts")
            .into_iter()
            .map(|column| PgColumn {
                actual: PgType::for_kind(column.kind),
                column,
            })
            .collect();
        let ctx = format!("create table {}", stream.name);
        client
            .batch_execute(&create_table_sql(&qualified, &wanted, &stream.primary_key))
            .await
            .map_err(|e| pg_err(&ctx, &e))?;
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
        let stage = quote(&format!("_driftbridge_stage_{}", stream.name));
        Ok(PgTable {
            name: stream.name.clone(),
            primary_key: stream.primary_key.clone(),
            merge_sql: merge_sql(&qualified, &stage, &columns, &stream.primary_key),
            columns,
        })
    }

    /// The cell for `value` in a column of type `actual`; `None` when it does not fit.
    fn cell(column: &PgColumn, value: Option<&Value>) -> Option<Cell> {
        let Some(v) = value.filter(|v| !v.is_null()) else {
            return Some(Cell::Null);
        };
        if column.column.kind == ColumnKind::Timestamp || column.actual == PgType::Timestamptz {
            return layout::epoch_ms(v)
                .and_then(DateTime::from_timestamp_millis)
                .map(Cell::Ts);
        }
        match (&column.actual, v) {
            (PgType::BigInt, Value::Number(n)) => n.as_i64().map(Cell::Int),
            (PgType::Double, Value::Number(n)) => n.as_f64().map(Cell::Float),
            (PgType::Text, Value::String(s)) => Some(Cell::Text(s.clone())),
            (PgType::Boolean, Value::Bool(b)) => Some(Cell::Bool(*b)),
            (PgType::Jsonb, v) => Some(Cell::Json(v.clone())),
            _ => None,
        }
    }

    /// The COPY row of `record`; warns once per column about values that do not fit.
    fn row(&mut self, table: &PgTable, record: &Record, run_id: &str) -> Vec<Cell> {
        let mut cells = Vec::with_capacity(table.columns.len() + META.len());
        for c in &table.columns {
            let value = record.data.get(&c.column.field);
            match Self::cell(c, value) {
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
        cells.push(Cell::Json(Value::Object(record.data.clone())));
        cells
    }
}

/// The last record per primary key, in order of last appearance (one row per key per
/// `INSERT ... ON CONFLICT`, which refuses to touch a row twice).
fn last_per_key<'a>(records: &[&'a Record], pk: &[String]) -> Vec<&'a Record> {
    let key = |r: &Record| layout::key_of(pk, &r.data);
    let last: HashMap<String, usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (key(r), i))
        .collect();
    records
        .iter()
        .enumerate()
        .filter(|(i, r)| last.get(&key(r)) == Some(i))
        .map(|(_, r)| *r)
        .collect()
}

async fn copy_rows(
    tx: &deadpool_postgres::Transaction<'_>,
    stage: &str,
    table: &PgTable,
    rows: Vec<Vec<Cell>>,
) -> Result<(), tokio_postgres::Error> {
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
    let sink = tx
        .copy_in(&format!(
            "COPY {stage} ({}) FROM STDIN (FORMAT binary)",
            names.join(", ")
        ))
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &types);
    futures::pin_mut!(writer);
    for row in &rows {
        let refs: Vec<&(dyn ToSql + Sync)> = row.iter().map(|c| c as &(dyn ToSql + Sync)).collect();
        writer.as_mut().write(&refs).await?;
    }
    writer.finish().await?;
    Ok(())
}

impl PostgresDestination {
    async fn write_stream(
        &mut self,
        tx: &deadpool_postgres::Transaction<'_>,
        table: &PgTable,
        records: &[&Record],
        run_id: &str,
    ) -> Result<(), RunError> {
        let ctx = format!("write {}", table.name);
        let stage = quote(&format!("_driftbridge_stage_{}", table.name));
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE {stage} (LIKE {}) ON COMMIT DROP",
            self.qualified(&table.name)
        ))
        .await
        .map_err(|e| pg_err(&ctx, &e))?;
        let rows: Vec<Vec<Cell>> = last_per_key(records, &table.primary_key)
            .into_iter()
            .map(|r| self.row(table, r, run_id))
            .collect();
        copy_rows(tx, &stage, table, rows)
            .await
            .map_err(|e| pg_err(&format!("{ctx} (COPY)"), &e))?;
        tx.batch_execute(&table.merge_sql)
            .await
            .map_err(|e| pg_err(&format!("{ctx} (merge)"), &e))?;
        tx.batch_execute(&format!("DROP TABLE {stage}"))
            .await
            .map_err(|e| pg_err(&ctx, &e))
    }

    async fn reject(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        run_id: &str,
        record: &Record,
        reason: &str,
    ) -> Result<(), RunError> {
        tx.execute(
            &format!(
                "INSERT INTO {} (run_id, stream, reason, _raw) VALUES ($1, $2, $3, $4)",
                self.qualified(REJECTED_TABLE)
            ),
            &[
                &run_id,
                &record.stream,
                &reason,
                &Value::Object(record.data.clone()),
            ],
        )
        .await
        .map_err(|e| pg_err("reject", &e))?;
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
impl Destination for PostgresDestination {
    fn describe(&self) -> String {
        self.described.clone()
    }

    async fn check(&mut self) -> Result<(), RunError> {
        let client = self.client().await?;
        check_privileges(&**client, &self.schema, &self.target).await
    }

    async fn prepare(&mut self, streams: &[Stream]) -> Result<(), RunError> {
        let client = self.client().await?;
        let schema = quote(&self.schema);
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {schema};
                 CREATE TABLE IF NOT EXISTS {} (
                   scope text NOT NULL, key text NOT NULL, state jsonb NOT NULL,
                   updated_at timestamptz NOT NULL, PRIMARY KEY (scope, key));
                 CREATE TABLE IF NOT EXISTS {} (
                   id bigserial PRIMARY KEY, run_id text, stream text NOT NULL,
                   reason text NOT NULL, _raw jsonb NOT NULL,
                   rejected_at timestamptz NOT NULL DEFAULT now());",
                self.qualified(STATE_TABLE),
                self.qualified(REJECTED_TABLE)
            ))
            .await
            .map_err(|e| pg_err(&format!("prepare schema {}", self.schema), &e))?;
        for stream in streams {
            let table = self.prepare_stream(&**client, stream).await?;
            self.tables.insert(stream.name.clone(), Arc::new(table));
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
        let (groups, rejected) = self.group(&batch.records)?;
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| pg_err("begin", &e))?;
        let mut report = CommitReport::default();
        for stream in &batch.replace {
            tx.batch_execute(&format!("DELETE FROM {}", self.qualified(stream)))
                .await
                .map_err(|e| pg_err(&format!("replace table {stream}"), &e))?;
        }
        for (table, records) in &groups {
            self.write_stream(&tx, table, records, &batch.run_id)
                .await?;
            *report.written.entry(table.name.clone()).or_default() += records.len() as u64;
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
