//! CSV sink (`csv:DIR`): one file per stream per run, `DIR/<stream>/<run-id>.csv`,
//! published at each checkpoint by write-fsync-rename (protocol and crash recovery in the
//! `files` module docs; state in `DIR/_driftbridge_state.json`).
//!
//! Columns, from the stream's schema: one per top-level property in schema order, each
//! epoch-millisecond property followed by `<field>_iso` (RFC 3339 UTC, REFERENCE §1), then
//! `_extracted_at`, `_run_id`, `_raw` (the whole record as JSON, so fields not in the
//! schema are kept), `_deleted` (`true`/`false`) and `_deleted_at` (RFC 3339, empty while
//! live). A tombstone (a record deleted in Drift) is a row with only its primary-key cells,
//! `_extracted_at`, `_run_id`, `_raw` (the key as JSON), `_deleted` `true` and `_deleted_at`
//! (when the deletion was seen); files cannot delete rows, so readers take the last row per
//! primary key. The first line is the header. Strings as they are, objects and arrays
//! as JSON text, null as an empty cell. RFC 4180 quoting (only where needed) and CRLF line
//! ends, UTF-8 without a byte-order mark. A schema change between runs shows in the next
//! run's file header; files of earlier runs keep theirs.

use crate::files::{FileTable, Format};
use crate::layout::{self, ColumnKind, DELETED, DELETED_AT, EXTRACTED_AT, RAW, RUN_ID};
use serde_json::Value;
use std::fs::File;
use sync_core::{epoch_ms_to_rfc3339, Record};

struct Csv;

fn row(table: &FileTable, record: &Record, run_id: &str) -> Vec<String> {
    let mut cells: Vec<String> = table
        .columns
        .iter()
        .map(|c| {
            let value = c.value(&record.data);
            let cell = match c.kind {
                ColumnKind::Timestamp => value.and_then(layout::iso),
                ColumnKind::Value(_) => value.and_then(layout::text),
            };
            cell.unwrap_or_default()
        })
        .collect();
    let extracted = epoch_ms_to_rfc3339(record.extracted_at).unwrap_or_else(layout::now_rfc3339);
    let deleted_at = if record.tombstone {
        extracted.clone()
    } else {
        String::new()
    };
    cells.push(extracted);
    cells.push(run_id.to_owned());
    cells.push(Value::Object(record.data.clone()).to_string());
    cells.push(record.tombstone.to_string());
    cells.push(deleted_at);
    cells
}

impl Format for Csv {
    fn kind(&self) -> &'static str {
        "csv"
    }
    fn write(
        &self,
        file: &mut File,
        table: &FileTable,
        records: &[&Record],
        run_id: &str,
        fresh: bool,
    ) -> Result<(), String> {
        let mut out = ::csv::WriterBuilder::new()
            .terminator(::csv::Terminator::CRLF)
            .quote_style(::csv::QuoteStyle::Necessary)
            .from_writer(file);
        if fresh {
            let mut header: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
            header.extend([EXTRACTED_AT, RUN_ID, RAW, DELETED, DELETED_AT]);
            out.write_record(&header).map_err(|e| e.to_string())?;
        }
        for record in records {
            out.write_record(row(table, record, run_id))
                .map_err(|e| e.to_string())?;
        }
        out.flush().map_err(|e| e.to_string())
    }
}

crate::files::file_sink!(
    /// A directory of CSV files, one per stream per run.
    CsvSink, Csv
);
