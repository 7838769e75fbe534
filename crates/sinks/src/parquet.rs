//! Parquet sink (`parquet:DIR`, cargo feature `parquet`): while a run goes, one file per
//! stream per checkpoint, `DIR/<stream>/<run-id>-<n>.parquet` (`n` from 000001), each
//! written to a temporary name, fsynced and renamed; a Parquet file cannot be appended to
//! (its footer comes last), so this is what keeps every checkpoint durable and a resume
//! exactly-once. When the run ends cleanly the files of each stream are joined into one,
//! `DIR/<stream>/<run-id>.parquet`, a row group per checkpoint (past
//! [`crate::files::COMPACT_BYTES`] into `<run-id>.2.parquet`, ...), by the same protocol
//! (crash recovery in the `files` module docs; state in `DIR/_driftbridge_state.json`).
//!
//! The Arrow schema comes from the stream's JSON Schema: `integer` -> Int64, `number` ->
//! Float64, `boolean` -> Boolean, `string` -> Utf8, objects, arrays and mixed types -> Utf8
//! holding JSON text. Every epoch-millisecond field (REFERENCE §1) keeps its raw Int64 and
//! gains a twin `<field>_ts` of type `timestamp[ms, UTC]`. Then `_extracted_at`
//! (`timestamp[ms, UTC]`), `_run_id`, `_raw` (the whole record as JSON text: fields not in
//! the schema, and values whose type does not match their column, are kept there; such a
//! typed cell is null), `_deleted` (Boolean) and `_deleted_at` (`timestamp[ms, UTC]`, null
//! while live). A tombstone (a record deleted in Drift) is a row with only its primary-key
//! columns set, `_raw` its key as JSON, `_deleted` true and `_deleted_at` when the deletion
//! was seen; files cannot delete rows, so readers take the last row per primary key. Compression zstd; row groups close at ~128 MB. A schema change
//! between runs shows in the next files' schema; earlier files keep theirs.

use crate::files::{FileTable, Format};
use crate::layout::{self, Column, ColumnKind, DELETED, DELETED_AT, EXTRACTED_AT, RAW, RUN_ID};
use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde_json::Value;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use sync_core::{PropertyKind, Record};

/// Row groups close when their encoded size passes this (128 MiB).
pub const ROW_GROUP_BYTES: usize = 128 * 1024 * 1024;

struct Parquet;

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

fn data_type(kind: ColumnKind) -> DataType {
    match kind {
        ColumnKind::Value(PropertyKind::Integer) => DataType::Int64,
        ColumnKind::Value(PropertyKind::Number) => DataType::Float64,
        ColumnKind::Value(PropertyKind::Boolean) => DataType::Boolean,
        ColumnKind::Value(PropertyKind::String | PropertyKind::Json) => DataType::Utf8,
        ColumnKind::Timestamp => timestamp_type(),
    }
}

/// The Arrow schema of a stream's files.
fn arrow_schema(table: &FileTable) -> SchemaRef {
    let mut fields: Vec<Field> = table
        .columns
        .iter()
        .map(|c| Field::new(&c.name, data_type(c.kind), true))
        .collect();
    fields.push(Field::new(EXTRACTED_AT, timestamp_type(), false));
    fields.push(Field::new(RUN_ID, DataType::Utf8, false));
    fields.push(Field::new(RAW, DataType::Utf8, false));
    fields.push(Field::new(DELETED, DataType::Boolean, false));
    fields.push(Field::new(DELETED_AT, timestamp_type(), true));
    Arc::new(Schema::new(fields))
}

fn fit(v: Option<&Value>, kind: PropertyKind) -> Option<&Value> {
    v.filter(|v| layout::fits(v, kind))
}

/// The Arrow array of one column over `records`; values that do not fit are null.
fn column_array(column: &Column, records: &[&Record]) -> ArrayRef {
    let values = records.iter().map(|r| column.value(&r.data));
    match column.kind {
        ColumnKind::Timestamp => {
            let mut b = TimestampMillisecondBuilder::with_capacity(records.len());
            values.for_each(|v| b.append_option(v.and_then(layout::epoch_ms)));
            Arc::new(b.finish().with_timezone("UTC"))
        }
        ColumnKind::Value(kind @ PropertyKind::Integer) => {
            let mut b = Int64Builder::with_capacity(records.len());
            values.for_each(|v| b.append_option(fit(v, kind).and_then(Value::as_i64)));
            Arc::new(b.finish())
        }
        ColumnKind::Value(kind @ PropertyKind::Number) => {
            let mut b = Float64Builder::with_capacity(records.len());
            values.for_each(|v| b.append_option(fit(v, kind).and_then(Value::as_f64)));
            Arc::new(b.finish())
        }
        ColumnKind::Value(kind @ PropertyKind::Boolean) => {
            let mut b = BooleanBuilder::with_capacity(records.len());
            values.for_each(|v| b.append_option(fit(v, kind).and_then(Value::as_bool)));
            Arc::new(b.finish())
        }
        ColumnKind::Value(kind @ PropertyKind::String) => {
            let mut b = StringBuilder::new();
            values.for_each(|v| b.append_option(fit(v, kind).and_then(Value::as_str)));
            Arc::new(b.finish())
        }
        ColumnKind::Value(PropertyKind::Json) => {
            let mut b = StringBuilder::new();
            values.for_each(|v| b.append_option(v.filter(|v| !v.is_null()).map(Value::to_string)));
            Arc::new(b.finish())
        }
    }
}

fn record_batch(
    table: &FileTable,
    records: &[&Record],
    run_id: &str,
) -> Result<RecordBatch, String> {
    let mut arrays: Vec<ArrayRef> = table
        .columns
        .iter()
        .map(|c| column_array(c, records))
        .collect();
    let mut extracted = TimestampMillisecondBuilder::with_capacity(records.len());
    let mut run = StringBuilder::new();
    let mut raw = StringBuilder::new();
    let mut deleted = BooleanBuilder::with_capacity(records.len());
    let mut deleted_at = TimestampMillisecondBuilder::with_capacity(records.len());
    for r in records {
        extracted.append_value(r.extracted_at);
        run.append_value(run_id);
        raw.append_value(Value::Object(r.data.clone()).to_string());
        deleted.append_value(r.tombstone);
        deleted_at.append_option(r.tombstone.then_some(r.extracted_at));
    }
    arrays.push(Arc::new(extracted.finish().with_timezone("UTC")));
    arrays.push(Arc::new(run.finish()));
    arrays.push(Arc::new(raw.finish()));
    arrays.push(Arc::new(deleted.finish()));
    arrays.push(Arc::new(deleted_at.finish().with_timezone("UTC")));
    RecordBatch::try_new(arrow_schema(table), arrays).map_err(|e| e.to_string())
}

fn properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
        .build()
}

/// Copy the rows of `parts` into `out`, closing a row group after each part (so a joined
/// file keeps one row group per checkpoint, or more past [`ROW_GROUP_BYTES`]). Errors: a
/// part that cannot be read, or whose schema differs from the first part's.
fn join(parts: &[PathBuf], out: &mut File) -> Result<(), String> {
    let mut writer: Option<ArrowWriter<File>> = None;
    let mut schema: Option<SchemaRef> = None;
    for part in parts {
        let file = File::open(part).map_err(|e| format!("{}: {e}", part.display()))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .map_err(|e| format!("{}: {e}", part.display()))?;
        for batch in reader {
            let batch = batch.map_err(|e| format!("{}: {e}", part.display()))?;
            let first = schema.get_or_insert_with(|| batch.schema());
            if first.fields() != batch.schema().fields() {
                return Err(format!(
                    "{} has another schema than the run's first file",
                    part.display()
                ));
            }
            let w = match &mut writer {
                Some(w) => w,
                None => writer.insert(
                    ArrowWriter::try_new(
                        out.try_clone().map_err(|e| e.to_string())?,
                        batch.schema(),
                        Some(properties()),
                    )
                    .map_err(|e| e.to_string())?,
                ),
            };
            w.write(&batch).map_err(|e| e.to_string())?;
        }
        if let Some(w) = &mut writer {
            w.flush().map_err(|e| e.to_string())?;
        }
    }
    match writer {
        Some(w) => w.close().map(|_| ()).map_err(|e| e.to_string()),
        None => Err("the files to join hold no rows".into()),
    }
}

impl Format for Parquet {
    fn kind(&self) -> &'static str {
        "parquet"
    }
    fn appendable(&self) -> bool {
        false
    }
    fn twin_suffix(&self) -> &'static str {
        "_ts"
    }
    fn compact(&self, parts: &[PathBuf], out: &mut File) -> Option<Result<(), String>> {
        Some(join(parts, out))
    }
    fn write(
        &self,
        file: &mut File,
        table: &FileTable,
        records: &[&Record],
        run_id: &str,
        _fresh: bool,
    ) -> Result<(), String> {
        let batch = record_batch(table, records, run_id)?;
        let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(properties()))
            .map_err(|e| e.to_string())?;
        writer.write(&batch).map_err(|e| e.to_string())?;
        writer.close().map_err(|e| e.to_string())?;
        Ok(())
    }
}

crate::files::file_sink!(
    /// A directory of Parquet files: one per stream per run (per checkpoint while it runs).
    ParquetSink, Parquet
);
