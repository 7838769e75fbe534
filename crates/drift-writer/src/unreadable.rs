//! Rows that could not be read, as a results file keeps them.
//!
//! A CSV row with the wrong number of fields, an unterminated quote, a quote not doubled
//! inside a quoted value or bytes that are not
//! UTF-8, or a JSONL line that is not a JSON object, has no columns to echo. Its `input` in
//! the results file is its raw text instead, under reserved keys:
//!
//! - `{"_raw": "LINE", "_columns": ["email", ...]}`: a CSV row and the header's columns;
//! - `{"_raw": "LINE"}`: a JSONL line;
//! - `{"_raw_omitted_bytes": N}`: a row over [`MAX_ROW_BYTES`], whose text is not kept.
//!
//! Bytes that are not UTF-8 are kept as U+FFFD (`�`, a lossy decoding). Re-feeding the
//! results file (`--only rejected`) reads `_raw` again exactly as the first push read the
//! row, so a row nobody fixed is rejected again with the same reason — it never becomes an
//! "empty row" and never leaves the retry loop. A `_raw` fixed in the results file (or
//! replaced by a JSON object of columns) is pushed.

use serde_json::{Map, Value};

use crate::input::{json_object, MAX_ROW_BYTES};

/// Reason for a row whose bytes are not UTF-8 (and for a kept raw row still holding the
/// U+FFFD that stands for them).
pub(crate) const NOT_UTF8: &str = "is not valid UTF-8; save the file as UTF-8";

const RAW: &str = "_raw";
const COLUMNS: &str = "_columns";
const OMITTED: &str = "_raw_omitted_bytes";

/// A row that could not be read, as far as it is kept.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Unreadable {
    /// A CSV row: its raw text (line ending removed) and the header's columns.
    Csv {
        /// The row as it stood in the file, lossily decoded.
        raw: String,
        /// Column names of the file's header.
        columns: Vec<String>,
    },
    /// A JSONL line, lossily decoded.
    Jsonl {
        /// The line as it stood in the file.
        raw: String,
    },
    /// A row over [`MAX_ROW_BYTES`]: only its length is kept.
    TooLong {
        /// Length of the row in bytes.
        bytes: usize,
    },
}

impl Unreadable {
    /// The reason for a row of `bytes` bytes, over the limit.
    pub(crate) fn too_long_reason(bytes: usize) -> String {
        format!(
            "is {bytes} bytes long; a row may have at most {MAX_ROW_BYTES} bytes (1 MiB): \
             check the file's quoting and line endings"
        )
    }

    /// The `input` object a results file keeps for the row.
    pub(crate) fn to_input(&self) -> Map<String, Value> {
        let mut m = Map::new();
        match self {
            Unreadable::Csv { raw, columns } => {
                m.insert(RAW.into(), Value::String(raw.clone()));
                let columns = columns.iter().cloned().map(Value::String).collect();
                m.insert(COLUMNS.into(), Value::Array(columns));
            }
            Unreadable::Jsonl { raw } => {
                m.insert(RAW.into(), Value::String(raw.clone()));
            }
            Unreadable::TooLong { bytes } => {
                m.insert(OMITTED.into(), Value::from(*bytes));
            }
        }
        m
    }

    /// Recognises an `input` object written by [`Unreadable::to_input`] (only the reserved
    /// keys, with their types); `None` for an ordinary row.
    pub(crate) fn from_input(input: &Map<String, Value>) -> Option<Unreadable> {
        if let (1, Some(bytes)) = (input.len(), input.get(OMITTED).and_then(Value::as_u64)) {
            return Some(Unreadable::TooLong {
                bytes: usize::try_from(bytes).unwrap_or(usize::MAX),
            });
        }
        let raw = input.get(RAW)?.as_str()?.to_string();
        match (input.len(), input.get(COLUMNS)) {
            (1, None) => Some(Unreadable::Jsonl { raw }),
            (2, Some(Value::Array(cols))) => {
                let columns = cols
                    .iter()
                    .map(|c| c.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()?;
                Some(Unreadable::Csv { raw, columns })
            }
            _ => None,
        }
    }

    /// Reads the kept text again as the first push read the row: the row's columns, or
    /// the same reason as the first time. U+FFFD in the text counts as the bytes that were
    /// not UTF-8.
    pub(crate) fn reread(&self) -> Result<Map<String, Value>, String> {
        match self {
            Unreadable::Csv { raw, columns } => crate::input_csv::reread(raw, columns),
            Unreadable::Jsonl { raw } if raw.contains('\u{FFFD}') => Err(NOT_UTF8.into()),
            Unreadable::Jsonl { raw } => json_object(raw),
            Unreadable::TooLong { bytes } => Err(Unreadable::too_long_reason(*bytes)),
        }
    }
}
