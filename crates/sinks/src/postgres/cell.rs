//! Converting records to binary COPY rows.

use super::sql::{PgColumn, PgType};
use crate::layout::{self, ColumnKind};
use bytes::BytesMut;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sync_core::Record;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};

/// One cell of the binary COPY.
#[derive(Debug)]
pub(super) enum Cell {
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

pub(super) fn cell(column: &PgColumn, value: Option<&Value>) -> Option<Cell> {
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

/// Whether a string or key in `v` holds U+0000.
pub(super) fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(m) => has_nul_map(m),
        _ => false,
    }
}

/// Whether a key or value of `m` holds U+0000.
pub(super) fn has_nul_map(m: &serde_json::Map<String, Value>) -> bool {
    m.iter().any(|(k, v)| k.contains('\0') || has_nul(v))
}

/// `v` with every U+0000 in strings and keys replaced by U+FFFD.
pub(super) fn replace_nul(v: Value) -> Value {
    let fix = |s: String| s.replace('\0', "\u{fffd}");
    match v {
        Value::String(s) => Value::String(fix(s)),
        Value::Array(a) => Value::Array(a.into_iter().map(replace_nul).collect()),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (fix(k), replace_nul(v)))
                .collect(),
        ),
        other => other,
    }
}

/// The operations of one stream's records in a batch, where the last operation on a key
/// wins: (the last upsert per key, in order of last appearance: `INSERT ... ON CONFLICT`
/// refuses to touch a row twice; the tombstones that are the last record of their key, to
/// apply after the upserts). Upsert then tombstone: the upserted data, deleted; tombstone
/// then upsert: live.
pub(super) fn operations<'a>(
    records: &[&'a Record],
    pk: &[String],
) -> (Vec<&'a Record>, Vec<&'a Record>) {
    let key = |r: &Record| Some(layout::key_of(pk, &r.data));
    let upserts: Vec<&Record> = records.iter().copied().filter(|r| !r.tombstone).collect();
    let last_upserts = layout::last_of_key(&upserts, key);
    let upserts = upserts
        .into_iter()
        .zip(last_upserts)
        .filter_map(|(r, last)| last.then_some(r))
        .collect();
    let tombstones = records
        .iter()
        .zip(layout::last_of_key(records, key))
        .filter_map(|(r, last)| (last && r.tombstone).then_some(*r))
        .collect();
    (upserts, tombstones)
}

/// Binary `COPY` of `rows` into the temporary table `stage`: `names` (quoted) are its
/// columns, `types` their wire types, in the order of the rows' cells.
pub(super) async fn copy_rows(
    tx: &deadpool_postgres::Transaction<'_>,
    stage: &str,
    names: &[String],
    types: &[Type],
    rows: Vec<Vec<Cell>>,
) -> Result<(), tokio_postgres::Error> {
    let sink = tx
        .copy_in(&format!(
            "COPY {stage} ({}) FROM STDIN (FORMAT binary)",
            names.join(", ")
        ))
        .await?;
    let writer = BinaryCopyInWriter::new(sink, types);
    futures::pin_mut!(writer);
    for row in &rows {
        let refs: Vec<&(dyn ToSql + Sync)> = row.iter().map(|c| c as &(dyn ToSql + Sync)).collect();
        writer.as_mut().write(&refs).await?;
    }
    writer.finish().await?;
    Ok(())
}
