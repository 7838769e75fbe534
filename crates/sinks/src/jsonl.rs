//! JSON Lines sink (`jsonl:DIR`): one file per stream per run,
//! `DIR/<stream>/<run-id>.jsonl`, published at each checkpoint by write-fsync-rename (the
//! protocol and crash recovery are in the `files` module docs; state in
//! `DIR/_driftbridge_state.json`).
//!
//! Each line is one record: the object exactly as the source sent it (unknown fields kept,
//! key order kept), plus `<field>_iso` (RFC 3339 UTC twin of every epoch-millisecond field,
//! REFERENCE §1), `_extracted_at` (RFC 3339), `_run_id`, `_deleted: false` and
//! `_deleted_at: null`. A tombstone (a record deleted in Drift) is a line with only its
//! primary-key fields, `_extracted_at`, `_run_id`, `_deleted: true` and `_deleted_at` (RFC
//! 3339, when the deletion was seen); files cannot delete lines, so readers take the last
//! line per primary key. UTF-8, `\n` line ends.

use crate::files::{FileTable, Format};
use crate::layout::{self, ColumnKind, DELETED, DELETED_AT, EXTRACTED_AT, RUN_ID};
use serde_json::Value;
use std::fs::File;
use std::io::{BufWriter, Write};
use sync_core::{epoch_ms_to_rfc3339, Record};

struct Jsonl;

impl Format for Jsonl {
    fn kind(&self) -> &'static str {
        "jsonl"
    }
    fn write(
        &self,
        file: &mut File,
        table: &FileTable,
        records: &[&Record],
        run_id: &str,
        _fresh: bool,
    ) -> Result<(), String> {
        let mut out = BufWriter::new(file);
        for record in records {
            let mut line = record.data.clone();
            // A tombstone holds its key only: no twins for fields it does not have.
            let twins = table
                .columns
                .iter()
                .filter(|c| c.kind == ColumnKind::Timestamp && !record.tombstone);
            for c in twins {
                let twin = c.value(&record.data).and_then(layout::iso);
                line.insert(c.name.clone(), twin.map_or(Value::Null, Value::String));
            }
            // Flattened columns (contacts' attributes) and columns named otherwise than their
            // field (a child table's `tag` from a tag's `name`) as top-level fields, as in the
            // tables.
            let flat = table.columns.iter().filter(|c| {
                (c.checked() || c.name != c.field)
                    && c.kind != ColumnKind::Timestamp
                    && !record.tombstone
            });
            for c in flat {
                let v = c.value(&record.data).cloned().unwrap_or(Value::Null);
                line.insert(c.name.clone(), v);
            }
            let extracted =
                epoch_ms_to_rfc3339(record.extracted_at).unwrap_or_else(layout::now_rfc3339);
            let deleted_at = record.tombstone.then(|| Value::String(extracted.clone()));
            line.insert(EXTRACTED_AT.into(), Value::String(extracted));
            line.insert(RUN_ID.into(), Value::String(run_id.to_owned()));
            line.insert(DELETED.into(), Value::Bool(record.tombstone));
            line.insert(DELETED_AT.into(), deleted_at.unwrap_or(Value::Null));
            serde_json::to_writer(&mut out, &line).map_err(|e| e.to_string())?;
            out.write_all(b"\n").map_err(|e| e.to_string())?;
        }
        out.flush().map_err(|e| e.to_string())
    }
}

crate::files::file_sink!(
    /// A directory of JSON Lines files, one per stream per run.
    JsonlSink, Jsonl
);
