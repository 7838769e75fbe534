//! SQLite destination (the default): one table per stream, upsert on the primary key, state in
//! the same transaction as the records.
//!
//! Table layout for a stream (name = stream name):
//! - one column per top-level schema property, named as the source spells it
//!   (`conversationId`); integers and booleans as INTEGER, numbers as REAL, strings as TEXT,
//!   objects and arrays as JSON text;
//! - `<field>_iso`: RFC 3339 UTC twin of every epoch-millisecond property
//!   ([`sync_core::EPOCH_MS_FORMAT`]);
//! - `_extracted_at` (RFC 3339), `_run_id`, and `_raw` (the whole record as JSON, so fields not
//!   in the schema are kept).
//!
//! Bookkeeping tables: `_driftbridge_state(scope, key, state, updated_at)` holds the source
//! state, written in the batch's transaction; `_driftbridge_rejected` keeps records that could
//! not be written (missing primary key) with the reason.
//!
//! A database may hold the user's own tables: `prepare` refuses a table (or view) named like
//! a stream that driftbridge did not create (it lacks `_extracted_at`, `_run_id` or `_raw`),
//! or named like a bookkeeping table without its columns, before changing anything, and then creates and migrates all tables in one transaction.
//! Missing parent directories of the database file are created.

use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde_json::{Map, Value};
use std::collections::HashMap;

use crate::layout::{self, Column, ColumnKind, Existing, META_COLUMNS};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use sync_core::{
    epoch_ms_to_rfc3339, Batch, CommitReport, Destination, ErrorKind, PropertyKind, Record,
    Rejected, RunError, State, Stream,
};

/// Name of the state table.
pub const STATE_TABLE: &str = "_driftbridge_state";
/// Name of the table of rejected records.
pub const REJECTED_TABLE: &str = "_driftbridge_rejected";

/// A SQLite database file used as a destination. Cheap to clone is not needed: the engine
/// owns it for the run.
pub struct SqliteDestination {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
    tables: HashMap<String, Arc<Table>>,
}

/// Column layout of one stream's table.
#[derive(Debug)]
struct Table {
    name: String,
    /// Columns from the shared layout; `_iso` twins have kind `Timestamp`.
    columns: Vec<Column>,
    primary_key: Vec<String>,
    upsert_sql: String,
}

fn db_err(context: &str, e: impl std::fmt::Display) -> RunError {
    RunError::new(
        ErrorKind::Destination,
        None,
        format!("sqlite: {context}: {e}"),
    )
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

impl SqliteDestination {
    /// Open (or create) the database at `path`, creating missing parent directories. Nothing
    /// in the database changes until [`Destination::prepare`], which first refuses a
    /// stream's table that driftbridge did not create, then switches the database to WAL mode
    /// and creates the tables.
    ///
    /// Errors (kind `Destination`): a parent directory cannot be created, or the file cannot
    /// be opened or is not a SQLite database; the message names the path and the fix.
    pub fn open(path: &Path) -> Result<Self, RunError> {
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(dir) = parent {
            std::fs::create_dir_all(dir).map_err(|e| {
                db_err(
                    &format!("cannot create directory {}", dir.display()),
                    format!("{e}; create it or choose a writable location"),
                )
            })?;
        }
        let conn = Connection::open(path).map_err(|e| {
            let dir = parent.map_or_else(|| ".".into(), |d| d.display().to_string());
            db_err(
                &format!("cannot open {}", path.display()),
                format!("{e}; check that {dir} is writable or choose another path"),
            )
        })?;
        conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;")
            .and_then(|()| {
                conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                    r.get::<_, i64>(0)
                })
            })
            .map_err(|e| {
                db_err(
                    &format!("cannot read {}", path.display()),
                    format!("{e}; give the path of a SQLite database or of a new file"),
                )
            })?;
        Ok(Self {
            path: path.to_owned(),
            conn: Arc::new(Mutex::new(conn)),
            tables: HashMap::new(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, RunError> + Send + 'static,
    ) -> Result<T, RunError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| db_err("connection", "poisoned by an earlier panic"))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| db_err("worker", e))?
    }
}

fn table_for(stream: &Stream) -> Table {
    let columns = layout::columns(stream, "_iso");
    let upsert_sql = upsert_sql(&stream.name, &columns, &stream.primary_key);
    Table {
        name: stream.name.clone(),
        columns,
        primary_key: stream.primary_key.clone(),
        upsert_sql,
    }
}

fn sql_type(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Value(PropertyKind::Integer | PropertyKind::Boolean) => "INTEGER",
        ColumnKind::Value(PropertyKind::Number) => "REAL",
        ColumnKind::Value(PropertyKind::String | PropertyKind::Json) | ColumnKind::Timestamp => {
            "TEXT"
        }
    }
}

fn upsert_sql(table: &str, columns: &[Column], pk: &[String]) -> String {
    let mut names: Vec<String> = columns.iter().map(|c| quote(&c.name)).collect();
    names.extend(META_COLUMNS.iter().map(|c| quote(c)));
    let placeholders = vec!["?"; names.len()].join(", ");
    let updates: Vec<String> = names
        .iter()
        .filter(|n| !pk.iter().any(|k| quote(k) == **n))
        .map(|n| format!("{n} = excluded.{n}"))
        .collect();
    let pk_cols: Vec<String> = pk.iter().map(|k| quote(k)).collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({placeholders}) ON CONFLICT ({}) DO UPDATE SET {}",
        quote(table),
        names.join(", "),
        pk_cols.join(", "),
        updates.join(", ")
    )
}

/// The bookkeeping tables (state and rejected records).
fn create_bookkeeping(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {STATE_TABLE} (
           scope TEXT NOT NULL, key TEXT NOT NULL, state TEXT NOT NULL,
           updated_at TEXT NOT NULL, PRIMARY KEY (scope, key));
         CREATE TABLE IF NOT EXISTS {REJECTED_TABLE} (
           id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, stream TEXT NOT NULL,
           reason TEXT NOT NULL, _raw TEXT NOT NULL, rejected_at TEXT NOT NULL);"
    ))
}

/// What already holds the name `table` (SQLite names are case-insensitive), if anything.
fn existing(conn: &Connection, table: &str) -> rusqlite::Result<Option<Existing>> {
    let found: Option<(String, String)> = conn
        .query_row(
            "SELECT type, name FROM sqlite_master WHERE name = ?1 COLLATE NOCASE
             AND type IN ('table', 'view') ORDER BY type = 'table' DESC LIMIT 1",
            [table],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((kind, name)) = found else {
        return Ok(None);
    };
    if kind != "table" {
        return Ok(Some(Existing::Other(kind)));
    }
    let columns = conn
        .prepare(&format!("PRAGMA table_info({})", quote(&name)))?
        .query_map([], |r| r.get::<_, String>(1))?
        .collect::<Result<_, _>>()?;
    Ok(Some(Existing::Table(columns)))
}

/// Refuse, before anything changes, a stream's table or a bookkeeping table that
/// driftbridge did not create.
fn refuse_foreign_tables<'s>(
    conn: &Connection,
    path: &Path,
    streams: impl IntoIterator<Item = &'s Stream>,
) -> Result<(), RunError> {
    let bookkeeping: [(&str, &[&str]); 2] = [
        (STATE_TABLE, &layout::STATE_COLUMNS),
        (REJECTED_TABLE, &layout::REJECTED_COLUMNS),
    ];
    for (table, columns) in bookkeeping {
        let found =
            existing(conn, table).map_err(|e| db_err(&format!("inspect table {table}"), e))?;
        if let Some(found) = found {
            layout::refuse_foreign_bookkeeping(
                "sqlite",
                &path.display().to_string(),
                table,
                &found,
                columns,
                "choose another database file",
            )?;
        }
    }
    for stream in streams {
        let found = existing(conn, &stream.name)
            .map_err(|e| db_err(&format!("inspect table {}", stream.name), e))?;
        if let Some(found) = found {
            layout::refuse_foreign_table(
                "sqlite",
                &path.display().to_string(),
                &stream.name,
                &found,
                "choose another database file",
            )?;
        }
    }
    Ok(())
}

/// Refuse foreign tables, switch to WAL mode, then create the bookkeeping tables and every
/// stream's table and indexes in one transaction (all or nothing).
fn prepare_all(
    conn: &mut Connection,
    path: &Path,
    work: &[(Stream, Arc<Table>)],
) -> Result<(), RunError> {
    refuse_foreign_tables(conn, path, work.iter().map(|(s, _)| s))?;
    conn.execute_batch("PRAGMA journal_mode=WAL")
        .map_err(|e| db_err(&format!("cannot initialise {}", path.display()), e))?;
    let tx = conn.transaction().map_err(|e| db_err("begin", e))?;
    create_bookkeeping(&tx)
        .map_err(|e| db_err(&format!("cannot initialise {}", path.display()), e))?;
    for (stream, table) in work {
        create_table(&tx, table)
            .and_then(|()| create_indexes(&tx, stream))
            .map_err(|e| db_err(&format!("create table {}", stream.name), e))?;
    }
    tx.commit().map_err(|e| db_err("commit", e))
}

fn create_table(conn: &Connection, table: &Table) -> rusqlite::Result<()> {
    let mut defs: Vec<String> = table
        .columns
        .iter()
        .map(|c| format!("{} {}", quote(&c.name), sql_type(c.kind)))
        .collect();
    defs.push("\"_extracted_at\" TEXT NOT NULL".into());
    defs.push("\"_run_id\" TEXT".into());
    defs.push("\"_raw\" TEXT NOT NULL".into());
    let pk: Vec<String> = table.primary_key.iter().map(|k| quote(k)).collect();
    defs.push(format!("PRIMARY KEY ({})", pk.join(", ")));
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        quote(&table.name),
        defs.join(", ")
    ))?;
    // Schema evolution: add columns the stream gained since the table was created.
    let existing: Vec<String> = conn
        .prepare(&format!("PRAGMA table_info({})", quote(&table.name)))?
        .query_map([], |r| r.get::<_, String>(1))?
        .collect::<Result<_, _>>()?;
    for c in &table.columns {
        if !existing.contains(&c.name) {
            conn.execute_batch(&format!(
                "ALTER TABLE {} ADD COLUMN {} {}",
                quote(&table.name),
                quote(&c.name),
                sql_type(c.kind)
            ))?;
        }
    }
    Ok(())
}

fn create_indexes(conn: &Connection, stream: &Stream) -> rusqlite::Result<()> {
    for field in &stream.index_fields {
        conn.execute_batch(&format!(
            "CREATE INDEX IF NOT EXISTS {} ON {} ({})",
            quote(&format!("idx_{}_{}", stream.name, field)),
            quote(&stream.name),
            quote(field)
        ))?;
    }
    Ok(())
}

/// Convert a JSON value to the SQL value stored in a column of `kind`.
fn sql_value(value: Option<&Value>, kind: ColumnKind) -> SqlValue {
    let Some(v) = value else {
        return SqlValue::Null;
    };
    if kind == ColumnKind::Timestamp {
        return v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .and_then(epoch_ms_to_rfc3339)
            .map_or(SqlValue::Null, SqlValue::Text);
    }
    match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => n
            .as_i64()
            .map(SqlValue::Integer)
            .or_else(|| n.as_f64().map(SqlValue::Real))
            .unwrap_or_else(|| SqlValue::Text(n.to_string())),
        Value::String(s) => SqlValue::Text(s.clone()),
        Value::Array(_) | Value::Object(_) => SqlValue::Text(v.to_string()),
    }
}

fn missing_key(table: &Table, data: &Map<String, Value>) -> Option<String> {
    table
        .primary_key
        .iter()
        .find(|k| data.get(*k).is_none_or(Value::is_null))
        .map(|k| format!("primary key field `{k}` is missing or null"))
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn write_record(
    tx: &Transaction<'_>,
    table: &Table,
    run_id: &str,
    record: &Record,
) -> rusqlite::Result<()> {
    let mut values: Vec<SqlValue> = table
        .columns
        .iter()
        .map(|c| sql_value(record.data.get(&c.field), c.kind))
        .collect();
    let extracted = epoch_ms_to_rfc3339(record.extracted_at).unwrap_or_else(now_rfc3339);
    values.push(SqlValue::Text(extracted));
    values.push(SqlValue::Text(run_id.to_owned()));
    values.push(SqlValue::Text(
        Value::Object(record.data.clone()).to_string(),
    ));
    tx.prepare_cached(&table.upsert_sql)?
        .execute(rusqlite::params_from_iter(values))?;
    Ok(())
}

fn reject(
    tx: &Transaction<'_>,
    run_id: &str,
    record: &Record,
    reason: &str,
) -> rusqlite::Result<()> {
    tx.execute(
        &format!(
            "INSERT INTO {REJECTED_TABLE} (run_id, stream, reason, _raw, rejected_at) VALUES (?1, ?2, ?3, ?4, ?5)"
        ),
        params![
            run_id,
            record.stream,
            reason,
            Value::Object(record.data.clone()).to_string(),
            now_rfc3339()
        ],
    )?;
    Ok(())
}

fn commit_batch(
    conn: &mut Connection,
    tables: &HashMap<String, Arc<Table>>,
    batch: &Batch,
) -> Result<CommitReport, RunError> {
    let tx = conn.transaction().map_err(|e| db_err("begin", e))?;
    let mut report = CommitReport::default();
    for stream in &batch.replace {
        tx.execute(&format!("DELETE FROM {}", quote(stream)), [])
            .map_err(|e| db_err(&format!("replace table {stream}"), e))?;
    }
    for record in &batch.records {
        let table = tables.get(&record.stream).ok_or_else(|| {
            db_err(
                "write",
                format!("stream `{}` was not prepared", record.stream),
            )
        })?;
        if let Some(reason) = missing_key(table, &record.data) {
            reject(&tx, &batch.run_id, record, &reason).map_err(|e| db_err("reject", e))?;
            report.rejected.push(Rejected {
                stream: record.stream.clone(),
                reason,
            });
            continue;
        }
        write_record(&tx, table, &batch.run_id, record)
            .map_err(|e| db_err(&format!("write {}", record.stream), e))?;
        *report.written.entry(record.stream.clone()).or_default() += 1;
    }
    for (key, value) in &batch.state {
        tx.execute(
            &format!(
                "INSERT INTO {STATE_TABLE} (scope, key, state, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (scope, key) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at"
            ),
            params![batch.scope, key, value.to_string(), now_rfc3339()],
        )
        .map_err(|e| db_err("write state", e))?;
    }
    tx.commit().map_err(|e| db_err("commit", e))?;
    Ok(report)
}

#[async_trait]
impl Destination for SqliteDestination {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    async fn prepare(&mut self, streams: &[Stream]) -> Result<(), RunError> {
        let prepared: Vec<(Stream, Arc<Table>)> = streams
            .iter()
            .map(|s| (s.clone(), Arc::new(table_for(s))))
            .collect();
        let work = prepared.clone();
        let path = self.path.clone();
        self.blocking(move |conn| prepare_all(conn, &path, &work))
            .await?;
        for (stream, table) in prepared {
            self.tables.insert(stream.name, table);
        }
        Ok(())
    }

    async fn load_state(&mut self, scope: &str) -> Result<State, RunError> {
        let scope = scope.to_owned();
        self.blocking(move |conn| {
            if existing(conn, STATE_TABLE)
                .map_err(|e| db_err("read state", e))?
                .is_none()
            {
                // Not prepared yet: no run has committed anything here.
                return Ok(State::new());
            }
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT key, state FROM {STATE_TABLE} WHERE scope = ?1"
                ))
                .map_err(|e| db_err("read state", e))?;
            let rows = stmt
                .query_map([&scope], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(|e| db_err("read state", e))?;
            let mut state = State::new();
            for row in rows {
                let (key, text) = row.map_err(|e| db_err("read state", e))?;
                let value = serde_json::from_str(&text)
                    .map_err(|e| db_err(&format!("state `{key}` is not JSON"), e))?;
                state.set(key, value);
            }
            Ok(state)
        })
        .await
    }

    async fn commit(&mut self, batch: Batch) -> Result<CommitReport, RunError> {
        let tables = self.tables.clone();
        self.blocking(move |conn| commit_batch(conn, &tables, &batch))
            .await
    }
}
