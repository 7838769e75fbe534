//! Column layout shared by the sinks: which columns a stream's schema gives, how a
//! JSON value fits a column, and which existing tables the databases refuse to write into.

use serde_json::{Map, Value};
use std::collections::HashMap;
use sync_core::{epoch_ms_to_rfc3339, ErrorKind, PropertyKind, Record, RunError, Stream};

/// Name of the column that keeps the whole record as the source sent it.
pub(crate) const RAW: &str = "_raw";
/// Name of the column with the run id.
pub(crate) const RUN_ID: &str = "_run_id";
/// Name of the column with the extraction time.
pub(crate) const EXTRACTED_AT: &str = "_extracted_at";
/// The metadata columns every table driftbridge creates has, in every version. A table of a
/// stream's name that lacks one of them was not created by driftbridge (see
/// [`refuse_foreign_table`]).
pub(crate) const META_COLUMNS: [&str; 3] = [EXTRACTED_AT, RUN_ID, RAW];
/// Name of the soft-delete flag: false for a live row, true once a tombstone marked it.
/// Added by `prepare` to tables of older versions (their rows become live).
pub(crate) const DELETED: &str = "_deleted";
/// Name of the column with when the row was deleted in Drift (the tombstone's extraction
/// time); null while the row is live.
pub(crate) const DELETED_AT: &str = "_deleted_at";

/// Columns of the state table `_driftbridge_state` as driftbridge creates it (SQLite and
/// PostgreSQL).
pub(crate) const STATE_COLUMNS: [&str; 4] = ["scope", "key", "state", "updated_at"];
/// Columns the table of rejected records `_driftbridge_rejected` has in every version
/// driftbridge created it in (the check of a user's table of that name accepts any table with
/// them; `prepare` then adds [`REJECTED_PRIMARY_KEY`] to an older one).
pub(crate) const REJECTED_COLUMNS: [&str; 6] =
    ["id", "run_id", "stream", "reason", "_raw", "rejected_at"];
/// The column of `_driftbridge_rejected` with the rejected record's primary key as text
/// (nullable: unknown for a record without one). Added after the first versions.
pub(crate) const REJECTED_PRIMARY_KEY: &str = "primary_key";

/// What a column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ColumnKind {
    /// The field's value, typed from the schema.
    Value(PropertyKind),
    /// The timestamp twin of an epoch-millisecond field (REFERENCE §1: Drift timestamps are
    /// epoch milliseconds).
    Timestamp,
}

/// One column of a stream's table or file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Column {
    /// Column name (the field name, or `<field><suffix>` for a timestamp twin).
    pub name: String,
    /// The record field it is read from.
    pub field: String,
    /// What it holds.
    pub kind: ColumnKind,
}

/// The columns of `stream`: one per top-level schema property in schema order, each
/// epoch-millisecond property followed by its twin named `<field><twin_suffix>`, then any
/// primary-key field the schema does not list (as JSON).
/// The column holding a record's version (Drift's `updatedAt` in epoch ms, or the stream's
/// integer cursor such as accounts' `updateDateTime`), if the stream has one: upserts keep
/// the newer of two versions by it, so an older read (a sync that overlaps the real-time
/// path, issue 22) never overwrites a newer row. A row or a record without a version is
/// always written.
pub(crate) fn version_column(stream: &Stream, columns: &[Column]) -> Option<String> {
    let integer = |name: &str| {
        columns
            .iter()
            .any(|c| c.name == name && matches!(c.kind, ColumnKind::Value(PropertyKind::Integer)))
    };
    stream
        .cursor_field
        .iter()
        .map(String::as_str)
        .chain(["updatedAt"])
        .find(|c| integer(c))
        .map(str::to_owned)
}

pub(crate) fn columns(stream: &Stream, twin_suffix: &str) -> Vec<Column> {
    let mut columns = Vec::new();
    for p in stream.properties() {
        columns.push(Column {
            name: p.name.clone(),
            field: p.name.clone(),
            kind: ColumnKind::Value(p.kind),
        });
        if p.epoch_ms {
            columns.push(Column {
                name: format!("{}{twin_suffix}", p.name),
                field: p.name.clone(),
                kind: ColumnKind::Timestamp,
            });
        }
    }
    for pk in &stream.primary_key {
        if !columns.iter().any(|c| &c.name == pk) {
            columns.push(Column {
                name: pk.clone(),
                field: pk.clone(),
                kind: ColumnKind::Value(PropertyKind::Json),
            });
        }
    }
    columns
}

/// Why a record cannot be written: a primary-key field is missing or null.
pub(crate) fn missing_key(primary_key: &[String], data: &Map<String, Value>) -> Option<String> {
    primary_key
        .iter()
        .find(|k| data.get(*k).is_none_or(Value::is_null))
        .map(|k| format!("primary key field `{k}` is missing or null"))
}

/// The primary key of a record as one string (the key fields' JSON joined by U+001F), for
/// comparing records by key.
pub(crate) fn key_of(primary_key: &[String], data: &Map<String, Value>) -> String {
    primary_key
        .iter()
        .map(|k| data.get(k).map(Value::to_string).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

/// For each of `records`, whether it is the last one in `records` with its key (`key` gives
/// it, stream included; `None`: no key, counted as last). Inside a batch the last operation
/// on a key wins: a tombstone followed by an upsert of the same key is superseded (the row
/// ends live), so sinks apply a tombstone only when it is the last of its key.
pub(crate) fn last_of_key(
    records: &[&Record],
    key: impl Fn(&Record) -> Option<String>,
) -> Vec<bool> {
    let keys: Vec<Option<String>> = records.iter().map(|r| key(r)).collect();
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, k) in keys.iter().enumerate() {
        if let Some(k) = k {
            last.insert(k.as_str(), i);
        }
    }
    keys.iter()
        .enumerate()
        .map(|(i, k)| k.as_deref().is_none_or(|k| last.get(k) == Some(&i)))
        .collect()
}

/// The JSON value of a quarantined record's raw text: the JSON it holds, or the text itself
/// as a JSON string when it is not JSON (nothing is dropped).
pub(crate) fn raw_value(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
}

/// The RFC 3339 text of epoch milliseconds `ms`, or now when it is out of range.
pub(crate) fn rfc3339_or_now(ms: i64) -> String {
    epoch_ms_to_rfc3339(ms).unwrap_or_else(now_rfc3339)
}

/// A stable 64-bit FNV-1a hash of `bytes` (stored in files, so it must not change between
/// builds, unlike `std`'s hasher).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Epoch milliseconds from a JSON number (integers, or floats truncated).
pub(crate) fn epoch_ms(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
}

/// The RFC 3339 text of an epoch-millisecond value, or `None` when it is not a number in range.
pub(crate) fn iso(v: &Value) -> Option<String> {
    epoch_ms(v).and_then(epoch_ms_to_rfc3339)
}

/// `value` as text for a text cell: strings as they are, objects and arrays as JSON text,
/// numbers and booleans as JSON spells them, null as `None`.
pub(crate) fn text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Whether `value` fits a column of `kind` without losing anything (null fits every kind).
/// A value that does not fit is left out of the typed column; it stays in `_raw`.
#[cfg_attr(not(feature = "parquet"), allow(dead_code))]
pub(crate) fn fits(value: &Value, kind: PropertyKind) -> bool {
    match (kind, value) {
        (_, Value::Null) | (PropertyKind::Json, _) => true,
        (PropertyKind::Integer, Value::Number(n)) => n.is_i64(),
        (PropertyKind::Number, Value::Number(_)) => true,
        (PropertyKind::Boolean, Value::Bool(_)) => true,
        (PropertyKind::String, Value::String(_)) => true,
        _ => false,
    }
}

/// Now, RFC 3339 UTC with milliseconds.
pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// What already holds a stream's table name in a database sink.
pub(crate) enum Existing {
    /// A table with these columns.
    Table(Vec<String>),
    /// Something that is not a table (a view, a sequence, ...), named as the database names it.
    Other(String),
}

/// Refuse to write into `existing`, the object named `table` in `place` (e.g. `other.db`,
/// ``schema `s` of host:5432/db as user``), unless it is a table with every [`META_COLUMNS`] column:
/// anything else was not created by driftbridge, and altering it (adding columns, upserting)
/// would damage data the user owns. Nothing is changed before this check, so the message can
/// say the table was left as it was. `fix` names where else to write (`choose another
/// database file`).
///
/// Errors: kind `Invalid` (the CLI exits 2), `<kind>: table `T` in PLACE was not created by driftbridge
/// (...); it was left unchanged: FIX, or rename or drop that table`.
pub(crate) fn refuse_foreign_table(
    kind: &str,
    place: &str,
    table: &str,
    existing: &Existing,
    fix: &str,
) -> Result<(), RunError> {
    refuse_unless(kind, place, table, existing, &META_COLUMNS, "adds", fix)
}

/// Refuse to use `existing`, named like one of driftbridge's bookkeeping tables
/// (`_driftbridge_state` with [`STATE_COLUMNS`], `_driftbridge_rejected` with
/// [`REJECTED_COLUMNS`]: `columns`), unless it is a table with every one of those columns:
/// anything else is the user's, and reading or writing it would fail halfway through a run
/// (or damage it). Same errors as [`refuse_foreign_table`].
pub(crate) fn refuse_foreign_bookkeeping(
    kind: &str,
    place: &str,
    table: &str,
    existing: &Existing,
    columns: &[&str],
    fix: &str,
) -> Result<(), RunError> {
    refuse_unless(kind, place, table, existing, columns, "creates", fix)
}

fn refuse_unless(
    kind: &str,
    place: &str,
    table: &str,
    existing: &Existing,
    required: &[&str],
    verb: &str,
    fix: &str,
) -> Result<(), RunError> {
    let why = match existing {
        Existing::Table(columns) => {
            let missing: Vec<&str> = required
                .iter()
                .copied()
                .filter(|m| !columns.iter().any(|c| c == m))
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            let plural = if missing.len() > 1 { "s" } else { "" };
            format!(
                "it lacks the column{plural} {} that driftbridge {verb}",
                missing.join(", ")
            )
        }
        Existing::Other(what) => format!("it is a {what}"),
    };
    Err(RunError::new(
        ErrorKind::Invalid,
        None,
        format!(
            "{kind}: table `{table}` in {place} was not created by driftbridge ({why}); it was left unchanged: {fix}, or rename or drop that table"
        ),
    ))
}

/// An error of kind `Sink`, prefixed with the sink kind and a context.
pub(crate) fn dest_err(kind: &str, context: &str, e: impl std::fmt::Display) -> RunError {
    RunError::new(ErrorKind::Sink, None, format!("{kind}: {context}: {e}"))
}
