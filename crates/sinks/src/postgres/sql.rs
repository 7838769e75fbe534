//! SQL text, column types and the privilege check of the PostgreSQL sink.

use crate::layout::{self, dest_err, Column, ColumnKind};
use sync_core::{PropertyKind, RunError};
use tokio_postgres::types::Type;
use tokio_postgres::GenericClient;

/// A column type this sink writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum PgType {
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
    pub(super) fn for_kind(kind: ColumnKind) -> Self {
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
    pub(super) fn from_information_schema(name: &str) -> Self {
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

    pub(super) fn sql(&self) -> &str {
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

    pub(super) fn wire(&self) -> Option<Type> {
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
pub(super) struct PgColumn {
    pub(super) column: Column,
    /// The type the table has (may differ from the schema's after a type change).
    pub(super) actual: PgType,
}

/// A stream's table: its columns as they are and the merge statement.
#[derive(Debug)]
pub(super) struct PgTable {
    pub(super) name: String,
    pub(super) primary_key: Vec<String>,
    /// Columns written by COPY, in order (schema columns with a known type, then meta).
    pub(super) columns: Vec<PgColumn>,
    pub(super) merge_sql: String,
    /// Marks the live rows whose key is in the tombstone stage deleted (`$1`: run id).
    pub(super) soft_delete_sql: String,
    /// Deletes the rows whose key is in the tombstone stage.
    pub(super) hard_delete_sql: String,
    /// The shared layout's table (stream, columns, flattened keys).
    pub(super) def: layout::TableDef,
    /// History mode (a stream's own table only): versions instead of upserts.
    pub(super) history: bool,
    /// Per child table: (deletes the rows of the parents in the upsert stage; marks the
    /// live rows of the parents in the tombstone stage deleted, `$1` the run id; deletes
    /// the rows of the parents in the tombstone stage).
    pub(super) children: Vec<(String, String, String)>,
}

/// `ident` as a quoted SQL identifier (case kept, `"` doubled).
pub(super) fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// An error of kind `Sink` prefixed `postgres: <context>:`.
pub(super) fn err(context: &str, e: impl std::fmt::Display) -> RunError {
    dest_err("postgres", context, e)
}

/// The server's message for a database error, else the error and its cause.
pub(super) fn pg_text(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} (SQLSTATE {})", db.message(), db.code().code());
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

pub(super) fn pg_err(context: &str, e: &tokio_postgres::Error) -> RunError {
    err(context, pg_text(e))
}

/// Split `?schema=NAME` off a connection URL; other parameters are left to tokio-postgres.
pub(super) fn split_schema(url: &str) -> (String, Option<String>) {
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

pub(super) fn target_of(config: &tokio_postgres::Config) -> String {
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
pub(super) async fn check_privileges(
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

pub(super) fn create_table_sql(
    qualified: &str,
    columns: &[PgColumn],
    pk: &[String],
    history: bool,
) -> String {
    let mut defs: Vec<String> = columns
        .iter()
        .map(|c| format!("{} {}", quote(&c.column.name), c.actual.sql()))
        .collect();
    defs.push("\"_extracted_at\" timestamptz NOT NULL".into());
    defs.push("\"_run_id\" text".into());
    defs.push("\"_raw\" jsonb NOT NULL".into());
    for (name, def) in DELETE_COLUMNS {
        defs.push(format!("{} {def}", quote(name)));
    }
    let pk: Vec<String> = pk.iter().map(|k| quote(k)).collect();
    if history {
        // Every version is a row: one open version per key (a partial unique index).
        // Nullable (as `_active`) only so the batch's stage (`LIKE` the table) takes rows
        // without them; every version sets both.
        defs.push("\"_valid_from\" timestamptz".into());
        defs.push("\"_valid_to\" timestamptz".into());
        defs.push("\"_active\" boolean DEFAULT true".into());
    } else {
        defs.push(format!("PRIMARY KEY ({})", pk.join(", ")));
    }
    format!(
        "CREATE TABLE IF NOT EXISTS {qualified} ({})",
        defs.join(", ")
    )
}

/// History mode: the unique index keeping one open version per key of `table`.
pub(super) fn open_version_index_sql(schema: &str, table: &str, pk: &[String]) -> String {
    let pk: Vec<String> = pk.iter().map(|k| quote(k)).collect();
    format!(
        "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {}.{} ({}) WHERE \"_valid_to\" IS NULL",
        quote(&format!("ux_{table}_open_version")),
        quote(schema),
        quote(table),
        pk.join(", ")
    )
}

/// History mode: close the open versions whose record changed (or that were deleted) and
/// open a new version for every staged record without an open version.
pub(super) fn history_merge_sql(
    qualified: &str,
    stage: &str,
    columns: &[PgColumn],
    pk: &[String],
) -> String {
    let mut names: Vec<String> = columns.iter().map(|c| quote(&c.column.name)).collect();
    names.extend(META.iter().map(|(n, _)| quote(n)));
    let list = names.join(", ");
    let matches: Vec<String> = pk
        .iter()
        .map(|k| format!("t.{0} = s.{0}", quote(k)))
        .collect();
    let matches = matches.join(" AND ");
    format!(
        "UPDATE {qualified} t SET \"_valid_to\" = s.\"_extracted_at\", \"_active\" = false
           FROM {stage} s WHERE {matches} AND t.\"_valid_to\" IS NULL
           AND (t.\"_raw\" IS DISTINCT FROM s.\"_raw\" OR t.\"_deleted\");
         INSERT INTO {qualified} ({list}, \"_valid_from\", \"_valid_to\", \"_active\")
           SELECT {list}, s.\"_extracted_at\", NULL, true FROM {stage} s
           WHERE NOT EXISTS (SELECT 1 FROM {qualified} t WHERE {matches} AND t.\"_valid_to\" IS NULL)"
    )
}

/// History mode: mark and close the open versions whose key is in the tombstone stage
/// (`$1` the run id).
pub(super) fn history_delete_sql(qualified: &str, stage: &str, pk: &[String]) -> String {
    let matches: Vec<String> = pk
        .iter()
        .map(|k| format!("t.{0} = s.{0}", quote(k)))
        .collect();
    format!(
        "UPDATE {qualified} t SET \"_deleted\" = true, \"_deleted_at\" = s.\"_deleted_at\", \"_run_id\" = $1,
           \"_valid_to\" = s.\"_deleted_at\", \"_active\" = false
         FROM {stage} s WHERE {} AND t.\"_valid_to\" IS NULL",
        matches.join(" AND ")
    )
}

/// The statements replacing the rows of child table `child` (parent key column
/// `parent_key`) of the parents staged in `stage` / `tombstones` (whose key column is
/// `pk`): see [`PgTable::children`].
pub(super) fn child_sql(
    child: &str,
    parent_key: &str,
    stage: &str,
    tombstones: &str,
    pk: &str,
) -> (String, String, String) {
    let m = format!("c.{} = s.{}", quote(parent_key), quote(pk));
    (
        format!("DELETE FROM {child} c USING {stage} s WHERE {m}"),
        format!(
            "UPDATE {child} c SET \"_deleted\" = true, \"_deleted_at\" = s.\"_deleted_at\", \"_run_id\" = $1
             FROM {tombstones} s WHERE {m} AND NOT c.\"_deleted\""
        ),
        format!("DELETE FROM {child} c USING {tombstones} s WHERE {m}"),
    )
}

/// The metadata columns every upsert writes, after the stream's columns.
pub(super) const META: [(&str, PgType); 5] = [
    (layout::EXTRACTED_AT, PgType::Timestamptz),
    (layout::RUN_ID, PgType::Text),
    (layout::RAW, PgType::Jsonb),
    (layout::DELETED, PgType::Boolean),
    (layout::DELETED_AT, PgType::Timestamptz),
];

/// The soft-delete columns with their definitions, added by `prepare` to tables of older
/// versions (whose rows are live).
pub(super) const DELETE_COLUMNS: [(&str, &str); 2] = [
    (layout::DELETED, "boolean NOT NULL DEFAULT false"),
    (layout::DELETED_AT, "timestamptz"),
];

/// The statements applying the tombstones staged in `stage` (primary-key columns and
/// `_deleted_at`) to `qualified`: (mark live rows deleted, with `$1` the run id; delete rows).
pub(super) fn delete_sql(qualified: &str, stage: &str, pk: &[String]) -> (String, String) {
    let matches: Vec<String> = pk
        .iter()
        .map(|k| format!("t.{0} = s.{0}", quote(k)))
        .collect();
    let matches = matches.join(" AND ");
    let deleted = quote(layout::DELETED);
    let deleted_at = quote(layout::DELETED_AT);
    let run = quote(layout::RUN_ID);
    (
        format!(
            "UPDATE {qualified} t SET {deleted} = true, {deleted_at} = s.{deleted_at}, {run} = $1
             FROM {stage} s WHERE {matches} AND NOT t.{deleted}"
        ),
        format!("DELETE FROM {qualified} t USING {stage} s WHERE {matches}"),
    )
}

/// The merge of the staged records into the table; with a `version` column
/// ([`crate::layout::version_column`]) an existing row is replaced only by a record at least
/// as new.
pub(super) fn merge_sql(
    qualified: &str,
    stage: &str,
    columns: &[PgColumn],
    pk: &[String],
    version: Option<&str>,
) -> String {
    let mut names: Vec<String> = columns.iter().map(|c| quote(&c.column.name)).collect();
    names.extend(META.iter().map(|(n, _)| quote(n)));
    let list = names.join(", ");
    let pk_cols: Vec<String> = pk.iter().map(|k| quote(k)).collect();
    let updates: Vec<String> = names
        .iter()
        .filter(|n| !pk_cols.contains(n))
        .map(|n| format!("{n} = EXCLUDED.{n}"))
        .collect();
    let guard = version.map_or_else(String::new, |v| {
        let v = quote(v);
        format!(" WHERE EXCLUDED.{v} IS NULL OR t.{v} IS NULL OR EXCLUDED.{v} >= t.{v}")
    });
    format!(
        "INSERT INTO {qualified} AS t ({list}) SELECT {list} FROM {stage} ON CONFLICT ({}) DO UPDATE SET {}{guard}",
        pk_cols.join(", "),
        updates.join(", ")
    )
}
