//! SQLite sink (the default): one table per stream, upsert on the primary key, state in
//! the same transaction as the records.
//!
//! Table layout for a stream (name = stream name):
//! - one column per top-level schema property, named as the source spells it
//!   (`conversationId`); integers and booleans as INTEGER, numbers as REAL, strings as TEXT,
//!   objects and arrays as JSON text;
//! - `<field>_iso`: RFC 3339 UTC twin of every epoch-millisecond property
//!   ([`sync_core::EPOCH_MS_FORMAT`]);
//! - `_extracted_at` (RFC 3339), `_run_id` (the run that last changed the row), and `_raw`
//!   (the whole record as JSON, so fields not in the schema are kept);
//! - `_deleted` (INTEGER 0/1) and `_deleted_at` (RFC 3339 text, NULL while live): soft
//!   deletes, see below.
//!
//! Analyst-ready tables (shared layout, [`crate::layout`]): a stream with a flattened object
//! (contacts' `attributes`) has one column per key after its own columns; a value that does
//! not fit its column's type is left NULL there (it is in `_raw`) with a warning once per
//! column per run; a key without a column is handled by the schema contract
//! ([`crate::OpenOptions::schema_contract`]: `evolve` adds the column with `ALTER TABLE` in
//! the batch's transaction, `freeze` fails the commit before anything is written, `discard`
//! keeps it in `_raw`). Each child table of a stream (`conversation_tags`, ...) is a table
//! keyed by (parent key, `_index`): the children of a record are deleted and written again
//! in the transaction that writes it; a tombstone marks them deleted (hard deletes remove
//! them).
//!
//! History mode ([`crate::OpenOptions::history`]): a stream's table has no primary key but
//! `_valid_from`, `_valid_to` (NULL while current) and `_active`, and a unique index on the
//! key `WHERE _valid_to IS NULL`; a record whose open version holds the same `_raw` changes
//! nothing, another one closes the open version (`_valid_to` = its extraction time) and
//! opens a new one; a tombstone marks and closes the open version (hard deletes remove
//! every version). A table made in the other mode is refused before anything changes.
//!
//! Deletes: a tombstone (a record deleted in Drift, [`sync_core::Record::tombstone`]) marks
//! its row `_deleted = 1`, `_deleted_at` = the tombstone's extraction time, `_run_id` = the
//! batch's run, and leaves the other columns (the last data read) as they were. A row already
//! deleted is left as it is (it keeps its first `_deleted_at`), and a tombstone for a key
//! without a row writes nothing; [`sync_core::CommitReport::deleted`] counts the rows marked.
//! An upsert always writes `_deleted = 0, _deleted_at = NULL`: a record that comes back is
//! live again. Within a batch the last operation on a key wins (upsert then tombstone: the
//! row holds the upserted data and is deleted). With hard deletes
//! ([`SqliteSink::open_with`], [`crate::OpenOptions::hard_deletes`]) a tombstone
//! DELETEs the row instead (counted when a row was removed). A replace batch (full-refresh
//! streams) does not empty the table: it upserts the stream's records, and the rows that
//! disappeared from Drift are marked by the tombstones the source sends in the same batch.
//!
//! Bookkeeping tables: `_driftbridge_state(scope, key, state, updated_at)` holds the source
//! state, written in the batch's transaction; `_driftbridge_rejected(id, run_id, stream,
//! primary_key, reason, _raw, rejected_at)` keeps, in the same transaction, the records the
//! source quarantined ([`sync_core::Batch::quarantined`]: they do not fit the stream's types;
//! `primary_key` as text when it could be read, `_raw` the record as received,
//! `rejected_at` when it was read) and those this sink refuses (missing primary key;
//! `primary_key` NULL, `rejected_at` now).
//!
//! A database may hold the user's own tables: `prepare` refuses a table (or view) named like
//! a stream that driftbridge did not create (it lacks `_extracted_at`, `_run_id` or `_raw`),
//! or named like a bookkeeping table without its columns, before changing anything, and then
//! creates and migrates all tables in one transaction. Tables of older versions are
//! migrated: stream tables gain `_deleted` and `_deleted_at` (existing rows are live),
//! `_driftbridge_rejected` gains `primary_key` (existing rows keep theirs, NULL). Missing
//! parent directories of the database file are created.

use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

use crate::layout::{
    self, Column, ColumnKind, Existing, TableDef, DELETED, DELETED_AT, META_COLUMNS,
    REJECTED_PRIMARY_KEY, RUN_ID,
};
use crate::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use sync_core::{
    epoch_ms_to_rfc3339, Batch, ChildTable, CommitReport, ErrorKind, PropertyKind, Quarantined,
    Record, Rejected, RunError, Sink, State, Stream,
};

/// Name of the state table.
pub const STATE_TABLE: &str = "_driftbridge_state";
/// Name of the table of rejected records.
pub const REJECTED_TABLE: &str = "_driftbridge_rejected";

/// A SQLite database file used as a sink. Cheap to clone is not needed: the engine
/// owns it for the run.
pub struct SqliteSink {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
    tables: HashMap<String, Arc<Table>>,
    options: OpenOptions,
    /// Column names (lower case) of each table in the database, after `prepare`.
    db_columns: HashMap<String, HashSet<String>>,
    warned: Warned,
}

/// Column layout of one table (a stream's own, or a child table).
#[derive(Debug)]
struct Table {
    name: String,
    /// The shared layout's table (stream, columns, flattened keys).
    def: TableDef,
    /// Columns from the shared layout; `_iso` twins have kind `Timestamp`.
    columns: Vec<Column>,
    primary_key: Vec<String>,
    /// The child tables of a stream's table (their tables are in the sink's map too).
    children: Vec<ChildTable>,
    /// History mode (a stream's own table only): versions instead of upserts.
    history: bool,
    /// History mode: the open version's `_raw` and `_deleted` of a key.
    current_sql: String,
    /// History mode: closes the open version of a key: `?1` `_valid_to`, then the key.
    close_sql: String,
    /// History mode: marks the open version of a key deleted and closes it: `?1` the time,
    /// `?2` run id, then the key.
    close_deleted_sql: String,
    /// Child tables: deletes the rows of a parent key (`?1`).
    delete_children_sql: String,
    /// Child tables: marks the live rows of a parent key deleted: `?1` `_deleted_at`, `?2` run
    /// id, `?3` the parent key.
    soft_delete_children_sql: String,
    /// Kinds of the primary-key columns, in key order (to bind a tombstone's key).
    key_kinds: Vec<ColumnKind>,
    upsert_sql: String,
    /// Marks a live row deleted: `?1` `_deleted_at`, `?2` run id, then the key.
    soft_delete_sql: String,
    /// Deletes a row: the key.
    hard_delete_sql: String,
}

fn db_err(context: &str, e: impl std::fmt::Display) -> RunError {
    RunError::new(ErrorKind::Sink, None, format!("sqlite: {context}: {e}"))
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

impl SqliteSink {
    /// Open (or create) the database at `path`, creating missing parent directories. Nothing
    /// in the database changes until [`Sink::prepare`], which first refuses a
    /// stream's table that driftbridge did not create, then switches the database to WAL mode
    /// and creates the tables.
    ///
    /// Errors (kind `Sink`): a parent directory cannot be created, or the file cannot
    /// be opened or is not a SQLite database; the message names the path and the fix.
    ///
    /// Tombstones mark rows deleted (soft deletes); see [`Self::open_with`] for hard deletes.
    pub fn open(path: &Path) -> Result<Self, RunError> {
        Self::open_with(path, OpenOptions::default())
    }

    /// [`Self::open`] with `options`: with `hard_deletes` a tombstone DELETEs its row instead
    /// of marking it `_deleted` (module docs). Same errors as [`Self::open`].
    pub fn open_with(path: &Path, options: OpenOptions) -> Result<Self, RunError> {
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
            options,
            db_columns: HashMap::new(),
            warned: Warned::default(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Apply the schema contract to the keys of flattened objects in `batch` that have no
    /// column yet: rebuild the tables that gain columns and return the columns to add in
    /// the batch's transaction. Errors: `freeze` and a new key (nothing written).
    fn evolve(&mut self, batch: &Batch) -> Result<Vec<(String, String, &'static str)>, RunError> {
        let mut add = Vec::new();
        let flat: Vec<Arc<Table>> = self
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
                "_iso",
                self.db_columns.get(&table.name),
            )?
            else {
                continue;
            };
            for c in &added {
                if self
                    .db_columns
                    .entry(table.name.clone())
                    .or_default()
                    .insert(c.name.to_lowercase())
                {
                    add.push((table.name.clone(), c.name.clone(), sql_type(c.kind)));
                }
            }
            let rebuilt = table_for(def, table.history);
            self.tables.insert(table.name.clone(), Arc::new(rebuilt));
        }
        Ok(add)
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

fn table_for(def: TableDef, history: bool) -> Table {
    let stream = &def.stream;
    let columns = def.columns.clone();
    let upsert_sql = if history {
        insert_version_sql(&stream.name, &columns)
    } else {
        let version = layout::version_column(stream, &columns);
        upsert_sql(
            &stream.name,
            &columns,
            &stream.primary_key,
            version.as_deref(),
        )
    };
    let key_kinds = stream
        .primary_key
        .iter()
        .map(|k| {
            columns
                .iter()
                .find(|c| &c.name == k)
                .map_or(ColumnKind::Value(PropertyKind::Json), |c| c.kind)
        })
        .collect();
    let key_match: Vec<String> = stream
        .primary_key
        .iter()
        .enumerate()
        .map(|(i, k)| format!("{} = ?{}", quote(k), i + 3))
        .collect();
    let soft_delete_sql = format!(
        "UPDATE {} SET {deleted} = 1, {deleted_at} = ?1, {run} = ?2 WHERE {deleted} = 0 AND {}",
        quote(&stream.name),
        key_match.join(" AND "),
        deleted = quote(DELETED),
        deleted_at = quote(DELETED_AT),
        run = quote(RUN_ID),
    );
    let hard_match: Vec<String> = stream
        .primary_key
        .iter()
        .enumerate()
        .map(|(i, k)| format!("{} = ?{}", quote(k), i + 1))
        .collect();
    let hard_delete_sql = format!(
        "DELETE FROM {} WHERE {}",
        quote(&stream.name),
        hard_match.join(" AND ")
    );
    let open_match = |first: usize| -> String {
        let keys: Vec<String> = stream
            .primary_key
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{} = ?{}", quote(k), i + first))
            .collect();
        format!("{} AND \"_valid_to\" IS NULL", keys.join(" AND "))
    };
    let t = quote(&stream.name);
    let current_sql = format!(
        "SELECT \"_raw\", \"_deleted\" FROM {t} WHERE {}",
        open_match(1)
    );
    let close_sql = format!(
        "UPDATE {t} SET \"_valid_to\" = ?1, \"_active\" = 0 WHERE {}",
        open_match(2)
    );
    let close_deleted_sql = format!(
        "UPDATE {t} SET \"_valid_to\" = ?1, \"_active\" = 0, {deleted} = 1, {deleted_at} = ?1, {run} = ?2 WHERE {}",
        open_match(3),
        deleted = quote(DELETED),
        deleted_at = quote(DELETED_AT),
        run = quote(RUN_ID),
    );
    let parent = stream
        .primary_key
        .first()
        .map(|k| quote(k))
        .unwrap_or_default();
    let delete_children_sql = format!("DELETE FROM {t} WHERE {parent} = ?1");
    let soft_delete_children_sql = format!(
        "UPDATE {t} SET {deleted} = 1, {deleted_at} = ?1, {run} = ?2 WHERE {deleted} = 0 AND {parent} = ?3",
        deleted = quote(DELETED),
        deleted_at = quote(DELETED_AT),
        run = quote(RUN_ID),
    );
    Table {
        name: stream.name.clone(),
        children: stream.children.clone(),
        columns,
        primary_key: stream.primary_key.clone(),
        key_kinds,
        upsert_sql,
        soft_delete_sql,
        hard_delete_sql,
        history,
        current_sql,
        close_sql,
        close_deleted_sql,
        delete_children_sql,
        soft_delete_children_sql,
        def,
    }
}

/// History mode: the insert of a new open version: every column, the metadata, then
/// `_valid_from` (`?`, the extraction time), `_valid_to = NULL`, `_active = 1`.
fn insert_version_sql(table: &str, columns: &[Column]) -> String {
    let mut names: Vec<String> = columns.iter().map(|c| quote(&c.name)).collect();
    names.extend(META_COLUMNS.iter().map(|c| quote(c)));
    let mut placeholders = vec!["?"; names.len()];
    names.extend([quote(DELETED), quote(DELETED_AT)]);
    placeholders.extend(["0", "NULL"]);
    names.extend(layout::HISTORY_COLUMNS.iter().map(|c| quote(c)));
    placeholders.extend(["?", "NULL", "1"]);
    format!(
        "INSERT INTO {} ({}) VALUES ({})",
        quote(table),
        names.join(", "),
        placeholders.join(", ")
    )
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

/// The upsert of a live record: every column, the metadata, `_deleted = 0` and
/// `_deleted_at = NULL` (a record that comes back is live). With a `version` column, an
/// existing row is replaced only by a record at least as new ([`layout::version_column`]).
fn upsert_sql(table: &str, columns: &[Column], pk: &[String], version: Option<&str>) -> String {
    let mut names: Vec<String> = columns.iter().map(|c| quote(&c.name)).collect();
    names.extend(META_COLUMNS.iter().map(|c| quote(c)));
    let mut placeholders = vec!["?"; names.len()];
    names.extend([quote(DELETED), quote(DELETED_AT)]);
    placeholders.extend(["0", "NULL"]);
    let placeholders = placeholders.join(", ");
    let updates: Vec<String> = names
        .iter()
        .filter(|n| !pk.iter().any(|k| quote(k) == **n))
        .map(|n| format!("{n} = excluded.{n}"))
        .collect();
    let pk_cols: Vec<String> = pk.iter().map(|k| quote(k)).collect();
    let guard = version.map_or_else(String::new, |v| {
        let (t, v) = (quote(table), quote(v));
        format!(" WHERE excluded.{v} IS NULL OR {t}.{v} IS NULL OR excluded.{v} >= {t}.{v}")
    });
    format!(
        "INSERT INTO {} ({}) VALUES ({placeholders}) ON CONFLICT ({}) DO UPDATE SET {}{guard}",
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
           {REJECTED_PRIMARY_KEY} TEXT, reason TEXT NOT NULL, _raw TEXT NOT NULL,
           rejected_at TEXT NOT NULL);"
    ))?;
    // Migration: the table of older versions lacks `primary_key` (its rows keep NULL).
    if !column_names(conn, REJECTED_TABLE)?
        .iter()
        .any(|c| c == REJECTED_PRIMARY_KEY)
    {
        conn.execute_batch(&format!(
            "ALTER TABLE {REJECTED_TABLE} ADD COLUMN {REJECTED_PRIMARY_KEY} TEXT"
        ))?;
    }
    Ok(())
}

/// The column names of `table`.
fn column_names(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    conn.prepare(&format!("PRAGMA table_info({})", quote(table)))?
        .query_map([], |r| r.get::<_, String>(1))?
        .collect()
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
    Ok(Some(Existing::Table(column_names(conn, &name)?)))
}

/// Refuse, before anything changes, a stream's table or a bookkeeping table that
/// driftbridge did not create.
fn refuse_foreign_tables<'s>(
    conn: &Connection,
    path: &Path,
    streams: impl IntoIterator<Item = &'s Table>,
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
    for table in streams {
        let found = existing(conn, &table.name)
            .map_err(|e| db_err(&format!("inspect table {}", table.name), e))?;
        if let Some(found) = found {
            let place = path.display().to_string();
            let fix = "choose another database file";
            layout::refuse_foreign_table("sqlite", &place, &table.name, &found, fix)?;
            layout::refuse_other_history("sqlite", &place, &table.name, &found, table.history)?;
        }
    }
    Ok(())
}

/// Refuse foreign tables, switch to WAL mode, then create the bookkeeping tables and every
/// table (streams' and child tables) and indexes in one transaction (all or nothing).
/// Returns the column names (lower case) of each table as it then is.
fn prepare_all(
    conn: &mut Connection,
    path: &Path,
    work: &[Arc<Table>],
) -> Result<HashMap<String, HashSet<String>>, RunError> {
    refuse_foreign_tables(conn, path, work.iter().map(|t| &**t))?;
    conn.execute_batch("PRAGMA journal_mode=WAL")
        .map_err(|e| db_err(&format!("cannot initialise {}", path.display()), e))?;
    let tx = conn.transaction().map_err(|e| db_err("begin", e))?;
    create_bookkeeping(&tx)
        .map_err(|e| db_err(&format!("cannot initialise {}", path.display()), e))?;
    let mut names = HashMap::new();
    for table in work {
        create_table(&tx, table)
            .and_then(|()| create_indexes(&tx, table))
            .map_err(|e| db_err(&format!("create table {}", table.name), e))?;
        let cols = column_names(&tx, &table.name)
            .map_err(|e| db_err(&format!("inspect table {}", table.name), e))?;
        names.insert(
            table.name.clone(),
            cols.iter().map(|c| c.to_lowercase()).collect(),
        );
    }
    tx.commit().map_err(|e| db_err("commit", e))?;
    Ok(names)
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
    defs.push(format!("{} {DELETED_DEF}", quote(DELETED)));
    defs.push(format!("{} TEXT", quote(DELETED_AT)));
    let pk: Vec<String> = table.primary_key.iter().map(|k| quote(k)).collect();
    if table.history {
        // Every version is a row: no primary key; one open version per key (below).
        defs.push("\"_valid_from\" TEXT NOT NULL".into());
        defs.push("\"_valid_to\" TEXT".into());
        defs.push("\"_active\" INTEGER NOT NULL DEFAULT 1".into());
    } else {
        defs.push(format!("PRIMARY KEY ({})", pk.join(", ")));
    }
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        quote(&table.name),
        defs.join(", ")
    ))?;
    if table.history {
        conn.execute_batch(&format!(
            "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} ({}) WHERE \"_valid_to\" IS NULL",
            quote(&format!("ux_{}_open_version", table.name)),
            quote(&table.name),
            pk.join(", ")
        ))?;
    }
    // Schema evolution: add columns the stream gained since the table was created, and the
    // soft-delete columns to a table of an older version (its rows are live).
    let existing = column_names(conn, &table.name)?;
    let wanted = table
        .columns
        .iter()
        .map(|c| (c.name.as_str(), sql_type(c.kind)))
        .chain([(DELETED, DELETED_DEF), (DELETED_AT, "TEXT")]);
    for (name, def) in wanted {
        if !existing.iter().any(|e| e.eq_ignore_ascii_case(name)) {
            add_column(conn, &table.name, name, def)?;
        }
    }
    Ok(())
}

fn add_column(conn: &Connection, table: &str, name: &str, def: &str) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "ALTER TABLE {} ADD COLUMN {} {def}",
        quote(table),
        quote(name),
    ))
}

/// Type and default of `_deleted`: rows that predate it (or that are not marked) are live.
const DELETED_DEF: &str = "INTEGER NOT NULL DEFAULT 0";

fn create_indexes(conn: &Connection, table: &Table) -> rusqlite::Result<()> {
    let stream = &table.def.stream;
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

/// Columns (table, column) already warned about in this run: a value that did not fit.
type Warned = Arc<Mutex<HashSet<(String, String)>>>;

/// The cells of `record`'s row in `table` (columns, then `_extracted_at`, `_run_id`,
/// `_raw`). A flattened column's value that does not fit its type is left null (it stays
/// in `_raw`) with a warning, once per column per run.
fn row_values(table: &Table, run_id: &str, record: &Record, warned: &Warned) -> Vec<SqlValue> {
    let mut values: Vec<SqlValue> = Vec::with_capacity(table.columns.len() + 4);
    for c in &table.columns {
        let v = c.value(&record.data);
        if c.checked() && v.is_some_and(|v| !layout::fits_loosely(v, c.kind)) {
            let mut w = warned.lock().unwrap_or_else(|e| e.into_inner());
            if w.insert((table.name.clone(), c.name.clone())) {
                tracing::warn!(stream = %table.name, column = %c.name,
                    sample = %v.map(|v| v.to_string()).unwrap_or_default(),
                    "value does not fit its column's type: stored as null there, kept in _raw");
            }
            values.push(SqlValue::Null);
            continue;
        }
        values.push(sql_value(v, c.kind));
    }
    let extracted = epoch_ms_to_rfc3339(record.extracted_at).unwrap_or_else(now_rfc3339);
    values.push(SqlValue::Text(extracted));
    values.push(SqlValue::Text(run_id.to_owned()));
    values.push(SqlValue::Text(
        Value::Object(record.data.clone()).to_string(),
    ));
    values
}

fn key_values(table: &Table, record: &Record) -> Vec<SqlValue> {
    table
        .primary_key
        .iter()
        .zip(&table.key_kinds)
        .map(|(k, kind)| sql_value(record.data.get(k), *kind))
        .collect()
}

/// Write a live record: upsert its row, or in history mode open a new version unless the
/// open one holds the same record (then nothing changes).
fn write_record(
    tx: &Transaction<'_>,
    table: &Table,
    run_id: &str,
    record: &Record,
    warned: &Warned,
) -> rusqlite::Result<()> {
    let mut values = row_values(table, run_id, record, warned);
    if table.history {
        let key = key_values(table, record);
        let current: Option<(String, bool)> = tx
            .prepare_cached(&table.current_sql)?
            .query_row(rusqlite::params_from_iter(key.iter()), |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let raw = match values.last() {
            Some(SqlValue::Text(t)) => t.as_str(),
            _ => "",
        };
        if current
            .as_ref()
            .is_some_and(|(old, deleted)| old == raw && !deleted)
        {
            return Ok(());
        }
        let at = layout::rfc3339_or_now(record.extracted_at);
        if current.is_some() {
            let head = [SqlValue::Text(at.clone())];
            tx.prepare_cached(&table.close_sql)?
                .execute(rusqlite::params_from_iter(head.into_iter().chain(key)))?;
        }
        values.push(SqlValue::Text(at));
    }
    tx.prepare_cached(&table.upsert_sql)?
        .execute(rusqlite::params_from_iter(values))?;
    Ok(())
}

/// Apply the tombstone `record` to its row: mark it deleted (or delete it with
/// `hard_deletes`); in history mode mark and close its open version (hard deletes remove
/// every version). Returns whether a row changed.
fn apply_tombstone(
    tx: &Transaction<'_>,
    table: &Table,
    run_id: &str,
    record: &Record,
    hard_deletes: bool,
) -> rusqlite::Result<bool> {
    let key = key_values(table, record);
    let head = [
        SqlValue::Text(layout::rfc3339_or_now(record.extracted_at)),
        SqlValue::Text(run_id.to_owned()),
    ];
    let changed = if hard_deletes {
        tx.prepare_cached(&table.hard_delete_sql)?
            .execute(rusqlite::params_from_iter(key))?
    } else if table.history {
        tx.prepare_cached(&table.close_deleted_sql)?
            .execute(rusqlite::params_from_iter(head.into_iter().chain(key)))?
    } else {
        tx.prepare_cached(&table.soft_delete_sql)?
            .execute(rusqlite::params_from_iter(head.into_iter().chain(key)))?
    };
    Ok(changed > 0)
}

/// Replace the child rows of `record` (a record of `table`'s stream): delete those of its
/// key, then insert the rows of its arrays when it is live; for a tombstone mark them
/// deleted (or delete them with `hard_deletes`).
fn write_children(
    tx: &Transaction<'_>,
    tables: &HashMap<String, Arc<Table>>,
    table: &Table,
    run_id: &str,
    record: &Record,
    hard_deletes: bool,
    warned: &Warned,
) -> Result<(), RunError> {
    let [pk] = table.primary_key.as_slice() else {
        return Ok(());
    };
    let parent = sql_value(record.data.get(pk), table.key_kinds[0]);
    for child in &table.children {
        let Some(ct) = tables.get(&child.name) else {
            continue;
        };
        let ctx = |e| db_err(&format!("write {}", child.name), e);
        if record.tombstone && !hard_deletes {
            let params = [
                SqlValue::Text(layout::rfc3339_or_now(record.extracted_at)),
                SqlValue::Text(run_id.to_owned()),
                parent.clone(),
            ];
            tx.prepare_cached(&ct.soft_delete_children_sql)
                .and_then(|mut st| st.execute(rusqlite::params_from_iter(params)))
                .map_err(ctx)?;
            continue;
        }
        tx.prepare_cached(&ct.delete_children_sql)
            .and_then(|mut st| st.execute([parent.clone()]))
            .map_err(ctx)?;
        if record.tombstone {
            continue;
        }
        for row in layout::child_records(&table.def.stream, child, record) {
            write_record(tx, ct, run_id, &row, warned).map_err(ctx)?;
        }
    }
    Ok(())
}

/// A row of `_driftbridge_rejected`.
struct RejectedRow<'a> {
    stream: &'a str,
    /// The primary key as text; `None` when unknown.
    primary_key: Option<&'a str>,
    reason: &'a str,
    /// The record as received (JSON text).
    raw: &'a str,
    /// RFC 3339.
    rejected_at: &'a str,
}

/// Keep `row` in `_driftbridge_rejected`.
fn reject(tx: &Transaction<'_>, run_id: &str, row: &RejectedRow<'_>) -> rusqlite::Result<()> {
    tx.prepare_cached(&format!(
        "INSERT INTO {REJECTED_TABLE} (run_id, stream, {REJECTED_PRIMARY_KEY}, reason, _raw, rejected_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    ))?
    .execute(params![
        run_id,
        row.stream,
        row.primary_key,
        row.reason,
        row.raw,
        row.rejected_at
    ])?;
    Ok(())
}

/// Keep a record the source quarantined (`rejected_at`: when it was read).
fn quarantine(tx: &Transaction<'_>, run_id: &str, q: &Quarantined) -> rusqlite::Result<()> {
    let at = layout::rfc3339_or_now(q.extracted_at);
    let row = RejectedRow {
        stream: &q.stream,
        primary_key: q.key.as_deref(),
        reason: &q.reason,
        raw: &q.raw,
        rejected_at: &at,
    };
    reject(tx, run_id, &row)
}

/// What a commit needs besides the batch.
struct CommitCtx {
    tables: HashMap<String, Arc<Table>>,
    hard_deletes: bool,
    /// Columns to add first, in the batch's transaction (schema evolution): table, column,
    /// SQL type.
    add: Vec<(String, String, &'static str)>,
    warned: Warned,
}

fn commit_batch(
    conn: &mut Connection,
    cx: &CommitCtx,
    batch: &Batch,
) -> Result<CommitReport, RunError> {
    let tables = &cx.tables;
    let tx = conn.transaction().map_err(|e| db_err("begin", e))?;
    for (table, column, def) in &cx.add {
        add_column(&tx, table, column, def)
            .map_err(|e| db_err(&format!("add column {column} to {table}"), e))?;
    }
    let mut report = CommitReport::default();
    let records: Vec<&Record> = batch.records.iter().collect();
    // The last operation on a key wins: a tombstone followed by an upsert of its key is not
    // applied (the upsert makes the row live again).
    let last = layout::last_of_key(&records, |r| {
        let table = tables.get(&r.stream)?;
        Some(format!(
            "{}\u{1f}{}",
            r.stream,
            layout::key_of(&table.primary_key, &r.data)
        ))
    });
    for (record, last) in records.into_iter().zip(last) {
        let table = tables.get(&record.stream).ok_or_else(|| {
            db_err(
                "write",
                format!("stream `{}` was not prepared", record.stream),
            )
        })?;
        if let Some(reason) = missing_key(table, &record.data) {
            let raw = Value::Object(record.data.clone()).to_string();
            let now = now_rfc3339();
            let row = RejectedRow {
                stream: &record.stream,
                primary_key: None,
                reason: &reason,
                raw: &raw,
                rejected_at: &now,
            };
            reject(&tx, &batch.run_id, &row).map_err(|e| db_err("reject", e))?;
            report.rejected.push(Rejected {
                stream: record.stream.clone(),
                reason,
            });
            continue;
        }
        if record.tombstone {
            if last {
                if apply_tombstone(&tx, table, &batch.run_id, record, cx.hard_deletes)
                    .map_err(|e| db_err(&format!("delete from {}", record.stream), e))?
                {
                    *report.deleted.entry(record.stream.clone()).or_default() += 1;
                }
                write_children(
                    &tx,
                    tables,
                    table,
                    &batch.run_id,
                    record,
                    cx.hard_deletes,
                    &cx.warned,
                )?;
            }
            continue;
        }
        write_record(&tx, table, &batch.run_id, record, &cx.warned)
            .map_err(|e| db_err(&format!("write {}", record.stream), e))?;
        if !table.children.is_empty() {
            write_children(
                &tx,
                tables,
                table,
                &batch.run_id,
                record,
                cx.hard_deletes,
                &cx.warned,
            )?;
        }
        *report.written.entry(record.stream.clone()).or_default() += 1;
    }
    for q in &batch.quarantined {
        quarantine(&tx, &batch.run_id, q).map_err(|e| db_err("quarantine", e))?;
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
impl Sink for SqliteSink {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    async fn prepare(&mut self, streams: &[Stream]) -> Result<(), RunError> {
        let history = self.options.history;
        let prepared: Vec<Arc<Table>> = streams
            .iter()
            .flat_map(|s| {
                layout::tables(s, "_iso")
                    .into_iter()
                    .enumerate()
                    .map(move |(i, def)| Arc::new(table_for(def, history && i == 0)))
            })
            .collect();
        let work = prepared.clone();
        let path = self.path.clone();
        let names = self
            .blocking(move |conn| prepare_all(conn, &path, &work))
            .await?;
        for table in prepared {
            self.tables.insert(table.name.clone(), table);
        }
        self.db_columns = names;
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
        let add = self.evolve(&batch)?;
        let cx = CommitCtx {
            tables: self.tables.clone(),
            hard_deletes: self.options.hard_deletes,
            add,
            warned: self.warned.clone(),
        };
        self.blocking(move |conn| commit_batch(conn, &cx, &batch))
            .await
    }
}
